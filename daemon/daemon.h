/*
 * daemon - the daemon's life cycle: `postern serve`
 *
 * daemon_start() brings the daemon up, in this order: logging, the
 * configuration and its DKIM keys (refusing to run as root without
 * `user`), the event loop, the queue (made if missing, then recovered),
 * the resolver, the control socket (daemon/control.h: bound now,
 * served once the scheduler has started), the listeners
 * (submit/server.h), the metrics listener,
 * the scheduler (relay/sched.h; as root, since the relay's CA file may be
 * readable by root only), the privilege drop (daemon/privsep.h), the
 * queue's committer thread, the DKIM rotation checker, the scheduler's
 * first pass over the queue, and the signal events; then it logs
 * "ready hostname=...". Anything failing there is fatal (exit 1, the
 * reason logged): a daemon that starts is whole.
 *
 * daemon_run() runs the loop until the daemon stops:
 *  - SIGTERM, SIGINT: the graceful stop (daemon/stop.h);
 *  - SIGHUP: reload. A new configuration and its DKIM keys
 *    (daemon/generation.h) for sessions that start from now on, new
 *    listeners bound and gone ones closed (server_reload); bounces are
 *    signed with the new keys and the rotation checker follows them.
 *    Sessions in progress, the scheduler's relay settings and deliveries
 *    in flight keep what they have; the resolver, metrics and
 *    dkim_check_interval change at the next restart. A reload that fails
 *    anywhere changes nothing and says why ("reload of PATH refused:
 *    WHY; the configuration in force stays"). A SIGHUP while stopping is
 *    ignored.
 *
 * daemon_free() closes everything in the order that keeps accepted mail
 * safe (sessions, listeners, metrics, scheduler; then the queue, which
 * waits for commits in progress), frees every generation and logs
 * "stopped".
 *
 * One daemon per process (the sessions and libevent's threading are
 * process-wide). Loop thread only.
 */
#ifndef POSTERN_DAEMON_H
#define POSTERN_DAEMON_H

struct daemon;

/*
 * daemon_start - start serving the configuration at path (which reloads
 * read again); debug: log_debug lines too. Returns the daemon; never
 * NULL (a failure exits).
 */
struct daemon	*daemon_start(const char *path, int debug);

/* daemon_run - the event loop, until a stop ends it */
void		 daemon_run(struct daemon *);

/* daemon_free - close and free everything, log "stopped" */
void		 daemon_free(struct daemon *);

/*
 * daemon_check - load the configuration at path and its DKIM keys as
 * daemon_start() does (`postern check-config`): returns if both load,
 * else prints every problem to stderr ("FILE:LINE: message") and exits
 * 1. Opens no socket and changes nothing on disk.
 */
void		 daemon_check(const char *path);

#endif
