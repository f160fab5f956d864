/*
 * The proxy cache's index, one for all workers: in shared memory the master
 * maps before it forks, a table from the 32-byte hash of a stored
 * response's key to what the store needs to know of it (its size on disk,
 * when it was last used, when it goes stale, who is fetching it now),
 * bounded in entries and in bytes and evicted least recently used first.
 * Bodies live in files named by the hash; the index only says which exist.
 *
 * Every link is an index checked against the table's size and every walk
 * is bounded by it, so a worker that scribbles over the shared pages gets
 * an index that is emptied (the store refills), never one that loops or
 * reaches outside the mapping.
 */
#ifndef HTTPD_CACHE_INDEX_H
#define HTTPD_CACHE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cache_index;

struct cache_index_info {
	uint8_t hash[32];
	uint64_t size;           /* bytes on disk: head and body */
	int64_t  last_use;       /* seconds */
	int64_t  stale_at;       /* when it stops being fresh (for inactive and eviction decisions), 0 unknown */
	uint64_t version;        /* which file of that hash: a worker's copy of it is good while this is unchanged */
};

/* In the master: room for entries stored responses and max_bytes of them.  NULL with errno on failure. */
struct cache_index *cache_index_create(size_t entries, uint64_t max_bytes);
void cache_index_destroy(struct cache_index *idx);

/* 1 and *out when hash is stored (its last use set to now), 0 when not, -1 when the lock failed. */
int cache_index_lookup(struct cache_index *idx, const uint8_t hash[32], int64_t now, struct cache_index_info *out);

/*
 * Adds (or replaces) hash with size bytes, making room first by evicting the
 * least recently used entries: their hashes go into evicted (at most max;
 * the caller removes their files) and *n_evicted says how many.  0, or -1
 * when size alone is more than the index may hold or the lock failed.
 */
int cache_index_insert(struct cache_index *idx, const struct cache_index_info *info, uint8_t (*evicted)[32],
                       size_t max, size_t *n_evicted);

/* Whether hash is stored now (its last use unchanged): 1, 0, or -1 when the lock failed. */
int cache_index_contains(struct cache_index *idx, const uint8_t hash[32]);

/* Removes hash: 1 if it was there, 0 if not, -1 when the lock failed. */
int cache_index_remove(struct cache_index *idx, const uint8_t hash[32]);

/* Entries unused since before now - inactive: removed, their hashes into evicted (at most max).  How many. */
size_t cache_index_expire(struct cache_index *idx, int64_t now, int64_t inactive, uint8_t (*evicted)[32], size_t max);

/*
 * Request collapsing: the first caller for hash takes the fetch (1) until
 * it unlocks or until now + hold; later callers get 0 while it holds it.
 * -1 when the lock failed or no slot is free for the claim.
 */
int  cache_index_claim(struct cache_index *idx, const uint8_t hash[32], pid_t pid, int64_t now, int64_t hold);
void cache_index_release(struct cache_index *idx, const uint8_t hash[32], pid_t pid);

/* Stored entries and their bytes. */
size_t   cache_index_count(struct cache_index *idx);
uint64_t cache_index_bytes(struct cache_index *idx);

#endif
