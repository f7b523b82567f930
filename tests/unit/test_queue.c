/*
 * test_queue - the on-disk queue in a fresh mkdtemp directory per test:
 * ids, streaming writes, sync and async (group) commit on a real
 * event_base, abort, write errors, startup recovery of every planted
 * state in queue/QUEUE.md (with the expected log lines), foreach order;
 * envelope updates and removals, sync and async, mixed with commits in
 * shared batches, at queue_close, and recovery after a crash mid-update.
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

/* path - state_dir/sub/name in a static buffer */
static const char *
path(struct fixture *f, const char *sub, const char *name)
{
	static char p[2][512];
	static int which;

	which ^= 1;
	snprintf(p[which], sizeof(p[which]), "%s/%s/%s", f->dir, sub, name);
	return p[which];
}

/* file_name - "ID.ext" in a static buffer */
static const char *
file_name(const char *id, const char *ext)
{
	static char n[2][64];
	static int which;

	which ^= 1;
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

/* spew - create (or replace) a file with the given bytes */
static void
spew(const char *p, const void *data, size_t len)
{
	FILE *fp = fopen(p, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
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

/* test_id_shape - valid, unique, strictly increasing, prefix is the time */
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
		assert_true(exists(path(f, "tmp", file_name(ids[i], "msg"))));
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
	assert_true(exists(path(f, "tmp", file_name(id, "msg"))));
	queue_msg_abort(m);
	assert_false(exists(path(f, "tmp", file_name(id, "msg"))));
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);
	queue_msg_abort(NULL);
}

/* test_sync_commit - both files published, exact contents, tmp/ empty */
static void
test_sync_commit(void **state)
{
	struct fixture *f = *state;
	const size_t total = 100 * 1024 + 17;	/* several buffer flushes */
	static const size_t chunks[] = { 1, 100, 32767, 1, 40000, 4096 };
	struct queue_msg *m;
	struct envelope e, back;
	struct queue_stats st;
	struct stat sb;
	char id[QUEUE_ID_LEN + 1], *data, *got;
	const char *err;
	size_t off = 0, i = 0, n, len;
	int fd;

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

	/* message: exact bytes, mode 0600 */
	got = slurp(path(f, "queue", file_name(id, "msg")), &len);
	assert_int_equal(len, total);
	assert_memory_equal(got, data, total);
	free(got);
	assert_int_equal(stat(path(f, "queue", file_name(id, "msg")), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(stat(path(f, "queue", file_name(id, "env")), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

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
	envelope_free(&back);
	envelope_free(&e);

	/* readable through the API */
	assert_true((fd = queue_open_message(f->q, id)) >= 0);
	assert_int_equal(read(fd, data, 10), 10);
	close(fd);

	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 2);
	queue_stats(f->q, &st);
	assert_int_equal(st.commits, 1);
	assert_int_equal(st.dir_fsyncs, 1);
	free(data);
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

/* test_write_error - EFBIG from a file size limit: sticky, cleaned up */
static void
test_write_error(void **state)
{
	struct fixture *f = *state;
	struct queue_msg *m;
	struct envelope e;
	struct rlimit old, small;
	char *data = calloc(1, 256 * 1024);
	void (*oldsig)(int);
	int r;

	assert_non_null(m = queue_msg_new(f->q));
	getrlimit(RLIMIT_FSIZE, &old);
	small = old;
	small.rlim_cur = 64 * 1024;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	r = queue_msg_write(m, data, 256 * 1024);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, oldsig);
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
	struct rlimit old, small;
	void (*oldsig)(int);
	char *data = calloc(1, len);
	int r, saved;

	assert_non_null(m = queue_msg_new(f->q));
	assert_int_equal(queue_msg_write(m, data, len), 0);	/* buffered */
	make_envelope(&e, "rcpt@example.net");
	getrlimit(RLIMIT_FSIZE, &old);
	small = old;
	small.rlim_cur = limit;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	r = queue_msg_commit_sync(m, &e);
	saved = errno;
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, oldsig);
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

	/* the message fits, its envelope (~150 bytes) does not */
	assert_int_equal(commit_under_limit(f, 10, 60), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);

	queue_stats(f->q, &st);
	assert_int_equal(st.failures, 2);
	assert_int_equal(st.commits, 0);
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
	struct timeval limit = { 60, 0 };
	char line[128], *got;
	size_t len;
	int i, k;

	assert_true(n <= ASYNC_MAX);
	memset(results, 0, sizeof(results));
	results_called = 0;
	results_want = n;
	assert_non_null(base = event_base_new());
	results_base = bare ? NULL : base;
	assert_int_equal(queue_start(f->q, base), 0);
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
	if (!bare)
		event_base_loopexit(base, &limit);
	assert_true(event_base_dispatch(base) >= 0);
	assert_int_equal(results_called, n);
	queue_stats(f->q, st);

	for (i = 0; i < n; i++) {
		assert_int_equal(results[i].called, 1);
		assert_int_equal(results[i].error, 0);
		assert_string_equal(results[i].id, id[i]);
		got = slurp(path(f, "queue", file_name(id[i], "msg")), &len);
		snprintf(line, sizeof(line), "line 0 of %.20s\r\n", id[i]);
		assert_memory_equal(got, line, strlen(line));
		assert_int_equal(len, 3 * strlen(line));
		free(got);
		assert_true(exists(path(f, "queue", file_name(id[i], "env"))));
	}
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 2 * n);

	queue_close(f->q);	/* must come before event_base_free */
	f->q = NULL;
	results_base = NULL;
	event_base_free(base);
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
	int i;

	memset(results, 0, sizeof(results));
	results_called = 0;
	results_want = 20;
	results_base = NULL;
	assert_non_null(base = event_base_new());
	assert_int_equal(queue_start(f->q, base), 0);
	make_envelope(&e, "rcpt@example.net");
	for (i = 0; i < 20; i++) {
		assert_non_null(m = queue_msg_new(f->q));
		strcpy(id[i], queue_msg_id(m));
		assert_int_equal(queue_msg_write(m, "body\r\n", 6), 0);
		assert_int_equal(queue_msg_commit(m, &e, async_cb,
		    (uint64_t)i), 0);
	}
	envelope_free(&e);
	queue_close(f->q);	/* the loop never ran */
	event_base_free(base);
	assert_int_equal(results_called, 20);
	for (i = 0; i < 20; i++) {
		assert_int_equal(results[i].error, 0);
		assert_true(exists(path(f, "queue", file_name(id[i], "env"))));
	}
	/* and they are all there for the next start */
	assert_non_null(f->q = queue_open(f->dir, 0, &err));
	{
		unsigned queued = 99, removed = 99, corrupt = 99;

		assert_int_equal(queue_recover(f->q, &queued, &removed,
		    &corrupt), 0);
		assert_int_equal(queued, 20);
		assert_int_equal(removed, 0);
		assert_int_equal(corrupt, 0);
	}
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
	results_called = 0;
	assert_int_equal(queue_msg_commit(m, &e, async_cb, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);
	envelope_free(&e);
	queue_close(f->q);
	f->q = NULL;
	event_base_free(base);
	assert_int_equal(results_called, 0);	/* no callback after -1 */
}

/* grep_file - does the file at p contain s? */
static int
grep_file(const char *p, const char *s)
{
	size_t len;
	char *text = slurp(p, &len);
	int found = strstr(text, s) != NULL;

	free(text);
	return found;
}

/* test_recover - every planted state gets its documented outcome */
static void
test_recover(void **state)
{
	struct fixture *f = *state;
	char good1[21], good2[21], noenv[21], nomsg[21], garbage[21];
	char mismatch[21], shortmsg[21], trunc[21], stale[21];
	char logp[512], *text;
	unsigned queued, removed, corrupt;
	size_t len;

	commit_one_sync(f, 1000, 1, good1);
	commit_one_sync(f, 5, 2, good2);

	/* stale tmp/: an unfinished message and some junk */
	strcpy(stale, "1c2QbT3ZxStaleStale0");
	spew(path(f, "tmp", file_name(stale, "msg")), "half a mess", 11);
	spew(path(f, "tmp", "leftover.env"), "x", 1);
	/* queue/ID.msg without ID.env: never acknowledged */
	commit_one_sync(f, 10, 3, noenv);
	assert_int_equal(unlink(path(f, "queue", file_name(noenv, "env"))), 0);
	/* queue/ID.env without ID.msg */
	commit_one_sync(f, 10, 4, nomsg);
	assert_int_equal(unlink(path(f, "queue", file_name(nomsg, "msg"))), 0);
	/* garbage envelope */
	commit_one_sync(f, 10, 5, garbage);
	spew(path(f, "queue", file_name(garbage, "env")), "\x00\xff garbage\n",
	    11);
	/* envelope truncated (no end record) */
	commit_one_sync(f, 10, 6, trunc);
	{
		const char *p = path(f, "queue", file_name(trunc, "env"));

		text = slurp(p, &len);
		spew(p, text, len - 2);	/* "...\nen" */
		free(text);
	}
	/* envelope of another message: id differs from the file name */
	commit_one_sync(f, 10, 7, mismatch);
	text = slurp(path(f, "queue", file_name(good1, "env")), &len);
	spew(path(f, "queue", file_name(mismatch, "env")), text, len);
	free(text);
	/* message shorter than its envelope says */
	commit_one_sync(f, 10, 8, shortmsg);
	assert_int_equal(truncate(path(f, "queue", file_name(shortmsg, "msg")),
	    9), 0);
	/* foreign files */
	spew(path(f, "queue", "README"), "hands off\n", 10);
	spew(path(f, "queue", "1c2QbT3ZxAbCdEfGhIjK.bak"), "x", 1);
	/* corrupt/ already has a file of the garbage message's name */
	spew(path(f, "corrupt", file_name(garbage, "env")), "older", 5);

	snprintf(logp, sizeof(logp), "%s/recover.log", f->dir);
	capture(logp);
	queued = removed = corrupt = 99;
	assert_int_equal(queue_recover(f->q, &queued, &removed, &corrupt), 0);
	capture(NULL);

	assert_int_equal(queued, 2);
	assert_int_equal(removed, 3);	/* two in tmp/, one msg alone */
	assert_int_equal(corrupt, 5);

	assert_int_equal(count_dir(f, "tmp"), 0);
	/* the good ones stay */
	assert_true(exists(path(f, "queue", file_name(good1, "msg"))));
	assert_true(exists(path(f, "queue", file_name(good1, "env"))));
	assert_true(exists(path(f, "queue", file_name(good2, "msg"))));
	assert_true(exists(path(f, "queue", file_name(good2, "env"))));
	/* never acknowledged: gone */
	assert_false(exists(path(f, "queue", file_name(noenv, "msg"))));
	/* damaged: moved, both halves that existed */
	assert_true(exists(path(f, "corrupt", file_name(nomsg, "env"))));
	assert_true(exists(path(f, "corrupt", file_name(garbage, "msg"))));
	assert_true(exists(path(f, "corrupt", file_name(trunc, "env"))));
	assert_true(exists(path(f, "corrupt", file_name(trunc, "msg"))));
	assert_true(exists(path(f, "corrupt", file_name(mismatch, "env"))));
	assert_true(exists(path(f, "corrupt", file_name(mismatch, "msg"))));
	assert_true(exists(path(f, "corrupt", file_name(shortmsg, "env"))));
	assert_true(exists(path(f, "corrupt", file_name(shortmsg, "msg"))));
	/* nothing in corrupt/ is overwritten */
	text = slurp(path(f, "corrupt", file_name(garbage, "env")), &len);
	assert_int_equal(len, 5);
	assert_memory_equal(text, "older", 5);
	free(text);
	{
		char p[128];

		snprintf(p, sizeof(p), "%s.1", file_name(garbage, "env"));
		assert_true(exists(path(f, "corrupt", p)));
	}
	/* foreign files are left alone */
	assert_true(exists(path(f, "queue", "README")));
	assert_true(exists(path(f, "queue", "1c2QbT3ZxAbCdEfGhIjK.bak")));
	assert_int_equal(count_dir(f, "queue"), 6);

	/* each decision is in the log, with its id and reason */
	assert_true(grep_file(logp, "removed stale tmp/leftover.env"));
	assert_true(grep_file(logp, stale));
	assert_true(grep_file(logp, "unknown file queue/README left alone"));
	{
		char want[256];

		snprintf(want, sizeof(want), "%s: removed message without "
		    "envelope", noenv);
		assert_true(grep_file(logp, want));
		snprintf(want, sizeof(want), "%s: envelope without message; "
		    "moving it to corrupt/", nomsg);
		assert_true(grep_file(logp, want));
		snprintf(want, sizeof(want), "%s: NUL byte in envelope",
		    garbage);
		assert_true(grep_file(logp, want));
		snprintf(want, sizeof(want), "%s: truncated line", trunc);
		assert_true(grep_file(logp, want));
		snprintf(want, sizeof(want), "%s: envelope id does not match "
		    "its file name", mismatch);
		assert_true(grep_file(logp, want));
		snprintf(want, sizeof(want), "%s: message size differs from "
		    "envelope", shortmsg);
		assert_true(grep_file(logp, want));
	}

	/* recovery is idempotent */
	capture(logp);
	assert_int_equal(queue_recover(f->q, &queued, &removed, &corrupt), 0);
	capture(NULL);
	assert_int_equal(queued, 2);
	assert_int_equal(removed, 0);
	assert_int_equal(corrupt, 0);
	assert_int_equal(queue_recover(f->q, NULL, NULL, NULL), 0);
}

/* load - queue_load_envelope that must succeed */
static void
load(struct fixture *f, const char *id, struct envelope *e)
{
	const char *err = NULL;

	if (queue_load_envelope(f->q, id, e, &err) == -1)
		fail_msg("%s: load: %s", id, err);
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

/* test_update_sync - the new envelope replaces the old, message untouched */
static void
test_update_sync(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;
	struct envelope e, back;
	char id[QUEUE_ID_LEN + 1], *before, *after, *text;
	size_t blen, alen, len;

	commit_one_sync(f, 1000, 1, id);
	before = slurp(path(f, "queue", file_name(id, "msg")), &blen);
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

	/* written as version 2, mode 0600; the message is as it was */
	text = slurp(path(f, "queue", file_name(id, "env")), &len);
	assert_memory_equal(text, "postern-envelope 2\n", 19);
	free(text);
	{
		struct stat sb;

		assert_int_equal(stat(path(f, "queue", file_name(id, "env")),
		    &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	after = slurp(path(f, "queue", file_name(id, "msg")), &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(before);
	free(after);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 2);
	queue_stats(f->q, &st);
	assert_int_equal(st.commits, 1);
	assert_int_equal(st.updates, 2);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.dir_fsyncs, 3);
}

/* test_update_v1 - a version-1 envelope on disk is read, and its first
   update writes version 2 */
static void
test_update_v1(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], v1[512], *text;
	size_t len;

	commit_one_sync(f, 10, 1, id);
	snprintf(v1, sizeof(v1), "postern-envelope 1\nid %s\ntime 1\n"
	    "sender a@b\nclient c\nhelo h\nbody 7bit\nsmtputf8 0\nsize 10\n"
	    "rcpt pending r@x\nend\n", id);
	spew(path(f, "queue", file_name(id, "env")), v1, strlen(v1));
	load(f, id, &e);
	assert_int_equal(e.attempts, 0);
	assert_null(e.rcpts[0].text);
	deliver_first(&e, "x");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	envelope_free(&e);
	text = slurp(path(f, "queue", file_name(id, "env")), &len);
	assert_memory_equal(text, "postern-envelope 2\n", 19);
	assert_non_null(strstr(text, "\nreply 451 4.7.1 x\n"));
	free(text);
}

/* test_update_refused - what cannot be written, or has nowhere to go */
static void
test_update_refused(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], *before, *after;
	size_t blen, alen;

	commit_one_sync(f, 10, 1, id);
	before = slurp(path(f, "queue", file_name(id, "env")), &blen);
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
	assert_false(exists(path(f, "queue", file_name(e.id, "env"))));
	assert_int_equal(count_dir(f, "tmp"), 0);
	envelope_free(&e);

	after = slurp(path(f, "queue", file_name(id, "env")), &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(before);
	free(after);
	assert_int_equal(count_dir(f, "queue"), 2);
	queue_stats(f->q, &st);
	assert_int_equal(st.updates, 0);
	assert_int_equal(st.failures, 1);	/* ENOENT; EINVAL never ran */
	assert_int_equal(st.dir_fsyncs, 1);	/* the commit's */
}

/* test_update_write_fails - the new envelope cannot be written: the old
   one stays, nothing is left in tmp/ */
static void
test_update_write_fails(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	struct rlimit old, small;
	void (*oldsig)(int);
	char id[QUEUE_ID_LEN + 1], *before, *after;
	size_t blen, alen;
	int r, saved;

	commit_one_sync(f, 10, 1, id);
	before = slurp(path(f, "queue", file_name(id, "env")), &blen);
	load(f, id, &e);
	deliver_first(&e, "a reply long enough to pass the limit");
	getrlimit(RLIMIT_FSIZE, &old);
	small = old;
	small.rlim_cur = 60;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	r = queue_update_sync(f->q, &e);
	saved = errno;
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, oldsig);
	assert_int_equal(r, -1);
	assert_int_equal(saved, EFBIG);
	envelope_free(&e);
	after = slurp(path(f, "queue", file_name(id, "env")), &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(before);
	free(after);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 2);
}

/* test_remove_sync - neither file is left; a second remove is ENOENT */
static void
test_remove_sync(void **state)
{
	struct fixture *f = *state;
	struct queue_stats st;
	char id[QUEUE_ID_LEN + 1], keep[QUEUE_ID_LEN + 1];
	char nomsg[QUEUE_ID_LEN + 1];

	commit_one_sync(f, 10, 1, id);
	commit_one_sync(f, 10, 2, keep);
	assert_int_equal(queue_remove_sync(f->q, id), 0);
	assert_false(exists(path(f, "queue", file_name(id, "env"))));
	assert_false(exists(path(f, "queue", file_name(id, "msg"))));
	assert_true(exists(path(f, "queue", file_name(keep, "env"))));
	assert_true(exists(path(f, "queue", file_name(keep, "msg"))));
	errno = 0;
	assert_int_equal(queue_remove_sync(f->q, id), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_int_equal(queue_remove_sync(f->q, "../queue/x"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(queue_remove_sync(f->q, ""), -1);
	assert_int_equal(errno, EINVAL);

	/* S5 left behind (message without envelope): ENOENT, untouched;
	   that is recovery's to delete */
	commit_one_sync(f, 10, 3, nomsg);
	assert_int_equal(unlink(path(f, "queue", file_name(nomsg, "env"))), 0);
	assert_int_equal(queue_remove_sync(f->q, nomsg), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(exists(path(f, "queue", file_name(nomsg, "msg"))));
	assert_int_equal(unlink(path(f, "queue", file_name(nomsg, "msg"))), 0);

	/* an envelope whose message is missing: removed all the same */
	commit_one_sync(f, 10, 4, nomsg);
	assert_int_equal(unlink(path(f, "queue", file_name(nomsg, "msg"))), 0);
	assert_int_equal(queue_remove_sync(f->q, nomsg), 0);
	assert_false(exists(path(f, "queue", file_name(nomsg, "env"))));

	assert_int_equal(count_dir(f, "queue"), 2);
	assert_int_equal(count_dir(f, "tmp"), 0);
	queue_stats(f->q, &st);
	assert_int_equal(st.commits, 4);
	assert_int_equal(st.removes, 2);
	assert_int_equal(st.failures, 2);	/* the two ENOENTs */
	assert_int_equal(st.dir_fsyncs, 6);
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
	struct timeval limit = { 60, 0 }, now = { 0, 0 };
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

	memset(results, 0, sizeof(results));
	results_called = 0;
	results_want = nmixed;
	mixed_issued_called = -1;
	mixed_f = f;
	assert_non_null(base = event_base_new());
	results_base = base;
	assert_int_equal(queue_start(f->q, base), 0);
	assert_int_equal(event_base_once(base, -1, EV_TIMEOUT, mixed_issue,
	    NULL, &now), 0);
	event_base_loopexit(base, &limit);
	assert_true(event_base_dispatch(base) >= 0);
	assert_int_equal(mixed_issued_called, 0);
	assert_int_equal(results_called, nmixed);
	for (i = 0; i < nmixed; i++) {
		if (results[i].called != 1 || results[i].error != mixed[i].want)
			fail_msg("op %d (kind %d): called %d, error %d, want %d",
			    i, mixed[i].kind, results[i].called,
			    results[i].error, mixed[i].want);
		if (mixed[i].kind != MIXED_COMMIT)
			assert_string_equal(results[i].id, mixed[i].id);
		else
			assert_true(exists(path(f, "queue",
			    file_name(results[i].id, "env"))));
	}
	queue_stats(f->q, &st);
	queue_close(f->q);
	f->q = NULL;
	results_base = NULL;
	event_base_free(base);

	assert_int_equal(st.commits - st0.commits, NNEW);
	assert_int_equal(st.updates - st0.updates, 20 + 10 + 5);
	assert_int_equal(st.removes - st0.removes, 20 + 5 + 5 + 1);
	assert_int_equal(st.failures - st0.failures, 5 + 3);
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
	assert_int_equal(count_dir(f, "queue"), 2 * left);
	assert_int_equal(count_dir(f, "tmp"), 0);
	for (i = 0; i < NPRE; i++) {
		int gone = (i >= 20 && i < 40) || (i >= 45 && i < 56);

		assert_int_equal(exists(path(f, "queue",
		    file_name(pre[i], "env"))), !gone);
		assert_int_equal(exists(path(f, "queue",
		    file_name(pre[i], "msg"))), !gone);
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
	assert_false(exists(path(f, "queue", file_name(absent, "env"))));
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
	memset(results, 0, sizeof(results));
	results_called = 0;
	results_want = 8;
	results_base = NULL;
	assert_non_null(base = event_base_new());
	assert_int_equal(queue_start(f->q, base), 0);
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

	queue_close(f->q);	/* the loop never ran */
	f->q = NULL;
	event_base_free(base);
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
		assert_false(exists(path(f, "queue", file_name(id[i], "env"))));
	assert_true(exists(path(f, "queue", file_name(newid, "env"))));
	assert_int_equal(count_dir(f, "queue"), 2 * 4);
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
	char id[QUEUE_ID_LEN + 1];

	commit_one_sync(f, 10, 1, id);
	load(f, id, &e);
	memset(results, 0, sizeof(results));
	results_called = 0;
	errno = 0;
	assert_int_equal(queue_update(f->q, &e, async_cb, 0), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(queue_remove(f->q, id, async_cb, 0), -1);
	assert_int_equal(errno, EINVAL);

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
	queue_close(f->q);
	f->q = NULL;
	event_base_free(base);
	assert_int_equal(results_called, 0);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 2);
}

/* test_recover_mid_update - a crash after tmp/ID.env of an update was
   written, before its rename: recovery deletes the temp file and keeps
   the committed envelope */
static void
test_recover_mid_update(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	struct buf b;
	char id[QUEUE_ID_LEN + 1], other[QUEUE_ID_LEN + 1], *before, *after;
	char logp[512];
	unsigned queued, removed, corrupt;
	size_t blen, alen;

	commit_one_sync(f, 10, 1, id);
	commit_one_sync(f, 20, 2, other);
	before = slurp(path(f, "queue", file_name(id, "env")), &blen);
	/* the newer envelope, complete and fsync'ed but never renamed */
	load(f, id, &e);
	deliver_first(&e, "never renamed");
	buf_init(&b, 1 << 16);
	assert_int_equal(envelope_format(&e, &b), 0);
	spew(path(f, "tmp", file_name(id, "env")), b.data, b.len);
	/* and one cut short in the middle of its write */
	spew(path(f, "tmp", file_name(other, "env")), b.data, b.len / 2);
	buf_free(&b);
	envelope_free(&e);

	snprintf(logp, sizeof(logp), "%s/recover.log", f->dir);
	capture(logp);
	assert_int_equal(queue_recover(f->q, &queued, &removed, &corrupt), 0);
	capture(NULL);
	assert_int_equal(queued, 2);
	assert_int_equal(removed, 2);
	assert_int_equal(corrupt, 0);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 4);
	after = slurp(path(f, "queue", file_name(id, "env")), &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(before);
	free(after);
	load(f, id, &e);
	assert_int_equal(e.attempts, 0);
	assert_int_equal(e.rcpts[0].status, RCPT_PENDING);
	envelope_free(&e);
	{
		char want[128];

		snprintf(want, sizeof(want), "removed stale tmp/%s",
		    file_name(id, "env"));
		assert_true(grep_file(logp, want));
	}
	/* and the message can be updated normally afterwards */
	load(f, id, &e);
	deliver_first(&e, "after recovery");
	assert_int_equal(queue_update_sync(f->q, &e), 0);
	envelope_free(&e);
	assert_int_equal(count_dir(f, "tmp"), 0);
}

/* test_recover_odd_files - a FIFO, a directory, a symlink: no hang, no crash */
static void
test_recover_odd_files(void **state)
{
	struct fixture *f = *state;
	char fifo[21], dir[21], link_[21], logp[512];
	unsigned queued, removed, corrupt;

	commit_one_sync(f, 10, 1, fifo);
	unlink(path(f, "queue", file_name(fifo, "env")));
	assert_int_equal(mkfifo(path(f, "queue", file_name(fifo, "env")), 0600),
	    0);
	commit_one_sync(f, 10, 2, dir);
	unlink(path(f, "queue", file_name(dir, "env")));
	assert_int_equal(mkdir(path(f, "queue", file_name(dir, "env")), 0700),
	    0);
	commit_one_sync(f, 10, 3, link_);
	unlink(path(f, "queue", file_name(link_, "env")));
	assert_int_equal(symlink("/etc/passwd",
	    path(f, "queue", file_name(link_, "env"))), 0);

	snprintf(logp, sizeof(logp), "%s/recover.log", f->dir);
	capture(logp);
	assert_int_equal(queue_recover(f->q, &queued, &removed, &corrupt), 0);
	capture(NULL);
	assert_int_equal(queued, 0);
	assert_int_equal(corrupt, 3);
	assert_int_equal(count_dir(f, "queue"), 0);
	assert_int_equal(count_dir(f, "corrupt"), 6);
	(void)removed;
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

/* test_foreach_order - oldest id first; bad ones reported and skipped */
static void
test_foreach_order(void **state)
{
	struct fixture *f = *state;
	char ids[6][QUEUE_ID_LEN + 1];
	struct seen s;
	int i;

	for (i = 0; i < 6; i++)
		commit_one_sync(f, 10, (unsigned)i, ids[i]);
	spew(path(f, "queue", file_name(ids[3], "env")), "postern-envelope 7\n",
	    19);
	spew(path(f, "queue", "notes.txt"), "x", 1);

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
}

/* test_untrusted_ids - ids from outside never build a path */
static void
test_untrusted_ids(void **state)
{
	struct fixture *f = *state;
	struct envelope e;
	const char *err = NULL;
	char id[21];

	assert_int_equal(queue_load_envelope(f->q, "../../../../etc/passw",
	    &e, &err), -1);
	assert_string_equal(err, "invalid queue id");
	assert_int_equal(queue_load_envelope(f->q, "", &e, &err), -1);
	assert_string_equal(err, "invalid queue id");
	errno = 0;
	assert_int_equal(queue_open_message(f->q, "../queue/x"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(queue_load_envelope(f->q, "00000000000000000000",
	    &e, &err), -1);
	assert_string_equal(err, "envelope missing");
	assert_int_equal(queue_open_message(f->q, "00000000000000000000"), -1);
	assert_int_equal(errno, ENOENT);
	commit_one_sync(f, 1, 1, id);
	assert_int_equal(queue_load_envelope(f->q, id, &e, &err), 0);
	envelope_free(&e);
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
		cmocka_unit_test_setup_teardown(test_update_sync, setup,
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
	};

	/* the committer calls event_active() from its own thread */
	if (evthread_use_pthreads() == -1) {
		fprintf(stderr, "evthread_use_pthreads failed\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
