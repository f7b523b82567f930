/*
 * principal - who is handing Postern a message; see principal.h.
 */
#include <stdio.h>
#include <string.h>

#include "config/principal.h"

/* principal_network - a new network session: nobody yet, or on a
   trusted listener every client */
void
principal_network(struct principal *p, const struct listen_config *lc)
{
	memset(p, 0, sizeof(*p));
	p->kind = lc->trusted ? PRINCIPAL_LISTENER : PRINCIPAL_NONE;
	p->listener = lc;
}

/* principal_relay - the relay's own messages */
void
principal_relay(struct principal *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = PRINCIPAL_RELAY;
}

/* principal_login - authenticated */
void
principal_login(struct principal *p, const char *login)
{
	p->kind = PRINCIPAL_LOGIN;
	snprintf(p->name, sizeof(p->name), "%s", login);
	p->uid = 0;
	p->grant = NULL;
}

/* principal_local - a local account on the local socket */
void
principal_local(struct principal *p, const struct listen_config *lc,
    const char *user, unsigned uid, const struct local_sender *grant)
{
	memset(p, 0, sizeof(*p));
	p->kind = PRINCIPAL_LOCAL;
	snprintf(p->name, sizeof(p->name), "%s", user);
	p->uid = uid;
	p->grant = grant;
	p->listener = lc;
}

/* principal_may_send - anybody at all? */
bool
principal_may_send(const struct principal *p)
{
	return p->kind != PRINCIPAL_NONE;
}

/* principal_login_name - the login, if p is one */
const char *
principal_login_name(const struct principal *p)
{
	return p->kind == PRINCIPAL_LOGIN ? p->name : NULL;
}

/* principal_envelope_name - the submitter the envelope records */
const char *
principal_envelope_name(const struct principal *p)
{
	if (p->kind == PRINCIPAL_LOGIN || p->kind == PRINCIPAL_LOCAL)
		return p->name;
	return NULL;
}

/* principal_rate_key - whose counts apply */
void
principal_rate_key(const struct principal *p, const char *sender, char *out,
    size_t len)
{
	switch (p->kind) {
	case PRINCIPAL_LOCAL:
		snprintf(out, len, "local %s", p->name);
		break;
	case PRINCIPAL_LOGIN:
		snprintf(out, len, "%s", p->name);
		break;
	default:
		snprintf(out, len, "sender %s", sender);
		break;
	}
}
