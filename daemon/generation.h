/*
 * generation - the configurations a daemon has run with: one per start
 * or reload (SIGHUP), each a configuration with its DKIM keys
 *
 * A reload gives new sessions a new configuration and keyring; sessions
 * in progress, the scheduler's relay settings and deliveries in flight
 * keep pointing into the ones they started with. So every generation
 * stays in memory, unchanged, until generation_free_all() at exit.
 * XXX reference counts would free them sooner; a reload costs
 * kilobytes.
 *
 * generation_load() builds the candidate for a reload and checks what
 * can be checked without touching the running daemon: the file loads
 * (config_reload), state_dir and user are the running ones (those change
 * only at a restart), every DKIM key loads. The caller then tries the
 * parts that can still fail (the listeners: server_reload) and either
 * adds it (generation_add: it becomes the current one) or throws it
 * away (generation_discard); the current one is untouched until then.
 *
 * Memory: the list owns its generations, each generation its config and
 * keyring. Loop thread only; nothing here exits.
 */
#ifndef POSTERN_GENERATION_H
#define POSTERN_GENERATION_H

#include <stddef.h>

struct config;
struct keyring;

struct generation {
	struct config		*cfg;
	struct keyring		*keys;
	struct generation	*older;
};

/* Newest first; current is never NULL once generation_first() ran. */
struct generations {
	struct generation	*current;
	size_t			 n;
};

/* generation_first - the list of one: what the daemon started with
   (cfg and keys become the list's; keys may be NULL until they are
   loaded, then set in current->keys) */
void	generation_first(struct generations *, struct config *cfg,
	    struct keyring *keys);

/*
 * generation_load - the candidate for reloading path while running is in
 * force: a new generation, not in any list, or NULL after logging each
 * problem (log_warnx "reload: FILE:LINE: message") with *why the reason
 * to refuse (static text): "errors above", "cannot load it", "state_dir
 * and user change only at a restart" or "a DKIM key does not load".
 */
struct generation *generation_load(const char *path,
	    const struct config *running, const char **why);

/* generation_add - g (from generation_load) is current from now on; the
   older ones stay */
void	generation_add(struct generations *, struct generation *g);

/* generation_discard - free a candidate that was not added */
void	generation_discard(struct generation *g);

/* generation_free_all - every generation, at exit; the list is empty
   afterwards */
void	generation_free_all(struct generations *);

#endif
