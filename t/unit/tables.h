/* The layers' directive tables, handed to the core as the daemon hands them (src/daemon/main.c). */
#ifndef HTTPD_TEST_TABLES_H
#define HTTPD_TEST_TABLES_H

#include "compress.h"
#include "config.h"
#include "http_directives.h"
#include "listen.h"
#include "tls.h"

static inline void tables_set(void)
{
	static const struct directive_table *const tables[] = {
		&listen_directives, &http_directives, &rewrite_directives, &header_directives, &compress_directives,
		&tls_directives,
	};

	config_tables_set(tables, sizeof(tables) / sizeof(tables[0]));
}

#endif
