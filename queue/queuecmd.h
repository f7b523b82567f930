/*
 * queuecmd - `postern queue ...`: the queue as an admin reads it, and
 * the changes an admin asks of the running daemon
 *
 *	postern queue list [--json] [--sender ADDR] [--recipient ADDR|@DOMAIN]
 *			   [--held|--deferred] [-c FILE]
 *	postern queue show ID [--json|--message] [-c FILE]
 *	postern queue flush [ID...] [-c FILE]
 *	postern queue hold ID... / release ID... [-c FILE]
 *	postern queue delete [--bounce] ID... [-c FILE]
 *
 * list and show read the queue directly, without taking it over
 * (queue_open without create: the daemon may be running, or not). list
 * prints one line per queued message (id, size, when accepted, sender,
 * each recipient with its status or last reply, attempts and the next
 * one, "on hold since ..."), or with --json one JSON object per line
 * (README, "The queue as JSON": the shape of `postqueue -j`), keeping
 * only the messages that pass every filter given: --sender (the
 * envelope sender, case aside), --recipient (a recipient address, or
 * any in @DOMAIN), --held (on hold), --deferred (tried, not on hold). A
 * damaged envelope is reported on stderr as "postern: ID: damaged
 * envelope: WHY" and the others are still listed. show prints the
 * envelope as stored, a blank line, then the message as it will leave
 * (the prepended header fields, then the message); --message only the
 * message; --json the object list --json prints for it.
 *
 * flush, hold, release and delete change the running daemon: one
 * request through its control socket (common/ctl.h, daemon/control.h;
 * root and the daemon's user only), all or nothing, answered once the
 * changes are durable. Each prints one line per id named ("ID: on
 * hold"). Every ID is checked (queue_id_valid) before any path or
 * request is built from it.
 *
 * Errors go to stderr as one line "postern: ..." with exit 1: a
 * malformed or unknown id, a message being delivered right now, a
 * release of a message not on hold, a daemon that is not running, a
 * caller who may not control it. The configuration is read as a client
 * reads it (cmdline_config_client: the files it names, such as the
 * root-only TLS key, are not opened, so a user who may not control the
 * daemon hears about the socket, not about a key); its errors as that
 * prints them (exit 1 there). Info log lines are
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
