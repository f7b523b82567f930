/*
 * policy - who may send as which address; see policy.h.
 *
 * Matching rule, shared by logins, grants and trusted listeners: the
 * domains must be equal ignoring ASCII case ("*@example.org" does not
 * cover "lists.example.org"); the local parts must be equal ignoring case,
 * or the address's local part without its "+tag" must equal the pattern's.
 * A quoted local part ("\"a b\"@dom") has no +tag form and is only ever
 * equal to the same quoted text: no attempt is made to unquote it, which
 * can refuse an address that is semantically the login's, never accept
 * one that is not. The null sender and "<postmaster>" (no domain) match
 * nothing.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "common/address.h"
#include "submit/policy.h"

/* local_matches - pattern local part (not "*") against the address's */
static bool
local_matches(const char *plocal, size_t plen, const char *local)
{
	char bare[ADDRESS_LOCAL_MAX + 1];

	if (strlen(local) == plen && strncasecmp(plocal, local, plen) == 0)
		return true;
	address_strip_tag(local, bare);
	return strlen(bare) == plen && strncasecmp(plocal, bare, plen) == 0;
}

/* policy_pattern_matches - does "user@dom" or "*@dom" cover the address? */
bool
policy_pattern_matches(const char *pattern, const struct address *a)
{
	const char *at;
	size_t plen;

	if (pattern == NULL || a->local[0] == '\0' || a->domain[0] == '\0')
		return false;
	if ((at = strrchr(pattern, '@')) == NULL || at == pattern)
		return false;
	if (strcasecmp(at + 1, a->domain) != 0)
		return false;
	plen = (size_t)(at - pattern);
	if (plen == 1 && pattern[0] == '*')
		return true;
	return local_matches(pattern, plen, a->local);
}

/* policy_login_owns - may this authenticated login use this address? */
bool
policy_login_owns(const struct config *cf, const char *login,
    const struct address *a)
{
	struct address self;
	const char *err;
	size_t i, j;

	if (login == NULL || a->local[0] == '\0' || a->domain[0] == '\0')
		return false;

	/* A login that is an address in a hosted domain owns itself. */
	if (address_parse_addrspec(login, strlen(login), true, &self,
	    &err) == 0 && self.domain[0] != '[' &&
	    config_domain_hosted(cf, self.domain) &&
	    strcasecmp(self.domain, a->domain) == 0 &&
	    local_matches(self.local, strlen(self.local), a->local))
		return true;

	for (i = 0; i < cf->nsenders; i++) {
		if (strcasecmp(cf->senders[i].login, login) != 0)
			continue;
		for (j = 0; j < cf->senders[i].naddresses; j++)
			if (policy_pattern_matches(cf->senders[i].addresses[j],
			    a))
				return true;
	}
	return false;
}

/* policy_patterns_match - does one of n patterns cover the address? */
static bool
policy_patterns_match(char *const *patterns, size_t n,
    const struct address *a)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (policy_pattern_matches(patterns[i], a))
			return true;
	return false;
}

/* policy_local_owns - may this local user (its local_senders entry) use
   the address? */
bool
policy_local_owns(const struct local_sender *ls, const struct address *a)
{
	return ls != NULL && policy_patterns_match(ls->addresses,
	    ls->naddresses, a);
}

/* policy_listener_owns - may a client of this trusted listener use it? */
bool
policy_listener_owns(const struct listen_config *l, const struct address *a)
{
	return l->trusted && policy_patterns_match(l->senders, l->nsenders, a);
}

/* policy_owns - by the kind of principal */
bool
policy_owns(const struct config *cfg, const struct principal *p,
    const struct address *a)
{
	switch (p->kind) {
	case PRINCIPAL_LOCAL:
		return policy_local_owns(p->grant, a);
	case PRINCIPAL_LOGIN:
		return policy_login_owns(cfg, p->name, a);
	case PRINCIPAL_LISTENER:
		return policy_listener_owns(p->listener, a);
	case PRINCIPAL_NONE:
	case PRINCIPAL_RELAY:
		break;
	}
	return false;
}
