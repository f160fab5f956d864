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

const struct httpd_server *vhost_find(const struct httpd_config *config, const char *host, size_t len,
                                      bool *named)
{
	const struct httpd_server *best = NULL;
	size_t best_len = 0;

	*named = false;
	if (host == NULL)
		return config->default_server;
	len = host_trim(host, len);
	for (size_t i = 0; i < config->server_count; i++) {
		const struct httpd_server *s = &config->servers[i];

		for (size_t j = 0; j < s->name_count; j++) {
			const char *pattern = s->names[j];

			if (!vhost_name_match(pattern, host, len))
				continue;
			if (pattern[0] != '*') {
				*named = true;
				return s;
			}
			if (strlen(pattern) > best_len) {
				best = s;
				best_len = strlen(pattern);
			}
		}
	}
	if (best != NULL) {
		*named = true;
		return best;
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
