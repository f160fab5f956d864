/*
 * HTTP/1.1 request heads (RFC 9112 §2-§3, §6; RFC 9110 §5).  Pure functions,
 * no I/O, so they can be unit-tested and fuzzed on their own.
 */
#ifndef HTTPD_HTTP_PARSE_H
#define HTTPD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpd/http1.h"
#include "httpd/module.h"
#include "request_limits.h"

#define HTTP_PARSE_AGAIN HTTPD_CHUNKED_AGAIN  /* need more bytes */


/*
 * Looks for the end of a request head in buf[0..len).  *scan carries the
 * resume offset across calls (start it at 0).  Leading empty lines are
 * skipped (RFC 9112 §2.2).  Returns 0 with the head in
 * buf[*head_start .. *head_start + *head_len), HTTP_PARSE_AGAIN, or an
 * error status (400 for a bare LF or NUL, 414, 431).
 */
int http_head_find(const char *buf, size_t len, size_t *scan, const struct http_limits *lim,
                   size_t *head_start, size_t *head_len);

enum http_target_form { TARGET_ORIGIN, TARGET_ABSOLUTE, TARGET_ASTERISK, TARGET_AUTHORITY };

struct http_head {
	unsigned               method;       /* enum httpd_method bit, 0 if unknown */
	const char            *method_name;
	size_t                 method_len;
	const char            *target;
	size_t                 target_len;
	enum http_target_form  form;
	const char            *path;         /* raw path: path_len bytes, not terminated */
	size_t                 path_len;
	const char            *query;        /* after '?' to the end of the target, or NULL */
	int                    version;      /* 10, 11, or 20 (HTTP/2) */
	const char            *host;         /* authority of absolute-form, else Host, or NULL */
	size_t                 host_len;     /* host is not terminated */
	struct httpd_header   *headers;
	size_t                 header_count;
	int64_t                content_length; /* -1 if absent */
	bool                   chunked;
	bool                   keep_alive;   /* after Connection and version defaults */
	bool                   expect_continue;
	bool                   conditional;  /* an If-* or Range field came: validators need a look */
};

/*
 * Parses a complete head (as found by http_head_find, without the final
 * empty line) in place: head is modified and must be NUL-terminated at
 * head[len].  headers has room for lim->max_headers entries.  Returns 0 or
 * an error status (400, 417, 431, 501, 505); after an error the connection
 * must be closed, since the framing is not known.
 */
int http_head_parse(char *head, size_t len, const struct http_limits *lim,
                    struct httpd_header *headers, struct http_head *out);

/* An HTTP/2 request's pseudo-header fields (RFC 9113 §8.3.1), NUL-terminated; NULL when absent. */
struct h2_pseudo {
	const char *method, *scheme, *authority, *path, *protocol;
	size_t      method_len, authority_len, path_len;
};

/*
 * The head of an HTTP/2 request from its pseudo-header fields and its
 * regular fields (lower-case names, as libnghttp2 has checked them):
 * the same struct http_head an HTTP/1.1 head gives, version 20, so the
 * request phases and modules see no difference.  end_stream: HEADERS
 * ended the stream (no body).  0, or 400 for a malformed request
 * (RFC 9113 §8.1.1: a stream error).
 */
int http_head_from_h2(const struct h2_pseudo *ps, struct httpd_header *headers, size_t count,
                      bool end_stream, struct http_head *out);

#endif
