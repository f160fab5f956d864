/*
 * echo: answers any method (extension methods such as PROPFIND included)
 * with the request it received: request line, every header in order, and
 * the decoded body.  text/plain by default,
 * JSON when the client asks (Accept: application/json, or ?format=json).
 *
 *   location "/echo" { handler = "echo" }
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <httpd/module.h>

/* A growing buffer in the request pool. */
struct out {
	struct httpd_pool *pool;
	char              *buf;
	size_t             len, cap;
	bool               failed;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		char *grown;

		while (cap < o->len + n + 1)
			cap *= 2;
		grown = httpd_pool_alloc(o->pool, cap);
		if (grown == NULL) {
			o->failed = true;
			return;
		}
		if (o->len > 0)
			memcpy(grown, o->buf, o->len);
		o->buf = grown;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static bool utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; ) {
		size_t n = httpd_utf8_seq((const unsigned char *)s + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* A JSON string; bytes that are not UTF-8 (obs-text in headers) become \u00XX. */
static void json_string(struct out *o, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	out_put(o, "\"", 1);
	for (size_t i = 0; i < len; ) {
		unsigned char c = (unsigned char)s[i];
		size_t n = httpd_utf8_seq((const unsigned char *)s + i, len - i);
		char esc[6] = { '\\', (char)c, 0, 0, 0, 0 };

		if (c == '"' || c == '\\') {
			out_put(o, esc, 2);
		} else if (c == '\n') {
			out_put(o, "\\n", 2);
		} else if (c == '\r') {
			out_put(o, "\\r", 2);
		} else if (c == '\t') {
			out_put(o, "\\t", 2);
		} else if (c < 0x20 || c == 0x7f || n == 0) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			out_put(o, esc, 6);
		} else {
			out_put(o, s + i, n);
			i += n;
			continue;
		}
		i++;
	}
	out_put(o, "\"", 1);
}

static void base64(struct out *o, const unsigned char *s, size_t len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0) |
		             (i + 2 < len ? s[i + 2] : 0);
		char quad[4] = {
			alphabet[v >> 18 & 63], alphabet[v >> 12 & 63],
			i + 1 < len ? alphabet[v >> 6 & 63] : '=', i + 2 < len ? alphabet[v & 63] : '=',
		};
		out_put(o, quad, 4);
	}
}

static bool wants_json(const struct httpd_request *req)
{
	const char *accept = httpd_request_header(req, "Accept");

	if (req->query != NULL) {
		const char *q = req->query;

		while (q != NULL) {
			if (strncmp(q, "format=json", 11) == 0 && (q[11] == '&' || q[11] == '\0'))
				return true;
			q = strchr(q, '&');
			if (q != NULL)
				q++;
		}
	}
	return accept != NULL && strstr(accept, "application/json") != NULL;
}

static void echo_text(struct out *o, const struct httpd_request *req)
{
	out_str(o, req->method_name);
	out_str(o, " ");
	out_str(o, req->target);
	out_str(o, req->version == 10 ? " HTTP/1.0\n" : req->version == 20 ? " HTTP/2.0\n" : " HTTP/1.1\n");
	for (size_t i = 0; i < req->header_count; i++) {
		out_put(o, req->headers[i].name, req->headers[i].name_len);
		out_str(o, ": ");
		out_put(o, req->headers[i].value, req->headers[i].value_len);
		out_str(o, "\n");
	}
	out_str(o, "\n");
	if (req->body != NULL)
		out_put(o, req->body, (size_t)req->body_len);
}

/* ,"key":{"field":"value",...} for the fields lookup knows; nothing when it knows none. */
static void json_fields(struct out *o, const char *key, const char *const *fields, size_t count,
                        const struct httpd_request *req,
                        const char *(*lookup)(const struct httpd_request *, const char *))
{
	bool first = true;

	for (size_t i = 0; i < count; i++) {
		const char *v = lookup(req, fields[i]);

		if (v == NULL)
			continue;
		if (first) {
			out_str(o, ",");
			json_string(o, key, strlen(key));
			out_str(o, ":{");
		} else {
			out_str(o, ",");
		}
		first = false;
		json_string(o, fields[i], strlen(fields[i]));
		out_str(o, ":");
		json_string(o, v, strlen(v));
	}
	if (!first)
		out_str(o, "}");
}

/* What a PROXY protocol preamble said, so a balancer's set-up can be checked from the outside. */
static void echo_proxy_json(struct out *o, const struct httpd_request *req)
{
	static const char *const fields[] = {
		"version", "addr", "port", "server_addr", "server_port", "balancer_addr", "balancer_port",
		"alpn", "authority", "unique_id", "netns", "crc32c", "ssl", "ssl_verify", "ssl_version",
		"ssl_cn", "ssl_cipher", "ssl_sig_alg", "ssl_key_alg",
	};

	json_fields(o, "proxy_protocol", fields, sizeof(fields) / sizeof(fields[0]), req, httpd_request_proxy);
}

/* The server block and TLS session, for checking SNI, resumption and client certificates. */
static void echo_tls_json(struct out *o, const struct httpd_request *req)
{
	static const char *const fields[] = {
		"protocol", "cipher", "server_name", "alpn", "session_reused", "client_subject", "client_issuer",
		"client_verify",
	};
	const char *server = httpd_request_tls(req, "server");

	out_str(o, ",\"scheme\":");
	json_string(o, req->scheme, strlen(req->scheme));
	if (server != NULL) {
		out_str(o, ",\"server\":");
		json_string(o, server, strlen(server));
	}
	json_fields(o, "tls", fields, sizeof(fields) / sizeof(fields[0]), req, httpd_request_tls);
}

static void echo_json(struct out *o, const struct httpd_request *req)
{
	char num[32];

	out_str(o, "{\"method\":");
	json_string(o, req->method_name, strlen(req->method_name));
	out_str(o, ",\"target\":");
	json_string(o, req->target, strlen(req->target));
	out_str(o, req->version == 10 ? ",\"version\":\"HTTP/1.0\"" : req->version == 20 ? ",\"version\":\"HTTP/2.0\""
	         : ",\"version\":\"HTTP/1.1\"");
	out_str(o, ",\"client\":");
	json_string(o, req->client_addr, strlen(req->client_addr));
	out_str(o, ",\"peer\":");
	json_string(o, req->peer_addr, strlen(req->peer_addr));
	echo_proxy_json(o, req);
	echo_tls_json(o, req);
	out_str(o, ",\"headers\":[");
	for (size_t i = 0; i < req->header_count; i++) {
		out_str(o, i ? ",[" : "[");
		json_string(o, req->headers[i].name, req->headers[i].name_len);
		out_str(o, ",");
		json_string(o, req->headers[i].value, req->headers[i].value_len);
		out_str(o, "]");
	}
	snprintf(num, sizeof(num), "%llu", (unsigned long long)req->body_len);
	out_str(o, "],\"body_length\":");
	out_str(o, num);
	if (req->body != NULL && !utf8_valid(req->body, (size_t)req->body_len)) {
		out_str(o, ",\"body_base64\":\"");
		base64(o, (const unsigned char *)req->body, (size_t)req->body_len);
		out_str(o, "\"}\n");
	} else {
		out_str(o, ",\"body\":");
		json_string(o, req->body ? req->body : "", (size_t)req->body_len);
		out_str(o, "}\n");
	}
}

static int echo_handle(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct out o = { .pool = req->pool };
	bool json = wants_json(req);

	(void)data;
	/* A body larger than body_buffer_size waits in a temporary file. */
	if (req->body_len > 0 && httpd_request_body_load(req) == NULL)
		return 500;
	if (json)
		echo_json(&o, req);
	else
		echo_text(&o, req);
	if (o.failed)
		return 500;
	if (httpd_response_add_header(res, "Content-Type",
	                              json ? "application/json" : "text/plain; charset=utf-8") < 0 ||
	    httpd_response_add_header(res, "Cache-Control", "no-store") < 0 ||
	    httpd_response_add_header(res, "Vary", "Accept") < 0)
		return 500;
	httpd_response_set_body_buffer(res, o.buf ? o.buf : "", o.len);
	return HTTPD_OK;
}

static int echo_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "echo");
	/* Every method but TRACE (off, as the core wants it) and CONNECT (not a proxy). */
	httpd_hook_handler(api, echo_handle,
	                   HTTPD_METHOD_GET | HTTPD_METHOD_HEAD | HTTPD_METHOD_POST | HTTPD_METHOD_PUT |
	                   HTTPD_METHOD_DELETE | HTTPD_METHOD_PATCH | HTTPD_METHOD_OPTIONS |
	                   HTTPD_METHOD_OTHER);
	return 0;
}

HTTPD_MODULE(echo_register)
