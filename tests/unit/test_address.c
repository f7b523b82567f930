/*
 * test_address - table-driven tests for common/address.c: SMTP paths,
 * bare addr-specs, RFC 5322 address lists, formatting and +tag stripping.
 *
 * Every input is copied into a buffer of exactly its length (no NUL after
 * it), so AddressSanitizer and valgrind catch any read past len.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/address.h"

/* exact - a heap copy of s[0..len) with nothing after it */
static char *
exact(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	assert_non_null(p);
	if (len)
		memcpy(p, s, len);
	return p;
}

/* domain_of - a syntactically valid domain of exactly n octets */
static char *
domain_of(size_t n)
{
	char *d = malloc(n + 1);
	size_t i;

	assert_non_null(d);
	for (i = 0; i < n; i++)
		d[i] = i % 51 == 50 ? '.' : 'a' + (char)(i % 26);
	if (n > 0 && d[n - 1] == '.')
		d[n - 1] = 'z';
	d[n] = '\0';
	return d;
}

/* repeat - c repeated n times, NUL-terminated */
static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

#define NULL_OK		0x01	/* allow_null */
#define UTF8_OK		0x02	/* allow_utf8 */

struct path_case {
	const char	*in;
	unsigned	 flags;
	const char	*local;		/* NULL: expect failure */
	const char	*domain;
	const char	*err;		/* expected reason on failure */
	size_t		 consumed;	/* 0: all of in */
	bool		 utf8;
};

static const struct path_case path_cases[] = {
	/* plain */
	{ "<alice@example.org>", 0, "alice", "example.org", NULL, 0, false },
	{ "<Alice.Smith@Example.ORG>", 0, "Alice.Smith", "example.org",
	    NULL, 0, false },
	{ "<a!#$%&'*+-/=?^_`{|}~b@x.org>", 0,
	    "a!#$%&'*+-/=?^_`{|}~b", "x.org", NULL, 0, false },
	{ "<user+tag@x.org>", 0, "user+tag", "x.org", NULL, 0, false },
	{ "<user@localhost>", 0, "user", "localhost", NULL, 0, false },
	{ "<user@a-b.c-d.org>", 0, "user", "a-b.c-d.org", NULL, 0, false },
	{ "<user@xn--bcher-kva.example>", 0, "user",
	    "xn--bcher-kva.example", NULL, 0, false },
	{ "<user@1.2.3.4>", 0, "user", "1.2.3.4", NULL, 0, false },
	{ "<user@example.org.>", 0, "user", "example.org", NULL, 0, false },
	/* null path */
	{ "<>", NULL_OK, "", "", NULL, 0, false },
	{ "<>", 0, NULL, NULL, "null address not allowed", 0, false },
	{ "<> SIZE=10", NULL_OK, "", "", NULL, 2, false },
	/* what follows '>' is the caller's */
	{ "<a@b.org> SIZE=1000", 0, "a", "b.org", NULL, 9, false },
	{ "<a@b.org>junk", 0, "a", "b.org", NULL, 9, false },
	{ "<a@b.org>>", 0, "a", "b.org", NULL, 9, false },
	/* quoted local parts, kept as written */
	{ "<\"john doe\"@x.org>", 0, "\"john doe\"", "x.org", NULL, 0,
	    false },
	{ "<\"a\\\"b\"@x.org>", 0, "\"a\\\"b\"", "x.org", NULL, 0, false },
	{ "<\"a\\\\b\"@x.org>", 0, "\"a\\\\b\"", "x.org", NULL, 0, false },
	{ "<\"a\\ b\"@x.org>", 0, "\"a\\ b\"", "x.org", NULL, 0, false },
	{ "<\"\"@x.org>", 0, "\"\"", "x.org", NULL, 0, false },
	{ "<\"a@b\"@x.org>", 0, "\"a@b\"", "x.org", NULL, 0, false },
	{ "<\"a>b\"@x.org>", 0, "\"a>b\"", "x.org", NULL, 0, false },
	{ "<\"alice@x.org>", 0, NULL, NULL,
	    "unterminated quoted local part", 0, false },
	{ "<\"a\\", 0, NULL, NULL, "unterminated quoted local part", 0,
	    false },
	{ "<\"al\tice\"@x.org>", 0, NULL, NULL,
	    "bad character in quoted local part", 0, false },
	{ "<\"a\\\x01\"@x.org>", 0, NULL, NULL,
	    "bad character in quoted local part", 0, false },
	{ "<\"a\x7f\"@x.org>", 0, NULL, NULL,
	    "bad character in quoted local part", 0, false },
	{ "<\"a\"b@x.org>", 0, NULL, NULL, "bad character in local part", 0,
	    false },
	/* source routes are dropped */
	{ "<@a.example,@b.example:user@c.example>", 0, "user", "c.example",
	    NULL, 0, false },
	{ "<@a.example:user@c.example>", 0, "user", "c.example", NULL, 0,
	    false },
	{ "<@a,b:user@c.example>", 0, NULL, NULL, "bad source route", 0,
	    false },
	{ "<@a.example;user@c.example>", 0, NULL, NULL, "bad source route",
	    0, false },
	{ "<@example.org>", 0, NULL, NULL, "bad source route", 0, false },
	{ "<@:user@c.example>", 0, NULL, NULL, "bad character in domain", 0,
	    false },
	{ "<@a..b:user@c.example>", 0, NULL, NULL, "empty label in domain",
	    0, false },
	/* address literals */
	{ "<user@[192.0.2.1]>", 0, "user", "[192.0.2.1]", NULL, 0, false },
	{ "<user@[IPv6:2001:DB8::1]>", 0, "user", "[ipv6:2001:db8::1]",
	    NULL, 0, false },
	{ "<user@[ipv6:::1]>", 0, "user", "[ipv6:::1]", NULL, 0, false },
	{ "<user@[IPv6:::ffff:192.0.2.1]>", 0, "user",
	    "[ipv6:::ffff:192.0.2.1]", NULL, 0, false },
	{ "<a@[192.0.2.256]>", 0, NULL, NULL, "bad IPv4 address literal", 0,
	    false },
	{ "<a@[192.0.2]>", 0, NULL, NULL, "bad IPv4 address literal", 0,
	    false },
	{ "<a@[example.org]>", 0, NULL, NULL, "bad IPv4 address literal", 0,
	    false },
	{ "<a@[IPv6:2001:db8::g]>", 0, NULL, NULL, "bad IPv6 address literal",
	    0, false },
	{ "<a@[IPv6:1.2.3.4]>", 0, NULL, NULL, "bad IPv6 address literal", 0,
	    false },
	{ "<a@[IPv6:]>", 0, NULL, NULL, "unsupported address literal", 0,
	    false },
	{ "<a@[2001:db8::1]>", 0, NULL, NULL, "unsupported address literal",
	    0, false },
	{ "<a@[x-tag:foo]>", 0, NULL, NULL, "unsupported address literal", 0,
	    false },
	{ "<a@[]>", 0, NULL, NULL, "bad address literal", 0, false },
	{ "<a@[1.2.3.4 ]>", 0, NULL, NULL, "bad character in address literal",
	    0, false },
	{ "<a@[1.2.[3.4]>", 0, NULL, NULL, "bad character in address literal",
	    0, false },
	{ "<a@[192.0.2.1>", 0, NULL, NULL, "unterminated address literal", 0,
	    false },
	{ "<a@[192.0.2.1]x>", 0, NULL, NULL, "bad character in domain", 0,
	    false },
	{ "<a@192.0.2.1]>", 0, NULL, NULL, "bad character in domain", 0,
	    false },
	{ "<a@[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:"
	    "0000:0000:1]>",
	    0, NULL, NULL, "bad address literal", 0, false },
	/* brackets and structure */
	{ "", 0, NULL, NULL, "missing address", 0, false },
	{ "alice@example.org", 0, NULL, NULL,
	    "address must be in angle brackets", 0, false },
	{ " <alice@example.org>", 0, NULL, NULL,
	    "address must be in angle brackets", 0, false },
	{ "<alice@example.org", 0, NULL, NULL, "missing '>'", 0, false },
	{ "<", 0, NULL, NULL, "empty local part", 0, false },
	{ "<alice>", 0, NULL, NULL, "missing domain", 0, false },
	{ "<alice", 0, NULL, NULL, "missing domain", 0, false },
	{ "<alice@>", 0, NULL, NULL, "missing domain", 0, false },
	{ "<alice@", 0, NULL, NULL, "missing domain", 0, false },
	{ "< alice@example.org>", 0, NULL, NULL,
	    "bad character in local part", 0, false },
	{ "<alice@example.org >", 0, NULL, NULL, "bad character in domain", 0,
	    false },
	/* local part */
	{ "<.alice@x.org>", 0, NULL, NULL, "local part starts with a dot", 0,
	    false },
	{ "<alice.@x.org>", 0, NULL, NULL, "local part ends with a dot", 0,
	    false },
	{ "<al..ice@x.org>", 0, NULL, NULL, "consecutive dots in local part",
	    0, false },
	{ "<al ice@x.org>", 0, NULL, NULL, "bad character in local part", 0,
	    false },
	{ "<al(ice@x.org>", 0, NULL, NULL, "bad character in local part", 0,
	    false },
	{ "<al,ice@x.org>", 0, NULL, NULL, "bad character in local part", 0,
	    false },
	{ "<a@b@x.org>", 0, NULL, NULL, "bad character in domain", 0, false },
	/* domain */
	{ "<a@x..org>", 0, NULL, NULL, "empty label in domain", 0, false },
	{ "<a@.x.org>", 0, NULL, NULL, "empty label in domain", 0, false },
	{ "<a@x.org..>", 0, NULL, NULL, "empty label in domain", 0, false },
	{ "<a@.>", 0, NULL, NULL, "empty label in domain", 0, false },
	{ "<a@-x.org>", 0, NULL, NULL,
	    "domain label starts or ends with a hyphen", 0, false },
	{ "<a@x-.org>", 0, NULL, NULL,
	    "domain label starts or ends with a hyphen", 0, false },
	{ "<a@x.org->", 0, NULL, NULL,
	    "domain label starts or ends with a hyphen", 0, false },
	{ "<a@x_y.org>", 0, NULL, NULL, "bad character in domain", 0, false },
	{ "<a@_x.org>", 0, NULL, NULL, "bad character in domain", 0, false },
	{ "<a@x.org\r\n>", 0, NULL, NULL, "bad character in domain", 0,
	    false },
	/* UTF-8 (RFC 6531) */
	{ "<pel\xc3\xa9@example.com>", UTF8_OK, "pel\xc3\xa9", "example.com",
	    NULL, 0, true },
	{ "<pel\xc3\xa9@example.com>", 0, NULL, NULL,
	    "non-ASCII character without SMTPUTF8", 0, false },
	{ "<user@b\xc3\xbc" "cher.example>", UTF8_OK, "user",
	    "b\xc3\xbc" "cher.example", NULL, 0, true },
	{ "<user@b\xc3\xbc" "cher.example>", 0, NULL, NULL,
	    "non-ASCII character without SMTPUTF8", 0, false },
	/* only ASCII is lower-cased: U+00DC stays as it is */
	{ "<USER@B\xc3\x9c" "CHER.EXAMPLE>", UTF8_OK, "USER",
	    "b\xc3\x9c" "cher.example", NULL, 0, true },
	{ "<\"pel\xc3\xa9 x\"@x.org>", UTF8_OK, "\"pel\xc3\xa9 x\"", "x.org",
	    NULL, 0, true },
	{ "<\"pel\xc3\xa9\"@x.org>", 0, NULL, NULL,
	    "non-ASCII character without SMTPUTF8", 0, false },
	{ "<\xe4\xbd\xa0\xe5\xa5\xbd@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac"
	    "\xe5\x8f\xb8>", UTF8_OK, "\xe4\xbd\xa0\xe5\xa5\xbd",
	    "\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8", NULL, 0,
	    true },
	{ "<\xf0\x9f\x98\x80@x.org>", UTF8_OK, "\xf0\x9f\x98\x80", "x.org",
	    NULL, 0, true },
	{ "<\xf4\x8f\xbf\xbf@x.org>", UTF8_OK, "\xf4\x8f\xbf\xbf", "x.org",
	    NULL, 0, true },	/* U+10FFFF, the last code point */
	{ "<\xc0\xaf@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8", 0,
	    false },		/* overlong '/' */
	{ "<\xc1\xbf@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8", 0,
	    false },
	{ "<\xe0\x80\xaf@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8", 0,
	    false },		/* overlong, 3 bytes */
	{ "<\xf0\x80\x80\xaf@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8",
	    0, false },		/* overlong, 4 bytes */
	{ "<\xed\xa0\x80@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8", 0,
	    false },		/* surrogate U+D800 */
	{ "<\xf4\x90\x80\x80@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8",
	    0, false },		/* U+110000 */
	{ "<\xf5\x80\x80\x80@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8",
	    0, false },
	{ "<\xff@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8", 0, false },
	{ "<\x80@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8", 0, false },
	{ "<a\xc3", UTF8_OK, NULL, NULL, "malformed UTF-8", 0, false },
	{ "<a\xe4\xbd", UTF8_OK, NULL, NULL, "malformed UTF-8", 0, false },
	{ "<a@b\xc3\x28.org>", UTF8_OK, NULL, NULL, "malformed UTF-8", 0,
	    false },
	{ "<\"\xc3\"@x.org>", UTF8_OK, NULL, NULL, "malformed UTF-8", 0,
	    false },
	{ "<a@b\xc3\xa9>", UTF8_OK, "a", "b\xc3\xa9", NULL, 0, true },
	/* control characters and NUL inside */
	{ "<a\x01@x.org>", 0, NULL, NULL, "bad character in local part", 0,
	    false },
};

/* check_path_case - run one path case and compare */
static void
check_path_case(size_t i, const struct path_case *c)
{
	struct address a;
	const char *err = NULL;
	size_t len = strlen(c->in), consumed = 0;
	char *in = exact(c->in, len);
	int r;

	memset(&a, 0x55, sizeof(a));
	r = address_parse_path(in, len, c->flags & NULL_OK,
	    c->flags & UTF8_OK, &a, &consumed, &err);
	free(in);
	if (c->local == NULL) {
		if (r != -1)
			fail_msg("path case %zu \"%s\": got success, want "
			    "error \"%s\"", i, c->in, c->err);
		if (err == NULL || strcmp(err, c->err) != 0)
			fail_msg("path case %zu \"%s\": got error \"%s\", "
			    "want \"%s\"", i, c->in, err ? err : "(null)",
			    c->err);
		return;
	}
	if (r != 0)
		fail_msg("path case %zu \"%s\": got error \"%s\"", i, c->in,
		    err ? err : "(null)");
	if (strcmp(a.local, c->local) != 0 ||
	    strcmp(a.domain, c->domain) != 0)
		fail_msg("path case %zu \"%s\": got \"%s\" \"%s\", want "
		    "\"%s\" \"%s\"", i, c->in, a.local, a.domain, c->local,
		    c->domain);
	if (consumed != (c->consumed ? c->consumed : len))
		fail_msg("path case %zu \"%s\": consumed %zu, want %zu", i,
		    c->in, consumed, c->consumed ? c->consumed : len);
	if (a.utf8 != c->utf8)
		fail_msg("path case %zu \"%s\": utf8 %d, want %d", i, c->in,
		    a.utf8, c->utf8);
}

/* test_path_table - every row of path_cases */
static void
test_path_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++)
		check_path_case(i, &path_cases[i]);
}

/* parse_path_str - parse a NUL-terminated path; 0 or -1 with *err */
static int
parse_path_str(const char *s, struct address *a, const char **err)
{
	size_t consumed, len = strlen(s);
	char *in = exact(s, len);
	int r;

	r = address_parse_path(in, len, false, false, a, &consumed, err);
	free(in);
	if (r == 0)
		assert_int_equal(consumed, len);
	return r;
}

/* test_path_limits - 64/65-octet local parts, labels, domains, paths */
static void
test_path_limits(void **state)
{
	struct address a;
	const char *err;
	char *l64 = repeat('l', 64), *l65 = repeat('l', 65);
	char *lab63 = repeat('d', 63), *lab64 = repeat('d', 64);
	char *d189 = domain_of(189), *d190 = domain_of(190);
	char *d255 = domain_of(255), *d256 = domain_of(256);
	char buf[1024];

	(void)state;
	snprintf(buf, sizeof(buf), "<%s@x.org>", l64);
	assert_int_equal(parse_path_str(buf, &a, &err), 0);
	assert_string_equal(a.local, l64);

	snprintf(buf, sizeof(buf), "<%s@x.org>", l65);
	assert_int_equal(parse_path_str(buf, &a, &err), -1);
	assert_string_equal(err, "local part too long");

	snprintf(buf, sizeof(buf), "<\"%.62s\"@x.org>", l64);
	assert_int_equal(parse_path_str(buf, &a, &err), 0);
	assert_int_equal(strlen(a.local), 64);
	snprintf(buf, sizeof(buf), "<\"%.63s\"@x.org>", l64);
	assert_int_equal(parse_path_str(buf, &a, &err), -1);
	assert_string_equal(err, "local part too long");

	snprintf(buf, sizeof(buf), "<a@%s.org>", lab63);
	assert_int_equal(parse_path_str(buf, &a, &err), 0);
	snprintf(buf, sizeof(buf), "<a@%s.org>", lab64);
	assert_int_equal(parse_path_str(buf, &a, &err), -1);
	assert_string_equal(err, "domain label too long");
	snprintf(buf, sizeof(buf), "<a@x.%s>", lab64);
	assert_int_equal(parse_path_str(buf, &a, &err), -1);
	assert_string_equal(err, "domain label too long");

	/* '<' + 64 + '@' + 189 + '>' = 256: the longest path */
	snprintf(buf, sizeof(buf), "<%s@%s>", l64, d189);
	assert_int_equal(strlen(buf), 256);
	assert_int_equal(parse_path_str(buf, &a, &err), 0);
	assert_string_equal(a.domain, d189);
	snprintf(buf, sizeof(buf), "<%s@%s>", l64, d190);
	assert_int_equal(parse_path_str(buf, &a, &err), -1);
	assert_string_equal(err, "path too long");

	/* a 255-octet domain is fine as a domain but not in a path */
	snprintf(buf, sizeof(buf), "<a@%s>", d255);
	assert_int_equal(parse_path_str(buf, &a, &err), -1);
	assert_string_equal(err, "path too long");
	snprintf(buf, sizeof(buf), "<a@%s>", d256);
	assert_int_equal(parse_path_str(buf, &a, &err), -1);
	assert_string_equal(err, "domain too long");

	/* a source route counts towards the path length */
	snprintf(buf, sizeof(buf), "<@%s:a@b.org>", d255);
	assert_int_equal(parse_path_str(buf, &a, &err), -1);
	assert_string_equal(err, "path too long");

	free(l64);
	free(l65);
	free(lab63);
	free(lab64);
	free(d189);
	free(d190);
	free(d255);
	free(d256);
}

struct spec_case {
	const char	*in;
	bool		 allow_utf8;
	const char	*local;		/* NULL: expect failure */
	const char	*domain;
	const char	*err;
};

static const struct spec_case spec_cases[] = {
	{ "alice@example.org", false, "alice", "example.org", NULL },
	{ "Alice@EXAMPLE.org", false, "Alice", "example.org", NULL },
	{ "\"a b\"@x.org", false, "\"a b\"", "x.org", NULL },
	{ "a@[192.0.2.1]", false, "a", "[192.0.2.1]", NULL },
	{ "a@x.org.", false, "a", "x.org", NULL },
	{ "pel\xc3\xa9@x.org", true, "pel\xc3\xa9", "x.org", NULL },
	{ "pel\xc3\xa9@x.org", false, NULL, NULL,
	    "non-ASCII character without SMTPUTF8" },
	{ "", false, NULL, NULL, "missing address" },
	{ "alice", false, NULL, NULL, "missing domain" },
	{ "alice@", false, NULL, NULL, "missing domain" },
	{ "@x.org", false, NULL, NULL, "empty local part" },
	{ "alice@example.org ", false, NULL, NULL,
	    "bad character in domain" },
	{ "alice@example.org>", false, NULL, NULL,
	    "bad character in domain" },
	{ "<alice@example.org>", false, NULL, NULL,
	    "bad character in local part" },
	{ " alice@example.org", false, NULL, NULL,
	    "bad character in local part" },
	{ "a b@x.org", false, NULL, NULL, "bad character in local part" },
	{ "a@x..org", false, NULL, NULL, "empty label in domain" },
};

/* test_addrspec_table - every row of spec_cases */
static void
test_addrspec_table(void **state)
{
	const struct spec_case *c;
	struct address a;
	const char *err;
	size_t i, len;
	char *in;
	int r;

	(void)state;
	for (i = 0; i < sizeof(spec_cases) / sizeof(spec_cases[0]); i++) {
		c = &spec_cases[i];
		len = strlen(c->in);
		in = exact(c->in, len);
		err = NULL;
		r = address_parse_addrspec(in, len, c->allow_utf8, &a, &err);
		free(in);
		if (c->local == NULL) {
			if (r != -1 || err == NULL || strcmp(err, c->err) != 0)
				fail_msg("addrspec case %zu \"%s\": got %d "
				    "\"%s\", want error \"%s\"", i, c->in, r,
				    err ? err : "(null)", c->err);
			continue;
		}
		if (r != 0 || strcmp(a.local, c->local) != 0 ||
		    strcmp(a.domain, c->domain) != 0)
			fail_msg("addrspec case %zu \"%s\": got %d \"%s\" "
			    "\"%s\" (%s)", i, c->in, r, a.local, a.domain,
			    err ? err : "");
	}
}

/* test_addrspec_limits - 255/256-octet domains, 64/65 local parts */
static void
test_addrspec_limits(void **state)
{
	struct address a;
	const char *err;
	char *d255 = domain_of(255), *d256 = domain_of(256);
	char *l64 = repeat('x', 64), *l65 = repeat('x', 65);
	char buf[1024];

	(void)state;
	snprintf(buf, sizeof(buf), "%s@%s", l64, d255);
	assert_int_equal(address_parse_addrspec(buf, strlen(buf), false, &a,
	    &err), 0);
	assert_string_equal(a.local, l64);
	assert_string_equal(a.domain, d255);

	snprintf(buf, sizeof(buf), "a@%s", d256);
	assert_int_equal(address_parse_addrspec(buf, strlen(buf), false, &a,
	    &err), -1);
	assert_string_equal(err, "domain too long");

	/* 255 octets plus a trailing dot is still 255 */
	snprintf(buf, sizeof(buf), "a@%s.", d255);
	assert_int_equal(address_parse_addrspec(buf, strlen(buf), false, &a,
	    &err), 0);
	assert_string_equal(a.domain, d255);

	snprintf(buf, sizeof(buf), "%s@x.org", l65);
	assert_int_equal(address_parse_addrspec(buf, strlen(buf), false, &a,
	    &err), -1);
	assert_string_equal(err, "local part too long");

	/* len is honoured: only "a@b.org" of "a@b.org.extra" */
	assert_int_equal(address_parse_addrspec("a@b.org.extra", 7, false,
	    &a, &err), 0);
	assert_string_equal(a.domain, "b.org");

	free(d255);
	free(d256);
	free(l64);
	free(l65);
}

#define HDR_MAX	4

struct hdr_case {
	const char	*in;
	bool		 allow_utf8;
	int		 want;		/* 0 or -1 */
	size_t		 n;
	const char	*addrs[HDR_MAX];	/* formatted */
	const char	*err;
};

static const struct hdr_case hdr_cases[] = {
	{ "alice@x.org", false, 0, 1, { "alice@x.org" }, NULL },
	{ " alice@X.ORG", false, 0, 1, { "alice@x.org" }, NULL },
	{ "Alice Example <alice@x.org>", false, 0, 1, { "alice@x.org" },
	    NULL },
	{ "\"Alice Example\" <alice@x.org>", false, 0, 1, { "alice@x.org" },
	    NULL },
	{ "\"Example, Alice\" <alice@x.org>", false, 0, 1, { "alice@x.org" },
	    NULL },
	{ "\"Alice \\\"Al\\\" Example\" <alice@x.org>", false, 0, 1,
	    { "alice@x.org" }, NULL },
	{ "<alice@x.org>", false, 0, 1, { "alice@x.org" }, NULL },
	{ "alice@x.org (Alice Example)", false, 0, 1, { "alice@x.org" },
	    NULL },
	{ "(Alice) alice@x.org", false, 0, 1, { "alice@x.org" }, NULL },
	{ "(a (nested (deep)) comment) alice@x.org (and \\) one)", false, 0,
	    1, { "alice@x.org" }, NULL },
	{ "Alice <alice@x.org>, bob@y.org", false, 0, 2,
	    { "alice@x.org", "bob@y.org" }, NULL },
	{ "Alice <alice@x.org>,\r\n Bob <bob@y.org>\r\n", false, 0, 2,
	    { "alice@x.org", "bob@y.org" }, NULL },
	{ "undisclosed-recipients:;", false, 0, 0, { NULL }, NULL },
	{ "undisclosed-recipients: ;", false, 0, 0, { NULL }, NULL },
	{ "team: a@x.org, b@y.org;", false, 0, 2, { "a@x.org", "b@y.org" },
	    NULL },
	{ "team: a@x.org, Bee <b@y.org>;, c@z.org", false, 0, 3,
	    { "a@x.org", "b@y.org", "c@z.org" }, NULL },
	{ "\"The Team\": a@x.org (A) ; (end)", false, 0, 1, { "a@x.org" },
	    NULL },
	{ "Alice\r\n <alice@x.org>", false, 0, 1, { "alice@x.org" }, NULL },
	{ "Alice\r\n\t<alice@x.org>", false, 0, 1, { "alice@x.org" }, NULL },
	{ "\"Alice\r\n Example\" <alice@x.org>", false, 0, 1,
	    { "alice@x.org" }, NULL },
	{ "(multi\r\n line) alice@x.org", false, 0, 1, { "alice@x.org" },
	    NULL },
	{ "alice@x.org\r\n", false, 0, 1, { "alice@x.org" }, NULL },
	{ "=?utf-8?B?QWxpY2U=?= <alice@x.org>", false, 0, 1,
	    { "alice@x.org" }, NULL },
	{ "=?iso-8859-1?Q?Ren=E9?= Doe <rene@x.org>", false, 0, 1,
	    { "rene@x.org" }, NULL },
	{ "John Q. Public <jqp@x.org>", false, 0, 1, { "jqp@x.org" }, NULL },
	{ "<@route.example:alice@x.org>", false, 0, 1, { "alice@x.org" },
	    NULL },
	{ "Alice <@a.example,@b.example:alice@x.org>", false, 0, 1,
	    { "alice@x.org" }, NULL },
	{ "\"john doe\"@x.org", false, 0, 1, { "\"john doe\"@x.org" }, NULL },
	{ "Doe <\"john doe\"@x.org>", false, 0, 1, { "\"john doe\"@x.org" },
	    NULL },
	{ "john.doe@x.org", false, 0, 1, { "john.doe@x.org" }, NULL },
	{ "alice@x.org,,bob@y.org", false, 0, 2, { "alice@x.org",
	    "bob@y.org" }, NULL },
	{ ", alice@x.org,", false, 0, 1, { "alice@x.org" }, NULL },
	{ "< alice@x.org >", false, 0, 1, { "alice@x.org" }, NULL },
	{ "alice (c) @ (d) x.org", false, 0, 1, { "alice@x.org" }, NULL },
	{ "alice@[192.0.2.1]", false, 0, 1, { "alice@[192.0.2.1]" }, NULL },
	{ "alice@x.org.", false, 0, 1, { "alice@x.org" }, NULL },
	{ "Zo\xc3\xab <zoe@x.org>", false, 0, 1, { "zoe@x.org" }, NULL },
	{ "pel\xc3\xa9@x.org", true, 0, 1, { "pel\xc3\xa9@x.org" }, NULL },
	{ "a@x.org, b@x.org, c@x.org, d@x.org, e@x.org", false, 0, 5,
	    { "a@x.org", "b@x.org", "c@x.org", "d@x.org" }, NULL },
	/* malformed */
	{ "", false, -1, 0, { NULL }, "no address" },
	{ "  \r\n ", false, -1, 0, { NULL }, "no address" },
	{ ",", false, -1, 0, { NULL }, "no address" },
	{ "(just a comment)", false, -1, 0, { NULL }, "no address" },
	{ "\"Alice <alice@x.org>", false, -1, 0, { NULL },
	    "unterminated quoted string" },
	{ "\"Alice\\", false, -1, 0, { NULL }, "unterminated quoted string" },
	{ "(Alice <alice@x.org>", false, -1, 0, { NULL },
	    "unterminated comment" },
	{ "((a) alice@x.org", false, -1, 0, { NULL }, "unterminated comment" },
	{ "alice@x.org (a\\", false, -1, 0, { NULL }, "unterminated comment" },
	{ "Alice) alice@x.org", false, -1, 0, { NULL }, "unbalanced ')'" },
	{ "alice@x.org>", false, -1, 0, { NULL }, "unbalanced '>'" },
	{ "Alice <alice@x.org", false, -1, 0, { NULL }, "missing '>'" },
	{ "Alice <", false, -1, 0, { NULL }, "missing '>'" },
	{ "Alice <alice@x.org x>", false, -1, 0, { NULL },
	    "bad character in address" },
	{ "Alice <alice@x.org> <bob@y.org>", false, -1, 0, { NULL },
	    "missing comma between addresses" },
	{ "Alice alice@x.org>", false, -1, 0, { NULL },
	    "bad character in local part" },
	{ "alice", false, -1, 0, { NULL }, "missing domain" },
	{ "Alice Example", false, -1, 0, { NULL }, "missing domain" },
	{ "alice@", false, -1, 0, { NULL }, "missing domain" },
	{ "alice@ (nothing)", false, -1, 0, { NULL }, "missing domain" },
	{ "Alice <alice>", false, -1, 0, { NULL }, "missing domain" },
	{ "Alice <>", false, -1, 0, { NULL }, "empty address" },
	{ "@x.org", false, -1, 0, { NULL }, "empty local part" },
	{ "<@a.example;alice@x.org>", false, -1, 0, { NULL },
	    "bad route in address" },
	{ "team: a@x.org", false, -1, 0, { NULL },
	    "unterminated group (missing ';')" },
	{ "team: a@x.org,", false, -1, 0, { NULL },
	    "unterminated group (missing ';')" },
	{ "team:", false, -1, 0, { NULL },
	    "unterminated group (missing ';')" },
	{ "a: b: c@x.org;;", false, -1, 0, { NULL }, "group inside a group" },
	{ ": a@x.org;", false, -1, 0, { NULL }, "group without a name" },
	{ "team: a@x.org b@y.org;", false, -1, 0, { NULL },
	    "missing comma between addresses" },
	{ "alice@x.org bob@y.org", false, -1, 0, { NULL },
	    "missing comma between addresses" },
	{ "alice@x.org;", false, -1, 0, { NULL },
	    "missing comma between addresses" },
	{ "alice@x.org\r\nbob@y.org", false, -1, 0, { NULL },
	    "bad line break in header" },
	{ "alice@x.org\nfoo", false, -1, 0, { NULL },
	    "bad line break in header" },
	{ "alice@x.org\r", false, -1, 0, { NULL }, "bad line break in header" },
	{ "\"a\rb\" <alice@x.org>", false, -1, 0, { NULL },
	    "bad line break in header" },
	{ "a..b@x.org", false, -1, 0, { NULL },
	    "consecutive dots in local part" },
	{ "a . b@x.org", false, -1, 0, { NULL },
	    "obsolete local part syntax (space around a dot)" },
	{ "alice@x_y.org", false, -1, 0, { NULL }, "bad character in domain" },
	{ "alice@x..org", false, -1, 0, { NULL }, "empty label in domain" },
	{ "alice@[300.0.0.1]", false, -1, 0, { NULL },
	    "bad IPv4 address literal" },
	{ "pel\xc3\xa9@x.org", false, -1, 0, { NULL },
	    "non-ASCII character without SMTPUTF8" },
	{ "pel\xc0\xaf@x.org", true, -1, 0, { NULL }, "malformed UTF-8" },
	{ "\"a\r\nb\"@x.org", false, -1, 0, { NULL },
	    "bad line break in header" },
	/* folding inside a quoted local part is obsolete (RFC 5322 4.4) */
	{ "\"a\r\n b\"@x.org", false, -1, 0, { NULL },
	    "bad character in quoted local part" },
	{ "[alice]", false, -1, 0, { NULL }, "bad character in address" },
	{ "; alice@x.org", false, -1, 0, { NULL }, "empty address" },
	{ ". <alice@x.org>", false, -1, 0, { NULL },
	    "bad character in address" },
};

/* check_hdr_case - run one address-list case and compare */
static void
check_hdr_case(size_t i, const struct hdr_case *c)
{
	struct address out[HDR_MAX];
	char got[ADDRESS_MAX + 1];
	const char *err = NULL;
	size_t len = strlen(c->in), n = 0, k;
	char *in = exact(c->in, len);
	int r;

	r = address_header_mailboxes(in, len, c->allow_utf8, out, HDR_MAX,
	    &n, &err);
	free(in);
	if (c->want == -1) {
		if (r != -1 || err == NULL || strcmp(err, c->err) != 0)
			fail_msg("header case %zu \"%s\": got %d \"%s\", want "
			    "error \"%s\"", i, c->in, r, err ? err : "(null)",
			    c->err);
		return;
	}
	if (r != 0)
		fail_msg("header case %zu \"%s\": got error \"%s\"", i, c->in,
		    err ? err : "(null)");
	if (n != c->n)
		fail_msg("header case %zu \"%s\": got %zu mailboxes, want %zu",
		    i, c->in, n, c->n);
	for (k = 0; k < n && k < HDR_MAX; k++) {
		address_format(&out[k], got, sizeof(got));
		if (strcmp(got, c->addrs[k]) != 0)
			fail_msg("header case %zu \"%s\": mailbox %zu is "
			    "\"%s\", want \"%s\"", i, c->in, k, got,
			    c->addrs[k]);
	}
}

/* test_header_table - every row of hdr_cases */
static void
test_header_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++)
		check_hdr_case(i, &hdr_cases[i]);
}

/* test_header_details - utf8 flag, max 0, and len shorter than text */
static void
test_header_details(void **state)
{
	struct address out[2];
	const char *err;
	const char *v = "alice@x.org, bob@y.org";
	size_t n;

	(void)state;
	/* len cuts the value: only alice is seen */
	assert_int_equal(address_header_mailboxes(v, 11, false, out, 2, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].domain, "x.org");
	/* len cuts inside the second domain: "bob@y" */
	assert_int_equal(address_header_mailboxes(v, 18, false, out, 2, &n,
	    &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(out[1].domain, "y");
	/* max 0: counted, not stored */
	assert_int_equal(address_header_mailboxes(v, strlen(v), false, NULL,
	    0, &n, &err), 0);
	assert_int_equal(n, 2);
	/* utf8 is per mailbox */
	v = "pel\xc3\xa9@x.org, bob@y.org";
	assert_int_equal(address_header_mailboxes(v, strlen(v), true, out, 2,
	    &n, &err), 0);
	assert_int_equal(n, 2);
	assert_true(out[0].utf8);
	assert_false(out[1].utf8);
	/* a NUL inside the value is just a bad byte */
	assert_int_equal(address_header_mailboxes("alice@x.org\0bob", 15,
	    false, out, 2, &n, &err), -1);
	assert_string_equal(err, "bad character in domain");
	/* deep nesting needs no stack */
	{
		size_t depth = 100000, k;
		char *deep = malloc(2 * depth + 12);

		assert_non_null(deep);
		for (k = 0; k < depth; k++) {
			deep[k] = '(';
			deep[depth + k] = ')';
		}
		memcpy(deep + 2 * depth, " a@x.org", 8);
		assert_int_equal(address_header_mailboxes(deep, 2 * depth + 8,
		    false, out, 2, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(address_header_mailboxes(deep, depth + 5,
		    false, out, 2, &n, &err), -1);
		assert_string_equal(err, "unterminated comment");
		free(deep);
	}
}

/* test_format - address_format, including truncation and <> */
static void
test_format(void **state)
{
	struct address a;
	char out[16];

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_string_equal(address_format(&a, out, sizeof(out)), "");
	strcpy(a.local, "postmaster");
	assert_string_equal(address_format(&a, out, sizeof(out)),
	    "postmaster");
	strcpy(a.domain, "example.org");
	assert_string_equal(address_format(&a, out, sizeof(out)),
	    "postmaster@exam");
	strcpy(a.local, "a");
	strcpy(a.domain, "b.org");
	assert_string_equal(address_format(&a, out, sizeof(out)), "a@b.org");
	assert_string_equal(address_format(&a, out, 2), "a");
}

/* test_strip_tag - address_strip_tag */
static void
test_strip_tag(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "alice", "alice" },
		{ "alice+tag", "alice" },
		{ "alice+", "alice" },
		{ "a+b+c", "a" },
		{ "+x", "" },
		{ "", "" },
		{ "\"a+b\"", "\"a+b\"" },
		{ "\"a\"", "\"a\"" },
	};
	char out[ADDRESS_LOCAL_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(address_strip_tag(cases[i].in, out),
		    cases[i].want);
}

/* test_random_input - random and mutated bytes never crash or overrun */
static void
test_random_input(void **state)
{
	static const char alphabet[] = "<>@.\"\\()[]:;, \t\r\n+=-aZ09\xc3\xa9"
	    "\x80\xff\xe0\xf0";
	static const char *seeds[] = {
		"\"Alice\" <alice@x.org>, team: b@y.org (c);",
		"<@a.example,@b:user@[IPv6:2001:db8::1]>",
		"(a (b) c) \"q\\\"x\"@d.org",
	};
	struct address a, out[3];
	const char *err;
	size_t consumed, n, len, k;
	unsigned seed = 12345;
	char buf[80], *in;
	int iter;

	(void)state;
	for (iter = 0; iter < 200000; iter++) {
		seed = seed * 1103515245 + 12345;
		if (iter % 2) {
			len = (seed >> 16) % sizeof(buf);
			for (k = 0; k < len; k++) {
				seed = seed * 1103515245 + 12345;
				buf[k] = alphabet[(seed >> 16) %
				    (sizeof(alphabet) - 1)];
			}
		} else {
			const char *s = seeds[(seed >> 16) % 3];

			len = strlen(s);
			memcpy(buf, s, len);
			for (k = 0; k < 3; k++) {
				seed = seed * 1103515245 + 12345;
				buf[(seed >> 8) % len] = alphabet[(seed >> 20) %
				    (sizeof(alphabet) - 1)];
			}
			seed = seed * 1103515245 + 12345;
			len = (seed >> 16) % (len + 1);
		}
		in = exact(buf, len);
		if (address_parse_path(in, len, true, true, &a, &consumed,
		    &err) == 0)
			assert_true(consumed <= len);
		else
			assert_non_null(err);
		(void)address_parse_addrspec(in, len, iter % 3 == 0, &a, &err);
		if (address_header_mailboxes(in, len, iter % 3 == 1, out, 3,
		    &n, &err) == -1)
			assert_non_null(err);
		free(in);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_table),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_addrspec_table),
		cmocka_unit_test(test_addrspec_limits),
		cmocka_unit_test(test_header_table),
		cmocka_unit_test(test_header_details),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_strip_tag),
		cmocka_unit_test(test_random_input),
	};

	return cmocka_run_group_tests_name("address", tests, NULL, NULL);
}
