#include "cidr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

int cidr_parse(const char *text, struct cidr *out)
{
	char host[64];
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	int max;

	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, text, len);
	host[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->bits = max;
	if (slash != NULL) {
		char *end;
		long bits = strtol(slash + 1, &end, 10);

		if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || bits < 0 || bits > max)
			return -1;
		out->bits = (int)bits;
	}
	return 0;
}

bool cidr_match(const struct cidr *c, int family, const uint8_t *addr)
{
	int full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family || memcmp(c->addr, addr, (size_t)full) != 0)
		return false;
	return rest == 0 || ((c->addr[full] ^ addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

bool cidr_list_contains(const struct cidr *list, size_t count, const char *addr)
{
	uint8_t bin[16];
	int family;

	if (inet_pton(AF_INET, addr, bin) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, addr, bin) == 1)
		family = AF_INET6;
	else
		return false;
	for (size_t i = 0; i < count; i++)
		if (cidr_match(&list[i], family, bin))
			return true;
	return false;
}
