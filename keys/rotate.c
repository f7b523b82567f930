/*
 * rotate - switch to pending DKIM selectors once DNS serves them; see
 * rotate.h.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/alloc.h"
#include "common/log.h"
#include "keys/dnsrec.h"
#include "keys/keyfile.h"
#include "keys/keyring.h"
#include "keys/rotate.h"
#include "common/dns.h"

/* One lookup in flight: owned by the checker, freed after its answer or
   when cancelled, so the DNS callback's pointer is always valid. */
struct rotate_check {
	struct rotate		*r;
	size_t			 domain;
	char			*selector;
	char			*name;		/* SELECTOR._domainkey.DOMAIN */
	char			*want;		/* our record */
	int			 id;		/* dns_txt's */
	struct rotate_check	*next;
};

struct rotate {
	struct keyring		*kr;
	struct dns		*dns;
	struct event		*timer;
	struct timeval		 interval;
	struct rotate_check	*checks;
};

/* rotate_check_free - unlink c from its checker and free it */
static void
rotate_check_free(struct rotate_check *c)
{
	struct rotate_check **pp;

	for (pp = &c->r->checks; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	free(c->selector);
	free(c->name);
	free(c->want);
	free(c);
}

/* rotate_in_flight - whether selector of domain is being looked up */
static int
rotate_in_flight(const struct rotate *r, size_t domain, const char *sel)
{
	const struct rotate_check *c;

	for (c = r->checks; c != NULL; c = c->next)
		if (c->domain == domain && strcmp(c->selector, sel) == 0)
			return 1;
	return 0;
}

/* rotate_answer - the TXT records of a pending selector's name */
static void
rotate_answer(void *arg, enum dns_status st, char **txts, size_t n,
    const struct dns_sec *sec)
{
	struct rotate_check *c = arg;
	const char *domain = keyring_domain(c->r->kr, c->domain);
	struct dnsrec_result r;
	char *err = NULL;

	c->id = 0;
	(void)sec;	/* bogus is DNS_TEMPFAIL: checked again later */
	switch (dnsrec_dkim_judge(st, txts, n, c->want, &r)) {
	case DNSREC_TEMPFAIL:
		log_warnx("dkim: %s: pending selector %s: %s: DNS "
		    "temporary failure; trying again later", domain,
		    c->selector, c->name);
		rotate_check_free(c);
		return;
	case DNSREC_MISSING:
		log_info("dkim: %s: pending selector %s: %s is not "
		    "published yet (%s); not signing with it",
		    domain, c->selector, c->name, dns_status_name(st));
		rotate_check_free(c);
		return;
	case DNSREC_DIFFERENT:
		log_warnx("dkim: %s: pending selector %s: %s publishes %s; "
		    "not signing with it until it serves exactly the record "
		    "`postern keys dns` prints", domain, c->selector, c->name,
		    n > 1 ? "more than one record" : "a different key");
		rotate_check_free(c);
		return;
	case DNSREC_OK:
		break;
	}
	if (keyring_promote(c->r->kr, c->domain, c->selector, &err) == -1) {
		log_warnx("dkim: %s: pending selector %s is published, but "
		    "switching failed: %s", domain, c->selector, err);
		free(err);
	} else
		log_info("dkim: %s: selector %s is published with its exact "
		    "key: signing with it from now on", domain, c->selector);
	rotate_check_free(c);
}

/* rotate_domain - refresh domain i and look up its pending selectors */
static void
rotate_domain(struct rotate *r, size_t i)
{
	const struct keyfile *kf;
	struct rotate_check *c;
	size_t j, n;

	n = keyring_refresh(r->kr, i);
	for (j = 0; j < n; j++) {
		if ((kf = keyring_pending(r->kr, i, j)) == NULL ||
		    rotate_in_flight(r, i, kf->selector))
			continue;
		c = xcalloc(1, sizeof(*c));
		c->r = r;
		c->domain = i;
		c->selector = xstrdup(kf->selector);
		c->name = keyfile_txt_name(kf);
		c->want = keyfile_txt(kf);
		c->next = r->checks;
		r->checks = c;
		if ((c->id = dns_txt(r->dns, c->name, rotate_answer, c)) ==
		    -1) {
			log_warnx("dkim: %s: pending selector %s: cannot "
			    "start a DNS lookup; trying again later",
			    keyring_domain(r->kr, i), c->selector);
			rotate_check_free(c);
		}
	}
}

/* rotate_tick - the timer: check every domain */
static void
rotate_tick(evutil_socket_t fd, short what, void *arg)
{
	struct rotate *r = arg;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < keyring_ndomains(r->kr); i++)
		rotate_domain(r, i);
	(void)evtimer_add(r->timer, &r->interval);
}

/* rotate_start - check now, then every interval seconds */
struct rotate *
rotate_start(struct event_base *base, struct keyring *kr, struct dns *dns,
    unsigned interval)
{
	struct rotate *r = xcalloc(1, sizeof(*r));
	struct timeval now = { 0, 0 };

	r->kr = kr;
	r->dns = dns;
	r->interval.tv_sec = interval > 0 ? interval : 1;
	if ((r->timer = evtimer_new(base, rotate_tick, r)) == NULL ||
	    evtimer_add(r->timer, &now) == -1) {
		if (r->timer != NULL)
			event_free(r->timer);
		free(r);
		return NULL;
	}
	return r;
}

/* rotate_free - cancel lookups in flight and stop */
void
rotate_free(struct rotate *r)
{
	if (r == NULL)
		return;
	while (r->checks != NULL) {
		if (r->checks->id > 0)
			dns_cancel(r->dns, r->checks->id);
		rotate_check_free(r->checks);
	}
	event_free(r->timer);
	free(r);
}
