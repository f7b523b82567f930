/*
 * alloc - allocation helpers that never return NULL
 *
 * Out of memory is treated as a broken environment, not a client error:
 * every x* helper logs and aborts (log_panic) instead of returning NULL, so
 * callers never test for it (the Postfix mymalloc / OpenSMTPD xmalloc rule).
 * Sizes are overflow-checked before they reach malloc.
 */
#ifndef POSTERN_ALLOC_H
#define POSTERN_ALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* freezero - wipe len bytes (secrets) and free */
void	 freezero_(void *, size_t);

#endif
