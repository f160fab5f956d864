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

/* limit_req: one request of key now (see limit_bucket_take). */
enum limit_verdict limit_zone_request(struct limit_zone *z, const char *key, size_t len, int64_t now_ms,
                                      uint64_t burst, uint64_t delay, uint64_t *wait_ms);
/* limit_conn: one more request in progress of key, if fewer than max are; release it when it ends. */
bool limit_zone_conn_acquire(struct limit_zone *z, const char *key, size_t len, unsigned max);
void limit_zone_conn_release(struct limit_zone *z, const char *key, size_t len);

#endif
