/*
 * cmdline - what the `postern` subcommands share on the command line:
 * "-c FILE" and "-d" among positional words, and loading the
 * configuration for a command
 *
 * Used by main.c, `postern serve` (daemon/), `postern queue`
 * (queue/queuecmd.c) and `postern users` (submit/usercmd.c); `postern
 * keys` has richer options of its own (keys/keycmd.c). Both functions
 * may exit(): they are for command-line front ends only, never for the
 * running daemon.
 */
#ifndef POSTERN_CMDLINE_H
#define POSTERN_CMDLINE_H

#include <stddef.h>

struct config;

/*
 * cmdline_args - collect -c FILE (into *cfgpath), -d (into *debug; with
 * debug NULL, -d is refused) and at most maxwords positional words
 * (pointers into argv) in any order. Returns the number of words, or -1
 * for anything else: an unknown option, -c without FILE, one word too
 * many (the caller prints its usage).
 */
int		 cmdline_args(int argc, char **argv, const char **cfgpath,
		    int *debug, const char **words, size_t maxwords);

/*
 * cmdline_config - config_load(path), or print every error to stderr
 * (one "FILE:LINE: message" a line, or "PATH: cannot load
 * configuration") and exit 1. The result is the caller's (config_free).
 */
struct config	*cmdline_config(const char *path);

/* cmdline_errors - print each of errs to stderr, one a line, and empty
   the list (config_errors_free) */
struct config_errors;
void		 cmdline_errors(struct config_errors *errs);

#endif
