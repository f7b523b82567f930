/*
 * test_queue - the on-disk queue in a fresh mkdtemp directory per test:
 * ids, streaming writes, sync and async (group) commit on a real
 * event_base, abort, write errors, the queue file itself (header, message,
 * envelope, updates appended), startup recovery of every planted state in
 * queue/QUEUE.md (with the expected log lines) including an update cut
 * short and the conversion of a queue from before version 3, foreach
 * order; envelope updates and removals, sync and async, mixed with
 * commits in shared batches, at queue_close.
 *
 * A queue file (version 3) as these tests read it: bytes [0, 37) the
 * header "postern-queue 3 " + the envelope's offset in 20 decimal digits
 * + LF, the message at [37, envoff), then the envelope as committed and
 * every update appended after it.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "common/buf.h"
#include "queue/envelope.h"
#include "queue/queue.h"

#define HDR_MAGIC	"postern-queue 3 "
#define HDR_LEN		37	/* HDR_MAGIC, 20 digits, LF */

struct fixture {
	char		 dir[64];
	struct queue	*q;
};

/* rm_one - nftw callback: remove one entry */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* setup - fresh state_dir with an open queue */
static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *err = NULL;

	strcpy(f->dir, "/tmp/postern-test-queue-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	strcat(f->dir, "/state");	/* queue_open creates it */
	if ((f->q = queue_open(f->dir, 1, &err)) == NULL) {
		fprintf(stderr, "queue_open: %s\n", err);
		free(err);
		return -1;
	}
	*state = f;
	return 0;
}

/* teardown - close the queue and remove the directory */
static int
teardown(void **state)
{
	struct fixture *f = *state;

	queue_close(f->q);
	f->dir[strlen(f->dir) - strlen("/state")] = '\0';
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* path - state_dir/sub/name in a static buffer (two in turn) */
static const char *
path(struct fixture *f, const char *sub, const char *name)
{
	static char p[2][512];
	static int which;

	which ^= 1;
	snprintf(p[which], sizeof(p[which]), "%s/%s/%s", f->dir, sub, name);
	return p[which];
}

/* file_name - "ID" (ext NULL: the queue file) or "ID.ext" (the two files
   of a queue from before version 3) in a static buffer (two in turn) */
static const char *
file_name(const char *id, const char *ext)
{
	static char n[2][64];
	static int which;

	which ^= 1;
	if (ext == NULL)
		snprintf(n[which], sizeof(n[which]), "%.20s", id);
	else
		snprintf(n[which], sizeof(n[which]), "%.20s.%.3s", id, ext);
	return n[which];
}

/* exists - does the path exist (lstat)? */
static int
exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

/* count_dir - entries in f->dir/sub, not counting . and .. */
static int
count_dir(struct fixture *f, const char *sub)
{
	char p[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", f->dir, sub);
	assert_non_null(d = opendir(p));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* slurp - whole file into new memory */
static char *
slurp(const char *p, size_t *len)
{
	FILE *fp = fopen(p, "rb");
	char *data;
	long n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	data = malloc((size_t)n + 1);
	assert_int_equal(fread(data, 1, (size_t)n, fp), (size_t)n);
	data[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return data;
}

/* file_is - the file at p holds exactly the len bytes of want */
static void
file_is(const char *p, const char *want, size_t len)
{
	size_t got_len;
	char *got = slurp(p, &got_len);

	assert_int_equal(got_len, len);
	assert_memory_equal(got, want, len);
	free(got);
}

/* put_bytes - write bytes to p, opened with fopen mode ("wb": create or
   replace, "ab": add at the end) */
static void
put_bytes(const char *p, const char *mode, const void *data, size_t len)
{
	FILE *fp = fopen(p, mode);

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* spew - create (or replace) a file with the given bytes */
static void
spew(const char *p, const void *data, size_t len)
{
	put_bytes(p, "wb", data, len);
}

/* append_to - add bytes at the end of an existing file */
static void
append_to(const char *p, const void *data, size_t len)
{
	put_bytes(p, "ab", data, len);
}

/* file_size - st_size of p */
static size_t
file_size(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	return (size_t)st.st_size;
}

/* make_envelope - a plausible envelope (id and size are the queue's job) */
static void
make_envelope(struct envelope *e, const char *rcpt)
{
	memset(e, 0, sizeof(*e));
	e->time = time(NULL);
	e->sender = strdup("app@example.org");
	e->login = strdup("app@example.org");
	e->client = strdup("127.0.0.1");
	e->helo = strdup("localhost");
	envelope_add_rcpt(e, rcpt);
}

/* set_prepend - give e prepended header fields (a DKIM signature) */
static void
set_prepend(struct envelope *e, const char *fields)
{
	free(e->prepend);
	e->prepend = strdup(fields);
	e->prepend_len = strlen(fields);
}

/* format_env - e's on-disk text (version 2) in new memory */
static char *
format_env(const struct envelope *e, size_t *len)
{
	struct buf b;
	char *text;

	buf_init(&b, 1 << 20);
	assert_int_equal(envelope_format(e, &b), 0);
	text = malloc(b.len + 1);
	memcpy(text, b.data, b.len);
	text[b.len] = '\0';
	*len = b.len;
	buf_free(&b);
	return text;
}

/* pattern - deterministic message bytes */
static void
pattern(char *p, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (char)('A' + (i * 7 + seed) % 26);
}

/* commit_one_sync - a message of len pattern bytes, committed; its id */
static void
commit_one_sync(struct fixture *f, size_t len, unsigned seed, char *id)
{
	struct queue_msg *m;
	struct envelope e;
	char *data = malloc(len + 1);

	pattern(data, len, seed);
	assert_non_null(m = queue_msg_new(f->q));
	strcpy(id, queue_msg_id(m));
	assert_int_equal(queue_msg_write(m, data, len), 0);
	make_envelope(&e, "rcpt@example.net");
	assert_int_equal(queue_msg_commit_sync(m, &e), 0);
	envelope_free(&e);
	free(data);
}

/* load - queue_load_envelope that must succeed */
static void
load(struct fixture *f, const char *id, struct envelope *e)
{
	const char *err = NULL;

	if (queue_load_envelope(f->q, id, e, &err) == -1)
		fail_msg("%s: load: %s", id, err);
}

/* prepend_is - the envelope of id loads with exactly sig prepended */
static void
prepend_is(struct fixture *f, const char *id, const char *sig)
{
	struct envelope back;

	load(f, id, &back);
	assert_int_equal(back.prepend_len, strlen(sig));
	assert_memory_equal(back.prepend, sig, strlen(sig));
	envelope_free(&back);
}

/*
 * A queue file read back: all its bytes, and the envelope offset its
 * header names (the test fails unless the header has the version-3
 * shape).
 */
struct qfile {
	char		*data;
	size_t		 len;
	uint64_t	 envoff;
};

/* header_off - the offset a version-3 header names; fails on any other */
static uint64_t
header_off(const char *hdr)
{
	uint64_t off = 0;
	size_t i;

	assert_memory_equal(hdr, HDR_MAGIC, strlen(HDR_MAGIC));
	assert_int_equal(hdr[HDR_LEN - 1], '\n');
	for (i = strlen(HDR_MAGIC); i < HDR_LEN - 1; i++) {
		if (hdr[i] < '0' || hdr[i] > '9')
			fail_msg("header byte %zu is not a digit", i);
		off = off * 10 + (uint64_t)(hdr[i] - '0');
	}
	return off;
}

/* qfile_read - queue/ID into qf */
static void
qfile_read(struct fixture *f, const char *id, struct qfile *qf)
{
	qf->data = slurp(path(f, "queue", file_name(id, NULL)), &qf->len);
	assert_true(qf->len >= HDR_LEN);
	qf->envoff = header_off(qf->data);
	assert_true(qf->envoff >= HDR_LEN && qf->envoff <= qf->len);
}

/* header_text - the header of a file whose envelope starts at off */
static void
header_text(char hdr[HDR_LEN + 1], uint64_t off)
{
	snprintf(hdr, HDR_LEN + 1, "%s%020llu\n", HDR_MAGIC,
	    (unsigned long long)off);
}

/* plant_file - write queue/ID by hand: a header naming envoff, the
   message bytes, then tail (envelope text and anything after it) */
static void
plant_file(struct fixture *f, const char *id, uint64_t envoff,
    const char *msg, size_t msglen, const char *tail, size_t taillen)
{
	char hdr[HDR_LEN + 1];
	const char *p = path(f, "queue", file_name(id, NULL));

	header_text(hdr, envoff);
	spew(p, hdr, HDR_LEN);
	append_to(p, msg, msglen);
	append_to(p, tail, taillen);
}

/* replace_tail - keep queue/ID's header and message, put tail after them */
static void
replace_tail(struct fixture *f, const char *id, const char *tail,
    size_t taillen)
{
	struct qfile qf;

	qfile_read(f, id, &qf);
	plant_file(f, id, qf.envoff, qf.data + HDR_LEN, qf.envoff - HDR_LEN,
	    tail, taillen);
	free(qf.data);
}

/*
 * plant_legacy - the two files of a queue from before version 3 for id:
 * ID.msg of len pattern bytes (seed), ID.env its envelope formatted with
 * envelope_format (with prepend if not NULL; size as given, so a test can
 * make them differ). Leaves the envelope in *e if e is not NULL.
 */
static void
plant_legacy(struct fixture *f, const char *id, size_t len, unsigned seed,
    uint64_t size, const char *prepend, struct envelope *e)
{
	struct envelope mine;
	char *data = malloc(len + 1), *text;
	size_t tlen;

	if (e == NULL)
		e = &mine;
	pattern(data, len, seed);
	spew(path(f, "queue", file_name(id, "msg")), data, len);
	free(data);
	make_envelope(e, "legacy@example.net");
	strcpy(e->id, id);
	e->size = size;
	if (prepend != NULL)
		set_prepend(e, prepend);
	text = format_env(e, &tlen);
	spew(path(f, "queue", file_name(id, "env")), text, tlen);
	free(text);
	if (e == &mine)
		envelope_free(e);
}

/* capture - start (path set) or stop (NULL) sending stderr to a file */
static void
capture(const char *p)
{
	static int saved = -1;
	int fd;

	fflush(stderr);
	if (p != NULL) {
		saved = dup(2);
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		dup2(fd, 2);
		close(fd);
	} else {
		dup2(saved, 2);
		close(saved);
		saved = -1;
	}
}

/* capture_pipe - stderr into a pipe until capture_pipe_end(), for code
   that runs under a file size limit (which a log file would be held to);
   fds gets the saved stderr and the pipe's read end */
static void
capture_pipe(int fds[2])
{
	int p[2];

	fflush(stderr);
	assert_int_equal(pipe(p), 0);
	fds[0] = dup(2);
	fds[1] = p[0];
	dup2(p[1], 2);
	close(p[1]);
}

/* capture_pipe_end - stderr back; what came through the pipe (up to 64
   KiB, more than a test logs), in new memory */
static char *
capture_pipe_end(int fds[2])
{
	char *text = calloc(1, 65536);
	size_t len = 0;
	ssize_t n;

	fflush(stderr);
	dup2(fds[0], 2);	/* closes the pipe's last write end */
	close(fds[0]);
	while (len < 65535 && (n = read(fds[1], text + len,
	    65535 - len)) > 0)
		len += (size_t)n;
	close(fds[1]);
	return text;
}

/* count_str - how often s occurs in text */
static int
count_str(const char *text, const char *s)
{
	int n = 0;

	while ((text = strstr(text, s)) != NULL) {
		n++;
		text += strlen(s);
	}
	return n;
}

/* count_in_file - how often s occurs in the file at p */
static int
count_in_file(const char *p, const char *s)
{
	size_t len;
	char *text = slurp(p, &len);
	int n = count_str(text, s);

	free(text);
	return n;
}

/* grep_file - does the file at p contain s? */
static int
grep_file(const char *p, const char *s)
{
	return count_in_file(p, s) > 0;
}

/* grep_id - does the log at p hold "ID: what"? */
static int
grep_id(const char *p, const char *id, const char *what)
{
	char want[512];

	snprintf(want, sizeof(want), "%s: %s", id, what);
	return grep_file(p, want);
}

/*
 * recover_logged - queue_recover with its log in state_dir/recover.log
 * (logp gets that path); it must return 0 and count queued, removed and
 * corrupt messages as given
 */
static void
recover_logged(struct fixture *f, char logp[512], unsigned queued,
    unsigned removed, unsigned corrupt)
{
	unsigned q = 99, r = 99, c = 99;

	snprintf(logp, 512, "%s/recover.log", f->dir);
	capture(logp);
	assert_int_equal(queue_recover(f->q, &q, &r, &c), 0);
	capture(NULL);
	if (q != queued || r != removed || c != corrupt)
		fail_msg("recovery counted queued %u removed %u corrupt %u, "
		    "want %u %u %u", q, r, c, queued, removed, corrupt);
}

/* test_open_layout - three 0700 directories, reopen works, bad dir fails */
static void
test_open_layout(void **state)
{
	struct fixture *f = *state;
	static const char *subs[] = { "tmp", "queue", "corrupt" };
	struct queue *q2;
	struct stat st;
	char p[512], *err = NULL;
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, subs[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	assert_non_null(q2 = queue_open(f->dir, 0, &err));
	queue_close(q2);

	snprintf(p, sizeof(p), "%s/nonexistent", f->dir);
	assert_null(queue_open(p, 0, &err));
	assert_non_null(err);
	assert_non_null(strstr(err, "nonexistent"));
	free(err);
}

/* base62 - value of one id digit */
static int
base62(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return c - 'a' + 36;
}

/* test_id_shape - valid, unique, strictly increasing, prefix is the time;
   each new message is one file tmp/ID */
static void
test_id_shape(void **state)
{
	struct fixture *f = *state;
	enum { N = 2000 };
	static char ids[N][QUEUE_ID_LEN + 1];
	uint64_t usec;
	time_t now = time(NULL);
	size_t i, j;
	int suffix_differs = 0;

	for (i = 0; i < N; i++) {
		struct queue_msg *m = queue_msg_new(f->q);

		assert_non_null(m);
		strcpy(ids[i], queue_msg_id(m));
		assert_true(queue_id_valid(ids[i]));
		assert_true(exists(path(f, "tmp", file_name(ids[i], NULL))));
		if (i == 0)
			assert_int_equal(count_dir(f, "tmp"), 1);
		queue_msg_abort(m);
		if (i > 0) {
			if (strcmp(ids[i - 1], ids[i]) >= 0)
				fail_msg("not increasing: %s then %s",
				    ids[i - 1], ids[i]);
			if (strcmp(ids[i - 1] + 9, ids[i] + 9) != 0)
				suffix_differs++;
		}
	}
	assert_true(suffix_differs > N - 10);	/* random, not a counter */
	/* the 9-digit prefix is microseconds since the epoch */
	for (usec = 0, j = 0; j < 9; j++)
		usec = usec * 62 + (uint64_t)base62(ids[0][j]);
	assert_true(usec / 1000000 >= (uint64_t)now - 2);
	assert_true(usec / 1000000 <= (uint64_t)now + 2);
	assert_int_equal(count_dir(f, "tmp"), 0);
}

/* test_abort - removes the tmp file */
static void
test_abort(void **state)
{
	struct fixture *f = *state;
	struct queue_msg *m;
	char id[QUEUE_ID_LEN + 1];

	assert_non_null(m = queue_msg_new(f->q));
	strcpy(id, queue_msg_id(m));
	assert_int_equal(queue_msg_write(m, "Subject: x\r\n\r\nhi\r\n", 18), 0);
	assert_true(exists(path(f, "tmp", file_name(id, NULL))));
	queue_msg_abort(m);
	assert_false(exists(path(f, "tmp", file_name(id, NULL))));
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);
	queue_msg_abort(NULL);
}

/* read_message - the message of id through queue_open_message, pread
   from *start for size bytes; nothing is readable past it but the
   envelope */
static char *
read_message(struct fixture *f, const char *id, uint64_t size)
{
	char *got = malloc(size + 1);
	off_t start = -1;
	ssize_t n;
	int fd;

	assert_true((fd = queue_open_message(f->q, id, &start)) >= 0);
	assert_int_equal(start, HDR_LEN);
	n = size > 0 ? pread(fd, got, size, start) : 0;
	assert_int_equal(n, (ssize_t)size);
	close(fd);
	return got;
}

/* test_sync_commit - one file queue/ID, exact contents, tmp/ empty */
static void
test_sync_commit(void **state)
{
	struct fixture *f = *state;
	const size_t total = 100 * 1024 + 17;	/* several buffer flushes */
	static const size_t chunks[] = { 1, 100, 32767, 1, 40000, 4096 };
	struct queue_msg *m;
	struct envelope e, back;
	struct queue_stats st;
	struct qfile qf;
	struct stat sb;
	char id[QUEUE_ID_LEN + 1], *data, *got;
	const char *err;
	size_t off = 0, i = 0, n;

	data = malloc(total);
	pattern(data, total, 3);
	assert_non_null(m = queue_msg_new(f->q));
	strcpy(id, queue_msg_id(m));
	while (off < total) {
		n = chunks[i++ % 6];
		if (n > total - off)
			n = total - off;
		assert_int_equal(queue_msg_write(m, data + off, n), 0);
		off += n;
		assert_int_equal(queue_msg_size(m), off);
	}
	make_envelope(&e, "\"two words\"@example.net");
	envelope_add_rcpt(&e, "second@example.com");
	e.body_8bit = true;
	assert_int_equal(queue_msg_commit_sync(m, &e), 0);

	/* one file, mode 0600: header, exact message bytes, envelope */
	assert_int_equal(stat(path(f, "queue", file_name(id, NULL)), &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);
	qfile_read(f, id, &qf);
	assert_int_equal(qf.envoff, HDR_LEN + total);
	assert_memory_equal(qf.data + HDR_LEN, data, total);
	assert_memory_equal(qf.data + qf.envoff, "postern-envelope 2\n", 19);
	free(qf.data);

	/* envelope: the caller's, with the queue's id and size */
	assert_int_equal(queue_load_envelope(f->q, id, &back, &err), 0);
	assert_string_equal(back.id, id);
	assert_int_equal(back.size, total);
	assert_string_equal(back.sender, e.sender);
	assert_string_equal(back.login, e.login);
	assert_int_equal(back.time, e.time);
	assert_true(back.body_8bit);
	assert_int_equal(back.nrcpts, 2);
	assert_string_equal(back.rcpts[0].addr, "\"two words\"@example.net");
	assert_int_equal(back.rcpts[1].status, RCPT_PENDING);
	assert_null(back.prepend);
	envelope_free(&back);
	envelope_free(&e);

	/* readable through the API: size bytes from *start */
	got = read_message(f, id, total);
	assert_memory_equal(got, data, total);
	free(got);

	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 1);
	queue_stats(f->q, &st);
	assert_int_equal(st.commits, 1);
	assert_int_equal(st.file_fsyncs, 1);
	assert_int_equal(st.dir_fsyncs, 1);
	assert_int_equal(st.batches, 0);	/* sync: no committer round */
	free(data);
}

/*
 * test_file_layout - the bytes of a committed file, exactly: the header
 * names 37 + size, the message is at 37, the envelope (with its prepend)
 * follows and is the whole rest of the file; an empty message too
 */
static void
test_file_layout(void **state)
{
	struct fixture *f = *state;
	static const char sig[] = "DKIM-Signature: v=1; a=rsa-sha256; "
	    "d=example.org;\r\n\tb=abc\r\n";
	static const size_t sizes[] = { 0, 1, 4096 };
	struct queue_msg *m;
	struct envelope e;
	struct qfile qf;
	char id[QUEUE_ID_LEN + 1], hdr[HDR_LEN + 1], *data, *want;
	size_t i, wlen;

	for (i = 0; i < 3; i++) {
		data = malloc(sizes[i] + 1);
		pattern(data, sizes[i], (unsigned)i);
		assert_non_null(m = queue_msg_new(f->q));
		strcpy(id, queue_msg_id(m));
		assert_int_equal(queue_msg_write(m, data, sizes[i]), 0);
		make_envelope(&e, "rcpt@example.net");
		set_prepend(&e, sig);
		assert_int_equal(queue_msg_commit_sync(m, &e), 0);

		qfile_read(f, id, &qf);
		header_text(hdr, HDR_LEN + sizes[i]);
		assert_memory_equal(qf.data, hdr, HDR_LEN);
		assert_int_equal(qf.envoff, HDR_LEN + sizes[i]);
		assert_memory_equal(qf.data + HDR_LEN, data, sizes[i]);
		/* the envelope as envelope_format writes it, id and size
		   set by the queue, and nothing after it */
		strcpy(e.id, id);
		e.size = sizes[i];
		want = format_env(&e, &wlen);
		assert_int_equal(qf.len, qf.envoff + wlen);
		assert_memory_equal(qf.data + qf.envoff, want, wlen);
		assert_non_null(strstr(want, "\nprepend "));
		free(want);
		free(qf.data);

		prepend_is(f, id, sig);
		envelope_free(&e);
		free(data);
	}
	assert_int_equal(count_dir(f, "queue"), 3);
	assert_int_equal(count_dir(f, "tmp"), 0);
}

/* test_commit_bad_envelope - refused, nothing left anywhere */
static void
test_commit_bad_envelope(void **state)
{
	struct fixture *f = *state;
	struct queue_msg *m;
	struct envelope e;

	assert_non_null(m = queue_msg_new(f->q));
	assert_int_equal(queue_msg_write(m, "x", 1), 0);
	make_envelope(&e, "rcpt@example.net");
	free(e.helo);
	e.helo = strdup("evil\r\nrcpt pending victim@example.com");
	errno = 0;
	assert_int_equal(queue_msg_commit_sync(m, &e), -1);
	assert_int_equal(errno, EINVAL);
	envelope_free(&e);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);
}

/* A file size limit in force, and what to put back. */
struct fsize_limit {
	struct rlimit	 old;
	void		(*oldsig)(int);
};

/* fsize_limit_set - limit files to limit bytes with SIGXFSZ ignored, so
   that a write past it fails with EFBIG */
static void
fsize_limit_set(struct fsize_limit *l, rlim_t limit)
{
	struct rlimit small;

	getrlimit(RLIMIT_FSIZE, &l->old);
	small = l->old;
	small.rlim_cur = limit;
	l->oldsig = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
}

/* fsize_limit_end - the old limit and SIGXFSZ handler back; errno kept */
static void
fsize_limit_end(struct fsize_limit *l)
{
	int saved = errno;

	setrlimit(RLIMIT_FSIZE, &l->old);
	signal(SIGXFSZ, l->oldsig);
	errno = saved;
}

/* test_write_error - EFBIG from a file size limit: sticky, cleaned up */
static void
test_write_error(void **state)
{
	struct fixture *f = *state;
	struct queue_msg *m;
	struct envelope e;
	struct fsize_limit lim;
	char *data = calloc(1, 256 * 1024);
	int r;

	assert_non_null(m = queue_msg_new(f->q));
	fsize_limit_set(&lim, 64 * 1024);
	r = queue_msg_write(m, data, 256 * 1024);
	fsize_limit_end(&lim);
	assert_int_equal(r, -1);
	assert_int_equal(errno, EFBIG);
	/* the error sticks, even though the limit is gone */
	assert_int_equal(queue_msg_write(m, "x", 1), -1);
	assert_int_equal(errno, EFBIG);
	make_envelope(&e, "rcpt@example.net");
	assert_int_equal(queue_msg_commit_sync(m, &e), -1);
	assert_int_equal(errno, EFBIG);
	envelope_free(&e);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);
	free(data);
}

/* commit_under_limit - commit len bytes with files limited to limit bytes */
static int
commit_under_limit(struct fixture *f, size_t len, rlim_t limit)
{
	struct queue_msg *m;
	struct envelope e;
	struct fsize_limit lim;
	char *data = calloc(1, len);
	int r, saved;

	assert_non_null(m = queue_msg_new(f->q));
	assert_int_equal(queue_msg_write(m, data, len), 0);	/* buffered */
	make_envelope(&e, "rcpt@example.net");
	fsize_limit_set(&lim, limit);
	r = queue_msg_commit_sync(m, &e);
	fsize_limit_end(&lim);
	saved = errno;
	envelope_free(&e);
	free(data);
	errno = saved;
	return r;
}

/* test_commit_step_fails - a failure inside the commit steps leaves nothing */
static void
test_commit_step_fails(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;

	/* the final flush of the message fails */
	assert_int_equal(commit_under_limit(f, 20000, 4096), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);

	/* header and message (37 + 10) fit, the envelope (~150) does not */
	assert_int_equal(commit_under_limit(f, 10, 60), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);

	queue_stats(f->q, &st);
	assert_int_equal(st.failures, 2);
	assert_int_equal(st.commits, 0);
	assert_int_equal(st.file_fsyncs, 0);	/* failed before the fsync */
	assert_int_equal(st.dir_fsyncs, 0);	/* nothing was renamed */
}

struct async_result {
	int		 called;
	int		 error;
	char		 id[QUEUE_ID_LEN + 1];
};

enum { ASYNC_MAX = 512 };
static struct async_result results[ASYNC_MAX];
static int results_called, results_want;
static struct event_base *results_base;

/* async_cb - record the result; stop the loop when all are in */
static void
async_cb(uint64_t cookie, int error, const char *id)
{
	assert_true(cookie < ASYNC_MAX);
	assert_int_equal(results[cookie].called, 0);	/* exactly once */
	results[cookie].called = 1;
	results[cookie].error = error;
	snprintf(results[cookie].id, sizeof(results[cookie].id), "%s", id);
	if (++results_called == results_want && results_base != NULL)
		event_base_loopexit(results_base, NULL);
}

/* results_reset - expect want callbacks; stop base's loop after them (base
   may be NULL: nothing to stop) */
static void
results_reset(int want, struct event_base *base)
{
	memset(results, 0, sizeof(results));
	results_called = 0;
	results_want = want;
	results_base = base;
}

/* run_loop - dispatch base until every expected callback came (60 s at
   most) */
static void
run_loop(struct event_base *base)
{
	struct timeval limit = { 60, 0 };

	event_base_loopexit(base, &limit);
	assert_true(event_base_dispatch(base) >= 0);
	assert_int_equal(results_called, results_want);
}

/* start_async - a new event_base with the queue started on it, want
   callbacks expected (results_reset) */
static struct event_base *
start_async(struct fixture *f, int want)
{
	struct event_base *base;

	assert_non_null(base = event_base_new());
	results_reset(want, base);
	assert_int_equal(queue_start(f->q, base), 0);
	return base;
}

/* stop_async - close the queue, then free base */
static void
stop_async(struct fixture *f, struct event_base *base)
{
	queue_close(f->q);
	f->q = NULL;
	results_base = NULL;
	event_base_free(base);
}

/*
 * run_async - n messages written interleaved, all committed at once. With
 * bare set the base has nothing but the queue: dispatch must still run
 * until every callback came (in-flight commits keep the loop alive).
 */
static void
run_async(struct fixture *f, int n, int bare, struct queue_stats *st)
{
	struct queue_msg *m[ASYNC_MAX];
	char id[ASYNC_MAX][QUEUE_ID_LEN + 1];
	struct event_base *base;
	struct envelope e;
	struct qfile qf;
	char line[128], *got;
	size_t len;
	int i, k;

	assert_true(n <= ASYNC_MAX);
	base = start_async(f, n);
	if (bare)
		results_base = NULL;
	assert_int_equal(queue_start(f->q, base), -1);	/* only once */

	for (i = 0; i < n; i++) {
		assert_non_null(m[i] = queue_msg_new(f->q));
		strcpy(id[i], queue_msg_id(m[i]));
	}
	for (k = 0; k < 3; k++)		/* sessions interleave their DATA */
		for (i = 0; i < n; i++) {
			snprintf(line, sizeof(line), "line %d of %.20s\r\n", k,
			    id[i]);
			assert_int_equal(queue_msg_write(m[i], line,
			    strlen(line)), 0);
		}
	make_envelope(&e, "rcpt@example.net");
	for (i = 0; i < n; i++)
		assert_int_equal(queue_msg_commit(m[i], &e, async_cb,
		    (uint64_t)i), 0);
	envelope_free(&e);	/* the queue copied what it needs */

	/* the loop is not blocked: it runs until every callback came */
	if (bare) {
		assert_true(event_base_dispatch(base) >= 0);
		assert_int_equal(results_called, n);
	} else
		run_loop(base);
	queue_stats(f->q, st);

	for (i = 0; i < n; i++) {
		assert_int_equal(results[i].called, 1);
		assert_int_equal(results[i].error, 0);
		assert_string_equal(results[i].id, id[i]);
		snprintf(line, sizeof(line), "line 0 of %.20s\r\n", id[i]);
		len = 3 * strlen(line);
		qfile_read(f, id[i], &qf);
		assert_int_equal(qf.envoff, HDR_LEN + len);
		assert_memory_equal(qf.data + HDR_LEN, line, strlen(line));
		free(qf.data);
		got = read_message(f, id[i], len);
		assert_memory_equal(got, line, strlen(line));
		free(got);
		load(f, id[i], &e);
		assert_int_equal(e.size, len);
		envelope_free(&e);
	}
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), n);

	stop_async(f, base);	/* queue_close before event_base_free */
}

/* test_async_commit - 64 concurrent commits all call back with 0 */
static void
test_async_commit(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;

	run_async(f, 64, 1, &st);
	assert_int_equal(st.commits, 64);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.file_fsyncs, 64);	/* one per message */
	assert_int_equal(st.dir_fsyncs, st.batches);
	print_message("# async 64: %llu dir fsyncs in %llu batches, "
	    "largest batch %llu\n", (unsigned long long)st.dir_fsyncs,
	    (unsigned long long)st.batches, (unsigned long long)st.max_batch);
}

/* test_async_group_commit - many at once share directory fsyncs */
static void
test_async_group_commit(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;

	run_async(f, 400, 0, &st);
	print_message("# async 400: %llu dir fsyncs in %llu batches, "
	    "largest batch %llu\n", (unsigned long long)st.dir_fsyncs,
	    (unsigned long long)st.batches, (unsigned long long)st.max_batch);
	assert_int_equal(st.commits, 400);
	assert_int_equal(st.file_fsyncs, 400);
	assert_int_equal(st.dir_fsyncs, st.batches);
	assert_true(st.dir_fsyncs < 400);
	assert_true(st.max_batch > 1);
}

/* test_close_finishes_pending - close without a loop: all still land */
static void
test_close_finishes_pending(void **state)
{
	struct fixture *f = *state;
	struct event_base *base;
	struct queue_msg *m;
	struct envelope e;
	char id[20][QUEUE_ID_LEN + 1];
	char *err = NULL;
	unsigned queued = 99, removed = 99, corrupt = 99;
	int i;

	base = start_async(f, 20);
	results_base = NULL;	/* the loop never runs */
	make_envelope(&e, "rcpt@example.net");
	for (i = 0; i < 20; i++) {
		assert_non_null(m = queue_msg_new(f->q));
		strcpy(id[i], queue_msg_id(m));
		assert_int_equal(queue_msg_write(m, "body\r\n", 6), 0);
		assert_int_equal(queue_msg_commit(m, &e, async_cb,
		    (uint64_t)i), 0);
	}
	envelope_free(&e);
	stop_async(f, base);	/* the loop never ran */
	assert_int_equal(results_called, 20);
	for (i = 0; i < 20; i++) {
		assert_int_equal(results[i].error, 0);
		assert_true(exists(path(f, "queue", file_name(id[i], NULL))));
	}
	assert_int_equal(count_dir(f, "tmp"), 0);
	/* and they are all there for the next start */
	assert_non_null(f->q = queue_open(f->dir, 0, &err));
	assert_int_equal(queue_recover(f->q, &queued, &removed, &corrupt), 0);
	assert_int_equal(queued, 20);
	assert_int_equal(removed, 0);
	assert_int_equal(corrupt, 0);
}

/* test_async_refused - commit without queue_start, or a bad envelope */
static void
test_async_refused(void **state)
{
	struct fixture *f = *state;
	struct event_base *base;
	struct queue_msg *m;
	struct envelope e;

	make_envelope(&e, "rcpt@example.net");
	assert_non_null(m = queue_msg_new(f->q));
	assert_int_equal(queue_msg_commit(m, &e, async_cb, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(count_dir(f, "tmp"), 0);

	assert_non_null(base = event_base_new());
	assert_int_equal(queue_start(f->q, base), 0);
	assert_non_null(m = queue_msg_new(f->q));
	free(e.sender);
	e.sender = strdup("a\n@b");
	results_reset(0, NULL);
	assert_int_equal(queue_msg_commit(m, &e, async_cb, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);
	envelope_free(&e);
	stop_async(f, base);
	assert_int_equal(results_called, 0);	/* no callback after -1 */
}

/* deliver_first - e's first recipient delivered, a second one deferred
   with a reply, one attempt made */
static void
deliver_first(struct envelope *e, const char *text)
{
	e->rcpts[0].status = RCPT_DELIVERED;
	envelope_set_reply(&e->rcpts[0], 250, "2.0.0", "Ok: queued as X");
	if (e->nrcpts < 2)
		envelope_add_rcpt(e, "second@example.com");
	envelope_set_reply(&e->rcpts[1], 451, "4.7.1", text);
	e->attempts++;
	e->next_attempt = 1900000000;
}

/* update_text - the text an update of e appends: e without its prepend */
static char *
update_text(const struct envelope *e, size_t *len)
{
	struct envelope copy = *e;

	copy.prepend = NULL;
	copy.prepend_len = 0;
	return format_env(&copy, len);
}

/* update_len - how many bytes an update of e appends */
static size_t
update_len(const struct envelope *e)
{
	size_t len;

	free(update_text(e, &len));
	return len;
}

/* plant_update - append e (as an update would) to queue/e->id, only the
   first keep bytes of it if keep is not (size_t)-1 */
static void
plant_update(struct fixture *f, const struct envelope *e, size_t keep)
{
	size_t len;
	char *text = update_text(e, &len);

	if (keep != (size_t)-1)
		len = keep;
	append_to(path(f, "queue", file_name(e->id, NULL)), text, len);
	free(text);
}

/* truncate_to - cut queue/ID to len bytes */
static void
truncate_to(struct fixture *f, const char *id, size_t len)
{
	assert_int_equal(truncate(path(f, "queue", file_name(id, NULL)),
	    (off_t)len), 0);
}

/* test_recover - every planted state gets its documented outcome */
static void
test_recover(void **state)
{
	struct fixture *f = *state;
	char good1[21], good2[21], badhdr[21], shorthdr[21], noenv[21];
	char cutshort[21], garbage[21], mismatch[21], sizediff[21];
	char other[21], stale[21], logp[512], *text;
	static const char legmsg[] = "1c2QbT3ZxLegacyMsg01";
	static const char legenv[] = "1c2QbT3ZxLegacyEnv01";
	struct qfile qf;
	struct envelope e;
	size_t len;

	commit_one_sync(f, 1000, 1, good1);
	commit_one_sync(f, 5, 2, good2);
	load(f, good2, &e);		/* a good file with an update */
	deliver_first(&e, "deferred");
	plant_update(f, &e, (size_t)-1);
	envelope_free(&e);

	/* stale tmp/: an unfinished message and some junk */
	strcpy(stale, "1c2QbT3ZxStaleStale0");
	spew(path(f, "tmp", file_name(stale, NULL)), "half a mess", 11);
	spew(path(f, "tmp", "leftover.env"), "x", 1);
	/* a header that is not ours (version 2 written over it) */
	commit_one_sync(f, 10, 3, badhdr);
	{
		int fd = open(path(f, "queue", file_name(badhdr, NULL)),
		    O_WRONLY);

		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, "postern-queue 2 ", 16, 0), 16);
		close(fd);
	}
	/* a header naming an offset past the end of the file */
	commit_one_sync(f, 10, 4, shorthdr);
	qfile_read(f, shorthdr, &qf);
	plant_file(f, shorthdr, qf.len + 1, qf.data + HDR_LEN,
	    qf.envoff - HDR_LEN, qf.data + qf.envoff, qf.len - qf.envoff);
	free(qf.data);
	/* the message, but no envelope after it */
	commit_one_sync(f, 10, 5, noenv);
	truncate_to(f, noenv, HDR_LEN + 10);
	/* the envelope cut short, no whole one ("...\nen") */
	commit_one_sync(f, 10, 6, cutshort);
	truncate_to(f, cutshort, file_size(path(f, "queue",
	    file_name(cutshort, NULL))) - 2);
	/* a whole envelope of garbage */
	commit_one_sync(f, 10, 7, garbage);
	replace_tail(f, garbage, "\x00\xff garbage\nend\n", 15);
	/* the envelope of another message: id differs from the file name */
	commit_one_sync(f, 10, 8, mismatch);
	load(f, good1, &e);
	e.size = 10;		/* only the id differs */
	text = format_env(&e, &len);
	envelope_free(&e);
	replace_tail(f, mismatch, text, len);
	free(text);
	/* the message one byte longer than its envelope says */
	commit_one_sync(f, 10, 9, sizediff);
	qfile_read(f, sizediff, &qf);
	plant_file(f, sizediff, qf.envoff + 1, qf.data + HDR_LEN, 11,
	    qf.data + qf.envoff, qf.len - qf.envoff);
	free(qf.data);
	/* an update naming another message */
	commit_one_sync(f, 10, 10, other);
	load(f, good1, &e);
	e.size = 10;		/* only the id differs */
	text = update_text(&e, &len);
	append_to(path(f, "queue", file_name(other, NULL)), text, len);
	free(text);
	envelope_free(&e);
	/* from before version 3: a message without its envelope, never
	   acknowledged; an envelope without its message */
	plant_legacy(f, legmsg, 10, 1, 10, NULL, NULL);
	assert_int_equal(unlink(path(f, "queue", file_name(legmsg, "env"))),
	    0);
	plant_legacy(f, legenv, 10, 1, 10, NULL, NULL);
	assert_int_equal(unlink(path(f, "queue", file_name(legenv, "msg"))),
	    0);
	/* foreign files */
	spew(path(f, "queue", "README"), "hands off\n", 10);
	spew(path(f, "queue", "1c2QbT3ZxAbCdEfGhIjK.bak"), "x", 1);
	/* corrupt/ already has a file of the garbage message's name */
	spew(path(f, "corrupt", file_name(garbage, NULL)), "older", 5);

	/* removed: two in tmp/, one legacy msg */
	recover_logged(f, logp, 2, 3, 9);

	assert_int_equal(count_dir(f, "tmp"), 0);
	/* the good ones stay, untouched: good2 with its update */
	load(f, good2, &e);
	assert_string_equal(e.rcpts[1].text, "deferred");
	envelope_free(&e);
	load(f, good1, &e);
	envelope_free(&e);
	/* never acknowledged: gone */
	assert_false(exists(path(f, "queue", file_name(legmsg, "msg"))));
	/* damaged: moved, each with its reason in the log */
	{
		const struct {
			const char	*id;
			const char	*ext;	/* the name in corrupt/ */
			const char	*why;
		} moved[] = {
			{ badhdr, NULL, "queue file has no valid header" },
			{ shorthdr, NULL, "queue file is shorter than its "
			    "header says" },
			{ noenv, NULL, "envelope missing" },
			{ cutshort, NULL, "envelope is cut short" },
			{ garbage, NULL, "NUL byte in envelope" },
			{ mismatch, NULL, "envelope id does not match its "
			    "file name" },
			{ sizediff, NULL, "message size differs from "
			    "envelope" },
			{ other, NULL, "an envelope update names another "
			    "message" },
			{ legenv, "env", "envelope without message" },
		};
		char want[256];
		size_t i;

		for (i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
			assert_true(exists(path(f, "corrupt",
			    file_name(moved[i].id, moved[i].ext))));
			snprintf(want, sizeof(want), "%s; moving it to "
			    "corrupt/", moved[i].why);
			if (!grep_id(logp, moved[i].id, want))
				fail_msg("log lacks \"%s: %s\"", moved[i].id,
				    want);
		}
	}
	/* nothing in corrupt/ is overwritten */
	text = slurp(path(f, "corrupt", file_name(garbage, NULL)), &len);
	assert_int_equal(len, 5);
	assert_memory_equal(text, "older", 5);
	free(text);
	{
		char p[128];

		snprintf(p, sizeof(p), "%s.1", file_name(garbage, NULL));
		assert_true(exists(path(f, "corrupt", p)));
	}
	assert_int_equal(count_dir(f, "corrupt"), 10);
	/* foreign files are left alone */
	assert_true(exists(path(f, "queue", "README")));
	assert_true(exists(path(f, "queue", "1c2QbT3ZxAbCdEfGhIjK.bak")));
	assert_int_equal(count_dir(f, "queue"), 4);

	/* each decision is in the log, with its id and reason */
	assert_true(grep_file(logp, "removed stale tmp/leftover.env"));
	assert_true(grep_file(logp, stale));
	assert_true(grep_file(logp, "unknown file queue/README left alone"));
	assert_true(grep_file(logp, "unknown file "
	    "queue/1c2QbT3ZxAbCdEfGhIjK.bak left alone"));
	assert_true(grep_id(logp, legmsg, "removed queue/1c2QbT3ZxLegacyMsg01"
	    ".msg (message without envelope, never acknowledged)"));
	assert_false(grep_file(logp, good1));
	assert_false(grep_file(logp, good2));

	/* recovery is idempotent */
	recover_logged(f, logp, 2, 0, 0);
	assert_int_equal(queue_recover(f->q, NULL, NULL, NULL), 0);
	assert_int_equal(count_dir(f, "corrupt"), 10);
}

/* test_recover_odd_files - a FIFO, a directory, a symlink as queue/ID, and
   a FIFO as a legacy ID.env: no hang, no crash, all to corrupt/ */
static void
test_recover_odd_files(void **state)
{
	struct fixture *f = *state;
	char fifo[21], dir[21], link_[21], logp[512];
	static const char legfifo[] = "1c2QbT3ZxLegacyFifo1";

	commit_one_sync(f, 10, 1, fifo);
	unlink(path(f, "queue", file_name(fifo, NULL)));
	assert_int_equal(mkfifo(path(f, "queue", file_name(fifo, NULL)), 0600),
	    0);
	commit_one_sync(f, 10, 2, dir);
	unlink(path(f, "queue", file_name(dir, NULL)));
	assert_int_equal(mkdir(path(f, "queue", file_name(dir, NULL)), 0700),
	    0);
	commit_one_sync(f, 10, 3, link_);
	unlink(path(f, "queue", file_name(link_, NULL)));
	assert_int_equal(symlink("/etc/passwd",
	    path(f, "queue", file_name(link_, NULL))), 0);
	plant_legacy(f, legfifo, 10, 1, 10, NULL, NULL);
	unlink(path(f, "queue", file_name(legfifo, "env")));
	assert_int_equal(mkfifo(path(f, "queue", file_name(legfifo, "env")),
	    0600), 0);

	recover_logged(f, logp, 0, 0, 4);
	assert_int_equal(count_dir(f, "queue"), 0);
	assert_int_equal(count_dir(f, "corrupt"), 5);
	assert_true(grep_id(logp, fifo, "queue file is not a regular file"));
	assert_true(grep_id(logp, dir, "queue file is not a regular file"));
	assert_true(grep_id(logp, link_, "cannot open message"));
	assert_true(grep_id(logp, legfifo, "envelope is not a regular file"));
	/* the symlink itself was moved, not what it points to */
	{
		struct stat st;

		assert_int_equal(lstat(path(f, "corrupt", file_name(link_,
		    NULL)), &st), 0);
		assert_true(S_ISLNK(st.st_mode));
	}
}

struct seen {
	char	ids[16][QUEUE_ID_LEN + 1];
	int	n;
	char	bad[4][QUEUE_ID_LEN + 1];
	char	why[4][64];
	int	nbad;
};

/* seen_good - queue_foreach callback */
static void
seen_good(const struct envelope *e, void *arg)
{
	struct seen *s = arg;

	assert_true(s->n < 16);
	strcpy(s->ids[s->n++], e->id);
}

/* seen_bad - queue_foreach bad-envelope callback */
static void
seen_bad(const char *id, const char *why, void *arg)
{
	struct seen *s = arg;

	assert_true(s->nbad < 4);
	strcpy(s->bad[s->nbad], id);
	snprintf(s->why[s->nbad++], sizeof(s->why[0]), "%s", why);
}

/* test_foreach_order - oldest id first; bad ones reported and skipped;
   a legacy pair not yet converted is not a queue file */
static void
test_foreach_order(void **state)
{
	struct fixture *f = *state;
	char ids[6][QUEUE_ID_LEN + 1];
	static const char version7[] = "postern-envelope 7\nend\n";
	struct envelope e;
	struct seen s;
	int i;

	for (i = 0; i < 6; i++)
		commit_one_sync(f, 10, (unsigned)i, ids[i]);
	replace_tail(f, ids[3], version7, strlen(version7));
	load(f, ids[4], &e);			/* the update is what is seen */
	deliver_first(&e, "seen");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	envelope_free(&e);
	spew(path(f, "queue", "notes.txt"), "x", 1);
	plant_legacy(f, "1c2QbT3ZxLegacyPair1", 10, 1, 10, NULL, NULL);

	memset(&s, 0, sizeof(s));
	assert_int_equal(queue_foreach(f->q, seen_good, seen_bad, &s), 0);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.ids[0], ids[0]);
	assert_string_equal(s.ids[1], ids[1]);
	assert_string_equal(s.ids[2], ids[2]);
	assert_string_equal(s.ids[3], ids[4]);
	assert_string_equal(s.ids[4], ids[5]);
	assert_int_equal(s.nbad, 1);
	assert_string_equal(s.bad[0], ids[3]);
	assert_string_equal(s.why[0], "unsupported envelope version");

	memset(&s, 0, sizeof(s));	/* bad may be NULL */
	assert_int_equal(queue_foreach(f->q, seen_good, NULL, &s), 0);
	assert_int_equal(s.n, 5);
	/* reading changed nothing */
	assert_true(exists(path(f, "queue", "1c2QbT3ZxLegacyPair1.msg")));
	assert_true(exists(path(f, "queue", "1c2QbT3ZxLegacyPair1.env")));
	assert_int_equal(count_dir(f, "queue"), 6 + 1 + 2);
}

/* test_untrusted_ids - ids from outside never build a path */
static void
test_untrusted_ids(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	const char *err = NULL;
	char id[21];
	off_t start;

	assert_int_equal(queue_load_envelope(f->q, "../../../../etc/passw",
	    &e, &err), -1);
	assert_string_equal(err, "invalid queue id");
	assert_int_equal(queue_load_envelope(f->q, "", &e, &err), -1);
	assert_string_equal(err, "invalid queue id");
	errno = 0;
	assert_int_equal(queue_open_message(f->q, "../queue/x", &start), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(queue_load_envelope(f->q, "00000000000000000000",
	    &e, &err), -1);
	assert_string_equal(err, "message missing");
	errno = 0;
	assert_int_equal(queue_open_message(f->q, "00000000000000000000",
	    &start), -1);
	assert_int_equal(errno, ENOENT);
	/* a legacy pair is not readable until recovery converted it */
	plant_legacy(f, "1c2QbT3ZxLegacyPair1", 10, 1, 10, NULL, NULL);
	assert_int_equal(queue_load_envelope(f->q, "1c2QbT3ZxLegacyPair1",
	    &e, &err), -1);
	assert_string_equal(err, "message missing");
	commit_one_sync(f, 1, 1, id);
	assert_int_equal(queue_load_envelope(f->q, id, &e, &err), 0);
	envelope_free(&e);
}

/* test_update_sync - the latest envelope wins, appended after the first;
   the message is untouched; an update alone fsyncs no directory */
static void
test_update_sync(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;
	struct envelope e, back;
	struct qfile before, after;
	char id[QUEUE_ID_LEN + 1];

	commit_one_sync(f, 1000, 1, id);
	qfile_read(f, id, &before);
	load(f, id, &e);
	deliver_first(&e, "Greylisted");
	strcpy(e.dsn, "1c2QbT3ZxAbCdEfGhIjK");
	assert_int_equal(queue_update_sync(f->q, &e), 0);

	load(f, id, &back);
	assert_string_equal(back.id, id);
	assert_int_equal(back.size, 1000);
	assert_int_equal(back.attempts, 1);
	assert_int_equal(back.next_attempt, 1900000000);
	assert_string_equal(back.dsn, "1c2QbT3ZxAbCdEfGhIjK");
	assert_int_equal(back.nrcpts, 2);
	assert_int_equal(back.rcpts[0].status, RCPT_DELIVERED);
	assert_int_equal(back.rcpts[0].code, 250);
	assert_int_equal(back.rcpts[1].status, RCPT_PENDING);
	assert_int_equal(back.rcpts[1].code, 451);
	assert_string_equal(back.rcpts[1].enhanced, "4.7.1");
	assert_string_equal(back.rcpts[1].text, "Greylisted");
	envelope_free(&back);

	/* a second update: the latest wins */
	e.rcpts[1].status = RCPT_FAILED;
	envelope_set_reply(&e.rcpts[1], 550, "5.1.1", "no such user");
	e.attempts++;
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	load(f, id, &back);
	assert_int_equal(back.attempts, 2);
	assert_int_equal(back.rcpts[1].status, RCPT_FAILED);
	assert_string_equal(back.rcpts[1].text, "no such user");
	envelope_free(&back);
	envelope_free(&e);

	/* the same file, mode 0600: header, message and first envelope
	   as they were, two version-2 envelopes after them */
	qfile_read(f, id, &after);
	assert_int_equal(after.envoff, before.envoff);
	assert_true(after.len > before.len);
	assert_memory_equal(after.data, before.data, before.len);
	assert_memory_equal(after.data + before.len, "postern-envelope 2\n",
	    19);
	assert_int_equal(count_in_file(path(f, "queue", file_name(id, NULL)),
	    "postern-envelope 2\n"), 3);
	free(before.data);
	free(after.data);
	{
		struct stat sb;

		assert_int_equal(stat(path(f, "queue", file_name(id, NULL)),
		    &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 1);
	queue_stats(f->q, &st);
	assert_int_equal(st.commits, 1);
	assert_int_equal(st.updates, 2);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.file_fsyncs, 3);
	assert_int_equal(st.dir_fsyncs, 1);	/* the commit's only */
}

/*
 * test_update_appended - an update is the envelope without its prepend,
 * appended byte for byte; load gives the update with the first
 * envelope's prepend
 */
static void
test_update_appended(void **state)
{
	struct fixture *f = *state;
	static const char sig[] = "DKIM-Signature: v=1; d=example.org; "
	    "b=xyz\r\n";
	struct queue_msg *m;
	struct envelope e, back;
	struct qfile before, after;
	char id[QUEUE_ID_LEN + 1], *want;
	size_t wlen;

	assert_non_null(m = queue_msg_new(f->q));
	strcpy(id, queue_msg_id(m));
	assert_int_equal(queue_msg_write(m, "hello\r\n", 7), 0);
	make_envelope(&e, "rcpt@example.net");
	set_prepend(&e, sig);
	assert_int_equal(queue_msg_commit_sync(m, &e), 0);
	envelope_free(&e);
	qfile_read(f, id, &before);

	load(f, id, &e);
	assert_int_equal(e.prepend_len, strlen(sig));
	deliver_first(&e, "later");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	want = update_text(&e, &wlen);
	assert_null(strstr(want, "\nprepend "));

	qfile_read(f, id, &after);
	assert_int_equal(after.len, before.len + wlen);
	assert_memory_equal(after.data, before.data, before.len);
	assert_memory_equal(after.data + before.len, want, wlen);
	/* the first envelope is still there, prepend and all */
	assert_non_null(strstr(before.data + before.envoff, "\nprepend "));

	load(f, id, &back);
	assert_int_equal(back.attempts, 1);
	assert_string_equal(back.rcpts[1].text, "later");
	assert_int_equal(back.prepend_len, strlen(sig));
	assert_memory_equal(back.prepend, sig, strlen(sig));
	envelope_free(&back);
	/* the API leaves a changed prepend out of an update, and the
	   reader ignores one planted in an update: the first's stands */
	set_prepend(&e, "X-Other: no\r\n");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	free(want);
	want = format_env(&e, &wlen);
	append_to(path(f, "queue", file_name(id, NULL)), want, wlen);
	prepend_is(f, id, sig);

	envelope_free(&e);
	free(want);
	free(before.data);
	free(after.data);
}

/* test_update_v1 - a version-1 envelope committed before is read, and
   its first update appends version 2 */
static void
test_update_v1(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	struct qfile qf;
	char id[QUEUE_ID_LEN + 1], v1[512];
	size_t v1len;

	commit_one_sync(f, 10, 1, id);
	snprintf(v1, sizeof(v1), "postern-envelope 1\nid %s\ntime 1\n"
	    "sender a@b\nclient c\nhelo h\nbody 7bit\nsmtputf8 0\nsize 10\n"
	    "rcpt pending r@x\nend\n", id);
	v1len = strlen(v1);
	replace_tail(f, id, v1, v1len);
	load(f, id, &e);
	assert_int_equal(e.attempts, 0);
	assert_null(e.rcpts[0].text);
	deliver_first(&e, "x");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	envelope_free(&e);
	qfile_read(f, id, &qf);
	assert_memory_equal(qf.data + qf.envoff, v1, v1len);
	assert_memory_equal(qf.data + qf.envoff + v1len,
	    "postern-envelope 2\n", 19);
	assert_non_null(strstr(qf.data + qf.envoff + v1len,
	    "\nreply 451 4.7.1 x\n"));
	free(qf.data);
	load(f, id, &e);
	assert_int_equal(e.attempts, 1);
	assert_string_equal(e.sender, "a@b");
	envelope_free(&e);
}

/* test_update_refused - what cannot be written, or has nowhere to go */
static void
test_update_refused(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], *before;
	size_t blen;

	commit_one_sync(f, 10, 1, id);
	before = slurp(path(f, "queue", file_name(id, NULL)), &blen);
	load(f, id, &e);

	/* a value envelope_format refuses: EINVAL, nothing written */
	free(e.rcpts[0].addr);
	e.rcpts[0].addr = strdup("a@b\nrcpt pending eve@x");
	errno = 0;
	assert_int_equal(queue_update_sync(f->q, &e), -1);
	assert_int_equal(errno, EINVAL);
	free(e.rcpts[0].addr);
	e.rcpts[0].addr = strdup("r@x");
	e.rcpts[0].text = strdup("bad\ttext");	/* not via the setter */
	assert_int_equal(queue_update_sync(f->q, &e), -1);
	assert_int_equal(errno, EINVAL);
	envelope_clear_reply(&e.rcpts[0]);
	/* an invalid id never names a file */
	strcpy(e.id, "../../etc/passwd");
	errno = 0;
	assert_int_equal(queue_update_sync(f->q, &e), -1);
	assert_int_equal(errno, EINVAL);
	/* a message that is not there: ENOENT, and nothing is created */
	strcpy(e.id, "00000000000000000000");
	errno = 0;
	assert_int_equal(queue_update_sync(f->q, &e), -1);
	assert_int_equal(errno, ENOENT);
	assert_false(exists(path(f, "queue", file_name(e.id, NULL))));
	assert_int_equal(count_dir(f, "tmp"), 0);
	/* nor next to a legacy pair recovery has not converted yet */
	plant_legacy(f, "1c2QbT3ZxLegacyPair1", 10, 1, 10, NULL, NULL);
	strcpy(e.id, "1c2QbT3ZxLegacyPair1");
	errno = 0;
	assert_int_equal(queue_update_sync(f->q, &e), -1);
	assert_int_equal(errno, ENOENT);
	assert_false(exists(path(f, "queue", file_name(e.id, NULL))));
	envelope_free(&e);

	file_is(path(f, "queue", file_name(id, NULL)), before, blen);
	free(before);
	assert_int_equal(count_dir(f, "queue"), 1 + 2);
	queue_stats(f->q, &st);
	assert_int_equal(st.updates, 0);
	assert_int_equal(st.failures, 2);	/* ENOENT; EINVAL never ran */
	assert_int_equal(st.file_fsyncs, 1);	/* the commit's */
	assert_int_equal(st.dir_fsyncs, 1);	/* the commit's */
}

/*
 * update_fails_under - queue_update_sync of e (its id's file holds
 * before, blen bytes) with files limited to limit bytes: it must fail
 * with EFBIG, leave the file as it was and log the failure with its id
 */
static void
update_fails_under(struct fixture *f, const struct envelope *e,
    rlim_t limit, const char *before, size_t blen)
{
	struct fsize_limit lim;
	char want[128], *log;
	int r, fds[2];

	capture_pipe(fds);	/* a log file would be held to the limit */
	fsize_limit_set(&lim, limit);
	r = queue_update_sync(f->q, e);
	fsize_limit_end(&lim);
	log = capture_pipe_end(fds);
	assert_int_equal(r, -1);
	assert_int_equal(errno, EFBIG);
	file_is(path(f, "queue", file_name(e->id, NULL)), before, blen);
	snprintf(want, sizeof(want), "queue: %s: envelope update failed: "
	    "File too large", e->id);
	assert_int_equal(count_str(log, want), 1);	/* logged once */
	free(log);
}

/*
 * test_update_write_fails - the update cannot be appended: whether none
 * of it or part of it was written, the file is cut back to what it was,
 * the old envelope stands, the failure is logged, and a later update
 * works
 */
static void
test_update_write_fails(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], *before;
	size_t blen;

	commit_one_sync(f, 10, 1, id);
	before = slurp(path(f, "queue", file_name(id, NULL)), &blen);
	load(f, id, &e);
	deliver_first(&e, "a reply long enough to pass the limit");
	/* the file is already past the limit: nothing written */
	update_fails_under(f, &e, 60, before, blen);
	/* 20 bytes of the update fit: written, then cut off again */
	update_fails_under(f, &e, (rlim_t)blen + 20, before, blen);
	free(before);

	/* the old envelope stands, and the next update goes through */
	envelope_free(&e);
	load(f, id, &e);
	assert_int_equal(e.attempts, 0);
	deliver_first(&e, "after the failure");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	envelope_free(&e);
	load(f, id, &e);
	assert_string_equal(e.rcpts[1].text, "after the failure");
	envelope_free(&e);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 1);
	queue_stats(f->q, &st);
	assert_int_equal(st.updates, 1);
	assert_int_equal(st.failures, 2);
	assert_int_equal(st.file_fsyncs, 2);	/* the commit, the update */
}

/* test_remove_sync - the file is gone; a second remove is ENOENT; a damaged
   file goes all the same; a legacy pair is recovery's, not ours */
static void
test_remove_sync(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;
	char id[QUEUE_ID_LEN + 1], keep[QUEUE_ID_LEN + 1];
	char damaged[QUEUE_ID_LEN + 1];
	static const char legacy[] = "1c2QbT3ZxLegacyPair1";

	commit_one_sync(f, 10, 1, id);
	commit_one_sync(f, 10, 2, keep);
	assert_int_equal(queue_remove_sync(f->q, id), 0);
	assert_false(exists(path(f, "queue", file_name(id, NULL))));
	assert_true(exists(path(f, "queue", file_name(keep, NULL))));
	errno = 0;
	assert_int_equal(queue_remove_sync(f->q, id), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_int_equal(queue_remove_sync(f->q, "../queue/x"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(queue_remove_sync(f->q, ""), -1);
	assert_int_equal(errno, EINVAL);

	/* a file whose envelope is damaged: removed all the same (the
	   removal never reads it) */
	commit_one_sync(f, 10, 3, damaged);
	replace_tail(f, damaged, "garbage", 7);
	assert_int_equal(queue_remove_sync(f->q, damaged), 0);
	assert_false(exists(path(f, "queue", file_name(damaged, NULL))));

	/* a pair from before version 3: ENOENT, untouched */
	plant_legacy(f, legacy, 10, 1, 10, NULL, NULL);
	errno = 0;
	assert_int_equal(queue_remove_sync(f->q, legacy), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(exists(path(f, "queue", file_name(legacy, "msg"))));
	assert_true(exists(path(f, "queue", file_name(legacy, "env"))));

	assert_int_equal(count_dir(f, "queue"), 1 + 2);
	assert_int_equal(count_dir(f, "tmp"), 0);
	queue_stats(f->q, &st);
	assert_int_equal(st.commits, 3);
	assert_int_equal(st.removes, 2);
	assert_int_equal(st.failures, 2);	/* the two ENOENTs */
	assert_int_equal(st.file_fsyncs, 3);	/* the commits' */
	assert_int_equal(st.dir_fsyncs, 3 + 2);	/* commits and removals */
}

/* An operation of the mixed batch and the error its callback must get. */
enum mixed_kind { MIXED_COMMIT, MIXED_UPDATE, MIXED_REMOVE };
struct mixed_op {
	enum mixed_kind	 kind;
	const char	*id;		/* update, remove */
	const char	*text;		/* update: reply text to record */
	int		 want;
};

static struct mixed_op mixed[ASYNC_MAX];
static int nmixed, mixed_issued_called;
static struct fixture *mixed_f;

/* mixed_add - append one operation to the plan */
static void
mixed_add(enum mixed_kind kind, const char *id, const char *text, int want)
{
	assert_true(nmixed < ASYNC_MAX);
	mixed[nmixed].kind = kind;
	mixed[nmixed].id = id;
	mixed[nmixed].text = text;
	mixed[nmixed].want = want;
	nmixed++;
}

/* mixed_issue - on the loop: start every planned operation at once */
static void
mixed_issue(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = mixed_f;
	struct queue_msg *m;
	struct envelope e;
	char line[64];
	int i;

	(void)fd;
	(void)what;
	(void)arg;
	for (i = 0; i < nmixed; i++) {
		switch (mixed[i].kind) {
		case MIXED_COMMIT:
			assert_non_null(m = queue_msg_new(f->q));
			snprintf(line, sizeof(line), "message %d\r\n", i);
			assert_int_equal(queue_msg_write(m, line,
			    strlen(line)), 0);
			make_envelope(&e, "rcpt@example.net");
			assert_int_equal(queue_msg_commit(m, &e, async_cb,
			    (uint64_t)i), 0);
			envelope_free(&e);
			break;
		case MIXED_UPDATE:
			/* built from scratch: the id may be gone already */
			make_envelope(&e, "rcpt@example.net");
			strcpy(e.id, mixed[i].id);
			e.size = 10;
			deliver_first(&e, mixed[i].text);
			assert_int_equal(queue_update(f->q, &e, async_cb,
			    (uint64_t)i), 0);
			envelope_free(&e);	/* copied */
			break;
		case MIXED_REMOVE:
			assert_int_equal(queue_remove(f->q, mixed[i].id,
			    async_cb, (uint64_t)i), 0);
			/* unlinked at once, before any callback */
			assert_false(exists(path(f, "queue",
			    file_name(mixed[i].id, NULL))));
			break;
		}
	}
	/* no callback runs from inside the calls */
	mixed_issued_called = results_called;
}

/*
 * test_async_mixed - commits, updates and removals in flight together,
 * several on the same ids: each calls back once with its own error, the
 * operations on one id keep their order, and they share directory fsyncs
 */
static void
test_async_mixed(void **state)
{
	struct fixture *f = *state;
	enum { NPRE = 60, NNEW = 100 };
	static char pre[NPRE][QUEUE_ID_LEN + 1];
	static const char *absent = "00000000000000000000";
	struct queue_stats st0, st;
	struct event_base *base;
	struct timeval now = { 0, 0 };
	struct envelope e;
	int i, nfsync, left;

	for (i = 0; i < NPRE; i++)
		commit_one_sync(f, 10, (unsigned)i, pre[i]);
	queue_stats(f->q, &st0);

	nmixed = 0;
	for (i = 0; i < NNEW / 2; i++)
		mixed_add(MIXED_COMMIT, NULL, NULL, 0);
	for (i = 0; i < 20; i++)
		mixed_add(MIXED_UPDATE, pre[i], "deferred once", 0);
	for (i = 20; i < 40; i++)
		mixed_add(MIXED_REMOVE, pre[i], NULL, 0);
	for (i = NNEW / 2; i < NNEW; i++)
		mixed_add(MIXED_COMMIT, NULL, NULL, 0);
	for (i = 40; i < 45; i++) {		/* the later update wins */
		mixed_add(MIXED_UPDATE, pre[i], "first", 0);
		mixed_add(MIXED_UPDATE, pre[i], "second", 0);
	}
	for (i = 45; i < 50; i++) {		/* no resurrection */
		mixed_add(MIXED_REMOVE, pre[i], NULL, 0);
		mixed_add(MIXED_UPDATE, pre[i], "too late", ENOENT);
	}
	for (i = 50; i < 55; i++) {
		mixed_add(MIXED_UPDATE, pre[i], "then removed", 0);
		mixed_add(MIXED_REMOVE, pre[i], NULL, 0);
	}
	mixed_add(MIXED_REMOVE, pre[55], NULL, 0);
	mixed_add(MIXED_REMOVE, pre[55], NULL, ENOENT);
	mixed_add(MIXED_REMOVE, absent, NULL, ENOENT);
	mixed_add(MIXED_UPDATE, absent, "nobody", ENOENT);
	/* pre[56..59] are left alone */

	base = start_async(f, nmixed);
	mixed_issued_called = -1;
	mixed_f = f;
	assert_int_equal(event_base_once(base, -1, EV_TIMEOUT, mixed_issue,
	    NULL, &now), 0);
	run_loop(base);
	assert_int_equal(mixed_issued_called, 0);
	for (i = 0; i < nmixed; i++) {
		if (results[i].called != 1 || results[i].error != mixed[i].want)
			fail_msg("op %d (kind %d): called %d, error %d, want %d",
			    i, mixed[i].kind, results[i].called,
			    results[i].error, mixed[i].want);
		if (mixed[i].kind != MIXED_COMMIT)
			assert_string_equal(results[i].id, mixed[i].id);
		else
			assert_true(exists(path(f, "queue",
			    file_name(results[i].id, NULL))));
	}
	queue_stats(f->q, &st);
	stop_async(f, base);

	assert_int_equal(st.commits - st0.commits, NNEW);
	assert_int_equal(st.updates - st0.updates, 20 + 10 + 5);
	assert_int_equal(st.removes - st0.removes, 20 + 5 + 5 + 1);
	assert_int_equal(st.failures - st0.failures, 5 + 3);
	assert_int_equal(st.file_fsyncs - st0.file_fsyncs, NNEW + 35);
	nfsync = (int)(st.dir_fsyncs - st0.dir_fsyncs);
	print_message("# mixed %d operations: %d dir fsyncs in %llu batches, "
	    "largest batch %llu\n", nmixed, nfsync,
	    (unsigned long long)st.batches, (unsigned long long)st.max_batch);
	assert_true(nfsync <= (int)st.batches);
	assert_true(nfsync < nmixed / 4);
	assert_true(st.max_batch > 1);

	/* what is on disk afterwards */
	{
		char *err = NULL;

		assert_non_null(f->q = queue_open(f->dir, 0, &err));
	}
	left = NPRE - 20 - 5 - 5 - 1 + NNEW;
	assert_int_equal(count_dir(f, "queue"), left);
	assert_int_equal(count_dir(f, "tmp"), 0);
	for (i = 0; i < NPRE; i++) {
		int gone = (i >= 20 && i < 40) || (i >= 45 && i < 56);

		assert_int_equal(exists(path(f, "queue",
		    file_name(pre[i], NULL))), !gone);
		if (gone)
			continue;
		load(f, pre[i], &e);
		if (i < 20)
			assert_string_equal(e.rcpts[1].text, "deferred once");
		else if (i < 45)
			assert_string_equal(e.rcpts[1].text, "second");
		else {
			assert_int_equal(e.nrcpts, 1);	/* untouched */
			assert_null(e.rcpts[0].text);
		}
		envelope_free(&e);
	}
	assert_false(exists(path(f, "queue", file_name(absent, NULL))));
}

/* test_close_runs_op_callbacks - updates and removals queued, the loop
   never runs: queue_close does them and runs every callback */
static void
test_close_runs_op_callbacks(void **state)
{
	struct fixture *f = *state;
	struct event_base *base;
	struct queue_msg *m;
	struct envelope e;
	char id[6][QUEUE_ID_LEN + 1], newid[QUEUE_ID_LEN + 1];
	int i;

	for (i = 0; i < 6; i++)
		commit_one_sync(f, 10, (unsigned)i, id[i]);
	base = start_async(f, 8);
	results_base = NULL;	/* the loop never runs */
	for (i = 0; i < 3; i++) {
		load(f, id[i], &e);
		deliver_first(&e, "at close");
		assert_int_equal(queue_update(f->q, &e, async_cb,
		    (uint64_t)i), 0);
		envelope_free(&e);
	}
	for (i = 3; i < 6; i++)
		assert_int_equal(queue_remove(f->q, id[i], async_cb,
		    (uint64_t)i), 0);
	assert_int_equal(queue_remove(f->q, id[3], async_cb, 6), 0);
	assert_non_null(m = queue_msg_new(f->q));
	strcpy(newid, queue_msg_id(m));
	assert_int_equal(queue_msg_write(m, "x\r\n", 3), 0);
	make_envelope(&e, "rcpt@example.net");
	assert_int_equal(queue_msg_commit(m, &e, async_cb, 7), 0);
	envelope_free(&e);

	stop_async(f, base);	/* the loop never ran */
	assert_int_equal(results_called, 8);
	for (i = 0; i < 8; i++) {
		assert_int_equal(results[i].called, 1);
		assert_int_equal(results[i].error, i == 6 ? ENOENT : 0);
	}
	{
		char *err = NULL;

		assert_non_null(f->q = queue_open(f->dir, 0, &err));
	}
	for (i = 0; i < 3; i++) {
		load(f, id[i], &e);
		assert_string_equal(e.rcpts[1].text, "at close");
		envelope_free(&e);
	}
	for (i = 3; i < 6; i++)
		assert_false(exists(path(f, "queue", file_name(id[i], NULL))));
	assert_true(exists(path(f, "queue", file_name(newid, NULL))));
	assert_int_equal(count_dir(f, "queue"), 4);
	assert_int_equal(count_dir(f, "tmp"), 0);
}

/* test_async_ops_refused - without queue_start, or with what cannot be
   written: -1 at once, and no callback ever */
static void
test_async_ops_refused(void **state)
{
	struct fixture *f = *state;
	struct event_base *base;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], *before;
	size_t blen;

	commit_one_sync(f, 10, 1, id);
	before = slurp(path(f, "queue", file_name(id, NULL)), &blen);
	load(f, id, &e);
	results_reset(0, NULL);
	errno = 0;
	assert_int_equal(queue_update(f->q, &e, async_cb, 0), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(queue_remove(f->q, id, async_cb, 0), -1);
	assert_int_equal(errno, EINVAL);
	/* refused before anything was appended or unlinked */
	assert_true(exists(path(f, "queue", file_name(id, NULL))));

	assert_non_null(base = event_base_new());
	assert_int_equal(queue_start(f->q, base), 0);
	e.next_attempt = -5;
	errno = 0;
	assert_int_equal(queue_update(f->q, &e, async_cb, 0), -1);
	assert_int_equal(errno, EINVAL);
	e.next_attempt = 0;
	strcpy(e.id, "short");
	assert_int_equal(queue_update(f->q, &e, async_cb, 0), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(queue_remove(f->q, "not/an/id/at/all/xxx", async_cb,
	    0), -1);
	assert_int_equal(errno, EINVAL);
	envelope_free(&e);
	stop_async(f, base);
	assert_int_equal(results_called, 0);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 1);
	file_is(path(f, "queue", file_name(id, NULL)), before, blen);
	free(before);
}

/*
 * test_recover_mid_update - a crash in the middle of appending an update
 * leaves part of it at the end of the file: load ignores it (the envelope
 * before it stands), recovery cuts it off and keeps the message, and the
 * message can be updated normally afterwards. A crash mid-commit leaves
 * tmp/ID, which recovery deletes.
 */
static void
test_recover_mid_update(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], other[QUEUE_ID_LEN + 1], *before, *after;
	char zeros[QUEUE_ID_LEN + 1], *obefore, *zbefore, logp[512], *text;
	size_t blen, alen, oblen, zblen, tlen;

	commit_one_sync(f, 10, 1, id);
	commit_one_sync(f, 20, 2, other);
	before = slurp(path(f, "queue", file_name(id, NULL)), &blen);
	/* id: half an update, the first envelope the only whole one */
	load(f, id, &e);
	deliver_first(&e, "cut short");
	plant_update(f, &e, update_len(&e) / 2);
	envelope_free(&e);
	/* other: a whole update, then all but the last byte of another */
	load(f, other, &e);
	deliver_first(&e, "whole");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	obefore = slurp(path(f, "queue", file_name(other, NULL)), &oblen);
	deliver_first(&e, "all but its last byte");
	plant_update(f, &e, update_len(&e) - 1);
	envelope_free(&e);
	/* zeros: a crash after the file grew, before its data was written */
	commit_one_sync(f, 30, 3, zeros);
	zbefore = slurp(path(f, "queue", file_name(zeros, NULL)), &zblen);
	{
		char z[600];

		memset(z, 0, sizeof(z));
		z[100] = '\n';
		append_to(path(f, "queue", file_name(zeros, NULL)), z,
		    sizeof(z));
	}
	/* and a commit a crash cut short */
	spew(path(f, "tmp", "1c2QbT3ZxStaleStale0"), "postern-queue 3 "
	    "00000000000000000000\nhalf", 41);

	/* load ignores the torn tails */
	load(f, id, &e);
	assert_int_equal(e.attempts, 0);
	assert_int_equal(e.rcpts[0].status, RCPT_PENDING);
	envelope_free(&e);
	load(f, other, &e);
	assert_int_equal(e.attempts, 1);
	assert_string_equal(e.rcpts[1].text, "whole");
	envelope_free(&e);

	load(f, zeros, &e);
	assert_int_equal(e.size, 30);
	envelope_free(&e);

	recover_logged(f, logp, 3, 1, 0);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 3);
	assert_int_equal(count_dir(f, "corrupt"), 0);
	/* cut back to the whole envelopes, byte for byte */
	file_is(path(f, "queue", file_name(id, NULL)), before, blen);
	file_is(path(f, "queue", file_name(other, NULL)), obefore, oblen);
	free(obefore);
	file_is(path(f, "queue", file_name(zeros, NULL)), zbefore, zblen);
	free(zbefore);
	assert_true(grep_id(logp, id, "cut off an envelope update a crash cut "
	    "short"));
	assert_true(grep_id(logp, other, "cut off an envelope update a crash "
	    "cut short"));
	assert_true(grep_id(logp, zeros, "cut off an envelope update a crash "
	    "cut short"));
	assert_true(grep_file(logp, "removed stale tmp/1c2QbT3ZxStaleStale0"));

	/* a second recovery finds nothing to cut */
	recover_logged(f, logp, 3, 0, 0);
	assert_false(grep_file(logp, "cut off"));

	/* and the message can be updated normally afterwards */
	load(f, id, &e);
	deliver_first(&e, "after recovery");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	text = update_text(&e, &tlen);
	envelope_free(&e);
	after = slurp(path(f, "queue", file_name(id, NULL)), &alen);
	assert_int_equal(alen, blen + tlen);
	assert_memory_equal(after + blen, text, tlen);
	free(after);
	free(text);
	free(before);
	load(f, id, &e);
	assert_string_equal(e.rcpts[1].text, "after recovery");
	envelope_free(&e);
	assert_int_equal(count_dir(f, "tmp"), 0);
}

/*
 * test_recover_bad_update - an appended update that is whole (it has its
 * end line) but does not parse is damage, not a crash: the whole file
 * goes to corrupt/ unchanged, with the reason logged
 */
static void
test_recover_bad_update(void **state)
{
	struct fixture *f = *state;
	static const char bad[] = "postern-envelope 2\nbogus record\nend\n";
	char id[QUEUE_ID_LEN + 1], good[QUEUE_ID_LEN + 1], logp[512];
	char *before;
	struct envelope e;
	const char *err = NULL;
	size_t blen;

	commit_one_sync(f, 10, 1, id);
	commit_one_sync(f, 10, 2, good);
	load(f, id, &e);
	deliver_first(&e, "fine");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	envelope_free(&e);
	append_to(path(f, "queue", file_name(id, NULL)), bad, strlen(bad));
	before = slurp(path(f, "queue", file_name(id, NULL)), &blen);

	assert_int_equal(queue_load_envelope(f->q, id, &e, &err), -1);
	assert_string_equal(err, "unknown record");

	recover_logged(f, logp, 1, 0, 1);
	assert_false(exists(path(f, "queue", file_name(id, NULL))));
	file_is(path(f, "corrupt", file_name(id, NULL)), before, blen);
	free(before);
	assert_true(grep_id(logp, id, "unknown record; moving it to "
	    "corrupt/"));
	load(f, good, &e);
	envelope_free(&e);

	/* an update of the same id that names another size is damage too */
	load(f, good, &e);
	e.size = 11;
	plant_update(f, &e, (size_t)-1);
	envelope_free(&e);
	recover_logged(f, logp, 0, 0, 1);
	assert_true(grep_id(logp, good, "an envelope update names another "
	    "message"));
	assert_int_equal(count_dir(f, "queue"), 0);
	assert_int_equal(count_dir(f, "corrupt"), 2);
}

/* check_converted - queue/ID is the legacy message of len pattern bytes
   (seed) with envelope want, and its pair is gone */
static void
check_converted(struct fixture *f, const char *id, size_t len,
    unsigned seed, const struct envelope *want)
{
	struct envelope back;
	struct qfile qf;
	char *data = malloc(len + 1), *got, *text;
	size_t tlen;

	pattern(data, len, seed);
	qfile_read(f, id, &qf);
	assert_int_equal(qf.envoff, HDR_LEN + len);
	assert_memory_equal(qf.data + HDR_LEN, data, len);
	text = format_env(want, &tlen);
	assert_int_equal(qf.len, qf.envoff + tlen);
	assert_memory_equal(qf.data + qf.envoff, text, tlen);
	free(text);
	free(qf.data);
	got = read_message(f, id, len);
	assert_memory_equal(got, data, len);
	free(got);
	free(data);
	load(f, id, &back);
	assert_string_equal(back.id, id);
	assert_int_equal(back.size, len);
	assert_int_equal(back.time, want->time);
	assert_string_equal(back.rcpts[0].addr, want->rcpts[0].addr);
	assert_int_equal(back.prepend_len, want->prepend_len);
	if (want->prepend_len > 0)
		assert_memory_equal(back.prepend, want->prepend,
		    want->prepend_len);
	envelope_free(&back);
	assert_false(exists(path(f, "queue", file_name(id, "msg"))));
	assert_false(exists(path(f, "queue", file_name(id, "env"))));
}

/*
 * test_recover_legacy - a queue from before version 3 (ID.msg + ID.env):
 * good pairs are converted into queue/ID with the message bytes and the
 * envelope intact, and the pair is gone; a pair whose sizes differ or
 * whose envelope is damaged goes to corrupt/, both halves
 */
static void
test_recover_legacy(void **state)
{
	struct fixture *f = *state;
	static const char conv1[] = "1c2QbT3ZxLegacyConv1";
	static const char conv2[] = "1c2QbT3ZxLegacyConv2";
	static const char empty[] = "1c2QbT3ZxLegacyEmpty";
	static const char sizebad[] = "1c2QbT3ZxLegacySize1";
	static const char envbad[] = "1c2QbT3ZxLegacyBadE1";
	static const char sig[] = "DKIM-Signature: v=1; d=example.org; "
	    "b=old\r\n";
	struct envelope e1, e2, e3;
	char logp[512];

	plant_legacy(f, conv1, 100 * 1024 + 3, 1, 100 * 1024 + 3, sig, &e1);
	plant_legacy(f, conv2, 10, 2, 10, NULL, &e2);
	plant_legacy(f, empty, 0, 3, 0, NULL, &e3);
	plant_legacy(f, sizebad, 10, 4, 11, NULL, NULL);
	plant_legacy(f, envbad, 10, 5, 10, NULL, NULL);
	{			/* envbad's envelope without its last 2 bytes */
		const char *p = path(f, "queue", file_name(envbad, "env"));
		size_t len;
		char *text = slurp(p, &len);

		spew(p, text, len - 2);
		free(text);
	}

	recover_logged(f, logp, 3, 0, 2);
	check_converted(f, conv1, 100 * 1024 + 3, 1, &e1);
	check_converted(f, conv2, 10, 2, &e2);
	check_converted(f, empty, 0, 3, &e3);
	envelope_free(&e1);
	envelope_free(&e2);
	envelope_free(&e3);
	assert_true(grep_id(logp, conv1, "converted to one queue file"));
	assert_true(grep_id(logp, conv2, "converted to one queue file"));
	assert_true(grep_id(logp, sizebad, "message size differs from "
	    "envelope; moving it to corrupt/"));
	assert_true(grep_id(logp, envbad, "truncated line"));
	assert_true(exists(path(f, "corrupt", file_name(sizebad, "msg"))));
	assert_true(exists(path(f, "corrupt", file_name(sizebad, "env"))));
	assert_true(exists(path(f, "corrupt", file_name(envbad, "msg"))));
	assert_true(exists(path(f, "corrupt", file_name(envbad, "env"))));
	assert_int_equal(count_dir(f, "queue"), 3);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "corrupt"), 4);

	/* the next start finds version-3 files only */
	recover_logged(f, logp, 3, 0, 0);
	assert_false(grep_file(logp, "converted"));
	/* and a converted message is updated like any other */
	load(f, conv1, &e1);
	deliver_first(&e1, "converted, then updated");
	assert_int_equal(queue_update_sync(f->q, &e1), 0);
	envelope_free(&e1);
	load(f, conv1, &e1);
	assert_string_equal(e1.rcpts[1].text, "converted, then updated");
	assert_int_equal(e1.prepend_len, strlen(sig));
	envelope_free(&e1);
}

/*
 * test_recover_legacy_cut_short - a conversion a crash cut short after
 * its rename leaves queue/ID beside the old pair (or half of it): the
 * pair is unlinked, queue/ID is kept as it is
 */
static void
test_recover_legacy_cut_short(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_LEN + 1], half[QUEUE_ID_LEN + 1], logp[512];
	char *before;
	size_t blen;

	commit_one_sync(f, 10, 1, id);
	commit_one_sync(f, 20, 2, half);
	before = slurp(path(f, "queue", file_name(id, NULL)), &blen);
	/* the pair it was converted from; the pair's message differs, so
	   a test can tell which one survived */
	plant_legacy(f, id, 10, 7, 10, NULL, NULL);
	/* only the message of the pair is left (its envelope was
	   unlinked first) */
	plant_legacy(f, half, 20, 8, 20, NULL, NULL);
	assert_int_equal(unlink(path(f, "queue", file_name(half, "env"))), 0);

	/* the pair's unlinks are not removals: the message stays */
	recover_logged(f, logp, 2, 0, 0);
	assert_false(exists(path(f, "queue", file_name(id, "msg"))));
	assert_false(exists(path(f, "queue", file_name(id, "env"))));
	assert_false(exists(path(f, "queue", file_name(half, "msg"))));
	assert_int_equal(count_dir(f, "queue"), 2);
	assert_int_equal(count_dir(f, "corrupt"), 0);
	file_is(path(f, "queue", file_name(id, NULL)), before, blen);
	free(before);
	assert_true(grep_file(logp, "converted"));
	{
		char want[128];

		snprintf(want, sizeof(want), "removed queue/%s (converted)",
		    file_name(id, "env"));
		assert_true(grep_id(logp, id, want));
		snprintf(want, sizeof(want), "removed queue/%s (converted)",
		    file_name(half, "msg"));
		assert_true(grep_id(logp, half, want));
	}
	assert_false(grep_file(logp, "converted to one queue file"));
}

/*
 * test_remove_unlinks_at_once - queue_remove unlinks queue/ID before it
 * returns, long before its callback; the committer then fsyncs queue/
 * (no file fsync)
 */
static void
test_remove_unlinks_at_once(void **state)
{
	struct fixture *f = *state;
	struct event_base *base;
	struct queue_stats st0, st;
	char id[QUEUE_ID_LEN + 1], keep[QUEUE_ID_LEN + 1];

	commit_one_sync(f, 10, 1, id);
	commit_one_sync(f, 10, 2, keep);
	queue_stats(f->q, &st0);
	base = start_async(f, 2);
	assert_int_equal(queue_remove(f->q, id, async_cb, 0), 0);
	assert_false(exists(path(f, "queue", file_name(id, NULL))));
	assert_int_equal(results_called, 0);
	/* a second removal of it fails at once, reported as ENOENT */
	assert_int_equal(queue_remove(f->q, id, async_cb, 1), 0);
	assert_int_equal(results_called, 0);
	run_loop(base);
	assert_int_equal(results[0].error, 0);
	assert_string_equal(results[0].id, id);
	assert_int_equal(results[1].error, ENOENT);
	queue_stats(f->q, &st);
	stop_async(f, base);
	assert_int_equal(st.removes - st0.removes, 1);
	assert_int_equal(st.failures - st0.failures, 1);
	assert_int_equal(st.file_fsyncs - st0.file_fsyncs, 0);
	assert_true(st.dir_fsyncs - st0.dir_fsyncs >= 1);
	assert_true(exists(path(f, "queue", file_name(keep, NULL))));
	assert_int_equal(count_dir(f, "queue"), 1);
}

/*
 * test_update_async - queue_update appends before it returns; the
 * committer fsyncs the file only (an update alone needs no directory
 * fsync); an update of a removed or unknown id gets ENOENT and creates
 * nothing
 */
static void
test_update_async(void **state)
{
	struct fixture *f = *state;
	struct event_base *base;
	struct queue_stats st0, st;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], gone[QUEUE_ID_LEN + 1], *text;
	size_t size0, tlen;

	commit_one_sync(f, 10, 1, id);
	commit_one_sync(f, 10, 2, gone);
	assert_int_equal(queue_remove_sync(f->q, gone), 0);
	size0 = file_size(path(f, "queue", file_name(id, NULL)));
	queue_stats(f->q, &st0);

	/* alone in its batch: one file fsync, no directory fsync */
	base = start_async(f, 1);
	load(f, id, &e);
	deliver_first(&e, "appended at once");
	assert_int_equal(queue_update(f->q, &e, async_cb, 0), 0);
	text = update_text(&e, &tlen);
	assert_int_equal(file_size(path(f, "queue", file_name(id, NULL))),
	    size0 + tlen);
	assert_int_equal(results_called, 0);
	run_loop(base);
	assert_int_equal(results[0].error, 0);
	queue_stats(f->q, &st);
	assert_int_equal(st.updates - st0.updates, 1);
	assert_int_equal(st.file_fsyncs - st0.file_fsyncs, 1);
	assert_int_equal(st.dir_fsyncs - st0.dir_fsyncs, 0);
	assert_int_equal(st.batches - st0.batches, 1);
	free(text);

	/* the removed one, and one that never was: ENOENT, nothing made */
	results_reset(2, base);
	strcpy(e.id, gone);
	assert_int_equal(queue_update(f->q, &e, async_cb, 0), 0);
	strcpy(e.id, "00000000000000000000");
	assert_int_equal(queue_update(f->q, &e, async_cb, 1), 0);
	assert_false(exists(path(f, "queue", file_name(gone, NULL))));
	run_loop(base);
	assert_int_equal(results[0].error, ENOENT);
	assert_string_equal(results[0].id, gone);
	assert_int_equal(results[1].error, ENOENT);
	envelope_free(&e);
	queue_stats(f->q, &st0);
	stop_async(f, base);
	assert_int_equal(st0.failures - st.failures, 2);
	assert_int_equal(st0.file_fsyncs - st.file_fsyncs, 0);
	assert_int_equal(st0.dir_fsyncs - st.dir_fsyncs, 0);
	assert_false(exists(path(f, "queue", file_name(gone, NULL))));
	assert_false(exists(path(f, "queue", "00000000000000000000")));
	assert_int_equal(count_dir(f, "queue"), 1);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "corrupt"), 0);
}

/*
 * test_update_then_remove - an update, then at once a removal of the same
 * id: the update was appended and then the message went; its callback
 * must say 0, as the order of operations promises (queue.h: "an update
 * after a removal gets ENOENT", not one before it).
 */
static void
test_update_then_remove(void **state)
{
	struct fixture *f = *state;
	enum { N = 50 };
	static char ids[N][QUEUE_ID_LEN + 1];
	struct event_base *base;
	struct envelope e;
	int i;

	for (i = 0; i < N; i++)
		commit_one_sync(f, 10, (unsigned)i, ids[i]);
	base = start_async(f, 2 * N);
	for (i = 0; i < N; i++) {
		load(f, ids[i], &e);
		deliver_first(&e, "just before the end");
		assert_int_equal(queue_update(f->q, &e, async_cb,
		    (uint64_t)(2 * i)), 0);
		envelope_free(&e);
		assert_int_equal(queue_remove(f->q, ids[i], async_cb,
		    (uint64_t)(2 * i + 1)), 0);
	}
	run_loop(base);
	for (i = 0; i < 2 * N; i++)
		if (results[i].error != 0)
			fail_msg("%s %s: error %d", i % 2 ? "remove" :
			    "update", ids[i / 2], results[i].error);
	stop_async(f, base);
	assert_int_equal(count_dir(f, "queue"), 0);
}


/* scan_one - queue_scan callback: record the id and due time */
struct scanned {
	char	 ids[4][QUEUE_ID_LEN + 1];
	time_t	 due[4];
	int	 n;
};

static void
scan_one(const char *id, time_t due, void *arg)
{
	struct scanned *sc = arg;

	assert_true(sc->n < 4);
	strcpy(sc->ids[sc->n], id);
	sc->due[sc->n++] = due;
}

/*
 * test_scan_due - queue_scan lists every queue file, oldest id first,
 * with the due time an update set (its next attempt) or, never deferred,
 * when it was written; it ignores tmp/, legacy halves and other names
 */
static void
test_scan_due(void **state)
{
	struct fixture *f = *state;
	char ids[3][QUEUE_ID_LEN + 1];
	struct scanned sc;
	struct envelope e;
	time_t now = time(NULL), later = now + 3600;
	int i;

	for (i = 0; i < 3; i++)
		commit_one_sync(f, 100, (unsigned)i, ids[i]);
	load(f, ids[1], &e);
	e.attempts = 1;
	e.next_attempt = later;
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	envelope_free(&e);
	spew(path(f, "queue", "not-a-queue-file"), "x", 1);
	spew(path(f, "queue", "0000000000000000000Z.msg"), "x", 1);
	spew(path(f, "tmp", "0000000000000000000Y"), "x", 1);

	memset(&sc, 0, sizeof(sc));
	assert_int_equal(queue_scan(f->q, scan_one, &sc), 0);
	assert_int_equal(sc.n, 3);
	for (i = 0; i < 3; i++)
		assert_string_equal(sc.ids[i], ids[i]);
	assert_true(sc.due[0] >= now - 1 && sc.due[0] <= now + 1);
	assert_int_equal(sc.due[1], later);
	assert_true(sc.due[2] >= now - 1 && sc.due[2] <= now + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_layout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_id_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_layout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_commit_bad_envelope,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_commit_step_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_async_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_async_group_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_finishes_pending,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_odd_files, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_foreach_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_untrusted_ids, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scan_due, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_update_sync, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_update_appended, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_update_v1, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_update_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_update_write_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_remove_sync, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_async_mixed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_runs_op_callbacks,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_ops_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover_mid_update, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover_bad_update, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover_legacy, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recover_legacy_cut_short,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_unlinks_at_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_async, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_update_then_remove, setup,
		    teardown),
	};

	/* the committer calls event_active() from its own thread */
	if (evthread_use_pthreads() == -1) {
		fprintf(stderr, "evthread_use_pthreads failed\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
