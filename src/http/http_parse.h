/*
 * HTTP/1.1 request heads (RFC 9112 §2-§3, §6; RFC 9110 §5).  Pure functions,
 * no I/O, so they can be unit-tested and fuzzed on their own.
 */
#ifndef HTTPD_HTTP_PARSE_H
#define HTTPD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpd/module.h"

#define HTTP_PARSE_AGAIN 1  /* need more bytes */

struct http_limits {
	size_t max_request_line;  /* 414 above */
	size_t max_head;          /* whole head, request line included: 431 above */
	size_t max_headers;       /* header field lines: 431 above */
};

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
	int                    version;      /* 10 or 11 */
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

/* Incremental chunked body decoding (RFC 9112 §7.1). */
struct http_chunked {
	int      state;
	uint64_t chunk_left;
	size_t   line_len;    /* bytes in the current size or trailer line */
	size_t   trailer_len; /* trailer section bytes so far */
	uint64_t body_len;    /* decoded bytes so far */
};

#define HTTP_CHUNKED_DONE 0

void http_chunked_init(struct http_chunked *ch);
/*
 * Decodes from in[0..in_len) into out[0..out_cap).  Sets *consumed and
 * *produced.  Returns HTTP_CHUNKED_DONE after the last chunk and trailers
 * (in[*consumed..] is the next request), HTTP_PARSE_AGAIN for more input or
 * output room, 400 for a framing error, 413 once the body exceeds max_body.
 * *consumed and *produced are set in every case.
 */
int http_chunked_decode(struct http_chunked *ch, const char *in, size_t in_len, size_t *consumed,
                        char *out, size_t out_cap, size_t *produced, uint64_t max_body);

#endif
