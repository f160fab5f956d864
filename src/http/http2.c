#include "http2.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "body_filter.h"
#include "http2_mem.h"
#include "http_parse.h"
#include "http_response.h"
#include "log.h"
#include "pool.h"
#include "request.h"
#include "scoreboard.h"

/* Receive windows: a stream's bounds what one upload holds before its phase takes it, the connection's all of them. */
#define STREAM_WINDOW   (256 * 1024)
#define CONN_WINDOW     (1024 * 1024)
#define OUT_CHUNK       (64 * 1024)   /* frames gathered per write */
#define H2_BIG          16384         /* libnghttp2 blocks this large get pages of their own */
#define H2_BIG_MAX      4
/*
 * A connection quiet this long gives back its buffers.  Not at once: a
 * busy client goes quiet between every burst of streams, and handing the
 * pages back each time cost a tenth of the CPU (madvise and refaults).
 */
#define H2_RELEASE_MS   250
#define H2_SETTINGS_MAX 9             /* SETTINGS_NO_RFC7540_PRIORITIES, the highest identifier we keep */
/* Work a connection may cause beyond its requests (resets, pings, settings, empty frames) before it is cut off. */
#define GLITCH_BASE     100
#define GLITCHES_PER_REQUEST 2

struct h2_conn;
struct h2_tunnel;

/*
 * A DATA payload is never copied into libnghttp2's frame buffer (NO_COPY):
 * it goes from the response's memory or the file straight into the output
 * buffer beside the frame's header, or on plain TCP from the file to the
 * socket by sendfile.
 */
enum seg_kind { SEG_SENDFILE, SEG_PREAD, SEG_MEMORY };

struct h2_stream {
	struct h2_conn      *h2;
	int32_t              id;
	struct request      *r;
	struct h2_pseudo     ps;
	struct httpd_header *fields;
	size_t               count, cap;
	size_t               cookie;         /* 1 + the index of the first Cookie field; 0: none yet */
	size_t               field_bytes;    /* as SETTINGS_MAX_HEADER_LIST_SIZE counts them */
	bool                 too_large;      /* past max_head or max_headers: answered 431 */
	bool                 trailers;       /* the header block being read is the trailer section */
	bool                 in_ended;       /* the client's END_STREAM came */
	bool                 body_phase;     /* body_start ran: DATA goes to the body phase */
	bool                 body_done;      /* body_end ran */
	bool                 waiting;        /* a gate or the handler answers later */
	bool                 responded;
	bool                 out_done;       /* our END_STREAM went out */
	bool                 body_unread;    /* answered before the body: reset once the answer is out */
	bool                 stream_waiting; /* the module's stream said HTTPD_STREAM_AGAIN */
	bool                 head_queued;    /* our HEADERS wait in libnghttp2's queue, pointing into the pool */
	bool                 extended;       /* RFC 8441 extended CONNECT (:protocol websocket) */
	struct h2_tunnel    *tunnel;         /* after the module's 101: the stream relays its fd */
	char                *held;           /* DATA not yet taken (before the body phase, or paused) */
	size_t               held_len, held_cap;
	size_t               buf_off;        /* buffer body: bytes sent */
	off_t                file_done;      /* file body: bytes sent */
	/* The DATA frame made NO_COPY: where its payload comes from (enum seg_kind). */
	unsigned char        seg_kind;
	int                  seg_fd;
	off_t                seg_off;
	const char          *seg_mem;
	struct h2_stream    *prev, *next;
};

/*
 * A file body's DATA payload that goes to the socket with sendfile, after
 * the frames before it: the bytes never pass through user space.  Its
 * stream may be closed meanwhile (its END_STREAM counts as sent): then its
 * request is finished only once the payload is out, since the file is
 * the request's.
 */
struct h2_file_segment {
	struct request      *r;              /* NULL: none */
	int                  fd;
	off_t                off, left;
	bool                 closed;         /* the stream closed: finish the request after the payload */
	bool                 answered;       /* ... with request_done (else request_abort: it was reset) */
};

struct h2_conn {
	nghttp2_session     *s;
	struct conn         *c;
	char                *out;            /* frames nghttp2 made, not yet written */
	size_t               out_len, out_off, out_cap;
	struct h2_file_segment seg;          /* written after out */
	nghttp2_mem          mem;            /* libnghttp2's allocator, with this connection as its user data */
	struct h2_stream     streams;        /* sentinel of the open streams */
	struct h2_stream     zombies;        /* closed before their queued HEADERS went: freed once dropped */
	struct h2_stream    *reading;        /* the stream whose header block is being read (no lookup per field) */
	struct h2_stream    *last_found;     /* stream_of's last answer, while the stream is open */
	unsigned             open;
	unsigned             requests;
	unsigned             answered;       /* streams whose whole response went out */
	uint64_t             glitches;
	bool                 goaway;         /* a GOAWAY went or is queued: no new streams */
	bool                 closing;        /* done: the last frames go out, then a lingering close */
	bool                 busy;           /* a stream began since the idle timer was armed */
	bool                 idle;           /* quiet long enough: frame pages given back or session parked; cleared by a stream */
	uint64_t             quiet_ms;       /* when the connection last went quiet */
	struct deadline      release;        /* gives the buffers back once it has stayed quiet (H2_RELEASE_MS) */
	unsigned char        settings_unacked;  /* our SETTINGS frames the client has not acknowledged */
	bool                 table_reset;    /* SETTINGS asked the client to empty its HPACK table, to park */
	bool                 restoring;      /* h2_unpark feeds the new session what the old one knew */
	struct h2_parked {
		uint32_t settings[H2_SETTINGS_MAX + 1];   /* the client's, by identifier */
		int32_t  remote_window;    /* what the client's connection window lets us send */
		int32_t  last_stream;      /* the last stream the client opened */
	}                    parked;         /* with s NULL: what the session knew that the next one must */
	struct h2_big {
		void  *p;
		size_t len;
	}                    big[H2_BIG_MAX];  /* libnghttp2's frame buffers, in pages of their own */
	size_t               nbig;
};

static const struct request_output http2_output;
static bool tunnel_up_flush(struct h2_stream *st);

/* What HTTP/2 keeps in the connection's protocol data: the session lives apart (an idle HTTP/1 connection stays small). */
struct h2_slot {
	struct h2_conn *h2;
};

static struct h2_slot *slot_of(struct conn *c)
{
	return (struct h2_slot *)(void *)c->proto_data;
}

static struct h2_conn *h2_of(struct conn *c)
{
	return slot_of(c)->h2;
}

/* --- streams ------------------------------------------------------------ */

/* The stream with this id; the last one found is kept, since a frame's callbacks ask for it several times. */
static struct h2_stream *stream_of(struct h2_conn *h2, int32_t id)
{
	struct h2_stream *st;

	if (h2->last_found != NULL && h2->last_found->id == id)
		return h2->last_found;
	st = nghttp2_session_get_stream_user_data(h2->s, id);
	if (st != NULL)
		h2->last_found = st;
	return st;
}

static void stream_unlink(struct h2_stream *st)
{
	st->prev->next = st->next;
	st->next->prev = st->prev;
	st->h2->open--;
	if (st->h2->reading == st)
		st->h2->reading = NULL;
	if (st->h2->last_found == st)
		st->h2->last_found = NULL;
}

static void stream_reset(struct h2_stream *st, uint32_t code)
{
	(void)nghttp2_submit_rst_stream(st->h2->s, NGHTTP2_FLAG_NONE, st->id, code);
}

static bool request_has_body(const struct request *r)
{
	return r->head.chunked || r->head.content_length > 0;
}

static void stream_fail(struct h2_stream *st, int status)
{
	if (!st->in_ended)
		st->body_unread = true;
	request_fail(st->r, status);
}

/* A held body goes to the handler's body hook, as fast as the hook takes it. */
static void stream_replay(struct h2_stream *st)
{
	int rc = body_replay(st->r);

	if (rc == BODY_AGAIN)
		return;   /* body_resume runs us again */
	if (rc != 0)
		request_fail(st->r, rc);
	else
		request_handle(st->r);
}

/* The body's checks passed (rc 0) or refused it. */
static void stream_body_checked(struct h2_stream *st, int rc)
{
	if (rc != 0)
		request_fail(st->r, rc);
	else if (st->r->body.replaying)
		stream_replay(st);
	else
		request_handle(st->r);
}

static void stream_body_end(struct h2_stream *st)
{
	int rc;

	st->body_done = true;
	rc = request_body_end(st->r);
	if (rc == BODY_WAIT)
		st->waiting = true;   /* a body check decides later */
	else
		stream_body_checked(st, rc);
}

/* Hands one piece of DATA to the body phase; false once the request failed. */
static bool stream_body_piece(struct h2_stream *st, const char *data, size_t len)
{
	struct request *r = st->r;
	int rc;

	if (r->body.received + len > r->loc->max_body_size) {
		stream_fail(st, 413);
		return false;
	}
	rc = body_data(r, data, len);
	if (rc != 0) {
		stream_fail(st, rc);
		return false;
	}
	return true;
}

/* What the client sent goes on to the body phase, as far as it may now. */
static void stream_body_feed(struct h2_stream *st)
{
	struct request *r = st->r;

	if (!st->body_phase || st->responded || st->body_done)
		return;
	if (st->held_len > 0 && !r->body.paused) {
		size_t len = st->held_len;

		st->held_len = 0;
		(void)nghttp2_session_consume(st->h2->s, st->id, len);
		if (!stream_body_piece(st, st->held, len))
			return;
	}
	if (st->in_ended && st->held_len == 0 && !r->body.paused && !st->responded)
		stream_body_end(st);
}

/* RFC 9110 §10.1.1: the client that asked waits for this before its body; every check has let it through. */
static void stream_continue(struct h2_stream *st)
{
	static const nghttp2_nv interim[] = {
		{ (uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE },
	};

	if (nghttp2_submit_headers(st->h2->s, NGHTTP2_FLAG_NONE, st->id, NULL, interim, 1, NULL) < 0)
		httpd_log_request(HTTPD_LOG_INFO, &st->r->req, "cannot send 100 Continue over HTTP/2");
}

static void stream_body_begin(struct h2_stream *st)
{
	struct request *r = st->r;
	int rc = body_start(r);

	if (rc != 0) {
		stream_fail(st, rc);
		return;
	}
	st->body_phase = true;
	if (r->head.expect_continue && !st->in_ended && st->held_len == 0 && r->body.received == 0)
		stream_continue(st);
	stream_body_feed(st);
}

/* After the check modules: the body phase or the handler, or their answer. */
static void stream_checks_passed(struct h2_stream *st, int rc)
{
	struct request *r = st->r;

	if (rc == HTTPD_DECLINED) {
		if (request_has_body(r))
			stream_body_begin(st);
		else
			request_handle(st->r);
		return;
	}
	if (request_has_body(r) && !st->in_ended)
		st->body_unread = true;
	if (rc == HTTPD_OK)
		request_respond(r);
	else
		request_fail(r, rc);
}

/* After the core's gates: the check modules (one may wait). */
static void stream_gates_passed(struct h2_stream *st, int rc)
{
	if (rc == 0)
		rc = request_check(st->r);
	if (rc == REQUEST_WAIT)
		st->waiting = true;
	else
		stream_checks_passed(st, rc);
}

/*
 * RFC 8441: a WebSocket over a stream arrives as CONNECT with :protocol.
 * Modules see the HTTP/1.1 handshake they know (GET, Upgrade: websocket,
 * Connection: upgrade and a Sec-WebSocket-Key, which HTTP/2 has none of),
 * so the proxy takes it to an HTTP/1.1 WebSocket backend unchanged; its
 * 101 becomes our 200 and the stream relays the upgraded connection.
 */
static int extended_connect(struct h2_stream *st)
{
	struct request *r = st->r;
	struct http_head *h = &r->head;
	struct httpd_header *fields;
	unsigned char nonce[16];
	char *key;

	if (strcmp(st->ps.protocol, "websocket") != 0)
		return 501;
	fields = pool_alloc(r->pool, (st->count + 3) * sizeof(*fields));
	key = pool_alloc(r->pool, 25);
	if (fields == NULL || key == NULL || getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
		return 500;
	EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
	if (st->count > 0)
		memcpy(fields, st->fields, st->count * sizeof(*fields));
	fields[st->count] = (struct httpd_header){ "upgrade", "websocket", 7, 9 };
	fields[st->count + 1] = (struct httpd_header){ "connection", "upgrade", 10, 7 };
	fields[st->count + 2] = (struct httpd_header){ "sec-websocket-key", key, 17, 24 };
	h->headers = fields;
	h->header_count = st->count + 3;
	h->method = HTTPD_METHOD_GET;
	h->method_name = "GET";
	h->method_len = 3;
	h->chunked = false;   /* what follows is the tunnel's, not a body */
	h->content_length = -1;
	st->extended = true;
	return 0;
}

/* The whole request header block is in: the request phases begin. */
static void stream_head(struct h2_stream *st, bool end_stream)
{
	struct request *r = st->r;
	int rc;

	if (st->too_large) {
		stream_fail(st, 431);
		return;
	}
	rc = http_head_from_h2(&st->ps, st->fields, st->count, end_stream, &r->head);
	if (rc == 0 && st->ps.protocol != NULL)
		rc = extended_connect(st);
	if (rc != 0) {
		stream_fail(st, rc);
		return;
	}
	r->head_bytes = st->field_bytes;
	rc = request_begin(r);
	if (rc == REQUEST_ANSWERED)
		return;
	if (rc == 0)
		rc = request_gate(r);
	if (rc == REQUEST_WAIT) {
		st->waiting = true;
		return;
	}
	stream_gates_passed(st, rc);
}

/* --- libnghttp2 callbacks ------------------------------------------------ */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
	struct h2_conn *h2 = user;
	struct h2_stream *st;
	struct request *r;

	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (h2->restoring) {
		h2->reading = NULL;   /* h2_unpark's stand-in for the streams before: no request */
		return 0;
	}
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
		st = stream_of(h2, frame->hd.stream_id);
		if (st != NULL)
			st->trailers = true;
		h2->reading = st;
		return 0;
	}
	r = request_create(h2->c, &http2_output);
	st = r != NULL ? pool_alloc(r->pool, sizeof(*st)) : NULL;
	if (st == NULL) {
		if (r != NULL)
			request_abort(r);
		httpd_log(HTTPD_LOG_ERR, "%s: out of memory for an HTTP/2 stream", h2->c->peer);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	memset(st, 0, sizeof(*st));
	st->h2 = h2;
	st->id = frame->hd.stream_id;
	st->r = r;
	r->stream = st;
	r->conn_seq = ++h2->requests;
	h2->busy = true;
	h2->idle = false;
	st->next = &h2->streams;
	st->prev = h2->streams.prev;
	h2->streams.prev->next = st;
	h2->streams.prev = st;
	h2->open++;
	if (nghttp2_session_set_stream_user_data(s, st->id, st) != 0) {
		stream_unlink(st);
		request_abort(r);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	h2->reading = st;
	return 0;
}

/*
 * RFC 9113 §8.2.3: a client may split Cookie into crumbs, one field each,
 * and they must be one field again before an HTTP/1.1 upstream or a module
 * sees them (browsers do split; two Cookie lines to a backend are one
 * cookie with a comma in it).  Joined with "; " into the first field.
 */
static int cookie_join(struct h2_stream *st, const uint8_t *value, size_t valuelen)
{
	struct httpd_header *first = &st->fields[st->cookie - 1];
	char *joined = pool_alloc(st->r->pool, first->value_len + 2 + valuelen + 1);

	if (joined == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	memcpy(joined, first->value, first->value_len);
	memcpy(joined + first->value_len, "; ", 2);
	memcpy(joined + first->value_len + 2, value, valuelen);
	joined[first->value_len + 2 + valuelen] = '\0';
	first->value = joined;
	first->value_len += 2 + valuelen;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
	struct h2_conn *h2 = user;
	struct h2_stream *st = h2->reading != NULL && h2->reading->id == frame->hd.stream_id ? h2->reading
	                     : stream_of(h2, frame->hd.stream_id);
	const struct httpd_config *cfg = h2->c->w->config;
	struct request *r;
	bool cookie;

	(void)s;
	(void)flags;
	if (st == NULL || st->too_large)
		return 0;
	/* RFC 9113 §6.5.2: each field counts its name, its value and 32. */
	st->field_bytes += namelen + valuelen + 32;
	if (st->field_bytes > cfg->limits.max_head) {
		st->too_large = true;
		return 0;
	}
	if (st->trailers)
		return 0;   /* trailers are read and dropped, as HTTP/1.1's are */
	r = st->r;
	if (namelen > 0 && name[0] == ':') {
		const char *v = pool_strndup(r->pool, (const char *)value, valuelen);

		if (v == NULL)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
			st->ps.method = v;
			st->ps.method_len = valuelen;
		} else if (namelen == 7 && memcmp(name, ":scheme", 7) == 0) {
			st->ps.scheme = v;
		} else if (namelen == 10 && memcmp(name, ":authority", 10) == 0) {
			st->ps.authority = v;
			st->ps.authority_len = valuelen;
		} else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
			st->ps.path = v;
			st->ps.path_len = valuelen;
		} else if (namelen == 9 && memcmp(name, ":protocol", 9) == 0) {
			st->ps.protocol = v;
		}
		return 0;
	}
	cookie = namelen == 6 && memcmp(name, "cookie", 6) == 0;
	if (cookie && st->cookie != 0)
		return cookie_join(st, value, valuelen);
	if (st->count == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		struct httpd_header *grown;

		if (cap > cfg->limits.max_headers)
			cap = cfg->limits.max_headers;
		if (st->count >= cap) {
			st->too_large = true;
			return 0;
		}
		grown = pool_alloc(r->pool, cap * sizeof(*grown));
		if (grown == NULL)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		if (st->count > 0)
			memcpy(grown, st->fields, st->count * sizeof(*grown));
		st->fields = grown;
		st->cap = cap;
	}
	{
		/* Name and value in one piece of the pool: libnghttp2's buffers go once the callback returns. */
		char *copy = pool_alloc(r->pool, namelen + valuelen + 2);

		if (copy == NULL)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		memcpy(copy, name, namelen);
		copy[namelen] = '\0';
		memcpy(copy + namelen + 1, value, valuelen);
		copy[namelen + 1 + valuelen] = '\0';
		st->fields[st->count] = (struct httpd_header){ copy, copy + namelen + 1, namelen, valuelen };
	}
	if (cookie)
		st->cookie = st->count + 1;
	st->count++;
	return 0;
}

/* DATA kept for later, in a buffer that grows with it (the stream's window bounds it). */
static bool held_append(struct h2_stream *st, const uint8_t *data, size_t len)
{
	if (st->held_len + len > st->held_cap) {
		size_t cap = st->held_cap ? st->held_cap : 16384;
		char *grown;

		while (cap < st->held_len + len)
			cap *= 2;
		grown = pool_alloc(st->r->pool, cap);
		if (grown == NULL)
			return false;
		if (st->held_len > 0)
			memcpy(grown, st->held, st->held_len);
		st->held = grown;
		st->held_cap = cap;
	}
	memcpy(st->held + st->held_len, data, len);
	st->held_len += len;
	return true;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
	struct h2_conn *h2 = user;
	struct h2_stream *st = stream_of(h2, id);

	(void)flags;
	if (st != NULL && st->extended) {
		/* The tunnel's upward bytes: held (unconsumed, so the window closes) until the fd takes them. */
		if (st->held_len + len > (size_t)STREAM_WINDOW || !held_append(st, data, len))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* past the window we gave, or out of memory */
		if (st->tunnel != NULL && !tunnel_up_flush(st))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		return 0;
	}
	if (st == NULL || st->responded || st->body_done) {
		/* Nobody takes it: the window it used comes back at once. */
		(void)nghttp2_session_consume(s, id, len);
		return 0;
	}
	if (st->body_phase && st->held_len == 0 && !st->r->body.paused) {
		(void)nghttp2_session_consume(s, id, len);
		(void)stream_body_piece(st, (const char *)data, len);
		return 0;
	}
	/* Held until the phase takes it; the stream's window bounds how much. */
	return held_append(st, data, len) ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

/*
 * Work that answers nothing (resets either way, pings, settings, empty
 * frames, streams opened and dropped): counted against the responses the
 * connection got, and a connection that causes too much of it is cut off.
 * Rapid Reset and MadeYouReset end here whatever frames they use.
 */
static void glitch(struct h2_conn *h2, const char *what)
{
	if (h2->restoring)
		return;   /* frames h2_unpark made up */
	h2->glitches++;
	if (h2->goaway || h2->glitches <= GLITCH_BASE + (uint64_t)h2->answered * GLITCHES_PER_REQUEST)
		return;
	httpd_log(HTTPD_LOG_WARN, "%s: HTTP/2 connection closed: %llu %s and other frames that did no work "
	          "against %u answered requests (ENHANCE_YOUR_CALM)", h2->c->peer, (unsigned long long)h2->glitches,
	          what, h2->answered);
	(void)nghttp2_session_terminate_session(h2->s, NGHTTP2_ENHANCE_YOUR_CALM);
	h2->goaway = true;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
	struct h2_conn *h2 = user;
	struct h2_stream *st = frame->hd.stream_id != 0 ? stream_of(h2, frame->hd.stream_id) : NULL;
	bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	(void)s;
	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
		if (st == NULL)
			return 0;
		if (end_stream)
			st->in_ended = true;
		if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
			stream_head(st, end_stream);
		else if (end_stream)
			stream_body_feed(st);
		return 0;
	case NGHTTP2_DATA:
		if (frame->hd.length == 0 && !end_stream)
			glitch(h2, "empty DATA frames");
		if (st != NULL && end_stream) {
			st->in_ended = true;
			if (st->tunnel != NULL)
				(void)tunnel_up_flush(st);
			else
				stream_body_feed(st);
		}
		return 0;
	case NGHTTP2_RST_STREAM:
		glitch(h2, "stream resets");
		return 0;
	case NGHTTP2_PING:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
			glitch(h2, "PINGs");
		return 0;
	case NGHTTP2_SETTINGS:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
			glitch(h2, "SETTINGS frames");
		else if (h2->settings_unacked > 0)
			h2->settings_unacked--;
		return 0;
	case NGHTTP2_WINDOW_UPDATE:
		if (frame->window_update.window_size_increment == 0)
			glitch(h2, "empty WINDOW_UPDATE frames");
		return 0;
	default:
		return 0;
	}
}

/* PRIORITY frames are read and dropped under RFC 9218 without a callback of their own: counted here. */
static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *user)
{
	(void)s;
	if (hd->type == NGHTTP2_PRIORITY)
		glitch(user, "PRIORITY frames");
	return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *frame, int error, void *user)
{
	(void)s;
	(void)frame;
	(void)error;
	glitch(user, "invalid frames");
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
	struct h2_stream *st;

	(void)s;
	if (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code != NGHTTP2_NO_ERROR)
		glitch(user, "streams the client made us reset");
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	st = stream_of(user, frame->hd.stream_id);
	if (st == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS)
		st->head_queued = false;
	if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	st->out_done = true;
	/* RFC 9113 §8.1: answered before the body came; the rest is not wanted. */
	if (!st->in_ended)
		stream_reset(st, NGHTTP2_NO_ERROR);
	return 0;
}

/* The HEADERS of a stream that was closed before they went out: dropped now, so its pool can go. */
static struct h2_stream *zombie_of(struct h2_conn *h2, int32_t id)
{
	for (struct h2_stream *st = h2->zombies.next; st != &h2->zombies; st = st->next)
		if (st->id == id)
			return st;
	return NULL;
}

static void zombie_bury(struct h2_stream *st)
{
	st->prev->next = st->next;
	st->next->prev = st->prev;
	request_abort(st->r);
}

static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *frame, int error, void *user)
{
	struct h2_stream *st;

	(void)s;
	(void)error;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	if ((st = stream_of(user, frame->hd.stream_id)) != NULL)
		st->head_queued = false;
	else if ((st = zombie_of(user, frame->hd.stream_id)) != NULL)
		zombie_bury(st);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	struct h2_conn *h2 = user;
	struct h2_stream *st = stream_of(h2, id);
	struct request *r;

	(void)code;
	if (st == NULL)
		return 0;
	r = st->r;
	stream_unlink(st);
	(void)nghttp2_session_set_stream_user_data(s, id, NULL);
	if (st->head_queued) {
		/* Reset before its answer went: libnghttp2 still holds the fields (not copied) until it drops them. */
		st->next = &h2->zombies;
		st->prev = h2->zombies.prev;
		h2->zombies.prev->next = st;
		h2->zombies.prev = st;
		return 0;
	}
	/* The stream lives in the request's pool: nothing of it is touched after this. */
	if (((struct h2_conn *)user)->seg.r == r) {
		/* Its last payload is still to go (the frame's header is out): the file stays open until then. */
		((struct h2_conn *)user)->seg.closed = true;
		((struct h2_conn *)user)->seg.answered = st->out_done;
		((struct h2_conn *)user)->answered += st->out_done;
	} else if (st->out_done) {
		((struct h2_conn *)user)->answered++;
		request_done(r);
	} else {
		request_abort(r);
	}
	return 0;
}

/* --- responses ----------------------------------------------------------- */

static bool out_reserve(struct h2_conn *h2, size_t len);
static bool out_append(struct h2_conn *h2, const void *data, size_t len);

/*
 * A file's bytes read into the output buffer, right behind their frame's
 * header; false (logged) if the file ended early or failed.  (Reading to an
 * aligned place and moving the bytes down cost more than the kernel's
 * slower misaligned copy once the records were gathered: h2-1m 5% more.)
 */
static bool out_pread(struct h2_conn *h2, struct h2_stream *st, size_t length)
{
	while (length > 0) {
		ssize_t got = pread(st->seg_fd, h2->out + h2->out_len, length, st->seg_off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			httpd_log_request(HTTPD_LOG_ERR, &st->r->req, got == 0 ? "the file was truncated while being sent"
			                  : "reading the file to send: %s", strerror(errno));
			return false;
		}
		h2->out_len += (size_t)got;
		st->seg_off += got;
		length -= (size_t)got;
	}
	return true;
}

/* A DATA frame whose payload libnghttp2 never copied: its header, then the payload from where it is. */
static int send_data(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                     nghttp2_data_source *src, void *user)
{
	struct h2_conn *h2 = user;
	struct h2_stream *st = src->ptr;
	size_t mark;

	(void)s;
	(void)frame;   /* no padding is ever asked for (no select_padding callback) */
	if (st->seg_kind == SEG_SENDFILE) {
		if (!out_append(h2, framehd, 9))
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		h2->seg = (struct h2_file_segment){ st->r, st->seg_fd, st->seg_off, (off_t)length, false, false };
		/* mem_send stops here: the payload is written before any later frame is made. */
		return NGHTTP2_ERR_PAUSE;
	}
	if (!out_reserve(h2, 9 + length))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	mark = h2->out_len;
	memcpy(h2->out + h2->out_len, framehd, 9);
	h2->out_len += 9;
	if (st->seg_kind == SEG_MEMORY) {
		memcpy(h2->out + h2->out_len, st->seg_mem, length);
		h2->out_len += length;
	} else if (!out_pread(h2, st, length)) {
		h2->out_len = mark;   /* the stream is reset instead; the frames before stay whole */
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	/* mem_send would go on making frames here without returning: enough for one write stops it. */
	return h2->out_len >= OUT_CHUNK ? NGHTTP2_ERR_PAUSE : 0;
}

/* A filtered body's next piece as one DATA frame: a file range without a copy on plain TCP. */
static ssize_t chain_read(struct h2_stream *st, uint8_t *buf, size_t len, uint32_t *flags)
{
	struct httpd_chunk chunk;
	int rc = body_chain_pull(&st->r->res, &chunk, len);

	if (rc == HTTPD_STREAM_AGAIN) {
		st->stream_waiting = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (rc < 0)
		return -1;
	if (rc == 0) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	if (chunk.data == NULL && st->h2->c->transport == &transport_tcp) {
		st->seg_kind = SEG_SENDFILE;
		st->seg_fd = chunk.fd;
		st->seg_off = chunk.offset;
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	} else if (body_chunk_copy(&st->r->req, &chunk, buf) < 0) {
		return -1;   /* TLS copies anyway: a file range is read into the frame */
	}
	return (ssize_t)chunk.len;
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
	struct h2_stream *st = src->ptr;
	struct httpd_response *res = &st->r->res;
	ssize_t n = 0;

	(void)s;
	(void)id;
	(void)user;
	switch (res->body) {
	case BODY_BUFFER:
		n = (ssize_t)(res->buf_len - st->buf_off < len ? res->buf_len - st->buf_off : len);
		st->seg_kind = SEG_MEMORY;
		st->seg_mem = res->buf + st->buf_off;
		st->buf_off += (size_t)n;
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
		if (st->buf_off == res->buf_len)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		break;
	case BODY_FILE: {
		off_t left = res->file_len - st->file_done;

		if (left > 0) {
			/*
			 * Plain TCP: the payload goes by sendfile, never through user
			 * space.  TLS encrypts from user space: the file is read straight
			 * into the output buffer beside the frame's header (out_pread).
			 */
			n = (off_t)len < left ? (ssize_t)len : (ssize_t)left;
			st->seg_kind = st->h2->c->transport == &transport_tcp ? SEG_SENDFILE : SEG_PREAD;
			st->seg_fd = res->fd;
			st->seg_off = res->file_offset + st->file_done;
			st->file_done += n;
			*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
		}
		if (st->file_done == res->file_len)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		break;
	}
	case BODY_STREAM:
		if (res->chain != NULL) {
			n = chain_read(st, buf, len, flags);
			if (n == NGHTTP2_ERR_DEFERRED)
				return n;
			if (n < 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			break;
		}
		n = res->stream(res->stream_ctx, (char *)buf, len);
		if (n == HTTPD_STREAM_AGAIN) {
			st->stream_waiting = true;
			return NGHTTP2_ERR_DEFERRED;
		}
		if (n < 0 || (size_t)n > len) {
			httpd_log_request(HTTPD_LOG_ERR, &st->r->req, "the module's streamed body failed");
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		if (n == 0)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		break;
	case BODY_NONE:
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		break;
	}
	res->body_sent += (uint64_t)n;
	return n;
}

/* --- RFC 8441 tunnels ----------------------------------------------------- */

#define TUNNEL_READ HTTPD_EVENT_READ
#define TUNNEL_WRITE HTTPD_EVENT_WRITE

struct h2_tunnel {
	int                  fd;
	struct httpd_event  *io, *idle;
	unsigned             io_want;
	unsigned             idle_ms;
	uint64_t             moved_ms;
	const char          *early;          /* what the module read past its 101, for the client first */
	size_t               early_len;
	bool                 read_deferred;  /* the response's DATA waits for the fd to be readable */
	bool                 fd_eof, fd_shut;
};

static void tunnel_close_fd(void *arg)
{
	struct h2_tunnel *t = arg;

	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static void tunnel_want(struct h2_stream *st)
{
	struct h2_tunnel *t = st->tunnel;
	unsigned want = (t->read_deferred ? TUNNEL_READ : 0) | (st->held_len > 0 ? TUNNEL_WRITE : 0);

	if (want != t->io_want && httpd_event_fd_mod(t->io, want) == 0)
		t->io_want = want;
}

/* Client bytes held for the fd go as far as it takes them; the window opens by as much. */
static bool tunnel_up_flush(struct h2_stream *st)
{
	struct h2_tunnel *t = st->tunnel;
	size_t off = 0;

	while (off < st->held_len) {
		ssize_t n = send(t->fd, st->held + off, st->held_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return false;
		off += (size_t)n;
		t->moved_ms = st->h2->c->w->now_ms;
	}
	if (off > 0) {
		memmove(st->held, st->held + off, st->held_len - off);
		st->held_len -= off;
		(void)nghttp2_session_consume(st->h2->s, st->id, off);
	}
	if (st->held_len == 0 && st->in_ended && !t->fd_shut) {
		(void)shutdown(t->fd, SHUT_WR);   /* the client's END_STREAM, passed on as a half-close */
		t->fd_shut = true;
	}
	tunnel_want(st);
	return true;
}

static void tunnel_fd_event(struct httpd_request *req, void *arg, unsigned events)
{
	struct h2_stream *st = arg;
	struct h2_tunnel *t = st->tunnel;
	struct request *r = request_of(req);

	if (r->conn == NULL)
		return;
	if ((events & (TUNNEL_READ | HTTPD_EVENT_ERROR)) && t->read_deferred) {
		t->read_deferred = false;
		(void)nghttp2_session_resume_data(st->h2->s, st->id);
	}
	if ((events & (TUNNEL_WRITE | HTTPD_EVENT_ERROR)) && !tunnel_up_flush(st))
		stream_reset(st, NGHTTP2_CONNECT_ERROR);
	tunnel_want(st);
	worker_defer(r->w, r->conn);
}

static void tunnel_idle_check(struct httpd_request *req, void *arg, unsigned events)
{
	struct h2_stream *st = arg;
	struct h2_tunnel *t = st->tunnel;
	struct request *r = request_of(req);
	uint64_t now;

	(void)events;
	t->idle = NULL;
	if (r->conn == NULL)
		return;
	now = r->w->now_ms;
	if (now - t->moved_ms >= t->idle_ms) {
		httpd_log_request(HTTPD_LOG_INFO, req, "tunnel closed: idle");
		stream_reset(st, NGHTTP2_CANCEL);
		worker_defer(r->w, r->conn);
		return;
	}
	t->idle = httpd_event_timer(req, (unsigned)(t->idle_ms - (now - t->moved_ms)), tunnel_idle_check, st);
}

/* The fd's bytes as the response's DATA; END_STREAM once it ends. */
static ssize_t tunnel_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                           nghttp2_data_source *src, void *user)
{
	struct h2_stream *st = src->ptr;
	struct h2_tunnel *t = st->tunnel;
	ssize_t n;

	(void)s;
	(void)id;
	(void)user;
	if (t->early_len > 0) {
		n = (ssize_t)(t->early_len < len ? t->early_len : len);
		memcpy(buf, t->early, (size_t)n);
		t->early += n;
		t->early_len -= (size_t)n;
	} else {
		n = recv(t->fd, buf, len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			t->read_deferred = true;
			tunnel_want(st);
			return NGHTTP2_ERR_DEFERRED;
		}
		if (n < 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		if (n == 0) {
			t->fd_eof = true;
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			return 0;
		}
	}
	t->moved_ms = st->h2->c->w->now_ms;
	st->r->res.body_sent += (uint64_t)n;
	return n;
}

/* The module's 101 (a proxied WebSocket): the stream relays its fd from now on. */
static int tunnel_start(struct h2_stream *st)
{
	struct request *r = st->r;
	struct httpd_response *res = &r->res;
	struct h2_tunnel *t = pool_alloc(r->pool, sizeof(*t));

	if (t == NULL)
		return -1;
	memset(t, 0, sizeof(*t));
	t->fd = res->tunnel_fd;
	res->tunnel_fd = -1;
	if (httpd_pool_cleanup(r->pool, tunnel_close_fd, t) < 0) {
		close(t->fd);
		return -1;
	}
	t->idle_ms = res->tunnel_idle_ms;
	t->early = res->tunnel_pending;
	t->early_len = res->tunnel_pending_len;
	t->moved_ms = r->w->now_ms;
	st->tunnel = t;
	t->io = httpd_event_fd(&r->req, t->fd, 0, tunnel_fd_event, st);
	t->idle = httpd_event_timer(&r->req, t->idle_ms, tunnel_idle_check, st);
	if (t->io == NULL || t->idle == NULL)
		return -1;
	/* RFC 8441 §5: a 200 stands for the 101; the handshake's fields were the backend's business. */
	res->status = 200;
	response_header_remove(res, "Sec-WebSocket-Accept");
	response_header_remove(res, "Upgrade");
	response_header_remove(res, "Connection");
	/* What the client sent before the answer waited in held: it goes to the fd now. */
	return tunnel_up_flush(st) ? 0 : -1;
}

static void http2_respond(struct request *r)
{
	struct h2_stream *st = r->stream;
	struct conn *c = r->conn;
	const struct httpd_config *cfg = c->w->config;
	struct httpd_response *res = &r->res;
	struct response_head_opts opts = {
		.version = 20,
		.keep_alive = true,
		.head_only = r->head.method == HTTPD_METHOD_HEAD,
		.server_tokens = cfg->server_tokens,
		.now = c->w->now,
		.allow = r->allow,
	};
	nghttp2_data_provider provider = { .source.ptr = st, .read_callback = body_read };
	struct response_field *f;
	nghttp2_nv *nv;
	size_t count;

	st->waiting = false;
	st->responded = true;
	if (st->extended && res->status == 101 && res->tunnel_fd >= 0) {
		if (tunnel_start(st) < 0) {
			httpd_log_request(HTTPD_LOG_ERR, &r->req, "cannot start the tunnel: out of memory");
			stream_reset(st, NGHTTP2_INTERNAL_ERROR);
			return;
		}
		provider.read_callback = tunnel_read;
		opts.tunnel = true;
	} else if (res->status == 101 || res->tunnel_fd >= 0) {
		/* No Upgrade in HTTP/2 (RFC 9113 §8.6) but a WebSocket's extended CONNECT. */
		httpd_log_request(HTTPD_LOG_ERR, &r->req, "a 101 cannot be sent over HTTP/2 but to an extended CONNECT");
		response_error(res, 502, NULL, 0, NULL);
	} else if (st->extended && res->status >= 200 && res->status < 300) {
		/* A 2xx would tell the client its tunnel is open (RFC 8441 §5): this location answered without one. */
		response_error(res, 501, NULL, 0, NULL);
	}
	if (r->server != NULL && r->server->hsts > 0 && c->transport != &transport_tcp)
		(void)response_header_push(res, "Strict-Transport-Security", r->server->hsts_header);
	f = response_fields_build(res, &opts, &count);
	nv = f != NULL ? pool_alloc(r->pool, count * sizeof(*nv)) : NULL;
	if (nv == NULL) {
		httpd_log_request(HTTPD_LOG_ERR, &r->req, "out of memory for the HTTP/2 response head");
		stream_reset(st, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	for (size_t i = 0; i < count; i++)
		nv[i] = (nghttp2_nv){ (uint8_t *)(uintptr_t)f[i].name, (uint8_t *)(uintptr_t)f[i].value, f[i].name_len,
		                      f[i].value_len, NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE };
	/* Not copied: the pool outlives the HEADERS (a stream reset first waits as a zombie until they are dropped). */
	if (nghttp2_submit_response(st->h2->s, st->id, nv, count,
	                            res->body == BODY_NONE && st->tunnel == NULL ? NULL : &provider) != 0) {
		httpd_log_request(HTTPD_LOG_ERR, &r->req, "cannot submit the HTTP/2 response");
		stream_reset(st, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	st->head_queued = true;
}

static void http2_send_body(struct request *r)
{
	struct h2_stream *st = r->stream;

	if (!st->stream_waiting)
		return;
	st->stream_waiting = false;
	(void)nghttp2_session_resume_data(st->h2->s, st->id);
	worker_defer(r->w, r->conn);
}

static void http2_wait(struct request *r)
{
	((struct h2_stream *)r->stream)->waiting = true;
}

static void http2_finish(struct request *r)
{
	worker_defer(r->w, r->conn);
}

static void http2_gate_done(struct request *r, int rc)
{
	struct h2_stream *st = r->stream;

	st->waiting = false;
	stream_gates_passed(st, rc);
	worker_defer(r->w, r->conn);
}

static void http2_checks_done(struct request *r, int rc)
{
	struct h2_stream *st = r->stream;

	st->waiting = false;
	stream_checks_passed(st, rc);
	worker_defer(r->w, r->conn);
}

static void http2_body_checked(struct request *r, int rc)
{
	struct h2_stream *st = r->stream;

	st->waiting = false;
	stream_body_checked(st, rc);
	worker_defer(r->w, r->conn);
}

static void http2_body_pause(struct request *r)
{
	(void)r;   /* held DATA is not consumed meanwhile: the window closes and the client waits */
}

static void http2_body_resume(struct request *r)
{
	struct h2_stream *st = r->stream;

	if (st->body_done && r->body.replaying)
		stream_replay(st);
	else
		stream_body_feed(st);
	worker_defer(r->w, r->conn);
}

static void http2_body_unread(struct request *r)
{
	struct h2_stream *st = r->stream;

	if (!st->in_ended)
		st->body_unread = true;
}

static const struct request_output http2_output = {
	.respond     = http2_respond,
	.send_body   = http2_send_body,
	.wait        = http2_wait,
	.finish      = http2_finish,
	.gate_done   = http2_gate_done,
	.checks_done = http2_checks_done,
	.body_checked = http2_body_checked,
	.body_pause  = http2_body_pause,
	.body_resume = http2_body_resume,
	.body_unread = http2_body_unread,
};

/* --- the connection ------------------------------------------------------ */

/*
 * The frames of one write are made in one buffer all of the worker's
 * HTTP/2 connections share: a write usually takes them all, and then the
 * connection holds no output buffer at all.  Only what the socket did not
 * take moves to a buffer of the connection's own (out_keep).
 */
static char  *shared_out;
static size_t shared_cap;
static bool   shared_taken;

/* The output buffer goes back: emptied, or on the connection's end. */
static void out_release(struct h2_conn *h2)
{
	if (h2->out == shared_out && h2->out != NULL)
		shared_taken = false;
	else
		free(h2->out);
	h2->out = NULL;
	h2->out_cap = h2->out_len = h2->out_off = 0;
}

/* An empty buffer to make frames in: the shared one, unless another connection is making its frames there. */
static bool out_take(struct h2_conn *h2)
{
	if (h2->out != NULL)
		return true;
	if (!shared_taken) {
		if (shared_out == NULL) {
			if ((shared_out = malloc(OUT_CHUNK)) == NULL)
				goto nomem;
			shared_cap = OUT_CHUNK;
		}
		shared_taken = true;
		h2->out = shared_out;
		h2->out_cap = shared_cap;
		return true;
	}
	if ((h2->out = malloc(OUT_CHUNK)) == NULL)
		goto nomem;
	h2->out_cap = OUT_CHUNK;
	return true;
nomem:
	httpd_log(HTTPD_LOG_ERR, "%s: out of memory sending HTTP/2 frames", h2->c->peer);
	return false;
}

/* The socket took only part: the rest moves to the connection's own buffer, and the shared one is free again. */
static bool out_keep(struct h2_conn *h2)
{
	size_t left = h2->out_len - h2->out_off;
	char *own;

	if (h2->out != shared_out || h2->out == NULL)
		return true;
	if ((own = malloc(left)) == NULL) {
		httpd_log(HTTPD_LOG_ERR, "%s: out of memory keeping HTTP/2 frames", h2->c->peer);
		return false;
	}
	memcpy(own, h2->out + h2->out_off, left);
	shared_taken = false;
	h2->out = own;
	h2->out_cap = h2->out_len = left;
	h2->out_off = 0;
	return true;
}

/* Room for len more bytes in the output buffer; false (logged) out of memory. */
static bool out_reserve(struct h2_conn *h2, size_t len)
{
	if (h2->out_len + len > h2->out_cap) {
		/* A write's worth, and past it room for the frame that ends one (send_data pauses there). */
		size_t cap = h2->out_len + len <= OUT_CHUNK ? OUT_CHUNK : h2->out_len + len + OUT_CHUNK / 2;
		char *grown = realloc(h2->out, cap);

		if (grown == NULL) {
			httpd_log(HTTPD_LOG_ERR, "%s: out of memory sending HTTP/2 frames", h2->c->peer);
			return false;
		}
		if (h2->out == shared_out) {
			shared_out = grown;
			shared_cap = cap;
		}
		h2->out = grown;
		h2->out_cap = cap;
	}
	return true;
}

static bool out_append(struct h2_conn *h2, const void *data, size_t len)
{
	if (!out_reserve(h2, len))
		return false;
	memcpy(h2->out + h2->out_len, data, len);
	h2->out_len += len;
	return true;
}

/* After a failed write: 0 to wait for the socket (EAGAIN) or retry (EINTR, 1), -1 once c is closed. */
static int write_failed(struct conn *c, const char *what)
{
	if (errno == EINTR)
		return 1;
	if (errno == EAGAIN) {
		conn_wait_writable(c);
		return 0;
	}
	if (errno != EPIPE && errno != ECONNRESET)
		httpd_log(HTTPD_LOG_INFO, "%s: %s failed: %s", c->peer, what, strerror(errno));
	conn_close(c);
	return -1;
}

/* The file segment's payload; 1 once all of it is out, 0 to wait, -1 once c is closed. */
static int segment_write(struct conn *c, struct h2_conn *h2)
{
	while (h2->seg.left > 0) {
		ssize_t n;

		if (!c->writable)
			return 0;
		n = c->transport->sendfile(c, h2->seg.fd, &h2->seg.off, (size_t)h2->seg.left, false);
		if (n == 0) {
			httpd_log_request(HTTPD_LOG_ERR, &h2->seg.r->req, "the file was truncated while being sent");
			conn_close(c);
			return -1;
		}
		if (n < 0) {
			int rc = write_failed(c, "sendfile");

			if (rc <= 0)
				return rc;
			continue;
		}
		h2->seg.left -= n;
	}
	if (h2->seg.closed && h2->seg.answered)
		request_done(h2->seg.r);
	else if (h2->seg.closed)
		request_abort(h2->seg.r);
	h2->seg.r = NULL;
	return 1;
}

/* Writes what nghttp2 has made: 0 when all of it went or the socket is full, -1 once c is closed. */
static int h2_flush(struct conn *c)
{
	struct h2_conn *h2 = h2_of(c);

	for (;;) {
		if (h2->out_off < h2->out_len) {
			struct iovec iov = { h2->out + h2->out_off, h2->out_len - h2->out_off };
			ssize_t n;

			if (!c->writable)
				goto wait;
			/* more: a file payload follows at once (MSG_MORE, one segment for header and data) */
			n = c->transport->writev(c, &iov, 1, h2->seg.r != NULL);
			if (n < 0) {
				int rc = write_failed(c, "send");

				if (rc < 0)
					return rc;   /* c and h2 are gone */
				if (rc == 0)
					goto wait;
				continue;
			}
			h2->out_off += (size_t)n;
			continue;
		}
		out_release(h2);
		if (h2->seg.r != NULL) {
			int rc = segment_write(c, h2);

			if (rc <= 0)
				return rc;
		}
		if (!out_take(h2)) {
			conn_close(c);
			return -1;
		}
		while (h2->out_len < OUT_CHUNK && h2->seg.r == NULL) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(h2->s, &data);

			if (n < 0) {
				httpd_log(HTTPD_LOG_ERR, "%s: HTTP/2: %s", c->peer, nghttp2_strerror((int)n));
				conn_close(c);
				return -1;
			}
			if (n == 0)
				break;
			if (!out_append(h2, data, (size_t)n)) {
				conn_close(c);
				return -1;
			}
		}
		if (h2->out_len == 0 && h2->seg.r == NULL) {
			out_release(h2);
			/* The transport may hold records it gathered (TLS): they go now, or on the socket's next room. */
			if (c->tx_holding && c->transport->flush(c) < 0)
				return write_failed(c, "send") < 0 ? -1 : 0;
			return 0;
		}
	}
wait:
	if (!out_keep(h2)) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/*
 * The timeout that applies now: sending (frames queued, or a response the
 * client's window holds back), a handler or gate, a client that owes a
 * body, or idle.  A stream that waits for its module's own source has no
 * timer of ours.
 */
static void h2_timer_update(struct conn *c)
{
	struct h2_conn *h2 = h2_of(c);
	int kind = h2->open == 0 ? TIMER_KEEPALIVE : -1;

	if (h2->out_off < h2->out_len || h2->seg.r != NULL || c->tx_holding)
		kind = TIMER_SEND;
	for (struct h2_stream *st = h2->streams.next; st != &h2->streams && kind != TIMER_SEND; st = st->next) {
		if (st->tunnel != NULL)
			continue;   /* its own idle timer */
		if (st->responded && !st->out_done && !st->stream_waiting)
			kind = TIMER_SEND;
		else if (st->waiting)
			kind = TIMER_HANDLER;
		else if (!st->in_ended && !st->responded && kind != TIMER_HANDLER)
			kind = TIMER_BODY;
	}
	/* Idle counts from the last stream: a drain tells only connections that have really gone quiet. */
	if (kind < 0)
		timer_disarm(&c->timer);
	else if (c->timer.list != kind || kind != TIMER_KEEPALIVE || h2->busy)
		timer_arm(c->w->timers, kind, &c->timer, c->w->now_ms);
	h2->busy = false;
}

static bool h2_quiet(const struct conn *c, const struct h2_conn *h2)
{
	return h2->open == 0 && h2->out_len == 0 && h2->seg.r == NULL && h2->zombies.next == &h2->zombies &&
	       c->in_off == c->in_len && !c->tx_holding;
}

/*
 * Parking: a connection that has stayed quiet gives back its libnghttp2
 * session (some 9 KiB: the session, its stream map, its HPACK tables) and
 * keeps the little a new session must know to carry on where it stopped:
 * the client's settings, the window it gave us, its last stream.  The one
 * thing that cannot be carried over is the client's HPACK table, so a
 * session is parked only when that table is empty: at once if the client
 * never added to it, else after SETTINGS_HEADER_TABLE_SIZE went to 0 and
 * back, which makes the client empty it (RFC 7541 §4.2) once it
 * acknowledges them.  Our own HPACK table may start afresh: the client
 * keeps our old entries, but we never refer to them, and the ones we add
 * are always its newest.
 */
static int session_new(struct h2_conn *h2, const struct httpd_config *cfg);

static const uint8_t client_magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* What the new session wants to send while it is told the old one's state: never sent (the client has it). */
static bool session_output_drop(nghttp2_session *s)
{
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(s, &data);

		if (n == 0)
			return true;
		if (n < 0)
			return false;
	}
}

/* The stand-in's body: as many zeros as its source counts down. */
static ssize_t zeros_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *user)
{
	size_t *left = src->ptr;
	size_t n = *left < len ? *left : len;

	(void)s;
	(void)id;
	(void)user;
	memset(buf, 0, n);
	*left -= n;
	if (*left == 0)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static uint8_t *frame_head(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream)
{
	*p++ = (uint8_t)(len >> 16);
	*p++ = (uint8_t)(len >> 8);
	*p++ = (uint8_t)len;
	*p++ = type;
	*p++ = flags;
	*p++ = (uint8_t)(stream >> 24);
	*p++ = (uint8_t)(stream >> 16);
	*p++ = (uint8_t)(stream >> 8);
	*p++ = (uint8_t)stream;
	return p;
}

static bool h2_park(struct conn *c)
{
	struct h2_conn *h2 = h2_of(c);
	nghttp2_session *s = h2->s;
	int32_t window;

	if (s == NULL || !h2_quiet(c, h2) || h2->goaway || h2->closing || h2->settings_unacked > 1 ||
	    nghttp2_session_want_write(s) ||
	    nghttp2_session_get_hd_inflate_dynamic_table_size(s) != 0 ||
	    nghttp2_session_get_effective_recv_data_length(s) != 0)
		return false;
	/* A window below the initial one is spent again on the stand-in stream (h2_unpark), which must hold it. */
	window = nghttp2_session_get_remote_window_size(s);
	if (window < NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
	    (nghttp2_session_get_last_proc_stream_id(s) == 0 ||
	     (uint32_t)(NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE - window) >
	     nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE)))
		return false;
	for (int id = 1; id <= H2_SETTINGS_MAX; id++)
		if (id != 7)   /* no setting has identifier 7 (libnghttp2 would abort) */
			h2->parked.settings[id] = nghttp2_session_get_remote_settings(s, (nghttp2_settings_id)id);
	h2->parked.remote_window = nghttp2_session_get_remote_window_size(s);
	h2->parked.last_stream = nghttp2_session_get_last_proc_stream_id(s);
	nghttp2_session_del(s);
	h2->s = NULL;
	h2->table_reset = false;
	h2->idle = true;
	if (score_self != NULL)
		score_add(&score_self->c.h2_parked, 1);
	httpd_log(HTTPD_LOG_DEBUG, "%s: HTTP/2 connection quiet: its session parked", c->peer);
	return true;
}

/*
 * A parked connection is woken (by the client, a timeout, a stop): a new
 * session, told what the old one knew as if the client had said it (its
 * settings, its window, a stand-in for its last stream, so frames about
 * old streams find them closed, not idle), and what that makes it answer
 * is dropped.  0, or -1 out of memory.
 */
static int h2_unpark(struct conn *c)
{
	struct h2_conn *h2 = h2_of(c);
	struct h2_parked *pk = &h2->parked;
	uint8_t in[sizeof(client_magic) - 1 + 9 + 6 * H2_SETTINGS_MAX + 9 + 13 + 15], *p = in, *settings;
	unsigned unacked = h2->settings_unacked;
	/* zeros_read counts it down while the output is dropped below: it lives as long as this call */
	size_t owed = pk->remote_window < NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE
	            ? (size_t)(NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE - pk->remote_window) : 0;
	ssize_t n = 0;

	if (h2->s != NULL)
		return 0;
	h2->restoring = true;
	if (session_new(h2, c->w->config) < 0)
		goto fail;
	memcpy(p, client_magic, sizeof(client_magic) - 1);
	p += sizeof(client_magic) - 1;
	settings = p;
	p += 9;
	for (int id = 1; id <= H2_SETTINGS_MAX; id++) {
		uint32_t v = pk->settings[id];

		if (id == 7 || v == nghttp2_session_get_remote_settings(h2->s, (nghttp2_settings_id)id))
			continue;
		*p++ = 0;
		*p++ = (uint8_t)id;
		*p++ = (uint8_t)(v >> 24);
		*p++ = (uint8_t)(v >> 16);
		*p++ = (uint8_t)(v >> 8);
		*p++ = (uint8_t)v;
	}
	(void)frame_head(settings, (size_t)(p - settings - 9), NGHTTP2_SETTINGS, NGHTTP2_FLAG_NONE, 0);
	if (unacked == 0)
		p = frame_head(p, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);   /* the client had acknowledged ours */
	if (pk->remote_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
		uint32_t more = (uint32_t)(pk->remote_window - NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE);

		p = frame_head(p, 4, NGHTTP2_WINDOW_UPDATE, NGHTTP2_FLAG_NONE, 0);
		*p++ = (uint8_t)(more >> 24);
		*p++ = (uint8_t)(more >> 16);
		*p++ = (uint8_t)(more >> 8);
		*p++ = (uint8_t)more;
	}
	if (pk->last_stream > 0) {
		/* GET / over http with HPACK's static table alone: the stand-in opens, and is answered below. */
		static const uint8_t get[] = { 0x82, 0x86, 0x84, 0x01, 0x01, 'x' };   /* :authority x, not indexed */

		p = frame_head(p, sizeof(get), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
		               (uint32_t)pk->last_stream);
		memcpy(p, get, sizeof(get));
		p += sizeof(get);
	}
	if (!session_output_drop(h2->s))
		goto fail;
	n = nghttp2_session_mem_recv(h2->s, in, (size_t)(p - in));
	if (n != p - in)
		goto fail;
	n = 0;
	if (pk->last_stream > 0) {
		/*
		 * The stand-in is answered, never sent: a bare 200 (HPACK's static
		 * table: our table stays the client's) and, in zeros, what the
		 * client's window to us had lost, so the new session's window is
		 * the old one's.  The answer closes the stand-in.
		 */
		static const nghttp2_nv status = { (uint8_t *)":status", (uint8_t *)"200", 7, 3,
		                                   NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE };
		nghttp2_data_provider zeros = { .source.ptr = &owed, .read_callback = zeros_read };

		if (nghttp2_submit_response(h2->s, pk->last_stream, &status, 1, owed > 0 ? &zeros : NULL) != 0)
			goto fail;
	}
	if (!session_output_drop(h2->s)) {
		n = NGHTTP2_ERR_NOMEM;
		goto fail;
	}
	h2->settings_unacked = (unsigned char)unacked;
	h2->restoring = false;
	h2->idle = false;   /* its next quiet moment parks it again */
	if (score_self != NULL)
		score_add(&score_self->c.h2_resumed, 1);
	httpd_log(HTTPD_LOG_DEBUG, "%s: HTTP/2 connection resumed from its parked session", c->peer);
	return 0;
fail:
	h2->restoring = false;
	/* Only memory can fail here: the frames are ours.  The connection is closed. */
	httpd_log(HTTPD_LOG_ERR, "%s: cannot resume a parked HTTP/2 connection: %s", c->peer,
	          n < 0 ? nghttp2_strerror((int)n) : "out of memory");
	return -1;
}

/*
 * Nothing in flight and nothing to send: the input buffer and the request
 * pool go back to the worker now (cheap, and another connection may take
 * them; the output buffer went with the last write); once the connection
 * has stayed quiet H2_RELEASE_MS, its session is parked, so an idle
 * HTTP/2 connection costs little more than an idle HTTP/1.1 one.
 */
static void h2_idle_release(struct conn *c)
{
	struct h2_conn *h2 = h2_of(c);

	if (!h2_quiet(c, h2))
		return;
	if (h2->table_reset && h2->settings_unacked == 0) {
		/* The client acknowledged the table's reset and has sent nothing since: park now. */
		h2->table_reset = false;
		if (h2_park(c))
			return;
	}
	if (h2->idle)
		return;
	conn_idle(c);
	h2->quiet_ms = c->w->now_ms;
	if (h2->release.next == NULL)
		deadline_arm(c->w, &h2->release, H2_RELEASE_MS);
}

static void h2_release_fire(struct deadline *d)
{
	struct h2_conn *h2 = (struct h2_conn *)(void *)((char *)d - offsetof(struct h2_conn, release));
	struct conn *c = h2->c;
	uint64_t quiet_for = c->w->now_ms - h2->quiet_ms;
	int32_t credit;
	nghttp2_settings_entry table_size[] = { { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 0 },
	                                        { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096 } };

	if (!h2_quiet(c, h2) || h2->idle || h2->closing || h2->s == NULL)
		return;   /* busy again: its next quiet moment arms this anew */
	if (quiet_for < H2_RELEASE_MS) {
		deadline_arm(c->w, d, H2_RELEASE_MS - quiet_for);
		return;
	}
	/* Window the client is owed for what it sent: given now, so the next session need not know of it. */
	credit = nghttp2_session_get_effective_recv_data_length(h2->s);
	if (credit > 0 && !h2->goaway && nghttp2_submit_window_update(h2->s, NGHTTP2_FLAG_NONE, 0, credit) == 0 &&
	    h2_flush(c) < 0)
		return;
	if (h2_park(c))
		return;
	h2->idle = true;
	/* libnghttp2's frame buffer holds nothing between frames: its pages go back until the next one. */
	for (size_t i = 0; i < h2->nbig; i++)
		(void)madvise(h2->big[i].p, h2->big[i].len, MADV_DONTNEED);
	if (h2->goaway || h2->table_reset || h2->settings_unacked > 1 ||
	    nghttp2_session_get_hd_inflate_dynamic_table_size(h2->s) == 0)
		return;
	/* The client's HPACK table holds entries: ask it to empty them, and park once it has said yes. */
	if (nghttp2_submit_settings(h2->s, NGHTTP2_FLAG_NONE, &table_size[0], 1) != 0 ||
	    nghttp2_submit_settings(h2->s, NGHTTP2_FLAG_NONE, &table_size[1], 1) != 0)
		return;
	h2->settings_unacked += 2;
	h2->table_reset = true;
	if (h2_flush(c) == 0)
		h2_timer_update(c);
}

/* A graceful stop or keepalive_requests: no new streams; those under way finish. */
static void h2_goaway(struct h2_conn *h2)
{
	if (h2->goaway || h2_unpark(h2->c) < 0)
		return;
	h2->goaway = true;
	(void)nghttp2_submit_goaway(h2->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h2->s),
	                            NGHTTP2_NO_ERROR, NULL, 0);
}

/*
 * The session is over: what it still has to say (a GOAWAY, the last
 * responses) goes out, then the connection drains the client's input
 * before closing, so those bytes are not lost to a reset.
 */
static void h2_close_when_flushed(struct conn *c)
{
	struct h2_conn *h2 = h2_of(c);

	h2->closing = true;
	if (h2_flush(c) < 0)
		return;
	if (h2->out_off < h2->out_len || h2->seg.r != NULL || c->tx_holding) {
		timer_arm(c->w->timers, TIMER_SEND, &c->timer, c->w->now_ms);
		return;
	}
	(void)conn_linger_begin(c, true);
}

static void http2_run(struct conn *c)
{
	struct h2_conn *h2 = h2_of(c);

	if (h2->closing) {
		h2_close_when_flushed(c);
		return;
	}
	if (h2_unpark(c) < 0) {
		conn_close(c);
		return;
	}
	for (;;) {
		if (c->in_len > c->in_off) {
			ssize_t n = nghttp2_session_mem_recv(h2->s, (const uint8_t *)c->in + c->in_off, c->in_len - c->in_off);

			if (n < 0) {
				if (n == NGHTTP2_ERR_FLOODED)
					httpd_log(HTTPD_LOG_WARN, "%s: HTTP/2 connection closed: it flooded us with frames to "
					          "answer", c->peer);
				else if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
					httpd_log(HTTPD_LOG_INFO, "%s: HTTP/2: %s", c->peer, nghttp2_strerror((int)n));
				h2_close_when_flushed(c);   /* the GOAWAY libnghttp2 queued goes first */
				return;
			}
			c->in_off += (size_t)n;
		}
		if (!h2->goaway && h2->requests >= c->w->config->keepalive_requests)
			h2_goaway(h2);
		if (h2_flush(c) < 0)
			return;
		if (!nghttp2_session_want_read(h2->s) && !nghttp2_session_want_write(h2->s) &&
		    h2->out_off == h2->out_len && h2->seg.r == NULL) {
			h2_close_when_flushed(c);
			return;
		}
		if (!nghttp2_session_want_read(h2->s))
			break;
		switch (conn_fill(c)) {
		case 1:
			continue;
		case 0:
			conn_in_release(c);
			h2_idle_release(c);
			h2_timer_update(c);
			return;
		default:
			return;
		}
	}
	h2_timer_update(c);
}

static void http2_timeout(struct conn *c, enum timer_kind kind)
{
	struct h2_conn *h2 = h2_of(c);

	if (kind != TIMER_KEEPALIVE)
		httpd_log(HTTPD_LOG_INFO, "%s: HTTP/2 connection timed out (%s)", c->peer,
		          kind == TIMER_SEND ? "send_timeout" : kind == TIMER_HANDLER ? "handler_timeout" : "body_timeout");
	if (h2->closing || h2_unpark(c) < 0) {
		conn_close(c);   /* even the last frames could not be sent in time */
		return;
	}
	(void)nghttp2_session_terminate_session(h2->s, NGHTTP2_NO_ERROR);
	h2->goaway = true;
	h2_close_when_flushed(c);
}

static void http2_drain(struct conn *c)
{
	http2_timeout(c, TIMER_KEEPALIVE);
}

/* A stop (SIGTERM): GOAWAY now, so the client opens its next streams elsewhere; these finish. */
static void http2_quiesce(struct conn *c)
{
	h2_goaway(h2_of(c));
	http2_run(c);
}

static void http2_abort(struct conn *c)
{
	struct h2_conn *h2 = h2_of(c);

	if (h2 == NULL)
		return;
	if (h2->seg.r != NULL && h2->seg.closed)
		request_abort(h2->seg.r);   /* its stream is gone from the list: the payload never went */
	while (h2->streams.next != &h2->streams) {
		struct h2_stream *st = h2->streams.next;

		stream_unlink(st);
		request_abort(st->r);
	}
	while (h2->zombies.next != &h2->zombies)
		zombie_bury(h2->zombies.next);
	deadline_disarm(&h2->release);
	if (h2->s != NULL)
		nghttp2_session_del(h2->s);
	out_release(h2);
	free(h2);
	slot_of(c)->h2 = NULL;
}

const struct conn_protocol http2_protocol = {
	.name    = "h2",
	.run     = http2_run,
	.timeout = http2_timeout,
	.drain   = http2_drain,
	.abort   = http2_abort,
	.quiesce = http2_quiesce,
};

/*
 * libnghttp2's memory.  Its frame buffer (16 KiB, made with the session)
 * gets pages of its own, which an idle connection hands back to the kernel
 * (h2_idle_release); the rest comes from the worker's free lists (http2_mem.c).
 */
static void *h2_mem_malloc(size_t n, void *user)
{
	struct h2_conn *h2 = user;
	void *p;

	if (n < H2_BIG || h2->nbig == H2_BIG_MAX)
		return http2_block_alloc(n);
	p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	h2->big[h2->nbig++] = (struct h2_big){ p, n };
	return p;
}

static struct h2_big *h2_mem_big(struct h2_conn *h2, void *p)
{
	for (size_t i = 0; i < h2->nbig; i++)
		if (h2->big[i].p == p)
			return &h2->big[i];
	return NULL;
}

static void h2_mem_free(void *p, void *user)
{
	struct h2_conn *h2 = user;
	struct h2_big *b = p != NULL && h2->nbig > 0 ? h2_mem_big(h2, p) : NULL;

	if (b == NULL) {
		http2_block_free(p);
		return;
	}
	(void)munmap(b->p, b->len);
	*b = h2->big[--h2->nbig];
}

static void *h2_mem_calloc(size_t count, size_t size, void *user)
{
	void *p;

	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	p = h2_mem_malloc(count * size, user);
	if (p != NULL && (count * size < H2_BIG || h2_mem_big(user, p) == NULL))
		memset(p, 0, count * size);   /* fresh pages are zero already */
	return p;
}

static void *h2_mem_realloc(void *p, size_t n, void *user)
{
	struct h2_conn *h2 = user;
	struct h2_big *b = p != NULL && h2->nbig > 0 ? h2_mem_big(h2, p) : NULL;
	size_t old;
	void *q;

	if (b == NULL && n < H2_BIG)
		return http2_block_realloc(p, n);
	old = b != NULL ? b->len : p != NULL ? http2_block_size(p) : 0;
	q = h2_mem_malloc(n, user);
	if (q == NULL)
		return NULL;
	if (p != NULL) {
		memcpy(q, p, old < n ? old : n);
		h2_mem_free(p, user);
	}
	return q;
}

static nghttp2_session_callbacks *callbacks;

static int session_new(struct h2_conn *h2, const struct httpd_config *cfg)
{
	nghttp2_option *opt;
	int rc;

	if (callbacks == NULL) {
		if (nghttp2_session_callbacks_new(&callbacks) != 0)
			return -1;
		nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
		nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
		nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
		nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, on_invalid_frame);
		nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, on_begin_frame);
		nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
		nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks, on_frame_not_send);
		nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
		nghttp2_session_callbacks_set_send_data_callback(callbacks, send_data);
	}
	if (nghttp2_option_new(&opt) != 0)
		return -1;
	/* Window updates follow what the request phases took: a slow consumer slows the client. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	/* Rapid Reset (CVE-2023-44487) and CONTINUATION floods (CVE-2024-27316): libnghttp2's own limits. */
	nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
	nghttp2_option_set_max_continuations(opt, 8);
	nghttp2_option_set_max_settings(opt, 32);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	/*
	 * RFC 9218 priorities (the priority field and PRIORITY_UPDATE; urgency
	 * and incremental decide whose DATA goes first), not RFC 7540's tree:
	 * browsers dropped it, and keeping it (closed streams included) was
	 * libnghttp2's own largest cost per stream.
	 */
	nghttp2_option_set_builtin_recv_extension_type(opt, NGHTTP2_PRIORITY_UPDATE);
	nghttp2_option_set_no_closed_streams(opt, 1);
	h2->mem = (nghttp2_mem){ h2, h2_mem_malloc, h2_mem_free, h2_mem_calloc, h2_mem_realloc };
	rc = nghttp2_session_server_new3(&h2->s, callbacks, h2, opt, &h2->mem);
	nghttp2_option_del(opt);
	if (rc != 0) {
		h2->s = NULL;
		return -1;
	}
	{
		nghttp2_settings_entry iv[] = {
			{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->http2_max_concurrent_streams },
			{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
			{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->limits.max_head },
			{ NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 },
			{ NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 },
		};

		if (nghttp2_submit_settings(h2->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
		    nghttp2_session_set_local_window_size(h2->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
			nghttp2_session_del(h2->s);
			h2->s = NULL;
			return -1;
		}
		h2->settings_unacked = 1;
	}
	return 0;
}

int http2_start(struct conn *c)
{
	struct h2_conn *h2 = calloc(1, sizeof(*h2));

	if (h2 == NULL || session_new(h2, c->w->config) < 0) {
		free(h2);
		httpd_log(HTTPD_LOG_ERR, "%s: out of memory starting HTTP/2", c->peer);
		return -1;
	}
	h2->c = c;
	h2->streams.next = h2->streams.prev = &h2->streams;
	h2->zombies.next = h2->zombies.prev = &h2->zombies;
	h2->release.fire = h2_release_fire;
	slot_of(c)->h2 = h2;
	c->tx_gather = true;   /* h2_flush sends what the transport holds */
	c->proto = &http2_protocol;
	timer_arm(c->w->timers, TIMER_HEADER, &c->timer, c->w->now_ms);
	http2_run(c);
	return 0;
}
