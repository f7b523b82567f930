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
 *
 * Destinations that are down (the next hop, or every MX host of a
 * domain, unreachable: Postfix's "dead destination"). A transport that
 * remembers them answers down() before an attempt: "every pending
 * recipient of this envelope goes to a destination that is down until
 * T". The scheduler then does not try the message (no connection, no
 * envelope rewrite) and keeps it waiting until T, remembering only the
 * small number the transport gave it (wait), with which still_down()
 * answers again without the envelope (and, when every message goes to
 * the same place, without one from the start). Once T has passed, one message at
 * a time is let through as the probe (down() says 0 for it, and start()
 * marks the destination as being probed); when a destination answers
 * again the transport calls up_cb, and whatever waited is tried at once.
 */
#ifndef POSTERN_TRANSPORT_H
#define POSTERN_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue/envelope.h"

/* transport_rcpt_cb - the outcome for recipient number rcpt of the
   attempt's envelope */
typedef void (*transport_rcpt_cb)(uint64_t cookie, size_t rcpt, int code,
    const char *enhanced, const char *text, const char *relay);

/* transport_done_cb - every pending recipient of the attempt has had
   its outcome */
typedef void (*transport_done_cb)(uint64_t cookie);

/* transport_up_cb - a destination that was down answers again: every
   message waiting for one may be tried now (arg: up_arg) */
typedef void (*transport_up_cb)(void *arg);

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

	/*
	 * down - 0 if some pending recipient of e goes to a destination
	 * that may be tried now (not known to be down, or due for its
	 * probe: the start() that follows is that probe); else the time
	 * (in the future) until which every one of them is down, with
	 * *wait set to a number other than 0 that names the destination
	 * that comes back first, for still_down(). May be NULL: nothing
	 * is ever down (the folder transport).
	 */
	time_t		(*down)(struct transport *, const struct envelope *e,
			    uint32_t *wait);

	/*
	 * still_down - for a message that waits for *wait: the time (in
	 * the future) until which that destination stays down, or 0 when
	 * the message may be worth trying (the destination is up, due for
	 * its probe, or forgotten): ask down() with its envelope then.
	 * *wait 0 is a message whose envelope was not asked about yet: a
	 * transport that sends every message to one destination (a
	 * smarthost, no routes) answers for it too, setting *wait, so that
	 * a backlog need not be read to learn that; others say 0. NULL
	 * when down is.
	 */
	time_t		(*still_down)(struct transport *, uint32_t *wait);

	/* forget - an admin flushes the queue (`postern queue flush`):
	   forget every destination that is down, so the next attempt to
	   each is made (Postfix's flush does the same). May be NULL. */
	void		(*forget)(struct transport *);
	/* up_cb, up_arg - set by the scheduler before the first start();
	   the transport calls up_cb from the loop (never from inside one
	   of its methods) when a destination that was down answers again.
	   up_cb may be NULL. */
	transport_up_cb	 up_cb;
	void		*up_arg;
};

#endif
