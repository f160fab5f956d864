/* Path decoding and normalisation: the core's only defence against "../". */
#include <string.h>

#include "path.h"
#include "tap.h"

static const char *norm(const char *in)
{
	static char out[1024];
	long n = path_normalise(in, strlen(in), out);

	return n < 0 ? NULL : out;
}

START_TEST(test_path_plain_is_unchanged)
{
	ck_assert_str_eq(norm("/a/b.html"), "/a/b.html");
	ck_assert_str_eq(norm("/"), "/");
}
END_TEST

START_TEST(test_path_dot_segments_resolved)
{
	/* RFC 3986 §5.2.4 */
	ck_assert_str_eq(norm("/a/./b"), "/a/b");
	ck_assert_str_eq(norm("/a/b/../c"), "/a/c");
	ck_assert_str_eq(norm("/a/.."), "/");
	ck_assert_str_eq(norm("/a/."), "/a/");
	ck_assert_str_eq(norm("/a/b/.."), "/a/");
}
END_TEST

START_TEST(test_path_dotdot_above_root_refused)
{
	ck_assert_ptr_null(norm("/.."));
	ck_assert_ptr_null(norm("/../etc/passwd"));
	ck_assert_ptr_null(norm("/a/../../etc/passwd"));
}
END_TEST

START_TEST(test_path_encoded_dotdot_refused)
{
	ck_assert_ptr_null(norm("/%2e%2e/etc/passwd"));
	ck_assert_ptr_null(norm("/%2E%2E/etc/passwd"));
	ck_assert_ptr_null(norm("/a/.%2e/.%2E/x"));
	ck_assert_str_eq(norm("/a/%2e/b"), "/a/b");
}
END_TEST

START_TEST(test_path_encoded_slash_and_nul_refused)
{
	ck_assert_ptr_null(norm("/a%2fb"));
	ck_assert_ptr_null(norm("/a%2F..%2F..%2Fetc"));
	ck_assert_ptr_null(norm("/a%00.html"));
}
END_TEST

START_TEST(test_path_bad_escape_refused)
{
	ck_assert_ptr_null(norm("/a%2"));
	ck_assert_ptr_null(norm("/a%"));
	ck_assert_ptr_null(norm("/a%zz"));
}
END_TEST

START_TEST(test_path_percent_decoded)
{
	ck_assert_str_eq(norm("/a%20b"), "/a b");
	ck_assert_str_eq(norm("/caf%C3%A9"), "/caf\xc3\xa9");
}
END_TEST

START_TEST(test_path_control_bytes_refused)
{
	ck_assert_ptr_null(norm("/a%0d%0aSet-Cookie:x"));
	ck_assert_ptr_null(norm("/a%7f"));
}
END_TEST

START_TEST(test_path_repeated_slashes_merged)
{
	ck_assert_str_eq(norm("//a///b//"), "/a/b/");
}
END_TEST

START_TEST(test_path_must_be_absolute)
{
	ck_assert_ptr_null(norm("a/b"));
	ck_assert_ptr_null(norm(""));
}
END_TEST

START_TEST(test_path_dotdot_prefix_names_are_files)
{
	/* "..." and "..a" are ordinary names, not dot segments. */
	ck_assert_str_eq(norm("/.../x"), "/.../x");
	ck_assert_str_eq(norm("/..a"), "/..a");
}
END_TEST

START_TEST(test_path_encode_escapes_unsafe_bytes)
{
	char out[64];

	ck_assert_int_eq(path_encode("/a b/\r\n\"x\"", out, sizeof(out)), 20);
	ck_assert_str_eq(out, "/a%20b/%0D%0A%22x%22");
	ck_assert_int_eq(path_encode("/abcdef", out, 4), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("path");
	TCase *tc = tcase_create("normalise");

	tcase_add_test(tc, test_path_plain_is_unchanged);
	tcase_add_test(tc, test_path_dot_segments_resolved);
	tcase_add_test(tc, test_path_dotdot_above_root_refused);
	tcase_add_test(tc, test_path_encoded_dotdot_refused);
	tcase_add_test(tc, test_path_encoded_slash_and_nul_refused);
	tcase_add_test(tc, test_path_bad_escape_refused);
	tcase_add_test(tc, test_path_percent_decoded);
	tcase_add_test(tc, test_path_control_bytes_refused);
	tcase_add_test(tc, test_path_repeated_slashes_merged);
	tcase_add_test(tc, test_path_must_be_absolute);
	tcase_add_test(tc, test_path_dotdot_prefix_names_are_files);
	tcase_add_test(tc, test_path_encode_escapes_unsafe_bytes);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
