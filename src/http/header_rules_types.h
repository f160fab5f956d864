/* The add_header and expires rules header_rules.c reads and header_apply.c applies. */
#ifndef HTTPD_HEADER_RULES_TYPES_H
#define HTTPD_HEADER_RULES_TYPES_H

#include <stdbool.h>

#include "variable.h"

struct header_rule {
	char        *name;
	struct expr  value;
	bool         always;
};

enum expires_mode { EXPIRES_OFF, EXPIRES_EPOCH, EXPIRES_MAX, EXPIRES_AFTER };

#endif
