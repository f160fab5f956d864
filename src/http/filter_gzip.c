/*
 * The gzip filter: on-the-fly gzip (zlib) of any handler's response, per
 * location (gzip, gzip_level, gzip_min_length).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "config.h"
#include "filter_gzip.h"
#include "http_response.h"
#include "pool.h"

#define GZIP_IN_CHUNK 16384

struct gzip_stream {
	z_stream    z;
	bool        z_ready;
	int         fd;         /* file body, or -1 */
	bool        fd_owned;   /* false for the open-file cache's descriptors */
	off_t       offset;
	uint64_t    left;       /* input bytes not yet read */
	const char *buf;        /* buffer body */
	bool        finished;
	char        in[GZIP_IN_CHUNK];   /* last: only the fields before it are zeroed */
};

static void gzip_cleanup(void *arg)
{
	struct gzip_stream *gz = arg;

	if (gz->z_ready)
		deflateEnd(&gz->z);
	if (gz->fd >= 0 && gz->fd_owned)
		close(gz->fd);
}

static ssize_t gzip_read(void *ctx, char *out, size_t len)
{
	struct gzip_stream *gz = ctx;

	if (gz->finished)
		return 0;
	gz->z.next_out = (Bytef *)out;
	gz->z.avail_out = (uInt)len;
	while (gz->z.avail_out > 0) {
		int rc;

		if (gz->z.avail_in == 0 && gz->left > 0) {
			size_t want = gz->left < GZIP_IN_CHUNK ? (size_t)gz->left : GZIP_IN_CHUNK;

			if (gz->fd >= 0) {
				ssize_t got = pread(gz->fd, gz->in, want, gz->offset);

				if (got <= 0)
					return -1;
				gz->z.next_in = (Bytef *)gz->in;
				want = (size_t)got;
			} else {
				gz->z.next_in = (Bytef *)(uintptr_t)(gz->buf + gz->offset);
			}
			gz->z.avail_in = (uInt)want;
			gz->offset += (off_t)want;
			gz->left -= want;
		}
		rc = deflate(&gz->z, gz->left == 0 && gz->z.avail_in == 0 ? Z_FINISH : Z_NO_FLUSH);
		if (rc == Z_STREAM_END) {
			gz->finished = true;
			break;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -1;
	}
	return (ssize_t)(len - gz->z.avail_out);
}

/* Marks the entity tag weak: the compressed bytes depend on zlib, not only the file. */
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

int httpd_response_gzip(struct httpd_response *res, int level)
{
	struct gzip_stream *gz;

	if (res->status != 200 || (res->body != BODY_FILE && res->body != BODY_BUFFER))
		return 0;
	if (httpd_response_header(res, "Content-Encoding") != NULL)
		return 0;
	gz = pool_alloc(res->pool, sizeof(*gz));
	if (gz == NULL)
		return -1;
	memset(gz, 0, offsetof(struct gzip_stream, in));
	gz->fd = -1;
	/* windowBits 15 + 16: a gzip wrapper rather than raw zlib. */
	if (deflateInit2(&gz->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	gz->z_ready = true;
	if (httpd_pool_cleanup(res->pool, gzip_cleanup, gz) < 0) {
		deflateEnd(&gz->z);
		return -1;
	}
	if (res->body == BODY_FILE) {
		gz->fd = res->fd;
		gz->fd_owned = res->fd_owned;
		gz->offset = res->file_offset;
		gz->left = (uint64_t)res->file_len;
		res->fd = -1;   /* the stream owns it now */
	} else {
		gz->buf = res->buf;
		gz->left = res->buf_len;
	}
	res->body = BODY_NONE;
	httpd_response_set_body_stream(res, gzip_read, gz);
	if (httpd_response_add_header(res, "Content-Encoding", "gzip") < 0)
		return -1;
	return etag_weaken(res);
}

/* Vary: Accept-Encoding, once: caches must key on it whether or not this response was compressed. */
static int vary_add(struct httpd_response *res)
{
	const char *vary = httpd_response_header(res, "Vary");

	if (vary != NULL && strcasestr(vary, "Accept-Encoding") != NULL)
		return 0;
	if (vary == NULL)
		return httpd_response_add_header(res, "Vary", "Accept-Encoding");
	{
		char *both = httpd_pool_printf(res->pool, "%s, Accept-Encoding", vary);

		if (both == NULL)
			return -1;
		response_header_remove(res, "Vary");
		return httpd_response_add_header(res, "Vary", both);
	}
}

int gzip_filter(const struct httpd_location *loc, const struct httpd_request *req,
                struct httpd_response *res)
{
	const char *type;
	uint64_t length;

	if (!loc->gzip)
		return 0;
	type = httpd_response_header(res, "Content-Type");
	if (type == NULL || !httpd_mime_compressible(type))
		return 0;
	if (res->status != 200 && res->status != 206 && res->status != 304)
		return 0;
	if (vary_add(res) < 0)
		return -1;
	/* Compress whole 200 bodies only: a range of a gzip stream is not a range of the file. */
	if (res->status != 200 || httpd_response_header(res, "Content-Encoding") != NULL ||
	    httpd_request_header(req, "Range") != NULL || !httpd_request_accepts_encoding(req, "gzip"))
		return 0;
	switch (res->body) {
	case BODY_BUFFER: length = res->buf_len; break;
	case BODY_FILE:   length = (uint64_t)res->file_len; break;
	default:          return 0;
	}
	if (length < loc->gzip_min_length)
		return 0;
	return httpd_response_gzip(res, loc->gzip_level);
}
