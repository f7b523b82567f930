/*
 * queue - the durable on-disk queue; see queue.h, and queue/QUEUE.md for
 * the directories, the states, the commit steps and recovery.
 *
 * Threads: everything here runs on the caller's (loop) thread except
 * queue_committer(), which owns an operation (a commit from
 * queue_msg_commit(), an envelope update from queue_update(), a removal
 * from queue_remove()) from the moment it is put on q->pending until it
 * appends the result to q->done. q->lock protects pending, done, stopping,
 * last_usec and stats; inflight and ev's add/del belong to the loop
 * thread, and the committer only calls event_active(). Nothing else is
 * shared. The three directory fds are set once in queue_open() and only
 * read afterwards; every file is named relative to them (*at calls), and
 * every name is built from an id that passed queue_id_valid().
 */
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/io.h"
#include "common/log.h"
#include "queue/envelope.h"
#include "queue/queue.h"

#define QUEUE_WBUF_SIZE		(32 * 1024)	/* write buffer per message */
#define QUEUE_ENVELOPE_MAX	(4 * 1024 * 1024)	/* bytes in ID.env */
#define QUEUE_ID_PREFIX		9	/* base-62 digits of microseconds */
#define QUEUE_NAME_SIZE		(QUEUE_ID_LEN + sizeof(".msg"))
#define QUEUE_NEW_TRIES		8	/* O_EXCL collisions before giving up */
#define QUEUE_BATCH_MAX		1024	/* operations per round: bounds open
					   fds */

enum queue_op {
	QUEUE_OP_COMMIT,	/* a new message: S1 -> S3 */
	QUEUE_OP_UPDATE,	/* a new envelope: S4 -> S4 */
	QUEUE_OP_REMOVE,	/* S4 -> S5 -> S0 */
};

/*
 * One operation for the committer: a new message from queue_msg_new() on
 * (QUEUE_OP_COMMIT), or an update or a removal of a committed message.
 * Those two never have a message file (fd is -1, no wbuf); an update
 * writes envtext to tmp/ID.env like a commit does (envfd, env_created,
 * env_moved).
 */
struct queue_msg {
	struct queue	*q;
	TAILQ_ENTRY(queue_msg) entry;	/* q->pending or q->done */
	char		 id[QUEUE_ID_LEN + 1];
	enum queue_op	 op;
	int		 fd;		/* tmp/ID.msg, -1 once closed */
	int		 envfd;		/* tmp/ID.env while committing */
	bool		 env_created;	/* tmp/ID.env exists */
	bool		 msg_moved;	/* ID.msg is in queue/ */
	bool		 env_moved;	/* ID.env is in queue/: committed */
	char		*wbuf;		/* QUEUE_WBUF_SIZE, on first write */
	size_t		 wlen;
	uint64_t	 size;		/* bytes accepted by queue_msg_write */
	int		 error;		/* first write error, sticky */
	char		*envtext;	/* formatted envelope, at commit */
	size_t		 envlen;
	queue_commit_cb	*cb;
	uint64_t	 cookie;
	int		 result;	/* 0 or errno, set by the committer */
};

TAILQ_HEAD(queue_msgs, queue_msg);

struct queue {
	int		 tmpfd;		/* state_dir/tmp */
	int		 queuefd;	/* state_dir/queue */
	int		 corruptfd;	/* state_dir/corrupt */
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;		/* pending grew, or stopping */
	struct queue_msgs pending;	/* waiting for the committer */
	struct queue_msgs done;		/* results waiting for the loop */
	struct event	*ev;		/* made active by the committer */
	unsigned	 inflight;	/* commits not yet reported (loop) */
	pthread_t	 thread;
	bool		 started;
	bool		 stopping;
	uint64_t	 last_usec;	/* id prefix of the newest id */
	struct queue_stats stats;
};

static const struct timeval queue_keepalive = { 3600, 0 };

static const char queue_digits[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* queue_space - free bytes for us on the queue's filesystem */
int
queue_space(struct queue *q, uint64_t *bytes, uint64_t *files)
{
	struct statvfs st;

	if (fstatvfs(q->tmpfd, &st) == -1)
		return -1;
	*bytes = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
	*files = st.f_files == 0 ? UINT64_MAX : (uint64_t)st.f_favail;
	return 0;
}

/* queue_fname - "ID.msg" or "ID.env" for a valid id */
static void
queue_fname(char name[QUEUE_NAME_SIZE], const char *id, const char *ext)
{
	if (!queue_id_valid(id))
		log_panic("queue: file name from invalid id");
	snprintf(name, QUEUE_NAME_SIZE, "%s.%s", id, ext);
}

/* queue_id_new - fresh id: base-62 microseconds, then random digits */
static int
queue_id_new(struct queue *q, char id[QUEUE_ID_LEN + 1])
{
	struct timespec ts;
	unsigned char rnd[32];
	uint64_t usec;
	size_t i, n;

	clock_gettime(CLOCK_REALTIME, &ts);
	usec = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	pthread_mutex_lock(&q->lock);
	if (usec <= q->last_usec)
		usec = q->last_usec + 1;	/* strictly increasing */
	q->last_usec = usec;
	pthread_mutex_unlock(&q->lock);

	for (i = QUEUE_ID_PREFIX; i-- > 0; usec /= 62)
		id[i] = queue_digits[usec % 62];
	for (n = QUEUE_ID_PREFIX; n < QUEUE_ID_LEN; ) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			errno = EIO;
			return -1;
		}
		/* 248 = 4 * 62: drop the bytes that would bias the digits */
		for (i = 0; i < sizeof(rnd) && n < QUEUE_ID_LEN; i++)
			if (rnd[i] < 248)
				id[n++] = queue_digits[rnd[i] % 62];
	}
	id[QUEUE_ID_LEN] = '\0';
	return 0;
}

/* open_dir - open (creating if asked) the directory name under dfd */
static int
open_dir(int dfd, const char *state_dir, const char *name, int create,
    char **err)
{
	struct stat st;
	int fd;

	if (create && mkdirat(dfd, name, 0700) == -1 && errno != EEXIST) {
		*err = xasprintf("%s/%s: mkdir: %s", state_dir, name,
		    strerror(errno));
		return -1;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1) {
		*err = xasprintf("%s/%s: %s", state_dir, name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
		log_warnx("queue: %s/%s is accessible to group or others "
		    "(mode %03o); it should be 0700", state_dir, name,
		    (unsigned)(st.st_mode & 0777));
	return fd;
}

/* queue_open - open state_dir's tmp/, queue/ and corrupt/ */
struct queue *
queue_open(const char *state_dir, int create, char **err)
{
	struct queue *q;
	int dfd;

	*err = NULL;
	if (create && mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		*err = xasprintf("%s: mkdir: %s", state_dir, strerror(errno));
		return NULL;
	}
	if ((dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		*err = xasprintf("%s: %s", state_dir, strerror(errno));
		return NULL;
	}
	q = xcalloc(1, sizeof(*q));
	q->tmpfd = q->queuefd = q->corruptfd = -1;
	q->tmpfd = open_dir(dfd, state_dir, "tmp", create, err);
	if (q->tmpfd == -1)
		goto fail;
	q->queuefd = open_dir(dfd, state_dir, "queue", create, err);
	if (q->queuefd == -1)
		goto fail;
	q->corruptfd = open_dir(dfd, state_dir, "corrupt", create, err);
	if (q->corruptfd == -1)
		goto fail;
	if (create && fsync(dfd) == -1) {
		*err = xasprintf("%s: fsync: %s", state_dir, strerror(errno));
		goto fail;
	}
	close(dfd);
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	TAILQ_INIT(&q->pending);
	TAILQ_INIT(&q->done);
	return q;

fail:
	if (q->tmpfd != -1)
		close(q->tmpfd);
	if (q->queuefd != -1)
		close(q->queuefd);
	if (q->corruptfd != -1)
		close(q->corruptfd);
	close(dfd);
	free(q);
	return NULL;
}

/* queue_op_new - an operation on the message id, no files open */
static struct queue_msg *
queue_op_new(struct queue *q, enum queue_op op, const char *id)
{
	struct queue_msg *m;

	m = xcalloc(1, sizeof(*m));
	m->q = q;
	m->op = op;
	m->fd = m->envfd = -1;
	memcpy(m->id, id, sizeof(m->id));
	return m;
}

/* queue_msg_free - close and free; the files are the caller's business */
static void
queue_msg_free(struct queue_msg *m)
{
	if (m->fd != -1)
		close(m->fd);
	if (m->envfd != -1)
		close(m->envfd);
	free(m->wbuf);
	free(m->envtext);
	free(m);
}

/* queue_msg_new - create tmp/ID.msg with a fresh id */
struct queue_msg *
queue_msg_new(struct queue *q)
{
	struct queue_msg *m;
	char name[QUEUE_NAME_SIZE];
	int tries, saved;

	m = xcalloc(1, sizeof(*m));
	m->q = q;
	m->op = QUEUE_OP_COMMIT;
	m->fd = m->envfd = -1;
	for (tries = 0; tries < QUEUE_NEW_TRIES; tries++) {
		if (queue_id_new(q, m->id) == -1)
			break;
		queue_fname(name, m->id, "msg");
		m->fd = openat(q->tmpfd, name,
		    O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (m->fd != -1)
			return m;
		if (errno != EEXIST)
			break;
	}
	saved = errno;
	log_warn("queue: cannot create a message file in tmp/");
	queue_msg_free(m);
	errno = saved;
	return NULL;
}

/* queue_msg_id - the message's queue id (lives as long as m) */
const char *
queue_msg_id(const struct queue_msg *m)
{
	return m->id;
}

/* queue_msg_size - bytes accepted so far, buffered or written */
uint64_t
queue_msg_size(const struct queue_msg *m)
{
	return m->size;
}

/* queue_msg_flush - write out the buffer; a failure sticks to m */
static int
queue_msg_flush(struct queue_msg *m)
{
	if (m->wlen > 0 && io_write_all(m->fd, m->wbuf, m->wlen) == -1) {
		m->error = errno;
		return -1;
	}
	m->wlen = 0;
	return 0;
}

/* queue_msg_write - append bytes through the write buffer */
int
queue_msg_write(struct queue_msg *m, const void *p, size_t len)
{
	const char *s = p;
	size_t n;

	if (m->error) {
		errno = m->error;
		return -1;
	}
	while (len > 0) {
		if (m->wlen == 0 && len >= QUEUE_WBUF_SIZE) {
			/* a whole buffer's worth: skip the copy */
			n = len - len % QUEUE_WBUF_SIZE;
			if (io_write_all(m->fd, s, n) == -1) {
				m->error = errno;
				return -1;
			}
		} else {
			if (m->wbuf == NULL)
				m->wbuf = xmalloc(QUEUE_WBUF_SIZE);
			n = QUEUE_WBUF_SIZE - m->wlen;
			if (n > len)
				n = len;
			memcpy(m->wbuf + m->wlen, s, n);
			m->wlen += n;
			if (m->wlen == QUEUE_WBUF_SIZE &&
			    queue_msg_flush(m) == -1)
				return -1;
		}
		s += n;
		len -= n;
		m->size += n;
	}
	return 0;
}

/* queue_msg_abort - unlink tmp/ID.msg and free m */
void
queue_msg_abort(struct queue_msg *m)
{
	char name[QUEUE_NAME_SIZE];

	if (m == NULL)
		return;
	queue_fname(name, m->id, "msg");
	if (unlinkat(m->q->tmpfd, name, 0) == -1 && errno != ENOENT)
		log_warn("queue: %s: unlink tmp/%s", m->id, name);
	queue_msg_free(m);
}

/*
 * queue_op_format - format e as m's envelope text (on the caller's
 * thread, so that the caller may free e at once); -1 with errno EINVAL or
 * E2BIG
 */
static int
queue_op_format(struct queue_msg *m, const struct envelope *e)
{
	struct buf b;

	buf_init(&b, QUEUE_ENVELOPE_MAX);
	if (envelope_format(e, &b) == -1) {
		int saved = errno;

		log_warnx("queue: %s: envelope cannot be written (%s)", m->id,
		    saved == E2BIG ? "too large" : "invalid value");
		buf_free(&b);
		errno = saved == E2BIG ? E2BIG : EINVAL;
		return -1;
	}
	m->envtext = b.data;
	m->envlen = b.len;
	return 0;
}

/* queue_msg_prepare - format the envelope for m (loop thread, at commit) */
static int
queue_msg_prepare(struct queue_msg *m, const struct envelope *e)
{
	struct envelope copy = *e;

	if (m->error) {
		errno = m->error;
		return -1;
	}
	memcpy(copy.id, m->id, sizeof(copy.id));
	copy.size = m->size;
	return queue_op_format(m, &copy);
}

/*
 * queue_update_new - an update operation for e (e->id says which
 * message); NULL with errno EINVAL or E2BIG if e cannot be written
 */
static struct queue_msg *
queue_update_new(struct queue *q, const struct envelope *e)
{
	struct queue_msg *m;

	if (!queue_id_valid(e->id)) {
		log_warnx("queue: update with an invalid queue id");
		errno = EINVAL;
		return NULL;
	}
	m = queue_op_new(q, QUEUE_OP_UPDATE, e->id);
	if (queue_op_format(m, e) == -1) {
		int saved = errno;

		queue_msg_free(m);
		errno = saved;
		return NULL;
	}
	return m;
}

/* queue_remove_new - a removal operation; NULL with EINVAL for a bad id */
static struct queue_msg *
queue_remove_new(struct queue *q, const char *id)
{
	if (!queue_id_valid(id)) {
		log_warnx("queue: remove with an invalid queue id");
		errno = EINVAL;
		return NULL;
	}
	return queue_op_new(q, QUEUE_OP_REMOVE, id);
}

/*
 * Every operation takes three phases. The committer runs each phase for
 * every operation of a batch before the next, then fsyncs queue/ once for
 * the whole batch (queue_run_batch):
 *
 *   queue_op_write	commit: flush the message, write tmp/ID.env;
 *			update: write tmp/ID.env; remove: nothing
 *   queue_op_fsync	commit: fsync and close the message, then the
 *			envelope, checking close(); update: the envelope;
 *			remove: nothing
 *   queue_op_publish	commit: tmp/ID.msg -> queue/ID.msg, then
 *			tmp/ID.env -> queue/ID.env (the commit point);
 *			update: tmp/ID.env -> queue/ID.env if that exists;
 *			remove: unlink queue/ID.env, then queue/ID.msg
 *
 * No rename happens before the files it publishes are durable, which is
 * the order that matters. Publishing runs in the order the operations
 * were queued, and a batch holds at most one operation per id (see
 * queue_take), so one tmp/ID.env is never written by two operations at
 * once. Each phase returns 0 or an errno; queue_op_undo() then removes
 * what a failed operation created, in tmp/ or queue/.
 *
 * XXX Two fsyncs of new files per message remain, and on ext4 each forces
 * its own journal commit: they, not the directory fsync, bound throughput
 * (see QUEUE.md, "Group commit"). Phase 2 is where a batch-wide syncfs()
 * or parallel fsyncs would go.
 */

/* queue_env_write - create tmp/ID.env (O_EXCL) and write m's envelope */
static int
queue_env_write(struct queue_msg *m)
{
	char name[QUEUE_NAME_SIZE];

	queue_fname(name, m->id, "env");
	m->envfd = openat(m->q->tmpfd, name,
	    O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (m->envfd == -1)
		return errno;
	m->env_created = true;
	if (io_write_all(m->envfd, m->envtext, m->envlen) == -1)
		return errno;
	return 0;
}

/* queue_env_fsync - tmp/ID.env durable and closed, checking close() */
static int
queue_env_fsync(struct queue_msg *m)
{
	int r;

	if (fsync(m->envfd) == -1)
		return errno;
	r = close(m->envfd);	/* NFS may report a write error only here */
	m->envfd = -1;
	if (r == -1)
		return errno;
	return 0;
}

/* queue_commit_write - commit phase 1: message flushed, envelope written */
static int
queue_commit_write(struct queue_msg *m)
{
	if (queue_msg_flush(m) == -1)
		return m->error;
	free(m->wbuf);
	m->wbuf = NULL;
	return queue_env_write(m);
}

/* queue_commit_fsync - commit phase 2: both files durable and closed */
static int
queue_commit_fsync(struct queue_msg *m)
{
	int r;

	if (fsync(m->fd) == -1)
		return errno;
	r = close(m->fd);
	m->fd = -1;
	if (r == -1)
		return errno;
	return queue_env_fsync(m);
}

/* queue_commit_rename - commit phase 3: message, then envelope, into
   queue/ */
static int
queue_commit_rename(struct queue_msg *m)
{
	struct queue *q = m->q;
	char name[QUEUE_NAME_SIZE];

	queue_fname(name, m->id, "msg");
	if (renameat(q->tmpfd, name, q->queuefd, name) == -1)
		return errno;
	m->msg_moved = true;
	queue_fname(name, m->id, "env");
	if (renameat(q->tmpfd, name, q->queuefd, name) == -1)
		return errno;
	m->env_moved = true;	/* S3; durable after fsync(queue/) */
	return 0;
}

/*
 * queue_update_rename - update phase 3: tmp/ID.env over queue/ID.env, but
 * only if queue/ID.env exists (ENOENT otherwise): the rename would bring
 * back a message that was removed meanwhile. XXX This is a check, then a
 * rename; in this process only the committer changes queue/ (the _sync
 * calls must not be used on an id that has operations in flight), but a
 * removal by another process between the two would be undone.
 */
static int
queue_update_rename(struct queue_msg *m)
{
	struct queue *q = m->q;
	struct stat st;
	char name[QUEUE_NAME_SIZE];

	queue_fname(name, m->id, "env");
	if (fstatat(q->queuefd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno;
	if (renameat(q->tmpfd, name, q->queuefd, name) == -1)
		return errno;
	m->env_moved = true;	/* replaced; durable after fsync(queue/) */
	return 0;
}

/*
 * queue_remove_unlink - remove phase 3: unlink queue/ID.env (ENOENT if it
 * is already gone, and then nothing is touched), then queue/ID.msg. Once
 * the envelope is gone the message is never delivered again, so a message
 * file that cannot be unlinked is only logged: that is S5, and recovery
 * deletes it at the next start.
 */
static int
queue_remove_unlink(struct queue_msg *m)
{
	struct queue *q = m->q;
	char name[QUEUE_NAME_SIZE];

	queue_fname(name, m->id, "env");
	if (unlinkat(q->queuefd, name, 0) == -1)
		return errno;
	queue_fname(name, m->id, "msg");
	if (unlinkat(q->queuefd, name, 0) == -1 && errno != ENOENT)
		log_warn("queue: %s: unlink queue/%s (recovery will retry)",
		    m->id, name);
	return 0;
}

/* queue_op_write - phase 1 of any operation */
static int
queue_op_write(struct queue_msg *m)
{
	switch (m->op) {
	case QUEUE_OP_COMMIT:
		return queue_commit_write(m);
	case QUEUE_OP_UPDATE:
		return queue_env_write(m);
	case QUEUE_OP_REMOVE:
		break;
	}
	return 0;
}

/* queue_op_fsync - phase 2 of any operation */
static int
queue_op_fsync(struct queue_msg *m)
{
	switch (m->op) {
	case QUEUE_OP_COMMIT:
		return queue_commit_fsync(m);
	case QUEUE_OP_UPDATE:
		return queue_env_fsync(m);
	case QUEUE_OP_REMOVE:
		break;
	}
	return 0;
}

/* queue_op_publish - phase 3 of any operation */
static int
queue_op_publish(struct queue_msg *m)
{
	switch (m->op) {
	case QUEUE_OP_COMMIT:
		return queue_commit_rename(m);
	case QUEUE_OP_UPDATE:
		return queue_update_rename(m);
	case QUEUE_OP_REMOVE:
		return queue_remove_unlink(m);
	}
	return 0;
}

/* queue_commit_undo - after a failed commit: close, remove what exists */
static void
queue_commit_undo(struct queue_msg *m)
{
	struct queue *q = m->q;
	char name[QUEUE_NAME_SIZE];

	if (m->fd != -1) {
		close(m->fd);
		m->fd = -1;
	}
	if (m->envfd != -1) {
		close(m->envfd);
		m->envfd = -1;
	}
	queue_fname(name, m->id, "env");
	if ((m->env_moved || m->env_created) && unlinkat(m->env_moved ?
	    q->queuefd : q->tmpfd, name, 0) == -1)
		log_warn("queue: %s: unlink %s", m->id, name);
	queue_fname(name, m->id, "msg");
	if (unlinkat(m->msg_moved ? q->queuefd : q->tmpfd, name, 0) == -1)
		log_warn("queue: %s: unlink %s", m->id, name);
	m->env_created = m->env_moved = m->msg_moved = false;
}

/*
 * queue_update_undo - after a failed update: close and remove tmp/ID.env.
 * Once it replaced queue/ID.env (only a failed fsync of queue/ comes
 * after that) there is nothing left to undo: the old envelope is gone.
 */
static void
queue_update_undo(struct queue_msg *m)
{
	char name[QUEUE_NAME_SIZE];

	if (m->envfd != -1) {
		close(m->envfd);
		m->envfd = -1;
	}
	queue_fname(name, m->id, "env");
	if (m->env_created && !m->env_moved &&
	    unlinkat(m->q->tmpfd, name, 0) == -1)
		log_warn("queue: %s: unlink tmp/%s", m->id, name);
	m->env_created = false;
}

/* queue_op_undo - after a failure of any operation: clean up, log */
static void
queue_op_undo(struct queue_msg *m, int error)
{
	switch (m->op) {
	case QUEUE_OP_COMMIT:
		log_warnx("queue: %s: commit failed: %s", m->id,
		    strerror(error));
		queue_commit_undo(m);
		break;
	case QUEUE_OP_UPDATE:
		log_warnx("queue: %s: envelope update failed: %s", m->id,
		    strerror(error));
		queue_update_undo(m);
		break;
	case QUEUE_OP_REMOVE:
		log_warnx("queue: %s: remove failed: %s", m->id,
		    strerror(error));
		break;
	}
}

/*
 * queue_run_batch - the three phases for every operation in batch, then
 * one fsync of queue/ if anything reached it. Sets each m->result to 0 or
 * an errno. If that fsync fails, every operation that got that far fails
 * with its errno: commits are undone (their files removed), updates and
 * removals cannot be (the old envelope is gone) and may or may not
 * survive a crash. Returns whether queue/ was fsync'ed.
 */
static bool
queue_run_batch(struct queue *q, struct queue_msgs *batch)
{
	struct queue_msg *m;
	unsigned long long ok = 0;
	int error;

	TAILQ_FOREACH(m, batch, entry)
		m->result = queue_op_write(m);
	TAILQ_FOREACH(m, batch, entry)
		if (m->result == 0)
			m->result = queue_op_fsync(m);
	TAILQ_FOREACH(m, batch, entry) {
		if (m->result == 0)
			m->result = queue_op_publish(m);
		if (m->result == 0)
			ok++;
		else
			queue_op_undo(m, m->result);
	}
	if (ok == 0)
		return false;
	if (fsync(q->queuefd) == -1) {
		error = errno;
		log_warn("queue: fsync queue/, failing %llu operations", ok);
		TAILQ_FOREACH(m, batch, entry)
			if (m->result == 0) {
				m->result = error;
				queue_op_undo(m, error);
			}
	}
	return true;
}

/* queue_tally - count one finished operation (q->lock held) */
static void
queue_tally(struct queue_stats *st, const struct queue_msg *m)
{
	if (m->result != 0)
		st->failures++;
	else if (m->op == QUEUE_OP_COMMIT)
		st->commits++;
	else if (m->op == QUEUE_OP_UPDATE)
		st->updates++;
	else
		st->removes++;
}

/* queue_run_sync - one operation, done now on this thread; frees m */
static int
queue_run_sync(struct queue_msg *m)
{
	struct queue *q = m->q;
	struct queue_msgs batch;
	bool synced;
	int error;

	TAILQ_INIT(&batch);
	TAILQ_INSERT_TAIL(&batch, m, entry);
	synced = queue_run_batch(q, &batch);
	pthread_mutex_lock(&q->lock);
	if (synced)
		q->stats.dir_fsyncs++;
	queue_tally(&q->stats, m);
	pthread_mutex_unlock(&q->lock);
	error = m->result;
	queue_msg_free(m);
	if (error) {
		errno = error;
		return -1;
	}
	return 0;
}

/* queue_in_batch - does batch already hold an operation on id? */
static bool
queue_in_batch(const struct queue_msgs *batch, const char *id)
{
	const struct queue_msg *m;

	TAILQ_FOREACH(m, batch, entry)
		if (memcmp(m->id, id, QUEUE_ID_LEN) == 0)
			return true;
	return false;
}

/*
 * queue_take - pending operations, oldest first: at most QUEUE_BATCH_MAX,
 * and ending before the first one on an id the batch already holds (two
 * updates of one message would both need tmp/ID.env); that one starts the
 * next batch, so the operations on each id still run in order. The scan
 * is quadratic in the batch size, which is bounded, and cheap next to an
 * fsync.
 */
static void
queue_take(struct queue *q, struct queue_msgs *batch, uint64_t *n)
{
	struct queue_msg *m;

	TAILQ_INIT(batch);
	for (*n = 0; *n < QUEUE_BATCH_MAX &&
	    (m = TAILQ_FIRST(&q->pending)) != NULL &&
	    !queue_in_batch(batch, m->id); (*n)++) {
		TAILQ_REMOVE(&q->pending, m, entry);
		TAILQ_INSERT_TAIL(batch, m, entry);
	}
}

/* queue_committer - the committer thread: batches of operations, one
   fsync of queue/ each */
static void *
queue_committer(void *arg)
{
	struct queue *q = arg;
	struct queue_msgs batch;
	struct queue_msg *m;
	uint64_t n;
	bool synced;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (TAILQ_EMPTY(&q->pending) && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		if (TAILQ_EMPTY(&q->pending))
			break;		/* stopping, and nothing left to do */
		queue_take(q, &batch, &n);
		pthread_mutex_unlock(&q->lock);

		synced = queue_run_batch(q, &batch);

		pthread_mutex_lock(&q->lock);
		q->stats.batches++;
		if (n > q->stats.max_batch)
			q->stats.max_batch = n;
		if (synced)
			q->stats.dir_fsyncs++;
		TAILQ_FOREACH(m, &batch, entry)
			queue_tally(&q->stats, m);
		TAILQ_CONCAT(&q->done, &batch, entry);
		pthread_mutex_unlock(&q->lock);
		event_active(q->ev, EV_READ, 0);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* queue_done - loop thread: run the callbacks of finished operations */
static void
queue_done(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	struct queue_msgs done;
	struct queue_msg *m;

	(void)fd;
	(void)what;
	TAILQ_INIT(&done);
	pthread_mutex_lock(&q->lock);
	TAILQ_CONCAT(&done, &q->done, entry);
	pthread_mutex_unlock(&q->lock);
	while ((m = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, m, entry);
		q->inflight--;
		if (m->cb != NULL)
			m->cb(m->cookie, m->result, m->id);
		queue_msg_free(m);
	}
	if (q->inflight == 0)
		event_del(q->ev);	/* nothing owed: the loop may idle */
}

/* queue_start - start the committer thread, reporting to base */
int
queue_start(struct queue *q, struct event_base *base)
{
	sigset_t all, old;
	int r;

	if (q->started) {
		errno = EALREADY;
		return -1;
	}
	if ((q->ev = event_new(base, -1, EV_PERSIST, queue_done, q)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	/* signals stay with the loop thread; fsync never sees EINTR */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&q->thread, NULL, queue_committer, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		event_free(q->ev);
		q->ev = NULL;
		errno = r;
		return -1;
	}
	q->started = true;
	return 0;
}

/*
 * queue_submit - hand m to the committer; its callback will run on the
 * loop thread
 */
static void
queue_submit(struct queue_msg *m, queue_commit_cb *cb, uint64_t cookie)
{
	struct queue *q = m->q;

	m->cb = cb;
	m->cookie = cookie;
	/*
	 * An event that is only ever made active does not count as pending,
	 * so event_base_dispatch() could return with operations in flight.
	 * While any are, keep q->ev added; the timeout only keeps it pending
	 * (firing is harmless: queue_done finds nothing and re-arms).
	 */
	if (q->inflight++ == 0 && event_add(q->ev, &queue_keepalive) == -1)
		log_warnx("queue: event_add failed");
	pthread_mutex_lock(&q->lock);
	TAILQ_INSERT_TAIL(&q->pending, m, entry);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/* queue_msg_commit - hand m to the committer thread */
int
queue_msg_commit(struct queue_msg *m, const struct envelope *e,
    queue_commit_cb *cb, uint64_t cookie)
{
	struct queue *q = m->q;
	int saved;

	if (!q->started || q->stopping) {
		queue_msg_abort(m);
		errno = EINVAL;
		return -1;
	}
	if (queue_msg_prepare(m, e) == -1) {
		saved = errno;
		queue_msg_abort(m);
		errno = saved;
		return -1;
	}
	queue_submit(m, cb, cookie);
	return 0;
}

/* queue_msg_commit_sync - the whole commit, now, on this thread */
int
queue_msg_commit_sync(struct queue_msg *m, const struct envelope *e)
{
	int saved;

	if (queue_msg_prepare(m, e) == -1) {
		saved = errno;
		queue_msg_abort(m);
		errno = saved;
		return -1;
	}
	return queue_run_sync(m);
}

/* queue_update - hand a new envelope for e->id to the committer thread */
int
queue_update(struct queue *q, const struct envelope *e, queue_commit_cb *cb,
    uint64_t cookie)
{
	struct queue_msg *m;

	if (!q->started || q->stopping) {
		errno = EINVAL;
		return -1;
	}
	if ((m = queue_update_new(q, e)) == NULL)
		return -1;
	queue_submit(m, cb, cookie);
	return 0;
}

/* queue_update_sync - replace the envelope of e->id, now, on this thread */
int
queue_update_sync(struct queue *q, const struct envelope *e)
{
	struct queue_msg *m;

	if ((m = queue_update_new(q, e)) == NULL)
		return -1;
	return queue_run_sync(m);
}

/* queue_remove - hand the removal of id to the committer thread */
int
queue_remove(struct queue *q, const char *id, queue_commit_cb *cb,
    uint64_t cookie)
{
	struct queue_msg *m;

	if (!q->started || q->stopping) {
		errno = EINVAL;
		return -1;
	}
	if ((m = queue_remove_new(q, id)) == NULL)
		return -1;
	queue_submit(m, cb, cookie);
	return 0;
}

/* queue_remove_sync - remove the message id, now, on this thread */
int
queue_remove_sync(struct queue *q, const char *id)
{
	struct queue_msg *m;

	if ((m = queue_remove_new(q, id)) == NULL)
		return -1;
	return queue_run_sync(m);
}

/* queue_close - finish queued operations, stop the committer, free q */
void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->started) {
		pthread_mutex_lock(&q->lock);
		q->stopping = true;
		pthread_cond_signal(&q->cond);
		pthread_mutex_unlock(&q->lock);
		pthread_join(q->thread, NULL);
		queue_done(-1, 0, q);	/* results the loop has not seen */
		event_free(q->ev);
		/* What the disk was asked for (the benchmark reads it):
		   a commit fsyncs two files, an update one. */
		log_info("queue closed: commits=%" PRIu64 " updates=%" PRIu64
		    " removes=%" PRIu64 " fsyncs=%" PRIu64 " (files %" PRIu64
		    ", queue/ %" PRIu64 ") batches=%" PRIu64 " max_batch=%"
		    PRIu64, q->stats.commits, q->stats.updates,
		    q->stats.removes, 2 * q->stats.commits + q->stats.updates +
		    q->stats.dir_fsyncs, 2 * q->stats.commits +
		    q->stats.updates, q->stats.dir_fsyncs, q->stats.batches,
		    q->stats.max_batch);
	}
	close(q->tmpfd);
	close(q->queuefd);
	close(q->corruptfd);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* queue_stats - copy the counters */
void
queue_stats(struct queue *q, struct queue_stats *st)
{
	pthread_mutex_lock(&q->lock);
	*st = q->stats;
	pthread_mutex_unlock(&q->lock);
}

/* queue_opendir - a DIR for reading the directory dfd (dfd stays open) */
static DIR *
queue_opendir(int dfd)
{
	DIR *d;
	int fd;

	if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return d;
}

/* queue_split_name - "ID.msg"/"ID.env" with a valid id: id and the ext */
static const char *
queue_split_name(const char *name, char id[QUEUE_ID_LEN + 1])
{
	if (strlen(name) != QUEUE_ID_LEN + 4 || name[QUEUE_ID_LEN] != '.')
		return NULL;
	memcpy(id, name, QUEUE_ID_LEN);
	id[QUEUE_ID_LEN] = '\0';
	if (!queue_id_valid(id))
		return NULL;
	if (strcmp(name + QUEUE_ID_LEN, ".msg") == 0)
		return "msg";
	if (strcmp(name + QUEUE_ID_LEN, ".env") == 0)
		return "env";
	return NULL;
}

/* queue_read_file - up to max bytes of name under dfd, NUL-terminated */
static const char *
queue_read_file(int dfd, const char *name, size_t max, char **text,
    size_t *len)
{
	struct stat st;
	size_t cap, n = 0;
	ssize_t r;
	char *p;
	int fd;

	*text = NULL;
	/* O_NONBLOCK: a FIFO planted as ID.env must not hang us */
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)
		return errno == ENOENT ? "envelope missing" :
		    "cannot open envelope";
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return "envelope is not a regular file";
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return "envelope too large";
	}
	cap = (size_t)st.st_size + 1;	/* +1: notice a file that grew */
	p = xmalloc(cap + 1);
	while (n < cap) {
		if ((r = read(fd, p + n, cap - n)) == -1) {
			if (errno == EINTR)
				continue;
			close(fd);
			free(p);
			return "cannot read envelope";
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n > max) {
		free(p);
		return "envelope too large";
	}
	p[n] = '\0';
	*text = p;
	*len = n;
	return NULL;
}

/* queue_load_envelope - read and parse queue/ID.env */
int
queue_load_envelope(struct queue *q, const char *id, struct envelope *e,
    const char **err)
{
	char name[QUEUE_NAME_SIZE], *text;
	const char *why;
	size_t len;

	memset(e, 0, sizeof(*e));
	if (!queue_id_valid(id)) {
		*err = "invalid queue id";
		return -1;
	}
	queue_fname(name, id, "env");
	if ((why = queue_read_file(q->queuefd, name, QUEUE_ENVELOPE_MAX,
	    &text, &len)) != NULL) {
		*err = why;
		return -1;
	}
	if (envelope_parse(text, len, e, err) == -1) {
		free(text);
		return -1;
	}
	free(text);
	if (strcmp(e->id, id) != 0) {
		envelope_free(e);
		*err = "envelope id does not match its file name";
		return -1;
	}
	return 0;
}

/* queue_open_message - open queue/ID.msg for reading */
int
queue_open_message(struct queue *q, const char *id)
{
	char name[QUEUE_NAME_SIZE];

	if (!queue_id_valid(id)) {
		errno = EINVAL;
		return -1;
	}
	queue_fname(name, id, "msg");
	return openat(q->queuefd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

struct queue_entry {
	char	id[QUEUE_ID_LEN + 1];
	bool	msg;
	bool	env;
};

/* queue_entry_cmp - qsort by id */
static int
queue_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct queue_entry *)a)->id,
	    ((const struct queue_entry *)b)->id);
}

/*
 * queue_scan - the ID.msg/ID.env pairs in queue/, sorted by id, one entry
 * per id. Other names are warned about if warn is set. NULL with errno if
 * queue/ cannot be read; *n may be 0 (the array is then still allocated).
 */
static struct queue_entry *
queue_scan(struct queue *q, bool warn, size_t *n)
{
	struct queue_entry *v = NULL;
	struct dirent *de;
	size_t len = 0, cap = 0, i, j;
	char id[QUEUE_ID_LEN + 1], esc[128];
	const char *ext;
	DIR *d;

	if ((d = queue_opendir(q->queuefd)) == NULL)
		return NULL;
	for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((ext = queue_split_name(de->d_name, id)) == NULL) {
			if (warn) {
				log_escape(de->d_name, (size_t)-1, esc,
				    sizeof(esc));
				log_warnx("queue: recover: unknown file "
				    "queue/%s left alone", esc);
			}
			continue;
		}
		if (len == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		memcpy(v[len].id, id, sizeof(id));
		v[len].msg = ext[0] == 'm';
		v[len].env = ext[0] == 'e';
		len++;
	}
	if (errno != 0) {
		int saved = errno;

		closedir(d);
		free(v);
		errno = saved;
		return NULL;
	}
	closedir(d);
	if (v == NULL)
		v = xmalloc(sizeof(*v));
	qsort(v, len, sizeof(*v), queue_entry_cmp);
	for (i = j = 0; i < len; i++) {		/* merge ID.msg and ID.env */
		if (j > 0 && strcmp(v[j - 1].id, v[i].id) == 0) {
			v[j - 1].msg |= v[i].msg;
			v[j - 1].env |= v[i].env;
		} else
			v[j++] = v[i];
	}
	*n = j;
	return v;
}

/* queue_to_corrupt - move queue/name to corrupt/, never overwriting */
static int
queue_to_corrupt(struct queue *q, const char *name)
{
	char dst[QUEUE_NAME_SIZE + 16];
	unsigned i;

	for (i = 0; i < 1000; i++) {
		if (i == 0)
			snprintf(dst, sizeof(dst), "%s", name);
		else
			snprintf(dst, sizeof(dst), "%s.%u", name, i);
		if (renameat2(q->queuefd, name, q->corruptfd, dst,
		    RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EEXIST)
			continue;
		if (errno == EINVAL || errno == ENOSYS) {
			/* no RENAME_NOREPLACE here: check, then rename */
			if (faccessat(q->corruptfd, dst, F_OK,
			    AT_SYMLINK_NOFOLLOW) == 0)
				continue;
			if (renameat(q->queuefd, name, q->corruptfd, dst) == 0)
				return 0;
		}
		if (errno == ENOENT)
			return 0;	/* that half does not exist */
		break;
	}
	log_warn("queue: recover: cannot move queue/%s to corrupt/", name);
	return -1;
}

/* queue_recover_tmp - delete everything in tmp/ */
static int
queue_recover_tmp(struct queue *q, unsigned *removed)
{
	struct dirent *de;
	char esc[128];
	DIR *d;

	if ((d = queue_opendir(q->tmpfd)) == NULL) {
		log_warn("queue: recover: cannot read tmp/");
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		log_escape(de->d_name, (size_t)-1, esc, sizeof(esc));
		if (unlinkat(q->tmpfd, de->d_name, 0) == -1) {
			log_warn("queue: recover: cannot remove tmp/%s", esc);
			continue;
		}
		log_info("queue: recover: removed stale tmp/%s", esc);
		(*removed)++;
	}
	closedir(d);
	return 0;
}

/* queue_recover - startup recovery; see QUEUE.md for each state */
int
queue_recover(struct queue *q, unsigned *queued, unsigned *removed,
    unsigned *corrupt)
{
	struct queue_entry *v;
	struct envelope e;
	struct stat st;
	char name[QUEUE_NAME_SIZE];
	const char *why;
	unsigned nq = 0, nr = 0, nc = 0;
	size_t n, i;
	int rc = 0;

	if (queue_recover_tmp(q, &nr) == -1)
		rc = -1;
	if ((v = queue_scan(q, true, &n)) == NULL) {
		log_warn("queue: recover: cannot read queue/");
		rc = -1;
		n = 0;
	}
	for (i = 0; i < n; i++) {
		const char *id = v[i].id;

		if (!v[i].env) {
			queue_fname(name, id, "msg");
			if (unlinkat(q->queuefd, name, 0) == -1)
				log_warn("queue: recover: %s: cannot remove "
				    "message without envelope", id);
			else {
				log_info("queue: recover: %s: removed message "
				    "without envelope (never acknowledged)",
				    id);
				nr++;
			}
			continue;
		}
		why = NULL;
		if (!v[i].msg)
			why = "envelope without message";
		else if (queue_load_envelope(q, id, &e, &why) == 0) {
			queue_fname(name, id, "msg");
			if (fstatat(q->queuefd, name, &st,
			    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
				why = "message is not a regular file";
			else if ((uint64_t)st.st_size != e.size)
				why = "message size differs from envelope";
			envelope_free(&e);
		}
		if (why == NULL) {
			nq++;
			continue;
		}
		log_warnx("queue: recover: %s: %s; moving it to corrupt/",
		    id, why);
		queue_fname(name, id, "env");
		queue_to_corrupt(q, name);
		queue_fname(name, id, "msg");
		queue_to_corrupt(q, name);
		nc++;
	}
	free(v);
	if (nr + nc > 0 && (fsync(q->queuefd) == -1 ||
	    fsync(q->corruptfd) == -1 || fsync(q->tmpfd) == -1))
		log_warn("queue: recover: fsync");
	if (queued)
		*queued = nq;
	if (removed)
		*removed = nr;
	if (corrupt)
		*corrupt = nc;
	return rc;
}

/* queue_foreach - every good envelope in queue/, oldest id first */
int
queue_foreach(struct queue *q, void (*fn)(const struct envelope *, void *),
    void (*bad)(const char *, const char *, void *), void *arg)
{
	struct queue_entry *v;
	struct envelope e;
	const char *why;
	size_t n, i;

	if ((v = queue_scan(q, false, &n)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (!v[i].env)
			continue;
		if (queue_load_envelope(q, v[i].id, &e, &why) == -1) {
			if (bad != NULL)
				bad(v[i].id, why, arg);
			continue;
		}
		fn(&e, arg);
		envelope_free(&e);
	}
	free(v);
	return 0;
}
