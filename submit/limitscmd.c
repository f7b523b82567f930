/*
 * limitscmd - `postern limits show, unlock`; see limitscmd.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/ctl.h"
#include "common/log.h"
#include "config/cmdline.h"
#include "config/config.h"
#include "submit/limits.h"
#include "submit/limitscmd.h"

/* limitscmd_utc - t as "2026-12-07 22:10:00" (UTC) */
static const char *
limitscmd_utc(json_int_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(out, 32, "%lld", (long long)t);
	return out;
}

/* limitscmd_str - obj's string member name, or "?" */
static const char *
limitscmd_str(const json_t *obj, const char *name)
{
	const char *s = json_string_value(json_object_get(obj, name));

	return s ? s : "?";
}

/* limitscmd_int - obj's integer member name, or 0 */
static json_int_t
limitscmd_int(const json_t *obj, const char *name)
{
	return json_integer_value(json_object_get(obj, name));
}

/* limitscmd_table - show's answer as two tables */
static void
limitscmd_table(const json_t *ans)
{
	const json_t *locks = json_object_get(ans, "lockouts"),
	    *near = json_object_get(ans, "near"), *o;
	char when[32], of[48];
	size_t i;

	if (json_array_size(locks) == 0 && json_array_size(near) == 0) {
		printf("no lockouts, nothing near its limit\n");
		return;
	}
	if (json_array_size(locks) == 0)
		printf("no lockouts\n");
	else {
		printf("lockouts:\n  %-6s %-40s %-20s %s\n", "KIND", "KEY",
		    "UNTIL (UTC)", "FAILURES");
		json_array_foreach(locks, i, o)
			printf("  %-6s %-40s %-20s %lld\n",
			    limitscmd_str(o, "kind"), limitscmd_str(o, "key"),
			    limitscmd_utc(limitscmd_int(o, "until"), when),
			    (long long)limitscmd_int(o, "failures"));
	}
	if (json_array_size(near) == 0) {
		printf("nothing near its limit\n");
		return;
	}
	printf("near their limits (80 %% or more):\n  %-9s %-40s %-36s "
	    "%-11s %s\n", "KIND", "KEY", "SETTING", "COUNT/MAX",
	    "WINDOW ENDS (UTC)");
	json_array_foreach(near, i, o) {
		snprintf(of, sizeof(of), "%lld/%lld",
		    (long long)limitscmd_int(o, "count"),
		    (long long)limitscmd_int(o, "max"));
		printf("  %-9s %-40s %-36s %-11s %s\n",
		    limitscmd_str(o, "kind"), limitscmd_str(o, "key"),
		    limitscmd_str(o, "limit"), of,
		    limitscmd_utc(limitscmd_int(o, "window_end"), when));
	}
}

/* limitscmd_call - send req to the daemon cfg names; its answer, or NULL
   after saying why */
static json_t *
limitscmd_call(const struct config *cfg, json_t *req)
{
	json_t *ans;
	char *err = NULL;

	if ((ans = ctl_call(cfg->control_socket, req, &err)) == NULL) {
		fprintf(stderr, "postern: %s\n", err);
		free(err);
	}
	json_decref(req);
	return ans;
}

/* limits_main - show or unlock */
int
limits_main(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH, *words[2], *kind = NULL;
	char canon[LIMITS_WHAT_MAX], *err = NULL;
	struct config *cfg;
	json_t *req, *ans;
	int n, json, rc = 1;

	json = cmdline_flag(&argc, argv, "--json");
	n = cmdline_args(argc, argv, &path, NULL, words, 2);
	if (n <= 0 || !((strcmp(words[0], "show") == 0 && n == 1) ||
	    (strcmp(words[0], "unlock") == 0 && n == 2 && !json)))
		return -1;
	/* a malformed argument is refused before anything is read */
	if (n == 2 && (kind = limits_what(words[1], canon, &err)) == NULL) {
		fprintf(stderr, "postern: %s\n", err);
		free(err);
		return 1;
	}
	log_init("postern", 0);
	log_set_quiet(1);
	cfg = cmdline_config_client(path);
	if (kind == NULL)
		req = json_pack("{s:s}", "command", "limits.show");
	else
		req = json_pack("{s:s, s:s}", "command", "limits.unlock",
		    "what", words[1]);
	if ((ans = limitscmd_call(cfg, req)) == NULL)
		goto out;
	rc = 0;
	json_object_del(ans, "ok");
	/* an answer of another shape (a daemon of another version) is said
	   to be one, never taken for "nothing locked" */
	if (kind != NULL ? !json_is_integer(json_object_get(ans, "unlocked")) :
	    !json_is_array(json_object_get(ans, "lockouts")) ||
	    !json_is_array(json_object_get(ans, "near"))) {
		fprintf(stderr, "postern: the daemon's answer to %s is not "
		    "what this postern expects (submit/limits.h)\n",
		    kind != NULL ? "limits.unlock" : "limits.show");
		rc = 1;
	} else if (kind != NULL) {
		if (limitscmd_int(ans, "unlocked") > 0)
			printf("unlocked %s\n", words[1]);
		else
			printf("%s was not locked out\n", words[1]);
	} else if (json) {
		if (json_dumpf(ans, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) ==
		    -1)
			rc = 1;
		putchar('\n');
	} else
		limitscmd_table(ans);
	json_decref(ans);
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "postern: cannot write the answer\n");
		rc = 1;
	}
out:
	config_free(cfg);
	return rc;
}
