/*
 * health: liveness and readiness for load balancers and orchestrators.
 *
 *   location "/healthz" { handler = "health" }                answers 200 while it can answer at all
 *   location "/readyz"  { handler = "health"  ready = true }  503 as soon as a stop or drain begins
 *
 * A worker answers only while the master lives (workers die with it), so a
 * 200 from /healthz means the master and at least one worker run.  /readyz
 * turns 503 the moment the worker learns the server is going away (SIGTERM
 * or SIGQUIT with shutdown_delay, a graceful stop, a reload retiring it)
 * while every other location keeps serving: a balancer stops sending before
 * any connection is refused.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <httpd/module.h>

struct health_conf {
	bool ready;
};

static const struct httpd_option health_options[] = {
	HTTPD_OPTION_BOOL("ready", "false"),
	HTTPD_OPTION_END
};

static int health_configure(const struct httpd_location *loc, const struct httpd_conf *opts,
                            void **data, char *err, size_t errlen)
{
	struct health_conf *conf = calloc(1, sizeof(*conf));

	(void)loc;
	(void)err;
	(void)errlen;
	if (conf == NULL)
		return -1;
	conf->ready = httpd_conf_bool(opts, "ready");
	*data = conf;
	return 0;
}

static void health_release(void *data)
{
	free(data);
}

static int health_handle(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct health_conf *conf = data;
	bool draining = conf->ready && httpd_server_draining();
	const char *body = draining ? "draining\n" : "ok\n";

	(void)req;
	/* A probe's answer must never come from a cache. */
	if (httpd_response_add_header(res, "Content-Type", "text/plain") < 0 ||
	    httpd_response_add_header(res, "Cache-Control", "no-store") < 0)
		return 500;
	if (draining) {
		httpd_response_set_status(res, 503);
		if (httpd_response_add_header(res, "Retry-After", "5") < 0)
			return 500;
	}
	httpd_response_set_body_buffer(res, body, strlen(body));
	return HTTPD_OK;
}

static int health_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "health");
	httpd_module_options(api, health_options);
	httpd_hook_configure(api, health_configure);
	httpd_hook_release(api, health_release);
	httpd_hook_handler(api, health_handle, HTTPD_METHOD_GET | HTTPD_METHOD_HEAD);
	return 0;
}

HTTPD_MODULE(health_register)
