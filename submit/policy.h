/*
 * policy - who may send as which address (ARCHITECTURE.md, promises 1 and 2)
 *
 * Pure decisions over the loaded configuration; no I/O, no logging.
 *
 * A login owns an envelope sender or From: address when:
 *  - the login is itself an address in a hosted domain and the address is
 *    that login, or that login with a "+tag" on its local part;
 *  - a `senders` grant for that login lists the address (an exact address,
 *    which also covers its +tag forms, or "*@domain" for the whole domain).
 * Comparison ignores case in local part and domain. The null sender "<>"
 * is owned by nobody (bounces come from the relay, not from submitters).
 * On a trusted listener, the owned addresses are the listener's `senders`
 * list, and for a local user on the local socket its `local_senders`
 * entry's addresses, matched the same way.
 */
#ifndef POSTERN_POLICY_H
#define POSTERN_POLICY_H

#include <stdbool.h>

#include "common/address.h"
#include "config/config.h"
#include "config/principal.h"

/* policy_owns - may principal p use this address? A login by its
   senders grants, a local account by its local_senders entry, a trusted
   listener's client by the listener's senders list; nobody else */
bool	policy_owns(const struct config *, const struct principal *p,
	    const struct address *);

/* policy_login_owns - may this authenticated login use this address? */
bool	policy_login_owns(const struct config *, const char *login,
	    const struct address *);

/* policy_listener_owns - may an unauthenticated client of this trusted
   listener use this address? false for a listener that is not trusted */
bool	policy_listener_owns(const struct listen_config *,
	    const struct address *);

/* policy_local_owns - may the local user with this local_senders entry
   (NULL: none) use this address? */
bool	policy_local_owns(const struct local_sender *,
	    const struct address *);

/*
 * policy_pattern_matches - does one grant pattern ("user@dom" or "*@dom",
 * lower case) cover the address? Exposed for tests and config checks.
 */
bool	policy_pattern_matches(const char *pattern, const struct address *);

#endif
