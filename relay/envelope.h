/*
 * envelope - the small, typed, versioned record that goes with each queued
 * message (format documented in relay/QUEUE.md and envelope.c)
 *
 * envelope_format() writes it; envelope_parse() reads it back and is the
 * only reader: it rejects unknown versions, unknown record types, values
 * with control characters, a missing end marker (truncation), and ids that
 * are not [A-Za-z0-9]. Input to envelope_parse is untrusted (a damaged
 * disk, an admin's editor): it never crashes, it says what is wrong.
 */
#ifndef POSTERN_ENVELOPE_H
#define POSTERN_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"

#define ENVELOPE_VERSION	1
#define QUEUE_ID_LEN		20	/* [0-9A-Za-z], time-ordered prefix */
#define ENVELOPE_PREPEND_MAX	65536	/* bytes of prepended header fields */

enum rcpt_status {
	RCPT_PENDING = 0,	/* not yet delivered */
	RCPT_DELIVERED,		/* a remote 250: never send again */
	RCPT_FAILED,		/* permanent failure: bounce owed or sent */
};

struct envelope_rcpt {
	char		*addr;		/* "local@domain" as received */
	enum rcpt_status status;
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
	struct envelope_rcpt *rcpts;
	size_t		 nrcpts;
};

/*
 * envelope_format - append the on-disk text of e to b. Refuses what
 * envelope_parse would reject (invalid id, NULL sender/client/helo, a
 * control character such as CR, LF or NUL in a value, no recipients):
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

/* envelope_add_rcpt - append a pending recipient (copies addr) */
void	envelope_add_rcpt(struct envelope *, const char *addr);

/* envelope_free - release what envelope_parse/add_rcpt allocated and the
   strings set by the caller (all are heap strings); leaves *e zeroed */
void	envelope_free(struct envelope *);

/* queue_id_valid - exactly QUEUE_ID_LEN characters of [0-9A-Za-z] */
bool	queue_id_valid(const char *);

#endif
