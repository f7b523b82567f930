/*
 * limitscmd - `postern limits ...`: the admin's view of the running
 * daemon's lockouts and rate limits, and lifting a lockout
 *
 *	postern limits show [--json] [-c FILE]
 *	postern limits unlock IP|LOGIN [-c FILE]
 *
 * Both ask the daemon over its control socket (the configuration's
 * control_socket; common/ctl.h), as root or the daemon's user: requests
 * {"command": "limits.show"} and {"command": "limits.unlock", "what":
 * IP|LOGIN}; the answers are described in submit/limits.h.
 *
 * show prints the lockouts (kind, key, until in UTC, failures) and the
 * counts near their limits (kind, key, setting, count/max, window end in
 * UTC) as two tables, or "no lockouts, nothing near its limit"; with
 * --json the answer's object without "ok" (indented, keys sorted).
 * unlock prints "unlocked WHAT" or "WHAT was not locked out" (exit 0
 * both). A WHAT that is neither an IP address nor a login is refused
 * before anything is loaded or connected (limits_what). Errors go to
 * stderr as one line "postern: ..." (exit 1): the daemon is not running,
 * permission denied, its refusal, an answer not of limits.h's shape. Nothing here is used by the daemon.
 */
#ifndef POSTERN_LIMITSCMD_H
#define POSTERN_LIMITSCMD_H

/*
 * limits_main - run `postern limits` with argv[0..argc) the words after
 * "limits". Returns the exit status (0 done, 1 error), or -1 when the
 * words are not a limits command (the caller prints its usage; exit 2).
 */
int	limits_main(int argc, char **argv);

#endif
