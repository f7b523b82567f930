/*
 * dsn - the delivery status notification (bounce) for a message's failed
 * recipients, RFC 3464
 *
 * It goes only to the message's own envelope sender, which Postern
 * accepted only from a login or listener allowed to use it, so a bounce
 * never lands on a forged third party (no backscatter). A message with
 * the null sender (a bounce itself) never gets one.
 *
 * The notification is a new queued message: envelope sender <>, one
 * recipient (the original sender), From "Mail Delivery System"
 * <MAILER-DAEMON@DOMAIN> where DOMAIN is the hosted domain that signs
 * for the sender's domain, DKIM-signed with that domain's active keys
 * by queue/inject (the same door every message takes into the queue)
 * (so it passes DMARC like the sender's own mail), Auto-Submitted:
 * auto-replied (RFC 3834), multipart/report with a human part, the
 * message/delivery-status part (Final-Recipient, Action: failed, Status,
 * Diagnostic-Code for each failed recipient) and the original header
 * section as text/rfc822-headers (bounded by limits.header_size; the
 * body is never returned).
 */
#ifndef POSTERN_DSN_H
#define POSTERN_DSN_H

#include <stdint.h>

#include "config/config.h"
#include "queue/envelope.h"
#include "queue/inject.h"
#include "queue/queue.h"

struct keyring;

/*
 * dsn_queue - write the notification for e's failed recipients (the
 * original's header section read from q), dated now (the scheduler's
 * clock, which also decides when the bounce expires), and hand it to the
 * queue
 * through inj (inject_end with cb and cookie: the new message's id or
 * its error arrives there). Returns 0, or -1 with *err (newly allocated;
 * nothing was queued): e has the null sender or no failed recipient, the
 * sender's domain is not hosted, signing failed, or the queue refused
 * the message.
 */
int	dsn_queue(const struct config *, const struct keyring *,
	    struct inject *inj, struct queue *q, const struct envelope *e,
	    time_t now, inject_done_fn *cb, uint64_t cookie, char **err);

#endif
