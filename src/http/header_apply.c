/* add_header and expires applied to a response, just before its head is built. */
#include "header_rules.h"

#include <time.h>

#include "header_rules_types.h"
#include "http_response.h"
#include "log.h"
#include "pool.h"
#include "request.h"
#include "request_variables.h"

static bool status_decorated(int status)
{
	switch (status) {
	case 200: case 201: case 204: case 206: case 301: case 302: case 303: case 304: case 307: case 308:
		return true;
	default:
		return false;
	}
}

/* Expires and Cache-Control: max-age, replacing what a handler or an upstream set, as nginx's expires. */
static void expires_apply(struct request *r, const struct httpd_location *loc)
{
	char date[HTTPD_DATE_LEN], *age;
	const char *expires, *cache;

	switch (loc->expires) {
	case EXPIRES_EPOCH:
		expires = "Thu, 01 Jan 1970 00:00:01 GMT";
		cache = "no-cache";
		break;
	case EXPIRES_MAX:
		expires = "Thu, 31 Dec 2037 23:55:55 GMT";
		cache = "max-age=315360000";
		break;
	case EXPIRES_AFTER:
		expires = httpd_http_date(time(NULL) + (time_t)loc->expires_s, date);
		age = httpd_pool_printf(r->pool, "max-age=%lld", (long long)loc->expires_s);
		if (age == NULL)
			return;
		cache = age;
		break;
	default:
		return;
	}
	response_header_remove(&r->res, "Expires");
	response_header_remove(&r->res, "Cache-Control");
	if (httpd_response_add_header(&r->res, "Expires", expires) < 0 ||
	    httpd_response_add_header(&r->res, "Cache-Control", cache) < 0)
		httpd_log_request(HTTPD_LOG_ERR, &r->req, "expires: out of memory");
}

void header_rules_apply(struct request *r)
{
	const struct httpd_location *loc = r->loc;
	bool decorated;

	if (loc == NULL)
		return;
	decorated = status_decorated(r->res.status);
	if (decorated && loc->expires != EXPIRES_OFF)
		expires_apply(r, loc);
	for (size_t i = 0; i < loc->header_count; i++) {
		const struct header_rule *h = &loc->headers[i];
		const char *v;
		size_t len;

		if (!decorated && !h->always)
			continue;
		v = expr_eval(&h->value, r, &len);
		/* An empty value adds nothing, as nginx; one a client's bytes made unsafe is dropped. */
		if (v != NULL && len > 0 && httpd_response_add_header(&r->res, h->name, v) < 0)
			httpd_log_request(HTTPD_LOG_INFO, &r->req, "add_header %s: the value is not a field value", h->name);
	}
}
