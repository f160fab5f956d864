/*
 * The server's variables and the expressions made of them: "$scheme://$host$request_uri",
 * "$binary_remote_addr", "static text".  An expression is compiled once,
 * when the configuration loads (an unknown variable is an error there),
 * into literal and variable segments; evaluating it walks the segments
 * with a lookup the caller supplies (request_variables.c looks values up
 * in a request, into the request's pool).  Compiling stays pure, so it is
 * unit-tested without a server.
 *
 * Variables: those of nginx's access log and more ($remote_addr,
 * $request_uri, $uri, $args, $host, $scheme, $server_name, $status, ...),
 * $http_NAME (a request header), $arg_NAME (a query argument),
 * $cookie_NAME (a cookie), $document_root, $ssl_*, $proxy_protocol_*,
 * $upstream_* (notes of the proxy module), and the ones modules register
 * (httpd_module_variable).  ${name} separates a name from text after it;
 * $$ is a dollar.
 */
#ifndef HTTPD_VARIABLE_H
#define HTTPD_VARIABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "httpd/module.h"

enum var_kind {
	VAR_LITERAL,
	VAR_REMOTE_ADDR, VAR_REMOTE_PORT, VAR_REALIP_REMOTE_ADDR, VAR_REMOTE_USER,
	VAR_TIME_LOCAL, VAR_TIME_ISO8601, VAR_MSEC,
	VAR_REQUEST, VAR_REQUEST_METHOD, VAR_REQUEST_URI, VAR_URI, VAR_ARGS, VAR_SERVER_PROTOCOL,
	VAR_STATUS, VAR_BODY_BYTES_SENT, VAR_REQUEST_LENGTH, VAR_REQUEST_TIME, VAR_REQUEST_TIME_US,
	VAR_REQUEST_ID, VAR_PID, VAR_WORKER, VAR_HOST, VAR_SERVER_ADDR, VAR_SERVER_PORT, VAR_SCHEME,
	VAR_CONNECTION_REQUESTS, VAR_GENERATION, VAR_SERVER_NAME, VAR_LIMIT_REQ_STATUS,
	VAR_DOCUMENT_ROOT,   /* the location's root */
	VAR_SSL,             /* $ssl_NAME: text is the TLS field (tls_conn_field) */
	VAR_NOTE,            /* $upstream_addr ...: a request note of that name, set by a module */
	VAR_HTTP,            /* $http_NAME: a request header, "_" matching "-" */
	VAR_ARG,             /* $arg_NAME: the first query argument NAME, as sent */
	VAR_COOKIE,          /* $cookie_NAME: the cookie NAME */
	VAR_PROXY,           /* $proxy_protocol_NAME / $proxy_protocol_tlv_NAME */
	VAR_MODULE,          /* a module's variable: fn */
	VAR_CAPTURE,         /* $1 ... $9: index, of the last regex that matched */
	VAR_NAMED_CAPTURE,   /* $name: a named group of that regex (text) */
};

/* The named groups an expression may use: those of the regex it goes with. */
struct capture_names {
	const char *const *names;
	size_t             count;
};

struct var_segment {
	enum var_kind       var;
	const char         *text;   /* the literal, or the argument of $http_, $arg_, $cookie_ ... */
	size_t              len;
	int                 index;  /* VAR_PROXY: the proxy_field */
	bool                plain;  /* a value the server makes (a time, a number, a hex id): nothing to escape */
	httpd_variable_fn   fn;     /* VAR_MODULE */
};

struct expr {
	struct var_segment *segs;
	size_t              count;
	char               *storage;      /* literals and arguments */
	size_t              literal_len;  /* bytes of literal text */
	size_t              variables;    /* variable segments */
	bool                needs_time;   /* $request_time*: the start time is worth a precise clock */
};

/*
 * Compiles text; -1 with a reason in err (an unknown $variable, a lone $,
 * an unterminated ${...}).  Module variables are those of the modules
 * loaded so far.
 */
int  expr_compile(const char *text, struct expr *out, char *err, size_t errlen);
/* The same, where $1 ... $9 and the named groups of names may stand (a rewrite's replacement, say). */
int  expr_compile_captures(const char *text, const struct capture_names *names, struct expr *out, char *err,
                           size_t errlen);
void expr_free(struct expr *e);
/* Whether name[0..len) is one of the server's own variables (modules' aside). */
bool variable_builtin(const char *name, size_t len);
/* Only checks that text compiles (a directive row's check): 0, or -1 with the reason. */
int  expr_check(const char *text, char *err, size_t errlen);

/*
 * The value of one variable segment as NUL-terminated text, or NULL when
 * it has none.  scratch (size bytes) is for values the lookup formats itself.
 */
typedef const char *(*var_lookup_fn)(void *ctx, const struct var_segment *seg, char *scratch, size_t size);

#endif
