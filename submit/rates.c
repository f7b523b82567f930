/*
 * rates - per-login and per-recipient limits; see
 * rates.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/counter.h"
#include "submit/rates.h"
#include "submit/reply.h"

/* One of the limits a login is held to. */
struct rate {
	const char	*what;		/* "messages", "recipients" */
	const char	*setting;	/* for the reply text */
	const char	*prefix;	/* counter key prefix */
	unsigned	 limit;		/* 0: none */
	unsigned	 window;	/* seconds */
	const char	*per;		/* "hour", "day" */
	enum reply_id	 id;		/* the refusal */
};

/* rates_to_key - the counter key of recipient rcpt */
static void
rates_to_key(char *key, size_t len, const char *rcpt)
{
	counter_key(key, len, "to", rcpt);
}

static struct counter_store rates = { .summary = counter_summary_log };

/* rates_grant - the senders entry of login, or NULL */
static const struct sender_grant *
rates_grant(const struct config *cfg, const char *login)
{
	size_t i;

	for (i = 0; login != NULL && i < cfg->nsenders; i++)
		if (strcmp(cfg->senders[i].login, login) == 0)
			return &cfg->senders[i];
	return NULL;
}

/* rates_pick - a grant's own limit if it set one, else the default */
static unsigned
rates_pick(long own, unsigned def)
{
	return own >= 0 ? (unsigned)own : def;
}

/*
 * rates_over - whether who's count for r plus extra reaches r's limit;
 * if so *out says what the refusal's reply needs
 */
static int
rates_over(const struct rate *r, const char *who, size_t extra, time_t now,
    struct rates_refusal *out)
{
	struct counters *c = counter_store(&rates, now);
	char key[600];
	uint64_t count;
	time_t reset;

	if (r->limit == 0)
		return 0;
	snprintf(key, sizeof(key), "%s %s", r->prefix, who);
	count = counter_add(c, key, r->window, 0, now, &reset);
	if (count + extra < r->limit)
		return 0;
	metrics_inc(r->what[0] == 'm' ? M_LIMIT_USER_MESSAGES :
	    M_LIMIT_USER_RECIPIENTS);
	out->count = count + extra;
	out->setting = r->setting;
	out->limit = r->limit;
	log_utc(reset, out->until);
	if (counter_refused(c, key, r->window, now) == 1)
		log_warnx("rate limit: %s reached %s = %u (%s per %s); "
		    "further refusals this %s are counted, not logged", who,
		    r->setting, r->limit, r->what, r->per, r->per);
	return 1;
}

/* The limits of rates_table, in its order. */
enum { RATE_MSGS_HOUR, RATE_MSGS_DAY, RATE_RCPTS_HOUR, RATE_RCPTS_DAY,
	RATE_N };

/* rates_one - a limit: the senders entry's own if it sets one (own >= 0,
   named by setting), else the default def (named by def_setting) */
static struct rate
rates_one(const char *what, const char *setting, const char *def_setting,
    const char *prefix, long own, unsigned def, unsigned window,
    const char *per, enum reply_id id)
{
	return (struct rate){ what, own >= 0 ? setting : def_setting, prefix,
	    rates_pick(own, def), window, per, id };
}

/*
 * rates_table - the four limits login (NULL: not a login) is held to:
 * its senders entry's own where it sets them, else limits.user_*
 */
static void
rates_table(const struct config *cfg, const char *login,
    struct rate r[RATE_N])
{
	const struct limits_config *l = &cfg->limits;
	const struct sender_grant *g = rates_grant(cfg, login);

	r[RATE_MSGS_HOUR] = rates_one("messages", "senders.messages_per_hour",
	    "limits.user_messages_per_hour", "msgs/h",
	    g ? g->messages_per_hour : -1, l->user_messages_per_hour,
	    l->rate_window, "hour", REPLY_RATE_MESSAGES_HOUR);
	r[RATE_MSGS_DAY] = rates_one("messages", "senders.messages_per_day",
	    "limits.user_messages_per_day", "msgs/d",
	    g ? g->messages_per_day : -1, l->user_messages_per_day,
	    24 * l->rate_window, "day", REPLY_RATE_MESSAGES_DAY);
	r[RATE_RCPTS_HOUR] = rates_one("recipients",
	    "senders.recipients_per_hour", "limits.user_recipients_per_hour",
	    "rcpts/h", g ? g->recipients_per_hour : -1,
	    l->user_recipients_per_hour, l->rate_window, "hour",
	    REPLY_RATE_RCPTS_HOUR);
	r[RATE_RCPTS_DAY] = rates_one("recipients",
	    "senders.recipients_per_day", "limits.user_recipients_per_day",
	    "rcpts/d", g ? g->recipients_per_day : -1,
	    l->user_recipients_per_day, 24 * l->rate_window, "day",
	    REPLY_RATE_RCPTS_DAY);
}

/* rates_mail - messages per hour and per day of who */
enum reply_id
rates_mail(const struct config *cfg, const struct principal *p,
    const char *sender, time_t now, struct rates_refusal *out)
{
	struct rate r[RATE_N];
	size_t i;

	rates_table(cfg, principal_login_name(p), r);
	principal_rate_key(p, sender, out->who, sizeof(out->who));
	for (i = RATE_MSGS_HOUR; i <= RATE_MSGS_DAY; i++)
		if (rates_over(&r[i], out->who, 0, now, out))
			return r[i].id;
	return REPLY_NONE;
}

/* rates_rcpt - recipients of who, and messages to rcpt */
enum reply_id
rates_rcpt(const struct config *cfg, const struct principal *p,
    const char *sender, size_t n, const char *rcpt, time_t now,
    struct rates_refusal *out)
{
	const struct limits_config *l = &cfg->limits;
	struct counters *c = counter_store(&rates, now);
	struct rate r[RATE_N];
	char key[600];
	uint64_t count;
	time_t reset;
	size_t i;

	rates_table(cfg, principal_login_name(p), r);
	principal_rate_key(p, sender, out->who, sizeof(out->who));
	for (i = RATE_RCPTS_HOUR; i <= RATE_RCPTS_DAY; i++)
		if (rates_over(&r[i], out->who, n, now, out))
			return r[i].id;
	if (l->recipient_messages_per_hour == 0)
		return REPLY_NONE;
	rates_to_key(key, sizeof(key), rcpt);
	count = counter_add(c, key, l->rate_window, 0, now, &reset);
	if (count < l->recipient_messages_per_hour)
		return REPLY_NONE;
	metrics_inc(M_LIMIT_RECIPIENT_FLOOD);
	out->count = count;
	out->setting = "limits.recipient_messages_per_hour";
	out->limit = l->recipient_messages_per_hour;
	log_utc(reset, out->until);
	if (counter_refused(c, key, l->rate_window, now) == 1)
		log_warnx("flood: recipient <%s> reached "
		    "limits.recipient_messages_per_hour = %u (this time from "
		    "%s); refusing mail to it until %s; further refusals are "
		    "counted and summarized when the hour ends", rcpt,
		    l->recipient_messages_per_hour, out->who, out->until);
	return REPLY_RCPT_FLOOD;
}

/* rates_accepted - count an accepted message */
void
rates_accepted(const struct config *cfg, const struct principal *p,
    const char *sender, char *const *rcpts, size_t n, time_t now)
{
	const struct limits_config *l = &cfg->limits;
	struct counters *c = counter_store(&rates, now);
	char key[600], who[RATES_WHO_MAX];
	size_t i;

	principal_rate_key(p, sender, who, sizeof(who));
	snprintf(key, sizeof(key), "msgs/h %s", who);
	(void)counter_add(c, key, l->rate_window, 1, now, NULL);
	snprintf(key, sizeof(key), "msgs/d %s", who);
	(void)counter_add(c, key, 24 * l->rate_window, 1, now, NULL);
	snprintf(key, sizeof(key), "rcpts/h %s", who);
	(void)counter_add(c, key, l->rate_window, n, now, NULL);
	snprintf(key, sizeof(key), "rcpts/d %s", who);
	(void)counter_add(c, key, 24 * l->rate_window, n, now, NULL);
	for (i = 0; i < n; i++) {
		rates_to_key(key, sizeof(key), rcpts[i]);
		(void)counter_add(c, key, l->rate_window, 1, now, NULL);
	}
}

/* What rates_each's walk over the counters needs. */
struct rates_walk {
	const struct config	*cfg;
	limits_fn		*fn;
	void			*arg;
};

/* rates_walked - one live count of the store, reported with its limit */
static void
rates_walked(const char *key, unsigned window, uint64_t count, time_t end,
    void *arg)
{
	struct rates_walk *w = arg;
	const struct limits_config *l = &w->cfg->limits;
	struct limits_entry e = { .count = count, .end = end };
	struct rate r[RATE_N];
	const char *who = strchr(key, ' ');
	size_t i, n;

	if (who == NULL || window == 0)
		return;
	n = (size_t)(who++ - key);
	if (n == 2 && strncmp(key, "to", 2) == 0) {
		if (window != l->rate_window)
			return;
		e.kind = "recipient";
		e.key = who;
		e.setting = "limits.recipient_messages_per_hour";
		e.max = l->recipient_messages_per_hour;
	} else {
		/* whose: principal_rate_key's "local ACCOUNT", "sender
		   ADDR" or a login */
		if (strncmp(who, "local ", 6) == 0)
			e.kind = "local", e.key = who + 6;
		else if (strncmp(who, "sender ", 7) == 0)
			e.kind = "sender", e.key = who + 7;
		else
			e.kind = "login", e.key = who;
		rates_table(w->cfg, strcmp(e.kind, "login") == 0 ? e.key :
		    NULL, r);
		for (i = 0; i < RATE_N; i++)
			if (strlen(r[i].prefix) == n &&
			    strncmp(r[i].prefix, key, n) == 0 &&
			    r[i].window == window)
				break;
		if (i == RATE_N)
			return;
		e.setting = r[i].setting;
		e.max = r[i].limit;
	}
	if (e.max > 0)
		w->fn(&e, w->arg);
}

/* rates_each - report every live count that has a limit */
void
rates_each(const struct config *cfg, time_t now, limits_fn *fn, void *arg)
{
	struct rates_walk w = { cfg, fn, arg };

	counter_each(counter_store(&rates, now), now, rates_walked, &w);
}

/* rates_free - forget everything */
void
rates_free(void)
{
	counter_store_free(&rates);
}
