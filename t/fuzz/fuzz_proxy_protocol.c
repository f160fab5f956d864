/*
 * libFuzzer target: the PROXY protocol v1/v2 preamble parser, and the
 * RFC 7239 Forwarded / X-Forwarded-For walk that real_ip_header uses
 * behind a balancer.  The first byte picks the parser.
 *
 * For PROXY it also checks what the connection code relies on: a header
 * accepted at n bytes is a valid beginning at every shorter length (so a
 * preamble split across reads is never refused), and n never exceeds the
 * input or the protocol's limits.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc/http -Isrc/event -Isrc/core \
 *       t/fuzz/fuzz_proxy_protocol.c src/event/proxy_protocol.c src/http/real_ip.c src/core/cidr.c -o fuzz_proxy_protocol
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_protocol.h"
#include "real_ip.h"

static void fuzz_proxy(const uint8_t *data, size_t size)
{
	struct proxy_header h;
	const char *why;
	uint8_t *copy = malloc(size ? size : 1);
	int n;

	if (copy == NULL)
		return;
	/* An exact-size copy: ASan sees any read past the bytes that arrived. */
	memcpy(copy, data, size);
	n = proxy_parse(copy, size, &h, &why);
	if (n > 0) {
		if ((size_t)n > size || (h.version == 1 && n > PROXY_V1_MAX) || (h.version == 2 && n > PROXY_V2_MAX))
			abort();
		for (size_t k = 0; k < (size_t)n; k += 1 + k / 8)
			if (proxy_parse(copy, k, &h, &why) != PROXY_AGAIN)
				abort();
		if (h.unique_id.len > PROXY_UNIQUE_ID_MAX)
			abort();
	} else if (n == PROXY_INVALID && why == NULL) {
		abort();
	}
	free(copy);
}

static void fuzz_forwarded(const uint8_t *data, size_t size, enum real_ip_header kind)
{
	struct cidr trusted[2];
	const char *values[1];
	char *text = malloc(size + 1), out[64];
	size_t n = 0;

	if (text == NULL)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (cidr_parse("10.0.0.0/8", &trusted[n]) == 0)
		n++;
	if (cidr_parse("2001:db8::/32", &trusted[n]) == 0)
		n++;
	values[0] = text;
	if (real_ip_find(kind, values, 1, trusted, n, out, sizeof(out)) && strlen(out) >= sizeof(out))
		abort();
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
	case 1:
		fuzz_proxy(data + 1, size - 1);
		break;
	case 2:
		fuzz_forwarded(data + 1, size - 1, REAL_IP_FORWARDED);
		break;
	default:
		fuzz_forwarded(data + 1, size - 1, REAL_IP_X_FORWARDED_FOR);
		break;
	}
	return 0;
}
