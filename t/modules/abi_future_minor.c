/* A module built against a newer minor version of ABI 2 than this server's: refused, naming both. */
#include <httpd/module.h>

__attribute__((visibility("default"))) const unsigned httpd_module_abi = HTTPD_MODULE_ABI;
__attribute__((visibility("default"))) const unsigned httpd_module_abi_minor = HTTPD_MODULE_ABI_MINOR + 1;

__attribute__((visibility("default"))) int httpd_module_init(struct httpd_module_api *api);
int httpd_module_init(struct httpd_module_api *api)
{
	httpd_module_name(api, "abi_future_minor");
	return 0;
}
