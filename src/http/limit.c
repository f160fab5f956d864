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
	struct zone_shared *shm;         /* NULL for a zone in Redis */
	struct limit_redis *redis;       /* backend "redis": the fleet's buckets (limit_redis.c) */
	void              (*redis_free)(struct limit_redis *rd);
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
	if (z->redis != NULL)
		z->redis_free(z->redis);
	expr_free(&z->key);
	free(z->name);
	free(z->key_text);
	free(z);
}

/* A zone's name, key (compiled) and rate, before its state: NULL with a reason in err. */
static struct limit_zone *zone_new(const char *name, enum limit_kind kind, const char *key, uint64_t rate,
                                   char *err, size_t errlen)
{
	struct limit_zone *z = calloc(1, sizeof(*z));

	if (z == NULL || (z->name = strdup(name)) == NULL || (z->key_text = strdup(key)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (expr_compile(key, &z->key, err, errlen) < 0)
		goto fail;
	z->kind = kind;
	z->rate = rate;
	return z;
fail:
	if (z != NULL)
		zone_free(z);
	return NULL;
}

struct limit_zone *limit_zone_get(const char *name, enum limit_kind kind, const char *key, uint64_t size,
                                  uint64_t rate, char *err, size_t errlen)
{
	struct limit_zone *z;
	pthread_mutexattr_t attr;
	size_t bytes;

	for (z = zones; z != NULL; z = z->next) {
		if (strcmp(z->name, name) == 0 && z->kind == kind && strcmp(z->key_text, key) == 0 && z->size == size &&
		    z->redis == NULL) {
			z->rate = rate;   /* the rate may change: the buckets stay */
			z->refs++;
			return z;
		}
	}
	if (size < 8192 || size > ((uint64_t)1 << 32)) {
		snprintf(err, errlen, "size must be from 8k to 4g");
		return NULL;
	}
	z = zone_new(name, kind, key, rate, err, errlen);
	if (z == NULL)
		return NULL;
	z->size = size;
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

/* --- zones kept elsewhere (limit_redis.c) ------------------------------------ */

struct limit_zone *limit_zone_remote(const char *name, const char *key, uint64_t rate, struct limit_redis *rd,
                                     void (*rd_free)(struct limit_redis *rd), char *err, size_t errlen)
{
	struct limit_zone *z = zone_new(name, LIMIT_REQ, key, rate, err, errlen);

	if (z == NULL) {
		rd_free(rd);
		return NULL;
	}
	z->redis = rd;
	z->redis_free = rd_free;
	/* Not among the shared-memory zones a reload reuses: its state is elsewhere, nothing to keep. */
	z->refs = 1;
	return z;
}

struct limit_redis *limit_zone_redis_of(const struct limit_zone *z)
{
	return z->redis;
}

uint64_t limit_zone_rate(const struct limit_zone *z)
{
	return z->rate;
}

/* --- zones in Redis: made here, used by limit_redis.c ------------------------ */

/*
 * limit_bucket_take in Lua, atomic in Redis, on Redis' own clock (so the
 * instances' clocks need not agree).  KEYS: the bucket.  ARGV: rate per
 * 1000 s, burst, delay.  Returns {0 passed | 1 delayed | 2 rejected,
 * wait ms}.  An idle bucket expires once it would have drained.
 */
static const char take_script[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local rate, burst, delay = tonumber(ARGV[1]), tonumber(ARGV[2]) * 1000, tonumber(ARGV[3]) * 1000\n"
	"local ttl = math.floor((burst + 1000) * 1000 / rate) + 1000\n"
	"local b = redis.call('HMGET', KEYS[1], 'e', 'l')\n"
	"if not b[2] then\n"
	"  redis.call('HSET', KEYS[1], 'e', 0, 'l', now)\n"
	"  redis.call('PEXPIRE', KEYS[1], ttl)\n"
	"  return {0, 0}\n"
	"end\n"
	"local ms = now - tonumber(b[2])\n"
	"if ms < -60000 then ms = 1 elseif ms < 0 then ms = 0 end\n"
	"local excess = tonumber(b[1]) - math.floor(ms * rate / 1000) + 1000\n"
	"if excess < 0 then excess = 0 end\n"
	"if excess > burst then return {2, math.floor((excess - burst) * 1000 / rate)} end\n"
	"redis.call('HSET', KEYS[1], 'e', excess, 'l', now)\n"
	"redis.call('PEXPIRE', KEYS[1], ttl)\n"
	"if excess <= delay then return {0, 0} end\n"
	"local w = math.floor((excess - delay) * 1000 / rate)\n"
	"if w > 0 then return {1, w} end\n"
	"return {0, 0}\n";

static void limit_redis_free(struct limit_redis *rd)
{
	httpd_redis_free(rd->redis);
	free(rd->prefix);
	free(rd);
}

struct limit_zone *limit_zone_redis(const char *name, const char *key, uint64_t rate, const char *address,
                                    const char *password_file, unsigned timeout_ms, char *err, size_t errlen)
{
	struct limit_redis *rd = calloc(1, sizeof(*rd));
	size_t plen = strlen(name) + sizeof("httpd:limit::");

	if (rd == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (rate == 0) {
		snprintf(err, errlen, "rate must be above 0");
		free(rd);
		return NULL;
	}
	rd->redis = httpd_redis_new(address, password_file, timeout_ms, err, errlen);
	if (rd->redis == NULL) {
		free(rd);
		return NULL;
	}
	rd->prefix = malloc(plen);
	rd->take = httpd_redis_script(rd->redis, take_script);
	if (rd->prefix == NULL || rd->take == NULL) {
		snprintf(err, errlen, "out of memory");
		limit_redis_free(rd);
		return NULL;
	}
	snprintf(rd->prefix, plen, "httpd:limit:%s:", name);
	return limit_zone_remote(name, key, rate, rd, limit_redis_free, err, errlen);
}

bool limit_zone_in_redis(const struct limit_zone *z)
{
	return limit_zone_redis_of(z) != NULL;
}

const char *limit_zone_redis_address(const struct limit_zone *z)
{
	const struct limit_redis *rd = limit_zone_redis_of(z);

	return rd != NULL ? httpd_redis_address(rd->redis) : NULL;
}
