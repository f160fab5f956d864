#include "header_rules.h"
#include "header_rules_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "location.h"
#include "variable.h"

/* Fields the server sets for framing, or that belong to one connection: never an operator's. */
static bool header_reserved(const char *name, size_t len)
{
	static const char *const reserved[] = {
		"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer",
		"Proxy-Connection", "Date", "Server",
	};

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strlen(reserved[i]) == len && strncasecmp(reserved[i], name, len) == 0)
			return true;
	return false;
}

/* "Name: value [always]": the name's length, the value's start and length, and the flag. */
static int header_split(const char *text, size_t *name_len, const char **value, size_t *value_len, bool *always,
                        char *err, size_t errlen)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	const char *colon = strchr(text, ':');
	size_t len;

	*name_len = strspn(text, tchar);
	if (colon == NULL || *name_len == 0 || text + *name_len != colon) {
		snprintf(err, errlen, "\"%s\" is not \"Name: value [always]\" with a header name of token characters", text);
		return -1;
	}
	if (header_reserved(text, *name_len)) {
		snprintf(err, errlen, "%.*s is the server's to set (framing or connection), it cannot be added",
		         (int)*name_len, text);
		return -1;
	}
	*value = colon + 1 + strspn(colon + 1, " \t");
	len = strlen(*value);
	while (len > 0 && ((*value)[len - 1] == ' ' || (*value)[len - 1] == '\t'))
		len--;
	*always = len >= 7 && strncmp(*value + len - 7, " always", 7) == 0;
	if (*always) {
		len -= 7;
		while (len > 0 && ((*value)[len - 1] == ' ' || (*value)[len - 1] == '\t'))
			len--;
	}
	if (strpbrk(*value, "\r\n") != NULL) {
		snprintf(err, errlen, "a header value cannot hold a line break");
		return -1;
	}
	*value_len = len;
	return 0;
}

static int header_check(const char *text, char *err, size_t errlen)
{
	size_t name_len, value_len;
	const char *value;
	bool always;

	return header_split(text, &name_len, &value, &value_len, &always, err, errlen);
}

static void headers_release(void *p)
{
	struct header_rule *rules = p;

	for (size_t i = 0; rules[i].name != NULL; i++) {
		free(rules[i].name);
		expr_free(&rules[i].value);
	}
	free(rules);
}

static int headers_build(const struct directive_use *use)
{
	size_t n = httpd_conf_count(use->from, "add_header");
	struct header_rule *rules;

	if (n == 0)
		return 0;
	rules = calloc(n + 1, sizeof(*rules));   /* ends with a rule without a name */
	if (rules == NULL || config_own(use->config, rules, headers_release) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *text = httpd_conf_list_str(use->from, "add_header", i), *value;
		size_t name_len, value_len;
		char err[512], *copy;

		(void)header_split(text, &name_len, &value, &value_len, &rules[i].always, err, sizeof(err));   /* checked */
		copy = strndup(value, value_len);
		if (copy == NULL || (rules[i].name = strndup(text, name_len)) == NULL) {
			free(copy);
			return -1;
		}
		/* In a regex location, its $1 ... $9 and named groups too, as in return and rewrite. */
		if (regex_expr_compile(use->location->regex, copy, &rules[i].value, err, sizeof(err)) < 0) {
			config_error(use->file, use->line, "add_header %s: %s", rules[i].name, err);
			free(copy);
			return -1;
		}
		free(copy);
	}
	use->location->headers = rules;
	use->location->header_count = n;
	return 0;
}

/* "off", "epoch", "max", or a duration ("1h", "30d", "600"). */
static int expires_parse(const char *text, int *mode, int64_t *seconds)
{
	uint64_t ms;

	*seconds = 0;
	if (strcmp(text, "off") == 0)
		*mode = EXPIRES_OFF;
	else if (strcmp(text, "epoch") == 0)
		*mode = EXPIRES_EPOCH;
	else if (strcmp(text, "max") == 0)
		*mode = EXPIRES_MAX;
	else if (config_duration_parse(text, &ms) == 0 && ms / 1000 <= 10 * 365 * 86400ull) {
		*mode = EXPIRES_AFTER;
		*seconds = (int64_t)(ms / 1000);
	} else
		return -1;
	return 0;
}

static int expires_check(const char *text, char *err, size_t errlen)
{
	int mode;
	int64_t s;

	if (expires_parse(text, &mode, &s) == 0)
		return 0;
	snprintf(err, errlen, "expires must be \"off\", \"epoch\", \"max\" or a duration up to ten years (\"1h\", "
	         "\"30d\"), not \"%s\"", text);
	return -1;
}

static int expires_build(const struct directive_use *use)
{
	const char *text = httpd_conf_str(use->from, "expires");

	return text != NULL ? expires_parse(text, &use->location->expires, &use->location->expires_s) : 0;
}

const struct directive header_rows[] = {
	{ "add_header", DIRECTIVE_TOP | DIRECTIVE_SERVER | DIRECTIVE_LOCATION, DIRECTIVE_LIST, "{}",
	  .check = header_check, .store = DIRECTIVE_IN_LOCATION, .build = headers_build },
	{ "expires", DIRECTIVE_TOP | DIRECTIVE_SERVER | DIRECTIVE_LOCATION, DIRECTIVE_STR, "off",
	  .check = expires_check, .store = DIRECTIVE_IN_LOCATION, .build = expires_build },
	{ .name = NULL },
};

