/*
 * keystate - the rotation state of one domain's DKIM selectors
 *
 * Each selector of a domain is in one state:
 *	active		signs every message (one rsa-sha256, at most one
 *			ed25519-sha256 per domain)
 *	pending		made by `postern keys rotate`; waits until DNS
 *			serves exactly its key, then the daemon makes it
 *			active and the active selector of its algorithm
 *			retiring
 *	retiring	no longer signs; its record stays published (and
 *			`keys dns` keeps printing it) so that mail signed
 *			before the switch still verifies, until the admin
 *			runs `postern keys remove` after a grace period
 *
 * The state lives on disk next to the keys, STATE_DIR/keys/DOMAIN/state,
 * so it survives restarts. It is a small line-based file:
 *
 *	postern-dkim-state 1
 *	selector SELECTOR ALGORITHM STATE SINCE PATH
 *	...
 *	end
 *
 * ALGORITHM is rsa-sha256 or ed25519-sha256, STATE one of the words
 * above, SINCE the Unix time the selector entered that state, PATH the
 * private key file (the rest of the line). Lines starting with '#' are
 * comments. The "end" line proves the file is whole. keystate_write()
 * replaces it atomically (a temporary file in the same directory,
 * fsync, rename, directory fsync), so a reader sees the old or the new
 * file, never a mix. Writers (the CLI and the daemon) serialize through
 * keystate_lock(); readers need no lock.
 *
 * The file is the admin's and the daemon's: it is parsed strictly
 * (unknown versions, records, algorithms or states, control characters,
 * duplicate selectors, a missing "end" are errors that name the line),
 * and its size is bounded.
 *
 * Errors return -1 with *err newly allocated (free it); out of memory
 * aborts (alloc.h). Nothing here logs or exits.
 */
#ifndef POSTERN_KEYSTATE_H
#define POSTERN_KEYSTATE_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/buf.h"
#include "keys/keyfile.h"

#define KEYSTATE_VERSION	1
#define KEYSTATE_MAX_SIZE	65536	/* bytes */
#define KEYSTATE_MAX_SELECTORS	64

enum keystate {
	KEY_ACTIVE,
	KEY_PENDING,
	KEY_RETIRING,
};

struct keysel {
	char		*selector;
	enum keyfile_alg alg;
	enum keystate	 state;
	time_t		 since;		/* entered state; 0: unknown */
	char		*key;		/* path of the private key */
	int		 line;		/* its config line; 0 when it is
					   only in the state file (not
					   stored on disk) */
};

struct keysels {
	struct keysel	*v;
	size_t		 n;
};

/* keystate_name - "active", "pending", "retiring" */
const char	*keystate_name(enum keystate);

/* keystate_path - STATE_DIR/keys/DOMAIN/state, newly allocated */
char		*keystate_path(const char *state_dir, const char *domain);

/*
 * keystate_parse - the pure reader: text[0..len) into *out (emptied
 * first). Returns 0, or -1 with *err ("line N: ...") and *out empty.
 */
int		 keystate_parse(const char *text, size_t len,
		    struct keysels *out, char **err);

/* keystate_format - append the file's text for s to b; -1 past b's max */
int		 keystate_format(const struct keysels *s, struct buf *b);

/*
 * keystate_read - read and parse path. A missing file is no rotation
 * state yet: 0 with *out empty. Errors name the file.
 */
int		 keystate_read(const char *path, struct keysels *out,
		    char **err);

/*
 * keystate_write - replace path with s atomically (see the top). The
 * new file is mode 0600; when owner is not (uid_t)-1 it is chowned to
 * owner/group first (the CLI runs as root for a daemon that does not).
 */
int		 keystate_write(const char *path, const struct keysels *s,
		    uid_t owner, gid_t group, char **err);

/*
 * keystate_lock - take an exclusive lock (flock) on the directory that
 * holds path, waiting for another writer if wait is set (the CLI), else
 * failing with errno EWOULDBLOCK (the daemon's loop never waits).
 * Returns a descriptor for keystate_unlock(), or -1.
 */
int		 keystate_lock(const char *path, bool wait, char **err);
void		 keystate_unlock(int fd);

/* keysels_find - the entry for selector (exact), or NULL */
struct keysel	*keysels_find(const struct keysels *, const char *selector);

/* keysels_add - append a copy of the strings; returns the new entry */
struct keysel	*keysels_add(struct keysels *, const char *selector,
		    enum keyfile_alg alg, enum keystate state, time_t since,
		    const char *key, int line);

/* keysels_free - free every entry and empty s (reusable) */
void		 keysels_free(struct keysels *s);

#endif
