/* Configuration validation: every error as "file:line: message", exit paths clean. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "http_directives.h"
#include "listen.h"
#include "tls.h"
#include "tables.h"
#include "tap.h"

static char dir[256];
static char errors[8192];

static void dir_make(void)
{
	snprintf(dir, sizeof(dir), "/tmp/httpd-config-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static const char *file_write(const char *name, const char *text)
{
	static char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* Loads text as httpd.conf; returns the config (or NULL) and fills errors. */
static struct httpd_config *load(const char *text)
{
	char path[512], errpath[512];
	struct httpd_config *config;
	FILE *fp;
	size_t n;
	int saved = dup(STDERR_FILENO);

	dir_make();
	snprintf(path, sizeof(path), "%s", file_write("httpd.conf", text));
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	ck_assert_ptr_nonnull(freopen(errpath, "w", stderr));
	config = config_load(path, false);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	fp = fopen(errpath, "r");
	n = fread(errors, 1, sizeof(errors) - 1, fp);
	errors[n] = '\0';
	fclose(fp);
	return config;
}

static void expect_error(const char *text, const char *message)
{
	char want[1024];
	struct httpd_config *config = load(text);

	ck_assert_ptr_null(config);
	snprintf(want, sizeof(want), "%s/httpd.conf:%s", dir, message);
	if (strstr(errors, want) == NULL)
		ck_abort_msg("expected \"%s\" in:\n%s", want, errors);
}

START_TEST(test_size_parse)
{
	uint64_t v;

	ck_assert_int_eq(config_size_parse("512", &v), 0);
	ck_assert_uint_eq(v, 512);
	ck_assert_int_eq(config_size_parse("16k", &v), 0);
	ck_assert_uint_eq(v, 16384);
	ck_assert_int_eq(config_size_parse("2M", &v), 0);
	ck_assert_uint_eq(v, 2 * 1024 * 1024);
	ck_assert_int_eq(config_size_parse("1g", &v), 0);
	ck_assert_int_eq(config_size_parse("", &v), -1);
	ck_assert_int_eq(config_size_parse("k", &v), -1);
	ck_assert_int_eq(config_size_parse("-1", &v), -1);
	ck_assert_int_eq(config_size_parse("1t", &v), -1);
	ck_assert_int_eq(config_size_parse("10kb", &v), -1);
	ck_assert_int_eq(config_size_parse("99999999999999999999", &v), -1);
	ck_assert_int_eq(config_size_parse("99999999999g", &v), -1);
}
END_TEST

START_TEST(test_listen_parse_forms)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256], text[64];

	ck_assert_int_eq(listen_parse("127.0.0.1:8080", &ss, &len, err, sizeof(err)), 0);
	listen_format((struct sockaddr *)&ss, text, sizeof(text));
	ck_assert_str_eq(text, "127.0.0.1:8080");
	ck_assert_int_eq(listen_parse("[::1]:80", &ss, &len, err, sizeof(err)), 0);
	listen_format((struct sockaddr *)&ss, text, sizeof(text));
	ck_assert_str_eq(text, "[::1]:80");
	ck_assert_int_eq(listen_parse("8080", &ss, &len, err, sizeof(err)), 0);
	listen_format((struct sockaddr *)&ss, text, sizeof(text));
	ck_assert_str_eq(text, "0.0.0.0:8080");
	ck_assert_int_eq(listen_parse("*:81", &ss, &len, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_listen_parse_rejects)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256];

	ck_assert_int_eq(listen_parse("127.0.0.1", &ss, &len, err, sizeof(err)), -1);
	ck_assert_int_eq(listen_parse("127.0.0.1:0", &ss, &len, err, sizeof(err)), -1);
	ck_assert_int_eq(listen_parse("127.0.0.1:65536", &ss, &len, err, sizeof(err)), -1);
	ck_assert_int_eq(listen_parse("localhost:80", &ss, &len, err, sizeof(err)), -1);
	ck_assert_int_eq(listen_parse("::1:80", &ss, &len, err, sizeof(err)), -1);
	ck_assert_int_eq(listen_parse("[::1]80", &ss, &len, err, sizeof(err)), -1);
	ck_assert_int_eq(listen_parse("[zz::1]:80", &ss, &len, err, sizeof(err)), -1);
	ck_assert_int_eq(listen_parse("1.2.3.4:8o", &ss, &len, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_bad_listen_reports_its_line)
{
	expect_error("# a comment\n\n# another\nlisten = {\"127.0.0.1:99999\"}\n", "4: listen:");
}
END_TEST

START_TEST(test_too_many_listen_addresses)
{
	char text[8192] = "listen = {";
	size_t len = strlen(text);

	for (int i = 0; i < 65; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\"127.0.0.1:%d\"", i ? ", " : "", 10000 + i);
	snprintf(text + len, sizeof(text) - len, "}\n");
	expect_error(text, "1: listen: at most 64");
}
END_TEST

START_TEST(test_line_numbers_exact_after_comments)
{
	/* libconfuse 3.3 alone miscounts lines after '#' comments. */
	expect_error("# one\n# two\n// three\n/* four\n five */\nworkers = \"lots\"\n", "6: workers must be");
}
END_TEST

START_TEST(test_unknown_option_named)
{
	expect_error("listen = {\"127.0.0.1:8080\"}\nbogus_option = 1\n", "2: no such option 'bogus_option'");
}
END_TEST

START_TEST(test_unknown_handler_names_location_line)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         "module_dir = \"/nonexistent\"\n\nlocation \"/\" {\n handler = \"nosuch\"\n}\n");
	expect_error(text, "3: cannot load module \"nosuch\"");
}
END_TEST

START_TEST(test_missing_handler)
{
	expect_error("location \"/\" {\n}\n", "1: location \"/\": no handler");
}
END_TEST

START_TEST(test_bad_module_name_refused)
{
	expect_error("location \"/\" {\n handler = \"../../tmp/evil\"\n}\n", "1: module name");
}
END_TEST

START_TEST(test_no_locations_is_an_error)
{
	struct httpd_config *config = load("listen = {\"127.0.0.1:8080\"}\n");

	ck_assert_ptr_null(config);
	ck_assert_ptr_nonnull(strstr(errors, "no location blocks"));
}
END_TEST

START_TEST(test_syntax_error_line)
{
	expect_error("listen = {\"127.0.0.1:8080\"}\n\nlocation \"/\" {\n handler = \n}\n", "5: ");
}
END_TEST

START_TEST(test_bad_size_and_number)
{
	expect_error("\nmax_body_size = \"lots\"\n", "2: max_body_size");
	expect_error("\n\nkeepalive_timeout = 0\n", "3: keepalive_timeout must be");
}
END_TEST

START_TEST(test_include_glob_and_lines)
{
	char text[1024];

	dir_make();
	mkdir(strcat(strcpy(text, dir), "/conf.d"), 0755);
	{
		char p[512];
		FILE *fp;

		snprintf(p, sizeof(p), "%s/conf.d/a.conf", dir);
		fp = fopen(p, "w");
		fputs("# included\n\nworkers = \"x\"\n", fp);
		fclose(fp);
	}
	/* load() makes a fresh dir; point the include at this one. */
	snprintf(text, sizeof(text), "# main\ninclude \"%s/conf.d/*.conf\"\n", dir);
	{
		char want[512];
		char incdir[256];

		snprintf(incdir, sizeof(incdir), "%s", dir);
		ck_assert_ptr_null(load(text));
		snprintf(want, sizeof(want), "%s/conf.d/a.conf:3: workers must be", incdir);
		if (strstr(errors, want) == NULL)
			ck_abort_msg("expected \"%s\" in:\n%s", want, errors);
	}
}
END_TEST

START_TEST(test_include_missing_file_is_error)
{
	expect_error("\ninclude \"/nonexistent/httpd-test.conf\"\n", "2: cannot include");
}
END_TEST

START_TEST(test_include_empty_glob_is_fine)
{
	load("include \"/nonexistent-dir-xyz/*.conf\"\n");
	ck_assert_ptr_null(strstr(errors, "cannot include"));
	ck_assert_ptr_nonnull(strstr(errors, "no location blocks"));
}
END_TEST

START_TEST(test_hash_inside_string_is_not_a_comment)
{
	expect_error("listen = {\"#notacomment\"}\n", "1: listen: \"#notacomment\"");
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;

	tables_set();
	s = suite_create("config");
	tc = tcase_create("config");

	tcase_add_test(tc, test_size_parse);
	tcase_add_test(tc, test_listen_parse_forms);
	tcase_add_test(tc, test_listen_parse_rejects);
	tcase_add_test(tc, test_bad_listen_reports_its_line);
	tcase_add_test(tc, test_line_numbers_exact_after_comments);
	tcase_add_test(tc, test_too_many_listen_addresses);
	tcase_add_test(tc, test_unknown_option_named);
	tcase_add_test(tc, test_unknown_handler_names_location_line);
	tcase_add_test(tc, test_missing_handler);
	tcase_add_test(tc, test_bad_module_name_refused);
	tcase_add_test(tc, test_no_locations_is_an_error);
	tcase_add_test(tc, test_syntax_error_line);
	tcase_add_test(tc, test_bad_size_and_number);
	tcase_add_test(tc, test_include_glob_and_lines);
	tcase_add_test(tc, test_include_missing_file_is_error);
	tcase_add_test(tc, test_include_empty_glob_is_fine);
	tcase_add_test(tc, test_hash_inside_string_is_not_a_comment);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
