/* The proxy cache's shared index: see cache_index.h. */
#include "cache_index.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NIL        UINT32_MAX
#define CLAIMS     4096   /* fetches in flight at once, across workers */
#define CLAIM_PROBE 16

struct slot {
	uint8_t  hash[32];
	uint64_t size;
	int64_t  last_use, stale_at;
	uint64_t version;
	uint32_t bucket_next;          /* the next slot in its bucket, or NIL */
	uint32_t lru_prev, lru_next;   /* most recently used first; a free slot's lru_next is the free list */
	uint32_t used;
};

struct claim {
	uint8_t hash[32];
	int64_t until;                 /* 0: free */
	pid_t   pid;
};

struct head {
	pthread_mutex_t lock;
	uint32_t        entries, buckets;
	uint32_t        count, free_head, lru_head, lru_tail;
	uint64_t        bytes, max_bytes;
	struct claim    claims[CLAIMS];
};

/* Process-private: the sizes a walk trusts are these, never the shared copies a scribbler could change. */
struct cache_index {
	struct head *head;
	uint32_t    *bucket;
	struct slot *slot;
	uint32_t     entries, buckets;
	uint64_t     max_bytes;
	size_t       map_size;
};

static size_t map_size(uint32_t entries, uint32_t buckets)
{
	return sizeof(struct head) + (size_t)buckets * sizeof(uint32_t) + (size_t)entries * sizeof(struct slot);
}

/* Empty: every slot free, every bucket empty.  Also what a scribbled index becomes. */
static void index_clear(struct cache_index *idx)
{
	struct head *h = idx->head;

	for (uint32_t b = 0; b < idx->buckets; b++)
		idx->bucket[b] = NIL;
	for (uint32_t i = 0; i < idx->entries; i++) {
		memset(&idx->slot[i], 0, sizeof(idx->slot[i]));
		idx->slot[i].bucket_next = NIL;
		idx->slot[i].lru_prev = NIL;
		idx->slot[i].lru_next = i + 1 < idx->entries ? i + 1 : NIL;
	}
	h->free_head = idx->entries > 0 ? 0 : NIL;
	h->lru_head = h->lru_tail = NIL;
	h->count = 0;
	h->bytes = 0;
}

struct cache_index *cache_index_create(size_t entries, uint64_t max_bytes)
{
	struct cache_index *idx;
	pthread_mutexattr_t attr;
	uint32_t buckets = 16;
	void *map;

	if (entries == 0 || entries > (1u << 24) || max_bytes == 0) {
		errno = EINVAL;
		return NULL;
	}
	while (buckets < entries)
		buckets *= 2;
	idx = calloc(1, sizeof(*idx));
	if (idx == NULL)
		return NULL;
	idx->map_size = map_size((uint32_t)entries, buckets);
	map = mmap(NULL, idx->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		free(idx);
		return NULL;
	}
	idx->head = map;
	idx->bucket = (uint32_t *)(void *)((char *)map + sizeof(struct head));
	idx->slot = (struct slot *)(void *)((char *)idx->bucket + (size_t)buckets * sizeof(uint32_t));
	idx->entries = idx->head->entries = (uint32_t)entries;
	idx->buckets = idx->head->buckets = buckets;
	idx->max_bytes = idx->head->max_bytes = max_bytes;
	index_clear(idx);
	if (pthread_mutexattr_init(&attr) != 0 || pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&idx->head->lock, &attr) != 0) {
		munmap(map, idx->map_size);
		free(idx);
		errno = EIO;
		return NULL;
	}
	pthread_mutexattr_destroy(&attr);
	return idx;
}

void cache_index_destroy(struct cache_index *idx)
{
	if (idx == NULL)
		return;
	munmap(idx->head, idx->map_size);
	free(idx);
}

static int index_lock(struct cache_index *idx)
{
	int rc = pthread_mutex_lock(&idx->head->lock);

	/* Its holder died mid-change: the links may be half made, so start again from empty. */
	if (rc == EOWNERDEAD) {
		rc = pthread_mutex_consistent(&idx->head->lock);
		if (rc == 0)
			index_clear(idx);
	}
	return rc;
}

static void index_unlock(struct cache_index *idx)
{
	pthread_mutex_unlock(&idx->head->lock);
}

static uint32_t bucket_of(const struct cache_index *idx, const uint8_t hash[32])
{
	uint32_t b;

	memcpy(&b, hash, sizeof(b));
	return b & (idx->buckets - 1);
}

/* The slot of hash, or NIL; *broken when a link led outside the table or round in a circle. */
static uint32_t slot_find(struct cache_index *idx, const uint8_t hash[32], bool *broken)
{
	uint32_t i = idx->bucket[bucket_of(idx, hash)];

	for (uint32_t steps = 0; i != NIL; steps++) {
		if (i >= idx->entries || steps > idx->entries) {
			*broken = true;
			return NIL;
		}
		if (idx->slot[i].used && memcmp(idx->slot[i].hash, hash, 32) == 0)
			return i;
		i = idx->slot[i].bucket_next;
	}
	return NIL;
}

static bool lru_unlink(struct cache_index *idx, uint32_t i)
{
	struct head *h = idx->head;
	struct slot *s = &idx->slot[i];

	if ((s->lru_prev != NIL && s->lru_prev >= idx->entries) || (s->lru_next != NIL && s->lru_next >= idx->entries))
		return false;
	if (s->lru_prev != NIL)
		idx->slot[s->lru_prev].lru_next = s->lru_next;
	else
		h->lru_head = s->lru_next;
	if (s->lru_next != NIL)
		idx->slot[s->lru_next].lru_prev = s->lru_prev;
	else
		h->lru_tail = s->lru_prev;
	s->lru_prev = s->lru_next = NIL;
	return true;
}

static void lru_push(struct cache_index *idx, uint32_t i)
{
	struct head *h = idx->head;

	if ((h->lru_head != NIL && h->lru_head >= idx->entries) || (h->lru_tail != NIL && h->lru_tail >= idx->entries))
		h->lru_head = h->lru_tail = NIL;   /* scribbled: the next eviction finds the list short and starts over */

	idx->slot[i].lru_prev = NIL;
	idx->slot[i].lru_next = h->lru_head;
	if (h->lru_head != NIL)
		idx->slot[h->lru_head].lru_prev = i;
	h->lru_head = i;
	if (h->lru_tail == NIL)
		h->lru_tail = i;
}

/* Takes slot i out of its bucket, the LRU list and the sums, onto the free list; false when links are broken. */
static bool slot_drop(struct cache_index *idx, uint32_t i)
{
	struct head *h = idx->head;
	uint32_t *link = &idx->bucket[bucket_of(idx, idx->slot[i].hash)];

	for (uint32_t steps = 0; *link != i; steps++) {
		if (*link == NIL || *link >= idx->entries || steps > idx->entries)
			return false;
		link = &idx->slot[*link].bucket_next;
	}
	*link = idx->slot[i].bucket_next;
	if (!lru_unlink(idx, i))
		return false;
	h->count--;
	h->bytes -= idx->slot[i].size <= h->bytes ? idx->slot[i].size : h->bytes;
	idx->slot[i].used = 0;
	idx->slot[i].bucket_next = NIL;
	idx->slot[i].lru_next = h->free_head;
	h->free_head = i;
	return true;
}

int cache_index_lookup(struct cache_index *idx, const uint8_t hash[32], int64_t now, struct cache_index_info *out)
{
	bool broken = false;
	uint32_t i;

	if (index_lock(idx) != 0)
		return -1;
	i = slot_find(idx, hash, &broken);
	if (i != NIL) {
		idx->slot[i].last_use = now;
		if (lru_unlink(idx, i))
			lru_push(idx, i);
		else
			broken = true;
		memcpy(out->hash, idx->slot[i].hash, 32);
		out->size = idx->slot[i].size;
		out->last_use = now;
		out->stale_at = idx->slot[i].stale_at;
		out->version = idx->slot[i].version;
	}
	if (broken) {
		index_clear(idx);
		i = NIL;
	}
	index_unlock(idx);
	return i != NIL ? 1 : 0;
}

int cache_index_insert(struct cache_index *idx, const struct cache_index_info *info, uint8_t (*evicted)[32],
                       size_t max, size_t *n_evicted)
{
	struct head *h;
	bool broken = false;
	uint32_t i, b;

	*n_evicted = 0;
	if (index_lock(idx) != 0)
		return -1;
	h = idx->head;
	if (info->size > idx->max_bytes) {
		index_unlock(idx);
		return -1;
	}
	i = slot_find(idx, info->hash, &broken);
	if (i != NIL && !slot_drop(idx, i))
		broken = true;
	/* Room: the least recently used go first, their files named for the caller to remove. */
	while (!broken && (h->count >= idx->entries || h->bytes + info->size > idx->max_bytes)) {
		uint32_t tail = h->lru_tail;

		if (tail == NIL || tail >= idx->entries) {
			broken = true;
			break;
		}
		if (*n_evicted < max)
			memcpy(evicted[(*n_evicted)++], idx->slot[tail].hash, 32);
		if (!slot_drop(idx, tail))
			broken = true;
	}
	if (broken || h->free_head == NIL || h->free_head >= idx->entries) {
		index_clear(idx);   /* a scribbled index: the store refills from scratch */
		if (h->free_head == NIL) {
			index_unlock(idx);
			return -1;
		}
	}
	i = h->free_head;
	h->free_head = idx->slot[i].lru_next;
	memcpy(idx->slot[i].hash, info->hash, 32);
	idx->slot[i].size = info->size;
	idx->slot[i].last_use = info->last_use;
	idx->slot[i].stale_at = info->stale_at;
	idx->slot[i].version = info->version;
	idx->slot[i].used = 1;
	b = bucket_of(idx, info->hash);
	idx->slot[i].bucket_next = idx->bucket[b];
	idx->bucket[b] = i;
	lru_push(idx, i);
	h->count++;
	h->bytes += info->size;
	index_unlock(idx);
	return 0;
}

int cache_index_contains(struct cache_index *idx, const uint8_t hash[32])
{
	bool broken = false;
	int found;

	if (index_lock(idx) != 0)
		return -1;
	found = slot_find(idx, hash, &broken) != NIL;
	if (broken)
		index_clear(idx);
	index_unlock(idx);
	return found;
}

int cache_index_remove(struct cache_index *idx, const uint8_t hash[32])
{
	bool broken = false;
	uint32_t i;
	int found = 0;

	if (index_lock(idx) != 0)
		return -1;
	i = slot_find(idx, hash, &broken);
	if (i != NIL) {
		found = 1;
		if (!slot_drop(idx, i))
			broken = true;
	}
	if (broken)
		index_clear(idx);
	index_unlock(idx);
	return found;
}

size_t cache_index_expire(struct cache_index *idx, int64_t now, int64_t inactive, uint8_t (*evicted)[32], size_t max)
{
	size_t n = 0;

	if (index_lock(idx) != 0)
		return 0;
	/* From the least recently used end: the first one used recently enough ends the walk. */
	for (uint32_t steps = 0; n < max; steps++) {
		uint32_t tail = idx->head->lru_tail;

		if (tail == NIL)
			break;
		if (tail >= idx->entries || steps > idx->entries) {
			index_clear(idx);
			break;
		}
		if (idx->slot[tail].last_use > now - inactive)
			break;
		memcpy(evicted[n++], idx->slot[tail].hash, 32);
		if (!slot_drop(idx, tail)) {
			index_clear(idx);
			break;
		}
	}
	index_unlock(idx);
	return n;
}

int cache_index_claim(struct cache_index *idx, const uint8_t hash[32], pid_t pid, int64_t now, int64_t hold)
{
	struct claim *free_claim = NULL;
	uint32_t start;
	int rc = -1;

	memcpy(&start, hash + 4, sizeof(start));
	if (index_lock(idx) != 0)
		return -1;
	for (uint32_t k = 0; k < CLAIM_PROBE; k++) {
		struct claim *c = &idx->head->claims[(start + k) % CLAIMS];

		if (c->until > now) {
			if (memcmp(c->hash, hash, 32) == 0) {
				rc = 0;   /* another fetch of it is under way */
				free_claim = NULL;
				break;
			}
		} else if (free_claim == NULL) {
			free_claim = c;
		}
	}
	if (free_claim != NULL) {
		memcpy(free_claim->hash, hash, 32);
		free_claim->pid = pid;
		free_claim->until = now + hold;
		rc = 1;
	}
	index_unlock(idx);
	return rc;
}

void cache_index_release(struct cache_index *idx, const uint8_t hash[32], pid_t pid)
{
	uint32_t start;

	memcpy(&start, hash + 4, sizeof(start));
	if (index_lock(idx) != 0)
		return;
	for (uint32_t k = 0; k < CLAIM_PROBE; k++) {
		struct claim *c = &idx->head->claims[(start + k) % CLAIMS];

		if (c->until != 0 && c->pid == pid && memcmp(c->hash, hash, 32) == 0) {
			c->until = 0;
			break;
		}
	}
	index_unlock(idx);
}

size_t cache_index_count(struct cache_index *idx)
{
	return idx->head->count;
}

uint64_t cache_index_bytes(struct cache_index *idx)
{
	return idx->head->bytes;
}
