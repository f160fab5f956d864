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

/* f rendered for r into out (f->max_line bytes), with the access log's variables; its length. */
size_t access_log_render(const struct log_format *f, const struct request *r, char *out);

#endif
