#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <syslog.h>
#include <unistd.h>

static int error_fd = STDERR_FILENO;
static char *error_path;
static enum httpd_log_level max_level = HTTPD_LOG_NOTICE;
static char role[32] = "master";

/*
 * Access logs: [0] is the top-level access_log, the rest are server
 * blocks' own.  In a worker each has a buffer of whole lines, so one write
 * never splits a line.
 */
struct access_log {
	int    fd;        /* -1: off */
	char  *path;
	char  *buf;
	size_t len;
};
static struct access_log *alogs;
static size_t alog_count;
static size_t alog_buffer;   /* per log, 0: a write per line */

static const char *const level_names[] = { "error", "warn", "notice", "info", "debug" };

void log_set_level(enum httpd_log_level level)
{
	max_level = level;
}

void log_set_role(const char *name)
{
	snprintf(role, sizeof(role), "%s", name);
}

static bool to_syslog;

static int log_file_open(const char *path)
{
	if (strcmp(path, "stderr") == 0)
		return dup(STDERR_FILENO);
	if (strcmp(path, "syslog") == 0)
		return dup(STDERR_FILENO);   /* the fallback should syslog(3) lose a message */
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void fd_replace(int *slot, int fd)
{
	if (*slot >= 0 && *slot != STDERR_FILENO)
		close(*slot);
	*slot = fd;
}

static bool access_path_on(const char *path)
{
	return path != NULL && path[0] != '\0' && strcmp(path, "off") != 0;
}

static void alog_write(struct access_log *a, const char *data, size_t len)
{
	/* O_APPEND and whole lines per write: lines from different workers never interleave. */
	if (a->fd >= 0 && write(a->fd, data, len) < 0)
		httpd_log(HTTPD_LOG_WARN, "access log %s: write failed: %s", a->path ? a->path : "?", strerror(errno));
}

static void alog_flush(struct access_log *a)
{
	if (a->len > 0)
		alog_write(a, a->buf, a->len);
	a->len = 0;
}

static void alogs_free(void)
{
	for (size_t i = 0; i < alog_count; i++) {
		alog_flush(&alogs[i]);
		fd_replace(&alogs[i].fd, -1);
		free(alogs[i].path);
		free(alogs[i].buf);
	}
	free(alogs);
	alogs = NULL;
	alog_count = 0;
}

int log_open(const char *error_log, const char *const *access_logs, size_t count)
{
	struct access_log *fresh = calloc(count ? count : 1, sizeof(*fresh));
	char *epath = strdup(error_log);
	int efd;

	if (fresh == NULL || epath == NULL) {
		free(fresh);
		free(epath);
		return -1;
	}
	efd = log_file_open(error_log);
	if (efd < 0) {
		httpd_log(HTTPD_LOG_ERR, "cannot open error log %s: %s", error_log, strerror(errno));
		free(fresh);
		free(epath);
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		fresh[i].fd = -1;
		if (!access_path_on(access_logs[i]))
			continue;
		fresh[i].path = strdup(access_logs[i]);
		fresh[i].fd = fresh[i].path != NULL ? log_file_open(access_logs[i]) : -1;
		if (fresh[i].fd < 0) {
			httpd_log(HTTPD_LOG_ERR, "cannot open access log %s: %s", access_logs[i], strerror(errno));
			close(efd);
			for (size_t j = 0; j <= i; j++) {
				fd_replace(&fresh[j].fd, -1);
				free(fresh[j].path);
			}
			free(fresh);
			free(epath);
			return -1;
		}
	}
	fd_replace(&error_fd, efd);
	alogs_free();
	alogs = fresh;
	alog_count = count;
	if (strcmp(error_log, "syslog") == 0 && !to_syslog) {
		/* Opened now, so workers forked later share the connection to the journal or syslogd. */
		openlog("httpd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		to_syslog = true;
	} else if (strcmp(error_log, "syslog") != 0 && to_syslog) {
		closelog();
		to_syslog = false;
	}
	free(error_path);
	error_path = epath;
	return 0;
}

int log_reopen(void)
{
	size_t count = alog_count;
	const char **paths;
	char *e;
	int rc = -1;

	if (error_path == NULL)
		return 0;
	/* Copies: log_open replaces the table (and its paths) only once every new file is open. */
	paths = calloc(count ? count : 1, sizeof(*paths));
	e = strdup(error_path);
	if (paths != NULL && e != NULL) {
		rc = 0;
		for (size_t i = 0; i < count; i++)
			if (alogs[i].path != NULL && (paths[i] = strdup(alogs[i].path)) == NULL)
				rc = -1;
		if (rc == 0)
			rc = log_open(e, paths, count);
	}
	for (size_t i = 0; paths != NULL && i < count; i++)
		free((char *)(uintptr_t)paths[i]);
	free(paths);
	free(e);
	return rc;
}

int log_error_fd(void)
{
	return error_fd;
}

size_t log_access_count(void)
{
	return alog_count;
}

int log_access_fd(size_t index)
{
	return index < alog_count ? alogs[index].fd : -1;
}

void log_adopt(int efd, const int *afds, size_t count)
{
	if (efd >= 0)
		fd_replace(&error_fd, efd);
	for (size_t i = 0; i < count; i++) {
		if (i >= alog_count) {
			if (afds[i] >= 0)
				close(afds[i]);
			continue;
		}
		alog_flush(&alogs[i]);
		if (afds[i] >= 0)
			fd_replace(&alogs[i].fd, afds[i]);
	}
}

void log_close(void)
{
	alogs_free();
	fd_replace(&error_fd, STDERR_FILENO);
	free(error_path);
	error_path = NULL;
}

bool log_access_enabled(size_t index)
{
	return index < alog_count && alogs[index].fd >= 0;
}

int log_access_buffer(size_t size)
{
	alog_buffer = size;
	for (size_t i = 0; i < alog_count; i++) {
		alog_flush(&alogs[i]);
		free(alogs[i].buf);
		alogs[i].buf = NULL;
		if (size > 0 && alogs[i].fd >= 0 && (alogs[i].buf = malloc(size)) == NULL)
			return -1;
	}
	return 0;
}

bool log_access_pending(void)
{
	for (size_t i = 0; i < alog_count; i++)
		if (alogs[i].len > 0)
			return true;
	return false;
}

void log_access_flush(void)
{
	for (size_t i = 0; i < alog_count; i++)
		alog_flush(&alogs[i]);
}

void log_access_line(size_t index, const char *line, size_t len)
{
	struct access_log *a;

	if (index >= alog_count)
		return;
	a = &alogs[index];
	if (a->buf == NULL || len > alog_buffer) {
		alog_write(a, line, len);
		return;
	}
	if (alog_buffer - a->len < len)
		alog_flush(a);
	memcpy(a->buf + a->len, line, len);
	a->len += len;
}

void httpd_log(enum httpd_log_level level, const char *fmt, ...)
{
	char line[2048];
	struct tm tm;
	time_t now;
	size_t len;
	int n;
	va_list ap;
	int saved_errno = errno;

	if (level > max_level)
		return;
	if (to_syslog) {
		static const int priorities[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };
		char msg[2048];

		va_start(ap, fmt);
		(void)vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		/* syslog(3) adds the time and pid; the role says master or which worker. */
		syslog(priorities[level], "%s: %s", role, msg);
		errno = saved_errno;
		return;
	}
	now = time(NULL);
	gmtime_r(&now, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02dZ [%s] %s[%ld]: ",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	             tm.tm_sec, level_names[level], role, (long)getpid());
	len = n > 0 ? (size_t)n : 0;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n : sizeof(line) - len - 2;
	line[len++] = '\n';
	if (write(error_fd, line, len) < 0) {
		/* Nowhere left to report it. */
	}
	errno = saved_errno;
}
