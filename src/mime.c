#include "mime.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd/module.h"

/* Open-addressing hash of lower-case extensions; built once in the master. */
struct mime_entry {
	char *ext;
	char *type;
};

static struct mime_entry *table;
static size_t table_size;   /* power of two */
static size_t table_used;

static const char default_type[] = "application/octet-stream";

static uint32_t ext_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (uint32_t)tolower((unsigned char)*s)) * 16777619u;
	return h;
}

static struct mime_entry *slot_find(struct mime_entry *t, size_t size, const char *ext)
{
	size_t i = ext_hash(ext) & (size - 1);

	while (t[i].ext != NULL && strcasecmp(t[i].ext, ext) != 0)
		i = (i + 1) & (size - 1);
	return &t[i];
}

static int table_grow(void)
{
	size_t new_size = table_size ? table_size * 2 : 1024;
	struct mime_entry *fresh = calloc(new_size, sizeof(*fresh));

	if (fresh == NULL)
		return -1;
	for (size_t i = 0; i < table_size; i++)
		if (table[i].ext != NULL)
			*slot_find(fresh, new_size, table[i].ext) = table[i];
	free(table);
	table = fresh;
	table_size = new_size;
	return 0;
}

/* The first mention of an extension wins, as in nginx's types block. */
static int table_add(const char *ext, const char *type)
{
	struct mime_entry *slot;

	if ((table_used + 1) * 2 > table_size && table_grow() < 0)
		return -1;
	slot = slot_find(table, table_size, ext);
	if (slot->ext != NULL)
		return 0;
	slot->ext = strdup(ext);
	slot->type = strdup(type);
	if (slot->ext == NULL || slot->type == NULL) {
		free(slot->ext);
		free(slot->type);
		slot->ext = slot->type = NULL;
		return -1;
	}
	table_used++;
	return 0;
}

void mime_free(void)
{
	for (size_t i = 0; i < table_size; i++) {
		free(table[i].ext);
		free(table[i].type);
	}
	free(table);
	table = NULL;
	table_size = table_used = 0;
}

int mime_load(const char *path)
{
	FILE *fp = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	if (fp == NULL) {
		httpd_log(HTTPD_LOG_ERR, "cannot open mime types file %s: %s", path, strerror(errno));
		return -1;
	}
	mime_free();
	while (getline(&line, &cap, fp) > 0) {
		char *save = NULL;
		char *type = strtok_r(line, " \t\r\n", &save);
		char *ext;

		if (type == NULL || type[0] == '#')
			continue;
		while ((ext = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
			if (table_add(ext, type) < 0) {
				rc = -1;
				break;
			}
		}
	}
	free(line);
	fclose(fp);
	if (rc < 0)
		httpd_log(HTTPD_LOG_ERR, "out of memory loading %s", path);
	return rc;
}

const char *httpd_mime_type(const char *filename)
{
	const char *slash = strrchr(filename, '/');
	const char *dot = strrchr(slash ? slash : filename, '.');
	struct mime_entry *slot;

	if (dot == NULL || dot[1] == '\0' || table_size == 0)
		return default_type;
	slot = slot_find(table, table_size, dot + 1);
	return slot->ext != NULL ? slot->type : default_type;
}
