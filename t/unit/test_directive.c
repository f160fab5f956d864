/* The directive table: each type's parsing, bounds and messages; every row's default; the modules' rows. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_options.h"
#include "directive_schema.h"
#include "http_directives.h"
#include "listen.h"
#include "tables.h"
#include "tap.h"
#include "tls.h"

static char err[512];

static int64_t parse_ok(const struct directive *d, const char *text)
{
	int64_t v = -12345;

	if (directive_value_parse(d, text, &v, err, sizeof(err)) != 0)
		ck_abort_msg("%s = \"%s\" refused: %s", d->name, text, err);
	return v;
}

static void parse_refused(const struct directive *d, const char *text, const char *message)
{
	int64_t v;

	err[0] = '\0';
	ck_assert_int_eq(directive_value_parse(d, text, &v, err, sizeof(err)), -1);
	if (strstr(err, message) == NULL)
		ck_abort_msg("%s = \"%s\": expected \"%s\" in \"%s\"", d->name, text, message, err);
}

START_TEST(test_sizes)
{
	const struct directive d = { "buf", DIRECTIVE_TOP, DIRECTIVE_SIZE, "16k", 1024, 64 * 1024 * 1024, .flags = 0 };

	ck_assert_int_eq(parse_ok(&d, "16k"), 16384);
	ck_assert_int_eq(parse_ok(&d, "2M"), 2 * 1024 * 1024);
	ck_assert_int_eq(parse_ok(&d, "1024"), 1024);
	parse_refused(&d, "16q", "buf: \"16q\" is not a size");
	parse_refused(&d, "", "is not a size");
	parse_refused(&d, "-1", "is not a size");
	parse_refused(&d, "99999999999999999999", "is not a size");
	parse_refused(&d, "1g", "buf must be from 1k to 64m");
	parse_refused(&d, "1000", "buf must be from 1k to 64m");
}
END_TEST

START_TEST(test_durations)
{
	const struct directive d = { "wait", DIRECTIVE_TOP, DIRECTIVE_DURATION, "30", 1, 3600 * 1000, .flags = 0 };
	uint64_t ms;

	ck_assert_int_eq(parse_ok(&d, "30"), 30000);      /* a bare number is seconds, as before */
	ck_assert_int_eq(parse_ok(&d, "500ms"), 500);
	ck_assert_int_eq(parse_ok(&d, "30s"), 30000);
	ck_assert_int_eq(parse_ok(&d, "5m"), 300000);
	ck_assert_int_eq(parse_ok(&d, "1h"), 3600000);
	parse_refused(&d, "2h", "wait must be from 1ms to 3600s");
	parse_refused(&d, "0", "wait must be from 1ms to 3600s");
	parse_refused(&d, "5 minutes", "wait: \"5 minutes\" is not a duration");
	parse_refused(&d, "1.5s", "is not a duration");
	parse_refused(&d, "s", "is not a duration");
	ck_assert_int_eq(config_duration_parse("1d", &ms), 0);
	ck_assert_uint_eq(ms, 86400000);
	ck_assert_int_eq(config_duration_parse("99999999999999999999", &ms), -1);
	ck_assert_int_eq(config_duration_parse("9999999999999999d", &ms), -1);   /* overflows in ms */
}
END_TEST

START_TEST(test_ints_enums_bools_rates)
{
	static const char *const words[] = { "off", "optional", "required", NULL };
	const struct directive i = { "level", DIRECTIVE_LOCATION, DIRECTIVE_INT, "6", 1, 9, .flags = 0 };
	const struct directive e = { "verify", DIRECTIVE_SERVER, DIRECTIVE_ENUM, NULL, .words = words };
	const struct directive b = { "flag", DIRECTIVE_TOP, DIRECTIVE_BOOL, "false", .flags = 0 };
	const struct directive r = { "rate", 0, DIRECTIVE_RATE, NULL, .flags = 0 };
	const struct directive p = { "pid", DIRECTIVE_TOP, DIRECTIVE_PATH, NULL, .flags = 0 };
	const struct directive c = { "from", DIRECTIVE_TOP, DIRECTIVE_CIDR_LIST, "{}", .flags = 0 };

	ck_assert_int_eq(parse_ok(&i, "9"), 9);
	parse_refused(&i, "12", "level must be from 1 to 9");
	parse_refused(&i, "six", "level: \"six\" is not a number");
	ck_assert_int_eq(parse_ok(&e, "optional"), 1);
	parse_refused(&e, "maybe", "verify must be \"off\", \"optional\" or \"required\", not \"maybe\"");
	ck_assert_int_eq(parse_ok(&b, "on"), 1);
	ck_assert_int_eq(parse_ok(&b, "false"), 0);
	ck_assert_int_eq(parse_ok(&r, "10r/s"), 10000);
	ck_assert_int_eq(parse_ok(&r, "30r/m"), 500);
	ck_assert_int_eq(parse_ok(&r, "1r/m"), 16);
	parse_refused(&r, "0r/s", "is not a rate");
	parse_refused(&r, "10r/h", "is not a rate");
	parse_refused(&r, "99999999999r/s", "is not a rate");
	ck_assert_int_eq(parse_ok(&p, "/run/httpd.pid"), 0);
	parse_refused(&p, "run/httpd.pid", "pid must be an absolute path");
	ck_assert_int_eq(parse_ok(&c, "10.0.0.0/8"), 0);
	ck_assert_int_eq(parse_ok(&c, "::1"), 0);
	parse_refused(&c, "10.0.0.0/33", "from: \"10.0.0.0/33\" is not an address or CIDR block");
}
END_TEST

static int no_dots(const char *text, char *why, size_t len)
{
	if (strchr(text, '.') == NULL)
		return 0;
	snprintf(why, len, "\"%s\" has a dot", text);
	return -1;
}

START_TEST(test_checks_name_their_directive)
{
	const struct directive s = { "name", DIRECTIVE_TOP, DIRECTIVE_STR, NULL, .check = no_dots };

	ck_assert_int_eq(parse_ok(&s, "plain"), 0);
	parse_refused(&s, "a.b", "name: \"a.b\" has a dot");
}
END_TEST

/* Every default a table states is a value its own row accepts, in every table, blocks included. */
static void defaults_check(const struct directive *rows, const char *table)
{
	for (const struct directive *d = rows; d->name != NULL; d++) {
		int64_t v;

		if (d->type == DIRECTIVE_BLOCK) {
			defaults_check(d->block, table);
			continue;
		}
		if (d->def == NULL || d->type == DIRECTIVE_LIST || d->type == DIRECTIVE_CIDR_LIST ||
		    d->type == DIRECTIVE_FUNC)
			continue;
		if (directive_value_parse(d, d->def, &v, err, sizeof(err)) != 0)
			ck_abort_msg("table %s: the default of %s (\"%s\") is refused: %s", table, d->name, d->def, err);
		ck_assert_msg(d->where != 0 || rows != directive_table_at(0)->rows, "%s: written nowhere", d->name);
		if (d->width > 0)
			ck_assert_msg(d->width == 1 || d->width == 4 || d->width == 8, "%s: width %zu", d->name, d->width);
	}
}

START_TEST(test_every_default_is_valid)
{
	ck_assert_uint_ge(directive_table_count(), 4);
	for (size_t i = 0; i < directive_table_count(); i++)
		defaults_check(directive_table_at(i)->rows, directive_table_at(i)->layer);
}
END_TEST

/* A name stands once per level: a second row would never be found. */
START_TEST(test_names_unique_per_level)
{
	static const unsigned levels[] = { DIRECTIVE_TOP, DIRECTIVE_SERVER, DIRECTIVE_LOCATION };

	for (size_t l = 0; l < 3; l++)
		for (size_t i = 0; i < directive_table_count(); i++)
			for (const struct directive *a = directive_table_at(i)->rows; a->name != NULL; a++) {
				if (!(a->where & levels[l]))
					continue;
				for (size_t j = i; j < directive_table_count(); j++)
					for (const struct directive *b = j == i ? a + 1 : directive_table_at(j)->rows;
					     b->name != NULL; b++)
						ck_assert_msg(!((b->where & levels[l]) && strcmp(a->name, b->name) == 0),
						              "%s twice at level %u", a->name, levels[l]);
			}
}
END_TEST

/* A module's option table becomes rows: types, bounds and words carried over. */
START_TEST(test_module_options_become_rows)
{
	static const char *const modes[] = { "fast", "safe", NULL };
	static const struct httpd_option inner[] = { HTTPD_OPTION_STR("secret", NULL), HTTPD_OPTION_END };
	static const struct httpd_option opts[] = {
		HTTPD_OPTION_STR("name", "x"),
		HTTPD_OPTION_INT("count", "3"),
		HTTPD_OPTION_SIZE("buffer", "16k", 1024, 1024 * 1024),
		HTTPD_OPTION_DURATION("wait", "2", 0, 10000),
		HTTPD_OPTION_ENUM("mode", "fast", modes),
		HTTPD_OPTION_SECTION("key", HTTPD_OPT_MULTI | HTTPD_OPT_TITLED, inner),
		HTTPD_OPTION_END
	};
	static const struct httpd_option bad_enum[] = {
		{ "mode", HTTPD_OPT_ENUM, "fast", 0, NULL, 0, 0, NULL }, HTTPD_OPTION_END
	};
	struct option_arena arena = { 0 };
	struct directive *rows = options_rows(opts, HTTPD_MODULE_ABI_MINOR, &arena);

	ck_assert_ptr_nonnull(rows);
	ck_assert_int_eq(rows[0].type, DIRECTIVE_STR);
	ck_assert_int_eq(rows[1].type, DIRECTIVE_INT);
	ck_assert_int_eq(parse_ok(&rows[1], "-5"), -5);   /* no bounds: any long */
	ck_assert_int_eq(rows[2].type, DIRECTIVE_SIZE);
	parse_refused(&rows[2], "2m", "buffer must be from 1k to 1m");
	ck_assert_int_eq(rows[3].type, DIRECTIVE_DURATION);
	parse_refused(&rows[3], "11s", "wait must be from 0s to 10s");
	ck_assert_int_eq(parse_ok(&rows[4], "safe"), 1);
	ck_assert_int_eq(rows[5].type, DIRECTIVE_BLOCK);
	ck_assert_str_eq(rows[5].block[0].name, "secret");
	ck_assert_ptr_null(rows[6].name);
	/* An ENUM without words, or a minor 1 type in a minor 0 table, is a malformed table. */
	ck_assert_ptr_null(options_rows(bad_enum, 1, &arena));
	{
		static const struct { const char *name; enum httpd_option_type type; const char *def; unsigned flags;
		                      const void *section; } v0[] = {
			{ "old", HTTPD_OPT_INT, "1", 0, NULL }, { "size", HTTPD_OPT_SIZE, "1k", 0, NULL },
			{ NULL, HTTPD_OPT_END, NULL, 0, NULL },
		};

		ck_assert_ptr_null(options_rows((const struct httpd_option *)(const void *)v0, 0, &arena));
	}
	option_arena_free(&arena);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;

	tables_set();
	s = suite_create("directive");
	tc = tcase_create("directive");
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_durations);
	tcase_add_test(tc, test_ints_enums_bools_rates);
	tcase_add_test(tc, test_checks_name_their_directive);
	tcase_add_test(tc, test_every_default_is_valid);
	tcase_add_test(tc, test_names_unique_per_level);
	tcase_add_test(tc, test_module_options_become_rows);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
