#include "log_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/module.h"
#include "proxy_protocol.h"

static const struct {
	const char      *name;
	const char      *text;
	enum log_escape  escape;
} builtins[] = {
	{ "combined", "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent "
	              "\"$http_referer\" \"$http_user_agent\"", LOG_ESCAPE_DEFAULT },
	{ "common", "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent",
	  LOG_ESCAPE_DEFAULT },
	{ "json", "{\"time\":\"$time_iso8601\",\"remote_addr\":\"$remote_addr\","
	          "\"peer_addr\":\"$realip_remote_addr\",\"request\":\"$request\","
	          "\"method\":\"$request_method\",\"uri\":\"$request_uri\",\"status\":$status,"
	          "\"body_bytes_sent\":$body_bytes_sent,\"request_length\":$request_length,"
	          "\"request_time_us\":$request_time_us,\"host\":\"$host\",\"referer\":\"$http_referer\","
	          "\"user_agent\":\"$http_user_agent\",\"request_id\":\"$request_id\","
	          "\"worker\":$worker,\"pid\":$pid}", LOG_ESCAPE_JSON },
};

const char *log_format_builtin(const char *name, enum log_escape *escape)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		if (strcmp(builtins[i].name, name) == 0) {
			*escape = builtins[i].escape;
			return builtins[i].text;
		}
	}
	return NULL;
}

int log_format_compile(const char *text, enum log_escape escape, struct log_format *out,
                       char *err, size_t errlen)
{
	char why[256];

	memset(out, 0, sizeof(*out));
	if (expr_compile(text, &out->expr, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "log format: %s", why);
		return -1;
	}
	out->escape = escape;
	out->needs_time = out->expr.needs_time;
	out->max_line = out->expr.literal_len + (out->expr.count + 1) * (LOG_VALUE_MAX + 8) + 2;
	return 0;
}

void log_format_free(struct log_format *f)
{
	expr_free(&f->expr);
	memset(f, 0, sizeof(*f));
}

static const char hex[] = "0123456789abcdef";
/* Bytes both escapings pass as they are: printable ASCII but '"' and '\\'. */
static const unsigned char passes[256] = { [0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7e] = 1 };

size_t log_escape_json(char *out, const char *s, size_t limit)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, left = strlen(s);

	while (left > 0) {
		size_t n, elen, run = 0;
		char esc[8];

		/* Printable ASCII but '"' and '\\' is copied a run at a time, as in default escaping. */
		while (run < left && run < limit - o && passes[p[run]])
			run++;
		if (run > 0) {
			memcpy(out + o, p, run);
			o += run;
			p += run;
			left -= run;
			continue;
		}
		n = httpd_utf8_seq(p, left);
		if (n > 1) {
			if (o + n > limit)
				break;
			memcpy(out + o, p, n);
			o += n;
			p += n;
			left -= n;
			continue;
		}
		if (n == 1 && *p >= 0x20 && *p != 0x7f && *p != '"' && *p != '\\') {
			esc[0] = (char)*p;
			elen = 1;
		} else if (n == 1 && (*p == '"' || *p == '\\' || *p == '\n' || *p == '\t' || *p == '\r')) {
			esc[0] = '\\';
			esc[1] = *p == '\n' ? 'n' : *p == '\t' ? 't' : *p == '\r' ? 'r' : (char)*p;
			elen = 2;
		} else {
			/* A control, DEL, or a byte of no valid sequence: its code point as Latin-1. */
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			elen = 6;
		}
		if (o + elen > limit)
			break;
		memcpy(out + o, esc, elen);
		o += elen;
		p++;
		left--;
	}
	return o;
}

static size_t escape_default(char *out, const char *s, size_t limit)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	for (;;) {
		size_t run = 0;

		/* A run that needs no escape is copied whole; NUL ends it, as it does not pass. */
		while (run < limit - o && passes[p[run]])
			run++;
		memcpy(out + o, p, run);
		o += run;
		p += run;
		if (*p == '\0' || o + 4 > limit)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[*p >> 4];
		out[o++] = hex[*p & 15];
		p++;
	}
	return o;
}

size_t log_format_render(const struct log_format *f, var_lookup_fn lookup, void *ctx, char *out)
{
	char scratch[128];
	size_t o = 0;

	for (size_t i = 0; i < f->expr.count; i++) {
		const struct var_segment *seg = &f->expr.segs[i];
		const char *v;

		if (seg->var == VAR_LITERAL) {
			memcpy(out + o, seg->text, seg->len);
			o += seg->len;
			continue;
		}
		v = lookup(ctx, seg, scratch, sizeof(scratch));
		if (seg->plain && v != NULL && *v != '\0') {
			size_t n = strnlen(v, LOG_VALUE_MAX);

			memcpy(out + o, v, n);
			o += n;
		} else if (f->escape == LOG_ESCAPE_JSON)
			o += log_escape_json(out + o, v != NULL ? v : "", LOG_VALUE_MAX);
		else
			o += escape_default(out + o, v != NULL && *v != '\0' ? v : "-", LOG_VALUE_MAX);
	}
	out[o++] = '\n';
	return o;
}
