/*
 * A stored response as the cache keeps it on disk: a metadata head (key,
 * times, status, the response's fields, the request's values of the
 * fields its Vary names) followed by the body.  The head is written and
 * read with every length checked, so a damaged or foreign file is refused,
 * never trusted.  Also: the secondary key of a response with Vary
 * (RFC 9111 §4.1).  Pure functions, no I/O.
 */
#ifndef HTTPD_CACHE_ENTRY_H
#define HTTPD_CACHE_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_ENTRY_MAGIC      "PHC1"
#define CACHE_ENTRY_FIELDS_MAX 256
#define CACHE_ENTRY_HEAD_MAX   (256 * 1024)   /* a head this large is not a response we stored */

struct cache_field {
	const char *name, *value;
	size_t      name_len, value_len;
};

struct cache_entry_meta {
	uint8_t             hash[32];        /* of the key with its variant (the file's name) */
	int64_t             request_time, response_time;   /* response_time 0: still arriving (a published .part) */
	uint64_t            body_len;
	int                 status;
	const char         *key;             /* the cache key's text, to tell hash collisions apart */
	size_t              key_len;
	const char         *vary;            /* cache_vary_values of the request it answered, "" without Vary */
	size_t              vary_len;
	struct cache_field *fields;
	size_t              field_count;
};

/* Bytes the head of m takes (the body starts there), or 0 when m is too large to store. */
size_t cache_meta_size(const struct cache_entry_meta *m);

/* Writes m's head into buf: its size, or 0 when buf is too small or m too large. */
size_t cache_meta_write(const struct cache_entry_meta *m, uint8_t *buf, size_t size);

/*
 * Reads a head from buf[0..len): its size (where the body starts), or 0 when
 * it is not a whole, valid head.  The strings of *m point into buf; fields
 * go into the caller's array of max (at most CACHE_ENTRY_FIELDS_MAX).
 */
size_t cache_meta_parse(const uint8_t *buf, size_t len, struct cache_entry_meta *m, struct cache_field *fields,
                        size_t max);

/* A request header's values for cache_vary_values: all its field lines, or NULL without any. */
typedef const char *(*cache_header_fn)(void *arg, const char *name, size_t name_len);

/*
 * The secondary key of a request for a response with Vary (RFC 9111 §4.1):
 * for each field name Vary lists, in order, "name:value\n" with the name in
 * lower case and the value normalised: its list members trimmed and joined
 * by ",", runs of spaces and tabs inside one made one space (absent: empty);
 * Accept-Language's members case-folded and sorted, since neither their
 * order nor their case means anything.  Writes at most size
 * bytes (NUL-terminated); returns the length, or -1 when it does not fit
 * or Vary is "*" (which no later request matches).
 */
long cache_vary_values(const char *vary, cache_header_fn header, void *arg, char *out, size_t size);

#endif
