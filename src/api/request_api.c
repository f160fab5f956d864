/* The request half of <httpd/module.h>: headers, the body, notes, cancellation. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conn.h"
#include "conn_proxy.h"
#include "content_coding.h"
#include "log.h"
#include "pool.h"
#include "request.h"
#include "tls.h"
#include "worker.h"

const char *httpd_request_header(const struct httpd_request *req, const char *name)
{
	size_t len = strlen(name);

	/* Lengths first: most lookups are for headers the request does not have. */
	for (size_t i = 0; i < req->header_count; i++)
		if (req->headers[i].name_len == len && strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

void httpd_log_request(enum httpd_log_level level, const struct httpd_request *req, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	httpd_log(level, "%s: %s %.300s: %s", req->client_addr ? req->client_addr : "-",
	          req->method_name ? req->method_name : "-", req->target ? req->target : "-", msg);
}

const char *httpd_request_proxy(const struct httpd_request *req, const char *field)
{
	return conn_proxy_field(request_of(req)->conn, field);
}

void httpd_response_stream_wake(struct httpd_request *req)
{
	struct request *r = request_of(req);

	if (r->conn != NULL)
		r->out->send_body(r);
}

int httpd_response_tunnel(struct httpd_response *res, int fd, unsigned idle_ms, const void *pending, size_t len)
{
	if (fd < 0 || idle_ms == 0)
		return -1;
	res->status = 101;
	res->tunnel_fd = fd;
	res->tunnel_idle_ms = idle_ms;
	res->tunnel_pending = pending;
	res->tunnel_pending_len = len;
	response_discard_body(res);
	return 0;
}

void httpd_request_body_pause(struct httpd_request *req)
{
	struct request *r = request_of(req);

	if (r->conn == NULL || r->body.paused)
		return;
	r->body.paused = true;
	r->out->body_pause(r);
}

void httpd_request_body_resume(struct httpd_request *req)
{
	struct request *r = request_of(req);

	if (!r->body.paused)
		return;
	r->body.paused = false;
	if (r->conn != NULL)
		r->out->body_resume(r);
}

const char *httpd_request_tls(const struct httpd_request *req, const char *field)
{
	struct request *r = request_of(req);
	char buf[1024];
	const char *v;

	if (r->conn == NULL || field == NULL)
		return NULL;
	if (strcmp(field, "server") == 0)
		return r->server != NULL ? r->server->name : NULL;
	v = tls_conn_field(r->conn, field, buf, sizeof(buf));
	/* Literals from OpenSSL live as long as the connection; text made here goes to the pool. */
	return v == buf ? httpd_pool_strdup(r->pool, buf) : v;
}

int httpd_request_accepts_encoding(const struct httpd_request *req, const char *coding)
{
	const char *v = httpd_request_header(req, "Accept-Encoding");

	/* The one reading of Accept-Encoding (RFC 9110 §12.5.3), compression's. */
	return v != NULL && accept_encoding_q(v, coding) > 0;
}

int httpd_request_body_fd(const struct httpd_request *req)
{
	return request_of(req)->body.fd;
}

const char *httpd_request_body_load(struct httpd_request *req)
{
	struct request *r = request_of(req);
	char *buf;
	uint64_t done = 0;

	if (req->body != NULL || req->body_len == 0)
		return req->body != NULL ? req->body : "";
	if (r->body.fd < 0 || req->body_len > SIZE_MAX - 1)
		return NULL;
	buf = pool_alloc(r->pool, (size_t)req->body_len + 1);
	if (buf == NULL)
		return NULL;
	while (done < req->body_len) {
		ssize_t n = pread(r->body.fd, buf + done, (size_t)(req->body_len - done), (off_t)done);

		if (n <= 0) {
			httpd_log_request(HTTPD_LOG_ERR, req, "reading the request body back: %s",
			                  n < 0 ? strerror(errno) : "file shorter than the body");
			return NULL;
		}
		done += (uint64_t)n;
	}
	buf[done] = '\0';
	req->body = buf;
	return buf;
}

int httpd_request_note_set(struct httpd_request *req, const char *key, void *value)
{
	struct request *r = request_of(req);
	struct request_note *n;

	for (n = r->notes; n != NULL; n = n->next) {
		if (strcmp(n->key, key) == 0) {
			n->value = value;
			return 0;
		}
	}
	n = pool_alloc(r->pool, sizeof(*n));
	if (n == NULL || (n->key = httpd_pool_strdup(r->pool, key)) == NULL)
		return -1;
	n->value = value;
	n->next = r->notes;
	r->notes = n;
	return 0;
}

void *httpd_request_note(const struct httpd_request *req, const char *key)
{
	for (const struct request_note *n = request_of(req)->notes; n != NULL; n = n->next)
		if (strcmp(n->key, key) == 0)
			return n->value;
	return NULL;
}

int httpd_request_on_cancel(struct httpd_request *req, void (*fn)(void *arg), void *arg)
{
	struct request *r = request_of(req);
	struct request_cancel *cb = pool_alloc(r->pool, sizeof(*cb));

	if (cb == NULL)
		return -1;
	cb->fn = fn;
	cb->arg = arg;
	cb->next = r->cancels;
	r->cancels = cb;
	return 0;
}
