/* Accept-Encoding as RFC 9110 §12.5.3 reads it: q-values, "*", identity, the server's order on ties. */
#include <string.h>

#include "content_coding.h"
#include "tap.h"

START_TEST(test_q_values)
{
	ck_assert_int_eq(accept_encoding_q("gzip", "gzip"), 1000);
	ck_assert_int_eq(accept_encoding_q("gzip;q=0.5", "gzip"), 500);
	ck_assert_int_eq(accept_encoding_q("gzip ; Q=0.25 ", "gzip"), 250);
	ck_assert_int_eq(accept_encoding_q("br;q=0.001,gzip", "br"), 1);
	ck_assert_int_eq(accept_encoding_q("GZip", "gzip"), 1000);
	ck_assert_int_eq(accept_encoding_q("x-gzip;q=0.3", "gzip"), 300);
	ck_assert_int_eq(accept_encoding_q("gzip;q=0.4, x-gzip;q=0.3", "gzip"), 400);
	/* what is not a qvalue refuses (q=1.5, four decimals, letters) */
	ck_assert_int_eq(accept_encoding_q("gzip;q=1.5", "gzip"), 0);
	ck_assert_int_eq(accept_encoding_q("gzip;q=0.0001", "gzip"), 0);
	ck_assert_int_eq(accept_encoding_q("gzip;q=x", "gzip"), 0);
	ck_assert_int_eq(accept_encoding_q("gzip;q=1.000", "gzip"), 1000);
	/* other parameters before q */
	ck_assert_int_eq(accept_encoding_q("gzip;level=9;q=0.2", "gzip"), 200);
	/* "*" for what is not named; a named member wins over "*" */
	ck_assert_int_eq(accept_encoding_q("*;q=0.7", "br"), 700);
	ck_assert_int_eq(accept_encoding_q("br;q=0, *", "br"), 0);
	ck_assert_int_eq(accept_encoding_q("*, br;q=0", "br"), 0);
	/* not named, no "*": not acceptable, except identity */
	ck_assert_int_eq(accept_encoding_q("gzip", "br"), 0);
	ck_assert_int_eq(accept_encoding_q("gzip", "identity"), 1000);
	ck_assert_int_eq(accept_encoding_q("identity;q=0", "identity"), 0);
	ck_assert_int_eq(accept_encoding_q("*;q=0", "identity"), 0);
	ck_assert_int_eq(accept_encoding_q("", "gzip"), 0);
	ck_assert_int_eq(accept_encoding_q(" , ,", "gzip"), 0);
	/* a prefix is not the coding */
	ck_assert_int_eq(accept_encoding_q("gzipx, brotli", "gzip"), 0);
	ck_assert_int_eq(accept_encoding_q("gzipx, brotli", "br"), 0);
}
END_TEST

START_TEST(test_negotiation_order)
{
	const enum coding all[] = { CODING_ZSTD, CODING_BR, CODING_GZIP };
	const enum coding gzip_first[] = { CODING_GZIP, CODING_BR };
	enum coding out[CODING_COUNT];

	ck_assert_uint_eq(coding_negotiate("gzip, br, zstd", all, 3, out, 3), 3);
	ck_assert_int_eq(out[0], CODING_ZSTD);   /* a tie: the server's order */
	ck_assert_int_eq(out[1], CODING_BR);
	ck_assert_int_eq(out[2], CODING_GZIP);
	ck_assert_uint_eq(coding_negotiate("gzip, br", gzip_first, 2, out, 3), 2);
	ck_assert_int_eq(out[0], CODING_GZIP);
	ck_assert_uint_eq(coding_negotiate("gzip;q=0.5, br;q=0.8, zstd;q=0.1", all, 3, out, 3), 3);
	ck_assert_int_eq(out[0], CODING_BR);
	ck_assert_int_eq(out[1], CODING_GZIP);
	ck_assert_int_eq(out[2], CODING_ZSTD);
	ck_assert_uint_eq(coding_negotiate("gzip;q=0.5, br;q=0.8", all, 3, out, 1), 1);
	ck_assert_int_eq(out[0], CODING_BR);
	ck_assert_uint_eq(coding_negotiate("identity, deflate", all, 3, out, 3), 0);
	ck_assert_uint_eq(coding_negotiate("*;q=0.5, gzip;q=0", all, 3, out, 3), 2);
	ck_assert_int_eq(out[0], CODING_ZSTD);
	ck_assert_int_eq(out[1], CODING_BR);
	ck_assert_uint_eq(coding_negotiate("br", gzip_first, 2, out, 3), 1);
	ck_assert_int_eq(out[0], CODING_BR);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_int_eq(coding_by_name("br", 2), CODING_BR);
	ck_assert_int_eq(coding_by_name("ZSTD", 4), CODING_ZSTD);
	ck_assert_int_eq(coding_by_name("x-gzip", 6), CODING_GZIP);
	ck_assert_int_eq(coding_by_name("deflate", 7), -1);
	ck_assert_int_eq(coding_by_name("gzipx", 4), CODING_GZIP);   /* the length given is what counts */
	ck_assert_str_eq(coding_name(CODING_BR), "br");
	ck_assert_str_eq(coding_module(CODING_BR), "brotli");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("content_coding");
	TCase *tc = tcase_create("content_coding");

	tcase_add_test(tc, test_q_values);
	tcase_add_test(tc, test_negotiation_order);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
