/*
 * envelope - the small, typed, versioned record that goes with each queued
 * message (format documented in queue/QUEUE.md and envelope.c)
 *
 * envelope_format() writes it: version 3 when it holds what only version
 * 3 can say (hold), else version 2, so that a queue with nothing on hold
 * stays readable by the release before; envelope_parse() reads it back
 * and is the only reader: it accepts versions 1 to 3 and rejects other
 * versions, unknown record types (and records of a later version than
 * the file's), values with control characters,
 * a missing end marker (truncation), and ids that are not [A-Za-z0-9].
 * Input to envelope_parse is untrusted (a damaged disk, an admin's
 * editor): it never crashes, it says what is wrong.
 *
 * Memory: every string in a struct envelope is a heap string owned by the
 * envelope and released by envelope_free(). Out of memory aborts
 * (common/alloc.h).
 */
#ifndef POSTERN_ENVELOPE_H
#define POSTERN_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"

#define ENVELOPE_VERSION	3	/* the newest; 1 and 2 are still read */
#define QUEUE_ID_LEN		20	/* [0-9A-Za-z], time-ordered prefix */
#define ENVELOPE_PREPEND_MAX	65536	/* bytes of prepended header fields */
#define ENVELOPE_REPLY_MAX	1024	/* bytes of a recipient's reply text */

enum rcpt_status {
	RCPT_PENDING = 0,	/* not yet delivered */
	RCPT_DELIVERED,		/* a remote 250: never send again */
	RCPT_FAILED,		/* permanent failure: bounce owed or sent */
};

/*
 * A recipient, and the reply its last delivery attempt got (the "reply"
 * record): text is NULL when none is recorded, and then code is 0 and
 * enhanced is "". With text set, code is the server's reply code
 * (200-599), or 0 for a local failure with no server reply (timeout,
 * connection refused, DNS; "000" on disk); enhanced is an RFC 3463 code
 * such as "4.4.1", or "" when there is none ("-" on disk); text may be "".
 * A pending recipient with a reply was deferred; a failed one keeps the
 * reply for its DSN. Set and clear it with envelope_set_reply() and
 * envelope_clear_reply(), which keep it writable.
 */
struct envelope_rcpt {
	char		*addr;		/* "local@domain" as received */
	enum rcpt_status status;
	int		 code;		/* 200-599, or 0 (see above) */
	char		 enhanced[12];	/* "5.1.1", or "" */
	char		*text;		/* NULL: no reply recorded */
};

struct envelope {
	char		 id[QUEUE_ID_LEN + 1];
	time_t		 time;		/* when it was accepted */
	char		*sender;	/* "local@domain"; "" for <> */
	char		*login;		/* SASL login; NULL when trusted */
	char		*client;	/* client IP address */
	char		*helo;		/* client's EHLO/HELO, sanitized */
	bool		 body_8bit;	/* BODY=8BITMIME */
	bool		 smtputf8;	/* SMTPUTF8 */
	uint64_t	 size;		/* bytes in the message file */
	char		*prepend;	/* header fields (CRLF-terminated) that
					   go before the message file's bytes:
					   the DKIM signatures; NULL if none.
					   Stored as "prepend BASE64". */
	size_t		 prepend_len;
	unsigned	 attempts;	/* delivery attempts made so far */
	time_t		 next_attempt;	/* when to try next; 0: at once */
	char		 dsn[QUEUE_ID_LEN + 1];	/* queue id of the DSN sent
					   for the failed recipients, so it
					   is sent only once; "" if none */
	time_t		 held;		/* when an admin put it on hold
					   (`postern queue hold`: never
					   attempted until released); 0:
					   not held */
	struct envelope_rcpt *rcpts;
	size_t		 nrcpts;
};

/*
 * envelope_format - append the on-disk text of e to b (version 2, or 3
 * with held set). Refuses what envelope_parse would reject (invalid id, NULL
 * sender/client/helo, a control character such as CR, LF or NUL in a
 * value, no recipients, a negative time or next_attempt, a dsn that is
 * neither "" nor a valid id, a reply with a code other than 0 or 200-599,
 * an invalid enhanced code, or text longer than ENVELOPE_REPLY_MAX):
 * -1 with errno EINVAL; past b's max: -1 with E2BIG. b is unchanged on -1.
 */
int	envelope_format(const struct envelope *e, struct buf *b);

/*
 * envelope_parse - parse text[0..len) into *e (all strings newly
 * allocated; release with envelope_free). Returns 0, or -1 with *err set
 * to a static reason, leaving *e empty.
 */
int	envelope_parse(const char *text, size_t len, struct envelope *e,
	    const char **err);

/* envelope_add_rcpt - append a pending recipient without a reply (copies
   addr) */
void	envelope_add_rcpt(struct envelope *, const char *addr);

/*
 * envelope_set_reply - record r's last reply, replacing any earlier one,
 * in a form envelope_format always accepts (the reply comes from a remote
 * server, so it is made safe rather than refused): a code other than 0 or
 * 200-599 becomes 0, an enhanced code that is not valid RFC 3463 syntax
 * (or NULL) becomes "", text (NULL: "") is copied with each control
 * character replaced by '?' and cut to ENVELOPE_REPLY_MAX bytes.
 */
void	envelope_set_reply(struct envelope_rcpt *r, int code,
	    const char *enhanced, const char *text);

/* envelope_clear_reply - forget r's reply (text NULL, code 0) */
void	envelope_clear_reply(struct envelope_rcpt *r);

/* envelope_free - release what envelope_parse/add_rcpt allocated and the
   strings set by the caller (all are heap strings); leaves *e zeroed */
void	envelope_free(struct envelope *);

/* queue_id_valid - exactly QUEUE_ID_LEN characters of [0-9A-Za-z] */
bool	queue_id_valid(const char *);

#endif
