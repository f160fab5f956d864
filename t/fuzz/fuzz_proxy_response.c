/*
 * libFuzzer: what an upstream server may send back to the proxy module.
 * The response head parser, then the rest through the chunked decoder in
 * pieces of a fuzzed size, checking that decoding never writes past what
 * it consumed and that a head never claims more bytes than it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/http1.h"
#include "proxy_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_head h;
	struct httpd_chunked c;
	int rc = HTTPD_CHUNKED_AGAIN;
	const char *why = NULL;
	char *buf;
	size_t step, off = 0;
	long head;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	buf = malloc(size);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	head = proxy_head_parse(buf, size - 1, &h, &why);
	if (head > (long)(size - 1) || (head < 0 && why == NULL))
		__builtin_trap();
	if (head > 0) {
		if (h.count > PROXY_HEADERS_MAX || h.status < 100 || h.status > 599)
			__builtin_trap();
		off = (size_t)head;
	}
	/* The rest as a chunked body, whatever the head said, decoded in place as the proxy does. */
	httpd_chunked_init(&c);
	while (off < size - 1 && rc == HTTPD_CHUNKED_AGAIN) {
		size_t take = size - 1 - off < step ? size - 1 - off : step, produced = 0, used = 0;

		rc = httpd_chunked_decode(&c, buf + off, take, &used, buf + off, take, &produced, UINT64_MAX);
		if (used > take || produced > used)
			__builtin_trap();
		if (used == 0)
			break;
		off += used;
	}
	free(buf);
	return 0;
}
