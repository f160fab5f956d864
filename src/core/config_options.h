/*
 * Module options: the ABI's own option tables (struct httpd_option, in the
 * layout of the minor version the module was built against) turned into
 * directive rows, and the httpd_conf_* readers over parsed blocks.
 * libconfuse stays an implementation detail of the core.
 */
#ifndef HTTPD_CONFIG_OPTIONS_H
#define HTTPD_CONFIG_OPTIONS_H

#include <stdbool.h>

#include "config_source.h"
#include "directive_schema.h"
#include "httpd/module.h"

/* The rows of a module's option table (laid out for minor), kept in arena; NULL if malformed. */
struct directive *options_rows(const struct httpd_option *opts, unsigned minor, struct option_arena *arena);

/* Whether a module's option table (laid out for minor) has an option called name. */
bool options_has(const struct httpd_option *opts, unsigned minor, const char *name);

/*
 * Adds the rows of src to the growing array *rows of *count entries, as
 * rows of where; the same name twice must have the same type.  Returns 0,
 * -1 out of memory, or -2 with the clashing name in *clash.
 */
int rows_union(struct directive **rows, size_t *count, const struct directive *src, unsigned where,
               const char **clash);

/* Where httpd_conf_origin finds file and line while a configuration loads. */
void options_source_set(const struct config_source *src);

#endif
