/*
 * tlspolicy - the listeners' TLS policy on an OpenSSL context; see
 * tlspolicy.h.
 *
 * OpenSSL facts relied on (3.0, Debian 12): SSL_CTX_set_cipher_list fails
 * when the list selects no TLS 1.2 suite, but ignores names it does not
 * know as long as one other matches; SSL_CTX_set_ciphersuites ignores
 * unknown names, so the TLS 1.3 suites are counted afterwards.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/alloc.h"
#include "common/tlspolicy.h"

/* tlspolicy_errstr - OpenSSL's last error as text, the queue cleared */
const char *
tlspolicy_errstr(char *buf, size_t bufsz)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, bufsz, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, bufsz);
	ERR_clear_error();
	return buf;
}

/* tlspolicy_count13 - TLS 1.3 suites ctx would offer */
static int
tlspolicy_count13(SSL_CTX *ctx)
{
	STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
	int i, n = 0;

	for (i = 0; sk != NULL && i < sk_SSL_CIPHER_num(sk); i++)
		if (strcmp(SSL_CIPHER_get_version(sk_SSL_CIPHER_value(sk, i)),
		    "TLSv1.3") == 0)
			n++;
	return n;
}

/* tlspolicy_apply - the whole policy on ctx */
enum tlspolicy_part
tlspolicy_apply(SSL_CTX *ctx, const struct tls_policy *p, char **err)
{
	char why[256];
	int min = p->min_version == TLS1_3_VERSION ? TLS1_3_VERSION :
	    TLS1_2_VERSION;

	ERR_clear_error();
	/* The server's order, so a list an admin widens (a CBC suite for
	   one old client) still gives everyone else the strongest first;
	   PRIORITIZE_CHACHA keeps what Mozilla's "client chooses" is for:
	   a client without AES hardware that asks for ChaCha20 gets it. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_PRIORITIZE_CHACHA);
	if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLSPOLICY_DEFAULT_GROUPS) != 1) {
		*err = xasprintf("cannot set the TLS version or groups: %s",
		    tlspolicy_errstr(why, sizeof(why)));
		return TLSPOLICY_OTHER;
	}
	if (SSL_CTX_set_cipher_list(ctx, p->ciphers) != 1) {
		*err = xasprintf("OpenSSL selects no TLS 1.2 cipher from "
		    "\"%s\" (%s)", p->ciphers,
		    tlspolicy_errstr(why, sizeof(why)));
		return TLSPOLICY_CIPHERS;
	}
	if (SSL_CTX_set_ciphersuites(ctx, p->ciphersuites) != 1 ||
	    tlspolicy_count13(ctx) == 0) {
		*err = xasprintf("OpenSSL selects no TLS 1.3 ciphersuite from "
		    "\"%s\" (%s)", p->ciphersuites,
		    tlspolicy_errstr(why, sizeof(why)));
		return TLSPOLICY_CIPHERSUITES;
	}
	return TLSPOLICY_OK;
}
