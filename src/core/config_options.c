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

static int arena_keep(struct option_arena *arena, cfg_opt_t *array)
{
	cfg_opt_t **grown = realloc(arena->arrays, (arena->count + 1) * sizeof(*grown));

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

static int option_convert(const struct httpd_option *o, cfg_opt_t *out, struct option_arena *arena)
{
	cfg_flag_t nodef = o->def == NULL ? CFGF_NODEFAULT : CFGF_NONE;

	switch (o->type) {
	case HTTPD_OPT_STR: {
		cfg_opt_t t = CFG_STR(o->name, (char *)(uintptr_t)o->def, nodef);
		*out = t;
		return 0;
	}
	case HTTPD_OPT_INT: {
		cfg_opt_t t = CFG_INT(o->name, o->def ? strtol(o->def, NULL, 10) : 0, nodef);
		*out = t;
		return 0;
	}
	case HTTPD_OPT_BOOL: {
		cfg_opt_t t = CFG_BOOL(o->name, o->def && strcmp(o->def, "true") == 0 ? cfg_true : cfg_false,
		                       nodef);
		*out = t;
		return 0;
	}
	case HTTPD_OPT_STR_LIST: {
		cfg_opt_t t = CFG_STR_LIST(o->name, (char *)(uintptr_t)o->def, nodef);
		*out = t;
		return 0;
	}
	case HTTPD_OPT_SECTION: {
		cfg_opt_t *sub = o->section ? options_convert(o->section, arena) : NULL;
		cfg_flag_t flags = CFGF_NONE;

		if (sub == NULL)
			return -1;
		if (o->flags & HTTPD_OPT_MULTI)
			flags |= CFGF_MULTI;
		if (o->flags & HTTPD_OPT_TITLED)
			flags |= CFGF_TITLE | CFGF_NO_TITLE_DUPES;
		{
			cfg_opt_t t = CFG_SEC(o->name, sub, flags);
			*out = t;
		}
		return 0;
	}
	case HTTPD_OPT_END:
		break;
	}
	return -1;
}

cfg_opt_t *options_convert(const struct httpd_option *opts, struct option_arena *arena)
{
	size_t n = 0;
	cfg_opt_t *out;

	while (opts[n].type != HTTPD_OPT_END)
		n++;
	out = calloc(n + 1, sizeof(*out));
	if (out == NULL || arena_keep(arena, out) < 0) {
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (opts[i].name == NULL || option_convert(&opts[i], &out[i], arena) < 0)
			return NULL;
	{
		cfg_opt_t end = CFG_END();
		out[n] = end;
	}
	return out;
}

int options_union(cfg_opt_t **opts, size_t *count, const cfg_opt_t *src, const char **clash)
{
	for (const cfg_opt_t *o = src; o->name != NULL; o++) {
		size_t i;
		cfg_opt_t *grown;

		for (i = 0; i < *count; i++)
			if (strcmp((*opts)[i].name, o->name) == 0)
				break;
		if (i < *count) {
			if ((*opts)[i].type != o->type || ((*opts)[i].flags & CFGF_LIST) != (o->flags & CFGF_LIST)) {
				*clash = o->name;
				return -2;
			}
			continue;
		}
		grown = realloc(*opts, (*count + 2) * sizeof(**opts));
		if (grown == NULL)
			return -1;
		*opts = grown;
		(*opts)[(*count)++] = *o;
		memset(&(*opts)[*count], 0, sizeof(**opts));
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
