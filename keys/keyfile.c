/*
 * keyfile - DKIM private key files; see keyfile.h.
 *
 * OpenSSL 3 EVP interfaces only. Every failure path clears the thread's
 * OpenSSL error queue, so a refused key leaves nothing behind for the TLS
 * code to misread later.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/alloc.h"
#include "keys/keyfile.h"

#define ED25519_RAW_LEN	32

/* keyfile_alg_parse - algorithm name to enum */
int
keyfile_alg_parse(const char *name, enum keyfile_alg *alg)
{
	if (strcmp(name, "rsa-sha256") == 0)
		*alg = KEYFILE_RSA_SHA256;
	else if (strcmp(name, "ed25519-sha256") == 0)
		*alg = KEYFILE_ED25519_SHA256;
	else
		return -1;
	return 0;
}

/* keyfile_alg_name - enum to the a= value */
const char *
keyfile_alg_name(enum keyfile_alg alg)
{
	return alg == KEYFILE_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

/* keyfile_alg_keytype - enum to the k= value */
const char *
keyfile_alg_keytype(enum keyfile_alg alg)
{
	return alg == KEYFILE_ED25519_SHA256 ? "ed25519" : "rsa";
}

/* keyfile_valid_name - dot-separated labels; '_' allowed if underscore */
static int
keyfile_valid_name(const char *s, int underscore)
{
	size_t len, label;
	const char *p;

	len = strlen(s);
	if (len == 0 || len > 253)
		return 0;
	label = 0;
	for (p = s; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!(isascii((unsigned char)*p) &&
		    (isalnum((unsigned char)*p) || *p == '-' ||
		    (underscore && *p == '_'))))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label != 0;
}

/* keyfile_valid_domain - usable as d= */
int
keyfile_valid_domain(const char *s)
{
	return keyfile_valid_name(s, 0);
}

/* keyfile_valid_selector - usable as s= */
int
keyfile_valid_selector(const char *s)
{
	return keyfile_valid_name(s, 1);
}

/* keyfile_nopass - PEM password callback that never prompts */
static int
keyfile_nopass(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

/* keyfile_b64 - base64 of n bytes, one line, newly allocated */
static char *
keyfile_b64(const unsigned char *in, size_t n)
{
	char *out;

	out = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return out;
}

/* keyfile_pubkey - the p= value for pkey, or NULL */
static char *
keyfile_pubkey(EVP_PKEY *pkey, enum keyfile_alg alg)
{
	unsigned char raw[ED25519_RAW_LEN], *der, *p;
	size_t rawlen;
	char *out;
	int n;

	if (alg == KEYFILE_ED25519_SHA256) {
		rawlen = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 ||
		    rawlen != sizeof(raw))
			return NULL;
		return keyfile_b64(raw, rawlen);
	}
	if ((n = i2d_PUBKEY(pkey, NULL)) <= 0)
		return NULL;
	der = p = xmalloc((size_t)n);
	if (i2d_PUBKEY(pkey, &p) != n) {
		free(der);
		return NULL;
	}
	out = keyfile_b64(der, (size_t)n);
	free(der);
	return out;
}

/* keyfile_pkcs8 - pkey as PKCS#8 PEM into a wiped-on-free buffer */
static char *
keyfile_pkcs8(EVP_PKEY *pkey, size_t *lenp)
{
	BIO *mem;
	char *data, *out;
	long n;

	if ((mem = BIO_new(BIO_s_secmem())) == NULL)
		return NULL;
	out = NULL;
	if (PEM_write_bio_PrivateKey(mem, pkey, NULL, NULL, 0, NULL,
	    NULL) == 1 && (n = BIO_get_mem_data(mem, &data)) > 0) {
		out = xmalloc((size_t)n + 1);
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
		*lenp = (size_t)n;
	}
	BIO_free(mem);
	return out;
}

/* keyfile_typename - a human name for an OpenSSL key type */
static const char *
keyfile_typename(int id)
{
	switch (id) {
	case EVP_PKEY_RSA:
		return "an RSA key";
	case EVP_PKEY_RSA_PSS:
		return "an RSA-PSS key";
	case EVP_PKEY_ED25519:
		return "an Ed25519 key";
	case EVP_PKEY_ED448:
		return "an Ed448 key";
	case EVP_PKEY_EC:
		return "an elliptic-curve (ECDSA) key";
	case EVP_PKEY_DSA:
		return "a DSA key";
	default:
		return "a key of an unknown type";
	}
}

/* keyfile_read - open, check and read path; NULL with *err */
static char *
keyfile_read(const char *path, const char *what, size_t *lenp, char **err)
{
	struct stat st;
	char *data;
	size_t len, cap;
	ssize_t n = 0;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		if (errno == ENOENT)
			*err = xasprintf("%s: DKIM key file for %s does not "
			    "exist (generate one with `postern keys "
			    "generate`)", path, what);
		else
			*err = xasprintf("%s: cannot open DKIM key file for "
			    "%s: %s", path, what, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		*err = xasprintf("%s: fstat: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		*err = xasprintf("%s: DKIM key file for %s is not a regular "
		    "file", path, what);
		close(fd);
		return NULL;
	}
	if ((st.st_mode & 077) != 0) {
		*err = xasprintf("%s: DKIM key file for %s is accessible by "
		    "group or others (mode %04o); private keys must be "
		    "readable only by their owner: chmod 600 %s", path, what,
		    (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return NULL;
	}
	if (st.st_size > KEYFILE_MAX_SIZE) {
		*err = xasprintf("%s: DKIM key file for %s is too large "
		    "(%lld bytes; a PEM private key is a few KB)", path, what,
		    (long long)st.st_size);
		close(fd);
		return NULL;
	}

	cap = (size_t)st.st_size + 1;
	data = xmalloc(cap);
	len = 0;
	for (;;) {
		if (len == cap) {
			if (cap > KEYFILE_MAX_SIZE)
				break;
			data = xreallocarray(data, cap, 2);
			cap *= 2;
		}
		n = read(fd, data + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	saved = errno;
	close(fd);
	if (n == -1) {
		*err = xasprintf("%s: cannot read DKIM key file for %s: %s",
		    path, what, strerror(saved));
		freezero_(data, cap);
		return NULL;
	}
	if (len > KEYFILE_MAX_SIZE) {
		*err = xasprintf("%s: DKIM key file for %s is too large", path,
		    what);
		freezero_(data, cap);
		return NULL;
	}
	if (len == 0) {
		*err = xasprintf("%s: DKIM key file for %s is empty (generate "
		    "a key with `postern keys generate`)", path, what);
		freezero_(data, cap);
		return NULL;
	}
	*lenp = len;
	return data;
}

/* keyfile_parse - PEM text to a checked key; NULL with *err */
static EVP_PKEY *
keyfile_parse(const char *path, const char *what, const char *data,
    size_t len, enum keyfile_alg alg, char **err)
{
	EVP_PKEY *pkey;
	BIO *bio;
	int id, bits;

	if (memmem(data, len, "-----BEGIN ", 11) == NULL) {
		*err = xasprintf("%s: DKIM key file for %s is not a PEM "
		    "private key (expected \"-----BEGIN PRIVATE KEY-----\")",
		    path, what);
		return NULL;
	}
	if (memmem(data, len, "ENCRYPTED", 9) != NULL) {
		*err = xasprintf("%s: DKIM key file for %s is protected by a "
		    "passphrase, which the daemon cannot supply; store it "
		    "unencrypted (openssl pkey -in OLD -out NEW)", path, what);
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
		*err = xasprintf("%s: out of memory", path);
		return NULL;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, keyfile_nopass, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		if (memmem(data, len, "-----BEGIN PUBLIC KEY", 21) != NULL ||
		    memmem(data, len, "-----BEGIN CERTIFICATE", 22) != NULL)
			*err = xasprintf("%s: DKIM key file for %s holds a "
			    "public key or certificate, not a private key",
			    path, what);
		else
			*err = xasprintf("%s: DKIM key file for %s is not a "
			    "PEM private key that OpenSSL can read", path,
			    what);
		return NULL;
	}

	id = EVP_PKEY_get_base_id(pkey);
	if (alg == KEYFILE_RSA_SHA256 && id != EVP_PKEY_RSA) {
		*err = xasprintf("%s: DKIM key file for %s holds %s, but the "
		    "selector is configured as rsa-sha256%s", path, what,
		    keyfile_typename(id), id == EVP_PKEY_ED25519 ?
		    " (set algorithm = \"ed25519-sha256\", or point it at "
		    "an RSA key)" : "");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	if (alg == KEYFILE_ED25519_SHA256 && id != EVP_PKEY_ED25519) {
		*err = xasprintf("%s: DKIM key file for %s holds %s, but the "
		    "selector is configured as ed25519-sha256%s", path, what,
		    keyfile_typename(id), id == EVP_PKEY_RSA ?
		    " (set algorithm = \"rsa-sha256\", or point it at an "
		    "Ed25519 key)" : "");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	if (alg == KEYFILE_RSA_SHA256) {
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < KEYFILE_RSA_MIN_BITS) {
			*err = xasprintf("%s: DKIM key file for %s: %d-bit RSA "
			    "keys are refused: receivers treat them as weak; "
			    "generate %d (postern keys generate)", path, what,
			    bits, KEYFILE_RSA_DEFAULT_BITS);
			EVP_PKEY_free(pkey);
			return NULL;
		}
		if (bits > KEYFILE_RSA_MAX_BITS) {
			*err = xasprintf("%s: DKIM key file for %s: %d-bit RSA "
			    "keys are refused: above %d bits signing is slow "
			    "and the DNS record is too long for many DNS "
			    "providers; generate %d", path, what, bits,
			    KEYFILE_RSA_MAX_BITS, KEYFILE_RSA_DEFAULT_BITS);
			EVP_PKEY_free(pkey);
			return NULL;
		}
	}
	return pkey;
}

/* keyfile_load - read, check and keep one selector's key */
struct keyfile *
keyfile_load(const char *path, const char *domain, const char *selector,
    enum keyfile_alg alg, char **err)
{
	struct keyfile *kf;
	EVP_PKEY *pkey;
	char *data, *what, *p;
	size_t len;

	*err = NULL;
	if (!keyfile_valid_domain(domain)) {
		*err = xasprintf("%s: invalid DKIM signing domain \"%.80s\"",
		    path, domain);
		return NULL;
	}
	if (!keyfile_valid_selector(selector)) {
		*err = xasprintf("%s: invalid DKIM selector \"%.80s\"", path,
		    selector);
		return NULL;
	}
	what = xasprintf("selector \"%s\" of %s (%s)", selector, domain,
	    keyfile_alg_name(alg));

	ERR_clear_error();
	if ((data = keyfile_read(path, what, &len, err)) == NULL) {
		free(what);
		return NULL;
	}
	pkey = keyfile_parse(path, what, data, len, alg, err);
	OPENSSL_cleanse(data, len);
	free(data);
	if (pkey == NULL) {
		ERR_clear_error();
		free(what);
		return NULL;
	}

	kf = xcalloc(1, sizeof(*kf));
	kf->alg = alg;
	kf->bits = alg == KEYFILE_ED25519_SHA256 ? 256 :
	    (unsigned)EVP_PKEY_get_bits(pkey);
	kf->pem = keyfile_pkcs8(pkey, &kf->pemlen);
	kf->pubkey = keyfile_pubkey(pkey, alg);
	EVP_PKEY_free(pkey);
	if (kf->pem == NULL || kf->pubkey == NULL) {
		*err = xasprintf("%s: DKIM key file for %s: OpenSSL could not "
		    "encode the key", path, what);
		ERR_clear_error();
		keyfile_free(kf);
		free(what);
		return NULL;
	}
	free(what);
	kf->path = xstrdup(path);
	kf->domain = xstrdup(domain);
	for (p = kf->domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	kf->selector = xstrdup(selector);
	return kf;
}

/* keyfile_free - wipe and free */
void
keyfile_free(struct keyfile *kf)
{
	if (kf == NULL)
		return;
	if (kf->pem != NULL) {
		OPENSSL_cleanse(kf->pem, kf->pemlen);
		free(kf->pem);
	}
	free(kf->pubkey);
	free(kf->path);
	free(kf->domain);
	free(kf->selector);
	free(kf);
}

/* keyfile_txt - "v=DKIM1; k=...; p=..." */
char *
keyfile_txt(const struct keyfile *kf)
{
	return xasprintf("v=DKIM1; k=%s; p=%s", keyfile_alg_keytype(kf->alg),
	    kf->pubkey);
}

/* keyfile_txt_name - "selector._domainkey.domain" */
char *
keyfile_txt_name(const struct keyfile *kf)
{
	return xasprintf("%s._domainkey.%s", kf->selector, kf->domain);
}

/*
 * keyfile_dkim_tag - the value of tag in a DKIM tag list (RFC 6376 section
 * 3.2: "tag=value" separated by ';', whitespace around both ignored),
 * every whitespace character removed, newly allocated; NULL if absent.
 */
static char *
keyfile_dkim_tag(const char *list, const char *tag)
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
 * keyfile_txt_same - whether a published DKIM record carries the same key
 * as the wanted one: equal p= and k= (default rsa) after whitespace is
 * removed, and v=, when present, DKIM1.
 */
bool
keyfile_txt_same(const char *published, const char *want)
{
	char *pp, *wp, *pk, *wk, *pv;
	bool same;

	pp = keyfile_dkim_tag(published, "p");
	wp = keyfile_dkim_tag(want, "p");
	pk = keyfile_dkim_tag(published, "k");
	wk = keyfile_dkim_tag(want, "k");
	pv = keyfile_dkim_tag(published, "v");
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

/* keyfile_dir_open - open the directory that holds path; fd or -1 */
int
keyfile_dir_open(const char *path)
{
	char *dir, *slash;
	int fd;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL) {
		free(dir);
		dir = xstrdup(".");
	} else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	return fd;
}

/* keyfile_fsync_dir - fsync the directory that holds path */
static int
keyfile_fsync_dir(const char *path)
{
	int fd, rc;

	if ((fd = keyfile_dir_open(path)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* keyfile_generate - a new 0600 PKCS#8 key file, never overwriting */
int
keyfile_generate(const char *path, enum keyfile_alg alg, unsigned bits,
    char **err)
{
	EVP_PKEY *pkey;
	char *pem;
	size_t pemlen, off;
	ssize_t n;
	int fd, saved;

	*err = NULL;
	if (alg == KEYFILE_RSA_SHA256) {
		if (bits == 0)
			bits = KEYFILE_RSA_DEFAULT_BITS;
		if (bits < KEYFILE_RSA_MIN_BITS ||
		    bits > KEYFILE_RSA_MAX_BITS) {
			*err = xasprintf("%s: RSA keys must have %d to %d bits "
			    "(%u asked); 2048 is the usual choice", path,
			    KEYFILE_RSA_MIN_BITS, KEYFILE_RSA_MAX_BITS, bits);
			errno = EINVAL;
			return -1;
		}
	} else if (bits != 0 && bits != 256) {
		*err = xasprintf("%s: Ed25519 keys have 256 bits (%u asked)",
		    path, bits);
		errno = EINVAL;
		return -1;
	}

	/* Create the file first: no key is generated for a path in use. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		saved = errno;
		if (saved == EEXIST)
			*err = xasprintf("%s: already exists; refusing to "
			    "overwrite a key (rotate with a new selector "
			    "instead)", path);
		else
			*err = xasprintf("%s: cannot create key file: %s",
			    path, strerror(saved));
		errno = saved;
		return -1;
	}

	ERR_clear_error();
	if (alg == KEYFILE_RSA_SHA256)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	else
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	pem = NULL;
	if (pkey != NULL) {
		pem = keyfile_pkcs8(pkey, &pemlen);
		EVP_PKEY_free(pkey);
	}
	if (pem == NULL) {
		ERR_clear_error();
		*err = xasprintf("%s: OpenSSL could not generate the %s key",
		    path, keyfile_alg_name(alg));
		saved = EIO;
		goto fail;
	}

	for (off = 0; off < pemlen; off += (size_t)n) {
		n = write(fd, pem + off, pemlen - off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			saved = n == -1 ? errno : EIO;
			*err = xasprintf("%s: write: %s", path,
			    strerror(saved));
			goto fail;
		}
	}
	OPENSSL_cleanse(pem, pemlen);
	free(pem);
	pem = NULL;
	if (fchmod(fd, 0600) == -1 || fsync(fd) == -1) {
		saved = errno;
		*err = xasprintf("%s: %s", path, strerror(saved));
		goto fail;
	}
	if (close(fd) == -1) {
		saved = errno;
		fd = -1;
		*err = xasprintf("%s: close: %s", path, strerror(saved));
		goto fail;
	}
	/* Best effort: the key is complete whatever the directory says. */
	(void)keyfile_fsync_dir(path);
	return 0;

fail:
	if (pem != NULL) {
		OPENSSL_cleanse(pem, pemlen);
		free(pem);
	}
	if (fd != -1)
		close(fd);
	unlink(path);
	errno = saved;
	return -1;
}
