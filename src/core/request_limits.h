/* Bounds on a request head, set by the configuration and kept by every protocol's parser. */
#ifndef HTTPD_REQUEST_LIMITS_H
#define HTTPD_REQUEST_LIMITS_H

#include <stddef.h>

struct http_limits {
	size_t max_request_line;  /* 414 above */
	size_t max_head;          /* whole head, request line included: 431 above */
	size_t max_headers;       /* header field lines: 431 above */
};

#endif
