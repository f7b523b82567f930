/*
 * test_msghdr - header section scanning and the Received, Message-ID and
 * Date fix-ups
 *
 * The scan and end cases sit in tables; formatting is checked against
 * exact strings at fixed times in fixed zones (zones missing from the
 * system's tzdata are skipped, loudly).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/msghdr.h"

#define S(lit)	lit, sizeof(lit) - 1
#define INVALID	0, 0, 0, 0, NULL, 0, false	/* rest of a -1 case */

#define T_20261123	((time_t)1795464449)	/* 2026-11-23 20:07:29Z, Mon */
#define T_20260305	((time_t)1772683506)	/* 2026-03-05 04:05:06Z, Thu */
#define T_20260702	((time_t)1783000000)	/* 2026-07-02 13:46:40Z, Thu */

struct scan_case {
	const char	*name;
	const char	*text;
	size_t		 len;
	int		 ret;
	const char	*err;		/* when ret is -1 */
	unsigned	 nfrom, nsender, ndate, nmessage_id;
	const char	*from;		/* NULL: no From: */
	size_t		 hdrlen;
	bool		 has_body;
};

static const struct scan_case scan_cases[] = {
	{ "normal headers",
	  S("From: Alice <alice@example.org>\r\nTo: bob@example.com\r\n"
	    "Subject: hi\r\nDate: Mon, 23 Nov 2026 20:07:29 +0000\r\n"
	    "Message-ID: <1@example.org>\r\nSender: s@example.org\r\n"
	    "\r\nbody\r\n"),
	  0, NULL, 1, 1, 1, 1, " Alice <alice@example.org>", 158, true },
	{ "names are case-insensitive",
	  S("FROM: a@x\r\nsender: b@x\r\nDATE: d\r\nmessage-id: <m>\r\n"
	    "MESSAGE-Id: <n>\r\n"),
	  0, NULL, 1, 1, 1, 2, " a@x", 67, false },
	{ "folded From",
	  S("Subject: x\r\nFrom: Alice\r\n\t<alice@example.org>\r\n"
	    "To: b@x\r\n\r\n"),
	  0, NULL, 1, 0, 0, 0, " Alice\r\n\t<alice@example.org>", 56, true },
	{ "folded From at the end, no body",
	  S("From: Alice\r\n <a@x>\r\n  (c)\r\n"),
	  0, NULL, 1, 0, 0, 0, " Alice\r\n <a@x>\r\n  (c)", 28, false },
	{ "multiple From: the first one is kept",
	  S("From: a@x\r\nTo: t@x\r\nFrom: b@y\r\n\r\n"),
	  0, NULL, 2, 0, 0, 0, " a@x", 31, true },
	{ "no body", S("From: a@x\r\nSubject: s\r\n"),
	  0, NULL, 1, 0, 0, 0, " a@x", 23, false },
	{ "last line without CRLF", S("Subject: s\r\nFrom: a@x"),
	  0, NULL, 1, 0, 0, 0, " a@x", 21, false },
	{ "empty From value", S("From:\r\n\r\n"),
	  0, NULL, 1, 0, 0, 0, "", 7, true },
	{ "empty header section", S("\r\nbody\r\n"),
	  0, NULL, 0, 0, 0, 0, NULL, 0, true },
	{ "empty message", S(""),
	  0, NULL, 0, 0, 0, 0, NULL, 0, false },
	{ "empty line inside the body ends nothing more",
	  S("From: a@x\r\n\r\nFrom: b@y\r\n\r\n"),
	  0, NULL, 1, 0, 0, 0, " a@x", 11, true },
	{ "8-bit value tolerated",
	  S("Subject: caf\xc3\xa9\r\nFrom: J\xc3\xb6rg <j@x>\r\n\r\n"),
	  0, NULL, 1, 0, 0, 0, " J\xc3\xb6rg <j@x>", 35, true },
	{ "obsolete space before colon still counts",
	  S("From : evil@y\r\nFrom\t: a@x\r\n\r\n"),
	  0, NULL, 2, 0, 0, 0, " evil@y", 27, true },
	{ "look-alike names are not counted",
	  S("Resent-From: a@x\r\nX-From: b@x\r\nFromX: c@x\r\n"
	    "Message-IDs: d\r\nDates: e\r\n"),
	  0, NULL, 0, 0, 0, 0, NULL, 69, false },
	{ "invalid first line", S("Hello\r\n"),
	  -1, "message does not start with a header field", INVALID },
	{ "invalid first line, body follows", S("Hello world\r\n\r\nx\r\n"),
	  -1, "message does not start with a header field", INVALID },
	{ "continuation first", S(" x\r\nFrom: a@x\r\n"),
	  -1, "header starts with a continuation line", INVALID },
	{ "tab continuation first", S("\tx\r\n"),
	  -1, "header starts with a continuation line", INVALID },
	{ "name with space", S("X Foo: bar\r\n"),
	  -1, "message does not start with a header field", INVALID },
	{ "name with space, later line", S("From: a@x\r\nX Foo: bar\r\n"),
	  -1, "header line is not a field", INVALID },
	{ "body-like line inside the header", S("From: a@x\r\nhello\r\n\r\n"),
	  -1, "header line is not a field", INVALID },
	{ "empty name", S(":x\r\n"),
	  -1, "message does not start with a header field", INVALID },
	{ "8-bit name", S("Fr\xc3\xb6m: a@x\r\n"),
	  -1, "message does not start with a header field", INVALID },
	{ "control in name", S("Fr\x01om: a@x\r\n"),
	  -1, "message does not start with a header field", INVALID },
	{ "bare LF", S("Subject: a\nFrom: evil@y\r\n\r\n"),
	  -1, "bare LF in the header section", INVALID },
	{ "bare LF line", S("From: a@x\r\n\n"),
	  -1, "bare LF in the header section", INVALID },
	{ "bare CR", S("Subject: a\rFrom: evil@y\r\n\r\n"),
	  -1, "bare CR in the header section", INVALID },
};

/* test_scan - every case of the scan table */
static void
test_scan(void **state)
{
	const struct scan_case *c;
	struct msghdr_info mi;
	const char *err;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
		c = &scan_cases[i];
		err = NULL;
		ret = msghdr_scan(c->text, c->len, &mi, &err);
		if (ret != c->ret)
			fail_msg("%s: returned %d, want %d (err %s)", c->name,
			    ret, c->ret, err ? err : "none");
		if (ret == -1) {
			if (err == NULL || strcmp(err, c->err) != 0)
				fail_msg("%s: err \"%s\", want \"%s\"", c->name,
				    err ? err : "(null)", c->err);
			continue;
		}
		if (mi.nfrom != c->nfrom || mi.nsender != c->nsender ||
		    mi.ndate != c->ndate || mi.nmessage_id != c->nmessage_id)
			fail_msg("%s: counts from %u sender %u date %u "
			    "msgid %u, want %u %u %u %u", c->name, mi.nfrom,
			    mi.nsender, mi.ndate, mi.nmessage_id, c->nfrom,
			    c->nsender, c->ndate, c->nmessage_id);
		if (c->from == NULL) {
			if (mi.from != NULL)
				fail_msg("%s: from set", c->name);
		} else if (mi.from == NULL || mi.from_len != strlen(c->from) ||
		    memcmp(mi.from, c->from, mi.from_len) != 0 ||
		    mi.from < c->text || mi.from + mi.from_len >
		    c->text + c->len)
			fail_msg("%s: from \"%.*s\", want \"%s\"", c->name,
			    mi.from ? (int)mi.from_len : 0,
			    mi.from ? mi.from : "", c->from);
		if (mi.len != c->hdrlen || mi.has_body != c->has_body)
			fail_msg("%s: len %zu has_body %d, want %zu %d",
			    c->name, mi.len, mi.has_body, c->hdrlen,
			    c->has_body);
	}
}

struct end_case {
	const char	*text;
	size_t		 len;
	size_t		 end;
};

static const struct end_case end_cases[] = {
	{ S(""), 0 },
	{ S("\r"), 0 },
	{ S("\r\n"), 2 },
	{ S("\r\nbody\r\n\r\n"), 2 },
	{ S("From: a@x\r\n"), 0 },
	{ S("From: a@x\r\n\r"), 0 },
	{ S("From: a@x\r\n\r\n"), 13 },
	{ S("From: a@x\r\n\r\nbody\r\n\r\nmore"), 13 },
	{ S("From: a\r\n b\r\nTo: c\r\n\r\n"), 22 },
	{ S("From: a\n\nx"), 0 },
};

/* test_end - where the header section ends */
static void
test_end(void **state)
{
	size_t i, got;

	(void)state;
	for (i = 0; i < sizeof(end_cases) / sizeof(end_cases[0]); i++) {
		got = msghdr_end(end_cases[i].text, end_cases[i].len);
		if (got != end_cases[i].end)
			fail_msg("end case %zu: %zu, want %zu", i, got,
			    end_cases[i].end);
	}
}

/* set_tz - switch the local zone; false if tzdata lacks it */
static bool
set_tz(const char *zone)
{
	char path[256];

	if (strcmp(zone, "UTC") != 0) {
		snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", zone);
		if (access(path, R_OK) == -1)
			return false;
	}
	setenv("TZ", zone, 1);
	tzset();
	return true;
}

/* test_date - RFC 5322 dates in several zones */
static void
test_date(void **state)
{
	static const struct {
		const char	*zone;
		time_t		 t;
		const char	*want;
	} cases[] = {
		{ "UTC", T_20261123, "Mon, 23 Nov 2026 20:07:29 +0000" },
		{ "UTC", T_20260305, "Thu, 5 Mar 2026 04:05:06 +0000" },
		{ "UTC", 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
		{ "America/New_York", T_20261123,
		  "Mon, 23 Nov 2026 15:07:29 -0500" },
		{ "America/New_York", T_20260702,
		  "Thu, 2 Jul 2026 09:46:40 -0400" },
		{ "Asia/Kolkata", T_20261123,
		  "Tue, 24 Nov 2026 01:37:29 +0530" },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!set_tz(cases[i].zone)) {
			print_message("# SKIP zone %s: not in tzdata\n",
			    cases[i].zone);
			continue;
		}
		assert_string_equal(msghdr_date(cases[i].t, out),
		    cases[i].want);
	}
	set_tz("UTC");
}

/* test_add_date - the Date: field */
static void
test_add_date(void **state)
{
	struct buf b;

	(void)state;
	set_tz("UTC");
	buf_init(&b, 4096);
	assert_int_equal(msghdr_add_date(&b, T_20261123), 0);
	assert_string_equal(b.data,
	    "Date: Mon, 23 Nov 2026 20:07:29 +0000\r\n");
	buf_free(&b);
}

/*
 * check_folding - s is one field: CRLF only before a TAB or at the very
 * end, and no line longer than max
 */
static void
check_folding(const char *s, size_t max)
{
	const char *p, *line = s;

	for (p = s; *p != '\0'; p++) {
		if (*p == '\r') {
			assert_int_equal(p[1], '\n');
			if ((size_t)(p - line) > max)
				fail_msg("line of %zu > %zu: %.*s",
				    (size_t)(p - line), max, (int)(p - line),
				    line);
			assert_true(p[2] == '\t' || p[2] == '\0');
			line = p + 2;
			p++;
		} else
			assert_int_not_equal(*p, '\n');
	}
	assert_ptr_equal(line, p);	/* ends in CRLF */
}

/* add_received - format r into a fresh buffer; the caller frees it */
static char *
add_received(const struct msghdr_received *r)
{
	struct buf b;
	char *s;

	buf_init(&b, 8192);
	assert_int_equal(msghdr_add_received(&b, r), 0);
	assert_int_equal(strlen(b.data), b.len);
	s = strdup(b.data);
	assert_non_null(s);
	buf_free(&b);
	return s;
}

/* test_received - the layouts with and without TLS and recipient */
static void
test_received(void **state)
{
	struct msghdr_received r = {
		.helo = "client.example",
		.client_addr = "127.0.0.1",
		.hostname = "relay.example.org",
		.protocol = "ESMTPSA",
		.tls = "TLSv1.3:TLS_AES_256_GCM_SHA384",
		.queue_id = "0123ABC",
		.recipient = "bob@example.com",
		.time = T_20261123,
	};
	char *s;

	(void)state;
	set_tz("UTC");
	s = add_received(&r);
	assert_string_equal(s,
	    "Received: from client.example (unknown [127.0.0.1])\r\n"
	    "\tby relay.example.org (Postern) with ESMTPSA id 0123ABC\r\n"
	    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
	    "\tfor <bob@example.com>; Mon, 23 Nov 2026 20:07:29 +0000\r\n");
	check_folding(s, 78);
	free(s);

	r.tls = NULL;
	r.recipient = NULL;
	r.protocol = "ESMTP";
	s = add_received(&r);
	assert_string_equal(s,
	    "Received: from client.example (unknown [127.0.0.1])\r\n"
	    "\tby relay.example.org (Postern) with ESMTP id 0123ABC;\r\n"
	    "\tMon, 23 Nov 2026 20:07:29 +0000\r\n");
	check_folding(s, 78);
	free(s);

	r.recipient = "bob@example.com";
	r.client_addr = "2001:db8::7";
	r.helo = NULL;
	s = add_received(&r);
	assert_string_equal(s,
	    "Received: from [IPv6:2001:db8::7] (unknown [IPv6:2001:db8::7])\r\n"
	    "\tby relay.example.org (Postern) with ESMTP id 0123ABC\r\n"
	    "\tfor <bob@example.com>; Mon, 23 Nov 2026 20:07:29 +0000\r\n");
	check_folding(s, 78);
	free(s);

	r.tls = "TLSv1.2";
	r.helo = "";
	r.client_addr = "192.0.2.1";
	s = add_received(&r);
	assert_string_equal(s,
	    "Received: from [192.0.2.1] (unknown [192.0.2.1])\r\n"
	    "\tby relay.example.org (Postern) with ESMTP id 0123ABC\r\n"
	    "\t(using TLSv1.2)\r\n"
	    "\tfor <bob@example.com>; Mon, 23 Nov 2026 20:07:29 +0000\r\n");
	free(s);
}

/* test_received_helo - the untrusted HELO cannot break out of its word */
static void
test_received_helo(void **state)
{
	struct msghdr_received r = {
		.helo = "evil (x)\r\nFrom: boss@example.org\\\t\xc3\xa9",
		.client_addr = "192.0.2.1",
		.hostname = "relay.example.org",
		.protocol = "ESMTPSA",
		.queue_id = "Q1",
		.recipient = "a\r\nb@example.com",
		.time = T_20261123,
	};
	char helo[1001], *s, *p;

	(void)state;
	set_tz("UTC");
	s = add_received(&r);
	assert_string_equal(s,
	    "Received: from evil??x???From:?boss@example.org???? "
	    "(unknown [192.0.2.1])\r\n"
	    "\tby relay.example.org (Postern) with ESMTPSA id Q1\r\n"
	    "\tfor <a??b@example.com>; Mon, 23 Nov 2026 20:07:29 +0000\r\n");
	check_folding(s, 78);
	free(s);

	/* 1000 octets: cut to 255, the rest folds after it */
	memset(helo, 'h', 1000);
	helo[1000] = '\0';
	r.helo = helo;
	r.recipient = NULL;
	s = add_received(&r);
	check_folding(s, 1000);
	assert_non_null(p = strstr(s, "from "));
	assert_int_equal(strspn(p + 5, "h"), 255);
	assert_memory_equal(p + 5 + 255, "\r\n\t(unknown [192.0.2.1])\r\n", 26);
	free(s);
}

/* test_message_id - shape "<QUEUEID.RANDOM@hostname>", random differs */
static void
test_message_id(void **state)
{
	struct buf a, b;
	const char *pfx = "Message-ID: <0123ABC.";
	const char *sfx = "@relay.example.org>\r\n";
	size_t i, rl;

	(void)state;
	buf_init(&a, 1024);
	buf_init(&b, 1024);
	assert_int_equal(msghdr_add_message_id(&a, "0123ABC",
	    "relay.example.org"), 0);
	assert_int_equal(msghdr_add_message_id(&b, "0123ABC",
	    "relay.example.org"), 0);
	assert_int_equal(a.len, strlen(pfx) + 16 + strlen(sfx));
	assert_memory_equal(a.data, pfx, strlen(pfx));
	assert_string_equal(a.data + strlen(pfx) + 16, sfx);
	rl = strspn(a.data + strlen(pfx), "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
	assert_int_equal(rl, 16);
	assert_string_not_equal(a.data, b.data);
	for (i = 0; i < a.len; i++)
		assert_true(a.data[i] != '\r' || i == a.len - 2);
	buf_free(&a);
	buf_free(&b);
}

/* test_buf_max - past the buffer's max every add fails, b unchanged */
static void
test_buf_max(void **state)
{
	struct msghdr_received r = {
		.helo = "client.example",
		.client_addr = "127.0.0.1",
		.hostname = "relay.example.org",
		.protocol = "ESMTPSA",
		.tls = "TLSv1.3:TLS_AES_256_GCM_SHA384",
		.queue_id = "0123ABC",
		.recipient = "bob@example.com",
		.time = T_20261123,
	};
	struct buf b;
	size_t max, full;

	(void)state;
	set_tz("UTC");
	buf_init(&b, 4096);
	assert_int_equal(msghdr_add_received(&b, &r), 0);
	full = b.len;
	buf_free(&b);

	/* every max short of the full field fails and leaves "X: y\r\n" */
	for (max = 6; max < 6 + full; max++) {
		buf_init(&b, max);
		assert_int_equal(buf_puts(&b, "X: y\r\n"), 0);
		assert_int_equal(msghdr_add_received(&b, &r), -1);
		assert_int_equal(b.len, 6);
		assert_string_equal(b.data, "X: y\r\n");
		buf_free(&b);
	}
	buf_init(&b, 6 + full);
	assert_int_equal(buf_puts(&b, "X: y\r\n"), 0);
	assert_int_equal(msghdr_add_received(&b, &r), 0);
	buf_free(&b);

	buf_init(&b, 20);
	assert_int_equal(msghdr_add_message_id(&b, "0123ABC",
	    "relay.example.org"), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(msghdr_add_date(&b, T_20261123), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* main - run the msghdr tests */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_end),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_add_date),
		cmocka_unit_test(test_received),
		cmocka_unit_test(test_received_helo),
		cmocka_unit_test(test_message_id),
		cmocka_unit_test(test_buf_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
