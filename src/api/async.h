/* Module events and blocking jobs, as the worker and the request phases see them. */
#ifndef HTTPD_ASYNC_H
#define HTTPD_ASYNC_H

#include <stdint.h>

struct request;

/* Removes every event of r (the request ends, whichever way). */
void async_request_end(struct request *r);
/* Frees the events removed since the last call (after an epoll batch, so none is still listed). */
void async_events_reap(void);

#endif
