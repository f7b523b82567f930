/*
 * session - one SMTP submission connection: an explicit state machine
 * (RFC 5321, 6409, 3207, 4954, 2920) on a libevent bufferevent
 *
 * session_new() takes over an accepted, non-blocking socket; from then on
 * the session lives on its own callbacks and frees itself when the client
 * quits, disconnects, times out or is closed after a fatal error. Nothing a
 * client does is fatal to the daemon: every problem becomes a reply (the
 * table in submit/REPLIES.md) or a closed connection.
 *
 * A message goes into the queue through queue/inject.h, which applies the
 * header fix-ups, signs and commits it; the session checks who may send
 * what (submit/policy.h, submit/rates.h) and speaks SMTP. Inject's
 * completion callback finds its session by id (session_lookup), so a
 * session that is gone before its message is durable is simply not
 * answered; the message stays queued (at worst delivered twice, never
 * lost).
 *
 * Everything here runs on the event loop thread.
 */
#ifndef POSTERN_SESSION_H
#define POSTERN_SESSION_H

#include <sys/socket.h>

#include <stdbool.h>

#include "config/config.h"

struct server;

void	session_new(struct server *, const struct listen_config *, int fd,
	    const struct sockaddr *, const char *ip, bool exempt);

/*
 * session_new_local - the same for a connection on the local socket from
 * local user (uid) whose local_senders entry is ls: no TLS, no AUTH; the
 * user may send as ls's addresses only; its limits are those of "local
 * USER"; per-address limits do not apply. Its client address in logs is
 * SESSION_LOCAL_IP.
 */
#define SESSION_LOCAL_IP	"local"
void	session_new_local(struct server *, const struct listen_config *,
	    int fd, const struct sockaddr *, const struct local_sender *ls,
	    const char *user, unsigned uid);

/* session_auth_mechanisms - the AUTH mechanisms to advertise, learnt from
   SASL once at startup (auth_init must have run); new memory */
char	*session_auth_mechanisms(void);

/*
 * session_drain - the daemon is stopping (SIGTERM): sessions between
 * transactions get "421 4.3.2 ... Service shutting down" and are closed
 * now, the others when their transaction ends (its 250 first).
 * session_drain_end - the stop timeout: transactions still open get the
 * 421 too and are dropped (never accepted, so nothing is lost; a commit
 * already under way completes). The caller waits for the session count
 * (server.nsessions) to reach 0.
 */
void	session_drain(void);
void	session_drain_end(void);

/* session_close_all - free every session now (shutdown) */
void	session_close_all(void);

#endif
