#include "access.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

int access_rule_parse(const char *text, struct access_rule *out)
{
	const char *what;

	memset(out, 0, sizeof(*out));
	if (strncmp(text, "allow ", 6) == 0)
		out->allow = true;
	else if (strncmp(text, "deny ", 5) != 0)
		return -1;
	what = text + (out->allow ? 6 : 5);
	while (*what == ' ' || *what == '\t')
		what++;
	if (strcmp(what, "all") == 0) {
		out->all = true;
		return 0;
	}
	return cidr_parse(what, &out->net);
}

bool access_allowed(const struct access_rule *rules, size_t count, const char *addr)
{
	uint8_t bin[16];
	int family;

	if (count == 0)
		return true;
	if (inet_pton(AF_INET, addr, bin) == 1) {
		family = AF_INET;
	} else if (inet_pton(AF_INET6, addr, bin) == 1) {
		family = AF_INET6;
		/* A v4 client on a dual-stack socket (::ffff:a.b.c.d) is matched as the IPv4 address it is. */
		if (memcmp(bin, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
			memmove(bin, bin + 12, 4);
			family = AF_INET;
		}
	} else {
		family = 0;   /* no address (a unix socket, say): only "all" covers it */
	}
	for (size_t i = 0; i < count; i++)
		if (rules[i].all || (family != 0 && cidr_match(&rules[i].net, family, bin)))
			return rules[i].allow;
	return true;
}
