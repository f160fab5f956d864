/*
 * A module for the test suite only (never installed): misbehaves on demand
 * so the master's supervision can be tested.
 *   fail_init = true      worker_init fails, so every worker dies at once
 *   crash_path = "/crash" a request for this path kills the worker (abort)
 * and answers, whatever the options:
 *   /stream      a streamed body of five lines (chunked on 1.1)
 *   /status/NNN  status NNN with a body (the core must drop it for 204/304)
 *   /body        the request body, as received and decoded
 * As a check module (check = {"testmod"}): X-Deny refuses with 403,
 * X-Answer answers from the check phase, anything else goes on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <httpd/module.h>

struct testmod_conf {
	int  fail_init;
	char crash_path[256];
};

static cfg_opt_t testmod_options[] = {
	CFG_BOOL("fail_init", cfg_false, CFGF_NONE),
	CFG_STR("crash_path", "", CFGF_NONE),
	CFG_END()
};

static int testmod_configure(const struct httpd_location *loc, cfg_t *opts, void **data,
                             char *err, size_t errlen)
{
	struct testmod_conf *conf = calloc(1, sizeof(*conf));

	(void)loc;
	(void)err;
	(void)errlen;
	if (conf == NULL)
		return -1;
	conf->fail_init = cfg_getbool(opts, "fail_init");
	strncpy(conf->crash_path, cfg_getstr(opts, "crash_path"), sizeof(conf->crash_path) - 1);
	*data = conf;
	return 0;
}

static void testmod_release(void *data)
{
	free(data);
}

static int testmod_worker_init(void *data)
{
	struct testmod_conf *conf = data;

	return conf->fail_init ? -1 : 0;
}

struct stream_state {
	int line;
};

static ssize_t stream_lines(void *ctx, char *buf, size_t len)
{
	struct stream_state *st = ctx;
	int n;

	if (st->line >= 5)
		return 0;
	n = snprintf(buf, len, "line %d\n", st->line++);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

static int testmod_handle(void *data, const struct httpd_request *req, struct httpd_response *res)
{
	struct testmod_conf *conf = data;
	static const char body[] = "testmod\n";

	if (conf->crash_path[0] != '\0' && strcmp(req->path, conf->crash_path) == 0)
		abort();
	if (strcmp(req->path_rest, "/stream") == 0) {
		struct stream_state *st = httpd_pool_alloc(req->pool, sizeof(*st));

		if (st == NULL)
			return 500;
		st->line = 0;
		httpd_response_add_header(res, "Content-Type", "text/plain");
		httpd_response_set_body_stream(res, stream_lines, st);
		return HTTPD_OK;
	}
	if (strncmp(req->path_rest, "/status/", 8) == 0) {
		httpd_response_set_status(res, atoi(req->path_rest + 8));
		httpd_response_set_body_buffer(res, "should-not-be-sent", 18);
		return HTTPD_OK;
	}
	if (strcmp(req->path_rest, "/body") == 0) {
		httpd_response_add_header(res, "Content-Type", "application/octet-stream");
		httpd_response_set_body_buffer(res, req->body ? req->body : "", req->body_len);
		return HTTPD_OK;
	}
	httpd_response_add_header(res, "Content-Type", "text/plain");
	httpd_response_set_body_buffer(res, body, sizeof(body) - 1);
	return HTTPD_OK;
}

static int testmod_check(void *data, const struct httpd_request *req, struct httpd_response *res)
{
	static const char body[] = "answered by the check phase\n";

	(void)data;
	if (httpd_request_header(req, "X-Deny") != NULL)
		return 403;
	if (httpd_request_header(req, "X-Answer") != NULL) {
		httpd_response_set_status(res, 200);
		httpd_response_set_body_buffer(res, body, sizeof(body) - 1);
		return HTTPD_OK;
	}
	return HTTPD_DECLINED;
}

HTTPD_MODULE_EXPORT = {
	.abi = HTTPD_MODULE_ABI,
	.name = "testmod",
	.methods = HTTPD_METHOD_GET | HTTPD_METHOD_HEAD | HTTPD_METHOD_POST,
	.options = testmod_options,
	.configure = testmod_configure,
	.release = testmod_release,
	.worker_init = testmod_worker_init,
	.check = testmod_check,
	.handle = testmod_handle,
};
