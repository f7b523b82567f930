/*
 * privsep - giving up root; see privsep.h.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "config/config.h"
#include "daemon/privsep.h"

/*
 * privsep_give - chown dir to pw's user; a missing dir is skipped when
 * optional, every other failure is fatal. The directory is opened
 * without following a symlink and changed through its fd: these folders
 * are the service user's, who could otherwise put a symlink in place of
 * one and have root give away what it points to at the next start.
 */
static void
privsep_give(const char *dir, const struct passwd *pw, bool optional)
{
	int fd;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && optional && errno == ENOENT)
		return;
	if (fd == -1 || fchown(fd, pw->pw_uid, pw->pw_gid) == -1)
		log_fatal("chown %s to %s", dir, pw->pw_name);
	close(fd);
}

/* privsep_drop - become cfg->user for good, and check it took */
void
privsep_drop(const struct config *cfg)
{
	static const char *subdirs[] = { "", "/tmp", "/queue", "/corrupt" };
	static const char *maildirs[] = { "", "/tmp", "/new", "/cur" };
	struct passwd *pw;
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (cfg->user == NULL)
		return;		/* not root: checked at start */
	if (geteuid() != 0) {
		log_info("not root: keeping uid %d (user = %s is for a daemon "
		    "started as root)", (int)geteuid(), cfg->user);
		return;
	}
	if ((pw = getpwnam(cfg->user)) == NULL)
		log_fatalx("user %s: no such user", cfg->user);
	if (pw->pw_uid == 0)
		log_fatalx("user %s is root: the event loop never runs as root",
		    cfg->user);
	/* The queue directories (and in directory mode the relay's
	   folders) were made (or checked) as root: the user must own them
	   to write after the switch. */
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		char *dir = xasprintf("%s%s", cfg->state_dir, subdirs[i]);

		privsep_give(dir, pw, false);
		free(dir);
	}
	for (size_t i = 0; cfg->relay.mode == RELAY_DIRECTORY &&
	    i < sizeof(maildirs) / sizeof(maildirs[0]); i++) {
		char *dir = xasprintf("%s%s", cfg->relay.directory,
		    maildirs[i]);

		privsep_give(dir, pw, false);
		free(dir);
	}
	/* The rotation state, keys/DOMAIN/state, is read and rewritten
	   (temp file, rename) after the switch: keys/ and each hosted
	   domain's folder must be the user's too, whoever made them (a
	   setup script's mkdir as root, an admin's). The key files keep
	   their owner: they were read above, as root. */
	{
		char *dir = xasprintf("%s/keys", cfg->state_dir);

		privsep_give(dir, pw, true);
		free(dir);
		for (size_t i = 0; i < cfg->ndomains; i++) {
			dir = xasprintf("%s/keys/%s", cfg->state_dir,
			    cfg->domains[i].name);
			privsep_give(dir, pw, true);
			free(dir);
		}
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		log_fatal("cannot switch to user %s", cfg->user);
	if (getresuid(&r, &e, &s) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    r != pw->pw_uid || e != pw->pw_uid || s != pw->pw_uid ||
	    rg != pw->pw_gid || eg != pw->pw_gid || sg != pw->pw_gid)
		log_fatalx("privilege drop to %s did not take", cfg->user);
	log_info("running as user=%s uid=%d", cfg->user, (int)pw->pw_uid);
}
