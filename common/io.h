/*
 * io - small file descriptor helpers shared by the queue, the keys
 * commands and the scheduler
 */
#ifndef POSTERN_IO_H
#define POSTERN_IO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * io_write_all - write all n bytes of p to fd, riding out short writes
 * and EINTR. Returns 0, or -1 with errno (EIO for a write of 0 bytes).
 */
int	io_write_all(int fd, const void *p, size_t n);

/*
 * io_pread_all - read exactly n bytes of fd at offset off into p, riding
 * out short reads and EINTR. Returns 0, or -1 with errno (EIO if the
 * file ends first).
 */
int	io_pread_all(int fd, void *p, size_t n, off_t off);

/*
 * io_unix_listen - a listening unix stream socket at path (non-blocking,
 * close-on-exec), mode, backlog; what names it in errors (e.g. "local
 * socket"). Its directory is made (0755) if missing. A socket a daemon
 * that died left there is replaced; one that answers belongs to a
 * running daemon, and anything else at path is left alone: -1 with *err
 * (newly allocated) saying which.
 */
int	io_unix_listen(const char *what, const char *path, mode_t mode,
	    int backlog, char **err);

#endif
