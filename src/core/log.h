/* Error and access logs. */
#ifndef HTTPD_LOG_H
#define HTTPD_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "httpd/module.h"

/* Where errors go until log_open is called: stderr. */
void log_set_level(enum httpd_log_level level);
/*
 * "stderr", or a file path opened for appending, for errors; access logs
 * [0] (the top level's) to [count - 1] (server blocks' own), each a path or
 * "off".  -1 on failure, the old logs kept.
 */
int log_open(const char *error_log, const char *const *access_logs, size_t count);
/* Closes and reopens the files (SIGUSR1 after rotation). */
int log_reopen(void);
void log_close(void);
/* The open descriptors (for the master to hand to its workers); an access log is -1 when off. */
int    log_error_fd(void);
size_t log_access_count(void);
int    log_access_fd(size_t index);
/*
 * In a worker: write to these from now on, after flushing buffered lines
 * to the old files; -1 keeps one.  Takes ownership of every descriptor.
 */
void log_adopt(int error_fd, const int *access_fds, size_t count);
/* Name for the current process in log lines: "master" or "worker 3". */
void log_set_role(const char *role);
/* Whether access log index is open, and one line for it. */
bool log_access_enabled(size_t index);
void log_access_line(size_t index, const char *line, size_t len);
/* In a worker: gather access log lines in a buffer of size bytes per log (0: one write per line). */
int  log_access_buffer(size_t size);
bool log_access_pending(void);
/* Writes the buffered lines (on an interval, before a reopen, at exit). */
void log_access_flush(void);

#endif
