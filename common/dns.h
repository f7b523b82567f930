/*
 * dns - a narrow wrapper over libunbound: TXT lookups, synchronous for
 * the CLI tools and asynchronous on the libevent loop for the daemon, and
 * the relay's asynchronous MX and address (A/AAAA) lookups.
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
 * whose records are all malformed), and for MX only DNS_NULL_MX (RFC 7505).
 *
 * TXT values: each record's character-strings are concatenated into one
 * value (RFC 7208 section 3.3, RFC 6376 section 3.6.2.2). DNS data is
 * untrusted: dns_txt_parse() never reads outside the rdata it is given,
 * and a record containing a NUL byte is dropped (no SPF, DKIM or DMARC
 * record may contain one; C strings could not carry it).
 *
 * MX (RFC 5321 section 5.1, RFC 7505): dns_mx() hands back the hosts to
 * try, best first; with no MX record, the domain itself as an implicit
 * MX. Host names from DNS are untrusted: dns_mx_parse() accepts only
 * letters, digits, '-' and '_' in labels, so a name is safe to log and
 * to pass back to dns_addrs(). The caller then looks up each host's
 * addresses with dns_addrs(), which never answers with a name.
 *
 * Asynchronous lookups (dns_txt, dns_mx, dns_addrs) share one id space:
 * each returns an id > 0 of ours, not libunbound's, for dns_cancel(). A
 * lookup calls back exactly once, from the loop, unless it is cancelled
 * or the resolver freed first; then never.
 *
 * Memory: dns_new() returns an object the caller frees with dns_free().
 * Out of memory aborts (common/alloc.h). Nothing here calls exit().
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct dns;

enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,
	DNS_NODATA,
	DNS_TEMPFAIL,
	DNS_NULL_MX,	/* a null MX is published: the domain takes no mail */
};

/* Address families for dns_addrs(), a bitmask. */
#define DNS_INET4	0x01	/* A records */
#define DNS_INET6	0x02	/* AAAA records */

/*
 * One mail exchanger. name is lowercase, without the trailing dot, and
 * holds only letters, digits, '-', '_' and the dots between labels.
 * implicit: there was no MX record, name is the domain itself (pref 0).
 */
struct dns_mx {
	char		*name;
	unsigned	 pref;
	bool		 implicit;
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
 * dns_mx_cb - an asynchronous MX answer. Runs on the event loop thread,
 * from the event dns_attach() registered. hosts[0..n-1] (n is 0 unless
 * status is DNS_OK) are in the order to try them and belong to the dns
 * module, freed when the callback returns: copy what you keep. The
 * callback may start new lookups and cancel others, but must not call
 * dns_free().
 */
typedef void (*dns_mx_cb)(void *arg, enum dns_status status,
    const struct dns_mx *hosts, size_t n);

/*
 * dns_addrs_cb - an asynchronous address answer. Same loop context and
 * rules as dns_mx_cb. addrs[0..n-1] (n is 0 unless status is DNS_OK) are
 * struct sockaddr_in6 or sockaddr_in by ss_family, with port 0 (the
 * caller sets it); they belong to the dns module until the callback
 * returns.
 */
typedef void (*dns_addrs_cb)(void *arg, enum dns_status status,
    const struct sockaddr_storage *addrs, size_t n);

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
 * libunbound's descriptor calls ub_process(). Call once, before any
 * asynchronous lookup; base must outlive the resolver (dns_free() first,
 * then event_base_free()). Returns 0, or -1 (event not created or added).
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
 * dns_mx - start an asynchronous MX lookup of domain (RFC 5321 section
 * 5.1); cb(arg, ...) runs later on the loop, never from inside this call.
 * domain must be an ASCII name (A-labels): labels of 1 to 63 letters,
 * digits, '-' or '_', at most 253 characters, one trailing dot allowed.
 * Returns a lookup id (> 0, for dns_cancel) or -1 if the lookup could not
 * be started (not attached, domain not such a name, or libunbound refused
 * it); then cb never runs. The answer is one of:
 *  - DNS_OK with the MX hosts: by preference ascending, hosts of equal
 *    preference in random order (RAND_bytes; should it fail, they keep
 *    the received order and a warning is logged). A target "." among
 *    other MX records is dropped, and a host listed twice is kept once,
 *    at its best preference. Malformed records are dropped.
 *  - DNS_OK with one host, the domain itself (lowercase, without a
 *    trailing dot), pref 0 and implicit set: the domain exists but has no
 *    MX record, so its own addresses are the mail exchanger.
 *  - DNS_NULL_MX, n 0: every well-formed record has target "." (RFC 7505:
 *    exactly one, "MX 0 ."), and none was malformed. The domain accepts
 *    no mail: a permanent failure.
 *  - DNS_NXDOMAIN: the domain does not exist.
 *  - DNS_TEMPFAIL: SERVFAIL, REFUSED, timeout, a library failure, every
 *    record malformed, or only "." beside malformed records.
 * DNS_NODATA is never the answer (it becomes the implicit MX).
 */
int	dns_mx(struct dns *, const char *domain, dns_mx_cb cb, void *arg);

/*
 * dns_addrs - start an asynchronous lookup of host's addresses: AAAA if
 * families has DNS_INET6, A if it has DNS_INET4, both queries at once.
 * cb(arg, ...) runs once, when both have answered, on the loop and never
 * from inside this call. The addresses are IPv6 first, then IPv4, each
 * family in the order received; malformed records are dropped. Status:
 *  - DNS_OK: at least one address;
 *  - DNS_NXDOMAIN: no address and a query said the name does not exist
 *    (it then does not exist for either type, RFC 8020);
 *  - DNS_TEMPFAIL: no address and a query failed temporarily (an address
 *    may exist behind the failure, so this is never NODATA);
 *  - DNS_NODATA: the name exists without addresses of those families.
 * If host is an IPv4 or IPv6 address literal (inet_pton; no brackets, no
 * "IPv6:" prefix, no zone index), no DNS query is made: the answer is
 * that address, or DNS_NODATA if its family is not wanted, delivered
 * from a zero-timeout event on the loop.
 * Any other host must be a name as dns_mx() takes.
 * Returns a lookup id (> 0, for dns_cancel) or -1 if nothing could be
 * started (not attached, families has no known bit, host neither a
 * literal nor such a name, or libunbound refused it); then cb never runs.
 */
int	dns_addrs(struct dns *, const char *host, int families,
	    dns_addrs_cb cb, void *arg);

/*
 * dns_cancel - cancel the pending lookup id (from dns_txt, dns_mx or
 * dns_addrs, with every libunbound query it owns); its callback never
 * runs. An unknown or finished id is ignored, and so is the id of the
 * lookup whose callback is running.
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

/*
 * dns_mx_parse - the pure part: one MX record's rdata (len bytes: a 16-bit
 * preference in network order, then an uncompressed wire-format domain
 * name that ends exactly at len, as libunbound hands it over) into *pref
 * and *name (newly allocated, caller frees): the dotted name, lowercase,
 * without the trailing dot, or "." for the root (a null MX target).
 * Returns 0, or -1 with *name NULL and *pref 0 if the rdata is shorter
 * than 3 bytes, a label is longer than 63 bytes (which also refuses
 * compression pointers, 0xC0, and the other label types), the name runs
 * past the end, is longer than 255 bytes on the wire, leaves bytes after
 * its end, or a label holds anything but letters, digits, '-' and '_'.
 * Never reads outside rdata[0..len).
 */
int	dns_mx_parse(const unsigned char *rdata, size_t len, unsigned *pref,
	    char **name);

/* dns_txts_free - free n values and the array; NULL is a no-op */
void	dns_txts_free(char **txts, size_t n);

/*
 * dns_status_name - "ok", "NXDOMAIN", "no data", "temporary failure",
 * "null MX" (static strings)
 */
const char	*dns_status_name(enum dns_status);

#endif /* POSTERN_DNS_H */
