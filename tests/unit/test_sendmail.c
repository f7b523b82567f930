/*
 * test_sendmail - the pure parts of `postern sendmail`: option parsing,
 * recipient lists, the header pass (To/Cc/Bcc, Bcc dropped with its
 * continuation lines, From: found), the From: field the client adds,
 * LF->CRLF with dot-stuffing and the "." line, reading the header
 * section from a file descriptor, reply lines and the reply -> exit
 * status mapping. The SMTP dialogue itself is in
 * tests/e2e/test_sendmail_client.py.
 */
#include <sys/mman.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "config/config.h"
#include "submit/sendmail.h"

#define S(lit)	lit, sizeof(lit) - 1
#define MAXARGS	32
/* the rest of a case that fails with EX_USAGE and message m */
#define USAGE(m)	EX_USAGE, m, NULL, NULL, NULL, false, false, 0, 0, NULL

/* ------------------------------------------------------------------ */

struct args_case {
	const char	*name;
	const char	*argv[MAXARGS];	/* after argv[0], NULL-terminated */
	int		 status;
	const char	*err;		/* in the message, when status */
	const char	*sender;
	const char	*fullname;
	const char	*config;	/* NULL: the default */
	bool		 extract, ignore_dots;
	enum sendmail_body body;
	size_t		 nrcpts;
	const char	*rcpt0;
};

static const struct args_case args_cases[] = {
	{ "PHP mail(): -t -i", { "-t", "-i", NULL },
	  0, NULL, NULL, NULL, NULL, true, true, 0, 0, NULL },
	{ "grouped flags", { "-ti", NULL },
	  0, NULL, NULL, NULL, NULL, true, true, 0, 0, NULL },
	{ "Debian cron", { "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
	  "root@example.org", NULL },
	  0, NULL, NULL, "CronDaemon", NULL, false, true,
	  SENDMAIL_BODY_8BITMIME, 1, "root@example.org" },
	{ "cronie", { "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t",
	  "-f", "root", NULL },
	  0, NULL, "root", "CronDaemon", NULL, true, true, 0, 0, NULL },
	{ "git send-email", { "-i", "-f", "a@example.org", "b@x.example",
	  "c@y.example", NULL },
	  0, NULL, "a@example.org", NULL, NULL, false, true, 0, 2,
	  "b@x.example" },
	{ "attached -f, -r, -F and -C",
	  { "-fme@example.org", "-rother@example.org", "-F", "Me Too",
	  "-C/etc/x.conf", "b@example.org", NULL },
	  0, NULL, "other@example.org", "Me Too", "/etc/x.conf", false, false,
	  0, 1, "b@example.org" },
	{ "-- ends options", { "-t", "--", "-x@example.org", NULL },
	  0, NULL, NULL, NULL, NULL, true, false, 0, 1, "-x@example.org" },
	{ "operands end options", { "b@example.org", "-t", NULL },
	  0, NULL, NULL, NULL, NULL, false, false, 0, 2, "b@example.org" },
	{ "ignored options", { "-bm", "-odb", "-odq", "-oep", "-oeq", "-oew",
	  "-om", "-oo", "-oL9", "-obx", "-B", "7bit", "-N", "success,delay",
	  "-R", "hdrs", "-V", "envid", "-v", "-X", "/tmp/log", "-h", "5",
	  NULL }, 0, NULL, NULL, NULL, NULL, false, false,
	  SENDMAIL_BODY_7BIT, 0, NULL },
	{ "more ignored: -m -n -G -U -L -Am", { "-mnGU", "-L", "lbl", "-Am",
	  "-N", "never", "-R", "FULL", NULL },
	  0, NULL, NULL, NULL, NULL, false, false, 0, 0, NULL },
	{ "-o i as two words", { "-o", "i", NULL },
	  0, NULL, NULL, NULL, NULL, false, true, 0, 0, NULL },
	{ "null sender", { "-f", "", "b@example.org", NULL },
	  0, NULL, "", NULL, NULL, false, false, 0, 1, "b@example.org" },
	{ "a lone - is an operand", { "-", NULL },
	  0, NULL, NULL, NULL, NULL, false, false, 0, 1, "-" },

	{ "unknown option", { "-z", NULL }, USAGE( "unknown option -z") },
	{ "unknown option in a group", { "-tiz", NULL }, USAGE(
	  "unknown option -z") },
	{ "-f without argument", { "-f", NULL }, USAGE(
	  "option -f needs an argument") },
	{ "-bs", { "-bs", NULL }, USAGE( "-bs (SMTP on standard input)") },
	{ "-bd", { "-bd", NULL }, USAGE( "-bd (daemon mode)") },
	{ "-bv", { "-bv", NULL }, USAGE( "-bv: mode not supported") },
	{ "-q", { "-q", NULL }, USAGE( "-q (queue run)") },
	{ "-q30m", { "-q30m", NULL }, USAGE( "-q (queue run)") },
	{ "-B other", { "-B", "BINARYMIME", NULL }, USAGE(
	  "-B needs 7BIT or 8BITMIME") },
	{ "-N bad", { "-N", "sometimes", NULL }, USAGE( "-N needs never") },
	{ "-R bad", { "-R", "body", NULL }, USAGE( "-R needs hdrs or full") },
	{ "unknown -o", { "-oQ/var/spool", NULL }, USAGE(
	  "option -oQ/var/spool is not supported") },
	{ "empty -C", { "-C", "", NULL }, USAGE( "-C: empty file name") },
	{ "-F too long", { "-F", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL }, USAGE(
	  "-F: full name longer than 256 bytes") },
};

static void
test_parse_args(void **state)
{
	const struct args_case *c;
	struct sendmail_opts o;
	char *argv[MAXARGS + 1], err[256];
	size_t i;
	int argc, st;

	(void)state;
	for (i = 0; i < sizeof(args_cases) / sizeof(args_cases[0]); i++) {
		c = &args_cases[i];
		argv[0] = (char *)"sendmail";
		for (argc = 1; c->argv[argc - 1] != NULL; argc++)
			argv[argc] = (char *)c->argv[argc - 1];
		argv[argc] = NULL;
		err[0] = '\0';
		st = sendmail_parse_args(argc, argv, &o, err, sizeof(err));
		if (st != c->status)
			fail_msg("%s: status %d, want %d (%s)", c->name, st,
			    c->status, err);
		if (st != 0) {
			if (strstr(err, c->err) == NULL)
				fail_msg("%s: \"%s\" lacks \"%s\"", c->name,
				    err, c->err);
			continue;
		}
		if ((c->sender == NULL) != (o.sender == NULL) ||
		    (c->sender && strcmp(c->sender, o.sender) != 0))
			fail_msg("%s: sender %s", c->name, o.sender);
		if ((c->fullname == NULL) != (o.fullname == NULL) ||
		    (c->fullname && strcmp(c->fullname, o.fullname) != 0))
			fail_msg("%s: fullname %s", c->name, o.fullname);
		assert_string_equal(o.config, c->config ? c->config :
		    CONFIG_DEFAULT_PATH);
		if (o.extract != c->extract || o.ignore_dots != c->ignore_dots ||
		    o.body != c->body)
			fail_msg("%s: t=%d i=%d B=%d", c->name, o.extract,
			    o.ignore_dots, (int)o.body);
		if (o.nrcpts != c->nrcpts)
			fail_msg("%s: %zu operands", c->name, o.nrcpts);
		if (c->rcpt0)
			assert_string_equal(o.rcpts[0], c->rcpt0);
	}
}

/* ------------------------------------------------------------------ */

static void
test_rcpts(void **state)
{
	struct sendmail_rcpts r = { NULL, 0, false };
	const char *err;

	(void)state;
	assert_int_equal(sendmail_rcpts_add(&r, S("a@example.org"), &err), 0);
	assert_int_equal(sendmail_rcpts_add(&r,
	    S("b@x.example, Someone <c@Y.Example>"), &err), 0);
	/* a duplicate (the domain is compared in lower case) */
	assert_int_equal(sendmail_rcpts_add(&r, S("\"A\" <a@EXAMPLE.org>"),
	    &err), 0);
	/* a group with no members adds nothing */
	assert_int_equal(sendmail_rcpts_add(&r,
	    S("undisclosed-recipients:;"), &err), 0);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.v[0], "a@example.org");
	assert_string_equal(r.v[1], "b@x.example");
	assert_string_equal(r.v[2], "c@y.example");
	assert_false(r.utf8);
	assert_int_equal(sendmail_rcpts_add(&r, S("j\xc3\xb6rg@example.org"),
	    &err), 0);
	assert_true(r.utf8);
	assert_int_equal(r.n, 4);

	/* not addresses: the list is left as it was */
	assert_int_equal(sendmail_rcpts_add(&r, S("root"), &err), -1);
	assert_int_equal(sendmail_rcpts_add(&r, S("a@x, <oops"), &err), -1);
	assert_int_equal(sendmail_rcpts_add(&r, S(""), &err), -1);
	assert_int_equal(r.n, 4);
	sendmail_rcpts_free(&r);
	assert_int_equal(r.n, 0);
	assert_null(r.v);
}

static void
test_parse_sender(void **state)
{
	struct address a;
	const char *err;

	(void)state;
	assert_int_equal(sendmail_parse_sender("me@Example.ORG", &a, &err), 0);
	assert_string_equal(a.local, "me");
	assert_string_equal(a.domain, "example.org");
	assert_int_equal(sendmail_parse_sender(" <me@example.org> ", &a, &err),
	    0);
	assert_string_equal(a.local, "me");
	assert_int_equal(sendmail_parse_sender("<>", &a, &err), 0);
	assert_string_equal(a.local, "");
	assert_string_equal(a.domain, "");
	assert_int_equal(sendmail_parse_sender("", &a, &err), 0);
	assert_string_equal(a.local, "");
	assert_int_equal(sendmail_parse_sender("root", &a, &err), -1);
	assert_int_equal(sendmail_parse_sender("Me <me@example.org>", &a,
	    &err), -1);
}

/* ------------------------------------------------------------------ */

struct header_case {
	const char	*name;
	const char	*hdr;
	bool		 extract;
	int		 status;
	const char	*out;		/* what is kept */
	const char	*rcpts;		/* space-separated, in order */
	unsigned	 nfrom;
	const char	*from;		/* "" if not exactly one */
	bool		 utf8;
};

static const struct header_case header_cases[] = {
	{ "-t takes To, Cc and Bcc; Bcc is dropped",
	  "From: Alice <alice@example.org>\r\n"
	  "To: bob@example.com, Carol <carol@example.net>\r\n"
	  "Cc: dave@example.com\r\n"
	  "Bcc: eve@example.com\r\n"
	  "Subject: hi\r\n",
	  true, 0,
	  "From: Alice <alice@example.org>\r\n"
	  "To: bob@example.com, Carol <carol@example.net>\r\n"
	  "Cc: dave@example.com\r\n"
	  "Subject: hi\r\n",
	  "bob@example.com carol@example.net dave@example.com eve@example.com",
	  1, "alice@example.org", false },
	{ "Bcc continuation lines go with it",
	  "To: a@example.com\r\n"
	  "BCC: x@example.com,\r\n"
	  "\ty@example.com,\r\n"
	  "  Zed <z@example.com>\r\n"
	  "Subject: after\r\n"
	  " continued subject\r\n",
	  true, 0,
	  "To: a@example.com\r\n"
	  "Subject: after\r\n"
	  " continued subject\r\n",
	  "a@example.com x@example.com y@example.com z@example.com",
	  0, "", false },
	{ "Bcc dropped without -t too, and not used",
	  "From: a@example.org\r\nbcc : hidden@example.com\r\nTo: t@x.example\r\n",
	  false, 0,
	  "From: a@example.org\r\nTo: t@x.example\r\n",
	  "", 1, "a@example.org", false },
	{ "Resent-Bcc dropped, Resent-To not used",
	  "Resent-To: r@example.com\r\nResent-Bcc: rb@example.com\r\n"
	  "To: t@example.com\r\n",
	  true, 0,
	  "Resent-To: r@example.com\r\nTo: t@example.com\r\n",
	  "t@example.com", 0, "", false },
	{ "duplicates once; groups; an empty Bcc",
	  "To: a@example.com, team: b@example.com, a@example.com;\r\n"
	  "Cc: undisclosed-recipients:;\r\n"
	  "Bcc:\r\n",
	  true, 0,
	  "To: a@example.com, team: b@example.com, a@example.com;\r\n"
	  "Cc: undisclosed-recipients:;\r\n",
	  "a@example.com b@example.com", 0, "", false },
	{ "folded To",
	  "To: Long Name\r\n <a@example.com>,\r\n\tb@example.com\r\n",
	  true, 0,
	  "To: Long Name\r\n <a@example.com>,\r\n\tb@example.com\r\n",
	  "a@example.com b@example.com", 0, "", false },
	{ "bad To under -t",
	  "To: bob\r\n", true, EX_DATAERR, NULL, NULL, 0, NULL, false },
	{ "bad To without -t is the daemon's business",
	  "To: bob\r\n", false, 0, "To: bob\r\n", "", 0, "", false },
	{ "two From mailboxes",
	  "From: a@example.org, b@example.org\r\n", false, 0,
	  "From: a@example.org, b@example.org\r\n", "", 1, "", false },
	{ "two From fields: the first counts",
	  "From: a@example.org\r\nFrom: b@example.org\r\n", false, 0,
	  "From: a@example.org\r\nFrom: b@example.org\r\n", "", 2,
	  "a@example.org", false },
	{ "unparsable From",
	  "From: <<<\r\n", false, 0, "From: <<<\r\n", "", 1, "", false },
	{ "UTF-8 in a kept field",
	  "Subject: caf\xc3\xa9\r\nBcc: b@example.com\r\n", false, 0,
	  "Subject: caf\xc3\xa9\r\n", "", 0, "", true },
	{ "UTF-8 only in the dropped Bcc",
	  "Subject: x\r\nBcc: Zo\xc3\xab <z@example.com>\r\n", true, 0,
	  "Subject: x\r\n", "z@example.com", 0, "", false },
	{ "empty section", "", true, 0, "", "", 0, "", false },
};

static void
test_header_pass(void **state)
{
	const struct header_case *c;
	struct sendmail_rcpts r = { NULL, 0, false };
	struct sendmail_header info;
	struct buf out, want;
	char err[256], f[ADDRESS_MAX + 1];
	size_t i, j;
	int st;

	(void)state;
	for (i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		c = &header_cases[i];
		buf_init(&out, 1 << 16);
		err[0] = '\0';
		st = sendmail_header_pass(c->hdr, strlen(c->hdr), c->extract,
		    &out, &r, &info, err, sizeof(err));
		if (st != c->status)
			fail_msg("%s: status %d (%s)", c->name, st, err);
		if (st != 0) {
			assert_true(strstr(err, "To: field is not an address "
			    "list") != NULL);
			buf_free(&out);
			sendmail_rcpts_free(&r);
			continue;
		}
		if (strcmp(out.data ? out.data : "", c->out) != 0)
			fail_msg("%s: kept\n%s", c->name, out.data);
		buf_init(&want, 4096);
		for (j = 0; j < r.n; j++)
			buf_printf(&want, "%s%s", j ? " " : "", r.v[j]);
		if (strcmp(want.data ? want.data : "", c->rcpts) != 0)
			fail_msg("%s: rcpts %s", c->name, want.data);
		buf_free(&want);
		assert_int_equal(info.nfrom, c->nfrom);
		address_format(&info.from, f, sizeof(f));
		if (strcmp(f, c->from) != 0 || info.from_ok != (c->from[0] != 0))
			fail_msg("%s: from \"%s\" ok=%d", c->name, f,
			    info.from_ok);
		if (info.utf8 != c->utf8)
			fail_msg("%s: utf8 %d", c->name, info.utf8);
		buf_free(&out);
		sendmail_rcpts_free(&r);
	}
}

/* ------------------------------------------------------------------ */

static void
check_from(const char *name, const char *want)
{
	struct buf b;

	buf_init(&b, 4096);
	assert_int_equal(sendmail_from_field(&b, name, "me@example.org"), 0);
	assert_string_equal(b.data, want);
	buf_free(&b);
}

static void
test_from_field(void **state)
{
	struct buf b;

	(void)state;
	check_from(NULL, "From: me@example.org\r\n");
	check_from("", "From: me@example.org\r\n");
	check_from("   ", "From: me@example.org\r\n");
	check_from("CronDaemon", "From: CronDaemon <me@example.org>\r\n");
	check_from("Trac  Bot", "From: Trac  Bot <me@example.org>\r\n");
	check_from("J. Smith", "From: \"J. Smith\" <me@example.org>\r\n");
	check_from("Smith, John", "From: \"Smith, John\" <me@example.org>\r\n");
	check_from("say \"hi\\\"",
	    "From: \"say \\\"hi\\\\\\\"\" <me@example.org>\r\n");
	/* no field injection */
	check_from("x\r\nBcc: victim@example.com",
	    "From: \"x  Bcc: victim@example.com\" <me@example.org>\r\n");
	/* RFC 2047 for UTF-8 */
	check_from("J\xc3\xb6rg", "From: =?UTF-8?B?SsO2cmc=?= <me@example.org>\r\n");
	/* a long UTF-8 name: encoded-words of at most 45 bytes, cut between
	   characters, folded */
	buf_init(&b, 4096);
	assert_int_equal(sendmail_from_field(&b,
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
	    "me@example.org"), 0);
	/* 48 bytes: 22 characters (44 bytes), then 2 */
	assert_string_equal(b.data, "From: =?UTF-8?B?"
	    "w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6k="
	    "?=\r\n =?UTF-8?B?w6nDqQ==?= <me@example.org>\r\n");
	buf_free(&b);
	/* a full buffer is -1 */
	buf_init(&b, 10);
	assert_int_equal(sendmail_from_field(&b, "Name", "me@example.org"), -1);
	buf_free(&b);
}

/* ------------------------------------------------------------------ */

struct dot_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	bool		 ignore_dots;
	const char	*out;		/* after finish */
	size_t		 outlen;
	bool		 done;		/* a "." line ended it */
	size_t		 consumed;	/* (size_t)-1: all */
};

#define ALL	((size_t)-1)

static const struct dot_case dot_cases[] = {
	{ "LF to CRLF", S("a\nb\n"), false, S("a\r\nb\r\n"), false, ALL },
	{ "CRLF stays", S("a\r\nb\r\n"), false, S("a\r\nb\r\n"), false, ALL },
	{ "mixed", S("a\r\nb\nc"), false, S("a\r\nb\r\nc\r\n"), false, ALL },
	{ "last line without LF", S("x"), false, S("x\r\n"), false, ALL },
	{ "empty", S(""), false, S(""), false, ALL },
	{ "empty lines", S("\n\n"), false, S("\r\n\r\n"), false, ALL },
	{ "dot-stuffing", S(".a\n..b\nc.\n"), false,
	  S("..a\r\n...b\r\nc.\r\n"), false, ALL },
	{ "a lone dot ends the input", S("a\n.\nb\n"), false, S("a\r\n"), true,
	  4 },
	{ "a lone dot with CRLF", S("a\r\n.\r\nb\r\n"), false, S("a\r\n"), true,
	  6 },
	{ "a lone dot first", S(".\nb\n"), false, S(""), true, 2 },
	{ "a lone dot at the very end", S("a\n."), false, S("a\r\n"), true, ALL },
	{ "with -i a lone dot is stuffed", S("a\n.\nb\n"), true,
	  S("a\r\n..\r\nb\r\n"), false, ALL },
	{ "with -i, at the end", S("a\n."), true, S("a\r\n..\r\n"), false, ALL },
	{ "dot then text", S(".x\n"), false, S("..x\r\n"), false, ALL },
	{ "dot then bare CR", S(".\rx\n"), false, S("..\rx\r\n"), false, ALL },
	{ "bare CR passed on", S("a\rb\n"), false, S("a\rb\r\n"), false, ALL },
	{ "CR at the end is a line end", S("a\r"), false, S("a\r\n"), false,
	  ALL },
	{ "CRCRLF", S("a\r\r\n"), false, S("a\r\r\n"), false, ALL },
	{ "NUL passes", S("a\0b\n"), false, S("a\0b\r\n"), false, ALL },
	{ "dot inside a line", S("a.\n.\n"), true, S("a.\r\n..\r\n"), false,
	  ALL },
};

/* run - the transform over in, all at once (step 0) or step bytes at a
   time; the output into out, returns the bytes consumed */
static size_t
run(const struct dot_case *c, size_t step, struct buf *out)
{
	struct sendmail_dot s;
	size_t off = 0, n, got;

	sendmail_dot_init(&s, c->ignore_dots);
	if (step == 0)
		step = c->inlen ? c->inlen : 1;
	while (off < c->inlen && !s.done) {
		n = c->inlen - off < step ? c->inlen - off : step;
		got = sendmail_dot_feed(&s, c->in + off, n, out);
		off += got;
		if (got < n)
			assert_true(s.done);
	}
	sendmail_dot_finish(&s, out);
	assert_true(s.done == c->done);
	return off;
}

static void
test_dot(void **state)
{
	const struct dot_case *c;
	struct buf out;
	size_t i, step, got, wantlen;

	(void)state;
	for (i = 0; i < sizeof(dot_cases) / sizeof(dot_cases[0]); i++) {
		c = &dot_cases[i];
		/* whole, then one byte at a time, then two: the same */
		for (step = 0; step <= 2; step++) {
			buf_init(&out, 1 << 16);
			got = run(c, step, &out);
			wantlen = c->outlen;
			if (out.len != wantlen ||
			    (wantlen && memcmp(out.data, c->out, wantlen) != 0))
				fail_msg("%s (step %zu): got \"%.*s\"", c->name,
				    step, (int)out.len, out.data);
			if (c->consumed != ALL && got != c->consumed)
				fail_msg("%s: consumed %zu", c->name, got);
			if (c->consumed == ALL && got != c->inlen)
				fail_msg("%s: consumed %zu of %zu", c->name,
				    got, c->inlen);
			buf_free(&out);
		}
	}
}

/* a long stream in odd-sized pieces: the output is what it should be
   and never more than 2n + 4 per feed */
static void
test_dot_stream(void **state)
{
	struct sendmail_dot s;
	struct buf in, out, want;
	size_t off, n, before;
	int i;

	(void)state;
	buf_init(&in, 1 << 22);
	buf_init(&want, 1 << 22);
	for (i = 0; i < 20000; i++) {
		buf_printf(&in, "%s%d\n", i % 7 == 0 ? "." : "", i);
		buf_printf(&want, "%s%d\r\n", i % 7 == 0 ? ".." : "", i);
		if (i % 1000 == 0) {
			buf_puts(&in, ".\n");
			buf_puts(&want, "..\r\n");
		}
	}
	buf_init(&out, 1 << 23);
	sendmail_dot_init(&s, true);
	for (off = 0; off < in.len; off += n) {
		n = in.len - off < 4093 ? in.len - off : 4093;
		before = out.len;
		assert_int_equal(sendmail_dot_feed(&s, in.data + off, n, &out),
		    n);
		assert_true(out.len - before <= 2 * n + 4);
	}
	sendmail_dot_finish(&s, &out);
	assert_int_equal(out.len, want.len);
	assert_memory_equal(out.data, want.data, want.len);
	buf_free(&in);
	buf_free(&out);
	buf_free(&want);
}

/* ------------------------------------------------------------------ */

/* input_fd - a file descriptor reading text[0..len) */
static int
input_fd(const char *text, size_t len)
{
	int fd = memfd_create("sendmail-test", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

struct read_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	size_t		 max;
	int		 status;
	const char	*hdr;
	bool		 blank, headerless;
	const char	*rest;
};

static const struct read_case read_cases[] = {
	{ "LF", S("From: a@x\nTo: b@y\n\nbody\n.\nmore\n"), 4096, 0,
	  "From: a@x\r\nTo: b@y\r\n", true, false, "body\n.\nmore\n" },
	{ "CRLF", S("Subject: s\r\n\r\nbody\r\n"), 4096, 0,
	  "Subject: s\r\n", true, false, "body\r\n" },
	{ "continuation lines", S("Subject: a\n\tb\n c\n\nx"), 4096, 0,
	  "Subject: a\r\n\tb\r\n c\r\n", true, false, "x" },
	{ "no body, no empty line", S("Subject: s\nTo: t@x"), 4096, 0,
	  "Subject: s\r\nTo: t@x\r\n", false, false, "" },
	{ "headers then a non-header line", S("Subject: s\nhello\nworld\n"),
	  4096, 0, "Subject: s\r\n", false, false, "hello\nworld\n" },
	{ "a first line that looks like a field is one",
	  S("hello: no, this is a body\n"), 4096, 0,
	  "hello: no, this is a body\r\n", false, false, "" },
	{ "headerless: not a field", S("Hello world\nSubject: s\n\n"), 4096,
	  0, "", false, true, "Hello world\nSubject: s\n\n" },
	{ "headerless: starts with a continuation", S(" x\n"), 4096, 0, "",
	  false, true, " x\n" },
	{ "empty header section", S("\nbody\n"), 4096, 0, "", true, false,
	  "body\n" },
	{ "empty input", S(""), 4096, 0, "", false, false, "" },
	{ "mbox From line dropped", S("From a@x Mon Nov 23 2026\nSubject: s\n\nb\n"),
	  4096, 0, "Subject: s\r\n", true, false, "b\n" },
	{ "a lone dot ends the header section", S("Subject: s\n.\nbody\n"),
	  4096, 0, "Subject: s\r\n", false, false, ".\nbody\n" },
	{ "too big", S("Subject: 0123456789012345678901234567890123456789\n"),
	  32, EX_DATAERR, NULL, false, false, NULL },
	{ "too big without a line end",
	  S("Subject: 0123456789012345678901234567890123456789"),
	  32, EX_DATAERR, NULL, false, false, NULL },
	{ "a long first line that is no field is a body",
	  S("0123456789012345678901234567890123456789 no colon\n"), 32, 0, "",
	  false, true, "0123456789012345678901234567890123456789 no colon\n" },
	{ "just fits", S("Subject: 0123456789012345678\n\n"), 32, 0,
	  "Subject: 0123456789012345678\r\n", true, false, "" },
};

static void
test_read_header(void **state)
{
	const struct read_case *c;
	struct buf hdr, rest;
	bool blank, headerless;
	char err[256];
	size_t i;
	int fd, st;

	(void)state;
	for (i = 0; i < sizeof(read_cases) / sizeof(read_cases[0]); i++) {
		c = &read_cases[i];
		fd = input_fd(c->in, c->inlen);
		buf_init(&hdr, c->max);
		buf_init(&rest, c->max + 65536);
		err[0] = '\0';
		st = sendmail_read_header(fd, c->max, &hdr, &blank, &headerless,
		    &rest, err, sizeof(err));
		close(fd);
		if (st != c->status)
			fail_msg("%s: status %d (%s)", c->name, st, err);
		if (st != 0) {
			assert_non_null(strstr(err, "header section is larger "
			    "than 32 bytes"));
		} else {
			if (strcmp(hdr.data ? hdr.data : "", c->hdr) != 0)
				fail_msg("%s: hdr \"%s\"", c->name, hdr.data);
			if (blank != c->blank || headerless != c->headerless)
				fail_msg("%s: blank %d headerless %d", c->name,
				    blank, headerless);
			if (strcmp(rest.data ? rest.data : "", c->rest) != 0)
				fail_msg("%s: rest \"%s\"", c->name, rest.data);
		}
		buf_free(&hdr);
		buf_free(&rest);
	}
}

/* the header section is read exactly: a big body stays in rest or in the
   file, never all in memory */
static void
test_read_header_big_body(void **state)
{
	struct buf hdr, rest, in;
	bool blank, headerless;
	char err[256];
	int fd, i;

	(void)state;
	buf_init(&in, 1 << 22);
	buf_puts(&in, "Subject: big\n\n");
	for (i = 0; i < 100000; i++)
		buf_puts(&in, "0123456789012345678901234567890\n");
	fd = input_fd(in.data, in.len);
	buf_init(&hdr, 4096);
	buf_init(&rest, 4096 + 65536);
	assert_int_equal(sendmail_read_header(fd, 4096, &hdr, &blank,
	    &headerless, &rest, err, sizeof(err)), 0);
	assert_string_equal(hdr.data, "Subject: big\r\n");
	assert_true(blank);
	assert_true(rest.len <= 65536);
	/* the rest is still in the file */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)(14 + rest.len));
	close(fd);
	buf_free(&hdr);
	buf_free(&rest);
	buf_free(&in);
}

/* ------------------------------------------------------------------ */

static void
test_reply_line(void **state)
{
	const char *text;
	bool last;
	int code;

	(void)state;
	assert_int_equal(sendmail_reply_line(S("250 2.0.0 Ok: queued as X"),
	    &code, &last, &text), 0);
	assert_int_equal(code, 250);
	assert_true(last);
	assert_string_equal(text, "2.0.0 Ok: queued as X");
	assert_int_equal(sendmail_reply_line(S("250-PIPELINING"), &code, &last,
	    &text), 0);
	assert_false(last);
	assert_string_equal(text, "PIPELINING");
	assert_int_equal(sendmail_reply_line(S("354"), &code, &last, &text), 0);
	assert_int_equal(code, 354);
	assert_true(last);
	assert_string_equal(text, "");
	assert_int_equal(sendmail_reply_line(S("25"), &code, &last, &text), -1);
	assert_int_equal(sendmail_reply_line(S("HTTP/1.1 400"), &code, &last,
	    &text), -1);
	assert_int_equal(sendmail_reply_line(S("250x"), &code, &last, &text),
	    -1);
	assert_int_equal(sendmail_reply_line(S("650 no"), &code, &last, &text),
	    -1);
	assert_int_equal(sendmail_reply_line(S("2a0 no"), &code, &last, &text),
	    -1);
}

static void
test_exit_status(void **state)
{
	static const struct {
		int		 code;
		const char	*text;
		int		 want;
	} cases[] = {
		{ 554, "5.7.1 Local user nobody may not send mail", EX_NOPERM },
		{ 553, "5.7.1 Sender address <x@y> not allowed", EX_NOPERM },
		{ 550, "5.7.1 From: address <x@y> not owned by user www-data",
		  EX_NOPERM },
		{ 530, "5.7.0 Authentication required", EX_NOPERM },
		{ 550, "5.6.0 Message must have exactly one From: address",
		  EX_DATAERR },
		{ 552, "5.3.4 Message size exceeds fixed limit", EX_DATAERR },
		{ 521, "5.5.2 Error: bare <LF> or <CR> in message data",
		  EX_DATAERR },
		{ 550, "no enhanced code", EX_DATAERR },
		{ 550, "5.1.2 <a@b>: domain b does not exist", EX_NOHOST },
		{ 556, "5.1.10 <a@b>: null MX", EX_NOHOST },
		{ 501, "5.1.3 Bad recipient address syntax", EX_NOUSER },
		{ 550, "5.1.1 <a@b>: no such user", EX_NOUSER },
		{ 550, "5.1.20 future", EX_NOUSER },
		{ 550, "5.1 not an enhanced code", EX_DATAERR },
		{ 550, "5.7.1234 too long", EX_DATAERR },
		{ 550, "5.7.1x glued", EX_DATAERR },
		{ 451, "4.3.0 Error: queue file write error", EX_TEMPFAIL },
		{ 452, "4.3.1 Insufficient system storage", EX_TEMPFAIL },
		{ 450, "4.7.1 Error: rate limit", EX_TEMPFAIL },
		{ 421, "4.4.2 relay Error: timeout exceeded", EX_TEMPFAIL },
		{ 452, "", EX_TEMPFAIL },
		{ 250, "2.0.0 Ok", EX_PROTOCOL },
		{ 354, "End data", EX_PROTOCOL },
		{ 199, "x", EX_PROTOCOL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (sendmail_exit_status(cases[i].code, cases[i].text) !=
		    cases[i].want)
			fail_msg("%d %s: %d, want %d", cases[i].code,
			    cases[i].text, sendmail_exit_status(cases[i].code,
			    cases[i].text), cases[i].want);
}

/* test_modes - -bp lists the queue, -bi and -I are newaliases, -bm
   (and nothing) a message; other modes stay refused */
static void
test_modes(void **state)
{
	static const struct {
		const char	*args[3];
		char		 mode;
	} cases[] = {
		{ { "-bp", NULL }, 'p' },
		{ { "-b", "p", NULL }, 'p' },
		{ { "-bi", NULL }, 'i' },
		{ { "-I", NULL }, 'i' },
		{ { "-bm", NULL }, 'm' },
		{ { "-t", NULL }, 'm' },
	};
	struct sendmail_opts o;
	char *argv[5], err[256];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		argv[0] = "sendmail";
		for (n = 0; cases[i].args[n] != NULL; n++)
			argv[n + 1] = (char *)cases[i].args[n];
		argv[n + 1] = NULL;
		err[0] = '\0';
		assert_int_equal(sendmail_parse_args((int)n + 1, argv, &o, err,
		    sizeof(err)), 0);
		assert_int_equal(o.mode, cases[i].mode);
	}
	argv[0] = "sendmail";
	argv[1] = "-bz";
	argv[2] = NULL;
	assert_int_equal(sendmail_parse_args(2, argv, &o, err, sizeof(err)),
	    EX_USAGE);
	assert_non_null(strstr(err, "-bp: the queue"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_args),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_rcpts),
		cmocka_unit_test(test_parse_sender),
		cmocka_unit_test(test_header_pass),
		cmocka_unit_test(test_from_field),
		cmocka_unit_test(test_dot),
		cmocka_unit_test(test_dot_stream),
		cmocka_unit_test(test_read_header),
		cmocka_unit_test(test_read_header_big_body),
		cmocka_unit_test(test_reply_line),
		cmocka_unit_test(test_exit_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
