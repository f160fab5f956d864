/*
 * The gzip content coding (RFC 9110 §8.4.1.3) with zlib: the body filter
 * the core starts when it chose gzip for a response (compress, or its
 * shorthand gzip = true).  Streams are kept for the next response at the
 * same level (deflateReset), so a busy worker does not allocate zlib's
 * 256 KiB of state per request.
 */
#include <stdlib.h>
#include <zlib.h>

#include "coding_stream.h"

#define GZIP_SPARE 4   /* streams a worker keeps for reuse */

struct gzip_state {
	z_stream z;
	int      level;
};

static struct gzip_state *spare[GZIP_SPARE];
static size_t spare_count;

static void *gzip_open(int level, int64_t size)
{
	struct gzip_state *g;

	(void)size;
	for (size_t i = 0; i < spare_count; i++) {
		if (spare[i]->level == level) {
			g = spare[i];
			spare[i] = spare[--spare_count];
			return g;
		}
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	/* windowBits 15 + 16: the gzip wrapper, not raw zlib; memLevel 8 is zlib's default. */
	if (deflateInit2(&g->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(g);
		return NULL;
	}
	g->level = level;
	return g;
}

static int gzip_step(void *state, const uint8_t *in, size_t *in_len, uint8_t *out, size_t *out_len,
                     enum coding_mode mode)
{
	struct gzip_state *g = state;
	int rc;

	g->z.next_in = (Bytef *)(uintptr_t)in;
	g->z.avail_in = (uInt)*in_len;
	g->z.next_out = out;
	g->z.avail_out = (uInt)*out_len;
	rc = deflate(&g->z, mode == CODING_FINISH ? Z_FINISH : mode == CODING_FLUSH ? Z_SYNC_FLUSH : Z_NO_FLUSH);
	*in_len -= g->z.avail_in;
	*out_len -= g->z.avail_out;
	if (rc == Z_STREAM_END)
		return 1;
	if (rc != Z_OK && rc != Z_BUF_ERROR)
		return -1;
	/* A sync flush is complete when it left room in the output. */
	return mode == CODING_FLUSH && g->z.avail_out > 0 ? 1 : 0;
}

static void gzip_close(void *state)
{
	struct gzip_state *g = state;

	if (spare_count < GZIP_SPARE && deflateReset(&g->z) == Z_OK) {
		spare[spare_count++] = g;
		return;
	}
	deflateEnd(&g->z);
	free(g);
}

static const struct coding_ops gzip_ops = { "gzip", gzip_open, gzip_step, gzip_close };

CODING_MODULE("gzip", gzip_ops)
