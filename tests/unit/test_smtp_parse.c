/*
 * test_smtp_parse - table-driven tests for submit/smtp_parse.c: verbs,
 * MAIL and RCPT arguments and parameters, HELO/EHLO and AUTH arguments.
 * Every refusal is checked for its reply code, enhanced status and text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "submit/smtp_parse.h"

/* check_err - compare a refusal with the expected code, status and text */
static void
check_err(const char *what, size_t i, const char *in,
    const struct smtp_error *e, int code, const char *status, const char *text)
{
	if (e->code != code || e->status == NULL || e->text == NULL ||
	    strcmp(e->status, status) != 0 || strcmp(e->text, text) != 0)
		fail_msg("%s case %zu \"%s\": got %d %s %s, want %d %s %s",
		    what, i, in, e->code, e->status ? e->status : "(null)",
		    e->text ? e->text : "(null)", code, status, text);
	if (strpbrk(text, "\r\n") != NULL)
		fail_msg("%s case %zu: CR or LF in reply text", what, i);
}

static const struct {
	const char	*line;
	enum smtp_verb	 verb;
	const char	*name;
	const char	*args;
} command_cases[] = {
	{ "EHLO client.example", SMTP_EHLO, "EHLO", "client.example" },
	{ "ehlo client.example", SMTP_EHLO, "EHLO", "client.example" },
	{ "HeLo x", SMTP_HELO, "HELO", "x" },
	{ "EHLO", SMTP_EHLO, "EHLO", "" },
	{ "STARTTLS", SMTP_STARTTLS, "STARTTLS", "" },
	{ "starttls", SMTP_STARTTLS, "STARTTLS", "" },
	{ "AUTH PLAIN dGVzdA==", SMTP_AUTH, "AUTH", "PLAIN dGVzdA==" },
	{ "MAIL FROM:<a@b.org> SIZE=10", SMTP_MAIL, "MAIL",
	    "FROM:<a@b.org> SIZE=10" },
	{ "mail from:<a@b.org>", SMTP_MAIL, "MAIL", "from:<a@b.org>" },
	{ "RCPT TO:<a@b.org>", SMTP_RCPT, "RCPT", "TO:<a@b.org>" },
	{ "DATA", SMTP_DATA, "DATA", "" },
	{ "BDAT 100 LAST", SMTP_BDAT, "BDAT", "100 LAST" },
	{ "RSET", SMTP_RSET, "RSET", "" },
	{ "NOOP  hello there", SMTP_NOOP, "NOOP", "hello there" },
	{ "QUIT   ", SMTP_QUIT, "QUIT", "" },
	{ "VRFY alice", SMTP_VRFY, "VRFY", "alice" },
	{ "EXPN list", SMTP_EXPN, "EXPN", "list" },
	{ "HELP", SMTP_HELP, "HELP", "" },
	{ "GET / HTTP/1.1", SMTP_HTTP, "GET", "/ HTTP/1.1" },
	{ "post /form HTTP/1.0", SMTP_HTTP, "POST", "/form HTTP/1.0" },
	{ "HEAD /", SMTP_HTTP, "HEAD", "/" },
	{ "PUT /x", SMTP_HTTP, "PUT", "/x" },
	{ "CONNECT relay.example:25 HTTP/1.1", SMTP_HTTP, "CONNECT",
	    "relay.example:25 HTTP/1.1" },
	{ "OPTIONS *", SMTP_HTTP, "OPTIONS", "*" },
	{ "DELETE /", SMTP_HTTP, "DELETE", "/" },
	{ "FOO bar", SMTP_UNKNOWN, "", "bar" },
	{ "", SMTP_UNKNOWN, "", "" },
	{ "MAILFROM:<a@b.org>", SMTP_UNKNOWN, "", "" },
	{ "DATAX", SMTP_UNKNOWN, "", "" },
	{ "DAT", SMTP_UNKNOWN, "", "" },
	{ "MAIL\tFROM:<a@b.org>", SMTP_UNKNOWN, "", "" },
	{ " DATA", SMTP_UNKNOWN, "", "DATA" },
	{ "\xc3\xa9HLO x", SMTP_UNKNOWN, "", "x" },
};

/* test_commands - verbs and arguments */
static void
test_commands(void **state)
{
	struct smtp_command cmd;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(command_cases) / sizeof(command_cases[0]);
	    i++) {
		smtp_parse_command(command_cases[i].line, &cmd);
		if (cmd.verb != command_cases[i].verb ||
		    strcmp(cmd.name, command_cases[i].name) != 0 ||
		    strcmp(cmd.args, command_cases[i].args) != 0)
			fail_msg("command case %zu \"%s\": got %d \"%s\" "
			    "\"%s\"", i, command_cases[i].line, cmd.verb,
			    cmd.name, cmd.args);
	}
}

struct mail_case {
	const char	*args;
	int		 code;		/* 0: success */
	const char	*status;
	const char	*text;
	const char	*addr;		/* formatted sender on success */
	uint64_t	 size;
	bool		 size_given;
	enum smtp_body	 body;
	bool		 smtputf8;
};

#define MAIL_ERR(args, code, status, text) \
	{ args, code, status, text, NULL, 0, false, SMTP_BODY_7BIT, false }

static const struct mail_case mail_cases[] = {
	{ "FROM:<a@b.org>", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_7BIT, false },
	{ "from:<A@B.org>", 0, NULL, NULL, "A@b.org", 0, false,
	    SMTP_BODY_7BIT, false },
	{ "From: <a@b.org>", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_7BIT, false },
	{ "FROM:   <a@b.org>   ", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_7BIT, false },
	{ "FROM:<>", 0, NULL, NULL, "", 0, false, SMTP_BODY_7BIT, false },
	{ "FROM:<> SIZE=100", 0, NULL, NULL, "", 100, true, SMTP_BODY_7BIT,
	    false },
	{ "FROM:<@r.example:a@b.org>", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_7BIT, false },
	{ "FROM:<a@b.org> SIZE=1000", 0, NULL, NULL, "a@b.org", 1000, true,
	    SMTP_BODY_7BIT, false },
	{ "FROM:<a@b.org> size=0", 0, NULL, NULL, "a@b.org", 0, true,
	    SMTP_BODY_7BIT, false },
	{ "FROM:<a@b.org> SIZE=00000000000000000042", 0, NULL, NULL,
	    "a@b.org", 42, true, SMTP_BODY_7BIT, false },
	{ "FROM:<a@b.org> SIZE=18446744073709551615", 0, NULL, NULL,
	    "a@b.org", UINT64_MAX, true, SMTP_BODY_7BIT, false },
	{ "FROM:<a@b.org> BODY=8BITMIME", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_8BITMIME, false },
	{ "FROM:<a@b.org> body=8bitmime", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_8BITMIME, false },
	{ "FROM:<a@b.org> BODY=7BIT", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_7BIT, false },
	{ "FROM:<a@b.org> SMTPUTF8", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_7BIT, true },
	{ "FROM:<a@b.org> SIZE=1000 BODY=8BITMIME SMTPUTF8", 0, NULL, NULL,
	    "a@b.org", 1000, true, SMTP_BODY_8BITMIME, true },
	{ "FROM:<a@b.org>  smtputf8   Size=5  ", 0, NULL, NULL, "a@b.org", 5,
	    true, SMTP_BODY_7BIT, true },
	{ "FROM:<pel\xc3\xa9@b.org> SMTPUTF8", 0, NULL, NULL,
	    "pel\xc3\xa9@b.org", 0, false, SMTP_BODY_7BIT, true },
	{ "FROM:<a@b.org> AUTH=<>", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_7BIT, false },
	{ "FROM:<a@b.org> AUTH=alice+40b.org", 0, NULL, NULL, "a@b.org", 0,
	    false, SMTP_BODY_7BIT, false },
	{ "FROM:<a@b.org> auth=a+2Bb+3Dc", 0, NULL, NULL, "a@b.org", 0, false,
	    SMTP_BODY_7BIT, false },
	/* command syntax */
	MAIL_ERR("", 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MAIL_ERR("TO:<a@b.org>", 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MAIL_ERR("FROM<a@b.org>", 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MAIL_ERR("FROM :<a@b.org>", 501, "5.5.4",
	    "Syntax: MAIL FROM:<address>"),
	MAIL_ERR("FROM:", 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	MAIL_ERR("FROM:   ", 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
	/* sender address */
	MAIL_ERR("FROM:a@b.org", 501, "5.1.7",
	    "Bad sender address syntax: address must be in angle brackets"),
	MAIL_ERR("FROM:<a@b.org", 501, "5.1.7",
	    "Bad sender address syntax: missing '>'"),
	MAIL_ERR("FROM:<a@-b.org>", 501, "5.1.7", "Bad sender address syntax: "
	    "domain label starts or ends with a hyphen"),
	MAIL_ERR("FROM:<a@b.org>junk", 501, "5.1.7",
	    "Bad sender address syntax: junk after address"),
	MAIL_ERR("FROM:<a@b.org>SIZE=10", 501, "5.1.7",
	    "Bad sender address syntax: junk after address"),
	MAIL_ERR("FROM:<a b@b.org>", 501, "5.1.7",
	    "Bad sender address syntax: bad character in local part"),
	MAIL_ERR("FROM:<\xc0\xaf" "a@b.org> SMTPUTF8", 501, "5.1.7",
	    "Bad sender address syntax: malformed UTF-8"),
	MAIL_ERR("FROM:<pel\xc3\xa9@b.org>", 553, "5.6.7",
	    "Non-ASCII sender address needs the SMTPUTF8 parameter"),
	/* SIZE */
	MAIL_ERR("FROM:<a@b.org> SIZE=", 501, "5.5.4",
	    "Syntax: SIZE=number (1 to 20 digits)"),
	MAIL_ERR("FROM:<a@b.org> SIZE", 501, "5.5.4",
	    "Syntax: SIZE=number (1 to 20 digits)"),
	MAIL_ERR("FROM:<a@b.org> SIZE=12a", 501, "5.5.4",
	    "Syntax: SIZE=number (digits only)"),
	MAIL_ERR("FROM:<a@b.org> SIZE=-1", 501, "5.5.4",
	    "Syntax: SIZE=number (digits only)"),
	MAIL_ERR("FROM:<a@b.org> SIZE=+1", 501, "5.5.4",
	    "Syntax: SIZE=number (digits only)"),
	MAIL_ERR("FROM:<a@b.org> SIZE=18446744073709551616", 501, "5.5.4",
	    "SIZE value too large"),
	MAIL_ERR("FROM:<a@b.org> SIZE=99999999999999999999", 501, "5.5.4",
	    "SIZE value too large"),
	MAIL_ERR("FROM:<a@b.org> SIZE=123456789012345678901", 501, "5.5.4",
	    "Syntax: SIZE=number (1 to 20 digits)"),
	MAIL_ERR("FROM:<a@b.org> SIZE=1 SIZE=2", 555, "5.5.4",
	    "Duplicate SIZE parameter"),
	MAIL_ERR("FROM:<a@b.org> SIZE=1 size=1", 555, "5.5.4",
	    "Duplicate SIZE parameter"),
	/* BODY */
	MAIL_ERR("FROM:<a@b.org> BODY=BINARYMIME", 555, "5.5.4",
	    "BODY=BINARYMIME not supported"),
	MAIL_ERR("FROM:<a@b.org> BODY=9BIT", 501, "5.5.4",
	    "Syntax: BODY=7BIT or BODY=8BITMIME"),
	MAIL_ERR("FROM:<a@b.org> BODY", 501, "5.5.4",
	    "Syntax: BODY=7BIT or BODY=8BITMIME"),
	MAIL_ERR("FROM:<a@b.org> BODY=", 501, "5.5.4",
	    "Syntax: BODY=7BIT or BODY=8BITMIME"),
	MAIL_ERR("FROM:<a@b.org> BODY=7BIT BODY=8BITMIME", 555, "5.5.4",
	    "Duplicate BODY parameter"),
	/* SMTPUTF8 */
	MAIL_ERR("FROM:<a@b.org> SMTPUTF8=yes", 501, "5.5.4",
	    "Syntax: SMTPUTF8 takes no value"),
	MAIL_ERR("FROM:<a@b.org> SMTPUTF8 smtputf8", 555, "5.5.4",
	    "Duplicate SMTPUTF8 parameter"),
	/* AUTH= (RFC 4954 5, xtext of RFC 3461 4) */
	MAIL_ERR("FROM:<a@b.org> AUTH=", 501, "5.5.4",
	    "Syntax: AUTH=<mailbox as xtext> or AUTH=<>"),
	MAIL_ERR("FROM:<a@b.org> AUTH", 501, "5.5.4",
	    "Syntax: AUTH=<mailbox as xtext> or AUTH=<>"),
	MAIL_ERR("FROM:<a@b.org> AUTH=a=b", 501, "5.5.4",
	    "Syntax: AUTH=<mailbox as xtext> or AUTH=<>"),
	MAIL_ERR("FROM:<a@b.org> AUTH=a+4", 501, "5.5.4",
	    "Syntax: AUTH=<mailbox as xtext> or AUTH=<>"),
	MAIL_ERR("FROM:<a@b.org> AUTH=a+4g", 501, "5.5.4",
	    "Syntax: AUTH=<mailbox as xtext> or AUTH=<>"),
	MAIL_ERR("FROM:<a@b.org> AUTH=a+4a", 501, "5.5.4",
	    "Syntax: AUTH=<mailbox as xtext> or AUTH=<>"),
	MAIL_ERR("FROM:<a@b.org> AUTH=a\x01", 501, "5.5.4",
	    "Syntax: AUTH=<mailbox as xtext> or AUTH=<>"),
	MAIL_ERR("FROM:<a@b.org> AUTH=<> AUTH=<>", 555, "5.5.4",
	    "Duplicate AUTH parameter"),
	/* other parameters */
	MAIL_ERR("FROM:<a@b.org> RET=HDRS", 555, "5.5.4",
	    "Unsupported MAIL parameter"),
	MAIL_ERR("FROM:<a@b.org> ENVID=x", 555, "5.5.4",
	    "Unsupported MAIL parameter"),
	MAIL_ERR("FROM:<a@b.org> SIZE=10 FOO", 555, "5.5.4",
	    "Unsupported MAIL parameter"),
	MAIL_ERR("FROM:<a@b.org> =x", 501, "5.5.4",
	    "Syntax: bad MAIL parameter keyword"),
	MAIL_ERR("FROM:<a@b.org> -X=1", 501, "5.5.4",
	    "Syntax: bad MAIL parameter keyword"),
	MAIL_ERR("FROM:<a@b.org> X_Y=1", 501, "5.5.4",
	    "Syntax: bad MAIL parameter keyword"),
	MAIL_ERR("FROM:<a@b.org> SIZE=1\tBODY=7BIT", 501, "5.5.4",
	    "Syntax: SIZE=number (digits only)"),
};

/* test_mail - MAIL FROM arguments */
static void
test_mail(void **state)
{
	const struct mail_case *c;
	struct smtp_mail_params p;
	struct smtp_error e;
	struct address a;
	char got[ADDRESS_MAX + 1];
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		c = &mail_cases[i];
		memset(&e, 0, sizeof(e));
		r = smtp_parse_mail(c->args, &a, &p, &e);
		if (c->code != 0) {
			if (r != -1)
				fail_msg("mail case %zu \"%s\": accepted", i,
				    c->args);
			check_err("mail", i, c->args, &e, c->code, c->status,
			    c->text);
			continue;
		}
		if (r != 0)
			fail_msg("mail case %zu \"%s\": got %d %s %s", i,
			    c->args, e.code, e.status, e.text);
		address_format(&a, got, sizeof(got));
		if (strcmp(got, c->addr) != 0 || p.size != c->size ||
		    p.size_given != c->size_given || p.body != c->body ||
		    p.smtputf8 != c->smtputf8)
			fail_msg("mail case %zu \"%s\": got <%s> size %llu/%d "
			    "body %d utf8 %d", i, c->args, got,
			    (unsigned long long)p.size, p.size_given, p.body,
			    p.smtputf8);
	}
}

struct rcpt_case {
	const char	*args;
	bool		 smtputf8;
	int		 code;
	const char	*status;
	const char	*text;
	const char	*local;
	const char	*domain;
};

#define RCPT_ERR(args, utf8, code, status, text) \
	{ args, utf8, code, status, text, NULL, NULL }

static const struct rcpt_case rcpt_cases[] = {
	{ "TO:<a@b.org>", false, 0, NULL, NULL, "a", "b.org" },
	{ "to:<A@B.ORG>", false, 0, NULL, NULL, "A", "b.org" },
	{ "To: <a@b.org>", false, 0, NULL, NULL, "a", "b.org" },
	{ "TO:<a@b.org>   ", false, 0, NULL, NULL, "a", "b.org" },
	{ "TO:<postmaster>", false, 0, NULL, NULL, "postmaster", "" },
	{ "TO:<PostMaster>", false, 0, NULL, NULL, "PostMaster", "" },
	{ "TO:<postmaster> ", false, 0, NULL, NULL, "postmaster", "" },
	{ "TO:<postmaster@b.org>", false, 0, NULL, NULL, "postmaster",
	    "b.org" },
	{ "TO:<@r.example:a@b.org>", false, 0, NULL, NULL, "a", "b.org" },
	{ "TO:<a@[192.0.2.1]>", false, 0, NULL, NULL, "a", "[192.0.2.1]" },
	{ "TO:<pel\xc3\xa9@b.org>", true, 0, NULL, NULL, "pel\xc3\xa9",
	    "b.org" },
	RCPT_ERR("TO:<pel\xc3\xa9@b.org>", false, 553, "5.6.7",
	    "Non-ASCII recipient address needs SMTPUTF8 at MAIL"),
	RCPT_ERR("TO:<a@b\xc3\xbc.org>", false, 553, "5.6.7",
	    "Non-ASCII recipient address needs SMTPUTF8 at MAIL"),
	RCPT_ERR("", false, 501, "5.5.4", "Syntax: RCPT TO:<address>"),
	RCPT_ERR("TO", false, 501, "5.5.4", "Syntax: RCPT TO:<address>"),
	RCPT_ERR("FROM:<a@b.org>", false, 501, "5.5.4",
	    "Syntax: RCPT TO:<address>"),
	RCPT_ERR("TO:", false, 501, "5.5.4", "Syntax: RCPT TO:<address>"),
	RCPT_ERR("TO:<>", false, 501, "5.1.3",
	    "Bad recipient address syntax: null address not allowed"),
	RCPT_ERR("TO:a@b.org", false, 501, "5.1.3",
	    "Bad recipient address syntax: address must be in angle "
	    "brackets"),
	RCPT_ERR("TO:<a@b.org>x", false, 501, "5.1.3",
	    "Bad recipient address syntax: junk after address"),
	RCPT_ERR("TO:<postmaster>x", false, 501, "5.1.3",
	    "Bad recipient address syntax: junk after address"),
	RCPT_ERR("TO:<postmaster", false, 501, "5.1.3",
	    "Bad recipient address syntax: missing domain"),
	RCPT_ERR("TO:<a@[300.1.1.1]>", false, 501, "5.1.3",
	    "Bad recipient address syntax: bad IPv4 address literal"),
	RCPT_ERR("TO:<a@b..org>", false, 501, "5.1.3",
	    "Bad recipient address syntax: empty label in domain"),
	RCPT_ERR("TO:<a@b.org> NOTIFY=NEVER", false, 555, "5.5.4",
	    "RCPT parameters not supported"),
	RCPT_ERR("TO:<a@b.org> ORCPT=rfc822;a@b.org", false, 555, "5.5.4",
	    "RCPT parameters not supported"),
	RCPT_ERR("TO:<postmaster> X", false, 555, "5.5.4",
	    "RCPT parameters not supported"),
};

/* test_rcpt - RCPT TO arguments */
static void
test_rcpt(void **state)
{
	const struct rcpt_case *c;
	struct smtp_error e;
	struct address a;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		c = &rcpt_cases[i];
		memset(&e, 0, sizeof(e));
		r = smtp_parse_rcpt(c->args, c->smtputf8, &a, &e);
		if (c->code != 0) {
			if (r != -1)
				fail_msg("rcpt case %zu \"%s\": accepted", i,
				    c->args);
			check_err("rcpt", i, c->args, &e, c->code, c->status,
			    c->text);
			continue;
		}
		if (r != 0 || strcmp(a.local, c->local) != 0 ||
		    strcmp(a.domain, c->domain) != 0)
			fail_msg("rcpt case %zu \"%s\": got %d \"%s\" \"%s\" "
			    "(%s)", i, c->args, r, a.local, a.domain,
			    r ? e.text : "");
	}
}

/*
 * test_address_texts - every reason the path parser gives reaches the
 * MAIL and RCPT reply texts (smtp_parse.c keeps a table of them).
 */
static void
test_address_texts(void **state)
{
	static const char *bad[] = {
		"<>",			/* null, for RCPT only */
		"a@b.org",
		"<@a;x@b.org>",
		"<",
		"<.a@b.org>",
		"<a.@b.org>",
		"<a..b@b.org>",
		"<a b@b.org>",
		"<\"a",
		"<\"a\tb\"@b.org>",
		"<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaa@b.org>",		/* 65 octets */
		"<a@>",
		"<a@b..org>",
		"<a@b_c.org>",
		"<a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaa.org>",	/* 64-octet label */
		"<a@-b.org>",
		"<a@[1.2.3.4 ]>",
		"<a@[1.2.3.4",
		"<a@[]>",
		"<a@[1.2.3.400]>",
		"<a@[IPv6:zz]>",
		"<a@[tag:x]>",
		"<\xc0\xaf@b.org>",
		"<a@b.org",
	};
	char line[512], want[512];
	struct smtp_mail_params p;
	struct smtp_error e;
	struct address a;
	const char *err;
	size_t i, consumed;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(address_parse_path(bad[i], strlen(bad[i]),
		    false, true, &a, &consumed, &err), -1);
		snprintf(want, sizeof(want), "Bad recipient address syntax: %s",
		    err);
		snprintf(line, sizeof(line), "TO:%s", bad[i]);
		assert_int_equal(smtp_parse_rcpt(line, true, &a, &e), -1);
		check_err("rcpt text", i, line, &e, 501, "5.1.3", want);
		if (i == 0)
			continue;
		snprintf(want, sizeof(want), "Bad sender address syntax: %s",
		    err);
		snprintf(line, sizeof(line), "FROM:%s", bad[i]);
		assert_int_equal(smtp_parse_mail(line, &a, &p, &e), -1);
		check_err("mail text", i, line, &e, 501, "5.1.7", want);
	}
}

/* test_path_too_long - 256 octets pass, 257 are refused */
static void
test_path_too_long(void **state)
{
	char line[600], local[65], dom[200];
	struct smtp_mail_params p;
	struct smtp_error e;
	struct address a;
	size_t i;

	(void)state;
	memset(local, 'l', 64);
	local[64] = '\0';
	for (i = 0; i < 189; i++)
		dom[i] = i % 50 == 49 ? '.' : 'd';
	dom[189] = '\0';
	snprintf(line, sizeof(line), "FROM:<%s@%s> SIZE=1", local, dom);
	assert_int_equal(smtp_parse_mail(line, &a, &p, &e), 0);
	snprintf(line, sizeof(line), "FROM:<%s@%sd> SIZE=1", local, dom);
	assert_int_equal(smtp_parse_mail(line, &a, &p, &e), -1);
	check_err("mail", 0, line, &e, 501, "5.1.7",
	    "Bad sender address syntax: path too long");
	snprintf(line, sizeof(line), "TO:<%s@%sd>", local, dom);
	assert_int_equal(smtp_parse_rcpt(line, false, &a, &e), -1);
	check_err("rcpt", 0, line, &e, 501, "5.1.3",
	    "Bad recipient address syntax: path too long");
	/* a 256-octet domain is refused as such, before the path length */
	snprintf(line, sizeof(line), "FROM:<a@%s.%.66s>", dom, dom);
	assert_int_equal(smtp_parse_mail(line, &a, &p, &e), -1);
	check_err("mail", 1, line, &e, 501, "5.1.7",
	    "Bad sender address syntax: domain too long");
}

static const struct {
	const char	*args;
	int		 ok;
	const char	*text;
} helo_cases[] = {
	{ "client.example", 1, NULL },
	{ "[192.0.2.1]", 1, NULL },
	{ "[IPv6:2001:db8::1]", 1, NULL },
	{ "x", 1, NULL },
	{ "odd_name!", 1, NULL },
	{ "localhost.", 1, NULL },
	{ "client.example   ", 1, NULL },
	{ "  client.example", 1, NULL },
	{ "", 0, "Syntax: EHLO hostname" },
	{ "   ", 0, "Syntax: EHLO hostname" },
	{ "client example", 0, "Syntax: EHLO hostname" },
	{ "a\tb", 0, "Invalid EHLO hostname: control or non-ASCII character" },
	{ "a\x7f", 0, "Invalid EHLO hostname: control or non-ASCII character" },
	{ "h\xc3\xa9.example", 0,
	    "Invalid EHLO hostname: control or non-ASCII character" },
};

/* test_helo - HELO/EHLO arguments */
static void
test_helo(void **state)
{
	struct smtp_error e;
	char name[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(helo_cases) / sizeof(helo_cases[0]); i++) {
		memset(&e, 0, sizeof(e));
		if (helo_cases[i].ok) {
			if (smtp_parse_helo(helo_cases[i].args, &e) != 0)
				fail_msg("helo case %zu \"%s\": %s", i,
				    helo_cases[i].args, e.text);
			continue;
		}
		if (smtp_parse_helo(helo_cases[i].args, &e) != -1)
			fail_msg("helo case %zu \"%s\": accepted", i,
			    helo_cases[i].args);
		check_err("helo", i, helo_cases[i].args, &e, 501, "5.5.4",
		    helo_cases[i].text);
	}
	memset(name, 'h', 255);
	name[255] = '\0';
	assert_int_equal(smtp_parse_helo(name, &e), 0);
	name[255] = 'h';
	name[256] = '\0';
	assert_int_equal(smtp_parse_helo(name, &e), -1);
	check_err("helo", 256, "256 octets", &e, 501, "5.5.4",
	    "EHLO hostname too long");
}

static const struct {
	const char	*args;
	const char	*mech;		/* NULL: refused with text */
	const char	*initial;
	const char	*text;
} auth_cases[] = {
	{ "PLAIN", "PLAIN", NULL, NULL },
	{ "plain", "PLAIN", NULL, NULL },
	{ "PLAIN ", "PLAIN", NULL, NULL },
	{ "PLAIN dGVzdAB0ZXN0AHBhc3M=", "PLAIN", "dGVzdAB0ZXN0AHBhc3M=",
	    NULL },
	{ "PLAIN   dGVzdA==", "PLAIN", "dGVzdA==", NULL },
	{ "PLAIN =", "PLAIN", "=", NULL },
	{ "LOGIN", "LOGIN", NULL, NULL },
	{ "scram-sha-256 biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjl"
	    "xa3hkYXdMM3JmY05IWUpZMVpWdldWczdqLHA9", "SCRAM-SHA-256",
	    "biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpW"
	    "dldWczdqLHA9", NULL },
	{ "X_Y-Z", "X_Y-Z", NULL, NULL },
	{ "ABCDEFGHIJKLMNOPQRST", "ABCDEFGHIJKLMNOPQRST", NULL, NULL },
	{ "a+/b", NULL, NULL,
	    "Invalid SASL mechanism name: bad character" },
	{ "", NULL, NULL, "Syntax: AUTH mechanism [initial-response]" },
	{ " PLAIN", NULL, NULL, "Syntax: AUTH mechanism [initial-response]" },
	{ "PL@IN", NULL, NULL, "Invalid SASL mechanism name: bad character" },
	{ "PL.IN", NULL, NULL, "Invalid SASL mechanism name: bad character" },
	{ "ABCDEFGHIJKLMNOPQRSTU", NULL, NULL,
	    "Invalid SASL mechanism name: longer than 20 characters" },
	{ "PLAIN dGVz dA==", NULL, NULL,
	    "Syntax: AUTH mechanism [initial-response]" },
	{ "PLAIN dGVzdA== ", NULL, NULL,
	    "Syntax: AUTH mechanism [initial-response]" },
	{ "PLAIN dGVz!", NULL, NULL,
	    "Error: malformed authentication response" },
	{ "PLAIN *", NULL, NULL,
	    "Error: malformed authentication response" },
	{ "PLAIN dG\tVz", NULL, NULL,
	    "Error: malformed authentication response" },
};

/* test_auth - AUTH arguments */
static void
test_auth(void **state)
{
	struct smtp_error e;
	const char *initial;
	char mech[21];
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(auth_cases) / sizeof(auth_cases[0]); i++) {
		memset(&e, 0, sizeof(e));
		initial = "sentinel";
		r = smtp_parse_auth(auth_cases[i].args, mech, &initial, &e);
		if (auth_cases[i].text != NULL) {
			if (r != -1)
				fail_msg("auth case %zu \"%s\": accepted", i,
				    auth_cases[i].args);
			check_err("auth", i, auth_cases[i].args, &e, 501,
			    strncmp(auth_cases[i].text, "Error: malformed", 16)
			    == 0 ? "5.5.2" : "5.5.4", auth_cases[i].text);
			assert_null(initial);
			continue;
		}
		if (r != 0 || strcmp(mech, auth_cases[i].mech) != 0)
			fail_msg("auth case %zu \"%s\": got %d \"%s\"", i,
			    auth_cases[i].args, r, r ? e.text : mech);
		if (auth_cases[i].initial == NULL)
			assert_null(initial);
		else
			assert_string_equal(initial, auth_cases[i].initial);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_address_texts),
		cmocka_unit_test(test_path_too_long),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_auth),
	};

	return cmocka_run_group_tests_name("smtp_parse", tests, NULL, NULL);
}
