/*
 * rates - how much one login may send, how much one recipient may
 * receive, per hour and per day, and how many bounces one sender gets
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
 *   per envelope sender, on the delivery side: bounces (DSNs) per hour
 *   (limits.bounces_per_hour), checked by relay/sched.c before it
 *   writes one, so that an application mailing bad addresses cannot
 *   make the relay a bounce cannon. A refused bounce is not lost: its
 *   message stays queued until the window ends and is checked again.
 *
 * Over a limit the reply is temporary (450 4.7.1 at MAIL, 452 4.7.1 and
 * 450 4.7.1 at RCPT) and says which limit and when its window ends, so a
 * legitimate burst is delayed, not lost. Windows are aligned ("per hour"
 * resets on the hour; the hour is limits.rate_window, a day 24 of them).
 * Messages and recipients count once accepted (the end of DATA handed to
 * the queue); a bounce when rates_bounce lets it be written. A flood
 * against one recipient, or of bounces to one sender, is logged once, at
 * its first refusal in a window, and summarized when the window ends.
 *
 * The counts live in submit/counter.c (narrow on purpose: a shared store
 * can replace it). Loop thread only; the reply texts are static buffers
 * valid until the next call.
 */
#ifndef POSTERN_RATES_H
#define POSTERN_RATES_H

#include <stddef.h>
#include <time.h>

#include "config/config.h"

/* rates_mail - NULL if who (a login, or "sender ADDR") may start a
   message now, else the whole reply line to send */
const char	*rates_mail(const struct config *, const char *who,
		    const char *login, time_t now);

/* rates_rcpt - NULL if who may add recipient rcpt (counted without
   regard to case) to a message that has n so far, else the reply line */
const char	*rates_rcpt(const struct config *, const char *who,
		    const char *login, size_t n, const char *rcpt, time_t now);

/* rates_accepted - count one accepted message from who to rcpts */
void		 rates_accepted(const struct config *, const char *who,
		    char *const *rcpts, size_t n, time_t now);

/*
 * rates_bounce - may a bounce to envelope sender (counted without regard
 * to case) be written now? 0: yes, and it is counted; -1: sender already
 * had limits.bounces_per_hour of them this window, *reset (may be NULL)
 * gets the window's end. Always 0 when the limit is 0 (none).
 */
int		 rates_bounce(const struct config *, const char *sender,
		    time_t now, time_t *reset);

/* rates_free - forget every count (shutdown, tests) */
void		 rates_free(void);

#endif
