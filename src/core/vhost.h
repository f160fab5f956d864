/*
 * Virtual hosts: which server block answers a Host header or an SNI name.
 * Exact names (and aliases) first, then the longest matching "*.suffix"
 * wildcard; case-insensitive, the port and a trailing dot ignored.
 */
#ifndef HTTPD_VHOST_H
#define HTTPD_VHOST_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Whether name (lower case, no port) matches pattern ("example.com" or "*.example.com"). */
bool vhost_name_match(const char *pattern, const char *name, size_t len);
/* Indexes the servers' names for vhost_find; -1 out of memory. */
int vhost_index(struct httpd_config *config);
void vhost_index_free(struct httpd_config *config);
/*
 * The server for host (a Host value, port allowed, or an SNI name; NULL for
 * none): the one naming it, else the default server.  *named says which.
 * One hash lookup for the exact name, then one per label for wildcards.
 */
const struct httpd_server *vhost_find(const struct httpd_config *config, const char *host, size_t len,
                                      bool *named);

/*
 * Whether a connection made for a may serve b without SNI: the same
 * certificate, and the same client certificate checks.
 */
bool vhost_same_tls(const struct httpd_server *a, const struct httpd_server *b);

#endif
