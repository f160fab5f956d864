/* The rules rewrite.c reads and route.c applies. */
#ifndef HTTPD_REWRITE_RULES_H
#define HTTPD_REWRITE_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "name_table.h"

#include "variable.h"

struct httpd_location;

/* Internal redirects of one request: rewrite "last" and try_files fallbacks. */
#define REDIRECTS_MAX 10

enum rewrite_flag { REWRITE_NEXT, REWRITE_LAST, REWRITE_BREAK, REWRITE_REDIRECT, REWRITE_PERMANENT };

struct rewrite_rule {
	void              *regex;
	struct expr        replacement;
	enum rewrite_flag  flag;
	bool               absolute;   /* http://, https:// or $scheme: a redirect whatever the flag */
	char              *segment;    /* the first path segment every match starts with ("/blog"), or NULL */
	size_t             segment_len;
};

/* Rules by the first segment of the paths they can match, so a map of 1,000 rules costs one lookup. */
struct rule_list {
	size_t   count;
	uint32_t index[];   /* into rules, ascending */
};

struct rewrite_set {
	struct rewrite_rule *rules;
	size_t               count;
	struct name_table    by_segment;   /* "/blog" -> an entry of lists: the rules only paths under /blog match */
	struct rule_list   **lists;
	struct rule_list    *always;       /* the rules with no such segment: tried for every path */
};

struct return_rule {
	int          status;
	struct expr  text;     /* the URL of a redirect, or the body */
	bool         has_text;
};

struct try_rule {
	struct expr  expr;     /* a path to look for, or the fallback URI */
	int          status;   /* "=404": the fallback is that status */
	const char  *named;    /* "@name": the fallback is that location */
	const struct httpd_location *named_loc;   /* ... found when the configuration loads */
};

static inline bool is_redirect_status(int status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

#endif
