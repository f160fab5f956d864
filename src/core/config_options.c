#include "config_options.h"
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct config_source *origin_src;

void options_source_set(const struct config_source *src)
{
	origin_src = src;
}

/* An option table as a module built against minor 0 laid it out, before the minor 1 fields. */
struct httpd_option_v0 {
	const char                   *name;
	enum httpd_option_type        type;
	const char                   *def;
	unsigned                      flags;
	const struct httpd_option_v0 *section;
};

/* Entry i of a module's table, whatever minor version laid it out. */
static struct httpd_option option_at(const void *table, unsigned minor, size_t i)
{
	struct httpd_option o = { 0 };

	if (minor >= 1)
		return ((const struct httpd_option *)table)[i];
	{
		const struct httpd_option_v0 *v0 = &((const struct httpd_option_v0 *)table)[i];

		o.name = v0->name;
		o.type = v0->type;
		o.def = v0->def;
		o.flags = v0->flags;
		o.section = (const struct httpd_option *)(const void *)v0->section;
	}
	return o;
}

bool options_has(const struct httpd_option *opts, unsigned minor, const char *name)
{
	for (size_t i = 0;; i++) {
		struct httpd_option o = option_at(opts, minor, i);

		if (o.type == HTTPD_OPT_END)
			return false;
		if (o.name != NULL && strcmp(o.name, name) == 0)
			return true;
	}
}

static int row_from_option(const struct httpd_option *o, unsigned minor, struct directive *d,
                           struct option_arena *arena)
{
	static const enum directive_type types[] = {
		[HTTPD_OPT_STR] = DIRECTIVE_STR, [HTTPD_OPT_INT] = DIRECTIVE_INT, [HTTPD_OPT_BOOL] = DIRECTIVE_BOOL,
		[HTTPD_OPT_STR_LIST] = DIRECTIVE_LIST, [HTTPD_OPT_SECTION] = DIRECTIVE_BLOCK,
		[HTTPD_OPT_SIZE] = DIRECTIVE_SIZE, [HTTPD_OPT_DURATION] = DIRECTIVE_DURATION,
		[HTTPD_OPT_ENUM] = DIRECTIVE_ENUM, [HTTPD_OPT_EXPR] = DIRECTIVE_EXPR,
	};
	bool bounded = o->min != 0 || o->max != 0;

	/* A type newer than the minor the module was built against cannot be in its table. */
	if (o->name == NULL || o->type <= HTTPD_OPT_END || o->type > HTTPD_OPT_EXPR ||
	    (minor < 1 && o->type > HTTPD_OPT_SECTION) || (minor < 2 && o->type > HTTPD_OPT_ENUM) ||
	    (o->type == HTTPD_OPT_ENUM && o->words == NULL))
		return -1;
	memset(d, 0, sizeof(*d));
	d->name = o->name;
	d->where = DIRECTIVE_LOCATION;
	d->type = types[o->type];
	d->def = o->def;
	d->words = o->words;
	d->min = bounded ? o->min : o->type == HTTPD_OPT_INT ? INT64_MIN : 0;
	d->max = bounded ? o->max : INT64_MAX;
	if (o->type == HTTPD_OPT_STR_LIST)
		d->max = 0;
	if (o->type == HTTPD_OPT_SECTION) {
		d->flags = ((o->flags & HTTPD_OPT_MULTI) ? DIRECTIVE_MULTI : 0) |
		           ((o->flags & HTTPD_OPT_TITLED) ? DIRECTIVE_TITLED : 0);
		if (o->section == NULL || (d->block = options_rows(o->section, minor, arena)) == NULL)
			return -1;
	}
	return 0;
}

struct directive *options_rows(const struct httpd_option *opts, unsigned minor, struct option_arena *arena)
{
	size_t n = 0;
	struct directive *rows;

	while (option_at(opts, minor, n).type != HTTPD_OPT_END)
		n++;
	rows = calloc(n + 1, sizeof(*rows));
	if (rows == NULL)
		return NULL;
	{
		void **grown = realloc(arena->arrays, (arena->count + 1) * sizeof(*grown));

		if (grown == NULL) {
			free(rows);
			return NULL;
		}
		arena->arrays = grown;
		arena->arrays[arena->count++] = rows;
	}
	for (size_t i = 0; i < n; i++) {
		struct httpd_option o = option_at(opts, minor, i);

		if (row_from_option(&o, minor, &rows[i], arena) < 0)
			return NULL;
	}
	return rows;
}

int rows_union(struct directive **rows, size_t *count, const struct directive *src, unsigned where,
               const char **clash)
{
	for (const struct directive *d = src; d->name != NULL; d++) {
		size_t i;
		struct directive *grown;

		for (i = 0; i < *count; i++)
			if (strcmp((*rows)[i].name, d->name) == 0)
				break;
		if (i < *count) {
			if ((*rows)[i].type != d->type) {
				*clash = d->name;
				return -2;
			}
			continue;
		}
		grown = realloc(*rows, (*count + 2) * sizeof(**rows));
		if (grown == NULL)
			return -1;
		*rows = grown;
		(*rows)[*count] = *d;
		(*rows)[*count].where = where;
		(*count)++;
		memset(&(*rows)[*count], 0, sizeof(**rows));
	}
	return 0;
}

/*
 * libconfuse gives every single (not MULTI) section a default instance and
 * marks it modified in every block, written or not: such a section counts as
 * set only when something inside it was written.
 */
bool option_is_set(const cfg_opt_t *o)
{
	const cfg_t *section;

	if (o == NULL || !(o->flags & CFGF_MODIFIED))
		return false;
	if (o->type != CFGT_SEC || (o->flags & CFGF_MULTI))
		return true;
	section = o->nvalues > 0 && o->values[0] != NULL ? o->values[0]->section : NULL;
	if (section == NULL)
		return false;
	for (const cfg_opt_t *sub = section->opts; sub != NULL && sub->name != NULL; sub++)
		if (option_is_set(sub))
			return true;
	return false;
}

/* --- httpd_conf_*: a struct httpd_conf is a libconfuse section ----------- */

static cfg_t *sec(const struct httpd_conf *conf)
{
	return (cfg_t *)(uintptr_t)conf;
}

const char *httpd_conf_str(const struct httpd_conf *conf, const char *name)
{
	return cfg_getstr(sec(conf), name);
}

long httpd_conf_int(const struct httpd_conf *conf, const char *name)
{
	return cfg_getint(sec(conf), name);
}

int httpd_conf_bool(const struct httpd_conf *conf, const char *name)
{
	return cfg_getbool(sec(conf), name) ? 1 : 0;
}

int httpd_conf_is_set(const struct httpd_conf *conf, const char *name)
{
	return option_is_set(cfg_getopt(sec(conf), name));
}

int httpd_conf_size(const struct httpd_conf *conf, const char *name, uint64_t *out)
{
	const char *text = cfg_getstr(sec(conf), name);

	return text != NULL ? config_size_parse(text, out) : -1;
}

int httpd_conf_duration(const struct httpd_conf *conf, const char *name, uint64_t *ms)
{
	const char *text = cfg_getstr(sec(conf), name);

	return text != NULL ? config_duration_parse(text, ms) : -1;
}

int httpd_conf_enum(const struct httpd_conf *conf, const char *name)
{
	const char *text = cfg_getstr(sec(conf), name);
	const struct directive *d = directive_row_of((const cfg_t *)(const void *)conf, name);

	if (text == NULL || d == NULL || d->type != DIRECTIVE_ENUM)
		return -1;
	for (size_t i = 0; d->words[i] != NULL; i++)
		if (strcmp(d->words[i], text) == 0)
			return (int)i;
	return -1;
}

size_t httpd_conf_count(const struct httpd_conf *conf, const char *name)
{
	return cfg_size(sec(conf), name);
}

const char *httpd_conf_list_str(const struct httpd_conf *conf, const char *name, size_t i)
{
	return cfg_getnstr(sec(conf), name, (unsigned)i);
}

const struct httpd_conf *httpd_conf_section(const struct httpd_conf *conf, const char *name, size_t i)
{
	return (const struct httpd_conf *)cfg_getnsec(sec(conf), name, (unsigned)i);
}

const char *httpd_conf_title(const struct httpd_conf *conf)
{
	return cfg_title(sec(conf));
}

const char *httpd_conf_origin(const struct httpd_conf *conf, char *buf, size_t size)
{
	const char *file = "?";
	int line = 0;

	if (origin_src != NULL)
		config_source_origin(origin_src, sec(conf)->line, &file, &line);
	snprintf(buf, size, "%s:%d", file, line);
	return buf;
}
