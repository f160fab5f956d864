/*
 * libFuzzer target: the RFC 8941 structured-field parser and serialiser,
 * the RFC 9421 signature base builder and Content-Digest selection of the
 * sign module (modules/sign/), all fed attacker-controlled header values.
 * It also checks a round trip: a dictionary serialised and parsed again
 * serialises to the same text.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Imodules/sign t/fuzz/fuzz_sign.c \
 *       modules/sign/sf.c modules/sign/sign_base.c modules/sign/sign_crypto.c -lcrypto -o fuzz_sign
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sf.h"
#include "sign_base.h"

static char arena_buf[1 << 16];

static void roundtrip(const char *text, size_t len)
{
	struct sf_arena a = { arena_buf, 0, sizeof(arena_buf) };
	static char out1[1 << 15], out2[1 << 15];
	struct sf_dict d;
	long n1, n2;

	if (sf_parse_dict(text, len, &a, &d) < 0)
		return;
	n1 = sf_serialize_dict(&d, out1, sizeof(out1));
	if (n1 < 0)
		return;
	a.used = 0;
	if (sf_parse_dict(out1, (size_t)n1, &a, &d) < 0)
		abort();   /* what we serialise must parse */
	n2 = sf_serialize_dict(&d, out2, sizeof(out2));
	if (n2 != n1 || memcmp(out1, out2, (size_t)n1) != 0)
		abort();
}

static void base(const char *text, size_t len)
{
	static const struct sign_header h[] = {
		{ "Host", "Example.com:80" }, { "Content-Type", "application/json" },
		{ "Example-Dict", "a=1, b=2;x=1, c=(a b)" }, { "Content-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:" },
	};
	static const struct sign_msg msg = { "POST", "/p/%7E?a=1&b=+x&a%20b=2", "http", "Example.com:80", h, 4 };
	struct sf_arena a = { arena_buf, 0, sizeof(arena_buf) };
	struct sign_buf out = { 0 };
	struct sf_dict d;

	if (sf_parse_dict(text, len, &a, &d) == 0) {
		for (size_t i = 0; i < d.count; i++) {
			out.len = 0;
			(void)sign_base_build(&msg, &d.members[i], &a, &out);
		}
	}
	sign_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		roundtrip(text, size - 1);
		break;
	case 1:
		base(text, size - 1);
		break;
	default: {
		struct sf_arena a = { arena_buf, 0, sizeof(arena_buf) };
		enum sign_digest alg;
		const uint8_t *expected;
		size_t len;

		(void)sign_content_digest(text, SIGN_SHA256 | SIGN_SHA512, &a, &alg, &expected, &len);
		break;
	}
	}
	free(text);
	return 0;
}
