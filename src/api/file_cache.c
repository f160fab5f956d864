#include "file_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "request.h"
#include "siphash.h"
#include "worker.h"

/* Compressed copies kept per file: a coding at two levels, for each of the three codings. */
#define FILE_MEMOS 6

struct httpd_file {
	int                dirfd;
	char              *rel;         /* normalised, no leading '/' */
	uint32_t           hash;
	int                fd;          /* -1 for a cached failure */
	int                err;         /* errno of that failure */
	struct stat        st;
	char              *content;     /* whole file, for small regular files */
	char               etag[64];
	char               last_modified[HTTPD_DATE_LEN];
	/* A 200's representation fields, formatted on first use for the type it was served as. */
	char              *fields;      /* the text, then the type, each value NUL-terminated in names */
	size_t             fields_len;
	char              *fields_type;
	struct response_header field_list[4];
	/* Its content compressed (compress): made by the first response that wanted each, never replaced. */
	struct file_memo {
		int    coding, level;
		char  *data;
		size_t len;
	}                  memos[FILE_MEMOS];
	size_t             memo_count;
	uint64_t           validated_ms;
	unsigned           refs;        /* requests using it, plus one while in the table */
	bool               cached;
	struct httpd_file *hash_next;
	struct httpd_file *lru_prev, *lru_next;   /* most recently used first */
};

static struct {
	struct httpd_file **buckets;
	size_t              bucket_count;   /* power of two */
	size_t              entries, max_entries;
	uint64_t            bytes, max_bytes;
	uint64_t            valid_ms;
	struct httpd_file   lru;            /* sentinel */
	struct siphash_key  key;
	bool                on;
	bool                errors;         /* file_cache_errors: failures are cached too */
} cache;

void file_cache_init(const struct httpd_config *config)
{
	size_t n = 16;

	memset(&cache, 0, sizeof(cache));
	cache.lru.lru_prev = cache.lru.lru_next = &cache.lru;
	siphash_key_random(&cache.key);
	cache.errors = config->file_cache_errors;
	if (config->file_cache_valid_ms == 0 || config->file_cache_entries == 0)
		return;
	while (n < config->file_cache_entries * 2)
		n *= 2;
	cache.buckets = calloc(n, sizeof(*cache.buckets));
	if (cache.buckets == NULL) {
		httpd_log(HTTPD_LOG_ERR, "open-file cache: out of memory; serving without it");
		return;
	}
	cache.bucket_count = n;
	cache.max_entries = config->file_cache_entries;
	cache.max_bytes = config->file_cache_size;
	cache.valid_ms = config->file_cache_valid_ms;
	cache.on = true;
}

static void file_free(struct httpd_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->content);
	for (size_t i = 0; i < f->memo_count; i++)
		free(f->memos[i].data);
	free(f->fields);
	free(f->rel);
	free(f);
}

static void file_release(void *arg)
{
	struct httpd_file *f = arg;

	if (--f->refs == 0)
		file_free(f);
}

static void lru_unlink(struct httpd_file *f)
{
	f->lru_prev->lru_next = f->lru_next;
	f->lru_next->lru_prev = f->lru_prev;
}

static void lru_push_front(struct httpd_file *f)
{
	f->lru_next = cache.lru.lru_next;
	f->lru_prev = &cache.lru;
	cache.lru.lru_next->lru_prev = f;
	cache.lru.lru_next = f;
}

/* Takes f out of the table; it lives on while requests still hold it. */
static void cache_remove(struct httpd_file *f)
{
	struct httpd_file **link = &cache.buckets[f->hash & (cache.bucket_count - 1)];

	while (*link != f)
		link = &(*link)->hash_next;
	*link = f->hash_next;
	lru_unlink(f);
	f->cached = false;
	cache.entries--;
	cache.bytes -= f->content != NULL ? (uint64_t)f->st.st_size : 0;
	for (size_t i = 0; i < f->memo_count; i++)
		cache.bytes -= f->memos[i].len;
	file_release(f);
}

void file_cache_destroy(void)
{
	while (cache.lru.lru_next != &cache.lru && cache.lru.lru_next != NULL)
		cache_remove(cache.lru.lru_next);
	free(cache.buckets);
	cache.buckets = NULL;
	cache.on = false;
}

/* Keyed with a secret of this worker's start: clients cannot aim many paths at one bucket. */
static uint32_t key_hash(int dirfd, const char *rel)
{
	struct siphash_key k = { cache.key.k0 ^ (uint64_t)(unsigned)dirfd, cache.key.k1 };

	return (uint32_t)siphash13(&k, rel, strlen(rel));
}

/* The same file as when it was opened: identity, size and both times to the nanosecond. */
static bool stat_same(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mode == b->st_mode && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * Is f still what the path names?  One stat, at most once per
 * file_cache_valid.  The stat only decides whether to reopen: what is
 * served always comes from a descriptor opened with RESOLVE_BENEATH.
 */
static bool still_valid(struct httpd_file *f, uint64_t now_ms)
{
	struct stat st;

	if (now_ms - f->validated_ms < cache.valid_ms)
		return true;
	if (fstatat(f->dirfd, f->rel[0] ? f->rel : ".", &st, 0) < 0) {
		if (f->fd >= 0 || (errno != ENOENT && errno != ENOTDIR))
			return false;
	} else if (f->fd < 0 || !stat_same(&st, &f->st)) {
		return false;
	}
	f->validated_ms = now_ms;
	return true;
}

static int content_read(struct httpd_file *f)
{
	size_t size = (size_t)f->st.st_size, done = 0;

	f->content = malloc(size ? size : 1);
	if (f->content == NULL)
		return -1;
	while (done < size) {
		ssize_t n = pread(f->fd, f->content + done, size - done, (off_t)done);

		if (n <= 0) {
			free(f->content);
			f->content = NULL;
			return -1;   /* changed under us: serve it from the descriptor */
		}
		done += (size_t)n;
	}
	return 0;
}

/* Opens rel for real; NULL with errno only when even a failure entry cannot be made. */
static struct httpd_file *file_load(int dirfd, const char *rel, uint32_t hash, uint64_t now_ms)
{
	struct httpd_file *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->rel = strdup(rel)) == NULL) {
		free(f);
		errno = ENOMEM;
		return NULL;
	}
	f->dirfd = dirfd;
	f->hash = hash;
	f->validated_ms = now_ms;
	f->fd = httpd_open_beneath(dirfd, rel, O_RDONLY | O_NONBLOCK);
	if (f->fd < 0 || fstat(f->fd, &f->st) < 0) {
		f->err = errno;
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		return f;
	}
	snprintf(f->etag, sizeof(f->etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)f->st.st_ino,
	         (uint64_t)f->st.st_size,
	         (uint64_t)f->st.st_mtim.tv_sec * 1000000000u + (uint64_t)f->st.st_mtim.tv_nsec);
	httpd_http_date(f->st.st_mtime, f->last_modified);
	if (S_ISREG(f->st.st_mode) && f->st.st_size <= RESPONSE_SMALL_FILE && cache.on &&
	    (uint64_t)f->st.st_size <= cache.max_bytes)
		(void)content_read(f);
	return f;
}

static void cache_insert(struct httpd_file *f)
{
	struct httpd_file **bucket = &cache.buckets[f->hash & (cache.bucket_count - 1)];
	uint64_t size = f->content != NULL ? (uint64_t)f->st.st_size : 0;

	/* Only what can be answered the same way for a second: a file, or "not there". */
	if (f->fd < 0 && f->err != ENOENT && f->err != ENOTDIR)
		return;
	while (cache.lru.lru_prev != &cache.lru &&
	       (cache.entries >= cache.max_entries || cache.bytes + size > cache.max_bytes))
		cache_remove(cache.lru.lru_prev);
	f->hash_next = *bucket;
	*bucket = f;
	lru_push_front(f);
	f->cached = true;
	f->refs++;
	cache.entries++;
	cache.bytes += size;
}

const struct httpd_file *httpd_file_open(struct httpd_request *req, int dirfd, const char *rel)
{
	struct worker *w = worker_current();
	uint64_t now_ms = w != NULL ? w->now_ms : 0;
	struct httpd_file *f = NULL;
	uint32_t hash;

	while (*rel == '/')
		rel++;
	hash = key_hash(dirfd, rel);
	if (cache.on) {
		for (f = cache.buckets[hash & (cache.bucket_count - 1)]; f != NULL; f = f->hash_next)
			if (f->hash == hash && f->dirfd == dirfd && strcmp(f->rel, rel) == 0)
				break;
		if (f != NULL && !still_valid(f, now_ms)) {
			cache_remove(f);
			f = NULL;
		}
		if (f != NULL) {
			lru_unlink(f);
			lru_push_front(f);
		}
	}
	if (f == NULL) {
		f = file_load(dirfd, rel, hash, now_ms);
		if (f == NULL)
			return NULL;
		/* "Not found" is cached only when the operator asks: missing paths are the client's to choose. */
		if (cache.on && (f->fd >= 0 || cache.errors))
			cache_insert(f);
	}
	f->refs++;
	if (httpd_pool_cleanup(req->pool, file_release, f) < 0) {
		file_release(f);
		errno = ENOMEM;
		return NULL;
	}
	if (f->fd < 0) {
		errno = f->err;
		return NULL;
	}
	return f;
}

void httpd_file_forget(int dirfd, const char *path)
{
	uint32_t hash;

	if (!cache.on)
		return;
	while (*path == '/')
		path++;
	hash = key_hash(dirfd, path);
	for (struct httpd_file *f = cache.buckets[hash & (cache.bucket_count - 1)]; f != NULL; f = f->hash_next) {
		if (f->hash == hash && f->dirfd == dirfd && strcmp(f->rel, path) == 0) {
			cache_remove(f);
			return;
		}
	}
}

int httpd_file_fd(const struct httpd_file *f)
{
	return f->fd;
}

const struct stat *httpd_file_stat(const struct httpd_file *f)
{
	return &f->st;
}

const char *file_cache_content(const struct httpd_file *f)
{
	return f->content;
}

static const char *memo_get(const void *key, int coding, int level, size_t *len)
{
	const struct httpd_file *f = key;

	for (size_t i = 0; i < f->memo_count; i++) {
		if (f->memos[i].coding == coding && f->memos[i].level == level) {
			*len = f->memos[i].len;
			return f->memos[i].data;
		}
	}
	return NULL;
}

/* Never replaces a copy: a response still being sent may point into it. */
static const char *memo_keep(const void *key, int coding, int level, char *data, size_t len)
{
	struct httpd_file *f = (struct httpd_file *)(uintptr_t)key;

	if (f->memo_count == FILE_MEMOS)
		return NULL;
	f->memos[f->memo_count++] = (struct file_memo){ coding, level, data, len };
	if (f->cached)
		cache.bytes += len;
	return data;
}

const struct body_memo_ops file_cache_memo = { memo_get, memo_keep };

const char *file_cache_etag(const struct httpd_file *f)
{
	return f->etag;
}

const char *file_cache_last_modified(const struct httpd_file *f)
{
	return f->last_modified;
}

/*
 * The fields as text and as headers: one allocation holding the text, the
 * type it was made for, and NUL-terminated copies of the values.  Made for
 * the first type asked; 1 for any other.
 */
int file_cache_fields(const struct httpd_file *file, const char *type, const char **text, size_t *len,
                      const struct response_header **fields, size_t *count)
{
	struct httpd_file *f = (struct httpd_file *)file;   /* ours: the caller holds a reference */

	/* Never remade: a response in flight may point at them.  Another type takes the slow path. */
	if (f->fields != NULL && strcmp(f->fields_type, type) != 0)
		return 1;
	if (f->fields == NULL) {
		const char *names[4] = { "ETag", "Last-Modified", "Accept-Ranges", "Content-Type" };
		/* As fields, lower case: HTTP/2 sends them so (HTTP/1.1 sends the text), and lookups ignore case. */
		static const char *const lower[4] = { "etag", "last-modified", "accept-ranges", "content-type" };
		const char *values[4] = { f->etag, f->last_modified, "bytes", type };
		size_t text_len = 0, total;
		char *p;

		for (int i = 0; i < 4; i++)
			text_len += strlen(names[i]) + 2 + strlen(values[i]) + 2;
		total = text_len + strlen(type) + 1;
		for (int i = 0; i < 4; i++)
			total += strlen(values[i]) + 1;
		p = malloc(total);
		if (p == NULL)
			return -1;
		f->fields = p;
		f->fields_len = text_len;
		for (int i = 0; i < 4; i++) {
			size_t n = strlen(names[i]), v = strlen(values[i]);

			memcpy(p, names[i], n);
			memcpy(p + n, ": ", 2);
			memcpy(p + n + 2, values[i], v);
			memcpy(p + n + 2 + v, "\r\n", 2);
			p += n + 2 + v + 2;
		}
		f->fields_type = p;
		p = stpcpy(p, type) + 1;
		for (int i = 0; i < 4; i++) {
			f->field_list[i] = (struct response_header){ .name = lower[i], .name_len = strlen(lower[i]),
			                                             .value = p, .value_len = strlen(values[i]) };
			p = stpcpy(p, values[i]) + 1;
		}
	}
	*text = f->fields;
	*len = f->fields_len;
	*fields = f->field_list;
	*count = 4;
	return 0;
}
