/*
 * The zstd content coding (RFC 8878) with libzstd: the body filter the
 * core starts when it chose zstd.  The window is at most 1 MiB (windowLog
 * 20; RFC 9659 asks decoders for 8 MiB, browsers enforce it), and a known
 * body length is pledged so small bodies get small tables.  Contexts are
 * kept for the next response, reset between them.
 */
#include <zstd.h>

#include "coding_stream.h"

#define ZSTD_WINDOW_LOG 20
#define ZSTD_SPARE 4

static ZSTD_CCtx *spare[ZSTD_SPARE];
static size_t spare_count;

static void *zstd_open(int level, int64_t size)
{
	ZSTD_CCtx *z = spare_count > 0 ? spare[--spare_count] : ZSTD_createCCtx();

	if (z == NULL)
		return NULL;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, ZSTD_WINDOW_LOG)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1)) ||
	    (size >= 0 && ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(z, (unsigned long long)size)))) {
		ZSTD_freeCCtx(z);
		return NULL;
	}
	return z;
}

static int zstd_step(void *state, const uint8_t *in, size_t *in_len, uint8_t *out, size_t *out_len,
                     enum coding_mode mode)
{
	ZSTD_inBuffer ib = { in, *in_len, 0 };
	ZSTD_outBuffer ob = { out, *out_len, 0 };
	size_t left = ZSTD_compressStream2(state, &ob, &ib, mode == CODING_FINISH ? ZSTD_e_end
	                                                 : mode == CODING_FLUSH ? ZSTD_e_flush : ZSTD_e_continue);

	if (ZSTD_isError(left))
		return -1;
	*in_len = ib.pos;
	*out_len = ob.pos;
	return mode != CODING_RUN && left == 0 ? 1 : 0;
}

static void zstd_close(void *state)
{
	ZSTD_CCtx *z = state;

	if (spare_count < ZSTD_SPARE && !ZSTD_isError(ZSTD_CCtx_reset(z, ZSTD_reset_session_and_parameters))) {
		spare[spare_count++] = z;
		return;
	}
	ZSTD_freeCCtx(z);
}

static const struct coding_ops zstd_ops = { "zstd", zstd_open, zstd_step, zstd_close };

CODING_MODULE("zstd", zstd_ops)
