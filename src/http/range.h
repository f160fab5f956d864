/* Range requests (RFC 9110 §14): parsing a Range header against a size. */
#ifndef HTTPD_RANGE_H
#define HTTPD_RANGE_H

#include <stddef.h>
#include <stdint.h>

struct byte_range {
	uint64_t first;   /* inclusive */
	uint64_t last;    /* inclusive */
};

/* More ranges than this after merging are answered with the whole file. */
#define RANGE_MAX 16

enum range_result {
	RANGE_IGNORE,        /* not a usable byte range: send 200 with the whole representation */
	RANGE_OK,            /* *count ranges, sorted, merged, within the size */
	RANGE_UNSATISFIABLE, /* 416 with Content-Range: bytes * /size */
};

/*
 * Parses value ("bytes=0-99,200-") for a representation of size bytes into
 * out[RANGE_MAX].  Malformed headers and other units are ignored (§14.2);
 * overlapping and nearby ranges are merged, and a header asking for many
 * or overlapping pieces (CVE-2011-3192) degrades to the whole file.
 */
enum range_result range_parse(const char *value, uint64_t size, struct byte_range *out, size_t *count);

#endif
