/*
 * deliver - one network delivery attempt of one queued message, in
 * relay.mode mx or smarthost
 *
 * The pending recipients are grouped by next hop: a relay.routes entry
 * for their domain (or a parent), else the smarthost, else their
 * domain's MX hosts. Each group is tried on its own, in parallel:
 *
 *   - MX lookup (common/dns: preference order, random among equals, the
 *     implicit MX when there is none): NXDOMAIN fails the group's
 *     recipients with 550 5.1.2, a null MX with 556 5.1.10 (RFC 7505), a
 *     temporary DNS failure defers them (4.4.3);
 *   - for each host in order, its addresses (A/AAAA as relay.ip
 *     allows), and for each address a connection (relay/smtpc) until
 *     one is ready: a refused connection, a timeout, a 4xx/5xx greeting
 *     or a failed required TLS handshake moves on (RFC 5321 5.1);
 *   - one transaction for the group's recipients; each recipient's
 *     reply is reported as it is (the scheduler classifies it); when
 *     no host could be reached, every recipient gets the last failure
 *     (a deferral, unless it was a permanent reply).
 *
 * The source address is the first of relay.addresses of the
 * destination's family. Outbound TLS follows relay.tls (or the route's tls)
 * or relay.smarthost.tls and .verify.
 *
 * Connections outlive attempts. A destination is an address and port;
 * two connections are equivalent when they share the destination, the
 * TLS policy, the verify flag, the peer name (the MX or next-hop name)
 * and the AUTH login.
 *
 *   - Reuse: after a transaction, a connection smtpc calls usable stays
 *     idle in a cache instead of QUITting; a group (of this message or
 *     a later one, for any domain) whose next address it is uses an
 *     equivalent idle connection first (logged "reused"). An idle
 *     connection is QUIT after DL_IDLE_TIMEOUT (5 s) and none carries
 *     more than DL_CONN_MAX_MSGS (100) transactions (constants in
 *     deliver.c; no settings). If a reused connection turns out dead
 *     (smtpc_send refuses it, or every recipient gets code 0 with
 *     usable false: the server closed it while idle), the group is
 *     tried once more on a new connection instead of deferred. (Lost
 *     after the final "." but before its reply, that can send twice,
 *     as the deferral it replaces would.)
 *   - Limits: relay.connections counts every connection (opening,
 *     busy, idle), relay.connections_per_host those to one destination.
 *     A group that would exceed one waits, first come first served, in
 *     a queue scanned from the loop when a connection closes or goes
 *     idle; when a limit is reached, idle connections are closed to
 *     make room (the destination's own first, then the least recently
 *     used). A connection handed to smtpc_quit stops counting at once,
 *     though its QUIT may take a moment; an idle one the server closed
 *     counts until it is reused (and found dead) or times out.
 *   - relay.pause > 0: transactions to one destination go one at a
 *     time, and the next starts (connection reuse or opening included)
 *     at least relay.pause after the previous one ended, whatever its
 *     outcome; groups queue for their turn. A connection that fails
 *     before its transaction does not start the pause.
 *
 * Waiting never blocks the loop; only the queued groups wait.
 *
 * Sites that are down: a group none of whose addresses would take a
 * connection (a deferral; not a 5xx) marks its site down, the
 * smarthost's or route's host:port or, in mx mode, the recipient
 * domain: logged once, kept in memory for relay.retry.first, doubling
 * to relay.retry.max per failed probe, forgotten (logged, and the
 * transport's up_cb called) when a connection to it is ready. A group
 * for a site that is down is deferred at once (4.4.1, no connection)
 * unless it is the site's probe; the transport's down() and
 * still_down() tell the scheduler so before it even starts an attempt
 * (relay/SCHED.md, "Destinations that are down").
 *
 * Callbacks (relay/transport.h's) run on the loop, never from inside
 * deliver_start(). They carry the caller's cookie (the scheduler's
 * message serial), never a pointer. deliver_free() cancels what is in
 * flight without calling back. The scheduler sees all this through
 * deliver_transport_new(): the network as one transport.
 */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "queue/envelope.h"
#include "relay/transport.h"

struct event_base;
struct dns;
struct queue;
struct deliver;

/*
 * deliver_new - the delivery engine for cfg's relay settings (its client
 * TLS context is made here, with relay.ca_file). NULL with *err.
 */
struct deliver	*deliver_new(struct event_base *, const struct config *,
		    struct dns *, char **err);

/*
 * deliver_start - try every pending recipient of e, whose message file
 * q holds, with sender as MAIL FROM. What it needs from e and sender is
 * copied. Each recipient's reply goes to rcpt_cb as it came (code 0:
 * none), then done_cb ends the attempt. Returns 0 (the callbacks will
 * run), or -1 with *err (newly allocated; nothing will call back) when
 * the message file cannot be opened.
 */
int		 deliver_start(struct deliver *, struct queue *q,
		    const struct envelope *e, const char *sender,
		    transport_rcpt_cb, transport_done_cb, uint64_t cookie,
		    char **err);

/*
 * deliver_free - abort everything, without callbacks: lookups,
 * connections in flight and idle (closed without QUIT), waiting groups
 */
void		 deliver_free(struct deliver *);

/*
 * deliver_transport_new - deliver_new() behind relay/transport.h, named
 * after relay.mode ("mx" or "smarthost"), delivering messages of q;
 * its free() is deliver_free(). NULL with *err.
 */
struct transport *deliver_transport_new(struct event_base *,
		    const struct config *, struct dns *, struct queue *q,
		    char **err);

#endif
