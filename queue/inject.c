/*
 * inject - the one door into the queue; see inject.h.
 *
 * On the loop thread: the header checks and the bytes into the queue
 * file, as they arrive. All of the signer's work (hashing the header
 * fields and the body, which it reads back from the queue file, and the
 * signatures) is one job at inject_end, on a worker thread when the pool
 * runs (inject_start); the commit itself is the queue committer's
 * (queue/queue.c). libopendkim's canonicalization costs about 75
 * instructions per body byte and signature (keys/dkim.h), half as much
 * as all the rest of a small message's work on the loop: it must not be
 * there.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/msghdr.h"
#include "common/workers.h"
#include "keys/dkim.h"
#include "keys/keyring.h"
#include "queue/envelope.h"
#include "queue/inject.h"
#include "queue/queue.h"

#define INJECT_DETAIL_MAX	512

/* A commit on its way: whom to tell. Found by serial (the queue's
   cookie), oldest first, since commits mostly finish in order. */
struct inject_pending {
	uint64_t		 serial;
	inject_done_fn		*cb;
	uint64_t		 cookie;
	struct inject_pending	*prev, *next;
};

struct inject {
	struct queue		*q;
	inject_queued_fn	*queued;
	void			*queued_arg;
	uint64_t		 next_serial;
	struct inject_pending	*head, *tail;
	struct workers		*workers;	/* NULL: sign in place */
	char			 detail[INJECT_DETAIL_MAX]; /* inject_end's */
};

struct inject_msg {
	struct inject		*inj;
	struct queue_msg	*qm;
	const struct config	*cfg;
	const struct keyring	*keys;
	struct principal	 who;
	struct envelope		 env;		/* without id, size, prepend */
	struct inject_received	 rcv;		/* strings owned below */
	bool			 add_received;
	bool			 (*from_ok)(const struct address *, void *);
	void			*from_arg;
	struct buf		 hdr;		/* the header section so far */
	bool			 in_header;
	/* what the signer needs at inject_end, from the header section on: */
	const struct keyfile *const *sign_keys;
	size_t			 sign_nkeys;
	const struct dkim_headers *sign_headers;
	struct buf		 stored;	/* the header section as stored */
	uint64_t		 body_off;	/* where the body starts in it */
	bool			 has_body;	/* an empty line ended the header */
	struct dkim_signer	*signer;	/* the signing job's */
	enum inject_status	 sign_status;	/* its refusal */
	enum inject_status	 status;	/* the first refusal */
	char			*detail;	/* its detail, or NULL */
	int			 error;		/* errno of QUEUE_ERROR */
	/* from inject_end on: */
	inject_done_fn		*cb;
	uint64_t		 cookie;
	struct buf		 sig;		/* the DKIM-Signature fields */
	char			*serr;		/* why signing failed */
	int			 signed_rc;	/* dkim_signer_finish's */
};

/*
 * The queue's callbacks carry a serial; they find the one door here. It
 * outlives them: the daemon closes the queue (which runs the last
 * callbacks) before it frees the door.
 */
static struct inject	*inject_self;

/* inject_new - the door to q */
struct inject *
inject_new(struct queue *q)
{
	struct inject *inj = xcalloc(1, sizeof(*inj));

	inj->q = q;
	inj->next_serial = 1;
	inject_self = inj;
	return inj;
}

/* inject_set_queued - who learns of each committed message */
void
inject_set_queued(struct inject *inj, inject_queued_fn *fn, void *arg)
{
	inj->queued = fn;
	inj->queued_arg = arg;
}

/* inject_start - sign on worker threads from now on */
int
inject_start(struct inject *inj, struct event_base *base, unsigned n)
{
	if ((inj->workers = workers_new(base, n)) == NULL)
		return -1;
	return 0;
}

/* inject_close - the signatures in progress, done; then sign in place */
void
inject_close(struct inject *inj)
{
	if (inj == NULL || inj->workers == NULL)
		return;
	workers_drain(inj->workers);
	workers_free(inj->workers);
	inj->workers = NULL;
}

/* inject_free - forget the door and any commit still unanswered */
void
inject_free(struct inject *inj)
{
	struct inject_pending *p;

	if (inj == NULL)
		return;
	while ((p = inj->head) != NULL) {
		inj->head = p->next;
		free(p);
	}
	if (inject_self == inj)
		inject_self = NULL;
	free(inj);
}

/* inject_refuse - remember the first refusal; -1 for the caller */
static int __attribute__((format(printf, 3, 4)))
inject_refuse(struct inject_msg *m, enum inject_status st, const char *fmt,
    ...)
{
	va_list ap;

	if (m->status != INJECT_OK)
		return -1;
	m->status = st;
	if (st == INJECT_QUEUE_ERROR)
		m->error = errno;
	va_start(ap, fmt);
	if (vasprintf(&m->detail, fmt, ap) == -1)
		log_panic("out of memory");
	va_end(ap);
	return -1;
}

/* inject_begin - a new message file and its envelope-to-be */
struct inject_msg *
inject_begin(struct inject *inj, const struct inject_params *p)
{
	struct inject_msg *m;
	struct queue_msg *qm;
	size_t i;

	if ((qm = queue_msg_new(inj->q)) == NULL)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	m->inj = inj;
	m->qm = qm;
	m->cfg = p->cfg;
	m->keys = p->keys;
	m->who = *p->who;
	m->env.sender = xstrdup(p->sender);
	if (principal_envelope_name(p->who) != NULL)
		m->env.login = xstrdup(principal_envelope_name(p->who));
	m->env.client = xstrdup(p->client);
	m->env.helo = xstrdup(p->helo);
	m->env.body_8bit = p->body_8bit;
	m->env.smtputf8 = p->smtputf8;
	m->env.time = p->time ? p->time : time(NULL);
	for (i = 0; i < p->nrcpts; i++)
		envelope_add_rcpt(&m->env, p->rcpts[i]);
	if (p->received != NULL) {
		m->add_received = true;
		m->rcv.helo = xstrdup(p->received->helo);
		m->rcv.client_addr = p->received->client_addr ?
		    xstrdup(p->received->client_addr) : NULL;
		m->rcv.protocol = xstrdup(p->received->protocol);
		m->rcv.tls = p->received->tls ?
		    xstrdup(p->received->tls) : NULL;
	}
	m->from_ok = p->from_ok;
	m->from_arg = p->from_arg;
	buf_init(&m->hdr, m->cfg->limits.header_size);
	m->in_header = true;
	return m;
}

/* inject_id - the queue id */
const char *
inject_id(const struct inject_msg *m)
{
	return queue_msg_id(m->qm);
}

/* inject_status - the first refusal so far */
enum inject_status
inject_status(const struct inject_msg *m, const char **detail)
{
	if (detail != NULL)
		*detail = m->detail ? m->detail : "";
	return m->status;
}

/* inject_free_msg - everything of m but the queue file */
static void
inject_free_msg(struct inject_msg *m)
{
	envelope_free(&m->env);
	free((char *)m->rcv.helo);
	free((char *)m->rcv.client_addr);
	free((char *)m->rcv.protocol);
	free((char *)m->rcv.tls);
	buf_free(&m->hdr);
	buf_free(&m->stored);
	buf_free(&m->sig);
	dkim_signer_free(m->signer);
	free(m->serr);
	free(m->detail);
	free(m);
}

/* inject_abort - drop the message */
void
inject_abort(struct inject_msg *m)
{
	if (m == NULL)
		return;
	queue_msg_abort(m->qm);
	inject_free_msg(m);
}

/* inject_store - bytes into the message file (the signer reads the body
   back from there at inject_end) */
static int
inject_store(struct inject_msg *m, const void *p, size_t len)
{
	if (m->status != INJECT_OK)
		return -1;
	if (len == 0)
		return 0;
	if (queue_msg_write(m->qm, p, len) == -1) {
		log_warn("id=%s queue write", inject_id(m));
		return inject_refuse(m, INJECT_QUEUE_ERROR, "%s",
		    strerror(errno));
	}
	return 0;
}

/*
 * inject_from - the header section's one From: address, checked against
 * the caller's policy and the hosted domains; its domain's entry, or
 * NULL (refused)
 */
static const struct domain_config *
inject_from(struct inject_msg *m, const struct msghdr_info *info)
{
	const struct domain_config *dom;
	struct address from[2];
	char addr[ADDRESS_MAX + 1];
	const char *err;
	size_t n;

	if (info->nfrom != 1) {
		inject_refuse(m, INJECT_FROM_COUNT, "%s", "");
		return NULL;
	}
	if (address_header_mailboxes(info->from, info->from_len,
	    m->env.smtputf8, from, 2, &n, &err) == -1) {
		inject_refuse(m, INJECT_FROM_MALFORMED, "%s", err);
		return NULL;
	}
	if (n != 1) {
		inject_refuse(m, INJECT_FROM_COUNT, "%s", "");
		return NULL;
	}
	if (m->from_ok != NULL && !m->from_ok(&from[0], m->from_arg)) {
		inject_refuse(m, INJECT_FROM_REFUSED, "%s",
		    address_format(&from[0], addr, sizeof(addr)));
		return NULL;
	}
	/* The policy only lets hosted addresses through: never send a
	   message unsigned because this was missed. */
	if ((dom = config_signing_domain(m->cfg, from[0].domain)) == NULL) {
		inject_refuse(m, INJECT_FROM_NOT_HOSTED, "%s",
		    from[0].domain);
		return NULL;
	}
	return dom;
}

/*
 * inject_header_done - the header section is complete in m->hdr (end is
 * where the body starts, or hdr.len for a message without one): check
 * From:, choose the keys, then store our Received, the client's header
 * fields, any Message-ID and Date we add, and what followed. The header
 * section as stored is kept for the signer.
 */
static void
inject_header_done(struct inject_msg *m, size_t end)
{
	const struct domain_config *dom;
	struct msghdr_received rcv;
	struct msghdr_info info;
	struct buf add;
	const char *err;
	time_t now = m->env.time;

	m->in_header = false;
	if (m->status != INJECT_OK)
		return;
	if (msghdr_scan(m->hdr.data, end, &info, &err) == -1) {
		inject_refuse(m, INJECT_HEADER_MALFORMED, "%s", err);
		return;
	}
	if ((dom = inject_from(m, &info)) == NULL)
		return;
	m->sign_keys = keyring_keys(m->keys, dom, &m->sign_nkeys);
	m->sign_headers = keyring_headers(m->keys, dom);

	/* The header section as stored: Received, the client's fields,
	   then Message-ID and Date if they were missing. */
	buf_init(&add, info.len + 8192);
	if (m->add_received) {
		memset(&rcv, 0, sizeof(rcv));
		rcv.helo = m->rcv.helo;
		rcv.client_addr = m->rcv.client_addr;
		rcv.hostname = m->cfg->hostname;
		rcv.protocol = m->rcv.protocol;
		rcv.tls = m->rcv.tls;
		rcv.queue_id = inject_id(m);
		rcv.recipient = m->env.nrcpts == 1 ? m->env.rcpts[0].addr :
		    NULL;
		rcv.time = now;
		if (msghdr_add_received(&add, &rcv) == -1)
			log_panic("Received header does not fit");
	}
	if (buf_append(&add, m->hdr.data, info.len) == -1)
		log_panic("header section does not fit");
	if (info.nmessage_id == 0 && msghdr_add_message_id(&add,
	    inject_id(m), m->cfg->hostname) == -1)
		log_panic("Message-ID header does not fit");
	if (info.ndate == 0 && msghdr_add_date(&add, now) == -1)
		log_panic("Date header does not fit");
	(void)inject_store(m, add.data, add.len);
	m->stored = add;	/* the signer's, at inject_end */
	/* The empty line, then the start of the body. */
	if (m->hdr.len > info.len) {
		(void)inject_store(m, m->hdr.data + info.len, 2);
		m->has_body = true;
		m->body_off = queue_msg_size(m->qm);
		(void)inject_store(m, m->hdr.data + info.len + 2,
		    m->hdr.len - info.len - 2);
	}
	buf_free(&m->hdr);
}

/* inject_write - the next bytes of the message */
int
inject_write(struct inject_msg *m, const void *p, size_t len)
{
	size_t take, end;

	if (m->status != INJECT_OK)
		return -1;
	if (!m->in_header)
		return inject_store(m, p, len);
	take = m->hdr.max - m->hdr.len;
	if (take > len)
		take = len;
	if (buf_append(&m->hdr, p, take) == -1)
		log_panic("header buffer accounting");
	if ((end = msghdr_end(m->hdr.data, m->hdr.len)) != 0) {
		inject_header_done(m, end);
		return inject_store(m, (const char *)p + take, len - take);
	}
	if (take < len) {
		m->in_header = false;
		buf_free(&m->hdr);
		return inject_refuse(m, INJECT_HEADER_TOO_BIG, "%zu",
		    m->cfg->limits.header_size);
	}
	return 0;
}

/* inject_pending_take - unlink and return the commit with serial */
static struct inject_pending *
inject_pending_take(struct inject *inj, uint64_t serial)
{
	struct inject_pending *p;

	for (p = inj->head; p != NULL; p = p->next)
		if (p->serial == serial)
			break;
	if (p == NULL)
		return NULL;
	if (p->prev)
		p->prev->next = p->next;
	else
		inj->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		inj->tail = p->prev;
	return p;
}

/* inject_committed - the queue's answer, on the loop thread */
static void
inject_committed(uint64_t serial, int error, const char *id)
{
	struct inject *inj = inject_self;
	struct inject_pending *p;

	if (inj == NULL || (p = inject_pending_take(inj, serial)) == NULL)
		return;
	if (error == 0 && inj->queued != NULL)
		inj->queued(inj->queued_arg, id);
	if (error == 0)
		p->cb(p->cookie, INJECT_OK, id, 0, "");
	else
		p->cb(p->cookie, INJECT_QUEUE_ERROR, id, error,
		    strerror(error));
	free(p);
}

/* inject_end_status - refuse at once, keeping the detail for the caller */
static enum inject_status
inject_end_status(struct inject_msg *m, enum inject_status st,
    const char *detail, const char **out)
{
	int saved = errno;

	snprintf(m->inj->detail, sizeof(m->inj->detail), "%s", detail);
	if (out != NULL)
		*out = m->inj->detail;
	inject_abort(m);
	errno = saved;		/* for INJECT_QUEUE_ERROR's caller */
	return st;
}

/* inject_eom - the data ended */
enum inject_status
inject_eom(struct inject_msg *m, const char **detail)
{
	if (m->in_header && m->status == INJECT_OK)
		inject_header_done(m, m->hdr.len);
	m->in_header = false;
	return inject_status(m, detail);
}

/*
 * inject_sign_body - feed the body, read back from the queue file, to
 * m's signer; -1 with m->serr
 */
static int
inject_sign_body(struct inject_msg *m)
{
	char chunk[65536];
	uint64_t off = m->body_off;
	ssize_t n;

	while ((n = queue_msg_read(m->qm, chunk, sizeof(chunk), off)) > 0) {
		if (dkim_signer_body(m->signer, chunk, (size_t)n) == -1) {
			m->serr = xstrdup(dkim_signer_error(m->signer));
			return -1;
		}
		off += (uint64_t)n;
	}
	if (n == -1) {
		m->serr = xasprintf("reading the message back: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * inject_sign - all of the signer's work (on a worker, or in place): the
 * header section as stored, the body, the signatures. Nothing here logs
 * or touches anything but m: the loop thread reports the outcome
 * (inject_commit).
 */
static void
inject_sign(void *arg)
{
	struct inject_msg *m = arg;

	m->signed_rc = -1;
	m->sign_status = INJECT_SIGN_ERROR;
	if ((m->signer = dkim_signer_new(m->sign_keys, m->sign_nkeys,
	    m->sign_headers, 0, &m->serr)) == NULL)
		return;
	if (dkim_signer_headers(m->signer, m->stored.data, m->stored.len) ==
	    -1) {
		m->sign_status = INJECT_HEADER_UNSIGNABLE;
		m->serr = xstrdup(dkim_signer_error(m->signer));
		return;
	}
	if (m->has_body && inject_sign_body(m) == -1)
		return;
	m->signed_rc = dkim_signer_finish(m->signer, &m->sig, &m->serr);
}

/*
 * inject_commit - signed (or not): hand m to the committer. Takes m.
 * INJECT_OK: its callback will come; else the error, with the detail in
 * inj->detail and errno set for INJECT_QUEUE_ERROR.
 */
static enum inject_status
inject_commit(struct inject_msg *m)
{
	struct inject *inj = m->inj;
	struct inject_pending *p;
	enum inject_status st;
	int saved;

	if (m->signed_rc == -1) {
		log_warnx("id=%s dkim: %s", inject_id(m),
		    m->serr ? m->serr : "no signer");
		st = inject_end_status(m, m->sign_status, m->serr ?
		    m->serr : "no signer", NULL);
		return st;
	}
	m->env.prepend = m->sig.data;	/* the envelope frees it */
	m->env.prepend_len = m->sig.len;
	m->sig.data = NULL;
	m->sig.len = m->sig.cap = 0;
	p = xcalloc(1, sizeof(*p));
	p->serial = inj->next_serial++;
	p->cb = m->cb;
	p->cookie = m->cookie;
	if (queue_msg_commit(m->qm, &m->env, inject_committed,
	    p->serial) == -1) {
		saved = errno;
		log_warn("id=%s commit", inject_id(m));
		free(p);
		m->qm = NULL;		/* queue_msg_commit aborted it */
		snprintf(inj->detail, sizeof(inj->detail), "%s",
		    strerror(saved));
		inject_free_msg(m);
		errno = saved;
		return INJECT_QUEUE_ERROR;
	}
	p->prev = inj->tail;
	if (inj->tail)
		inj->tail->next = p;
	else
		inj->head = p;
	inj->tail = p;
	inject_free_msg(m);
	return INJECT_OK;
}

/* inject_signed - a worker signed m: commit it, or tell the caller */
static void
inject_signed(void *arg)
{
	struct inject_msg *m = arg;
	struct inject *inj = m->inj;
	inject_done_fn *cb = m->cb;
	uint64_t cookie = m->cookie;
	char id[QUEUE_ID_LEN + 1];
	enum inject_status st;
	int error;

	snprintf(id, sizeof(id), "%s", inject_id(m));
	if ((st = inject_commit(m)) != INJECT_OK) {
		error = st == INJECT_QUEUE_ERROR ? errno : 0;
		cb(cookie, st, id, error, inj->detail);
	}
}

/*
 * inject_end - sign, then hand to the committer: on a worker when the
 * pool runs (the outcome then always comes through cb), else here
 */
enum inject_status
inject_end(struct inject_msg *m, inject_done_fn *cb, uint64_t cookie,
    const char **detail)
{
	struct inject *inj = m->inj;
	enum inject_status st;

	if (inject_eom(m, NULL) != INJECT_OK) {
		errno = m->error;
		return inject_end_status(m, m->status, m->detail ? m->detail :
		    "", detail);
	}
	m->cb = cb;
	m->cookie = cookie;
	buf_init(&m->sig, ENVELOPE_PREPEND_MAX);
	if (inj->workers != NULL) {
		workers_submit(inj->workers, inject_sign, inject_signed, m);
		return INJECT_OK;
	}
	inject_sign(m);
	st = inject_commit(m);
	if (st != INJECT_OK && detail != NULL)
		*detail = inj->detail;
	return st;
}
