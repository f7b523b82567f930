/*
 * deliver - one network delivery attempt of one queued message, in
 * relay.mode mx or smarthost
 *
 * The pending recipients are grouped by next hop: a relay.routes entry
 * for their domain (or a parent), else the smarthost, else their
 * domain's MX hosts. Each group is tried on its own, in parallel:
 *
 *   - MX lookup (relay/dns: preference order, random among equals, the
 *     implicit MX when there is none): NXDOMAIN fails the group's
 *     recipients with 550 5.1.2, a null MX with 556 5.1.10 (RFC 7505), a
 *     temporary DNS failure defers them (4.4.3);
 *   - for each host in order, its addresses (A/AAAA as relay.ip
 *     allows), and for each address a connection (relay/smtpc) until
 *     one is ready: a refused connection, a timeout, a 4xx/5xx greeting
 *     or a failed required TLS handshake moves on (RFC 5321 5.1);
 *   - one transaction for the group's recipients; each recipient's
 *     reply is reported as it is (2xx delivered, 5xx failed, else
 *     deferred); when no host could be reached, every recipient is
 *     deferred with the last failure.
 *
 * The connection is closed after its transaction (XXX reuse across
 * messages, connection limits per destination and in total, and
 * relay.pause come next). The source address is the first of
 * relay.addresses of the destination's family. Outbound TLS follows
 * relay.tls (routes too) or relay.smarthost.tls and .verify.
 *
 * Callbacks run on the loop, never from inside deliver_start(). They
 * carry the caller's cookie (the scheduler's message serial), never a
 * pointer. deliver_free() cancels what is in flight without calling
 * back.
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "relay/envelope.h"
#include "relay/smtpc.h"

struct event_base;
struct dns;
struct queue;
struct deliver;

/* deliver_rcpt_cb - the outcome for recipient number rcpt of the
   envelope; relay names where it came from ("host[addr]:port" or the
   name that was looked up) */
typedef void (*deliver_rcpt_cb)(uint64_t cookie, size_t rcpt,
    const struct smtpc_reply *r, const char *relay);

/* deliver_done_cb - every recipient of the attempt has its outcome */
typedef void (*deliver_done_cb)(uint64_t cookie);

/*
 * deliver_new - the delivery engine for cfg's relay settings (its client
 * TLS context is made here, with relay.ca_file). NULL with *err.
 */
struct deliver	*deliver_new(struct event_base *, const struct config *,
		    struct dns *, char **err);

/*
 * deliver_start - try every pending recipient of e, whose message file
 * q holds. What it needs from e is copied. Returns 0 (the callbacks will
 * run), or -1 with *err (newly allocated; nothing will call back) when
 * the message file cannot be opened.
 */
int		 deliver_start(struct deliver *, struct queue *q,
		    const struct envelope *e, deliver_rcpt_cb, deliver_done_cb,
		    uint64_t cookie, char **err);

/* deliver_free - abort everything in flight, without callbacks */
void		 deliver_free(struct deliver *);

#endif
