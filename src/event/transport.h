/*
 * The transport under a connection: how bytes reach and leave the client.
 * Plain TCP is one implementation (transport_tcp.c); TLS and the PROXY
 * protocol preamble plug in here as others.  Nothing above this layer
 * calls recv, send, sendmsg or sendfile on a client socket.
 *
 * Every function returns what the system call would: bytes, 0 for EOF on
 * read, or -1 with errno (EAGAIN when the socket is not ready).
 */
#ifndef HTTPD_TRANSPORT_H
#define HTTPD_TRANSPORT_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

struct conn;

struct transport {
	const char *name;
	ssize_t (*read)(struct conn *c, void *buf, size_t len);
	/* more: further bytes follow at once (MSG_MORE, a TLS record to fill) */
	ssize_t (*writev)(struct conn *c, const struct iovec *iov, int iovcnt, bool more);
	/* len bytes of fd from *offset, advancing it; last: nothing follows but the close (its FIN may wait for them) */
	ssize_t (*sendfile)(struct conn *c, int fd, off_t *offset, size_t len, bool last);
	/* No more bytes will be written (lingering close). */
	int     (*shutdown)(struct conn *c);
	/* Closes the socket and frees what the transport holds. */
	void    (*close)(struct conn *c);
	/*
	 * Writes what the transport holds (c->tx_holding: TLS records gathered
	 * for one send that the socket did not all take): 0 once nothing is
	 * held, -1 with errno.  Only a connection with c->tx_gather set is
	 * ever held for, and its protocol calls this when it has nothing else
	 * to write.
	 */
	int     (*flush)(struct conn *c);
	/* A read shorter than asked for emptied the socket (TCP; not TLS, which may hold a record). */
	bool    short_read_drains;
};

extern const struct transport transport_tcp;

#endif
