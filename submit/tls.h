/*
 * tls - the server side OpenSSL context for the listeners
 *
 * One SSL_CTX per configuration generation: the configured policy
 * (common/tlspolicy: TLS 1.2 or newer, ECDHE and AEAD suites by default),
 * the certificate chain and key, SSL_MODE_RELEASE_BUFFERS so an idle
 * session does not keep OpenSSL's read/write buffers. The context is
 * read-only once built; each session gets its own SSL from
 * tls_session_new().
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "common/tlspolicy.h"

/*
 * tls_server_ctx - a context with policy p, certificate chain and key
 * loaded from their files; NULL with *err (newly allocated text naming
 * the file and OpenSSL's reason) on failure.
 */
SSL_CTX	*tls_server_ctx(const struct tls_policy *p, const char *certificate,
	    const char *key, char **err);

/*
 * tls_server_ctx_from - a context with policy p and the certificate
 * chain and key of loaded, for a reload that can no longer read the files
 * (the key readable by root only) but must still apply a new policy.
 * loaded is not changed. NULL with *err on failure.
 */
SSL_CTX	*tls_server_ctx_from(const struct tls_policy *p, SSL_CTX *loaded,
	    char **err);

/* tls_session_new - a fresh SSL for one accepted connection; NULL on
   failure (logged) */
SSL	*tls_session_new(SSL_CTX *);

/* tls_describe - "TLSv1.3:TLS_AES_256_GCM_SHA384" into out */
char	*tls_describe(SSL *, char *out, size_t outsz);

#endif
