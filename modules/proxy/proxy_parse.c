#include "proxy_parse.h"

#include <string.h>
#include <strings.h>

#include "httpd/http1.h"

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
		if (!httpd_http1_token(name, (size_t)(colon - name))) {
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
			/* Several equal values are one (RFC 9110 §8.6); differing ones are a smuggling attempt. */
			if (httpd_http1_content_length(value, &h->content_length) < 0) {
				*why = "an invalid or conflicting Content-Length";
				return -1;
			}
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			/* Only "chunked", last, once: anything else cannot be framed safely. */
			if (te_seen || strcasecmp(value, "chunked") != 0) {
				*why = "a Transfer-Encoding other than chunked";
				return -1;
			}
			te_seen = true;
		} else if (strcasecmp(name, "Connection") == 0) {
			close = close || httpd_http1_list_has(value, "close");
			keep = keep || httpd_http1_list_has(value, "keep-alive");
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
