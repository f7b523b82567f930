/*
 * principal - who is handing Postern a message, in the configuration's
 * terms
 *
 * Every message has one principal, decided by how the client got in:
 * an authenticated SASL login; a local account on the local socket
 * (identified by SO_PEERCRED, granted by its local_senders entry); any
 * client of a listener the admin marked trusted (granted by the
 * listener's senders list); or the relay itself (the bounces it writes).
 * The sender policy (submit/policy.h) decides what each may send as,
 * the rate limits (submit/rates.h) whose counts apply, the log and the
 * envelope (`postern queue show`) record its name. Before AUTH a
 * network client of an untrusted listener is nobody (PRINCIPAL_NONE)
 * and may not send at all.
 *
 * A principal is a small value: copy it freely. The pointers into the
 * configuration are borrowed and live as long as that configuration
 * generation. No allocation, no I/O; nothing here fails.
 */
#ifndef POSTERN_PRINCIPAL_H
#define POSTERN_PRINCIPAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define PRINCIPAL_NAME_MAX	255	/* a SASL login's longest name */

enum principal_kind {
	PRINCIPAL_NONE,		/* nobody yet (before AUTH) */
	PRINCIPAL_LOGIN,	/* an authenticated SASL login */
	PRINCIPAL_LOCAL,	/* a local account, local socket */
	PRINCIPAL_LISTENER,	/* a client of a trusted listener */
	PRINCIPAL_RELAY,	/* the relay itself (bounces) */
};

struct principal {
	enum principal_kind		 kind;
	char				 name[PRINCIPAL_NAME_MAX + 1];
					/* LOGIN: the login; LOCAL: the
					   account; else "" */
	unsigned			 uid;	/* LOCAL */
	const struct local_sender	*grant;	/* LOCAL: its entry */
	const struct listen_config	*listener; /* where it came in
						      (NULL for RELAY) */
};

/* principal_network, principal_relay - the principal of a new network
   session on lc (NONE, or LISTENER on a trusted listener), and of the
   relay's own messages */
void	principal_network(struct principal *, const struct listen_config *);
void	principal_relay(struct principal *);

/* principal_login - p authenticated as login (truncated to
   PRINCIPAL_NAME_MAX, which the SASL layer never exceeds) */
void	principal_login(struct principal *, const char *login);

/* principal_local - the local account user (uid) with its local_senders
   entry grant (NULL: it has none and may send nothing) */
void	principal_local(struct principal *, const struct listen_config *,
	    const char *user, unsigned uid, const struct local_sender *grant);

/* principal_may_send - may p start a transaction at all (not NONE)? */
bool	principal_may_send(const struct principal *);

/* principal_login_name - the login, or NULL when p is not a LOGIN */
const char *principal_login_name(const struct principal *);

/*
 * principal_envelope_name - what the envelope records as the submitter
 * (queue/envelope.h "login"): the login, the local account, NULL for a
 * trusted listener's client and the relay
 */
const char *principal_envelope_name(const struct principal *);

/*
 * principal_rate_key - whose rate limits apply, as a counter key in out
 * (len bytes, truncated): the login; "local ACCOUNT"; on a trusted
 * listener, whose clients share no identity, "sender ADDR" with the
 * envelope sender (sender, formatted).
 */
void	principal_rate_key(const struct principal *, const char *sender,
	    char *out, size_t len);

#endif
