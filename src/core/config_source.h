/*
 * The text libconfuse parses: the config file with its include directives
 * expanded and comments blanked, plus a map from each line back to the file
 * and line it came from.  libconfuse 3.3 miscounts lines after comments and
 * cannot glob includes; doing both here keeps "file:line" messages exact.
 */
#ifndef HTTPD_CONFIG_SOURCE_H
#define HTTPD_CONFIG_SOURCE_H

#include <stddef.h>

struct config_source {
	char   *text;
	size_t  len, cap;
	/* For line k (1-based) of text: file and line it came from. */
	const char **line_file;
	int     *line_no;
	size_t   lines, lines_cap;
	char   **files;          /* owned file names */
	size_t   file_count;
	/* Output line of each "location" keyword, in order. */
	int     *location_lines;
	size_t   location_count;
	/* Output line of each "server \"NAME\"" block title, in order. */
	int     *server_lines;
	size_t   server_count;
};

/*
 * Loads path.  On failure prints "file:line: message" lines to stderr
 * through report and returns -1.
 */
int config_source_load(struct config_source *src, const char *path,
                       void (*report)(const char *file, int line, const char *msg));
void config_source_free(struct config_source *src);
/*
 * The title line of a block that libconfuse says ends at end_line: the last
 * of lines (location_lines or server_lines) at or before it.  Blocks of one
 * kind never nest, so that is the block's own keyword.
 */
int config_source_title_line(const int *lines, size_t count, int end_line);
/* Maps an output line to its origin; file "?" and line 0 if out of range. */
void config_source_origin(const struct config_source *src, int line, const char **file, int *file_line);

#endif
