/*
 * keystate - the rotation state file of a domain's selectors; see
 * keystate.h.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/io.h"
#include "keys/keystate.h"

#define KEYSTATE_MAGIC	"postern-dkim-state"

static const char *const keystate_names[] = {
	[KEY_ACTIVE] = "active",
	[KEY_PENDING] = "pending",
	[KEY_RETIRING] = "retiring",
};

/* keystate_name - the word for a state */
const char *
keystate_name(enum keystate st)
{
	if ((size_t)st < sizeof(keystate_names) / sizeof(keystate_names[0]))
		return keystate_names[st];
	return "unknown";
}

/* keystate_path - where a domain's state lives */
char *
keystate_path(const char *state_dir, const char *domain)
{
	return xasprintf("%s/keys/%s/state", state_dir, domain);
}

/* keysels_find - the entry for selector */
struct keysel *
keysels_find(const struct keysels *s, const char *selector)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].selector, selector) == 0)
			return &s->v[i];
	return NULL;
}

/* keysels_add - append one entry */
struct keysel *
keysels_add(struct keysels *s, const char *selector, enum keyfile_alg alg,
    enum keystate state, time_t since, const char *key, int line)
{
	struct keysel *e;

	s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
	e = &s->v[s->n++];
	e->selector = xstrdup(selector);
	e->alg = alg;
	e->state = state;
	e->since = since;
	e->key = xstrdup(key);
	e->line = line;
	return e;
}

/* keysels_free - free every entry */
void
keysels_free(struct keysels *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->v[i].selector);
		free(s->v[i].key);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* keystate_word - the next space-separated word of *p, NUL-terminated in
   place; NULL if there is none */
static char *
keystate_word(char **p)
{
	char *w = *p, *sp;

	if (w == NULL || *w == '\0')
		return NULL;
	if ((sp = strchr(w, ' ')) != NULL) {
		*sp = '\0';
		*p = sp + 1;
	} else
		*p = w + strlen(w);
	return w;
}

/* keystate_state_parse - a state word; -1 if unknown */
static int
keystate_state_parse(const char *w, enum keystate *st)
{
	size_t i;

	for (i = 0; i < sizeof(keystate_names) / sizeof(keystate_names[0]);
	    i++)
		if (strcmp(w, keystate_names[i]) == 0) {
			*st = (enum keystate)i;
			return 0;
		}
	return -1;
}

/* keystate_selector_line - parse the words after "selector"; NULL or the
   reason it is wrong (static) */
static const char *
keystate_selector_line(char *rest, struct keysels *out)
{
	char *sel, *alg, *st, *since, *end;
	enum keyfile_alg a;
	enum keystate state;
	unsigned long long t;

	sel = keystate_word(&rest);
	alg = keystate_word(&rest);
	st = keystate_word(&rest);
	since = keystate_word(&rest);
	if (sel == NULL || alg == NULL || st == NULL || since == NULL ||
	    *rest == '\0')
		return "want \"selector SELECTOR ALGORITHM STATE SINCE PATH\"";
	if (!keyfile_valid_selector(sel))
		return "not a valid selector";
	if (keysels_find(out, sel) != NULL)
		return "selector listed twice";
	if (keyfile_alg_parse(alg, &a) == -1)
		return "algorithm is not rsa-sha256 or ed25519-sha256";
	if (keystate_state_parse(st, &state) == -1)
		return "state is not active, pending or retiring";
	errno = 0;
	t = strtoull(since, &end, 10);
	if (errno != 0 || *end != '\0' || since[0] < '0' || since[0] > '9' ||
	    t > (unsigned long long)INT64_MAX)
		return "SINCE is not a Unix time";
	if (rest[0] != '/')
		return "PATH is not absolute";
	if (out->n == KEYSTATE_MAX_SELECTORS)
		return "too many selectors";
	keysels_add(out, sel, a, state, (time_t)t, rest, 0);
	return NULL;
}

/* keystate_parse - the strict reader */
int
keystate_parse(const char *text, size_t len, struct keysels *out,
    char **err)
{
	const char *why = NULL, *nl;
	char *line;
	size_t off = 0, i, n;
	int lineno = 0, ended = 0;

	keysels_free(out);
	*err = NULL;
	if (len > KEYSTATE_MAX_SIZE) {
		*err = xasprintf("larger than %d bytes", KEYSTATE_MAX_SIZE);
		return -1;
	}
	while (off < len && why == NULL) {
		lineno++;
		if ((nl = memchr(text + off, '\n', len - off)) == NULL) {
			why = "the last line is not terminated (truncated?)";
			break;
		}
		n = (size_t)(nl - (text + off));
		line = xstrndup(text + off, n);
		off += n + 1;
		for (i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
				break;
		if (i < n)
			why = "control character";
		else if (ended)
			why = "text after \"end\"";
		else if (lineno == 1) {
			if (strcmp(line, KEYSTATE_MAGIC " 1") != 0)
				why = strncmp(line, KEYSTATE_MAGIC " ",
				    sizeof(KEYSTATE_MAGIC)) == 0 ?
				    "unsupported version (this postern reads "
				    "version 1)" : "not a postern-dkim-state "
				    "file";
		} else if (line[0] == '#')
			;
		else if (strcmp(line, "end") == 0)
			ended = 1;
		else if (strncmp(line, "selector ", 9) == 0)
			why = keystate_selector_line(line + 9, out);
		else
			why = "unknown record";
		free(line);
	}
	if (why == NULL && !ended) {
		why = "no \"end\" line (truncated?)";
		lineno = 0;
	}
	if (why != NULL) {
		*err = lineno > 0 ? xasprintf("line %d: %s", lineno, why) :
		    xstrdup(why);
		keysels_free(out);
		return -1;
	}
	return 0;
}

/* keystate_format - the file's text */
int
keystate_format(const struct keysels *s, struct buf *b)
{
	size_t i, before = b->len;

	if (buf_printf(b, "%s %d\n# DKIM selectors and their rotation "
	    "state: see `postern keys status`\n", KEYSTATE_MAGIC,
	    KEYSTATE_VERSION) == -1)
		return -1;
	for (i = 0; i < s->n; i++)
		if (buf_printf(b, "selector %s %s %s %" PRId64 " %s\n",
		    s->v[i].selector, keyfile_alg_name(s->v[i].alg),
		    keystate_name(s->v[i].state), (int64_t)s->v[i].since,
		    s->v[i].key) == -1) {
			b->len = before;
			return -1;
		}
	if (buf_puts(b, "end\n") == -1) {
		b->len = before;
		return -1;
	}
	return 0;
}

/* keystate_read - read and parse path; a missing file is empty */
int
keystate_read(const char *path, struct keysels *out, char **err)
{
	char data[KEYSTATE_MAX_SIZE + 1], *why;
	size_t len = 0;
	ssize_t r;
	int fd;

	keysels_free(out);
	*err = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return 0;
		*err = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	while (len < sizeof(data) &&
	    (r = read(fd, data + len, sizeof(data) - len)) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			*err = xasprintf("%s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		len += (size_t)r;
	}
	close(fd);
	if (keystate_parse(data, len, out, &why) == -1) {
		*err = xasprintf("%s: %s", path, why);
		free(why);
		return -1;
	}
	return 0;
}

/* keystate_write - replace path atomically */
int
keystate_write(const char *path, const struct keysels *s, uid_t owner,
    gid_t group, char **err)
{
	struct buf b;
	char *tmp;
	int fd, dfd, rc = -1;

	*err = NULL;
	buf_init(&b, KEYSTATE_MAX_SIZE);
	if (keystate_format(s, &b) == -1) {
		*err = xasprintf("%s: too large", path);
		buf_free(&b);
		return -1;
	}
	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		*err = xasprintf("%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) == -1 || (owner != (uid_t)-1 &&
	    fchown(fd, owner, group) == -1) || io_write_all(fd, b.data, b.len) ==
	    -1 || fsync(fd) == -1) {
		*err = xasprintf("%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if ((dfd = keyfile_dir_open(path)) == -1 || fsync(dfd) == -1) {
		*err = xasprintf("%s: directory fsync: %s", path,
		    strerror(errno));
		if (dfd != -1)
			close(dfd);
		goto out;
	}
	close(dfd);
	rc = 0;
out:
	free(tmp);
	buf_free(&b);
	return rc;
}

/* keystate_lock - flock the directory holding path */
int
keystate_lock(const char *path, bool wait, char **err)
{
	int fd;

	*err = NULL;
	if ((fd = keyfile_dir_open(path)) == -1) {
		*err = xasprintf("%s: directory: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) == -1) {
		if (errno == EINTR)
			continue;
		*err = xasprintf("%s: lock: %s", path, errno == EWOULDBLOCK ?
		    "held by another writer (postern keys?); trying again "
		    "later" : strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* keystate_unlock - release the lock */
void
keystate_unlock(int fd)
{
	if (fd != -1)
		close(fd);
}
