/*
 * daemon - start, run, reload and stop `postern serve`; see daemon.h.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "common/alloc.h"
#include "common/dns.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config/cmdline.h"
#include "config/config.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "daemon/generation.h"
#include "daemon/privsep.h"
#include "daemon/stop.h"
#include "keys/dkim.h"
#include "keys/keyring.h"
#include "keys/rotate.h"
#include "keys/dnswatch.h"
#include "queue/inject.h"
#include "queue/queue.h"
#include "relay/sched.h"
#include "submit/server.h"
#include "submit/session.h"

struct daemon {
	const char		*path;		/* what a reload reads */
	struct event_base	*base;
	struct generations	 gens;		/* configs and keys */
	struct queue		*queue;
	struct inject		*inject;	/* the one way into the queue */
	struct dns		*dns;
	struct server		 srv;
	struct metrics_http	*metrics;	/* NULL: metrics.port 0 */
	struct sched		*sched;
	struct control		*control;	/* the admin commands */
	struct rotate		*rot;
	struct dnswatch		*watch;
	struct stop		*stop;
	struct event		*sigterm;
	struct event		*sigint;
	struct event		*sighup;
};

/* The one daemon of the process, from daemon_start() to daemon_free():
   what a fatal exit during start-up leaves stays reachable from here, so
   LeakSanitizer does not report it as lost. */
static struct daemon	*daemon_running;

/* daemon_queued - inject's hook: a message is durable, schedule it */
static void
daemon_queued(void *arg, const char *id)
{
	sched_queued(arg, id);
}

/* daemon_keys - every DKIM key of cfg, or print every problem and exit 1 */
static struct keyring *
daemon_keys(const struct config *cfg)
{
	struct config_errors errs = { NULL, 0 };
	struct keyring *kr;

	if ((kr = keyring_load(cfg, &errs)) == NULL) {
		cmdline_errors(&errs);
		exit(1);
	}
	return kr;
}

/* daemon_mkdir - mkdir -p with mode 0700 for the parts we create */
static void
daemon_mkdir(const char *path)
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

/* daemon_refuse - log why a reload is refused; what runs stays */
static void
daemon_refuse(const char *path, const char *why)
{
	log_warnx("reload of %s refused: %s; the configuration in force "
	    "stays", path, why);
}

/* daemon_reload - SIGHUP: a new generation for new sessions */
static void
daemon_reload(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	const struct config *old = d->gens.current->cfg;
	struct generation *g;
	struct rotate *rot;
	struct dnswatch *watch;
	const char *why;
	char *err = NULL;

	(void)sig;
	(void)what;
	if (stop_started(d->stop))
		return;
	log_info("signal SIGHUP: reloading %s", d->path);
	if ((g = generation_load(d->path, old, &why)) == NULL) {
		daemon_refuse(d->path, why);
		return;
	}
	if (server_reload(&d->srv, g->cfg, g->keys, &err) == -1) {
		daemon_refuse(d->path, err);
		free(err);
		generation_discard(g);
		return;
	}
	sched_set_keys(d->sched, g->keys);
	if ((rot = rotate_start(d->base, g->keys, d->dns,
	    old->dkim_check_interval)) != NULL) {
		rotate_free(d->rot);
		d->rot = rot;
	}
	if ((watch = dnswatch_start(d->base, g->keys, d->dns,
	    old->dkim_check_interval, d->watch)) != NULL) {
		dnswatch_free(d->watch);
		d->watch = watch;
	}
	stop_set_config(d->stop, g->cfg);
	generation_add(&d->gens, g);
	log_info("reloaded %s: %zu listener(s), %zu domain(s), %zu sender "
	    "grant(s), %zu local user(s); relay settings, resolver, metrics, "
	    "control_socket and dkim_check_interval change at the next "
	    "restart", d->path,
	    g->cfg->nlisten, g->cfg->ndomains, g->cfg->nsenders,
	    g->cfg->nlocal_senders);
}

/* daemon_signal - SIGTERM, SIGINT: stop */
static void
daemon_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	stop_begin(d->stop, (int)sig);
}

/* daemon_gauges - set the gauges from their owners (metrics_http_start's
   refresh callback) */
static void
daemon_gauges(void *arg)
{
	const struct daemon *d = arg;
	size_t n;
	time_t oldest;

	sched_stats(d->sched, &n, &oldest);
	metrics_gauge_set(MG_SESSIONS, d->srv.nsessions);
	metrics_gauge_set(MG_QUEUE_MESSAGES, (double)n);
	metrics_gauge_set(MG_QUEUE_OLDEST_AGE, n ? metrics_age(oldest) : 0);
}

/* daemon_open_queue - make, open and recover the queue */
static void
daemon_open_queue(struct daemon *d, const struct config *cfg)
{
	unsigned nq = 0, nrm = 0, ncorrupt = 0;
	char *err = NULL;

	daemon_mkdir(cfg->state_dir);
	if ((d->queue = queue_open(cfg->state_dir, 1, &err)) == NULL)
		log_fatalx("queue: %s", err);
	if (queue_recover(d->queue, &nq, &nrm, &ncorrupt) == -1)
		log_fatal("queue recovery in %s", cfg->state_dir);
	log_info("queue dir=%s queued=%u removed=%u corrupt=%u",
	    cfg->state_dir, nq, nrm, ncorrupt);
}

/* daemon_signals - the loop handles SIGHUP, SIGTERM and SIGINT from now */
static void
daemon_signals(struct daemon *d)
{
	d->sigterm = evsignal_new(d->base, SIGTERM, daemon_signal, d);
	d->sigint = evsignal_new(d->base, SIGINT, daemon_signal, d);
	d->sighup = evsignal_new(d->base, SIGHUP, daemon_reload, d);
	evsignal_add(d->sighup, NULL);
	evsignal_add(d->sigterm, NULL);
	evsignal_add(d->sigint, NULL);
}

/* daemon_start - everything up to "ready" */
struct daemon *
daemon_start(const char *path, int debug)
{
	struct daemon *d = xcalloc(1, sizeof(*d));
	struct keyring *keys;
	struct config *cfg;
	char *err = NULL;

	daemon_running = d;
	d->path = path;
	log_init("postern", debug);
	cfg = cmdline_config(path);
	generation_first(&d->gens, cfg, NULL);
	if (geteuid() == 0 && cfg->user == NULL)
		log_fatalx("refusing to run as root: set `user` in %s to the "
		    "account the daemon becomes after binding its ports (e.g. "
		    "user = \"postern\"; see INSTALL)", cfg->path);
	keys = d->gens.current->keys = daemon_keys(cfg);
	signal(SIGPIPE, SIG_IGN);
	/* until the loop handles it: a reload asked for during start-up
	   must not kill the daemon (it reads the configuration anyway) */
	signal(SIGHUP, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		log_fatalx("libevent without thread support");
	if ((d->base = event_base_new()) == NULL)
		log_fatalx("cannot create event base");

	daemon_open_queue(d, cfg);
	if ((d->dns = dns_new(cfg->resolver,
	    cfg->dnssec_trust_anchor, &err)) == NULL)
		log_fatalx("%s", err);
	if (dns_attach(d->dns, d->base) == -1)
		log_fatalx("dns: cannot attach the resolver to the loop");
	/* before the listeners: once a client can connect, so can an
	   admin (the socket queues requests until the loop runs) */
	if ((d->control = control_open(cfg, &err)) == NULL)
		log_fatalx("%s", err);
	if (server_open(&d->srv, cfg, d->base, d->queue, &err) == -1)
		log_fatalx("%s", err);
	d->inject = inject_new(d->queue);
	d->srv.inject = d->inject;
	d->srv.keys = keys;
	d->srv.dns = d->dns;
	if (cfg->metrics.port != 0 && (d->metrics = metrics_http_start(d->base,
	    cfg->metrics.address, cfg->metrics.port, daemon_gauges, d,
	    &err)) == NULL)
		log_fatalx("%s", err);
	if (access(cfg->sasldb, R_OK) == -1)
		log_warnx("sasldb %s: %s; add users with `postern users add`",
		    cfg->sasldb, strerror(errno));
	/* As root: the relay's CA file may be readable by root only. */
	if ((d->sched = sched_new(d->base, cfg, d->queue, d->inject, d->dns,
	    keys, &err)) == NULL)
		log_fatalx("%s", err);
	privsep_drop(cfg);
	if (queue_start(d->queue, d->base) == -1)
		log_fatal("cannot start the queue committer");
	if (inject_start(d->inject, d->base, 0) == -1)
		log_warn("cannot start the signing threads; signing on the "
		    "event loop");
	if ((d->rot = rotate_start(d->base, keys, d->dns,
	    cfg->dkim_check_interval)) == NULL)
		log_fatalx("cannot start the DKIM rotation checker");
	if ((d->watch = dnswatch_start(d->base, keys, d->dns,
	    cfg->dkim_check_interval, NULL)) == NULL)
		log_fatalx("cannot start the DNS drift watch");
	if (sched_start(d->sched) == -1)
		log_fatal("relay: cannot read the queue");
	if (control_start(d->control, d->base, d->sched, &d->gens) == -1)
		log_fatalx("cannot serve the control socket %s",
		    cfg->control_socket);

	/*
	 * The wiring between the way in and the way out: every message that
	 * comes through the door (a session's, the local socket's, a
	 * bounce the scheduler writes) is handed to the scheduler once it
	 * is durable.
	 */
	inject_set_queued(d->inject, daemon_queued, d->sched);

	d->stop = stop_new(d->base, cfg, &d->srv, d->sched);
	daemon_signals(d);
	log_info("ready hostname=%s", cfg->hostname);
	return d;
}

/* daemon_run - until stopped */
void
daemon_run(struct daemon *d)
{
	event_base_dispatch(d->base);
}

/* daemon_free - the shutdown, in the order that keeps mail safe */
void
daemon_free(struct daemon *d)
{
	control_free(d->control);	/* no admin change from here on */
	session_close_all();
	server_close(&d->srv);
	metrics_http_free(d->metrics);
	sched_stop(d->sched);
	inject_close(d->inject);	/* signatures in progress: committed */
	queue_close(d->queue);	/* waits for commits in progress */
	inject_free(d->inject);
	sched_free(d->sched);
	rotate_free(d->rot);
	dnswatch_free(d->watch);
	dns_free(d->dns);
	event_free(d->sigterm);
	event_free(d->sigint);
	event_free(d->sighup);
	stop_free(d->stop);
	event_base_free(d->base);
	generation_free_all(&d->gens);
	dkim_shutdown();
	free(d);
	daemon_running = NULL;
	log_info("stopped");
}

/* daemon_check - the configuration and its keys load, or exit 1 */
void
daemon_check(const char *path)
{
	struct config *cfg = cmdline_config(path);

	keyring_free(daemon_keys(cfg));
	dkim_shutdown();
	config_free(cfg);
}
