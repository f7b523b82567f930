/*
 * test_smtpc - relay/smtpc against a real SMTP server: aiosmtpd (Debian's
 * python3-aiosmtpd) driven by tests/unit/smtpc/sink.py, started per test
 * on 127.0.0.1 with a port of its own choosing, configured by arguments,
 * and killed by PID at the end. The sink records what it received
 * (events, and the exact bytes of each message) in the test's mkdtemp
 * directory; the tests compare that with what was sent, and every
 * outcome with the reply expected (code, enhanced code, text, local).
 *
 * Every test runs a real event_base until the callbacks fire, with a
 * guard timer so that a bug fails the test instead of hanging it, and
 * drains the base at the end so valgrind sees every connection freed.
 * Without /usr/bin/python3 and aiosmtpd, or without openssl(1), the
 * tests are skipped loudly.
 *
 * SMTPC_TEST_DEBUG=1 shows smtpc's debug lines (the whole dialogue).
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/log.h"
#include "relay/smtpc.h"

#define PYTHON		"/usr/bin/python3"
#define SINK		"tests/unit/smtpc/sink.py"
#define GUARD_SECS	60		/* valgrind is slow */
#define MAXRCPT		8

struct got_reply {
	int	 code;
	char	 enhanced[12];
	char	 text[1024];
	bool	 local;
};

struct fx {
	char			 dir[64];
	pid_t			 sink;
	int			 port;
	struct event_base	*base;
	struct event		*guard;
	bool			 guard_fired;
	SSL_CTX			*ctx;
	struct smtpc		*conn;
	const struct sockaddr_in *source;	/* bind before connect */

	/* the ready callback */
	bool			 ready_called;
	bool			 ready_ok;
	struct smtpc_peer	 peer;
	char			 tls_version[32];
	struct got_reply	 fail;
	bool			 next_host;

	/* re-entrant use from inside callbacks */
	struct smtpc_txn	 txn;
	int			 chain;		/* done callbacks so far */
	int			 send_rc;

	/* the done callback */
	bool			 done_called;
	size_t			 nrcpt;
	struct got_reply	 rcpt[MAXRCPT];
	bool			 usable;
};

static bool	have_sink;
static char	certdir[] = "/tmp/postern-smtpc-cert-XXXXXX";
static char	cert[128], key[128];

/* ---- helpers ---- */

/* rm_one - nftw callback: remove one entry */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* path_in - dir/name into a static buffer (one of four in turn) */
static const char *
path_in(const char *dir, const char *name)
{
	static char p[4][256];
	static int which;

	which = (which + 1) % 4;
	snprintf(p[which], sizeof(p[which]), "%s/%s", dir, name);
	return p[which];
}

/* read_file - whole file, NUL-terminated; *len set; NULL if missing */
static char *
read_file(const char *path, size_t *len)
{
	struct stat st;
	char *data;
	ssize_t n;
	size_t off = 0;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return NULL;
	}
	data = malloc((size_t)st.st_size + 1);
	assert_non_null(data);
	while (off < (size_t)st.st_size) {
		n = read(fd, data + off, (size_t)st.st_size - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	data[off] = '\0';
	if (len)
		*len = off;
	return data;
}

/* write_file - a message file in the test dir; returns an fd for it */
static int
message_fd(struct fx *f, const char *name, const char *data, size_t len)
{
	int fd;

	fd = open(path_in(f->dir, name), O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

/* events - the sink's event log */
static char *
events(struct fx *f)
{
	char *e = read_file(path_in(f->dir, "events"), NULL);

	return e ? e : strdup("");
}

/* event_seen - the sink logged a line containing s */
static bool
event_seen(struct fx *f, const char *s)
{
	char *e = events(f);
	bool seen = strstr(e, s) != NULL;

	if (!seen)
		fprintf(stderr, "# event \"%s\" not in:\n%s", s, e);
	free(e);
	return seen;
}

/* event_count - how many event lines contain s */
static int
event_count(struct fx *f, const char *s)
{
	char *e = events(f), *p = e;
	int n = 0;

	while ((p = strstr(p, s)) != NULL) {
		n++;
		p += strlen(s);
	}
	free(e);
	return n;
}

/* check_received - msg.N holds exactly want */
static void
check_received(struct fx *f, int n, const char *want, size_t wantlen)
{
	char name[32], *got;
	size_t len;

	snprintf(name, sizeof(name), "msg.%d", n);
	got = read_file(path_in(f->dir, name), &len);
	if (got == NULL)
		fail_msg("%s was not received", name);
	if (len != wantlen || memcmp(got, want, len) != 0) {
		fprintf(stderr, "# %s: got %zu bytes, want %zu\n", name, len,
		    wantlen);
		free(got);
		fail_msg("%s differs from what was sent", name);
	}
	free(got);
}

/* guard_cb - the test took too long */
static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;

	(void)fd;
	(void)what;
	f->guard_fired = true;
	event_base_loopbreak(f->base);
}

/* run_until - the loop until *flag, or fail at the guard */
static void
run_until(struct fx *f, const bool *flag)
{
	while (!*flag && !f->guard_fired)
		event_base_loop(f->base, EVLOOP_ONCE);
	if (f->guard_fired)
		fail_msg("guard timer: no callback within %d s", GUARD_SECS);
}

/* run_for - the loop for ms milliseconds */
static void
run_for(struct fx *f, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

/* drain - the loop until no event but the guard is left (connections
   closing after QUIT or failure free themselves) */
static void
drain(struct fx *f)
{
	while (!f->guard_fired && event_base_get_num_events(f->base,
	    EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE) > 1)
		event_base_loop(f->base, EVLOOP_ONCE);
	if (f->guard_fired)
		fail_msg("guard timer: the connection never went away");
}

/* sink_start - run sink.py with these arguments (NULL-terminated) */
static void
sink_start(struct fx *f, ...)
{
	const char *argv[40];
	char *port;
	va_list ap;
	int i = 0, fd, status;

	argv[i++] = PYTHON;
	argv[i++] = SINK;
	argv[i++] = "--dir";
	argv[i++] = f->dir;
	va_start(ap, f);
	while ((argv[i] = va_arg(ap, const char *)) != NULL)
		if (++i >= 39)
			fail_msg("too many sink arguments");
	va_end(ap);
	if ((f->sink = fork()) == -1)
		fail_msg("fork: %s", strerror(errno));
	if (f->sink == 0) {
		fd = open(path_in(f->dir, "sink.log"), O_WRONLY | O_CREAT |
		    O_APPEND, 0600);
		if (fd != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(PYTHON, (char *const *)argv);
		_exit(127);
	}
	/* Ready once it wrote its port (polled, no fixed sleep). */
	for (i = 0; i < 2000; i++) {
		if ((port = read_file(path_in(f->dir, "port"), NULL)) != NULL) {
			f->port = atoi(port);
			free(port);
			return;
		}
		if (waitpid(f->sink, &status, WNOHANG) == f->sink) {
			f->sink = -1;
			port = read_file(path_in(f->dir, "sink.log"), NULL);
			fprintf(stderr, "# sink.log:\n%s\n", port ? port : "");
			free(port);
			fail_msg("sink.py exited at startup");
		}
		usleep(10000);
	}
	fail_msg("sink.py never wrote its port");
}

/* sink_stop - kill our sink by its PID */
static void
sink_stop(struct fx *f)
{
	if (f->sink > 0) {
		kill(f->sink, SIGTERM);
		waitpid(f->sink, NULL, 0);
		f->sink = -1;
	}
}

/* free_port - a port nobody listens on (bound, then released) */
static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* copy_reply - keep a reply past its callback */
static void
copy_reply(struct got_reply *g, const struct smtpc_reply *r)
{
	g->code = r->code;
	snprintf(g->enhanced, sizeof(g->enhanced), "%s", r->enhanced);
	snprintf(g->text, sizeof(g->text), "%s", r->text ? r->text : "");
	g->local = r->local;
}

/* ready_cb - record the outcome of smtpc_open */
static void
ready_cb(void *arg, struct smtpc *conn, const struct smtpc_peer *peer,
    const struct smtpc_reply *r, bool next_host)
{
	struct fx *f = arg;

	assert_ptr_equal(conn, f->conn);
	f->ready_called = true;
	f->next_host = next_host;
	if (r == NULL) {
		assert_non_null(peer);
		f->ready_ok = true;
		f->peer = *peer;
		if (peer->tls_version)
			snprintf(f->tls_version, sizeof(f->tls_version), "%s",
			    peer->tls_version);
		f->peer.tls_version = NULL;
		f->peer.cipher = NULL;
	} else {
		assert_null(peer);
		f->ready_ok = false;
		copy_reply(&f->fail, r);
		f->conn = NULL;		/* freed */
	}
}

/* done_cb - record the outcome of smtpc_send */
static void
done_cb(void *arg, struct smtpc *conn, const struct smtpc_reply *rcpt,
    size_t n, bool usable)
{
	struct fx *f = arg;
	size_t i;

	assert_ptr_equal(conn, f->conn);
	assert_true(n <= MAXRCPT);
	f->done_called = true;
	f->nrcpt = n;
	f->usable = usable;
	for (i = 0; i < n; i++)
		copy_reply(&f->rcpt[i], &rcpt[i]);
	if (!usable)
		f->conn = NULL;		/* freed */
}

/* open_with - smtpc_open to the sink and run until the ready callback */
static void
open_with(struct fx *f, int port, enum smtpc_tls tls, const char *cafile,
    const char *peer_name, const char *login, const char *password,
    const struct smtpc_timeouts *to)
{
	struct smtpc_params p;
	struct sockaddr_in sin;
	char *err = NULL;

	if (tls != SMTPC_TLS_NONE && f->ctx == NULL) {
		f->ctx = smtpc_tls_ctx(cafile, &err);
		if (f->ctx == NULL)
			fail_msg("smtpc_tls_ctx: %s", err);
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&p, 0, sizeof(p));
	p.addr = (struct sockaddr *)&sin;
	p.addrlen = sizeof(sin);
	p.helo = "client.test";
	p.peer_name = peer_name;
	p.tls = tls;
	p.ssl_ctx = f->ctx;
	p.auth_login = login;
	p.auth_password = password;
	if (f->source) {
		p.source = (const struct sockaddr *)f->source;
		p.sourcelen = sizeof(*f->source);
	}
	if (to)
		p.timeouts = *to;
	f->ready_called = false;
	f->conn = smtpc_open(f->base, &p, ready_cb, f, &err);
	if (f->conn == NULL)
		fail_msg("smtpc_open: %s", err);
	assert_false(f->ready_called);		/* never from inside */
	run_until(f, &f->ready_called);
}

/* open_plain - no TLS, default timeouts, must succeed */
static void
open_plain(struct fx *f)
{
	open_with(f, f->port, SMTPC_TLS_NONE, NULL, NULL, NULL, NULL, NULL);
	if (!f->ready_ok)
		fail_msg("connection failed: %d %s", f->fail.code,
		    f->fail.text);
}

/* send_msg - one transaction, run until the done callback */
static void
send_msg(struct fx *f, const char *sender, const char *const *rcpts,
    size_t nrcpts, const char *prepend, const char *body, size_t bodylen)
{
	struct smtpc_txn t;

	memset(&t, 0, sizeof(t));
	t.sender = sender;
	t.rcpts = rcpts;
	t.nrcpts = nrcpts;
	t.fd = message_fd(f, "in.eml", body, bodylen);
	t.size = bodylen;
	t.prepend = prepend;
	t.prepend_len = prepend ? strlen(prepend) : 0;
	f->done_called = false;
	assert_int_equal(smtpc_send(f->conn, &t, done_cb, f), 0);
	assert_false(f->done_called);		/* never from inside */
	run_until(f, &f->done_called);
	close(t.fd);
}

/* quit - QUIT and wait until the connection is gone */
static void
quit(struct fx *f)
{
	smtpc_quit(f->conn);
	f->conn = NULL;
	drain(f);
}

/* expect_reply - got/want on one reply; text by substring */
static void
expect_reply(const struct got_reply *g, int code, const char *enhanced,
    const char *text, bool local)
{
	if (g->code != code || strcmp(g->enhanced, enhanced) != 0 ||
	    strstr(g->text, text) == NULL || g->local != local)
		fail_msg("reply: got %d \"%s\" \"%s\" local=%d, want %d \"%s\" "
		    "\"...%s...\" local=%d", g->code, g->enhanced, g->text,
		    g->local, code, enhanced, text, local);
}

/* ---- fixture ---- */

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct timeval tv = { GUARD_SECS, 0 };

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/postern-smtpc-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->sink = -1;
	f->base = event_base_new();
	f->guard = evtimer_new(f->base, guard_cb, f);
	evtimer_add(f->guard, &tv);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->conn)
		smtpc_abort(f->conn);
	sink_stop(f);
	event_free(f->guard);
	event_base_free(f->base);
	if (f->ctx)
		SSL_CTX_free(f->ctx);
	if (getenv("SMTPC_TEST_KEEP") == NULL)
		nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* need_sink - skip when the group setup found no aiosmtpd */
static void
need_sink(void)
{
	if (!have_sink) {
		fprintf(stderr, "# SKIP: no /usr/bin/python3 with aiosmtpd, or "
		    "no openssl(1)\n");
		skip();
	}
}

/* group_setup - tools present? a self-signed certificate for localhost */
static int
group_setup(void **state)
{
	char cmd[1024];

	(void)state;
	log_init("test_smtpc", getenv("SMTPC_TEST_DEBUG") != NULL);
	signal(SIGPIPE, SIG_IGN);
	if (access(SINK, R_OK) != 0) {
		fprintf(stderr, "# run from the top of the tree: %s missing\n",
		    SINK);
		return -1;
	}
	if (system(PYTHON " -c 'import aiosmtpd' 2>/dev/null") != 0 ||
	    system("openssl version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "# SKIPPING: " PYTHON " cannot import aiosmtpd "
		    "(apt-get install python3-aiosmtpd) or no openssl\n");
		return 0;
	}
	if (mkdtemp(certdir) == NULL)
		return -1;
	snprintf(cert, sizeof(cert), "%s/cert.pem", certdir);
	snprintf(key, sizeof(key), "%s/key.pem", certdir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost "
	    "-addext subjectAltName=DNS:localhost -keyout %s -out %s "
	    ">/dev/null 2>&1", key, cert);
	if (system(cmd) != 0) {
		fprintf(stderr, "# openssl req failed\n");
		return -1;
	}
	have_sink = true;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (have_sink)
		nftw(certdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- plain delivery and exact bytes ---- */

static const char *const one_rcpt[] = { "rcpt@example.test" };

/* test_exact_bytes - prepend + body, dot-stuffing, and the sink's copy */
static void
test_exact_bytes(void **state)
{
	struct fx *f = *state;
	const char *prepend = "DKIM-Signature: v=1; d=example.test\r\n";
	const char *body = "Subject: dots\r\n\r\n.leading dot\r\n"
	    "..two dots\r\n.\r\nnot.at start\r\nend\r\n";
	char want[512];

	need_sink();
	sink_start(f, NULL);
	open_plain(f);
	assert_true(f->peer.esmtp);
	assert_false(f->peer.tls);
	assert_false(f->peer.pipelining);
	assert_true(f->peer.eightbitmime);
	assert_int_equal(f->peer.size, 0);
	send_msg(f, "sender@example.test", one_rcpt, 1, prepend, body,
	    strlen(body));
	assert_true(f->usable);
	assert_int_equal(f->nrcpt, 1);
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	snprintf(want, sizeof(want), "%s%s", prepend, body);
	check_received(f, 1, want, strlen(want));
	assert_true(event_seen(f, "mail <sender@example.test>  pipelined=0"));
	assert_true(event_seen(f, "data 1 from=<sender@example.test> "
	    "to=rcpt@example.test"));
	quit(f);
	assert_true(event_seen(f, "quit"));
}

/* test_no_final_crlf - CRLF added before "."; a last line "." stuffed */
static void
test_no_final_crlf(void **state)
{
	struct fx *f = *state;
	const char *b1 = "Subject: x\r\n\r\nno line end";
	const char *b2 = "Subject: y\r\n\r\nlast line is a dot\r\n.";
	const char *w1 = "Subject: x\r\n\r\nno line end\r\n";
	const char *w2 = "Subject: y\r\n\r\nlast line is a dot\r\n.\r\n";

	need_sink();
	sink_start(f, NULL);
	open_plain(f);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, b1, strlen(b1));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued", false);
	check_received(f, 1, w1, strlen(w1));
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, b2, strlen(b2));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued", false);
	check_received(f, 2, w2, strlen(w2));
	quit(f);
}

/* test_empty_body - DATA with nothing but the final "." */
static void
test_empty_body(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, NULL);
	open_plain(f);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, "", 0);
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued", false);
	check_received(f, 1, "", 0);
	assert_true(event_seen(f, "data 1 from=<s@example.test> "
	    "to=rcpt@example.test size=0"));
	quit(f);
}

/* ---- per-recipient outcomes ---- */

/* rcpt_refused - three recipients, the middle one refused */
static void
rcpt_refused(struct fx *f, bool pipelining)
{
	const char *const rcpts[] = { "a@example.test", "bad@example.test",
	    "c@example.test" };
	const char *body = "Subject: three\r\n\r\nhello\r\n";

	if (pipelining)
		sink_start(f, "--refuse-rcpt", "bad@example.test",
		    "--pipelining", NULL);
	else
		sink_start(f, "--refuse-rcpt", "bad@example.test", NULL);
	open_plain(f);
	assert_true(f->peer.pipelining == pipelining);
	send_msg(f, "s@example.test", rcpts, 3, NULL, body, strlen(body));
	assert_true(f->usable);
	assert_int_equal(f->nrcpt, 3);
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	expect_reply(&f->rcpt[1], 550, "5.1.1",
	    "<bad@example.test>: user unknown", false);
	expect_reply(&f->rcpt[2], 250, "2.0.0", "queued as 1", false);
	assert_true(event_seen(f, "to=a@example.test,c@example.test"));
	assert_true(event_seen(f, pipelining ? "pipelined=1" :
	    "pipelined=0"));
	check_received(f, 1, body, strlen(body));
	quit(f);
}

static void
test_rcpt_refused_lockstep(void **state)
{
	need_sink();
	rcpt_refused(*state, false);
}

static void
test_rcpt_refused_pipelined(void **state)
{
	need_sink();
	rcpt_refused(*state, true);
}

/* test_mail_refused - every recipient gets MAIL's refusal; no RSET
   after it (nothing is open); the next transaction works */
static void
test_mail_refused(void **state)
{
	struct fx *f = *state;
	const char *const rcpts[] = { "a@example.test", "b@example.test" };
	const char *body = "Subject: m\r\n\r\nx\r\n";
	int pass;

	need_sink();
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			sink_stop(f);
			unlink(path_in(f->dir, "port"));
			unlink(path_in(f->dir, "events"));
		}
		if (pass == 0)
			sink_start(f, "--refuse-mail", "bad@example.test",
			    NULL);
		else
			sink_start(f, "--refuse-mail", "bad@example.test",
			    "--pipelining", NULL);
		open_plain(f);
		send_msg(f, "bad@example.test", rcpts, 2, NULL, body,
		    strlen(body));
		assert_true(f->usable);
		expect_reply(&f->rcpt[0], 553, "5.7.1", "sender refused",
		    false);
		expect_reply(&f->rcpt[1], 553, "5.7.1", "sender refused",
		    false);
		send_msg(f, "good@example.test", rcpts, 2, NULL, body,
		    strlen(body));
		expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
		expect_reply(&f->rcpt[1], 250, "2.0.0", "queued as 1", false);
		assert_int_equal(event_count(f, "rset"), 0);
		assert_int_equal(event_count(f, "connect"), 1);
		quit(f);
	}
}

/* all_refused_rset - MAIL accepted, every RCPT refused: the next
   transaction starts with RSET (and only then) */
static void
all_refused_rset(struct fx *f, bool pipelining)
{
	const char *const bad[] = { "bad@example.test" };
	const char *body = "Subject: r\r\n\r\nx\r\n";

	sink_start(f, "--refuse-rcpt", "bad@example.test",
	    pipelining ? "--pipelining" : NULL, NULL);
	open_plain(f);
	assert_true(f->peer.pipelining == pipelining);
	send_msg(f, "s@example.test", bad, 1, NULL, body, strlen(body));
	assert_true(f->usable);
	expect_reply(&f->rcpt[0], 550, "5.1.1", "user unknown", false);
	assert_int_equal(event_count(f, "rset"), 0);
	assert_int_equal(event_count(f, "data"), 0);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	assert_int_equal(event_count(f, "rset"), 1);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 2", false);
	assert_int_equal(event_count(f, "rset"), 1);	/* not again */
	quit(f);
}

static void
test_all_refused_rset_lockstep(void **state)
{
	need_sink();
	all_refused_rset(*state, false);
}

static void
test_all_refused_rset_pipelined(void **state)
{
	need_sink();
	all_refused_rset(*state, true);
}

/* test_data_reply - 4xx and 5xx to the final ".": the recipients get
   it, the connection stays usable, and the next one needs RSET */
static void
test_data_reply(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: d\r\n\r\nx\r\n";
	struct smtpc_reply r;

	need_sink();
	sink_start(f, "--data-reply", "451 4.3.0 try again later", NULL);
	open_plain(f);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	assert_true(f->usable);
	expect_reply(&f->rcpt[0], 451, "4.3.0", "try again later", false);
	r.code = f->rcpt[0].code;
	assert_true(smtpc_reply_temporary(&r));
	quit(f);

	sink_stop(f);
	unlink(path_in(f->dir, "port"));
	sink_start(f, "--data-reply", "554 5.6.0 content rejected", NULL);
	open_plain(f);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	assert_true(f->usable);
	expect_reply(&f->rcpt[0], 554, "5.6.0", "content rejected", false);
	r.code = f->rcpt[0].code;
	assert_false(smtpc_reply_temporary(&r));
	quit(f);
}

/* test_two_transactions - connection reuse; no RSET between good ones;
   a second smtpc_send while one runs is refused */
static void
test_two_transactions(void **state)
{
	struct fx *f = *state;
	const char *b1 = "Subject: one\r\n\r\nfirst\r\n";
	const char *b2 = "Subject: two\r\n\r\nsecond\r\n";
	const char *const r2[] = { "x@example.test", "y@example.test" };
	struct smtpc_txn t;
	int fd;

	need_sink();
	sink_start(f, "--pipelining", NULL);
	open_plain(f);
	send_msg(f, "s1@example.test", one_rcpt, 1, NULL, b1, strlen(b1));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	assert_true(f->usable);
	send_msg(f, "s2@example.test", r2, 2, NULL, b2, strlen(b2));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 2", false);
	expect_reply(&f->rcpt[1], 250, "2.0.0", "queued as 2", false);
	check_received(f, 1, b1, strlen(b1));
	check_received(f, 2, b2, strlen(b2));
	assert_int_equal(event_count(f, "connect"), 1);
	assert_int_equal(event_count(f, "ehlo"), 1);
	assert_int_equal(event_count(f, "rset"), 0);

	/* Busy: the second send is refused, without a callback. */
	memset(&t, 0, sizeof(t));
	fd = message_fd(f, "busy.eml", b1, strlen(b1));
	t.sender = "s@example.test";
	t.rcpts = one_rcpt;
	t.nrcpts = 1;
	t.fd = fd;
	t.size = strlen(b1);
	f->done_called = false;
	assert_int_equal(smtpc_send(f->conn, &t, done_cb, f), 0);
	assert_int_equal(smtpc_send(f->conn, &t, done_cb, f), -1);
	run_until(f, &f->done_called);
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 3", false);
	close(fd);
	quit(f);
}

/* ---- local decisions ---- */

/* test_size_exceeded - 552 5.3.4 before anything is sent; SIZE= when
   it fits */
static void
test_size_exceeded(void **state)
{
	struct fx *f = *state;
	char big[300], want[64];
	const char *small = "Subject: s\r\n\r\nsmall\r\n";

	need_sink();
	memset(big, 'x', sizeof(big));
	memcpy(big + sizeof(big) - 2, "\r\n", 2);
	sink_start(f, "--size", "200", NULL);
	open_plain(f);
	assert_int_equal(f->peer.size, 200);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, big, sizeof(big));
	assert_true(f->usable);
	expect_reply(&f->rcpt[0], 552, "5.3.4", "exceeds the limit 200",
	    true);
	assert_int_equal(event_count(f, "mail"), 0);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, small,
	    strlen(small));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	snprintf(want, sizeof(want), "SIZE=%zu", strlen(small));
	assert_true(event_seen(f, want));
	quit(f);
}

/* test_smtputf8 - needed but not offered: 553 5.6.7, nothing sent;
   offered: MAIL FROM carries SMTPUTF8 and the message goes */
static void
test_smtputf8(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: caf\xc3\xa9\r\n\r\nx\r\n";
	const char *const rcpts[] = { "j\xc3\xb6rg@example.test" };
	struct smtpc_txn t;
	int fd;

	need_sink();
	sink_start(f, NULL);
	open_plain(f);
	assert_false(f->peer.smtputf8);
	fd = message_fd(f, "u.eml", body, strlen(body));
	memset(&t, 0, sizeof(t));
	t.sender = "s@example.test";
	t.rcpts = rcpts;
	t.nrcpts = 1;
	t.fd = fd;
	t.size = strlen(body);
	t.body_8bit = true;
	t.smtputf8 = true;
	f->done_called = false;
	assert_int_equal(smtpc_send(f->conn, &t, done_cb, f), 0);
	run_until(f, &f->done_called);
	assert_true(f->usable);
	expect_reply(&f->rcpt[0], 553, "5.6.7", "SMTPUTF8", true);
	assert_int_equal(event_count(f, "mail"), 0);
	quit(f);

	sink_stop(f);
	unlink(path_in(f->dir, "port"));
	sink_start(f, "--smtputf8", NULL);
	open_plain(f);
	assert_true(f->peer.smtputf8);
	f->done_called = false;
	assert_int_equal(smtpc_send(f->conn, &t, done_cb, f), 0);
	run_until(f, &f->done_called);
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	assert_true(event_seen(f, "BODY=8BITMIME SMTPUTF8"));
	assert_true(event_seen(f, "to=j\xc3\xb6rg@example.test"));
	check_received(f, 1, body, strlen(body));
	close(fd);
	quit(f);
}

/* ---- TLS ---- */

/* test_starttls_opportunistic - encrypted, not verified (self-signed,
   system trust store), message intact */
static void
test_starttls_opportunistic(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: tls\r\n\r\nover TLS\r\n";

	need_sink();
	sink_start(f, "--tls", cert, key, NULL);
	open_with(f, f->port, SMTPC_TLS_OPPORTUNISTIC, NULL, "localhost",
	    NULL, NULL, NULL);
	assert_true(f->ready_ok);
	assert_true(f->peer.tls);
	assert_false(f->peer.verified);
	assert_true(strncmp(f->tls_version, "TLSv1.", 6) == 0);
	assert_true(event_seen(f, "sni localhost"));
	assert_true(event_seen(f, "ehlo client.test tls=0"));
	assert_true(event_seen(f, "ehlo client.test tls=1"));
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	check_received(f, 1, body, strlen(body));
	quit(f);
}

/* test_opportunistic_verified - a certificate that verifies is
   recorded as verified in opportunistic mode too */
static void
test_opportunistic_verified(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, "--tls", cert, key, NULL);
	open_with(f, f->port, SMTPC_TLS_OPPORTUNISTIC, cert, "localhost",
	    NULL, NULL, NULL);
	assert_true(f->ready_ok);
	assert_true(f->peer.tls);
	assert_true(f->peer.verified);
	quit(f);
}

/* test_opportunistic_wrong_name - not verified, but it goes on */
static void
test_opportunistic_wrong_name(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, "--tls", cert, key, NULL);
	open_with(f, f->port, SMTPC_TLS_OPPORTUNISTIC, cert,
	    "mx.wrong.example", NULL, NULL, NULL);
	assert_true(f->ready_ok);
	assert_true(f->peer.tls);
	assert_false(f->peer.verified);
	assert_true(event_seen(f, "sni mx.wrong.example"));
	quit(f);
}

/* test_starttls_none_offered - opportunistic without STARTTLS: plain */
static void
test_starttls_none_offered(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, NULL);
	open_with(f, f->port, SMTPC_TLS_OPPORTUNISTIC, NULL, "localhost",
	    NULL, NULL, NULL);
	assert_true(f->ready_ok);
	assert_false(f->peer.tls);
	assert_false(f->peer.verified);
	quit(f);
}

/* test_require_verified - the CA file verifies "localhost" */
static void
test_require_verified(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, "--tls", cert, key, NULL);
	open_with(f, f->port, SMTPC_TLS_REQUIRE, cert, "localhost", NULL,
	    NULL, NULL);
	assert_true(f->ready_ok);
	assert_true(f->peer.tls);
	assert_true(f->peer.verified);
	quit(f);
}

/* test_require_wrong_name - same CA, another name: fails, next host */
static void
test_require_wrong_name(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, "--tls", cert, key, NULL);
	open_with(f, f->port, SMTPC_TLS_REQUIRE, cert, "mx.wrong.example",
	    NULL, NULL, NULL);
	assert_false(f->ready_ok);
	assert_true(f->next_host);
	expect_reply(&f->fail, 0, "", "verification failed", true);
	assert_true(strstr(f->fail.text, "mx.wrong.example[127.0.0.1]") !=
	    NULL);
	drain(f);
}

/* test_require_no_starttls - REQUIRE, nothing offered: fails, QUIT */
static void
test_require_no_starttls(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, NULL);
	open_with(f, f->port, SMTPC_TLS_REQUIRE, cert, "localhost", NULL,
	    NULL, NULL);
	assert_false(f->ready_ok);
	assert_true(f->next_host);
	expect_reply(&f->fail, 0, "", "does not offer STARTTLS", true);
	drain(f);
	assert_true(event_seen(f, "quit"));
}

/* test_implicit_tls - TLS from the first byte, verified, delivery */
static void
test_implicit_tls(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: 465\r\n\r\nimplicit\r\n";

	need_sink();
	sink_start(f, "--implicit-tls", cert, key, NULL);
	open_with(f, f->port, SMTPC_TLS_IMPLICIT, cert, "localhost", NULL,
	    NULL, NULL);
	assert_true(f->ready_ok);
	assert_true(f->peer.tls);
	assert_true(f->peer.verified);
	assert_true(event_seen(f, "ehlo client.test tls=1"));
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	check_received(f, 1, body, strlen(body));
	quit(f);
}

/* ---- AUTH ---- */

/* auth - over STARTTLS with mechanism mech (NULL: the sink's choice) */
static void
auth(struct fx *f, const char *mech, const char *password)
{
	if (mech)
		sink_start(f, "--tls", cert, key, "--auth", "alice:s3cret",
		    "--auth-only", mech, NULL);
	else
		sink_start(f, "--tls", cert, key, "--auth", "alice:s3cret",
		    NULL);
	open_with(f, f->port, SMTPC_TLS_REQUIRE, cert, "localhost", "alice",
	    password, NULL);
}

/* test_auth_plain - good password: ready, mail goes (AUTH required) */
static void
test_auth_plain(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: auth\r\n\r\nx\r\n";

	need_sink();
	auth(f, "PLAIN", "s3cret");
	if (!f->ready_ok)
		fail_msg("AUTH failed: %d %s", f->fail.code, f->fail.text);
	assert_true(event_seen(f, "auth PLAIN alice ok"));
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	quit(f);
}

/* test_auth_login - the same through LOGIN's two 334 rounds */
static void
test_auth_login(void **state)
{
	struct fx *f = *state;

	need_sink();
	auth(f, "LOGIN", "s3cret");
	if (!f->ready_ok)
		fail_msg("AUTH failed: %d %s", f->fail.code, f->fail.text);
	assert_true(event_seen(f, "auth LOGIN alice ok"));
	quit(f);
}

/* test_auth_bad - wrong password: the server's 535, not next host */
static void
test_auth_bad(void **state)
{
	struct fx *f = *state;

	need_sink();
	auth(f, "PLAIN", "wrong");
	assert_false(f->ready_ok);
	expect_reply(&f->fail, 535, "5.7.8", "credentials invalid", false);
	assert_false(f->next_host);
	drain(f);
	assert_true(event_seen(f, "auth PLAIN alice bad"));
	assert_true(event_seen(f, "quit"));
}

/* test_auth_needs_tls - credentials but no STARTTLS offered: no AUTH */
static void
test_auth_needs_tls(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, NULL);
	open_with(f, f->port, SMTPC_TLS_OPPORTUNISTIC, NULL, "localhost",
	    "alice", "s3cret", NULL);
	assert_false(f->ready_ok);
	expect_reply(&f->fail, 0, "", "AUTH needs TLS", true);
	drain(f);
	assert_int_equal(event_count(f, "auth"), 0);
}

/* ---- failures before the connection is ready ---- */

/* test_greeting_4xx - 421 greeting: fail with it, try the next host */
static void
test_greeting_4xx(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, "--greeting", "421 4.3.2 sink.test busy, try later",
	    NULL);
	open_with(f, f->port, SMTPC_TLS_NONE, NULL, NULL, NULL, NULL, NULL);
	assert_false(f->ready_ok);
	assert_true(f->next_host);
	expect_reply(&f->fail, 421, "4.3.2", "busy, try later", false);
	drain(f);
}

/* test_greeting_5xx - 554 greeting: fail, next host, QUIT sent */
static void
test_greeting_5xx(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, "--greeting", "554 5.7.1 go away", NULL);
	open_with(f, f->port, SMTPC_TLS_NONE, NULL, NULL, NULL, NULL, NULL);
	assert_false(f->ready_ok);
	assert_true(f->next_host);
	expect_reply(&f->fail, 554, "5.7.1", "go away", false);
	drain(f);
}

/* test_connection_refused - nobody listens: code 0, next host */
static void
test_connection_refused(void **state)
{
	struct fx *f = *state;
	struct smtpc_reply r = { 0 };

	open_with(f, free_port(), SMTPC_TLS_NONE, NULL, NULL, NULL, NULL,
	    NULL);
	assert_false(f->ready_ok);
	assert_true(f->next_host);
	expect_reply(&f->fail, 0, "", "refused", true);
	assert_true(smtpc_reply_temporary(&r));
	drain(f);
}

/* test_greeting_timeout - the server never greets */
static void
test_greeting_timeout(void **state)
{
	struct fx *f = *state;
	struct smtpc_timeouts to = { .greeting = 300 };

	need_sink();
	sink_start(f, "--stall", "greeting", NULL);
	open_with(f, f->port, SMTPC_TLS_NONE, NULL, NULL, NULL, NULL, &to);
	assert_false(f->ready_ok);
	assert_true(f->next_host);
	expect_reply(&f->fail, 0, "", "timeout waiting for the greeting",
	    true);
	drain(f);
}

/* test_helo_fallback - EHLO refused with 5xx: HELO, no extensions */
static void
test_helo_fallback(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: helo\r\n\r\nx\r\n";

	need_sink();
	sink_start(f, "--no-ehlo", "--size", "100000", NULL);
	open_plain(f);
	assert_false(f->peer.esmtp);
	assert_false(f->peer.eightbitmime);
	assert_int_equal(f->peer.size, 0);
	assert_true(event_seen(f, "helo client.test"));
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	assert_true(event_seen(f, "mail <s@example.test>  pipelined=0"));
	quit(f);
}

/* ---- failures during a transaction ---- */

/* test_data_timeout - no reply to "." within data_term */
static void
test_data_timeout(void **state)
{
	struct fx *f = *state;
	struct smtpc_timeouts to = { .data_term = 300 };
	const char *body = "Subject: t\r\n\r\nx\r\n";
	const char *const rcpts[] = { "a@example.test", "b@example.test" };

	need_sink();
	sink_start(f, "--stall", "data", NULL);
	open_with(f, f->port, SMTPC_TLS_NONE, NULL, NULL, NULL, NULL, &to);
	assert_true(f->ready_ok);
	send_msg(f, "s@example.test", rcpts, 2, NULL, body, strlen(body));
	assert_false(f->usable);
	expect_reply(&f->rcpt[0], 0, "", "timeout in reply to end of data",
	    true);
	expect_reply(&f->rcpt[1], 0, "", "timeout in reply to end of data",
	    true);
	drain(f);
}

/* test_drop_after_data - the server hangs up instead of answering */
static void
test_drop_after_data(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: t\r\n\r\nx\r\n";

	need_sink();
	sink_start(f, "--drop-after-data", NULL);
	open_plain(f);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	assert_false(f->usable);
	expect_reply(&f->rcpt[0], 0, "",
	    "lost connection in reply to end of data", true);
	drain(f);
}

/* test_idle_lost - the server goes away while the connection is idle:
   the next send reports it, and the connection is gone */
static void
test_idle_lost(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: t\r\n\r\nx\r\n";

	need_sink();
	sink_start(f, NULL);
	open_plain(f);
	sink_stop(f);
	run_for(f, 200);
	send_msg(f, "s@example.test", one_rcpt, 1, NULL, body, strlen(body));
	assert_false(f->usable);
	expect_reply(&f->rcpt[0], 0, "", "lost connection while idle", true);
	drain(f);
}

/* big_line - line i of the large message; every 7th starts with "." */
static size_t
big_line(unsigned i, char *line, size_t size)
{
	return (size_t)snprintf(line, size, "%s%07u the quick brown fox "
	    "jumps over the lazy dog\r\n", i % 7 == 0 ? "." : "", i);
}

/* same_stream - fd a from its offset holds exactly what fd b holds */
static bool
same_stream(int a, int b)
{
	static char ba[65536], bb[65536];
	ssize_t na, nb, got;

	for (;;) {
		na = read(a, ba, sizeof(ba));
		for (nb = 0; nb < na; nb += got)
			if ((got = read(b, bb + nb, (size_t)(na - nb))) <= 0)
				return false;
		if (na <= 0)
			return na == 0 && read(b, bb, 1) == 0;
		if (memcmp(ba, bb, (size_t)na) != 0)
			return false;
	}
}

/*
 * under_valgrind - RSS means nothing there, nor under AddressSanitizer
 * (freed memory stays in its quarantine, so RSS grows with every buffer)
 */
static bool
under_valgrind(void)
{
#ifdef __SANITIZE_ADDRESS__
	return true;
#else
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, "vgpreload") != NULL;
#endif
}

/*
 * test_large_message - 5 MiB streamed from its file, dot-stuffed, byte
 * for byte, ending mid-line (CRLF added); the client's memory does not
 * grow with the message (maximum RSS, outside valgrind)
 */
static void
test_large_message(void **state)
{
	struct fx *f = *state;
	const size_t len = 5 * 1024 * 1024;
	const char *pre = "X-Pre: 1\r\n";
	struct smtpc_txn t;
	struct rusage ru;
	char line[80], got[16];
	size_t off = 0, n;
	long rss0;
	unsigned i;
	int fd, rfd;

	need_sink();
	fd = open(path_in(f->dir, "big.eml"), O_RDWR | O_CREAT | O_TRUNC,
	    0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "Subject: big\r\n\r\n", 16), 16);
	for (off = 16, i = 0; off < len; off += n, i++) {
		n = big_line(i, line, sizeof(line));
		if (n > len - off)
			n = len - off;
		assert_int_equal(write(fd, line, n), (ssize_t)n);
	}
	sink_start(f, "--pipelining", NULL);
	open_plain(f);
	getrusage(RUSAGE_SELF, &ru);
	rss0 = ru.ru_maxrss;
	memset(&t, 0, sizeof(t));
	t.sender = "s@example.test";
	t.rcpts = one_rcpt;
	t.nrcpts = 1;
	t.fd = fd;
	t.size = len;
	t.prepend = pre;
	t.prepend_len = strlen(pre);
	f->done_called = false;
	assert_int_equal(smtpc_send(f->conn, &t, done_cb, f), 0);
	run_until(f, &f->done_called);
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 1", false);
	getrusage(RUSAGE_SELF, &ru);
	if (!under_valgrind() && ru.ru_maxrss - rss0 > 2048)
		fail_msg("maximum RSS grew by %ld KiB for a 5 MiB message",
		    ru.ru_maxrss - rss0);
	assert_true(event_seen(f, "size=5242892"));	/* 10 + len + 2 */
	rfd = open(path_in(f->dir, "msg.1"), O_RDONLY);
	assert_true(rfd != -1);
	assert_int_equal(read(rfd, got, 10), 10);
	assert_memory_equal(got, pre, 10);
	assert_int_equal(lseek(rfd, 0, SEEK_END), (off_t)(10 + len + 2));
	lseek(rfd, 10, SEEK_SET);
	/* What was sent, with the CRLF the client had to add. */
	assert_int_equal(pwrite(fd, "\r\n", 2, (off_t)len), 2);
	lseek(fd, 0, SEEK_SET);
	assert_true(same_stream(fd, rfd));
	close(rfd);
	close(fd);
	quit(f);
}

/* ---- hostile servers ---- */

/* test_hostile_long_line - an 8 KiB reply line: protocol error */
static void
test_hostile_long_line(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, "--hostile", "longline", NULL);
	open_with(f, f->port, SMTPC_TLS_NONE, NULL, NULL, NULL, NULL, NULL);
	assert_false(f->ready_ok);
	assert_true(f->next_host);
	expect_reply(&f->fail, 0, "", "reply line longer than 4096 bytes",
	    true);
	drain(f);
}

/* test_hostile_many_lines - a 151-line reply: protocol error */
static void
test_hostile_many_lines(void **state)
{
	struct fx *f = *state;

	need_sink();
	sink_start(f, "--hostile", "manylines", NULL);
	open_with(f, f->port, SMTPC_TLS_NONE, NULL, NULL, NULL, NULL, NULL);
	assert_false(f->ready_ok);
	expect_reply(&f->fail, 0, "", "too many reply lines", true);
	drain(f);
}

/* ---- the API ---- */

/* test_source_address - the connection leaves from the address given */
static void
test_source_address(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in src;

	need_sink();
	sink_start(f, NULL);
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f000002);	/* 127.0.0.2 */
	f->source = &src;
	open_plain(f);
	assert_true(event_seen(f, "connect 127.0.0.2"));
	quit(f);
}

/* chain_done_cb - the first outcome sends again from inside the
   callback, the second aborts from inside it */
static void
chain_done_cb(void *arg, struct smtpc *conn, const struct smtpc_reply *rcpt,
    size_t n, bool usable)
{
	struct fx *f = arg;

	done_cb(arg, conn, rcpt, n, usable);
	f->done_called = false;
	if (++f->chain == 1) {
		f->send_rc = smtpc_send(conn, &f->txn, chain_done_cb, f);
		return;
	}
	smtpc_abort(conn);
	f->conn = NULL;
	f->done_called = true;
}

/* send_ready_cb - the transaction starts from inside the ready call */
static void
send_ready_cb(void *arg, struct smtpc *conn, const struct smtpc_peer *peer,
    const struct smtpc_reply *r, bool next_host)
{
	struct fx *f = arg;

	ready_cb(arg, conn, peer, r, next_host);
	if (r == NULL)
		f->send_rc = smtpc_send(conn, &f->txn, chain_done_cb, f);
}

/* test_reentrant - send from the ready callback, send again from the
   done callback, abort from the second done callback */
static void
test_reentrant(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: again\r\n\r\nx\r\n";
	struct smtpc_params p;
	struct sockaddr_in sin;
	char *err = NULL;

	need_sink();
	sink_start(f, "--pipelining", NULL);
	memset(&f->txn, 0, sizeof(f->txn));
	f->txn.sender = "s@example.test";
	f->txn.rcpts = one_rcpt;
	f->txn.nrcpts = 1;
	f->txn.fd = message_fd(f, "again.eml", body, strlen(body));
	f->txn.size = strlen(body);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)f->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&p, 0, sizeof(p));
	p.addr = (struct sockaddr *)&sin;
	p.addrlen = sizeof(sin);
	p.helo = "client.test";
	f->conn = smtpc_open(f->base, &p, send_ready_cb, f, &err);
	assert_non_null(f->conn);
	f->send_rc = -2;
	run_until(f, &f->done_called);
	assert_int_equal(f->chain, 2);
	assert_int_equal(f->send_rc, 0);
	expect_reply(&f->rcpt[0], 250, "2.0.0", "queued as 2", false);
	check_received(f, 1, body, strlen(body));
	check_received(f, 2, body, strlen(body));
	close(f->txn.fd);
	drain(f);
}


/* test_abort_early - abort before the connect finished: no callback */
static void
test_abort_early(void **state)
{
	struct fx *f = *state;
	struct smtpc_params p;
	struct sockaddr_in sin;
	char *err = NULL;

	need_sink();
	sink_start(f, NULL);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)f->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&p, 0, sizeof(p));
	p.addr = (struct sockaddr *)&sin;
	p.addrlen = sizeof(sin);
	p.helo = "client.test";
	f->conn = smtpc_open(f->base, &p, ready_cb, f, &err);
	assert_non_null(f->conn);
	smtpc_abort(f->conn);
	f->conn = NULL;
	run_for(f, 100);
	assert_false(f->ready_called);
	drain(f);
}

/* test_bad_params - refused at once, with a reason */
static void
test_bad_params(void **state)
{
	struct fx *f = *state;
	struct smtpc_params p;
	struct sockaddr_in sin;
	char *err = NULL;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(25);
	memset(&p, 0, sizeof(p));
	p.addr = (struct sockaddr *)&sin;
	p.addrlen = sizeof(sin);
	p.helo = "bad name\r\nRSET";
	assert_null(smtpc_open(f->base, &p, ready_cb, f, &err));
	assert_non_null(strstr(err, "HELO"));
	free(err);
	err = NULL;
	p.helo = "client.test";
	p.tls = SMTPC_TLS_REQUIRE;
	assert_null(smtpc_open(f->base, &p, ready_cb, f, &err));
	assert_non_null(strstr(err, "TLS"));
	free(err);
	assert_null(smtpc_tls_ctx("/nonexistent/ca.pem", &err));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	free(err);
}

/* test_bad_address - an address that would inject a command */
static void
test_bad_address(void **state)
{
	struct fx *f = *state;
	const char *const rcpts[] = { "ok@example.test",
	    "evil@example.test>\r\nRCPT TO:<x@y" };
	const char *body = "Subject: t\r\n\r\nx\r\n";

	need_sink();
	sink_start(f, NULL);
	open_plain(f);
	send_msg(f, "s@example.test", rcpts, 2, NULL, body, strlen(body));
	assert_true(f->usable);
	expect_reply(&f->rcpt[0], 451, "4.3.0", "not sent", true);
	expect_reply(&f->rcpt[1], 553, "5.1.3", "bad recipient", true);
	assert_int_equal(event_count(f, "mail"), 0);
	quit(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name)	cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_exact_bytes),
		T(test_no_final_crlf),
		T(test_empty_body),
		T(test_rcpt_refused_lockstep),
		T(test_rcpt_refused_pipelined),
		T(test_mail_refused),
		T(test_all_refused_rset_lockstep),
		T(test_all_refused_rset_pipelined),
		T(test_data_reply),
		T(test_two_transactions),
		T(test_size_exceeded),
		T(test_smtputf8),
		T(test_starttls_opportunistic),
		T(test_opportunistic_verified),
		T(test_opportunistic_wrong_name),
		T(test_starttls_none_offered),
		T(test_require_verified),
		T(test_require_wrong_name),
		T(test_require_no_starttls),
		T(test_implicit_tls),
		T(test_auth_plain),
		T(test_auth_login),
		T(test_auth_bad),
		T(test_auth_needs_tls),
		T(test_greeting_4xx),
		T(test_greeting_5xx),
		T(test_connection_refused),
		T(test_greeting_timeout),
		T(test_helo_fallback),
		T(test_data_timeout),
		T(test_drop_after_data),
		T(test_idle_lost),
		T(test_large_message),
		T(test_hostile_long_line),
		T(test_hostile_many_lines),
		T(test_source_address),
		T(test_reentrant),
		T(test_abort_early),
		T(test_bad_params),
		T(test_bad_address),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
