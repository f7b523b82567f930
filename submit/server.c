/*
 * server - listeners, connection limits and shared session state; see
 * server.h.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "common/alloc.h"
#include "common/log.h"
#include "submit/auth.h"
#include "submit/guard.h"
#include "submit/server.h"
#include "submit/session.h"
#include "submit/tls.h"

#define IPCOUNT_BUCKETS	1024
#define LISTEN_BACKLOG	511

struct ipcount {
	struct ipcount	*next;
	unsigned	 n;
	char		 ip[INET6_ADDRSTRLEN];
};


/* ipcount_bucket - hash of an address string (FNV-1a) */
static size_t
ipcount_bucket(const char *ip)
{
	unsigned h = 2166136261u;

	for (; *ip; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % IPCOUNT_BUCKETS;
}

/* ipcount_find - the counter for ip, created at zero if create */
static struct ipcount *
ipcount_find(struct server *srv, const char *ip, int create)
{
	struct ipcount **pp = &srv->ipcounts[ipcount_bucket(ip)], *c;

	for (c = *pp; c; c = c->next)
		if (strcmp(c->ip, ip) == 0)
			return c;
	if (!create)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	snprintf(c->ip, sizeof(c->ip), "%s", ip);
	c->next = *pp;
	*pp = c;
	return c;
}

/* server_session_done - drop the counts a session held */
void
server_session_done(struct server *srv, const char *ip)
{
	struct ipcount **pp = &srv->ipcounts[ipcount_bucket(ip)], *c;

	if (srv->nsessions == 0)
		log_panic("session count underflow");
	srv->nsessions--;
	for (; (c = *pp) != NULL; pp = &c->next) {
		if (strcmp(c->ip, ip) != 0)
			continue;
		if (--c->n == 0) {
			*pp = c->next;
			free(c);
		}
		return;
	}
	log_panic("no connection count for %s", ip);
}

/* refuse - tell a client over a limit, without spending a session */
static void
refuse(const struct server *srv, const struct listen_config *lc, int fd,
    const char *ip, const char *why)
{
	char line[512];
	int n;

	log_info("refuse client=%s listener=%s:%d reason=\"%s\"", ip,
	    lc->address, lc->port, why);
	if (lc->tls != LISTEN_TLS_IMPLICIT) {
		n = snprintf(line, sizeof(line), "421 4.7.0 %s %s, try again "
		    "later\r\n", srv->cfg->hostname, why);
		if (n > 0 && (size_t)n < sizeof(line))
			(void)send(fd, line, (size_t)n, MSG_DONTWAIT |
			    MSG_NOSIGNAL);
	}
	close(fd);
}

/* accept_cb - a new connection on one of our listeners */
static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct listener_arg *la = arg;
	struct server *srv = la->srv;
	const struct limits_config *lim = &srv->cfg->limits;
	char ip[INET6_ADDRSTRLEN] = "unknown";
	struct ipcount *c;
	const char *why;
	int on = 1;

	(void)l;
	(void)salen;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip,
		    sizeof(ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr,
		    ip, sizeof(ip));
	if (srv->nsessions >= lim->connections) {
		refuse(srv, la->lc, fd, ip, "Too many connections");
		return;
	}
	c = ipcount_find(srv, ip, 0);
	if (c && c->n >= lim->connections_per_ip &&
	    !config_exempt(srv->cfg, ip)) {
		refuse(srv, la->lc, fd, ip,
		    "Too many connections from your address");
		return;
	}
	if ((why = guard_connect(srv->cfg, ip, time(NULL))) != NULL) {
		refuse(srv, la->lc, fd, ip, why);
		return;
	}
	if (evutil_make_socket_nonblocking(fd) == -1) {
		log_warn("client=%s: cannot make socket non-blocking", ip);
		close(fd);
		return;
	}
	/* Replies leave in whole batches already; Nagle would only hold the
	   first one after a TLS 1.3 handshake back for a delayed ACK. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	c = ipcount_find(srv, ip, 1);
	c->n++;
	srv->nsessions++;
	session_new(srv, la->lc, fd, sa, ip);
}

/* accept_error_cb - accept(2) failed: log, keep listening (EMFILE etc) */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct listener_arg *la = arg;

	(void)l;
	log_warn("accept on %s:%d", la->lc->address, la->lc->port);
}

/* listen_socket - bind one listener's socket; -1 with *err */
static int
listen_socket(const struct listen_config *lc, char **err)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, lc->address,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(lc->port);
		sslen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, lc->address,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(lc->port);
		sslen = sizeof(struct sockaddr_in6);
	} else {
		*err = xasprintf("listener %s:%d: not a numeric address",
		    lc->address, lc->port);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		goto fail;
	if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1)
		goto fail;
	if (listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	*err = xasprintf("listener %s:%d: %s", lc->address, lc->port,
	    strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/* server_open - bind all listeners and prepare shared state */
int
server_open(struct server *srv, const struct config *cfg,
    struct event_base *base, struct queue *queue, char **err)
{
	struct listener_arg *la;
	const char *aerr;
	size_t i;
	int fd, need_tls = 0;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->base = base;
	srv->queue = queue;
	srv->ipcounts = xcalloc(IPCOUNT_BUCKETS, sizeof(*srv->ipcounts));

	for (i = 0; i < cfg->nlisten; i++)
		if (cfg->listen[i].tls != LISTEN_TLS_NONE)
			need_tls = 1;
	if (need_tls && (srv->ssl_ctx = tls_server_ctx(cfg->tls_certificate,
	    cfg->tls_key, err)) == NULL)
		return -1;

	if (auth_init(cfg, &aerr) == -1) {
		*err = xasprintf("SASL: %s", aerr);
		return -1;
	}
	srv->auth_mechs = session_auth_mechanisms();

	srv->listeners = xcalloc(cfg->nlisten, sizeof(*srv->listeners));
	srv->largs = xcalloc(cfg->nlisten, sizeof(*srv->largs));
	for (i = 0; i < cfg->nlisten; i++) {
		if ((fd = listen_socket(&cfg->listen[i], err)) == -1)
			return -1;
		la = &srv->largs[i];
		la->srv = srv;
		la->lc = &cfg->listen[i];
		srv->listeners[i] = evconnlistener_new(base, accept_cb, la,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
		if (srv->listeners[i] == NULL) {
			*err = xasprintf("listener %s:%d: libevent failed",
			    la->lc->address, la->lc->port);
			close(fd);
			return -1;
		}
		srv->nlisteners++;
		evconnlistener_set_error_cb(srv->listeners[i],
		    accept_error_cb);
		log_info("listen address=%s port=%d tls=%s%s",
		    la->lc->address, la->lc->port,
		    la->lc->tls == LISTEN_TLS_IMPLICIT ? "implicit" :
		    la->lc->tls == LISTEN_TLS_STARTTLS ? "starttls" : "none",
		    la->lc->trusted ? " trusted=yes" : "");
	}
	return 0;
}

/* server_close - stop listening and free shared state (sessions must be
   gone already) */
void
server_close(struct server *srv)
{
	struct ipcount *c, *next;
	size_t i;

	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_free(srv->listeners[i]);
	free(srv->listeners);
	free(srv->largs);
	if (srv->ipcounts) {
		for (i = 0; i < IPCOUNT_BUCKETS; i++)
			for (c = srv->ipcounts[i]; c; c = next) {
				next = c->next;
				free(c);
			}
		free(srv->ipcounts);
	}
	if (srv->ssl_ctx)
		SSL_CTX_free(srv->ssl_ctx);
	free(srv->auth_mechs);
	memset(srv, 0, sizeof(*srv));
}
