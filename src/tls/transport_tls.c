/*
 * TLS as a transport: the HTTP codec above reads and writes plaintext and
 * never knows.  Non-blocking throughout: OpenSSL's "want read" and "want
 * write" become EAGAIN, and the handshake happens inside the first read,
 * under the header timeout, so a slow handshake holds nothing but its
 * connection.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "conn.h"
#include "log.h"

/* One TLS record's worth of plaintext: what a write gathers and a file read fetches. */
#define TLS_RECORD 16384

static unsigned char stage[TLS_RECORD];
static bool ktls_missing_logged;

/*
 * Gathering.  OpenSSL sends each record by itself (a partial-write
 * SSL_write makes one record), so 64 KiB of HTTP/2 frames cost four sends;
 * on loopback each send is also the receiver's softirq and wakeup, and
 * h2-1m spent over a quarter more system time (340 against 265 us per MiB)
 * than with its records sent together.  For a connection whose protocol flushes (c->tx_gather), the
 * records of one write are made into this buffer through a BIO of ours
 * and sent at once; what the socket does not take is held (c->tx_holding)
 * and goes out before anything else.  While bytes are held, whatever
 * OpenSSL writes on its own (a KeyUpdate answered inside a read, an alert)
 * is added behind them, so the records stay in order.
 */
#define GATHER_MAX (256 * 1024)   /* ciphertext per send; the buffer keeps its largest size */

static char        *gather;
static size_t       gather_len, gather_cap;
static BIO         *gather_bio;
static BIO_METHOD  *gather_method;

/* What the socket did not take: bytes [off, len) of data, in the SSL's ex_data (an idle connection pays nothing). */
struct tx_held {
	size_t len, off;
	char   data[];
};

static int held_index = -1;

static struct tx_held *held_of(struct conn *c)
{
	return c->tx_holding ? SSL_get_ex_data(c->transport_data, held_index) : NULL;
}

static bool held_set(struct conn *c, struct tx_held *h)
{
	if (held_index < 0 && (held_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)
		return false;
	if (SSL_set_ex_data(c->transport_data, held_index, h) != 1)
		return false;
	c->tx_holding = h != NULL;
	return true;
}

static const struct transport transport_tls;

static SSL *ssl_of(struct conn *c)
{
	return c->transport_data;
}

/* The reason OpenSSL gave for a failed handshake or record, logged once per connection at info. */
static void tls_failure_log(struct conn *c, const char *what)
{
	char text[256];
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "%s", errno != 0 ? strerror(errno) : "connection closed");
	httpd_log(HTTPD_LOG_INFO, "%s: TLS %s failed: %s", c->peer, what, text);
	ERR_clear_error();
}

/*
 * Plain HTTP on a TLS port: OpenSSL recognises the request line.  Answer
 * in plain text, as nginx does, then stop writing and let the lingering
 * close drain the rest, so the answer is not lost to a reset.
 */
static void plain_http_answer(struct conn *c)
{
	static const char msg[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 48\r\n"
	                          "Connection: close\r\n\r\nThis port speaks HTTPS: use https:// to reach it\n";

	if (send(c->fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) < 0 || shutdown(c->fd, SHUT_WR) < 0)
		return;
	SSL_free(ssl_of(c));
	c->transport_data = NULL;
	c->transport = &transport_tcp;
	(void)conn_linger_begin(c, false);
}

static int gather_write(BIO *b, const char *in, int size)
{
	size_t need;

	BIO_clear_retry_flags(b);
	if (size <= 0)
		return 0;
	need = gather_len + (size_t)size;
	if (need > gather_cap) {
		size_t cap = gather_cap ? gather_cap : 4 * (TLS_RECORD + 256);
		char *grown;

		while (cap < need)
			cap *= 2;
		if ((grown = realloc(gather, cap)) == NULL)
			return -1;   /* the write fails as a socket write would */
		gather = grown;
		gather_cap = cap;
	}
	memcpy(gather + gather_len, in, (size_t)size);
	gather_len = need;
	return size;
}

static long gather_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/* The process's gathering BIO, made once; NULL if OpenSSL could not make it (then records go one by one). */
static BIO *gather_bio_get(void)
{
	if (gather_bio == NULL && gather_method == NULL) {
		gather_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "httpd gather");
		if (gather_method == NULL || !BIO_meth_set_write(gather_method, gather_write) ||
		    !BIO_meth_set_ctrl(gather_method, gather_ctrl))
			return NULL;
		gather_bio = BIO_new(gather_method);
		if (gather_bio != NULL)
			BIO_set_init(gather_bio, 1);
	}
	return gather_bio;
}

/* Points ssl's writes at the gathering buffer (emptied); returns the BIO to put back, or NULL (not gathering). */
static BIO *gather_begin(SSL *ssl)
{
	BIO *sock = SSL_get_wbio(ssl);
	BIO *g = gather_bio_get();

	if (g == NULL || sock == NULL || BIO_get_ktls_send(sock))
		return NULL;   /* kTLS writes plaintext to the kernel: nothing to gather */
	gather_len = 0;
	BIO_up_ref(sock);
	BIO_up_ref(g);
	SSL_set0_wbio(ssl, g);
	return sock;
}

static void gather_end(SSL *ssl, BIO *sock)
{
	SSL_set0_wbio(ssl, sock);   /* drops the gathering BIO's reference, takes back ours */
}

/* Adds len bytes behind what c holds. */
static bool held_add(struct conn *c, const char *data, size_t len)
{
	struct tx_held *h = held_of(c);
	size_t keep = h != NULL ? h->len - h->off : 0;
	struct tx_held *n;

	if (len == 0)
		return true;
	if ((n = malloc(sizeof(*n) + keep + len)) == NULL)
		return false;
	n->len = keep + len;
	n->off = 0;
	if (keep > 0)
		memcpy(n->data, h->data + h->off, keep);
	memcpy(n->data + keep, data, len);
	if (!held_set(c, n)) {
		free(n);
		return false;
	}
	free(h);
	return true;
}

/* Drops what c holds (the connection is closing, or its bytes went). */
static void held_drop(struct conn *c)
{
	struct tx_held *h = held_of(c);

	if (h != NULL) {
		(void)held_set(c, NULL);
		free(h);
		c->tx_holding = false;
	}
}

/* Sends as much of data as the socket takes: the bytes sent, or -1 with errno on a failed socket (not EAGAIN). */
static ssize_t send_taken(int fd, const char *data, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -1;
		if (n < 0)
			break;
		off += (size_t)n;
	}
	return (ssize_t)off;
}

/* Sends what c holds: 0 once all of it went, -1 with errno (EAGAIN: the socket is full). */
static int tls_flush(struct conn *c)
{
	struct tx_held *h = held_of(c);
	ssize_t n;

	if (h == NULL)
		return 0;
	if ((n = send_taken(c->fd, h->data + h->off, h->len - h->off)) < 0)
		return -1;
	h->off += (size_t)n;
	if (h->off < h->len) {
		errno = EAGAIN;
		return -1;
	}
	held_drop(c);
	return 0;
}

/* Maps an SSL_* failure to what a socket call would have said. */
static ssize_t ssl_failed(struct conn *c, int rc, bool writing, const char *what)
{
	SSL *ssl = ssl_of(c);
	int err = SSL_get_error(ssl, rc);

	switch (err) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		if (writing)
			c->tls_write_wants_read = true;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		if (!writing) {
			/* A read that must write (a handshake message): resume it when the socket drains. */
			c->tls_read_wants_write = true;
			conn_wait_writable(c);
		}
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;   /* close_notify */
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (errno == 0 || errno == EAGAIN)
			errno = ECONNRESET;
		return -1;
	default:
		if (!SSL_is_init_finished(ssl) && ERR_GET_REASON(ERR_peek_error()) == SSL_R_HTTP_REQUEST) {
			ERR_clear_error();
			plain_http_answer(c);
			errno = EAGAIN;
			return -1;
		}
		tls_failure_log(c, SSL_is_init_finished(ssl) ? what : "handshake");
		errno = EPROTO;
		return -1;
	}
}

/*
 * Up to len bytes as records made together and sent at once (the
 * caller's bytes are then OpenSSL's: what the socket did not take is
 * held, and the next call sends it first).
 */
static ssize_t tls_write_gathered(struct conn *c, const void *buf, size_t len, BIO *sock)
{
	SSL *ssl = ssl_of(c);
	size_t done = 0;
	ssize_t sent;
	int rc = 1;

	ERR_clear_error();
	while (done < len && gather_len < GATHER_MAX) {
		size_t n;

		rc = SSL_write_ex(ssl, (const char *)buf + done, len - done, &n);
		if (rc != 1)
			break;
		done += n;
	}
	gather_end(ssl, sock);
	/* Even a failed write may have made an alert: it goes out like the rest, and what the socket leaves is held. */
	if ((sent = send_taken(c->fd, gather, gather_len)) < 0)
		return -1;
	if (!held_add(c, gather + sent, gather_len - (size_t)sent)) {
		errno = ENOMEM;
		return -1;
	}
	if (done > 0)
		return (ssize_t)done;
	return ssl_failed(c, rc, true, "write");
}

static ssize_t tls_read(struct conn *c, void *buf, size_t len)
{
	BIO *sock = NULL;
	size_t n;
	int rc;

	if (ssl_of(c) == NULL)
		return transport_tcp.read(c, buf, len);
	c->tls_read_wants_write = false;
	/* Bytes are held: what OpenSSL writes inside this read goes behind them. */
	if (c->tx_holding)
		sock = gather_begin(ssl_of(c));
	ERR_clear_error();
	rc = SSL_read_ex(ssl_of(c), buf, len, &n);
	if (sock != NULL) {
		gather_end(ssl_of(c), sock);
		if (!held_add(c, gather, gather_len)) {
			errno = ENOMEM;
			return -1;
		}
	}
	if (rc == 1)
		return (ssize_t)n;
	return ssl_failed(c, rc, false, "read");
}

static ssize_t tls_write(struct conn *c, const void *buf, size_t len)
{
	size_t n;
	int rc;

	c->tls_write_wants_read = false;
	ERR_clear_error();
	rc = SSL_write_ex(ssl_of(c), buf, len, &n);
	if (rc == 1)
		return (ssize_t)n;
	return ssl_failed(c, rc, true, "write");
}

/*
 * Head and body gathered into one record: one encryption, one send.  A
 * retry after EAGAIN passes the same bytes again (the caller's iovecs have
 * not moved), which is what OpenSSL asks of a repeated SSL_write.
 */
static ssize_t tls_writev(struct conn *c, const struct iovec *iov, int iovcnt, bool more)
{
	size_t len = 0;
	BIO *sock;

	(void)more;
	if (ssl_of(c) == NULL)
		return transport_tcp.writev(c, iov, iovcnt, more);
	if (c->tx_holding && tls_flush(c) < 0)
		return -1;
	if (iov[0].iov_len > TLS_RECORD && c->tx_gather && SSL_is_init_finished(ssl_of(c)) &&
	    (sock = gather_begin(ssl_of(c))) != NULL)
		return tls_write_gathered(c, iov[0].iov_base, iov[0].iov_len, sock);
	if (iovcnt == 1 || iov[0].iov_len >= TLS_RECORD)
		return tls_write(c, iov[0].iov_base, iov[0].iov_len);
	for (int i = 0; i < iovcnt && len < TLS_RECORD; i++) {
		size_t take = iov[i].iov_len < TLS_RECORD - len ? iov[i].iov_len : TLS_RECORD - len;

		memcpy(stage + len, iov[i].iov_base, take);
		len += take;
	}
	return tls_write(c, stage, len);
}

static ssize_t tls_sendfile(struct conn *c, int fd, off_t *offset, size_t len, bool last)
{
	SSL *ssl = ssl_of(c);
	ssize_t n;

	if (ssl == NULL)
		return transport_tcp.sendfile(c, fd, offset, len, last);
	if (c->tx_holding && tls_flush(c) < 0)
		return -1;
	if (c->w->config->tls_ktls) {
		if (BIO_get_ktls_send(SSL_get_wbio(ssl))) {
			ERR_clear_error();
			n = SSL_sendfile(ssl, fd, *offset, len, 0);
			if (n > 0) {
				*offset += n;
				return n;
			}
			return ssl_failed(c, (int)n, true, "sendfile");
		}
		if (!ktls_missing_logged) {
			ktls_missing_logged = true;
			httpd_log(HTTPD_LOG_NOTICE, "tls_ktls: the kernel does not offer TLS offload for this connection "
			          "(is the tls module loaded?); file bodies go out with read and SSL_write");
		}
	}
	if (len > TLS_RECORD)
		len = TLS_RECORD;
	n = pread(fd, stage, len, *offset);
	if (n <= 0)
		return n;
	n = tls_write(c, stage, (size_t)n);
	if (n > 0)
		*offset += n;
	return n;
}

static int tls_shutdown(struct conn *c)
{
	SSL *ssl = ssl_of(c);

	/* What is held goes first; a protocol shuts down only once it flushed, so this is a last try. */
	if (c->tx_holding && tls_flush(c) < 0) {
		held_drop(c);
		return shutdown(c->fd, SHUT_WR);   /* no close_notify after a cut in the records */
	}
	/* close_notify first, so the client can tell our end of the data from a cut. */
	if (ssl != NULL && SSL_is_init_finished(ssl)) {
		ERR_clear_error();
		(void)SSL_shutdown(ssl);
		ERR_clear_error();
	}
	return shutdown(c->fd, SHUT_WR);
}

static void tls_close(struct conn *c)
{
	SSL *ssl = ssl_of(c);

	if (ssl != NULL) {
		if (SSL_is_init_finished(ssl) && !c->peer_closed && !c->tx_holding) {
			ERR_clear_error();
			(void)SSL_shutdown(ssl);
		}
		held_drop(c);
		SSL_free(ssl);
		ERR_clear_error();
		c->transport_data = NULL;
	}
	close(c->fd);
	c->fd = -1;
}

static const struct transport transport_tls = {
	.name = "tls",
	.read = tls_read,
	.writev = tls_writev,
	.sendfile = tls_sendfile,
	.shutdown = tls_shutdown,
	.close = tls_close,
	.flush = tls_flush,
};

/*
 * Behind a PROXY preamble the ClientHello may already sit in the input
 * buffer, read together with the preamble.  This BIO hands those bytes to
 * OpenSSL first, then reads the socket; the input buffer is then free for
 * plaintext.
 */
struct prefix_bio {
	int     fd;
	char   *buf;
	size_t  off, len;
};

static int prefix_read(BIO *b, char *out, int size)
{
	struct prefix_bio *p = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (size <= 0)
		return 0;
	if (p->off < p->len) {
		size_t take = p->len - p->off < (size_t)size ? p->len - p->off : (size_t)size;

		memcpy(out, p->buf + p->off, take);
		p->off += take;
		if (p->off == p->len) {
			free(p->buf);
			p->buf = NULL;
		}
		return (int)take;
	}
	n = recv(p->fd, out, (size_t)size, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static int prefix_write(BIO *b, const char *in, int size)
{
	struct prefix_bio *p = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = send(p->fd, in, (size_t)size, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static long prefix_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int prefix_destroy(BIO *b)
{
	struct prefix_bio *p = BIO_get_data(b);

	if (p != NULL) {
		free(p->buf);
		free(p);
	}
	BIO_set_data(b, NULL);
	return 1;
}

static BIO *prefix_bio_new(struct conn *c)
{
	static BIO_METHOD *method;
	struct prefix_bio *p;
	BIO *b;

	if (method == NULL) {
		method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "httpd prefix");
		if (method == NULL || BIO_meth_set_read(method, prefix_read) != 1 ||
		    BIO_meth_set_write(method, prefix_write) != 1 || BIO_meth_set_ctrl(method, prefix_ctrl) != 1 ||
		    BIO_meth_set_destroy(method, prefix_destroy) != 1)
			return NULL;
	}
	p = calloc(1, sizeof(*p));
	b = p != NULL ? BIO_new(method) : NULL;
	if (b == NULL) {
		free(p);
		return NULL;
	}
	p->fd = c->fd;
	p->len = c->in_len - c->in_off;
	p->buf = malloc(p->len);
	if (p->buf == NULL) {
		free(p);
		BIO_free(b);
		return NULL;
	}
	memcpy(p->buf, c->in + c->in_off, p->len);
	c->in_off = c->in_len = 0;
	BIO_set_data(b, p);
	BIO_set_init(b, 1);
	return b;
}

int tls_conn_start(struct conn *c)
{
	SSL *ssl = SSL_new(tls_default_ctx(c->w->config));
	BIO *prefix = NULL;

	if (ssl != NULL && c->in_len > c->in_off) {
		prefix = prefix_bio_new(c);
		if (prefix != NULL)
			SSL_set_bio(ssl, prefix, prefix);
	}
	if (ssl == NULL || (prefix == NULL && (c->in_len > c->in_off || SSL_set_fd(ssl, c->fd) != 1))) {
		SSL_free(ssl);
		ERR_clear_error();
		return -1;
	}
	SSL_set_app_data(ssl, c);
	SSL_set_accept_state(ssl);
	/* A plain read's "socket emptied" (a PROXY header's) says nothing of what TLS holds. */
	c->drained = false;
	c->transport = &transport_tls;
	c->transport_data = ssl;
	return 0;
}

/* X509 name as RFC 2253 text ("CN=alice,O=Example"). */
static const char *name_text(const X509_NAME *name, char *buf, size_t size)
{
	BIO *mem = BIO_new(BIO_s_mem());
	int n;

	if (mem == NULL)
		return NULL;
	if (X509_NAME_print_ex(mem, name, 0, XN_FLAG_RFC2253) < 0) {
		BIO_free(mem);
		return NULL;
	}
	n = BIO_read(mem, buf, (int)size - 1);
	BIO_free(mem);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

int tls_conn_handshake(struct conn *c, bool *alpn_h2)
{
	SSL *ssl = c->transport == &transport_tls ? ssl_of(c) : NULL;
	const unsigned char *p;
	unsigned len;

	*alpn_h2 = false;
	if (ssl == NULL)
		return -1;
	if (!SSL_is_init_finished(ssl))
		return 0;
	SSL_get0_alpn_selected(ssl, &p, &len);
	*alpn_h2 = len == 2 && memcmp(p, "h2", 2) == 0;
	return 1;
}

bool tls_conn_peer_verified(struct conn *c)
{
	SSL *ssl = c->transport == &transport_tls ? ssl_of(c) : NULL;

	return ssl != NULL && SSL_get0_peer_certificate(ssl) != NULL && SSL_get_verify_result(ssl) == X509_V_OK;
}

const char *tls_conn_field(struct conn *c, const char *field, char *buf, size_t size)
{
	SSL *ssl = c->transport == &transport_tls ? ssl_of(c) : NULL;

	if (ssl == NULL || size == 0)
		return NULL;
	if (strcmp(field, "protocol") == 0)
		return SSL_get_version(ssl);
	if (strcmp(field, "cipher") == 0)
		return SSL_get_cipher_name(ssl);
	if (strcmp(field, "server_name") == 0)
		return SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (strcmp(field, "session_reused") == 0)
		return SSL_session_reused(ssl) ? "r" : ".";
	if (strcmp(field, "alpn") == 0) {
		const unsigned char *p;
		unsigned len;

		SSL_get0_alpn_selected(ssl, &p, &len);
		if (len == 0 || len >= size)
			return NULL;
		memcpy(buf, p, len);
		buf[len] = '\0';
		return buf;
	}
	if (strcmp(field, "client_verify") == 0 || strcmp(field, "client_subject") == 0 ||
	    strcmp(field, "client_issuer") == 0) {
		X509 *peer = SSL_get0_peer_certificate(ssl);
		long verify;

		if (strcmp(field, "client_verify") != 0)
			return peer == NULL ? NULL
			     : name_text(field[7] == 's' ? X509_get_subject_name(peer) : X509_get_issuer_name(peer), buf, size);
		if (peer == NULL)
			return "NONE";
		verify = SSL_get_verify_result(ssl);
		if (verify == X509_V_OK)
			return "SUCCESS";
		snprintf(buf, size, "FAILED:%s", X509_verify_cert_error_string(verify));
		return buf;
	}
	return NULL;
}
