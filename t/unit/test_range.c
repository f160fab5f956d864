/* Range header parsing, RFC 9110 §14. */
#include <stdio.h>

#include "range.h"
#include "tap.h"

static struct byte_range r[RANGE_MAX];
static size_t n;

START_TEST(test_range_single)
{
	ck_assert_int_eq(range_parse("bytes=0-99", 1000, r, &n), RANGE_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(r[0].first, 0);
	ck_assert_uint_eq(r[0].last, 99);
}
END_TEST

START_TEST(test_range_open_ended)
{
	ck_assert_int_eq(range_parse("bytes=900-", 1000, r, &n), RANGE_OK);
	ck_assert_uint_eq(r[0].first, 900);
	ck_assert_uint_eq(r[0].last, 999);
}
END_TEST

START_TEST(test_range_suffix)
{
	ck_assert_int_eq(range_parse("bytes=-100", 1000, r, &n), RANGE_OK);
	ck_assert_uint_eq(r[0].first, 900);
	ck_assert_uint_eq(r[0].last, 999);
}
END_TEST

START_TEST(test_range_suffix_longer_than_file)
{
	ck_assert_int_eq(range_parse("bytes=-5000", 1000, r, &n), RANGE_OK);
	ck_assert_uint_eq(r[0].first, 0);
	ck_assert_uint_eq(r[0].last, 999);
}
END_TEST

START_TEST(test_range_end_clamped)
{
	ck_assert_int_eq(range_parse("bytes=500-99999", 1000, r, &n), RANGE_OK);
	ck_assert_uint_eq(r[0].last, 999);
}
END_TEST

START_TEST(test_range_unsatisfiable)
{
	ck_assert_int_eq(range_parse("bytes=1000-", 1000, r, &n), RANGE_UNSATISFIABLE);
	ck_assert_int_eq(range_parse("bytes=-0", 1000, r, &n), RANGE_UNSATISFIABLE);
	ck_assert_int_eq(range_parse("bytes=0-", 0, r, &n), RANGE_UNSATISFIABLE);
	/* One satisfiable range among unsatisfiable ones is enough (§14.1.1). */
	ck_assert_int_eq(range_parse("bytes=5000-6000, 0-0", 1000, r, &n), RANGE_OK);
	ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(test_range_malformed_ignored)
{
	ck_assert_int_eq(range_parse("bytes=", 1000, r, &n), RANGE_IGNORE);
	ck_assert_int_eq(range_parse("bytes=abc", 1000, r, &n), RANGE_IGNORE);
	ck_assert_int_eq(range_parse("bytes=5-1", 1000, r, &n), RANGE_IGNORE);
	ck_assert_int_eq(range_parse("bytes=1-2-3", 1000, r, &n), RANGE_IGNORE);
	ck_assert_int_eq(range_parse("items=0-1", 1000, r, &n), RANGE_IGNORE);
	ck_assert_int_eq(range_parse("bytes=99999999999999999999-", 1000, r, &n), RANGE_IGNORE);
	ck_assert_int_eq(range_parse("bytes=--1", 1000, r, &n), RANGE_IGNORE);
}
END_TEST

START_TEST(test_range_multiple_sorted_and_merged)
{
	ck_assert_int_eq(range_parse("bytes=500-599, 0-99", 1000, r, &n), RANGE_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(r[0].first, 0);
	ck_assert_uint_eq(r[1].first, 500);
	/* overlapping and nearby ranges become one */
	ck_assert_int_eq(range_parse("bytes=0-99, 50-149, 180-199", 1000, r, &n), RANGE_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(r[0].last, 199);
}
END_TEST

START_TEST(test_range_amplification_bounded)
{
	/* The Apache Killer: many overlapping ranges collapse into one. */
	char header[8000] = "bytes=";
	size_t len = 6;

	for (int i = 0; i < 90; i++)
		len += (size_t)snprintf(header + len, sizeof(header) - len, "%s0-%d", i ? "," : "", 999 - i);
	ck_assert_int_eq(range_parse(header, 1000, r, &n), RANGE_OK);
	ck_assert_uint_eq(n, 1);
	/* Many separate pieces: the whole file instead. */
	len = 6;
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(header + len, sizeof(header) - len, "%s%d-%d", i ? "," : "", i * 1000, i * 1000);
	ck_assert_int_eq(range_parse(header, 100000, r, &n), RANGE_IGNORE);
	/* More specs than we parse: ignored. */
	len = 6;
	for (int i = 0; i < 150; i++)
		len += (size_t)snprintf(header + len, sizeof(header) - len, "%s0-0", i ? "," : "");
	ck_assert_int_eq(range_parse(header, 1000, r, &n), RANGE_IGNORE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("range");
	TCase *tc = tcase_create("range");

	tcase_add_test(tc, test_range_single);
	tcase_add_test(tc, test_range_open_ended);
	tcase_add_test(tc, test_range_suffix);
	tcase_add_test(tc, test_range_suffix_longer_than_file);
	tcase_add_test(tc, test_range_end_clamped);
	tcase_add_test(tc, test_range_unsatisfiable);
	tcase_add_test(tc, test_range_malformed_ignored);
	tcase_add_test(tc, test_range_multiple_sorted_and_merged);
	tcase_add_test(tc, test_range_amplification_bounded);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
