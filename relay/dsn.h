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
#include "queue/queue.h"

struct keyring;

/*
 * dsn_queue - write the notification for e's failed recipients into q and
 * hand it to the committer (queue_msg_commit with cb and cookie: the new
 * message's id arrives there). Returns 0, or -1 with *err (newly
 * allocated; nothing was queued): e has the null sender or no failed
 * recipient, the sender's domain is not hosted, signing failed, or the
 * queue refused the message.
 */
int	dsn_queue(const struct config *, const struct keyring *,
	    struct queue *q, const struct envelope *e, queue_commit_cb *cb,
	    uint64_t cookie, char **err);

#endif
