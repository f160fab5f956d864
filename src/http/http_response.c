#include "http_response.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_date.h"
#include "pool.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

struct status_text {
	int         code;
	const char *reason;
};

static const struct status_text statuses[] = {
	{ 100, "Continue" }, { 101, "Switching Protocols" },
	{ 200, "OK" }, { 201, "Created" }, { 204, "No Content" }, { 206, "Partial Content" },
	{ 301, "Moved Permanently" }, { 302, "Found" }, { 304, "Not Modified" },
	{ 307, "Temporary Redirect" }, { 308, "Permanent Redirect" },
	{ 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" }, { 404, "Not Found" },
	{ 405, "Method Not Allowed" }, { 408, "Request Timeout" }, { 409, "Conflict" },
	{ 411, "Length Required" }, { 412, "Precondition Failed" }, { 413, "Content Too Large" },
	{ 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
	{ 416, "Range Not Satisfiable" }, { 417, "Expectation Failed" }, { 421, "Misdirected Request" },
	{ 422, "Unprocessable Content" }, { 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" }, { 503, "Service Unavailable" },
	{ 502, "Bad Gateway" }, { 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" }, { 507, "Insufficient Storage" },
};

const char *http_status_reason(int status)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].code == status)
			return statuses[i].reason;
	return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "Unknown";
}

void response_init(struct httpd_response *res, struct httpd_pool *pool)
{
	memset(res, 0, sizeof(*res));
	res->status = 200;
	res->fd = -1;
	res->tunnel_fd = -1;
	res->head_length = -1;
	res->coding = -1;
	res->pool = pool;
}

void response_discard_body(struct httpd_response *res)
{
	/* An owned file is closed by its pool cleanup, when the request ends, whichever way it ends. */
	res->fd = -1;
	res->body = BODY_NONE;
	res->head_length = -1;
	res->chain = NULL;   /* its links live in the pool; a source's file is closed by a pool cleanup */
	res->memo = NULL;
}

void httpd_response_set_date(struct httpd_response *res, time_t date)
{
	res->date = date;
}

void httpd_response_set_status(struct httpd_response *res, int status)
{
	res->status = status >= 100 && status <= 999 ? status : 500;   /* three digits, or the module erred */
}

int httpd_response_status(const struct httpd_response *res)
{
	return res->status;
}

uint64_t httpd_response_bytes_sent(const struct httpd_response *res)
{
	return res->body_sent;
}

const char *httpd_response_header(const struct httpd_response *res, const char *name)
{
	for (size_t i = 0; i < res->prebuilt_count; i++)
		if (strcasecmp(res->prebuilt_fields[i].name, name) == 0)
			return res->prebuilt_fields[i].value;
	for (const struct response_header *h = res->headers; h != NULL; h = h->next)
		if (strcasecmp(h->name, name) == 0)
			return h->value;
	return NULL;
}

void response_fields_prebuilt(struct httpd_response *res, const char *text, size_t len,
                              const struct response_header *fields, size_t count)
{
	res->prebuilt = text;
	res->prebuilt_len = len;
	res->prebuilt_fields = fields;
	res->prebuilt_count = count;
}

/* The spelling HTTP/1.1 heads use for the fields prebuilt in lower case (for HTTP/2). */
static const char *field_spelling(const char *name)
{
	static const char *const canonical[] = { "ETag", "Last-Modified", "Accept-Ranges", "Content-Type" };

	for (size_t i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++)
		if (strcasecmp(name, canonical[i]) == 0)
			return canonical[i];
	return name;
}

int response_fields_expand(struct httpd_response *res)
{
	const struct response_header *fields = res->prebuilt_fields;
	size_t count = res->prebuilt_count;

	response_fields_prebuilt(res, NULL, 0, NULL, 0);
	/* Head order stays: the prebuilt ones went out first. */
	for (size_t i = count; i-- > 0; ) {
		struct response_header *h = pool_alloc(res->pool, sizeof(*h));

		if (h == NULL)
			return -1;
		*h = fields[i];
		h->name = field_spelling(h->name);
		h->next = res->headers;
		res->headers = h;
		if (res->headers_tail == NULL)
			res->headers_tail = h;
	}
	return 0;
}

void response_header_remove(struct httpd_response *res, const char *name)
{
	struct response_header **link = &res->headers;

	/* Out of memory, the prebuilt fields go as a whole: a response without them is still a response. */
	if (res->prebuilt_count > 0 && response_fields_expand(res) < 0)
		response_fields_prebuilt(res, NULL, 0, NULL, 0);
	res->headers_tail = NULL;
	while (*link != NULL) {
		if (strcasecmp((*link)->name, name) == 0) {
			*link = (*link)->next;
			continue;
		}
		res->headers_tail = *link;
		link = &(*link)->next;
	}
}

/* The length of a header name or value, or -1 for NULL or one with CR or LF. */
static ssize_t header_text_len(const char *s)
{
	const char *p;

	if (s == NULL)
		return -1;
	for (p = s; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			return -1;
	return p - s;
}

static int header_push_len(struct httpd_response *res, const char *name, size_t name_len, const char *value,
                           size_t value_len)
{
	struct response_header *h = pool_alloc(res->pool, sizeof(*h));

	if (h == NULL)
		return -1;
	h->name = name;
	h->value = value;
	h->name_len = name_len;
	h->value_len = value_len;
	h->next = NULL;
	if (res->headers_tail != NULL)
		res->headers_tail->next = h;
	else
		res->headers = h;
	res->headers_tail = h;
	return 0;
}

static bool header_is_framing(const char *name)
{
	/* By length first: this runs for every header of every response. */
	switch (strlen(name)) {
	case 4:  return strcasecmp(name, "Date") == 0;
	case 6:  return strcasecmp(name, "Server") == 0;
	case 10: return strcasecmp(name, "Connection") == 0 || strcasecmp(name, "Keep-Alive") == 0;
	case 14: return strcasecmp(name, "Content-Length") == 0;
	case 17: return strcasecmp(name, "Transfer-Encoding") == 0;
	default: return false;
	}
}

int httpd_response_add_header(struct httpd_response *res, const char *name, const char *value)
{
	ssize_t name_len = header_text_len(name), value_len = header_text_len(value);
	char *copy;

	if (name_len <= 0 || value_len < 0 || memchr(name, ':', (size_t)name_len) != NULL || header_is_framing(name))
		return -1;
	/* Name and value in one allocation. */
	copy = pool_alloc(res->pool, (size_t)name_len + (size_t)value_len + 2);
	if (copy == NULL)
		return -1;
	memcpy(copy, name, (size_t)name_len + 1);
	memcpy(copy + name_len + 1, value, (size_t)value_len + 1);
	return header_push_len(res, copy, (size_t)name_len, copy + name_len + 1, (size_t)value_len);
}

int httpd_response_remove_header(struct httpd_response *res, const char *name)
{
	ssize_t name_len = header_text_len(name);

	if (name_len <= 0 || header_is_framing(name))
		return -1;
	response_header_remove(res, name);
	return 0;
}

int response_header_push(struct httpd_response *res, const char *name, const char *value)
{
	return header_push_len(res, name, strlen(name), value, strlen(value));
}

void response_header_set_value(struct response_header *h, const char *value)
{
	h->value = value;
	h->value_len = strlen(value);
}

void httpd_response_set_body_buffer(struct httpd_response *res, const void *data, size_t len)
{
	response_discard_body(res);
	res->body = BODY_BUFFER;
	res->buf = data;
	res->buf_len = len;
}

/* Whose fd it is (the request's pool, or the open-file cache) is settled by the caller. */
void response_set_body_file_ref(struct httpd_response *res, int fd, off_t offset, off_t len)
{
	response_discard_body(res);
	res->body = BODY_FILE;
	res->fd = fd;
	res->file_offset = offset;
	res->file_len = len;
}

static void body_file_close(void *arg)
{
	close((int)(intptr_t)arg);
}

void httpd_response_set_body_file(struct httpd_response *res, int fd, off_t offset, off_t len)
{
	/* The file is the request's from now on: closed with its pool, sent or not. */
	if (httpd_pool_cleanup(res->pool, body_file_close, (void *)(intptr_t)fd) < 0) {
		close(fd);
		httpd_log(HTTPD_LOG_ERR, "out of memory for a file response: sending an empty body");
		httpd_response_set_body_buffer(res, "", 0);
		return;
	}
	response_set_body_file_ref(res, fd, offset, len);
}

int64_t httpd_response_body_length(const struct httpd_response *res)
{
	if (res->chain != NULL)
		return -1;
	switch (res->body) {
	case BODY_BUFFER: return (int64_t)res->buf_len;
	case BODY_FILE:   return (int64_t)res->file_len;
	case BODY_NONE:   return 0;
	default:          return -1;
	}
}

void httpd_response_set_head_length(struct httpd_response *res, off_t len)
{
	response_discard_body(res);
	res->head_length = len < 0 ? -2 : len;
}

void httpd_response_set_body_stream(struct httpd_response *res, httpd_stream_fn fn, void *ctx)
{
	response_discard_body(res);
	res->body = BODY_STREAM;
	res->stream = fn;
	res->stream_ctx = ctx;
}

void response_error(struct httpd_response *res, int status, const char *body, size_t len,
                    const char *content_type)
{
	/* These describe the body being replaced; anything else the module said stays. */
	static const char *const representation[] = {
		"Content-Type", "Content-Encoding", "Content-Language", "Content-Range", "ETag",
		"Last-Modified", "Accept-Ranges", "Vary",
	};
	const char *reason = http_status_reason(status);

	response_discard_body(res);
	res->status = status;
	for (size_t i = 0; i < sizeof(representation) / sizeof(representation[0]); i++)
		response_header_remove(res, representation[i]);
	if (body == NULL) {
		char *page = httpd_pool_printf(res->pool,
		                               "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
		                               "<body><h1>%d %s</h1></body></html>\n",
		                               status, reason, status, reason);

		body = page != NULL ? page : "";
		len = page != NULL ? strlen(page) : 0;
		content_type = "text/html; charset=utf-8";
	}
	if (httpd_response_add_header(res, "Content-Type", content_type) < 0)
		len = 0;   /* out of memory: an empty body still frames correctly */
	httpd_response_set_body_buffer(res, body, len);
}

/* length in decimal, written backwards from end (a 32-byte buffer always suffices). */
/* The status's three digits at out (httpd_response_set_status keeps it to 100-999). */
static void status_digits(int status, char *out)
{
	out[0] = (char)('0' + status / 100 % 10);
	out[1] = (char)('0' + status / 10 % 10);
	out[2] = (char)('0' + status % 10);
}

static const char *decimal(unsigned long long length, char *end)
{
	*--end = '\0';
	do {
		*--end = (char)('0' + length % 10);
		length /= 10;
	} while (length > 0);
	return end;
}

/* A bounded string builder over one pool allocation. */
struct head_buf {
	char  *p;
	size_t len;
	size_t cap;
};

static void head_put(struct head_buf *b, const char *s, size_t n)
{
	if (b->len + n < b->cap)
		memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void head_puts(struct head_buf *b, const char *s)
{
	head_put(b, s, strlen(s));
}

static void head_field(struct head_buf *b, const char *name, const char *value)
{
	head_puts(b, name);
	head_put(b, ": ", 2);
	head_puts(b, value);
	head_put(b, "\r\n", 2);
}

static void head_header(struct head_buf *b, const struct response_header *h)
{
	head_put(b, h->name, h->name_len);
	head_put(b, ": ", 2);
	head_put(b, h->value, h->value_len);
	head_put(b, "\r\n", 2);
}

static size_t head_estimate(const struct httpd_response *res)
{
	size_t n = 512 + res->prebuilt_len;   /* status line, Server, Date, Allow, framing */

	for (const struct response_header *h = res->headers; h != NULL; h = h->next)
		n += h->name_len + h->value_len + 4;
	return n;
}

char *response_head_build(struct httpd_response *res, struct response_head_opts *opts,
                          size_t *len, bool *chunked)
{
	struct head_buf b;
	char num[32];
	bool no_body = res->status == 204 || res->status == 304 || res->status < 200;

	b.cap = head_estimate(res);
	b.len = 0;
	b.p = pool_alloc(res->pool, b.cap);
	if (b.p == NULL)
		return NULL;
	*chunked = false;

#define HEAD_200_TOKENS "HTTP/1.1 200 OK\r\nServer: prefork-httpd/" PACKAGE_VERSION "\r\nDate: "
#define HEAD_200          "HTTP/1.1 200 OK\r\nServer: prefork-httpd\r\nDate: "
	if (res->status == 200) {
		/* Nearly every answer: its first lines are one constant. */
		if (opts->server_tokens)
			head_put(&b, HEAD_200_TOKENS, sizeof(HEAD_200_TOKENS) - 1);
		else
			head_put(&b, HEAD_200, sizeof(HEAD_200) - 1);
	} else {
		memcpy(num, "HTTP/1.1 000 ", 13);
		status_digits(res->status, num + 9);
		head_put(&b, num, 13);
		head_puts(&b, http_status_reason(res->status));
		head_put(&b, "\r\n", 2);
		if (opts->server_tokens)
			head_put(&b, "Server: prefork-httpd/" PACKAGE_VERSION "\r\nDate: ",
			         sizeof("Server: prefork-httpd/" PACKAGE_VERSION "\r\nDate: ") - 1);
		else
			head_put(&b, "Server: prefork-httpd\r\nDate: ", sizeof("Server: prefork-httpd\r\nDate: ") - 1);
	}
#undef HEAD_200_TOKENS
#undef HEAD_200
	if (res->date != 0) {
		char date[HTTPD_DATE_LEN];

		head_put(&b, httpd_http_date(res->date, date), HTTPD_DATE_LEN - 1);
	} else {
		head_put(&b, http_date_now(opts->now), HTTPD_DATE_LEN - 1);
	}
	head_put(&b, "\r\n", 2);
	if (res->prebuilt_len > 0)
		head_put(&b, res->prebuilt, res->prebuilt_len);
	for (const struct response_header *h = res->headers; h != NULL; h = h->next)
		head_header(&b, h);
	if (opts->allow != NULL)
		head_field(&b, "Allow", opts->allow);

	if (no_body) {
		response_discard_body(res);
	} else if (res->body == BODY_STREAM) {
		if (opts->version == 11) {
			head_field(&b, "Transfer-Encoding", "chunked");
			*chunked = true;
		} else {
			opts->keep_alive = false;   /* the end of the body is the end of the connection */
		}
	} else if (res->head_length != -1 && opts->head_only) {
		/* A HEAD answer for a body someone else has (the proxy's upstream): its length, when known. */
		if (res->head_length >= 0)
			head_field(&b, "Content-Length", decimal((unsigned long long)res->head_length, num + sizeof(num)));
	} else {
		unsigned long long length = res->body == BODY_BUFFER ? res->buf_len
		                          : res->body == BODY_FILE ? (unsigned long long)res->file_len : 0;
		const char *digits = decimal(length, num + sizeof(num));

		head_put(&b, "Content-Length: ", 16);
		head_put(&b, digits, (size_t)(num + sizeof(num) - 1 - digits));
		head_put(&b, "\r\n", 2);
	}
	if (res->status == 101 && res->tunnel_fd >= 0)
		head_field(&b, "Connection", "upgrade");
	else if (!opts->keep_alive)
		head_field(&b, "Connection", "close");
	else if (opts->version == 10)
		head_field(&b, "Connection", "keep-alive");
	head_put(&b, "\r\n", 2);

	if (b.len >= b.cap)
		return NULL;   /* the estimate is an upper bound; this is a bug guard */
	if (opts->head_only) {
		if (res->body == BODY_STREAM && opts->version == 11)
			*chunked = false;
		response_discard_body(res);
	}
	*len = b.len;
	return b.p;
}

/* Fields RFC 9113 §8.2.2 forbids in HTTP/2. */
static bool connection_specific(const char *name, size_t len)
{
	static const struct { const char *name; size_t len; } fields[] = {
		{ "connection", 10 }, { "keep-alive", 10 }, { "transfer-encoding", 17 }, { "upgrade", 7 },
		{ "proxy-connection", 16 },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i].len == len && strncasecmp(fields[i].name, name, len) == 0)
			return true;
	return false;
}

/* The names the core and the bundled modules write, in the case they write them: HTTP/2's lower case needs no copy. */
static const char *known_lower(const char *name, size_t len)
{
	static const struct { const char *canonical, *lower; size_t len; } known[] = {
		{ "ETag", "etag", 4 }, { "Vary", "vary", 4 }, { "Last-Modified", "last-modified", 13 },
		{ "Content-Type", "content-type", 12 }, { "Accept-Ranges", "accept-ranges", 13 },
		{ "Cache-Control", "cache-control", 13 }, { "Content-Encoding", "content-encoding", 16 },
		{ "Content-Range", "content-range", 13 }, { "Location", "location", 8 }, { "Expires", "expires", 7 },
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i].len == len && memcmp(known[i].canonical, name, len) == 0)
			return known[i].lower;
	return NULL;
}

static bool field_add(struct httpd_pool *pool, struct response_field *f, size_t *n, const char *name, size_t name_len,
                      const char *value, size_t value_len)
{
	bool lower = true;
	const char *known;
	char *copy;

	if (connection_specific(name, name_len))
		return true;
	for (size_t i = 0; i < name_len && lower; i++)
		lower = !(name[i] >= 'A' && name[i] <= 'Z');
	if (!lower && (known = known_lower(name, name_len)) != NULL) {
		name = known;
	} else if (!lower) {
		copy = pool_alloc(pool, name_len + 1);
		if (copy == NULL)
			return false;
		for (size_t i = 0; i < name_len; i++)
			copy[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
		copy[name_len] = '\0';
		name = copy;
	}
	f[*n] = (struct response_field){ name, value, name_len, value_len };
	(*n)++;
	return true;
}

struct response_field *response_fields_build(struct httpd_response *res, const struct response_head_opts *opts,
                                             size_t *count)
{
	bool no_body = res->status == 204 || res->status == 304 || res->status < 200;
	size_t cap = 6 + res->prebuilt_count, n = 0;
	struct response_field *f;
	char num[32], *status;
	const char *length = NULL;

	for (const struct response_header *h = res->headers; h != NULL; h = h->next)
		cap++;
	/* ":status" rides in the fields' own allocation, behind them */
	f = pool_alloc(res->pool, cap * sizeof(*f) + 4);
	if (f == NULL)
		return NULL;
	status = (char *)(f + cap);
	status_digits(res->status, status);
	status[3] = '\0';
	f[n++] = (struct response_field){ ":status", status, 7, 3 };
	if (opts->server_tokens)
		f[n++] = (struct response_field){ "server", "prefork-httpd/" PACKAGE_VERSION, 6,
		                                  sizeof("prefork-httpd/" PACKAGE_VERSION) - 1 };
	else
		f[n++] = (struct response_field){ "server", "prefork-httpd", 6, 13 };
	if (res->date != 0) {
		char *date = pool_alloc(res->pool, HTTPD_DATE_LEN);

		f[n] = (struct response_field){ "date", date != NULL ? httpd_http_date(res->date, date) : NULL, 4,
		                                HTTPD_DATE_LEN - 1 };
	} else {
		/* Not copied: the cache is rewritten only with another second's date of the same length, so a
		 * HEADERS frame packed later carries a date at most that much newer. */
		f[n] = (struct response_field){ "date", http_date_now(opts->now), 4, HTTPD_DATE_LEN - 1 };
	}
	if (f[n++].value == NULL)
		return NULL;
	/* The file cache's fields are made in lower case and are none of the connection's. */
	for (size_t i = 0; i < res->prebuilt_count; i++) {
		const struct response_header *h = &res->prebuilt_fields[i];

		f[n++] = (struct response_field){ h->name, h->value, h->name_len, h->value_len };
	}
	for (const struct response_header *h = res->headers; h != NULL; h = h->next)
		if (!field_add(res->pool, f, &n, h->name, h->name_len, h->value, h->value_len))
			return NULL;
	if (opts->allow != NULL)
		f[n++] = (struct response_field){ "allow", opts->allow, 5, strlen(opts->allow) };
	if (no_body) {
		response_discard_body(res);
	} else if (res->body == BODY_STREAM || opts->tunnel) {
		/* The stream's end is the body's end: no length. */
	} else if (res->head_length != -1 && opts->head_only) {
		if (res->head_length >= 0)
			length = decimal((unsigned long long)res->head_length, num + sizeof(num));
	} else {
		length = decimal(res->body == BODY_BUFFER ? res->buf_len
		                 : res->body == BODY_FILE ? (unsigned long long)res->file_len : 0, num + sizeof(num));
	}
	if (length != NULL) {
		size_t len = (size_t)(num + sizeof(num) - 1 - length);
		const char *copy = pool_strndup(res->pool, length, len);

		if (copy == NULL)
			return NULL;
		f[n++] = (struct response_field){ "content-length", copy, 14, len };
	}
	if (opts->head_only)
		response_discard_body(res);
	*count = n;
	return f;
}
