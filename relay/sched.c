/*
 * sched - the delivery scheduler; see sched.h, and relay/SCHED.md for
 * the states.
 *
 * What is in memory per queued message is a compact entry (struct
 * sched_msg: id, serial, due time, state, acceptance time, a few links;
 * about a hundred bytes with its heap and hash slots), never the whole
 * envelope: like Postfix's qmgr, only an active set, at most
 * SC_ACTIVE_MAX messages being worked on, has its envelope loaded
 * (queue_load_envelope), and it is freed when the message comes to rest
 * (IDLE or HELD) again. Three structures index the entries:
 *
 *   - a binary min-heap of the resting ones by (due, serial), so the
 *     tick looks only at what is due, oldest serial first among equals;
 *   - a hash of all of them by serial, for the callbacks;
 *   - a list of all of them by acceptance time, oldest first, for
 *     sched_stats (its head) and for walking them all (sched_up,
 *     sched_free).
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
#define SC_LOOK_MAX	1024	/* due entries looked at per scan, likewise */
#define SC_NEVER	((time_t)INT64_MAX)
#define SC_NOSLOT	UINT32_MAX	/* not in the heap */

/*
 * The active set: at most this many envelopes in memory, a few KB each
 * with their DKIM signatures (Postfix's qmgr_message_active_limit
 * defaults to 20000); a tick that finds it full leaves the rest of what
 * is due in the heap until one comes to rest or leaves. A constant, not
 * a setting: it bounds memory, not throughput, which the attempts in
 * flight below limit long before.
 */
#define SC_ACTIVE_MAX	10000

/*
 * Attempts in flight at once: each holds an open message file in the
 * transport, and connections limit what runs anyway (relay.connections),
 * so a drained backlog starts this many and no more.
 */
#define SC_DELIVERING_MIN	64
#define SC_DELIVERING_PER_CONN	2

/* One queued message: the index entry. Found by serial from the
   callbacks. */
struct sched_msg {
	uint64_t		 serial;
	time_t			 due;	/* IDLE, HELD: when to act again */
	time_t			 time;	/* accepted (the envelope's) */
	struct envelope		*env;	/* loaded (active), or NULL */
	struct sched_msg	*prev, *next;	/* by time, oldest first */
	struct sched_msg	*hnext;	/* s->buckets chain */
	uint32_t		 slot;	/* in s->heap, or SC_NOSLOT */
	uint32_t		 wait;	/* IDLE: the transport's down()
					   destination it waits for; 0 */
	char			 id[QUEUE_ID_LEN + 1];
	uint8_t			 state;	/* enum sched_state */
	bool			 dirty;	/* env differs from the disk's */
	uint8_t			 admin;	/* 1 + the sched_admin_op in
					   flight, with its waiter in
					   s->waiters; 0: none */
};

/* An admin's change in flight (sched_admin), until the message settles */
struct sched_waiter {
	uint64_t		 serial;	/* the message */
	uint64_t		 cookie;	/* the caller's */
	sched_admin_cb		 cb;
	const char		*error;		/* static; NULL: done */
	char			 id[QUEUE_ID_LEN + 1];
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
	struct sched_msg	*head;		/* oldest accepted first */
	struct sched_msg	*tail;
	struct sched_msg	**heap;		/* resting: by due, serial */
	size_t			 nheap, heapcap;
	struct sched_msg	**buckets;	/* by serial */
	size_t			 nbuckets;	/* a power of two */
	size_t			 nmsgs;
	size_t			 nwaiting;	/* IDLE with a wait */
	size_t			 nbusy;		/* sched_busy */
	size_t			 ndelivering;
	size_t			 nactive;	/* envelopes loaded */
	size_t			 active_high;	/* the most at once */
	uint64_t		 loads;		/* queue_load_envelope calls */
	uint64_t		 looked;	/* due entries the tick took */
	bool			 starved;	/* a limit stopped the tick */
	uint64_t		 next_serial;
	bool			 stopped;
	bool			 draining;	/* sched_drain: no new attempt */
	struct sched_waiter	*waiters;	/* admin changes in flight */
	size_t			 nwaiters, waitcap;
	struct sched_waiter	*settled;	/* their answers, owed */
	size_t			 nsettled, settlecap;
	struct event		*settle_ev;	/* delivers them */
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
 * WRITING (the message was gone) and REMOVING only, and from IDLE and
 * HELD when its envelope is gone (sched_unreadable).
 */
#define SC_BIT(st)	(1u << (st))
#define SC_DECIDE	(SC_BIT(SCHED_ST_BOUNCING) | SC_BIT(SCHED_ST_HELD) | \
			    SC_BIT(SCHED_ST_REMOVING) | SC_BIT(SCHED_ST_IDLE))
static const unsigned sched_next[] = {
	[SCHED_ST_IDLE] =	SC_BIT(SCHED_ST_DELIVERING) | SC_DECIDE |
				    SC_BIT(SCHED_ST_WRITING) |
				    SC_BIT(SCHED_ST_ONHOLD),
	[SCHED_ST_DELIVERING] =	SC_BIT(SCHED_ST_WRITING) |
				    SC_BIT(SCHED_ST_REMOVING) |
				    SC_BIT(SCHED_ST_IDLE),
	[SCHED_ST_WRITING] =	SC_DECIDE | SC_BIT(SCHED_ST_ONHOLD),
	[SCHED_ST_BOUNCING] =	SC_BIT(SCHED_ST_WRITING) |
				    SC_BIT(SCHED_ST_IDLE),
	[SCHED_ST_HELD] =	SC_DECIDE | SC_BIT(SCHED_ST_WRITING),
	[SCHED_ST_REMOVING] =	SC_BIT(SCHED_ST_IDLE),
	[SCHED_ST_ONHOLD] =	SC_DECIDE | SC_BIT(SCHED_ST_WRITING),
};

static void	sched_write(struct sched *, struct sched_msg *);
static void	sched_finish(struct sched *, struct sched_msg *);
static void	sched_kick(struct sched *);
static void	sched_unwait(struct sched *, struct sched_msg *);
static void	sched_settle(struct sched *, struct sched_msg *, bool gone);

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
	case SCHED_ST_ONHOLD:		return "on hold";
	}
	return "?";
}

/* sched_resting - a state with nothing in flight and no envelope
   needed */
static bool
sched_resting(enum sched_state st)
{
	return st == SCHED_ST_IDLE || st == SCHED_ST_HELD ||
	    st == SCHED_ST_ONHOLD;
}

/* sched_heaped - a resting state that comes due (the heap's): not on
   hold, which waits for its release only */
static bool
sched_heaped(enum sched_state st)
{
	return st == SCHED_ST_IDLE || st == SCHED_ST_HELD;
}

/* sched_busy_state - a state with an attempt or disk operation in
   flight, whose callback is still owed */
static bool
sched_busy_state(enum sched_state st)
{
	return st == SCHED_ST_DELIVERING || st == SCHED_ST_WRITING ||
	    st == SCHED_ST_BOUNCING || st == SCHED_ST_REMOVING;
}

/* ---- the heap of resting messages, by (due, serial) ---- */

/* sched_before - a comes out of the heap before b */
static bool
sched_before(const struct sched_msg *a, const struct sched_msg *b)
{
	return a->due < b->due || (a->due == b->due && a->serial < b->serial);
}

/* sched_heap_put - m at heap position i */
static void
sched_heap_put(struct sched *s, size_t i, struct sched_msg *m)
{
	s->heap[i] = m;
	m->slot = (uint32_t)i;
}

/* sched_heap_up - move the entry at i towards the root */
static void
sched_heap_up(struct sched *s, size_t i)
{
	struct sched_msg *m = s->heap[i];

	while (i > 0 && sched_before(m, s->heap[(i - 1) / 2])) {
		sched_heap_put(s, i, s->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	sched_heap_put(s, i, m);
}

/* sched_heap_down - move the entry at i towards the leaves */
static void
sched_heap_down(struct sched *s, size_t i)
{
	struct sched_msg *m = s->heap[i];
	size_t c;

	while ((c = 2 * i + 1) < s->nheap) {
		if (c + 1 < s->nheap && sched_before(s->heap[c + 1],
		    s->heap[c]))
			c++;
		if (!sched_before(s->heap[c], m))
			break;
		sched_heap_put(s, i, s->heap[c]);
		i = c;
	}
	sched_heap_put(s, i, m);
}

/* sched_heap_push - m comes to rest */
static void
sched_heap_push(struct sched *s, struct sched_msg *m)
{
	if (s->nheap == s->heapcap) {
		s->heapcap = s->heapcap ? 2 * s->heapcap : 1024;
		if (s->heapcap >= SC_NOSLOT)
			log_panic("sched: more than %u messages at rest",
			    SC_NOSLOT);
		s->heap = xreallocarray(s->heap, s->heapcap,
		    sizeof(*s->heap));
	}
	sched_heap_put(s, s->nheap++, m);
	sched_heap_up(s, m->slot);
}

/* sched_heap_remove - m leaves the heap */
static void
sched_heap_remove(struct sched *s, struct sched_msg *m)
{
	size_t i = m->slot;
	struct sched_msg *last = s->heap[--s->nheap];

	m->slot = SC_NOSLOT;
	if (i == s->nheap)
		return;
	sched_heap_put(s, i, last);
	sched_heap_up(s, i);
	sched_heap_down(s, last->slot);
}

/* sched_set_due - m is due at due, its place in the heap (if it has
   one) following */
static void
sched_set_due(struct sched *s, struct sched_msg *m, time_t due)
{
	m->due = due;
	if (m->slot == SC_NOSLOT)
		return;
	sched_heap_up(s, m->slot);
	sched_heap_down(s, m->slot);
}

/* ---- envelopes: the active set ---- */

/* sched_room - the active set and the attempts in flight are below
   their limits; a tick that stopped at one runs again once they are */
static bool
sched_room(const struct sched *s, bool delivering)
{
	size_t dmax = SC_DELIVERING_PER_CONN * s->cfg->relay.connections;

	if (dmax < SC_DELIVERING_MIN)
		dmax = SC_DELIVERING_MIN;
	return s->nactive < SC_ACTIVE_MAX &&
	    (!delivering || s->ndelivering < dmax);
}

/* sched_unstarve - a limit has room again: a tick that stopped at it
   runs at once */
static void
sched_unstarve(struct sched *s)
{
	if (s->starved && sched_room(s, true)) {
		s->starved = false;
		sched_kick(s);
	}
}

/* sched_take_env - m's envelope is e (moved, not copied) */
static void
sched_take_env(struct sched *s, struct sched_msg *m, struct envelope *e)
{
	m->env = xmalloc(sizeof(*m->env));
	*m->env = *e;
	memset(e, 0, sizeof(*e));
	if (++s->nactive > s->active_high)
		s->active_high = s->nactive;
}

/* sched_load - load m's envelope from disk; -1 with *why (static) if it
   is gone or damaged */
static int
sched_load(struct sched *s, struct sched_msg *m, const char **why)
{
	struct envelope e;

	if (m->env != NULL)
		return 0;
	s->loads++;
	memset(&e, 0, sizeof(e));
	if (queue_load_envelope(s->q, m->id, &e, why) == -1)
		return -1;
	sched_take_env(s, m, &e);
	return 0;
}

/* sched_unload - free m's envelope, unless memory holds what the disk
   does not (then it stays until written, or until the message is gone) */
static void
sched_unload(struct sched *s, struct sched_msg *m, bool force)
{
	if (m->env == NULL || (m->dirty && !force))
		return;
	envelope_free(m->env);
	free(m->env);
	m->env = NULL;
	m->dirty = false;
	s->nactive--;
	sched_unstarve(s);
}

/*
 * sched_enter_state - the one place a message's state changes; traced,
 * and checked against SCHED.md's transitions. The heap holds exactly
 * the resting messages that come due (IDLE, HELD), a message that comes
 * to rest lets go of its envelope, and an admin's change waiting for it
 * is settled.
 */
static void
sched_enter_state(struct sched *s, struct sched_msg *m, enum sched_state st)
{
	enum sched_state old = m->state;

	if (old == st)
		return;
	if ((sched_next[old] & SC_BIT(st)) == 0)
		log_panic("id=%s: sched state %s -> %s is not in SCHED.md",
		    m->id, sched_strstate(old), sched_strstate(st));
	log_debug("id=%s sched state %s -> %s", m->id, sched_strstate(old),
	    sched_strstate(st));
	m->state = st;
	s->nbusy += sched_busy_state(st);
	s->nbusy -= sched_busy_state(old);
	s->ndelivering += st == SCHED_ST_DELIVERING;
	s->ndelivering -= old == SCHED_ST_DELIVERING;
	if (sched_heaped(old) && !sched_heaped(st))
		sched_heap_remove(s, m);
	else if (!sched_heaped(old) && sched_heaped(st))
		sched_heap_push(s, m);
	if (sched_resting(st)) {
		sched_unload(s, m, false);
		sched_settle(s, m, false);
	}
	if (old == SCHED_ST_DELIVERING)
		sched_unstarve(s);
}

/* sched_rest - m comes to rest in st (IDLE, HELD, ONHOLD), due at due */
static void
sched_rest(struct sched *s, struct sched_msg *m, enum sched_state st,
    time_t due)
{
	sched_set_due(s, m, due);
	sched_enter_state(s, m, st);
	sched_unload(s, m, false);	/* also when it rested already */
}

/* ---- the index: by serial, by time ---- */

/* sched_find - the message with serial, or NULL */
static struct sched_msg *
sched_find(struct sched *s, uint64_t serial)
{
	struct sched_msg *m;

	if (s->nbuckets == 0)
		return NULL;
	for (m = s->buckets[serial & (s->nbuckets - 1)]; m != NULL;
	    m = m->hnext)
		if (m->serial == serial)
			return m;
	return NULL;
}

/* sched_hash_insert - m into the serial hash */
static void
sched_hash_insert(struct sched *s, struct sched_msg *m)
{
	struct sched_msg **b = &s->buckets[m->serial & (s->nbuckets - 1)];

	m->hnext = *b;
	*b = m;
}

/* sched_hash_grow - twice the buckets (serials are consecutive, so the
   low bits spread them evenly): one per message at most */
static void
sched_hash_grow(struct sched *s)
{
	struct sched_msg *m;

	free(s->buckets);
	s->nbuckets = s->nbuckets ? 2 * s->nbuckets : 1024;
	s->buckets = xcalloc(s->nbuckets, sizeof(*s->buckets));
	for (m = s->head; m != NULL; m = m->next)
		sched_hash_insert(s, m);
}

/*
 * sched_add - index a message from e (id, acceptance time, next
 * attempt), IDLE and due at its next_attempt; its envelope is not kept
 * here (sched_queued may hand it over). The time list is kept in order
 * by walking back from its newest end: a new message is nearly always
 * the newest, and the queue is read oldest first.
 */
static struct sched_msg *
sched_add_entry(struct sched *s, const char *id, time_t time, time_t due)
{
	struct sched_msg *m = xcalloc(1, sizeof(*m)), *after;

	m->serial = ++s->next_serial;
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->time = time;
	m->due = due;
	m->state = SCHED_ST_IDLE;
	m->slot = SC_NOSLOT;
	for (after = s->tail; after != NULL && after->time > m->time;
	    after = after->prev)
		;
	m->prev = after;
	m->next = after != NULL ? after->next : s->head;
	if (m->next != NULL)
		m->next->prev = m;
	else
		s->tail = m;
	if (after != NULL)
		after->next = m;
	else
		s->head = m;
	s->nmsgs++;
	if (s->nmsgs > s->nbuckets)
		sched_hash_grow(s);
	else
		sched_hash_insert(s, m);
	sched_heap_push(s, m);
	return m;
}

/* sched_add - the index entry of a message whose envelope is e */
static struct sched_msg *
sched_add(struct sched *s, const struct envelope *e)
{
	return sched_add_entry(s, e->id, e->time, e->next_attempt);
}

/* sched_unlink_free - forget m */
static void
sched_unlink_free(struct sched *s, struct sched_msg *m)
{
	struct sched_msg **pp;

	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		s->head = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	else
		s->tail = m->prev;
	for (pp = &s->buckets[m->serial & (s->nbuckets - 1)]; *pp != m;
	    pp = &(*pp)->hnext)
		;
	*pp = m->hnext;
	if (m->slot != SC_NOSLOT)
		sched_heap_remove(s, m);
	s->nbusy -= sched_busy_state(m->state);
	s->ndelivering -= m->state == SCHED_ST_DELIVERING;
	s->nmsgs--;
	sched_unwait(s, m);
	sched_unload(s, m, true);
	sched_settle(s, m, true);
	free(m);
}

/*
 * sched_unreadable - the envelope of resting message m cannot be loaded
 * (errno as queue_load_envelope left it): gone (ENOENT: removed behind
 * the scheduler's back), IDLE or HELD -> gone; anything else (damaged,
 * out of file descriptors) may pass, so it stays, due again after
 * relay.retry.first, and is never dropped unseen
 */
static void
sched_unreadable(struct sched *s, struct sched_msg *m, const char *why,
    time_t now)
{
	if (errno != ENOENT) {
		log_warnx("id=%s: cannot load its envelope: %s; trying again "
		    "in %us", m->id, why, s->cfg->relay.retry_first);
		sched_set_due(s, m, now + s->cfg->relay.retry_first);
		return;
	}
	log_warnx("id=%s: no longer scheduled: %s", m->id, why);
	log_debug("id=%s sched state %s -> gone", m->id,
	    sched_strstate(m->state));
	sched_unlink_free(s, m);
}

/* sched_forget - m left the queue (removed, or found gone): the end of
   its states */
static void
sched_forget(struct sched *s, struct sched_msg *m)
{
	if (m->state != SCHED_ST_WRITING && m->state != SCHED_ST_REMOVING)
		log_panic("id=%s: sched state %s -> gone is not in SCHED.md",
		    m->id, sched_strstate(m->state));
	log_debug("id=%s sched state %s -> gone", m->id,
	    sched_strstate(m->state));
	sched_unlink_free(s, m);
}

/* sched_later - nothing could start: IDLE, due relay.retry.first from
   now */
static void
sched_later(struct sched *s, struct sched_msg *m)
{
	sched_rest(s, m, SCHED_ST_IDLE, s->now() + s->cfg->relay.retry_first);
}

/* sched_counts - how many recipients are pending, and failed */
static void
sched_counts(const struct sched_msg *m, size_t *pending, size_t *failed)
{
	size_t i;

	*pending = *failed = 0;
	for (i = 0; i < m->env->nrcpts; i++) {
		if (m->env->rcpts[i].status == RCPT_PENDING)
			(*pending)++;
		else if (m->env->rcpts[i].status == RCPT_FAILED)
			(*failed)++;
	}
}

/* sched_record - the outcome of one recipient's attempt, classified
   here and only here, and its log */
static void
sched_record(struct sched *s, struct sched_msg *m, size_t i,
    const char *relay, int code, const char *enhanced, const char *text)
{
	struct envelope_rcpt *r = &m->env->rcpts[i];
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
		metrics_observe(MH_DELIVERY_LATENCY, metrics_age(m->env->time));
	envelope_set_reply(r, code, enhanced, text);
	log_info("id=%s to=<%s> relay=%s attempt=%u delay=%llds status=%s "
	    "(%03d %s %s)", m->id, log_escape(r->addr, strlen(r->addr),
	    safe, sizeof(safe)), relay, m->env->attempts + 1,
	    (long long)(s->now() - m->env->time), word, code,
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

	for (i = 0; i < m->env->nrcpts; i++) {
		r = &m->env->rcpts[i];
		if (r->status != RCPT_PENDING)
			continue;
		text = xasprintf("delivery time expired after %llds; last "
		    "reply: %03d %s %s", (long long)(now - m->env->time),
		    r->code, r->enhanced[0] ? r->enhanced : "-",
		    r->text ? r->text : "none");
		r->status = RCPT_FAILED;
		metrics_inc(M_RCPT_BOUNCED);
		envelope_set_reply(r, 0, "5.4.7", text);
		log_info("id=%s to=<%s> status=bounced (expired after "
		    "relay.retry.expire = %us)", m->id, r->addr,
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

	m->env->attempts++;
	sched_counts(m, &pending, &failed);
	if (pending > 0 && now - m->env->time >= (time_t)rc->expire) {
		sched_expire(s, m, now);
		sched_counts(m, &pending, &failed);
	}
	m->env->next_attempt = pending > 0 ? now + sched_backoff(rc,
	    m->env->attempts) : 0;
	m->due = pending > 0 ? m->env->next_attempt : SC_NEVER;
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
		    "ignored", m->id, sched_self->t->name,
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

	if ((m = sched_delivering(cookie)) == NULL || rcpt >= m->env->nrcpts)
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

	sched_enter_state(s, m, SCHED_ST_DELIVERING);
	m->dirty = true;	/* outcomes go into memory first */
	/* The callbacks may run inside start (the folder transport). */
	if (s->t->start(s->t, m->env, sched_outbound_sender(s->cfg,
	    m->env->sender), sched_rcpt_done, sched_attempt_done, m->serial,
	    &err) == 0)
		return;
	for (i = 0; i < m->env->nrcpts; i++)
		if (m->env->rcpts[i].status == RCPT_PENDING)
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
	if (m->admin == 1 + SCHED_DELETE)
		log_info("id=%s deleted from the queue", id);
	else
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
		    "trying again later", m->id, m->env->sender, detail);
		sched_later(s, m);
		return;
	}
	log_info("id=%s bounce id=%s to <%s>", m->id, id, m->env->sender);
	metrics_inc(M_BOUNCES_SENT);
	snprintf(m->env->dsn, sizeof(m->env->dsn), "%s", id);
	m->dirty = true;
	/* inject's queued hook has scheduled the bounce itself */
	sched_write(s, m);	/* then sched_written finishes it */
}

/*
 * sched_hold - limits.bounces_per_hour refused m's bounce: HELD, as it
 * is (failed recipients, no dsn); sched_finish runs again at reset,
 * when the sender's next window starts
 */
static void
sched_hold(struct sched *s, struct sched_msg *m, time_t reset)
{
	char when[LOG_UTC_LEN];

	log_info("id=%s: bounce to <%s> held until %s "
	    "(limits.bounces_per_hour)", m->id, m->env->sender,
	    log_utc(reset, when));
	sched_rest(s, m, SCHED_ST_HELD, reset);
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
		sched_enter_state(s, m, SCHED_ST_IDLE);
		return;
	}
	sched_counts(m, &pending, &failed);
	if (failed > 0 && m->env->dsn[0] == '\0' && m->env->sender[0] != '\0') {
		/* an admin's bounce is asked for: not counted, never held */
		if (m->admin != 1 + SCHED_BOUNCE &&
		    budget_bounce(s->cfg, m->env->sender, now, &reset) == -1) {
			/* never in the past: the tick must not spin */
			sched_hold(s, m, reset > now ? reset : now + 1);
			return;
		}
		sched_enter_state(s, m, SCHED_ST_BOUNCING);
		if (dsn_queue(s->cfg, s->kr, s->inj, s->q, m->env, now,
		    sched_bounced, m->serial, &err) == -1) {
			log_warnx("id=%s: cannot write the bounce to <%s>: "
			    "%s; kept, trying again later", m->id,
			    m->env->sender, err);
			free(err);
			sched_later(s, m);
		}
		return;
	}
	if (failed > 0 && m->env->sender[0] == '\0')
		log_info("id=%s: %zu recipient(s) failed; a bounce gets no "
		    "bounce", m->id, failed);
	sched_enter_state(s, m, SCHED_ST_REMOVING);
	if (queue_remove(s->q, m->id, sched_removed, m->serial) == -1) {
		log_warn("id=%s: queue_remove", m->id);
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
	m->dirty = false;	/* the disk has it all now */
	if (m->env->held > 0) {
		sched_enter_state(s, m, SCHED_ST_ONHOLD);
		return;
	}
	sched_counts(m, &pending, &failed);
	if (pending == 0)
		sched_finish(s, m);
	else
		sched_enter_state(s, m, SCHED_ST_IDLE);
}

/* sched_write - replace m's envelope on disk: WRITING (from DELIVERING,
   BOUNCING or WRITING), or IDLE if it cannot start */
static void
sched_write(struct sched *s, struct sched_msg *m)
{
	if (s->stopped) {
		sched_enter_state(s, m, SCHED_ST_IDLE);
		return;
	}
	sched_enter_state(s, m, SCHED_ST_WRITING);
	if (queue_update(s->q, m->env, sched_written, m->serial) == -1) {
		log_warn("id=%s: queue_update", m->id);
		sched_later(s, m);
	}
}

/* ---- destinations that are down ---- */

/*
 * sched_waits - m, due with recipients pending, goes to destinations the
 * transport says are down: it waits for them, IDLE with no attempt and
 * no disk operation (and no envelope in memory), due when the first of
 * them may be probed. The question is asked without the envelope first
 * (still_down: m waited already, or the transport can tell anyway);
 * *need_env says the answer needs it (load it and ask again). A message past relay.retry.expire never
 * waits: its attempt (deferred at once by the transport) expires it.
 */
static bool
sched_waits(struct sched *s, struct sched_msg *m, time_t now,
    bool *need_env)
{
	struct transport *t = s->t;
	time_t until;
	uint32_t wait = m->wait;

	*need_env = false;
	if (t->down == NULL || now - m->time >= (time_t)s->cfg->relay.expire) {
		sched_unwait(s, m);
		return false;
	}
	if ((until = t->still_down(t, &wait)) <= now) {
		if (m->env == NULL) {
			*need_env = true;
			return false;
		}
		if ((until = t->down(t, m->env, &wait)) <= now) {
			sched_unwait(s, m);
			return false;
		}
	}
	if (m->wait == 0) {
		s->nwaiting++;
		log_debug("id=%s waits: its destinations are down", m->id);
	}
	m->wait = wait;
	sched_rest(s, m, SCHED_ST_IDLE, until);
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

/*
 * sched_up - the transport's up_cb: a destination answers again, so
 * every message that waits is due now (down() sorts them out again).
 * One walk and one rebuild of the heap per destination that comes back,
 * not per tick.
 */
static void
sched_up(void *arg)
{
	struct sched *s = arg;
	struct sched_msg *m;
	time_t now = s->now();
	size_t i;

	if (s->nwaiting == 0)
		return;
	for (m = s->head; m != NULL; m = m->next)
		if (m->wait != 0 && m->state == SCHED_ST_IDLE && m->due > now)
			m->due = now;
	for (i = s->nheap / 2; i-- > 0; )
		sched_heap_down(s, i);
	sched_kick(s);
}

/* ---- an admin's changes (sched_admin) ---- */

/* sched_deliver_settled - the settle event: every answer owed, in order */
static void
sched_deliver_settled(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct sched_waiter w;
	size_t i;

	(void)fd;
	(void)what;
	/* a callback may start another change: take the answers first */
	for (i = 0; i < s->nsettled; i++) {
		w = s->settled[i];
		w.cb(w.cookie, w.id, w.error);
	}
	s->nsettled = 0;
}

/*
 * sched_settle - m came to rest, or is gone: the admin's change waiting
 * for it is done, or came to nothing (a disk error, logged where it
 * happened); its answer goes out from the loop
 */
static void
sched_settle(struct sched *s, struct sched_msg *m, bool gone)
{
	enum sched_admin_op op;
	struct sched_waiter *w;
	size_t i;

	if (m->admin == 0)
		return;
	op = (enum sched_admin_op)(m->admin - 1);
	m->admin = 0;
	for (i = 0; i < s->nwaiters && s->waiters[i].serial != m->serial; i++)
		;
	if (i == s->nwaiters)
		log_panic("id=%s: an admin's change without its waiter", m->id);
	w = &s->waiters[i];
	if (op == SCHED_HOLD && m->state != SCHED_ST_ONHOLD && !gone)
		w->error = "not put on hold: its envelope could not be "
		    "written (the daemon's log says why)";
	else if (op == SCHED_RELEASE && m->state == SCHED_ST_ONHOLD && !gone)
		w->error = "still on hold: its envelope could not be written "
		    "(the daemon's log says why)";
	else if ((op == SCHED_DELETE || op == SCHED_BOUNCE) && !gone)
		w->error = op == SCHED_DELETE ? "not deleted: its removal "
		    "failed (the daemon's log says why)" : "not deleted yet: "
		    "its bounce or removal failed and is tried again (the "
		    "daemon's log says why)";
	else if (op == SCHED_HOLD && gone)
		w->error = "gone from the queue before its hold was written";
	if (s->nsettled == s->settlecap) {
		s->settlecap = s->settlecap ? 2 * s->settlecap : 16;
		s->settled = xreallocarray(s->settled, s->settlecap,
		    sizeof(*s->settled));
	}
	s->settled[s->nsettled++] = *w;
	s->waiters[i] = s->waiters[--s->nwaiters];
	event_active(s->settle_ev, 0, 0);
}

/* sched_find_id - the message with queue id, or NULL (a walk: admins
   name a few) */
static struct sched_msg *
sched_find_id(struct sched *s, const char *id)
{
	struct sched_msg *m;

	for (m = s->head; m != NULL; m = m->next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

/*
 * sched_admin_check - why op cannot apply to m now (static text), or
 * NULL. Loads m's envelope when op needs to know what is on disk (held
 * or not); the caller unloads it if the request is refused.
 */
static const char *
sched_admin_check(struct sched *s, struct sched_msg *m,
    enum sched_admin_op op)
{
	const char *why;

	switch ((enum sched_state)m->state) {
	case SCHED_ST_DELIVERING:
		return "being delivered right now; try again when the attempt "
		    "is over";
	case SCHED_ST_WRITING:
	case SCHED_ST_BOUNCING:
		return "its envelope is being written right now; try again "
		    "in a moment";
	case SCHED_ST_REMOVING:
		return "being removed from the queue right now";
	case SCHED_ST_IDLE:
	case SCHED_ST_HELD:
	case SCHED_ST_ONHOLD:
		break;
	}
	if (op == SCHED_DELETE || (op == SCHED_FLUSH &&
	    m->state != SCHED_ST_ONHOLD))
		return NULL;
	if (op == SCHED_FLUSH)
		return "on hold: release it (postern queue release) to send it";
	errno = 0;
	if (sched_load(s, m, &why) == -1)
		return why;
	if (op == SCHED_RELEASE && m->env->held == 0)
		return "not on hold";
	return NULL;
}

/* sched_admin_wait - the change op to m is in flight: its waiter */
static void
sched_admin_wait(struct sched *s, struct sched_msg *m,
    enum sched_admin_op op, sched_admin_cb cb, uint64_t cookie)
{
	struct sched_waiter *w;

	if (s->nwaiters == s->waitcap) {
		s->waitcap = s->waitcap ? 2 * s->waitcap : 16;
		s->waiters = xreallocarray(s->waiters, s->waitcap,
		    sizeof(*s->waiters));
	}
	w = &s->waiters[s->nwaiters++];
	memset(w, 0, sizeof(*w));
	w->serial = m->serial;
	w->cookie = cookie;
	w->cb = cb;
	snprintf(w->id, sizeof(w->id), "%s", m->id);
	m->admin = (uint8_t)(1 + op);
}

/*
 * sched_admin_bounce - every pending recipient of m fails as deleted by
 * the administrator; the usual finish then queues the bounce (outside
 * limits.bounces_per_hour) and removes the message
 */
static void
sched_admin_bounce(struct sched *s, struct sched_msg *m)
{
	struct envelope_rcpt *r;
	size_t i;

	for (i = 0; i < m->env->nrcpts; i++) {
		r = &m->env->rcpts[i];
		if (r->status != RCPT_PENDING)
			continue;
		r->status = RCPT_FAILED;
		metrics_inc(M_RCPT_BOUNCED);
		envelope_set_reply(r, 0, "5.0.0", "deleted from the queue by "
		    "the administrator");
		log_info("id=%s to=<%s> status=bounced (deleted from the queue "
		    "by the administrator)", m->id, r->addr);
	}
	m->env->held = 0;
	m->dirty = true;
	sched_finish(s, m);
}

/* sched_admin_apply - start op on m (checked) */
static void
sched_admin_apply(struct sched *s, struct sched_msg *m,
    enum sched_admin_op op, const char *who, time_t now)
{
	static const char *const verbs[] = {
		[SCHED_FLUSH] = "flushed", [SCHED_HOLD] = "put on hold",
		[SCHED_RELEASE] = "released", [SCHED_DELETE] = "deleted",
		[SCHED_BOUNCE] = "deleted with a bounce",
	};

	log_info("id=%s %s by %s", m->id, verbs[op], who);
	switch (op) {
	case SCHED_FLUSH:
		sched_unwait(s, m);
		sched_set_due(s, m, now);
		break;
	case SCHED_HOLD:
		sched_unwait(s, m);
		if (m->env->held > 0) {		/* on disk already */
			sched_rest(s, m, SCHED_ST_ONHOLD, m->due);
			break;
		}
		m->env->held = now;
		m->dirty = true;
		sched_write(s, m);
		break;
	case SCHED_RELEASE:
		m->env->held = 0;
		m->env->next_attempt = 0;
		m->due = now;
		m->dirty = true;
		sched_write(s, m);
		break;
	case SCHED_DELETE:
		sched_unwait(s, m);
		sched_enter_state(s, m, SCHED_ST_REMOVING);
		if (queue_remove(s->q, m->id, sched_removed, m->serial) == -1) {
			log_warn("id=%s: queue_remove", m->id);
			sched_later(s, m);
		}
		break;
	case SCHED_BOUNCE:
		sched_unwait(s, m);
		sched_admin_bounce(s, m);
		break;
	}
}

/* sched_admin - an admin's change to queued messages: checked, then
   started */
int
sched_admin(struct sched *s, enum sched_admin_op op, const char *const *ids,
    size_t n, const char *who, sched_admin_cb cb, uint64_t cookie,
    char **err)
{
	struct sched_msg **ms, *m;
	const char *why = NULL;
	time_t now = s->now();
	size_t i, k = 0, nm = 0;
	int inflight = 0;

	*err = NULL;
	if (s->stopped || s->draining) {
		*err = xstrdup("the daemon is stopping");
		return -1;
	}
	ms = xcalloc(n ? n : 1, sizeof(*ms));
	for (i = 0; i < n; i++) {
		if (!queue_id_valid(ids[i])) {
			*err = xasprintf("%s: not a queue id", ids[i]);
			goto refuse;
		}
		if ((m = sched_find_id(s, ids[i])) == NULL) {
			*err = xasprintf("%s: no such message in the queue",
			    ids[i]);
			goto refuse;
		}
		for (k = 0; k < nm && ms[k] != m; k++)
			;
		if (k < nm)
			continue;	/* named twice */
		ms[nm++] = m;
		if ((why = sched_admin_check(s, m, op)) != NULL) {
			*err = xasprintf("%s: %s", ids[i], why);
			goto refuse;
		}
	}
	if (op == SCHED_FLUSH) {
		if (s->t->forget != NULL)
			s->t->forget(s->t);
		if (n == 0) {
			log_info("queue flushed by %s: every message waiting "
			    "for a retry is due now", who);
			for (m = s->head; m != NULL; m = m->next)
				if (m->state == SCHED_ST_IDLE) {
					sched_unwait(s, m);
					sched_set_due(s, m, now);
				}
		}
	}
	for (i = 0; i < nm; i++) {
		m = ms[i];
		/* the waiter first: a change may settle as it starts (a
		   queue operation refused), and is answered from the loop */
		if (!(op == SCHED_FLUSH || (op == SCHED_HOLD &&
		    m->env->held > 0))) {
			sched_admin_wait(s, m, op, cb, cookie);
			inflight++;
		}
		sched_admin_apply(s, m, op, who, now);
	}
	free(ms);
	sched_kick(s);
	return inflight;

refuse:
	for (i = 0; i < nm; i++)
		if (sched_resting((enum sched_state)ms[i]->state))
			sched_unload(s, ms[i], false);
	free(ms);
	return -1;
}

/* ---- the timer ---- */

/*
 * sched_tick - act on the resting messages that are due, in order of
 * due time, a batch at a time: only the heap's due entries are looked
 * at. An envelope is loaded as a message becomes active, within
 * SC_ACTIVE_MAX and the attempts-in-flight limit; at a limit the rest
 * wait in the heap (sched_unstarve runs the tick again).
 */
static void
sched_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct sched_msg *m;
	time_t now = s->now();
	size_t pending, failed;
	unsigned started = 0, looked = 0;
	const char *why;
	bool need_env;

	(void)fd;
	(void)what;
	if (s->stopped)
		return;
	while (!s->draining && s->nheap > 0 && (m = s->heap[0])->due <= now) {
		if (started == SC_BATCH || looked == SC_LOOK_MAX) {
			sched_kick(s);
			return;
		}
		looked++;
		s->looked++;
		if (m->state == SCHED_ST_IDLE && sched_waits(s, m, now,
		    &need_env))
			continue;
		if (!sched_room(s, m->state == SCHED_ST_IDLE)) {
			s->starved = true;
			break;
		}
		errno = 0;
		if (sched_load(s, m, &why) == -1) {
			sched_unreadable(s, m, why, now);
			continue;
		}
		if (m->env->held > 0) {
			/* held on disk, found as it came due (a restart
			   indexes without reading envelopes) */
			sched_unwait(s, m);
			sched_rest(s, m, SCHED_ST_ONHOLD, m->due);
			continue;
		}
		sched_counts(m, &pending, &failed);
		if (pending > 0 && need_env && sched_waits(s, m, now,
		    &need_env))
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
	if ((s->timer = evtimer_new(base, sched_tick, s)) == NULL ||
	    (s->settle_ev = event_new(base, -1, 0, sched_deliver_settled,
	    s)) == NULL) {
		if (s->timer != NULL)
			event_free(s->timer);
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

/*
 * sched_start_one - queue_scan's callback at start: the index entry from
 * the id and the file's due time alone. No envelope is read until its
 * message comes due (a damaged one is found then, and left where it
 * is), so a backlog costs its start-up a directory listing; the time of
 * acceptance is the id's, which is when its DATA began.
 */
static void
sched_start_one(const char *id, time_t due, void *arg)
{
	(void)sched_add_entry(arg, id, queue_id_time(id), due);
}

/* sched_start - index the queue and start the timer */
int
sched_start(struct sched *s)
{
	if (queue_scan(s->q, sched_start_one, s) == -1)
		return -1;
	log_info("relay: mode=%s messages=%zu", s->t->name, s->nmsgs);
	sched_kick(s);
	return (int)s->nmsgs;
}

/* sched_queued - a new message is durable: load it, try it now */
void
sched_queued(struct sched *s, const char *id)
{
	struct sched_msg *m;
	struct envelope e;
	const char *why;

	memset(&e, 0, sizeof(e));
	if (queue_load_envelope(s->q, id, &e, &why) == -1) {
		log_warnx("id=%s: not scheduled: %s", id, why);
		return;
	}
	m = sched_add(s, &e);
	/* due now, as a rule: keep what was read for its attempt */
	if (m->due <= s->now() && sched_room(s, false))
		sched_take_env(s, m, &e);
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
	return s ? s->nbusy : 0;
}

/* sched_stats - how many messages, and the oldest acceptance time */
void
sched_stats(const struct sched *s, size_t *n, time_t *oldest)
{
	*n = s ? s->nmsgs : 0;
	*oldest = s && s->head ? s->head->time : 0;
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
	si->busy = s->nbusy;
	si->active = s->nactive;
	si->active_high = s->active_high;
	si->active_max = SC_ACTIVE_MAX;
	si->loads = s->loads;
	si->looked = s->looked;
	si->index_bytes = s->nmsgs * sizeof(struct sched_msg) +
	    s->heapcap * sizeof(*s->heap) + s->nbuckets * sizeof(*s->buckets);
}

/* sched_msg_state - the state of message id (a walk: for tests and
   tools, not for each message) */
int
sched_msg_state(const struct sched *s, const char *id, enum sched_state *st)
{
	const struct sched_msg *m;

	for (m = s ? s->head : NULL; m != NULL; m = m->next)
		if (strcmp(m->id, id) == 0) {
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
	s->stopped = true;	/* nothing kicks the timer now */
	while (s->head != NULL)
		sched_unlink_free(s, s->head);
	free(s->heap);
	free(s->buckets);
	free(s->waiters);	/* answers owed are dropped: so is the asker */
	free(s->settled);
	event_free(s->timer);
	event_free(s->settle_ev);
	if (sched_self == s)
		sched_self = NULL;
	budget_free();
	free(s);
}
