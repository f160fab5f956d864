/*
 * libFuzzer target for the pure half of the HTTP/1 codec: request heads
 * (found incrementally, then parsed, extension methods included), the path
 * normaliser on what they yield, and the chunked decoder (chunk-ext grammar,
 * trailers) on the rest, fed in pieces of every size.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc/http \
 *       t/fuzz/fuzz_http_parse.c src/http/http_parse.c src/http/path.c -o fuzz_http_parse
 *   mkdir -p corpus && ./fuzz_http_parse corpus t/fuzz/corpus -max_total_time=3600
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "path.h"

static const struct http_limits limits = {
	.max_request_line = 1024, .max_head = 4096, .max_headers = 32,
};

static void fuzz_chunked(const uint8_t *data, size_t size, size_t step, size_t out_cap)
{
	struct httpd_chunked ch;
	char *out = malloc(out_cap);
	size_t off = 0;

	if (out == NULL)
		return;
	httpd_chunked_init(&ch);
	while (off < size) {
		size_t consumed, produced, n = size - off < step ? size - off : step;
		int rc = httpd_chunked_decode(&ch, (const char *)data + off, n, &consumed, out, out_cap,
		                             &produced, 1 << 20);

		if (consumed > n || produced > out_cap)
			abort();
		off += consumed;
		if (rc != HTTP_PARSE_AGAIN)
			break;
		if (consumed == 0 && produced == 0)
			break;   /* output full with nothing consumed cannot happen with out_cap > 0 */
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpd_header headers[32];
	struct http_head head;
	size_t scan = 0, start = 0, len = 0, split;
	char *buf, *copy, *path;
	int rc = HTTP_PARSE_AGAIN;

	if (size < 2)
		return 0;
	/* The first byte picks where the input is split across two reads. */
	split = data[0] % (size - 1) + 1;
	data++;
	size--;
	buf = malloc(size);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	if (split < size)
		rc = http_head_find(buf, split, &scan, &limits, &start, &len);
	if (rc == HTTP_PARSE_AGAIN)
		rc = http_head_find(buf, size, &scan, &limits, &start, &len);
	if (rc == 0) {
		if (start + len > size || len < 4)
			abort();
		copy = malloc(len - 1);
		if (copy != NULL) {
			memcpy(copy, buf + start, len - 2);
			copy[len - 2] = '\0';
			if (http_head_parse(copy, len - 2, &limits, headers, &head) == 0 && head.path_len > 0) {
				path = malloc(head.path_len + 1);
				if (path != NULL && path_normalise(head.path, head.path_len, path) >= 0 &&
				    (path[0] != '/' || strstr(path, "/../") != NULL))
					abort();
				free(path);
			}
			free(copy);
		}
		fuzz_chunked(data + start + len, size - start - len, split, 1 + split % 64);
	} else {
		fuzz_chunked(data, size, split, 1 + split % 64);
	}
	free(buf);
	return 0;
}
