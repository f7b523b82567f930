/*
 * deliver - network delivery attempts; see deliver.h.
 *
 * An attempt owns its groups; a group owns at most one DNS lookup or one
 * connection at a time, and is freed only after that one has answered
 * (or been cancelled by deliver_free), so the pointers given to
 * relay/dns and relay/smtpc as callback arguments never dangle.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/alloc.h"
#include "common/log.h"
#include "relay/deliver.h"
#include "relay/dns.h"
#include "relay/queue.h"

struct dl_attempt;

struct dl_group {
	struct dl_attempt	*a;
	char			*domain;	/* MX lookup of this, or */
	char			*hop;		/* this host (route, smarthost) */
	unsigned		 port;
	bool			 smarthost;
	size_t			*idx;		/* envelope recipient numbers */
	const char		**addrs;	/* their addresses */
	size_t			 n;
	struct dns_mx		*mx;		/* hosts, in order */
	size_t			 nmx, imx;
	struct sockaddr_storage	*ips;		/* the current host's */
	size_t			 nips, iip;
	int			 lookup;	/* dns id in flight, or 0 */
	struct smtpc		*conn;		/* in flight, or NULL */
	char			*relay;		/* "host[addr]:port" now */
	struct smtpc_reply	 last;		/* last failure (text owned) */
	struct dl_group		*next;
};

struct dl_attempt {
	struct deliver		*d;
	uint64_t		 cookie;
	char			 id[QUEUE_ID_LEN + 1];
	char			*sender;
	char			*prepend;
	size_t			 prepend_len;
	bool			 body_8bit, smtputf8;
	uint64_t		 size;
	int			 fd;
	char			**rcpts;	/* all envelope addresses */
	size_t			 nrcpts;
	struct dl_group		*groups;
	size_t			 nleft;		/* groups not finished */
	deliver_rcpt_cb		 rcpt_cb;
	deliver_done_cb		 done_cb;
	struct event		*kick;		/* starts the groups */
	struct dl_attempt	*prev, *next;
};

struct deliver {
	struct event_base	*base;
	const struct config	*cfg;
	struct dns		*dns;
	SSL_CTX			*ssl_ctx;
	struct dl_attempt	*attempts;
};

static void	dl_next_host(struct dl_group *);
static void	dl_next_addr(struct dl_group *);

/* dl_set_last - remember a failure (copies text) */
static void
dl_set_last(struct dl_group *g, int code, const char *enhanced,
    const char *text, bool local)
{
	free(g->last.text);
	g->last.code = code;
	snprintf(g->last.enhanced, sizeof(g->last.enhanced), "%s",
	    enhanced ? enhanced : "");
	g->last.text = xstrdup(text);
	g->last.local = local;
}

/* dl_attempt_free - unlink and free a finished attempt */
static void
dl_attempt_free(struct dl_attempt *a)
{
	struct dl_group *g;
	size_t i;

	if (a->prev != NULL)
		a->prev->next = a->next;
	else
		a->d->attempts = a->next;
	if (a->next != NULL)
		a->next->prev = a->prev;
	while ((g = a->groups) != NULL) {
		a->groups = g->next;
		if (g->lookup > 0)
			dns_cancel(a->d->dns, g->lookup);
		if (g->conn != NULL)
			smtpc_abort(g->conn);
		free(g->domain);
		free(g->hop);
		free(g->idx);
		free(g->addrs);
		for (i = 0; i < g->nmx; i++)
			free(g->mx[i].name);
		free(g->mx);
		free(g->ips);
		free(g->relay);
		free(g->last.text);
		free(g);
	}
	if (a->kick != NULL)
		event_free(a->kick);
	if (a->fd != -1)
		close(a->fd);
	for (i = 0; i < a->nrcpts; i++)
		free(a->rcpts[i]);
	free(a->rcpts);
	free(a->sender);
	free(a->prepend);
	free(a);
}

/* dl_release - one part of the attempt is finished; the last one ends
   it */
static void
dl_release(struct dl_attempt *a)
{
	if (--a->nleft > 0)
		return;
	a->done_cb(a->cookie);
	dl_attempt_free(a);
}

/* dl_group_done - one group has every outcome */
static void
dl_group_done(struct dl_group *g)
{
	dl_release(g->a);
}

/* dl_fail_all - every recipient of g gets the same outcome */
static void
dl_fail_all(struct dl_group *g, int code, const char *enhanced,
    const char *text, const char *relay)
{
	struct smtpc_reply r;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.code = code;
	snprintf(r.enhanced, sizeof(r.enhanced), "%s", enhanced);
	r.text = (char *)text;
	r.local = true;
	for (i = 0; i < g->n; i++)
		g->a->rcpt_cb(g->a->cookie, g->idx[i], &r, relay);
	dl_group_done(g);
}

/* dl_give_up - no host could take the group: defer with the last
   failure (or its own permanent reply) */
static void
dl_give_up(struct dl_group *g)
{
	const char *where = g->relay ? g->relay : g->domain ? g->domain :
	    g->hop;

	if (g->last.text == NULL)
		dl_set_last(g, 0, "4.4.1", "no mail server could be reached",
		    true);
	dl_fail_all(g, g->last.code, g->last.enhanced, g->last.text, where);
}

/* dl_done - the transaction's outcome per recipient */
static void
dl_done(void *arg, struct smtpc *conn, const struct smtpc_reply *rcpt,
    size_t nrcpts, bool usable)
{
	struct dl_group *g = arg;
	size_t i;

	g->conn = NULL;
	for (i = 0; i < nrcpts && i < g->n; i++)
		g->a->rcpt_cb(g->a->cookie, g->idx[i], &rcpt[i], g->relay);
	if (usable)
		smtpc_quit(conn);
	dl_group_done(g);
}

/* dl_ready - a connection is ready for the transaction, or failed */
static void
dl_ready(void *arg, struct smtpc *conn, const struct smtpc_peer *peer,
    const struct smtpc_reply *r, bool next_host)
{
	struct dl_group *g = arg;
	struct dl_attempt *a = g->a;
	struct smtpc_txn txn;

	if (r != NULL) {
		g->conn = NULL;
		log_info("id=%s relay=%s: %03d %s %s%s", a->id, g->relay,
		    r->code, r->enhanced[0] ? r->enhanced : "-", r->text,
		    next_host ? "; trying the next address" : "");
		dl_set_last(g, r->code, r->enhanced, r->text, r->local);
		if (next_host)
			dl_next_addr(g);
		else
			dl_fail_all(g, r->code, r->enhanced, r->text,
			    g->relay);
		return;
	}
	log_info("id=%s relay=%s connected%s%s%s", a->id, g->relay,
	    peer->tls ? " tls=" : "", peer->tls ? peer->tls_version : "",
	    peer->tls ? (peer->verified ? " verified" : " unverified") : "");
	memset(&txn, 0, sizeof(txn));
	txn.sender = a->sender;
	txn.rcpts = g->addrs;
	txn.nrcpts = g->n;
	txn.fd = a->fd;
	txn.size = a->size;
	txn.prepend = a->prepend;
	txn.prepend_len = a->prepend_len;
	txn.body_8bit = a->body_8bit;
	txn.smtputf8 = a->smtputf8;
	if (smtpc_send(conn, &txn, dl_done, g) == -1) {
		smtpc_abort(conn);
		g->conn = NULL;
		dl_set_last(g, 0, "4.3.0", "cannot start the transaction",
		    true);
		dl_next_addr(g);
	}
}

/* dl_source - the first relay.addresses entry of family af, or NULL */
static socklen_t
dl_source(const struct config *cfg, int af, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	size_t i;

	memset(ss, 0, sizeof(*ss));
	for (i = 0; i < cfg->relay.naddresses; i++) {
		if (af == AF_INET && inet_pton(AF_INET,
		    cfg->relay.addresses[i], &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			return sizeof(*s4);
		}
		if (af == AF_INET6 && inet_pton(AF_INET6,
		    cfg->relay.addresses[i], &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			return sizeof(*s6);
		}
	}
	return 0;
}

/* dl_tls - the smtpc TLS policy for g */
static enum smtpc_tls
dl_tls(const struct dl_group *g)
{
	const struct relay_config *rc = &g->a->d->cfg->relay;
	enum relay_tls t = g->smarthost ? rc->smarthost.tls : rc->tls;

	switch (t) {
	case RELAY_TLS_REQUIRE:
		return SMTPC_TLS_REQUIRE;
	case RELAY_TLS_IMPLICIT:
		return SMTPC_TLS_IMPLICIT;
	case RELAY_TLS_NONE:
		return SMTPC_TLS_NONE;
	case RELAY_TLS_OPPORTUNISTIC:
		break;
	}
	return SMTPC_TLS_OPPORTUNISTIC;
}

/* dl_next_addr - connect to the current host's next address */
static void
dl_next_addr(struct dl_group *g)
{
	const struct config *cfg = g->a->d->cfg;
	struct sockaddr_storage ss, src;
	struct smtpc_params p;
	const char *host = g->mx[g->imx].name;
	char addr[INET6_ADDRSTRLEN], *err = NULL;
	unsigned char tmp[sizeof(struct in6_addr)];

	if (g->iip == g->nips) {
		g->imx++;
		dl_next_host(g);
		return;
	}
	ss = g->ips[g->iip++];
	if (ss.ss_family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_port = htons(g->port);
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    addr, sizeof(addr));
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(g->port);
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    addr, sizeof(addr));
	}
	free(g->relay);
	g->relay = xasprintf("%s[%s]:%u", host, addr, g->port);
	memset(&p, 0, sizeof(p));
	p.addr = (struct sockaddr *)&ss;
	p.addrlen = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	if ((p.sourcelen = dl_source(cfg, ss.ss_family, &src)) > 0)
		p.source = (struct sockaddr *)&src;
	p.helo = cfg->hostname;
	/* An address literal has no name to verify or send as SNI. */
	p.peer_name = inet_pton(AF_INET, host, tmp) == 1 ||
	    inet_pton(AF_INET6, host, tmp) == 1 ? NULL : host;
	p.tls = dl_tls(g);
	p.no_verify = g->smarthost && !cfg->relay.smarthost.verify;
	p.ssl_ctx = g->a->d->ssl_ctx;
	if (g->smarthost) {
		p.auth_login = cfg->relay.smarthost.login;
		p.auth_password = cfg->relay.smarthost.password;
	}
	if ((g->conn = smtpc_open(g->a->d->base, &p, dl_ready, g, &err)) ==
	    NULL) {
		dl_set_last(g, 0, "4.4.1", err ? err : "cannot connect", true);
		free(err);
		dl_next_addr(g);
	}
}

/* dl_addrs_answer - the current host's addresses */
static void
dl_addrs_answer(void *arg, enum dns_status st,
    const struct sockaddr_storage *addrs, size_t n)
{
	struct dl_group *g = arg;
	const char *host = g->mx[g->imx].name;
	char *text;

	g->lookup = 0;
	if (st == DNS_OK) {
		free(g->ips);
		g->ips = xcalloc(n, sizeof(*g->ips));
		memcpy(g->ips, addrs, n * sizeof(*addrs));
		g->nips = n;
		g->iip = 0;
		dl_next_addr(g);
		return;
	}
	if (g->mx[g->imx].implicit && (st == DNS_NXDOMAIN ||
	    st == DNS_NODATA)) {
		/* No MX and no address: the domain takes no mail. */
		text = xasprintf("%s has no MX and no address record (%s)",
		    host, dns_status_name(st));
		dl_fail_all(g, 550, "5.4.4", text, g->domain);
		free(text);
		return;
	}
	text = xasprintf("%s: address lookup: %s", host, dns_status_name(st));
	dl_set_last(g, 0, "4.4.3", text, true);
	free(text);
	g->imx++;
	dl_next_host(g);
}

/* dl_next_host - look up the addresses of the next host, or give up */
static void
dl_next_host(struct dl_group *g)
{
	const struct relay_config *rc = &g->a->d->cfg->relay;
	int fam = 0;

	if (g->imx >= g->nmx) {
		dl_give_up(g);
		return;
	}
	if (rc->families & CONFIG_INET4)
		fam |= DNS_INET4;
	if (rc->families & CONFIG_INET6)
		fam |= DNS_INET6;
	if ((g->lookup = dns_addrs(g->a->d->dns, g->mx[g->imx].name, fam,
	    dl_addrs_answer, g)) == -1) {
		g->lookup = 0;
		dl_set_last(g, 0, "4.4.3", "cannot start an address lookup",
		    true);
		g->imx++;
		dl_next_host(g);
	}
}

/* dl_mx_answer - the MX hosts of the group's domain */
static void
dl_mx_answer(void *arg, enum dns_status st, const struct dns_mx *hosts,
    size_t n)
{
	struct dl_group *g = arg;
	char *text;
	size_t i;

	g->lookup = 0;
	switch (st) {
	case DNS_OK:
		g->mx = xcalloc(n, sizeof(*g->mx));
		for (i = 0; i < n; i++) {
			g->mx[i] = hosts[i];
			g->mx[i].name = xstrdup(hosts[i].name);
		}
		g->nmx = n;
		dl_next_host(g);
		return;
	case DNS_NXDOMAIN:
		text = xasprintf("domain %s does not exist (NXDOMAIN)",
		    g->domain);
		dl_fail_all(g, 550, "5.1.2", text, g->domain);
		break;
	case DNS_NULL_MX:
		text = xasprintf("domain %s accepts no mail (null MX, RFC "
		    "7505)", g->domain);
		dl_fail_all(g, 556, "5.1.10", text, g->domain);
		break;
	default:
		text = xasprintf("MX lookup of %s: %s", g->domain,
		    dns_status_name(st));
		dl_fail_all(g, 0, "4.4.3", text, g->domain);
		break;
	}
	free(text);
}

/* dl_group_start - resolve the group's next hop */
static void
dl_group_start(struct dl_group *g)
{
	if (g->hop != NULL) {
		g->mx = xcalloc(1, sizeof(*g->mx));
		g->mx[0].name = xstrdup(g->hop);
		g->nmx = 1;
		dl_next_host(g);
		return;
	}
	if ((g->lookup = dns_mx(g->a->d->dns, g->domain, dl_mx_answer, g)) ==
	    -1) {
		g->lookup = 0;
		dl_fail_all(g, 0, "4.4.3", "cannot start the MX lookup",
		    g->domain);
	}
}

/* dl_route - the route for domain (itself or a parent), or NULL */
static const struct route_config *
dl_route(const struct config *cfg, const char *domain)
{
	const struct relay_config *rc = &cfg->relay;
	size_t i, dl = strlen(domain), rl;

	for (i = 0; i < rc->nroutes; i++) {
		rl = strlen(rc->routes[i].domain);
		if (dl == rl ? strcmp(domain, rc->routes[i].domain) == 0 :
		    dl > rl && domain[dl - rl - 1] == '.' &&
		    strcmp(domain + dl - rl, rc->routes[i].domain) == 0)
			return &rc->routes[i];
	}
	return NULL;
}

/* dl_group_for - the group recipient addr belongs in, made if new */
static struct dl_group *
dl_group_for(struct dl_attempt *a, const char *addr)
{
	const struct config *cfg = a->d->cfg;
	const struct route_config *rt;
	struct dl_group *g;
	const char *at = strrchr(addr, '@');
	char *domain, *hop = NULL, *p;
	unsigned port = cfg->relay.port;
	bool smarthost = false;

	domain = xstrdup(at ? at + 1 : "");
	for (p = domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if ((rt = dl_route(cfg, domain)) != NULL) {
		hop = xstrdup(rt->host);
		port = rt->port ? rt->port : cfg->relay.port;
	} else if (cfg->relay.mode == RELAY_SMARTHOST) {
		hop = xstrdup(cfg->relay.smarthost.host);
		port = cfg->relay.smarthost.port;
		smarthost = true;
	}
	for (g = a->groups; g != NULL; g = g->next)
		if (hop != NULL ? g->hop != NULL && strcmp(g->hop, hop) == 0 &&
		    g->port == port : g->hop == NULL &&
		    strcmp(g->domain, domain) == 0)
			break;
	if (g == NULL) {
		g = xcalloc(1, sizeof(*g));
		g->a = a;
		g->domain = domain;
		g->hop = hop;
		g->port = port;
		g->smarthost = smarthost;
		g->idx = xcalloc(a->nrcpts, sizeof(*g->idx));
		g->addrs = xcalloc(a->nrcpts, sizeof(*g->addrs));
		g->next = a->groups;
		a->groups = g;
		a->nleft++;
	} else {
		free(domain);
		free(hop);
	}
	return g;
}

/*
 * dl_kick - start every group. A group may finish inside its start, so
 * one extra count holds the attempt until all have started.
 */
static void
dl_kick(evutil_socket_t fd, short what, void *arg)
{
	struct dl_attempt *a = arg;
	struct dl_group *g;

	(void)fd;
	(void)what;
	a->nleft++;
	for (g = a->groups; g != NULL; g = g->next)
		dl_group_start(g);
	dl_release(a);
}

/* deliver_start - one attempt for e's pending recipients */
int
deliver_start(struct deliver *d, struct queue *q, const struct envelope *e,
    deliver_rcpt_cb rcpt_cb, deliver_done_cb done_cb, uint64_t cookie,
    char **err)
{
	struct timeval now = { 0, 0 };
	struct dl_attempt *a;
	struct dl_group *g;
	size_t i;
	int fd;

	*err = NULL;
	if ((fd = queue_open_message(q, e->id)) == -1) {
		*err = xasprintf("cannot open the queued message: %s",
		    strerror(errno));
		return -1;
	}
	a = xcalloc(1, sizeof(*a));
	a->d = d;
	a->cookie = cookie;
	a->fd = fd;
	snprintf(a->id, sizeof(a->id), "%s", e->id);
	a->sender = xstrdup(e->sender);
	if (e->prepend != NULL) {
		a->prepend = xmalloc(e->prepend_len);
		memcpy(a->prepend, e->prepend, e->prepend_len);
		a->prepend_len = e->prepend_len;
	}
	a->body_8bit = e->body_8bit;
	a->smtputf8 = e->smtputf8;
	a->size = e->size;
	a->rcpt_cb = rcpt_cb;
	a->done_cb = done_cb;
	a->rcpts = xcalloc(e->nrcpts ? e->nrcpts : 1, sizeof(*a->rcpts));
	a->nrcpts = e->nrcpts;
	for (i = 0; i < e->nrcpts; i++) {
		a->rcpts[i] = xstrdup(e->rcpts[i].addr);
		if (e->rcpts[i].status != RCPT_PENDING)
			continue;
		g = dl_group_for(a, a->rcpts[i]);
		g->idx[g->n] = i;
		g->addrs[g->n++] = a->rcpts[i];
	}
	a->next = d->attempts;
	if (a->next != NULL)
		a->next->prev = a;
	d->attempts = a;
	/* The groups start from the loop, so that no callback runs inside
	   this call. */
	if ((a->kick = evtimer_new(d->base, dl_kick, a)) == NULL ||
	    evtimer_add(a->kick, &now) == -1)
		log_fatalx("deliver: cannot add an event");
	return 0;
}

/* deliver_new - the engine and its client TLS context */
struct deliver *
deliver_new(struct event_base *base, const struct config *cfg,
    struct dns *dns, char **err)
{
	struct deliver *d = xcalloc(1, sizeof(*d));

	*err = NULL;
	d->base = base;
	d->cfg = cfg;
	d->dns = dns;
	if ((d->ssl_ctx = smtpc_tls_ctx(cfg->relay.ca_file, err)) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

/* deliver_free - abort everything, no callbacks */
void
deliver_free(struct deliver *d)
{
	if (d == NULL)
		return;
	while (d->attempts != NULL)
		dl_attempt_free(d->attempts);
	SSL_CTX_free(d->ssl_ctx);
	free(d);
}
