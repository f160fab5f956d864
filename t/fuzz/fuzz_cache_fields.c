/*
 * libFuzzer: the request and response fields the proxy cache reads
 * (Cache-Control, Age, If-None-Match, Range, Location, and any field Vary
 * names), as a client or an origin may send them.  Every parser must stay
 * inside its input and its output, and what it answers must hold together.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache_entry.h"
#include "cache_policy.h"

static const char *field;

static const char *same_field(void *arg, const char *name, size_t len)
{
	(void)arg;
	(void)name;
	(void)len;
	return field;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), target[256], vary[512];
	struct cache_control cc;
	uint64_t first = 0, last = 0;
	int64_t age;
	int range;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	cache_control_init(&cc);
	cache_control_parse(&cc, text);
	if ((cc.max_age != CACHE_UNSET && (cc.max_age < 0 || cc.max_age > CACHE_DELTA_MAX)) ||
	    (cc.s_maxage != CACHE_UNSET && (cc.s_maxage < 0 || cc.s_maxage > CACHE_DELTA_MAX)))
		__builtin_trap();
	age = cache_age_value(text);
	if (age != CACHE_UNSET && (age < 0 || age > CACHE_DELTA_MAX))
		__builtin_trap();
	(void)cache_etag_listed(text, "\"a\"");
	(void)cache_etag_listed("\"a\", W/\"b\"", text);
	range = cache_byte_range(text, 1000, &first, &last);
	if (range == 1 && (first > last || last >= 1000))
		__builtin_trap();
	if (cache_invalidation_target(text, "http", "a.test", target, sizeof(target)) &&
	    (target[0] != '/' || strlen(target) >= sizeof(target)))
		__builtin_trap();
	field = text;
	{
		long n = cache_vary_values("Foo, Accept-Language", same_field, NULL, vary, sizeof(vary));

		if (n >= (long)sizeof(vary) || (n >= 0 && vary[n] != '\0'))
			__builtin_trap();
	}
	free(text);
	return 0;
}
