/*
 * The worker's open-file cache: (directory, path) -> descriptor, stat,
 * validators and, for small files, the content, revalidated with one stat
 * at most every file_cache_valid seconds, bounded in entries and bytes
 * (LRU).  Entries are reference-counted, so a file in the middle of a
 * sendfile outlives its eviction.  Failed opens (ENOENT, ENOTDIR) are
 * cached too, so a missing precompressed sibling costs nothing.
 */
#ifndef HTTPD_FILE_CACHE_H
#define HTTPD_FILE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http_response.h"

/* In each worker, from its configuration (file_cache_valid 0 turns the cache off). */
void file_cache_init(const struct httpd_config *config);
void file_cache_destroy(void);

struct httpd_file;

/* What the cache keeps besides the descriptor (for httpd_respond_cached_file). */
const char *file_cache_content(const struct httpd_file *f);   /* NULL unless small */
/* The compressed copies of a small file's content, kept with it (res->memo, key: the file). */
extern const struct body_memo_ops file_cache_memo;
const char *file_cache_etag(const struct httpd_file *f);
const char *file_cache_last_modified(const struct httpd_file *f);
/*
 * ETag, Last-Modified, Accept-Ranges and Content-Type of a 200, prebuilt as
 * text and as headers (response_fields_prebuilt), made once per file for
 * the first type asked: 1 for another type, -1 out of memory, else 0.
 */
int file_cache_fields(const struct httpd_file *f, const char *type, const char **text, size_t *len,
                      const struct response_header **fields, size_t *count);

#endif
