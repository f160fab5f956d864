#include "http2_mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

/*
 * Under AddressSanitizer the blocks are poisoned while free and past what
 * was asked for, so a use after free or an overflow inside a chunk is
 * caught as it would be in malloc's memory.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HTTP2_MEM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HTTP2_MEM_ASAN 1
#endif
#ifdef HTTP2_MEM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CHUNK      (32 * 1024)   /* a class's mapping; chunks start on this boundary */
#define HEAD       64            /* the chunk's header, before its first block */

static const uint32_t class_size[] = {
	16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 1024, 1280, 1536,
	2048, 2560, 3072, 4096, 5120, 6144, 8192,
};
#define CLASSES (sizeof(class_size) / sizeof(class_size[0]))
#define LARGE   CLASSES          /* one block in a mapping of its own */

struct chunk {
	uint32_t      cls;
	uint32_t      used;          /* blocks handed out */
	size_t        len;           /* the mapping's length */
	char         *bump;          /* the first block never handed out */
	void         *free;          /* blocks given back */
	struct chunk *prev, *next;   /* in its class's list of chunks with room */
	bool          listed;
};

_Static_assert(sizeof(struct chunk) <= HEAD, "the chunk header fits before the first block");

static struct chunk *room[CLASSES];    /* chunks a block can come from */
static struct chunk *spare[CLASSES];   /* one emptied chunk kept per class, so a busy class does not map anew */

static struct chunk *chunk_of(const void *p)
{
	return (struct chunk *)((uintptr_t)p & ~(uintptr_t)(CHUNK - 1));
}

/* A mapping of len bytes that starts on a CHUNK boundary; NULL if none. */
static struct chunk *chunk_map(size_t len)
{
	size_t span = len + CHUNK;
	char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *start;

	if (p == MAP_FAILED)
		return NULL;
	start = (char *)(((uintptr_t)p + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
	if (start > p)
		(void)munmap(p, (size_t)(start - p));
	if (p + span > start + len)
		(void)munmap(start + len, (size_t)(p + span - (start + len)));
	return (struct chunk *)(void *)start;
}

#define CLASS_STEP  16
#define CLASS_SLOTS (8192 / CLASS_STEP + 1)   /* the largest class, in steps */

/* The class of each size rounded up to CLASS_STEP: a load per allocation, not a search. */
static uint8_t class_by_step[CLASS_SLOTS];
static bool    classes_ready;

static void classes_fill(void)
{
	size_t k = 0;

	for (size_t i = 0; i < CLASS_SLOTS; i++) {
		while (class_size[k] < i * CLASS_STEP)
			k++;
		class_by_step[i] = (uint8_t)k;
	}
	classes_ready = true;
}

static size_t class_of(size_t n)
{
	if (n > class_size[CLASSES - 1])
		return LARGE;
	if (!classes_ready)
		classes_fill();
	return class_by_step[(n + CLASS_STEP - 1) / CLASS_STEP];
}

static void room_add(struct chunk *c)
{
	c->prev = NULL;
	c->next = room[c->cls];
	if (c->next != NULL)
		c->next->prev = c;
	room[c->cls] = c;
	c->listed = true;
}

static void room_remove(struct chunk *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		room[c->cls] = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->listed = false;
}

static bool chunk_full(const struct chunk *c)
{
	return c->free == NULL && c->bump + class_size[c->cls] > (const char *)c + CHUNK;
}

void *http2_block_alloc(size_t n)
{
	size_t k = class_of(n == 0 ? 1 : n);
	struct chunk *c;
	void *p;

	if (k == LARGE) {
		size_t len = (HEAD + n + 4095) & ~(size_t)4095;

		if (n > SIZE_MAX - HEAD - 4095 || (c = chunk_map(len)) == NULL)
			return NULL;
		*c = (struct chunk){ .cls = LARGE, .used = 1, .len = len };
		POISON((char *)c + HEAD + n, len - HEAD - n);
		return (char *)c + HEAD;
	}
	c = room[k];
	if (c == NULL) {
		c = spare[k];
		spare[k] = NULL;
		if (c == NULL && (c = chunk_map(CHUNK)) == NULL)
			return NULL;
		UNPOISON(c, HEAD);
		*c = (struct chunk){ .cls = (uint32_t)k, .len = CHUNK, .bump = (char *)c + HEAD };
		POISON((char *)c + HEAD, CHUNK - HEAD);
		room_add(c);
	}
	if (c->free != NULL) {
		p = c->free;
		UNPOISON(p, sizeof(void *));
		c->free = *(void **)p;
	} else {
		p = c->bump;
		c->bump += class_size[k];
	}
	POISON(p, class_size[k]);
	UNPOISON(p, n);
	c->used++;
	if (chunk_full(c))
		room_remove(c);
	return p;
}

void http2_block_free(void *p)
{
	struct chunk *c;

	if (p == NULL)
		return;
	c = chunk_of(p);
	if (c->cls == LARGE) {
		UNPOISON(c, c->len);
		(void)munmap(c, c->len);
		return;
	}
	UNPOISON(p, sizeof(void *));
	*(void **)p = c->free;
	c->free = p;
	POISON(p, class_size[c->cls]);
	if (--c->used > 0) {
		if (!c->listed)
			room_add(c);
		return;
	}
	if (c->listed)
		room_remove(c);
	if (spare[c->cls] == NULL) {
		spare[c->cls] = c;   /* its pages stay: the next block of this size needs no mapping, no fault */
	} else {
		UNPOISON(c, CHUNK);
		(void)munmap(c, CHUNK);
	}
}

size_t http2_block_size(const void *p)
{
	const struct chunk *c = chunk_of(p);

	return c->cls == LARGE ? c->len - HEAD : class_size[c->cls];
}

void *http2_block_realloc(void *p, size_t n)
{
	size_t have;
	void *q;

	if (p == NULL)
		return http2_block_alloc(n);
	have = http2_block_size(p);
	UNPOISON(p, have);   /* what was asked for is not known here: the whole block is copied */
	if (n <= have) {
		POISON(p, have);
		UNPOISON(p, n);
		return p;
	}
	q = http2_block_alloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, have);
	http2_block_free(p);
	return q;
}
