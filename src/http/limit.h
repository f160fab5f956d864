/*
 * Request-rate and connection limits shared by every worker (limit_req,
 * limit_conn, as nginx's): a zone is one table in shared memory made by the
 * master, keyed by a keyed hash of the request's key (an access-log variable
 * expression), updated under one process-shared robust lock.  The master
 * never reads a zone back: it only makes it and keeps its size.
 */
#ifndef HTTPD_LIMIT_H
#define HTTPD_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "variable.h"

/* The leaky bucket of one key: excess requests, in thousandths, as of last_ms. */
struct limit_bucket {
	int64_t excess;
	int64_t last_ms;
};

enum limit_verdict { LIMIT_PASSED, LIMIT_DELAYED, LIMIT_REJECTED };

/*
 * nginx's leaky bucket: rate in requests per 1000 s (so 1r/m is exact),
 * burst requests may wait, the first delay of them pass at once (nodelay:
 * all of them).  Updates b unless the request is rejected; *wait_ms is how
 * long a delayed request waits, or how long a rejected one should retry
 * after.  A dry run counts the same: only what the caller does differs.
 */
enum limit_verdict limit_bucket_take(struct limit_bucket *b, int64_t now_ms, uint64_t rate_per_ks,
                                     uint64_t burst, uint64_t delay, uint64_t *wait_ms);

enum limit_kind { LIMIT_REQ, LIMIT_CONN };

struct limit_zone;

/*
 * The zone called name of size bytes, kind, key: the same one as the
 * configuration before when name, kind, key and size match (a zone
 * survives a reload), else a new one.  NULL with a reason in err.
 */
struct limit_zone *limit_zone_get(const char *name, enum limit_kind kind, const char *key, uint64_t size,
                                  uint64_t rate_per_ks, char *err, size_t errlen);
void               limit_zone_put(struct limit_zone *z);
const char        *limit_zone_name(const struct limit_zone *z);
enum limit_kind    limit_zone_kind(const struct limit_zone *z);
const struct expr *limit_zone_key(const struct limit_zone *z);

/*
 * A limit_req zone kept elsewhere (limit_redis.c): rd, freed with rd_free
 * when the zone goes (or now, on failure).
 */
struct limit_redis {
	struct httpd_redis              *redis;
	const struct httpd_redis_script *take;
	char                            *prefix;   /* "httpd:limit:ZONE:" */
};
struct limit_zone *limit_zone_remote(const char *name, const char *key, uint64_t rate, struct limit_redis *rd,
                                     void (*rd_free)(struct limit_redis *rd), char *err, size_t errlen);
struct limit_redis *limit_zone_redis_of(const struct limit_zone *z);
uint64_t limit_zone_rate(const struct limit_zone *z);

/*
 * A limit_req zone kept in Redis at address (backend "redis"): every
 * instance of a fleet shares its buckets, on Redis' clock.  Never reused
 * by a reload (its state is in Redis).  NULL with a reason in err.
 */
struct limit_zone *limit_zone_redis(const char *name, const char *key, uint64_t rate, const char *address,
                                    const char *password_file, unsigned timeout_ms, char *err, size_t errlen);
bool limit_zone_in_redis(const struct limit_zone *z);
const char *limit_zone_redis_address(const struct limit_zone *z);
/*
 * limit_req in Redis: fn(req, arg, verdict, wait_ms, failed) comes later,
 * from the event loop (failed: Redis did not answer; the verdict is then
 * REJECTED).  -1 when nothing could be sent: fn never comes.
 */
typedef void (*limit_redis_fn)(struct httpd_request *req, void *arg, enum limit_verdict v, uint64_t wait_ms,
                               bool failed);
int limit_zone_request_redis(struct limit_zone *z, struct httpd_request *req, const char *key, size_t len,
                             uint64_t burst, uint64_t delay, limit_redis_fn fn, void *arg);

/* limit_req: one request of key now (see limit_bucket_take). */
enum limit_verdict limit_zone_request(struct limit_zone *z, const char *key, size_t len, int64_t now_ms,
                                      uint64_t burst, uint64_t delay, uint64_t *wait_ms);
/* limit_conn: one more request in progress of key, if fewer than max are; release it when it ends. */
bool limit_zone_conn_acquire(struct limit_zone *z, const char *key, size_t len, unsigned max);
void limit_zone_conn_release(struct limit_zone *z, const char *key, size_t len);

#endif
