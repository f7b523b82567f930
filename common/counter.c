/*
 * counter - rate counters over fixed windows; see counter.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/counter.h"
#include "common/log.h"

#define COUNTER_BUCKETS	4096

/* A count in one window, or (window 0) a lock. */
struct counter_entry {
	char			*key;
	unsigned		 window;	/* seconds; 0: a lock */
	time_t			 start;		/* window start; lock end */
	uint64_t		 count;		/* a lock: its strike */
	uint64_t		 refused;	/* a lock: its length */
	unsigned		 keep;		/* a lock: kept this long after
						   it ends */
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

/* counter_find - key's entry of this window length (0: its lock), or
   NULL; *h gets its bucket */
static struct counter_entry *
counter_find(struct counters *c, const char *key, unsigned window,
    size_t *h)
{
	struct counter_entry *e;

	*h = counter_hash(key, window);
	for (e = c->bucket[*h]; e != NULL; e = e->next)
		if (e->window == window && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* counter_entry - key's entry for the window holding now, made or reset
   as needed */
static struct counter_entry *
counter_entry(struct counters *c, const char *key, unsigned window,
    time_t now)
{
	struct counter_entry *e;
	size_t h;
	time_t start = now - now % (time_t)window;

	if ((e = counter_find(c, key, window, &h)) == NULL) {
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
	struct counter_entry *e;
	size_t h;
	time_t start = now - now % (time_t)window;

	if (n == 0) {
		/* a read: no entry made, none reset */
		if (reset != NULL)
			*reset = start + (time_t)window;
		e = counter_find(c, key, window, &h);
		return e != NULL && e->start == start ? e->count : 0;
	}
	e = counter_entry(c, key, window, now);
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

/* counter_lock - lock key, doubling a recent lock's length */
time_t
counter_lock(struct counters *c, const char *key, unsigned base,
    unsigned max, time_t now, unsigned *strike)
{
	struct counter_entry *e;
	uint64_t len = base < max ? base : max;
	size_t h;

	if ((e = counter_find(c, key, 0, &h)) == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->key = xstrdup(key);
		e->next = c->bucket[h];
		c->bucket[h] = e;
	} else if (now < e->start + (time_t)max) {
		/* the last lock is recent: this one is twice as long */
		len = e->refused * 2 > max ? max : e->refused * 2;
		if (len < base)
			len = base < max ? base : max;
	} else
		e->count = 0;
	e->count++;
	e->refused = len;
	e->keep = max;
	e->start = now + (time_t)len;
	if (strike != NULL)
		*strike = (unsigned)e->count;
	return e->start;
}

/* counter_locked - key's lock end, if it holds */
time_t
counter_locked(struct counters *c, const char *key, time_t now)
{
	struct counter_entry *e;
	size_t h;

	if ((e = counter_find(c, key, 0, &h)) == NULL || e->start <= now)
		return 0;
	return e->start;
}

/* counter_drop - unlink and free key's entry of this window length (0:
   its lock); 1 and *start (may be NULL) its start if there was one */
static int
counter_drop(struct counters *c, const char *key, unsigned window,
    time_t *start)
{
	struct counter_entry **pp, *e;

	for (pp = &c->bucket[counter_hash(key, window)]; (e = *pp) != NULL;
	    pp = &e->next)
		if (e->window == window && strcmp(e->key, key) == 0) {
			if (start != NULL)
				*start = e->start;
			*pp = e->next;
			free(e->key);
			free(e);
			return 1;
		}
	return 0;
}

/* counter_unlock - lift and forget key's lock */
time_t
counter_unlock(struct counters *c, const char *key, time_t now)
{
	time_t end;

	if (!counter_drop(c, key, 0, &end) || end <= now)
		return 0;
	return end;
}

/* counter_forget - drop key's count in windows of this length */
void
counter_forget(struct counters *c, const char *key, unsigned window)
{
	if (window > 0)
		(void)counter_drop(c, key, window, NULL);
}

/* counter_each - every live count and lock */
void
counter_each(struct counters *c, time_t now, void (*fn)(const char *,
    unsigned, uint64_t, time_t, void *), void *arg)
{
	struct counter_entry *e;
	size_t i;

	for (i = 0; i < COUNTER_BUCKETS; i++)
		for (e = c->bucket[i]; e != NULL; e = e->next) {
			if (e->window == 0) {
				if (e->start > now)
					fn(e->key, 0, e->count, e->start, arg);
			} else if (e->count > 0 && e->start <= now &&
			    now < e->start + (time_t)e->window)
				fn(e->key, e->window, e->count,
				    e->start + (time_t)e->window, arg);
		}
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
			if (e->start + (time_t)(e->window ? e->window :
			    e->keep) > now) {
				pp = &e->next;
				continue;
			}
			if (e->window > 0 && e->refused > 0 && summary != NULL)
				summary(e->key, e->count, e->refused, arg);
			*pp = e->next;
			free(e->key);
			free(e);
		}
}

/* counter_key - see counter.h */
void
counter_key(char *key, size_t len, const char *prefix, const char *addr)
{
	size_t i;

	snprintf(key, len, "%s %s", prefix, addr);
	for (i = 0; key[i] != '\0'; i++)
		if (key[i] >= 'A' && key[i] <= 'Z')
			key[i] = (char)(key[i] - 'A' + 'a');
}

/* counter_summary_log - see counter.h */
void
counter_summary_log(const char *key, uint64_t count, uint64_t refused,
    void *arg)
{
	(void)arg;
	log_warnx("rate limit window over: %s had %" PRIu64 " accepted and "
	    "%" PRIu64 " refused", key, count, refused);
}

/* counter_store - see counter.h */
struct counters *
counter_store(struct counter_store *s, time_t now)
{
	if (s->c == NULL)
		s->c = counters_new();
	if (now - s->swept >= 60 || now < s->swept) {
		counter_sweep(s->c, now, s->summary, NULL);
		s->swept = now;
	}
	return s->c;
}

/* counter_store_free - see counter.h */
void
counter_store_free(struct counter_store *s)
{
	counters_free(s->c);
	s->c = NULL;
	s->swept = 0;
}
