/*
 * The HTTP/1.1 codec over a connection: finds and parses request heads,
 * frames request bodies (Content-Length, chunked) into the body phase, and
 * writes responses (head and small body in one call, files with sendfile,
 * streams chunked) through the connection's transport.  It is one
 * connection protocol (event/conn.h); its state lives in the connection's
 * protocol data.
 */
#ifndef HTTPD_HTTP1_H
#define HTTPD_HTTP1_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "conn.h"

struct request;
struct tunnel;

enum http1_state {
	H1_READ_HEAD,     /* waiting for (the rest of) a request head */
	H1_READ_BODY,     /* the request body streams in */
	H1_HANDLER,       /* a gate or an asynchronous handler has not answered yet */
	H1_WRITE,         /* the response goes out */
	H1_TUNNEL,        /* after 101: bytes relayed both ways (http/tunnel.c) */
};

struct http1 {
	enum http1_state   state;
	bool               keep_alive;
	bool               linger;         /* unread input may follow: drain before close */
	bool               got_bytes;      /* part of a request has arrived */
	bool               chunked_out;
	bool               stream_active;
	bool               stream_waiting; /* the module's stream said HTTPD_STREAM_AGAIN */
	unsigned           requests;
	size_t             scan;           /* http_head_find resume point */
	struct request    *req;            /* the request being served, or NULL */
	/* output */
	int                iov_idx, iov_cnt;
	struct iovec       iov[3];
	int                file_fd;        /* what file_left bytes come from: the body's file, or a chain's range */
	off_t              file_off, file_left;
	bool               crlf_owed;      /* a chunk sent from a file still needs its closing CRLF */
	char              *stream_buf;
	char               chunk_head[28];
	struct tunnel     *tunnel;         /* H1_TUNNEL */
};

static inline struct http1 *http1_of(struct conn *c)
{
	return (struct http1 *)(void *)c->proto_data;
}

extern const struct conn_protocol http1_protocol;

/* c speaks HTTP/1.1 from now on: its first request head is read at once. */
void http1_start(struct conn *c);

#endif
