/* Error and access logs. */
#ifndef HTTPD_LOG_H
#define HTTPD_LOG_H

#include <stdbool.h>

#include "httpd/module.h"

/* Where errors go until log_open is called: stderr. */
void log_set_level(enum httpd_log_level level);
/* "stderr", or a file path opened for appending.  -1 on failure, old logs kept. */
int log_open(const char *error_log, const char *access_log);
/* Closes and reopens the files (SIGUSR1 after rotation). */
int log_reopen(void);
void log_close(void);
/* The open descriptors (for the master to hand to its workers); access is -1 when off. */
int  log_error_fd(void);
int  log_access_fd(void);
/* In a worker: write to these from now on (after flushing buffered lines to the old file); -1 keeps one. */
void log_adopt(int error_fd, int access_fd);
/* Name for the current process in log lines: "master" or "worker 3". */
void log_set_role(const char *role);
/* Writes one access log line if an access log is open. */
bool log_access_enabled(void);
void log_access_line(const char *line, size_t len);
/* In a worker: gather access log lines in a buffer of size bytes (0: one write per line). */
int  log_access_buffer(size_t size);
bool log_access_pending(void);
/* Writes the buffered lines (on an interval, before a reopen, at exit). */
void log_access_flush(void);

#endif
