/*
 * The master-worker control socket (a SOCK_SEQPACKET pair per worker): one
 * message is a one-byte kind with up to CONTROL_FDS_MAX descriptors.
 *   master -> worker: 'A' (error log, then every access log): reopened logs; an access
 *                     log that is off is sent as the error log again
 *   worker -> master: 'R': this worker accepts connections
 */
#ifndef HTTPD_CONTROL_H
#define HTTPD_CONTROL_H

#include <stddef.h>

#include "config.h"

/* The error log and up to ACCESS_LOGS_MAX access logs. */
#define CONTROL_FDS_MAX (1 + ACCESS_LOGS_MAX)

/* 0, or -1 if the message could not be sent at once. */
int control_send(int sock, char kind, const int *fds, size_t nfds);
/*
 * The next message, without blocking: its kind, with the descriptors it
 * carried in fds (*nfds of them, close-on-exec); -1 when there is none.
 */
int control_recv(int sock, int fds[CONTROL_FDS_MAX], size_t *nfds);

#endif
