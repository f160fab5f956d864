#include "range.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Specs parsed at most: a longer header is an attack or a bug, not a need. */
#define RANGE_SPECS_MAX 100
/* Ranges closer than this are merged: a separate part costs more than the gap. */
#define RANGE_MERGE_GAP 80

static bool number_parse(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return true;
}

static void skip_ows(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

static int range_cmp(const void *a, const void *b)
{
	const struct byte_range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

enum range_result range_parse(const char *value, uint64_t size, struct byte_range *out, size_t *count)
{
	struct byte_range specs[RANGE_SPECS_MAX];
	size_t n = 0, merged = 0;
	bool any_spec = false;
	const char *p = value;

	*count = 0;
	if (strncasecmp(p, "bytes=", 6) != 0)
		return RANGE_IGNORE;
	p += 6;
	for (;;) {
		uint64_t first, last;

		skip_ows(&p);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '\0')
			break;
		if (*p == '-') {
			/* suffix-range: the last N bytes */
			p++;
			if (!number_parse(&p, &last))
				return RANGE_IGNORE;
			any_spec = true;
			if (last > 0 && size > 0) {
				first = last >= size ? 0 : size - last;
				last = size - 1;
			} else {
				first = 1, last = 0;   /* unsatisfiable, kept out below */
			}
		} else {
			if (!number_parse(&p, &first) || *p++ != '-')
				return RANGE_IGNORE;
			if (*p >= '0' && *p <= '9') {
				if (!number_parse(&p, &last) || last < first)
					return RANGE_IGNORE;   /* §14.1.1: invalid, so the header is ignored */
			} else {
				last = UINT64_MAX;
			}
			any_spec = true;
			if (last >= size)
				last = size - 1;       /* clamp to the end; size 0 makes it unsatisfiable */
		}
		skip_ows(&p);
		if (*p != ',' && *p != '\0')
			return RANGE_IGNORE;
		if (first < size && first <= last) {
			if (n == RANGE_SPECS_MAX)
				return RANGE_IGNORE;
			specs[n].first = first;
			specs[n].last = last;
			n++;
		}
	}
	if (!any_spec)
		return RANGE_IGNORE;
	if (n == 0)
		return RANGE_UNSATISFIABLE;

	/* Sort and merge so a response can never be larger than the file plus framing. */
	qsort(specs, n, sizeof(specs[0]), range_cmp);
	for (size_t i = 0; i < n; i++) {
		if (merged > 0 && specs[i].first <= out[merged - 1].last + RANGE_MERGE_GAP) {
			if (specs[i].last > out[merged - 1].last)
				out[merged - 1].last = specs[i].last;
			continue;
		}
		if (merged == RANGE_MAX)
			return RANGE_IGNORE;
		out[merged++] = specs[i];
	}
	*count = merged;
	return RANGE_OK;
}
