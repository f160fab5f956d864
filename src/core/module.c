#include "module.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loaded once per master and kept: a reload reuses the same code. */
static struct module *loaded;

/* ABI 1 modules exported a descriptor whose first field was the ABI number. */
#define ABI1_SYMBOL "httpd_module"

static int name_valid(const char *name)
{
	if (*name == '\0' || strlen(name) > 64)
		return 0;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

/* The ABI the module was built for, or 0 if it is not a prefork-httpd module. */
static unsigned abi_of(void *handle)
{
	const unsigned *abi = dlsym(handle, HTTPD_MODULE_ABI_SYMBOL);

	if (abi == NULL)
		abi = dlsym(handle, ABI1_SYMBOL);
	return abi != NULL ? *abi : 0;
}

static int module_register(void *handle, struct httpd_module_api *api, const char *path,
                           const char *name, char *err, size_t errlen)
{
	httpd_module_init_fn init;

	*(void **)&init = dlsym(handle, HTTPD_MODULE_INIT_SYMBOL);
	if (init == NULL) {
		snprintf(err, errlen, "%s: no \"%s\" function; build it with HTTPD_MODULE()", path,
		         HTTPD_MODULE_INIT_SYMBOL);
		return -1;
	}
	memset(api, 0, sizeof(*api));
	if (init(api) != 0) {
		snprintf(err, errlen, "%s: the module's registration failed", path);
		return -1;
	}
	if (api->name == NULL || strcmp(api->name, name) != 0) {
		snprintf(err, errlen, "%s: module calls itself \"%s\", expected \"%s\"", path,
		         api->name ? api->name : "(null)", name);
		return -1;
	}
	if (api->variable_refused) {
		snprintf(err, errlen, "%s: a variable must be named [a-z0-9_], not as one of the server's, at most %d per module", path,
		         HTTPD_MODULE_VARIABLES_MAX);
		return -1;
	}
	for (const struct module *m = loaded; m != NULL; m = m->next)
		for (size_t i = 0; i < api->variable_count; i++)
			for (size_t j = 0; j < m->api.variable_count; j++)
				if (strcmp(api->variables[i].name, m->api.variables[j].name) == 0) {
					snprintf(err, errlen, "%s: variable $%s is module \"%s\"'s already", path,
					         api->variables[i].name, m->name);
					return -1;
				}
	if (api->handler == NULL && api->check == NULL && api->body_check == NULL &&
	    api->filter == NULL && api->log == NULL && api->body_filter == NULL) {
		snprintf(err, errlen, "%s: module registers no handler, check, filter, body filter or log hook", path);
		return -1;
	}
	if ((api->body_filter == NULL) != (api->body_filter_start == NULL) ||
	    (api->coding != NULL && api->body_filter == NULL)) {
		snprintf(err, errlen, "%s: a body filter needs both its start and filter functions, and a content "
		         "coding needs a body filter", path);
		return -1;
	}
	return 0;
}

const struct module *module_load(const char *dir, const char *name, char *err, size_t errlen)
{
	struct module *m;
	char path[4096];
	void *handle;
	unsigned abi, minor_of;

	if (!name_valid(name)) {
		snprintf(err, errlen, "module name \"%s\" must be lower-case letters, digits, '_' or '-'", name);
		return NULL;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.so", dir, name) >= sizeof(path)) {
		snprintf(err, errlen, "module path for \"%s\" is too long", name);
		return NULL;
	}
	for (m = loaded; m != NULL; m = m->next)
		if (strcmp(m->path, path) == 0)
			return m;

	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		snprintf(err, errlen, "cannot load module \"%s\": %s", name, dlerror());
		return NULL;
	}
	abi = abi_of(handle);
	if (abi == 0) {
		snprintf(err, errlen, "%s: no \"%s\" symbol, not a prefork-httpd module", path,
		         HTTPD_MODULE_ABI_SYMBOL);
		goto fail;
	}
	if (abi != HTTPD_MODULE_ABI) {
		snprintf(err, errlen, "%s: module ABI version %u, this server needs %u; rebuild the module",
		         path, abi, HTTPD_MODULE_ABI);
		goto fail;
	}
	{
		const unsigned *minor = dlsym(handle, HTTPD_MODULE_ABI_MINOR_SYMBOL);

		/* Built before minor versions existed: minor 0. */
		minor_of = minor != NULL ? *minor : 0;
	}
	if (minor_of > HTTPD_MODULE_ABI_MINOR) {
		snprintf(err, errlen, "%s: module built for ABI %u.%u, this server has ABI %u.%u; upgrade the server "
		         "or rebuild the module against its headers", path, abi, minor_of, HTTPD_MODULE_ABI,
		         HTTPD_MODULE_ABI_MINOR);
		goto fail;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->name = strdup(name)) == NULL || (m->path = strdup(path)) == NULL) {
		if (m != NULL)
			free(m->name);
		free(m);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (module_register(handle, &m->api, path, name, err, errlen) < 0) {
		free(m->name);
		free(m->path);
		free(m);
		goto fail;
	}
	m->handle = handle;
	m->abi_minor = minor_of;
	m->next = loaded;
	loaded = m;
	return m;
fail:
	dlclose(handle);
	return NULL;
}

const struct module *module_first(void)
{
	return loaded;
}

const struct module *module_find(const char *name)
{
	for (const struct module *m = loaded; m != NULL; m = m->next)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

void module_unload_all(void)
{
	while (loaded != NULL) {
		struct module *m = loaded;

		loaded = m->next;
		dlclose(m->handle);
		free(m->name);
		free(m->path);
		free(m);
	}
}
