/*
 * Locations as nginx chooses them: "= /x" exact, "^~ /x" a prefix that
 * stops the search, "~ re" and "~* re" (caseless) regexes in file order,
 * "@name" named (a try_files target only), and plain prefixes, which match
 * on a segment boundary ("/docs" is /docs and below, never /docsecret).
 * Regexes are PCRE2, compiled with JIT once when the configuration loads.
 */
#ifndef HTTPD_LOCATION_H
#define HTTPD_LOCATION_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct httpd_pool;
struct expr;

/* What the last regex that matched captured: $1 ... $9 and named groups. */
struct captures {
	const char *subject;    /* the path it matched, in the request's pool */
	size_t     *ovector;    /* pairs of offsets into subject, in the request's pool */
	unsigned    pairs;      /* 0: nothing captured */
	const void *code;       /* the pcre2 code, for names */
};

/* The location title hook of the HTTP directive table: reads loc->prefix into kind, path, regex. */
int location_title_read(struct httpd_config *config, struct httpd_location *loc);

/* Indexes every server's locations for location_find (a finish hook); a duplicate path is an error. */
int locations_index(struct httpd_config *config);

/*
 * The location for path in server, nginx's way: the exact one, else the
 * longest prefix if it is "^~", else the first regex that matches (its
 * captures in *cap, allocated in pool), else the longest prefix, else NULL.
 */
const struct httpd_location *location_find(const struct httpd_server *server, const char *path, size_t len,
                                           struct httpd_pool *pool, struct captures *cap);
/* The named location "@name" (name given with its '@') of server, or NULL. */
const struct httpd_location *location_named(const struct httpd_server *server, const char *name);

/*
 * A regex compiled for the configuration (owned by config), JIT'd; NULL
 * with PCRE2's message and offset in err.  caseless for "~*".
 */
void *regex_compile(struct httpd_config *config, const char *pattern, bool caseless, char *err, size_t errlen);
void regex_free(void *regex);
/* Whether regex matches subject[0..len); on a match its captures go to *cap (in pool; cap may be NULL). */
bool regex_match(const void *regex, const char *subject, size_t len, struct httpd_pool *pool, struct captures *cap);
/* The number of the group called name in regex, or -1. */
int regex_group_number(const void *regex, const char *name);
/*
 * Compiles text as an expression where $1 ... $9 and the named groups of
 * regex (NULL: none) may stand, for the rule or location the regex is
 * theirs: 0, or -1 with the reason in err.
 */
int regex_expr_compile(const void *regex, const char *text, struct expr *out, char *err, size_t errlen);

/* The path a location's root serves for path: after the prefix of a prefix location, else the whole path. */
const char *location_rest(const struct httpd_location *loc, const char *path, struct httpd_pool *pool);

#endif
