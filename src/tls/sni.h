/* The server_name extension of a TLS ClientHello (RFC 6066 §3), parsed without trusting a byte. */
#ifndef HTTPD_SNI_H
#define HTTPD_SNI_H

#include <stddef.h>

/*
 * The host_name in ext (the extension's body, len bytes): its length, with
 * *name pointing into ext; 0 when the extension is malformed or names no
 * host (an empty name, one over 255 bytes or holding a NUL counts as none).
 */
size_t tls_sni_parse(const unsigned char *ext, size_t len, const unsigned char **name);

#endif
