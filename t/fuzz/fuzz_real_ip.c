/*
 * libFuzzer target: X-Forwarded-For and RFC 7239 Forwarded walking, and
 * CIDR parsing.  The first byte splits the input into two header instances.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc/http -Isrc/core \
 *       t/fuzz/fuzz_real_ip.c src/http/real_ip.c src/core/cidr.c -o fuzz_real_ip
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "real_ip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cidr trusted[2];
	size_t n = 0, split;
	char *a, *b, out[64];
	const char *values[2];

	if (size < 1)
		return 0;
	split = data[0] % size;   /* at most size - 1: within what follows the first byte */
	data++;
	size--;
	a = malloc(split + 1);
	b = malloc(size - split + 1);
	if (a == NULL || b == NULL) {
		free(a);
		free(b);
		return 0;
	}
	memcpy(a, data, split);
	a[split] = '\0';
	memcpy(b, data + split, size - split);
	b[size - split] = '\0';
	if (cidr_parse("10.0.0.0/8", &trusted[n]) == 0)
		n++;
	if (cidr_parse(a, &trusted[n]) == 0)
		n++;
	values[0] = a;
	values[1] = b;
	for (int kind = 0; kind < 2; kind++) {
		if (real_ip_find((enum real_ip_header)kind, values, 2, trusted, n, out, sizeof(out)) &&
		    strlen(out) >= sizeof(out))
			abort();
	}
	free(a);
	free(b);
	return 0;
}
