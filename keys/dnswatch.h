/*
 * dnswatch - the daemon's DNS drift watch: each hosted domain's published
 * SPF, DKIM and DMARC records compared with what `postern keys dns`
 * prints, so an admin learns that a DNS edit broke SPF, or that a
 * selector's key was removed, before receivers start failing the mail.
 *
 * Every interval seconds (dkim_check_interval, the rotation check's),
 * and once right after start, it looks up asynchronously on the loop,
 * per domain: the domain's TXT records (SPF), _dmarc.DOMAIN (DMARC) and
 * SELECTOR._domainkey.DOMAIN of every active and retiring selector
 * (keyring_published; pending ones are keys/rotate.c's business), and
 * judges each answer with keys/dnsrec.h's rules, the ones `keys dns
 * --check` prints. For each record it remembers ok, bad or not known yet:
 *
 *  - Gauge postern_dns_record_ok{domain,record} (common/metrics.h),
 *    record "spf", "dkim" or "dmarc": 1 matches, 0 drifted. "dkim" is
 *    one series per domain, 0 when any of its active or retiring
 *    selectors' records is bad, so the label set stays the same across
 *    rotations; the log line names the selector. A series appears with
 *    the first answer that is not a temporary failure.
 *  - Logs: one warning when a record goes bad, naming what is wrong, the
 *    published value and what `postern keys dns DOMAIN` prints; again
 *    only if the reason changes while it stays bad. One info line when
 *    it is good again. The first check after start warns once about
 *    every bad record (news to the admin) and says nothing about good
 *    ones (the gauge shows them).
 *  - A temporary DNS failure (SERVFAIL, REFUSED, timeout) is not a drift:
 *    the record keeps its previous state and gauge value, and only a
 *    debug line is logged. NXDOMAIN and NODATA are: the record is gone.
 *
 * In relay.mode "directory" (the development instance) nothing leaves
 * the host and no receiver reads the records: the watch is off, and
 * says so once at start.
 *
 * After a reload, dnswatch_start(..., prev) takes over prev's records
 * and what it knew of them, so a record that stays bad is not reported
 * again; records of domains and selectors no longer hosted are dropped,
 * with their series.
 *
 * Lookups in flight when dnswatch_free() runs are cancelled; their
 * callbacks never run. Loop thread only; nothing here blocks.
 */
#ifndef POSTERN_DNSWATCH_H
#define POSTERN_DNSWATCH_H

struct event_base;
struct dns;
struct keyring;
struct dnswatch;

/*
 * dnswatch_start - check now and then every interval seconds. dns must
 * be attached to base (dns_attach); kr and dns must outlive the watcher.
 * prev (NULL, or the watcher this one replaces) is left without records
 * and lookups: free it after. Returns NULL if the timer cannot be
 * created (prev untouched).
 */
struct dnswatch	*dnswatch_start(struct event_base *base, struct keyring *kr,
		    struct dns *dns, unsigned interval, struct dnswatch *prev);

/* dnswatch_free - stop watching; the gauge keeps its series. NULL is a
   no-op */
void		 dnswatch_free(struct dnswatch *);

#endif
