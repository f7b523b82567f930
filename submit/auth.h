/*
 * auth - the SMTP AUTH wrapper around the Cyrus SASL server API
 * (RFC 4954), after Postfix's xsasl: start/step calls that return
 * continue-with-challenge, OK-with-login or failure.
 *
 * Users live in the sasldb file named in the configuration; no
 * /etc/sasl2/postern.conf is read (the SASL_CB_GETOPT callback supplies
 * sasldb_path, pwcheck_method=auxprop, auxprop_plugin=sasldb, mech_list).
 * CRAM-MD5 and DIGEST-MD5 are never offered, whatever the configuration.
 *
 * Challenges and responses cross this interface base64-encoded, exactly as
 * on the wire (decoding is libsasl2's sasl_decode64). Response lines are
 * untrusted and bounded by AUTH_LINE_MAX. Neither passwords nor SASL
 * payloads are ever logged.
 *
 * sasldb lookups are local file reads and run on the loop thread.
 * XXX a pwcheck_method that can block (saslauthd, LDAP) would need the
 * worker pool; only sasldb is supported.
 */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define AUTH_LINE_MAX	12288	/* base64 response line, RFC 4954 4 */

struct auth_session;

enum auth_result {
	AUTH_CONTINUE,	/* send "334 challenge" and call auth_step */
	AUTH_OK,	/* authenticated; *login is set */
	AUTH_FAIL,	/* 535 5.7.8 bad credentials */
	AUTH_CANCEL,	/* client sent "*": 501 5.0.0 */
	AUTH_BAD,	/* malformed base64 or protocol: 501 5.5.2 */
	AUTH_NOMECH,	/* mechanism not offered: 504 5.5.4 */
	AUTH_TEMP,	/* SASL internal error: 454 4.7.0 */
};

/*
 * auth_init - global SASL server setup for this configuration; call once
 * per process before auth_new. Returns 0, or -1 with *err (static text).
 * The config must stay alive while SASL is used.
 */
int	auth_init(const struct config *, const char **err);

/*
 * auth_new - a SASL server context for one connection. local and remote
 * are "IP;port" as SASL wants them. NULL on failure (logged).
 */
struct auth_session *auth_new(const char *local, const char *remote);
void	auth_free(struct auth_session *);

/* auth_mechanisms - space-separated mechanisms to advertise, e.g.
   "PLAIN LOGIN SCRAM-SHA-256"; static/owned by the session */
const char *auth_mechanisms(struct auth_session *);

/*
 * auth_start - begin mechanism mech (upper case) with the optional
 * initial response (base64, "=" for an empty one, NULL for none).
 * auth_step - continue with the client's base64 response line.
 * On AUTH_CONTINUE *challenge is the base64 challenge (owned by the
 * session, valid until the next call). On AUTH_OK *login is the
 * authenticated identity as the client spelled it ("alice@example.org"),
 * owned by the session.
 */
enum auth_result auth_start(struct auth_session *, const char *mech,
	    const char *initial, const char **challenge, const char **login);
enum auth_result auth_step(struct auth_session *, const char *response,
	    const char **challenge, const char **login);

/*
 * auth_decode - a base64 response line (untrusted, NUL-terminated, at
 * most AUTH_LINE_MAX characters) into new memory of *outsz bytes holding
 * *outlen decoded bytes and a NUL, which the caller wipes and frees with
 * freezero_(*out, *outsz). -1 (nothing allocated) for bad base64 or an
 * over-long line. What auth_start and auth_step use; public for the fuzz
 * target.
 */
int	auth_decode(const char *in, char **out, size_t *outsz,
	    unsigned *outlen);

/*
 * auth_attempted - after AUTH_FAIL, the login the client tried, when the
 * mechanism got as far as naming one (PLAIN, LOGIN and SCRAM do once the
 * user exists; an unknown user may give NULL); NULL otherwise. Owned by
 * the session. For lockouts per login, never for authorization.
 */
const char *auth_attempted(const struct auth_session *);

/*
 * User management for `postern users`: the login "alice@example.org" is
 * stored as user "alice" in realm "example.org" (what saslpasswd2 -u does);
 * a login without '@' uses the realm of the configured hostname.
 * auth_user_set creates or (replace) changes a password; it fails if the
 * user exists and !replace, or does not exist and replace. Return 0, or -1
 * with *err (static text).
 */
int	auth_user_set(const struct config *, const char *login,
	    const char *password, bool replace, const char **err);
int	auth_user_delete(const struct config *, const char *login,
	    const char **err);
bool	auth_user_exists(const struct config *, const char *login);

/*
 * auth_login_valid - 1 if login is one auth_user_set would store:
 * printable ASCII, no space, at most 255 bytes, at most one '@' with
 * something on both sides; else 0
 */
int	auth_login_valid(const char *login);

/* auth_user_list - call fn for each login in the sasldb; 0 or -1 */
int	auth_user_list(const struct config *, void (*fn)(const char *login,
	    void *), void *arg, const char **err);

#endif
