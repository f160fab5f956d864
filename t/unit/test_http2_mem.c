/* libnghttp2's memory apart from the heap: blocks by size class in mappings of their own, given back when empty. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "http2_mem.h"
#include "tap.h"

/* Whether the page at p is mapped: mincore says ENOMEM of an address nothing maps. */
static bool mapped(const void *p)
{
	unsigned char vec;

	return mincore((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, &vec) == 0;
}

START_TEST(test_blocks_hold_what_was_asked_and_keep_it)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 100, 256, 257, 1000, 2900, 4096, 8192, 8193, 40000 };
	unsigned char *blocks[sizeof(sizes) / sizeof(sizes[0])];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		blocks[i] = http2_block_alloc(sizes[i]);
		ck_assert_ptr_nonnull(blocks[i]);
		ck_assert_uint_ge(http2_block_size(blocks[i]), sizes[i]);
		ck_assert_uint_eq((uintptr_t)blocks[i] % 16, 0);   /* aligned as malloc's are */
		memset(blocks[i], (int)i + 1, sizes[i]);
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (size_t j = 0; j < sizes[i]; j++)
			ck_assert_uint_eq(blocks[i][j], i + 1);   /* no block overlaps another */
		http2_block_free(blocks[i]);
	}
	http2_block_free(NULL);
}
END_TEST

START_TEST(test_realloc_keeps_the_bytes)
{
	unsigned char *p = http2_block_alloc(10), *q;

	memcpy(p, "0123456789", 10);
	q = http2_block_realloc(p, 12);   /* fits its class: the same block */
	ck_assert_ptr_eq(q, p);
	q = http2_block_realloc(q, 3000);
	ck_assert_mem_eq(q, "0123456789", 10);
	memset(q + 10, 'x', 2990);
	q = http2_block_realloc(q, 50000);   /* past the classes: a mapping of its own */
	ck_assert_mem_eq(q, "0123456789", 10);
	ck_assert_uint_eq(q[2999], 'x');
	http2_block_free(q);
	p = http2_block_realloc(NULL, 40);
	ck_assert_ptr_nonnull(p);
	http2_block_free(p);
}
END_TEST

START_TEST(test_freed_blocks_are_reused_and_empty_chunks_unmapped)
{
	enum { N = 4000 };   /* 2900 B each: hundreds of chunks */
	static void *many[N];
	void *first, *again;
	int still = 0;

	first = http2_block_alloc(200);
	http2_block_free(first);
	again = http2_block_alloc(200);
	ck_assert_ptr_eq(again, first);   /* a freed block is the next one given */
	http2_block_free(again);

	for (int i = 0; i < N; i++) {
		many[i] = http2_block_alloc(2900);
		ck_assert_ptr_nonnull(many[i]);
		memset(many[i], 0xa5, 2900);
	}
	for (int i = 0; i < N; i++)
		http2_block_free(many[i]);
	/* every chunk went back to the kernel but the one spare its class keeps */
	for (int i = 0; i < N; i++)
		still += mapped(many[i]);
	ck_assert_int_le(still, 32768 / 2944 + 1);   /* at most one chunk's blocks */
	ck_assert(!mapped(many[N - 1]) || !mapped(many[0]));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http2_mem");
	TCase *tc = tcase_create("http2_mem");

	tcase_add_test(tc, test_blocks_hold_what_was_asked_and_keep_it);
	tcase_add_test(tc, test_realloc_keeps_the_bytes);
	tcase_add_test(tc, test_freed_blocks_are_reused_and_empty_chunks_unmapped);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
