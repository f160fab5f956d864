/* Body filters: the chain each response body may go through (httpd_hook_body_filter). */
#include "body_filter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"

#define SOURCE_STREAM_PIECE 16384

/* The response's body as the chain's first link. */
static struct httpd_body *source_take(struct httpd_request *req, struct httpd_response *res)
{
	struct httpd_body *src = pool_alloc(res->pool, sizeof(*src));

	if (src == NULL)
		return NULL;
	memset(src, 0, sizeof(*src));
	src->req = req;
	src->kind = res->body;
	src->fd = -1;
	switch (res->body) {
	case BODY_BUFFER:
		src->buf = res->buf;
		src->len = res->buf_len;
		break;
	case BODY_FILE:
		/* An owned file is closed with the pool (httpd_response_set_body_file), a cached one by its cache. */
		src->fd = res->fd;
		src->offset = res->file_offset;
		src->len = (uint64_t)res->file_len;
		res->fd = -1;
		break;
	case BODY_STREAM:
		src->stream = res->stream;
		src->stream_ctx = res->stream_ctx;
		break;
	default:
		src->ended = true;
		break;
	}
	res->body = BODY_STREAM;   /* to the framing code: no length, chunked on HTTP/1.1 */
	res->stream = NULL;
	res->stream_ctx = NULL;
	return src;
}

int body_chain_add(struct httpd_request *req, struct httpd_response *res, httpd_body_filter_fn filter, void *ctx,
                   const char *module)
{
	struct httpd_body *link;

	if (res->chain == NULL && (res->chain = source_take(req, res)) == NULL)
		return -1;
	link = pool_alloc(res->pool, sizeof(*link));
	if (link == NULL)
		return -1;
	memset(link, 0, sizeof(*link));
	link->prev = res->chain;
	link->filter = filter;
	link->ctx = ctx;
	link->module = module;
	link->req = req;
	link->fd = -1;
	res->chain = link;
	res->memo = NULL;
	return 0;
}

static int source_pull(struct httpd_body *src, struct httpd_chunk *chunk, size_t max)
{
	uint64_t left = src->len - src->done;
	size_t n = left < max ? (size_t)left : max;

	if (src->ended)
		return 0;
	switch (src->kind) {
	case BODY_BUFFER:
		if (n == 0)
			break;
		*chunk = (struct httpd_chunk){ src->buf + src->done, n, -1, 0 };
		src->done += n;
		return 1;
	case BODY_FILE:
		if (n == 0)
			break;
		*chunk = (struct httpd_chunk){ NULL, n, src->fd, src->offset + (off_t)src->done };
		src->done += n;
		return 1;
	case BODY_STREAM: {
		ssize_t got;

		if (src->scratch == NULL && (src->scratch = pool_alloc(src->req->pool, SOURCE_STREAM_PIECE)) == NULL)
			return -1;
		got = src->stream(src->stream_ctx, src->scratch, max < SOURCE_STREAM_PIECE ? max : SOURCE_STREAM_PIECE);
		if (got == HTTPD_STREAM_AGAIN)
			return HTTPD_STREAM_AGAIN;
		if (got < 0 || (size_t)got > max) {
			httpd_log_request(HTTPD_LOG_ERR, src->req, "the module's streamed body failed");
			return -1;
		}
		if (got == 0)
			break;
		*chunk = (struct httpd_chunk){ src->scratch, (size_t)got, -1, 0 };
		return 1;
	}
	default:
		break;
	}
	src->ended = true;
	return 0;
}

int httpd_body_pull(struct httpd_body *in, struct httpd_chunk *chunk, size_t max)
{
	int rc;

	if (in == NULL || chunk == NULL || max == 0)
		return -1;
	if (in->filter == NULL)
		return source_pull(in, chunk, max);
	if (in->ended)
		return 0;
	rc = in->filter(in->ctx, in->prev, chunk, max);
	if (rc == 0) {
		in->ended = true;
	} else if (rc == 1) {
		if (chunk->len == 0 || chunk->len > max || (chunk->data == NULL && chunk->fd < 0)) {
			httpd_log_request(HTTPD_LOG_ERR, in->req, "body filter of module %s gave a bad chunk (%zu bytes)",
			                  in->module, chunk->len);
			return -1;
		}
	} else if (rc != HTTPD_STREAM_AGAIN) {
		if (rc != -1)
			httpd_log_request(HTTPD_LOG_ERR, in->req, "body filter of module %s returned %d", in->module, rc);
		return -1;
	}
	return rc;
}

int body_chunk_copy(const struct httpd_request *req, const struct httpd_chunk *chunk, void *buf)
{
	ssize_t got;

	if (chunk->data != NULL) {
		memcpy(buf, chunk->data, chunk->len);
		return 0;
	}
	got = pread(chunk->fd, buf, chunk->len, chunk->offset);
	if (got != (ssize_t)chunk->len) {
		httpd_log_request(HTTPD_LOG_ERR, req, "reading the body's file: %s",
		                  got < 0 ? strerror(errno) : "the file was truncated");
		return -1;
	}
	return 0;
}

ssize_t httpd_body_read(struct httpd_body *in, void *buf, size_t len)
{
	struct httpd_chunk c;
	int rc = httpd_body_pull(in, &c, len);

	if (rc != 1)
		return rc;
	return body_chunk_copy(in->req, &c, buf) < 0 ? -1 : (ssize_t)c.len;
}

int body_copy_append(struct body_copy *copy, const void *data, size_t len, size_t limit)
{
	if (len > limit - copy->len)
		return -1;
	if (copy->len + len > copy->cap) {
		size_t cap = copy->cap ? copy->cap : 16384;
		char *grown;

		while (cap < copy->len + len)
			cap *= 2;
		if ((grown = realloc(copy->buf, cap)) == NULL)
			return -1;
		copy->buf = grown;
		copy->cap = cap;
	}
	memcpy(copy->buf + copy->len, data, len);
	copy->len += len;
	return 0;
}

int body_chain_pull(struct httpd_response *res, struct httpd_chunk *chunk, size_t max)
{
	return httpd_body_pull(res->chain, chunk, max);
}

int body_chain_collect(struct httpd_response *res, size_t limit, char **out, size_t *len)
{
	struct body_copy copy = { NULL, 0, 0 };

	for (;;) {
		struct httpd_chunk c;
		int rc = body_chain_pull(res, &c, 16384);

		if (rc == 0)
			break;
		if (rc != 1 || c.data == NULL || body_copy_append(&copy, c.data, c.len, limit) < 0) {
			free(copy.buf);
			return -1;
		}
	}
	/* An empty body is a buffer too, for the caller to free. */
	if (copy.buf == NULL && (copy.buf = malloc(1)) == NULL)
		return -1;
	*out = copy.buf;
	*len = copy.len;
	return 0;
}
