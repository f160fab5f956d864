/*
 * The proxy's HTTP cache (RFC 9111, RFC 5861): zones declared by
 * proxy_cache_path (made in the master, shared by every worker, kept
 * across reloads), and what a cache location does with a request: answer
 * it from the store, wait for another worker's fetch of the same key, or
 * send it to the origin and keep the answer as it streams.  The proxy
 * calls in at three points (the request, the upstream's head, the body's
 * bytes); policy, the on-disk format, the index and the files are
 * cache_policy, cache_entry, cache_index and cache_store.
 */
#ifndef HTTPD_PROXY_CACHE_H
#define HTTPD_PROXY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <httpd/module.h>

#include "proxy_parse.h"

struct cache_zone;
struct cache_zones;
struct cache_req;

/* proxy_cache_use_stale's words, as bits. */
enum {
	CACHE_STALE_ERROR = 1, CACHE_STALE_TIMEOUT = 2, CACHE_STALE_UPDATING = 4, CACHE_STALE_500 = 8,
	CACHE_STALE_502 = 16, CACHE_STALE_503 = 32, CACHE_STALE_504 = 64,
};

/* A location's cache settings. */
struct cache_conf {
	struct cache_zone       *zone;         /* NULL: no cache here */
	bool                     lock, background_update;
	unsigned                 lock_timeout_ms;
	unsigned                 use_stale;    /* CACHE_STALE_* */
	unsigned                 methods;      /* HTTPD_METHOD_GET and/or HEAD */
	const struct httpd_expr *key, *bypass; /* key NULL: the default, $scheme$host$request_uri */
};

extern const struct httpd_option cache_path_options[];   /* the proxy_cache_path section */
#define CACHE_LOCATION_OPTIONS \
	HTTPD_OPTION_STR("proxy_cache", NULL), \
	HTTPD_OPTION_BOOL("proxy_cache_lock", "false"), \
	HTTPD_OPTION_DURATION("proxy_cache_lock_timeout", "5", 1, 3600 * 1000), \
	HTTPD_OPTION_STR_LIST("proxy_cache_use_stale", "{}"), \
	HTTPD_OPTION_BOOL("proxy_cache_background_update", "false"), \
	HTTPD_OPTION_STR_LIST("proxy_cache_methods", "{\"GET\", \"HEAD\"}"), \
	HTTPD_OPTION_EXPR("proxy_cache_key", NULL), \
	HTTPD_OPTION_EXPR("proxy_cache_bypass", NULL)

/* In the master: every proxy_cache_path of the configuration (zones of an earlier one with the same path and size are kept). */
int  cache_zones_init(const struct httpd_conf *server, struct cache_zones **out, char *err, size_t errlen);
void cache_zones_release(struct cache_zones *zones);

/* A location's proxy_cache* options; zones may be NULL when there are none. */
int  cache_conf_read(const struct httpd_conf *opts, struct cache_zones *zones, struct cache_conf *cc, char *err,
                     size_t errlen);
void cache_conf_release(struct cache_conf *cc);

/* In each worker (its first location with a zone): the timer that removes what inactive says has gone unused. */
void cache_worker_start(struct cache_zones *zones);

/* How cache_request_start left the request. */
enum cache_start {
	CACHE_ANSWERED,   /* res holds the answer (a hit, or a 504 for only-if-cached) */
	CACHE_FETCH,      /* go to the origin, with *cr to call back */
	CACHE_WAITING,    /* another fetch of the key is under way: pending; the cache answers or calls fetch later */
	CACHE_FAILED,     /* out of memory: 500 */
};

/* What the cache calls when a waiting request is to go to the origin after all. */
typedef void (*cache_fetch_fn)(void *arg, struct httpd_request *req, struct httpd_response *res,
                               struct cache_req *cr);

/*
 * What the cache calls to revalidate a stale response it answered with
 * (stale-while-revalidate, or proxy_cache_background_update): the proxy
 * builds the request from req (still there during the call) and sends it
 * on its own, calling cache_upstream_head, cache_body, cache_body_end for
 * bg as for a client's fetch, then cache_background_end.  -1 when it
 * cannot start (the cache then ends bg itself).
 */
typedef int (*cache_refresh_fn)(void *arg, struct httpd_request *req, struct cache_req *bg);

enum cache_start cache_request_start(const struct cache_conf *cc, struct httpd_request *req,
                                     struct httpd_response *res, cache_fetch_fn fetch, cache_refresh_fn refresh,
                                     void *arg, struct cache_req **cr);

/* A background revalidation's own memory, and its end (frees bg and what it allocated). */
struct httpd_pool *cache_background_pool(struct cache_req *bg);
void cache_background_end(struct cache_req *bg);

/* A request header the proxy must not pass on for this fetch (the client's validators and Range). */
bool cache_request_drops(const struct cache_req *cr, const char *name);
/* Header lines to add to the upstream request ("If-None-Match: ...\r\n"), or "". */
const char *cache_request_extra(const struct cache_req *cr);

/*
 * The upstream's head arrived: true when the cache answered from the store
 * instead (a 304 merged into the stored response, or a stale response for
 * a 5xx proxy_cache_use_stale or stale-if-error allows): the upstream's
 * body is not wanted.  Otherwise the proxy passes the response on; the
 * cache has added Cache-Status and the origin's Date, and keeps the body
 * if it may.
 */
bool cache_upstream_head(struct cache_req *cr, const struct proxy_head *head);

/* Body bytes as the client gets them, and the end (whole: every byte came). */
void cache_body(struct cache_req *cr, const char *data, size_t len);
void cache_body_end(struct cache_req *cr, bool whole);

/* The origin could not be reached (status 502 or 504): true when a stale response answered instead. */
bool cache_upstream_failed(struct cache_req *cr, int status);

#endif
