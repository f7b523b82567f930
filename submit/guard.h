/*
 * guard - per-client defences: how often one address may connect, and
 * lockouts after failed AUTH, per client address and per login
 *
 * A server on the Internet is found by password guessers within hours.
 * So, for every client address outside limits.exempt_networks:
 *
 *   new connections per address per minute
 *   (limits.connection_rate_per_ip): over it, 421 4.7.0 at connect;
 *
 *   failed AUTH attempts per address, and per login from all addresses
 *   together, within limits.auth_failure_window: every
 *   limits.auth_failures_per_ip-th (per_login-th) failure locks the
 *   address (login) out for limits.auth_lockout, twice as long as last
 *   time if the last lockout ended less than limits.auth_lockout_max
 *   before, at most that. A locked address gets 421 4.7.0 at connect
 *   and 454 4.7.0 at AUTH; a locked login gets 454 4.7.0 whether the
 *   password was right or not (no oracle). Attempts refused by a lock
 *   are not checked and count nowhere.
 *
 * The delay after a failed AUTH (limits.auth_failure_delay) is the
 * session's business: a timer, never a sleep.
 *
 * The counts live in common/counter.c (narrow on purpose: a shared store
 * can replace it when several relays must enforce one limit). Lockouts
 * and refusals are logged once each. Loop thread only. Refusals come
 * back as reply ids (submit/reply.h), never as text: the caller formats
 * and sends them.
 */
#ifndef POSTERN_GUARD_H
#define POSTERN_GUARD_H

#include <stdbool.h>
#include <time.h>

#include "common/log.h"
#include "config/config.h"
#include "submit/limits.h"
#include "submit/reply.h"

/*
 * guard_connect - REPLY_NONE if client address ip may open a new
 * connection now (and it is counted), else the 421 reply to refuse it
 * with: REPLY_CONN_AUTH_LOCKOUT (ip is locked out after failed AUTH) or
 * REPLY_CONN_RATE (limits.connection_rate_per_ip); the caller sends it,
 * which counts the refusal (submit/reply.h). Exempt addresses (exempt: ip
 * is in limits.exempt_networks, as config_exempt says) always may.
 */
enum reply_id	 guard_connect(const struct config *, const char *ip,
		    bool exempt, time_t now);

/*
 * guard_auth_locked - REPLY_NONE if ip may try AUTH now as login (NULL:
 * not known yet), else the 454 4.7.0 reply, REPLY_AUTH_LOCKED_IP or
 * REPLY_AUTH_LOCKED_LOGIN, with until ("HH:MM:SS UTC", the lock's end)
 * filled in for it. Exempt addresses are never locked out.
 */
enum reply_id	 guard_auth_locked(const char *ip, bool exempt,
		    const char *login, time_t now, char until[LOG_UTC_LEN]);

/*
 * guard_auth_failed - count one failed AUTH from ip for login (NULL if
 * the mechanism never named one); lock ip or login out at the limits.
 * Exempt addresses count nowhere.
 */
void		 guard_auth_failed(const struct config *, const char *ip,
		    bool exempt, const char *login, time_t now);

/*
 * guard_each - what the guard holds at now, for `postern limits show`
 * (submit/limits.h): each lockout that holds (kind "ip" or "login",
 * setting NULL, count the failures in the current
 * limits.auth_failure_window), each address's new connections this
 * minute (limits.connection_rate_per_ip), and the AUTH failures toward
 * the next lockout of each address and login that is not locked out
 * (limits.auth_failures_per_ip, _per_login: those since the last
 * lockout, failures modulo the limit). Counts whose limit is 0 and
 * addresses in limits.exempt_networks are left out.
 */
void		 guard_each(const struct config *, time_t now, limits_fn *fn,
		    void *arg);

/*
 * guard_unlock - lift the lockout of kind ("ip" or "login") name (as
 * counted: the address as inet_ntop writes it, a login in any case);
 * forget its failures in the current window and its lockout history.
 * Returns the end the lockout had if it held at now, else 0.
 */
time_t		 guard_unlock(const struct config *, const char *kind,
		    const char *name, time_t now);

/* guard_free - forget every count and lock (shutdown, tests) */
void		 guard_free(void);

#endif
