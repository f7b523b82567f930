/*
 * dkim - DKIM signing and verification over libopendkim; see dkim.h.
 *
 * libopendkim facts this file relies on (2.11.0~beta2, read in its source):
 *  - dkim_header() asserts len != 0 and dkim_body() asserts buf != NULL:
 *    neither is ever called that way from here.
 *  - With no DKIM_OPTS_SIGNHDRS and no dkim_signhdrs(), a signing handle
 *    signs every field it was given, so feeding only the fields to sign
 *    is the header selection. Repeated fields are hashed bottom-up.
 *  - Oversigned names (DKIM_OPTS_OVERSIGNHDRS, per DKIM_LIB) are appended
 *    to h= once each, after the present fields, whether present or not.
 *  - The fixed time (DKIM_OPTS_FIXEDTIME, per DKIM_LIB; 0 = now) is read
 *    at dkim_eoh().
 *  - Without DKIM_LIBFLAGS_FIXCRLF, dkim_eom() fails on a body not ending
 *    in CRLF, so the signer adds the CRLF itself (RFC 6376 3.4.4).
 *  - dkim_eom() hashes the DKIM-Signature that dkim_getsighdr_d() produces
 *    with initial = strlen("DKIM-Signature: ") and the handle's margin, so
 *    the field emitted here is made the same way.
 *  - The relaxed header canonicalization stops at a NUL byte; signed
 *    fields with one are refused rather than hashed differently from
 *    what verifiers see.
 *  - dkim_header() parses every DKIM-Signature field it is given, even
 *    when signing, and fails on a malformed one: such fields are never
 *    in a sign list, so it never sees them.
 *  - dkim_free() of an Ed25519 signing handle leaks its key object and
 *    signature buffer (see dkim_ed25519_unleak()).
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <opendkim/dkim.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "keys/dkim.h"
#include "keys/keycache.h"
#include "keys/keyfile.h"

#define DKIM_ID		((const unsigned char *)"postern")
#define DKIM_SIGHDR	"DKIM-Signature: "
#define DKIM_READ_CHUNK	65536

static const char *const dkim_default_sign[] = {
	"From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc",
	"In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive",
	"Message-ID", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "Content-ID", "Content-Description",
};

static const char *const dkim_default_oversign[] = {
	"From", "Subject", "To", "Cc", "Reply-To", "Date", "Message-ID",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
};

const struct dkim_headers dkim_default_headers = {
	dkim_default_sign,
	sizeof(dkim_default_sign) / sizeof(dkim_default_sign[0]),
	dkim_default_oversign,
	sizeof(dkim_default_oversign) / sizeof(dkim_default_oversign[0]),
};

/* One DKIM_LIB and the configuration it was made for. */
struct dkim_libent {
	DKIM_LIB		*lib;
	char			**sign;		/* sign + oversign, unique */
	size_t			 nsign;
	char			**over;		/* oversign, unique, NULL-
						   terminated for libopendkim */
	size_t			 nover;
	time_t			 fixed;
	unsigned		 refs;
	struct dkim_libent	*next;
};

static pthread_mutex_t	 dkim_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct dkim_libent *dkim_libs;
static size_t		 dkim_nlibs;

enum dkim_state {
	DKIM_ST_HEADERS,
	DKIM_ST_BODY,
	DKIM_ST_DONE,
	DKIM_ST_FAILED,
};

/*
 * Every block libopendkim allocates for one signing handle (it passes the
 * handle's memory closure to our allocator), so that what dkim_free()
 * leaves behind can be found, wiped and freed.
 */
struct dkim_arena {
	struct dkim_blk {
		void		*p;
		size_t		 n;
	}			*v;
	size_t			 n;
	size_t			 cap;
};

struct dkim_signer {
	struct dkim_libent	*le;
	DKIM			*h[DKIM_SIGNER_MAXKEYS];	/* rsa first */
	enum keyfile_alg	 alg[DKIM_SIGNER_MAXKEYS];
	struct dkim_arena	 arena[DKIM_SIGNER_MAXKEYS];
	size_t			 nh;
	enum dkim_state		 state;
	unsigned		 nfrom;		/* From: fields fed */
	size_t			 names;		/* bytes of signed names */
	uint64_t		 bodylen;
	unsigned char		 last[2];	/* last two body bytes */
	char			*error;
};

/* dkim_arena_find - index of p in a, or a->n */
static size_t
dkim_arena_find(const struct dkim_arena *a, const void *p)
{
	size_t i;

	for (i = a->n; i > 0; i--)	/* recent blocks go first */
		if (a->v[i - 1].p == p)
			return i - 1;
	return a->n;
}

/* dkim_cb_malloc - libopendkim's allocator: never NULL (alloc.h) */
static void *
dkim_cb_malloc(void *closure, size_t n)
{
	struct dkim_arena *a = closure;
	void *p;

	p = xmalloc(n);
	if (a != NULL) {
		if (a->n == a->cap) {
			a->cap = a->cap ? a->cap * 2 : 64;
			a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
		}
		a->v[a->n].p = p;
		a->v[a->n].n = n;
		a->n++;
	}
	return p;
}

/* dkim_cb_free - libopendkim's free: wipe the block (key copies) first */
static void
dkim_cb_free(void *closure, void *p)
{
	struct dkim_arena *a = closure;
	size_t i;

	if (p == NULL)
		return;
	if (a != NULL && (i = dkim_arena_find(a, p)) < a->n)
		a->v[i] = a->v[--a->n];
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

/* dkim_arena_release - wipe and free what libopendkim did not free */
static void
dkim_arena_release(struct dkim_arena *a)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		OPENSSL_cleanse(a->v[i].p, a->v[i].n);
		free(a->v[i].p);
	}
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/*
 * XXX libopendkim 2.11.0 leaks the private key of every Ed25519 signature:
 * dkim_free() releases the key object and the signature buffer of its
 * struct dkim_crypto only for RSA (dkim.c, "sig_keytype ==
 * DKIM_KEYTYPE_RSA"), so each Ed25519-signed message would leave an
 * EVP_PKEY holding the private key (~400 bytes) and 64 bytes behind. The
 * buffer is caught by the arena; the EVP_PKEY is found here, in the
 * arena, by the layout of that version's struct dkim_crypto (dkim-types.h,
 * OpenSSL build), and only if every field checked matches what
 * dkim_privkey_load() and dkim_eom() leave for an Ed25519 key. Another
 * libopendkim version is left alone (and leaks).
 */
struct odkim_crypto {
	unsigned char	 crypto_pad;
	int		 crypto_keysize;
	size_t		 crypto_inlen;
	size_t		 crypto_outlen;
	EVP_PKEY	*crypto_pkey;
	void		*crypto_key;
	BIO		*crypto_keydata;
	unsigned char	*crypto_in;
	unsigned char	*crypto_out;
};

/* dkim_ed25519_unleak - free the Ed25519 key libopendkim would leak */
static void
dkim_ed25519_unleak(struct dkim_arena *a)
{
	struct odkim_crypto *c;
	size_t i, j;

	if (dkim_libversion() != 0x020B0000)
		return;
	for (i = 0; i < a->n; i++) {
		if (a->v[i].n != sizeof(struct odkim_crypto))
			continue;
		c = a->v[i].p;
		if (c->crypto_keysize != 512 || c->crypto_outlen != 64 ||
		    c->crypto_key != NULL || c->crypto_pkey == NULL ||
		    (j = dkim_arena_find(a, c->crypto_out)) == a->n ||
		    a->v[j].n != 64)
			continue;
		EVP_PKEY_free(c->crypto_pkey);	/* clears the key */
		c->crypto_pkey = NULL;
		return;
	}
}

/* dkim_nodns_start - resolver hook for signing libraries: always fails */
static int
dkim_nodns_start(void *srv, int type, unsigned char *query,
    unsigned char *buf, size_t buflen, void **qh)
{
	(void)srv;
	(void)type;
	(void)query;
	(void)buf;
	(void)buflen;
	(void)qh;
	return DKIM_DNS_ERROR;
}

/* dkim_name_ok - a usable header field name for a list */
static int
dkim_name_ok(const char *name)
{
	size_t i, len;

	len = strlen(name);
	if (len == 0 || len > DKIM_HEADER_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (name[i] < 33 || name[i] > 126 || name[i] == ':' ||
		    name[i] == ';')
			return 0;
	return strcasecmp(name, "DKIM-Signature") != 0;
}

/* dkim_list_check - check one list; -1 with *err */
static int
dkim_list_check(const char *const *v, size_t n, const char *what,
    char **err)
{
	char esc[80];
	size_t i;

	if (n > DKIM_HEADERS_MAX) {
		*err = xasprintf("too many header names to %s (%zu, at most "
		    "%d)", what, n, DKIM_HEADERS_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (v[i] == NULL || !dkim_name_ok(v[i])) {
			*err = xasprintf("cannot %s header \"%s\": a name is "
			    "1 to %d printable characters without ':' or "
			    "';', and not DKIM-Signature", what,
			    v[i] == NULL ? "(null)" :
			    log_escape(v[i], (size_t)-1, esc, sizeof(esc)),
			    DKIM_HEADER_NAME_MAX);
			return -1;
		}
	}
	return 0;
}

/* dkim_in_list - true if name (namelen bytes) is in v[0..n), any case */
static bool
dkim_in_list(char *const *v, size_t n, const char *name, size_t namelen)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(v[i]) == namelen &&
		    strncasecmp(v[i], name, namelen) == 0)
			return true;
	return false;
}

/* dkim_headers_check - see dkim.h */
int
dkim_headers_check(const struct dkim_headers *hl, char **err)
{
	size_t i;
	bool from;

	*err = NULL;
	if (dkim_list_check(hl->sign, hl->nsign, "sign", err) == -1 ||
	    dkim_list_check(hl->oversign, hl->noversign, "oversign",
	    err) == -1)
		return -1;
	from = false;
	for (i = 0; i < hl->nsign; i++)
		if (strcasecmp(hl->sign[i], "From") == 0)
			from = true;
	for (i = 0; i < hl->noversign; i++)
		if (strcasecmp(hl->oversign[i], "From") == 0)
			from = true;
	if (!from) {
		*err = xstrdup("the header list must sign From: DKIM and "
		    "DMARC are about the From: field");
		return -1;
	}
	return 0;
}

/* dkim_norm - unique names of a[0..na) then b[0..nb); *np set */
static char **
dkim_norm(const char *const *a, size_t na, const char *const *b, size_t nb,
    size_t *np)
{
	char **v;
	size_t i, n;

	v = xcalloc(na + nb + 1, sizeof(*v));
	n = 0;
	for (i = 0; i < na + nb; i++) {
		const char *s = i < na ? a[i] : b[i - na];

		if (!dkim_in_list(v, n, s, strlen(s)))
			v[n++] = (char *)s;
	}
	*np = n;
	return v;
}

/* dkim_same - true if v[0..n) and w[0..m) hold the same names, in order */
static bool
dkim_same(char *const *v, size_t n, char *const *w, size_t m)
{
	size_t i;

	if (n != m)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(v[i], w[i]) != 0)
			return false;
	return true;
}

/* dkim_strv_free - free a vector of owned strings */
static void
dkim_strv_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* dkim_libent_free - close the library, free the entry */
static void
dkim_libent_free(struct dkim_libent *le)
{
	if (le->lib != NULL)
		dkim_close(le->lib);
	dkim_strv_free(le->sign, le->nsign);
	dkim_strv_free(le->over, le->nover);
	free(le);
}

/* dkim_libent_new - a DKIM_LIB for this configuration; NULL with *err */
static struct dkim_libent *
dkim_libent_new(char *const *sign, size_t nsign, char *const *over,
    size_t nover, time_t fixed, char **err)
{
	struct dkim_libent *le;
	unsigned int flags;
	uint64_t t;
	size_t i;

	le = xcalloc(1, sizeof(*le));
	le->sign = xcalloc(nsign + 1, sizeof(char *));
	for (i = 0; i < nsign; i++)
		le->sign[i] = xstrdup(sign[i]);
	le->nsign = nsign;
	le->over = xcalloc(nover + 1, sizeof(char *));
	for (i = 0; i < nover; i++)
		le->over[i] = xstrdup(over[i]);
	le->nover = nover;
	le->fixed = fixed;

	if ((le->lib = dkim_init(dkim_cb_malloc, dkim_cb_free)) == NULL) {
		*err = xstrdup("libopendkim: dkim_init failed");
		dkim_libent_free(le);
		return NULL;
	}
	dkim_dns_set_init(le->lib, NULL);
	dkim_dns_set_close(le->lib, NULL);
	dkim_dns_set_query_start(le->lib, dkim_nodns_start);

	flags = DKIM_LIBFLAGS_NONE;	/* in particular no SIGNLEN: no l= */
	t = (uint64_t)fixed;
	if (dkim_options(le->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags)) != DKIM_STAT_OK ||
	    (fixed != 0 && dkim_options(le->lib, DKIM_OP_SETOPT,
	    DKIM_OPTS_FIXEDTIME, &t, sizeof(t)) != DKIM_STAT_OK) ||
	    (nover > 0 && dkim_options(le->lib, DKIM_OP_SETOPT,
	    DKIM_OPTS_OVERSIGNHDRS, le->over, sizeof(le->over)) !=
	    DKIM_STAT_OK)) {
		*err = xstrdup("libopendkim: dkim_options failed");
		dkim_libent_free(le);
		return NULL;
	}
	return le;
}

/* dkim_lib_get - the cached library for this configuration, referenced */
static struct dkim_libent *
dkim_lib_get(const struct dkim_headers *hl, time_t fixed, char **err)
{
	struct dkim_libent *le;
	char **sign, **over;
	size_t nsign, nover;

	sign = dkim_norm(hl->sign, hl->nsign, hl->oversign, hl->noversign,
	    &nsign);
	over = dkim_norm(hl->oversign, hl->noversign, NULL, 0, &nover);

	pthread_mutex_lock(&dkim_mtx);
	for (le = dkim_libs; le != NULL; le = le->next)
		if (le->fixed == fixed &&
		    dkim_same(le->sign, le->nsign, sign, nsign) &&
		    dkim_same(le->over, le->nover, over, nover))
			break;
	if (le == NULL &&
	    (le = dkim_libent_new(sign, nsign, over, nover, fixed, err)) !=
	    NULL) {
		le->next = dkim_libs;
		dkim_libs = le;
		dkim_nlibs++;
	}
	if (le != NULL)
		le->refs++;
	pthread_mutex_unlock(&dkim_mtx);

	free(sign);
	free(over);
	return le;
}

/* dkim_prune_idle - close idle libraries while more than keep are
   cached; dkim_mtx must be held */
static void
dkim_prune_idle(size_t keep)
{
	struct dkim_libent **pp, *cur;

	for (pp = &dkim_libs; dkim_nlibs > keep && *pp != NULL; ) {
		cur = *pp;
		if (cur->refs == 0) {
			*pp = cur->next;
			dkim_nlibs--;
			dkim_libent_free(cur);
		} else
			pp = &cur->next;
	}
}

/* dkim_lib_put - drop a reference; close idle libraries past the cap */
static void
dkim_lib_put(struct dkim_libent *le)
{
	pthread_mutex_lock(&dkim_mtx);
	le->refs--;
	dkim_prune_idle(DKIM_LIB_CACHE);
	pthread_mutex_unlock(&dkim_mtx);
}

/*
 * dkim_selftest_sign - sign a fixed message with k alone at a fixed time:
 * the DKIM-Signature field in out, or -1 with *err
 */
static int
dkim_selftest_sign(const struct keyfile *k, struct buf *out, char **err)
{
	static const char hdr[] = "From: keycache@example.invalid\r\n"
	    "Subject: libopendkim self-test\r\n"
	    "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n";
	static const char body[] = "The key is parsed once.\r\n";
	const struct keyfile *keys[1] = { k };
	struct dkim_signer *s;
	int rc;

	if ((s = dkim_signer_new(keys, 1, NULL, 1767225600, err)) == NULL)
		return -1;
	if (dkim_signer_headers(s, hdr, sizeof(hdr) - 1) == -1 ||
	    dkim_signer_body(s, body, sizeof(body) - 1) == -1) {
		*err = xstrdup(dkim_signer_error(s));
		dkim_signer_free(s);
		return -1;
	}
	rc = dkim_signer_finish(s, out, err);
	dkim_signer_free(s);
	return rc;
}

/*
 * dkim_keycache_check - does libopendkim take k's cached key, and sign
 * the same bytes with it as with the key it parses itself? 0, or -1
 * with *why (newly allocated)
 */
static int
dkim_keycache_check(const struct keyfile *k, char **why)
{
	struct buf ref, got;
	uint64_t before;
	int rc = -1;

	*why = NULL;
	buf_init(&ref, 8192);
	buf_init(&got, 8192);
	keycache_bypass(true);
	if (dkim_selftest_sign(k, &ref, why) == -1) {
		keycache_bypass(false);
		goto out;
	}
	keycache_bypass(false);
	before = keycache_thread_hits();
	if (dkim_selftest_sign(k, &got, why) == -1)
		goto out;
	if (keycache_thread_hits() == before)
		*why = xasprintf("libopendkim %#x did not ask "
		    "PEM_read_bio_PrivateKey for the key of selector %s of %s",
		    dkim_libversion(), k->selector, k->domain);
	else if (ref.len != got.len || memcmp(ref.data, got.data,
	    ref.len) != 0)
		*why = xasprintf("libopendkim %#x signed differently with the "
		    "cached key of selector %s of %s", dkim_libversion(),
		    k->selector, k->domain);
	else
		rc = 0;
out:
	buf_free(&ref);
	buf_free(&got);
	return rc;
}

/* dkim_key_cache - see dkim.h */
void
dkim_key_cache(const struct keyfile *k)
{
	char *why = NULL;

	if (!keycache_enabled())
		return;
	if (keycache_add(k->pem, k->pemlen) == -1) {
		log_warnx("DKIM key cache: selector %s of %s: OpenSSL cannot "
		    "parse the key; it is parsed per message", k->selector,
		    k->domain);
		return;
	}
	if (dkim_keycache_check(k, &why) == -1) {
		keycache_disable();
		log_warnx("DKIM key cache off: %s; every signature parses its "
		    "key again (correct, slower)", why);
		free(why);
	}
}

/* dkim_key_uncache - see dkim.h */
void
dkim_key_uncache(const struct keyfile *k)
{
	keycache_drop(k->pem, k->pemlen);
}

/* dkim_shutdown - close idle cached libraries */
void
dkim_shutdown(void)
{
	pthread_mutex_lock(&dkim_mtx);
	dkim_prune_idle(0);
	pthread_mutex_unlock(&dkim_mtx);
}

/* dkim_stat_text - libopendkim's reason for status on handle h */
static const char *
dkim_stat_text(DKIM *h, DKIM_STAT st)
{
	const char *e;

	if (h != NULL && (e = dkim_geterror(h)) != NULL && *e != '\0')
		return e;
	if ((e = dkim_getresultstr(st)) != NULL)
		return e;
	return "unknown error";
}

static int	dkim_fail(struct dkim_signer *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* dkim_fail - the signer has failed; keep the first reason; -1 */
static int
dkim_fail(struct dkim_signer *s, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (s->error == NULL) {
		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) == -1)
			log_panic("out of memory");
		va_end(ap);
		s->error = msg;
	}
	s->state = DKIM_ST_FAILED;
	ERR_clear_error();
	return -1;
}

/* dkim_signer_new - see dkim.h */
struct dkim_signer *
dkim_signer_new(const struct keyfile *const *keys, size_t nkeys,
    const struct dkim_headers *hl, time_t fixed_time, char **err)
{
	struct dkim_signer *s;
	const struct keyfile *k;
	DKIM_STAT st;
	size_t i, j, pass;
	DKIM *h;

	*err = NULL;
	if (hl == NULL)
		hl = &dkim_default_headers;
	if (nkeys == 0 || nkeys > DKIM_SIGNER_MAXKEYS) {
		*err = xasprintf("DKIM: %zu keys given, 1 to %d allowed",
		    nkeys, DKIM_SIGNER_MAXKEYS);
		return NULL;
	}
	for (i = 0; i < nkeys; i++) {
		if (keys[i] == NULL || keys[i]->pem == NULL ||
		    !keyfile_valid_domain(keys[i]->domain) ||
		    !keyfile_valid_selector(keys[i]->selector)) {
			*err = xstrdup("DKIM: invalid key");
			return NULL;
		}
		for (j = 0; j < i; j++)
			if (strcasecmp(keys[i]->domain, keys[j]->domain) == 0 &&
			    strcmp(keys[i]->selector, keys[j]->selector) == 0) {
				*err = xasprintf("DKIM: selector %s of %s "
				    "given twice", keys[i]->selector,
				    keys[i]->domain);
				return NULL;
			}
	}
	if (dkim_headers_check(hl, err) == -1)
		return NULL;

	s = xcalloc(1, sizeof(*s));
	if ((s->le = dkim_lib_get(hl, fixed_time, err)) == NULL) {
		free(s);
		return NULL;
	}
	/* rsa-sha256 first: receivers that check one signature see it */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < nkeys; i++) {
			k = keys[i];
			if ((k->alg == KEYFILE_RSA_SHA256) != (pass == 0))
				continue;
			if (k->alg == KEYFILE_ED25519_SHA256 &&
			    !dkim_libfeature(s->le->lib,
			    DKIM_FEATURE_ED25519)) {
				*err = xstrdup("DKIM: this libopendkim cannot "
				    "sign with ed25519-sha256");
				dkim_signer_free(s);
				return NULL;
			}
			h = dkim_sign(s->le->lib, DKIM_ID, &s->arena[s->nh],
			    (dkim_sigkey_t)k->pem,
			    (const unsigned char *)k->selector,
			    (const unsigned char *)k->domain,
			    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
			    k->alg == KEYFILE_ED25519_SHA256 ?
			    DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256,
			    (ssize_t)-1, &st);
			if (h == NULL || st != DKIM_STAT_OK) {
				*err = xasprintf("DKIM: dkim_sign for selector "
				    "%s of %s: %s", k->selector, k->domain,
				    dkim_stat_text(NULL, st));
				if (h != NULL)
					dkim_free(h);
				dkim_arena_release(&s->arena[s->nh]);
				dkim_signer_free(s);
				return NULL;
			}
			s->alg[s->nh] = k->alg;
			s->h[s->nh++] = h;
			if ((st = dkim_set_margin(h, DKIM_SIG_MARGIN)) !=
			    DKIM_STAT_OK) {
				*err = xasprintf("DKIM: dkim_set_margin: %s",
				    dkim_stat_text(h, st));
				dkim_signer_free(s);
				return NULL;
			}
		}
	}
	s->state = DKIM_ST_HEADERS;
	return s;
}

/* dkim_field_name - length of f's field name, colon offset in *colon */
static size_t
dkim_field_name(const char *f, size_t len, size_t *colon)
{
	size_t i, name;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)f[i];

		if (c == ':' || c == ' ' || c == '\t')
			break;
		if (c < 33 || c > 126)
			return 0;
	}
	name = i;
	while (i < len && (f[i] == ' ' || f[i] == '\t'))	/* obsolete */
		i++;
	if (name == 0 || i == len || f[i] != ':')
		return 0;
	*colon = i;
	return name;
}

/* dkim_field_clean - no NUL, every CR and LF part of a CRLF fold */
static bool
dkim_field_clean(const char *f, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (f[i] == '\0')
			return false;
		if (f[i] == '\n')
			return false;	/* LFs are only checked after a CR */
		if (f[i] == '\r') {
			if (i + 2 >= len || f[i + 1] != '\n' ||
			    (f[i + 2] != ' ' && f[i + 2] != '\t'))
				return false;
			i++;
		}
	}
	return true;
}

/* dkim_signer_header - see dkim.h */
int
dkim_signer_header(struct dkim_signer *s, const char *field, size_t len)
{
	char esc[80];
	size_t name, colon, i;
	DKIM_STAT st;

	if (s->state == DKIM_ST_FAILED)
		return -1;
	if (s->state != DKIM_ST_HEADERS)
		return dkim_fail(s, "DKIM: header field after the end of the "
		    "header section");
	if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n')
		len -= 2;
	if ((name = dkim_field_name(field, len, &colon)) == 0)
		return dkim_fail(s, "DKIM: malformed header field \"%s\" "
		    "(no field name and colon)",
		    log_escape(field, len, esc, sizeof(esc)));
	if (!dkim_in_list(s->le->sign, s->le->nsign, field, name))
		return 0;
	if (colon != name)
		return dkim_fail(s, "DKIM: header field %s has white space "
		    "before its colon (obsolete syntax on which verifiers "
		    "disagree: dkimpy fails it)", log_escape(field, name, esc,
		    sizeof(esc)));
	if (!dkim_field_clean(field, len))
		return dkim_fail(s, "DKIM: header field %s holds a NUL byte or "
		    "a bare CR or LF", log_escape(field, name, esc,
		    sizeof(esc)));
	s->names += name + 1;
	if (s->names > DKIM_SIGNED_NAMES_MAX)
		return dkim_fail(s, "DKIM: too many header fields to sign "
		    "(their names exceed %d bytes)", DKIM_SIGNED_NAMES_MAX);
	if (name == 4 && strncasecmp(field, "From", 4) == 0)
		s->nfrom++;
	for (i = 0; i < s->nh; i++) {
		st = dkim_header(s->h[i], (unsigned char *)field, len);
		if (st != DKIM_STAT_OK)
			return dkim_fail(s, "DKIM: header field %s: %s",
			    log_escape(field, name, esc, sizeof(esc)),
			    dkim_stat_text(s->h[i], st));
	}
	return 0;
}

/* dkim_signer_headers - split a header section into fields */
int
dkim_signer_headers(struct dkim_signer *s, const char *text, size_t len)
{
	size_t start, i;

	start = 0;
	for (i = 0; i + 1 < len; i++) {
		if (text[i] != '\r' || text[i + 1] != '\n')
			continue;
		if (i == start)			/* empty line: end of section */
			break;
		if (i + 2 < len && (text[i + 2] == ' ' || text[i + 2] == '\t'))
			continue;		/* folded */
		if (dkim_signer_header(s, text + start, i - start) == -1)
			return -1;
		start = i + 2;
		i++;
	}
	if (i + 1 >= len && start < len &&
	    dkim_signer_header(s, text + start, len - start) == -1)
		return -1;
	return dkim_signer_eoh(s);
}

/* dkim_signer_eoh - see dkim.h */
int
dkim_signer_eoh(struct dkim_signer *s)
{
	DKIM_STAT st;
	size_t i;

	if (s->state == DKIM_ST_FAILED)
		return -1;
	if (s->state != DKIM_ST_HEADERS)
		return dkim_fail(s, "DKIM: end of header section signalled "
		    "twice");
	if (s->nfrom == 0)
		return dkim_fail(s, "DKIM: the message has no From: field, "
		    "so there is nothing to sign for");
	for (i = 0; i < s->nh; i++)
		if ((st = dkim_eoh(s->h[i])) != DKIM_STAT_OK)
			return dkim_fail(s, "DKIM: end of header section: %s",
			    dkim_stat_text(s->h[i], st));
	s->state = DKIM_ST_BODY;
	return 0;
}

/* dkim_feed - body bytes to every handle */
static int
dkim_feed(struct dkim_signer *s, const unsigned char *p, size_t len)
{
	DKIM_STAT st;
	size_t i;

	for (i = 0; i < s->nh; i++)
		if ((st = dkim_body(s->h[i], (unsigned char *)p, len)) !=
		    DKIM_STAT_OK)
			return dkim_fail(s, "DKIM: body: %s",
			    dkim_stat_text(s->h[i], st));
	return 0;
}

/* dkim_signer_body - see dkim.h */
int
dkim_signer_body(struct dkim_signer *s, const void *p, size_t len)
{
	const unsigned char *b = p;

	if (s->state == DKIM_ST_HEADERS && dkim_signer_eoh(s) == -1)
		return -1;
	if (s->state == DKIM_ST_FAILED)
		return -1;
	if (s->state != DKIM_ST_BODY)
		return dkim_fail(s, "DKIM: body after the end of the message");
	if (len == 0)
		return 0;
	if (dkim_feed(s, b, len) == -1)
		return -1;
	if (len >= 2) {
		s->last[0] = b[len - 2];
		s->last[1] = b[len - 1];
	} else {
		s->last[0] = s->last[1];
		s->last[1] = b[0];
	}
	s->bodylen += len;
	return 0;
}

/* dkim_signer_finish - see dkim.h */
int
dkim_signer_finish(struct dkim_signer *s, struct buf *out, char **err)
{
	unsigned char *hdr;
	size_t i, len, saved;
	DKIM_STAT st;

	*err = NULL;
	if (s->state == DKIM_ST_HEADERS)
		(void)dkim_signer_eoh(s);
	/* RFC 6376 3.4.4; a final bare CR stays one, as dkimpy sees it */
	if (s->state == DKIM_ST_BODY && s->bodylen > 0 &&
	    (s->bodylen < 2 || s->last[0] != '\r' || s->last[1] != '\n'))
		(void)dkim_feed(s, (const unsigned char *)"\r\n", 2);
	if (s->state == DKIM_ST_DONE)
		(void)dkim_fail(s, "DKIM: message finished twice");
	for (i = 0; s->state == DKIM_ST_BODY && i < s->nh; i++)
		if ((st = dkim_eom(s->h[i], NULL)) != DKIM_STAT_OK)
			(void)dkim_fail(s, "DKIM: signing: %s",
			    dkim_stat_text(s->h[i], st));
	if (s->state == DKIM_ST_FAILED) {
		*err = xstrdup(s->error);
		return -1;
	}

	saved = out->len;
	for (i = 0; i < s->nh; i++) {
		st = dkim_getsighdr_d(s->h[i], sizeof(DKIM_SIGHDR) - 1, &hdr,
		    &len);
		if (st != DKIM_STAT_OK) {
			(void)dkim_fail(s, "DKIM: signature field: %s",
			    dkim_stat_text(s->h[i], st));
			break;
		}
		if (buf_puts(out, DKIM_SIGHDR) == -1 ||
		    buf_append(out, hdr, len) == -1 ||
		    buf_puts(out, "\r\n") == -1) {
			(void)dkim_fail(s, "DKIM: signature fields do not fit "
			    "the output buffer");
			break;
		}
	}
	if (s->state == DKIM_ST_FAILED) {
		out->len = saved;
		if (out->data != NULL)
			out->data[saved] = '\0';
		*err = xstrdup(s->error);
		return -1;
	}
	for (i = 0; i < s->nh; i++)
		metrics_inc(s->alg[i] == KEYFILE_ED25519_SHA256 ?
		    M_DKIM_ED25519_SHA256 : M_DKIM_RSA_SHA256);
	s->state = DKIM_ST_DONE;
	return 0;
}

/* dkim_signer_error - first failure text, or NULL */
const char *
dkim_signer_error(const struct dkim_signer *s)
{
	return s->error;
}

/* dkim_signer_free - free the handles and drop the library reference */
void
dkim_signer_free(struct dkim_signer *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nh; i++) {
		if (s->alg[i] == KEYFILE_ED25519_SHA256)
			dkim_ed25519_unleak(&s->arena[i]);
		dkim_free(s->h[i]);
		dkim_arena_release(&s->arena[i]);
	}
	if (s->le != NULL)
		dkim_lib_put(s->le);
	free(s->error);
	free(s);
}

/* dkim_verify_classify - RFC 8601 result and reason for one signature */
static void
dkim_verify_classify(DKIM_SIGINFO *sig, const char **result,
    const char **detail)
{
	unsigned int flags;
	int e, bh;

	flags = dkim_sig_getflags(sig);
	e = dkim_sig_geterror(sig);
	bh = dkim_sig_getbh(sig);
	if ((*detail = dkim_sig_geterrorstr(e)) == NULL)
		*detail = "unknown error";

	if (e == DKIM_SIGERROR_OK && (flags & DKIM_SIGFLAG_PASSED) != 0 &&
	    bh == DKIM_SIGBH_MATCH) {
		*result = "pass";
		*detail = "signature and body hash verified";
		return;
	}
	switch (e) {
	case DKIM_SIGERROR_BADSIG:
		*result = "fail";
		if (bh == DKIM_SIGBH_MISMATCH)
			*detail = "body hash mismatch (the body changed after "
			    "signing)";
		else
			*detail = "signature mismatch (a signed header field "
			    "changed, or the wrong key)";
		break;
	case DKIM_SIGERROR_KEYTOOSMALL:
	case DKIM_SIGERROR_EXPIRED:
	case DKIM_SIGERROR_FUTURE:
	case DKIM_SIGERROR_SUBDOMAIN:
	case DKIM_SIGERROR_MBSFAILED:
		*result = "fail";
		break;
	case DKIM_SIGERROR_KEYFAIL:
		*result = "temperror";
		*detail = "key lookup failed (DNS)";
		break;
	case DKIM_SIGERROR_UNKNOWN:
		*result = "permerror";
		*detail = "signature not processed";
		break;
	default:
		*result = "permerror";
		break;
	}
}

/* dkim_str - a signature attribute or "?" */
static const char *
dkim_str(const unsigned char *s)
{
	return s != NULL && *s != '\0' ? (const char *)s : "?";
}

/* dkim_verify_message - see dkim.h */
int
dkim_verify_message(int fd, const char *keyfile, dkim_verify_cb *cb,
    void *arg, char **err)
{
	struct dkim_verify_result r;
	DKIM_SIGINFO **sigs;
	DKIM_LIB *lib;
	DKIM *d;
	DKIM_STAT st;
	dkim_query_t qm;
	unsigned int flags;
	unsigned char *rbuf;
	ssize_t n;
	int i, nsigs, kfd;
	bool nosig;

	*err = NULL;
	if (keyfile != NULL) {
		if (strlen(keyfile) >= PATH_MAX) {
			*err = xstrdup("key file name too long");
			return -1;
		}
		if ((kfd = open(keyfile, O_RDONLY | O_CLOEXEC)) == -1) {
			*err = xasprintf("%s: %s", keyfile, strerror(errno));
			return -1;
		}
		close(kfd);
	}
	if ((lib = dkim_init(NULL, NULL)) == NULL) {
		*err = xstrdup("libopendkim: dkim_init failed");
		return -1;
	}
	flags = DKIM_LIBFLAGS_FIXCRLF | DKIM_LIBFLAGS_BADSIGHANDLES;
	qm = DKIM_QUERY_FILE;
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags)) != DKIM_STAT_OK ||
	    (keyfile != NULL && (dkim_options(lib, DKIM_OP_SETOPT,
	    DKIM_OPTS_QUERYMETHOD, &qm, sizeof(qm)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO,
	    (void *)keyfile, strlen(keyfile) + 1) != DKIM_STAT_OK))) {
		*err = xstrdup("libopendkim: dkim_options failed");
		dkim_close(lib);
		return -1;
	}
	if ((d = dkim_verify(lib, DKIM_ID, NULL, &st)) == NULL) {
		*err = xasprintf("libopendkim: dkim_verify: %s",
		    dkim_stat_text(NULL, st));
		dkim_close(lib);
		return -1;
	}

	rbuf = xmalloc(DKIM_READ_CHUNK);
	nosig = false;
	st = DKIM_STAT_OK;
	for (;;) {
		n = read(fd, rbuf, DKIM_READ_CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*err = xasprintf("reading the message: %s",
			    strerror(errno));
			break;
		}
		/* n == 0 is the end: dkim_chunk(d, NULL, 0) */
		st = dkim_chunk(d, n > 0 ? rbuf : NULL, (size_t)n);
		if (st == DKIM_STAT_NOSIG) {
			nosig = true;
			break;
		}
		if (st != DKIM_STAT_OK) {
			*err = xasprintf("DKIM: %s", dkim_stat_text(d, st));
			break;
		}
		if (n == 0)
			break;
	}
	free(rbuf);

	nsigs = 0;
	if (*err == NULL && !nosig) {
		st = dkim_eom(d, NULL);
		if (st == DKIM_STAT_NOSIG)
			nosig = true;
		else if (st == DKIM_STAT_INVALID || st == DKIM_STAT_INTERNAL ||
		    st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_SYNTAX)
			*err = xasprintf("DKIM: %s", dkim_stat_text(d, st));
	}
	if (*err == NULL && !nosig &&
	    dkim_getsiglist(d, &sigs, &nsigs) == DKIM_STAT_OK) {
		for (i = 0; i < nsigs; i++) {
			r.domain = dkim_str(dkim_sig_getdomain(sigs[i]));
			r.selector = dkim_str(dkim_sig_getselector(sigs[i]));
			r.algorithm = dkim_str(dkim_sig_gettagvalue(sigs[i],
			    false, (unsigned char *)"a"));
			dkim_verify_classify(sigs[i], &r.result, &r.detail);
			cb(&r, arg);
		}
	}
	dkim_free(d);
	dkim_close(lib);
	ERR_clear_error();
	return *err != NULL ? -1 : nosig ? 0 : nsigs;
}
