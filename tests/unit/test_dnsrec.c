/*
 * test_dnsrec - the rules that say whether published DKIM, SPF and DMARC
 * records match what `postern keys dns` prints (keys/dnsrec.h), as
 * got/want tables: each case is a TXT answer (status and values) and the
 * verdict, with a piece of the reason. Also the suggestions themselves
 * (dnsrec_spf from a configuration built here, dnsrec_dmarc).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keys/dnsrec.h"

#define MAXTXT	4

struct judge_case {
	const char		*what;
	enum dns_status		 st;
	const char		*txts[MAXTXT];	/* NULL-terminated */
	enum dnsrec_verdict	 want;
	const char		*why;		/* part of r.why, or NULL */
	int			 published;	/* index judged, -1: none */
};

/* judge_table - run one judge over a table; kind 'k', 's' or 'd' */
static void
judge_table(const struct judge_case *cases, size_t ncases, char kind,
    const char *want)
{
	struct dnsrec_result r;
	enum dnsrec_verdict got;
	char *txts[MAXTXT];
	size_t i, n;

	for (i = 0; i < ncases; i++) {
		const struct judge_case *c = &cases[i];

		for (n = 0; n < MAXTXT && c->txts[n] != NULL; n++)
			txts[n] = (char *)c->txts[n];
		if (kind == 'k')
			got = dnsrec_dkim_judge(c->st, txts, n, want, &r);
		else if (kind == 's')
			got = dnsrec_spf_judge(c->st, txts, n, want, &r);
		else
			got = dnsrec_dmarc_judge(c->st, txts, n, &r);
		if (got != c->want || r.verdict != got ||
		    (c->why != NULL && strstr(r.why, c->why) == NULL) ||
		    (c->why == NULL && got == DNSREC_OK && r.why[0] != '\0') ||
		    (c->published == -1 ? r.published != NULL :
		    r.published != txts[c->published]))
			fail_msg("%s: got %s (%s), want %s (%s), published %s",
			    c->what, dnsrec_verdict_name(got), r.why,
			    dnsrec_verdict_name(c->want), c->why ? c->why : "",
			    r.published ? r.published : "(none)");
	}
}

#define KEY	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static const struct judge_case dkim_cases[] = {
	{ "exact", DNS_OK, { KEY }, DNSREC_OK, NULL, 0 },
	{ "blanks and tag order", DNS_OK,
	  { "p=11qYAYKxCrfVS/7TyWQHOg7h cvPapiMlrwIaaPcHURo= ; k=ed25519" },
	  DNSREC_OK, NULL, 0 },
	{ "twice the same", DNS_OK, { KEY, KEY }, DNSREC_OK, NULL, 0 },
	{ "other key", DNS_OK,
	  { "v=DKIM1; k=ed25519; p=AAAAAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" },
	  DNSREC_DIFFERENT, "a different key", 0 },
	{ "other key type", DNS_OK,
	  { "v=DKIM1; k=rsa; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" },
	  DNSREC_DIFFERENT, "a different key", 0 },
	{ "revoked (empty p=)", DNS_OK, { "v=DKIM1; k=ed25519; p=" },
	  DNSREC_DIFFERENT, "a different key", 0 },
	{ "a second record beside it", DNS_OK, { KEY, "v=spf1 -all" },
	  DNSREC_DIFFERENT, "2 records published", 1 },
	{ "removed: NXDOMAIN", DNS_NXDOMAIN, { NULL }, DNSREC_MISSING,
	  "not published", -1 },
	{ "removed: NODATA", DNS_NODATA, { NULL }, DNSREC_MISSING,
	  "not published", -1 },
	{ "SERVFAIL or timeout", DNS_TEMPFAIL, { NULL }, DNSREC_TEMPFAIL,
	  "temporary", -1 },
};

/* test_dkim - every record at the name is exactly the key */
static void
test_dkim(void **state)
{
	(void)state;
	judge_table(dkim_cases, sizeof(dkim_cases) / sizeof(dkim_cases[0]),
	    'k', KEY);
}

#define SPF	"v=spf1 ip4:203.0.113.7 ip6:2001:db8::7 include:_spf.provider.example -all"

static const struct judge_case spf_cases[] = {
	{ "exact", DNS_OK, { SPF }, DNSREC_OK, NULL, 0 },
	{ "case, blanks, softfail, more hosts", DNS_OK,
	  { "V=SPF1  mx +IP4:203.0.113.7\tip6:2001:DB8::7 "
	    "include:_SPF.provider.example include:other.example ~all" },
	  DNSREC_OK, NULL, 0 },
	{ "other TXT records beside it", DNS_OK,
	  { "google-site-verification=x", SPF, "v=spf10 -all" },
	  DNSREC_OK, NULL, 1 },
	{ "ranges holding our addresses", DNS_OK,
	  { "v=spf1 ip4:203.0.113.0/24 ip6:2001:db8::/32 "
	    "include:_spf.provider.example -all" }, DNSREC_OK, NULL, 0 },
	{ "an odd prefix length holding it", DNS_OK,
	  { "v=spf1 ip4:203.0.113.6/31 ip6:2001:db8::7/128 "
	    "include:_spf.provider.example -all" }, DNSREC_OK, NULL, 0 },
	{ "+all authorizes anything", DNS_OK, { "v=spf1 +all" },
	  DNSREC_OK, NULL, 0 },
	{ "a range beside ours", DNS_OK,
	  { "v=spf1 ip4:203.0.112.0/24 ip6:2001:db8::7 "
	    "include:_spf.provider.example -all" },
	  DNSREC_DIFFERENT, "does not authorize ip4:203.0.113.7", 0 },
	{ "an odd prefix length beside it", DNS_OK,
	  { "v=spf1 ip4:203.0.113.4/31 ip6:2001:db8::7 "
	    "include:_spf.provider.example -all" },
	  DNSREC_DIFFERENT, "does not authorize ip4:203.0.113.7", 0 },
	{ "the address lost", DNS_OK,
	  { "v=spf1 mx ip6:2001:db8::7 include:_spf.provider.example -all" },
	  DNSREC_DIFFERENT, "does not authorize ip4:203.0.113.7", 0 },
	{ "the include lost", DNS_OK,
	  { "v=spf1 ip4:203.0.113.7 ip6:2001:db8::7 -all" },
	  DNSREC_DIFFERENT, "does not authorize include:_spf.provider.example",
	  0 },
	{ "ours after -all", DNS_OK,
	  { "v=spf1 -all ip4:203.0.113.7 ip6:2001:db8::7 "
	    "include:_spf.provider.example" },
	  DNSREC_DIFFERENT, "does not authorize ip4:203.0.113.7", 0 },
	{ "ours failed first", DNS_OK,
	  { "v=spf1 -ip4:203.0.113.7 ip4:203.0.113.7 ip6:2001:db8::7 "
	    "include:_spf.provider.example -all" },
	  DNSREC_DIFFERENT, "does not authorize ip4:203.0.113.7", 0 },
	{ "ours only softfailed", DNS_OK,
	  { "v=spf1 ~ip4:203.0.113.7 ip6:2001:db8::7 "
	    "include:_spf.provider.example -all" },
	  DNSREC_DIFFERENT, "does not authorize ip4:203.0.113.7", 0 },
	{ "a longer address that starts like ours", DNS_OK,
	  { "v=spf1 ip4:203.0.113.70 ip6:2001:db8::7 "
	    "include:_spf.provider.example -all" },
	  DNSREC_DIFFERENT, "does not authorize ip4:203.0.113.7", 0 },
	{ "garbage ranges", DNS_OK,
	  { "v=spf1 ip4:203.0.113.7/ ip4:203.0.113.7/99 ip4:x/8 ip4: "
	    "ip6:2001:db8::7 include:_spf.provider.example -all" },
	  DNSREC_DIFFERENT, "does not authorize ip4:203.0.113.7", 0 },
	{ "two records", DNS_OK, { SPF, "v=spf1 mx -all" },
	  DNSREC_DIFFERENT, "2 v=spf1 records", 0 },
	{ "two records after another TXT", DNS_OK,
	  { "site-verification=x", "v=spf1 mx -all", SPF },
	  DNSREC_DIFFERENT, "2 v=spf1 records", 1 },
	{ "no v=spf1 record", DNS_OK, { "v=spf10 -all", "hello" },
	  DNSREC_MISSING, "no v=spf1 record", -1 },
	{ "no TXT at all", DNS_NODATA, { NULL }, DNSREC_MISSING,
	  "not published", -1 },
	{ "temporary failure", DNS_TEMPFAIL, { NULL }, DNSREC_TEMPFAIL,
	  NULL, -1 },
};

/* test_spf - one v=spf1 record that authorizes our mechanisms */
static void
test_spf(void **state)
{
	(void)state;
	judge_table(spf_cases, sizeof(spf_cases) / sizeof(spf_cases[0]),
	    's', SPF);
}

static const struct judge_case dmarc_cases[] = {
	{ "the suggestion", DNS_OK,
	  { "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.org" },
	  DNSREC_OK, NULL, 0 },
	{ "tightened, blanks", DNS_OK,
	  { "v=DMARC1 ;  p = Reject ; pct=100", "unrelated" },
	  DNSREC_OK, NULL, 0 },
	{ "quarantine, no ';' at the end", DNS_OK,
	  { "v=DMARC1;p=quarantine" }, DNSREC_OK, NULL, 0 },
	{ "policy missing", DNS_OK,
	  { "v=DMARC1; rua=mailto:x@example.org" },
	  DNSREC_DIFFERENT, "no valid p= policy", 0 },
	{ "policy misspelt", DNS_OK, { "v=DMARC1; p=rejct" },
	  DNSREC_DIFFERENT, "no valid p= policy", 0 },
	{ "only sp=", DNS_OK, { "v=DMARC1; sp=reject" },
	  DNSREC_DIFFERENT, "no valid p= policy", 0 },
	{ "two records", DNS_OK,
	  { "v=DMARC1; p=none", "v=DMARC1; p=reject" },
	  DNSREC_DIFFERENT, "2 v=DMARC1 records", 0 },
	{ "two records after another TXT", DNS_OK,
	  { "x", "v=DMARC1; p=none", "v=DMARC1; p=reject" },
	  DNSREC_DIFFERENT, "2 v=DMARC1 records", 1 },
	{ "no v=DMARC1", DNS_OK, { "v=DMARC10; p=none", "p=reject" },
	  DNSREC_MISSING, "no v=DMARC1 record", -1 },
	{ "removed", DNS_NXDOMAIN, { NULL }, DNSREC_MISSING, "NXDOMAIN",
	  -1 },
	{ "temporary failure", DNS_TEMPFAIL, { NULL }, DNSREC_TEMPFAIL,
	  NULL, -1 },
};

/* test_dmarc - one v=DMARC1 record with a valid policy */
static void
test_dmarc(void **state)
{
	(void)state;
	judge_table(dmarc_cases, sizeof(dmarc_cases) /
	    sizeof(dmarc_cases[0]), 'd', NULL);
}

/* test_suggestions - what `keys dns` prints, judged ok by the rules */
static void
test_suggestions(void **state)
{
	static char *addrs[] = { "203.0.113.7", "2001:db8::7" };
	struct config cfg;
	struct dnsrec_result r;
	char *spf, *dmarc, *name;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.hostname = "relay.example.org";
	spf = dnsrec_spf(&cfg);
	assert_string_equal(spf, "v=spf1 a:relay.example.org -all");
	assert_int_equal(dnsrec_spf_judge(DNS_OK, &spf, 1, spf, &r),
	    DNSREC_OK);
	free(spf);

	cfg.relay.addresses = addrs;
	cfg.relay.naddresses = 2;
	cfg.relay.mode = RELAY_SMARTHOST;
	cfg.relay.smarthost.spf = "include:_spf.provider.example";
	spf = dnsrec_spf(&cfg);
	assert_string_equal(spf, SPF);
	free(spf);

	name = dnsrec_dmarc_name("example.org");
	assert_string_equal(name, "_dmarc.example.org");
	dmarc = dnsrec_dmarc("example.org");
	assert_string_equal(dmarc, "v=DMARC1; p=none; "
	    "rua=mailto:dmarc-reports@example.org");
	assert_int_equal(dnsrec_dmarc_judge(DNS_OK, &dmarc, 1, &r),
	    DNSREC_OK);
	free(dmarc);
	free(name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dkim),
		cmocka_unit_test(test_spf),
		cmocka_unit_test(test_dmarc),
		cmocka_unit_test(test_suggestions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
