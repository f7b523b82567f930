/*
 * queuecmd - `postern queue ...`; see queuecmd.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "config/cmdline.h"
#include "config/config.h"
#include "queue/envelope.h"
#include "queue/queue.h"
#include "queue/queuecmd.h"

/* queuecmd_print - one line of `postern queue list` (queue_foreach) */
static void
queuecmd_print(const struct envelope *e, void *arg)
{
	const struct envelope_rcpt *r;
	char when[32];
	struct tm tm;
	size_t i;

	(void)arg;
	localtime_r(&e->time, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s %8llu %s <%s>", e->id, (unsigned long long)e->size, when,
	    e->sender);
	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		printf("%s<%s>", i ? ", " : " -> ", r->addr);
		if (r->status == RCPT_DELIVERED)
			printf(" (delivered)");
		else if (r->status == RCPT_FAILED)
			printf(" (failed: %03d %s)", r->code,
			    r->enhanced[0] ? r->enhanced : "-");
		else if (r->text != NULL)
			printf(" (deferred: %03d %s)", r->code,
			    r->enhanced[0] ? r->enhanced : "-");
	}
	if (e->attempts > 0) {
		localtime_r(&e->next_attempt, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf(" attempts=%u", e->attempts);
		if (e->next_attempt != 0)
			printf(" next=%s", when);
	}
	printf("\n");
}

/* queuecmd_bad - a damaged envelope met by `postern queue list` */
static void
queuecmd_bad(const char *id, const char *why, void *arg)
{
	(void)arg;
	fprintf(stderr, "postern: %s: damaged envelope: %s\n", id, why);
}

/* queuecmd_show - `postern queue show ID`: 0, or 1 after saying why */
static int
queuecmd_show(struct queue *q, const char *id, int message_only)
{
	struct envelope e;
	struct buf b;
	const char *why;
	char chunk[65536];
	uint64_t left;
	off_t off;
	ssize_t r;
	int fd;

	if (!queue_id_valid(id)) {
		fprintf(stderr, "postern: %s: not a queue id\n", id);
		return 1;
	}
	if (queue_load_envelope(q, id, &e, &why) == -1) {
		fprintf(stderr, "postern: %s: %s\n", id, why);
		return 1;
	}
	if (!message_only) {
		buf_init(&b, 1 << 24);
		if (envelope_format(&e, &b) == -1)
			log_fatalx("envelope too large to show");
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
		printf("\n");
	}
	fwrite(e.prepend, 1, e.prepend_len, stdout);
	left = e.size;
	envelope_free(&e);
	if ((fd = queue_open_message(q, id, &off)) == -1) {
		fprintf(stderr, "postern: %s: message: %s\n", id,
		    strerror(errno));
		return 1;
	}
	while (left > 0 && (r = pread(fd, chunk, left < sizeof(chunk) ?
	    (size_t)left : sizeof(chunk), off)) > 0) {
		fwrite(chunk, 1, (size_t)r, stdout);
		left -= (uint64_t)r;
		off += r;
	}
	close(fd);
	if (left > 0) {
		fprintf(stderr, "postern: %s: message: %s\n", id,
		    "shorter than its envelope says");
		return 1;
	}
	return 0;
}

/* queue_main - look at the queue */
int
queue_main(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH, *words[2];
	struct config *cfg;
	struct queue *q;
	char *err = NULL;
	int message_only, n, rc = 1;

	message_only = cmdline_flag(&argc, argv, "--message");
	n = cmdline_args(argc, argv, &path, NULL, words, 2);
	/* a usage error whether or not the queue exists */
	if (n <= 0 || !((strcmp(words[0], "list") == 0 && n == 1) ||
	    (strcmp(words[0], "show") == 0 && n == 2)))
		return -1;
	log_init("postern", 0);
	log_set_quiet(1);
	cfg = cmdline_config(path);
	if ((q = queue_open(cfg->state_dir, 0, &err)) == NULL) {
		fprintf(stderr, "postern: queue: %s\n", err);
		free(err);
		goto out;
	}
	if (strcmp(words[0], "list") == 0 && n == 1) {
		if (queue_foreach(q, queuecmd_print, queuecmd_bad, NULL) ==
		    -1) {
			fprintf(stderr, "postern: cannot read queue: %s\n",
			    strerror(errno));
			goto out;
		}
		rc = 0;
	} else if (strcmp(words[0], "show") == 0 && n == 2)
		rc = queuecmd_show(q, words[1], message_only);
	else
		rc = -1;
out:
	queue_close(q);		/* NULL: nothing */
	config_free(cfg);
	return rc;
}
