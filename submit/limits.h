/*
 * limits - what the admin sees of the limits and lifts: `postern limits
 * show` and `postern limits unlock` (issue 14), answered by the daemon
 * over its control socket (daemon/control.h dispatches "limits.show"
 * and "limits.unlock" here; submit/limitscmd.h is the command line)
 *
 * The counts themselves belong to submit/guard.c (connections per
 * address, AUTH failures and lockouts per address and per login) and
 * submit/rates.c (messages and recipients per login, local account or
 * trusted sender, messages per recipient address); each walks what it
 * holds as struct limits_entry, and this module turns that into the
 * answer. Loop thread only (the counts are the loop's).
 *
 * limits_show's object, a stable shape (new members may be added; none
 * is renamed or removed):
 *
 *	{"lockouts": [{"kind": "ip", "key": "192.0.2.7",
 *	               "until": 1796681400,
 *	               "until_utc": "2026-12-07T22:10:00Z",
 *	               "failures": 5}, ...],
 *	 "near": [{"kind": "login", "key": "alice@example.org",
 *	           "limit": "limits.user_messages_per_hour",
 *	           "count": 170, "max": 200, "window_end": 1796684400}, ...]}
 *
 * lockouts: every AUTH lockout that holds now; kind "ip" (a client
 * address) or "login" (as the clients typed it, in lower case); until
 * when it ends (UNIX time, and the same in UTC); failures: the failed
 * AUTH attempts counted for it in the current limits.auth_failure_window
 * (0 once that window ended, while the lock goes on). Sorted by until,
 * then kind and key.
 *
 * near: every count at or over 80 % of its limit, that is
 * 5 * count >= 4 * max (with max 5: from 4 on; with max 1: from 1 on);
 * counts whose limit is 0 (off) never are. kind and key say whose count:
 * "ip" (a client address: limits.connection_rate_per_ip, and the AUTH
 * failures toward its next lockout, limits.auth_failures_per_ip),
 * "login" (limits.user_* or the login's own senders.*, and
 * limits.auth_failures_per_login), "local" (a local account of
 * `postern sendmail`: limits.user_*), "sender" (an envelope sender on a
 * trusted listener: limits.user_*) and "recipient" (an address mail goes
 * to: limits.recipient_messages_per_hour). limit is the setting's name,
 * max its value, window_end when the count starts again from 0. An
 * address or login already locked out is not listed again for its AUTH
 * failures. Sorted most over first (count / max, highest first), then
 * kind, key and limit. Addresses in limits.exempt_networks never appear
 * (nothing is counted for them).
 *
 * The answer to "limits.unlock" is {"ok": true, "unlocked": N}, N what
 * limits_unlock returned, or {"ok": false, "error": ERR} for its -1.
 */
#ifndef POSTERN_LIMITS_H
#define POSTERN_LIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "config/config.h"

/* longest canonical form limits_what writes, NUL included (a login is
   at most 255 bytes, an IPv6 address 45) */
#define LIMITS_WHAT_MAX	256

/*
 * One live count or lock, as guard_each and rates_each report it (the
 * strings are valid during the call only).
 */
struct limits_entry {
	const char	*kind;		/* "ip", "login", "local", "sender",
					   "recipient" */
	const char	*key;		/* whose: the address, login, ... */
	const char	*setting;	/* a count: its limit's setting;
					   a lockout: NULL */
	uint64_t	 count;		/* a count: in its window; a lockout:
					   the failures in the window */
	unsigned	 max;		/* a count: its limit (> 0) */
	time_t		 end;		/* the window's end; the lock's end */
};

typedef void	limits_fn(const struct limits_entry *, void *arg);

/* limits_show - the state of the limits at now, as the JSON object the
   answer carries (the caller adds "ok": true); never NULL */
json_t		*limits_show(const struct config *cfg, time_t now);

/*
 * limits_unlock - lift what locks `what` (an IP address or a login) out;
 * returns the number of locks lifted (0: none was active, not an error),
 * or -1 with *err (newly allocated) when `what` is neither a valid IP
 * address nor a plausible login. The AUTH failures counted for it in the
 * current window are forgotten too, whether a lock was lifted or not, so
 * that the next failure does not lock it out again at once, and so is
 * its lockout history (the next lockout is limits.auth_lockout long, not
 * twice the last). Logged at info: "limits: unlocked ip 192.0.2.7
 * (locked until 22:10:00 UTC)", or "limits: ip 192.0.2.7 was not locked
 * out".
 */
int		 limits_unlock(const struct config *cfg, const char *what,
		    time_t now, char **err);

/*
 * limits_what - which kind of key `what` is, for limits_unlock and for
 * the command line's check before it connects: "ip" (inet_pton takes it
 * as IPv4 or IPv6; canon gets the address as the server writes it,
 * inet_ntop's form) or "login" (auth_login_valid: what `postern users
 * add` would store; canon gets it in lower case, as the guard counts
 * it); NULL with *err (newly allocated, one line) for anything else.
 * canon has LIMITS_WHAT_MAX bytes.
 */
const char	*limits_what(const char *what, char canon[LIMITS_WHAT_MAX],
		    char **err);

#endif
