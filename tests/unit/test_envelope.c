/*
 * test_envelope - envelope_format/envelope_parse: the golden texts (a new
 * envelope, one with every version-2 record, and a version-1 file that
 * must still be read), round trips, every parse error with its reason (a
 * table), refusal of values the parser would reject, the reply setter,
 * truncation at every byte, and random damage.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "queue/envelope.h"

#define ID_A	"1c2QbT3ZxAbCdEfGhIjK"
#define ID_B	"1c2QbT3ZyLmNoPqRsTuV"

/* the sample envelope as written now: version 2, no delivery records */
static const char golden[] =
    "postern-envelope 2\n"
    "id " ID_A "\n"
    "time 1732390000\n"
    "sender alice@example.org\n"
    "login alice@example.org\n"
    "client 192.0.2.10\n"
    "helo alices-laptop.example.org\n"
    "body 8bitmime\n"
    "smtputf8 0\n"
    "size 4817\n"
    "rcpt pending bob@example.net\n"
    "rcpt delivered \"carol smith\"@example.com\n"
    "rcpt failed dave@example.invalid\n"
    "end\n";

/* the same envelope as version 1 wrote it: still read */
static const char golden_v1[] =
    "postern-envelope 1\n"
    "id " ID_A "\n"
    "time 1732390000\n"
    "sender alice@example.org\n"
    "login alice@example.org\n"
    "client 192.0.2.10\n"
    "helo alices-laptop.example.org\n"
    "body 8bitmime\n"
    "smtputf8 0\n"
    "size 4817\n"
    "rcpt pending bob@example.net\n"
    "rcpt delivered \"carol smith\"@example.com\n"
    "rcpt failed dave@example.invalid\n"
    "end\n";

/* after some delivery attempts: every version-2 record (QUEUE.md) */
static const char golden_v2[] =
    "postern-envelope 2\n"
    "id " ID_A "\n"
    "time 1732390000\n"
    "sender alice@example.org\n"
    "login alice@example.org\n"
    "client 192.0.2.10\n"
    "helo alices-laptop.example.org\n"
    "body 8bitmime\n"
    "smtputf8 0\n"
    "size 4817\n"
    "attempts 3\n"
    "next 1732393600\n"
    "dsn " ID_B "\n"
    "rcpt pending bob@example.net\n"
    "reply 451 4.7.1 Greylisted, try again in 5 minutes\n"
    "rcpt delivered \"carol smith\"@example.com\n"
    "rcpt failed dave@example.invalid\n"
    "reply 550 5.1.1 <dave@example.invalid>: no such user\n"
    "rcpt pending erin@example.net\n"
    "reply 000 - connect to mx.example.net[192.0.2.25]:25: Connection "
    "refused\n"
    "rcpt failed frank@example.com\n"
    "reply 554 -\n"
    "end\n";

/* sample - the envelope whose text is golden */
static void
sample(struct envelope *e)
{
	memset(e, 0, sizeof(*e));
	strcpy(e->id, ID_A);
	e->time = 1732390000;
	e->sender = strdup("alice@example.org");
	e->login = strdup("alice@example.org");
	e->client = strdup("192.0.2.10");
	e->helo = strdup("alices-laptop.example.org");
	e->body_8bit = true;
	e->smtputf8 = false;
	e->size = 4817;
	envelope_add_rcpt(e, "bob@example.net");
	envelope_add_rcpt(e, "\"carol smith\"@example.com");
	envelope_add_rcpt(e, "dave@example.invalid");
	e->rcpts[1].status = RCPT_DELIVERED;
	e->rcpts[2].status = RCPT_FAILED;
}

/* sample_v2 - the envelope whose text is golden_v2 */
static void
sample_v2(struct envelope *e)
{
	sample(e);
	e->attempts = 3;
	e->next_attempt = 1732393600;
	strcpy(e->dsn, ID_B);
	envelope_add_rcpt(e, "erin@example.net");
	envelope_add_rcpt(e, "frank@example.com");
	e->rcpts[4].status = RCPT_FAILED;
	envelope_set_reply(&e->rcpts[0], 451, "4.7.1",
	    "Greylisted, try again in 5 minutes");
	envelope_set_reply(&e->rcpts[2], 550, "5.1.1",
	    "<dave@example.invalid>: no such user");
	envelope_set_reply(&e->rcpts[3], 0, NULL,
	    "connect to mx.example.net[192.0.2.25]:25: Connection refused");
	envelope_set_reply(&e->rcpts[4], 554, "", "");
}

/* assert_str_or_null_equal - both NULL or equal strings */
static void
assert_str_or_null_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* assert_envelope_equal - field by field */
static void
assert_envelope_equal(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	assert_string_equal(a->id, b->id);
	assert_int_equal(a->time, b->time);
	assert_str_or_null_equal(a->sender, b->sender);
	assert_str_or_null_equal(a->login, b->login);
	assert_str_or_null_equal(a->client, b->client);
	assert_str_or_null_equal(a->helo, b->helo);
	assert_int_equal(a->body_8bit, b->body_8bit);
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->prepend_len, b->prepend_len);
	if (a->prepend_len)
		assert_memory_equal(a->prepend, b->prepend, a->prepend_len);
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->next_attempt, b->next_attempt);
	assert_string_equal(a->dsn, b->dsn);
	assert_int_equal(a->nrcpts, b->nrcpts);
	for (i = 0; i < a->nrcpts; i++) {
		assert_string_equal(a->rcpts[i].addr, b->rcpts[i].addr);
		assert_int_equal(a->rcpts[i].status, b->rcpts[i].status);
		assert_str_or_null_equal(a->rcpts[i].text, b->rcpts[i].text);
		assert_int_equal(a->rcpts[i].code, b->rcpts[i].code);
		assert_string_equal(a->rcpts[i].enhanced,
		    b->rcpts[i].enhanced);
	}
}

/* roundtrip - format e, parse it back, compare, format again: same bytes */
static void
roundtrip(const struct envelope *e)
{
	struct envelope back;
	struct buf b, b2;
	const char *err = NULL;

	buf_init(&b, 1 << 20);
	buf_init(&b2, 1 << 20);
	assert_int_equal(envelope_format(e, &b), 0);
	if (envelope_parse(b.data, b.len, &back, &err) != 0)
		fail_msg("parse of formatted envelope failed: %s\n%s", err,
		    b.data);
	assert_envelope_equal(e, &back);
	assert_int_equal(envelope_format(&back, &b2), 0);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	envelope_free(&back);
	buf_free(&b);
	buf_free(&b2);
}

/* test_format_golden - the exact on-disk text, as documented in QUEUE.md */
static void
test_format_golden(void **state)
{
	struct envelope e;
	struct buf b;

	(void)state;
	sample(&e);
	buf_init(&b, 4096);
	assert_int_equal(envelope_format(&e, &b), 0);
	assert_string_equal(b.data, golden);
	buf_free(&b);
	envelope_free(&e);
}

/* test_format_golden_v2 - every version-2 record, exactly as documented */
static void
test_format_golden_v2(void **state)
{
	struct envelope e;
	struct buf b;

	(void)state;
	sample_v2(&e);
	buf_init(&b, 4096);
	assert_int_equal(envelope_format(&e, &b), 0);
	assert_string_equal(b.data, golden_v2);
	buf_free(&b);
	envelope_free(&e);
}

/* test_parse_golden - the golden texts parse into the sample envelopes */
static void
test_parse_golden(void **state)
{
	struct envelope want, got;
	const char *err = NULL;

	(void)state;
	sample(&want);
	assert_int_equal(envelope_parse(golden, strlen(golden), &got, &err), 0);
	assert_envelope_equal(&want, &got);
	envelope_free(&got);
	envelope_free(&want);
	/* envelope_free leaves it zeroed, and a second free is harmless */
	assert_null(got.rcpts);
	assert_int_equal(got.nrcpts, 0);
	envelope_free(&got);

	sample_v2(&want);
	assert_int_equal(envelope_parse(golden_v2, strlen(golden_v2), &got,
	    &err), 0);
	assert_envelope_equal(&want, &got);
	/* the representation of "no reply", "000" and "-" */
	assert_null(got.rcpts[1].text);
	assert_int_equal(got.rcpts[1].code, 0);
	assert_string_equal(got.rcpts[1].enhanced, "");
	assert_int_equal(got.rcpts[3].code, 0);
	assert_non_null(got.rcpts[3].text);
	assert_string_equal(got.rcpts[3].enhanced, "");
	assert_string_equal(got.rcpts[4].text, "");
	envelope_free(&got);
	envelope_free(&want);
}

/* test_parse_v1 - a version-1 file reads as the same envelope with no
   delivery records, and is written back as version 2 */
static void
test_parse_v1(void **state)
{
	struct envelope want, got;
	struct buf b;
	const char *err = NULL;

	(void)state;
	sample(&want);
	assert_int_equal(envelope_parse(golden_v1, strlen(golden_v1), &got,
	    &err), 0);
	assert_envelope_equal(&want, &got);
	assert_int_equal(got.attempts, 0);
	assert_int_equal(got.next_attempt, 0);
	assert_string_equal(got.dsn, "");
	assert_null(got.rcpts[0].text);
	buf_init(&b, 4096);
	assert_int_equal(envelope_format(&got, &b), 0);
	assert_string_equal(b.data, golden);
	buf_free(&b);
	envelope_free(&got);
	envelope_free(&want);
}

/* test_roundtrip - variations: no login, <>, 7bit, utf8, odd values */
static void
test_roundtrip(void **state)
{
	struct envelope e;
	size_t i;

	(void)state;
	sample(&e);
	roundtrip(&e);

	free(e.login);
	e.login = NULL;			/* trusted listener */
	free(e.sender);
	e.sender = strdup("");		/* MAIL FROM:<> */
	e.body_8bit = false;
	e.smtputf8 = true;
	e.time = 0;
	e.size = UINT64_MAX;
	roundtrip(&e);

	free(e.helo);
	e.helo = strdup("");		/* empty value: the bare key */
	free(e.client);
	e.client = strdup(" 2001:db8::1 ");	/* spaces kept verbatim */
	envelope_add_rcpt(&e, "j\xc3\xbcrgen@b\xc3\xbc" "cher.example");
	envelope_add_rcpt(&e, "\"a  b\\\" c\"@example.org");
	roundtrip(&e);
	envelope_free(&e);

	/* many recipients, a third of them with replies */
	sample(&e);
	for (i = 0; i < 1000; i++) {
		char addr[64];

		snprintf(addr, sizeof(addr), "user%zu@example.net", i);
		envelope_add_rcpt(&e, addr);
		e.rcpts[e.nrcpts - 1].status = (enum rcpt_status)(i % 3);
		if (i % 3 == 2)
			envelope_set_reply(&e.rcpts[e.nrcpts - 1], 550,
			    "5.1.1", addr);
	}
	roundtrip(&e);
	envelope_free(&e);
}

/* test_roundtrip_v2 - the version-2 records at their edges */
static void
test_roundtrip_v2(void **state)
{
	struct envelope e;
	char *longtext;

	(void)state;
	sample_v2(&e);
	roundtrip(&e);

	e.attempts = UINT32_MAX;
	e.next_attempt = INT64_MAX;
	e.dsn[0] = '\0';			/* no DSN: no record */
	roundtrip(&e);

	e.attempts = 0;				/* absent again */
	e.next_attempt = 0;
	strcpy(e.dsn, "zzzzzzzzzzzzzzzzzzzz");
	/* text with leading, inner and trailing spaces, kept verbatim */
	envelope_set_reply(&e.rcpts[0], 421, "4.4.2", "  two  spaces ");
	/* UTF-8, and every other printable byte */
	envelope_set_reply(&e.rcpts[1], 250, "2.0.0",
	    "ok \xc3\xbc !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
	/* the widest enhanced code */
	envelope_set_reply(&e.rcpts[2], 599, "5.999.999", "x");
	envelope_set_reply(&e.rcpts[3], 200, "2.0.0", "-");
	roundtrip(&e);

	/* the longest text allowed */
	longtext = malloc(ENVELOPE_REPLY_MAX + 1);
	memset(longtext, 'x', ENVELOPE_REPLY_MAX);
	longtext[ENVELOPE_REPLY_MAX] = '\0';
	envelope_set_reply(&e.rcpts[0], 451, NULL, longtext);
	assert_int_equal(strlen(e.rcpts[0].text), ENVELOPE_REPLY_MAX);
	roundtrip(&e);
	free(longtext);

	/* every recipient cleared: as without replies */
	envelope_clear_reply(&e.rcpts[0]);
	envelope_clear_reply(&e.rcpts[1]);
	envelope_clear_reply(&e.rcpts[2]);
	envelope_clear_reply(&e.rcpts[3]);
	envelope_clear_reply(&e.rcpts[4]);
	assert_null(e.rcpts[0].text);
	assert_int_equal(e.rcpts[0].code, 0);
	assert_string_equal(e.rcpts[0].enhanced, "");
	roundtrip(&e);
	envelope_free(&e);
}

/* test_set_reply - a remote reply is made safe to write, never refused */
static void
test_set_reply(void **state)
{
	static const struct {
		int		 code;
		const char	*enhanced;
		const char	*text;
		int		 want_code;
		const char	*want_enhanced;
		const char	*want_text;
	} cases[] = {
		{ 451, "4.4.1", "later", 451, "4.4.1", "later" },
		{ 0, "4.4.1", "timeout", 0, "4.4.1", "timeout" },
		{ 0, NULL, NULL, 0, "", "" },
		{ 999, "5.0.0", "x", 0, "5.0.0", "x" },
		{ 199, "", "x", 0, "", "x" },
		{ 600, "", "x", 0, "", "x" },
		{ -1, "", "x", 0, "", "x" },
		{ 550, "5.1", "x", 550, "", "x" },
		{ 550, "6.1.1", "x", 550, "", "x" },
		{ 550, "5.1.1.", "x", 550, "", "x" },
		{ 550, "5.1.1234", "x", 550, "", "x" },
		{ 550, "5.1234.1", "x", 550, "", "x" },
		{ 550, "5..1", "x", 550, "", "x" },
		{ 550, "5.1.1 ", "x", 550, "", "x" },
		{ 550, "5.100.100000", "x", 550, "", "x" },
		{ 550, "-", "x", 550, "", "x" },
		{ 550, "5.1.1", "a\r\nb\tc\x7f\x1b", 550, "5.1.1", "a??b?c??" },
	};
	struct envelope e;
	struct buf b;
	char *longtext;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sample(&e);
		envelope_set_reply(&e.rcpts[0], 421, "4.0.0", "older");
		envelope_set_reply(&e.rcpts[0], cases[i].code,
		    cases[i].enhanced, cases[i].text);
		if (e.rcpts[0].code != cases[i].want_code ||
		    strcmp(e.rcpts[0].enhanced, cases[i].want_enhanced) ||
		    strcmp(e.rcpts[0].text, cases[i].want_text))
			fail_msg("case %zu: got %d \"%s\" \"%s\"", i,
			    e.rcpts[0].code, e.rcpts[0].enhanced,
			    e.rcpts[0].text);
		buf_init(&b, 4096);
		assert_int_equal(envelope_format(&e, &b), 0);
		buf_free(&b);
		roundtrip(&e);
		envelope_free(&e);
	}
	/* too long: cut */
	longtext = malloc(ENVELOPE_REPLY_MAX + 100);
	memset(longtext, 'y', ENVELOPE_REPLY_MAX + 99);
	longtext[ENVELOPE_REPLY_MAX + 99] = '\0';
	sample(&e);
	envelope_set_reply(&e.rcpts[0], 550, "5.0.0", longtext);
	assert_int_equal(strlen(e.rcpts[0].text), ENVELOPE_REPLY_MAX);
	roundtrip(&e);
	envelope_free(&e);
	free(longtext);
}

/* test_format_refuses - values the parser would reject are never written */
static void
test_format_refuses(void **state)
{
	static const struct {
		const char *what;
		int field;	/* 0 sender 1 login 2 client 3 helo 4 rcpt */
		const char *value;
	} bad[] = {
		{ "CR in sender", 0, "a\r@example.org" },
		{ "LF in sender", 0, "a@example.org\nrcpt pending x@y" },
		{ "CRLF in login", 1, "alice\r\n" },
		{ "LF in client", 2, "192.0.2.1\n" },
		{ "CR in helo", 3, "host\rname" },
		{ "LF in helo", 3, "host\nend" },
		{ "tab in helo", 3, "host\tname" },
		{ "DEL in helo", 3, "host\x7f" },
		{ "ESC in sender", 0, "\x1b[31m@example.org" },
		{ "LF in rcpt", 4, "bob@example.net\nrcpt pending eve@x" },
		{ "empty rcpt", 4, "" },
	};
	struct envelope e;
	struct buf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char **slot;

		sample(&e);
		slot = bad[i].field == 0 ? &e.sender :
		    bad[i].field == 1 ? &e.login :
		    bad[i].field == 2 ? &e.client :
		    bad[i].field == 3 ? &e.helo : &e.rcpts[0].addr;
		free(*slot);
		*slot = strdup(bad[i].value);
		buf_init(&b, 4096);
		buf_puts(&b, "keep");
		errno = 0;
		if (envelope_format(&e, &b) != -1)
			fail_msg("%s: written:\n%s", bad[i].what, b.data);
		assert_int_equal(errno, EINVAL);
		assert_string_equal(b.data, "keep");	/* b unchanged */
		assert_int_equal(b.len, 4);
		buf_free(&b);
		envelope_free(&e);
	}

	/* structural refusals */
	sample(&e);
	buf_init(&b, 4096);
	strcpy(e.id, "short");
	assert_int_equal(envelope_format(&e, &b), -1);
	assert_int_equal(errno, EINVAL);
	strcpy(e.id, "../../../etc/passwd!");
	assert_int_equal(envelope_format(&e, &b), -1);
	strcpy(e.id, ID_A);
	free(e.client);
	e.client = NULL;
	assert_int_equal(envelope_format(&e, &b), -1);
	e.client = strdup("192.0.2.1");
	e.rcpts[0].status = (enum rcpt_status)7;
	assert_int_equal(envelope_format(&e, &b), -1);
	e.rcpts[0].status = RCPT_PENDING;
	e.time = -1;
	assert_int_equal(envelope_format(&e, &b), -1);
	e.time = 1;
	assert_int_equal(b.len, 0);
	assert_int_equal(envelope_format(&e, &b), 0);	/* now fine */
	envelope_free(&e);

	/* version-2 values the parser would reject, set behind the setter's
	   back */
	{
		static const struct {
			const char	*what;
			int		 code;
			const char	*enhanced;
			const char	*text;
		} rbad[] = {
			{ "code 99", 99, "", "x" },
			{ "code 600", 600, "", "x" },
			{ "code 1000", 1000, "", "x" },
			{ "code -1", -1, "", "x" },
			{ "enhanced 4.4", 451, "4.4", "x" },
			{ "enhanced 3.0.0", 451, "3.0.0", "x" },
			{ "enhanced 4.4.1234", 451, "4.4.1234", "x" },
			{ "enhanced -", 451, "-", "x" },
			{ "enhanced with space", 451, "4.4.1 ", "x" },
			{ "enhanced unterminated", 451, NULL, "x" },
			{ "CR in text", 451, "", "a\rb" },
			{ "LF in text", 451, "", "a\nrcpt pending eve@x" },
			{ "tab in text", 451, "", "a\tb" },
			{ "text too long", 451, "", NULL },
		};
		char *longtext = malloc(ENVELOPE_REPLY_MAX + 2);

		memset(longtext, 'x', ENVELOPE_REPLY_MAX + 1);
		longtext[ENVELOPE_REPLY_MAX + 1] = '\0';
		for (i = 0; i < sizeof(rbad) / sizeof(rbad[0]); i++) {
			struct envelope_rcpt *r;

			sample(&e);
			r = &e.rcpts[1];
			r->code = rbad[i].code;
			if (rbad[i].enhanced != NULL)
				strcpy(r->enhanced, rbad[i].enhanced);
			else
				memset(r->enhanced, '4', sizeof(r->enhanced));
			r->text = strdup(rbad[i].text ? rbad[i].text :
			    longtext);
			buf_reset(&b);
			errno = 0;
			if (envelope_format(&e, &b) != -1)
				fail_msg("%s: written:\n%s", rbad[i].what,
				    b.data);
			assert_int_equal(errno, EINVAL);
			assert_int_equal(b.len, 0);
			envelope_free(&e);
		}
		free(longtext);

		sample(&e);
		e.next_attempt = -1;
		assert_int_equal(envelope_format(&e, &b), -1);
		assert_int_equal(errno, EINVAL);
		e.next_attempt = 0;
		strcpy(e.dsn, "short");
		assert_int_equal(envelope_format(&e, &b), -1);
		assert_int_equal(errno, EINVAL);
		strcpy(e.dsn, "1c2QbT3ZxAbCdEfGhI.K");
		assert_int_equal(envelope_format(&e, &b), -1);
		memset(e.dsn, 'a', sizeof(e.dsn));	/* no NUL */
		assert_int_equal(envelope_format(&e, &b), -1);
		e.dsn[0] = '\0';
		assert_int_equal(b.len, 0);
		assert_int_equal(envelope_format(&e, &b), 0);
		envelope_free(&e);
	}

	memset(&e, 0, sizeof(e));		/* no recipients */
	strcpy(e.id, ID_A);
	e.sender = strdup("");
	e.client = strdup("x");
	e.helo = strdup("x");
	buf_reset(&b);
	assert_int_equal(envelope_format(&e, &b), -1);
	assert_int_equal(errno, EINVAL);
	envelope_free(&e);
	buf_free(&b);
}

/* test_format_too_big - past the buffer's max: E2BIG, buffer unchanged */
static void
test_format_too_big(void **state)
{
	struct envelope e;
	struct buf b;

	(void)state;
	sample(&e);
	buf_init(&b, strlen(golden) - 1);
	buf_puts(&b, "x");
	assert_int_equal(envelope_format(&e, &b), -1);
	assert_int_equal(errno, E2BIG);
	assert_int_equal(b.len, 1);
	assert_string_equal(b.data, "x");
	buf_free(&b);
	buf_init(&b, strlen(golden));
	assert_int_equal(envelope_format(&e, &b), 0);	/* exactly fits */
	buf_free(&b);
	envelope_free(&e);
}

#define HEAD	"postern-envelope 1\nid " ID_A "\n"
#define HEAD2	"postern-envelope 2\nid " ID_A "\n"
#define REST	"time 1\nsender a@b\nclient c\nhelo h\nbody 7bit\n" \
		"smtputf8 0\nsize 0\n"
#define RCPT	"rcpt pending r@x\n"

/* expect_parse_error - text[0..len) must fail with reason why, leaving
   *e empty; parsed from an exact-size heap copy so that ASan catches any
   read past len */
static void
expect_parse_error(const char *what, const char *text, size_t len,
    const char *why)
{
	struct envelope e;
	const char *err = NULL;
	char *copy = malloc(len ? len : 1);

	memcpy(copy, text, len);
	if (envelope_parse(copy, len, &e, &err) != -1)
		fail_msg("%s parsed, want \"%s\"", what, why);
	if (err == NULL || strcmp(err, why) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", what,
		    err ? err : "(null)", why);
	assert_null(e.sender);
	assert_null(e.rcpts);
	assert_int_equal(e.nrcpts, 0);
	assert_int_equal(e.attempts, 0);
	assert_string_equal(e.dsn, "");
	free(copy);
}

/* test_parse_errors - each damaged envelope fails with its own reason */
static void
test_parse_errors(void **state)
{
	static const struct {
		const char *text;
		size_t len;	/* 0: strlen(text) */
		const char *why;
	} cases[] = {
		{ "", 0, "empty envelope" },
		{ "hello\n", 0, "not a postern envelope" },
		{ "postern-envelope\n", 0, "not a postern envelope" },
		{ "Postern-envelope 1\n", 0, "not a postern envelope" },
		{ "postern-envelope 4\n" "id " ID_A "\n" REST RCPT "end\n", 0,
		    "unsupported envelope version" },
		{ "postern-envelope 0\n" "id " ID_A "\n" REST RCPT "end\n", 0,
		    "unsupported envelope version" },
		{ "postern-envelope 02\n", 0, "unsupported envelope version" },
		{ "postern-envelope 01\n", 0, "unsupported envelope version" },
		{ "postern-envelope 1 \n", 0, "unsupported envelope version" },
		{ "postern-envelope 99999999999999999999999\n", 0,
		    "unsupported envelope version" },
		{ "postern-envelope 1", 0, "truncated line (no newline)" },
		{ HEAD REST RCPT, 0, "missing end record (truncated)" },
		{ HEAD REST RCPT "end", 0, "truncated line (no newline)" },
		{ HEAD REST RCPT "en", 0, "truncated line (no newline)" },
		{ HEAD REST RCPT "end\n\n", 0, "data after end record" },
		{ HEAD REST RCPT "end\nend\n", 0, "data after end record" },
		{ HEAD REST RCPT "end\nrcpt pending x@y\n", 0,
		    "data after end record" },
		{ HEAD REST RCPT "end x\n", 0, "end record with a value" },
		{ HEAD REST "\n" RCPT "end\n", 0, "empty line" },
		{ HEAD REST "colour blue\n" RCPT "end\n", 0, "unknown record" },
		{ HEAD REST "ID x\n" RCPT "end\n", 0, "unknown record" },
		{ HEAD REST " rcpt pending x@y\n" "end\n", 0,
		    "unknown record" },
		{ HEAD REST "time 2\n" RCPT "end\n", 0, "duplicate record" },
		{ HEAD REST "id " ID_A "\n" RCPT "end\n", 0,
		    "duplicate record" },
		{ HEAD REST "sender x@y\n" RCPT "end\n", 0,
		    "duplicate record" },
		{ HEAD REST "login a\nlogin b\n" RCPT "end\n", 0,
		    "duplicate record" },
		{ HEAD REST "size 1\n" RCPT "end\n", 0, "duplicate record" },
		{ "postern-envelope 1\n" REST RCPT "end\n", 0,
		    "missing id record" },
		{ HEAD "sender a@b\nclient c\nhelo h\nbody 7bit\nsmtputf8 0\n"
		    "size 0\n" RCPT "end\n", 0, "missing time record" },
		{ HEAD "time 1\nclient c\nhelo h\nbody 7bit\nsmtputf8 0\n"
		    "size 0\n" RCPT "end\n", 0, "missing sender record" },
		{ HEAD "time 1\nsender a@b\nhelo h\nbody 7bit\nsmtputf8 0\n"
		    "size 0\n" RCPT "end\n", 0, "missing client record" },
		{ HEAD "time 1\nsender a@b\nclient c\nbody 7bit\nsmtputf8 0\n"
		    "size 0\n" RCPT "end\n", 0, "missing helo record" },
		{ HEAD "time 1\nsender a@b\nclient c\nhelo h\nsmtputf8 0\n"
		    "size 0\n" RCPT "end\n", 0, "missing body record" },
		{ HEAD "time 1\nsender a@b\nclient c\nhelo h\nbody 7bit\n"
		    "size 0\n" RCPT "end\n", 0, "missing smtputf8 record" },
		{ HEAD "time 1\nsender a@b\nclient c\nhelo h\nbody 7bit\n"
		    "smtputf8 0\n" RCPT "end\n", 0, "missing size record" },
		{ HEAD REST "end\n", 0, "no recipients" },
		{ "postern-envelope 1\nid short\n" REST RCPT "end\n", 0,
		    "bad queue id" },
		{ "postern-envelope 1\nid 1c2QbT3ZxAbCdEfGhIj/\n" REST RCPT
		    "end\n", 0, "bad queue id" },
		{ "postern-envelope 1\nid " ID_A "x\n" REST RCPT "end\n", 0,
		    "bad queue id" },
		{ "postern-envelope 1\nid\n" REST RCPT "end\n", 0,
		    "bad queue id" },
		{ HEAD "time -1\nsender a@b\nclient c\nhelo h\nbody 7bit\n"
		    "smtputf8 0\nsize 0\n" RCPT "end\n", 0, "bad time" },
		{ HEAD "time 01\nsender a@b\nclient c\nhelo h\nbody 7bit\n"
		    "smtputf8 0\nsize 0\n" RCPT "end\n", 0, "bad time" },
		{ HEAD "time 9223372036854775808\nsender a@b\nclient c\n"
		    "helo h\nbody 7bit\nsmtputf8 0\nsize 0\n" RCPT "end\n", 0,
		    "bad time" },
		{ HEAD "time\nsender a@b\nclient c\nhelo h\nbody 7bit\n"
		    "smtputf8 0\nsize 0\n" RCPT "end\n", 0, "bad time" },
		{ HEAD "time 1\nsender a@b\nclient c\nhelo h\nbody 7bit\n"
		    "smtputf8 0\nsize 18446744073709551616\n" RCPT "end\n", 0,
		    "bad size" },
		{ HEAD "time 1\nsender a@b\nclient c\nhelo h\nbody 7bit\n"
		    "smtputf8 0\nsize 1k\n" RCPT "end\n", 0, "bad size" },
		{ HEAD "time 1\nsender a@b\nclient c\nhelo h\nbody 7bit\n"
		    "smtputf8 0\nsize +1\n" RCPT "end\n", 0, "bad size" },
		{ HEAD "time 1\nsender a@b\nclient c\nhelo h\nbody 8BITMIME\n"
		    "smtputf8 0\nsize 0\n" RCPT "end\n", 0, "bad body type" },
		{ HEAD "time 1\nsender a@b\nclient c\nhelo h\nbody binarymime\n"
		    "smtputf8 0\nsize 0\n" RCPT "end\n", 0, "bad body type" },
		{ HEAD "time 1\nsender a@b\nclient c\nhelo h\nbody 7bit\n"
		    "smtputf8 yes\nsize 0\n" RCPT "end\n", 0,
		    "bad smtputf8 flag" },
		{ HEAD REST "rcpt pending\n" "end\n", 0,
		    "recipient record without status and address" },
		{ HEAD REST "rcpt\n" "end\n", 0,
		    "recipient record without status and address" },
		{ HEAD REST "rcpt sent r@x\n" "end\n", 0,
		    "unknown recipient status" },
		{ HEAD REST "rcpt r@x\n" "end\n", 0,
		    "recipient record without status and address" },
		{ HEAD REST "rcpt pending \n" "end\n", 0,
		    "empty recipient address" },
		{ HEAD REST "rcpt pending r@x\r\n" "end\n", 0,
		    "carriage return in envelope" },
		{ "postern-envelope 1\r\n", 0, "carriage return in envelope" },
		{ HEAD REST RCPT "end\r\n", 0, "carriage return in envelope" },
		{ HEAD REST "rcpt pending r\0@x\n" "end\n",
		    sizeof(HEAD REST "rcpt pending r\0@x\n" "end\n") - 1,
		    "NUL byte in envelope" },
		{ HEAD REST RCPT "end\n\0",
		    sizeof(HEAD REST RCPT "end\n\0") - 1,
		    "data after end record" },
		{ HEAD REST "helo a\tb\n" RCPT "end\n", 0,
		    "control character in envelope" },
	};
	struct envelope e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char what[32];

		snprintf(what, sizeof(what), "case %zu", i);
		expect_parse_error(what, cases[i].text, cases[i].len ?
		    cases[i].len : strlen(cases[i].text), cases[i].why);
	}
	/* the building blocks themselves are fine */
	{
		static const char ok[] = HEAD REST RCPT "end\n";
		const char *err = NULL;

		assert_int_equal(envelope_parse(ok, strlen(ok), &e, &err), 0);
		assert_string_equal(e.sender, "a@b");
		assert_null(e.login);
		envelope_free(&e);
	}
	/* empty sender: bare key, or key and a space */
	{
		static const char bare[] = HEAD "time 1\nsender\nclient c\n"
		    "helo h\nbody 7bit\nsmtputf8 0\nsize 0\n" RCPT "end\n";
		static const char sp[] = HEAD "time 1\nsender \nclient c\n"
		    "helo h\nbody 7bit\nsmtputf8 0\nsize 0\n" RCPT "end\n";
		const char *err = NULL;

		assert_int_equal(envelope_parse(bare, strlen(bare), &e, &err),
		    0);
		assert_string_equal(e.sender, "");
		envelope_free(&e);
		assert_int_equal(envelope_parse(sp, strlen(sp), &e, &err), 0);
		assert_string_equal(e.sender, "");
		envelope_free(&e);
	}
	/* NULL text is an empty envelope, not a crash */
	{
		const char *err = NULL;

		assert_int_equal(envelope_parse(NULL, 0, &e, &err), -1);
		assert_string_equal(err, "empty envelope");
	}
}

/* test_parse_errors_v2 - the version-2 records: each rejection (a table),
   then what they accept */
static void
test_parse_errors_v2(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} cases[] = {
		/* not in version 1 */
		{ HEAD REST "attempts 1\n" RCPT "end\n",
		    "record not in envelope version 1" },
		{ HEAD REST "attempts 0\n" RCPT "end\n",
		    "record not in envelope version 1" },
		{ HEAD REST "next 5\n" RCPT "end\n",
		    "record not in envelope version 1" },
		{ HEAD REST "dsn " ID_B "\n" RCPT "end\n",
		    "record not in envelope version 1" },
		{ HEAD REST RCPT "reply 451 4.4.1 x\n" "end\n",
		    "record not in envelope version 1" },
		{ HEAD REST RCPT "reply\n" "end\n",
		    "record not in envelope version 1" },
		/* reply: only directly after its rcpt, once */
		{ HEAD2 REST "reply 451 - x\n" RCPT "end\n",
		    "reply record not after a recipient" },
		{ HEAD2 "reply 451 - x\n" REST RCPT "end\n",
		    "reply record not after a recipient" },
		{ HEAD2 REST RCPT "attempts 1\nreply 451 - x\n" "end\n",
		    "reply record not after a recipient" },
		{ HEAD2 REST RCPT "reply 451 - a\nreply 451 - b\n" "end\n",
		    "second reply record for a recipient" },
		{ HEAD2 REST RCPT "reply 451 - a\nreply 451 - a\n" "end\n",
		    "second reply record for a recipient" },
		/* reply code */
		{ HEAD2 REST RCPT "reply\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply \n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply 45 - x\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply 4510 - x\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply 451-4.4.1 x\n" "end\n",
		    "bad reply code" },
		{ HEAD2 REST RCPT "reply 199 - x\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply 600 - x\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply 001 - x\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply 0 - x\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply 4a1 - x\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply -451 - x\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply +51 - x\n" "end\n", "bad reply code" },
		{ HEAD2 REST RCPT "reply  451 - x\n" "end\n", "bad reply code" },
		/* enhanced status code */
		{ HEAD2 REST RCPT "reply 451\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 \n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451  4.4.1 x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 -- x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 4.4 x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 4.4.1.1 x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 3.4.1 x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 4.4.1234 x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 4.1234.1 x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 4..1 x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 4.4. x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 .4.1 x\n" "end\n",
		    "bad enhanced status code" },
		{ HEAD2 REST RCPT "reply 451 4.4.x x\n" "end\n",
		    "bad enhanced status code" },
		/* reply text: printable, like every value */
		{ HEAD2 REST RCPT "reply 451 - a\tb\n" "end\n",
		    "control character in envelope" },
		{ HEAD2 REST RCPT "reply 451 - a\r\n" "end\n",
		    "carriage return in envelope" },
		/* dsn */
		{ HEAD2 REST "dsn\n" RCPT "end\n", "bad dsn queue id" },
		{ HEAD2 REST "dsn short\n" RCPT "end\n", "bad dsn queue id" },
		{ HEAD2 REST "dsn " ID_B "x\n" RCPT "end\n",
		    "bad dsn queue id" },
		{ HEAD2 REST "dsn 1c2QbT3ZxAbCdEfGhIj/\n" RCPT "end\n",
		    "bad dsn queue id" },
		{ HEAD2 REST "dsn  " ID_B "\n" RCPT "end\n",
		    "bad dsn queue id" },
		{ HEAD2 REST "dsn " ID_B "\ndsn " ID_B "\n" RCPT "end\n",
		    "duplicate record" },
		/* attempts */
		{ HEAD2 REST "attempts\n" RCPT "end\n", "bad attempts" },
		{ HEAD2 REST "attempts -1\n" RCPT "end\n", "bad attempts" },
		{ HEAD2 REST "attempts +1\n" RCPT "end\n", "bad attempts" },
		{ HEAD2 REST "attempts 01\n" RCPT "end\n", "bad attempts" },
		{ HEAD2 REST "attempts 1 \n" RCPT "end\n", "bad attempts" },
		{ HEAD2 REST "attempts 4294967296\n" RCPT "end\n",
		    "bad attempts" },
		{ HEAD2 REST "attempts many\n" RCPT "end\n", "bad attempts" },
		{ HEAD2 REST "attempts 1\nattempts 2\n" RCPT "end\n",
		    "duplicate record" },
		/* next */
		{ HEAD2 REST "next\n" RCPT "end\n", "bad next attempt time" },
		{ HEAD2 REST "next -1\n" RCPT "end\n", "bad next attempt time" },
		{ HEAD2 REST "next 01\n" RCPT "end\n", "bad next attempt time" },
		{ HEAD2 REST "next 9223372036854775808\n" RCPT "end\n",
		    "bad next attempt time" },
		{ HEAD2 REST "next 1.5\n" RCPT "end\n", "bad next attempt time" },
		{ HEAD2 REST "next 1\nnext 1\n" RCPT "end\n",
		    "duplicate record" },
		/* near misses of the new keys */
		{ HEAD2 REST "Attempts 1\n" RCPT "end\n", "unknown record" },
		{ HEAD2 REST RCPT "replies 451 - x\n" "end\n",
		    "unknown record" },
		{ HEAD2 REST "next_attempt 1\n" RCPT "end\n",
		    "unknown record" },
	};
	static const char *ok[] = {
		/* absent records are zero; explicit zeros are fine too */
		HEAD2 REST RCPT "end\n",
		HEAD2 REST "attempts 0\nnext 0\n" RCPT "end\n",
		/* any order for the one-only records, before or after rcpt */
		HEAD2 "attempts 2\n" REST RCPT "next 7\ndsn " ID_B "\n" "end\n",
		/* a reply for each recipient; text empty, with or without its
		   space */
		HEAD2 REST RCPT "reply 451 4.4.1\n"
		    "rcpt failed s@x\nreply 550 5.1.1 \n"
		    "rcpt pending t@x\nreply 000 4.4.1 timed out\n"
		    "rcpt delivered u@x\n" "end\n",
	};
	struct envelope e;
	struct buf b;
	const char *err;
	char what[32];
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(what, sizeof(what), "v2 case %zu", i);
		expect_parse_error(what, cases[i].text, strlen(cases[i].text),
		    cases[i].why);
	}
	/* text one byte longer than allowed, then the longest allowed */
	for (len = ENVELOPE_REPLY_MAX + 1; len >= ENVELOPE_REPLY_MAX; len--) {
		buf_init(&b, 1 << 16);
		assert_int_equal(buf_puts(&b, HEAD2 REST RCPT "reply 451 - "),
		    0);
		for (i = 0; i < len; i++)
			assert_int_equal(buf_append(&b, "x", 1), 0);
		assert_int_equal(buf_puts(&b, "\nend\n"), 0);
		if (len > ENVELOPE_REPLY_MAX)
			expect_parse_error("long text", b.data, b.len,
			    "reply text too long");
		else {
			err = NULL;
			if (envelope_parse(b.data, b.len, &e, &err) != 0)
				fail_msg("longest text: %s", err);
			assert_int_equal(strlen(e.rcpts[0].text), len);
			envelope_free(&e);
		}
		buf_free(&b);
	}

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		err = NULL;
		if (envelope_parse(ok[i], strlen(ok[i]), &e, &err) != 0)
			fail_msg("ok case %zu: %s", i, err);
		envelope_free(&e);
	}
	assert_int_equal(envelope_parse(ok[1], strlen(ok[1]), &e, &err), 0);
	assert_int_equal(e.attempts, 0);
	assert_int_equal(e.next_attempt, 0);
	envelope_free(&e);
	assert_int_equal(envelope_parse(ok[2], strlen(ok[2]), &e, &err), 0);
	assert_int_equal(e.attempts, 2);
	assert_int_equal(e.next_attempt, 7);
	assert_string_equal(e.dsn, ID_B);
	envelope_free(&e);
	assert_int_equal(envelope_parse(ok[3], strlen(ok[3]), &e, &err), 0);
	assert_int_equal(e.nrcpts, 4);
	assert_int_equal(e.rcpts[0].code, 451);
	assert_string_equal(e.rcpts[0].enhanced, "4.4.1");
	assert_string_equal(e.rcpts[0].text, "");
	assert_int_equal(e.rcpts[1].status, RCPT_FAILED);
	assert_int_equal(e.rcpts[1].code, 550);
	assert_string_equal(e.rcpts[1].text, "");
	assert_int_equal(e.rcpts[2].code, 0);
	assert_string_equal(e.rcpts[2].enhanced, "4.4.1");
	assert_string_equal(e.rcpts[2].text, "timed out");
	assert_null(e.rcpts[3].text);
	envelope_free(&e);
}

/* test_parse_truncated - every proper prefix of a good envelope fails */
static void
test_parse_truncated(void **state)
{
	static const char *goldens[] = { golden, golden_v1, golden_v2 };
	struct envelope e;
	size_t g, len, n;

	(void)state;
	for (g = 0; g < 3; g++) {
		n = strlen(goldens[g]);
		for (len = 0; len < n; len++) {
			const char *err = NULL;
			char *copy = malloc(len ? len : 1);

			memcpy(copy, goldens[g], len);
			if (envelope_parse(copy, len, &e, &err) != -1)
				fail_msg("prefix of %zu bytes of golden %zu "
				    "parsed", len, g);
			assert_non_null(err);
			free(copy);
		}
	}
}

/* test_parse_random_damage - flipped, dropped and random bytes: no crash */
static void
test_parse_random_damage(void **state)
{
	struct envelope e;
	const char *src;
	size_t n, i, len;
	unsigned seed = 12345;
	int round, ok = 0;

	(void)state;
	for (round = 0; round < 20000; round++) {
		const char *err = NULL;
		char *copy;

		src = round % 2 ? golden_v2 : golden;
		n = strlen(src);
		len = n;
		copy = malloc(n);
		memcpy(copy, src, n);
		for (i = 0; i < 1 + (unsigned)round % 4; i++) {
			seed = seed * 1103515245 + 12345;
			switch ((seed >> 16) % 3) {
			case 0:		/* random byte */
				copy[(seed >> 8) % len] = (char)(seed >> 20);
				break;
			case 1:		/* cut */
				len = (seed >> 8) % len + 1;
				break;
			case 2:		/* newline somewhere */
				copy[(seed >> 8) % len] = '\n';
				break;
			}
		}
		if (round % 50 == 0)	/* pure noise too */
			for (i = 0; i < len; i++) {
				seed = seed * 1103515245 + 12345;
				copy[i] = (char)(seed >> 16);
			}
		if (envelope_parse(copy, len, &e, &err) == 0) {
			ok++;
			envelope_free(&e);
		} else
			assert_non_null(err);
		free(copy);
	}
	/* some mutations (in an address, say) still give a valid envelope */
	assert_true(ok > 0);
	assert_true(ok < 20000);
}

/* test_prepend - header fields to prepend survive as one base64 record,
   of every length modulo 3; damaged base64 is refused */
static void
test_prepend(void **state)
{
	static const char sig[] = "DKIM-Signature: v=1; a=rsa-sha256;\r\n"
	    "\tb=abc\r\n";
	static const char *bad[] = { "prepend", "prepend QUJD", "prepend !!!!",
	    "prepend QUJ", "prepend ====" };
	struct envelope e, back;
	struct buf b;
	const char *err;
	size_t cut;
	int i;

	(void)state;
	for (cut = 0; cut < 3; cut++) {
		sample(&e);
		e.prepend = strndup(sig, sizeof(sig) - 1 - cut);
		e.prepend_len = sizeof(sig) - 1 - cut;
		roundtrip(&e);
		envelope_free(&e);
	}
	for (i = 0; i < 5; i++) {
		sample(&e);
		buf_init(&b, 1 << 16);
		assert_int_equal(envelope_format(&e, &b), 0);
		envelope_free(&e);
		/* put the bad record before "end" */
		b.len -= 4;
		assert_int_equal(buf_printf(&b, "%s\nend\n", bad[i]), 0);
		if (i == 1) {
			assert_int_equal(envelope_parse(b.data, b.len, &back,
			    &err), 0);
			assert_int_equal(back.prepend_len, 3);
			assert_memory_equal(back.prepend, "ABC", 3);
			envelope_free(&back);
		} else {
			assert_int_equal(envelope_parse(b.data, b.len, &back,
			    &err), -1);
			assert_string_equal(err, i == 0 ? "bad prepend record" :
			    "bad prepend record");
		}
		buf_free(&b);
	}
}

/* test_queue_id_valid - the id check that guards every path */
static void
test_queue_id_valid(void **state)
{
	(void)state;
	assert_true(queue_id_valid(ID_A));
	assert_true(queue_id_valid("00000000000000000000"));
	assert_true(queue_id_valid("zzzzzzzzzzzzzzzzzzzz"));
	assert_false(queue_id_valid(NULL));
	assert_false(queue_id_valid(""));
	assert_false(queue_id_valid("1c2QbT3ZxAbCdEfGhIj"));	/* 19 */
	assert_false(queue_id_valid(ID_A "K"));			/* 21 */
	assert_false(queue_id_valid("1c2QbT3ZxAbCdEfGhI.."));
	assert_false(queue_id_valid("../../etc/passwd0000"));
	assert_false(queue_id_valid("1c2QbT3ZxAbCdEfGhIj/"));
	assert_false(queue_id_valid("1c2QbT3ZxAbCdEfGhIj "));
	assert_false(queue_id_valid("1c2QbT3ZxAbCdEfGhIj\xc3"));
	assert_false(queue_id_valid("1c2QbT3Zx-bCdEfGhIjK"));
	assert_false(queue_id_valid("1c2QbT3Zx_bCdEfGhIjK"));
}

/* test_add_rcpt - copies, pending, in order */
static void
test_add_rcpt(void **state)
{
	struct envelope e;
	char addr[] = "x@example.org";

	(void)state;
	memset(&e, 0, sizeof(e));
	envelope_add_rcpt(&e, addr);
	addr[0] = 'y';
	envelope_add_rcpt(&e, addr);
	assert_int_equal(e.nrcpts, 2);
	assert_string_equal(e.rcpts[0].addr, "x@example.org");
	assert_string_equal(e.rcpts[1].addr, "y@example.org");
	assert_int_equal(e.rcpts[0].status, RCPT_PENDING);
	envelope_free(&e);
	assert_int_equal(e.nrcpts, 0);
	assert_null(e.rcpts);
}

#define HEAD3	"postern-envelope 3\nid " ID_A "\n"

/* test_hold_v3 - hold is a version-3 record: written only for a held
   message (the rest stay version 2, readable by the release before),
   read back, and refused in an older version or malformed */
static void
test_hold_v3(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} cases[] = {
		{ HEAD2 REST "hold 5\n" RCPT "end\n",
		    "record not in envelope version 1 or 2" },
		{ "postern-envelope 1\nid " ID_A "\n" REST "hold 5\n" RCPT
		    "end\n", "record not in envelope version 1 or 2" },
		{ HEAD3 REST "hold\n" RCPT "end\n", "bad hold time" },
		{ HEAD3 REST "hold 0\n" RCPT "end\n", "bad hold time" },
		{ HEAD3 REST "hold -5\n" RCPT "end\n", "bad hold time" },
		{ HEAD3 REST "hold 05\n" RCPT "end\n", "bad hold time" },
		{ HEAD3 REST "hold 5\nhold 6\n" RCPT "end\n",
		    "duplicate record" },
	};
	struct envelope e, back;
	struct buf b;
	const char *err = NULL;
	char what[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(what, sizeof(what), "v3 case %zu", i);
		expect_parse_error(what, cases[i].text, strlen(cases[i].text),
		    cases[i].why);
	}
	/* a version-3 file without hold is fine too */
	assert_int_equal(envelope_parse(HEAD3 REST RCPT "end\n",
	    strlen(HEAD3 REST RCPT "end\n"), &e, &err), 0);
	assert_int_equal(e.held, 0);

	/* not held: written as version 2, no hold line */
	buf_init(&b, 1 << 16);
	assert_int_equal(envelope_format(&e, &b), 0);
	assert_true(strncmp(b.data, "postern-envelope 2\n", 19) == 0);
	assert_null(strstr(b.data, "hold"));
	/* held: version 3, and read back */
	e.held = 1765000000;
	buf_reset(&b);
	assert_int_equal(envelope_format(&e, &b), 0);
	assert_true(strncmp(b.data, "postern-envelope 3\n", 19) == 0);
	assert_non_null(strstr(b.data, "\nhold 1765000000\n"));
	assert_int_equal(envelope_parse(b.data, b.len, &back, &err), 0);
	assert_int_equal(back.held, 1765000000);
	envelope_free(&back);
	envelope_free(&e);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_golden),
		cmocka_unit_test(test_format_golden_v2),
		cmocka_unit_test(test_parse_golden),
		cmocka_unit_test(test_parse_v1),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_roundtrip_v2),
		cmocka_unit_test(test_set_reply),
		cmocka_unit_test(test_prepend),
		cmocka_unit_test(test_format_refuses),
		cmocka_unit_test(test_format_too_big),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_errors_v2),
		cmocka_unit_test(test_hold_v3),
		cmocka_unit_test(test_parse_truncated),
		cmocka_unit_test(test_parse_random_damage),
		cmocka_unit_test(test_queue_id_valid),
		cmocka_unit_test(test_add_rcpt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
