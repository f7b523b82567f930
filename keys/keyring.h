/*
 * keyring - every DKIM selector of every hosted domain, with its rotation
 * state, and the keys the daemon signs with
 *
 * A domain's selectors are the union of two lists (keyring_selectors):
 * its rotation state file (keys/keystate.h), which `postern keys rotate`
 * and the daemon write, and the `dkim` entries of the configuration. A
 * configured selector the state file does not list is active (that is
 * every selector before the first rotation); one it lists has the state
 * the file says, and the configuration's key path. keyring_check() then
 * insists on what signing needs: exactly one active rsa-sha256 selector
 * and at most one active ed25519-sha256 beside it.
 *
 * keyring_load() loads, for the daemon, the key of every active and
 * pending selector (keys/keyfile.c refuses a missing, unreadable, loose,
 * weak or mistyped key, naming the file) and checks each domain's header
 * lists; every problem is appended to errs and NULL is returned, so the
 * daemon refuses to start. Retiring selectors never sign; their keys
 * are loaded only when the files are still there, for the DNS drift
 * watch (keyring_published), and a missing one is no error: the admin
 * may already have deleted it.
 *
 * Rotation at run time (keys/rotate.c, on the loop thread only):
 * keyring_refresh() re-reads a domain's state file, loading the keys of
 * selectors that became pending since, and keyring_promote() makes a
 * pending selector active and the active one of its algorithm retiring,
 * on disk first (under keystate_lock), then in memory. Loaded keys are
 * kept until keyring_free(), so a pointer from keyring_keys() stays valid
 * while a message is signed.
 */
#ifndef POSTERN_KEYRING_H
#define POSTERN_KEYRING_H

#include <stddef.h>

#include "config/config.h"
#include "keys/dkim.h"
#include "keys/keyfile.h"
#include "keys/keystate.h"

struct keyring;

/*
 * keyring_selectors - d's selectors (see the top) into *out, emptied
 * first. Returns 0, or -1 with *err (newly allocated) when the state file
 * cannot be read or contradicts the configuration (a selector with two
 * algorithms).
 */
int		 keyring_selectors(const struct config *,
		    const struct domain_config *d, struct keysels *out,
		    char **err);

/*
 * keyring_check - 0 if s can sign for d: one active rsa-sha256 selector,
 * at most one active ed25519-sha256; else -1 with *err ("FILE:LINE: ..."
 * naming the domain and the fix).
 */
int		 keyring_check(const struct config *,
		    const struct domain_config *d, const struct keysels *s,
		    char **err);

struct keyring	*keyring_load(const struct config *, struct config_errors *);
void		 keyring_free(struct keyring *);

/* keyring_keys - domain d's active keys, RSA first; *n gets their number */
const struct keyfile *const *keyring_keys(const struct keyring *,
		    const struct domain_config *d, size_t *n);

/* keyring_headers - domain d's sign and oversign lists */
const struct dkim_headers *keyring_headers(const struct keyring *,
		    const struct domain_config *d);

/* For the rotation checker. Domains are numbered 0..keyring_ndomains-1. */
size_t		 keyring_ndomains(const struct keyring *);
const char	*keyring_domain(const struct keyring *, size_t i);

/*
 * keyring_refresh - re-read domain i's selectors. New pending selectors
 * get their keys loaded (a key that does not load is logged and tried
 * again on the next refresh); states changed by the CLI are taken over
 * when the result still passes keyring_check (else it is logged and the
 * old state kept). Returns the number of pending selectors whose keys
 * are loaded, which keyring_pending() then returns one by one.
 */
size_t		 keyring_refresh(struct keyring *, size_t i);

/* keyring_pending - the j-th loaded pending key of domain i, or NULL */
const struct keyfile *keyring_pending(const struct keyring *, size_t i,
		    size_t j);

/*
 * keyring_published - the j-th key of domain i whose record DNS should
 * serve now (for the drift watch): the active keys, then the retiring
 * ones whose files still load (mail signed with them may be in transit);
 * pending keys are rotate.c's business. NULL past the end; *state (when
 * not NULL) gets KEY_ACTIVE or KEY_RETIRING. The pointer stays valid
 * until keyring_free(); the list changes at keyring_refresh() and
 * keyring_promote().
 */
const struct keyfile *keyring_published(const struct keyring *, size_t i,
		    size_t j, enum keystate *state);

/* keyring_config - the configuration the keyring was loaded with (what
   `postern keys dns` reads too: hostname, relay addresses) */
const struct config *keyring_config(const struct keyring *);

/*
 * keyring_promote - make selector (pending, of domain i) active and the
 * active selector of its algorithm retiring, in the state file, then in
 * memory. Returns 0, or -1 with *err (nothing changed). The file is
 * locked without waiting: a busy lock is an error to retry later, never
 * a wait on the event loop.
 */
int		 keyring_promote(struct keyring *, size_t i,
		    const char *selector, char **err);

#endif
