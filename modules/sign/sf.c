#include "sf.h"

#include <stdio.h>
#include <string.h>

/* --- arena -------------------------------------------------------------- */

static void *arena_alloc(struct sf_arena *a, size_t size)
{
	size_t at = (a->used + 7) & ~(size_t)7;
	void *p;

	if (at > a->cap || size > a->cap - at)
		return NULL;
	p = a->buf + at;
	a->used = at + size;
	return p;
}

/* Appends one element to a growing array kept at the end of the arena (elements are small). */
static void *arena_push(struct sf_arena *a, void *array, size_t *count, size_t elem)
{
	char *grown = arena_alloc(a, (*count + 1) * elem);

	if (grown == NULL)
		return NULL;
	if (*count > 0)
		memcpy(grown, array, *count * elem);
	(*count)++;
	return grown;
}

/* --- parsing (RFC 8941 §4.2) -------------------------------------------- */

struct cursor {
	const char      *p, *end;
	struct sf_arena *arena;
};

static bool at_end(const struct cursor *c)
{
	return c->p >= c->end;
}

static char peek(const struct cursor *c)
{
	return at_end(c) ? '\0' : *c->p;
}

static void skip_sp(struct cursor *c)
{
	while (!at_end(c) && *c->p == ' ')
		c->p++;
}

static void skip_ows(struct cursor *c)
{
	while (!at_end(c) && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

static bool is_lcalpha(char ch)
{
	return ch >= 'a' && ch <= 'z';
}

static bool is_alpha(char ch)
{
	return is_lcalpha(ch) || (ch >= 'A' && ch <= 'Z');
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_tchar(char ch)
{
	return is_alpha(ch) || is_digit(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static char *copy_text(struct cursor *c, const char *s, size_t len)
{
	char *out = arena_alloc(c->arena, len + 1);

	if (out == NULL)
		return NULL;
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

static const char *parse_key(struct cursor *c)
{
	const char *start = c->p;

	if (!is_lcalpha(peek(c)) && peek(c) != '*')
		return NULL;
	while (!at_end(c) && (is_lcalpha(*c->p) || is_digit(*c->p) || strchr("_-.*", *c->p) != NULL))
		c->p++;
	return copy_text(c, start, (size_t)(c->p - start));
}

static int parse_number(struct cursor *c, struct sf_bare *out)
{
	int64_t sign = 1, value = 0, frac = 0;
	int digits = 0, frac_digits = 0;

	if (peek(c) == '-') {
		sign = -1;
		c->p++;
	}
	if (!is_digit(peek(c)))
		return -1;
	while (is_digit(peek(c))) {
		if (++digits > 15)
			return -1;
		value = value * 10 + (*c->p++ - '0');
	}
	if (peek(c) != '.') {
		out->type = SF_INTEGER;
		out->integer = sign * value;
		return 0;
	}
	if (digits > 12)
		return -1;
	c->p++;
	while (is_digit(peek(c))) {
		if (++frac_digits > 3)
			return -1;
		frac = frac * 10 + (*c->p++ - '0');
	}
	if (frac_digits == 0)
		return -1;
	while (frac_digits++ < 3)
		frac *= 10;
	out->type = SF_DECIMAL;
	out->integer = sign * (value * 1000 + frac);
	return 0;
}

static int parse_string(struct cursor *c, struct sf_bare *out)
{
	char *buf;
	size_t n = 0;

	c->p++;   /* the opening quote */
	buf = arena_alloc(c->arena, (size_t)(c->end - c->p) + 1);
	if (buf == NULL)
		return -1;
	while (!at_end(c)) {
		char ch = *c->p++;

		if (ch == '\\') {
			if (at_end(c) || (*c->p != '"' && *c->p != '\\'))
				return -1;
			buf[n++] = *c->p++;
		} else if (ch == '"') {
			buf[n] = '\0';
			/* Give back what the string did not use. */
			c->arena->used = (size_t)(buf - c->arena->buf) + n + 1;
			out->type = SF_STRING;
			out->str = buf;
			out->len = n;
			return 0;
		} else if ((unsigned char)ch < 0x20 || (unsigned char)ch > 0x7e) {
			return -1;
		} else {
			buf[n++] = ch;
		}
	}
	return -1;
}

static int parse_token(struct cursor *c, struct sf_bare *out)
{
	const char *start = c->p;

	c->p++;
	while (!at_end(c) && (is_tchar(*c->p) || *c->p == ':' || *c->p == '/'))
		c->p++;
	out->type = SF_TOKEN;
	out->len = (size_t)(c->p - start);
	out->str = copy_text(c, start, out->len);
	return out->str != NULL ? 0 : -1;
}

static int parse_bytes(struct cursor *c, struct sf_bare *out)
{
	const char *start = ++c->p, *close;
	uint8_t *buf;
	long n;

	close = memchr(start, ':', (size_t)(c->end - start));
	if (close == NULL)
		return -1;
	buf = arena_alloc(c->arena, (size_t)(close - start) + 1);
	if (buf == NULL)
		return -1;
	n = sf_base64_decode(start, (size_t)(close - start), buf, (size_t)(close - start) + 1);
	if (n < 0)
		return -1;
	c->p = close + 1;
	out->type = SF_BYTES;
	out->str = (const char *)buf;
	out->len = (size_t)n;
	return 0;
}

static int parse_bare(struct cursor *c, struct sf_bare *out)
{
	char ch = peek(c);

	memset(out, 0, sizeof(*out));
	if (ch == '-' || is_digit(ch))
		return parse_number(c, out);
	if (ch == '"')
		return parse_string(c, out);
	if (ch == '*' || is_alpha(ch))
		return parse_token(c, out);
	if (ch == ':')
		return parse_bytes(c, out);
	if (ch == '?') {
		c->p++;
		if (peek(c) != '0' && peek(c) != '1')
			return -1;
		out->type = SF_BOOLEAN;
		out->boolean = *c->p++ == '1';
		return 0;
	}
	return -1;
}

static int parse_params(struct cursor *c, struct sf_param **params, size_t *count)
{
	*params = NULL;
	*count = 0;
	while (peek(c) == ';') {
		struct sf_param p = { 0 };
		size_t i;

		c->p++;
		skip_sp(c);
		if ((p.key = parse_key(c)) == NULL)
			return -1;
		if (peek(c) == '=') {
			c->p++;
			if (parse_bare(c, &p.value) < 0)
				return -1;
		} else {
			p.value.type = SF_BOOLEAN;
			p.value.boolean = true;
		}
		/* A repeated key takes the later value, in the earlier place. */
		for (i = 0; i < *count; i++)
			if (strcmp((*params)[i].key, p.key) == 0)
				break;
		if (i < *count) {
			(*params)[i].value = p.value;
			continue;
		}
		*params = arena_push(c->arena, *params, count, sizeof(**params));
		if (*params == NULL)
			return -1;
		(*params)[*count - 1] = p;
	}
	return 0;
}

static int parse_item(struct cursor *c, struct sf_item *out)
{
	if (parse_bare(c, &out->bare) < 0)
		return -1;
	return parse_params(c, &out->params, &out->nparams);
}

static int parse_inner_list(struct cursor *c, struct sf_member *m)
{
	c->p++;   /* ( */
	m->is_inner = true;
	m->list = NULL;
	m->nlist = 0;
	for (;;) {
		struct sf_item item;

		skip_sp(c);
		if (peek(c) == ')') {
			c->p++;
			return parse_params(c, &m->params, &m->nparams);
		}
		if (parse_item(c, &item) < 0)
			return -1;
		m->list = arena_push(c->arena, m->list, &m->nlist, sizeof(*m->list));
		if (m->list == NULL)
			return -1;
		m->list[m->nlist - 1] = item;
		if (peek(c) != ' ' && peek(c) != ')')
			return -1;
	}
}

int sf_parse_dict(const char *text, size_t len, struct sf_arena *arena, struct sf_dict *out)
{
	struct cursor c = { text, text + len, arena };

	out->members = NULL;
	out->count = 0;
	skip_sp(&c);
	while (!at_end(&c)) {
		struct sf_member m = { 0 };
		size_t i;

		if ((m.key = parse_key(&c)) == NULL)
			return -1;
		if (peek(&c) == '=') {
			c.p++;
			if (peek(&c) == '(' ? parse_inner_list(&c, &m) < 0 : parse_item(&c, &m.item) < 0)
				return -1;
		} else {
			m.item.bare.type = SF_BOOLEAN;
			m.item.bare.boolean = true;
			if (parse_params(&c, &m.item.params, &m.item.nparams) < 0)
				return -1;
		}
		for (i = 0; i < out->count; i++)
			if (strcmp(out->members[i].key, m.key) == 0)
				break;
		if (i < out->count) {
			out->members[i] = m;
		} else {
			out->members = arena_push(arena, out->members, &out->count, sizeof(*out->members));
			if (out->members == NULL)
				return -1;
			out->members[out->count - 1] = m;
		}
		skip_ows(&c);
		if (at_end(&c))
			return 0;
		if (*c.p++ != ',')
			return -1;
		skip_ows(&c);
		if (at_end(&c))
			return -1;   /* a trailing comma */
	}
	return 0;
}

const struct sf_member *sf_dict_get(const struct sf_dict *d, const char *key)
{
	for (size_t i = 0; i < d->count; i++)
		if (strcmp(d->members[i].key, key) == 0)
			return &d->members[i];
	return NULL;
}

const struct sf_param *sf_params_get(const struct sf_param *p, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(p[i].key, key) == 0)
			return &p[i];
	return NULL;
}

/* --- serialising (RFC 8941 §4.1) ---------------------------------------- */

struct out {
	char  *p;
	size_t size, len;
	bool   full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || n >= o->size - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_bare(struct out *o, const struct sf_bare *b)
{
	char num[32];

	switch (b->type) {
	case SF_INTEGER:
		snprintf(num, sizeof(num), "%lld", (long long)b->integer);
		puts_(o, num);
		break;
	case SF_DECIMAL: {
		int64_t v = b->integer < 0 ? -b->integer : b->integer;
		size_t n;

		/* Shortest form: trailing zeros dropped, one fractional digit kept. */
		snprintf(num, sizeof(num), "%s%lld.%03d", b->integer < 0 ? "-" : "", (long long)(v / 1000),
		         (int)(v % 1000));
		n = strlen(num);
		while (num[n - 1] == '0' && num[n - 2] != '.')
			num[--n] = '\0';
		puts_(o, num);
		break;
	}
	case SF_STRING:
		put(o, "\"", 1);
		for (size_t i = 0; i < b->len; i++) {
			if (b->str[i] == '"' || b->str[i] == '\\')
				put(o, "\\", 1);
			put(o, b->str + i, 1);
		}
		put(o, "\"", 1);
		break;
	case SF_TOKEN:
		put(o, b->str, b->len);
		break;
	case SF_BYTES: {
		size_t need = 4 * ((b->len + 2) / 3) + 1;

		put(o, ":", 1);
		if (!o->full && need < o->size - o->len) {
			o->len += sf_base64_encode((const uint8_t *)b->str, b->len, o->p + o->len);
		} else {
			o->full = true;
		}
		put(o, ":", 1);
		break;
	}
	case SF_BOOLEAN:
		puts_(o, b->boolean ? "?1" : "?0");
		break;
	}
}

static void put_params(struct out *o, const struct sf_param *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		put(o, ";", 1);
		puts_(o, p[i].key);
		if (p[i].value.type == SF_BOOLEAN && p[i].value.boolean)
			continue;
		put(o, "=", 1);
		put_bare(o, &p[i].value);
	}
}

static void put_item(struct out *o, const struct sf_item *item)
{
	put_bare(o, &item->bare);
	put_params(o, item->params, item->nparams);
}

static void put_member_value(struct out *o, const struct sf_member *m)
{
	if (!m->is_inner) {
		put_item(o, &m->item);
		return;
	}
	put(o, "(", 1);
	for (size_t i = 0; i < m->nlist; i++) {
		if (i > 0)
			put(o, " ", 1);
		put_item(o, &m->list[i]);
	}
	put(o, ")", 1);
	put_params(o, m->params, m->nparams);
}

static struct out out_begin(char *buf, size_t size)
{
	if (size > 0)
		buf[0] = '\0';
	return (struct out){ buf, size, 0, size == 0 };
}

static long out_done(const struct out *o)
{
	return o->full ? -1 : (long)o->len;
}

long sf_serialize_item(const struct sf_item *item, char *out, size_t size)
{
	struct out o = out_begin(out, size);

	put_item(&o, item);
	return out_done(&o);
}

long sf_serialize_member_value(const struct sf_member *m, char *out, size_t size)
{
	struct out o = out_begin(out, size);

	put_member_value(&o, m);
	return out_done(&o);
}

long sf_serialize_dict(const struct sf_dict *d, char *out, size_t size)
{
	struct out o = out_begin(out, size);

	for (size_t i = 0; i < d->count; i++) {
		const struct sf_member *m = &d->members[i];

		if (i > 0)
			put(&o, ", ", 2);
		puts_(&o, m->key);
		if (!m->is_inner && m->item.bare.type == SF_BOOLEAN && m->item.bare.boolean) {
			put_params(&o, m->item.params, m->item.nparams);
			continue;
		}
		put(&o, "=", 1);
		put_member_value(&o, m);
	}
	return out_done(&o);
}

/* --- base64 ------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sf_base64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
		             (i + 2 < len ? in[i + 2] : 0);

		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_value(char ch)
{
	const char *p = ch != '\0' ? strchr(b64, ch) : NULL;

	return p != NULL ? (int)(p - b64) : -1;
}

long sf_base64_decode(const char *in, size_t len, uint8_t *out, size_t size)
{
	uint32_t acc = 0;
	size_t o = 0, pad = 0;
	int bits = 0;

	while (len > 0 && in[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if ((len + pad) % 4 != 0 && pad > 0)
		return -1;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(in[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= size)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero, so every value has one encoding. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (long)o;
}
