/*
 * address - SMTP paths (RFC 5321 4.1.2) and RFC 5322 mailboxes; see
 * address.h.
 *
 * One scanner (struct scan) walks s[0..len) with an explicit position and
 * never reads at or past len, so header values that are not NUL-terminated
 * are safe. The local part and domain rules are shared by the envelope
 * parser and the header parser:
 *
 *  - local part: Dot-string (atext, RFC 5322 3.2.3) or Quoted-string
 *    (qtextSMTP / quoted-pairSMTP), kept as written; at most 64 octets.
 *  - domain: LDH labels of 1..63 octets, no hyphen at either end, at most
 *    255 octets, ASCII lower-cased; or an address literal "[IPv4]" /
 *    "[IPv6:...]" checked with inet_pton. General address literals
 *    ("[tag:...]") are refused: nobody can deliver to them. One trailing
 *    dot is accepted and dropped (as Postfix does).
 *  - with allow_utf8 (RFC 6531) well-formed UTF-8 may appear in atext,
 *    qtext and domain labels (U-labels); overlong forms, surrogates and
 *    code points past U+10FFFF are refused.
 *
 * In headers, display names and comments are skipped without looking at
 * their bytes beyond the delimiters (raw 8-bit display names are common
 * and harmless here); only the addr-spec is checked. obs-local-part (CFWS
 * between the dots of a local part) is refused.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/address.h"

/* Path length limit, '<' and '>' included (RFC 5321 4.5.3.1.3). */
#define PATH_MAX_OCTETS		256
/* Longest text between the brackets of an address literal we look at. */
#define LITERAL_MAX		63
#define LABEL_MAX		63

struct scan {
	const char	*s;
	size_t		 len;
	size_t		 pos;
	bool		 allow_utf8;
	bool		 utf8;		/* a non-ASCII byte was accepted */
	const char	*err;
};

/* scan_init - start scanning s[0..len) */
static void
scan_init(struct scan *sc, const char *s, size_t len, bool allow_utf8)
{
	sc->s = s;
	sc->len = len;
	sc->pos = 0;
	sc->allow_utf8 = allow_utf8;
	sc->utf8 = false;
	sc->err = NULL;
}

/* scan_peek - the byte at the position, or -1 at the end */
static int
scan_peek(const struct scan *sc)
{
	if (sc->pos >= sc->len)
		return -1;
	return (unsigned char)sc->s[sc->pos];
}

/* scan_fail - record a static reason; always -1 */
static int
scan_fail(struct scan *sc, const char *err)
{
	sc->err = err;
	return -1;
}

/* is_atext - RFC 5322 3.2.3 atext, ASCII part */
static bool
is_atext(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != 0 && c < 0x80 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* is_ldh - letter, digit or hyphen (domain label characters) */
static bool
is_ldh(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

/* ascii_lower - lower-case one ASCII letter, leave every other byte */
static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * utf8_seq_len - length of the well-formed UTF-8 sequence at p[0..n)
 * (RFC 3629 4), or 0 if it is malformed, overlong, a surrogate or past
 * U+10FFFF. p[0] must be >= 0x80.
 */
static size_t
utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;		/* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 4;
		if (p[0] == 0xf0)
			lo = 0x90;		/* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;		/* past U+10FFFF */
	} else
		return 0;			/* 80..C1, F5..FF */
	if (n < need)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < need; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return need;
}

/* scan_utf8 - accept the UTF-8 sequence at the position; -1 if not allowed
   or malformed */
static int
scan_utf8(struct scan *sc)
{
	size_t n;

	if (!sc->allow_utf8)
		return scan_fail(sc, "non-ASCII character without SMTPUTF8");
	n = utf8_seq_len((const unsigned char *)sc->s + sc->pos,
	    sc->len - sc->pos);
	if (n == 0)
		return scan_fail(sc, "malformed UTF-8");
	sc->pos += n;
	sc->utf8 = true;
	return 0;
}

/* scan_quoted_local - Quoted-string local part; position at the '"' */
static int
scan_quoted_local(struct scan *sc)
{
	int c;

	sc->pos++;
	for (;;) {
		if ((c = scan_peek(sc)) == -1)
			return scan_fail(sc, "unterminated quoted local part");
		if (c == '"') {
			sc->pos++;
			return 0;
		}
		if (c == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			if (sc->pos + 1 >= sc->len)
				return scan_fail(sc,
				    "unterminated quoted local part");
			c = (unsigned char)sc->s[sc->pos + 1];
			if (c < 32 || c > 126)
				return scan_fail(sc,
				    "bad character in quoted local part");
			sc->pos += 2;
		} else if (c >= 0x80) {
			if (scan_utf8(sc) == -1)
				return -1;
		} else if (c < 32 || c == 127)
			return scan_fail(sc,
			    "bad character in quoted local part");
		else			/* qtextSMTP */
			sc->pos++;
	}
}

/* scan_dot_string - Dot-string local part: Atom *("." Atom) */
static int
scan_dot_string(struct scan *sc)
{
	size_t start = sc->pos, atom;
	int c;

	for (;;) {
		atom = sc->pos;
		while ((c = scan_peek(sc)) != -1) {
			if (is_atext(c))
				sc->pos++;
			else if (c >= 0x80) {
				if (scan_utf8(sc) == -1)
					return -1;
			} else
				break;
		}
		if (sc->pos == atom) {
			if (atom == start) {
				if (c == '.')
					return scan_fail(sc,
					    "local part starts with a dot");
				if (c == -1 || c == '@' || c == '>')
					return scan_fail(sc,
					    "empty local part");
				return scan_fail(sc,
				    "bad character in local part");
			}
			if (c == '.')
				return scan_fail(sc,
				    "consecutive dots in local part");
			return scan_fail(sc, "local part ends with a dot");
		}
		if (c != '.')
			return 0;
		sc->pos++;
	}
}

/* scan_local - local part into a->local, as written */
static int
scan_local(struct scan *sc, struct address *a)
{
	size_t start = sc->pos, n;
	int r;

	if (scan_peek(sc) == '"')
		r = scan_quoted_local(sc);
	else
		r = scan_dot_string(sc);
	if (r == -1)
		return -1;
	n = sc->pos - start;
	if (n > ADDRESS_LOCAL_MAX)
		return scan_fail(sc, "local part too long");
	memcpy(a->local, sc->s + start, n);
	a->local[n] = '\0';
	return 0;
}

/* scan_literal - address literal "[...]" into dom; position at '[' */
static int
scan_literal(struct scan *sc, char *dom)
{
	char tmp[LITERAL_MAX + 1];
	unsigned char addr[16];
	size_t q, n, i;
	int c;

	for (q = sc->pos + 1; q < sc->len && sc->s[q] != ']'; q++) {
		/* dcontent = %d33-90 / %d94-126 */
		c = (unsigned char)sc->s[q];
		if (c < 33 || c > 126 || c == '[' || c == '\\')
			return scan_fail(sc,
			    "bad character in address literal");
	}
	if (q >= sc->len)
		return scan_fail(sc, "unterminated address literal");
	n = q - sc->pos - 1;
	if (n == 0 || n > LITERAL_MAX)
		return scan_fail(sc, "bad address literal");
	memcpy(tmp, sc->s + sc->pos + 1, n);
	tmp[n] = '\0';
	if (n > 5 && strncasecmp(tmp, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, tmp + 5, addr) != 1)
			return scan_fail(sc, "bad IPv6 address literal");
	} else if (strchr(tmp, ':') != NULL)
		return scan_fail(sc, "unsupported address literal");
	else if (inet_pton(AF_INET, tmp, addr) != 1)
		return scan_fail(sc, "bad IPv4 address literal");
	dom[0] = '[';
	for (i = 0; i < n; i++)
		dom[i + 1] = ascii_lower(tmp[i]);
	dom[n + 1] = ']';
	dom[n + 2] = '\0';
	sc->pos = q + 1;
	return 0;
}

/*
 * scan_domain - Domain or address literal into dom (ADDRESS_DOMAIN_MAX +
 * 1 bytes), lower case, trailing dot dropped. Stops at the first byte that
 * cannot continue the domain; the caller checks what follows.
 */
static int
scan_domain(struct scan *sc, char *dom)
{
	size_t out = 0, nlabels = 0, label, n, i;
	int c;

	if (scan_peek(sc) == '[')
		return scan_literal(sc, dom);
	for (;;) {
		label = sc->pos;
		while ((c = scan_peek(sc)) != -1) {
			if (is_ldh(c))
				sc->pos++;
			else if (c >= 0x80) {
				if (scan_utf8(sc) == -1)
					return -1;
			} else
				break;
		}
		n = sc->pos - label;
		if (n == 0) {
			if (c == '.')
				return scan_fail(sc, "empty label in domain");
			if (nlabels > 0)
				break;		/* one trailing dot */
			if (c == -1 || c == '>' || c == ' ' || c == '\t' ||
			    c == '\r' || c == '\n' || c == ',' || c == ';' ||
			    c == '(')
				return scan_fail(sc, "missing domain");
			return scan_fail(sc, "bad character in domain");
		}
		if (n > LABEL_MAX)
			return scan_fail(sc, "domain label too long");
		if (sc->s[label] == '-' || sc->s[sc->pos - 1] == '-')
			return scan_fail(sc,
			    "domain label starts or ends with a hyphen");
		if (out + (nlabels > 0) + n > ADDRESS_DOMAIN_MAX)
			return scan_fail(sc, "domain too long");
		if (nlabels > 0)
			dom[out++] = '.';
		for (i = 0; i < n; i++)
			dom[out++] = ascii_lower(sc->s[label + i]);
		nlabels++;
		if (c != '.')
			break;
		sc->pos++;
	}
	dom[out] = '\0';
	return 0;
}

/* scan_at - expect the '@' between local part and domain */
static int
scan_at(struct scan *sc)
{
	int c = scan_peek(sc);

	if (c == '@') {
		sc->pos++;
		return 0;
	}
	if (c == -1 || c == '>')
		return scan_fail(sc, "missing domain");
	return scan_fail(sc, "bad character in local part");
}

/* scan_source_route - A-d-l ":" (RFC 5321 4.1.2), checked and dropped */
static int
scan_source_route(struct scan *sc)
{
	char dom[ADDRESS_DOMAIN_MAX + 1];
	int c;

	for (;;) {
		if (scan_peek(sc) != '@')
			return scan_fail(sc, "bad source route");
		sc->pos++;
		if (scan_domain(sc, dom) == -1)
			return -1;
		c = scan_peek(sc);
		if (c != ':' && c != ',')
			return scan_fail(sc, "bad source route");
		sc->pos++;
		if (c == ':')
			return 0;
	}
}

/* address_parse_path - parse "<...>" at s[0..len) */
int
address_parse_path(const char *s, size_t len, bool allow_null,
    bool allow_utf8, struct address *a, size_t *consumed, const char **err)
{
	struct address tmp;
	struct scan sc;

	scan_init(&sc, s, len, allow_utf8);
	memset(&tmp, 0, sizeof(tmp));
	if (scan_peek(&sc) != '<') {
		*err = len == 0 ? "missing address" :
		    "address must be in angle brackets";
		return -1;
	}
	sc.pos++;
	if (scan_peek(&sc) == '>') {
		if (!allow_null) {
			*err = "null address not allowed";
			return -1;
		}
		*a = tmp;
		*consumed = 2;
		return 0;
	}
	if ((scan_peek(&sc) == '@' && scan_source_route(&sc) == -1) ||
	    scan_local(&sc, &tmp) == -1 || scan_at(&sc) == -1 ||
	    scan_domain(&sc, tmp.domain) == -1) {
		*err = sc.err;
		return -1;
	}
	if (scan_peek(&sc) != '>') {
		*err = scan_peek(&sc) == -1 ? "missing '>'" :
		    "bad character in domain";
		return -1;
	}
	sc.pos++;
	if (sc.pos > PATH_MAX_OCTETS) {
		*err = "path too long";
		return -1;
	}
	tmp.utf8 = sc.utf8;
	*a = tmp;
	*consumed = sc.pos;
	return 0;
}

/* address_parse_addrspec - parse a bare "local@domain" filling s[0..len) */
int
address_parse_addrspec(const char *s, size_t len, bool allow_utf8,
    struct address *a, const char **err)
{
	struct address tmp;
	struct scan sc;

	scan_init(&sc, s, len, allow_utf8);
	memset(&tmp, 0, sizeof(tmp));
	if (len == 0) {
		*err = "missing address";
		return -1;
	}
	if (scan_local(&sc, &tmp) == -1 || scan_at(&sc) == -1 ||
	    scan_domain(&sc, tmp.domain) == -1) {
		*err = sc.err;
		return -1;
	}
	if (sc.pos != len) {
		*err = "bad character in domain";
		return -1;
	}
	tmp.utf8 = sc.utf8;
	*a = tmp;
	return 0;
}

/* address_format - "local@domain", "local" without domain, "" for <> */
char *
address_format(const struct address *a, char *out, size_t outsz)
{
	if (outsz == 0)
		return out;
	if (a->domain[0] == '\0')
		snprintf(out, outsz, "%s", a->local);
	else
		snprintf(out, outsz, "%s@%s", a->local, a->domain);
	return out;
}

/* address_strip_tag - local part up to the first '+' (quoted: all of it) */
char *
address_strip_tag(const char *local, char *out)
{
	size_t i;

	for (i = 0; i < ADDRESS_LOCAL_MAX && local[i] != '\0'; i++) {
		if (local[i] == '+' && local[0] != '"')
			break;
		out[i] = local[i];
	}
	out[i] = '\0';
	return out;
}

/*
 * RFC 5322 address-list parsing. The grammar (3.4, with the obs- forms of
 * 4.4 that matter in practice: empty list elements, "." in phrases, routes
 * in angle-addr):
 *
 *	address-list = address *("," address)
 *	address      = mailbox / group
 *	mailbox      = name-addr / addr-spec
 *	name-addr    = [phrase] [CFWS] "<" [route] addr-spec ">" [CFWS]
 *	group        = phrase ":" [mailbox-list / CFWS] ";" [CFWS]
 *
 * A phrase and an addr-spec start the same way, so the phrase is scanned
 * first; if what follows it is '@' the scanner rewinds and reads an
 * addr-spec instead.
 */
struct hdr {
	struct scan	 sc;
	struct address	*out;
	size_t		 max;
	size_t		*n;
};

/* hdr_fold - at a CR or LF: skip CRLF followed by WSP or ending the value */
static int
hdr_fold(struct scan *sc)
{
	size_t p = sc->pos;

	if (sc->s[p] == '\r' && p + 1 < sc->len && sc->s[p + 1] == '\n' &&
	    (p + 2 >= sc->len || sc->s[p + 2] == ' ' ||
	    sc->s[p + 2] == '\t')) {
		sc->pos += 2;
		return 0;
	}
	return scan_fail(sc, "bad line break in header");
}

/* hdr_comment - skip a (possibly nested) comment; position at '(' */
static int
hdr_comment(struct scan *sc)
{
	size_t depth = 0;
	int c;

	do {
		if ((c = scan_peek(sc)) == -1)
			return scan_fail(sc, "unterminated comment");
		if (c == '\\') {
			if (sc->pos + 1 >= sc->len)
				return scan_fail(sc, "unterminated comment");
			sc->pos += 2;
			continue;
		}
		if (c == '\r' || c == '\n') {
			if (hdr_fold(sc) == -1)
				return -1;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')')
			depth--;
		sc->pos++;
	} while (depth > 0);
	return 0;
}

/* hdr_cfws - skip comments and folding whitespace */
static int
hdr_cfws(struct scan *sc)
{
	int c;

	for (;;) {
		c = scan_peek(sc);
		if (c == ' ' || c == '\t')
			sc->pos++;
		else if (c == '\r' || c == '\n') {
			if (hdr_fold(sc) == -1)
				return -1;
		} else if (c == '(') {
			if (hdr_comment(sc) == -1)
				return -1;
		} else
			return 0;
	}
}

/* hdr_quoted - skip a quoted-string in a phrase; position at '"' */
static int
hdr_quoted(struct scan *sc)
{
	int c;

	sc->pos++;
	for (;;) {
		if ((c = scan_peek(sc)) == -1)
			return scan_fail(sc, "unterminated quoted string");
		if (c == '"') {
			sc->pos++;
			return 0;
		}
		if (c == '\\') {
			if (sc->pos + 1 >= sc->len)
				return scan_fail(sc,
				    "unterminated quoted string");
			sc->pos += 2;
		} else if (c == '\r' || c == '\n') {
			if (hdr_fold(sc) == -1)
				return -1;
		} else
			sc->pos++;
	}
}

/* hdr_store - count one mailbox, keep it if there is room */
static void
hdr_store(struct hdr *h, const struct address *a)
{
	if (*h->n < h->max)
		h->out[*h->n] = *a;
	(*h->n)++;
}

/* hdr_addrspec - local-part [CFWS] "@" [CFWS] domain, then store it */
static int
hdr_addrspec(struct hdr *h)
{
	struct scan *sc = &h->sc;
	struct address a;
	int c;

	memset(&a, 0, sizeof(a));
	sc->utf8 = false;
	if (scan_local(sc, &a) == -1 || hdr_cfws(sc) == -1)
		return -1;
	if ((c = scan_peek(sc)) != '@') {
		if (c == -1 || c == '>' || c == ',' || c == ';')
			return scan_fail(sc, "missing domain");
		if (c == '.')
			return scan_fail(sc,
			    "obsolete local part syntax (space around a dot)");
		return scan_fail(sc, "bad character in local part");
	}
	sc->pos++;
	if (hdr_cfws(sc) == -1 || scan_domain(sc, a.domain) == -1)
		return -1;
	c = scan_peek(sc);
	if (c != -1 && c != ' ' && c != '\t' && c != '\r' && c != '\n' &&
	    c != '(' && c != ',' && c != ';' && c != '>')
		return scan_fail(sc, "bad character in domain");
	a.utf8 = sc->utf8;
	hdr_store(h, &a);
	return 0;
}

/* hdr_angle - "<" [route] addr-spec ">"; position at '<' */
static int
hdr_angle(struct hdr *h)
{
	struct scan *sc = &h->sc;
	char dom[ADDRESS_DOMAIN_MAX + 1];
	int c;

	sc->pos++;
	if (hdr_cfws(sc) == -1)
		return -1;
	if ((c = scan_peek(sc)) == -1)
		return scan_fail(sc, "missing '>'");
	if (c == '>')
		return scan_fail(sc, "empty address");
	if (c == '@') {
		/* obs-route: obs-domain-list ":", checked and dropped */
		for (;;) {
			if (hdr_cfws(sc) == -1)
				return -1;
			c = scan_peek(sc);
			if (c == ',') {
				sc->pos++;
				continue;
			}
			if (c != '@')
				break;
			sc->pos++;
			if (hdr_cfws(sc) == -1 || scan_domain(sc, dom) == -1)
				return -1;
		}
		if (c != ':')
			return scan_fail(sc, "bad route in address");
		sc->pos++;
		if (hdr_cfws(sc) == -1)
			return -1;
	}
	if (hdr_addrspec(h) == -1 || hdr_cfws(sc) == -1)
		return -1;
	if ((c = scan_peek(sc)) != '>')
		return scan_fail(sc, c == -1 ? "missing '>'" :
		    "bad character in address");
	sc->pos++;
	return 0;
}

static int hdr_address(struct hdr *, bool);

/* hdr_group - the rest of a group after its ':' */
static int
hdr_group(struct hdr *h)
{
	struct scan *sc = &h->sc;
	int c;

	sc->pos++;
	for (;;) {
		if (hdr_cfws(sc) == -1)
			return -1;
		c = scan_peek(sc);
		if (c == -1)
			return scan_fail(sc,
			    "unterminated group (missing ';')");
		if (c == ';') {
			sc->pos++;
			return 0;
		}
		if (c == ',') {
			sc->pos++;
			continue;
		}
		if (hdr_address(h, false) == -1 || hdr_cfws(sc) == -1)
			return -1;
		c = scan_peek(sc);
		if (c == -1)
			return scan_fail(sc,
			    "unterminated group (missing ';')");
		if (c != ';' && c != ',')
			return scan_fail(sc, "missing comma between addresses");
	}
}

/*
 * hdr_address - one mailbox or (if allow_group) group; the position is on
 * a byte that is neither CFWS nor ','.
 */
static int
hdr_address(struct hdr *h, bool allow_group)
{
	struct scan *sc = &h->sc;
	size_t start = sc->pos, nwords = 0;
	int c;

	for (;;) {
		if (hdr_cfws(sc) == -1)
			return -1;
		c = scan_peek(sc);
		if (c == '"') {
			if (hdr_quoted(sc) == -1)
				return -1;
			nwords++;
		} else if (c != -1 && (is_atext(c) || c >= 0x80)) {
			while ((c = scan_peek(sc)) != -1 &&
			    (is_atext(c) || c >= 0x80))
				sc->pos++;
			nwords++;
		} else if (c == '.' && nwords > 0)
			sc->pos++;		/* obs-phrase */
		else
			break;
	}
	switch (c) {
	case '<':
		return hdr_angle(h);
	case ':':
		if (nwords == 0)
			return scan_fail(sc, "group without a name");
		if (!allow_group)
			return scan_fail(sc, "group inside a group");
		return hdr_group(h);
	case '@':
		if (nwords == 0)
			return scan_fail(sc, "empty local part");
		sc->pos = start;
		return hdr_addrspec(h);
	case -1:
	case ',':
	case ';':
		return scan_fail(sc, nwords ? "missing domain" :
		    "empty address");
	case '>':
		return scan_fail(sc, "unbalanced '>'");
	case ')':
		return scan_fail(sc, "unbalanced ')'");
	default:
		return scan_fail(sc, "bad character in address");
	}
}

/* address_header_mailboxes - the mailboxes of an address-list value */
int
address_header_mailboxes(const char *value, size_t len, bool allow_utf8,
    struct address *out, size_t max, size_t *n, const char **err)
{
	struct hdr h;
	struct scan *sc = &h.sc;
	size_t naddr = 0;
	int c;

	scan_init(sc, value, len, allow_utf8);
	h.out = out;
	h.max = max;
	h.n = n;
	*n = 0;
	for (;;) {
		if (hdr_cfws(sc) == -1)
			goto fail;
		if ((c = scan_peek(sc)) == -1)
			break;
		if (c == ',') {			/* obs-addr-list */
			sc->pos++;
			continue;
		}
		if (hdr_address(&h, true) == -1 || hdr_cfws(sc) == -1)
			goto fail;
		naddr++;
		if ((c = scan_peek(sc)) == -1)
			break;
		if (c != ',') {
			scan_fail(sc, c == '>' ? "unbalanced '>'" :
			    "missing comma between addresses");
			goto fail;
		}
		sc->pos++;
	}
	if (naddr == 0) {
		*err = "no address";
		return -1;
	}
	return 0;
fail:
	*err = sc->err;
	return -1;
}
