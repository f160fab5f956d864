/*
 * A read-only table from names (bytes) to pointers, built once when the
 * configuration loads: server names to servers, location paths to
 * locations.  Open addressing, hashed with SipHash under a key drawn per
 * table, so names a client sends cannot be chosen to collide.
 */
#ifndef HTTPD_NAME_TABLE_H
#define HTTPD_NAME_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "siphash.h"

struct name_slot {
	const char *name;     /* NULL: empty */
	size_t      len;
	uint64_t    hash;
	const void *value;
};

struct name_table {
	struct name_slot  *slots;
	size_t             mask;    /* slots - 1; a power of two at least twice the names */
	size_t             count;
	uint64_t           lengths;   /* bit min(len, 63) set for each name: most misses cost no hash */
	struct siphash_key key;
};

/* Room for up to names entries; -1 out of memory. */
int name_table_init(struct name_table *t, size_t names);
/* Adds name[0..len) (kept by pointer, not copied) -> value; the first value of a name stays.  1 when it was there. */
int name_table_add(struct name_table *t, const char *name, size_t len, const void *value);
/* The value of name[0..len), or NULL. */
const void *name_table_find(const struct name_table *t, const char *name, size_t len);
void name_table_free(struct name_table *t);

#endif
