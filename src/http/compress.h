/*
 * Compression: the compress, compress_level, compress_min_length and
 * compress_types directives (and gzip, its shorthand), and, per response,
 * the choice of a content coding whose module's body filter then runs last
 * in the chain.  The codings themselves live in modules (gzip, brotli,
 * zstd), loaded when a location names them.
 */
#ifndef HTTPD_COMPRESS_H
#define HTTPD_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "content_coding.h"
#include "directive.h"

struct request;
struct module;

struct compress_conf {
	enum coding          order[CODING_COUNT];   /* the server's preference */
	const struct module *mod[CODING_COUNT];     /* the module of order[i] */
	size_t               count;
	int                  level[CODING_COUNT];   /* by enum coding */
	uint64_t             min_length;
	char               **types;                 /* compress_types; NULL: httpd_mime_compressible */
	size_t               type_count;
};

extern const struct directive_table compress_directives;

/*
 * After the body filters have joined: Vary for every response compression
 * could change, then the coding the client and the location agree on, if
 * the response is one to compress.  0, or a status for an error.
 */
int compress_apply(struct request *r);

#endif
