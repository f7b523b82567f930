/*
 * test_counter - common/counter.c: counts per key and window, aligned
 * windows that reset, refusal counts and the sweep's summaries, locks,
 * the walk over what is live (counter_each), unlocking and forgetting,
 * with times chosen by the test (no clock involved).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/counter.h"

/* test_counts_and_windows - per key, per window length, aligned */
static void
test_counts_and_windows(void **state)
{
	struct counters *c = counters_new();
	time_t reset;

	(void)state;
	assert_int_equal(counter_add(c, "a", 3600, 1, 7200, &reset), 1);
	assert_int_equal(reset, 10800);
	assert_int_equal(counter_add(c, "a", 3600, 2, 10799, NULL), 3);
	assert_int_equal(counter_add(c, "b", 3600, 0, 10799, NULL), 0);
	/* the same key with another window length is another count */
	assert_int_equal(counter_add(c, "a", 86400, 5, 10799, &reset), 5);
	assert_int_equal(reset, 86400);
	/* the next hour starts again from zero */
	assert_int_equal(counter_add(c, "a", 3600, 0, 10800, &reset), 0);
	assert_int_equal(reset, 14400);
	assert_int_equal(counter_add(c, "a", 86400, 0, 10800, NULL), 5);
	counters_free(c);
}

static char	 seen[256];
static int	 nseen;

/* summary - the sweep's callback: remember what it said */
static void
summary(const char *key, uint64_t count, uint64_t refused, void *arg)
{
	(void)arg;
	nseen++;
	snprintf(seen, sizeof(seen), "%s %llu %llu", key,
	    (unsigned long long)count, (unsigned long long)refused);
}

/* test_refusals_and_sweep - refusals counted; ended windows dropped,
   summarized only when they refused something */
static void
test_refusals_and_sweep(void **state)
{
	struct counters *c = counters_new();

	(void)state;
	(void)counter_add(c, "to v@x", 60, 5, 100, NULL);
	assert_int_equal(counter_refused(c, "to v@x", 60, 101), 1);
	assert_int_equal(counter_refused(c, "to v@x", 60, 102), 2);
	(void)counter_add(c, "quiet", 60, 1, 100, NULL);
	nseen = 0;
	counter_sweep(c, 119, summary, NULL);	/* window 60..120 open */
	assert_int_equal(nseen, 0);
	counter_sweep(c, 120, summary, NULL);
	assert_int_equal(nseen, 1);
	assert_string_equal(seen, "to v@x 5 2");
	/* dropped: a new window starts empty, refusals too */
	assert_int_equal(counter_add(c, "to v@x", 60, 0, 130, NULL), 0);
	assert_int_equal(counter_refused(c, "to v@x", 60, 130), 1);
	/* an entry that outlived its window without a sweep resets */
	assert_int_equal(counter_add(c, "to v@x", 60, 1, 200, NULL), 1);
	assert_int_equal(counter_refused(c, "to v@x", 60, 200), 1);
	counters_free(c);
}

/* test_store - made on first use; swept (with its summary) only once a
   minute has passed since the last sweep, or when the clock went back */
static void
test_store(void **state)
{
	struct counter_store st = { .summary = summary };
	struct counters *c;

	(void)state;
	nseen = 0;
	c = counter_store(&st, 100);		/* made, and swept: nothing */
	assert_non_null(c);
	assert_ptr_equal(st.c, c);
	(void)counter_add(c, "k", 60, 3, 100, NULL);
	assert_int_equal(counter_refused(c, "k", 60, 100), 1);
	/* window 60..120 ended at 120, but the last sweep was at 100 */
	assert_ptr_equal(counter_store(&st, 159), c);
	assert_int_equal(nseen, 0);
	assert_ptr_equal(counter_store(&st, 160), c);
	assert_int_equal(nseen, 1);
	assert_string_equal(seen, "k 3 1");
	/* the clock went back: swept again at once */
	(void)counter_add(c, "k", 60, 1, 160, NULL);
	assert_int_equal(counter_refused(c, "k", 60, 160), 1);
	(void)counter_store(&st, 159);
	assert_int_equal(nseen, 1);		/* 120..180 has not ended */
	assert_int_equal(st.swept, 159);
	counter_store_free(&st);
	assert_null(st.c);
	assert_int_equal(st.swept, 0);
	counter_store_free(&st);		/* twice: harmless */
}

/* test_many_keys - thousands of keys, each counted on its own */
static void
test_many_keys(void **state)
{
	struct counters *c = counters_new();
	char key[32];
	int i;

	(void)state;
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		(void)counter_add(c, key, 3600, (uint64_t)i, 0, NULL);
	}
	for (i = 0; i < 20000; i += 997) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(counter_add(c, key, 3600, 0, 1, NULL), i);
	}
	counter_sweep(c, 3600, NULL, NULL);
	assert_int_equal(counter_add(c, "k5", 3600, 0, 3600, NULL), 0);
	counters_free(c);
}

/* test_locks - lengths double while recent, capped, then start over */
static void
test_locks(void **state)
{
	struct counters *c = counters_new();
	unsigned strike;

	(void)state;
	assert_int_equal(counter_locked(c, "ip a", 1000), 0);
	assert_int_equal(counter_lock(c, "ip a", 60, 300, 1000, &strike),
	    1060);
	assert_int_equal(strike, 1);
	assert_int_equal(counter_locked(c, "ip a", 1000), 1060);
	assert_int_equal(counter_locked(c, "ip a", 1059), 1060);
	assert_int_equal(counter_locked(c, "ip a", 1060), 0);
	assert_int_equal(counter_locked(c, "ip b", 1000), 0);
	/* the next lock within max (300 s) of the last one's end: doubled */
	assert_int_equal(counter_lock(c, "ip a", 60, 300, 1100, &strike),
	    1220);
	assert_int_equal(strike, 2);
	assert_int_equal(counter_lock(c, "ip a", 60, 300, 1300, &strike),
	    1540);
	assert_int_equal(counter_lock(c, "ip a", 60, 300, 1600, &strike),
	    1900);			/* capped at max */
	assert_int_equal(strike, 4);
	/* a lock is not a count */
	assert_int_equal(counter_add(c, "ip a", 60, 0, 1600, NULL), 0);
	/* the sweep keeps a lock until max after its end... */
	counter_sweep(c, 2199, NULL, NULL);
	assert_int_equal(counter_locked(c, "ip a", 1899), 1900);
	/* ...then forgets it: the next lock starts again at base */
	counter_sweep(c, 2200, NULL, NULL);
	assert_int_equal(counter_locked(c, "ip a", 1899), 0);
	assert_int_equal(counter_lock(c, "ip a", 60, 300, 2300, &strike),
	    2360);
	assert_int_equal(strike, 1);
	/* unswept but long over: also a fresh start */
	assert_int_equal(counter_lock(c, "ip a", 60, 300, 9000, &strike),
	    9060);
	assert_int_equal(strike, 1);
	/* base above max: max */
	assert_int_equal(counter_lock(c, "ip c", 600, 300, 0, NULL), 300);
	counters_free(c);
}

/* test_read_makes_nothing - counter_add with n 0 reads: no entry made
   (the sweep has nothing to drop, the walk nothing to show), none reset */
static void
test_read_makes_nothing(void **state)
{
	struct counters *c = counters_new();
	time_t reset = 0;

	(void)state;
	assert_int_equal(counter_add(c, "r", 60, 0, 100, &reset), 0);
	assert_int_equal(reset, 120);
	nseen = 0;
	(void)counter_refused(c, "old", 60, 100);	/* 60..120 */
	/* a read in a later window leaves the old one for the sweep */
	assert_int_equal(counter_add(c, "old", 60, 0, 130, NULL), 0);
	counter_sweep(c, 130, summary, NULL);
	assert_int_equal(nseen, 1);
	assert_string_equal(seen, "old 0 1");
	counters_free(c);
}

/* What counter_each showed, one line per entry, sorted by the test. */
static char	 walk[16][96];
static int	 nwalk;

static void
walked(const char *key, unsigned window, uint64_t count, time_t end,
    void *arg)
{
	assert_ptr_equal(arg, &nwalk);
	assert_true(nwalk < 16);
	snprintf(walk[nwalk++], sizeof(walk[0]), "%s w=%u n=%llu end=%lld",
	    key, window, (unsigned long long)count, (long long)end);
}

static int
walk_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* walk_at - the live entries at now, sorted */
static void
walk_at(struct counters *c, time_t now)
{
	nwalk = 0;
	counter_each(c, now, walked, &nwalk);
	qsort(walk, (size_t)nwalk, sizeof(walk[0]), walk_cmp);
}

/* test_each - counts in a window that holds, locks that hold; not ended
   windows, not ended locks, not counts of 0 */
static void
test_each(void **state)
{
	struct counters *c = counters_new();

	(void)state;
	(void)counter_add(c, "a", 3600, 3, 7200, NULL);
	(void)counter_add(c, "a", 86400, 4, 7200, NULL);
	(void)counter_add(c, "b", 60, 1, 7100, NULL);	/* 7080..7140 */
	(void)counter_refused(c, "zero", 3600, 7200);	/* count 0 */
	(void)counter_lock(c, "lock x", 60, 600, 7000, NULL);	/* to 7060 */
	(void)counter_lock(c, "lock y", 600, 600, 7200, NULL);
	(void)counter_lock(c, "lock y", 600, 600, 7300, NULL);	/* strike 2 */
	walk_at(c, 7200);
	assert_int_equal(nwalk, 3);
	assert_string_equal(walk[0], "a w=3600 n=3 end=10800");
	assert_string_equal(walk[1], "a w=86400 n=4 end=86400");
	assert_string_equal(walk[2], "lock y w=0 n=2 end=7900");
	/* the hour is over; the day and the lock go on */
	walk_at(c, 10800);
	assert_int_equal(nwalk, 1);
	assert_string_equal(walk[0], "a w=86400 n=4 end=86400");
	walk_at(c, 7899);
	assert_int_equal(nwalk, 3);
	counters_free(c);
	c = counters_new();
	walk_at(c, 0);
	assert_int_equal(nwalk, 0);
	counters_free(c);
}

/* test_unlock_and_forget - a lifted lock no longer holds and is
   forgotten (the next is a first one); an ended or missing lock gives 0;
   a forgotten count starts from 0, other windows of the key untouched */
static void
test_unlock_and_forget(void **state)
{
	struct counters *c = counters_new();
	unsigned strike;

	(void)state;
	assert_int_equal(counter_lock(c, "lock ip a", 60, 600, 1000, NULL),
	    1060);
	assert_int_equal(counter_lock(c, "lock ip a", 60, 600, 1100,
	    &strike), 1220);
	assert_int_equal(strike, 2);
	assert_int_equal(counter_unlock(c, "lock ip a", 1110), 1220);
	assert_int_equal(counter_locked(c, "lock ip a", 1110), 0);
	assert_int_equal(counter_unlock(c, "lock ip a", 1110), 0);
	/* forgotten: the next lock is base long, strike 1 */
	assert_int_equal(counter_lock(c, "lock ip a", 60, 600, 1120,
	    &strike), 1180);
	assert_int_equal(strike, 1);
	/* an ended lock: 0, and forgotten too */
	assert_int_equal(counter_unlock(c, "lock ip a", 1180), 0);
	assert_int_equal(counter_lock(c, "lock ip a", 60, 600, 1200,
	    &strike), 1260);
	assert_int_equal(strike, 1);
	assert_int_equal(counter_unlock(c, "nothing", 0), 0);
	/* a count, not a lock: unlock leaves it */
	(void)counter_add(c, "authfail ip a", 3600, 4, 1200, NULL);
	(void)counter_add(c, "authfail ip a", 86400, 9, 1200, NULL);
	assert_int_equal(counter_unlock(c, "authfail ip a", 1200), 0);
	assert_int_equal(counter_add(c, "authfail ip a", 3600, 0, 1200,
	    NULL), 4);
	counter_forget(c, "authfail ip a", 3600);
	assert_int_equal(counter_add(c, "authfail ip a", 3600, 0, 1200,
	    NULL), 0);
	assert_int_equal(counter_add(c, "authfail ip a", 86400, 0, 1200,
	    NULL), 9);
	assert_int_equal(counter_add(c, "authfail ip a", 3600, 1, 1200,
	    NULL), 1);
	counter_forget(c, "nothing", 60);	/* harmless */
	counter_forget(c, "authfail ip a", 0);	/* 0 is no window */
	assert_int_equal(counter_locked(c, "lock ip a", 1200), 1260);
	counters_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_windows),
		cmocka_unit_test(test_refusals_and_sweep),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_locks),
		cmocka_unit_test(test_read_makes_nothing),
		cmocka_unit_test(test_each),
		cmocka_unit_test(test_unlock_and_forget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
