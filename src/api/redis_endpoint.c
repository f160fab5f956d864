/*
 * A Redis endpoint, made in the master from the configuration: its
 * address (a name resolved here, once, never in a worker's loop), its
 * password (read here, from a file only its owner may read; wiped when
 * freed) and the scripts its users run.  Nothing connects here, so
 * httpd -t needs no Redis; each worker connects on first use (redis.c).
 */
#include "redis.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static int password_read(struct httpd_redis *rd, const char *path, char *err, size_t errlen)
{
	char buf[1024];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, errlen, "password_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "password_file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "password_file %s: readable or writable by group or others (mode %03o); chmod 600 it",
		         path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		snprintf(err, errlen, "password_file %s: %s", path, n < 0 ? strerror(errno) : "longer than 1023 bytes");
		OPENSSL_cleanse(buf, sizeof(buf));
		return -1;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0) {
		snprintf(err, errlen, "password_file %s: empty", path);
		return -1;
	}
	rd->password = malloc((size_t)n + 1);
	if (rd->password != NULL) {
		memcpy(rd->password, buf, (size_t)n);
		rd->password[n] = '\0';
		rd->password_len = (size_t)n;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rd->password == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* "HOST:PORT", "[V6]:PORT" or "unix:/path"; a name is resolved here, once, not in the workers' loops. */
static int address_parse(struct httpd_redis *rd, const char *address, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char host[256], numeric[64];
	const char *colon;
	size_t hlen;
	char *end;
	long port;
	int rc;

	if (strncmp(address, "unix:", 5) == 0) {
		if (address[5] != '/') {
			snprintf(err, errlen, "redis \"%s\": a unix socket needs an absolute path (unix:/run/redis/redis.sock)",
			         address);
			return -1;
		}
		rd->unix_path = strdup(address + 5);
		return rd->unix_path != NULL ? 0 : -1;
	}
	if (address[0] == '[') {
		const char *close_br = strchr(address, ']');

		if (close_br == NULL || close_br[1] != ':')
			goto malformed;
		hlen = (size_t)(close_br - address - 1);
		memcpy(host, address + 1, hlen < sizeof(host) ? hlen : 0);
		colon = close_br + 1;
	} else {
		colon = strrchr(address, ':');
		if (colon == NULL || strchr(address, ':') != colon)
			goto malformed;
		hlen = (size_t)(colon - address);
		memcpy(host, address, hlen < sizeof(host) ? hlen : 0);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		goto malformed;
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 || port > 65535)
		goto malformed;
	if (httpd_config_checking()) {
		/* httpd -t needs neither Redis nor the DNS that names it (a build machine has neither). */
		rd->host = strdup(host);
		rd->port = (int)port;
		return rd->host != NULL ? 0 : -1;
	}
	rc = getaddrinfo(host, NULL, &hints, &ai);
	if (rc != 0 || ai == NULL) {
		snprintf(err, errlen, "redis \"%s\": cannot resolve %s: %s", address, host, gai_strerror(rc));
		return -1;
	}
	rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, numeric, sizeof(numeric), NULL, 0, NI_NUMERICHOST);
	freeaddrinfo(ai);
	if (rc != 0) {
		snprintf(err, errlen, "redis \"%s\": %s", address, gai_strerror(rc));
		return -1;
	}
	rd->host = strdup(numeric);
	rd->port = (int)port;
	return rd->host != NULL ? 0 : -1;
malformed:
	snprintf(err, errlen, "redis \"%s\": expected HOST:PORT, [IPv6]:PORT or unix:/path", address);
	return -1;
}

struct httpd_redis *httpd_redis_new(const char *address, const char *password_file, unsigned timeout_ms,
                                    char *err, size_t errlen)
{
	struct httpd_redis *rd = calloc(1, sizeof(*rd));

	if (rd == NULL || (rd->address = strdup(address)) == NULL) {
		free(rd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rd->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
	if (address_parse(rd, address, err, errlen) < 0 ||
	    (password_file != NULL && password_read(rd, password_file, err, errlen) < 0)) {
		httpd_redis_free(rd);
		return NULL;
	}
	return rd;
}

const char *httpd_redis_address(const struct httpd_redis *rd)
{
	return rd->address;
}

const struct httpd_redis_script *httpd_redis_script(struct httpd_redis *rd, const char *source)
{
	unsigned char md[20];
	unsigned mdlen = 0;
	struct httpd_redis_script *s;

	if (rd->script_count == REDIS_SCRIPTS_MAX)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->source = strdup(source)) == NULL ||
	    !EVP_Digest(source, strlen(source), md, &mdlen, EVP_sha1(), NULL) || mdlen != sizeof(md)) {
		if (s != NULL)
			free(s->source);
		free(s);
		return NULL;
	}
	for (unsigned i = 0; i < sizeof(md); i++)
		snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
	rd->scripts[rd->script_count++] = s;
	return s;
}

void httpd_redis_free(struct httpd_redis *rd)
{
	if (rd == NULL)
		return;
	if (rd->ac != NULL && rd->drop != NULL)
		rd->drop(rd);   /* a worker's connection (the master has none) */
	for (size_t i = 0; i < rd->script_count; i++) {
		free(rd->scripts[i]->source);
		free(rd->scripts[i]);
	}
	if (rd->password != NULL) {
		OPENSSL_cleanse(rd->password, rd->password_len);
		free(rd->password);
	}
	free(rd->address);
	free(rd->host);
	free(rd->unix_path);
	free(rd);
}
