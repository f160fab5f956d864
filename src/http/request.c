#include "request.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "access.h"
#include "access_log.h"
#include "auth_basic.h"
#include "body_filter.h"
#include "compress.h"
#include "limit.h"
#include "scoreboard.h"
#include "async.h"
#include "conn.h"
#include "header_rules.h"
#include "log.h"
#include "log_format.h"
#include "path.h"
#include "pool.h"
#include "rewrite.h"
#include "request_variables.h"
#include "tls.h"
#include "vhost.h"
#include "worker.h"

struct request *request_create(struct conn *c, const struct request_output *out)
{
	struct httpd_pool *pool = conn_pool_take(c);
	struct request *r;

	if (pool == NULL)
		return NULL;
	r = pool_alloc(pool, sizeof(*r));
	if (r == NULL) {
		pool_destroy(pool);
		return NULL;
	}
	memset(r, 0, sizeof(*r));
	r->conn = c;
	r->out = out;
	r->w = c->w;
	r->pool = pool;
	r->body.fd = -1;
	r->started_ms = c->w->now_ms;
	if (c->w->config->access_format->needs_time)
		r->started_us = access_log_clock_us();
	response_init(&r->res, pool);
	r->req.pool = pool;
	r->req.client_addr = c->peer;
	r->req.peer_addr = c->peer;
	r->req.client_port = c->peer_port;
	r->req.content_length = -1;
	return r;
}

/* "GET, HEAD, OPTIONS" for a method set; OPTIONS is always the core's. */
static const char *allow_header(struct httpd_pool *pool, unsigned methods)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{ HTTPD_METHOD_GET, "GET" }, { HTTPD_METHOD_HEAD, "HEAD" }, { HTTPD_METHOD_POST, "POST" },
		{ HTTPD_METHOD_PUT, "PUT" }, { HTTPD_METHOD_DELETE, "DELETE" },
		{ HTTPD_METHOD_PATCH, "PATCH" }, { HTTPD_METHOD_OPTIONS, "OPTIONS" },
	};
	char buf[128];
	size_t len = 0;

	methods |= HTTPD_METHOD_OPTIONS;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(methods & names[i].bit))
			continue;
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? ", " : "", names[i].name);
		if (len >= sizeof(buf))
			break;
	}
	return httpd_pool_strdup(pool, buf);
}

static unsigned all_methods(const struct httpd_config *cfg)
{
	unsigned m = 0;

	for (size_t i = 0; i < cfg->location_count; i++)
		m |= cfg->locations[i].methods;
	return m;
}

/* 200 with Allow and an empty body (RFC 9110 §9.3.7). */
static int options_answer(struct request *r, unsigned methods)
{
	r->allow = allow_header(r->pool, methods);
	if (r->allow == NULL)
		return 500;
	httpd_response_set_body_buffer(&r->res, "", 0);
	r->out->respond(r);
	return REQUEST_ANSWERED;
}

/* The body would be taken for the next request if left unread: close after answering. */
static void body_unread(struct request *r)
{
	if (r->conn != NULL && (r->head.chunked || r->head.content_length > 0))
		r->out->body_unread(r);
}

/* Eight bytes' worth of 32 bits, in lower-case hex, most significant first. */
static uint64_t hex8(uint32_t half)
{
	uint64_t v = half, letters;

	/* Spread the nibbles one to a byte, the lowest in byte 0... */
	v = (v | v << 16) & 0x0000ffff0000ffffu;
	v = (v | v << 8) & 0x00ff00ff00ff00ffu;
	v = (v | v << 4) & 0x0f0f0f0f0f0f0f0fu;
	/* ...make them digits, 'a'-'f' where a nibble is above 9... */
	letters = ((v + 0x0606060606060606u) >> 4) & 0x0101010101010101u;
	v += 0x3030303030303030u + letters * ('a' - '0' - 10);
	/* ...and put the highest first in memory. */
	return __builtin_bswap64(v);
}

/* 16 hex digits: a per-worker random base plus a counter, unique without coordination. */
static int request_id_make(struct request *r)
{
	uint64_t id = r->w->request_id_base + ++r->w->request_seq;
	uint64_t high = hex8((uint32_t)(id >> 32)), low = hex8((uint32_t)id);
	char *out = pool_alloc(r->pool, 17);

	if (out == NULL)
		return 500;
	memcpy(out, &high, 8);
	memcpy(out + 8, &low, 8);
	out[16] = '\0';
	r->req.request_id = out;
	return 0;
}

/* Behind a trusted proxy the client is the one its header names (real_ip_from). */
static int client_from_proxy(struct request *r)
{
	const struct httpd_config *cfg = r->w->config;
	const struct httpd_request *req = &r->req;
	const char **values;
	size_t count = 0;
	char addr[64];

	if (cfg->real_ip_from_count == 0 || cfg->real_ip_header == REAL_IP_PROXY_PROTOCOL ||
	    !cidr_list_contains(cfg->real_ip_from, cfg->real_ip_from_count, req->peer_addr))
		return 0;
	/*
	 * Every line, however many: the walk starts from the right, at the
	 * trusted proxy's own line, so a client that sends many lines ahead of it
	 * must not push that line out of reach (the parser bounds the count).
	 */
	values = pool_alloc(r->pool, (req->header_count + 1) * sizeof(*values));
	if (values == NULL)
		return 500;
	for (size_t i = 0; i < req->header_count; i++)
		if (strcasecmp(req->headers[i].name, cfg->real_ip_header_name) == 0)
			values[count++] = req->headers[i].value;
	if (!real_ip_find(cfg->real_ip_header, values, count, cfg->real_ip_from, cfg->real_ip_from_count,
	                  addr, sizeof(addr)))
		return 0;
	r->req.client_addr = httpd_pool_strdup(r->pool, addr);
	r->req.client_port = 0;
	return r->req.client_addr != NULL ? 0 : 500;
}

static int request_fill(struct request *r)
{
	struct conn *c = r->conn;
	struct http_head *h = &r->head;
	struct httpd_request *req = &r->req;

	req->method = h->method;
	req->method_name = h->method_name;
	req->target = h->target;
	req->query = h->query;
	req->version = h->version;
	req->headers = h->headers;
	req->header_count = h->header_count;
	req->content_length = h->content_length;
	req->chunked = h->chunked;
	req->scheme = c->transport != &transport_tcp ? "https" : "http";
	/* A Host field's value ends where it is terminated: no copy needed. */
	if (h->host != NULL && h->host[h->host_len] == '\0')
		req->host = h->host;
	else if (h->host != NULL && (req->host = pool_strndup(r->pool, h->host, h->host_len)) == NULL)
		return 500;
	conn_local_resolve(c);
	req->local_addr = c->local;
	req->local_port = c->local_port;
	if (client_from_proxy(r) != 0)
		return 500;
	return request_id_make(r);
}

/*
 * The virtual host for the request.  On TLS the SNI already chose one
 * (its certificate is what the client checked): a Host naming another
 * server is misdirected (RFC 9110 §15.5.20).
 */
static int server_choose(struct request *r)
{
	const struct httpd_config *cfg = r->w->config;
	const struct conn *c = r->conn;
	const struct http_head *h = &r->head;
	bool named;

	if (!cfg->vhosts) {
		r->server = cfg->default_server;
		return 0;
	}
	r->server = vhost_find(cfg, h->host, h->host_len, &named);
	if (c->sni_server != NULL && r->server != c->sni_server)
		return 421;
	if (c->tls_no_sni && !vhost_same_tls(cfg->default_server, r->server))
		return 421;
	/* Whatever the handshake was (resumed or not), a server that requires a certificate gets one. */
	if (c->transport != &transport_tcp && r->server->tls_client_ca != NULL &&
	    r->server->tls_verify_client == TLS_VERIFY_REQUIRED && !tls_conn_peer_verified((struct conn *)c))
		return 421;
	return 0;
}

/* redirect_https: a plain-HTTP request goes to the same host, path and query on https://. */
static int https_redirect(struct request *r)
{
	const struct httpd_config *cfg = r->w->config;
	const struct http_head *h = &r->head;
	const char *host = r->req.host != NULL ? r->req.host : r->req.local_addr;
	size_t host_len = strlen(host);
	char port[16] = "";
	char *location;

	/* The Host's own port is the plain one: drop it ("[::1]:8080" keeps its brackets). */
	if (host[0] == '[') {
		const char *end = strchr(host, ']');

		host_len = end != NULL ? (size_t)(end - host) + 1 : host_len;
	} else if (strchr(host, ':') != NULL) {
		host_len = (size_t)(strchr(host, ':') - host);
	}
	if (cfg->tls_https_port != 443)
		snprintf(port, sizeof(port), ":%u", cfg->tls_https_port);
	location = httpd_pool_printf(r->pool, "https://%.*s%s%.*s%s%s", (int)host_len, host, port,
	                             (int)h->path_len, h->path, h->query != NULL ? "?" : "",
	                             h->query != NULL ? h->query : "");
	if (location == NULL || response_header_push(&r->res, "Location", location) < 0)
		return 500;
	body_unread(r);
	return 308;
}

int request_begin(struct request *r)
{
	const struct httpd_config *cfg = r->w->config;
	struct http_head *h = &r->head;
	struct httpd_request *req = &r->req;
	const struct httpd_location *loc;
	char *path;
	long path_len;
	int rc = request_fill(r);

	if (rc != 0)
		return rc;
	if (h->method == HTTPD_METHOD_CONNECT)
		return 501;   /* we are not a proxy */
	rc = server_choose(r);
	if (rc != 0)
		return rc;
	if (h->form == TARGET_ASTERISK) {
		body_unread(r);
		return options_answer(r, all_methods(cfg));
	}
	if (r->server->redirect_https && r->conn->transport == &transport_tcp && cfg->tls)
		return https_redirect(r);
	path = pool_alloc(r->pool, h->path_len + 1);
	if (path == NULL)
		return 500;
	path_len = path_normalise(h->path, h->path_len, path);
	if (path_len < 0)
		return 400;
	req->path = path;
	if (score_self != NULL) {
		/* What this worker is serving, for the crash report should it die on it. */
		size_t m = h->method_len, t = h->target_len;

		if (m + 1 < SCORE_REQUEST) {
			memcpy(score_self->request, h->method_name, m);
			score_self->request[m] = ' ';
			if (t > SCORE_REQUEST - m - 2)
				t = SCORE_REQUEST - m - 2;
			memcpy(score_self->request + m + 1, req->target, t);
			score_self->request[m + 1 + t] = '\0';
		}
	}

	/*
	 * rewrite, the location, its rewrite and return; then its access rules
	 * and try_files, whose fallbacks route again (or enter a named location).
	 */
	rc = rewrite_route(r);
	for (;;) {
		if (rc == REQUEST_ANSWERED) {
			body_unread(r);
			request_respond(r);
			return REQUEST_ANSWERED;
		}
		if (rc == ROUTE_AGAIN) {
			rc = rewrite_route(r);
			continue;
		}
		if (rc != 0) {
			body_unread(r);
			return rc;
		}
		loc = r->loc;
		/* access: before any check and before the body, on the real client address. */
		if (loc->access_count > 0 && !access_allowed(loc->access, loc->access_count, req->client_addr)) {
			body_unread(r);
			return 403;
		}
		rc = rewrite_try_files(r);
		if (rc == ROUTE_NAMED)
			rc = rewrite_named(r);
		else if (rc == 0)
			break;
	}
	loc = r->loc;
	if (loc->handler.mod == NULL)
		return 500;   /* not reached: a location without a handler has a return */

	if (h->method == HTTPD_METHOD_OPTIONS && !(loc->methods & HTTPD_METHOD_OPTIONS)) {
		body_unread(r);
		return options_answer(r, loc->methods);
	}
	if (!(loc->methods & h->method)) {
		/* Unknown and extension methods too: 405 says what this resource does take. */
		r->allow = allow_header(r->pool, loc->methods);
		return r->allow != NULL ? 405 : 500;
	}
	/* Core limits decided from the head come before any module sees the request. */
	if (h->content_length >= 0 && (uint64_t)h->content_length > loc->max_body_size)
		return 413;
	return 0;
}

static int status_checked(const struct module *m, const char *phase, int rc, struct request *r)
{
	if (rc >= 400 && rc <= 599)
		return rc;
	httpd_log_request(HTTPD_LOG_ERR, &r->req, "module %s: %s returned %d, not a status", m->name, phase, rc);
	return 500;
}

/* --- auth_basic ------------------------------------------------------------ */

struct auth_job {
	char           *cred;        /* the decoded "user:password", wiped as soon as it is used */
	size_t          cred_size;
	const char     *user, *password, *hash;
	bool            known, ok;
};

static void auth_wipe(void *arg)
{
	struct auth_job *j = arg;

	explicit_bzero(j->cred, j->cred_size);
}

/* On a pool thread: the hash (milliseconds for bcrypt); an unknown user costs the same. */
static void auth_work(void *arg)
{
	struct auth_job *j = arg;

	j->ok = auth_basic_verify(j->password, j->hash) && j->known;
}

static int auth_refuse(struct request *r)
{
	return response_header_push(&r->res, "WWW-Authenticate", r->loc->auth->header) < 0 ? 500 : 401;
}

static int auth_verdict(struct request *r, struct auth_job *j)
{
	if (j->ok)
		r->remote_user = httpd_pool_strdup(r->pool, j->user);
	else
		httpd_log_request(HTTPD_LOG_NOTICE, &r->req, "auth_basic: %s for a user of %s",
		                  j->known ? "wrong password" : "unknown user", r->loc->auth->file);
	auth_wipe(j);
	if (j->ok)
		return r->remote_user != NULL ? 0 : 500;
	return auth_refuse(r);
}

static void auth_done(struct httpd_request *req, void *arg)
{
	struct request *r = request_of(req);

	r->out->gate_done(r, auth_verdict(r, arg));
}

/* --- limit_req, limit_conn ------------------------------------------------- */

/* The zone's key for r; NULL (not limited) when it comes out empty, as nginx. */
static const char *limit_key(struct request *r, const struct limit_zone *z, size_t *len)
{
	const char *key = expr_eval(limit_zone_key(z), r, len);

	return key == NULL || *len == 0 ? NULL : key;
}

static int limit_refuse(struct request *r, int status, const char *zone, const char *key, uint64_t retry_ms,
                        const char *what)
{
	unsigned long long seconds = retry_ms < 1000 ? 1 : (retry_ms + 999) / 1000;
	char *retry = httpd_pool_printf(r->pool, "%llu", seconds);

	httpd_log_request(HTTPD_LOG_WARN, &r->req, "%s \"%s\": key \"%.64s\" over its limit", what, zone, key);
	if (retry == NULL || response_header_push(&r->res, "Retry-After", retry) < 0)
		return 500;
	return status;
}

static void limit_delay_over(struct httpd_request *req, void *arg, unsigned events)
{
	struct request *r = request_of(req);
	int rc;

	(void)arg;
	(void)events;
	rc = request_gate(r);
	if (rc != REQUEST_WAIT)
		r->out->gate_done(r, rc);
}

struct conn_hold {
	struct limit_zone *zone;
	const char        *key;
	size_t             len;
};

static void limit_conn_release(void *arg)
{
	struct conn_hold *h = arg;

	limit_zone_conn_release(h->zone, h->key, h->len);
}

/* What a limit_req verdict does to r: 0 to go on, a status, or REQUEST_WAIT (delayed on a timer). */
static int limit_verdict_apply(struct request *r, const struct limit_zone *zone, const char *key,
                               enum limit_verdict v, uint64_t wait_ms)
{
	const struct httpd_location *loc = r->loc;

	if (v == LIMIT_REJECTED) {
		r->limit_req_status = loc->limit_req_dry_run ? "REJECTED_DRY_RUN" : "REJECTED";
		if (!loc->limit_req_dry_run)
			return limit_refuse(r, loc->limit_req_status, limit_zone_name(zone), key, wait_ms, "limit_req");
		httpd_log_request(HTTPD_LOG_WARN, &r->req, "limit_req \"%s\": key \"%.64s\" over its limit "
		                  "(dry run: let through)", limit_zone_name(zone), key);
		return 0;
	}
	if (v == LIMIT_DELAYED && loc->limit_req_dry_run) {
		r->limit_req_status = "DELAYED_DRY_RUN";
		return 0;
	}
	if (v == LIMIT_DELAYED) {
		/* Its turn comes later: wait on a timer, the loop serves others meanwhile. */
		r->limit_req_status = "DELAYED";
		if (httpd_event_timer(&r->req, wait_ms > UINT32_MAX ? UINT32_MAX : (unsigned)wait_ms,
		                      limit_delay_over, NULL) == NULL)
			return 500;
		return REQUEST_WAIT;
	}
	if (r->limit_req_status == NULL)
		r->limit_req_status = "PASSED";
	return 0;
}

/*
 * A zone in Redis that cannot say (no answer, or Redis down): limit_req_redis_failure decides, 0 (open) or
 * 503 (closed).  Logged once a second per worker: a Redis that is down would otherwise log every request.
 */
static int limit_redis_down(struct request *r, const struct limit_zone *zone)
{
	static time_t logged;
	bool open = r->loc->limit_req_redis_failure == LIMIT_REDIS_OPEN;

	if (r->w->now != logged) {
		logged = r->w->now;
		httpd_log_request(open ? HTTPD_LOG_WARN : HTTPD_LOG_ERR, &r->req, "limit_req \"%s\": Redis %s did not "
		                  "answer: %s (limit_req_redis_failure = \"%s\")", limit_zone_name(zone),
		                  limit_zone_redis_address(zone), open ? "let through" : "refused", open ? "open" : "closed");
	}
	if (open)
		return 0;
	r->limit_req_status = "REJECTED";
	return response_header_push(&r->res, "Retry-After", "1") < 0 ? 500 : 503;
}

struct limit_ask {
	const struct limit_zone *zone;
	const char              *key;
};

/* A zone in Redis answered (or did not: then limit_req_redis_failure decides). */
static void limit_redis_answered(struct httpd_request *req, void *arg, enum limit_verdict v, uint64_t wait_ms,
                                 bool failed)
{
	struct request *r = request_of(req);
	struct limit_ask *ask = arg;
	int rc;

	rc = failed ? limit_redis_down(r, ask->zone) : limit_verdict_apply(r, ask->zone, ask->key, v, wait_ms);
	if (rc == REQUEST_WAIT)
		return;
	if (rc == 0)
		rc = request_gate(r);   /* the limits after it, then the rest of the gate */
	if (rc != REQUEST_WAIT)
		r->out->gate_done(r, rc);
}

static int limits_apply(struct request *r)
{
	const struct httpd_location *loc = r->loc;

	while (r->gate < loc->limit_req_count) {
		const struct location_limit_req *lr = &loc->limit_reqs[r->gate++];
		uint64_t wait_ms = 0;
		size_t len = 0;
		const char *key = limit_key(r, lr->zone, &len);
		enum limit_verdict v;
		int rc;

		if (key == NULL)
			continue;
		if (limit_zone_in_redis(lr->zone)) {
			struct limit_ask *ask = pool_alloc(r->pool, sizeof(*ask));

			if (ask == NULL)
				return 500;
			ask->zone = lr->zone;
			ask->key = key;
			if (limit_zone_request_redis(lr->zone, &r->req, key, len, lr->burst, lr->delay, limit_redis_answered,
			                             ask) == 0)
				return REQUEST_WAIT;
			/* Not even sent (Redis down, the worker waiting to retry): decided now, the same way. */
			rc = limit_redis_down(r, lr->zone);
			if (rc != 0)
				return rc;
			continue;
		}
		v = limit_zone_request(lr->zone, key, len, (int64_t)monotonic_ms(), lr->burst, lr->delay, &wait_ms);
		rc = limit_verdict_apply(r, lr->zone, key, v, wait_ms);
		if (rc != 0)
			return rc;
	}
	if (r->limits_done)
		return 0;
	r->limits_done = true;
	for (size_t i = 0; i < loc->limit_conn_count; i++) {
		const struct location_limit_conn *lc = &loc->limit_conns[i];
		struct conn_hold *h = pool_alloc(r->pool, sizeof(*h));

		if (h == NULL)
			return 500;
		h->zone = lc->zone;
		h->key = limit_key(r, lc->zone, &h->len);
		if (h->key == NULL)
			continue;
		if (!limit_zone_conn_acquire(lc->zone, h->key, h->len, lc->max))
			return limit_refuse(r, loc->limit_conn_status, limit_zone_name(lc->zone), h->key, 1000, "limit_conn");
		if (httpd_pool_cleanup(r->pool, limit_conn_release, h) < 0) {
			limit_conn_release(h);
			return 500;
		}
	}
	return 0;
}

int request_gate(struct request *r)
{
	const struct auth_basic *a = r->loc->auth;
	const char *value;
	struct auth_job *j;
	int rc = limits_apply(r);

	if (rc != 0)
		return rc;
	if (a == NULL)
		return 0;
	value = httpd_request_header(&r->req, "Authorization");
	if (value == NULL || a->dummy_hash == NULL)
		return auth_refuse(r);
	j = pool_alloc(r->pool, sizeof(*j));
	if (j == NULL)
		return 500;
	memset(j, 0, sizeof(*j));
	j->cred_size = strlen(value) + 1;
	j->cred = pool_alloc(r->pool, j->cred_size);
	if (j->cred == NULL || httpd_pool_cleanup(r->pool, auth_wipe, j) < 0)
		return 500;
	if (!auth_basic_credentials(value, j->cred, j->cred_size, &j->user, &j->password))
		return auth_refuse(r);
	j->hash = auth_basic_hash_of(a, j->user, &j->known);
	if (httpd_run_blocking(&r->req, auth_work, auth_done, j) == 0)
		return REQUEST_WAIT;
	auth_work(j);   /* no thread pool (worker_threads = 0): here, then */
	return auth_verdict(r, j);
}

int request_check(struct request *r)
{
	const struct httpd_location *loc = r->loc;

	while (r->check_next < loc->check_count) {
		const struct location_module *lm = &loc->checks[r->check_next++];
		int rc;

		if (lm->mod->api.check == NULL)
			continue;
		rc = lm->mod->api.check(lm->data, &r->req, &r->res);
		if (rc == HTTPD_DECLINED)
			continue;
		if (rc == HTTPD_PENDING) {
			r->check_waiting = CHECK_WAIT_HEAD;
			return REQUEST_WAIT;
		}
		return rc == HTTPD_OK ? HTTPD_OK : status_checked(lm->mod, "check", rc, r);
	}
	return HTTPD_DECLINED;
}

int request_body_end(struct request *r)
{
	int rc = body_end(r);

	if (rc == BODY_WAIT)
		r->check_waiting = CHECK_WAIT_BODY;
	return rc;
}

void httpd_request_check_done(struct httpd_request *req, int rc)
{
	struct request *r = request_of(req);
	enum check_wait waited = r->check_waiting;

	if (waited == CHECK_WAIT_NONE || r->aborted || r->conn == NULL) {
		httpd_log_request(HTTPD_LOG_ERR, req, "httpd_request_check_done: no check of this request is waiting");
		return;
	}
	r->check_waiting = CHECK_WAIT_NONE;
	if (waited == CHECK_WAIT_BODY) {
		rc = body_end_resume(r, rc);
		if (rc == BODY_WAIT) {
			r->check_waiting = CHECK_WAIT_BODY;
			return;
		}
		r->out->body_checked(r, rc);
		return;
	}
	if (rc == HTTPD_DECLINED)
		rc = request_check(r);   /* the checks after it */
	else if (rc != HTTPD_OK)
		rc = status_checked(r->loc->checks[r->check_next - 1].mod, "check", rc, r);
	if (rc != REQUEST_WAIT)
		r->out->checks_done(r, rc);
}

void request_handle(struct request *r)
{
	const struct location_module *lm = &r->loc->handler;
	int rc = lm->mod->api.handler(lm->data, &r->req, &r->res);

	if (rc == HTTPD_PENDING) {
		r->pending = true;
		r->out->wait(r);
		return;
	}
	if (rc == HTTPD_OK) {
		request_respond(r);
		return;
	}
	if (rc < 300 || rc > 599) {
		httpd_log_request(HTTPD_LOG_ERR, &r->req, "module %s: the handler returned %d, not a status",
		                  lm->mod->name, rc);
		rc = 500;
	}
	request_fail(r, rc);
}

void httpd_request_finish(struct httpd_request *req, int rc)
{
	struct request *r = request_of(req);

	if (!r->pending || r->aborted || r->conn == NULL) {
		httpd_log_request(HTTPD_LOG_ERR, req, "httpd_request_finish: the request is not pending");
		return;
	}
	r->pending = false;
	if (rc == HTTPD_OK) {
		request_respond(r);
	} else {
		if (rc < 300 || rc > 599) {
			httpd_log_request(HTTPD_LOG_ERR, req, "module %s finished it with %d, not a status",
			                  r->loc->handler.mod->name, rc);
			rc = 500;
		}
		request_fail(r, rc);
	}
	r->out->finish(r);
}

/* The modules of r's location in order: the checks, the handler, then the filter list. */
static const struct location_module *location_module(const struct httpd_location *loc, size_t i)
{
	if (i < loc->check_count)
		return &loc->checks[i];
	i -= loc->check_count;
	if (loc->handler.mod != NULL && i-- == 0)
		return &loc->handler;
	return i < loc->filter_count ? &loc->filters[i] : NULL;
}

/* Whether a response will carry a body through the chain (not HEAD, 1xx, 204, 304 or empty). */
static bool response_has_body(const struct request *r)
{
	const struct httpd_response *res = &r->res;

	if (r->head.method == HTTPD_METHOD_HEAD || res->status < 200 || res->status == 204 || res->status == 304)
		return false;
	switch (res->body) {
	case BODY_BUFFER: return res->buf_len > 0;
	case BODY_FILE:   return res->file_len > 0;
	case BODY_STREAM: return true;
	default:          return false;
	}
}

/* The body filters of the location's modules, in their order: each decides whether it joins. */
static int body_filters_start(struct request *r)
{
	const struct location_module *lm;

	if (!response_has_body(r))
		return 0;
	for (size_t i = 0; (lm = location_module(r->loc, i)) != NULL; i++) {
		void *ctx = NULL;
		int rc;

		if (lm->mod->api.body_filter_start == NULL)
			continue;
		rc = lm->mod->api.body_filter_start(lm->data, &r->req, &r->res, &ctx);
		if (rc == HTTPD_DECLINED)
			continue;
		if (rc != HTTPD_OK)
			return status_checked(lm->mod, "body filter", rc, r);
		if (body_chain_add(&r->req, &r->res, lm->mod->api.body_filter, ctx, lm->mod->name) < 0)
			return 500;
	}
	return 0;
}

void request_respond(struct request *r)
{
	const struct httpd_location *loc = r->loc;
	const struct location_module *lm;
	int rc;

	if (loc != NULL) {
		for (size_t i = 0; (lm = location_module(loc, i)) != NULL; i++) {
			if (lm->mod->api.filter == NULL)
				continue;
			rc = lm->mod->api.filter(lm->data, &r->req, &r->res);
			if (rc != HTTPD_OK && rc != HTTPD_DECLINED) {
				request_fail(r, status_checked(lm->mod, "filter", rc, r));
				return;
			}
		}
		rc = body_filters_start(r);
		if (rc == 0)
			rc = compress_apply(r);
		if (rc != 0) {
			request_fail(r, rc);
			return;
		}
	} else if (r->res.coding >= 0 && (rc = compress_apply(r)) != 0) {
		request_fail(r, rc);
		return;
	}
	header_rules_apply(r);
	r->out->respond(r);
}

void request_fail(struct request *r, int status)
{
	const struct error_page *page = config_error_page(r->w->config, r->server, status);

	if (page != NULL)
		response_error(&r->res, status, page->body, page->len, page->content_type);
	else
		response_error(&r->res, status, NULL, 0, NULL);
	header_rules_apply(r);
	r->out->respond(r);
}

static void request_free(struct request *r)
{
	struct conn *c = r->conn;
	struct httpd_pool *pool = r->pool;

	async_request_end(r);
	if (c != NULL)
		conn_pool_give(c, pool);
	else
		pool_destroy(pool);
}

void request_done(struct request *r)
{
	const struct httpd_location *loc = r->loc;
	const struct location_module *lm;

	if (score_self != NULL) {
		score_request(r->res.status, score_method_of(r->head.method), r->head_bytes + r->body.received,
		              r->res.body_sent, r->w->now_ms - r->started_ms);
		score_self->request[0] = '\0';
	}
	access_log_write(r);
	for (size_t i = 0; loc != NULL && (lm = location_module(loc, i)) != NULL; i++)
		if (lm->mod->api.log != NULL)
			lm->mod->api.log(lm->data, &r->req, &r->res);
	request_free(r);
}

void request_abort(struct request *r)
{
	if (r->pending) {
		for (struct request_cancel *cb = r->cancels; cb != NULL; cb = cb->next)
			cb->fn(cb->arg);
		r->pending = false;
	}
	async_request_end(r);
	r->conn = NULL;
	if (r->jobs > 0) {
		/* A pool thread may still be using the pool: free it when the job returns. */
		r->aborted = true;
		return;
	}
	pool_destroy(r->pool);
}

bool request_job_returned(struct request *r)
{
	r->jobs--;
	if (!r->aborted)
		return true;
	if (r->jobs == 0)
		pool_destroy(r->pool);
	return false;
}
