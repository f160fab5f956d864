#include "path.h"

#include <stdbool.h>
#include <string.h>

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Out holds the decoded path so far, always starting with '/'.  Called at
 * the end of each segment [seg, o): "." is dropped, ".." removes the previous
 * segment and fails at the root (nginx answers 400 there too).
 */
static bool segment_finish(char *out, size_t seg, size_t *o)
{
	size_t seg_len = *o - seg;

	if (seg_len == 1 && out[seg] == '.') {
		*o = seg;
		return true;
	}
	if (seg_len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
		size_t prev;

		if (seg <= 1)
			return false;
		prev = seg - 1;                 /* the '/' before ".." */
		while (prev > 0 && out[prev - 1] != '/')
			prev--;
		*o = prev;
		return true;
	}
	return true;
}

long path_normalise(const char *path, size_t len, char *out)
{
	size_t i = 0, o = 0, seg;

	if (len == 0 || path[0] != '/')
		return -1;
	out[o++] = '/';
	seg = o;
	i = 1;
	while (i < len) {
		unsigned char c = (unsigned char)path[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return -1;
			hi = hex_value((unsigned char)path[i + 1]);
			lo = hex_value((unsigned char)path[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			/* An encoded '/' would hide a segment boundary from us. */
			if (c == '\0' || c == '/')
				return -1;
			i += 3;
		} else {
			i++;
			if (c == '/') {
				if (!segment_finish(out, seg, &o))
					return -1;
				if (out[o - 1] != '/')
					out[o++] = '/';
				seg = o;
				continue;
			}
		}
		if (c < 0x20 || c == 0x7f)
			return -1;
		out[o++] = (char)c;
	}
	if (!segment_finish(out, seg, &o))
		return -1;
	out[o] = '\0';
	return (long)o;
}

/*
 * Unreserved characters and '/': enough for headers, and safe as a relative
 * reference too (a ':' in a first segment would read as a scheme).
 */
static bool path_char_is_safe(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-._~/", c) != NULL;
}

long path_encode(const char *path, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
		if (path_char_is_safe(*p)) {
			if (o + 1 >= size)
				return -1;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= size)
				return -1;
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (o >= size)
		return -1;
	out[o] = '\0';
	return (long)o;
}
