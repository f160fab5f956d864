/* A module claiming a future ABI: the loader must refuse it by name and version. */
#include <httpd/module.h>

static int badabi_handle(void *data, const struct httpd_request *req, struct httpd_response *res)
{
	(void)data;
	(void)req;
	(void)res;
	return 500;
}

HTTPD_MODULE_EXPORT = {
	.abi = HTTPD_MODULE_ABI + 998,
	.name = "badabi",
	.methods = HTTPD_METHOD_GET,
	.handle = badabi_handle,
};
