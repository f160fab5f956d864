/*
 * What a new connection speaks: TLS first when its listener says so, then
 * the HTTP protocol (HTTP/1.1).  The event loop calls this through its
 * conn_begin hook, after accept and any PROXY protocol preamble.
 */
#ifndef HTTPD_HTTP_CONN_H
#define HTTPD_HTTP_CONN_H

#include <stddef.h>

struct conn;

/* Starts c's transport and protocol; -1 if c must close (logged). */
int http_conn_begin(struct conn *c);
/* The protocol data every connection needs room for (conn_data_reserve). */
size_t http_conn_data_size(void);

#endif
