/*
 * keycmd - `postern keys ...`; see keycmd.h.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/io.h"
#include "common/log.h"
#include "config/config.h"
#include "keys/dkim.h"
#include "keys/dnsrec.h"
#include "keys/keycmd.h"
#include "keys/keyfile.h"
#include "keys/keyring.h"
#include "keys/keystate.h"
#include "common/dns.h"

#define KEYCMD_CHUNK		65536	/* bytes read from stdin at once */
#define KEYCMD_SIGS_MAX		65536	/* bytes of DKIM-Signature fields */

/* Options seen, for refusing the ones a command does not take. */
#define KO_C		0x001
#define KO_S		0x002
#define KO_A		0x004
#define KO_B		0x008
#define KO_K		0x010
#define KO_TIME		0x020
#define KO_HEADERS	0x040
#define KO_PLAIN	0x080
#define KO_CHECK	0x100
#define KO_LOCAL	0x200

struct keyopts {
	const char	*cmd;
	const char	*cfgpath;
	const char	*selector;	/* -s */
	const char	*alg;		/* -a */
	const char	*bits;		/* -b */
	const char	*keyfile;	/* -k */
	const char	*time;		/* --time */
	const char	*headers;	/* --headers */
	unsigned	 seen;		/* KO_* */
	const char	*words[3];
	size_t		 nwords;
};

static const char keycmd_usage_text[] =
    "usage: postern keys generate DOMAIN [-a ALGORITHM] [-s SELECTOR] "
    "[-b BITS] [-c FILE]\n"
    "       postern keys dns      [DOMAIN] [--plain | --check] [-c FILE]\n"
    "       postern keys sign     DOMAIN [-s SELECTOR] [-k KEYFILE "
    "[-a ALGORITHM]]\n"
    "                             [--time UNIX] [--headers LIST] "
    "[-c FILE] < MESSAGE\n"
    "       postern keys verify   [--local] [-c FILE] < MESSAGE\n"
    "       postern keys rotate   DOMAIN [-a ALGORITHM [-s SELECTOR]] "
    "[-b BITS] [-c FILE]\n"
    "       postern keys status   [DOMAIN] [-c FILE]\n"
    "       postern keys remove   DOMAIN SELECTOR [-c FILE]\n"
    "ALGORITHM is rsa-sha256 or ed25519-sha256; FILE defaults to "
    CONFIG_DEFAULT_PATH ".\n"
    "generate: writes STATE_DIR/keys/DOMAIN/SELECTOR.key (mode 0600, "
    "never over an\n"
    "  existing file) and prints its DNS record and `dkim` setting. "
    "Without -a it makes\n"
    "  both keys a domain signs with: rsa-sha256 (selector rYYYYMM) and "
    "ed25519-sha256\n"
    "  (eYYYYMM), YYYYMM the current UTC month. -s names one key, so it "
    "needs -a.\n"
    "  BITS: RSA modulus size, 2048 (default) to 4096.\n"
    "dns: each selector's DKIM record, SPF and DMARC suggestions, as "
    "zone-file lines;\n"
    "  --plain: one \"NAME TXT VALUE\" line per record, VALUE unquoted "
    "and whole.\n"
    "  --check: looks each record up through the configured resolver "
    "and prints\n"
    "  \"NAME: ok\", \"NAME: MISSING\", \"NAME: DIFFERENT (published: "
    "...)\" or\n"
    "  \"NAME: temporary DNS failure\"; exit 0 only if every DKIM record "
    "matches\n"
    "  (SPF and DMARC differences are warnings). The daemon checks the "
    "same way every\n"
    "  dkim_check_interval (gauge postern_dns_record_ok).\n"
    "sign: prints the message (stdin, LF or CRLF line ends) with CRLF "
    "line ends after\n"
    "  one DKIM-Signature per configured key of DOMAIN (rsa-sha256 "
    "first), or only\n"
    "  SELECTOR's; -k signs with KEYFILE as SELECTOR instead (-s "
    "required; the key's\n"
    "  type, or -a, gives the algorithm), for any DOMAIN, hosted or "
    "not.\n"
    "  --time fixes t=. --headers "
    "from:to:subject\n"
    "  replaces the domain's header lists: exactly those fields are "
    "signed, and a\n"
    "  name given twice is oversigned (named once more than present).\n"
    "rotate: new keys for DOMAIN's active algorithms (or -a's), "
    "selectors rYYYYMM and\n"
    "  eYYYYMM (rYYYYMMDD when taken), recorded as pending in "
    "STATE_DIR/keys/DOMAIN/state.\n"
    "  The daemon keeps signing with the active selectors and switches "
    "to a pending\n"
    "  one once DNS serves exactly its record (checked every "
    "dkim_check_interval);\n"
    "  the old one is then retiring. Nothing to edit, nothing to "
    "restart.\n"
    "status: each selector of each domain: algorithm, state (active, "
    "pending,\n"
    "  retiring), since when, where it is declared, its key file.\n"
    "remove: forget a retiring selector and delete its private key "
    "(delete its DNS\n"
    "  record too); a selector still in the configuration must be "
    "deleted there first.\n"
    "verify: one line per DKIM-Signature, \"d=DOMAIN s=SELECTOR a=ALG: "
    "RESULT (detail)\";\n"
    "  keys from DNS, or with --local from the configured key files. "
    "Exit 0 only if\n"
    "  there is a signature and every one passes.\n"
    "Exit status: 0 ok, 1 error, 2 usage.\n";

/* keycmd_usage - say why (if given), print the usage, return 2 */
static int
keycmd_usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "postern keys: %s\n", why);
	fputs(keycmd_usage_text, stderr);
	return 2;
}

/*
 * keycmd_parse - options in any order, "--opt=VALUE" too for the long
 * ones; at most two positional words. Returns 0 or -1 (usage printed
 * by the caller).
 */
static int
keycmd_parse(int argc, char **argv, struct keyopts *o)
{
	static const struct {
		const char	*name;
		unsigned	 flag;
		size_t		 off;	/* of the value; 0: a switch */
	} opts[] = {
		{ "-c", KO_C, offsetof(struct keyopts, cfgpath) },
		{ "-s", KO_S, offsetof(struct keyopts, selector) },
		{ "-a", KO_A, offsetof(struct keyopts, alg) },
		{ "-b", KO_B, offsetof(struct keyopts, bits) },
		{ "-k", KO_K, offsetof(struct keyopts, keyfile) },
		{ "--time", KO_TIME, offsetof(struct keyopts, time) },
		{ "--headers", KO_HEADERS, offsetof(struct keyopts, headers) },
		{ "--plain", KO_PLAIN, 0 },
		{ "--check", KO_CHECK, 0 },
		{ "--local", KO_LOCAL, 0 },
	};
	const char *arg, *eq, *val;
	size_t i, n;
	int a;

	for (a = 0; a < argc; a++) {
		arg = argv[a];
		if (arg[0] != '-' || arg[1] == '\0') {
			if (o->nwords == sizeof(o->words) / sizeof(o->words[0]))
				return -1;
			o->words[o->nwords++] = arg;
			continue;
		}
		eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
		n = eq ? (size_t)(eq - arg) : strlen(arg);
		for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
			if (strlen(opts[i].name) == n &&
			    strncmp(opts[i].name, arg, n) == 0)
				break;
		if (i == sizeof(opts) / sizeof(opts[0]) ||
		    (o->seen & opts[i].flag) != 0)
			return -1;
		o->seen |= opts[i].flag;
		if (opts[i].off == 0) {
			if (eq != NULL)
				return -1;
			continue;
		}
		if (eq != NULL)
			val = eq + 1;
		else if (a + 1 < argc)
			val = argv[++a];
		else
			return -1;
		*(const char **)(void *)((char *)o + opts[i].off) = val;
	}
	return 0;
}

/* keycmd_config - load the configuration or print its errors. As a
   client loads it: the key commands need the domains and state_dir, not
   the TLS files or the sasldb, which may not exist yet (INSTALL makes
   the DKIM keys before the certificate). */
static struct config *
keycmd_config(const char *path)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;
	size_t i;

	if ((cfg = config_load_client(path, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		if (errs.n == 0)
			fprintf(stderr, "postern: %s: cannot load the "
			    "configuration\n", path);
		config_errors_free(&errs);
	}
	return cfg;
}

/* keycmd_hosted - the hosted domain called name (any case, final dot
   allowed), or NULL, saying nothing */
static const struct domain_config *
keycmd_hosted(const struct config *cfg, const char *name)
{
	size_t i, n = strlen(name);

	if (n > 1 && name[n - 1] == '.')
		n--;
	for (i = 0; i < cfg->ndomains; i++)
		if (strlen(cfg->domains[i].name) == n &&
		    strncasecmp(cfg->domains[i].name, name, n) == 0)
			return &cfg->domains[i];
	return NULL;
}

/* keycmd_domain - the hosted domain called name, or NULL after saying
   so */
static const struct domain_config *
keycmd_domain(const struct config *cfg, const char *name)
{
	const struct domain_config *d;

	if ((d = keycmd_hosted(cfg, name)) != NULL)
		return d;
	fprintf(stderr, "postern: %s: not a hosted domain in %s (add it to "
	    "domains first)\n", name, cfg->path);
	return NULL;
}

/* keycmd_alg - the keyfile algorithm of a configured selector */
static enum keyfile_alg
keycmd_alg(enum dkim_algorithm a)
{
	return a == DKIM_ALG_RSA_SHA256 ? KEYFILE_RSA_SHA256 :
	    KEYFILE_ED25519_SHA256;
}

/* keycmd_load - load selector e's key; NULL after saying why */
static struct keyfile *
keycmd_load(const struct config *cfg, const struct domain_config *d,
    const struct keysel *e)
{
	struct keyfile *kf;
	char *err = NULL, *state;

	kf = keyfile_load(e->key, d->name, e->selector, e->alg, &err);
	if (kf == NULL) {
		state = keystate_path(cfg->state_dir, d->name);
		if (e->line > 0)
			fprintf(stderr, "postern: %s (%s line %d)\n", err ? err :
			    e->key, cfg->path, e->line);
		else
			fprintf(stderr, "postern: %s (%s selector %s, listed "
			    "in %s)\n", err ? err : e->key,
			    keystate_name(e->state), e->selector, state);
		free(state);
		free(err);
	}
	return kf;
}

/*
 * keycmd_sels - d's selectors (keyring_selectors: the rotation state and
 * the configuration); -1 after saying why.
 */
static int
keycmd_sels(const struct config *cfg, const struct domain_config *d,
    struct keysels *s)
{
	char *err = NULL;

	if (keyring_selectors(cfg, d, s, &err) == -1) {
		fprintf(stderr, "postern: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

/* keycmd_quoted - value[0..len) as one zone-file character-string */
static void
keycmd_quoted(FILE *out, const char *v, size_t len)
{
	size_t i;

	putc('"', out);
	for (i = 0; i < len; i++) {
		if (v[i] == '"' || v[i] == '\\')
			putc('\\', out);
		putc(v[i], out);
	}
	putc('"', out);
}

/*
 * keycmd_record - print one TXT record: in zone-file form, an optional
 * "; comment" line, then "NAME. IN TXT" and the value as one quoted
 * string, or in parentheses as several of at most KEYCMD_TXT_STRING_MAX
 * bytes; plain, "NAME TXT VALUE" and nothing else.
 */
static void
keycmd_record(FILE *out, bool plain, const char *comment, const char *name,
    const char *value)
{
	size_t len = strlen(value), off, n;

	if (plain) {
		fprintf(out, "%s TXT %s\n", name, value);
		return;
	}
	if (comment != NULL)
		fprintf(out, "; %s\n", comment);
	fprintf(out, "%s. IN TXT ", name);
	if (len <= KEYCMD_TXT_STRING_MAX) {
		keycmd_quoted(out, value, len);
		putc('\n', out);
		return;
	}
	fputs("( ", out);
	for (off = 0; off < len; off += n) {
		n = len - off < KEYCMD_TXT_STRING_MAX ? len - off :
		    KEYCMD_TXT_STRING_MAX;
		keycmd_quoted(out, value + off, n);
		putc(' ', out);
	}
	fputs(")\n", out);
}

/* keycmd_key_record - print kf's DKIM key record; state is a word on
   its rotation state for the comment, or NULL */
static void
keycmd_key_record(FILE *out, bool plain, const struct keyfile *kf,
    const char *state)
{
	char *name, *txt, *comment, bits[32] = "";

	name = keyfile_txt_name(kf);
	txt = keyfile_txt(kf);
	if (kf->alg == KEYFILE_RSA_SHA256)
		snprintf(bits, sizeof(bits), ", %u bits", kf->bits);
	comment = xasprintf("DKIM key of %s, selector %s: %s%s%s%s (%s)",
	    kf->domain, kf->selector, keyfile_alg_name(kf->alg), bits,
	    state ? ", " : "", state ? state : "", kf->path);
	keycmd_record(out, plain, comment, name, txt);
	free(comment);
	free(txt);
	free(name);
}

/* keycmd_flush - flush standard output; 1 after saying why it failed */
static int
keycmd_flush(void)
{
	if (fflush(stdout) != EOF)
		return 0;
	fprintf(stderr, "postern: writing the output: %s\n", strerror(errno));
	return 1;
}

/* keycmd_state_note - the words `keys dns` puts in a record's comment */
static const char *
keycmd_state_note(const struct keysel *e)
{
	switch (e->state) {
	case KEY_ACTIVE:
		return "active (signs)";
	case KEY_PENDING:
		return "pending (publish it: the daemon signs with it once "
		    "DNS serves it)";
	case KEY_RETIRING:
		return "retiring (keep it published for mail in transit, "
		    "then `postern keys remove`)";
	}
	return NULL;
}

/*
 * keycmd_tmpfile - a new 0600 file in TMPDIR (or /tmp); *path gets its
 * name (newly allocated) unless path is NULL, in which case it is
 * already unlinked. Returns the descriptor, or -1 after saying why.
 */
static int
keycmd_tmpfile(char **path)
{
	const char *dir = getenv("TMPDIR");
	char *tmpl;
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	tmpl = xasprintf("%s/postern-keys.XXXXXX", dir);
	if ((fd = mkstemp(tmpl)) == -1) {
		fprintf(stderr, "postern: cannot create a temporary file in "
		    "%s: %s\n", dir, strerror(errno));
		free(tmpl);
		return -1;
	}
	(void)fchmod(fd, 0600);
	if (path != NULL)
		*path = tmpl;
	else {
		(void)unlink(tmpl);
		free(tmpl);
	}
	return fd;
}

/* ---- keys generate ---- */

struct newkey {
	enum keyfile_alg	 alg;
	char			 selector[64];
	char			*path;
	struct keyfile		*kf;	/* loaded back after writing */
};

/* keycmd_newkeys_free - free what n newkeys hold */
static void
keycmd_newkeys_free(struct newkey *nk, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		keyfile_free(nk[i].kf);
		free(nk[i].path);
	}
}

/*
 * keycmd_mkdirs - mkdir -p path, mode 0700 for what is created; the
 * directories made are appended to *made (for chown). Returns 0 or -1
 * after saying why.
 */
static int
keycmd_mkdirs(const char *path, char ***made, size_t *nmade)
{
	char *p = xstrdup(path), *q;
	int done = 0;

	for (q = p + 1; !done; q++) {
		if (*q != '/' && *q != '\0')
			continue;
		done = *q == '\0';
		*q = '\0';
		if (mkdir(p, 0700) == 0) {
			*made = xreallocarray(*made, *nmade + 1,
			    sizeof(**made));
			(*made)[(*nmade)++] = xstrdup(p);
		} else if (errno != EEXIST) {
			fprintf(stderr, "postern: mkdir %s: %s\n", p,
			    strerror(errno));
			free(p);
			return -1;
		}
		if (!done)
			*q = '/';
	}
	free(p);
	return 0;
}

/*
 * keycmd_give - as root with `user` set, hand the new files and
 * directories to that user (the daemon reads keys after dropping
 * privileges). Problems are warnings: the key exists either way.
 */
static void
keycmd_give(const struct config *cfg, char **paths, size_t n)
{
	struct passwd *pw;
	size_t i;

	if (cfg->user == NULL || geteuid() != 0)
		return;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		fprintf(stderr, "postern: warning: user %s (%s) does not "
		    "exist; the new key files stay owned by root and the "
		    "daemon will not be able to read them\n", cfg->user,
		    cfg->path);
		return;
	}
	for (i = 0; i < n; i++)
		if (lchown(paths[i], pw->pw_uid, pw->pw_gid) == -1)
			fprintf(stderr, "postern: warning: chown %s to %s: "
			    "%s\n", paths[i], cfg->user, strerror(errno));
}

/* keycmd_selector_ok - a selector the configuration accepts too */
static bool
keycmd_selector_ok(const char *s)
{
	return keyfile_valid_selector(s) && strchr(s, '_') == NULL &&
	    strlen(s) < sizeof(((struct newkey *)0)->selector);
}

/*
 * keycmd_snippet - the domain's `dkim` setting with the new keys: they
 * replace configured keys of their algorithm, the others stay (with
 * their key path when it is not the default one).
 */
static void
keycmd_snippet(const struct config *cfg, const struct domain_config *d,
    const struct newkey *nk, size_t nnew)
{
	const struct dkim_selector_config *sc;
	size_t i, j;
	char *def;
	bool first = true;

	printf("dkim = ( ");
	for (i = 0; i < nnew; i++) {
		printf("%s{ selector = \"%s\"; algorithm = \"%s\"; }",
		    first ? "" : ", ", nk[i].selector,
		    keyfile_alg_name(nk[i].alg));
		first = false;
	}
	for (i = 0; i < d->ndkim; i++) {
		sc = &d->dkim[i];
		for (j = 0; j < nnew; j++)
			if (keycmd_alg(sc->algorithm) == nk[j].alg)
				break;
		if (j < nnew)
			continue;
		printf("%s{ selector = \"%s\"; algorithm = \"%s\";",
		    first ? "" : ", ", sc->selector,
		    keyfile_alg_name(keycmd_alg(sc->algorithm)));
		def = xasprintf("%s/keys/%s/%s.key", cfg->state_dir, d->name,
		    sc->selector);
		if (strcmp(def, sc->key) != 0)
			printf(" key = \"%s\";", sc->key);
		free(def);
		printf(" }");
		first = false;
	}
	printf(" );\n");
}

/*
 * keycmd_make_keys - write the nnew keys of nk (paths set, files absent)
 * under STATE_DIR/keys/DOMAIN, give them and new directories to the
 * daemon's user, load them back into nk[i].kf and say what was created.
 * Returns 0, or -1 after saying why (keys already written stay).
 */
static int
keycmd_make_keys(const struct config *cfg, const struct domain_config *d,
    struct newkey *nk, size_t nnew, unsigned bits)
{
	char *dir, *err, **made = NULL;
	size_t i, nmade = 0;
	int rc = -1;

	dir = xasprintf("%s/keys/%s", cfg->state_dir, d->name);
	if (keycmd_mkdirs(dir, &made, &nmade) == -1)
		goto out;
	keycmd_give(cfg, made, nmade);
	for (i = 0; i < nnew; i++) {
		err = NULL;
		if (keyfile_generate(nk[i].path, nk[i].alg,
		    nk[i].alg == KEYFILE_RSA_SHA256 ? bits : 0, &err) == -1) {
			fprintf(stderr, "postern: %s\n", err ? err :
			    nk[i].path);
			free(err);
			if (i > 0)
				fprintf(stderr, "postern: %s was written and "
				    "stays\n", nk[0].path);
			goto out;
		}
		keycmd_give(cfg, &nk[i].path, 1);
		if ((nk[i].kf = keyfile_load(nk[i].path, d->name,
		    nk[i].selector, nk[i].alg, &err)) == NULL) {
			fprintf(stderr, "postern: %s\n", err);
			free(err);
			goto out;
		}
	}
	for (i = 0; i < nnew; i++) {
		if (nk[i].alg == KEYFILE_RSA_SHA256)
			printf("Created %s (rsa-sha256, %u bits, selector "
			    "%s)\n", nk[i].path, nk[i].kf->bits,
			    nk[i].selector);
		else
			printf("Created %s (ed25519-sha256, selector %s)\n",
			    nk[i].path, nk[i].selector);
	}
	rc = 0;
out:
	for (i = 0; i < nmade; i++)
		free(made[i]);
	free(made);
	free(dir);
	return rc;
}

/*
 * keycmd_bits - parse -b (RSA modulus size) into *bits (0 when absent).
 * Returns 0, 1 after saying why, or 2 after printing the usage.
 */
static int
keycmd_bits(const struct keyopts *o, enum keyfile_alg alg,
    unsigned long *bits)
{
	char *end;

	*bits = 0;
	if (o->bits == NULL)
		return 0;
	errno = 0;
	*bits = strtoul(o->bits, &end, 10);
	if (o->bits[0] < '0' || o->bits[0] > '9' || *end != '\0' ||
	    errno != 0 || *bits > 65536)
		return keycmd_usage("BITS is a number of bits, 2048 to 4096");
	if (o->alg != NULL && alg == KEYFILE_ED25519_SHA256)
		return keycmd_usage("-b is for RSA keys (Ed25519 keys always "
		    "have 256 bits)");
	if (*bits < KEYFILE_RSA_MIN_BITS) {
		fprintf(stderr, "postern: %lu-bit RSA keys are refused: "
		    "receivers treat keys under %d bits as weak or fail them "
		    "(RFC 8301); use -b %d (the default) up to %d\n", *bits,
		    KEYFILE_RSA_MIN_BITS, KEYFILE_RSA_DEFAULT_BITS,
		    KEYFILE_RSA_MAX_BITS);
		return 1;
	}
	if (*bits > KEYFILE_RSA_MAX_BITS) {
		fprintf(stderr, "postern: %lu-bit RSA keys are refused: above "
		    "%d bits signing is slow and the DNS record too long for "
		    "many DNS providers\n", *bits, KEYFILE_RSA_MAX_BITS);
		return 1;
	}
	return 0;
}

/*
 * keycmd_selectors_free - whether the new keys' selectors may be used:
 * not in the rotation state, and not configured for another algorithm
 * (a configured selector whose key is still to be made is fine). Returns
 * 0, or -1 after saying why.
 */
static int
keycmd_selectors_free(const struct config *cfg, const struct domain_config *d,
    const struct keysels *sels, const struct newkey *nk, size_t nnew)
{
	const struct keysel *e;
	size_t i;

	for (i = 0; i < nnew; i++) {
		if ((e = keysels_find(sels, nk[i].selector)) == NULL)
			continue;
		if (e->line > 0 && e->alg == nk[i].alg)
			continue;
		if (e->line > 0)
			fprintf(stderr, "postern: %s: selector %s is already "
			    "configured for %s at %s line %d; choose another "
			    "one\n", d->name, e->selector,
			    keyfile_alg_name(e->alg), cfg->path, e->line);
		else
			fprintf(stderr, "postern: %s: selector %s is already "
			    "%s (postern keys status %s); choose another one "
			    "with -s and -a\n", d->name, e->selector,
			    keystate_name(e->state), d->name);
		return -1;
	}
	return 0;
}

/*
 * keycmd_newkey_opts - the options generate and rotate share: one
 * DOMAIN, -a ALGORITHM (into *alg), -s SELECTOR (needs -a), -b BITS
 * (into *bits). Returns 0, 1 after saying why, or 2 after the usage.
 */
static int
keycmd_newkey_opts(const struct keyopts *o, enum keyfile_alg *alg,
    unsigned long *bits)
{
	if (o->seen & ~(KO_C | KO_S | KO_A | KO_B))
		return keycmd_usage("generate and rotate take -a, -s, -b and "
		    "-c");
	if (o->nwords != 2)
		return keycmd_usage("generate and rotate need one DOMAIN");
	if (o->alg != NULL && keyfile_alg_parse(o->alg, alg) == -1)
		return keycmd_usage("ALGORITHM is rsa-sha256 or "
		    "ed25519-sha256");
	if (o->selector != NULL && o->alg == NULL)
		return keycmd_usage("-s names one key, so it needs -a (without "
		    "-s and -a, generate makes both keys, selectors rYYYYMM "
		    "and eYYYYMM)");
	if (o->selector != NULL && !keycmd_selector_ok(o->selector)) {
		fprintf(stderr, "postern: \"%s\" is not a valid selector "
		    "(letters, digits, '-' and dots)\n", o->selector);
		return 1;
	}
	return keycmd_bits(o, *alg, bits);
}

/* keycmd_generate - `keys generate DOMAIN [-a ALG] [-s SEL] [-b BITS]` */
static int
keycmd_generate(struct keyopts *o)
{
	const struct domain_config *d;
	struct newkey nk[2];
	struct config *cfg;
	struct stat st;
	struct tm tm;
	struct keysels sels = { NULL, 0 };
	enum keyfile_alg alg = KEYFILE_RSA_SHA256;
	char month[16];
	unsigned long bits = 0;
	size_t i, nnew;
	time_t now;
	int rc;
	bool has_rsa;

	if ((rc = keycmd_newkey_opts(o, &alg, &bits)) != 0)
		return rc;
	rc = 1;

	if ((cfg = keycmd_config(o->cfgpath)) == NULL)
		return 1;
	if ((d = keycmd_domain(cfg, o->words[1])) == NULL) {
		config_free(cfg);
		return 1;
	}

	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(month, sizeof(month), "%Y%m", &tm);
	memset(nk, 0, sizeof(nk));
	nnew = 0;
	if (o->alg == NULL || alg == KEYFILE_RSA_SHA256)
		nk[nnew++].alg = KEYFILE_RSA_SHA256;
	if (o->alg == NULL || alg == KEYFILE_ED25519_SHA256)
		nk[nnew++].alg = KEYFILE_ED25519_SHA256;
	for (i = 0; i < nnew; i++) {
		if (o->selector != NULL)
			snprintf(nk[i].selector, sizeof(nk[i].selector), "%s",
			    o->selector);
		else
			snprintf(nk[i].selector, sizeof(nk[i].selector),
			    "%c%s", nk[i].alg == KEYFILE_RSA_SHA256 ? 'r' :
			    'e', month);
		nk[i].path = xasprintf("%s/keys/%s/%s.key", cfg->state_dir,
		    d->name, nk[i].selector);
		/* Refuse before generating anything, so no half pair. */
		if (lstat(nk[i].path, &st) == 0) {
			fprintf(stderr, "postern: %s: already exists; refusing "
			    "to overwrite a key (choose another selector with "
			    "-s and -a)\n", nk[i].path);
			goto out;
		}
	}
	if (keycmd_sels(cfg, d, &sels) == -1 ||
	    keycmd_selectors_free(cfg, d, &sels, nk, nnew) == -1)
		goto out;

	if (keycmd_make_keys(cfg, d, nk, nnew, (unsigned)bits) == -1)
		goto out;
	printf("\n; 1. Publish in the DNS zone of %s (`postern keys dns "
	    "--plain` prints it for web forms):\n", d->name);
	for (i = 0; i < nnew; i++)
		keycmd_key_record(stdout, false, nk[i].kf, NULL);
	printf("\n# 2. Once the DNS answers with the record%s, set this in "
	    "the entry of %s\n#    in domains of %s, and reload postern:\n",
	    nnew > 1 ? "s" : "", d->name, cfg->path);
	keycmd_snippet(cfg, d, nk, nnew);
	has_rsa = nk[0].alg == KEYFILE_RSA_SHA256;
	for (i = 0; i < d->ndkim && !has_rsa; i++)
		if (d->dkim[i].algorithm == DKIM_ALG_RSA_SHA256)
			has_rsa = true;
	if (!has_rsa)
		printf("# Note: %s also needs an rsa-sha256 key: "
		    "ed25519-sha256 never signs alone\n#   (most large receivers do not "
		    "verify it yet): postern keys generate %s -a "
		    "rsa-sha256\n", d->name, d->name);
	rc = keycmd_flush();

out:
	keycmd_newkeys_free(nk, 2);
	keysels_free(&sels);
	config_free(cfg);
	return rc;
}

/* ---- keys dns ---- */

/* keycmd_spf_comment - what keycmd_spf's record says, for `keys dns` */
static char *
keycmd_spf_comment(const struct config *cfg, const char *domain)
{
	const struct relay_config *rc = &cfg->relay;
	const char *via = rc->naddresses > 0 ? "its addresses in "
	    "relay.addresses" : "name (its A/AAAA records)";

	if (rc->mode == RELAY_SMARTHOST)
		return xasprintf("SPF: mail for %s leaves through the smarthost "
		    "%s, so the record must allow its provider (%s); it "
		    "also allows this relay host by %s. A name has one SPF "
		    "record, so merge this into any existing one", domain,
		    rc->smarthost.host ? rc->smarthost.host : "",
		    rc->smarthost.spf ? "relay.smarthost.spf" : "set "
		    "relay.smarthost.spf to the provider's mechanism, e.g. "
		    "include:..., and run this again", via);
	return xasprintf("SPF: authorises the relay host %s by %s to send "
	    "as %s; a name has one SPF record, so merge this into any "
	    "existing one", cfg->hostname, via, domain);
}

/*
 * keycmd_dns_judged - print "NAME: " and the verdict of one record, as
 * keys/dnsrec.c judged it: "temporary DNS failure" (or, when DNSSEC
 * validation failed, "DNSSEC validation failed (WHY)" with the likely
 * cause), or "MISSING" alone
 * when the name had no TXT answer; "ok", and with show_ok "ok
 * (published: VALUE[; okdetail])"; "MISSING (WHY[; suggested: ...])";
 * "DIFFERENT (published: VALUE; WHY[; suggested: ...])". Returns the
 * verdict.
 */
static enum dnsrec_verdict
keycmd_dns_judged(const char *name, enum dns_status st,
    const struct dns_sec *sec, const struct dnsrec_result *r, bool show_ok,
    const char *okdetail, const char *suggested)
{
	const char *sp = suggested ? "; suggested: " : "", *sv = suggested ?
	    suggested : "";

	if (r->verdict == DNSREC_TEMPFAIL && sec->level == DNS_BOGUS)
		printf("%s: DNSSEC validation failed (%s): the records are "
		    "badly signed, or the resolver does not pass DNSSEC "
		    "records through (see dnssec_validation)\n", name,
		    sec->why[0] ? sec->why : "bogus");
	else if (r->verdict == DNSREC_TEMPFAIL)
		printf("%s: temporary DNS failure\n", name);
	else if (st != DNS_OK)
		printf("%s: MISSING\n", name);
	else if (r->verdict == DNSREC_OK && !show_ok)
		printf("%s: ok\n", name);
	else if (r->verdict == DNSREC_OK)
		printf("%s: ok (published: %s%s%s)\n", name, r->published,
		    okdetail ? "; " : "", okdetail ? okdetail : "");
	else if (r->verdict == DNSREC_MISSING)
		printf("%s: MISSING (%s%s%s)\n", name, r->why, sp, sv);
	else
		printf("%s: DIFFERENT (published: %s; %s%s%s)\n", name,
		    r->published, r->why, sp, sv);
	return r->verdict;
}

/* keycmd_has_no_keys - say so (naming the fix) if d has no selectors */
static int
keycmd_has_no_keys(const struct config *cfg, const struct domain_config *d,
    const struct keysels *s)
{
	if (s->n > 0)
		return 0;
	fprintf(stderr, "postern: %s has no dkim keys in %s: run `postern "
	    "keys generate %s`\n", d->name, cfg->path, d->name);
	return 1;
}

/*
 * keycmd_dns_check - `keys dns --check`: look every record `keys dns`
 * prints up through cfg's resolver and say per record whether it matches
 * (keys/dnsrec.h's rules, the daemon's drift watch's too). Returns 0 if
 * every DKIM record matches, else 1.
 */
static int
keycmd_dns_check(const struct config *cfg, const struct domain_config *only)
{
	struct keysels sels = { NULL, 0 };
	const struct domain_config *d;
	struct dnsrec_result r;
	struct dns_sec sec;
	enum dns_status st;
	struct keyfile *kf;
	struct dns *dns;
	char *err = NULL, *name, *want, **txts, *note;
	size_t i, j, n;
	int rc = 0;

	if ((dns = dns_new(cfg->resolver, cfg->dnssec_trust_anchor,
	    &err)) == NULL) {
		fprintf(stderr, "postern: %s\n", err);
		free(err);
		return 1;
	}
	for (i = 0; i < cfg->ndomains; i++) {
		d = &cfg->domains[i];
		if (only != NULL && d != only)
			continue;
		if (keycmd_sels(cfg, d, &sels) == -1 ||
		    keycmd_has_no_keys(cfg, d, &sels))
			rc = 1;
		for (j = 0; j < sels.n; j++) {
			if ((kf = keycmd_load(cfg, d, &sels.v[j])) == NULL) {
				rc = 1;
				continue;
			}
			name = keyfile_txt_name(kf);
			want = keyfile_txt(kf);
			(void)dns_txt_sync(dns, name, &txts, &n, &st, &sec);
			(void)dnsrec_dkim_judge(st, txts, n, want, &r);
			if (keycmd_dns_judged(name, st, &sec, &r, false, NULL,
			    NULL) != DNSREC_OK)
				rc = 1;
			dns_txts_free(txts, n);
			free(want);
			free(name);
			keyfile_free(kf);
		}
		keysels_free(&sels);

		want = dnsrec_spf(cfg);
		(void)dns_txt_sync(dns, d->name, &txts, &n, &st, &sec);
		(void)dnsrec_spf_judge(st, txts, n, want, &r);
		note = r.verdict == DNSREC_OK && r.published != NULL &&
		    strcasecmp(r.published, want) != 0 ? xasprintf("differs "
		    "from the suggestion: %s", want) : xstrdup("matches the "
		    "suggestion");
		(void)keycmd_dns_judged(d->name, st, &sec, &r, true, note,
		    want);
		free(note);
		dns_txts_free(txts, n);
		free(want);

		name = dnsrec_dmarc_name(d->name);
		(void)dns_txt_sync(dns, name, &txts, &n, &st, &sec);
		(void)dnsrec_dmarc_judge(st, txts, n, &r);
		(void)keycmd_dns_judged(name, st, &sec, &r, true, NULL, NULL);
		dns_txts_free(txts, n);
		free(name);
	}
	dns_free(dns);
	if (keycmd_flush() != 0)
		rc = 1;
	return rc;
}

/* keycmd_dns - `keys dns [DOMAIN] [--plain | --check]` */
static int
keycmd_dns(struct keyopts *o)
{
	struct keysels sels = { NULL, 0 };
	const struct domain_config *only = NULL, *d;
	struct keyfile *kf;
	struct config *cfg;
	bool plain = (o->seen & KO_PLAIN) != 0;
	char *name, *value, *comment;
	size_t i, j;
	int rc = 0;

	if (o->seen & ~(KO_C | KO_PLAIN | KO_CHECK))
		return keycmd_usage("dns takes --plain, --check and -c");
	if (o->nwords > 2)
		return keycmd_usage("dns takes at most one DOMAIN");
	if ((o->seen & KO_CHECK) && plain)
		return keycmd_usage("dns: --check and --plain exclude each "
		    "other");
	if ((cfg = keycmd_config(o->cfgpath)) == NULL)
		return 1;
	if (o->nwords == 2 && (only = keycmd_domain(cfg, o->words[1])) ==
	    NULL) {
		config_free(cfg);
		return 1;
	}
	if (o->seen & KO_CHECK) {
		rc = keycmd_dns_check(cfg, only);
		config_free(cfg);
		return rc;
	}
	for (i = 0; i < cfg->ndomains; i++) {
		d = &cfg->domains[i];
		if (only != NULL && d != only)
			continue;
		if (!plain)
			printf("%s; %s\n", only != NULL || i == 0 ? "" : "\n",
			    d->name);
		if (keycmd_sels(cfg, d, &sels) == -1 ||
		    keycmd_has_no_keys(cfg, d, &sels))
			rc = 1;
		for (j = 0; j < sels.n; j++) {
			if ((kf = keycmd_load(cfg, d, &sels.v[j])) == NULL) {
				rc = 1;
				continue;
			}
			keycmd_key_record(stdout, plain, kf,
			    keycmd_state_note(&sels.v[j]));
			keyfile_free(kf);
		}
		keysels_free(&sels);

		value = dnsrec_spf(cfg);
		comment = keycmd_spf_comment(cfg, d->name);
		keycmd_record(stdout, plain, comment, d->name, value);
		free(comment);
		free(value);

		name = dnsrec_dmarc_name(d->name);
		value = dnsrec_dmarc(d->name);
		keycmd_record(stdout, plain, "DMARC: set rua= to a mailbox "
		    "you read (aggregate reports arrive there); p=none only "
		    "reports: move to p=quarantine, then p=reject, once the "
		    "reports show all mail passing", name, value);
		free(value);
		free(name);
	}
	if (keycmd_flush() != 0)
		rc = 1;
	config_free(cfg);
	return rc;
}

/* ---- keys sign ---- */

/*
 * keycmd_header_list - parse "from:to:subject" into hl: every name is
 * signed, a name given twice or more is oversigned. The names point into
 * *copy (free it, and the two arrays). Returns 0 or -1 after saying why.
 */
static int
keycmd_header_list(const char *list, struct dkim_headers *hl, char **copy)
{
	const char **sign, **over;
	char *p, *name, *save = NULL;
	size_t i, n = 0, nsign = 0, nover = 0, len;

	*copy = xstrdup(list);
	for (p = *copy; *p; p++)
		if (*p == ':')
			n++;
	sign = xcalloc(n + 1, sizeof(*sign));
	over = xcalloc(n + 1, sizeof(*over));
	for (name = strtok_r(*copy, ":", &save); name != NULL;
	    name = strtok_r(NULL, ":", &save)) {
		name += strspn(name, " \t");
		len = strlen(name);
		while (len > 0 && (name[len - 1] == ' ' ||
		    name[len - 1] == '\t'))
			name[--len] = '\0';
		if (len == 0)
			continue;
		for (i = 0; i < nsign; i++)
			if (strcasecmp(sign[i], name) == 0)
				break;
		if (i == nsign) {
			sign[nsign++] = name;
			continue;
		}
		for (i = 0; i < nover; i++)
			if (strcasecmp(over[i], name) == 0)
				break;
		if (i == nover)
			over[nover++] = name;
	}
	hl->sign = sign;
	hl->nsign = nsign;
	hl->oversign = over;
	hl->noversign = nover;
	if (nsign == 0) {
		fprintf(stderr, "postern: --headers: no header field names "
		    "in \"%s\"\n", list);
		return -1;
	}
	return 0;
}

/*
 * keycmd_sign_keys - the keys to sign with: KEYFILE as SELECTOR for
 * dname (d is NULL when dname is not hosted), or the hosted domain d's
 * configured ones (only SELECTOR's if given). Returns their number, or 0
 * after saying why.
 */
static size_t
keycmd_sign_keys(const struct keyopts *o, const struct config *cfg,
    const struct domain_config *d, const char *dname, struct keyfile **keys)
{
	struct keysels sels = { NULL, 0 };
	enum keyfile_alg alg;
	char *err = NULL, *err2 = NULL;
	size_t i, n = 0;

	if (o->keyfile != NULL) {
		if (o->alg != NULL) {
			(void)keyfile_alg_parse(o->alg, &alg);
			keys[0] = keyfile_load(o->keyfile, dname,
			    o->selector, alg, &err);
		} else {
			/* Its own type: a problem other than the type is
			   found the same way by both attempts. */
			keys[0] = keyfile_load(o->keyfile, dname,
			    o->selector, KEYFILE_RSA_SHA256, &err);
			if (keys[0] == NULL)
				keys[0] = keyfile_load(o->keyfile, dname,
				    o->selector, KEYFILE_ED25519_SHA256,
				    &err2);
		}
		if (keys[0] == NULL)
			fprintf(stderr, "postern: %s\n", err);
		free(err);
		free(err2);
		return keys[0] != NULL;
	}
	if (keycmd_sels(cfg, d, &sels) == -1)
		return 0;
	/* Without -s: what the daemon signs with; -s: any selector. */
	for (i = 0; i < sels.n && n < 2; i++) {
		if (o->selector != NULL ?
		    strcmp(sels.v[i].selector, o->selector) != 0 :
		    sels.v[i].state != KEY_ACTIVE)
			continue;
		if ((keys[n] = keycmd_load(cfg, d, &sels.v[i])) == NULL) {
			while (n > 0)
				keyfile_free(keys[--n]);
			keysels_free(&sels);
			return 0;
		}
		n++;
	}
	if (n == 0 && o->selector != NULL)
		fprintf(stderr, "postern: %s: selector %s is not configured "
		    "in %s (sign with a key file: -k KEYFILE -s %s)\n",
		    d->name, o->selector, cfg->path, o->selector);
	else if (n == 0)
		fprintf(stderr, "postern: %s has no active dkim keys in %s: "
		    "run `postern keys generate %s`\n", d->name, cfg->path,
		    d->name);
	keysels_free(&sels);
	return n;
}

/*
 * keycmd_crlf - copy in[0..len) to out turning every LF not preceded by
 * CR (*cr: the previous byte was CR, across calls) into CRLF. out has
 * room for 2 * len bytes. Returns the bytes written.
 */
static size_t
keycmd_crlf(const char *in, size_t len, char *out, bool *cr)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && !*cr)
			out[n++] = '\r';
		out[n++] = in[i];
		*cr = in[i] == '\r';
	}
	return n;
}

/*
 * keycmd_sign_stream - read the message from stdin, hash it with s and
 * spool it (CRLF) to fd tmp. Only the header section is kept in memory,
 * at most maxhdr bytes. Returns 0 or -1 after saying why.
 */
static int
keycmd_sign_stream(struct dkim_signer *s, int tmp, size_t maxhdr)
{
	struct buf hdr;
	char *in, *conv;
	ssize_t r;
	size_t n, i, cut;
	int state = 2;		/* of "\r\n\r\n" matched; a message may
				   start with its empty line */
	bool cr = false, inbody = false;
	int rc = -1;

	buf_init(&hdr, maxhdr);
	in = xmalloc(KEYCMD_CHUNK);
	conv = xmalloc(2 * KEYCMD_CHUNK);
	for (;;) {
		if ((r = read(STDIN_FILENO, in, KEYCMD_CHUNK)) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "postern: reading the message: %s\n",
			    strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n = keycmd_crlf(in, (size_t)r, conv, &cr);
		if (io_write_all(tmp, conv, n) == -1) {
			fprintf(stderr, "postern: writing the temporary copy "
			    "of the message: %s\n", strerror(errno));
			goto out;
		}
		if (inbody) {
			if (dkim_signer_body(s, conv, n) == -1)
				goto failed;
			continue;
		}
		for (i = 0, cut = n; i < n && cut == n; i++) {
			if (conv[i] == '\r')
				state = state == 0 || state == 2 ? state + 1 :
				    1;
			else if (conv[i] == '\n' && (state == 1 ||
			    state == 3))
				state++;
			else
				state = 0;
			if (state == 4)
				cut = i + 1;
		}
		if (buf_append(&hdr, conv, cut) == -1) {
			fprintf(stderr, "postern: the header section is "
			    "larger than %zu bytes (limits.header_size)\n",
			    maxhdr);
			goto out;
		}
		if (cut < n || state == 4) {
			inbody = true;
			if (dkim_signer_headers(s, hdr.data, hdr.len) == -1 ||
			    dkim_signer_body(s, conv + cut, n - cut) == -1)
				goto failed;
		}
	}
	if (!inbody && dkim_signer_headers(s, hdr.data, hdr.len) == -1)
		goto failed;
	rc = 0;
	goto out;
failed:
	fprintf(stderr, "postern: %s\n", dkim_signer_error(s) ?
	    dkim_signer_error(s) : "DKIM signing failed");
out:
	free(conv);
	free(in);
	buf_free(&hdr);
	return rc;
}

/* keycmd_sign - `keys sign DOMAIN ... < MESSAGE` */
static int
keycmd_sign(struct keyopts *o)
{
	const struct domain_config *d = NULL;
	const char *dname = NULL;
	struct dkim_headers hl, given;
	struct keyfile *keys[DKIM_SIGNER_MAXKEYS];
	struct dkim_signer *s = NULL;
	struct config *cfg;
	struct buf sigs;
	enum keyfile_alg alg;
	long long t = 0;
	char *end, *err = NULL, *copy = NULL, *chunk = NULL, *dcopy = NULL;
	size_t n = 0, i, len;
	ssize_t r;
	int tmp = -1, rc = 1;

	if (o->seen & ~(KO_C | KO_S | KO_K | KO_A | KO_TIME | KO_HEADERS))
		return keycmd_usage("sign takes -s, -k, -a, --time, "
		    "--headers and -c");
	if (o->nwords != 2)
		return keycmd_usage("sign needs one DOMAIN");
	if (o->keyfile != NULL && o->selector == NULL)
		return keycmd_usage("-k KEYFILE needs -s SELECTOR (the s= "
		    "its DNS record is published under)");
	if (o->alg != NULL && o->keyfile == NULL)
		return keycmd_usage("-a goes with -k: configured keys have "
		    "their algorithm in the configuration");
	if (o->alg != NULL && keyfile_alg_parse(o->alg, &alg) == -1)
		return keycmd_usage("ALGORITHM is rsa-sha256 or "
		    "ed25519-sha256");
	if (o->time != NULL) {
		errno = 0;
		t = strtoll(o->time, &end, 10);
		if (o->time[0] < '0' || o->time[0] > '9' || *end != '\0' ||
		    errno != 0 || t <= 0 || (long long)(time_t)t != t)
			return keycmd_usage("--time takes seconds since 1970 "
			    "(UTC), e.g. 1528637909");
	}

	buf_init(&sigs, KEYCMD_SIGS_MAX);
	memset(&given, 0, sizeof(given));
	if ((cfg = keycmd_config(o->cfgpath)) == NULL)
		goto out;
	/* With a key file any valid domain signs (RFC 8463's example, a
	   domain being prepared); without one, the key comes from the
	   hosted domain's configuration. */
	if (o->keyfile != NULL) {
		if ((d = keycmd_hosted(cfg, o->words[1])) != NULL)
			dname = d->name;
		else {
			dcopy = xstrdup(o->words[1]);
			if ((len = strlen(dcopy)) > 1 && dcopy[len - 1] == '.')
				dcopy[len - 1] = '\0';
			if (!keyfile_valid_domain(dcopy)) {
				fprintf(stderr, "postern: \"%s\" is not a "
				    "valid domain name\n", o->words[1]);
				goto out;
			}
			dname = dcopy;
		}
	} else if ((d = keycmd_hosted(cfg, o->words[1])) == NULL) {
		fprintf(stderr, "postern: %s: not a hosted domain in %s (add "
		    "it to domains first, or sign with a key file: -k KEYFILE "
		    "-s SELECTOR)\n", o->words[1], cfg->path);
		goto out;
	} else
		dname = d->name;
	if (o->keyfile == NULL && o->selector != NULL &&
	    !keyfile_valid_selector(o->selector)) {
		fprintf(stderr, "postern: \"%s\" is not a valid selector\n",
		    o->selector);
		goto out;
	}
	if ((n = keycmd_sign_keys(o, cfg, d, dname, keys)) == 0)
		goto out;

	if (o->headers != NULL) {
		if (keycmd_header_list(o->headers, &given, &copy) == -1)
			goto out;
		hl = given;
	} else {
		hl = dkim_default_headers;
		if (d != NULL && d->sign_headers != NULL) {
			hl.sign = (const char *const *)d->sign_headers;
			hl.nsign = d->nsign_headers;
		}
		if (d != NULL && d->oversign_headers != NULL) {
			hl.oversign = (const char *const *)d->oversign_headers;
			hl.noversign = d->noversign_headers;
		}
	}
	if ((s = dkim_signer_new((const struct keyfile *const *)keys, n, &hl,
	    (time_t)t, &err)) == NULL) {
		fprintf(stderr, "postern: %s: %s\n", dname, err);
		goto out;
	}
	if ((tmp = keycmd_tmpfile(NULL)) == -1)
		goto out;
	if (keycmd_sign_stream(s, tmp, cfg->limits.header_size) == -1)
		goto out;
	if (dkim_signer_finish(s, &sigs, &err) == -1) {
		fprintf(stderr, "postern: %s\n", err);
		goto out;
	}

	if (io_write_all(STDOUT_FILENO, sigs.data, sigs.len) == -1 ||
	    lseek(tmp, 0, SEEK_SET) == -1)
		goto write_error;
	chunk = xmalloc(KEYCMD_CHUNK);
	for (;;) {
		if ((r = read(tmp, chunk, KEYCMD_CHUNK)) == -1) {
			if (errno == EINTR)
				continue;
			goto write_error;
		}
		if (r == 0)
			break;
		if (io_write_all(STDOUT_FILENO, chunk, (size_t)r) == -1)
			goto write_error;
	}
	rc = 0;
	goto out;
write_error:
	fprintf(stderr, "postern: writing the signed message: %s\n",
	    strerror(errno));
out:
	free(chunk);
	if (tmp != -1)
		close(tmp);
	dkim_signer_free(s);
	for (i = 0; i < n; i++)
		keyfile_free(keys[i]);
	free(err);
	free(copy);
	free(dcopy);
	free((void *)given.sign);
	free((void *)given.oversign);
	buf_free(&sigs);
	config_free(cfg);
	dkim_shutdown();
	return rc;
}

/* ---- keys verify ---- */

struct verify_state {
	size_t	n;
	size_t	npass;
};

/* keycmd_verify_cb - one line per signature */
static void
keycmd_verify_cb(const struct dkim_verify_result *r, void *arg)
{
	struct verify_state *vs = arg;

	vs->n++;
	if (strcmp(r->result, "pass") == 0)
		vs->npass++;
	printf("d=%s s=%s a=%s: %s (%s)\n", r->domain, r->selector,
	    r->algorithm, r->result, r->detail);
}

/*
 * keycmd_local_keys - write every configured key's record to a new
 * temporary file as libopendkim's DKIM_QUERY_FILE wants it; *path gets
 * its name. Keys that do not load are reported and left out. Returns
 * the number of records, or -1 after saying why.
 */
static int
keycmd_local_keys(const struct config *cfg, char **path)
{
	struct keysels sels = { NULL, 0 };
	const struct domain_config *d;
	struct keyfile *kf;
	struct buf b;
	char *name, *txt;
	size_t i, j;
	int fd, n = 0;

	if ((fd = keycmd_tmpfile(path)) == -1)
		return -1;
	buf_init(&b, 1 << 20);
	for (i = 0; i < cfg->ndomains; i++) {
		d = &cfg->domains[i];
		if (keycmd_sels(cfg, d, &sels) == -1)
			continue;
		for (j = 0; j < sels.n; j++) {
			if ((kf = keycmd_load(cfg, d, &sels.v[j])) == NULL)
				continue;
			name = keyfile_txt_name(kf);
			txt = keyfile_txt(kf);
			if (buf_printf(&b, "%s\t%s\n", name, txt) == 0)
				n++;
			free(txt);
			free(name);
			keyfile_free(kf);
		}
		keysels_free(&sels);
	}
	if (io_write_all(fd, b.data, b.len) == -1 || close(fd) == -1) {
		fprintf(stderr, "postern: %s: %s\n", *path, strerror(errno));
		(void)unlink(*path);
		free(*path);
		*path = NULL;
		n = -1;
	}
	buf_free(&b);
	return n;
}

/* keycmd_verify - `keys verify [--local] < MESSAGE` */
static int
keycmd_verify(struct keyopts *o)
{
	struct verify_state vs = { 0, 0 };
	struct config *cfg = NULL;
	char *keys = NULL, *err = NULL;
	int n, rc = 1;

	if (o->seen & ~(KO_C | KO_LOCAL))
		return keycmd_usage("verify takes --local and -c");
	if (o->nwords != 1)
		return keycmd_usage("verify reads the message from standard "
		    "input and takes no DOMAIN");
	if (o->seen & KO_LOCAL) {
		if ((cfg = keycmd_config(o->cfgpath)) == NULL)
			return 1;
		if ((n = keycmd_local_keys(cfg, &keys)) <= 0) {
			if (n == 0)
				fprintf(stderr, "postern: %s: no DKIM key "
				    "could be loaded for --local\n",
				    cfg->path);
			goto out;
		}
	}
	n = dkim_verify_message(STDIN_FILENO, keys, keycmd_verify_cb, &vs,
	    &err);
	if (n == -1)
		fprintf(stderr, "postern: %s\n", err);
	else if (n == 0)
		fprintf(stderr, "postern: the message has no DKIM-Signature "
		    "field\n");
	else if (vs.npass == vs.n && vs.n > 0)
		rc = 0;
	if (fflush(stdout) == EOF)
		rc = 1;
out:
	if (keys != NULL) {
		(void)unlink(keys);
		free(keys);
	}
	free(err);
	config_free(cfg);
	return rc;
}

/* ---- keys rotate, status, remove ---- */

/*
 * keycmd_state_owner - the uid/gid state files should belong to: the
 * daemon's user when run as root with `user` set, else (uid_t)-1 (keep).
 */
static void
keycmd_state_owner(const struct config *cfg, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (cfg->user != NULL && geteuid() == 0 &&
	    (pw = getpwnam(cfg->user)) != NULL) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
}

/*
 * keycmd_save - under the state file's lock, re-read d's selectors, let
 * change() edit them, check that they can still sign and write them.
 * Returns 0, or 1 after saying why (nothing written).
 */
static int
keycmd_save(const struct config *cfg, const struct domain_config *d,
    int (*change)(struct keysels *, void *), void *arg)
{
	struct keysels sels = { NULL, 0 };
	char *path, *err = NULL;
	uid_t uid;
	gid_t gid;
	int lock, rc = 1;

	path = keystate_path(cfg->state_dir, d->name);
	if ((lock = keystate_lock(path, true, &err)) == -1)
		goto out;
	if (keyring_selectors(cfg, d, &sels, &err) == -1 ||
	    change(&sels, arg) == -1 || keyring_check(cfg, d, &sels, &err) ==
	    -1)
		goto out;
	keycmd_state_owner(cfg, &uid, &gid);
	if (keystate_write(path, &sels, uid, gid, &err) == -1)
		goto out;
	rc = 0;
out:
	if (err != NULL)
		fprintf(stderr, "postern: %s\n", err);
	free(err);
	keystate_unlock(lock);
	keysels_free(&sels);
	free(path);
	return rc;
}

struct rotate_change {
	const struct newkey	*nk;
	size_t			 nnew;
	time_t			 now;
};

/* keycmd_add_pending - keycmd_save's change for `keys rotate` */
static int
keycmd_add_pending(struct keysels *sels, void *arg)
{
	const struct rotate_change *rc = arg;
	size_t i;

	for (i = 0; i < rc->nnew; i++) {
		if (keysels_find(sels, rc->nk[i].selector) != NULL) {
			fprintf(stderr, "postern: selector %s appeared "
			    "meanwhile; run the command again\n",
			    rc->nk[i].selector);
			return -1;
		}
		keysels_add(sels, rc->nk[i].selector, rc->nk[i].alg,
		    KEY_PENDING, rc->now, rc->nk[i].path, 0);
	}
	return 0;
}

/*
 * keycmd_next_selector - the rotated selector for alg: LETTER + YYYYMM,
 * or LETTER + YYYYMMDD when the month's is taken (by a selector or a
 * file). -1 when both are taken.
 */
static int
keycmd_next_selector(const struct config *cfg, const struct domain_config *d,
    const struct keysels *sels, struct newkey *nk, const struct tm *tm)
{
	static const char *const fmts[] = { "%Y%m", "%Y%m%d" };
	struct stat st;
	char date[16];
	size_t i;

	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		strftime(date, sizeof(date), fmts[i], tm);
		snprintf(nk->selector, sizeof(nk->selector), "%c%s",
		    nk->alg == KEYFILE_RSA_SHA256 ? 'r' : 'e', date);
		free(nk->path);
		nk->path = xasprintf("%s/keys/%s/%s.key", cfg->state_dir,
		    d->name, nk->selector);
		if (keysels_find(sels, nk->selector) == NULL &&
		    lstat(nk->path, &st) == -1)
			return 0;
	}
	return -1;
}

/* keycmd_rotate - `keys rotate DOMAIN [-a ALG [-s SEL]] [-b BITS]` */
static int
keycmd_rotate(struct keyopts *o)
{
	const struct domain_config *d;
	struct rotate_change change;
	struct keysels sels = { NULL, 0 };
	struct newkey nk[2];
	struct config *cfg;
	struct stat st;
	struct tm tm;
	enum keyfile_alg alg = KEYFILE_RSA_SHA256;
	unsigned long bits;
	size_t i, j, nnew = 0;
	char *err = NULL;
	time_t now;
	int rc;

	if ((rc = keycmd_newkey_opts(o, &alg, &bits)) != 0)
		return rc;
	rc = 1;
	memset(nk, 0, sizeof(nk));
	if ((cfg = keycmd_config(o->cfgpath)) == NULL)
		return 1;
	if ((d = keycmd_domain(cfg, o->words[1])) == NULL ||
	    keycmd_sels(cfg, d, &sels) == -1)
		goto out;
	if (keyring_check(cfg, d, &sels, &err) == -1) {
		fprintf(stderr, "postern: %s\n", err);
		free(err);
		goto out;
	}

	/* Without -a: a new key for each algorithm that signs now. */
	for (i = 0; i < sels.n; i++) {
		if (sels.v[i].state == KEY_PENDING &&
		    (o->alg == NULL || sels.v[i].alg == alg)) {
			fprintf(stderr, "postern: %s: selector %s (%s) is "
			    "already pending; the daemon switches to it once "
			    "DNS serves its record (postern keys status %s)\n",
			    d->name, sels.v[i].selector,
			    keyfile_alg_name(sels.v[i].alg), d->name);
			goto out;
		}
		if (sels.v[i].state != KEY_ACTIVE ||
		    (o->alg != NULL && sels.v[i].alg != alg))
			continue;
		nk[nnew++].alg = sels.v[i].alg;
	}
	if (nnew == 0)
		nk[nnew++].alg = alg;	/* -a ed25519-sha256: adds one */
	if (nnew == 2 && nk[0].alg != KEYFILE_RSA_SHA256) {
		nk[0].alg = KEYFILE_RSA_SHA256;
		nk[1].alg = KEYFILE_ED25519_SHA256;
	}
	now = time(NULL);
	gmtime_r(&now, &tm);
	for (i = 0; i < nnew; i++) {
		if (o->selector != NULL) {
			snprintf(nk[i].selector, sizeof(nk[i].selector), "%s",
			    o->selector);
			nk[i].path = xasprintf("%s/keys/%s/%s.key",
			    cfg->state_dir, d->name, nk[i].selector);
			if (keysels_find(&sels, o->selector) == NULL &&
			    lstat(nk[i].path, &st) == -1)
				continue;
			fprintf(stderr, "postern: %s: selector %s is taken "
			    "(listed, or %s exists); choose another one\n",
			    d->name, o->selector, nk[i].path);
			goto out;
		}
		if (keycmd_next_selector(cfg, d, &sels, &nk[i], &tm) == -1) {
			fprintf(stderr, "postern: %s: the selectors for this "
			    "month and today are taken; name one with -s and "
			    "-a\n", d->name);
			goto out;
		}
	}

	if (keycmd_make_keys(cfg, d, nk, nnew, (unsigned)bits) == -1)
		goto out;
	change.nk = nk;
	change.nnew = nnew;
	change.now = now;
	if (keycmd_save(cfg, d, keycmd_add_pending, &change) != 0) {
		for (i = 0; i < nnew; i++)
			(void)unlink(nk[i].path);
		fprintf(stderr, "postern: the new key files were removed\n");
		goto out;
	}

	printf("\n; Publish in the DNS zone of %s (`postern keys dns "
	    "--plain` prints it for web forms):\n", d->name);
	for (i = 0; i < nnew; i++)
		keycmd_key_record(stdout, false, nk[i].kf, "pending");
	printf("\n# Nothing else to do: the daemon keeps signing with");
	for (i = 0; i < sels.n; i++)
		for (j = 0; j < nnew; j++)
			if (sels.v[i].state == KEY_ACTIVE &&
			    sels.v[i].alg == nk[j].alg)
				printf(" %s", sels.v[i].selector);
	printf(",\n# looks the new record%s up every %us "
	    "(dkim_check_interval) and switches to\n# %s once DNS serves "
	    "exactly what is printed above. The old selector%s then\n# "
	    "retiring: keep %s published for a few days (mail in "
	    "transit), then run\n# `postern keys remove %s SELECTOR`. "
	    "`postern keys status %s` shows where it stands.\n",
	    nnew > 1 ? "s" : "", cfg->dkim_check_interval,
	    nnew > 1 ? "each" : "it", nnew > 1 ? "s are" : " is",
	    nnew > 1 ? "their records" : "its record", d->name, d->name);
	rc = keycmd_flush();
out:
	keycmd_newkeys_free(nk, 2);
	keysels_free(&sels);
	config_free(cfg);
	return rc;
}

/* keycmd_when - "2026-11-23 10:00 UTC" for t, "" when unknown */
static void
keycmd_when(time_t t, char *out, size_t len)
{
	struct tm tm;

	if (t == 0) {
		snprintf(out, len, "since the configuration");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, len, "since %Y-%m-%d %H:%M UTC", &tm);
}

/* keycmd_status - `keys status [DOMAIN]` */
static int
keycmd_status(struct keyopts *o)
{
	const struct domain_config *only = NULL, *d;
	struct keysels sels = { NULL, 0 };
	const struct keysel *e;
	struct config *cfg;
	char when[64], *where;
	size_t i, j;
	int rc = 0;

	if (o->seen & ~KO_C)
		return keycmd_usage("status takes -c");
	if (o->nwords > 2)
		return keycmd_usage("status takes at most one DOMAIN");
	if ((cfg = keycmd_config(o->cfgpath)) == NULL)
		return 1;
	if (o->nwords == 2 && (only = keycmd_domain(cfg, o->words[1])) ==
	    NULL) {
		config_free(cfg);
		return 1;
	}
	for (i = 0; i < cfg->ndomains; i++) {
		d = &cfg->domains[i];
		if (only != NULL && d != only)
			continue;
		printf("%s\n", d->name);
		if (keycmd_sels(cfg, d, &sels) == -1 ||
		    keycmd_has_no_keys(cfg, d, &sels)) {
			rc = 1;
			continue;
		}
		for (j = 0; j < sels.n; j++) {
			e = &sels.v[j];
			keycmd_when(e->since, when, sizeof(when));
			where = e->line > 0 ? xasprintf("%s line %d",
			    cfg->path, e->line) : xstrdup("not in the "
			    "configuration");
			printf("  %-12s %-15s %-9s %s; %s; %s\n", e->selector,
			    keyfile_alg_name(e->alg), keystate_name(e->state),
			    when, where, e->key);
			free(where);
		}
		keysels_free(&sels);
	}
	if (fflush(stdout) == EOF)
		rc = 1;
	config_free(cfg);
	return rc;
}

/* keycmd_drop - keycmd_save's change for `keys remove` */
static int
keycmd_drop(struct keysels *sels, void *arg)
{
	const char *selector = arg;
	struct keysel *e;

	if ((e = keysels_find(sels, selector)) == NULL) {
		fprintf(stderr, "postern: selector %s is not known\n",
		    selector);
		return -1;
	}
	if (e->state != KEY_RETIRING) {
		fprintf(stderr, "postern: selector %s is %s; only retiring "
		    "selectors can be removed (`postern keys rotate` makes "
		    "the active one retiring)\n", selector,
		    keystate_name(e->state));
		return -1;
	}
	if (e->line > 0) {
		fprintf(stderr, "postern: selector %s is still in the "
		    "configuration (line %d): delete that dkim entry "
		    "first\n", selector, e->line);
		return -1;
	}
	free(e->selector);
	free(e->key);
	*e = sels->v[--sels->n];
	return 0;
}

/* keycmd_remove - `keys remove DOMAIN SELECTOR` */
static int
keycmd_remove(struct keyopts *o)
{
	const struct domain_config *d;
	struct keysels sels = { NULL, 0 };
	const struct keysel *e;
	struct config *cfg;
	char *key = NULL, *name = NULL;
	int rc = 1;

	if (o->seen & ~KO_C)
		return keycmd_usage("remove takes -c");
	if (o->nwords != 3)
		return keycmd_usage("remove needs DOMAIN and SELECTOR");
	if ((cfg = keycmd_config(o->cfgpath)) == NULL)
		return 1;
	if ((d = keycmd_domain(cfg, o->words[1])) == NULL ||
	    keycmd_sels(cfg, d, &sels) == -1)
		goto out;
	if ((e = keysels_find(&sels, o->words[2])) != NULL)
		key = xstrdup(e->key);
	name = xasprintf("%s._domainkey.%s", o->words[2], d->name);
	if (keycmd_save(cfg, d, keycmd_drop, (void *)o->words[2]) != 0)
		goto out;
	if (key != NULL && unlink(key) == -1 && errno != ENOENT)
		fprintf(stderr, "postern: warning: %s: %s\n", key,
		    strerror(errno));
	printf("Removed selector %s of %s and its private key %s.\n"
	    "Delete its DNS record now: %s TXT\n", o->words[2], d->name,
	    key ? key : "", name);
	rc = 0;
out:
	free(key);
	free(name);
	keysels_free(&sels);
	config_free(cfg);
	return rc;
}

/* keys_main - dispatch `postern keys WORD ...` */
int
keys_main(int argc, char **argv)
{
	struct keyopts o;

	memset(&o, 0, sizeof(o));
	o.cfgpath = CONFIG_DEFAULT_PATH;
	if (keycmd_parse(argc, argv, &o) == -1 || o.nwords == 0)
		return keycmd_usage(NULL);
	log_init("postern", 0);
	log_set_quiet(1);
	o.cmd = o.words[0];
	if (strcmp(o.cmd, "generate") == 0)
		return keycmd_generate(&o);
	if (strcmp(o.cmd, "dns") == 0)
		return keycmd_dns(&o);
	if (strcmp(o.cmd, "sign") == 0)
		return keycmd_sign(&o);
	if (strcmp(o.cmd, "verify") == 0)
		return keycmd_verify(&o);
	if (strcmp(o.cmd, "rotate") == 0)
		return keycmd_rotate(&o);
	if (strcmp(o.cmd, "status") == 0)
		return keycmd_status(&o);
	if (strcmp(o.cmd, "remove") == 0)
		return keycmd_remove(&o);
	return keycmd_usage(NULL);
}
