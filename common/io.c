/*
 * io - file descriptor helpers; see io.h.
 */
#include <errno.h>
#include <unistd.h>

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
