/*
 * The br content coding (RFC 7932) with libbrotli's encoder: the body
 * filter the core starts when it chose br.  The window is 256 KiB at most
 * (lgwin 18), smaller for a small body, so memory per response stays
 * bounded however long the body is: 2.8 MiB at quality 5 (measured), tens
 * of MiB at qualities 7 to 9, whose hash tables are large.
 */
#include <brotli/encode.h>

#include "coding_stream.h"

#define BROTLI_WINDOW_BITS 18

static void *brotli_open(int level, int64_t size)
{
	BrotliEncoderState *s = BrotliEncoderCreateInstance(NULL, NULL, NULL);
	uint32_t lgwin = BROTLI_WINDOW_BITS;

	if (s == NULL)
		return NULL;
	/* A window no larger than the body (at least the format's smallest, 2^10). */
	while (size >= 0 && lgwin > BROTLI_MIN_WINDOW_BITS && ((int64_t)1 << (lgwin - 1)) >= size)
		lgwin--;
	if (!BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, (uint32_t)level) ||
	    !BrotliEncoderSetParameter(s, BROTLI_PARAM_LGWIN, lgwin) ||
	    (size > 0 && size <= UINT32_MAX && !BrotliEncoderSetParameter(s, BROTLI_PARAM_SIZE_HINT, (uint32_t)size))) {
		BrotliEncoderDestroyInstance(s);
		return NULL;
	}
	return s;
}

static int brotli_step(void *state, const uint8_t *in, size_t *in_len, uint8_t *out, size_t *out_len,
                       enum coding_mode mode)
{
	BrotliEncoderState *s = state;
	size_t avail_in = *in_len, avail_out = *out_len;
	const uint8_t *next_in = in;
	uint8_t *next_out = out;
	BrotliEncoderOperation op = mode == CODING_FINISH ? BROTLI_OPERATION_FINISH
	                          : mode == CODING_FLUSH ? BROTLI_OPERATION_FLUSH : BROTLI_OPERATION_PROCESS;

	if (!BrotliEncoderCompressStream(s, op, &avail_in, &next_in, &avail_out, &next_out, NULL))
		return -1;
	*in_len -= avail_in;
	*out_len -= avail_out;
	if (mode == CODING_FINISH)
		return BrotliEncoderIsFinished(s) ? 1 : 0;
	if (mode == CODING_FLUSH)
		return BrotliEncoderHasMoreOutput(s) ? 0 : 1;
	return 0;
}

static void brotli_close(void *state)
{
	BrotliEncoderDestroyInstance(state);
}

static const struct coding_ops brotli_ops = { "br", brotli_open, brotli_step, brotli_close };

CODING_MODULE("brotli", brotli_ops)
