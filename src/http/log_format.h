/*
 * Access log formats: "combined", "common", "json", or an operator's
 * log_format with $variables.  A format is compiled once at configuration
 * time into literal and variable segments; rendering a line is a walk over
 * them with a lookup the caller supplies (http/access_log.c looks values
 * up in a request), so this unit stays pure: unit-tested without a server.
 *
 * Escaping, so a client can never forge or split a line:
 *   default  bytes below 0x20, from 0x7f, '"' and '\' become \xHH;
 *   json     a valid JSON string body in valid UTF-8 whatever the bytes:
 *            '"' '\' and controls escaped (\n, \t, \u00XX), valid UTF-8
 *            passed through, every byte of an invalid sequence becomes
 *            \u00XX (its Latin-1 reading; never a lone surrogate).
 * Each value is cut at LOG_VALUE_MAX bytes of output, at an escape
 * boundary, so a line keeps its shape and fits the size log_format_max
 * gives.
 */
#ifndef HTTPD_LOG_FORMAT_H
#define HTTPD_LOG_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "variable.h"

#define LOG_VALUE_MAX 2048

enum log_escape { LOG_ESCAPE_DEFAULT, LOG_ESCAPE_JSON };

struct log_format {
	enum log_escape     escape;
	struct expr         expr;
	size_t              max_line;    /* longest possible line, newline included */
	bool                needs_time;  /* $request_time*: the start time is worth a precise clock */
};

/*
 * A built-in format ("combined", "common", "json") or NULL; compiled by the
 * caller with log_format_compile like any other.
 */
const char *log_format_builtin(const char *name, enum log_escape *escape);

/* Compiles text; -1 with a reason in err (an unknown $variable, a lone $). */
int  log_format_compile(const char *text, enum log_escape escape, struct log_format *out,
                        char *err, size_t errlen);
void log_format_free(struct log_format *f);


/* Renders one line ending in '\n' into out (at least f->max_line bytes); returns its length. */
size_t log_format_render(const struct log_format *f, var_lookup_fn lookup, void *ctx, char *out);

/* Appends s escaped for JSON at out (room for LOG_VALUE_MAX + 1 bytes); returns bytes written. */
size_t log_escape_json(char *out, const char *s, size_t limit);

#endif
