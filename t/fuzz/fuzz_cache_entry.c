/*
 * libFuzzer: what the proxy cache may find in a file of its store (a
 * damaged disk, another program's file).  The head parser must refuse it
 * or read it without reaching past the head, and what it reads must write
 * back to the same head.
 */
#include <stdint.h>
#include <string.h>

#include "cache_entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t again[CACHE_ENTRY_HEAD_MAX];
	struct cache_field fields[CACHE_ENTRY_FIELDS_MAX];
	struct cache_entry_meta m;
	size_t head = cache_meta_parse(data, size, &m, fields, CACHE_ENTRY_FIELDS_MAX);

	if (head == 0)
		return 0;
	if (head > size || (const uint8_t *)m.key + m.key_len > data + head ||
	    (const uint8_t *)m.vary + m.vary_len > data + head)
		__builtin_trap();
	for (size_t i = 0; i < m.field_count; i++)
		if ((const uint8_t *)m.fields[i].value + m.fields[i].value_len > data + head)
			__builtin_trap();
	/* What was read is what would be written. */
	if (cache_meta_write(&m, again, sizeof(again)) != head || memcmp(again, data, head) != 0)
		__builtin_trap();
	return 0;
}
