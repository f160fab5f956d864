/*
 * Compression, the core's half: which responses are compressed, with which
 * coding and level (RFC 9110 §12.5.3 negotiation, the location's order on
 * ties), and what that changes in the head (Content-Encoding, Vary, a weak
 * ETag, no Content-Length).  The bytes are made by the coding's module, a
 * body filter last in the chain; small files the open-file cache holds are
 * compressed once and their compressed copy kept with them.
 */
#include "compress.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "body_filter.h"
#include "config.h"
#include "log.h"
#include "module.h"
#include "pool.h"
#include "request.h"

/*
 * Compressed copies: a small file's content in memory (RESPONSE_SMALL_FILE)
 * is compressed at once; a cached file up to MEMO_FILE_MAX is compressed as
 * the first response streams it, and the copy kept when it ends.  Copies
 * larger than MEMO_MAX are not kept.
 */
#define MEMO_MAX      (1024 * 1024)
#define MEMO_FILE_MAX (1024 * 1024)

static const enum coding default_order[] = { CODING_ZSTD, CODING_BR, CODING_GZIP };

/* Does the media type match the list ("text/html", a type with a star, "*")?  Parameters do not count. */
static bool type_matches(char *const *types, size_t count, const char *type)
{
	size_t len = strcspn(type, "; \t"), major = strcspn(type, "/");

	for (size_t i = 0; i < count; i++) {
		const char *t = types[i];
		size_t tlen = strlen(t);

		if (strcmp(t, "*") == 0)
			return true;
		if (tlen >= 2 && strcmp(t + tlen - 2, "/*") == 0) {
			if (major < len && major == tlen - 2 && strncasecmp(type, t, major) == 0)
				return true;
		} else if (tlen == len && strncasecmp(type, t, len) == 0) {
			return true;
		}
	}
	return false;
}

/* Vary: Accept-Encoding, once: a cache must key on it whether or not this response was compressed. */
static int vary_add(struct httpd_response *res)
{
	const char *vary = httpd_response_header(res, "Vary");
	char *both;

	if (vary == NULL)
		return httpd_response_add_header(res, "Vary", "Accept-Encoding");
	if (strcasestr(vary, "Accept-Encoding") != NULL || strcmp(vary, "*") == 0)
		return 0;
	both = httpd_pool_printf(res->pool, "%s, Accept-Encoding", vary);
	if (both == NULL)
		return -1;
	response_header_remove(res, "Vary");
	return httpd_response_add_header(res, "Vary", both);
}

/* Marks a strong entity tag weak: the compressed bytes depend on the library, not only the file. */
static int etag_weaken(struct httpd_response *res)
{
	if (response_fields_expand(res) < 0)
		return -1;
	for (struct response_header *h = res->headers; h != NULL; h = h->next) {
		if (strcasecmp(h->name, "ETag") == 0 && h->value[0] == '"') {
			char *weak = httpd_pool_printf(res->pool, "W/%s", h->value);

			if (weak == NULL)
				return -1;
			response_header_set_value(h, weak);
		}
	}
	return 0;
}

static uint64_t body_length(const struct httpd_response *res)
{
	if (res->body == BODY_NONE && res->head_length >= 0)
		return (uint64_t)res->head_length;   /* a HEAD answer for the upstream's body */
	switch (res->body) {
	case BODY_BUFFER: return res->buf_len;
	case BODY_FILE:   return (uint64_t)res->file_len;
	default:          return UINT64_MAX;   /* a stream: unknown, worth compressing */
	}
}

/* The coding module's filter joins the chain: last, after every other body filter. */
static int coding_start(struct request *r, const struct module *m)
{
	void *ctx = NULL;
	int rc = m->api.body_filter_start(NULL, &r->req, &r->res, &ctx);

	if (rc != HTTPD_OK) {
		httpd_log_request(HTTPD_LOG_ERR, &r->req, "module %s could not start its coding (%d)", m->name, rc);
		return 500;
	}
	return body_chain_add(&r->req, &r->res, m->api.body_filter, ctx, m->name) < 0 ? 500 : 0;
}

/* The last link of a first compressed response of a cached file: passes it on, and keeps a copy. */
struct memo_record {
	const struct body_memo_ops *memo;
	const void                 *key;
	int                         coding, level;
	struct body_copy            copy;
	bool                        abandoned;
};

static void memo_record_free(void *arg)
{
	struct memo_record *rec = arg;

	free(rec->copy.buf);   /* NULL once its keeper took it */
}

static int memo_record_filter(void *ctx, struct httpd_body *in, struct httpd_chunk *out, size_t max)
{
	struct memo_record *rec = ctx;
	int rc = httpd_body_pull(in, out, max);

	if (rc == 1 && !rec->abandoned) {
		/* Too large to keep (or no memory): this response still goes out whole, only uncopied. */
		if (out->data == NULL || body_copy_append(&rec->copy, out->data, out->len, MEMO_MAX) < 0)
			rec->abandoned = true;
	} else if (rc == 0 && !rec->abandoned && rec->copy.buf != NULL) {
		size_t kept;

		/* Another response may have kept its copy first: then this one is dropped with the pool. */
		if (rec->memo->get(rec->key, rec->coding, rec->level, &kept) == NULL &&
		    rec->memo->keep(rec->key, rec->coding, rec->level, rec->copy.buf, rec->copy.len) != NULL)
			rec->copy.buf = NULL;   /* the keeper's now */
	}
	return rc;
}

/*
 * A body whose keeper (the open-file cache) may hold its compressed copy:
 * served from the copy, with a length, as a file would be.  1 when so,
 * 0 when the response is to be compressed as it goes, -1 on a failure
 * that spent the body.  A small body in memory is compressed now and its
 * copy kept; a cached file's first compressed response records its copy.
 */
static int memo_serve(struct request *r, const struct module *m)
{
	struct httpd_response *res = &r->res;
	const struct body_memo_ops *memo = res->memo;
	const void *key = res->memo_key;
	struct memo_record *rec;
	const char *packed;
	char *made;
	size_t len;

	if (memo == NULL || (res->body != BODY_BUFFER && res->body != BODY_FILE))
		return 0;
	packed = memo->get(key, res->coding, res->coding_level, &len);
	if (packed != NULL) {
		httpd_response_set_body_buffer(res, packed, len);
		return 1;
	}
	if (res->body == BODY_BUFFER && res->buf_len <= RESPONSE_SMALL_FILE) {
		if (coding_start(r, m) != 0 || body_chain_collect(res, MEMO_MAX, &made, &len) < 0)
			return -1;
		packed = memo->keep(key, res->coding, res->coding_level, made, len);
		if (packed == NULL) {
			/* Its keeper has no room for another copy: this response sends its own. */
			char *own = pool_alloc(res->pool, len ? len : 1);

			if (own != NULL)
				memcpy(own, made, len);
			free(made);
			if ((packed = own) == NULL)
				return -1;
		}
		httpd_response_set_body_buffer(res, packed, len);
		return 1;
	}
	if (r->head.method == HTTPD_METHOD_HEAD || body_length(res) > MEMO_FILE_MAX)
		return 0;
	rec = pool_alloc(res->pool, sizeof(*rec));
	if (rec == NULL)
		return 0;
	*rec = (struct memo_record){ memo, key, res->coding, res->coding_level, { NULL, 0, 0 }, false };
	if (httpd_pool_cleanup(res->pool, memo_record_free, rec) < 0 || coding_start(r, m) != 0 ||
	    body_chain_add(&r->req, res, memo_record_filter, rec, "compress") < 0)
		return -1;
	return 2;   /* started: streamed now, served from the copy next time */
}

static int coding_apply(struct request *r, const struct module *m)
{
	struct httpd_response *res = &r->res;
	int rc;

	/* A range of this response would be a range of the compressed bytes: none is offered (ranges stay identity). */
	response_header_remove(res, "Accept-Ranges");
	if (httpd_response_add_header(res, "Content-Encoding", coding_name((enum coding)res->coding)) < 0 ||
	    etag_weaken(res) < 0)
		return 500;
	if ((rc = memo_serve(r, m)) != 0)
		return rc > 0 ? 0 : 500;   /* served from a copy, or streamed while one is recorded */
	if (r->head.method == HTTPD_METHOD_HEAD) {
		httpd_response_set_head_length(res, -1);   /* the GET's length is not known before it is made */
		return 0;
	}
	return coding_start(r, m);
}

/* RFC 9110 §7.7: an intermediary does not transform an answer whose Cache-Control says no-transform. */
static bool no_transform(const struct httpd_response *res)
{
	const char *value = httpd_response_header(res, "Cache-Control"), *cc = value;

	while (cc != NULL && (cc = strcasestr(cc, "no-transform")) != NULL) {
		const char *end = cc + 12;
		bool starts = cc == value || cc[-1] == ',' || cc[-1] == ' ' || cc[-1] == '\t';

		if (starts && (*end == '\0' || *end == ',' || *end == ' ' || *end == '\t'))
			return true;
		cc = end;
	}
	return false;
}

int compress_apply(struct request *r)
{
	struct httpd_response *res = &r->res;
	const struct compress_conf *cc = r->loc != NULL ? r->loc->compress : NULL;
	const char *type, *accept;
	enum coding best;
	size_t pick;

	if (res->coding >= 0) {
		/* httpd_response_gzip: asked for by the handler, whatever the location says. */
		const struct module *m = module_find(coding_module((enum coding)res->coding));

		if (res->status != 200 || httpd_response_header(res, "Content-Encoding") != NULL || m == NULL ||
		    (res->body == BODY_NONE && r->head.method != HTTPD_METHOD_HEAD)) {
			res->coding = -1;
			return 0;
		}
		return coding_apply(r, m);
	}
	if (cc == NULL || (res->status != 200 && res->status != 206 && res->status != 304))
		return 0;
	type = httpd_response_header(res, "Content-Type");
	if (type == NULL || !(cc->types != NULL ? type_matches(cc->types, cc->type_count, type)
	                                        : httpd_mime_compressible(type)))
		return 0;
	if (vary_add(res) < 0)
		return 500;
	/* Whole 200s only: a range of a compressed stream is no range of the file (ranges stay identity). */
	if (res->status != 200 || httpd_response_header(res, "Content-Encoding") != NULL || no_transform(res) ||
	    httpd_request_header(&r->req, "Range") != NULL ||
	    (accept = httpd_request_header(&r->req, "Accept-Encoding")) == NULL)
		return 0;
	if (coding_negotiate(accept, cc->order, cc->count, &best, 1) == 0)
		return 0;
	/* A HEAD the proxy answers has no body here, but says what the GET's would be (head_length). */
	if ((res->body == BODY_NONE && res->head_length == -1) ||
	    (res->chain == NULL && body_length(res) < cc->min_length && accept_encoding_q(accept, "identity") > 0))
		return 0;   /* not worth it (unless the client refused identity) */
	for (pick = 0; cc->order[pick] != best; pick++)
		;
	res->coding = (int)best;
	res->coding_level = cc->level[best];
	return coding_apply(r, cc->mod[pick]);
}

/* --- the module API --------------------------------------------------------- */

const char *httpd_response_coding(const struct httpd_response *res, int *level)
{
	if (res->coding < 0)
		return NULL;
	if (level != NULL)
		*level = res->coding_level;
	return coding_name((enum coding)res->coding);
}

int httpd_response_gzip(struct httpd_response *res, int level)
{
	if (module_find(coding_module(CODING_GZIP)) == NULL) {
		httpd_log(HTTPD_LOG_ERR, "httpd_response_gzip: the gzip module is not loaded (compress = {\"gzip\"} "
		          "in a location loads it)");
		return -1;
	}
	res->coding = CODING_GZIP;
	res->coding_level = level < 1 ? 1 : level > 9 ? 9 : level;
	return 0;
}

size_t httpd_request_codings(const struct httpd_request *req, const char **out, size_t max)
{
	const struct request *r = request_of(req);
	const struct compress_conf *cc = r->loc != NULL ? r->loc->compress : NULL;
	const char *accept = httpd_request_header(req, "Accept-Encoding");
	enum coding best[CODING_COUNT];
	size_t n;

	if (accept == NULL)
		return 0;
	n = cc != NULL ? coding_negotiate(accept, cc->order, cc->count, best, max)
	               : coding_negotiate(accept, default_order, CODING_COUNT, best, max);
	for (size_t i = 0; i < n; i++)
		out[i] = coding_name(best[i]);
	return n;
}
