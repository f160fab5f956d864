/* The registration half of <httpd/module.h>: modules fill the core's hook table. */
#include "module.h"

#include <string.h>

#include "variable.h"

void httpd_module_name(struct httpd_module_api *api, const char *name)
{
	api->name = name;
}

void httpd_module_variable(struct httpd_module_api *api, const char *name, httpd_variable_fn fn)
{
	bool ok = name != NULL && fn != NULL && *name != '\0' && api->variable_count < HTTPD_MODULE_VARIABLES_MAX;

	for (const char *p = name; ok && *p != '\0'; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
	/* The server's own names ($host, $http_*, ...) stay the server's. */
	ok = ok && !variable_builtin(name, strlen(name));
	if (!ok) {
		api->variable_refused = true;   /* the loader says so, naming the module */
		return;
	}
	api->variables[api->variable_count].name = name;
	api->variables[api->variable_count++].fn = fn;
}

void httpd_module_options(struct httpd_module_api *api, const struct httpd_option *location_options)
{
	api->options = location_options;
}

void httpd_module_server_options(struct httpd_module_api *api, const struct httpd_option *server_options)
{
	api->server_options = server_options;
}

void httpd_hook_server_init(struct httpd_module_api *api, httpd_server_init_fn fn)
{
	api->server_init = fn;
}

void httpd_hook_server_exit(struct httpd_module_api *api, httpd_server_exit_fn fn)
{
	api->server_exit = fn;
}

void httpd_hook_configure(struct httpd_module_api *api, httpd_configure_fn fn)
{
	api->configure = fn;
}

void httpd_hook_release(struct httpd_module_api *api, httpd_release_fn fn)
{
	api->release = fn;
}

void httpd_hook_worker_init(struct httpd_module_api *api, httpd_worker_init_fn fn)
{
	api->worker_init = fn;
}

void httpd_hook_worker_exit(struct httpd_module_api *api, httpd_worker_exit_fn fn)
{
	api->worker_exit = fn;
}

void httpd_hook_check(struct httpd_module_api *api, httpd_check_fn fn)
{
	api->check = fn;
}

void httpd_hook_body_check(struct httpd_module_api *api, httpd_body_fn fn)
{
	api->body_check = fn;
}

void httpd_hook_handler(struct httpd_module_api *api, httpd_handler_fn fn, unsigned methods)
{
	api->handler = fn;
	api->methods = methods;
}

void httpd_hook_body(struct httpd_module_api *api, httpd_body_fn fn)
{
	api->body = fn;
}

void httpd_hook_filter(struct httpd_module_api *api, httpd_filter_fn fn)
{
	api->filter = fn;
}

void httpd_hook_log(struct httpd_module_api *api, httpd_log_fn fn)
{
	api->log = fn;
}

void httpd_hook_body_filter(struct httpd_module_api *api, httpd_body_filter_start_fn start,
                            httpd_body_filter_fn filter)
{
	api->body_filter_start = start;
	api->body_filter = filter;
}

void httpd_module_content_coding(struct httpd_module_api *api, const char *coding)
{
	api->coding = coding;
}
