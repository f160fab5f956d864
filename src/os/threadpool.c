#include "threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

struct threadpool {
	pthread_mutex_t lock;
	pthread_cond_t  wake;
	struct job     *queue, *queue_tail;   /* waiting for a thread */
	struct job     *finished;             /* waiting for the loop */
	pthread_t      *threads;
	unsigned        thread_max, thread_count, idle;
	bool            stopping;
	int             event_fd;
};

static void *thread_main(void *arg)
{
	struct threadpool *tp = arg;

	pthread_mutex_lock(&tp->lock);
	for (;;) {
		struct job *job;
		uint64_t one = 1;

		while (tp->queue == NULL && !tp->stopping) {
			tp->idle++;
			pthread_cond_wait(&tp->wake, &tp->lock);
			tp->idle--;
		}
		if (tp->queue == NULL)
			break;
		job = tp->queue;
		tp->queue = job->next;
		if (tp->queue == NULL)
			tp->queue_tail = NULL;
		pthread_mutex_unlock(&tp->lock);

		job->work(job->arg);

		pthread_mutex_lock(&tp->lock);
		job->next = tp->finished;
		tp->finished = job;
		/* An eventfd write cannot fail short of a counter overflow. */
		if (write(tp->event_fd, &one, sizeof(one)) < 0)
			httpd_log(HTTPD_LOG_ERR, "thread pool: eventfd write: %s", strerror(errno));
	}
	pthread_mutex_unlock(&tp->lock);
	return NULL;
}

struct threadpool *threadpool_create(unsigned threads, int *event_fd)
{
	struct threadpool *tp = calloc(1, sizeof(*tp));

	if (tp == NULL)
		return NULL;
	tp->threads = calloc(threads ? threads : 1, sizeof(*tp->threads));
	tp->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (tp->threads == NULL || tp->event_fd < 0) {
		httpd_log(HTTPD_LOG_ERR, "thread pool: %s", tp->threads ? strerror(errno) : "out of memory");
		if (tp->event_fd >= 0)
			close(tp->event_fd);
		free(tp->threads);
		free(tp);
		return NULL;
	}
	pthread_mutex_init(&tp->lock, NULL);
	pthread_cond_init(&tp->wake, NULL);
	tp->thread_max = threads ? threads : 1;
	*event_fd = tp->event_fd;
	return tp;
}

int threadpool_submit(struct threadpool *tp, struct job *job)
{
	int rc = 0;

	job->next = NULL;
	pthread_mutex_lock(&tp->lock);
	/* Grow on demand: a thread only exists once there was work for it. */
	if (tp->idle == 0 && tp->thread_count < tp->thread_max) {
		sigset_t all, old;
		int err;

		/* Signals stay with the loop's signalfd, never a pool thread. */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		err = pthread_create(&tp->threads[tp->thread_count], NULL, thread_main, tp);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (err == 0)
			tp->thread_count++;
		else if (tp->thread_count == 0)
			rc = -1;
		if (err != 0)
			httpd_log(HTTPD_LOG_ERR, "thread pool: pthread_create: %s", strerror(err));
	}
	if (rc == 0) {
		if (tp->queue_tail != NULL)
			tp->queue_tail->next = job;
		else
			tp->queue = job;
		tp->queue_tail = job;
		pthread_cond_signal(&tp->wake);
	}
	pthread_mutex_unlock(&tp->lock);
	return rc;
}

void threadpool_complete(struct threadpool *tp)
{
	struct job *done;
	uint64_t count;

	if (read(tp->event_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		httpd_log(HTTPD_LOG_ERR, "thread pool: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&tp->lock);
	done = tp->finished;
	tp->finished = NULL;
	pthread_mutex_unlock(&tp->lock);
	while (done != NULL) {
		struct job *next = done->next;

		done->done(done);
		done = next;
	}
}

void threadpool_destroy(struct threadpool *tp)
{
	if (tp == NULL)
		return;
	pthread_mutex_lock(&tp->lock);
	tp->stopping = true;
	pthread_cond_broadcast(&tp->wake);
	pthread_mutex_unlock(&tp->lock);
	for (unsigned i = 0; i < tp->thread_count; i++)
		pthread_join(tp->threads[i], NULL);
	threadpool_complete(tp);
	close(tp->event_fd);
	pthread_cond_destroy(&tp->wake);
	pthread_mutex_destroy(&tp->lock);
	free(tp->threads);
	free(tp);
}
