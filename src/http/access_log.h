/* The access log line of a finished request (combined log format). */
#ifndef HTTPD_ACCESS_LOG_H
#define HTTPD_ACCESS_LOG_H

struct request;

void access_log_write(const struct request *r);

#endif
