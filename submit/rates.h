/*
 * rates - how much one login may send and how much one recipient may
 * receive, per hour and per day
 *
 * A leaked application password must not become hundreds of thousands of
 * spam messages before anyone notices, and an application that mails on
 * request must not become a weapon against one victim's mailbox. So:
 *
 *   per login (or, on a trusted listener, per envelope sender): messages
 *   per hour and per day, checked at MAIL; recipients per hour and per
 *   day, checked at RCPT. limits.user_* are the defaults, a senders
 *   entry may set its login's own (senders.messages_per_hour, ...).
 *
 *   per recipient address, across every login: messages per hour
 *   (limits.recipient_messages_per_hour), checked at RCPT.
 *
 * (Bounces per envelope sender, on the delivery side: relay/budget.h.)
 *
 * Over a limit the reply is temporary (450 4.7.1 at MAIL, 452 4.7.1 and
 * 450 4.7.1 at RCPT) and says which limit and when its window ends, so a
 * legitimate burst is delayed, not lost. Windows are aligned ("per hour"
 * resets on the hour; the hour is limits.rate_window, a day 24 of them).
 * Messages and recipients count once accepted (the end of DATA handed to
 * the queue). A flood against one recipient is logged once, at
 * its first refusal in a window, and summarized when the window ends.
 *
 * The counts live in common/counter.c (narrow on purpose: a shared store
 * can replace it). Loop thread only. A refusal comes back as a reply id
 * (submit/reply.h) with the values its text needs in a struct
 * rates_refusal; the caller formats and sends it, which counts it.
 */
#ifndef POSTERN_RATES_H
#define POSTERN_RATES_H

#include <stddef.h>
#include <time.h>

#include <stdint.h>

#include "common/address.h"
#include "common/log.h"
#include "config/config.h"
#include "config/principal.h"
#include "submit/limits.h"
#include "submit/reply.h"

/* the counts' key for a principal: principal_rate_key's text */
#define RATES_WHO_MAX	(ADDRESS_MAX + 16)

/*
 * What a refusal's reply says. REPLY_RATE_MESSAGES_HOUR, _DAY and
 * REPLY_RATE_RCPTS_HOUR, _DAY take (who, count, setting, limit, until);
 * REPLY_RCPT_FLOOD takes (rcpt, count, limit, until).
 */
struct rates_refusal {
	char		 who[RATES_WHO_MAX];	/* whose counts: the login,
						   "local ACCOUNT" or
						   "sender ADDR" */
	uint64_t	 count;		/* sent in this window (recipients:
					   with the message's so far) */
	const char	*setting;	/* the limit's setting, static */
	unsigned	 limit;
	char		 until[LOG_UTC_LEN];	/* "HH:MM:SS UTC", when the
						   window ends */
};

/*
 * Whose counts apply is the principal's (config/principal.h): a login's
 * own (and its senders entry's limits, if it sets any), a local
 * account's, or on a trusted listener, whose clients share no identity,
 * the envelope sender's (sender, "local@domain").
 *
 * rates_mail - REPLY_NONE if p may start a message from sender now, else
 * REPLY_RATE_MESSAGES_HOUR or _DAY with *r filled
 */
enum reply_id	 rates_mail(const struct config *, const struct principal *p,
		    const char *sender, time_t now, struct rates_refusal *r);

/* rates_rcpt - REPLY_NONE if p may add recipient rcpt (counted without
   regard to case) to a message from sender that has n so far, else
   REPLY_RATE_RCPTS_HOUR or _DAY, or REPLY_RCPT_FLOOD, with *r filled */
enum reply_id	 rates_rcpt(const struct config *, const struct principal *p,
		    const char *sender, size_t n, const char *rcpt, time_t now,
		    struct rates_refusal *r);

/* rates_accepted - count one accepted message from p (sender) to rcpts */
void		 rates_accepted(const struct config *, const struct principal *p,
		    const char *sender, char *const *rcpts, size_t n,
		    time_t now);

/*
 * rates_each - what the rate limits count at now, for `postern limits
 * show` (submit/limits.h): each login's ("login"), local account's
 * ("local") and trusted sender's ("sender") messages and recipients per
 * hour and per day, with the limit that applies to it (its senders
 * entry's own, or limits.user_*), and each recipient address's messages
 * this hour ("recipient", limits.recipient_messages_per_hour). Counts
 * whose limit is 0 are left out.
 */
void		 rates_each(const struct config *, time_t now, limits_fn *fn,
		    void *arg);

/* rates_free - forget every count (shutdown, tests) */
void		 rates_free(void);

#endif
