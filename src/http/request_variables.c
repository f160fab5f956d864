/* The server's variables, looked up in a request; expressions evaluated into its pool. */
#include "request_variables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "conn.h"
#include "conn_proxy.h"
#include "location.h"
#include "pool.h"
#include "request.h"
#include "scoreboard.h"
#include "tls.h"
#include "worker.h"

/* value[0..len) as a string of the request's pool. */
static const char *pool_text(struct request *r, const char *value, size_t len)
{
	char *out = pool_alloc(r->pool, len + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, value, len);
	out[len] = '\0';
	return out;
}

/* $arg_NAME: the first argument called name (case-insensitive, as nginx) in query, as sent. */
static const char *query_arg(struct request *r, const char *query, const char *name, size_t len)
{
	for (const char *p = query; *p != '\0';) {
		size_t field = strcspn(p, "&");

		if (field > len && p[len] == '=' && strncasecmp(p, name, len) == 0)
			return pool_text(r, p + len + 1, field - len - 1);
		if (field == len && strncasecmp(p, name, len) == 0)
			return "";
		p += field;
		if (*p == '&')
			p++;
	}
	return NULL;
}

/* $cookie_NAME: the cookie called name (exactly, as RFC 6265 compares), in any Cookie field. */
static const char *cookie_value(struct request *r, const char *name, size_t len)
{
	const struct httpd_request *req = &r->req;

	for (size_t i = 0; i < req->header_count; i++) {
		const char *p = req->headers[i].value;

		if (strcasecmp(req->headers[i].name, "Cookie") != 0)
			continue;
		while (*p != '\0') {
			size_t pair;

			p += strspn(p, " \t;");
			pair = strcspn(p, ";");
			if (pair > len && p[len] == '=' && strncmp(p, name, len) == 0) {
				size_t vlen = pair - len - 1;

				while (vlen > 0 && (p[len + 1 + vlen - 1] == ' ' || p[len + 1 + vlen - 1] == '\t'))
					vlen--;
				return pool_text(r, p + len + 1, vlen);
			}
			p += pair;
		}
	}
	return NULL;
}

/* Common Log Format and ISO 8601 times, reformatted once a second. */
static const char *log_time(time_t now, bool iso)
{
	static char clf[40], iso8601[40];
	static time_t cached_at = -1;

	if (now != cached_at) {
		struct tm tm;

		localtime_r(&now, &tm);
		strftime(clf, sizeof(clf), "%d/%b/%Y:%H:%M:%S %z", &tm);
		strftime(iso8601, sizeof(iso8601), "%Y-%m-%dT%H:%M:%S%z", &tm);
		/* +0000 -> +00:00, as RFC 3339 wants */
		{
			size_t n = strlen(iso8601);

			if (n >= 5 && n + 1 < sizeof(iso8601)) {
				memmove(iso8601 + n - 1, iso8601 + n - 2, 3);
				iso8601[n - 2] = ':';
			}
		}
		cached_at = now;
	}
	return iso ? iso8601 : clf;
}

/* A request header named like name[0..len) with '_' standing for '-'. */
static const char *header_by_variable(const struct httpd_request *req, const char *name, size_t len)
{
	for (size_t i = 0; i < req->header_count; i++) {
		const struct httpd_header *h = &req->headers[i];
		size_t k;

		if (h->name_len != len)
			continue;
		for (k = 0; k < len; k++) {
			char a = h->name[k], b = name[k] == '_' ? '-' : name[k];

			if (a >= 'A' && a <= 'Z')
				a = (char)(a + 32);
			if (b >= 'A' && b <= 'Z')
				b = (char)(b + 32);
			if (a != b)
				break;
		}
		if (k == len)
			return h->value;
	}
	return NULL;
}

/* Decimal text of v in scratch (at least 21 bytes); a log line has several, so no snprintf. */
static const char *number(char *scratch, size_t size, unsigned long long v)
{
	char *p = scratch + size - 1;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && p > scratch);
	return p;
}

/* Group i of the last regex that matched, or NULL. */
static const char *capture(struct request *r, unsigned i)
{
	const struct captures *c = &r->captures;

	if (i >= c->pairs || c->ovector[2 * i] == (size_t)-1)
		return NULL;
	return pool_text(r, c->subject + c->ovector[2 * i], c->ovector[2 * i + 1] - c->ovector[2 * i]);
}

static const char *named_capture(struct request *r, const char *name, size_t len)
{
	char copy[64];
	int n;

	if (r->captures.pairs == 0 || len >= sizeof(copy))
		return NULL;
	memcpy(copy, name, len);
	copy[len] = '\0';
	n = regex_group_number(r->captures.code, copy);
	return n > 0 ? capture(r, (unsigned)n) : NULL;
}

const char *request_variable(void *ctx, const struct var_segment *seg, char *scratch, size_t size)
{
	struct request *r = ctx;
	const struct httpd_request *req = &r->req;
	struct timespec ts;
	uint64_t us;

	switch (seg->var) {
	case VAR_REMOTE_ADDR:         return req->client_addr;
	case VAR_REMOTE_PORT:         return req->client_port ? number(scratch, size, req->client_port) : NULL;
	case VAR_REALIP_REMOTE_ADDR:  return req->peer_addr;
	case VAR_REMOTE_USER:         return r->remote_user;
	case VAR_LIMIT_REQ_STATUS:    return r->limit_req_status;
	case VAR_TIME_LOCAL:          return log_time(r->w->now, false);
	case VAR_TIME_ISO8601:        return log_time(r->w->now, true);
	case VAR_MSEC:
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(scratch, size, "%lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
		return scratch;
	case VAR_REQUEST: {
		size_t m, t;
		char *line;

		if (req->method_name == NULL || req->target == NULL)
			return NULL;
		m = strlen(req->method_name);
		t = strlen(req->target);
		/* Usually short enough for scratch; a long target goes to the pool. */
		line = m + t + 11 <= size ? scratch : httpd_pool_alloc(r->pool, m + t + 11);
		if (line == NULL)
			return NULL;
		memcpy(line, req->method_name, m);
		line[m] = ' ';
		memcpy(line + m + 1, req->target, t);
		memcpy(line + m + 1 + t, req->version == 10 ? " HTTP/1.0" : req->version == 20 ? " HTTP/2.0" : " HTTP/1.1", 10);
		return line;
	}
	case VAR_REQUEST_METHOD:      return req->method_name;
	case VAR_REQUEST_URI:         return req->target;
	case VAR_URI:                 return req->path;
	case VAR_ARGS:                return req->query;
	case VAR_SERVER_PROTOCOL:     return req->method_name ? (req->version == 10 ? "HTTP/1.0" : req->version == 20 ? "HTTP/2.0"
	                                                         : "HTTP/1.1") : NULL;
	case VAR_STATUS:              return number(scratch, size, (unsigned)r->res.status);
	case VAR_BODY_BYTES_SENT:     return number(scratch, size, r->res.body_sent);
	case VAR_REQUEST_LENGTH:      return number(scratch, size, r->head_bytes + r->body.received);
	case VAR_REQUEST_TIME:
		us = access_log_clock_us() - r->started_us;
		snprintf(scratch, size, "%llu.%03llu", (unsigned long long)(us / 1000000),
		         (unsigned long long)(us / 1000 % 1000));
		return scratch;
	case VAR_REQUEST_TIME_US:     return number(scratch, size, access_log_clock_us() - r->started_us);
	case VAR_REQUEST_ID:          return req->request_id;
	case VAR_PID:                 return number(scratch, size, (unsigned long long)getpid());
	case VAR_WORKER:              return number(scratch, size, (unsigned)r->w->id);
	case VAR_HOST:                return req->host;
	case VAR_SERVER_ADDR:         return req->local_addr;
	case VAR_SERVER_PORT:         return req->local_port ? number(scratch, size, req->local_port) : NULL;
	case VAR_SCHEME:              return req->scheme;
	case VAR_CONNECTION_REQUESTS: return r->conn_seq ? number(scratch, size, r->conn_seq) : NULL;
	case VAR_GENERATION:          return score_self ? number(scratch, size, score_self->generation) : NULL;
	case VAR_HTTP:                return req->headers ? header_by_variable(req, seg->text, seg->len) : NULL;
	case VAR_PROXY:               return conn_proxy_value(r->conn, seg->index);
	case VAR_SERVER_NAME:         return r->server != NULL ? r->server->name : NULL;
	case VAR_NOTE:                return httpd_request_note(req, seg->text);
	case VAR_SSL:                 return r->conn ? tls_conn_field(r->conn, seg->text, scratch, size) : NULL;
	case VAR_ARG:                 return req->query != NULL ? query_arg(r, req->query, seg->text, seg->len) : NULL;
	case VAR_COOKIE:              return req->headers ? cookie_value(r, seg->text, seg->len) : NULL;
	case VAR_DOCUMENT_ROOT:       return r->loc != NULL ? r->loc->document_root : NULL;
	case VAR_MODULE:              return req->method_name != NULL ? seg->fn(req, scratch, size) : NULL;
	case VAR_CAPTURE:             return capture(r, (unsigned)seg->index);
	case VAR_NAMED_CAPTURE:       return named_capture(r, seg->text, seg->len);
	case VAR_LITERAL:             break;
	}
	return NULL;
}

char *expr_eval(const struct expr *e, struct request *r, size_t *len)
{
	char scratch[128], *out;
	const char *few[32], **values = few;
	size_t few_lens[32], *lens = few_lens, total = e->literal_len, o = 0;

	/* Two passes, so the value takes one block of the pool. */
	if (e->count > sizeof(few) / sizeof(few[0])) {
		values = pool_alloc(r->pool, e->count * sizeof(*values));
		lens = pool_alloc(r->pool, e->count * sizeof(*lens));
		if (values == NULL || lens == NULL)
			return NULL;
	}
	for (size_t i = 0; i < e->count; i++) {
		const struct var_segment *seg = &e->segs[i];

		if (seg->var == VAR_LITERAL) {
			values[i] = seg->text;
			lens[i] = seg->len;
			continue;
		}
		values[i] = request_variable(r, seg, scratch, sizeof(scratch));
		if (values[i] == scratch)   /* scratch is reused by the next variable */
			values[i] = pool_text(r, scratch, strlen(scratch));
		lens[i] = values[i] != NULL ? strlen(values[i]) : 0;
		total += seg->var == VAR_LITERAL ? 0 : lens[i];
	}
	if ((out = pool_alloc(r->pool, total + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < e->count; i++) {
		if (lens[i] > 0)
			memcpy(out + o, values[i], lens[i]);
		o += lens[i];
	}
	out[o] = '\0';
	*len = o;
	return out;
}
