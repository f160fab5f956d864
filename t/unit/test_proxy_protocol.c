/* The PROXY protocol preamble, versions 1 and 2: every boundary of haproxy's proxy-protocol.txt. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "proxy_protocol.h"
#include "tap.h"

static struct proxy_header hdr;
static const char *why;

static int parse_text(const char *s)
{
	return proxy_parse((const uint8_t *)s, strlen(s), &hdr, &why);
}

static const char *addr_text(const struct sockaddr_storage *ss, unsigned *port)
{
	static char out[2][INET6_ADDRSTRLEN];
	static int turn;
	char *o = out[turn++ & 1];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s->sin_addr, o, INET6_ADDRSTRLEN);
		*port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s->sin6_addr, o, INET6_ADDRSTRLEN);
		*port = ntohs(s->sin6_port);
	}
	return o;
}

START_TEST(test_crc32c_check_value)
{
	/* The standard check value of CRC-32C (Castagnoli). */
	ck_assert_uint_eq(proxy_crc32c(0, (const uint8_t *)"123456789", 9), 0xe3069283u);
	/* Incremental use gives the same. */
	ck_assert_uint_eq(proxy_crc32c(proxy_crc32c(0, (const uint8_t *)"1234", 4), (const uint8_t *)"56789", 5),
	                  0xe3069283u);
}
END_TEST

START_TEST(test_v1_tcp4_stops_at_crlf)
{
	const char *line = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
	char buf[128];
	unsigned port;

	snprintf(buf, sizeof(buf), "%sGET / HTTP/1.1\r\n", line);
	ck_assert_int_eq(parse_text(buf), (int)strlen(line));
	ck_assert_int_eq(hdr.version, 1);
	ck_assert(hdr.has_addrs);
	ck_assert_str_eq(addr_text(&hdr.src, &port), "192.0.2.7");
	ck_assert_uint_eq(port, 56324);
	ck_assert_str_eq(addr_text(&hdr.dst, &port), "198.51.100.1");
	ck_assert_uint_eq(port, 443);
}
END_TEST

START_TEST(test_v1_tcp6_and_unknown)
{
	unsigned port;

	ck_assert_int_gt(parse_text("PROXY TCP6 2001:db8::1 ::1 0 65535\r\n"), 0);
	ck_assert_str_eq(addr_text(&hdr.src, &port), "2001:db8::1");
	ck_assert_uint_eq(port, 0);
	ck_assert_str_eq(addr_text(&hdr.dst, &port), "::1");
	ck_assert_uint_eq(port, 65535);
	ck_assert_int_eq(parse_text("PROXY UNKNOWN\r\n"), 15);
	ck_assert(!hdr.has_addrs);
	ck_assert_int_eq(parse_text("PROXY UNKNOWN 1.2.3.4 garbage\r\n"), 31);
	ck_assert(!hdr.has_addrs);
}
END_TEST

START_TEST(test_v1_length_limit_107)
{
	const char *full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
	char line[160];

	/* The longest legal line: 107 bytes with CRLF. */
	snprintf(line, sizeof(line), "PROXY UNKNOWN %s %s 65535 65535\r\n", full, full);
	ck_assert_uint_eq(strlen(line), 107);
	ck_assert_int_eq(parse_text(line), 107);
	/* One byte more is refused, also before the CRLF arrives. */
	snprintf(line, sizeof(line), "PROXY UNKNOWN %s %s 65535 655350\r\n", full, full);
	ck_assert_uint_eq(strlen(line), 108);
	ck_assert_int_eq(parse_text(line), PROXY_INVALID);
	line[106] = '\0';
	ck_assert_int_eq(parse_text(line), PROXY_INVALID);
	line[105] = '\0';
	ck_assert_int_eq(parse_text(line), PROXY_AGAIN);
}
END_TEST

START_TEST(test_v1_every_prefix_waits)
{
	const char *line = "PROXY TCP4 10.1.2.3 10.9.8.7 1 2\r\n";

	for (size_t n = 0; n < strlen(line); n++)
		ck_assert_int_eq(proxy_parse((const uint8_t *)line, n, &hdr, &why), PROXY_AGAIN);
	ck_assert_int_eq(parse_text(line), (int)strlen(line));
}
END_TEST

START_TEST(test_v1_grammar_refusals)
{
	static const char *const bad[] = {
		"PROXY TCP4 010.1.2.3 10.9.8.7 1 2\r\n",        /* leading zero in an octet */
		"PROXY TCP4 10.1.2.3 10.9.8.7 01 2\r\n",        /* leading zero in a port */
		"PROXY TCP4 10.1.2.3 10.9.8.7 1 65536\r\n",     /* port out of range */
		"PROXY TCP4 10.1.2.3 10.9.8.7 1 2\n",           /* lone LF */
		"PROXY TCP4 10.1.2.3 10.9.8.7 1 2\rX",          /* CR without LF */
		"PROXY TCP4  10.1.2.3 10.9.8.7 1 2\r\n",        /* two spaces */
		"PROXY TCP4 10.1.2.3 10.9.8.7 1 2 \r\n",        /* trailing space */
		"PROXY TCP4 10.1.2.3 10.9.8.7 1\r\n",           /* a field missing */
		"PROXY TCP4 10.1.2.3 10.9.8.7 1 2 3\r\n",       /* a field too many */
		"PROXY TCP5 10.1.2.3 10.9.8.7 1 2\r\n",         /* unknown family */
		"PROXY TCP4 ::1 ::1 1 2\r\n",                   /* family and address disagree */
		"PROXY TCP6 10.1.2.3 10.9.8.7 1 2\r\n",
		"PROXY TCP4 10.1.2.256 10.9.8.7 1 2\r\n",
		"PROXY TCP4 10.1.2 10.9.8.7 1 2\r\n",
		"PROXY TCP4\r\n",
		"PROXY \r\n",
		"proxy TCP4 10.1.2.3 10.9.8.7 1 2\r\n",         /* case matters */
		"GET / HTTP/1.1\r\n",                           /* no preamble at all */
		"PROXY TCP4 10.1.2.3 10.9.8.7 1 2\x01\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse_text(bad[i]) == PROXY_INVALID, "accepted: %s", bad[i]);
		ck_assert_ptr_nonnull(why);
	}
}
END_TEST

/* --- version 2 ------------------------------------------------------------ */

static uint8_t v2[PROXY_V2_MAX + 64];
static size_t v2_len;

static void v2_begin(uint8_t ver_cmd, uint8_t fam)
{
	static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

	memcpy(v2, sig, 12);
	v2[12] = ver_cmd;
	v2[13] = fam;
	v2_len = 16;
}

static void v2_put(const void *p, size_t n)
{
	memcpy(v2 + v2_len, p, n);
	v2_len += n;
}

static void v2_tlv(uint8_t type, const void *p, size_t n)
{
	uint8_t h[3] = { type, (uint8_t)(n >> 8), (uint8_t)n };

	v2_put(h, 3);
	v2_put(p, n);
}

static void v2_end(void)
{
	v2[14] = (uint8_t)((v2_len - 16) >> 8);
	v2[15] = (uint8_t)(v2_len - 16);
}

/* Appends a CRC32C TLV over the whole header and fills it in. */
static void v2_end_with_crc(void)
{
	static const uint8_t zero[4];
	uint32_t crc;
	size_t at;

	v2_tlv(0x03, zero, 4);
	at = v2_len - 4;
	v2_end();
	crc = proxy_crc32c(0, v2, v2_len);
	v2[at] = (uint8_t)(crc >> 24);
	v2[at + 1] = (uint8_t)(crc >> 16);
	v2[at + 2] = (uint8_t)(crc >> 8);
	v2[at + 3] = (uint8_t)crc;
}

static void v2_inet(void)
{
	static const uint8_t addrs[12] = { 192, 0, 2, 9, 127, 0, 0, 1, 0xdc, 0x05, 0x00, 0x50 };

	v2_begin(0x21, 0x11);
	v2_put(addrs, sizeof(addrs));
}

static int v2_parse_all(void)
{
	return proxy_parse(v2, v2_len, &hdr, &why);
}

START_TEST(test_v2_inet_with_tlvs_and_crc)
{
	uint8_t ssl[64] = { 0x07, 0, 0, 0, 0 };
	size_t ssl_len = 5;
	unsigned port;

	/* client bits, verify 0, then VERSION and CN sub-TLVs */
	memcpy(ssl + ssl_len, "\x21\x00\x07" "TLSv1.3", 10);
	ssl_len += 10;
	memcpy(ssl + ssl_len, "\x22\x00\x0b" "example.com", 14);
	ssl_len += 14;
	v2_inet();
	v2_tlv(0x01, "h2", 2);
	v2_tlv(0x02, "www.example.com", 15);
	v2_tlv(0x04, "\0\0\0", 3);                 /* NOOP */
	v2_tlv(0xe7, "custom", 6);                 /* unknown: skipped */
	v2_tlv(0x05, "req-42", 6);
	v2_tlv(0x20, ssl, ssl_len);
	v2_end_with_crc();
	memcpy(v2 + v2_len, "GET", 3);             /* the client's bytes follow */
	ck_assert_int_eq(proxy_parse(v2, v2_len + 3, &hdr, &why), (int)v2_len);
	ck_assert_int_eq(hdr.version, 2);
	ck_assert(hdr.has_addrs);
	ck_assert(hdr.crc32c_checked);
	ck_assert_str_eq(addr_text(&hdr.src, &port), "192.0.2.9");
	ck_assert_uint_eq(port, 56325);
	ck_assert_str_eq(addr_text(&hdr.dst, &port), "127.0.0.1");
	ck_assert_uint_eq(port, 80);
	ck_assert_uint_eq(hdr.alpn.len, 2);
	ck_assert(memcmp(hdr.alpn.p, "h2", 2) == 0);
	ck_assert(memcmp(hdr.authority.p, "www.example.com", 15) == 0);
	ck_assert(memcmp(hdr.unique_id.p, "req-42", 6) == 0);
	ck_assert(hdr.ssl);
	ck_assert_uint_eq(hdr.ssl_client, 7);
	ck_assert_uint_eq(hdr.ssl_verify, 0);
	ck_assert(hdr.ssl_version.len == 7 && memcmp(hdr.ssl_version.p, "TLSv1.3", 7) == 0);
	ck_assert(hdr.ssl_cn.len == 11 && memcmp(hdr.ssl_cn.p, "example.com", 11) == 0);
}
END_TEST

START_TEST(test_v2_bad_crc_is_refused)
{
	v2_inet();
	v2_tlv(0x05, "id", 2);
	v2_end_with_crc();
	ck_assert_int_eq(v2_parse_all(), (int)v2_len);
	v2[20] ^= 1;   /* one address bit flipped in transit */
	ck_assert_int_eq(v2_parse_all(), PROXY_INVALID);
	ck_assert_str_eq(why, "v2: CRC32C mismatch");
}
END_TEST

START_TEST(test_v2_split_byte_by_byte)
{
	v2_inet();
	v2_tlv(0x05, "abc", 3);
	v2_end_with_crc();
	for (size_t n = 0; n < v2_len; n++)
		ck_assert_int_eq(proxy_parse(v2, n, &hdr, &why), PROXY_AGAIN);
	ck_assert_int_eq(v2_parse_all(), (int)v2_len);
}
END_TEST

START_TEST(test_v2_inet6_unix_local_unspec)
{
	uint8_t a6[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1, [31] = 1, [32] = 0x30, [33] = 0x39, [35] = 80 };
	uint8_t au[216] = { 0 };
	unsigned port;

	v2_begin(0x21, 0x21);
	v2_put(a6, sizeof(a6));
	v2_end();
	ck_assert_int_eq(v2_parse_all(), 52);
	ck_assert_str_eq(addr_text(&hdr.src, &port), "2001:db8::1");
	ck_assert_uint_eq(port, 12345);

	memcpy(au, "/run/lb.sock", 12);
	v2_begin(0x21, 0x31);
	v2_put(au, sizeof(au));
	v2_end();
	ck_assert_int_eq(v2_parse_all(), 16 + 216);
	ck_assert_int_eq(hdr.src.ss_family, AF_UNIX);
	ck_assert_str_eq(((struct sockaddr_un *)&hdr.src)->sun_path, "/run/lb.sock");

	/* LOCAL: a health check from the balancer itself; real endpoints stay. */
	v2_begin(0x20, 0x00);
	v2_end();
	ck_assert_int_eq(v2_parse_all(), 16);
	ck_assert(!hdr.has_addrs);
	v2_begin(0x20, 0x11);
	v2_put(a6, 12);
	v2_end();
	ck_assert_int_eq(v2_parse_all(), 28);
	ck_assert(!hdr.has_addrs);
	/* PROXY with UNSPEC family: also the real endpoints. */
	v2_begin(0x21, 0x00);
	v2_end();
	ck_assert_int_eq(v2_parse_all(), 16);
	ck_assert(!hdr.has_addrs);
}
END_TEST

START_TEST(test_v2_refusals)
{
	uint8_t big[200];

	memset(big, 'x', sizeof(big));
	v2_inet();
	v2[12] = 0x11;                      /* version 1 in a binary header */
	v2_end();
	ck_assert_int_eq(proxy_parse(v2, 13, &hdr, &why), PROXY_INVALID);
	v2_inet();
	v2[12] = 0x22;                      /* command 2 */
	v2_end();
	ck_assert_int_eq(v2_parse_all(), PROXY_INVALID);
	v2_inet();
	v2[13] = 0x41;                      /* family 4 */
	v2_end();
	ck_assert_int_eq(v2_parse_all(), PROXY_INVALID);
	v2_inet();
	v2[13] = 0x12;                      /* datagram */
	v2_end();
	ck_assert_int_eq(v2_parse_all(), PROXY_INVALID);
	v2_begin(0x21, 0x11);               /* length beyond the buffer: refused at once */
	v2[14] = 0x13;
	v2[15] = 0x88;
	ck_assert_int_eq(proxy_parse(v2, 16, &hdr, &why), PROXY_INVALID);
	v2_begin(0x21, 0x21);               /* INET6 with an INET-sized block */
	v2_put(big, 12);
	v2_end();
	ck_assert_int_eq(v2_parse_all(), PROXY_INVALID);
	v2_inet();                          /* a TLV running past the end */
	v2_put("\x05\x00\x09" "abc", 6);
	v2_end();
	ck_assert_int_eq(v2_parse_all(), PROXY_INVALID);
	v2_inet();                          /* UNIQUE_ID over 128 bytes */
	v2_tlv(0x05, big, 129);
	v2_end();
	ck_assert_int_eq(v2_parse_all(), PROXY_INVALID);
	v2_inet();
	v2_tlv(0x20, "\x01\x00", 2);        /* SSL TLV too short */
	v2_end();
	ck_assert_int_eq(v2_parse_all(), PROXY_INVALID);
	v2_inet();                          /* a wrong signature byte */
	v2[6] = 0;
	v2_end();
	ck_assert_int_eq(v2_parse_all(), PROXY_INVALID);
	/* A header filling the limit exactly is fine. */
	v2_inet();
	while (v2_len + 3 + 100 <= PROXY_V2_MAX)
		v2_tlv(0x04, big, 100);
	v2_tlv(0x04, big, PROXY_V2_MAX - v2_len - 3);
	v2_end();
	ck_assert_uint_eq(v2_len, PROXY_V2_MAX);
	ck_assert_int_eq(v2_parse_all(), PROXY_V2_MAX);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proxy_protocol");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_crc32c_check_value);
	tcase_add_test(tc, test_v1_tcp4_stops_at_crlf);
	tcase_add_test(tc, test_v1_tcp6_and_unknown);
	tcase_add_test(tc, test_v1_length_limit_107);
	tcase_add_test(tc, test_v1_every_prefix_waits);
	tcase_add_test(tc, test_v1_grammar_refusals);
	tcase_add_test(tc, test_v2_inet_with_tlvs_and_crc);
	tcase_add_test(tc, test_v2_bad_crc_is_refused);
	tcase_add_test(tc, test_v2_split_byte_by_byte);
	tcase_add_test(tc, test_v2_inet6_unix_local_unspec);
	tcase_add_test(tc, test_v2_refusals);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
