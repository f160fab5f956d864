/* Loading handler modules with dlopen(). */
#ifndef HTTPD_MODULE_LOADER_H
#define HTTPD_MODULE_LOADER_H

#include <stddef.h>

#include "httpd/module.h"

struct module {
	char                      *name;
	char                      *path;
	void                      *handle;
	const struct httpd_module *desc;
	struct module             *next;
};

/*
 * Loads dir/name.so, or returns the copy loaded before.  Refuses names that
 * are not [a-z0-9_-]+, files without the httpd_module symbol, and modules
 * built for another ABI.  NULL with a reason in err.
 */
const struct module *module_load(const char *dir, const char *name, char *err, size_t errlen);
void module_unload_all(void);

#endif
