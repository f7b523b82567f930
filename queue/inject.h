/*
 * inject - the one door into the queue
 *
 * Every message that enters Postern's queue comes through here, as
 * Postfix's cleanup and qmail-queue are the only writers of theirs: the
 * SMTP session (submission listeners and the local `postern sendmail`
 * socket, submit/session.c) and the bounces the relay writes
 * (relay/dsn.c). Nothing else creates queue files.
 *
 * A message goes through four steps:
 *
 *   inject_begin  the envelope (principal, sender, recipients, where it
 *                 came from) under the caller's configuration generation
 *                 and keys; the message file is created in tmp/.
 *   inject_write  the message as it will be stored (CRLF line ends,
 *                 dot-stuffing undone), in chunks of any size. The header
 *                 section is collected (at most limits.header_size bytes)
 *                 and checked once complete: it must parse, hold exactly
 *                 one From: address, that address must pass the caller's
 *                 check (the sender policy) and its domain must be hosted
 *                 here, so that it is signed with that domain's keys.
 *                 Then the fix-ups: a Received: field first (when the
 *                 caller asks for one), a Message-ID: and a Date: at the
 *                 end of the section when it has none. The header
 *                 section and then the body stream through the DKIM
 *                 signer into the message file; the body is never held
 *                 whole.
 *   inject_eom    the data ended: a header section still open is
 *                 complete now (a message without a body) and checked;
 *                 the first refusal is returned, so the caller can weigh
 *                 it against its own (size, line length).
 *   inject_end    the signatures are computed and go into the envelope
 *                 (prepended when the message is sent, so the message
 *                 file is written once); the message and its envelope
 *                 are committed durably (queue/queue.h: fsync, rename,
 *                 directory fsync, shared with other commits waiting).
 *                 Then, on the loop thread: the "queued" hook (the
 *                 scheduler learns of the message) and the caller's
 *                 callback. Only then may a session say 250.
 *   inject_abort  at any time before inject_end: nothing is kept.
 *
 * The first refusal of a message is kept (inject_status); what comes
 * after it is read and dropped, so the caller can read the data to its
 * end and answer once, in step with the client. Refusals are outcomes
 * with their details, never reply text: the caller maps them to its
 * replies (submit/REPLIES.md).
 *
 * Threads: call everything on the loop thread. Completion is
 * asynchronous: the callback carries a cookie the caller looks up (a
 * session id), never a pointer, so a client that leaves meanwhile cannot
 * cause a use-after-free, and it never runs from inside inject_end. What
 * runs on which thread behind these calls is this module's business;
 * callers assume nothing about it. Today: the header checks and the
 * writes into the queue file run as the bytes arrive, on the loop; all
 * of the signer's work (hashing the stored header section and the body,
 * read back from the queue file, and the private-key work) is one job at
 * inject_end, which after inject_start() runs on a pool of worker
 * threads, one per CPU (common/workers.h), so the loop goes on serving
 * meanwhile; without it (tools, tests) it runs on the calling thread.
 * The commit is the queue committer's.
 *
 * Nothing here calls exit(); out of memory aborts (common/alloc.h).
 */
#ifndef POSTERN_INJECT_H
#define POSTERN_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/address.h"
#include "config/config.h"
#include "config/principal.h"

struct inject;
struct event_base;
struct inject_msg;
struct keyring;
struct queue;

/* What became of a message. Each refusal names the reply it gets. */
enum inject_status {
	INJECT_OK,			/* durable in the queue */
	INJECT_QUEUE_ERROR,		/* 451 4.3.0: the queue file could
					   not be written or committed */
	INJECT_SIGN_ERROR,		/* 451 4.7.0: signing failed (a key,
					   the library) */
	INJECT_HEADER_TOO_BIG,		/* 552 5.3.4: the header section is
					   over limits.header_size */
	INJECT_HEADER_MALFORMED,	/* 550 5.6.0: detail says why */
	INJECT_FROM_COUNT,		/* 550 5.6.0: not exactly one From:
					   address */
	INJECT_FROM_MALFORMED,		/* 550 5.6.0: detail says why */
	INJECT_FROM_REFUSED,		/* 550 5.7.1: the caller's check
					   refused it; detail: the address */
	INJECT_FROM_NOT_HOSTED,		/* 550 5.7.1: detail: the domain */
	INJECT_HEADER_UNSIGNABLE,	/* 550 5.6.0: the signer refused a
					   header field; detail says why */
};

/* The Received: field the session asks for (RFC 5321 4.4). */
struct inject_received {
	const char	*helo;		/* the client's EHLO/HELO (sanitized
					   again when written) */
	const char	*client_addr;	/* numeric IP, NULL: local */
	const char	*protocol;	/* "ESMTPSA", ... (RFC 3848) */
	const char	*tls;		/* "TLSv1.3:CIPHER", NULL: none */
};

/* Everything inject_begin needs; copied, so the caller may free it. */
struct inject_params {
	const struct config	*cfg;	/* hostname, limits.header_size,
					   domains; must outlive the message */
	const struct keyring	*keys;	/* signs with these; as cfg */
	const struct principal	*who;	/* the submitter */
	const char		*sender; /* "local@domain", "" for <> */
	char *const		*rcpts;	/* "local@domain" */
	size_t			 nrcpts; /* at least one */
	const char		*client; /* the envelope's client address */
	const char		*helo;	/* the envelope's HELO name */
	bool			 body_8bit;
	bool			 smtputf8;
	time_t			 time;	/* when it arrived (the envelope's
					   time, Received:, Date:); 0: now */
	const struct inject_received *received;	/* NULL: add none */
	/* from_ok - may the message carry this From: address? NULL lets
	   any address of a hosted domain through. Called once, from
	   inject_write, with from_arg. */
	bool			(*from_ok)(const struct address *, void *);
	void			*from_arg;
};

/*
 * inject_done_fn - a message's outcome, on the loop thread, exactly once
 * per inject_end that returned INJECT_OK: status INJECT_OK with the
 * queue id, or the error (INJECT_QUEUE_ERROR with errno in error,
 * INJECT_SIGN_ERROR with detail). id and detail are valid only during
 * the call.
 */
typedef void	inject_done_fn(uint64_t cookie, enum inject_status,
		    const char *id, int error, const char *detail);

/* inject_queued_fn - a message (any: a submission or a bounce) is
   durable: tell the scheduler. Runs before the caller's callback. */
typedef void	inject_queued_fn(void *arg, const char *id);

/* inject_new - the door to queue q (which must outlive it) */
struct inject	*inject_new(struct queue *q);

/* inject_set_queued - who learns of each committed message (NULL:
   nobody); the daemon wires the scheduler here */
void		 inject_set_queued(struct inject *, inject_queued_fn *,
		    void *arg);

/*
 * inject_start - sign on a pool of worker threads (n: 0 for one per CPU)
 * reporting back on base; call once, after any fork or privilege change.
 * 0, or -1 with errno (then signing stays on the loop thread).
 * inject_close - shutdown, before queue_close: wait for the signatures in
 * progress and hand their messages to the queue (their callbacks come
 * with queue_close's), then sign on the calling thread again.
 */
int		 inject_start(struct inject *, struct event_base *base,
		    unsigned n);
void		 inject_close(struct inject *);

/* inject_free - after inject_close and queue_close; NULL is fine;
   messages still open must be gone */
void		 inject_free(struct inject *);

/*
 * inject_begin - start a message. NULL with errno when the message file
 * cannot be created (the caller answers as for INJECT_QUEUE_ERROR).
 */
struct inject_msg *inject_begin(struct inject *, const struct inject_params *);

/* inject_id - the message's queue id (for logs and replies) */
const char	*inject_id(const struct inject_msg *);

/*
 * inject_write - the next len bytes of the message. 0, or -1 once the
 * message is refused (inject_status says why; later calls are no-ops
 * that return -1).
 */
int		 inject_write(struct inject_msg *, const void *, size_t);

/*
 * inject_status - the first refusal so far, or INJECT_OK; *detail (may
 * be NULL) gets its detail ("" when it has none), valid until the
 * message is freed
 */
enum inject_status inject_status(const struct inject_msg *,
		    const char **detail);

/*
 * inject_eom - the end of the message data: close and check a header
 * section still open; the first refusal so far, or INJECT_OK (detail as
 * for inject_status). Calling it again changes nothing.
 */
enum inject_status inject_eom(struct inject_msg *, const char **detail);

/*
 * inject_end - the message is complete (inject_eom is implied): sign and commit. Takes m in
 * every case. INJECT_OK: cb(cookie, ...) will run later with the
 * outcome. Anything else: the message was refused at once and cb will
 * not run (detail in *detail, valid until the next inject call; errno
 * for INJECT_QUEUE_ERROR).
 */
enum inject_status inject_end(struct inject_msg *m, inject_done_fn *cb,
		    uint64_t cookie, const char **detail);

/* inject_abort - drop the message (any time before inject_end) */
void		 inject_abort(struct inject_msg *);

#endif
