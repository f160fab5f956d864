/* The proxy cache's files: see cache_store.h. */
#include "cache_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_entry.h"

#define EVICT_BATCH 64

static const char hex[] = "0123456789abcdef";

void cache_file_name(const uint8_t hash[32], char out[CACHE_FILE_NAME_MAX])
{
	out[0] = hex[hash[0] >> 4];
	out[1] = hex[hash[0] & 15];
	out[2] = '/';
	for (int i = 0; i < 32; i++) {
		out[3 + 2 * i] = hex[hash[i] >> 4];
		out[4 + 2 * i] = hex[hash[i] & 15];
	}
	out[67] = '\0';
}

/* The hash a file name spells (64 lower-case hex digits), false for any other name. */
static bool name_hash(const char *name, uint8_t hash[32])
{
	for (int i = 0; i < 64; i++) {
		const char *d = name[i] != '\0' ? strchr(hex, name[i]) : NULL;

		if (d == NULL)
			return false;
		if (i % 2 == 0)
			hash[i / 2] = (uint8_t)((d - hex) << 4);
		else
			hash[i / 2] |= (uint8_t)(d - hex);
	}
	return name[64] == '\0';
}

int cache_store_open(const char *path)
{
	return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int cache_store_begin(int dirfd)
{
	return openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

int cache_store_commit(int dirfd, int fd, const uint8_t hash[32])
{
	char name[CACHE_FILE_NAME_MAX], proc[64], temp[CACHE_FILE_NAME_MAX + 32];

	cache_file_name(hash, name);
	name[2] = '\0';
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return -1;
	name[2] = '/';
	/* A name of its own first (linkat will not replace), then over the old one in one step. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(temp, sizeof(temp), "%.2s/.new-%ld-%.64s", name, (long)getpid(), name + 3);
	(void)unlinkat(dirfd, temp, 0);
	if (linkat(AT_FDCWD, proc, dirfd, temp, AT_SYMLINK_FOLLOW) < 0)
		return -1;
	if (renameat(dirfd, temp, dirfd, name) < 0) {
		int err = errno;

		(void)unlinkat(dirfd, temp, 0);
		errno = err;
		return -1;
	}
	return 0;
}

/* "ab/.part-abcd...": where an unfinished file of hash can be opened by requests waiting for it. */
static void part_name(const uint8_t hash[32], char out[CACHE_FILE_NAME_MAX + 8])
{
	char name[CACHE_FILE_NAME_MAX];

	cache_file_name(hash, name);
	snprintf(out, CACHE_FILE_NAME_MAX + 8, "%.2s/.part-%.64s", name, name + 3);
}

int cache_store_publish(int dirfd, int fd, const uint8_t hash[32])
{
	char name[CACHE_FILE_NAME_MAX + 8], proc[64];

	part_name(hash, name);
	name[2] = '\0';
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return -1;
	name[2] = '/';
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	/* The caller holds the key's claim: a name already there is a dead or timed-out fetch's. */
	(void)unlinkat(dirfd, name, 0);
	return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW);
}

void cache_store_unpublish(int dirfd, const uint8_t hash[32])
{
	char name[CACHE_FILE_NAME_MAX + 8];

	part_name(hash, name);
	(void)unlinkat(dirfd, name, 0);
}

int cache_store_read_partial(int dirfd, const uint8_t hash[32])
{
	char name[CACHE_FILE_NAME_MAX + 8];

	part_name(hash, name);
	return openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

int cache_store_read(int dirfd, const uint8_t hash[32])
{
	char name[CACHE_FILE_NAME_MAX];

	cache_file_name(hash, name);
	return openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

int cache_store_remove(int dirfd, const uint8_t hash[32])
{
	char name[CACHE_FILE_NAME_MAX];

	cache_file_name(hash, name);
	return unlinkat(dirfd, name, 0);
}

/* Is the file of this name, open as fd, a whole stored response of that hash? */
static bool entry_whole(int fd, const uint8_t hash[32], uint64_t *size)
{
	static struct cache_field fields[CACHE_ENTRY_FIELDS_MAX];
	struct cache_entry_meta m;
	struct stat st;
	uint8_t *buf;
	size_t want, head;
	ssize_t got;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	want = (uint64_t)st.st_size < CACHE_ENTRY_HEAD_MAX ? (size_t)st.st_size : CACHE_ENTRY_HEAD_MAX;
	buf = malloc(want ? want : 1);
	if (buf == NULL)
		return false;
	got = pread(fd, buf, want, 0);
	head = got == (ssize_t)want ? cache_meta_parse(buf, want, &m, fields, CACHE_ENTRY_FIELDS_MAX) : 0;
	free(buf);
	if (head == 0 || memcmp(m.hash, hash, 32) != 0 || m.body_len > (uint64_t)st.st_size ||
	    (uint64_t)st.st_size - m.body_len != head)
		return false;
	*size = (uint64_t)st.st_size;
	return true;
}

/* One "ab" directory: its whole entries into idx, the rest of ours removed. */
static void scan_dir(int dirfd, const char *sub, struct cache_index *idx, int64_t now, size_t *kept,
                     size_t *removed)
{
	int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		uint8_t hash[32], evicted[EVICT_BATCH][32];
		struct cache_index_info info = { .last_use = now };
		uint64_t size = 0;
		size_t n = 0;
		int file;

		if (strncmp(e->d_name, ".new-", 5) == 0 || strncmp(e->d_name, ".part-", 6) == 0) {
			/* A writer died between its link and its rename, or while its file was filling. */
			if (unlinkat(fd, e->d_name, 0) == 0)
				(*removed)++;
			continue;
		}
		/* Only names the store makes are ever removed: a wrong path must not cost anyone a file. */
		if (!name_hash(e->d_name, hash) || e->d_name[0] != sub[0] || e->d_name[1] != sub[1])
			continue;
		file = openat(fd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (file >= 0 && entry_whole(file, hash, &size)) {
			memcpy(info.hash, hash, 32);
			info.size = size;
			if (cache_index_insert(idx, &info, evicted, EVICT_BATCH, &n) == 0) {
				(*kept)++;
				for (size_t k = 0; k < n; k++)
					if (cache_store_remove(dirfd, evicted[k]) == 0)
						(*removed)++;
				close(file);
				continue;
			}
		}
		if (file >= 0)
			close(file);
		if (unlinkat(fd, e->d_name, 0) == 0)
			(*removed)++;
	}
	closedir(d);
}

int cache_store_scan(int dirfd, struct cache_index *idx, int64_t now, size_t *kept, size_t *removed)
{
	int probe = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*kept = *removed = 0;
	if (probe < 0)
		return -1;
	close(probe);
	for (int i = 0; i < 256; i++) {
		char sub[3] = { hex[i >> 4], hex[i & 15], '\0' };

		scan_dir(dirfd, sub, idx, now, kept, removed);
	}
	return 0;
}
