/*
 * sched - the delivery scheduler; see sched.h, and relay/SCHED.md for
 * the states.
 */
#include <sys/time.h>
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "queue/envelope.h"
#include "queue/inject.h"
#include "queue/queue.h"
#include "relay/budget.h"
#include "relay/deliver.h"
#include "relay/dsn.h"
#include "relay/maildir.h"
#include "relay/sched.h"
#include "relay/transport.h"

#define SC_TICK_MS	1000	/* between scans for due messages */
#define SC_BATCH	64	/* attempts started per scan before yielding */
#define SC_NEVER	((time_t)INT64_MAX)

/* One queued message. Found by serial from the callbacks. */
struct sched_msg {
	uint64_t		 serial;
	struct envelope		 env;	/* as on disk, or about to be */
	enum sched_state	 state;
	time_t			 due;	/* IDLE, HELD: when to act again */
	uint32_t		 wait;	/* IDLE: the transport's down()
					   destination it waits for; 0 */
	struct sched_msg	*prev, *next;
};

struct sched {
	struct event_base	*base;
	const struct config	*cfg;
	struct queue		*q;
	struct inject		*inj;		/* to queue DSNs */
	struct transport	*t;
	const struct keyring	*kr;		/* to sign DSNs */
	time_t			(*now)(void);
	struct timeval		 tick;
	struct event		*timer;
	struct sched_msg	*head;		/* oldest first: the tick, */
	struct sched_msg	*tail;		/* and so the bounce budget,
						   goes to them first */
	size_t			 nmsgs;
	size_t			 nwaiting;	/* IDLE with a wait */
	uint64_t		 next_serial;
	bool			 stopped;
	bool			 draining;	/* sched_drain: no new attempt */
};

/*
 * Callbacks carry a serial, never a pointer; they find the one
 * scheduler here. It outlives them: main calls sched_stop(), then
 * queue_close() (which runs the last queue callbacks), then sched_free()
 * (which frees the transport without callbacks).
 */
static struct sched	*sched_self;

/*
 * The transitions of relay/SCHED.md: sched_next[from] has bit (1 << to)
 * for each state a message may go to from "from". Staying in a state is
 * always allowed; leaving the scheduler (sched_forget) is allowed from
 * WRITING (the message was gone) and REMOVING only.
 */
#define SC_BIT(st)	(1u << (st))
#define SC_DECIDE	(SC_BIT(SCHED_ST_BOUNCING) | SC_BIT(SCHED_ST_HELD) | \
			    SC_BIT(SCHED_ST_REMOVING) | SC_BIT(SCHED_ST_IDLE))
static const unsigned sched_next[] = {
	[SCHED_ST_IDLE] =	SC_BIT(SCHED_ST_DELIVERING) | SC_DECIDE,
	[SCHED_ST_DELIVERING] =	SC_BIT(SCHED_ST_WRITING) |
				    SC_BIT(SCHED_ST_REMOVING) |
				    SC_BIT(SCHED_ST_IDLE),
	[SCHED_ST_WRITING] =	SC_DECIDE,
	[SCHED_ST_BOUNCING] =	SC_BIT(SCHED_ST_WRITING) |
				    SC_BIT(SCHED_ST_IDLE),
	[SCHED_ST_HELD] =	SC_DECIDE,
	[SCHED_ST_REMOVING] =	SC_BIT(SCHED_ST_IDLE),
};

static void	sched_write(struct sched *, struct sched_msg *);
static void	sched_finish(struct sched *, struct sched_msg *);
static void	sched_kick(struct sched *);
static void	sched_unwait(struct sched *, struct sched_msg *);

/* sched_strstate - a state's name for logs */
const char *
sched_strstate(enum sched_state st)
{
	switch (st) {
	case SCHED_ST_IDLE:		return "idle";
	case SCHED_ST_DELIVERING:	return "delivering";
	case SCHED_ST_WRITING:		return "writing";
	case SCHED_ST_BOUNCING:		return "bouncing";
	case SCHED_ST_HELD:		return "held";
	case SCHED_ST_REMOVING:		return "removing";
	}
	return "?";
}

/* sched_enter_state - the one place a message's state changes; traced,
   and checked against SCHED.md's transitions */
static void
sched_enter_state(struct sched_msg *m, enum sched_state st)
{
	if (m->state == st)
		return;
	if ((sched_next[m->state] & SC_BIT(st)) == 0)
		log_panic("id=%s: sched state %s -> %s is not in SCHED.md",
		    m->env.id, sched_strstate(m->state), sched_strstate(st));
	log_debug("id=%s sched state %s -> %s", m->env.id,
	    sched_strstate(m->state), sched_strstate(st));
	m->state = st;
}

/* sched_busy_state - a state with an attempt or disk operation in
   flight, whose callback is still owed */
static bool
sched_busy_state(enum sched_state st)
{
	return st == SCHED_ST_DELIVERING || st == SCHED_ST_WRITING ||
	    st == SCHED_ST_BOUNCING || st == SCHED_ST_REMOVING;
}

/* sched_find - the message with serial, or NULL */
static struct sched_msg *
sched_find(struct sched *s, uint64_t serial)
{
	struct sched_msg *m;

	/* XXX a linear scan per callback; a hash once queues are large. */
	for (m = s->head; m != NULL; m = m->next)
		if (m->serial == serial)
			return m;
	return NULL;
}

/* sched_env_copy - dst becomes a deep copy of src, through the on-disk
   text (the one reader checks it); -1 if src cannot be written */
static int
sched_env_copy(const struct envelope *src, struct envelope *dst)
{
	struct buf b;
	const char *why;
	int rc;

	buf_init(&b, 4 * ENVELOPE_PREPEND_MAX + 16 * 1024 * 1024);
	rc = envelope_format(src, &b) == 0 &&
	    envelope_parse(b.data, b.len, dst, &why) == 0 ? 0 : -1;
	buf_free(&b);
	return rc;
}

/* sched_add - track a copy of e, IDLE and due at its next_attempt */
static void
sched_add(struct sched *s, const struct envelope *e)
{
	struct sched_msg *m = xcalloc(1, sizeof(*m));

	if (sched_env_copy(e, &m->env) == -1) {
		log_warnx("id=%s: envelope cannot be copied; not scheduled",
		    e->id);
		free(m);
		return;
	}
	m->serial = ++s->next_serial;
	m->state = SCHED_ST_IDLE;
	m->due = m->env.next_attempt;
	m->prev = s->tail;
	if (s->tail != NULL)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	s->nmsgs++;
}

/* sched_unlink_free - forget m */
static void
sched_unlink_free(struct sched *s, struct sched_msg *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		s->head = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	else
		s->tail = m->prev;
	s->nmsgs--;
	sched_unwait(s, m);
	envelope_free(&m->env);
	free(m);
}

/* sched_forget - m left the queue (removed, or found gone): the end of
   its states */
static void
sched_forget(struct sched *s, struct sched_msg *m)
{
	if (m->state != SCHED_ST_WRITING && m->state != SCHED_ST_REMOVING)
		log_panic("id=%s: sched state %s -> gone is not in SCHED.md",
		    m->env.id, sched_strstate(m->state));
	log_debug("id=%s sched state %s -> gone", m->env.id,
	    sched_strstate(m->state));
	sched_unlink_free(s, m);
}

/* sched_later - nothing could start: IDLE, due relay.retry.first from
   now */
static void
sched_later(struct sched *s, struct sched_msg *m)
{
	sched_enter_state(m, SCHED_ST_IDLE);
	m->due = s->now() + s->cfg->relay.retry_first;
}

/* sched_counts - how many recipients are pending, and failed */
static void
sched_counts(const struct sched_msg *m, size_t *pending, size_t *failed)
{
	size_t i;

	*pending = *failed = 0;
	for (i = 0; i < m->env.nrcpts; i++) {
		if (m->env.rcpts[i].status == RCPT_PENDING)
			(*pending)++;
		else if (m->env.rcpts[i].status == RCPT_FAILED)
			(*failed)++;
	}
}

/* sched_record - the outcome of one recipient's attempt, classified
   here and only here, and its log */
static void
sched_record(struct sched *s, struct sched_msg *m, size_t i,
    const char *relay, int code, const char *enhanced, const char *text)
{
	struct envelope_rcpt *r = &m->env.rcpts[i];
	const char *word;
	char safe[512];

	if (code >= 200 && code < 300) {
		r->status = RCPT_DELIVERED;
		word = "sent";
	} else if (code >= 500 && code < 600) {
		r->status = RCPT_FAILED;
		word = "bounced";
	} else
		word = "deferred";
	metrics_inc(r->status == RCPT_DELIVERED ? M_RCPT_DELIVERED :
	    r->status == RCPT_FAILED ? M_RCPT_BOUNCED : M_RCPT_DEFERRED);
	if (r->status == RCPT_DELIVERED)
		metrics_observe(MH_DELIVERY_LATENCY, metrics_age(m->env.time));
	envelope_set_reply(r, code, enhanced, text);
	log_info("id=%s to=<%s> relay=%s attempt=%u delay=%llds status=%s "
	    "(%03d %s %s)", m->env.id, log_escape(r->addr, strlen(r->addr),
	    safe, sizeof(safe)), relay, m->env.attempts + 1,
	    (long long)(s->now() - m->env.time), word, code,
	    r->enhanced[0] ? r->enhanced : "-", r->text);
}

/* ---- attempts (IDLE -> DELIVERING -> WRITING) ---- */

/* sched_backoff - the wait after attempt number n (1, 2, ...) */
static time_t
sched_backoff(const struct relay_config *rc, unsigned n)
{
	uint64_t d = rc->retry_first;

	while (--n > 0 && d < rc->retry_max)
		d *= 2;
	return (time_t)(d < rc->retry_max ? d : rc->retry_max);
}

/*
 * sched_expire - past relay.retry.expire, every pending recipient fails
 * with 5.4.7, keeping what it last got in the text
 */
static void
sched_expire(const struct sched *s, struct sched_msg *m, time_t now)
{
	struct envelope_rcpt *r;
	char *text;
	size_t i;

	for (i = 0; i < m->env.nrcpts; i++) {
		r = &m->env.rcpts[i];
		if (r->status != RCPT_PENDING)
			continue;
		text = xasprintf("delivery time expired after %llds; last "
		    "reply: %03d %s %s", (long long)(now - m->env.time),
		    r->code, r->enhanced[0] ? r->enhanced : "-",
		    r->text ? r->text : "none");
		r->status = RCPT_FAILED;
		metrics_inc(M_RCPT_BOUNCED);
		envelope_set_reply(r, 0, "5.4.7", text);
		log_info("id=%s to=<%s> status=bounced (expired after "
		    "relay.retry.expire = %us)", m->env.id, r->addr,
		    s->cfg->relay.expire);
		free(text);
	}
}

/*
 * sched_attempt_end - count the attempt, schedule the next, write; or,
 * when every recipient was delivered, remove at once: the removal is
 * the durable record then (one disk operation, not an envelope rewrite
 * and a removal). A crash before it is the window a crash before the
 * rewrite was: those recipients get the message again. While stopping,
 * the outcome is written as before, for the next start.
 */
static void
sched_attempt_end(struct sched *s, struct sched_msg *m)
{
	const struct relay_config *rc = &s->cfg->relay;
	time_t now = s->now();
	size_t pending, failed;

	m->env.attempts++;
	sched_counts(m, &pending, &failed);
	if (pending > 0 && now - m->env.time >= (time_t)rc->expire) {
		sched_expire(s, m, now);
		sched_counts(m, &pending, &failed);
	}
	m->env.next_attempt = pending > 0 ? now + sched_backoff(rc,
	    m->env.attempts) : 0;
	m->due = pending > 0 ? m->env.next_attempt : SC_NEVER;
	if (pending == 0 && failed == 0 && !s->stopped) {
		sched_finish(s, m);
		return;
	}
	sched_write(s, m);
}

/* sched_delivering - the message of an attempt's callback, or NULL
   (forgotten, or not DELIVERING: a transport bug, ignored) */
static struct sched_msg *
sched_delivering(uint64_t cookie)
{
	struct sched_msg *m;

	if (sched_self == NULL || (m = sched_find(sched_self, cookie)) ==
	    NULL)
		return NULL;
	if (m->state != SCHED_ST_DELIVERING) {
		log_warnx("id=%s: transport %s called back in state %s; "
		    "ignored", m->env.id, sched_self->t->name,
		    sched_strstate(m->state));
		return NULL;
	}
	return m;
}

/* sched_rcpt_done - the transport's outcome for one recipient */
static void
sched_rcpt_done(uint64_t cookie, size_t rcpt, int code, const char *enhanced,
    const char *text, const char *relay)
{
	struct sched_msg *m;

	if ((m = sched_delivering(cookie)) == NULL || rcpt >= m->env.nrcpts)
		return;
	sched_record(sched_self, m, rcpt, relay, code, enhanced, text);
}

/* sched_attempt_done - the transport has every outcome of m's attempt:
   DELIVERING -> WRITING */
static void
sched_attempt_done(uint64_t cookie)
{
	struct sched_msg *m;

	if ((m = sched_delivering(cookie)) == NULL)
		return;
	sched_attempt_end(sched_self, m);
}

/*
 * sched_outbound_sender - MAIL FROM for mail from sender: the
 * bounce_address of the hosted domain that signs for it, if set (the
 * same organisational domain, so SPF still aligns), else sender itself;
 * the null sender stays null
 */
static const char *
sched_outbound_sender(const struct config *cfg, const char *sender)
{
	const struct domain_config *d;
	const char *at = strrchr(sender, '@');

	if (at == NULL || (d = config_signing_domain(cfg, at + 1)) == NULL ||
	    d->bounce_address == NULL)
		return sender;
	return d->bounce_address;
}

/* sched_attempt - IDLE -> DELIVERING: hand every pending recipient of m
   to the transport */
static void
sched_attempt(struct sched *s, struct sched_msg *m)
{
	char *err = NULL;
	size_t i;

	sched_enter_state(m, SCHED_ST_DELIVERING);
	/* The callbacks may run inside start (the folder transport). */
	if (s->t->start(s->t, &m->env, sched_outbound_sender(s->cfg,
	    m->env.sender), sched_rcpt_done, sched_attempt_done, m->serial,
	    &err) == 0)
		return;
	for (i = 0; i < m->env.nrcpts; i++)
		if (m->env.rcpts[i].status == RCPT_PENDING)
			sched_record(s, m, i, "none", 0, "4.3.0", err);
	free(err);
	sched_attempt_end(s, m);
}

/* ---- finishing (BOUNCING, HELD, REMOVING) ---- */

/* sched_removed - queue_remove's answer: REMOVING -> gone, or IDLE */
static void
sched_removed(uint64_t cookie, int error, const char *id)
{
	struct sched *s = sched_self;
	struct sched_msg *m;

	if (s == NULL || (m = sched_find(s, cookie)) == NULL)
		return;
	if (error != 0 && error != ENOENT) {
		log_warnx("id=%s cannot be removed: %s; trying again later",
		    id, strerror(error));
		sched_later(s, m);
		return;
	}
	log_info("id=%s removed: every recipient is final", id);
	sched_forget(s, m);
}

/* sched_bounced - the DSN for m's failed recipients is committed (or
   not): BOUNCING -> WRITING its id, which lets m be removed; or IDLE */
static void
sched_bounced(uint64_t cookie, enum inject_status st, const char *id,
    int error, const char *detail)
{
	struct sched *s = sched_self;
	struct sched_msg *m;

	(void)error;
	if (s == NULL || (m = sched_find(s, cookie)) == NULL)
		return;
	if (st != INJECT_OK) {
		log_warnx("id=%s: the bounce to <%s> was not queued: %s; "
		    "trying again later", m->env.id, m->env.sender, detail);
		sched_later(s, m);
		return;
	}
	log_info("id=%s bounce id=%s to <%s>", m->env.id, id, m->env.sender);
	metrics_inc(M_BOUNCES_SENT);
	snprintf(m->env.dsn, sizeof(m->env.dsn), "%s", id);
	/* inject's queued hook has scheduled the bounce itself */
	sched_write(s, m);	/* then sched_written finishes it */
}

/*
 * sched_hold - limits.bounces_per_hour refused m's bounce: HELD, as it
 * is (failed recipients, no dsn); sched_finish runs again at reset,
 * when the sender's next window starts
 */
static void
sched_hold(struct sched_msg *m, time_t reset)
{
	char when[LOG_UTC_LEN];

	log_info("id=%s: bounce to <%s> held until %s "
	    "(limits.bounces_per_hour)", m->env.id, m->env.sender,
	    log_utc(reset, when));
	sched_enter_state(m, SCHED_ST_HELD);
	m->due = reset;
}

/*
 * sched_finish - every recipient is final (from IDLE, HELD, WRITING, or
 * DELIVERING when every one was delivered):
 * BOUNCING while the bounce for its failed recipients (if any, and if
 * it has a sender) is queued, HELD if that is over
 * limits.bounces_per_hour, else REMOVING; IDLE if nothing could start
 * (stopped, or a refusal: due again after relay.retry.first)
 */
static void
sched_finish(struct sched *s, struct sched_msg *m)
{
	size_t pending, failed;
	char *err = NULL;
	time_t now = s->now(), reset = 0;

	if (s->stopped) {
		sched_enter_state(m, SCHED_ST_IDLE);
		return;
	}
	sched_counts(m, &pending, &failed);
	if (failed > 0 && m->env.dsn[0] == '\0' && m->env.sender[0] != '\0') {
		if (budget_bounce(s->cfg, m->env.sender, now, &reset) == -1) {
			/* never in the past: the tick must not spin */
			sched_hold(m, reset > now ? reset : now + 1);
			return;
		}
		sched_enter_state(m, SCHED_ST_BOUNCING);
		if (dsn_queue(s->cfg, s->kr, s->inj, s->q, &m->env, now,
		    sched_bounced, m->serial, &err) == -1) {
			log_warnx("id=%s: cannot write the bounce to <%s>: "
			    "%s; kept, trying again later", m->env.id,
			    m->env.sender, err);
			free(err);
			sched_later(s, m);
		}
		return;
	}
	if (failed > 0 && m->env.sender[0] == '\0')
		log_info("id=%s: %zu recipient(s) failed; a bounce gets no "
		    "bounce", m->env.id, failed);
	sched_enter_state(m, SCHED_ST_REMOVING);
	if (queue_remove(s->q, m->env.id, sched_removed, m->serial) == -1) {
		log_warn("id=%s: queue_remove", m->env.id);
		sched_later(s, m);
	}
}

/* ---- the envelope on disk (WRITING) ---- */

/*
 * sched_written - queue_update's answer: WRITING -> IDLE (recipients
 * pending), on to sched_finish (none), WRITING again (it failed: an
 * update is idempotent), or gone (the message was)
 */
static void
sched_written(uint64_t cookie, int error, const char *id)
{
	struct sched *s = sched_self;
	struct sched_msg *m;
	size_t pending, failed;

	if (s == NULL || (m = sched_find(s, cookie)) == NULL)
		return;
	if (error != 0) {
		/* The old envelope stands: recipients it lists as pending
		   may be tried again (a duplicate, never a loss). */
		log_warnx("id=%s envelope update failed: %s", id,
		    strerror(error));
		if (error == ENOENT) {
			sched_forget(s, m);
			return;
		}
		/* XXX at once, as long as it fails */
		sched_write(s, m);
		return;
	}
	sched_counts(m, &pending, &failed);
	if (pending == 0)
		sched_finish(s, m);
	else
		sched_enter_state(m, SCHED_ST_IDLE);
}

/* sched_write - replace m's envelope on disk: WRITING (from DELIVERING,
   BOUNCING or WRITING), or IDLE if it cannot start */
static void
sched_write(struct sched *s, struct sched_msg *m)
{
	if (s->stopped) {
		sched_enter_state(m, SCHED_ST_IDLE);
		return;
	}
	sched_enter_state(m, SCHED_ST_WRITING);
	if (queue_update(s->q, &m->env, sched_written, m->serial) == -1) {
		log_warn("id=%s: queue_update", m->env.id);
		sched_later(s, m);
	}
}

/* ---- destinations that are down ---- */

/*
 * sched_waits - m, due with recipients pending, goes to destinations the
 * transport says are down: it waits for them, IDLE in memory with no
 * attempt and no disk operation, due when the first of them may be
 * probed. The question is asked without the envelope first (still_down)
 * when m waited already.
 */
static bool
sched_waits(struct sched *s, struct sched_msg *m, time_t now)
{
	struct transport *t = s->t;
	time_t until;
	uint32_t wait;

	if (t->down == NULL)
		return false;
	if (m->wait != 0 && (until = t->still_down(t, m->wait)) > now) {
		m->due = until;
		return true;
	}
	if ((until = t->down(t, &m->env, &wait)) <= now) {
		sched_unwait(s, m);
		return false;
	}
	if (m->wait == 0)
		s->nwaiting++;
	m->wait = wait;
	m->due = until;
	log_debug("id=%s waits: its destinations are down", m->env.id);
	return true;
}

/* sched_unwait - m no longer waits for a destination */
static void
sched_unwait(struct sched *s, struct sched_msg *m)
{
	if (m->wait == 0)
		return;
	m->wait = 0;
	s->nwaiting--;
}

/* sched_up - the transport's up_cb: a destination answers again, so
   every message that waits is due now (down() sorts them out again) */
static void
sched_up(void *arg)
{
	struct sched *s = arg;
	struct sched_msg *m;
	time_t now = s->now();

	for (m = s->head; m != NULL; m = m->next)
		if (m->wait != 0 && m->state == SCHED_ST_IDLE && m->due > now)
			m->due = now;
	sched_kick(s);
}

/* ---- the timer ---- */

/* sched_tick - act on the IDLE and HELD messages that are due, a batch
   at a time */
static void
sched_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct sched_msg *m, *next;
	time_t now = s->now();
	size_t pending, failed;
	unsigned started = 0;

	(void)fd;
	(void)what;
	if (s->stopped)
		return;
	for (m = s->head; m != NULL && !s->draining; m = next) {
		next = m->next;
		if ((m->state != SCHED_ST_IDLE && m->state != SCHED_ST_HELD) ||
		    m->due > now)
			continue;
		if (started == SC_BATCH) {
			sched_kick(s);
			return;
		}
		sched_counts(m, &pending, &failed);
		if (pending > 0 && sched_waits(s, m, now))
			continue;
		started++;
		sched_unwait(s, m);
		if (pending == 0)
			sched_finish(s, m);
		else
			sched_attempt(s, m);
	}
	(void)evtimer_add(s->timer, &s->tick);
}

/* sched_kick - run the tick at once (it re-arms itself every tick) */
static void
sched_kick(struct sched *s)
{
	struct timeval now = { 0, 0 };

	if (!s->stopped)
		(void)evtimer_add(s->timer, &now);
}

/* ---- setup ---- */

/* sched_time - the real clock */
static time_t
sched_time(void)
{
	return time(NULL);
}

/* sched_new_with - the scheduler over a transport the caller chose */
struct sched *
sched_new_with(struct event_base *base, const struct config *cfg,
    struct queue *q, struct inject *inj, const struct keyring *kr,
    const struct sched_seam *seam, char **err)
{
	struct sched *s;
	unsigned ms = seam->tick_ms ? seam->tick_ms : SC_TICK_MS;

	*err = NULL;
	if (sched_self != NULL) {
		*err = xstrdup("sched: a scheduler exists already");
		seam->transport->free(seam->transport);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->cfg = cfg;
	s->q = q;
	s->inj = inj;
	s->t = seam->transport;
	s->kr = kr;
	s->now = seam->now ? seam->now : sched_time;
	s->t->up_cb = sched_up;
	s->t->up_arg = s;
	s->tick.tv_sec = ms / 1000;
	s->tick.tv_usec = (ms % 1000) * 1000;
	if ((s->timer = evtimer_new(base, sched_tick, s)) == NULL) {
		*err = xstrdup("sched: cannot create the timer");
		s->t->free(s->t);
		free(s);
		return NULL;
	}
	sched_self = s;
	return s;
}

/* sched_new - the scheduler, with relay.mode's transport */
struct sched *
sched_new(struct event_base *base, const struct config *cfg,
    struct queue *q, struct inject *inj, struct dns *dns,
    const struct keyring *kr, char **err)
{
	struct sched_seam seam;

	memset(&seam, 0, sizeof(seam));
	seam.transport = cfg->relay.mode == RELAY_DIRECTORY ?
	    maildir_new(cfg, q, err) :
	    deliver_transport_new(base, cfg, dns, q, err);
	if (seam.transport == NULL)
		return NULL;
	return sched_new_with(base, cfg, q, inj, kr, &seam, err);
}

/* sched_load - queue_foreach's callback at start */
static void
sched_load(const struct envelope *e, void *arg)
{
	sched_add(arg, e);
}

/* sched_bad - queue_foreach's callback for an envelope it cannot read */
static void
sched_bad(const char *id, const char *why, void *arg)
{
	(void)arg;
	log_warnx("id=%s: not scheduled: %s", id, why);
}

/* sched_start - load the queue and start the timer */
int
sched_start(struct sched *s)
{
	if (queue_foreach(s->q, sched_load, sched_bad, s) == -1)
		return -1;
	log_info("relay: mode=%s messages=%zu", s->t->name, s->nmsgs);
	sched_kick(s);
	return (int)s->nmsgs;
}

/* sched_queued - a new message is durable: load it, try it now */
void
sched_queued(struct sched *s, const char *id)
{
	struct envelope e;
	const char *why;

	memset(&e, 0, sizeof(e));
	if (queue_load_envelope(s->q, id, &e, &why) == -1) {
		log_warnx("id=%s: not scheduled: %s", id, why);
		return;
	}
	sched_add(s, &e);
	envelope_free(&e);
	sched_kick(s);
}

/* sched_set_keys - sign bounces with kr from now on (a reload) */
void
sched_set_keys(struct sched *s, const struct keyring *kr)
{
	s->kr = kr;
}

/* sched_drain - finish what is in flight, start nothing new */
void
sched_drain(struct sched *s)
{
	if (s == NULL || s->draining)
		return;
	s->draining = true;
	if (s->t->drain != NULL)
		s->t->drain(s->t);
}

/* sched_busy - attempts and disk operations still in flight */
size_t
sched_busy(const struct sched *s)
{
	const struct sched_msg *m;
	size_t n = 0;

	for (m = s ? s->head : NULL; m != NULL; m = m->next)
		if (sched_busy_state(m->state))
			n++;
	return n;
}

/* sched_stats - how many messages, and the oldest acceptance time */
void
sched_stats(const struct sched *s, size_t *n, time_t *oldest)
{
	const struct sched_msg *m;

	*n = 0;
	*oldest = 0;
	for (m = s ? s->head : NULL; m != NULL; m = m->next) {
		if (*n == 0 || m->env.time < *oldest)
			*oldest = m->env.time;
		(*n)++;
	}
}

/* sched_info - the scheduler's own counts */
void
sched_info(const struct sched *s, struct sched_info *si)
{
	memset(si, 0, sizeof(*si));
	if (s == NULL)
		return;
	si->queued = s->nmsgs;
	si->waiting = s->nwaiting;
	si->busy = sched_busy(s);
}

/* sched_msg_state - the state of message id */
int
sched_msg_state(const struct sched *s, const char *id, enum sched_state *st)
{
	const struct sched_msg *m;

	for (m = s ? s->head : NULL; m != NULL; m = m->next)
		if (strcmp(m->env.id, id) == 0) {
			*st = m->state;
			return 0;
		}
	return -1;
}

/* sched_stop - no new work */
void
sched_stop(struct sched *s)
{
	if (s == NULL)
		return;
	s->stopped = true;
	evtimer_del(s->timer);
}

/* sched_free - free everything */
void
sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	s->t->free(s->t);	/* no callbacks from here on */
	while (s->head != NULL)
		sched_unlink_free(s, s->head);
	event_free(s->timer);
	if (sched_self == s)
		sched_self = NULL;
	budget_free();
	free(s);
}
