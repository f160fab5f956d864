/*
 * The PROXY protocol preamble a load balancer sends before the client's
 * bytes (haproxy's proxy-protocol.txt, versions 1 and 2): who the client
 * is, which address it reached, and (v2) TLVs such as ALPN, the SNI
 * authority, a unique id and the balancer's TLS details.
 *
 * A pure parser, fed whatever has arrived so far: unit-tested and fuzzed.
 */
#ifndef HTTPD_PROXY_PROTOCOL_H
#define HTTPD_PROXY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest v1 line, CRLF included: "PROXY UNKNOWN" and two full IPv6 addresses and ports. */
#define PROXY_V1_MAX      107
/* A v2 header with its addresses and TLVs; longer ones are refused. */
#define PROXY_V2_MAX      4096
#define PROXY_UNIQUE_ID_MAX 128

/* A TLV value: points into the parsed buffer (copy it before the buffer moves). */
struct proxy_bytes {
	const uint8_t *p;
	size_t         len;
};

struct proxy_header {
	int                     version;    /* 1 or 2 */
	/*
	 * false for v2 LOCAL, v1 UNKNOWN and v2 UNSPEC: the balancer speaks
	 * for itself (a health check), so the connection's own endpoints stay.
	 */
	bool                    has_addrs;
	struct sockaddr_storage src, dst;   /* AF_INET, AF_INET6 or AF_UNIX */
	/* v2 TLVs, len 0 when absent */
	struct proxy_bytes      alpn, authority, unique_id, netns;
	bool                    crc32c_checked;
	bool                    ssl;        /* PP2_TYPE_SSL present */
	uint8_t                 ssl_client; /* PP2_CLIENT_* bits */
	uint32_t                ssl_verify; /* 0: the client certificate was verified */
	struct proxy_bytes      ssl_version, ssl_cn, ssl_cipher, ssl_sig_alg, ssl_key_alg;
};

#define PROXY_AGAIN    0   /* a valid beginning: wait for more bytes */
#define PROXY_INVALID (-1)

/*
 * Parses the preamble at the start of buf[0..len).  Returns its length
 * (> 0) with *out filled, PROXY_AGAIN if every byte so far is a valid
 * beginning, or PROXY_INVALID with a short reason in *why.  Nothing past
 * the preamble is looked at: those are the client's bytes.
 */
int proxy_parse(const uint8_t *buf, size_t len, struct proxy_header *out, const char **why);

/*
 * The names modules and log formats use for what a preamble said (see
 * httpd_request_proxy), in a fixed order: proxy_field_index maps a name
 * (len bytes) to its index, or -1.
 */
enum proxy_field {
	PROXY_F_VERSION, PROXY_F_ADDR, PROXY_F_PORT, PROXY_F_BALANCER_ADDR, PROXY_F_BALANCER_PORT,
	PROXY_F_SERVER_ADDR, PROXY_F_SERVER_PORT, PROXY_F_ALPN, PROXY_F_AUTHORITY, PROXY_F_UNIQUE_ID,
	PROXY_F_NETNS, PROXY_F_CRC32C, PROXY_F_SSL, PROXY_F_SSL_VERSION, PROXY_F_SSL_CN, PROXY_F_SSL_CIPHER,
	PROXY_F_SSL_SIG_ALG, PROXY_F_SSL_KEY_ALG, PROXY_F_SSL_VERIFY, PROXY_F_COUNT
};
int proxy_field_index(const char *name, size_t len);

/* CRC32C (Castagnoli), as the v2 PP2_TYPE_CRC32C TLV carries it. */
uint32_t proxy_crc32c(uint32_t crc, const uint8_t *p, size_t len);

#endif
