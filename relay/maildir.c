/*
 * maildir - the directory transport; see maildir.h.
 */
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/io.h"
#include "queue/envelope.h"
#include "queue/queue.h"
#include "relay/maildir.h"
#include "relay/transport.h"

#define MD_CHUNK	65536	/* bytes copied at once */
#define MD_RELAY	"directory"	/* relay in every outcome */

struct maildir {
	struct transport	 t;	/* first: the scheduler's handle */
	const struct config	*cfg;
	struct queue		*q;
	unsigned long		 seq;	/* file names */
};

/* maildir_copy - write the size bytes of in from off on to out; EIO if
   in is shorter */
static int
maildir_copy(int in, off_t off, uint64_t size, int out)
{
	char buf[MD_CHUNK];
	ssize_t n;

	while (size > 0) {
		n = pread(in, buf, size < sizeof(buf) ? (size_t)size :
		    sizeof(buf), off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		if (io_write_all(out, buf, (size_t)n) == -1)
			return -1;
		off += n;
		size -= (uint64_t)n;
	}
	return 0;
}

/*
 * maildir_one - write recipient i's copy: DIR/tmp/NAME, fsync, rename to
 * DIR/new/NAME. 0, or -1 with errno and *what naming the step.
 */
static int
maildir_one(struct maildir *md, const struct envelope *e, size_t i,
    int msgfd, off_t start, const char **what)
{
	const char *dir = md->cfg->relay.directory;
	struct timeval tv;
	struct buf head;
	char *tmp, *new;
	int fd, rc = -1, saved;

	gettimeofday(&tv, NULL);
	tmp = xasprintf("%s/tmp/%lld.M%06ldP%ldQ%lu.%s", dir,
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
	    ++md->seq, md->cfg->hostname);
	new = xasprintf("%s/new/%s", dir, strrchr(tmp, '/') + 1);
	buf_init(&head, 4096);
	(void)buf_printf(&head, "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
	    e->sender, e->rcpts[i].addr);
	*what = "create";
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1)
		goto out;
	*what = "write";
	if (io_write_all(fd, head.data, head.len) == -1 ||
	    (e->prepend != NULL && io_write_all(fd, e->prepend,
	    e->prepend_len) == -1) || maildir_copy(msgfd, start, e->size, fd) == -1) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto out;
	}
	*what = "fsync";
	if (fsync(fd) == -1 || close(fd) == -1) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		goto out;
	}
	*what = "rename";
	if (rename(tmp, new) == -1) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		goto out;
	}
	rc = 0;
out:
	buf_free(&head);
	free(tmp);
	free(new);
	return rc;
}

/*
 * maildir_start - transport start: every pending recipient gets its
 * file, then new/ is fsync'ed once; all callbacks run before it returns
 */
static int
maildir_start(struct transport *t, const struct envelope *e,
    const char *sender, transport_rcpt_cb rcpt_cb, transport_done_cb done_cb,
    uint64_t cookie, char **err)
{
	struct maildir *md = (struct maildir *)t;
	const char *dir = md->cfg->relay.directory;
	const char *what = "open the message";
	char *newdir, *text;
	size_t i, ndone = 0, *done;
	off_t start;
	int msgfd, dfd;

	(void)sender;	/* Return-Path is e->sender: see maildir.h */
	*err = NULL;
	if ((msgfd = queue_open_message(md->q, e->id, &start)) == -1) {
		text = xasprintf("cannot open the queued message: %s",
		    strerror(errno));
		for (i = 0; i < e->nrcpts; i++)
			if (e->rcpts[i].status == RCPT_PENDING)
				rcpt_cb(cookie, i, 0, "4.3.0", text, MD_RELAY);
		free(text);
		done_cb(cookie);
		return 0;
	}
	done = xcalloc(e->nrcpts ? e->nrcpts : 1, sizeof(*done));
	for (i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i].status != RCPT_PENDING)
			continue;
		if (maildir_one(md, e, i, msgfd, start, &what) == -1) {
			text = xasprintf("%s in %s: %s", what, dir,
			    strerror(errno));
			rcpt_cb(cookie, i, 0, "4.3.0", text, MD_RELAY);
			free(text);
			continue;
		}
		done[ndone++] = i;
	}
	close(msgfd);
	/* The renames are durable before anything says "delivered". */
	newdir = xasprintf("%s/new", dir);
	dfd = open(newdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ndone > 0 && (dfd == -1 || fsync(dfd) == -1)) {
		text = xasprintf("fsync %s: %s", newdir, strerror(errno));
		for (i = 0; i < ndone; i++)
			rcpt_cb(cookie, done[i], 0, "4.3.0", text, MD_RELAY);
		free(text);
	} else
		for (i = 0; i < ndone; i++)
			rcpt_cb(cookie, done[i], 250, "2.0.0",
			    "delivered to the directory", MD_RELAY);
	if (dfd != -1)
		close(dfd);
	free(newdir);
	free(done);
	done_cb(cookie);
	return 0;
}

/* maildir_free - transport free: nothing is ever in flight */
static void
maildir_free(struct transport *t)
{
	free(t);
}

/* maildir_mkdir - mkdir path 0700 unless it exists; -1 with *err */
static int
maildir_mkdir(const char *path, char **err)
{
	struct stat st;

	if (mkdir(path, 0700) == 0 || (errno == EEXIST &&
	    stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
		return 0;
	*err = xasprintf("relay.directory: mkdir %s: %s", path,
	    errno == EEXIST ? "exists and is not a directory" :
	    strerror(errno));
	return -1;
}

/* maildir_new - the transport, and its folders */
struct transport *
maildir_new(const struct config *cfg, struct queue *q, char **err)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur" };
	struct maildir *md;
	char *p;
	size_t i;

	*err = NULL;
	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		p = xasprintf("%s%s", cfg->relay.directory, sub[i]);
		if (maildir_mkdir(p, err) == -1) {
			free(p);
			return NULL;
		}
		free(p);
	}
	md = xcalloc(1, sizeof(*md));
	md->t.name = "directory";
	md->t.start = maildir_start;
	md->t.drain = NULL;
	md->t.free = maildir_free;
	md->t.down = NULL;	/* a folder is never down */
	md->t.still_down = NULL;
	md->cfg = cfg;
	md->q = q;
	return &md->t;
}
