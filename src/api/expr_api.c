/* Expressions for modules (ABI 2.2): an EXPR option compiled once, evaluated per request. */
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "request.h"
#include "request_variables.h"
#include "variable.h"

/* The public handle is the compiled expression itself. */
const struct httpd_expr *httpd_conf_expr(const struct httpd_conf *conf, const char *name)
{
	const char *text = httpd_conf_str(conf, name);
	struct expr *e;
	char err[256];

	if (text == NULL || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if (expr_compile(text, e, err, sizeof(err)) < 0) {
		/* Checked while the file was read: only a table without EXPR type gets here. */
		httpd_log(HTTPD_LOG_ERR, "option %s: %s", name, err);
		free(e);
		return NULL;
	}
	return (const struct httpd_expr *)(const void *)e;
}

void httpd_expr_free(const struct httpd_expr *expr)
{
	struct expr *e = (struct expr *)(uintptr_t)(const void *)expr;

	if (e == NULL)
		return;
	expr_free(e);
	free(e);
}

const char *httpd_expr_eval(const struct httpd_expr *expr, struct httpd_request *req, size_t *len)
{
	size_t n = 0;
	const char *v = expr != NULL ? expr_eval((const struct expr *)(const void *)expr, request_of(req), &n) : NULL;

	if (len != NULL)
		*len = v != NULL ? n : 0;
	return v;
}
