/* Request heads and chunked bodies, RFC 9112.  Each test names its rule. */
#include <stdio.h>
#include <string.h>

#include "http_parse.h"
#include "tap.h"

static const struct http_limits limits = {
	.max_request_line = 8192, .max_head = 16384, .max_headers = 20,
};

static struct httpd_header headers[32];
static struct http_head head;
static char copy[70000];

/* Finds and parses a whole request; returns 0, HTTP_PARSE_AGAIN or a status. */
/* A parsed span equals s. */
static int span_is(const char *p, size_t len, const char *s)
{
	return p != NULL && len == strlen(s) && memcmp(p, s, len) == 0;
}

static int parse(const char *req)
{
	size_t scan = 0, start, len;
	int rc = http_head_find(req, strlen(req), &scan, &limits, &start, &len);

	if (rc != 0)
		return rc;
	memcpy(copy, req + start, len - 2);
	copy[len - 2] = '\0';
	return http_head_parse(copy, len - 2, &limits, headers, &head);
}

START_TEST(test_simple_get)
{
	ck_assert_int_eq(parse("GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0);
	ck_assert_int_eq(head.method, HTTPD_METHOD_GET);
	ck_assert(span_is(head.path, head.path_len, "/index.html"));
	ck_assert_str_eq(head.query, "x=1");
	ck_assert(span_is(head.host, head.host_len, "example.com"));
	ck_assert_int_eq(head.version, 11);
	ck_assert(head.keep_alive);
	ck_assert_int_eq(head.content_length, -1);
	ck_assert_int_eq(head.header_count, 1);
	/* The target is left as received, for logs and modules. */
	ck_assert_str_eq(head.target, "/index.html?x=1");
}
END_TEST

START_TEST(test_head_incomplete_needs_more)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n"), HTTP_PARSE_AGAIN);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n\r"), HTTP_PARSE_AGAIN);
}
END_TEST

START_TEST(test_head_found_across_calls)
{
	const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
	size_t scan = 0, start, len;

	for (size_t n = 1; n < strlen(req) - 4; n++)
		ck_assert_int_eq(http_head_find(req, n, &scan, &limits, &start, &len), HTTP_PARSE_AGAIN);
	ck_assert_int_eq(http_head_find(req, strlen(req), &scan, &limits, &start, &len), 0);
	ck_assert_uint_eq(start + len, strlen(req) - 4);
}
END_TEST

START_TEST(test_leading_empty_lines_ignored)
{
	/* RFC 9112 §2.2 */
	ck_assert_int_eq(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}
END_TEST

START_TEST(test_bare_lf_refused)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\n\n"), 400);
}
END_TEST

START_TEST(test_bare_cr_refused)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_nul_refused)
{
	const char req[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
	size_t scan = 0, start, len;

	ck_assert_int_eq(http_head_find(req, sizeof(req) - 1, &scan, &limits, &start, &len), 400);
}
END_TEST

START_TEST(test_request_line_spacing_strict)
{
	/* RFC 9112 §3: exactly one SP between the parts */
	ck_assert_int_eq(parse("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

/* RFC 9110 §9.1: methods are case-sensitive tokens; unknown ones are extension methods. */
START_TEST(test_method_case_sensitive_extension)
{
	ck_assert_int_eq(parse("get / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	ck_assert_uint_eq(head.method, HTTPD_METHOD_OTHER);
	ck_assert_str_eq(head.method_name, "get");
	ck_assert_int_eq(parse("PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	ck_assert_uint_eq(head.method, HTTPD_METHOD_OTHER);
	ck_assert_str_eq(head.method_name, "PROPFIND");
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	ck_assert_uint_eq(head.method, HTTPD_METHOD_GET);
	ck_assert_int_eq(parse("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_versions)
{
	ck_assert_int_eq(parse("GET / HTTP/1.0\r\n\r\n"), 0);
	ck_assert_int_eq(head.version, 10);
	ck_assert(!head.keep_alive);
	ck_assert_int_eq(parse("GET / HTTP/1.9\r\nHost: a\r\n\r\n"), 0);
	ck_assert_int_eq(head.version, 11);
	ck_assert_int_eq(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
	ck_assert_int_eq(parse("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 505);
	ck_assert_int_eq(parse("GET / http/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_target_forms)
{
	ck_assert_int_eq(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	ck_assert_int_eq(head.form, TARGET_ASTERISK);
	ck_assert_int_eq(parse("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 0);
	ck_assert_int_eq(head.form, TARGET_AUTHORITY);
	ck_assert_int_eq(parse("GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_absolute_form_overrides_host)
{
	/* RFC 9112 §3.2.2 */
	ck_assert_int_eq(parse("GET http://other.example:8080/p?q HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	ck_assert_int_eq(head.form, TARGET_ABSOLUTE);
	ck_assert(span_is(head.host, head.host_len, "other.example:8080"));
	ck_assert(span_is(head.path, head.path_len, "/p"));
	ck_assert_str_eq(head.query, "q");
	ck_assert_int_eq(parse("GET http://x.example HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	ck_assert(span_is(head.host, head.host_len, "x.example"));
	ck_assert(span_is(head.path, head.path_len, "/"));
	ck_assert_int_eq(parse("GET http://x.example?a=b HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	ck_assert(span_is(head.host, head.host_len, "x.example"));
	ck_assert(span_is(head.path, head.path_len, "/"));
	ck_assert_str_eq(head.query, "a=b");
	ck_assert_str_eq(head.target, "http://x.example?a=b");
	ck_assert_int_eq(parse("GET http://user@x.example/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_target_bad_bytes_400)
{
	ck_assert_int_eq(parse("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET /a%4 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET /?q=%zz HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_host_required_once_in_11)
{
	/* RFC 9112 §3.2 */
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_host_validated)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a:80\r\n\r\n"), 0);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a:http\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: \r\n\r\n"), 400);
}
END_TEST

START_TEST(test_field_syntax_strict)
{
	/* RFC 9112 §5.1: no whitespace between name and colon */
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
	/* §5.2: obs-fold refused */
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  c\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nX:  trimmed \t\r\n\r\n"), 0);
	ck_assert_str_eq(headers[1].value, "trimmed");
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n"), 0);
}
END_TEST

/*
 * Field values are checked eight bytes at a time: a CTL, DEL or HTAB at
 * every offset, and bytes above 0x7f beside them, must be judged as one
 * byte at a time would judge them.
 */
START_TEST(test_field_value_bytes_at_every_offset)
{
	static const struct { unsigned char c; int rc; } cases[] = {
		{ '\t', 0 }, { 0x7f, 400 }, { 0x01, 400 }, { 0x1f, 400 }, { 0x0b, 400 },
		{ 0x80, 0 }, { 0xff, 0 }, { ' ', 0 }, { '~', 0 },
	};
	char req[128], value[40];

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		for (size_t at = 0; at < 24; at++) {
			memset(value, 'v', 24);
			value[at] = (char)cases[k].c;
			value[24] = '\0';
			snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX: %s\r\n\r\n", value);
			ck_assert_msg(parse(req) == cases[k].rc, "byte 0x%02x at %zu: %d", cases[k].c, at, parse(req));
		}
	}
	/* A word of obs-text with a DEL in the tail. */
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nX: \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x\x7f\r\n\r\n"), 400);
}
END_TEST

/* Framing fields are found in any case, and only by their exact names. */
START_TEST(test_field_names_any_case)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHOST: a\r\n\r\n"), 0);
	ck_assert(span_is(head.host, head.host_len, "a"));
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nhost: a\r\nContent-LENGTH: 5\r\n\r\n"), 0);
	ck_assert_int_eq(head.content_length, 5);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-encoding: chunked\r\n\r\n"), 0);
	ck_assert(head.chunked);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nCONNECTION: Close\r\n\r\n"), 0);
	ck_assert(!head.keep_alive);
	/* Same length, other names: not framing. */
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\n"), 0);
	ck_assert_int_eq(head.content_length, -1);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nHos7: b\r\n\r\n"), 0);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHosT: a\r\nhOST: b\r\n\r\n"), 400);
	ck_assert_int_eq(head.method_len, 3);
	ck_assert_int_eq(parse("OPTIONS /a?b HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	ck_assert_int_eq(head.method_len, 7);
	ck_assert_int_eq(head.target_len, 4);
}
END_TEST

/* Percent-escapes in a host are allowed (RFC 3986 reg-name) but must be whole. */
START_TEST(test_host_escapes)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: ex%41mple:80\r\n\r\n"), 0);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: ex%4mple\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: ex%\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a!$&'()*+,;=-._~\r\n\r\n"), 0);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\x80\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	ck_assert_int_eq(parse("GET /%2F HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}
END_TEST

START_TEST(test_content_length_rules)
{
	/* RFC 9112 §6.3, RFC 9110 §8.6 */
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n"), 0);
	ck_assert_int_eq(head.content_length, 42);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"), 0);
	ck_assert_int_eq(head.content_length, 5);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_transfer_encoding_rules)
{
	/* RFC 9112 §6.1 */
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
	ck_assert(head.chunked);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"), 0);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_connection_and_expect)
{
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), 0);
	ck_assert(!head.keep_alive);
	ck_assert_int_eq(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
	ck_assert(head.keep_alive);
	ck_assert_int_eq(parse("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"), 0);
	ck_assert(head.expect_continue);
	ck_assert_int_eq(parse("PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n"), 417);
	ck_assert_int_eq(parse("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), 0);
	ck_assert(!head.expect_continue);
}
END_TEST

START_TEST(test_conditional_fields_noticed)
{
	static const char *const conditional[] = {
		"If-None-Match: \"x\"", "if-modified-since: Sun, 06 Nov 1994 08:49:37 GMT", "IF-MATCH: *",
		"If-Unmodified-Since: x", "If-Range: \"x\"", "Range: bytes=0-1", "range: bytes=1-",
	};
	static const char *const plain[] = { "Accept: */*", "Ifx: 1", "If: 1", "Ranges: 1", "X-If-Match: 1" };
	char text[256];

	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	ck_assert(!head.conditional);
	for (size_t i = 0; i < sizeof(conditional) / sizeof(conditional[0]); i++) {
		snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n", conditional[i]);
		ck_assert_int_eq(parse(text), 0);
		ck_assert_msg(head.conditional, "%s", conditional[i]);
	}
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n", plain[i]);
		ck_assert_int_eq(parse(text), 0);
		ck_assert_msg(!head.conditional, "%s", plain[i]);
	}
}
END_TEST

START_TEST(test_limits)
{
	static char big[40000];
	struct http_limits small = { .max_request_line = 100, .max_head = 400, .max_headers = 3 };
	size_t scan = 0, start, len;

	memset(big, 0, sizeof(big));
	snprintf(big, sizeof(big), "GET /%0200d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
	ck_assert_int_eq(http_head_find(big, strlen(big), &scan, &small, &start, &len), 414);
	scan = 0;
	snprintf(big, sizeof(big), "GET /%0200d", 0);
	ck_assert_int_eq(http_head_find(big, strlen(big), &scan, &small, &start, &len), 414);
	scan = 0;
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: %0500d\r\n\r\n", 0);
	ck_assert_int_eq(http_head_find(big, strlen(big), &scan, &small, &start, &len), 431);
	scan = 0;
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
	ck_assert_int_eq(http_head_find(big, strlen(big), &scan, &small, &start, &len), 0);
	memcpy(copy, big + start, len - 2);
	copy[len - 2] = '\0';
	ck_assert_int_eq(http_head_parse(copy, len - 2, &small, headers, &head), 431);
	/* 8000 octets of request line are accepted by default (RFC 9112 §3) */
	scan = 0;
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	snprintf(big + 8000, 100, " HTTP/1.1\r\nHost: a\r\n\r\n");
	ck_assert_int_eq(parse(big), 0);
}
END_TEST

/* --- chunked ------------------------------------------------------------ */

static char body[4096];
static size_t body_len;

static int dechunk(const char *in, uint64_t max, size_t *consumed_out)
{
	struct httpd_chunked ch;
	size_t consumed, produced;
	int rc;

	httpd_chunked_init(&ch);
	consumed = produced = (size_t)-1;
	rc = httpd_chunked_decode(&ch, in, strlen(in), &consumed, body, sizeof(body) - 1, &produced, max);
	/* Progress is reported on errors too: callers add it to their offsets. */
	ck_assert_uint_le(consumed, strlen(in));
	ck_assert_uint_le(produced, sizeof(body) - 1);
	body_len = produced;
	body[produced] = '\0';
	if (consumed_out)
		*consumed_out = consumed;
	return rc;
}

START_TEST(test_chunked_simple)
{
	size_t consumed;

	ck_assert_int_eq(dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT", 1000, &consumed), HTTPD_CHUNKED_DONE);
	ck_assert_str_eq(body, "hello world");
	ck_assert_uint_eq(consumed, strlen("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
}
END_TEST

/* An unlimited body (the proxy's INT64_MAX, any max near 2^64) must not let a chunk size wrap the running total. */
START_TEST(test_chunked_size_cannot_wrap_the_total)
{
	ck_assert_int_eq(dechunk("1\r\na\r\nffffffffffffffff\r\n", UINT64_MAX, NULL), 413);
	ck_assert_int_eq(dechunk("1\r\na\r\nfffffffffffffffe\r\n", UINT64_MAX, NULL), HTTPD_CHUNKED_AGAIN);
	ck_assert_int_eq(dechunk("7fffffffffffffff\r\n", INT64_MAX, NULL), HTTPD_CHUNKED_AGAIN);
	ck_assert_int_eq(dechunk("8000000000000000\r\n", INT64_MAX, NULL), 413);
}
END_TEST

START_TEST(test_chunked_extensions_and_trailers_discarded)
{
	ck_assert_int_eq(dechunk("5;name=value;x=\"q\"\r\nhello\r\n0\r\nTrailer-A: 1\r\nB: 2\r\n\r\n", 1000, NULL),
	                 HTTPD_CHUNKED_DONE);
	ck_assert_str_eq(body, "hello");
}
END_TEST

/* RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) */
START_TEST(test_chunk_ext_grammar_accepted)
{
	static const char *const ok[] = {
		"2;a\r\nhi\r\n0\r\n\r\n",
		"2 ;a\r\nhi\r\n0\r\n\r\n",
		"2; a = b\r\nhi\r\n0\r\n\r\n",
		"2;a=\"x y;\\\"z\"\r\nhi\r\n0\r\n\r\n",
		"2;a;b=c ;d\r\nhi\r\n0;last\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(dechunk(ok[i], 1000, NULL) == HTTPD_CHUNKED_DONE, "refused: %s", ok[i]);
}
END_TEST

START_TEST(test_chunk_ext_grammar_refused)
{
	static const char *const bad[] = {
		"2 xyz\r\nhi\r\n0\r\n\r\n",        /* no ';' before the name */
		"2;\r\nhi\r\n0\r\n\r\n",           /* ';' without a name */
		"a \r\n0123456789\r\n0\r\n\r\n",   /* trailing whitespace, no extension */
		"2;a=\"open\r\nhi\r\n0\r\n\r\n",  /* quoted value never closed */
		"2;a=\r\nhi\r\n0\r\n\r\n",         /* '=' without a value */
		"2;a b\r\nhi\r\n0\r\n\r\n",        /* two tokens */
		"2;a=b c\r\nhi\r\n0\r\n\r\n",
		"2;a=\"x\"y\r\nhi\r\n0\r\n\r\n",
		"2;a@b\r\nhi\r\n0\r\n\r\n",        /* not a tchar */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(dechunk(bad[i], 1000, NULL) == 400, "accepted: %s", bad[i]);
}
END_TEST

START_TEST(test_chunked_byte_by_byte)
{
	const char *in = "a\r\n0123456789\r\n3;x\r\nabc\r\n0\r\nT: v\r\n\r\n";
	struct httpd_chunked ch;
	size_t total = 0;
	int rc = HTTP_PARSE_AGAIN;

	httpd_chunked_init(&ch);
	for (size_t i = 0; i < strlen(in); i++) {
		size_t consumed, produced;

		rc = httpd_chunked_decode(&ch, in + i, 1, &consumed, body + total, sizeof(body) - total,
		                         &produced, 1000);
		ck_assert_uint_eq(consumed, 1);
		total += produced;
		if (i + 1 < strlen(in))
			ck_assert_int_eq(rc, HTTP_PARSE_AGAIN);
	}
	ck_assert_int_eq(rc, HTTPD_CHUNKED_DONE);
	body[total] = '\0';
	ck_assert_str_eq(body, "0123456789abc");
}
END_TEST

START_TEST(test_chunked_framing_errors)
{
	ck_assert_int_eq(dechunk("5\nhello\r\n0\r\n\r\n", 1000, NULL), 400);       /* bare LF */
	ck_assert_int_eq(dechunk("5\r\nhello\n0\r\n\r\n", 1000, NULL), 400);
	ck_assert_int_eq(dechunk("5\r\nhelloX\r\n0\r\n\r\n", 1000, NULL), 400);    /* data longer than size */
	ck_assert_int_eq(dechunk("x\r\n", 1000, NULL), 400);
	ck_assert_int_eq(dechunk("-5\r\n", 1000, NULL), 400);
	ck_assert_int_eq(dechunk("0x5\r\n", 1000, NULL), 400);
	ck_assert_int_eq(dechunk("\r\n", 1000, NULL), 400);
	ck_assert_int_eq(dechunk("0\r\nbad trailer\n\r\n", 1000, NULL), 400);
}
END_TEST

START_TEST(test_chunked_size_overflow_and_limit)
{
	ck_assert_int_eq(dechunk("ffffffffffffffffff\r\n", UINT64_MAX, NULL), 413);
	ck_assert_int_eq(dechunk("100\r\n", 10, NULL), 413);
	ck_assert_int_eq(dechunk("5\r\nhello\r\n6\r\n", 10, NULL), 413);
}
END_TEST

/* The byte-at-a-time scan http_head_find had before it looked at eight bytes at once. */
static int head_find_bytewise(const char *buf, size_t len, size_t *scan, const struct http_limits *lim,
                              size_t *head_start, size_t *head_len)
{
	size_t start = 0, i;
	const char *first_lf;

	while (start + 1 < len && buf[start] == '\r' && buf[start + 1] == '\n')
		start += 2;
	if (start > lim->max_head)
		return 400;
	for (i = *scan > start ? *scan : start; i < len; i++) {
		if (buf[i] == '\n') {
			if (i == start || buf[i - 1] != '\r')
				return 400;
			if (i - start >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
				break;
		} else if (buf[i] == '\0') {
			return 400;
		} else if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n') {
			return 400;
		}
	}
	first_lf = memchr(buf + start, '\n', (i < len ? i + 1 : len) - start);
	if (first_lf == NULL ? len - start > lim->max_request_line + 1
	                     : (size_t)(first_lf - buf - start) > lim->max_request_line + 1)
		return 414;
	if (i == len) {
		*scan = len > start ? len - 1 : start;
		return len - start > lim->max_head ? 431 : HTTP_PARSE_AGAIN;
	}
	if (i + 1 - start > lim->max_head)
		return 431;
	*head_start = start;
	*head_len = i + 1 - start;
	*scan = i + 1;
	return 0;
}

/*
 * The word-at-a-time scan answers as the bytewise one did, for 200,000 heads
 * of plain bytes, CR, LF and NUL at every alignment, found whole and in two
 * pieces (the second call resumes from *scan).
 */
START_TEST(test_head_find_matches_bytewise_scan)
{
	static const char alphabet[] = "aB :/\r\r\n\n\n\0";
	const struct http_limits lim = { .max_request_line = 40, .max_head = 90, .max_headers = 20 };
	unsigned seed = 12345;
	char buf[128];

	for (int round = 0; round < 200000; round++) {
		size_t len = 0, want_len = 0, got_len = 0, want_start = 0, got_start = 0, split;
		size_t want_scan = 0, got_scan = 0;
		int want, got;

		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % sizeof(buf);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			/* Mostly plain bytes, as in real heads; CRLF pairs often enough to end some. */
			unsigned r = (seed >> 16) % 100;
			buf[i] = r < 70 ? "GET /x HTTP/1.1 Host: a"[r % 23] : r < 90 ? (r & 1 ? '\r' : '\n')
			                                                      : alphabet[r % (sizeof(alphabet) - 1)];
		}
		seed = seed * 1103515245u + 12345u;
		split = len ? (seed >> 16) % len : 0;
		want = head_find_bytewise(buf, split, &want_scan, &lim, &want_start, &want_len);
		got = http_head_find(buf, split, &got_scan, &lim, &got_start, &got_len);
		ck_assert_int_eq(got, want);
		if (want == HTTP_PARSE_AGAIN) {
			ck_assert_uint_eq(got_scan, want_scan);
			want = head_find_bytewise(buf, len, &want_scan, &lim, &want_start, &want_len);
			got = http_head_find(buf, len, &got_scan, &lim, &got_start, &got_len);
			ck_assert_msg(got == want, "round %d: %d, want %d", round, got, want);
		}
		if (want == 0) {
			ck_assert_uint_eq(got_start, want_start);
			ck_assert_uint_eq(got_len, want_len);
			ck_assert_uint_eq(got_scan, want_scan);
		} else if (want == HTTP_PARSE_AGAIN) {
			ck_assert_uint_eq(got_scan, want_scan);
		}
	}
}
END_TEST

/* HTTP/2 heads from pseudo-header fields (RFC 9113 §8.3). */
static int h2_head(const char *method, const char *scheme, const char *authority, const char *path,
                   const char *protocol, struct httpd_header *fields, size_t count, bool end_stream,
                   struct http_head *out)
{
	struct h2_pseudo ps = {
		.method = method, .scheme = scheme, .authority = authority, .path = path, .protocol = protocol,
		.method_len = method ? strlen(method) : 0, .authority_len = authority ? strlen(authority) : 0,
		.path_len = path ? strlen(path) : 0,
	};

	return http_head_from_h2(&ps, fields, count, end_stream, out);
}

START_TEST(test_h2_heads)
{
	struct http_head h;
	struct httpd_header cl[] = { { "content-length", "5", 14, 1 } };
	struct httpd_header host_a[] = { { "host", "a.test", 4, 6 } };
	struct httpd_header host_b[] = { { "host", "b.test", 4, 6 } };
	struct httpd_header ranged[] = { { "range", "bytes=0-1", 5, 9 } };

	ck_assert_int_eq(h2_head("GET", "https", "a.test:8443", "/p/x?y=1", NULL, ranged, 1, true, &h), 0);
	ck_assert_int_eq(h.version, 20);
	ck_assert_uint_eq(h.method, HTTPD_METHOD_GET);
	ck_assert(h.path_len == 4 && memcmp(h.path, "/p/x", 4) == 0);
	ck_assert_str_eq(h.query, "y=1");
	ck_assert(h.host_len == 11 && memcmp(h.host, "a.test:8443", 11) == 0);
	ck_assert(h.conditional && h.keep_alive && !h.chunked && h.content_length == -1);
	/* required pseudo-headers, and only origin-form (or * for OPTIONS) in :path */
	ck_assert_int_eq(h2_head("GET", NULL, "a", "/", NULL, NULL, 0, true, &h), 400);
	ck_assert_int_eq(h2_head("GET", "http", "a", "", NULL, NULL, 0, true, &h), 400);
	ck_assert_int_eq(h2_head("GET", "http", "a", NULL, NULL, NULL, 0, true, &h), 400);
	ck_assert_int_eq(h2_head(NULL, "http", "a", "/", NULL, NULL, 0, true, &h), 400);
	ck_assert_int_eq(h2_head("G T", "http", "a", "/", NULL, NULL, 0, true, &h), 400);
	ck_assert_int_eq(h2_head("GET", "http", "a", "http://a/", NULL, NULL, 0, true, &h), 400);
	ck_assert_int_eq(h2_head("GET", "http", "a", "*", NULL, NULL, 0, true, &h), 400);
	ck_assert_int_eq(h2_head("OPTIONS", "http", "a", "*", NULL, NULL, 0, true, &h), 0);
	ck_assert_int_eq(h2_head("GET", "http", "a", "/%zz", NULL, NULL, 0, true, &h), 400);
	/* :authority is the host; a Host naming another is malformed; without :authority, Host serves */
	ck_assert_int_eq(h2_head("GET", "http", "a.test", "/", NULL, host_a, 1, true, &h), 0);
	ck_assert_int_eq(h2_head("GET", "http", "a.test", "/", NULL, host_b, 1, true, &h), 400);
	ck_assert_int_eq(h2_head("GET", "http", NULL, "/", NULL, host_b, 1, true, &h), 0);
	ck_assert(h.host_len == 6 && memcmp(h.host, "b.test", 6) == 0);
	ck_assert_int_eq(h2_head("GET", "http", "a b", "/", NULL, NULL, 0, true, &h), 400);
	/* the body: a length, or the stream's end (read as chunked); a length on an ended stream is a lie */
	ck_assert_int_eq(h2_head("POST", "http", "a", "/", NULL, cl, 1, false, &h), 0);
	ck_assert(h.content_length == 5 && !h.chunked);
	ck_assert_int_eq(h2_head("POST", "http", "a", "/", NULL, NULL, 0, false, &h), 0);
	ck_assert(h.chunked && h.content_length == -1);
	ck_assert_int_eq(h2_head("POST", "http", "a", "/", NULL, cl, 1, true, &h), 400);
	/* CONNECT: :authority alone; :protocol (RFC 8441) only with CONNECT */
	ck_assert_int_eq(h2_head("CONNECT", NULL, "a.test:443", NULL, NULL, NULL, 0, false, &h), 0);
	ck_assert_uint_eq(h.method, HTTPD_METHOD_CONNECT);
	ck_assert_int_eq(h2_head("CONNECT", "http", "a.test:443", "/", NULL, NULL, 0, false, &h), 400);
	ck_assert_int_eq(h2_head("CONNECT", "http", "a.test", "/chat", "websocket", NULL, 0, false, &h), 0);
	ck_assert_int_eq(h2_head("GET", "http", "a.test", "/chat", "websocket", NULL, 0, false, &h), 400);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http_parse");
	TCase *tc = tcase_create("head");
	TCase *tch = tcase_create("chunked");

	tcase_add_test(tc, test_simple_get);
	tcase_add_test(tc, test_field_value_bytes_at_every_offset);
	tcase_add_test(tc, test_field_names_any_case);
	tcase_add_test(tc, test_host_escapes);
	tcase_add_test(tc, test_head_find_matches_bytewise_scan);
	tcase_add_test(tc, test_conditional_fields_noticed);
	tcase_add_test(tc, test_head_incomplete_needs_more);
	tcase_add_test(tc, test_head_found_across_calls);
	tcase_add_test(tc, test_leading_empty_lines_ignored);
	tcase_add_test(tc, test_bare_lf_refused);
	tcase_add_test(tc, test_bare_cr_refused);
	tcase_add_test(tc, test_nul_refused);
	tcase_add_test(tc, test_request_line_spacing_strict);
	tcase_add_test(tc, test_method_case_sensitive_extension);
	tcase_add_test(tc, test_chunk_ext_grammar_accepted);
	tcase_add_test(tc, test_chunk_ext_grammar_refused);
	tcase_add_test(tc, test_versions);
	tcase_add_test(tc, test_target_forms);
	tcase_add_test(tc, test_absolute_form_overrides_host);
	tcase_add_test(tc, test_target_bad_bytes_400);
	tcase_add_test(tc, test_host_required_once_in_11);
	tcase_add_test(tc, test_host_validated);
	tcase_add_test(tc, test_field_syntax_strict);
	tcase_add_test(tc, test_content_length_rules);
	tcase_add_test(tc, test_transfer_encoding_rules);
	tcase_add_test(tc, test_connection_and_expect);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_h2_heads);
	tcase_add_test(tch, test_chunked_simple);
	tcase_add_test(tch, test_chunked_size_cannot_wrap_the_total);
	tcase_add_test(tch, test_chunked_extensions_and_trailers_discarded);
	tcase_add_test(tch, test_chunked_byte_by_byte);
	tcase_add_test(tch, test_chunked_framing_errors);
	tcase_add_test(tch, test_chunked_size_overflow_and_limit);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tch);
	return tap_run(s);
}
