#include "auth_basic.h"

#include <crypt.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool htpasswd_hash_accepted(const char *hash)
{
	static const char *const schemes[] = { "$2y$", "$2b$", "$5$", "$6$", "$y$" };

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncmp(hash, schemes[i], strlen(schemes[i])) == 0)
			return true;
	return false;
}

static const char *scheme_name(const char *hash)
{
	if (strncmp(hash, "$apr1$", 6) == 0)
		return "Apache MD5 ($apr1$)";
	if (strncmp(hash, "{SHA}", 5) == 0)
		return "unsalted SHA-1 ({SHA})";
	if (strncmp(hash, "$1$", 3) == 0)
		return "MD5-crypt ($1$)";
	if (strncmp(hash, "$2a$", 4) == 0)
		return "old bcrypt ($2a$)";
	if (strlen(hash) == 13)
		return "DES crypt";
	return "plain text or an unknown scheme";
}

void auth_basic_free(struct auth_basic *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->count; i++) {
		free(a->users[i].name);
		if (a->users[i].hash != NULL) {
			explicit_bzero(a->users[i].hash, strlen(a->users[i].hash));
			free(a->users[i].hash);
		}
	}
	free(a->users);
	free(a->realm);
	free(a->header);
	free(a->file);
	free(a);
}

static int user_add(struct auth_basic *a, const char *name, size_t name_len, const char *hash, size_t hash_len)
{
	struct htpasswd_user *grown = realloc(a->users, (a->count + 1) * sizeof(*grown));

	if (grown == NULL)
		return -1;
	a->users = grown;
	grown[a->count].name = strndup(name, name_len);
	grown[a->count].hash = strndup(hash, hash_len);
	if (grown[a->count].name == NULL || grown[a->count].hash == NULL) {
		free(grown[a->count].name);
		free(grown[a->count].hash);
		return -1;
	}
	a->count++;
	return 0;
}

struct auth_basic *auth_basic_load(const char *realm, const char *file, char *err, size_t errlen, int *line)
{
	struct auth_basic *a = calloc(1, sizeof(*a));
	FILE *f = NULL;
	char text[4096];
	size_t header_len = strlen(realm) + 48;

	*line = 0;
	if (a == NULL || (a->realm = strdup(realm)) == NULL || (a->file = strdup(file)) == NULL ||
	    (a->header = malloc(header_len)) == NULL)
		goto oom;
	/* RFC 7617: the realm is a quoted-string; a quote or backslash in it would end it early. */
	if (strpbrk(realm, "\"\\\r\n") != NULL) {
		snprintf(err, errlen, "auth_basic: the realm may not hold a quote, a backslash or a line break");
		goto fail;
	}
	snprintf(a->header, header_len, "Basic realm=\"%s\", charset=\"UTF-8\"", realm);
	f = fopen(file, "re");
	if (f == NULL) {
		snprintf(err, errlen, "auth_basic_user_file: cannot read %s: %s", file, strerror(errno));
		goto fail;
	}
	while (fgets(text, sizeof(text), f) != NULL) {
		size_t len = strcspn(text, "\r\n");
		const char *colon;

		(*line)++;
		if (text[len] == '\0' && !feof(f)) {
			snprintf(err, errlen, "a line longer than %zu bytes", sizeof(text) - 2);
			goto fail;
		}
		text[len] = '\0';
		if (len == 0 || text[0] == '#')
			continue;
		colon = strchr(text, ':');
		if (colon == NULL || colon == text) {
			snprintf(err, errlen, "not \"user:hash\"");
			goto fail;
		}
		if (!htpasswd_hash_accepted(colon + 1)) {
			snprintf(err, errlen, "user \"%.*s\": %s hashes are refused; make the password with htpasswd -B",
			         (int)(colon - text), text, scheme_name(colon + 1));
			goto fail;
		}
		if (user_add(a, text, (size_t)(colon - text), colon + 1, strlen(colon + 1)) < 0)
			goto oom;
	}
	explicit_bzero(text, sizeof(text));
	fclose(f);
	*line = 0;
	a->dummy_hash = a->count > 0 ? a->users[0].hash : NULL;
	return a;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	explicit_bzero(text, sizeof(text));
	if (f != NULL)
		fclose(f);
	auth_basic_free(a);
	return NULL;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool auth_basic_credentials(const char *value, char *buf, size_t size, const char **user, const char **password)
{
	size_t out = 0, len;
	uint32_t acc = 0;
	int bits = 0;
	char *colon;

	if (value == NULL || strncasecmp(value, "Basic", 5) != 0 || (value[5] != ' ' && value[5] != '\t'))
		return false;
	value += 5;
	while (*value == ' ' || *value == '\t')
		value++;
	len = strlen(value);
	while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	while (len > 0 && value[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)value[i]);

		if (v < 0)
			return false;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (out + 1 >= size)
				return false;
			buf[out++] = (char)(acc >> bits & 0xff);
		}
	}
	buf[out] = '\0';
	if (memchr(buf, '\0', out) != NULL || (colon = strchr(buf, ':')) == NULL)
		return false;
	*colon = '\0';
	*user = buf;
	*password = colon + 1;
	return true;
}

const char *auth_basic_hash_of(const struct auth_basic *a, const char *user, bool *known)
{
	for (size_t i = 0; i < a->count; i++) {
		if (strcmp(a->users[i].name, user) == 0) {
			*known = true;
			return a->users[i].hash;
		}
	}
	*known = false;
	return a->dummy_hash;
}

bool auth_basic_verify(const char *password, const char *hash)
{
	/* One per pool thread: struct crypt_data is 32 KiB, too large for a stack frame or a request. */
	static __thread struct crypt_data data;
	const char *got;
	size_t len;
	unsigned char diff = 0;

	if (hash == NULL)
		return false;
	memset(&data, 0, sizeof(data));
	got = crypt_r(password, hash, &data);
	len = strlen(hash);
	if (got == NULL || got[0] == '*' || strlen(got) != len) {
		explicit_bzero(&data, sizeof(data));
		return false;
	}
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(got[i] ^ hash[i]);
	explicit_bzero(&data, sizeof(data));
	return diff == 0;
}
