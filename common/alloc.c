/*
 * alloc - allocation helpers that never return NULL; see alloc.h.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/log.h"

/* xmalloc - malloc or abort */
void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n ? n : 1)) == NULL)
		log_panic("out of memory (%zu bytes)", n);
	return p;
}

/* xcalloc - calloc or abort */
void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if ((p = calloc(nmemb ? nmemb : 1, size ? size : 1)) == NULL)
		log_panic("out of memory (%zu x %zu bytes)", nmemb, size);
	return p;
}

/* xreallocarray - overflow-checked realloc or abort */
void *
xreallocarray(void *old, size_t nmemb, size_t size)
{
	size_t total;
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		log_panic("allocation overflow (%zu x %zu)", nmemb, size);
	total = nmemb * size;
	if ((p = realloc(old, total ? total : 1)) == NULL)
		log_panic("out of memory (%zu x %zu bytes)", nmemb, size);
	return p;
}

/* xstrdup - strdup or abort */
char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		log_panic("out of memory (strdup)");
	return p;
}

/* xstrndup - strndup or abort */
char *
xstrndup(const char *s, size_t n)
{
	char *p;

	if ((p = strndup(s, n)) == NULL)
		log_panic("out of memory (strndup)");
	return p;
}

/* xasprintf - formatted string in new memory, or abort */
char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		log_panic("out of memory (asprintf)");
	return p;
}

/* freezero_ - wipe then free, for buffers that held secrets */
void
freezero_(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}
