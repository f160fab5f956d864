/*
 * Upstream groups: their servers, how a request picks one (smooth weighted
 * round-robin, or least connections), passive health (max_fails within
 * fail_timeout take a server out for fail_timeout), and each worker's pool
 * of idle keep-alive connections.  Built in the master from the
 * configuration; the run-time counters are each worker's own (copied at
 * fork), so no lock is ever taken.  The pools of idle connections are
 * the proxy module's (proxy.c), kept per server here.
 */
#ifndef HTTPD_UPSTREAM_H
#define HTTPD_UPSTREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum upstream_balance { BALANCE_ROUND_ROBIN, BALANCE_LEAST_CONN };

struct upstream_conn;   /* proxy.c: a connection and its event */

struct upstream_server {
	char                    *name;        /* as written: "127.0.0.1:8000", "unix:/run/app.sock", "app.internal:8000" */
	struct sockaddr_storage  addr;
	socklen_t                addrlen;     /* 0: a slot of a name with no address in it (never picked) */
	int                      weight;
	/* A server given by name: one of UPSTREAM_NAME_SLOTS slots, each holding one of its addresses. */
	char                    *host;        /* the name, NULL for an address as written */
	uint16_t                 port;
	size_t                   first_slot;  /* the index of the name's first slot */
	char                     addr_text[64];   /* "10.0.0.5:8000" for a slot of a name */
	unsigned                 generation;  /* per worker: bumped when the slot's address changes */
	/* per worker */
	int                      current;     /* smooth weighted round-robin */
	unsigned                 active;      /* requests using it now */
	unsigned                 fails;
	uint64_t                 fail_window_ms;   /* when the first of fails happened */
	uint64_t                 down_until_ms;
	struct upstream_conn   **idle;        /* keepalive slots, oldest first */
	size_t                   idle_count;
};

/* Active health, in memory shared by every worker: one worker probes, all of them read. */
struct upstream_health {
	_Atomic unsigned char down;
};

/* Addresses kept for a server given by name: the first this many of what it resolves to. */
#define UPSTREAM_NAME_SLOTS 16

struct upstream_resolver;   /* resolve.c */

struct upstream {
	char                   *name;
	struct upstream_server *servers;
	size_t                  count;
	size_t                  named;              /* servers given by name (each UPSTREAM_NAME_SLOTS slots) */
	char                   *resolver;           /* "IP[:port],..." for c-ares, NULL: /etc/resolv.conf */
	unsigned                resolver_valid_ms;  /* re-resolved at least this often (the records' TTL, within it) */
	struct upstream_resolver *res;              /* per worker */
	enum upstream_balance   balance;
	unsigned                max_fails;
	unsigned                fail_timeout_ms;
	unsigned                keepalive;
	unsigned                keepalive_timeout_ms;
	char                   *health_check;       /* path probed, or NULL */
	unsigned                health_interval_ms;
	struct upstream_health *health;             /* count entries, shared; NULL without health_check */
};

/*
 * "127.0.0.1:8000", "[::1]:8001", "unix:/run/app.sock" or "NAME:PORT" (a
 * DNS name: host is set and no address yet), each optionally followed by
 * " weight=N" (1..100).  -1 with a reason in err.
 */
int upstream_server_parse(const char *text, struct upstream_server *s, char *err, size_t errlen);
/*
 * The addresses a name resolved to (n of them, the first
 * UPSTREAM_NAME_SLOTS used) into its slots, first..first+UPSTREAM_NAME_SLOTS:
 * an address that stays keeps its slot (and so its pooled connections and
 * counters); a slot whose address went is emptied and handed to gone()
 * (to close its pooled connections) before a new address may take it.
 * Returns how many slots changed.
 */
size_t upstream_name_set(struct upstream *u, size_t first, const struct sockaddr_storage *addrs, size_t n,
                         void (*gone)(struct upstream *u, struct upstream_server *s));
/* Maps the shared health table (in the master, before the workers exist); -1 with errno. */
int upstream_health_map(struct upstream *u);
/* Frees what an upstream holds (not the struct itself); closes idle connections. */
void upstream_release(struct upstream *u);

/* The server for the next request, skipping those down and those in tried (a bit per index); NULL if none. */
struct upstream_server *upstream_pick(struct upstream *u, uint64_t now_ms, uint64_t tried);
/* The outcome of a request on s: failures count towards max_fails. */
void upstream_failed(struct upstream *u, struct upstream_server *s, uint64_t now_ms);
void upstream_succeeded(struct upstream_server *s);

#endif
