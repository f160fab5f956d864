/*
 * Files as responses: validators, conditional requests (RFC 9110 §13) and
 * range requests (§14), shared by every module that serves files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_cache.h"
#include "http_date.h"
#include "http_response.h"
#include "pool.h"
#include "range.h"
#include "request.h"

static void fd_close(void *arg)
{
	close((int)(intptr_t)arg);
}

/* Strong validator: changes whenever the file is replaced, resized or touched. */
static void etag_format(char *buf, size_t size, const struct stat *st, const char *suffix)
{
	snprintf(buf, size, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "%s%s\"", (uint64_t)st->st_ino,
	         (uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec,
	         suffix ? "-" : "", suffix ? suffix : "");
}

static char *etag_make(struct httpd_pool *pool, const struct stat *st, const char *suffix)
{
	char buf[128];

	if (suffix != NULL && strlen(suffix) > 32)
		return NULL;
	etag_format(buf, sizeof(buf), st, suffix);
	return httpd_pool_strdup(pool, buf);
}

/*
 * Does the If-Match / If-None-Match list match etag?  "*" matches any
 * current representation.  Weak comparison ignores W/ (§8.8.3.2); strong
 * comparison never matches a weak tag.
 */
static bool etag_list_matches(const char *list, const char *etag, bool weak)
{
	size_t etag_len = strlen(etag);
	const char *p = list;

	while (*p != '\0') {
		bool is_weak = false;
		const char *start, *end;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0) {
			is_weak = true;
			p += 2;
		}
		if (*p != '"')
			return false;   /* malformed: no match */
		start = p;
		end = strchr(p + 1, '"');
		if (end == NULL)
			return false;
		p = end + 1;
		if (is_weak && !weak)
			continue;
		if ((size_t)(end + 1 - start) == etag_len && memcmp(start, etag, etag_len) == 0)
			return true;
	}
	return false;
}

enum precondition { PRE_PASS, PRE_NOT_MODIFIED, PRE_FAILED };

/*
 * RFC 9110 §13.2.2, steps 1 to 4, for any method.  etag NULL: the resource
 * does not exist, so no list (not even "*") matches and the dates are
 * ignored (§13.1.4: no modification date to compare).
 */
static enum precondition preconditions_evaluate(const struct httpd_request *req, const char *etag,
                                                time_t mtime)
{
	const char *if_match = httpd_request_header(req, "If-Match");
	const char *if_none_match = httpd_request_header(req, "If-None-Match");
	bool get_or_head = req->method == HTTPD_METHOD_GET || req->method == HTTPD_METHOD_HEAD;
	time_t date;

	if (if_match != NULL) {
		if (etag == NULL || !etag_list_matches(if_match, etag, false))
			return PRE_FAILED;
	} else if (etag != NULL) {
		const char *ius = httpd_request_header(req, "If-Unmodified-Since");

		if (ius != NULL && http_date_parse(ius, &date) && mtime > date)
			return PRE_FAILED;
	}
	if (etag == NULL)
		return PRE_PASS;
	if (if_none_match != NULL) {
		if (etag_list_matches(if_none_match, etag, true))
			return get_or_head ? PRE_NOT_MODIFIED : PRE_FAILED;
	} else if (get_or_head) {
		const char *ims = httpd_request_header(req, "If-Modified-Since");

		if (ims != NULL && http_date_parse(ims, &date) && mtime <= date)
			return PRE_NOT_MODIFIED;
	}
	return PRE_PASS;
}

int httpd_request_preconditions(const struct httpd_request *req, const struct stat *st, const char *etag)
{
	char buf[128];

	if (st != NULL && etag == NULL) {
		etag_format(buf, sizeof(buf), st, NULL);
		etag = buf;
	}
	switch (preconditions_evaluate(req, st != NULL ? etag : NULL, st != NULL ? st->st_mtime : 0)) {
	case PRE_NOT_MODIFIED: return 304;
	case PRE_FAILED:       return 412;
	case PRE_PASS:         break;
	}
	return 0;
}

/* If-Range (§13.1.5): an entity tag must match strongly, a date exactly. */
static bool if_range_holds(const struct httpd_request *req, const char *etag, time_t mtime)
{
	const char *v = httpd_request_header(req, "If-Range");
	time_t date;

	if (v == NULL)
		return true;
	if (v[0] == '"' || strncmp(v, "W/", 2) == 0)
		return v[0] == '"' && strcmp(v, etag) == 0;
	return http_date_parse(v, &date) && date == mtime;
}

struct multipart {
	int                 fd;
	struct byte_range   ranges[RANGE_MAX];
	size_t              count;
	size_t              index;      /* current part */
	uint64_t            offset;     /* next byte of the current part */
	bool                in_data;
	bool                done;
	uint64_t            size;
	const char         *type;
	char                boundary[40];
};

/* Emits part headers, file bytes and the closing boundary, in that order. */
static ssize_t multipart_read(void *ctx, char *buf, size_t len)
{
	struct multipart *mp = ctx;
	int n;

	if (mp->done)
		return 0;
	if (mp->index == mp->count) {
		n = snprintf(buf, len, "\r\n--%s--\r\n", mp->boundary);
		mp->done = true;
		return n < 0 || (size_t)n >= len ? -1 : n;
	}
	if (!mp->in_data) {
		const struct byte_range *r = &mp->ranges[mp->index];

		n = snprintf(buf, len, "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64
		             "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
		             mp->boundary, mp->type, r->first, r->last, mp->size);
		if (n < 0 || (size_t)n >= len)
			return -1;
		mp->in_data = true;
		mp->offset = r->first;
		return n;
	}
	{
		const struct byte_range *r = &mp->ranges[mp->index];
		uint64_t left = r->last + 1 - mp->offset;
		size_t want = left < len ? (size_t)left : len;
		ssize_t got = pread(mp->fd, buf, want, (off_t)mp->offset);

		if (got <= 0)
			return -1;   /* the file shrank: the promised body cannot be kept */
		mp->offset += (uint64_t)got;
		if (mp->offset > r->last) {
			mp->index++;
			mp->in_data = false;
		}
		return got;
	}
}

/* Where a file response's bytes come from: an owned descriptor, or the open-file cache. */
struct file_source {
	int         fd;
	bool        owned;
	const char *content;   /* the whole file in memory, or NULL */
	const struct httpd_file *file;   /* the open-file cache's, or NULL */
};

static void source_drop(struct file_source *src)
{
	if (src->owned)
		close(src->fd);
}

/* The body: bytes [offset, offset + len) of the file. */
static void source_body(struct httpd_response *res, const struct file_source *src, uint64_t offset,
                        uint64_t len)
{
	if (src->content != NULL)
		httpd_response_set_body_buffer(res, src->content + offset, (size_t)len);
	else if (src->owned)
		httpd_response_set_body_file(res, src->fd, (off_t)offset, (off_t)len);
	else
		response_set_body_file_ref(res, src->fd, (off_t)offset, (off_t)len);
	if (src->file != NULL && offset == 0 && len == (uint64_t)httpd_file_stat(src->file)->st_size) {
		res->memo = &file_cache_memo;   /* a whole cached file: its compressed copies are kept with it */
		res->memo_key = src->file;
	}
}

static int respond_ranges(const struct httpd_request *req, struct httpd_response *res,
                          struct file_source *src, const struct stat *st, const char *type,
                          struct byte_range *ranges, size_t count)
{
	uint64_t size = (uint64_t)st->st_size;
	struct multipart *mp;

	httpd_response_set_status(res, 206);
	if (count == 1) {
		char *cr = httpd_pool_printf(req->pool, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
		                             ranges[0].first, ranges[0].last, size);

		if (cr == NULL || httpd_response_add_header(res, "Content-Type", type) < 0 ||
		    httpd_response_add_header(res, "Content-Range", cr) < 0) {
			source_drop(src);
			return 500;
		}
		source_body(res, src, ranges[0].first, ranges[0].last - ranges[0].first + 1);
		return HTTPD_OK;
	}
	mp = httpd_pool_alloc(req->pool, sizeof(*mp));
	if (mp == NULL ||
	    (src->owned && httpd_pool_cleanup(req->pool, fd_close, (void *)(intptr_t)src->fd) < 0)) {
		source_drop(src);
		return 500;
	}
	memset(mp, 0, sizeof(*mp));
	mp->fd = src->fd;
	memcpy(mp->ranges, ranges, count * sizeof(*ranges));
	mp->count = count;
	mp->size = size;
	mp->type = type;
	snprintf(mp->boundary, sizeof(mp->boundary), "%016" PRIx64 "%08x",
	         (uint64_t)st->st_ino ^ (uint64_t)st->st_mtim.tv_nsec, (unsigned)random());
	/* fd is the pool's to close from here on. */
	if (httpd_response_add_header(res, "Content-Type",
	                              httpd_pool_printf(req->pool, "multipart/byteranges; boundary=%s",
	                                                mp->boundary)) < 0)
		return 500;
	httpd_response_set_body_stream(res, multipart_read, mp);
	return HTTPD_OK;
}

/*
 * A cached small file asked for without conditions or ranges: its fields
 * were formatted once (file_cache_fields), so the answer costs a copy.
 * false when that path does not apply.
 */
static bool respond_prebuilt(const struct httpd_request *req, struct httpd_response *res,
                             const struct httpd_file *file, const char *content_type)
{
	const struct response_header *fields;
	const char *text;
	size_t len, count;
	const char *content = file_cache_content(file);

	if (content == NULL || request_of(req)->head.conditional ||
	    file_cache_fields(file, content_type, &text, &len, &fields, &count) != 0)
		return false;
	response_fields_prebuilt(res, text, len, fields, count);
	httpd_response_set_body_buffer(res, content, (size_t)httpd_file_stat(file)->st_size);
	res->memo = &file_cache_memo;
	res->memo_key = file;
	return true;
}

/* Validators, preconditions, ranges and the body, whichever way the file was opened. */
static int respond(const struct httpd_request *req, struct httpd_response *res, struct file_source *src,
                   const struct stat *st, const char *etag, const char *last_modified,
                   const char *content_type)
{
	struct byte_range ranges[RANGE_MAX];
	size_t count = 0;
	const char *range = httpd_request_header(req, "Range");

	/* The strings outlive the response (pool, cache entry, literal): no copies on this path. */
	if (response_header_push(res, "ETag", etag) < 0 ||
	    response_header_push(res, "Last-Modified", last_modified) < 0 ||
	    response_header_push(res, "Accept-Ranges", "bytes") < 0) {
		source_drop(src);
		return 500;
	}

	switch (preconditions_evaluate(req, etag, st->st_mtime)) {
	case PRE_NOT_MODIFIED:
		source_drop(src);
		httpd_response_set_status(res, 304);
		return HTTPD_OK;
	case PRE_FAILED:
		source_drop(src);
		return 412;
	case PRE_PASS:
		break;
	}

	if (range != NULL && req->method == HTTPD_METHOD_GET && if_range_holds(req, etag, st->st_mtime)) {
		switch (range_parse(range, (uint64_t)st->st_size, ranges, &count)) {
		case RANGE_OK:
			return respond_ranges(req, res, src, st, content_type, ranges, count);
		case RANGE_UNSATISFIABLE: {
			char *cr = httpd_pool_printf(req->pool, "bytes */%" PRIu64, (uint64_t)st->st_size);

			source_drop(src);
			response_error(res, 416, NULL, 0, NULL);
			if (cr == NULL || httpd_response_add_header(res, "Content-Range", cr) < 0)
				return 500;
			return HTTPD_OK;
		}
		case RANGE_IGNORE:
			break;
		}
	}
	if (httpd_response_add_header(res, "Content-Type", content_type) < 0) {
		source_drop(src);
		return 500;
	}
	source_body(res, src, 0, (uint64_t)st->st_size);
	return HTTPD_OK;
}

int httpd_respond_file(const struct httpd_request *req, struct httpd_response *res, int fd,
                       const struct stat *st, const char *content_type, const char *etag_suffix)
{
	struct file_source src = { .fd = fd, .owned = true };
	char *date = httpd_pool_alloc(req->pool, HTTPD_DATE_LEN);
	char *etag = etag_make(req->pool, st, etag_suffix);

	if (etag == NULL || date == NULL) {
		close(fd);
		return 500;
	}
	return respond(req, res, &src, st, etag, httpd_http_date(st->st_mtime, date), content_type);
}

int httpd_respond_cached_file(const struct httpd_request *req, struct httpd_response *res,
                              const struct httpd_file *file, const char *content_type,
                              const char *etag_suffix)
{
	const struct stat *st = httpd_file_stat(file);
	struct file_source src = { .fd = httpd_file_fd(file), .content = file_cache_content(file), .file = file };
	const char *etag;

	if (etag_suffix == NULL && respond_prebuilt(req, res, file, content_type))
		return HTTPD_OK;
	etag = etag_suffix ? etag_make(req->pool, st, etag_suffix) : file_cache_etag(file);
	if (etag == NULL)
		return 500;
	return respond(req, res, &src, st, etag, file_cache_last_modified(file), content_type);
}
