#include "limit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "siphash.h"

enum limit_verdict limit_bucket_take(struct limit_bucket *b, int64_t now_ms, uint64_t rate_per_ks,
                                     uint64_t burst, uint64_t delay, uint64_t *wait_ms)
{
	int64_t ms, excess;

	*wait_ms = 0;
	if (b->last_ms == 0) {
		/* A key seen for the first time passes and starts its bucket empty, as nginx's. */
		b->excess = 0;
		b->last_ms = now_ms;
		return LIMIT_PASSED;
	}
	ms = now_ms - b->last_ms;
	if (ms < -60000)
		ms = 1;       /* the clock stepped back a long way: start over rather than wait */
	else if (ms < 0)
		ms = 0;
	excess = b->excess - (int64_t)((uint64_t)ms * rate_per_ks / 1000) + 1000;
	if (excess < 0)
		excess = 0;
	if ((uint64_t)excess > burst * 1000) {
		*wait_ms = ((uint64_t)excess - burst * 1000) * 1000 / rate_per_ks;
		return LIMIT_REJECTED;
	}
	b->excess = excess;
	b->last_ms = now_ms;
	if ((uint64_t)excess <= delay * 1000)
		return LIMIT_PASSED;
	*wait_ms = ((uint64_t)excess - delay * 1000) * 1000 / rate_per_ks;
	return *wait_ms > 0 ? LIMIT_DELAYED : LIMIT_PASSED;
}

/* --- zones ------------------------------------------------------------------ */

#define PROBE 16

struct zone_entry {
	uint64_t hash;      /* 0: free */
	int64_t  last_ms;
	int64_t  excess;
	uint32_t conns;
	uint32_t unused;
};

struct zone_shared {
	pthread_mutex_t   lock;
	int64_t           evict_logged_ms;
	struct zone_entry e[];
};

struct limit_zone {
	char               *name;
	char               *key_text;
	enum limit_kind     kind;
	uint64_t            size, rate;
	size_t              entries;
	struct siphash_key  secret;      /* private: the master's, inherited by every worker */
	struct zone_shared *shm;
	struct expr         key;
	unsigned            refs;
	struct limit_zone  *next;
};

static struct limit_zone *zones;    /* the master's: every zone a configuration still uses */

const char *limit_zone_name(const struct limit_zone *z)
{
	return z->name;
}

enum limit_kind limit_zone_kind(const struct limit_zone *z)
{
	return z->kind;
}

const struct expr *limit_zone_key(const struct limit_zone *z)
{
	return &z->key;
}

static void zone_free(struct limit_zone *z)
{
	if (z->shm != NULL)
		munmap(z->shm, sizeof(*z->shm) + z->entries * sizeof(struct zone_entry));
	expr_free(&z->key);
	free(z->name);
	free(z->key_text);
	free(z);
}

struct limit_zone *limit_zone_get(const char *name, enum limit_kind kind, const char *key, uint64_t size,
                                  uint64_t rate, char *err, size_t errlen)
{
	struct limit_zone *z;
	pthread_mutexattr_t attr;
	size_t bytes;

	for (z = zones; z != NULL; z = z->next) {
		if (strcmp(z->name, name) == 0 && z->kind == kind && strcmp(z->key_text, key) == 0 && z->size == size) {
			z->rate = rate;   /* the rate may change: the buckets stay */
			z->refs++;
			return z;
		}
	}
	if (size < 8192 || size > ((uint64_t)1 << 32)) {
		snprintf(err, errlen, "size must be from 8k to 4g");
		return NULL;
	}
	z = calloc(1, sizeof(*z));
	if (z == NULL || (z->name = strdup(name)) == NULL || (z->key_text = strdup(key)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (expr_compile(key, &z->key, err, errlen) < 0)
		goto fail;
	z->kind = kind;
	z->size = size;
	z->rate = rate;
	z->entries = (size_t)(size - sizeof(struct zone_shared)) / sizeof(struct zone_entry);
	bytes = sizeof(struct zone_shared) + z->entries * sizeof(struct zone_entry);
	z->shm = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (z->shm == MAP_FAILED) {
		z->shm = NULL;
		snprintf(err, errlen, "cannot map %zu bytes: %s", bytes, strerror(errno));
		goto fail;
	}
	if (pthread_mutexattr_init(&attr) != 0) {
		snprintf(err, errlen, "cannot make the zone's lock");
		goto fail;
	}
	(void)pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	(void)pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (pthread_mutex_init(&z->shm->lock, &attr) != 0) {
		pthread_mutexattr_destroy(&attr);
		snprintf(err, errlen, "cannot make the zone's lock");
		goto fail;
	}
	pthread_mutexattr_destroy(&attr);
	siphash_key_random(&z->secret);
	for (struct limit_zone *old = zones; old != NULL; old = old->next)
		if (strcmp(old->name, name) == 0 && old->kind == kind)
			httpd_log(HTTPD_LOG_NOTICE, "limit zone \"%s\": its key or size changed, so it starts anew "
			          "(%zu keys) and forgets what it counted", name, z->entries);
	z->refs = 1;
	z->next = zones;
	zones = z;
	return z;
fail:
	if (z != NULL)
		zone_free(z);
	return NULL;
}

void limit_zone_put(struct limit_zone *z)
{
	struct limit_zone **link;

	if (z == NULL || --z->refs > 0)
		return;
	for (link = &zones; *link != NULL; link = &(*link)->next) {
		if (*link == z) {
			*link = z->next;
			break;
		}
	}
	zone_free(z);
}

static int zone_lock(struct limit_zone *z)
{
	int rc = pthread_mutex_lock(&z->shm->lock);

	if (rc == EOWNERDEAD)   /* its holder died: entries are only counters, carry on */
		rc = pthread_mutex_consistent(&z->shm->lock);
	return rc;
}

/*
 * Under the lock: key's entry, made if need be.  When the probe window is
 * full the least recently used entry in it goes (never one with requests
 * in progress); NULL when every one has.
 */
static struct zone_entry *entry_find(struct limit_zone *z, uint64_t hash, int64_t now_ms)
{
	struct zone_entry *oldest = NULL;

	for (size_t i = 0; i < PROBE && i < z->entries; i++) {
		struct zone_entry *e = &z->shm->e[(hash + i) % z->entries];

		if (e->hash == hash)
			return e;
		if (e->hash == 0) {
			memset(e, 0, sizeof(*e));
			e->hash = hash;
			return e;
		}
		if (e->conns == 0 && (oldest == NULL || e->last_ms < oldest->last_ms))
			oldest = e;
	}
	if (oldest == NULL)
		return NULL;
	if (now_ms - z->shm->evict_logged_ms >= 60000) {
		z->shm->evict_logged_ms = now_ms;
		httpd_log(HTTPD_LOG_WARN, "limit zone \"%s\" is full: the least recently used keys are dropped "
		          "(logged once a minute; make its size larger)", z->name);
	}
	memset(oldest, 0, sizeof(*oldest));
	oldest->hash = hash;
	return oldest;
}

static uint64_t key_hash(const struct limit_zone *z, const char *key, size_t len)
{
	uint64_t h = siphash13(&z->secret, key, len);

	return h != 0 ? h : 1;
}

enum limit_verdict limit_zone_request(struct limit_zone *z, const char *key, size_t len, int64_t now_ms,
                                      uint64_t burst, uint64_t delay, uint64_t *wait_ms)
{
	uint64_t hash = key_hash(z, key, len);
	struct zone_entry *e;
	struct limit_bucket b;
	enum limit_verdict v;

	if (zone_lock(z) != 0) {
		*wait_ms = 1000;
		return LIMIT_REJECTED;   /* fail closed */
	}
	e = entry_find(z, hash, now_ms);
	if (e == NULL) {
		pthread_mutex_unlock(&z->shm->lock);
		*wait_ms = 1000;
		return LIMIT_REJECTED;
	}
	b.excess = e->excess;
	b.last_ms = e->last_ms;
	v = limit_bucket_take(&b, now_ms, z->rate, burst, delay, wait_ms);
	e->excess = b.excess;
	e->last_ms = b.last_ms;
	pthread_mutex_unlock(&z->shm->lock);
	return v;
}

bool limit_zone_conn_acquire(struct limit_zone *z, const char *key, size_t len, unsigned max)
{
	uint64_t hash = key_hash(z, key, len);
	struct zone_entry *e;
	bool ok = false;

	if (zone_lock(z) != 0)
		return false;
	e = entry_find(z, hash, 0);
	if (e != NULL && e->conns < max) {
		e->conns++;
		ok = true;
	}
	pthread_mutex_unlock(&z->shm->lock);
	return ok;
}

void limit_zone_conn_release(struct limit_zone *z, const char *key, size_t len)
{
	uint64_t hash = key_hash(z, key, len);

	if (zone_lock(z) != 0)
		return;
	for (size_t i = 0; i < PROBE && i < z->entries; i++) {
		struct zone_entry *e = &z->shm->e[(hash + i) % z->entries];

		if (e->hash == hash) {
			if (e->conns > 0)
				e->conns--;
			break;
		}
	}
	pthread_mutex_unlock(&z->shm->lock);
}
