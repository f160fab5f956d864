/* A module claiming a future ABI: the loader must refuse it by name and version. */
#include <httpd/module.h>

__attribute__((visibility("default"))) const unsigned httpd_module_abi = HTTPD_MODULE_ABI + 998;

__attribute__((visibility("default"))) int httpd_module_init(struct httpd_module_api *api);
int httpd_module_init(struct httpd_module_api *api)
{
	httpd_module_name(api, "badabi");
	return 0;
}
