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
#include "common/log.h"
#include "config/config.h"
#include "keys/dkim.h"
#include "keys/keycmd.h"
#include "keys/keyfile.h"
#include "relay/dns.h"

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
	const char	*words[2];
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
    "  (SPF and DMARC differences are warnings).\n"
    "sign: prints the message (stdin, LF or CRLF line ends) with CRLF "
    "line ends after\n"
    "  one DKIM-Signature per configured key of DOMAIN (rsa-sha256 "
    "first), or only\n"
    "  SELECTOR's; -k signs with KEYFILE as SELECTOR instead (-s "
    "required; the key's\n"
    "  type, or -a, gives the algorithm). --time fixes t=. --headers "
    "from:to:subject\n"
    "  replaces the domain's header lists: exactly those fields are "
    "signed, and a\n"
    "  name given twice is oversigned (named once more than present).\n"
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

/* keycmd_config - load the configuration or print its errors */
static struct config *
keycmd_config(const char *path)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;
	size_t i;

	if ((cfg = config_load_flags(path, &errs, CONFIG_NO_DKIM)) == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		if (errs.n == 0)
			fprintf(stderr, "postern: %s: cannot load the "
			    "configuration\n", path);
		config_errors_free(&errs);
	}
	return cfg;
}

/* keycmd_domain - the hosted domain called name (any case, final dot
   allowed), or NULL after saying so */
static const struct domain_config *
keycmd_domain(const struct config *cfg, const char *name)
{
	size_t i, n = strlen(name);

	if (n > 1 && name[n - 1] == '.')
		n--;
	for (i = 0; i < cfg->ndomains; i++)
		if (strlen(cfg->domains[i].name) == n &&
		    strncasecmp(cfg->domains[i].name, name, n) == 0)
			return &cfg->domains[i];
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

/* keycmd_load - load a configured selector's key; NULL after saying why */
static struct keyfile *
keycmd_load(const struct config *cfg, const struct domain_config *d,
    const struct dkim_selector_config *sc)
{
	struct keyfile *kf;
	char *err = NULL;

	kf = keyfile_load(sc->key, d->name, sc->selector,
	    keycmd_alg(sc->algorithm), &err);
	if (kf == NULL) {
		fprintf(stderr, "postern: %s (%s line %d)\n", err ? err :
		    sc->key, cfg->path, sc->line);
		free(err);
	}
	return kf;
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

/* keycmd_key_record - print kf's DKIM key record */
static void
keycmd_key_record(FILE *out, bool plain, const struct keyfile *kf)
{
	char *name, *txt, *comment;

	name = keyfile_txt_name(kf);
	txt = keyfile_txt(kf);
	if (kf->alg == KEYFILE_RSA_SHA256)
		comment = xasprintf("DKIM key of %s, selector %s: %s, %u "
		    "bits (%s)", kf->domain, kf->selector,
		    keyfile_alg_name(kf->alg), kf->bits, kf->path);
	else
		comment = xasprintf("DKIM key of %s, selector %s: %s (%s)",
		    kf->domain, kf->selector, keyfile_alg_name(kf->alg),
		    kf->path);
	keycmd_record(out, plain, comment, name, txt);
	free(comment);
	free(txt);
	free(name);
}

/* keycmd_write_all - write everything or fail with errno */
static int
keycmd_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, c, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
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

/* keycmd_generate - `keys generate DOMAIN [-a ALG] [-s SEL] [-b BITS]` */
static int
keycmd_generate(struct keyopts *o)
{
	const struct domain_config *d;
	struct newkey nk[2];
	struct config *cfg;
	struct stat st;
	struct tm tm;
	enum keyfile_alg alg = KEYFILE_RSA_SHA256;
	char month[16], *dir, *end, *err, **made = NULL;
	unsigned long bits = 0;
	size_t i, nnew, nmade = 0;
	time_t now;
	int rc = 1, mkrc;
	bool has_rsa;

	if (o->seen & ~(KO_C | KO_S | KO_A | KO_B))
		return keycmd_usage("generate takes -a, -s, -b and -c");
	if (o->nwords != 2)
		return keycmd_usage("generate needs one DOMAIN");
	if (o->alg != NULL && keyfile_alg_parse(o->alg, &alg) == -1)
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
	if (o->bits != NULL) {
		errno = 0;
		bits = strtoul(o->bits, &end, 10);
		if (o->bits[0] < '0' || o->bits[0] > '9' || *end != '\0' ||
		    errno != 0 || bits > 65536)
			return keycmd_usage("BITS is a number of bits, 2048 to "
			    "4096");
		if (o->alg != NULL && alg == KEYFILE_ED25519_SHA256)
			return keycmd_usage("-b is for RSA keys (Ed25519 keys "
			    "always have 256 bits)");
		if (bits < KEYFILE_RSA_MIN_BITS) {
			fprintf(stderr, "postern: %lu-bit RSA keys are "
			    "refused: receivers treat keys under %d bits as "
			    "weak or fail them (RFC 8301); use -b %d (the "
			    "default) up to %d\n", bits, KEYFILE_RSA_MIN_BITS,
			    KEYFILE_RSA_DEFAULT_BITS, KEYFILE_RSA_MAX_BITS);
			return 1;
		}
		if (bits > KEYFILE_RSA_MAX_BITS) {
			fprintf(stderr, "postern: %lu-bit RSA keys are "
			    "refused: above %d bits signing is slow and the "
			    "DNS record too long for many DNS providers\n",
			    bits, KEYFILE_RSA_MAX_BITS);
			return 1;
		}
	}

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
	for (i = 0; i < d->ndkim; i++)
		if (o->selector != NULL &&
		    strcasecmp(d->dkim[i].selector, o->selector) == 0 &&
		    keycmd_alg(d->dkim[i].algorithm) != alg) {
			fprintf(stderr, "postern: %s: selector %s is already "
			    "configured for %s at %s line %d; choose another "
			    "one\n", d->name, o->selector,
			    keyfile_alg_name(keycmd_alg(d->dkim[i].algorithm)),
			    cfg->path, d->dkim[i].line);
			goto out;
		}

	dir = xasprintf("%s/keys/%s", cfg->state_dir, d->name);
	mkrc = keycmd_mkdirs(dir, &made, &nmade);
	free(dir);
	if (mkrc == -1)
		goto out;
	keycmd_give(cfg, made, nmade);
	for (i = 0; i < nnew; i++) {
		err = NULL;
		if (keyfile_generate(nk[i].path, nk[i].alg,
		    nk[i].alg == KEYFILE_RSA_SHA256 ? (unsigned)bits : 0,
		    &err) == -1) {
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
	printf("\n; 1. Publish in the DNS zone of %s (`postern keys dns "
	    "--plain` prints it for web forms):\n", d->name);
	for (i = 0; i < nnew; i++)
		keycmd_key_record(stdout, false, nk[i].kf);
	printf("\n# 2. Once the DNS answers with the record%s, set this in "
	    "the entry of %s\n#    in domains of %s, and restart postern:\n",
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
	rc = 0;
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "postern: writing the output: %s\n",
		    strerror(errno));
		rc = 1;
	}

out:
	for (i = 0; i < 2; i++) {
		keyfile_free(nk[i].kf);
		free(nk[i].path);
	}
	for (i = 0; i < nmade; i++)
		free(made[i]);
	free(made);
	config_free(cfg);
	return rc;
}

/* ---- keys dns ---- */

/*
 * keycmd_dkim_tag - the value of tag in a DKIM tag list (RFC 6376 section
 * 3.2: "tag=value" separated by ';', whitespace around both ignored),
 * every whitespace character removed, newly allocated; NULL if absent.
 */
static char *
keycmd_dkim_tag(const char *list, const char *tag)
{
	const char *p = list, *end, *eq, *t, *te;
	char *v, *w;
	size_t tl = strlen(tag);

	while (*p != '\0') {
		if ((end = strchr(p, ';')) == NULL)
			end = p + strlen(p);
		if ((eq = memchr(p, '=', end - p)) != NULL) {
			for (t = p; t < eq && strchr(" \t\r\n", *t); t++)
				;
			for (te = eq; te > t && strchr(" \t\r\n", te[-1]);
			    te--)
				;
			if ((size_t)(te - t) == tl && memcmp(t, tag, tl) == 0) {
				v = xstrndup(eq + 1, end - eq - 1);
				for (w = v, t = v; *t != '\0'; t++)
					if (strchr(" \t\r\n", *t) == NULL)
						*w++ = *t;
				*w = '\0';
				return v;
			}
		}
		p = *end == ';' ? end + 1 : end;
	}
	return NULL;
}

/*
 * keycmd_dkim_same - whether a published DKIM record carries the same key
 * as the wanted one: equal p= and k= (default rsa) after whitespace is
 * removed, and v=, when present, DKIM1.
 */
static bool
keycmd_dkim_same(const char *published, const char *want)
{
	char *pp, *wp, *pk, *wk, *pv;
	bool same;

	pp = keycmd_dkim_tag(published, "p");
	wp = keycmd_dkim_tag(want, "p");
	pk = keycmd_dkim_tag(published, "k");
	wk = keycmd_dkim_tag(want, "k");
	pv = keycmd_dkim_tag(published, "v");
	same = pp != NULL && wp != NULL && *pp != '\0' &&
	    strcmp(pp, wp) == 0 &&
	    strcasecmp(pk ? pk : "rsa", wk ? wk : "rsa") == 0 &&
	    (pv == NULL || strcmp(pv, "DKIM1") == 0);
	free(pp);
	free(wp);
	free(pk);
	free(wk);
	free(pv);
	return same;
}

/* keycmd_has_prefix - value starts with the version tag pfx (any case),
   followed by a space or the end (SPF) or anything (DMARC's ';') */
static bool
keycmd_has_prefix(const char *value, const char *pfx, bool spf)
{
	size_t n = strlen(pfx);

	if (strncasecmp(value, pfx, n) != 0)
		return false;
	return !spf || value[n] == '\0' || value[n] == ' ';
}

/*
 * keycmd_dns_lookup - dns_txt_sync name; on anything but DNS_OK print
 * "NAME: MISSING" or "NAME: temporary DNS failure" and return -1.
 */
static int
keycmd_dns_lookup(struct dns *dns, const char *name, char ***txts,
    size_t *n)
{
	enum dns_status st;

	(void)dns_txt_sync(dns, name, txts, n, &st);
	if (st == DNS_OK)
		return 0;
	if (st == DNS_TEMPFAIL)
		printf("%s: temporary DNS failure\n", name);
	else
		printf("%s: MISSING\n", name);
	return -1;
}

/* keycmd_has_no_keys - say so (naming the fix) if d has no dkim keys */
static int
keycmd_has_no_keys(const struct config *cfg, const struct domain_config *d)
{
	if (d->ndkim > 0)
		return 0;
	fprintf(stderr, "postern: %s has no dkim keys in %s: run `postern "
	    "keys generate %s`\n", d->name, cfg->path, d->name);
	return 1;
}

/*
 * keycmd_dns_check - `keys dns --check`: look every record `keys dns`
 * prints up through cfg's resolver and say per record whether it is
 * published. Returns 0 if every DKIM record matches, else 1.
 */
static int
keycmd_dns_check(const struct config *cfg, const struct domain_config *only)
{
	const struct domain_config *d;
	struct keyfile *kf;
	struct dns *dns;
	char *err = NULL, *name, *want, **txts;
	size_t i, j, k, n, found, match;
	int rc = 0;

	if ((dns = dns_new(cfg->resolver, &err)) == NULL) {
		fprintf(stderr, "postern: %s\n", err);
		free(err);
		return 1;
	}
	for (i = 0; i < cfg->ndomains; i++) {
		d = &cfg->domains[i];
		if (only != NULL && d != only)
			continue;
		if (keycmd_has_no_keys(cfg, d))
			rc = 1;
		for (j = 0; j < d->ndkim; j++) {
			if ((kf = keycmd_load(cfg, d, &d->dkim[j])) == NULL) {
				rc = 1;
				continue;
			}
			name = keyfile_txt_name(kf);
			want = keyfile_txt(kf);
			if (keycmd_dns_lookup(dns, name, &txts, &n) == -1)
				rc = 1;
			else {
				for (k = 0; k < n; k++)
					if (keycmd_dkim_same(txts[k], want))
						break;
				if (k < n)
					printf("%s: ok\n", name);
				else {
					printf("%s: DIFFERENT (published: "
					    "%s)\n", name, txts[0]);
					rc = 1;
				}
				dns_txts_free(txts, n);
			}
			free(want);
			free(name);
			keyfile_free(kf);
		}

		/* SPF: one "v=spf1" record at the domain (RFC 7208 4.5). */
		want = xasprintf("v=spf1 a:%s -all", cfg->hostname);
		if (keycmd_dns_lookup(dns, d->name, &txts, &n) == 0) {
			for (k = found = match = 0; k < n; k++)
				if (keycmd_has_prefix(txts[k], "v=spf1",
				    true)) {
					if (found++ == 0)
						match = k;
				}
			if (found == 0)
				printf("%s: MISSING (no v=spf1 record; "
				    "suggested: %s)\n", d->name, want);
			else if (found > 1)
				printf("%s: DIFFERENT (%zu v=spf1 records: "
				    "receivers treat that as an error, merge "
				    "them; first published: %s)\n", d->name,
				    found, txts[match]);
			else if (strcasecmp(txts[match], want) == 0)
				printf("%s: ok (published: %s; matches the "
				    "suggestion)\n", d->name, txts[match]);
			else
				printf("%s: ok (published: %s; differs from "
				    "the suggestion: %s)\n", d->name,
				    txts[match], want);
			dns_txts_free(txts, n);
		}
		free(want);

		/* DMARC: a "v=DMARC1" record at _dmarc.DOMAIN. */
		name = xasprintf("_dmarc.%s", d->name);
		if (keycmd_dns_lookup(dns, name, &txts, &n) == 0) {
			for (k = 0; k < n; k++)
				if (keycmd_has_prefix(txts[k], "v=DMARC1",
				    false))
					break;
			if (k < n)
				printf("%s: ok (published: %s)\n", name,
				    txts[k]);
			else
				printf("%s: MISSING (no v=DMARC1 record)\n",
				    name);
			dns_txts_free(txts, n);
		}
		free(name);
	}
	dns_free(dns);
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "postern: writing the output: %s\n",
		    strerror(errno));
		rc = 1;
	}
	return rc;
}

/* keycmd_dns - `keys dns [DOMAIN] [--plain | --check]` */
static int
keycmd_dns(struct keyopts *o)
{
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
		if (keycmd_has_no_keys(cfg, d))
			rc = 1;
		for (j = 0; j < d->ndkim; j++) {
			if ((kf = keycmd_load(cfg, d, &d->dkim[j])) == NULL) {
				rc = 1;
				continue;
			}
			keycmd_key_record(stdout, plain, kf);
			keyfile_free(kf);
		}

		value = xasprintf("v=spf1 a:%s -all", cfg->hostname);
		comment = xasprintf("SPF: authorises the relay host %s by "
		    "name (its A/AAAA records) to send as %s; a name has one "
		    "SPF record, so merge this into any existing one",
		    cfg->hostname, d->name);
		keycmd_record(stdout, plain, comment, d->name, value);
		free(comment);
		free(value);

		name = xasprintf("_dmarc.%s", d->name);
		value = xasprintf("v=DMARC1; p=none; "
		    "rua=mailto:dmarc-reports@%s", d->name);
		keycmd_record(stdout, plain, "DMARC: set rua= to a mailbox "
		    "you read (aggregate reports arrive there); p=none only "
		    "reports: move to p=quarantine, then p=reject, once the "
		    "reports show all mail passing", name, value);
		free(value);
		free(name);
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "postern: writing the output: %s\n",
		    strerror(errno));
		rc = 1;
	}
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
 * keycmd_sign_keys - the keys to sign with: KEYFILE as SELECTOR, or the
 * domain's configured ones (only SELECTOR's if given). Returns their
 * number, or 0 after saying why.
 */
static size_t
keycmd_sign_keys(const struct keyopts *o, const struct config *cfg,
    const struct domain_config *d, struct keyfile **keys)
{
	enum keyfile_alg alg;
	char *err = NULL, *err2 = NULL;
	size_t i, n = 0;

	if (o->keyfile != NULL) {
		if (o->alg != NULL) {
			(void)keyfile_alg_parse(o->alg, &alg);
			keys[0] = keyfile_load(o->keyfile, d->name,
			    o->selector, alg, &err);
		} else {
			/* Its own type: a problem other than the type is
			   found the same way by both attempts. */
			keys[0] = keyfile_load(o->keyfile, d->name,
			    o->selector, KEYFILE_RSA_SHA256, &err);
			if (keys[0] == NULL)
				keys[0] = keyfile_load(o->keyfile, d->name,
				    o->selector, KEYFILE_ED25519_SHA256,
				    &err2);
		}
		if (keys[0] == NULL)
			fprintf(stderr, "postern: %s\n", err);
		free(err);
		free(err2);
		return keys[0] != NULL;
	}
	for (i = 0; i < d->ndkim; i++) {
		if (o->selector != NULL &&
		    strcmp(d->dkim[i].selector, o->selector) != 0)
			continue;
		if ((keys[n] = keycmd_load(cfg, d, &d->dkim[i])) == NULL) {
			while (n > 0)
				keyfile_free(keys[--n]);
			return 0;
		}
		n++;
	}
	if (n == 0 && o->selector != NULL)
		fprintf(stderr, "postern: %s: selector %s is not configured "
		    "in %s (sign with a key file: -k KEYFILE -s %s)\n",
		    d->name, o->selector, cfg->path, o->selector);
	else if (n == 0)
		fprintf(stderr, "postern: %s has no dkim keys in %s: run "
		    "`postern keys generate %s`\n", d->name, cfg->path,
		    d->name);
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
		if (keycmd_write_all(tmp, conv, n) == -1) {
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
	const struct domain_config *d;
	struct dkim_headers hl, given;
	struct keyfile *keys[DKIM_SIGNER_MAXKEYS];
	struct dkim_signer *s = NULL;
	struct config *cfg;
	struct buf sigs;
	enum keyfile_alg alg;
	long long t = 0;
	char *end, *err = NULL, *copy = NULL, *chunk = NULL;
	size_t n = 0, i;
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
	if ((d = keycmd_domain(cfg, o->words[1])) == NULL)
		goto out;
	if (o->keyfile == NULL && o->selector != NULL &&
	    !keyfile_valid_selector(o->selector)) {
		fprintf(stderr, "postern: \"%s\" is not a valid selector\n",
		    o->selector);
		goto out;
	}
	if ((n = keycmd_sign_keys(o, cfg, d, keys)) == 0)
		goto out;

	if (o->headers != NULL) {
		if (keycmd_header_list(o->headers, &given, &copy) == -1)
			goto out;
		hl = given;
	} else {
		hl = dkim_default_headers;
		if (d->sign_headers != NULL) {
			hl.sign = (const char *const *)d->sign_headers;
			hl.nsign = d->nsign_headers;
		}
		if (d->oversign_headers != NULL) {
			hl.oversign = (const char *const *)d->oversign_headers;
			hl.noversign = d->noversign_headers;
		}
	}
	if ((s = dkim_signer_new((const struct keyfile *const *)keys, n, &hl,
	    (time_t)t, &err)) == NULL) {
		fprintf(stderr, "postern: %s: %s\n", d->name, err);
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

	if (keycmd_write_all(STDOUT_FILENO, sigs.data, sigs.len) == -1 ||
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
		if (keycmd_write_all(STDOUT_FILENO, chunk, (size_t)r) == -1)
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
		for (j = 0; j < d->ndkim; j++) {
			if ((kf = keycmd_load(cfg, d, &d->dkim[j])) == NULL)
				continue;
			name = keyfile_txt_name(kf);
			txt = keyfile_txt(kf);
			if (buf_printf(&b, "%s\t%s\n", name, txt) == 0)
				n++;
			free(txt);
			free(name);
			keyfile_free(kf);
		}
	}
	if (keycmd_write_all(fd, b.data, b.len) == -1 || close(fd) == -1) {
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
	return keycmd_usage(NULL);
}
