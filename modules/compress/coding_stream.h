/*
 * What every coding module shares: the body filter that pulls the body,
 * feeds it to a compression library and hands on what comes out, flushing
 * when the source has nothing more for now (a proxied stream reaches the
 * client as it arrives) and finishing at its end.  Each module supplies
 * its library as a struct coding_ops.  Memory is constant per response:
 * one input and one output buffer and the library's bounded window.
 */
#ifndef HTTPD_CODING_STREAM_H
#define HTTPD_CODING_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <httpd/module.h>

enum coding_mode { CODING_RUN, CODING_FLUSH, CODING_FINISH };

struct coding_ops {
	const char *coding;   /* "gzip", "br", "zstd" */
	/* A new stream at level for a body of size bytes (-1: unknown): its state, or NULL. */
	void *(*open)(int level, int64_t size);
	/*
	 * Compresses what it can of in[0..*in_len) into out[0..*out_len), then
	 * sets both to the bytes consumed and made.  Returns 1 when a FLUSH or
	 * FINISH is complete (nothing of it is left to output), 0 to go on, -1
	 * on an error.
	 */
	int (*step)(void *state, const uint8_t *in, size_t *in_len, uint8_t *out, size_t *out_len,
	            enum coding_mode mode);
	void (*close)(void *state);
};

/* The body filter's start and filter functions, for ops. */
int coding_stream_start(const struct coding_ops *ops, struct httpd_request *req, struct httpd_response *res,
                        void **ctx);
int coding_stream_filter(void *ctx, struct httpd_body *in, struct httpd_chunk *out, size_t max);

/* A coding module: its name, and the ops whose coding its body filter makes. */
#define CODING_MODULE(module, ops)                                                                   \
	static int coding_start(void *data, struct httpd_request *req, struct httpd_response *res,       \
	                        void **ctx)                                                              \
	{                                                                                                \
		(void)data;                                                                              \
		return coding_stream_start(&(ops), req, res, ctx);                                       \
	}                                                                                                \
	static int coding_register(struct httpd_module_api *api)                                         \
	{                                                                                                \
		httpd_module_name(api, (module));                                                        \
		httpd_module_content_coding(api, (ops).coding);                                          \
		httpd_hook_body_filter(api, coding_start, coding_stream_filter);                         \
		return 0;                                                                                \
	}                                                                                                \
	HTTPD_MODULE(coding_register)

#endif
