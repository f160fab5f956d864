#include <dirent.h>
#include <errno.h>
#include <dlfcn.h>
#include <getopt.h>
#include <gnu/libc-version.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <confuse.h>
#include <zlib.h>

#include "config.h"
#include "compress.h"
#include "http_directives.h"
#include "listen.h"
#include "log.h"
#include "master.h"
#include "module.h"
#include "tls.h"
#include "upgrade.h"
#include "variable.h"

/* The layers' directives, in the order their values are stored (the core's come first). */
static const struct directive_table *const layer_tables[] = { &listen_directives, &http_directives, &rewrite_directives,
	                                                       &header_directives, &compress_directives,
	                                                       &tls_directives };

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: httpd [-F] [-t | -T | -M] [-f FILE]\n"
	        "  -f FILE  configuration file (default " HTTPD_SYSCONFDIR "/httpd.conf)\n"
	        "  -F       stay in the foreground\n"
	        "  -t       check the configuration and exit\n"
	        "  -T       check it, then print the effective configuration (every default filled in)\n"
	        "  -M       list the modules in module_dir: ABI, and whether the configuration uses them\n"
	        "  -v       print the version and exit\n"
	        "  -V       print the version, module ABI, build options and library versions\n"
	        "  -h       this help\n");
}

static void version_long(void)
{
	struct utsname u;

	printf("prefork-httpd %s\n", PACKAGE_VERSION);
	printf("module ABI: %d.%d\n", HTTPD_MODULE_ABI, HTTPD_MODULE_ABI_MINOR);
	printf("built with %s%s\n",
#ifdef __clang__
	       "clang " __clang_version__,
#else
	       "gcc " __VERSION__,
#endif
#if defined(__SANITIZE_ADDRESS__)
	       ", AddressSanitizer"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	       ", AddressSanitizer"
#else
	       ""
#endif
#else
	       ""
#endif
	);
	printf("configuration: %s/httpd.conf\nmodules: %s\nlogs: %s\n", HTTPD_SYSCONFDIR, HTTPD_MODULEDIR,
	       HTTPD_LOGDIR);
	printf("libraries: glibc %s, zlib %s, libconfuse %s\n", gnu_get_libc_version(), zlibVersion(), confuse_version);
	if (uname(&u) == 0)
		printf("kernel: %s %s %s\n", u.sysname, u.release, u.machine);
}

/* Every NAME.so in the module directory: its ABI, and whether config uses it. */
static int modules_list(const struct httpd_config *config)
{
	struct dirent **names;
	int n = scandir(config->module_dir, &names, NULL, alphasort);

	if (n < 0) {
		fprintf(stderr, "httpd: %s: %s\n", config->module_dir, strerror(errno));
		return 1;
	}
	printf("%-16s %-6s %s\n", "module", "ABI", "used by the configuration");
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);
		char path[4096], abi[16] = "?";
		bool used = false;
		void *h;

		if (len > 3 && strcmp(name + len - 3, ".so") == 0 &&
		    snprintf(path, sizeof(path), "%s/%s", config->module_dir, name) < (int)sizeof(path)) {
			h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
			if (h != NULL) {
				const unsigned *v = dlsym(h, HTTPD_MODULE_ABI_SYMBOL);
				const unsigned *minor = dlsym(h, HTTPD_MODULE_ABI_MINOR_SYMBOL);

				if (v != NULL)
					snprintf(abi, sizeof(abi), "%u.%u", *v, minor != NULL ? *minor : 0);
				else if (dlsym(h, "httpd_module") != NULL)
					snprintf(abi, sizeof(abi), "1");
				else
					snprintf(abi, sizeof(abi), "none");
				dlclose(h);
			}
			/* Loaded by the configuration: named by a location, or by compress. */
			for (const struct module *m = module_first(); m != NULL; m = m->next)
				if (strlen(m->name) == len - 3 && strncmp(m->name, name, len - 3) == 0)
					used = true;
			printf("%-16.*s %-6s %s\n", (int)(len - 3), name, abi, used ? "yes" : "no");
		}
		free(names[i]);
	}
	free(names);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = HTTPD_SYSCONFDIR "/httpd.conf";
	bool foreground = false, test_only = false, print_config = false, list_modules = false;
	struct httpd_config *config;
	int opt, status;

	upgrade_init(argv);
	while ((opt = getopt(argc, argv, "f:FtTMvVh")) != -1) {
		switch (opt) {
		case 'f': path = optarg; break;
		case 'F': foreground = true; break;
		case 't': test_only = true; break;
		case 'T': test_only = print_config = true; break;
		case 'M': test_only = list_modules = true; break;
		case 'v':
			printf("prefork-httpd %s (module ABI %d.%d)\n", PACKAGE_VERSION, HTTPD_MODULE_ABI,
			       HTTPD_MODULE_ABI_MINOR);
			return 0;
		case 'V':
			version_long();
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	config_checking_set(test_only);
	config_tables_set(layer_tables, sizeof(layer_tables) / sizeof(layer_tables[0]));
	directive_expr_checker_set(expr_check);
	config = config_load(path, false);
	if (config == NULL)
		return 1;
	if (test_only) {
		status = 0;
		if (list_modules) {
			status = modules_list(config);
		} else if (print_config) {
			printf("# %s: configuration is valid; in effect, with every default:\n", path);
			cfg_print(config->cfg, stdout);
		} else {
			printf("httpd: %s: configuration is valid\n", path);
		}
		config_free(config);
		module_unload_all();
		return status;
	}
	status = master_run(config, path, foreground);
	module_unload_all();
	return status;
}
