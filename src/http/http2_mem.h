#ifndef HTTPD_HTTP2_MEM_H
#define HTTPD_HTTP2_MEM_H

#include <stddef.h>

/*
 * libnghttp2's memory, apart from malloc's heap: blocks by size class,
 * carved from 32 KiB mappings of their own.  Its small blocks come and go
 * several times per request, and a free list is quicker than malloc's
 * bins; and a session's memory never lies between the connections'
 * long-lived structs, so a parked session's pages go back to the kernel
 * as soon as its chunks empty (in the heap they stayed resident, holes
 * too small to trim).  Not thread-safe: a worker's event loop only.
 */
void *http2_block_alloc(size_t n);
void *http2_block_realloc(void *p, size_t n);
void  http2_block_free(void *p);
/* How many bytes p may hold. */
size_t http2_block_size(const void *p);

#endif
