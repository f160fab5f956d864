/*
 * What a signature covers, shared by the sign module and the httpd-sign
 * client so both build the same bytes:
 *   - the RFC 9421 §2.5 signature base of a request, from the raw request
 *     as received (method as sent, raw target, lowercased authority
 *     without its default port);
 *   - the classic-mode canonical string (six lines: method, raw path,
 *     sorted raw query, timestamp, nonce, hex SHA-256 of the body);
 *   - Content-Digest (RFC 9530) selection, and the HMAC and hashes, with
 *     libcrypto.
 */
#ifndef HTTPD_SIGN_BASE_H
#define HTTPD_SIGN_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sf.h"

struct sign_header {
	const char *name;
	const char *value;
};

/* A request as received. */
struct sign_msg {
	const char               *method;
	const char               *target;   /* the raw request-target */
	const char               *scheme;   /* "http" or "https" */
	const char               *host;     /* Host (or the absolute-form authority); NULL if none */
	const struct sign_header *headers;
	size_t                    header_count;
};

/* A growing buffer (malloc); failed is set instead of reporting every append. */
struct sign_buf {
	char  *p;
	size_t len, cap;
	bool   failed;
};

void sign_buf_put(struct sign_buf *b, const char *s, size_t n);
void sign_buf_puts(struct sign_buf *b, const char *s);
void sign_buf_free(struct sign_buf *b);

enum sign_result {
	SIGN_OK = 0,
	SIGN_MALFORMED,              /* not the structure RFC 9421 asks for */
	SIGN_COMPONENT_UNAVAILABLE,  /* a covered component this request does not have */
	SIGN_DIGEST_ALGORITHM,       /* Content-Digest with no algorithm we accept */
};

/*
 * The signature base for a Signature-Input member (an inner list of
 * component identifiers with the signature parameters), no LF after the
 * "@signature-params" line.  arena is scratch for parsing fields.
 */
enum sign_result sign_base_build(const struct sign_msg *msg, const struct sf_member *input,
                                 struct sf_arena *arena, struct sign_buf *out);

/* "example.com" from "Example.COM:80" over http; false if host is not a host[:port]. */
bool sign_authority(const char *host, const char *scheme, char *out, size_t size);

/* The classic canonical string; body_sha256_hex is 64 lowercase hex digits. */
void sign_classic_string(const struct sign_msg *msg, const char *timestamp, const char *nonce,
                         const char *body_sha256_hex, struct sign_buf *out);

/* --- digests and HMAC (libcrypto) ----------------------------------------- */

enum sign_digest { SIGN_SHA256 = 1u, SIGN_SHA512 = 2u };   /* bits, for sets of accepted ones */

/*
 * From a Content-Digest value, the strongest algorithm in accepted (a set
 * of bits) and its expected digest (pointing into arena).
 * SIGN_MALFORMED, SIGN_DIGEST_ALGORITHM (md5 and sha never count), or OK.
 */
enum sign_result sign_content_digest(const char *value, unsigned accepted, struct sf_arena *arena,
                                     enum sign_digest *alg, const uint8_t **expected, size_t *len);

struct sign_hash;   /* a streaming SHA-256/512 */
struct sign_hash *sign_hash_new(enum sign_digest alg);
void   sign_hash_update(struct sign_hash *h, const void *data, size_t len);
/* Writes the digest (32 or 64 bytes) and frees h; returns its length, 0 on failure. */
size_t sign_hash_final(struct sign_hash *h, uint8_t out[64]);
void   sign_hash_free(struct sign_hash *h);

/* false if libcrypto failed: then nothing may verify. */
bool sign_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t out[32]);
/* Constant-time equality. */
bool sign_equal(const void *a, const void *b, size_t len);
/* Overwrites len bytes so the compiler cannot skip it. */
void sign_wipe(void *p, size_t len);
void sign_hex(const uint8_t *in, size_t len, char *out);   /* out: 2 * len + 1 */

#endif
