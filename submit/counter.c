/*
 * counter - rate counters over fixed windows; see counter.h.
 */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "submit/counter.h"

#define COUNTER_BUCKETS	4096

struct counter_entry {
	char			*key;
	unsigned		 window;
	time_t			 start;
	uint64_t		 count;
	uint64_t		 refused;
	struct counter_entry	*next;
};

struct counters {
	struct counter_entry	*bucket[COUNTER_BUCKETS];
};

/* counter_hash - FNV-1a of key and window */
static size_t
counter_hash(const char *key, unsigned window)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	h = (h ^ window) * 1099511628211ULL;
	return (size_t)(h % COUNTER_BUCKETS);
}

/* counters_new - an empty store */
struct counters *
counters_new(void)
{
	return xcalloc(1, sizeof(struct counters));
}

/* counters_free - everything */
void
counters_free(struct counters *c)
{
	struct counter_entry *e;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < COUNTER_BUCKETS; i++)
		while ((e = c->bucket[i]) != NULL) {
			c->bucket[i] = e->next;
			free(e->key);
			free(e);
		}
	free(c);
}

/* counter_entry - key's entry for the window holding now, made or reset
   as needed */
static struct counter_entry *
counter_entry(struct counters *c, const char *key, unsigned window,
    time_t now)
{
	struct counter_entry *e;
	size_t h = counter_hash(key, window);
	time_t start = now - now % (time_t)window;

	for (e = c->bucket[h]; e != NULL; e = e->next)
		if (e->window == window && strcmp(e->key, key) == 0)
			break;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->key = xstrdup(key);
		e->window = window;
		e->start = start;
		e->next = c->bucket[h];
		c->bucket[h] = e;
	} else if (e->start != start) {
		e->start = start;
		e->count = e->refused = 0;
	}
	return e;
}

/* counter_add - count n more in key's current window */
uint64_t
counter_add(struct counters *c, const char *key, unsigned window,
    uint64_t n, time_t now, time_t *reset)
{
	struct counter_entry *e = counter_entry(c, key, window, now);

	e->count += n;
	if (reset != NULL)
		*reset = e->start + (time_t)window;
	return e->count;
}

/* counter_refused - one more refusal in key's current window */
uint64_t
counter_refused(struct counters *c, const char *key, unsigned window,
    time_t now)
{
	return ++counter_entry(c, key, window, now)->refused;
}

/* counter_sweep - drop ended windows, summarizing refusals */
void
counter_sweep(struct counters *c, time_t now, void (*summary)(const char *,
    uint64_t, uint64_t, void *), void *arg)
{
	struct counter_entry **pp, *e;
	size_t i;

	for (i = 0; i < COUNTER_BUCKETS; i++)
		for (pp = &c->bucket[i]; (e = *pp) != NULL;) {
			if (e->start + (time_t)e->window > now) {
				pp = &e->next;
				continue;
			}
			if (e->refused > 0 && summary != NULL)
				summary(e->key, e->count, e->refused, arg);
			*pp = e->next;
			free(e->key);
			free(e);
		}
}
