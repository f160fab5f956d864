#include "http2_mem.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define CLASS_BYTES 16
#define CLASSES     64             /* blocks up to 1 KiB are kept */
#define KEEP_MAX    (256 * 1024)   /* bytes kept on the lists at most */

static void  *free_list[CLASSES + 1];
static size_t kept;

/* Size classes are whole multiples of CLASS_BYTES: a block made for class k holds k * CLASS_BYTES at least. */
void *http2_block_alloc(size_t n)
{
	size_t k = n == 0 ? 1 : (n + CLASS_BYTES - 1) / CLASS_BYTES;
	void *p;

	if (k > CLASSES)
		return malloc(n);
	p = free_list[k];
	if (p == NULL)
		return malloc(k * CLASS_BYTES);
	free_list[k] = *(void **)p;
	kept -= k * CLASS_BYTES;
	return p;
}

void http2_block_free(void *p)
{
	size_t k;

	if (p == NULL)
		return;
	/* A block goes to the largest class it can hold: malloc's own size says which. */
	k = malloc_usable_size(p) / CLASS_BYTES;
	if (k == 0 || k > CLASSES || kept + k * CLASS_BYTES > KEEP_MAX) {
		free(p);
		return;
	}
	*(void **)p = free_list[k];
	free_list[k] = p;
	kept += k * CLASS_BYTES;
}

void *http2_block_realloc(void *p, size_t n)
{
	size_t have;
	void *q;

	if (p == NULL)
		return http2_block_alloc(n);
	have = malloc_usable_size(p);
	if (n <= have)
		return p;
	q = http2_block_alloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, have);
	http2_block_free(p);
	return q;
}
