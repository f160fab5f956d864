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

static const struct httpd_option hello_options[] = {
	HTTPD_OPTION_STR("greeting", "Hello, world!"),
	HTTPD_OPTION_END
};

static int hello_configure(const struct httpd_location *loc, const struct httpd_conf *opts,
                           void **data, char *err, size_t errlen)
{
	struct hello_conf *conf = calloc(1, sizeof(*conf));

	(void)loc;
	if (conf == NULL || (conf->greeting = strdup(httpd_conf_str(opts, "greeting"))) == NULL) {
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

static int hello_handle(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct hello_conf *conf = data;
	char *body = httpd_pool_printf(req->pool, "%s\n", conf->greeting);

	if (body == NULL)
		return 500;
	if (httpd_response_add_header(res, "Content-Type", "text/plain; charset=utf-8") < 0)
		return 500;
	httpd_response_set_body_buffer(res, body, strlen(body));
	return HTTPD_OK;
}

/* The core owns the hook table: register only what the module uses. */
static int hello_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "hello");
	httpd_module_options(api, hello_options);
	httpd_hook_configure(api, hello_configure);
	httpd_hook_release(api, hello_release);
	httpd_hook_handler(api, hello_handle, HTTPD_METHOD_GET | HTTPD_METHOD_HEAD);
	return 0;
}

HTTPD_MODULE(hello_register)
