/*
 * limits - the admin's view of the limits, and unlocking; see limits.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "submit/auth.h"
#include "submit/guard.h"
#include "submit/limits.h"
#include "submit/rates.h"

/* the longest key the stores make, bytes */
#define LIMITS_KEY_MAX	600

/* One entry of the answer, kept for sorting. */
struct limits_row {
	json_t		*obj;
	const char	*kind, *key, *setting;	/* in obj */
	uint64_t	 count;
	unsigned	 max;
	time_t		 end;
};

/* A growing list of rows. */
struct limits_rows {
	struct limits_row	*v;
	size_t			 n, cap;
};

/* What the walks collect into. */
struct limits_seen {
	struct limits_rows	 lockouts, near;
};

/* limits_iso - t as "2026-12-07T22:10:00Z" */
static void
limits_iso(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(out, "?");
}

/* limits_printable - at most max bytes of s, each byte outside printable
   ASCII as '?', NUL-terminated in out (max + 1 bytes) */
static char *
limits_printable(const char *s, char *out, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < max; i++)
		out[i] = s[i] >= ' ' && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
	return out;
}

/* limits_push - add obj (owned by the list from now on) for e */
static void
limits_push(struct limits_rows *r, json_t *obj, const struct limits_entry *e)
{
	struct limits_row *row;

	if (obj == NULL)
		log_panic("limits: cannot build the answer for %s", e->kind);
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	row = &r->v[r->n++];
	row->obj = obj;
	row->kind = json_string_value(json_object_get(obj, "kind"));
	row->key = json_string_value(json_object_get(obj, "key"));
	row->setting = e->setting;	/* static text */
	row->count = e->count;
	row->max = e->max;
	row->end = e->end;
}

/* limits_utf8 - is s valid UTF-8 (what jansson takes)? */
static int
limits_utf8(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

/* limits_seen_one - a walk's entry: a lockout, a count near its limit,
   or nothing to show */
static void
limits_seen_one(const struct limits_entry *e, void *arg)
{
	struct limits_seen *s = arg;
	char iso[32], safe[LIMITS_KEY_MAX + 1];
	const char *key = e->key;

	/* a login a client tried need not be UTF-8, which JSON must be */
	if (!limits_utf8(key))
		key = limits_printable(key, safe, LIMITS_KEY_MAX);
	if (e->setting == NULL) {
		limits_iso(e->end, iso);
		limits_push(&s->lockouts, json_pack("{s:s, s:s, s:I, s:s, s:I}",
		    "kind", e->kind, "key", key, "until", (json_int_t)e->end,
		    "until_utc", iso, "failures", (json_int_t)e->count), e);
		return;
	}
	/* near: at or over 80 % of the limit */
	if (e->max == 0 || 5 * e->count < 4 * (uint64_t)e->max)
		return;
	limits_push(&s->near, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}",
	    "kind", e->kind, "key", key, "limit", e->setting,
	    "count", (json_int_t)e->count, "max", (json_int_t)e->max,
	    "window_end", (json_int_t)e->end), e);
}

/* limits_by_whose - kind, key, then setting */
static int
limits_by_whose(const struct limits_row *a, const struct limits_row *b)
{
	int d;

	if ((d = strcmp(a->kind, b->kind)) != 0 ||
	    (d = strcmp(a->key, b->key)) != 0)
		return d;
	return strcmp(a->setting ? a->setting : "", b->setting ?
	    b->setting : "");
}

/* limits_by_until - lockouts: the first to end first */
static int
limits_by_until(const void *pa, const void *pb)
{
	const struct limits_row *a = pa, *b = pb;

	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return limits_by_whose(a, b);
}

/* limits_by_over - near: the most over its limit first (count / max,
   compared without division) */
static int
limits_by_over(const void *pa, const void *pb)
{
	const struct limits_row *a = pa, *b = pb;
	unsigned __int128 x = (unsigned __int128)a->count * b->max,
	    y = (unsigned __int128)b->count * a->max;

	if (x != y)
		return x > y ? -1 : 1;
	return limits_by_whose(a, b);
}

/* limits_array - the rows sorted by cmp, as a JSON array; frees rows */
static json_t *
limits_array(struct limits_rows *r, int (*cmp)(const void *, const void *))
{
	json_t *a = json_array();
	size_t i;

	if (r->n > 0)
		qsort(r->v, r->n, sizeof(*r->v), cmp);
	for (i = 0; i < r->n; i++)
		json_array_append_new(a, r->v[i].obj);
	free(r->v);
	return a;
}

/* limits_show - lockouts and counts near their limits */
json_t *
limits_show(const struct config *cfg, time_t now)
{
	struct limits_seen s;

	memset(&s, 0, sizeof(s));
	guard_each(cfg, now, limits_seen_one, &s);
	rates_each(cfg, now, limits_seen_one, &s);
	return json_pack("{s:o, s:o}",
	    "lockouts", limits_array(&s.lockouts, limits_by_until),
	    "near", limits_array(&s.near, limits_by_over));
}

/* limits_what - "ip" or "login", canonical; NULL with *err */
const char *
limits_what(const char *what, char canon[LIMITS_WHAT_MAX], char **err)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char shown[65];
	size_t i;

	if (inet_pton(AF_INET, what, addr) == 1 &&
	    inet_ntop(AF_INET, addr, canon, LIMITS_WHAT_MAX) != NULL)
		return "ip";
	if (inet_pton(AF_INET6, what, addr) == 1 &&
	    inet_ntop(AF_INET6, addr, canon, LIMITS_WHAT_MAX) != NULL)
		return "ip";
	if (auth_login_valid(what) && strlen(what) < LIMITS_WHAT_MAX) {
		for (i = 0; what[i] != '\0'; i++)
			canon[i] = (char)(what[i] >= 'A' && what[i] <= 'Z' ?
			    what[i] - 'A' + 'a' : what[i]);
		canon[i] = '\0';
		return "login";
	}
	*err = xasprintf("\"%s%s\" is neither an IP address nor a login",
	    limits_printable(what, shown, 64), strlen(what) > 64 ? "..." :
	    "");
	return NULL;
}

/* limits_unlock - lift an address's or a login's lockout */
int
limits_unlock(const struct config *cfg, const char *what, time_t now,
    char **err)
{
	char canon[LIMITS_WHAT_MAX], until[LOG_UTC_LEN];
	const char *kind;
	time_t end;

	if ((kind = limits_what(what, canon, err)) == NULL)
		return -1;
	if ((end = guard_unlock(cfg, kind, canon, now)) == 0) {
		log_info("limits: %s %s was not locked out (its failed "
		    "authentications forgotten)", kind, canon);
		return 0;
	}
	log_info("limits: unlocked %s %s (locked until %s)", kind, canon,
	    log_utc(end, until));
	return 1;
}
