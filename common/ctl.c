/*
 * ctl - the control socket's framing and its client; see ctl.h.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/ctl.h"

/* ctl_line - compact JSON and a newline */
char *
ctl_line(const json_t *obj, size_t *len)
{
	char *s, *line;
	size_t n;

	/* JSON_COMPACT never writes a newline; JSON_ENSURE_ASCII keeps a
	   line safe for any terminal or log */
	if ((s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII)) == NULL)
		return NULL;
	n = strlen(s);
	line = xmalloc(n + 2);
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	free(s);
	*len = n + 1;
	return line;
}

/* ctl_connect - a socket connected to path; -1 with *err */
static int
ctl_connect(const char *path, char **err)
{
	struct sockaddr_un sun;
	int fd, e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*err = xasprintf("control socket %s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		*err = xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	e = errno;
	close(fd);
	if (e == ENOENT || e == ECONNREFUSED)
		*err = xasprintf("the postern daemon is not running (nothing "
		    "listens on its control socket %s)", path);
	else if (e == EACCES || e == EPERM)
		*err = xasprintf("permission denied on %s: only root and the "
		    "daemon's user may control the daemon", path);
	else
		*err = xasprintf("cannot reach the daemon at %s: %s", path,
		    strerror(e));
	return -1;
}

/* ctl_read_line - the answer's one line into b, within the deadline;
   -1 with *err */
static int
ctl_read_line(int fd, struct buf *b, time_t deadline, char **err)
{
	char chunk[65536];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int left;

	for (;;) {
		if (b->len > 0 && b->data[b->len - 1] == '\n')
			return 0;
		left = (int)(deadline - time(NULL));
		if (left <= 0) {
			*err = xasprintf("the daemon did not answer within "
			    "%d s", CTL_TIMEOUT);
			return -1;
		}
		if (poll(&pfd, 1, left * 1000) == -1) {
			if (errno == EINTR)
				continue;
			*err = xasprintf("poll: %s", strerror(errno));
			return -1;
		}
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) == 0)
			continue;
		if ((n = read(fd, chunk, sizeof(chunk))) == -1) {
			if (errno == EINTR)
				continue;
			*err = xasprintf("reading the daemon's answer: %s",
			    strerror(errno));
			return -1;
		}
		if (n == 0) {
			*err = xstrdup("the daemon closed the connection "
			    "without an answer");
			return -1;
		}
		if (buf_append(b, chunk, (size_t)n) == -1) {
			*err = xstrdup("the daemon's answer is too long");
			return -1;
		}
	}
}

/* ctl_send_all - write n bytes of p to fd without SIGPIPE (the daemon
   may close first: -1 with EPIPE); 0, or -1 with errno */
static int
ctl_send_all(int fd, const char *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		if ((r = send(fd, p, n, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ctl_call - one request, one answer */
json_t *
ctl_call(const char *path, const json_t *req, char **err)
{
	struct buf b;
	json_t *ans;
	json_error_t jerr;
	const char *why;
	char *line;
	size_t len;
	int fd;

	*err = NULL;
	if ((line = ctl_line(req, &len)) == NULL) {
		*err = xstrdup("cannot encode the request");
		return NULL;
	}
	if ((fd = ctl_connect(path, err)) == -1) {
		free(line);
		return NULL;
	}
	if (ctl_send_all(fd, line, len) == -1 && errno != EPIPE &&
	    errno != ECONNRESET) {
		*err = xasprintf("writing to the daemon: %s", strerror(errno));
		free(line);
		close(fd);
		return NULL;
	}
	/* a daemon that refuses the caller answers and closes before it
	   reads: its answer is still there to read */
	free(line);
	buf_init(&b, CTL_LINE_MAX);
	if (ctl_read_line(fd, &b, time(NULL) + CTL_TIMEOUT, err) == -1) {
		buf_free(&b);
		close(fd);
		return NULL;
	}
	close(fd);
	ans = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
	buf_free(&b);
	if (ans == NULL || !json_is_object(ans)) {
		*err = xasprintf("the daemon's answer is not a JSON object%s%s",
		    ans ? "" : ": ", ans ? "" : jerr.text);
		json_decref(ans);
		return NULL;
	}
	if (!json_is_true(json_object_get(ans, "ok"))) {
		why = json_string_value(json_object_get(ans, "error"));
		*err = xstrdup(why ? why : "the daemon refused the request");
		json_decref(ans);
		return NULL;
	}
	return ans;
}
