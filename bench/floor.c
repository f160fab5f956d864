/*
 * The floor: a trivial epoll responder that answers every read with a fixed
 * 1 KiB HTTP/1.1 response and parses nothing.  What the kernel alone costs
 * per request; no real server can be cheaper.
 *
 *   cc -O2 -o floor bench/floor.c && ./floor PORT [close] [spin]
 *
 * With "close" it closes the connection after each answer (close-1k).
 * With "spin" it never sleeps (epoll_wait with a zero timeout, in a loop): a
 * client that writes to a sleeping server pays for waking it, so this is
 * the most requests per second the client can make on this machine, the
 * ceiling for req/s (its CPU per request is meaningless: a whole core).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static char response[2048];
static size_t response_len;

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct epoll_event ev, events[512];
	int one = 1, lfd, epfd, close_after = 0, spin = 0, cacheable = 0;
	char body[1024];

	if (argc < 2)
		return 2;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "close") == 0)
			close_after = 1;
		else if (strcmp(argv[i], "spin") == 0)
			spin = 1;
		else if (strcmp(argv[i], "cacheable") == 0)
			cacheable = 1;   /* the origin of the proxy-cache scenario: fresh for an hour */
		else
			return 2;
	}
	memset(body, 'x', sizeof(body));
	response_len = (size_t)snprintf(response, sizeof(response),
	                                "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n%s%s\r\n",
	                                close_after ? "Connection: close\r\n" : "",
	                                cacheable ? "Cache-Control: max-age=3600\r\n" : "");
	memcpy(response + response_len, body, sizeof(body));
	response_len += sizeof(body);
	addr.sin_port = htons((unsigned short)atoi(argv[1]));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 4096) < 0) {
		perror("floor: listen");
		return 1;
	}
	epfd = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0)
		return 1;
	for (;;) {
		int n = epoll_wait(epfd, events, 512, spin ? 0 : -1);

		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			char buf[4096];

			if (fd == lfd) {
				int c;

				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.fd = c;
					epoll_ctl(epfd, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			if (read(fd, buf, sizeof(buf)) <= 0 || write(fd, response, response_len) < 0 || close_after)
				close(fd);
		}
	}
}
