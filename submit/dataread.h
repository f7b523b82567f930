/*
 * dataread - the SMTP DATA reader: a byte state machine (RFC 5321 4.1.1.4,
 * 4.5.2), after chasquid's readUntilDot and qmail's blast
 *
 * Feed it the bytes that follow "354" in whatever chunks the socket gives.
 * It undoes dot-stuffing, finds the terminating CRLF.CRLF, counts message
 * bytes against the size limit and line lengths against the RFC 5322
 * limit, and hands back the message bytes with CRLF line ends intact.
 *
 * Every line must end in CRLF. A bare LF or a bare CR anywhere (SMTP
 * smuggling) is fatal for the transaction: dataread_feed stops and reports
 * DATAREAD_BARE, and the session answers 521 and closes, as Postfix does
 * with smtpd_forbid_bare_newline, because the end of the data can no
 * longer be found unambiguously.
 *
 * Size and line-length violations are not fatal: reading goes on to the
 * final dot so the reply stays in step with the client; output stops once
 * the size limit is passed; the flags say what went wrong.
 *
 * Output is never longer than input, so an out buffer as large as the
 * input chunk always suffices.
 */
#ifndef POSTERN_DATAREAD_H
#define POSTERN_DATAREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DATAREAD_LINE_MAX	1000	/* octets with CRLF, RFC 5321 4.5.3.1.6 */

enum dataread_status {
	DATAREAD_MORE,		/* consumed everything given, want more */
	DATAREAD_DONE,		/* saw CRLF.CRLF; *consumed stops after it */
	DATAREAD_BARE,		/* bare CR or LF: fatal */
};

struct dataread {
	int		 state;		/* private */
	size_t		 line_len;	/* private: octets in current line */
	uint64_t	 size;		/* message octets after unstuffing */
	uint64_t	 max_size;
	bool		 too_big;	/* size passed max_size */
	bool		 line_too_long;	/* a line passed DATAREAD_LINE_MAX */
};

void	dataread_init(struct dataread *, uint64_t max_size);

/*
 * dataread_feed - consume in[0..len); append message bytes to out and add
 * their number to *outlen (out must have room for len more bytes). Sets
 * *consumed to the input bytes used: len for DATAREAD_MORE, up to and
 * including the final CRLF for DATAREAD_DONE (the rest belongs to the next
 * pipelined command), up to the offending byte for DATAREAD_BARE.
 * The terminating ".CRLF" is not part of the message; the CRLF before it
 * is. A message that is just ".CRLF" right after 354 is empty.
 */
enum dataread_status dataread_feed(struct dataread *, const char *in,
	    size_t len, char *out, size_t *outlen, size_t *consumed);

#endif
