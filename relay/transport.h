/*
 * transport - how one delivery attempt of one queued message leaves:
 * the interface between the scheduler (relay/sched.c) and the ways out
 *
 * Implementations: the network (relay/deliver.c, relay.mode mx and
 * smarthost: deliver_transport_new) and a Maildir-style folder
 * (relay/maildir.c, relay.mode directory: maildir_new); tests supply
 * their own (tests/unit/test_sched.c). An implementation embeds struct
 * transport as its first member and fills in the function pointers; the
 * scheduler owns it from sched_new on and calls free() once, last.
 *
 * An attempt: start() gets the message's envelope (as it is on disk:
 * every recipient with its status) and tries every recipient that is
 * RCPT_PENDING, with sender as the envelope sender outbound (MAIL FROM).
 * For each of them it reports exactly one outcome through rcpt_cb: the
 * recipient's index in e->rcpts and the reply as it came (code 0 for
 * no reply at all: a timeout, a refused connection, a local failure;
 * enhanced "" when there was none; text NULL counts as ""), plus relay,
 * which names where it came from for the log. Then done_cb, once, ends the
 * attempt. The transport only reports; the scheduler classifies each
 * outcome exactly once (2xx delivered, 5xx failed, anything else
 * deferred) and writes it to the envelope.
 *
 * Callbacks run on the loop thread. They carry the scheduler's cookie
 * (a message serial to look up), never a pointer, so a message forgotten
 * meanwhile is simply not found. They may run before start() returns
 * (the folder transport does all its work there) or later from the loop
 * (the network); strings passed to them are valid only during the call.
 * start() copies from e and sender what it keeps.
 */
#ifndef POSTERN_TRANSPORT_H
#define POSTERN_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "queue/envelope.h"

/* transport_rcpt_cb - the outcome for recipient number rcpt of the
   attempt's envelope */
typedef void (*transport_rcpt_cb)(uint64_t cookie, size_t rcpt, int code,
    const char *enhanced, const char *text, const char *relay);

/* transport_done_cb - every pending recipient of the attempt has had
   its outcome */
typedef void (*transport_done_cb)(uint64_t cookie);

struct transport {
	/* name - for logs: "mx", "smarthost", "directory" */
	const char	*name;

	/*
	 * start - try every pending recipient of e (see the top). Returns
	 * 0: the callbacks have run or will run; or -1 with *err (newly
	 * allocated): nothing was tried and nothing will call back.
	 */
	int		(*start)(struct transport *, const struct envelope *e,
			    const char *sender, transport_rcpt_cb,
			    transport_done_cb, uint64_t cookie, char **err);

	/* drain - the daemon is stopping and no further start() will
	   come; attempts in flight still finish and call back. May be
	   NULL (nothing to do). */
	void		(*drain)(struct transport *);

	/* free - abort what is in flight without calling back, and free
	   the transport */
	void		(*free)(struct transport *);
};

#endif
