#include "sni.h"

#include <string.h>

size_t tls_sni_parse(const unsigned char *p, size_t len, const unsigned char **name)
{
	size_t list;

	if (len < 2)
		return 0;
	list = (size_t)p[0] << 8 | p[1];
	if (list + 2 != len)
		return 0;
	p += 2;
	while (list >= 3) {
		size_t n = (size_t)p[1] << 8 | p[2];

		if (n + 3 > list)
			return 0;
		if (p[0] == 0 /* host_name */ && n > 0 && n <= 255 && memchr(p + 3, '\0', n) == NULL) {
			*name = p + 3;
			return n;
		}
		p += 3 + n;
		list -= 3 + n;
	}
	return 0;
}
