/*
 * test_sched - the delivery scheduler (relay/sched.c) driven through a
 * fake transport, with no sockets: a real event_base, a real on-disk
 * queue in a fresh mkdtemp directory per test (queue_open/queue_start),
 * a real configuration (config_load of a file written here) and a real
 * DKIM key (keyfile_generate, once), so that the bounces are the real
 * relay/dsn.c notifications, signed.
 *
 * The fake transport answers each recipient of each attempt from the
 * test's script, from the loop (as the network does), and records what
 * it was asked: the message, the outbound sender, the recipients. The
 * clock is the test's (sched_new_with's now), advanced by hand instead
 * of sleeping; the scheduler looks for due messages every 10 ms.
 *
 * Cases: delivered at once; a 4xx then a 2xx after the back-off; expiry
 * (5.4.7 and one DSN); partial failure (one DSN naming only the failed
 * recipients, after the last is final); the crash window between a
 * remote 250 and the envelope update (a restarted scheduler retries
 * only what the disk still lists as pending); the bounce budget holding
 * a DSN until the sender's next window; drain; a next hop that is down
 * (one probe per back-off, no rewrite per message); an admin's hold,
 * release, flush, delete and delete with a bounce (sched_admin). Each checks the
 * envelopes on disk (queue_load_envelope) and the DSNs queued.
 */
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

#include "common/alloc.h"
#include "common/log.h"
#include "config/config.h"
#include "keys/keyfile.h"
#include "keys/keyring.h"
#include "queue/envelope.h"
#include "queue/inject.h"
#include "queue/queue.h"
#include "relay/budget.h"
#include "relay/sched.h"
#include "relay/transport.h"

#define TICK_MS		10
#define MAX_ATTEMPTS	64
#define MAX_RCPTS	8
#define SENDER		"alice@example.org"

/* ---- the clock ---- */

static time_t	 clock_now;

/* fake_time - the test's clock */
static time_t
fake_time(void)
{
	return clock_now;
}

/* ---- the fake transport ---- */

/* One scripted reply: for rcpt's next attempt (sticky: for all of
   them). */
struct reply {
	const char	*rcpt;
	int		 code;
	const char	*enhanced;
	const char	*text;
	bool		 sticky;
};

/* What one start() was asked. */
struct asked {
	char		 id[QUEUE_ID_LEN + 1];
	char		 sender[128];
	char		 rcpts[MAX_RCPTS][64];	/* the pending ones */
	size_t		 nrcpts;
};

/* An attempt whose answers are still to come from the loop. */
struct inflight {
	struct fake		*fk;
	struct event		*ev;
	uint64_t		 cookie;
	size_t			 asked;		/* its record */
	char			 rcpts[MAX_RCPTS][64];	/* pending */
	size_t			 idx[MAX_RCPTS];
	size_t			 n;
	transport_rcpt_cb	 rcpt_cb;
	transport_done_cb	 done_cb;
	struct inflight		*next;
};

struct fake {
	struct transport	 t;	/* first */
	const struct reply	*script;
	size_t			 nscript;
	bool			 used[32];
	struct asked		 asked[MAX_ATTEMPTS];
	size_t			 nasked;
	unsigned		 unscripted;	/* recipients nobody scripted */
	bool			 stall;		/* answer, but never "done" */
	unsigned		 stalled;	/* attempts left hanging */
	bool			 drained;
	struct event_base	*base;
	struct inflight		*inflight;
	size_t			 ninflight;
	/* A next hop that is down, as relay/deliver.c remembers one: */
	bool			 unreachable;	/* answers code 0, no reply */
	bool			 known_down;	/* down() says so */
	bool			 probing;	/* the probe is in flight */
	time_t			 until;		/* no attempt before */
	unsigned		 backoff;	/* 300 s, doubling */
	unsigned		 ups;		/* up_cb calls */
	/* Many messages (test_backlog): */
	bool			 many;		/* asked[] keeps the first */
	time_t			 last_next;	/* of the last start */
	unsigned		 out_of_order;	/* starts before an earlier
						   next_attempt */
};

/* fake_reply_for - the next scripted reply for addr */
static const struct reply *
fake_reply_for(struct fake *fk, const char *addr)
{
	size_t i;

	for (i = 0; i < fk->nscript; i++) {
		if (strcmp(fk->script[i].rcpt, addr) != 0 || fk->used[i])
			continue;
		if (!fk->script[i].sticky)
			fk->used[i] = true;
		return &fk->script[i];
	}
	return NULL;
}

/* fake_unlink - forget one attempt in flight */
static void
fake_unlink(struct fake *fk, struct inflight *a)
{
	struct inflight **pp;

	for (pp = &fk->inflight; *pp != NULL; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	fk->ninflight--;
	event_free(a->ev);
	free(a);
}

/* fake_unreachable - no connection: every recipient deferred with no
   reply; the next hop is down from now for 300 s, or, after its probe,
   for twice as long as before */
static void
fake_unreachable(struct inflight *a)
{
	struct fake *fk = a->fk;
	size_t i;

	for (i = 0; i < a->n; i++)
		a->rcpt_cb(a->cookie, a->idx[i], 0, "4.4.1",
		    "connection refused", "fake[192.0.2.25]:25");
	if (!fk->known_down) {
		fk->known_down = true;
		fk->backoff = 300;
		fk->until = clock_now + fk->backoff;
	} else if (fk->probing) {
		fk->probing = false;
		fk->backoff *= 2;
		fk->until = clock_now + fk->backoff;
	}
	a->done_cb(a->cookie);
	fake_unlink(fk, a);
}

/* fake_still_down - transport still_down: until when, or 0; every
   message goes to the one next hop (number 7), so it answers for a
   message it was not asked about yet (*wait 0) too */
static time_t
fake_still_down(struct transport *t, uint32_t *wait)
{
	struct fake *fk = (struct fake *)t;

	assert_true(*wait == 0 || *wait == 7);
	if (!fk->known_down || (!fk->probing && clock_now >= fk->until))
		return 0;
	*wait = 7;
	return fk->until > clock_now ? fk->until : clock_now + 1;
}

/* fake_down - transport down: the one next hop, for every message */
static time_t
fake_down(struct transport *t, const struct envelope *e, uint32_t *wait)
{
	(void)e;
	*wait = 7;
	return fake_still_down(t, wait);
}

/* fake_answer - the loop answers an attempt from the script */
static void
fake_answer(evutil_socket_t fd, short what, void *arg)
{
	struct inflight *a = arg;
	struct fake *fk = a->fk;
	const struct reply *r;
	size_t i;

	(void)fd;
	(void)what;
	if (fk->unreachable) {
		fake_unreachable(a);
		return;
	}
	if (fk->known_down) {
		/* the probe (or an attempt before): it is up again */
		fk->known_down = fk->probing = false;
		fk->ups++;
		fk->t.up_cb(fk->t.up_arg);
	}
	for (i = 0; i < a->n; i++) {
		/* the addresses were recorded in order at start */
		if ((r = fake_reply_for(fk, a->rcpts[i])) == NULL) {
			fk->unscripted++;
			a->rcpt_cb(a->cookie, a->idx[i], 451, "4.0.0",
			    "not in the test's script", "fake");
		} else
			a->rcpt_cb(a->cookie, a->idx[i], r->code, r->enhanced,
			    r->text, "fake[192.0.2.25]:25");
	}
	if (fk->stall) {
		fk->stalled++;
		return;		/* killed before the envelope update */
	}
	a->done_cb(a->cookie);
	fake_unlink(fk, a);
}

/* fake_start - record what was asked; answer from the loop */
static int
fake_start(struct transport *t, const struct envelope *e, const char *sender,
    transport_rcpt_cb rcpt_cb, transport_done_cb done_cb, uint64_t cookie,
    char **err)
{
	struct fake *fk = (struct fake *)t;
	struct timeval now = { 0, 0 };
	struct inflight *a;
	struct asked *as;
	size_t i;

	*err = NULL;
	if (fk->nasked == MAX_ATTEMPTS && !fk->many) {
		*err = xstrdup("the fake transport was asked too often");
		return -1;
	}
	if (e->next_attempt < fk->last_next)
		fk->out_of_order++;
	fk->last_next = e->next_attempt;
	if (fk->known_down && !fk->probing && clock_now >= fk->until) {
		fk->probing = true;		/* this attempt is the probe */
		fk->until = clock_now + fk->backoff;
	}
	/* beyond MAX_ATTEMPTS (fk->many) only counted, not recorded */
	as = &fk->asked[fk->nasked < MAX_ATTEMPTS ? fk->nasked : 0];
	if (fk->nasked < MAX_ATTEMPTS) {
		memset(as, 0, sizeof(*as));
		snprintf(as->id, sizeof(as->id), "%s", e->id);
		snprintf(as->sender, sizeof(as->sender), "%s", sender);
	}
	a = xcalloc(1, sizeof(*a));
	a->fk = fk;
	a->asked = fk->nasked++;
	a->cookie = cookie;
	a->rcpt_cb = rcpt_cb;
	a->done_cb = done_cb;
	for (i = 0; i < e->nrcpts && a->n < MAX_RCPTS; i++) {
		if (e->rcpts[i].status != RCPT_PENDING)
			continue;
		snprintf(a->rcpts[a->n], sizeof(a->rcpts[0]), "%s",
		    e->rcpts[i].addr);
		if (a->asked < MAX_ATTEMPTS)
			snprintf(as->rcpts[as->nrcpts++],
			    sizeof(as->rcpts[0]), "%s", e->rcpts[i].addr);
		a->idx[a->n++] = i;
	}
	a->ev = evtimer_new(fk->base, fake_answer, a);
	assert_non_null(a->ev);
	a->next = fk->inflight;
	fk->inflight = a;
	fk->ninflight++;
	assert_int_equal(evtimer_add(a->ev, &now), 0);
	return 0;
}

/* fake_drain - remember that the scheduler said so */
static void
fake_drain(struct transport *t)
{
	((struct fake *)t)->drained = true;
}

/* fake_free - cancel what is in flight, without callbacks; the test
   keeps the record (its struct fake is the test's) */
static void
fake_free(struct transport *t)
{
	struct fake *fk = (struct fake *)t;

	while (fk->inflight != NULL)
		fake_unlink(fk, fk->inflight);
	fk->base = NULL;
}

/* fake_init - a fake answering from script */
static void
fake_init(struct fake *fk, struct event_base *base,
    const struct reply *script, size_t n)
{
	memset(fk, 0, sizeof(*fk));
	assert_true(n <= sizeof(fk->used) / sizeof(fk->used[0]));
	fk->t.name = "fake";
	fk->t.start = fake_start;
	fk->t.drain = fake_drain;
	fk->t.free = fake_free;
	fk->t.down = fake_down;
	fk->t.still_down = fake_still_down;
	fk->script = script;
	fk->nscript = n;
	fk->base = base;
}

/* ---- the fixture: config, keys, queue, loop, scheduler ---- */

static char	 keydir[] = "/tmp/postern-test-sched-keys-XXXXXX";

struct fx {
	char		 dir[64];
	char		 shm[64];	/* a state dir on tmpfs, or "" */
	char		 state[128];
	struct config	*cfg;
	struct keyring	*kr;
	struct event_base *base;
	struct queue	*q;
	struct inject	*inj;
	struct sched	*s;
	struct fake	 fk;
};

/* fx_queued - inject's hook, wired as the daemon wires it */
static void
fx_queued(void *arg, const char *id)
{
	sched_queued(arg, id);
}

/* rm_one - nftw callback: remove one entry */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* group_setup - one RSA key for example.org, for every test */
static int
group_setup(void **state)
{
	char path[PATH_MAX], *err = NULL;

	(void)state;
	if (mkdtemp(keydir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/r1.key", keydir);
	if (keyfile_generate(path, KEYFILE_RSA_SHA256, 2048, &err) == -1) {
		fprintf(stderr, "keyfile_generate: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

/* group_teardown - remove the key */
static int
group_teardown(void **state)
{
	(void)state;
	nftw(keydir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* fx_config - write and load the configuration: example.org signs with
   the group's key; relay.retry first 5m, max 1h, expire 1h */
static void
fx_config(struct fx *f, unsigned bounces_per_hour, const char *domain_extra)
{
	struct config_errors errs = { NULL, 0 };
	char path[PATH_MAX];
	size_t i;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/postern.conf", f->dir);
	assert_non_null(fp = fopen(path, "w"));
	fprintf(fp, "hostname = \"relay.example.org\";\n"
	    "state_dir = \"%s\";\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 5870; "
	    "tls = \"none\"; trusted = true; senders = [ \"" SENDER "\" ]; "
	    "} );\n"
	    "domains = ( { name = \"example.org\"; dkim = ( { selector = "
	    "\"r1\"; algorithm = \"rsa-sha256\"; key = \"%s/r1.key\"; } );"
	    " %s } );\n"
	    "limits = { bounces_per_hour = %u; rate_window = \"1h\"; };\n"
	    "relay = { retry = { first = \"5m\"; max = \"1h\"; "
	    "expire = \"1h\"; }; };\n", f->state, keydir, domain_extra,
	    bounces_per_hour);
	fclose(fp);
	if ((f->cfg = config_load(path, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			print_error("%s\n", errs.v[i]);
		fail_msg("config did not load");
	}
	if ((f->kr = keyring_load(f->cfg, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			print_error("%s\n", errs.v[i]);
		fail_msg("keys did not load");
	}
}

/* fx_open - the loop, the queue (recovered, started) and a scheduler
   over f->fk answering from script */
static void
fx_open(struct fx *f, const struct reply *script, size_t n)
{
	struct sched_seam seam;
	char *err = NULL;

	assert_non_null(f->base = event_base_new());
	if ((f->q = queue_open(f->state, 1, &err)) == NULL)
		fail_msg("queue_open: %s", err);
	assert_int_equal(queue_recover(f->q, NULL, NULL, NULL), 0);
	assert_int_equal(queue_start(f->q, f->base), 0);
	fake_init(&f->fk, f->base, script, n);
	memset(&seam, 0, sizeof(seam));
	seam.transport = &f->fk.t;
	seam.now = fake_time;
	seam.tick_ms = TICK_MS;
	f->inj = inject_new(f->q);
	if ((f->s = sched_new_with(f->base, f->cfg, f->q, f->inj, f->kr,
	    &seam, &err)) == NULL)
		fail_msg("sched_new_with: %s", err);
	inject_set_queued(f->inj, fx_queued, f->s);
}

/* fx_close - stop as main does: sched_stop, queue_close, sched_free */
static void
fx_close(struct fx *f)
{
	if (f->s == NULL)
		return;
	sched_stop(f->s);
	queue_close(f->q);
	inject_free(f->inj);
	sched_free(f->s);
	event_base_free(f->base);
	f->s = NULL;
	f->q = NULL;
	f->base = NULL;
}

/* setup - a fresh directory, and the clock a minute into an hour of
   today (the bounce budget's windows are aligned to the hour) */
static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/postern-test-sched-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	clock_now = time(NULL) / 3600 * 3600 + 60;
	*state = f;
	return 0;
}

/* teardown - close whatever is open, remove the directory */
static int
teardown(void **state)
{
	struct fx *f = *state;

	fx_close(f);
	keyring_free(f->kr);
	config_free(f->cfg);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (f->shm[0] != '\0')
		nftw(f->shm, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* plant_at - commit a message from SENDER to the NULL-terminated
   rcpts, accepted now by the test's clock, due at next (0: now); its
   id into id */
static void
plant_at(struct fx *f, const char *const *rcpts, char id[QUEUE_ID_LEN + 1],
    time_t next)
{
	static const char msg[] = "From: " SENDER "\r\n"
	    "To: undisclosed-recipients:;\r\n"
	    "Subject: scheduled\r\n"
	    "Message-ID: <test@example.org>\r\n"
	    "\r\n"
	    "Hello.\r\n";
	struct queue_msg *m;
	struct envelope e;

	assert_non_null(m = queue_msg_new(f->q));
	snprintf(id, QUEUE_ID_LEN + 1, "%s", queue_msg_id(m));
	assert_int_equal(queue_msg_write(m, msg, sizeof(msg) - 1), 0);
	memset(&e, 0, sizeof(e));
	e.time = clock_now;
	e.sender = xstrdup(SENDER);
	e.login = xstrdup(SENDER);
	e.client = xstrdup("192.0.2.10");
	e.helo = xstrdup("client.example.org");
	e.next_attempt = next;
	for (; *rcpts != NULL; rcpts++)
		envelope_add_rcpt(&e, *rcpts);
	assert_int_equal(queue_msg_commit_sync(m, &e), 0);
	envelope_free(&e);
}

/* plant - plant_at, due now */
static void
plant(struct fx *f, const char *const *rcpts, char id[QUEUE_ID_LEN + 1])
{
	plant_at(f, rcpts, id, 0);
}

/* run - run the loop for ms milliseconds */
static void
run(struct fx *f, long ms)
{
	struct timeval d = { ms / 1000, (ms % 1000) * 1000 };

	assert_int_equal(event_base_loopexit(f->base, &d), 0);
	assert_true(event_base_dispatch(f->base) >= 0);
}

/* settle - run the loop until nothing is in flight for a whole 50 ms
   (five ticks: whatever was due has started and ended) */
static void
settle(struct fx *f)
{
	int i;

	for (i = 0; i < 100; i++) {
		run(f, 50);
		if (sched_busy(f->s) == 0 && f->fk.ninflight == f->fk.stalled)
			return;
	}
	fail_msg("the scheduler did not settle in 5 s");
}

/* on_disk - load id's envelope; false if it is gone */
static bool
on_disk(struct fx *f, const char *id, struct envelope *e)
{
	const char *why;

	memset(e, 0, sizeof(*e));
	return queue_load_envelope(f->q, id, e, &why) == 0;
}

/* assert_rcpt - recipient i of e has this status and reply */
static void
assert_rcpt(const struct envelope *e, size_t i, const char *addr,
    enum rcpt_status status, int code, const char *enhanced)
{
	assert_true(i < e->nrcpts);
	assert_string_equal(e->rcpts[i].addr, addr);
	assert_int_equal(e->rcpts[i].status, status);
	assert_int_equal(e->rcpts[i].code, code);
	assert_string_equal(e->rcpts[i].enhanced, enhanced);
}

/* assert_asked - attempt n (0, 1, ...) was for id with these pending
   recipients (NULL-terminated) and this outbound sender */
static void
assert_asked(struct fx *f, size_t n, const char *id, const char *sender,
    const char *const *rcpts)
{
	const struct asked *as;
	size_t i;

	assert_true(n < f->fk.nasked);
	as = &f->fk.asked[n];
	assert_string_equal(as->id, id);
	assert_string_equal(as->sender, sender);
	for (i = 0; rcpts[i] != NULL; i++) {
		assert_true(i < as->nrcpts);
		assert_string_equal(as->rcpts[i], rcpts[i]);
	}
	assert_int_equal(as->nrcpts, i);
}

/* The messages in the queue, as queue_foreach sees them. */
struct listing {
	char	 ids[8][QUEUE_ID_LEN + 1];
	bool	 dsn[8];	/* sender <> */
	size_t	 n;
	size_t	 ndsn;
};

/* list_one - queue_foreach callback */
static void
list_one(const struct envelope *e, void *arg)
{
	struct listing *l = arg;

	if (l->n == 8)
		return;
	snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", e->id);
	l->dsn[l->n] = e->sender[0] == '\0';
	l->ndsn += l->dsn[l->n];
	l->n++;
}

/* list - every message in the queue */
static void
list(struct fx *f, struct listing *l)
{
	memset(l, 0, sizeof(*l));
	assert_int_equal(queue_foreach(f->q, list_one, NULL, l), 0);
}

/* read_message - the message file of id, NUL-terminated (caller
   frees) */
static char *
read_message(struct fx *f, const char *id)
{
	struct envelope e;
	char *text = xmalloc(65536);
	const char *why;
	size_t len = 0, max;
	off_t start;
	ssize_t n;
	int fd;

	assert_int_equal(queue_load_envelope(f->q, id, &e, &why), 0);
	max = e.size < 65535 ? (size_t)e.size : 65535;
	envelope_free(&e);
	assert_true((fd = queue_open_message(f->q, id, &start)) >= 0);
	while (len < max && (n = pread(fd, text + len, max - len,
	    start + (off_t)len)) > 0)
		len += (size_t)n;
	close(fd);
	text[len] = '\0';
	return text;
}

/*
 * assert_dsn - id is a DSN as relay/dsn.c writes it: envelope sender <>,
 * one recipient (SENDER), signed by example.org; its report names each
 * of failed (NULL-terminated) with its status, and nobody in ok
 */
static void
assert_dsn(struct fx *f, const char *id, const char *const *failed,
    const char *const *status, const char *const *ok)
{
	struct envelope e;
	char *text, want[256];
	size_t i;

	assert_true(on_disk(f, id, &e));
	assert_string_equal(e.sender, "");
	assert_int_equal(e.nrcpts, 1);
	assert_string_equal(e.rcpts[0].addr, SENDER);
	assert_non_null(e.prepend);
	assert_non_null(memmem(e.prepend, e.prepend_len, "DKIM-Signature:",
	    15));
	assert_non_null(memmem(e.prepend, e.prepend_len, "d=example.org;",
	    14));
	envelope_free(&e);
	text = read_message(f, id);
	assert_non_null(strstr(text, "To: <" SENDER ">\r\n"));
	for (i = 0; failed[i] != NULL; i++) {
		snprintf(want, sizeof(want), "Final-Recipient: rfc822; %s\r\n"
		    "Action: failed\r\nStatus: %s\r\n", failed[i], status[i]);
		if (strstr(text, want) == NULL)
			fail_msg("DSN %s lacks \"%s\":\n%s", id, want, text);
	}
	for (i = 0; ok != NULL && ok[i] != NULL; i++) {
		snprintf(want, sizeof(want), "rfc822; %s\r\n", ok[i]);
		assert_null(strstr(text, want));
	}
	free(text);
}

/* ndsn - how many DSNs are queued */
static size_t
ndsn(struct fx *f)
{
	struct listing l;

	list(f, &l);
	return l.ndsn;
}

/* the_dsn - the one DSN in the queue (there must be exactly one) */
static const char *
the_dsn(struct fx *f)
{
	static char id[QUEUE_ID_LEN + 1];
	struct listing l;
	size_t i;

	list(f, &l);
	assert_int_equal(l.ndsn, 1);
	for (i = 0; i < l.n; i++)
		if (l.dsn[i])
			snprintf(id, sizeof(id), "%s", l.ids[i]);
	return id;
}

/* A DSN's delivery: deferred for as long as the test runs, so that it
   stays on disk to be looked at. */
#define KEEP_DSN	{ SENDER, 451, "4.2.0", "kept for the test", true }

/* ---- the cases ---- */

/* test_delivered_at_once - a 250 for each recipient: removed from disk */
static void
test_delivered_at_once(void **state)
{
	static const struct reply script[] = {
		{ "bob@example.net", 250, "2.0.0", "ok", false },
		{ "carol@example.com", 250, "2.0.0", "ok", false },
	};
	static const char *const rcpts[] = { "bob@example.net",
	    "carol@example.com", NULL };
	struct fx *f = *state;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], msg[256];
	enum sched_state st;
	size_t n;
	time_t oldest;

	fx_config(f, 100, "bounce_address = \"bounces@example.org\";");
	fx_open(f, script, 2);
	plant(f, rcpts, id);
	sched_queued(f->s, id);
	assert_int_equal(sched_msg_state(f->s, id, &st), 0);
	assert_int_equal(st, SCHED_ST_IDLE);
	sched_stats(f->s, &n, &oldest);
	assert_int_equal(n, 1);
	assert_int_equal(oldest, clock_now);
	settle(f);
	assert_int_equal(f->fk.nasked, 1);
	/* the domain's bounce_address is MAIL FROM outbound */
	assert_asked(f, 0, id, "bounces@example.org", rcpts);
	assert_int_equal(f->fk.unscripted, 0);
	assert_false(on_disk(f, id, &e));
	snprintf(msg, sizeof(msg), "%s/queue/%s", f->state, id);
	assert_int_equal(access(msg, F_OK), -1);
	assert_int_equal(sched_msg_state(f->s, id, &st), -1);
	sched_stats(f->s, &n, &oldest);
	assert_int_equal(n, 0);
	assert_int_equal(sched_busy(f->s), 0);
}

/* test_retry_backoff - 451, 451, then 250: tried again after
   relay.retry.first, then twice that, never before */
static void
test_retry_backoff(void **state)
{
	static const struct reply script[] = {
		{ "bob@example.net", 451, "4.7.1", "Greylisted", false },
		{ "bob@example.net", 421, "", "busy", false },
		{ "bob@example.net", 250, "2.0.0", "ok", false },
	};
	static const char *const rcpts[] = { "bob@example.net", NULL };
	struct fx *f = *state;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1];
	time_t t0 = clock_now;

	fx_config(f, 100, "");
	fx_open(f, script, 3);
	plant(f, rcpts, id);
	assert_int_equal(sched_start(f->s), 1);
	settle(f);
	assert_int_equal(f->fk.nasked, 1);
	assert_asked(f, 0, id, SENDER, rcpts);
	assert_true(on_disk(f, id, &e));
	assert_int_equal(e.attempts, 1);
	assert_int_equal(e.next_attempt, t0 + 300);
	assert_rcpt(&e, 0, "bob@example.net", RCPT_PENDING, 451, "4.7.1");
	assert_string_equal(e.rcpts[0].text, "Greylisted");
	envelope_free(&e);

	/* not a second early */
	clock_now = t0 + 299;
	settle(f);
	assert_int_equal(f->fk.nasked, 1);
	clock_now = t0 + 300;
	settle(f);
	assert_int_equal(f->fk.nasked, 2);
	assert_asked(f, 1, id, SENDER, rcpts);
	assert_true(on_disk(f, id, &e));
	assert_int_equal(e.attempts, 2);
	assert_int_equal(e.next_attempt, t0 + 300 + 600);	/* doubled */
	assert_rcpt(&e, 0, "bob@example.net", RCPT_PENDING, 421, "");
	envelope_free(&e);

	clock_now = t0 + 300 + 599;
	settle(f);
	assert_int_equal(f->fk.nasked, 2);
	clock_now = t0 + 300 + 600;
	settle(f);
	assert_int_equal(f->fk.nasked, 3);
	assert_false(on_disk(f, id, &e));
	assert_int_equal(f->fk.unscripted, 0);
	assert_int_equal(ndsn(f), 0);
}

/* test_expiry - still deferred relay.retry.expire after acceptance: the
   pending recipient fails with 5.4.7 and one DSN goes to the sender */
static void
test_expiry(void **state)
{
	static const struct reply script[] = {
		{ "bob@example.net", 451, "4.4.1", "connection refused",
		    true },
		KEEP_DSN,
	};
	static const char *const rcpts[] = { "bob@example.net", NULL };
	static const char *const failed[] = { "bob@example.net", NULL };
	static const char *const status[] = { "5.4.7" };
	static const char *const to_sender[] = { SENDER, NULL };
	struct fx *f = *state;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], *text;
	const char *dsn;
	time_t t0 = clock_now;

	fx_config(f, 100, "");
	fx_open(f, script, 2);
	plant(f, rcpts, id);
	sched_queued(f->s, id);
	settle(f);
	assert_true(on_disk(f, id, &e));
	assert_int_equal(e.attempts, 1);
	assert_rcpt(&e, 0, "bob@example.net", RCPT_PENDING, 451, "4.4.1");
	envelope_free(&e);
	assert_int_equal(ndsn(f), 0);

	/* one second short of relay.retry.expire (1h): still deferred */
	clock_now = t0 + 3599;
	settle(f);
	assert_int_equal(f->fk.nasked, 2);
	assert_true(on_disk(f, id, &e));
	assert_int_equal(e.attempts, 2);
	assert_rcpt(&e, 0, "bob@example.net", RCPT_PENDING, 451, "4.4.1");
	envelope_free(&e);
	assert_int_equal(ndsn(f), 0);

	/* the next attempt is past it */
	clock_now = t0 + 3599 + 600;
	settle(f);
	assert_int_equal(f->fk.nasked, 4);	/* bob, then the DSN */
	assert_asked(f, 2, id, SENDER, rcpts);
	assert_false(on_disk(f, id, &e));	/* removed after the DSN */
	dsn = the_dsn(f);
	assert_asked(f, 3, dsn, "", to_sender);
	assert_dsn(f, dsn, failed, status, NULL);
	text = read_message(f, dsn);
	assert_non_null(strstr(text, "Diagnostic-Code: X-Postern; delivery "
	    "time expired after 4199s; last reply: 451 4.4.1 connection "
	    "refused\r\n"));
	free(text);
	/* the DSN itself is an ordinary queued message */
	assert_true(on_disk(f, dsn, &e));
	assert_int_equal(e.attempts, 1);
	assert_rcpt(&e, 0, SENDER, RCPT_PENDING, 451, "4.2.0");
	envelope_free(&e);
}

/*
 * test_partial_failure - of three recipients one gets 250, one 550 and
 * one 451 then 550: the failure is on disk at once, but the DSN waits
 * until the last is final, and then names both failed recipients, and
 * only them
 */
static void
test_partial_failure(void **state)
{
	static const struct reply script[] = {
		{ "bob@example.net", 250, "2.0.0", "ok", false },
		{ "carol@example.com", 550, "5.1.1", "no such user", false },
		{ "dave@example.net", 451, "4.3.0", "try later", false },
		{ "dave@example.net", 550, "5.7.1", "refused", false },
		KEEP_DSN,
	};
	static const char *const rcpts[] = { "bob@example.net",
	    "carol@example.com", "dave@example.net", NULL };
	static const char *const dave[] = { "dave@example.net", NULL };
	static const char *const failed[] = { "carol@example.com",
	    "dave@example.net", NULL };
	static const char *const status[] = { "5.1.1", "5.7.1" };
	static const char *const ok[] = { "bob@example.net", NULL };
	struct fx *f = *state;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1], *text;
	const char *dsn;
	time_t t0 = clock_now;

	fx_config(f, 100, "");
	fx_open(f, script, 5);
	plant(f, rcpts, id);
	sched_queued(f->s, id);
	settle(f);
	assert_int_equal(f->fk.nasked, 1);
	assert_asked(f, 0, id, SENDER, rcpts);
	assert_true(on_disk(f, id, &e));
	assert_int_equal(e.attempts, 1);
	assert_rcpt(&e, 0, "bob@example.net", RCPT_DELIVERED, 250, "2.0.0");
	assert_rcpt(&e, 1, "carol@example.com", RCPT_FAILED, 550, "5.1.1");
	assert_rcpt(&e, 2, "dave@example.net", RCPT_PENDING, 451, "4.3.0");
	assert_string_equal(e.dsn, "");
	envelope_free(&e);
	assert_int_equal(ndsn(f), 0);

	clock_now = t0 + 300;
	settle(f);
	assert_asked(f, 1, id, SENDER, dave);	/* dave only */
	assert_false(on_disk(f, id, &e));
	dsn = the_dsn(f);
	assert_dsn(f, dsn, failed, status, ok);
	text = read_message(f, dsn);
	assert_non_null(strstr(text, "Diagnostic-Code: smtp; 550 5.1.1 no "
	    "such user\r\n"));
	assert_non_null(strstr(text, "Diagnostic-Code: smtp; 550 5.7.1 "
	    "refused\r\n"));
	free(text);
	assert_int_equal(f->fk.nasked, 3);	/* and the DSN, once */
	assert_int_equal(f->fk.unscripted, 0);
}

/* assert_first_attempt - test_crash_window's message as the first
   attempt's update left it: bob delivered, carol deferred */
static void
assert_first_attempt(struct fx *f, const char *id)
{
	struct envelope e;

	assert_true(on_disk(f, id, &e));
	assert_int_equal(e.attempts, 1);
	assert_rcpt(&e, 0, "bob@example.net", RCPT_DELIVERED, 250, "2.0.0");
	assert_rcpt(&e, 1, "carol@example.com", RCPT_PENDING, 451, "4.7.1");
	envelope_free(&e);
}

/*
 * test_crash_window - the second attempt's remote 250 arrives, and the
 * daemon dies before the envelope update: the disk still lists that
 * recipient as pending, so the restarted scheduler sends to it again
 * (the duplicate the contract admits), and only to it, never to the
 * recipient the first attempt's update recorded
 */
static void
test_crash_window(void **state)
{
	static const struct reply first[] = {
		{ "bob@example.net", 250, "2.0.0", "ok", false },
		{ "carol@example.com", 451, "4.7.1", "Greylisted", false },
		{ "carol@example.com", 250, "2.0.0", "ok", false },
	};
	static const struct reply second[] = {
		{ "carol@example.com", 250, "2.0.0", "ok again", false },
	};
	static const char *const rcpts[] = { "bob@example.net",
	    "carol@example.com", NULL };
	static const char *const carol[] = { "carol@example.com", NULL };
	struct fx *f = *state;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1];
	enum sched_state st;
	int i;

	fx_config(f, 100, "");
	fx_open(f, first, 3);
	plant(f, rcpts, id);
	sched_queued(f->s, id);
	settle(f);
	assert_first_attempt(f, id);

	/* the remote 250 for carol, then the kill before the update */
	f->fk.stall = true;
	clock_now += 300;
	for (i = 0; i < 500 && f->fk.stalled == 0; i++)
		run(f, 10);
	assert_int_equal(f->fk.stalled, 1);
	assert_asked(f, 1, id, SENDER, carol);
	assert_int_equal(sched_msg_state(f->s, id, &st), 0);
	assert_int_equal(st, SCHED_ST_DELIVERING);
	assert_int_equal(sched_busy(f->s), 1);
	fx_close(f);

	/* restart: the queue as the crash left it */
	fx_open(f, second, 1);
	assert_first_attempt(f, id);
	assert_int_equal(sched_start(f->s), 1);
	settle(f);
	assert_int_equal(f->fk.nasked, 1);
	assert_asked(f, 0, id, SENDER, carol);
	assert_false(on_disk(f, id, &e));
	assert_int_equal(ndsn(f), 0);
	assert_int_equal(f->fk.unscripted, 0);
}

/*
 * test_bounce_budget - limits.bounces_per_hour = 1: the second failed
 * message of the sender is held (failed recipient and no dsn on disk,
 * no second DSN) until the sender's window ends, then bounced
 */
static void
test_bounce_budget(void **state)
{
	static const struct reply script[] = {
		{ "bob@example.net", 550, "5.1.1", "no such user", false },
		{ "carol@example.com", 550, "5.1.1", "no such user", false },
		KEEP_DSN,
	};
	static const char *const to_bob[] = { "bob@example.net", NULL };
	static const char *const to_carol[] = { "carol@example.com", NULL };
	static const char *const status[] = { "5.1.1" };
	struct fx *f = *state;
	struct envelope e;
	struct listing l;
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];
	char first[QUEUE_ID_LEN + 1];
	enum sched_state st;
	size_t i;

	fx_config(f, 1, "");
	fx_open(f, script, 3);
	plant(f, to_bob, a);
	sched_queued(f->s, a);
	settle(f);
	assert_false(on_disk(f, a, &e));
	snprintf(first, sizeof(first), "%s", the_dsn(f));
	assert_dsn(f, first, to_bob, status, NULL);

	plant(f, to_carol, b);
	sched_queued(f->s, b);
	settle(f);
	assert_int_equal(sched_msg_state(f->s, b, &st), 0);
	assert_int_equal(st, SCHED_ST_HELD);
	assert_int_equal(sched_busy(f->s), 0);
	assert_true(on_disk(f, b, &e));
	assert_rcpt(&e, 0, "carol@example.com", RCPT_FAILED, 550, "5.1.1");
	assert_string_equal(e.dsn, "");
	envelope_free(&e);
	assert_int_equal(ndsn(f), 1);

	/* a quarter of an hour later: still the same window */
	clock_now += 900;
	settle(f);
	assert_int_equal(sched_msg_state(f->s, b, &st), 0);
	assert_int_equal(st, SCHED_ST_HELD);
	assert_int_equal(ndsn(f), 1);

	/* the next window, which starts on the hour: the bounce goes out,
	   b is removed (and the first DSN, dated by the scheduler's clock
	   an hour ago less a minute, has not expired yet) */
	clock_now = (clock_now / 3600 + 1) * 3600 + 1;
	settle(f);
	assert_int_equal(sched_msg_state(f->s, b, &st), -1);
	assert_false(on_disk(f, b, &e));
	list(f, &l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.ndsn, 2);
	for (i = 0; i < l.n; i++)
		if (strcmp(l.ids[i], first) != 0)
			assert_dsn(f, l.ids[i], to_carol, status, to_bob);
	assert_int_equal(f->fk.unscripted, 0);
}

/* test_drain - after sched_drain the transport is told, nothing new
   starts, and the message stays queued as it was */
static void
test_drain(void **state)
{
	static const char *const rcpts[] = { "bob@example.net", NULL };
	struct fx *f = *state;
	struct envelope e;
	char id[QUEUE_ID_LEN + 1];
	enum sched_state st;

	fx_config(f, 100, "");
	fx_open(f, NULL, 0);
	plant(f, rcpts, id);
	sched_drain(f->s);
	assert_true(f->fk.drained);
	sched_queued(f->s, id);
	settle(f);
	assert_int_equal(f->fk.nasked, 0);
	assert_int_equal(sched_msg_state(f->s, id, &st), 0);
	assert_int_equal(st, SCHED_ST_IDLE);
	assert_true(on_disk(f, id, &e));
	assert_int_equal(e.attempts, 0);
	envelope_free(&e);
}

/* bob@example.net alone, and a 250 for him at every attempt */
static const char *const to_bob[] = { "bob@example.net", NULL };
static const struct reply bob_ok[] = {
	{ "bob@example.net", 250, "2.0.0", "ok", true },
};

/*
 * test_dead_destination - the next hop stops answering: the attempt
 * that finds out is written as usual; messages queued after it are not
 * tried and not rewritten, only one probe per back-off is; when the
 * next hop answers the probe, every waiting message goes at once
 */
static void
test_dead_destination(void **state)
{
	static const char *const *rcpts = to_bob;
	struct fx *f = *state;
	struct queue_stats qs;
	struct sched_info si;
	struct envelope e;
	char first[QUEUE_ID_LEN + 1], id[20][QUEUE_ID_LEN + 1];
	time_t t0 = clock_now;
	size_t i;

	fx_config(f, 100, "");
	fx_open(f, bob_ok, 1);
	f->fk.unreachable = true;
	plant(f, rcpts, first);
	sched_queued(f->s, first);
	settle(f);
	assert_int_equal(f->fk.nasked, 1);
	assert_true(f->fk.known_down);
	queue_stats(f->q, &qs);
	assert_int_equal(qs.updates, 1);	/* its deferral, on disk */

	/* twenty more while it is down: no attempt, nothing written */
	for (i = 0; i < 20; i++) {
		plant(f, rcpts, id[i]);
		sched_queued(f->s, id[i]);
	}
	settle(f);
	clock_now = t0 + 299;
	settle(f);
	assert_int_equal(f->fk.nasked, 1);
	queue_stats(f->q, &qs);
	assert_int_equal(qs.updates, 1);
	sched_info(f->s, &si);
	assert_int_equal(si.queued, 21);
	assert_int_equal(si.waiting, 20);
	assert_true(on_disk(f, id[0], &e));
	assert_int_equal(e.attempts, 0);
	envelope_free(&e);

	/* the back-off is over: one probe (the first message, due at the
	   same time and oldest), which fails: down twice as long */
	clock_now = t0 + 300;
	settle(f);
	assert_int_equal(f->fk.nasked, 2);
	assert_string_equal(f->fk.asked[1].id, first);
	assert_int_equal(f->fk.backoff, 600);
	queue_stats(f->q, &qs);
	assert_int_equal(qs.updates, 2);
	clock_now = t0 + 300 + 599;
	settle(f);
	assert_int_equal(f->fk.nasked, 2);

	/* it answers again: the next probe gets through, and the rest go
	   at once, each delivered and removed without a rewrite */
	f->fk.unreachable = false;
	clock_now = t0 + 300 + 600;
	settle(f);
	assert_int_equal(f->fk.ups, 1);
	assert_int_equal(f->fk.nasked, 2 + 21);
	queue_stats(f->q, &qs);
	assert_int_equal(qs.updates, 2);
	assert_int_equal(qs.removes, 21);
	sched_info(f->s, &si);
	assert_int_equal(si.queued, 0);
	assert_int_equal(si.waiting, 0);
	assert_int_equal(f->fk.unscripted, 0);
}

/*
 * test_backlog_waits_unread - a restart finds a backlog while the
 * transport already knows its one next hop is down: every message
 * waits on its index entry alone (no envelope read, no attempt), and
 * one probe goes when the back-off ends
 */
static void
test_backlog_waits_unread(void **state)
{
	struct fx *f = *state;
	struct sched_info si;
	char id[QUEUE_ID_LEN + 1];
	size_t i;

	fx_config(f, 100, "");
	fx_open(f, bob_ok, 1);
	for (i = 0; i < 30; i++)
		plant(f, to_bob, id);
	f->fk.unreachable = f->fk.known_down = true;
	f->fk.backoff = 300;
	f->fk.until = clock_now + 300;
	assert_int_equal(sched_start(f->s), 30);
	settle(f);
	sched_info(f->s, &si);
	assert_int_equal(f->fk.nasked, 0);
	assert_int_equal(si.waiting, 30);
	assert_int_equal(si.loads, 0);
	assert_int_equal(si.active, 0);

	clock_now += 300;
	settle(f);
	sched_info(f->s, &si);
	assert_int_equal(f->fk.nasked, 1);	/* the probe */
	assert_int_equal(si.loads, 1);
	assert_int_equal(si.waiting, 29);
}

/*
 * test_waiting_expires - a message that waits for a next hop that is
 * down still expires: past relay.retry.expire it is tried (and
 * deferred) instead of waiting, and bounces
 */
static void
test_waiting_expires(void **state)
{
	struct fx *f = *state;
	struct listing l;
	char first[QUEUE_ID_LEN + 1], second[QUEUE_ID_LEN + 1];
	enum sched_state st;
	time_t t0 = clock_now;

	fx_config(f, 100, "");
	fx_open(f, bob_ok, 1);
	f->fk.unreachable = true;
	plant(f, to_bob, first);
	sched_queued(f->s, first);
	settle(f);
	plant(f, to_bob, second);
	sched_queued(f->s, second);
	settle(f);
	assert_int_equal(f->fk.nasked, 1);	/* the second waits */

	clock_now = t0 + 3600;			/* relay.retry.expire */
	settle(f);
	assert_int_equal(f->fk.nasked, 3);
	assert_int_equal(sched_msg_state(f->s, first, &st), -1);
	assert_int_equal(sched_msg_state(f->s, second, &st), -1);
	list(f, &l);
	assert_int_equal(l.n, 2);		/* their two bounces */
	assert_int_equal(l.ndsn, 2);
}

/*
 * test_gone_while_resting - a message removed behind the scheduler's
 * back while only its index entry is in memory is dropped when it comes
 * due, and the others go on
 */
static void
test_gone_while_resting(void **state)
{
	struct fx *f = *state;
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];
	enum sched_state st;
	struct sched_info si;

	fx_config(f, 100, "");
	fx_open(f, bob_ok, 1);
	plant_at(f, to_bob, a, clock_now + 60);
	plant_at(f, to_bob, b, clock_now + 60);
	assert_int_equal(sched_start(f->s), 2);
	assert_int_equal(queue_remove_sync(f->q, a), 0);
	clock_now += 60;
	settle(f);
	assert_int_equal(sched_msg_state(f->s, a, &st), -1);
	assert_int_equal(f->fk.nasked, 1);
	assert_string_equal(f->fk.asked[0].id, b);
	sched_info(f->s, &si);
	assert_int_equal(si.queued, 0);
	assert_int_equal(si.active, 0);
}

/*
 * test_backlog - BACKLOG messages queued, due one a second in an order
 * that is not the order of their ids: the scheduler keeps a small entry
 * per message and no envelope; each tick looks only at what is due; the
 * drain goes by due time, with never more envelopes in memory than the
 * active set's limit. The queue is on tmpfs (/dev/shm) when there is
 * one, so that planting costs no fsyncs.
 */
#define BACKLOG		50000
#define STRIDE		7919	/* prime: i * STRIDE % BACKLOG permutes */

static void
test_backlog(void **state)
{
	static const char *const *rcpts = to_bob;
	struct fx *f = *state;
	struct queue_stats qs;
	struct sched_info si;
	char id[QUEUE_ID_LEN + 1], first[5][QUEUE_ID_LEN + 1];
	time_t t0 = clock_now, oldest;
	size_t i, k, n;

	strcpy(f->shm, "/dev/shm/postern-test-sched-XXXXXX");
	if (mkdtemp(f->shm) != NULL)
		snprintf(f->state, sizeof(f->state), "%s/state", f->shm);
	else
		f->shm[0] = '\0';
	fx_config(f, 100, "");
	fx_open(f, bob_ok, 1);
	f->fk.many = true;
	for (i = 0; i < BACKLOG; i++) {
		k = i * STRIDE % BACKLOG;
		plant_at(f, rcpts, id, t0 + 10 + (time_t)k);
		if (k < 5)
			memcpy(first[k], id, sizeof(id));
	}
	assert_int_equal(sched_start(f->s), BACKLOG);
	sched_info(f->s, &si);
	assert_int_equal(si.queued, BACKLOG);
	assert_int_equal(si.active, 0);		/* no envelope kept */
	assert_int_equal(si.loads, 0);
	print_message("index: %zu bytes for %d messages (%zu each)\n",
	    si.index_bytes, BACKLOG, si.index_bytes / BACKLOG);
	assert_true(si.index_bytes / BACKLOG <= 128);
	sched_stats(f->s, &n, &oldest);
	assert_int_equal(n, BACKLOG);
	/* indexed from the ids alone: the oldest is the first id's time */
	assert_int_equal(oldest, queue_id_time(first[0]));

	/* nothing due: the ticks look at nothing */
	settle(f);
	sched_info(f->s, &si);
	assert_int_equal(si.looked, 0);
	assert_int_equal(f->fk.nasked, 0);

	/* five due: exactly those are looked at, loaded and tried, in the
	   order of their due times */
	clock_now = t0 + 10 + 4;
	settle(f);
	sched_info(f->s, &si);
	assert_int_equal(si.looked, 5);
	assert_int_equal(si.loads, 5);
	assert_int_equal(f->fk.nasked, 5);
	for (k = 0; k < 5; k++)
		assert_string_equal(f->fk.asked[k].id, first[k]);
	assert_int_equal(si.active, 0);
	assert_int_equal(si.queued, BACKLOG - 5);

	/* everything due: drained by due time, within the active set */
	clock_now = t0 + 10 + BACKLOG;
	for (i = 0; i < 1200 && si.queued > 0; i++) {
		run(f, 50);
		sched_info(f->s, &si);
	}
	assert_int_equal(si.queued, 0);
	assert_int_equal(f->fk.nasked, BACKLOG);
	assert_int_equal(f->fk.out_of_order, 0);
	assert_int_equal(f->fk.unscripted, 0);
	assert_true(si.active_high <= si.active_max);
	print_message("drained: at most %zu envelopes in memory at once\n",
	    si.active_high);
	queue_stats(f->q, &qs);
	assert_int_equal(qs.removes, BACKLOG);
	assert_int_equal(qs.updates, 0);
}

/* What sched_admin's callbacks said. */
static struct {
	unsigned	 calls;
	unsigned	 errors;
	uint64_t	 cookie;
	char		 id[QUEUE_ID_LEN + 1];
} admin_got;

/* admin_cb - sched_admin's callback: counted */
static void
admin_cb(uint64_t cookie, const char *id, const char *error)
{
	admin_got.calls++;
	admin_got.errors += error != NULL;
	admin_got.cookie = cookie;
	snprintf(admin_got.id, sizeof(admin_got.id), "%s", id);
}

/* nasked_for - how many attempts the fake was asked for id */
static unsigned
nasked_for(struct fx *f, const char *id)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < f->fk.nasked && i < MAX_ATTEMPTS; i++)
		n += strcmp(f->fk.asked[i].id, id) == 0;
	return n;
}

/* admin - sched_admin on one id; its return, or -1 with the reason
   checked against why */
static int
admin(struct fx *f, enum sched_admin_op op, const char *id, const char *why)
{
	const char *ids[1] = { id };
	char *err = NULL;
	int n;

	n = sched_admin(f->s, op, ids, id ? 1 : 0, "uid=0 (root)", admin_cb,
	    42, &err);
	if (why == NULL) {
		if (n == -1)
			fail_msg("sched_admin: %s", err);
	} else {
		assert_int_equal(n, -1);
		assert_non_null(err);
		if (strstr(err, why) == NULL)
			fail_msg("sched_admin said \"%s\", not \"%s\"", err,
			    why);
	}
	free(err);
	return n;
}

/*
 * test_admin_hold_release - hold is written to the envelope and keeps
 * the message from every attempt (flush, its due time, a restart, which
 * finds it held when it comes due); release sends it; refusals change
 * nothing; the callback comes once per change in flight, from the loop
 */
static void
test_admin_hold_release(void **state)
{
	static const struct reply script[] = {
		{ "bob@example.net", 451, "4.7.1", "later", false },
		{ "bob@example.net", 250, "2.0.0", "ok", false },
		{ "carol@example.net", 451, "4.7.1", "later", true },
	};
	static const char *const bob[] = { "bob@example.net", NULL };
	static const char *const carol[] = { "carol@example.net", NULL };
	struct fx *f = *state;
	struct envelope e;
	enum sched_state st;
	char id[QUEUE_ID_LEN + 1], other[QUEUE_ID_LEN + 1];
	time_t t0 = clock_now;

	fx_config(f, 100, "");
	fx_open(f, script, 3);
	plant(f, bob, id);
	plant(f, carol, other);
	assert_int_equal(sched_start(f->s), 2);
	settle(f);
	assert_int_equal(f->fk.nasked, 2);

	memset(&admin_got, 0, sizeof(admin_got));
	/* refused, nothing changes: unknown, malformed, not held */
	admin(f, SCHED_HOLD, "AAAAAAAAAAAAAAAAAAAA", "no such message");
	admin(f, SCHED_HOLD, "../x", "not a queue id");
	admin(f, SCHED_RELEASE, id, "not on hold");
	assert_int_equal(admin(f, SCHED_HOLD, id, NULL), 1);
	assert_int_equal(admin_got.calls, 0);	/* never from inside */
	settle(f);
	assert_int_equal(admin_got.calls, 1);
	assert_int_equal(admin_got.errors, 0);
	assert_int_equal(admin_got.cookie, 42);
	assert_string_equal(admin_got.id, id);
	assert_int_equal(sched_msg_state(f->s, id, &st), 0);
	assert_int_equal(st, SCHED_ST_ONHOLD);
	assert_true(on_disk(f, id, &e));
	assert_int_equal(e.held, t0);
	envelope_free(&e);
	/* held again: done at once, no callback owed */
	assert_int_equal(admin(f, SCHED_HOLD, id, NULL), 0);
	admin(f, SCHED_FLUSH, id, "on hold");

	/* never due: not at its time, not flushed, not after a restart */
	clock_now = t0 + 7200;
	settle(f);
	assert_int_equal(admin(f, SCHED_FLUSH, NULL, NULL), 0);
	settle(f);
	assert_true(f->fk.nasked > 2);		/* carol's, not bob's */
	assert_int_equal(nasked_for(f, id), 1);
	fx_close(f);
	fx_open(f, script, 3);
	assert_int_equal(sched_start(f->s), 2);
	clock_now = t0 + 4 * 3600;
	settle(f);
	assert_int_equal(f->fk.nasked, 1);	/* the new fake's: carol */
	assert_int_equal(nasked_for(f, id), 0);
	assert_int_equal(sched_msg_state(f->s, id, &st), 0);
	assert_int_equal(st, SCHED_ST_ONHOLD);

	/* released: due now, sent */
	memset(&admin_got, 0, sizeof(admin_got));
	f->fk.used[0] = true;		/* bob's 451 was the first run's */
	assert_int_equal(admin(f, SCHED_RELEASE, id, NULL), 1);
	settle(f);
	assert_int_equal(admin_got.calls, 1);
	assert_int_equal(admin_got.errors, 0);
	assert_int_equal(nasked_for(f, id), 1);
	assert_false(on_disk(f, id, &e));
}

/*
 * test_admin_delete - delete removes without a bounce; delete with a
 * bounce fails the pending recipients and bounces once, outside the
 * bounce budget; a message being delivered is refused
 */
static void
test_admin_delete(void **state)
{
	static const struct reply script[] = {
		{ "bob@example.net", 451, "4.7.1", "later", true },
		KEEP_DSN,
	};
	static const char *const bob[] = { "bob@example.net", NULL };
	static const char *const failed[] = { "bob@example.net", NULL };
	static const char *const status[] = { "5.0.0", NULL };
	struct fx *f = *state;
	struct envelope e;
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
	char dsn[QUEUE_ID_LEN + 1];

	fx_config(f, 1, "");		/* one bounce an hour */
	fx_open(f, script, 2);
	plant(f, bob, a);
	plant(f, bob, b);
	plant(f, bob, c);
	assert_int_equal(sched_start(f->s), 3);
	settle(f);
	assert_int_equal(f->fk.nasked, 3);

	memset(&admin_got, 0, sizeof(admin_got));
	assert_int_equal(admin(f, SCHED_DELETE, a, NULL), 1);
	settle(f);
	assert_int_equal(admin_got.calls, 1);
	assert_int_equal(admin_got.errors, 0);
	assert_false(on_disk(f, a, &e));
	assert_int_equal(ndsn(f), 0);

	assert_int_equal(admin(f, SCHED_BOUNCE, b, NULL), 1);
	settle(f);
	assert_int_equal(admin_got.calls, 2);
	assert_int_equal(admin_got.errors, 0);
	assert_false(on_disk(f, b, &e));
	snprintf(dsn, sizeof(dsn), "%s", the_dsn(f));
	assert_dsn(f, dsn, failed, status, NULL);
	/* the budget (1 an hour) is spent; an admin's bounce still goes */
	assert_int_equal(admin(f, SCHED_BOUNCE, c, NULL), 1);
	settle(f);
	assert_int_equal(admin_got.calls, 3);
	assert_int_equal(admin_got.errors, 0);
	assert_int_equal(ndsn(f), 2);

	/* being delivered: refused, and nothing changes */
	plant(f, bob, a);
	f->fk.stall = true;
	sched_queued(f->s, a);
	run(f, 50);
	admin(f, SCHED_HOLD, a, "being delivered right now");
	admin(f, SCHED_DELETE, a, "being delivered right now");
	assert_true(on_disk(f, a, &e));
	assert_int_equal(e.held, 0);
	envelope_free(&e);
}

/* test_strstate - every state has its name */
static void
test_strstate(void **state)
{
	(void)state;
	assert_string_equal(sched_strstate(SCHED_ST_IDLE), "idle");
	assert_string_equal(sched_strstate(SCHED_ST_DELIVERING),
	    "delivering");
	assert_string_equal(sched_strstate(SCHED_ST_WRITING), "writing");
	assert_string_equal(sched_strstate(SCHED_ST_BOUNCING), "bouncing");
	assert_string_equal(sched_strstate(SCHED_ST_HELD), "held");
	assert_string_equal(sched_strstate(SCHED_ST_ONHOLD), "on hold");
	assert_string_equal(sched_strstate(SCHED_ST_REMOVING), "removing");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delivered_at_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retry_backoff, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_failure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_window, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bounce_budget, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_destination, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backlog_waits_unread,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting_expires, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_gone_while_resting, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin_hold_release, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_admin_delete, setup,
		    teardown),
		cmocka_unit_test(test_strstate),
	};

	/* the committer calls event_active() from its own thread */
	if (evthread_use_pthreads() == -1) {
		fprintf(stderr, "evthread_use_pthreads failed\n");
		return 1;
	}
	log_init("test_sched", 1);	/* the state trace, on failure */
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
