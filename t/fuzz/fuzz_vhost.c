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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpd_server servers[3];
	struct httpd_config config;
	const unsigned char *name = NULL;
	size_t ext_len, n;
	bool named;
	const struct httpd_server *s;

	if (size < 1)
		return 0;
	memset(servers, 0, sizeof(servers));
	memset(&config, 0, sizeof(config));
	servers[1].names = names_a;
	servers[1].name_count = 3;
	servers[2].names = names_b;
	servers[2].name_count = 2;
	config.servers = servers;
	config.server_count = 3;
	config.default_server = &servers[0];

	ext_len = data[0] < size - 1 ? data[0] : size - 1;
	n = tls_sni_parse(data + 1, ext_len, &name);
	if (n > 0) {
		if (name < data + 1 || name + n > data + 1 + ext_len || n > 255 || memchr(name, 0, n) != NULL)
			__builtin_trap();
		s = vhost_find(&config, (const char *)name, n, &named);
		if (s == NULL || named != (s != config.default_server))
			__builtin_trap();
	}
	s = vhost_find(&config, (const char *)data + 1 + ext_len, size - 1 - ext_len, &named);
	if (s == NULL || named != (s != config.default_server))
		__builtin_trap();
	return 0;
}
