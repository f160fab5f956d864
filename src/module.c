#include "module.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loaded once per master and kept: a reload reuses the same code. */
static struct module *loaded;

static int name_valid(const char *name)
{
	if (*name == '\0' || strlen(name) > 64)
		return 0;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

const struct module *module_load(const char *dir, const char *name, char *err, size_t errlen)
{
	struct module *m;
	char path[4096];
	void *handle;
	const struct httpd_module *desc;

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
	desc = dlsym(handle, HTTPD_MODULE_SYMBOL);
	if (desc == NULL) {
		snprintf(err, errlen, "%s: no \"%s\" symbol, not a prefork-httpd module", path,
		         HTTPD_MODULE_SYMBOL);
		goto fail;
	}
	if (desc->abi != HTTPD_MODULE_ABI) {
		snprintf(err, errlen, "%s: module ABI version %u, this server needs %u; rebuild the module",
		         path, desc->abi, HTTPD_MODULE_ABI);
		goto fail;
	}
	if (desc->name == NULL || strcmp(desc->name, name) != 0) {
		snprintf(err, errlen, "%s: module calls itself \"%s\", expected \"%s\"", path,
		         desc->name ? desc->name : "(null)", name);
		goto fail;
	}
	if (desc->handle == NULL && desc->check == NULL) {
		snprintf(err, errlen, "%s: module has neither a handle nor a check hook", path);
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
	m->handle = handle;
	m->desc = desc;
	m->next = loaded;
	loaded = m;
	return m;
fail:
	dlclose(handle);
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
