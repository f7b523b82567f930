/*
 * server - listeners, connection limits and shared session state; see
 * server.h.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "common/alloc.h"
#include "common/io.h"
#include "common/log.h"
#include "submit/auth.h"
#include "submit/guard.h"
#include "submit/reply.h"
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

/* refuse_why - the reason a connection refusal logs */
static const char *
refuse_why(enum reply_id id)
{
	switch (id) {
	case REPLY_CONN_TOO_MANY:
		return "Too many connections";
	case REPLY_CONN_PER_IP:
		return "Too many connections from your address";
	case REPLY_CONN_RATE:
		return "Too many new connections from your address";
	case REPLY_CONN_AUTH_LOCKOUT:
		return "Too many failed authentications from your address";
	default:
		return "refused";
	}
}

/*
 * refuse_send - count reply id (its values follow it, the host name
 * first), send it best-effort if send_it, and close the socket
 */
static void
refuse_send(int fd, bool send_it, enum reply_id id, ...)
{
	char line[REPLY_MAX + 3];
	va_list ap;
	size_t n;

	va_start(ap, id);
	n = reply_vmake(line, sizeof(line) - 2, id, ap);
	va_end(ap);
	if (send_it) {
		line[n++] = '\r';
		line[n++] = '\n';
		(void)send(fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	close(fd);
}

/* refuse - tell a client over a limit, without spending a session */
static void
refuse(const struct server *srv, const struct listen_config *lc, int fd,
    const char *ip, enum reply_id id)
{
	log_info("refuse client=%s listener=%s:%d reason=\"%s\"", ip,
	    lc->address, lc->port, refuse_why(id));
	refuse_send(fd, lc->tls != LISTEN_TLS_IMPLICIT, id,
	    srv->cfg->hostname);
}

/* local_sender_of - the local_senders entry of user name, or NULL */
static const struct local_sender *
local_sender_of(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nlocal_senders; i++)
		if (strcmp(cfg->local_senders[i].user, name) == 0)
			return &cfg->local_senders[i];
	return NULL;
}

/*
 * accept_local - a connection on the local socket (postern sendmail): the
 * kernel says who the caller is (SO_PEERCRED), never the client; a user
 * without a local_senders entry is refused before any session memory is
 * spent. XXX getpwuid_r reads the password database on the loop thread
 * (a local file here; an NSS module that goes to the network would
 * block).
 */
static void
accept_local(struct server *srv, int fd, struct sockaddr *sa)
{
	const struct local_sender *ls = NULL;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096], name[64];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("local socket: SO_PEERCRED");
		close(fd);
		return;
	}
	if (getpwuid_r(cred.uid, &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 &&
	    pwp != NULL) {
		snprintf(name, sizeof(name), "%s", pw.pw_name);
		ls = local_sender_of(srv->cfg, name);
	} else
		snprintf(name, sizeof(name), "#%u", (unsigned)cred.uid);
	if (ls == NULL || srv->nsessions >= srv->cfg->limits.connections) {
		log_info("refuse local user=%s uid=%u pid=%d reason=\"%s\"",
		    name, (unsigned)cred.uid, (int)cred.pid, ls == NULL ?
		    "no local_senders entry" : "too many connections");
		if (ls == NULL)
			refuse_send(fd, true, REPLY_CONN_LOCAL_USER,
			    srv->cfg->hostname, name, (unsigned)cred.uid);
		else
			refuse_send(fd, true, REPLY_CONN_TOO_MANY,
			    srv->cfg->hostname);
		return;
	}
	if (evutil_make_socket_nonblocking(fd) == -1) {
		log_warn("local user=%s: cannot make socket non-blocking",
		    name);
		close(fd);
		return;
	}
	ipcount_find(srv, SESSION_LOCAL_IP, 1)->n++;
	srv->nsessions++;
	session_new_local(srv, &srv->local_lc, fd, sa, ls, name,
	    (unsigned)cred.uid);
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
	enum reply_id why;
	int on = 1;
	bool exempt;

	(void)l;
	(void)salen;
	if (la->lc == &srv->local_lc) {
		accept_local(srv, fd, sa);
		return;
	}
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip,
		    sizeof(ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr,
		    ip, sizeof(ip));
	if (srv->nsessions >= lim->connections) {
		refuse(srv, la->lc, fd, ip, REPLY_CONN_TOO_MANY);
		return;
	}
	exempt = config_exempt(srv->cfg, ip);
	c = ipcount_find(srv, ip, 0);
	if (c && c->n >= lim->connections_per_ip && !exempt) {
		refuse(srv, la->lc, fd, ip, REPLY_CONN_PER_IP);
		return;
	}
	if ((why = guard_connect(srv->cfg, ip, exempt, time(NULL))) !=
	    REPLY_NONE) {
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
	session_new(srv, la->lc, fd, sa, ip, exempt);
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

/* listener_add - watch fd, a bound listening socket for lc; NULL with
   *err (fd closed) if libevent fails */
static struct listener_arg *
listener_add(struct server *srv, const struct listen_config *lc, int fd,
    char **err)
{
	struct listener_arg *la = xcalloc(1, sizeof(*la));

	la->srv = srv;
	la->lc = lc;
	la->l = evconnlistener_new(srv->base, accept_cb, la,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (la->l == NULL) {
		*err = xasprintf("listener %s:%d: libevent failed",
		    lc->address, lc->port);
		close(fd);
		free(la);
		return NULL;
	}
	evconnlistener_set_error_cb(la->l, accept_error_cb);
	srv->listeners = xreallocarray(srv->listeners, srv->nlisteners + 1,
	    sizeof(*srv->listeners));
	srv->listeners[srv->nlisteners++] = la;
	if (lc == &srv->local_lc)
		log_info("listen local socket=%s users=%zu", lc->address,
		    srv->cfg->nlocal_senders);
	else
		log_info("listen address=%s port=%d tls=%s%s", lc->address,
		    lc->port, lc->tls == LISTEN_TLS_IMPLICIT ? "implicit" :
		    lc->tls == LISTEN_TLS_STARTTLS ? "starttls" : "none",
		    lc->trusted ? " trusted=yes" : "");
	return la;
}

/* listener_open - bind and watch the TCP listener lc; -1 with *err */
static int
listener_open(struct server *srv, const struct listen_config *lc,
    char **err)
{
	int fd;

	if ((fd = listen_socket(lc, err)) == -1)
		return -1;
	return listener_add(srv, lc, fd, err) == NULL ? -1 : 0;
}

/* listener_drop - close listener i (the last one takes its place) */
static void
listener_drop(struct server *srv, size_t i)
{
	struct listener_arg *la = srv->listeners[i];

	if (la->l != NULL)
		evconnlistener_free(la->l);
	free(la);
	srv->listeners[i] = srv->listeners[--srv->nlisteners];
}

/* tls_policy_of - the TLS policy cfg asks for (pointers into cfg) */
static struct tls_policy
tls_policy_of(const struct config *cfg)
{
	struct tls_policy p;

	p.ciphers = cfg->tls_ciphers;
	p.ciphersuites = cfg->tls_ciphersuites;
	p.min_version = cfg->tls_min_version;
	return p;
}

/* tls_needed - does any listener of cfg use TLS? */
static bool
tls_needed(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nlisten; i++)
		if (cfg->listen[i].tls != LISTEN_TLS_NONE)
			return true;
	return false;
}

/* server_open - bind all listeners and prepare shared state */
int
server_open(struct server *srv, const struct config *cfg,
    struct event_base *base, struct queue *queue, char **err)
{
	struct tls_policy pol;
	const char *aerr;
	size_t i;
	int fd;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->base = base;
	srv->queue = queue;
	srv->ipcounts = xcalloc(IPCOUNT_BUCKETS, sizeof(*srv->ipcounts));

	pol = tls_policy_of(cfg);
	if (tls_needed(cfg) && (srv->ssl_ctx = tls_server_ctx(&pol,
	    cfg->tls_certificate, cfg->tls_key, err)) == NULL)
		return -1;
	if (auth_init(cfg, &aerr) == -1) {
		*err = xasprintf("SASL: %s", aerr);
		return -1;
	}
	srv->auth_mechs = session_auth_mechanisms();

	for (i = 0; i < cfg->nlisten; i++)
		if (listener_open(srv, &cfg->listen[i], err) == -1)
			return -1;
	if (cfg->nlocal_senders == 0)
		return 0;
	if ((fd = io_unix_listen("local socket", cfg->local_socket, 0666,
	    LISTEN_BACKLOG, err)) == -1)
		return -1;
	for (i = 0; i < cfg->nlocal_senders; i++)
		if (getpwnam(cfg->local_senders[i].user) == NULL)
			log_warnx("local_senders: there is no local user %s "
			    "(yet?): that entry matches nobody",
			    cfg->local_senders[i].user);
	srv->local_lc.address = cfg->local_socket;
	srv->local_lc.tls = LISTEN_TLS_NONE;
	return listener_add(srv, &srv->local_lc, fd, err) == NULL ? -1 : 0;
}

/* same_listener - does new describe the socket of the old one? */
static bool
same_listener(const struct listen_config *a, const struct listen_config *b)
{
	return a->port == b->port && strcmp(a->address, b->address) == 0;
}

/*
 * server_reload - see server.h. Checks everything that can fail first
 * (TLS files, SASL, new sockets), then swaps; on failure nothing of the
 * running state has changed.
 */
int
server_reload(struct server *srv, const struct config *cfg,
    struct keyring *keys, char **err)
{
	const struct config *old = srv->cfg;
	SSL_CTX *ctx = NULL;
	struct tls_policy pol;
	const char *aerr;
	size_t i, j, nold = srv->nlisteners;
	bool *keep = xcalloc(cfg->nlisten + 1, sizeof(*keep));

	if ((old->nlocal_senders > 0) != (cfg->nlocal_senders > 0) ||
	    (cfg->nlocal_senders > 0 &&
	    strcmp(old->local_socket, cfg->local_socket) != 0)) {
		*err = xasprintf("the local socket (local_socket, or "
		    "local_senders becoming empty or not) changes only at a "
		    "restart");
		free(keep);
		return -1;
	}
	pol = tls_policy_of(cfg);
	if (tls_needed(cfg) && (ctx = tls_server_ctx(&pol,
	    cfg->tls_certificate, cfg->tls_key, err)) == NULL) {
		if (srv->ssl_ctx == NULL || old->tls_certificate == NULL ||
		    strcmp(old->tls_certificate, cfg->tls_certificate) != 0 ||
		    strcmp(old->tls_key, cfg->tls_key) != 0) {
			free(keep);
			return -1;
		}
		/* The same files, unreadable now that we are no longer
		   root (a key kept 0600 root): keep the certificate and key
		   start-up read, under the new policy. */
		log_warnx("reload: %s; keeping the certificate loaded at "
		    "start (to have a reload read new ones, let user %s "
		    "read the certificate, the key and their directories: "
		    "INSTALL, step 5)", *err, cfg->user ? cfg->user : "-");
		free(*err);
		*err = NULL;
		if ((ctx = tls_server_ctx_from(&pol, srv->ssl_ctx, err)) ==
		    NULL) {
			free(keep);
			return -1;
		}
	}
	/* New sockets first: a port we may no longer bind (below 1024,
	   after the privilege drop) or one taken refuses the reload. */
	for (i = 0; i < cfg->nlisten; i++) {
		keep[i] = false;
		for (j = 0; j < nold; j++)
			if (srv->listeners[j]->lc != &srv->local_lc &&
			    same_listener(srv->listeners[j]->lc,
			    &cfg->listen[i]))
				keep[i] = true;
		if (!keep[i] && listener_open(srv, &cfg->listen[i], err) == -1)
			goto undo;
	}
	if (auth_init(cfg, &aerr) == -1) {
		*err = xasprintf("SASL: %s", aerr);
		goto undo;
	}
	/* Swap. Sessions in progress keep their own settings. */
	for (j = nold; j-- > 0;) {
		struct listener_arg *la = srv->listeners[j];

		if (la->lc == &srv->local_lc)
			continue;
		for (i = 0; i < cfg->nlisten; i++)
			if (keep[i] && same_listener(la->lc, &cfg->listen[i]))
				break;
		if (i == cfg->nlisten) {
			log_info("listener %s:%d closed by the reload",
			    la->lc->address, la->lc->port);
			listener_drop(srv, j);
		} else
			la->lc = &cfg->listen[i];
	}
	if (cfg->nlocal_senders > 0)
		srv->local_lc.address = cfg->local_socket;
	if (srv->ssl_ctx != NULL)
		SSL_CTX_free(srv->ssl_ctx);	/* TLS sessions hold a ref */
	srv->ssl_ctx = ctx;
	free(srv->auth_mechs);
	srv->auth_mechs = session_auth_mechanisms();
	srv->cfg = cfg;
	srv->keys = keys;
	free(keep);
	return 0;
undo:
	while (srv->nlisteners > nold)
		listener_drop(srv, srv->nlisteners - 1);
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	free(keep);
	return -1;
}

/* server_stop_accepting - close every listening socket */
void
server_stop_accepting(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i]->l != NULL) {
			evconnlistener_free(srv->listeners[i]->l);
			srv->listeners[i]->l = NULL;
		}
}

/* server_close - stop listening and free shared state (sessions must be
   gone already) */
void
server_close(struct server *srv)
{
	struct ipcount *c, *next;
	size_t i;

	while (srv->nlisteners > 0)
		listener_drop(srv, srv->nlisteners - 1);
	free(srv->listeners);
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
