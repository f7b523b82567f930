/*
 * usercmd - `postern users ...`; see usercmd.h.
 */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "config/cmdline.h"
#include "config/config.h"
#include "submit/auth.h"
#include "submit/usercmd.h"

#define PASSWORD_MAX	USERCMD_PASSWORD_MAX

/*
 * usercmd_password - from the terminal without echo (asked twice), or one
 * line of standard input. Returns newly allocated memory (PASSWORD_MAX
 * bytes) the caller wipes.
 */
static char *
usercmd_password(const char *prompt)
{
	struct termios old, noecho;
	char *pw = xmalloc(PASSWORD_MAX), *again = NULL;
	int tty = isatty(STDIN_FILENO);
	size_t len;

	for (int round = 0; round < (tty ? 2 : 1); round++) {
		char *dst = round == 0 ? pw : (again = xmalloc(PASSWORD_MAX));

		if (tty) {
			fprintf(stderr, "%s%s: ", round ? "Again, " : "",
			    prompt);
			tcgetattr(STDIN_FILENO, &old);
			noecho = old;
			noecho.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
		}
		if (fgets(dst, PASSWORD_MAX, stdin) == NULL)
			dst[0] = '\0';
		if (tty) {
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
			fputc('\n', stderr);
		}
		len = strcspn(dst, "\r\n");
		if (dst[len] == '\0' && len == PASSWORD_MAX - 1)
			log_fatalx("password longer than %d bytes",
			    PASSWORD_MAX - 2);
		dst[len] = '\0';
	}
	if (again) {
		int same = strcmp(pw, again) == 0;

		freezero_(again, PASSWORD_MAX);
		if (!same) {
			freezero_(pw, PASSWORD_MAX);
			log_fatalx("passwords do not match");
		}
	}
	if (pw[0] == '\0') {
		freezero_(pw, PASSWORD_MAX);
		log_fatalx("empty password");
	}
	return pw;
}

/*
 * usercmd_give_sasldb - a sasldb written by root must stay readable by
 * the daemon's user: hand it (and Berkeley DB's lock file, if any) over.
 */
static void
usercmd_give_sasldb(const struct config *cfg)
{
	struct passwd *pw;

	if (cfg->user == NULL || geteuid() != 0)
		return;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		fprintf(stderr, "postern: user %s does not exist; %s stays "
		    "owned by root\n", cfg->user, cfg->sasldb);
		return;
	}
	if (chown(cfg->sasldb, pw->pw_uid, pw->pw_gid) == -1)
		fprintf(stderr, "postern: chown %s: %s\n", cfg->sasldb,
		    strerror(errno));
}

/* usercmd_print - one line of `postern users list` */
static void
usercmd_print(const char *login, void *arg)
{
	(void)arg;
	printf("%s\n", login);
}

/* users_main - manage the sasldb */
int
users_main(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH, *words[2], *err;
	struct config *cfg;
	char *pw;
	int n, rc = 0;

	n = cmdline_args(argc, argv, &path, NULL, words, 2);
	if (n <= 0)
		return -1;
	log_init("postern", 0);
	log_set_quiet(1);
	if (strcmp(words[0], "list") == 0) {
		if (n != 1)
			return -1;
		cfg = cmdline_config(path);
		if (auth_user_list(cfg, usercmd_print, NULL, &err) == -1) {
			fprintf(stderr, "postern: %s\n", err);
			rc = 1;
		}
		config_free(cfg);
		return rc;
	}
	if (n != 2)
		return -1;
	cfg = cmdline_config(path);
	if (strcmp(words[0], "add") == 0 || strcmp(words[0], "passwd") == 0) {
		bool replace = words[0][0] == 'p';

		pw = usercmd_password("Password");
		if (auth_user_set(cfg, words[1], pw, replace, &err) == -1) {
			fprintf(stderr, "postern: %s: %s\n", words[1], err);
			rc = 1;
		} else {
			usercmd_give_sasldb(cfg);
			printf("%s %s\n", replace ? "changed password of" :
			    "added", words[1]);
		}
		freezero_(pw, PASSWORD_MAX);
	} else if (strcmp(words[0], "delete") == 0) {
		if (auth_user_delete(cfg, words[1], &err) == -1) {
			fprintf(stderr, "postern: %s: %s\n", words[1], err);
			rc = 1;
		} else
			printf("deleted %s\n", words[1]);
	} else
		rc = -1;
	config_free(cfg);
	return rc;
}
