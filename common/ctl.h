/*
 * ctl - the control socket's wire format, and its client
 *
 * The admin commands that change the running daemon (`postern queue
 * flush, hold, release, delete`, `postern limits show, unlock`) reach it
 * through one unix socket, the configuration's control_socket
 * (daemon/control.h serves it). One request per connection:
 *
 *	client:	{"command": "queue.hold", "ids": ["..."]}\n
 *	daemon:	{"ok": true, ...}\n		then it closes
 *	    or	{"ok": false, "error": "one line for the admin"}\n
 *
 * Each side sends exactly one JSON object (RFC 8259, UTF-8) on one line
 * of at most CTL_LINE_MAX bytes; "command" names what is asked, the
 * other members are its arguments, and what an answer holds besides "ok"
 * is the command's business (daemon/control.h lists them). JSON is
 * written and read by jansson, never by hand.
 *
 * Nothing here is used by the daemon's loop except ctl_line (framing).
 */
#ifndef POSTERN_CTL_H
#define POSTERN_CTL_H

#include <stddef.h>

#include <jansson.h>

#define CTL_LINE_MAX	(4 * 1024 * 1024)	/* bytes in one message */
#define CTL_TIMEOUT	60	/* seconds a client waits for the answer */

/*
 * ctl_line - obj as one line (compact JSON and "\n"), newly allocated,
 * *len its length; NULL if it cannot be encoded
 */
char	*ctl_line(const json_t *obj, size_t *len);

/*
 * ctl_call - send req to the daemon at path and wait (at most
 * CTL_TIMEOUT seconds) for its answer. Returns the answer (an object
 * whose "ok" is true; json_decref it), or NULL with *err (newly
 * allocated, one line for the admin): the daemon is not running (no
 * socket at path, or nobody listening), the caller may not use it
 * (permission denied: root and the daemon's user only), it did not
 * answer in time or sensibly, or it refused the request (its "error").
 */
json_t	*ctl_call(const char *path, const json_t *req, char **err);

#endif
