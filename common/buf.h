/*
 * buf - a bounded, growable byte buffer for untrusted input
 *
 * data[len] is always a NUL (an extra byte past len, as in Postfix's
 * VSTRING), so text can be used as a C string when it has no NUL of its
 * own. max is fixed at buf_init(): appending past it fails with -1 and
 * leaves the buffer unchanged, and the caller must turn that into a reply
 * or an error. Growth is overflow-checked; out of memory aborts (alloc.h).
 * The buffer owns data; buf_free() releases it, buf_reset() keeps it.
 */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H

#include <stddef.h>

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
};

void	buf_init(struct buf *, size_t max);
int	buf_append(struct buf *, const void *, size_t);
int	buf_puts(struct buf *, const char *);
int	buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	buf_reset(struct buf *);
void	buf_free(struct buf *);

#endif
