/* One client connection: reading requests, writing responses, keep-alive. */
#ifndef HTTPD_CONN_H
#define HTTPD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "http_parse.h"
#include "http_response.h"
#include "timer.h"
#include "worker.h"

enum conn_state { CONN_READ_HEAD, CONN_READ_BODY, CONN_WRITE, CONN_LINGER };

struct conn {
	struct event_source          ev;
	int                          fd;
	enum conn_state              state;
	bool                         readable;     /* edge-triggered readiness we have not used up */
	bool                         writable;
	struct worker               *w;
	struct timer                 timer;
	char                         peer[64];

	/* input: bytes [in_off, in_len) of in are unconsumed */
	char                        *in;
	size_t                       in_off, in_len, in_cap;
	size_t                       scan;         /* http_head_find resume point */
	bool                         got_bytes;    /* part of a request has arrived */

	/* the request being served */
	struct httpd_pool           *pool;
	struct http_head             head;
	struct httpd_request         req;
	struct httpd_response        res;
	const struct httpd_location *loc;
	const char                  *allow;        /* Allow header for 405 and OPTIONS */
	char                        *body;         /* owned, freed per request */
	size_t                       body_len, body_cap;
	uint64_t                     body_expected;
	struct http_chunked          chunked;
	bool                         keep_alive;
	bool                         linger;       /* unread input may follow: drain before close */
	unsigned                     requests;

	/* output */
	struct iovec                 iov[3];
	int                          iov_idx, iov_cnt;
	off_t                        file_off, file_left;
	bool                         chunked_out;
	bool                         stream_active;
	char                        *stream_buf;
	char                         chunk_head[24];
	uint64_t                     body_sent;
	size_t                       head_len;

	struct conn                 *next_free;
};

/* Takes over an accepted socket; reads at once (TCP_DEFER_ACCEPT means data is likely there). */
void conn_open(struct worker *w, int fd, const struct sockaddr *peer);
void conn_event(struct conn *c, uint32_t events);
/* A timeout fired for c. */
void conn_timeout(struct conn *c, enum timer_kind kind);
void conn_close(struct conn *c);
/* Graceful stop: close c if it is idle between requests. */
void conn_close_if_idle(struct conn *c);

/* Starts sending c->res (request.c calls it once the response is filled). */
void conn_respond(struct conn *c);
/* Replaces the response by an error page and sends it; close forces Connection: close. */
void conn_respond_error(struct conn *c, int status, bool close);

#endif
