/*
 * tls - server side OpenSSL context; see tls.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/alloc.h"
#include "common/log.h"
#include "submit/tls.h"

/* tls_errstr - OpenSSL's most recent error as text (static buffer) */
static const char *
tls_errstr(void)
{
	static char buf[256];
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
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

/* tls_server_ctx - build the listeners' TLS context */
SSL_CTX *
tls_server_ctx(const char *certificate, const char *key, char **err)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		*err = xasprintf("cannot create TLS context: %s", tls_errstr());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"postern",
	    7);
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
