/*
 * test_keystate - the DKIM rotation state: the strict reader as a got/want
 * table, format/parse round trips, atomic writes (mode 0600), the writers'
 * lock, and keyring_selectors/keyring_check merging a real configuration
 * (config_load of a file written here) with state files.
 *
 * Everything lives in a fresh mkdtemp directory removed at the end. No key
 * is loaded here (keyring_selectors and keyring_check never load keys).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "config/config.h"
#include "keys/keyring.h"
#include "keys/keystate.h"

static char	 dir[] = "/tmp/postern-keystate-XXXXXX";

#define MAGIC	"postern-dkim-state 1\n"

static const struct {
	const char	*what;
	const char	*text;
	size_t		 n;		/* selectors; (size_t)-1: refused */
	const char	*why;		/* part of the error */
} cases[] = {
	{ "empty list", MAGIC "end\n", 0, NULL },
	{ "three states, comments",
	  MAGIC "# comment\n"
	  "selector r1 rsa-sha256 retiring 1700000000 /k/r1.key\n"
	  "selector r2 rsa-sha256 active 1700000100 /k/r2.key\n"
	  "selector e2 ed25519-sha256 pending 0 /k dir/e2.key\n"
	  "end\n", 3, NULL },
	{ "nothing at all", "", (size_t)-1, "no \"end\" line" },
	{ "truncated", MAGIC "selector r1 rsa-sha256 active 1 /k\n",
	  (size_t)-1, "no \"end\" line" },
	{ "last line unterminated", MAGIC "end", (size_t)-1,
	  "line 2: the last line is not terminated" },
	{ "other file", "hello\nend\n", (size_t)-1,
	  "line 1: not a postern-dkim-state file" },
	{ "future version", "postern-dkim-state 2\nend\n", (size_t)-1,
	  "line 1: unsupported version" },
	{ "unknown record", MAGIC "key r1\nend\n", (size_t)-1,
	  "line 2: unknown record" },
	{ "short selector line", MAGIC "selector r1 rsa-sha256 active 1\n"
	  "end\n", (size_t)-1, "line 2: want \"selector SELECTOR" },
	{ "bad selector", MAGIC "selector r/1 rsa-sha256 active 1 /k\nend\n",
	  (size_t)-1, "line 2: not a valid selector" },
	{ "bad algorithm", MAGIC "selector r1 rsa-sha1 active 1 /k\nend\n",
	  (size_t)-1, "line 2: algorithm is not" },
	{ "bad state", MAGIC "selector r1 rsa-sha256 revoked 1 /k\nend\n",
	  (size_t)-1, "line 2: state is not" },
	{ "bad time", MAGIC "selector r1 rsa-sha256 active -1 /k\nend\n",
	  (size_t)-1, "line 2: SINCE is not" },
	{ "huge time", MAGIC "selector r1 rsa-sha256 active "
	  "99999999999999999999 /k\nend\n", (size_t)-1, "line 2: SINCE" },
	{ "relative path", MAGIC "selector r1 rsa-sha256 active 1 k.key\n"
	  "end\n", (size_t)-1, "line 2: PATH is not absolute" },
	{ "twice", MAGIC "selector r1 rsa-sha256 active 1 /a\n"
	  "selector r1 rsa-sha256 pending 1 /b\nend\n", (size_t)-1,
	  "line 3: selector listed twice" },
	{ "control character", MAGIC "selector r1 rsa-sha256 active 1 /a\tb\n"
	  "end\n", (size_t)-1, "line 2: control character" },
	{ "NUL", MAGIC "selector r1 rsa-sha256 active 1 /a\0b\nend\n",
	  (size_t)-1, "line 2: control character" },
	{ "after end", MAGIC "end\n# more\n", (size_t)-1,
	  "line 3: text after \"end\"" },
};

/* test_parse_table - every case: count or the reason */
static void
test_parse_table(void **state)
{
	struct keysels s = { NULL, 0 };
	char *err;
	size_t i, len;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i].text);
		if (strcmp(cases[i].what, "NUL") == 0)
			len = sizeof(MAGIC "selector r1 rsa-sha256 active 1 "
			    "/a\0b\nend\n") - 1;
		rc = keystate_parse(cases[i].text, len, &s, &err);
		if (cases[i].n == (size_t)-1) {
			if (rc != -1 || err == NULL ||
			    strstr(err, cases[i].why) == NULL)
				fail_msg("%s: want error \"%s\", got rc %d "
				    "\"%s\"", cases[i].what, cases[i].why, rc,
				    err ? err : "");
			assert_int_equal(s.n, 0);
			free(err);
		} else {
			if (rc != 0)
				fail_msg("%s: %s", cases[i].what, err);
			assert_int_equal(s.n, cases[i].n);
		}
		keysels_free(&s);
	}
}

/* test_parse_fields - the values of a good file */
static void
test_parse_fields(void **state)
{
	struct keysels s = { NULL, 0 };
	struct keysel *e;
	char *err;

	(void)state;
	assert_int_equal(keystate_parse(cases[1].text, strlen(cases[1].text),
	    &s, &err), 0);
	e = keysels_find(&s, "e2");
	assert_non_null(e);
	assert_int_equal(e->alg, KEYFILE_ED25519_SHA256);
	assert_int_equal(e->state, KEY_PENDING);
	assert_int_equal(e->since, 0);
	assert_string_equal(e->key, "/k dir/e2.key");
	assert_int_equal(e->line, 0);
	e = keysels_find(&s, "r1");
	assert_int_equal(e->state, KEY_RETIRING);
	assert_int_equal(e->since, 1700000000);
	assert_null(keysels_find(&s, "R1"));
	keysels_free(&s);
}

/* test_roundtrip - format then parse gives the same entries */
static void
test_roundtrip(void **state)
{
	struct keysels a = { NULL, 0 }, b = { NULL, 0 };
	struct buf out;
	char *err;
	size_t i;

	(void)state;
	keysels_add(&a, "r202611", KEYFILE_RSA_SHA256, KEY_ACTIVE, 1, "/x",
	    7);
	keysels_add(&a, "e202612", KEYFILE_ED25519_SHA256, KEY_PENDING,
	    1767225600, "/var/lib/postern/keys/example.org/e202612.key", 0);
	keysels_add(&a, "r1", KEYFILE_RSA_SHA256, KEY_RETIRING, 0,
	    "/with space/r1.key", 0);
	buf_init(&out, KEYSTATE_MAX_SIZE);
	assert_int_equal(keystate_format(&a, &out), 0);
	assert_int_equal(keystate_parse(out.data, out.len, &b, &err), 0);
	assert_int_equal(b.n, a.n);
	for (i = 0; i < a.n; i++) {
		assert_string_equal(b.v[i].selector, a.v[i].selector);
		assert_int_equal(b.v[i].alg, a.v[i].alg);
		assert_int_equal(b.v[i].state, a.v[i].state);
		assert_int_equal(b.v[i].since, a.v[i].since);
		assert_string_equal(b.v[i].key, a.v[i].key);
		assert_int_equal(b.v[i].line, 0);	/* never stored */
	}
	/* a buffer too small leaves it as it was */
	buf_free(&out);
	buf_init(&out, 40);
	assert_int_equal(keystate_format(&a, &out), -1);
	assert_int_equal(out.len, 0);
	buf_free(&out);
	keysels_free(&a);
	keysels_free(&b);
}

/* test_write_read - atomic replacement, mode 0600, missing is empty */
static void
test_write_read(void **state)
{
	struct keysels a = { NULL, 0 }, b = { NULL, 0 };
	struct stat st;
	char path[PATH_MAX], *err;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/state", dir);
	unlink(path);
	assert_int_equal(keystate_read(path, &b, &err), 0);
	assert_int_equal(b.n, 0);

	keysels_add(&a, "r1", KEYFILE_RSA_SHA256, KEY_ACTIVE, 5, "/a", 0);
	assert_int_equal(keystate_write(path, &a, (uid_t)-1, (gid_t)-1,
	    &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	keysels_add(&a, "r2", KEYFILE_RSA_SHA256, KEY_PENDING, 6, "/b", 0);
	assert_int_equal(keystate_write(path, &a, (uid_t)-1, (gid_t)-1,
	    &err), 0);
	assert_int_equal(keystate_read(path, &b, &err), 0);
	assert_int_equal(b.n, 2);
	assert_int_equal(keysels_find(&b, "r2")->state, KEY_PENDING);
	keysels_free(&b);

	/* a damaged file names itself and the line */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, MAGIC "selector\n", sizeof(MAGIC) + 8),
	    (ssize_t)sizeof(MAGIC) + 8);
	close(fd);
	assert_int_equal(keystate_read(path, &b, &err), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "line 2"));
	free(err);
	unlink(path);
	keysels_free(&a);
}

/* test_lock - a second writer waits, or with wait unset fails at once */
static void
test_lock(void **state)
{
	char path[PATH_MAX], *err;
	int a, b;

	(void)state;
	snprintf(path, sizeof(path), "%s/state", dir);
	a = keystate_lock(path, true, &err);
	assert_true(a >= 0);
	b = keystate_lock(path, false, &err);
	assert_int_equal(b, -1);
	assert_non_null(strstr(err, "held by another writer"));
	free(err);
	keystate_unlock(a);
	b = keystate_lock(path, false, &err);
	assert_true(b >= 0);
	keystate_unlock(b);
}

/* ---- keyring_selectors and keyring_check against a real config ---- */

/* load - write a configuration with this domains entry and load it */
static struct config *
load(const char *domains)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;
	char path[PATH_MAX];
	FILE *f;
	size_t i;

	snprintf(path, sizeof(path), "%s/postern.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "hostname = \"relay.example.org\";\nstate_dir = \"%s\";\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 5870; tls = "
	    "\"none\"; trusted = true; senders = [ \"a@example.org\" ]; } );"
	    "\ndomains = (\n%s\n);\n", dir, domains);
	fclose(f);
	if ((cfg = config_load(path, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			print_error("%s\n", errs.v[i]);
		fail_msg("config did not load");
	}
	return cfg;
}

/* state - write dir/keys/example.org/state with these selector lines */
static void
state(const char *lines)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/keys", dir);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/keys/example.org", dir);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/keys/example.org/state", dir);
	if (lines == NULL) {
		unlink(path);
		return;
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, MAGIC "%send\n", lines);
	fclose(f);
}

/* merged - keyring_selectors + keyring_check; returns check's rc */
static int
merged(struct config *cfg, struct keysels *s, char **err)
{
	*err = NULL;
	if (keyring_selectors(cfg, &cfg->domains[0], s, err) == -1)
		return -2;
	return keyring_check(cfg, &cfg->domains[0], s, err);
}

#define PAIR	"{ name = \"example.org\";\n  dkim = ( " \
		"{ selector = \"r1\"; algorithm = \"rsa-sha256\"; },\n" \
		"    { selector = \"e1\"; algorithm = \"ed25519-sha256\"; " \
		"key = \"/etc/e1.key\"; } ); }"

/* test_merge_config_only - no state file: every configured one signs */
static void
test_merge_config_only(void **state_)
{
	struct config *cfg = load(PAIR);
	struct keysels s = { NULL, 0 };
	char *err;

	(void)state_;
	state(NULL);
	assert_int_equal(merged(cfg, &s, &err), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(keysels_find(&s, "r1")->state, KEY_ACTIVE);
	assert_int_equal(keysels_find(&s, "r1")->line, 6);
	assert_string_equal(keysels_find(&s, "e1")->key, "/etc/e1.key");
	keysels_free(&s);
	config_free(cfg);
}

/* test_merge_rotation - pending added; after the switch r1 retires while
   the configuration still lists it, and its config path wins */
static void
test_merge_rotation(void **state_)
{
	struct config *cfg = load(PAIR);
	struct keysels s = { NULL, 0 };
	char *err;

	(void)state_;
	state("selector r2 rsa-sha256 pending 10 /s/r2.key\n");
	assert_int_equal(merged(cfg, &s, &err), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(keysels_find(&s, "r2")->state, KEY_PENDING);
	assert_int_equal(keysels_find(&s, "r2")->line, 0);
	keysels_free(&s);

	state("selector r1 rsa-sha256 retiring 20 /elsewhere/r1.key\n"
	    "selector r2 rsa-sha256 active 20 /s/r2.key\n");
	assert_int_equal(merged(cfg, &s, &err), 0);
	assert_int_equal(keysels_find(&s, "r1")->state, KEY_RETIRING);
	assert_int_equal(keysels_find(&s, "r1")->line, 6);
	assert_non_null(strstr(keysels_find(&s, "r1")->key, "/keys/example.org/"
	    "r1.key"));
	keysels_free(&s);
	config_free(cfg);
}

/* test_merge_refusals - what cannot sign is refused with FILE:LINE */
static void
test_merge_refusals(void **state_)
{
	static const struct {
		const char	*what, *domains, *state, *want;
		int		 rc;
	} refusals[] = {
		{ "no keys anywhere", "{ name = \"example.org\"; }", NULL,
		  "postern.conf:5: domains: example.org has no dkim keys; "
		  "every hosted domain signs its mail: run `postern keys "
		  "generate example.org`", -1 },
		{ "state alone is enough", "{ name = \"example.org\"; }",
		  "selector r9 rsa-sha256 active 1 /k/r9.key\n", NULL, 0 },
		{ "ed25519 alone", "{ name = \"example.org\"; dkim = ( { "
		  "selector = \"e1\"; algorithm = \"ed25519-sha256\"; } ); }",
		  NULL, "example.org has no rsa-sha256 key; ed25519-sha256 "
		  "alone fails DKIM", -1 },
		{ "two rsa in the config", "{ name = \"example.org\"; dkim = "
		  "( { selector = \"a\"; algorithm = \"rsa-sha256\"; }, { "
		  "selector = \"b\"; algorithm = \"rsa-sha256\"; } ); }", NULL,
		  "example.org has more than one active key of one algorithm "
		  "(a and b are both rsa-sha256)", -1 },
		{ "config adds a second active one", PAIR,
		  "selector r1 rsa-sha256 retiring 1 /k/r1.key\n"
		  "selector r3 rsa-sha256 active 1 /k/r3.key\n"
		  "selector r4 rsa-sha256 active 1 /k/r4.key\n",
		  "(r3 and r4 are both rsa-sha256)", -1 },
		{ "only pending", "{ name = \"example.org\"; }",
		  "selector r9 rsa-sha256 pending 1 /k/r9.key\n",
		  "example.org has no active rsa-sha256 key (every selector "
		  "is pending or retiring", -1 },
		{ "algorithm contradiction", PAIR,
		  "selector r1 ed25519-sha256 active 1 /k/r1.key\n",
		  "selector r1 of example.org is rsa-sha256 here but "
		  "ed25519-sha256 in", -2 },
		{ "damaged state file", PAIR, "selector\n",
		  "keys/example.org/state: line 2", -2 },
	};
	struct keysels s = { NULL, 0 };
	struct config *cfg;
	char *err;
	size_t i;
	int rc;

	(void)state_;
	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		cfg = load(refusals[i].domains);
		state(refusals[i].state);
		rc = merged(cfg, &s, &err);
		if (rc != refusals[i].rc || (refusals[i].want != NULL &&
		    (err == NULL || strstr(err, refusals[i].want) == NULL)))
			fail_msg("%s: want %d \"%s\", got %d \"%s\"",
			    refusals[i].what, refusals[i].rc,
			    refusals[i].want ? refusals[i].want : "",
			    rc, err ? err : "");
		free(err);
		keysels_free(&s);
		config_free(cfg);
	}
	state(NULL);
}

/* rm_rf - remove the test directory (two levels are all we make) */
static int
teardown(void **state_)
{
	char cmd[PATH_MAX + 16];

	(void)state_;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
setup(void **state_)
{
	(void)state_;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_merge_config_only),
		cmocka_unit_test(test_merge_rotation),
		cmocka_unit_test(test_merge_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
