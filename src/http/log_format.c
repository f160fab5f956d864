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

static const struct {
	const char   *name;
	enum log_var  var;
} variables[] = {
	{ "remote_addr", LOG_REMOTE_ADDR }, { "remote_port", LOG_REMOTE_PORT },
	{ "realip_remote_addr", LOG_REALIP_REMOTE_ADDR }, { "remote_user", LOG_REMOTE_USER },
	{ "limit_req_status", LOG_LIMIT_REQ_STATUS },
	{ "time_local", LOG_TIME_LOCAL }, { "time_iso8601", LOG_TIME_ISO8601 }, { "msec", LOG_MSEC },
	{ "request", LOG_REQUEST }, { "request_method", LOG_REQUEST_METHOD },
	{ "request_uri", LOG_REQUEST_URI }, { "uri", LOG_URI }, { "args", LOG_ARGS },
	{ "query_string", LOG_ARGS }, { "server_protocol", LOG_SERVER_PROTOCOL },
	{ "status", LOG_STATUS }, { "body_bytes_sent", LOG_BODY_BYTES_SENT },
	{ "request_length", LOG_REQUEST_LENGTH }, { "request_time", LOG_REQUEST_TIME },
	{ "request_time_us", LOG_REQUEST_TIME_US }, { "request_id", LOG_REQUEST_ID }, { "pid", LOG_PID },
	{ "worker", LOG_WORKER }, { "host", LOG_HOST }, { "server_addr", LOG_SERVER_ADDR },
	{ "server_port", LOG_SERVER_PORT }, { "scheme", LOG_SCHEME },
	{ "connection_requests", LOG_CONNECTION_REQUESTS }, { "generation", LOG_GENERATION },
	{ "server_name", LOG_SERVER_NAME },
};

/* Variables read by a field name: nginx's $ssl_ names (a TLS field), and what the proxy module notes. */
static const struct { const char *name; enum log_var var; const char *field; } field_variables[] = {
	{ "ssl_protocol", LOG_SSL, "protocol" }, { "ssl_cipher", LOG_SSL, "cipher" },
	{ "ssl_server_name", LOG_SSL, "server_name" }, { "ssl_session_reused", LOG_SSL, "session_reused" },
	{ "ssl_alpn_protocol", LOG_SSL, "alpn" }, { "ssl_client_s_dn", LOG_SSL, "client_subject" },
	{ "ssl_client_i_dn", LOG_SSL, "client_issuer" }, { "ssl_client_verify", LOG_SSL, "client_verify" },
	{ "upstream_addr", LOG_NOTE, "upstream_addr" }, { "upstream_status", LOG_NOTE, "upstream_status" },
	{ "upstream_response_time", LOG_NOTE, "upstream_response_time" },
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

static bool name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

static bool has_prefix(const char *s, size_t len, const char *prefix, size_t *rest)
{
	size_t n = strlen(prefix);

	if (len <= n || memcmp(s, prefix, n) != 0)
		return false;
	*rest = n;
	return true;
}

/* Resolves the variable name[0..len) into seg; false if there is no such variable. */
static bool variable_resolve(const char *name, size_t len, struct log_segment *seg)
{
	size_t skip;

	for (size_t i = 0; i < sizeof(variables) / sizeof(variables[0]); i++) {
		if (strlen(variables[i].name) == len && memcmp(variables[i].name, name, len) == 0) {
			seg->var = variables[i].var;
			return true;
		}
	}
	for (size_t i = 0; i < sizeof(field_variables) / sizeof(field_variables[0]); i++) {
		if (strlen(field_variables[i].name) == len && memcmp(field_variables[i].name, name, len) == 0) {
			seg->var = field_variables[i].var;
			seg->text = field_variables[i].field;
			seg->len = strlen(seg->text);
			return true;
		}
	}
	if (has_prefix(name, len, "http_", &skip)) {
		seg->var = LOG_HTTP;
		seg->text = name + skip;
		seg->len = len - skip;
		return true;
	}
	if (has_prefix(name, len, "proxy_protocol_tlv_", &skip) || has_prefix(name, len, "proxy_protocol_", &skip)) {
		seg->var = LOG_PROXY;
		seg->index = proxy_field_index(name + skip, len - skip);
		return seg->index >= 0;
	}
	return false;
}

/* Variables whose values the server itself prints in digits, hex or fixed text: no client byte is in them. */
static bool variable_plain(enum log_var var)
{
	switch (var) {
	case LOG_REMOTE_PORT: case LOG_TIME_LOCAL: case LOG_TIME_ISO8601: case LOG_MSEC: case LOG_SERVER_PROTOCOL:
	case LOG_STATUS: case LOG_BODY_BYTES_SENT: case LOG_REQUEST_LENGTH: case LOG_REQUEST_TIME:
	case LOG_REQUEST_TIME_US: case LOG_REQUEST_ID: case LOG_PID: case LOG_WORKER: case LOG_SERVER_PORT:
	case LOG_CONNECTION_REQUESTS: case LOG_GENERATION:
		return true;
	default:
		return false;
	}
}

int log_format_compile(const char *text, enum log_escape escape, struct log_format *out,
                       char *err, size_t errlen)
{
	size_t len = strlen(text), count = 0, literal = 0;
	struct log_segment *segs;
	char *storage;

	memset(out, 0, sizeof(*out));
	/* At most one literal and one variable per '$', plus a final literal. */
	for (size_t i = 0; i < len; i++)
		count += text[i] == '$';
	segs = calloc(2 * count + 1, sizeof(*segs));
	storage = malloc(len + 1);
	if (segs == NULL || storage == NULL) {
		free(segs);
		free(storage);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(storage, text, len + 1);
	count = 0;
	for (size_t i = 0; i < len; ) {
		struct log_segment *seg = &segs[count];
		size_t start, end;

		if (storage[i] != '$') {
			size_t n = strcspn(storage + i, "$");

			*seg = (struct log_segment){ .var = LOG_LITERAL, .text = storage + i, .len = n };
			literal += n;
			i += n;
			count++;
			continue;
		}
		if (storage[i + 1] == '$') {   /* "$$" is a literal dollar */
			*seg = (struct log_segment){ .var = LOG_LITERAL, .text = storage + i, .len = 1 };
			literal++;
			i += 2;
			count++;
			continue;
		}
		if (storage[i + 1] == '{') {
			start = i + 2;
			end = start;
			while (name_char(storage[end]))
				end++;
			if (storage[end] != '}' || end == start) {
				snprintf(err, errlen, "log format: unterminated or empty ${...} at offset %zu", i);
				goto fail;
			}
			i = end + 1;
		} else {
			start = i + 1;
			end = start;
			while (name_char(storage[end]))
				end++;
			if (end == start) {
				snprintf(err, errlen, "log format: '$' without a variable name at offset %zu (write $$ for a dollar)", i);
				goto fail;
			}
			i = end;
		}
		if (!variable_resolve(storage + start, end - start, seg)) {
			snprintf(err, errlen, "log format: unknown variable $%.*s", (int)(end - start), storage + start);
			goto fail;
		}
		if (seg->var == LOG_REQUEST_TIME || seg->var == LOG_REQUEST_TIME_US)
			out->needs_time = true;
		seg->plain = variable_plain(seg->var);
		count++;
	}
	out->escape = escape;
	out->segs = segs;
	out->storage = storage;
	out->count = count;
	out->max_line = literal + (count + 1) * (LOG_VALUE_MAX + 8) + 2;
	return 0;
fail:
	free(segs);
	free(storage);
	return -1;
}

void log_format_free(struct log_format *f)
{
	free(f->segs);
	free(f->storage);
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

size_t log_format_render(const struct log_format *f, log_lookup_fn lookup, void *ctx, char *out)
{
	char scratch[128];
	size_t o = 0;

	for (size_t i = 0; i < f->count; i++) {
		const struct log_segment *seg = &f->segs[i];
		const char *v;

		if (seg->var == LOG_LITERAL) {
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
