#include "sign_base.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- buffer ----------------------------------------------------------- */

void sign_buf_put(struct sign_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->cap - b->len <= n) {
		size_t cap = b->cap ? b->cap : 256;
		char *grown;

		while (cap - b->len <= n)
			cap *= 2;
		grown = realloc(b->p, cap);
		if (grown == NULL) {
			b->failed = true;
			return;
		}
		b->p = grown;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sign_buf_puts(struct sign_buf *b, const char *s)
{
	sign_buf_put(b, s, strlen(s));
}

void sign_buf_free(struct sign_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* --- the parts of the raw target -------------------------------------- */

/* Where the path of target begins (after scheme://authority for absolute-form), and its query. */
static void target_split(const char *target, const char **path, size_t *path_len, const char **query)
{
	const char *p = target, *q;

	if (target[0] != '/' && (p = strstr(target, "://")) != NULL) {
		p = strchr(p + 3, '/');
		if (p == NULL)
			p = target + strlen(target);   /* no path */
	} else if (p == NULL) {
		p = target;
	}
	q = strchr(p, '?');
	*path = p;
	*path_len = q != NULL ? (size_t)(q - p) : strlen(p);
	*query = q != NULL ? q + 1 : NULL;
}

bool sign_authority(const char *host, const char *scheme, char *out, size_t size)
{
	size_t n = strlen(host), port_at = n;
	const char *colon;

	if (n == 0 || n >= size)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = host[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '?' || ch == '#' || ch == '@')
			return false;
		out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
	}
	out[n] = '\0';
	colon = strrchr(out, ':');
	if (colon != NULL && strchr(out, ']') < colon)
		port_at = (size_t)(colon - out);
	if (port_at < n) {
		const char *port = out + port_at + 1;

		if ((strcmp(scheme, "http") == 0 && strcmp(port, "80") == 0) ||
		    (strcmp(scheme, "https") == 0 && strcmp(port, "443") == 0) || *port == '\0')
			out[port_at] = '\0';
	}
	return true;
}

/* --- @query-param ----------------------------------------------------- */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes as application/x-www-form-urlencoded, then re-encodes with its percent-encode set (space as %20). */
static void form_reencode(const char *s, size_t len, struct sign_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		char enc[3];

		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			ch = (unsigned char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		}
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '*' || ch == '-' || ch == '.' || ch == '_') {
			sign_buf_put(out, (const char *)&ch, 1);
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[ch >> 4];
		enc[2] = hex[ch & 15];
		sign_buf_put(out, enc, 3);
	}
}

static enum sign_result query_param(const char *query, const char *name, struct sign_buf *out)
{
	struct sign_buf value = { 0 };
	int found = 0;

	for (const char *p = query; p != NULL && *p != '\0'; ) {
		const char *amp = strchr(p, '&');
		size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t name_len = eq != NULL ? (size_t)(eq - p) : len;
		struct sign_buf enc = { 0 };

		form_reencode(p, name_len, &enc);
		if (!enc.failed && enc.len == strlen(name) && memcmp(enc.p ? enc.p : "", name, enc.len) == 0) {
			found++;
			value.len = 0;
			if (eq != NULL)
				form_reencode(eq + 1, len - name_len - 1, &value);
		}
		sign_buf_free(&enc);
		p = amp != NULL ? amp + 1 : NULL;
	}
	if (found != 1 || value.failed) {
		sign_buf_free(&value);
		return SIGN_COMPONENT_UNAVAILABLE;   /* absent, or named twice: no base (RFC 9421 §2.2.8) */
	}
	sign_buf_put(out, value.p ? value.p : "", value.len);
	sign_buf_free(&value);
	return SIGN_OK;
}

/* --- fields ----------------------------------------------------------- */

/* Every instance of the field joined with ", " (RFC 9421 §2.1); false if there is none. */
static bool field_value(const struct sign_msg *msg, const char *name, struct sign_buf *out)
{
	bool found = false;

	for (size_t i = 0; i < msg->header_count; i++) {
		if (strcasecmp(msg->headers[i].name, name) != 0)
			continue;
		if (found)
			sign_buf_put(out, ", ", 2);
		sign_buf_puts(out, msg->headers[i].value);
		found = true;
	}
	return found;
}

/* Fields we know to be dictionaries, for the sf and key parameters. */
static bool field_is_dictionary(const char *name)
{
	static const char *const dicts[] = {
		"signature-input", "signature", "accept-signature", "content-digest", "repr-digest",
		"want-content-digest", "want-repr-digest", "example-dict",
	};

	for (size_t i = 0; i < sizeof(dicts) / sizeof(dicts[0]); i++)
		if (strcmp(dicts[i], name) == 0)
			return true;
	return false;
}

static enum sign_result field_component(const struct sign_msg *msg, const struct sf_item *id,
                                        struct sf_arena *arena, struct sign_buf *out)
{
	const char *name = id->bare.str;
	const struct sf_param *sf = sf_params_get(id->params, id->nparams, "sf");
	const struct sf_param *key = sf_params_get(id->params, id->nparams, "key");
	struct sign_buf raw = { 0 };
	enum sign_result rc = SIGN_OK;

	for (size_t i = 0; name[i] != '\0'; i++)
		if (name[i] >= 'A' && name[i] <= 'Z')
			return SIGN_MALFORMED;   /* component names are lowercase */
	for (size_t i = 0; i < id->nparams; i++)
		if (strcmp(id->params[i].key, "sf") != 0 && strcmp(id->params[i].key, "key") != 0)
			return SIGN_COMPONENT_UNAVAILABLE;   /* bs, req, tr: not for a request we verify */
	if (!field_value(msg, name, &raw))
		return SIGN_COMPONENT_UNAVAILABLE;
	if (raw.failed) {
		sign_buf_free(&raw);
		return SIGN_COMPONENT_UNAVAILABLE;
	}
	if (sf == NULL && key == NULL) {
		sign_buf_put(out, raw.p, raw.len);
	} else if (!field_is_dictionary(name) ||
	           (key != NULL && key->value.type != SF_STRING)) {
		rc = SIGN_COMPONENT_UNAVAILABLE;
	} else {
		struct sf_dict d;
		char *text = NULL;
		long n = -1;

		if (sf_parse_dict(raw.p, raw.len, arena, &d) < 0) {
			rc = SIGN_COMPONENT_UNAVAILABLE;
		} else if ((text = malloc(raw.len * 2 + 64)) == NULL) {
			rc = SIGN_COMPONENT_UNAVAILABLE;
		} else if (key != NULL) {
			const struct sf_member *m = sf_dict_get(&d, key->value.str);

			if (m != NULL)
				n = sf_serialize_member_value(m, text, raw.len * 2 + 64);
		} else {
			n = sf_serialize_dict(&d, text, raw.len * 2 + 64);
		}
		if (rc == SIGN_OK && n < 0)
			rc = SIGN_COMPONENT_UNAVAILABLE;
		if (rc == SIGN_OK)
			sign_buf_put(out, text, (size_t)n);
		free(text);
	}
	sign_buf_free(&raw);
	return rc;
}

/* --- derived components (RFC 9421 §2.2) ------------------------------- */

static enum sign_result derived_component(const struct sign_msg *msg, const struct sf_item *id,
                                          struct sign_buf *out)
{
	const char *name = id->bare.str, *path, *query;
	const struct sf_param *qname = sf_params_get(id->params, id->nparams, "name");
	char authority[512];
	size_t path_len;

	if (id->nparams > (qname != NULL ? 1u : 0u))
		return SIGN_COMPONENT_UNAVAILABLE;
	target_split(msg->target, &path, &path_len, &query);
	if (strcmp(name, "@method") == 0) {
		sign_buf_puts(out, msg->method);
	} else if (strcmp(name, "@scheme") == 0) {
		sign_buf_puts(out, msg->scheme);
	} else if (strcmp(name, "@request-target") == 0) {
		sign_buf_puts(out, msg->target);
	} else if (strcmp(name, "@authority") == 0 || strcmp(name, "@target-uri") == 0) {
		if (msg->host == NULL || !sign_authority(msg->host, msg->scheme, authority, sizeof(authority)))
			return SIGN_COMPONENT_UNAVAILABLE;
		if (name[1] == 'a') {
			sign_buf_puts(out, authority);
		} else if (msg->target[0] != '/' && strstr(msg->target, "://") != NULL) {
			sign_buf_puts(out, msg->target);   /* absolute-form is the target URI itself */
		} else {
			sign_buf_puts(out, msg->scheme);
			sign_buf_puts(out, "://");
			sign_buf_puts(out, authority);
			if (strcmp(msg->target, "*") != 0)
				sign_buf_puts(out, msg->target);
		}
	} else if (strcmp(name, "@path") == 0) {
		if (path_len == 0)
			sign_buf_put(out, "/", 1);
		else
			sign_buf_put(out, path, path_len);
	} else if (strcmp(name, "@query") == 0) {
		sign_buf_put(out, "?", 1);
		if (query != NULL)
			sign_buf_puts(out, query);
	} else if (strcmp(name, "@query-param") == 0) {
		if (qname == NULL || qname->value.type != SF_STRING)
			return SIGN_MALFORMED;
		return query_param(query, qname->value.str, out);
	} else {
		return SIGN_COMPONENT_UNAVAILABLE;   /* @status is for responses; unknown names */
	}
	return qname == NULL ? SIGN_OK : SIGN_COMPONENT_UNAVAILABLE;
}

enum sign_result sign_base_build(const struct sign_msg *msg, const struct sf_member *input,
                                 struct sf_arena *arena, struct sign_buf *out)
{
	char line[1024];

	if (!input->is_inner)
		return SIGN_MALFORMED;
	for (size_t i = 0; i < input->nlist; i++) {
		const struct sf_item *id = &input->list[i];
		enum sign_result rc;
		long n;

		if (id->bare.type != SF_STRING || id->bare.len == 0)
			return SIGN_MALFORMED;
		n = sf_serialize_item(id, line, sizeof(line));
		if (n < 0)
			return SIGN_MALFORMED;
		/* A component may be covered once (the same name with other parameters is another). */
		for (size_t k = 0; k < i; k++) {
			char other[1024];

			if (sf_serialize_item(&input->list[k], other, sizeof(other)) == n && memcmp(other, line, (size_t)n) == 0)
				return SIGN_MALFORMED;
		}
		sign_buf_put(out, line, (size_t)n);
		sign_buf_put(out, ": ", 2);
		rc = id->bare.str[0] == '@' ? derived_component(msg, id, out) : field_component(msg, id, arena, out);
		if (rc != SIGN_OK)
			return rc;
		sign_buf_put(out, "\n", 1);
	}
	sign_buf_puts(out, "\"@signature-params\": ");
	{
		char *params = malloc(8192);
		long n = params != NULL ? sf_serialize_member_value(input, params, 8192) : -1;

		if (n < 0) {
			free(params);
			return SIGN_MALFORMED;
		}
		sign_buf_put(out, params, (size_t)n);
		free(params);
	}
	return out->failed ? SIGN_COMPONENT_UNAVAILABLE : SIGN_OK;
}

/* --- classic mode ----------------------------------------------------- */

struct query_pair {
	const char *p;
	size_t      len, name_len, order;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct query_pair *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->p, y->p, n);

	if (c != 0)
		return c;
	if (x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	return x->order < y->order ? -1 : 1;   /* stable for repeated names */
}

void sign_classic_string(const struct sign_msg *msg, const char *timestamp, const char *nonce,
                         const char *body_sha256_hex, struct sign_buf *out)
{
	const char *path, *query;
	size_t path_len, count = 0;
	struct query_pair *pairs = NULL;

	target_split(msg->target, &path, &path_len, &query);
	sign_buf_puts(out, msg->method);
	sign_buf_put(out, "\n", 1);
	sign_buf_put(out, path, path_len);
	sign_buf_put(out, "\n", 1);
	if (query != NULL && *query != '\0') {
		size_t max = 1;

		for (const char *p = query; *p != '\0'; p++)
			max += *p == '&';
		pairs = calloc(max, sizeof(*pairs));
		if (pairs == NULL) {
			out->failed = true;
			return;
		}
		for (const char *p = query; p != NULL; count++) {
			const char *amp = strchr(p, '&');
			size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
			const char *eq = memchr(p, '=', len);

			pairs[count] = (struct query_pair){ p, len, eq != NULL ? (size_t)(eq - p) : len, count };
			p = amp != NULL ? amp + 1 : NULL;
		}
		qsort(pairs, count, sizeof(*pairs), pair_cmp);
		for (size_t i = 0; i < count; i++) {
			if (i > 0)
				sign_buf_put(out, "&", 1);
			sign_buf_put(out, pairs[i].p, pairs[i].len);
		}
		free(pairs);
	}
	sign_buf_put(out, "\n", 1);
	sign_buf_puts(out, timestamp);
	sign_buf_put(out, "\n", 1);
	sign_buf_puts(out, nonce);
	sign_buf_put(out, "\n", 1);
	sign_buf_puts(out, body_sha256_hex);
}

/* --- Content-Digest --------------------------------------------------- */

enum sign_result sign_content_digest(const char *value, unsigned accepted, struct sf_arena *arena,
                                     enum sign_digest *alg, const uint8_t **expected, size_t *len)
{
	static const struct { const char *name; enum sign_digest alg; size_t len; } algs[] = {
		{ "sha-512", SIGN_SHA512, 64 }, { "sha-256", SIGN_SHA256, 32 },   /* strongest first */
	};
	struct sf_dict d;

	if (sf_parse_dict(value, strlen(value), arena, &d) < 0)
		return SIGN_MALFORMED;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		const struct sf_member *m = sf_dict_get(&d, algs[i].name);

		if (m == NULL || !(accepted & algs[i].alg))
			continue;
		if (m->is_inner || m->item.bare.type != SF_BYTES || m->item.bare.len != algs[i].len)
			return SIGN_MALFORMED;
		*alg = algs[i].alg;
		*expected = (const uint8_t *)m->item.bare.str;
		*len = algs[i].len;
		return SIGN_OK;
	}
	return SIGN_DIGEST_ALGORITHM;
}

void sign_hex(const uint8_t *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * len] = '\0';
}
