/*
 * queue - the durable on-disk queue (layout, states and recovery:
 * relay/QUEUE.md)
 *
 * Writing a message: queue_msg_new() creates the message file in tmp/ with
 * O_EXCL; the session streams the message through queue_msg_write() (a
 * small write buffer, never the whole message); queue_msg_commit() hands
 * the message and its envelope to the committer thread, which fsyncs the
 * message file, writes and fsyncs the envelope, renames both into queue/
 * (envelope last: its rename is the commit point) and fsyncs the queue/
 * directory. Messages waiting together share one directory fsync (group
 * commit). Only then is the callback run, on the event loop thread, and
 * only then may the session say 250.
 *
 * Across the thread boundary the caller passes a cookie (a session id to
 * look up), never a pointer to its session, so a client that disconnects
 * while its message commits cannot cause a use-after-free.
 *
 * Errors on the write path return -1 with errno set; the session turns them
 * into 451 4.3.0. Nothing here calls exit().
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "relay/envelope.h"

struct event_base;
struct queue;
struct queue_msg;

/*
 * queue_open - open (creating with mode 0700 if create is set) state_dir's
 * tmp/, queue/ and corrupt/ directories. NULL with *err (newly allocated,
 * caller frees) on failure.
 */
struct queue	*queue_open(const char *state_dir, int create, char **err);
void		 queue_close(struct queue *);

/*
 * queue_recover - startup recovery: delete stale tmp/ files, delete a
 * message file in queue/ without its envelope (never acknowledged), move
 * unreadable or unparsable envelopes (and their message) to corrupt/.
 * Never crashes on bad files. Counts go to the out parameters (any may be
 * NULL). Returns 0, or -1 if a directory cannot be read.
 */
int	queue_recover(struct queue *, unsigned *queued, unsigned *removed,
	    unsigned *corrupt);

/*
 * queue_start - start the committer thread; completion callbacks will run
 * on base's loop. Call once, after any fork/privilege change. Returns 0 or
 * -1 with errno. The committer calls event_active() from its own thread,
 * so main must call evthread_use_pthreads() before it creates base.
 * queue_close (on the loop thread, before event_base_free) lets the
 * committer finish every queued commit, joins it and runs the callbacks
 * the loop has not run yet.
 */
int	queue_start(struct queue *, struct event_base *base);

/* queue_msg_new - new message file in tmp/ with a fresh id; NULL+errno */
struct queue_msg *queue_msg_new(struct queue *);
const char	*queue_msg_id(const struct queue_msg *);
int		 queue_msg_write(struct queue_msg *, const void *, size_t);
uint64_t	 queue_msg_size(const struct queue_msg *);	/* bytes written */

/* queue_msg_abort - remove the tmp/ file and free m (any time before
   commit) */
void		 queue_msg_abort(struct queue_msg *);

/*
 * queue_commit_cb - runs on the loop thread exactly once per commit:
 * error 0 means the message and envelope are durable in queue/, otherwise
 * error is an errno value and nothing was published. id is valid only
 * during the call. It may start new commits; it must not call queue_close.
 */
typedef void	queue_commit_cb(uint64_t cookie, int error, const char *id);

/*
 * queue_msg_commit - asynchronous commit (queue_start must have run). Takes
 * ownership of m; e is copied (its id and size are set from m). Returns 0
 * if queued for commit, -1 with errno (m is then aborted): EINVAL if e
 * cannot be written (see envelope_format), or a write error of m.
 */
int	queue_msg_commit(struct queue_msg *m, const struct envelope *e,
	    queue_commit_cb *cb, uint64_t cookie);

/* queue_msg_commit_sync - the same, done now on this thread (tools,
   tests). Takes ownership of m. Returns 0 or -1 with errno. */
int	queue_msg_commit_sync(struct queue_msg *m, const struct envelope *e);

/* Reading, for `postern queue` and the relay. */

/*
 * queue_foreach - call fn for every committed message in queue/, oldest
 * id first, with its parsed envelope (valid only during the call); bad
 * envelopes are reported through bad (may be NULL) and skipped. Returns 0
 * or -1 with errno.
 */
int	queue_foreach(struct queue *, void (*fn)(const struct envelope *,
	    void *), void (*bad)(const char *id, const char *why, void *),
	    void *arg);

/* queue_load_envelope - read and parse the envelope of id; -1 with *err
   (static text) if it is missing or damaged */
int	queue_load_envelope(struct queue *, const char *id,
	    struct envelope *e, const char **err);

/* queue_open_message - open the message file of id for reading; fd or -1
   with errno */
int	queue_open_message(struct queue *, const char *id);

/* queue_stats - counters since queue_open (tests, metrics); thread-safe */
struct queue_stats {
	uint64_t	commits;	/* messages made durable */
	uint64_t	failures;	/* commits that reported an error */
	uint64_t	batches;	/* committer rounds (async) */
	uint64_t	max_batch;	/* most messages in one round */
	uint64_t	dir_fsyncs;	/* fsyncs of queue/, sync and async */
};
void	queue_stats(struct queue *, struct queue_stats *);

#endif
