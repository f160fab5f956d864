/*
 * A worker process's event loop: privilege drop, accept, timeouts, signals,
 * the blocking-work pool.  What runs on a connection is its protocol's
 * (conn.h); what the upper layers set up per process comes in as hooks.
 */
#ifndef HTTPD_WORKER_H
#define HTTPD_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "timer.h"

/* First member of everything registered with epoll: epoll hands it back, and it says who handles it. */
struct event_source {
	void (*ready)(struct event_source *src, uint32_t events);
};

/* Connection timeouts: one FIFO list per kind, since every entry of a kind has the same timeout. */
enum timer_kind {
	TIMER_PROXY, TIMER_HEADER, TIMER_BODY, TIMER_KEEPALIVE, TIMER_SEND, TIMER_HANDLER, TIMER_LINGER,
	TIMER_KINDS
};

/* A timer with its own deadline (module timers): kept in one list sorted by deadline. */
struct deadline {
	struct deadline *prev, *next;
	uint64_t         at;
	void           (*fire)(struct deadline *d);
};

struct worker;

struct listener {
	struct event_source            ev;
	struct worker                 *w;
	int                            fd;
	const struct sockaddr_storage *addr;   /* as bound: the local address unless a wildcard */
	unsigned                       flags;  /* LISTEN_* */
	bool                           wildcard;    /* each connection asks getsockname for its address */
	unsigned                       local_port;
	char                           local[128];  /* the address as text when not a wildcard ("unix:PATH" fits) */
};

struct conn;
struct threadpool;

/*
 * What the layers above the event loop add to a worker process, so the
 * loop never calls up: the daemon fills these in.
 */
struct worker_hooks {
	/* After the privilege drop, before the modules' worker_init: -1 stops the worker. */
	int  (*init)(const struct httpd_config *config);
	/* After the modules' worker_exit. */
	void (*exit)(void);
	/* A connection is accepted (and past its PROXY preamble): start its transport and protocol; -1 closes it. */
	int  (*conn_begin)(struct conn *c);
	/* End of each round of events: what the handlers freed can go now. */
	void (*round_end)(void);
};

/*
 * Spares kept per worker.  Pools: as many as the default
 * http2_max_concurrent_streams, so a connection using all its streams
 * takes no pool from malloc in steady state (8 KiB each, 1 MiB at most).
 */
#define WORKER_SPARE_BUFS  64
#define WORKER_SPARE_POOLS 128

struct worker {
	int                         id;
	int                         epfd;
	const struct httpd_config  *config;
	struct listener            *listeners;
	size_t                      listener_count;
	bool                        exclusive;  /* shared sockets: EPOLLEXCLUSIVE */
	bool                        accepting;
	bool                        quitting;
	uint64_t                    quit_deadline;  /* when a graceful stop gives up on open requests */
	bool                        drain_gradual;  /* SIGQUIT/reload: quiet kept-alive connections close a few at a time */
	size_t                      drain_per_tick; /* how many at a time */
	uint64_t                    drain_tick_at;
	bool                        draining;   /* a stop or reload has begun: readiness fails */
	struct timer_list           timers[TIMER_KINDS];
	struct deadline             deadlines;  /* sentinel of the sorted list */
	uint64_t                    now_ms;     /* monotonic */
	time_t                      now;        /* wall clock, for Date and logs */
	size_t                      conn_count;
	struct conn                *open_conns;  /* every open connection, for a graceful stop to tell */
	struct conn                *free_conns;
	struct conn                *closed_conns;  /* closed in this epoll batch: free_conns after it */
	struct conn                *deferred;   /* to run again once the current event is handled */
	struct conn                *yielded;    /* to run again after the next epoll_wait (a large body's turn) */
	struct threadpool          *pool;       /* blocking work, started on first use */
	struct event_source         pool_source;
	struct event_source         signal_source;
	struct event_source         control_source;
	int                         signal_fd;
	int                         control_fd;
	bool                        stop_now;       /* SIGINT: leave the loop at once */
	const struct worker_hooks  *hooks;
	uint64_t                    log_flush_at;  /* when buffered access log lines go out, 0: none */
	uint64_t                    request_seq;
	uint64_t                    request_id_base;
	/* Input buffers and pools of connections gone idle, for busy ones to reuse: no malloc per request. */
	char                       *spare_bufs[WORKER_SPARE_BUFS];
	size_t                      spare_buf_count;
	struct httpd_pool          *spare_pools[WORKER_SPARE_POOLS];
	size_t                      spare_pool_count;
	char                       *spare_big;      /* one larger input buffer (a body's turns, a long head) */
	size_t                      spare_big_cap;
	/* PROXY protocol connections closed unanswered, by reason (for logs and status) */
	uint64_t                    proxy_refused_from;     /* peer outside proxy_protocol_from */
	uint64_t                    proxy_refused_invalid;  /* malformed, oversized or cut short */
	uint64_t                    proxy_refused_timeout;  /* no complete preamble in time */
	size_t                      freed_bytes;    /* given back to malloc since the last trim */
	uint64_t                    trimmed_at;
	uint64_t                    gauges_at;      /* scoreboard connection gauges, once a second */
};

struct worker_setup {
	int                            id;
	const struct httpd_config     *config;
	const int                     *listen_fds;
	const struct sockaddr_storage *const *listen_addrs;
	const unsigned                *listen_flags;
	size_t                         listen_count;
	bool                           exclusive;   /* shared sockets: EPOLLEXCLUSIVE */
	uid_t                          uid;
	gid_t                          gid;
	bool                           drop_privileges;
	/* With the master: it sends reopened logs, we send "R" once accepting; -1 if none. */
	int                            control_fd;
	int                            score_slot;  /* ours in the scoreboard, -1 if none */
	const struct worker_hooks     *hooks;
};

/* Runs a worker until it is told to stop; returns the exit status. */
int worker_run(const struct worker_setup *setup);

/* The worker of this process (module API calls find it here). */
struct worker *worker_current(void);

/* Called by connections when they close, so accepting can resume. */
void worker_conn_closed(struct worker *w);

/* Runs c's state machine again after the event being handled (a module finished a response). */
void worker_defer(struct worker *w, struct conn *c);
/*
 * c has written its share for now: it goes on after the next epoll_wait
 * (which then does not sleep), once the other ready connections had theirs.
 */
void worker_yield(struct worker *w, struct conn *c);
void worker_yield_cancel(struct worker *w, struct conn *c);

void deadline_arm(struct worker *w, struct deadline *d, uint64_t ms);
void deadline_disarm(struct deadline *d);

/* The worker's thread pool, started on first use; NULL if it cannot start. */
struct threadpool *worker_threadpool(struct worker *w);

#endif
