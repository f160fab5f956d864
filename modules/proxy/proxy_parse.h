/*
 * What comes back from an upstream server: the response head (RFC 9112
 * §4-6) and chunked framing (§7.1), parsed strictly and without trusting
 * a byte, so a malformed or ambiguous response is refused (502) rather than
 * passed on.  Pure: unit-tested and fuzzed without a server.
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

/* Whether token is one of the comma-separated tokens of value (Connection), case-insensitive. */
bool proxy_list_has(const char *value, const char *token);

/* Whether a response to method with status has a body (RFC 9112 §6.3). */
bool proxy_head_has_body(const struct proxy_head *h, bool head_request);

/* Chunked decoding, in place, fed whatever arrived. */
struct proxy_chunked {
	int      state;
	uint64_t left;      /* bytes of the current chunk still to come */
	unsigned digits;
	bool     done;
};

/*
 * Decodes in[0..len): data bytes are moved to the front of in, *out_len
 * says how many; returns how many input bytes were consumed, or -1 on a
 * framing error.  c->done once the last chunk and trailers are read.
 */
long proxy_chunked_decode(struct proxy_chunked *c, char *in, size_t len, size_t *out_len);

#endif
