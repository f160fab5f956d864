/* Accept-Encoding, read as RFC 9110 §12.5.3 and §12.4.2 say. */
#include "content_coding.h"

#include <string.h>
#include <strings.h>

static const char *const names[CODING_COUNT] = { "gzip", "br", "zstd" };
static const char *const modules[CODING_COUNT] = { "gzip", "brotli", "zstd" };

const char *coding_name(enum coding c)
{
	return names[c];
}

const char *coding_module(enum coding c)
{
	return modules[c];
}

int coding_by_name(const char *name, size_t len)
{
	for (int c = 0; c < CODING_COUNT; c++)
		if (strlen(names[c]) == len && strncasecmp(names[c], name, len) == 0)
			return c;
	/* x-gzip is gzip (RFC 9110 §8.4.1.3). */
	if (len == 6 && strncasecmp(name, "x-gzip", 6) == 0)
		return CODING_GZIP;
	return -1;
}

static bool is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths; -1 if malformed. */
static int qvalue_parse(const char *p, const char *end)
{
	int value, digits = 0;

	if (p == end || (*p != '0' && *p != '1'))
		return -1;
	value = *p++ == '1' ? 1000 : 0;
	if (p < end && *p == '.') {
		int frac = 0;

		for (p++; p < end && *p >= '0' && *p <= '9' && digits < 3; p++, digits++)
			frac = frac * 10 + (*p - '0');
		while (digits++ < 3)
			frac *= 10;
		if (value == 1000 && frac != 0)
			return -1;
		value += frac;
	}
	return p == end ? value : -1;
}

/* The q of one member's parameters (";q=0.5;x=y"): 1000 without one, 0 when it is malformed. */
static int member_q(const char *p, const char *end)
{
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p)), *name, *value_end;

		if (semi == NULL)
			return 1000;
		p = semi + 1;
		while (p < end && is_ows(*p))
			p++;
		if (p >= end)
			break;
		name = p;
		value_end = memchr(p, ';', (size_t)(end - p));
		if (value_end == NULL)
			value_end = end;
		while (value_end > p && is_ows(value_end[-1]))
			value_end--;
		if (value_end - name >= 2 && (name[0] == 'q' || name[0] == 'Q') && name[1] == '=') {
			int q = qvalue_parse(name + 2, value_end);

			return q < 0 ? 0 : q;
		}
	}
	return 1000;
}

/* Calls each member of the list: its coding name and q.  Stops when fn returns true. */
static void members_each(const char *field, bool (*fn)(const char *name, size_t len, int q, void *arg), void *arg)
{
	const char *p = field;

	while (*p != '\0') {
		const char *start, *end, *name_end;

		while (*p == ',' || is_ows(*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		name_end = start;
		while (name_end < end && *name_end != ';' && !is_ows(*name_end))
			name_end++;
		if (name_end > start && fn(start, (size_t)(name_end - start), member_q(name_end, end), arg))
			return;
		p = end;
	}
}

struct q_lookup {
	const char *coding;
	size_t      len;
	int         own, star;
};

static bool q_of(const char *name, size_t len, int q, void *arg)
{
	struct q_lookup *l = arg;

	if (len == l->len && strncasecmp(name, l->coding, len) == 0)
		l->own = q;
	else if (len == 6 && strncasecmp(name, "x-gzip", 6) == 0 && strcmp(l->coding, "gzip") == 0 && l->own < 0)
		l->own = q;
	else if (len == 1 && *name == '*')
		l->star = q;
	return false;
}

int accept_encoding_q(const char *field, const char *coding)
{
	struct q_lookup l = { coding, strlen(coding), -1, -1 };

	members_each(field, q_of, &l);
	if (l.own >= 0)
		return l.own;
	if (l.star >= 0)
		return l.star;
	return strcasecmp(coding, "identity") == 0 ? 1000 : 0;
}

size_t coding_negotiate(const char *field, const enum coding *offer, size_t n, enum coding *out, size_t max)
{
	int q[CODING_COUNT];
	enum coding best[CODING_COUNT];
	size_t count = 0;

	if (n > CODING_COUNT)
		n = CODING_COUNT;
	for (size_t i = 0; i < n; i++) {
		int qi = accept_encoding_q(field, coding_name(offer[i]));
		size_t at = count;

		if (qi <= 0)
			continue;
		/* Insertion by q, stable: an equal q keeps the server's order. */
		while (at > 0 && q[at - 1] < qi)
			at--;
		for (size_t j = count; j > at; j--) {
			q[j] = q[j - 1];
			best[j] = best[j - 1];
		}
		q[at] = qi;
		best[at] = offer[i];
		count++;
	}
	if (count > max)
		count = max;
	memcpy(out, best, count * sizeof(*out));
	return count;
}
