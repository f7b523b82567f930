/*
 * server - the submission listeners and what all sessions share
 *
 * server_open() binds every configured listener (IPv4 and IPv6, the
 * latter IPV6_V6ONLY), builds the TLS context when a listener needs one and
 * learns the AUTH mechanisms to advertise; failures return -1 with *err
 * (newly allocated) and are fatal at startup. Accepted connections are
 * checked against limits.connections, and (unless the client is in
 * limits.exempt_networks) limits.connections_per_ip, the new connections
 * per minute and AUTH lockouts (submit/guard.h), before any session
 * memory is spent: over a limit, a plaintext listener gets a
 * best-effort "421 4.7.0" and the socket is closed; an implicit-TLS one is
 * just closed (no handshake is spent on a client we refuse).
 *
 * With local_senders configured, the local socket (local_socket, mode
 * 0666) takes mail from `postern sendmail`: the caller's uid comes from
 * the kernel (SO_PEERCRED) and a user without a local_senders entry gets
 * "554 5.7.1" before any session memory is spent.
 *
 * Everything here runs on the event loop thread.
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config/config.h"

struct event_base;
struct evconnlistener;
struct queue;
struct inject;
struct ipcount;
struct dns;
struct keyring;

struct listener_arg {
	struct server			*srv;
	const struct listen_config	*lc;	/* of the current config */
	struct evconnlistener		*l;	/* NULL once stopped */
};

struct server {
	const struct config	*cfg;
	struct event_base	*base;
	struct queue		*queue;		/* its free space (MAIL) */
	struct inject		*inject;	/* the way into the queue, set
						   by the caller */
	struct keyring		*keys;		/* DKIM keys, set by the caller */
	struct dns		*dns;		/* RCPT domain lookups, set by
						   the caller; NULL: none */
	SSL_CTX			*ssl_ctx;	/* NULL if no listener uses TLS */
	char			*auth_mechs;	/* to advertise; "" if none */
	struct listener_arg	**listeners;
	size_t			 nlisteners;
	unsigned		 nsessions;
	struct ipcount		**ipcounts;	/* hash of per-IP counts */
	struct listen_config	 local_lc;	/* the local socket's (no TLS,
						   no AUTH: SO_PEERCRED) */
};

int	server_open(struct server *, const struct config *,
	    struct event_base *, struct queue *, char **err);
void	server_close(struct server *);

/*
 * server_reload - new sessions get cfg and keys from now on (SIGHUP).
 * Listeners that cfg still has keep their socket (no connection is
 * refused meanwhile), new ones are bound, gone ones closed; the TLS
 * certificate and SASL settings are loaded again. If anything fails
 * (TLS files, a port that cannot be bound, the local socket changing,
 * which needs a restart) nothing changes: -1 with *err (new memory).
 * cfg and keys must outlive every session started with them.
 */
int	server_reload(struct server *, const struct config *,
	    struct keyring *, char **err);

/* server_stop_accepting - close the listening sockets (stopping): new
   connections are refused by the kernel, sessions go on */
void	server_stop_accepting(struct server *);

/* server_session_done - a session for client address ip has ended */
void	server_session_done(struct server *, const char *ip);

#endif
