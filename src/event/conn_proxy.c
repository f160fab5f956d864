#include "conn_proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "listen.h"
#include "log.h"
#include "cidr.h"
#include "proxy_protocol.h"
#include "scoreboard.h"

/* One allocation per PROXY connection: the values point into data. */
struct conn_proxy {
	const char *value[PROXY_F_COUNT];
	char        data[];
};

enum refusal { REFUSED_FROM, REFUSED_INVALID, REFUSED_TIMEOUT };

/*
 * Counted always, logged at most once a second per worker: a misconfigured
 * balancer (v2 sent where v1 is expected, a missing send-proxy) shows at
 * once in the error log without a scanner being able to flood it.
 */
static void refusal_note(struct worker *w, enum refusal kind, const char *peer, const char *why)
{
	static uint64_t last_s, quiet;
	uint64_t now_s = w->now_ms / 1000;

	if (score_self != NULL)
		score_add(&score_self->c.refused, 1);
	if (kind == REFUSED_FROM)
		w->proxy_refused_from++;
	else if (kind == REFUSED_INVALID)
		w->proxy_refused_invalid++;
	else
		w->proxy_refused_timeout++;
	if (last_s == now_s && last_s != 0) {
		quiet++;
		return;
	}
	httpd_log(HTTPD_LOG_WARN, "%s: PROXY protocol: %s; connection closed%s", peer, why,
	          quiet > 0 ? " (more refusals in the last second not logged)" : "");
	last_s = now_s;
	quiet = 0;
}

bool conn_proxy_admit(struct worker *w, const struct listener *l, int fd, const char *peer)
{
	const struct httpd_config *cfg = w->config;

	if (!(l->flags & LISTEN_PROXY_PROTOCOL) || cfg->proxy_protocol_from_count == 0 ||
	    cidr_list_contains(cfg->proxy_protocol_from, cfg->proxy_protocol_from_count, peer))
		return true;
	refusal_note(w, REFUSED_FROM, peer, "peer not in proxy_protocol_from");
	close(fd);
	return false;
}

static void refuse(struct conn *c, enum refusal kind, const char *why)
{
	refusal_note(c->w, kind, c->peer, why);
	/* Not a byte back: whoever sent this is not a balancer we speak to. */
	conn_close(c);
}

/* Text of b (TLV bytes, or NULL when absent) for the field table. */
struct field_text {
	const char *p;
	size_t      len;
};

static void text_bytes(struct field_text *t, const struct proxy_bytes *b)
{
	if (b->len > 0) {
		t->p = (const char *)b->p;
		t->len = strnlen(t->p, b->len);   /* a NUL inside ends the text */
	}
}

/* Keeps what the preamble said, then makes its source the client. */
static int proxy_apply(struct conn *c, const struct proxy_header *h)
{
	struct field_text f[PROXY_F_COUNT] = { { NULL, 0 } };
	char num[6][16], src[80], dst[80];
	unsigned src_port = 0, dst_port = 0;
	struct conn_proxy *p;
	size_t total = 0;
	char *d;

	snprintf(num[0], sizeof(num[0]), "%d", h->version);
	f[PROXY_F_VERSION] = (struct field_text){ num[0], strlen(num[0]) };
	snprintf(num[1], sizeof(num[1]), "%u", c->peer_port);
	f[PROXY_F_BALANCER_ADDR] = (struct field_text){ c->peer, strlen(c->peer) };
	f[PROXY_F_BALANCER_PORT] = (struct field_text){ num[1], strlen(num[1]) };
	if (h->has_addrs) {
		conn_addr_split((const struct sockaddr *)&h->src, src, sizeof(src), &src_port);
		conn_addr_split((const struct sockaddr *)&h->dst, dst, sizeof(dst), &dst_port);
		snprintf(num[2], sizeof(num[2]), "%u", src_port);
		snprintf(num[3], sizeof(num[3]), "%u", dst_port);
		f[PROXY_F_ADDR] = (struct field_text){ src, strlen(src) };
		f[PROXY_F_PORT] = (struct field_text){ num[2], strlen(num[2]) };
		f[PROXY_F_SERVER_ADDR] = (struct field_text){ dst, strlen(dst) };
		f[PROXY_F_SERVER_PORT] = (struct field_text){ num[3], strlen(num[3]) };
	}
	text_bytes(&f[PROXY_F_ALPN], &h->alpn);
	text_bytes(&f[PROXY_F_AUTHORITY], &h->authority);
	text_bytes(&f[PROXY_F_UNIQUE_ID], &h->unique_id);
	text_bytes(&f[PROXY_F_NETNS], &h->netns);
	if (h->crc32c_checked)
		f[PROXY_F_CRC32C] = (struct field_text){ "1", 1 };
	if (h->ssl) {
		snprintf(num[4], sizeof(num[4]), "%u", h->ssl_client);
		snprintf(num[5], sizeof(num[5]), "%u", h->ssl_verify);
		f[PROXY_F_SSL] = (struct field_text){ num[4], strlen(num[4]) };
		f[PROXY_F_SSL_VERIFY] = (struct field_text){ num[5], strlen(num[5]) };
		text_bytes(&f[PROXY_F_SSL_VERSION], &h->ssl_version);
		text_bytes(&f[PROXY_F_SSL_CN], &h->ssl_cn);
		text_bytes(&f[PROXY_F_SSL_CIPHER], &h->ssl_cipher);
		text_bytes(&f[PROXY_F_SSL_SIG_ALG], &h->ssl_sig_alg);
		text_bytes(&f[PROXY_F_SSL_KEY_ALG], &h->ssl_key_alg);
	}
	for (int i = 0; i < PROXY_F_COUNT; i++)
		if (f[i].p != NULL)
			total += f[i].len + 1;
	p = malloc(sizeof(*p) + total);
	if (p == NULL) {
		httpd_log(HTTPD_LOG_ERR, "%s: out of memory for the PROXY protocol header", c->peer);
		return -1;
	}
	d = p->data;
	for (int i = 0; i < PROXY_F_COUNT; i++) {
		p->value[i] = NULL;
		if (f[i].p == NULL)
			continue;
		memcpy(d, f[i].p, f[i].len);
		d[f[i].len] = '\0';
		p->value[i] = d;
		d += f[i].len + 1;
	}
	conn_proxy_free(c);
	c->proxy = p;
	if (h->has_addrs) {
		snprintf(c->peer, sizeof(c->peer), "%s", src);
		c->peer_port = src_port;
	}
	return 0;
}

void conn_proxy_read(struct conn *c)
{
	struct worker *w = c->w;
	char peer[sizeof(c->peer)];

	for (;;) {
		if (c->in_len > c->in_off) {
			struct proxy_header h;
			const char *why;
			int n = proxy_parse((const uint8_t *)c->in + c->in_off, c->in_len - c->in_off, &h, &why);

			if (n == PROXY_INVALID) {
				refuse(c, REFUSED_INVALID, why);
				return;
			}
			if (n > 0) {
				if (proxy_apply(c, &h) < 0) {
					conn_close(c);
					return;
				}
				c->in_off += (size_t)n;
				c->preamble = false;
				timer_disarm(&c->timer);
				if (w->hooks->conn_begin(c) < 0)
					conn_close(c);
				return;
			}
		}
		if (c->in_len > c->in_off)
			memcpy(peer, c->peer, sizeof(peer));
		else
			peer[0] = '\0';
		switch (conn_fill(c)) {
		case 1:
			continue;
		case 0:
			return;
		default:
			/* Gone in the middle of a preamble (a bare connect, as a TCP check does, is not counted). */
			if (peer[0] != '\0')
				refusal_note(w, REFUSED_INVALID, peer, "connection closed in the middle of the header");
			return;
		}
	}
}

void conn_proxy_timeout(struct conn *c)
{
	refuse(c, REFUSED_TIMEOUT, c->in_len > c->in_off ? "incomplete header at proxy_protocol_timeout"
	                                                 : "no header within proxy_protocol_timeout");
}

const char *conn_proxy_field(const struct conn *c, const char *name)
{
	int i;

	if (c == NULL || c->proxy == NULL || (i = proxy_field_index(name, strlen(name))) < 0)
		return NULL;
	return c->proxy->value[i];
}

const char *conn_proxy_value(const struct conn *c, int index)
{
	if (c == NULL || c->proxy == NULL || index < 0 || index >= PROXY_F_COUNT)
		return NULL;
	return c->proxy->value[index];
}

void conn_proxy_free(struct conn *c)
{
	free(c->proxy);
	c->proxy = NULL;
}
