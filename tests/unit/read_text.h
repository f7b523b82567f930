/*
 * read_text - the unit tests' way to load a whole repository file (the
 * example configuration, REPLIES.md) that they check code against.
 *
 * Header-only: one static function per test binary that includes it.
 * Returns the file's bytes NUL-terminated in new memory (xmalloc: aborts
 * when out of memory), or NULL with errno set if it cannot be opened.
 * Paths are relative: the tests run from the repository root.
 */
#ifndef POSTERN_TEST_READ_TEXT_H
#define POSTERN_TEST_READ_TEXT_H

#include <stdio.h>

#include "common/alloc.h"

/* read_text - whole file in new memory, or NULL */
static char *
read_text(const char *path)
{
	FILE *fp;
	char *text;
	long n;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	text = xmalloc((size_t)n + 1);
	text[fread(text, 1, (size_t)n, fp)] = '\0';
	fclose(fp);
	return text;
}

#endif
