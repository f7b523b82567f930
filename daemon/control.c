/*
 * control - the control socket's server; see control.h.
 *
 * A connection is a struct ctl_conn on the control's list, found again
 * by its serial: the scheduler's callbacks carry that, never a pointer.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/ctl.h"
#include "common/io.h"
#include "common/log.h"
#include "config/config.h"
#include "daemon/control.h"
#include "daemon/generation.h"
#include "relay/sched.h"
#include "submit/limits.h"

#define CTL_READ_TIMEOUT	10	/* seconds for the request line */
#define CTL_BACKLOG		16

struct ctl_conn {
	uint64_t		 serial;
	struct control		*c;
	struct bufferevent	*bev;
	uid_t			 uid;
	char			 who[80];	/* "uid=0 (root)" */
	char			 command[32];	/* for the outcome's log */
	json_t			*ids;		/* what the answer names */
	char			*errors;	/* changes that came to
						   nothing; NULL: none */
	size_t			 pending;	/* changes in flight */
	bool			 answered;
	TAILQ_ENTRY(ctl_conn)	 entry;
};

struct control {
	char			*path;
	int			 fd;		/* until control_start */
	struct evconnlistener	*listener;
	struct sched		*sched;
	const struct generations *gens;
	uint64_t		 next_serial;
	TAILQ_HEAD(, ctl_conn)	 conns;
};

/* The scheduler's callbacks find the one control here. */
static struct control	*control_self;

/* ctl_find - the connection with serial, or NULL (gone) */
static struct ctl_conn *
ctl_find(uint64_t serial)
{
	struct ctl_conn *cc;

	if (control_self == NULL)
		return NULL;
	TAILQ_FOREACH(cc, &control_self->conns, entry)
		if (cc->serial == serial)
			return cc;
	return NULL;
}

/* ctl_free - close and forget a connection */
static void
ctl_free(struct ctl_conn *cc)
{
	TAILQ_REMOVE(&cc->c->conns, cc, entry);
	bufferevent_free(cc->bev);
	json_decref(cc->ids);
	free(cc->errors);
	free(cc);
}

/* ctl_written - the answer is out: close */
static void
ctl_written(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_free(arg);
}

/* ctl_event - the client went away, or the request took too long */
static void
ctl_event(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *cc = arg;

	(void)bev;
	if ((what & BEV_EVENT_TIMEOUT) && !cc->answered)
		log_warnx("control: %s: no request within %d s; closed",
		    cc->who, CTL_READ_TIMEOUT);
	/* changes in flight finish; their answer has nobody to go to */
	ctl_free(cc);
}

/* ctl_send - write ans (consumed) and close once it is out */
static void
ctl_send(struct ctl_conn *cc, json_t *ans)
{
	char *line;
	size_t len;

	cc->answered = true;
	if ((line = ctl_line(ans, &len)) == NULL)
		line = xstrdup("{\"ok\":false,\"error\":\"cannot encode the "
		    "answer\"}\n"), len = strlen(line);
	json_decref(ans);
	bufferevent_disable(cc->bev, EV_READ);
	bufferevent_set_timeouts(cc->bev, NULL, NULL);
	bufferevent_setcb(cc->bev, NULL, ctl_written, ctl_event, cc);
	if (bufferevent_write(cc->bev, line, len) == -1)
		ctl_free(cc);
	free(line);
}

/* ctl_refuse - answer with an error (and log it) */
static void
ctl_refuse(struct ctl_conn *cc, const char *why)
{
	log_info("control: %s: %s refused: %s", cc->who,
	    cc->command[0] ? cc->command : "request", why);
	ctl_send(cc, json_pack("{s:b, s:s}", "ok", 0, "error", why));
}

/* ctl_done - every change of cc's request has settled: the answer */
static void
ctl_done(struct ctl_conn *cc)
{
	if (cc->errors != NULL) {
		ctl_refuse(cc, cc->errors);
		return;
	}
	log_info("control: %s: %s done", cc->who, cc->command);
	ctl_send(cc, json_pack("{s:b, s:O}", "ok", 1, "ids", cc->ids));
}

/* ctl_settled - the scheduler's answer for one message of a request */
static void
ctl_settled(uint64_t cookie, const char *id, const char *error)
{
	struct ctl_conn *cc = ctl_find(cookie);
	char *all;

	if (cc == NULL || cc->pending == 0)
		return;
	if (error != NULL) {
		all = xasprintf("%s%s%s: %s", cc->errors ? cc->errors : "",
		    cc->errors ? "; " : "", id, error);
		free(cc->errors);
		cc->errors = all;
	}
	if (--cc->pending == 0)
		ctl_done(cc);
}

/* ctl_ids - the request's "ids" as a NULL-free array of strings into
   *ids (n of them, pointing into req); why not (static), or NULL */
static const char *
ctl_ids(const json_t *req, bool required, const char ***ids, size_t *n)
{
	const json_t *arr = json_object_get(req, "ids"), *v;
	size_t i;

	*ids = NULL;
	*n = 0;
	if (arr == NULL)
		return required ? "\"ids\" is missing: name the messages" :
		    NULL;
	if (!json_is_array(arr))
		return "\"ids\" is not an array of queue ids";
	if (required && json_array_size(arr) == 0)
		return "\"ids\" is empty: name the messages";
	*ids = xcalloc(json_array_size(arr) + 1, sizeof(**ids));
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v)) {
			free(*ids);
			*ids = NULL;
			return "\"ids\" is not an array of queue ids";
		}
		(*ids)[i] = json_string_value(v);
	}
	*n = json_array_size(arr);
	return NULL;
}

/* ctl_queue - queue.flush, hold, release, delete */
static void
ctl_queue(struct ctl_conn *cc, const json_t *req, enum sched_admin_op op)
{
	const char **ids, *why;
	const json_t *bounce = json_object_get(req, "bounce");
	char *err = NULL;
	struct buf list;
	size_t n, i;
	int inflight;

	if ((why = ctl_ids(req, op != SCHED_FLUSH, &ids, &n)) != NULL) {
		ctl_refuse(cc, why);
		return;
	}
	if (bounce != NULL && (op != SCHED_DELETE || !json_is_boolean(bounce))) {
		free(ids);
		ctl_refuse(cc, "\"bounce\" is for queue.delete, true or false");
		return;
	}
	if (json_is_true(bounce))
		op = SCHED_BOUNCE;
	/* the log line names the ids, as many as fit */
	buf_init(&list, 4096);
	for (i = 0; i < n && buf_printf(&list, " %.40s", ids[i]) == 0; i++)
		;
	log_info("control: %s: %s%s%s%s", cc->who, cc->command,
	    op == SCHED_BOUNCE ? " --bounce" : "", n ? list.data : " (all)",
	    i < n ? " ..." : "");
	buf_free(&list);
	cc->ids = json_incref(json_object_get(req, "ids"));
	if (cc->ids == NULL)
		cc->ids = json_array();
	inflight = sched_admin(cc->c->sched, op, ids, n, cc->who, ctl_settled,
	    cc->serial, &err);
	free(ids);
	if (inflight == -1) {
		ctl_refuse(cc, err);
		free(err);
		return;
	}
	if ((cc->pending = (size_t)inflight) == 0)
		ctl_done(cc);
}

/* ctl_limits - limits.show, limits.unlock: the configuration in force */
static void
ctl_limits(struct ctl_conn *cc, const json_t *req, bool unlock)
{
	const struct config *cfg = cc->c->gens->current->cfg;
	const char *what;
	json_t *ans;
	char *err = NULL;
	int n;

	if (!unlock) {
		log_info("control: %s: limits.show", cc->who);
		ans = limits_show(cfg, time(NULL));
		json_object_set_new(ans, "ok", json_true());
		ctl_send(cc, ans);
		return;
	}
	if ((what = json_string_value(json_object_get(req, "what"))) ==
	    NULL) {
		ctl_refuse(cc, "\"what\" is missing: an IP address or a login");
		return;
	}
	log_info("control: %s: limits.unlock %.300s", cc->who, what);
	if ((n = limits_unlock(cfg, what, time(NULL), &err)) == -1) {
		ctl_refuse(cc, err);
		free(err);
		return;
	}
	ctl_send(cc, json_pack("{s:b, s:i}", "ok", 1, "unlocked", n));
}

/* ctl_request - one request line: parse and carry out */
static void
ctl_request(struct ctl_conn *cc, const char *line, size_t len)
{
	static const struct {
		const char		*name;
		enum sched_admin_op	 op;
	} queue_cmds[] = {
		{ "queue.flush", SCHED_FLUSH },
		{ "queue.hold", SCHED_HOLD },
		{ "queue.release", SCHED_RELEASE },
		{ "queue.delete", SCHED_DELETE },
	};
	json_error_t jerr;
	json_t *req;
	const char *cmd;
	size_t i;

	if ((req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL || !json_is_object(req)) {
		json_decref(req);
		ctl_refuse(cc, "the request is not a JSON object");
		return;
	}
	if ((cmd = json_string_value(json_object_get(req, "command"))) ==
	    NULL) {
		json_decref(req);
		ctl_refuse(cc, "the request has no \"command\"");
		return;
	}
	snprintf(cc->command, sizeof(cc->command), "%s", cmd);
	for (i = 0; i < sizeof(queue_cmds) / sizeof(queue_cmds[0]); i++)
		if (strcmp(cmd, queue_cmds[i].name) == 0) {
			ctl_queue(cc, req, queue_cmds[i].op);
			json_decref(req);
			return;
		}
	if (strcmp(cmd, "limits.show") == 0 || strcmp(cmd, "limits.unlock") ==
	    0)
		ctl_limits(cc, req, strcmp(cmd, "limits.unlock") == 0);
	else
		ctl_refuse(cc, "unknown command");
	json_decref(req);
}

/* ctl_read - the request line, once it is whole */
static void
ctl_read(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	if ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) == NULL) {
		if (evbuffer_get_length(in) > CTL_LINE_MAX)
			ctl_refuse(cc, "the request is too long");
		return;
	}
	bufferevent_disable(bev, EV_READ);
	ctl_request(cc, line, len);
	free(line);
}

/* ctl_who - "uid=N (name)" into who */
static void
ctl_who(uid_t uid, char *who, size_t len)
{
	struct passwd pw, *res = NULL;
	char pwbuf[2048];

	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 &&
	    res != NULL)
		snprintf(who, len, "uid=%u (%.40s)", (unsigned)uid,
		    res->pw_name);
	else
		snprintf(who, len, "uid=%u", (unsigned)uid);
}

/* ctl_accept - a new client: only root and the daemon's own user */
static void
ctl_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct control *c = arg;
	struct ctl_conn *cc;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = { CTL_READ_TIMEOUT, 0 };

	(void)l;
	(void)sa;
	(void)salen;
	cc = xcalloc(1, sizeof(*cc));
	cc->c = c;
	cc->serial = ++c->next_serial;
	if ((cc->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warnx("control: cannot set up a connection");
		close(fd);
		free(cc);
		return;
	}
	TAILQ_INSERT_TAIL(&c->conns, cc, entry);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == -1) {
		log_warn("control: SO_PEERCRED");
		snprintf(cc->who, sizeof(cc->who), "an unknown caller");
		ctl_refuse(cc, "permission denied: the caller's uid is "
		    "unknown");
		return;
	}
	cc->uid = cred.uid;
	ctl_who(cred.uid, cc->who, sizeof(cc->who));
	if (cred.uid != 0 && cred.uid != geteuid()) {
		log_warnx("control: %s refused: only root and the daemon's "
		    "user may control the daemon", cc->who);
		ctl_send(cc, json_pack("{s:b, s:s}", "ok", 0, "error",
		    "permission denied: only root and the daemon's user may "
		    "control the daemon"));
		return;
	}
	bufferevent_setcb(cc->bev, ctl_read, NULL, ctl_event, cc);
	bufferevent_set_timeouts(cc->bev, &tv, NULL);
	bufferevent_enable(cc->bev, EV_READ);
}

/* control_open - bind the socket, as root */
struct control *
control_open(const struct config *cfg, char **err)
{
	struct control *c;
	struct passwd *pw;
	int fd;

	if ((fd = io_unix_listen("control socket", cfg->control_socket, 0600,
	    CTL_BACKLOG, err)) == -1)
		return NULL;
	/* the daemon's user removes it at the end, and may use it */
	if (geteuid() == 0 && cfg->user != NULL &&
	    (pw = getpwnam(cfg->user)) != NULL &&
	    lchown(cfg->control_socket, pw->pw_uid, pw->pw_gid) == -1) {
		*err = xasprintf("control socket %s: chown to %s: %s",
		    cfg->control_socket, cfg->user, strerror(errno));
		close(fd);
		(void)unlink(cfg->control_socket);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->path = xstrdup(cfg->control_socket);
	c->fd = fd;
	TAILQ_INIT(&c->conns);
	return c;
}

/* control_start - serve on the loop */
int
control_start(struct control *c, struct event_base *base, struct sched *s,
    const struct generations *gens)
{
	c->sched = s;
	c->gens = gens;
	if ((c->listener = evconnlistener_new(base, ctl_accept, c,
	    LEV_OPT_CLOSE_ON_FREE, -1, c->fd)) == NULL)
		return -1;
	c->fd = -1;
	control_self = c;
	return 0;
}

/* control_free - close everything and remove the socket */
void
control_free(struct control *c)
{
	if (c == NULL)
		return;
	while (!TAILQ_EMPTY(&c->conns))
		ctl_free(TAILQ_FIRST(&c->conns));
	if (c->listener != NULL)
		evconnlistener_free(c->listener);
	else if (c->fd != -1)
		close(c->fd);
	(void)unlink(c->path);
	if (control_self == c)
		control_self = NULL;
	free(c->path);
	free(c);
}
