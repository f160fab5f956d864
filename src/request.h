/* From a parsed head to a filled response: routing, method rules, modules. */
#ifndef HTTPD_REQUEST_H
#define HTTPD_REQUEST_H

#include "conn.h"

/*
 * After the head is parsed: normalise the path, pick the location, apply
 * method and body rules.  Returns 0 if the request goes on (body, then
 * request_dispatch), or a status for an error response.  OPTIONS and other
 * answers the core gives itself are sent from here: then it returns
 * HTTPD_OK + 1 (REQUEST_ANSWERED).
 */
#define REQUEST_ANSWERED 1
int request_begin(struct conn *c);
/* With the body read: run check modules, then the handler, and respond. */
void request_dispatch(struct conn *c);
/* Writes the access log line for the finished request. */
void request_log(struct conn *c);

#endif
