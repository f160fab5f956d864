/*
 * Listening addresses: "PORT", "ADDR:PORT", "[ADDR6]:PORT", "*:PORT",
 * each optionally followed by flags: "0.0.0.0:80 proxy_protocol".
 */
#ifndef HTTPD_LISTEN_H
#define HTTPD_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "directive.h"

/* Listening addresses a configuration may name (one socket each per worker). */
#define HTTPD_LISTEN_MAX 64

/* Flags after the address. */
#define LISTEN_PROXY_PROTOCOL 1u   /* every connection starts with a PROXY v1/v2 preamble */
#define LISTEN_TLS            2u   /* TLS (after the PROXY preamble, when both are set) */
#define LISTEN_H2C            4u   /* cleartext HTTP/2 with prior knowledge (RFC 9113 §3.3) */

struct listen_spec {
	const char             *text;     /* as written in the config */
	struct sockaddr_storage addr;
	socklen_t               addrlen;
	unsigned                flags;
	const char             *file;
	int                     line;
};

/* Parses text into addr; -1 with a reason in err if it is not an address. */
int listen_parse(const char *text, struct sockaddr_storage *addr, socklen_t *addrlen,
                 char *err, size_t errlen);
/* Parses "ADDRESS [flag ...]" into spec's addr, addrlen and flags; -1 with a reason in err. */
int listen_spec_parse(const char *text, struct listen_spec *spec, char *err, size_t errlen);
/* Opens, binds and listens; -1 with a reason in err. */
int listen_socket_open(const struct listen_spec *spec, bool reuseport, int backlog,
                       char *err, size_t errlen);
/* The same socket address (bytes and length), as bound or as getsockname gives it. */
bool listen_addr_equal(const struct sockaddr_storage *a, socklen_t alen,
                       const struct sockaddr_storage *b, socklen_t blen);
/* "127.0.0.1:8080" or "[::1]:8080" for sockaddr. */
void listen_format(const struct sockaddr *sa, char *out, size_t size);

/* listen and reuseport: the addresses become config->listens. */
extern const struct directive_table listen_directives;

#endif
