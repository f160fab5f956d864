/* Responses: what handlers fill in, and the head the core puts on the wire. */
#ifndef HTTPD_HTTP_RESPONSE_H
#define HTTPD_HTTP_RESPONSE_H

#include <stdbool.h>
#include <sys/types.h>

#include "httpd/module.h"

enum body_kind { BODY_NONE, BODY_BUFFER, BODY_FILE, BODY_STREAM };

/*
 * Files up to this size leave with the head in one write, from memory: read
 * with pread, or kept by the open-file cache (measured with strace -c: for
 * small files a copy is cheaper than sendfile).
 */
#define RESPONSE_SMALL_FILE 16384

struct response_header {
	const char             *name;
	const char             *value;
	size_t                  name_len, value_len;   /* measured once, when added */
	struct response_header *next;
};

struct httpd_response {
	int                     status;
	struct response_header *headers;
	struct response_header *headers_tail;
	enum body_kind          body;
	const char             *buf;
	size_t                  buf_len;
	int                     fd;
	off_t                   file_offset;
	off_t                   file_len;
	httpd_stream_fn         stream;
	void                    *stream_ctx;
	struct httpd_pool      *pool;
	uint64_t                body_sent;      /* body bytes written so far */
	int                     tunnel_fd;      /* after a 101: relayed to the client (http/tunnel.c), or -1 */
	unsigned                tunnel_idle_ms;
	const char             *tunnel_pending; /* bytes already read from tunnel_fd, for the client first */
	size_t                  tunnel_pending_len;
	off_t                   head_length;    /* set_head_length: a HEAD answer's Content-Length, -2 none, -1 unset */
	time_t                  date;           /* set_date: the Date the answer carries (a cache's stored one), 0 now */
	/*
	 * Fields formatted once and kept by their owner (a cached file's
	 * validators and type): copied into the head as they are, before the
	 * list.  The same fields as headers, for lookups.
	 */
	const char             *prebuilt;
	size_t                  prebuilt_len;
	const struct response_header *prebuilt_fields;
	size_t                  prebuilt_count;
	struct httpd_body      *chain;          /* body filters joined (http/body_filter.c): the last link, or NULL */
	int                     coding;         /* the content coding chosen (enum coding), or -1 */
	int                     coding_level;
	/* A body whose keeper (the open-file cache) also keeps its compressed forms: how to ask it, or NULL. */
	const struct body_memo_ops *memo;
	const void             *memo_key;
};

/* What keeps a small body in memory offers the compression filter: its compressed copies. */
struct body_memo_ops {
	/* The body in coding at level, kept from an earlier response: its bytes, or NULL. */
	const char *(*get)(const void *key, int coding, int level, size_t *len);
	/* Keeps data (malloc'd; the keeper frees it) as the body in coding at level: its bytes, or NULL. */
	const char *(*keep)(const void *key, int coding, int level, char *data, size_t len);
};

void response_init(struct httpd_response *res, struct httpd_pool *pool);
/* A file body whose descriptor someone else keeps open (the open-file cache). */
void response_set_body_file_ref(struct httpd_response *res, int fd, off_t offset, off_t len);
/* Closes a file body that will not be sent. */
void response_discard_body(struct httpd_response *res);
/*
 * Turns the response into an error: status, and body (NULL: a small built-in
 * HTML page).  Headers the module added stay (a 401 keeps its
 * WWW-Authenticate), except those describing the discarded body.
 */
void response_error(struct httpd_response *res, int status, const char *body, size_t len,
                    const char *content_type);
/*
 * The core's own fast path: adds a header without copying or checking it.
 * name and value must be valid and live as long as the response (literals,
 * the open-file cache's strings, the mime table).  -1 out of memory.
 */
int response_header_push(struct httpd_response *res, const char *name, const char *value);
/* Replaces a header's value (filters); value must live as long as the response. */
void response_header_set_value(struct response_header *h, const char *value);
/* Removes every header called name. */
void response_header_remove(struct httpd_response *res, const char *name);
/*
 * Fields prebuilt as text ("Name: value\r\n" each) and as headers, the
 * headers named in lower case and none of them connection-specific (HTTP/2
 * sends them as they are); both must live as long as the response.
 * Replaces any prebuilt before.
 */
void response_fields_prebuilt(struct httpd_response *res, const char *text, size_t len,
                              const struct response_header *fields, size_t count);
/* Moves prebuilt fields onto the list, for a filter that edits headers in place; -1 out of memory. */
int response_fields_expand(struct httpd_response *res);
const char *http_status_reason(int status);

struct response_head_opts {
	int         version;        /* request version: 10 or 11 */
	bool        keep_alive;
	bool        head_only;      /* HEAD: headers of GET, no body */
	bool        server_tokens;
	time_t      now;
	const char *allow;          /* Allow header value, or NULL */
	bool        tunnel;         /* HTTP/2: the stream relays a tunnel (RFC 8441), no length */
};

/*
 * Serialises the status line and headers into the pool, framing included:
 * Content-Length, or chunked for a stream on HTTP/1.1 (a stream on 1.0 is
 * close-delimited, so keep_alive is turned off).  Returns the head, or NULL.
 */
char *response_head_build(struct httpd_response *res, struct response_head_opts *opts,
                          size_t *len, bool *chunked);

/* One field of a response as HTTP/2 sends it: lower-case name. */
struct response_field {
	const char *name, *value;
	size_t      name_len, value_len;
};

/*
 * The response's fields for HTTP/2 (RFC 9113 §8.2): ":status" first, then
 * Server, Date, the module's fields with lower-case names, Allow and
 * Content-Length when known; connection-specific fields (Connection,
 * Keep-Alive, Transfer-Encoding, Upgrade, Proxy-Connection) are dropped.
 * A body that will not be sent is discarded as for HTTP/1.1.  The array
 * lives in the response's pool; NULL out of memory.
 */
struct response_field *response_fields_build(struct httpd_response *res, const struct response_head_opts *opts,
                                             size_t *count);

#endif
