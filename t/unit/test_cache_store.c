/* The proxy cache's files: unnamed until whole, replaced in one step, and rebuilt into the index at start,
 * what is damaged removed, what is not ours left alone. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_entry.h"
#include "cache_store.h"
#include "tap.h"

static char dir[] = "/tmp/test_cache_store_XXXXXX";

static void hash_of(int n, uint8_t hash[32])
{
	for (int i = 0; i < 32; i++)
		hash[i] = (uint8_t)(n * 37 + i);
}

/* A stored response of n: a head and body_len bytes of body, committed under its hash. */
static void store(int dirfd, int n, size_t body_len)
{
	struct cache_field fields[] = { { "Content-Type", "text/plain", 12, 10 } };
	struct cache_entry_meta m = { .status = 200, .key = "k", .key_len = 1, .vary = "", .vary_len = 0,
	                              .fields = fields, .field_count = 1, .body_len = body_len };
	uint8_t head[512];
	char *body = malloc(body_len + 1);
	size_t len;
	int fd = cache_store_begin(dirfd);

	ck_assert_int_ge(fd, 0);
	hash_of(n, m.hash);
	len = cache_meta_write(&m, head, sizeof(head));
	ck_assert_uint_gt(len, 0);
	memset(body, 'b', body_len);
	ck_assert_int_eq(write(fd, head, len), (ssize_t)len);
	ck_assert_int_eq(write(fd, body, body_len), (ssize_t)body_len);
	ck_assert_int_eq(cache_store_commit(dirfd, fd, m.hash), 0);
	close(fd);
	free(body);
}

START_TEST(test_names)
{
	uint8_t hash[32];
	char name[CACHE_FILE_NAME_MAX];

	memset(hash, 0, 32);
	hash[0] = 0xab;
	hash[31] = 0x0f;
	cache_file_name(hash, name);
	ck_assert_uint_eq(strlen(name), 67);
	ck_assert(strncmp(name, "ab/ab00", 7) == 0);
	ck_assert_str_eq(name + 65, "0f");
}
END_TEST

START_TEST(test_write_read_replace_remove_and_scan)
{
	int dirfd = cache_store_open(dir), fd;
	uint8_t hash[32];
	char name[CACHE_FILE_NAME_MAX], path[256];
	struct cache_index *idx;
	struct cache_index_info info;
	size_t kept, removed;
	struct stat st;

	ck_assert_int_ge(dirfd, 0);
	store(dirfd, 1, 100);
	store(dirfd, 2, 5000);
	store(dirfd, 2, 50);                       /* replaced in one step */
	hash_of(2, hash);
	fd = cache_store_read(dirfd, hash);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_lt(st.st_size, 1000);
	close(fd);
	hash_of(3, hash);
	ck_assert_int_eq(cache_store_read(dirfd, hash), -1);
	/* damage: a truncated entry, a leftover of a writer that died, a file with another name's hash */
	store(dirfd, 4, 100);
	hash_of(4, hash);
	cache_file_name(hash, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(truncate(path, 120), 0);
	snprintf(path, sizeof(path), "%s/%.2s/.new-1-%s", dir, name, name + 3);
	fclose(fopen(path, "w"));
	{
		/* an unfinished file published for waiters, its writer gone: removed too */
		int part = cache_store_begin(dirfd);

		ck_assert_int_ge(part, 0);
		ck_assert_int_eq(cache_store_publish(dirfd, part, hash), 0);
		close(part);
		part = cache_store_begin(dirfd);                                  /* a later fetch of the same key */
		ck_assert_int_ge(part, 0);
		ck_assert_int_eq(cache_store_publish(dirfd, part, hash), 0);     /* the dead fetch's name is replaced */
		close(part);
		part = cache_store_read_partial(dirfd, hash);
		ck_assert_int_ge(part, 0);
		close(part);
	}
	store(dirfd, 5, 10);
	hash_of(5, hash);
	cache_file_name(hash, name);
	{
		char moved[256], to[256];
		uint8_t other[32];
		char other_name[CACHE_FILE_NAME_MAX];

		hash_of(6, other);
		cache_file_name(other, other_name);
		snprintf(to, sizeof(to), "%s/%.2s", dir, other_name);
		mkdir(to, 0700);
		snprintf(moved, sizeof(moved), "%s/%s", dir, name);
		snprintf(to, sizeof(to), "%s/%s", dir, other_name);
		ck_assert_int_eq(rename(moved, to), 0);
	}
	/* not ours: left alone wherever it is */
	snprintf(path, sizeof(path), "%s/%.2s/README", dir, name);
	fclose(fopen(path, "w"));
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	fclose(fopen(path, "w"));
	idx = cache_index_create(100, 1u << 20);
	ck_assert_ptr_nonnull(idx);
	ck_assert_int_eq(cache_store_scan(dirfd, idx, 1000, &kept, &removed), 0);
	ck_assert_uint_eq(kept, 2);                /* 1 and 2 */
	ck_assert_uint_eq(removed, 4);             /* the truncated one, the leftovers, the misnamed one */
	hash_of(1, hash);
	ck_assert_int_eq(cache_index_lookup(idx, hash, 1001, &info), 1);
	ck_assert_uint_gt(info.size, 100);
	hash_of(4, hash);
	ck_assert_int_eq(cache_index_lookup(idx, hash, 1001, &info), 0);
	snprintf(path, sizeof(path), "%s/%.2s/README", dir, name);
	ck_assert_int_eq(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	/* remove */
	hash_of(1, hash);
	ck_assert_int_eq(cache_store_remove(dirfd, hash), 0);
	ck_assert_int_eq(cache_store_read(dirfd, hash), -1);
	/* a store too small for what is on disk keeps what fits and removes the rest */
	cache_index_destroy(idx);
	idx = cache_index_create(100, 200);
	store(dirfd, 7, 150);
	ck_assert_int_eq(cache_store_scan(dirfd, idx, 2000, &kept, &removed), 0);
	ck_assert_uint_le(cache_index_bytes(idx), 200);
	cache_index_destroy(idx);
	close(dirfd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_store");
	TCase *tc = tcase_create("cache_store");
	int rc;

	if (mkdtemp(dir) == NULL)
		return 1;
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_write_read_replace_remove_and_scan);
	suite_add_tcase(s, tc);
	rc = tap_run(s);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			rc = 1;
	}
	return rc;
}
