/*
 * test_dataread - the DATA reader's edge-case table
 *
 * Every vector is fed whole, byte by byte, and split in two at every
 * position; each way must give the same status, output, consumed count,
 * size and flags. Output buffers are allocated at exactly the chunk size,
 * so ASan and valgrind catch a reader that writes more than it read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "submit/dataread.h"

#define NOLIMIT	UINT64_MAX
#define S(lit)	lit, sizeof(lit) - 1

struct vector {
	const char		*name;
	const char		*in;
	size_t			 inlen;
	uint64_t		 max_size;
	enum dataread_status	 status;
	const char		*out;
	size_t			 outlen;
	size_t			 consumed;
	uint64_t		 size;
	bool			 too_big;
	bool			 line_too_long;
};

static const struct vector vectors[] = {
	{ "empty message", S(".\r\n"), NOLIMIT,
	  DATAREAD_DONE, S(""), 3, 0, false, false },
	{ "one empty line", S("\r\n.\r\n"), NOLIMIT,
	  DATAREAD_DONE, S("\r\n"), 5, 2, false, false },
	{ "single line", S("hello\r\n.\r\n"), NOLIMIT,
	  DATAREAD_DONE, S("hello\r\n"), 10, 7, false, false },
	{ "two lines", S("Subject: x\r\n\r\nbody\r\n.\r\n"), NOLIMIT,
	  DATAREAD_DONE, S("Subject: x\r\n\r\nbody\r\n"), 23, 20,
	  false, false },
	{ "dot-stuffed lines", S("..\r\n..foo\r\n...\r\n.\r\n"), NOLIMIT,
	  DATAREAD_DONE, S(".\r\n.foo\r\n..\r\n"), 19, 13, false, false },
	{ "dot then text: dot dropped", S(".x\r\n. y\r\n.\r\n"), NOLIMIT,
	  DATAREAD_DONE, S("x\r\n y\r\n"), 12, 7, false, false },
	{ "dots inside a line stay", S("a.b.\r\n.\r\n"), NOLIMIT,
	  DATAREAD_DONE, S("a.b.\r\n"), 9, 6, false, false },
	{ "end mid-chunk, pipelined QUIT after",
	  S("a\r\n.\r\nQUIT\r\n"), NOLIMIT,
	  DATAREAD_DONE, S("a\r\n"), 6, 3, false, false },
	{ "end mid-chunk, next transaction after",
	  S("a\r\nb\r\n.\r\nMAIL FROM:<x@y>\r\n.\r\n"), NOLIMIT,
	  DATAREAD_DONE, S("a\r\nb\r\n"), 9, 6, false, false },
	{ "8-bit and NUL pass through", S("\xff\xc3\xa9\0x\r\n.\r\n"), NOLIMIT,
	  DATAREAD_DONE, S("\xff\xc3\xa9\0x\r\n"), 10, 7, false, false },
	{ "no end yet", S("abc\r\n"), NOLIMIT,
	  DATAREAD_MORE, S("abc\r\n"), 5, 5, false, false },
	{ "no end yet: dot held back", S("abc\r\n."), NOLIMIT,
	  DATAREAD_MORE, S("abc\r\n"), 6, 5, false, false },
	{ "no end yet: dot CR held back", S("abc\r\n.\r"), NOLIMIT,
	  DATAREAD_MORE, S("abc\r\n"), 7, 5, false, false },
	{ "no end yet: CR at the end", S("abc\r"), NOLIMIT,
	  DATAREAD_MORE, S("abc\r"), 4, 4, false, false },
	{ "LF.CRLF is not the end", S("a\n.\r\n"), NOLIMIT,
	  DATAREAD_BARE, S("a"), 1, 1, false, false },
	{ "bare LF in the middle", S("ab\ncd\r\n.\r\n"), NOLIMIT,
	  DATAREAD_BARE, S("ab"), 2, 2, false, false },
	{ "bare LF at the start", S("\n.\r\n"), NOLIMIT,
	  DATAREAD_BARE, S(""), 0, 0, false, false },
	{ "bare LF at line start", S("a\r\n\n.\r\n"), NOLIMIT,
	  DATAREAD_BARE, S("a\r\n"), 3, 3, false, false },
	{ "bare LF after dot", S("a\r\n.\n.\r\n"), NOLIMIT,
	  DATAREAD_BARE, S("a\r\n"), 4, 3, false, false },
	{ "bare LF after dot at start", S(".\n"), NOLIMIT,
	  DATAREAD_BARE, S(""), 1, 0, false, false },
	{ "bare LF after dot-CR-LF smuggling", S("a\r\n.\r\r\n"), NOLIMIT,
	  DATAREAD_BARE, S("a\r\n"), 5, 3, false, false },
	{ "bare CR in the middle", S("ab\rcd\r\n.\r\n"), NOLIMIT,
	  DATAREAD_BARE, S("ab\r"), 3, 3, false, false },
	{ "bare CR at the start", S("\rx\r\n.\r\n"), NOLIMIT,
	  DATAREAD_BARE, S("\r"), 1, 1, false, false },
	{ "CR CR LF", S("a\r\r\n.\r\n"), NOLIMIT,
	  DATAREAD_BARE, S("a\r"), 2, 2, false, false },
	{ "dot CR then text", S(".\rx\r\n.\r\n"), NOLIMIT,
	  DATAREAD_BARE, S(""), 2, 0, false, false },
	{ "size exactly at the limit", S("abc\r\n.\r\n"), 5,
	  DATAREAD_DONE, S("abc\r\n"), 8, 5, false, false },
	{ "size one over the limit", S("abc\r\n.\r\n"), 4,
	  DATAREAD_DONE, S("abc\r"), 8, 5, true, false },
	{ "mid-line, exactly at the limit", S("abc"), 3,
	  DATAREAD_MORE, S("abc"), 3, 3, false, false },
	{ "mid-line, one over the limit", S("abcd"), 3,
	  DATAREAD_MORE, S("abc"), 4, 4, true, false },
	{ "stuffing dot is not counted", S("..\r\n.\r\n"), 3,
	  DATAREAD_DONE, S(".\r\n"), 7, 3, false, false },
	{ "too big: reading goes on to the end",
	  S("abcdef\r\nmore\r\n..\r\n.\r\nQUIT\r\n"), 3,
	  DATAREAD_DONE, S("abc"), 21, 17, true, false },
	{ "too big: bare LF still caught", S("abcdef\r\nx\ny\r\n.\r\n"), 3,
	  DATAREAD_BARE, S("abc"), 9, 9, true, false },
	{ "limit 0: empty message fits", S(".\r\n"), 0,
	  DATAREAD_DONE, S(""), 3, 0, false, false },
	{ "limit 0: anything is too big", S("\r\n.\r\n"), 0,
	  DATAREAD_DONE, S(""), 5, 2, true, false },
};

/* feed - run v->in through a fresh reader in the given chunks */
static void
feed(const struct vector *v, const size_t *cuts, size_t ncuts,
    const char *how)
{
	struct dataread dr;
	enum dataread_status st = DATAREAD_MORE;
	char *got, *out;
	size_t gotlen = 0, off = 0, end, outlen, consumed, k;

	got = malloc(v->inlen + 1);
	assert_non_null(got);
	dataread_init(&dr, v->max_size);
	for (k = 0; k <= ncuts && st == DATAREAD_MORE; k++) {
		end = k < ncuts ? cuts[k] : v->inlen;
		/* exactly the room the contract asks for; 1 for malloc(0) */
		out = malloc(end - off ? end - off : 1);
		assert_non_null(out);
		outlen = 0;
		st = dataread_feed(&dr, v->in + off, end - off, out, &outlen,
		    &consumed);
		if (outlen > end - off)
			fail_msg("%s (%s): output %zu > input %zu", v->name,
			    how, outlen, end - off);
		if (st == DATAREAD_MORE && consumed != end - off)
			fail_msg("%s (%s): MORE consumed %zu of %zu", v->name,
			    how, consumed, end - off);
		memcpy(got + gotlen, out, outlen);
		gotlen += outlen;
		free(out);
		off += consumed;
	}
	if (st != v->status)
		fail_msg("%s (%s): status %d, want %d", v->name, how, st,
		    v->status);
	if (off != v->consumed)
		fail_msg("%s (%s): consumed %zu, want %zu", v->name, how, off,
		    v->consumed);
	if (gotlen != v->outlen || memcmp(got, v->out, gotlen) != 0)
		fail_msg("%s (%s): output %zu bytes, want %zu", v->name, how,
		    gotlen, v->outlen);
	if (dr.size != v->size)
		fail_msg("%s (%s): size %ju, want %ju", v->name, how,
		    (uintmax_t)dr.size, (uintmax_t)v->size);
	if (dr.too_big != v->too_big || dr.line_too_long != v->line_too_long)
		fail_msg("%s (%s): too_big %d line_too_long %d, want %d %d",
		    v->name, how, dr.too_big, dr.line_too_long, v->too_big,
		    v->line_too_long);
	free(got);
}

/* check_vector - whole, byte by byte, and every two-way split */
static void
check_vector(const struct vector *v)
{
	size_t *cuts, k;
	char how[64];

	feed(v, NULL, 0, "whole");

	cuts = malloc((v->inlen + 1) * sizeof(*cuts));
	assert_non_null(cuts);
	for (k = 0; k < v->inlen; k++)
		cuts[k] = k + 1;
	feed(v, cuts, v->inlen, "byte by byte");

	for (k = 0; k <= v->inlen; k++) {
		snprintf(how, sizeof(how), "split at %zu", k);
		cuts[0] = k;
		feed(v, cuts, 1, how);
	}
	free(cuts);
}

/* test_table - every vector of the table */
static void
test_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		check_vector(&vectors[i]);
}

/*
 * line_vector - "LEAD" + n 'x' + CRLF + "TAIL": a long line followed by
 * more data, built at run time; returns the buffer, the caller frees it
 */
static char *
line_vector(struct vector *v, const char *lead, size_t n, const char *tail)
{
	size_t ll = strlen(lead), tl = strlen(tail);
	char *p;

	p = malloc(ll + n + 2 + tl);
	assert_non_null(p);
	memcpy(p, lead, ll);
	memset(p + ll, 'x', n);
	memcpy(p + ll + n, "\r\n", 2);
	memcpy(p + ll + n + 2, tail, tl);
	v->in = p;
	v->inlen = ll + n + 2 + tl;
	v->max_size = NOLIMIT;
	return p;
}

/* test_line_length - 1000 octets with CRLF pass, 1001 do not */
static void
test_line_length(void **state)
{
	struct vector v;
	char *in, *want;

	(void)state;
	want = malloc(1100);
	assert_non_null(want);
	memset(want, 'x', 1100);

	/* 998 + CRLF = 1000: fine; output is the line */
	memset(&v, 0, sizeof(v));
	in = line_vector(&v, "", 998, ".\r\n");
	memcpy(want + 998, "\r\n", 2);
	v.name = "line of exactly 1000 octets";
	v.status = DATAREAD_DONE;
	v.out = want;
	v.outlen = v.size = 1000;
	v.consumed = 1003;
	check_vector(&v);
	free(in);

	/* 999 + CRLF = 1001: too long, reading goes on to the end */
	in = line_vector(&v, "", 999, "next\r\n.\r\nQUIT\r\n");
	memset(want, 'x', 1100);
	memcpy(want + 999, "\r\nnext\r\n", 8);
	v.name = "line of 1001 octets";
	v.out = want;
	v.outlen = v.size = 1007;
	v.consumed = 1010;
	v.line_too_long = true;
	check_vector(&v);
	free(in);

	/* stuffed: 1001 octets on the wire, 1000 after unstuffing: fine */
	in = line_vector(&v, ".", 998, ".\r\n");
	v.name = "stuffed line, 1000 octets after unstuffing";
	memset(want, 'x', 1100);
	memcpy(want + 998, "\r\n", 2);
	v.outlen = v.size = 1000;
	v.consumed = 1004;
	v.line_too_long = false;
	check_vector(&v);
	free(in);

	/* the limit is per line: a 1000-octet line after a short one */
	in = line_vector(&v, "ab\r\n", 998, ".\r\n");
	memcpy(want, "ab\r\n", 4);
	memset(want + 4, 'x', 998);
	memcpy(want + 1002, "\r\n", 2);
	v.name = "1000-octet second line";
	v.outlen = v.size = 1004;
	v.consumed = 1007;
	check_vector(&v);
	free(in);

	/* mid-line: 1000 octets so far are not yet too many, 1001 are */
	in = line_vector(&v, "", 1000, "");
	v.name = "1000 octets, no CRLF yet";
	v.inlen -= 2;
	v.status = DATAREAD_MORE;
	v.outlen = v.size = v.consumed = 1000;
	v.line_too_long = false;
	memset(want, 'x', 1100);
	check_vector(&v);
	free(in);
	in = line_vector(&v, "", 1001, "");
	v.name = "1001 octets, no CRLF yet";
	v.inlen -= 2;
	v.outlen = v.size = v.consumed = 1001;
	v.line_too_long = true;
	check_vector(&v);
	free(in);

	/* a very long line does not overflow the counter logic */
	in = line_vector(&v, "", 100000, ".\r\n");
	v.name = "100000-octet line, size limit 10";
	v.status = DATAREAD_DONE;
	v.max_size = 10;
	v.out = "xxxxxxxxxx";
	v.outlen = 10;
	v.size = 100002;
	v.consumed = 100005;
	v.too_big = true;
	v.line_too_long = true;
	feed(&v, NULL, 0, "whole");
	free(in);

	free(want);
}

/* test_after_end - a finished or broken reader consumes nothing more */
static void
test_after_end(void **state)
{
	struct dataread dr;
	char out[16];
	size_t outlen = 0, consumed;

	(void)state;
	dataread_init(&dr, NOLIMIT);
	assert_int_equal(dataread_feed(&dr, S("x\r\n.\r\nRSET\r\n"), out,
	    &outlen, &consumed), DATAREAD_DONE);
	assert_int_equal(consumed, 6);
	assert_int_equal(outlen, 3);
	assert_int_equal(dataread_feed(&dr, S("RSET\r\n"), out, &outlen,
	    &consumed), DATAREAD_DONE);
	assert_int_equal(consumed, 0);
	assert_int_equal(outlen, 3);

	dataread_init(&dr, NOLIMIT);
	outlen = 0;
	assert_int_equal(dataread_feed(&dr, S("x\ny"), out, &outlen,
	    &consumed), DATAREAD_BARE);
	assert_int_equal(consumed, 1);
	assert_int_equal(dataread_feed(&dr, S(".\r\n"), out, &outlen,
	    &consumed), DATAREAD_BARE);
	assert_int_equal(consumed, 0);
	assert_int_equal(outlen, 1);
}

/*
 * test_split_cr_lf - CR ending one chunk, LF starting the next; also
 * checks that feed appends at out + *outlen
 */
static void
test_split_cr_lf(void **state)
{
	struct dataread dr;
	char out[16];
	size_t outlen = 0, consumed;

	(void)state;
	dataread_init(&dr, NOLIMIT);
	assert_int_equal(dataread_feed(&dr, S("ab\r"), out, &outlen,
	    &consumed), DATAREAD_MORE);
	assert_int_equal(consumed, 3);
	assert_int_equal(dataread_feed(&dr, S("\n.\r"), out, &outlen,
	    &consumed), DATAREAD_MORE);
	assert_int_equal(consumed, 3);
	assert_int_equal(dataread_feed(&dr, S("\nQUIT"), out,
	    &outlen, &consumed), DATAREAD_DONE);
	assert_int_equal(consumed, 1);
	assert_int_equal(outlen, 4);
	assert_memory_equal(out, "ab\r\n", 4);
}

/* main - run the dataread tests */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_after_end),
		cmocka_unit_test(test_split_cr_lf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
