/*
 * libFuzzer: a ClientHello server_name extension and a Host value, as a
 * client sends them, through the SNI parser and virtual host selection.
 * Input: one length byte, that many bytes of extension, the rest a Host.
 */
#include <stdint.h>
#include <string.h>

#include "sni.h"
#include "vhost.h"

static char *names_a[] = { "example.com", "www.example.com", "*.example.com" };
static char *names_b[] = { "*.api.example.com", "b.test" };

static struct httpd_server servers[3];
static struct httpd_config config;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *name = NULL;
	size_t ext_len, n;
	bool named;
	const struct httpd_server *s;

	if (size < 1)
		return 0;
	if (config.servers == NULL) {   /* built once, as the master builds it, read by every request */
		servers[1].names = names_a;
		servers[1].name_count = 3;
		servers[2].names = names_b;
		servers[2].name_count = 2;
		config.servers = servers;
		config.server_count = 3;
		config.default_server = &servers[0];
		if (vhost_index(&config) < 0)
			__builtin_trap();
	}

	ext_len = data[0] < size - 1 ? data[0] : size - 1;
	n = tls_sni_parse(data + 1, ext_len, &name);
	if (n > 0) {
		if (name < data + 1 || name + n > data + 1 + ext_len || n > 255 || memchr(name, 0, n) != NULL)
			__builtin_trap();
		s = vhost_find(&config, (const char *)name, n, &named);
		if (s == NULL || named != (s != config.default_server))
			__builtin_trap();
		/* A named server really has a name that matches, whatever the hash said. */
		if (named && n < 256) {
			bool found = false;

			for (size_t i = 0; i < s->name_count; i++)
				found = found || vhost_name_match(s->names[i], (const char *)name, n);
			if (!found && memchr(name, ':', n) == NULL && name[n - 1] != '.')
				__builtin_trap();
		}
	}
	s = vhost_find(&config, (const char *)data + 1 + ext_len, size - 1 - ext_len, &named);
	if (s == NULL || named != (s != config.default_server))
		__builtin_trap();
	return 0;
}
