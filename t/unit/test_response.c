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

int main(void)
{
	Suite *s = suite_create("response");
	TCase *tc = tcase_create("response");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_add_header_refuses_null_and_framing);
	tcase_add_test(tc, test_error_keeps_module_headers_drops_representation);
	tcase_add_test(tc, test_header_remove_keeps_order_and_tail);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
