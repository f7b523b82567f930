/*
 * postern - outbound submission relay: command-line entry point
 *
 * main() only parses the command line and wires modules together; every
 * piece of logic lives in a module that links into the test binaries.
 *
 *	postern serve        [-c FILE] [-d]
 *	postern check-config [-c FILE]
 *	postern users add|passwd|delete LOGIN [-c FILE]
 *	postern users list   [-c FILE]
 *	postern queue list   [-c FILE]
 *	postern queue show ID [-c FILE]
 *	postern sendmail [options] [recipient ...]
 *	sendmail [options] [recipient ...]	(the binary under that name)
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config/cmdline.h"
#include "config/config.h"
#include "keys/dkim.h"
#include "keys/keycmd.h"
#include "keys/keyring.h"
#include "keys/rotate.h"
#include "common/dns.h"
#include "queue/queue.h"
#include "queue/queuecmd.h"
#include "relay/sched.h"
#include "submit/auth.h"
#include "submit/sendmail.h"
#include "submit/server.h"
#include "submit/session.h"
#include "submit/usercmd.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: postern serve        [-c FILE] [-d]\n"
	    "       postern check-config [-c FILE]\n"
	    "       postern users add|passwd|delete LOGIN [-c FILE]\n"
	    "       postern users list   [-c FILE]\n"
	    "       postern queue list   [-c FILE]\n"
	    "       postern queue show ID [--message] [-c FILE]\n"
	    "       postern keys generate|dns|sign|verify ... (postern keys)\n"
	    "       postern sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] "
	    "[--] [recipient ...]\n"
	    "                                   (also as `sendmail`: a message "
	    "on stdin to the daemon)\n"

	    "Passwords are read from the terminal, or from standard input "
	    "when it is not one.\n");
	exit(2);
}

/* load_keys - every DKIM key of cfg, or print every problem and exit 1 */
static struct keyring *
load_keys(const struct config *cfg)
{
	struct config_errors errs = { NULL, 0 };
	struct keyring *kr;
	size_t i;

	if ((kr = keyring_load(cfg, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		config_errors_free(&errs);
		exit(1);
	}
	return kr;
}

/* make_dir - mkdir -p with mode 0700 for the parts we create */
static void
make_dir(const char *path)
{
	char *p = xstrdup(path), *q;

	for (q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST)
			log_fatal("mkdir %s", p);
		*q = '/';
	}
	if (mkdir(p, 0700) == -1 && errno != EEXIST)
		log_fatal("mkdir %s", p);
	free(p);
}

/* drop_privileges - become cfg->user for good, and check it took */
static void
drop_privileges(const struct config *cfg)
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

		if (chown(dir, pw->pw_uid, pw->pw_gid) == -1)
			log_fatal("chown %s to %s", dir, cfg->user);
		free(dir);
	}
	for (size_t i = 0; cfg->relay.mode == RELAY_DIRECTORY &&
	    i < sizeof(maildirs) / sizeof(maildirs[0]); i++) {
		char *dir = xasprintf("%s%s", cfg->relay.directory,
		    maildirs[i]);

		if (chown(dir, pw->pw_uid, pw->pw_gid) == -1)
			log_fatal("chown %s to %s", dir, cfg->user);
		free(dir);
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

/*
 * The graceful stop (SIGTERM, SIGINT): close the listeners, let sessions
 * finish their transactions and deliveries in flight finish, for at most
 * stop_timeout; then drop what is left (421 4.3.2) and leave the loop a
 * moment later. A second signal leaves at once. Nothing accepted is at
 * risk at any point: the queue is closed (commits finished) after the
 * loop, and deliveries not finished stay queued.
 */
struct stopping {
	struct event_base	*base;
	const struct config	*cfg;
	struct server		*srv;
	struct sched		*sched;
	struct event		*poll;		/* every STOP_POLL_MS */
	time_t			 deadline;	/* stop_timeout */
	bool			 started;
	bool			 forced;	/* deadline passed */
};

#define STOP_POLL_MS	100
#define STOP_GRACE	2	/* seconds for the last 421s to leave */

/* stop_poll - done yet? */
static void
stop_poll(evutil_socket_t fd, short what, void *arg)
{
	struct stopping *st = arg;
	size_t busy = sched_busy(st->sched);
	time_t now = time(NULL);

	(void)fd;
	(void)what;
	if (st->srv->nsessions == 0 && busy == 0) {
		log_info("stopping: every transaction and delivery finished");
		event_base_loopbreak(st->base);
		return;
	}
	if (!st->forced && now >= st->deadline) {
		log_warnx("stopping: stop_timeout (%us) passed with %u "
		    "session(s) and %zu delivery(ies) in progress; dropping "
		    "them", st->cfg->stop_timeout, st->srv->nsessions, busy);
		session_drain_end();
		st->forced = true;
		st->deadline = now + STOP_GRACE;
	} else if (st->forced && now >= st->deadline) {
		event_base_loopbreak(st->base);
		return;
	}
}

/*
 * Reload (SIGHUP): a new configuration and its DKIM keys for sessions
 * that start from now on; sessions in progress, the scheduler's relay
 * settings and deliveries in flight keep the ones they have. Every
 * configuration and key set stays in memory until exit (struct
 * generation), since something may still point into it. XXX reference
 * counts would free them sooner; a reload costs kilobytes.
 */
struct generation {
	struct config		*cfg;
	struct keyring		*keys;
	struct generation	*next;
};

struct reloading {
	const char		*path;
	struct event_base	*base;
	struct server		*srv;
	struct sched		*sched;
	struct dns		*dns;
	struct rotate		*rot;
	struct stopping		*stop;
	struct generation	*gens;		/* the current one first */
};

/* reload_refuse - log why, keep what runs */
static void
reload_refuse(const char *path, const char *why)
{
	log_warnx("reload of %s refused: %s; the configuration in force "
	    "stays", path, why);
}

/* reload_cb - SIGHUP */
static void
reload_cb(evutil_socket_t sig, short what, void *arg)
{
	struct reloading *r = arg;
	struct config_errors errs = { NULL, 0 };
	const struct config *old = r->gens->cfg;
	struct generation *g;
	struct config *cfg;
	struct keyring *kr;
	struct rotate *rot;
	char *err = NULL;
	size_t i;

	(void)sig;
	(void)what;
	if (r->stop->started)
		return;
	log_info("signal SIGHUP: reloading %s", r->path);
	if ((cfg = config_reload(r->path, &errs, old)) == NULL) {
		for (i = 0; i < errs.n; i++)
			log_warnx("reload: %s", errs.v[i]);
		reload_refuse(r->path, errs.n ? "errors above" :
		    "cannot load it");
		config_errors_free(&errs);
		return;
	}
	if (strcmp(cfg->state_dir, old->state_dir) != 0 ||
	    (cfg->user == NULL) != (old->user == NULL) ||
	    (cfg->user != NULL && strcmp(cfg->user, old->user) != 0)) {
		reload_refuse(r->path, "state_dir and user change only at a "
		    "restart");
		config_free(cfg);
		return;
	}
	if ((kr = keyring_load(cfg, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			log_warnx("reload: %s", errs.v[i]);
		reload_refuse(r->path, "a DKIM key does not load");
		config_errors_free(&errs);
		config_free(cfg);
		return;
	}
	if (server_reload(r->srv, cfg, kr, &err) == -1) {
		reload_refuse(r->path, err);
		free(err);
		keyring_free(kr);
		config_free(cfg);
		return;
	}
	sched_set_keys(r->sched, kr);
	if ((rot = rotate_start(r->base, kr, r->dns,
	    old->dkim_check_interval)) != NULL) {
		rotate_free(r->rot);
		r->rot = rot;
	}
	r->stop->cfg = cfg;
	g = xcalloc(1, sizeof(*g));
	g->cfg = cfg;
	g->keys = kr;
	g->next = r->gens;
	r->gens = g;
	log_info("reloaded %s: %zu listener(s), %zu domain(s), %zu sender "
	    "grant(s), %zu local user(s); relay settings, resolver, metrics "
	    "and dkim_check_interval change at the next restart", r->path,
	    cfg->nlisten, cfg->ndomains, cfg->nsenders, cfg->nlocal_senders);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct stopping *st = arg;
	struct timeval tv = { 0, STOP_POLL_MS * 1000 };

	(void)what;
	if (st->started) {
		log_info("signal %d again: stopping now", (int)sig);
		event_base_loopbreak(st->base);
		return;
	}
	st->started = true;
	log_info("signal %d: stopping; waiting up to %us for %u session(s) "
	    "and %zu delivery(ies)", (int)sig, st->cfg->stop_timeout,
	    st->srv->nsessions, sched_busy(st->sched));
	server_stop_accepting(st->srv);
	session_drain();
	sched_drain(st->sched);
	st->deadline = time(NULL) + st->cfg->stop_timeout;
	st->poll = event_new(st->base, -1, EV_PERSIST, stop_poll, st);
	if (st->poll == NULL || event_add(st->poll, &tv) == -1)
		event_base_loopbreak(st->base);
}

/* What the metrics' gauges are read from when /metrics is scraped. */
struct gauges {
	const struct server	*srv;
	const struct sched	*sched;		/* NULL until it exists */
};

/* gauges_read - set the gauges from their owners (metrics_http_start's
   refresh callback) */
static void
gauges_read(void *arg)
{
	const struct gauges *g = arg;
	size_t n;
	time_t oldest;

	sched_stats(g->sched, &n, &oldest);
	metrics_gauge_set(MG_SESSIONS, g->srv->nsessions);
	metrics_gauge_set(MG_QUEUE_MESSAGES, (double)n);
	metrics_gauge_set(MG_QUEUE_OLDEST_AGE, n ? metrics_age(oldest) : 0);
}

/* cmd_serve - run the daemon in the foreground */
static int
cmd_serve(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH, *words[1];
	struct event *sigterm, *sigint, *sighup;
	struct reloading reload;
	struct generation *g;
	struct stopping stop;
	struct event_base *base;
	struct keyring *keys;
	struct rotate *rot;
	struct sched *sched;
	struct config *cfg;
	struct server srv;
	struct metrics_http *mh = NULL;
	struct gauges gauges = { &srv, NULL };
	struct dns *dns;
	struct queue *q;
	unsigned nq = 0, nrm = 0, ncorrupt = 0;
	char *err = NULL;
	int debug = 0;

	if (cmdline_args(argc, argv, &path, &debug, words, 0) != 0)
		usage();
	log_init("postern", debug);
	cfg = cmdline_config(path);
	if (geteuid() == 0 && cfg->user == NULL)
		log_fatalx("refusing to run as root: set `user` in %s to the "
		    "account the daemon becomes after binding its ports (e.g. "
		    "user = \"postern\"; see INSTALL)", cfg->path);
	keys = load_keys(cfg);
	signal(SIGPIPE, SIG_IGN);
	/* until the loop handles it: a reload asked for during start-up
	   must not kill the daemon (it reads the configuration anyway) */
	signal(SIGHUP, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		log_fatalx("libevent without thread support");
	if ((base = event_base_new()) == NULL)
		log_fatalx("cannot create event base");

	make_dir(cfg->state_dir);
	if ((q = queue_open(cfg->state_dir, 1, &err)) == NULL)
		log_fatalx("queue: %s", err);
	if (queue_recover(q, &nq, &nrm, &ncorrupt) == -1)
		log_fatal("queue recovery in %s", cfg->state_dir);
	log_info("queue dir=%s queued=%u removed=%u corrupt=%u",
	    cfg->state_dir, nq, nrm, ncorrupt);
	if ((dns = dns_new(cfg->resolver, &err)) == NULL)
		log_fatalx("%s", err);
	if (dns_attach(dns, base) == -1)
		log_fatalx("dns: cannot attach the resolver to the loop");
	if (server_open(&srv, cfg, base, q, &err) == -1)
		log_fatalx("%s", err);
	srv.keys = keys;
	srv.dns = dns;
	if (cfg->metrics.port != 0 && (mh = metrics_http_start(base,
	    cfg->metrics.address, cfg->metrics.port, gauges_read, &gauges,
	    &err)) == NULL)
		log_fatalx("%s", err);
	if (access(cfg->sasldb, R_OK) == -1)
		log_warnx("sasldb %s: %s; add users with `postern users add`",
		    cfg->sasldb, strerror(errno));
	/* As root: the relay's CA file may be readable by root only. */
	if ((sched = sched_new(base, cfg, q, dns, keys, &err)) == NULL)
		log_fatalx("%s", err);
	drop_privileges(cfg);
	if (queue_start(q, base) == -1)
		log_fatal("cannot start the queue committer");
	if ((rot = rotate_start(base, keys, dns, cfg->dkim_check_interval)) ==
	    NULL)
		log_fatalx("cannot start the DKIM rotation checker");
	if (sched_start(sched) == -1)
		log_fatal("relay: cannot read the queue");
	gauges.sched = sched;
	session_set_sched(sched);

	memset(&stop, 0, sizeof(stop));
	stop.base = base;
	stop.cfg = cfg;
	stop.srv = &srv;
	stop.sched = sched;
	sigterm = evsignal_new(base, SIGTERM, signal_cb, &stop);
	sigint = evsignal_new(base, SIGINT, signal_cb, &stop);
	memset(&reload, 0, sizeof(reload));
	reload.path = path;
	reload.base = base;
	reload.srv = &srv;
	reload.sched = sched;
	reload.dns = dns;
	reload.rot = rot;
	reload.stop = &stop;
	reload.gens = xcalloc(1, sizeof(*reload.gens));
	reload.gens->cfg = cfg;
	reload.gens->keys = keys;
	sighup = evsignal_new(base, SIGHUP, reload_cb, &reload);
	evsignal_add(sighup, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("ready hostname=%s", cfg->hostname);
	event_base_dispatch(base);

	session_close_all();
	server_close(&srv);
	metrics_http_free(mh);
	sched_stop(sched);
	queue_close(q);		/* waits for commits in progress */
	session_set_sched(NULL);
	sched_free(sched);
	rotate_free(reload.rot);
	dns_free(dns);
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	if (stop.poll != NULL)
		event_free(stop.poll);
	event_base_free(base);
	while ((g = reload.gens) != NULL) {
		reload.gens = g->next;
		keyring_free(g->keys);
		config_free(g->cfg);
		free(g);
	}
	dkim_shutdown();
	log_info("stopped");
	return 0;
}

/* cmd_check_config - validate and say so */
static int
cmd_check_config(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_PATH, *words[1];
	struct config *cfg;

	if (cmdline_args(argc, argv, &path, NULL, words, 0) != 0)
		usage();
	cfg = cmdline_config(path);
	keyring_free(load_keys(cfg));
	dkim_shutdown();
	printf("%s: configuration OK\n", path);
	config_free(cfg);
	return 0;
}

/* usage_if - a command's exit status, or the usage for its -1 */
static int
usage_if(int rc)
{
	if (rc == -1)
		usage();
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cmd, *base;

	/* /usr/sbin/sendmail -> postern: the sendmail(1) interface */
	if (argc > 0 && argv[0] != NULL) {
		base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		if (strcmp(base, "sendmail") == 0)
			return sendmail_main(argc, argv);
	}
	if (argc < 2)
		usage();
	cmd = argv[1];
	if (strcmp(cmd, "sendmail") == 0)
		return sendmail_main(argc - 1, argv + 1);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 2, argv + 2);
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(argc - 2, argv + 2);
	if (strcmp(cmd, "users") == 0)
		return usage_if(users_main(argc - 2, argv + 2));
	if (strcmp(cmd, "queue") == 0)
		return usage_if(queue_main(argc - 2, argv + 2));
	if (strcmp(cmd, "keys") == 0)
		return keys_main(argc - 2, argv + 2);

	usage();
}
