/*
 * guard - connection rate and AUTH lockouts per client; see guard.h.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "submit/counter.h"
#include "submit/guard.h"

#define GUARD_KEY_MAX	600

static struct counters	*guard;
static time_t		 last_sweep;
static char		 reply[512];

/* guard_summary - the end of a window in which something was refused */
static void
guard_summary(const char *key, uint64_t count, uint64_t refused, void *arg)
{
	(void)arg;
	log_warnx("guard window over: %s had %" PRIu64 " counted and %" PRIu64
	    " refused", key, count, refused);
}

/* guard_store - the counters, swept of ended windows once a minute */
static struct counters *
guard_store(time_t now)
{
	if (guard == NULL)
		guard = counters_new();
	if (now - last_sweep >= 60 || now < last_sweep) {
		counter_sweep(guard, now, guard_summary, NULL);
		last_sweep = now;
	}
	return guard;
}

/* guard_key - "PREFIX what", lower case (logins: so that case does not
   dodge a lockout) */
static void
guard_key(char *key, size_t len, const char *prefix, const char *what)
{
	size_t i;

	snprintf(key, len, "%s %s", prefix, what);
	for (i = 0; key[i] != '\0'; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
}

/* guard_when - "HH:MM:SS UTC" of t */
static const char *
guard_when(time_t t)
{
	static char out[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, sizeof(out), "%H:%M:%S UTC", &tm);
	return out;
}

/* guard_connect - one more connection from ip this minute? */
const char *
guard_connect(const struct config *cfg, const char *ip, time_t now)
{
	const struct limits_config *l = &cfg->limits;
	struct counters *c;
	char key[GUARD_KEY_MAX];
	uint64_t n;

	if (config_exempt(cfg, ip))
		return NULL;
	c = guard_store(now);
	guard_key(key, sizeof(key), "lock ip", ip);
	if (counter_locked(c, key, now) != 0) {
		metrics_inc(M_REFUSED_AUTH_LOCKOUT);
		return "Too many failed authentications from your address";
	}
	if (l->connection_rate_per_ip == 0)
		return NULL;
	guard_key(key, sizeof(key), "conn", ip);
	n = counter_add(c, key, 60, 0, now, NULL);
	if (n < l->connection_rate_per_ip) {
		(void)counter_add(c, key, 60, 1, now, NULL);
		return NULL;
	}
	if (counter_refused(c, key, 60, now) == 1)
		log_warnx("connection rate: client %s reached "
		    "limits.connection_rate_per_ip = %u per minute; further "
		    "refusals this minute are counted, not logged", ip,
		    l->connection_rate_per_ip);
	metrics_inc(M_REFUSED_CONNECTION_RATE);
	return "Too many new connections from your address";
}

/* guard_auth_locked - is ip, or login, locked out? */
const char *
guard_auth_locked(const struct config *cfg, const char *ip,
    const char *login, time_t now)
{
	struct counters *c;
	char key[GUARD_KEY_MAX];
	time_t until;

	if (config_exempt(cfg, ip))
		return NULL;
	c = guard_store(now);
	guard_key(key, sizeof(key), "lock ip", ip);
	if ((until = counter_locked(c, key, now)) != 0) {
		snprintf(reply, sizeof(reply), "454 4.7.0 Too many failed "
		    "authentications from your address; try again after %s",
		    guard_when(until));
		return reply;
	}
	if (login == NULL)
		return NULL;
	guard_key(key, sizeof(key), "lock login", login);
	if ((until = counter_locked(c, key, now)) != 0) {
		snprintf(reply, sizeof(reply), "454 4.7.0 Too many failed "
		    "authentications for this login; try again after %s",
		    guard_when(until));
		return reply;
	}
	return NULL;
}

/* guard_fail - count one failure of what ("ip"/"login" name); lock it
   out at every limit-th failure in the window */
static void
guard_fail(const struct config *cfg, struct counters *c, const char *kind,
    const char *name, unsigned limit, const char *setting, time_t now)
{
	const struct limits_config *l = &cfg->limits;
	char key[GUARD_KEY_MAX], prefix[32];
	uint64_t n;
	unsigned strike;
	time_t until;

	if (limit == 0)
		return;
	snprintf(prefix, sizeof(prefix), "authfail %s", kind);
	guard_key(key, sizeof(key), prefix, name);
	n = counter_add(c, key, l->auth_failure_window, 1, now, NULL);
	if (n % limit != 0)
		return;
	snprintf(prefix, sizeof(prefix), "lock %s", kind);
	guard_key(key, sizeof(key), prefix, name);
	until = counter_lock(c, key, l->auth_lockout, l->auth_lockout_max,
	    now, &strike);
	metrics_inc(M_LIMIT_AUTH_LOCKOUT);
	log_warnx("auth lockout: %s %s locked out for %llds until %s after "
	    "%" PRIu64 " failed authentications (%s = %u; lockout %u in a "
	    "row)", kind, name, (long long)(until - now), guard_when(until),
	    n, setting, limit, strike);
}

/* guard_auth_failed - count a failure for ip and login */
void
guard_auth_failed(const struct config *cfg, const char *ip,
    const char *login, time_t now)
{
	const struct limits_config *l = &cfg->limits;
	struct counters *c;

	if (config_exempt(cfg, ip))
		return;
	c = guard_store(now);
	guard_fail(cfg, c, "ip", ip, l->auth_failures_per_ip,
	    "limits.auth_failures_per_ip", now);
	if (login != NULL)
		guard_fail(cfg, c, "login", login, l->auth_failures_per_login,
		    "limits.auth_failures_per_login", now);
}

/* guard_free - forget everything */
void
guard_free(void)
{
	counters_free(guard);
	guard = NULL;
	last_sweep = 0;
}
