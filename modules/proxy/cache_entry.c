/* The on-disk head of a stored response, and Vary's secondary key: see cache_entry.h. */
#include "cache_entry.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Layout, integers little-endian:
 *   "PHC1", u32 head size, 32 bytes hash, i64 request time, i64 response time, u64 body length,
 *   u16 status, u16 field count, u16 key length, key, u16 vary length, vary,
 *   then per field: u16 name length, name, u32 value length, value.
 */
#define FIXED (4 + 4 + 32 + 8 + 8 + 8 + 2 + 2)

struct writer {
	uint8_t *p;
	size_t   left;
	bool     ok;
};

static void put(struct writer *w, const void *data, size_t len)
{
	if (!w->ok || len > w->left) {
		w->ok = false;
		return;
	}
	memcpy(w->p, data, len);
	w->p += len;
	w->left -= len;
}

static void put_uint(struct writer *w, uint64_t v, size_t bytes)
{
	uint8_t b[8];

	for (size_t i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(w, b, bytes);
}

size_t cache_meta_size(const struct cache_entry_meta *m)
{
	size_t n = FIXED + 2 + m->key_len + 2 + m->vary_len;

	if (m->key_len > UINT16_MAX || m->vary_len > UINT16_MAX || m->field_count > CACHE_ENTRY_FIELDS_MAX)
		return 0;
	for (size_t i = 0; i < m->field_count; i++) {
		if (m->fields[i].name_len > UINT16_MAX || m->fields[i].value_len > CACHE_ENTRY_HEAD_MAX)
			return 0;
		n += 2 + m->fields[i].name_len + 4 + m->fields[i].value_len;
	}
	return n <= CACHE_ENTRY_HEAD_MAX ? n : 0;
}

size_t cache_meta_write(const struct cache_entry_meta *m, uint8_t *buf, size_t size)
{
	size_t n = cache_meta_size(m);
	struct writer w = { buf, size, true };

	if (n == 0 || n > size || m->status < 100 || m->status > 999)
		return 0;
	put(&w, CACHE_ENTRY_MAGIC, 4);
	put_uint(&w, n, 4);
	put(&w, m->hash, sizeof(m->hash));
	put_uint(&w, (uint64_t)m->request_time, 8);
	put_uint(&w, (uint64_t)m->response_time, 8);
	put_uint(&w, m->body_len, 8);
	put_uint(&w, (uint64_t)m->status, 2);
	put_uint(&w, m->field_count, 2);
	put_uint(&w, m->key_len, 2);
	put(&w, m->key, m->key_len);
	put_uint(&w, m->vary_len, 2);
	put(&w, m->vary, m->vary_len);
	for (size_t i = 0; i < m->field_count; i++) {
		put_uint(&w, m->fields[i].name_len, 2);
		put(&w, m->fields[i].name, m->fields[i].name_len);
		put_uint(&w, m->fields[i].value_len, 4);
		put(&w, m->fields[i].value, m->fields[i].value_len);
	}
	return w.ok && (size_t)(w.p - buf) == n ? n : 0;
}

struct reader {
	const uint8_t *p;
	size_t         left;
	bool           ok;
};

static const uint8_t *take(struct reader *r, size_t len)
{
	const uint8_t *at = r->p;

	if (!r->ok || len > r->left) {
		r->ok = false;
		return NULL;
	}
	r->p += len;
	r->left -= len;
	return at;
}

static uint64_t take_uint(struct reader *r, size_t bytes)
{
	const uint8_t *b = take(r, bytes);
	uint64_t v = 0;

	for (size_t i = 0; b != NULL && i < bytes; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

/* A field name is a token, a value has no CR, LF or NUL: what the proxy would send anyway. */
static bool field_ok(const char *name, size_t name_len, const char *value, size_t value_len)
{
	static const char token_extra[] = "!#$%&'*+-.^_`|~";

	if (name_len == 0)
		return false;
	for (size_t i = 0; i < name_len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c != '\0' && strchr(token_extra, c) != NULL)))
			return false;
	}
	for (size_t i = 0; i < value_len; i++)
		if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
			return false;
	return true;
}

size_t cache_meta_parse(const uint8_t *buf, size_t len, struct cache_entry_meta *m, struct cache_field *fields,
                        size_t max)
{
	struct reader r = { buf, len, true };
	const uint8_t *magic = take(&r, 4), *hash;
	size_t head;

	memset(m, 0, sizeof(*m));
	if (magic == NULL || memcmp(magic, CACHE_ENTRY_MAGIC, 4) != 0)
		return 0;
	head = (size_t)take_uint(&r, 4);
	if (head < FIXED || head > CACHE_ENTRY_HEAD_MAX || head > len)
		return 0;
	r.left = head - 8;   /* nothing of the head may reach into the body */
	hash = take(&r, sizeof(m->hash));
	if (hash != NULL)
		memcpy(m->hash, hash, sizeof(m->hash));
	m->request_time = (int64_t)take_uint(&r, 8);
	m->response_time = (int64_t)take_uint(&r, 8);
	m->body_len = take_uint(&r, 8);
	m->status = (int)take_uint(&r, 2);
	m->field_count = (size_t)take_uint(&r, 2);
	m->key_len = (size_t)take_uint(&r, 2);
	m->key = (const char *)take(&r, m->key_len);
	m->vary_len = (size_t)take_uint(&r, 2);
	m->vary = (const char *)take(&r, m->vary_len);
	if (!r.ok || m->status < 100 || m->status > 999 || m->field_count > max || m->field_count > CACHE_ENTRY_FIELDS_MAX)
		return 0;
	m->fields = fields;
	for (size_t i = 0; i < m->field_count; i++) {
		struct cache_field *f = &fields[i];

		f->name_len = (size_t)take_uint(&r, 2);
		f->name = (const char *)take(&r, f->name_len);
		f->value_len = (size_t)take_uint(&r, 4);
		f->value = (const char *)take(&r, f->value_len);
		if (!r.ok || !field_ok(f->name, f->name_len, f->value, f->value_len))
			return 0;
	}
	return r.ok && r.left == 0 ? head : 0;
}

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Appends text to out at *n (always leaving room for the NUL); false when it does not fit. */
static bool out_put(char *out, size_t size, size_t *n, const char *text, size_t len)
{
	if (len >= size - *n)
		return false;
	memcpy(out + *n, text, len);
	*n += len;
	return true;
}

struct member {
	const char *p;
	size_t      len;
};

static int member_order(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = strncasecmp(x->p, y->p, n);

	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/*
 * One field value, normalised: list members trimmed and joined by ","
 * (whitespace around a comma is no part of a list member), runs of
 * whitespace inside one made a single space.  Accept-Language is also
 * case-folded and its members sorted (their order means nothing there:
 * each carries its own weight).  false when it does not fit.
 */
static bool value_put(char *out, size_t size, size_t *n, const char *value, bool language)
{
	struct member m[32];
	size_t count = 0;
	const char *p = value;

	while (*p != '\0' && count < sizeof(m) / sizeof(m[0])) {
		const char *start, *end;

		while (ows(*p))
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && ows(end[-1]))
			end--;
		m[count++] = (struct member){ start, (size_t)(end - start) };
		if (*p == ',')
			p++;
	}
	if (*p != '\0')
		m[count - 1].len = strlen(m[count - 1].p);   /* more members than room: the rest as one */
	if (language)
		qsort(m, count, sizeof(m[0]), member_order);
	for (size_t i = 0; i < count; i++) {
		bool space = false;

		if (i > 0 && !out_put(out, size, n, ",", 1))
			return false;
		for (size_t k = 0; k < m[i].len; k++) {
			char c = m[i].p[k];

			if (ows(c)) {
				space = true;
				continue;
			}
			if (space && !out_put(out, size, n, " ", 1))
				return false;
			space = false;
			if (language && c >= 'A' && c <= 'Z')
				c = (char)(c + 32);
			if (!out_put(out, size, n, &c, 1))
				return false;
		}
	}
	return true;
}

long cache_vary_values(const char *vary, cache_header_fn header, void *arg, char *out, size_t size)
{
	size_t n = 0;
	const char *p = vary;

	if (size == 0)
		return -1;
	while (*p != '\0') {
		const char *name, *value;
		size_t name_len;

		while (*p == ',' || ows(*p))
			p++;
		if (*p == '\0')
			break;
		name = p;
		while (*p != '\0' && *p != ',' && !ows(*p))
			p++;
		name_len = (size_t)(p - name);
		if (name_len == 1 && *name == '*')
			return -1;
		for (size_t i = 0; i < name_len; i++) {
			char c = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] + 32) : name[i];

			if (!out_put(out, size, &n, &c, 1))
				return -1;
		}
		if (!out_put(out, size, &n, ":", 1))
			return -1;
		value = header(arg, name, name_len);
		if (value != NULL && !value_put(out, size, &n, value,
		                                name_len == 15 && strncasecmp(name, "accept-language", 15) == 0))
			return -1;
		if (!out_put(out, size, &n, "\n", 1))
			return -1;
	}
	out[n] = '\0';
	return (long)n;
}
