/*
 * test_keycache - keys/keycache.c and its self-test in keys/dkim.c, with
 * real libopendkim and real keys (two RSA-2048 keys, made by
 * keyfile_generate in a mkdtemp directory).
 *
 * Checked: a cached key answers libopendkim's PEM_read_bio_PrivateKey
 * (the hit counter moves) and the signature is the same bytes as with
 * the key libopendkim parses itself; after a key change (reload or
 * rotation: the new key cached, the old one dropped) the very next
 * signature is the new key's, and a key no longer cached still signs
 * (parsed per message); keys shared by two generations are counted; and
 * the self-test turns the cache off, with its warning, when libopendkim
 * no longer asks for the key (KEYCACHE_FAULT_SILENT) or the cache
 * answers with the wrong key (KEYCACHE_FAULT_WRONG), after which every
 * signature is again the reference one. Whether signatures verify is for
 * the independent verifiers of the e2e tests.
 */
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

#include "common/alloc.h"
#include "common/buf.h"
#include "keys/dkim.h"
#include "keys/keycache.h"
#include "keys/keyfile.h"
#include "capture_log.h"

static char		 dir[] = "/tmp/test_keycache.XXXXXX";
static struct keyfile	*key_a, *key_b, *key_e;

/* load - generate a key of alg as selector sel and load it */
static struct keyfile *
load(const char *sel, enum keyfile_alg alg)
{
	char path[PATH_MAX], *err = NULL;
	struct keyfile *k;

	snprintf(path, sizeof(path), "%s/%s.key", dir, sel);
	if (keyfile_generate(path, alg, alg == KEYFILE_RSA_SHA256 ? 2048 : 0,
	    &err) == -1)
		fail_msg("keyfile_generate: %s", err);
	if ((k = keyfile_load(path, "example.org", sel, alg, &err)) == NULL)
		fail_msg("keyfile_load: %s", err);
	return k;
}

static int
group_setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	key_a = load("a2026", KEYFILE_RSA_SHA256);
	key_b = load("b2026", KEYFILE_RSA_SHA256);
	key_e = load("e2026", KEYFILE_ED25519_SHA256);
	return 0;
}

static int
group_teardown(void **state)
{
	char path[PATH_MAX];

	(void)state;
	keyfile_free(key_a);
	keyfile_free(key_b);
	keyfile_free(key_e);
	snprintf(path, sizeof(path), "%s/e2026.key", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/a2026.key", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/b2026.key", dir);
	unlink(path);
	rmdir(dir);
	dkim_shutdown();
	return 0;
}

/* setup - the cache on, empty, no fault */
static int
setup(void **state)
{
	(void)state;
	keycache_reset();
	return 0;
}

/* teardown - nothing left cached */
static int
teardown(void **state)
{
	(void)state;
	keycache_fault(KEYCACHE_FAULT_NONE);
	assert_int_equal(keycache_size(), 0);
	return 0;
}

/* sign - the DKIM-Signature of a fixed message with k, new memory;
   bypass: with the key libopendkim parses itself */
static char *
sign(const struct keyfile *k, bool bypass)
{
	static const char hdr[] = "From: alice@example.org\r\n"
	    "To: bob@example.net\r\nSubject: cache\r\n";
	static const char body[] = "body\r\n";
	const struct keyfile *keys[1] = { k };
	struct dkim_signer *s;
	struct buf out;
	char *err = NULL, *sig;

	assert_non_null(s = dkim_signer_new(keys, 1, NULL, 1767225600, &err));
	assert_int_equal(dkim_signer_headers(s, hdr, sizeof(hdr) - 1), 0);
	assert_int_equal(dkim_signer_body(s, body, sizeof(body) - 1), 0);
	buf_init(&out, 8192);
	keycache_bypass(bypass);
	if (dkim_signer_finish(s, &out, &err) == -1)
		fail_msg("dkim_signer_finish: %s", err);
	keycache_bypass(false);
	dkim_signer_free(s);
	sig = xstrdup(out.data);
	buf_free(&out);
	return sig;
}

/* test_hit_same_bytes - a cached key is used, and signs as libopendkim
   signs with the key it parses: RSA and Ed25519 */
static void
test_hit_same_bytes(void **state)
{
	const struct keyfile *const keys[] = { key_a, key_e };
	char *ref, *got;
	uint64_t before;
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		dkim_key_cache(keys[i]);
		assert_true(keycache_enabled());
		assert_int_equal(keycache_size(), 1);
		ref = sign(keys[i], true);
		before = keycache_hits();
		got = sign(keys[i], false);
		assert_int_equal(keycache_hits(), before + 1);
		assert_string_equal(got, ref);
		assert_non_null(strstr(got, i == 0 ? "s=a2026" : "s=e2026"));
		free(ref);
		free(got);
		dkim_key_uncache(keys[i]);
	}
}

/* test_next_message_new_key - a reload or rotation: B cached, A dropped;
   the very next signature is B's, and A still signs uncached */
static void
test_next_message_new_key(void **state)
{
	char *a_ref, *b_ref, *got;
	uint64_t before;

	(void)state;
	a_ref = sign(key_a, true);
	b_ref = sign(key_b, true);
	assert_string_not_equal(a_ref, b_ref);
	dkim_key_cache(key_a);
	got = sign(key_a, false);
	assert_string_equal(got, a_ref);
	free(got);

	dkim_key_cache(key_b);		/* the new generation's keys */
	dkim_key_uncache(key_a);	/* the old one's, freed */
	assert_int_equal(keycache_size(), 1);
	before = keycache_hits();
	got = sign(key_b, false);
	assert_int_equal(keycache_hits(), before + 1);
	assert_string_equal(got, b_ref);
	free(got);

	before = keycache_hits();
	got = sign(key_a, false);	/* parsed by libopendkim again */
	assert_int_equal(keycache_hits(), before);
	assert_string_equal(got, a_ref);
	free(got);
	dkim_key_uncache(key_b);
	free(a_ref);
	free(b_ref);
}

/* test_generations_counted - a key in two generations stays until the
   second lets it go */
static void
test_generations_counted(void **state)
{
	uint64_t before;
	char *got;

	(void)state;
	dkim_key_cache(key_a);
	dkim_key_cache(key_a);
	assert_int_equal(keycache_size(), 1);
	dkim_key_uncache(key_a);
	assert_int_equal(keycache_size(), 1);
	before = keycache_hits();
	got = sign(key_a, false);
	assert_int_equal(keycache_hits(), before + 1);
	free(got);
	dkim_key_uncache(key_a);
	assert_int_equal(keycache_size(), 0);
	dkim_key_uncache(key_a);	/* one too many: nothing */
	assert_int_equal(keycache_size(), 0);
}

/* test_detects_silent - libopendkim no longer asks for the key: the
   self-test sees no hit, turns the cache off and says so */
static void
test_detects_silent(void **state)
{
	char *log, *ref, *got;

	(void)state;
	keycache_fault(KEYCACHE_FAULT_SILENT);
	capture();
	dkim_key_cache(key_a);
	log = captured();
	assert_false(keycache_enabled());
	assert_non_null(strstr(log, "DKIM key cache off: libopendkim"));
	assert_non_null(strstr(log, "did not ask PEM_read_bio_PrivateKey "
	    "for the key of selector a2026 of example.org"));
	free(log);
	keycache_fault(KEYCACHE_FAULT_NONE);
	ref = sign(key_a, true);
	got = sign(key_a, false);
	assert_string_equal(got, ref);
	free(ref);
	free(got);
	dkim_key_uncache(key_a);
}

/* test_detects_wrong_key - the cache answers with another key: the
   signatures differ, the cache goes off, and from then on every
   signature is the reference one */
static void
test_detects_wrong_key(void **state)
{
	char *log, *ref, *got;
	uint64_t before;

	(void)state;
	dkim_key_cache(key_a);
	assert_true(keycache_enabled());
	keycache_fault(KEYCACHE_FAULT_WRONG);
	capture();
	dkim_key_cache(key_b);
	log = captured();
	assert_false(keycache_enabled());
	assert_non_null(strstr(log, "signed differently with the cached key "
	    "of selector b2026 of example.org"));
	free(log);
	/* the fault stays, but a cache that is off answers nothing */
	ref = sign(key_b, true);
	before = keycache_hits();
	got = sign(key_b, false);
	assert_int_equal(keycache_hits(), before);
	assert_string_equal(got, ref);
	free(ref);
	free(got);
	dkim_key_uncache(key_a);
	dkim_key_uncache(key_b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hit_same_bytes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_next_message_new_key,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_generations_counted,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_detects_silent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_detects_wrong_key, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
