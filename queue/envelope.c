/*
 * envelope - format and parse the on-disk envelope; see envelope.h and the
 * format in queue/QUEUE.md.
 *
 * The parser works on a (pointer, length) pair and never looks past len:
 * every line is found with memchr, every value is checked byte by byte
 * before it is copied. It keeps no state between calls; within a call,
 * struct parse_state holds the version, the one-only records seen and
 * what the previous line was (a "reply" must follow its "rcpt").
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/alloc.h"
#include "queue/envelope.h"

#define ENVELOPE_MAGIC	"postern-envelope"

/* which one-only records were seen */
#define SEEN_ID		0x001
#define SEEN_TIME	0x002
#define SEEN_SENDER	0x004
#define SEEN_LOGIN	0x008
#define SEEN_CLIENT	0x010
#define SEEN_HELO	0x020
#define SEEN_BODY	0x040
#define SEEN_SMTPUTF8	0x080
#define SEEN_SIZE	0x100
#define SEEN_PREPEND	0x200
#define SEEN_ATTEMPTS	0x400	/* version 2 on */
#define SEEN_NEXT	0x800	/* version 2 on */
#define SEEN_DSN	0x1000	/* version 2 on */
#define SEEN_HOLD	0x2000	/* version 3 on */
#define SEEN_REQUIRED	(SEEN_ID | SEEN_TIME | SEEN_SENDER | SEEN_CLIENT | \
			 SEEN_HELO | SEEN_BODY | SEEN_SMTPUTF8 | SEEN_SIZE)
#define SEEN_V2		(SEEN_ATTEMPTS | SEEN_NEXT | SEEN_DSN)

#define ENVELOPE_VERSION_MIN	1	/* oldest version still read */

/* what envelope_parse knows while it reads one envelope */
struct parse_state {
	unsigned	 version;	/* from the magic line */
	unsigned	 seen;		/* SEEN_* of the one-only records */
	size_t		 rcap;		/* recipients allocated */
	enum {
		PREV_OTHER,		/* the line before was another record */
		PREV_RCPT,		/* it was a "rcpt" (no reply yet) */
		PREV_REPLY,		/* it was the "reply" of a "rcpt" */
	} prev;
};

static const char *rcpt_status_names[] = {
	[RCPT_PENDING] = "pending",
	[RCPT_DELIVERED] = "delivered",
	[RCPT_FAILED] = "failed",
};

/* queue_id_valid - exactly QUEUE_ID_LEN characters of [0-9A-Za-z] */
bool
queue_id_valid(const char *id)
{
	size_t i;

	if (id == NULL)
		return false;
	for (i = 0; i < QUEUE_ID_LEN; i++) {
		char c = id[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z')))
			return false;
	}
	return id[QUEUE_ID_LEN] == '\0';
}

/* value_ok - no control characters (NUL, CR, LF, ... and DEL) in s[0..len) */
static bool
value_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* reply_code_ok - a reply code we store: 0 (local) or 200-599 */
static bool
reply_code_ok(int code)
{
	return code == 0 || (code >= 200 && code <= 599);
}

/* digits - how many of s[0..len) in a row, from the start, are digits */
static size_t
digits(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		;
	return i;
}

/*
 * enhanced_ok - RFC 3463 syntax, s[0..len): class "." subject "." detail,
 * class 2, 4 or 5, subject and detail one to three digits
 */
static bool
enhanced_ok(const char *s, size_t len)
{
	size_t n;

	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return false;
	s += 2, len -= 2;
	if ((n = digits(s, len)) < 1 || n > 3 || n == len || s[n] != '.')
		return false;
	s += n + 1, len -= n + 1;
	return (n = digits(s, len)) >= 1 && n <= 3 && n == len;
}

/* reply_ok - can r's reply (if any) be written? */
static bool
reply_ok(const struct envelope_rcpt *r)
{
	size_t elen, tlen;

	if (r->text == NULL)
		return true;
	elen = strnlen(r->enhanced, sizeof(r->enhanced));
	if (elen == sizeof(r->enhanced) ||
	    (elen > 0 && !enhanced_ok(r->enhanced, elen)))
		return false;
	tlen = strlen(r->text);
	return reply_code_ok(r->code) && tlen <= ENVELOPE_REPLY_MAX &&
	    value_ok(r->text, tlen);
}

/* put_record - append "key value\n" ("key\n" for an empty value) */
static int
put_record(struct buf *b, const char *key, const char *value)
{
	if (buf_puts(b, key) == -1)
		return -1;
	if (*value != '\0' && (buf_append(b, " ", 1) == -1 ||
	    buf_puts(b, value) == -1))
		return -1;
	return buf_append(b, "\n", 1);
}

/* envelope_check - can e be written so that envelope_parse reads it back? */
static bool
envelope_check(const struct envelope *e)
{
	size_t i;

	if (!queue_id_valid(e->id) || e->time < 0)
		return false;
	if (e->sender == NULL || e->client == NULL || e->helo == NULL)
		return false;
	if (!value_ok(e->sender, strlen(e->sender)) ||
	    !value_ok(e->client, strlen(e->client)) ||
	    !value_ok(e->helo, strlen(e->helo)))
		return false;
	if (e->login != NULL && !value_ok(e->login, strlen(e->login)))
		return false;
	if (e->next_attempt < 0 ||
	    (e->dsn[0] != '\0' && !queue_id_valid(e->dsn)))
		return false;
	if (e->nrcpts == 0 || e->rcpts == NULL)
		return false;
	for (i = 0; i < e->nrcpts; i++) {
		const struct envelope_rcpt *r = &e->rcpts[i];

		if (r->addr == NULL || *r->addr == '\0' ||
		    !value_ok(r->addr, strlen(r->addr)))
			return false;
		if ((unsigned)r->status > RCPT_FAILED || !reply_ok(r))
			return false;
	}
	return true;
}

/* put_reply - append the "reply CODE ENH TEXT" record of r, if it has one */
static int
put_reply(struct buf *b, const struct envelope_rcpt *r)
{
	if (r->text == NULL)
		return 0;
	return buf_printf(b, "reply %03d %s%s%s\n", r->code,
	    r->enhanced[0] != '\0' ? r->enhanced : "-",
	    r->text[0] != '\0' ? " " : "", r->text);
}

/* envelope_format - append the on-disk text of e to b */
int
envelope_format(const struct envelope *e, struct buf *b)
{
	size_t i, oldlen = b->len;

	if (!envelope_check(e)) {
		errno = EINVAL;
		return -1;
	}
	/* version 3 only for what version 2 cannot say: a queue with
	   nothing on hold stays readable by the release before */
	if (buf_printf(b, "%s %d\n", ENVELOPE_MAGIC, e->held > 0 ?
	    ENVELOPE_VERSION : 2) == -1 ||
	    put_record(b, "id", e->id) == -1 ||
	    buf_printf(b, "time %lld\n", (long long)e->time) == -1 ||
	    put_record(b, "sender", e->sender) == -1 ||
	    (e->login != NULL && put_record(b, "login", e->login) == -1) ||
	    put_record(b, "client", e->client) == -1 ||
	    put_record(b, "helo", e->helo) == -1 ||
	    put_record(b, "body", e->body_8bit ? "8bitmime" : "7bit") == -1 ||
	    put_record(b, "smtputf8", e->smtputf8 ? "1" : "0") == -1 ||
	    buf_printf(b, "size %" PRIu64 "\n", e->size) == -1)
		goto toobig;
	if (e->prepend_len > 0) {
		size_t n = 4 * ((e->prepend_len + 2) / 3);
		char *b64;

		if (e->prepend_len > ENVELOPE_PREPEND_MAX)
			goto toobig;
		b64 = xmalloc(n + 1);
		EVP_EncodeBlock((unsigned char *)b64,
		    (const unsigned char *)e->prepend, (int)e->prepend_len);
		n = put_record(b, "prepend", b64) == -1;	/* no printf:
							   it is long */
		free(b64);
		if (n)
			goto toobig;
	}
	if ((e->attempts > 0 &&
	    buf_printf(b, "attempts %u\n", e->attempts) == -1) ||
	    (e->next_attempt > 0 &&
	    buf_printf(b, "next %lld\n", (long long)e->next_attempt) == -1) ||
	    (e->dsn[0] != '\0' && put_record(b, "dsn", e->dsn) == -1) ||
	    (e->held > 0 &&
	    buf_printf(b, "hold %lld\n", (long long)e->held) == -1))
		goto toobig;
	for (i = 0; i < e->nrcpts; i++)
		if (buf_puts(b, "rcpt ") == -1 ||
		    buf_puts(b, rcpt_status_names[e->rcpts[i].status]) == -1 ||
		    put_record(b, "", e->rcpts[i].addr) == -1 ||
		    put_reply(b, &e->rcpts[i]) == -1)
			goto toobig;
	if (buf_puts(b, "end\n") == -1)
		goto toobig;
	return 0;

toobig:
	b->len = oldlen;
	if (b->data)
		b->data[oldlen] = '\0';
	errno = E2BIG;
	return -1;
}

/* parse_u64 - plain decimal digits, no leading zeros, fits in max */
static int
parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* key_is - does the record key k[0..klen) equal the literal name? */
static bool
key_is(const char *k, size_t klen, const char *name)
{
	return strlen(name) == klen && memcmp(k, name, klen) == 0;
}

/* value_is - does v[0..vlen) equal the literal s? */
static bool
value_is(const char *v, size_t vlen, const char *s)
{
	return strlen(s) == vlen && memcmp(v, s, vlen) == 0;
}

/* parse_rcpt - "STATUS ADDR" into a new recipient of e */
static const char *
parse_rcpt(const char *v, size_t vlen, struct envelope *e,
    struct parse_state *ps)
{
	struct envelope_rcpt *r;
	const char *sp;
	size_t slen;
	int st;

	if ((sp = memchr(v, ' ', vlen)) == NULL)
		return "recipient record without status and address";
	slen = (size_t)(sp - v);
	for (st = RCPT_PENDING; st <= RCPT_FAILED; st++)
		if (value_is(v, slen, rcpt_status_names[st]))
			break;
	if (st > RCPT_FAILED)
		return "unknown recipient status";
	if (slen + 1 == vlen)
		return "empty recipient address";
	if (e->nrcpts == ps->rcap) {
		ps->rcap = ps->rcap ? ps->rcap * 2 : 4;
		e->rcpts = xreallocarray(e->rcpts, ps->rcap,
		    sizeof(*e->rcpts));
	}
	r = &e->rcpts[e->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->addr = xstrndup(sp + 1, vlen - slen - 1);
	r->status = (enum rcpt_status)st;
	return NULL;
}

/*
 * parse_reply - "CODE ENH TEXT" for the recipient on the line before:
 * CODE "000" or 200-599, ENH an RFC 3463 code or "-", TEXT the rest (may
 * be empty, and then its separating space may be missing too)
 */
static const char *
parse_reply(const char *v, size_t vlen, struct envelope *e,
    const struct parse_state *ps)
{
	struct envelope_rcpt *r;
	const char *ev, *tv;
	size_t elen, tlen;
	int code;

	if (ps->prev == PREV_REPLY)
		return "second reply record for a recipient";
	if (ps->prev != PREV_RCPT)
		return "reply record not after a recipient";
	if (vlen < 3 || digits(v, 3) != 3 || (vlen > 3 && v[3] != ' '))
		return "bad reply code";
	code = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
	if (!reply_code_ok(code))
		return "bad reply code";
	ev = vlen > 3 ? v + 4 : v + vlen;
	tv = memchr(ev, ' ', (size_t)(v + vlen - ev));
	elen = (size_t)((tv ? tv : v + vlen) - ev);
	if (!(elen == 1 && ev[0] == '-') && !enhanced_ok(ev, elen))
		return "bad enhanced status code";
	tv = tv ? tv + 1 : v + vlen;
	if ((tlen = (size_t)(v + vlen - tv)) > ENVELOPE_REPLY_MAX)
		return "reply text too long";
	r = &e->rcpts[e->nrcpts - 1];
	r->code = code;
	if (ev[0] != '-')
		memcpy(r->enhanced, ev, elen);	/* enhanced_ok: elen <= 9 */
	r->text = xstrndup(tv, tlen);
	return NULL;
}

/*
 * parse_prepend - base64 of the header fields that go before the message
 * (OpenSSL's decoder; padding bytes it adds are taken off again)
 */
static const char *
parse_prepend(const char *v, size_t vlen, struct envelope *e)
{
	unsigned char *out;
	size_t i, pad = 0;
	int n;

	if (vlen == 0 || vlen % 4 != 0 ||
	    vlen > 4 * ((ENVELOPE_PREPEND_MAX + 2) / 3))
		return "bad prepend record";
	/* '=' only as padding at the end; the decoder is not that strict */
	for (i = 0; i < vlen; i++)
		if (v[i] == '=')
			pad++;
		else if (pad > 0)
			return "bad prepend record";
	if (pad > 2)
		return "bad prepend record";
	out = xmalloc(vlen / 4 * 3 + 1);
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)v,
	    (int)vlen)) < 0) {
		free(out);
		return "bad prepend record";
	}
	if (v[vlen - 1] == '=')
		n--;
	if (v[vlen - 2] == '=')
		n--;
	if (n <= 0) {
		free(out);
		return "bad prepend record";
	}
	out[n] = '\0';
	e->prepend = (char *)out;
	e->prepend_len = (size_t)n;
	return NULL;
}

/* parse_record - one "key value" line into e; NULL or a static reason */
static const char *
parse_record(const char *k, size_t klen, const char *v, size_t vlen,
    struct envelope *e, struct parse_state *ps)
{
	uint64_t n;
	unsigned bit;
	char **strp = NULL;

	if (key_is(k, klen, "rcpt"))
		return parse_rcpt(v, vlen, e, ps);
	if (key_is(k, klen, "reply")) {
		if (ps->version < 2)
			return "record not in envelope version 1";
		return parse_reply(v, vlen, e, ps);
	}
	if (key_is(k, klen, "end"))
		return "end record with a value";

	if (key_is(k, klen, "id"))
		bit = SEEN_ID;
	else if (key_is(k, klen, "time"))
		bit = SEEN_TIME;
	else if (key_is(k, klen, "sender"))
		bit = SEEN_SENDER, strp = &e->sender;
	else if (key_is(k, klen, "login"))
		bit = SEEN_LOGIN, strp = &e->login;
	else if (key_is(k, klen, "client"))
		bit = SEEN_CLIENT, strp = &e->client;
	else if (key_is(k, klen, "helo"))
		bit = SEEN_HELO, strp = &e->helo;
	else if (key_is(k, klen, "body"))
		bit = SEEN_BODY;
	else if (key_is(k, klen, "smtputf8"))
		bit = SEEN_SMTPUTF8;
	else if (key_is(k, klen, "size"))
		bit = SEEN_SIZE;
	else if (key_is(k, klen, "prepend"))
		bit = SEEN_PREPEND;
	else if (key_is(k, klen, "attempts"))
		bit = SEEN_ATTEMPTS;
	else if (key_is(k, klen, "next"))
		bit = SEEN_NEXT;
	else if (key_is(k, klen, "dsn"))
		bit = SEEN_DSN;
	else if (key_is(k, klen, "hold"))
		bit = SEEN_HOLD;
	else
		return "unknown record";
	if ((bit & SEEN_V2) && ps->version < 2)
		return "record not in envelope version 1";
	if (bit == SEEN_HOLD && ps->version < 3)
		return "record not in envelope version 1 or 2";
	if (ps->seen & bit)
		return "duplicate record";
	ps->seen |= bit;

	if (strp != NULL) {
		*strp = xstrndup(v, vlen);
		return NULL;
	}
	switch (bit) {
	case SEEN_ID:
		if (vlen != QUEUE_ID_LEN)
			return "bad queue id";
		memcpy(e->id, v, QUEUE_ID_LEN);
		e->id[QUEUE_ID_LEN] = '\0';
		if (!queue_id_valid(e->id))
			return "bad queue id";
		return NULL;
	case SEEN_TIME:
		if (parse_u64(v, vlen, INT64_MAX, &n) == -1 ||
		    (time_t)n < 0 || (uint64_t)(time_t)n != n)
			return "bad time";
		e->time = (time_t)n;
		return NULL;
	case SEEN_BODY:
		if (value_is(v, vlen, "7bit"))
			e->body_8bit = false;
		else if (value_is(v, vlen, "8bitmime"))
			e->body_8bit = true;
		else
			return "bad body type";
		return NULL;
	case SEEN_SMTPUTF8:
		if (value_is(v, vlen, "0"))
			e->smtputf8 = false;
		else if (value_is(v, vlen, "1"))
			e->smtputf8 = true;
		else
			return "bad smtputf8 flag";
		return NULL;
	case SEEN_SIZE:
		if (parse_u64(v, vlen, UINT64_MAX, &n) == -1)
			return "bad size";
		e->size = n;
		return NULL;
	case SEEN_PREPEND:
		return parse_prepend(v, vlen, e);
	case SEEN_ATTEMPTS:
		if (parse_u64(v, vlen, UINT_MAX, &n) == -1)
			return "bad attempts";
		e->attempts = (unsigned)n;
		return NULL;
	case SEEN_NEXT:
		if (parse_u64(v, vlen, INT64_MAX, &n) == -1 ||
		    (time_t)n < 0 || (uint64_t)(time_t)n != n)
			return "bad next attempt time";
		e->next_attempt = (time_t)n;
		return NULL;
	case SEEN_DSN:
		if (vlen != QUEUE_ID_LEN)
			return "bad dsn queue id";
		memcpy(e->dsn, v, QUEUE_ID_LEN);
		e->dsn[QUEUE_ID_LEN] = '\0';
		if (!queue_id_valid(e->dsn))
			return "bad dsn queue id";
		return NULL;
	case SEEN_HOLD:
		if (parse_u64(v, vlen, INT64_MAX, &n) == -1 || n == 0 ||
		    (time_t)n < 0 || (uint64_t)(time_t)n != n)
			return "bad hold time";
		e->held = (time_t)n;
		return NULL;
	}
	return "unknown record";	/* not reached */
}

/* parse_magic - the first line: "postern-envelope VERSION", 1 to 3 */
static const char *
parse_magic(const char *line, size_t len, struct parse_state *ps)
{
	static const char magic[] = ENVELOPE_MAGIC " ";
	uint64_t version;

	if (len < sizeof(magic) - 1 || memcmp(line, magic, sizeof(magic) - 1))
		return "not a postern envelope";
	if (parse_u64(line + sizeof(magic) - 1, len - (sizeof(magic) - 1),
	    UINT64_MAX, &version) == -1 || version < ENVELOPE_VERSION_MIN ||
	    version > ENVELOPE_VERSION)
		return "unsupported envelope version";
	ps->version = (unsigned)version;
	return NULL;
}

/* envelope_parse - text[0..len) into *e, or -1 with a static reason */
int
envelope_parse(const char *text, size_t len, struct envelope *e,
    const char **err)
{
	const char *p, *end, *why = NULL;
	struct parse_state ps;
	bool first = true, ended = false;

	memset(e, 0, sizeof(*e));
	memset(&ps, 0, sizeof(ps));
	if (text == NULL)
		text = "", len = 0;
	p = text;
	end = text + len;
	while (p < end) {
		const char *nl, *sp;
		size_t linelen, klen;

		if (ended) {
			why = "data after end record";
			goto bad;
		}
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			why = "truncated line (no newline)";
			goto bad;
		}
		linelen = (size_t)(nl - p);
		if (!value_ok(p, linelen)) {
			if (memchr(p, '\r', linelen) != NULL)
				why = "carriage return in envelope";
			else if (memchr(p, '\0', linelen) != NULL)
				why = "NUL byte in envelope";
			else
				why = "control character in envelope";
			goto bad;
		}
		if (first) {
			if ((why = parse_magic(p, linelen, &ps)) != NULL)
				goto bad;
			first = false;
		} else if (linelen == 0) {
			why = "empty line";
			goto bad;
		} else if (key_is(p, linelen, "end")) {
			ended = true;
		} else {
			sp = memchr(p, ' ', linelen);
			klen = sp ? (size_t)(sp - p) : linelen;
			why = parse_record(p, klen, sp ? sp + 1 : nl,
			    sp ? (size_t)(nl - sp - 1) : 0, e, &ps);
			if (why != NULL)
				goto bad;
			ps.prev = key_is(p, klen, "rcpt") ? PREV_RCPT :
			    key_is(p, klen, "reply") ? PREV_REPLY : PREV_OTHER;
		}
		p = nl + 1;
	}
	if (first) {
		why = "empty envelope";
		goto bad;
	}
	if (!ended) {
		why = "missing end record (truncated)";
		goto bad;
	}
	if ((ps.seen & SEEN_REQUIRED) != SEEN_REQUIRED) {
		why = !(ps.seen & SEEN_ID) ? "missing id record" :
		    !(ps.seen & SEEN_TIME) ? "missing time record" :
		    !(ps.seen & SEEN_SENDER) ? "missing sender record" :
		    !(ps.seen & SEEN_CLIENT) ? "missing client record" :
		    !(ps.seen & SEEN_HELO) ? "missing helo record" :
		    !(ps.seen & SEEN_BODY) ? "missing body record" :
		    !(ps.seen & SEEN_SMTPUTF8) ? "missing smtputf8 record" :
		    "missing size record";
		goto bad;
	}
	if (e->nrcpts == 0) {
		why = "no recipients";
		goto bad;
	}
	return 0;

bad:
	envelope_free(e);
	if (err != NULL)
		*err = why;
	return -1;
}

/* envelope_add_rcpt - append a pending recipient (copies addr) */
void
envelope_add_rcpt(struct envelope *e, const char *addr)
{
	struct envelope_rcpt *r;

	e->rcpts = xreallocarray(e->rcpts, e->nrcpts + 1, sizeof(*e->rcpts));
	r = &e->rcpts[e->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(addr);
	r->status = RCPT_PENDING;
}

/* envelope_set_reply - record a reply, made safe to write */
void
envelope_set_reply(struct envelope_rcpt *r, int code, const char *enhanced,
    const char *text)
{
	size_t i, len;

	envelope_clear_reply(r);
	r->code = reply_code_ok(code) ? code : 0;
	if (enhanced != NULL) {
		len = strnlen(enhanced, sizeof(r->enhanced));
		if (len < sizeof(r->enhanced) && enhanced_ok(enhanced, len))
			memcpy(r->enhanced, enhanced, len + 1);
	}
	if (text == NULL)
		text = "";
	len = strnlen(text, ENVELOPE_REPLY_MAX);
	r->text = xstrndup(text, len);
	for (i = 0; i < len; i++)
		if ((unsigned char)r->text[i] < 0x20 ||
		    (unsigned char)r->text[i] == 0x7f)
			r->text[i] = '?';
}

/* envelope_clear_reply - no reply recorded for r */
void
envelope_clear_reply(struct envelope_rcpt *r)
{
	free(r->text);
	r->text = NULL;
	r->code = 0;
	memset(r->enhanced, 0, sizeof(r->enhanced));
}

/* envelope_free - release every heap string and the recipient array */
void
envelope_free(struct envelope *e)
{
	size_t i;

	for (i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].text);
	}
	free(e->rcpts);
	free(e->sender);
	free(e->login);
	free(e->client);
	free(e->helo);
	free(e->prepend);
	memset(e, 0, sizeof(*e));
}
