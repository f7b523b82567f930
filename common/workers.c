/*
 * workers - a small thread pool reporting through the loop; see
 * workers.h.
 *
 * Two lists under one mutex: waiting (FIFO, taken by the threads, signalled
 * by a condition variable) and done (FIFO, emptied by the loop's event,
 * which a thread activates after adding to it). A job is one allocation
 * that moves from waiting to done.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/workers.h"

struct job {
	workers_fn	*work;
	workers_fn	*done;
	void		*arg;
	struct job	*next;
};

struct joblist {
	struct job	*head, *tail;
};

struct workers {
	pthread_mutex_t	 lock;
	pthread_cond_t	 more;		/* waiting grew, or stopping */
	pthread_cond_t	 idle;		/* a job finished (drain waits) */
	struct joblist	 waiting, done;
	size_t		 pending;	/* submitted, done() not run yet */
	bool		 stopping;
	struct event	*ev;		/* runs done() on the loop */
	pthread_t	*threads;
	unsigned	 n;
};

/* joblist_push, joblist_pop - FIFO */
static void
joblist_push(struct joblist *l, struct job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct job *
joblist_pop(struct joblist *l)
{
	struct job *j = l->head;

	if (j != NULL && (l->head = j->next) == NULL)
		l->tail = NULL;
	return j;
}

/* workers_main - one pool thread */
static void *
workers_main(void *arg)
{
	struct workers *w = arg;
	struct job *j;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->waiting.head == NULL && !w->stopping)
			pthread_cond_wait(&w->more, &w->lock);
		if ((j = joblist_pop(&w->waiting)) == NULL)
			break;			/* stopping, nothing left */
		pthread_mutex_unlock(&w->lock);
		j->work(j->arg);
		pthread_mutex_lock(&w->lock);
		joblist_push(&w->done, j);
		event_active(w->ev, EV_READ, 0);
		pthread_cond_broadcast(&w->idle);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* workers_finish - run done() of every finished job (loop thread);
   returns how many ran */
static size_t
workers_finish(struct workers *w)
{
	struct joblist l;
	struct job *j;
	size_t n = 0;

	pthread_mutex_lock(&w->lock);
	l = w->done;
	w->done.head = w->done.tail = NULL;
	pthread_mutex_unlock(&w->lock);
	while ((j = joblist_pop(&l)) != NULL) {
		j->done(j->arg);
		free(j);
		n++;
	}
	pthread_mutex_lock(&w->lock);
	w->pending -= n;
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* workers_event - the loop side: finished jobs */
static void
workers_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)workers_finish(arg);
}

/* workers_cpus - online CPUs, at least 1 */
static unsigned
workers_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (unsigned)n;
}

/* workers_new - the pool */
struct workers *
workers_new(struct event_base *base, unsigned n)
{
	struct workers *w = xcalloc(1, sizeof(*w));
	int e;

	if (n == 0)
		n = workers_cpus();
	if (n > WORKERS_MAX)
		n = WORKERS_MAX;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->more, NULL);
	pthread_cond_init(&w->idle, NULL);
	w->threads = xcalloc(n, sizeof(*w->threads));
	if ((w->ev = event_new(base, -1, 0, workers_event, w)) == NULL) {
		workers_free(w);
		errno = ENOMEM;
		return NULL;
	}
	for (w->n = 0; w->n < n; w->n++)
		if ((e = pthread_create(&w->threads[w->n], NULL, workers_main,
		    w)) != 0) {
			workers_free(w);
			errno = e;
			return NULL;
		}
	return w;
}

/* workers_submit - queue a job */
void
workers_submit(struct workers *w, workers_fn *work, workers_fn *done,
    void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&w->lock);
	if (w->stopping)
		log_panic("workers_submit after workers_free began");
	joblist_push(&w->waiting, j);
	w->pending++;
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->lock);
}

/* workers_drain - wait for every job, run every done() */
void
workers_drain(struct workers *w)
{
	for (;;) {
		(void)workers_finish(w);
		pthread_mutex_lock(&w->lock);
		if (w->pending == 0) {
			pthread_mutex_unlock(&w->lock);
			return;
		}
		while (w->done.head == NULL)
			pthread_cond_wait(&w->idle, &w->lock);
		pthread_mutex_unlock(&w->lock);
	}
}

/* workers_free - stop and join the threads */
void
workers_free(struct workers *w)
{
	unsigned i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->more);
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	(void)workers_finish(w);	/* jobs that finished meanwhile */
	if (w->ev != NULL)
		event_free(w->ev);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->more);
	pthread_mutex_destroy(&w->lock);
	free(w->threads);
	free(w);
}
