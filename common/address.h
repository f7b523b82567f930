/*
 * address - parse SMTP paths (RFC 5321 4.1.2) and RFC 5322 mailboxes
 *
 * All input is untrusted. A parsed address keeps the local part exactly as
 * the client wrote it (a quoted local part keeps its quotes and escapes, so
 * it can be sent on unchanged) and the domain in lower case without a
 * trailing dot. Source routes ("<@a,@b:user@c>") are accepted and dropped
 * (RFC 5321 4.1.2 says to ignore them). UTF-8 in local part or domain is
 * accepted only when the caller allows it (SMTPUTF8, RFC 6531) and must be
 * well-formed; .utf8 tells whether any byte >= 0x80 was seen.
 * Address literals ("user@[192.0.2.1]") are accepted as domains.
 * Limits: local part 64 octets, domain 255, whole path 256 (RFC 5321 4.5.3.1).
 */
#ifndef POSTERN_ADDRESS_H
#define POSTERN_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDRESS_LOCAL_MAX	64
#define ADDRESS_DOMAIN_MAX	255
#define ADDRESS_MAX		(ADDRESS_LOCAL_MAX + 1 + ADDRESS_DOMAIN_MAX)

struct address {
	char	local[ADDRESS_LOCAL_MAX + 1];	/* as written; "" for <> */
	char	domain[ADDRESS_DOMAIN_MAX + 1];	/* lower case; "" for <> */
	bool	utf8;				/* non-ASCII seen */
};

/*
 * address_parse_path - parse "<...>" at s[0..len)
 *
 * Accepts the null path "<>" only when allow_null. On success returns 0,
 * fills *a and sets *consumed to the bytes used (through '>'), so the
 * caller can parse ESMTP parameters after it. On failure returns -1 and
 * sets *err to a static human-readable reason (no CR/LF in it).
 */
int	address_parse_path(const char *s, size_t len, bool allow_null,
	    bool allow_utf8, struct address *a, size_t *consumed,
	    const char **err);

/*
 * address_parse_addrspec - parse a bare "local@domain" filling all of
 * s[0..len) (no angle brackets, no surrounding space). Same result and
 * error conventions as address_parse_path.
 */
int	address_parse_addrspec(const char *s, size_t len, bool allow_utf8,
	    struct address *a, const char **err);

/*
 * address_format - "local@domain" (or "" for the null path) into out,
 * truncated to outsz; returns out.
 */
char	*address_format(const struct address *, char *out, size_t outsz);

/*
 * address_header_mailboxes - the mailboxes of an RFC 5322 address-list
 * header body (From:, Sender:, To:...): display names, quoted strings,
 * comments (nested), angle-addr, groups ("undisclosed:;") and folding
 * whitespace (CRLF + WSP) are handled; obsolete route syntax is accepted.
 * Fills out[0..max) and sets *n to the number found (only the first max
 * are stored; *n counts all). Returns 0, or -1 with *err when the value
 * is not a valid address-list (then *n is unspecified).
 */
int	address_header_mailboxes(const char *value, size_t len,
	    bool allow_utf8, struct address *out, size_t max, size_t *n,
	    const char **err);

/*
 * address_strip_tag - the local part without a "+tag" suffix:
 * copies local up to the first '+' (the whole of it if none, or if it is
 * quoted) into out, size ADDRESS_LOCAL_MAX + 1. Returns out.
 */
char	*address_strip_tag(const char *local, char *out);

#endif
