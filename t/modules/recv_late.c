/*
 * For the test suite only (LD_PRELOAD into the server): makes a race
 * certain.  On sockets whose peer port is HTTPD_TEST_RECV_LATE_PORT, every
 * second recv() in a row that finds nothing waits (up to 2 s) for bytes
 * to arrive, then still reports EAGAIN: the bytes land just after the
 * reader was told there were none, which on a busy machine happens by
 * chance once in thousands of reads.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

#define FDS_TRACKED 1024

static unsigned char empty_in_a_row[FDS_TRACKED];

static int peer_port_is_watched(int fd)
{
	static long watched = -1;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (watched < 0) {
		const char *v = getenv("HTTPD_TEST_RECV_LATE_PORT");

		watched = v != NULL ? strtol(v, NULL, 10) : 0;
	}
	if (watched <= 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != AF_INET)
		return 0;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port) == watched;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	static ssize_t (*real_recv)(int, void *, size_t, int);
	ssize_t n;
	int saved;

	if (real_recv == NULL)
		real_recv = (ssize_t (*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
	if (real_recv == NULL) {
		errno = ENOSYS;
		return -1;
	}
	n = real_recv(fd, buf, len, flags);
	if (fd < 0 || fd >= FDS_TRACKED)
		return n;
	if (n >= 0 || errno != EAGAIN) {
		empty_in_a_row[fd] = 0;
		return n;
	}
	saved = errno;
	if (++empty_in_a_row[fd] % 2 == 0 && peer_port_is_watched(fd)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		(void)poll(&p, 1, 2000);
	}
	errno = saved;
	return -1;
}
