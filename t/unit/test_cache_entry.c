/* The cache's on-disk head of a stored response (every length checked) and Vary's secondary key. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache_entry.h"
#include "tap.h"

static struct cache_field sample_fields[] = {
	{ "Content-Type", "text/plain", 12, 10 },
	{ "ETag", "\"abc\"", 4, 5 },
	{ "Cache-Control", "max-age=60", 13, 10 },
};

static struct cache_entry_meta sample(void)
{
	struct cache_entry_meta m = { .request_time = 1700000000, .response_time = 1700000001, .body_len = 12345,
	                              .status = 200, .key = "httpa.test/x?y", .key_len = 14,
	                              .vary = "accept-encoding:br\n", .vary_len = 19,
	                              .fields = sample_fields, .field_count = 3 };

	for (int i = 0; i < 32; i++)
		m.hash[i] = (uint8_t)i;
	return m;
}

START_TEST(test_round_trip)
{
	struct cache_entry_meta m = sample(), back;
	struct cache_field fields[8];
	uint8_t buf[1024];
	size_t n = cache_meta_write(&m, buf, sizeof(buf));

	ck_assert_uint_eq(n, cache_meta_size(&m));
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_eq(cache_meta_parse(buf, n, &back, fields, 8), n);
	ck_assert_mem_eq(back.hash, m.hash, 32);
	ck_assert_int_eq(back.request_time, m.request_time);
	ck_assert_int_eq(back.response_time, m.response_time);
	ck_assert_uint_eq(back.body_len, 12345);
	ck_assert_int_eq(back.status, 200);
	ck_assert_uint_eq(back.key_len, 14);
	ck_assert_mem_eq(back.key, "httpa.test/x?y", 14);
	ck_assert_mem_eq(back.vary, "accept-encoding:br\n", 19);
	ck_assert_uint_eq(back.field_count, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(back.fields[i].name_len, sample_fields[i].name_len);
		ck_assert_mem_eq(back.fields[i].name, sample_fields[i].name, sample_fields[i].name_len);
		ck_assert_mem_eq(back.fields[i].value, sample_fields[i].value, sample_fields[i].value_len);
	}
	/* the body may follow in the same buffer */
	memcpy(buf + n, "BODY", 4);
	ck_assert_uint_eq(cache_meta_parse(buf, n + 4, &back, fields, 8), n);
	/* too small a buffer to write into */
	ck_assert_uint_eq(cache_meta_write(&m, buf, n - 1), 0);
}
END_TEST

START_TEST(test_damaged_heads_are_refused)
{
	struct cache_entry_meta m = sample(), back;
	struct cache_field fields[8];
	uint8_t buf[1024], copy[1024];
	size_t n = cache_meta_write(&m, buf, sizeof(buf));

	/* every truncation */
	for (size_t len = 0; len < n; len++)
		ck_assert_uint_eq(cache_meta_parse(buf, len, &back, fields, 8), 0);
	/* a wrong magic */
	memcpy(copy, buf, n);
	copy[0] = 'X';
	ck_assert_uint_eq(cache_meta_parse(copy, n, &back, fields, 8), 0);
	/* every single byte changed to 0xff: refused, or read without reaching past the head */
	for (size_t i = 4; i < n; i++) {
		size_t got;

		memcpy(copy, buf, n);
		copy[i] = 0xff;
		got = cache_meta_parse(copy, n, &back, fields, 8);
		ck_assert(got == 0 || got == n);
		if (got == n) {
			ck_assert((const uint8_t *)back.key >= copy && (const uint8_t *)back.key + back.key_len <= copy + n);
			for (size_t f = 0; f < back.field_count; f++)
				ck_assert((const uint8_t *)back.fields[f].value + back.fields[f].value_len <= copy + n);
		}
	}
	/* more fields than the caller has room for */
	ck_assert_uint_eq(cache_meta_parse(buf, n, &back, fields, 2), 0);
	/* a field the proxy would never have sent: CR in a value, a space in a name */
	{
		struct cache_field bad[] = { { "X-A", "a\r\nb", 3, 4 } };
		struct cache_entry_meta b = sample();

		b.fields = bad;
		b.field_count = 1;
		n = cache_meta_write(&b, buf, sizeof(buf));
		ck_assert_uint_gt(n, 0);
		ck_assert_uint_eq(cache_meta_parse(buf, n, &back, fields, 8), 0);
		bad[0] = (struct cache_field){ "X A", "v", 3, 1 };
		n = cache_meta_write(&b, buf, sizeof(buf));
		ck_assert_uint_eq(cache_meta_parse(buf, n, &back, fields, 8), 0);
	}
	/* nothing too large is written */
	{
		struct cache_entry_meta b = sample();
		char *big = malloc(CACHE_ENTRY_HEAD_MAX);
		struct cache_field f[] = { { "X-Big", big, 5, CACHE_ENTRY_HEAD_MAX } };

		ck_assert_ptr_nonnull(big);
		memset(big, 'a', CACHE_ENTRY_HEAD_MAX);
		b.fields = f;
		b.field_count = 1;
		ck_assert_uint_eq(cache_meta_size(&b), 0);
		free(big);
	}
}
END_TEST

struct fake_request {
	const char *names[4], *values[4];
};

static const char *lookup(void *arg, const char *name, size_t len)
{
	struct fake_request *r = arg;

	for (int i = 0; i < 4 && r->names[i] != NULL; i++)
		if (strlen(r->names[i]) == len && strncasecmp(r->names[i], name, len) == 0)
			return r->values[i];
	return NULL;
}

START_TEST(test_vary_values)
{
	struct fake_request req = { { "Accept-Encoding", "accept-language", NULL }, { "  gzip,   br\t", "en", NULL } };
	char out[256];

	ck_assert_int_eq(cache_vary_values("Accept-Encoding", lookup, &req, out, sizeof(out)), 24);
	ck_assert_str_eq(out, "accept-encoding:gzip,br\n");
	ck_assert_int_gt(cache_vary_values("accept-language, X-Missing ,ACCEPT-ENCODING", lookup, &req, out,
	                                   sizeof(out)), 0);
	ck_assert_str_eq(out, "accept-language:en\nx-missing:\naccept-encoding:gzip,br\n");
	ck_assert_int_eq(cache_vary_values("", lookup, &req, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(cache_vary_values("Accept-Encoding, *", lookup, &req, out, sizeof(out)), -1);
	ck_assert_int_eq(cache_vary_values("Accept-Encoding", lookup, &req, out, 10), -1);   /* does not fit */
	/* the same request in other whitespace gives the same key */
	{
		struct fake_request again = { { "accept-encoding", NULL }, { "gzip, br", NULL } };
		char other[256];

		ck_assert_int_gt(cache_vary_values("Accept-Encoding", lookup, &again, other, sizeof(other)), 0);
		ck_assert_int_gt(cache_vary_values("Accept-Encoding", lookup, &req, out, sizeof(out)), 0);
		ck_assert_str_eq(out, other);
	}
	/* list whitespace means nothing; Accept-Language's order and case mean nothing either */
	{
		struct fake_request a = { { "foo", "accept-language", NULL }, { " 1 ,  2 ", " eN ,De;q=0.5 ", NULL } };
		struct fake_request b = { { "foo", "accept-language", NULL }, { "1,2", "de;q=0.5, en", NULL } };
		struct fake_request c = { { "foo", "accept-language", NULL }, { "1 2", "en", NULL } };
		char other[256];

		ck_assert_int_gt(cache_vary_values("Foo, Accept-Language", lookup, &a, out, sizeof(out)), 0);
		ck_assert_str_eq(out, "foo:1,2\naccept-language:de;q=0.5,en\n");
		ck_assert_int_gt(cache_vary_values("Foo, Accept-Language", lookup, &b, other, sizeof(other)), 0);
		ck_assert_str_eq(out, other);
		ck_assert_int_gt(cache_vary_values("Foo, Accept-Language", lookup, &c, other, sizeof(other)), 0);
		ck_assert_str_ne(out, other);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_entry");
	TCase *tc = tcase_create("cache_entry");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_damaged_heads_are_refused);
	tcase_add_test(tc, test_vary_values);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
