/* HTTP dates (RFC 9110 §5.6.7). */
#ifndef HTTPD_HTTP_DATE_H
#define HTTPD_HTTP_DATE_H

#include <stdbool.h>
#include <time.h>

#include "httpd/module.h"

/* Parses IMF-fixdate, RFC 850 and asctime forms; false if malformed. */
bool http_date_parse(const char *s, time_t *out);

/* The Date header value for now, reformatted at most once a second. */
const char *http_date_now(time_t now);

#endif
