/*
 * reply - every reply the submission server sends, as one table
 *
 * Each reply has an id (enum reply_id); the table (reply.c) gives its
 * code, enhanced status code (RFC 3463; "" for the few replies without
 * one: the greeting, HELO/EHLO, 334, 354), its text and the counter
 * (common/metrics.h) it counts under when it is sent, or REPLY_UNCOUNTED.
 * The text is a printf format where the reply carries a value (a host
 * name, an address, a size, a time); the caller passes the values, in
 * the order the format takes them, after the id, with exactly the types
 * its conversions name (%s const char *, %u unsigned, %zu size_t,
 * PRIu64 uint64_t; no others are used, test_reply checks): the compiler
 * cannot check them, since the format is the table's. submit/REPLIES.md
 * documents the same table, row by row, with the id in its own column;
 * tests/unit/test_reply.c checks the two against each other both ways.
 *
 * A line about to be sent is made by reply_vmake, which formats and
 * counts in one call (the session's session_reply_id and the server's
 * connection refusals use it), so a refusal is counted under the reason
 * its id names, never by matching its text; rewording a reply cannot
 * move its count.
 *
 * Multi-line replies (EHLO) are built by their caller line by line with
 * the table's code (reply_get()->code).
 *
 * Pure data and formatting, no allocation. Loop thread only (the
 * counters are not locked).
 */
#ifndef POSTERN_REPLY_H
#define POSTERN_REPLY_H

#include <stdarg.h>
#include <stddef.h>

#include "common/metrics.h"

/* the longest reply line we build, without CRLF (RFC 5321 4.5.3.1.5
   allows 512 with it; our longest carry an address and a host name, or
   a SASL challenge); longer lines are truncated */
#define REPLY_MAX		1021

/* the counter column of a reply that is not a refusal to count */
#define REPLY_UNCOUNTED		M_NCOUNTERS

enum reply_id {
	REPLY_NONE = 0,		/* not a reply: "allowed" from the limits */

	/* connections, refused before a session starts (submit/server.c) */
	REPLY_CONN_LOCAL_USER,
	REPLY_CONN_TOO_MANY,
	REPLY_CONN_PER_IP,
	REPLY_CONN_RATE,
	REPLY_CONN_AUTH_LOCKOUT,

	/* the session, command by command */
	REPLY_GREETING,
	REPLY_EHLO,
	REPLY_HELO,
	REPLY_HELO_SYNTAX,
	REPLY_OK,
	REPLY_BYE,
	REPLY_VRFY,
	REPLY_NOT_IMPLEMENTED,
	REPLY_HELP,
	REPLY_UNKNOWN_COMMAND,
	REPLY_HTTP,
	REPLY_LINE_TOO_LONG,
	REPLY_NUL_IN_COMMAND,
	REPLY_STARTTLS_READY,
	REPLY_TLS_ACTIVE,
	REPLY_TLS_UNAVAILABLE,
	REPLY_STARTTLS_SYNTAX,
	REPLY_AUTH_NEED_TLS,
	REPLY_AUTH_NOT_ENABLED,
	REPLY_AUTH_ALREADY,
	REPLY_AUTH_IN_TRANSACTION,
	REPLY_AUTH_SYNTAX,
	REPLY_AUTH_NO_MECHANISM,
	REPLY_AUTH_CHALLENGE,
	REPLY_AUTH_OK,
	REPLY_AUTH_FAILED,
	REPLY_AUTH_LOCKED_IP,
	REPLY_AUTH_LOCKED_LOGIN,
	REPLY_AUTH_CANCELLED,
	REPLY_AUTH_MALFORMED,
	REPLY_AUTH_LINE_TOO_LONG,
	REPLY_AUTH_TEMPORARY,
	REPLY_NEED_HELO,
	REPLY_AUTH_REQUIRED,
	REPLY_NESTED_MAIL,
	REPLY_MAIL_RCPT_SYNTAX,
	REPLY_MAIL_RCPT_PARAM,
	REPLY_SENDER_SYNTAX,
	REPLY_RCPT_SYNTAX,
	REPLY_UTF8_REQUIRED,
	REPLY_SIZE_EXCEEDED,
	REPLY_QUEUE_SPACE,
	REPLY_NULL_SENDER,
	REPLY_SENDER_NOT_OWNED,
	REPLY_SENDER_LISTENER,
	REPLY_SENDER_LOCAL,
	REPLY_RATE_MESSAGES_HOUR,
	REPLY_RATE_MESSAGES_DAY,
	REPLY_MAIL_OK,
	REPLY_NEED_MAIL,
	REPLY_TOO_MANY_RCPTS,
	REPLY_RATE_RCPTS_HOUR,
	REPLY_RATE_RCPTS_DAY,
	REPLY_RCPT_FLOOD,
	REPLY_RCPT_NXDOMAIN,
	REPLY_RCPT_NULL_MX,
	REPLY_RCPT_OK,
	REPLY_DATA_SYNTAX,
	REPLY_NO_VALID_RCPTS,
	REPLY_DATA_GO,

	/* the message data */
	REPLY_BARE_NEWLINE,
	REPLY_HEADER_TOO_BIG,
	REPLY_LINE_998,
	REPLY_HEADER_MALFORMED,
	REPLY_FROM_COUNT,
	REPLY_FROM_MALFORMED,
	REPLY_FROM_NOT_OWNED,
	REPLY_FROM_LISTENER,
	REPLY_FROM_LOCAL,
	REPLY_FROM_NOT_HOSTED,
	REPLY_HEADER_UNSIGNABLE,
	REPLY_SIGN_FAILED,
	REPLY_QUEUE_WRITE,
	REPLY_QUEUED,

	/* the end of a session */
	REPLY_TOO_MANY_ERRORS,
	REPLY_TIMEOUT,
	REPLY_SHUTDOWN,
	REPLY_LIFETIME,

	REPLY_NIDS
};

struct reply {
	const char	*name;		/* the id without REPLY_, as
					   REPLIES.md names it */
	int		 code;		/* 220 ... 556 */
	const char	*status;	/* "5.7.1", or "" */
	const char	*text;		/* printf format */
	enum metric	 metric;	/* or REPLY_UNCOUNTED */
};

/* reply_get - the table entry of id; NULL for REPLY_NONE or an id out of
   range. Static storage. */
const struct reply	*reply_get(enum reply_id);

/*
 * reply_format - write reply id with its values into line (size len,
 * at most REPLY_MAX + 1 used): "CODE STATUS TEXT" (or "CODE TEXT"
 * when it has no status), NUL-terminated, no CRLF, truncated to fit.
 * Returns its length. reply_vformat is the same with a va_list. An id
 * that is not in the table is a broken invariant (log_panic).
 */
size_t	reply_format(char *line, size_t len, enum reply_id, ...);
size_t	reply_vformat(char *line, size_t len, enum reply_id, va_list);

/* reply_count - count id under its metric (nothing if uncounted) */
void	reply_count(enum reply_id);

/* reply_vmake - reply_vformat and reply_count: the line of a reply
   about to be sent (its senders are variadic themselves) */
size_t	reply_vmake(char *line, size_t len, enum reply_id, va_list);

#endif
