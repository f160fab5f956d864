#include "variable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "module.h"
#include "proxy_protocol.h"

static const struct {
	const char   *name;
	enum var_kind  var;
} variables[] = {
	{ "remote_addr", VAR_REMOTE_ADDR }, { "remote_port", VAR_REMOTE_PORT },
	{ "realip_remote_addr", VAR_REALIP_REMOTE_ADDR }, { "remote_user", VAR_REMOTE_USER },
	{ "limit_req_status", VAR_LIMIT_REQ_STATUS },
	{ "time_local", VAR_TIME_LOCAL }, { "time_iso8601", VAR_TIME_ISO8601 }, { "msec", VAR_MSEC },
	{ "request", VAR_REQUEST }, { "request_method", VAR_REQUEST_METHOD },
	{ "request_uri", VAR_REQUEST_URI }, { "uri", VAR_URI }, { "args", VAR_ARGS },
	{ "query_string", VAR_ARGS }, { "server_protocol", VAR_SERVER_PROTOCOL },
	{ "status", VAR_STATUS }, { "body_bytes_sent", VAR_BODY_BYTES_SENT },
	{ "request_length", VAR_REQUEST_LENGTH }, { "request_time", VAR_REQUEST_TIME },
	{ "request_time_us", VAR_REQUEST_TIME_US }, { "request_id", VAR_REQUEST_ID }, { "pid", VAR_PID },
	{ "worker", VAR_WORKER }, { "host", VAR_HOST }, { "server_addr", VAR_SERVER_ADDR },
	{ "server_port", VAR_SERVER_PORT }, { "scheme", VAR_SCHEME },
	{ "connection_requests", VAR_CONNECTION_REQUESTS }, { "generation", VAR_GENERATION },
	{ "server_name", VAR_SERVER_NAME }, { "document_root", VAR_DOCUMENT_ROOT },
};

/* Variables read by a field name: nginx's $ssl_ names (a TLS field), and what the proxy module notes. */
static const struct { const char *name; enum var_kind var; const char *field; } field_variables[] = {
	{ "ssl_protocol", VAR_SSL, "protocol" }, { "ssl_cipher", VAR_SSL, "cipher" },
	{ "ssl_server_name", VAR_SSL, "server_name" }, { "ssl_session_reused", VAR_SSL, "session_reused" },
	{ "ssl_alpn_protocol", VAR_SSL, "alpn" }, { "ssl_client_s_dn", VAR_SSL, "client_subject" },
	{ "ssl_client_i_dn", VAR_SSL, "client_issuer" }, { "ssl_client_verify", VAR_SSL, "client_verify" },
	{ "upstream_addr", VAR_NOTE, "upstream_addr" }, { "upstream_status", VAR_NOTE, "upstream_status" },
	{ "upstream_response_time", VAR_NOTE, "upstream_response_time" },
};

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
static bool variable_resolve(const char *name, size_t len, struct var_segment *seg, bool with_modules)
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
	{
		static const struct { const char *prefix; enum var_kind var; } named[] = {
			{ "http_", VAR_HTTP }, { "arg_", VAR_ARG }, { "cookie_", VAR_COOKIE },
		};

		for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
			if (has_prefix(name, len, named[i].prefix, &skip)) {
				seg->var = named[i].var;
				seg->text = name + skip;
				seg->len = len - skip;
				return true;
			}
	}
	/* What the loaded modules offer. */
	for (const struct module *m = with_modules ? module_first() : NULL; m != NULL; m = m->next)
		for (size_t i = 0; i < m->api.variable_count; i++)
			if (strlen(m->api.variables[i].name) == len && memcmp(m->api.variables[i].name, name, len) == 0) {
				seg->var = VAR_MODULE;
				seg->fn = m->api.variables[i].fn;
				return true;
			}
	if (has_prefix(name, len, "proxy_protocol_tlv_", &skip) || has_prefix(name, len, "proxy_protocol_", &skip)) {
		seg->var = VAR_PROXY;
		seg->index = proxy_field_index(name + skip, len - skip);
		return seg->index >= 0;
	}
	return false;
}

bool variable_builtin(const char *name, size_t len)
{
	struct var_segment seg;

	return variable_resolve(name, len, &seg, false);
}

/* Variables whose values the server itself prints in digits, hex or fixed text: no client byte is in them. */
static bool variable_plain(enum var_kind var)
{
	switch (var) {
	case VAR_REMOTE_PORT: case VAR_TIME_LOCAL: case VAR_TIME_ISO8601: case VAR_MSEC: case VAR_SERVER_PROTOCOL:
	case VAR_STATUS: case VAR_BODY_BYTES_SENT: case VAR_REQUEST_LENGTH: case VAR_REQUEST_TIME:
	case VAR_REQUEST_TIME_US: case VAR_REQUEST_ID: case VAR_PID: case VAR_WORKER: case VAR_SERVER_PORT:
	case VAR_CONNECTION_REQUESTS: case VAR_GENERATION:
		return true;
	default:
		return false;
	}
}

/* $1 ... $9, or a named group of names (when captures are allowed at all). */
static bool capture_resolve(const char *name, size_t len, const struct capture_names *names, struct var_segment *seg)
{
	if (names == NULL)
		return false;
	if (len == 1 && name[0] >= '1' && name[0] <= '9') {
		seg->var = VAR_CAPTURE;
		seg->index = name[0] - '0';
		return true;
	}
	for (size_t i = 0; i < names->count; i++)
		if (strlen(names->names[i]) == len && memcmp(names->names[i], name, len) == 0) {
			seg->var = VAR_NAMED_CAPTURE;
			seg->text = name;
			seg->len = len;
			return true;
		}
	return false;
}

int expr_compile(const char *text, struct expr *out, char *err, size_t errlen)
{
	return expr_compile_captures(text, NULL, out, err, errlen);
}

int expr_compile_captures(const char *text, const struct capture_names *names, struct expr *out, char *err,
                          size_t errlen)
{
	size_t len = strlen(text), count = 0, literal = 0;
	struct var_segment *segs;
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
		struct var_segment *seg = &segs[count];
		size_t start, end;

		if (storage[i] != '$') {
			size_t n = strcspn(storage + i, "$");

			*seg = (struct var_segment){ .var = VAR_LITERAL, .text = storage + i, .len = n };
			literal += n;
			i += n;
			count++;
			continue;
		}
		if (storage[i + 1] == '$') {   /* "$$" is a literal dollar */
			*seg = (struct var_segment){ .var = VAR_LITERAL, .text = storage + i, .len = 1 };
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
				snprintf(err, errlen, "unterminated or empty ${...} at offset %zu", i);
				goto fail;
			}
			i = end + 1;
		} else {
			start = i + 1;
			end = start;
			while (name_char(storage[end]))
				end++;
			if (end == start) {
				snprintf(err, errlen, "'$' without a variable name at offset %zu (write $$ for a dollar)", i);
				goto fail;
			}
			i = end;
		}
		if (!variable_resolve(storage + start, end - start, seg, true) &&
		    !capture_resolve(storage + start, end - start, names, seg)) {
			snprintf(err, errlen, "unknown variable $%.*s", (int)(end - start), storage + start);
			goto fail;
		}
		if (seg->var == VAR_REQUEST_TIME || seg->var == VAR_REQUEST_TIME_US)
			out->needs_time = true;
		seg->plain = variable_plain(seg->var);
		out->variables++;
		count++;
	}
	out->segs = segs;
	out->storage = storage;
	out->count = count;
	out->literal_len = literal;
	return 0;
fail:
	free(segs);
	free(storage);
	return -1;
}

void expr_free(struct expr *e)
{
	free(e->segs);
	free(e->storage);
	memset(e, 0, sizeof(*e));
}

int expr_check(const char *text, char *err, size_t errlen)
{
	struct expr e;

	if (expr_compile(text, &e, err, errlen) < 0)
		return -1;
	expr_free(&e);
	return 0;
}
