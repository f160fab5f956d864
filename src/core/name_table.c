#include "name_table.h"

#include <stdlib.h>
#include <string.h>

int name_table_init(struct name_table *t, size_t names)
{
	size_t size = 8;

	memset(t, 0, sizeof(*t));
	while (size < 2 * names)
		size *= 2;
	t->slots = calloc(size, sizeof(*t->slots));
	if (t->slots == NULL)
		return -1;
	t->mask = size - 1;
	siphash_key_random(&t->key);
	return 0;
}

static uint64_t length_bit(size_t len)
{
	return (uint64_t)1 << (len < 63 ? len : 63);
}

int name_table_add(struct name_table *t, const char *name, size_t len, const void *value)
{
	uint64_t hash = siphash13(&t->key, name, len);

	for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
		struct name_slot *s = &t->slots[i];

		if (s->name == NULL) {
			*s = (struct name_slot){ name, len, hash, value };
			t->count++;
			t->lengths |= length_bit(len);
			return 0;
		}
		if (s->hash == hash && s->len == len && memcmp(s->name, name, len) == 0)
			return 1;
	}
}

const void *name_table_find(const struct name_table *t, const char *name, size_t len)
{
	uint64_t hash;

	/* routing probes every prefix of a path: most lengths hold no name at all */
	if ((t->lengths & length_bit(len)) == 0)
		return NULL;
	hash = siphash13(&t->key, name, len);
	/* At most half full: an empty slot ends every probe. */
	for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
		const struct name_slot *s = &t->slots[i];

		if (s->name == NULL)
			return NULL;
		if (s->hash == hash && s->len == len && memcmp(s->name, name, len) == 0)
			return s->value;
	}
}

void name_table_free(struct name_table *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}
