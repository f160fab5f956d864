#include "systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define PASSED_MAX 64

static char     notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static uint64_t watchdog_ms;
static int      passed_fd[PASSED_MAX];
static char    *passed_name[PASSED_MAX];
static int      passed_count;

/* A positive decimal that fits; -1 otherwise. */
static long long env_number(const char *name)
{
	const char *v = getenv(name);
	char *end;
	long long n;

	if (v == NULL || *v == '\0')
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	return errno == 0 && *end == '\0' && n >= 0 ? n : -1;
}

static void passed_sockets_read(void)
{
	long long pid = env_number("LISTEN_PID"), n = env_number("LISTEN_FDS");
	char *names = getenv("LISTEN_FDNAMES") != NULL ? strdup(getenv("LISTEN_FDNAMES")) : NULL;
	char *save = NULL, *name = names != NULL ? strtok_r(names, ":", &save) : NULL;

	if (pid != (long long)getpid() || n <= 0) {
		free(names);
		return;
	}
	for (long long i = 0; i < n && passed_count < PASSED_MAX; i++) {
		int fd = 3 + (int)i;   /* SD_LISTEN_FDS_START */

		/* Ours now: not inherited by workers' children, non-blocking like our own sockets. */
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		passed_fd[passed_count] = fd;
		passed_name[passed_count] = name != NULL ? strdup(name) : NULL;
		passed_count++;
		name = name != NULL ? strtok_r(NULL, ":", &save) : NULL;
	}
	free(names);
}

void systemd_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	long long usec = env_number("WATCHDOG_USEC"), wpid = env_number("WATCHDOG_PID");

	if (path != NULL && (path[0] == '/' || path[0] == '@') && strlen(path) < sizeof(notify_path))
		snprintf(notify_path, sizeof(notify_path), "%s", path);
	if (usec > 0 && (wpid < 0 || wpid == (long long)getpid()))
		watchdog_ms = (uint64_t)usec / 2000;
	passed_sockets_read();
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

bool systemd_notify(const char *fmt, ...)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	char msg[512];
	va_list ap;
	int fd, n;
	bool ok;

	if (notify_path[0] == '\0')
		return false;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return false;
	memcpy(sa.sun_path, notify_path, strlen(notify_path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';   /* an abstract socket name */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(notify_path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ok = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa, len) == n;
	if (!ok)
		httpd_log(HTTPD_LOG_WARN, "cannot notify systemd at %s: %s", notify_path, strerror(errno));
	close(fd);
	return ok;
}

const char *systemd_notify_socket(void)
{
	return notify_path;
}

void systemd_notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	systemd_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
	               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
}

uint64_t systemd_watchdog_ms(void)
{
	return watchdog_ms;
}

static bool same_address(int fd, const struct listen_spec *spec)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int type = 0;
	socklen_t tlen = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM)
		return false;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	return listen_addr_equal(&ss, len, &spec->addr, spec->addrlen);
}

int systemd_listen_take(const struct listen_spec *spec)
{
	for (int i = 0; i < passed_count; i++) {
		int fd = passed_fd[i];

		if (fd < 0)
			continue;
		if ((passed_name[i] != NULL && strncmp(passed_name[i], spec->text, strlen(passed_name[i])) == 0 &&
		     (spec->text[strlen(passed_name[i])] == '\0' || spec->text[strlen(passed_name[i])] == ' ')) ||
		    same_address(fd, spec)) {
			passed_fd[i] = -1;
			httpd_log(HTTPD_LOG_NOTICE, "listen %s: using the socket systemd passed", spec->text);
			return fd;
		}
	}
	return -1;
}

void systemd_listen_close_unused(void)
{
	for (int i = 0; i < passed_count; i++) {
		if (passed_fd[i] < 0)
			continue;
		httpd_log(HTTPD_LOG_WARN, "socket %d%s%s passed by systemd matches no listen address; closed",
		          passed_fd[i], passed_name[i] ? " named " : "", passed_name[i] ? passed_name[i] : "");
		close(passed_fd[i]);
		passed_fd[i] = -1;
	}
}
