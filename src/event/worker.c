#include "worker.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "control.h"
#include "log.h"
#include "mime.h"
#include "scoreboard.h"
#include "threadpool.h"

#define EVENTS_MAX  512
#define ACCEPT_BURST 64

static struct worker *current;

struct worker *worker_current(void)
{
	return current;
}

int httpd_server_draining(void)
{
	return current != NULL && current->draining;
}

static uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void clock_update(struct worker *w)
{
	struct timespec ts;

	w->now_ms = clock_ms();
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	w->now = ts.tv_sec;
}

static int privileges_drop(const struct worker_setup *setup)
{
	if (!setup->drop_privileges)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(setup->gid) < 0 || setuid(setup->uid) < 0) {
		httpd_log(HTTPD_LOG_ERR, "cannot switch to uid %u gid %u: %s", (unsigned)setup->uid,
		          (unsigned)setup->gid, strerror(errno));
		return -1;
	}
	/* Allow core dumps again after the uid change, for post-mortems. */
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return 0;
}

/* The address connections on l reach us at, when the listener is bound to one (a wildcard's differs by connection). */
static void listener_local_set(struct listener *l)
{
	const struct sockaddr_storage *ss = l->addr;

	if (ss == NULL)
		l->wildcard = true;
	else if (ss->ss_family == AF_INET)
		l->wildcard = ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	else if (ss->ss_family == AF_INET6)
		l->wildcard = IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	else
		l->wildcard = ss->ss_family != AF_UNIX;
	if (!l->wildcard)
		conn_addr_split((const struct sockaddr *)ss, l->local, sizeof(l->local), &l->local_port);
}

/*
 * Accepted sockets inherit TCP_NODELAY from their listener: set once here
 * (on inherited and socket-activated listeners too), not per connection.
 * Responses leave in one write, or with MSG_MORE before a file: Nagle only
 * delays.  Unix sockets refuse it, harmlessly.
 */
static void listeners_nodelay(struct worker *w)
{
	int one = 1;

	for (size_t i = 0; i < w->listener_count; i++)
		(void)setsockopt(w->listeners[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int listeners_watch(struct worker *w, bool on)
{
	for (size_t i = 0; i < w->listener_count; i++) {
		struct epoll_event ev = { .events = EPOLLIN | (w->exclusive ? EPOLLEXCLUSIVE : 0),
		                          .data.ptr = &w->listeners[i] };

		if (epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->listeners[i].fd,
		              on ? &ev : NULL) < 0 && on) {
			httpd_log(HTTPD_LOG_ERR, "epoll_ctl listener: %s", strerror(errno));
			return -1;
		}
	}
	w->accepting = on;
	return 0;
}

void worker_conn_closed(struct worker *w)
{
	if (!w->accepting && !w->quitting && w->conn_count < w->config->worker_connections)
		(void)listeners_watch(w, true);
}

static void listener_accept(struct event_source *src, uint32_t events)
{
	struct listener *l = (struct listener *)src;
	struct worker *w = l->w;

	(void)events;
	if (!w->accepting)
		return;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		if (w->conn_count >= w->config->worker_connections) {
			/* Full: leave new connections in the kernel backlog until one closes. */
			(void)listeners_watch(w, false);
			return;
		}
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == ECONNABORTED || errno == EPROTO)
				continue;
			httpd_log(HTTPD_LOG_ERR, "accept: %s", strerror(errno));
			if (errno == EMFILE || errno == ENFILE)
				(void)listeners_watch(w, false);
			return;
		}
		if (score_self != NULL)
			score_add(&score_self->c.accepted, 1);
		conn_open(w, fd, (struct sockaddr *)&ss, l);
	}
}

void deadline_arm(struct worker *w, struct deadline *d, uint64_t ms)
{
	struct deadline *after = w->deadlines.prev;

	deadline_disarm(d);
	d->at = w->now_ms + ms;
	/* Insert from the back: most timers are later than every armed one. */
	while (after != &w->deadlines && after->at > d->at)
		after = after->prev;
	d->prev = after;
	d->next = after->next;
	after->next->prev = d;
	after->next = d;
}

void deadline_disarm(struct deadline *d)
{
	if (d->next == NULL)
		return;
	d->prev->next = d->next;
	d->next->prev = d->prev;
	d->prev = d->next = NULL;
}

void worker_defer(struct worker *w, struct conn *c)
{
	if (c->deferred)
		return;
	c->deferred = true;
	c->next_deferred = w->deferred;
	w->deferred = c;
}

void worker_yield(struct worker *w, struct conn *c)
{
	if (c->yielded)
		return;
	c->yielded = true;
	c->next_yielded = w->yielded;
	w->yielded = c;
}

void worker_yield_cancel(struct worker *w, struct conn *c)
{
	struct conn **link = &w->yielded;

	while (*link != NULL && *link != c)
		link = &(*link)->next_yielded;
	if (*link == c)
		*link = c->next_yielded;
	c->yielded = false;
	c->next_yielded = NULL;
}

static void deferred_run(struct worker *w);

/* The connections that yielded in the previous round take their next turn. */
static void yielded_run(struct worker *w)
{
	struct conn *c = w->yielded;

	w->yielded = NULL;   /* those yielding again go to the next round */
	while (c != NULL) {
		struct conn *next = c->next_yielded;

		c->yielded = false;
		c->next_yielded = NULL;
		conn_resume(c);
		deferred_run(w);
		c = next;
	}
}

/* The connections closed during this batch can be reused now that no event names them. */
static void conns_recycle(struct worker *w)
{
	while (w->closed_conns != NULL) {
		struct conn *c = w->closed_conns;

		w->closed_conns = c->next_free;
		c->next_free = w->free_conns;
		w->free_conns = c;
	}
}

static void deferred_run(struct worker *w)
{
	while (w->deferred != NULL) {
		struct conn *c = w->deferred;

		w->deferred = c->next_deferred;
		c->deferred = false;
		c->next_deferred = NULL;
		conn_resume(c);
	}
}

static void jobs_ready(struct event_source *src, uint32_t events)
{
	struct worker *w = (struct worker *)((char *)src - offsetof(struct worker, pool_source));

	(void)events;
	threadpool_complete(w->pool);
}

struct threadpool *worker_threadpool(struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &w->pool_source };
	int fd;

	if (w->pool != NULL)
		return w->pool;
	w->pool = threadpool_create(w->config->worker_threads, &fd);
	if (w->pool == NULL)
		return NULL;
	w->pool_source.ready = jobs_ready;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		httpd_log(HTTPD_LOG_ERR, "epoll_ctl thread pool: %s", strerror(errno));
		threadpool_destroy(w->pool);
		w->pool = NULL;
	}
	return w->pool;
}

static void timers_expire(struct worker *w)
{
	while (w->deadlines.next != &w->deadlines && w->deadlines.next->at <= w->now_ms) {
		struct deadline *d = w->deadlines.next;

		deadline_disarm(d);
		d->fire(d);
	}
	for (int k = 0; k < TIMER_KINDS; k++) {
		struct timer *t;

		while ((t = timer_list_expired(&w->timers[k], w->now_ms)) != NULL) {
			struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));

			timer_disarm(t);
			conn_timeout(c, (enum timer_kind)k);
		}
	}
}

/* Draining: how long a kept-alive connection must have been quiet to be closed, and how often we look. */
#define DRAIN_QUIET_MS  1000
#define DRAIN_TICK_MS   100
#define DRAIN_SPREAD_MS 10000   /* idle connections close over this much of the drain (close-spread) */

static int wait_timeout(const struct worker *w, uint64_t quit_deadline)
{
	uint64_t next = quit_deadline;

	if (w->deadlines.next != &w->deadlines && w->deadlines.next->at < next)
		next = w->deadlines.next->at;
	if (w->log_flush_at != 0 && w->log_flush_at < next)
		next = w->log_flush_at;
	if (w->freed_bytes >= (1u << 20) && w->trimmed_at + 1000 < next)
		next = w->trimmed_at + 1000;   /* memory_trim is due */
	for (int k = 0; k < TIMER_KINDS; k++) {
		uint64_t d = timer_list_next(&w->timers[k]);
		if (d < next)
			next = d;
	}
	if (!w->accepting && !w->quitting && next > w->now_ms + 100)
		next = w->now_ms + 100;   /* retry accepting after EMFILE */
	if (score_self != NULL && w->gauges_at < next)
		next = w->gauges_at;   /* the scoreboard's connection gauges stay fresh on an idle worker */
	if (w->drain_gradual && next > w->now_ms + DRAIN_TICK_MS)
		next = w->now_ms + DRAIN_TICK_MS;   /* idle_close_quiet is due */
	if (next == UINT64_MAX)
		return -1;
	return next <= w->now_ms ? 0 : (int)(next - w->now_ms > 60000 ? 60000 : next - w->now_ms);
}

/* Buffered access log lines leave within access_log_flush of being written. */
static void log_flush_due(struct worker *w)
{
	if (!log_access_pending()) {
		w->log_flush_at = 0;
	} else if (w->log_flush_at == 0) {
		w->log_flush_at = w->now_ms + w->config->access_log_flush_ms;
	} else if (w->now_ms >= w->log_flush_at) {
		log_access_flush();
		w->log_flush_at = 0;
	}
}

/*
 * After a burst, thousands of buffers go back to malloc but stay resident:
 * hand the free pages back to the kernel, at most once a second, so idle
 * keep-alive connections cost only their struct.
 */
static void memory_trim(struct worker *w)
{
	if (w->freed_bytes < (1u << 20) || w->now_ms - w->trimmed_at < 1000)
		return;
	malloc_trim(0);
	w->freed_bytes = 0;
	w->trimmed_at = w->now_ms;
}

static void idle_close_all(struct worker *w)
{
	struct timer_list *l = &w->timers[TIMER_KEEPALIVE];

	while (l->head.next != &l->head) {
		struct conn *c = (struct conn *)((char *)l->head.next - offsetof(struct conn, timer));
		conn_close(c);
	}
}

/*
 * Draining: a kept-alive connection that has been quiet for a while is
 * closed; one in use gets its next request answered with Connection: close
 * instead.  Closing only the quiet ones, a few at a time, spreads the
 * closes out (as HAProxy's close-spread-time does), so a client is almost
 * never caught sending a request on a connection we close under it.
 */
static void idle_close_quiet(struct worker *w)
{
	struct timer_list *l = &w->timers[TIMER_KEEPALIVE];
	size_t closed = 0;

	if (w->drain_tick_at > w->now_ms)
		return;
	w->drain_tick_at = w->now_ms + DRAIN_TICK_MS;
	while (l->head.next != &l->head && closed < w->drain_per_tick) {
		struct timer *t = l->head.next;

		/* The list is in arming order: the first one is the longest idle. */
		if (t->deadline - l->timeout_ms + DRAIN_QUIET_MS > w->now_ms)
			break;
		struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));

		c->proto->drain(c);
		closed++;
	}
}

/* How many idle connections a tick may close, so that all of them close within DRAIN_SPREAD_MS. */
static void drain_spread_plan(struct worker *w, unsigned drain_timeout_ms)
{
	unsigned spread = drain_timeout_ms < DRAIN_SPREAD_MS ? drain_timeout_ms / 2 : DRAIN_SPREAD_MS;
	size_t idle = 0, ticks = spread / DRAIN_TICK_MS;

	for (struct timer *t = w->timers[TIMER_KEEPALIVE].head.next; t != &w->timers[TIMER_KEEPALIVE].head; t = t->next)
		idle++;
	w->drain_per_tick = ticks > 0 ? (idle + ticks - 1) / ticks : idle;
	if (w->drain_per_tick < 16)
		w->drain_per_tick = 16;
}

/*
 * Graceful stop: no new connections; requests in flight finish (answered
 * with Connection: close) until timeout_ms.  SIGTERM (gradual false) closes
 * idle connections at once and gives shutdown_timeout; SIGQUIT and reloads
 * drain gradually for drain_timeout.  A second signal can only shorten the
 * wait, or make a drain a stop.
 */
static void quit_begin(struct worker *w, unsigned timeout_ms, bool gradual)
{
	if (w->quit_deadline == 0 || w->now_ms + timeout_ms < w->quit_deadline)
		w->quit_deadline = w->now_ms + timeout_ms;
	if (!gradual) {
		w->drain_gradual = false;
		idle_close_all(w);
	}
	if (w->quitting)
		return;
	if (w->accepting)
		(void)listeners_watch(w, false);
	w->quitting = true;
	w->draining = true;
	w->drain_gradual = gradual;
	if (gradual)
		drain_spread_plan(w, timeout_ms);
	if (score_self != NULL)
		__atomic_store_n(&score_self->state, SCORE_DRAINING, __ATOMIC_RELAXED);
	if (gradual)
		idle_close_quiet(w);
	/*
	 * A stop (not a drain): protocols that can say so (HTTP/2's GOAWAY)
	 * tell their clients now.  A drain tells each connection once it is
	 * quiet (idle_close_quiet), as it closes HTTP/1.1 keep-alives: a busy
	 * client is not cut off in the middle of its work.
	 */
	for (struct conn *c = gradual ? NULL : w->open_conns, *next; c != NULL; c = next) {
		next = c->open_next;
		if (c->proto != NULL && c->proto->quiesce != NULL && !c->closed)
			c->proto->quiesce(c);
	}
	log_access_flush();
}

static int signal_fd_open(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Connections by state, published once a second: a walk of the timeout lists, nothing on the hot path. */
static void gauges_publish(struct worker *w)
{
	uint64_t n[TIMER_KINDS] = { 0 };

	if (score_self == NULL || w->now_ms < w->gauges_at)
		return;
	w->gauges_at = w->now_ms + 1000;
	for (int k = 0; k < TIMER_KINDS; k++)
		for (struct timer *t = w->timers[k].head.next; t != &w->timers[k].head; t = t->next)
			n[k]++;
	score_set(&score_self->connections, w->conn_count);
	score_set(&score_self->reading, n[TIMER_PROXY] + n[TIMER_HEADER] + n[TIMER_BODY]);
	score_set(&score_self->writing, n[TIMER_SEND] + n[TIMER_HANDLER] + n[TIMER_LINGER]);
	score_set(&score_self->keepalive, n[TIMER_KEEPALIVE]);
}

/* The master hands over reopened log files (SIGUSR1): adopt them, nothing else changes. */
static void control_read(struct event_source *src, uint32_t events)
{
	struct worker *w = (struct worker *)((char *)src - offsetof(struct worker, control_source));
	int fds[CONTROL_FDS_MAX], kind, sock = w->control_fd;
	size_t nfds;

	(void)events;
	while ((kind = control_recv(sock, fds, &nfds)) >= 0) {
		if (kind == 'A' && nfds >= 1) {
			/* A worker of an older generation may know other access logs: then only the error log. */
			size_t count = nfds - 1 == log_access_count() ? nfds - 1 : 0;

			for (size_t i = 0; i < count; i++)
				if (!log_access_enabled(i)) {
					close(fds[1 + i]);   /* off here: the master sent a placeholder */
					fds[1 + i] = -1;
				}
			for (size_t i = 1 + count; i < nfds; i++)
				close(fds[i]);
			log_adopt(fds[0], fds + 1, count);
			httpd_log(HTTPD_LOG_INFO, "logs reopened");
			continue;
		}
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

static void signal_read(struct event_source *src, uint32_t events)
{
	struct worker *w = (struct worker *)((char *)src - offsetof(struct worker, signal_source));
	struct signalfd_siginfo si;

	(void)events;
	while (read(w->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGINT:
			w->stop_now = true;   /* stop at once */
			return;
		case SIGTERM:
			quit_begin(w, w->config->shutdown_timeout_ms, false);
			break;
		case SIGQUIT:
			quit_begin(w, w->config->drain_timeout_ms, true);
			break;
		case SIGUSR2:
			/* A stop is coming (shutdown_delay): readiness fails, serving goes on. */
			w->draining = true;
			break;
		default:
			/* SIGHUP and SIGUSR1 are the master's to act on. */
			break;
		}
	}
}

/* The location modules of cfg in one fixed order, so exit can undo exactly what init did. */
static const struct location_module *module_at(const struct httpd_config *cfg, size_t k)
{
	for (size_t i = 0; i < cfg->location_count; i++) {
		const struct httpd_location *loc = &cfg->locations[i];

		if (k == 0)
			return &loc->handler;
		k--;
		if (k < loc->check_count)
			return &loc->checks[k];
		k -= loc->check_count;
		if (k < loc->filter_count)
			return &loc->filters[k];
		k -= loc->filter_count;
	}
	return NULL;
}

/* worker_exit only for the modules whose worker_init ran (the first inited ones). */
static void modules_worker_exit(const struct httpd_config *cfg, size_t inited)
{
	while (inited > 0) {
		const struct location_module *lm = module_at(cfg, --inited);

		if (lm->mod != NULL && lm->mod->api.worker_exit)
			lm->mod->api.worker_exit(lm->data);
	}
}

static int modules_worker_init(const struct httpd_config *cfg, size_t *inited)
{
	const struct location_module *lm;

	*inited = 0;
	while ((lm = module_at(cfg, *inited)) != NULL) {
		/* A location that only returns has no handler module. */
		if (lm->mod != NULL && lm->mod->api.worker_init && lm->mod->api.worker_init(lm->data) < 0) {
			httpd_log(HTTPD_LOG_ERR, "module %s: worker_init failed", lm->mod->name);
			return -1;
		}
		(*inited)++;
	}
	return 0;
}

int worker_run(const struct worker_setup *setup)
{
	struct worker w;
	struct epoll_event events[EVENTS_MAX];
	struct epoll_event ev;
	char role[32];
	int sigfd, status = 1;
	bool hooks_inited = false;
	size_t inited = 0;
	pid_t parent = getppid();

	memset(&w, 0, sizeof(w));
	current = &w;
	w.deadlines.prev = w.deadlines.next = &w.deadlines;
	w.id = setup->id;
	w.config = setup->config;
	w.exclusive = setup->exclusive;
	w.hooks = setup->hooks;
	w.signal_source.ready = signal_read;
	w.control_source.ready = control_read;
	w.control_fd = setup->control_fd;
	snprintf(role, sizeof(role), "worker %d", setup->id);
	log_set_role(role);

	/* Die with the master rather than serve on unsupervised. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 || getppid() != parent)
		return 1;
	sigfd = signal_fd_open();
	if (sigfd < 0) {
		httpd_log(HTTPD_LOG_ERR, "signalfd: %s", strerror(errno));
		return 1;
	}
	w.signal_fd = sigfd;
	if (privileges_drop(setup) < 0)
		return 1;
	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w.epfd < 0) {
		httpd_log(HTTPD_LOG_ERR, "epoll_create1: %s", strerror(errno));
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = &w.signal_source;
	if (epoll_ctl(w.epfd, EPOLL_CTL_ADD, sigfd, &ev) < 0) {
		httpd_log(HTTPD_LOG_ERR, "epoll_ctl signalfd: %s", strerror(errno));
		return 1;
	}
	if (setup->control_fd >= 0) {
		ev.events = EPOLLIN;
		ev.data.ptr = &w.control_source;
		if (epoll_ctl(w.epfd, EPOLL_CTL_ADD, setup->control_fd, &ev) < 0)
			httpd_log(HTTPD_LOG_WARN, "epoll_ctl control socket: %s; logs cannot be reopened in place",
			          strerror(errno));
	}
	w.listeners = calloc(setup->listen_count, sizeof(*w.listeners));
	if (w.listeners == NULL)
		return 1;
	w.listener_count = setup->listen_count;
	for (size_t i = 0; i < setup->listen_count; i++) {
		w.listeners[i].ev.ready = listener_accept;
		w.listeners[i].w = &w;
		w.listeners[i].fd = setup->listen_fds[i];
		w.listeners[i].addr = setup->listen_addrs[i];
		w.listeners[i].flags = setup->listen_flags[i];
		listener_local_set(&w.listeners[i]);
	}
	if (getrandom(&w.request_id_base, sizeof(w.request_id_base), 0) != sizeof(w.request_id_base))
		w.request_id_base = (uint64_t)getpid() << 32;
	timer_list_init(&w.timers[TIMER_PROXY], setup->config->proxy_protocol_timeout_ms);
	timer_list_init(&w.timers[TIMER_HEADER], setup->config->header_timeout_ms);
	timer_list_init(&w.timers[TIMER_BODY], setup->config->body_timeout_ms);
	timer_list_init(&w.timers[TIMER_KEEPALIVE], setup->config->keepalive_timeout_ms);
	timer_list_init(&w.timers[TIMER_SEND], setup->config->send_timeout_ms);
	timer_list_init(&w.timers[TIMER_HANDLER], setup->config->handler_timeout_ms);
	timer_list_init(&w.timers[TIMER_LINGER], 5000);
	clock_update(&w);

	mime_table_use(setup->config->mime);
	log_set_level(setup->config->error_log_level);
	if (w.hooks->init(setup->config) < 0)
		goto out;
	hooks_inited = true;
	if (log_access_buffer(setup->config->access_log_buffer) < 0)
		httpd_log(HTTPD_LOG_WARN, "no memory for the access log buffer: one write per line");
	if (modules_worker_init(setup->config, &inited) < 0)
		goto out;
	listeners_nodelay(&w);
	if (listeners_watch(&w, true) < 0)
		goto out;
	if (setup->score_slot >= 0 && scoreboard != NULL) {
		score_self = &scoreboard->slot[setup->score_slot];
		__atomic_store_n(&score_self->state, SCORE_SERVING, __ATOMIC_RELAXED);
	}
	/* Tell the master this worker accepts (systemd READY=1 waits for every one). */
	(void)control_send(setup->control_fd, 'R', NULL, 0);

	for (;;) {
		int n;

		if (w.quitting && w.drain_gradual)
			idle_close_quiet(&w);
		if (w.quitting && (w.conn_count == 0 || w.now_ms >= w.quit_deadline))
			break;
		n = epoll_wait(w.epfd, events, EVENTS_MAX,
		               w.yielded != NULL ? 0 : wait_timeout(&w, w.quitting ? w.quit_deadline : UINT64_MAX));
		if (n < 0 && errno != EINTR) {
			httpd_log(HTTPD_LOG_ERR, "epoll_wait: %s", strerror(errno));
			goto out;
		}
		clock_update(&w);
		for (int i = 0; i < n; i++) {
			struct event_source *src = events[i].data.ptr;

			src->ready(src, events[i].events);
			if (w.stop_now) {
				status = 0;
				goto out;
			}
			deferred_run(&w);
		}
		yielded_run(&w);
		if (!w.accepting && !w.quitting && w.conn_count < w.config->worker_connections)
			(void)listeners_watch(&w, true);
		timers_expire(&w);
		deferred_run(&w);
		w.hooks->round_end();
		conns_recycle(&w);
		log_flush_due(&w);
		memory_trim(&w);
		gauges_publish(&w);
	}
	status = 0;
out:
	/* Blocking work still running finishes before the modules it belongs to go away. */
	threadpool_destroy(w.pool);
	w.pool = NULL;
	if (w.proxy_refused_from + w.proxy_refused_invalid + w.proxy_refused_timeout > 0)
		httpd_log(HTTPD_LOG_NOTICE, "PROXY protocol connections refused: %llu not in proxy_protocol_from, "
		          "%llu invalid or cut short, %llu timed out",
		          (unsigned long long)w.proxy_refused_from, (unsigned long long)w.proxy_refused_invalid,
		          (unsigned long long)w.proxy_refused_timeout);
	modules_worker_exit(setup->config, inited);
	if (hooks_inited)
		w.hooks->exit();
	log_access_flush();
	free(w.listeners);
	current = NULL;
	return status;
}
