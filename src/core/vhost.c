#include "vhost.h"

#include <string.h>
#include <strings.h>

bool vhost_name_match(const char *pattern, const char *name, size_t len)
{
	size_t plen = strlen(pattern);

	if (pattern[0] == '*' && pattern[1] == '.') {
		/* "*.example.com" names every host below example.com, never example.com itself. */
		size_t suffix = plen - 1;   /* ".example.com" */

		return len > suffix && strncasecmp(name + len - suffix, pattern + 1, suffix) == 0;
	}
	return plen == len && strncasecmp(pattern, name, len) == 0;
}

/* The host part of a Host value: "[::1]:8080" -> "[::1]", "Example.com.:80" -> "Example.com". */
static size_t host_trim(const char *host, size_t len)
{
	if (len > 0 && host[0] == '[') {
		const char *end = memchr(host, ']', len);

		return end != NULL ? (size_t)(end - host) + 1 : len;
	}
	for (size_t i = 0; i < len; i++)
		if (host[i] == ':') {
			len = i;
			break;
		}
	while (len > 0 && host[len - 1] == '.')
		len--;
	return len;
}

int vhost_index(struct httpd_config *config)
{
	size_t names = 0;

	for (size_t i = 0; i < config->server_count; i++)
		names += config->servers[i].name_count;
	if (name_table_init(&config->vhost_names, names) < 0 || name_table_init(&config->vhost_wildcards, names) < 0)
		return -1;
	for (size_t i = 0; i < config->server_count; i++) {
		const struct httpd_server *s = &config->servers[i];

		for (size_t j = 0; j < s->name_count; j++) {
			const char *n = s->names[j];

			/* Names are unique across servers (checked): the first add is the only one. */
			if (n[0] == '*')
				(void)name_table_add(&config->vhost_wildcards, n + 1, strlen(n + 1), s);
			else
				(void)name_table_add(&config->vhost_names, n, strlen(n), s);
		}
	}
	return 0;
}

void vhost_index_free(struct httpd_config *config)
{
	name_table_free(&config->vhost_names);
	name_table_free(&config->vhost_wildcards);
}

const struct httpd_server *vhost_find(const struct httpd_config *config, const char *host, size_t len,
                                      bool *named)
{
	char lower[256];
	const struct httpd_server *s;

	*named = false;
	if (host == NULL)
		return config->default_server;
	len = host_trim(host, len);
	if (len == 0 || len >= sizeof(lower))
		return config->default_server;   /* no DNS name is that long */
	for (size_t i = 0; i < len; i++)
		lower[i] = host[i] >= 'A' && host[i] <= 'Z' ? (char)(host[i] + 32) : host[i];
	if ((s = name_table_find(&config->vhost_names, lower, len)) != NULL) {
		*named = true;
		return s;
	}
	/* "*.example.com" names every host below example.com: the longest such suffix, label by label. */
	for (size_t i = 1; i < len && config->vhost_wildcards.count > 0; i++)
		if (lower[i] == '.' && (s = name_table_find(&config->vhost_wildcards, lower + i, len - i)) != NULL) {
			*named = true;
			return s;
		}
	return config->default_server;
}

static bool same_text(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool vhost_same_tls(const struct httpd_server *a, const struct httpd_server *b)
{
	if (a == b)
		return true;
	return same_text(a->tls_certificate, b->tls_certificate) && same_text(a->tls_client_ca, b->tls_client_ca) &&
	       (a->tls_client_ca == NULL || a->tls_verify_client == b->tls_verify_client);
}
