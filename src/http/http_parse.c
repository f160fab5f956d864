#include "http_parse.h"

#include <string.h>
#include <strings.h>

/*
 * Character classes, one table lookup per byte: the parser looks at every
 * byte of a head, and comparisons chained per byte cost a cached request
 * more instructions than the rest of its parsing.
 */
enum {
	CC_TCHAR  = 1,   /* tchar (RFC 9110 §5.6.2) */
	CC_HOST   = 2,   /* reg-name: unreserved, sub-delims and '%' (RFC 3986 §3.2.2) */
	CC_TARGET = 4,   /* allowed unescaped in a request-target (target_char_ok) */
	CC_FIELD  = 8,   /* allowed in a field value: VCHAR, SP, HTAB, obs-text (RFC 9110 §5.5) */
};

#define CC_IS_ALNUM(c) (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z'))
#define CC_OF(c)                                                                                   \
	((CC_IS_ALNUM(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' ||      \
	  (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' ||          \
	  (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~' ? CC_TCHAR : 0) |                       \
	 (CC_IS_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || (c) == '%' ||      \
	  (c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||          \
	  (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=' ? CC_HOST : 0) |          \
	 ((c) > 0x20 && (c) < 0x7f && (c) != '#' ? CC_TARGET : 0) |                                    \
	 (((c) >= 0x20 && (c) != 0x7f) || (c) == '\t' ? CC_FIELD : 0))
#define CC_4(c)   CC_OF(c), CC_OF((c) + 1), CC_OF((c) + 2), CC_OF((c) + 3)
#define CC_16(c)  CC_4(c), CC_4((c) + 4), CC_4((c) + 8), CC_4((c) + 12)
#define CC_64(c)  CC_16(c), CC_16((c) + 16), CC_16((c) + 32), CC_16((c) + 48)

static const unsigned char char_class[256] = { CC_64(0), CC_64(64), CC_64(128), CC_64(192) };

static bool is_tchar(unsigned char c)
{
	return char_class[c] & CC_TCHAR;
}

/*
 * A field name (tchars only) against a lower-case name of letters and '-':
 * OR-ing in 0x20 folds case exactly there, and inline it costs a tenth of
 * a strcasecmp call.
 */
static bool name_is(const char *name, const char *lower, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)name[i] | 0x20) != (unsigned char)lower[i])
			return false;
	return true;
}

static bool is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/*
 * How many bytes at s are none of CR, LF and NUL, eight at a time: most of
 * a head is plain text, and looking at each byte cost a tenth of a cached
 * request's instructions.  The lowest flagged byte of a word is exact
 * (borrows only run upwards), so it is where the caller resumes.
 */
static size_t plain_prefix(const char *s, size_t len)
{
	size_t i = 0;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;

	for (; len - i >= 8; i += 8) {
		uint64_t w, cr, lf, special;

		memcpy(&w, s + i, 8);
		cr = w ^ (ones * '\r');
		lf = w ^ (ones * '\n');
		special = ((w - ones) & ~w) | ((cr - ones) & ~cr) | ((lf - ones) & ~lf);
		special &= highs;
		if (special != 0)
			return i + (size_t)__builtin_ctzll(special) / 8;
	}
#endif
	while (i < len && s[i] != '\r' && s[i] != '\n' && s[i] != '\0')
		i++;
	return i;
}

int http_head_find(const char *buf, size_t len, size_t *scan, const struct http_limits *lim,
                   size_t *head_start, size_t *head_len)
{
	size_t start = 0, i;
	const char *first_lf;

	/* Leading empty lines: RFC 9112 §2.2 lets a server skip them. */
	while (start + 1 < len && buf[start] == '\r' && buf[start + 1] == '\n')
		start += 2;
	if (start > lim->max_head)
		return 400;
	i = *scan > start ? *scan : start;
	while ((i += plain_prefix(buf + i, len - i)) < len) {
		if (buf[i] == '\r') {
			if (i + 1 == len) {
				i = len;
				break;
			}
			if (buf[i + 1] != '\n')
				return 400;
			i++;
		} else if (buf[i] == '\0') {
			return 400;
		} else if (i == start || buf[i - 1] != '\r') {
			/* A bare LF is refused everywhere (RFC 9112 §2.2 permits either choice). */
			return 400;
		}
		/* buf[i] is a LF after a CR: the head ends at the second in a row. */
		if (i - start >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			break;
		i++;
	}
	first_lf = memchr(buf + start, '\n', (i < len ? i + 1 : len) - start);
	if (first_lf == NULL ? len - start > lim->max_request_line + 1
	                     : (size_t)(first_lf - buf - start) > lim->max_request_line + 1)
		return 414;
	if (i == len) {
		/* Resume one byte back so a CR at the very end is looked at again. */
		*scan = len > start ? len - 1 : start;
		return len - start > lim->max_head ? 431 : HTTP_PARSE_AGAIN;
	}
	if (i + 1 - start > lim->max_head)
		return 431;
	*head_start = start;
	*head_len = i + 1 - start;
	*scan = i + 1;
	return 0;
}

struct method_name {
	const char *name;
	size_t      len;
	unsigned    bit;
};

static const struct method_name known_methods[] = {
	{ "GET", 3, HTTPD_METHOD_GET },         { "HEAD", 4, HTTPD_METHOD_HEAD },
	{ "POST", 4, HTTPD_METHOD_POST },       { "PUT", 3, HTTPD_METHOD_PUT },
	{ "DELETE", 6, HTTPD_METHOD_DELETE },   { "OPTIONS", 7, HTTPD_METHOD_OPTIONS },
	{ "TRACE", 5, HTTPD_METHOD_TRACE },     { "CONNECT", 7, HTTPD_METHOD_CONNECT },
	{ "PATCH", 5, HTTPD_METHOD_PATCH },
};

/*
 * Method names are case-sensitive (RFC 9110 §9.1).  Any other token is an
 * extension method (WebDAV's PROPFIND, ...): the location's module decides.
 */
static unsigned method_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++)
		if (known_methods[i].len == len && memcmp(known_methods[i].name, name, len) == 0)
			return known_methods[i].bit;
	return HTTPD_METHOD_OTHER;
}

/*
 * Characters RFC 3986 allows in a request-target, plus the few that
 * browsers send unescaped in queries ({ } | ^ ` " < > \).  Never CTL, SP,
 * DEL, '#', or non-ASCII.
 */
static bool target_char_ok(unsigned char c)
{
	return char_class[c] & CC_TARGET;
}

/* Every '%' must start a two-digit hex escape (RFC 3986 §2.1). */
static bool escapes_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%')
			continue;
		if (len - i < 3 || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
			return false;
		i += 2;
	}
	return true;
}

/* uri-host [ ":" port ] (RFC 9110 §7.2); the port must fit 16 bits. */
static bool host_valid(const char *s, size_t len)
{
	size_t i = 0, host_end;
	bool escaped = false;

	if (len == 0)
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!is_hex((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		host_end = (size_t)(close - s) + 1;
		if (host_end == 2)
			return false;
	} else {
		for (i = 0; i < len && (char_class[(unsigned char)s[i]] & CC_HOST); i++)
			escaped |= s[i] == '%';
		host_end = i;
		if (host_end == 0 || (host_end < len && s[host_end] != ':'))
			return false;
	}
	if (escaped && !escapes_valid(s, host_end))
		return false;
	if (host_end == len)
		return true;
	if (s[host_end] != ':')
		return false;
	/* port = *DIGIT; an empty port is allowed by the grammar. */
	if (len - host_end - 1 > 5)
		return false;
	{
		unsigned long port = 0;

		for (i = host_end + 1; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return false;
			port = port * 10 + (unsigned long)(s[i] - '0');
		}
		if (port > 65535)
			return false;
	}
	return true;
}

/* The target is never modified: the access log and modules see it as received. */
static int target_parse(const char *target, size_t len, unsigned method, struct http_head *out)
{
	const char *q;
	bool escaped = false;

	for (size_t i = 0; i < len; i++) {
		if (!target_char_ok((unsigned char)target[i]))
			return 400;
		escaped |= target[i] == '%';
	}
	if (escaped && !escapes_valid(target, len))
		return 400;

	if (target[0] == '/') {
		out->form = TARGET_ORIGIN;
	} else if (len == 1 && target[0] == '*') {
		if (method != HTTPD_METHOD_OPTIONS)
			return 400;
		out->form = TARGET_ASTERISK;
		out->path = "*";
		out->path_len = 1;
		return 0;
	} else if (method == HTTPD_METHOD_CONNECT) {
		if (!host_valid(target, len))
			return 400;
		out->form = TARGET_AUTHORITY;
		out->host = target;
		out->host_len = len;
		out->path = "/";
		out->path_len = 1;
		return 0;
	} else if ((len > 7 && strncasecmp(target, "http://", 7) == 0) ||
	           (len > 8 && strncasecmp(target, "https://", 8) == 0)) {
		const char *authority = strstr(target, "://") + 3;
		size_t auth_len = strcspn(authority, "/?");

		if (memchr(authority, '@', auth_len) != NULL || !host_valid(authority, auth_len))
			return 400;
		/* The authority overrides Host (RFC 9112 §3.2.2). */
		out->form = TARGET_ABSOLUTE;
		out->host = authority;
		out->host_len = auth_len;
		len -= (size_t)(authority + auth_len - target);
		target = authority + auth_len;
		if (len == 0 || target[0] == '?') {
			/* An empty path means "/" (RFC 9110 §4.2.3). */
			out->path = "/";
			out->path_len = 1;
			out->query = len > 0 ? target + 1 : NULL;
			return 0;
		}
	} else {
		return 400;
	}
	q = memchr(target, '?', len);
	out->path = target;
	out->path_len = q != NULL ? (size_t)(q - target) : len;
	out->query = q != NULL ? q + 1 : NULL;
	return 0;
}

static int version_parse(const char *v, size_t len, int *version)
{
	if (len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' ||
	    v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1')
		return 505;
	*version = v[7] == '0' ? 10 : 11;
	return 0;
}

static int request_line_parse(char *line, size_t len, struct http_head *out)
{
	char *sp1 = memchr(line, ' ', len);
	char *sp2, *target;
	size_t method_len, target_len;
	int rc;

	if (sp1 == NULL || sp1 == line)
		return 400;
	method_len = (size_t)(sp1 - line);
	for (size_t i = 0; i < method_len; i++)
		if (!is_tchar((unsigned char)line[i]))
			return 400;
	target = sp1 + 1;
	sp2 = memchr(target, ' ', len - method_len - 1);
	if (sp2 == NULL || sp2 == target)
		return 400;
	target_len = (size_t)(sp2 - target);
	rc = version_parse(sp2 + 1, len - (size_t)(sp2 + 1 - line), &out->version);
	if (rc != 0)
		return rc;
	*sp1 = '\0';
	*sp2 = '\0';
	out->method_name = line;
	out->method_len = method_len;
	out->method = method_lookup(line, method_len);
	out->target = target;
	out->target_len = target_len;
	return target_parse(target, target_len, out->method, out);
}

/* Splits a field value into comma-separated list members, trimmed. */
static const char *list_next(const char *p, const char **item, size_t *item_len)
{
	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	if (*p == '\0')
		return NULL;
	*item = p;
	while (*p != '\0' && *p != ',')
		p++;
	*item_len = (size_t)(p - *item);
	while (*item_len > 0 && ((*item)[*item_len - 1] == ' ' || (*item)[*item_len - 1] == '\t'))
		(*item_len)--;
	return p;
}

/* Content-Length = 1*DIGIT; identical repeats are one value (RFC 9110 §8.6). */
int httpd_http1_content_length(const char *value, int64_t *length)
{
	const char *item;
	size_t item_len;
	const char *p = value;
	bool any = false;

	while ((p = list_next(p, &item, &item_len)) != NULL) {
		int64_t v = 0;

		if (item_len == 0)
			return -1;
		for (size_t i = 0; i < item_len; i++) {
			if (item[i] < '0' || item[i] > '9')
				return -1;
			if (v > (INT64_MAX - 9) / 10)
				return -1;
			v = v * 10 + (item[i] - '0');
		}
		if (*length >= 0 && *length != v)
			return -1;
		*length = v;
		any = true;
	}
	return any ? 0 : -1;
}

/*
 * Transfer-Encoding: chunked must appear exactly once and last
 * (RFC 9112 §6.1); any other coding is one we do not implement.
 */
static int transfer_encoding_add(const char *value, bool *chunked)
{
	const char *item;
	size_t item_len;
	const char *p = value;
	bool any = false;

	while ((p = list_next(p, &item, &item_len)) != NULL) {
		any = true;
		if (*chunked)
			return 400;   /* something after chunked, or chunked twice */
		for (size_t i = 0; i < item_len; i++)
			if (!is_tchar((unsigned char)item[i]))
				return 400;
		if (item_len == 7 && strncasecmp(item, "chunked", 7) == 0)
			*chunked = true;
		else
			return 501;
	}
	return any ? 0 : 400;
}

bool httpd_http1_token(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

bool httpd_http1_list_has(const char *value, const char *token)
{
	const char *item;
	size_t item_len;
	size_t token_len = strlen(token);
	const char *p = value;

	while ((p = list_next(p, &item, &item_len)) != NULL)
		if (item_len == token_len && strncasecmp(item, token, token_len) == 0)
			return true;
	return false;
}

/*
 * No CTL but HTAB, no DEL (RFC 9110 §5.5), eight bytes at a time: a word
 * with neither a byte below 0x20 nor a 0x7f passes on a dozen
 * instructions; one with either (a tab, most likely) is looked at by byte.
 */
static bool field_value_valid(const char *s, size_t len)
{
	size_t i = 0;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;

	for (; len - i >= 8; i += 8) {
		uint64_t w, del;

		memcpy(&w, s + i, 8);
		del = w ^ (ones * 0x7f);
		if ((((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs) {
			for (size_t j = i; j < i + 8; j++)
				if (!(char_class[(unsigned char)s[j]] & CC_FIELD))
					return false;
		}
	}
#endif
	for (; i < len; i++)
		if (!(char_class[(unsigned char)s[i]] & CC_FIELD))
			return false;
	return true;
}

/* One field line "name: value" in place; name and value end up NUL-terminated. */
static int field_line_parse(char *line, size_t len, struct httpd_header *h)
{
	char *colon = memchr(line, ':', len);
	char *value, *end;

	/* Leading whitespace is obs-fold, refused per RFC 9112 §5.2. */
	if (colon == NULL || colon == line)
		return 400;
	for (char *p = line; p < colon; p++)
		if (!is_tchar((unsigned char)*p))
			return 400;   /* also catches whitespace before the colon (§5.1) */
	value = colon + 1;
	end = line + len;
	if (!field_value_valid(value, (size_t)(end - value)))
		return 400;
	while (value < end && (*value == ' ' || *value == '\t'))
		value++;
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*colon = '\0';
	*end = '\0';
	h->name = line;
	h->name_len = (size_t)(colon - line);
	h->value = value;
	h->value_len = (size_t)(end - value);
	return 0;
}

static int framing_decide(struct http_head *out, const struct httpd_header *host_header,
                          bool has_te, int host_count)
{
	if (out->version == 11 && host_count != 1)
		return 400;
	if (host_count > 1)
		return 400;
	if (host_header != NULL && !host_valid(host_header->value, host_header->value_len))
		return 400;
	if (out->host == NULL && host_header != NULL) {
		out->host = host_header->value;
		out->host_len = host_header->value_len;
	}
	if (has_te) {
		/* Both framings at once is the classic smuggling vector (RFC 9112 §6.3). */
		if (out->content_length >= 0 || out->version == 10)
			return 400;
	}
	return 0;
}

/* RFC 9110 §10.1.1: 100-continue (the client may wait for it before a body) or 417. */
static int expectation(const char *expect, bool body_follows, struct http_head *out)
{
	if (strcasecmp(expect, "100-continue") != 0)
		return 417;
	out->expect_continue = body_follows;
	return 0;
}

int http_head_parse(char *head, size_t len, const struct http_limits *lim,
                    struct httpd_header *headers, struct http_head *out)
{
	char *line_end = memchr(head, '\r', len);
	char *p, *end = head + len;
	const struct httpd_header *host_header = NULL;
	int host_count = 0;
	bool has_te = false, conn_close = false, conn_keep_alive = false;
	const char *expect = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	out->content_length = -1;
	out->headers = headers;
	if (line_end == NULL)
		return 400;
	*line_end = '\0';
	rc = request_line_parse(head, (size_t)(line_end - head), out);
	if (rc != 0)
		return rc;
	for (p = line_end + 2; p < end; ) {
		char *eol = memchr(p, '\r', (size_t)(end - p));
		struct httpd_header *h;

		if (eol == NULL)
			eol = end;
		if (eol == p)
			break;
		if (out->header_count >= lim->max_headers)
			return 431;
		h = &headers[out->header_count];
		if (field_line_parse(p, (size_t)(eol - p), h) != 0)
			return 400;
		out->header_count++;
		p = eol + 2;
		if ((h->name_len == 5 && name_is(h->name, "range", 5)) ||
		    (h->name_len > 3 && (h->name[0] | 0x20) == 'i' && (h->name[1] | 0x20) == 'f' && h->name[2] == '-'))
			out->conditional = true;

		switch (h->name_len) {
		case 4:
			if (name_is(h->name, "host", 4)) {
				host_header = h;
				host_count++;
			}
			break;
		case 6:
			if (name_is(h->name, "expect", 6)) {
				if (expect != NULL)
					return 417;
				expect = h->value;
			}
			break;
		case 10:
			if (name_is(h->name, "connection", 10)) {
				conn_close |= httpd_http1_list_has(h->value, "close");
				conn_keep_alive |= httpd_http1_list_has(h->value, "keep-alive");
			}
			break;
		case 14:
			if (name_is(h->name, "content-length", 14) &&
			    httpd_http1_content_length(h->value, &out->content_length) != 0)
				return 400;
			break;
		case 17:
			if (name_is(h->name, "transfer-encoding", 17)) {
				has_te = true;
				rc = transfer_encoding_add(h->value, &out->chunked);
				if (rc != 0)
					return rc;
			}
			break;
		default:
			break;
		}
	}
	rc = framing_decide(out, host_header, has_te, host_count);
	if (rc != 0)
		return rc;
	if (has_te && !out->chunked)
		return 400;
	if (expect != NULL && out->version == 11 && expectation(expect, true, out) != 0)
		return 417;
	out->keep_alive = out->version == 11 ? !conn_close : (conn_keep_alive && !conn_close);
	return 0;
}

int http_head_from_h2(const struct h2_pseudo *ps, struct httpd_header *headers, size_t count,
                      bool end_stream, struct http_head *out)
{
	const struct httpd_header *host_header = NULL;
	const char *expect = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	out->content_length = -1;
	out->version = 20;
	out->keep_alive = true;
	out->headers = headers;
	out->header_count = count;
	if (ps->method == NULL || ps->method_len == 0 || !httpd_http1_token(ps->method, ps->method_len))
		return 400;
	out->method_name = ps->method;
	out->method_len = ps->method_len;
	out->method = method_lookup(ps->method, ps->method_len);
	if (out->method == HTTPD_METHOD_CONNECT && ps->protocol == NULL) {
		/* Plain CONNECT: :authority only (RFC 9113 §8.5); request_begin refuses it (501). */
		if (ps->authority == NULL || ps->scheme != NULL || ps->path != NULL)
			return 400;
		out->target = ps->authority;
		out->target_len = ps->authority_len;
		return target_parse(ps->authority, ps->authority_len, out->method, out);
	}
	/* :scheme and a non-empty :path are required (§8.3.1); :protocol only with CONNECT (RFC 8441). */
	if (ps->scheme == NULL || ps->path == NULL || ps->path_len == 0 ||
	    (ps->protocol != NULL && out->method != HTTPD_METHOD_CONNECT))
		return 400;
	out->target = ps->path;
	out->target_len = ps->path_len;
	/* Only origin-form or "*" (OPTIONS): an absolute URI in :path is not HTTP/2. */
	if (ps->path[0] != '/' && !(ps->path_len == 1 && ps->path[0] == '*'))
		return 400;
	rc = target_parse(ps->path, ps->path_len, out->method, out);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < count; i++) {
		const struct httpd_header *h = &headers[i];

		if ((h->name_len == 5 && memcmp(h->name, "range", 5) == 0) ||
		    (h->name_len > 3 && memcmp(h->name, "if-", 3) == 0))
			out->conditional = true;
		if (h->name_len == 4 && memcmp(h->name, "host", 4) == 0) {
			if (host_header != NULL)
				return 400;
			host_header = h;
		} else if (h->name_len == 14 && memcmp(h->name, "content-length", 14) == 0 &&
		           httpd_http1_content_length(h->value, &out->content_length) != 0) {
			return 400;
		} else if (h->name_len == 6 && memcmp(h->name, "expect", 6) == 0) {
			if (expect != NULL)
				return 417;
			expect = h->value;
		}
	}
	/* as over HTTP/1.1; the 100 is an interim HEADERS */
	if (expect != NULL && expectation(expect, !end_stream, out) != 0)
		return 417;
	/* :authority is the host; a Host that names another is malformed (§8.3.1). */
	if (ps->authority != NULL) {
		if (!host_valid(ps->authority, ps->authority_len))
			return 400;
		if (host_header != NULL && (host_header->value_len != ps->authority_len ||
		                            strncasecmp(host_header->value, ps->authority, ps->authority_len) != 0))
			return 400;
		out->host = ps->authority;
		out->host_len = ps->authority_len;
	} else if (host_header != NULL) {
		if (!host_valid(host_header->value, host_header->value_len))
			return 400;
		out->host = host_header->value;
		out->host_len = host_header->value_len;
	}
	/* The stream's end is the body's end: without a length it is read like a chunked one. */
	if (!end_stream && out->content_length < 0)
		out->chunked = true;
	if (end_stream && out->content_length > 0)
		return 400;   /* promised a body, sent none (§8.1.1) */
	return 0;
}

/* --- chunked ------------------------------------------------------------ */

enum chunked_state {
	CH_SIZE_START, CH_SIZE,
	CH_EXT_BWS, CH_EXT_NAME_START, CH_EXT_NAME, CH_EXT_AFTER_NAME, CH_EXT_VALUE_START,
	CH_EXT_VALUE_TOKEN, CH_EXT_QUOTED, CH_EXT_QUOTED_ESCAPE, CH_EXT_AFTER_VALUE,
	CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER_START, CH_TRAILER, CH_TRAILER_LF, CH_FINAL_LF, CH_DONE,
};

#define CHUNK_LINE_MAX    4096   /* chunk-size plus extensions */
#define CHUNK_TRAILER_MAX 16384

void httpd_chunked_init(struct httpd_chunked *ch)
{
	memset(ch, 0, sizeof(*ch));
	ch->state = CH_SIZE_START;
}

static bool is_bws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* qdtext and quoted-pair octets (RFC 9110 §5.6.4). */
static bool is_qdtext(unsigned char c)
{
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) ||
	       c >= 0x80;
}

/*
 * One byte of chunk-ext = *( BWS ";" BWS chunk-ext-name
 *                           [ BWS "=" BWS chunk-ext-val ] ),
 * chunk-ext-val = token / quoted-string.  Returns the next state, CH_SIZE_LF
 * at the CR that ends the line, or -1 where the grammar does not allow c.
 */
static int chunk_ext_step(int state, unsigned char c)
{
	switch (state) {
	case CH_EXT_BWS:            /* BWS before ';' */
		return is_bws(c) ? state : c == ';' ? CH_EXT_NAME_START : -1;
	case CH_EXT_NAME_START:
		return is_bws(c) ? state : is_tchar(c) ? CH_EXT_NAME : -1;
	case CH_EXT_NAME:
		if (is_tchar(c))
			return state;
		return is_bws(c) ? CH_EXT_AFTER_NAME : c == '=' ? CH_EXT_VALUE_START
		     : c == ';' ? CH_EXT_NAME_START : c == '\r' ? CH_SIZE_LF : -1;
	case CH_EXT_AFTER_NAME:
		return is_bws(c) ? state : c == '=' ? CH_EXT_VALUE_START : c == ';' ? CH_EXT_NAME_START : -1;
	case CH_EXT_VALUE_START:
		return is_bws(c) ? state : c == '"' ? CH_EXT_QUOTED : is_tchar(c) ? CH_EXT_VALUE_TOKEN : -1;
	case CH_EXT_VALUE_TOKEN:
		if (is_tchar(c))
			return state;
		return c == ';' ? CH_EXT_NAME_START : is_bws(c) ? CH_EXT_BWS : c == '\r' ? CH_SIZE_LF : -1;
	case CH_EXT_QUOTED:
		return c == '"' ? CH_EXT_AFTER_VALUE : c == '\\' ? CH_EXT_QUOTED_ESCAPE : is_qdtext(c) ? state : -1;
	case CH_EXT_QUOTED_ESCAPE:
		return c == '\t' || (c >= 0x20 && c != 0x7f) ? CH_EXT_QUOTED : -1;
	case CH_EXT_AFTER_VALUE:
		return c == ';' ? CH_EXT_NAME_START : is_bws(c) ? CH_EXT_BWS : c == '\r' ? CH_SIZE_LF : -1;
	default:
		return -1;
	}
}

static int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int httpd_chunked_decode(struct httpd_chunked *ch, const char *in, size_t in_len, size_t *consumed,
                        char *out, size_t out_cap, size_t *produced, uint64_t max_body)
{
	size_t i = 0, o = 0;
	int rc;

	while (i < in_len && ch->state != CH_DONE) {
		unsigned char c = (unsigned char)in[i];
		int d;

		switch (ch->state) {
		case CH_SIZE_START:
		case CH_SIZE:
			d = hex_digit(c);
			if (d >= 0) {
				if (ch->chunk_left > (UINT64_MAX >> 4)) {
					rc = 413;
					goto out;
				}
				ch->chunk_left = ch->chunk_left << 4 | (uint64_t)d;
				if (ch->chunk_left > max_body - ch->body_len) {   /* body_len <= max_body: no wrap */
					rc = 413;
					goto out;
				}
				ch->state = CH_SIZE;
			} else if (ch->state == CH_SIZE_START) {
				rc = 400;
				goto out;
			} else if (c == '\r') {
				ch->state = CH_SIZE_LF;
			} else if (c == ';') {
				ch->state = CH_EXT_NAME_START;
			} else if (c == ' ' || c == '\t') {
				ch->state = CH_EXT_BWS;
			} else {
				rc = 400;
				goto out;
			}
			break;
		case CH_EXT_BWS:
		case CH_EXT_NAME_START:
		case CH_EXT_NAME:
		case CH_EXT_AFTER_NAME:
		case CH_EXT_VALUE_START:
		case CH_EXT_VALUE_TOKEN:
		case CH_EXT_QUOTED:
		case CH_EXT_QUOTED_ESCAPE:
		case CH_EXT_AFTER_VALUE:
			/* Extensions are checked against the grammar, then ignored (RFC 9112 §7.1.1). */
			ch->state = chunk_ext_step(ch->state, c);
			if (ch->state < 0) {
				rc = 400;
				goto out;
			}
			break;
		case CH_SIZE_LF:
			if (c != '\n') {
				rc = 400;
				goto out;
			}
			ch->line_len = 0;
			ch->state = ch->chunk_left == 0 ? CH_TRAILER_START : CH_DATA;
			i++;
			continue;
		case CH_DATA: {
			size_t n = in_len - i;

			if (n > ch->chunk_left)
				n = (size_t)ch->chunk_left;
			if (n > out_cap - o)
				n = out_cap - o;
			if (n == 0)
				goto again;
			memmove(out + o, in + i, n);   /* out may be in: decoding in place */
			o += n;
			i += n;
			ch->chunk_left -= n;
			ch->body_len += n;
			if (ch->chunk_left == 0)
				ch->state = CH_DATA_CR;
			continue;
		}
		case CH_DATA_CR:
			if (c != '\r') {
				rc = 400;
				goto out;
			}
			ch->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (c != '\n') {
				rc = 400;
				goto out;
			}
			ch->state = CH_SIZE_START;
			ch->line_len = 0;
			i++;
			continue;
		case CH_TRAILER_START:
			if (c == '\r') {
				ch->state = CH_FINAL_LF;
				break;
			}
			/* Trailer fields are discarded, never merged into the headers. */
			if (!is_tchar(c)) {
				rc = 400;
				goto out;
			}
			ch->state = CH_TRAILER;
			break;
		case CH_TRAILER:
			if (c == '\r') {
				ch->state = CH_TRAILER_LF;
			} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
				rc = 400;
				goto out;
			}
			break;
		case CH_TRAILER_LF:
			if (c != '\n') {
				rc = 400;
				goto out;
			}
			ch->state = CH_TRAILER_START;
			ch->line_len = 0;
			ch->trailer_len++;
			i++;
			continue;
		case CH_FINAL_LF:
			if (c != '\n') {
				rc = 400;
				goto out;
			}
			ch->state = CH_DONE;
			i++;
			continue;
		default: {
			rc = 400;
			goto out;
		}
		}
		i++;
		if (++ch->line_len > CHUNK_LINE_MAX) {
			rc = 400;
			goto out;
		}
		if (ch->state >= CH_TRAILER_START && ++ch->trailer_len > CHUNK_TRAILER_MAX) {
			rc = 431;
			goto out;
		}
	}
again:
	rc = ch->state == CH_DONE ? HTTPD_CHUNKED_DONE : HTTP_PARSE_AGAIN;
out:
	/* Progress is reported on errors too, so callers never add garbage. */
	*consumed = i;
	*produced = o;
	return rc;
}
