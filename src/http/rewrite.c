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

static void names_free(const char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free((char *)(uintptr_t)names[i]);
	free(names);
}

/* Compiles one rule; with config NULL only checks it (while the file is read). */
static int rewrite_compile(struct httpd_config *config, const char *text, struct rewrite_rule *rule, char *err,
                           size_t errlen)
{
	char *copy = strdup(text), *regex, *replacement, why[512];
	const char **names = NULL;
	size_t count = 0;
	struct capture_names cn;
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
	if (config == NULL) {
		regex_free(rule->regex);
		rule->regex = NULL;
	}
	(void)regex_group_names(regex, false, &names, &count);
	cn = (struct capture_names){ names, count };
	if (expr_compile_captures(replacement, &cn, &rule->replacement, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "replacement \"%s\": %s", replacement, why);
		goto out;
	}
	rule->absolute = strncmp(replacement, "http://", 7) == 0 || strncmp(replacement, "https://", 8) == 0 ||
	                 strncmp(replacement, "$scheme", 7) == 0;
	if (config == NULL)
		expr_free(&rule->replacement);
	rc = 0;
out:
	names_free(names, count);
	free(copy);
	return rc;
}

static int rewrite_check(const char *text, char *err, size_t errlen)
{
	struct rewrite_rule rule;

	return rewrite_compile(NULL, text, &rule, err, errlen);
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

static void set_release(void *p)
{
	struct rewrite_set *set = p;

	for (size_t i = 0; i < set->count; i++)
		expr_free(&set->rules[i].replacement);
	for (size_t i = 0; i <= set->by_segment.mask && set->by_segment.slots != NULL; i++)
		if (set->by_segment.slots[i].name != NULL) {
			free((char *)(uintptr_t)set->by_segment.slots[i].name);
			free((void *)(uintptr_t)set->by_segment.slots[i].value);
		}
	name_table_free(&set->by_segment);
	free(set->always);
	free(set->rules);
	free(set);
}

static int list_push(struct rule_list **list, uint32_t index)
{
	size_t n = *list != NULL ? (*list)->count : 0;
	struct rule_list *grown = realloc(*list, sizeof(**list) + (n + 1) * sizeof(uint32_t));

	if (grown == NULL)
		return -1;
	grown->count = n + 1;
	grown->index[n] = index;
	*list = grown;
	return 0;
}

/* Files each rule under the segment it needs, or under always. */
static int set_index(struct rewrite_set *set, char *const *regexes)
{
	if (name_table_init(&set->by_segment, set->count) < 0)
		return -1;
	for (uint32_t i = 0; i < set->count; i++) {
		char seg[256];
		size_t len = rule_segment(regexes[i], seg, sizeof(seg));
		struct rule_list *list;
		char *key;

		if (len == 0) {
			if (list_push(&set->always, i) < 0)
				return -1;
			continue;
		}
		list = (struct rule_list *)(uintptr_t)name_table_find(&set->by_segment, seg, len);
		if (list != NULL) {
			/* Grown in place: the table keeps the pointer, so make room by moving, then re-point. */
			struct rule_list *grown = list;

			if (list_push(&grown, i) < 0)
				return -1;
			for (size_t k = 0; k <= set->by_segment.mask; k++)
				if (set->by_segment.slots[k].value == list)
					set->by_segment.slots[k].value = grown;
			continue;
		}
		if ((key = strndup(seg, len)) == NULL || list_push(&list, i) < 0) {
			free(key);
			return -1;
		}
		(void)name_table_add(&set->by_segment, key, len, list);
	}
	return 0;
}

static int rewrites_build(const struct directive_use *use)
{
	size_t n = httpd_conf_count(use->from, "rewrite");
	struct rewrite_set *set;
	char err[512], **regexes;
	int rc = -1;

	if (n == 0)
		return 0;
	set = calloc(1, sizeof(*set));
	if (set == NULL || config_own(use->config, set, set_release) < 0)
		return -1;
	set->rules = calloc(n, sizeof(*set->rules));
	regexes = calloc(n, sizeof(*regexes));
	if (set->rules == NULL || regexes == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *text = httpd_conf_list_str(use->from, "rewrite", i);

		if (rewrite_compile(use->config, text, &set->rules[i], err, sizeof(err)) < 0) {
			config_error(use->file, use->line, "rewrite: %s", err);
			goto out;
		}
		set->count++;
		if ((regexes[i] = strndup(text + strspn(text, " \t"), strcspn(text + strspn(text, " \t"), " \t"))) == NULL)
			goto out;
	}
	if (set_index(set, regexes) < 0)
		goto out;
	if (use->location != NULL)
		use->location->rewrites = set;
	else
		use->server->rewrites = set;
	rc = 0;
out:
	for (size_t i = 0; regexes != NULL && i < n; i++)
		free(regexes[i]);
	free(regexes);
	return rc;
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

/* The named groups expressions of a location may use: its own regex's. */
static void location_names(const struct httpd_location *loc, const char ***names, size_t *count)
{
	*names = NULL;
	*count = 0;
	if (loc != NULL && loc->kind == LOCATION_REGEX)
		(void)regex_group_names(loc->path, loc->prefix[1] == '*', names, count);
}

/* An expression of a location or server block, with the captures its regex may give; reported at its line. */
static int expr_compile_for(const struct directive_use *use, const char *text, struct expr *out, const char *what)
{
	const char **names;
	size_t count;
	struct capture_names cn;
	char err[512];
	int rc;

	location_names(use->location, &names, &count);
	cn = (struct capture_names){ names, count };
	rc = expr_compile_captures(text, &cn, out, err, sizeof(err));
	names_free(names, count);
	if (rc < 0)
		config_error(use->file, use->line, "%s: %s", what, err);
	return rc;
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
				if (loc->tries[k].named != NULL && location_named(srv, loc->tries[k].named) == NULL) {
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

