#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn_proxy.h"
#include "listen.h"
#include "log.h"
#include "pool.h"
#include "proxy_protocol.h"
#include "scoreboard.h"

#define IN_BUF_INITIAL   4096
#define LINGER_MAX_BYTES (1 << 20)
#define POOL_CHUNK       8192    /* a proxied request (its state and the upstream head) fits in one */

static size_t proto_data_size;

void conn_data_reserve(size_t size)
{
	if (size > proto_data_size)
		proto_data_size = size;
}

void conn_addr_split(const struct sockaddr *sa, char *out, size_t size, unsigned *port)
{
	char text[64];
	char *colon;

	if (sa->sa_family == AF_UNIX) {
		snprintf(out, size, "unix:%s", ((const struct sockaddr_un *)sa)->sun_path);
		*port = 0;
		return;
	}
	listen_format(sa, text, sizeof(text));
	colon = strrchr(text, ':');
	*port = colon != NULL ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
	if (colon != NULL)
		*colon = '\0';
	if (text[0] == '[') {
		size_t n = strlen(text);

		if (n >= 2 && text[n - 1] == ']')
			text[n - 1] = '\0';
		snprintf(out, size, "%s", text + 1);
	} else {
		snprintf(out, size, "%s", text);
	}
}

void conn_local_resolve(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char text[128];

	if (c->local != NULL)
		return;
	/* A listener bound to one address already says it; only wildcards cost a syscall. */
	if (!c->listener->wildcard) {
		c->local = c->listener->local;
		c->local_port = c->listener->local_port;
		return;
	}
	c->local = "-";
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	conn_addr_split((const struct sockaddr *)&ss, text, sizeof(text), &c->local_port);
	/* Held apart from the struct: most connections never ask, and idle ones should stay small. */
	c->local_owned = strdup(text);
	if (c->local_owned != NULL)
		c->local = c->local_owned;
}

static void conn_register(struct conn *c);
static void conn_ready(struct event_source *src, uint32_t events);

void conn_open(struct worker *w, int fd, const struct sockaddr *peer, const struct listener *l)
{
	struct conn *c = w->free_conns;

	if (l->flags & LISTEN_PROXY_PROTOCOL) {
		char text[80];
		unsigned port;

		conn_addr_split(peer, text, sizeof(text), &port);
		if (!conn_proxy_admit(w, l, fd, text))
			return;
	}
	if (c != NULL) {
		w->free_conns = c->next_free;
	} else {
		c = calloc(1, sizeof(*c) + proto_data_size);
		if (c == NULL) {
			httpd_log(HTTPD_LOG_ERR, "out of memory accepting a connection");
			close(fd);
			return;
		}
	}
	memset(c, 0, sizeof(*c) + proto_data_size);
	c->ev.ready = conn_ready;
	c->fd = fd;
	c->transport = &transport_tcp;
	c->w = w;
	c->listener = l;
	c->tls_listener = (l->flags & LISTEN_TLS) != 0;
	c->preamble = (l->flags & LISTEN_PROXY_PROTOCOL) != 0;
	c->readable = true;        /* TCP_DEFER_ACCEPT: the request is usually there already */
	c->writable = true;
	timer_init(&c->timer);
	conn_addr_split(peer, c->peer, sizeof(c->peer), &c->peer_port);
	c->open_next = w->open_conns;
	if (w->open_conns != NULL)
		w->open_conns->open_prev = c;
	w->open_conns = c;
	w->conn_count++;
	if (score_self != NULL)
		score_add(&score_self->c.handled, 1);
	if (c->preamble) {
		timer_arm(w->timers, TIMER_PROXY, &c->timer, w->now_ms);
		conn_proxy_read(c);
	} else if (w->hooks->conn_begin(c) < 0) {
		conn_close(c);
		return;
	}
	/*
	 * Into the epoll set only now, when the connection has to wait: one
	 * answered and closed at once (Connection: close; TCP_DEFER_ACCEPT had
	 * the request there) never costs an epoll_ctl.  Adding checks readiness,
	 * so bytes that came after the last EAGAIN still raise an event.
	 */
	if (!c->closed)
		conn_register(c);
}

static void conn_register(struct conn *c)
{
	/* No EPOLLOUT until a write finds the socket full: most responses fit at once. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET | (c->out_watched ? EPOLLOUT : 0),
	                          .data.ptr = c };

	if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		httpd_log(HTTPD_LOG_ERR, "epoll_ctl add %s: %s", c->peer, strerror(errno));
		conn_close(c);
		return;
	}
	c->registered = true;
}

static void deferred_remove(struct conn *c)
{
	struct conn **link = &c->w->deferred;

	while (*link != NULL && *link != c)
		link = &(*link)->next_deferred;
	if (*link == c)
		*link = c->next_deferred;
	c->deferred = false;
	c->next_deferred = NULL;
}

/* Hands c's input buffer (whatever it holds) to the worker's spares, or back to malloc. */
static void in_give_back(struct conn *c)
{
	struct worker *w = c->w;
	char *drop = c->in;
	size_t drop_cap = c->in_cap;

	if (c->in_cap == IN_BUF_INITIAL && w->spare_buf_count < WORKER_SPARE_BUFS) {
		w->spare_bufs[w->spare_buf_count++] = c->in;
		drop = NULL;
	} else if (c->in_cap > w->spare_big_cap) {
		/* The larger one stays: an upload's turns come round again, and it serves any smaller need. */
		drop = w->spare_big;
		drop_cap = w->spare_big_cap;
		w->spare_big = c->in;
		w->spare_big_cap = c->in_cap;
	}
	if (drop != NULL) {
		free(drop);
		w->freed_bytes += drop_cap;
	}
	c->in = NULL;
	c->in_cap = c->in_len = c->in_off = 0;
}

void conn_idle(struct conn *c)
{
	struct worker *w = c->w;

	if (c->in != NULL)
		in_give_back(c);
	if (c->spare_pool != NULL) {
		if (w->spare_pool_count < WORKER_SPARE_POOLS) {
			w->spare_pools[w->spare_pool_count++] = c->spare_pool;
		} else {
			pool_destroy(c->spare_pool);
			w->freed_bytes += POOL_CHUNK;
		}
		c->spare_pool = NULL;
	}
}

void conn_pool_give(struct conn *c, struct httpd_pool *pool)
{
	struct worker *w = c->w;

	pool_reset(pool);
	if (c->spare_pool == NULL) {
		c->spare_pool = pool;   /* the connection's next request reuses the first chunk */
	} else if (w->spare_pool_count < WORKER_SPARE_POOLS) {
		w->spare_pools[w->spare_pool_count++] = pool;   /* HTTP/2: many requests end on one connection */
	} else {
		pool_destroy(pool);
		w->freed_bytes += POOL_CHUNK;
	}
}

struct httpd_pool *conn_pool_take(struct conn *c)
{
	struct httpd_pool *pool = c->spare_pool;

	c->spare_pool = NULL;
	if (pool == NULL && c->w->spare_pool_count > 0)
		pool = c->w->spare_pools[--c->w->spare_pool_count];
	return pool != NULL ? pool : pool_create(POOL_CHUNK);
}

void conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (c->proto != NULL)
		c->proto->abort(c);
	if (c->deferred)
		deferred_remove(c);
	if (c->yielded)
		worker_yield_cancel(w, c);
	timer_disarm(&c->timer);
	c->transport->close(c);
	conn_idle(c);
	conn_proxy_free(c);
	free(c->local_owned);
	c->local_owned = NULL;
	/*
	 * Not reusable before the current epoll batch is over: it may still
	 * hold an event for this connection (a module event or a deferred
	 * response can close a connection whose own event comes later).
	 */
	c->closed = true;
	if (c->open_prev != NULL)
		c->open_prev->open_next = c->open_next;
	else
		w->open_conns = c->open_next;
	if (c->open_next != NULL)
		c->open_next->open_prev = c->open_prev;
	c->open_prev = c->open_next = NULL;
	c->next_free = w->closed_conns;
	w->closed_conns = c;
	w->conn_count--;
	worker_conn_closed(w);
}

static void conn_ready(struct event_source *src, uint32_t events)
{
	struct conn *c = (struct conn *)src;

	if (c->closed)
		return;   /* closed earlier in this batch */
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		c->readable = true;
		c->drained = false;
	}
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	/* TLS reads and writes can each wait on the other direction. */
	if ((events & EPOLLOUT) && c->tls_read_wants_write)
		c->readable = true;
	if ((events & EPOLLIN) && c->tls_write_wants_read)
		c->writable = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->peer_closed = true;
	conn_resume(c);
}

void conn_wait_writable(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };

	c->writable = false;
	if (c->out_watched)
		return;
	if (!c->registered) {
		c->out_watched = true;   /* conn_open registers it with EPOLLOUT */
		return;
	}
	/* MOD re-checks readiness: space that freed meanwhile still raises the event. */
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		httpd_log(HTTPD_LOG_ERR, "epoll_ctl mod %s: %s", c->peer, strerror(errno));
		c->writable = true;   /* poll by retrying rather than hang */
		return;
	}
	c->out_watched = true;
}

static int conn_linger(struct conn *c);

void conn_resume(struct conn *c)
{
	if (c->closed)
		return;
	if (c->preamble)
		conn_proxy_read(c);
	else if (c->lingering)
		(void)conn_linger(c);
	else
		c->proto->run(c);
}

bool conn_send_now(struct conn *c, const char *msg, size_t len)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)msg, .iov_len = len };

	return c->transport->writev(c, &iov, 1, false) == (ssize_t)len;
}

void conn_timeout(struct conn *c, enum timer_kind kind)
{
	if (kind == TIMER_PROXY)
		conn_proxy_timeout(c);
	else if (kind == TIMER_LINGER || c->proto == NULL)
		conn_close(c);
	else
		c->proto->timeout(c, kind);
}

/* Makes room to read at least some bytes into in; false if the head limit is reached. */
static bool in_make_room(struct conn *c)
{
	const struct httpd_config *cfg = c->w->config;
	size_t max = cfg->limits.max_head + 1024;

	if (c->preamble && max < PROXY_V2_MAX)
		max = PROXY_V2_MAX;

	if (c->in_off > 0 && c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	if (c->in_cap - c->in_len >= 512)
		return true;
	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
		if (c->in_cap - c->in_len >= 512)
			return true;
	}
	if (c->in == NULL && c->w->spare_buf_count > 0) {
		c->in = c->w->spare_bufs[--c->w->spare_buf_count];
		c->in_cap = IN_BUF_INITIAL;
		return true;
	}
	if (c->in_cap < max) {
		size_t cap = c->in_cap ? c->in_cap * 2 : IN_BUF_INITIAL;

		return conn_in_reserve(c, cap > max ? max : cap);
	}
	return c->in_cap > c->in_len;
}

int conn_fill(struct conn *c)
{
	ssize_t n;

	if (!c->readable)
		return 0;
	/*
	 * A short read emptied the socket and no event came since: reading now
	 * would mostly find nothing (after an answer, the client's next request
	 * is rarely there yet: one wasted syscall per keep-alive request).
	 * Edge-triggered epoll raises an event for whatever arrives after that
	 * read; wait for it.  Unless the peer closed: that event is spent, and
	 * only a read sees the end of the stream.
	 */
	if (c->drained && !c->peer_closed) {
		c->readable = false;
		return 0;
	}
	if (!in_make_room(c))
		return 0;
	n = c->transport->read(c, c->in + c->in_len, c->in_cap - c->in_len);
	if (n > 0) {
		c->drained = c->transport->short_read_drains && (size_t)n < c->in_cap - c->in_len;
		c->in_len += (size_t)n;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			c->readable = false;
		return 0;
	}
	/* EOF or a reset: the client went away; nothing to answer. */
	conn_close(c);
	return -1;
}

bool conn_in_reserve(struct conn *c, size_t cap)
{
	struct worker *w = c->w;
	char *in;

	if (c->in_cap >= cap)
		return true;
	if (w->spare_big != NULL && w->spare_big_cap >= cap) {
		in = w->spare_big;
		cap = w->spare_big_cap;
		w->spare_big = NULL;
		w->spare_big_cap = 0;
		if (c->in != NULL) {
			size_t len = c->in_len, off = c->in_off;

			memcpy(in, c->in, len);
			in_give_back(c);
			c->in_len = len;
			c->in_off = off;
		}
	} else {
		in = realloc(c->in, cap);
		if (in == NULL)
			return false;
	}
	c->in = in;
	c->in_cap = cap;
	return true;
}

void conn_in_release(struct conn *c)
{
	if (c->in != NULL && c->in_off == c->in_len)
		in_give_back(c);
}

int conn_linger_begin(struct conn *c, bool write_shut)
{
	if (write_shut && c->transport->shutdown(c) < 0) {
		conn_close(c);
		return -1;
	}
	c->lingering = true;
	c->in_off = c->in_len = 0;
	timer_arm(c->w->timers, TIMER_LINGER, &c->timer, c->w->now_ms);
	return 0;
}

static int conn_linger(struct conn *c)
{
	char sink[4096];

	for (size_t total = 0; total < LINGER_MAX_BYTES; ) {
		ssize_t n;

		if (!c->readable)
			return 0;
		n = c->transport->read(c, sink, sizeof(sink));
		if (n > 0) {
			total += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			c->readable = false;
			return 0;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	conn_close(c);
	return -1;
}
