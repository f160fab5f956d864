/* The server's variables looked up in a request, and expressions evaluated for it. */
#ifndef HTTPD_REQUEST_VARIABLES_H
#define HTTPD_REQUEST_VARIABLES_H

#include <stddef.h>

#include "variable.h"

struct request;

/* A var_lookup_fn over a struct request (ctx): the value of seg, or NULL when it has none. */
const char *request_variable(void *ctx, const struct var_segment *seg, char *scratch, size_t size);

/*
 * e evaluated for r, NUL-terminated in r's pool (*len bytes); a variable
 * without a value adds nothing.  NULL out of memory.
 */
char *expr_eval(const struct expr *e, struct request *r, size_t *len);

#endif
