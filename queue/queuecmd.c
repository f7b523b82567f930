/*
 * queuecmd - `postern queue ...`; see queuecmd.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/ctl.h"
#include "common/log.h"
#include "config/cmdline.h"
#include "config/config.h"
#include "queue/envelope.h"
#include "queue/queue.h"
#include "queue/queuecmd.h"

/* The options, whichever command they go with. */
struct qopts {
	bool		 json;
	bool		 message;	/* show --message */
	bool		 held;		/* list --held */
	bool		 deferred;	/* list --deferred */
	bool		 bounce;	/* delete --bounce */
	const char	*sender;	/* list --sender ADDR */
	const char	*recipient;	/* list --recipient ADDR|@DOMAIN */
};

/* What each command takes besides -c FILE (queuecmd_args checks). */
#define Q_JSON		0x01
#define Q_MESSAGE	0x02
#define Q_FILTERS	0x04
#define Q_BOUNCE	0x08

/* queuecmd_name - the name list and JSON give e's state: "hold" (an
   admin holds it), "deferred" (tried, recipients still pending, or its
   bounce waits) or "active" (not tried yet) */
static const char *
queuecmd_name(const struct envelope *e)
{
	size_t i;

	if (e->held > 0)
		return "hold";
	if (e->attempts > 0)
		return "deferred";
	for (i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].text != NULL)
			return "deferred";
	return "active";
}

/* queuecmd_reply - r's last reply as one line of text, newly allocated:
   "451 4.7.1 text", or the text alone for a local failure (code 0) */
static char *
queuecmd_reply(const struct envelope_rcpt *r)
{
	if (r->code == 0)
		return xasprintf("%s%s%s", r->enhanced, r->enhanced[0] &&
		    r->text[0] ? " " : "", r->text);
	return xasprintf("%03d%s%s%s%s", r->code, r->enhanced[0] ? " " : "",
	    r->enhanced, r->text[0] ? " " : "", r->text);
}

/* queuecmd_addr_is - a and b the same address (case aside: an admin
   types them) */
static bool
queuecmd_addr_is(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* queuecmd_rcpt_match - recipient addr matches pattern: the address, or
   "@domain" for any address in that domain */
static bool
queuecmd_rcpt_match(const char *addr, const char *pattern)
{
	const char *at;

	if (pattern[0] != '@')
		return queuecmd_addr_is(addr, pattern);
	return (at = strrchr(addr, '@')) != NULL &&
	    strcasecmp(at + 1, pattern + 1) == 0;
}

/* queuecmd_wanted - e passes list's filters */
static bool
queuecmd_wanted(const struct envelope *e, const struct qopts *o)
{
	const char *name = queuecmd_name(e);
	size_t i;

	if (o->held && strcmp(name, "hold") != 0)
		return false;
	if (o->deferred && strcmp(name, "deferred") != 0)
		return false;
	if (o->sender != NULL && !queuecmd_addr_is(e->sender, o->sender))
		return false;
	if (o->recipient == NULL)
		return true;
	for (i = 0; i < e->nrcpts; i++)
		if (queuecmd_rcpt_match(e->rcpts[i].addr, o->recipient))
			return true;
	return false;
}

/* queuecmd_time - t as local "YYYY-MM-DD HH:MM:SS" into buf */
static const char *
queuecmd_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

/* queuecmd_print - one line of `postern queue list` */
static void
queuecmd_print(const struct envelope *e)
{
	const struct envelope_rcpt *r;
	char when[32], *reply;
	size_t i;

	printf("%s %8llu %s <%s>", e->id, (unsigned long long)e->size,
	    queuecmd_time(e->time, when, sizeof(when)), e->sender);
	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		printf("%s<%s>", i ? ", " : " -> ", r->addr);
		if (r->status == RCPT_DELIVERED)
			printf(" (delivered)");
		else if (r->status == RCPT_FAILED || r->text != NULL) {
			reply = queuecmd_reply(r);
			printf(" (%s: %s)", r->status == RCPT_FAILED ?
			    "failed" : "deferred", reply);
			free(reply);
		}
	}
	if (e->attempts > 0) {
		printf(" attempts=%u", e->attempts);
		if (e->next_attempt != 0 && e->held == 0)
			printf(" next=%s", queuecmd_time(e->next_attempt, when,
			    sizeof(when)));
	}
	if (e->held > 0)
		printf(" on hold since %s", queuecmd_time(e->held, when,
		    sizeof(when)));
	printf("\n");
}

/* queuecmd_json - e as the object `list --json` and `show --json` print
   (README, "The queue as JSON"); a new reference */
static json_t *
queuecmd_json(const struct envelope *e)
{
	static const char *const status[] = {
		[RCPT_PENDING] = "pending",
		[RCPT_DELIVERED] = "delivered",
		[RCPT_FAILED] = "failed",
	};
	const struct envelope_rcpt *r;
	json_t *o, *rcpts, *jr;
	char *reply;
	size_t i;

	rcpts = json_array();
	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		jr = json_pack("{s:s, s:s}", "address", r->addr, "status",
		    status[r->status]);
		if (r->text != NULL) {
			reply = queuecmd_reply(r);
			json_object_set_new(jr, r->status == RCPT_PENDING ?
			    "delay_reason" : "reason", json_string(reply));
			json_object_set_new(jr, "reply", json_pack("{s:i, s:s?, "
			    "s:s}", "code", r->code, "enhanced", r->enhanced[0] ?
			    r->enhanced : NULL, "text", r->text));
			free(reply);
		}
		json_array_append_new(rcpts, jr);
	}
	o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s?, s:s, s:s, s:b, s:I, "
	    "s:I, s:o, s:o, s:o}",
	    "queue_id", e->id,
	    "queue_name", queuecmd_name(e),
	    "arrival_time", (json_int_t)e->time,
	    "message_size", (json_int_t)e->size,
	    "sender", e->sender,
	    "login", e->login,
	    "client", e->client,
	    "helo", e->helo,
	    "smtputf8", e->smtputf8,
	    "attempts", (json_int_t)e->attempts,
	    "next_attempt", (json_int_t)e->next_attempt,
	    "held_since", e->held > 0 ? json_integer(e->held) : json_null(),
	    "bounce_id", e->dsn[0] ? json_string(e->dsn) : json_null(),
	    "recipients", rcpts);
	if (o == NULL)
		log_fatalx("queue: cannot encode %s as JSON", e->id);
	return o;
}

/* queuecmd_json_print - obj on one line of stdout (consumed) */
static void
queuecmd_json_print(json_t *obj)
{
	char *line;
	size_t len;

	if ((line = ctl_line(obj, &len)) == NULL)
		log_fatalx("queue: cannot encode JSON");
	fwrite(line, 1, len, stdout);
	free(line);
	json_decref(obj);
}

/* queuecmd_list_one - `postern queue list`'s queue_foreach callback */
static void
queuecmd_list_one(const struct envelope *e, void *arg)
{
	const struct qopts *o = arg;

	if (!queuecmd_wanted(e, o))
		return;
	if (o->json)
		queuecmd_json_print(queuecmd_json(e));
	else
		queuecmd_print(e);
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
queuecmd_show(struct queue *q, const char *id, const struct qopts *o)
{
	struct envelope e;
	struct buf b;
	const char *why;
	char chunk[65536];
	uint64_t left;
	off_t off;
	ssize_t r;
	int fd;

	if (queue_load_envelope(q, id, &e, &why) == -1) {
		fprintf(stderr, "postern: %s: %s\n", id, errno == ENOENT ?
		    "no such message in the queue" : why);
		return 1;
	}
	if (o->json) {
		queuecmd_json_print(queuecmd_json(&e));
		envelope_free(&e);
		return 0;
	}
	if (!o->message) {
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

/* queuecmd_read - list and show: the queue as it is on disk, read
   without taking it over (the daemon may be running) */
static int
queuecmd_read(const struct config *cfg, const char *cmd, const char *id,
    struct qopts *o)
{
	struct queue *q;
	char *err = NULL;
	int rc = 1;

	if ((q = queue_open(cfg->state_dir, 0, &err)) == NULL) {
		fprintf(stderr, "postern: queue: %s\n", err);
		free(err);
		return 1;
	}
	if (strcmp(cmd, "show") == 0)
		rc = queuecmd_show(q, id, o);
	else if (queue_foreach(q, queuecmd_list_one, queuecmd_bad, o) == -1)
		fprintf(stderr, "postern: cannot read queue: %s\n",
		    strerror(errno));
	else
		rc = 0;
	queue_close(q);
	return rc;
}

/* queuecmd_change - flush, hold, release, delete: asked of the running
   daemon through its control socket (daemon/control.h) */
static int
queuecmd_change(const struct config *cfg, const char *cmd,
    const char **ids, size_t n, const struct qopts *o)
{
	json_t *req, *arr, *ans;
	char *err = NULL, *command;
	size_t i;

	arr = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(arr, json_string(ids[i]));
	command = xasprintf("queue.%s", cmd);
	req = json_pack("{s:s, s:o}", "command", command, "ids", arr);
	free(command);
	if (o->bounce)
		json_object_set_new(req, "bounce", json_true());
	ans = ctl_call(cfg->control_socket, req, &err);
	json_decref(req);
	if (ans == NULL) {
		fprintf(stderr, "postern: %s\n", err);
		free(err);
		return 1;
	}
	json_decref(ans);
	if (strcmp(cmd, "flush") == 0 && n == 0)
		printf("flushed: every message waiting for a retry is due "
		    "now\n");
	for (i = 0; i < n; i++)
		printf("%s: %s\n", ids[i], strcmp(cmd, "flush") == 0 ?
		    "due now" : strcmp(cmd, "hold") == 0 ? "on hold" :
		    strcmp(cmd, "release") == 0 ? "released, due now" :
		    o->bounce ? "deleted; its sender gets a bounce" :
		    "deleted");
	return 0;
}

/*
 * queuecmd_args - take the options allowed (Q_*) out of argv into *o,
 * leaving -c FILE and the words; -1 for an option not allowed or
 * missing its value, or --held with --deferred
 */
static int
queuecmd_args(int *argc, char **argv, unsigned allowed, struct qopts *o)
{
	int i, j = 0, take;
	const char *a;

	for (i = 0; i < *argc; i += take) {
		a = argv[i];
		take = 1;
		if ((allowed & Q_JSON) && strcmp(a, "--json") == 0)
			o->json = true;
		else if ((allowed & Q_MESSAGE) && strcmp(a, "--message") == 0)
			o->message = true;
		else if ((allowed & Q_BOUNCE) && strcmp(a, "--bounce") == 0)
			o->bounce = true;
		else if ((allowed & Q_FILTERS) && strcmp(a, "--held") == 0)
			o->held = true;
		else if ((allowed & Q_FILTERS) && strcmp(a, "--deferred") == 0)
			o->deferred = true;
		else if ((allowed & Q_FILTERS) && (strcmp(a, "--sender") == 0 ||
		    strcmp(a, "--recipient") == 0)) {
			if (i + 1 >= *argc)
				return -1;
			*(a[2] == 's' ? &o->sender : &o->recipient) =
			    argv[i + 1];
			take = 2;
		} else if (strncmp(a, "--", 2) == 0 && a[2] != '\0')
			return -1;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	if ((o->held && o->deferred) || (o->json && o->message))
		return -1;
	return 0;
}

/* queue_main - look at the queue, or change it in the running daemon */
int
queue_main(int argc, char **argv)
{
	static const struct {
		const char	*name;
		unsigned	 opts;
		int		 minids, maxids;	/* -1: any number */
	} cmds[] = {
		{ "list",	Q_JSON | Q_FILTERS,	0, 0 },
		{ "show",	Q_JSON | Q_MESSAGE,	1, 1 },
		{ "flush",	0,			0, -1 },
		{ "hold",	0,			1, -1 },
		{ "release",	0,			1, -1 },
		{ "delete",	Q_BOUNCE,		1, -1 },
	};
	const char *path = CONFIG_DEFAULT_PATH, **words;
	struct qopts o;
	struct config *cfg;
	size_t c, i, nids;
	int n, rc;

	if (argc < 1)
		return -1;
	for (c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
		if (strcmp(argv[0], cmds[c].name) == 0)
			break;
	if (c == sizeof(cmds) / sizeof(cmds[0]))
		return -1;
	memset(&o, 0, sizeof(o));
	argc--, argv++;
	if (queuecmd_args(&argc, argv, cmds[c].opts, &o) == -1)
		return -1;
	words = xcalloc((size_t)argc + 1, sizeof(*words));
	n = cmdline_args(argc, argv, &path, NULL, words, (size_t)argc);
	/* a usage error whether or not the queue exists */
	if (n < cmds[c].minids || (cmds[c].maxids >= 0 &&
	    n > cmds[c].maxids)) {
		free(words);
		return -1;
	}
	nids = (size_t)n;
	/* an id is checked before any path or request is made of it */
	for (i = 0; i < nids && strcmp(cmds[c].name, "list") != 0; i++)
		if (!queue_id_valid(words[i])) {
			fprintf(stderr, "postern: %s: not a queue id (20 "
			    "letters and digits, as `postern queue list` "
			    "shows)\n", words[i]);
			free(words);
			return 1;
		}
	log_init("postern", 0);
	log_set_quiet(1);
	cfg = cmdline_config_client(path);
	if (strcmp(cmds[c].name, "list") == 0 ||
	    strcmp(cmds[c].name, "show") == 0)
		rc = queuecmd_read(cfg, cmds[c].name, nids ? words[0] : NULL,
		    &o);
	else
		rc = queuecmd_change(cfg, cmds[c].name, words, nids, &o);
	free(words);
	config_free(cfg);
	return rc;
}
