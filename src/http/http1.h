/*
 * The HTTP/1.1 codec over a connection: finds and parses request heads,
 * frames request bodies (Content-Length, chunked) into the body phase, and
 * writes responses (head and small body in one call, files with sendfile,
 * streams chunked) through the connection's transport.
 */
#ifndef HTTPD_HTTP1_H
#define HTTPD_HTTP1_H

#include <stdbool.h>

struct conn;
struct request;

/* Runs c's state machine until it must wait for the socket or a module. */
void http1_run(struct conn *c);
/* Serialises r's response head and starts sending (any phase). */
void http1_respond(struct request *r);
/* A core error response on c (making a request object if there is none); close forces Connection: close. */
void http1_error(struct conn *c, int status, bool close);
/* r's handler answers later: wait, with handler_timeout. */
void http1_wait_handler(struct conn *c);
/* A gate that waited (REQUEST_WAIT) has decided: 0 lets the request on to its checks, else a status. */
void http1_gate_done(struct request *r, int rc);

#endif
