/*
 * A request, apart from the connection that carries it: head, routed
 * location, the request and response objects modules see, body state,
 * per-request pool and notes.  The phases run here, in order:
 *   begin (route, method, core limits) -> check -> body (body-check) ->
 *   handler (now or later) -> filters -> [codec sends] -> log.
 * Nothing here knows the protocol: the one that made the request (HTTP/1
 * today) installs its output table, and the phases answer through it.
 */
#ifndef HTTPD_REQUEST_H
#define HTTPD_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "body.h"
#include "config.h"
#include "location.h"
#include "http_parse.h"
#include "http_response.h"

struct conn;
struct worker;
struct httpd_event;

struct request;

/* How a request's protocol answers it and reads its body. */
struct request_output {
	/* r->res is final (a handler's, a check's, the core's or an error page): send it. */
	void (*respond)(struct request *r);
	/* A streamed body that said HTTPD_STREAM_AGAIN has more (httpd_response_stream_wake). */
	void (*send_body)(struct request *r);
	/* The handler answers later (HTTPD_PENDING): wait for it, within handler_timeout. */
	void (*wait)(struct request *r);
	/* The handler that waited has answered (respond already ran): the protocol goes on. */
	void (*finish)(struct request *r);
	/* A gate that waited (REQUEST_WAIT) decided: 0 lets the request on to its checks, else a status. */
	void (*gate_done)(struct request *r, int rc);
	/* A check that waited (HTTPD_PENDING) decided: HTTPD_DECLINED goes on, HTTPD_OK answers, else a status. */
	void (*checks_done)(struct request *r, int rc);
	/* A body check that waited at END decided: 0 as after body_end, else a status. */
	void (*body_checked)(struct request *r, int rc);
	/* A module pauses the body (httpd_request_body_pause): its read timeout stops meanwhile. */
	void (*body_pause)(struct request *r);
	/* A body a module paused is wanted again (httpd_request_body_resume). */
	void (*body_resume)(struct request *r);
	/* The request is answered before its body was read: the body must not pass for the next request. */
	void (*body_unread)(struct request *r);
};

/* Which of a request's checks is waiting (returned HTTPD_PENDING) for httpd_request_check_done. */
enum check_wait { CHECK_WAIT_NONE, CHECK_WAIT_HEAD, CHECK_WAIT_BODY };

struct request_note {
	const char          *key;
	void                *value;
	struct request_note *next;
};

struct request_cancel {
	void                 (*fn)(void *arg);
	void                  *arg;
	struct request_cancel *next;
};

struct request {
	struct conn                 *conn;       /* NULL once the client is gone */
	const struct request_output *out;
	void                        *stream;     /* the protocol's own state for this request (an HTTP/2 stream) */
	struct worker               *w;
	struct httpd_pool           *pool;       /* holds this struct too */
	struct http_head             head;
	struct httpd_request         req;        /* what modules see */
	struct httpd_response        res;
	const struct httpd_location *loc;
	const struct httpd_server   *server;     /* the virtual host, once the head is parsed */
	const char                  *allow;      /* Allow header for 405 and OPTIONS */
	struct request_body          body;
	struct request_note         *notes;
	struct request_cancel       *cancels;
	struct httpd_event          *events;     /* module fd and timer events */
	unsigned                     jobs;       /* blocking jobs not yet done */
	bool                         pending;    /* the handler answers later */
	bool                         aborted;    /* client gone while jobs ran */
	const char                  *remote_user;   /* auth_basic: the user who passed */
	const char                  *limit_req_status;   /* $limit_req_status: PASSED, DELAYED, ... */
	unsigned                     gate;       /* request_gate: the next limit_req to apply */
	bool                         limits_done;
	unsigned                     check_next;    /* request_check: the next check module to ask */
	enum check_wait              check_waiting;
	uint64_t                     started_ms;
	uint64_t                     started_us;  /* precise, only when the log format shows request time */
	size_t                       head_bytes;  /* the head as received, blank lines before it included */
	unsigned                     conn_seq;    /* the connection's how-manieth request (from 1), set by its protocol */
	struct captures              captures;    /* of the last regex that matched: $1 ... $9, named groups */
	unsigned                     redirects;   /* internal redirects so far (rewrite last, try_files) */
};

static inline struct request *request_of(const struct httpd_request *req)
{
	return (struct request *)(uintptr_t)((const char *)req - offsetof(struct request, req));
}

/* A new request on c that out answers, in c's spare pool or a new one; NULL out of memory. */
struct request *request_create(struct conn *c, const struct request_output *out);

/*
 * After the head is parsed: fill the request object, route, apply method
 * and core body limits.  0 to go on, REQUEST_ANSWERED when the core
 * answered (OPTIONS), or an error status.
 */
#define REQUEST_ANSWERED 1
int request_begin(struct request *r);

/*
 * The core's gates after routing, before the check modules: limit_req
 * (a delayed request waits on a timer), limit_conn, then auth_basic (its
 * hash runs on the thread pool).  0 to go on, an error status, or
 * REQUEST_WAIT: r->out->gate_done is called with the verdict later.
 */
#define REQUEST_WAIT 2
int request_gate(struct request *r);

/*
 * Check phase: HTTPD_DECLINED to go on, HTTPD_OK when a check answered, an
 * error status, or REQUEST_WAIT when a check decides later: then
 * r->out->checks_done gets the verdict.
 */
int request_check(struct request *r);
/*
 * body_end for a protocol: BODY_WAIT when a body check decides later, and
 * r->out->body_checked then gets what body_end would have returned.
 */
int request_body_end(struct request *r);

/* Handler phase (body complete): responds now, or leaves the request pending. */
void request_handle(struct request *r);

/* An OK response from a handler or check: filters, then the codec sends it. */
void request_respond(struct request *r);
/* An error response (the operator's error_page or a built-in page), module headers kept. */
void request_fail(struct request *r, int status);

/* Log phase, then the request is freed (its pool goes back to the connection). */
void request_done(struct request *r);
/* The connection is gone: cancel what is pending, free now or once blocking jobs return. */
void request_abort(struct request *r);
/* A blocking job of r has returned; false if r was aborted meanwhile (and maybe freed). */
bool request_job_returned(struct request *r);

#endif
