/*
 * queue - the durable on-disk queue; see queue.h, and queue/QUEUE.md for
 * the file, its states, the commit steps and recovery.
 *
 * One file per message, queue/ID: a fixed header that says where the
 * envelope starts, the message, then the envelope as committed and every
 * update after it, appended (QUEUE.md, "Files").
 *
 * Threads: the loop thread writes a new message (queue_msg_write), appends
 * envelope updates (queue_update) and moves finished messages out of
 * queue/ (queue_remove) at once, so a crash of the process after those
 * calls loses none of them. What it never does is wait for the disk:
 * every fsync, and the unlink that frees a removed message's blocks, is
 * the committer's; and the signer may read a message back
 * (queue_msg_read) on a worker thread, while nothing else touches it. queue_committer() owns an operation from the
 * moment it is put on q->pending until it appends the result to q->done.
 * q->lock protects pending, done, stopping, last_usec and stats; inflight
 * and ev's add/del belong to the loop thread, and the committer only calls
 * event_active(). Nothing else is shared. The three directory fds are set
 * once in queue_open() and only read afterwards; every file is named
 * relative to them (*at calls), and every name is built from an id that
 * passed queue_id_valid().
 */
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#define QUEUE_ENVELOPE_MAX	(4 * 1024 * 1024)	/* one envelope */
#define QUEUE_TAIL_MAX		(64 * 1024 * 1024)	/* envelope + updates */
#define QUEUE_ID_PREFIX		9	/* base-62 digits of microseconds */
#define QUEUE_NAME_SIZE		(QUEUE_ID_LEN + sizeof(".msg"))
#define QUEUE_NEW_TRIES		8	/* O_EXCL collisions before giving up */
#define QUEUE_BATCH_MAX		1024	/* operations per round: bounds open
					   fds */

/*
 * The header: QUEUE_MAGIC, the envelope's offset as 20 decimal digits
 * (leading zeros), LF. The message's bytes follow it, so a message is
 * [QUEUE_HDR_LEN, offset) of its file. Written as zeros first and set
 * at commit, before the fsync.
 */
#define QUEUE_MAGIC		"postern-queue 3 "
#define QUEUE_OFF_DIGITS	20
#define QUEUE_HDR_LEN		(sizeof(QUEUE_MAGIC) - 1 + QUEUE_OFF_DIGITS + 1)

enum queue_op {
	QUEUE_OP_COMMIT,	/* a new message: S1 -> S3 */
	QUEUE_OP_UPDATE,	/* an appended envelope: S4 -> S4 */
	QUEUE_OP_REMOVE,	/* S4 -> S0 */
};

/*
 * One operation for the committer: a new message from queue_msg_new() on
 * (QUEUE_OP_COMMIT, fd is tmp/ID), or an update or a removal of a
 * committed message, which the loop thread has already written or
 * unlinked: the committer makes it durable (an update: fsync queue/ID;
 * a removal: fsync queue/). Their result is set before they are queued
 * when that already failed.
 */
struct queue_msg {
	struct queue	*q;
	TAILQ_ENTRY(queue_msg) entry;	/* q->pending or q->done */
	char		 id[QUEUE_ID_LEN + 1];
	enum queue_op	 op;
	int		 fd;		/* tmp/ID, -1 once closed */
	bool		 moved;		/* queue/ID: committed */
	char		*wbuf;		/* QUEUE_WBUF_SIZE */
	size_t		 wlen;
	uint64_t	 size;		/* bytes accepted by queue_msg_write */
	int		 error;		/* first write error, sticky */
	char		*envtext;	/* formatted envelope, at commit */
	size_t		 envlen;
	time_t		 due;		/* its file's mtime, at commit */
	queue_commit_cb	*cb;
	uint64_t	 cookie;
	int		 result;	/* 0 or errno */
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

/* queue_id_time - the seconds in id's prefix */
time_t
queue_id_time(const char *id)
{
	const char *p;
	uint64_t usec = 0;
	size_t i;

	if (!queue_id_valid(id))
		return 0;
	for (i = 0; i < QUEUE_ID_PREFIX; i++) {
		p = strchr(queue_digits, id[i]);
		usec = usec * 62 + (uint64_t)(p - queue_digits);
	}
	return (time_t)(usec / 1000000);
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

/*
 * queue_fname - the file name of a valid id: "ID" (the queue file), or
 * "ID.msg" / "ID.env" (the two files of a queue from before version 3,
 * which recovery converts)
 */
static void
queue_fname(char name[QUEUE_NAME_SIZE], const char *id, const char *ext)
{
	if (!queue_id_valid(id))
		log_panic("queue: file name from invalid id");
	if (ext == NULL)
		snprintf(name, QUEUE_NAME_SIZE, "%s", id);
	else
		snprintf(name, QUEUE_NAME_SIZE, "%s.%s", id, ext);
}

/* queue_header - the header of a file whose envelope starts at off */
static void
queue_header(char hdr[QUEUE_HDR_LEN + 1], uint64_t off)
{
	snprintf(hdr, QUEUE_HDR_LEN + 1, "%s%0*" PRIu64 "\n", QUEUE_MAGIC,
	    QUEUE_OFF_DIGITS, off);
}

/* queue_header_parse - the envelope's offset from a header; -1 if it is
   not one */
static int
queue_header_parse(const char *hdr, uint64_t *off)
{
	const char *p = hdr + sizeof(QUEUE_MAGIC) - 1;
	uint64_t v = 0;
	int i;

	if (memcmp(hdr, QUEUE_MAGIC, sizeof(QUEUE_MAGIC) - 1) != 0 ||
	    hdr[QUEUE_HDR_LEN - 1] != '\n')
		return -1;
	for (i = 0; i < QUEUE_OFF_DIGITS; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*off = v;
	return 0;
}

/* queue_op_new - an operation on the message id, no files open */
static struct queue_msg *
queue_op_new(struct queue *q, enum queue_op op, const char *id)
{
	struct queue_msg *m;

	m = xcalloc(1, sizeof(*m));
	m->q = q;
	m->op = op;
	m->fd = -1;
	memcpy(m->id, id, sizeof(m->id));
	return m;
}

/* queue_msg_free - close and free; the files are the caller's business */
static void
queue_msg_free(struct queue_msg *m)
{
	if (m->fd != -1)
		close(m->fd);
	free(m->wbuf);
	free(m->envtext);
	free(m);
}

/*
 * queue_msg_new - create tmp/ID with a fresh id. Its header goes into the
 * write buffer first, as zeros where the envelope's offset will be: a
 * file in tmp/ is never read, and the header is set before the fsync.
 */
struct queue_msg *
queue_msg_new(struct queue *q)
{
	struct queue_msg *m;
	char name[QUEUE_NAME_SIZE];
	int tries, saved;

	m = xcalloc(1, sizeof(*m));
	m->q = q;
	m->op = QUEUE_OP_COMMIT;
	m->fd = -1;
	for (tries = 0; tries < QUEUE_NEW_TRIES; tries++) {
		if (queue_id_new(q, m->id) == -1)
			break;
		queue_fname(name, m->id, NULL);
		m->fd = openat(q->tmpfd, name,
		    O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
		if (m->fd != -1) {
			m->wbuf = xmalloc(QUEUE_WBUF_SIZE);
			queue_header(m->wbuf, 0);
			m->wlen = QUEUE_HDR_LEN;
			return m;
		}
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

/* queue_msg_read - read back what was written, from byte off of the
   message on */
ssize_t
queue_msg_read(struct queue_msg *m, void *p, size_t len, uint64_t off)
{
	ssize_t n;

	if (m->error || queue_msg_flush(m) == -1) {
		errno = m->error;
		return -1;
	}
	if (off >= m->size)
		return 0;
	if (len > m->size - off)
		len = (size_t)(m->size - off);
	do
		n = pread(m->fd, p, len, (off_t)(QUEUE_HDR_LEN + off));
	while (n == -1 && errno == EINTR);
	return n;
}

/* queue_msg_abort - unlink tmp/ID and free m */
void
queue_msg_abort(struct queue_msg *m)
{
	char name[QUEUE_NAME_SIZE];

	if (m == NULL)
		return;
	queue_fname(name, m->id, NULL);
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

/* queue_due - when e's message is due: its next attempt, or, never
   deferred, when it was accepted (QUEUE.md: the file's mtime) */
static time_t
queue_due(const struct envelope *e)
{
	return e->next_attempt > 0 ? e->next_attempt : e->time;
}

/* queue_set_due - the file's modification time becomes due (if set) */
static int
queue_set_due(int fd, time_t due)
{
	struct timespec times[2] = { { 0, UTIME_OMIT }, { due, 0 } };

	return due > 0 ? futimens(fd, times) : 0;
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
	m->due = queue_due(e);
	return queue_op_format(m, &copy);
}

/*
 * queue_append - append text to queue/ID now, on this thread, without an
 * fsync (the committer does that). 0, or an errno: ENOENT if the message
 * is gone. A write that fails half way is cut off again, so the file
 * never ends in half an envelope that this process knows about (one that
 * a crash leaves is cut off by recovery). The file's modification time
 * becomes due, when due is set: queue_scan reads it back.
 */
static int
queue_append(struct queue *q, const char *id, const char *text, size_t len,
    time_t due)
{
	char name[QUEUE_NAME_SIZE];
	struct stat st;
	int fd, error = 0;

	queue_fname(name, id, NULL);
	fd = openat(q->queuefd, name,
	    O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)
		return errno;
	if (fstat(fd, &st) == -1)
		error = errno;
	else if (!S_ISREG(st.st_mode))
		error = EINVAL;
	else if (io_write_all(fd, text, len) == -1) {
		error = errno;
		if (ftruncate(fd, st.st_size) == -1)
			log_warn("queue: %s: cannot cut off a failed envelope "
			    "update (recovery will)", id);
	} else if (queue_set_due(fd, due) == -1)
		log_warn("queue: %s: cannot set its due time", id);
	if (close(fd) == -1 && error == 0)
		error = errno;
	return error;
}

/*
 * queue_update_new - an update operation for e (e->id says which
 * message), its envelope already appended to queue/ID; m->result is the
 * errno if that failed. NULL with errno EINVAL or E2BIG if e cannot be
 * written. The prepended fields are left out: they never change, and
 * the reader takes them from the envelope of the commit.
 */
static struct queue_msg *
queue_update_new(struct queue *q, const struct envelope *e)
{
	struct envelope copy = *e;
	struct queue_msg *m;

	if (!queue_id_valid(e->id)) {
		log_warnx("queue: update with an invalid queue id");
		errno = EINVAL;
		return NULL;
	}
	m = queue_op_new(q, QUEUE_OP_UPDATE, e->id);
	copy.prepend = NULL;
	copy.prepend_len = 0;
	if (queue_op_format(m, &copy) == -1) {
		int saved = errno;

		queue_msg_free(m);
		errno = saved;
		return NULL;
	}
	m->result = queue_append(q, m->id, m->envtext, m->envlen,
	    queue_due(e));
	free(m->envtext);
	m->envtext = NULL;
	return m;
}

/*
 * queue_remove_new - a removal operation, queue/ID already renamed to
 * tmp/ID (the point of no return: it is never delivered again after
 * that, even if this process dies now; recovery deletes whatever is in
 * tmp/); m->result is the errno if that failed. NULL with EINVAL for a
 * bad id. A rename, not an unlink: freeing the file's blocks may wait
 * for the disk (on ext4 without a journal, mounted with discard, the
 * discard is issued and waited for right there), so the committer
 * unlinks it, off the loop.
 */
static struct queue_msg *
queue_remove_new(struct queue *q, const char *id)
{
	struct queue_msg *m;
	char name[QUEUE_NAME_SIZE];

	if (!queue_id_valid(id)) {
		log_warnx("queue: remove with an invalid queue id");
		errno = EINVAL;
		return NULL;
	}
	m = queue_op_new(q, QUEUE_OP_REMOVE, id);
	queue_fname(name, id, NULL);
	if (renameat(q->queuefd, name, q->tmpfd, name) == -1) {
		m->result = errno;
		if (m->result != ENOENT)
			log_warn("queue: %s: remove failed", id);
	}
	return m;
}

/*
 * What the committer does with each operation of a batch, each phase for
 * every operation before the next (queue_run_batch), then one fsync of
 * queue/ for the whole batch if it holds a commit or a removal:
 *
 *   queue_op_write	commit: flush the message, write its envelope,
 *			set the header; update, removal: nothing (done on
 *			the loop thread already)
 *   queue_op_fsync	commit: fsync and close tmp/ID, checking close();
 *			update: fsync queue/ID; removal: nothing
 *   queue_op_publish	commit: tmp/ID -> queue/ID (the commit point);
 *			update: nothing; removal: unlink tmp/ID
 *
 * No rename happens before the file it publishes is durable, which is
 * the order that matters. Each phase returns 0 or an errno;
 * queue_op_undo() then removes what a failed commit created.
 *
 * One fsync of a new file per message remains, and on ext4 each forces a
 * journal commit of its own when they come one after another (QUEUE.md,
 * "Group commit").
 */

/*
 * queue_start_writeback - start writing fd's dirty pages, without
 * waiting. Done for every file of a batch before the first fsync: on
 * ext4 with delayed allocation a file's blocks are allocated only when
 * its pages are written, and an allocation is a journal change, so
 * without this each fsync in turn allocates and needs a journal commit
 * of its own; with it, the first fsync's commit carries the allocations
 * of the whole batch and the other fsyncs find theirs done. An error
 * here is the fsync's to report.
 */
static void
queue_start_writeback(int fd)
{
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* queue_commit_write - commit phase 1: message, envelope, header */
static int
queue_commit_write(struct queue_msg *m)
{
	char hdr[QUEUE_HDR_LEN + 1];
	ssize_t n;

	if (queue_msg_flush(m) == -1)
		return m->error;
	free(m->wbuf);
	m->wbuf = NULL;
	if (io_write_all(m->fd, m->envtext, m->envlen) == -1)
		return errno;
	queue_header(hdr, QUEUE_HDR_LEN + m->size);
	do
		n = pwrite(m->fd, hdr, QUEUE_HDR_LEN, 0);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno;
	if (n != QUEUE_HDR_LEN)
		return EIO;
	if (queue_set_due(m->fd, m->due) == -1)
		return errno;
	queue_start_writeback(m->fd);
	return 0;
}

/* queue_commit_fsync - commit phase 2: tmp/ID durable and closed */
static int
queue_commit_fsync(struct queue_msg *m)
{
	int r;

	if (fsync(m->fd) == -1)
		return errno;
	r = close(m->fd);	/* NFS may report a write error only here */
	m->fd = -1;
	if (r == -1)
		return errno;
	return 0;
}

/* queue_update_fsync - update phase 2: the appended envelope durable.
   A message removed since the append needs nothing more: 0. */
static int
queue_update_fsync(struct queue_msg *m)
{
	char name[QUEUE_NAME_SIZE];
	int fd, error = 0;

	queue_fname(name, m->id, NULL);
	fd = openat(m->q->queuefd, name,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)
		return errno == ENOENT ? 0 : errno;	/* removed since */
	if (fsync(fd) == -1)
		error = errno;
	close(fd);
	return error;
}

/* queue_commit_rename - commit phase 3: tmp/ID -> queue/ID */
static int
queue_commit_rename(struct queue_msg *m)
{
	struct queue *q = m->q;
	char name[QUEUE_NAME_SIZE];

	queue_fname(name, m->id, NULL);
	if (renameat(q->tmpfd, name, q->queuefd, name) == -1)
		return errno;
	m->moved = true;	/* S3; durable after fsync(queue/) */
	return 0;
}

/* queue_op_write - phase 1 of any operation */
static int
queue_op_write(struct queue_msg *m)
{
	return m->op == QUEUE_OP_COMMIT ? queue_commit_write(m) : 0;
}

/* queue_op_fsync - phase 2 of any operation */
static int
queue_op_fsync(struct queue_msg *m)
{
	switch (m->op) {
	case QUEUE_OP_COMMIT:
		return queue_commit_fsync(m);
	case QUEUE_OP_UPDATE:
		return queue_update_fsync(m);
	case QUEUE_OP_REMOVE:
		break;
	}
	return 0;
}

/* queue_remove_unlink - removal phase 3: the file it moved to tmp/
   goes (if that fails, recovery deletes it at the next start) */
static int
queue_remove_unlink(struct queue_msg *m)
{
	char name[QUEUE_NAME_SIZE];

	queue_fname(name, m->id, NULL);
	if (unlinkat(m->q->tmpfd, name, 0) == -1)
		log_warn("queue: %s: unlink tmp/%s", m->id, name);
	return 0;
}

/* queue_op_publish - phase 3 of any operation */
static int
queue_op_publish(struct queue_msg *m)
{
	switch (m->op) {
	case QUEUE_OP_COMMIT:
		return queue_commit_rename(m);
	case QUEUE_OP_REMOVE:
		return queue_remove_unlink(m);
	case QUEUE_OP_UPDATE:
		break;
	}
	return 0;
}

/* queue_op_undo - after a failure of any operation: clean up, log. A
   failed update or removal has nothing to undo. */
static void
queue_op_undo(struct queue_msg *m, int error)
{
	struct queue *q = m->q;
	char name[QUEUE_NAME_SIZE];

	switch (m->op) {
	case QUEUE_OP_COMMIT:
		log_warnx("queue: %s: commit failed: %s", m->id,
		    strerror(error));
		if (m->fd != -1) {
			close(m->fd);
			m->fd = -1;
		}
		queue_fname(name, m->id, NULL);
		if (unlinkat(m->moved ? q->queuefd : q->tmpfd, name, 0) == -1)
			log_warn("queue: %s: unlink %s", m->id, name);
		m->moved = false;
		break;
	case QUEUE_OP_UPDATE:
		if (error != ENOENT)
			log_warnx("queue: %s: envelope update failed: %s",
			    m->id, strerror(error));
		break;
	case QUEUE_OP_REMOVE:
		break;
	}
}

/*
 * queue_run_batch - the three phases for every operation in batch, then
 * one fsync of queue/ if a commit or a removal reached it. Sets each
 * m->result to 0 or an errno (an operation that comes with its result set
 * already failed on the loop thread and is only reported). If that fsync
 * fails, every commit and removal that got that far fails with its errno:
 * commits are undone (their files removed), removals cannot be and may
 * come back after a crash. Returns whether queue/ was fsync'ed.
 */
static bool
queue_run_batch(struct queue *q, struct queue_msgs *batch,
    uint64_t *file_fsyncs)
{
	struct queue_msg *m;
	unsigned long long ok = 0;
	int error;

	TAILQ_FOREACH(m, batch, entry)
		if (m->result == 0)
			m->result = queue_op_write(m);
	TAILQ_FOREACH(m, batch, entry)
		if (m->result == 0 && m->op != QUEUE_OP_REMOVE) {
			m->result = queue_op_fsync(m);
			(*file_fsyncs)++;
		}
	TAILQ_FOREACH(m, batch, entry) {
		if (m->result == 0)
			m->result = queue_op_publish(m);
		if (m->result != 0)
			queue_op_undo(m, m->result);
		else if (m->op != QUEUE_OP_UPDATE)
			ok++;
	}
	if (ok == 0)
		return false;
	if (fsync(q->queuefd) == -1) {
		error = errno;
		log_warn("queue: fsync queue/, failing %llu operations", ok);
		TAILQ_FOREACH(m, batch, entry)
			if (m->result == 0 && m->op != QUEUE_OP_UPDATE) {
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

/* queue_count_batch - the counters after a batch ran (q->lock held) */
static void
queue_count_batch(struct queue *q, struct queue_msgs *batch, bool synced,
    uint64_t file_fsyncs)
{
	struct queue_msg *m;

	if (synced)
		q->stats.dir_fsyncs++;
	q->stats.file_fsyncs += file_fsyncs;
	TAILQ_FOREACH(m, batch, entry)
		queue_tally(&q->stats, m);
}

/* queue_run_sync - one operation, done now on this thread; frees m */
static int
queue_run_sync(struct queue_msg *m)
{
	struct queue *q = m->q;
	struct queue_msgs batch;
	uint64_t file_fsyncs = 0;
	bool synced;
	int error;

	TAILQ_INIT(&batch);
	TAILQ_INSERT_TAIL(&batch, m, entry);
	synced = queue_run_batch(q, &batch, &file_fsyncs);
	pthread_mutex_lock(&q->lock);
	queue_count_batch(q, &batch, synced, file_fsyncs);
	pthread_mutex_unlock(&q->lock);
	error = m->result;
	queue_msg_free(m);
	if (error) {
		errno = error;
		return -1;
	}
	return 0;
}

/*
 * queue_take - pending operations, oldest first, at most QUEUE_BATCH_MAX.
 * Operations on one id may share a batch: an update or a removal has
 * done its part on the loop thread, in the order they were asked for,
 * and the committer only makes it durable.
 */
static void
queue_take(struct queue *q, struct queue_msgs *batch, uint64_t *n)
{
	struct queue_msg *m;

	TAILQ_INIT(batch);
	for (*n = 0; *n < QUEUE_BATCH_MAX &&
	    (m = TAILQ_FIRST(&q->pending)) != NULL; (*n)++) {
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
	uint64_t n, file_fsyncs;
	bool synced;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (TAILQ_EMPTY(&q->pending) && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		if (TAILQ_EMPTY(&q->pending))
			break;		/* stopping, and nothing left to do */
		queue_take(q, &batch, &n);
		pthread_mutex_unlock(&q->lock);

		file_fsyncs = 0;
		synced = queue_run_batch(q, &batch, &file_fsyncs);

		pthread_mutex_lock(&q->lock);
		q->stats.batches++;
		if (n > q->stats.max_batch)
			q->stats.max_batch = n;
		queue_count_batch(q, &batch, synced, file_fsyncs);
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
		/* What the disk was asked for (the benchmark reads it) */
		log_info("queue closed: commits=%" PRIu64 " updates=%" PRIu64
		    " removes=%" PRIu64 " fsyncs=%" PRIu64 " (files %" PRIu64
		    ", queue/ %" PRIu64 ") batches=%" PRIu64 " max_batch=%"
		    PRIu64, q->stats.commits, q->stats.updates,
		    q->stats.removes, q->stats.file_fsyncs +
		    q->stats.dir_fsyncs, q->stats.file_fsyncs,
		    q->stats.dir_fsyncs, q->stats.batches,
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
	/* O_NONBLOCK: a FIFO planted as an envelope must not hang us */
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

/*
 * A queue file as read back: where its envelope starts, and the text from
 * there to the end of the file (the committed envelope and its updates).
 */
struct queue_file {
	uint64_t	 envoff;	/* QUEUE_HDR_LEN + the message's size */
	char		*text;		/* [envoff, end of file), NUL added */
	size_t		 len;
};

/* queue_file_read - read queue/ID's header and envelope text; NULL, or a
   static reason */
static const char *
queue_file_read(struct queue *q, const char *id, struct queue_file *f)
{
	char name[QUEUE_NAME_SIZE], hdr[QUEUE_HDR_LEN];
	struct stat st;
	const char *why = NULL;
	uint64_t tail;
	int fd;

	memset(f, 0, sizeof(*f));
	queue_fname(name, id, NULL);
	/* O_NONBLOCK: a FIFO planted as queue/ID must not hang us */
	fd = openat(q->queuefd, name,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)	/* errno stays: ENOENT is "gone" (queue.h) */
		return errno == ENOENT ? "message missing" :
		    "cannot open message";
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		why = "queue file is not a regular file";
	else if ((uint64_t)st.st_size < QUEUE_HDR_LEN ||
	    io_pread_all(fd, hdr, sizeof(hdr), 0) == -1 ||
	    queue_header_parse(hdr, &f->envoff) == -1)
		why = "queue file has no valid header";
	else if (f->envoff < QUEUE_HDR_LEN ||
	    f->envoff > (uint64_t)st.st_size)
		why = "queue file is shorter than its header says";
	else if ((tail = (uint64_t)st.st_size - f->envoff) > QUEUE_TAIL_MAX)
		why = "envelope too large";
	else {
		f->len = (size_t)tail;
		f->text = xmalloc(f->len + 1);
		if (io_pread_all(fd, f->text, f->len, (off_t)f->envoff) ==
		    -1) {
			free(f->text);
			f->text = NULL;
			why = "cannot read envelope";
		} else
			f->text[f->len] = '\0';
	}
	close(fd);
	return why;
}

/*
 * queue_block_end - the end of the envelope that starts at text[pos]:
 * just past its "end" line; 0 if it has none (an update cut short by a
 * crash). A value never holds an LF, so a line "end" is always the end.
 */
static size_t
queue_block_end(const char *text, size_t len, size_t pos)
{
	const char *p;

	while (pos < len) {
		if ((p = memchr(text + pos, '\n', len - pos)) == NULL)
			return 0;
		if ((size_t)(p - (text + pos)) == 3 &&
		    memcmp(text + pos, "end", 3) == 0)
			return (size_t)(p - text) + 1;
		pos = (size_t)(p - text) + 1;
	}
	return 0;
}

/*
 * queue_file_parse - the envelope f holds: the last one appended, with
 * the prepended fields of the first (updates leave them out). *good is
 * how many bytes of f->text are whole envelopes; anything after them is
 * an update a crash cut short, which the envelope before it outlives.
 * -1 with *err if an envelope that is whole does not parse or names
 * another message.
 */
static int
queue_file_parse(const struct queue_file *f, struct envelope *e,
    size_t *good, const char **err)
{
	struct envelope next;
	size_t pos = 0, end;

	memset(e, 0, sizeof(*e));
	while ((end = queue_block_end(f->text, f->len, pos)) != 0) {
		if (envelope_parse(f->text + pos, end - pos,
		    pos == 0 ? e : &next, err) == -1) {
			envelope_free(e);
			return -1;
		}
		if (pos > 0) {
			if (strcmp(next.id, e->id) != 0 ||
			    next.size != e->size) {
				envelope_free(&next);
				envelope_free(e);
				*err = "an envelope update names another message";
				return -1;
			}
			free(next.prepend);
			next.prepend = e->prepend;
			next.prepend_len = e->prepend_len;
			e->prepend = NULL;
			envelope_free(e);
			*e = next;
		}
		pos = end;
	}
	if (pos == 0) {
		*err = f->len == 0 ? "envelope missing" :
		    "envelope is cut short";
		return -1;
	}
	*good = pos;
	return 0;
}

/*
 * queue_load - read and check queue/ID: its envelope (see
 * queue_file_parse), which must name id and the message's size. *good
 * as there, *envoff where the envelope starts. -1 with *err.
 */
static int
queue_load(struct queue *q, const char *id, struct envelope *e,
    size_t *good, uint64_t *envoff, const char **err)
{
	struct queue_file f;
	int rc = -1;

	memset(e, 0, sizeof(*e));
	if (!queue_id_valid(id)) {
		*err = "invalid queue id";
		return -1;
	}
	if ((*err = queue_file_read(q, id, &f)) != NULL)
		return -1;
	if (queue_file_parse(&f, e, good, err) == 0) {
		if (strcmp(e->id, id) != 0)
			*err = "envelope id does not match its file name";
		else if (e->size != f.envoff - QUEUE_HDR_LEN)
			*err = "message size differs from envelope";
		else
			rc = 0;
		if (rc == -1)
			envelope_free(e);
	}
	*envoff = f.envoff;
	free(f.text);
	return rc;
}

/* queue_load_envelope - the envelope of queue/ID, as it was last updated */
int
queue_load_envelope(struct queue *q, const char *id, struct envelope *e,
    const char **err)
{
	uint64_t envoff;
	size_t good;

	return queue_load(q, id, e, &good, &envoff, err);
}

/* queue_open_message - open queue/ID for reading; the message starts at
   *start */
int
queue_open_message(struct queue *q, const char *id, off_t *start)
{
	char name[QUEUE_NAME_SIZE];

	if (!queue_id_valid(id)) {
		errno = EINVAL;
		return -1;
	}
	queue_fname(name, id, NULL);
	*start = QUEUE_HDR_LEN;
	return openat(q->queuefd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/* A name in queue/ with a valid id: the queue file, or the legacy pair. */
struct queue_entry {
	char	id[QUEUE_ID_LEN + 1];
	bool	file;		/* ID */
	bool	msg;		/* ID.msg (before version 3) */
	bool	env;		/* ID.env (before version 3) */
};

/* queue_split_name - a queue file's name: its id and kind ('f' the queue
   file, 'm' ID.msg, 'e' ID.env); 0 for any other name */
static int
queue_split_name(const char *name, char id[QUEUE_ID_LEN + 1])
{
	size_t len = strlen(name);

	if (len != QUEUE_ID_LEN && len != QUEUE_ID_LEN + 4)
		return 0;
	memcpy(id, name, QUEUE_ID_LEN);
	id[QUEUE_ID_LEN] = '\0';
	if (!queue_id_valid(id))
		return 0;
	if (len == QUEUE_ID_LEN)
		return 'f';
	if (strcmp(name + QUEUE_ID_LEN, ".msg") == 0)
		return 'm';
	if (strcmp(name + QUEUE_ID_LEN, ".env") == 0)
		return 'e';
	return 0;
}

/* queue_entry_cmp - qsort by id */
static int
queue_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct queue_entry *)a)->id,
	    ((const struct queue_entry *)b)->id);
}

/*
 * queue_list - the ids in queue/, sorted, one entry per id with the
 * files it has. Other names are warned about if warn is set. NULL with
 * errno if queue/ cannot be read; *n may be 0 (the array is then still
 * allocated).
 */
static struct queue_entry *
queue_list(struct queue *q, bool warn, size_t *n)
{
	struct queue_entry *v = NULL;
	struct dirent *de;
	size_t len = 0, cap = 0, i, j;
	char id[QUEUE_ID_LEN + 1], esc[128];
	int kind;
	DIR *d;

	if ((d = queue_opendir(q->queuefd)) == NULL)
		return NULL;
	for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((kind = queue_split_name(de->d_name, id)) == 0) {
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
		v[len].file = kind == 'f';
		v[len].msg = kind == 'm';
		v[len].env = kind == 'e';
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
	for (i = j = 0; i < len; i++) {		/* one entry per id */
		if (j > 0 && strcmp(v[j - 1].id, v[i].id) == 0) {
			v[j - 1].file |= v[i].file;
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

/* queue_load_legacy - the envelope of a queue from before version 3,
   queue/ID.env; -1 with *err */
static int
queue_load_legacy(struct queue *q, const char *id, struct envelope *e,
    const char **err)
{
	char name[QUEUE_NAME_SIZE], *text;
	size_t len;

	queue_fname(name, id, "env");
	if ((*err = queue_read_file(q->queuefd, name, QUEUE_ENVELOPE_MAX,
	    &text, &len)) != NULL)
		return -1;
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

/*
 * queue_convert - a message of a queue from before version 3 (queue/ID.msg
 * and queue/ID.env, e its envelope) made into one queue file the way a
 * commit makes one: tmp/ID written and fsync'ed, renamed to queue/ID,
 * then the two old files unlinked. A crash in between leaves both, and
 * the next recovery finds queue/ID and unlinks the old pair. 0, or -1
 * with errno and *what naming the step (nothing of the new file is left
 * then, and the old pair stays for the next start).
 */
static int
queue_convert(struct queue *q, const struct envelope *e, const char **what)
{
	char name[QUEUE_NAME_SIZE], hdr[QUEUE_HDR_LEN + 1], buf[65536];
	struct buf env;
	uint64_t left = e->size;
	ssize_t n;
	int in = -1, out = -1, saved;

	buf_init(&env, QUEUE_ENVELOPE_MAX);
	*what = "format the envelope";
	if (envelope_format(e, &env) == -1)
		goto fail;
	queue_fname(name, e->id, "msg");
	*what = "open the message";
	if ((in = openat(q->queuefd, name,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		goto fail;
	queue_fname(name, e->id, NULL);
	*what = "create tmp/ID";
	if ((out = openat(q->tmpfd, name,
	    O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600)) == -1)
		goto fail;
	*what = "write tmp/ID";
	queue_header(hdr, QUEUE_HDR_LEN + e->size);
	if (io_write_all(out, hdr, QUEUE_HDR_LEN) == -1)
		goto fail;
	while (left > 0) {
		n = read(in, buf, left < sizeof(buf) ? (size_t)left :
		    sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;	/* shorter than it was */
			goto fail;
		}
		if (io_write_all(out, buf, (size_t)n) == -1)
			goto fail;
		left -= (uint64_t)n;
	}
	if (io_write_all(out, env.data, env.len) == -1 ||
	    queue_set_due(out, queue_due(e)) == -1 || fsync(out) == -1)
		goto fail;
	if (close(out) == -1) {
		out = -1;
		goto fail;
	}
	out = -1;
	*what = "rename it into queue/";
	if (renameat(q->tmpfd, name, q->queuefd, name) == -1)
		goto fail;
	/* The rename must be durable before the old pair goes. */
	if (fsync(q->queuefd) == -1)
		log_warn("queue: recover: %s: fsync queue/", e->id);
	close(in);
	buf_free(&env);
	queue_fname(name, e->id, "env");
	if (unlinkat(q->queuefd, name, 0) == -1)
		log_warn("queue: recover: %s: unlink queue/%s", e->id, name);
	queue_fname(name, e->id, "msg");
	if (unlinkat(q->queuefd, name, 0) == -1)
		log_warn("queue: recover: %s: unlink queue/%s", e->id, name);
	return 0;

fail:
	saved = errno;
	if (out != -1) {
		close(out);
		queue_fname(name, e->id, NULL);
		unlinkat(q->tmpfd, name, 0);
	}
	if (in != -1)
		close(in);
	buf_free(&env);
	errno = saved;
	return -1;
}

/* queue_unlink_legacy - unlink queue/ID.ext, logging why; 1 if removed */
static unsigned
queue_unlink_legacy(struct queue *q, const char *id, const char *ext,
    const char *why)
{
	char name[QUEUE_NAME_SIZE];

	queue_fname(name, id, ext);
	if (unlinkat(q->queuefd, name, 0) == -1) {
		if (errno != ENOENT)
			log_warn("queue: recover: %s: cannot remove queue/%s",
			    id, name);
		return 0;
	}
	log_info("queue: recover: %s: removed queue/%s (%s)", id, name, why);
	return 1;
}

/*
 * queue_recover_legacy - the files of a queue from before version 3 for
 * one id (QUEUE.md, "Upgrading"). Returns what happened: 'q' queued (now
 * as a queue file), 'r' removed, 'c' moved to corrupt/, 'k' kept as it
 * is (a conversion failed; tried again at the next start), 0 when a
 * queue file for the id exists already (the old files are what was left
 * of its conversion).
 */
static int
queue_recover_legacy(struct queue *q, const struct queue_entry *v)
{
	struct envelope e;
	struct stat st;
	char name[QUEUE_NAME_SIZE];
	const char *why = NULL, *what;

	if (v->file) {
		/* A conversion that a crash cut short after its rename:
		   queue/ID is the message now (the caller checks it). */
		if (v->env)
			queue_unlink_legacy(q, v->id, "env", "converted");
		if (v->msg)
			queue_unlink_legacy(q, v->id, "msg", "converted");
		return 0;
	}
	if (!v->env)
		return queue_unlink_legacy(q, v->id, "msg", "message without "
		    "envelope, never acknowledged") ? 'r' : 'k';
	if (!v->msg)
		why = "envelope without message";
	else if (queue_load_legacy(q, v->id, &e, &why) == 0) {
		queue_fname(name, v->id, "msg");
		if (fstatat(q->queuefd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode))
			why = "message is not a regular file";
		else if ((uint64_t)st.st_size != e.size)
			why = "message size differs from envelope";
		else if (queue_convert(q, &e, &what) == -1) {
			log_warn("queue: recover: %s: cannot convert to one "
			    "queue file (%s); kept as it is", v->id, what);
			envelope_free(&e);
			return 'k';
		}
		envelope_free(&e);
	}
	if (why == NULL) {
		log_info("queue: recover: %s: converted to one queue file",
		    v->id);
		return 'q';
	}
	log_warnx("queue: recover: %s: %s; moving it to corrupt/", v->id, why);
	queue_fname(name, v->id, "env");
	queue_to_corrupt(q, name);
	queue_fname(name, v->id, "msg");
	queue_to_corrupt(q, name);
	return 'c';
}

/* queue_cut - cut queue/ID back to its whole envelopes, durably */
static void
queue_cut(struct queue *q, const char *id, uint64_t size)
{
	char name[QUEUE_NAME_SIZE];
	int fd;

	queue_fname(name, id, NULL);
	fd = openat(q->queuefd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 || ftruncate(fd, (off_t)size) == -1 || fsync(fd) == -1)
		log_warn("queue: recover: %s: cannot cut off an envelope "
		    "update cut short", id);
	else
		log_info("queue: recover: %s: cut off an envelope update a "
		    "crash cut short", id);
	if (fd != -1)
		close(fd);
}

/*
 * queue_recover_file - queue/ID: 'q' queued (an update a crash cut short
 * is cut off, and the envelope before it stands), or 'c' moved to
 * corrupt/
 */
static int
queue_recover_file(struct queue *q, const char *id)
{
	struct envelope e;
	char name[QUEUE_NAME_SIZE];
	const char *why;
	uint64_t envoff;
	size_t good;
	struct stat st;

	if (queue_load(q, id, &e, &good, &envoff, &why) == 0) {
		envelope_free(&e);
		queue_fname(name, id, NULL);
		if (fstatat(q->queuefd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (uint64_t)st.st_size > envoff + good)
			queue_cut(q, id, envoff + good);
		return 'q';
	}
	log_warnx("queue: recover: %s: %s; moving it to corrupt/", id, why);
	queue_fname(name, id, NULL);
	queue_to_corrupt(q, name);
	return 'c';
}

/* queue_recover - startup recovery; see QUEUE.md for each state */
int
queue_recover(struct queue *q, unsigned *queued, unsigned *removed,
    unsigned *corrupt)
{
	struct queue_entry *v;
	unsigned nq = 0, nr = 0, nc = 0;
	size_t n, i;
	int rc = 0, r;

	if (queue_recover_tmp(q, &nr) == -1)
		rc = -1;
	if ((v = queue_list(q, true, &n)) == NULL) {
		log_warn("queue: recover: cannot read queue/");
		rc = -1;
		n = 0;
	}
	for (i = 0; i < n; i++) {
		r = v[i].msg || v[i].env ? queue_recover_legacy(q, &v[i]) : 0;
		if (v[i].file)
			r = queue_recover_file(q, v[i].id);
		nq += r == 'q';
		nr += r == 'r';
		nc += r == 'c';
	}
	free(v);
	if (nr + nc + nq > 0 && (fsync(q->queuefd) == -1 ||
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

/* queue_scan - every queue file's id and due time, without reading one */
int
queue_scan(struct queue *q, void (*fn)(const char *, time_t, void *),
    void *arg)
{
	struct queue_entry *v;
	struct stat st;
	size_t n, i;

	if ((v = queue_list(q, false, &n)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (!v[i].file || fstatat(q->queuefd, v[i].id, &st,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode))
			continue;
		fn(v[i].id, st.st_mtim.tv_sec, arg);
	}
	free(v);
	return 0;
}

/* queue_foreach - every good queue file in queue/, oldest id first */
int
queue_foreach(struct queue *q, void (*fn)(const struct envelope *, void *),
    void (*bad)(const char *, const char *, void *), void *arg)
{
	struct queue_entry *v;
	struct envelope e;
	const char *why;
	size_t n, i;

	if ((v = queue_list(q, false, &n)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (!v[i].file)
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
