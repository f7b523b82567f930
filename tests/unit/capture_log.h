/*
 * capture_log - the unit tests' way to read what a module logged: the log
 * goes to stderr, so capture() sends stderr to a fresh temporary file and
 * captured() puts it back and returns what was written.
 *
 * Header-only: static functions per test binary that includes it (marked
 * unused: a test need not call all of them). At most 64 KiB of log is
 * read back. A test that fails while capturing leaves stderr redirected;
 * its teardown calls capture_reset() to put it back.
 */
#ifndef POSTERN_TEST_CAPTURE_LOG_H
#define POSTERN_TEST_CAPTURE_LOG_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAPTURE_MAX	(1 << 16)

static char	 capture_path[64];
static int	 capture_saved = -1;

/* capture - send stderr (the log) to a fresh file */
static void __attribute__((unused))
capture(void)
{
	int fd;

	snprintf(capture_path, sizeof(capture_path),
	    "/tmp/postern-unit-log.XXXXXX");
	assert_true((fd = mkstemp(capture_path)) >= 0);
	fflush(stderr);
	assert_true((capture_saved = dup(STDERR_FILENO)) >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
}

/* captured - stderr back; the log written meanwhile (caller frees) */
static char * __attribute__((unused))
captured(void)
{
	char *s = calloc(1, CAPTURE_MAX);
	ssize_t n;
	int fd;

	assert_non_null(s);
	fflush(stderr);
	dup2(capture_saved, STDERR_FILENO);
	close(capture_saved);
	capture_saved = -1;
	assert_true((fd = open(capture_path, O_RDONLY)) >= 0);
	assert_true((n = read(fd, s, CAPTURE_MAX - 1)) >= 0);
	close(fd);
	unlink(capture_path);
	return s;
}

/* capture_reset - stderr back if a failed test left it captured */
static void __attribute__((unused))
capture_reset(void)
{
	if (capture_saved != -1)
		free(captured());
}

/* occurrences - how often needle is in hay */
static int __attribute__((unused))
occurrences(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

#endif
