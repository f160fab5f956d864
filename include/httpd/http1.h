/*
 * The HTTP/1.1 grammar the core parses requests with (RFC 9112, RFC 9110
 * §5), for modules that speak HTTP/1.1 themselves: the proxy reads its
 * upstreams' responses with the same token, list, Content-Length and
 * chunked rules the core applies to clients, so the two sides of a proxy
 * cannot disagree on where a message ends.  Pure functions, no I/O.
 */
#ifndef HTTPD_HTTP1_H_PUBLIC
#define HTTPD_HTTP1_H_PUBLIC

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* s[0..len) is a token (RFC 9110 §5.6.2): one or more tchar. */
bool httpd_http1_token(const char *s, size_t len);

/* Whether token is a member of the comma-separated list value (Connection, Upgrade), case-insensitive. */
bool httpd_http1_list_has(const char *value, const char *token);

/*
 * A Content-Length field value into *length: 1*DIGIT without overflow; a
 * list of identical values is one value (RFC 9110 §8.6).  *length must be
 * -1 before the first field; a later field that differs is refused, so a
 * message with two lengths is refused whichever way its fields are split.
 * 0, or -1 when invalid or conflicting.
 */
int httpd_http1_content_length(const char *value, int64_t *length);

/* Incremental chunked decoding (RFC 9112 §7.1): extensions checked, trailers bounded and dropped. */
struct httpd_chunked {
	int      state;
	uint64_t chunk_left;
	size_t   line_len;    /* bytes in the current size or trailer line */
	size_t   trailer_len; /* trailer section bytes so far */
	uint64_t body_len;    /* decoded bytes so far */
};

#define HTTPD_CHUNKED_DONE  0
#define HTTPD_CHUNKED_AGAIN 1

void httpd_chunked_init(struct httpd_chunked *ch);
/*
 * Decodes from in[0..in_len) into out[0..out_cap); out may be in itself
 * (decoding in place).  Sets *consumed and *produced in every case.
 * Returns HTTPD_CHUNKED_DONE after the last chunk and trailers (in[*consumed..]
 * is the next message), HTTPD_CHUNKED_AGAIN for more input or output room,
 * 400 for a framing error, 413 once the body exceeds max_body.
 */
int httpd_chunked_decode(struct httpd_chunked *ch, const char *in, size_t in_len, size_t *consumed,
                         char *out, size_t out_cap, size_t *produced, uint64_t max_body);

#ifdef __cplusplus
}
#endif

#endif
