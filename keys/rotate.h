/*
 * rotate - the daemon's half of DKIM key rotation: switching to a new
 * selector only once DNS serves its key
 *
 * The usual rotation failure is a new selector that signs before its
 * TXT record is visible, so mail fails DKIM for hours. So the daemon
 * never signs with a pending selector (`postern keys rotate` makes them)
 * until it has seen its record: every interval seconds, and once right
 * after start, it re-reads each domain's rotation state
 * (keyring_refresh: new pending selectors are picked up without a
 * restart) and looks up SELECTOR._domainkey.DOMAIN asynchronously on the
 * loop. When every TXT record there is exactly the selector's key
 * (dnsrec_dkim_judge), keyring_promote() makes it active and the old
 * selector of its algorithm retiring, on disk, and it signs from the
 * next message on. Every check is logged: not published yet, a
 * different key published (never switched to), temporary DNS failure
 * (tried again next time), switched.
 *
 * Lookups in flight when rotate_free() runs are cancelled; their
 * callbacks never run. Loop thread only.
 */
#ifndef POSTERN_ROTATE_H
#define POSTERN_ROTATE_H

struct event_base;
struct dns;
struct keyring;
struct rotate;

/*
 * rotate_start - check now and then every interval seconds. dns must be
 * attached to base (dns_attach). kr and dns must outlive the checker.
 * Returns NULL if the timer cannot be created.
 */
struct rotate	*rotate_start(struct event_base *base, struct keyring *kr,
		    struct dns *dns, unsigned interval);

/* rotate_free - stop checking; NULL is a no-op */
void		 rotate_free(struct rotate *);

#endif
