/*
 * Module options: the ABI's own option tables (struct httpd_option) turned
 * into libconfuse schemas, and the httpd_conf_* readers over parsed blocks.
 * libconfuse stays an implementation detail of the core.
 */
#ifndef HTTPD_CONFIG_OPTIONS_H
#define HTTPD_CONFIG_OPTIONS_H

#include <confuse.h>
#include <stdbool.h>

#include "config_source.h"
#include "httpd/module.h"

/* Every schema array made for one configuration, freed together. */
struct option_arena {
	cfg_opt_t **arrays;
	size_t      count;
};

/* A CFG_END-terminated libconfuse schema for opts (sections included), or NULL. */
cfg_opt_t *options_convert(const struct httpd_option *opts, struct option_arena *arena);
void option_arena_free(struct option_arena *arena);

/*
 * Adds the options of src (CFG_END-terminated) to the growing array *opts of
 * *count entries; the same name twice must have the same type.  Returns 0,
 * -1 out of memory, or -2 with the clashing name in *clash.
 */
int options_union(cfg_opt_t **opts, size_t *count, const cfg_opt_t *src, const char **clash);

/* Whether the block's text wrote o (a single section: anything inside it). */
bool option_is_set(const cfg_opt_t *o);

/* Where httpd_conf_origin finds file and line while a configuration loads. */
void options_source_set(const struct config_source *src);

#endif
