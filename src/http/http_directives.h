/* The HTTP layer's rows of the directive table. */
#ifndef HTTPD_HTTP_DIRECTIVES_H
#define HTTPD_HTTP_DIRECTIVES_H

#include "directive.h"

extern const struct directive_table http_directives;
extern const struct directive_table rewrite_directives;
extern const struct directive_table header_directives;

#endif
