/*
 * dkim - DKIM signing and verification: a narrow wrapper of libopendkim
 *
 * Signing (the daemon, `postern keys sign`): one dkim_signer per message,
 * fed the header fields, then the body in any chunking, then finished into
 * one "DKIM-Signature: ...\r\n" field per key, to be put on top of the
 * message. Every signature is relaxed/relaxed, carries t= (the current
 * time, or a fixed time for tests and `keys sign --time`), and never l=,
 * i=, x= or z=. Several keys (rsa-sha256 plus ed25519-sha256 for a domain)
 * are several libopendkim signing handles fed the same data.
 *
 * Header lists (struct dkim_headers, per domain in the configuration):
 *  - sign: the fields signed when present; every present instance is
 *    hashed and named in h=.
 *  - oversign: fields named in h= once more than they are present (once
 *    when absent), so that no instance can be added after signing without
 *    breaking the signature. An oversigned field is signed too.
 * Defaults (dkim_default_headers): sign the RFC 6376 5.4.1 fields (From,
 * Reply-To, Subject, Date, To, Cc, Resent-*, In-Reply-To, References,
 * List-*, Message-ID, MIME-Version, Content-Type,
 * Content-Transfer-Encoding, Content-ID, Content-Description) but not
 * Sender; oversign From, Subject, To, Cc, Reply-To, Date, Message-ID and
 * the MIME fields, never Sender or List-* (mailing lists add those).
 * How: libopendkim only sees the fields to sign (this module picks them by
 * name, so libopendkim's own selection, and its parsing of fields we do
 * not sign such as old DKIM-Signature fields, never comes into play).
 * Oversigning exists in libopendkim only per library handle
 * (DKIM_OPTS_OVERSIGNHDRS; dkim_signhdrs() is per message but selects,
 * it cannot oversign), and so does the fixed time (DKIM_OPTS_FIXEDTIME):
 * this module keeps one DKIM_LIB per distinct (sign, oversign, fixed
 * time) triple, created on first use and cached with a reference count
 * (idle ones beyond DKIM_LIB_CACHE are closed). A running daemon has one
 * per distinct domain list, all with "now" as the time.
 *
 * Threads: signers may be created, used and freed on any thread (a worker
 * pool); one signer is used by one thread at a time. The library cache is
 * guarded by a mutex. libopendkim never does DNS for signing: its resolver
 * hooks are replaced by one that fails.
 *
 * Cost: hashing is streaming; nothing of the body is kept. libopendkim's
 * canonicalization is not cheap: callgrind counts about 75 instructions
 * per body byte and signature (620,000 for a 4 KiB body signed twice,
 * a third of all the loop thread did per message when it hashed there),
 * so queue/inject.c runs the whole signer on a worker. XXX
 * libopendkim's relaxed body canonicalization buffers the current body
 * line, so a body with no line break is held whole (bounded by the
 * message size limit). dkim_signer_finish() does the
 * private-key work, on whatever thread calls it: measured on the 2-core
 * build machine, 1.4 ms per RSA-2048 key and 0.6 ms per Ed25519 key per
 * message (2 ms for the usual pair) when libopendkim rebuilds the key
 * object from the PEM text for every message, as it does by itself
 * (OpenSSL 3's decoders take ~0.55 ms per key, RSA then sets up its
 * Montgomery contexts again); the RSA operation itself is 0.3 ms.
 * libopendkim offers no way to keep a parsed key, so dkim_key_cache()
 * below hands it one through keys/keycache.h, checked at load.
 *
 * Memory: libopendkim allocates through this module's callbacks, which
 * wipe every block before freeing it, so its copies of the PEM key do not
 * linger in freed memory; the blocks of each signing handle are tracked,
 * and whatever dkim_free() leaves behind is wiped and freed with the
 * signer (libopendkim 2.11.0 leaks its Ed25519 key object and signature
 * buffer on every message; dkim.c works around it). Out of memory aborts
 * (alloc.h).
 *
 * Untrusted input: header fields and body bytes come from clients. They
 * never crash the signer: a malformed field or a signer used out of order
 * turns into an error, and the message is then refused (fail closed);
 * nothing is ever fatal. Error texts are static or newly allocated as
 * stated, never contain key material, and quote message bytes only
 * escaped (log_escape).
 */
#ifndef POSTERN_DKIM_H
#define POSTERN_DKIM_H

#include <stddef.h>
#include <time.h>

#include "common/buf.h"
#include "keys/keyfile.h"

#define DKIM_SIGNER_MAXKEYS	4	/* keys per signer (d=/s= pairs) */
#define DKIM_HEADERS_MAX	64	/* names per list */
#define DKIM_HEADER_NAME_MAX	64	/* bytes per name */
#define DKIM_SIGNED_NAMES_MAX	3000	/* bytes of h= from present fields;
					   libopendkim truncates its list
					   at 4096, so more is refused */
#define DKIM_LIB_CACHE		16	/* idle DKIM_LIB handles kept */
#define DKIM_SIG_MARGIN		78	/* fold DKIM-Signature at this column */

struct dkim_headers {
	const char *const	*sign;		/* field names, any case */
	size_t			 nsign;
	const char *const	*oversign;	/* implies sign */
	size_t			 noversign;
};

extern const struct dkim_headers dkim_default_headers;

/*
 * dkim_headers_check - 0 if hl can be used: every name is 1..64 bytes of
 * printable ASCII without ':' or ';', at most DKIM_HEADERS_MAX per list,
 * From is signed, and DKIM-Signature is in neither list. Otherwise -1 and
 * *err (newly allocated) says which name is wrong. For the configuration
 * loader; dkim_signer_new() checks the same.
 */
int	dkim_headers_check(const struct dkim_headers *hl, char **err);

struct dkim_signer;

/*
 * dkim_signer_new - a signer for one message with keys[0..nkeys) (1 to
 * DKIM_SIGNER_MAXKEYS keys, distinct d=/s= pairs; d= is each key's
 * domain, s= its selector). The keys are only used during this call:
 * libopendkim copies what it needs. hl NULL means dkim_default_headers.
 * fixed_time 0 means t= is the time of dkim_signer_eoh(), anything else
 * is used as t= (tests, `keys sign --time`). Returns NULL with *err
 * (newly allocated) on a bad argument or a libopendkim failure.
 */
struct dkim_signer *dkim_signer_new(const struct keyfile *const *keys,
	    size_t nkeys, const struct dkim_headers *hl, time_t fixed_time,
	    char **err);

/*
 * dkim_signer_header - one complete header field, "Name: value", folding
 * CRLFs inside allowed; a final CRLF may be there or not. Fields not in
 * the sign list are ignored whatever they hold. Returns 0, or -1 (the
 * signer has then failed; see dkim_signer_error()) for a field without a
 * valid name and colon, a signed field with white space before its colon
 * (RFC 5322 obsolete syntax: libopendkim and Mail::DKIM accept it, dkimpy
 * does not) or holding a NUL or a CR or LF that is not part of a CRLF
 * fold, too many signed fields
 * (DKIM_SIGNED_NAMES_MAX), a call after the header section, or a
 * libopendkim failure.
 */
int	dkim_signer_header(struct dkim_signer *, const char *field,
	    size_t len);

/*
 * dkim_signer_headers - feed a whole header section text[0..len): fields
 * are split at CRLFs not followed by SP or HTAB; it ends at the first
 * empty line or at len. Then calls dkim_signer_eoh(). Returns 0 or -1 as
 * the calls it makes. A convenience for callers that hold the section.
 */
int	dkim_signer_headers(struct dkim_signer *, const char *text,
	    size_t len);

/*
 * dkim_signer_eoh - end of the header section. -1 if the message has no
 * From: field (nothing to align DMARC with) or on a libopendkim failure.
 * Called by the first dkim_signer_body() or dkim_signer_finish() if the
 * caller did not.
 */
int	dkim_signer_eoh(struct dkim_signer *);

/*
 * dkim_signer_body - body bytes as they will be stored (CRLF line ends,
 * dot-stuffing undone), in chunks of any size, len 0 included. A body
 * that does not end with CRLF is completed with one for hashing, as RFC
 * 6376 3.4.4 says. Returns 0 or -1 (failed).
 */
int	dkim_signer_body(struct dkim_signer *, const void *p, size_t len);

/*
 * dkim_signer_finish - compute the signatures (see Cost above) and append
 * to out one "DKIM-Signature: ...\r\n" field per key, rsa-sha256 ones
 * first, folded at DKIM_SIG_MARGIN columns. Returns 0, or -1 with *err
 * (newly allocated) and out unchanged: the first error of any earlier
 * call, a libopendkim failure, out's max passed, or a second call.
 */
int	dkim_signer_finish(struct dkim_signer *, struct buf *out, char **err);

/* dkim_signer_error - why the signer failed (its own text), or NULL */
const char *dkim_signer_error(const struct dkim_signer *);

/* dkim_signer_free - free the signer at any stage; NULL is fine */
void	dkim_signer_free(struct dkim_signer *);

/*
 * dkim_key_cache - keep k's parsed key for every signature made with it
 * from now on (keys/keycache.h), the first time checking that
 * libopendkim takes it and signs the same bytes as with the key it
 * parses itself; if not, the cache is turned off for good with a
 * warning, and keys are parsed per message (correct, slower).
 * dkim_key_uncache - k is freed: one user fewer of its cached key.
 * Call them in pairs, for the keys the daemon signs with.
 */
void	dkim_key_cache(const struct keyfile *k);
void	dkim_key_uncache(const struct keyfile *k);

/*
 * dkim_shutdown - close every cached DKIM_LIB no signer uses (at exit,
 * and in tests so valgrind sees everything freed).
 */
void	dkim_shutdown(void);

/*
 * Verification, for `postern keys verify` (not for the daemon: with
 * keyfile NULL it blocks on libopendkim's own synchronous DNS lookups).
 */
struct dkim_verify_result {
	const char	*domain;	/* d=, or "?" if unusable */
	const char	*selector;	/* s=, or "?" */
	const char	*algorithm;	/* a=, or "?" */
	const char	*result;	/* "pass", "fail", "temperror" or
					   "permerror" (RFC 8601 terms) */
	const char	*detail;	/* libopendkim's reason, for humans */
};

/* called once per DKIM-Signature, in message order; pointers are valid
   during the call only */
typedef void	dkim_verify_cb(const struct dkim_verify_result *, void *arg);

/*
 * dkim_verify_message - read a whole message from fd (CRLF or LF line
 * ends) and verify every DKIM-Signature in it. Public keys come from DNS,
 * or with keyfile from that file instead (libopendkim's DKIM_QUERY_FILE:
 * lines "selector._domainkey.domain<SP or TAB>v=DKIM1; k=...; p=...").
 * Returns the number of signatures (0: none), or -1 with *err (newly
 * allocated) on a read error, an unreadable keyfile or a libopendkim
 * failure.
 */
int	dkim_verify_message(int fd, const char *keyfile, dkim_verify_cb *cb,
	    void *arg, char **err);

#endif
