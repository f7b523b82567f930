/*
 * io - small file descriptor helpers shared by the queue, the keys
 * commands and the scheduler
 */
#ifndef POSTERN_IO_H
#define POSTERN_IO_H

#include <stddef.h>

/*
 * io_write_all - write all n bytes of p to fd, riding out short writes
 * and EINTR. Returns 0, or -1 with errno (EIO for a write of 0 bytes).
 */
int	io_write_all(int fd, const void *p, size_t n);

#endif
