/*
 * sched - the delivery scheduler; see sched.h.
 */
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/io.h"
#include "common/log.h"
#include "common/metrics.h"
#include "relay/deliver.h"
#include "relay/dsn.h"
#include "queue/envelope.h"
#include "queue/inject.h"
#include "queue/queue.h"
#include "relay/sched.h"
#include "relay/budget.h"

#define SC_TICK	1	/* seconds between scans for due messages */
#define SC_BATCH	64	/* attempts started per scan before yielding */
#define SC_CHUNK	65536	/* bytes copied at once */
#define SC_NEVER	((time_t)INT64_MAX)

/* One queued message. Found by serial from queue callbacks. */
struct sched_msg {
	uint64_t		 serial;
	struct envelope		 env;	/* as on disk, or about to be */
	time_t			 due;	/* next attempt */
	bool			 busy;		/* a delivery attempt in flight */
	bool			 writing;	/* queue_update in flight */
	bool			 dirty;		/* env changed meanwhile */
	bool			 removing;	/* queue_remove in flight */
	bool			 bouncing;	/* its DSN is being committed */
	struct sched_msg	*prev, *next;
};

struct sched {
	struct event_base	*base;
	const struct config	*cfg;
	struct queue		*q;
	struct inject		*inj;		/* to queue DSNs */
	struct deliver		*dl;		/* mx and smarthost modes */
	const struct keyring	*kr;		/* to sign DSNs */
	struct event		*timer;
	struct sched_msg	*head;		/* oldest first: the tick, */
	struct sched_msg	*tail;		/* and so the bounce budget,
						   goes to them first */
	size_t			 nmsgs;
	uint64_t		 next_serial;
	unsigned long		 seq;		/* Maildir file names */
	bool			 stopped;
	bool			 draining;	/* sched_drain: no new attempt */
};

/*
 * Queue callbacks carry a serial, never a pointer; they find the one
 * scheduler here. It outlives them: main calls sched_stop(), then
 * queue_close() (which runs the last callbacks), then sched_free().
 */
static struct sched	*sched_self;

static void	sched_write(struct sched *, struct sched_msg *);
static void	sched_kick(struct sched *);

/* sched_find - the message with serial, or NULL */
static struct sched_msg *
sched_find(struct sched *s, uint64_t serial)
{
	struct sched_msg *m;

	/* XXX a linear scan per queue callback; a hash once queues are
	   large. */
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

/* sched_add - track a copy of e, due at its next_attempt */
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
	envelope_free(&m->env);
	free(m);
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

/* sched_record - the outcome of one recipient's attempt, and its log */
static void
sched_record(struct sched_msg *m, size_t i, const char *relay, int code,
    const char *enhanced, const char *text)
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
	    (long long)(time(NULL) - m->env.time), word, code,
	    r->enhanced[0] ? r->enhanced : "-", r->text);
}

/* ---- directory mode ---- */

/* sched_copy - write in's bytes from offset 0 to out */
static int
sched_copy(int in, int out)
{
	char buf[SC_CHUNK];
	ssize_t n;
	off_t off = 0;

	for (;;) {
		if ((n = pread(in, buf, sizeof(buf), off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 0;
		if (io_write_all(out, buf, (size_t)n) == -1)
			return -1;
		off += n;
	}
}

/*
 * sched_maildir_one - write one recipient's copy: DIR/tmp/NAME, fsync,
 * rename to DIR/new/NAME (Maildir). The file holds the exact bytes that
 * would go on the wire (CRLF), after Return-Path and Delivered-To. 0, or
 * -1 with errno and *what naming the step.
 */
static int
sched_maildir_one(struct sched *s, const struct sched_msg *m, size_t i,
    int msgfd, const char **what)
{
	const char *dir = s->cfg->relay.directory;
	struct timeval tv;
	struct buf head;
	char *tmp, *new;
	int fd, rc = -1, saved;

	gettimeofday(&tv, NULL);
	tmp = xasprintf("%s/tmp/%lld.M%06ldP%ldQ%lu.%s", dir,
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
	    ++s->seq, s->cfg->hostname);
	new = xasprintf("%s/new/%s", dir, strrchr(tmp, '/') + 1);
	buf_init(&head, 4096);
	(void)buf_printf(&head, "Return-Path: <%s>\r\nDelivered-To: %s\r\n",
	    m->env.sender, m->env.rcpts[i].addr);
	*what = "create";
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1)
		goto out;
	*what = "write";
	if (io_write_all(fd, head.data, head.len) == -1 ||
	    (m->env.prepend != NULL && io_write_all(fd, m->env.prepend,
	    m->env.prepend_len) == -1) || sched_copy(msgfd, fd) == -1) {
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
 * sched_directory - directory mode: every pending recipient gets its
 * file, then new/ is fsync'ed once. Disk writes on the loop thread: this
 * mode is for development (XXX a worker if it ever matters).
 */
static void
sched_directory(struct sched *s, struct sched_msg *m)
{
	char *newdir, *text;
	const char *what = "open the message";
	size_t i, ndone = 0, *done;
	int msgfd, dfd;

	done = xcalloc(m->env.nrcpts ? m->env.nrcpts : 1, sizeof(*done));
	if ((msgfd = queue_open_message(s->q, m->env.id)) == -1) {
		text = xasprintf("cannot open the queued message: %s",
		    strerror(errno));
		for (i = 0; i < m->env.nrcpts; i++)
			if (m->env.rcpts[i].status == RCPT_PENDING)
				sched_record(m, i, "directory", 0, "4.3.0",
				    text);
		free(text);
		free(done);
		return;
	}
	for (i = 0; i < m->env.nrcpts; i++) {
		if (m->env.rcpts[i].status != RCPT_PENDING)
			continue;
		if (sched_maildir_one(s, m, i, msgfd, &what) == -1) {
			text = xasprintf("%s in %s: %s", what,
			    s->cfg->relay.directory, strerror(errno));
			sched_record(m, i, "directory", 0, "4.3.0", text);
			free(text);
			continue;
		}
		done[ndone++] = i;
	}
	close(msgfd);
	/* The renames are durable before anything says "delivered". */
	newdir = xasprintf("%s/new", s->cfg->relay.directory);
	dfd = open(newdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ndone > 0 && (dfd == -1 || fsync(dfd) == -1)) {
		text = xasprintf("fsync %s: %s", newdir, strerror(errno));
		for (i = 0; i < ndone; i++)
			sched_record(m, done[i], "directory", 0, "4.3.0", text);
		free(text);
	} else
		for (i = 0; i < ndone; i++)
			sched_record(m, done[i], "directory", 250, "2.0.0",
			    "delivered to the directory");
	if (dfd != -1)
		close(dfd);
	free(newdir);
	free(done);
}

/* ---- attempts ---- */

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

/* sched_attempt_end - count the attempt, schedule the next, write */
static void
sched_attempt_end(struct sched *s, struct sched_msg *m)
{
	const struct relay_config *rc = &s->cfg->relay;
	time_t now = time(NULL);
	size_t pending, failed;

	m->env.attempts++;
	sched_counts(m, &pending, &failed);
	if (pending > 0 && now - m->env.time >= (time_t)rc->expire) {
		sched_expire(s, m, now);
		pending = 0;
	}
	m->env.next_attempt = pending > 0 ? now + sched_backoff(rc,
	    m->env.attempts) : 0;
	m->due = pending > 0 ? m->env.next_attempt : SC_NEVER;
	sched_write(s, m);
}

/* sched_rcpt_done - deliver's outcome for one recipient */
static void
sched_rcpt_done(uint64_t cookie, size_t rcpt, const struct smtpc_reply *r,
    const char *relay)
{
	struct sched_msg *m;

	if (sched_self == NULL || (m = sched_find(sched_self, cookie)) ==
	    NULL || rcpt >= m->env.nrcpts)
		return;
	sched_record(m, rcpt, relay, r->code, r->enhanced, r->text);
}

/* sched_attempt_done - deliver has every outcome of m's attempt */
static void
sched_attempt_done(uint64_t cookie)
{
	struct sched_msg *m;

	if (sched_self == NULL || (m = sched_find(sched_self, cookie)) ==
	    NULL)
		return;
	m->busy = false;
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

/* sched_attempt - try every pending recipient of m */
static void
sched_attempt(struct sched *s, struct sched_msg *m)
{
	struct envelope out;
	char *err = NULL;
	size_t i;

	if (s->cfg->relay.mode == RELAY_DIRECTORY) {
		sched_directory(s, m);
		sched_attempt_end(s, m);
		return;
	}
	/* The envelope sender outbound: the domain's bounce address, if
	   it has one, else the submitter's own (deliver copies it). */
	out = m->env;
	out.sender = (char *)sched_outbound_sender(s->cfg, m->env.sender);
	m->busy = true;
	if (deliver_start(s->dl, s->q, &out, sched_rcpt_done,
	    sched_attempt_done, m->serial, &err) == 0)
		return;
	m->busy = false;
	for (i = 0; i < m->env.nrcpts; i++)
		if (m->env.rcpts[i].status == RCPT_PENDING)
			sched_record(m, i, "none", 0, "4.3.0", err);
	free(err);
	sched_attempt_end(s, m);
}

/* ---- disk ---- */

/* sched_removed - queue_remove's answer */
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
		m->removing = false;
		m->due = time(NULL) + s->cfg->relay.retry_first;
		return;
	}
	log_info("id=%s removed: every recipient is final", id);
	sched_unlink_free(s, m);
}

/* sched_bounced - the DSN for m's failed recipients is committed (or
   not); record its id, which lets m be removed */
static void
sched_bounced(uint64_t cookie, enum inject_status st, const char *id,
    int error, const char *detail)
{
	struct sched *s = sched_self;
	struct sched_msg *m;

	(void)error;
	if (s == NULL || (m = sched_find(s, cookie)) == NULL)
		return;
	m->bouncing = false;
	if (st != INJECT_OK) {
		log_warnx("id=%s: the bounce to <%s> was not queued: %s; "
		    "trying again later", m->env.id, m->env.sender, detail);
		m->due = time(NULL) + s->cfg->relay.retry_first;
		return;
	}
	log_info("id=%s bounce id=%s to <%s>", m->env.id, id, m->env.sender);
	metrics_inc(M_BOUNCES_SENT);
	snprintf(m->env.dsn, sizeof(m->env.dsn), "%s", id);
	/* inject's queued hook has scheduled the bounce itself */
	sched_write(s, m);	/* then sched_written finishes it */
}

/*
 * sched_hold - limits.bounces_per_hour refused m's bounce: m stays
 * queued as it is (failed recipients, no dsn) and sched_finish runs
 * again at reset, when the sender's next window starts
 */
static void
sched_hold(struct sched_msg *m, time_t reset)
{
	char when[LOG_UTC_LEN];

	log_info("id=%s: bounce to <%s> held until %s "
	    "(limits.bounces_per_hour)", m->env.id, m->env.sender,
	    log_utc(reset, when));
	m->due = reset;
}

/*
 * sched_finish - every recipient is final: remove m, once the bounce for
 * its failed recipients (if any, and if it has a sender) is queued and
 * recorded in its envelope; a bounce over limits.bounces_per_hour waits
 */
static void
sched_finish(struct sched *s, struct sched_msg *m)
{
	size_t pending, failed;
	char *err = NULL;
	time_t now = time(NULL), reset = 0;

	if (s->stopped || m->bouncing)
		return;
	sched_counts(m, &pending, &failed);
	if (failed > 0 && m->env.dsn[0] == '\0' && m->env.sender[0] != '\0') {
		if (budget_bounce(s->cfg, m->env.sender, now, &reset) == -1) {
			/* never in the past: the tick must not spin */
			sched_hold(m, reset > now ? reset : now + 1);
			return;
		}
		m->bouncing = true;
		if (dsn_queue(s->cfg, s->kr, s->inj, s->q, &m->env, sched_bounced,
		    m->serial, &err) == -1) {
			log_warnx("id=%s: cannot write the bounce to <%s>: "
			    "%s; kept, trying again later", m->env.id,
			    m->env.sender, err);
			free(err);
			m->bouncing = false;
			m->due = time(NULL) + s->cfg->relay.retry_first;
		}
		return;
	}
	if (failed > 0 && m->env.sender[0] == '\0')
		log_info("id=%s: %zu recipient(s) failed; a bounce gets no "
		    "bounce", m->env.id, failed);
	m->removing = true;
	if (queue_remove(s->q, m->env.id, sched_removed, m->serial) == -1) {
		log_warn("id=%s: queue_remove", m->env.id);
		m->removing = false;
		m->due = time(NULL) + s->cfg->relay.retry_first;
	}
}

/* sched_written - queue_update's answer */
static void
sched_written(uint64_t cookie, int error, const char *id)
{
	struct sched *s = sched_self;
	struct sched_msg *m;
	size_t pending, failed;

	if (s == NULL || (m = sched_find(s, cookie)) == NULL)
		return;
	m->writing = false;
	if (error != 0) {
		/* The old envelope stands: recipients it lists as pending
		   may be tried again (a duplicate, never a loss). */
		log_warnx("id=%s envelope update failed: %s", id,
		    strerror(error));
		if (error == ENOENT) {
			sched_unlink_free(s, m);
			return;
		}
		m->dirty = true;
	}
	if (m->dirty) {
		m->dirty = false;
		sched_write(s, m);
		return;
	}
	sched_counts(m, &pending, &failed);
	if (pending == 0)
		sched_finish(s, m);
}

/* sched_write - replace m's envelope on disk (one write at a time) */
static void
sched_write(struct sched *s, struct sched_msg *m)
{
	if (m->writing) {
		m->dirty = true;
		return;
	}
	if (s->stopped)
		return;
	m->writing = true;
	if (queue_update(s->q, &m->env, sched_written, m->serial) == -1) {
		log_warn("id=%s: queue_update", m->env.id);
		m->writing = false;
		m->due = time(NULL) + s->cfg->relay.retry_first;
	}
}

/* ---- the timer ---- */

/* sched_tick - start the attempts that are due, a batch at a time */
static void
sched_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	struct sched_msg *m, *next;
	struct timeval tv = { 0, 0 };
	time_t now = time(NULL);
	size_t pending, failed;
	unsigned started = 0;

	(void)fd;
	(void)what;
	if (s->stopped)
		return;
	for (m = s->head; m != NULL; m = next) {
		next = m->next;
		if (m->busy || m->writing || m->removing || m->bouncing ||
		    m->due > now || s->draining)
			continue;
		if (started == SC_BATCH) {
			sched_kick(s);
			return;
		}
		started++;
		sched_counts(m, &pending, &failed);
		if (pending == 0)
			sched_finish(s, m);
		else
			sched_attempt(s, m);
	}
	tv.tv_sec = SC_TICK;
	(void)evtimer_add(s->timer, &tv);
}

/* sched_kick - run the tick at once (it re-arms itself every
   SC_TICK seconds) */
static void
sched_kick(struct sched *s)
{
	struct timeval now = { 0, 0 };

	if (!s->stopped)
		(void)evtimer_add(s->timer, &now);
}

/* ---- setup ---- */

/* sched_mkdir - mkdir path 0700 unless it exists; -1 with *err */
static int
sched_mkdir(const char *path, char **err)
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

/* sched_new - the scheduler and, in directory mode, its folders */
struct sched *
sched_new(struct event_base *base, const struct config *cfg,
    struct queue *q, struct inject *inj, struct dns *dns,
    const struct keyring *kr, char **err)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur" };
	struct sched *s;
	char *p;
	size_t i;

	*err = NULL;
	if (cfg->relay.mode == RELAY_DIRECTORY)
		for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
			p = xasprintf("%s%s", cfg->relay.directory, sub[i]);
			if (sched_mkdir(p, err) == -1) {
				free(p);
				return NULL;
			}
			free(p);
		}
	s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->cfg = cfg;
	s->q = q;
	s->inj = inj;
	s->kr = kr;
	if (cfg->relay.mode != RELAY_DIRECTORY &&
	    (s->dl = deliver_new(base, cfg, dns, err)) == NULL) {
		free(s);
		return NULL;
	}
	if ((s->timer = evtimer_new(base, sched_tick, s)) == NULL) {
		*err = xstrdup("sched: cannot create the timer");
		deliver_free(s->dl);
		free(s);
		return NULL;
	}
	sched_self = s;
	return s;
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
	log_info("relay: mode=%s messages=%zu", s->cfg->relay.mode ==
	    RELAY_DIRECTORY ? "directory" : s->cfg->relay.mode ==
	    RELAY_SMARTHOST ? "smarthost" : "mx", s->nmsgs);
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
	if (s != NULL)
		s->draining = true;
}

/* sched_busy - attempts and disk operations still in flight */
size_t
sched_busy(const struct sched *s)
{
	const struct sched_msg *m;
	size_t n = 0;

	for (m = s ? s->head : NULL; m != NULL; m = m->next)
		if (m->busy || m->writing || m->removing || m->bouncing)
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
	deliver_free(s->dl);	/* no callbacks from here on */
	while (s->head != NULL)
		sched_unlink_free(s, s->head);
	event_free(s->timer);
	if (sched_self == s)
		sched_self = NULL;
	budget_free();
	free(s);
}
