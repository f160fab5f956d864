/*
 * Signed requests: every vector of ../shared/sign/rfc9421-vectors.md (RFC 9421
 * Appendix B bases and HMAC, §2.1/§2.2 components, RFC 9530 digests, the
 * project profile and classic mode) through the C canonicaliser and HMAC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf.h"
#include "sign_base.h"
#include "tap.h"

static const char *b15_secret_b64 =
	"uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";

static char arena_buf[65536];
static struct sf_arena arena;

static const struct sign_header test_request_headers[] = {
	{ "Host", "example.com" },
	{ "Date", "Tue, 20 Apr 2021 02:07:55 GMT" },
	{ "Content-Type", "application/json" },
	{ "Content-Digest", "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:" },
	{ "Content-Length", "18" },
};

static const struct sign_msg test_request = {
	"POST", "/foo?param=Value&Pet=dog", "https", "example.com", test_request_headers, 5,
};

/* The base for one Signature-Input member value, or "ERR<n>". */
static const char *base_of(const struct sign_msg *msg, const char *input_value)
{
	static struct sign_buf out;
	static char err[16];
	struct sf_dict d;
	char text[2048];
	enum sign_result rc;

	arena = (struct sf_arena){ arena_buf, 0, sizeof(arena_buf) };
	snprintf(text, sizeof(text), "sig=%s", input_value);
	ck_assert_int_eq(sf_parse_dict(text, strlen(text), &arena, &d), 0);
	sign_buf_free(&out);
	rc = sign_base_build(msg, &d.members[0], &arena, &out);
	if (rc != SIGN_OK) {
		snprintf(err, sizeof(err), "ERR%d", (int)rc);
		return err;
	}
	return out.p;
}

static const char *hmac_b64(const char *base)
{
	static char out[64];
	uint8_t key[64], mac[32];
	long n = sf_base64_decode(b15_secret_b64, strlen(b15_secret_b64), key, sizeof(key));

	ck_assert_int_eq(n, 64);
	ck_assert(sign_hmac_sha256(key, (size_t)n, base, strlen(base), mac));
	sf_base64_encode(mac, 32, out);
	return out;
}

START_TEST(test_b25_hmac_sha256)
{
	const char *base = base_of(&test_request,
	                           "(\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\"");

	ck_assert_str_eq(base,
	                 "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n"
	                 "\"@authority\": example.com\n"
	                 "\"content-type\": application/json\n"
	                 "\"@signature-params\": (\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\"");
	ck_assert_uint_eq(strlen(base), 200);
	ck_assert_str_eq(hmac_b64(base), "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=");
}
END_TEST

START_TEST(test_b21_b23_and_b26_bases)
{
	ck_assert_str_eq(base_of(&test_request, "();created=1618884473;keyid=\"test-key-rsa-pss\";nonce=\"b3k2pp5k7z-50gnwp.yemd\""),
	                 "\"@signature-params\": ();created=1618884473;keyid=\"test-key-rsa-pss\";nonce=\"b3k2pp5k7z-50gnwp.yemd\"");
	ck_assert_str_eq(base_of(&test_request,
	                         "(\"@authority\" \"content-digest\" \"@query-param\";name=\"Pet\");created=1618884473;"
	                         "keyid=\"test-key-rsa-pss\";tag=\"header-example\""),
	                 "\"@authority\": example.com\n"
	                 "\"content-digest\": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\n"
	                 "\"@query-param\";name=\"Pet\": dog\n"
	                 "\"@signature-params\": (\"@authority\" \"content-digest\" \"@query-param\";name=\"Pet\");created=1618884473;keyid=\"test-key-rsa-pss\";tag=\"header-example\"");
	ck_assert_str_eq(base_of(&test_request,
	                         "(\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" \"content-type\" \"content-digest\" "
	                         "\"content-length\");created=1618884473;keyid=\"test-key-rsa-pss\""),
	                 "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n"
	                 "\"@method\": POST\n"
	                 "\"@path\": /foo\n"
	                 "\"@query\": ?param=Value&Pet=dog\n"
	                 "\"@authority\": example.com\n"
	                 "\"content-type\": application/json\n"
	                 "\"content-digest\": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\n"
	                 "\"content-length\": 18\n"
	                 "\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@query\" \"@authority\" \"content-type\" \"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-rsa-pss\"");
	ck_assert_str_eq(base_of(&test_request,
	                         "(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");"
	                         "created=1618884473;keyid=\"test-key-ed25519\""),
	                 "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n"
	                 "\"@method\": POST\n"
	                 "\"@path\": /foo\n"
	                 "\"@authority\": example.com\n"
	                 "\"content-type\": application/json\n"
	                 "\"content-length\": 18\n"
	                 "\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"");
	/* §2.3: alg and expires keep their place. */
	ck_assert_str_eq(base_of(&test_request, "(\"@authority\");keyid=\"test-key-rsa-pss\";alg=\"rsa-pss-sha512\";"
	                                        "created=1618884475;expires=1618884775"),
	                 "\"@authority\": example.com\n\"@signature-params\": (\"@authority\");keyid=\"test-key-rsa-pss\";"
	                 "alg=\"rsa-pss-sha512\";created=1618884475;expires=1618884775");
}
END_TEST

static const char *component(const char *method, const char *target, const char *scheme, const char *id)
{
	static const struct sign_header h[] = { { "Host", "www.example.com" } };
	struct sign_msg m = { method, target, scheme, "www.example.com", h, 1 };
	char value[512];
	const char *base, *colon;

	snprintf(value, sizeof(value), "(%s)", id);
	base = base_of(&m, value);
	if (strncmp(base, "ERR", 3) == 0)
		return base;
	colon = strstr(base, ": ");
	snprintf(value, sizeof(value), "%.*s", (int)(strchr(base, '\n') - colon - 2), colon + 2);
	return strcpy(malloc(strlen(value) + 1), value);
}

START_TEST(test_derived_components)
{
	ck_assert_str_eq(component("POST", "/path?param=value", "http", "\"@method\""), "POST");
	ck_assert_str_eq(component("post", "/path?param=value", "http", "\"@method\""), "post");
	ck_assert_str_eq(component("POST", "/path?param=value", "https", "\"@target-uri\""),
	                 "https://www.example.com/path?param=value");
	ck_assert_str_eq(component("POST", "/path?param=value", "https", "\"@authority\""), "www.example.com");
	ck_assert_str_eq(component("POST", "/path?param=value", "http", "\"@scheme\""), "http");
	ck_assert_str_eq(component("POST", "/path?param=value", "http", "\"@request-target\""), "/path?param=value");
	ck_assert_str_eq(component("GET", "https://www.example.com/path?param=value", "https", "\"@request-target\""),
	                 "https://www.example.com/path?param=value");
	ck_assert_str_eq(component("OPTIONS", "*", "http", "\"@request-target\""), "*");
	ck_assert_str_eq(component("POST", "/path?param=value", "http", "\"@path\""), "/path");
	ck_assert_str_eq(component("GET", "/p/%7E/../x?q", "http", "\"@path\""), "/p/%7E/../x");   /* raw, not normalised */
	ck_assert_str_eq(component("GET", "/path?param=value&foo=bar&baz=bat%2Dman", "http", "\"@query\""),
	                 "?param=value&foo=bar&baz=bat%2Dman");
	ck_assert_str_eq(component("POST", "/path?queryString", "http", "\"@query\""), "?queryString");
	ck_assert_str_eq(component("GET", "/path", "http", "\"@query\""), "?");
	ck_assert_str_eq(component("GET", "/path?param=value&foo=bar&baz=batman&qux=", "http",
	                           "\"@query-param\";name=\"baz\""), "batman");
	ck_assert_str_eq(component("GET", "/path?param=value&foo=bar&baz=batman&qux=", "http",
	                           "\"@query-param\";name=\"qux\""), "");
	ck_assert_str_eq(component("GET", "/path?param=value&foo=bar&baz=batman&qux=", "http",
	                           "\"@query-param\";name=\"param\""), "value");
	ck_assert_str_eq(component("GET", "/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace"
	                                  "&fa%C3%A7ade%22%3A%20=something", "http", "\"@query-param\";name=\"var\""),
	                 "this%20is%20a%20big%0Amultiline%20value");
	ck_assert_str_eq(component("GET", "/parameters?var=x&bar=with+plus+whitespace", "http",
	                           "\"@query-param\";name=\"bar\""), "with%20plus%20whitespace");
	ck_assert_str_eq(component("GET", "/parameters?fa%C3%A7ade%22%3A%20=something", "http",
	                           "\"@query-param\";name=\"fa%C3%A7ade%22%3A%20\""), "something");
	/* Named twice, or not at all: no base. */
	ck_assert_str_eq(component("GET", "/p?a=1&a=2", "http", "\"@query-param\";name=\"a\""), "ERR2");
	ck_assert_str_eq(component("GET", "/p?a=1", "http", "\"@query-param\";name=\"b\""), "ERR2");
	ck_assert_str_eq(component("GET", "/p", "http", "\"@status\""), "ERR2");
	ck_assert_str_eq(component("GET", "/p", "http", "\"x-missing\""), "ERR2");
	ck_assert_str_eq(component("GET", "/p", "http", "\"Host\""), "ERR1");        /* names are lowercase */
	ck_assert_str_eq(component("GET", "/p", "http", "\"@method\" \"@method\""), "ERR1");   /* covered twice */
}
END_TEST

START_TEST(test_authority_normalisation)
{
	char out[64];

	ck_assert(sign_authority("Example.COM:80", "http", out, sizeof(out)));
	ck_assert_str_eq(out, "example.com");
	ck_assert(sign_authority("example.com:443", "https", out, sizeof(out)));
	ck_assert_str_eq(out, "example.com");
	ck_assert(sign_authority("example.com:443", "http", out, sizeof(out)));
	ck_assert_str_eq(out, "example.com:443");
	ck_assert(sign_authority("[::1]:8080", "http", out, sizeof(out)));
	ck_assert_str_eq(out, "[::1]:8080");
	ck_assert(sign_authority("[::1]", "http", out, sizeof(out)));
	ck_assert_str_eq(out, "[::1]");
	ck_assert(!sign_authority("a b", "http", out, sizeof(out)));
}
END_TEST

START_TEST(test_field_canonicalisation)
{
	static const struct sign_header h[] = {
		{ "Host", "www.example.com" },
		{ "Date", "Tue, 20 Apr 2021 02:07:56 GMT" },
		{ "X-OWS-Header", "Leading and trailing whitespace." },
		{ "Cache-Control", "max-age=60" },
		{ "Cache-Control", "must-revalidate" },
		{ "Example-Dict", "a=1,    b=2;x=1;y=2,   c=(a   b   c)" },
		{ "X-Empty-Header", "" },
	};
	struct sign_msg m = { "GET", "/", "http", "www.example.com", h, 7 };

	ck_assert_str_eq(base_of(&m, "(\"host\" \"date\" \"x-ows-header\" \"cache-control\" \"example-dict\" \"x-empty-header\")"),
	                 "\"host\": www.example.com\n"
	                 "\"date\": Tue, 20 Apr 2021 02:07:56 GMT\n"
	                 "\"x-ows-header\": Leading and trailing whitespace.\n"
	                 "\"cache-control\": max-age=60, must-revalidate\n"
	                 "\"example-dict\": a=1,    b=2;x=1;y=2,   c=(a   b   c)\n"
	                 "\"x-empty-header\": \n"
	                 "\"@signature-params\": (\"host\" \"date\" \"x-ows-header\" \"cache-control\" \"example-dict\" \"x-empty-header\")");
	/* sf re-serialises; key picks one member (RFC 9421 §2.1.1, §2.1.2). */
	ck_assert_str_eq(base_of(&m, "(\"example-dict\";sf \"example-dict\";key=\"b\" \"example-dict\";key=\"c\")"),
	                 "\"example-dict\";sf: a=1, b=2;x=1;y=2, c=(a b c)\n"
	                 "\"example-dict\";key=\"b\": 2;x=1;y=2\n"
	                 "\"example-dict\";key=\"c\": (a b c)\n"
	                 "\"@signature-params\": (\"example-dict\";sf \"example-dict\";key=\"b\" \"example-dict\";key=\"c\")");
}
END_TEST

START_TEST(test_project_profile_p1_p2_p3)
{
	static const struct sign_header p1h[] = { { "Host", "127.0.0.1:8080" } };
	static const struct sign_header p2h[] = {
		{ "Host", "127.0.0.1:8080" }, { "Content-Type", "application/json" },
		{ "Content-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:" }, { "Content-Length", "18" },
	};
	struct sign_msg p1 = { "GET", "/api/orders?id=42&note=a%20b%7E", "http", "127.0.0.1:8080", p1h, 1 };
	struct sign_msg p2 = { "POST", "/api/orders", "http", "127.0.0.1:8080", p2h, 4 };
	struct sign_msg p3 = { "GET", "/api/orders", "http", "127.0.0.1:8080", p1h, 1 };
	const char *base;

	base = base_of(&p1, "(\"@method\" \"@target-uri\");created=1700000000;keyid=\"test-shared-secret\";"
	                    "alg=\"hmac-sha256\";nonce=\"n-20231114-0001\"");
	ck_assert_str_eq(base, "\"@method\": GET\n\"@target-uri\": http://127.0.0.1:8080/api/orders?id=42&note=a%20b%7E\n"
	                       "\"@signature-params\": (\"@method\" \"@target-uri\");created=1700000000;"
	                       "keyid=\"test-shared-secret\";alg=\"hmac-sha256\";nonce=\"n-20231114-0001\"");
	ck_assert_str_eq(hmac_b64(base), "p6NX8l1MzArwgJs4SXTYsC+YdfixFSGGIabQv2mkMSI=");
	base = base_of(&p2, "(\"@method\" \"@target-uri\" \"content-type\" \"content-digest\");created=1700000000;"
	                    "keyid=\"test-shared-secret\";alg=\"hmac-sha256\";nonce=\"n-20231114-0002\"");
	ck_assert_str_eq(hmac_b64(base), "BRvtyVJmC4m19hRknyerKnN+h0IeylrT5k9g3S3eFTg=");
	base = base_of(&p3, "(\"@method\" \"@target-uri\");created=1700000000;keyid=\"test-shared-secret\";"
	                    "alg=\"hmac-sha256\";expires=1700000300;nonce=\"n-20231114-0003\";tag=\"prefork-httpd\"");
	ck_assert_str_eq(hmac_b64(base), "rFkZ98DWo25x9IivDN9TKjoTRc96UioWRzwLIl8N+OI=");
}
END_TEST

static void digest_b64(enum sign_digest alg, const char *data, char *out)
{
	struct sign_hash *h = sign_hash_new(alg);
	uint8_t d[64];
	size_t n;

	ck_assert_ptr_nonnull(h);
	sign_hash_update(h, data, strlen(data));
	n = sign_hash_final(h, d);
	sf_base64_encode(d, n, out);
}

START_TEST(test_content_digest_rfc9530)
{
	char b64[128];
	enum sign_digest alg;
	const uint8_t *expected;
	size_t len;

	digest_b64(SIGN_SHA256, "{\"hello\": \"world\"}", b64);
	ck_assert_str_eq(b64, "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=");
	digest_b64(SIGN_SHA512, "{\"hello\": \"world\"}", b64);
	ck_assert_str_eq(b64, "WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==");
	digest_b64(SIGN_SHA512, "{\"message\": \"good dog\"}", b64);
	ck_assert_str_eq(b64, "mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==");

	arena = (struct sf_arena){ arena_buf, 0, sizeof(arena_buf) };
	ck_assert_int_eq(sign_content_digest("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
	                                     SIGN_SHA256 | SIGN_SHA512, &arena, &alg, &expected, &len), SIGN_OK);
	ck_assert_int_eq(alg, SIGN_SHA512);   /* the strongest accepted one */
	ck_assert_uint_eq(len, 64);
	ck_assert_int_eq(sign_content_digest("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", SIGN_SHA512,
	                                     &arena, &alg, &expected, &len), SIGN_DIGEST_ALGORITHM);
	/* Deprecated algorithms never count (RFC 9530 §5). */
	ck_assert_int_eq(sign_content_digest("md5=:Sd/dVLAcvNLSq16eXua5uQ==:, sha=:07CavjDP4u3/TungoUHJO/Wzr4c=:",
	                                     SIGN_SHA256 | SIGN_SHA512, &arena, &alg, &expected, &len),
	                 SIGN_DIGEST_ALGORITHM);
	ck_assert_int_eq(sign_content_digest("sha-256=X48E", SIGN_SHA256, &arena, &alg, &expected, &len), SIGN_MALFORMED);
	ck_assert_int_eq(sign_content_digest("sha-256=:AAAA:", SIGN_SHA256, &arena, &alg, &expected, &len), SIGN_MALFORMED);
}
END_TEST

static const char *classic(const char *method, const char *target, const char *nonce, const char *body)
{
	static char out[65];
	struct sign_msg m = { method, target, "http", "127.0.0.1", NULL, 0 };
	struct sign_buf s = { 0 };
	uint8_t key[64], d[64], mac[32];
	char hex[129];
	struct sign_hash *h = sign_hash_new(SIGN_SHA256);
	long n = sf_base64_decode(b15_secret_b64, strlen(b15_secret_b64), key, sizeof(key));

	sign_hash_update(h, body, strlen(body));
	sign_hex(d, sign_hash_final(h, d), hex);
	sign_classic_string(&m, "1700000000", nonce, hex, &s);
	ck_assert(!s.failed);
	ck_assert(sign_hmac_sha256(key, (size_t)n, s.p, s.len, mac));
	sign_hex(mac, 32, out);
	if (strcmp(nonce, "n-20231114-0004") == 0)
		ck_assert_str_eq(s.p, "POST\n/api/orders\na=1&b=2&b=0\n1700000000\nn-20231114-0004\n"
		                      "5f8f04f6a3a892aaabbddb6cf273894493773960d4a325b105fee46eef4304f1");
	sign_buf_free(&s);
	return out;
}

START_TEST(test_classic_c1_c2)
{
	ck_assert_str_eq(classic("POST", "/api/orders?b=2&a=1&b=0", "n-20231114-0004", "{\"hello\": \"world\"}"),
	                 "974c2704da8b0c08e6b958e259695e17ffd4f1f63934e5f7f55fa45efee3ec51");
	ck_assert_str_eq(classic("GET", "/api/orders", "n-20231114-0005", ""),
	                 "b23ef7246fb61209ae3cc0c6ab39d81d421724d34b5ea5c4e560b0c736337dcd");
}
END_TEST

START_TEST(test_structured_fields)
{
	const char *good[] = {
		"a=1, b=2;x=1;y=2, c=(a b c)", "sig1=(\"@method\");created=1;keyid=\"k\"", "a", "a;x", "a=?0",
		"a=-12.5", "a=:aGVsbG8=:", "a=*tok/en:x", "a=\"q\\\"uote\\\\\"", "a=()", "a=( 1  2 )",
	};
	const char *bad[] = {
		"A=1", "a=1,", "a=1,,b=2", "a=\"unterminated", "a=\"bad\\escape\"", "a=:not base64!:", "a=(1 2",
		"a=1.2345", "a=1234567890123456", "a=?2", "a=(1)x", "a=\"\x01\"", "1a=2", "a=1 b=2",
	};
	struct sf_dict d;
	char out[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		arena = (struct sf_arena){ arena_buf, 0, sizeof(arena_buf) };
		ck_assert_msg(sf_parse_dict(good[i], strlen(good[i]), &arena, &d) == 0, "%s", good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		arena = (struct sf_arena){ arena_buf, 0, sizeof(arena_buf) };
		ck_assert_msg(sf_parse_dict(bad[i], strlen(bad[i]), &arena, &d) < 0, "%s", bad[i]);
	}
	arena = (struct sf_arena){ arena_buf, 0, sizeof(arena_buf) };
	ck_assert_int_eq(sf_parse_dict("b=2, a=1.50, b=3, c;x=?1, d=?0", 30, &arena, &d), 0);
	ck_assert(sf_serialize_dict(&d, out, sizeof(out)) > 0);
	ck_assert_str_eq(out, "b=3, a=1.5, c;x, d=?0");   /* a repeated key keeps its place, takes the later value */
	/* A tiny arena fails cleanly. */
	arena = (struct sf_arena){ arena_buf, 0, 16 };
	ck_assert_int_lt(sf_parse_dict(good[1], strlen(good[1]), &arena, &d), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sign");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_b25_hmac_sha256);
	tcase_add_test(tc, test_b21_b23_and_b26_bases);
	tcase_add_test(tc, test_derived_components);
	tcase_add_test(tc, test_authority_normalisation);
	tcase_add_test(tc, test_field_canonicalisation);
	tcase_add_test(tc, test_project_profile_p1_p2_p3);
	tcase_add_test(tc, test_content_digest_rfc9530);
	tcase_add_test(tc, test_classic_c1_c2);
	tcase_add_test(tc, test_structured_fields);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
