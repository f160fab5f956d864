#include "proxy_parse.h"

#include <string.h>
#include <strings.h>

static bool tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

bool proxy_list_has(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = value; *p != '\0'; ) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
			return true;
		while (*p != '\0' && *p != ',')
			p++;
	}
	return false;
}

static int content_length_parse(const char *v, int64_t *out)
{
	int64_t n = 0;

	if (*v < '0' || *v > '9')
		return -1;
	for (; *v >= '0' && *v <= '9'; v++) {
		if (n > (INT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (*v - '0');
	}
	if (*v != '\0')
		return -1;
	*out = n;
	return 0;
}

/* The CR of the CRLF ending the line at s, or NULL on the last line (the head's end is NUL already). */
static char *line_end(char *s, const char *end)
{
	char *cr = memchr(s, '\r', (size_t)(end - s));

	/* A lone CR is left where it is: the control-character checks refuse it. */
	while (cr != NULL && cr[1] != '\n')
		cr = memchr(cr + 1, '\r', (size_t)(end - cr - 1));
	return cr;
}

long proxy_head_parse(char *buf, size_t len, struct proxy_head *h, const char **why)
{
	char *end = NULL, *p, *line;
	bool te_seen = false, close = false, keep = false;

	for (size_t i = 0; i + 3 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			end = buf + i;
			break;
		}
	if (end == NULL) {
		if (len > PROXY_HEAD_MAX) {
			*why = "the response head is larger than 16 KiB";
			return -1;
		}
		return 0;
	}
	if (end - buf > PROXY_HEAD_MAX) {
		*why = "the response head is larger than 16 KiB";
		return -1;
	}
	/* Field by field: the header array (1.6 KiB) needs no clearing. */
	h->version = h->status = 0;
	h->count = 0;
	h->chunked = h->keep_alive = false;
	h->content_length = -1;
	*end = '\0';
	/* Status line: HTTP/1.x SP 3DIGIT SP reason */
	if (strncmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ' ||
	    buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9' ||
	    (buf[12] != ' ' && buf[12] != '\r')) {
		*why = "malformed status line";
		return -1;
	}
	h->version = buf[7] == '1' ? 11 : 10;
	h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	line = line_end(buf, end);
	for (p = buf; p < (line ? line : end); p++)
		if ((unsigned char)*p < 0x20 && *p != '\t') {
			*why = "a control character in the status line";
			return -1;
		}
	while (line != NULL) {
		char *name = line + 2, *colon, *value, *vend, *next = line_end(name, end);

		if (next != NULL)
			*next = '\0';
		line = next;
		colon = strchr(name, ':');
		if (colon == NULL || colon == name) {
			*why = "a header line without a name";   /* obs-fold included: RFC 9112 §5.2 */
			return -1;
		}
		for (p = name; p < colon; p++)
			if (!tchar((unsigned char)*p)) {
				*why = "a header name with a character no token has";
				return -1;
			}
		*colon = '\0';
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		vend = value + strlen(value);
		while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
			*--vend = '\0';
		for (p = value; p < vend; p++)
			if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
				*why = "a control character in a header value";
				return -1;
			}
		if (h->count == PROXY_HEADERS_MAX) {
			*why = "more than 100 header lines";
			return -1;
		}
		h->headers[h->count].name = name;
		h->headers[h->count++].value = value;
		if (strcasecmp(name, "Content-Length") == 0) {
			int64_t n;

			/* Several equal values are one (RFC 9110 §8.6); differing ones are a smuggling attempt. */
			if (content_length_parse(value, &n) < 0 || (h->content_length >= 0 && h->content_length != n)) {
				*why = "an invalid or conflicting Content-Length";
				return -1;
			}
			h->content_length = n;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			/* Only "chunked", last, once: anything else cannot be framed safely. */
			if (te_seen || strcasecmp(value, "chunked") != 0) {
				*why = "a Transfer-Encoding other than chunked";
				return -1;
			}
			te_seen = true;
		} else if (strcasecmp(name, "Connection") == 0) {
			close = close || proxy_list_has(value, "close");
			keep = keep || proxy_list_has(value, "keep-alive");
		}
	}
	if (te_seen && h->content_length >= 0) {
		*why = "both Transfer-Encoding and Content-Length";
		return -1;
	}
	if (te_seen && h->version == 10) {
		*why = "Transfer-Encoding in an HTTP/1.0 response";
		return -1;
	}
	h->chunked = te_seen;
	h->keep_alive = h->version == 11 ? !close : keep && !close;
	return (long)(end - buf) + 4;
}

bool proxy_head_has_body(const struct proxy_head *h, bool head_request)
{
	return !head_request && h->status >= 200 && h->status != 204 && h->status != 304;
}

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LINE,
       CH_TRAILER_LF, CH_END_LF };

long proxy_chunked_decode(struct proxy_chunked *c, char *in, size_t len, size_t *out_len)
{
	size_t i = 0, out = 0;

	while (i < len && !c->done) {
		unsigned char ch = (unsigned char)in[i];

		switch (c->state) {
		case CH_SIZE: {
			int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			      : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;

			if (d >= 0) {
				if (c->digits == 15)
					return -1;   /* a chunk over 2^60 bytes is no chunk */
				c->left = c->left * 16 + (uint64_t)d;
				c->digits++;
				i++;
				break;
			}
			if (c->digits == 0)
				return -1;
			if (ch == ';' || ch == ' ' || ch == '\t')
				c->state = CH_EXT;
			else if (ch == '\r')
				c->state = CH_SIZE_LF;
			else
				return -1;
			i++;
			break;
		}
		case CH_EXT:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (ch < 0x20 && ch != '\t')
				return -1;
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -1;
			i++;
			c->state = c->left == 0 ? CH_TRAILER : CH_DATA;
			break;
		case CH_DATA: {
			size_t take = len - i < c->left ? len - i : (size_t)c->left;

			memmove(in + out, in + i, take);
			out += take;
			i += take;
			c->left -= take;
			if (c->left == 0)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return -1;
			c->state = CH_DATA_LF;
			i++;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_SIZE;
			c->digits = 0;
			c->left = 0;
			i++;
			break;
		case CH_TRAILER:   /* at the start of a trailer line, or of the final CRLF */
			if (ch == '\r') {
				c->state = CH_END_LF;
			} else if (ch < 0x20 && ch != '\t') {
				return -1;
			} else {
				c->state = CH_TRAILER_LINE;
			}
			i++;
			break;
		case CH_TRAILER_LINE:   /* trailers are dropped: the core re-frames the body */
			if (ch == '\r')
				c->state = CH_TRAILER_LF;
			else if (ch < 0x20 && ch != '\t')
				return -1;
			i++;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_TRAILER;
			i++;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return -1;
			c->done = true;
			i++;
			break;
		}
	}
	*out_len = out;
	return (long)i;
}
