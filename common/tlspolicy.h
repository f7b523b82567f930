/*
 * tlspolicy - the listeners' TLS policy: protocol versions, ciphers, key
 * exchange groups and options, applied to an OpenSSL server context
 *
 * One function sets the whole policy, so the daemon's contexts and the
 * configuration loader's check (a scratch context, to find a cipher list
 * OpenSSL refuses before the daemon starts) cannot disagree. Pure
 * OpenSSL: no configuration parsing, no files, no logging.
 */
#ifndef POSTERN_TLSPOLICY_H
#define POSTERN_TLSPOLICY_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Key exchange groups, not a setting. */
#define TLSPOLICY_DEFAULT_GROUPS	"X25519:P-256:P-384"

struct tls_policy {
	const char	*ciphers;	/* TLS 1.2: an OpenSSL cipher list */
	const char	*ciphersuites;	/* TLS 1.3: OpenSSL ciphersuites */
	int		 min_version;	/* TLS1_2_VERSION or TLS1_3_VERSION */
};

/* What tlspolicy_apply refused. */
enum tlspolicy_part {
	TLSPOLICY_OK,
	TLSPOLICY_CIPHERS,	/* ciphers: OpenSSL selects no TLS 1.2 suite */
	TLSPOLICY_CIPHERSUITES,	/* ciphersuites: no TLS 1.3 suite */
	TLSPOLICY_OTHER,	/* version or groups: OpenSSL itself failed */
};

/*
 * tlspolicy_apply - set p on the server context ctx: minimum version
 * (never below TLS 1.2), the cipher lists, the groups, and the options:
 * no compression, no renegotiation, the server's cipher order with
 * ChaCha20 first for clients that prefer it. Returns TLSPOLICY_OK, or
 * the part refused with *err (newly allocated: what and OpenSSL's
 * reason); ctx is then partly set and should be freed.
 */
enum tlspolicy_part tlspolicy_apply(SSL_CTX *ctx, const struct tls_policy *p,
		    char **err);

/* tlspolicy_errstr - OpenSSL's most recent error as text into buf (which
   it returns), and OpenSSL's error queue cleared */
const char	*tlspolicy_errstr(char *buf, size_t bufsz);

#endif
