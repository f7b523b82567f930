/*
 * cmdline - the subcommands' shared options; see cmdline.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cmdline.h"
#include "config/config.h"

/* cmdline_args - -c FILE, -d and positional words in any order */
int
cmdline_args(int argc, char **argv, const char **cfgpath, int *debug,
    const char **words, size_t maxwords)
{
	size_t n = 0;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			if (++i >= argc)
				return -1;
			*cfgpath = argv[i];
		} else if (strcmp(argv[i], "-d") == 0 && debug)
			*debug = 1;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return -1;
		else if (n < maxwords)
			words[n++] = argv[i];
		else
			return -1;
	}
	return (int)n;
}

/* cmdline_flag - take flag out of argv */
int
cmdline_flag(int *argc, char **argv, const char *flag)
{
	int i;

	for (i = 0; i < *argc; i++)
		if (strcmp(argv[i], flag) == 0) {
			memmove(&argv[i], &argv[i + 1],
			    (size_t)(*argc - i - 1) * sizeof(*argv));
			(*argc)--;
			return 1;
		}
	return 0;
}

/* cmdline_load - load(path) or print every error and exit 1 */
static struct config *
cmdline_load(const char *path, struct config *(*load)(const char *,
    struct config_errors *))
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;

	if ((cfg = load(path, &errs)) == NULL) {
		if (errs.n == 0)
			fprintf(stderr, "%s: cannot load configuration\n",
			    path);
		cmdline_errors(&errs);
		exit(1);
	}
	return cfg;
}

/* cmdline_config - load or print every error and exit 1 */
struct config *
cmdline_config(const char *path)
{
	return cmdline_load(path, config_load);
}

/* cmdline_config_client - the same for a client of the daemon */
struct config *
cmdline_config_client(const char *path)
{
	return cmdline_load(path, config_load_client);
}

/* cmdline_errors - to stderr, then forget them */
void
cmdline_errors(struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		fprintf(stderr, "%s\n", errs->v[i]);
	config_errors_free(errs);
}
