/*
 * session - the SMTP submission state machine; see session.h and
 * submit/REPLIES.md for every reply it gives.
 *
 * Session state (who the client is: the principal; TLS) is kept apart
 * from transaction state (struct txn: sender, recipients, the message on
 * its way through queue/inject), which is freed on RSET, EHLO, STARTTLS,
 * commit and abort. Every reply is sent by its id (submit/reply.h).
 *
 * Input is processed as long as it is available and the session is in a
 * state that reads (STATE_COMMAND, STATE_AUTH, STATE_DATA), so pipelined
 * commands are answered in order; replies collect in the output buffer and
 * leave together when the callback returns (RFC 2920). A state that waits
 * (the queue commit, the STARTTLS switch, the TLS handshake) stops the
 * processing; it resumes where it left off.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/address.h"
#include "common/alloc.h"
#include "common/dns.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config/principal.h"
#include "queue/inject.h"
#include "queue/queue.h"
#include "submit/auth.h"
#include "submit/dataread.h"
#include "submit/guard.h"
#include "submit/policy.h"
#include "submit/rates.h"
#include "submit/reply.h"
#include "submit/server.h"
#include "submit/session.h"
#include "submit/smtp_parse.h"
#include "submit/tls.h"

#define REGISTRY_BUCKETS	4096
#define DATA_CHUNK		65536	/* bytes fed to dataread at a time */
#define OUTPUT_HIGHWATER	65536	/* stop reading while replies pile up */
#define READ_HIGHWATER_MIN	65536
#define QUEUE_MIN_FILES		100	/* inodes that must stay free */
#define LINGER_SECONDS		2	/* discarding input before close */
#define LINGER_BYTES		(1024 * 1024)

enum session_state {
	STATE_HANDSHAKE,	/* implicit TLS or STARTTLS handshake */
	STATE_COMMAND,		/* reading command lines */
	STATE_AUTH,		/* reading an AUTH response line */
	STATE_DATA,		/* reading message data */
	STATE_COMMIT,		/* waiting for the queue; input paused */
	STATE_RCPT_WAIT,	/* looking up a recipient's domain; input
				   paused */
	STATE_TARPIT,		/* holding the answer to a failed AUTH;
				   input paused */
	STATE_TLS_FLUSH,	/* flushing "220" before STARTTLS */
	STATE_CLOSING,		/* flushing the last reply */
	STATE_LINGER,		/* reply sent, write side shut: discarding
				   input until EOF, so that closing does not
				   reset the connection and lose the reply */
};

struct txn {
	struct address		 from;
	struct smtp_mail_params	 params;
	char			**rcpts;	/* "local@domain" */
	size_t			 nrcpts;
	struct inject_msg	*im;		/* from DATA to the dot */
	struct dataread		 dr;
	double			 data_end;	/* metrics_now() at the dot */
};

struct session {
	uint64_t			 id;
	struct session			*hnext;		/* registry chain */
	struct server			*srv;
	const struct config		*cfg;
	const struct listen_config	*lc;
	int				 fd;
	struct bufferevent		*bev;
	SSL				*ssl;
	enum session_state		 state;
	char				 ip[INET6_ADDRSTRLEN];
	char				 sasl_remote[INET6_ADDRSTRLEN + 8];
	char				 sasl_local[INET6_ADDRSTRLEN + 8];
	char				 helo[256];	/* sanitized */
	int				 helo_seen;	/* 0, 'H' or 'E' */
	bool				 tls;
	char				 tls_info[128];
	struct auth_session		*auth;
	char				 auth_mech[21];
	struct principal		 who;		/* the submitter */
	bool				 discard_line;	/* in an over-long line */
	bool				 output_blocked;
	bool				 expired;	/* lifetime passed in commit */
	const char			*close_reason;	/* static text */
	unsigned			 errors;
	unsigned			 ncommands;
	unsigned			 naccepted;
	struct event			*lifetime;
	struct txn			*txn;
	int				 rcpt_lookup;	/* dns id, or 0 */
	struct event			*rcpt_timer;	/* bounds the lookup */
	char				*rcpt_addr;	/* waiting for it */
	char				*rcpt_domain;
	struct keyring			*keys;		/* DKIM keys at start */
	struct event			*tarpit;	/* ends STATE_TARPIT */
	struct event			*linger;	/* STATE_LINGER reads */
	size_t				 lingered;	/* bytes discarded */
	bool				 exempt;	/* limits.exempt_networks */
};

struct command {
	enum smtp_verb	  verb;
	int		(*check)(struct session *, const char *);
	void		(*run)(struct session *, const char *);
};

static struct session	*registry[REGISTRY_BUCKETS];
static uint64_t		 next_session_id = 1;
static char		*linebuf;		/* one command line */
static size_t		 linebuf_size;
static char		 databuf[DATA_CHUNK];	/* dataread output */
static bool		 draining;	/* session_drain: stopping */

static void	session_read_cb(struct bufferevent *, void *);
static void	session_write_cb(struct bufferevent *, void *);
static void	session_event_cb(struct bufferevent *, short, void *);
static void	session_process(struct session *);
static void	session_free(struct session *, const char *reason);
static void	session_linger(struct session *);
static const char *session_login(const struct session *);
static void	session_start(struct server *, const struct listen_config *,
		    int, const struct sockaddr *, const char *, bool,
		    const struct local_sender *, const char *, unsigned);

/* session_strstate - state name for logs */
static const char *
session_strstate(enum session_state st)
{
	switch (st) {
	case STATE_HANDSHAKE:	return "handshake";
	case STATE_COMMAND:	return "command";
	case STATE_AUTH:	return "auth";
	case STATE_DATA:	return "data";
	case STATE_COMMIT:	return "commit";
	case STATE_RCPT_WAIT:	return "rcpt-wait";
	case STATE_TARPIT:	return "tarpit";
	case STATE_TLS_FLUSH:	return "tls-flush";
	case STATE_CLOSING:	return "closing";
	case STATE_LINGER:	return "linger";
	}
	return "?";
}

/* session_enter_state - the one place the state changes; traced */
static void
session_enter_state(struct session *s, enum session_state st)
{
	log_debug("session=%" PRIu64 " state %s -> %s", s->id,
	    session_strstate(s->state), session_strstate(st));
	s->state = st;
}

/* registry_add, registry_remove, session_lookup - sessions by id */
static void
registry_add(struct session *s)
{
	struct session **pp = &registry[s->id % REGISTRY_BUCKETS];

	s->hnext = *pp;
	*pp = s;
}

static void
registry_remove(struct session *s)
{
	struct session **pp = &registry[s->id % REGISTRY_BUCKETS];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			return;
		}
	log_panic("session %" PRIu64 " not in registry", s->id);
}

static struct session *
session_lookup(uint64_t id)
{
	struct session *s;

	for (s = registry[id % REGISTRY_BUCKETS]; s; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

/* session_set_timeout - read timeout for the current state */
static void
session_set_timeout(struct session *s, unsigned read_secs)
{
	struct timeval rtv = { read_secs, 0 };
	struct timeval wtv = { s->cfg->limits.command_timeout, 0 };

	bufferevent_set_timeouts(s->bev, &rtv, &wtv);
}

/* session_attach_bev - callbacks, timeouts and watermarks of a new bev */
static void
session_attach_bev(struct session *s)
{
	size_t hw = s->cfg->limits.line_length;

	if (hw < AUTH_LINE_MAX + 2)
		hw = AUTH_LINE_MAX + 2;
	hw = hw + 1 < READ_HIGHWATER_MIN ? READ_HIGHWATER_MIN : hw + 1;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, hw);
	session_set_timeout(s, s->cfg->limits.command_timeout);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* session_send_line - queue one reply line of n bytes (line has room
   for CRLF after them); log refusals and count them as errors */
static void
session_send_line(struct session *s, char *line, size_t n)
{
	char esc[256];

	if (line[0] == '4' || line[0] == '5') {
		s->errors++;
		log_info("session=%" PRIu64 " reply client=%s login=%s "
		    "text=\"%s\"", s->id, s->ip, session_login(s),
		    log_escape(line, n, esc, sizeof(esc)));
	}
	line[n++] = '\r';
	line[n++] = '\n';
	evbuffer_add(bufferevent_get_output(s->bev), line, n);
}

/*
 * session_reply_id - send reply id of submit/reply.h with its values
 * (as its text's format takes them); a refusal is counted under the
 * reason the table gives it. Every reply goes this way, except on the
 * DATA path (below) until it passes ids too.
 */
static void
session_reply_id(struct session *s, enum reply_id id, ...)
{
	char line[REPLY_MAX + 3];
	va_list ap;
	size_t n;

	va_start(ap, id);
	n = reply_vmake(line, sizeof(line) - 2, id, ap);
	va_end(ap);
	session_send_line(s, line, n);
}

/* session_reply_parse - a parser's error as its reply */
static void
session_reply_parse(struct session *s, const struct smtp_error *e)
{
	session_reply_id(s, e->id, e->text);
}

/*
 * session_close - stop reading and free the session once the reply
 * already queued has been written (session_write_cb). Never frees here,
 * so callers may still touch s until they return to the loop.
 */
static void
session_close(struct session *s, const char *reason)
{
	s->close_reason = reason;
	session_enter_state(s, STATE_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_trigger(s->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS |
	    BEV_TRIG_DEFER_CALLBACKS);
}

/* txn_free - forget the transaction; an unfinished message file goes */
static void
txn_free(struct session *s)
{
	struct txn *t = s->txn;
	size_t i;

	if (t == NULL)
		return;
	inject_abort(t->im);
	for (i = 0; i < t->nrcpts; i++)
		free(t->rcpts[i]);
	free(t->rcpts);
	free(t);
	s->txn = NULL;
}

/* session_login - the login for logs, "-" when there is none */
static const char *
session_login(const struct session *s)
{
	const char *login = principal_login_name(&s->who);

	return login ? login : "-";
}

/* session_owns - may this client use this address? */
static bool
session_owns(struct session *s, const struct address *a)
{
	return policy_owns(s->cfg, &s->who, a);
}

/* session_from_ok - inject's From: check: the same policy */
static bool
session_from_ok(const struct address *a, void *arg)
{
	return session_owns(arg, a);
}

/* session_auth_offered - is AUTH available in this session now? */
static bool
session_auth_offered(struct session *s)
{
	if (s->srv->auth_mechs[0] == '\0')
		return false;
	if (s->lc->trusted)
		return s->lc->allow_plaintext_auth;
	return s->tls || s->lc->allow_plaintext_auth;
}

/* session_sanitize_helo - keep the client's name printable for headers */
static void
session_sanitize_helo(struct session *s, const char *arg)
{
	size_t i;

	for (i = 0; arg[i] && arg[i] != ' ' && i < sizeof(s->helo) - 1; i++)
		s->helo[i] = (arg[i] > ' ' && arg[i] < 0x7f) ? arg[i] : '?';
	s->helo[i] = '\0';
}

/* --- commands: check ("may it run now?") and run ("do it") --- */

static int
check_helo_seen(struct session *s, const char *args)
{
	(void)args;
	if (!s->helo_seen) {
		session_reply_id(s, REPLY_NEED_HELO);
		return -1;
	}
	return 0;
}

static void
cmd_helo(struct session *s, const char *args)
{
	struct smtp_error e;

	if (smtp_parse_helo(args, &e) == -1) {
		session_reply_parse(s, &e);
		return;
	}
	txn_free(s);
	session_sanitize_helo(s, args);
	s->helo_seen = 'H';
	session_reply_id(s, REPLY_HELO, s->cfg->hostname);
}

static void
cmd_ehlo(struct session *s, const char *args)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	int code = reply_get(REPLY_EHLO)->code;
	struct smtp_error e;

	if (smtp_parse_helo(args, &e) == -1) {
		session_reply_parse(s, &e);
		return;
	}
	txn_free(s);
	session_sanitize_helo(s, args);
	s->helo_seen = 'E';
	/* multi-line: the code is the table's, the lines are built here */
	evbuffer_add_printf(out, "%d-%s\r\n%d-PIPELINING\r\n"
	    "%d-SIZE %" PRIu64 "\r\n%d-8BITMIME\r\n"
	    "%d-ENHANCEDSTATUSCODES\r\n%d-SMTPUTF8\r\n",
	    code, s->cfg->hostname, code, code, s->cfg->limits.message_size,
	    code, code, code);
	if (s->lc->tls == LISTEN_TLS_STARTTLS && !s->tls)
		evbuffer_add_printf(out, "%d-STARTTLS\r\n", code);
	if (session_auth_offered(s))
		evbuffer_add_printf(out, "%d-AUTH %s\r\n", code,
		    s->srv->auth_mechs);
	evbuffer_add_printf(out, "%d HELP\r\n", code);
}

static int
check_starttls(struct session *s, const char *args)
{
	if (s->tls) {
		session_reply_id(s, REPLY_TLS_ACTIVE);
		return -1;
	}
	if (s->lc->tls != LISTEN_TLS_STARTTLS || s->srv->ssl_ctx == NULL) {
		session_reply_id(s, REPLY_TLS_UNAVAILABLE);
		return -1;
	}
	if (*args) {
		session_reply_id(s, REPLY_STARTTLS_SYNTAX);
		return -1;
	}
	return 0;
}

static void
cmd_starttls(struct session *s, const char *args)
{
	(void)args;
	session_reply_id(s, REPLY_STARTTLS_READY);
	/* Anything pipelined after STARTTLS is plaintext injection. */
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	bufferevent_disable(s->bev, EV_READ);
	session_enter_state(s, STATE_TLS_FLUSH);
}

static int
check_auth(struct session *s, const char *args)
{
	(void)args;
	if (!session_auth_offered(s)) {
		if (!s->lc->trusted && s->lc->tls == LISTEN_TLS_STARTTLS &&
		    !s->tls)
			session_reply_id(s, REPLY_AUTH_NEED_TLS);
		else
			session_reply_id(s, REPLY_AUTH_NOT_ENABLED);
		return -1;
	}
	if (s->who.kind == PRINCIPAL_LOGIN) {
		session_reply_id(s, REPLY_AUTH_ALREADY);
		return -1;
	}
	if (s->txn) {
		session_reply_id(s, REPLY_AUTH_IN_TRANSACTION);
		return -1;
	}
	return 0;
}

/* session_tarpit_end - the delay after a failed AUTH is over: answer,
   and read what the client sent meanwhile */
static void
session_tarpit_end(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	if (s->state != STATE_TARPIT)
		return;
	session_enter_state(s, STATE_COMMAND);
	session_reply_id(s, REPLY_AUTH_FAILED);
	session_set_timeout(s, s->cfg->limits.command_timeout);
	session_process(s);
}

/* session_auth_failed - a wrong password (or user): count it against
   the address and the login tried, then answer 535 after
   limits.auth_failure_delay unless the client is exempt */
static void
session_auth_failed(struct session *s)
{
	const char *tried = auth_attempted(s->auth);
	struct timeval tv = { s->cfg->limits.auth_failure_delay, 0 };
	char until[LOG_UTC_LEN];
	enum reply_id locked;
	time_t now = time(NULL);

	locked = guard_auth_locked(s->ip, s->exempt, tried, now, until);
	if (locked != REPLY_NONE) {
		/* the same answer as for the right password: no oracle */
		session_reply_id(s, locked, until);
		session_close(s, "auth lockout");
		return;
	}
	log_info("session=%" PRIu64 " auth client=%s mech=%s result=fail",
	    s->id, s->ip, s->auth_mech);
	guard_auth_failed(s->cfg, s->ip, s->exempt, tried, now);
	metrics_inc(M_AUTH_FAILURE);
	if (s->exempt || tv.tv_sec == 0) {
		session_reply_id(s, REPLY_AUTH_FAILED);
		return;
	}
	if (s->tarpit == NULL &&
	    (s->tarpit = evtimer_new(s->srv->base, session_tarpit_end, s)) ==
	    NULL) {
		session_reply_id(s, REPLY_AUTH_FAILED);
		return;
	}
	session_enter_state(s, STATE_TARPIT);
	(void)evtimer_add(s->tarpit, &tv);
}

/* session_auth_result - answer one AUTH step */
static void
session_auth_result(struct session *s, enum auth_result r,
    const char *challenge, const char *login)
{
	char until[LOG_UTC_LEN];
	enum reply_id locked;

	if (r != AUTH_CONTINUE)
		session_enter_state(s, STATE_COMMAND);
	switch (r) {
	case AUTH_CONTINUE:
		session_reply_id(s, REPLY_AUTH_CHALLENGE, challenge ?
		    challenge : "");
		session_enter_state(s, STATE_AUTH);
		return;
	case AUTH_OK:
		if ((locked = guard_auth_locked(s->ip, s->exempt, login,
		    time(NULL), until)) != REPLY_NONE) {
			log_info("session=%" PRIu64 " auth client=%s mech=%s "
			    "login=%s result=locked", s->id, s->ip,
			    s->auth_mech, login);
			session_reply_id(s, locked, until);
			session_close(s, "auth lockout");
			break;
		}
		principal_login(&s->who, login);
		log_info("session=%" PRIu64 " auth client=%s mech=%s login=%s "
		    "result=ok", s->id, s->ip, s->auth_mech, s->who.name);
		session_reply_id(s, REPLY_AUTH_OK);
		break;
	case AUTH_FAIL:
		session_auth_failed(s);
		break;
	case AUTH_CANCEL:
		session_reply_id(s, REPLY_AUTH_CANCELLED);
		break;
	case AUTH_BAD:
		session_reply_id(s, REPLY_AUTH_MALFORMED);
		break;
	case AUTH_NOMECH:
		session_reply_id(s, REPLY_AUTH_NO_MECHANISM);
		break;
	case AUTH_TEMP:
		session_reply_id(s, REPLY_AUTH_TEMPORARY);
		break;
	}
	/* A finished or failed exchange starts afresh next time. */
	auth_free(s->auth);
	s->auth = NULL;
}

static void
cmd_auth(struct session *s, const char *args)
{
	const char *initial, *challenge = NULL, *login = NULL;
	char until[LOG_UTC_LEN];
	struct smtp_error e;
	enum auth_result r;
	enum reply_id locked;

	if (smtp_parse_auth(args, s->auth_mech, &initial, &e) == -1) {
		session_reply_parse(s, &e);
		return;
	}
	if ((locked = guard_auth_locked(s->ip, s->exempt, NULL, time(NULL),
	    until)) != REPLY_NONE) {
		session_reply_id(s, locked, until);
		session_close(s, "auth lockout");
		return;
	}
	if ((s->auth = auth_new(s->sasl_local, s->sasl_remote)) == NULL) {
		session_reply_id(s, REPLY_AUTH_TEMPORARY);
		return;
	}
	r = auth_start(s->auth, s->auth_mech, initial, &challenge, &login);
	session_auth_result(s, r, challenge, login);
}

/* session_auth_line - the client's answer to a 334 challenge */
static void
session_auth_line(struct session *s, const char *line)
{
	const char *challenge = NULL, *login = NULL;
	enum auth_result r;

	r = auth_step(s->auth, line, &challenge, &login);
	session_auth_result(s, r, challenge, login);
}

static int
check_mail(struct session *s, const char *args)
{
	if (check_helo_seen(s, args) == -1)
		return -1;
	if (!principal_may_send(&s->who)) {
		session_reply_id(s, REPLY_AUTH_REQUIRED);
		return -1;
	}
	if (s->txn) {
		session_reply_id(s, REPLY_NESTED_MAIL);
		return -1;
	}
	return 0;
}

/*
 * session_reply_rates - a refusal from submit/rates.h: who's messages or
 * recipients per hour or day, or (REPLY_RCPT_FLOOD) the messages rcpt
 * had this hour
 */
static void
session_reply_rates(struct session *s, enum reply_id id, const char *rcpt,
    const struct rates_refusal *r)
{
	if (id == REPLY_RCPT_FLOOD)
		session_reply_id(s, id, rcpt, r->count, r->limit, r->until);
	else
		session_reply_id(s, id, r->who, r->count, r->setting, r->limit,
		    r->until);
}

/*
 * session_space_low - would a message of size bytes (0: unknown) leave
 * less than limits.queue_min_free on the queue's filesystem, or is it out
 * of inodes? Logged at most once a minute.
 */
static bool
session_space_low(struct session *s, uint64_t size)
{
	static time_t last_log;
	uint64_t bytes, files, min = s->cfg->limits.queue_min_free;
	time_t now;

	if (min == 0 || queue_space(s->srv->queue, &bytes, &files) == -1)
		return false;
	if (bytes >= min && bytes - min >= size && files >= QUEUE_MIN_FILES)
		return false;
	now = time(NULL);
	if (now - last_log >= 60 || now < last_log) {
		log_warnx("queue filesystem low: %" PRIu64 " bytes and %" PRIu64
		    " inodes free, limits.queue_min_free = %" PRIu64 "; MAIL "
		    "gets 452 4.3.1 until space is freed", bytes, files, min);
		last_log = now;
	}
	return true;
}

static void
cmd_mail(struct session *s, const char *args)
{
	struct smtp_mail_params p;
	struct smtp_error e;
	struct address from;
	struct rates_refusal over;
	enum reply_id limit;
	char addr[ADDRESS_MAX + 1];

	if (smtp_parse_mail(args, &from, &p, &e) == -1) {
		session_reply_parse(s, &e);
		return;
	}
	if (p.size_given && p.size > s->cfg->limits.message_size) {
		session_reply_id(s, REPLY_SIZE_EXCEEDED,
		    s->cfg->limits.message_size);
		return;
	}
	if (session_space_low(s, p.size)) {
		session_reply_id(s, REPLY_QUEUE_SPACE);
		return;
	}
	if (from.domain[0] == '\0' && from.local[0] == '\0') {
		session_reply_id(s, REPLY_NULL_SENDER);
		return;
	}
	address_format(&from, addr, sizeof(addr));
	if (!session_owns(s, &from)) {
		if (s->who.kind == PRINCIPAL_LOCAL)
			session_reply_id(s, REPLY_SENDER_LOCAL, addr,
			    s->who.name);
		else if (s->who.kind == PRINCIPAL_LOGIN)
			session_reply_id(s, REPLY_SENDER_NOT_OWNED, addr,
			    s->who.name);
		else
			session_reply_id(s, REPLY_SENDER_LISTENER, addr);
		return;
	}
	if ((limit = rates_mail(s->cfg, &s->who, addr, time(NULL), &over)) !=
	    REPLY_NONE) {
		session_reply_rates(s, limit, NULL, &over);
		return;
	}
	s->txn = xcalloc(1, sizeof(*s->txn));
	s->txn->from = from;
	s->txn->params = p;
	session_reply_id(s, REPLY_MAIL_OK);
}

static int
check_rcpt(struct session *s, const char *args)
{
	(void)args;
	if (s->txn == NULL) {
		session_reply_id(s, REPLY_NEED_MAIL);
		return -1;
	}
	return 0;
}

/* rcpt_add - take the recipient, as it was formatted */
static void
rcpt_add(struct session *s, const char *addr)
{
	struct txn *t = s->txn;

	t->rcpts = xreallocarray(t->rcpts, t->nrcpts + 1, sizeof(*t->rcpts));
	t->rcpts[t->nrcpts++] = xstrdup(addr);
	session_reply_id(s, REPLY_RCPT_OK);
}

/*
 * rcpt_decide - the domain lookup is over (st, or DNS_TEMPFAIL for a
 * timeout): refuse a domain that does not exist or takes no mail, now,
 * rather than bounce later; anything else is for delivery to decide.
 * Then read the commands the client pipelined meanwhile.
 */
static void
rcpt_decide(struct session *s, enum dns_status st)
{
	if (st == DNS_NXDOMAIN)
		session_reply_id(s, REPLY_RCPT_NXDOMAIN, s->rcpt_addr,
		    s->rcpt_domain);
	else if (st == DNS_NULL_MX)
		session_reply_id(s, REPLY_RCPT_NULL_MX, s->rcpt_addr,
		    s->rcpt_domain);
	else
		rcpt_add(s, s->rcpt_addr);
	if (st == DNS_NXDOMAIN || st == DNS_NULL_MX)
		log_info("session=%" PRIu64 " rcpt=<%s> refused: %s",
		    s->id, s->rcpt_addr, dns_status_name(st));
	free(s->rcpt_addr);
	free(s->rcpt_domain);
	s->rcpt_addr = s->rcpt_domain = NULL;
	session_enter_state(s, STATE_COMMAND);
	session_set_timeout(s, s->cfg->limits.command_timeout);
	session_process(s);
}

/* rcpt_answer - common/dns's answer; arg is the session id */
static void
rcpt_answer(void *arg, enum dns_status st, const struct dns_mx *hosts,
    size_t n, const struct dns_sec *sec)
{
	struct session *s = session_lookup((uint64_t)(uintptr_t)arg);

	(void)hosts;
	(void)n;
	(void)sec;	/* a bogus answer is DNS_TEMPFAIL: accepted, as any */
	if (s == NULL || s->state != STATE_RCPT_WAIT)
		return;
	s->rcpt_lookup = 0;
	evtimer_del(s->rcpt_timer);
	rcpt_decide(s, st);
}

/* rcpt_timeout - DNS is slow: accept, delivery will decide */
static void
rcpt_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	if (s->rcpt_lookup > 0)
		dns_cancel(s->srv->dns, s->rcpt_lookup);
	s->rcpt_lookup = 0;
	log_info("session=%" PRIu64 " rcpt=<%s> domain lookup timed out; "
	    "accepted", s->id, s->rcpt_addr);
	rcpt_decide(s, DNS_TEMPFAIL);
}

/*
 * rcpt_lookup - in mx and smarthost modes, look the recipient's domain
 * up before answering (the session waits; the loop does not), unless a
 * route names its next hop. Returns true if the answer will come later.
 */
static bool
rcpt_lookup(struct session *s, const char *addr, const char *domain)
{
	struct timeval tv = { s->cfg->limits.recipient_lookup_timeout, 0 };

	if (s->cfg->relay.mode == RELAY_DIRECTORY || s->srv->dns == NULL ||
	    config_route(s->cfg, domain) != NULL)
		return false;
	if (s->rcpt_timer == NULL &&
	    (s->rcpt_timer = evtimer_new(s->srv->base, rcpt_timeout, s)) ==
	    NULL)
		return false;
	if ((s->rcpt_lookup = dns_mx(s->srv->dns, domain, rcpt_answer,
	    (void *)(uintptr_t)s->id)) == -1) {
		/* Not a name DNS can take (an unconverted UTF-8 domain):
		   delivery decides. */
		s->rcpt_lookup = 0;
		return false;
	}
	s->rcpt_addr = xstrdup(addr);
	s->rcpt_domain = xstrdup(domain);
	(void)evtimer_add(s->rcpt_timer, &tv);
	session_enter_state(s, STATE_RCPT_WAIT);
	return true;
}

static void
cmd_rcpt(struct session *s, const char *args)
{
	struct txn *t = s->txn;
	struct smtp_error e;
	struct address to;
	struct rates_refusal over;
	enum reply_id limit;
	char addr[ADDRESS_MAX + 1], from[ADDRESS_MAX + 1];

	if (smtp_parse_rcpt(args, t->params.smtputf8, &to, &e) == -1) {
		session_reply_parse(s, &e);
		return;
	}
	if (t->nrcpts >= s->cfg->limits.recipients) {
		session_reply_id(s, REPLY_TOO_MANY_RCPTS);
		return;
	}
	address_format(&to, addr, sizeof(addr));
	address_format(&t->from, from, sizeof(from));
	if ((limit = rates_rcpt(s->cfg, &s->who, from, t->nrcpts, addr,
	    time(NULL), &over)) != REPLY_NONE) {
		session_reply_rates(s, limit, addr, &over);
		return;
	}
	if (!rcpt_lookup(s, addr, to.domain))
		rcpt_add(s, addr);
}

static int
check_data(struct session *s, const char *args)
{
	if (*args) {
		session_reply_id(s, REPLY_DATA_SYNTAX);
		return -1;
	}
	if (s->txn == NULL) {
		session_reply_id(s, REPLY_NEED_MAIL);
		return -1;
	}
	if (s->txn->nrcpts == 0) {
		session_reply_id(s, REPLY_NO_VALID_RCPTS);
		return -1;
	}
	return 0;
}

static void
cmd_data(struct session *s, const char *args)
{
	struct txn *t = s->txn;
	struct inject_params p;
	struct inject_received rcv;

	(void)args;
	memset(&rcv, 0, sizeof(rcv));
	rcv.helo = s->helo;
	rcv.client_addr = s->who.kind == PRINCIPAL_LOCAL ? NULL : s->ip;
	if (s->helo_seen == 'H')
		rcv.protocol = s->tls ? "SMTPS" : "SMTP";
	else if (s->who.kind == PRINCIPAL_LOGIN)
		rcv.protocol = s->tls ? "ESMTPSA" : "ESMTPA";
	else
		rcv.protocol = s->tls ? "ESMTPS" : "ESMTP";
	rcv.tls = s->tls ? s->tls_info : NULL;

	memset(&p, 0, sizeof(p));
	p.cfg = s->cfg;
	p.keys = s->keys;
	p.who = &s->who;
	p.sender = "";
	p.rcpts = t->rcpts;
	p.nrcpts = t->nrcpts;
	p.client = s->ip;
	p.helo = s->helo;
	p.body_8bit = t->params.body == SMTP_BODY_8BITMIME;
	p.smtputf8 = t->params.smtputf8;
	p.received = &rcv;
	p.from_ok = session_from_ok;
	p.from_arg = s;
	{
		char sender[ADDRESS_MAX + 1];

		p.sender = address_format(&t->from, sender, sizeof(sender));
		t->im = inject_begin(s->srv->inject, &p);
	}
	if (t->im == NULL) {
		log_warn("session=%" PRIu64 " cannot create queue file",
		    s->id);
		session_reply_id(s, REPLY_QUEUE_WRITE);
		return;
	}
	dataread_init(&t->dr, s->cfg->limits.message_size);
	session_reply_id(s, REPLY_DATA_GO);
	session_enter_state(s, STATE_DATA);
	session_set_timeout(s, s->cfg->limits.data_timeout);
}

static void
cmd_rset(struct session *s, const char *args)
{
	(void)args;
	txn_free(s);
	session_reply_id(s, REPLY_OK);
}

static void
cmd_noop(struct session *s, const char *args)
{
	(void)args;
	session_reply_id(s, REPLY_OK);
}

static void
cmd_quit(struct session *s, const char *args)
{
	(void)args;
	session_reply_id(s, REPLY_BYE);
	session_close(s, "quit");
}

static void
cmd_vrfy(struct session *s, const char *args)
{
	(void)args;
	session_reply_id(s, REPLY_VRFY);
}

static void
cmd_not_implemented(struct session *s, const char *args)
{
	(void)args;
	session_reply_id(s, REPLY_NOT_IMPLEMENTED);
}

static void
cmd_help(struct session *s, const char *args)
{
	(void)args;
	session_reply_id(s, REPLY_HELP);
}

static void
cmd_unknown(struct session *s, const char *args)
{
	(void)args;
	session_reply_id(s, REPLY_UNKNOWN_COMMAND);
}

static void
cmd_http(struct session *s, const char *args)
{
	(void)args;
	session_reply_id(s, REPLY_HTTP);
	session_close(s, "http command");
}

static const struct command commands[] = {
	{ SMTP_HELO,	 NULL,			cmd_helo },
	{ SMTP_EHLO,	 NULL,			cmd_ehlo },
	{ SMTP_STARTTLS, check_starttls,	cmd_starttls },
	{ SMTP_AUTH,	 check_auth,		cmd_auth },
	{ SMTP_MAIL,	 check_mail,		cmd_mail },
	{ SMTP_RCPT,	 check_rcpt,		cmd_rcpt },
	{ SMTP_DATA,	 check_data,		cmd_data },
	{ SMTP_RSET,	 NULL,			cmd_rset },
	{ SMTP_NOOP,	 NULL,			cmd_noop },
	{ SMTP_QUIT,	 NULL,			cmd_quit },
	{ SMTP_VRFY,	 NULL,			cmd_vrfy },
	{ SMTP_EXPN,	 NULL,			cmd_not_implemented },
	{ SMTP_BDAT,	 NULL,			cmd_not_implemented },
	{ SMTP_HELP,	 NULL,			cmd_help },
	{ SMTP_HTTP,	 NULL,			cmd_http },
	{ SMTP_UNKNOWN,	 NULL,			cmd_unknown },
};

/* session_command - dispatch one command line */
static void
session_command(struct session *s, const char *line)
{
	const struct command *c;
	struct smtp_command cmd;
	size_t i;

	s->ncommands++;
	smtp_parse_command(line, &cmd);
	for (i = 0, c = NULL; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].verb == cmd.verb) {
			c = &commands[i];
			break;
		}
	if (c == NULL)
		log_panic("no handler for verb %d", (int)cmd.verb);
	if (c->check == NULL || c->check(s, cmd.args) == 0)
		c->run(s, cmd.args);
}

/* --- message data --- */

/*
 * session_inject_reply - the reply for what inject refused (detail as
 * inject_status gives it), sent and counted by its id
 */
static void
session_inject_reply(struct session *s, enum inject_status st,
    const char *detail)
{
	switch (st) {
	case INJECT_OK:
		log_panic("session_inject_reply: nothing was refused");
	case INJECT_QUEUE_ERROR:
		session_reply_id(s, REPLY_QUEUE_WRITE);
		return;
	case INJECT_SIGN_ERROR:
		session_reply_id(s, REPLY_SIGN_FAILED);
		return;
	case INJECT_HEADER_TOO_BIG:
		session_reply_id(s, REPLY_HEADER_TOO_BIG,
		    s->cfg->limits.header_size);
		return;
	case INJECT_HEADER_MALFORMED:
		session_reply_id(s, REPLY_HEADER_MALFORMED, detail);
		return;
	case INJECT_FROM_COUNT:
		session_reply_id(s, REPLY_FROM_COUNT);
		return;
	case INJECT_FROM_MALFORMED:
		session_reply_id(s, REPLY_FROM_MALFORMED, detail);
		return;
	case INJECT_FROM_REFUSED:
		if (s->who.kind == PRINCIPAL_LOCAL)
			session_reply_id(s, REPLY_FROM_LOCAL, detail,
			    s->who.name);
		else if (s->who.kind == PRINCIPAL_LOGIN)
			session_reply_id(s, REPLY_FROM_NOT_OWNED, detail,
			    s->who.name);
		else
			session_reply_id(s, REPLY_FROM_LISTENER, detail);
		return;
	case INJECT_FROM_NOT_HOSTED:
		session_reply_id(s, REPLY_FROM_NOT_HOSTED, detail);
		return;
	case INJECT_HEADER_UNSIGNABLE:
		session_reply_id(s, REPLY_HEADER_UNSIGNABLE, detail);
		return;
	}
}

/* session_data_bytes - message bytes from the DATA reader: to inject,
   which keeps the first refusal for the end */
static void
session_data_bytes(struct session *s, const char *p, size_t len)
{
	(void)inject_write(s->txn->im, p, len);
}

/* commit_done - inject's answer, on the loop thread */
static void
commit_done(uint64_t cookie, enum inject_status st, const char *id,
    int error, const char *detail)
{
	struct session *s = session_lookup(cookie);

	if (st == INJECT_OK)
		metrics_inc(M_ACCEPTED);
	if (s == NULL) {
		if (st == INJECT_OK)
			log_info("id=%s committed after its client left", id);
		return;
	}
	if (st != INJECT_OK) {
		log_warnx("session=%" PRIu64 " id=%s commit failed: %s", s->id,
		    id, error ? strerror(error) : detail);
		session_inject_reply(s, st, detail);
	} else {
		s->naccepted++;
		metrics_observe(MH_ACCEPT_LATENCY, metrics_now() -
		    s->txn->data_end);
		log_info("session=%" PRIu64 " id=%s accept client=%s login=%s "
		    "from=<%s@%s> nrcpt=%zu", s->id, id, s->ip,
		    session_login(s), s->txn->from.local,
		    s->txn->from.domain, s->txn->nrcpts);
		session_reply_id(s, REPLY_QUEUED, id);
	}
	txn_free(s);
	session_enter_state(s, STATE_COMMAND);
	session_set_timeout(s, s->cfg->limits.command_timeout);
	if (s->expired) {
		session_reply_id(s, REPLY_LIFETIME, s->cfg->hostname);
		session_close(s, "lifetime");
		return;
	}
	session_process(s);
}

/* session_data_end - the final dot: refuse, or commit and wait */
static void
session_data_end(struct session *s)
{
	struct txn *t = s->txn;
	enum inject_status st;
	const char *detail;
	char from[ADDRESS_MAX + 1];

	t->data_end = metrics_now();
	session_set_timeout(s, s->cfg->limits.command_timeout);
	/* The first refusal wins: the header's, then the data's. */
	if ((st = inject_eom(t->im, &detail)) != INJECT_OK)
		session_inject_reply(s, st, detail);
	else if (t->dr.too_big)
		session_reply_id(s, REPLY_SIZE_EXCEEDED,
		    s->cfg->limits.message_size);
	else if (t->dr.line_too_long)
		session_reply_id(s, REPLY_LINE_998);
	if (st != INJECT_OK || t->dr.too_big || t->dr.line_too_long) {
		txn_free(s);
		session_enter_state(s, STATE_COMMAND);
		return;
	}

	session_enter_state(s, STATE_COMMIT);
	st = inject_end(t->im, commit_done, s->id, &detail);
	t->im = NULL;
	if (st != INJECT_OK) {
		log_warnx("session=%" PRIu64 " commit: %s", s->id, detail);
		session_inject_reply(s, st, detail);
		txn_free(s);
		session_enter_state(s, STATE_COMMAND);
		return;
	}
	address_format(&t->from, from, sizeof(from));
	rates_accepted(s->cfg, &s->who, from, t->rcpts, t->nrcpts, time(NULL));
}

/* session_data_input - feed buffered input to the DATA reader; returns
   true if the state changed (data ended), false if more is needed */
static bool
session_data_input(struct session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	enum dataread_status st;
	size_t outlen, consumed, len;

	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0) {
		len = v.iov_len < DATA_CHUNK ? v.iov_len : DATA_CHUNK;
		outlen = 0;
		st = dataread_feed(&s->txn->dr, v.iov_base, len, databuf,
		    &outlen, &consumed);
		session_data_bytes(s, databuf, outlen);
		evbuffer_drain(in, consumed);
		if (st == DATAREAD_DONE) {
			session_data_end(s);
			return true;
		}
		if (st == DATAREAD_BARE) {
			session_reply_id(s, REPLY_BARE_NEWLINE);
			txn_free(s);
			session_close(s, "bare newline");
			return true;
		}
	}
	return false;
}

/* --- input --- */

/*
 * session_read_line - take one line from the input and act on it.
 * Returns false when no complete line is buffered. A line longer than
 * the limit is answered at once and discarded up to its LF.
 */
static bool
session_read_line(struct session *s, struct evbuffer *in)
{
	size_t max, eol_len, len;
	struct evbuffer_ptr p;

	max = s->state == STATE_AUTH ? AUTH_LINE_MAX + 2 :
	    s->cfg->limits.line_length;
	p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (p.pos == -1) {
		if (evbuffer_get_length(in) > max) {
			evbuffer_drain(in, evbuffer_get_length(in));
			if (!s->discard_line) {
				s->discard_line = true;
				goto too_long;
			}
		}
		return false;
	}
	len = (size_t)p.pos + eol_len;
	if (s->discard_line) {
		evbuffer_drain(in, len);
		s->discard_line = false;
		return true;
	}
	if (len > max) {
		evbuffer_drain(in, len);
		goto too_long;
	}
	evbuffer_remove(in, linebuf, len);
	len -= eol_len;
	if (len > 0 && linebuf[len - 1] == '\r')
		len--;
	linebuf[len] = '\0';
	if (memchr(linebuf, '\0', len) != NULL) {
		if (s->state == STATE_AUTH)
			session_auth_result(s, AUTH_BAD, NULL, NULL);
		else
			session_reply_id(s, REPLY_NUL_IN_COMMAND);
		return true;
	}
	if (s->state == STATE_AUTH)
		session_auth_line(s, linebuf);
	else
		session_command(s, linebuf);
	return true;

too_long:
	if (s->state == STATE_AUTH) {
		session_enter_state(s, STATE_COMMAND);
		auth_free(s->auth);
		s->auth = NULL;
		session_reply_id(s, REPLY_AUTH_LINE_TOO_LONG);
	} else
		session_reply_id(s, REPLY_LINE_TOO_LONG);
	return true;
}

/* session_goodbye - the daemon is stopping: 421 4.3.2 and close
   (whatever transaction was open is dropped, never accepted) */
static void
session_goodbye(struct session *s)
{
	txn_free(s);
	if (s->auth != NULL) {
		auth_free(s->auth);
		s->auth = NULL;
	}
	if (s->tarpit != NULL)
		evtimer_del(s->tarpit);
	session_enter_state(s, STATE_COMMAND);
	session_reply_id(s, REPLY_SHUTDOWN, s->cfg->hostname);
	session_close(s, "shutdown");
}

/* session_process - act on buffered input while the state allows */
static void
session_process(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);

	for (;;) {
		if (s->state == STATE_DATA) {
			if (!session_data_input(s, in))
				break;
		} else if (s->state == STATE_COMMAND ||
		    s->state == STATE_AUTH) {
			if (evbuffer_get_length(out) > OUTPUT_HIGHWATER) {
				/* The client does not read its replies. */
				s->output_blocked = true;
				bufferevent_disable(s->bev, EV_READ);
				break;
			}
			if (draining && s->txn == NULL) {
				/* between transactions: no new one */
				session_goodbye(s);
				break;
			}
			if (!session_read_line(s, in))
				break;
		} else
			break;
		if (s->state != STATE_CLOSING &&
		    s->errors >= s->cfg->limits.errors_per_session) {
			session_reply_id(s, REPLY_TOO_MANY_ERRORS,
			    s->cfg->hostname);
			session_close(s, "too many errors");
			break;
		}
	}
}

/* --- TLS --- */

/* session_start_tls - replace the plaintext bufferevent by a TLS one */
static void
session_start_tls(struct session *s)
{
	if ((s->ssl = tls_session_new(s->srv->ssl_ctx)) == NULL) {
		session_free(s, "tls setup failed");
		return;
	}
	if (s->bev)
		bufferevent_free(s->bev);
	s->bev = bufferevent_openssl_socket_new(s->srv->base, s->fd, s->ssl,
	    BUFFEREVENT_SSL_ACCEPTING, 0);
	if (s->bev == NULL) {
		session_free(s, "tls setup failed");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	session_enter_state(s, STATE_HANDSHAKE);
	session_attach_bev(s);
}

/* session_tls_ready - handshake finished */
static void
session_tls_ready(struct session *s)
{
	bool implicit = !s->tls && s->helo_seen == 0 &&
	    s->lc->tls == LISTEN_TLS_IMPLICIT;

	s->tls = true;
	metrics_inc(M_TLS_HANDSHAKES);
	tls_describe(s->ssl, s->tls_info, sizeof(s->tls_info));
	log_info("session=%" PRIu64 " tls client=%s %s", s->id, s->ip,
	    s->tls_info);
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	txn_free(s);
	s->helo_seen = 0;
	s->helo[0] = '\0';
	session_enter_state(s, STATE_COMMAND);
	if (implicit)
		session_reply_id(s, REPLY_GREETING, s->cfg->hostname);
	session_process(s);
}

/* --- closing --- */

/* session_linger_cb - input (discarded) or the end of the wait */
static void
session_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	char buf[16384];
	ssize_t n;

	(void)what;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n > 0 && (s->lingered += (size_t)n) < LINGER_BYTES)
		return;
	session_free(s, s->close_reason);
}

/*
 * session_linger - the last reply is with the kernel. Closing a socket
 * with unread input makes Linux send a reset, which can destroy replies
 * the client has not received yet (the 421 above all, when a client
 * pipelines on regardless). So shut the write side (FIN after the
 * replies), read and discard until the client closes, for at most
 * LINGER_SECONDS (the lifetime timer, re-armed) and LINGER_BYTES, and
 * only then close. TLS is not shut down cleanly (no close_notify): the
 * client has its reply.
 */
static void
session_linger(struct session *s)
{
	struct timeval tv = { LINGER_SECONDS, 0 };

	bufferevent_free(s->bev);
	s->bev = NULL;
	session_enter_state(s, STATE_LINGER);
	if (shutdown(s->fd, SHUT_WR) == -1 ||
	    evtimer_add(s->lifetime, &tv) == -1 ||
	    (s->linger = event_new(s->srv->base, s->fd, EV_READ | EV_PERSIST,
	    session_linger_cb, s)) == NULL ||
	    event_add(s->linger, NULL) == -1) {
		session_free(s, s->close_reason);
		return;
	}
}

/* --- callbacks --- */

static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	session_process(s);
}

static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	switch (s->state) {
	case STATE_CLOSING:
		session_linger(s);
		return;
	case STATE_TLS_FLUSH:
		session_start_tls(s);
		return;
	default:
		break;
	}
	if (s->output_blocked) {
		s->output_blocked = false;
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	unsigned long e;
	char reason[160];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		session_tls_ready(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == STATE_COMMIT || s->state == STATE_TARPIT ||
		    s->state == STATE_RCPT_WAIT) {
			/* The client waits for us, not we for it. */
			bufferevent_enable(s->bev, EV_READ);
			return;
		}
		if (s->state == STATE_CLOSING || s->state == STATE_HANDSHAKE ||
		    (what & BEV_EVENT_WRITING)) {
			session_free(s, "timeout");
			return;
		}
		txn_free(s);
		session_reply_id(s, REPLY_TIMEOUT, s->cfg->hostname);
		session_close(s, "timeout");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		session_free(s, s->state == STATE_DATA ? "eof in data" :
		    "eof");
		return;
	}
	e = bufferevent_get_openssl_error(bev);
	if (e) {
		snprintf(reason, sizeof(reason), "tls error: ");
		ERR_error_string_n(e, reason + strlen(reason),
		    sizeof(reason) - strlen(reason));
		session_free(s, reason);
	} else
		session_free(s, "connection error");
}

/* session_lifetime_cb - the connection has lived long enough */
static void
session_lifetime_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	if (s->state == STATE_COMMIT) {
		s->expired = true;
		return;
	}
	if (s->state == STATE_LINGER) {
		session_free(s, s->close_reason);
		return;
	}
	if (s->state == STATE_CLOSING)
		return;
	if (s->state == STATE_HANDSHAKE || s->state == STATE_TLS_FLUSH) {
		session_free(s, "lifetime");
		return;
	}
	txn_free(s);
	session_reply_id(s, REPLY_LIFETIME, s->cfg->hostname);
	session_close(s, "lifetime");
}

/* --- life cycle --- */

/* session_new - take over an accepted connection */
void
session_new(struct server *srv, const struct listen_config *lc, int fd,
    const struct sockaddr *sa, const char *ip, bool exempt)
{
	session_start(srv, lc, fd, sa, ip, exempt, NULL, NULL, 0);
}

/* session_new_local - take over a connection on the local socket */
void
session_new_local(struct server *srv, const struct listen_config *lc,
    int fd, const struct sockaddr *sa, const struct local_sender *ls,
    const char *user, unsigned uid)
{
	session_start(srv, lc, fd, sa, SESSION_LOCAL_IP, true, ls, user, uid);
}

/* session_start - a new session on fd, from a network client or (user
   set) a local account with its local_senders entry ls */
static void
session_start(struct server *srv, const struct listen_config *lc, int fd,
    const struct sockaddr *sa, const char *ip, bool exempt,
    const struct local_sender *ls, const char *user, unsigned uid)
{
	struct sockaddr_storage local;
	socklen_t locallen = sizeof(local);
	char lip[INET6_ADDRSTRLEN] = "0.0.0.0";
	struct timeval life;
	struct session *s;
	size_t need;
	int port = 0;

	need = srv->cfg->limits.line_length > AUTH_LINE_MAX + 2 ?
	    srv->cfg->limits.line_length : AUTH_LINE_MAX + 2;
	if (linebuf_size < need + 1) {
		free(linebuf);
		linebuf = xmalloc(need + 1);
		linebuf_size = need + 1;
	}

	s = xcalloc(1, sizeof(*s));
	s->id = next_session_id++;
	s->srv = srv;
	s->cfg = srv->cfg;
	s->keys = srv->keys;
	s->lc = lc;
	s->fd = fd;
	s->state = STATE_COMMAND;
	snprintf(s->ip, sizeof(s->ip), "%s", ip);
	s->exempt = exempt;
	if (user != NULL)	/* the local socket */
		principal_local(&s->who, lc, user, uid, ls);
	else
		principal_network(&s->who, lc);
	if (sa->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	snprintf(s->sasl_remote, sizeof(s->sasl_remote), "%s;%d", ip, port);
	if (getsockname(fd, (struct sockaddr *)&local, &locallen) == 0) {
		if (local.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&local)->
			    sin_addr, lip, sizeof(lip));
		else if (local.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&local)->
			    sin6_addr, lip, sizeof(lip));
	}
	snprintf(s->sasl_local, sizeof(s->sasl_local), "%s;%d", lip,
	    lc->port);
	registry_add(s);
	metrics_inc(M_CONNECTIONS);
	if (user != NULL)
		log_info("session=%" PRIu64 " connect client=local user=%s "
		    "uid=%u socket=%s", s->id, s->who.name, s->who.uid,
		    lc->address);
	else
		log_info("session=%" PRIu64 " connect client=%s port=%d "
		    "listener=%s:%d", s->id, s->ip, port, lc->address,
		    lc->port);

	s->lifetime = evtimer_new(srv->base, session_lifetime_cb, s);
	life.tv_sec = s->cfg->limits.session_lifetime;
	life.tv_usec = 0;
	evtimer_add(s->lifetime, &life);

	if (lc->tls == LISTEN_TLS_IMPLICIT) {
		session_start_tls(s);
		return;
	}
	s->bev = bufferevent_socket_new(srv->base, fd, 0);
	if (s->bev == NULL) {
		session_free(s, "bufferevent failed");
		return;
	}
	session_attach_bev(s);
	session_reply_id(s, REPLY_GREETING, s->cfg->hostname);
}

/* session_free - end the connection and release everything */
static void
session_free(struct session *s, const char *reason)
{
	if (reason == NULL)
		reason = "closed";
	log_info("session=%" PRIu64 " disconnect client=%s reason=\"%s\" "
	    "commands=%u accepted=%u errors=%u", s->id, s->ip, reason,
	    s->ncommands, s->naccepted, s->errors);
	registry_remove(s);
	if (s->state == STATE_HANDSHAKE)
		metrics_inc(M_TLS_HANDSHAKE_FAILURES);
	txn_free(s);
	if (s->bev)
		bufferevent_free(s->bev);
	if (s->ssl)
		SSL_free(s->ssl);
	if (s->lifetime)
		event_free(s->lifetime);
	if (s->rcpt_lookup > 0)
		dns_cancel(s->srv->dns, s->rcpt_lookup);
	if (s->rcpt_timer)
		event_free(s->rcpt_timer);
	if (s->tarpit)
		event_free(s->tarpit);
	if (s->linger)
		event_free(s->linger);
	/* last: the events above may still watch it */
	close(s->fd);
	free(s->rcpt_addr);
	free(s->rcpt_domain);
	auth_free(s->auth);
	server_session_done(s->srv, s->ip);
	free(s);
}

/* session_auth_mechanisms - what SASL offers, asked once */
char *
session_auth_mechanisms(void)
{
	struct auth_session *a;
	char *mechs;

	if ((a = auth_new("127.0.0.1;0", "127.0.0.1;0")) == NULL)
		return xstrdup("");
	mechs = xstrdup(auth_mechanisms(a));
	auth_free(a);
	return mechs;
}

/* session_drain - stop: say goodbye to every session between
   transactions; the others finish theirs first */
void
session_drain(void)
{
	struct session *s, *next;
	size_t i;

	draining = true;
	for (i = 0; i < REGISTRY_BUCKETS; i++)
		for (s = registry[i]; s != NULL; s = next) {
			next = s->hnext;
			switch (s->state) {
			case STATE_HANDSHAKE:
			case STATE_TLS_FLUSH:
				session_free(s, "shutdown");
				break;
			case STATE_AUTH:
			case STATE_TARPIT:
				session_goodbye(s);
				break;
			case STATE_COMMAND:
				if (s->txn == NULL)
					session_goodbye(s);
				break;
			default:	/* in a transaction, or closing */
				break;
			}
		}
}

/* session_drain_end - the stop timeout: transactions still open are
   dropped with 421 4.3.2 (a commit under way still completes) */
void
session_drain_end(void)
{
	struct session *s, *next;
	size_t i;

	for (i = 0; i < REGISTRY_BUCKETS; i++)
		for (s = registry[i]; s != NULL; s = next) {
			next = s->hnext;
			if (s->state == STATE_DATA || s->state == STATE_COMMAND ||
			    s->state == STATE_RCPT_WAIT) {
				if (s->rcpt_lookup > 0)
					dns_cancel(s->srv->dns, s->rcpt_lookup);
				s->rcpt_lookup = 0;
				if (s->rcpt_timer != NULL)
					evtimer_del(s->rcpt_timer);
				session_goodbye(s);
			}
		}
}

/* session_close_all - free every session (daemon shutdown) */
void
session_close_all(void)
{
	size_t i;

	for (i = 0; i < REGISTRY_BUCKETS; i++)
		while (registry[i])
			session_free(registry[i], "shutdown");
	rates_free();
	guard_free();
	draining = false;
	free(linebuf);
	linebuf = NULL;
	linebuf_size = 0;
}
