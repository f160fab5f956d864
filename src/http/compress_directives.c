/*
 * The compression directives: compress, compress_level,
 * compress_min_length, compress_types, and gzip, gzip_level and
 * gzip_min_length (gzip = true is compress = {"gzip"}).  A location that
 * compresses gets a struct compress_conf, its codings' modules loaded.
 */
#include "compress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "module.h"

#define TOP DIRECTIVE_TOP
#define SERVER DIRECTIVE_SERVER
#define LOCATION DIRECTIVE_LOCATION
#define ANYWHERE (TOP | SERVER | LOCATION)

/* Levels each coding's library takes, and the default when compress_level names none. */
static const struct { int min, max, def; } levels[CODING_COUNT] = {
	[CODING_GZIP] = { 1, 9, 6 },    /* zlib */
	[CODING_BR]   = { 0, 11, 5 },   /* brotli quality: 5 is what CDNs use on the fly */
	[CODING_ZSTD] = { 1, 19, 3 },   /* zstd's default; 20-22 need large windows */
};

static int coding_check(const char *text, char *err, size_t errlen)
{
	if (coding_by_name(text, strlen(text)) < 0 || strcasecmp(text, "x-gzip") == 0) {
		snprintf(err, errlen, "\"%s\" is not a coding this server makes (zstd, br, gzip)", text);
		return -1;
	}
	return 0;
}

/* "br 5": a coding and its level, within what its library takes. */
static int level_parse(const char *text, int *coding, int *level, char *err, size_t errlen)
{
	const char *space = strchr(text, ' ');
	char *end;
	long v;

	*coding = space != NULL ? coding_by_name(text, (size_t)(space - text)) : -1;
	if (*coding < 0 || (space - text == 6 && strncasecmp(text, "x-gzip", 6) == 0)) {
		snprintf(err, errlen, "\"%s\" is not CODING LEVEL (\"zstd 3\", \"br 5\", \"gzip 6\")", text);
		return -1;
	}
	v = strtol(space + 1, &end, 10);
	if (end == space + 1 || *end != '\0' || v < levels[*coding].min || v > levels[*coding].max) {
		snprintf(err, errlen, "\"%s\": the level of %s must be from %d to %d", text, coding_name(*coding),
		         levels[*coding].min, levels[*coding].max);
		return -1;
	}
	*level = (int)v;
	return 0;
}

static int level_check(const char *text, char *err, size_t errlen)
{
	int coding, level;

	return level_parse(text, &coding, &level, err, errlen);
}

/* A media range: "*", "type/subtype", or a type and a star for any subtype; no parameters. */
static int type_check(const char *text, char *err, size_t errlen)
{
	const char *slash = strchr(text, '/');

	if (strcmp(text, "*") == 0)
		return 0;
	if (slash == NULL || slash == text || slash[1] == '\0' || strchr(slash + 1, '/') != NULL ||
	    strpbrk(text, " \t;,") != NULL || (strchr(text, '*') != NULL && strcmp(slash + 1, "*") != 0)) {
		snprintf(err, errlen, "\"%s\" is not a media type (\"text/html\", \"text/*\", \"*\")", text);
		return -1;
	}
	return 0;
}

/* compress (or gzip = true): the codings offered here, their modules loaded now. */
static int compress_build(const struct directive_use *use)
{
	struct httpd_location *loc = use->location;
	size_t n = httpd_conf_count(use->from, "compress");
	struct compress_conf *cc;

	loc->compress = NULL;
	if (n == 0 && !loc->gzip)
		return 0;
	cc = config_calloc(use->config, 1, sizeof(*cc));
	if (cc == NULL)
		return -1;
	if (n == 0)
		cc->order[cc->count++] = CODING_GZIP;
	for (size_t i = 0; i < n; i++) {
		const char *name = httpd_conf_list_str(use->from, "compress", i);
		int c = coding_by_name(name, strlen(name));   /* checked while parsing */

		for (size_t j = 0; j < cc->count; j++)
			if (cc->order[j] == (enum coding)c) {
				config_error(use->file, use->line, "compress: \"%s\" is listed twice", name);
				return -1;
			}
		cc->order[cc->count++] = (enum coding)c;
	}
	for (size_t i = 0; i < cc->count; i++) {
		char err[1024];

		cc->mod[i] = module_load(use->config->module_dir, coding_module(cc->order[i]), err, sizeof(err));
		if (cc->mod[i] == NULL || cc->mod[i]->api.coding == NULL ||
		    strcmp(cc->mod[i]->api.coding, coding_name(cc->order[i])) != 0) {
			config_error(use->file, use->line, "compress: \"%s\" needs the module %s: %s", coding_name(cc->order[i]),
			             coding_module(cc->order[i]), cc->mod[i] == NULL ? err : "it makes another coding");
			return -1;
		}
	}
	for (int c = 0; c < CODING_COUNT; c++)
		cc->level[c] = c == CODING_GZIP ? loc->gzip_level : levels[c].def;
	loc->compress = cc;
	return 0;
}

static int compress_level_build(const struct directive_use *use)
{
	struct compress_conf *cc = use->location->compress;
	size_t n = httpd_conf_count(use->from, "compress_level");

	for (size_t i = 0; cc != NULL && i < n; i++) {
		int coding, level;
		char err[256];

		if (level_parse(httpd_conf_list_str(use->from, "compress_level", i), &coding, &level, err,
		                sizeof(err)) == 0)
			cc->level[coding] = level;
	}
	return 0;
}

static int compress_min_length_build(const struct directive_use *use)
{
	struct httpd_location *loc = use->location;

	if (loc->compress != NULL)
		loc->compress->min_length = use->set ? loc->compress_min_length : loc->gzip_min_length;
	return 0;
}

static int compress_types_build(const struct directive_use *use)
{
	struct compress_conf *cc = use->location->compress;
	size_t n = httpd_conf_count(use->from, "compress_types");

	if (cc == NULL || n == 0)
		return 0;
	cc->types = config_calloc(use->config, n, sizeof(*cc->types));
	if (cc->types == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		cc->types[i] = (char *)(uintptr_t)httpd_conf_list_str(use->from, "compress_types", i);
	cc->type_count = n;
	return 0;
}

/* Order matters: compress reads gzip's rows, the rows after it fill what compress made. */
static const struct directive compress_rows[] = {
	{ "gzip", ANYWHERE, DIRECTIVE_BOOL, "false", DIRECTIVE_LOCATION_AT(gzip) },
	{ "gzip_level", ANYWHERE, DIRECTIVE_INT, "6", 1, 9, DIRECTIVE_LOCATION_AT(gzip_level) },
	{ "gzip_min_length", ANYWHERE, DIRECTIVE_SIZE, "1024", 0, INT64_MAX, DIRECTIVE_LOCATION_AT(gzip_min_length) },
	{ "compress", ANYWHERE, DIRECTIVE_LIST, "{}", 0, CODING_COUNT, .check = coding_check,
	  .store = DIRECTIVE_IN_LOCATION, .build = compress_build },
	{ "compress_level", ANYWHERE, DIRECTIVE_LIST, "{}", 0, CODING_COUNT, .check = level_check,
	  .store = DIRECTIVE_IN_LOCATION, .build = compress_level_build },
	{ "compress_min_length", ANYWHERE, DIRECTIVE_SIZE, "1024", 0, INT64_MAX,
	  DIRECTIVE_LOCATION_AT(compress_min_length), .build = compress_min_length_build },
	{ "compress_types", ANYWHERE, DIRECTIVE_LIST, "{}", 0, 0, .check = type_check,
	  .store = DIRECTIVE_IN_LOCATION, .build = compress_types_build },
	{ .name = NULL },
};

const struct directive_table compress_directives = { "compress", compress_rows, NULL, NULL };
