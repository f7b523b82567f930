/*
 * workers - a small pool of threads for CPU-heavy work, reporting back
 * through the event loop
 *
 * The loop thread hands a job (work, done, arg) to workers_submit(); one
 * of the pool's threads runs work(arg); then done(arg) runs on the loop
 * thread, from an event the worker activates (libevent must have been
 * set up with evthread_use_pthreads()). Jobs start in the order they were
 * submitted; with more than one thread they may finish in any order.
 * work() must touch only what the job owns (and thread-safe modules);
 * done() may submit more jobs. Nothing here blocks the loop: submitting
 * takes a mutex held for a few instructions.
 *
 * workers_drain() (loop thread, at shutdown) waits for every job
 * submitted so far and runs their done() before it returns; then
 * workers_free(). Out of memory aborts (common/alloc.h); a thread that
 * cannot be created is an error at start (workers_new).
 */
#ifndef POSTERN_WORKERS_H
#define POSTERN_WORKERS_H

#include <stddef.h>

struct event_base;
struct workers;

typedef void	workers_fn(void *arg);

/*
 * workers_new - n threads (0: one per online CPU, at most
 * WORKERS_MAX) whose jobs report back on base. NULL with errno if a
 * thread or the event cannot be created.
 */
#define WORKERS_MAX	16
struct workers	*workers_new(struct event_base *base, unsigned n);

/* workers_submit - queue a job: work(arg) on a pool thread, then
   done(arg) on the loop thread */
void		 workers_submit(struct workers *, workers_fn *work,
		    workers_fn *done, void *arg);

/* workers_drain - every job submitted so far finished and its done()
   run (loop thread) */
void		 workers_drain(struct workers *);

/* workers_free - stop the threads (after workers_drain); NULL is fine */
void		 workers_free(struct workers *);

#endif
