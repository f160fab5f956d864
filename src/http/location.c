#include "location.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "variable.h"

void regex_free(void *regex)
{
	pcre2_code_free(regex);
}

void *regex_compile(struct httpd_config *config, const char *pattern, bool caseless, char *err, size_t errlen)
{
	int code;
	PCRE2_SIZE offset;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, caseless ? PCRE2_CASELESS : 0,
	                               &code, &offset, NULL);

	if (re == NULL) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(err, errlen, "regex \"%s\": %s at offset %zu", pattern, (const char *)msg, (size_t)offset);
		return NULL;
	}
	/* JIT where the CPU has it; the interpreter otherwise, same results. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	if (config != NULL && config_own(config, re, regex_free) < 0) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return re;
}

/* One match data per worker, as large as any pattern needs (PCRE2 grows none: it is made once). */
static pcre2_match_data *match_data;

bool regex_match(const void *regex, const char *subject, size_t len, struct httpd_pool *pool, struct captures *cap)
{
	const pcre2_code *re = regex;
	uint32_t groups = 0;
	int rc;

	if (match_data == NULL && (match_data = pcre2_match_data_create(128, NULL)) == NULL)
		return false;
	rc = pcre2_match(re, (PCRE2_SPTR)subject, len, 0, 0, match_data, NULL);
	if (rc < 0)
		return false;
	if (cap == NULL)
		return true;
	pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &groups);
	cap->pairs = 0;
	cap->code = re;
	cap->subject = pool_strndup(pool, subject, len);
	if (cap->subject == NULL)
		return true;
	if (groups + 1 > pcre2_get_ovector_count(match_data))
		groups = pcre2_get_ovector_count(match_data) - 1;
	cap->ovector = pool_alloc(pool, 2 * (groups + 1) * sizeof(*cap->ovector));
	if (cap->ovector == NULL)
		return true;
	memcpy(cap->ovector, pcre2_get_ovector_pointer(match_data), 2 * (groups + 1) * sizeof(*cap->ovector));
	/* Groups past rc did not take part in the match. */
	for (uint32_t i = (uint32_t)rc; i <= groups; i++)
		cap->ovector[2 * i] = cap->ovector[2 * i + 1] = PCRE2_UNSET;
	cap->pairs = groups + 1;
	return true;
}

int regex_group_number(const void *regex, const char *name)
{
	int n = pcre2_substring_number_from_name(regex, (PCRE2_SPTR)name);

	return n > 0 ? n : -1;
}

/* The named groups of a compiled regex, pointing into its own name table. */
static int regex_capture_names(const void *regex, struct capture_names *out)
{
	uint32_t n = 0, entry = 0;
	PCRE2_SPTR table;
	const char **names;

	*out = (struct capture_names){ NULL, 0 };
	pcre2_pattern_info(regex, PCRE2_INFO_NAMECOUNT, &n);
	if (n == 0)
		return 0;
	pcre2_pattern_info(regex, PCRE2_INFO_NAMEENTRYSIZE, &entry);
	pcre2_pattern_info(regex, PCRE2_INFO_NAMETABLE, &table);
	if ((names = calloc(n, sizeof(*names))) == NULL)
		return -1;
	/* Each entry: the group number in two bytes, then the name. */
	for (uint32_t i = 0; i < n; i++)
		names[i] = (const char *)(table + i * entry + 2);
	*out = (struct capture_names){ names, n };
	return 0;
}

int regex_expr_compile(const void *regex, const char *text, struct expr *out, char *err, size_t errlen)
{
	struct capture_names names = { NULL, 0 };
	int rc;

	if (regex != NULL && regex_capture_names(regex, &names) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = expr_compile_captures(text, &names, out, err, errlen);
	free((void *)(uintptr_t)names.names);
	return rc;
}

int location_title_read(struct httpd_config *config, struct httpd_location *loc)
{
	const char *t = loc->prefix;
	char err[512];

	loc->kind = LOCATION_PREFIX;
	if (strncmp(t, "= ", 2) == 0) {
		loc->kind = LOCATION_EXACT;
		loc->path = t + 2;
	} else if (strncmp(t, "^~ ", 3) == 0) {
		loc->kind = LOCATION_PREFIX_STOP;
		loc->path = t + 3;
	} else if (strncmp(t, "~* ", 3) == 0 || strncmp(t, "~ ", 2) == 0) {
		bool caseless = t[1] == '*';

		loc->kind = LOCATION_REGEX;
		loc->path = t + (caseless ? 3 : 2);
		loc->prefix_len = 0;
		loc->path += strspn(loc->path, " ");
		loc->regex = regex_compile(config, loc->path, caseless, err, sizeof(err));
		if (loc->regex == NULL) {
			config_error(loc->file, loc->line, "location \"%s\": %s", loc->prefix, err);
			return -1;
		}
		return 0;
	} else if (t[0] == '@') {
		loc->kind = LOCATION_NAMED;
		loc->prefix_len = 0;
		if (t[1] == '\0' || strpbrk(t, " /") != NULL) {
			config_error(loc->file, loc->line, "location \"%s\": a named location is \"@name\"", loc->prefix);
			return -1;
		}
		return 0;
	}
	loc->path += strspn(loc->path, " ");
	if (loc->path[0] != '/') {
		config_error(loc->file, loc->line, "location \"%s\": the prefix must start with '/' (or the title with "
		             "\"=\", \"^~\", \"~\", \"~*\" or \"@\")", loc->prefix);
		return -1;
	}
	loc->prefix_len = loc->kind == LOCATION_EXACT ? 0 : strlen(loc->path);
	return 0;
}

static void index_release(void *p)
{
	struct httpd_config *config = p;

	for (size_t i = 0; i < config->server_count; i++) {
		struct httpd_server *srv = &config->servers[i];

		name_table_free(&srv->exact_paths);
		name_table_free(&srv->prefixes);
		free(srv->regexes);
		srv->regexes = NULL;
	}
}

int locations_index(struct httpd_config *config)
{
	if (config_own(config, config, index_release) < 0)
		return -1;
	for (size_t i = 0; i < config->server_count; i++) {
		struct httpd_server *srv = &config->servers[i];

		if (name_table_init(&srv->exact_paths, srv->location_count) < 0 ||
		    name_table_init(&srv->prefixes, srv->location_count) < 0 ||
		    (srv->regexes = calloc(srv->location_count + 1, sizeof(*srv->regexes))) == NULL)
			return -1;
		for (size_t j = 0; j < srv->location_count; j++) {
			const struct httpd_location *loc = &srv->locations[j];
			struct name_table *t = loc->kind == LOCATION_EXACT ? &srv->exact_paths : &srv->prefixes;

			if (loc->kind == LOCATION_REGEX) {
				srv->regexes[srv->regex_count++] = loc;
				continue;
			}
			if (loc->kind == LOCATION_NAMED)
				continue;
			if (name_table_add(t, loc->path, strlen(loc->path), loc) == 1) {
				const struct httpd_location *first = name_table_find(t, loc->path, strlen(loc->path));

				config_error(loc->file, loc->line, "location \"%s\": the same path as location \"%s\" at %s:%d",
				             loc->prefix, first->prefix, first->file, first->line);
				return -1;
			}
		}
	}
	return 0;
}

/*
 * The longest prefix location that matches path on a segment boundary:
 * the prefix is the path, ends in '/', or is followed by '/'.  Those are
 * the only lengths worth a lookup, longest first: one per '/' or two.
 */
static const struct httpd_location *prefix_longest(const struct httpd_server *server, const char *path, size_t len)
{
	const struct httpd_location *loc;

	if (server->prefixes.count == 0)
		return NULL;
	if ((loc = name_table_find(&server->prefixes, path, len)) != NULL)
		return loc;
	for (size_t j = len; j-- > 0;) {
		if (path[j] != '/')
			continue;
		if (j + 1 < len && (loc = name_table_find(&server->prefixes, path, j + 1)) != NULL)
			return loc;
		if (j > 0 && (loc = name_table_find(&server->prefixes, path, j)) != NULL)
			return loc;
	}
	return NULL;
}

const struct httpd_location *location_find(const struct httpd_server *server, const char *path, size_t len,
                                           struct httpd_pool *pool, struct captures *cap)
{
	const struct httpd_location *longest, *loc;

	if (server->exact_paths.count > 0 && (loc = name_table_find(&server->exact_paths, path, len)) != NULL)
		return loc;
	longest = prefix_longest(server, path, len);
	if (longest != NULL && longest->kind == LOCATION_PREFIX_STOP)
		return longest;
	for (size_t i = 0; i < server->regex_count; i++)
		if (regex_match(server->regexes[i]->regex, path, len, pool, cap))
			return server->regexes[i];
	return longest;
}

const struct httpd_location *location_named(const struct httpd_server *server, const char *name)
{
	for (size_t i = 0; i < server->location_count; i++)
		if (server->locations[i].kind == LOCATION_NAMED && strcmp(server->locations[i].prefix, name) == 0)
			return &server->locations[i];
	return NULL;
}

const char *location_rest(const struct httpd_location *loc, const char *path, struct httpd_pool *pool)
{
	const char *rest;

	if (loc->kind != LOCATION_PREFIX && loc->kind != LOCATION_PREFIX_STOP)
		return path;
	/* The path after the prefix, always starting with '/': reuse the prefix's own slash. */
	rest = path + loc->prefix_len;
	if (rest[0] != '/' && loc->prefix_len > 0 && rest[-1] == '/')
		rest--;
	return rest[0] == '/' ? rest : httpd_pool_printf(pool, "/%s", rest);
}
