/*
 * msghdr - the message header section: scanning and fix-ups (RFC 5322,
 * RFC 6409 8)
 *
 * The session collects the header section (bounded by limits.header_size)
 * and calls msghdr_scan() on it once, before anything is written to the
 * queue. The body is never looked at or changed.
 *
 * Pure functions: no I/O, no allocation except into the caller's buf.
 */
#ifndef POSTERN_MSGHDR_H
#define POSTERN_MSGHDR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/buf.h"

struct msghdr_info {
	unsigned	 nfrom;		/* From: fields seen */
	const char	*from;		/* value of the first From:, points into
					   the scanned text (after "From:",
					   folding CRLFs included) */
	size_t		 from_len;
	unsigned	 nsender;
	unsigned	 ndate;
	unsigned	 nmessage_id;
	size_t		 len;		/* bytes of header section proper,
					   without the empty line ending it */
	bool		 has_body;	/* an empty line ended the section */
};

/*
 * msghdr_scan - parse text[0..len), the start of a message with CRLF line
 * ends. The header section ends at the first empty line (has_body), or at
 * the end of text (a message with no body). Field names are
 * case-insensitive; continuation lines start with SP or HTAB. Returns 0, or
 * -1 with *err (static text) when a line is neither a field ("name:" with a
 * printable ASCII name, RFC 5322 2.2) nor a continuation, or a
 * continuation comes first.
 */
int	msghdr_scan(const char *text, size_t len, struct msghdr_info *,
	    const char **err);

/*
 * msghdr_end - position just after the CRLFCRLF (or the leading CRLF of a
 * message with an empty header section) that ends the header section in
 * text[0..len), or 0 if it has not arrived yet. Lets the session know when
 * to stop collecting.
 */
size_t	msghdr_end(const char *text, size_t len);

/* msghdr_date - format t as an RFC 5322 date-time in local time with its
   numeric zone, e.g. "Mon, 23 Nov 2026 20:07:29 +0000" into out[64] */
char	*msghdr_date(time_t t, char out[64]);

struct msghdr_received {
	const char	*helo;		/* client's EHLO/HELO argument */
	const char	*client_addr;	/* numeric IP */
	const char	*hostname;	/* ours */
	const char	*protocol;	/* "ESMTPSA", "ESMTPS", "ESMTP", ... (RFC 3848) */
	const char	*tls;		/* e.g. "TLSv1.3:TLS_AES_256_GCM_SHA384" or NULL */
	const char	*queue_id;
	const char	*recipient;	/* when exactly one, else NULL */
	time_t		 time;
};

/*
 * msghdr_add_received / _message_id / _date - append one complete header
 * field, folded at 78 columns where it can be, ending in CRLF, to b.
 * Untrusted parts (helo) are sanitized: only printable ASCII without
 * "()\\" survives, the rest becomes '?'. Return -1 if b's max is passed
 * (b is left unchanged), or, for the Message-ID, if the CSPRNG fails.
 * The Message-ID is "<QUEUEID.RANDOM@hostname>" with RANDOM from a CSPRNG.
 */
int	msghdr_add_received(struct buf *b, const struct msghdr_received *);
int	msghdr_add_message_id(struct buf *b, const char *queue_id,
	    const char *hostname);
int	msghdr_add_date(struct buf *b, time_t);

#endif
