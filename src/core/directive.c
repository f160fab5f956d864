#include "directive_schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "config.h"
#include "directive_schema.h"

/* --- values ----------------------------------------------------------------- */

/* The decimal number *p starts with, at most max; *p is left after it.  -1 without a digit or above max. */
static int number_parse(const char **p, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (**p < '0' || **p > '9')
		return -1;
	for (; **p >= '0' && **p <= '9'; (*p)++) {
		if (v > (max - (uint64_t)(**p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(**p - '0');
	}
	*out = v;
	return 0;
}

int config_size_parse(const char *text, uint64_t *out)
{
	uint64_t v, mult = 1;
	const char *p = text;

	if (number_parse(&p, UINT64_MAX, &v) < 0)
		return -1;
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': mult = 1024; p++; break;
	case 'm': case 'M': mult = 1024 * 1024; p++; break;
	case 'g': case 'G': mult = 1024 * 1024 * 1024; p++; break;
	default: return -1;
	}
	if (*p != '\0' || v > (uint64_t)INT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int config_duration_parse(const char *text, uint64_t *ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t v;
	const char *p = text;

	if (number_parse(&p, UINT64_MAX, &v) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(p, units[i].unit) == 0) {
			if (v > (uint64_t)INT64_MAX / units[i].ms)
				return -1;
			*ms = v * units[i].ms;
			return 0;
		}
	return -1;
}

int config_rate_parse(const char *text, uint64_t *per_ks)
{
	uint64_t n;
	const char *p = text;

	if (number_parse(&p, 10000000, &n) < 0 || n == 0)
		return -1;
	if (strcmp(p, "r/s") == 0)
		*per_ks = n * 1000;
	else if (strcmp(p, "r/m") == 0)
		*per_ks = n * 1000 / 60 > 0 ? n * 1000 / 60 : 1;
	else
		return -1;
	return 0;
}

/* "16k" for a bound in bytes, "30s" or "500ms" for one in milliseconds: as the operator writes them. */
static void bound_text(const struct directive *d, int64_t v, char *out, size_t size)
{
	if (d->type == DIRECTIVE_SIZE && v > 0 && v % (1024 * 1024 * 1024) == 0)
		snprintf(out, size, "%lldg", (long long)(v / (1024 * 1024 * 1024)));
	else if (d->type == DIRECTIVE_SIZE && v > 0 && v % (1024 * 1024) == 0)
		snprintf(out, size, "%lldm", (long long)(v / (1024 * 1024)));
	else if (d->type == DIRECTIVE_SIZE && v > 0 && v % 1024 == 0)
		snprintf(out, size, "%lldk", (long long)(v / 1024));
	else if (d->type == DIRECTIVE_DURATION && v % 1000 == 0)
		snprintf(out, size, "%llds", (long long)(v / 1000));
	else if (d->type == DIRECTIVE_DURATION)
		snprintf(out, size, "%lldms", (long long)v);
	else
		snprintf(out, size, "%lld", (long long)v);
}

static int bounds_check(const struct directive *d, int64_t v, char *err, size_t errlen)
{
	char lo[32], hi[32];

	if (v >= d->min && v <= d->max)
		return 0;
	bound_text(d, d->min, lo, sizeof(lo));
	bound_text(d, d->max, hi, sizeof(hi));
	snprintf(err, errlen, "%s must be from %s to %s", d->name, lo, hi);
	return -1;
}

static void words_list(const char *const *words, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; words[i] != NULL && used < size; i++) {
		int n = snprintf(out + used, size - used, "%s\"%s\"", i == 0 ? "" : words[i + 1] == NULL ? " or " : ", ",
		                 words[i]);
		if (n < 0)
			return;
		used += (size_t)n;
	}
}

static int (*expr_checker)(const char *text, char *err, size_t errlen);

void directive_expr_checker_set(int (*check)(const char *text, char *err, size_t errlen))
{
	expr_checker = check;
}

/* A check's reason names its directive, as every other message does. */
static int checked(const struct directive *d, const char *text, char *err, size_t errlen)
{
	char why[512];
	size_t len = strlen(d->name);

	if (d->check == NULL || d->check(text, why, sizeof(why)) == 0)
		return 0;
	if (strncmp(why, d->name, len) == 0 && (why[len] == ':' || why[len] == ' '))
		snprintf(err, errlen, "%s", why);
	else
		snprintf(err, errlen, "%s: %s", d->name, why);
	return -1;
}

int directive_value_parse(const struct directive *d, const char *text, int64_t *out, char *err, size_t errlen)
{
	uint64_t v;
	char list[256];

	*out = 0;
	switch (d->type) {
	case DIRECTIVE_STR:
	case DIRECTIVE_LIST:
		return checked(d, text, err, errlen);
	case DIRECTIVE_EXPR: {
		char why[512];

		if (expr_checker != NULL && expr_checker(text, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: %s", d->name, why);
			return -1;
		}
		return checked(d, text, err, errlen);
	}
	case DIRECTIVE_PATH:
		if (text[0] != '/') {
			snprintf(err, errlen, "%s must be an absolute path, not \"%s\"", d->name, text);
			return -1;
		}
		return checked(d, text, err, errlen);
	case DIRECTIVE_SIZE:
		if (config_size_parse(text, &v) < 0) {
			snprintf(err, errlen, "%s: \"%s\" is not a size (a number, optionally with k, m or g)", d->name, text);
			return -1;
		}
		*out = (int64_t)v;
		return bounds_check(d, *out, err, errlen);
	case DIRECTIVE_DURATION:
		if (config_duration_parse(text, &v) < 0) {
			snprintf(err, errlen, "%s: \"%s\" is not a duration (seconds, or a number with ms, s, m, h or d)",
			         d->name, text);
			return -1;
		}
		*out = (int64_t)v;
		return bounds_check(d, *out, err, errlen);
	case DIRECTIVE_ENUM:
		for (size_t i = 0; d->words[i] != NULL; i++)
			if (strcmp(text, d->words[i]) == 0) {
				*out = (int64_t)i;
				return 0;
			}
		words_list(d->words, list, sizeof(list));
		snprintf(err, errlen, "%s must be %s, not \"%s\"", d->name, list, text);
		return -1;
	case DIRECTIVE_RATE:
		if (config_rate_parse(text, &v) < 0) {
			snprintf(err, errlen, "%s: \"%s\" is not a rate (\"10r/s\", \"30r/m\")", d->name, text);
			return -1;
		}
		*out = (int64_t)v;
		return 0;
	case DIRECTIVE_CIDR_LIST: {
		struct cidr c;

		if (cidr_parse(text, &c) < 0) {
			snprintf(err, errlen, "%s: \"%s\" is not an address or CIDR block", d->name, text);
			return -1;
		}
		return 0;
	}
	case DIRECTIVE_INT: {
		char *end;
		long long n;

		errno = 0;
		n = strtoll(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0') {
			snprintf(err, errlen, "%s: \"%s\" is not a number", d->name, text);
			return -1;
		}
		*out = n;
		return bounds_check(d, n, err, errlen);
	}
	case DIRECTIVE_BOOL:
		if (strcmp(text, "true") == 0 || strcmp(text, "on") == 0 || strcmp(text, "yes") == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(text, "false") == 0 || strcmp(text, "off") == 0 || strcmp(text, "no") == 0)
			return 0;
		snprintf(err, errlen, "%s must be true or false, not \"%s\"", d->name, text);
		return -1;
	case DIRECTIVE_BLOCK:
	case DIRECTIVE_FUNC:
		break;
	}
	snprintf(err, errlen, "%s takes no value", d->name);
	return -1;
}

/* --- the rows of one configuration ------------------------------------------ */

static const struct directive_table *const *tables;
static size_t table_count;

void directive_tables_set(const struct directive_table *const *t, size_t count)
{
	tables = t;
	table_count = count;
}

size_t directive_table_count(void)
{
	return table_count;
}

const struct directive_table *directive_table_at(size_t i)
{
	return i < table_count ? tables[i] : NULL;
}

/* Rows of the load in progress, by level, with the modules' own: what the validators look up. */
static const struct directive_rowset *active;

void directive_rowset_activate(const struct directive_rowset *set)
{
	active = set;
}

/* The row of name (that may stand at level, unless level is 0). */
static const struct directive *rows_find(const struct directive *rows, const char *name, unsigned level)
{
	for (const struct directive *d = rows; d != NULL && d->name != NULL; d++)
		if (strcmp(d->name, name) == 0 && (level == 0 || (d->where & level)))
			return d;
	return NULL;
}

/* The row of name at level, among the tables' rows and then the modules' (for level). */
static const struct directive *row_at_level(const struct directive_rowset *set, unsigned level, const char *name)
{
	const struct directive *d;

	for (size_t i = 0; i < table_count; i++)
		if ((d = rows_find(tables[i]->rows, name, level)) != NULL)
			return d;
	if (set == NULL)
		return NULL;
	if (level == DIRECTIVE_LOCATION)
		return rows_find(set->location_module_rows, name, 0);
	if (level == DIRECTIVE_TOP)
		return rows_find(set->top_module_rows, name, 0);
	return NULL;
}

/* A block's rows (limit_req_zone, a module's "upstream"): found by the block's name. */
static const struct directive *block_rows_find(const struct directive *rows, const char *block)
{
	for (const struct directive *d = rows; d != NULL && d->name != NULL; d++) {
		const struct directive *inner;

		if (d->type != DIRECTIVE_BLOCK)
			continue;
		if (strcmp(d->name, block) == 0)
			return d->block;
		if ((inner = block_rows_find(d->block, block)) != NULL)
			return inner;
	}
	return NULL;
}

static const struct directive *row_for(const cfg_t *sec, const char *name)
{
	const struct directive *rows;
	unsigned level;

	if (strcmp(sec->name, "location") == 0)
		level = DIRECTIVE_LOCATION;
	else if (strcmp(sec->name, "server") == 0)
		level = DIRECTIVE_SERVER;
	else if (strcmp(sec->name, "root") == 0)
		level = DIRECTIVE_TOP;
	else {
		for (size_t i = 0; i < table_count; i++)
			if ((rows = block_rows_find(tables[i]->rows, sec->name)) != NULL)
				return rows_find(rows, name, 0);
		if (active != NULL && ((rows = block_rows_find(active->location_module_rows, sec->name)) != NULL ||
		                       (rows = block_rows_find(active->top_module_rows, sec->name)) != NULL))
			return rows_find(rows, name, 0);
		return NULL;
	}
	return row_at_level(active, level, name);
}

const struct directive *directive_table_row(unsigned level, const char *name)
{
	return row_at_level(NULL, level, name);
}

const struct directive *directive_row_of(const cfg_t *sec, const char *name)
{
	return row_for(sec, name);
}

/* --- where each directive was written -------------------------------------- */

struct directive_line {
	const cfg_t *sec;
	const char  *name;
	int          line;
};
static struct directive_line *lines;
static size_t line_count, line_cap;

void directive_lines_reset(void)
{
	free(lines);
	lines = NULL;
	line_count = line_cap = 0;
}

static void line_note(const cfg_t *sec, const char *name, int line)
{
	if (line_count == line_cap) {
		size_t cap = line_cap ? line_cap * 2 : 64;
		struct directive_line *grown = realloc(lines, cap * sizeof(*grown));

		if (grown == NULL)
			return;   /* the message then names the block's line: worse, not wrong */
		lines = grown;
		line_cap = cap;
	}
	lines[line_count++] = (struct directive_line){ sec, name, line };
}

int directive_line(const cfg_t *sec, const char *name)
{
	for (size_t i = line_count; i > 0; i--)
		if (lines[i - 1].sec == sec && strcmp(lines[i - 1].name, name) == 0)
			return lines[i - 1].line;
	return 0;
}

/* --- the schema ---------------------------------------------------------------- */

/* Every value written is checked against its row while libconfuse parses, so cfg->line is its own. */
static int row_validate(cfg_t *cfg, cfg_opt_t *opt)
{
	const struct directive *d = row_for(cfg, opt->name);
	char err[512];
	int64_t v;

	line_note(cfg, opt->name, cfg->line);
	if (d == NULL)
		return 0;
	if ((d->type == DIRECTIVE_LIST || d->type == DIRECTIVE_CIDR_LIST) && d->max > 0 &&
	    cfg_opt_size(opt) > (unsigned)d->max) {
		cfg_error(cfg, "%s: at most %lld items", d->name, (long long)d->max);
		return -1;
	}
	for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
		char number[32];
		const char *text;

		if (d->type == DIRECTIVE_BOOL || d->type == DIRECTIVE_BLOCK || d->type == DIRECTIVE_FUNC)
			break;
		if (opt->type == CFGT_INT) {
			snprintf(number, sizeof(number), "%ld", cfg_opt_getnint(opt, i));
			text = number;
		} else {
			text = cfg_opt_getnstr(opt, i);
		}
		if (text == NULL)
			continue;
		if (directive_value_parse(d, text, &v, err, sizeof(err)) < 0) {
			bool in_block = strcmp(cfg->name, "root") != 0 && strcmp(cfg->name, "server") != 0 &&
			                strcmp(cfg->name, "location") != 0;

			/* Inside limit_req_zone "api" { ... }: the block says which. */
			if (in_block && cfg->title != NULL)
				cfg_error(cfg, "%s \"%s\": %s", cfg->name, cfg->title, err);
			else
				cfg_error(cfg, "%s", err);
			return -1;
		}
	}
	return 0;
}

static int row_func(cfg_t *cfg, cfg_opt_t *opt, int argc, const char **argv)
{
	const struct directive *d = row_for(cfg, opt->name);
	const char *file;
	int line;

	if (d == NULL || d->func == NULL)
		return 0;
	config_line_origin(cfg->line, &file, &line);
	return d->func((const struct httpd_conf *)cfg, file, line, argc, argv);
}

static int arena_keep(struct option_arena *arena, void *array)
{
	void **grown = realloc(arena->arrays, (arena->count + 1) * sizeof(*grown));

	if (grown == NULL)
		return -1;
	arena->arrays = grown;
	arena->arrays[arena->count++] = array;
	return 0;
}

void option_arena_free(struct option_arena *arena)
{
	for (size_t i = 0; i < arena->count; i++)
		free(arena->arrays[i]);
	free(arena->arrays);
	arena->arrays = NULL;
	arena->count = 0;
}

static int row_schema(const struct directive *d, cfg_opt_t *out, struct option_arena *arena)
{
	cfg_flag_t nodef = d->def == NULL ? CFGF_NODEFAULT : CFGF_NONE;

	switch (d->type) {
	case DIRECTIVE_INT: {
		cfg_opt_t t = CFG_INT(d->name, d->def ? strtol(d->def, NULL, 10) : 0, nodef);
		*out = t;
		break;
	}
	case DIRECTIVE_BOOL: {
		cfg_opt_t t = CFG_BOOL(d->name, d->def && strcmp(d->def, "true") == 0 ? cfg_true : cfg_false, nodef);
		*out = t;
		break;
	}
	case DIRECTIVE_LIST:
	case DIRECTIVE_CIDR_LIST: {
		cfg_opt_t t = CFG_STR_LIST(d->name, (char *)(uintptr_t)(d->def ? d->def : "{}"), CFGF_NONE);
		*out = t;
		break;
	}
	case DIRECTIVE_BLOCK: {
		cfg_opt_t *sub = directive_schema_rows(d->block, arena);
		cfg_flag_t flags = CFGF_NONE;

		if (sub == NULL)
			return -1;
		if (d->flags & DIRECTIVE_MULTI)
			flags |= CFGF_MULTI;
		if (d->flags & DIRECTIVE_TITLED)
			flags |= CFGF_TITLE | CFGF_NO_TITLE_DUPES;
		{
			cfg_opt_t t = CFG_SEC(d->name, sub, flags);
			*out = t;
		}
		return 0;
	}
	case DIRECTIVE_FUNC: {
		cfg_opt_t t = CFG_FUNC(d->name, row_func);
		*out = t;
		return 0;
	}
	default: {
		cfg_opt_t t = CFG_STR(d->name, (char *)(uintptr_t)d->def, nodef);
		*out = t;
		break;
	}
	}
	out->validcb = row_validate;
	return 0;
}

static cfg_opt_t *schema_grow(cfg_opt_t *opts, size_t *count, size_t *cap)
{
	if (*count + 1 < *cap)
		return opts;
	*cap = *cap ? *cap * 2 : 32;
	opts = realloc(opts, *cap * sizeof(*opts));
	return opts;
}

/* Adds d to the schema unless a row of that name is there; a second row must agree on the type. */
static int schema_add(cfg_opt_t **opts, size_t *count, size_t *cap, const struct directive *d,
                      struct option_arena *arena, const char **clash)
{
	cfg_opt_t o, *grown;

	if (row_schema(d, &o, arena) < 0)
		return -1;
	for (size_t i = 0; i < *count; i++)
		if (strcmp((*opts)[i].name, d->name) == 0) {
			if ((*opts)[i].type != o.type || ((*opts)[i].flags & CFGF_LIST) != (o.flags & CFGF_LIST)) {
				*clash = d->name;
				return -2;
			}
			return 0;
		}
	if ((grown = schema_grow(*opts, count, cap)) == NULL)
		return -1;
	*opts = grown;
	(*opts)[(*count)++] = o;
	memset(&(*opts)[*count], 0, sizeof(**opts));
	return 0;
}

cfg_opt_t *directive_schema_rows(const struct directive *rows, struct option_arena *arena)
{
	cfg_opt_t *opts = NULL;
	size_t count = 0, cap = 0;
	const char *clash = NULL;

	for (const struct directive *d = rows; d->name != NULL; d++)
		if (schema_add(&opts, &count, &cap, d, arena, &clash) != 0) {
			free(opts);
			return NULL;
		}
	if (opts == NULL && (opts = calloc(1, sizeof(*opts))) == NULL)
		return NULL;
	if (arena_keep(arena, opts) < 0) {
		free(opts);
		return NULL;
	}
	return opts;
}

cfg_opt_t *directive_schema(unsigned level, const struct directive *module_rows, const cfg_opt_t *blocks,
                            struct option_arena *arena, const char **clash)
{
	cfg_opt_t *opts = NULL, *grown;
	size_t count = 0, cap = 0;
	int rc = 0;

	*clash = NULL;
	for (size_t t = 0; t < table_count && rc == 0; t++)
		for (const struct directive *d = tables[t]->rows; d->name != NULL && rc == 0; d++)
			if (d->where & level)
				rc = schema_add(&opts, &count, &cap, d, arena, clash);
	for (const struct directive *d = module_rows; rc == 0 && d != NULL && d->name != NULL; d++)
		rc = schema_add(&opts, &count, &cap, d, arena, clash);
	for (const cfg_opt_t *b = blocks; rc == 0 && b != NULL && b->name != NULL; b++) {
		if ((grown = schema_grow(opts, &count, &cap)) == NULL) {
			rc = -1;
			break;
		}
		opts = grown;
		opts[count++] = *b;
		memset(&opts[count], 0, sizeof(*opts));
	}
	if (rc == 0 && opts == NULL && (opts = calloc(1, sizeof(*opts))) == NULL)
		rc = -1;
	if (rc != 0 || arena_keep(arena, opts) < 0) {
		free(opts);
		return NULL;
	}
	return opts;
}

/* --- storing ------------------------------------------------------------------ */

static void value_store(const struct directive *d, void *object, int64_t v, const char *text)
{
	char *at = (char *)object + d->offset;

	if (d->type == DIRECTIVE_STR || d->type == DIRECTIVE_PATH) {
		if (d->width == sizeof(const char *))
			memcpy(at, &text, sizeof(text));
		return;
	}
	switch (d->width) {
	case 1: { bool b = v != 0; memcpy(at, &b, 1); break; }
	case 4: { uint32_t u = (uint32_t)v; memcpy(at, &u, 4); break; }
	case 8: { uint64_t u = (uint64_t)v; memcpy(at, &u, 8); break; }
	default: break;
	}
}

/* The scalar value of d in sec, as text (NULL when unset without default). */
static const char *value_text(const struct directive *d, cfg_t *sec, int64_t *v)
{
	char err[512];

	*v = 0;
	if (d->type == DIRECTIVE_BOOL) {
		*v = cfg_getbool(sec, d->name) ? 1 : 0;
		return "";
	}
	if (d->type == DIRECTIVE_INT) {
		*v = cfg_getint(sec, d->name);
		return "";
	}
	if (d->type == DIRECTIVE_LIST || d->type == DIRECTIVE_CIDR_LIST || d->type == DIRECTIVE_BLOCK ||
	    d->type == DIRECTIVE_FUNC)
		return NULL;
	{
		const char *text = cfg_getstr(sec, d->name);

		if (text == NULL || directive_value_parse(d, text, v, err, sizeof(err)) < 0)
			return NULL;   /* refused while parsing already */
		return text;
	}
}

static bool row_set_in(cfg_t *sec, const char *name)
{
	return sec != NULL && option_is_set(cfg_getopt(sec, name));
}

int directive_store(enum directive_store level, struct directive_scope *scope)
{
	struct { cfg_t *sec; unsigned level; } candidates[3];
	size_t n = 0;
	void *object = level == DIRECTIVE_IN_CONFIG ? (void *)scope->config
	             : level == DIRECTIVE_IN_SERVER ? (void *)scope->server : (void *)scope->location;
	int rc = 0;

	if (level == DIRECTIVE_IN_LOCATION)
		candidates[n++] = (typeof(candidates[0])){ scope->location_sec, DIRECTIVE_LOCATION };
	if (level != DIRECTIVE_IN_CONFIG && scope->server_sec != NULL)
		candidates[n++] = (typeof(candidates[0])){ scope->server_sec, DIRECTIVE_SERVER };
	candidates[n++] = (typeof(candidates[0])){ scope->root, DIRECTIVE_TOP };

	for (size_t t = 0; t < table_count; t++) {
		for (const struct directive *d = tables[t]->rows; d->name != NULL; d++) {
			struct directive_use use = { .d = d, .config = scope->config, .server = scope->server,
			                             .location = scope->location };
			cfg_t *from = NULL;
			int64_t v;
			const char *text;

			if (d->store != level || (d->width == 0 && d->build == NULL))
				continue;
			for (size_t i = 0; i < n; i++) {
				if (!(d->where & candidates[i].level))
					continue;
				if (from == NULL) {   /* the nearest level that may hold it keeps the default */
					from = candidates[i].sec;
					use.from_level = candidates[i].level;
				}
				if (row_set_in(candidates[i].sec, d->name)) {
					from = candidates[i].sec;
					use.from_level = candidates[i].level;
					use.set = true;
					break;
				}
				if (d->flags & DIRECTIVE_OWN)
					break;
			}
			if (from == NULL)
				continue;
			use.from = (const struct httpd_conf *)from;
			if (use.set) {
				config_line_origin(directive_line(from, d->name), &use.file, &use.line);
			} else {
				use.file = scope->file;
				use.line = scope->line;
			}
			if (d->width > 0 && (text = value_text(d, from, &v)) != NULL)
				value_store(d, object, v, text);
			if (d->build != NULL && d->build(&use) < 0)
				rc = -1;
		}
	}
	return rc;
}
