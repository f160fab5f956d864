/*
 * hello: an example third-party module for prefork-httpd.
 * Answers every GET with a configurable greeting.
 *
 *   cc $(pkg-config --cflags httpd-module) -shared -fPIC -o hello.so hello.c
 *
 *   location "/hello" {
 *       handler  = "hello"
 *       greeting = "Hello from a drop-in module"
 *   }
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <httpd/module.h>

struct hello_conf {
	char *greeting;
};

static cfg_opt_t hello_options[] = {
	CFG_STR("greeting", "Hello, world!", CFGF_NONE),
	CFG_END()
};

static int hello_configure(const struct httpd_location *loc, cfg_t *opts, void **data,
                           char *err, size_t errlen)
{
	struct hello_conf *conf = calloc(1, sizeof(*conf));

	(void)loc;
	if (conf == NULL || (conf->greeting = strdup(cfg_getstr(opts, "greeting"))) == NULL) {
		free(conf);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*data = conf;
	return 0;
}

static void hello_release(void *data)
{
	struct hello_conf *conf = data;

	free(conf->greeting);
	free(conf);
}

static int hello_handle(void *data, const struct httpd_request *req, struct httpd_response *res)
{
	struct hello_conf *conf = data;
	char *body = httpd_pool_printf(req->pool, "%s\n", conf->greeting);

	if (body == NULL)
		return 500;
	httpd_response_add_header(res, "Content-Type", "text/plain; charset=utf-8");
	httpd_response_set_body_buffer(res, body, strlen(body));
	return HTTPD_OK;
}

HTTPD_MODULE_EXPORT = {
	.abi = HTTPD_MODULE_ABI,
	.name = "hello",
	.methods = HTTPD_METHOD_GET | HTTPD_METHOD_HEAD,
	.options = hello_options,
	.configure = hello_configure,
	.release = hello_release,
	.handle = hello_handle,
};
