/*
 * One client connection: its transport, input buffer, timeouts and
 * keep-alive, and the request it is serving.  The HTTP/1 codec
 * (http/http1.c) drives it; a request (http/request.h) is a separate object
 * the connection owns, one at a time on HTTP/1.1.
 */
#ifndef HTTPD_CONN_H
#define HTTPD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "timer.h"
#include "transport.h"
#include "worker.h"

enum conn_state {
	CONN_PROXY,         /* a PROXY protocol preamble comes first (event/conn_proxy.c) */
	CONN_READ_HEAD,     /* waiting for (the rest of) a request head */
	CONN_READ_BODY,     /* the request body streams in */
	CONN_HANDLER,       /* an asynchronous handler has not answered yet */
	CONN_WRITE,         /* the response goes out */
	CONN_LINGER,        /* response sent, draining input before the close */
	CONN_TUNNEL,        /* after 101: bytes relayed both ways (http/tunnel.c) */
};

struct request;
struct conn_proxy;
struct listener;
struct httpd_server;
struct tunnel;

struct conn {
	struct event_source          ev;
	int                          fd;
	const struct transport      *transport;
	void                        *transport_data;
	enum conn_state              state;
	/* The flags sit together: an idle connection costs its struct, so padding counts. */
	bool                         readable;     /* edge-triggered readiness we have not used up */
	bool                         drained;      /* a short read emptied the socket, no event since */
	bool                         writable;
	bool                         peer_closed;  /* EPOLLRDHUP, HUP or ERR seen */
	bool                         out_watched;  /* EPOLLOUT asked for (after a full socket) */
	bool                         registered;   /* in the worker's epoll set (added once it has to wait) */
	bool                         tls_listener; /* TLS starts after the PROXY preamble */
	bool                         tls_read_wants_write;  /* a TLS read waits for the socket to drain */
	bool                         tls_write_wants_read;
	bool                         got_bytes;    /* part of a request has arrived */
	bool                         keep_alive;
	bool                         linger;       /* unread input may follow: drain before close */
	bool                         chunked_out;
	bool                         stream_active;
	bool                         stream_waiting;   /* the module's stream said HTTPD_STREAM_AGAIN */
	bool                         closed;       /* waiting for the end of the epoll batch to be reused */
	bool                         deferred;     /* on the worker's deferred list */
	bool                         yielded;      /* on the worker's yielded list */
	bool                         corked;       /* TCP_CORK set: the connection closes after its last bytes */
	struct worker               *w;
	struct timer                 timer;
	const struct listener       *listener;
	unsigned                     peer_port;
	unsigned                     local_port;
	char                         peer[INET6_ADDRSTRLEN];   /* a PROXY preamble's source replaces it */
	const char                  *local;        /* resolved on the first request; NULL before */
	char                        *local_owned;  /* what local points to when a wildcard listener made us ask */
	struct conn_proxy           *proxy;        /* what a PROXY preamble said, or NULL */
	const struct httpd_server   *sni_server;   /* TLS: the server the SNI named (or the default), or NULL */
	bool                         tls_no_sni;   /* TLS without SNI: the default server's settings hold */

	/* input: bytes [in_off, in_len) of in are unconsumed */
	char                        *in;
	size_t                       in_off, in_len, in_cap;
	size_t                       scan;         /* http_head_find resume point */

	struct request              *req;          /* the request being served, or NULL */
	struct httpd_pool           *spare_pool;   /* reused by the next request */
	unsigned                     requests;

	/* output of the HTTP/1 codec */
	int                          iov_idx, iov_cnt;
	struct iovec                 iov[3];
	off_t                        file_off, file_left;
	char                        *stream_buf;
	char                         chunk_head[24];

	struct tunnel               *tunnel;       /* CONN_TUNNEL */
	struct conn                 *next_deferred;
	struct conn                 *next_yielded;
	struct conn                 *next_free;
};

/* Takes over an accepted socket; reads at once (TCP_DEFER_ACCEPT means data is likely there). */
void conn_open(struct worker *w, int fd, const struct sockaddr *peer, const struct listener *l);
void conn_event(struct conn *c, uint32_t events);
/* Runs the state machine again (after a module finished a pending response). */
void conn_resume(struct conn *c);
/* A timeout fired for c. */
void conn_timeout(struct conn *c, enum timer_kind kind);
void conn_close(struct conn *c);
/*
 * Between requests on a kept-alive connection: give the input buffer and the
 * pool back to the worker, so an idle connection costs only its struct.
 */
void conn_idle(struct conn *c);
/* A pool for a new request on c: its own, a recycled one, or a new one; NULL out of memory. */
struct httpd_pool *conn_pool_take(struct conn *c);

/*
 * Reads into the input buffer; 1 if bytes arrived, 0 if none are ready
 * (or the buffer is full), -1 if the connection was closed.
 */
int conn_fill(struct conn *c);
/*
 * Grows the input buffer to at least cap bytes, keeping what it holds (the
 * worker's spare large buffer first), so a long body is read in large turns;
 * false (the buffer unchanged) out of memory.
 */
bool conn_in_reserve(struct conn *c, size_t cap);
/* Gives the input buffer back if it holds nothing unread: a stalled upload keeps none. */
void conn_in_release(struct conn *c);
/* The socket took no more: wait for EPOLLOUT (asked for only now, so a response costs no extra event). */
void conn_wait_writable(struct conn *c);
/* Sends a short fixed message right now if the socket takes it (100 Continue, a final 408). */
bool conn_send_now(struct conn *c, const char *msg, size_t len);
/* Lingering close: reads and drops input; 0 to wait for more, -1 once closed. */
int conn_linger(struct conn *c);
/* "127.0.0.1" and 8080 from a socket address (brackets stripped); "unix:PATH" and 0 for AF_UNIX. */
void conn_addr_split(const struct sockaddr *sa, char *out, size_t size, unsigned *port);
/* The local address, resolved once per connection. */
void conn_local_resolve(struct conn *c);

#endif
