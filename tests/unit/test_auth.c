/*
 * test_auth - SMTP AUTH through Cyrus SASL, and sasldb user management
 *
 * Everything here is real: a sasldb file in a fresh temporary directory,
 * users written by auth_user_set() and by the real `saslpasswd2`, and
 * conversations driven by a real libsasl2 *client* (sasl_client_start /
 * sasl_client_step) against auth_start/auth_step, for PLAIN, LOGIN and
 * SCRAM-SHA-256. Hand-built responses cover what smtplib and broken
 * clients send. The tests run in order: the user-management tests build
 * the sasldb that the conversations use.
 *
 * Needs sasl2-bin (saslpasswd2, sasldblistusers2) and libsasl2-modules.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "common/alloc.h"
#include "common/log.h"
#include "config/config.h"
#include "submit/auth.h"

#define S(lit)		lit, sizeof(lit) - 1
#define HOSTNAME	"relay.example.org"
#define ALICE		"alice@example.org"
#define ALICE_PW	"Pw-alice-7QzK"
#define ALICE_PW2	"Pw-alice-new-9RtL"
#define BOB		"bob@example.org"	/* written by saslpasswd2 -u */
#define BOB_PW		"Pw-bob-4HnM"
#define CAROL		"carol"			/* no realm: the hostname's */
#define CAROL_PW	"Pw-carol-2WxV"
#define SASLPASSWD2	"/usr/sbin/saslpasswd2"

static char tmpdir[] = "/tmp/test_auth.XXXXXX";
static char sasldb[sizeof(tmpdir) + 16];
static char conf[sizeof(tmpdir) + 16];	/* $SASL_CONF_PATH/postern.conf */
static char *mechs[] = { "PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5",
    "DIGEST-MD5" };
static struct config cfg;
static const char *const conv_mechs[] = { "PLAIN", "LOGIN", "SCRAM-SHA-256" };

/* b64 - base64 of n bytes into new memory */
static char *
b64(const char *p, size_t n)
{
	size_t sz = (n + 2) / 3 * 4 + 1;
	char *out = xmalloc(sz);
	unsigned len;

	out[0] = '\0';
	if (n > 0)
		assert_int_equal(sasl_encode64(p, (unsigned)n, out,
		    (unsigned)sz, &len), SASL_OK);
	return out;
}

/* unb64 - decode base64 from the server into new memory */
static char *
unb64(const char *s, unsigned *len)
{
	size_t sz = strlen(s) / 4 * 3 + 4;
	char *out = xmalloc(sz);

	*len = 0;
	out[0] = '\0';
	if (*s != '\0')
		assert_int_equal(sasl_decode64(s, (unsigned)strlen(s), out,
		    (unsigned)sz, len), SASL_OK);
	return out;
}

/* --- the real SASL client ------------------------------------------ */

struct client {
	const char	*authname;
	const char	*password;
	sasl_secret_t	*secret;
};

/* client_simple - SASL_CB_AUTHNAME and SASL_CB_USER (empty authzid) */
static int
client_simple(void *context, int id, const char **result, unsigned *len)
{
	struct client *c = context;

	if (id == SASL_CB_AUTHNAME)
		*result = c->authname;
	else if (id == SASL_CB_USER)
		*result = "";
	else
		return SASL_BADPARAM;
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

/* client_pass - SASL_CB_PASS */
static int
client_pass(sasl_conn_t *conn, void *context, int id, sasl_secret_t **psec)
{
	struct client *c = context;
	size_t n = strlen(c->password);

	(void)conn;
	if (id != SASL_CB_PASS)
		return SASL_BADPARAM;
	if (c->secret == NULL) {
		c->secret = xcalloc(1, sizeof(sasl_secret_t) + n + 1);
		c->secret->len = n;
		memcpy(c->secret->data, c->password, n);
	}
	*psec = c->secret;
	return SASL_OK;
}

#define CB(f)	((int (*)(void))(void (*)(void))(f))

/*
 * converse - run mech as a real client with login/password against as;
 * returns the server's final result and its login on AUTH_OK.
 */
static enum auth_result
converse(struct auth_session *as, const char *mech, const char *login,
    const char *password, const char **who)
{
	struct client c = { login, password, NULL };
	sasl_callback_t cb[] = {
		{ SASL_CB_AUTHNAME, CB(client_simple), &c },
		{ SASL_CB_USER, CB(client_simple), &c },
		{ SASL_CB_PASS, CB(client_pass), &c },
		{ SASL_CB_LIST_END, NULL, NULL },
	};
	sasl_security_properties_t sp;
	sasl_conn_t *conn;
	const char *out = NULL, *chosen = NULL, *chal = NULL;
	unsigned outlen = 0, declen;
	enum auth_result res;
	char *initial, *resp, *dec;
	int r, rounds;

	*who = NULL;
	assert_int_equal(sasl_client_new("smtp", HOSTNAME, NULL, NULL, cb, 0,
	    &conn), SASL_OK);
	memset(&sp, 0, sizeof(sp));
	assert_int_equal(sasl_setprop(conn, SASL_SEC_PROPS, &sp), SASL_OK);
	r = sasl_client_start(conn, mech, NULL, &out, &outlen, &chosen);
	assert_true(r == SASL_OK || r == SASL_CONTINUE);
	assert_string_equal(chosen, mech);
	/* an initial response if the mechanism has one (smtplib style) */
	initial = out != NULL && outlen > 0 ? b64(out, outlen) : NULL;
	res = auth_start(as, mech, initial, &chal, who);
	free(initial);
	for (rounds = 0; res == AUTH_CONTINUE; rounds++) {
		assert_true(rounds < 5);
		assert_non_null(chal);
		dec = unb64(chal, &declen);
		out = NULL;
		outlen = 0;
		r = sasl_client_step(conn, dec, declen, NULL, &out, &outlen);
		free(dec);
		assert_true(r == SASL_OK || r == SASL_CONTINUE);
		resp = b64(out ? out : "", out ? outlen : 0);
		res = auth_step(as, resp, &chal, who);
		free(resp);
	}
	sasl_dispose(&conn);
	free(c.secret);
	return res;
}

/* converse_new - converse on a fresh session */
static enum auth_result
converse_new(const char *mech, const char *login, const char *password,
    char **who)
{
	struct auth_session *as;
	enum auth_result res;
	const char *w;

	assert_non_null(as = auth_new("127.0.0.1;587", "127.0.0.1;40000"));
	res = converse(as, mech, login, password, &w);
	*who = w ? xstrdup(w) : NULL;
	auth_free(as);
	return res;
}

/* --- helpers around files and tools -------------------------------- */

/* run_saslpasswd2 - the real tool, password on stdin (-p) */
static void
run_saslpasswd2(const char *user, const char *realm, const char *password)
{
	char cmd[512];
	FILE *fp;

	snprintf(cmd, sizeof(cmd), SASLPASSWD2 " -p -c -f '%s' -u '%s' '%s'",
	    sasldb, realm, user);
	assert_non_null(fp = popen(cmd, "w"));
	fputs(password, fp);
	assert_int_equal(pclose(fp), 0);
}

struct names {
	char	*v[16];
	size_t	 n;
};

/* collect - auth_user_list callback */
static void
collect(const char *login, void *arg)
{
	struct names *nm = arg;

	assert_true(nm->n < 16);
	nm->v[nm->n++] = xstrdup(login);
}

/* list_is - the sasldb holds exactly these logins, in this order */
static void
list_is(const char *const *want, size_t nwant)
{
	struct names nm = { .n = 0 };
	const char *err = NULL;
	size_t i;

	assert_int_equal(auth_user_list(&cfg, collect, &nm, &err), 0);
	assert_int_equal(nm.n, nwant);
	for (i = 0; i < nm.n; i++) {
		assert_string_equal(nm.v[i], want[i]);
		free(nm.v[i]);
	}
}

/* --- setup ---------------------------------------------------------- */

static int
group_setup(void **state)
{
	const char *err = NULL;
	FILE *fp;

	(void)state;
	log_init("test_auth", getenv("TEST_AUTH_DEBUG") != NULL);
	if (access(SASLPASSWD2, X_OK) == -1 ||
	    access("/usr/sbin/sasldblistusers2", X_OK) == -1) {
		fprintf(stderr, "test_auth: sasl2-bin is not installed\n");
		return -1;
	}
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(sasldb, sizeof(sasldb), "%s/sasldb2", tmpdir);
	/* a hostile SASL config that auth must never read */
	snprintf(conf, sizeof(conf), "%s/postern.conf", tmpdir);
	if ((fp = fopen(conf, "w")) == NULL)
		return -1;
	fputs("scram_iteration_counter: 5000\nmech_list: ANONYMOUS PLAIN\n"
	    "pwcheck_method: saslauthd\nsasldb_path: /nonexistent\n", fp);
	if (fclose(fp) != 0 || setenv("SASL_CONF_PATH", tmpdir, 1) != 0)
		return -1;
	memset(&cfg, 0, sizeof(cfg));
	cfg.hostname = HOSTNAME;
	cfg.sasldb = sasldb;
	cfg.auth_mechanisms = mechs;
	cfg.nauth_mechanisms = sizeof(mechs) / sizeof(mechs[0]);
	if (auth_init(&cfg, &err) != 0) {
		fprintf(stderr, "auth_init: %s\n", err);
		return -1;
	}
	if (sasl_client_init(NULL) != SASL_OK)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	sasl_done();
	unlink(conf);
	unlink(sasldb);
	rmdir(tmpdir);
	return 0;
}

/* --- configuration and mechanisms ----------------------------------- */

static void
test_mechanisms(void **state)
{
	struct auth_session *as;
	const char *m;

	(void)state;
	assert_non_null(as = auth_new("127.0.0.1;587", "127.0.0.1;40000"));
	m = auth_mechanisms(as);
	/* configured order; CRAM-MD5 and DIGEST-MD5 dropped */
	assert_string_equal(m, "PLAIN LOGIN SCRAM-SHA-256");
	auth_free(as);

	/* NULL addresses are allowed */
	assert_non_null(as = auth_new(NULL, NULL));
	assert_string_equal(auth_mechanisms(as), "PLAIN LOGIN SCRAM-SHA-256");
	auth_free(as);
}

static void
test_init_errors(void **state)
{
	static char *only_banned[] = { "CRAM-MD5", "DIGEST-MD5", "ANONYMOUS" };
	static char *lower[] = { "plain" };
	static char *unknown[] = { "PLAIN", "NO-SUCH-MECH" };
	static const struct {
		char		**mechs;
		size_t		  n;
		const char	 *sasldb;
		const char	 *err;
	} cases[] = {
		{ only_banned, 3, NULL, "no usable SASL mechanism configured" },
		{ mechs, 0, NULL, "no usable SASL mechanism configured" },
		{ lower, 1, NULL, "invalid SASL mechanism name" },
		{ unknown, 2, NULL,
		  "a configured SASL mechanism is not available" },
		{ mechs, 1, "relative/sasldb2",
		  "auth sasldb must be an absolute path" },
	};
	struct auth_session *as;
	struct config bad;
	const char *err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad = cfg;
		bad.auth_mechanisms = cases[i].mechs;
		bad.nauth_mechanisms = cases[i].n;
		if (cases[i].sasldb)
			bad.sasldb = (char *)cases[i].sasldb;
		err = NULL;
		assert_int_equal(auth_init(&bad, &err), -1);
		assert_non_null(err);
		assert_string_equal(err, cases[i].err);
	}
	/* a failed re-init leaves the working options alone */
	assert_non_null(as = auth_new(NULL, NULL));
	assert_string_equal(auth_mechanisms(as), "PLAIN LOGIN SCRAM-SHA-256");
	auth_free(as);
}

/*
 * SASL_CONF_PATH points at a postern.conf asking for 5000 SCRAM
 * iterations; libsasl2 would honour it if it read the file. The
 * mechanism and sasldb settings in it are checked by every other test.
 */
static void
test_no_sasl_conf(void **state)
{
	struct auth_session *as;
	const char *chal, *who;
	unsigned len;
	char *ir, *dec;

	(void)state;
	assert_non_null(as = auth_new(NULL, NULL));
	ir = b64(S("n,,n=" ALICE ",r=rOprNGfwEbeRWgbNEkqO"));
	assert_int_equal(auth_start(as, "SCRAM-SHA-256", ir, &chal, &who),
	    AUTH_CONTINUE);
	free(ir);
	dec = unb64(chal, &len);
	print_message("# server-first: %s\n", dec);
	assert_non_null(strstr(dec, ",i=4096"));
	free(dec);
	assert_int_equal(auth_step(as, "*", &chal, &who), AUTH_CANCEL);
	auth_free(as);
}

/* --- user management ------------------------------------------------ */

static void
test_user_create(void **state)
{
	static const char *const bad_logins[] = {
		"", "@example.org", "alice@", "a@b@example.org", "al ice@x",
		"alice\t@x", "al\xc3\xa9@x",
	};
	const char *err = NULL;
	struct stat st;
	size_t i;

	(void)state;
	assert_int_equal(stat(sasldb, &st), -1);
	assert_false(auth_user_exists(&cfg, ALICE));
	list_is(NULL, 0);	/* no file yet: no users, no error */

	assert_int_equal(auth_user_set(&cfg, ALICE, ALICE_PW, false, &err), 0);
	assert_int_equal(stat(sasldb, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(auth_user_exists(&cfg, ALICE));
	assert_false(auth_user_exists(&cfg, "alice"));
	assert_false(auth_user_exists(&cfg, "alice@example.com"));
	assert_false(auth_user_exists(&cfg, "nobody@example.org"));

	err = NULL;
	assert_int_equal(auth_user_set(&cfg, ALICE, "other", false, &err), -1);
	assert_string_equal(err, "user already exists");
	err = NULL;
	assert_int_equal(auth_user_set(&cfg, "nobody@example.org", "x", true,
	    &err), -1);
	assert_string_equal(err, "no such user");
	assert_false(auth_user_exists(&cfg, "nobody@example.org"));
	err = NULL;
	assert_int_equal(auth_user_set(&cfg, "dave@example.org", "", false,
	    &err), -1);
	assert_string_equal(err, "empty password");

	for (i = 0; i < sizeof(bad_logins) / sizeof(bad_logins[0]); i++) {
		err = NULL;
		assert_int_equal(auth_user_set(&cfg, bad_logins[i], "pw",
		    false, &err), -1);
		assert_string_equal(err, "invalid login");
		assert_false(auth_user_exists(&cfg, bad_logins[i]));
	}

	/* a login without '@' lives in the hostname's realm */
	assert_int_equal(auth_user_set(&cfg, CAROL, CAROL_PW, false, &err), 0);
	assert_true(auth_user_exists(&cfg, CAROL));
	assert_true(auth_user_exists(&cfg, CAROL "@" HOSTNAME));

	/* and one written by the real saslpasswd2 -u */
	run_saslpasswd2("bob", "example.org", BOB_PW);
	assert_true(auth_user_exists(&cfg, BOB));
	{
		static const char *const want[] = { ALICE, BOB,
		    CAROL "@" HOSTNAME };

		list_is(want, 3);
	}
	assert_int_equal(stat(sasldb, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void
test_user_list_broken_db(void **state)
{
	struct names nm = { .n = 0 };
	struct config c = cfg;
	char path[sizeof(tmpdir) + 16];
	const char *err = NULL;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/garbage", tmpdir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_int_equal(write(fd, "not a db\n", 9), 9);
	close(fd);
	c.sasldb = path;
	assert_int_equal(auth_user_list(&c, collect, &nm, &err), -1);
	assert_string_equal(err, "sasldblistusers2 failed");
	assert_int_equal(nm.n, 0);
	assert_false(auth_user_exists(&c, ALICE));
	err = NULL;
	assert_int_equal(auth_user_set(&c, ALICE, "x", false, &err), -1);
	assert_string_equal(err, "sasldblistusers2 failed");
	unlink(path);
}

/* --- conversations with a real client ------------------------------- */

static void
test_converse_ok(void **state)
{
	static const struct {
		const char	*login;
		const char	*password;
	} users[] = {
		{ ALICE, ALICE_PW },	/* auth_user_set */
		{ BOB, BOB_PW },	/* saslpasswd2 -u example.org bob */
		{ CAROL, CAROL_PW },	/* no realm */
	};
	size_t i, j;
	char *who;

	(void)state;
	for (i = 0; i < sizeof(conv_mechs) / sizeof(conv_mechs[0]); i++)
		for (j = 0; j < sizeof(users) / sizeof(users[0]); j++) {
			print_message("# %s %s\n", conv_mechs[i],
			    users[j].login);
			assert_int_equal(converse_new(conv_mechs[i],
			    users[j].login, users[j].password, &who), AUTH_OK);
			assert_non_null(who);
			assert_string_equal(who, users[j].login);
			free(who);
		}
}

static void
test_converse_fail(void **state)
{
	static const struct {
		const char	*login;
		const char	*password;
	} cases[] = {
		{ ALICE, "wrong" },
		{ ALICE, ALICE_PW "x" },
		{ BOB, ALICE_PW },
		{ "nobody@example.org", ALICE_PW },
		{ "alice@example.com", ALICE_PW },	/* other realm */
		{ "alice", ALICE_PW },			/* hostname realm */
		{ CAROL "@example.org", CAROL_PW },
	};
	size_t i, j;
	char *who;

	(void)state;
	for (i = 0; i < sizeof(conv_mechs) / sizeof(conv_mechs[0]); i++)
		for (j = 0; j < sizeof(cases) / sizeof(cases[0]); j++) {
			print_message("# %s %s\n", conv_mechs[i],
			    cases[j].login);
			assert_int_equal(converse_new(conv_mechs[i],
			    cases[j].login, cases[j].password, &who),
			    AUTH_FAIL);
			assert_null(who);
		}
}

static void
test_retry_same_session(void **state)
{
	struct auth_session *as;
	const char *who, *chal;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(conv_mechs) / sizeof(conv_mechs[0]); i++) {
		assert_non_null(as = auth_new("127.0.0.1;587",
		    "127.0.0.1;40000"));
		assert_int_equal(converse(as, conv_mechs[i], ALICE, "wrong",
		    &who), AUTH_FAIL);
		/* the lockout per login needs to know who was tried */
		assert_non_null(auth_attempted(as));
		assert_string_equal(auth_attempted(as), ALICE);
		assert_int_equal(converse(as, conv_mechs[i], "nobody@example.org",
		    "x", &who), AUTH_FAIL);
		print_message("# %s unknown user: attempted=%s\n",
		    conv_mechs[i], auth_attempted(as) ? auth_attempted(as) :
		    "(null)");
		assert_int_equal(converse(as, conv_mechs[i], ALICE, ALICE_PW,
		    &who), AUTH_OK);
		assert_string_equal(who, ALICE);
		/* no second AUTH once authenticated */
		assert_int_equal(auth_start(as, "PLAIN", NULL, &chal, &who),
		    AUTH_BAD);
		assert_int_equal(auth_step(as, "", &chal, &who), AUTH_BAD);
		auth_free(as);
	}
}

/* --- hand-built responses ------------------------------------------- */

/* plain - base64 of authzid NUL authcid NUL password */
static char *
plain(const char *authz, const char *authc, const char *pw)
{
	char raw[512];
	int n;

	n = snprintf(raw, sizeof(raw), "%s%c%s%c%s", authz, 0, authc, 0, pw);
	assert_true(n > 0 && (size_t)n < sizeof(raw));
	return b64(raw, (size_t)n);
}

/* test_login_empty_user - LOGIN with an empty user name, or one with
   control characters, fails here, before Cyrus's LOGIN plugin (which
   leaks the password on it: the ASan pass of make check would see that;
   tests/fuzz/crashes/auth/ keeps the inputs the fuzzer found) */
static void
test_login_empty_user(void **state)
{
	struct auth_session *as;
	const char *chal, *who;

	(void)state;
	assert_non_null(as = auth_new(NULL, NULL));
	/* the name after "Username:" */
	assert_int_equal(auth_start(as, "LOGIN", NULL, &chal, &who),
	    AUTH_CONTINUE);
	assert_int_equal(auth_step(as, "", &chal, &who), AUTH_FAIL);
	assert_null(who);
	/* an empty initial response is no name either */
	assert_int_equal(auth_start(as, "LOGIN", "=", &chal, &who),
	    AUTH_CONTINUE);
	assert_int_equal(auth_step(as, "", &chal, &who), AUTH_FAIL);
	/* nor is one with control characters ("\n\x8c"), as the next
	   step or as the initial response */
	assert_int_equal(auth_start(as, "LOGIN", NULL, &chal, &who),
	    AUTH_CONTINUE);
	assert_int_equal(auth_step(as, "Coz=", &chal, &who), AUTH_FAIL);
	assert_int_equal(auth_start(as, "LOGIN", "Coz=", &chal, &who),
	    AUTH_FAIL);
	/* nor " a", nor one ending in a space */
	assert_int_equal(auth_start(as, "LOGIN", "IGE=", &chal, &who),
	    AUTH_FAIL);
	assert_int_equal(auth_start(as, "LOGIN", "YSA=", &chal, &who),
	    AUTH_FAIL);
	/* and a real one still works after that */
	assert_int_equal(converse(as, "LOGIN", ALICE, ALICE_PW, &who),
	    AUTH_OK);
	auth_free(as);
}

static void
test_plain_by_hand(void **state)
{
	struct auth_session *as;
	const char *chal, *who;
	char *ir;

	(void)state;
	/* smtplib: AUTH PLAIN with the initial response */
	assert_non_null(as = auth_new(NULL, NULL));
	ir = plain("", ALICE, ALICE_PW);
	assert_string_equal(ir, "AGFsaWNlQGV4YW1wbGUub3JnAFB3LWFsaWNlLTdReks=");
	assert_int_equal(auth_start(as, "PLAIN", ir, &chal, &who), AUTH_OK);
	assert_string_equal(who, ALICE);
	free(ir);
	auth_free(as);

	/* authzid equal to the authcid is fine */
	assert_non_null(as = auth_new(NULL, NULL));
	ir = plain(ALICE, ALICE, ALICE_PW);
	assert_int_equal(auth_start(as, "PLAIN", ir, &chal, &who), AUTH_OK);
	assert_string_equal(who, ALICE);
	free(ir);
	auth_free(as);

	/* alice's password does not let her act as bob */
	assert_non_null(as = auth_new(NULL, NULL));
	ir = plain(BOB, ALICE, ALICE_PW);
	assert_int_equal(auth_start(as, "PLAIN", ir, &chal, &who), AUTH_FAIL);
	assert_null(who);
	free(ir);

	/* same session: no initial response, empty 334, then the response */
	assert_int_equal(auth_start(as, "PLAIN", NULL, &chal, &who),
	    AUTH_CONTINUE);
	assert_string_equal(chal, "");
	ir = plain("", BOB, BOB_PW);
	assert_int_equal(auth_step(as, ir, &chal, &who), AUTH_OK);
	assert_string_equal(who, BOB);
	free(ir);
	auth_free(as);

	/* an empty initial response ("=") is not a valid PLAIN message */
	assert_non_null(as = auth_new(NULL, NULL));
	assert_int_equal(auth_start(as, "PLAIN", "=", &chal, &who), AUTH_BAD);
	assert_null(who);
	/* lower-case mechanism names are accepted */
	ir = plain("", ALICE, ALICE_PW);
	assert_int_equal(auth_start(as, "plain", ir, &chal, &who), AUTH_OK);
	free(ir);
	auth_free(as);
}

static void
test_login_by_hand(void **state)
{
	struct auth_session *as;
	const char *chal, *who;
	char *u, *p;
	unsigned len;
	char *dec;

	(void)state;
	u = b64(ALICE, strlen(ALICE));
	p = b64(ALICE_PW, strlen(ALICE_PW));

	/* AUTH LOGIN, 334 Username:, 334 Password: */
	assert_non_null(as = auth_new(NULL, NULL));
	assert_int_equal(auth_start(as, "LOGIN", NULL, &chal, &who),
	    AUTH_CONTINUE);
	dec = unb64(chal, &len);
	assert_string_equal(dec, "Username:");
	free(dec);
	assert_int_equal(auth_step(as, u, &chal, &who), AUTH_CONTINUE);
	dec = unb64(chal, &len);
	assert_string_equal(dec, "Password:");
	free(dec);
	assert_int_equal(auth_step(as, p, &chal, &who), AUTH_OK);
	assert_string_equal(who, ALICE);
	auth_free(as);

	/* AUTH LOGIN <username> (RFC 4954 initial response) */
	assert_non_null(as = auth_new(NULL, NULL));
	assert_int_equal(auth_start(as, "LOGIN", u, &chal, &who),
	    AUTH_CONTINUE);
	dec = unb64(chal, &len);
	assert_string_equal(dec, "Password:");
	free(dec);
	assert_int_equal(auth_step(as, p, &chal, &who), AUTH_OK);
	assert_string_equal(who, ALICE);
	auth_free(as);
	free(u);
	free(p);
}

static void
test_cancel_and_bad_input(void **state)
{
	struct auth_session *as;
	const char *chal, *who;
	char *big, *ir;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(conv_mechs) / sizeof(conv_mechs[0]); i++) {
		/* cancel at the first 334 */
		assert_non_null(as = auth_new(NULL, NULL));
		assert_int_equal(auth_start(as, conv_mechs[i], NULL, &chal,
		    &who), AUTH_CONTINUE);
		assert_int_equal(auth_step(as, "*", &chal, &who),
		    AUTH_CANCEL);
		assert_null(who);
		/* nothing to continue after a cancel */
		assert_int_equal(auth_step(as, "", &chal, &who), AUTH_BAD);

		/* broken base64 in a response */
		assert_int_equal(auth_start(as, conv_mechs[i], NULL, &chal,
		    &who), AUTH_CONTINUE);
		assert_int_equal(auth_step(as, "abc", &chal, &who), AUTH_BAD);
		assert_int_equal(auth_start(as, conv_mechs[i], NULL, &chal,
		    &who), AUTH_CONTINUE);
		assert_int_equal(auth_step(as, "YW!j", &chal, &who),
		    AUTH_BAD);
		assert_int_equal(auth_start(as, conv_mechs[i], NULL, &chal,
		    &who), AUTH_CONTINUE);
		assert_int_equal(auth_step(as, "YQ==YWJj", &chal, &who),
		    AUTH_BAD);
		assert_int_equal(auth_start(as, conv_mechs[i], NULL, &chal,
		    &who), AUTH_CONTINUE);
		assert_int_equal(auth_step(as, "\r\n", &chal, &who), AUTH_BAD);

		/* broken base64 as an initial response */
		assert_int_equal(auth_start(as, conv_mechs[i], "%%%%", &chal,
		    &who), AUTH_BAD);
		assert_int_equal(auth_start(as, conv_mechs[i], "*", &chal,
		    &who), AUTH_BAD);
		assert_int_equal(auth_start(as, conv_mechs[i], "YWJjZA", &chal,
		    &who), AUTH_BAD);

		/* over AUTH_LINE_MAX */
		big = xmalloc(AUTH_LINE_MAX + 5);
		memset(big, 'A', AUTH_LINE_MAX + 4);
		big[AUTH_LINE_MAX + 4] = '\0';
		assert_int_equal(auth_start(as, conv_mechs[i], big, &chal,
		    &who), AUTH_BAD);
		assert_int_equal(auth_start(as, conv_mechs[i], NULL, &chal,
		    &who), AUTH_CONTINUE);
		assert_int_equal(auth_step(as, big, &chal, &who), AUTH_BAD);
		free(big);

		/* and the session still works afterwards */
		assert_int_equal(converse(as, conv_mechs[i], ALICE, ALICE_PW,
		    &who), AUTH_OK);
		assert_string_equal(who, ALICE);
		auth_free(as);
	}

	/* garbage that decodes fine but is not the mechanism's syntax */
	assert_non_null(as = auth_new(NULL, NULL));
	ir = b64("no NULs here", 12);
	assert_int_equal(auth_start(as, "PLAIN", ir, &chal, &who), AUTH_BAD);
	free(ir);
	ir = b64("x,,n=alice,r=abc", 16);	/* bad GS2 header */
	assert_int_equal(auth_start(as, "SCRAM-SHA-256", ir, &chal, &who),
	    AUTH_BAD);
	free(ir);
	auth_free(as);
}

static void
test_nomech(void **state)
{
	static const char *const refused[] = {
		"CRAM-MD5", "cram-md5", "DIGEST-MD5", "ANONYMOUS", "EXTERNAL",
		"NTLM", "SCRAM-SHA-1", "GSSAPI", "", "PLAIN LOGIN",
		"TOO-LONG-MECHANISM-NAME-X",
	};
	struct auth_session *as;
	const char *chal, *who, *m;
	size_t i;

	(void)state;
	assert_non_null(as = auth_new(NULL, NULL));
	m = auth_mechanisms(as);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		print_message("# %s\n", refused[i]);
		assert_null(strstr(m, "MD5"));
		assert_int_equal(auth_start(as, refused[i], NULL, &chal, &who),
		    AUTH_NOMECH);
		assert_int_equal(auth_start(as, refused[i], "AGEAYg==", &chal,
		    &who), AUTH_NOMECH);
	}
	assert_int_equal(auth_start(as, NULL, NULL, &chal, &who), AUTH_NOMECH);
	/* still usable */
	assert_int_equal(converse(as, "SCRAM-SHA-256", BOB, BOB_PW, &who),
	    AUTH_OK);
	auth_free(as);
}

/* read_file - whole small file as a string, new memory */
static char *
read_whole(const char *path)
{
	char *s = xmalloc(1 << 20);
	ssize_t n;
	int fd;

	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_true((n = read(fd, s, (1 << 20) - 1)) >= 0);
	s[n] = '\0';
	close(fd);
	return s;
}

static void
test_no_secrets_in_log(void **state)
{
	static const char *const secrets[] = { ALICE_PW, "wrong-Pw-5ZzQ",
	    "UHctYWxpY2UtN1F6Sw" /* base64 of ALICE_PW */ };
	char path[sizeof(tmpdir) + 16], *text;
	size_t i, j;
	int fd, saved;
	char *who;

	(void)state;
	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_init("test_auth", 1);	/* debug lines too */
	for (i = 0; i < sizeof(conv_mechs) / sizeof(conv_mechs[0]); i++) {
		(void)converse_new(conv_mechs[i], ALICE, "wrong-Pw-5ZzQ", &who);
		free(who);
		(void)converse_new(conv_mechs[i], "nobody@example.org",
		    ALICE_PW, &who);
		free(who);
		(void)converse_new(conv_mechs[i], ALICE, ALICE_PW, &who);
		free(who);
	}
	log_init("test_auth", 0);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	text = read_whole(path);
	print_message("# SASL log while failing:\n%s", text);
	for (j = 0; j < sizeof(secrets) / sizeof(secrets[0]); j++)
		assert_null(strstr(text, secrets[j]));
	free(text);
	unlink(path);
}

/* --- password change and delete, last: they change the users -------- */

static void
test_user_replace(void **state)
{
	const char *err = NULL;
	char *who;
	size_t i;

	(void)state;
	assert_int_equal(auth_user_set(&cfg, ALICE, ALICE_PW2, true, &err), 0);
	for (i = 0; i < sizeof(conv_mechs) / sizeof(conv_mechs[0]); i++) {
		assert_int_equal(converse_new(conv_mechs[i], ALICE, ALICE_PW,
		    &who), AUTH_FAIL);
		assert_int_equal(converse_new(conv_mechs[i], ALICE, ALICE_PW2,
		    &who), AUTH_OK);
		assert_string_equal(who, ALICE);
		free(who);
	}
	/* also for a user saslpasswd2 created */
	assert_int_equal(auth_user_set(&cfg, BOB, "Pw-bob-new", true, &err),
	    0);
	assert_int_equal(converse_new("PLAIN", BOB, BOB_PW, &who), AUTH_FAIL);
	assert_int_equal(converse_new("PLAIN", BOB, "Pw-bob-new", &who),
	    AUTH_OK);
	free(who);
}

static void
test_user_delete(void **state)
{
	static const char *const want[] = { CAROL "@" HOSTNAME };
	const char *err = NULL;
	char *who;
	size_t i;

	(void)state;
	assert_int_equal(auth_user_delete(&cfg, ALICE, &err), 0);
	assert_false(auth_user_exists(&cfg, ALICE));
	err = NULL;
	assert_int_equal(auth_user_delete(&cfg, ALICE, &err), -1);
	assert_string_equal(err, "no such user");
	assert_int_equal(auth_user_delete(&cfg, BOB, &err), 0);
	list_is(want, 1);
	for (i = 0; i < sizeof(conv_mechs) / sizeof(conv_mechs[0]); i++) {
		assert_int_equal(converse_new(conv_mechs[i], ALICE, ALICE_PW2,
		    &who), AUTH_FAIL);
		assert_int_equal(converse_new(conv_mechs[i], CAROL, CAROL_PW,
		    &who), AUTH_OK);
		free(who);
	}
	/* deleted users can be created again */
	assert_int_equal(auth_user_set(&cfg, ALICE, ALICE_PW, false, &err), 0);
	assert_int_equal(converse_new("SCRAM-SHA-256", ALICE, ALICE_PW, &who),
	    AUTH_OK);
	free(who);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mechanisms),
		cmocka_unit_test(test_init_errors),
		cmocka_unit_test(test_user_create),
		cmocka_unit_test(test_no_sasl_conf),
		cmocka_unit_test(test_user_list_broken_db),
		cmocka_unit_test(test_converse_ok),
		cmocka_unit_test(test_converse_fail),
		cmocka_unit_test(test_retry_same_session),
		cmocka_unit_test(test_login_empty_user),
		cmocka_unit_test(test_plain_by_hand),
		cmocka_unit_test(test_login_by_hand),
		cmocka_unit_test(test_cancel_and_bad_input),
		cmocka_unit_test(test_nomech),
		cmocka_unit_test(test_no_secrets_in_log),
		cmocka_unit_test(test_user_replace),
		cmocka_unit_test(test_user_delete),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
