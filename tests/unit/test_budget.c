/*
 * test_budget - relay/budget.c's bounce limit (budget_bounce): counts per
 * envelope sender without regard to case, refusal at
 * limits.bounces_per_hour with the window's end, a new window, 0 for no
 * limit, and one log line per sender and window. Times are chosen by the
 * test (no clock involved); stderr is captured to read the log.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "config/config.h"
#include "relay/budget.h"
#include "submit/rates.h"
#include "capture_log.h"

#define HOUR	3600
#define T0	((time_t)7200)		/* a window starts here */

static struct config	 cfg;
static int
setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.limits.rate_window = HOUR;
	cfg.limits.bounces_per_hour = 3;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	capture_reset();		/* a test failed while capturing */
	budget_free();
	rates_free();
	return 0;
}

/* test_counts_and_refuses - three bounces pass, the fourth and fifth are
   refused with the window's end, and only the first refusal is logged */
static void
test_counts_and_refuses(void **state)
{
	time_t reset = 0;
	char *log;
	int i;

	(void)state;
	capture();
	for (i = 0; i < 3; i++)
		assert_int_equal(budget_bounce(&cfg, "alice@example.org",
		    T0 + i, &reset), 0);
	assert_int_equal(budget_bounce(&cfg, "alice@example.org", T0 + 10,
	    &reset), -1);
	assert_int_equal(reset, T0 + HOUR);
	reset = 0;
	assert_int_equal(budget_bounce(&cfg, "alice@example.org",
	    T0 + HOUR - 1, &reset), -1);
	assert_int_equal(reset, T0 + HOUR);
	/* NULL reset is allowed */
	assert_int_equal(budget_bounce(&cfg, "alice@example.org", T0 + 20,
	    NULL), -1);
	log = captured();
	assert_int_equal(occurrences(log, "limits.bounces_per_hour"), 1);
	assert_non_null(strstr(log, "bounce limit: <alice@example.org> "
	    "reached limits.bounces_per_hour = 3"));
	assert_non_null(strstr(log, "until 03:00:00 UTC"));	/* T0 + HOUR */
	free(log);
}

/* test_next_window - the count starts again at the window's end, and a
   refusal there is logged again */
static void
test_next_window(void **state)
{
	time_t reset = 0;
	char *log;
	int i;

	(void)state;
	capture();
	for (i = 0; i < 3; i++)
		assert_int_equal(budget_bounce(&cfg, "bob@example.org", T0,
		    NULL), 0);
	assert_int_equal(budget_bounce(&cfg, "bob@example.org", T0, &reset),
	    -1);
	assert_int_equal(reset, T0 + HOUR);
	for (i = 0; i < 3; i++)
		assert_int_equal(budget_bounce(&cfg, "bob@example.org", reset,
		    NULL), 0);
	assert_int_equal(budget_bounce(&cfg, "bob@example.org", reset + 5,
	    &reset), -1);
	assert_int_equal(reset, T0 + 2 * HOUR);
	log = captured();
	assert_int_equal(occurrences(log, "bounce limit: <bob@example.org>"),
	    2);
	free(log);
}

/* test_case_and_senders - one count per address whatever its case; other
   senders and other kinds of count are apart */
static void
test_case_and_senders(void **state)
{
	char *rcpts[] = { "carol@example.org" };
	struct principal erin;

	(void)state;
	capture();
	assert_int_equal(budget_bounce(&cfg, "Carol@Example.ORG", T0, NULL), 0);
	assert_int_equal(budget_bounce(&cfg, "carol@example.org", T0, NULL), 0);
	assert_int_equal(budget_bounce(&cfg, "CAROL@EXAMPLE.ORG", T0, NULL), 0);
	assert_int_equal(budget_bounce(&cfg, "cArOl@example.org", T0, NULL),
	    -1);
	/* another sender has its own count */
	assert_int_equal(budget_bounce(&cfg, "dave@example.org", T0, NULL), 0);
	/* mail accepted from or to an address is not a bounce to it */
	principal_login(&erin, "erin@example.org");
	rates_accepted(&cfg, &erin, "erin@example.org", rcpts, 1, T0);
	rates_accepted(&cfg, &erin, "erin@example.org", rcpts, 1, T0);
	assert_int_equal(budget_bounce(&cfg, "erin@example.org", T0, NULL), 0);
	free(captured());
}

/* test_unlimited - limits.bounces_per_hour = 0: never refused */
static void
test_unlimited(void **state)
{
	int i;

	(void)state;
	capture();
	cfg.limits.bounces_per_hour = 0;
	for (i = 0; i < 10000; i++)
		assert_int_equal(budget_bounce(&cfg, "frank@example.org",
		    T0 + i % HOUR, NULL), 0);
	/* and nothing was counted meanwhile: a limit set later starts at 0 */
	cfg.limits.bounces_per_hour = 1;
	assert_int_equal(budget_bounce(&cfg, "frank@example.org", T0, NULL), 0);
	assert_int_equal(budget_bounce(&cfg, "frank@example.org", T0, NULL),
	    -1);
	free(captured());
}

/* test_short_window - the window is limits.rate_window (tests shorten
   the "hour"), aligned to the epoch */
static void
test_short_window(void **state)
{
	time_t reset = 0;

	(void)state;
	capture();
	cfg.limits.rate_window = 4;
	cfg.limits.bounces_per_hour = 2;
	assert_int_equal(budget_bounce(&cfg, "gina@example.org", 1001, NULL), 0);
	assert_int_equal(budget_bounce(&cfg, "gina@example.org", 1002, NULL), 0);
	assert_int_equal(budget_bounce(&cfg, "gina@example.org", 1003, &reset),
	    -1);
	assert_int_equal(reset, 1004);
	assert_int_equal(budget_bounce(&cfg, "gina@example.org", 1004, NULL), 0);
	free(captured());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts_and_refuses,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_window, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_case_and_senders, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unlimited, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_short_window, setup,
		    teardown),
	};

	log_init("test_rates", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
