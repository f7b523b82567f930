/*
 * stop - the daemon's graceful stop (SIGTERM, SIGINT)
 *
 * stop_begin() closes the listeners, lets sessions finish their
 * transactions (those between transactions get 421 4.3.2 at once:
 * session_drain) and deliveries in flight finish (sched_drain), for at
 * most the configuration's stop_timeout; then it drops what is left
 * (421 4.3.2, session_drain_end) and leaves the loop STOP_GRACE seconds
 * later, so that the last 421s can go out. Called again (a second
 * signal), it leaves the loop at once. Nothing accepted is at risk at
 * any point: the queue is closed (commits finished) after the loop, and
 * deliveries not finished stay queued.
 *
 * Whether it is done is asked every STOP_POLL_MS of stop_next(), a pure
 * function of the counts, the deadline and the clock, so that the
 * decision can be tested without sockets.
 *
 * Log lines (tests/e2e/test_stop.py reads them):
 *	signal N: stopping; waiting up to Ts for S session(s) and D
 *	    delivery(ies)
 *	stopping: every transaction and delivery finished
 *	stopping: stop_timeout (Ts) passed with S session(s) and D
 *	    delivery(ies) in progress; dropping them	(warning)
 *	signal N again: stopping now
 *
 * Loop thread only; stop_begin() runs from an evsignal callback.
 */
#ifndef POSTERN_STOP_H
#define POSTERN_STOP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct config;
struct event_base;
struct sched;
struct server;
struct stop;

#define STOP_POLL_MS	100
#define STOP_GRACE	2	/* seconds for the last 421s to leave */

/* What the poll does next. */
enum stop_step {
	STOP_WAIT,	/* sessions or deliveries left, deadline ahead */
	STOP_DONE,	/* nothing left: leave the loop */
	STOP_FORCE,	/* stop_timeout passed: drop what is left, and
			   leave STOP_GRACE seconds later */
	STOP_LEAVE,	/* the grace after STOP_FORCE passed: leave */
};

/*
 * stop_next - the step for sessions sessions and busy deliveries still
 * in progress, at now, with deadline the stop_timeout (forced false) or
 * the end of the grace (forced true). Nothing left is STOP_DONE even
 * during the grace.
 */
enum stop_step	 stop_next(unsigned sessions, size_t busy, bool forced,
		    time_t deadline, time_t now);

/*
 * stop_new - the stop of a daemon whose loop is base, sessions srv's and
 * deliveries sched's; cfg gives stop_timeout. Nothing starts until
 * stop_begin(). The pointers must outlive the stop.
 */
struct stop	*stop_new(struct event_base *base, const struct config *cfg,
		    struct server *srv, struct sched *sched);

/* stop_set_config - stop_timeout from cfg from now on (a reload) */
void		 stop_set_config(struct stop *, const struct config *cfg);

/* stop_begin - signal sig arrived: start stopping, or (the second time)
   leave the loop now. If the poll timer cannot be made, the loop is left
   at once. */
void		 stop_begin(struct stop *, int sig);

/* stop_started - true once stop_begin() ran (a reload is then ignored) */
bool		 stop_started(const struct stop *);

/* stop_free - free the stop and its timer; NULL is a no-op */
void		 stop_free(struct stop *);

#endif
