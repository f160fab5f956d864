#include <string.h>

#include "http_date.h"
#include "tap.h"

START_TEST(test_date_format_imf_fixdate)
{
	char buf[HTTPD_DATE_LEN];

	/* RFC 9110 §5.6.7 example */
	ck_assert_str_eq(httpd_http_date(784111777, buf), "Sun, 06 Nov 1994 08:49:37 GMT");
	ck_assert_str_eq(httpd_http_date(0, buf), "Thu, 01 Jan 1970 00:00:00 GMT");
}
END_TEST

START_TEST(test_date_parse_all_three_forms)
{
	time_t t;

	ck_assert(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t));
	ck_assert_int_eq(t, 784111777);
	ck_assert(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t));
	ck_assert_int_eq(t, 784111777);
	ck_assert(http_date_parse("Sun Nov  6 08:49:37 1994", &t));
	ck_assert_int_eq(t, 784111777);
}
END_TEST

START_TEST(test_date_parse_rejects_garbage)
{
	time_t t;

	ck_assert(!http_date_parse("", &t));
	ck_assert(!http_date_parse("yesterday", &t));
	ck_assert(!http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", &t));
	ck_assert(!http_date_parse("Sun, 06 Foo 1994 08:49:37 GMT", &t));
	ck_assert(!http_date_parse("Sun, 06 Nov 1994 25:49:37 GMT", &t));
	ck_assert(!http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT trailing", &t));
}
END_TEST

START_TEST(test_date_round_trip)
{
	char buf[HTTPD_DATE_LEN];
	time_t t;

	for (time_t v = 0; v < 4000000000; v += 123456789) {
		ck_assert(http_date_parse(httpd_http_date(v, buf), &t));
		ck_assert_int_eq(t, v);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http_date");
	TCase *tc = tcase_create("dates");

	tcase_add_test(tc, test_date_format_imf_fixdate);
	tcase_add_test(tc, test_date_parse_all_three_forms);
	tcase_add_test(tc, test_date_parse_rejects_garbage);
	tcase_add_test(tc, test_date_round_trip);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
