/*
 * stop - the graceful stop; see stop.h.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "common/alloc.h"
#include "common/log.h"
#include "config/config.h"
#include "daemon/stop.h"
#include "relay/sched.h"
#include "submit/server.h"
#include "submit/session.h"

struct stop {
	struct event_base	*base;
	const struct config	*cfg;
	struct server		*srv;
	struct sched		*sched;
	struct event		*poll;		/* every STOP_POLL_MS */
	time_t			 deadline;	/* stop_timeout, then grace */
	bool			 started;
	bool			 forced;	/* deadline passed */
};

/* stop_next - what the poll does now */
enum stop_step
stop_next(unsigned sessions, size_t busy, bool forced, time_t deadline,
    time_t now)
{
	if (sessions == 0 && busy == 0)
		return STOP_DONE;
	if (now < deadline)
		return STOP_WAIT;
	return forced ? STOP_LEAVE : STOP_FORCE;
}

/* stop_poll - done yet? (the poll timer) */
static void
stop_poll(evutil_socket_t fd, short what, void *arg)
{
	struct stop *st = arg;
	size_t busy = sched_busy(st->sched);
	time_t now = time(NULL);

	(void)fd;
	(void)what;
	switch (stop_next(st->srv->nsessions, busy, st->forced, st->deadline,
	    now)) {
	case STOP_WAIT:
		break;
	case STOP_DONE:
		log_info("stopping: every transaction and delivery finished");
		event_base_loopbreak(st->base);
		break;
	case STOP_FORCE:
		log_warnx("stopping: stop_timeout (%us) passed with %u "
		    "session(s) and %zu delivery(ies) in progress; dropping "
		    "them", st->cfg->stop_timeout, st->srv->nsessions, busy);
		session_drain_end();
		st->forced = true;
		st->deadline = now + STOP_GRACE;
		break;
	case STOP_LEAVE:
		event_base_loopbreak(st->base);
		break;
	}
}

/* stop_new - nothing started yet */
struct stop *
stop_new(struct event_base *base, const struct config *cfg,
    struct server *srv, struct sched *sched)
{
	struct stop *st = xcalloc(1, sizeof(*st));

	st->base = base;
	st->cfg = cfg;
	st->srv = srv;
	st->sched = sched;
	return st;
}

/* stop_set_config - a reload's stop_timeout */
void
stop_set_config(struct stop *st, const struct config *cfg)
{
	st->cfg = cfg;
}

/* stop_begin - the first signal starts the stop, the second ends it */
void
stop_begin(struct stop *st, int sig)
{
	struct timeval tv = { 0, STOP_POLL_MS * 1000 };

	if (st->started) {
		log_info("signal %d again: stopping now", sig);
		event_base_loopbreak(st->base);
		return;
	}
	st->started = true;
	log_info("signal %d: stopping; waiting up to %us for %u session(s) "
	    "and %zu delivery(ies)", sig, st->cfg->stop_timeout,
	    st->srv->nsessions, sched_busy(st->sched));
	server_stop_accepting(st->srv);
	session_drain();
	sched_drain(st->sched);
	st->deadline = time(NULL) + st->cfg->stop_timeout;
	st->poll = event_new(st->base, -1, EV_PERSIST, stop_poll, st);
	if (st->poll == NULL || event_add(st->poll, &tv) == -1)
		event_base_loopbreak(st->base);
}

/* stop_started - has a signal come? */
bool
stop_started(const struct stop *st)
{
	return st->started;
}

/* stop_free - the timer too */
void
stop_free(struct stop *st)
{
	if (st == NULL)
		return;
	if (st->poll != NULL)
		event_free(st->poll);
	free(st);
}
