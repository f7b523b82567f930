/*
 * reply - the table of every reply the submission server sends; see
 * reply.h, and submit/REPLIES.md for when each is sent.
 *
 * The counter column keeps the counts the server has always made: a
 * refusal of MAIL, RCPT or the data counts under its reason
 * (postern_messages_rejected_total), a connection refusal under
 * postern_connections_refused_total, AUTH outcomes under
 * postern_auth_total. Two are counted elsewhere on purpose: 535 (AUTH
 * failure: counted when decided, the reply leaves after the delay, or
 * never if the client leaves first) and 250 "queued as" (the commit is
 * counted also when its client has left).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "submit/reply.h"

#define NONE	REPLY_UNCOUNTED

#define R(id, code, status, text, metric) \
	[REPLY_##id] = { #id, code, status, text, metric }

static const struct reply table[REPLY_NIDS] = {
	/* connections */
	R(CONN_LOCAL_USER, 554, "5.7.1", "%s Local user %s (uid %u) may not "
	    "send mail: no local_senders entry", M_REFUSED_LOCAL_USER),
	R(CONN_TOO_MANY, 421, "4.7.0", "%s Too many connections, try again "
	    "later", M_REFUSED_CONNECTIONS),
	R(CONN_PER_IP, 421, "4.7.0", "%s Too many connections from your "
	    "address, try again later", M_REFUSED_CONNECTIONS_PER_IP),
	R(CONN_RATE, 421, "4.7.0", "%s Too many new connections from your "
	    "address, try again later", M_REFUSED_CONNECTION_RATE),
	R(CONN_AUTH_LOCKOUT, 421, "4.7.0", "%s Too many failed "
	    "authentications from your address, try again later",
	    M_REFUSED_AUTH_LOCKOUT),

	/* the session */
	R(GREETING, 220, "", "%s ESMTP Postern", NONE),
	R(EHLO, 250, "", "%s", NONE),
	R(HELO, 250, "", "%s", NONE),
	R(HELO_SYNTAX, 501, "5.5.4", "%s", NONE),
	R(OK, 250, "2.0.0", "Ok", NONE),
	R(BYE, 221, "2.0.0", "Bye", NONE),
	R(VRFY, 252, "2.5.2", "Cannot VRFY user, but will accept message and "
	    "attempt delivery", NONE),
	R(NOT_IMPLEMENTED, 502, "5.5.1", "Error: command not implemented",
	    NONE),
	R(HELP, 214, "2.0.0", "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT "
	    "DATA RSET NOOP QUIT VRFY HELP", NONE),
	R(UNKNOWN_COMMAND, 502, "5.5.2", "Error: command not recognized",
	    NONE),
	R(HTTP, 554, "5.7.0", "Error: this is an SMTP server, not HTTP", NONE),
	R(LINE_TOO_LONG, 500, "5.5.2", "Error: line too long", NONE),
	R(NUL_IN_COMMAND, 500, "5.5.2", "Error: NUL character in command",
	    NONE),
	R(STARTTLS_READY, 220, "2.0.0", "Ready to start TLS", NONE),
	R(TLS_ACTIVE, 503, "5.5.1", "Error: TLS already active", NONE),
	R(TLS_UNAVAILABLE, 454, "4.7.0", "TLS not available", NONE),
	R(STARTTLS_SYNTAX, 501, "5.5.4", "Syntax: STARTTLS", NONE),
	R(AUTH_NEED_TLS, 530, "5.7.0", "Must issue a STARTTLS command first",
	    NONE),
	R(AUTH_NOT_ENABLED, 503, "5.5.1", "Error: authentication not enabled",
	    NONE),
	R(AUTH_ALREADY, 503, "5.5.1", "Error: already authenticated", NONE),
	R(AUTH_IN_TRANSACTION, 503, "5.5.1", "Error: MAIL transaction in "
	    "progress", NONE),
	R(AUTH_SYNTAX, 501, "5.5.4", "%s", NONE),
	R(AUTH_NO_MECHANISM, 504, "5.5.4", "Unrecognized authentication type",
	    NONE),
	R(AUTH_CHALLENGE, 334, "", "%s", NONE),
	R(AUTH_OK, 235, "2.7.0", "Authentication successful", M_AUTH_SUCCESS),
	R(AUTH_FAILED, 535, "5.7.8", "Error: authentication failed", NONE),
	R(AUTH_LOCKED_IP, 454, "4.7.0", "Too many failed authentications from "
	    "your address; try again after %s", M_AUTH_LOCKED),
	R(AUTH_LOCKED_LOGIN, 454, "4.7.0", "Too many failed authentications "
	    "for this login; try again after %s", M_AUTH_LOCKED),
	R(AUTH_CANCELLED, 501, "5.0.0", "Authentication cancelled", NONE),
	R(AUTH_MALFORMED, 501, "5.5.2", "Error: malformed authentication "
	    "response", NONE),
	R(AUTH_LINE_TOO_LONG, 500, "5.5.6", "Error: authentication exchange "
	    "line too long", NONE),
	R(AUTH_TEMPORARY, 454, "4.7.0", "Temporary authentication failure",
	    NONE),
	R(NEED_HELO, 503, "5.5.1", "Error: send HELO/EHLO first", NONE),
	R(AUTH_REQUIRED, 530, "5.7.0", "Authentication required",
	    M_REJECT_AUTH_REQUIRED),
	R(NESTED_MAIL, 503, "5.5.1", "Error: nested MAIL command", NONE),
	R(MAIL_RCPT_SYNTAX, 501, "5.5.4", "%s", M_REJECT_SYNTAX),
	R(MAIL_RCPT_PARAM, 555, "5.5.4", "%s", M_REJECT_SYNTAX),
	R(SENDER_SYNTAX, 501, "5.1.7", "%s", M_REJECT_SYNTAX),
	R(RCPT_SYNTAX, 501, "5.1.3", "%s", M_REJECT_SYNTAX),
	R(UTF8_REQUIRED, 553, "5.6.7", "%s", M_REJECT_SYNTAX),
	R(SIZE_EXCEEDED, 552, "5.3.4", "Message size exceeds fixed limit of "
	    "%" PRIu64 " bytes", M_REJECT_SIZE),
	R(QUEUE_SPACE, 452, "4.3.1", "Insufficient system storage, try again "
	    "later", M_REJECT_QUEUE_SPACE),
	R(NULL_SENDER, 553, "5.7.1", "Null sender not allowed for submission",
	    M_REJECT_SENDER),
	R(SENDER_NOT_OWNED, 553, "5.7.1", "Sender address <%s> not owned by "
	    "user %s", M_REJECT_SENDER),
	R(SENDER_LISTENER, 553, "5.7.1", "Sender address <%s> not allowed on "
	    "this listener", M_REJECT_SENDER),
	R(SENDER_LOCAL, 553, "5.7.1", "Sender address <%s> not allowed for "
	    "local user %s", M_REJECT_SENDER),
	R(RATE_MESSAGES_HOUR, 450, "4.7.1", "Error: %s has sent %" PRIu64
	    " messages this hour, the limit (%s = %u); try again after %s",
	    M_REJECT_RATE_LIMIT),
	R(RATE_MESSAGES_DAY, 450, "4.7.1", "Error: %s has sent %" PRIu64
	    " messages this day, the limit (%s = %u); try again after %s",
	    M_REJECT_RATE_LIMIT),
	R(MAIL_OK, 250, "2.1.0", "Ok", NONE),
	R(NEED_MAIL, 503, "5.5.1", "Error: need MAIL command", NONE),
	R(TOO_MANY_RCPTS, 452, "4.5.3", "Error: too many recipients",
	    M_REJECT_TOO_MANY_RECIPIENTS),
	R(RATE_RCPTS_HOUR, 452, "4.7.1", "Error: %s has sent %" PRIu64
	    " recipients this hour, the limit (%s = %u); try again after %s",
	    M_REJECT_RATE_LIMIT),
	R(RATE_RCPTS_DAY, 452, "4.7.1", "Error: %s has sent %" PRIu64
	    " recipients this day, the limit (%s = %u); try again after %s",
	    M_REJECT_RATE_LIMIT),
	R(RCPT_FLOOD, 450, "4.7.1", "<%s>: Recipient address rejected: it has "
	    "been sent %" PRIu64 " messages this hour, the limit "
	    "(limits.recipient_messages_per_hour = %u); try again after %s",
	    M_REJECT_RECIPIENT_FLOOD),
	R(RCPT_NXDOMAIN, 550, "5.1.2", "<%s>: Recipient address rejected: "
	    "domain %s does not exist", M_REJECT_DNS_DOMAIN),
	R(RCPT_NULL_MX, 556, "5.1.10", "<%s>: Recipient address rejected: "
	    "domain %s accepts no mail (null MX)", M_REJECT_DNS_DOMAIN),
	R(RCPT_OK, 250, "2.1.5", "Ok", NONE),
	R(DATA_SYNTAX, 501, "5.5.4", "Syntax: DATA", NONE),
	R(NO_VALID_RCPTS, 554, "5.5.1", "Error: no valid recipients", NONE),
	R(DATA_GO, 354, "", "End data with <CR><LF>.<CR><LF>", NONE),

	/* the message data */
	R(BARE_NEWLINE, 521, "5.5.2", "Error: bare <LF> or <CR> in message "
	    "data", M_REJECT_CONTENT),
	R(HEADER_TOO_BIG, 552, "5.3.4", "Message header section exceeds %zu "
	    "bytes", M_REJECT_HEADER),
	R(LINE_998, 550, "5.6.0", "Message has a line longer than 998 "
	    "characters", M_REJECT_CONTENT),
	R(HEADER_MALFORMED, 550, "5.6.0", "Message header section is "
	    "malformed: %s", M_REJECT_HEADER),
	R(FROM_COUNT, 550, "5.6.0", "Message must have exactly one From: "
	    "address", M_REJECT_HEADER),
	R(FROM_MALFORMED, 550, "5.6.0", "Malformed From: header: %s",
	    M_REJECT_HEADER),
	R(FROM_NOT_OWNED, 550, "5.7.1", "From: address <%s> not owned by user "
	    "%s", M_REJECT_SENDER),
	R(FROM_LISTENER, 550, "5.7.1", "From: address <%s> not allowed on this "
	    "listener", M_REJECT_SENDER),
	R(FROM_LOCAL, 550, "5.7.1", "From: address <%s> not allowed for local "
	    "user %s", M_REJECT_SENDER),
	R(FROM_NOT_HOSTED, 550, "5.7.1", "From: domain %s is not hosted here",
	    M_REJECT_SENDER),
	R(HEADER_UNSIGNABLE, 550, "5.6.0", "Message header section cannot be "
	    "signed: %s", M_REJECT_HEADER),
	R(SIGN_FAILED, 451, "4.7.0", "Error: cannot sign the message",
	    M_REJECT_INTERNAL),
	R(QUEUE_WRITE, 451, "4.3.0", "Error: queue file write error",
	    M_REJECT_INTERNAL),
	R(QUEUED, 250, "2.0.0", "Ok: queued as %s", NONE),

	/* the end of a session */
	R(TOO_MANY_ERRORS, 421, "4.7.0", "%s Error: too many errors", NONE),
	R(TIMEOUT, 421, "4.4.2", "%s Error: timeout exceeded", NONE),
	R(SHUTDOWN, 421, "4.3.2", "%s Service shutting down, try again later",
	    NONE),
	R(LIFETIME, 421, "4.4.2", "%s Error: session lifetime exceeded", NONE),
};

/* reply_get - the entry of id, or NULL */
const struct reply *
reply_get(enum reply_id id)
{
	if ((unsigned)id >= REPLY_NIDS || table[id].name == NULL)
		return NULL;
	return &table[id];
}

/* reply_vformat - "CODE STATUS TEXT" of id into line */
size_t
reply_vformat(char *line, size_t len, enum reply_id id, va_list ap)
{
	const struct reply *r = reply_get(id);
	size_t n;
	int k;

	if (r == NULL)
		log_panic("reply %d is not in the table", (int)id);
	if (len > REPLY_MAX + 1)
		len = REPLY_MAX + 1;
	if (len == 0)
		return 0;
	k = snprintf(line, len, r->status[0] ? "%d %s " : "%d ", r->code,
	    r->status);
	if (k < 0)
		log_panic("reply format");
	n = (size_t)k < len ? (size_t)k : len - 1;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	k = vsnprintf(line + n, len - n, r->text, ap);
#pragma GCC diagnostic pop
	if (k < 0)
		log_panic("reply format");
	n += (size_t)k < len - n ? (size_t)k : len - n - 1;
	return n;
}

/* reply_format - the same, variadic */
size_t
reply_format(char *line, size_t len, enum reply_id id, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, id);
	n = reply_vformat(line, len, id, ap);
	va_end(ap);
	return n;
}

/* reply_count - one more under id's counter */
void
reply_count(enum reply_id id)
{
	const struct reply *r = reply_get(id);

	if (r != NULL && r->metric != REPLY_UNCOUNTED)
		metrics_inc(r->metric);
}

/* reply_vmake - format and count */
size_t
reply_vmake(char *line, size_t len, enum reply_id id, va_list ap)
{
	size_t n;

	n = reply_vformat(line, len, id, ap);
	reply_count(id);
	return n;
}
