/*
 * The proxy cache's files: one per stored response, named for the hash of
 * its key ("ab/abcdef...", 64 hex digits under a directory of its first
 * two), written to an unnamed file (O_TMPFILE) in the store's directory and
 * given its name only when whole (linkat), so a reader never finds a
 * half-written response and a writer that dies leaves nothing.  At start
 * the master rebuilds the index from the files: heads that do not parse,
 * or whose length is not their size, are removed.
 */
#ifndef HTTPD_CACHE_STORE_H
#define HTTPD_CACHE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cache_index.h"

#define CACHE_FILE_NAME_MAX 68   /* "ab/" + 64 hex digits + NUL */

/* "ab/abcd...": the file of hash, relative to the store's directory. */
void cache_file_name(const uint8_t hash[32], char out[CACHE_FILE_NAME_MAX]);

/* The store's directory, opened (O_PATH): its fd, or -1 with errno. */
int cache_store_open(const char *path);

/* A new, unnamed file in the store to write a response into: its fd, or -1 with errno. */
int cache_store_begin(int dirfd);

/* Names the whole file fd as hash's, replacing what was there: 0, or -1 with errno (fd stays the caller's). */
int cache_store_commit(int dirfd, int fd, const uint8_t hash[32]);

/*
 * Request collapsing: an unfinished file (cache_store_begin's) named
 * "ab/.part-<hash>" while it fills, so requests waiting for the same
 * response can read it as it arrives; the name goes when the file is
 * committed or given up (the file itself lives on under its real name, or
 * not at all).  The caller holds the key's claim, so a name already there
 * (a fetch that died, or outlived its claim) is replaced.  0, or -1 with errno.
 */
int  cache_store_publish(int dirfd, int fd, const uint8_t hash[32]);
void cache_store_unpublish(int dirfd, const uint8_t hash[32]);
int  cache_store_read_partial(int dirfd, const uint8_t hash[32]);

/* Opens hash's file for reading: its fd, or -1 with errno (ENOENT: not stored). */
int cache_store_read(int dirfd, const uint8_t hash[32]);

/* Removes hash's file: 0, or -1 with errno (ENOENT included). */
int cache_store_remove(int dirfd, const uint8_t hash[32]);

/*
 * Puts every whole stored response into idx (with now as its last use),
 * removing files that are not ones (a damaged head, a wrong length, a
 * writer's leftover name).  Counts what it kept and removed.  0, or -1 with errno when
 * the directory cannot be read.
 */
int cache_store_scan(int dirfd, struct cache_index *idx, int64_t now, size_t *kept, size_t *removed);

#endif
