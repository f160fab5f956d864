#include "pool.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/module.h"

struct pool_chunk {
	struct pool_chunk *next;
	size_t             size;
	size_t             used;
	max_align_t        data[];
};

struct pool_cleanup {
	void               (*fn)(void *arg);
	void                *arg;
	struct pool_cleanup *next;
};

struct httpd_pool {
	struct pool_chunk   *head;     /* newest chunk, allocations come from it */
	struct pool_chunk   *first;    /* kept across resets */
	struct pool_cleanup *cleanups; /* run, newest first, before memory is freed */
};

static struct pool_chunk *chunk_new(size_t size)
{
	struct pool_chunk *chunk = malloc(sizeof(*chunk) + size);

	if (chunk == NULL)
		return NULL;
	chunk->next = NULL;
	chunk->size = size;
	chunk->used = 0;
	return chunk;
}

struct httpd_pool *pool_create(size_t first_chunk)
{
	struct httpd_pool *pool = malloc(sizeof(*pool));

	if (pool == NULL)
		return NULL;
	pool->first = chunk_new(first_chunk);
	if (pool->first == NULL) {
		free(pool);
		return NULL;
	}
	pool->head = pool->first;
	pool->cleanups = NULL;
	return pool;
}

static void cleanups_run(struct httpd_pool *pool)
{
	while (pool->cleanups != NULL) {
		struct pool_cleanup *c = pool->cleanups;

		pool->cleanups = c->next;
		c->fn(c->arg);
	}
}

int httpd_pool_cleanup(struct httpd_pool *pool, void (*fn)(void *arg), void *arg)
{
	struct pool_cleanup *c = pool_alloc(pool, sizeof(*c));

	if (c == NULL)
		return -1;
	c->fn = fn;
	c->arg = arg;
	c->next = pool->cleanups;
	pool->cleanups = c;
	return 0;
}

static void chunks_free_until(struct pool_chunk *chunk, struct pool_chunk *stop)
{
	while (chunk != NULL && chunk != stop) {
		struct pool_chunk *next = chunk->next;
		free(chunk);
		chunk = next;
	}
}

void pool_reset(struct httpd_pool *pool)
{
	cleanups_run(pool);
	chunks_free_until(pool->head, pool->first);
	pool->head = pool->first;
	pool->first->used = 0;
}

void pool_destroy(struct httpd_pool *pool)
{
	if (pool == NULL)
		return;
	cleanups_run(pool);
	chunks_free_until(pool->head, NULL);
	free(pool);
}

void *pool_alloc(struct httpd_pool *pool, size_t size)
{
	const size_t align = _Alignof(max_align_t);
	struct pool_chunk *chunk = pool->head;
	size_t need, start;

	if (size > SIZE_MAX / 2)
		return NULL;
	need = (size + align - 1) & ~(align - 1);
	start = chunk->used;
	if (need > chunk->size - start) {
		size_t chunk_size = pool->first->size;

		if (chunk_size < need)
			chunk_size = need;
		chunk = chunk_new(chunk_size);
		if (chunk == NULL)
			return NULL;
		chunk->next = pool->head;
		pool->head = chunk;
		start = 0;
	}
	chunk->used = start + need;
	return (char *)chunk->data + start;
}

char *pool_strndup(struct httpd_pool *pool, const char *s, size_t len)
{
	char *copy = pool_alloc(pool, len + 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

struct httpd_pool *httpd_pool_new(void)
{
	return pool_create(4096);
}

void httpd_pool_free(struct httpd_pool *pool)
{
	pool_destroy(pool);
}

void *httpd_pool_alloc(struct httpd_pool *pool, size_t size)
{
	return pool_alloc(pool, size);
}

char *httpd_pool_strdup(struct httpd_pool *pool, const char *s)
{
	return pool_strndup(pool, s, strlen(s));
}

char *httpd_pool_printf(struct httpd_pool *pool, const char *fmt, ...)
{
	va_list ap;
	int len;
	char *out;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		return NULL;
	out = pool_alloc(pool, (size_t)len + 1);
	if (out == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(out, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return out;
}
