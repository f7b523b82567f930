/*
 * sched - the delivery scheduler: which queued message is tried when,
 * and what is recorded after each attempt
 *
 * Each queued message is in exactly one state (enum sched_state below);
 * relay/SCHED.md lists them, the one event that moves a message on from
 * each, and what a crash in each means. sched_start() indexes the queue
 * as startup recovery left it; sched_queued() adds a message the moment
 * its commit is durable. A message is due at its envelope's
 * next_attempt (0: now).
 *
 * Memory does not grow with the queue's envelopes: per queued message
 * the scheduler keeps a compact entry (id, due time, state, about a
 * hundred bytes with its index slots) in a heap by due time, so a tick
 * looks only at what is due; the envelope is loaded from disk
 * (queue_load_envelope) when the message becomes active and freed when
 * it comes to rest again. At most 10,000 envelopes (SC_ACTIVE_MAX in
 * sched.c, as Postfix's qmgr_message_active_limit) are in memory at
 * once, and at most 2 x relay.connections attempts (64 at least) are
 * in flight; what is due beyond that waits in the heap, in order.
 *
 * An attempt hands every pending recipient to the transport
 * (relay/transport.h) that sched_new() picked from relay.mode: the
 * network (relay/deliver.c) or a folder (relay/maildir.c); the
 * scheduler knows nothing else of either. The envelope sender outbound
 * is the sender domain's bounce_address when it has one, else the
 * submitter's own. Each recipient's outcome is classified here, once: a
 * 2xx reply makes the recipient delivered, a 5xx failed, anything else
 * leaves it pending with the reply kept for `postern queue show` and
 * the DSN. The envelope is replaced on disk (queue_update: fsync and
 * rename) before the next attempt can start, so a retry or a restart
 * never sends again to a recipient that was already accepted; a crash
 * between a remote 250 and that write is the only way a recipient gets
 * a message twice.
 *
 * A message whose pending recipients all go to destinations the
 * transport says are down (relay/transport.h: down, still_down) is not
 * tried and not rewritten: it waits, IDLE (its entry only), until the
 * first of them may be probed, or until the transport says one is up
 * again (relay/SCHED.md, "Destinations that are down"); past
 * relay.retry.expire it is tried (and deferred at once) so it expires.
 *
 * Retries back off exponentially: relay.retry.first after the first
 * attempt, doubling, at most relay.retry.max apart. relay.retry.expire
 * after acceptance, the recipients still pending fail with 5.4.7 and
 * the reply they last got. A message whose recipients are all final is
 * removed from disk (queue_remove); if one failed, the bounce to its
 * sender (relay/dsn.c) is queued first and its id recorded in the
 * envelope (dsn), so a restart never sends it twice and a crash never
 * loses it. A bounce beyond limits.bounces_per_hour for its sender
 * (relay/budget.h) is not written yet: the message is held as it is
 * (failed recipients, no dsn), due again when the sender's window ends,
 * and is checked again then; a restart (which forgets the counts)
 * checks it at once.
 *
 * Transport and queue callbacks carry a message serial, never a
 * pointer, and find the one scheduler of the process through a static:
 * at most one scheduler exists at a time. Loop thread only. Nothing
 * here calls exit(); a transition SCHED.md does not list is a bug
 * (log_panic).
 */
#ifndef POSTERN_SCHED_H
#define POSTERN_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"

struct event_base;
struct dns;
struct inject;
struct keyring;
struct queue;
struct sched;
struct transport;

/* The state of one queued message (relay/SCHED.md). */
enum sched_state {
	SCHED_ST_IDLE,		/* waiting for its due time */
	SCHED_ST_DELIVERING,	/* a transport attempt in flight */
	SCHED_ST_WRITING,	/* its envelope update in flight */
	SCHED_ST_BOUNCING,	/* its DSN being committed */
	SCHED_ST_HELD,		/* its DSN over limits.bounces_per_hour */
	SCHED_ST_REMOVING,	/* its removal in flight */
	SCHED_ST_ONHOLD,	/* an admin put it on hold (the envelope's
				   hold): never attempted until released */
};

/*
 * sched_new - a scheduler for cfg's relay.mode over q: the transport is
 * relay/maildir.c in directory mode (which creates relay.directory and
 * its tmp/, new/ and cur/, 0700, if missing), else relay/deliver.c
 * with dns (which must be attached to the loop and outlive the
 * scheduler); bounces go into the queue through inj (queue/inject.h),
 * signed with the keyring's keys. NULL with *err (newly allocated) if
 * that fails, or if a scheduler exists.
 */
struct sched	*sched_new(struct event_base *, const struct config *,
		    struct queue *, struct inject *, struct dns *,
		    const struct keyring *, char **err);

/*
 * sched_new_with - sched_new() with what it would choose chosen by the
 * caller (tests): transport (required) becomes the scheduler's, freed by
 * sched_free() or by this call if it fails; now is the clock (NULL:
 * time(NULL)), read for due times, back-off, expiry, the bounce budget
 * and the delay in the log; tick_ms the interval between scans for due
 * messages (0: one second).
 */
struct sched_seam {
	struct transport	*transport;
	time_t			(*now)(void);
	unsigned		 tick_ms;
};
struct sched	*sched_new_with(struct event_base *, const struct config *,
		    struct queue *, struct inject *, const struct keyring *,
		    const struct sched_seam *, char **err);

/*
 * sched_start - index every queued message (queue_scan: its id and due
 * time, no envelope read) and start the timer. Returns the number of
 * messages indexed, or -1 if the queue cannot be read.
 */
int		 sched_start(struct sched *);

/* sched_queued - the message id was just committed: schedule it now */
void		 sched_queued(struct sched *, const char *id);

/* sched_set_keys - the DKIM keys bounces are signed with from now on
   (SIGHUP); kr must outlive the scheduler */
void		 sched_set_keys(struct sched *, const struct keyring *);

/*
 * sched_drain - the daemon is stopping: start no new delivery attempt
 * (and tell the transport); those in flight finish and their outcomes
 * are recorded as usual (a recipient still pending stays queued for the
 * next start).
 * sched_busy - how many messages have an attempt or a disk operation in
 * flight (the caller stops once it is 0, or at its timeout).
 */
void		 sched_drain(struct sched *);
size_t		 sched_busy(const struct sched *);

/* sched_stats - messages queued, and when the oldest was accepted (0
   when none); read-only, for the metrics (a NULL sched has none) */
void		 sched_stats(const struct sched *, size_t *n, time_t *oldest);

/*
 * sched_info - the scheduler's counts (tests, benchmarks); a NULL sched
 * has none. Cheap: no walk.
 */
struct sched_info {
	size_t		 queued;	/* as sched_stats */
	size_t		 waiting;	/* IDLE because every pending
					   recipient goes to a destination
					   the transport says is down */
	size_t		 busy;		/* as sched_busy */
	size_t		 active;	/* envelopes in memory now */
	size_t		 active_high;	/* the most at once, ever */
	size_t		 active_max;	/* the limit (SC_ACTIVE_MAX) */
	uint64_t	 loads;		/* envelopes read from disk */
	uint64_t	 looked;	/* due entries the tick took up */
	size_t		 index_bytes;	/* memory of the index: entries,
					   heap and hash slots */
};
void		 sched_info(const struct sched *, struct sched_info *);

/* sched_msg_state - message id's state into *st; -1 if the scheduler
   does not track id (never queued, or already removed) */
int		 sched_msg_state(const struct sched *, const char *id,
		    enum sched_state *st);

/* sched_strstate - a state's name for logs ("idle", "delivering", ...);
   static text */
const char	*sched_strstate(enum sched_state);

/*
 * What an admin asks of queued messages (`postern queue`, through
 * daemon/control.h), and who asked, for the log.
 */
enum sched_admin_op {
	SCHED_FLUSH,	/* due now; destinations that are down forgotten */
	SCHED_HOLD,	/* on hold (written to the envelope) */
	SCHED_RELEASE,	/* off hold, due now */
	SCHED_DELETE,	/* removed, no bounce */
	SCHED_BOUNCE,	/* its pending recipients fail ("deleted by the
			   administrator"), the bounce goes to its sender,
			   then it is removed */
};

/* sched_admin_cb - the change op made to message id is settled: error
   NULL (done) or why not (static, or valid during the call) */
typedef void (*sched_admin_cb)(uint64_t cookie, const char *id,
    const char *error);

/*
 * sched_admin - apply op to the messages ids[0..n) (SCHED_FLUSH with n
 * 0: every message that waits for a retry). All or nothing: every id is
 * checked first, and if one is not a queue id, not queued, being
 * delivered or written right now, or not in a state op applies to
 * (release: not on hold; flush: on hold), nothing changes: -1 with *err
 * (newly allocated, "ID: why"). Otherwise the changes start, each
 * logged with who ("uid 0 (root)"), and the return is how many of them
 * are still in flight: cb(cookie, id, error) comes once for each, from
 * the loop, never from inside this call. The others are done already:
 * flush (due now: the tick starts the attempts), hold of a message on
 * hold already. A hold, release or bounce is done once its envelope is
 * durable; a delete once the file is gone (a bounce: once the DSN is
 * queued and the message removed). An id given twice counts once.
 */
int		 sched_admin(struct sched *, enum sched_admin_op,
		    const char *const *ids, size_t n, const char *who,
		    sched_admin_cb cb, uint64_t cookie, char **err);

/*
 * sched_stop - start no new attempt or disk operation; operations the
 * queue already has still call back (in queue_close()), and only update
 * memory. Call before queue_close(), then sched_free() after it.
 */
void		 sched_stop(struct sched *);

/* sched_free - free everything (the transport first, which cancels its
   attempts without callbacks); NULL is a no-op */
void		 sched_free(struct sched *);

#endif
