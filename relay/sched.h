/*
 * sched - the delivery scheduler: which queued message is tried when,
 * and what is recorded after each attempt
 *
 * The scheduler keeps every queued message's envelope in memory (they
 * are small; XXX a bounded "active queue" as Postfix's qmgr keeps is the
 * way to millions of messages). sched_start() loads the queue as startup
 * recovery left it; sched_queued() adds a message the moment its commit
 * is durable. A message is due at its envelope's next_attempt (0: now).
 *
 * An attempt delivers every pending recipient through the transport of
 * relay.mode (a folder, or relay/deliver.c over the network; the
 * envelope sender outbound is the sender domain's bounce_address when it
 * has one, else the submitter's own) and records each outcome in the
 * envelope: a 2xx reply makes the
 * recipient delivered, a 5xx failed, anything else leaves it pending
 * with the reply kept for `postern queue show` and the DSN. The envelope
 * is replaced on disk (queue_update: fsync and rename) before the next
 * attempt can start, so a retry or a restart never sends again to a
 * recipient that was already accepted; a crash between a remote 250 and
 * that write is the only way a recipient gets a message twice.
 *
 * Retries back off exponentially: relay.retry.first after the first
 * attempt, doubling, at most relay.retry.max apart. relay.retry.expire
 * after acceptance, the recipients still pending fail with 5.4.7 and
 * the reply they last got. A message whose recipients are all final is
 * removed from disk (queue_remove); if one failed, the bounce to its
 * sender (relay/dsn.c) is queued first and its id recorded in the
 * envelope (dsn), so a restart never sends it twice and a crash never
 * loses it. A bounce beyond limits.bounces_per_hour for its sender
 * (relay/budget.h) is not written yet: the message stays queued as it
 * is (failed recipients, no dsn), due again when the sender's window
 * ends, and is checked again then; a restart (which forgets the counts)
 * checks it at once.
 *
 * Loop thread only. Nothing here calls exit().
 */
#ifndef POSTERN_SCHED_H
#define POSTERN_SCHED_H

#include <time.h>

#include "config/config.h"

struct event_base;
struct dns;
struct inject;
struct keyring;
struct queue;
struct sched;

/*
 * sched_new - a scheduler for cfg's relay.mode over q. Directory mode
 * creates relay.directory and its tmp/, new/ and cur/ (0700) if missing;
 * mx and smarthost modes deliver through relay/deliver.c with dns (which
 * must be attached to the loop and outlive the scheduler); bounces go
 * into the queue through inj, signed with the keyring's keys. NULL with
 * *err (newly allocated) if that fails.
 */
struct sched	*sched_new(struct event_base *, const struct config *,
		    struct queue *, struct inject *, struct dns *,
		    const struct keyring *, char **err);

/*
 * sched_start - load every queued message (queue_foreach) and start the
 * timer. Returns the number of messages loaded, or -1 if the queue
 * cannot be read.
 */
int		 sched_start(struct sched *);

/* sched_queued - the message id was just committed: schedule it now */
void		 sched_queued(struct sched *, const char *id);

/* sched_set_keys - the DKIM keys bounces are signed with from now on
   (SIGHUP); kr must outlive the scheduler */
void		 sched_set_keys(struct sched *, const struct keyring *);

/*
 * sched_drain - the daemon is stopping: start no new delivery attempt;
 * those in flight finish and their outcomes are recorded as usual (a
 * recipient still pending stays queued for the next start).
 * sched_busy - how many messages have an attempt or a disk operation in
 * flight (the caller stops once it is 0, or at its timeout).
 */
void		 sched_drain(struct sched *);
size_t		 sched_busy(const struct sched *);

/* sched_stats - messages queued, and when the oldest was accepted (0
   when none); read-only, for the metrics (a NULL sched has none) */
void		 sched_stats(const struct sched *, size_t *n, time_t *oldest);

/*
 * sched_stop - start no new attempt or disk operation; operations the
 * queue already has still call back (in queue_close()), and only update
 * memory. Call before queue_close(), then sched_free() after it.
 */
void		 sched_stop(struct sched *);

/* sched_free - free everything; NULL is a no-op */
void		 sched_free(struct sched *);

#endif
