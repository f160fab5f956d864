/* Plain TCP: the transport is the socket itself. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "transport.h"

static ssize_t tcp_read(struct conn *c, void *buf, size_t len)
{
	return recv(c->fd, buf, len, 0);
}

static ssize_t tcp_writev(struct conn *c, const struct iovec *iov, int iovcnt, bool more)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)iovcnt };

	return sendmsg(c->fd, &mh, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
}

static ssize_t tcp_sendfile(struct conn *c, int fd, off_t *offset, size_t len, bool last)
{
	/*
	 * sendfile takes no MSG_MORE, so the socket is corked instead, for good:
	 * the close() or shutdown() that follows sends what waits, and the FIN
	 * leaves in the same segment as the last bytes, as after a writev with
	 * more.  If corking fails the body still goes out, with its FIN apart.
	 */
	if (last && !c->corked) {
		int one = 1;

		c->corked = setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)) == 0;
	}
	return sendfile(c->fd, fd, offset, len);
}

static int tcp_shutdown(struct conn *c)
{
	return shutdown(c->fd, SHUT_WR);
}

static void tcp_close(struct conn *c)
{
	/* close(2) also removes the fd from the epoll set. */
	close(c->fd);
	c->fd = -1;
}

static int tcp_flush(struct conn *c)
{
	(void)c;
	return 0;   /* plain TCP holds nothing */
}

const struct transport transport_tcp = {
	.name = "tcp",
	.read = tcp_read,
	.writev = tcp_writev,
	.sendfile = tcp_sendfile,
	.shutdown = tcp_shutdown,
	.close = tcp_close,
	.flush = tcp_flush,
	.short_read_drains = true,
};
