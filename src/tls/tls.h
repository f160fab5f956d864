/*
 * TLS (OpenSSL 3): one SSL_CTX per server with a certificate, built by the
 * master as root when the configuration loads, so a bad certificate or key
 * fails the load (and a reload keeps the running configuration); SNI picks
 * the server during the ClientHello; session tickets are encrypted with keys
 * the master keeps in shared memory, so any worker resumes any session.
 */
#ifndef HTTPD_TLS_H
#define HTTPD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "directive.h"

struct conn;
struct httpd_config;
struct httpd_server;
struct tls_server;

typedef void (*tls_report_fn)(const char *file, int line, const char *msg);

/* tls_* directives, redirect_https, hsts and http2; finishing builds every SSL_CTX. */
extern const struct directive_table tls_directives;

/* Builds the SSL_CTX of every server that has a certificate; problems go to report as file:line. */
int  tls_config_build(struct httpd_config *config, tls_report_fn report);
void tls_server_free(struct tls_server *t);
/* The SSL_CTX (as void *) every handshake starts with: the default server's. */
void *tls_default_ctx(const struct httpd_config *config);

/* --- session ticket keys (tls_tickets.c) --- */

/* Maps the shared key table; the master calls it once, before the first fork. */
int  tls_tickets_init(void);
/* In a worker, once forked: the table becomes read-only there, and the master's copy is wiped. */
void tls_tickets_worker_seal(void);
/* After a configuration is loaded: its tls_ticket_key_file key becomes the current one. */
void tls_tickets_apply(const struct httpd_config *config);
/* Master, every so often: a new random key once the current one is older than an hour. */
void tls_tickets_rotate(time_t now);
/* When tls_tickets_rotate wants to run next. */
time_t tls_tickets_next_rotation(void);
/* Installs the ticket key callback on ctx (an SSL_CTX *). */
void tls_tickets_attach(void *ctx);

/* --- connections (transport_tls.c) --- */

/* Puts a TLS transport on c (accepted on a tls listener); -1 out of memory. */
int  tls_conn_start(struct conn *c);
/*
 * Where c's handshake is: 0 still going, 1 done (alpn_h2 says whether ALPN
 * chose h2), -1 no TLS on c any more (a plain HTTP request on the TLS port
 * was answered and c lingers).
 */
int  tls_conn_handshake(struct conn *c, bool *alpn_h2);
/* What modules and logs may ask of c's TLS session (httpd_request_tls); NULL if unknown. */
/* Did the client show a certificate that verified (on this handshake or the one it resumed)? */
bool tls_conn_peer_verified(struct conn *c);
const char *tls_conn_field(struct conn *c, const char *field, char *buf, size_t size);

#endif
