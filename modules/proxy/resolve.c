/*
 * Upstream servers given by name (a Kubernetes Service, a Consul name):
 * resolved with c-ares when the configuration loads, then again in the
 * background by every worker, in its event loop, after the records' TTL
 * (at least a second, at most resolver_valid).  A name's addresses fill its
 * slots (upstream_name_set): an address that stays keeps its slot and its
 * pooled connections, one that went is emptied, a new one takes a free
 * slot, all without a reload.  A name that stops resolving keeps its last
 * good addresses, and the failure is logged.  HAProxy's resolvers section
 * and nginx's resolve parameter are the anchors.
 */
#include "resolve.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <httpd/module.h>

#define LOAD_TIMEOUT_MS  5000
#define RETRY_FIRST_MS   1000
#define SOCKETS_MAX      16

struct upstream_resolver;

struct resolve_fd {
	struct upstream_resolver *res;
	ares_socket_t             fd;
	struct httpd_event       *ev;
	unsigned                  events;
};

/* A worker's resolver for one upstream: a c-ares channel on the worker's loop. */
struct upstream_resolver {
	struct upstream    *u;
	ares_channel        channel;
	struct resolve_fd   fds[SOCKETS_MAX];
	struct httpd_event *timeout;     /* c-ares' own retransmissions */
	struct httpd_event *next;        /* the next round */
	size_t              pending;     /* names of this round not yet answered */
	bool                round_failed;
	uint64_t            next_ms;     /* the round's shortest TTL, bounded */
	unsigned            retry_ms;    /* after a failure: doubles up to resolver_valid */
	bool               *failing;     /* per name: logged already */
	upstream_gone_fn    gone;
};

struct name_query {
	struct upstream_resolver *res;
	size_t                    first;   /* the name's first slot */
	/* at load: where the answer goes */
	int                       status;
	struct sockaddr_storage   addrs[UPSTREAM_NAME_SLOTS];
	size_t                    n;
	unsigned                  ttl_ms;
	bool                      done;
};

static int library_ready(char *err, size_t errlen)
{
	static bool ready;
	int rc;

	if (ready)
		return 0;
	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	ready = true;
	return 0;
}

/* "127.0.0.53" or "127.0.0.1:5353" or "[::1]:53": c-ares' "host:port" list, checked here. */
int resolver_read(const struct httpd_conf *sec, struct upstream *u, const char *origin, char *err, size_t errlen)
{
	size_t n = httpd_conf_count(sec, "resolver"), len = 0, used = 0;
	uint64_t valid = 30000;

	(void)httpd_conf_duration(sec, "resolver_valid", &valid);
	u->resolver_valid_ms = (unsigned)valid;
	if (n == 0)
		return 0;   /* /etc/resolv.conf's, and /etc/hosts first */
	for (size_t i = 0; i < n; i++)
		len += strlen(httpd_conf_list_str(sec, "resolver", i)) + 1;
	u->resolver = calloc(1, len);   /* "a,b,c": each with its comma or, the last, its NUL */
	if (u->resolver == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *r = httpd_conf_list_str(sec, "resolver", i);
		char host[64];
		const char *colon = r[0] == '[' ? strstr(r, "]:") : strrchr(r, ':');
		size_t hl = colon != NULL && r[0] != '[' && strchr(r, ':') == colon ? (size_t)(colon - r) : strlen(r);
		unsigned char buf[sizeof(struct in6_addr)];

		if (r[0] == '[') {
			const char *close_br = strchr(r, ']');

			hl = close_br != NULL ? (size_t)(close_br - r - 1) : 0;
			memcpy(host, r + 1, hl < sizeof(host) ? hl : 0);
		} else {
			memcpy(host, r, hl < sizeof(host) ? hl : 0);
		}
		if (hl == 0 || hl >= sizeof(host)) {
			snprintf(err, errlen, "%s: upstream \"%s\": resolver \"%s\" is not an address", origin, u->name, r);
			return -1;
		}
		host[hl] = '\0';
		if (inet_pton(strchr(host, ':') != NULL ? AF_INET6 : AF_INET, host, buf) != 1) {
			snprintf(err, errlen, "%s: upstream \"%s\": resolver \"%s\" must be an IP address, with a port or not",
			         origin, u->name, r);
			return -1;
		}
		memcpy(u->resolver + used, r, strlen(r));
		used += strlen(r);
		u->resolver[used++] = i + 1 < n ? ',' : '\0';
	}
	return 0;
}

static int channel_make(const struct upstream *u, ares_channel *channel, struct ares_options *opts, int mask,
                        char *err, size_t errlen)
{
	int rc;

	if (library_ready(err, errlen) < 0)
		return -1;
	rc = ares_init_options(channel, opts, mask);
	if (rc == ARES_SUCCESS && u->resolver != NULL)
		rc = ares_set_servers_ports_csv(*channel, u->resolver);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		if (*channel != NULL)
			ares_destroy(*channel);
		*channel = NULL;
		return -1;
	}
	return 0;
}

/* The addresses (and the shortest TTL) of an answer, with the name's port. */
static void answer_read(struct name_query *q, const struct upstream_server *s, int status,
                        const struct ares_addrinfo *ai)
{
	int ttl = -1;

	q->status = status;
	q->n = 0;
	if (status != ARES_SUCCESS || ai == NULL)
		return;
	for (const struct ares_addrinfo_node *a = ai->nodes; a != NULL && q->n < UPSTREAM_NAME_SLOTS; a = a->ai_next) {
		struct sockaddr_storage *out = &q->addrs[q->n];

		memset(out, 0, sizeof(*out));
		if (a->ai_family == AF_INET && a->ai_addrlen >= sizeof(struct sockaddr_in)) {
			memcpy(out, a->ai_addr, sizeof(struct sockaddr_in));
			((struct sockaddr_in *)out)->sin_port = htons(s->port);
		} else if (a->ai_family == AF_INET6 && a->ai_addrlen >= sizeof(struct sockaddr_in6)) {
			memcpy(out, a->ai_addr, sizeof(struct sockaddr_in6));
			((struct sockaddr_in6 *)out)->sin6_port = htons(s->port);
		} else {
			continue;
		}
		if (ttl < 0 || a->ai_ttl < ttl)
			ttl = a->ai_ttl;
		q->n++;
	}
	if (q->n == 0)
		q->status = ARES_ENODATA;
	q->ttl_ms = ttl < 0 ? 0 : (unsigned)ttl * 1000u;
}

static const struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };

/* --- at load, in the master: blocking, bounded ----------------------------- */

static void load_answered(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct name_query *q = arg;

	(void)timeouts;
	answer_read(q, &q->res->u->servers[q->first], status, ai);
	q->done = true;
	if (ai != NULL)
		ares_freeaddrinfo(ai);
}

int resolve_at_load(struct upstream *u, const char *origin, char *err, size_t errlen)
{
	struct upstream_resolver load = { .u = u };   /* only its u: the channel is polled here */
	struct ares_options opts = { .timeout = 1000, .tries = 3 };
	struct name_query *queries;
	size_t nq = 0, left;
	uint64_t waited = 0;
	int rc = 0;

	if (u->named == 0 || httpd_config_checking())
		return 0;   /* httpd -t needs no DNS, as a build machine has none of the cluster's */
	if (channel_make(u, &load.channel, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES, err, errlen) < 0)
		return -1;
	queries = calloc(u->named, sizeof(*queries));
	if (queries == NULL) {
		ares_destroy(load.channel);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < u->count; i++) {
		if (u->servers[i].host == NULL || u->servers[i].first_slot != i)
			continue;
		queries[nq] = (struct name_query){ .res = &load, .first = i };
		ares_getaddrinfo(load.channel, u->servers[i].host, NULL, &hints, load_answered, &queries[nq]);
		nq++;
	}
	for (;;) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		int bits = ares_getsock(load.channel, socks, ARES_GETSOCK_MAXNUM), np = 0;

		left = 0;
		for (size_t i = 0; i < nq; i++)
			left += !queries[i].done;
		if (left == 0 || waited >= LOAD_TIMEOUT_MS)
			break;
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			/* c-ares' ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign bit: these are its bits, unsigned. */
			bool readable = (unsigned)bits & (1u << i), writable = (unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM));

			if (!readable && !writable)
				continue;
			pfd[np].fd = socks[i];
			pfd[np].events = (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
			pfd[np].revents = 0;
			np++;
		}
		if (poll(pfd, (nfds_t)np, 100) < 0 && errno != EINTR)
			break;
		waited += 100;
		for (int i = 0; i < np; i++)
			ares_process_fd(load.channel, pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD,
			                pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
		if (np == 0)
			ares_process_fd(load.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
	ares_destroy(load.channel);   /* what is still out is answered with ARES_EDESTRUCTION */
	for (size_t i = 0; i < nq && rc == 0; i++) {
		const struct upstream_server *s = &u->servers[queries[i].first];

		if (queries[i].status != ARES_SUCCESS || queries[i].n == 0) {
			snprintf(err, errlen, "%s: upstream \"%s\": server \"%s\": %s does not resolve (%s%s%s)", origin, u->name,
			         s->name, s->host, queries[i].done ? ares_strerror(queries[i].status) : "no answer in 5 s",
			         u->resolver != NULL ? ", resolver " : "", u->resolver != NULL ? u->resolver : "");
			rc = -1;
			break;
		}
		(void)upstream_name_set(u, queries[i].first, queries[i].addrs, queries[i].n, NULL);
	}
	free(queries);
	return rc;
}

/* --- in each worker: in the background, on the event loop ------------------ */

static void timeouts_arm(struct upstream_resolver *res);
static void round_start(struct upstream_resolver *res);

static void fd_ready(struct httpd_request *req, void *arg, unsigned events)
{
	struct resolve_fd *rf = arg;
	struct upstream_resolver *res = rf->res;
	ares_socket_t fd = rf->fd;

	(void)req;
	ares_process_fd(res->channel, events & (HTTPD_EVENT_READ | HTTPD_EVENT_ERROR) ? fd : ARES_SOCKET_BAD,
	                events & HTTPD_EVENT_WRITE ? fd : ARES_SOCKET_BAD);
	timeouts_arm(res);
}

/* c-ares' own retransmissions and timeouts. */
static void timeout_fired(struct httpd_request *req, void *arg, unsigned events)
{
	struct upstream_resolver *res = arg;

	(void)req;
	(void)events;
	res->timeout = NULL;
	ares_process_fd(res->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timeouts_arm(res);
}

static void timeouts_arm(struct upstream_resolver *res)
{
	struct timeval tv, *tvp;

	httpd_event_del(res->timeout);
	res->timeout = NULL;
	if (res->pending == 0)
		return;
	tvp = ares_timeout(res->channel, NULL, &tv);
	if (tvp != NULL)
		res->timeout = httpd_worker_timer((unsigned)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1, timeout_fired,
		                                  res);
}

/* c-ares says which sockets it wants watched: they go on the worker's loop. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct upstream_resolver *res = data;
	unsigned want = (readable ? HTTPD_EVENT_READ : 0) | (writable ? HTTPD_EVENT_WRITE : 0);
	struct resolve_fd *free_slot = NULL;

	for (size_t i = 0; i < SOCKETS_MAX; i++) {
		struct resolve_fd *rf = &res->fds[i];

		if (rf->ev != NULL && rf->fd == fd) {
			if (want == 0) {
				httpd_event_del(rf->ev);
				rf->ev = NULL;
			} else if (want != rf->events && httpd_event_fd_mod(rf->ev, want) == 0) {
				rf->events = want;
			}
			return;
		}
		if (rf->ev == NULL && free_slot == NULL)
			free_slot = rf;
	}
	if (want == 0)
		return;
	if (free_slot == NULL) {
		httpd_log(HTTPD_LOG_ERR, "upstream \"%s\": the resolver wants more than %d sockets", res->u->name,
		          SOCKETS_MAX);
		return;
	}
	free_slot->res = res;
	free_slot->fd = fd;
	free_slot->events = want;
	free_slot->ev = httpd_worker_event_fd(fd, want, fd_ready, free_slot);
}

static void round_due(struct httpd_request *req, void *arg, unsigned events)
{
	struct upstream_resolver *res = arg;

	(void)req;
	(void)events;
	res->next = NULL;
	round_start(res);
}

static void round_schedule(struct upstream_resolver *res, unsigned ms)
{
	res->next = httpd_worker_timer(ms, round_due, res);
	if (res->next == NULL)
		httpd_log(HTTPD_LOG_ERR, "upstream \"%s\": cannot schedule the next resolution: out of memory", res->u->name);
}

static void worker_answered(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct name_query *q = arg;
	struct upstream_resolver *res = q->res;
	struct upstream *u = res->u;
	const struct upstream_server *s = &u->servers[q->first];
	size_t name = 0;

	(void)timeouts;
	if (status == ARES_EDESTRUCTION) {   /* the worker is going: nothing to do */
		if (ai != NULL)
			ares_freeaddrinfo(ai);
		free(q);
		return;
	}
	answer_read(q, s, status, ai);
	if (ai != NULL)
		ares_freeaddrinfo(ai);
	for (size_t i = 0; i < q->first; i++)
		name += u->servers[i].host != NULL && u->servers[i].first_slot == i;
	if (q->status == ARES_SUCCESS) {
		size_t changed = upstream_name_set(u, q->first, q->addrs, q->n, res->gone);
		unsigned ttl = q->ttl_ms < RETRY_FIRST_MS ? RETRY_FIRST_MS : q->ttl_ms;

		if (changed > 0 || res->failing[name])
			httpd_log(HTTPD_LOG_NOTICE, "upstream \"%s\": %s resolves to %zu address%s now (%zu slot%s changed)",
			          u->name, s->host, q->n, q->n == 1 ? "" : "es", changed, changed == 1 ? "" : "s");
		res->failing[name] = false;
		if (ttl < res->next_ms)
			res->next_ms = ttl;
	} else {
		size_t kept = 0;

		for (size_t i = 0; i < UPSTREAM_NAME_SLOTS; i++)
			kept += u->servers[q->first + i].addrlen > 0;
		if (!res->failing[name])
			httpd_log(HTTPD_LOG_WARN, "upstream \"%s\": %s does not resolve (%s): its last %zu address%s stay",
			          u->name, s->host, ares_strerror(q->status), kept, kept == 1 ? "" : "es");
		res->failing[name] = true;
		res->round_failed = true;
	}
	free(q);
	if (--res->pending > 0)
		return;
	if (res->round_failed) {
		unsigned wait = res->retry_ms;

		res->retry_ms = res->retry_ms * 2 > u->resolver_valid_ms ? u->resolver_valid_ms : res->retry_ms * 2;
		round_schedule(res, wait < res->next_ms ? wait : (unsigned)res->next_ms);
	} else {
		res->retry_ms = RETRY_FIRST_MS;
		round_schedule(res, (unsigned)res->next_ms);
	}
}

static void round_start(struct upstream_resolver *res)
{
	struct upstream *u = res->u;

	res->next_ms = u->resolver_valid_ms;
	res->round_failed = false;
	res->pending = u->named;
	for (size_t i = 0; i < u->count; i++) {
		struct name_query *q;

		if (u->servers[i].host == NULL || u->servers[i].first_slot != i)
			continue;
		q = calloc(1, sizeof(*q));
		if (q == NULL) {
			res->pending--;
			continue;
		}
		q->res = res;
		q->first = i;
		ares_getaddrinfo(res->channel, u->servers[i].host, NULL, &hints, worker_answered, q);
	}
	if (res->pending == 0 && res->next == NULL)
		round_schedule(res, res->retry_ms);
	timeouts_arm(res);
}

int resolve_worker_start(struct upstream *u, upstream_gone_fn gone)
{
	struct ares_options opts = { .timeout = 1000, .tries = 2 };
	struct upstream_resolver *res;
	char err[200];

	if (u->named == 0)
		return 0;
	/* Lives as long as this worker: freed with the process. */
	res = calloc(1, sizeof(*res));
	if (res == NULL || (res->failing = calloc(u->named, sizeof(*res->failing))) == NULL) {
		free(res);
		return -1;
	}
	res->u = u;
	res->gone = gone;
	res->retry_ms = RETRY_FIRST_MS;
	opts.sock_state_cb = sock_state;
	opts.sock_state_cb_data = res;
	if (channel_make(u, &res->channel, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB, err,
	                 sizeof(err)) < 0) {
		httpd_log(HTTPD_LOG_ERR, "upstream \"%s\": no resolver in this worker: %s", u->name, err);
		free(res->failing);
		free(res);
		return -1;
	}
	u->res = res;
	/* The master resolved every name at load: the first round here comes a second later, then by TTL. */
	round_schedule(res, RETRY_FIRST_MS);
	return 0;
}
