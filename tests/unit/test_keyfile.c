/*
 * test_keyfile - DKIM private key files: every refusal with its message,
 * generation (0600, PKCS#8, never overwriting), and the DNS p= values
 * checked against the openssl command line tool.
 *
 * Keys live in a fresh mkdtemp directory; one RSA-2048 and one Ed25519
 * key are generated once for the whole group. Fixtures that cannot be
 * generated quickly (a 1024-bit and a 4160-bit RSA key) come from
 * tests/unit/dkim/ and are copied with mode 0600, since git only keeps
 * 0644. Paths are relative to the repository root (the cwd of the tests).
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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

#include "keys/keyfile.h"

#define FIXTURES	"tests/unit/dkim/"

static char	 dir[] = "/tmp/postern-keyfile-XXXXXX";
static char	 rsa_path[PATH_MAX];	/* generated, 2048 bits */
static char	 ed_path[PATH_MAX];	/* generated */

/* path_in - dir/name into a static buffer (one at a time) */
static const char *
path_in(const char *name)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

/* write_file - create path with exactly these bytes and mode */
static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* read_all - a whole small file, NUL-terminated, malloc'ed */
static char *
read_all(const char *path, size_t *lenp)
{
	char *data;
	ssize_t n;
	int fd;

	data = calloc(1, 65537);
	assert_non_null(data);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, data, 65536);
	assert_true(n >= 0);
	close(fd);
	if (lenp != NULL)
		*lenp = (size_t)n;
	return data;
}

/* copy_to - copy src to dst with mode */
static void
copy_to(const char *src, const char *dst, mode_t mode)
{
	size_t len;
	char *data;

	data = read_all(src, &len);
	write_file(dst, data, len, mode);
	free(data);
}

/* run - a shell command's whole output, trailing newline removed */
static char *
run(const char *fmt, ...)
{
	char cmd[2 * PATH_MAX], *out;
	va_list ap;
	size_t n;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out = calloc(1, 65536);
	assert_non_null(out);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, 65535, p);
	assert_int_equal(pclose(p), 0);
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
	return out;
}

/* refused - keyfile_load must fail; return its message (caller frees) */
static char *
refused(const char *path, enum keyfile_alg alg)
{
	struct keyfile *kf;
	char *err = NULL;

	kf = keyfile_load(path, "example.org", "s2026", alg, &err);
	assert_null(kf);
	assert_non_null(err);
	/* every refusal names the file and the selector it was for */
	assert_non_null(strstr(err, path));
	return err;
}

/* assert_contains - substring check with a readable failure */
static void
assert_contains(const char *s, const char *want)
{
	if (strstr(s, want) == NULL)
		fail_msg("\"%s\"\n  does not contain \"%s\"", s, want);
}

/* group_setup - temp dir and the two generated keys */
static int
group_setup(void **state)
{
	char *err = NULL;

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(rsa_path, sizeof(rsa_path), "%s/rsa.key", dir);
	snprintf(ed_path, sizeof(ed_path), "%s/ed.key", dir);
	if (keyfile_generate(rsa_path, KEYFILE_RSA_SHA256, 0, &err) == -1 ||
	    keyfile_generate(ed_path, KEYFILE_ED25519_SHA256, 0, &err) == -1) {
		fprintf(stderr, "keyfile_generate: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

/* group_teardown - remove the temp dir and what is in it */
static int
group_teardown(void **state)
{
	struct dirent *de;
	DIR *d;

	(void)state;
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (unlink(path_in(de->d_name)) == -1)
				rmdir(path_in(de->d_name));
		}
		closedir(d);
	}
	return rmdir(dir);
}

/* test_alg_names - algorithm names both ways */
static void
test_alg_names(void **state)
{
	enum keyfile_alg alg;

	(void)state;
	assert_int_equal(keyfile_alg_parse("rsa-sha256", &alg), 0);
	assert_int_equal(alg, KEYFILE_RSA_SHA256);
	assert_int_equal(keyfile_alg_parse("ed25519-sha256", &alg), 0);
	assert_int_equal(alg, KEYFILE_ED25519_SHA256);
	assert_int_equal(keyfile_alg_parse("rsa-sha1", &alg), -1);
	assert_int_equal(keyfile_alg_parse("RSA-SHA256", &alg), -1);
	assert_int_equal(keyfile_alg_parse("", &alg), -1);
	assert_string_equal(keyfile_alg_name(KEYFILE_RSA_SHA256),
	    "rsa-sha256");
	assert_string_equal(keyfile_alg_name(KEYFILE_ED25519_SHA256),
	    "ed25519-sha256");
	assert_string_equal(keyfile_alg_keytype(KEYFILE_RSA_SHA256), "rsa");
	assert_string_equal(keyfile_alg_keytype(KEYFILE_ED25519_SHA256),
	    "ed25519");
}

/* test_names - domain and selector syntax */
static void
test_names(void **state)
{
	static const struct {
		const char	*s;
		int		 domain, selector;
	} cases[] = {
		{ "example.org",	1, 1 },
		{ "xn--bcher-kva.example", 1, 1 },
		{ "s2026",		1, 1 },
		{ "a_b",		0, 1 },
		{ "",			0, 0 },
		{ "example..org",	0, 0 },
		{ ".example.org",	0, 0 },
		{ "example.org.",	0, 0 },
		{ "exa mple.org",	0, 0 },
		{ "ex;ample.org",	0, 0 },
		{ "b\xc3\xbc" "cher.example", 0, 0 },
		{ "0123456789012345678901234567890123456789012345678901234"
		  "567890123.org", 0, 0 },	/* 64-byte label */
	};
	struct keyfile *kf;
	char *err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(keyfile_valid_domain(cases[i].s),
		    cases[i].domain);
		assert_int_equal(keyfile_valid_selector(cases[i].s),
		    cases[i].selector);
	}
	kf = keyfile_load(rsa_path, "exa mple.org", "s", KEYFILE_RSA_SHA256,
	    &err);
	assert_null(kf);
	assert_contains(err, "invalid DKIM signing domain \"exa mple.org\"");
	free(err);
	kf = keyfile_load(rsa_path, "example.org", "s;1", KEYFILE_RSA_SHA256,
	    &err);
	assert_null(kf);
	assert_contains(err, "invalid DKIM selector \"s;1\"");
	free(err);
}

/* test_missing - a missing file */
static void
test_missing(void **state)
{
	char *err;

	(void)state;
	err = refused(path_in("nonexistent.key"), KEYFILE_RSA_SHA256);
	assert_contains(err, "nonexistent.key: DKIM key file for selector "
	    "\"s2026\" of example.org (rsa-sha256) does not exist");
	free(err);
}

/* test_modes - group/other bits refused with the chmod advice */
static void
test_modes(void **state)
{
	static const mode_t bad[] = { 0644, 0640, 0604, 0660, 0620, 0602,
	    0610, 0601 };
	static const mode_t good[] = { 0600, 0400 };
	const char *p = path_in("mode.key");
	char want[PATH_MAX + 128], *err;
	struct keyfile *kf;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		copy_to(rsa_path, p, bad[i]);
		err = refused(p, KEYFILE_RSA_SHA256);
		snprintf(want, sizeof(want), "is accessible by group or others "
		    "(mode %04o); private keys must be readable only by their "
		    "owner: chmod 600 %s", (unsigned)bad[i], p);
		assert_contains(err, want);
		free(err);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		copy_to(rsa_path, p, good[i]);
		kf = keyfile_load(p, "example.org", "s2026",
		    KEYFILE_RSA_SHA256, &err);
		assert_non_null(kf);
		assert_null(err);
		keyfile_free(kf);
	}
	unlink(p);
}

/* test_unreadable - a file the process may not read */
static void
test_unreadable(void **state)
{
	const char *p = path_in("unreadable.key");
	char buf[1024];
	struct keyfile *kf;
	int fds[2], status;
	ssize_t n;
	pid_t pid;
	char *err;

	(void)state;
	copy_to(rsa_path, p, 0600);
	if (geteuid() != 0) {
		assert_int_equal(chmod(p, 0), 0);
		err = refused(p, KEYFILE_RSA_SHA256);
		assert_contains(err, "cannot open DKIM key file for selector");
		assert_contains(err, "Permission denied");
		free(err);
		unlink(p);
		return;
	}
	/* root reads anything: try as nobody in a child */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		if (setgroups(0, NULL) == -1 || setresgid(65534, 65534,
		    65534) == -1 || setresuid(65534, 65534, 65534) == -1)
			_exit(2);
		kf = keyfile_load(p, "example.org", "s2026",
		    KEYFILE_RSA_SHA256, &err);
		if (kf != NULL)
			_exit(3);
		(void)write(fds[1], err, strlen(err));
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_contains(buf, p);
	assert_contains(buf, "cannot open DKIM key file for selector "
	    "\"s2026\" of example.org (rsa-sha256): Permission denied");
	unlink(p);
}

/* test_not_regular - a directory */
static void
test_not_regular(void **state)
{
	const char *p = path_in("adir.key");
	char *err;

	(void)state;
	assert_int_equal(mkdir(p, 0700), 0);
	err = refused(p, KEYFILE_RSA_SHA256);
	assert_contains(err, "is not a regular file");
	free(err);
	rmdir(p);
}

/* A table of contents that are not usable keys, and why. */
static const struct {
	const char	*name;
	const char	*data;
	const char	*want;
} bad_contents[] = {
	{ "empty", "",
	  "DKIM key file for selector \"s2026\" of example.org (rsa-sha256) "
	  "is empty" },
	{ "garbage", "this is not a key\n\x01\x02\xff",
	  "is not a PEM private key (expected \"-----BEGIN PRIVATE "
	  "KEY-----\")" },
	{ "broken PEM",
	  "-----BEGIN PRIVATE KEY-----\nAAAAbm90IGEga2V5\n"
	  "-----END PRIVATE KEY-----\n",
	  "is not a PEM private key that OpenSSL can read" },
	{ "public key",
	  "-----BEGIN PUBLIC KEY-----\n"
	  "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
	  "-----END PUBLIC KEY-----\n",
	  "holds a public key or certificate, not a private key" },
	{ "encrypted",
	  "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
	  "-----END ENCRYPTED PRIVATE KEY-----\n",
	  "is protected by a passphrase, which the daemon cannot supply" },
};

/* test_bad_contents - empty, garbage, broken PEM, public key, encrypted */
static void
test_bad_contents(void **state)
{
	const char *p = path_in("bad.key");
	char *err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_contents) / sizeof(bad_contents[0]); i++) {
		write_file(p, bad_contents[i].data,
		    strlen(bad_contents[i].data), 0600);
		err = refused(p, KEYFILE_RSA_SHA256);
		if (strstr(err, bad_contents[i].want) == NULL)
			fail_msg("%s: \"%s\" lacks \"%s\"",
			    bad_contents[i].name, err, bad_contents[i].want);
		free(err);
	}
	unlink(p);
}

/* test_encrypted_real - a key encrypted by openssl, without a prompt */
static void
test_encrypted_real(void **state)
{
	const char *p = path_in("enc.key");
	char *out, *err;

	(void)state;
	unlink(p);
	out = run("openssl genpkey -algorithm ed25519 -aes256 -pass pass:x "
	    "-out %s 2>&1 && chmod 600 %s", p, p);
	free(out);
	err = refused(p, KEYFILE_ED25519_SHA256);
	assert_contains(err, "is protected by a passphrase, which the daemon "
	    "cannot supply; store it unencrypted");
	free(err);
	unlink(p);
}

/* test_rsa_sizes - 1024 and 4160 bits refused */
static void
test_rsa_sizes(void **state)
{
	const char *p = path_in("size.key");
	char *err;

	(void)state;
	copy_to(FIXTURES "rsa-1024.key", p, 0600);
	err = refused(p, KEYFILE_RSA_SHA256);
	assert_contains(err, "1024-bit RSA keys are refused: receivers treat "
	    "them as weak; generate 2048");
	free(err);

	copy_to(FIXTURES "rsa-4160.key", p, 0600);
	err = refused(p, KEYFILE_RSA_SHA256);
	assert_contains(err, "4160-bit RSA keys are refused: above 4096 bits");
	free(err);
	unlink(p);
}

/* test_type_mismatch - Ed25519 configured as RSA and the reverse */
static void
test_type_mismatch(void **state)
{
	char *err;

	(void)state;
	err = refused(ed_path, KEYFILE_RSA_SHA256);
	assert_contains(err, "holds an Ed25519 key, but the selector is "
	    "configured as rsa-sha256 (set algorithm = \"ed25519-sha256\", or "
	    "point it at an RSA key)");
	free(err);
	err = refused(rsa_path, KEYFILE_ED25519_SHA256);
	assert_contains(err, "holds an RSA key, but the selector is "
	    "configured as ed25519-sha256 (set algorithm = \"rsa-sha256\", or "
	    "point it at an Ed25519 key)");
	free(err);
}

/* check_generated - mode 0600, PKCS#8, loads back, p= as openssl says */
static void
check_generated(const char *p, enum keyfile_alg alg, unsigned bits)
{
	struct keyfile *kf;
	struct stat st;
	char *data, *err, *want;

	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	data = read_all(p, NULL);
	assert_int_equal(strncmp(data, "-----BEGIN PRIVATE KEY-----\n", 28),
	    0);
	assert_non_null(strstr(data, "-----END PRIVATE KEY-----\n"));
	free(data);

	kf = keyfile_load(p, "Example.ORG", "s2026", alg, &err);
	assert_non_null(kf);
	assert_null(err);
	assert_int_equal(kf->alg, alg);
	assert_int_equal(kf->bits, bits);
	assert_string_equal(kf->domain, "example.org");
	assert_string_equal(kf->selector, "s2026");
	assert_string_equal(kf->path, p);
	assert_int_equal(strncmp(kf->pem, "-----BEGIN PRIVATE KEY-----\n", 28),
	    0);
	assert_int_equal(strlen(kf->pem), kf->pemlen);

	if (alg == KEYFILE_RSA_SHA256)
		want = run("openssl rsa -in %s -pubout -outform DER "
		    "2>/dev/null | base64 -w0", p);
	else
		want = run("openssl pkey -in %s -pubout -outform DER "
		    "2>/dev/null | tail -c 32 | base64 -w0", p);
	assert_true(strlen(want) > 40);
	assert_string_equal(kf->pubkey, want);
	free(want);
	keyfile_free(kf);
}

/* test_generate - generated keys: 0600, PKCS#8, load back, p= */
static void
test_generate(void **state)
{
	const char *p = path_in("gen-ed.key");
	mode_t old;
	char *err;

	(void)state;
	check_generated(rsa_path, KEYFILE_RSA_SHA256, 2048);
	check_generated(ed_path, KEYFILE_ED25519_SHA256, 256);

	/* mode 0600 whatever the umask */
	old = umask(0);
	assert_int_equal(keyfile_generate(p, KEYFILE_ED25519_SHA256, 256,
	    &err), 0);
	umask(old);
	assert_null(err);
	check_generated(p, KEYFILE_ED25519_SHA256, 256);
	unlink(p);
}

/* test_generate_exists - never overwrite, not even through a link */
static void
test_generate_exists(void **state)
{
	char target[PATH_MAX], lnk[PATH_MAX];
	char *before, *after, *err;
	size_t blen, alen;

	(void)state;
	before = read_all(ed_path, &blen);
	errno = 0;
	assert_int_equal(keyfile_generate(ed_path, KEYFILE_ED25519_SHA256, 0,
	    &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_contains(err, ed_path);
	assert_contains(err, "already exists; refusing to overwrite a key");
	free(err);
	/* a different algorithm does not matter either */
	errno = 0;
	assert_int_equal(keyfile_generate(ed_path, KEYFILE_RSA_SHA256, 2048,
	    &err), -1);
	assert_int_equal(errno, EEXIST);
	free(err);
	after = read_all(ed_path, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(before, after, blen);
	free(before);
	free(after);

	/* nor does a symbolic link to somewhere else */
	snprintf(target, sizeof(target), "%s/target.key", dir);
	snprintf(lnk, sizeof(lnk), "%s/link.key", dir);
	assert_int_equal(symlink(target, lnk), 0);
	errno = 0;
	assert_int_equal(keyfile_generate(lnk, KEYFILE_ED25519_SHA256, 0,
	    &err), -1);
	assert_int_equal(errno, EEXIST);
	free(err);
	assert_int_equal(access(target, F_OK), -1);
	unlink(lnk);
}

/* test_generate_bad - bad sizes and a missing directory */
static void
test_generate_bad(void **state)
{
	const char *p = path_in("bad-bits.key");
	char *err;

	(void)state;
	errno = 0;
	assert_int_equal(keyfile_generate(p, KEYFILE_RSA_SHA256, 1024, &err),
	    -1);
	assert_int_equal(errno, EINVAL);
	assert_contains(err, "RSA keys must have 2048 to 4096 bits (1024 "
	    "asked)");
	free(err);
	assert_int_equal(keyfile_generate(p, KEYFILE_RSA_SHA256, 8192, &err),
	    -1);
	free(err);
	assert_int_equal(keyfile_generate(p, KEYFILE_ED25519_SHA256, 2048,
	    &err), -1);
	assert_contains(err, "Ed25519 keys have 256 bits");
	free(err);
	assert_int_equal(access(p, F_OK), -1);	/* nothing left behind */

	errno = 0;
	assert_int_equal(keyfile_generate(path_in("no/such/dir.key"),
	    KEYFILE_ED25519_SHA256, 0, &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_contains(err, "cannot create key file: No such file or "
	    "directory");
	free(err);
}

/* test_pkcs1 - a traditional RSA key loads as PKCS#8 */
static void
test_pkcs1(void **state)
{
	const char *p = path_in("pkcs1.key");
	struct keyfile *kf;
	char *out, *err, *want;

	(void)state;
	unlink(p);
	out = run("openssl genrsa -traditional -out %s 2048 2>/dev/null && "
	    "chmod 600 %s && head -1 %s", p, p, p);
	assert_string_equal(out, "-----BEGIN RSA PRIVATE KEY-----");
	free(out);
	kf = keyfile_load(p, "example.org", "r1", KEYFILE_RSA_SHA256, &err);
	assert_non_null(kf);
	/* handed to libopendkim as canonical PKCS#8 */
	assert_int_equal(strncmp(kf->pem, "-----BEGIN PRIVATE KEY-----\n", 28),
	    0);
	want = run("openssl rsa -in %s -pubout -outform DER 2>/dev/null | "
	    "base64 -w0", p);
	assert_string_equal(kf->pubkey, want);
	free(want);
	keyfile_free(kf);
	unlink(p);
}

/* test_rfc8463_key - the RFC 8463 fixture key and its record */
static void
test_rfc8463_key(void **state)
{
	const char *p = path_in("brisbane.key");
	struct keyfile *kf;
	char *s, *err;

	(void)state;
	copy_to(FIXTURES "rfc8463-brisbane.key", p, 0600);
	kf = keyfile_load(p, "football.example.com", "brisbane",
	    KEYFILE_ED25519_SHA256, &err);
	assert_non_null(kf);
	/* RFC 8463 A.2 */
	assert_string_equal(kf->pubkey,
	    "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
	s = keyfile_txt(kf);
	assert_string_equal(s, "v=DKIM1; k=ed25519; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
	free(s);
	s = keyfile_txt_name(kf);
	assert_string_equal(s, "brisbane._domainkey.football.example.com");
	free(s);
	keyfile_free(kf);
	unlink(p);
}

/* main - run the group */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alg_names),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_not_regular),
		cmocka_unit_test(test_bad_contents),
		cmocka_unit_test(test_encrypted_real),
		cmocka_unit_test(test_rsa_sizes),
		cmocka_unit_test(test_type_mismatch),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_generate_exists),
		cmocka_unit_test(test_generate_bad),
		cmocka_unit_test(test_pkcs1),
		cmocka_unit_test(test_rfc8463_key),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
