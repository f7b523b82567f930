/*
 * smtpc - the outbound SMTP client; see smtpc.h for the contract.
 *
 * One struct smtpc per connection. Its state (enum smtpc_state) changes
 * only in smtpc_enter_state(), which also arms the step timer with that
 * state's timeout (Postfix xfer_timeouts[]); the command of a state is
 * written just before entering it, and smtpc_on_reply() handles each
 * complete reply by state (OpenSMTPD mta_session). The transaction
 * (struct xfer) is kept apart from the session and freed after its done
 * callback.
 *
 * Replies come from an untrusted peer: a line is looked for with
 * evbuffer_search_eol() and refused past REPLY_LINE_MAX bytes before it
 * is copied, a reply may have REPLY_LINES_MAX lines, and reading stops at
 * READ_HIGHWATER bytes buffered. Any violation is a protocol error: a
 * local temporary failure and the connection closed.
 *
 * The message is streamed: BODY_CHUNK bytes are read with pread() (the
 * caller's file offset is left alone) and dot-stuffed into the output
 * buffer while it holds less than BODY_HIGHWATER bytes; the write
 * callback, at BODY_LOWATER, refills it. Memory per connection is bounded
 * whatever the size of the message.
 *
 * Callbacks may call smtpc_send(), smtpc_quit() or smtpc_abort() on the
 * connection they were given. So every entry from the loop holds the
 * connection (depth); smtpc_close() releases the socket, TLS and SASL at
 * once but frees the struct only when the last frame returns, and every
 * frame checks c->closed after anything that may have run a callback.
 * User callbacks run only from loop callbacks, never from inside
 * smtpc_open() or smtpc_send(): decisions made there go through the
 * deferred event (smtpc_defer()).
 *
 * body_buf is static: one loop per process, as everywhere in Postern.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "common/alloc.h"
#include "common/log.h"
#include "relay/smtpc.h"

#define REPLY_LINE_MAX	4096		/* bytes in one reply line */
#define REPLY_LINES_MAX	100		/* lines in one reply */
#define REPLY_TEXT_MAX	2048		/* joined text kept for the caller */
#define READ_HIGHWATER	16384		/* stop reading past this */
#define BODY_CHUNK	65536		/* bytes read from the file at once */
#define BODY_HIGHWATER	(2 * BODY_CHUNK)/* refill while output is below */
#define BODY_LOWATER	(BODY_CHUNK / 2)/* write callback at this level */
#define QUIT_TIMEOUT	5000		/* ms to wait for the reply to QUIT */
#define SMTPC_SASL_SERVICE "smtp"

#define AUTH_PLAIN	0x01
#define AUTH_LOGIN	0x02

/* sasl_callback_t.proc is int (*)(void); go through void (*)(void) */
#define SMTPC_CB(f)	((int (*)(void))(void (*)(void))(f))

enum smtpc_state {
	S_CONNECT,	/* TCP connect in progress */
	S_TLS,		/* TLS handshake (implicit, or after STARTTLS) */
	S_GREETING,	/* waiting for the 220 */
	S_EHLO,
	S_HELO,
	S_STARTTLS,
	S_AUTH,		/* AUTH and its 334 rounds */
	S_READY,	/* idle between transactions */
	S_RSET,
	S_MAIL,
	S_RCPT,		/* one reply per recipient, in order */
	S_DATA,
	S_BODY,		/* writing the message */
	S_DOT,		/* the final "." written, waiting for its reply */
	S_QUIT,		/* waiting for the reply to QUIT; no callbacks */
	S_DEAD,		/* lost while idle; waiting for send, quit or abort */
};

/* One transaction. */
struct xfer {
	struct smtpc_txn	 txn;		/* the caller's strings */
	smtpc_done_cb		 done;
	void			*arg;
	struct smtpc_reply	*rcpt;		/* outcome per recipient */
	bool			*settled;	/* rcpt[i] is final */
	size_t			 rcpt_next;	/* next RCPT reply expected */
	size_t			 naccepted;	/* RCPTs answered 2xx */
	bool			 pipelined;	/* MAIL..DATA in one write */
	bool			 mail_failed;
	bool			 discard;	/* "." ends an empty DATA */
	size_t			 pre_off;	/* prepend bytes written */
	uint64_t		 off;		/* file bytes written */
	uint64_t		 nsent;		/* bytes before stuffing */
	bool			 bol;		/* at a line start */
	unsigned char		 last[2];	/* the last two bytes sent */
	bool			 flushing;	/* "." queued, not written */
};

struct smtpc {
	uint64_t		 id;
	struct event_base	*base;
	enum smtpc_state	 state;
	int			 depth;		/* loop frames holding c */
	bool			 closed;	/* I/O gone; free at depth 0 */

	/* parameters */
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	char			 addrstr[INET6_ADDRSTRLEN];
	char			*helo;
	char			*peer_name;
	char			*desc;		/* "name[addr]:port" */
	enum smtpc_tls		 tls;
	bool			 no_verify;	/* smtpc_params.no_verify */
	SSL_CTX			*ssl_ctx;
	char			*login;
	char			*password;
	struct smtpc_timeouts	 to;		/* defaults filled in */
	smtpc_ready_cb		 ready;
	void			*ready_arg;
	bool			 ready_reported;

	/* I/O */
	int			 fd;
	struct bufferevent	*bev;
	SSL			*ssl;
	struct event		*timer;		/* the current step's timeout */
	struct event		*defer;		/* runs c->deferred */
	void			(*deferred)(struct smtpc *);

	/* what the peer said it supports */
	struct smtpc_peer	 peer;
	char			 tls_version[32];
	char			 cipher[96];
	bool			 greeted;
	bool			 offers_starttls;
	bool			 offers_size;
	unsigned		 auth_mechs;	/* AUTH_PLAIN | AUTH_LOGIN */

	/* the reply being read */
	int			 rcode;
	char			 renh[12];
	char			 rtext[REPLY_TEXT_MAX + 4];
	size_t			 rtextlen;
	unsigned		 rlines;
	bool			 rtrunc;
	bool			 rdone;
	const char		*rerr;		/* why a line was refused */

	/* SASL */
	sasl_conn_t		*sasl;
	sasl_callback_t		 sasl_cb[5];
	sasl_secret_t		*secret;
	size_t			 secretsize;

	/* transactions */
	struct xfer		*x;
	bool			 need_rset;	/* a transaction half-failed */
	struct smtpc_reply	 lost;		/* S_DEAD, or an open failure */
};

static uint64_t	 smtpc_next_id = 1;
static int	 smtpc_sasl_state;	/* 0 untried, 1 ready, -1 failed */
static char	 body_buf[BODY_CHUNK];

static void	smtpc_read_cb(struct bufferevent *, void *);
static void	smtpc_write_cb(struct bufferevent *, void *);
static void	smtpc_event_cb(struct bufferevent *, short, void *);
static void	smtpc_close(struct smtpc *);
static void	smtpc_send_ehlo(struct smtpc *);
static void	smtpc_after_ehlo(struct smtpc *);
static void	smtpc_auth_or_ready(struct smtpc *);
static void	xfer_begin(struct smtpc *);

/* --- replies --- */

/* smtpc_reply_temporary - true for 4xx and code 0 */
bool
smtpc_reply_temporary(const struct smtpc_reply *r)
{
	return r->code == 0 || (r->code >= 400 && r->code < 500);
}

/* reply_copy - dst becomes a deep copy of src */
static void
reply_copy(struct smtpc_reply *dst, const struct smtpc_reply *src)
{
	dst->code = src->code;
	snprintf(dst->enhanced, sizeof(dst->enhanced), "%s", src->enhanced);
	dst->text = xstrdup(src->text ? src->text : "");
	dst->local = src->local;
}

/* reply_clear - free a reply's text */
static void
reply_clear(struct smtpc_reply *r)
{
	free(r->text);
	memset(r, 0, sizeof(*r));
}

/* reply_local - a reply of our own; text newly allocated */
static void __attribute__((format(printf, 4, 5)))
reply_local(struct smtpc_reply *r, int code, const char *enhanced,
    const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		log_panic("smtpc: out of memory");
	va_end(ap);
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	r->text = s;
	r->local = true;
}

/* digit - c is an ASCII decimal digit */
static bool
digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * enhanced_len - length of an RFC 3463 status code ("5.1.1") at s whose
 * class is cls, followed by a space or the end; 0 when there is none
 */
static size_t
enhanced_len(const char *s, char cls)
{
	const char *p = s;
	int n;

	if (p[0] != cls || p[1] != '.')
		return 0;
	p += 2;
	for (n = 0; n < 3 && digit(*p); n++)
		p++;
	if (n == 0 || *p++ != '.')
		return 0;
	for (n = 0; n < 3 && digit(*p); n++)
		p++;
	if (n == 0 || (*p != '\0' && *p != ' '))
		return 0;
	return (size_t)(p - s);
}

/* reply_reset - forget the reply read last */
static void
reply_reset(struct smtpc *c)
{
	c->rcode = 0;
	c->renh[0] = '\0';
	c->rtext[0] = '\0';
	c->rtextlen = 0;
	c->rlines = 0;
	c->rtrunc = false;
	c->rdone = false;
}

/* reply_append - add one line's text, printable ASCII only, capped */
static void
reply_append(struct smtpc *c, const char *s)
{
	unsigned char ch;

	if (*s == '\0')
		return;
	if (c->rtextlen > 0 && c->rtextlen < REPLY_TEXT_MAX)
		c->rtext[c->rtextlen++] = ' ';
	for (; *s; s++) {
		if (c->rtextlen >= REPLY_TEXT_MAX) {
			c->rtrunc = true;
			break;
		}
		ch = (unsigned char)*s;
		if (ch == '\t')
			ch = ' ';
		else if (ch < 0x20 || ch > 0x7e)
			ch = '?';
		c->rtext[c->rtextlen++] = (char)ch;
	}
	c->rtext[c->rtextlen] = '\0';
}

/* ehlo_keyword - note one EHLO keyword line (untrusted) */
static void
ehlo_keyword(struct smtpc *c, const char *line)
{
	char kw[32], *end;
	const char *p = line, *arg;
	unsigned long long v;
	size_t n;

	n = strcspn(p, " =");
	if (n == 0 || n >= sizeof(kw))
		return;
	memcpy(kw, p, n);
	kw[n] = '\0';
	arg = p + n + (p[n] != '\0');
	if (strcasecmp(kw, "PIPELINING") == 0)
		c->peer.pipelining = true;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		c->peer.eightbitmime = true;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		c->peer.smtputf8 = true;
	else if (strcasecmp(kw, "STARTTLS") == 0)
		c->offers_starttls = true;
	else if (strcasecmp(kw, "SIZE") == 0) {
		c->offers_size = true;
		c->peer.size = 0;
		if (digit(*arg)) {
			errno = 0;
			v = strtoull(arg, &end, 10);
			if (errno == 0 && (*end == '\0' || *end == ' '))
				c->peer.size = v;
		}
	} else if (strcasecmp(kw, "AUTH") == 0) {
		while (*arg) {
			n = strcspn(arg, " ");
			if (n == 5 && strncasecmp(arg, "PLAIN", 5) == 0)
				c->auth_mechs |= AUTH_PLAIN;
			else if (n == 5 && strncasecmp(arg, "LOGIN", 5) == 0)
				c->auth_mechs |= AUTH_LOGIN;
			arg += n;
			arg += strspn(arg, " ");
		}
	}
}

/*
 * reply_line - one line of a reply (without its line end): 1 when the
 * reply is complete, 0 when more lines follow, -1 on a protocol error
 * (c->rerr says which)
 */
static int
reply_line(struct smtpc *c, const char *line, size_t len)
{
	const char *text;
	size_t n;
	bool more;
	int code;

	if (c->rdone)
		reply_reset(c);
	if (len < 3 || line[0] < '2' || line[0] > '5' || !digit(line[1]) ||
	    !digit(line[2]) || (len > 3 && line[3] != ' ' &&
	    line[3] != '-')) {
		c->rerr = "malformed reply line";
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + line[2] - '0';
	more = len > 3 && line[3] == '-';
	text = len > 3 ? line + 4 : "";
	if (c->rlines == 0)
		c->rcode = code;
	else if (code != c->rcode) {
		c->rerr = "reply code changed between lines";
		return -1;
	}
	if (++c->rlines > REPLY_LINES_MAX) {
		c->rerr = "too many reply lines";
		return -1;
	}
	if (c->state == S_EHLO && c->rlines > 1 && code / 100 == 2)
		ehlo_keyword(c, text);
	if ((n = enhanced_len(text, line[0])) > 0) {
		if (c->rlines == 1) {
			memcpy(c->renh, text, n);
			c->renh[n] = '\0';
		}
		text += n;
		text += strspn(text, " ");
	}
	reply_append(c, text);
	if (more)
		return 0;
	if (c->rtrunc)
		strcat(c->rtext, "...");
	c->rdone = true;
	return 1;
}

/* --- the connection --- */

/* smtpc_strstate - state name for traces */
static const char *
smtpc_strstate(enum smtpc_state st)
{
	switch (st) {
	case S_CONNECT:		return "connect";
	case S_TLS:		return "tls";
	case S_GREETING:	return "greeting";
	case S_EHLO:		return "ehlo";
	case S_HELO:		return "helo";
	case S_STARTTLS:	return "starttls";
	case S_AUTH:		return "auth";
	case S_READY:		return "ready";
	case S_RSET:		return "rset";
	case S_MAIL:		return "mail";
	case S_RCPT:		return "rcpt";
	case S_DATA:		return "data";
	case S_BODY:		return "body";
	case S_DOT:		return "dot";
	case S_QUIT:		return "quit";
	case S_DEAD:		return "dead";
	}
	return "?";
}

/* smtpc_strwhere - where we were, for the text of a failure */
static const char *
smtpc_strwhere(enum smtpc_state st)
{
	switch (st) {
	case S_CONNECT:		return "while connecting";
	case S_TLS:		return "in the TLS handshake";
	case S_GREETING:	return "waiting for the greeting";
	case S_EHLO:		return "in reply to EHLO";
	case S_HELO:		return "in reply to HELO";
	case S_STARTTLS:	return "in reply to STARTTLS";
	case S_AUTH:		return "in reply to AUTH";
	case S_READY:		return "while idle";
	case S_RSET:		return "in reply to RSET";
	case S_MAIL:		return "in reply to MAIL FROM";
	case S_RCPT:		return "in reply to RCPT TO";
	case S_DATA:		return "in reply to DATA";
	case S_BODY:		return "while sending the message";
	case S_DOT:		return "in reply to end of data";
	case S_QUIT:		return "in reply to QUIT";
	case S_DEAD:		return "after the connection was lost";
	}
	return "?";
}

/* smtpc_state_timeout - milliseconds allowed in st; 0: none */
static unsigned
smtpc_state_timeout(const struct smtpc *c, enum smtpc_state st)
{
	switch (st) {
	case S_CONNECT:
		return c->to.connect;
	case S_GREETING:
		return c->to.greeting;
	case S_TLS:
	case S_EHLO:
	case S_HELO:
	case S_STARTTLS:
	case S_AUTH:
	case S_RSET:
	case S_MAIL:
	case S_RCPT:
		return c->to.command;
	case S_DATA:
		return c->to.data_init;
	case S_BODY:
		return c->to.data_block;
	case S_DOT:
		return c->to.data_term;
	case S_QUIT:
		return c->to.command < QUIT_TIMEOUT ? c->to.command :
		    QUIT_TIMEOUT;
	case S_READY:
	case S_DEAD:
		break;
	}
	return 0;
}

/* smtpc_arm - (re)start the step timer; 0 ms stops it */
static void
smtpc_arm(struct smtpc *c, unsigned ms)
{
	struct timeval tv;

	if (ms == 0) {
		evtimer_del(c->timer);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

/* smtpc_enter_state - the one place the state changes; traced, timed */
static void
smtpc_enter_state(struct smtpc *c, enum smtpc_state st)
{
	log_debug("smtpc=%" PRIu64 " state %s -> %s", c->id,
	    smtpc_strstate(c->state), smtpc_strstate(st));
	c->state = st;
	smtpc_arm(c, smtpc_state_timeout(c, st));
}

/* smtpc_write - queue one command line; secret lines are not traced */
static void __attribute__((format(printf, 3, 4)))
smtpc_write(struct smtpc *c, bool secret, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char esc[128];
	va_list ap;
	char *line;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n == -1)
		log_panic("smtpc: out of memory");
	log_debug("smtpc=%" PRIu64 " >>> %s", c->id, secret ? "(secret)" :
	    log_escape(line, (size_t)n, esc, sizeof(esc)));
	evbuffer_add(out, line, (size_t)n);
	evbuffer_add(out, "\r\n", 2);
	if (secret)
		freezero_(line, (size_t)n);
	else
		free(line);
}

/* smtpc_hold - a loop frame uses c: it stays allocated until released */
static void
smtpc_hold(struct smtpc *c)
{
	c->depth++;
}

/* smtpc_free - the struct itself and what it owns (I/O already gone) */
static void
smtpc_free(struct smtpc *c)
{
	if (c->timer)
		event_free(c->timer);
	if (c->defer)
		event_free(c->defer);
	free(c->helo);
	free(c->peer_name);
	free(c->desc);
	free(c->login);
	if (c->password)
		freezero_(c->password, strlen(c->password));
	if (c->secret)
		freezero_(c->secret, c->secretsize);
	reply_clear(&c->lost);
	free(c);
}

/* smtpc_release - the frame is done; the last one out frees a closed
   connection */
static void
smtpc_release(struct smtpc *c)
{
	if (--c->depth == 0 && c->closed)
		smtpc_free(c);
}

/* smtpc_defer - run f from the loop, soon, in a frame of its own */
static void
smtpc_defer(struct smtpc *c, void (*f)(struct smtpc *))
{
	c->deferred = f;
	event_active(c->defer, EV_TIMEOUT, 1);
}

/* smtpc_defer_cb - the deferred event fired */
static void
smtpc_defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	void (*f)(struct smtpc *) = c->deferred;

	(void)fd;
	(void)what;
	smtpc_hold(c);
	c->deferred = NULL;
	if (f && !c->closed)
		f(c);
	smtpc_release(c);
}

/* smtpc_release_io - drop socket, TLS and SASL (the struct stays) */
static void
smtpc_release_io(struct smtpc *c)
{
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->sasl)
		sasl_dispose(&c->sasl);
	if (c->timer)
		evtimer_del(c->timer);
}

/* --- transactions --- */

/* xfer_free - forget a transaction (no callback) */
static void
xfer_free(struct xfer *x)
{
	size_t i;

	if (x == NULL)
		return;
	for (i = 0; i < x->txn.nrcpts; i++)
		free(x->rcpt[i].text);
	free(x->rcpt);
	free(x->settled);
	free(x);
}

/* xfer_settle - every recipient without an outcome gets r */
static void
xfer_settle(struct xfer *x, const struct smtpc_reply *r)
{
	size_t i;

	for (i = 0; i < x->txn.nrcpts; i++)
		if (!x->settled[i]) {
			reply_copy(&x->rcpt[i], r);
			x->settled[i] = true;
		}
}

/* xfer_report - detach the transaction, tell the caller, free it; with
   !usable the connection is closed first */
static void
xfer_report(struct smtpc *c, bool usable)
{
	struct xfer *x = c->x;
	char esc[128];
	size_t i, ok = 0;

	c->x = NULL;
	for (i = 0; i < x->txn.nrcpts; i++) {
		if (!x->settled[i]) {		/* cannot happen */
			log_warnx("smtpc=%" PRIu64 " recipient %zu has no "
			    "outcome", c->id, i);
			reply_local(&x->rcpt[i], 0, "", "internal error");
			x->settled[i] = true;
		}
		if (x->rcpt[i].code >= 200 && x->rcpt[i].code < 300)
			ok++;
	}
	log_info("smtpc=%" PRIu64 " sent host=%s rcpts=%zu delivered=%zu "
	    "code=%d text=\"%s\"%s", c->id, c->desc, x->txn.nrcpts, ok,
	    x->rcpt[0].code, log_escape(x->rcpt[0].text, (size_t)-1, esc,
	    sizeof(esc)), usable ? "" : " closed=yes");
	if (usable)
		smtpc_enter_state(c, S_READY);
	else if (c->state != S_QUIT)	/* else it goes after QUIT */
		smtpc_close(c);
	x->done(x->arg, c, x->rcpt, x->txn.nrcpts, usable);
	xfer_free(x);
}

/* --- failures --- */

/* smtpc_retire - stop using the connection: QUIT politely, or close */
static void
smtpc_retire(struct smtpc *c, bool quit)
{
	if (quit && c->bev != NULL) {
		c->ready = NULL;
		smtpc_write(c, false, "QUIT");
		smtpc_enter_state(c, S_QUIT);
		return;
	}
	smtpc_close(c);
}

/*
 * smtpc_fail - the connection cannot go on: r is the outcome of the
 * connection attempt, or of every unsettled recipient, or (idle) of the
 * next transaction. quit: the dialogue is still in step, say QUIT.
 */
static void
smtpc_fail(struct smtpc *c, const struct smtpc_reply *r, bool next_host,
    bool quit)
{
	smtpc_ready_cb ready;
	char esc[256];

	if (c->closed)
		return;
	log_info("smtpc=%" PRIu64 " fail host=%s state=%s code=%d%s%s "
	    "text=\"%s\"", c->id, c->desc, smtpc_strstate(c->state), r->code,
	    r->enhanced[0] ? " enhanced=" : "", r->enhanced,
	    log_escape(r->text, (size_t)-1, esc, sizeof(esc)));
	if (c->state == S_QUIT) {
		smtpc_close(c);
		return;
	}
	if (c->x != NULL) {
		xfer_settle(c->x, r);
		if (quit && c->bev != NULL) {
			smtpc_write(c, false, "QUIT");
			smtpc_enter_state(c, S_QUIT);
		}
		xfer_report(c, false);
		return;
	}
	if (!c->ready_reported) {
		c->ready_reported = true;
		ready = c->ready;
		smtpc_retire(c, quit);
		if (ready)
			ready(c->ready_arg, c, NULL, r, next_host);
		return;
	}
	/* Idle: keep the reason for the next smtpc_send(). */
	if (r != &c->lost) {
		reply_clear(&c->lost);
		reply_copy(&c->lost, r);
	}
	smtpc_release_io(c);
	smtpc_enter_state(c, S_DEAD);
}

/* smtpc_fail_local - smtpc_fail with a temporary reply of our own */
static void __attribute__((format(printf, 4, 5)))
smtpc_fail_local(struct smtpc *c, bool next_host, bool quit,
    const char *fmt, ...)
{
	struct smtpc_reply r;
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		log_panic("smtpc: out of memory");
	va_end(ap);
	reply_local(&r, 0, "", "%s: %s", c->desc, s);
	free(s);
	smtpc_fail(c, &r, next_host, quit);
	reply_clear(&r);
}

/* --- TLS --- */

/* smtpc_ssl_errstr - OpenSSL's most recent error into out */
static const char *
smtpc_ssl_errstr(unsigned long e, char *out, size_t outsz)
{
	if (e == 0)
		e = ERR_peek_last_error();
	if (e == 0)
		snprintf(out, outsz, "unknown TLS error");
	else
		ERR_error_string_n(e, out, outsz);
	ERR_clear_error();
	return out;
}

/* smtpc_tls_ctx - a client context: TLS 1.2+, trust anchors from cafile */
SSL_CTX *
smtpc_tls_ctx(const char *cafile, char **err)
{
	SSL_CTX *ctx;
	char e[256];
	int r;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		*err = xasprintf("cannot create TLS context: %s",
		    smtpc_ssl_errstr(0, e, sizeof(e)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);	/* set per SSL */
	if (cafile != NULL)
		r = SSL_CTX_load_verify_locations(ctx, cafile, NULL);
	else
		r = SSL_CTX_set_default_verify_paths(ctx);
	if (r != 1) {
		*err = xasprintf("%s: cannot load trust anchors: %s",
		    cafile ? cafile : "system trust store",
		    smtpc_ssl_errstr(0, e, sizeof(e)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* smtpc_verify_required - certificates must verify (else only recorded) */
static bool
smtpc_verify_required(const struct smtpc *c)
{
	return (c->tls == SMTPC_TLS_REQUIRE || c->tls == SMTPC_TLS_IMPLICIT) &&
	    !c->no_verify;
}

/* smtpc_attach - callbacks, watermark and reading for a new bev */
static void
smtpc_attach(struct smtpc *c)
{
	bufferevent_setcb(c->bev, smtpc_read_cb, smtpc_write_cb,
	    smtpc_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGHWATER);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/*
 * smtpc_tls_start - replace the plaintext bufferevent by a TLS one on the
 * same socket and start the handshake. Bytes the server sent after its
 * 220 are plaintext injection (RFC 3207 section 5) and are dropped with
 * the old bufferevent.
 */
static void
smtpc_tls_start(struct smtpc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char e[256];

	if (evbuffer_get_length(in) > 0)
		log_info("smtpc=%" PRIu64 " host=%s: %zu bytes after 220 to "
		    "STARTTLS dropped", c->id, c->desc,
		    evbuffer_get_length(in));
	ERR_clear_error();
	if ((c->ssl = SSL_new(c->ssl_ctx)) == NULL) {
		smtpc_fail_local(c, true, false, "cannot start TLS: %s",
		    smtpc_ssl_errstr(0, e, sizeof(e)));
		return;
	}
	if (c->peer_name != NULL) {
		if (SSL_set_tlsext_host_name(c->ssl, c->peer_name) != 1 ||
		    SSL_set1_host(c->ssl, c->peer_name) != 1) {
			smtpc_fail_local(c, true, false, "cannot set TLS "
			    "name: %s", smtpc_ssl_errstr(0, e, sizeof(e)));
			return;
		}
	} else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
	    c->addrstr) != 1) {
		smtpc_fail_local(c, true, false, "cannot set TLS address: %s",
		    smtpc_ssl_errstr(0, e, sizeof(e)));
		return;
	}
	SSL_set_verify(c->ssl, smtpc_verify_required(c) ? SSL_VERIFY_PEER :
	    SSL_VERIFY_NONE, NULL);
	bufferevent_free(c->bev);
	c->bev = bufferevent_openssl_socket_new(c->base, c->fd, c->ssl,
	    BUFFEREVENT_SSL_CONNECTING, 0);
	if (c->bev == NULL) {
		smtpc_fail_local(c, true, false, "cannot start TLS");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	smtpc_attach(c);
	smtpc_enter_state(c, S_TLS);
}

/* smtpc_tls_done - the handshake finished: record what we got */
static void
smtpc_tls_done(struct smtpc *c)
{
	long vr = SSL_get_verify_result(c->ssl);

	c->peer.tls = true;
	c->peer.verified = SSL_get0_peer_certificate(c->ssl) != NULL &&
	    vr == X509_V_OK;
	snprintf(c->tls_version, sizeof(c->tls_version), "%s",
	    SSL_get_version(c->ssl));
	snprintf(c->cipher, sizeof(c->cipher), "%s",
	    SSL_get_cipher_name(c->ssl));
	log_info("smtpc=%" PRIu64 " tls host=%s version=%s cipher=%s "
	    "verified=%s%s%s", c->id, c->desc, c->tls_version, c->cipher,
	    c->peer.verified ? "yes" : "no",
	    c->peer.verified ? "" : " reason=",
	    c->peer.verified ? "" : vr == X509_V_OK ? "no certificate" :
	    X509_verify_cert_error_string(vr));
	if (!c->greeted) {		/* implicit TLS: now the greeting */
		smtpc_enter_state(c, S_GREETING);
		return;
	}
	smtpc_send_ehlo(c);		/* RFC 3207 4.2: forget, ask again */
}

/* smtpc_tls_error - why the handshake failed */
static void
smtpc_tls_error(struct smtpc *c, unsigned long e)
{
	long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
	char es[256];

	if (vr != X509_V_OK && smtpc_verify_required(c))
		smtpc_fail_local(c, true, false, "TLS certificate "
		    "verification failed: %s",
		    X509_verify_cert_error_string(vr));
	else if (e != 0)
		smtpc_fail_local(c, true, false, "TLS handshake failed: %s",
		    smtpc_ssl_errstr(e, es, sizeof(es)));
	else
		smtpc_fail_local(c, true, false, "TLS handshake failed: "
		    "connection closed");
}

/* --- SASL --- */

/* smtpc_sasl_log - Cyrus SASL's messages, at debug level */
static int
smtpc_sasl_log(void *context, int level, const char *message)
{
	(void)context;
	(void)level;
	log_debug("smtpc: sasl: %s", message);
	return SASL_OK;
}

/* smtpc_sasl_name - the authentication id; no authorization id */
static int
smtpc_sasl_name(void *context, int id, const char **result, unsigned *len)
{
	struct smtpc *c = context;

	*result = id == SASL_CB_AUTHNAME ? c->login : "";
	if (len)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

/* smtpc_sasl_pass - the password, as a secret SASL does not copy */
static int
smtpc_sasl_pass(sasl_conn_t *conn, void *context, int id,
    sasl_secret_t **psecret)
{
	struct smtpc *c = context;
	size_t len = strlen(c->password);

	(void)conn;
	(void)id;
	if (c->secret == NULL) {
		c->secretsize = sizeof(sasl_secret_t) + len;
		c->secret = xmalloc(c->secretsize);
		c->secret->len = len;
		memcpy(c->secret->data, c->password, len);
		c->secret->data[len] = '\0';
	}
	*psecret = c->secret;
	return SASL_OK;
}

/* smtpc_sasl_init - sasl_client_init once per process */
static int
smtpc_sasl_init(void)
{
	int r;

	if (smtpc_sasl_state == 0) {
		if ((r = sasl_client_init(NULL)) != SASL_OK) {
			log_warnx("smtpc: sasl_client_init: %s",
			    sasl_errstring(r, NULL, NULL));
			smtpc_sasl_state = -1;
		} else
			smtpc_sasl_state = 1;
	}
	return smtpc_sasl_state == 1 ? 0 : -1;
}

/* smtpc_auth_send - one SASL client message, base64, as AUTH or a line */
static void
smtpc_auth_send(struct smtpc *c, const char *mech, const char *out,
    unsigned outlen)
{
	unsigned size = (outlen + 2) / 3 * 4 + 1, enclen = 0;
	char *enc = xmalloc(size);

	if (out != NULL && sasl_encode64(out, outlen, enc, size, &enclen) !=
	    SASL_OK)
		log_panic("smtpc: sasl_encode64 buffer");
	enc[enclen] = '\0';
	if (mech == NULL)
		smtpc_write(c, true, "%s", enc);
	else if (out == NULL)
		smtpc_write(c, false, "AUTH %s", mech);
	else
		smtpc_write(c, true, "AUTH %s %s", mech, outlen ? enc : "=");
	freezero_(enc, size);
	smtpc_enter_state(c, S_AUTH);
}

/* smtpc_auth_start - AUTH with PLAIN or LOGIN through Cyrus SASL */
static void
smtpc_auth_start(struct smtpc *c)
{
	sasl_security_properties_t sp;
	const char *out = NULL, *mech = NULL;
	char mechs[16] = "";
	unsigned outlen = 0;
	int r;

	if (smtpc_sasl_init() == -1) {
		smtpc_fail_local(c, false, true, "SASL is not available");
		return;
	}
	c->sasl_cb[0] = (sasl_callback_t){ SASL_CB_LOG,
	    SMTPC_CB(smtpc_sasl_log), c };
	c->sasl_cb[1] = (sasl_callback_t){ SASL_CB_AUTHNAME,
	    SMTPC_CB(smtpc_sasl_name), c };
	c->sasl_cb[2] = (sasl_callback_t){ SASL_CB_USER,
	    SMTPC_CB(smtpc_sasl_name), c };
	c->sasl_cb[3] = (sasl_callback_t){ SASL_CB_PASS,
	    SMTPC_CB(smtpc_sasl_pass), c };
	c->sasl_cb[4] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	r = sasl_client_new(SMTPC_SASL_SERVICE, c->peer_name ? c->peer_name :
	    c->addrstr, NULL, NULL, c->sasl_cb, 0, &c->sasl);
	if (r != SASL_OK) {
		smtpc_fail_local(c, false, true, "sasl_client_new: %s",
		    sasl_errstring(r, NULL, NULL));
		return;
	}
	memset(&sp, 0, sizeof(sp));		/* no security layer */
	if (sasl_setprop(c->sasl, SASL_SEC_PROPS, &sp) != SASL_OK) {
		smtpc_fail_local(c, false, true, "sasl_setprop: %s",
		    sasl_errdetail(c->sasl));
		return;
	}
	if (c->auth_mechs & AUTH_PLAIN)
		strcat(mechs, "PLAIN ");
	if (c->auth_mechs & AUTH_LOGIN)
		strcat(mechs, "LOGIN");
	r = sasl_client_start(c->sasl, mechs, NULL, &out, &outlen, &mech);
	if ((r != SASL_OK && r != SASL_CONTINUE) || mech == NULL) {
		smtpc_fail_local(c, false, true, "SASL cannot start %s: %s",
		    mechs, sasl_errdetail(c->sasl));
		return;
	}
	log_debug("smtpc=%" PRIu64 " auth mechanism=%s", c->id, mech);
	smtpc_auth_send(c, mech, out, outlen);
}

/* smtpc_auth_step - a 334 challenge: answer it */
static void
smtpc_auth_step(struct smtpc *c, const struct smtpc_reply *r)
{
	const char *out = NULL;
	unsigned outlen = 0, declen = 0;
	size_t len = strlen(r->text);
	char *dec = xmalloc(len + 1);
	int rc;

	if (sasl_decode64(r->text, (unsigned)len, dec, (unsigned)len + 1,
	    &declen) != SASL_OK) {
		free(dec);
		smtpc_fail_local(c, false, false, "AUTH challenge is not "
		    "base64");
		return;
	}
	rc = sasl_client_step(c->sasl, dec, declen, NULL, &out, &outlen);
	free(dec);
	if (rc != SASL_OK && rc != SASL_CONTINUE) {
		smtpc_fail_local(c, false, false, "SASL step failed: %s",
		    sasl_errdetail(c->sasl));
		return;
	}
	smtpc_auth_send(c, NULL, out ? out : "", out ? outlen : 0);
}

/* --- the dialogue, by state --- */

/* smtpc_ready - report a usable connection */
static void
smtpc_ready(struct smtpc *c)
{
	smtpc_ready_cb ready = c->ready;

	c->ready_reported = true;
	c->peer.tls_version = c->peer.tls ? c->tls_version : NULL;
	c->peer.cipher = c->peer.tls ? c->cipher : NULL;
	log_info("smtpc=%" PRIu64 " ready host=%s esmtp=%s tls=%s "
	    "verified=%s pipelining=%s size=%" PRIu64 "%s", c->id, c->desc,
	    c->peer.esmtp ? "yes" : "no", c->peer.tls ? "yes" : "no",
	    c->peer.verified ? "yes" : "no",
	    c->peer.pipelining ? "yes" : "no", c->peer.size,
	    c->login ? " auth=yes" : "");
	smtpc_enter_state(c, S_READY);
	if (ready)
		ready(c->ready_arg, c, &c->peer, NULL, false);
}

/* smtpc_send_ehlo - EHLO; what we knew of the peer is forgotten */
static void
smtpc_send_ehlo(struct smtpc *c)
{
	c->peer.esmtp = false;
	c->peer.pipelining = false;
	c->peer.eightbitmime = false;
	c->peer.smtputf8 = false;
	c->peer.size = 0;
	c->offers_starttls = false;
	c->offers_size = false;
	c->auth_mechs = 0;
	smtpc_write(c, false, "EHLO %s", c->helo);
	smtpc_enter_state(c, S_EHLO);
}

/* smtpc_on_greeting - 220, or the host does not want us */
static void
smtpc_on_greeting(struct smtpc *c, const struct smtpc_reply *r)
{
	c->greeted = true;
	if (r->code / 100 != 2) {
		smtpc_fail(c, r, true, true);
		return;
	}
	smtpc_send_ehlo(c);
}

/* smtpc_on_ehlo - capabilities, or fall back to HELO */
static void
smtpc_on_ehlo(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		c->peer.esmtp = true;
		smtpc_after_ehlo(c);
		return;
	}
	if (r->code / 100 == 5 && !c->peer.tls &&
	    c->tls != SMTPC_TLS_REQUIRE && c->login == NULL) {
		smtpc_write(c, false, "HELO %s", c->helo);
		smtpc_enter_state(c, S_HELO);
		return;
	}
	smtpc_fail(c, r, true, true);
}

/* smtpc_on_helo - a plain SMTP peer: no extensions at all */
static void
smtpc_on_helo(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 != 2) {
		smtpc_fail(c, r, true, true);
		return;
	}
	smtpc_after_ehlo(c);
}

/* smtpc_after_ehlo - STARTTLS when wanted, else AUTH, else ready */
static void
smtpc_after_ehlo(struct smtpc *c)
{
	if (!c->peer.tls && (c->tls == SMTPC_TLS_OPPORTUNISTIC ||
	    c->tls == SMTPC_TLS_REQUIRE)) {
		if (c->offers_starttls) {
			smtpc_write(c, false, "STARTTLS");
			smtpc_enter_state(c, S_STARTTLS);
			return;
		}
		if (c->tls == SMTPC_TLS_REQUIRE) {
			smtpc_fail_local(c, true, true, "TLS is required, but "
			    "the host does not offer STARTTLS");
			return;
		}
	}
	smtpc_auth_or_ready(c);
}

/* smtpc_on_starttls - 220: handshake; else plaintext or failure */
static void
smtpc_on_starttls(struct smtpc *c, const struct smtpc_reply *r)
{
	char esc[128];

	if (r->code == 220) {
		smtpc_tls_start(c);
		return;
	}
	if (c->tls == SMTPC_TLS_REQUIRE) {
		smtpc_fail(c, r, true, true);
		return;
	}
	log_info("smtpc=%" PRIu64 " host=%s STARTTLS refused, going on "
	    "without TLS: %d %s", c->id, c->desc, r->code,
	    log_escape(r->text, (size_t)-1, esc, sizeof(esc)));
	smtpc_auth_or_ready(c);
}

/* smtpc_auth_or_ready - AUTH when we have credentials (over TLS only) */
static void
smtpc_auth_or_ready(struct smtpc *c)
{
	if (c->login == NULL) {
		smtpc_ready(c);
		return;
	}
	if (!c->peer.tls) {
		smtpc_fail_local(c, true, true, "AUTH needs TLS, and the "
		    "session is not encrypted");
		return;
	}
	if ((c->auth_mechs & (AUTH_PLAIN | AUTH_LOGIN)) == 0) {
		smtpc_fail_local(c, true, true, "the host offers neither AUTH "
		    "PLAIN nor AUTH LOGIN");
		return;
	}
	smtpc_auth_start(c);
}

/* smtpc_on_auth - 334: next round; 235: ready; else failure */
static void
smtpc_on_auth(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 334) {
		smtpc_auth_step(c, r);
		return;
	}
	sasl_dispose(&c->sasl);
	if (r->code / 100 == 2) {
		log_info("smtpc=%" PRIu64 " auth host=%s login=%s ok", c->id,
		    c->desc, c->login);
		smtpc_ready(c);
		return;
	}
	/* The server's reply, as is; a 5xx is a credentials problem that
	   the next host will share (the caller decides to defer). */
	smtpc_fail(c, r, r->code / 100 == 4, true);
}

/* smtpc_on_rset - the server forgot the half-failed transaction */
static void
smtpc_on_rset(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 != 2) {
		smtpc_fail(c, r, false, true);
		return;
	}
	c->need_rset = false;
	xfer_begin(c);
}

/* smtpc_on_mail - sender accepted, or every recipient gets the refusal */
static void
smtpc_on_mail(struct smtpc *c, const struct smtpc_reply *r)
{
	struct xfer *x = c->x;

	if (r->code / 100 != 2) {
		x->mail_failed = true;
		xfer_settle(x, r);
		if (!x->pipelined) {
			xfer_report(c, true);
			return;
		}
	} else if (!x->pipelined)
		smtpc_write(c, false, "RCPT TO:<%s>", x->txn.rcpts[0]);
	smtpc_enter_state(c, S_RCPT);
}

/* smtpc_on_rcpt - one recipient's reply, in order */
static void
smtpc_on_rcpt(struct smtpc *c, const struct smtpc_reply *r)
{
	struct xfer *x = c->x;
	size_t i = x->rcpt_next++;

	if (!x->mail_failed) {
		if (r->code / 100 == 2)
			x->naccepted++;
		else {
			reply_copy(&x->rcpt[i], r);
			x->settled[i] = true;
		}
	}
	if (x->rcpt_next < x->txn.nrcpts) {
		if (!x->pipelined)
			smtpc_write(c, false, "RCPT TO:<%s>",
			    x->txn.rcpts[x->rcpt_next]);
		smtpc_enter_state(c, S_RCPT);
		return;
	}
	if (x->pipelined) {		/* DATA went with the group */
		smtpc_enter_state(c, S_DATA);
		return;
	}
	if (x->naccepted == 0) {	/* MAIL accepted, nobody else */
		c->need_rset = true;
		xfer_report(c, true);
		return;
	}
	smtpc_write(c, false, "DATA");
	smtpc_enter_state(c, S_DATA);
}

/* body_add - dot-stuff n bytes into out, tracking line starts and the
   last two bytes */
static void
body_add(struct xfer *x, struct evbuffer *out, const char *p, size_t n)
{
	const char *end = p + n, *nl;

	if (n == 0)
		return;
	if (n >= 2) {
		x->last[0] = (unsigned char)end[-2];
		x->last[1] = (unsigned char)end[-1];
	} else {
		x->last[0] = x->last[1];
		x->last[1] = (unsigned char)p[0];
	}
	x->nsent += n;
	while (p < end) {
		if (x->bol && *p == '.')
			evbuffer_add(out, ".", 1);
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			evbuffer_add(out, p, (size_t)(end - p));
			x->bol = false;
			return;
		}
		evbuffer_add(out, p, (size_t)(nl + 1 - p));
		x->bol = true;
		p = nl + 1;
	}
}

/* body_fill - top up the output buffer; the final "." at the end */
static void
body_fill(struct smtpc *c)
{
	struct xfer *x = c->x;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t n;
	ssize_t got;

	while (evbuffer_get_length(out) < BODY_HIGHWATER) {
		if (x->pre_off < x->txn.prepend_len) {
			n = x->txn.prepend_len - x->pre_off;
			if (n > BODY_CHUNK)
				n = BODY_CHUNK;
			body_add(x, out, x->txn.prepend + x->pre_off, n);
			x->pre_off += n;
			continue;
		}
		if (x->off < x->txn.size) {
			n = x->txn.size - x->off < BODY_CHUNK ?
			    (size_t)(x->txn.size - x->off) : BODY_CHUNK;
			got = pread(x->txn.fd, body_buf, n,
			    x->txn.start + (off_t)x->off);
			if (got == -1 && errno == EINTR)
				continue;
			if (got <= 0) {
				smtpc_fail_local(c, false, false, "cannot read "
				    "the message file at %" PRIu64 ": %s",
				    x->off, got == 0 ? "file is shorter than "
				    "its size" : strerror(errno));
				return;
			}
			body_add(x, out, body_buf, (size_t)got);
			x->off += (uint64_t)got;
			continue;
		}
		if (x->nsent > 0 && (x->last[0] != '\r' || x->last[1] != '\n'))
			evbuffer_add(out, "\r\n", 2);
		evbuffer_add(out, ".\r\n", 3);
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		x->flushing = true;
		smtpc_enter_state(c, S_DOT);
		/* Until "." is written, the data block timeout applies. */
		smtpc_arm(c, c->to.data_block);
		return;
	}
}

/* smtpc_on_data - 354: stream the message; else the transaction ends */
static void
smtpc_on_data(struct smtpc *c, const struct smtpc_reply *r)
{
	struct xfer *x = c->x;

	if (r->code == 354) {
		if (x->mail_failed || x->naccepted == 0) {
			/* Pipelined, nobody to send to: end it empty. */
			x->discard = true;
			smtpc_write(c, false, ".");
			smtpc_enter_state(c, S_DOT);
			return;
		}
		x->bol = true;
		smtpc_enter_state(c, S_BODY);
		bufferevent_setwatermark(c->bev, EV_WRITE, BODY_LOWATER, 0);
		body_fill(c);
		return;
	}
	if (r->code / 100 == 2) {
		smtpc_fail_local(c, false, false, "protocol error: %d %s",
		    r->code, smtpc_strwhere(c->state));
		return;
	}
	if (!x->mail_failed && x->naccepted > 0)
		xfer_settle(x, r);
	c->need_rset = !x->mail_failed;
	xfer_report(c, true);
}

/* smtpc_on_dot - the reply to the end of data settles the accepted */
static void
smtpc_on_dot(struct smtpc *c, const struct smtpc_reply *r)
{
	struct xfer *x = c->x;

	if (x->discard) {
		c->need_rset = true;
		xfer_report(c, true);
		return;
	}
	xfer_settle(x, r);
	xfer_report(c, true);
}

/*
 * smtpc_on_reply - a complete reply, handled by state. 421 anywhere is
 * the server closing; 3xx is only right for DATA and AUTH.
 */
static void
smtpc_on_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	char esc[256];

	log_debug("smtpc=%" PRIu64 " <<< %d %s", c->id, r->code,
	    log_escape(r->text, (size_t)-1, esc, sizeof(esc)));
	if (c->state == S_QUIT) {
		smtpc_close(c);
		return;
	}
	if (r->code == 421) {
		smtpc_fail(c, r, true, false);
		return;
	}
	if (r->code / 100 == 3 && c->state != S_DATA && c->state != S_AUTH) {
		smtpc_fail_local(c, true, false, "protocol error: unexpected "
		    "%d %s", r->code, smtpc_strwhere(c->state));
		return;
	}
	switch (c->state) {
	case S_GREETING:
		smtpc_on_greeting(c, r);
		break;
	case S_EHLO:
		smtpc_on_ehlo(c, r);
		break;
	case S_HELO:
		smtpc_on_helo(c, r);
		break;
	case S_STARTTLS:
		smtpc_on_starttls(c, r);
		break;
	case S_AUTH:
		smtpc_on_auth(c, r);
		break;
	case S_RSET:
		smtpc_on_rset(c, r);
		break;
	case S_MAIL:
		smtpc_on_mail(c, r);
		break;
	case S_RCPT:
		smtpc_on_rcpt(c, r);
		break;
	case S_DATA:
		smtpc_on_data(c, r);
		break;
	case S_DOT:
		smtpc_on_dot(c, r);
		break;
	case S_BODY:		/* the server gave up on our data */
		if (r->code / 100 == 2)
			smtpc_fail_local(c, false, false, "protocol error: "
			    "reply %s", smtpc_strwhere(c->state));
		else
			smtpc_fail(c, r, false, false);
		break;
	default:
		smtpc_fail_local(c, true, false, "protocol error: unexpected "
		    "reply %s", smtpc_strwhere(c->state));
		break;
	}
}

/* smtpc_read - every complete reply line in the input, bounded */
static void
smtpc_read(struct smtpc *c)
{
	struct evbuffer *in;
	struct evbuffer_ptr eol;
	struct smtpc_reply r;
	char line[REPLY_LINE_MAX + 1];
	size_t eollen, len;
	int rc;

	while (!c->closed && c->bev != NULL) {
		in = bufferevent_get_input(c->bev);
		eol = evbuffer_search_eol(in, NULL, &eollen, EVBUFFER_EOL_CRLF);
		if (eol.pos == -1) {
			if (evbuffer_get_length(in) > REPLY_LINE_MAX)
				smtpc_fail_local(c, true, false, "protocol "
				    "error: reply line longer than %d bytes %s",
				    REPLY_LINE_MAX, smtpc_strwhere(c->state));
			return;
		}
		if ((size_t)eol.pos > REPLY_LINE_MAX) {
			smtpc_fail_local(c, true, false, "protocol error: "
			    "reply line longer than %d bytes %s",
			    REPLY_LINE_MAX, smtpc_strwhere(c->state));
			return;
		}
		len = (size_t)eol.pos;
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eollen);
		line[len] = '\0';
		if ((rc = reply_line(c, line, len)) == -1) {
			smtpc_fail_local(c, true, false, "protocol error: "
			    "%s %s", c->rerr, smtpc_strwhere(c->state));
			return;
		}
		if (rc == 0)
			continue;
		r.code = c->rcode;
		memcpy(r.enhanced, c->renh, sizeof(r.enhanced));
		r.text = c->rtext;
		r.local = false;
		smtpc_on_reply(c, &r);
	}
}

/* --- loop callbacks --- */

/* smtpc_read_cb - input arrived */
static void
smtpc_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	(void)bev;
	smtpc_hold(c);
	smtpc_read(c);
	smtpc_release(c);
}

/* smtpc_write_cb - output drained to the low watermark: refill the
   message, or start the wait for the reply to "." once it is all out */
static void
smtpc_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	smtpc_hold(c);
	if (c->state == S_BODY) {
		smtpc_arm(c, c->to.data_block);		/* progress */
		body_fill(c);
	} else if (c->state == S_DOT && c->x && c->x->flushing &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		c->x->flushing = false;
		smtpc_arm(c, c->to.data_term);
	}
	smtpc_release(c);
}

/* smtpc_connected - TCP is up: TLS first (implicit) or the greeting */
static void
smtpc_connected(struct smtpc *c)
{
	log_debug("smtpc=%" PRIu64 " connected host=%s", c->id, c->desc);
	if (c->tls == SMTPC_TLS_IMPLICIT) {
		smtpc_tls_start(c);
		return;
	}
	smtpc_enter_state(c, S_GREETING);
}

/* smtpc_event_cb - connected, handshake done, EOF or error */
static void
smtpc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;
	unsigned long e;
	int serr = EVUTIL_SOCKET_ERROR(), soerr = 0;
	socklen_t len = sizeof(soerr);

	smtpc_hold(c);
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == S_CONNECT)
			smtpc_connected(c);
		else if (c->state == S_TLS)
			smtpc_tls_done(c);
		smtpc_release(c);
		return;
	}
	e = bufferevent_get_openssl_error(bev);
	if (c->state == S_QUIT)
		smtpc_close(c);
	else if (c->state == S_TLS)
		smtpc_tls_error(c, e);
	else if (c->state == S_CONNECT) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) ==
		    0 && soerr != 0)
			serr = soerr;
		smtpc_fail_local(c, true, false, "cannot connect: %s",
		    serr ? strerror(serr) : "connection failed");
	} else if (what & BEV_EVENT_EOF)
		smtpc_fail_local(c, true, false, "lost connection %s",
		    smtpc_strwhere(c->state));
	else if (e != 0) {
		char es[256];

		smtpc_fail_local(c, true, false, "TLS error %s: %s",
		    smtpc_strwhere(c->state),
		    smtpc_ssl_errstr(e, es, sizeof(es)));
	} else
		smtpc_fail_local(c, true, false, "%s error %s: %s",
		    (what & BEV_EVENT_WRITING) ? "write" : "read",
		    smtpc_strwhere(c->state),
		    serr ? strerror(serr) : "connection failed");
	smtpc_release(c);
}

/* smtpc_timer_cb - the current step took too long */
static void
smtpc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)fd;
	(void)what;
	smtpc_hold(c);
	if (c->state == S_QUIT)
		smtpc_close(c);
	else
		smtpc_fail_local(c, true, false, "timeout %s",
		    smtpc_strwhere(c->state));
	smtpc_release(c);
}

/* --- opening --- */

/* smtpc_name_ok - a name fit for a command line: printable, no space */
static bool
smtpc_name_ok(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 255)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* smtpc_open_failed - deferred: the connect could not even start */
static void
smtpc_open_failed(struct smtpc *c)
{
	smtpc_fail(c, &c->lost, true, false);
}

/* smtpc_check_params - NULL, or why p cannot be used */
static const char *
smtpc_check_params(const struct smtpc_params *p)
{
	if (p->addr == NULL || p->addrlen > sizeof(struct sockaddr_storage) ||
	    (p->addr->sa_family == AF_INET &&
	    p->addrlen < sizeof(struct sockaddr_in)) ||
	    (p->addr->sa_family == AF_INET6 &&
	    p->addrlen < sizeof(struct sockaddr_in6)) ||
	    (p->addr->sa_family != AF_INET && p->addr->sa_family != AF_INET6))
		return "bad address";
	if (p->source && (p->sourcelen > sizeof(struct sockaddr_storage) ||
	    p->source->sa_family != p->addr->sa_family))
		return "bad source address";
	if (!smtpc_name_ok(p->helo))
		return "bad HELO name";
	if (p->peer_name && !smtpc_name_ok(p->peer_name))
		return "bad peer name";
	if (p->tls != SMTPC_TLS_NONE && p->ssl_ctx == NULL)
		return "TLS wanted but no TLS context";
	if (p->auth_login != NULL && (p->auth_password == NULL ||
	    p->tls == SMTPC_TLS_NONE || !smtpc_name_ok(p->auth_login)))
		return "AUTH needs a login, a password and TLS";
	return NULL;
}

/* smtpc_copy_params - what the connection keeps of p */
static void
smtpc_copy_params(struct smtpc *c, const struct smtpc_params *p)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	size_t n;
	int port;

	memcpy(&c->addr, p->addr, p->addrlen);
	c->addrlen = p->addrlen;
	if (p->addr->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)p->addr;
		inet_ntop(AF_INET, &sin->sin_addr, c->addrstr,
		    sizeof(c->addrstr));
		port = ntohs(sin->sin_port);
	} else {
		sin6 = (const struct sockaddr_in6 *)p->addr;
		inet_ntop(AF_INET6, &sin6->sin6_addr, c->addrstr,
		    sizeof(c->addrstr));
		port = ntohs(sin6->sin6_port);
	}
	c->helo = xstrdup(p->helo);
	if (p->peer_name) {
		c->peer_name = xstrdup(p->peer_name);
		n = strlen(c->peer_name);
		if (n > 1 && c->peer_name[n - 1] == '.')
			c->peer_name[n - 1] = '\0';
	}
	c->desc = xasprintf("%s[%s]:%d", c->peer_name ? c->peer_name : "",
	    c->addrstr, port);
	c->tls = p->tls;
	c->no_verify = p->no_verify;
	c->ssl_ctx = p->ssl_ctx;
	if (p->auth_login) {
		c->login = xstrdup(p->auth_login);
		c->password = xstrdup(p->auth_password);
	}
	c->to.connect = p->timeouts.connect ? p->timeouts.connect : 30000;
	c->to.greeting = p->timeouts.greeting ? p->timeouts.greeting : 300000;
	c->to.command = p->timeouts.command ? p->timeouts.command : 300000;
	c->to.data_init = p->timeouts.data_init ? p->timeouts.data_init :
	    120000;
	c->to.data_block = p->timeouts.data_block ? p->timeouts.data_block :
	    180000;
	c->to.data_term = p->timeouts.data_term ? p->timeouts.data_term :
	    600000;
}

/* smtpc_open - start connecting; see smtpc.h */
struct smtpc *
smtpc_open(struct event_base *base, const struct smtpc_params *p,
    smtpc_ready_cb ready, void *arg, char **err)
{
	struct smtpc *c;
	const char *why;

	if ((why = smtpc_check_params(p)) != NULL) {
		*err = xasprintf("smtpc: %s", why);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->id = smtpc_next_id++;
	c->base = base;
	c->ready = ready;
	c->ready_arg = arg;
	c->state = S_CONNECT;
	smtpc_copy_params(c, p);
	c->fd = socket(p->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		*err = xasprintf("smtpc: socket: %s", strerror(errno));
		goto fail;
	}
	if (p->source && bind(c->fd, p->source, p->sourcelen) == -1) {
		*err = xasprintf("smtpc: bind source address: %s",
		    strerror(errno));
		goto fail;
	}
	/*
	 * Commands and the message leave in whole buffers already. With
	 * Nagle, the last small segment of a message (its end, ".") waits
	 * for the ACK of the one before it, which the server's kernel may
	 * delay by 40 ms: each transaction of a message larger than one
	 * write paid that, and 20 connections delivered 64 KiB messages at
	 * ~400 a second, 37 ms each, to a local sink that was idle.
	 */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
	    sizeof(int));
	c->timer = evtimer_new(base, smtpc_timer_cb, c);
	c->defer = event_new(base, -1, 0, smtpc_defer_cb, c);
	c->bev = bufferevent_socket_new(base, c->fd, 0);
	if (c->timer == NULL || c->defer == NULL || c->bev == NULL) {
		*err = xasprintf("smtpc: libevent failed");
		goto fail;
	}
	smtpc_attach(c);
	log_info("smtpc=%" PRIu64 " connect host=%s tls=%s", c->id, c->desc,
	    c->tls == SMTPC_TLS_NONE ? "none" :
	    c->tls == SMTPC_TLS_OPPORTUNISTIC ? "opportunistic" :
	    c->tls == SMTPC_TLS_REQUIRE ? "require" : "implicit");
	smtpc_arm(c, smtpc_state_timeout(c, S_CONNECT));
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->addr,
	    (int)c->addrlen) == -1) {
		reply_local(&c->lost, 0, "", "%s: cannot connect: %s",
		    c->desc, strerror(errno));
		smtpc_defer(c, smtpc_open_failed);
	}
	return c;
fail:
	smtpc_release_io(c);
	smtpc_free(c);
	return NULL;
}

/* --- transactions --- */

/* smtpc_addr_ok - an address fit for <...>: no controls, no brackets */
static bool
smtpc_addr_ok(const char *s)
{
	if (s == NULL || strlen(s) > 1000)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '<' ||
		    *s == '>')
			return false;
	return true;
}

/* xfer_begin - MAIL, and with PIPELINING every RCPT and DATA with it */
static void
xfer_begin(struct smtpc *c)
{
	struct xfer *x = c->x;
	char size[40] = "";
	size_t i;

	x->pipelined = c->peer.pipelining;
	if (c->offers_size)
		snprintf(size, sizeof(size), " SIZE=%" PRIu64,
		    (uint64_t)x->txn.prepend_len + x->txn.size);
	smtpc_write(c, false, "MAIL FROM:<%s>%s%s%s", x->txn.sender, size,
	    x->txn.body_8bit && c->peer.eightbitmime ? " BODY=8BITMIME" : "",
	    x->txn.smtputf8 ? " SMTPUTF8" : "");
	if (x->pipelined) {
		for (i = 0; i < x->txn.nrcpts; i++)
			smtpc_write(c, false, "RCPT TO:<%s>", x->txn.rcpts[i]);
		smtpc_write(c, false, "DATA");
	}
	smtpc_enter_state(c, S_MAIL);
}

/* xfer_local_done - deferred: a transaction decided before sending */
static void
xfer_local_done(struct smtpc *c)
{
	xfer_report(c, true);
}

/* xfer_dead_done - deferred: a transaction on a lost connection */
static void
xfer_dead_done(struct smtpc *c)
{
	xfer_report(c, false);
}

/* xfer_local_check - 0, or -1 with every recipient settled locally */
static int
xfer_local_check(struct smtpc *c, struct xfer *x)
{
	struct smtpc_reply r;
	uint64_t total = (uint64_t)x->txn.prepend_len + x->txn.size;
	size_t i;

	memset(&r, 0, sizeof(r));
	if (!smtpc_addr_ok(x->txn.sender))
		reply_local(&r, 553, "5.1.7", "bad sender address syntax");
	else if (x->txn.smtputf8 && !c->peer.smtputf8)
		reply_local(&r, 553, "5.6.7", "%s does not support SMTPUTF8, "
		    "which the message needs", c->desc);
	else if (c->peer.size > 0 && total > c->peer.size)
		reply_local(&r, 552, "5.3.4", "message size %" PRIu64 " "
		    "exceeds the limit %" PRIu64 " of %s", total, c->peer.size,
		    c->desc);
	if (r.text != NULL) {
		xfer_settle(x, &r);
		reply_clear(&r);
		return -1;
	}
	for (i = 0; i < x->txn.nrcpts; i++)
		if (!smtpc_addr_ok(x->txn.rcpts[i]))
			break;
	if (i == x->txn.nrcpts)
		return 0;
	reply_local(&r, 553, "5.1.3", "bad recipient address syntax");
	for (i = 0; i < x->txn.nrcpts; i++)
		if (!smtpc_addr_ok(x->txn.rcpts[i])) {
			reply_copy(&x->rcpt[i], &r);
			x->settled[i] = true;
		}
	reply_clear(&r);
	/* XXX the good ones are not sent: the caller retries them alone. */
	reply_local(&r, 451, "4.3.0", "not sent: another recipient of the "
	    "transaction has a bad address");
	xfer_settle(x, &r);
	reply_clear(&r);
	return -1;
}

/* smtpc_send - one transaction; see smtpc.h */
int
smtpc_send(struct smtpc *c, const struct smtpc_txn *txn, smtpc_done_cb done,
    void *arg)
{
	struct xfer *x;

	if (c == NULL || c->closed || txn == NULL || txn->nrcpts == 0 ||
	    txn->rcpts == NULL || done == NULL || c->x != NULL ||
	    (c->state != S_READY && c->state != S_DEAD) ||
	    (txn->prepend_len > 0 && txn->prepend == NULL))
		return -1;
	x = xcalloc(1, sizeof(*x));
	x->txn = *txn;
	x->done = done;
	x->arg = arg;
	x->rcpt = xcalloc(txn->nrcpts, sizeof(*x->rcpt));
	x->settled = xcalloc(txn->nrcpts, sizeof(*x->settled));
	c->x = x;
	if (c->state == S_DEAD) {
		xfer_settle(x, &c->lost);
		smtpc_defer(c, xfer_dead_done);
		return 0;
	}
	if (xfer_local_check(c, x) == -1) {
		smtpc_defer(c, xfer_local_done);
		return 0;
	}
	if (c->need_rset) {
		smtpc_write(c, false, "RSET");
		smtpc_enter_state(c, S_RSET);
		return 0;
	}
	xfer_begin(c);
	return 0;
}

/* --- closing --- */

/* smtpc_close - release everything now; the struct goes when no frame
   holds it */
static void
smtpc_close(struct smtpc *c)
{
	if (c->closed)
		return;
	log_debug("smtpc=%" PRIu64 " close host=%s state=%s", c->id, c->desc,
	    smtpc_strstate(c->state));
	c->closed = true;
	c->ready = NULL;
	smtpc_release_io(c);
	if (c->defer)
		event_del(c->defer);
	xfer_free(c->x);
	c->x = NULL;
	if (c->depth == 0)
		smtpc_free(c);
}

/* smtpc_quit - QUIT when idle, else close; no callback afterwards */
void
smtpc_quit(struct smtpc *c)
{
	if (c == NULL || c->closed)
		return;
	c->ready = NULL;
	if (c->state == S_QUIT)
		return;
	if (c->state == S_READY && c->x == NULL && c->bev != NULL) {
		smtpc_write(c, false, "QUIT");
		smtpc_enter_state(c, S_QUIT);
		return;
	}
	smtpc_close(c);
}

/* smtpc_abort - close and free now; no callback afterwards */
void
smtpc_abort(struct smtpc *c)
{
	if (c == NULL)
		return;
	smtpc_close(c);
}
