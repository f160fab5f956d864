#include "http1.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "pool.h"
#include "http_response.h"
#include "request.h"
#include "tunnel.h"

#define STREAM_BUF_SIZE  16384
/*
 * Per sendfile call: then the connection yields, the others take their turn
 * and the client reads meanwhile.  The size decides on which CPU the kernel
 * transmits: what does not leave during our call leaves from the client's
 * acknowledgements and, under BBR, from pacing timers on the client's CPU.
 * Measured on ka-1m (two runs of 5 interleaved rounds): 1 MiB against 256 KiB,
 * 1.05-1.06x req/s and 0.87-0.88x our CPU; 2 MiB, and 64 KiB, worse on one axis.
 */
#define SENDFILE_MAX     (1 << 20)

enum step { STEP_AGAIN, STEP_CONTINUE, STEP_CLOSED };

static enum step read_head(struct conn *c);
static enum step read_body(struct conn *c);
static enum step write_response(struct conn *c);

void http1_run(struct conn *c)
{
	enum step s = STEP_CONTINUE;

	while (s == STEP_CONTINUE) {
		switch (c->state) {
		case CONN_READ_HEAD: s = read_head(c); break;
		case CONN_READ_BODY: s = read_body(c); break;
		case CONN_HANDLER:   s = STEP_AGAIN; break;
		case CONN_PROXY:     s = STEP_AGAIN; break;   /* conn_proxy.c hands over when done */
		case CONN_WRITE:     s = write_response(c); break;
		case CONN_LINGER:    s = conn_linger(c) < 0 ? STEP_CLOSED : STEP_AGAIN; break;
		case CONN_TUNNEL:    s = tunnel_run(c) < 0 ? STEP_CLOSED : STEP_AGAIN; break;
		}
	}
}

void http1_error(struct conn *c, int status, bool close)
{
	if (close)
		c->keep_alive = false;
	if (c->req == NULL && request_create(c) == NULL) {
		httpd_log(HTTPD_LOG_ERR, "%s: out of memory answering %d", c->peer, status);
		conn_close(c);
		return;
	}
	request_fail(c->req, status);
}

void http1_wait_handler(struct conn *c)
{
	c->state = CONN_HANDLER;
	timer_arm(c->w->timers, TIMER_HANDLER, &c->timer, c->w->now_ms);
}

static bool has_body(const struct request *r)
{
	return r->head.chunked || r->head.content_length > 0;
}

/* After the checks: 100 Continue if asked for, then the body phase. */
static enum step body_begin(struct conn *c, struct request *r)
{
	int rc = body_start(r);

	if (rc != 0) {
		c->linger = true;
		http1_error(c, rc, true);
		return STEP_CONTINUE;
	}
	/* RFC 9110 §10.1.1: ask for the body only now that every check has let it through. */
	if (r->head.expect_continue && c->in_len == c->in_off) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (!conn_send_now(c, cont, sizeof(cont) - 1)) {
			conn_close(c);
			return STEP_CLOSED;
		}
	}
	c->state = CONN_READ_BODY;
	timer_arm(c->w->timers, TIMER_BODY, &c->timer, c->w->now_ms);
	return STEP_CONTINUE;
}

/* After the core's gates: the check modules, then the body phase or the handler. */
static enum step gates_passed(struct conn *c, struct request *r, int rc)
{
	if (rc == 0)
		rc = request_check(r);
	if (rc == HTTPD_DECLINED)
		return has_body(r) ? body_begin(c, r) : (request_handle(r), STEP_CONTINUE);
	/* Answered or refused before the body: it stays unread, so the connection closes after. */
	if (has_body(r))
		c->keep_alive = false, c->linger = true;
	if (rc == HTTPD_OK)
		request_respond(r);
	else
		http1_error(c, rc, rc == 400);
	return STEP_CONTINUE;
}

static enum step head_complete(struct conn *c, size_t head_start, size_t head_len)
{
	const struct httpd_config *cfg = c->w->config;
	struct request *r = c->req != NULL ? c->req : request_create(c);
	size_t lines = 0;
	struct httpd_header *headers;
	char *head;
	int rc;

	if (r == NULL) {
		conn_close(c);
		return STEP_CLOSED;
	}
	/* A private copy: the input buffer can then move and grow while the request is served. */
	head = pool_strndup(r->pool, c->in + c->in_off + head_start, head_len - 2);
	r->head_bytes = head_start + head_len;
	c->in_off += head_start + head_len;
	c->scan = 0;
	for (const char *p = head, *end = head + head_len - 2;
	     head != NULL && (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		lines++;
	if (lines > cfg->limits.max_headers)
		lines = cfg->limits.max_headers;
	headers = pool_alloc(r->pool, (lines + 1) * sizeof(*headers));
	if (head == NULL || headers == NULL) {
		http1_error(c, 500, true);
		return STEP_CONTINUE;
	}
	rc = http_head_parse(head, head_len - 2, &cfg->limits, headers, &r->head);
	if (rc != 0) {
		r->head.keep_alive = false;
		c->linger = true;
		http1_error(c, rc, true);
		return STEP_CONTINUE;
	}
	c->keep_alive = r->head.keep_alive && !c->w->quitting && c->requests + 1 < cfg->keepalive_requests;
	rc = request_begin(r);
	if (rc == REQUEST_ANSWERED)
		return STEP_CONTINUE;
	if (rc == 0)
		rc = request_gate(r);
	if (rc == REQUEST_WAIT) {
		http1_wait_handler(c);   /* nothing more is read until the gate decides */
		return STEP_CONTINUE;
	}
	return gates_passed(c, r, rc);
}

void http1_gate_done(struct request *r, int rc)
{
	struct conn *c = r->conn;

	timer_disarm(&c->timer);
	if (gates_passed(c, r, rc) != STEP_CLOSED)
		worker_defer(c->w, c);
}

static enum step read_head(struct conn *c)
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
				return head_complete(c, head_start, head_len);
			if (rc != HTTP_PARSE_AGAIN) {
				c->linger = true;
				http1_error(c, rc, true);
				return STEP_CONTINUE;
			}
		}
		switch (conn_fill(c)) {
		case 1:  continue;
		case 0:  return STEP_AGAIN;
		default: return STEP_CLOSED;
		}
	}
}

/* A held body goes to the handler's body hook, as fast as the hook takes it. */
static enum step body_replay_step(struct conn *c, struct request *r)
{
	int rc = body_replay(r);

	if (rc == BODY_AGAIN)
		return STEP_AGAIN;   /* httpd_request_body_resume runs us again */
	timer_disarm(&c->timer);
	if (rc != 0) {
		http1_error(c, rc, false);
		return STEP_CONTINUE;
	}
	request_handle(r);
	return STEP_CONTINUE;
}

static enum step body_finished(struct conn *c, struct request *r)
{
	int rc;

	timer_disarm(&c->timer);
	rc = body_end(r);
	if (rc != 0) {
		http1_error(c, rc, false);
		return STEP_CONTINUE;
	}
	if (r->body.replaying)
		return body_replay_step(c, r);
	request_handle(r);
	return STEP_CONTINUE;
}

static enum step body_failed(struct conn *c, int status)
{
	c->linger = true;
	http1_error(c, status, true);
	return STEP_CONTINUE;
}

/* Decodes and delivers what the input buffer holds; STEP_AGAIN when it needs more. */
static enum step body_consume(struct conn *c, struct request *r)
{
	struct request_body *b = &r->body;

	while (c->in_len > c->in_off && !b->paused) {
		if (b->chunked) {
			size_t consumed = 0, produced = 0;
			int rc = http_chunked_decode(&b->chunked_state, c->in + c->in_off, c->in_len - c->in_off,
			                             &consumed, b->scratch, BODY_SCRATCH_SIZE, &produced,
			                             r->loc->max_body_size);
			int brc;

			c->in_off += consumed;
			brc = body_data(r, b->scratch, produced);
			if (brc != 0)
				return body_failed(c, brc);
			if (rc == HTTP_CHUNKED_DONE)
				return body_finished(c, r);
			if (rc != HTTP_PARSE_AGAIN)
				return body_failed(c, rc);
		} else {
			size_t take = c->in_len - c->in_off;
			int rc;

			if (take > b->expected - b->received)
				take = (size_t)(b->expected - b->received);
			rc = body_data(r, c->in + c->in_off, take);
			c->in_off += take;
			if (rc != 0)
				return body_failed(c, rc);
			if (b->received == b->expected)
				return body_finished(c, r);
		}
	}
	if (!b->chunked && b->received == b->expected)
		return body_finished(c, r);
	return STEP_AGAIN;
}

/*
 * A body streams through the input buffer.  Once a read fills it (more is
 * waiting), the rest is read in BODY_READ_TURN turns: through the 4 KiB
 * buffer heads need, a 1 GiB upload cost 262,144 reads and as many module
 * writes.  Whenever the socket runs dry with everything delivered, the
 * buffer goes back to the worker: a client that sends a burst and then
 * stalls holds none.  Out of memory, the small buffer still works.
 */
static void body_turns_check(struct conn *c, struct request *r)
{
	struct request_body *b = &r->body;
	uint64_t left = b->chunked ? UINT64_MAX : b->expected - b->received;

	if (!b->turns && c->in_len == c->in_cap && left > c->in_len - c->in_off)
		b->turns = conn_in_reserve(c, BODY_READ_TURN);
}

static enum step read_body(struct conn *c)
{
	struct request *r = c->req;

	if (r->body.replaying)
		return body_replay_step(c, r);
	for (;;) {
		enum step s = body_consume(c, r);

		if (s != STEP_AGAIN)
			return s;
		if (r->body.paused)
			return STEP_AGAIN;   /* httpd_request_body_resume runs us again */
		if (r->body.turns && c->in == NULL)
			(void)conn_in_reserve(c, BODY_READ_TURN);
		switch (conn_fill(c)) {
		case 1:
			timer_arm(c->w->timers, TIMER_BODY, &c->timer, c->w->now_ms);
			body_turns_check(c, r);
			continue;
		case 0:
			conn_in_release(c);
			return STEP_AGAIN;
		default:
			return STEP_CLOSED;
		}
	}
}

void http1_respond(struct request *r)
{
	struct conn *c = r->conn;
	const struct httpd_config *cfg = c->w->config;
	struct httpd_response *res = &r->res;
	struct response_head_opts opts = {
		.version = r->head.version ? r->head.version : 11,
		.keep_alive = c->keep_alive && !c->w->quitting,
		.head_only = r->head.method == HTTPD_METHOD_HEAD,
		.server_tokens = cfg->server_tokens,
		.now = c->w->now,
		.allow = r->allow,
	};
	size_t len;
	bool chunked;
	char *head;

	/* hsts: on TLS responses only (RFC 6797 §7.2: ignored, and misleading, over plain HTTP). */
	if (r->server != NULL && r->server->hsts > 0 && c->transport != &transport_tcp)
		(void)response_header_push(res, "Strict-Transport-Security", r->server->hsts_header);
	head = response_head_build(res, &opts, &len, &chunked);

	if (head == NULL) {
		httpd_log(HTTPD_LOG_ERR, "%s: cannot build response head", c->peer);
		conn_close(c);
		return;
	}
	c->keep_alive = opts.keep_alive;
	c->iov[0].iov_base = head;
	c->iov[0].iov_len = len;
	c->iov_cnt = 1;
	c->iov_idx = 0;
	c->chunked_out = chunked;
	c->stream_active = false;
	c->stream_waiting = false;
	c->stream_buf = NULL;
	c->file_left = 0;
	switch (res->body) {
	case BODY_BUFFER:
		if (res->buf_len > 0) {
			c->iov[1].iov_base = (void *)res->buf;
			c->iov[1].iov_len = res->buf_len;
			c->iov_cnt = 2;
		}
		break;
	case BODY_FILE:
		if (res->file_len > 0 && res->file_len <= RESPONSE_SMALL_FILE) {
			char *buf = pool_alloc(r->pool, (size_t)res->file_len);
			ssize_t n = buf ? pread(res->fd, buf, (size_t)res->file_len, res->file_offset) : -1;

			if (n == (ssize_t)res->file_len) {
				httpd_response_set_body_buffer(res, buf, (size_t)n);   /* closes the fd */
				c->iov[1].iov_base = buf;
				c->iov[1].iov_len = (size_t)n;
				c->iov_cnt = 2;
				break;
			}
			/* A short read means the file changed: sendfile will notice and close. */
		}
		c->file_off = res->file_offset;
		c->file_left = res->file_len;
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
static bool stream_refill(struct conn *c, struct request *r)
{
	ssize_t n;

	if (c->stream_buf == NULL) {
		c->stream_buf = pool_alloc(r->pool, STREAM_BUF_SIZE + 2);
		if (c->stream_buf == NULL)
			return false;
	}
	n = r->res.stream(r->res.stream_ctx, c->stream_buf, STREAM_BUF_SIZE);
	if (n == HTTPD_STREAM_AGAIN) {
		/* The module's source has nothing yet: it times that itself, and wakes us. */
		c->stream_waiting = true;
		timer_disarm(&c->timer);
		return true;
	}
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
	r->res.body_sent += (uint64_t)n;
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

static enum step response_done(struct conn *c)
{
	struct request *r = c->req;
	bool keep = c->keep_alive && !c->w->quitting;

	if (r->res.status == 101 && r->res.tunnel_fd >= 0) {
		if (tunnel_start(c, r) < 0) {
			httpd_log_request(HTTPD_LOG_ERR, &r->req, "cannot start the tunnel: out of memory");
			conn_close(c);
			return STEP_CLOSED;
		}
		return STEP_CONTINUE;
	}

	if (r->res.body == BODY_BUFFER)
		r->res.body_sent = r->res.buf_len;
	else if (r->res.body == BODY_FILE)
		r->res.body_sent = (uint64_t)(r->res.file_len - c->file_left);
	request_done(r);
	c->requests++;
	c->stream_buf = NULL;
	c->got_bytes = false;
	if (!keep) {
		if (c->linger || c->in_len > c->in_off) {
			/* Close only after the client has read: a close with unread input sends RST. */
			if (c->transport->shutdown(c) < 0) {
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
	c->linger = false;
	c->state = CONN_READ_HEAD;
	if (c->in_len == c->in_off) {
		conn_idle(c);
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

/* After a failed write: STEP_CONTINUE to retry (EINTR), STEP_AGAIN to wait for the socket, or STEP_CLOSED. */
static enum step write_error(struct conn *c, const char *what)
{
	if (errno == EINTR)
		return STEP_CONTINUE;
	if (errno == EAGAIN) {
		conn_wait_writable(c);
		return STEP_AGAIN;
	}
	return write_failed(c, what);
}

static enum step write_response(struct conn *c)
{
	struct request *r = c->req;

	for (;;) {
		if (c->iov_cnt > 0) {
			/*
			 * Corked while a file follows, and when these are the last bytes
			 * before a close: the FIN that close() or shutdown() sends then
			 * leaves in the same segment, one packet for the client instead
			 * of two.  Not for streams: one that waits would leave the last
			 * piece corked.
			 */
			bool more = c->file_left > 0 ||
			            (!c->keep_alive && !c->stream_active && r->res.status != 101);
			ssize_t n;

			if (!c->writable)
				return STEP_AGAIN;
			n = c->transport->writev(c, c->iov + c->iov_idx, c->iov_cnt - c->iov_idx, more);
			if (n < 0) {
				enum step s = write_error(c, "send");

				if (s == STEP_CONTINUE)
					continue;
				return s;
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
			n = c->transport->sendfile(c, r->res.fd, &c->file_off, want,
			                           !c->keep_alive && (off_t)want == c->file_left);
			if (n < 0) {
				enum step s = write_error(c, "sendfile");

				if (s == STEP_CONTINUE)
					continue;
				return s;
			}
			if (n == 0) {
				/* The file shrank under us: the promised length cannot be kept. */
				httpd_log_request(HTTPD_LOG_ERR, &r->req, "the file was truncated while being sent");
				conn_close(c);
				return STEP_CLOSED;
			}
			c->file_left -= n;
			timer_arm(c->w->timers, TIMER_SEND, &c->timer, c->w->now_ms);
			if ((size_t)n == SENDFILE_MAX && c->file_left > 0) {
				/*
				 * Its share for this round: the other connections take theirs,
				 * and the client reads meanwhile (as lighttpd paces; measured
				 * on ka-1m, where sending a whole 1 MiB at once left the
				 * transmission to the client's acknowledgements).
				 */
				worker_yield(c->w, c);
				return STEP_AGAIN;
			}
			continue;
		}
		if (c->stream_active) {
			if (c->stream_waiting)
				return STEP_AGAIN;
			if (!stream_refill(c, r)) {
				httpd_log_request(HTTPD_LOG_ERR, &r->req, "the module's streamed body failed");
				conn_close(c);
				return STEP_CLOSED;
			}
			continue;
		}
		return response_done(c);
	}
}
