/*
 * test_limits - submit/limits.c: what `postern limits show` answers and
 * what `postern limits unlock` lifts, against real lockouts and counts
 * made through submit/guard.c (guard_auth_failed, guard_connect) and
 * submit/rates.c (rates_accepted). Times are chosen by the test (no
 * clock involved); stderr is captured to read the log.
 */
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "config/config.h"
#include "config/principal.h"
#include "submit/guard.h"
#include "submit/limits.h"
#include "submit/rates.h"
#include "capture_log.h"

#define HOUR	3600
#define T0	((time_t)1796680800)	/* 2026-12-07T22:00:00Z, on the hour */

static struct config		 cfg;
static struct sender_grant	 grant;
static struct config_net	 exempt;

static int
setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.limits.rate_window = HOUR;
	cfg.limits.auth_failures_per_ip = 3;
	cfg.limits.auth_failures_per_login = 5;
	cfg.limits.auth_failure_window = HOUR;
	cfg.limits.auth_lockout = 600;
	cfg.limits.auth_lockout_max = 3600;
	cfg.limits.connection_rate_per_ip = 10;
	log_init("test_limits", 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	capture_reset();		/* a test failed while capturing */
	guard_free();
	rates_free();
	return 0;
}

/* auth_fail - n failed AUTH attempts from ip as login at now */
static void
auth_fail(const char *ip, const char *login, int n, time_t now)
{
	while (n-- > 0)
		guard_auth_failed(&cfg, ip, false, login, now);
}

/* member - obj's member name as a string (asserted to be one) */
static const char *
member(const json_t *obj, const char *name)
{
	const json_t *v = json_object_get(obj, name);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

/* number - obj's member name as an integer (asserted to be one) */
static json_int_t
number(const json_t *obj, const char *name)
{
	const json_t *v = json_object_get(obj, name);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* list - show's array name (asserted to be one) */
static json_t *
list(json_t *show, const char *name)
{
	json_t *a = json_object_get(show, name);

	assert_true(json_is_array(a));
	return a;
}

/* check_near - near[i] is kind key's count/max of setting, window_end */
static void
check_near(json_t *near, size_t i, const char *kind, const char *key,
    const char *setting, json_int_t count, json_int_t max, time_t end)
{
	json_t *o = json_array_get(near, i);

	assert_non_null(o);
	assert_string_equal(member(o, "kind"), kind);
	assert_string_equal(member(o, "key"), key);
	assert_string_equal(member(o, "limit"), setting);
	assert_int_equal(number(o, "count"), count);
	assert_int_equal(number(o, "max"), max);
	assert_int_equal(number(o, "window_end"), end);
	assert_int_equal(json_object_size(o), 6);
}

/* test_empty - nothing counted: both lists empty, nothing else */
static void
test_empty(void **state)
{
	json_t *show;

	(void)state;
	show = limits_show(&cfg, T0);
	assert_int_equal(json_object_size(show), 2);
	assert_int_equal(json_array_size(list(show, "lockouts")), 0);
	assert_int_equal(json_array_size(list(show, "near")), 0);
	json_decref(show);
}

/* test_ip_lockout - a real lockout of an address is shown with its end
   and failures; unlock lifts it (logged), forgets the failures (one more
   does not lock again) and the lockout history (the next lockout is
   limits.auth_lockout long, not twice); unlocking again lifts nothing */
static void
test_ip_lockout(void **state)
{
	char until[LOG_UTC_LEN], *err = NULL, *log;
	json_t *show, *lock;

	(void)state;
	auth_fail("192.0.2.7", NULL, 3, T0 + 5);
	assert_int_equal(guard_auth_locked("192.0.2.7", false, NULL, T0 + 6,
	    until), REPLY_AUTH_LOCKED_IP);
	show = limits_show(&cfg, T0 + 6);
	assert_int_equal(json_array_size(list(show, "lockouts")), 1);
	lock = json_array_get(list(show, "lockouts"), 0);
	assert_string_equal(member(lock, "kind"), "ip");
	assert_string_equal(member(lock, "key"), "192.0.2.7");
	assert_int_equal(number(lock, "until"), T0 + 605);
	assert_string_equal(member(lock, "until_utc"), "2026-12-07T22:10:05Z");
	assert_int_equal(number(lock, "failures"), 3);
	assert_int_equal(json_object_size(lock), 5);
	/* locked: its failures are not listed again as near the limit */
	assert_int_equal(json_array_size(list(show, "near")), 0);
	json_decref(show);

	capture();
	assert_int_equal(limits_unlock(&cfg, "192.0.2.7", T0 + 10, &err), 1);
	assert_null(err);
	assert_int_equal(guard_auth_locked("192.0.2.7", false, NULL, T0 + 10,
	    until), REPLY_NONE);
	assert_int_equal(guard_connect(&cfg, "192.0.2.7", false, T0 + 10),
	    REPLY_NONE);
	show = limits_show(&cfg, T0 + 10);
	assert_int_equal(json_array_size(list(show, "lockouts")), 0);
	json_decref(show);
	/* one more failure: counted from 0, not locked */
	auth_fail("192.0.2.7", NULL, 1, T0 + 11);
	assert_int_equal(guard_auth_locked("192.0.2.7", false, NULL, T0 + 11,
	    until), REPLY_NONE);
	assert_int_equal(limits_unlock(&cfg, "192.0.2.7", T0 + 12, &err), 0);
	log = captured();
	assert_non_null(strstr(log, "limits: unlocked ip 192.0.2.7 (locked "
	    "until 22:10:05 UTC)"));
	assert_non_null(strstr(log, "limits: ip 192.0.2.7 was not locked "
	    "out"));
	assert_int_equal(occurrences(log, "limits: "), 2);
	free(log);
	/* the next lockout is a first one again: 600 s */
	auth_fail("192.0.2.7", NULL, 3, T0 + 20);
	show = limits_show(&cfg, T0 + 21);
	lock = json_array_get(list(show, "lockouts"), 0);
	assert_non_null(lock);
	assert_int_equal(number(lock, "until"), T0 + 620);
	json_decref(show);
	/* a lockout that ended is not shown, and not lifted */
	show = limits_show(&cfg, T0 + 620);
	assert_int_equal(json_array_size(list(show, "lockouts")), 0);
	json_decref(show);
	assert_int_equal(limits_unlock(&cfg, "192.0.2.7", T0 + 620, &err), 0);
}

/* test_login_lockout - failures for one login from several addresses
   lock the login; it is shown in lower case and unlocked whatever the
   case the admin types; other lockouts stay */
static void
test_login_lockout(void **state)
{
	char until[LOG_UTC_LEN], *err = NULL, *log;
	json_t *show, *locks, *lock;

	(void)state;
	auth_fail("192.0.2.1", "Alice@Example.ORG", 2, T0);
	auth_fail("192.0.2.2", "alice@example.org", 3, T0 + 1);
	/* 192.0.2.2 reached 3 too: two lockouts, the address's first
	   (both end at T0 + 601; "ip" sorts before "login") */
	show = limits_show(&cfg, T0 + 2);
	locks = list(show, "lockouts");
	assert_int_equal(json_array_size(locks), 2);
	lock = json_array_get(locks, 0);
	assert_string_equal(member(lock, "kind"), "ip");
	assert_string_equal(member(lock, "key"), "192.0.2.2");
	lock = json_array_get(locks, 1);
	assert_string_equal(member(lock, "kind"), "login");
	assert_string_equal(member(lock, "key"), "alice@example.org");
	assert_int_equal(number(lock, "until"), T0 + 601);
	assert_int_equal(number(lock, "failures"), 5);
	json_decref(show);

	capture();
	assert_int_equal(limits_unlock(&cfg, "ALICE@example.org", T0 + 3,
	    &err), 1);
	log = captured();
	assert_non_null(strstr(log, "limits: unlocked login "
	    "alice@example.org (locked until 22:10:01 UTC)"));
	free(log);
	assert_int_equal(guard_auth_locked("192.0.2.3", false,
	    "alice@example.org", T0 + 3, until), REPLY_NONE);
	show = limits_show(&cfg, T0 + 3);
	locks = list(show, "lockouts");
	assert_int_equal(json_array_size(locks), 1);
	assert_string_equal(member(json_array_get(locks, 0), "key"),
	    "192.0.2.2");
	json_decref(show);
}

/* test_near_auth_failures - failures toward the next lockout are near at
   80 %: 4 of 5 for a login; 2 of 3 for an address is not (67 %) */
static void
test_near_auth_failures(void **state)
{
	json_t *show, *near;

	(void)state;
	auth_fail("192.0.2.9", "bob@example.org", 2, T0);
	auth_fail("192.0.2.10", "bob@example.org", 2, T0);
	show = limits_show(&cfg, T0 + 1);
	near = list(show, "near");
	assert_int_equal(json_array_size(near), 1);
	check_near(near, 0, "login", "bob@example.org",
	    "limits.auth_failures_per_login", 4, 5, T0 + HOUR);
	json_decref(show);
}

/* test_near_rates - sorted most over first: a recipient at 160 %, a
   login at 100 % of its senders entry's own limit, a login at 80 %, a
   local account at 90 %; 70 % is not near, nor a count without a limit;
   once the hour is over nothing is */
static void
test_near_rates(void **state)
{
	char *victim[] = { "Victim@Example.NET" };
	struct principal alice, bob, carol, www;
	json_t *show, *near;
	int i;

	(void)state;
	cfg.limits.user_messages_per_hour = 10;
	cfg.limits.recipient_messages_per_hour = 5;
	cfg.limits.user_recipients_per_hour = 100;
	cfg.limits.user_messages_per_day = 0;	/* off: never near */
	memset(&grant, 0, sizeof(grant));
	grant.login = "carol@example.org";
	grant.messages_per_hour = 2;
	grant.messages_per_day = grant.recipients_per_hour = -1;
	grant.recipients_per_day = -1;
	cfg.senders = &grant;
	cfg.nsenders = 1;
	principal_login(&alice, "alice@example.org");
	principal_login(&bob, "bob@example.org");
	principal_login(&carol, "carol@example.org");
	principal_local(&www, NULL, "www-data", 33, NULL);
	for (i = 0; i < 8; i++)
		rates_accepted(&cfg, &alice, "alice@example.org", victim, 1,
		    T0 + i);
	for (i = 0; i < 7; i++)
		rates_accepted(&cfg, &bob, "bob@example.org", NULL, 0, T0);
	for (i = 0; i < 2; i++)
		rates_accepted(&cfg, &carol, "carol@example.org", NULL, 0,
		    T0);
	for (i = 0; i < 9; i++)
		rates_accepted(&cfg, &www, "www@example.org", NULL, 0, T0);
	show = limits_show(&cfg, T0 + 100);
	near = list(show, "near");
	assert_int_equal(json_array_size(near), 4);
	check_near(near, 0, "recipient", "victim@example.net",
	    "limits.recipient_messages_per_hour", 8, 5, T0 + HOUR);
	check_near(near, 1, "login", "carol@example.org",
	    "senders.messages_per_hour", 2, 2, T0 + HOUR);
	check_near(near, 2, "local", "www-data",
	    "limits.user_messages_per_hour", 9, 10, T0 + HOUR);
	check_near(near, 3, "login", "alice@example.org",
	    "limits.user_messages_per_hour", 8, 10, T0 + HOUR);
	json_decref(show);
	show = limits_show(&cfg, T0 + HOUR);
	assert_int_equal(json_array_size(list(show, "near")), 0);
	json_decref(show);
}

/* test_exempt_never_shown - an address in limits.exempt_networks (say,
   added by a reload after it was counted) is neither a lockout nor near */
static void
test_exempt_never_shown(void **state)
{
	json_t *show;

	(void)state;
	auth_fail("198.51.100.9", NULL, 3, T0);
	exempt.family = AF_INET;
	exempt.addr[0] = 198;
	exempt.addr[1] = 51;
	exempt.addr[2] = 100;
	exempt.prefix = 24;
	cfg.limits.exempt = &exempt;
	cfg.limits.nexempt = 1;
	show = limits_show(&cfg, T0 + 1);
	assert_int_equal(json_array_size(list(show, "lockouts")), 0);
	json_decref(show);
}

/* test_connection_rate - an address's new connections this minute, near
   from 8 of 10 on, with the minute's end */
static void
test_connection_rate(void **state)
{
	json_t *show, *near;
	int i;

	(void)state;
	for (i = 0; i < 8; i++)
		assert_int_equal(guard_connect(&cfg, "2001:db8::5", false,
		    T0 + 30), REPLY_NONE);
	show = limits_show(&cfg, T0 + 31);
	near = list(show, "near");
	assert_int_equal(json_array_size(near), 1);
	check_near(near, 0, "ip", "2001:db8::5",
	    "limits.connection_rate_per_ip", 8, 10, T0 + 60);
	json_decref(show);
}

/* test_what - IPv4 and IPv6 (in inet_ntop's form) are addresses, a
   login is what `postern users add` would store (lower case); anything
   else is refused with one line that names it */
static void
test_what(void **state)
{
	static const struct {
		const char	*in, *kind, *canon;
	} t[] = {
		{ "192.0.2.7", "ip", "192.0.2.7" },
		{ "::1", "ip", "::1" },
		{ "2001:DB8:0:0::1", "ip", "2001:db8::1" },
		{ "::ffff:192.0.2.1", "ip", "::ffff:192.0.2.1" },
		{ "Alice@Example.org", "login", "alice@example.org" },
		{ "trac", "login", "trac" },
		{ "not/an/ip@@", NULL, NULL },
		{ "", NULL, NULL },
		{ "a b", NULL, NULL },
		{ "@example.org", NULL, NULL },
		{ "alice@", NULL, NULL },
		{ "line\nbreak", NULL, NULL },
	};
	char canon[LIMITS_WHAT_MAX], *err;
	const char *kind;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err = NULL;
		kind = limits_what(t[i].in, canon, &err);
		if (t[i].kind == NULL) {
			assert_null(kind);
			assert_non_null(err);
			assert_null(strchr(err, '\n'));
			assert_non_null(strstr(err, "is neither an IP address "
			    "nor a login"));
			free(err);
			continue;
		}
		assert_null(err);
		assert_non_null(kind);
		assert_string_equal(kind, t[i].kind);
		assert_string_equal(canon, t[i].canon);
	}
	/* limits_unlock refuses the same, and logs nothing */
	capture();
	err = NULL;
	assert_int_equal(limits_unlock(&cfg, "not/an/ip@@", T0, &err), -1);
	assert_string_equal(err, "\"not/an/ip@@\" is neither an IP address "
	    "nor a login");
	free(err);
	err = captured();
	assert_null(strstr(err, "limits:"));
	free(err);
}

/* test_ipv6_unlock - an IPv6 address typed in another form unlocks the
   lockout the server counted in inet_ntop's form */
static void
test_ipv6_unlock(void **state)
{
	char until[LOG_UTC_LEN], *err = NULL;

	(void)state;
	auth_fail("2001:db8::7", NULL, 3, T0);
	assert_int_equal(guard_auth_locked("2001:db8::7", false, NULL, T0,
	    until), REPLY_AUTH_LOCKED_IP);
	capture();
	assert_int_equal(limits_unlock(&cfg, "2001:0DB8:0000::0007", T0 + 1,
	    &err), 1);
	free(captured());
	assert_int_equal(guard_auth_locked("2001:db8::7", false, NULL, T0 + 1,
	    until), REPLY_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ip_lockout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_login_lockout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_near_auth_failures, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_near_rates, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_exempt_never_shown, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_connection_rate, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_what, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_unlock, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
