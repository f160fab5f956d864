#include "http1.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "body_filter.h"
#include "conn.h"
#include "http_conn.h"
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

static const struct request_output http1_output;

static enum step read_head(struct conn *c);
static enum step read_body(struct conn *c);
static enum step write_response(struct conn *c);

static void http1_run(struct conn *c)
{
	struct http1 *h = http1_of(c);
	enum step s = STEP_CONTINUE;

	/* Nobody is left to answer: cancel the pending handler (it gets its cancel call), or the stream. */
	if (c->peer_closed && (h->state == H1_HANDLER || (h->state == H1_WRITE && h->stream_waiting))) {
		conn_close(c);
		return;
	}
	while (s == STEP_CONTINUE) {
		if (c->lingering) {
			conn_resume(c);   /* the connection drains the input itself now */
			return;
		}
		switch (h->state) {
		case H1_READ_HEAD: s = read_head(c); break;
		case H1_READ_BODY: s = read_body(c); break;
		case H1_HANDLER:   s = STEP_AGAIN; break;
		case H1_WRITE:     s = write_response(c); break;
		case H1_TUNNEL:    s = tunnel_run(c) < 0 ? STEP_CLOSED : STEP_AGAIN; break;
		}
	}
}

void http1_start(struct conn *c)
{
	struct http1 *h = http1_of(c);

	memset(h, 0, sizeof(*h));
	c->proto = &http1_protocol;
	h->state = H1_READ_HEAD;
	timer_arm(c->w->timers, TIMER_HEADER, &c->timer, c->w->now_ms);
	http1_run(c);
}

/* A request object for c, answered by HTTP/1; NULL out of memory. */
static struct request *http1_request(struct conn *c)
{
	struct http1 *h = http1_of(c);

	if (h->req == NULL && (h->req = request_create(c, &http1_output)) != NULL)
		h->req->conn_seq = h->requests + 1;
	return h->req;
}

/* A core error response on c (making a request object if there is none); close forces Connection: close. */
static void http1_error(struct conn *c, int status, bool close)
{
	struct http1 *h = http1_of(c);

	if (close)
		h->keep_alive = false;
	if (http1_request(c) == NULL) {
		httpd_log(HTTPD_LOG_ERR, "%s: out of memory answering %d", c->peer, status);
		conn_close(c);
		return;
	}
	request_fail(h->req, status);
}

static void http1_wait(struct request *r)
{
	struct conn *c = r->conn;

	http1_of(c)->state = H1_HANDLER;
	timer_arm(c->w->timers, TIMER_HANDLER, &c->timer, c->w->now_ms);
}

static bool has_body(const struct request *r)
{
	return r->head.chunked || r->head.content_length > 0;
}

/* After the checks: 100 Continue if asked for, then the body phase. */
static enum step body_begin(struct conn *c, struct request *r)
{
	struct http1 *h = http1_of(c);
	int rc = body_start(r);

	if (rc != 0) {
		h->linger = true;
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
	h->state = H1_READ_BODY;
	timer_arm(c->w->timers, TIMER_BODY, &c->timer, c->w->now_ms);
	return STEP_CONTINUE;
}

/* After the check modules: the body phase or the handler, or their answer. */
static enum step checks_passed(struct conn *c, struct request *r, int rc)
{
	struct http1 *h = http1_of(c);

	if (rc == HTTPD_DECLINED)
		return has_body(r) ? body_begin(c, r) : (request_handle(r), STEP_CONTINUE);
	/* Answered or refused before the body: it stays unread, so the connection closes after. */
	if (has_body(r))
		h->keep_alive = false, h->linger = true;
	if (rc == HTTPD_OK)
		request_respond(r);
	else
		http1_error(c, rc, rc == 400);
	return STEP_CONTINUE;
}

/* After the core's gates: the check modules (one may wait: nothing more is read meanwhile). */
static enum step gates_passed(struct conn *c, struct request *r, int rc)
{
	if (rc == 0)
		rc = request_check(r);
	if (rc == REQUEST_WAIT) {
		http1_wait(r);
		return STEP_CONTINUE;
	}
	return checks_passed(c, r, rc);
}

static void http1_checks_done(struct request *r, int rc)
{
	struct conn *c = r->conn;

	timer_disarm(&c->timer);
	if (checks_passed(c, r, rc) != STEP_CLOSED)
		worker_defer(c->w, c);
}

static enum step head_complete(struct conn *c, size_t head_start, size_t head_len)
{
	const struct httpd_config *cfg = c->w->config;
	struct http1 *h = http1_of(c);
	struct request *r = http1_request(c);
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
	h->scan = 0;
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
		h->linger = true;
		http1_error(c, rc, true);
		return STEP_CONTINUE;
	}
	h->keep_alive = r->head.keep_alive && !c->w->quitting && h->requests + 1 < cfg->keepalive_requests;
	rc = request_begin(r);
	if (rc == REQUEST_ANSWERED)
		return STEP_CONTINUE;
	if (rc == 0)
		rc = request_gate(r);
	if (rc == REQUEST_WAIT) {
		http1_wait(r);   /* nothing more is read until the gate decides */
		return STEP_CONTINUE;
	}
	return gates_passed(c, r, rc);
}

static void http1_gate_done(struct request *r, int rc)
{
	struct conn *c = r->conn;

	timer_disarm(&c->timer);
	if (gates_passed(c, r, rc) != STEP_CLOSED)
		worker_defer(c->w, c);
}

static enum step read_head(struct conn *c)
{
	struct http1 *h = http1_of(c);
	const struct httpd_config *cfg = c->w->config;

	for (;;) {
		if (c->in_len > c->in_off) {
			size_t head_start, head_len;
			int rc;

			if (!h->got_bytes) {
				h->got_bytes = true;
				if (c->timer.list != TIMER_HEADER)
					timer_arm(c->w->timers, TIMER_HEADER, &c->timer, c->w->now_ms);
			}
			rc = http_head_find(c->in + c->in_off, c->in_len - c->in_off, &h->scan, &cfg->limits,
			                    &head_start, &head_len);
			if (rc == 0)
				return head_complete(c, head_start, head_len);
			if (rc != HTTP_PARSE_AGAIN) {
				h->linger = true;
				http1_error(c, rc, true);
				return STEP_CONTINUE;
			}
		}
		switch (conn_fill(c)) {
		case 1:
			continue;
		case 0:
			/* Nothing came: a connection waiting for its request holds no buffer (as nginx does). */
			if (!c->readable && c->in_len == c->in_off && h->req == NULL)
				conn_idle(c);
			return STEP_AGAIN;
		default:
			return STEP_CLOSED;
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

/* The body's checks passed (rc 0) or refused it. */
static enum step body_checked(struct conn *c, struct request *r, int rc)
{
	if (rc != 0) {
		http1_error(c, rc, false);
		return STEP_CONTINUE;
	}
	if (r->body.replaying)
		return body_replay_step(c, r);
	request_handle(r);
	return STEP_CONTINUE;
}

static enum step body_finished(struct conn *c, struct request *r)
{
	int rc;

	timer_disarm(&c->timer);
	rc = request_body_end(r);
	if (rc == BODY_WAIT) {
		http1_wait(r);   /* a body check decides later */
		return STEP_CONTINUE;
	}
	return body_checked(c, r, rc);
}

static void http1_body_checked(struct request *r, int rc)
{
	struct conn *c = r->conn;

	timer_disarm(&c->timer);
	if (body_checked(c, r, rc) != STEP_CLOSED)
		worker_defer(c->w, c);
}

static enum step body_failed(struct conn *c, int status)
{
	struct http1 *h = http1_of(c);
	h->linger = true;
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
			int rc = httpd_chunked_decode(&b->chunked_state, c->in + c->in_off, c->in_len - c->in_off,
			                             &consumed, b->scratch, BODY_SCRATCH_SIZE, &produced,
			                             r->loc->max_body_size);
			int brc;

			c->in_off += consumed;
			brc = body_data(r, b->scratch, produced);
			if (brc != 0)
				return body_failed(c, brc);
			if (rc == HTTPD_CHUNKED_DONE)
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
	struct http1 *h = http1_of(c);
	struct request *r = h->req;

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

static void http1_respond(struct request *r)
{
	struct conn *c = r->conn;
	struct http1 *h = http1_of(c);
	const struct httpd_config *cfg = c->w->config;
	struct httpd_response *res = &r->res;
	struct response_head_opts opts = {
		.version = r->head.version ? r->head.version : 11,
		.keep_alive = h->keep_alive && !c->w->quitting,
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
	h->keep_alive = opts.keep_alive;
	h->iov[0].iov_base = head;
	h->iov[0].iov_len = len;
	h->iov_cnt = 1;
	h->iov_idx = 0;
	h->chunked_out = chunked;
	h->stream_active = false;
	h->stream_waiting = false;
	h->stream_buf = NULL;
	h->file_left = 0;
	h->crlf_owed = false;
	switch (res->body) {
	case BODY_BUFFER:
		if (res->buf_len > 0) {
			h->iov[1].iov_base = (void *)res->buf;
			h->iov[1].iov_len = res->buf_len;
			h->iov_cnt = 2;
		}
		break;
	case BODY_FILE:
		if (res->file_len > 0 && res->file_len <= RESPONSE_SMALL_FILE) {
			char *buf = pool_alloc(r->pool, (size_t)res->file_len);
			ssize_t n = buf ? pread(res->fd, buf, (size_t)res->file_len, res->file_offset) : -1;

			if (n == (ssize_t)res->file_len) {
				httpd_response_set_body_buffer(res, buf, (size_t)n);   /* an owned fd closes with the pool */
				h->iov[1].iov_base = buf;
				h->iov[1].iov_len = (size_t)n;
				h->iov_cnt = 2;
				break;
			}
			/* A short read means the file changed: sendfile will notice and close. */
		}
		h->file_fd = res->fd;
		h->file_off = res->file_offset;
		h->file_left = res->file_len;
		break;
	case BODY_STREAM:
		h->stream_active = true;
		break;
	case BODY_NONE:
		break;
	}
	h->state = H1_WRITE;
	timer_arm(c->w->timers, TIMER_SEND, &c->timer, c->w->now_ms);
}

/*
 * The next piece of a filtered body: memory goes out from where the filter
 * left it, a file range by sendfile, each a chunk of its own on HTTP/1.1.
 */
static bool chain_refill(struct conn *c, struct request *r)
{
	struct http1 *h = http1_of(c);
	struct httpd_chunk chunk;
	const char *crlf = h->crlf_owed ? "\r\n" : "";
	int rc = body_chain_pull(&r->res, &chunk, SENDFILE_MAX);

	if (rc == HTTPD_STREAM_AGAIN) {
		h->stream_waiting = true;
		timer_disarm(&c->timer);
		return true;
	}
	if (rc < 0)
		return false;
	h->iov_idx = 0;
	h->iov_cnt = 0;
	h->crlf_owed = false;
	if (rc == 0) {
		h->stream_active = false;
		if (h->chunked_out) {
			h->iov[0].iov_base = h->chunk_head;
			h->iov[0].iov_len = (size_t)snprintf(h->chunk_head, sizeof(h->chunk_head), "%s0\r\n\r\n", crlf);
			h->iov_cnt = 1;
		}
		return true;
	}
	r->res.body_sent += chunk.len;
	if (h->chunked_out) {
		h->iov[0].iov_base = h->chunk_head;
		h->iov[0].iov_len = (size_t)snprintf(h->chunk_head, sizeof(h->chunk_head), "%s%zx\r\n", crlf, chunk.len);
		h->iov_cnt = 1;
	}
	if (chunk.data == NULL) {
		h->file_fd = chunk.fd;
		h->file_off = chunk.offset;
		h->file_left = (off_t)chunk.len;
		h->crlf_owed = h->chunked_out;
		return true;
	}
	h->iov[h->iov_cnt].iov_base = (void *)(uintptr_t)chunk.data;
	h->iov[h->iov_cnt++].iov_len = chunk.len;
	if (h->chunked_out) {
		h->iov[h->iov_cnt].iov_base = (void *)"\r\n";
		h->iov[h->iov_cnt++].iov_len = 2;
	}
	return true;
}

/* Frames the next piece of a streamed body into iov; false on a module error. */
static bool stream_refill(struct conn *c, struct request *r)
{
	struct http1 *h = http1_of(c);
	ssize_t n;

	if (r->res.chain != NULL)
		return chain_refill(c, r);

	if (h->stream_buf == NULL) {
		h->stream_buf = pool_alloc(r->pool, STREAM_BUF_SIZE + 2);
		if (h->stream_buf == NULL)
			return false;
	}
	n = r->res.stream(r->res.stream_ctx, h->stream_buf, STREAM_BUF_SIZE);
	if (n == HTTPD_STREAM_AGAIN) {
		/* The module's source has nothing yet: it times that itself, and wakes us. */
		h->stream_waiting = true;
		timer_disarm(&c->timer);
		return true;
	}
	if (n < 0 || n > STREAM_BUF_SIZE)
		return false;
	h->iov_idx = 0;
	if (n == 0) {
		h->stream_active = false;
		if (!h->chunked_out)
			return true;
		h->iov[0].iov_base = (void *)"0\r\n\r\n";
		h->iov[0].iov_len = 5;
		h->iov_cnt = 1;
		return true;
	}
	r->res.body_sent += (uint64_t)n;
	if (!h->chunked_out) {
		h->iov[0].iov_base = h->stream_buf;
		h->iov[0].iov_len = (size_t)n;
		h->iov_cnt = 1;
		return true;
	}
	h->iov[0].iov_base = h->chunk_head;
	h->iov[0].iov_len = (size_t)snprintf(h->chunk_head, sizeof(h->chunk_head), "%zx\r\n", (size_t)n);
	h->iov[1].iov_base = h->stream_buf;
	h->iov[1].iov_len = (size_t)n;
	h->iov[2].iov_base = (void *)"\r\n";
	h->iov[2].iov_len = 2;
	h->iov_cnt = 3;
	return true;
}

static void iov_advance(struct conn *c, size_t n)
{
	struct http1 *h = http1_of(c);
	while (n > 0 && h->iov_idx < h->iov_cnt) {
		struct iovec *v = &h->iov[h->iov_idx];

		if (n >= v->iov_len) {
			n -= v->iov_len;
			h->iov_idx++;
		} else {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			n = 0;
		}
	}
	if (h->iov_idx >= h->iov_cnt)
		h->iov_cnt = h->iov_idx = 0;
}

static enum step response_done(struct conn *c)
{
	struct http1 *h = http1_of(c);
	struct request *r = h->req;
	bool keep = h->keep_alive && !c->w->quitting;

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
		r->res.body_sent = (uint64_t)(r->res.file_len - h->file_left);
	request_done(r);
	h->req = NULL;
	h->requests++;
	h->stream_buf = NULL;
	h->got_bytes = false;
	if (!keep) {
		if (h->linger || c->in_len > c->in_off) {
			/* Close only after the client has read: a close with unread input sends RST. */
			return conn_linger_begin(c, true) < 0 ? STEP_CLOSED : STEP_CONTINUE;
		}
		conn_close(c);
		return STEP_CLOSED;
	}
	h->linger = false;
	h->state = H1_READ_HEAD;
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
	struct http1 *h = http1_of(c);
	struct request *r = h->req;

	for (;;) {
		if (h->iov_cnt > 0) {
			/*
			 * Corked while a file follows, and when these are the last bytes
			 * before a close: the FIN that close() or shutdown() sends then
			 * leaves in the same segment, one packet for the client instead
			 * of two.  Not for streams: one that waits would leave the last
			 * piece corked.
			 */
			bool more = h->file_left > 0 ||
			            (!h->keep_alive && !h->stream_active && r->res.status != 101);
			ssize_t n;

			if (!c->writable)
				return STEP_AGAIN;
			n = c->transport->writev(c, h->iov + h->iov_idx, h->iov_cnt - h->iov_idx, more);
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
		if (h->file_left > 0) {
			size_t want = h->file_left > SENDFILE_MAX ? SENDFILE_MAX : (size_t)h->file_left;
			ssize_t n;

			if (!c->writable)
				return STEP_AGAIN;
			n = c->transport->sendfile(c, h->file_fd, &h->file_off, want,
			                           !h->keep_alive && !h->stream_active && (off_t)want == h->file_left);
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
			h->file_left -= n;
			timer_arm(c->w->timers, TIMER_SEND, &c->timer, c->w->now_ms);
			if ((size_t)n == SENDFILE_MAX && h->file_left > 0) {
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
		if (h->stream_active) {
			if (h->stream_waiting)
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

/* RFC 9110 §15.5.9: a 408 tells a slow client why it was dropped; a 503 a handler that never answered. */
static void http1_timeout(struct conn *c, enum timer_kind kind)
{
	struct http1 *h = http1_of(c);
	char msg[128];
	int status = 0;

	switch (kind) {
	case TIMER_HEADER:
	case TIMER_BODY:
		if (h->got_bytes || kind == TIMER_BODY)
			status = 408;
		break;
	case TIMER_HANDLER:
		if (h->req != NULL)
			httpd_log_request(HTTPD_LOG_ERR, &h->req->req, "the handler did not answer within handler_timeout");
		status = 503;
		break;
	default:
		break;
	}
	if (status != 0) {
		int n = snprintf(msg, sizeof(msg),
		                 "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		                 status, http_status_reason(status));

		/* Best effort: the client is gone or stuck, and closing is all that is left. */
		if (n > 0)
			(void)conn_send_now(c, msg, (size_t)n);
	}
	conn_close(c);
}

/* A quiet kept-alive HTTP/1.1 connection has nothing in flight: closing it is the whole drain. */
static void http1_drain(struct conn *c)
{
	conn_close(c);
}

static void http1_abort(struct conn *c)
{
	struct http1 *h = http1_of(c);

	if (h->req != NULL)
		request_abort(h->req);
	h->req = NULL;
}

static void http1_send_body(struct request *r)
{
	struct conn *c = r->conn;
	struct http1 *h = http1_of(c);

	if (h->req != r || !h->stream_waiting)
		return;
	h->stream_waiting = false;
	timer_arm(c->w->timers, TIMER_SEND, &c->timer, c->w->now_ms);
	worker_defer(c->w, c);
}

/* respond ran outside http1_run: run again once the current event is handled. */
static void http1_finish(struct request *r)
{
	worker_defer(r->w, r->conn);
}

static void http1_body_pause(struct request *r)
{
	timer_disarm(&r->conn->timer);
}

static void http1_body_resume(struct request *r)
{
	struct conn *c = r->conn;
	struct http1 *h = http1_of(c);

	if (h->req != r || h->state != H1_READ_BODY)
		return;
	timer_arm(c->w->timers, TIMER_BODY, &c->timer, c->w->now_ms);
	worker_defer(c->w, c);
}

/* Unread, the body would be taken for the next request's head: close after answering. */
static void http1_body_unread(struct request *r)
{
	struct http1 *h = http1_of(r->conn);

	h->keep_alive = false;
	h->linger = true;
}

const struct conn_protocol http1_protocol = {
	.name    = "http/1.1",
	.run     = http1_run,
	.timeout = http1_timeout,
	.drain   = http1_drain,
	.abort   = http1_abort,
};

static const struct request_output http1_output = {
	.respond     = http1_respond,
	.send_body   = http1_send_body,
	.wait        = http1_wait,
	.finish      = http1_finish,
	.gate_done   = http1_gate_done,
	.checks_done = http1_checks_done,
	.body_checked = http1_body_checked,
	.body_pause  = http1_body_pause,
	.body_resume = http1_body_resume,
	.body_unread = http1_body_unread,
};
