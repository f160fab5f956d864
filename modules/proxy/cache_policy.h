/*
 * The rules of a shared HTTP cache (RFC 9111, with RFC 5861's stale
 * extensions), as pure functions over parsed values: what Cache-Control
 * says, whether a response may be stored, how long it stays fresh, how old
 * it is, and whether a stored response may answer a request now.  Times
 * are seconds since the epoch; headers are parsed by the caller.  The
 * cache itself (store, locking, revalidation) builds on these.
 */
#ifndef HTTPD_CACHE_POLICY_H
#define HTTPD_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A delta-seconds value that is absent. */
#define CACHE_UNSET (-1)
/* RFC 9111 §1.2.2: delta-seconds beyond 2^31 are taken as 2^31. */
#define CACHE_DELTA_MAX 2147483648LL

/*
 * Cache-Control, request or response (RFC 9111 §5.2).  Directive names
 * are case-insensitive; values may be tokens or quoted strings.  A
 * directive that appears twice, or an invalid delta-seconds, makes
 * `conflict` true: the response is then to be treated as stale (§4.2.1).
 */
struct cache_control {
	int64_t max_age, s_maxage;               /* CACHE_UNSET when absent */
	int64_t max_stale;                       /* request; CACHE_DELTA_MAX for "max-stale" with no value */
	int64_t min_fresh;                       /* request */
	int64_t stale_while_revalidate;          /* RFC 5861 */
	int64_t stale_if_error;                  /* RFC 5861, request or response */
	bool    no_store, no_cache, private_, public_;
	bool    must_revalidate, proxy_revalidate, immutable;
	bool    only_if_cached, no_transform, must_understand;
	bool    conflict;
};

void cache_control_init(struct cache_control *cc);
/* Adds one field line's directives (call once per Cache-Control line, in order). */
void cache_control_parse(struct cache_control *cc, const char *value);

/* What the cache knows of a response it received or stored. */
struct cache_response {
	int                  status;
	struct cache_control cc;
	bool                 has_expires;
	time_t               expires;          /* an invalid Expires counts as in the past (§5.3) */
	bool                 has_date;
	time_t               date;
	bool                 has_last_modified;
	time_t               last_modified;
	int64_t              age;              /* the Age field's value, CACHE_UNSET without one */
	bool                 vary_star;        /* Vary: * (never matches a later request) */
	time_t               request_time;     /* when the cache sent the request that got it */
	time_t               response_time;    /* when it arrived */
};

/* What the cache knows of a request. */
struct cache_request {
	bool                 get_or_head;      /* a method whose responses this cache stores */
	bool                 authorization;    /* the request carried Authorization */
	struct cache_control cc;
	bool                 pragma_no_cache;  /* Pragma: no-cache without Cache-Control (RFC 9111 §5.4 leaves it) */
};

/* Status codes heuristically cacheable (RFC 9110 §15.1). */
bool cache_status_heuristic(int status);

/*
 * RFC 9111 §3: may a shared cache store this response to this request?
 * (Partial content and the final checks of the store, such as size, are
 * the caller's.)
 */
bool cache_storable(const struct cache_request *req, const struct cache_response *res);

/*
 * §4.2.1: the freshness lifetime in seconds: s-maxage, else max-age, else
 * Expires minus Date, else 10% of Date minus Last-Modified (at most a day)
 * for a heuristically cacheable status, else 0.
 */
int64_t cache_freshness_lifetime(const struct cache_response *res);

/* §4.2.3: the current age of a stored response at now. */
int64_t cache_current_age(const struct cache_response *res, time_t now);

/* How a stored response may be used for a request now. */
enum cache_use {
	CACHE_USE_FRESH,          /* serve it */
	CACHE_USE_STALE_OK,       /* serve it stale: the client allows it (max-stale) */
	CACHE_USE_STALE_REVALIDATE_BACKGROUND,   /* stale-while-revalidate: serve it, revalidate once, in the background */
	CACHE_USE_REVALIDATE,     /* ask the origin (conditionally) first */
};

/*
 * §4 with the request's directives (§5.2.1: max-age, min-fresh,
 * max-stale, no-cache) and RFC 5861's stale-while-revalidate.  A response
 * that must be revalidated (no-cache, must-revalidate or
 * proxy-revalidate once stale, a conflict) is never served stale here.
 */
enum cache_use cache_decide(const struct cache_request *req, const struct cache_response *res, time_t now);

/*
 * RFC 5861 §4 and proxy_cache_use_stale: may a stale response answer when
 * the origin failed (an error, or a 5xx) at now?  Never past
 * must-revalidate or proxy-revalidate; within the response's or the
 * request's stale-if-error window, or always when use_stale_on_error.
 */
bool cache_stale_on_error(const struct cache_request *req, const struct cache_response *res, time_t now,
                          bool use_stale_on_error);

/*
 * RFC 9111 §3.1: a response field a cache never stores (Connection and the
 * fields it names, the hop-by-hop ones, Proxy-*); connection is the
 * response's Connection value, or NULL.
 */
bool cache_field_unstorable(const char *name, size_t len, const char *connection);

/*
 * RFC 9111 §3.2 and §4.3.4: whether a field of a 304 (or of a HEAD's 200)
 * replaces the stored response's fields of that name: every storable one
 * but those describing the stored body (Content-Length, Content-Encoding,
 * Content-MD5, Content-Range, ETag).
 */
bool cache_field_updates(const char *name, size_t len, const char *connection);

/*
 * RFC 9111 §4.4: a Location or Content-Location value of a response to an
 * unsafe method, as the path and query to invalidate when it names the
 * same origin (scheme and authority of the request, or a relative
 * reference): out gets "/path?query" (NUL-terminated) and true; false for
 * another origin, or when it does not fit.
 */
bool cache_invalidation_target(const char *value, const char *scheme, const char *authority, char *out,
                               size_t size);

/*
 * An Age field's value (RFC 9111 §5.1): its first member's leading digits
 * (taken even when something follows them: a malformed Age makes a response
 * older, never younger), capped at CACHE_DELTA_MAX; CACHE_UNSET when it does
 * not start with a digit ("abc", "-5"), which is ignored.
 */
int64_t cache_age_value(const char *value);

/* Weak comparison of etag against an If-None-Match list (RFC 9110 §13.1.2); "*" matches. */
bool cache_etag_listed(const char *list, const char *etag);

/*
 * A Range value against a body of len bytes, as a cache answers from its
 * store: one "bytes=" range (first-last, first-, -suffix) gives 1 and
 * [*first, *last]; several ranges, another unit or a malformed value give 0
 * (the whole answer, RFC 9110 §14.2 lets a server ignore Range);
 * -1 when it cannot be satisfied (416).
 */
int cache_byte_range(const char *range, uint64_t len, uint64_t *first, uint64_t *last);

/* The outcome a Cache-Status field (RFC 9211) reports. */
enum cache_status_kind {
	CACHE_STATUS_HIT,            /* served from the store */
	CACHE_STATUS_MISS,           /* fwd=miss */
	CACHE_STATUS_URI_MISS,       /* fwd=uri-miss: nothing stored for the key at all */
	CACHE_STATUS_VARY_MISS,      /* fwd=vary-miss: stored, not for these request fields */
	CACHE_STATUS_STALE,          /* fwd=stale: revalidated with the origin */
	CACHE_STATUS_REQUEST,        /* fwd=request: the client asked for the origin (no-cache, bypass) */
	CACHE_STATUS_BYPASS,         /* fwd=bypass: not a request this cache handles (method) */
};

/*
 * "prefork-httpd; hit; ttl=12" or "prefork-httpd; fwd=miss; stored" ...:
 * stored when the answer was kept, ttl (seconds of freshness left, may be
 * negative) when known (ttl_known), detail when not NULL (a token).  The
 * length written (NUL-terminated), or 0 when it does not fit.
 */
size_t cache_status_format(char *out, size_t size, enum cache_status_kind kind, bool stored, bool ttl_known,
                           int64_t ttl, const char *detail);

#endif
