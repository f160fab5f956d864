#include "request.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "path.h"
#include "pool.h"

const char *httpd_request_header(const struct httpd_request *req, const char *name)
{
	for (size_t i = 0; i < req->header_count; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* The q parameter of one list member ("gzip;q=0.5"): 1000ths, 1000 without one. */
static int qvalue(const char *params, size_t len)
{
	const char *q = params;
	int value = 0, digits = 0;

	while ((size_t)(q - params) < len && (q = memchr(q, ';', len - (size_t)(q - params))) != NULL) {
		q++;
		while (*q == ' ' || *q == '\t')
			q++;
		if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
			q += 2;
			if (*q == '1')
				return 1000;
			if (*q++ != '0')
				return 0;
			if (*q == '.') {
				q++;
				for (; digits < 3 && *q >= '0' && *q <= '9'; digits++, q++)
					value = value * 10 + (*q - '0');
			}
			while (digits++ < 3)
				value *= 10;
			return value;
		}
	}
	return 1000;
}

int httpd_request_accepts_encoding(const struct httpd_request *req, const char *coding)
{
	const char *v = httpd_request_header(req, "Accept-Encoding");
	size_t coding_len = strlen(coding);
	int star = -1;

	if (v == NULL)
		return 0;
	while (*v != '\0') {
		const char *start, *end;
		size_t name_len;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		start = v;
		end = strchr(v, ',');
		if (end == NULL)
			end = v + strlen(v);
		name_len = strcspn(start, " \t;,");
		if (name_len > (size_t)(end - start))
			name_len = (size_t)(end - start);
		if (name_len == coding_len && strncasecmp(start, coding, coding_len) == 0)
			return qvalue(start, (size_t)(end - start)) > 0;
		if (name_len == 1 && *start == '*')
			star = qvalue(start, (size_t)(end - start));
		v = end;
	}
	return star > 0;
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
static int options_answer(struct conn *c, unsigned methods)
{
	c->allow = allow_header(c->pool, methods);
	httpd_response_set_body_buffer(&c->res, "", 0);
	conn_respond(c);
	return REQUEST_ANSWERED;
}

int request_begin(struct conn *c)
{
	const struct httpd_config *cfg = c->w->config;
	struct http_head *h = &c->head;
	struct httpd_request *req = &c->req;
	char *path;
	long path_len;
	bool has_body = h->chunked || h->content_length > 0;

	response_init(&c->res, c->pool);
	req->method = h->method;
	req->method_name = h->method_name;
	req->target = h->target;
	req->query = h->query;
	req->host = h->host ? pool_strndup(c->pool, h->host, h->host_len) : NULL;
	req->version = h->version;
	req->headers = h->headers;
	req->header_count = h->header_count;
	req->client_addr = c->peer;
	req->pool = c->pool;

	if (h->method == HTTPD_METHOD_CONNECT)
		return 501;   /* we are not a proxy */
	if (h->form == TARGET_ASTERISK) {
		if (has_body)
			c->keep_alive = false, c->linger = true;
		return options_answer(c, all_methods(cfg));
	}
	path = pool_alloc(c->pool, h->path_len + 1);
	if (path == NULL)
		return 500;
	path_len = path_normalise(h->path, h->path_len, path);
	if (path_len < 0)
		return 400;
	req->path = path;

	c->loc = config_location_match(cfg, path, (size_t)path_len);
	if (c->loc == NULL)
		return 404;
	req->location = c->loc;
	{
		/* The path after the prefix, always starting with '/': reuse the prefix's own slash. */
		const char *rest = path + c->loc->prefix_len;

		if (rest[0] != '/' && rest[-1] == '/')
			rest--;
		req->path_rest = rest[0] == '/' ? rest : httpd_pool_printf(c->pool, "/%s", rest);
		if (req->path_rest == NULL)
			return 500;
	}

	if (h->method == HTTPD_METHOD_OPTIONS && !(c->loc->methods & HTTPD_METHOD_OPTIONS)) {
		if (has_body)
			c->keep_alive = false, c->linger = true;
		return options_answer(c, c->loc->methods);
	}
	if (!(c->loc->methods & h->method)) {
		c->allow = allow_header(c->pool, c->loc->methods);
		return 405;
	}
	if (h->content_length >= 0 && (uint64_t)h->content_length > c->loc->max_body_size)
		return 413;
	return 0;
}

void request_dispatch(struct conn *c)
{
	const struct httpd_location *loc = c->loc;
	int rc;

	for (size_t i = 0; i < loc->check_count; i++) {
		const struct location_module *lm = &loc->checks[i];

		rc = lm->mod->desc->check(lm->data, &c->req, &c->res);
		if (rc == HTTPD_DECLINED)
			continue;
		if (rc == HTTPD_OK) {
			conn_respond(c);
		} else {
			if (rc < 400 || rc > 599) {
				httpd_log(HTTPD_LOG_ERR, "module %s check returned %d", lm->mod->name, rc);
				rc = 500;
			}
			conn_respond_error(c, rc, false);
		}
		return;
	}
	rc = loc->handler.mod->desc->handle(loc->handler.data, &c->req, &c->res);
	if (rc == HTTPD_OK) {
		conn_respond(c);
		return;
	}
	if (rc < 300 || rc > 599) {
		httpd_log(HTTPD_LOG_ERR, "module %s handler returned %d for %s", loc->handler.mod->name,
		          rc, c->req.path);
		rc = 500;
	}
	conn_respond_error(c, rc, false);
}

/* Access log fields must not let a client forge lines: escape quotes and controls. */
static size_t log_escape(char *out, size_t size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (s == NULL)
		s = "-";
	for (; *s != '\0' && o + 5 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return o;
}

/* Common Log Format time, reformatted once a second. */
static const char *log_time(time_t now)
{
	static char cached[40];
	static time_t cached_at = -1;
	struct tm tm;

	if (now != cached_at) {
		localtime_r(&now, &tm);
		strftime(cached, sizeof(cached), "%d/%b/%Y:%H:%M:%S %z", &tm);
		cached_at = now;
	}
	return cached;
}

void request_log(struct conn *c)
{
	char line[4096], method[32], target[2048], referer[512], agent[512];
	int n;

	if (!log_access_enabled())
		return;
	log_escape(method, sizeof(method), c->req.method_name);
	log_escape(target, sizeof(target), c->req.target);
	log_escape(referer, sizeof(referer), c->req.headers ? httpd_request_header(&c->req, "Referer") : NULL);
	log_escape(agent, sizeof(agent), c->req.headers ? httpd_request_header(&c->req, "User-Agent") : NULL);
	n = snprintf(line, sizeof(line), "%s - - [%s] \"%s %s HTTP/1.%d\" %d %llu \"%s\" \"%s\"\n",
	             c->peer, log_time(c->w->now), method, target, c->req.version == 10 ? 0 : 1,
	             c->res.status, (unsigned long long)c->body_sent, referer, agent);
	if (n > 0)
		log_access_line(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
