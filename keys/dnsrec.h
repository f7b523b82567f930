/*
 * dnsrec - the DNS records a hosted domain should publish (DKIM, SPF,
 * DMARC) and whether a published set matches them: one set of rules for
 * `postern keys dns [--check]` (keys/keycmd.c), the daemon's drift watch
 * (keys/dnswatch.c) and the rotation check (keys/rotate.c), so the
 * command and the daemon never disagree.
 *
 * What should be published:
 *  - DKIM: at SELECTOR._domainkey.DOMAIN, keyfile_txt() of the selector's
 *    key (keys/keyfile.h).
 *  - SPF: at DOMAIN, dnsrec_spf(): "v=spf1", the relay's public addresses
 *    (relay.addresses as ip4:/ip6:) or else "a:HOSTNAME", the smarthost
 *    provider's mechanism (relay.smarthost.spf) in smarthost mode, "-all".
 *  - DMARC: at _dmarc.DOMAIN, dnsrec_dmarc(): "v=DMARC1; p=none;
 *    rua=mailto:dmarc-reports@DOMAIN" (a starting point; the admin is
 *    meant to tighten it).
 *
 * What matches (the judges; published values are untrusted DNS text, only
 * read, never beyond their NUL):
 *  - DKIM (dnsrec_dkim_judge): the name has at least one TXT record and
 *    every one carries exactly the selector's key (keyfile_txt_same: same
 *    k= and p=, whitespace and tag order aside). A second record beside
 *    it is a mismatch: verifiers may pick either (RFC 6376 3.6.2.2).
 *  - SPF (dnsrec_spf_judge): the domain has exactly one TXT record that
 *    starts with "v=spf1" (RFC 7208 4.5: none is no SPF, two are a
 *    permanent error), and it authorizes every mechanism of the
 *    suggestion except its "all": evaluated left to right as a receiver
 *    would for our sender, the first term that covers the mechanism
 *    decides, and it must have the pass qualifier ('+' or none). A term
 *    covers ours when it is the same text (any case), an ip4:/ip6: range
 *    holding our address, or "all". A record may authorize more than ours
 *    (other hosts, includes); ours reached only through an include,
 *    redirect= or a host's A record cannot be seen without more lookups
 *    and counts as not authorized: publish our mechanisms literally.
 *  - DMARC (dnsrec_dmarc_judge): _dmarc.DOMAIN has exactly one TXT
 *    record starting with "v=DMARC1" (then ';', a blank or its end; two
 *    make receivers apply none, RFC 7489 6.6.3) with a p= tag of none,
 *    quarantine or reject. Any valid policy matches: p=reject the admin
 *    chose is not a drift, a missing or broken record is.
 * An answer that is a temporary failure (DNS_TEMPFAIL) is judged
 * DNSREC_TEMPFAIL, never a mismatch; NXDOMAIN and NODATA are MISSING.
 *
 * Memory: the suggestions are newly allocated (caller frees); a result
 * holds no allocation (published points into the caller's txts). Nothing
 * here logs, blocks or fails except out of memory (aborts, alloc.h).
 */
#ifndef POSTERN_DNSREC_H
#define POSTERN_DNSREC_H

#include <stddef.h>

#include "common/dns.h"
#include "config/config.h"

#define DNSREC_WHY_MAX	512

enum dnsrec_verdict {
	DNSREC_OK,
	DNSREC_MISSING,		/* no such name, no record, or none of
				   the kind (no v=spf1, no v=DMARC1) */
	DNSREC_DIFFERENT,	/* published, but not what it should be */
	DNSREC_TEMPFAIL,	/* the DNS did not say: not a verdict */
};

struct dnsrec_result {
	enum dnsrec_verdict	 verdict;
	const char		*published;	/* the record judged (one of
						   the txts), or NULL */
	char			 why[DNSREC_WHY_MAX];	/* what is wrong,
						   "" when ok */
};

/* dnsrec_spf - the SPF record `keys dns` suggests (see the top) */
char	*dnsrec_spf(const struct config *);

/* dnsrec_dmarc_name - "_dmarc.DOMAIN"; dnsrec_dmarc - the suggested
   DMARC record */
char	*dnsrec_dmarc_name(const char *domain);
char	*dnsrec_dmarc(const char *domain);

/*
 * The judges: st and txts[0..n) are a TXT answer as common/dns.h gives
 * it (n is 0 unless st is DNS_OK); want is the record that should be
 * published (keyfile_txt's, dnsrec_spf's). Fill *r and return its
 * verdict.
 */
enum dnsrec_verdict dnsrec_dkim_judge(enum dns_status st, char *const *txts,
	    size_t n, const char *want, struct dnsrec_result *r);
enum dnsrec_verdict dnsrec_spf_judge(enum dns_status st, char *const *txts,
	    size_t n, const char *want, struct dnsrec_result *r);
enum dnsrec_verdict dnsrec_dmarc_judge(enum dns_status st, char *const *txts,
	    size_t n, struct dnsrec_result *r);

/* dnsrec_verdict_name - "ok", "missing", "different", "tempfail" */
const char *dnsrec_verdict_name(enum dnsrec_verdict);

#endif
