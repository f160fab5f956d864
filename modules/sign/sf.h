/*
 * RFC 8941 Structured Field Values: the parts signed requests need.
 * Dictionaries (Signature-Input, Signature, Content-Digest), inner lists,
 * items with parameters; parsing per §4.2 and serialising per §4.1, so a
 * component identifier or the signature parameters come out exactly as
 * the signer serialised them.
 *
 * Everything a parse produces lives in a caller-provided arena (a plain
 * buffer): nothing to free one by one, and the work is bounded by it.
 */
#ifndef HTTPD_SIGN_SF_H
#define HTTPD_SIGN_SF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sf_type { SF_INTEGER, SF_DECIMAL, SF_STRING, SF_TOKEN, SF_BYTES, SF_BOOLEAN };

struct sf_bare {
	enum sf_type type;
	int64_t      integer;   /* SF_INTEGER; SF_DECIMAL in thousandths */
	bool         boolean;
	const char  *str;       /* SF_STRING, SF_TOKEN (NUL-terminated); SF_BYTES (len bytes) */
	size_t       len;
};

struct sf_param {
	const char    *key;
	struct sf_bare value;
};

struct sf_item {
	struct sf_bare   bare;
	struct sf_param *params;
	size_t           nparams;
};

/* A dictionary member: an item, or an inner list of items (with parameters of its own). */
struct sf_member {
	const char      *key;
	bool             is_inner;
	struct sf_item   item;      /* !is_inner */
	struct sf_item  *list;      /* is_inner */
	size_t           nlist;
	struct sf_param *params;    /* is_inner: the inner list's parameters */
	size_t           nparams;
};

struct sf_dict {
	struct sf_member *members;
	size_t            count;
};

struct sf_arena {
	char  *buf;
	size_t used, cap;
};

/* Parses a dictionary field value; -1 if it is not one (or the arena is too small). */
int sf_parse_dict(const char *text, size_t len, struct sf_arena *arena, struct sf_dict *out);
const struct sf_member *sf_dict_get(const struct sf_dict *d, const char *key);
const struct sf_param *sf_params_get(const struct sf_param *p, size_t n, const char *key);

/*
 * Serialisation into out (size bytes, NUL-terminated); each returns the
 * length, or -1 if it does not fit.
 */
long sf_serialize_item(const struct sf_item *item, char *out, size_t size);
/* An inner list with its parameters, or an item with its parameters: a member's value. */
long sf_serialize_member_value(const struct sf_member *m, char *out, size_t size);
long sf_serialize_dict(const struct sf_dict *d, char *out, size_t size);

/* RFC 4648 base64 with padding; -1 on a malformed input or when out is too small. */
long sf_base64_decode(const char *in, size_t len, uint8_t *out, size_t size);
size_t sf_base64_encode(const uint8_t *in, size_t len, char *out);   /* out: 4 * ((len + 2) / 3) + 1 */

#endif
