/*
 * dnswatch - published SPF, DKIM and DMARC records compared with what
 * `postern keys dns` prints, on the rotation check's timer; see
 * dnswatch.h.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/alloc.h"
#include "common/dns.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config/config.h"
#include "keys/dnsrec.h"
#include "keys/dnswatch.h"
#include "keys/keyfile.h"
#include "keys/keyring.h"

#define DNSWATCH_VALUE_LOG	200	/* bytes of a published value logged */

enum watch_kind { W_SPF, W_DKIM, W_DMARC };
enum watch_state { W_UNKNOWN, W_OK, W_BAD };

static const char *const watch_label[] = { "spf", "dkim", "dmarc" };
static const char *const watch_title[] = { "SPF", "DKIM", "DMARC" };

/* One record watched. Owned by its watcher; a lookup in flight points at
   it and is cancelled before it is freed, so the callback's pointer is
   always valid. */
struct watch_rec {
	struct dnswatch		*w;
	enum watch_kind		 kind;
	char			*domain;
	char			*name;		/* looked up */
	char			*selector;	/* DKIM only */
	enum keystate		 kstate;	/* DKIM: active or retiring */
	char			*want;		/* DKIM, SPF: the record */
	enum watch_state	 state;
	char			*why;		/* while bad: what is wrong */
	int			 id;		/* dns_txt's, 0: none */
	bool			 seen;		/* in this tick's set */
};

struct dnswatch {
	struct keyring		*kr;
	struct dns		*dns;
	struct event		*timer;
	struct timeval		 interval;
	struct watch_rec	**recs;
	size_t			 nrecs;
	bool			 off;	/* relay.mode "directory" */
};

/* watch_rec_free - cancel r's lookup and free it (not unlinked) */
static void
watch_rec_free(struct watch_rec *r)
{
	if (r->id > 0)
		dns_cancel(r->w->dns, r->id);
	free(r->domain);
	free(r->name);
	free(r->selector);
	free(r->want);
	free(r->why);
	free(r);
}

/* watch_gauges - every series from the records' states: a domain's
   "dkim" is 0 if any selector is bad, 1 if one is ok and none bad */
static void
watch_gauges(const struct dnswatch *w)
{
	const struct watch_rec *r, *o;
	enum watch_state st;
	size_t i, j;

	metrics_dns_record_clear();
	for (i = 0; i < w->nrecs; i++) {
		r = w->recs[i];
		for (j = 0; j < i; j++)	/* once per domain and kind */
			if (w->recs[j]->kind == r->kind &&
			    strcmp(w->recs[j]->domain, r->domain) == 0)
				break;
		if (j < i)
			continue;
		st = W_UNKNOWN;
		for (j = i; j < w->nrecs && st != W_BAD; j++) {
			o = w->recs[j];
			if (o->kind == r->kind && o->state != W_UNKNOWN &&
			    strcmp(o->domain, r->domain) == 0)
				st = o->state;
		}
		if (st != W_UNKNOWN)
			metrics_dns_record_set(r->domain,
			    watch_label[r->kind], st == W_OK);
	}
}

/* watch_what - "SPF record at D", "DKIM record of active selector S at
   NAME" (newly allocated) */
static char *
watch_what(const struct watch_rec *r)
{
	if (r->kind == W_DKIM)
		return xasprintf("DKIM record of %s selector %s at %s",
		    keystate_name(r->kstate), r->selector, r->name);
	return xasprintf("%s record at %s", watch_title[r->kind], r->name);
}

/* watch_bad - log that r went bad, or is bad for another reason ("...
   drifted: WHY"), or is bad at its first check ("... is wrong: WHY") */
static void
watch_bad(const struct watch_rec *r, const struct dnsrec_result *res,
    enum watch_state before)
{
	char value[DNSWATCH_VALUE_LOG], *what = watch_what(r);
	const char *consequence = "";

	if (r->kind == W_DKIM)
		consequence = r->kstate == KEY_ACTIVE ? "; receivers fail "
		    "DKIM on the mail signed with it" : "; mail signed with "
		    "it that is still in transit fails DKIM (once none is, "
		    "`postern keys remove` it)";
	else if (r->kind == W_SPF)
		consequence = "; receivers fail SPF on the mail relayed from "
		    "here";
	if (res->published != NULL)
		(void)log_escape(res->published, (size_t)-1, value,
		    sizeof(value));
	log_warnx("dns: %s: %s %s: %s%s%s%s%s; `postern keys dns %s` prints "
	    "the record to publish%s%s", r->domain, what,
	    before == W_UNKNOWN ? "is wrong" : "drifted", res->why,
	    res->published ? " (published: \"" : "",
	    res->published ? value : "", res->published ? "\")" : "",
	    consequence, r->domain, r->kind == W_SPF ? ": " : "",
	    r->kind == W_SPF ? r->want : "");
	free(what);
}

/* watch_answer - one record's TXT answer */
static void
watch_answer(void *arg, enum dns_status st, char **txts, size_t n,
    const struct dns_sec *sec)
{
	struct watch_rec *r = arg;
	struct dnsrec_result res;
	enum watch_state before = r->state;
	char *what;

	r->id = 0;
	(void)sec;	/* bogus is DNS_TEMPFAIL: checked again later */
	if (r->kind == W_DKIM)
		(void)dnsrec_dkim_judge(st, txts, n, r->want, &res);
	else if (r->kind == W_SPF)
		(void)dnsrec_spf_judge(st, txts, n, r->want, &res);
	else
		(void)dnsrec_dmarc_judge(st, txts, n, &res);
	switch (res.verdict) {
	case DNSREC_TEMPFAIL:
		log_debug("dns: %s: %s: temporary DNS failure; not a drift, "
		    "checked again in %lds", r->domain, r->name,
		    (long)r->w->interval.tv_sec);
		return;
	case DNSREC_OK:
		r->state = W_OK;
		free(r->why);
		r->why = NULL;
		if (before == W_BAD) {
			what = watch_what(r);
			log_info("dns: %s: %s matches again", r->domain, what);
			free(what);
		}
		break;
	case DNSREC_MISSING:
	case DNSREC_DIFFERENT:
		r->state = W_BAD;
		if (before != W_BAD || r->why == NULL ||
		    strcmp(r->why, res.why) != 0)
			watch_bad(r, &res, before);
		free(r->why);
		r->why = xstrdup(res.why);
		break;
	}
	if (r->state != before)
		watch_gauges(r->w);
}

/* watch_find - the record of domain, kind (and selector) */
static struct watch_rec *
watch_find(const struct dnswatch *w, const char *domain, enum watch_kind k,
    const char *selector)
{
	struct watch_rec *r;
	size_t i;

	for (i = 0; i < w->nrecs; i++) {
		r = w->recs[i];
		if (r->kind == k && strcmp(r->domain, domain) == 0 &&
		    (selector == NULL || strcmp(r->selector, selector) == 0))
			return r;
	}
	return NULL;
}

/*
 * watch_want - mark the record (domain, kind, selector) seen this tick,
 * adding it unknown if new; want (taken over, may be NULL) replaces the
 * old one, and a changed want forgets what was known. Then look it up
 * unless a lookup is in flight.
 */
static void
watch_want(struct dnswatch *w, const char *domain, enum watch_kind k,
    const char *selector, char *name, char *want, enum keystate kstate)
{
	struct watch_rec *r;

	if ((r = watch_find(w, domain, k, selector)) == NULL) {
		r = xcalloc(1, sizeof(*r));
		r->w = w;
		r->kind = k;
		r->domain = xstrdup(domain);
		r->selector = selector ? xstrdup(selector) : NULL;
		w->recs = xreallocarray(w->recs, w->nrecs + 1,
		    sizeof(*w->recs));
		w->recs[w->nrecs++] = r;
	}
	if ((r->want == NULL) != (want == NULL) || (want != NULL &&
	    strcmp(r->want, want) != 0)) {
		r->state = W_UNKNOWN;
		free(r->why);
		r->why = NULL;
	}
	free(r->want);
	r->want = want;
	free(r->name);
	r->name = name;
	r->kstate = kstate;
	r->seen = true;
	if (r->id == 0 && (r->id = dns_txt(w->dns, r->name, watch_answer,
	    r)) == -1) {
		r->id = 0;
		log_warnx("dns: %s: %s: cannot start a DNS lookup; trying "
		    "again later", domain, r->name);
	}
}

/* watch_tick - the timer: every domain's records */
static void
watch_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dnswatch *w = arg;
	const struct keyfile *kf;
	enum keystate ks;
	const char *domain;
	char *spf;
	size_t i, j, n = 0;

	(void)fd;
	(void)what;
	for (i = 0; i < w->nrecs; i++)
		w->recs[i]->seen = false;
	spf = dnsrec_spf(keyring_config(w->kr));
	for (i = 0; i < keyring_ndomains(w->kr); i++) {
		domain = keyring_domain(w->kr, i);
		watch_want(w, domain, W_SPF, NULL, xstrdup(domain),
		    xstrdup(spf), KEY_ACTIVE);
		for (j = 0; (kf = keyring_published(w->kr, i, j, &ks)) !=
		    NULL; j++)
			watch_want(w, domain, W_DKIM, kf->selector,
			    keyfile_txt_name(kf), keyfile_txt(kf), ks);
		watch_want(w, domain, W_DMARC, NULL,
		    dnsrec_dmarc_name(domain), NULL, KEY_ACTIVE);
	}
	free(spf);
	/* Records no longer wanted (a selector removed, a domain gone with
	   a reload) go, with their lookups and series. */
	for (i = 0; i < w->nrecs; i++)
		if (w->recs[i]->seen)
			w->recs[n++] = w->recs[i];
		else
			watch_rec_free(w->recs[i]);
	w->nrecs = n;
	watch_gauges(w);
	(void)evtimer_add(w->timer, &w->interval);
}

/* dnswatch_start - check now, then every interval seconds */
struct dnswatch *
dnswatch_start(struct event_base *base, struct keyring *kr, struct dns *dns,
    unsigned interval, struct dnswatch *prev)
{
	struct dnswatch *w = xcalloc(1, sizeof(*w));
	struct timeval now = { 0, 0 };
	size_t i;

	w->kr = kr;
	w->dns = dns;
	w->interval.tv_sec = interval > 0 ? interval : 1;
	/* relay.mode "directory": no mail leaves this host, so no receiver
	   ever reads these records (the development instance) */
	w->off = keyring_config(kr)->relay.mode == RELAY_DIRECTORY;
	if (w->off && prev == NULL)
		log_info("dns: no drift watch: relay.mode is \"directory\", "
		    "no mail leaves this host");
	if ((w->timer = evtimer_new(base, watch_tick, w)) == NULL ||
	    (!w->off && evtimer_add(w->timer, &now) == -1)) {
		if (w->timer != NULL)
			event_free(w->timer);
		free(w);
		return NULL;
	}
	if (prev != NULL) {
		/* What prev knew, without its lookups: the first tick asks
		   again. */
		for (i = 0; i < prev->nrecs; i++) {
			if (prev->recs[i]->id > 0)
				dns_cancel(prev->dns, prev->recs[i]->id);
			prev->recs[i]->id = 0;
			prev->recs[i]->w = w;
		}
		w->recs = prev->recs;
		w->nrecs = prev->nrecs;
		prev->recs = NULL;
		prev->nrecs = 0;
	}
	return w;
}

/* dnswatch_free - cancel lookups in flight and stop */
void
dnswatch_free(struct dnswatch *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->nrecs; i++)
		watch_rec_free(w->recs[i]);
	free(w->recs);
	event_free(w->timer);
	free(w);
}
