/*
 * Content-coding negotiation (RFC 9110 §12.5.3): the Accept-Encoding field
 * read with its q-values, the codings the server offers chosen in the
 * client's order, ties broken by the server's.  Pure logic.
 */
#ifndef HTTPD_CONTENT_CODING_H
#define HTTPD_CONTENT_CODING_H

#include <stdbool.h>
#include <stddef.h>

/* The codings the core knows, as the compress directive names them. */
enum coding { CODING_GZIP, CODING_BR, CODING_ZSTD, CODING_COUNT };

/* "gzip", "br", "zstd"; and the module that produces each ("gzip", "brotli", "zstd"). */
const char *coding_name(enum coding c);
const char *coding_module(enum coding c);
/* The coding called name (case-insensitive, as in Accept-Encoding), or -1. */
int coding_by_name(const char *name, size_t len);

/*
 * The q-value (in thousandths) the field gives coding: its own member, else
 * "*", else 0 (1000 for "identity", acceptable unless refused).  A member
 * that is not a valid q-value counts as q=0.
 */
int accept_encoding_q(const char *field, const char *coding);

/*
 * The offered codings (offer[0..n), the server's preference first) that
 * field accepts with q > 0, best first: higher q, then the server's order.
 * Writes at most max into out; returns how many.
 */
size_t coding_negotiate(const char *field, const enum coding *offer, size_t n, enum coding *out, size_t max);

#endif
