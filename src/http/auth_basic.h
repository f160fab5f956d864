/*
 * HTTP Basic authentication (RFC 7617) against an htpasswd file of modern
 * hashes only: bcrypt ($2y$, $2b$, from "htpasswd -B"), sha256-crypt ($5$),
 * sha512-crypt ($6$) and yescrypt ($y$), checked with libcrypt's crypt_r.
 * The file is read by the master at load; verification runs on a worker's
 * thread pool (a bcrypt costs milliseconds) and compares in constant time.
 */
#ifndef HTTPD_AUTH_BASIC_H
#define HTTPD_AUTH_BASIC_H

#include <stdbool.h>
#include <stddef.h>

struct htpasswd_user {
	char *name;
	char *hash;
};

struct auth_basic {
	char                 *realm;
	char                 *header;       /* the WWW-Authenticate value */
	char                 *file;
	struct htpasswd_user *users;
	size_t                count;
	const char           *dummy_hash;   /* what an unknown user is checked against, so it costs the same */
};

/*
 * Reads an htpasswd file.  NULL on failure, with the reason in err and the
 * file's line in *line (0 when the whole file is at fault).
 */
struct auth_basic *auth_basic_load(const char *realm, const char *file, char *err, size_t errlen, int *line);
void auth_basic_free(struct auth_basic *a);

/* Is hash one of the accepted schemes? */
bool htpasswd_hash_accepted(const char *hash);

/*
 * The user and password of an "Authorization: Basic ..." value, decoded
 * into buf (size bytes, wiped by the caller after use).  false if the
 * value is not Basic credentials.
 */
bool auth_basic_credentials(const char *value, char *buf, size_t size, const char **user, const char **password);

/* The hash the user must match (a dummy one for an unknown user, *known false then). */
const char *auth_basic_hash_of(const struct auth_basic *a, const char *user, bool *known);

/* crypt_r(password, hash) compared with hash in constant time; blocking (milliseconds). */
bool auth_basic_verify(const char *password, const char *hash);

#endif
