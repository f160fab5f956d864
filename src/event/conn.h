/*
 * One client connection: its transport, input buffer, timeouts and the
 * protocol that runs on it.  The event layer knows no protocol: a protocol
 * (HTTP/1 in http/http1.c) installs its table and keeps its own state in
 * the connection's protocol data, so the connection is one allocation.
 */
#ifndef HTTPD_CONN_H
#define HTTPD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "timer.h"
#include "transport.h"
#include "worker.h"

struct conn;
struct conn_proxy;
struct listener;
struct httpd_server;

/* What a protocol does on a connection; the worker and the connection call only these. */
struct conn_protocol {
	const char *name;
	/* Readiness or a resume: go on until the socket or a module makes it wait. */
	void (*run)(struct conn *c);
	/* A timer of this kind fired (the connection's own, TIMER_PROXY and TIMER_LINGER, never come here). */
	void (*timeout)(struct conn *c, enum timer_kind kind);
	/* A graceful stop reached this quiet (kept-alive) connection: close it, or tell the peer first; either way it leaves the keep-alive list. */
	void (*drain)(struct conn *c);
	/* The connection closes: cancel whatever it serves (runs once, before the transport closes). */
	void (*abort)(struct conn *c);
	/* A graceful stop began: take no new requests, finish those under way (NULL: nothing to say). */
	void (*quiesce)(struct conn *c);
};

struct conn {
	struct event_source          ev;
	int                          fd;
	/* In the hole after fd: the transport's output, which HTTP/2 flushes (see transport.h). */
	bool                         tx_gather;    /* the protocol calls transport->flush: TLS may gather records */
	bool                         tx_holding;   /* the transport holds bytes the socket has not taken */
	const struct transport      *transport;
	void                        *transport_data;
	const struct conn_protocol  *proto;        /* NULL until conn_begin installs one */
	/* The flags sit together: an idle connection costs its struct, so padding counts. */
	bool                         preamble;     /* a PROXY protocol preamble comes first (event/conn_proxy.c) */
	bool                         lingering;    /* answered for good: input is drained until the close */
	bool                         readable;     /* edge-triggered readiness we have not used up */
	bool                         drained;      /* a short read emptied the socket, no event since */
	bool                         writable;
	bool                         peer_closed;  /* EPOLLRDHUP, HUP or ERR seen */
	bool                         out_watched;  /* EPOLLOUT asked for (after a full socket) */
	bool                         registered;   /* in the worker's epoll set (added once it has to wait) */
	bool                         tls_listener; /* TLS starts after the PROXY preamble */
	bool                         tls_read_wants_write;  /* a TLS read waits for the socket to drain */
	bool                         tls_write_wants_read;
	bool                         closed;       /* waiting for the end of the epoll batch to be reused */
	bool                         deferred;     /* on the worker's deferred list */
	bool                         yielded;      /* on the worker's yielded list */
	bool                         corked;       /* TCP_CORK set: the connection closes after its last bytes */
	bool                         tls_no_sni;   /* TLS without SNI: the default server's settings hold */
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

	/* input: bytes [in_off, in_len) of in are unconsumed */
	char                        *in;
	size_t                       in_off, in_len, in_cap;

	struct httpd_pool           *spare_pool;   /* reused by the connection's next request */
	struct conn                 *open_prev, *open_next;   /* the worker's open connections */
	struct conn                 *next_deferred;
	struct conn                 *next_yielded;
	struct conn                 *next_free;
	/* The protocol's state (conn_data_reserve says how much): no second allocation per connection. */
	max_align_t                  proto_data[];
};

/* Every connection carries size bytes of protocol data (called once, before the first accept). */
void conn_data_reserve(size_t size);

/* Takes over an accepted socket; reads at once (TCP_DEFER_ACCEPT means data is likely there). */
void conn_open(struct worker *w, int fd, const struct sockaddr *peer, const struct listener *l);
/* Runs the protocol again (after a module finished a pending response). */
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
/* A finished request's pool, reset, for the next request on c or another connection (or freed). */
void conn_pool_give(struct conn *c, struct httpd_pool *pool);

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
/*
 * Lingering close, once the last bytes are written: no more writes, and
 * input is read and dropped until the peer closes (or TIMER_LINGER), so
 * the answer is not lost to a reset.  write_shut: shut the write side here
 * (false if the caller already did).  -1 if the connection closed.
 */
int conn_linger_begin(struct conn *c, bool write_shut);
/* "127.0.0.1" and 8080 from a socket address (brackets stripped); "unix:PATH" and 0 for AF_UNIX. */
void conn_addr_split(const struct sockaddr *sa, char *out, size_t size, unsigned *port);
/* The local address, resolved once per connection. */
void conn_local_resolve(struct conn *c);

#endif
