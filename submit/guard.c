/*
 * guard - connection rate and AUTH lockouts per client; see guard.h.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/counter.h"
#include "submit/guard.h"
#include "submit/reply.h"

#define GUARD_KEY_MAX	600

/* guard_summary - the end of a window in which something was refused */
static void
guard_summary(const char *key, uint64_t count, uint64_t refused, void *arg)
{
	(void)arg;
	log_warnx("guard window over: %s had %" PRIu64 " counted and %" PRIu64
	    " refused", key, count, refused);
}

static struct counter_store guard = { .summary = guard_summary };

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

/* guard_connect - one more connection from ip this minute? */
enum reply_id
guard_connect(const struct config *cfg, const char *ip, bool exempt,
    time_t now)
{
	const struct limits_config *l = &cfg->limits;
	struct counters *c;
	char key[GUARD_KEY_MAX];
	uint64_t n;

	if (exempt)
		return REPLY_NONE;
	c = counter_store(&guard, now);
	guard_key(key, sizeof(key), "lock ip", ip);
	if (counter_locked(c, key, now) != 0)
		return REPLY_CONN_AUTH_LOCKOUT;
	if (l->connection_rate_per_ip == 0)
		return REPLY_NONE;
	guard_key(key, sizeof(key), "conn", ip);
	n = counter_add(c, key, 60, 0, now, NULL);
	if (n < l->connection_rate_per_ip) {
		(void)counter_add(c, key, 60, 1, now, NULL);
		return REPLY_NONE;
	}
	if (counter_refused(c, key, 60, now) == 1)
		log_warnx("connection rate: client %s reached "
		    "limits.connection_rate_per_ip = %u per minute; further "
		    "refusals this minute are counted, not logged", ip,
		    l->connection_rate_per_ip);
	return REPLY_CONN_RATE;
}

/* guard_auth_locked - is ip, or login, locked out? */
enum reply_id
guard_auth_locked(const char *ip, bool exempt, const char *login, time_t now,
    char until[LOG_UTC_LEN])
{
	struct counters *c;
	char key[GUARD_KEY_MAX];
	time_t end;

	if (exempt)
		return REPLY_NONE;
	c = counter_store(&guard, now);
	guard_key(key, sizeof(key), "lock ip", ip);
	if ((end = counter_locked(c, key, now)) != 0) {
		log_utc(end, until);
		return REPLY_AUTH_LOCKED_IP;
	}
	if (login == NULL)
		return REPLY_NONE;
	guard_key(key, sizeof(key), "lock login", login);
	if ((end = counter_locked(c, key, now)) != 0) {
		log_utc(end, until);
		return REPLY_AUTH_LOCKED_LOGIN;
	}
	return REPLY_NONE;
}

/* guard_fail - count one failure of what ("ip"/"login" name); lock it
   out at every limit-th failure in the window */
static void
guard_fail(const struct config *cfg, struct counters *c, const char *kind,
    const char *name, unsigned limit, const char *setting, time_t now)
{
	const struct limits_config *l = &cfg->limits;
	char key[GUARD_KEY_MAX], prefix[32], when[LOG_UTC_LEN];
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
	    "row)", kind, name, (long long)(until - now),
	    log_utc(until, when),
	    n, setting, limit, strike);
}

/* guard_auth_failed - count a failure for ip and login */
void
guard_auth_failed(const struct config *cfg, const char *ip, bool exempt,
    const char *login, time_t now)
{
	const struct limits_config *l = &cfg->limits;
	struct counters *c;

	if (exempt)
		return;
	c = counter_store(&guard, now);
	guard_fail(cfg, c, "ip", ip, l->auth_failures_per_ip,
	    "limits.auth_failures_per_ip", now);
	if (login != NULL)
		guard_fail(cfg, c, "login", login, l->auth_failures_per_login,
		    "limits.auth_failures_per_login", now);
}

/* What guard_each's walk over the counters needs. */
struct guard_walk {
	const struct config	*cfg;
	struct counters		*c;
	time_t			 now;
	limits_fn		*fn;
	void			*arg;
};

/* guard_strip - what follows prefix (and a space) in key, or NULL */
static const char *
guard_strip(const char *key, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(key, prefix, n) == 0 && key[n] == ' ' ? key + n + 1 :
	    NULL;
}

/* guard_walked - one live entry of the guard's store, reported as what
   it means */
static void
guard_walked(const char *key, unsigned window, uint64_t count, time_t end,
    void *arg)
{
	struct guard_walk *w = arg;
	const struct limits_config *l = &w->cfg->limits;
	struct limits_entry e = { .count = count, .end = end };
	char other[GUARD_KEY_MAX];
	const char *name;
	bool ip;

	if (window == 0) {
		if ((name = guard_strip(key, "lock ip")) != NULL)
			e.kind = "ip";
		else if ((name = guard_strip(key, "lock login")) != NULL)
			e.kind = "login";
		else
			return;
		guard_key(other, sizeof(other), e.kind[0] == 'i' ?
		    "authfail ip" : "authfail login", name);
		e.count = counter_add(w->c, other, l->auth_failure_window, 0,
		    w->now, NULL);
	} else if ((name = guard_strip(key, "conn")) != NULL) {
		if (window != 60 || l->connection_rate_per_ip == 0)
			return;
		e.kind = "ip";
		e.setting = "limits.connection_rate_per_ip";
		e.max = l->connection_rate_per_ip;
	} else {
		if ((name = guard_strip(key, "authfail ip")) != NULL)
			e.kind = "ip";
		else if ((name = guard_strip(key, "authfail login")) != NULL)
			e.kind = "login";
		else
			return;
		ip = e.kind[0] == 'i';
		e.max = ip ? l->auth_failures_per_ip : l->auth_failures_per_login;
		if (window != l->auth_failure_window || e.max == 0)
			return;
		guard_key(other, sizeof(other), ip ? "lock ip" : "lock login",
		    name);
		if (counter_locked(w->c, other, w->now) != 0)
			return;
		e.setting = ip ? "limits.auth_failures_per_ip" :
		    "limits.auth_failures_per_login";
		e.count = count % e.max;
	}
	if (strcmp(e.kind, "ip") == 0 && config_exempt(w->cfg, name))
		return;
	e.key = name;
	w->fn(&e, w->arg);
}

/* guard_each - report every live lockout and count */
void
guard_each(const struct config *cfg, time_t now, limits_fn *fn, void *arg)
{
	struct guard_walk w = { cfg, counter_store(&guard, now), now, fn,
	    arg };

	counter_each(w.c, now, guard_walked, &w);
}

/* guard_unlock - lift a lockout, forget the failures behind it */
time_t
guard_unlock(const struct config *cfg, const char *kind, const char *name,
    time_t now)
{
	struct counters *c = counter_store(&guard, now);
	char key[GUARD_KEY_MAX], prefix[32];

	snprintf(prefix, sizeof(prefix), "authfail %s", kind);
	guard_key(key, sizeof(key), prefix, name);
	counter_forget(c, key, cfg->limits.auth_failure_window);
	snprintf(prefix, sizeof(prefix), "lock %s", kind);
	guard_key(key, sizeof(key), prefix, name);
	return counter_unlock(c, key, now);
}

void
guard_free(void)
{
	counter_store_free(&guard);
}
