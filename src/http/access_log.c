#include "access_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "conn_proxy.h"
#include "tls.h"
#include "log.h"
#include "log_format.h"
#include "pool.h"
#include "request.h"
#include "scoreboard.h"
#include "worker.h"

uint64_t access_log_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
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

static const char *lookup(void *ctx, const struct log_segment *seg, char *scratch, size_t size)
{
	const struct request *r = ctx;
	const struct httpd_request *req = &r->req;
	struct timespec ts;
	uint64_t us;

	switch (seg->var) {
	case LOG_REMOTE_ADDR:         return req->client_addr;
	case LOG_REMOTE_PORT:         return req->client_port ? number(scratch, size, req->client_port) : NULL;
	case LOG_REALIP_REMOTE_ADDR:  return req->peer_addr;
	case LOG_REMOTE_USER:         return r->remote_user;
	case LOG_LIMIT_REQ_STATUS:    return r->limit_req_status;
	case LOG_TIME_LOCAL:          return log_time(r->w->now, false);
	case LOG_TIME_ISO8601:        return log_time(r->w->now, true);
	case LOG_MSEC:
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(scratch, size, "%lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
		return scratch;
	case LOG_REQUEST: {
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
	case LOG_REQUEST_METHOD:      return req->method_name;
	case LOG_REQUEST_URI:         return req->target;
	case LOG_URI:                 return req->path;
	case LOG_ARGS:                return req->query;
	case LOG_SERVER_PROTOCOL:     return req->method_name ? (req->version == 10 ? "HTTP/1.0" : req->version == 20 ? "HTTP/2.0"
	                                                         : "HTTP/1.1") : NULL;
	case LOG_STATUS:              return number(scratch, size, (unsigned)r->res.status);
	case LOG_BODY_BYTES_SENT:     return number(scratch, size, r->res.body_sent);
	case LOG_REQUEST_LENGTH:      return number(scratch, size, r->head_bytes + r->body.received);
	case LOG_REQUEST_TIME:
		us = access_log_clock_us() - r->started_us;
		snprintf(scratch, size, "%llu.%03llu", (unsigned long long)(us / 1000000),
		         (unsigned long long)(us / 1000 % 1000));
		return scratch;
	case LOG_REQUEST_TIME_US:     return number(scratch, size, access_log_clock_us() - r->started_us);
	case LOG_REQUEST_ID:          return req->request_id;
	case LOG_PID:                 return number(scratch, size, (unsigned long long)getpid());
	case LOG_WORKER:              return number(scratch, size, (unsigned)r->w->id);
	case LOG_HOST:                return req->host;
	case LOG_SERVER_ADDR:         return req->local_addr;
	case LOG_SERVER_PORT:         return req->local_port ? number(scratch, size, req->local_port) : NULL;
	case LOG_SCHEME:              return req->scheme;
	case LOG_CONNECTION_REQUESTS: return r->conn_seq ? number(scratch, size, r->conn_seq) : NULL;
	case LOG_GENERATION:          return score_self ? number(scratch, size, score_self->generation) : NULL;
	case LOG_HTTP:                return req->headers ? header_by_variable(req, seg->text, seg->len) : NULL;
	case LOG_PROXY:               return conn_proxy_value(r->conn, seg->index);
	case LOG_SERVER_NAME:         return r->server != NULL ? r->server->name : NULL;
	case LOG_NOTE:                return httpd_request_note(req, seg->text);
	case LOG_SSL:                 return r->conn ? tls_conn_field(r->conn, seg->text, scratch, size) : NULL;
	case LOG_LITERAL:             break;
	}
	return NULL;
}

size_t access_log_render(const struct log_format *f, const struct request *r, char *out)
{
	return log_format_render(f, lookup, (void *)(uintptr_t)r, out);
}

void access_log_write(const struct request *r)
{
	const struct log_format *f = r->w->config->access_format;
	static char *line;
	static size_t cap;
	/* A request refused before its server was known goes to the default server's log. */
	size_t log = (r->server != NULL ? r->server : r->w->config->default_server)->access_log;

	if (!log_access_enabled(log))
		return;
	if (r->loc != NULL && (r->loc->access_log_off || r->res.status < r->loc->access_log_min_status))
		return;
	if (cap < f->max_line) {
		char *grown = realloc(line, f->max_line);

		if (grown == NULL) {
			httpd_log(HTTPD_LOG_ERR, "out of memory for an access log line");
			return;
		}
		line = grown;
		cap = f->max_line;
	}
	log_access_line(log, line, log_format_render(f, lookup, (void *)(uintptr_t)r, line));
}
