/*
 * Asynchronous handlers: module fd events and timers in the worker's
 * event loop, and blocking work on its thread pool.  Events are tied to a
 * request and removed when it ends; their memory is freed only after the
 * current epoll batch, which may still name them.
 */
#include "async.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "pool.h"
#include "request.h"
#include "threadpool.h"
#include "worker.h"

struct httpd_event {
	struct event_source  ev;        /* first: epoll gives this back */
	struct deadline      deadline;
	struct request      *r;
	int                  fd;        /* -1 for a timer */
	httpd_event_fn       fn;
	void                *arg;
	bool                 active;
	struct httpd_event  *next;      /* the request's events, or the graveyard */
};

static struct httpd_event *graveyard;
/* Reaped events kept for reuse: a proxied request arms a few timers, each would be a calloc and a free. */
#define SPARE_EVENTS_MAX 256
static struct httpd_event *spare_events;
static size_t spare_event_count;

struct blocking_job {
	struct job        job;
	struct request   *r;
	void            (*done)(struct httpd_request *req, void *arg);
	void             *arg;
};

static void event_ready(struct event_source *src, uint32_t events);

static struct httpd_event *event_new(struct httpd_request *req, httpd_event_fn fn, void *arg)
{
	struct request *r = req != NULL ? request_of(req) : NULL;
	struct httpd_event *e;

	/* req NULL: a worker's own event (httpd_worker_timer), tied to no request. */
	if ((r != NULL && r->conn == NULL) || worker_current() == NULL)
		return NULL;
	if (spare_events != NULL) {
		e = spare_events;
		spare_events = e->next;
		spare_event_count--;
		memset(e, 0, sizeof(*e));
	} else if ((e = calloc(1, sizeof(*e))) == NULL) {
		return NULL;
	}
	e->ev.ready = event_ready;
	e->r = r;
	e->fd = -1;
	e->fn = fn;
	e->arg = arg;
	e->active = true;
	if (r != NULL) {
		e->next = r->events;
		r->events = e;
	}
	return e;
}

/* Unlinks e from its request and parks it for async_events_reap. */
static void event_remove(struct httpd_event *e)
{
	struct httpd_event **link = e->r != NULL ? &e->r->events : NULL;

	while (link != NULL && *link != NULL && *link != e)
		link = &(*link)->next;
	if (link != NULL && *link == e)
		*link = e->next;
	if (e->active) {
		if (e->fd >= 0)
			(void)epoll_ctl(worker_current()->epfd, EPOLL_CTL_DEL, e->fd, NULL);
		else
			deadline_disarm(&e->deadline);
	}
	e->active = false;
	e->next = graveyard;
	graveyard = e;
}

/* An fd event for req, or for the worker itself (req NULL). */
static struct httpd_event *fd_event_new(struct httpd_request *req, int fd, unsigned events, httpd_event_fn fn,
                                        void *arg)
{
	struct httpd_event *e = event_new(req, fn, arg);
	struct epoll_event ev;

	if (e == NULL)
		return NULL;
	e->fd = fd;
	ev.events = (events & HTTPD_EVENT_READ ? EPOLLIN | EPOLLRDHUP : 0) |
	            (events & HTTPD_EVENT_WRITE ? EPOLLOUT : 0);
	ev.data.ptr = e;
	if (epoll_ctl(worker_current()->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		if (req != NULL)
			httpd_log_request(HTTPD_LOG_ERR, req, "module event on fd %d: %s", fd, strerror(errno));
		else
			httpd_log(HTTPD_LOG_ERR, "module event on fd %d: %s", fd, strerror(errno));
		e->fd = -1;
		e->active = false;
		event_remove(e);
		return NULL;
	}
	return e;
}

struct httpd_event *httpd_event_fd(struct httpd_request *req, int fd, unsigned events,
                                   httpd_event_fn fn, void *arg)
{
	return req != NULL ? fd_event_new(req, fd, events, fn, arg) : NULL;
}

static void timer_fire(struct deadline *d)
{
	struct httpd_event *e = (struct httpd_event *)((char *)d - offsetof(struct httpd_event, deadline));
	struct request *r = e->r;

	e->active = false;
	event_remove(e);
	e->fn(r != NULL ? &r->req : NULL, e->arg, HTTPD_EVENT_TIMER);
}

static struct httpd_event *timer_new(struct httpd_request *req, unsigned ms, httpd_event_fn fn, void *arg)
{
	struct httpd_event *e = event_new(req, fn, arg);

	if (e == NULL)
		return NULL;
	e->deadline.fire = timer_fire;
	deadline_arm(worker_current(), &e->deadline, ms);
	return e;
}

struct httpd_event *httpd_event_timer(struct httpd_request *req, unsigned ms, httpd_event_fn fn,
                                      void *arg)
{
	return req != NULL ? timer_new(req, ms, fn, arg) : NULL;
}

int httpd_event_fd_mod(struct httpd_event *e, unsigned events)
{
	struct epoll_event ev;

	if (e == NULL || !e->active || e->fd < 0)
		return -1;
	ev.events = (events & HTTPD_EVENT_READ ? EPOLLIN | EPOLLRDHUP : 0) | (events & HTTPD_EVENT_WRITE ? EPOLLOUT : 0);
	ev.data.ptr = e;
	return epoll_ctl(worker_current()->epfd, EPOLL_CTL_MOD, e->fd, &ev);
}

void httpd_event_del(struct httpd_event *e)
{
	if (e != NULL && e->active)
		event_remove(e);
}

static void event_ready(struct event_source *src, uint32_t events)
{
	struct httpd_event *e = (struct httpd_event *)src;
	unsigned what = 0;

	if (!e->active)
		return;   /* removed earlier in this batch */
	if (events & (EPOLLIN | EPOLLRDHUP))
		what |= HTTPD_EVENT_READ;
	if (events & EPOLLOUT)
		what |= HTTPD_EVENT_WRITE;
	if (events & (EPOLLERR | EPOLLHUP))
		what |= HTTPD_EVENT_ERROR;
	e->fn(e->r != NULL ? &e->r->req : NULL, e->arg, what);
}

struct httpd_event *httpd_worker_event_fd(int fd, unsigned events, httpd_event_fn fn, void *arg)
{
	return fd_event_new(NULL, fd, events, fn, arg);
}

struct httpd_event *httpd_worker_timer(unsigned ms, httpd_event_fn fn, void *arg)
{
	return timer_new(NULL, ms, fn, arg);
}

int httpd_worker_id(void)
{
	struct worker *w = worker_current();

	return w != NULL ? (int)w->id : -1;
}

void async_request_end(struct request *r)
{
	while (r->events != NULL)
		event_remove(r->events);
}

void async_events_reap(void)
{
	while (graveyard != NULL) {
		struct httpd_event *e = graveyard;

		graveyard = e->next;
		if (spare_event_count < SPARE_EVENTS_MAX) {
			e->next = spare_events;
			spare_events = e;
			spare_event_count++;
		} else {
			free(e);
		}
	}
}

static void blocking_done(struct job *job)
{
	struct blocking_job *bj = (struct blocking_job *)job;

	if (request_job_returned(bj->r))
		bj->done(&bj->r->req, bj->arg);
}

int httpd_run_blocking(struct httpd_request *req, void (*work)(void *arg),
                       void (*done)(struct httpd_request *req, void *arg), void *arg)
{
	struct request *r = request_of(req);
	struct worker *w = worker_current();
	struct threadpool *tp = w != NULL ? worker_threadpool(w) : NULL;
	struct blocking_job *bj;

	if (tp == NULL || r->conn == NULL)
		return -1;
	bj = pool_alloc(r->pool, sizeof(*bj));
	if (bj == NULL)
		return -1;
	bj->job.work = work;
	bj->job.done = blocking_done;
	bj->job.arg = arg;
	bj->r = r;
	bj->done = done;
	bj->arg = arg;
	if (threadpool_submit(tp, &bj->job) < 0)
		return -1;
	r->jobs++;
	return 0;
}
