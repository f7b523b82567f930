/*
 * budget - bounces per envelope sender; see budget.h.
 */
#include <stdio.h>

#include "common/counter.h"
#include "common/log.h"
#include "common/metrics.h"
#include "relay/budget.h"

static struct counter_store budget = { .summary = counter_summary_log };

/* budget_bounce - count one bounce to sender, or refuse it */
int
budget_bounce(const struct config *cfg, const char *sender, time_t now,
    time_t *reset)
{
	const struct limits_config *l = &cfg->limits;
	struct counters *c;
	char key[600], when[LOG_UTC_LEN];
	uint64_t count;
	time_t end;

	if (l->bounces_per_hour == 0)
		return 0;
	c = counter_store(&budget, now);
	counter_key(key, sizeof(key), "bounces/h", sender);
	count = counter_add(c, key, l->rate_window, 0, now, &end);
	if (count < l->bounces_per_hour) {
		(void)counter_add(c, key, l->rate_window, 1, now, NULL);
		return 0;
	}
	if (reset != NULL)
		*reset = end;
	metrics_inc(M_LIMIT_BOUNCES);
	if (counter_refused(c, key, l->rate_window, now) == 1) {
		log_utc(end, when);
		log_warnx("bounce limit: <%s> reached limits.bounces_per_hour "
		    "= %u; bounces to it wait in the queue until %s; further "
		    "ones this hour are counted and summarized when it ends",
		    sender, l->bounces_per_hour, when);
	}
	return -1;
}

/* budget_free - forget everything */
void
budget_free(void)
{
	counter_store_free(&budget);
}
