/*
 * What comes back from an upstream server: the response head (RFC 9112
 * §4-6), parsed strictly and without trusting a byte, so a malformed or
 * ambiguous response is refused (502) rather than passed on.  Tokens,
 * lists, Content-Length and chunked framing are the core's own
 * (<httpd/http1.h>): both sides of the proxy read HTTP/1.1 alike.  Pure:
 * unit-tested and fuzzed without a server.
 */
#ifndef HTTPD_PROXY_PARSE_H
#define HTTPD_PROXY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_HEAD_MAX     16384
#define PROXY_HEADERS_MAX  100

struct proxy_header {
	const char *name, *value;   /* NUL-terminated, inside the parsed buffer */
};

struct proxy_head {
	int                 version;          /* 10 or 11 */
	int                 status;
	struct proxy_header headers[PROXY_HEADERS_MAX];
	size_t              count;
	int64_t             content_length;   /* -1: none */
	bool                chunked;
	bool                keep_alive;       /* the upstream will keep the connection open */
};

/*
 * Parses the head at the start of buf (len bytes), writing NULs into it.
 * Returns the head's length with its final CRLF, 0 when more bytes are
 * needed, or -1 when it is malformed (why says how).
 */
long proxy_head_parse(char *buf, size_t len, struct proxy_head *h, const char **why);

/* Whether a response to method with status has a body (RFC 9112 §6.3). */
bool proxy_head_has_body(const struct proxy_head *h, bool head_request);

#endif
