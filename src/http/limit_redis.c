/*
 * limit_req in Redis (limit_req_zone { backend = "redis" }): a request
 * takes from its key's bucket with one script, answered in the event loop.
 * The zone is made in limit.c; only the daemon links this (it sends).
 */
#include "limit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct take_wait {
	limit_redis_fn fn;
	void          *arg;
};

static void take_answered(struct httpd_request *req, void *arg, const struct httpd_redis_reply *reply)
{
	struct take_wait *tw = arg;
	const struct httpd_redis_reply *e = reply->element;

	if (reply->type != HTTPD_REDIS_ARRAY || reply->elements != 2 || e[0].type != HTTPD_REDIS_INTEGER ||
	    e[1].type != HTTPD_REDIS_INTEGER || e[0].integer < 0 || e[0].integer > 2 || e[1].integer < 0) {
		tw->fn(req, tw->arg, LIMIT_REJECTED, 1000, true);
		return;
	}
	tw->fn(req, tw->arg, e[0].integer == 0 ? LIMIT_PASSED : e[0].integer == 1 ? LIMIT_DELAYED : LIMIT_REJECTED,
	       (uint64_t)e[1].integer, false);
}

int limit_zone_request_redis(struct limit_zone *z, struct httpd_request *req, const char *key, size_t len,
                             uint64_t burst, uint64_t delay, limit_redis_fn fn, void *arg)
{
	struct limit_redis *rd = limit_zone_redis_of(z);
	size_t plen = strlen(rd->prefix);
	char *bucket = httpd_pool_alloc(req->pool, plen + len);
	struct take_wait *tw = httpd_pool_alloc(req->pool, sizeof(*tw));
	char rate[24], burst_s[24], delay_s[24];
	const char *argv[5];
	size_t argv_len[5];

	if (bucket == NULL || tw == NULL)
		return -1;
	memcpy(bucket, rd->prefix, plen);
	memcpy(bucket + plen, key, len);
	tw->fn = fn;
	tw->arg = arg;
	snprintf(rate, sizeof(rate), "%llu", (unsigned long long)limit_zone_rate(z));
	snprintf(burst_s, sizeof(burst_s), "%llu", (unsigned long long)burst);
	snprintf(delay_s, sizeof(delay_s), "%llu", (unsigned long long)delay);
	argv[0] = "1";
	argv[1] = bucket;
	argv[2] = rate;
	argv[3] = burst_s;
	argv[4] = delay_s;
	argv_len[0] = 1;
	argv_len[1] = plen + len;
	for (int i = 2; i < 5; i++)
		argv_len[i] = strlen(argv[i]);
	return httpd_redis_eval(rd->redis, req, rd->take, take_answered, tw, 5, argv, argv_len);
}
