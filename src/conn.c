#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "pool.h"
#include "request.h"

#define IN_BUF_INITIAL   4096
#define POOL_CHUNK       4096
#define STREAM_BUF_SIZE  16384
#define SENDFILE_MAX     (1 << 20)   /* per call, so one big file cannot starve the loop */
#define LINGER_MAX_BYTES (1 << 20)
/*
 * Files up to this size are read into the request pool and leave with the
 * header in one sendmsg: for small files pread is cheaper than sendfile
 * (measured with strace -c against a 1 KiB file).
 */
#define SMALL_FILE_MAX   16384

enum step { STEP_AGAIN, STEP_CONTINUE, STEP_CLOSED };

static enum step conn_read_head(struct conn *c);
static enum step conn_read_body(struct conn *c);
static enum step conn_write(struct conn *c);
static enum step conn_linger(struct conn *c);

static void conn_run(struct conn *c)
{
	enum step s = STEP_CONTINUE;

	while (s == STEP_CONTINUE) {
		switch (c->state) {
		case CONN_READ_HEAD: s = conn_read_head(c); break;
		case CONN_READ_BODY: s = conn_read_body(c); break;
		case CONN_WRITE:     s = conn_write(c); break;
		case CONN_LINGER:    s = conn_linger(c); break;
		}
	}
}

void conn_open(struct worker *w, int fd, const struct sockaddr *peer)
{
	struct conn *c = w->free_conns;
	struct epoll_event ev;
	int one = 1;

	if (c != NULL) {
		w->free_conns = c->next_free;
	} else {
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			httpd_log(HTTPD_LOG_ERR, "out of memory accepting a connection");
			close(fd);
			return;
		}
	}
	memset(c, 0, sizeof(*c));
	c->ev.kind = EVENT_CONN;
	c->fd = fd;
	c->w = w;
	c->res.fd = -1;
	c->state = CONN_READ_HEAD;
	c->readable = true;        /* TCP_DEFER_ACCEPT: the request is usually there already */
	c->writable = true;
	timer_init(&c->timer);
	listen_format(peer, c->peer, sizeof(c->peer));
	/* Strip the port: the access log wants the address. */
	{
		char *colon = strrchr(c->peer, ':');
		char *open = c->peer[0] == '[' ? c->peer : NULL;

		if (colon != NULL)
			*colon = '\0';
		if (open != NULL) {
			size_t n = strlen(c->peer);
			memmove(c->peer, c->peer + 1, n);
			if (n >= 2)
				c->peer[n - 2] = '\0';
		}
	}
	/* Responses leave in one write, or with MSG_MORE before a file: Nagle only delays. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = c;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		httpd_log(HTTPD_LOG_ERR, "epoll_ctl add %s: %s", c->peer, strerror(errno));
		close(fd);
		c->next_free = w->free_conns;
		w->free_conns = c;
		return;
	}
	w->conn_count++;
	timer_arm(w->timers, TIMER_HEADER, &c->timer, w->now_ms);
	conn_run(c);
}

static void request_reset(struct conn *c)
{
	response_discard_body(&c->res);
	free(c->body);
	c->body = NULL;
	c->body_len = c->body_cap = 0;
	c->body_expected = 0;
	c->stream_buf = NULL;
	c->stream_active = false;
	c->chunked_out = false;
	c->file_left = 0;
	c->iov_cnt = c->iov_idx = 0;
	c->body_sent = 0;
	c->loc = NULL;
	c->allow = NULL;
	c->linger = false;
	c->got_bytes = false;
	memset(&c->req, 0, sizeof(c->req));
	memset(&c->head, 0, sizeof(c->head));
	memset(&c->res, 0, sizeof(c->res));
	c->res.fd = -1;
	if (c->pool != NULL)
		pool_reset(c->pool);
}

void conn_close(struct conn *c)
{
	struct worker *w = c->w;

	request_reset(c);
	timer_disarm(&c->timer);
	/* close(2) also removes the fd from the epoll set. */
	close(c->fd);
	c->fd = -1;
	pool_destroy(c->pool);
	c->pool = NULL;
	free(c->in);
	c->in = NULL;
	c->next_free = w->free_conns;
	w->free_conns = c;
	w->conn_count--;
	worker_conn_closed(w);
}

void conn_close_if_idle(struct conn *c)
{
	if (c->state == CONN_READ_HEAD && !c->got_bytes)
		conn_close(c);
}

void conn_event(struct conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	conn_run(c);
}

/* A last, best-effort answer before closing (timeouts): never blocks. */
static void conn_send_final_error(struct conn *c, int status)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf),
	                 "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	                 status, http_status_reason(status));

	if (n > 0 && send(c->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* The client is gone or stuck; closing is all that is left. */
	}
}

void conn_timeout(struct conn *c, enum timer_kind kind)
{
	switch (kind) {
	case TIMER_HEADER:
	case TIMER_BODY:
		/* RFC 9110 §15.5.9: 408 tells a slow client why it was dropped. */
		if (c->got_bytes || kind == TIMER_BODY)
			conn_send_final_error(c, 408);
		conn_close(c);
		break;
	default:
		conn_close(c);
		break;
	}
}

/* Makes room to read at least some bytes into in; false if the head limit is reached. */
static bool in_make_room(struct conn *c)
{
	const struct httpd_config *cfg = c->w->config;
	size_t max = cfg->limits.max_head + 1024;

	if (c->in_off > 0 && c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
		c->scan = 0;
	}
	if (c->in_cap - c->in_len >= 512)
		return true;
	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
		if (c->in_cap - c->in_len >= 512)
			return true;
	}
	if (c->in_cap < max) {
		size_t cap = c->in_cap ? c->in_cap * 2 : IN_BUF_INITIAL;
		char *in;

		if (cap > max)
			cap = max;
		in = realloc(c->in, cap);
		if (in == NULL)
			return false;
		c->in = in;
		c->in_cap = cap;
		return true;
	}
	return c->in_cap > c->in_len;
}

/* Reads into in; STEP_CONTINUE if bytes arrived, STEP_AGAIN, or STEP_CLOSED. */
static enum step conn_fill(struct conn *c)
{
	ssize_t n;

	if (!c->readable)
		return STEP_AGAIN;
	if (!in_make_room(c))
		return STEP_AGAIN;
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n > 0) {
		c->in_len += (size_t)n;
		return STEP_CONTINUE;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			c->readable = false;
		return STEP_AGAIN;
	}
	/* EOF or a reset: the client went away; nothing to answer. */
	conn_close(c);
	return STEP_CLOSED;
}

static enum step conn_head_complete(struct conn *c, size_t head_start, size_t head_len)
{
	const struct httpd_config *cfg = c->w->config;
	size_t lines = 0;
	struct httpd_header *headers;
	char *head;
	int rc;

	if (c->pool == NULL) {
		c->pool = pool_create(POOL_CHUNK);
		if (c->pool == NULL) {
			conn_close(c);
			return STEP_CLOSED;
		}
	}
	/* A private copy: in can then move and grow while the request is served. */
	head = pool_strndup(c->pool, c->in + c->in_off + head_start, head_len - 2);
	c->in_off += head_start + head_len;
	c->scan = 0;
	for (size_t i = 0; head != NULL && i < head_len - 2; i++)
		lines += head[i] == '\n';
	if (lines > cfg->limits.max_headers)
		lines = cfg->limits.max_headers;
	headers = pool_alloc(c->pool, (lines + 1) * sizeof(*headers));
	if (head == NULL || headers == NULL) {
		conn_respond_error(c, 500, true);
		return STEP_CONTINUE;
	}
	rc = http_head_parse(head, head_len - 2, &cfg->limits, headers, &c->head);
	if (rc != 0) {
		c->head.keep_alive = false;
		c->linger = true;
		conn_respond_error(c, rc, true);
		return STEP_CONTINUE;
	}
	c->keep_alive = c->head.keep_alive && !c->w->quitting &&
	                c->requests + 1 < cfg->keepalive_requests;
	rc = request_begin(c);
	if (rc == REQUEST_ANSWERED)
		return STEP_CONTINUE;
	if (rc != 0) {
		/* An unread body would be taken for the next request: close instead. */
		bool body_pending = c->head.chunked || c->head.content_length > 0;

		if (body_pending)
			c->linger = true;
		conn_respond_error(c, rc, body_pending || rc == 400);
		return STEP_CONTINUE;
	}
	if (c->head.chunked || c->head.content_length > 0) {
		c->body_expected = c->head.chunked ? 0 : (uint64_t)c->head.content_length;
		if (c->head.chunked)
			http_chunked_init(&c->chunked);
		/* RFC 9110 §10.1.1: ask for the body only once we know we want it. */
		if (c->head.expect_continue && c->in_len == c->in_off) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

			if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(cont) - 1) {
				conn_close(c);
				return STEP_CLOSED;
			}
		}
		c->state = CONN_READ_BODY;
		timer_arm(c->w->timers, TIMER_BODY, &c->timer, c->w->now_ms);
		return STEP_CONTINUE;
	}
	request_dispatch(c);
	return STEP_CONTINUE;
}

static enum step conn_read_head(struct conn *c)
{
	const struct httpd_config *cfg = c->w->config;

	for (;;) {
		if (c->in_len > c->in_off) {
			size_t head_start, head_len;
			int rc;

			if (!c->got_bytes) {
				c->got_bytes = true;
				if (c->timer.list != TIMER_HEADER)
					timer_arm(c->w->timers, TIMER_HEADER, &c->timer, c->w->now_ms);
			}
			rc = http_head_find(c->in + c->in_off, c->in_len - c->in_off, &c->scan, &cfg->limits,
			                    &head_start, &head_len);
			if (rc == 0)
				return conn_head_complete(c, head_start, head_len);
			if (rc != HTTP_PARSE_AGAIN) {
				c->linger = true;
				c->head.version = 11;
				c->keep_alive = false;
				conn_respond_error(c, rc, true);
				return STEP_CONTINUE;
			}
		}
		enum step s = conn_fill(c);
		if (s != STEP_CONTINUE)
			return s;
	}
}

static bool body_reserve(struct conn *c, size_t need)
{
	size_t cap;
	char *body;

	if (c->body_cap - c->body_len >= need && c->body != NULL)
		return true;
	cap = c->body_cap ? c->body_cap : 4096;
	while (cap - c->body_len < need)
		cap *= 2;
	body = realloc(c->body, cap + 1);
	if (body == NULL)
		return false;
	c->body = body;
	c->body_cap = cap;
	return true;
}

static enum step body_finished(struct conn *c)
{
	timer_disarm(&c->timer);
	c->body[c->body_len] = '\0';
	c->req.body = c->body;
	c->req.body_len = c->body_len;
	request_dispatch(c);
	return STEP_CONTINUE;
}

static enum step conn_read_body_chunked(struct conn *c)
{
	const uint64_t max = c->loc ? c->loc->max_body_size : c->w->config->max_body_size;

	for (;;) {
		size_t consumed = 0, produced = 0;
		int rc;

		if (!body_reserve(c, 1024)) {
			conn_respond_error(c, 500, true);
			return STEP_CONTINUE;
		}
		rc = http_chunked_decode(&c->chunked, c->in + c->in_off, c->in_len - c->in_off, &consumed,
		                         c->body + c->body_len, c->body_cap - c->body_len, &produced, max);
		c->in_off += consumed;
		c->body_len += produced;
		if (rc == HTTP_CHUNKED_DONE)
			return body_finished(c);
		if (rc != HTTP_PARSE_AGAIN) {
			c->linger = true;
			conn_respond_error(c, rc, true);
			return STEP_CONTINUE;
		}
		if (c->in_off < c->in_len)
			continue;   /* output was full */
		enum step s = conn_fill(c);
		if (s != STEP_CONTINUE)
			return s;
		timer_arm(c->w->timers, TIMER_BODY, &c->timer, c->w->now_ms);
	}
}

static enum step conn_read_body(struct conn *c)
{
	ssize_t n;

	if (c->head.chunked)
		return conn_read_body_chunked(c);
	if (c->body == NULL && !body_reserve(c, (size_t)c->body_expected)) {
		conn_respond_error(c, 500, true);
		return STEP_CONTINUE;
	}
	/* Bytes that arrived with the head come first. */
	if (c->in_len > c->in_off) {
		size_t take = c->in_len - c->in_off;

		if (take > c->body_expected - c->body_len)
			take = (size_t)(c->body_expected - c->body_len);
		memcpy(c->body + c->body_len, c->in + c->in_off, take);
		c->body_len += take;
		c->in_off += take;
	}
	while (c->body_len < c->body_expected) {
		if (!c->readable)
			return STEP_AGAIN;
		n = recv(c->fd, c->body + c->body_len, (size_t)(c->body_expected - c->body_len), 0);
		if (n > 0) {
			c->body_len += (size_t)n;
			timer_arm(c->w->timers, TIMER_BODY, &c->timer, c->w->now_ms);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (errno == EAGAIN)
				c->readable = false;
			continue;
		}
		conn_close(c);
		return STEP_CLOSED;
	}
	return body_finished(c);
}

void conn_respond_error(struct conn *c, int status, bool close)
{
	const struct error_page *page;

	if (close)
		c->keep_alive = false;
	if (c->pool == NULL && (c->pool = pool_create(POOL_CHUNK)) == NULL) {
		conn_close(c);
		return;
	}
	if (c->res.pool == NULL)
		response_init(&c->res, c->pool);
	page = config_error_page(c->w->config, status);
	if (page != NULL) {
		response_discard_body(&c->res);
		c->res.status = status;
		c->res.headers = c->res.headers_tail = NULL;
		httpd_response_add_header(&c->res, "Content-Type", page->content_type);
		httpd_response_set_body_buffer(&c->res, page->body, page->len);
	} else {
		response_error(&c->res, status);
	}
	conn_respond(c);
}

void conn_respond(struct conn *c)
{
	const struct httpd_config *cfg = c->w->config;
	struct response_head_opts opts = {
		.version = c->head.version ? c->head.version : 11,
		.keep_alive = c->keep_alive && !c->w->quitting,
		.head_only = c->head.method == HTTPD_METHOD_HEAD,
		.server_tokens = cfg->server_tokens,
		.now = c->w->now,
		.allow = c->allow,
	};
	size_t len;
	bool chunked;
	char *head = response_head_build(&c->res, &opts, &len, &chunked);

	if (head == NULL) {
		httpd_log(HTTPD_LOG_ERR, "%s: cannot build response head", c->peer);
		conn_close(c);
		return;
	}
	c->keep_alive = opts.keep_alive;
	c->head_len = len;
	c->iov[0].iov_base = head;
	c->iov[0].iov_len = len;
	c->iov_cnt = 1;
	c->iov_idx = 0;
	c->chunked_out = chunked;
	switch (c->res.body) {
	case BODY_BUFFER:
		if (c->res.buf_len > 0) {
			c->iov[1].iov_base = (void *)c->res.buf;
			c->iov[1].iov_len = c->res.buf_len;
			c->iov_cnt = 2;
		}
		break;
	case BODY_FILE:
		if (c->res.file_len > 0 && c->res.file_len <= SMALL_FILE_MAX) {
			char *buf = pool_alloc(c->pool, (size_t)c->res.file_len);
			ssize_t n = buf ? pread(c->res.fd, buf, (size_t)c->res.file_len, c->res.file_offset) : -1;

			if (n == (ssize_t)c->res.file_len) {
				httpd_response_set_body_buffer(&c->res, buf, (size_t)n);   /* closes the fd */
				c->iov[1].iov_base = buf;
				c->iov[1].iov_len = (size_t)n;
				c->iov_cnt = 2;
				break;
			}
			/* A short read means the file changed: sendfile will notice and close. */
		}
		c->file_off = c->res.file_offset;
		c->file_left = c->res.file_len;
		break;
	case BODY_STREAM:
		c->stream_active = true;
		break;
	case BODY_NONE:
		break;
	}
	c->state = CONN_WRITE;
	timer_arm(c->w->timers, TIMER_SEND, &c->timer, c->w->now_ms);
}

/* Frames the next piece of a streamed body into iov; false on a module error. */
static bool stream_refill(struct conn *c)
{
	ssize_t n;

	if (c->stream_buf == NULL) {
		c->stream_buf = pool_alloc(c->pool, STREAM_BUF_SIZE + 2);
		if (c->stream_buf == NULL)
			return false;
	}
	n = c->res.stream(c->res.stream_ctx, c->stream_buf, STREAM_BUF_SIZE);
	if (n < 0 || n > STREAM_BUF_SIZE)
		return false;
	c->iov_idx = 0;
	if (n == 0) {
		c->stream_active = false;
		if (!c->chunked_out)
			return true;
		c->iov[0].iov_base = (void *)"0\r\n\r\n";
		c->iov[0].iov_len = 5;
		c->iov_cnt = 1;
		return true;
	}
	c->body_sent += (uint64_t)n;
	if (!c->chunked_out) {
		c->iov[0].iov_base = c->stream_buf;
		c->iov[0].iov_len = (size_t)n;
		c->iov_cnt = 1;
		return true;
	}
	c->iov[0].iov_base = c->chunk_head;
	c->iov[0].iov_len = (size_t)snprintf(c->chunk_head, sizeof(c->chunk_head), "%zx\r\n", (size_t)n);
	c->iov[1].iov_base = c->stream_buf;
	c->iov[1].iov_len = (size_t)n;
	c->iov[2].iov_base = (void *)"\r\n";
	c->iov[2].iov_len = 2;
	c->iov_cnt = 3;
	return true;
}

static void iov_advance(struct conn *c, size_t n)
{
	while (n > 0 && c->iov_idx < c->iov_cnt) {
		struct iovec *v = &c->iov[c->iov_idx];

		if (n >= v->iov_len) {
			n -= v->iov_len;
			c->iov_idx++;
		} else {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			n = 0;
		}
	}
	if (c->iov_idx >= c->iov_cnt)
		c->iov_cnt = c->iov_idx = 0;
}

static enum step conn_response_done(struct conn *c)
{
	bool keep = c->keep_alive && !c->w->quitting;

	if (c->res.body == BODY_BUFFER)
		c->body_sent = c->res.buf_len;
	else if (c->res.body == BODY_FILE)
		c->body_sent = (uint64_t)(c->res.file_len - c->file_left);
	request_log(c);
	c->requests++;
	request_reset(c);
	if (!keep) {
		if (c->linger || c->in_len > c->in_off) {
			/* Close only after the client has read: a close with unread input sends RST. */
			if (shutdown(c->fd, SHUT_WR) < 0) {
				conn_close(c);
				return STEP_CLOSED;
			}
			c->state = CONN_LINGER;
			c->in_off = c->in_len = 0;
			timer_arm(c->w->timers, TIMER_LINGER, &c->timer, c->w->now_ms);
			return STEP_CONTINUE;
		}
		conn_close(c);
		return STEP_CLOSED;
	}
	c->state = CONN_READ_HEAD;
	if (c->in_len == c->in_off) {
		c->in_off = c->in_len = 0;
		c->scan = 0;
		timer_arm(c->w->timers, TIMER_KEEPALIVE, &c->timer, c->w->now_ms);
	} else {
		timer_arm(c->w->timers, TIMER_HEADER, &c->timer, c->w->now_ms);
	}
	return STEP_CONTINUE;
}

static enum step write_failed(struct conn *c, const char *what)
{
	if (errno != EPIPE && errno != ECONNRESET)
		httpd_log(HTTPD_LOG_INFO, "%s: %s failed: %s", c->peer, what, strerror(errno));
	conn_close(c);
	return STEP_CLOSED;
}

static enum step conn_write(struct conn *c)
{
	for (;;) {
		if (c->iov_cnt > 0) {
			struct msghdr mh = { 0 };
			bool more = c->file_left > 0 || c->stream_active;
			ssize_t n;

			if (!c->writable)
				return STEP_AGAIN;
			mh.msg_iov = c->iov + c->iov_idx;
			mh.msg_iovlen = (size_t)(c->iov_cnt - c->iov_idx);
			n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN) {
					c->writable = false;
					return STEP_AGAIN;
				}
				return write_failed(c, "send");
			}
			iov_advance(c, (size_t)n);
			timer_arm(c->w->timers, TIMER_SEND, &c->timer, c->w->now_ms);
			continue;
		}
		if (c->file_left > 0) {
			size_t want = c->file_left > SENDFILE_MAX ? SENDFILE_MAX : (size_t)c->file_left;
			ssize_t n;

			if (!c->writable)
				return STEP_AGAIN;
			n = sendfile(c->fd, c->res.fd, &c->file_off, want);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN) {
					c->writable = false;
					return STEP_AGAIN;
				}
				return write_failed(c, "sendfile");
			}
			if (n == 0) {
				/* The file shrank under us: the promised length cannot be kept. */
				httpd_log(HTTPD_LOG_ERR, "%s: %s: file truncated while sending", c->peer,
				          c->req.path ? c->req.path : "?");
				conn_close(c);
				return STEP_CLOSED;
			}
			c->file_left -= n;
			timer_arm(c->w->timers, TIMER_SEND, &c->timer, c->w->now_ms);
			continue;
		}
		if (c->stream_active) {
			if (!stream_refill(c)) {
				httpd_log(HTTPD_LOG_ERR, "%s: %s: streamed body failed", c->peer,
				          c->req.path ? c->req.path : "?");
				conn_close(c);
				return STEP_CLOSED;
			}
			continue;
		}
		return conn_response_done(c);
	}
}

static enum step conn_linger(struct conn *c)
{
	char sink[4096];

	for (size_t total = 0; total < LINGER_MAX_BYTES; ) {
		ssize_t n;

		if (!c->readable)
			return STEP_AGAIN;
		n = recv(c->fd, sink, sizeof(sink), 0);
		if (n > 0) {
			total += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			c->readable = false;
			return STEP_AGAIN;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	conn_close(c);
	return STEP_CLOSED;
}
