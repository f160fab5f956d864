/*
 * Upstream servers given by name, resolved with c-ares at load and again
 * in the background by each worker (resolve.c).
 */
#ifndef HTTPD_PROXY_RESOLVE_H
#define HTTPD_PROXY_RESOLVE_H

#include <stddef.h>

#include <httpd/module.h>

#include "upstream.h"

typedef void (*upstream_gone_fn)(struct upstream *u, struct upstream_server *s);

/* The upstream block's resolver = {"IP[:port]", ...} and resolver_valid; -1 with file:line in err. */
int resolver_read(const struct httpd_conf *sec, struct upstream *u, const char *origin, char *err, size_t errlen);
/*
 * In the master: every name of u resolved now (5 s at most), its slots
 * filled; a name that does not resolve is an error naming it.  Nothing
 * under httpd -t.
 */
int resolve_at_load(struct upstream *u, const char *origin, char *err, size_t errlen);
/* In each worker: u's names again after their TTL, within 1 s and resolver_valid; gone() closes a slot's pool. */
int resolve_worker_start(struct upstream *u, upstream_gone_fn gone);

#endif
