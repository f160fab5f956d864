#ifndef HTTPD_HTTP2_MEM_H
#define HTTPD_HTTP2_MEM_H

#include <stddef.h>

/*
 * libnghttp2's small allocations (streams, queued frames, header copies),
 * made and freed several times per request: kept on this worker's free
 * lists by size, so a busy connection reuses them instead of going
 * through malloc's slower bins.  A bounded amount is kept; the rest goes
 * back to malloc.  Not thread-safe: a worker's event loop only.
 */
void *http2_block_alloc(size_t n);
void *http2_block_realloc(void *p, size_t n);
void  http2_block_free(void *p);

#endif
