/*
 * dns - a narrow wrapper over libunbound: TXT and TLSA lookups,
 * synchronous for the CLI tools and asynchronous on the libevent loop for
 * the daemon, and the relay's asynchronous MX and address (A/AAAA)
 * lookups; every answer validated with DNSSEC and marked secure,
 * insecure or bogus.
 *
 * dns_new() builds a resolver that forwards every query to the configured
 * address ("IP" or "IP@PORT", as config's resolver setting) or, with NULL,
 * to the servers in /etc/resolv.conf. Loopback forwarders are allowed.
 * Names under "test." (RFC 6761) go to those servers too, instead of
 * libunbound's built-in NXDOMAIN, so test setups can serve them.
 *
 * DNSSEC: libunbound validates every answer itself, from the trust
 * anchor file given to dns_new() (config's dnssec_trust_anchor; Debian's
 * dns-root-data root key, /usr/share/dns/root.key, by default). The file
 * is read once, in dns_new(), with ub_ctx_add_ta_file(): a static anchor,
 * not RFC 5011 tracking (ub_ctx_add_ta_autr), which would write a state
 * file the daemon, unprivileged on a mostly read-only file system, may
 * not write; dns-root-data's updates bring a new root key, read at the
 * next start. The model stays forwarding (ub_ctx_set_fwd), so the server
 * forwarded to must pass DNSSEC records through (answer the DO bit with
 * RRSIG, DNSKEY, DS, NSEC/NSEC3): a recursive resolver that does, or, as
 * the tests use it, an authoritative server for every name asked (NSD
 * serving a signed zone on loopback, its DS in the anchor file). Checked
 * on libunbound 1.17: against NSD, forwarding and a stub zone
 * (ub_ctx_set_stub) give the same answers and the same security, so no
 * second setting for stubs (a stub would follow referrals, which the
 * tests' single-server zones never need). A forwarder that strips the
 * DNSSEC records makes every name under the anchor bogus; under the root
 * key, every name, since even an unsigned zone needs a signed proof.
 * "test." is domain-insecure: it is not in the real root, so under the
 * root anchor its names are insecure, not bogus; an anchor for a name
 * under test. (the tests' own signed zone) still makes that zone secure.
 * With trust_anchor NULL or "" (config's dnssec_validation = false),
 * nothing is validated: every answer is insecure.
 *
 * Every answer also carries its struct dns_sec: DNS_SECURE (validated
 * from the anchor: the records, or the proof that there are none),
 * DNS_INSECURE (no anchor covers the name, or a provably unsigned zone)
 * or DNS_BOGUS (validation failed: bad or missing signatures, expired,
 * a broken chain), with libunbound's reason. A bogus answer is never
 * handed over: its status is DNS_TEMPFAIL with no records, so callers
 * that look only at the status defer as for any failure, and those that
 * must tell the difference (DANE, logs) read sec.level. An NXDOMAIN that
 * is bogus is a bogus answer too, never DNS_NXDOMAIN.
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
 * TLSA (RFC 6698, RFC 7671): dns_tlsa() and dns_tlsa_sync() hand back
 * each record's usage, selector, matching type and data as received;
 * which of them are usable is the caller's decision (RFC 7671 section 4,
 * RFC 7672 section 3.1.3). The name asked is the caller's, e.g.
 * "_25._tcp.mx.example.org".
 *
 * Asynchronous lookups (dns_txt, dns_mx, dns_addrs, dns_tlsa) share one
 * id space: each returns an id > 0 of ours, not libunbound's, for
 * dns_cancel(). A lookup calls back exactly once, from the loop, unless
 * it is cancelled or the resolver freed first; then never.
 *
 * Memory: dns_new() returns an object the caller frees with dns_free().
 * Out of memory aborts (common/alloc.h). Nothing here calls exit().
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct dns;

enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,
	DNS_NODATA,
	DNS_TEMPFAIL,
	DNS_NULL_MX,	/* a null MX is published: the domain takes no mail */
};

/* What DNSSEC validation said of an answer (see above). */
enum dns_security {
	DNS_INSECURE,	/* not validated: no anchor, or an unsigned zone */
	DNS_SECURE,	/* validated from the trust anchor */
	DNS_BOGUS,	/* validation failed: status is DNS_TEMPFAIL */
};

#define DNS_WHY_MAX	256	/* dns_sec.why, with its NUL */

/*
 * The security of one answer. why: for DNS_BOGUS, libunbound's reason
 * (truncated, may quote names from DNS: escape it before logging),
 * otherwise "". An address lookup (two queries) is bogus if either
 * answer is, secure only if every answer is.
 */
struct dns_sec {
	enum dns_security	 level;
	char			 why[DNS_WHY_MAX];
};

/*
 * One TLSA record (RFC 6698 section 2.1), as received: data[0..len) is
 * the certificate association data (len >= 1).
 */
struct dns_tlsa {
	uint8_t		 usage;		/* 0..3: PKIX-TA .. DANE-EE */
	uint8_t		 selector;	/* 0 full certificate, 1 SPKI */
	uint8_t		 mtype;		/* 0 exact, 1 SHA-256, 2 SHA-512 */
	unsigned char	*data;
	size_t		 len;
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
 * status is DNS_OK) and sec (never NULL) belong to the dns module and
 * are freed when the callback returns: copy what you keep. The callback
 * may start new lookups and cancel others, but must not call dns_free().
 */
typedef void (*dns_txt_cb)(void *arg, enum dns_status status, char **txts,
    size_t n, const struct dns_sec *sec);

/*
 * dns_mx_cb - an asynchronous MX answer. Runs on the event loop thread,
 * from the event dns_attach() registered. hosts[0..n-1] (n is 0 unless
 * status is DNS_OK) are in the order to try them and, with sec (never
 * NULL), belong to the dns module, freed when the callback returns: copy
 * what you keep. The
 * callback may start new lookups and cancel others, but must not call
 * dns_free().
 */
typedef void (*dns_mx_cb)(void *arg, enum dns_status status,
    const struct dns_mx *hosts, size_t n, const struct dns_sec *sec);

/*
 * dns_addrs_cb - an asynchronous address answer. Same loop context and
 * rules as dns_mx_cb. addrs[0..n-1] (n is 0 unless status is DNS_OK) are
 * struct sockaddr_in6 or sockaddr_in by ss_family, with port 0 (the
 * caller sets it); they and sec (never NULL) belong to the dns module
 * until the callback returns.
 */
typedef void (*dns_addrs_cb)(void *arg, enum dns_status status,
    const struct sockaddr_storage *addrs, size_t n,
    const struct dns_sec *sec);

/*
 * dns_tlsa_cb - an asynchronous TLSA answer. Same loop context and rules
 * as dns_mx_cb. recs[0..n-1] (n is 0 unless status is DNS_OK) and sec
 * (never NULL) belong to the dns module until the callback returns.
 */
typedef void (*dns_tlsa_cb)(void *arg, enum dns_status status,
    const struct dns_tlsa *recs, size_t n, const struct dns_sec *sec);

/*
 * dns_new - a resolver forwarding to resolver ("IP" or "IP@PORT"; NULL:
 * /etc/resolv.conf), validating from the DS or DNSKEY records (zone-file
 * format) in the file trust_anchor (NULL or "": no validation). The file
 * is read here, never later. NULL with *err (newly allocated, caller
 * frees) if the address is not valid, resolv.conf cannot be read, or the
 * trust anchor file cannot be read or holds no usable anchor.
 */
struct dns	*dns_new(const char *resolver, const char *trust_anchor,
		    char **err);

/*
 * dns_free - cancel every pending lookup (their callbacks never run),
 * remove the loop event and free everything. NULL is a no-op.
 */
void		 dns_free(struct dns *);

/*
 * dns_txt_sync - look up name's TXT records, blocking (CLI tools only,
 * never on the daemon's loop). Always sets *st; on DNS_OK *txts is a newly
 * allocated array of *n >= 1 values (free with dns_txts_free), otherwise
 * *txts is NULL and *n 0. sec, unless NULL, gets the answer's security.
 * Returns 0 when the DNS answered (whatever *st says), -1 on a local
 * library failure (then *st is DNS_TEMPFAIL).
 */
int	dns_txt_sync(struct dns *, const char *name, char ***txts, size_t *n,
	    enum dns_status *st, struct dns_sec *sec);

/*
 * dns_tlsa_sync - look up name's TLSA records, blocking (CLI tools and
 * tests only). As dns_txt_sync: on DNS_OK *recs is a newly allocated
 * array of *n >= 1 records (free with dns_tlsas_free), otherwise NULL
 * and 0; malformed records are dropped (all of them: DNS_TEMPFAIL).
 * name must be a name as dns_mx() takes, else -1 and DNS_TEMPFAIL
 * without a query.
 */
int	dns_tlsa_sync(struct dns *, const char *name, struct dns_tlsa **recs,
	    size_t *n, enum dns_status *st, struct dns_sec *sec);

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
 * dns_tlsa - start an asynchronous TLSA lookup of name (a name as
 * dns_mx() takes, e.g. "_25._tcp.mx.example.org"); cb(arg, ...) runs
 * later on the loop, never from inside this call. The answer is DNS_OK
 * with the well-formed records (in the order received), DNS_NODATA,
 * DNS_NXDOMAIN, or DNS_TEMPFAIL (failure, bogus, every record
 * malformed); sec says whether it was secure, and for DANE only a secure
 * answer counts. Returns a lookup id (> 0) or -1 as dns_mx().
 */
int	dns_tlsa(struct dns *, const char *name, dns_tlsa_cb cb, void *arg);

/*
 * dns_cancel - cancel the pending lookup id (from dns_txt, dns_mx,
 * dns_addrs or dns_tlsa, with every libunbound query it owns); its
 * callback never runs. An unknown or finished id is ignored, and so is
 * the id of the lookup whose callback is running.
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

/*
 * dns_tlsa_parse - the pure part: one TLSA record's rdata (len bytes:
 * usage, selector, matching type, then the data) into *rec, its data
 * newly allocated (free with dns_tlsas_free or free(rec->data)).
 * Returns 0, or -1 with rec->data NULL if len < 4 (no data at all).
 * Never reads outside rdata[0..len).
 */
int	dns_tlsa_parse(const unsigned char *rdata, size_t len,
	    struct dns_tlsa *rec);

/* dns_tlsas_free - free n TLSA records' data and the array; NULL: no-op */
void	dns_tlsas_free(struct dns_tlsa *recs, size_t n);

/* dns_security_name - "secure", "insecure", "bogus" (static strings) */
const char	*dns_security_name(enum dns_security);

/* dns_txts_free - free n values and the array; NULL is a no-op */
void	dns_txts_free(char **txts, size_t n);

/*
 * dns_status_name - "ok", "NXDOMAIN", "no data", "temporary failure",
 * "null MX" (static strings)
 */
const char	*dns_status_name(enum dns_status);

#endif /* POSTERN_DNS_H */
