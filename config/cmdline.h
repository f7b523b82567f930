/*
 * cmdline - what the `postern` subcommands share on the command line:
 * "-c FILE" and "-d" among positional words, and loading the
 * configuration for a command
 *
 * Used by main.c, `postern serve` (daemon/), `postern queue`
 * (queue/queuecmd.c), `postern users` (submit/usercmd.c) and `postern
 * limits` (submit/limitscmd.c); `postern keys` has richer options of its
 * own (keys/keycmd.c). The loading functions may exit(): they are for
 * command-line front ends only, never for the running daemon.
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

/* cmdline_flag - 1 if flag (say "--json") is among argv[0..*argc), taken
   out of it (its first occurrence; *argc one less), else 0 */
int		 cmdline_flag(int *argc, char **argv, const char *flag);

/*
 * cmdline_config - config_load(path), or print every error to stderr
 * (one "FILE:LINE: message" a line, or "PATH: cannot load
 * configuration") and exit 1. The result is the caller's (config_free).
 */
struct config	*cmdline_config(const char *path);

/*
 * cmdline_config_client - the same with config_load_client: for a
 * command that only talks to the daemon (`postern limits`), so that it
 * neither needs nor reads the files the configuration names (the TLS
 * key is root's)
 */
struct config	*cmdline_config_client(const char *path);

/* cmdline_errors - print each of errs to stderr, one a line, and empty
   the list (config_errors_free) */
struct config_errors;
void		 cmdline_errors(struct config_errors *errs);

#endif
