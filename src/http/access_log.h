/* The access log line of a finished request, in the format access_log_format names. */
#ifndef HTTPD_ACCESS_LOG_H
#define HTTPD_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

struct log_format;
struct request;

/* A precise monotonic clock in µs, for $request_time. */
uint64_t access_log_clock_us(void);

void access_log_write(const struct request *r);

#endif
