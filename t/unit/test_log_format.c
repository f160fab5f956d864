/* Access log formats: compiling, variables, and escaping that never lets a client forge a line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/module.h"
#include "log_format.h"
#include "tap.h"

/* A fake request: every variable's value by kind, headers by name. */
static const char *agent = "curl/8.0";
static const char *uri = "/a b";

static const char *lookup(void *ctx, const struct var_segment *seg, char *scratch, size_t size)
{
	(void)ctx;
	switch (seg->var) {
	case VAR_REMOTE_ADDR: return "192.0.2.1";
	case VAR_REALIP_REMOTE_ADDR: return "10.0.0.1";
	case VAR_STATUS: return "200";
	case VAR_TIME_LOCAL: return "05/Dec/2026:08:00:00 +0000";
	case VAR_REQUEST_ID: return scratch[0] = '\0', scratch;   /* empty: logged as having none */
	case VAR_REQUEST_URI: return uri;
	case VAR_HTTP:
		snprintf(scratch, size, "%.*s", (int)seg->len, seg->text);
		return strcmp(scratch, "user_agent") == 0 ? agent : NULL;
	case VAR_PROXY:
		snprintf(scratch, size, "proxy-field-%d", seg->index);
		return scratch;
	default: return NULL;
	}
}

static char *render(const char *text, enum log_escape escape)
{
	static char *out;
	struct log_format f;
	char err[256];
	size_t n;

	ck_assert_msg(log_format_compile(text, escape, &f, err, sizeof(err)) == 0, "%s", err);
	free(out);
	out = malloc(f.max_line);
	ck_assert_ptr_nonnull(out);
	n = log_format_render(&f, lookup, NULL, out);
	ck_assert_uint_le(n, f.max_line);
	out[n] = '\0';
	log_format_free(&f);
	return out;
}

START_TEST(test_variables_and_literals)
{
	ck_assert_str_eq(render("$remote_addr [$realip_remote_addr] ${status}x $$ \"$http_user_agent\" $http_referer",
	                        LOG_ESCAPE_DEFAULT),
	                 "192.0.2.1 [10.0.0.1] 200x $ \"curl/8.0\" -\n");
	ck_assert_str_eq(render("$proxy_protocol_addr $proxy_protocol_tlv_unique_id", LOG_ESCAPE_DEFAULT),
	                 "proxy-field-1 proxy-field-9\n");
}
END_TEST

START_TEST(test_compile_errors)
{
	static const char *const bad[] = { "$nosuch", "a $ b", "${status", "${}", "$proxy_protocol_tlv_nosuch",
	                                   "$http_" };
	struct log_format f;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(log_format_compile(bad[i], LOG_ESCAPE_DEFAULT, &f, err, sizeof(err)) < 0, "%s", bad[i]);
		ck_assert(err[0] != '\0');
	}
}
END_TEST

START_TEST(test_builtins_compile)
{
	enum log_escape e;
	struct log_format f;
	char err[256];

	ck_assert_ptr_nonnull(log_format_builtin("combined", &e));
	ck_assert_int_eq(e, LOG_ESCAPE_DEFAULT);
	ck_assert_ptr_nonnull(log_format_builtin("json", &e));
	ck_assert_int_eq(e, LOG_ESCAPE_JSON);
	ck_assert_ptr_null(log_format_builtin("nosuch", &e));
	ck_assert_int_eq(log_format_compile(log_format_builtin("json", &e), e, &f, err, sizeof(err)), 0);
	ck_assert(f.needs_time);
	log_format_free(&f);
	ck_assert_int_eq(log_format_compile(log_format_builtin("common", &e), e, &f, err, sizeof(err)), 0);
	ck_assert(!f.needs_time);
	log_format_free(&f);
}
END_TEST

START_TEST(test_default_escaping_keeps_one_line)
{
	agent = "evil\"\n1.2.3.4 - - \\ \x7f\xff";
	ck_assert_str_eq(render("\"$http_user_agent\"", LOG_ESCAPE_DEFAULT),
	                 "\"evil\\x22\\x0a1.2.3.4 - - \\x5c \\x7f\\xff\"\n");
	agent = "curl/8.0";
}
END_TEST

START_TEST(test_json_escaping_is_valid_utf8)
{
	agent = "\"q\"\\\n\t\x01 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 bad:\xff\xc3 \xed\xa0\x80 \xc0\xaf";
	ck_assert_str_eq(render("{\"ua\":\"$http_user_agent\",\"ref\":\"$http_referer\"}", LOG_ESCAPE_JSON),
	                 "{\"ua\":\"\\\"q\\\"\\\\\\n\\t\\u0001 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
	                 "bad:\\u00ff\\u00c3 \\u00ed\\u00a0\\u0080 \\u00c0\\u00af\",\"ref\":\"\"}\n");
	agent = "curl/8.0";
}
END_TEST

/* A User-Agent of twice the value limit, all fill bytes; the caller frees it. */
static char *long_agent(char fill)
{
	char *big = malloc(LOG_VALUE_MAX * 2);

	ck_assert_ptr_nonnull(big);
	memset(big, fill, LOG_VALUE_MAX * 2 - 1);
	big[LOG_VALUE_MAX * 2 - 1] = '\0';
	agent = big;
	return big;
}

START_TEST(test_long_values_are_cut_at_an_escape_boundary)
{
	char *big = long_agent('"');
	const char *line;

	line = render("[$http_user_agent]", LOG_ESCAPE_JSON);
	/* 1024 escaped quotes (2 bytes each) fill the limit exactly; never half an escape. */
	ck_assert_uint_eq(strlen(line), 1 + LOG_VALUE_MAX + 2);
	ck_assert(line[LOG_VALUE_MAX] == '"' && line[LOG_VALUE_MAX - 1] == '\\');
	line = render("[$http_user_agent]", LOG_ESCAPE_DEFAULT);
	ck_assert_uint_eq(strlen(line), 1 + LOG_VALUE_MAX + 2);
	agent = "curl/8.0";
	free(big);
}
END_TEST

START_TEST(test_plain_variables_are_copied)
{
	/* The server's own values skip escaping; an empty or missing one is still "-" (or "" in JSON). */
	ck_assert_str_eq(render("[$time_local] $status $request_id $pid", LOG_ESCAPE_DEFAULT),
	                 "[05/Dec/2026:08:00:00 +0000] 200 - -\n");
	ck_assert_str_eq(render("{\"t\":\"$time_local\",\"id\":\"$request_id\",\"s\":$status}", LOG_ESCAPE_JSON),
	                 "{\"t\":\"05/Dec/2026:08:00:00 +0000\",\"id\":\"\",\"s\":200}\n");
}
END_TEST

START_TEST(test_long_plain_runs_are_cut_at_the_limit)
{
	char *big = long_agent('a');
	const char *line;

	big[LOG_VALUE_MAX - 1] = '"';   /* the escape that would straddle the limit is left out whole */
	line = render("[$http_user_agent]", LOG_ESCAPE_DEFAULT);
	ck_assert_uint_eq(strlen(line), 1 + (LOG_VALUE_MAX - 1) + 2);
	line = render("[$http_user_agent]", LOG_ESCAPE_JSON);
	ck_assert_uint_eq(strlen(line), 1 + LOG_VALUE_MAX - 1 + 2);
	big[LOG_VALUE_MAX - 1] = 'a';
	line = render("[$http_user_agent]", LOG_ESCAPE_DEFAULT);
	ck_assert_uint_eq(strlen(line), 1 + LOG_VALUE_MAX + 2);
	ck_assert(line[LOG_VALUE_MAX] == 'a' && line[LOG_VALUE_MAX + 1] == ']');
	agent = "curl/8.0";
	free(big);
}
END_TEST

START_TEST(test_utf8_sequences)
{
	static const struct {
		const char *bytes;
		size_t      len, want;
	} cases[] = {
		{ "a", 1, 1 },                     { "\xc3\xa9", 2, 2 },           /* é */
		{ "\xe2\x82\xac", 3, 3 },          { "\xf0\x9f\x98\x80", 4, 4 },   /* €, U+1F600 */
		{ "\xc3", 1, 0 },                  /* cut short */
		{ "\xe2\x82", 2, 0 },              { "\xc3\x28", 2, 0 },           /* not a continuation */
		{ "\xc0\xaf", 2, 0 },              { "\xe0\x80\xaf", 3, 0 },       /* overlong '/' */
		{ "\xf0\x80\x80\xaf", 4, 0 },      { "\xed\xa0\x80", 3, 0 },       /* surrogate D800 */
		{ "\xf4\x90\x80\x80", 4, 0 },      /* past U+10FFFF */
		{ "\xf4\x8f\xbf\xbf", 4, 4 },      /* U+10FFFF itself */
		{ "\x80", 1, 0 },                  { "\xff", 1, 0 },               /* lone continuation, never a lead */
		{ "\xf8\x88\x80\x80\x80", 5, 0 },  /* five-byte forms are gone */
		{ "a", 0, 0 },                     /* nothing left */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(httpd_utf8_seq((const unsigned char *)cases[i].bytes, cases[i].len) == cases[i].want,
		              "case %zu: want %zu", i, cases[i].want);
}
END_TEST

/* The engine itself: one compile for every user of variables. */
START_TEST(test_expressions_compile_to_segments)
{
	struct expr e;
	char err[256];

	ck_assert_int_eq(expr_compile("$arg_page-$cookie_sid${uri}z$$", &e, err, sizeof(err)), 0);
	ck_assert_uint_eq(e.count, 6);
	ck_assert_int_eq(e.segs[0].var, VAR_ARG);
	ck_assert_int_eq((int)e.segs[0].len, 4);
	ck_assert(memcmp(e.segs[0].text, "page", 4) == 0);
	ck_assert_int_eq(e.segs[1].var, VAR_LITERAL);
	ck_assert_int_eq(e.segs[2].var, VAR_COOKIE);
	ck_assert_int_eq(e.segs[3].var, VAR_URI);
	ck_assert_int_eq(e.segs[4].var, VAR_LITERAL);   /* "z" */
	ck_assert_int_eq(e.segs[5].var, VAR_LITERAL);   /* "$" */
	ck_assert_uint_eq(e.variables, 3);
	ck_assert_uint_eq(e.literal_len, 3);
	expr_free(&e);
	ck_assert_int_eq(expr_compile("no variables at all", &e, err, sizeof(err)), 0);
	ck_assert_uint_eq(e.variables, 0);
	expr_free(&e);
	ck_assert_int_eq(expr_compile("$document_root/x", &e, err, sizeof(err)), 0);
	ck_assert_int_eq(e.segs[0].var, VAR_DOCUMENT_ROOT);
	expr_free(&e);
	ck_assert_int_eq(expr_compile("$host$nosuch", &e, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "unknown variable $nosuch");
	ck_assert_int_eq(expr_check("${host", err, sizeof(err)), -1);
	ck_assert_int_eq(expr_check("100$", err, sizeof(err)), -1);
	ck_assert(variable_builtin("host", 4) && variable_builtin("http_x_anything", 15) && variable_builtin("arg_a", 5));
	ck_assert(!variable_builtin("testmod_tag", 11) && !variable_builtin("arg_", 4));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log_format");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_variables_and_literals);
	tcase_add_test(tc, test_compile_errors);
	tcase_add_test(tc, test_builtins_compile);
	tcase_add_test(tc, test_default_escaping_keeps_one_line);
	tcase_add_test(tc, test_json_escaping_is_valid_utf8);
	tcase_add_test(tc, test_utf8_sequences);
	tcase_add_test(tc, test_long_values_are_cut_at_an_escape_boundary);
	tcase_add_test(tc, test_plain_variables_are_copied);
	tcase_add_test(tc, test_long_plain_runs_are_cut_at_the_limit);
	tcase_add_test(tc, test_expressions_compile_to_segments);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
