/* The proxy cache's shared index: lookups, LRU eviction by entries and bytes, inactivity, claims,
 * sharing across processes, and surviving a scribbler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache_index.h"
#include "tap.h"

static struct cache_index_info info(int n, uint64_t size, int64_t now)
{
	struct cache_index_info i = { .size = size, .last_use = now };

	memset(i.hash, 0, 32);
	i.hash[0] = (uint8_t)n;
	i.hash[1] = (uint8_t)(n >> 8);
	i.hash[31] = 0xaa;
	return i;
}

START_TEST(test_insert_lookup_remove)
{
	struct cache_index *idx = cache_index_create(8, 1000);
	struct cache_index_info a = info(1, 100, 10), got;
	uint8_t evicted[8][32];
	size_t n;

	ck_assert_ptr_nonnull(idx);
	ck_assert_int_eq(cache_index_lookup(idx, a.hash, 11, &got), 0);
	ck_assert_int_eq(cache_index_insert(idx, &a, evicted, 8, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(cache_index_lookup(idx, a.hash, 12, &got), 1);
	ck_assert_uint_eq(got.size, 100);
	ck_assert_int_eq(got.last_use, 12);
	ck_assert_uint_eq(cache_index_count(idx), 1);
	ck_assert_uint_eq(cache_index_bytes(idx), 100);
	/* replacing keeps one entry, with the new size and version (what tells a worker its copy is old) */
	a.size = 300;
	a.version = 77;
	ck_assert_int_eq(cache_index_insert(idx, &a, evicted, 8, &n), 0);
	ck_assert_uint_eq(cache_index_count(idx), 1);
	ck_assert_int_eq(cache_index_lookup(idx, a.hash, 13, &got), 1);
	ck_assert_uint_eq(got.version, 77);
	ck_assert_uint_eq(cache_index_bytes(idx), 300);
	ck_assert_int_eq(cache_index_contains(idx, a.hash), 1);
	ck_assert_int_eq(cache_index_remove(idx, a.hash), 1);
	ck_assert_int_eq(cache_index_remove(idx, a.hash), 0);
	ck_assert_int_eq(cache_index_contains(idx, a.hash), 0);
	ck_assert_uint_eq(cache_index_count(idx), 0);
	ck_assert_uint_eq(cache_index_bytes(idx), 0);
	/* more than the index may hold is refused */
	a.size = 1001;
	ck_assert_int_eq(cache_index_insert(idx, &a, evicted, 8, &n), -1);
	cache_index_destroy(idx);
}
END_TEST

START_TEST(test_lru_eviction)
{
	struct cache_index *idx = cache_index_create(4, 1000);
	struct cache_index_info got, e;
	uint8_t evicted[8][32];
	size_t n;

	for (int k = 0; k < 4; k++) {
		e = info(k, 10, k);
		ck_assert_int_eq(cache_index_insert(idx, &e, evicted, 8, &n), 0);
	}
	/* a use makes entry 0 the most recent: 1 is the oldest now */
	e = info(0, 10, 0);
	ck_assert_int_eq(cache_index_lookup(idx, e.hash, 50, &got), 1);
	e = info(4, 10, 51);
	ck_assert_int_eq(cache_index_insert(idx, &e, evicted, 8, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(evicted[0][0], 1);
	ck_assert_uint_eq(cache_index_count(idx), 4);
	/* by bytes: a big one pushes out the oldest until it fits */
	e = info(5, 975, 52);
	ck_assert_int_eq(cache_index_insert(idx, &e, evicted, 8, &n), 0);
	ck_assert_uint_eq(n, 2);                                   /* 40 + 975 > 1000: 20 bytes had to go */
	ck_assert_int_eq(evicted[0][0], 2);
	ck_assert_int_eq(evicted[1][0], 3);
	ck_assert_uint_eq(cache_index_bytes(idx), 995);
	ck_assert_uint_eq(cache_index_count(idx), 3);
	/* inactivity: what was not used after 51 goes, the least recent first */
	ck_assert_uint_eq(cache_index_expire(idx, 100, 49, evicted, 8), 2);
	ck_assert_int_eq(evicted[0][0], 0);
	ck_assert_int_eq(evicted[1][0], 4);
	ck_assert_uint_eq(cache_index_count(idx), 1);
	ck_assert_uint_eq(cache_index_bytes(idx), 975);
	cache_index_destroy(idx);
}
END_TEST

START_TEST(test_many_entries_and_buckets)
{
	struct cache_index *idx = cache_index_create(1000, 1u << 30);
	struct cache_index_info e, got;
	uint8_t evicted[4][32];
	size_t n;

	for (int k = 0; k < 3000; k++) {
		e = info(k, 1, k);
		ck_assert_int_eq(cache_index_insert(idx, &e, evicted, 4, &n), 0);
	}
	ck_assert_uint_eq(cache_index_count(idx), 1000);
	for (int k = 0; k < 3000; k++) {
		e = info(k, 1, k);
		ck_assert_int_eq(cache_index_lookup(idx, e.hash, 5000, &got), k >= 2000 ? 1 : 0);
	}
	cache_index_destroy(idx);
}
END_TEST

START_TEST(test_claims)
{
	struct cache_index *idx = cache_index_create(8, 1000);
	struct cache_index_info a = info(1, 1, 0), b = info(2, 1, 0);

	ck_assert_int_eq(cache_index_claim(idx, a.hash, 100, 10, 5), 1);
	ck_assert_int_eq(cache_index_claim(idx, a.hash, 200, 11, 5), 0);    /* another worker waits */
	ck_assert_int_eq(cache_index_claim(idx, b.hash, 200, 11, 5), 1);    /* another key does not */
	ck_assert_int_eq(cache_index_claim(idx, a.hash, 200, 16, 5), 1);    /* the first one's hold ran out */
	cache_index_release(idx, a.hash, 100);                               /* not its claim any more */
	ck_assert_int_eq(cache_index_claim(idx, a.hash, 300, 17, 5), 0);
	cache_index_release(idx, a.hash, 200);
	ck_assert_int_eq(cache_index_claim(idx, a.hash, 300, 17, 5), 1);
	cache_index_destroy(idx);
}
END_TEST

START_TEST(test_shared_across_processes)
{
	struct cache_index *idx = cache_index_create(64, 1u << 20);
	struct cache_index_info got;
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint8_t evicted[4][32];
		size_t n;

		for (int k = 0; k < 10; k++) {
			struct cache_index_info e = info(k, 100, 1);

			if (cache_index_insert(idx, &e, evicted, 4, &n) != 0)
				_exit(1);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int k = 0; k < 10; k++) {
		struct cache_index_info e = info(k, 100, 1);

		ck_assert_int_eq(cache_index_lookup(idx, e.hash, 2, &got), 1);
	}
	ck_assert_uint_eq(cache_index_bytes(idx), 1000);
	cache_index_destroy(idx);
}
END_TEST

static size_t mapping_size(const void *start)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	size_t size = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo == (unsigned long)start)
			size = hi - lo;
	}
	if (f != NULL)
		fclose(f);
	return size;
}

/* The index's own memory, found as the mapping that holds its counters: scribbled over, it must not crash. */
START_TEST(test_a_scribbled_index_is_emptied_not_followed)
{
	for (int pattern = 0; pattern < 3; pattern++) {
		struct cache_index *idx = cache_index_create(32, 1u << 20);
		struct cache_index_info e, got;
		uint8_t evicted[40][32];
		size_t n, size;
		unsigned char *base;

		for (int k = 0; k < 20; k++) {
			e = info(k, 10, k);
			ck_assert_int_eq(cache_index_insert(idx, &e, evicted, 40, &n), 0);
		}
		/* struct cache_index's first field is the mapping; /proc/self/maps says how long it is */
		base = *(unsigned char **)(void *)idx;
		size = mapping_size(base);
		ck_assert_uint_gt(size, 4096);
		/* all of it past the lock: counters, claims, buckets and slots */
		for (size_t off = 64; off < size; off++)
			base[off] = pattern == 0 ? 0xff : pattern == 1 ? (unsigned char)(off * 7) : 0x00;
		for (int k = 0; k < 40; k++) {
			e = info(k, 10, 100 + k);
			(void)cache_index_lookup(idx, e.hash, 100 + k, &got);
			(void)cache_index_insert(idx, &e, evicted, 40, &n);
			(void)cache_index_remove(idx, info(k / 2, 10, 0).hash);
		}
		(void)cache_index_expire(idx, 1000, 10, evicted, 40);
		/* still an index: what goes in comes out */
		e = info(999, 10, 2000);
		ck_assert_int_eq(cache_index_insert(idx, &e, evicted, 40, &n), 0);
		ck_assert_int_eq(cache_index_lookup(idx, e.hash, 2001, &got), 1);
		cache_index_destroy(idx);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_index");
	TCase *tc = tcase_create("cache_index");

	tcase_add_test(tc, test_insert_lookup_remove);
	tcase_add_test(tc, test_lru_eviction);
	tcase_add_test(tc, test_many_entries_and_buckets);
	tcase_add_test(tc, test_claims);
	tcase_add_test(tc, test_shared_across_processes);
	tcase_add_test(tc, test_a_scribbled_index_is_emptied_not_followed);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
