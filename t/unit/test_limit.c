/* limit_req's leaky bucket (nginx's arithmetic); rates are parsed by the directive table (test_directive). */
#include "limit.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The configuration loader's (src/core/config.c, not linked here): a zone in Redis is made as when serving. */
int httpd_config_checking(void)
{
	return 0;
}

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

/* A zone in Redis: its address is checked (and a name resolved) when the configuration loads, nothing connects. */
START_TEST(test_redis_zone_addresses)
{
	static const struct { const char *address; const char *error; } cases[] = {
		{ "127.0.0.1:6379", NULL },
		{ "[::1]:6379", NULL },
		{ "localhost:6380", NULL },
		{ "unix:/run/redis/redis.sock", NULL },
		{ "127.0.0.1", "HOST:PORT" },
		{ "127.0.0.1:0", "HOST:PORT" },
		{ "127.0.0.1:65536", "HOST:PORT" },
		{ "127.0.0.1:63x", "HOST:PORT" },
		{ "::1:6379", "HOST:PORT" },
		{ "[::1]6379", "HOST:PORT" },
		{ ":6379", "HOST:PORT" },
		{ "unix:run/redis.sock", "absolute" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		struct limit_zone *z = limit_zone_redis("fleet", "$remote_addr", 1000, cases[i].address, NULL, 250, err,
		                                        sizeof(err));

		if (cases[i].error == NULL) {
			ck_assert_msg(z != NULL, "%s: %s", cases[i].address, err);
			ck_assert(limit_zone_in_redis(z));
			ck_assert_str_eq(limit_zone_redis_address(z), cases[i].address);
			limit_zone_put(z);
		} else {
			ck_assert_msg(z == NULL, "%s was accepted", cases[i].address);
			ck_assert_msg(strstr(err, cases[i].error) != NULL, "%s: %s", cases[i].address, err);
		}
	}
	/* a password file others may read is refused, naming the file */
	{
		char path[] = "/tmp/test_limit_passXXXXXX", err[256] = "";
		int fd = mkstemp(path);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, "secret\n", 7), 7);
		close(fd);
		ck_assert_int_eq(chmod(path, 0644), 0);
		ck_assert_ptr_null(limit_zone_redis("fleet", "$remote_addr", 1000, "127.0.0.1:6379", path, 250, err,
		                                    sizeof(err)));
		ck_assert_msg(strstr(err, "chmod 600") != NULL && strstr(err, path) != NULL, "%s", err);
		ck_assert_int_eq(chmod(path, 0600), 0);
		{
			struct limit_zone *z = limit_zone_redis("fleet", "$remote_addr", 1000, "127.0.0.1:6379", path, 250,
			                                        err, sizeof(err));

			ck_assert_msg(z != NULL, "%s", err);
			limit_zone_put(z);
		}
		unlink(path);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("limit");
	TCase *tc = tcase_create("bucket");

	tcase_add_test(tc, test_burst_and_nodelay);
	tcase_add_test(tc, test_delay);
	tcase_add_test(tc, test_clock_steps);
	tcase_add_test(tc, test_redis_zone_addresses);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
