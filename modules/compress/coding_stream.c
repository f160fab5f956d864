#include "coding_stream.h"

#include <stdbool.h>
#include <string.h>

#define CODING_IN  16384
#define CODING_OUT 16384

struct coding_stream {
	const struct coding_ops *ops;
	void                    *state;
	struct httpd_request    *req;
	size_t                   in_off, in_len;
	bool                     in_ended;    /* the body's end was read */
	bool                     unflushed;   /* input went in since the last flush */
	bool                     finished;
	uint8_t                  in[CODING_IN];
	uint8_t                  out[CODING_OUT];
};

static void coding_stream_close(void *arg)
{
	struct coding_stream *cs = arg;

	cs->ops->close(cs->state);
}

int coding_stream_start(const struct coding_ops *ops, struct httpd_request *req, struct httpd_response *res,
                        void **ctx)
{
	struct coding_stream *cs = httpd_pool_alloc(req->pool, sizeof(*cs));
	int level = 0;

	if (cs == NULL)
		return 500;
	memset(cs, 0, offsetof(struct coding_stream, in));
	cs->ops = ops;
	cs->req = req;
	(void)httpd_response_coding(res, &level);
	cs->state = ops->open(level, httpd_response_body_length(res));
	if (cs->state == NULL) {
		httpd_log_request(HTTPD_LOG_ERR, req, "%s: cannot start compressing (out of memory)", ops->coding);
		return 500;
	}
	if (httpd_pool_cleanup(req->pool, coding_stream_close, cs) < 0) {
		ops->close(cs->state);
		return 500;
	}
	*ctx = cs;
	return HTTPD_OK;
}

int coding_stream_filter(void *ctx, struct httpd_body *in, struct httpd_chunk *out, size_t max)
{
	struct coding_stream *cs = ctx;
	size_t room = max < CODING_OUT ? max : CODING_OUT, made = 0;

	while (!cs->finished && made < room) {
		enum coding_mode mode = CODING_RUN;
		size_t in_len, out_len;
		int rc;

		if (cs->in_off == cs->in_len && !cs->in_ended) {
			ssize_t n = httpd_body_read(in, cs->in, sizeof(cs->in));

			if (n == HTTPD_STREAM_AGAIN) {
				/* Nothing more for now: what went in goes out, so a slow source still reaches the client. */
				if (made > 0)
					break;
				if (!cs->unflushed)
					return HTTPD_STREAM_AGAIN;
				mode = CODING_FLUSH;
			} else if (n < 0) {
				return -1;
			} else if (n == 0) {
				cs->in_ended = true;
			} else {
				cs->in_off = 0;
				cs->in_len = (size_t)n;
				cs->unflushed = true;
			}
		}
		if (cs->in_ended && cs->in_off == cs->in_len)
			mode = CODING_FINISH;
		in_len = cs->in_len - cs->in_off;
		out_len = room - made;
		rc = cs->ops->step(cs->state, cs->in + cs->in_off, &in_len, cs->out + made, &out_len, mode);
		if (rc < 0) {
			httpd_log_request(HTTPD_LOG_ERR, cs->req, "%s: the compressor failed", cs->ops->coding);
			return -1;
		}
		cs->in_off += in_len;
		made += out_len;
		if (rc == 1 && mode == CODING_FINISH)
			cs->finished = true;
		if (rc == 1 && mode == CODING_FLUSH) {
			cs->unflushed = false;
			if (made == 0)
				return HTTPD_STREAM_AGAIN;
			break;
		}
	}
	if (made == 0)
		return 0;   /* finished, all given */
	*out = (struct httpd_chunk){ cs->out, made, -1, 0 };
	return 1;
}
