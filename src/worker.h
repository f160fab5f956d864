/* A worker process: privilege drop, event loop, accept, timeouts. */
#ifndef HTTPD_WORKER_H
#define HTTPD_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "timer.h"

enum event_kind { EVENT_LISTENER, EVENT_CONN, EVENT_SIGNAL };

/* First member of everything registered with epoll. */
struct event_source {
	enum event_kind kind;
};

enum timer_kind { TIMER_HEADER, TIMER_BODY, TIMER_KEEPALIVE, TIMER_SEND, TIMER_LINGER, TIMER_KINDS };

struct listener {
	struct event_source ev;
	int                 fd;
};

struct conn;

struct worker {
	int                         id;
	int                         epfd;
	const struct httpd_config  *config;
	struct listener            *listeners;
	size_t                      listener_count;
	bool                        exclusive;  /* shared sockets: EPOLLEXCLUSIVE */
	bool                        accepting;
	bool                        quitting;
	struct timer_list           timers[TIMER_KINDS];
	uint64_t                    now_ms;     /* monotonic */
	time_t                      now;        /* wall clock, for Date and logs */
	size_t                      conn_count;
	struct conn                *free_conns;
};

struct worker_setup {
	int                         id;
	const struct httpd_config  *config;
	const int                  *listen_fds;
	size_t                      listen_count;
	bool                        exclusive;   /* shared sockets: EPOLLEXCLUSIVE */
	uid_t                       uid;
	gid_t                       gid;
	bool                        drop_privileges;
};

/* Runs a worker until it is told to stop; returns the exit status. */
int worker_run(const struct worker_setup *setup);

/* Called by connections when they close, so accepting can resume. */
void worker_conn_closed(struct worker *w);

#endif
