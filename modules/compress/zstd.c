/*
 * The zstd content coding (RFC 8878) with libzstd: the body filter the
 * core starts when it chose zstd.  Memory per response is bounded whatever
 * the level: a window of 512 KiB at most (windowLog 19; RFC 9659 asks
 * decoders for 8 MiB) and match tables of 2^17 entries at most, about
 * 2 MiB in all (level 19 left to itself takes 90 MiB); a known body length
 * is pledged, so small bodies get small tables.  Contexts are kept for the
 * next response, reset between them.
 */
#include <zstd.h>

#include "coding_stream.h"

#define ZSTD_WINDOW_LOG 19
#define ZSTD_TABLE_LOG  17
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
	    /* Levels up to 4 have tables of 2^17 or less; above, they grow to 2^24 unless capped. */
	    (level > 4 && ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_hashLog, ZSTD_TABLE_LOG))) ||
	    (level > 4 && ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_chainLog, ZSTD_TABLE_LOG))) ||
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
