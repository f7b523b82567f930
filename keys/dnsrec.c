/*
 * dnsrec - the records a domain should publish, and the rules that say
 * whether the published ones match; see dnsrec.h.
 */
#include <arpa/inet.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "keys/dnsrec.h"
#include "keys/keyfile.h"

#define DNSREC_TERM_MAX	256	/* bytes of one SPF term we compare */

/* dnsrec_spf - the suggested SPF record */
char *
dnsrec_spf(const struct config *cfg)
{
	const struct relay_config *rc = &cfg->relay;
	struct buf b;
	char *v;
	size_t i;

	buf_init(&b, 4096);
	(void)buf_puts(&b, "v=spf1");
	for (i = 0; i < rc->naddresses; i++)
		(void)buf_printf(&b, " %s:%s", strchr(rc->addresses[i], ':') ?
		    "ip6" : "ip4", rc->addresses[i]);
	if (rc->naddresses == 0)
		(void)buf_printf(&b, " a:%s", cfg->hostname);
	if (rc->mode == RELAY_SMARTHOST && rc->smarthost.spf != NULL)
		(void)buf_printf(&b, " %s", rc->smarthost.spf);
	(void)buf_puts(&b, " -all");
	v = xstrdup(b.data);
	buf_free(&b);
	return v;
}

/* dnsrec_dmarc_name - where the DMARC record lives */
char *
dnsrec_dmarc_name(const char *domain)
{
	return xasprintf("_dmarc.%s", domain);
}

/* dnsrec_dmarc - the suggested DMARC record */
char *
dnsrec_dmarc(const char *domain)
{
	return xasprintf("v=DMARC1; p=none; rua=mailto:dmarc-reports@%s",
	    domain);
}

/* dnsrec_set - fill r; returns the verdict */
static enum dnsrec_verdict
dnsrec_set(struct dnsrec_result *r, enum dnsrec_verdict v,
    const char *published, const char *fmt, ...)
{
	va_list ap;

	r->verdict = v;
	r->published = published;
	r->why[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		(void)vsnprintf(r->why, sizeof(r->why), fmt, ap);
		va_end(ap);
	}
	return v;
}

/* dnsrec_not_ok - the verdict of an answer that is not DNS_OK, or
   DNSREC_OK when st is DNS_OK (judge the records then) */
static enum dnsrec_verdict
dnsrec_not_ok(enum dns_status st, struct dnsrec_result *r)
{
	if (st == DNS_OK)
		return DNSREC_OK;
	if (st == DNS_TEMPFAIL)
		return dnsrec_set(r, DNSREC_TEMPFAIL, NULL, "temporary DNS "
		    "failure");
	return dnsrec_set(r, DNSREC_MISSING, NULL, "not published (%s)",
	    dns_status_name(st));
}

/* dnsrec_dkim_judge - every record is exactly the key */
enum dnsrec_verdict
dnsrec_dkim_judge(enum dns_status st, char *const *txts, size_t n,
    const char *want, struct dnsrec_result *r)
{
	size_t i;

	if (dnsrec_not_ok(st, r) != DNSREC_OK)
		return r->verdict;
	for (i = 0; i < n; i++)
		if (keyfile_txt_same(txts[i], want))
			continue;
		else if (n > 1)
			return dnsrec_set(r, DNSREC_DIFFERENT, txts[i], "%zu "
			    "records published, not only this key", n);
		else
			return dnsrec_set(r, DNSREC_DIFFERENT, txts[i], "a "
			    "different key published");
	return dnsrec_set(r, DNSREC_OK, n > 0 ? txts[0] : NULL, NULL);
}

/* dnsrec_tagged - value starts with the version tag (any case), then a
   blank, the end or (DMARC) ';' */
static bool
dnsrec_tagged(const char *value, const char *tag, bool semicolon)
{
	size_t n = strlen(tag);
	char c;

	if (strncasecmp(value, tag, n) != 0)
		return false;
	c = value[n];
	return c == '\0' || c == ' ' || c == '\t' || (semicolon && c == ';');
}

/* dnsrec_tagged_count - how many records of txts have the tag; *first
   gets the index of the first one (unchanged when none) */
static size_t
dnsrec_tagged_count(char *const *txts, size_t n, const char *tag,
    bool semicolon, size_t *first)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++)
		if (dnsrec_tagged(txts[i], tag, semicolon) && count++ == 0)
			*first = i;
	return count;
}

/*
 * dnsrec_ip_covers - whether the ip4:/ip6: range in term (after its
 * prefix, "ADDR" or "ADDR/LEN") holds address ours ("ADDR" or
 * "ADDR/LEN"), both of family af
 */
static bool
dnsrec_ip_covers(const char *term, const char *ours, int af)
{
	unsigned char a[16], b[16];
	unsigned long tlen, olen, max = af == AF_INET ? 32 : 128;
	char tbuf[DNSREC_TERM_MAX], obuf[DNSREC_TERM_MAX], *slash, *end;
	size_t i;

	snprintf(tbuf, sizeof(tbuf), "%s", term);
	snprintf(obuf, sizeof(obuf), "%s", ours);
	tlen = olen = max;
	if ((slash = strchr(tbuf, '/')) != NULL) {
		*slash = '\0';
		tlen = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || end == slash + 1 || tlen > max)
			return false;
	}
	if ((slash = strchr(obuf, '/')) != NULL) {
		*slash = '\0';
		olen = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || end == slash + 1 || olen > max)
			return false;
	}
	if (tlen > olen || inet_pton(af, tbuf, a) != 1 ||
	    inet_pton(af, obuf, b) != 1)
		return false;
	for (i = 0; i < tlen / 8; i++)
		if (a[i] != b[i])
			return false;
	if (tlen % 8 != 0 && ((a[i] ^ b[i]) & (0xff << (8 - tlen % 8))) != 0)
		return false;
	return true;
}

/* dnsrec_covers - whether published term t (qualifier stripped) covers
   our mechanism m */
static bool
dnsrec_covers(const char *t, const char *m)
{
	if (strcasecmp(t, "all") == 0 || strcasecmp(t, m) == 0)
		return true;
	if (strncasecmp(m, "ip4:", 4) == 0 && strncasecmp(t, "ip4:", 4) == 0)
		return dnsrec_ip_covers(t + 4, m + 4, AF_INET);
	if (strncasecmp(m, "ip6:", 4) == 0 && strncasecmp(t, "ip6:", 4) == 0)
		return dnsrec_ip_covers(t + 4, m + 4, AF_INET6);
	return false;
}

/* dnsrec_next_term - copy the next blank-separated term of *p into
   term[DNSREC_TERM_MAX] (cut if longer), advance *p; false at the end */
static bool
dnsrec_next_term(const char **p, char *term)
{
	const char *s = *p;
	size_t n;

	s += strspn(s, " \t");
	if (*s == '\0')
		return false;
	n = strcspn(s, " \t");
	snprintf(term, DNSREC_TERM_MAX, "%.*s", (int)n, s);
	*p = s + n;
	return true;
}

/* dnsrec_authorizes - whether SPF record rec passes mechanism m: the
   first term covering m decides by its qualifier */
static bool
dnsrec_authorizes(const char *rec, const char *m)
{
	char term[DNSREC_TERM_MAX];
	const char *p = rec, *t;

	(void)dnsrec_next_term(&p, term);	/* v=spf1 */
	while (dnsrec_next_term(&p, term)) {
		t = term;
		if (strchr("+-~?", *t) != NULL)
			t++;
		if (dnsrec_covers(t, m))
			return term[0] != '-' && term[0] != '~' &&
			    term[0] != '?';
	}
	return false;
}

/* dnsrec_spf_judge - one v=spf1 record authorizing our mechanisms */
enum dnsrec_verdict
dnsrec_spf_judge(enum dns_status st, char *const *txts, size_t n,
    const char *want, struct dnsrec_result *r)
{
	char m[DNSREC_TERM_MAX];
	const char *rec, *p = want;
	size_t count, at = 0;

	if (dnsrec_not_ok(st, r) != DNSREC_OK)
		return r->verdict;
	if ((count = dnsrec_tagged_count(txts, n, "v=spf1", false, &at)) != 1)
		return count == 0 ?
		    dnsrec_set(r, DNSREC_MISSING, NULL, "no v=spf1 record") :
		    dnsrec_set(r, DNSREC_DIFFERENT, txts[at], "%zu v=spf1 "
		    "records (receivers treat that as an error: merge them "
		    "into one)", count);
	rec = txts[at];
	(void)dnsrec_next_term(&p, m);		/* v=spf1 */
	while (dnsrec_next_term(&p, m)) {
		if (strcasecmp(m + (strchr("+-~?", m[0]) ? 1 : 0), "all") ==
		    0)
			continue;
		if (!dnsrec_authorizes(rec, m))
			return dnsrec_set(r, DNSREC_DIFFERENT, rec, "does not "
			    "authorize %s", m);
	}
	return dnsrec_set(r, DNSREC_OK, rec, NULL);
}

/* dnsrec_dmarc_policy - whether DMARC record rec has a valid p= tag */
static bool
dnsrec_dmarc_policy(const char *rec)
{
	static const char *const policies[] = { "none", "quarantine",
	    "reject" };
	const char *p = rec, *eq, *end;
	size_t i, klen, vlen;

	while (*p != '\0') {
		end = p + strcspn(p, ";");
		p += strspn(p, " \t");
		if ((eq = memchr(p, '=', (size_t)(end - p))) != NULL) {
			for (klen = (size_t)(eq - p); klen > 0 &&
			    (p[klen - 1] == ' ' || p[klen - 1] == '\t'); klen--)
				;
			if (klen == 1 && (*p == 'p' || *p == 'P')) {
				eq++;
				eq += strspn(eq, " \t");
				for (vlen = (size_t)(end - eq); vlen > 0 &&
				    (eq[vlen - 1] == ' ' ||
				    eq[vlen - 1] == '\t'); vlen--)
					;
				for (i = 0; i < 3; i++)
					if (strlen(policies[i]) == vlen &&
					    strncasecmp(eq, policies[i], vlen)
					    == 0)
						return true;
				return false;
			}
		}
		p = *end == ';' ? end + 1 : end;
	}
	return false;
}

/* dnsrec_dmarc_judge - one v=DMARC1 record with a valid policy */
enum dnsrec_verdict
dnsrec_dmarc_judge(enum dns_status st, char *const *txts, size_t n,
    struct dnsrec_result *r)
{
	size_t count, at = 0;

	if (dnsrec_not_ok(st, r) != DNSREC_OK)
		return r->verdict;
	if ((count = dnsrec_tagged_count(txts, n, "v=DMARC1", true, &at)) !=
	    1)
		return count == 0 ?
		    dnsrec_set(r, DNSREC_MISSING, NULL, "no v=DMARC1 record") :
		    dnsrec_set(r, DNSREC_DIFFERENT, txts[at], "%zu v=DMARC1 "
		    "records (receivers then apply no policy at all)", count);
	if (!dnsrec_dmarc_policy(txts[at]))
		return dnsrec_set(r, DNSREC_DIFFERENT, txts[at], "no valid "
		    "p= policy (none, quarantine or reject)");
	return dnsrec_set(r, DNSREC_OK, txts[at], NULL);
}

/* dnsrec_verdict_name - a verdict's word */
const char *
dnsrec_verdict_name(enum dnsrec_verdict v)
{
	switch (v) {
	case DNSREC_OK:
		return "ok";
	case DNSREC_MISSING:
		return "missing";
	case DNSREC_DIFFERENT:
		return "different";
	case DNSREC_TEMPFAIL:
		return "tempfail";
	}
	return "?";
}
