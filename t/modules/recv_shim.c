/*
 * For the test suite only: an LD_PRELOAD shim around the server's recv(),
 * each behaviour aimed by an environment variable at one port.
 *
 * HTTPD_TEST_RECV_LATE_PORT (a peer's port) makes a race certain: every
 * second recv() in a row that finds nothing waits (up to 2 s) for bytes to
 * arrive, then still reports EAGAIN, so the bytes land just after the
 * reader was told there were none, which on a busy machine happens by
 * chance once in thousands of reads.
 *
 * HTTPD_TEST_RECV_COUNT_PORT (the server's own port) logs what each read
 * found, one byte per call appended to HTTPD_TEST_RECV_COUNT_FILE: 'r'
 * bytes, 'e' nothing there (EAGAIN), '0' end of stream, 'x' another error.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define FDS_TRACKED 1024

static unsigned char empty_in_a_row[FDS_TRACKED];

static long port_from_env(const char *name, long *cache)
{
	if (*cache < 0) {
		const char *v = getenv(name);

		*cache = v != NULL ? strtol(v, NULL, 10) : 0;
	}
	return *cache;
}

/* Whether fd's local (or peer's) IPv4 port is the one in the variable name. */
static int port_is_watched(int fd, const char *name, long *cache, int local)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	long watched = port_from_env(name, cache);

	if (watched <= 0)
		return 0;
	if ((local ? getsockname(fd, (struct sockaddr *)&ss, &len) : getpeername(fd, (struct sockaddr *)&ss, &len)) < 0 ||
	    ss.ss_family != AF_INET)
		return 0;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port) == watched;
}

static void count_note(char what)
{
	const char *path = getenv("HTTPD_TEST_RECV_COUNT_FILE");
	int fd;

	if (path == NULL)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	(void)write(fd, &what, 1);
	(void)close(fd);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	static ssize_t (*real_recv)(int, void *, size_t, int);
	static long late_port = -1, count_port = -1;
	ssize_t n;
	int saved;

	if (real_recv == NULL)
		real_recv = (ssize_t (*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
	if (real_recv == NULL) {
		errno = ENOSYS;
		return -1;
	}
	n = real_recv(fd, buf, len, flags);
	saved = errno;
	if (port_is_watched(fd, "HTTPD_TEST_RECV_COUNT_PORT", &count_port, 1))
		count_note(n > 0 ? 'r' : n == 0 ? '0' : saved == EAGAIN ? 'e' : 'x');
	if (fd < 0 || fd >= FDS_TRACKED) {
		errno = saved;
		return n;
	}
	if (n >= 0 || saved != EAGAIN) {
		empty_in_a_row[fd] = 0;
		errno = saved;
		return n;
	}
	if (++empty_in_a_row[fd] % 2 == 0 && port_is_watched(fd, "HTTPD_TEST_RECV_LATE_PORT", &late_port, 0)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		(void)poll(&p, 1, 2000);
	}
	errno = saved;
	return -1;
}
