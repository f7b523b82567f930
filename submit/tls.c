/*
 * tls - server side OpenSSL context; see tls.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "common/alloc.h"
#include "common/log.h"
#include "submit/tls.h"

/* tls_errstr - OpenSSL's most recent error as text (static buffer) */
static const char *
tls_errstr(void)
{
	static char buf[256];

	return tlspolicy_errstr(buf, sizeof(buf));
}

/* tls_readable - can we open path? Else *err says why */
static int
tls_readable(const char *path, const char *what, char **err)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*err = xasprintf("%s: cannot read the %s: %s", path, what,
		    strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* tls_ctx_new - an empty server context with policy p and our modes */
static SSL_CTX *
tls_ctx_new(const struct tls_policy *p, char **err)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		*err = xasprintf("cannot create TLS context: %s", tls_errstr());
		return NULL;
	}
	if (tlspolicy_apply(ctx, p, err) != TLSPOLICY_OK) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"postern",
	    7);
	return ctx;
}

/* tls_server_ctx - build the listeners' TLS context */
SSL_CTX *
tls_server_ctx(const struct tls_policy *p, const char *certificate,
    const char *key, char **err)
{
	SSL_CTX *ctx;

	if ((ctx = tls_ctx_new(p, err)) == NULL)
		return NULL;
	/* OpenSSL's own errors hide why a file cannot be opened ("system
	   lib"); a reload as the daemon's user needs that reason. */
	if (tls_readable(certificate, "certificate", err) == -1 ||
	    tls_readable(key, "key", err) == -1)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, certificate) != 1) {
		*err = xasprintf("%s: cannot load certificate chain: %s",
		    certificate, tls_errstr());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		*err = xasprintf("%s: cannot load private key: %s", key,
		    tls_errstr());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*err = xasprintf("%s: private key does not match certificate "
		    "%s", key, certificate);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* tls_server_ctx_from - policy p, certificate and key of loaded */
SSL_CTX *
tls_server_ctx_from(const struct tls_policy *p, SSL_CTX *loaded, char **err)
{
	X509 *cert = SSL_CTX_get0_certificate(loaded);
	EVP_PKEY *pkey = SSL_CTX_get0_privatekey(loaded);
	STACK_OF(X509) *chain = NULL;
	SSL_CTX *ctx;

	if (cert == NULL || pkey == NULL) {
		*err = xasprintf("the running TLS context has no certificate");
		return NULL;
	}
	if ((ctx = tls_ctx_new(p, err)) == NULL)
		return NULL;
	(void)SSL_CTX_get0_chain_certs(loaded, &chain);
	if (SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
	    (chain != NULL && SSL_CTX_set1_chain(ctx, chain) != 1)) {
		*err = xasprintf("cannot reuse the loaded certificate: %s",
		    tls_errstr());
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* tls_session_new - one SSL per connection */
SSL *
tls_session_new(SSL_CTX *ctx)
{
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		log_warnx("cannot create TLS session: %s", tls_errstr());
	return ssl;
}

/* tls_describe - protocol and cipher of an established session */
char *
tls_describe(SSL *ssl, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s:%s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
	return out;
}
