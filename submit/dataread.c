/*
 * dataread - the SMTP DATA byte state machine; see dataread.h.
 *
 * States, and what each byte does in them (anything not listed is
 * DATAREAD_BARE):
 *
 *	BOL	start of a line (also right after 354)
 *		'.'	-> DOT, the dot is held back
 *		'\r'	-> CR, emitted
 *		other	-> LINE, emitted
 *	LINE	inside a line
 *		'\r'	-> CR, emitted
 *		other	-> LINE, emitted
 *	CR	after a CR
 *		'\n'	-> BOL, emitted
 *	DOT	after a dot at the start of a line
 *		'\r'	-> DOTCR, held back
 *		other	-> LINE, emitted: the stuffing dot is dropped
 *	DOTCR	after ".\r" at the start of a line
 *		'\n'	-> END: *consumed stops after this byte
 *
 * A bare LF is seen at once, so *consumed stops just before it. A bare CR
 * is only seen at the byte after it, so *consumed stops after the CR and
 * before that byte (the CR may have been the last byte of an earlier
 * chunk, and has already been emitted then; it does not matter, as the
 * transaction is dead).
 *
 * Line length is counted after unstuffing, as RFC 5321 4.5.3.1.6 says
 * ("not counting the leading dot duplicated for transparency"), and
 * includes the CRLF: 998 octets of text plus CRLF is the most allowed.
 */
#include <string.h>

#include "submit/dataread.h"

enum {
	DR_BOL,
	DR_LINE,
	DR_CR,
	DR_DOT,
	DR_DOTCR,
	DR_END,		/* saw CRLF.CRLF; feed returns DONE, consumes nothing */
	DR_BROKEN,	/* saw a bare CR or LF; feed returns BARE */
};

/* dataread_init - reader positioned at the start of the message */
void
dataread_init(struct dataread *dr, uint64_t max_size)
{
	memset(dr, 0, sizeof(*dr));
	dr->state = DR_BOL;
	dr->max_size = max_size;
}

/* dataread_count - account for one line octet (saturating) */
static inline void
dataread_count(struct dataread *dr)
{
	if (dr->line_len <= DATAREAD_LINE_MAX && ++dr->line_len >
	    DATAREAD_LINE_MAX)
		dr->line_too_long = true;
}

/* dataread_put - one message octet: count it, emit it while within size */
static inline void
dataread_put(struct dataread *dr, char c, char *out, size_t *outlen)
{
	dataread_count(dr);
	if (++dr->size > dr->max_size)
		dr->too_big = true;
	else
		out[(*outlen)++] = c;
}

/*
 * dataread_text - emit the line text that starts at in[i] (not CR or LF)
 * and runs to the next CR, LF or the end of the chunk; return the index
 * of its last byte
 */
static size_t
dataread_text(struct dataread *dr, const char *in, size_t i, size_t len,
    char *out, size_t *outlen)
{
	size_t j, n, room;

	for (j = i + 1; j < len && in[j] != '\r' && in[j] != '\n'; j++)
		;
	n = j - i;

	if (dr->line_len + n > DATAREAD_LINE_MAX)
		dr->line_too_long = true;
	dr->line_len = dr->line_len + n > DATAREAD_LINE_MAX ?
	    DATAREAD_LINE_MAX + 1 : dr->line_len + n;

	room = dr->size >= dr->max_size ? 0 : dr->max_size - dr->size;
	if (n > room)
		dr->too_big = true;
	else
		room = n;
	memcpy(out + *outlen, in + i, room);
	*outlen += room;
	dr->size += n;
	return j - 1;
}

/* dataread_feed - consume one chunk of DATA input; see dataread.h */
enum dataread_status
dataread_feed(struct dataread *dr, const char *in, size_t len, char *out,
    size_t *outlen, size_t *consumed)
{
	size_t i;
	char c;

	*consumed = 0;
	if (dr->state == DR_END)
		return DATAREAD_DONE;
	if (dr->state == DR_BROKEN)
		return DATAREAD_BARE;

	for (i = 0; i < len; i++) {
		c = in[i];
		switch (dr->state) {
		case DR_BOL:
			if (c == '.') {
				dr->state = DR_DOT;
				break;
			}
			/* FALLTHROUGH */
		case DR_LINE:
			if (c == '\r') {
				dataread_put(dr, c, out, outlen);
				dr->state = DR_CR;
			} else if (c == '\n') {
				goto bare;
			} else {
				i = dataread_text(dr, in, i, len, out, outlen);
				dr->state = DR_LINE;
			}
			break;
		case DR_CR:
			if (c != '\n')
				goto bare;
			dataread_put(dr, c, out, outlen);
			dr->line_len = 0;
			dr->state = DR_BOL;
			break;
		case DR_DOT:
			if (c == '\r') {
				dr->state = DR_DOTCR;
			} else if (c == '\n') {
				goto bare;
			} else {
				/* The stuffing dot is dropped; c is text. */
				i = dataread_text(dr, in, i, len, out, outlen);
				dr->state = DR_LINE;
			}
			break;
		case DR_DOTCR:
			if (c != '\n')
				goto bare;
			dr->state = DR_END;
			*consumed = i + 1;
			return DATAREAD_DONE;
		}
	}
	*consumed = len;
	return DATAREAD_MORE;

bare:
	dr->state = DR_BROKEN;
	*consumed = i;
	return DATAREAD_BARE;
}
