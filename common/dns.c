/*
 * dns - TXT, MX, address and TLSA lookups through libunbound, validated
 * with DNSSEC; see dns.h.
 *
 * Every asynchronous lookup is a struct dns_query in dns->pending, known
 * to callers by our own id. It owns one libunbound query (TXT, MX, TLSA)
 * or two (AAAA and A, in flight at once), each a struct dns_sub whose
 * address is libunbound's mydata: ub_cancel() guarantees that a cancelled
 * query never calls back (libunbound.c marks it cancelled under its lock
 * and drops its answer), so freeing the lookup after cancelling its
 * queries is safe.
 * dns_cancel() searches the pending list: XXX a tree (OpenSMTPD's wait
 * trees) once thousands of lookups are pending at a time.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/rand.h>
#include <unbound.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/dns.h"

#define DNS_TYPE_A	1
#define DNS_TYPE_MX	15
#define DNS_TYPE_TXT	16
#define DNS_TYPE_AAAA	28
#define DNS_TYPE_TLSA	52
#define DNS_CLASS_IN	1
#define DNS_RCODE_NXDOMAIN	3

#define DNS_LABEL_MAX	63	/* RFC 1035 section 2.3.4 */
#define DNS_WIRE_MAX	255	/* a name on the wire */
#define DNS_TEXT_MAX	253	/* the same, dotted */

enum dns_kind {
	DNS_KIND_TXT,
	DNS_KIND_MX,
	DNS_KIND_ADDRS,
	DNS_KIND_TLSA,
};

/* The slots of dns_query.sub[]: TXT, MX and TLSA use the first only. */
#define DNS_SUB_ONLY	0
#define DNS_SUB_AAAA	0	/* first, so IPv6 comes first */
#define DNS_SUB_A	1
#define DNS_NSUB	2

/* One libunbound query of a lookup; its address is libunbound's mydata. */
struct dns_sub {
	struct dns_query	*q;
	int			 ub_id;		/* libunbound's id */
	bool			 asked;		/* started, answered or not */
	bool			 running;	/* started, not answered */
	struct dns_sec		 sec;		/* its answer's security */
	/* Address lookups: this family's status and addresses. */
	enum dns_status		 st;
	struct sockaddr_storage	*addrs;
	size_t			 naddrs;
};

/* One pending asynchronous lookup; lives in dns->pending until answered. */
struct dns_query {
	struct dns		*dns;
	int			 id;		/* ours, > 0 */
	enum dns_kind		 kind;		/* which cb is set */
	union {
		dns_txt_cb	 txt;
		dns_mx_cb	 mx;
		dns_addrs_cb	 addrs;
		dns_tlsa_cb	 tlsa;
	} cb;
	void			*arg;
	char			*domain;	/* MX: the name asked */
	struct dns_sub		 sub[DNS_NSUB];
	struct event		*literal;	/* answers a literal */
	struct dns_query	*prev, *next;
};

struct dns {
	struct ub_ctx		*ctx;
	struct event		*ev;		/* on ub_fd(ctx) */
	struct event_base	*base;		/* ev's */
	struct dns_query	*pending;
	int			 next_id;	/* the next id, > 0 */
	bool			 wrapped;	/* ids went round */
};

/* An MX host and its random rank among hosts of equal preference. */
struct dns_mx_rank {
	struct dns_mx	 mx;
	uint32_t	 rnd;
};

/* dns_txt_parse - concatenate one TXT rdata's character-strings */
int
dns_txt_parse(const unsigned char *rdata, size_t len, char **out)
{
	size_t off, slen, olen = 0;
	char *v;

	*out = NULL;
	if (len == 0)
		return -1;
	/* First pass: check every length and that no NUL is inside. */
	for (off = 0; off < len; off += slen) {
		slen = rdata[off++];
		if (slen > len - off)
			return -1;
		if (memchr(rdata + off, '\0', slen) != NULL)
			return -1;
		olen += slen;
	}
	v = xmalloc(olen + 1);
	olen = 0;
	for (off = 0; off < len; off += slen) {
		slen = rdata[off++];
		memcpy(v + olen, rdata + off, slen);
		olen += slen;
	}
	v[olen] = '\0';
	*out = v;
	return 0;
}

/* dns_label_char - 1 if c may appear in a host name label we accept */
static int
dns_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* dns_lower - ASCII lowercase, whatever the locale */
static char
dns_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : (char)c;
}

/*
 * dns_mx_parse - preference and target of one MX rdata. The name is
 * checked in full first; the dotted form is never longer than the wire
 * form (each length byte becomes a dot, the root byte the NUL).
 */
int
dns_mx_parse(const unsigned char *rdata, size_t len, unsigned *pref,
    char **name)
{
	size_t off, end, llen, i, o;
	char *v;

	*name = NULL;
	*pref = 0;
	if (len < 3)
		return -1;
	/* Pass one: the labels, up to the root label, within 255 bytes. */
	for (off = 2; ; off += llen) {
		if (off >= len || off - 2 >= DNS_WIRE_MAX)
			return -1;
		llen = rdata[off++];
		if (llen == 0)
			break;
		if (llen > DNS_LABEL_MAX || llen > len - off ||
		    off - 2 + llen >= DNS_WIRE_MAX)
			return -1;
		for (i = 0; i < llen; i++)
			if (!dns_label_char(rdata[off + i]))
				return -1;
	}
	if (off != len)
		return -1;		/* bytes after the name */
	end = off;
	*pref = (unsigned)rdata[0] << 8 | rdata[1];
	if (end == 3) {
		*name = xstrdup(".");
		return 0;
	}
	/* Pass two: copy, lowercased, dots between labels. */
	v = xmalloc(end - 2);
	o = 0;
	for (off = 2; (llen = rdata[off++]) != 0; off += llen) {
		if (o > 0)
			v[o++] = '.';
		for (i = 0; i < llen; i++)
			v[o++] = dns_lower(rdata[off + i]);
	}
	v[o] = '\0';
	*name = v;
	return 0;
}

/*
 * dns_name_ok - 1 if name is a domain name dns_mx and dns_addrs take:
 * labels of 1 to 63 letters, digits, '-' or '_', at most 253 characters
 * without the one optional trailing dot.
 */
static int
dns_name_ok(const char *name)
{
	size_t len, llen = 0, i;

	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_TEXT_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (llen == 0)
				return 0;
			llen = 0;
		} else if (!dns_label_char((unsigned char)name[i]) ||
		    ++llen > DNS_LABEL_MAX)
			return 0;
	}
	return llen > 0;
}

/* dns_txts_free - free n values and the array */
void
dns_txts_free(char **txts, size_t n)
{
	size_t i;

	if (txts == NULL)
		return;
	for (i = 0; i < n; i++)
		free(txts[i]);
	free(txts);
}

/* dns_tlsa_parse - usage, selector, matching type and data of one TLSA */
int
dns_tlsa_parse(const unsigned char *rdata, size_t len, struct dns_tlsa *rec)
{
	memset(rec, 0, sizeof(*rec));
	if (len < 4)
		return -1;
	rec->usage = rdata[0];
	rec->selector = rdata[1];
	rec->mtype = rdata[2];
	rec->len = len - 3;
	rec->data = xmalloc(rec->len);
	memcpy(rec->data, rdata + 3, rec->len);
	return 0;
}

/* dns_tlsas_free - free n TLSA records and the array */
void
dns_tlsas_free(struct dns_tlsa *recs, size_t n)
{
	size_t i;

	if (recs == NULL)
		return;
	for (i = 0; i < n; i++)
		free(recs[i].data);
	free(recs);
}

/* dns_mxs_free - free n MX hosts and the array */
static void
dns_mxs_free(struct dns_mx *hosts, size_t n)
{
	size_t i;

	if (hosts == NULL)
		return;
	for (i = 0; i < n; i++)
		free(hosts[i].name);
	free(hosts);
}

/* dns_status_name - a word for logs and messages */
const char *
dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "NXDOMAIN";
	case DNS_NODATA:
		return "no data";
	case DNS_TEMPFAIL:
		return "temporary failure";
	case DNS_NULL_MX:
		return "null MX";
	}
	return "unknown";
}

/* dns_security_name - a word for logs and messages */
const char *
dns_security_name(enum dns_security level)
{
	switch (level) {
	case DNS_INSECURE:
		return "insecure";
	case DNS_SECURE:
		return "secure";
	case DNS_BOGUS:
		return "bogus";
	}
	return "unknown";
}

/*
 * dns_sec_of - the security of a libunbound answer (err from the library,
 * res possibly NULL): no answer is insecure, not bogus.
 */
static void
dns_sec_of(int err, const struct ub_result *res, struct dns_sec *sec)
{
	sec->level = DNS_INSECURE;
	sec->why[0] = '\0';
	if (err != 0 || res == NULL)
		return;
	if (res->bogus) {
		sec->level = DNS_BOGUS;
		(void)snprintf(sec->why, sizeof(sec->why), "%s",
		    res->why_bogus != NULL ? res->why_bogus :
		    "validation failed");
	} else if (res->secure)
		sec->level = DNS_SECURE;
}

/*
 * dns_answer_status - classify a libunbound answer (err from the library,
 * res possibly NULL) before its records are read: DNS_OK means res has
 * records of the type asked, still to be checked. A bogus answer, with
 * records or without, is a temporary failure (dns_sec_of tells it).
 */
static enum dns_status
dns_answer_status(int err, const struct ub_result *res)
{
	if (err != 0 || res == NULL || res->bogus)
		return DNS_TEMPFAIL;
	if (res->rcode == DNS_RCODE_NXDOMAIN || res->nxdomain)
		return DNS_NXDOMAIN;
	if (res->rcode != 0)
		return DNS_TEMPFAIL;
	if (!res->havedata || res->data == NULL || res->data[0] == NULL)
		return DNS_NODATA;
	return DNS_OK;
}

/* dns_count - the number of records in an answer with data */
static size_t
dns_count(const struct ub_result *res)
{
	size_t cnt;

	for (cnt = 0; res->data[cnt] != NULL; cnt++)
		;
	return cnt;
}

/* A record parser into one slot of an array (dns_collect). */
typedef int (*dns_parse_fn)(const unsigned char *rdata, size_t len,
    void *slot);

/*
 * dns_collect - classify a libunbound answer (err from the library, res
 * possibly NULL) and parse its records with parse into a new array of
 * slots of size bytes, malformed ones dropped: DNS_OK with *out and *n
 * >= 1, or another status (all malformed: DNS_TEMPFAIL) with *out NULL
 * and *n 0. Frees nothing of res.
 */
static enum dns_status
dns_collect(int err, struct ub_result *res, size_t size, dns_parse_fn parse,
    void **out, size_t *n)
{
	enum dns_status st;
	unsigned char *v;
	size_t cnt, i;

	*out = NULL;
	*n = 0;
	if ((st = dns_answer_status(err, res)) != DNS_OK)
		return st;
	cnt = dns_count(res);
	v = xcalloc(cnt, size);
	for (i = 0; i < cnt; i++) {
		if (res->len[i] < 0 || parse((const unsigned char *)
		    res->data[i], (size_t)res->len[i], v + *n * size) == -1)
			continue;	/* malformed: dropped */
		(*n)++;
	}
	if (*n == 0) {
		free(v);
		return DNS_TEMPFAIL;
	}
	*out = v;
	return DNS_OK;
}

/* dns_txt_slot - dns_txt_parse into a char * slot */
static int
dns_txt_slot(const unsigned char *rdata, size_t len, void *slot)
{
	return dns_txt_parse(rdata, len, slot);
}

/* dns_tlsa_slot - dns_tlsa_parse into a struct dns_tlsa slot */
static int
dns_tlsa_slot(const unsigned char *rdata, size_t len, void *slot)
{
	return dns_tlsa_parse(rdata, len, slot);
}

/* dns_txt_result - an answer's TXT values (see dns_collect) */
static enum dns_status
dns_txt_result(int err, struct ub_result *res, char ***txts, size_t *n)
{
	void *v;
	enum dns_status st;

	st = dns_collect(err, res, sizeof(**txts), dns_txt_slot, &v, n);
	*txts = v;
	return st;
}

/* dns_tlsa_result - an answer's TLSA records (see dns_collect) */
static enum dns_status
dns_tlsa_result(int err, struct ub_result *res, struct dns_tlsa **recs,
    size_t *n)
{
	void *v;
	enum dns_status st;

	st = dns_collect(err, res, sizeof(**recs), dns_tlsa_slot, &v, n);
	*recs = v;
	return st;
}

/* dns_mx_cmp - qsort: preference ascending, then the random rank */
static int
dns_mx_cmp(const void *a, const void *b)
{
	const struct dns_mx_rank *x = a, *y = b;

	if (x->mx.pref != y->mx.pref)
		return x->mx.pref < y->mx.pref ? -1 : 1;
	if (x->rnd != y->rnd)
		return x->rnd < y->rnd ? -1 : 1;
	return 0;
}

/*
 * dns_mx_rank_random - a random rank for each of n hosts, so that hosts
 * of equal preference sort in random order; should RAND_bytes fail, the
 * received order, with a warning.
 */
static void
dns_mx_rank_random(struct dns_mx_rank *r, size_t n)
{
	unsigned char b[4];
	size_t i;

	for (i = 0; i < n; i++) {
		if (RAND_bytes(b, sizeof(b)) != 1)
			break;
		r[i].rnd = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
		    (uint32_t)b[2] << 8 | b[3];
	}
	if (i == n)
		return;
	log_warnx("dns: no random bytes: MX hosts of equal preference keep "
	    "the received order");
	for (i = 0; i < n; i++)
		r[i].rnd = (uint32_t)i;
}

/*
 * dns_mx_order - sort n ranked hosts by preference, equal ones in random
 * order, and move them into a new array without repeated names (the first,
 * best one stays). Frees the dropped names; returns the array, sets *n.
 */
static struct dns_mx *
dns_mx_order(struct dns_mx_rank *r, size_t *n)
{
	struct dns_mx *v;
	size_t i, j, kept = 0;

	dns_mx_rank_random(r, *n);
	qsort(r, *n, sizeof(*r), dns_mx_cmp);
	v = xcalloc(*n, sizeof(*v));
	for (i = 0; i < *n; i++) {
		for (j = 0; j < kept; j++)
			if (strcmp(v[j].name, r[i].mx.name) == 0)
				break;
		if (j < kept)
			free(r[i].mx.name);
		else
			v[kept++] = r[i].mx;
	}
	*n = kept;
	return v;
}

/*
 * dns_mx_implicit - no MX record: the domain itself is the one host
 * (RFC 5321 section 5.1), lowercase and without a trailing dot.
 */
static enum dns_status
dns_mx_implicit(const char *domain, struct dns_mx **hosts, size_t *n)
{
	struct dns_mx *v;
	size_t len, i;

	len = strlen(domain);
	if (len > 0 && domain[len - 1] == '.')
		len--;
	v = xcalloc(1, sizeof(*v));
	v->name = xstrndup(domain, len);
	for (i = 0; i < len; i++)
		v->name[i] = dns_lower((unsigned char)v->name[i]);
	v->pref = 0;
	v->implicit = true;
	*hosts = v;
	*n = 1;
	return DNS_OK;
}

/*
 * dns_mx_result - classify an MX answer for domain (see dns_mx in dns.h)
 * and collect its hosts in the order to try them. Frees nothing of res.
 */
static enum dns_status
dns_mx_result(const char *domain, int err, struct ub_result *res,
    struct dns_mx **hosts, size_t *n)
{
	struct dns_mx_rank *r;
	enum dns_status st;
	size_t cnt, i, nulls = 0, bad = 0;
	unsigned pref;
	char *name;

	*hosts = NULL;
	*n = 0;
	st = dns_answer_status(err, res);
	if (st == DNS_NODATA)
		return dns_mx_implicit(domain, hosts, n);
	if (st != DNS_OK)
		return st;
	cnt = dns_count(res);
	r = xcalloc(cnt, sizeof(*r));
	for (i = 0; i < cnt; i++) {
		if (res->len[i] < 0 || dns_mx_parse((const unsigned char *)
		    res->data[i], (size_t)res->len[i], &pref, &name) == -1) {
			bad++;		/* malformed: dropped */
			continue;
		}
		if (strcmp(name, ".") == 0) {
			nulls++;	/* RFC 7505: never a host to try */
			free(name);
			continue;
		}
		r[*n].mx.name = name;
		r[*n].mx.pref = pref;
		(*n)++;
	}
	if (*n == 0) {
		free(r);
		return nulls > 0 && bad == 0 ? DNS_NULL_MX : DNS_TEMPFAIL;
	}
	*hosts = dns_mx_order(r, n);
	free(r);
	return DNS_OK;
}

/*
 * dns_addr_result - classify one family's answer into sub: its status and
 * its addresses in the order received (records of the wrong length are
 * dropped; if all are, a temporary failure). Frees nothing of res.
 */
static void
dns_addr_result(struct dns_sub *sub, int family, int err,
    const struct ub_result *res)
{
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	size_t cnt, i, want;

	if ((sub->st = dns_answer_status(err, res)) != DNS_OK)
		return;
	want = family == AF_INET6 ? sizeof(sin6->sin6_addr) :
	    sizeof(sin->sin_addr);
	cnt = dns_count(res);
	sub->addrs = xcalloc(cnt, sizeof(*sub->addrs));
	for (i = 0; i < cnt; i++) {
		if (res->len[i] < 0 || (size_t)res->len[i] != want)
			continue;	/* malformed: dropped */
		if (family == AF_INET6) {
			sin6 = (struct sockaddr_in6 *)&sub->addrs[sub->naddrs];
			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, res->data[i], want);
		} else {
			sin = (struct sockaddr_in *)&sub->addrs[sub->naddrs];
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, res->data[i], want);
		}
		sub->naddrs++;
	}
	if (sub->naddrs == 0)
		sub->st = DNS_TEMPFAIL;
}

/*
 * dns_trust - validate from the anchors in the file ta (see dns.h): read
 * now, when the context is finalized at the end of dns_new. 0, or -1
 * with *err.
 */
static int
dns_trust(struct ub_ctx *ctx, const char *ta, char **err)
{
	FILE *fp;
	int rc;

	/* libunbound reads the file later and only says "initfail". */
	if ((fp = fopen(ta, "r")) == NULL) {
		*err = xasprintf("dns: trust anchor %s: %s", ta,
		    strerror(errno));
		return -1;
	}
	(void)fclose(fp);
	if ((rc = ub_ctx_add_ta_file(ctx, ta)) != 0) {
		*err = xasprintf("dns: trust anchor %s: %s", ta,
		    ub_strerror(rc));
		return -1;
	}
	/* test. is not in the root zone: insecure unless anchored below. */
	if ((rc = ub_ctx_set_option(ctx, "domain-insecure:", "test.")) != 0) {
		*err = xasprintf("dns: domain-insecure: %s", ub_strerror(rc));
		return -1;
	}
	return 0;
}

/* dns_new - a libunbound context forwarding to resolver, validating */
struct dns *
dns_new(const char *resolver, const char *trust_anchor, char **err)
{
	struct dns *d;
	bool validate;
	int rc;

	*err = NULL;
	d = xcalloc(1, sizeof(*d));
	d->next_id = 1;
	if ((d->ctx = ub_ctx_create()) == NULL) {
		*err = xstrdup("dns: cannot create the libunbound context");
		free(d);
		return NULL;
	}
	/* Forwarders on loopback (a local cache, test servers) are fine. */
	if ((rc = ub_ctx_set_option(d->ctx, "do-not-query-localhost:",
	    "no")) != 0) {
		*err = xasprintf("dns: do-not-query-localhost: %s",
		    ub_strerror(rc));
		goto fail;
	}
	if (resolver != NULL) {
		if ((rc = ub_ctx_set_fwd(d->ctx, resolver)) != 0) {
			*err = xasprintf("dns: resolver \"%s\": %s (want IP "
			    "or IP@PORT)", resolver, ub_strerror(rc));
			goto fail;
		}
	} else if ((rc = ub_ctx_resolvconf(d->ctx, NULL)) != 0) {
		*err = xasprintf("dns: /etc/resolv.conf: %s%s%s",
		    ub_strerror(rc), rc == UB_READFILE ? ": " : "",
		    rc == UB_READFILE ? strerror(errno) : "");
		goto fail;
	}
	validate = trust_anchor != NULL && trust_anchor[0] != '\0';
	if (validate && dns_trust(d->ctx, trust_anchor, err) == -1)
		goto fail;
	/* A thread, not a forked process, answers asynchronous lookups. */
	if ((rc = ub_ctx_async(d->ctx, 1)) != 0) {
		*err = xasprintf("dns: async: %s", ub_strerror(rc));
		goto fail;
	}
	/*
	 * libunbound answers "test." (RFC 6761) itself with NXDOMAIN; let
	 * the servers answer it instead, as test setups serve it. This
	 * finalizes the context (and reads the trust anchor file), so it
	 * comes after every setting.
	 */
	if ((rc = ub_ctx_zone_remove(d->ctx, "test.")) != 0 &&
	    rc != UB_NOERROR) {
		if (validate && rc == UB_INITFAIL)
			*err = xasprintf("dns: trust anchor %s: no DS or "
			    "DNSKEY record libunbound can use", trust_anchor);
		else
			*err = xasprintf("dns: local zone test.: %s",
			    ub_strerror(rc));
		goto fail;
	}
	return d;

fail:
	ub_ctx_delete(d->ctx);
	free(d);
	return NULL;
}

/* dns_find - the pending lookup id, or NULL */
static struct dns_query *
dns_find(struct dns *d, int id)
{
	struct dns_query *q;

	for (q = d->pending; q != NULL; q = q->next)
		if (q->id == id)
			break;
	return q;
}

/*
 * dns_query_new - a lookup of kind with a fresh id, not yet pending.
 * Ids count up from 1; once they went round past INT_MAX, one still
 * pending is skipped.
 */
static struct dns_query *
dns_query_new(struct dns *d, enum dns_kind kind, void *arg)
{
	struct dns_query *q;
	size_t i;

	q = xcalloc(1, sizeof(*q));
	q->dns = d;
	q->kind = kind;
	q->arg = arg;
	for (i = 0; i < DNS_NSUB; i++) {
		q->sub[i].q = q;
		q->sub[i].st = DNS_NODATA;	/* not asked: no address */
	}
	do {
		q->id = d->next_id;
		if (d->next_id == INT_MAX) {
			d->next_id = 1;
			d->wrapped = true;
		} else
			d->next_id++;
	} while (d->wrapped && dns_find(d, q->id) != NULL);
	return q;
}

/* dns_link - make q pending */
static void
dns_link(struct dns_query *q)
{
	q->prev = NULL;
	q->next = q->dns->pending;
	if (q->next != NULL)
		q->next->prev = q;
	q->dns->pending = q;
}

/* dns_unlink - take q out of its resolver's pending list */
static void
dns_unlink(struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		q->dns->pending = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

/*
 * dns_query_free - free q (already unlinked), cancelling its libunbound
 * queries still running and its literal event; no callback runs.
 */
static void
dns_query_free(struct dns_query *q)
{
	size_t i;

	for (i = 0; i < DNS_NSUB; i++) {
		if (q->sub[i].running)
			(void)ub_cancel(q->dns->ctx, q->sub[i].ub_id);
		free(q->sub[i].addrs);
	}
	if (q->literal != NULL)
		event_free(q->literal);
	free(q->domain);
	free(q);
}

/* dns_free - cancel everything pending and free the resolver */
void
dns_free(struct dns *d)
{
	struct dns_query *q;

	if (d == NULL)
		return;
	if (d->ev != NULL)
		event_free(d->ev);
	while ((q = d->pending) != NULL) {
		dns_unlink(q);
		dns_query_free(q);
	}
	/* ub_ctx_delete drops whatever is left without calling back. */
	ub_ctx_delete(d->ctx);
	free(d);
}

/* dns_sec_set - copy sec to out, unless out is NULL */
static void
dns_sec_set(struct dns_sec *out, const struct dns_sec *sec)
{
	if (out != NULL)
		*out = *sec;
}

/* dns_txt_sync - a blocking TXT lookup */
int
dns_txt_sync(struct dns *d, const char *name, char ***txts, size_t *n,
    enum dns_status *st, struct dns_sec *sec)
{
	struct ub_result *res = NULL;
	struct dns_sec s;
	int err;

	err = ub_resolve(d->ctx, name, DNS_TYPE_TXT, DNS_CLASS_IN, &res);
	*st = dns_txt_result(err, res, txts, n);
	dns_sec_of(err, res, &s);
	dns_sec_set(sec, &s);
	if (res != NULL)
		ub_resolve_free(res);
	return err != 0 ? -1 : 0;
}

/* dns_tlsa_sync - a blocking TLSA lookup */
int
dns_tlsa_sync(struct dns *d, const char *name, struct dns_tlsa **recs,
    size_t *n, enum dns_status *st, struct dns_sec *sec)
{
	struct ub_result *res = NULL;
	struct dns_sec s;
	int err = -1;

	if (dns_name_ok(name))
		err = ub_resolve(d->ctx, name, DNS_TYPE_TLSA, DNS_CLASS_IN,
		    &res);
	*st = dns_tlsa_result(err, res, recs, n);
	dns_sec_of(err, res, &s);
	dns_sec_set(sec, &s);
	if (res != NULL)
		ub_resolve_free(res);
	return err != 0 ? -1 : 0;
}

/* dns_process - libunbound's descriptor is readable: run the answers */
static void
dns_process(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	(void)fd;
	(void)what;
	/* Errors here are transient pipe reads; nothing to do but wait. */
	(void)ub_process(d->ctx);
}

/* dns_attach - an event on ub_fd() that calls ub_process() */
int
dns_attach(struct dns *d, struct event_base *base)
{
	int fd;

	if (d->ev != NULL || (fd = ub_fd(d->ctx)) == -1)
		return -1;
	if ((d->ev = event_new(base, fd, EV_READ | EV_PERSIST, dns_process,
	    d)) == NULL)
		return -1;
	if (event_add(d->ev, NULL) == -1) {
		event_free(d->ev);
		d->ev = NULL;
		return -1;
	}
	d->base = base;
	return 0;
}

/*
 * dns_start - send q's query slot (name, type) to libunbound, answered
 * through done with the slot's struct dns_sub as mydata. 0 or -1.
 */
static int
dns_start(struct dns_query *q, size_t slot, const char *name, int type,
    ub_callback_type done)
{
	struct dns_sub *sub = &q->sub[slot];

	if (ub_resolve_async(q->dns->ctx, name, type, DNS_CLASS_IN, sub, done,
	    &sub->ub_id) != 0)
		return -1;
	sub->asked = sub->running = true;
	return 0;
}

/*
 * dns_single_done - libunbound's answer to a lookup of one query (TXT,
 * MX, TLSA), inside ub_process() on the loop: classify it by the
 * lookup's kind, call back, free.
 */
static void
dns_single_done(void *arg, int err, struct ub_result *res)
{
	struct dns_sub *sub = arg;
	struct dns_query *q = sub->q;
	struct dns_tlsa *recs;
	struct dns_mx *hosts;
	enum dns_status st;
	char **txts;
	size_t n;

	sub->running = false;
	dns_unlink(q);
	dns_sec_of(err, res, &sub->sec);
	switch (q->kind) {
	case DNS_KIND_TXT:
		st = dns_txt_result(err, res, &txts, &n);
		q->cb.txt(q->arg, st, txts, n, &sub->sec);
		dns_txts_free(txts, n);
		break;
	case DNS_KIND_MX:
		st = dns_mx_result(q->domain, err, res, &hosts, &n);
		q->cb.mx(q->arg, st, hosts, n, &sub->sec);
		dns_mxs_free(hosts, n);
		break;
	case DNS_KIND_TLSA:
		st = dns_tlsa_result(err, res, &recs, &n);
		q->cb.tlsa(q->arg, st, recs, n, &sub->sec);
		dns_tlsas_free(recs, n);
		break;
	case DNS_KIND_ADDRS:
		log_panic("dns: an address lookup answered as a single one");
	}
	if (res != NULL)
		ub_resolve_free(res);
	dns_query_free(q);
}

/*
 * dns_single - start a lookup of kind of one query (name, type), whose
 * callback the caller sets in the returned lookup before the loop runs
 * again; NULL if not attached, name is not one dns_name_ok takes (TXT
 * names are left to the server, as they always were), or libunbound
 * refused it.
 */
static struct dns_query *
dns_single(struct dns *d, enum dns_kind kind, const char *name, int type,
    void *arg)
{
	struct dns_query *q;

	if (d->ev == NULL || (kind != DNS_KIND_TXT && !dns_name_ok(name)))
		return NULL;
	q = dns_query_new(d, kind, arg);
	q->domain = xstrdup(name);
	if (dns_start(q, DNS_SUB_ONLY, name, type, dns_single_done) == -1) {
		dns_query_free(q);
		return NULL;
	}
	dns_link(q);
	return q;
}

/* dns_txt - start an asynchronous TXT lookup */
int
dns_txt(struct dns *d, const char *name, dns_txt_cb cb, void *arg)
{
	struct dns_query *q;

	if ((q = dns_single(d, DNS_KIND_TXT, name, DNS_TYPE_TXT, arg)) == NULL)
		return -1;
	q->cb.txt = cb;
	return q->id;
}

/* dns_mx - start an asynchronous MX lookup */
int
dns_mx(struct dns *d, const char *domain, dns_mx_cb cb, void *arg)
{
	struct dns_query *q;

	if ((q = dns_single(d, DNS_KIND_MX, domain, DNS_TYPE_MX, arg)) == NULL)
		return -1;
	q->cb.mx = cb;
	return q->id;
}

/* dns_tlsa - start an asynchronous TLSA lookup */
int
dns_tlsa(struct dns *d, const char *name, dns_tlsa_cb cb, void *arg)
{
	struct dns_query *q;

	if ((q = dns_single(d, DNS_KIND_TLSA, name, DNS_TYPE_TLSA,
	    arg)) == NULL)
		return -1;
	q->cb.tlsa = cb;
	return q->id;
}

/*
 * dns_addrs_sec - the security of both families' answers: bogus if one
 * is (its reason), secure if every query asked is, else insecure (also
 * for a literal: no query).
 */
static void
dns_addrs_sec(const struct dns_query *q, struct dns_sec *sec)
{
	size_t i, asked = 0, secure = 0;

	sec->level = DNS_INSECURE;
	sec->why[0] = '\0';
	for (i = 0; i < DNS_NSUB; i++) {
		if (!q->sub[i].asked)
			continue;
		asked++;
		if (q->sub[i].sec.level == DNS_BOGUS) {
			*sec = q->sub[i].sec;
			return;
		}
		if (q->sub[i].sec.level == DNS_SECURE)
			secure++;
	}
	if (asked > 0 && secure == asked)
		sec->level = DNS_SECURE;
}

/*
 * dns_addrs_finish - both families are in: one status over them (see
 * dns_addrs in dns.h), the addresses IPv6 first, and the callback.
 */
static void
dns_addrs_finish(struct dns_query *q)
{
	struct sockaddr_storage *all = NULL;
	enum dns_status st = DNS_NODATA;
	struct dns_sec sec;
	size_t i, n = 0;

	dns_unlink(q);
	dns_addrs_sec(q, &sec);
	for (i = 0; i < DNS_NSUB; i++) {
		if (q->sub[i].st == DNS_NXDOMAIN)
			st = DNS_NXDOMAIN;
		else if (q->sub[i].st == DNS_TEMPFAIL && st == DNS_NODATA)
			st = DNS_TEMPFAIL;
		n += q->sub[i].naddrs;
	}
	if (n > 0) {
		st = DNS_OK;
		all = xcalloc(n, sizeof(*all));
		n = 0;
		for (i = 0; i < DNS_NSUB; i++) {
			if (q->sub[i].naddrs > 0)
				memcpy(all + n, q->sub[i].addrs,
				    q->sub[i].naddrs * sizeof(*all));
			n += q->sub[i].naddrs;
		}
	}
	q->cb.addrs(q->arg, st, all, n, &sec);
	free(all);
	dns_query_free(q);
}

/* dns_addrs_done - one family's answer, inside ub_process() on the loop */
static void
dns_addrs_done(void *arg, int err, struct ub_result *res)
{
	struct dns_sub *sub = arg;
	struct dns_query *q = sub->q;
	size_t i;

	sub->running = false;
	dns_sec_of(err, res, &sub->sec);
	dns_addr_result(sub, sub == &q->sub[DNS_SUB_AAAA] ? AF_INET6 :
	    AF_INET, err, res);
	if (res != NULL)
		ub_resolve_free(res);
	for (i = 0; i < DNS_NSUB; i++)
		if (q->sub[i].running)
			return;	/* the other family is still out */
	dns_addrs_finish(q);
}

/* dns_literal_done - the zero-timeout event of an address literal */
static void
dns_literal_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dns_addrs_finish(arg);
}

/*
 * dns_addrs_literal - if host is an IPv4 or IPv6 literal, answer q from a
 * zero-timeout event: 1 started, 0 not a literal, -1 event failure.
 */
static int
dns_addrs_literal(struct dns_query *q, const char *host, int families)
{
	static const struct timeval now = { 0, 0 };
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	struct dns_sub *sub;

	memset(&sin6, 0, sizeof(sin6));
	memset(&sin, 0, sizeof(sin));
	if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		if ((families & DNS_INET6) != 0) {
			sub = &q->sub[DNS_SUB_AAAA];
			sub->addrs = xcalloc(1, sizeof(*sub->addrs));
			memcpy(sub->addrs, &sin6, sizeof(sin6));
			sub->naddrs = 1;
			sub->st = DNS_OK;
		}
	} else if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		if ((families & DNS_INET4) != 0) {
			sub = &q->sub[DNS_SUB_A];
			sub->addrs = xcalloc(1, sizeof(*sub->addrs));
			memcpy(sub->addrs, &sin, sizeof(sin));
			sub->naddrs = 1;
			sub->st = DNS_OK;
		}
	} else
		return 0;
	/* A literal of an unwanted family leaves both slots "no data". */
	if ((q->literal = evtimer_new(q->dns->base, dns_literal_done,
	    q)) == NULL || evtimer_add(q->literal, &now) == -1)
		return -1;
	return 1;
}

/* dns_addrs - start an asynchronous A and/or AAAA lookup */
int
dns_addrs(struct dns *d, const char *host, int families, dns_addrs_cb cb,
    void *arg)
{
	struct dns_query *q;
	int rc;

	if (d->ev == NULL || (families & (DNS_INET4 | DNS_INET6)) == 0)
		return -1;
	q = dns_query_new(d, DNS_KIND_ADDRS, arg);
	q->cb.addrs = cb;
	if ((rc = dns_addrs_literal(q, host, families)) != 0) {
		if (rc == -1) {
			dns_query_free(q);
			return -1;
		}
		dns_link(q);
		return q->id;
	}
	if (!dns_name_ok(host) ||
	    ((families & DNS_INET6) != 0 && dns_start(q, DNS_SUB_AAAA, host,
	    DNS_TYPE_AAAA, dns_addrs_done) == -1) ||
	    ((families & DNS_INET4) != 0 && dns_start(q, DNS_SUB_A, host,
	    DNS_TYPE_A, dns_addrs_done) == -1)) {
		dns_query_free(q);	/* cancels one already started */
		return -1;
	}
	dns_link(q);
	return q->id;
}

/* dns_cancel - drop a pending lookup by id, with all it started */
void
dns_cancel(struct dns *d, int id)
{
	struct dns_query *q;

	if (id <= 0 || (q = dns_find(d, id)) == NULL)
		return;
	dns_unlink(q);
	dns_query_free(q);
}
