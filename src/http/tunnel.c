#include "tunnel.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "http1.h"
#include "log.h"
#include "pool.h"
#include "request.h"
#include "timer.h"

#define TUNNEL_BUF 16384

struct tunnel {
	struct request     *r;
	int                 fd;
	struct httpd_event *io, *idle;
	unsigned            io_want;
	unsigned            idle_ms;
	uint64_t            moved_ms;
	char               *up, *down;              /* client -> fd, fd -> client */
	size_t              up_off, up_len, down_off, down_len;
	bool                client_eof, fd_eof, fd_shut, client_shut;
};

static void fd_event(struct httpd_request *req, void *arg, unsigned events);
static void idle_check(struct httpd_request *req, void *arg, unsigned events);

static void fd_close(void *arg)
{
	struct tunnel *t = arg;

	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

int tunnel_start(struct conn *c, struct request *r)
{
	struct http1 *h = http1_of(c);
	struct httpd_response *res = &r->res;
	struct tunnel *t = pool_alloc(r->pool, sizeof(*t));
	size_t early_up;

	if (t == NULL)
		return -1;
	memset(t, 0, sizeof(*t));
	t->r = r;
	t->fd = res->tunnel_fd;
	res->tunnel_fd = -1;
	t->idle_ms = res->tunnel_idle_ms;
	/* Bytes either side sent right behind the handshake go first, all of them: room for each. */
	early_up = c->in_len - c->in_off;
	t->up = pool_alloc(r->pool, early_up > TUNNEL_BUF ? early_up : TUNNEL_BUF);
	t->down = pool_alloc(r->pool, res->tunnel_pending_len > TUNNEL_BUF ? res->tunnel_pending_len : TUNNEL_BUF);
	if (httpd_pool_cleanup(r->pool, fd_close, t) < 0) {
		close(t->fd);
		return -1;
	}
	if (t->up == NULL || t->down == NULL)
		return -1;
	if (early_up > 0) {
		memcpy(t->up, c->in + c->in_off, early_up);
		t->up_len = early_up;
		c->in_off += early_up;
	}
	if (res->tunnel_pending_len > 0) {
		memcpy(t->down, res->tunnel_pending, res->tunnel_pending_len);
		t->down_len = res->tunnel_pending_len;
	}
	t->io_want = HTTPD_EVENT_READ | HTTPD_EVENT_WRITE;
	t->io = httpd_event_fd(&r->req, t->fd, t->io_want, fd_event, t);
	t->moved_ms = c->w->now_ms;
	t->idle = httpd_event_timer(&r->req, t->idle_ms, idle_check, t);
	if (t->io == NULL || t->idle == NULL)
		return -1;
	timer_disarm(&c->timer);   /* the tunnel keeps its own idle time */
	h->tunnel = t;
	h->state = H1_TUNNEL;
	h->keep_alive = false;
	return 0;
}

static void tunnel_end(struct conn *c, const char *why)
{
	struct http1 *h = http1_of(c);
	struct tunnel *t = h->tunnel;
	struct request *r = t->r;

	if (why != NULL)
		httpd_log_request(HTTPD_LOG_INFO, &r->req, "tunnel closed: %s", why);
	h->tunnel = NULL;
	r->res.body_sent = 0;
	request_done(r);   /* logs the 101, frees the pool: the fd is closed by its cleanup */
	h->req = NULL;
	conn_close(c);
}

int tunnel_run(struct conn *c)
{
	struct http1 *h = http1_of(c);
	struct tunnel *t = h->tunnel;
	bool moved = false;

	for (;;) {
		bool progress = false;
		ssize_t n;

		/* client -> fd */
		if (t->up_off == t->up_len && !t->client_eof && c->readable) {
			t->up_off = t->up_len = 0;
			n = c->transport->read(c, t->up, TUNNEL_BUF);
			if (n > 0) {
				t->up_len = (size_t)n;
				progress = true;
			} else if (n == 0) {
				t->client_eof = true;
			} else if (errno == EAGAIN) {
				c->readable = false;
			} else if (errno != EINTR) {
				t->client_eof = true;
			}
		}
		if (t->up_off < t->up_len) {
			n = send(t->fd, t->up + t->up_off, t->up_len - t->up_off, MSG_NOSIGNAL);
			if (n > 0) {
				t->up_off += (size_t)n;
				progress = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				tunnel_end(c, "the upstream side failed");
				return -1;
			}
		}
		if (t->client_eof && t->up_off == t->up_len && !t->fd_shut) {
			(void)shutdown(t->fd, SHUT_WR);
			t->fd_shut = true;
		}
		/* fd -> client */
		if (t->down_off == t->down_len && !t->fd_eof) {
			t->down_off = t->down_len = 0;
			n = recv(t->fd, t->down, TUNNEL_BUF, 0);
			if (n > 0) {
				t->down_len = (size_t)n;
				progress = true;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				t->fd_eof = true;
			}
		}
		if (t->down_off < t->down_len && c->writable) {
			struct iovec iov = { .iov_base = t->down + t->down_off, .iov_len = t->down_len - t->down_off };

			n = c->transport->writev(c, &iov, 1, false);
			if (n > 0) {
				t->down_off += (size_t)n;
				t->r->res.body_sent += (uint64_t)n;
				progress = true;
			} else if (n < 0 && errno == EAGAIN) {
				conn_wait_writable(c);
			} else if (n < 0 && errno != EINTR) {
				tunnel_end(c, NULL);   /* the client is gone */
				return -1;
			}
		}
		if (t->fd_eof && t->down_off == t->down_len && !t->client_shut) {
			(void)c->transport->shutdown(c);
			t->client_shut = true;
		}
		if (t->client_eof && t->fd_eof && t->up_off == t->up_len && t->down_off == t->down_len) {
			tunnel_end(c, NULL);
			return -1;
		}
		moved = moved || progress;
		if (!progress)
			break;
	}
	if (moved)
		t->moved_ms = c->w->now_ms;
	{
		unsigned want = (t->up_off < t->up_len ? HTTPD_EVENT_WRITE : 0) |
		                (!t->fd_eof && t->down_off == t->down_len ? HTTPD_EVENT_READ : 0);

		if (want != t->io_want && httpd_event_fd_mod(t->io, want) == 0)
			t->io_want = want;
	}
	return 0;
}

static void fd_event(struct httpd_request *req, void *arg, unsigned events)
{
	struct tunnel *t = arg;
	struct conn *c = request_of(req)->conn;

	if (events & HTTPD_EVENT_ERROR)
		t->fd_eof = true;   /* a read will say so too; this also stops hang-up reports */
	if (c != NULL && http1_of(c)->tunnel == t)
		(void)tunnel_run(c);
}

static void idle_check(struct httpd_request *req, void *arg, unsigned events)
{
	struct tunnel *t = arg;
	struct conn *c = request_of(req)->conn;
	uint64_t now;

	(void)events;
	t->idle = NULL;
	if (c == NULL || http1_of(c)->tunnel != t)
		return;
	now = c->w->now_ms;
	if (now - t->moved_ms >= t->idle_ms) {
		tunnel_end(c, "idle");
		return;
	}
	t->idle = httpd_event_timer(req, (unsigned)(t->idle_ms - (now - t->moved_ms)), idle_check, t);
}
