/* The rules rewrite.c reads and route.c applies. */
#ifndef HTTPD_REWRITE_RULES_H
#define HTTPD_REWRITE_RULES_H

#include <stdbool.h>

#include "variable.h"

/* Internal redirects of one request: rewrite "last" and try_files fallbacks. */
#define REDIRECTS_MAX 10

enum rewrite_flag { REWRITE_NEXT, REWRITE_LAST, REWRITE_BREAK, REWRITE_REDIRECT, REWRITE_PERMANENT };

struct rewrite_rule {
	void              *regex;
	struct expr        replacement;
	enum rewrite_flag  flag;
	bool               absolute;   /* http://, https:// or $scheme: a redirect whatever the flag */
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
};

static inline bool is_redirect_status(int status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

#endif
