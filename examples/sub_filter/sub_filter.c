/*
 * sub_filter: a third-party body filter, built against the prefork-httpd-dev
 * package, that replaces one string with another in responses as they
 * stream (as nginx's sub_filter does), whatever handler made them.
 *
 *   location "/" {
 *       handler = "proxy"
 *       upstream = "app"
 *       filter = {"sub_filter"}
 *       sub_filter_search  = "http://app.internal/"
 *       sub_filter_replace = "https://www.example.com/"
 *       sub_filter_once    = false                  # every occurrence (true: the first only)
 *       sub_filter_types   = {"text/html"}          # the default
 *   }
 *
 * A match may straddle two pieces of the body: the filter holds back the
 * last (length of the search - 1) bytes it has seen until the next piece
 * shows whether they begin a match.  Memory is constant: one input buffer
 * and one output buffer per response.  Compressed responses are left alone
 * (the core compresses after this filter, so it sees plain text).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* memmem */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <httpd/module.h>

#define SUB_IN  16384
#define SUB_OUT 16384
#define SUB_SEARCH_MAX 1024   /* so that a held-back tail always fits in the input buffer */

struct sub_conf {
	const char *search, *replace;
	size_t      search_len, replace_len;
	int         once;
	const struct httpd_conf *opts;   /* for sub_filter_types */
};

struct sub_stream {
	const struct sub_conf *conf;
	size_t  in_off, in_len;
	size_t  replace_left;    /* bytes of a replacement not yet given */
	int     ended, replaced;
	char    in[SUB_IN];
	char    out[SUB_OUT];
};

static const struct httpd_option sub_options[] = {
	HTTPD_OPTION_STR("sub_filter_search", NULL),
	HTTPD_OPTION_STR("sub_filter_replace", ""),
	HTTPD_OPTION_BOOL("sub_filter_once", "false"),
	HTTPD_OPTION_STR_LIST("sub_filter_types", "{\"text/html\"}"),
	HTTPD_OPTION_END,
};

static int sub_configure(const struct httpd_location *loc, const struct httpd_conf *opts, void **data,
                         char *err, size_t errlen)
{
	struct sub_conf *c;
	char where[300];

	(void)loc;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "sub_filter: out of memory");
		return -1;
	}
	c->search = httpd_conf_str(opts, "sub_filter_search");
	c->replace = httpd_conf_str(opts, "sub_filter_replace");
	if (c->search == NULL || c->search[0] == '\0' || strlen(c->search) > SUB_SEARCH_MAX) {
		snprintf(err, errlen, "%s: sub_filter_search must be 1 to %d bytes", httpd_conf_origin(opts, where,
		         sizeof(where)), SUB_SEARCH_MAX);
		free(c);
		return -1;
	}
	c->search_len = strlen(c->search);
	c->replace_len = c->replace != NULL ? strlen(c->replace) : 0;
	c->once = httpd_conf_bool(opts, "sub_filter_once");
	c->opts = opts;
	*data = c;
	return 0;
}

static void sub_release(void *data)
{
	free(data);
}

static int type_listed(const struct httpd_conf *opts, const char *type)
{
	size_t len = strcspn(type, "; \t");

	for (size_t i = 0; i < httpd_conf_count(opts, "sub_filter_types"); i++) {
		const char *t = httpd_conf_list_str(opts, "sub_filter_types", i);

		if (strcmp(t, "*") == 0 || (strlen(t) == len && strncasecmp(t, type, len) == 0))
			return 1;
	}
	return 0;
}

static int sub_start(void *data, struct httpd_request *req, struct httpd_response *res, void **ctx)
{
	const struct sub_conf *c = data;
	const char *type = httpd_response_header(res, "Content-Type");
	struct sub_stream *s;

	if (type == NULL || !type_listed(c->opts, type) || httpd_response_header(res, "Content-Encoding") != NULL)
		return HTTPD_DECLINED;
	s = httpd_pool_alloc(req->pool, sizeof(*s));
	if (s == NULL)
		return 500;
	memset(s, 0, offsetof(struct sub_stream, in));
	s->conf = c;
	/* The bytes differ from what the validators describe. */
	httpd_response_remove_header(res, "ETag");
	httpd_response_remove_header(res, "Last-Modified");
	httpd_response_remove_header(res, "Accept-Ranges");
	*ctx = s;
	return HTTPD_OK;
}

static size_t give(struct sub_stream *s, size_t made, size_t room, const char *from, size_t len)
{
	size_t n = len < room - made ? len : room - made;

	memcpy(s->out + made, from, n);
	return n;
}

static int sub_filter(void *ctx, struct httpd_body *in, struct httpd_chunk *out, size_t max)
{
	struct sub_stream *s = ctx;
	const struct sub_conf *c = s->conf;
	size_t room = max < SUB_OUT ? max : SUB_OUT, made = 0;

	while (made < room) {
		size_t avail = s->in_len - s->in_off, n;
		const char *at = s->in + s->in_off, *match;

		if (s->replace_left > 0) {
			n = give(s, made, room, c->replace + c->replace_len - s->replace_left, s->replace_left);
			made += n;
			s->replace_left -= n;
			continue;
		}
		if (!s->ended && avail < c->search_len) {
			/* Too little to tell a match: keep it at the front and read more behind it. */
			ssize_t got;

			memmove(s->in, at, avail);
			s->in_off = 0;
			s->in_len = avail;
			got = httpd_body_read(in, s->in + s->in_len, sizeof(s->in) - s->in_len);
			if (got == HTTPD_STREAM_AGAIN && made > 0)
				break;
			if (got == HTTPD_STREAM_AGAIN || got < 0)
				return (int)got;
			if (got == 0)
				s->ended = 1;
			s->in_len += (size_t)got;
			continue;
		}
		if (avail == 0)
			break;   /* the end */
		match = c->once && s->replaced ? NULL : memmem(at, avail, c->search, c->search_len);
		if (match != NULL) {
			n = give(s, made, room, at, (size_t)(match - at));
			made += n;
			s->in_off += n;
			if (at + n == match) {
				s->in_off += c->search_len;
				s->replace_left = c->replace_len;
				s->replaced = 1;
			}
			continue;
		}
		/* No match here: all of it may go but what could begin one. */
		n = s->ended ? avail : avail - (c->search_len - 1);
		n = give(s, made, room, at, n);
		made += n;
		s->in_off += n;
	}
	if (made == 0)
		return 0;
	*out = (struct httpd_chunk){ s->out, made, -1, 0 };
	return 1;
}

static int sub_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "sub_filter");
	httpd_module_options(api, sub_options);
	httpd_hook_configure(api, sub_configure);
	httpd_hook_release(api, sub_release);
	httpd_hook_body_filter(api, sub_start, sub_filter);
	return 0;
}

HTTPD_MODULE(sub_register)
