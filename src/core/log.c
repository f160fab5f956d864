#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <syslog.h>
#include <unistd.h>

static int error_fd = STDERR_FILENO;
static int access_fd = -1;
static char *error_path;
static char *access_path;
static enum httpd_log_level max_level = HTTPD_LOG_NOTICE;
/* A worker's access log buffer: whole lines only, so one write never splits a line. */
static char *access_buf;
static size_t access_buf_len, access_buf_cap;
static char role[32] = "master";

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

int log_open(const char *error_log, const char *access_log)
{
	int efd, afd = -1;

	efd = log_file_open(error_log);
	if (efd < 0) {
		httpd_log(HTTPD_LOG_ERR, "cannot open error log %s: %s", error_log, strerror(errno));
		return -1;
	}
	if (access_log != NULL && access_log[0] != '\0' && strcmp(access_log, "off") != 0) {
		afd = log_file_open(access_log);
		if (afd < 0) {
			httpd_log(HTTPD_LOG_ERR, "cannot open access log %s: %s", access_log, strerror(errno));
			close(efd);
			return -1;
		}
	}
	fd_replace(&error_fd, efd);
	fd_replace(&access_fd, afd);
	if (strcmp(error_log, "syslog") == 0 && !to_syslog) {
		/* Opened now, so workers forked later share the connection to the journal or syslogd. */
		openlog("httpd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		to_syslog = true;
	} else if (strcmp(error_log, "syslog") != 0 && to_syslog) {
		closelog();
		to_syslog = false;
	}
	free(error_path);
	free(access_path);
	error_path = strdup(error_log);
	access_path = afd >= 0 ? strdup(access_log) : NULL;
	return 0;
}

int log_reopen(void)
{
	char *e = error_path, *a = access_path;
	int rc;

	if (e == NULL)
		return 0;
	error_path = access_path = NULL;
	rc = log_open(e, a);
	if (rc < 0) {
		error_path = e;
		access_path = a;
		return -1;
	}
	free(e);
	free(a);
	return 0;
}

int log_error_fd(void)
{
	return error_fd;
}

int log_access_fd(void)
{
	return access_fd;
}

void log_adopt(int efd, int afd)
{
	log_access_flush();
	if (efd >= 0)
		fd_replace(&error_fd, efd);
	if (afd >= 0)
		fd_replace(&access_fd, afd);
}

void log_close(void)
{
	log_access_flush();
	fd_replace(&access_fd, -1);
	fd_replace(&error_fd, STDERR_FILENO);
	free(error_path);
	free(access_path);
	error_path = access_path = NULL;
}

bool log_access_enabled(void)
{
	return access_fd >= 0;
}

static void access_write(const char *data, size_t len)
{
	/* O_APPEND and whole lines per write: lines from different workers never interleave. */
	if (access_fd >= 0 && write(access_fd, data, len) < 0)
		httpd_log(HTTPD_LOG_WARN, "access log write failed: %s", strerror(errno));
}

int log_access_buffer(size_t size)
{
	free(access_buf);
	access_buf = NULL;
	access_buf_len = access_buf_cap = 0;
	if (size == 0)
		return 0;
	access_buf = malloc(size);
	if (access_buf == NULL)
		return -1;
	access_buf_cap = size;
	return 0;
}

bool log_access_pending(void)
{
	return access_buf_len > 0;
}

void log_access_flush(void)
{
	if (access_buf_len > 0)
		access_write(access_buf, access_buf_len);
	access_buf_len = 0;
}

void log_access_line(const char *line, size_t len)
{
	if (access_buf == NULL || len > access_buf_cap) {
		access_write(line, len);
		return;
	}
	if (access_buf_cap - access_buf_len < len)
		log_access_flush();
	memcpy(access_buf + access_buf_len, line, len);
	access_buf_len += len;
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
