/* Per-request memory: many small allocations, freed in one step. */
#ifndef HTTPD_POOL_H
#define HTTPD_POOL_H

#include <stddef.h>

struct httpd_pool;

struct httpd_pool *pool_create(size_t first_chunk);
/* Frees everything allocated since creation but keeps the first chunk. */
void pool_reset(struct httpd_pool *pool);
void pool_destroy(struct httpd_pool *pool);
void *pool_alloc(struct httpd_pool *pool, size_t size);
char *pool_strndup(struct httpd_pool *pool, const char *s, size_t len);

#endif
