/*
 * The core's side of the directive table: libconfuse schemas made from the
 * rows, the check of each value as it is parsed, and storing the values.
 * Only src/core/config*.c use it; layers see directive.h.
 */
#ifndef HTTPD_DIRECTIVE_SCHEMA_H
#define HTTPD_DIRECTIVE_SCHEMA_H

#include <confuse.h>

#include "directive.h"

/* Every array made for one configuration's schema, freed together. */
struct option_arena {
	void  **arrays;
	size_t  count;
};
void option_arena_free(struct option_arena *arena);

/* The tables the daemon hands over, in the order their rows are stored. */
void directive_tables_set(const struct directive_table *const *tables, size_t count);
size_t directive_table_count(void);
const struct directive_table *directive_table_at(size_t i);

/* The modules' option rows of the load in progress (module options are location and top-level rows). */
struct directive_rowset {
	const struct directive *location_module_rows;
	const struct directive *top_module_rows;
};
void directive_rowset_activate(const struct directive_rowset *set);

/*
 * The schema of one level (DIRECTIVE_TOP, _SERVER or _LOCATION): the
 * tables' rows for it, then module_rows, then blocks (the server and
 * location sections).  NULL out of memory, or with *clash naming a row
 * that two tables give different types.
 */
cfg_opt_t *directive_schema(unsigned level, const struct directive *module_rows, const cfg_opt_t *blocks,
                            struct option_arena *arena, const char **clash);
cfg_opt_t *directive_schema_rows(const struct directive *rows, struct option_arena *arena);

/* The tables' row of name at level (DIRECTIVE_TOP, ...), modules' rows aside, or NULL. */
const struct directive *directive_table_row(unsigned level, const char *name);
/* The row of option name in block sec, or NULL. */
const struct directive *directive_row_of(const cfg_t *sec, const char *name);

/* The line (in the parsed text) where sec set name, or 0; reset before each load. */
int directive_line(const cfg_t *sec, const char *name);
void directive_lines_reset(void);

/* One object being stored: the config, a server, or a location, with the blocks around it. */
struct directive_scope {
	struct httpd_config   *config;
	struct httpd_server   *server;
	struct httpd_location *location;
	cfg_t                 *root;
	cfg_t                 *server_sec;     /* NULL for the top-level server */
	cfg_t                 *location_sec;
	const char            *file;           /* the object's own origin, for defaults */
	int                    line;
};
/* Stores every row whose value lives in level's object; 0, or -1 when a build refused. */
int directive_store(enum directive_store level, struct directive_scope *scope);

/* Whether the block's text wrote o (a single section: anything inside it). */
bool option_is_set(const cfg_opt_t *o);

/* Maps a line of the parsed text to its file and line (config.c). */
void config_line_origin(int text_line, const char **file, int *line);

#endif
