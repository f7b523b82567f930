/*
 * test_policy - table-driven tests for submit/policy.c: which login or
 * trusted listener may use which sender address. The configuration is
 * built by hand (no config_load); config_domain_hosted() is the real one
 * from config/config.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "common/address.h"
#include "submit/policy.h"

static char *admin_grants[] = { "*@example.org" };
static char *app_grants[] = { "trac@example.org", "noreply@example.net" };
static char *plus_grants[] = { "a+b@example.org" };
static char *outside_grants[] = { "news@lists.example.com" };

#define NOLIMITS	-1, -1, -1, -1	/* the limits' defaults */

static struct sender_grant grants[] = {
	{ "admin@example.org", admin_grants, 1, NOLIMITS },
	{ "app", app_grants, 2, NOLIMITS },
	{ "plus@example.org", plus_grants, 1, NOLIMITS },
	{ "carol@elsewhere.example", outside_grants, 1, NOLIMITS },
};

static struct domain_config domains[] = {
	{ .name = "example.org" },
	{ .name = "example.net" },
	{ .name = "lists.example.com" },
};

static struct config cfg = {
	.hostname = "relay.example.org",
	.domains = domains,
	.ndomains = sizeof(domains) / sizeof(domains[0]),
	.senders = grants,
	.nsenders = sizeof(grants) / sizeof(grants[0]),
};

/*
 * mkaddr - an address from its written form: "<>" for the null sender,
 * "postmaster" for the domainless RCPT form, else a path without its
 * angle brackets (UTF-8 allowed).
 */
static struct address
mkaddr(const char *s)
{
	struct address a;
	const char *err;
	char path[ADDRESS_MAX + 3];
	size_t consumed;

	memset(&a, 0, sizeof(a));
	if (strcmp(s, "<>") == 0)
		return a;
	if (strchr(s, '@') == NULL) {
		snprintf(a.local, sizeof(a.local), "%s", s);
		return a;
	}
	snprintf(path, sizeof(path), "<%s>", s);
	if (address_parse_path(path, strlen(path), false, true, &a, &consumed,
	    &err) == -1)
		fail_msg("test address \"%s\": %s", s, err);
	return a;
}

static const struct {
	const char	*login;
	const char	*addr;
	bool		 want;
} login_cases[] = {
	/* a login in a hosted domain owns itself and its +tag forms */
	{ "alice@example.org", "alice@example.org", true },
	{ "alice@example.org", "ALICE@Example.Org", true },
	{ "Alice@EXAMPLE.org", "alice@example.org", true },
	{ "alice@example.org", "alice@example.org.", true },
	{ "alice@example.org", "alice+news@example.org", true },
	{ "alice@example.org", "Alice+News@example.org", true },
	{ "alice@example.org", "alice+@example.org", true },
	{ "alice@example.org", "alice+a+b@example.org", true },
	{ "alice@example.org", "alicex@example.org", false },
	{ "alice@example.org", "alic@example.org", false },
	{ "alice@example.org", "xalice@example.org", false },
	{ "alice@example.org", "bob@example.org", false },
	{ "alice@example.org", "alice@sub.example.org", false },
	{ "alice@example.org", "alice@example.net", false },
	{ "alice@example.org", "alice@example.org.evil.example", false },
	{ "alice@example.org", "alice@[192.0.2.1]", false },
	{ "alice@example.org", "\"alice\"@example.org", false },
	{ "alice@example.org", "\"alice+x\"@example.org", false },
	{ "alice@example.org", "<>", false },
	{ "alice@example.org", "postmaster", false },
	{ "alice+x@example.org", "alice+x@example.org", true },
	{ "alice+x@example.org", "alice@example.org", false },
	{ "alice+x@example.org", "alice+y@example.org", false },
	{ "\"a b\"@example.org", "\"a b\"@example.org", true },
	{ "\"a b\"@example.org", "\"A B\"@example.org", true },
	{ "\"a b\"@example.org", "a@example.org", false },
	{ "pel\xc3\xa9@example.org", "pel\xc3\xa9@example.org", true },
	{ "pel\xc3\xa9@example.org", "pel\xc3\xa9+x@example.org", true },
	{ "pel\xc3\xa9@example.org", "pele@example.org", false },
	/* a login outside the hosted domains owns only its grants */
	{ "carol@elsewhere.example", "carol@elsewhere.example", false },
	{ "carol@elsewhere.example", "news@lists.example.com", true },
	{ "carol@elsewhere.example", "news+x@lists.example.com", true },
	{ "carol@elsewhere.example", "carol@lists.example.com", false },
	{ "mallory@sub.example.org", "mallory@sub.example.org", false },
	{ "alice", "alice@example.org", false },
	{ "", "alice@example.org", false },
	{ "alice@", "alice@example.org", false },
	/* wildcard grant: the whole domain, not its subdomains */
	{ "admin@example.org", "anyone@example.org", true },
	{ "admin@example.org", "ANYONE@EXAMPLE.ORG", true },
	{ "admin@example.org", "\"a b\"@example.org", true },
	{ "admin@example.org", "x+y@example.org", true },
	{ "admin@example.org", "x@sub.example.org", false },
	{ "admin@example.org", "x@example.net", false },
	{ "admin@example.org", "x@notexample.org", false },
	{ "admin@example.org", "<>", false },
	{ "admin@example.org", "postmaster", false },
	{ "ADMIN@Example.ORG", "x@example.org", true },
	/* exact grants for a login that is not an address */
	{ "app", "trac@example.org", true },
	{ "app", "TRAC@EXAMPLE.ORG", true },
	{ "app", "trac+bug123@example.org", true },
	{ "app", "trac.x@example.org", false },
	{ "app", "tra@example.org", false },
	{ "app", "noreply@example.net", true },
	{ "app", "noreply@example.org", false },
	{ "app", "trac@example.net", false },
	{ "app", "\"trac\"@example.org", false },
	{ "app", "<>", false },
	{ "APP", "trac@example.org", true },
	{ "application", "trac@example.org", false },
	{ "ap", "trac@example.org", false },
	/* an exact grant with a '+' is that address only */
	{ "plus@example.org", "a+b@example.org", true },
	{ "plus@example.org", "A+B@example.org", true },
	{ "plus@example.org", "a@example.org", false },
	{ "plus@example.org", "a+b+c@example.org", false },
	{ "plus@example.org", "a+c@example.org", false },
	{ "plus@example.org", "plus+x@example.org", true },
};

/* test_login_owns - every row of login_cases */
static void
test_login_owns(void **state)
{
	struct address a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(login_cases) / sizeof(login_cases[0]); i++) {
		a = mkaddr(login_cases[i].addr);
		if (policy_login_owns(&cfg, login_cases[i].login, &a) !=
		    login_cases[i].want)
			fail_msg("login case %zu: %s as <%s>: got %d, want %d",
			    i, login_cases[i].login, login_cases[i].addr,
			    !login_cases[i].want, login_cases[i].want);
	}
	a = mkaddr("alice@example.org");
	assert_false(policy_login_owns(&cfg, NULL, &a));
}

/* test_no_grants - a configuration without domains or grants */
static void
test_no_grants(void **state)
{
	struct config empty;
	struct address a = mkaddr("alice@example.org");

	(void)state;
	memset(&empty, 0, sizeof(empty));
	assert_false(policy_login_owns(&empty, "alice@example.org", &a));
	assert_false(policy_login_owns(&empty, "app", &a));
}

static const struct {
	const char	*pattern;
	const char	*addr;
	bool		 want;
} pattern_cases[] = {
	{ "user@dom.example", "user@dom.example", true },
	{ "user@dom.example", "USER@DOM.EXAMPLE", true },
	{ "user@dom.example", "user+tag@dom.example", true },
	{ "user@dom.example", "user@other.example", false },
	{ "user@dom.example", "user@sub.dom.example", false },
	{ "user@dom.example", "other@dom.example", false },
	{ "user@dom.example", "<>", false },
	{ "user@dom.example", "postmaster", false },
	{ "*@dom.example", "anyone@dom.example", true },
	{ "*@DOM.example", "anyone@dom.example", true },
	{ "*@dom.example", "anyone@sub.dom.example", false },
	{ "*@dom.example", "anyone@xdom.example", false },
	{ "*@dom.example", "\"q q\"@dom.example", true },
	{ "*@dom.example", "<>", false },
	{ "*@[192.0.2.1]", "a@[192.0.2.1]", true },
	{ "*x@dom.example", "ax@dom.example", false },
	{ "a@dom.example", "b@dom.example", false },
	{ "a@dom.example", "a@dom.example", true },
	{ "*@dom.example", "*@dom.example", true },
	{ "dom.example", "user@dom.example", false },
	{ "@dom.example", "user@dom.example", false },
	{ "user@", "user@dom.example", false },
	{ "", "user@dom.example", false },
	{ "postmaster", "postmaster", false },
};

/* test_pattern_matches - every row of pattern_cases */
static void
test_pattern_matches(void **state)
{
	struct address a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(pattern_cases) / sizeof(pattern_cases[0]);
	    i++) {
		a = mkaddr(pattern_cases[i].addr);
		if (policy_pattern_matches(pattern_cases[i].pattern, &a) !=
		    pattern_cases[i].want)
			fail_msg("pattern case %zu: %s vs <%s>: got %d", i,
			    pattern_cases[i].pattern, pattern_cases[i].addr,
			    !pattern_cases[i].want);
	}
	a = mkaddr("user@dom.example");
	assert_false(policy_pattern_matches(NULL, &a));
}

static char *trusted_senders[] = { "trac@example.org", "*@apps.example.org" };

/* test_listener_owns - trusted listeners and their senders list */
static void
test_listener_owns(void **state)
{
	static const struct {
		const char	*addr;
		bool		 want;
	} cases[] = {
		{ "trac@example.org", true },
		{ "Trac@Example.org", true },
		{ "trac+x@example.org", true },
		{ "alice@example.org", false },
		{ "cron@apps.example.org", true },
		{ "cron@x.apps.example.org", false },
		{ "<>", false },
		{ "postmaster", false },
	};
	struct listen_config trusted = {
		.address = "127.0.0.1",
		.port = 2525,
		.tls = LISTEN_TLS_NONE,
		.trusted = true,
		.senders = trusted_senders,
		.nsenders = 2,
	};
	struct listen_config open = trusted, empty = trusted;
	struct address a;
	size_t i;

	(void)state;
	open.trusted = false;
	empty.senders = NULL;
	empty.nsenders = 0;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		a = mkaddr(cases[i].addr);
		if (policy_listener_owns(&trusted, &a) != cases[i].want)
			fail_msg("listener case %zu <%s>: got %d", i,
			    cases[i].addr, !cases[i].want);
		/* a listener that is not trusted owns nothing */
		if (policy_listener_owns(&open, &a))
			fail_msg("untrusted listener owns <%s>",
			    cases[i].addr);
		if (policy_listener_owns(&empty, &a))
			fail_msg("empty senders list owns <%s>",
			    cases[i].addr);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_owns),
		cmocka_unit_test(test_no_grants),
		cmocka_unit_test(test_pattern_matches),
		cmocka_unit_test(test_listener_owns),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
