/* Responses: header rules and error pages that keep what a module said. */
#include <stdlib.h>
#include <string.h>

#include "http_response.h"
#include "pool.h"
#include "tap.h"

static struct httpd_pool *pool;
static struct httpd_response res;

static void setup(void)
{
	pool = pool_create(4096);
	ck_assert_ptr_nonnull(pool);
	response_init(&res, pool);
}

static void teardown(void)
{
	pool_destroy(pool);
}

/* An unchecked httpd_pool_printf that failed must not crash the server. */
START_TEST(test_add_header_refuses_null_and_framing)
{
	ck_assert_int_eq(httpd_response_add_header(&res, "X-A", NULL), -1);
	ck_assert_int_eq(httpd_response_add_header(&res, NULL, "v"), -1);
	ck_assert_int_eq(httpd_response_add_header(&res, "Content-Length", "5"), -1);
	ck_assert_int_eq(httpd_response_add_header(&res, "X-B", "a\r\nInjected: 1"), -1);
	ck_assert_int_eq(httpd_response_add_header(&res, "X-C", "fine"), 0);
	ck_assert_str_eq(httpd_response_header(&res, "x-c"), "fine");
	ck_assert_ptr_null(httpd_response_header(&res, "X-A"));
}
END_TEST

/* RFC 9110 §11.6.1: a 401 carries WWW-Authenticate; the error page must keep it. */
START_TEST(test_error_keeps_module_headers_drops_representation)
{
	static const char body[] = "<p>secret</p>";

	ck_assert_int_eq(httpd_response_add_header(&res, "WWW-Authenticate", "Signature"), 0);
	ck_assert_int_eq(httpd_response_add_header(&res, "Content-Type", "application/x-secret"), 0);
	ck_assert_int_eq(httpd_response_add_header(&res, "ETag", "\"abc\""), 0);
	httpd_response_set_body_buffer(&res, body, sizeof(body) - 1);
	response_error(&res, 401, NULL, 0, NULL);
	ck_assert_int_eq(res.status, 401);
	ck_assert_str_eq(httpd_response_header(&res, "WWW-Authenticate"), "Signature");
	ck_assert_str_eq(httpd_response_header(&res, "Content-Type"), "text/html; charset=utf-8");
	ck_assert_ptr_null(httpd_response_header(&res, "ETag"));
	ck_assert(res.body == BODY_BUFFER && strstr(res.buf, "401 Unauthorized") != NULL);
}
END_TEST

START_TEST(test_header_remove_keeps_order_and_tail)
{
	ck_assert_int_eq(httpd_response_add_header(&res, "A", "1"), 0);
	ck_assert_int_eq(httpd_response_add_header(&res, "B", "2"), 0);
	ck_assert_int_eq(httpd_response_add_header(&res, "a", "3"), 0);
	response_header_remove(&res, "A");
	ck_assert_str_eq(res.headers->name, "B");
	ck_assert_ptr_null(res.headers->next);
	ck_assert_int_eq(httpd_response_add_header(&res, "C", "4"), 0);
	ck_assert_str_eq(res.headers->next->name, "C");
}
END_TEST

static const char prebuilt_text[] = "ETag: \"e1\"\r\nContent-Type: text/plain\r\n";
static const struct response_header prebuilt_fields[] = {
	{ .name = "ETag", .name_len = 4, .value = "\"e1\"", .value_len = 4 },
	{ .name = "Content-Type", .name_len = 12, .value = "text/plain", .value_len = 10 },
};

static char *head_of(struct httpd_response *r)
{
	struct response_head_opts opts = { .version = 11, .keep_alive = true, .now = 784111777 };
	size_t len;
	bool chunked;
	char *head = response_head_build(r, &opts, &len, &chunked);

	ck_assert_ptr_nonnull(head);
	head[len - 1] = '\0';   /* the last LF: a string to search */
	return head;
}

/* Prebuilt fields go out as they are, answer lookups, and become ordinary headers when edited. */
START_TEST(test_prebuilt_fields_seen_and_edited)
{
	char *head;

	response_fields_prebuilt(&res, prebuilt_text, sizeof(prebuilt_text) - 1, prebuilt_fields, 2);
	ck_assert_int_eq(httpd_response_add_header(&res, "X-Module", "kept"), 0);
	httpd_response_set_body_buffer(&res, "hello", 5);
	ck_assert_str_eq(httpd_response_header(&res, "content-type"), "text/plain");
	ck_assert_str_eq(httpd_response_header(&res, "X-Module"), "kept");
	head = head_of(&res);
	ck_assert_ptr_nonnull(strstr(head, "\r\nETag: \"e1\"\r\nContent-Type: text/plain\r\nX-Module: kept\r\n"));
	ck_assert_ptr_nonnull(strstr(head, "\r\nContent-Length: 5\r\n"));

	/* An error drops the representation fields, prebuilt or not, and keeps the rest. */
	response_error(&res, 404, NULL, 0, NULL);
	ck_assert_int_eq(res.prebuilt_count, 0);
	ck_assert_ptr_null(httpd_response_header(&res, "ETag"));
	ck_assert_str_eq(httpd_response_header(&res, "X-Module"), "kept");
	head = head_of(&res);
	ck_assert_ptr_null(strstr(head, "ETag"));
	ck_assert_ptr_null(strstr(head, "text/plain"));
	ck_assert_ptr_nonnull(strstr(head, "Content-Type: text/html; charset=utf-8\r\n"));
}
END_TEST

START_TEST(test_prebuilt_fields_expand_in_order)
{
	ck_assert_int_eq(httpd_response_add_header(&res, "X-Module", "1"), 0);
	response_fields_prebuilt(&res, prebuilt_text, sizeof(prebuilt_text) - 1, prebuilt_fields, 2);
	ck_assert_int_eq(response_fields_expand(&res), 0);
	ck_assert_int_eq(res.prebuilt_len, 0);
	ck_assert_str_eq(res.headers->name, "ETag");
	ck_assert_str_eq(res.headers->next->name, "Content-Type");
	ck_assert_str_eq(res.headers->next->next->name, "X-Module");
	ck_assert_int_eq(httpd_response_add_header(&res, "Z", "2"), 0);
	ck_assert_str_eq(res.headers_tail->name, "Z");
}
END_TEST

/* HTTP/2's fields: ":status" from three digits, the prebuilt ones as they are (lower case), the length last. */
START_TEST(test_h2_fields_status_prebuilt_and_length)
{
	static const struct response_header lower[] = {
		{ .name = "etag", .name_len = 4, .value = "\"e1\"", .value_len = 4 },
		{ .name = "content-type", .name_len = 12, .value = "text/plain", .value_len = 10 },
	};
	struct response_head_opts opts = { .version = 11, .keep_alive = true, .now = 784111777 };
	struct response_field *f;
	size_t n;

	response_fields_prebuilt(&res, prebuilt_text, sizeof(prebuilt_text) - 1, lower, 2);
	ck_assert_int_eq(httpd_response_add_header(&res, "X-Module", "kept"), 0);
	httpd_response_set_status(&res, 203);
	httpd_response_set_body_buffer(&res, "hello", 5);
	f = response_fields_build(&res, &opts, &n);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(n, 7);
	ck_assert_str_eq(f[0].name, ":status");
	ck_assert_str_eq(f[0].value, "203");
	ck_assert_str_eq(f[2].name, "date");
	ck_assert_str_eq(f[2].value, "Sun, 06 Nov 1994 08:49:37 GMT");
	ck_assert_str_eq(f[3].name, "etag");
	ck_assert_str_eq(f[4].name, "content-type");
	ck_assert_str_eq(f[5].name, "x-module");
	ck_assert_str_eq(f[6].name, "content-length");
	ck_assert_str_eq(f[6].value, "5");
	ck_assert_uint_eq(f[6].value_len, 1);
}
END_TEST

/* A module's status outside 100-999 is answered as 500: three digits in both protocols, never "000". */
START_TEST(test_status_out_of_range_is_500)
{
	struct response_head_opts opts = { .version = 11, .keep_alive = true, .now = 784111777 };
	struct response_field *f;
	size_t n;

	httpd_response_set_status(&res, 1000);
	ck_assert_int_eq(httpd_response_status(&res), 500);
	httpd_response_set_status(&res, 42);
	ck_assert_int_eq(httpd_response_status(&res), 500);
	ck_assert_ptr_nonnull(strstr(head_of(&res), "HTTP/1.1 500 "));
	f = response_fields_build(&res, &opts, &n);
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(f[0].value, "500");
	httpd_response_set_status(&res, 999);
	ck_assert_int_eq(httpd_response_status(&res), 999);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("response");
	TCase *tc = tcase_create("response");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_add_header_refuses_null_and_framing);
	tcase_add_test(tc, test_error_keeps_module_headers_drops_representation);
	tcase_add_test(tc, test_header_remove_keeps_order_and_tail);
	tcase_add_test(tc, test_prebuilt_fields_seen_and_edited);
	tcase_add_test(tc, test_prebuilt_fields_expand_in_order);
	tcase_add_test(tc, test_h2_fields_status_prebuilt_and_length);
	tcase_add_test(tc, test_status_out_of_range_is_500);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
