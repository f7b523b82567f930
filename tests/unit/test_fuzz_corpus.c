/*
 * test_fuzz_corpus - replay every kept fuzz input (tests/fuzz/corpus/NAME/
 * and tests/fuzz/crashes/NAME/) through the same target code make fuzz
 * runs under libFuzzer, here built with gcc and without sanitizers: a
 * crash or a broken invariant fails the test of that target.
 *
 * The targets are #included, so this binary checks exactly what the
 * fuzzers check. Inputs listed in tests/fuzz/crashes/KNOWN (not fixed
 * yet) are skipped and named on stderr. Paths are relative to the source
 * tree, where tests/run-all runs the unit tests.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define FUZZ_FAIL(msg)	fail_msg("%s: %s", fuzz_current, (msg))
static const char	*fuzz_current = "";	/* the input being replayed */

#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_address.c"
#include "tests/fuzz/fuzz_auth.c"
#include "tests/fuzz/fuzz_dataread.c"
#include "tests/fuzz/fuzz_dns.c"
#include "tests/fuzz/fuzz_envelope.c"
#include "tests/fuzz/fuzz_keystate.c"
#include "tests/fuzz/fuzz_msghdr.c"
#include "tests/fuzz/fuzz_smtp_parse.c"

#define FUZZ_DIR	"tests/fuzz"

struct target {
	const char	*name;
	int		(*fn)(const uint8_t *, size_t);
};

static const struct target targets[] = {
	{ "address", fuzz_address },
	{ "auth", fuzz_auth },
	{ "dataread", fuzz_dataread },
	{ "dns", fuzz_dns },
	{ "envelope", fuzz_envelope },
	{ "keystate", fuzz_keystate },
	{ "msghdr", fuzz_msghdr },
	{ "smtp_parse", fuzz_smtp_parse },
};

static size_t	total;		/* inputs replayed, all targets */

/* known - is "name/file" listed in crashes/KNOWN? */
static int
known(const char *name, const char *file)
{
	char line[1024], want[512];
	size_t n;
	FILE *f;
	int found = 0;

	if ((f = fopen(FUZZ_DIR "/crashes/KNOWN", "r")) == NULL)
		return 0;
	snprintf(want, sizeof(want), "%s/%s", name, file);
	n = strlen(want);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, want, n) == 0 && (line[n] == ' ' ||
		    line[n] == '\t' || line[n] == '\n' || line[n] == '\0'))
			found = 1;
	fclose(f);
	return found;
}

/* read_all - the whole of path into new memory */
static uint8_t *
read_all(const char *path, size_t *len)
{
	uint8_t *data;
	struct stat st;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) == -1)
		fail_msg("%s: %s", path, strerror(errno));
	data = malloc((size_t)st.st_size + 1);
	assert_non_null(data);
	*len = fread(data, 1, (size_t)st.st_size, f);
	assert_int_equal(*len, (size_t)st.st_size);
	fclose(f);
	return data;
}

/* replay_dir - every regular, non-dot file of dir; returns the count */
static size_t
replay_dir(const struct target *t, const char *kind, int must_exist)
{
	char dir[256], path[768];
	struct dirent *de;
	struct stat st;
	uint8_t *data;
	size_t len, n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), FUZZ_DIR "/%s/%s", kind, t->name);
	if ((d = opendir(dir)) == NULL) {
		if (must_exist)
			fail_msg("%s: %s (run from the source tree)", dir,
			    strerror(errno));
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (strcmp(kind, "crashes") == 0 &&
		    known(t->name, de->d_name)) {
			fprintf(stderr, "# skipping known crasher %s\n", path);
			continue;
		}
		data = read_all(path, &len);
		fuzz_current = path;
		t->fn(data, len);
		fuzz_current = "";
		free(data);
		n++;
	}
	closedir(d);
	return n;
}

/* test_target - the corpus (at least one seed) and the crashes of one */
static void
test_target(void **state)
{
	const struct target *t = *state;
	size_t seeds;

	seeds = replay_dir(t, "corpus", 1);
	if (seeds == 0)
		fail_msg("no seeds in " FUZZ_DIR "/corpus/%s", t->name);
	total += seeds + replay_dir(t, "crashes", 0);
}

/* test_count - report how many inputs were replayed */
static void
test_count(void **state)
{
	(void)state;
	fprintf(stderr, "# replayed %zu fuzz inputs\n", total);
	assert_true(total > 0);
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(targets) / sizeof(targets[0]) + 1];
	size_t i;

	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		memset(&tests[i], 0, sizeof(tests[i]));
		tests[i].name = targets[i].name;
		tests[i].test_func = test_target;
		tests[i].initial_state = (void *)&targets[i];
	}
	memset(&tests[i], 0, sizeof(tests[i]));
	tests[i].name = "count";
	tests[i].test_func = test_count;
	return cmocka_run_group_tests_name("fuzz corpus", tests, NULL, NULL);
}
