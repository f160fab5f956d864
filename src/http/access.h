/*
 * Ordered allow/deny rules on the client address (the access directive):
 * the first rule that covers the address decides; an address no rule
 * covers is allowed, as nginx's allow/deny.  Pure functions, unit-tested.
 */
#ifndef HTTPD_ACCESS_H
#define HTTPD_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "real_ip.h"

struct access_rule {
	bool        allow;
	bool        all;    /* "all": every address */
	struct cidr net;
};

/* "allow 10.0.0.0/8", "deny all", "allow ::1": 0, or -1 if the rule is not one of these. */
int  access_rule_parse(const char *text, struct access_rule *out);
/* Whether addr (textual, as the client address is kept) may pass rules[0..count). */
bool access_allowed(const struct access_rule *rules, size_t count, const char *addr);

#endif
