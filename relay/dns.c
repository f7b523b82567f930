/*
 * dns - TXT lookups through libunbound; see dns.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <unbound.h>

#include "common/alloc.h"
#include "relay/dns.h"

#define DNS_TYPE_TXT	16
#define DNS_CLASS_IN	1
#define DNS_RCODE_NXDOMAIN	3

/* One pending asynchronous lookup; lives in dns->pending until answered. */
struct dns_query {
	struct dns		*dns;
	int			 id;		/* libunbound's async_id */
	dns_txt_cb		 cb;
	void			*arg;
	struct dns_query	*prev, *next;
};

struct dns {
	struct ub_ctx		*ctx;
	struct event		*ev;		/* on ub_fd(ctx) */
	struct dns_query	*pending;
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
	}
	return "unknown";
}

/*
 * dns_txt_result - classify a libunbound answer (err from the library,
 * res possibly NULL) and collect its TXT values. Frees nothing.
 */
static enum dns_status
dns_txt_result(int err, struct ub_result *res, char ***txts, size_t *n)
{
	char **v, *t;
	size_t cnt, i;

	*txts = NULL;
	*n = 0;
	if (err != 0 || res == NULL)
		return DNS_TEMPFAIL;
	if (res->rcode == DNS_RCODE_NXDOMAIN || res->nxdomain)
		return DNS_NXDOMAIN;
	if (res->rcode != 0)
		return DNS_TEMPFAIL;
	if (!res->havedata || res->data == NULL || res->data[0] == NULL)
		return DNS_NODATA;
	for (cnt = 0; res->data[cnt] != NULL; cnt++)
		;
	v = xcalloc(cnt, sizeof(*v));
	for (i = 0; i < cnt; i++) {
		if (res->len[i] < 0 || dns_txt_parse((const unsigned char *)
		    res->data[i], (size_t)res->len[i], &t) == -1)
			continue;	/* malformed: dropped */
		v[(*n)++] = t;
	}
	if (*n == 0) {
		free(v);
		return DNS_TEMPFAIL;
	}
	*txts = v;
	return DNS_OK;
}

/* dns_new - a libunbound context forwarding to resolver */
struct dns *
dns_new(const char *resolver, char **err)
{
	struct dns *d;
	int rc;

	*err = NULL;
	d = xcalloc(1, sizeof(*d));
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
	/* A thread, not a forked process, answers asynchronous lookups. */
	if ((rc = ub_ctx_async(d->ctx, 1)) != 0) {
		*err = xasprintf("dns: async: %s", ub_strerror(rc));
		goto fail;
	}
	/*
	 * libunbound answers "test." (RFC 6761) itself with NXDOMAIN; let
	 * the servers answer it instead, as test setups serve it. This
	 * finalizes the context, so it comes after every setting.
	 */
	if ((rc = ub_ctx_zone_remove(d->ctx, "test.")) != 0 &&
	    rc != UB_NOERROR) {
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

/* dns_free - cancel everything pending and free the resolver */
void
dns_free(struct dns *d)
{
	struct dns_query *q;

	if (d == NULL)
		return;
	if (d->ev != NULL)
		event_free(d->ev);
	/* ub_ctx_delete drops pending lookups without calling back. */
	ub_ctx_delete(d->ctx);
	while ((q = d->pending) != NULL) {
		dns_unlink(q);
		free(q);
	}
	free(d);
}

/* dns_txt_sync - a blocking TXT lookup */
int
dns_txt_sync(struct dns *d, const char *name, char ***txts, size_t *n,
    enum dns_status *st)
{
	struct ub_result *res = NULL;
	int err;

	err = ub_resolve(d->ctx, name, DNS_TYPE_TXT, DNS_CLASS_IN, &res);
	*st = dns_txt_result(err, res, txts, n);
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
	return 0;
}

/* dns_txt_done - libunbound's callback, inside ub_process() on the loop */
static void
dns_txt_done(void *arg, int err, struct ub_result *res)
{
	struct dns_query *q = arg;
	enum dns_status st;
	char **txts;
	size_t n;

	dns_unlink(q);
	st = dns_txt_result(err, res, &txts, &n);
	if (res != NULL)
		ub_resolve_free(res);
	q->cb(q->arg, st, txts, n);
	dns_txts_free(txts, n);
	free(q);
}

/* dns_txt - start an asynchronous TXT lookup */
int
dns_txt(struct dns *d, const char *name, dns_txt_cb cb, void *arg)
{
	struct dns_query *q;

	if (d->ev == NULL)
		return -1;
	q = xcalloc(1, sizeof(*q));
	q->dns = d;
	q->cb = cb;
	q->arg = arg;
	if (ub_resolve_async(d->ctx, name, DNS_TYPE_TXT, DNS_CLASS_IN, q,
	    dns_txt_done, &q->id) != 0) {
		free(q);
		return -1;
	}
	/* libunbound ids start at 1; keep ours positive regardless. */
	if (q->id <= 0) {
		ub_cancel(d->ctx, q->id);
		free(q);
		return -1;
	}
	q->next = d->pending;
	if (q->next != NULL)
		q->next->prev = q;
	d->pending = q;
	return q->id;
}

/* dns_cancel - drop a pending lookup by id */
void
dns_cancel(struct dns *d, int id)
{
	struct dns_query *q;

	for (q = d->pending; q != NULL; q = q->next)
		if (q->id == id)
			break;
	if (q == NULL)
		return;
	(void)ub_cancel(d->ctx, id);
	dns_unlink(q);
	free(q);
}
