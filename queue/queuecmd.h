/*
 * queuecmd - `postern queue ...`: the queue as an admin reads it
 *
 *	postern queue list    [-c FILE]
 *	postern queue show ID [--message] [-c FILE]
 *
 * list prints one line per queued message (id, size, when accepted,
 * sender, each recipient with its status or last reply, attempts and
 * the next one), reading the envelopes without taking the queue over
 * (queue_open without create: the daemon may be running); a damaged
 * envelope is reported on stderr as "postern: ID: damaged envelope:
 * WHY" and the others are still listed. show prints the envelope as
 * stored, a blank line, then the message as it will leave (the
 * prepended header fields, then the message file); --message prints
 * only the message. ID is checked (queue_id_valid) before any path is
 * built from it.
 *
 * Errors go to stderr as "postern: ..."; the configuration's errors as
 * cmdline_config() prints them (exit 1 there). Info log lines are
 * silenced (log_set_quiet). Nothing here is used by the daemon.
 */
#ifndef POSTERN_QUEUECMD_H
#define POSTERN_QUEUECMD_H

/*
 * queue_main - run `postern queue` with argv[0..argc) the words after
 * "queue". Returns the exit status (0 done, 1 error), or -1 when the
 * words are not a queue command (the caller prints its usage; exit 2).
 */
int	queue_main(int argc, char **argv);

#endif
