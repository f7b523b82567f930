/*
 * generation - configurations and keys kept until exit; see
 * generation.h.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "config/config.h"
#include "daemon/generation.h"
#include "keys/keyring.h"

/* generation_first - the start's configuration */
void
generation_first(struct generations *list, struct config *cfg,
    struct keyring *keys)
{
	list->current = xcalloc(1, sizeof(*list->current));
	list->current->cfg = cfg;
	list->current->keys = keys;
	list->n = 1;
}

/* generation_log - each error as a "reload:" warning, then forget them */
static void
generation_log(struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		log_warnx("reload: %s", errs->v[i]);
	config_errors_free(errs);
}

/* generation_same_user - does cfg run as running's user? */
static bool
generation_same_user(const struct config *cfg, const struct config *running)
{
	if (cfg->user == NULL || running->user == NULL)
		return cfg->user == running->user;
	return strcmp(cfg->user, running->user) == 0;
}

/* generation_load - a checked candidate, or NULL and why not */
struct generation *
generation_load(const char *path, const struct config *running,
    const char **why)
{
	struct config_errors errs = { NULL, 0 };
	struct generation *g;
	struct config *cfg;
	struct keyring *kr;

	if ((cfg = config_reload(path, &errs, running)) == NULL) {
		*why = errs.n ? "errors above" : "cannot load it";
		generation_log(&errs);
		return NULL;
	}
	if (strcmp(cfg->state_dir, running->state_dir) != 0 ||
	    !generation_same_user(cfg, running)) {
		*why = "state_dir and user change only at a restart";
		config_free(cfg);
		return NULL;
	}
	if ((kr = keyring_load(cfg, &errs)) == NULL) {
		*why = "a DKIM key does not load";
		generation_log(&errs);
		config_free(cfg);
		return NULL;
	}
	g = xcalloc(1, sizeof(*g));
	g->cfg = cfg;
	g->keys = kr;
	return g;
}

/* generation_add - the newest is current */
void
generation_add(struct generations *list, struct generation *g)
{
	g->older = list->current;
	list->current = g;
	list->n++;
}

/* generation_discard - a refused candidate */
void
generation_discard(struct generation *g)
{
	if (g == NULL)
		return;
	keyring_free(g->keys);
	config_free(g->cfg);
	free(g);
}

/* generation_free_all - at exit */
void
generation_free_all(struct generations *list)
{
	struct generation *g;

	while ((g = list->current) != NULL) {
		list->current = g->older;
		generation_discard(g);
	}
	list->n = 0;
}
