/* The TLS layer's directives: certificates per server, versions, client certificates, tickets. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"

/* A private key must be the server's alone: refused when group or others may read or replace it. */
static int key_check(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "tls_certificate_key: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "tls_certificate_key: %s is %s by %s (mode %04o); a private key must be readable by "
		         "its owner only (chmod 600)", path, (st.st_mode & (S_IRGRP | S_IROTH)) ? "readable" : "writable",
		         (st.st_mode & S_IRWXO) ? "others" : "its group", (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

static int readable_check(const char *path, char *err, size_t errlen)
{
	if (access(path, R_OK) == 0)
		return 0;
	snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
	return -1;
}

/* "TLSv1.2 TLSv1.3": the versions allowed, which must follow one another. */
static int protocols_parse(const char *text, int *min, int *max)
{
	static const struct { const char *name; int version; } known[] = {
		{ "TLSv1", 0x0301 }, { "TLSv1.1", 0x0302 }, { "TLSv1.2", 0x0303 }, { "TLSv1.3", 0x0304 },
	};
	unsigned seen = 0;
	const char *p = text;

	while (*p != '\0') {
		size_t len;
		bool found = false;

		p += strspn(p, " \t,");
		len = strcspn(p, " \t,");
		if (len == 0)
			break;
		for (unsigned i = 0; i < 4; i++)
			if (strlen(known[i].name) == len && strncmp(p, known[i].name, len) == 0) {
				seen |= 1u << i;
				found = true;
			}
		if (!found)
			return -1;
		p += len;
	}
	if (seen == 0)
		return -1;
	*min = *max = 0;
	for (unsigned i = 0; i < 4; i++) {
		if (!(seen & (1u << i)))
			continue;
		if (*min == 0)
			*min = known[i].version;
		else if (!(seen & (1u << (i - 1))))
			return -2;   /* a gap: OpenSSL takes a range */
		*max = known[i].version;
	}
	return 0;
}

static int protocols_check(const char *text, char *err, size_t errlen)
{
	int min, max, rc = protocols_parse(text, &min, &max);

	if (rc == -1)
		snprintf(err, errlen, "tls_protocols: \"%s\" is not a list of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3", text);
	else if (rc == -2)
		snprintf(err, errlen, "tls_protocols: \"%s\" leaves a gap; name consecutive versions", text);
	return rc == 0 ? 0 : -1;
}

/* A cipher list OpenSSL takes whole: one without a single cipher it knows is a mistake. */
static int ciphers_check(const char *text, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int ok = ctx != NULL && SSL_CTX_set_cipher_list(ctx, text) == 1;

	SSL_CTX_free(ctx);
	ERR_clear_error();
	if (!ok)
		snprintf(err, errlen, "tls_ciphers: \"%s\" names no cipher OpenSSL knows", text);
	return ok ? 0 : -1;
}

/*
 * OpenSSL drops a TLS 1.3 suite name it does not know when another in the
 * list is good: each is tried alone, so a typo is an error here, not a
 * suite silently missing.
 */
static int suites_check(const char *text, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const char *p = text;
	int rc = ctx != NULL ? 0 : -1;

	while (rc == 0 && *p != '\0') {
		size_t len = strcspn(p, ":");
		char name[128];

		if (len == 0 || len >= sizeof(name)) {
			rc = -1;
		} else {
			memcpy(name, p, len);
			name[len] = '\0';
			rc = SSL_CTX_set_ciphersuites(ctx, name) == 1 ? 0 : -1;
		}
		if (rc != 0)
			snprintf(err, errlen, "tls_ciphersuites: \"%.*s\" is not a TLS 1.3 suite OpenSSL knows "
			         "(TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, ...)",
			         (int)len, p);
		p += len;
		if (*p == ':')
			p++;
	}
	if (rc == 0 && p == text) {
		snprintf(err, errlen, "tls_ciphersuites: the list is empty");
		rc = -1;
	}
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

static int protocols_build(const struct directive_use *use)
{
	const char *text = httpd_conf_str(use->from, "tls_protocols");

	use->server->tls_min_version = 0x0303;   /* TLS 1.2 and 1.3 */
	use->server->tls_max_version = 0x0304;
	if (text != NULL)
		(void)protocols_parse(text, &use->server->tls_min_version, &use->server->tls_max_version);
	return 0;
}

static int key_build(const struct directive_use *use)
{
	use->server->tls_key_file = use->file;
	use->server->tls_key_line = use->line;
	return 0;
}

/* Client certificates are required once a CA is named, unless tls_verify_client says otherwise. */
static int verify_build(const struct directive_use *use)
{
	struct httpd_server *srv = use->server;
	const char *label = srv->name != NULL ? srv->name : "the top-level server";

	if (!use->set)
		srv->tls_verify_client = srv->tls_client_ca == NULL ? TLS_VERIFY_OFF : TLS_VERIFY_REQUIRED;
	if ((srv->tls_certificate == NULL) != (srv->tls_certificate_key == NULL)) {
		config_error(srv->file, srv->line, "%s: tls_certificate and tls_certificate_key go together", label);
		return -1;
	}
	if (srv->tls_verify_client != TLS_VERIFY_OFF && srv->tls_client_ca == NULL) {
		config_error(srv->file, srv->line, "%s: tls_verify_client needs tls_client_ca", label);
		return -1;
	}
	return 0;
}

static int hsts_build(const struct directive_use *use)
{
	snprintf(use->server->hsts_header, sizeof(use->server->hsts_header), "max-age=%u", use->server->hsts);
	return 0;
}

static int ticket_key_build(const struct directive_use *use)
{
	use->config->tls_ticket_key_origin = use->file;
	use->config->tls_ticket_key_line = use->line;
	return 0;
}

static void servers_tls_release(void *p)
{
	struct httpd_config *config = p;

	for (size_t i = 0; i < config->server_count; i++) {
		tls_server_free(config->servers[i].tls);
		config->servers[i].tls = NULL;
	}
}

static int tls_finish(struct httpd_config *config)
{
	if (config_own(config, config, servers_tls_release) < 0)
		return -1;
	return tls_config_build(config, config_report);
}

static const char *const verify_modes[] = { "off", "optional", "required", NULL };

#define TOP DIRECTIVE_TOP
#define TOP_SERVER (DIRECTIVE_TOP | DIRECTIVE_SERVER)

/* A server block without its own setting takes the top level's. */
static const struct directive tls_rows[] = {
	{ "tls_certificate", TOP_SERVER, DIRECTIVE_PATH, NULL, .check = readable_check,
	  DIRECTIVE_SERVER_AT(tls_certificate) },
	{ "tls_certificate_key", TOP_SERVER, DIRECTIVE_PATH, NULL, .check = key_check,
	  DIRECTIVE_SERVER_AT(tls_certificate_key), .build = key_build },
	{ "tls_protocols", TOP_SERVER, DIRECTIVE_STR, NULL, .check = protocols_check,
	  .store = DIRECTIVE_IN_SERVER, .build = protocols_build },
	{ "tls_ciphers", TOP_SERVER, DIRECTIVE_STR, NULL, .check = ciphers_check, DIRECTIVE_SERVER_AT(tls_ciphers) },
	{ "tls_ciphersuites", TOP_SERVER, DIRECTIVE_STR, NULL, .check = suites_check,
	  DIRECTIVE_SERVER_AT(tls_ciphersuites) },
	{ "tls_client_ca", TOP_SERVER, DIRECTIVE_PATH, NULL, .check = readable_check,
	  DIRECTIVE_SERVER_AT(tls_client_ca) },
	{ "tls_verify_client", TOP_SERVER, DIRECTIVE_ENUM, NULL, .words = verify_modes,
	  DIRECTIVE_SERVER_AT(tls_verify_client), .build = verify_build },
	{ "redirect_https", TOP_SERVER, DIRECTIVE_BOOL, "false", DIRECTIVE_SERVER_AT(redirect_https) },
	{ "hsts", TOP_SERVER, DIRECTIVE_INT, "0", 0, 100000000, DIRECTIVE_SERVER_AT(hsts), .build = hsts_build },
	{ "http2", TOP_SERVER, DIRECTIVE_BOOL, "true", DIRECTIVE_SERVER_AT(http2) },
	{ "tls_ktls", TOP, DIRECTIVE_BOOL, "false", DIRECTIVE_CONFIG(tls_ktls) },
	{ "tls_ticket_key_file", TOP, DIRECTIVE_PATH, NULL, .check = readable_check,
	  DIRECTIVE_CONFIG(tls_ticket_key_file), .build = ticket_key_build },
	{ "tls_session_timeout", TOP, DIRECTIVE_INT, "300", 1, 1000000, DIRECTIVE_CONFIG(tls_session_timeout) },
	{ .name = NULL },
};

const struct directive_table tls_directives = { "tls", tls_rows, tls_finish, NULL };
