/*
 * test_metrics - common/metrics.c: the Prometheus text exposition
 * (HELP and TYPE once per family, label values escaped, counters shown
 * under every family they belong to, histogram buckets cumulative up to
 * +Inf with sum and count). Which reason each refusal reply counts
 * under is the reply table's business: tests/unit/test_reply.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/metrics.h"

/* render - the exposition as a NUL-terminated string (caller frees) */
static char *
render(void)
{
	struct buf b;
	char *s;

	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render(&b), 0);
	s = strdup(b.data);
	buf_free(&b);
	return s;
}

/* has_line - does text contain exactly this line? */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

/* count_lines_starting - lines of text that start with prefix */
static int
count_lines_starting(const char *text, const char *prefix)
{
	const char *p = text;
	int n = 0;

	while (*p != '\0') {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
		if ((p = strchr(p, '\n')) == NULL)
			break;
		p++;
	}
	return n;
}

static int
setup(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

/* test_escape - label values: backslash, quote, newline; HELP keeps the
   quote */
static void
test_escape(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 256);
	assert_int_equal(metrics_escape(&b, "a\\b\"c\nd", 1), 0);
	assert_string_equal(b.data, "a\\\\b\\\"c\\nd");
	buf_reset(&b);
	assert_int_equal(metrics_escape(&b, "a\\b\"c\nd", 0), 0);
	assert_string_equal(b.data, "a\\\\b\"c\\nd");
	buf_reset(&b);
	assert_int_equal(metrics_escape(&b, "plain-sha256", 1), 0);
	assert_string_equal(b.data, "plain-sha256");
	buf_free(&b);
}

/* test_counters - every family has HELP and TYPE once, series with
   their label, and a counter shown in two families */
static void
test_counters(void **state)
{
	char *t;

	(void)state;
	metrics_inc(M_CONNECTIONS);
	metrics_inc(M_CONNECTIONS);
	metrics_add(M_ACCEPTED, 3);
	metrics_inc(M_REJECT_SENDER);
	metrics_inc(M_DKIM_ED25519_SHA256);
	metrics_inc(M_REFUSED_CONNECTIONS_PER_IP);
	metrics_inc(M_REJECT_QUEUE_SPACE);
	assert_int_equal(metrics_get(M_ACCEPTED), 3);
	t = render();
	assert_true(has_line(t, "# TYPE postern_connections_total counter"));
	assert_true(has_line(t, "postern_connections_total 2"));
	assert_true(has_line(t, "postern_messages_accepted_total 3"));
	assert_true(has_line(t,
	    "postern_messages_rejected_total{reason=\"sender_not_owned\"} 1"));
	assert_true(has_line(t,
	    "postern_messages_rejected_total{reason=\"size\"} 0"));
	assert_true(has_line(t, "postern_dkim_signatures_total"
	    "{algorithm=\"ed25519-sha256\"} 1"));
	assert_true(has_line(t, "postern_dkim_signatures_total"
	    "{algorithm=\"rsa-sha256\"} 0"));
	/* the same counter under two families */
	assert_true(has_line(t, "postern_connections_refused_total"
	    "{reason=\"connections_per_ip\"} 1"));
	assert_true(has_line(t, "postern_limit_hits_total"
	    "{limit=\"connections_per_ip\"} 1"));
	assert_true(has_line(t,
	    "postern_limit_hits_total{limit=\"queue_space\"} 1"));
	/* HELP and TYPE once per family, every counter name ends _total */
	assert_int_equal(count_lines_starting(t,
	    "# TYPE postern_messages_rejected_total "), 1);
	assert_int_equal(count_lines_starting(t,
	    "# HELP postern_messages_rejected_total "), 1);
	assert_int_equal(count_lines_starting(t, "# TYPE "),
	    count_lines_starting(t, "# HELP "));
	for (const char *p = t; (p = strstr(p, " counter\n")) != NULL; p++)
		assert_memory_equal(p - 6, "_total", 6);
	assert_true(t[strlen(t) - 1] == '\n');
	free(t);
	metrics_reset();
	t = render();
	assert_true(has_line(t, "postern_connections_total 0"));
	free(t);
}

/* test_gauges - set values appear as they are */
static void
test_gauges(void **state)
{
	char *t;

	(void)state;
	metrics_gauge_set(MG_SESSIONS, 4);
	metrics_gauge_set(MG_QUEUE_MESSAGES, 12);
	metrics_gauge_set(MG_QUEUE_OLDEST_AGE, 90.5);
	t = render();
	assert_true(has_line(t, "# TYPE postern_sessions gauge"));
	assert_true(has_line(t, "postern_sessions 4"));
	assert_true(has_line(t, "postern_queue_messages 12"));
	assert_true(has_line(t, "postern_queue_oldest_age_seconds 90.5"));
	free(t);
}

/* test_dns_records - the drift gauge: no series until set, one per
   domain and record, updated in place, escaped, cleared */
static void
test_dns_records(void **state)
{
	char *t;

	(void)state;
	t = render();
	assert_true(has_line(t, "# TYPE postern_dns_record_ok gauge"));
	assert_null(strstr(t, "postern_dns_record_ok{"));
	free(t);
	metrics_dns_record_set("example.org", "spf", 1);
	metrics_dns_record_set("example.org", "dkim", 1);
	metrics_dns_record_set("example.org", "spf", 0);
	metrics_dns_record_set("we\"ird.test", "dmarc", 7);
	t = render();
	assert_true(has_line(t,
	    "postern_dns_record_ok{domain=\"example.org\",record=\"spf\"} 0"));
	assert_true(has_line(t,
	    "postern_dns_record_ok{domain=\"example.org\",record=\"dkim\"} 1"));
	assert_true(has_line(t, "postern_dns_record_ok{domain="
	    "\"we\\\"ird.test\",record=\"dmarc\"} 1"));
	free(t);
	metrics_dns_record_clear();
	t = render();
	assert_null(strstr(t, "postern_dns_record_ok{"));
	free(t);
	metrics_dns_record_set("example.org", "spf", 1);
	metrics_reset();
	t = render();
	assert_null(strstr(t, "postern_dns_record_ok{"));
	free(t);
}

/* test_histogram - cumulative buckets, values on a bound fall in it,
   +Inf counts everything, sum and count */
static void
test_histogram(void **state)
{
	char *t;

	(void)state;
	metrics_observe(MH_ACCEPT_LATENCY, 0.003);	/* le 0.005 */
	metrics_observe(MH_ACCEPT_LATENCY, 0.01);	/* le 0.01: on it */
	metrics_observe(MH_ACCEPT_LATENCY, 0.2);	/* le 0.25 */
	metrics_observe(MH_ACCEPT_LATENCY, 100);	/* past 30: +Inf */
	metrics_observe(MH_ACCEPT_LATENCY, -1);		/* clamped to 0 */
	t = render();
	assert_true(has_line(t,
	    "# TYPE postern_accept_latency_seconds histogram"));
	assert_true(has_line(t,
	    "postern_accept_latency_seconds_bucket{le=\"0.005\"} 2"));
	assert_true(has_line(t,
	    "postern_accept_latency_seconds_bucket{le=\"0.01\"} 3"));
	assert_true(has_line(t,
	    "postern_accept_latency_seconds_bucket{le=\"0.1\"} 3"));
	assert_true(has_line(t,
	    "postern_accept_latency_seconds_bucket{le=\"0.25\"} 4"));
	assert_true(has_line(t,
	    "postern_accept_latency_seconds_bucket{le=\"30\"} 4"));
	assert_true(has_line(t,
	    "postern_accept_latency_seconds_bucket{le=\"+Inf\"} 5"));
	assert_true(has_line(t, "postern_accept_latency_seconds_count 5"));
	assert_non_null(strstr(t, "\npostern_accept_latency_seconds_sum "
	    "100.21"));
	/* the other histogram is empty but complete */
	assert_true(has_line(t,
	    "postern_delivery_latency_seconds_bucket{le=\"432000\"} 0"));
	assert_true(has_line(t,
	    "postern_delivery_latency_seconds_bucket{le=\"+Inf\"} 0"));
	assert_true(has_line(t, "postern_delivery_latency_seconds_sum 0"));
	assert_true(has_line(t, "postern_delivery_latency_seconds_count 0"));
	free(t);
}

/* test_bounded - an output buffer too small fails, never overflows */
static void
test_bounded(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(metrics_render(&b), -1);
	assert_true(b.len <= 100);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_escape, setup),
		cmocka_unit_test_setup(test_counters, setup),
		cmocka_unit_test_setup(test_gauges, setup),
		cmocka_unit_test_setup(test_dns_records, setup),
		cmocka_unit_test_setup(test_histogram, setup),
		cmocka_unit_test_setup(test_bounded, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
