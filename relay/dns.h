/*
 * dns - a narrow wrapper over libunbound: TXT lookups, synchronous for
 * the CLI tools and asynchronous on the libevent loop for the daemon.
 *
 * dns_new() builds a resolver that forwards every query to the configured
 * address ("IP" or "IP@PORT", as config's resolver setting) or, with NULL,
 * to the servers in /etc/resolv.conf. Loopback forwarders are allowed.
 * Names under "test." (RFC 6761) go to those servers too, instead of
 * libunbound's built-in NXDOMAIN, so test setups can serve them.
 * DNSSEC is not validated yet (no trust anchor is loaded).
 * XXX validation belongs here once DANE is wanted.
 *
 * Every answer is classified exactly once as enum dns_status: DNS_OK (at
 * least one usable record), DNS_NXDOMAIN (the name does not exist),
 * DNS_NODATA (it exists, without records of that type), DNS_TEMPFAIL
 * (SERVFAIL, REFUSED, timeout, a local library failure, or an answer
 * whose records are all malformed).
 *
 * TXT values: each record's character-strings are concatenated into one
 * value (RFC 7208 section 3.3, RFC 6376 section 3.6.2.2). DNS data is
 * untrusted: dns_txt_parse() never reads outside the rdata it is given,
 * and a record containing a NUL byte is dropped (no SPF, DKIM or DMARC
 * record may contain one; C strings could not carry it).
 *
 * Memory: dns_new() returns an object the caller frees with dns_free().
 * Out of memory aborts (common/alloc.h). Nothing here calls exit().
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stddef.h>

struct event_base;
struct dns;

enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,
	DNS_NODATA,
	DNS_TEMPFAIL,
};

/*
 * dns_txt_cb - an asynchronous TXT answer. Runs on the event loop thread,
 * from the event dns_attach() registered. txts[0..n-1] (n is 0 unless
 * status is DNS_OK) belong to the dns module and are freed when the
 * callback returns: copy what you keep. The callback may start new
 * lookups and cancel others, but must not call dns_free().
 */
typedef void (*dns_txt_cb)(void *arg, enum dns_status status, char **txts,
    size_t n);

/*
 * dns_new - a resolver forwarding to resolver ("IP" or "IP@PORT"; NULL:
 * /etc/resolv.conf). NULL with *err (newly allocated, caller frees) if the
 * address is not valid or resolv.conf cannot be read.
 */
struct dns	*dns_new(const char *resolver, char **err);

/*
 * dns_free - cancel every pending lookup (their callbacks never run),
 * remove the loop event and free everything. NULL is a no-op.
 */
void		 dns_free(struct dns *);

/*
 * dns_txt_sync - look up name's TXT records, blocking (CLI tools only,
 * never on the daemon's loop). Always sets *st; on DNS_OK *txts is a newly
 * allocated array of *n >= 1 values (free with dns_txts_free), otherwise
 * *txts is NULL and *n 0. Returns 0 when the DNS answered (whatever *st
 * says), -1 on a local library failure (then *st is DNS_TEMPFAIL).
 */
int	dns_txt_sync(struct dns *, const char *name, char ***txts, size_t *n,
	    enum dns_status *st);

/*
 * dns_attach - run asynchronous answers on base's loop: an event on
 * libunbound's descriptor calls ub_process(). Call once, before
 * dns_txt(). Returns 0, or -1 (event not created or added).
 */
int	dns_attach(struct dns *, struct event_base *);

/*
 * dns_txt - start an asynchronous TXT lookup of name; cb(arg, ...) runs
 * later on the loop, never from inside this call. Returns a lookup id
 * (> 0, for dns_cancel) or -1 if the lookup could not be started (not
 * attached, or libunbound refused it); then cb never runs. As lesson 7
 * of STYLE.md says, pass an id to look up as arg, not a pointer to an
 * object that may go away.
 */
int	dns_txt(struct dns *, const char *name, dns_txt_cb cb, void *arg);

/*
 * dns_cancel - cancel the pending lookup id; its callback never runs.
 * An unknown or finished id is ignored.
 */
void	dns_cancel(struct dns *, int id);

/*
 * dns_txt_parse - the pure part: turn one TXT record's rdata (len bytes,
 * a sequence of length-prefixed character-strings) into one concatenated,
 * NUL-terminated value in *out (newly allocated, caller frees). Returns 0,
 * or -1 with *out NULL if the rdata is empty (RFC 1035 requires at least
 * one string), a length runs past the end, or a string contains a NUL.
 */
int	dns_txt_parse(const unsigned char *rdata, size_t len, char **out);

/* dns_txts_free - free n values and the array; NULL is a no-op */
void	dns_txts_free(char **txts, size_t n);

/* dns_status_name - "ok", "NXDOMAIN", "no data", "temporary failure" */
const char	*dns_status_name(enum dns_status);

#endif /* POSTERN_DNS_H */
