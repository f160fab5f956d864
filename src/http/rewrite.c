#include "rewrite.h"
#include "rewrite_rules.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "location.h"
#include "variable.h"

/* --- reading the rules -------------------------------------------------------- */

/* "REGEX REPLACEMENT [FLAG]": the three words, in place in copy. */
static int rewrite_split(char *copy, char **regex, char **replacement, enum rewrite_flag *flag, char *err,
                         size_t errlen)
{
	static const char *const flags[] = { "", "last", "break", "redirect", "permanent" };
	char *word[4] = { NULL };
	size_t n = 0;

	for (char *p = copy; *p != '\0' && n < 4;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		word[n++] = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
	}
	if (n < 2 || n > 3) {
		snprintf(err, errlen, "a rule is \"REGEX REPLACEMENT [last|break|redirect|permanent]\" (a space in the "
		         "regex is \\s or \\x20)");
		return -1;
	}
	*regex = word[0];
	*replacement = word[1];
	*flag = REWRITE_NEXT;
	if (n == 3) {
		size_t i;

		for (i = 1; i < 5 && strcmp(word[2], flags[i]) != 0; i++)
			;
		if (i == 5) {
			snprintf(err, errlen, "\"%s\" is not a flag: last, break, redirect or permanent", word[2]);
			return -1;
		}
		*flag = (enum rewrite_flag)i;
	}
	return 0;
}

/*
 * The first path segment every path the rule's regex matches starts with
 * ("^/blog/(\\d+)$": "/blog"), or 0 when there is none to rely on: an
 * unanchored regex, one with an alternation, or a literal that stops
 * before the segment ends.  Conservative: a rule without one is tried for
 * every path.
 */
static size_t rule_segment(const char *regex, char *out, size_t size)
{
	size_t n = 0;
	const char *p = regex;

	if (p[0] != '^' || p[1] != '/' || strchr(regex, '|') != NULL)
		return 0;
	for (p++; *p != '\0' && n + 1 < size; p++) {
		char c = *p;

		if (c == '\\' && p[1] != '\0' && strchr(".-/_~+*?()[]{}$^|\\", p[1]) != NULL)
			c = *++p;
		else if (strchr(".[](){}*+?|$^\\", c) != NULL)
			break;
		out[n++] = c;
	}
	/* A quantifier makes the last literal optional or repeatable: it is no part of every match. */
	if (n > 0 && (*p == '*' || *p == '+' || *p == '?' || *p == '{'))
		n--;
	for (size_t k = 1; k < n; k++)
		if (out[k] == '/')
			return k;   /* "/blog" of "/blog/": the whole first segment */
	/* "^/about$": exactly this path, a segment of its own */
	if (*p == '$' && p[1] == '\0' && n > 1)
		return n;
	return 0;
}

/* Compiles one rule; with config NULL only checks it (while the file is read). */
static int rewrite_compile(struct httpd_config *config, const char *text, struct rewrite_rule *rule, char *err,
                           size_t errlen)
{
	char *copy = strdup(text), *regex, *replacement, why[512], seg[256];
	int rc = -1;

	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(rule, 0, sizeof(*rule));
	if (rewrite_split(copy, &regex, &replacement, &rule->flag, err, errlen) < 0)
		goto out;
	if ((rule->regex = regex_compile(config, regex, false, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s", why);
		goto out;
	}
	if (regex_expr_compile(rule->regex, replacement, &rule->replacement, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "replacement \"%s\": %s", replacement, why);
		goto out;
	}
	rule->absolute = strncmp(replacement, "http://", 7) == 0 || strncmp(replacement, "https://", 8) == 0 ||
	                 strncmp(replacement, "$scheme", 7) == 0;
	if ((rule->segment_len = rule_segment(regex, seg, sizeof(seg))) > 0 &&
	    (rule->segment = strndup(seg, rule->segment_len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (config == NULL) {   /* a check only: nothing is kept */
		if (rule->regex != NULL)
			regex_free(rule->regex);
		expr_free(&rule->replacement);
		free(rule->segment);
	}
	free(copy);
	return rc;
}

static int rewrite_check(const char *text, char *err, size_t errlen)
{
	struct rewrite_rule rule;

	return rewrite_compile(NULL, text, &rule, err, errlen);
}

static void set_release(void *p)
{
	struct rewrite_set *set = p;

	for (size_t i = 0; i < set->count; i++) {
		expr_free(&set->rules[i].replacement);
		free(set->rules[i].segment);
	}
	for (size_t i = 0; set->lists != NULL && i < set->count && set->lists[i] != NULL; i++)
		free(set->lists[i]);
	name_table_free(&set->by_segment);
	free(set->lists);
	free(set->always);
	free(set->rules);
	free(set);
}

static struct rule_list *list_new(size_t capacity)
{
	struct rule_list *list = malloc(sizeof(*list) + capacity * sizeof(uint32_t));

	if (list != NULL)
		list->count = 0;
	return list;
}

/*
 * Files each rule under the segment it needs, or under always: the lists
 * numbered as their segments first appear, sized in a first pass.
 */
static int set_index(struct rewrite_set *set)
{
	size_t *sizes = calloc(set->count + 1, sizeof(*sizes)), always = 0, lists = 0;
	uint32_t *list_of = calloc(set->count + 1, sizeof(*list_of));
	int rc = -1;

	set->lists = calloc(set->count + 1, sizeof(*set->lists));
	if (sizes == NULL || list_of == NULL || set->lists == NULL || name_table_init(&set->by_segment, set->count) < 0)
		goto out;
	for (size_t i = 0; i < set->count; i++) {
		const struct rewrite_rule *rule = &set->rules[i];
		struct rule_list *const *slot;

		if (rule->segment == NULL) {
			list_of[i] = UINT32_MAX;
			always++;
			continue;
		}
		slot = name_table_find(&set->by_segment, rule->segment, rule->segment_len);
		if (slot == NULL) {
			slot = &set->lists[lists];
			(void)name_table_add(&set->by_segment, rule->segment, rule->segment_len, slot);
			lists++;
		}
		list_of[i] = (uint32_t)(slot - set->lists);
		sizes[list_of[i]]++;
	}
	for (size_t k = 0; k < lists; k++)
		if ((set->lists[k] = list_new(sizes[k])) == NULL)
			goto out;
	if ((set->always = list_new(always)) == NULL)
		goto out;
	for (uint32_t i = 0; i < set->count; i++) {
		struct rule_list *list = list_of[i] == UINT32_MAX ? set->always : set->lists[list_of[i]];

		list->index[list->count++] = i;
	}
	rc = 0;
out:
	free(sizes);
	free(list_of);
	return rc;
}

static int rewrites_build(const struct directive_use *use)
{
	size_t n = httpd_conf_count(use->from, "rewrite");
	struct rewrite_set *set;
	char err[512];

	if (n == 0)
		return 0;
	set = calloc(1, sizeof(*set));
	if (set == NULL || config_own(use->config, set, set_release) < 0 ||
	    (set->rules = calloc(n, sizeof(*set->rules))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (rewrite_compile(use->config, httpd_conf_list_str(use->from, "rewrite", i), &set->rules[i], err,
		                    sizeof(err)) < 0) {
			config_error(use->file, use->line, "rewrite: %s", err);
			return -1;
		}
		set->count++;
	}
	if (set_index(set) < 0)
		return -1;
	if (use->location != NULL)
		use->location->rewrites = set;
	else
		use->server->rewrites = set;
	return 0;
}

/* "CODE [TEXT]": the status, and where the text starts (NULL: none). */
static int return_split(const char *text, int *status, const char **rest, char *err, size_t errlen)
{
	char *end;
	long code;

	errno = 0;
	code = strtol(text, &end, 10);
	if (errno != 0 || end == text || (*end != '\0' && *end != ' ') || code < 200 || code > 599) {
		snprintf(err, errlen, "\"%s\" is not \"CODE [TEXT or URL]\" with a status from 200 to 599", text);
		return -1;
	}
	*status = (int)code;
	end += strspn(end, " ");
	*rest = *end != '\0' ? end : NULL;
	if (is_redirect_status(*status) && *rest == NULL) {
		snprintf(err, errlen, "\"%s\": a redirect needs a URL", text);
		return -1;
	}
	return 0;
}

static int return_check(const char *text, char *err, size_t errlen)
{
	int status;
	const char *rest;

	return return_split(text, &status, &rest, err, errlen);
}

/* An expression of a location or server block, with the captures its regex may give; reported at its line. */
static int expr_compile_for(const struct directive_use *use, const char *text, struct expr *out, const char *what)
{
	char err[512];

	if (regex_expr_compile(use->location != NULL ? use->location->regex : NULL, text, out, err, sizeof(err)) == 0)
		return 0;
	config_error(use->file, use->line, "%s: %s", what, err);
	return -1;
}

static void return_release(void *p)
{
	struct return_rule *ret = p;

	expr_free(&ret->text);
	free(ret);
}

static int return_build(const struct directive_use *use)
{
	const char *text = httpd_conf_str(use->from, "return"), *rest;
	struct return_rule *ret;
	char err[256];

	if (text == NULL)
		return 0;
	if ((ret = calloc(1, sizeof(*ret))) == NULL || config_own(use->config, ret, return_release) < 0)
		return -1;
	(void)return_split(text, &ret->status, &rest, err, sizeof(err));   /* checked while reading */
	if (rest != NULL) {
		if (expr_compile_for(use, rest, &ret->text, "return") < 0)
			return -1;
		ret->has_text = true;
	}
	if (use->location != NULL)
		use->location->ret = ret;
	else
		use->server->ret = ret;
	return 0;
}

static int try_check(const char *text, char *err, size_t errlen)
{
	if (text[0] == '=') {
		char *end;
		long code = strtol(text + 1, &end, 10);

		if (*end != '\0' || code < 200 || code > 599) {
			snprintf(err, errlen, "\"%s\": a status is \"=404\" (200 to 599)", text);
			return -1;
		}
		return 0;
	}
	if (text[0] != '/' && text[0] != '$' && text[0] != '@') {
		snprintf(err, errlen, "\"%s\" must be a path (\"$uri\", \"/index.html\"), \"=CODE\" or \"@name\"", text);
		return -1;
	}
	return 0;
}

static void tries_release(void *p)
{
	struct try_rule *tries = p;

	for (size_t i = 0; tries[i].status >= 0; i++)
		expr_free(&tries[i].expr);
	free(tries);
}

static int try_files_build(const struct directive_use *use)
{
	struct httpd_location *loc = use->location;
	size_t n = httpd_conf_count(use->from, "try_files");
	struct try_rule *tries;

	if (n == 0)
		return 0;
	if (n < 2) {
		config_error(use->file, use->line, "try_files needs a file to try and a fallback (\"=404\", \"@name\" or a "
		             "URI) last");
		return -1;
	}
	if (loc->root_fd < 0 && loc->document_root != NULL &&
	    (loc->root_fd = open(loc->document_root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		config_error(use->file, use->line, "try_files: cannot open the root %s: %s", loc->document_root,
		             strerror(errno));
		return -1;
	}
	if (loc->document_root == NULL) {
		config_error(use->file, use->line, "try_files needs a handler with a root (handler = \"static\")");
		return -1;
	}
	tries = calloc(n + 1, sizeof(*tries));
	if (tries == NULL)
		return -1;
	tries[n].status = -1;   /* the end */
	if (config_own(use->config, tries, tries_release) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *item = httpd_conf_list_str(use->from, "try_files", i);

		if (i + 1 < n && (item[0] == '=' || item[0] == '@')) {
			config_error(use->file, use->line, "try_files: \"%s\" may only be the last item", item);
			return -1;
		}
		if (item[0] == '=')
			tries[i].status = (int)strtol(item + 1, NULL, 10);
		else if (item[0] == '@')
			tries[i].named = item;
		else if (expr_compile_for(use, item, &tries[i].expr, "try_files") < 0)
			return -1;
	}
	loc->tries = tries;
	loc->try_count = n;
	return 0;
}

int rewrite_finish(struct httpd_config *config)
{
	int rc = 0;

	for (size_t i = 0; i < config->server_count; i++) {
		const struct httpd_server *srv = &config->servers[i];

		if (srv->location_count == 0 && srv->ret == NULL) {
			if (srv->name != NULL)
				config_error(srv->file, srv->line, "server \"%s\" has no location blocks and no return: nothing to "
				             "serve", srv->name);
			else
				config_error(srv->file, 0, "no location blocks: nothing to serve");
			rc = -1;
		}
		for (size_t j = 0; j < srv->location_count; j++) {
			const struct httpd_location *loc = &srv->locations[j];

			for (size_t k = 0; k < loc->try_count; k++)
				if (loc->tries[k].named != NULL &&
				    (loc->tries[k].named_loc = location_named(srv, loc->tries[k].named)) == NULL) {
					config_error(loc->file, loc->line, "location \"%s\": try_files names %s, which is no location "
					             "of its server", loc->prefix, loc->tries[k].named);
					rc = -1;
				}
		}
	}
	return rc;
}

const struct directive rewrite_rows[] = {
	{ "rewrite", DIRECTIVE_TOP | DIRECTIVE_SERVER, DIRECTIVE_LIST, "{}", .check = rewrite_check,
	  .store = DIRECTIVE_IN_SERVER, .flags = DIRECTIVE_OWN, .build = rewrites_build },
	{ "rewrite", DIRECTIVE_LOCATION, DIRECTIVE_LIST, "{}", .check = rewrite_check,
	  .store = DIRECTIVE_IN_LOCATION, .flags = DIRECTIVE_OWN, .build = rewrites_build },
	{ "return", DIRECTIVE_TOP | DIRECTIVE_SERVER, DIRECTIVE_STR, NULL, .check = return_check,
	  .store = DIRECTIVE_IN_SERVER, .flags = DIRECTIVE_OWN, .build = return_build },
	{ "return", DIRECTIVE_LOCATION, DIRECTIVE_STR, NULL, .check = return_check,
	  .store = DIRECTIVE_IN_LOCATION, .flags = DIRECTIVE_OWN | DIRECTIVE_ANSWERS, .build = return_build },
	{ "try_files", DIRECTIVE_LOCATION, DIRECTIVE_LIST, "{}", .check = try_check,
	  .store = DIRECTIVE_IN_LOCATION, .flags = DIRECTIVE_OWN, .build = try_files_build },
	{ .name = NULL },
};

