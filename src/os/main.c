#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "module.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: httpd [-F] [-t] [-f FILE]\n"
	        "  -f FILE  configuration file (default " HTTPD_SYSCONFDIR "/httpd.conf)\n"
	        "  -F       stay in the foreground\n"
	        "  -t       check the configuration and exit\n"
	        "  -v       print the version and exit\n"
	        "  -h       this help\n");
}

int main(int argc, char **argv)
{
	const char *path = HTTPD_SYSCONFDIR "/httpd.conf";
	bool foreground = false, test_only = false;
	struct httpd_config *config;
	int opt, status;

	while ((opt = getopt(argc, argv, "f:Ftvh")) != -1) {
		switch (opt) {
		case 'f': path = optarg; break;
		case 'F': foreground = true; break;
		case 't': test_only = true; break;
		case 'v':
			printf("prefork-httpd %s (module ABI %d)\n", PACKAGE_VERSION, HTTPD_MODULE_ABI);
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
	config = config_load(path, false);
	if (config == NULL)
		return 1;
	if (test_only) {
		printf("httpd: %s: configuration is valid\n", path);
		config_free(config);
		module_unload_all();
		return 0;
	}
	status = master_run(config, path, foreground);
	module_unload_all();
	return status;
}
