/*
 * msghdr - header section scanning and the Received, Message-ID and Date
 * fix-ups; see msghdr.h.
 *
 * Scanning follows RFC 5322 2.2 and 3.6.8 for field names and accepts the
 * obsolete white space before the colon (4.5.3, "From : x"), counting such
 * a field under its name: receivers treat it as a From: too, so sender
 * checks must see it. Values are not parsed; 8-bit bytes are tolerated.
 *
 * Dates are written with our own day and month tables rather than
 * strftime("%a %b"), which follows the locale.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "common/buf.h"
#include "common/msghdr.h"

#define MSGHDR_FOLD_COL		78	/* RFC 5322 2.1.1 SHOULD */
#define MSGHDR_HELO_MAX		255	/* sanitized HELO in Received: */
#define MSGHDR_MSGID_RANDOM	10	/* CSPRNG bytes, 16 base32 chars */

/* msghdr_is_name - is c allowed in a field name (RFC 5322 ftext)? */
static inline bool
msghdr_is_name(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* msghdr_name_is - does name[0..len) equal want, ignoring case? */
static bool
msghdr_name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* msghdr_scan - parse the header section of a message; see msghdr.h */
int
msghdr_scan(const char *text, size_t len, struct msghdr_info *mi,
    const char **err)
{
	const char *p = text, *end = text + len, *eol, *next, *q, *colon;
	bool in_field = false, in_from = false;
	size_t namelen;

	memset(mi, 0, sizeof(*mi));
	for (; p < end; p = next) {
		/* The line is [p, eol); next is after its CRLF. */
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			eol = next = end;	/* last line, no CRLF */
			if (eol[-1] == '\r')
				eol--;		/* CR of a cut-off CRLF */
		} else {
			next = eol + 1;
			if (eol == p || eol[-1] != '\r') {
				*err = "bare LF in the header section";
				return -1;
			}
			eol--;
		}
		if (memchr(p, '\r', (size_t)(eol - p)) != NULL) {
			*err = "bare CR in the header section";
			return -1;
		}

		if (eol == p) {
			/* The empty line: the body follows. */
			mi->len = (size_t)(p - text);
			mi->has_body = true;
			return 0;
		}

		if (*p == ' ' || *p == '\t') {
			if (!in_field) {
				*err = "header starts with a continuation line";
				return -1;
			}
			if (in_from)
				mi->from_len = (size_t)(eol - mi->from);
			continue;
		}

		for (q = p; q < eol && msghdr_is_name((unsigned char)*q); q++)
			;
		namelen = (size_t)(q - p);
		for (colon = q; colon < eol && (*colon == ' ' ||
		    *colon == '\t'); colon++)
			;
		if (namelen == 0 || colon == eol || *colon != ':') {
			*err = in_field ? "header line is not a field" :
			    "message does not start with a header field";
			return -1;
		}

		in_field = true;
		in_from = false;
		if (msghdr_name_is(p, namelen, "From")) {
			if (mi->nfrom++ == 0) {
				in_from = true;
				mi->from = colon + 1;
				mi->from_len = (size_t)(eol - mi->from);
			}
		} else if (msghdr_name_is(p, namelen, "Sender"))
			mi->nsender++;
		else if (msghdr_name_is(p, namelen, "Date"))
			mi->ndate++;
		else if (msghdr_name_is(p, namelen, "Message-ID"))
			mi->nmessage_id++;
	}
	mi->len = len;
	return 0;
}

/* msghdr_end - where the header section ends, 0 if not yet; see msghdr.h */
size_t
msghdr_end(const char *text, size_t len)
{
	const char *p;

	if (len >= 2 && text[0] == '\r' && text[1] == '\n')
		return 2;
	if ((p = memmem(text, len, "\r\n\r\n", 4)) == NULL)
		return 0;
	return (size_t)(p - text) + 4;
}

/* msghdr_date - RFC 5322 3.3 date-time in local time; see msghdr.h */
char *
msghdr_date(time_t t, char out[64])
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	struct tm tm;
	long off;
	char sign = '+';

	if (localtime_r(&t, &tm) == NULL) {
		/* XXX only for times no clock shows; write the epoch */
		t = 0;
		gmtime_r(&t, &tm);
		tm.tm_gmtoff = 0;
	}
	off = tm.tm_gmtoff / 60;
	if (off < 0) {
		sign = '-';
		off = -off;
	}
	snprintf(out, 64, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
	    off / 60 % 100, off % 60);
	return out;
}

/*
 * msghdr_clean - copy at most max bytes of untrusted src into dst (which
 * has room for max + 1) as one header word: bytes 33..126 other than
 * "()\\" stay, the rest become '?'. Returns dst.
 */
static char *
msghdr_clean(char *dst, const char *src, size_t max)
{
	unsigned char c;
	size_t i;

	for (i = 0; i < max && src[i] != '\0'; i++) {
		c = (unsigned char)src[i];
		dst[i] = c > 32 && c < 127 && c != '(' && c != ')' &&
		    c != '\\' ? (char)c : '?';
	}
	dst[i] = '\0';
	return dst;
}

/*
 * Writing a folded field: words are appended with one space before them,
 * or with CRLF TAB when the line would pass MSGHDR_FOLD_COL, or always
 * (FOLD_BREAK), or never (FOLD_GLUE, for a word that must stay beside the
 * keyword before it). A word longer than a line stays whole.
 */
enum fold_how {
	FOLD_FIT,
	FOLD_BREAK,
	FOLD_GLUE,
};

struct fold {
	struct buf	*b;
	size_t		 col;
	int		 err;
};

/* fold_word - append one word to the field as described above */
static void
fold_word(struct fold *f, const char *w, enum fold_how how)
{
	size_t n = strlen(w);

	if (how == FOLD_BREAK || (how == FOLD_FIT &&
	    f->col + 1 + n > MSGHDR_FOLD_COL)) {
		if (buf_append(f->b, "\r\n\t", 3) == -1)
			f->err = -1;
		f->col = 1;
	} else {
		if (buf_append(f->b, " ", 1) == -1)
			f->err = -1;
		f->col++;
	}
	if (buf_append(f->b, w, n) == -1)
		f->err = -1;
	f->col += n;
}

/*
 * fold_words - append the space-separated words of s, the first as how;
 * a word of 256 bytes or more is split (only our own texts come here)
 */
static void
fold_words(struct fold *f, const char *s, enum fold_how how)
{
	char word[256];
	size_t n;

	while (*s != '\0') {
		n = strcspn(s, " ");
		if (n >= sizeof(word))
			n = sizeof(word) - 1;
		memcpy(word, s, n);
		word[n] = '\0';
		fold_word(f, word, how);
		how = FOLD_FIT;
		s += n;
		s += strspn(s, " ");
	}
}

/* msghdr_undo - drop what a failed add appended, so b is unchanged */
static int
msghdr_undo(struct buf *b, size_t len)
{
	b->len = len;
	if (b->data != NULL)
		b->data[len] = '\0';
	return -1;
}

/*
 * msghdr_add_received - append the trace field (RFC 5321 4.4, RFC 3848):
 *
 *	Received: from HELO (unknown [IP])
 *		by HOSTNAME (Postern) with PROTOCOL id QUEUEID
 *		(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)
 *		for <RCPT>; DATE
 *
 * "unknown" is where a verified client name would go (Postfix's layout);
 * we do not look it up. Without a HELO, the address literal stands in.
 */
int
msghdr_add_received(struct buf *b, const struct msghdr_received *r)
{
	struct fold f = { b, 0, 0 };
	char helo[MSGHDR_HELO_MAX + 1], addr[64], lit[96], tls[128];
	char rcpt[600], word[700], date[64];
	const char *cipher;
	size_t oldlen = b->len, n, i;
	unsigned char c;

	lit[0] = '\0';
	if (r->client_addr != NULL && r->client_addr[0] != '\0') {
		msghdr_clean(addr, r->client_addr, sizeof(addr) - 1);
		snprintf(lit, sizeof(lit), "[%s%s]",
		    strchr(addr, ':') != NULL ? "IPv6:" : "", addr);
	}
	if (r->helo != NULL && r->helo[0] != '\0')
		msghdr_clean(helo, r->helo, MSGHDR_HELO_MAX);
	else
		snprintf(helo, sizeof(helo), "%s",
		    lit[0] != '\0' ? lit : "unknown");

	if (buf_puts(b, "Received:") == -1)
		return -1;
	f.col = strlen("Received:");
	fold_word(&f, "from", FOLD_GLUE);
	fold_word(&f, helo, FOLD_GLUE);
	if (lit[0] != '\0') {
		snprintf(word, sizeof(word), "(unknown %s)", lit);
		fold_words(&f, word, FOLD_FIT);
	}

	fold_word(&f, "by", FOLD_BREAK);
	fold_word(&f, r->hostname != NULL ? r->hostname : "localhost",
	    FOLD_GLUE);
	fold_word(&f, "(Postern)", FOLD_FIT);
	if (r->protocol != NULL) {
		fold_word(&f, "with", FOLD_FIT);
		fold_word(&f, r->protocol, FOLD_GLUE);
	}
	if (r->queue_id != NULL) {
		fold_word(&f, "id", FOLD_FIT);
		fold_word(&f, r->queue_id, FOLD_GLUE);
	}

	if (r->tls != NULL) {
		msghdr_clean(tls, r->tls, sizeof(tls) - 1);
		if ((cipher = strchr(tls, ':')) != NULL) {
			snprintf(word, sizeof(word),
			    "(using %.*s with cipher %s)",
			    (int)(cipher - tls), tls, cipher + 1);
		} else
			snprintf(word, sizeof(word), "(using %s)", tls);
		fold_words(&f, word, FOLD_BREAK);
	}

	if (r->recipient != NULL) {
		/* Checked by the address parser; keep UTF-8, drop controls. */
		n = strlen(r->recipient);
		if (n > sizeof(rcpt) - 1)
			n = sizeof(rcpt) - 1;
		for (i = 0; i < n; i++) {
			c = (unsigned char)r->recipient[i];
			rcpt[i] = c < 32 || c == 127 ? '?' : (char)c;
		}
		rcpt[n] = '\0';
		fold_word(&f, "for", FOLD_BREAK);
		snprintf(word, sizeof(word), "<%s>;", rcpt);
		fold_word(&f, word, FOLD_GLUE);
	} else if (buf_append(b, ";", 1) == -1)
		return msghdr_undo(b, oldlen);
	else
		f.col++;

	fold_word(&f, msghdr_date(r->time, date), FOLD_FIT);
	if (f.err == -1 || buf_append(b, "\r\n", 2) == -1)
		return msghdr_undo(b, oldlen);
	return 0;
}

/* msghdr_add_message_id - append "Message-ID: <QUEUEID.RANDOM@host>" */
int
msghdr_add_message_id(struct buf *b, const char *queue_id,
    const char *hostname)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned char rnd[MSGHDR_MSGID_RANDOM];
	char id[MSGHDR_MSGID_RANDOM * 8 / 5 + 1];
	unsigned int acc = 0, bits = 0;
	size_t i, n = 0;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	for (i = 0; i < sizeof(rnd); i++) {
		acc = (acc << 8) | rnd[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			id[n++] = b32[(acc >> bits) & 31];
		}
	}
	id[n] = '\0';
	return buf_printf(b, "Message-ID: <%s.%s@%s>\r\n", queue_id, id,
	    hostname);
}

/* msghdr_add_date - append "Date: ..." for t */
int
msghdr_add_date(struct buf *b, time_t t)
{
	char date[64];

	return buf_printf(b, "Date: %s\r\n", msghdr_date(t, date));
}
