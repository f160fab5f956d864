/*
 * A connection on a proxy_protocol listener: the PROXY v1/v2 preamble is
 * read before anything else (before HTTP, and before a TLS handshake once
 * there is TLS); its source address becomes the client's, and what else it
 * said (the balancer's own address, the address the client reached, the
 * TLVs) stays with the connection for modules and the access log.
 */
#ifndef HTTPD_CONN_PROXY_H
#define HTTPD_CONN_PROXY_H

#include <stdbool.h>
#include <sys/socket.h>

struct conn;
struct listener;
struct worker;

/*
 * Before a connection on l is taken: false (the socket closed unanswered,
 * counted and logged) when l is a PROXY listener and the peer is outside
 * proxy_protocol_from.
 */
bool conn_proxy_admit(struct worker *w, const struct listener *l, int fd, const char *peer);
/* CONN_PROXY: reads the preamble as it arrives; once complete the HTTP codec takes over. */
void conn_proxy_read(struct conn *c);
/* proxy_protocol_timeout passed without a whole preamble. */
void conn_proxy_timeout(struct conn *c);
/* A field of the preamble by name (see httpd_request_proxy), or NULL. */
const char *conn_proxy_field(const struct conn *c, const char *name);
/* The same by index (enum proxy_field), for the access log. */
const char *conn_proxy_value(const struct conn *c, int index);
void conn_proxy_free(struct conn *c);

#endif
