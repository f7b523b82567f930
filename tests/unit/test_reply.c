/*
 * test_reply - the reply table (submit/reply.c) against submit/REPLIES.md,
 * both ways, and what each refusal counts under.
 *
 * REPLIES.md's rows are "| situation | `REPLY` commentary | `ID` |"; the
 * first `quoted` part of the reply cell is the reply, in which CAPITAL
 * words (HOSTNAME, ADDR, N, HH:MM:SS UTC) stand for the values a printf
 * conversion of the table's text fills in. Runs from the repository root
 * (as test_config does with config/postern.conf.example).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/metrics.h"
#include "submit/reply.h"

#include "tests/unit/read_text.h"

#define REPLIES_MD	"submit/REPLIES.md"
#define MAX_ROWS	256

struct row {
	unsigned	 line;		/* in REPLIES.md */
	char		*id;		/* without REPLY_ */
	char		*reply;		/* the first quoted part */
};

/* quoted - new copy of the first `...` in s[0..n), or NULL */
static char *
quoted(const char *s, size_t n)
{
	const char *a, *b;

	if ((a = memchr(s, '`', n)) == NULL ||
	    (b = memchr(a + 1, '`', n - (size_t)(a + 1 - s))) == NULL)
		return NULL;
	return xstrndup(a + 1, (size_t)(b - a - 1));
}

/*
 * parse_rows - the table rows of REPLIES.md: lines "| a | b | c |" whose
 * last cell is a quoted id (the header and the rule have none)
 */
static size_t
parse_rows(char *text, struct row *rows, size_t max)
{
	char *line, *next, *cell[4];
	size_t n = 0, k;
	unsigned lineno = 0;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (line[0] != '|')
			continue;
		/* cell[0..3]: the four '|' around situation, reply, id */
		for (k = 0, cell[0] = line; k < 3; k++) {
			if ((cell[k + 1] = strchr(cell[k] + 1, '|')) == NULL)
				break;
		}
		if (k != 3)
			fail_msg("%s:%u: a table row needs three cells",
			    REPLIES_MD, lineno);
		if (memchr(cell[2], '`', (size_t)(cell[3] - cell[2])) == NULL)
			continue;		/* header, rule */
		if (n == max)
			fail_msg("%s: more than %zu rows", REPLIES_MD, max);
		rows[n].line = lineno;
		rows[n].id = quoted(cell[2], (size_t)(cell[3] - cell[2]));
		rows[n].reply = quoted(cell[1], (size_t)(cell[2] - cell[1]));
		if (rows[n].id == NULL || rows[n].reply == NULL)
			fail_msg("%s:%u: no `reply` or no `ID`", REPLIES_MD,
			    lineno);
		n++;
	}
	return n;
}

/* conversion - length of the printf conversion at fmt ('%'), 0 if it is
   not one the table may use (%s, %u, %zu, PRIu64) */
static size_t
conversion(const char *fmt)
{
	static const char *allowed[] = { "%s", "%u", "%zu", "%" PRIu64 };
	size_t i, n;

	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		n = strlen(allowed[i]);
		if (strncmp(fmt, allowed[i], n) == 0)
			return n;
	}
	return 0;
}

/* placeholder_char - may c be part of a CAPITAL placeholder? */
static int
placeholder_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == ':' || c == ' ' || c == '_';
}

/*
 * text_matches - does doc (REPLIES.md's words) say what fmt (the table's
 * format) sends? Literal characters must be equal; each conversion
 * stands for one placeholder: a run of capitals, digits, ':', '_' and
 * spaces that holds a capital letter and does not start with a space.
 */
static int
text_matches(const char *fmt, const char *doc)
{
	size_t conv, k;
	int capital = 0;

	for (;;) {
		if (*fmt == '\0')
			return *doc == '\0';
		if (*fmt == '%' && fmt[1] == '%') {
			if (*doc != '%')
				return 0;
			fmt += 2;
			doc++;
			continue;
		}
		if (*fmt == '%')
			break;
		if (*fmt != *doc)
			return 0;
		fmt++;
		doc++;
	}
	if ((conv = conversion(fmt)) == 0)
		fail_msg("format conversion not allowed in the table: %s", fmt);
	if (*doc == ' ')
		return 0;
	for (k = 0; placeholder_char((unsigned char)doc[k]); k++) {
		if (doc[k] >= 'A' && doc[k] <= 'Z')
			capital = 1;
		if (capital && text_matches(fmt + conv, doc + k + 1))
			return 1;
	}
	return 0;
}

/* reply_matches - doc is "CODE STATUS TEXT" (or "CODE-..." for a
   multi-line reply's first line) of r */
static int
reply_matches(const struct reply *r, const char *doc)
{
	char code[8];
	size_t n;

	snprintf(code, sizeof(code), "%d", r->code);
	n = strlen(code);
	if (strncmp(doc, code, n) != 0 || (doc[n] != ' ' && doc[n] != '-'))
		return 0;
	doc += n + 1;
	if (r->status[0] != '\0') {
		n = strlen(r->status);
		if (strncmp(doc, r->status, n) != 0 || doc[n] != ' ')
			return 0;
		doc += n + 1;
	}
	return text_matches(r->text, doc);
}

/* by_name - the id called name (without REPLY_), or REPLY_NONE */
static enum reply_id
by_name(const char *name)
{
	const struct reply *r;
	int i;

	for (i = 1; i < REPLY_NIDS; i++)
		if ((r = reply_get((enum reply_id)i)) != NULL &&
		    strcmp(r->name, name) == 0)
			return (enum reply_id)i;
	return REPLY_NONE;
}

/* test_table_complete - every id has an entry with sane fields */
static void
test_table_complete(void **state)
{
	const struct reply *r;
	const char *p;
	int i;

	(void)state;
	assert_null(reply_get(REPLY_NONE));
	assert_null(reply_get(REPLY_NIDS));
	assert_null(reply_get((enum reply_id)-1));
	for (i = 1; i < REPLY_NIDS; i++) {
		if ((r = reply_get((enum reply_id)i)) == NULL)
			fail_msg("reply %d has no table entry", i);
		if (r->code < 200 || r->code > 599)
			fail_msg("%s: code %d", r->name, r->code);
		/* a 4xx/5xx refusal has an enhanced code of the same class */
		if (r->code >= 400 && (r->status[0] == '\0' ||
		    r->status[0] != '0' + r->code / 100))
			fail_msg("%s: %d with status \"%s\"", r->name, r->code,
			    r->status);
		if (strpbrk(r->text, "\r\n") != NULL)
			fail_msg("%s: CR or LF in the text", r->name);
		for (p = strchr(r->text, '%'); p != NULL;
		    p = strchr(p + 2, '%'))
			if (p[1] != '%' && conversion(p) == 0)
				fail_msg("%s: conversion not allowed: %s",
				    r->name, p);
		if (by_name(r->name) != (enum reply_id)i)
			fail_msg("%s: name used twice", r->name);
		if (r->metric != REPLY_UNCOUNTED && r->code < 400 &&
		    r->metric != M_AUTH_SUCCESS)
			fail_msg("%s: a %d counted as a refusal", r->name,
			    r->code);
	}
}

/* test_doc_matches_table - REPLIES.md and the table, both ways */
static void
test_doc_matches_table(void **state)
{
	struct row rows[MAX_ROWS];
	unsigned seen[REPLY_NIDS];
	const struct reply *r;
	enum reply_id id;
	size_t n, i;
	int bad = 0, k;
	char *text;

	(void)state;
	if ((text = read_text(REPLIES_MD)) == NULL)
		fail_msg("%s: %s (run from the repository root)", REPLIES_MD,
		    strerror(errno));
	n = parse_rows(text, rows, MAX_ROWS);
	assert_true(n > 50);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < n; i++) {
		if ((id = by_name(rows[i].id)) == REPLY_NONE) {
			print_message("# %s:%u: %s is not in the table\n",
			    REPLIES_MD, rows[i].line, rows[i].id);
			bad++;
			continue;
		}
		if (seen[id]) {
			print_message("# %s:%u: %s already on line %u\n",
			    REPLIES_MD, rows[i].line, rows[i].id, seen[id]);
			bad++;
		}
		seen[id] = rows[i].line;
		r = reply_get(id);
		if (!reply_matches(r, rows[i].reply)) {
			print_message("# %s:%u: %s says \"%s\", the table "
			    "\"%d %s%s%s\"\n", REPLIES_MD, rows[i].line,
			    rows[i].id, rows[i].reply, r->code, r->status,
			    r->status[0] ? " " : "", r->text);
			bad++;
		}
	}
	for (k = 1; k < REPLY_NIDS; k++)
		if (!seen[k]) {
			print_message("# not in %s: %s\n", REPLIES_MD,
			    reply_get((enum reply_id)k)->name);
			bad++;
		}
	for (i = 0; i < n; i++) {
		free(rows[i].id);
		free(rows[i].reply);
	}
	free(text);
	if (bad)
		fail_msg("%d differences between the table and %s", bad,
		    REPLIES_MD);
}

/* test_matcher - the placeholder rule is strict about literal text */
static void
test_matcher(void **state)
{
	(void)state;
	assert_true(text_matches("%s ESMTP Postern", "HOSTNAME ESMTP Postern"));
	assert_true(text_matches("after %s", "after HH:MM:SS UTC"));
	assert_true(text_matches("(%s = %u); x", "(SETTING = N); x"));
	assert_false(text_matches("%s ESMTP Postern", "HOSTNAME ESMTP"));
	assert_false(text_matches("limit of %u bytes", "limit of 10 bytes"));
	assert_false(text_matches("<%s>: x", "<addr>: x"));
	assert_false(text_matches("Ok", "Ok."));
	assert_false(text_matches("%s Error", " HOSTNAME Error"));
}

/* check_counts - only counter m (or none: REPLY_UNCOUNTED) moved, by one */
static void
check_counts(const uint64_t *before, enum metric m, const char *what)
{
	int i;

	for (i = 0; i < M_NCOUNTERS; i++)
		if (metrics_get((enum metric)i) != before[i] +
		    ((enum metric)i == m ? 1 : 0))
			fail_msg("\"%s\": counter %d moved wrongly", what, i);
}

/* snapshot - every counter now */
static void
snapshot(uint64_t *c)
{
	int i;

	for (i = 0; i < M_NCOUNTERS; i++)
		c[i] = metrics_get((enum metric)i);
}

/* make - reply_vmake as its senders call it */
static size_t
make(char *line, size_t len, enum reply_id id, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, id);
	n = reply_vmake(line, len, id, ap);
	va_end(ap);
	return n;
}

/*
 * CASE - reply_vmake(id, ...) writes want and counts it under m only.
 * These are the replies whose reason metrics_reject_reply() once found
 * from their text: the table now gives the same reason by id.
 */
#define CASE(want, m, ...) do {						\
	char line_[REPLY_MAX + 1];					\
	uint64_t before_[M_NCOUNTERS];					\
	size_t n_;							\
									\
	snapshot(before_);						\
	n_ = make(line_, sizeof(line_), __VA_ARGS__);			\
	if (n_ != strlen(want) || strcmp(line_, want) != 0)		\
		fail_msg("got \"%s\", want \"%s\"", line_, want);	\
	check_counts(before_, m, want);					\
} while (0)

/* test_reject_reasons - REPLIES.md's refusals and their reasons */
static void
test_reject_reasons(void **state)
{
	(void)state;
	CASE("530 5.7.0 Authentication required", M_REJECT_AUTH_REQUIRED,
	    REPLY_AUTH_REQUIRED);
	CASE("553 5.7.1 Sender address <a@b> not owned by user x",
	    M_REJECT_SENDER, REPLY_SENDER_NOT_OWNED, "a@b", "x");
	CASE("550 5.7.1 From: address <a@b> not owned by user x",
	    M_REJECT_SENDER, REPLY_FROM_NOT_OWNED, "a@b", "x");
	CASE("450 4.7.1 Error: x has sent 3 messages this hour, the limit "
	    "(limits.user_messages_per_hour = 3); try again after "
	    "10:00:00 UTC", M_REJECT_RATE_LIMIT, REPLY_RATE_MESSAGES_HOUR,
	    "x", (uint64_t)3, "limits.user_messages_per_hour", 3u,
	    "10:00:00 UTC");
	CASE("452 4.7.1 Error: x has sent 9 recipients this day, the limit "
	    "(senders.recipients_per_day = 9); try again after 00:00:00 UTC",
	    M_REJECT_RATE_LIMIT, REPLY_RATE_RCPTS_DAY, "x", (uint64_t)9,
	    "senders.recipients_per_day", 9u, "00:00:00 UTC");
	CASE("450 4.7.1 <v@x>: Recipient address rejected: it has been "
	    "sent 30 messages this hour, the limit "
	    "(limits.recipient_messages_per_hour = 30); try again after "
	    "11:00:00 UTC", M_REJECT_RECIPIENT_FLOOD, REPLY_RCPT_FLOOD,
	    "v@x", (uint64_t)30, 30u, "11:00:00 UTC");
	CASE("452 4.5.3 Error: too many recipients",
	    M_REJECT_TOO_MANY_RECIPIENTS, REPLY_TOO_MANY_RCPTS);
	CASE("552 5.3.4 Message size exceeds fixed limit of 10 bytes",
	    M_REJECT_SIZE, REPLY_SIZE_EXCEEDED, (uint64_t)10);
	CASE("552 5.3.4 Message header section exceeds 1024 bytes",
	    M_REJECT_HEADER, REPLY_HEADER_TOO_BIG, (size_t)1024);
	CASE("550 5.6.0 Message must have exactly one From: address",
	    M_REJECT_HEADER, REPLY_FROM_COUNT);
	CASE("550 5.6.0 Malformed From: header: x", M_REJECT_HEADER,
	    REPLY_FROM_MALFORMED, "x");
	CASE("550 5.6.0 Message has a line longer than 998 characters",
	    M_REJECT_CONTENT, REPLY_LINE_998);
	CASE("521 5.5.2 Error: bare <LF> or <CR> in message data",
	    M_REJECT_CONTENT, REPLY_BARE_NEWLINE);
	CASE("501 5.1.7 Bad sender address syntax", M_REJECT_SYNTAX,
	    REPLY_SENDER_SYNTAX, "Bad sender address syntax");
	CASE("555 5.5.4 Unsupported option: X", M_REJECT_SYNTAX,
	    REPLY_MAIL_RCPT_PARAM, "Unsupported option: X");
	CASE("553 5.6.7 SMTPUTF8 required", M_REJECT_SYNTAX,
	    REPLY_UTF8_REQUIRED, "SMTPUTF8 required");
	CASE("550 5.1.2 <x@y>: Recipient address rejected: domain y does "
	    "not exist", M_REJECT_DNS_DOMAIN, REPLY_RCPT_NXDOMAIN, "x@y", "y");
	CASE("556 5.1.10 <x@y>: Recipient address rejected: domain y "
	    "accepts no mail (null MX)", M_REJECT_DNS_DOMAIN,
	    REPLY_RCPT_NULL_MX, "x@y", "y");
	CASE("452 4.3.1 Insufficient system storage, try again later",
	    M_REJECT_QUEUE_SPACE, REPLY_QUEUE_SPACE);
	CASE("451 4.3.0 Error: queue file write error", M_REJECT_INTERNAL,
	    REPLY_QUEUE_WRITE);
	CASE("451 4.7.0 Error: cannot sign the message", M_REJECT_INTERNAL,
	    REPLY_SIGN_FAILED);
	/* once "other" by its text; its call site never counted it */
	CASE("554 5.5.1 Error: no valid recipients", REPLY_UNCOUNTED,
	    REPLY_NO_VALID_RCPTS);
	/* the same code and status, different reasons: the id decides */
	CASE("501 5.5.4 Syntax: EHLO hostname", REPLY_UNCOUNTED,
	    REPLY_HELO_SYNTAX, "Syntax: EHLO hostname");
	CASE("501 5.5.4 Syntax: MAIL FROM:<address>", M_REJECT_SYNTAX,
	    REPLY_MAIL_RCPT_SYNTAX, "Syntax: MAIL FROM:<address>");
	/* connections, AUTH */
	CASE("421 4.7.0 mx.example Too many new connections from your "
	    "address, try again later", M_REFUSED_CONNECTION_RATE,
	    REPLY_CONN_RATE, "mx.example");
	CASE("421 4.7.0 mx.example Too many failed authentications from "
	    "your address, try again later", M_REFUSED_AUTH_LOCKOUT,
	    REPLY_CONN_AUTH_LOCKOUT, "mx.example");
	CASE("554 5.7.1 mx.example Local user bob (uid 1001) may not send "
	    "mail: no local_senders entry", M_REFUSED_LOCAL_USER,
	    REPLY_CONN_LOCAL_USER, "mx.example", "bob", 1001u);
	CASE("454 4.7.0 Too many failed authentications for this login; try "
	    "again after 12:00:00 UTC", M_AUTH_LOCKED,
	    REPLY_AUTH_LOCKED_LOGIN, "12:00:00 UTC");
	CASE("235 2.7.0 Authentication successful", M_AUTH_SUCCESS,
	    REPLY_AUTH_OK);
	CASE("220 mx.example ESMTP Postern", REPLY_UNCOUNTED, REPLY_GREETING,
	    "mx.example");
	CASE("354 End data with <CR><LF>.<CR><LF>", REPLY_UNCOUNTED,
	    REPLY_DATA_GO);
}

/* test_format_bounds - truncated to the buffer, never past it */
static void
test_format_bounds(void **state)
{
	char line[16], big[REPLY_MAX * 2];
	uint64_t before[M_NCOUNTERS];

	(void)state;
	memset(line, 'x', sizeof(line));
	assert_int_equal(reply_format(line, 10, REPLY_BYE), 9);
	assert_string_equal(line, "221 2.0.0");
	assert_int_equal(line[10], 'x');
	assert_int_equal(reply_format(line, 5, REPLY_BYE), 4);
	assert_string_equal(line, "221 ");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(reply_format(line, sizeof(line), REPLY_HELO, big),
	    sizeof(line) - 1);
	/* reply_format counts nothing, even for a refusal */
	snapshot(before);
	reply_format(line, sizeof(line), REPLY_AUTH_REQUIRED);
	check_counts(before, REPLY_UNCOUNTED, "reply_format");
	reply_count(REPLY_NONE);
	check_counts(before, REPLY_UNCOUNTED, "REPLY_NONE");
}

/* setup - counters from zero */
static int
setup(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_table_complete, setup),
		cmocka_unit_test_setup(test_doc_matches_table, setup),
		cmocka_unit_test_setup(test_matcher, setup),
		cmocka_unit_test_setup(test_reject_reasons, setup),
		cmocka_unit_test_setup(test_format_bounds, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
