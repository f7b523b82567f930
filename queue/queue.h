/*
 * queue - the durable on-disk queue (layout, states and recovery:
 * queue/QUEUE.md)
 *
 * One file per message, queue/ID: a header, the message, its envelope,
 * and the envelope's updates appended after it.
 *
 * Writing a message (only queue/inject.c does: the one door into the
 * queue): queue_msg_new() creates tmp/ID with O_EXCL; inject streams the
 * message through queue_msg_write() (a small write buffer, never the
 * whole message); queue_msg_commit() hands the message and its envelope
 * to the committer thread, which writes the envelope after the message,
 * fsyncs the file, renames it into queue/ (the commit point) and fsyncs
 * the queue/ directory. Messages waiting together share one directory
 * fsync (group commit). Only then is the callback run, on the event loop
 * thread, and only then may the session say 250.
 *
 * Delivering a message: the delivery side records each attempt with
 * queue_update() (recipient statuses and replies, attempts, next
 * attempt), which appends the new envelope at once, and removes the
 * message with queue_remove(), which moves it out at once; so a crash of
 * the process after either call loses neither. The fsyncs that make
 * them survive a crash of the machine are the committer's, shared with
 * the batch it is working on: one batch may mix new messages, updates
 * and removals.
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
#include <sys/types.h>

#include "queue/envelope.h"

struct event_base;
struct queue;
struct queue_msg;

/*
 * queue_open - open (creating with mode 0700 if create is set) state_dir's
 * tmp/, queue/ and corrupt/ directories. NULL with *err (newly allocated,
 * caller frees) on failure.
 */
struct queue	*queue_open(const char *state_dir, int create, char **err);

/*
 * queue_space - how many bytes and inodes unprivileged writers may still
 * use on the filesystem of the queue (statvfs f_bavail, f_favail; a
 * filesystem without an inode count gives UINT64_MAX files). 0, or -1
 * with errno.
 */
int		 queue_space(struct queue *, uint64_t *bytes, uint64_t *files);
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
 * committer finish every queued operation (commit, update, removal),
 * joins it and runs the callbacks the loop has not run yet.
 */
int	queue_start(struct queue *, struct event_base *base);

/* queue_msg_new - new message file in tmp/ with a fresh id; NULL+errno */
struct queue_msg *queue_msg_new(struct queue *);
const char	*queue_msg_id(const struct queue_msg *);
int		 queue_msg_write(struct queue_msg *, const void *, size_t);
uint64_t	 queue_msg_size(const struct queue_msg *);	/* bytes written */

/*
 * queue_msg_read - read back up to len bytes of what was written, from
 * the message's byte off on (what is still buffered is written out
 * first): for the signer, which hashes the stored message off the loop
 * thread. Bytes read, 0 at the end, or -1 with errno (a write error
 * too). Not concurrently with queue_msg_write on the same m.
 */
ssize_t		 queue_msg_read(struct queue_msg *, void *, size_t,
		    uint64_t off);

/* queue_msg_abort - remove the tmp/ file and free m (any time before
   commit) */
void		 queue_msg_abort(struct queue_msg *);

/*
 * queue_commit_cb - runs on the loop thread exactly once per accepted
 * operation (queue_msg_commit, queue_update or queue_remove that returned
 * 0), never from inside the call that started it. For a commit, error 0
 * means the message and envelope are durable in queue/, otherwise error
 * is an errno value and nothing was published. Updates and removals say
 * below what their errors mean. id is the message's id, valid only during
 * the call. It may start new operations; it must not call queue_close.
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

/*
 * queue_update - record a new envelope for e->id (S4 -> S4 in QUEUE.md;
 * queue_start must have run): e is formatted (as version 2, without its
 * prepend, which never changes) and appended to queue/ID before this
 * returns, with one write and no fsync, so the caller may change or free
 * it at once and a crash of the process after the call cannot lose it;
 * the committer then fsyncs the file. e->id and e->size are written as
 * given: pass the envelope the message has (queue_load_envelope),
 * changed. Returns 0 if queued, -1 with errno (no callback then): EINVAL
 * if the queue is not started or closing, or e cannot be written
 * (invalid id or value, see envelope_format), E2BIG if it is too large.
 *
 * cb then gets error 0 once the new envelope is durable, or an errno:
 * ENOENT if queue/ID did not exist (the message was removed; nothing is
 * created), or a write error (the append was cut off again, and the old
 * envelope stands), or the error of the fsync (the new envelope is in
 * place but may not survive a crash of the machine). An update is
 * idempotent, so a caller may simply retry.
 *
 * The envelope last appended wins, so updates of one id take effect in
 * the order of the calls, and an update after a removal gets ENOENT; a
 * commit and an update of the same id cannot overlap, because an update
 * needs the committed envelope. Do not mix these with the _sync calls on
 * an id that has operations in flight.
 */
int	queue_update(struct queue *, const struct envelope *e,
	    queue_commit_cb *cb, uint64_t cookie);

/*
 * queue_remove - remove a finished message (S4 -> S0; queue_start must
 * have run): queue/ID is renamed to tmp/ID before this returns, so it is
 * never delivered again even if the process dies now; the committer then
 * unlinks it and fsyncs queue/ (shared with its batch). Returns 0 if queued, -1 with
 * errno (no callback then): EINVAL if the queue is not started or
 * closing, or id is not a valid queue id.
 *
 * cb then gets error 0 once the removal is durable, or an errno: ENOENT
 * if queue/ID was already gone, another unlink error (nothing removed),
 * or the error of a failed fsync of queue/ (removed, but it may come
 * back after a crash of the machine).
 */
int	queue_remove(struct queue *, const char *id, queue_commit_cb *cb,
	    uint64_t cookie);

/* queue_update_sync, queue_remove_sync - the same, done now on this
   thread (tools, tests; queue_start is not needed). Return 0, or -1 with
   errno: EINVAL or E2BIG as above, or the error the callback would have
   had. */
int	queue_update_sync(struct queue *, const struct envelope *e);
int	queue_remove_sync(struct queue *, const char *id);

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

/* queue_id_time - when the id was made (its time-ordered prefix: the
   start of the message's DATA), in seconds; 0 for an invalid id */
time_t	queue_id_time(const char *id);

/*
 * queue_scan - call fn for every committed message in queue/, oldest id
 * first, with the time it is due: its file's modification time, which
 * queue_update sets to the envelope's next attempt (a message never
 * deferred is due since it was written). Postfix's queue manager keeps a
 * deferred message's next attempt the same way. No file is opened, so a
 * scheduler can start on a large backlog without reading it, and load an
 * envelope only when its message comes due; anything that touches a file
 * makes it due early, never late. Returns 0 or -1 with errno.
 */
int	queue_scan(struct queue *, void (*fn)(const char *id, time_t due,
	    void *), void *arg);

/* queue_load_envelope - read and parse the envelope of id; -1 with *err
   (static text) if it is missing (errno ENOENT then) or damaged */
int	queue_load_envelope(struct queue *, const char *id,
	    struct envelope *e, const char **err);

/*
 * queue_open_message - open the queue file of id for reading: fd or -1
 * with errno. The message's bytes (the envelope's size of them, without
 * the prepended fields) start at *start; read them with pread and never
 * past size: the envelope follows them in the same file.
 */
int	queue_open_message(struct queue *, const char *id, off_t *start);

/* queue_stats - counters since queue_open (tests, metrics); thread-safe.
   Each counts sync and async operations unless it says otherwise. */
struct queue_stats {
	uint64_t	commits;	/* messages made durable */
	uint64_t	updates;	/* envelopes replaced */
	uint64_t	removes;	/* messages removed */
	uint64_t	failures;	/* operations that reported an error */
	uint64_t	batches;	/* committer rounds (async only) */
	uint64_t	max_batch;	/* most operations in one round */
	uint64_t	dir_fsyncs;	/* fsyncs of queue/ */
	uint64_t	file_fsyncs;	/* fsyncs of queue files */
};
void	queue_stats(struct queue *, struct queue_stats *);

#endif
