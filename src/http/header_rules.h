/*
 * add_header and expires: fields added to the responses of a location
 * (the nearest block that sets them: the location's, its server's, the
 * top level's), as nginx: on 200, 201, 204, 206, 301, 302, 303, 304, 307
 * and 308, and on every status for an add_header marked "always".
 */
#ifndef HTTPD_HEADER_RULES_H
#define HTTPD_HEADER_RULES_H

#include "directive.h"

struct request;

extern const struct directive header_rows[];

/* Adds r->loc's fields to r's response, just before its head is built. */
void header_rules_apply(struct request *r);

#endif
