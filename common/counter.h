/*
 * counter - rate counters over fixed windows, keyed by strings
 *
 * The interface is narrow on purpose (add, peek, lock, unlock, sweep, and
 * a walk over what is live for the admin's view) so that the store can
 * later move to a shared service when several relays behind one name
 * must enforce one limit: nothing outside this file knows how counts are
 * kept. Today they live in one hash table in memory, lost on restart
 * (a restart forgives; it never refuses more than configured).
 *
 * A window of length w seconds covers [start, start + w) with start a
 * multiple of w (windows are aligned to the epoch, so "per hour" resets
 * on the hour). A key's count in its current window is what counter_add
 * returns; once the window is over the count starts again from 0.
 * Besides the count, each entry keeps how often the caller refused
 * something for it (counter_refused), so a flood is logged once per
 * window, with a summary when the window ends (counter_sweep).
 *
 * Locks are the other kind of entry: counter_lock shuts key out for a
 * while, twice as long as last time if key's previous lock ended less
 * than max seconds before (the lockout after repeated failed logins);
 * counter_unlock lifts a lock and forgets it, so the next one is a first
 * one again.
 *
 * Memory: one entry per (key, window) seen in the current window, and
 * one per lock until max seconds after it ends; the sweep drops the
 * rest. Out of memory aborts (alloc.h). Loop thread.
 */
#ifndef POSTERN_COUNTER_H
#define POSTERN_COUNTER_H

#include <stdint.h>
#include <time.h>

struct counters;

struct counters	*counters_new(void);
void		 counters_free(struct counters *);

/*
 * counter_add - add n to key's count in its current window of length
 * window (seconds, > 0) at time now; returns the new count. *reset (may
 * be NULL) gets the time the window ends. n 0 only reads: it neither
 * makes an entry nor changes one (so it may be called from counter_each's
 * fn).
 */
uint64_t	 counter_add(struct counters *, const char *key,
		    unsigned window, uint64_t n, time_t now, time_t *reset);

/*
 * counter_refused - note one refusal for key's current window; returns
 * how many there were in this window, this one included (1: log it).
 */
uint64_t	 counter_refused(struct counters *, const char *key,
		    unsigned window, time_t now);

/*
 * counter_lock - lock key from now: for base seconds the first time,
 * for twice the last lock's length if that one ended less than max
 * seconds before now, never longer than max. Returns the lock's end;
 * *strike (may be NULL) gets which lock in a row this is (1, 2, ...).
 */
time_t		 counter_lock(struct counters *, const char *key,
		    unsigned base, unsigned max, time_t now, unsigned *strike);

/* counter_key - key = "PREFIX addr" in lower case (most mailboxes ignore
   case, and a flood must not dodge a limit by it), truncated to len */
void		 counter_key(char *key, size_t len, const char *prefix,
		    const char *addr);

/* counter_locked - the end of key's lock if it holds at now, else 0 */
time_t		 counter_locked(struct counters *, const char *key,
		    time_t now);

/*
 * counter_unlock - lift key's lock and forget it (the next lock on key
 * is a first one, base seconds long). Returns the end the lock had if it
 * held at now, else 0 (nothing held; a remembered, ended lock is
 * forgotten all the same).
 */
time_t		 counter_unlock(struct counters *, const char *key,
		    time_t now);

/* counter_forget - drop key's count in windows of length window (> 0),
   refusals included; the next counter_add starts from 0 */
void		 counter_forget(struct counters *, const char *key,
		    unsigned window);

/*
 * counter_each - call fn for every entry live at now: each count whose
 * window holds now (window its length, count the count, end the
 * window's end) and each lock that holds at now (window 0, count which
 * lock in a row it is, end the lock's end). Counts of 0 are skipped;
 * the order is the store's. fn must not add, lock, unlock, forget or
 * sweep (reading, counter_add with n 0 and counter_locked, is fine);
 * key is valid during the call only.
 */
void		 counter_each(struct counters *, time_t now,
		    void (*fn)(const char *key, unsigned window,
		    uint64_t count, time_t end, void *arg), void *arg);

/*
 * counter_sweep - drop entries whose window ended before now (and locks
 * that ended max seconds before); for each window that saw refusals,
 * call summary(key, count, refused, arg) first.
 */
void		 counter_sweep(struct counters *, time_t now,
		    void (*summary)(const char *key, uint64_t count,
		    uint64_t refused, void *arg), void *arg);

/*
 * A module's store: its counters, made on first use and swept at most
 * once a minute (summary as for counter_sweep, with a NULL arg), so that
 * each call site need not think about either.
 */
struct counter_store {
	struct counters	*c;
	time_t		 swept;
	void		(*summary)(const char *key, uint64_t count,
			    uint64_t refused, void *arg);
};

/* counter_summary_log - a summary callback for a rate limit's store: logs
   "rate limit window over: KEY had N accepted and M refused" */
void		 counter_summary_log(const char *key, uint64_t count,
		    uint64_t refused, void *arg);

/* counter_store - s's counters at now (made, or swept, as due) */
struct counters	*counter_store(struct counter_store *s, time_t now);

/* counter_store_free - forget s's counters (shutdown, tests) */
void		 counter_store_free(struct counter_store *s);

#endif
