/*
 * io - file descriptor helpers; see io.h.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/io.h"

/* io_write_all - write n bytes, riding out short writes and EINTR */
int
io_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t r;

	while (n > 0) {
		if ((r = write(fd, s, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		s += r;
		n -= (size_t)r;
	}
	return 0;
}

/* io_pread_all - n bytes of fd at off, or -1 */
int
io_pread_all(int fd, void *p, size_t n, off_t off)
{
	char *s = p;
	ssize_t r;

	while (n > 0) {
		if ((r = pread(fd, s, n, off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		s += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

/* io_unix_listen - bind and listen on a unix socket, replacing a dead
   daemon's */
int
io_unix_listen(const char *what, const char *path, mode_t mode, int backlog,
    char **err)
{
	struct sockaddr_un sun;
	struct stat st;
	char *dir, *slash;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*err = xasprintf("%s %s: path too long", what, path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
			*err = xasprintf("%s directory %s: %s", what, dir,
			    strerror(errno));
			free(dir);
			return -1;
		}
	}
	free(dir);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		goto fail;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*err = xasprintf("%s %s: exists and is not a socket",
			    what, path);
			close(fd);
			return -1;
		}
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ||
		    errno == EAGAIN) {
			*err = xasprintf("%s %s: in use by a running daemon",
			    what, path);
			close(fd);
			return -1;
		}
		close(fd);
		(void)unlink(path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0)) == -1)
			goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, mode) == -1 || listen(fd, backlog) == -1)
		goto fail;
	return fd;
fail:
	*err = xasprintf("%s %s: %s", what, path, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}
