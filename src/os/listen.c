#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static int port_parse(const char *s, in_port_t *port)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = htons((in_port_t)v);
	return 0;
}

int listen_parse(const char *text, struct sockaddr_storage *addr, socklen_t *addrlen,
                 char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_text;
	in_port_t port;

	memset(addr, 0, sizeof(*addr));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;

		if (close == NULL || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host)) {
			snprintf(err, errlen, "\"%s\" is not [IPV6]:PORT", text);
			return -1;
		}
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = '\0';
		if (port_parse(close + 2, &port) < 0) {
			snprintf(err, errlen, "\"%s\": port must be 1-65535", text);
			return -1;
		}
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			snprintf(err, errlen, "\"%s\": \"%s\" is not an IPv6 address", text, host);
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		*addrlen = sizeof(*sin6);
		return 0;
	}

	{
		struct sockaddr_in *sin = (struct sockaddr_in *)addr;
		const char *colon = strrchr(text, ':');

		if (colon == NULL) {
			snprintf(host, sizeof(host), "0.0.0.0");
			port_text = text;
		} else if ((size_t)(colon - text) >= sizeof(host) || strchr(text, ':') != colon) {
			snprintf(err, errlen, "\"%s\" is not ADDRESS:PORT (IPv6 needs [brackets])", text);
			return -1;
		} else {
			memcpy(host, text, (size_t)(colon - text));
			host[colon - text] = '\0';
			port_text = colon + 1;
			if (strcmp(host, "*") == 0)
				snprintf(host, sizeof(host), "0.0.0.0");
		}
		if (port_parse(port_text, &port) < 0) {
			snprintf(err, errlen, "\"%s\": port must be 1-65535", text);
			return -1;
		}
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			snprintf(err, errlen, "\"%s\": \"%s\" is not an IPv4 address", text, host);
			return -1;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = port;
		*addrlen = sizeof(*sin);
	}
	return 0;
}

int listen_spec_parse(const char *text, struct listen_spec *spec, char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN + 16];
	size_t len = strcspn(text, " \t");
	const char *p = text + len;

	if (len >= sizeof(addr)) {
		snprintf(err, errlen, "\"%s\" is not an address", text);
		return -1;
	}
	memcpy(addr, text, len);
	addr[len] = '\0';
	if (listen_parse(addr, &spec->addr, &spec->addrlen, err, errlen) < 0)
		return -1;
	spec->flags = 0;
	for (;;) {
		size_t flen;

		p += strspn(p, " \t");
		if (*p == '\0' && (spec->flags & LISTEN_TLS) && (spec->flags & LISTEN_H2C)) {
			snprintf(err, errlen, "\"%s\": h2c is cleartext HTTP/2; a tls listener offers h2 by ALPN "
			         "(http2 = false turns it off)", text);
			return -1;
		}
		if (*p == '\0')
			return 0;
		flen = strcspn(p, " \t");
		if (flen == strlen("proxy_protocol") && strncmp(p, "proxy_protocol", flen) == 0) {
			spec->flags |= LISTEN_PROXY_PROTOCOL;
		} else if (flen == 3 && strncmp(p, "tls", 3) == 0) {
			spec->flags |= LISTEN_TLS;
		} else if (flen == 3 && strncmp(p, "h2c", 3) == 0) {
			spec->flags |= LISTEN_H2C;
		} else {
			snprintf(err, errlen, "\"%s\": unknown flag \"%.*s\" (known: tls, h2c, proxy_protocol)", text,
			         (int)flen, p);
			return -1;
		}
		p += flen;
	}
}

bool listen_addr_equal(const struct sockaddr_storage *a, socklen_t alen,
                       const struct sockaddr_storage *b, socklen_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

void listen_format(const struct sockaddr *sa, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, ntohs(sin->sin_port));
	}
}

int listen_socket_open(const struct listen_spec *spec, bool reuseport, int backlog,
                       char *err, size_t errlen)
{
	int one = 1;
	int fd = socket(spec->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	const char *step = "socket";

	if (fd < 0)
		goto fail;
	step = "setsockopt";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	/* "[::]:80" and "0.0.0.0:80" side by side need v6-only sockets. */
	if (spec->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	/* Wake a worker only once the request has arrived (saves a wakeup per connection). */
	{
		int defer = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer));
	}
	step = "bind";
	if (bind(fd, (const struct sockaddr *)&spec->addr, spec->addrlen) < 0)
		goto fail;
	step = "listen";
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "cannot %s %s: %s", step, spec->text, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* --- directives --------------------------------------------------------------- */

static int listen_check(const char *text, char *err, size_t errlen)
{
	struct listen_spec spec;
	char why[256];

	if (listen_spec_parse(text, &spec, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "listen: %s", why);
		return -1;
	}
	return 0;
}

static int listen_build(const struct directive_use *use)
{
	struct httpd_config *config = use->config;
	size_t n = httpd_conf_count(use->from, "listen");
	char err[256];

	if (n == 0) {
		config_error(use->file, use->line, "listen needs at least one address");
		return -1;
	}
	config->listens = config_calloc(config, n, sizeof(*config->listens));
	if (config->listens == NULL)
		return -1;
	config->listen_count = n;
	for (size_t i = 0; i < n; i++) {
		struct listen_spec *ls = &config->listens[i];

		ls->text = httpd_conf_list_str(use->from, "listen", i);
		ls->file = use->file;
		ls->line = use->line;
		if (listen_spec_parse(ls->text, ls, err, sizeof(err)) < 0) {
			config_report(use->file, use->line, err);
			return -1;
		}
	}
	return 0;
}

static const struct directive listen_rows[] = {
	{ "listen", DIRECTIVE_TOP, DIRECTIVE_LIST, "{0.0.0.0:80}", 0, HTTPD_LISTEN_MAX, .check = listen_check,
	  .store = DIRECTIVE_IN_CONFIG, .build = listen_build },
	{ "reuseport", DIRECTIVE_TOP, DIRECTIVE_BOOL, "false", DIRECTIVE_CONFIG(reuseport) },
	{ .name = NULL },
};

const struct directive_table listen_directives = { "listen", listen_rows, NULL, NULL };
