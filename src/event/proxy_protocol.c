#include "proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

static const uint8_t v2_signature[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

enum {
	PP2_CMD_LOCAL = 0x0, PP2_CMD_PROXY = 0x1,
	PP2_FAM_UNSPEC = 0x0, PP2_FAM_INET = 0x1, PP2_FAM_INET6 = 0x2, PP2_FAM_UNIX = 0x3,
	PP2_TRANS_UNSPEC = 0x0, PP2_TRANS_STREAM = 0x1, PP2_TRANS_DGRAM = 0x2,
	PP2_TYPE_ALPN = 0x01, PP2_TYPE_AUTHORITY = 0x02, PP2_TYPE_CRC32C = 0x03, PP2_TYPE_NOOP = 0x04,
	PP2_TYPE_UNIQUE_ID = 0x05, PP2_TYPE_SSL = 0x20, PP2_SUBTYPE_SSL_VERSION = 0x21,
	PP2_SUBTYPE_SSL_CN = 0x22, PP2_SUBTYPE_SSL_CIPHER = 0x23, PP2_SUBTYPE_SSL_SIG_ALG = 0x24,
	PP2_SUBTYPE_SSL_KEY_ALG = 0x25, PP2_TYPE_NETNS = 0x30,
};

static const char *const field_names[PROXY_F_COUNT] = {
	"version", "addr", "port", "balancer_addr", "balancer_port", "server_addr", "server_port",
	"alpn", "authority", "unique_id", "netns", "crc32c", "ssl", "ssl_version", "ssl_cn",
	"ssl_cipher", "ssl_sig_alg", "ssl_key_alg", "ssl_verify",
};

int proxy_field_index(const char *name, size_t len)
{
	for (int i = 0; i < PROXY_F_COUNT; i++)
		if (strlen(field_names[i]) == len && memcmp(field_names[i], name, len) == 0)
			return i;
	return -1;
}

uint32_t proxy_crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
	/* Bitwise: a header is tens of bytes, once per connection; no table to build or share. */
	crc = ~crc;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static int invalid(const char **why, const char *reason)
{
	*why = reason;
	return PROXY_INVALID;
}

/* --- version 1: one text line ------------------------------------------- */

/* A decimal 0-max without leading zeros; false otherwise. */
static bool v1_number(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* Dotted quad with four decimal octets, no leading zeros (inet_pton's strictness varies by libc). */
static bool v1_ipv4(const char *s, size_t len, struct in_addr *out)
{
	uint8_t octets[4];
	size_t start = 0;
	int n = 0;

	for (size_t i = 0; i <= len; i++) {
		unsigned v;

		if (i < len && s[i] != '.')
			continue;
		if (n == 4 || !v1_number(s + start, i - start, 255, &v) || i - start > 3)
			return false;
		octets[n++] = (uint8_t)v;
		start = i + 1;
	}
	if (n != 4)
		return false;
	memcpy(&out->s_addr, octets, 4);
	return true;
}

static bool v1_ipv6(const char *s, size_t len, struct in6_addr *out)
{
	char text[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(text))
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(AF_INET6, text, out) == 1;
}

/* The next space-separated field of line[*pos..end): exactly one space between fields. */
static bool v1_field(const char *line, size_t end, size_t *pos, const char **field, size_t *len)
{
	size_t start = *pos, i = start;

	while (i < end && line[i] != ' ')
		i++;
	if (i == start)
		return false;
	*field = line + start;
	*len = i - start;
	*pos = i < end ? i + 1 : i;
	/* A space must be followed by a field: no trailing or double spaces. */
	return i == end || i + 1 < end;
}

static bool v1_addr(int family, const char *s, size_t len, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		return v1_ipv4(s, len, &sin->sin_addr);
	}
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		return v1_ipv6(s, len, &sin6->sin6_addr);
	}
}

static void port_set(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static int v1_parse(const uint8_t *buf, size_t len, struct proxy_header *out, const char **why)
{
	static const char prefix[] = "PROXY ";
	const char *line = (const char *)buf;
	const char *f;
	size_t i, pos, flen;
	unsigned sport, dport;
	int family;

	if (memcmp(buf, prefix, len < 6 ? len : 6) != 0)
		return invalid(why, "not a PROXY protocol header");
	/* The CR may be at most at offset 105, so CRLF ends by byte 107. */
	for (i = 0; i < len && i < PROXY_V1_MAX - 1; i++) {
		if (buf[i] == '\r')
			break;
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return invalid(why, buf[i] == '\n' ? "v1: LF without CR" : "v1: control or non-ASCII byte");
	}
	if (i == PROXY_V1_MAX - 1)
		return invalid(why, "v1: line longer than 107 bytes");
	if (i + 1 >= len)
		return PROXY_AGAIN;
	if (buf[i + 1] != '\n')
		return invalid(why, "v1: CR without LF");
	if (i < 6)
		return invalid(why, "v1: no protocol");

	memset(out, 0, sizeof(*out));
	out->version = 1;
	pos = 6;
	if (!v1_field(line, i, &pos, &f, &flen))
		return invalid(why, "v1: no protocol");
	if (flen == 7 && memcmp(f, "UNKNOWN", 7) == 0)
		return (int)(i + 2);   /* the rest of the line is to be ignored */
	if (flen == 4 && memcmp(f, "TCP4", 4) == 0)
		family = AF_INET;
	else if (flen == 4 && memcmp(f, "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return invalid(why, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	if (pos == i)
		return invalid(why, "v1: addresses missing");
	if (!v1_field(line, i, &pos, &f, &flen) || !v1_addr(family, f, flen, &out->src))
		return invalid(why, "v1: bad source address");
	if (!v1_field(line, i, &pos, &f, &flen) || !v1_addr(family, f, flen, &out->dst))
		return invalid(why, "v1: bad destination address");
	if (!v1_field(line, i, &pos, &f, &flen) || !v1_number(f, flen, 65535, &sport))
		return invalid(why, "v1: bad source port");
	if (!v1_field(line, i, &pos, &f, &flen) || !v1_number(f, flen, 65535, &dport))
		return invalid(why, "v1: bad destination port");
	if (pos != i)
		return invalid(why, "v1: trailing fields");
	port_set(&out->src, sport);
	port_set(&out->dst, dport);
	out->has_addrs = true;
	return (int)(i + 2);
}

/* --- version 2: binary -------------------------------------------------- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void bytes_set(struct proxy_bytes *b, const uint8_t *p, size_t len)
{
	if (b->p == NULL) {   /* the first of duplicates wins */
		b->p = p;
		b->len = len;
	}
}

static int v2_ssl_parse(const uint8_t *p, size_t len, struct proxy_header *out, const char **why)
{
	size_t pos = 5;

	if (len < 5)
		return invalid(why, "v2: SSL TLV shorter than 5 bytes");
	out->ssl = true;
	out->ssl_client = p[0];
	out->ssl_verify = be32(p + 1);
	while (pos < len) {
		uint8_t type;
		size_t vlen;

		if (len - pos < 3 || (vlen = be16(p + pos + 1)) > len - pos - 3)
			return invalid(why, "v2: truncated SSL sub-TLV");
		type = p[pos];
		switch (type) {
		case PP2_SUBTYPE_SSL_VERSION: bytes_set(&out->ssl_version, p + pos + 3, vlen); break;
		case PP2_SUBTYPE_SSL_CN:      bytes_set(&out->ssl_cn, p + pos + 3, vlen); break;
		case PP2_SUBTYPE_SSL_CIPHER:  bytes_set(&out->ssl_cipher, p + pos + 3, vlen); break;
		case PP2_SUBTYPE_SSL_SIG_ALG: bytes_set(&out->ssl_sig_alg, p + pos + 3, vlen); break;
		case PP2_SUBTYPE_SSL_KEY_ALG: bytes_set(&out->ssl_key_alg, p + pos + 3, vlen); break;
		default: break;
		}
		pos += 3 + vlen;
	}
	return 0;
}

static int v2_tlvs_parse(const uint8_t *buf, size_t pos, size_t total, struct proxy_header *out,
                         const char **why)
{
	size_t crc_at = 0;

	while (pos < total) {
		size_t vlen;
		const uint8_t *v;

		if (total - pos < 3 || (vlen = be16(buf + pos + 1)) > total - pos - 3)
			return invalid(why, "v2: truncated TLV");
		v = buf + pos + 3;
		switch (buf[pos]) {
		case PP2_TYPE_ALPN:      bytes_set(&out->alpn, v, vlen); break;
		case PP2_TYPE_AUTHORITY: bytes_set(&out->authority, v, vlen); break;
		case PP2_TYPE_NETNS:     bytes_set(&out->netns, v, vlen); break;
		case PP2_TYPE_UNIQUE_ID:
			if (vlen > PROXY_UNIQUE_ID_MAX)
				return invalid(why, "v2: UNIQUE_ID longer than 128 bytes");
			bytes_set(&out->unique_id, v, vlen);
			break;
		case PP2_TYPE_CRC32C:
			if (vlen != 4 || crc_at != 0)
				return invalid(why, "v2: malformed or repeated CRC32C TLV");
			crc_at = (size_t)(v - buf);
			break;
		case PP2_TYPE_SSL:
			if (v2_ssl_parse(v, vlen, out, why) < 0)
				return PROXY_INVALID;
			break;
		default:
			break;   /* NOOP and types we do not know are skipped */
		}
		pos += 3 + vlen;
	}
	if (crc_at != 0) {
		static const uint8_t zero[4];
		uint32_t crc = proxy_crc32c(0, buf, crc_at);

		/* Computed with the checksum field itself as zeros. */
		crc = proxy_crc32c(crc, zero, 4);
		crc = proxy_crc32c(crc, buf + crc_at + 4, total - crc_at - 4);
		if (crc != be32(buf + crc_at))
			return invalid(why, "v2: CRC32C mismatch");
		out->crc32c_checked = true;
	}
	return 0;
}

static void v2_addrs(const uint8_t *a, int family, struct proxy_header *out)
{
	if (family == PP2_FAM_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&out->src, *d = (struct sockaddr_in *)&out->dst;

		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
	} else if (family == PP2_FAM_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src, *d = (struct sockaddr_in6 *)&out->dst;

		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
	} else {
		struct sockaddr_un *s = (struct sockaddr_un *)&out->src, *d = (struct sockaddr_un *)&out->dst;

		s->sun_family = d->sun_family = AF_UNIX;
		/* 108 bytes each, NUL-padded; keep the last byte a terminator. */
		memcpy(s->sun_path, a, sizeof(s->sun_path) - 1);
		memcpy(d->sun_path, a + 108, sizeof(d->sun_path) - 1);
	}
}

static int v2_parse(const uint8_t *buf, size_t len, struct proxy_header *out, const char **why)
{
	static const size_t addr_len[] = { 0, 12, 36, 216 };
	size_t total, alen;
	int cmd, family, trans;

	if (memcmp(buf, v2_signature, len < 12 ? len : 12) != 0)
		return invalid(why, "not a PROXY protocol header");
	if (len >= 13) {
		if (buf[12] >> 4 != 2)
			return invalid(why, "v2: version is not 2");
		if ((buf[12] & 0xf) > PP2_CMD_PROXY)
			return invalid(why, "v2: command is neither LOCAL nor PROXY");
	}
	if (len < 16)
		return PROXY_AGAIN;
	cmd = buf[12] & 0xf;
	family = buf[13] >> 4;
	trans = buf[13] & 0xf;
	total = 16 + (size_t)be16(buf + 14);
	if (total > PROXY_V2_MAX)
		return invalid(why, "v2: header longer than 4096 bytes");
	if (cmd == PP2_CMD_PROXY) {
		if (family > PP2_FAM_UNIX || trans > PP2_TRANS_DGRAM)
			return invalid(why, "v2: unknown address family or transport");
		if (trans == PP2_TRANS_DGRAM)
			return invalid(why, "v2: datagram transport on a stream listener");
	}
	if (len < total)
		return PROXY_AGAIN;

	memset(out, 0, sizeof(*out));
	out->version = 2;
	/* LOCAL (a health check) keeps the real endpoints; its block is still walked for TLVs. */
	alen = family <= PP2_FAM_UNIX ? addr_len[family] : 0;
	if (total - 16 < alen)
		return invalid(why, "v2: address block shorter than its family needs");
	if (cmd == PP2_CMD_PROXY && family != PP2_FAM_UNSPEC && trans != PP2_TRANS_UNSPEC) {
		v2_addrs(buf + 16, family, out);
		out->has_addrs = true;
	}
	if (v2_tlvs_parse(buf, 16 + alen, total, out, why) < 0)
		return PROXY_INVALID;
	return (int)total;
}

int proxy_parse(const uint8_t *buf, size_t len, struct proxy_header *out, const char **why)
{
	*why = NULL;
	if (len == 0)
		return PROXY_AGAIN;
	if (buf[0] == 'P')
		return v1_parse(buf, len, out, why);
	if (buf[0] == v2_signature[0])
		return v2_parse(buf, len, out, why);
	return invalid(why, "not a PROXY protocol header");
}
