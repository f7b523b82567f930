/*
 * deliver - network delivery attempts; see deliver.h.
 *
 * Three kinds of object, each freed only when nothing can call back
 * with its pointer any more:
 *
 *   - an attempt (one message) owns its groups (one next hop each); a
 *     group has at most one DNS lookup in flight, or uses one
 *     connection, or waits in d->waiting, or has finished;
 *   - a connection (struct dl_conn) belongs to the engine, not to a
 *     group: it is opening or busy for one group (d->active), or idle in
 *     the cache (d->idle, oldest first). Its smtpc callbacks and its idle
 *     timer carry its pointer; it is forgotten after smtpc's last
 *     callback, or when it is handed to smtpc_quit/smtpc_abort (which
 *     promise no further callback);
 *   - a destination (struct dl_dest: address and port) counts its
 *     connections and holds the relay.pause state; it lives while it has
 *     a connection, a claimed transaction or a pause running;
 *   - a site that is down (struct dl_site: what a group is for, the
 *     route's or smarthost's "host:port", or the recipient domain in mx
 *     mode) lives from the attempt that found every address of it
 *     unreachable until a connection to it is ready again.
 *
 * A group that cannot have a connection now (a limit, or the pause)
 * waits in d->waiting, first come first served: d->wake, an event,
 * scans the queue whenever a connection closes, goes idle, or a pause
 * ends. deliver_free() cancels every lookup, connection and timer, so no
 * pointer given as a callback argument dangles.
 *
 * XXX connections and destinations are found by walking lists; that is
 * fine for relay.connections in the hundreds, a tree would do beyond.
 */
#include <sys/queue.h>
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
#include "common/dns.h"
#include "queue/queue.h"
#include "relay/deliver.h"
#include "relay/smtpc.h"

/* An idle cached connection is closed (QUIT) after this many seconds. */
#define DL_IDLE_TIMEOUT		5

/* A connection carries at most this many transactions, then QUITs. */
#define DL_CONN_MAX_MSGS	100

struct dl_attempt;

/*
 * A site that is down, as Postfix's qmgr remembers a dead destination:
 * no group for it is tried (its recipients are deferred at once, without
 * a connection) until `until`, then one group, the probe, is; while it
 * runs, the others still wait. A probe that fails doubles the back-off
 * (relay.retry.first, at most relay.retry.max); any connection that
 * becomes ready to the site forgets it.
 */
struct dl_site {
	char			*name;		/* dl_site_key */
	uint32_t		 serial;	/* the transport's "wait" */
	time_t			 since;		/* down since */
	time_t			 until;		/* no attempt before */
	unsigned		 backoff;	/* seconds; doubles per probe */
	bool			 probing;	/* a probe is in flight */
	TAILQ_ENTRY(dl_site)	 entry;
};

/* One destination: an address and port, "addr:port" or "[addr6]:port". */
struct dl_dest {
	struct deliver		*d;
	char			*name;
	unsigned		 nconns;	/* opening, busy or idle */
	bool			 claimed;	/* pause: its turn is taken */
	struct event		*pause_ev;	/* pending: pause running */
	TAILQ_ENTRY(dl_dest)	 entry;
};

enum dl_conn_state {
	DC_OPENING,		/* smtpc_open started, for c->g */
	DC_BUSY,		/* a transaction of c->g */
	DC_IDLE,		/* in the cache */
};

/* One outbound connection and what makes another equivalent to it. */
struct dl_conn {
	struct deliver		*d;
	struct smtpc		*sc;
	struct dl_dest		*dest;
	enum dl_conn_state	 state;
	struct dl_group		*g;		/* opening or busy: for it */
	char			*relay;		/* "host[addr]:port" */
	enum smtpc_tls		 tls;		/* the key, with dest */
	bool			 no_verify;
	char			*peer;		/* peer_name, or NULL */
	const char		*login;		/* the config's, or NULL */
	unsigned		 uses;		/* transactions sent */
	struct event		*idle_ev;	/* QUIT when it fires */
	TAILQ_ENTRY(dl_conn)	 entry;		/* d->active or d->idle */
};

struct dl_group {
	struct dl_attempt	*a;
	char			*domain;	/* MX lookup of this, or */
	char			*hop;		/* this host (route, smarthost) */
	char			*site;		/* dl_site_key */
	bool			 probe;		/* the probe of a site down */
	bool			 skip;		/* its site is down: not tried */
	unsigned		 port;
	bool			 smarthost;
	const struct route_config *route;	/* its route, or NULL */
	size_t			*idx;		/* envelope recipient numbers */
	const char		**addrs;	/* their addresses */
	size_t			 n;
	struct dns_mx		*mx;		/* hosts, in order */
	size_t			 nmx, imx;
	struct sockaddr_storage	*ips;		/* the current host's */
	size_t			 nips, iip;
	int			 lookup;	/* dns id in flight, or 0 */
	struct sockaddr_storage	 ss;		/* the current address, port
						   set */
	char			*dest;		/* its dl_dest name */
	char			*relay;		/* "host[addr]:port" now */
	struct dl_conn		*dc;		/* opening or busy, or NULL */
	bool			 reused;	/* dc came from the cache */
	bool			 fresh;		/* the cached one was dead: open
						   a new one */
	struct dl_dest		*claim;		/* pause turn held, or NULL */
	bool			 waiting;	/* in d->waiting */
	bool			 told;		/* "waiting" was logged */
	uint64_t		 gen;		/* d->gen when it was queued */
	struct smtpc_reply	 last;		/* last failure (text owned) */
	TAILQ_ENTRY(dl_group)	 wentry;	/* d->waiting */
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
	int			 fd;		/* the queue file */
	off_t			 start;		/* the message in it */
	char			**rcpts;	/* all envelope addresses */
	size_t			 nrcpts;
	struct dl_group		*groups;
	size_t			 nleft;		/* groups not finished */
	transport_rcpt_cb	 rcpt_cb;
	transport_done_cb	 done_cb;
	struct event		*kick;		/* starts the groups */
	struct dl_attempt	*prev, *next;
};

TAILQ_HEAD(dl_conns, dl_conn);

struct deliver {
	struct event_base	*base;
	const struct config	*cfg;
	struct dns		*dns;
	SSL_CTX			*ssl_ctx;
	struct dl_attempt	*attempts;
	struct dl_conns		 active;	/* opening or busy */
	struct dl_conns		 idle;		/* least recently used first */
	unsigned		 nconns;	/* active and idle */
	TAILQ_HEAD(, dl_dest)	 dests;
	TAILQ_HEAD(, dl_group)	 waiting;	/* first come, first served */
	uint64_t		 gen;		/* scans of d->waiting */
	struct event		*wake;		/* scans d->waiting */
	TAILQ_HEAD(, dl_site)	 down;		/* sites that are down */
	uint32_t		 site_serial;	/* the last one given */
	struct transport	*t;		/* its up_cb, or NULL */
};

/* What a group may do now. */
enum dl_turn {
	DL_WAIT,		/* a limit or the pause: queue */
	DL_REUSE,		/* an idle connection fits */
	DL_OPEN,		/* a new connection may be opened */
};

static void	dl_next_host(struct dl_group *);
static void	dl_next_addr(struct dl_group *);
static void	dl_try(struct dl_group *);

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

/* dl_streq - two optional strings are equal */
static bool
dl_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* dl_wake - scan the waiting groups soon, from the loop */
static void
dl_wake(struct deliver *d)
{
	event_active(d->wake, EV_TIMEOUT, 1);
}

/* --- sites that are down --- */

/*
 * dl_site_key - into key, the site recipient addr goes to: the route's
 * or the smarthost's "host:port", else (mx mode) its domain in lower
 * case; dl_group_for groups recipients by the same rule
 */
static void
dl_site_key(const struct config *cfg, const char *addr, char *key,
    size_t len)
{
	const struct route_config *rt;
	const char *at = strrchr(addr, '@');
	char *p;

	snprintf(key, len, "%s", at ? at + 1 : "");
	for (p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if ((rt = config_route(cfg, key)) != NULL)
		snprintf(key, len, "%s:%u", rt->host, rt->port ? rt->port :
		    cfg->relay.port);
	else if (cfg->relay.mode == RELAY_SMARTHOST)
		snprintf(key, len, "%s:%u", cfg->relay.smarthost.host,
		    cfg->relay.smarthost.port);
}

/* dl_site_find - the site called name if it is down, or NULL. XXX a
   walk: fine while few sites are down at once. */
static struct dl_site *
dl_site_find(struct deliver *d, const char *name)
{
	struct dl_site *site;

	TAILQ_FOREACH(site, &d->down, entry)
		if (strcmp(site->name, name) == 0)
			return site;
	return NULL;
}

/* dl_site_free - forget a site */
static void
dl_site_free(struct deliver *d, struct dl_site *site)
{
	TAILQ_REMOVE(&d->down, site, entry);
	free(site->name);
	free(site);
}

/*
 * dl_sites_gc - forget the sites nobody has probed for relay.retry.max
 * past their time (in mx mode, a domain whose mail all bounced or
 * expired), so that the list does not grow with every domain that was
 * ever down; a message that still goes there finds out again
 */
static void
dl_sites_gc(struct deliver *d, time_t now)
{
	struct dl_site *site, *next;

	for (site = TAILQ_FIRST(&d->down); site != NULL; site = next) {
		next = TAILQ_NEXT(site, entry);
		if (!site->probing && now > site->until +
		    (time_t)d->cfg->relay.retry_max)
			dl_site_free(d, site);
	}
}

/* dl_site_probe_due - site may have its probe now */
static bool
dl_site_probe_due(const struct dl_site *site, time_t now)
{
	return !site->probing && now >= site->until;
}

/*
 * dl_site_down - g found no address of its site that would take a
 * connection and its recipients are deferred: the site is down from
 * now (logged once), or, if g was its probe, down for twice as long
 */
static void
dl_site_down(struct dl_group *g)
{
	struct deliver *d = g->a->d;
	const struct relay_config *rc = &d->cfg->relay;
	struct dl_site *site = dl_site_find(d, g->site);
	time_t now = time(NULL);
	char when[LOG_UTC_LEN];

	if (site == NULL) {
		site = xcalloc(1, sizeof(*site));
		site->name = xstrdup(g->site);
		if (++d->site_serial == 0)
			d->site_serial = 1;	/* 0 means "none" */
		site->serial = d->site_serial;
		site->since = now;
		site->backoff = rc->retry_first;
		site->until = now + site->backoff;
		TAILQ_INSERT_TAIL(&d->down, site, entry);
		log_info("relay=%s destination down: %s; messages to it wait, "
		    "next try %s", site->name, g->last.text ? g->last.text :
		    "unreachable", log_utc(site->until, when));
		return;
	}
	if (!g->probe)
		return;		/* started before the site was found down */
	site->probing = false;
	site->backoff = site->backoff >= rc->retry_max / 2 ? rc->retry_max :
	    site->backoff * 2;
	site->until = now + site->backoff;
	log_debug("relay=%s destination still down, next try %s",
	    site->name, log_utc(site->until, when));
}

/* dl_site_up - a connection to site name is ready: it is up (logged
   once, and the transport's owner told) */
static void
dl_site_up(struct deliver *d, const char *name)
{
	struct dl_site *site = dl_site_find(d, name);

	if (site == NULL)
		return;
	log_info("relay=%s destination up again after %llds down", site->name,
	    (long long)(time(NULL) - site->since));
	dl_site_free(d, site);
	if (d->t != NULL && d->t->up_cb != NULL)
		d->t->up_cb(d->t->up_arg);
}

/* dl_site_end - g is finished: a probe that neither connected nor
   found the site down (a DNS answer, say) lets the next one go */
static void
dl_site_end(struct dl_group *g)
{
	struct dl_site *site;

	if (g->probe && (site = dl_site_find(g->a->d, g->site)) != NULL)
		site->probing = false;
	g->probe = false;
}

/* --- destinations --- */

/* dl_dest_find - the destination called name, or NULL */
static struct dl_dest *
dl_dest_find(struct deliver *d, const char *name)
{
	struct dl_dest *dest;

	TAILQ_FOREACH(dest, &d->dests, entry)
		if (strcmp(dest->name, name) == 0)
			return dest;
	return NULL;
}

/* dl_dest_gc - free dest if nothing needs it any more */
static void
dl_dest_gc(struct dl_dest *dest)
{
	if (dest->nconns > 0 || dest->claimed ||
	    evtimer_pending(dest->pause_ev, NULL))
		return;
	TAILQ_REMOVE(&dest->d->dests, dest, entry);
	event_free(dest->pause_ev);
	free(dest->name);
	free(dest);
}

/* dl_dest_pause_cb - the pause after a transaction to dest is over */
static void
dl_dest_pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dl_dest *dest = arg;

	(void)fd;
	(void)what;
	dl_wake(dest->d);
	dl_dest_gc(dest);
}

/* dl_dest_get - the destination called name, made if new */
static struct dl_dest *
dl_dest_get(struct deliver *d, const char *name)
{
	struct dl_dest *dest;

	if ((dest = dl_dest_find(d, name)) != NULL)
		return dest;
	dest = xcalloc(1, sizeof(*dest));
	dest->d = d;
	dest->name = xstrdup(name);
	if ((dest->pause_ev = evtimer_new(d->base, dl_dest_pause_cb, dest)) ==
	    NULL)
		log_fatalx("deliver: cannot make an event");
	TAILQ_INSERT_TAIL(&d->dests, dest, entry);
	return dest;
}

/* dl_paused - relay.pause keeps groups from dest now */
static bool
dl_paused(const struct deliver *d, const struct dl_dest *dest)
{
	return d->cfg->relay.pause > 0 && dest != NULL && (dest->claimed ||
	    evtimer_pending(dest->pause_ev, NULL));
}

/* dl_claim - with relay.pause, g holds dest's turn until its
   transaction ends */
static void
dl_claim(struct dl_group *g, struct dl_dest *dest)
{
	if (g->a->d->cfg->relay.pause == 0)
		return;
	dest->claimed = true;
	g->claim = dest;
}

/* dl_unclaim - give dest's turn back; after a transaction (sent), the
   next one waits relay.pause */
static void
dl_unclaim(struct dl_group *g, bool sent)
{
	struct dl_dest *dest = g->claim;
	struct timeval tv;

	if (dest == NULL)
		return;
	g->claim = NULL;
	dest->claimed = false;
	if (sent) {
		tv.tv_sec = dest->d->cfg->relay.pause;
		tv.tv_usec = 0;
		evtimer_add(dest->pause_ev, &tv);
	}
	dl_wake(dest->d);
	dl_dest_gc(dest);
}

/* --- connections --- */

/* dl_conn_forget - drop dc from the books (its smtpc is gone or no
   longer ours) */
static void
dl_conn_forget(struct dl_conn *dc)
{
	struct deliver *d = dc->d;

	TAILQ_REMOVE(dc->state == DC_IDLE ? &d->idle : &d->active, dc, entry);
	d->nconns--;
	dc->dest->nconns--;
	if (dc->g != NULL)
		dc->g->dc = NULL;
	dl_dest_gc(dc->dest);
	event_free(dc->idle_ev);
	free(dc->relay);
	free(dc->peer);
	free(dc);
	dl_wake(d);
}

/* dl_conn_close - QUIT dc (no callback after) and forget it */
static void
dl_conn_close(struct dl_conn *dc, const char *why)
{
	log_info("relay=%s closing the connection: %s (messages=%u)",
	    dc->relay, why, dc->uses);
	smtpc_quit(dc->sc);
	dl_conn_forget(dc);
}

/* dl_conn_idle_cb - an idle connection was not needed in time */
static void
dl_conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dl_conn_close(arg, "idle");
}

/* dl_conn_idle - the transaction is over: cache dc for a while */
static void
dl_conn_idle(struct dl_conn *dc)
{
	struct deliver *d = dc->d;
	struct timeval tv = { DL_IDLE_TIMEOUT, 0 };

	TAILQ_REMOVE(&d->active, dc, entry);
	dc->state = DC_IDLE;
	dc->g = NULL;
	TAILQ_INSERT_TAIL(&d->idle, dc, entry);
	evtimer_add(dc->idle_ev, &tv);
	dl_wake(d);
}

/* dl_conn_take - g uses the idle connection dc */
static void
dl_conn_take(struct dl_conn *dc, struct dl_group *g)
{
	struct deliver *d = dc->d;

	evtimer_del(dc->idle_ev);
	TAILQ_REMOVE(&d->idle, dc, entry);
	dc->state = DC_BUSY;
	TAILQ_INSERT_TAIL(&d->active, dc, entry);
	dc->g = g;
	g->dc = dc;
}

/* dl_peer_name - what smtpc verifies and sends as SNI: the host, or
   NULL for an address literal (it has no name) */
static const char *
dl_peer_name(const char *host)
{
	unsigned char tmp[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, host, tmp) == 1 ||
	    inet_pton(AF_INET6, host, tmp) == 1)
		return NULL;
	return host;
}

/* dl_tls - the smtpc TLS policy for g */
static enum smtpc_tls
dl_tls(const struct dl_group *g)
{
	const struct relay_config *rc = &g->a->d->cfg->relay;
	enum relay_tls t = g->smarthost ? rc->smarthost.tls :
	    g->route != NULL ? g->route->tls : rc->tls;

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

/* dl_no_verify - g's connections only record whether the certificate
   verifies */
static bool
dl_no_verify(const struct dl_group *g)
{
	return g->smarthost && !g->a->d->cfg->relay.smarthost.verify;
}

/* dl_login - g's AUTH login, or NULL */
static const char *
dl_login(const struct dl_group *g)
{
	return g->smarthost ? g->a->d->cfg->relay.smarthost.login : NULL;
}

/* dl_conn_fits - dc may carry g's transaction: same destination, TLS
   policy, verification, peer name and AUTH login */
static bool
dl_conn_fits(const struct dl_conn *dc, const struct dl_dest *dest,
    const struct dl_group *g)
{
	return dc->dest == dest && dc->tls == dl_tls(g) &&
	    dc->no_verify == dl_no_verify(g) &&
	    dl_streq(dc->peer, dl_peer_name(g->mx[g->imx].name)) &&
	    dl_streq(dc->login, dl_login(g));
}

/* dl_conn_cached - the most recently idle connection that fits g, or
   NULL */
static struct dl_conn *
dl_conn_cached(struct deliver *d, const struct dl_dest *dest,
    const struct dl_group *g)
{
	struct dl_conn *dc;

	TAILQ_FOREACH_REVERSE(dc, &d->idle, dl_conns, entry)
		if (dl_conn_fits(dc, dest, g))
			return dc;
	return NULL;
}

/* dl_evict - close the least recently used idle connection (to dest,
   or anywhere when dest is NULL); false if there is none */
static bool
dl_evict(struct deliver *d, const struct dl_dest *dest, const char *why)
{
	struct dl_conn *dc;

	TAILQ_FOREACH(dc, &d->idle, entry)
		if (dest == NULL || dc->dest == dest) {
			dl_conn_close(dc, why);
			return true;
		}
	return false;
}

/* --- groups and attempts --- */

/* dl_attempt_free - unlink and free an attempt; its groups hold no
   connection or pause turn (they finished, or deliver_free has dropped
   those already) */
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
		if (g->waiting)
			TAILQ_REMOVE(&a->d->waiting, g, wentry);
		free(g->domain);
		free(g->hop);
		free(g->site);
		free(g->idx);
		free(g->addrs);
		for (i = 0; i < g->nmx; i++)
			free(g->mx[i].name);
		free(g->mx);
		free(g->ips);
		free(g->dest);
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
	dl_site_end(g);
	dl_release(g->a);
}

/* dl_fail_all - every recipient of g gets the same outcome */
static void
dl_fail_all(struct dl_group *g, int code, const char *enhanced,
    const char *text, const char *relay)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		g->a->rcpt_cb(g->a->cookie, g->idx[i], code, enhanced, text,
		    relay);
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
	if (g->last.code < 500)
		dl_site_down(g);
	dl_fail_all(g, g->last.code, g->last.enhanced, g->last.text, where);
}

/* dl_all_lost - no recipient got a reply: the connection was lost (or
   timed out) before anything was accepted */
static bool
dl_all_lost(const struct smtpc_reply *rcpt, size_t nrcpts)
{
	size_t i;

	for (i = 0; i < nrcpts; i++)
		if (rcpt[i].code != 0)
			return false;
	return nrcpts > 0;
}

/* dl_retry_fresh - the cached connection g used was dead: try again on
   a new one (once: g->fresh stays set for this address) */
static void
dl_retry_fresh(struct dl_group *g)
{
	log_info("id=%s relay=%s the reused connection was closed by the "
	    "server; retrying on a new one", g->a->id, g->relay);
	g->reused = false;
	g->fresh = true;
	dl_try(g);
}

/* dl_done - the transaction's outcome per recipient */
static void
dl_done(void *arg, struct smtpc *conn, const struct smtpc_reply *rcpt,
    size_t nrcpts, bool usable)
{
	struct dl_conn *dc = arg;
	struct dl_group *g = dc->g;
	bool dead;
	size_t i;

	(void)conn;
	dc->g = NULL;
	g->dc = NULL;
	dead = g->reused && !usable && dl_all_lost(rcpt, nrcpts);
	if (!usable)
		dl_conn_forget(dc);		/* smtpc freed it */
	else if (dc->uses >= DL_CONN_MAX_MSGS)
		dl_conn_close(dc, "message limit");
	else
		dl_conn_idle(dc);
	if (dead) {
		dl_unclaim(g, false);
		dl_retry_fresh(g);
		return;
	}
	dl_unclaim(g, true);
	for (i = 0; i < nrcpts && i < g->n; i++)
		g->a->rcpt_cb(g->a->cookie, g->idx[i], rcpt[i].code,
		    rcpt[i].enhanced, rcpt[i].text, g->relay);
	dl_group_done(g);
}

/* dl_send - g's transaction on its connection, which is ready */
static void
dl_send(struct dl_group *g)
{
	struct dl_attempt *a = g->a;
	struct dl_conn *dc = g->dc;
	struct smtpc_txn txn;
	bool reused = g->reused;

	memset(&txn, 0, sizeof(txn));
	txn.sender = a->sender;
	txn.rcpts = g->addrs;
	txn.nrcpts = g->n;
	txn.fd = a->fd;
	txn.start = a->start;
	txn.size = a->size;
	txn.prepend = a->prepend;
	txn.prepend_len = a->prepend_len;
	txn.body_8bit = a->body_8bit;
	txn.smtputf8 = a->smtputf8;
	dc->state = DC_BUSY;
	dc->uses++;
	if (smtpc_send(dc->sc, &txn, dl_done, dc) == 0)
		return;
	smtpc_abort(dc->sc);
	dl_conn_forget(dc);
	dl_unclaim(g, false);
	if (reused) {
		dl_retry_fresh(g);
		return;
	}
	dl_set_last(g, 0, "4.3.0", "cannot start the transaction", true);
	dl_next_addr(g);
}

/* dl_ready - a new connection is ready for the transaction, or failed */
static void
dl_ready(void *arg, struct smtpc *conn, const struct smtpc_peer *peer,
    const struct smtpc_reply *r, bool next_host)
{
	struct dl_conn *dc = arg;
	struct dl_group *g = dc->g;
	struct dl_attempt *a = g->a;

	(void)conn;
	if (r != NULL) {
		dl_conn_forget(dc);		/* smtpc freed it */
		dl_unclaim(g, false);
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
	dl_site_up(a->d, g->site);
	log_info("id=%s relay=%s connected%s%s%s", a->id, g->relay,
	    peer->tls ? " tls=" : "", peer->tls ? peer->tls_version : "",
	    peer->tls ? (peer->verified ? " verified" : " unverified") : "");
	dl_send(g);
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

/* dl_open - a new connection for g to its current address */
static void
dl_open(struct dl_group *g, struct dl_dest *dest)
{
	struct deliver *d = g->a->d;
	const struct config *cfg = d->cfg;
	const char *host = g->mx[g->imx].name;
	struct sockaddr_storage src;
	struct smtpc_params p;
	struct dl_conn *dc;
	char *err = NULL;

	memset(&p, 0, sizeof(p));
	p.addr = (struct sockaddr *)&g->ss;
	p.addrlen = g->ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	if ((p.sourcelen = dl_source(cfg, g->ss.ss_family, &src)) > 0)
		p.source = (struct sockaddr *)&src;
	p.helo = cfg->hostname;
	p.peer_name = dl_peer_name(host);
	p.tls = dl_tls(g);
	p.no_verify = dl_no_verify(g);
	p.ssl_ctx = d->ssl_ctx;
	p.auth_login = dl_login(g);
	if (g->smarthost)
		p.auth_password = cfg->relay.smarthost.password;

	dc = xcalloc(1, sizeof(*dc));
	dc->d = d;
	dc->dest = dest;
	dc->state = DC_OPENING;
	dc->g = g;
	dc->relay = xstrdup(g->relay);
	dc->tls = p.tls;
	dc->no_verify = p.no_verify;
	dc->peer = p.peer_name ? xstrdup(p.peer_name) : NULL;
	dc->login = p.auth_login;
	if ((dc->idle_ev = evtimer_new(d->base, dl_conn_idle_cb, dc)) == NULL)
		log_fatalx("deliver: cannot make an event");
	TAILQ_INSERT_TAIL(&d->active, dc, entry);
	d->nconns++;
	dest->nconns++;
	g->dc = dc;
	g->reused = false;
	if ((dc->sc = smtpc_open(d->base, &p, dl_ready, dc, &err)) != NULL)
		return;
	dl_conn_forget(dc);
	dl_unclaim(g, false);
	dl_set_last(g, 0, "4.4.1", err ? err : "cannot connect", true);
	free(err);
	dl_next_addr(g);
}

/*
 * dl_turn - what g may do now, in this order: wait out the pause; reuse
 * an idle connection that fits; open a new one within
 * relay.connections_per_host and relay.connections, closing idle
 * connections (the destination's own, else the least recently used
 * anywhere) to make room. *why says what g waits for.
 */
static enum dl_turn
dl_turn(struct dl_group *g, struct dl_conn **dcp, const char **why)
{
	struct deliver *d = g->a->d;
	const struct relay_config *rc = &d->cfg->relay;
	struct dl_dest *dest = dl_dest_find(d, g->dest);

	if (dl_paused(d, dest)) {
		*why = "relay.pause";
		return DL_WAIT;
	}
	if (dest != NULL && !g->fresh &&
	    (*dcp = dl_conn_cached(d, dest, g)) != NULL)
		return DL_REUSE;
	/* dl_evict may free dest: not used after this */
	if (dest != NULL && dest->nconns >= rc->connections_per_host &&
	    !dl_evict(d, dest, "room for another kind of connection")) {
		*why = "relay.connections_per_host";
		return DL_WAIT;
	}
	if (d->nconns >= rc->connections &&
	    !dl_evict(d, NULL, "room for another destination")) {
		*why = "relay.connections";
		return DL_WAIT;
	}
	return DL_OPEN;
}

/*
 * dl_try - a connection for g's current address: a cached one, a new
 * one, or a place in the queue. A group arriving while others wait
 * queues behind them (the next scan comes at once), so that turns go
 * first come, first served.
 */
static void
dl_try(struct dl_group *g)
{
	struct deliver *d = g->a->d;
	struct dl_conn *dc = NULL;
	struct dl_dest *dest;
	const char *why = NULL;
	enum dl_turn turn;

	if (!g->waiting && !TAILQ_EMPTY(&d->waiting))
		turn = DL_WAIT;
	else
		turn = dl_turn(g, &dc, &why);
	if (turn == DL_WAIT) {
		if (why != NULL && !g->told) {
			g->told = true;
			log_info("id=%s relay=%s waiting for %s", g->a->id,
			    g->relay, why);
		}
		if (!g->waiting) {
			g->waiting = true;
			g->gen = d->gen;
			TAILQ_INSERT_TAIL(&d->waiting, g, wentry);
			if (why == NULL)
				dl_wake(d);
		}
		return;
	}
	if (g->waiting) {
		g->waiting = false;
		TAILQ_REMOVE(&d->waiting, g, wentry);
	}
	g->told = false;
	dest = dl_dest_get(d, g->dest);
	dl_claim(g, dest);
	if (turn == DL_OPEN) {
		dl_open(g, dest);
		return;
	}
	dl_conn_take(dc, g);
	g->reused = true;
	dl_site_up(d, g->site);
	log_info("id=%s relay=%s reused connection (message %u on it)",
	    g->a->id, g->relay, dc->uses + 1);
	dl_send(g);
}

/*
 * dl_wake_cb - give every waiting group its chance, oldest first. A
 * group queued during this scan (its gen is the scan's) waits for the
 * next one. Trying a group never frees another waiting group (an
 * attempt is freed only when all its groups are done), so next stays
 * valid.
 */
static void
dl_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *d = arg;
	struct dl_group *g, *next;

	(void)fd;
	(void)what;
	d->gen++;
	for (g = TAILQ_FIRST(&d->waiting); g != NULL; g = next) {
		next = TAILQ_NEXT(g, wentry);
		if (g->gen != d->gen)
			dl_try(g);
	}
}

/* dl_next_addr - the current host's next address */
static void
dl_next_addr(struct dl_group *g)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&g->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&g->ss;
	const char *host;
	char addr[INET6_ADDRSTRLEN];

	if (g->iip == g->nips) {
		g->imx++;
		dl_next_host(g);
		return;
	}
	host = g->mx[g->imx].name;
	g->ss = g->ips[g->iip++];
	free(g->dest);
	if (g->ss.ss_family == AF_INET) {
		s4->sin_port = htons(g->port);
		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		g->dest = xasprintf("%s:%u", addr, g->port);
	} else {
		s6->sin6_port = htons(g->port);
		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		g->dest = xasprintf("[%s]:%u", addr, g->port);
	}
	free(g->relay);
	g->relay = xasprintf("%s[%s]:%u", host, addr, g->port);
	g->fresh = false;
	g->told = false;
	dl_try(g);
}

/* dl_addrs_answer - the current host's addresses */
static void
dl_addrs_answer(void *arg, enum dns_status st,
    const struct sockaddr_storage *addrs, size_t n,
    const struct dns_sec *sec)
{
	struct dl_group *g = arg;
	const char *host = g->mx[g->imx].name;
	char *text;

	(void)sec;	/* XXX DANE (issue 15) decides with it */
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
    size_t n, const struct dns_sec *sec)
{
	struct dl_group *g = arg;
	char *text;
	size_t i;

	(void)sec;	/* XXX DANE (issue 15) decides with it */
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

/* dl_group_start - resolve the group's next hop; a site that is down
   defers its recipients at once, without a connection */
static void
dl_group_start(struct dl_group *g)
{
	struct dl_site *site;
	char *text, when[LOG_UTC_LEN];

	if (g->skip && (site = dl_site_find(g->a->d, g->site)) != NULL) {
		text = xasprintf("not tried: %s is down (next try %s)",
		    site->name, log_utc(site->until, when));
		dl_fail_all(g, 0, "4.4.1", text, site->name);
		free(text);
		return;
	}
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

/* dl_group_for - the group recipient addr belongs in, made if new */
static struct dl_group *
dl_group_for(struct dl_attempt *a, const char *addr)
{
	const struct config *cfg = a->d->cfg;
	const struct route_config *rt;
	struct dl_group *g;
	const char *at = strrchr(addr, '@');
	char *domain, *hop = NULL, *p, key[512];
	unsigned port = cfg->relay.port;
	bool smarthost = false;

	domain = xstrdup(at ? at + 1 : "");
	for (p = domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if ((rt = config_route(cfg, domain)) != NULL) {
		hop = xstrdup(rt->host);
		port = rt->port ? rt->port : cfg->relay.port;
	} else if (cfg->relay.mode == RELAY_SMARTHOST) {
		hop = xstrdup(cfg->relay.smarthost.host);
		port = cfg->relay.smarthost.port;
		smarthost = true;
	}
	for (g = a->groups; g != NULL; g = g->next)
		if (hop != NULL ? g->hop != NULL && strcmp(g->hop, hop) == 0 &&
		    g->port == port && g->route == rt : g->hop == NULL &&
		    strcmp(g->domain, domain) == 0)
			break;
	if (g == NULL) {
		g = xcalloc(1, sizeof(*g));
		g->a = a;
		g->domain = domain;
		g->hop = hop;
		g->port = port;
		g->smarthost = smarthost;
		g->route = rt;
		dl_site_key(cfg, addr, key, sizeof(key));
		g->site = xstrdup(key);
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

/*
 * dl_sites_mark - a group whose site is down is the site's probe if it
 * is due, else it is not tried. Marked here, not when the group starts
 * from the loop, so that down() already sees the probe in flight.
 */
static void
dl_sites_mark(struct dl_attempt *a)
{
	struct dl_site *site;
	struct dl_group *g;
	time_t now = time(NULL);

	for (g = a->groups; g != NULL; g = g->next) {
		if ((site = dl_site_find(a->d, g->site)) == NULL)
			continue;
		if (dl_site_probe_due(site, now)) {
			g->probe = true;
			site->probing = true;
			/* whoever asks meanwhile waits for its outcome */
			site->until = now + site->backoff;
			log_debug("id=%s relay=%s probing a destination that "
			    "is down", a->id, site->name);
		} else
			g->skip = true;
	}
}

/* deliver_start - one attempt for e's pending recipients */
int
deliver_start(struct deliver *d, struct queue *q, const struct envelope *e,
    const char *sender, transport_rcpt_cb rcpt_cb, transport_done_cb done_cb,
    uint64_t cookie, char **err)
{
	struct timeval now = { 0, 0 };
	struct dl_attempt *a;
	struct dl_group *g;
	size_t i;
	off_t start;
	int fd;

	*err = NULL;
	if ((fd = queue_open_message(q, e->id, &start)) == -1) {
		*err = xasprintf("cannot open the queued message: %s",
		    strerror(errno));
		return -1;
	}
	a = xcalloc(1, sizeof(*a));
	a->d = d;
	a->cookie = cookie;
	a->fd = fd;
	a->start = start;
	snprintf(a->id, sizeof(a->id), "%s", e->id);
	a->sender = xstrdup(sender);
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
	dl_sites_mark(a);
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
	TAILQ_INIT(&d->active);
	TAILQ_INIT(&d->idle);
	TAILQ_INIT(&d->dests);
	TAILQ_INIT(&d->waiting);
	TAILQ_INIT(&d->down);
	if ((d->wake = event_new(base, -1, 0, dl_wake_cb, d)) == NULL) {
		*err = xstrdup("cannot make an event");
		free(d);
		return NULL;
	}
	if ((d->ssl_ctx = smtpc_tls_ctx(cfg->relay.ca_file, err)) == NULL) {
		event_free(d->wake);
		free(d);
		return NULL;
	}
	return d;
}

/* deliver_free - abort everything (in flight, idle, waiting), no
   callbacks */
void
deliver_free(struct deliver *d)
{
	struct dl_conn *dc;
	struct dl_dest *dest;
	struct dl_site *site;

	if (d == NULL)
		return;
	while ((dc = TAILQ_FIRST(&d->active)) != NULL ||
	    (dc = TAILQ_FIRST(&d->idle)) != NULL) {
		TAILQ_REMOVE(dc->state == DC_IDLE ? &d->idle : &d->active, dc,
		    entry);
		if (dc->g != NULL) {
			dc->g->dc = NULL;
			dc->g->claim = NULL;
		}
		smtpc_abort(dc->sc);
		event_free(dc->idle_ev);
		free(dc->relay);
		free(dc->peer);
		free(dc);
	}
	while (d->attempts != NULL)
		dl_attempt_free(d->attempts);
	while ((dest = TAILQ_FIRST(&d->dests)) != NULL) {
		TAILQ_REMOVE(&d->dests, dest, entry);
		event_free(dest->pause_ev);
		free(dest->name);
		free(dest);
	}
	while ((site = TAILQ_FIRST(&d->down)) != NULL)
		dl_site_free(d, site);
	event_free(d->wake);
	SSL_CTX_free(d->ssl_ctx);
	free(d);
}

/* ---- the network as a transport (relay/transport.h) ---- */

struct dl_transport {
	struct transport	 t;	/* first: the scheduler's handle */
	struct deliver		*d;
	struct queue		*q;
};

/* dl_transport_start - transport start: deliver_start on the queue */
static int
dl_transport_start(struct transport *t, const struct envelope *e,
    const char *sender, transport_rcpt_cb rcpt_cb, transport_done_cb done_cb,
    uint64_t cookie, char **err)
{
	struct dl_transport *dt = (struct dl_transport *)t;

	return deliver_start(dt->d, dt->q, e, sender, rcpt_cb, done_cb,
	    cookie, err);
}

/*
 * dl_transport_down - transport down: every pending recipient of e
 * goes to a site that is down and not due for its probe (the earliest
 * of those sites names the wait)
 */
static time_t
dl_transport_down(struct transport *t, const struct envelope *e,
    uint32_t *wait)
{
	struct deliver *d = ((struct dl_transport *)t)->d;
	struct dl_site *site;
	time_t now = time(NULL), until = 0, u;
	char key[512];
	size_t i;

	*wait = 0;
	dl_sites_gc(d, now);
	if (TAILQ_EMPTY(&d->down))
		return 0;
	for (i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i].status != RCPT_PENDING)
			continue;
		dl_site_key(d->cfg, e->rcpts[i].addr, key, sizeof(key));
		if ((site = dl_site_find(d, key)) == NULL ||
		    dl_site_probe_due(site, now))
			return 0;
		/* a probe outlasting its back-off: wait as long again (its
		   outcome wakes the waiting, or sets a new until) */
		u = site->until > now ? site->until : now + site->backoff;
		if (until == 0 || u < until) {
			until = u;
			*wait = site->serial;
		}
	}
	return until;
}

/* dl_transport_forget - transport forget: no site is down any more; a
   probe in flight finds its site gone and, failing, marks it down anew */
static void
dl_transport_forget(struct transport *t)
{
	struct deliver *d = ((struct dl_transport *)t)->d;
	struct dl_site *site;

	while ((site = TAILQ_FIRST(&d->down)) != NULL) {
		log_info("relay=%s destination forgotten as down (queue "
		    "flush)", site->name);
		dl_site_free(d, site);
	}
}

/*
 * dl_transport_still_down - transport still_down: site number *wait is
 * down, and not due for its probe; for *wait 0, the smarthost when it
 * is where everything goes (no routes)
 */
static time_t
dl_transport_still_down(struct transport *t, uint32_t *wait)
{
	struct deliver *d = ((struct dl_transport *)t)->d;
	struct dl_site *site;
	time_t now = time(NULL);
	char key[512];

	if (*wait == 0) {
		if (d->cfg->relay.mode != RELAY_SMARTHOST ||
		    d->cfg->relay.nroutes > 0 || TAILQ_EMPTY(&d->down))
			return 0;
		dl_site_key(d->cfg, "", key, sizeof(key));
		if ((site = dl_site_find(d, key)) == NULL)
			return 0;
	} else {
		TAILQ_FOREACH(site, &d->down, entry)
			if (site->serial == *wait)
				break;
		if (site == NULL)
			return 0;
	}
	if (dl_site_probe_due(site, now))
		return 0;
	*wait = site->serial;
	return site->until > now ? site->until : now + site->backoff;
}

/* dl_transport_free - transport free: deliver_free, no callbacks */
static void
dl_transport_free(struct transport *t)
{
	struct dl_transport *dt = (struct dl_transport *)t;

	deliver_free(dt->d);
	free(dt);
}

/* deliver_transport_new - the engine behind the transport interface */
struct transport *
deliver_transport_new(struct event_base *base, const struct config *cfg,
    struct dns *dns, struct queue *q, char **err)
{
	struct dl_transport *dt;
	struct deliver *d;

	if ((d = deliver_new(base, cfg, dns, err)) == NULL)
		return NULL;
	dt = xcalloc(1, sizeof(*dt));
	dt->t.name = cfg->relay.mode == RELAY_SMARTHOST ? "smarthost" : "mx";
	dt->t.start = dl_transport_start;
	dt->t.drain = NULL;	/* idle connections stay until the end, as
				   before: deliver_free closes them */
	dt->t.free = dl_transport_free;
	dt->t.down = dl_transport_down;
	dt->t.still_down = dl_transport_still_down;
	dt->t.forget = dl_transport_forget;
	d->t = &dt->t;
	dt->d = d;
	dt->q = q;
	return &dt->t;
}
