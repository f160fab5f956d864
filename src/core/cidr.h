/* Address ranges ("10.0.0.0/8", "::1"): parsed once from the config, matched per connection or hop. */
#ifndef HTTPD_CIDR_H
#define HTTPD_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cidr {
	int     family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int     bits;
};

/* "10.0.0.0/8", "127.0.0.1", "::1", "2001:db8::/32"; -1 if malformed. */
int  cidr_parse(const char *text, struct cidr *out);
/* Is addr (family AF_INET or AF_INET6, network order) inside c? */
bool cidr_match(const struct cidr *c, int family, const uint8_t *addr);
/* Is the textual address addr inside one of the list? */
bool cidr_list_contains(const struct cidr *list, size_t count, const char *addr);

#endif
