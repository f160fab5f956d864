#include "mime.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd/module.h"

/* Open-addressing hash of lower-case extensions; built once in the master. */
struct mime_entry {
	char    *ext;     /* lower case */
	char    *type;
	uint32_t hash;    /* of ext: most probes end on a mismatch without a string compare */
	bool     compressible;
};

struct mime_table {
	struct mime_entry *entries;
	size_t             size;   /* power of two */
	size_t             used;
};

/* The table of the configuration this process serves. */
static const struct mime_table *current;

static const char default_type[] = "application/octet-stream";

/*
 * The entry httpd_mime_type last answered with, in this thread: the static
 * module asks whether that very type is compressible on every request, and
 * the answer was worked out once, when the table was loaded.
 */
static _Thread_local const struct mime_entry *last_entry;

static int type_compressible(const char *type);

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* Extensions are ASCII; the locale's tolower would only cost a call per byte. */
static uint32_t ext_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		h = (h ^ (uint32_t)(unsigned char)ascii_lower((char)c)) * 16777619u;
	}
	return h;
}

/* ext, in any case, is the lower-case entry's */
static bool ext_equal(const char *entry, const char *ext)
{
	while (*entry != '\0' && *entry == ascii_lower(*ext)) {
		entry++;
		ext++;
	}
	return *entry == '\0' && *ext == '\0';
}

static struct mime_entry *slot_find(struct mime_entry *t, size_t size, const char *ext, uint32_t hash)
{
	size_t i = hash & (size - 1);

	while (t[i].ext != NULL && (t[i].hash != hash || !ext_equal(t[i].ext, ext)))
		i = (i + 1) & (size - 1);
	return &t[i];
}

static int table_grow(struct mime_table *t)
{
	size_t new_size = t->size ? t->size * 2 : 1024;
	struct mime_entry *fresh = calloc(new_size, sizeof(*fresh));

	if (fresh == NULL)
		return -1;
	for (size_t i = 0; i < t->size; i++)
		if (t->entries[i].ext != NULL)
			*slot_find(fresh, new_size, t->entries[i].ext, t->entries[i].hash) = t->entries[i];
	free(t->entries);
	t->entries = fresh;
	t->size = new_size;
	return 0;
}

/* The first mention of an extension wins, as in nginx's types block. */
static int table_add(struct mime_table *t, const char *ext, const char *type)
{
	struct mime_entry *slot;

	if ((t->used + 1) * 2 > t->size && table_grow(t) < 0)
		return -1;
	slot = slot_find(t->entries, t->size, ext, ext_hash(ext));
	if (slot->ext != NULL)
		return 0;
	slot->hash = ext_hash(ext);
	slot->ext = strdup(ext);
	slot->type = strdup(type);
	if (slot->ext == NULL || slot->type == NULL) {
		free(slot->ext);
		free(slot->type);
		slot->ext = slot->type = NULL;
		return -1;
	}
	for (char *p = slot->ext; *p != '\0'; p++)
		*p = ascii_lower(*p);
	slot->compressible = type_compressible(slot->type) != 0;
	t->used++;
	return 0;
}

void mime_table_free(struct mime_table *t)
{
	if (t == NULL)
		return;
	if (current == t) {
		current = NULL;
		last_entry = NULL;
	}
	for (size_t i = 0; i < t->size; i++) {
		free(t->entries[i].ext);
		free(t->entries[i].type);
	}
	free(t->entries);
	free(t);
}

struct mime_table *mime_table_load(const char *path, char *err, size_t errlen)
{
	struct mime_table *t;
	FILE *fp = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	if (fp == NULL) {
		snprintf(err, errlen, "mime_types: cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		fclose(fp);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while (rc == 0 && getline(&line, &cap, fp) > 0) {
		char *save = NULL;
		char *type = strtok_r(line, " \t\r\n", &save);
		char *ext;

		if (type == NULL || type[0] == '#')
			continue;
		while ((ext = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
			if (table_add(t, ext, type) < 0) {
				rc = -1;
				break;
			}
		}
	}
	free(line);
	fclose(fp);
	if (rc < 0) {
		snprintf(err, errlen, "out of memory loading %s", path);
		mime_table_free(t);
		return NULL;
	}
	return t;
}

void mime_table_use(const struct mime_table *t)
{
	current = t;
	last_entry = NULL;
}

const char *httpd_mime_type(const char *filename)
{
	const char *slash = strrchr(filename, '/');
	const char *dot = strrchr(slash ? slash : filename, '.');
	struct mime_entry *slot;

	if (dot == NULL || dot[1] == '\0' || current == NULL || current->size == 0)
		return default_type;
	slot = slot_find(current->entries, current->size, dot + 1, ext_hash(dot + 1));
	if (slot->ext == NULL)
		return default_type;
	last_entry = slot;
	return slot->type;
}

/*
 * Worth compressing: text, and JSON, XML and JavaScript in any guise
 * (application/ld+json, image/svg+xml, text/javascript), and WebAssembly.
 * Media types are case-insensitive; parameters (";charset=...") do not count.
 */
int httpd_mime_compressible(const char *type)
{
	const struct mime_entry *e = last_entry;

	if (type == default_type)
		return 0;
	if (e != NULL && e->type == type)
		return e->compressible;
	return type_compressible(type);
}

static int type_compressible(const char *type)
{
	static const char ends[] = "; \t";
	const char *p = type + strcspn(type, "/; \t");

	if (*p != '/')
		return 0;
	if ((p - type == 4 && strncasecmp(type, "text", 4) == 0) ||
	    (strncasecmp(type, "application/wasm", 16) == 0 &&
	     (type[16] == '\0' || strchr(ends, type[16]) != NULL)))
		return 1;
	/* Only a 'j' or an 'x' can start a name that counts: skip to the next. */
	for (p++; *(p += strcspn(p, "jJxX; \t")) != '\0' && strchr(ends, *p) == NULL; p++)
		if (strncasecmp(p, "json", 4) == 0 || strncasecmp(p, "javascript", 10) == 0 ||
		    strncasecmp(p, "xml", 3) == 0)
			return 1;
	return 0;
}
