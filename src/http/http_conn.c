#include "http_conn.h"

#include "conn.h"
#include "http1.h"
#include "log.h"
#include "tls.h"

size_t http_conn_data_size(void)
{
	return sizeof(struct http1);
}

int http_conn_begin(struct conn *c)
{
	/* The protocol first: a failing handshake closes through it. */
	c->proto = &http1_protocol;
	if (c->tls_listener && tls_conn_start(c) < 0) {
		httpd_log(HTTPD_LOG_ERR, "%s: cannot start TLS: out of memory", c->peer);
		return -1;
	}
	http1_start(c);
	return 0;
}
