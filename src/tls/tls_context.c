/* One SSL_CTX per server with a certificate; SNI and ALPN callbacks. */
#include "tls.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "conn.h"
#include "listen.h"
#include "sni.h"
#include "vhost.h"

/*
 * TLS 1.2 ciphers unless tls_ciphers says otherwise: forward secrecy and
 * AEAD only (Mozilla's "intermediate" list), so no CBC (LUCKY13) and no
 * static RSA (ROBOT).
 */
#define TLS_DEFAULT_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

/*
 * TLS 1.3 suites unless tls_ciphersuites says otherwise: Mozilla's order,
 * AES-128-GCM first (OpenSSL's own puts AES-256 first, 15% more CPU per
 * byte here); SSL_OP_PRIORITIZE_CHACHA still gives ChaCha20 to a client
 * that asks for it first (one without AES instructions).
 */
#define TLS13_DEFAULT_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* The server's lists, or the defaults above. */
static const char *ciphers_of(const struct httpd_server *srv)
{
	return srv->tls_ciphers != NULL ? srv->tls_ciphers : TLS_DEFAULT_CIPHERS;
}

static const char *suites_of(const struct httpd_server *srv)
{
	return srv->tls_ciphersuites != NULL ? srv->tls_ciphersuites : TLS13_DEFAULT_SUITES;
}

struct tls_server {
	SSL_CTX                   *ctx;
	const struct httpd_server *srv;
	STACK_OF(X509_NAME)       *client_cas;   /* sent in the CertificateRequest */
};

/* The most recent OpenSSL error, as text, for a message an operator reads. */
static const char *ssl_error_text(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, size, "unknown error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

static const char *server_label(const struct httpd_server *srv, char *buf, size_t size)
{
	if (srv->name != NULL)
		snprintf(buf, size, "server \"%s\"", srv->name);
	else
		snprintf(buf, size, "the top-level server");
	return buf;
}

/*
 * ALPN: h2 first when the server the SNI chose (or the default) speaks it,
 * else http/1.1; a client offering neither gets no ALPN, as nginx does.
 * The connection's protocol follows what was chosen (http/http_conn.c).
 */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
	static const unsigned char with_h2[] = "\x02h2\x08http/1.1";
	static const unsigned char h1_only[] = "\x08http/1.1";
	const struct conn *c = SSL_get_app_data(ssl);
	const struct httpd_server *srv = c->sni_server != NULL ? c->sni_server : c->w->config->default_server;
	bool h2 = srv->http2;

	(void)arg;
	if (SSL_select_next_proto((unsigned char **)(uintptr_t)out, outlen, h2 ? with_h2 : h1_only,
	                          h2 ? sizeof(with_h2) - 1 : sizeof(h1_only) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Before the version is chosen, so a server's own tls_protocols apply: SNI
 * picks the server, whose certificate, protocols, ciphers and client
 * certificate settings replace the default server's on this connection.
 */
static int client_hello(SSL *ssl, int *alert, void *arg)
{
	struct conn *c = SSL_get_app_data(ssl);
	const struct httpd_config *config = c->w->config;
	const unsigned char *ext, *name = NULL;
	size_t ext_len, name_len = 0;
	const struct httpd_server *srv;
	const struct tls_server *t;
	bool named;

	(void)arg;
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &ext_len) == 1)
		name_len = tls_sni_parse(ext, ext_len, &name);
	if (name_len == 0) {
		/* No SNI: the default server's certificate and client checks; Host must not escape them. */
		c->tls_no_sni = true;
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	srv = vhost_find(config, (const char *)name, name_len, &named);
	c->sni_server = srv;
	t = srv->tls != NULL ? srv->tls : config->default_server->tls;
	if (SSL_get_SSL_CTX(ssl) == t->ctx)
		return SSL_CLIENT_HELLO_SUCCESS;   /* the default server's: everything is in place already */
	if (SSL_set_SSL_CTX(ssl, t->ctx) == NULL) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	/* SSL_set_SSL_CTX swaps the certificate only; the rest is the connection's own. */
	SSL_set_min_proto_version(ssl, t->srv->tls_min_version);
	SSL_set_max_proto_version(ssl, t->srv->tls_max_version);
	SSL_set_options(ssl, SSL_CTX_get_options(t->ctx));
	if (SSL_set_cipher_list(ssl, ciphers_of(t->srv)) != 1 || SSL_set_ciphersuites(ssl, suites_of(t->srv)) != 1) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	SSL_set_verify(ssl, SSL_CTX_get_verify_mode(t->ctx), NULL);
	if (t->client_cas != NULL) {
		STACK_OF(X509_NAME) *cas = SSL_dup_CA_list(t->client_cas);

		if (cas != NULL)
			SSL_set_client_CA_list(ssl, cas);
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/*
 * Every server its own session id context, from its name and how it checks
 * clients: OpenSSL resumes a session (ticket or not) only where the context
 * matches, so a session made where no certificate was asked for cannot be
 * resumed on a server that requires one.
 */
static int session_context_set(SSL_CTX *ctx, const struct httpd_server *srv)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	char verify[16];
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	const char *name = srv->name != NULL ? srv->name : "";
	int ok;

	snprintf(verify, sizeof(verify), "%d", srv->tls_client_ca != NULL ? (int)srv->tls_verify_client : -1);
	ok = h != NULL && EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(h, "prefork-httpd", sizeof("prefork-httpd")) == 1 &&
	     EVP_DigestUpdate(h, name, strlen(name) + 1) == 1 &&
	     EVP_DigestUpdate(h, verify, strlen(verify) + 1) == 1 &&
	     (srv->tls_client_ca == NULL ||
	      EVP_DigestUpdate(h, srv->tls_client_ca, strlen(srv->tls_client_ca) + 1) == 1) &&
	     EVP_DigestFinal_ex(h, md, &md_len) == 1 && md_len <= SSL_MAX_SID_CTX_LENGTH &&
	     SSL_CTX_set_session_id_context(ctx, md, md_len) == 1;
	EVP_MD_CTX_free(h);
	return ok ? 0 : -1;
}

static int ctx_build(struct httpd_config *config, struct httpd_server *srv, tls_report_fn report)
{
	char err[256], label[300], msg[1024];
	struct tls_server *t = calloc(1, sizeof(*t));
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
	                   SSL_OP_NO_COMPRESSION;

	server_label(srv, label, sizeof(label));
	if (t == NULL || ctx == NULL) {
		snprintf(msg, sizeof(msg), "%s: cannot create a TLS context: %s", label, ssl_error_text(err, sizeof(err)));
		goto fail;
	}
	t->ctx = ctx;
	t->srv = srv;
	srv->tls = t;
	if (config->tls_ktls)
		options |= SSL_OP_ENABLE_KTLS;
	SSL_CTX_set_options(ctx, options);
	/* Buffers go back between records, so an idle TLS connection stays small. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Whole segments per read: a record's header and body do not cost a syscall each. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_min_proto_version(ctx, srv->tls_min_version);
	SSL_CTX_set_max_proto_version(ctx, srv->tls_max_version);
	if (SSL_CTX_set_cipher_list(ctx, ciphers_of(srv)) != 1) {
		snprintf(msg, sizeof(msg), "%s: tls_ciphers \"%s\" names no cipher OpenSSL knows", label,
		         srv->tls_ciphers);
		ERR_clear_error();
		goto fail;
	}
	/* each name was checked at its line (tls_directives.c) */
	if (SSL_CTX_set_ciphersuites(ctx, suites_of(srv)) != 1) {
		snprintf(msg, sizeof(msg), "%s: tls_ciphersuites \"%s\": %s", label, srv->tls_ciphersuites,
		         ssl_error_text(err, sizeof(err)));
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, srv->tls_certificate) != 1) {
		snprintf(msg, sizeof(msg), "%s: tls_certificate %s: %s", label, srv->tls_certificate,
		         ssl_error_text(err, sizeof(err)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, srv->tls_certificate_key, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
		snprintf(msg, sizeof(msg), "%s: tls_certificate_key %s: %s", label, srv->tls_certificate_key,
		         ssl_error_text(err, sizeof(err)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(msg, sizeof(msg), "%s: tls_certificate_key %s does not match tls_certificate %s", label,
		         srv->tls_certificate_key, srv->tls_certificate);
		ERR_clear_error();
		goto fail;
	}
	if (srv->tls_client_ca != NULL) {
		int mode = SSL_VERIFY_PEER;

		if (SSL_CTX_load_verify_locations(ctx, srv->tls_client_ca, NULL) != 1 ||
		    (t->client_cas = SSL_load_client_CA_file(srv->tls_client_ca)) == NULL) {
			snprintf(msg, sizeof(msg), "%s: tls_client_ca %s: %s", label, srv->tls_client_ca,
			         ssl_error_text(err, sizeof(err)));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, SSL_dup_CA_list(t->client_cas));
		if (srv->tls_verify_client == TLS_VERIFY_REQUIRED)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, srv->tls_verify_client == TLS_VERIFY_OFF ? SSL_VERIFY_NONE : mode, NULL);
	}
	/* Stateless tickets only: a per-worker session cache would not follow the client to another worker. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (session_context_set(ctx, srv) < 0) {
		snprintf(msg, sizeof(msg), "%s: cannot set the session id context: %s", label,
		         ssl_error_text(err, sizeof(err)));
		goto fail;
	}
	SSL_CTX_set_timeout(ctx, (long)config->tls_session_timeout);
	tls_tickets_attach(ctx);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_client_hello_cb(ctx, client_hello, NULL);
	return 0;
fail:
	report(srv->tls_key_file, srv->tls_key_line, msg);
	return -1;
}

/* A secret file: ours alone, and exactly the size it must be. */
static int ticket_key_read(struct httpd_config *config, tls_report_fn report)
{
	char msg[512];
	struct stat st;
	ssize_t n = -1;
	int fd = open(config->tls_ticket_key_file, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		snprintf(msg, sizeof(msg), "tls_ticket_key_file: %s is %s by group or others (mode %04o); "
		         "chmod 600 it", config->tls_ticket_key_file,
		         (st.st_mode & (S_IRGRP | S_IROTH)) ? "readable" : "writable", (unsigned)(st.st_mode & 07777));
		close(fd);
		report(config->tls_ticket_key_origin, config->tls_ticket_key_line, msg);
		return -1;
	}
	if (fd >= 0) {
		n = read(fd, config->tls_ticket_key, sizeof(config->tls_ticket_key));
		if (n == (ssize_t)sizeof(config->tls_ticket_key) && read(fd, msg, 1) != 0)
			n = 0;   /* longer than a key */
		close(fd);
	}
	if (n != (ssize_t)sizeof(config->tls_ticket_key)) {
		snprintf(msg, sizeof(msg), "tls_ticket_key_file: %s must hold exactly 80 random bytes "
		         "(openssl rand 80 > FILE)%s%s", config->tls_ticket_key_file, n < 0 ? ": " : "",
		         n < 0 ? strerror(errno) : "");
		report(config->tls_ticket_key_origin, config->tls_ticket_key_line, msg);
		return -1;
	}
	config->tls_ticket_key_set = true;
	return 0;
}

int tls_config_build(struct httpd_config *config, tls_report_fn report)
{
	const struct httpd_server *def = config->default_server;
	int rc = 0;

	for (size_t i = 0; i < config->listen_count; i++) {
		const struct listen_spec *ls = &config->listens[i];

		if (!(ls->flags & LISTEN_TLS))
			continue;
		if (!config->tls) {
			const struct sockaddr *sa = (const struct sockaddr *)&ls->addr;

			config->tls_https_port = sa->sa_family == AF_INET6
			                       ? ntohs(((const struct sockaddr_in6 *)sa)->sin6_port)
			                       : ntohs(((const struct sockaddr_in *)sa)->sin_port);
		}
		config->tls = true;
	}
	if (config->tls_ticket_key_file != NULL && ticket_key_read(config, report) < 0)
		rc = -1;
	for (size_t i = 0; i < config->server_count; i++) {
		struct httpd_server *srv = &config->servers[i];

		if (srv->tls_certificate != NULL && ctx_build(config, srv, report) < 0)
			rc = -1;
	}
	if (rc == 0 && config->tls && def->tls == NULL) {
		char msg[512], label[300];

		snprintf(msg, sizeof(msg), "%s is the default server of the tls listeners but has no tls_certificate",
		         server_label(def, label, sizeof(label)));
		report(def->file, def->line, msg);
		rc = -1;
	}
	return rc;
}

void tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	if (t->client_cas != NULL)
		sk_X509_NAME_pop_free(t->client_cas, X509_NAME_free);
	free(t);
}

/* The default server's context: where every handshake starts. */
void *tls_default_ctx(const struct httpd_config *config)
{
	return config->default_server->tls != NULL ? config->default_server->tls->ctx : NULL;
}
