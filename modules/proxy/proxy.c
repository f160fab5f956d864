/*
 * proxy: prefork-httpd in front of an application server.
 *
 * Asynchronous both ways on the worker's event loop: the request body is
 * forwarded as it arrives (the client is paused while 64 KiB wait for the
 * upstream), and the response is streamed to the client as it arrives (the
 * upstream is not read while 64 KiB wait for the client), so memory per
 * request is bounded whatever the sizes.  HTTP/1.1 to the upstream over a
 * per-worker pool of keep-alive connections; the response is re-framed by
 * the core, so a framing trick from the upstream never reaches the client.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <httpd/http1.h>
#include <httpd/module.h>

#include "cache.h"
#include "proxy_parse.h"
#include "resolve.h"
#include "upstream.h"

#define OUT_MAX  (64 * 1024)   /* request body bytes held for a slow upstream before the client waits */
#define OUT_CAP  (2 * OUT_MAX)  /* room for OUT_MAX and the piece that crossed it */
#define IN_MAX   (PROXY_HEAD_MAX + 1024)   /* raw response bytes read at once (a whole head fits), decoded in place */
#define READY_MAX (32 * 1024)  /* decoded body bytes held in memory for a slow client */

enum forwarded_mode { FWD_X, FWD_RFC7239, FWD_BOTH, FWD_OFF };

struct proxy_server;

struct proxy_loc {
	struct proxy_server *ps;          /* every upstream block, for the health checks */
	struct upstream    *up;           /* the named upstream, or own */
	struct upstream     own;          /* proxy_to */
	const char         *prefix;
	size_t              prefix_len;
	char               *path;         /* proxy_path: what replaces the prefix; NULL keeps it */
	bool                host_upstream;
	unsigned            connect_ms, read_ms, send_ms;
	enum forwarded_mode forwarded;
	unsigned            retries;
	bool                websocket;
	bool                buffering;
	uint64_t            max_temp_file;   /* proxy_max_temp_file_size: spill no more per response */
	bool                via;
	bool                retry_non_idempotent;
	struct cache_conf   cache;
};

struct proxy_server {
	struct upstream *ups;
	size_t           count;
	char            *temp_dir;   /* where buffering spills a response a slow client has not taken */
	struct cache_zones *zones;   /* proxy_cache_path */
};

enum pstate { PS_CONNECTING, PS_SENDING, PS_HEAD, PS_BODY, PS_DONE };

struct proxy_req;

/*
 * An upstream connection: its fd and a worker event registered for its
 * whole life, so a request that takes a pooled connection costs no
 * epoll_ctl, and a pooled one the server closes is dropped at once.
 */
struct upstream_conn {
	int                     fd;
	unsigned                generation;   /* its server slot's when it connected */
	struct httpd_event     *ev;
	unsigned                want;
	struct upstream        *u;
	struct upstream_server *s;
	struct proxy_req       *owner;      /* the request using it, or NULL in the pool */
	uint64_t                since_ms;   /* in the pool since */
};

struct proxy_req {
	struct httpd_request   *req;
	struct httpd_response  *res;
	struct proxy_loc       *pl;
	struct upstream        *up;
	struct upstream_server *srv;
	struct upstream_conn   *uc;             /* NULL when there is none */
	int                     fd;             /* uc's fd, or -1 */
	bool                    reused;
	uint64_t                tried;          /* servers tried, a bit per index */
	unsigned                attempts;
	enum pstate             state;
	struct httpd_event     *timer;
	uint64_t                progress_ms;    /* the last byte moved either way */
	uint64_t                started_ms;

	char                   *head;           /* the request head for the upstream, kept for retries */
	size_t                  head_len, head_off;
	char                   *out;            /* body bytes not yet written upstream */
	size_t                  out_len, out_off, out_cap;
	unsigned                stale;          /* pooled connections found closed by the server */
	bool                    has_body, body_chunked, body_done, body_sent, client_paused;
	int                     error;          /* a status owed to the client from the body phase */
	int                     last_status;    /* what the last failed attempt would have answered */

	bool                    pending;        /* the handler returned HTTPD_PENDING */
	bool                    finished;       /* httpd_request_finish was called */
	bool                    head_request;
	char                   *in;             /* raw response bytes: [in_off, in_len) not yet taken */
	size_t                  in_len, in_off;
	char                   *ready;          /* decoded body for the client: [ready_off, ready_len) */
	size_t                  ready_off, ready_len;
	int                     spill_fd;       /* buffering: then [file_rd, file_wr) of this file */
	bool                    pump_waits;     /* the upstream is not read until the client takes some */
	off_t                   file_rd, file_wr;
	bool                    body_stored;    /* the whole body is in ready/the file: upstream let go */
	bool                    body_broken;    /* the upstream failed mid-body: the client gets a cut */
	struct proxy_head       ph;
	bool                    resp_chunked, until_eof, resp_done, upstream_keep, got_bytes, waiting;
	const char             *upgrade;        /* the client's Upgrade value, passed on (websocket) */
	int64_t                 left;
	struct httpd_chunked    chunked;
	struct cache_req       *cache;          /* a cache location's request, or NULL */
	bool                    answered;       /* the cache answered (a stale response) before the handler returned */
};

/* For timeouts and health windows: a tick's precision is plenty, and the coarse clock costs no TSC read. */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* For $upstream_response_time. */
static uint64_t precise_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- configuration ------------------------------------------------------ */

/* In the order of their enums. */
static const char *const balances[] = { "round-robin", "least-conn", NULL };
static const char *const proxy_hosts[] = { "client", "upstream", NULL };
static const char *const forwarded_modes[] = { "x-forwarded", "forwarded", "both", "off", NULL };

static const struct httpd_option upstream_options[] = {
	HTTPD_OPTION_STR_LIST("server", "{}"),
	HTTPD_OPTION_ENUM("balance", "round-robin", balances),
	HTTPD_OPTION_INT_RANGE("max_fails", "1", 0, 1000),
	HTTPD_OPTION_DURATION("fail_timeout", "10", 1000, 86400 * 1000),
	HTTPD_OPTION_INT_RANGE("keepalive", "32", 0, 10000),
	HTTPD_OPTION_DURATION("keepalive_timeout", "60", 1000, 86400 * 1000),
	HTTPD_OPTION_STR("health_check", NULL),
	HTTPD_OPTION_DURATION("health_interval", "5", 1000, 3600 * 1000),
	HTTPD_OPTION_STR_LIST("resolver", "{}"),
	HTTPD_OPTION_DURATION("resolver_valid", "30", 1000, 86400 * 1000),
	HTTPD_OPTION_END
};

static const struct httpd_option server_options[] = {
	HTTPD_OPTION_SECTION("upstream", HTTPD_OPT_MULTI | HTTPD_OPT_TITLED, upstream_options),
	HTTPD_OPTION_SECTION("proxy_cache_path", HTTPD_OPT_MULTI | HTTPD_OPT_TITLED, cache_path_options),
	HTTPD_OPTION_END
};

static const struct httpd_option location_options[] = {
	HTTPD_OPTION_STR("upstream", NULL),
	HTTPD_OPTION_STR("proxy_to", NULL),
	HTTPD_OPTION_STR("proxy_path", NULL),
	HTTPD_OPTION_ENUM("proxy_host", "client", proxy_hosts),
	HTTPD_OPTION_DURATION("connect_timeout", "5", 1, 3600 * 1000),
	HTTPD_OPTION_DURATION("read_timeout", "60", 1, 86400 * 1000),
	HTTPD_OPTION_DURATION("send_timeout", "60", 1, 86400 * 1000),
	HTTPD_OPTION_ENUM("forwarded", "x-forwarded", forwarded_modes),
	HTTPD_OPTION_INT_RANGE("retries", "1", 0, 10),
	HTTPD_OPTION_BOOL("websocket", "true"),
	HTTPD_OPTION_BOOL("buffering", "true"),
	HTTPD_OPTION_SIZE("proxy_max_temp_file_size", "1g", 0, INT64_MAX),
	HTTPD_OPTION_BOOL("via", "false"),
	HTTPD_OPTION_BOOL("retry_non_idempotent", "false"),
	CACHE_LOCATION_OPTIONS,
	HTTPD_OPTION_END
};

static int upstream_read(const struct httpd_conf *sec, struct upstream *u, char *err, size_t errlen)
{
	uint64_t fail_timeout = 0, ka_timeout = 0;
	size_t n = httpd_conf_count(sec, "server");
	char origin[256], why[256];

	httpd_conf_origin(sec, origin, sizeof(origin));
	if (n == 0 || n > 64) {
		snprintf(err, errlen, "%s: upstream \"%s\" needs from 1 to 64 servers", origin, u->name);
		return -1;
	}
	/* The server checked each value's type and bounds at its own line. */
	u->balance = httpd_conf_enum(sec, "balance") == 1 ? BALANCE_LEAST_CONN : BALANCE_ROUND_ROBIN;
	u->max_fails = (unsigned)httpd_conf_int(sec, "max_fails");
	(void)httpd_conf_duration(sec, "fail_timeout", &fail_timeout);
	u->fail_timeout_ms = (unsigned)fail_timeout;
	u->keepalive = (unsigned)httpd_conf_int(sec, "keepalive");
	(void)httpd_conf_duration(sec, "keepalive_timeout", &ka_timeout);
	u->keepalive_timeout_ms = (unsigned)ka_timeout;
	if (httpd_conf_str(sec, "health_check") != NULL) {
		const char *path = httpd_conf_str(sec, "health_check");
		uint64_t interval = 0;

		if (path[0] != '/' || strpbrk(path, " \t\r\n") != NULL) {
			snprintf(err, errlen, "%s: upstream \"%s\": health_check must be a path (\"/healthz\")", origin,
			         u->name);
			return -1;
		}
		(void)httpd_conf_duration(sec, "health_interval", &interval);
		u->health_check = strdup(path);
		u->health_interval_ms = (unsigned)interval;
		if (u->health_check == NULL)
			return -1;
	}
	/* A server given by name takes UPSTREAM_NAME_SLOTS slots, one per address it may resolve to. */
	for (size_t i = 0; i < n; i++) {
		const char *text = httpd_conf_list_str(sec, "server", i);
		struct upstream_server one;

		if (upstream_server_parse(text, &one, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: upstream \"%s\": %s", origin, u->name, why);
			return -1;
		}
		if (one.host != NULL)
			u->named++;
		free(one.host);
		free(one.name);
	}
	u->servers = calloc(n + u->named * (UPSTREAM_NAME_SLOTS - 1), sizeof(*u->servers));
	if (u->servers == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct upstream_server *s = &u->servers[u->count];

		if (upstream_server_parse(httpd_conf_list_str(sec, "server", i), s, why, sizeof(why)) < 0)
			return -1;
		u->count++;
		if (s->host == NULL)
			continue;
		s->first_slot = u->count - 1;
		for (size_t k = 1; k < UPSTREAM_NAME_SLOTS; k++) {
			struct upstream_server *slot = &u->servers[u->count];

			*slot = *s;
			slot->name = strdup(s->name);
			if (slot->name == NULL)
				return -1;
			u->count++;
		}
	}
	if (u->named > 0 && resolver_read(sec, u, origin, err, errlen) < 0)
		return -1;
	if (u->health_check != NULL && upstream_health_map(u) < 0) {
		snprintf(err, errlen, "%s: upstream \"%s\": cannot map the health table: %s", origin, u->name,
		         strerror(errno));
		return -1;
	}
	return resolve_at_load(u, origin, err, errlen);
}

static void server_exit(void *data)
{
	struct proxy_server *ps = data;

	if (ps == NULL)
		return;
	for (size_t i = 0; i < ps->count; i++)
		upstream_release(&ps->ups[i]);
	free(ps->ups);
	free(ps->temp_dir);
	cache_zones_release(ps->zones);
	free(ps);
}

static int server_init(const struct httpd_conf *server, void **data, char *err, size_t errlen)
{
	struct proxy_server *ps = calloc(1, sizeof(*ps));
	size_t n = httpd_conf_count(server, "upstream");

	if (ps == NULL || (ps->ups = calloc(n ? n : 1, sizeof(*ps->ups))) == NULL) {
		free(ps);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*data = ps;
	ps->temp_dir = strdup(httpd_conf_str(server, "temp_dir") != NULL ? httpd_conf_str(server, "temp_dir") : "/var/tmp");
	if (ps->temp_dir == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (cache_zones_init(server, &ps->zones, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct httpd_conf *sec = httpd_conf_section(server, "upstream", i);

		ps->ups[i].name = strdup(httpd_conf_title(sec));
		ps->count++;
		if (ps->ups[i].name == NULL || upstream_read(sec, &ps->ups[i], err, errlen) < 0) {
			if (err[0] == '\0')
				snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* proxy_to = "http://127.0.0.1:8000" (or http://[::1]:8000, http://unix:/run/app.sock): one server. */
static int proxy_to_read(const char *url, struct proxy_loc *pl, char *err, size_t errlen)
{
	char why[256];
	const char *rest;

	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "proxy_to \"%s\" must start with http:// (TLS to upstreams is not supported)", url);
		return -1;
	}
	rest = url + 7;
	if (rest[strlen(rest) - 1] == '/' && strchr(rest, '/') == rest + strlen(rest) - 1 &&
	    strncmp(rest, "unix:", 5) != 0) {
		snprintf(err, errlen, "proxy_to \"%s\": give the address alone; proxy_path says the path", url);
		return -1;
	}
	pl->own.name = strdup(rest);
	pl->own.servers = calloc(1, sizeof(*pl->own.servers));
	if (pl->own.name == NULL || pl->own.servers == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (upstream_server_parse(rest, &pl->own.servers[0], why, sizeof(why)) < 0) {
		snprintf(err, errlen, "proxy_to: %s", why);
		return -1;
	}
	if (pl->own.servers[0].host != NULL) {
		snprintf(err, errlen, "proxy_to \"%s\": a server given by name goes in an upstream block, which resolves "
		         "it (upstream \"app\" { server = {\"%s\"} })", url, rest);
		return -1;
	}
	pl->own.count = 1;
	pl->own.balance = BALANCE_ROUND_ROBIN;
	pl->own.max_fails = 0;   /* one server: nothing to fail over to */
	pl->own.fail_timeout_ms = 10000;
	pl->own.keepalive = 32;
	pl->own.keepalive_timeout_ms = 60000;
	pl->up = &pl->own;
	return 0;
}

static void release(void *data)
{
	struct proxy_loc *pl = data;

	if (pl == NULL)
		return;
	if (pl->own.servers != NULL || pl->own.name != NULL)
		upstream_release(&pl->own);
	cache_conf_release(&pl->cache);
	free(pl->path);
	free(pl);
}

static int configure(const struct httpd_location *loc, const struct httpd_conf *opts, void **data, char *err,
                     size_t errlen)
{
	struct proxy_loc *pl = calloc(1, sizeof(*pl));
	const char *name = httpd_conf_str(opts, "upstream"), *to = httpd_conf_str(opts, "proxy_to");
	const char *path = httpd_conf_str(opts, "proxy_path");
	uint64_t connect_ms = 0, read_ms = 0, send_ms = 0;

	if (pl == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*data = pl;
	pl->prefix = httpd_location_prefix(loc);
	pl->ps = httpd_location_server_data(loc, "proxy");
	pl->prefix_len = strlen(pl->prefix);
	if ((name == NULL) == (to == NULL)) {
		snprintf(err, errlen, "give either upstream = \"NAME\" or proxy_to = \"http://ADDRESS:PORT\"");
		return -1;
	}
	if (to != NULL && proxy_to_read(to, pl, err, errlen) < 0)
		return -1;
	if (name != NULL) {
		struct proxy_server *ps = pl->ps;

		for (size_t i = 0; ps != NULL && i < ps->count; i++)
			if (strcmp(ps->ups[i].name, name) == 0)
				pl->up = &ps->ups[i];
		if (pl->up == NULL) {
			snprintf(err, errlen, "no upstream \"%s\" block", name);
			return -1;
		}
	}
	if (path != NULL && (path[0] != '/' || strpbrk(path, " \t\r\n?#") != NULL)) {
		snprintf(err, errlen, "proxy_path \"%s\" must be a path starting with '/'", path);
		return -1;
	}
	if (path != NULL && (pl->path = strdup(path)) == NULL)
		return -1;
	/* Enums, durations, bounds and sizes were checked by the server at their own lines. */
	pl->host_upstream = httpd_conf_enum(opts, "proxy_host") == 1;
	pl->forwarded = (enum forwarded_mode)httpd_conf_enum(opts, "forwarded");
	(void)httpd_conf_duration(opts, "connect_timeout", &connect_ms);
	(void)httpd_conf_duration(opts, "read_timeout", &read_ms);
	(void)httpd_conf_duration(opts, "send_timeout", &send_ms);
	pl->connect_ms = (unsigned)connect_ms;
	pl->read_ms = (unsigned)read_ms;
	pl->send_ms = (unsigned)send_ms;
	pl->retries = (unsigned)httpd_conf_int(opts, "retries");
	pl->websocket = httpd_conf_bool(opts, "websocket");
	pl->buffering = httpd_conf_bool(opts, "buffering");
	(void)httpd_conf_size(opts, "proxy_max_temp_file_size", &pl->max_temp_file);
	pl->via = httpd_conf_bool(opts, "via");
	pl->retry_non_idempotent = httpd_conf_bool(opts, "retry_non_idempotent");
	return cache_conf_read(opts, pl->ps != NULL ? pl->ps->zones : NULL, &pl->cache, err, errlen);
}

/* --- the request head for the upstream ---------------------------------- */

struct buf {
	struct httpd_pool *pool;
	char              *data;
	size_t             len, cap;
	bool               failed;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 2048;
		char *grown;

		while (cap < b->len + n + 1)
			cap *= 2;
		grown = httpd_pool_alloc(b->pool, cap);
		if (grown == NULL) {
			b->failed = true;
			return;
		}
		if (b->len > 0)
			memcpy(grown, b->data, b->len);
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Every Connection line of a message: each one names hop-by-hop fields (RFC 9110 §7.6.1). */
struct conn_lines {
	const char *value[PROXY_HEADERS_MAX];
	size_t      count;
	bool        overflow;   /* more lines than we keep: forward no field that is not ours for sure */
};

static void conn_lines_add(struct conn_lines *c, const char *name, const char *value)
{
	if (strcasecmp(name, "Connection") != 0)
		return;
	if (c->count < PROXY_HEADERS_MAX)
		c->value[c->count++] = value;
	else
		c->overflow = true;
}

/* Hop-by-hop fields (RFC 9110 §7.6.1) and the ones the proxy writes itself. */
static bool hop_by_hop(const char *name, const struct conn_lines *connection)
{
#define FIELD(s) { s, sizeof(s) - 1 }
	static const struct { const char *name; size_t len; } fixed[] = {
		FIELD("Connection"), FIELD("Keep-Alive"), FIELD("TE"), FIELD("Trailer"), FIELD("Transfer-Encoding"),
		FIELD("Upgrade"), FIELD("Proxy-Connection"), FIELD("Proxy-Authenticate"), FIELD("Proxy-Authorization"),
		FIELD("Content-Length"), FIELD("Host"), FIELD("Expect"),
	};
#undef FIELD
	size_t len = strlen(name);

	/* Most names are none of these: only those of a matching length are compared. */
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (fixed[i].len == len && strcasecmp(name, fixed[i].name) == 0)
			return true;
	/* And every field any Connection line names. */
	for (size_t i = 0; i < connection->count; i++)
		if (httpd_http1_list_has(connection->value[i], name))
			return true;
	return false;
}

static bool forwarded_header(const char *name, enum forwarded_mode mode)
{
	if (mode == FWD_OFF)
		return false;
	/* What we set is ours: a client's own copy would let it pose as anyone. */
	return strcasecmp(name, "X-Forwarded-Proto") == 0 || strcasecmp(name, "X-Forwarded-Host") == 0;
}

/* A decoded path back to its percent-encoded form: only RFC 3986 pchars and '/' stay as they are. */
static void path_encode_add(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";

	while (len > 0) {
		size_t run = 0;

		while (run < len && ((s[run] >= 'a' && s[run] <= 'z') || (s[run] >= 'A' && s[run] <= 'Z') ||
		                     (s[run] >= '0' && s[run] <= '9') || strchr("-._~!$&'()*+,;=:@/", s[run]) != NULL) &&
		       s[run] != '\0')
			run++;
		if (run > 0)
			buf_add(b, s, run);
		if (run < len) {
			char esc[3] = { '%', hex[(unsigned char)s[run] >> 4], hex[(unsigned char)s[run] & 15] };

			buf_add(b, esc, 3);
			run++;
		}
		s += run;
		len -= run;
	}
}

/*
 * The request target for the upstream, always from the normalised path
 * the location matched (re-encoded), the prefix replaced by proxy_path, and
 * the raw query: a raw target such as "/x/../files/a" must not reach the
 * upstream in a form that names another location than the one that chose it.
 */
static void target_add(struct buf *b, const struct proxy_loc *pl, const struct httpd_request *req)
{
	const char *path = req->path;

	if (strcmp(req->target, "*") == 0) {
		buf_str(b, "*");
		return;
	}
	if (pl->path != NULL && strncmp(path, pl->prefix, pl->prefix_len) == 0) {
		const char *rest = path + pl->prefix_len;
		size_t plen = strlen(pl->path);

		buf_str(b, pl->path);
		if (plen > 0 && pl->path[plen - 1] == '/' && rest[0] == '/')
			rest++;
		else if (rest[0] != '/' && rest[0] != '\0' && (plen == 0 || pl->path[plen - 1] != '/'))
			buf_str(b, "/");
		path_encode_add(b, rest, strlen(rest));
	} else {
		path_encode_add(b, path, strlen(path));
	}
	if (req->query != NULL) {
		buf_str(b, "?");
		buf_str(b, req->query);
	}
}

static char *head_build(struct proxy_req *p)
{
	const struct httpd_request *req = p->req;
	const struct proxy_loc *pl = p->pl;
	struct buf b = { .pool = req->pool };
	struct conn_lines connection = { .count = 0 };
	struct buf xff = { .pool = req->pool };
	bool ipv6 = strchr(req->client_addr, ':') != NULL;

	for (size_t i = 0; i < req->header_count; i++)
		conn_lines_add(&connection, req->headers[i].name, req->headers[i].value);
	if (connection.overflow)
		return NULL;

	buf_str(&b, req->method_name);
	buf_str(&b, " ");
	target_add(&b, pl, req);
	buf_str(&b, " HTTP/1.1\r\nHost: ");
	buf_str(&b, pl->host_upstream || req->host == NULL ? p->srv->name : req->host);
	buf_str(&b, "\r\n");
	for (size_t i = 0; i < req->header_count; i++) {
		const struct httpd_header *h = &req->headers[i];

		if (hop_by_hop(h->name, &connection) || forwarded_header(h->name, pl->forwarded) ||
		    (p->cache != NULL && cache_request_drops(p->cache, h->name)))
			continue;
		if (strcasecmp(h->name, "X-Forwarded-For") == 0 && (pl->forwarded == FWD_X || pl->forwarded == FWD_BOTH)) {
			/* Every line, in order, extended below as nginx's $proxy_add_x_forwarded_for does. */
			buf_str(&xff, h->value);
			buf_str(&xff, ", ");
			continue;
		}
		buf_str(&b, h->name);
		buf_str(&b, ": ");
		buf_str(&b, h->value);
		buf_str(&b, "\r\n");
	}
	if (pl->forwarded == FWD_X || pl->forwarded == FWD_BOTH) {
		buf_str(&b, "X-Forwarded-For: ");
		if (xff.len > 0)
			buf_add(&b, xff.data, xff.len);
		buf_str(&b, req->client_addr);
		buf_str(&b, "\r\nX-Forwarded-Proto: ");
		buf_str(&b, req->scheme);
		buf_str(&b, "\r\n");
		if (req->host != NULL) {
			buf_str(&b, "X-Forwarded-Host: ");
			buf_str(&b, req->host);
			buf_str(&b, "\r\n");
		}
	}
	if (pl->forwarded == FWD_RFC7239 || pl->forwarded == FWD_BOTH) {
		/* RFC 7239 §6: an IPv6 address is quoted and bracketed. */
		buf_str(&b, "Forwarded: for=");
		buf_str(&b, ipv6 ? "\"[" : "");
		buf_str(&b, req->client_addr);
		buf_str(&b, ipv6 ? "]\"" : "");
		buf_str(&b, ";proto=");
		buf_str(&b, req->scheme);
		if (req->host != NULL && strpbrk(req->host, "\";,") == NULL) {
			buf_str(&b, ";host=\"");
			buf_str(&b, req->host);
			buf_str(&b, "\"");
		}
		buf_str(&b, "\r\n");
	}
	if (pl->via)   /* RFC 9110 §7.6.3: after any the client sent, the protocol it spoke */
		buf_str(&b, req->version == 10 ? "Via: 1.0 prefork-httpd\r\n" : req->version == 20 ? "Via: 2 prefork-httpd\r\n"
		       : "Via: 1.1 prefork-httpd\r\n");
	if (p->cache != NULL)
		buf_str(&b, cache_request_extra(p->cache));   /* the stored response's validators */
	if (p->upgrade != NULL) {
		buf_str(&b, "Connection: upgrade\r\nUpgrade: ");
		buf_str(&b, p->upgrade);
		buf_str(&b, "\r\n");
	}
	if (p->has_body && p->body_chunked) {
		buf_str(&b, "Transfer-Encoding: chunked\r\n");
	} else if (p->has_body) {
		char num[32];

		snprintf(num, sizeof(num), "Content-Length: %lld\r\n", (long long)req->content_length);
		buf_str(&b, num);
	}
	buf_str(&b, "\r\n");
	if (b.failed)
		return NULL;
	p->head_len = b.len;
	return b.data;
}

/* --- the upstream connection ------------------------------------------- */

static void on_io(struct httpd_request *req, void *arg, unsigned events);
static void on_timer(struct httpd_request *req, void *arg, unsigned events);
static void attempt(struct proxy_req *p);
static bool send_pending(struct proxy_req *p);

/* $upstream_status: three digits, formatted without stdio (every proxied request pays for it). */
static void note_status(struct proxy_req *p, int status)
{
	char *s = httpd_pool_alloc(p->req->pool, 4);

	if (s == NULL || status < 100 || status > 999)
		return;
	s[0] = (char)('0' + status / 100);
	s[1] = (char)('0' + status / 10 % 10);
	s[2] = (char)('0' + status % 10);
	s[3] = '\0';
	(void)httpd_request_note_set(p->req, "upstream_status", s);
}

/* $upstream_response_time: seconds with milliseconds, "0.004". */
static void note_response_time(struct proxy_req *p, uint64_t ms)
{
	char digits[24], *s = httpd_pool_alloc(p->req->pool, sizeof(digits) + 4);
	size_t n = 0, len = 0;
	uint64_t secs = ms / 1000;

	if (s == NULL)
		return;
	do {
		digits[n++] = (char)('0' + secs % 10);
		secs /= 10;
	} while (secs > 0);
	while (n > 0)
		s[len++] = digits[--n];
	s[len++] = '.';
	s[len++] = (char)('0' + ms % 1000 / 100);
	s[len++] = (char)('0' + ms % 100 / 10);
	s[len++] = (char)('0' + ms % 10);
	s[len] = '\0';
	(void)httpd_request_note_set(p->req, "upstream_response_time", s);
}

static void uc_want(struct upstream_conn *uc, unsigned want)
{
	if (uc->ev != NULL && want != uc->want && httpd_event_fd_mod(uc->ev, want) == 0)
		uc->want = want;
}

static void io_want(struct proxy_req *p, unsigned want)
{
	if (p->uc != NULL)
		uc_want(p->uc, want);
}

static void uc_destroy(struct upstream_conn *uc)
{
	httpd_event_del(uc->ev);
	close(uc->fd);
	free(uc);
}

static void pool_remove(struct upstream_conn *uc)
{
	struct upstream_server *s = uc->s;

	for (size_t i = 0; i < s->idle_count; i++)
		if (s->idle[i] == uc) {
			memmove(&s->idle[i], &s->idle[i + 1], (s->idle_count - i - 1) * sizeof(*s->idle));
			s->idle_count--;
			return;
		}
}

/* Idle connections past keepalive_timeout go (the oldest are first). */
static void pool_expire(struct upstream *u, struct upstream_server *s, uint64_t now)
{
	size_t n = 0;

	while (n < s->idle_count && now - s->idle[n]->since_ms >= u->keepalive_timeout_ms)
		uc_destroy(s->idle[n++]);
	if (n > 0) {
		memmove(s->idle, s->idle + n, (s->idle_count - n) * sizeof(*s->idle));
		s->idle_count -= n;
	}
}

static struct upstream_conn *pool_take(struct upstream *u, struct upstream_server *s, uint64_t now)
{
	pool_expire(u, s, now);
	return s->idle_count > 0 ? s->idle[--s->idle_count] : NULL;
}

/* An idle connection heard from: closed by the server, or talking unasked. Either way it is done. */
static void uc_event(struct httpd_request *req, void *arg, unsigned events)
{
	struct upstream_conn *uc = arg;

	if (uc->owner != NULL) {
		on_io(req, uc->owner, events);
		return;
	}
	pool_remove(uc);
	uc_destroy(uc);
}

/* Drops the upstream connection: back to the pool after a clean response, else closed. */
static void upstream_let_go(struct proxy_req *p, bool reusable)
{
	struct upstream_conn *uc = p->uc;

	if (uc == NULL)
		return;
	p->uc = NULL;
	p->fd = -1;
	uc->owner = NULL;
	if (p->srv != NULL && p->srv->active > 0)
		p->srv->active--;
	/* A connection to an address its name no longer has (the slot changed meanwhile) is not kept. */
	if (reusable && uc->ev != NULL && p->up->keepalive > 0 && uc->generation == uc->s->generation) {
		struct upstream_server *s = uc->s;
		uint64_t now = now_ms();

		pool_expire(p->up, s, now);
		if (s->idle == NULL)
			s->idle = calloc(p->up->keepalive, sizeof(*s->idle));
		if (s->idle != NULL && s->idle_count < p->up->keepalive) {
			uc->since_ms = now;
			uc_want(uc, HTTPD_EVENT_READ);   /* to hear of a close while idle */
			s->idle[s->idle_count++] = uc;
			return;
		}
	}
	uc_destroy(uc);
}

/*
 * Raw-response buffers outlive requests in a small per-worker stack: a
 * buffer this size from the request pool would be a malloc and a free per
 * request.
 */
#define SPARE_IN_MAX 16
static char  *spare_in[SPARE_IN_MAX];
static size_t spare_in_count;

static char *in_buffer_take(void)
{
	return spare_in_count > 0 ? spare_in[--spare_in_count] : malloc(IN_MAX);
}

static void in_buffer_give_back(char *in)
{
	if (in == NULL)
		return;
	if (spare_in_count < SPARE_IN_MAX)
		spare_in[spare_in_count++] = in;
	else
		free(in);
}

/* Cleanup when the request ends, whichever way. */
static void proxy_req_cleanup(void *arg)
{
	struct proxy_req *p = arg;

	in_buffer_give_back(p->in);
	p->in = NULL;

	if (p->spill_fd >= 0)
		close(p->spill_fd);
	p->spill_fd = -1;
	upstream_let_go(p, false);
}

/* Answers the client with status (502, 504) if it has not been answered yet. */
static void fail(struct proxy_req *p, int status)
{
	httpd_event_del(p->timer);
	p->timer = NULL;
	upstream_let_go(p, false);
	p->state = PS_DONE;
	if (!p->finished && p->cache != NULL && cache_upstream_failed(p->cache, status)) {
		/* proxy_cache_use_stale or stale-if-error: the stored response answers. */
		note_status(p, status);
		if (p->pending) {
			p->finished = true;
			httpd_request_finish(p->req, HTTPD_OK);
		} else {
			p->answered = true;
		}
		return;
	}
	note_status(p, status);
	if (p->finished)
		return;
	if (p->pending) {
		p->finished = true;
		httpd_request_finish(p->req, status);
		return;
	}
	/* Still in the body phase: the next body event refuses the request. */
	p->error = status;
	if (p->client_paused) {
		p->client_paused = false;
		httpd_request_body_resume(p->req);
	}
}

static bool idempotent(unsigned method)
{
	return (method & (HTTPD_METHOD_GET | HTTPD_METHOD_HEAD | HTTPD_METHOD_PUT | HTTPD_METHOD_DELETE |
	                  HTTPD_METHOD_OPTIONS)) != 0;
}

/*
 * The upstream failed before answering.  Another server gets the request
 * if nothing of it can have been acted on: no body byte sent, and an
 * idempotent method (or one retry_non_idempotent allows, or a request of
 * which no byte left).  A streamed body already sent cannot be sent again.
 */
static void upstream_error(struct proxy_req *p, int status, const char *phase, int err)
{
	bool safe = !p->got_bytes && !p->body_sent &&
	            (idempotent(p->req->method) || p->pl->retry_non_idempotent || p->head_off == 0);
	bool stale = safe && p->reused && status == 502 && p->stale < 8;
	bool retry = safe && !stale && p->attempts <= p->pl->retries;
	size_t index = p->srv != NULL ? (size_t)(p->srv - p->up->servers) : 0;

	if (stale) {
		/* A pooled connection the server had closed: not the server's fault; a fresh one, same server. */
		p->stale++;
		p->attempts--;
		if (index < 64)
			p->tried &= ~(1ull << index);
		upstream_let_go(p, false);
		p->head_off = 0;
		attempt(p);
		return;
	}
	httpd_log_request(HTTPD_LOG_ERR, p->req, "upstream %s (%s): %s%s%s%s", p->srv != NULL ? p->srv->name : "?",
	                  p->up->name, phase, err ? ": " : "", err ? strerror(err) : "", retry ? "; trying another" : "");
	if (p->srv != NULL)
		upstream_failed(p->up, p->srv, now_ms());
	upstream_let_go(p, false);
	p->last_status = status;
	if (!retry) {
		fail(p, status);
		return;
	}
	p->head_off = 0;
	attempt(p);
}

static int socket_connect(struct proxy_req *p, int *err)
{
	int fd = socket(p->srv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (p->srv->addr.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&p->srv->addr, p->srv->addrlen) < 0 && errno != EINPROGRESS) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

static void timer_arm(struct proxy_req *p, unsigned ms)
{
	httpd_event_del(p->timer);
	p->timer = httpd_event_timer(p->req, ms, on_timer, p);
}

/* Picks a server, takes an idle connection or opens one, and starts sending. */
static void attempt(struct proxy_req *p)
{
	uint64_t now = now_ms();
	int err = 0;

	p->attempts++;
	p->srv = upstream_pick(p->up, now, p->tried);
	if (p->srv == NULL) {
		if (p->last_status == 0)
			httpd_log_request(HTTPD_LOG_ERR, p->req, "upstream \"%s\": no server to try", p->up->name);
		fail(p, p->last_status != 0 ? p->last_status : 502);
		return;
	}
	p->tried |= (size_t)(p->srv - p->up->servers) < 64 ? 1ull << (p->srv - p->up->servers) : 0;
	p->srv->active++;
	/* An address as written lives as long as the config; a name's slot may change, so its address is copied. */
	(void)httpd_request_note_set(p->req, "upstream_addr", p->srv->host == NULL ? p->srv->name :
	                             httpd_pool_strdup(p->req->pool, p->srv->addr_text));
	/* Built per attempt: Host may name this server (proxy_host = "upstream"). */
	p->head = head_build(p);
	if (p->head == NULL) {
		p->srv->active--;
		fail(p, 500);
		return;
	}
	p->uc = pool_take(p->up, p->srv, now);
	p->reused = p->uc != NULL;
	p->state = p->reused ? PS_SENDING : PS_CONNECTING;
	if (!p->reused) {
		int fd = socket_connect(p, &err);

		if (fd < 0) {
			p->srv->active--;
			upstream_error(p, 502, "connect", err);
			return;
		}
		p->uc = calloc(1, sizeof(*p->uc));
		if (p->uc == NULL) {
			close(fd);
			p->srv->active--;
			fail(p, 500);
			return;
		}
		p->uc->fd = fd;
		p->uc->u = p->up;
		p->uc->s = p->srv;
		p->uc->generation = p->srv->generation;
		p->uc->want = HTTPD_EVENT_WRITE;
		p->uc->ev = httpd_worker_event_fd(fd, HTTPD_EVENT_WRITE, uc_event, p->uc);
		if (p->uc->ev == NULL) {
			uc_destroy(p->uc);
			p->uc = NULL;
			p->srv->active--;
			fail(p, 500);
			return;
		}
	}
	p->uc->owner = p;
	p->fd = p->uc->fd;
	p->progress_ms = now;
	if (p->reused) {
		/* A pooled connection is writable: send now, and wait only for what is left (no EPOLLOUT round). */
		unsigned attempt_no = p->attempts;
		bool sent = send_pending(p), more_body = p->has_body && !p->body_done;

		if (p->attempts != attempt_no || p->state == PS_DONE)
			return;   /* it failed: upstream_error has moved on */
		io_want(p, !sent ? HTTPD_EVENT_WRITE : more_body ? 0 : HTTPD_EVENT_READ);
		if (sent && !more_body)
			p->state = PS_HEAD;
		timer_arm(p, p->state == PS_HEAD ? p->pl->read_ms : p->pl->send_ms);
		return;
	}
	timer_arm(p, p->state == PS_CONNECTING ? p->pl->connect_ms : p->pl->send_ms);
}

/* Writes the head and the body bytes waiting; true if the socket took everything. */
static bool send_pending(struct proxy_req *p)
{
	while (p->head_off < p->head_len || p->out_off < p->out_len) {
		struct iovec iov[2];
		struct msghdr mh = { .msg_iov = iov };
		ssize_t n;

		if (p->head_off < p->head_len) {
			iov[mh.msg_iovlen].iov_base = p->head + p->head_off;
			iov[mh.msg_iovlen++].iov_len = p->head_len - p->head_off;
		}
		if (p->out_off < p->out_len) {
			iov[mh.msg_iovlen].iov_base = p->out + p->out_off;
			iov[mh.msg_iovlen++].iov_len = p->out_len - p->out_off;
		}
		n = sendmsg(p->fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return false;
			upstream_error(p, 502, "sending the request", errno);
			return false;
		}
		p->progress_ms = now_ms();
		if ((size_t)n <= p->head_len - p->head_off) {
			p->head_off += (size_t)n;
		} else {
			n -= (ssize_t)(p->head_len - p->head_off);
			p->head_off = p->head_len;
			p->out_off += (size_t)n;
			p->body_sent = true;
		}
	}
	p->out_off = p->out_len = 0;
	if (p->client_paused) {
		p->client_paused = false;
		httpd_request_body_resume(p->req);
	}
	return true;
}

static void response_start(struct proxy_req *p);
static void body_pump(struct proxy_req *p);
static void body_break(struct proxy_req *p);

/* Reads the response head into in; -1 on error (handled), 0 at EOF, 1 if bytes came or none are ready. */
static int receive(struct proxy_req *p)
{
	ssize_t n;

	if (p->in_off > 0 && p->in_off == p->in_len)
		p->in_off = p->in_len = 0;
	if (p->in_len == IN_MAX && p->in_off > 0) {
		memmove(p->in, p->in + p->in_off, p->in_len - p->in_off);
		p->in_len -= p->in_off;
		p->in_off = 0;
	}
	if (p->in_len == IN_MAX)
		return 1;   /* full: the client has to take some first */
	n = recv(p->fd, p->in + p->in_len, IN_MAX - p->in_len, 0);
	if (n > 0) {
		p->in_len += (size_t)n;
		p->got_bytes = true;
		p->progress_ms = now_ms();
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n < 0) {
		upstream_error(p, 502, "reading the response head", errno);
		return -1;
	}
	return 0;
}

/* After an interim response (100 Continue): the real head may already be in the buffer. */
static void continue_head(struct proxy_req *p)
{
	if (p->in_len > p->in_off)
		on_io(p->req, p, HTTPD_EVENT_READ);
}

/* 101 to an upgrade we asked for: the connection becomes the core's tunnel (a WebSocket). */
static void tunnel_begin(struct proxy_req *p)
{
	const struct proxy_head *h = &p->ph;
	struct conn_lines connection = { .count = 0 };
	int fd = p->fd;

	for (size_t i = 0; i < h->count; i++)
		conn_lines_add(&connection, h->headers[i].name, h->headers[i].value);
	for (size_t i = 0; i < h->count; i++) {
		bool upgrade = strcasecmp(h->headers[i].name, "Upgrade") == 0;

		if ((!upgrade && hop_by_hop(h->headers[i].name, &connection)) ||
		    strcasecmp(h->headers[i].name, "Date") == 0 || strcasecmp(h->headers[i].name, "Server") == 0)
			continue;
		if (httpd_response_add_header(p->res, h->headers[i].name, h->headers[i].value) < 0) {
			fail(p, 502);
			return;
		}
	}
	note_status(p, 101);
	httpd_event_del(p->timer);
	p->timer = NULL;
	if (p->srv->active > 0)
		p->srv->active--;
	/* The fd is the core's now: only our event and record of it go. */
	httpd_event_del(p->uc->ev);
	free(p->uc);
	p->uc = NULL;
	p->fd = -1;
	p->state = PS_DONE;
	upstream_succeeded(p->srv);
	if (httpd_response_tunnel(p->res, fd, p->pl->read_ms, p->in + p->in_off, p->in_len - p->in_off) < 0) {
		close(fd);
		fail(p, 502);
		return;
	}
	p->finished = true;
	httpd_request_finish(p->req, HTTPD_OK);
}

static void head_wait(struct proxy_req *p)
{
	p->state = PS_HEAD;
	io_want(p, HTTPD_EVENT_READ);
	timer_arm(p, p->pl->read_ms);
}

static void on_io(struct httpd_request *req, void *arg, unsigned events)
{
	struct proxy_req *p = arg;

	(void)req;
	if (p->state == PS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			upstream_error(p, 502, "connect", err);
			return;
		}
		p->state = PS_SENDING;
		timer_arm(p, p->pl->send_ms);
	}
	if (p->state == PS_SENDING) {
		if (!send_pending(p))
			return;
		if (p->has_body && !p->body_done) {
			if (events & HTTPD_EVENT_ERROR) {
				upstream_error(p, 502, "the connection closed while the body was on its way", 0);
				return;
			}
			io_want(p, 0);   /* the client's next piece comes through the body hook */
			return;
		}
		head_wait(p);
		return;
	}
	if (p->state == PS_HEAD) {
		int rc = receive(p);
		const char *why = NULL;
		long head;

		if (rc < 0)
			return;
		if (rc == 0) {
			upstream_error(p, 502, "the connection closed before a response", 0);
			return;
		}
		head = proxy_head_parse(p->in + p->in_off, p->in_len - p->in_off, &p->ph, &why);
		if (head < 0) {
			httpd_log_request(HTTPD_LOG_ERR, p->req, "upstream %s sent an invalid response: %s", p->srv->name,
			                  why);
			upstream_failed(p->up, p->srv, now_ms());
			fail(p, 502);
			return;
		}
		if (head == 0) {
			if (p->in_len == IN_MAX) {
				fail(p, 502);
			}
			return;
		}
		p->in_off += (size_t)head;
		if (p->ph.status == 101 && p->upgrade != NULL) {
			tunnel_begin(p);
			return;
		}
		if (p->ph.status < 200) {
			/* 100 Continue and other interim answers: the core already spoke to the client. */
			if (p->ph.status == 101) {
				httpd_log_request(HTTPD_LOG_ERR, p->req, "upstream %s switched protocols unasked", p->srv->name);
				fail(p, 502);
			}
			continue_head(p);
			return;
		}
		response_start(p);
		return;
	}
	if (p->state == PS_BODY && (events & (HTTPD_EVENT_READ | HTTPD_EVENT_ERROR))) {
		if ((events & HTTPD_EVENT_ERROR) && p->uc != NULL) {
			/* A hang-up is reported for as long as the fd lives: once is enough, the reads say the rest. */
			httpd_event_del(p->uc->ev);
			p->uc->ev = NULL;
		}
		body_pump(p);
	}
}

static void on_timer(struct httpd_request *req, void *arg, unsigned events)
{
	struct proxy_req *p = arg;
	uint64_t now = now_ms();
	unsigned limit = p->state == PS_CONNECTING ? p->pl->connect_ms
	               : p->state == PS_SENDING ? p->pl->send_ms : p->pl->read_ms;

	(void)req;
	(void)events;
	p->timer = NULL;
	if (p->state == PS_DONE)
		return;
	if (p->state != PS_CONNECTING && now - p->progress_ms < limit) {
		timer_arm(p, (unsigned)(limit - (now - p->progress_ms)));
		return;
	}
	if (p->state == PS_BODY) {
		httpd_log_request(HTTPD_LOG_ERR, p->req, "upstream %s: no response bytes within read_timeout (%u s)",
		                  p->srv->name, limit / 1000);
		body_break(p);
		return;
	}
	upstream_error(p, 504, p->state == PS_CONNECTING ? "connect timed out (connect_timeout)"
	                       : p->state == PS_SENDING ? "sending timed out (send_timeout)"
	                       : "no response within read_timeout", 0);
}

/* --- the response -------------------------------------------------------- */

static bool response_hop_by_hop(const char *name, const struct conn_lines *connection)
{
	static const char *const own[] = { "Date", "Server" };   /* the core's */

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcasecmp(name, own[i]) == 0)
			return true;
	return hop_by_hop(name, connection);
}

/* Wakes the core's stream if it is waiting for us. */
static void stream_wake(struct proxy_req *p)
{
	if (p->waiting) {
		p->waiting = false;
		httpd_response_stream_wake(p->req);
	}
}

/* The upstream failed in the middle of the body: what is stored still goes out, then the client sees a cut. */
static void body_break(struct proxy_req *p)
{
	cache_body_end(p->cache, false);
	httpd_event_del(p->timer);
	p->timer = NULL;
	upstream_let_go(p, false);
	p->state = PS_DONE;
	p->body_broken = true;
	stream_wake(p);
}

/* The whole body is decoded and stored: the upstream connection goes back to the pool if it can. */
static void body_complete(struct proxy_req *p, bool clean)
{
	cache_body_end(p->cache, true);
	httpd_event_del(p->timer);
	p->timer = NULL;
	upstream_succeeded(p->srv);
	upstream_let_go(p, clean && p->upstream_keep);
	p->state = PS_DONE;
	p->body_stored = true;
	stream_wake(p);
}

static size_t ready_room(struct proxy_req *p)
{
	if (p->ready_off > 0) {
		memmove(p->ready, p->ready + p->ready_off, p->ready_len - p->ready_off);
		p->ready_len -= p->ready_off;
		p->ready_off = 0;
	}
	return READY_MAX - p->ready_len;
}

/* Keeps n decoded bytes for the client: in memory, or (buffering) in a temporary file once memory is full. */
static int store(struct proxy_req *p, const char *data, size_t n)
{
	if (n == 0)
		return 0;
	cache_body(p->cache, data, n);
	if (p->file_wr == 0 && ready_room(p) >= n) {
		memcpy(p->ready + p->ready_len, data, n);
		p->ready_len += n;
		return 0;
	}
	if (p->spill_fd < 0) {
		p->spill_fd = open(p->pl->ps->temp_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (p->spill_fd < 0) {
			httpd_log_request(HTTPD_LOG_ERR, p->req, "proxy buffering: cannot make a temporary file in %s: %s",
			                  p->pl->ps->temp_dir, strerror(errno));
			return -1;
		}
	}
	while (n > 0) {
		ssize_t w = pwrite(p->spill_fd, data, n, p->file_wr);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			httpd_log_request(HTTPD_LOG_ERR, p->req, "proxy buffering: writing to %s: %s", p->pl->ps->temp_dir,
			                  strerror(errno));
			return -1;
		}
		p->file_wr += w;
		data += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Decodes the raw bytes in in[0..in_len) into the store; false after a framing error (handled). */
static bool decode(struct proxy_req *p)
{
	size_t n;

	if (p->resp_chunked) {
		size_t used = 0, produced = 0;
		int rc = httpd_chunked_decode(&p->chunked, p->in, p->in_len, &used, p->in, p->in_len, &produced,
		                              INT64_MAX);   /* what a spill file's offsets can hold */

		if (rc != HTTPD_CHUNKED_DONE && rc != HTTPD_CHUNKED_AGAIN) {
			httpd_log_request(HTTPD_LOG_ERR, p->req, "upstream %s: invalid chunked framing", p->srv->name);
			body_break(p);
			return false;
		}
		if (store(p, p->in, produced) < 0) {
			body_break(p);
			return false;
		}
		memmove(p->in, p->in + used, p->in_len - used);
		p->in_len -= used;
		if (rc == HTTPD_CHUNKED_DONE)
			body_complete(p, p->in_len == 0);
		return true;
	}
	n = p->until_eof || (int64_t)p->in_len < p->left ? p->in_len : (size_t)p->left;
	if (store(p, p->in, n) < 0) {
		body_break(p);
		return false;
	}
	p->in_len -= n;
	if (!p->until_eof) {
		p->left -= (int64_t)n;
		if (p->left == 0)
			body_complete(p, p->in_len == 0);   /* bytes beyond the length: not reusable */
	}
	p->in_len = 0;
	return true;
}

/*
 * Reads the upstream while there is room: with buffering, always (a full
 * memory buffer spills to a file, so the upstream is let go as soon as it
 * is done); without, only while the memory buffer has room, so a slow
 * client slows the upstream down.
 */
static void body_pump(struct proxy_req *p)
{
	bool got = false;

	p->pump_waits = false;
	while (p->state == PS_BODY) {
		size_t room = IN_MAX - p->in_len;
		ssize_t n;

		/* Past proxy_max_temp_file_size the spill file grows no more: the client sets the pace. */
		if (!p->pl->buffering || (uint64_t)p->file_wr >= p->pl->max_temp_file) {
			size_t free_ready = p->file_wr == 0 ? ready_room(p) : 0;

			if (free_ready < room + 32)   /* decoding never grows: raw bytes bound the decoded ones */
				room = free_ready > 32 ? free_ready - 32 : 0;
			if (room == 0) {
				io_want(p, 0);   /* the client has to take some first */
				p->pump_waits = true;
				break;
			}
		}
		n = recv(p->fd, p->in + p->in_len, room, 0);
		if (n > 0) {
			p->in_len += (size_t)n;
			p->progress_ms = now_ms();
			got = true;
			if (!decode(p))
				return;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			io_want(p, HTTPD_EVENT_READ);
			break;
		}
		if (n == 0 && p->until_eof) {
			p->upstream_keep = false;
			body_complete(p, false);
			return;
		}
		httpd_log_request(HTTPD_LOG_ERR, p->req, "upstream %s: %s in the middle of the body", p->srv->name,
		                  n == 0 ? "the connection closed" : strerror(errno));
		body_break(p);
		return;
	}
	if (got)
		stream_wake(p);
}

/*
 * The body as the client should get it, up to len bytes: 0 at the end, -1
 * on a cut, AGAIN to wait.  What is stored is looked at again after the
 * one read it may make: bytes that arrived only for that read would
 * otherwise wait for a wake-up that already came and went.
 */
static ssize_t body_read(void *ctx, char *out, size_t len)
{
	struct proxy_req *p = ctx;

	for (bool pumped = false; ; pumped = true) {
		if (p->ready_off < p->ready_len) {
			size_t n = p->ready_len - p->ready_off < len ? p->ready_len - p->ready_off : len;

			memcpy(out, p->ready + p->ready_off, n);
			p->ready_off += n;
			p->progress_ms = now_ms();   /* the client taking bytes is progress too */
			if (p->state == PS_BODY && (!p->pl->buffering || p->pump_waits))
				body_pump(p);   /* room again: read on */
			return (ssize_t)n;
		}
		if (p->file_rd < p->file_wr) {
			size_t want = (size_t)(p->file_wr - p->file_rd) < len ? (size_t)(p->file_wr - p->file_rd) : len;
			ssize_t n = pread(p->spill_fd, out, want, p->file_rd);

			if (n <= 0) {
				httpd_log_request(HTTPD_LOG_ERR, p->req, "proxy buffering: reading back from %s: %s",
				                  p->pl->ps->temp_dir, n == 0 ? "short file" : strerror(errno));
				upstream_let_go(p, false);
				return -1;
			}
			p->file_rd += n;
			if (p->file_rd == p->file_wr) {
				p->file_rd = p->file_wr = 0;   /* drained: memory first again, the file is reused */
				if (p->state == PS_BODY && p->pump_waits)
					body_pump(p);   /* it stopped at proxy_max_temp_file_size: read on */
			}
			p->progress_ms = now_ms();
			return n;
		}
		if (p->body_stored)
			return 0;
		if (p->body_broken || p->fd < 0)
			return -1;
		if (pumped)
			break;
		body_pump(p);
	}
	p->waiting = true;
	return HTTPD_STREAM_AGAIN;
}

static void response_start(struct proxy_req *p)
{
	const struct proxy_head *h = &p->ph;
	struct conn_lines connection = { .count = 0 };
	uint64_t took = precise_ms() - p->started_ms;

	if (p->cache != NULL && cache_upstream_head(p->cache, h)) {
		/* Answered from the store (a 304 merged, or stale for a 5xx): the upstream's body is not wanted. */
		bool clean = !proxy_head_has_body(h, p->head_request) && p->in_off == p->in_len && h->keep_alive;

		note_status(p, h->status);
		note_response_time(p, took);
		httpd_event_del(p->timer);
		p->timer = NULL;
		upstream_succeeded(p->srv);
		upstream_let_go(p, clean);
		p->state = PS_DONE;
		p->finished = true;
		httpd_request_finish(p->req, HTTPD_OK);
		return;
	}
	for (size_t i = 0; i < h->count; i++)
		conn_lines_add(&connection, h->headers[i].name, h->headers[i].value);
	httpd_response_set_status(p->res, h->status);
	for (size_t i = 0; i < h->count; i++) {
		if (response_hop_by_hop(h->headers[i].name, &connection))
			continue;
		if (httpd_response_add_header(p->res, h->headers[i].name, h->headers[i].value) < 0) {
			httpd_log_request(HTTPD_LOG_ERR, p->req, "upstream %s: cannot pass on header %s", p->srv->name,
			                  h->headers[i].name);
			fail(p, 502);
			return;
		}
	}
	if (p->pl->via &&
	    httpd_response_add_header(p->res, "Via", h->version == 10 ? "1.0 prefork-httpd" : "1.1 prefork-httpd") < 0) {
		fail(p, 500);
		return;
	}
	note_status(p, h->status);
	note_response_time(p, took);
	p->upstream_keep = h->keep_alive;
	if (!proxy_head_has_body(h, p->head_request)) {
		bool clean = p->in_off == p->in_len && h->keep_alive && (h->content_length <= 0 || p->head_request);

		httpd_event_del(p->timer);
		p->timer = NULL;
		cache_body_end(p->cache, !p->head_request);
		upstream_succeeded(p->srv);
		upstream_let_go(p, clean && !h->chunked);
		p->state = PS_DONE;
		if (p->head_request && h->status >= 200 && h->status != 204 && h->status != 304)
			httpd_response_set_head_length(p->res, h->chunked ? -1 : h->content_length);
		else
			httpd_response_set_body_buffer(p->res, "", 0);
	} else {
		p->resp_chunked = h->chunked;
		if (p->resp_chunked)
			httpd_chunked_init(&p->chunked);
		p->until_eof = !h->chunked && h->content_length < 0;
		p->left = h->content_length;
		if (p->until_eof)
			p->upstream_keep = false;
		if (!p->resp_chunked && p->left >= 0 && (uint64_t)(p->in_len - p->in_off) >= (uint64_t)p->left) {
			/* The whole body came with the head: it goes out from where it is, with a Content-Length. */
			const char *whole = p->in + p->in_off;

			cache_body(p->cache, whole, (size_t)p->left);
			body_complete(p, p->in_len - p->in_off == (size_t)p->left);
			httpd_response_set_body_buffer(p->res, whole, (size_t)p->left);
			p->finished = true;
			httpd_request_finish(p->req, HTTPD_OK);
			return;
		}
		p->ready = httpd_pool_alloc(p->req->pool, READY_MAX);
		if (p->ready == NULL) {
			fail(p, 500);
			return;
		}
		p->state = PS_BODY;
		timer_arm(p, p->pl->read_ms);
		/* What came with the head is the body's beginning, often all of it. */
		memmove(p->in, p->in + p->in_off, p->in_len - p->in_off);
		p->in_len -= p->in_off;
		p->in_off = 0;
		if (p->left == 0 && !p->resp_chunked && !p->until_eof)
			body_complete(p, p->in_len == 0);
		else if (p->in_len > 0)
			(void)decode(p);
		if (p->body_broken) {
			fail(p, 502);
			return;
		}
		if (p->body_stored && p->file_wr == 0) {
			/* Complete already: one write with a Content-Length, and the connection is back in the pool. */
			httpd_response_set_body_buffer(p->res, p->ready + p->ready_off, p->ready_len - p->ready_off);
		} else {
			httpd_response_set_body_stream(p->res, body_read, p);
			body_pump(p);
		}
	}
	p->finished = true;
	httpd_request_finish(p->req, HTTPD_OK);
}

/* --- hooks ---------------------------------------------------------------- */

static void on_cancel(void *arg)
{
	struct proxy_req *p = arg;

	/* The client is gone: the upstream connection goes too (never back to the pool). */
	p->finished = true;
	httpd_event_del(p->timer);
	p->timer = NULL;
	upstream_let_go(p, false);
	p->state = PS_DONE;
}

static void cache_fetch(void *data, struct httpd_request *req, struct httpd_response *res, struct cache_req *cr);
static int cache_refresh(void *data, struct httpd_request *req, struct cache_req *bg);

static struct proxy_req *proxy_req_new(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct proxy_req *p = httpd_pool_alloc(req->pool, sizeof(*p));

	if (p == NULL)
		return NULL;
	memset(p, 0, sizeof(*p));
	p->req = req;
	p->res = res;
	p->pl = data;
	p->up = p->pl->up;
	p->fd = -1;
	p->spill_fd = -1;
	p->started_ms = precise_ms();
	p->head_request = req->method == HTTPD_METHOD_HEAD;
	p->has_body = req->chunked || req->content_length > 0;
	p->body_chunked = req->chunked;
	if (p->pl->websocket && !p->has_body) {
		const char *upgrade = httpd_request_header(req, "Upgrade");
		const char *connection = httpd_request_header(req, "Connection");

		/* Connection must name upgrade (RFC 9110 §7.8); only GET can carry a WebSocket handshake. */
		if (upgrade != NULL && connection != NULL && httpd_http1_list_has(connection, "upgrade") &&
		    strpbrk(upgrade, "\r\n") == NULL)
			p->upgrade = upgrade;
	}
	if (httpd_pool_cleanup(req->pool, proxy_req_cleanup, p) < 0 || (p->in = in_buffer_take()) == NULL ||
	    httpd_request_note_set(req, "proxy", p) < 0 || httpd_request_on_cancel(req, on_cancel, p) < 0)
		return NULL;
	return p;
}

static int proxy_start(void *data, struct httpd_request *req, struct httpd_response *res, struct proxy_req **out)
{
	struct proxy_req *p = proxy_req_new(data, req, res);

	if (p == NULL)
		return 500;
	*out = p;
	/* head_build needs the server for Host = upstream: pick first, then build. */
	attempt(p);
	return p->error;
}

/* Room for more bytes after the unsent ones (moved to the front). */
static int out_reserve(struct proxy_req *p, size_t more)
{
	char *grown;
	size_t cap;

	if (p->out_off > 0) {
		memmove(p->out, p->out + p->out_off, p->out_len - p->out_off);
		p->out_len -= p->out_off;
		p->out_off = 0;
	}
	if (p->out_len + more <= p->out_cap)
		return 0;
	cap = p->out_len + more > OUT_CAP ? p->out_len + more : OUT_CAP;
	grown = httpd_pool_alloc(p->req->pool, cap);
	if (grown == NULL)
		return -1;
	if (p->out_len > 0)
		memcpy(grown, p->out, p->out_len);
	p->out = grown;
	p->out_cap = cap;
	return 0;
}

static int body(void *data, struct httpd_request *req, struct httpd_response *res, enum httpd_body_event ev,
                const void *buf, size_t len)
{
	struct proxy_req *p = httpd_request_note(req, "proxy");

	if (ev == HTTPD_BODY_START) {
		struct proxy_loc *pl = data;
		struct cache_req *cr = NULL;
		int rc;

		/* A request with a body is never answered from the store; an unsafe one invalidates it. */
		if (pl->cache.zone != NULL &&
		    cache_request_start(&pl->cache, req, res, cache_fetch, cache_refresh, data, &cr) != CACHE_FETCH)
			return 500;
		p = proxy_req_new(data, req, res);
		if (p == NULL)
			return 500;
		p->cache = cr;
		attempt(p);
		rc = p->error;
		return rc != 0 ? rc : HTTPD_OK;
	}
	if (p == NULL)
		return 500;
	if (p->error != 0)
		return p->error;
	if (ev == HTTPD_BODY_DATA && len > 0) {
		if (out_reserve(p, len + 32) < 0)
			return 500;
		if (p->body_chunked)
			p->out_len += (size_t)snprintf(p->out + p->out_len, 24, "%zx\r\n", len);
		memcpy(p->out + p->out_len, buf, len);
		p->out_len += len;
		if (p->body_chunked) {
			memcpy(p->out + p->out_len, "\r\n", 2);
			p->out_len += 2;
		}
	} else if (ev == HTTPD_BODY_END) {
		if (p->body_chunked) {
			if (out_reserve(p, 5) < 0)
				return 500;
			memcpy(p->out + p->out_len, "0\r\n\r\n", 5);
			p->out_len += 5;
		}
		p->body_done = true;
	}
	if (p->state == PS_SENDING) {
		if (send_pending(p)) {
			if (p->body_done)
				head_wait(p);
			else
				io_want(p, 0);
		} else if (p->error == 0 && p->state == PS_SENDING) {
			io_want(p, HTTPD_EVENT_WRITE);
		}
	}
	if (p->error != 0)
		return p->error;
	/* Too much waiting for the upstream: stop reading the client until it drains. */
	if (!p->body_done && p->out_len - p->out_off >= OUT_MAX && !p->client_paused) {
		p->client_paused = true;
		httpd_request_body_pause(req);
	}
	return HTTPD_OK;
}

/* A request that waited for another's fetch of its key goes to the origin itself after all. */
static void cache_fetch(void *data, struct httpd_request *req, struct httpd_response *res, struct cache_req *cr)
{
	struct proxy_req *p = proxy_req_new(data, req, res);

	if (p == NULL) {
		httpd_request_finish(req, 500);
		return;
	}
	p->cache = cr;
	p->pending = true;
	attempt(p);
}

/* --- background revalidation ---------------------------------------------
 *
 * stale-while-revalidate (RFC 5861 §3) and proxy_cache_background_update:
 * the client was answered from the store, and the origin is asked again
 * on a connection of the revalidation's own, with worker events and the
 * cache's pool, so it outlives the request that started it.  Its answer
 * goes only to the store; one overall deadline (connect_timeout +
 * read_timeout) bounds it.
 */
struct refresh {
	struct cache_req       *bg;
	struct upstream_server *srv;
	int                     fd;
	struct httpd_event     *io, *deadline;
	char                   *head, *in;
	size_t                  head_len, head_off, in_len;
	bool                    connected, got_head, chunked, until_eof;
	int64_t                 left;
	struct httpd_chunked    dec;
	struct proxy_head       ph;
};

static void refresh_end(struct refresh *r, bool whole)
{
	httpd_event_del(r->io);
	httpd_event_del(r->deadline);
	close(r->fd);
	if (r->srv->active > 0)
		r->srv->active--;
	cache_body_end(r->bg, whole);
	cache_background_end(r->bg);   /* frees r too */
}

/* Decodes the body bytes in in[0..in_len) into the store: true when the revalidation has ended. */
static bool refresh_take(struct refresh *r)
{
	size_t n;

	if (r->chunked) {
		size_t used = 0, produced = 0;
		int rc = httpd_chunked_decode(&r->dec, r->in, r->in_len, &used, r->in, r->in_len, &produced, INT64_MAX);

		if (rc != HTTPD_CHUNKED_DONE && rc != HTTPD_CHUNKED_AGAIN) {
			refresh_end(r, false);
			return true;
		}
		cache_body(r->bg, r->in, produced);
		memmove(r->in, r->in + used, r->in_len - used);
		r->in_len -= used;
		if (rc == HTTPD_CHUNKED_DONE) {
			refresh_end(r, true);
			return true;
		}
		return false;
	}
	n = r->until_eof || (int64_t)r->in_len < r->left ? r->in_len : (size_t)r->left;
	cache_body(r->bg, r->in, n);
	r->in_len = 0;
	if (!r->until_eof && (r->left -= (int64_t)n) == 0) {
		refresh_end(r, true);
		return true;
	}
	return false;
}

static void refresh_io(struct httpd_request *req, void *arg, unsigned events)
{
	struct refresh *r = arg;

	(void)req;
	(void)events;
	if (!r->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			httpd_log(HTTPD_LOG_ERR, "upstream %s: background revalidation: connect: %s", r->srv->name,
			          strerror(err != 0 ? err : errno));
			refresh_end(r, false);
			return;
		}
		r->connected = true;
	}
	while (r->head_off < r->head_len) {
		ssize_t n = send(r->fd, r->head + r->head_off, r->head_len - r->head_off, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			refresh_end(r, false);
			return;
		}
		r->head_off += (size_t)n;
		if (r->head_off == r->head_len && httpd_event_fd_mod(r->io, HTTPD_EVENT_READ) < 0) {
			refresh_end(r, false);
			return;
		}
	}
	for (;;) {
		ssize_t n = recv(r->fd, r->in + r->in_len, IN_MAX - r->in_len, 0);
		const char *why = NULL;
		long head;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			/* The end of a body without a length is its close; any other close is a cut. */
			refresh_end(r, n == 0 && r->got_head && r->until_eof);
			return;
		}
		r->in_len += (size_t)n;
		if (r->got_head) {
			if (refresh_take(r))
				return;
			continue;
		}
		head = proxy_head_parse(r->in, r->in_len, &r->ph, &why);
		if (head < 0 || (head == 0 && r->in_len == IN_MAX)) {
			refresh_end(r, false);
			return;
		}
		if (head == 0)
			continue;
		if (r->ph.status < 200) {
			memmove(r->in, r->in + head, r->in_len - (size_t)head);
			r->in_len -= (size_t)head;
			continue;
		}
		r->got_head = true;
		/* A 304 merged (or a 5xx that leaves the stale entry as it is), or a body of nothing: done. */
		if (cache_upstream_head(r->bg, &r->ph) || !proxy_head_has_body(&r->ph, false)) {
			refresh_end(r, !proxy_head_has_body(&r->ph, false));
			return;
		}
		r->chunked = r->ph.chunked;
		if (r->chunked)
			httpd_chunked_init(&r->dec);
		r->until_eof = !r->chunked && r->ph.content_length < 0;
		r->left = r->ph.content_length;
		memmove(r->in, r->in + head, r->in_len - (size_t)head);
		r->in_len -= (size_t)head;
		if (r->in_len > 0 && refresh_take(r))
			return;
	}
}

static void refresh_timeout(struct httpd_request *req, void *arg, unsigned events)
{
	struct refresh *r = arg;

	(void)req;
	(void)events;
	r->deadline = NULL;
	httpd_log(HTTPD_LOG_ERR, "upstream %s: background revalidation did not finish within connect_timeout + "
	          "read_timeout", r->srv->name);
	refresh_end(r, false);
}

static int cache_refresh(void *data, struct httpd_request *req, struct cache_req *bg)
{
	struct proxy_loc *pl = data;
	struct httpd_pool *pool = cache_background_pool(bg);
	struct refresh *r = httpd_pool_alloc(pool, sizeof(*r));
	struct proxy_req tmp;
	char *head;
	int err = 0;

	if (r == NULL)
		return -1;
	memset(r, 0, sizeof(*r));
	r->bg = bg;
	r->fd = -1;
	r->srv = upstream_pick(pl->up, now_ms(), 0);
	if (r->srv == NULL)
		return -1;
	/* The request as the client's fetch would send it, from the client's request while it is there. */
	memset(&tmp, 0, sizeof(tmp));
	tmp.req = req;
	tmp.pl = pl;
	tmp.up = pl->up;
	tmp.srv = r->srv;
	tmp.cache = bg;
	tmp.fd = tmp.spill_fd = -1;
	head = head_build(&tmp);
	r->head = httpd_pool_alloc(pool, tmp.head_len + 1);
	r->in = httpd_pool_alloc(pool, IN_MAX);
	if (head == NULL || r->head == NULL || r->in == NULL)
		return -1;
	memcpy(r->head, head, tmp.head_len);
	r->head_len = tmp.head_len;
	r->fd = socket_connect(&tmp, &err);
	if (r->fd < 0) {
		httpd_log(HTTPD_LOG_ERR, "upstream %s: background revalidation: connect: %s", r->srv->name, strerror(err));
		return -1;
	}
	r->io = httpd_worker_event_fd(r->fd, HTTPD_EVENT_WRITE, refresh_io, r);
	r->deadline = httpd_worker_timer(pl->connect_ms + pl->read_ms, refresh_timeout, r);
	if (r->io == NULL || r->deadline == NULL) {
		httpd_event_del(r->io);
		httpd_event_del(r->deadline);
		close(r->fd);
		return -1;
	}
	r->srv->active++;
	return 0;
}

static int handler(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct proxy_req *p = httpd_request_note(req, "proxy");
	struct proxy_loc *pl = data;

	if (p == NULL && pl->cache.zone != NULL) {
		struct cache_req *cr = NULL;

		switch (cache_request_start(&pl->cache, req, res, cache_fetch, cache_refresh, data, &cr)) {
		case CACHE_ANSWERED:
			return HTTPD_OK;
		case CACHE_WAITING:
			return HTTPD_PENDING;
		case CACHE_FAILED:
			return 500;
		case CACHE_FETCH:
			break;
		}
		p = proxy_req_new(data, req, res);
		if (p == NULL)
			return 500;
		p->cache = cr;
		attempt(p);
	} else if (p == NULL) {
		int rc = proxy_start(data, req, res, &p);

		if (rc != 0)
			return rc;
	}
	if (p->answered)
		return HTTPD_OK;
	if (p->error != 0)
		return p->error;
	if (p->state == PS_DONE && !p->finished)
		return 502;
	p->pending = true;
	return HTTPD_PENDING;
}

/* --- active health checks --------------------------------------------------
 *
 * One worker (number 0 of each generation) probes every server of every
 * upstream with a health_check, every health_interval; the verdicts live
 * in shared memory, so every worker skips a server that failed, and N
 * workers do not make N times the probes.  A probe passes with a 2xx or
 * 3xx status within the interval (at most 5 s).
 */
struct probe {
	struct upstream    *u;
	size_t              i;
	int                 fd;
	struct httpd_event *io, *deadline;
	char                req[512];
	size_t              req_len, sent;
	char                buf[64];
	size_t              len;
	bool                connected;
};

static void probe_done(struct probe *p, bool ok, const char *why)
{
	struct upstream_health *h = &p->u->health[p->i];
	bool was_down = atomic_load(&h->down);

	httpd_event_del(p->io);
	httpd_event_del(p->deadline);
	p->io = p->deadline = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (was_down == !ok)
		return;
	atomic_store(&h->down, (unsigned char)!ok);
	if (ok)
		httpd_log(HTTPD_LOG_NOTICE, "upstream \"%s\": server %s passed its health check again", p->u->name,
		          p->u->servers[p->i].name);
	else
		httpd_log(HTTPD_LOG_WARN, "upstream \"%s\": server %s failed its health check (%s %s): taken out",
		          p->u->name, p->u->servers[p->i].name, p->u->health_check, why);
}

static void probe_io(struct httpd_request *req, void *arg, unsigned events)
{
	struct probe *p = arg;
	ssize_t n;

	(void)req;
	if (!p->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			probe_done(p, false, err != 0 ? strerror(err) : "connect failed");
			return;
		}
		p->connected = true;
	}
	if (p->sent < p->req_len) {
		n = send(p->fd, p->req + p->sent, p->req_len - p->sent, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN) {
			probe_done(p, false, strerror(errno));
			return;
		}
		if (n > 0)
			p->sent += (size_t)n;
		if (p->sent == p->req_len)
			(void)httpd_event_fd_mod(p->io, HTTPD_EVENT_READ);
		return;
	}
	if (!(events & (HTTPD_EVENT_READ | HTTPD_EVENT_ERROR)))
		return;
	n = recv(p->fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len, 0);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n > 0)
		p->len += (size_t)n;
	p->buf[p->len] = '\0';
	if (p->len >= 12 || n <= 0) {
		/* "HTTP/1.1 200": the status is all a probe needs. */
		bool ok = p->len >= 12 && strncmp(p->buf, "HTTP/1.", 7) == 0 && (p->buf[9] == '2' || p->buf[9] == '3');
		char why[64];

		snprintf(why, sizeof(why), "%s", p->len >= 12 ? "answered " : "no answer");
		if (p->len >= 12)
			snprintf(why + 9, sizeof(why) - 9, "%.3s", p->buf + 9);
		probe_done(p, ok, why);
	}
}

static void probe_timeout(struct httpd_request *req, void *arg, unsigned events)
{
	struct probe *p = arg;

	(void)req;
	(void)events;
	p->deadline = NULL;
	probe_done(p, false, "timed out");
}

static void probe_start(struct probe *p)
{
	const struct upstream_server *s = &p->u->servers[p->i];
	int fd;

	if (p->fd >= 0)
		return;   /* the last one is still out */
	p->len = p->sent = 0;
	p->connected = false;
	p->req_len = (size_t)snprintf(p->req, sizeof(p->req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
	                              "User-Agent: prefork-httpd health check\r\n\r\n", p->u->health_check, s->name);
	fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (const struct sockaddr *)&s->addr, s->addrlen) < 0 && errno != EINPROGRESS)) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		probe_done(p, false, strerror(err));
		return;
	}
	p->fd = fd;
	p->io = httpd_worker_event_fd(fd, HTTPD_EVENT_WRITE, probe_io, p);
	p->deadline = httpd_worker_timer(p->u->health_interval_ms < 5000 ? p->u->health_interval_ms : 5000,
	                                 probe_timeout, p);
	if (p->io == NULL || p->deadline == NULL)
		probe_done(p, false, "out of memory");
}

struct health_round {
	struct upstream *u;
	struct probe    *probes;
};

static void health_tick(struct httpd_request *req, void *arg, unsigned events)
{
	struct health_round *hr = arg;

	(void)req;
	(void)events;
	for (size_t i = 0; i < hr->u->count; i++)
		if (hr->u->servers[i].host == NULL)   /* a name's slots differ from worker to worker */
			probe_start(&hr->probes[i]);
	if (httpd_worker_timer(hr->u->health_interval_ms, health_tick, hr) == NULL)
		httpd_log(HTTPD_LOG_ERR, "upstream \"%s\": cannot schedule health checks: out of memory", hr->u->name);
}

/* A slot whose address its name no longer has: its pooled connections close (requests on it finish). */
static void slot_gone(struct upstream *u, struct upstream_server *s)
{
	(void)u;
	while (s->idle_count > 0)
		uc_destroy(s->idle[--s->idle_count]);
}

static int worker_init(void *data)
{
	static bool started, resolving;
	struct proxy_loc *pl = data;

	if (!resolving && pl->ps != NULL) {
		/* Every worker keeps its own upstreams' names up to date. */
		resolving = true;
		for (size_t i = 0; i < pl->ps->count; i++)
			(void)resolve_worker_start(&pl->ps->ups[i], slot_gone);
	}
	if (started || pl->ps == NULL || httpd_worker_id() != 0)
		return 0;
	started = true;
	cache_worker_start(pl->ps->zones);
	for (size_t i = 0; i < pl->ps->count; i++) {
		struct upstream *u = &pl->ps->ups[i];
		struct health_round *hr;

		if (u->health_check == NULL)
			continue;
		/* Lives as long as this worker: freed with the process. */
		hr = calloc(1, sizeof(*hr));
		if (hr == NULL || (hr->probes = calloc(u->count, sizeof(*hr->probes))) == NULL) {
			free(hr);
			return -1;
		}
		hr->u = u;
		for (size_t j = 0; j < u->count; j++) {
			hr->probes[j].u = u;
			hr->probes[j].i = j;
			hr->probes[j].fd = -1;
		}
		health_tick(NULL, hr, 0);
	}
	return 0;
}

/* $upstream_cache_status: HIT, MISS, EXPIRED, STALE, UPDATING, REVALIDATED or BYPASS, as nginx says them. */
static const char *variable_cache_status(const struct httpd_request *req, char *scratch, size_t size)
{
	(void)scratch;
	(void)size;
	return httpd_request_note(req, "upstream_cache_status");
}

static int proxy_init(struct httpd_module_api *api)
{
	httpd_module_name(api, "proxy");
	httpd_module_options(api, location_options);
	httpd_module_server_options(api, server_options);
	httpd_hook_server_init(api, server_init);
	httpd_hook_server_exit(api, server_exit);
	httpd_hook_configure(api, configure);
	httpd_hook_release(api, release);
	httpd_hook_worker_init(api, worker_init);
	httpd_hook_body(api, body);
	httpd_module_variable(api, "upstream_cache_status", variable_cache_status);
	httpd_hook_handler(api, handler, HTTPD_METHOD_GET | HTTPD_METHOD_HEAD | HTTPD_METHOD_POST | HTTPD_METHOD_PUT |
	                   HTTPD_METHOD_DELETE | HTTPD_METHOD_PATCH | HTTPD_METHOD_OPTIONS | HTTPD_METHOD_OTHER);
	return 0;
}

HTTPD_MODULE(proxy_init)
