/*
 * keyfile - DKIM private key files: load, check, describe, generate
 *
 * One file holds one selector's private key as PEM (PKCS#8 "BEGIN PRIVATE
 * KEY" as `openssl genpkey` writes, or PKCS#1 "BEGIN RSA PRIVATE KEY").
 * keyfile_load() refuses, with a message naming the file and saying how to
 * fix it: a missing or unreadable file, a file that group or others may
 * read or write (checked with fstat on the opened descriptor), anything
 * that is not an unencrypted PEM private key, a key whose type does not
 * match the configured algorithm, and RSA keys outside 2048..4096 bits.
 * Passphrase-protected keys are refused (OpenSSL is given a password
 * callback that never prompts).
 *
 * Memory: keyfile_load() returns a struct the caller owns until
 * keyfile_free(). It keeps the key as canonical PKCS#8 PEM text (pem),
 * which is what libopendkim's dkim_sign() takes; keyfile_free() wipes it
 * (OPENSSL_cleanse). Every other copy of key material made here (the file
 * buffer, OpenSSL's key object, encoder buffers) is wiped or freed with
 * OpenSSL's clearing free before the function returns. Keys never reach
 * the log: this module does not log at all, and error texts never contain
 * key bytes.
 *
 * Errors return -1 or NULL with *err set to a newly allocated message
 * (free() it); out of memory aborts (alloc.h). Nothing here is fatal.
 * The file is trusted only as far as being the admin's: its size is
 * bounded (KEYFILE_MAX_SIZE) and its contents are parsed by OpenSSL only.
 */
#ifndef POSTERN_KEYFILE_H
#define POSTERN_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

#define KEYFILE_MAX_SIZE	65536	/* bytes; 4096-bit RSA PEM: ~3.3 KB */
#define KEYFILE_RSA_MIN_BITS	2048
#define KEYFILE_RSA_MAX_BITS	4096
#define KEYFILE_RSA_DEFAULT_BITS 2048

enum keyfile_alg {
	KEYFILE_RSA_SHA256,		/* "rsa-sha256", k=rsa */
	KEYFILE_ED25519_SHA256,		/* "ed25519-sha256", k=ed25519,
					   RFC 8463 */
};

struct keyfile {
	char		*path;
	char		*domain;	/* d=, lower case */
	char		*selector;	/* s= */
	enum keyfile_alg alg;
	unsigned	 bits;		/* RSA modulus size; 256 for Ed25519 */
	char		*pem;		/* PKCS#8 PEM text, NUL-terminated;
					   wiped by keyfile_free() */
	size_t		 pemlen;
	char		*pubkey;	/* the DNS p= value, base64: RSA the
					   DER SubjectPublicKeyInfo (as
					   opendkim-genkey prints), Ed25519
					   the raw 32-byte key (RFC 8463) */
};

/*
 * keyfile_alg_parse - "rsa-sha256" or "ed25519-sha256" (exact, lower case)
 * to an algorithm. Returns 0, or -1 for anything else.
 */
int		 keyfile_alg_parse(const char *name, enum keyfile_alg *alg);

/* keyfile_alg_name - "rsa-sha256" / "ed25519-sha256" (static text) */
const char	*keyfile_alg_name(enum keyfile_alg);

/* keyfile_alg_keytype - the key record's k= value: "rsa" / "ed25519" */
const char	*keyfile_alg_keytype(enum keyfile_alg);

/*
 * keyfile_valid_domain / keyfile_valid_selector - 1 if the name can be
 * used as d= / s=: dot-separated labels of letters, digits and hyphens
 * (the selector also allows '_'), no empty label, at most 253 bytes.
 * Internationalized names must be given as A-labels ("xn--...").
 */
int		 keyfile_valid_domain(const char *);
int		 keyfile_valid_selector(const char *);

/*
 * keyfile_load - open path, check it (see the top of this file) and
 * return the key for domain/selector with algorithm alg. domain and
 * selector are only checked for syntax and copied (domain lower-cased);
 * they name the key in messages and in keyfile_txt_name().
 */
struct keyfile	*keyfile_load(const char *path, const char *domain,
		    const char *selector, enum keyfile_alg alg, char **err);

/* keyfile_free - wipe the PEM text and free everything; NULL is fine */
void		 keyfile_free(struct keyfile *);

/*
 * keyfile_txt - the DKIM key record as one string, e.g.
 * "v=DKIM1; k=ed25519; p=11qY...", newly allocated. Splitting it into
 * <=255-byte character-strings for a zone file is the caller's business.
 */
char		*keyfile_txt(const struct keyfile *);

/* keyfile_txt_name - "selector._domainkey.domain", newly allocated */
char		*keyfile_txt_name(const struct keyfile *);

/*
 * keyfile_txt_same - whether a published DKIM key record (untrusted DNS
 * text) carries the same key as want (keyfile_txt's): equal p= and k=
 * (default rsa) after whitespace is removed, and v=, when present, DKIM1.
 */
bool		 keyfile_txt_same(const char *published, const char *want);

/*
 * keyfile_generate - create a new private key file at path: RSA of bits
 * (0 means KEYFILE_RSA_DEFAULT_BITS; 2048..4096 accepted) or Ed25519 (bits
 * must be 0 or 256), written as unencrypted PKCS#8 PEM like
 * `openssl genpkey`. The file is created with O_CREAT|O_EXCL|O_NOFOLLOW
 * and mode 0600 (fchmod'ed, whatever the umask), written and fsync'ed;
 * its directory is fsync'ed too (best effort). An existing file is never
 * touched: that fails with errno EEXIST, before any key is generated.
 * Returns 0, or -1 with errno set and *err; a partly written file is
 * removed. The parent directory must already exist.
 */
int		 keyfile_generate(const char *path, enum keyfile_alg alg,
		    unsigned bits, char **err);

/*
 * keyfile_dir_open - open (O_RDONLY | O_DIRECTORY) the directory that
 * holds path, for fsync or flock; a descriptor, or -1 with errno.
 */
int		 keyfile_dir_open(const char *path);

#endif
