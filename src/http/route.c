/* Routing a request at run time: rewrite rules, the location, return, try_files (rules read by rewrite.c). */
#include "rewrite.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_response.h"
#include "location.h"
#include "log.h"
#include "path.h"
#include "pool.h"
#include "request.h"
#include "request_variables.h"
#include "rewrite_rules.h"

/* The new path (and query) from a rewrite or a fallback URI: normalised again, as a request's. */
static int uri_set(struct request *r, const char *uri, size_t len)
{
	const char *q = memchr(uri, '?', len);
	size_t path_len = q != NULL ? (size_t)(q - uri) : len;
	char *path = pool_alloc(r->pool, path_len + 1);
	long n;

	if (path == NULL)
		return 500;
	if (path_len == 0 || uri[0] != '/') {
		httpd_log_request(HTTPD_LOG_ERR, &r->req, "rewrite: \"%.*s\" is not a path", (int)len, uri);
		return 500;
	}
	n = path_normalise(uri, path_len, path);
	if (n < 0)
		return 400;   /* ".." above the root, an encoded '/' or NUL: the client's bytes made it */
	r->req.path = path;
	if (q != NULL) {
		const char *args = q + 1;
		size_t args_len = len - path_len - 1;

		/* nginx's rule: new arguments, then the request's (a replacement ending in '?' drops them). */
		if (args_len == 0)
			r->req.query = NULL;
		else if (r->req.query != NULL)
			r->req.query = httpd_pool_printf(r->pool, "%.*s&%s", (int)args_len, args, r->req.query);
		else
			r->req.query = pool_strndup(r->pool, args, args_len);
	}
	return 0;
}

/* A redirect's Location, with the request's arguments unless the target has its own. */
static int redirect(struct request *r, int status, const char *target)
{
	const char *location = target;

	if (strchr(target, '?') == NULL && r->req.query != NULL)
		location = httpd_pool_printf(r->pool, "%s?%s", target, r->req.query);
	if (location == NULL || response_header_push(&r->res, "Location", location) < 0)
		return 500;
	return status;
}

/* One rule, if it matches: 0 when it did not or the path moved, or a status (a redirect). */
static int rule_run(struct request *r, const struct rewrite_rule *rule, bool *changed, bool *done, bool *stop)
{
	const char *v;
	size_t len;
	int rc;

	if (!regex_match(rule->regex, r->req.path, strlen(r->req.path), r->pool, &r->captures))
		return 0;
	if ((v = expr_eval(&rule->replacement, r, &len)) == NULL)
		return 500;
	if (rule->absolute || rule->flag == REWRITE_REDIRECT || rule->flag == REWRITE_PERMANENT)
		return redirect(r, rule->flag == REWRITE_PERMANENT ? 301 : 302, v);
	if ((rc = uri_set(r, v, len)) != 0)
		return rc;
	*changed = true;
	*done = rule->flag == REWRITE_LAST || rule->flag == REWRITE_BREAK;
	*stop = rule->flag == REWRITE_BREAK;
	return 0;
}

/* The first index of list at or after pos, or UINT32_MAX. */
static uint32_t first_from(const struct rule_list *list, uint32_t pos)
{
	size_t lo = 0, hi = list != NULL ? list->count : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (list->index[mid] < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return list != NULL && lo < list->count ? list->index[lo] : UINT32_MAX;
}

/*
 * The rules of one block, in order, each on the path as the rules before
 * it left it, but only those the path can match: the rules of its first
 * segment merged with the ones any path may match.  0 when they are done
 * (*changed if the path moved, *stop for break: stay in this location), or
 * a status (a redirect).
 */
static int rules_run(struct request *r, const struct rewrite_set *set, bool *changed, bool *stop)
{
	const char *looked_up = NULL;
	const struct rule_list *seg = NULL;
	uint32_t pos = 0;
	bool done = false;

	for (;;) {
		uint32_t a, b, next;
		int rc;

		/* The path's own rules, looked up again only when a rule moved it. */
		if (r->req.path != looked_up && set->by_segment.count > 0) {
			struct rule_list *const *slot;

			looked_up = r->req.path;
			slot = name_table_find(&set->by_segment, looked_up, strcspn(looked_up + 1, "/") + 1);
			seg = slot != NULL ? *slot : NULL;
		}
		a = first_from(seg, pos);
		b = first_from(set->always, pos);
		next = a < b ? a : b;

		if (next == UINT32_MAX)
			return 0;
		rc = rule_run(r, &set->rules[next], changed, &done, stop);
		if (rc != 0 || done)
			return rc;
		pos = next + 1;
	}
}

/* return: a redirect, a status with a text, or a status for the error page. */
static int return_answer(struct request *r, const struct return_rule *ret)
{
	const char *text = NULL;
	size_t len = 0;

	if (ret->has_text && (text = expr_eval(&ret->text, r, &len)) == NULL)
		return 500;
	if (is_redirect_status(ret->status)) {
		if (response_header_push(&r->res, "Location", text) < 0)
			return 500;
		return ret->status;
	}
	if (text == NULL)
		return ret->status;
	httpd_response_set_status(&r->res, ret->status);
	if (response_header_push(&r->res, "Content-Type", "text/plain; charset=utf-8") < 0)
		return 500;
	httpd_response_set_body_buffer(&r->res, text, len);
	return REQUEST_ANSWERED;   /* the caller answers with r->res */
}

static int redirected(struct request *r)
{
	if (++r->redirects <= REDIRECTS_MAX)
		return 0;
	httpd_log_request(HTTPD_LOG_ERR, &r->req, "rewrite or internal redirection cycle (more than %d) for %s",
	                  REDIRECTS_MAX, r->req.target);
	return 500;
}

static int location_enter(struct request *r, const struct httpd_location *loc)
{
	r->loc = loc;
	r->req.location = loc;
	r->req.path_rest = location_rest(loc, r->req.path, r->pool);
	return r->req.path_rest != NULL ? 0 : 500;
}

/*
 * The rules of the location r is in, then its return: 0 to stay, a status,
 * REQUEST_ANSWERED, or ROUTE_AGAIN when the path moved ("last", or rules
 * without a flag): the location is chosen again.
 */
static int location_rules(struct request *r)
{
	const struct httpd_location *loc = r->loc;
	bool changed = false, stop = false;
	int rc;

	if (loc->rewrites != NULL && (rc = rules_run(r, loc->rewrites, &changed, &stop)) != 0)
		return rc;
	if (changed && !stop)
		return redirected(r) != 0 ? 500 : ROUTE_AGAIN;
	if (changed && (rc = location_enter(r, loc)) != 0)   /* break: stay, with the new path */
		return rc;
	return loc->ret != NULL ? return_answer(r, loc->ret) : 0;
}

int rewrite_named(struct request *r)
{
	return location_rules(r);
}

int rewrite_route(struct request *r)
{
	const struct httpd_server *srv = r->server;
	int rc;

	if (r->redirects == 0 && srv->rewrites != NULL) {
		bool changed = false, stop = false;

		if ((rc = rules_run(r, srv->rewrites, &changed, &stop)) != 0)
			return rc;
	}
	if (r->redirects == 0 && srv->ret != NULL)
		return return_answer(r, srv->ret);
	do {
		const struct httpd_location *loc = location_find(srv, r->req.path, strlen(r->req.path), r->pool,
		                                                 &r->captures);

		if (loc == NULL)
			return 404;
		if ((rc = location_enter(r, loc)) != 0)
			return rc;
	} while ((rc = location_rules(r)) == ROUTE_AGAIN);
	return rc;
}

/* Whether rel (beneath loc's root, as the static handler opens it) is a regular file, or a directory. */
static bool try_exists(const struct httpd_location *loc, const char *rel, bool dir)
{
	struct stat st;
	int fd, rc;

	rel += strspn(rel, "/");
	fd = httpd_open_beneath(loc->root_fd, rel[0] != '\0' ? rel : ".", O_PATH);
	if (fd < 0)
		return false;
	rc = fstat(fd, &st);
	close(fd);
	return rc == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

int rewrite_try_files(struct request *r)
{
	const struct httpd_location *loc = r->loc;
	const struct try_rule *last;
	const char *v;
	size_t len;
	int rc;

	if (loc->try_count == 0)
		return 0;
	for (size_t i = 0; i + 1 < loc->try_count; i++) {
		const char *rel;
		char *path;

		if ((v = expr_eval(&loc->tries[i].expr, r, &len)) == NULL)
			return 500;
		if (len == 0 || v[0] != '/' || memchr(v, '?', len) != NULL)
			continue;
		/* What would be served: the candidate normalised, then mapped under the location's root. */
		if ((path = pool_alloc(r->pool, len + 1)) == NULL)
			return 500;
		if (path_normalise(v, len, path) < 0)
			continue;
		if ((rel = location_rest(loc, path, r->pool)) == NULL)
			return 500;
		if (try_exists(loc, rel, v[len - 1] == '/')) {
			r->req.path = path;
			r->req.path_rest = rel;
			return 0;
		}
	}
	last = &loc->tries[loc->try_count - 1];
	if (last->status > 0)
		return last->status;
	if (last->named != NULL) {
		if ((rc = redirected(r)) != 0)
			return rc;
		if ((rc = location_enter(r, last->named_loc)) != 0)
			return rc;
		return ROUTE_NAMED;   /* in the named location now: its access rules, no try_files of its own */
	}
	if ((v = expr_eval(&last->expr, r, &len)) == NULL)
		return 500;
	if ((rc = redirected(r)) != 0)
		return rc;
	if ((rc = uri_set(r, v, len)) != 0)
		return rc;
	return ROUTE_AGAIN;
}
