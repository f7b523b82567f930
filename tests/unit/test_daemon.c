/*
 * test_daemon - the daemon module (daemon/) against real files and a real
 * loop:
 *  - stop_next(), the graceful stop's decision, as a table;
 *  - configuration generations: a reload adds a new current generation
 *    while the older ones (what sessions in progress point into) stay
 *    whole; each refused reload names its reason, logs the errors and
 *    leaves the current one in force;
 *  - the whole life cycle in a child process: daemon_start() up to
 *    "ready", a client greeted, a broken reload refused, a good one
 *    taken (its new listener accepts), SIGTERM: the idle client gets
 *    421 4.3.2, the loop ends, daemon_free() logs "stopped" and the
 *    child exits 0 (under ASan: with no leak).
 * Fixtures live in a mkdtemp directory (kept when POSTERN_KEEP_TMP is
 * set); stderr (the log) is captured into files there.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/log.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "daemon/generation.h"
#include "daemon/stop.h"
#include "keys/dkim.h"
#include "keys/keyfile.h"
#include "keys/keyring.h"

#define USER		"nobody"	/* the daemon's user when root */
#define WAIT_MS		20000		/* for a log line to appear */

static char	tmpdir[] = "/tmp/postern-test-daemon-XXXXXX";
static int	saved_stderr = -1;

/* path_in - tmpdir/rel in a static buffer (one at a time) */
static const char *
path_in(const char *rel)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
	return p;
}

/* write_file - tmpdir/rel holding text, mode 0644 */
static void
write_file(const char *rel, const char *text)
{
	FILE *f;

	assert_non_null(f = fopen(path_in(rel), "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path_in(rel), 0644), 0);
}

/* read_file - the whole of path (caller frees); "" if it is missing */
static char *
read_file(const char *path)
{
	char *s = xcalloc(1, 1 << 20);
	ssize_t n;
	size_t len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return s;
	while (len < (1 << 20) - 1 &&
	    (n = read(fd, s + len, (1 << 20) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	return s;
}

/* capture - stderr (the log) into tmpdir/name from now on */
static void
capture(const char *name)
{
	int fd;

	fflush(stderr);
	assert_true((fd = open(path_in(name), O_WRONLY | O_CREAT | O_TRUNC,
	    0644)) >= 0);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
}

/* captured - stderr back; the log written meanwhile (caller frees) */
static char *
captured(const char *name)
{
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	return read_file(path_in(name));
}

/* free_port - a loopback TCP port nobody listens on right now */
static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port;

	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/*
 * config_text - a configuration for the fixture: hostname, the trusted
 * plaintext listeners on ports (0 ends the list), state_dir and user as
 * given (NULL: "state", USER), the DKIM selector, and extra text.
 */
static char *
config_text(const char *hostname, const int *ports, const char *state,
    const char *user, const char *selector, const char *extra)
{
	char listen[512] = "";
	size_t len = 0;

	for (; *ports != 0; ports++)
		len += (size_t)snprintf(listen + len, sizeof(listen) - len,
		    "%s{ address = \"127.0.0.1\"; port = %d; tls = \"none\"; "
		    "trusted = true; senders = [ \"app@example.test\" ]; }",
		    len ? ",\n  " : "", *ports);
	return xasprintf(
	    "hostname = \"%s\";\n"
	    "state_dir = \"%s\";\n"
	    "user = \"%s\";\n"
	    "stop_timeout = \"5s\";\n"
	    "listen = ( %s );\n"
	    "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	    "domains = ( { name = \"example.test\";\n"
	    "  dkim = ( { selector = \"%s\"; algorithm = \"rsa-sha256\"; } ); "
	    "} );\n"
	    "relay = { mode = \"directory\"; directory = \"mail\"; };\n"
	    "%s",
	    hostname, state ? state : "state", user ? user : USER, listen,
	    selector, extra ? extra : "");
}

/* write_config - config_text() into tmpdir/t.conf */
static void
write_config(const char *hostname, const int *ports, const char *state,
    const char *user, const char *selector, const char *extra)
{
	char *text = config_text(hostname, ports, state, user, selector,
	    extra);

	write_file("t.conf", text);
	free(text);
}

/* give_to_user - as INSTALL has the admin do when root: state_dir and
   the keys belong to the daemon's user */
static int
give_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	struct passwd *pw = getpwnam(USER);

	(void)st;
	(void)flag;
	(void)ftw;
	return pw == NULL ? -1 : lchown(path, pw->pw_uid, pw->pw_gid);
}

static void
give_to_user(void)
{
	if (geteuid() == 0)
		assert_int_equal(nftw(path_in("state"), give_entry, 16,
		    FTW_PHYS), 0);
}

/* ---- stop_next ---------------------------------------------------- */

/* test_stop_next - every step of the graceful stop's decision */
static void
test_stop_next(void **state)
{
	static const struct {
		unsigned	 sessions;
		size_t		 busy;
		bool		 forced;
		time_t		 deadline, now;
		enum stop_step	 want;
	} cases[] = {
		/* nothing left: done, before or after the deadline, and
		   during the grace too */
		{ 0, 0, false, 100, 50, STOP_DONE },
		{ 0, 0, false, 100, 500, STOP_DONE },
		{ 0, 0, true, 100, 99, STOP_DONE },
		{ 0, 0, true, 100, 100, STOP_DONE },
		/* a session or a delivery left, deadline ahead: wait */
		{ 1, 0, false, 100, 99, STOP_WAIT },
		{ 0, 1, false, 100, 99, STOP_WAIT },
		{ 3, 2, true, 100, 99, STOP_WAIT },
		/* stop_timeout reached (at, or past it): drop them */
		{ 1, 0, false, 100, 100, STOP_FORCE },
		{ 0, 1, false, 100, 101, STOP_FORCE },
		/* the grace after dropping reached: leave */
		{ 1, 0, true, 102, 102, STOP_LEAVE },
		{ 0, 4, true, 102, 200, STOP_LEAVE },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum stop_step got = stop_next(cases[i].sessions,
		    cases[i].busy, cases[i].forced, cases[i].deadline,
		    cases[i].now);

		if (got != cases[i].want)
			fail_msg("case %zu: got step %d, want %d", i, got,
			    cases[i].want);
	}
}

/* ---- generations -------------------------------------------------- */

/* load_first - the start's generation from t.conf, as daemon_start()
   loads it */
static void
load_first(struct generations *gens)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;
	struct keyring *kr;

	cfg = config_load(path_in("t.conf"), &errs);
	if (cfg == NULL)
		fail_msg("t.conf: %s", errs.n ? errs.v[0] : "?");
	kr = keyring_load(cfg, &errs);
	if (kr == NULL)
		fail_msg("keys: %s", errs.n ? errs.v[0] : "?");
	generation_first(gens, cfg, kr);
}

/* active_selector - the selector g's keys sign example.test with */
static const char *
active_selector(const struct generation *g)
{
	const struct keyfile *const *kf;
	size_t n = 0;

	kf = keyring_keys(g->keys, &g->cfg->domains[0], &n);
	assert_int_equal(n, 1);
	return kf[0]->selector;
}

/*
 * test_generation_reload - a reload adds a current generation; what a
 * session started before holds (the old config and keys) stays whole
 */
static void
test_generation_reload(void **state)
{
	static const int ports[] = { 2525, 0 }, ports2[] = { 2525, 2526, 0 };
	struct generations gens;
	struct generation *g, *first;
	const struct config *session_cfg;
	const char *why = NULL;
	char *log;

	(void)state;
	write_config("old.example.test", ports, NULL, NULL, "r1", NULL);
	load_first(&gens);
	assert_int_equal(gens.n, 1);
	first = gens.current;
	session_cfg = gens.current->cfg;	/* a session in progress */

	write_config("new.example.test", ports2, NULL, NULL, "r2", NULL);
	capture("gen.log");
	g = generation_load(path_in("t.conf"), gens.current->cfg, &why);
	log = captured("gen.log");
	assert_non_null(g);
	assert_null(why);
	assert_string_equal(log, "");	/* nothing to complain about */
	free(log);
	/* a candidate is in no list until added */
	assert_ptr_equal(gens.current, first);
	assert_int_equal(gens.n, 1);
	generation_add(&gens, g);
	assert_ptr_equal(gens.current, g);
	assert_ptr_equal(g->older, first);
	assert_int_equal(gens.n, 2);
	assert_string_equal(gens.current->cfg->hostname, "new.example.test");
	assert_int_equal(gens.current->cfg->nlisten, 2);
	assert_string_equal(gens.current->cfg->domains[0].dkim[0].selector,
	    "r2");
	assert_string_equal(active_selector(gens.current), "r2");
	/* the old session still reads its own, unchanged */
	assert_string_equal(session_cfg->hostname, "old.example.test");
	assert_int_equal(session_cfg->nlisten, 1);
	assert_string_equal(session_cfg->domains[0].dkim[0].selector, "r1");
	assert_string_equal(active_selector(first), "r1");

	generation_free_all(&gens);
	assert_null(gens.current);
	assert_int_equal(gens.n, 0);
}

/* One refused reload: the file written, why, and a log line expected. */
struct refusal {
	const char	*name;
	const char	*state;		/* NULL: the running one */
	const char	*user;		/* NULL: the running one */
	const char	*selector;
	const char	*extra;
	const char	*raw;		/* whole file instead, if set */
	const char	*why;
	const char	*log;		/* in the log; NULL: log empty */
};

static const struct refusal refusals[] = {
	{ "syntax error", NULL, NULL, "r1", NULL,
	  "hostname = \"x.example\";\nlisten = ( { port = ; } );\n",
	  "errors above", "t.conf:2: syntax error" },
	{ "unknown setting", NULL, NULL, "r1", "bogus = 1;\n", NULL,
	  "errors above", "t.conf:10: unknown setting \"bogus\"" },
	{ "state_dir changes", "state2", NULL, "r1", NULL, NULL,
	  "state_dir and user change only at a restart", NULL },
	{ "user changes", NULL, "daemon", "r1", NULL, NULL,
	  "state_dir and user change only at a restart", NULL },
	{ "key missing", NULL, NULL, "r9", NULL, NULL,
	  "a DKIM key does not load", "r9.key" },
};

/*
 * test_generation_refused - each refused reload says why, logs the
 * problems as "reload: ..." warnings and leaves the current generation
 * (and the list) as it was
 */
static void
test_generation_refused(void **state)
{
	static const int ports[] = { 2525, 0 };
	const struct refusal *rf;
	struct generations gens;
	struct generation *first, *g;
	const char *why;
	char *log;

	(void)state;
	write_config("old.example.test", ports, NULL, NULL, "r1", NULL);
	load_first(&gens);
	first = gens.current;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		rf = &refusals[i];
		if (rf->raw != NULL)
			write_file("t.conf", rf->raw);
		else
			write_config("new.example.test", ports, rf->state,
			    rf->user, rf->selector, rf->extra);
		why = NULL;
		capture("gen.log");
		g = generation_load(path_in("t.conf"), gens.current->cfg,
		    &why);
		log = captured("gen.log");
		if (g != NULL)
			fail_msg("%s: the reload was taken", rf->name);
		if (why == NULL || strcmp(why, rf->why) != 0)
			fail_msg("%s: why \"%s\", want \"%s\"", rf->name,
			    why ? why : "(null)", rf->why);
		if (rf->log == NULL ? log[0] != '\0' :
		    strstr(log, rf->log) == NULL ||
		    strstr(log, "warning reload: ") == NULL)
			fail_msg("%s: log \"%s\", want \"%s\"", rf->name, log,
			    rf->log ? rf->log : "");
		free(log);
		assert_ptr_equal(gens.current, first);
		assert_int_equal(gens.n, 1);
		assert_string_equal(gens.current->cfg->hostname,
		    "old.example.test");
	}
	generation_free_all(&gens);
}

/* ---- the life cycle ----------------------------------------------- */

/* wait_log - until path holds want (or WAIT_MS passed): 0 or -1 */
static int
wait_log(const char *path, const char *want)
{
	for (int ms = 0; ms < WAIT_MS; ms += 20) {
		char *log = read_file(path);
		int found = strstr(log, want) != NULL;

		free(log);
		if (found)
			return 0;
		usleep(20 * 1000);
	}
	return -1;
}

/* connect_port - a connection to 127.0.0.1:port, or -1 */
static int
connect_port(int port)
{
	struct sockaddr_in sin;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* read_reply - one read of what the server sent (NUL-terminated) */
static void
read_reply(int fd, char *out, size_t outsz)
{
	struct timeval tv = { 10, 0 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = read(fd, out, outsz - 1);
	out[n > 0 ? n : 0] = '\0';
}

/* expect_log - fail with the log unless it holds want */
static void
expect_log(const char *logpath, const char *want)
{
	if (wait_log(logpath, want) == -1) {
		char *log = read_file(logpath);

		fail_msg("no \"%s\" in the log:\n%s", want, log);
	}
}

/*
 * test_life_cycle - daemon_start/run/free in a child, driven by signals
 * as an admin would
 */
static void
test_life_cycle(void **state)
{
	int ports[] = { free_port(), 0 }, ports2[] = { 0, 0, 0 };
	char logpath[512], reply[512], *log;
	int fd, fd2, status;
	pid_t pid;

	(void)state;
	ports2[0] = ports[0];
	ports2[1] = free_port();
	write_config("life.example.test", ports, NULL, NULL, "r1", NULL);
	give_to_user();
	snprintf(logpath, sizeof(logpath), "%s", path_in("life.log"));
	fflush(NULL);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		struct daemon *d;
		int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (lfd == -1 || dup2(lfd, STDERR_FILENO) == -1)
			_exit(99);
		close(lfd);
		d = daemon_start(path_in("t.conf"), 0);
		daemon_run(d);
		daemon_free(d);
		exit(0);	/* not _exit: LeakSanitizer checks here */
	}
	expect_log(logpath, "ready hostname=life.example.test");

	/* a client is greeted, and stays idle */
	assert_true((fd = connect_port(ports[0])) >= 0);
	read_reply(fd, reply, sizeof(reply));
	assert_true(strncmp(reply, "220 ", 4) == 0);

	/* a broken configuration is refused; the old one goes on */
	write_file("t.conf", "hostname = ;\n");
	assert_int_equal(kill(pid, SIGHUP), 0);
	expect_log(logpath, "refused: errors above; the configuration in "
	    "force stays");
	assert_true((fd2 = connect_port(ports2[1])) == -1);

	/* a good one: its new listener accepts, the old one stays */
	write_config("life.example.test", ports2, NULL, NULL, "r1", NULL);
	assert_int_equal(kill(pid, SIGHUP), 0);
	expect_log(logpath, "reloaded ");
	expect_log(logpath, ": 2 listener(s), 1 domain(s)");
	assert_true((fd2 = connect_port(ports2[1])) >= 0);
	read_reply(fd2, reply, sizeof(reply));
	assert_true(strncmp(reply, "220 ", 4) == 0);
	close(fd2);

	/* SIGTERM: the idle client gets its 421, the daemon ends */
	assert_int_equal(kill(pid, SIGTERM), 0);
	read_reply(fd, reply, sizeof(reply));
	if (strstr(reply, "421 4.3.2") == NULL)
		fail_msg("idle client got \"%s\"", reply);
	close(fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	log = read_file(logpath);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("daemon status %d; log:\n%s", status, log);
	assert_non_null(strstr(log, "signal 15: stopping; waiting up to 5s "
	    "for 1 session(s) and 0 delivery(ies)"));
	assert_non_null(strstr(log, "stopping: every transaction and "
	    "delivery finished"));
	assert_non_null(strstr(log, "stopped"));
	/* and in that order */
	assert_true(strstr(log, "ready hostname=") <
	    strstr(log, "signal SIGHUP: reloading"));
	assert_true(strstr(log, "signal 15: stopping") <
	    strstr(log, "stopped"));
	free(log);
}

/* ---- fixture ------------------------------------------------------- */

/* rm_entry - nftw callback removing one entry */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* setup - tmpdir (readable by the daemon's user) with a dummy TLS pair
   and the RSA keys r1 and r2 of example.test */
static int
setup(void **state)
{
	char *err = NULL;

	(void)state;
	umask(077);
	if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0755) == -1)
		return -1;
	if (mkdir(path_in("state"), 0700) == -1 ||
	    mkdir(path_in("state/keys"), 0700) == -1 ||
	    mkdir(path_in("state/keys/example.test"), 0700) == -1)
		return -1;
	write_file("state/cert.pem", "dummy certificate\n");
	write_file("state/key.pem", "dummy key\n");
	chmod(path_in("state/key.pem"), 0600);
	if (keyfile_generate(path_in("state/keys/example.test/r1.key"),
	    KEYFILE_RSA_SHA256, 2048, &err) == -1 ||
	    keyfile_generate(path_in("state/keys/example.test/r2.key"),
	    KEYFILE_RSA_SHA256, 2048, &err) == -1) {
		fprintf(stderr, "keyfile_generate: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

/* teardown - remove tmpdir unless POSTERN_KEEP_TMP is set */
static int
teardown(void **state)
{
	(void)state;
	dkim_shutdown();
	if (getenv("POSTERN_KEEP_TMP")) {
		fprintf(stderr, "# kept %s\n", tmpdir);
		return 0;
	}
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_next),
		cmocka_unit_test(test_generation_reload),
		cmocka_unit_test(test_generation_refused),
		cmocka_unit_test(test_life_cycle),
	};

	log_init("test_daemon", 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
