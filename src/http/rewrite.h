/*
 * The rewrite phase, as nginx's: a server's rewrite rules and return, the
 * choice of a location, the location's rewrite rules and return, then
 * (after the access rules) try_files.  "last" and try_files' fallbacks are
 * internal redirects: the new path is normalised again (so ".." cannot
 * climb above the root) and chooses its location again, at most 10 times.
 */
#ifndef HTTPD_REWRITE_H
#define HTTPD_REWRITE_H

#include "directive.h"

struct request;

/* rewrite, return, try_files. */
extern const struct directive rewrite_rows[];

/*
 * Rewrites and routes r: 0 with r->loc set and r->req.path_rest its file
 * path, REQUEST_ANSWERED when a return made the response in r->res (the
 * caller sends it), or a status (a redirect's Location set).
 */
int rewrite_route(struct request *r);

/* Results of try_files and rewrite_named besides 0, a status and REQUEST_ANSWERED (1). */
#define ROUTE_AGAIN 2   /* the path changed: choose the location again */
#define ROUTE_NAMED 3   /* r->loc became a named location: its rewrite and return, then its access rules */

/*
 * try_files of r->loc, after its access rules: 0 to go on in r->loc, a
 * status, ROUTE_AGAIN or ROUTE_NAMED.
 */
int rewrite_try_files(struct request *r);

/*
 * In the named location try_files fell back to: its rewrite rules and
 * return, as rewrite_route's results, or ROUTE_AGAIN when they changed the path.
 */
int rewrite_named(struct request *r);

/* After every location is built: a server needs locations or a return. */
int rewrite_finish(struct httpd_config *config);

#endif
