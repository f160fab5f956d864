/*
 * The body-filter chain of a response: the handler's body (buffer, file or
 * stream) as its source, then each filter that joined, pulled by the
 * protocol from the last one.  A chained body is a stream to the framing
 * code (no Content-Length; chunked on HTTP/1.1) whose pieces may be file
 * ranges, which the protocols send with sendfile.
 */
#ifndef HTTPD_BODY_FILTER_H
#define HTTPD_BODY_FILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "httpd/module.h"
#include "http_response.h"

struct httpd_body {
	struct httpd_body      *prev;      /* what this link reads; NULL for the source */
	httpd_body_filter_fn    filter;    /* NULL for the source */
	void                   *ctx;
	const char             *module;    /* for the error log */
	struct httpd_request   *req;
	/* the source: the handler's body as it was when the first filter joined */
	enum body_kind          kind;
	const char             *buf;
	uint64_t                len, done;
	int                     fd;
	off_t                   offset;
	httpd_stream_fn         stream;
	void                   *stream_ctx;
	char                   *scratch;   /* a stream's pieces */
	bool                    ended;
};

/*
 * Puts filter (with its ctx) at the end of res's chain, making the chain
 * first when res has none (its body becomes the source).  0, or -1 out of
 * memory.
 */
int body_chain_add(struct httpd_request *req, struct httpd_response *res, httpd_body_filter_fn filter, void *ctx,
                   const char *module);

/* The next piece from the end of res's chain: httpd_body_pull's returns. */
int body_chain_pull(struct httpd_response *res, struct httpd_chunk *chunk, size_t max);

/* A chunk's bytes into buf (a file range read): 0, or -1 (logged for req) when the file came up short. */
int body_chunk_copy(const struct httpd_request *req, const struct httpd_chunk *chunk, void *buf);

/* Bytes gathered in one malloc'd buffer, grown as they come (its owner frees buf). */
struct body_copy {
	char  *buf;
	size_t len, cap;
};
/* Appends len bytes, so long as the copy stays within limit: 0, or -1 past it or out of memory. */
int body_copy_append(struct body_copy *copy, const void *data, size_t len, size_t limit);

/*
 * Runs the whole chain now, into one malloc'd buffer the caller frees, for
 * a body whose source is in memory (the file cache's compressed copies): 0
 * with *out and *len, or -1 (a filter that waits, an error, or more than
 * limit bytes).
 */
int body_chain_collect(struct httpd_response *res, size_t limit, char **out, size_t *len);

#endif
