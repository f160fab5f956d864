/* limit_req's leaky bucket (nginx's arithmetic); rates are parsed by the directive table (test_directive). */
#include "limit.h"
#include "tap.h"

START_TEST(test_burst_and_nodelay)
{
	struct limit_bucket b = { 0, 0 };
	uint64_t wait;
	int passed = 0, rejected = 0;

	/* 1r/s, burst 3, nodelay (delay = burst): 4 at once pass, the 5th is refused for a second */
	for (int i = 0; i < 5; i++) {
		enum limit_verdict v = limit_bucket_take(&b, 1000, 1000, 3, 3, &wait);

		passed += v == LIMIT_PASSED;
		rejected += v == LIMIT_REJECTED;
	}
	ck_assert_int_eq(passed, 4);
	ck_assert_int_eq(rejected, 1);
	ck_assert_uint_eq(wait, 1000);
	/* a second later one more fits */
	ck_assert_int_eq(limit_bucket_take(&b, 2000, 1000, 3, 3, &wait), LIMIT_PASSED);
	ck_assert_int_eq(limit_bucket_take(&b, 2000, 1000, 3, 3, &wait), LIMIT_REJECTED);
}
END_TEST

START_TEST(test_delay)
{
	struct limit_bucket b = { 0, 0 };
	uint64_t wait;

	/* 10r/s, burst 5, no nodelay: the first passes, the ones after wait their turn, 100 ms apart */
	ck_assert_int_eq(limit_bucket_take(&b, 5000, 10000, 5, 0, &wait), LIMIT_PASSED);
	ck_assert_int_eq(limit_bucket_take(&b, 5000, 10000, 5, 0, &wait), LIMIT_DELAYED);
	ck_assert_uint_eq(wait, 100);
	ck_assert_int_eq(limit_bucket_take(&b, 5000, 10000, 5, 0, &wait), LIMIT_DELAYED);
	ck_assert_uint_eq(wait, 200);
	/* delay = 2: the first two of the burst pass at once */
	b = (struct limit_bucket){ 0, 0 };
	ck_assert_int_eq(limit_bucket_take(&b, 5000, 10000, 5, 2, &wait), LIMIT_PASSED);
	ck_assert_int_eq(limit_bucket_take(&b, 5000, 10000, 5, 2, &wait), LIMIT_PASSED);
	ck_assert_int_eq(limit_bucket_take(&b, 5000, 10000, 5, 2, &wait), LIMIT_PASSED);
	ck_assert_int_eq(limit_bucket_take(&b, 5000, 10000, 5, 2, &wait), LIMIT_DELAYED);
	ck_assert_uint_eq(wait, 100);
}
END_TEST

START_TEST(test_clock_steps)
{
	struct limit_bucket b = { 0, 0 };
	uint64_t wait;

	ck_assert_int_eq(limit_bucket_take(&b, 100000, 1000, 0, 0, &wait), LIMIT_PASSED);
	/* a small step back counts as no time at all */
	ck_assert_int_eq(limit_bucket_take(&b, 99990, 1000, 0, 0, &wait), LIMIT_REJECTED);
	/* a step back of over a minute starts over rather than waiting a minute */
	b.excess = 0;
	ck_assert_int_eq(limit_bucket_take(&b, 10000, 1000, 0, 0, &wait), LIMIT_REJECTED);
	ck_assert_uint_le(wait, 1000);
	/* a dry run is counted the same way: the same bucket, the same verdicts */
	b = (struct limit_bucket){ 0, 0 };
	ck_assert_int_eq(limit_bucket_take(&b, 1000, 1000, 0, 0, &wait), LIMIT_PASSED);
	ck_assert_int_eq(limit_bucket_take(&b, 1000, 1000, 0, 0, &wait), LIMIT_REJECTED);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("limit");
	TCase *tc = tcase_create("bucket");

	tcase_add_test(tc, test_burst_and_nodelay);
	tcase_add_test(tc, test_delay);
	tcase_add_test(tc, test_clock_steps);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
