/* The gzip response filter. */
#ifndef HTTPD_FILTER_GZIP_H
#define HTTPD_FILTER_GZIP_H

#include "config.h"
#include "http_response.h"

/*
 * Compresses res when loc has gzip on, the client accepts gzip, and the
 * body is a whole 200 of a compressible type of at least gzip_min_length
 * bytes; adds Vary: Accept-Encoding to every compressible answer.  0 or -1.
 */
int gzip_filter(const struct httpd_location *loc, const struct httpd_request *req,
                struct httpd_response *res);

#endif
