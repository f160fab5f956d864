/*
 * HTTP/2 (RFC 9113) over a connection, with libnghttp2 doing the framing,
 * HPACK, flow control and the protocol's own checks.  Each stream is one
 * request through the same phases as HTTP/1.1 (http/request.h): the
 * stream installs its output table, and modules see the same request.
 * ALPN "h2" on TLS listeners, prior knowledge on listeners marked h2c.
 */
#ifndef HTTPD_HTTP2_H
#define HTTPD_HTTP2_H

#include "conn.h"

extern const struct conn_protocol http2_protocol;

/* c speaks HTTP/2 from now on (its first bytes are the client's preface); -1 out of memory. */
int http2_start(struct conn *c);

#endif
