#include "control.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

union control_buf {
	struct cmsghdr align;
	char           buf[CMSG_SPACE(CONTROL_FDS_MAX * sizeof(int))];
};

int control_send(int sock, char kind, const int *fds, size_t nfds)
{
	union control_buf control;
	struct iovec iov = { .iov_base = &kind, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (sock < 0 || nfds > CONTROL_FDS_MAX)
		return -1;
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == 1 ? 0 : -1;
}

int control_recv(int sock, int fds[CONTROL_FDS_MAX], size_t *nfds)
{
	union control_buf control;
	char kind;
	struct iovec iov = { .iov_base = &kind, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
	                     .msg_controllen = sizeof(control.buf) };

	*nfds = 0;
	if (sock < 0 || recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
		return -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > CONTROL_FDS_MAX) {
			/* More than any message carries: keep none of them. */
			int extra[CONTROL_FDS_MAX * 4];

			n = n > sizeof(extra) / sizeof(extra[0]) ? sizeof(extra) / sizeof(extra[0]) : n;
			memcpy(extra, CMSG_DATA(cm), n * sizeof(int));
			for (size_t i = 0; i < n; i++)
				close(extra[i]);
			continue;
		}
		memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
		*nfds = n;
	}
	return (unsigned char)kind;
}
