/*
 * keyring - the configured DKIM keys; see keyring.h.
 */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "keys/keyring.h"

struct keyring_domain {
	const struct domain_config	*d;
	struct keyfile			**keys;
	size_t				 nkeys;
	struct dkim_headers		 headers;
};

struct keyring {
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

/* keyring_load - load every domain's keys; NULL if any fails */
struct keyring *
keyring_load(const struct config *cfg, struct config_errors *errs)
{
	struct keyring *kr = xcalloc(1, sizeof(*kr));
	struct keyring_domain *kd;
	const struct dkim_selector_config *sc;
	size_t i, j, before = errs->n;
	char *err;

	kr->domains = xcalloc(cfg->ndomains, sizeof(*kr->domains));
	kr->ndomains = cfg->ndomains;
	for (i = 0; i < cfg->ndomains; i++) {
		kd = &kr->domains[i];
		kd->d = &cfg->domains[i];
		kd->keys = xcalloc(kd->d->ndkim, sizeof(*kd->keys));
		for (j = 0; j < kd->d->ndkim; j++) {
			sc = &kd->d->dkim[j];
			err = NULL;
			kd->keys[kd->nkeys] = keyfile_load(sc->key, kd->d->name,
			    sc->selector, sc->algorithm ==
			    DKIM_ALG_RSA_SHA256 ? KEYFILE_RSA_SHA256 :
			    KEYFILE_ED25519_SHA256, &err);
			if (kd->keys[kd->nkeys] == NULL)
				keyring_error(errs, xasprintf("%s:%d: %s",
				    cfg->path, sc->line, err ? err :
				    "cannot load DKIM key"));
			else
				kd->nkeys++;
			free(err);
		}
		kd->headers = dkim_default_headers;
		if (kd->d->sign_headers) {
			kd->headers.sign =
			    (const char *const *)kd->d->sign_headers;
			kd->headers.nsign = kd->d->nsign_headers;
		}
		if (kd->d->oversign_headers) {
			kd->headers.oversign =
			    (const char *const *)kd->d->oversign_headers;
			kd->headers.noversign = kd->d->noversign_headers;
		}
		err = NULL;
		if (dkim_headers_check(&kd->headers, &err) == -1)
			keyring_error(errs, xasprintf("%s: domain %s: %s",
			    cfg->path, kd->d->name, err));
		free(err);
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
	size_t i, j;

	if (kr == NULL)
		return;
	for (i = 0; i < kr->ndomains; i++) {
		for (j = 0; j < kr->domains[i].nkeys; j++)
			keyfile_free(kr->domains[i].keys[j]);
		free(kr->domains[i].keys);
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

/* keyring_keys - d's keys, RSA first (config order) */
const struct keyfile *const *
keyring_keys(const struct keyring *kr, const struct domain_config *d,
    size_t *n)
{
	const struct keyring_domain *kd = keyring_find(kr, d);

	*n = kd ? kd->nkeys : 0;
	return kd ? (const struct keyfile *const *)kd->keys : NULL;
}

/* keyring_headers - d's header lists */
const struct dkim_headers *
keyring_headers(const struct keyring *kr, const struct domain_config *d)
{
	const struct keyring_domain *kd = keyring_find(kr, d);

	return kd ? &kd->headers : &dkim_default_headers;
}
