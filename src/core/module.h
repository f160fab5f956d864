/* Loading modules with dlopen(): the ABI check and the core-owned hook table. */
#ifndef HTTPD_MODULE_LOADER_H
#define HTTPD_MODULE_LOADER_H

#include <stddef.h>

#include <stdbool.h>

#include "httpd/module.h"

#define HTTPD_MODULE_VARIABLES_MAX 16

/*
 * What a module registered.  The core owns this table: a hook added in a
 * later release is one more field here, and a module built before it
 * simply leaves it NULL.
 */
struct httpd_module_api {
	const char                *name;
	const struct httpd_option *options;         /* location options */
	const struct httpd_option *server_options;  /* top-level options */
	unsigned                   methods;         /* what handler accepts */
	httpd_server_init_fn       server_init;
	httpd_server_exit_fn       server_exit;
	httpd_configure_fn         configure;
	httpd_release_fn           release;
	httpd_worker_init_fn       worker_init;
	httpd_worker_exit_fn       worker_exit;
	httpd_check_fn             check;
	httpd_body_fn              body_check;
	httpd_handler_fn           handler;
	httpd_body_fn              body;
	httpd_filter_fn            filter;
	httpd_log_fn               log;
	/* minor 2 */
	struct { const char *name; httpd_variable_fn fn; } variables[HTTPD_MODULE_VARIABLES_MAX];
	size_t                     variable_count;
	bool                       variable_refused;   /* a bad name, or too many */
	/* minor 3 */
	httpd_body_filter_start_fn body_filter_start;
	httpd_body_filter_fn       body_filter;
	const char                *coding;            /* the content coding its body filter makes, or NULL */
};

struct module {
	char                    *name;
	char                    *path;
	void                    *handle;
	unsigned                 abi_minor;   /* what it was built against: the layout of its option tables */
	struct httpd_module_api  api;
	struct module           *next;
};

/*
 * Loads dir/name.so, or returns the copy loaded before.  Refuses names that
 * are not [a-z0-9_-]+, files that are not modules, and modules built for
 * another ABI (naming both versions; ABI 1 modules are recognised by their
 * old descriptor) or for a newer minor version of ABI 2 than this server's.  NULL with a reason in err.
 */
const struct module *module_load(const char *dir, const char *name, char *err, size_t errlen);
/* Every module loaded so far, newest first. */
const struct module *module_first(void);
/* The loaded module called name, or NULL. */
const struct module *module_find(const char *name);
void module_unload_all(void);

#endif
