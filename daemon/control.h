/*
 * control - the daemon's side of the control socket (common/ctl.h): the
 * admin commands that change the running daemon
 *
 * control_open() binds control_socket while the daemon is still root:
 * mode 0600, owned by `user` (so only root and that user can connect,
 * and the daemon can remove it at the end). control_start() serves it
 * on the loop. For each connection the kernel names the caller
 * (SO_PEERCRED): a uid other than 0 and the daemon's own is answered
 * {"ok": false, "error": "permission denied: ..."} and logged; for the
 * others one request line is read (at most CTL_LINE_MAX bytes, within
 * 10 seconds), logged with who asked
 *
 *	control: uid=0 (root): queue.hold 1c2QbT3ZxAbCdEfGhIjK
 *
 * and carried out; the answer is written, its outcome logged, and the
 * connection closed. The commands (members besides "command"; every
 * answer also has "ok"):
 *
 *	queue.flush	["ids": [ID, ...]]	-> "ids": what was flushed
 *	queue.hold	"ids": [ID, ...]	-> "ids"
 *	queue.release	"ids": [ID, ...]	-> "ids"
 *	queue.delete	"ids": [ID, ...], ["bounce": true]	-> "ids"
 *	limits.show				-> limits_show()'s members
 *	limits.unlock	"what": IP or LOGIN	-> "unlocked": N
 *
 * The queue commands are the scheduler's (relay/sched.h: sched_admin):
 * all or nothing, answered once every change is durable; the limits are
 * submit/limits.h's, with the configuration in force. Anything else (not JSON, an unknown command, a
 * missing or mistyped member) gets an error naming what is wrong.
 *
 * Loop thread only. The answer to a request whose changes are still in
 * flight when the daemon stops is never sent (the client says it got
 * none); the changes themselves finish or not as the queue's operations
 * do.
 */
#ifndef POSTERN_CONTROL_H
#define POSTERN_CONTROL_H

struct config;
struct event_base;
struct generations;
struct sched;
struct control;

/* control_open - bind cfg's control_socket (call as root, before the
   privilege drop); NULL with *err (newly allocated) */
struct control	*control_open(const struct config *cfg, char **err);

/* control_start - serve requests on base; the queue commands go to
   sched; gens' current configuration is the one in force */
int		 control_start(struct control *, struct event_base *,
		    struct sched *, const struct generations *gens);

/* control_free - stop serving, close every connection, remove the
   socket; NULL is a no-op */
void		 control_free(struct control *);

#endif
