/*
 * budget - how many bounces (DSNs) one envelope sender gets per hour
 *
 * An application that mails bad addresses must not make the relay a
 * bounce cannon: relay/sched.c asks budget_bounce() before it writes a
 * bounce, and limits.bounces_per_hour caps them per envelope sender
 * (counted without regard to case). A refused bounce is not lost: its
 * message stays queued until the window ends and is checked again.
 *
 * Windows are aligned like the submission rates (submit/rates.h): "per
 * hour" is limits.rate_window and resets on it. The first refusal in a
 * window is logged, and the window is summarized when it ends. The counts
 * live in common/counter.c and are lost on restart (a restart forgives).
 * Loop thread only.
 */
#ifndef POSTERN_BUDGET_H
#define POSTERN_BUDGET_H

#include <time.h>

#include "config/config.h"

/*
 * budget_bounce - may a bounce to envelope sender be written now? 0: yes,
 * and it is counted; -1: sender already had limits.bounces_per_hour of
 * them this window, *reset (may be NULL) gets the window's end. Always 0
 * when the limit is 0 (none).
 */
int	budget_bounce(const struct config *, const char *sender, time_t now,
	    time_t *reset);

/* budget_free - forget every count (shutdown, tests) */
void	budget_free(void);

#endif
