/*
 * keyring - selectors, their rotation state and the signing keys; see
 * keyring.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "keys/keyring.h"

/* A key the daemon loaded: kept until keyring_free (see keyring.h). */
struct keyring_loaded {
	char		*path;
	struct keyfile	*kf;
	int		 cached;	/* dkim_key_cache'd: it signs */
};

struct keyring_domain {
	const struct domain_config *d;
	char			*statefile;
	struct keysels		 sels;
	struct keyring_loaded	*loaded;
	size_t			 nloaded;
	const struct keyfile	*active[2];	/* RSA first */
	size_t			 nactive;
	const struct keyfile	**pending;
	size_t			 npending;
	const struct keyfile	**published;	/* active, then retiring */
	enum keystate		*pubstate;
	size_t			 npublished;
	struct dkim_headers	 headers;
};

struct keyring {
	const struct config	*cfg;
	struct keyring_domain	*domains;
	size_t			 ndomains;
};

/* keyring_error - append one message to errs */
static void
keyring_error(struct config_errors *errs, char *msg)
{
	errs->v = xreallocarray(errs->v, errs->n + 1, sizeof(*errs->v));
	errs->v[errs->n++] = msg;
}

/* keyring_alg - the keyfile algorithm of a configured selector */
static enum keyfile_alg
keyring_alg(enum dkim_algorithm a)
{
	return a == DKIM_ALG_RSA_SHA256 ? KEYFILE_RSA_SHA256 :
	    KEYFILE_ED25519_SHA256;
}

/* keyring_selectors - the state file's selectors, then the config's */
int
keyring_selectors(const struct config *cfg, const struct domain_config *d,
    struct keysels *out, char **err)
{
	const struct dkim_selector_config *sc;
	struct keysel *e;
	char *path;
	size_t i;

	path = keystate_path(cfg->state_dir, d->name);
	if (keystate_read(path, out, err) == -1) {
		free(path);
		return -1;
	}
	for (i = 0; i < d->ndkim; i++) {
		sc = &d->dkim[i];
		if ((e = keysels_find(out, sc->selector)) == NULL) {
			keysels_add(out, sc->selector, keyring_alg(
			    sc->algorithm), KEY_ACTIVE, 0, sc->key, sc->line);
			continue;
		}
		if (e->alg != keyring_alg(sc->algorithm)) {
			*err = xasprintf("%s:%d: domains.dkim: selector %s of "
			    "%s is %s here but %s in %s", cfg->path, sc->line,
			    sc->selector, d->name, keyfile_alg_name(
			    keyring_alg(sc->algorithm)),
			    keyfile_alg_name(e->alg), path);
			keysels_free(out);
			free(path);
			return -1;
		}
		free(e->key);
		e->key = xstrdup(sc->key);
		e->line = sc->line;
	}
	free(path);
	return 0;
}

/* keyring_check - the active set can sign */
int
keyring_check(const struct config *cfg, const struct domain_config *d,
    const struct keysels *s, char **err)
{
	const struct keysel *rsa = NULL, *ed = NULL, *twice = NULL, *first;
	size_t i;

	*err = NULL;
	if (s->n == 0) {
		*err = xasprintf("%s:%d: domains: %s has no dkim keys; every "
		    "hosted domain signs its mail: run `postern keys generate "
		    "%s` and add the dkim entries it prints", cfg->path,
		    d->line, d->name, d->name);
		return -1;
	}
	for (i = 0; i < s->n; i++) {
		if (s->v[i].state != KEY_ACTIVE)
			continue;
		first = s->v[i].alg == KEYFILE_RSA_SHA256 ? rsa : ed;
		if (first != NULL && twice == NULL)
			twice = &s->v[i];
		if (s->v[i].alg == KEYFILE_RSA_SHA256)
			rsa = rsa ? rsa : &s->v[i];
		else
			ed = ed ? ed : &s->v[i];
	}
	if (twice != NULL) {
		first = twice->alg == KEYFILE_RSA_SHA256 ? rsa : ed;
		*err = xasprintf("%s:%d: domains.dkim: %s has more than one "
		    "active key of one algorithm (%s and %s are both %s); "
		    "sign with one rsa-sha256 and at most one ed25519-sha256 "
		    "key, and change keys with `postern keys rotate`",
		    cfg->path, d->line, d->name, first->selector,
		    twice->selector, keyfile_alg_name(twice->alg));
		return -1;
	}
	if (rsa == NULL && ed != NULL) {
		*err = xasprintf("%s:%d: domains.dkim: %s has no rsa-sha256 "
		    "key; ed25519-sha256 alone fails DKIM at receivers that "
		    "do not verify it yet (most large ones), so every domain "
		    "signs with rsa-sha256 and may add ed25519-sha256 beside "
		    "it", cfg->path, d->line, d->name);
		return -1;
	}
	if (rsa == NULL) {
		*err = xasprintf("%s:%d: domains.dkim: %s has no active "
		    "rsa-sha256 key (every selector is pending or retiring: "
		    "see `postern keys status %s`)", cfg->path, d->line,
		    d->name, d->name);
		return -1;
	}
	return 0;
}

/* keyring_key - load (once) the key of selector e of kd; a key that
   signs (not a retiring one, loaded only for its DNS record) is cached
   for signing */
static const struct keyfile *
keyring_key(struct keyring_domain *kd, const struct keysel *e, char **err)
{
	struct keyring_loaded *l;
	struct keyfile *kf;
	size_t i;
	int sign = e->state != KEY_RETIRING;

	*err = NULL;
	for (i = 0; i < kd->nloaded; i++) {
		l = &kd->loaded[i];
		if (strcmp(l->path, e->key) == 0 &&
		    strcmp(l->kf->selector, e->selector) == 0 &&
		    l->kf->alg == e->alg) {
			if (sign && !l->cached) {
				dkim_key_cache(l->kf);
				l->cached = 1;
			}
			return l->kf;
		}
	}
	if ((kf = keyfile_load(e->key, kd->d->name, e->selector, e->alg,
	    err)) == NULL)
		return NULL;
	if (sign)
		dkim_key_cache(kf);	/* parsed once, not per message */
	kd->loaded = xreallocarray(kd->loaded, kd->nloaded + 1,
	    sizeof(*kd->loaded));
	kd->loaded[kd->nloaded].path = xstrdup(e->key);
	kd->loaded[kd->nloaded].cached = sign;
	kd->loaded[kd->nloaded++].kf = kf;
	return kf;
}

/* keyring_where - "FILE:LINE" of a configured selector, or the state
   file's name for one only listed there (newly allocated) */
static char *
keyring_where(const struct keyring *kr, const struct keyring_domain *kd,
    const struct keysel *e)
{
	if (e->line > 0)
		return xasprintf("%s:%d", kr->cfg->path, e->line);
	return xasprintf("%s", kd->statefile);
}

/* keyring_set_published - kd's published list: its active keys (already
   set), then the retiring ones */
static void
keyring_set_published(struct keyring_domain *kd,
    const struct keyfile *const *retiring, size_t nretiring)
{
	size_t i, n = kd->nactive + nretiring;

	free(kd->published);
	free(kd->pubstate);
	kd->published = xcalloc(n ? n : 1, sizeof(*kd->published));
	kd->pubstate = xcalloc(n ? n : 1, sizeof(*kd->pubstate));
	for (i = 0; i < n; i++) {
		kd->published[i] = i < kd->nactive ? kd->active[i] :
		    retiring[i - kd->nactive];
		kd->pubstate[i] = i < kd->nactive ? KEY_ACTIVE : KEY_RETIRING;
	}
	kd->npublished = n;
}

/*
 * keyring_apply - load the keys of kd's active and pending selectors in
 * s and, if every active key loaded, make s the domain's selectors.
 * Returns 0, or -1 with the problems in errs (kd is unchanged, except
 * for keys loaded). Pending keys that fail are reported in errs too
 * when strict (at start), else logged and skipped. Retiring keys are
 * loaded for keyring_published() only when they still load; one that
 * does not is no error (the admin may have deleted it already).
 */
static int
keyring_apply(struct keyring *kr, struct keyring_domain *kd,
    struct keysels *s, int strict, struct config_errors *errs)
{
	const struct keyfile *kf, *active[2];
	const struct keyfile **pending, **retiring;
	size_t i, nactive = 0, npending = 0, nretiring = 0, before = errs->n;
	char *err, *where;

	pending = xcalloc(s->n ? s->n : 1, sizeof(*pending));
	retiring = xcalloc(s->n ? s->n : 1, sizeof(*retiring));
	for (i = 0; i < s->n; i++) {
		if (s->v[i].state == KEY_RETIRING) {
			if ((kf = keyring_key(kd, &s->v[i], &err)) != NULL)
				retiring[nretiring++] = kf;
			else
				log_debug("dkim: %s: retiring selector %s: %s",
				    kd->d->name, s->v[i].selector, err);
			free(err);
			continue;
		}
		if ((kf = keyring_key(kd, &s->v[i], &err)) == NULL) {
			where = keyring_where(kr, kd, &s->v[i]);
			if (s->v[i].state == KEY_ACTIVE || strict)
				keyring_error(errs, xasprintf("%s: %s%s",
				    where, s->v[i].state == KEY_PENDING ?
				    "pending selector: " : "", err));
			else
				log_warnx("dkim: %s: pending selector %s: %s",
				    kd->d->name, s->v[i].selector, err);
			free(where);
			free(err);
			continue;
		}
		if (s->v[i].state == KEY_PENDING)
			pending[npending++] = kf;
		else if (nactive < 2)
			active[nactive++] = kf;
	}
	if (errs->n > before) {
		free(pending);
		free(retiring);
		return -1;
	}
	/* keyring_check allowed one key per algorithm: RSA goes first. */
	if (nactive == 2 && active[0]->alg != KEYFILE_RSA_SHA256) {
		kf = active[0];
		active[0] = active[1];
		active[1] = kf;
	}
	memcpy(kd->active, active, nactive * sizeof(*active));
	kd->nactive = nactive;
	free(kd->pending);
	kd->pending = pending;
	kd->npending = npending;
	keyring_set_published(kd, retiring, nretiring);
	free(retiring);
	keysels_free(&kd->sels);
	kd->sels = *s;
	memset(s, 0, sizeof(*s));
	return 0;
}

/* keyring_load_domain - selectors, keys and header lists of kd */
static void
keyring_load_domain(struct keyring *kr, struct keyring_domain *kd,
    struct config_errors *errs)
{
	struct keysels s = { NULL, 0 };
	char *err = NULL;

	kd->statefile = keystate_path(kr->cfg->state_dir, kd->d->name);
	if (keyring_selectors(kr->cfg, kd->d, &s, &err) == -1 ||
	    keyring_check(kr->cfg, kd->d, &s, &err) == -1)
		keyring_error(errs, err);
	else
		(void)keyring_apply(kr, kd, &s, 1, errs);
	keysels_free(&s);

	kd->headers = dkim_default_headers;
	if (kd->d->sign_headers) {
		kd->headers.sign = (const char *const *)kd->d->sign_headers;
		kd->headers.nsign = kd->d->nsign_headers;
	}
	if (kd->d->oversign_headers) {
		kd->headers.oversign =
		    (const char *const *)kd->d->oversign_headers;
		kd->headers.noversign = kd->d->noversign_headers;
	}
	err = NULL;
	if (dkim_headers_check(&kd->headers, &err) == -1)
		keyring_error(errs, xasprintf("%s:%d: domain %s: %s",
		    kr->cfg->path, kd->d->line, kd->d->name, err));
	free(err);
}

/* keyring_load - every domain's selectors and keys; NULL if any fails */
struct keyring *
keyring_load(const struct config *cfg, struct config_errors *errs)
{
	struct keyring *kr = xcalloc(1, sizeof(*kr));
	size_t i, before = errs->n;

	kr->cfg = cfg;
	kr->domains = xcalloc(cfg->ndomains ? cfg->ndomains : 1,
	    sizeof(*kr->domains));
	kr->ndomains = cfg->ndomains;
	for (i = 0; i < cfg->ndomains; i++) {
		kr->domains[i].d = &cfg->domains[i];
		keyring_load_domain(kr, &kr->domains[i], errs);
	}
	if (errs->n > before) {
		keyring_free(kr);
		return NULL;
	}
	return kr;
}

/* keyring_free - wipe and free every key */
void
keyring_free(struct keyring *kr)
{
	struct keyring_domain *kd;
	size_t i, j;

	if (kr == NULL)
		return;
	for (i = 0; i < kr->ndomains; i++) {
		kd = &kr->domains[i];
		for (j = 0; j < kd->nloaded; j++) {
			if (kd->loaded[j].cached)
				dkim_key_uncache(kd->loaded[j].kf);
			keyfile_free(kd->loaded[j].kf);
			free(kd->loaded[j].path);
		}
		free(kd->loaded);
		free(kd->pending);
		free(kd->published);
		free(kd->pubstate);
		keysels_free(&kd->sels);
		free(kd->statefile);
	}
	free(kr->domains);
	free(kr);
}

/* keyring_find - the entry of domain d */
static const struct keyring_domain *
keyring_find(const struct keyring *kr, const struct domain_config *d)
{
	size_t i;

	for (i = 0; i < kr->ndomains; i++)
		if (kr->domains[i].d == d)
			return &kr->domains[i];
	return NULL;
}

/* keyring_keys - d's active keys, RSA first */
const struct keyfile *const *
keyring_keys(const struct keyring *kr, const struct domain_config *d,
    size_t *n)
{
	const struct keyring_domain *kd = keyring_find(kr, d);

	*n = kd ? kd->nactive : 0;
	return kd ? kd->active : NULL;
}

/* keyring_headers - d's header lists */
const struct dkim_headers *
keyring_headers(const struct keyring *kr, const struct domain_config *d)
{
	const struct keyring_domain *kd = keyring_find(kr, d);

	return kd ? &kd->headers : &dkim_default_headers;
}

/* keyring_ndomains - how many domains */
size_t
keyring_ndomains(const struct keyring *kr)
{
	return kr->ndomains;
}

/* keyring_domain - the name of domain i */
const char *
keyring_domain(const struct keyring *kr, size_t i)
{
	return kr->domains[i].d->name;
}

/* keyring_log_changes - log each selector whose state differs in s */
static void
keyring_log_changes(const struct keyring_domain *kd, const struct keysels *s)
{
	const struct keysel *old;
	size_t i;

	for (i = 0; i < s->n; i++) {
		old = keysels_find(&kd->sels, s->v[i].selector);
		if (old != NULL && old->state == s->v[i].state)
			continue;
		log_info("dkim: %s: selector %s is %s%s%s", kd->d->name,
		    s->v[i].selector, keystate_name(s->v[i].state),
		    old ? ", was " : " (new)", old ?
		    keystate_name(old->state) : "");
	}
}

/* keyring_refresh - re-read domain i's selectors */
size_t
keyring_refresh(struct keyring *kr, size_t i)
{
	struct keyring_domain *kd = &kr->domains[i];
	struct config_errors errs = { NULL, 0 };
	struct keysels s = { NULL, 0 };
	char *err = NULL;
	size_t j;

	if (keyring_selectors(kr->cfg, kd->d, &s, &err) == -1 ||
	    keyring_check(kr->cfg, kd->d, &s, &err) == -1) {
		log_warnx("dkim: %s: %s; still signing as before",
		    kd->d->name, err);
		free(err);
		keysels_free(&s);
		return kd->npending;
	}
	keyring_log_changes(kd, &s);
	if (keyring_apply(kr, kd, &s, 0, &errs) == -1) {
		for (j = 0; j < errs.n; j++)
			log_warnx("dkim: %s: %s; still signing as before",
			    kd->d->name, errs.v[j]);
		config_errors_free(&errs);
	}
	keysels_free(&s);
	return kd->npending;
}

/* keyring_pending - the j-th loaded pending key of domain i */
const struct keyfile *
keyring_pending(const struct keyring *kr, size_t i, size_t j)
{
	const struct keyring_domain *kd = &kr->domains[i];

	return j < kd->npending ? kd->pending[j] : NULL;
}

/* keyring_promote - pending selector becomes active, on disk first */
int
keyring_promote(struct keyring *kr, size_t i, const char *selector,
    char **err)
{
	struct keyring_domain *kd = &kr->domains[i];
	struct config_errors errs = { NULL, 0 };
	struct keysels s = { NULL, 0 };
	struct keysel *e;
	time_t now = time(NULL);
	size_t j;
	int lock, rc = -1;

	*err = NULL;
	if ((lock = keystate_lock(kd->statefile, false, err)) == -1)
		return -1;
	if (keyring_selectors(kr->cfg, kd->d, &s, err) == -1)
		goto out;
	if ((e = keysels_find(&s, selector)) == NULL ||
	    e->state != KEY_PENDING) {
		*err = xasprintf("selector %s is no longer pending in %s",
		    selector, kd->statefile);
		goto out;
	}
	for (j = 0; j < s.n; j++)
		if (s.v[j].state == KEY_ACTIVE && s.v[j].alg == e->alg) {
			s.v[j].state = KEY_RETIRING;
			s.v[j].since = now;
		}
	e->state = KEY_ACTIVE;
	e->since = now;
	if (keyring_check(kr->cfg, kd->d, &s, err) == -1 ||
	    keystate_write(kd->statefile, &s, (uid_t)-1, (gid_t)-1, err) ==
	    -1)
		goto out;
	keyring_log_changes(kd, &s);
	if (keyring_apply(kr, kd, &s, 0, &errs) == -1) {
		/* Written, but a key did not load: the next refresh tries
		   again; until then the old keys sign. */
		*err = xstrdup(errs.v[0]);
		config_errors_free(&errs);
		goto out;
	}
	rc = 0;
out:
	keysels_free(&s);
	keystate_unlock(lock);
	return rc;
}

/* keyring_published - the j-th key whose record DNS should serve now */
const struct keyfile *
keyring_published(const struct keyring *kr, size_t i, size_t j,
    enum keystate *state)
{
	const struct keyring_domain *kd = &kr->domains[i];

	if (j >= kd->npublished)
		return NULL;
	if (state != NULL)
		*state = kd->pubstate[j];
	return kd->published[j];
}

/* keyring_config - the configuration the keyring was loaded from */
const struct config *
keyring_config(const struct keyring *kr)
{
	return kr->cfg;
}
