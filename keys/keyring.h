/*
 * keyring - every configured DKIM key, loaded and checked once
 *
 * keyring_load() loads each domain's keys (keys/keyfile.c refuses a
 * missing, unreadable, loose, weak or mistyped key, naming the file) and
 * checks each domain's header lists; every problem is appended to errs
 * and NULL is returned, so the daemon refuses to start. The keyring is
 * read-only afterwards and belongs to the caller until keyring_free().
 */
#ifndef POSTERN_KEYRING_H
#define POSTERN_KEYRING_H

#include <stddef.h>

#include "config/config.h"
#include "keys/dkim.h"
#include "keys/keyfile.h"

struct keyring;

struct keyring	*keyring_load(const struct config *, struct config_errors *);
void		 keyring_free(struct keyring *);

/* keyring_keys - domain d's keys, RSA first; *n gets their number */
const struct keyfile *const *keyring_keys(const struct keyring *,
		    const struct domain_config *d, size_t *n);

/* keyring_headers - domain d's sign and oversign lists */
const struct dkim_headers *keyring_headers(const struct keyring *,
		    const struct domain_config *d);

#endif
