/* Media types: the table from a mime.types file, and which types are worth compressing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd/module.h"
#include "mime.h"
#include "tap.h"

/* A table loaded from a mime.types file holding text, and used. */
static struct mime_table *table_from(const char *text)
{
	char path[] = "/tmp/test_mime_XXXXXX";
	int fd = mkstemp(path);
	char err[256];
	struct mime_table *t;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	t = mime_table_load(path, err, sizeof(err));
	unlink(path);
	ck_assert_ptr_nonnull(t);
	mime_table_use(t);
	return t;
}

START_TEST(test_table_lookup)
{
	struct mime_table *t = table_from("# comment\ntext/html html htm\nimage/svg+xml svg\n"
	                                  "text/plain html txt\napplication/wasm wasm\n");

	ck_assert_str_eq(httpd_mime_type("index.html"), "text/html");   /* the first mention wins */
	ck_assert_str_eq(httpd_mime_type("/a/b/INDEX.HTM"), "text/html");
	ck_assert_str_eq(httpd_mime_type("notes.txt"), "text/plain");
	ck_assert_str_eq(httpd_mime_type("logo.svg"), "image/svg+xml");
	ck_assert_str_eq(httpd_mime_type("README"), "application/octet-stream");
	ck_assert_str_eq(httpd_mime_type("dir.svg/file"), "application/octet-stream");
	ck_assert_str_eq(httpd_mime_type("trailing."), "application/octet-stream");
	mime_table_free(t);
	ck_assert_str_eq(httpd_mime_type("index.html"), "application/octet-stream");
}
END_TEST

START_TEST(test_missing_table_is_named)
{
	char err[256];

	ck_assert_ptr_null(mime_table_load("/nonexistent/mime.types", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/mime.types"));
}
END_TEST

START_TEST(test_compressible)
{
	static const char *const yes[] = {
		"text/html", "text/plain; charset=utf-8", "TEXT/CSS", "application/json",
		"application/ld+json", "application/problem+json;charset=utf-8", "image/svg+xml",
		"application/xml", "application/atom+xml", "text/javascript", "application/javascript",
		"application/x-javascript", "application/wasm", "Application/WASM",
	};
	static const char *const no[] = {
		"application/octet-stream", "image/png", "image/jpeg", "application/zip",
		"application/gzip", "font/woff2", "video/mp4", "application/wasm2", "textual/plain",
		"text", "", "json", "xml/binary;q=json", "application/x-tar; note=xml",
		"application/jso", "application/xm",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(httpd_mime_compressible(yes[i]), "%s should be compressible", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!httpd_mime_compressible(no[i]), "%s should not be compressible", no[i]);
	ck_assert(httpd_mime_compressible("application/wasm; x=1 "));   /* parameters do not count */
}
END_TEST

/* A type the table gave is judged once, at load; the answer must be what the rule says. */
START_TEST(test_compressible_from_the_table)
{
	struct mime_table *t = table_from("image/svg+xml svg SVGZ\nimage/png png\n");
	char copy[64];
	const char *svg, *png;

	svg = httpd_mime_type("a.SvG");
	ck_assert_str_eq(svg, "image/svg+xml");
	ck_assert(httpd_mime_compressible(svg));
	ck_assert_str_eq(httpd_mime_type("b.svgz"), "image/svg+xml");   /* extensions fold case */
	png = httpd_mime_type("c.png");
	ck_assert(!httpd_mime_compressible(png));
	/* Not the last answer: the rule, not the memory, decides. */
	ck_assert(httpd_mime_compressible(svg));
	snprintf(copy, sizeof(copy), "%s", png);
	ck_assert(!httpd_mime_compressible(copy));
	snprintf(copy, sizeof(copy), "text/plain");
	ck_assert(httpd_mime_compressible(copy));
	ck_assert(!httpd_mime_compressible(httpd_mime_type("d.unknown")));
	mime_table_free(t);
	ck_assert(httpd_mime_compressible("text/css"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mime");
	TCase *tc = tcase_create("mime");

	tcase_add_test(tc, test_table_lookup);
	tcase_add_test(tc, test_missing_table_is_named);
	tcase_add_test(tc, test_compressible);
	tcase_add_test(tc, test_compressible_from_the_table);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
