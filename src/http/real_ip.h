/*
 * The real client address behind trusted proxies (real_ip_from,
 * real_ip_header): X-Forwarded-For and RFC 7239 Forwarded, walked from the
 * right, never trusting the leftmost entry, which the client writes itself.
 * Pure functions, unit-tested and fuzzed.
 */
#ifndef HTTPD_REAL_IP_H
#define HTTPD_REAL_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

/* PROXY_PROTOCOL: the client comes from the preamble (event/conn_proxy.c), no header is read. */
enum real_ip_header { REAL_IP_X_FORWARDED_FOR, REAL_IP_FORWARDED, REAL_IP_PROXY_PROTOCOL };

/*
 * values[0..count) are the field values of every instance of the header,
 * in order.  Walking hops from the right, the client is the first address
 * not in trusted; a hop that is not an address (Forwarded's "unknown" or an
 * obfuscated "_name", garbage) ends the walk at the hop before it.  Writes
 * the address (IPv6 without brackets or port) to out and returns true, or
 * false when the header names no usable address.
 */
bool real_ip_find(enum real_ip_header kind, const char *const *values, size_t count,
                  const struct cidr *trusted, size_t trusted_count, char *out, size_t size);

#endif
