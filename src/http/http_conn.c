#include "http_conn.h"

#include "conn.h"
#include "http1.h"
#include "http2.h"
#include "listen.h"
#include "log.h"
#include "tls.h"

size_t http_conn_data_size(void)
{
	/* HTTP/2 keeps a pointer to its session there; HTTP/1 its whole state. */
	return sizeof(struct http1) > sizeof(void *) ? sizeof(struct http1) : sizeof(void *);
}

/* The TLS handshake runs until ALPN has chosen: then the protocol it chose takes over. */
static void handshake_run(struct conn *c)
{
	for (;;) {
		bool h2;
		int state = tls_conn_handshake(c, &h2);

		if (state > 0) {
			if (!h2)
				http1_start(c);
			else if (http2_start(c) < 0)
				conn_close(c);
			return;
		}
		if (state < 0 || c->lingering) {
			conn_resume(c);   /* plain HTTP on the TLS port was answered: the connection drains */
			return;
		}
		if (conn_fill(c) != 1)
			return;   /* waits for the client, or closed */
	}
}

static void handshake_timeout(struct conn *c, enum timer_kind kind)
{
	(void)kind;
	conn_close(c);
}

static void handshake_abort(struct conn *c)
{
	(void)c;
}

static const struct conn_protocol tls_handshake = {
	.name    = "tls-handshake",
	.run     = handshake_run,
	.timeout = handshake_timeout,
	.drain   = conn_close,
	.abort   = handshake_abort,
};

int http_conn_begin(struct conn *c)
{
	if (c->tls_listener) {
		c->proto = &tls_handshake;
		if (tls_conn_start(c) < 0) {
			httpd_log(HTTPD_LOG_ERR, "%s: cannot start TLS: out of memory", c->peer);
			return -1;
		}
		timer_arm(c->w->timers, TIMER_HEADER, &c->timer, c->w->now_ms);
		handshake_run(c);
		return 0;
	}
	if (c->listener->flags & LISTEN_H2C)
		return http2_start(c);
	http1_start(c);
	return 0;
}
