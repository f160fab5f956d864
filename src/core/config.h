/* The server configuration: parsed, validated, modules configured. */
#ifndef HTTPD_CONFIG_H
#define HTTPD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <confuse.h>

#include "config_options.h"
#include "config_source.h"
#include "directive.h"
#include "log.h"
#include "mime.h"
#include "module.h"
#include "name_table.h"
#include "request_limits.h"

struct access_rule;
struct auth_basic;
struct cidr;
struct listen_spec;
struct log_format;

struct location_module {
	const struct module *mod;
	void                *data;
};

/* Distinct access_log files: the top level's and server blocks' own. */
#define ACCESS_LOGS_MAX 64

/* Checks per location: a request keeps one bit per check in a 32-bit mask. */
#define LOCATION_CHECKS_MAX 32

struct limit_zone;

/* limit_req "zone" { burst delay } in a location (nodelay: delay = burst). */
struct location_limit_req {
	struct limit_zone *zone;
	uint64_t           burst, delay;
};

/* limit_conn "zone" { max } */
struct location_limit_conn {
	struct limit_zone *zone;
	unsigned           max;
};

/* How a location's title matches (nginx's forms). */
enum location_kind {
	LOCATION_PREFIX,        /* "/docs/": the longest prefix, on a segment boundary */
	LOCATION_PREFIX_STOP,   /* "^~ /images/": a prefix that, when longest, skips the regexes */
	LOCATION_EXACT,         /* "= /favicon.ico": this path only, before anything else */
	LOCATION_REGEX,         /* "~ \.php$", "~* \.(png|jpg)$" (caseless): in file order, after the prefixes */
	LOCATION_NAMED,         /* "@backend": only a target of try_files, never matched by a path */
};

struct rewrite_set;
struct return_rule;
struct try_rule;
struct header_rule;

struct httpd_location {
	const char             *prefix;         /* the title as written ("= /x", "~ re", "@name", "/docs/") */
	size_t                  prefix_len;     /* of the prefix a path must start with (0 but for prefixes) */
	const char             *path;           /* the prefix or exact path, the regex, or the name, alone */
	enum location_kind      kind;
	void                   *regex;          /* LOCATION_REGEX: its compiled pcre2 code */
	struct location_module  handler;
	struct location_module *checks;
	size_t                  check_count;
	struct location_module *filters;        /* filter: body-filter modules, in order */
	size_t                  filter_count;
	unsigned                methods;        /* what the handler accepts here */
	uint64_t                max_body_size;
	bool                    gzip;           /* gzip = true: compress = {"gzip"} */
	int                     gzip_level;
	uint64_t                gzip_min_length;
	uint64_t                compress_min_length;
	bool                    compress_min_length_set;
	struct compress_conf   *compress;       /* http/compress.c: the codings offered here, or NULL */
	bool                    access_log_off;          /* access_log = "off" */
	int                     access_log_min_status;   /* log only responses with at least this status */
	struct access_rule     *access;         /* access: ordered allow/deny rules, first match wins */
	size_t                  access_count;
	struct auth_basic      *auth;           /* auth_basic, or NULL */
	const char             *document_root;  /* its handler's root option, for $document_root */
	int                     root_fd;        /* document_root opened (O_PATH), for try_files; -1 without */
	struct rewrite_set     *rewrites;       /* rewrite, or NULL */
	struct return_rule     *ret;            /* return, or NULL */
	struct try_rule        *tries;          /* try_files, in order */
	size_t                  try_count;
	struct header_rule     *headers;        /* add_header */
	size_t                  header_count;
	int                     expires;        /* enum expires_mode */
	int64_t                 expires_s;      /* a duration's seconds */
	const char             *auth_user_file; /* auth_basic_user_file */
	const char             *auth_user_file_origin;   /* where it was set */
	int                     auth_user_file_line;
	struct location_limit_req  *limit_reqs;
	size_t                      limit_req_count;
	struct location_limit_conn *limit_conns;
	size_t                      limit_conn_count;
	int                     limit_req_status, limit_conn_status;
	bool                    limit_req_dry_run;
	int                     limit_req_redis_failure;   /* enum limit_redis_failure */
	const struct httpd_config *config;
	const struct httpd_server *server;
	const char             *file;
	int                     line;
};

/* limit_req_redis_failure: what a zone in Redis does when Redis does not answer. */
enum limit_redis_failure { LIMIT_REDIS_CLOSED, LIMIT_REDIS_OPEN };

/* Client certificates (tls_verify_client). */
enum tls_verify { TLS_VERIFY_OFF, TLS_VERIFY_OPTIONAL, TLS_VERIFY_REQUIRED };

struct tls_server;   /* tls/tls_context.c: the SSL_CTX of one server */

/*
 * A virtual host: a server "NAME" block, or the top-level locations (the
 * server with no name).  Requests pick one by Host, TLS handshakes by SNI.
 */
struct httpd_server {
	const char            *name;           /* the block's title; NULL for the top level */
	char                 **names;          /* name and aliases, lower case; "*.x" wildcards */
	size_t                 name_count;
	bool                   is_default;
	struct httpd_location *locations;      /* a slice of config->locations, longest prefix first */
	size_t                 location_count;
	const void            *owner;          /* the section its error_page lines came from */
	const char            *file;
	int                    line;
	size_t                 access_log;     /* index into config->access_logs */

	/* TLS: a server without its own settings takes the top level's */
	const char            *tls_certificate;
	const char            *tls_certificate_key;
	const char            *tls_key_file;   /* where tls_certificate_key was set */
	int                    tls_key_line;
	int                    tls_min_version, tls_max_version;   /* TLS1_2_VERSION ... */
	const char            *tls_ciphers;
	const char            *tls_ciphersuites;   /* TLS 1.3 */
	const char            *tls_client_ca;
	enum tls_verify        tls_verify_client;
	struct tls_server     *tls;            /* NULL without a certificate */
	bool                   redirect_https;
	unsigned               hsts;           /* Strict-Transport-Security max-age; 0 for none */
	char                   hsts_header[32];   /* its value, "max-age=N" */
	bool                   http2;          /* ALPN offers h2 on TLS (h2c listeners speak it regardless) */
	/* Its locations indexed (http/location.c): exact paths, prefixes, and the regexes in file order. */
	struct name_table      exact_paths;
	struct name_table      prefixes;
	const struct httpd_location **regexes;
	size_t                 regex_count;
	struct rewrite_set    *rewrites;       /* the server's own rewrite rules, before a location is chosen */
	struct return_rule    *ret;            /* the server's return, or NULL */
	const struct httpd_config *config;
};

/* An operator's page for one error status (error_page directive). */
struct error_page {
	const void *owner;      /* the section it was written in */
	int         status;
	char       *body;
	size_t      len;
	const char *content_type;
};

/* A module used by this configuration, with what its server_init made. */
struct server_module {
	const struct module *mod;
	void                *data;
	bool                 inited;
};

struct config_owned {
	void  *ptr;
	void (*release)(void *);
};

struct httpd_config {
	cfg_t                 *cfg;
	cfg_opt_t             *schema;          /* kept alive as long as cfg */
	struct option_arena    arena;           /* the schemas and the modules' rows */
	struct config_source   src;
	struct config_owned   *owned;           /* what the layers' directives allocated */
	size_t                 owned_count;

	struct limit_zone    **limit_zones;     /* limit_req_zone and limit_conn_zone blocks */
	size_t                 limit_zone_count;
	struct listen_spec    *listens;
	size_t                 listen_count;
	unsigned               workers;
	const char            *user;
	const char            *pid_file;
	const char            *error_log;
	enum httpd_log_level   error_log_level;
	const char            *access_log;
	const char            *module_dir;
	const char            *mime_types;
	struct mime_table     *mime;
	const char            *temp_dir;
	bool                   server_tokens;
	bool                   reuseport;
	struct http_limits     limits;
	size_t                 body_buffer_size;
	unsigned               header_timeout_ms;
	unsigned               body_timeout_ms;
	unsigned               keepalive_timeout_ms;
	unsigned               send_timeout_ms;
	unsigned               handler_timeout_ms;
	unsigned               shutdown_timeout_ms;
	unsigned               shutdown_delay_ms;
	unsigned               drain_timeout_ms;   /* SIGQUIT and reloads */
	unsigned               upgrade_timeout_ms; /* SIGUSR2: how long the new master may take */
	unsigned               keepalive_requests;
	unsigned               http2_max_concurrent_streams;
	unsigned               worker_connections;
	unsigned               worker_threads;
	struct log_format     *access_format;   /* access_log_format, compiled */
	size_t                 access_log_buffer;
	unsigned               access_log_flush_ms;
	unsigned               file_cache_valid_ms;
	size_t                 file_cache_entries;
	bool                   file_cache_errors;   /* cache "not found" and other failures too */
	uint64_t               file_cache_size;

	struct cidr           *real_ip_from;    /* proxies trusted to name the client */
	size_t                 real_ip_from_count;
	int                    real_ip_header;  /* enum real_ip_header */
	const char            *real_ip_header_name;
	struct cidr           *proxy_protocol_from; /* balancers allowed on proxy_protocol listeners */
	size_t                 proxy_protocol_from_count;
	unsigned               proxy_protocol_timeout_ms;

	struct httpd_location *locations;       /* every server's, in server order */
	size_t                 location_count;
	struct httpd_server   *servers;         /* the top level's first, when it has locations */
	size_t                 server_count;
	const struct httpd_server *default_server;
	bool                   vhosts;          /* more than one server: match Host */
	struct name_table      vhost_names;     /* exact names and aliases (lower case) -> server */
	struct name_table      vhost_wildcards; /* ".example.com" of "*.example.com" -> server */
	const char           **access_logs;     /* [0] is access_log; then the servers' own files */
	size_t                 access_log_count;

	/* TLS, for every server (tls/tls_context.c) */
	bool                   tls;             /* a listen address has the tls flag */
	unsigned               tls_https_port;  /* the first TLS listener's port, for redirect_https */
	bool                   tls_ktls;
	const char            *tls_ticket_key_file;
	const char            *tls_ticket_key_origin;   /* file:line of the directive */
	int                    tls_ticket_key_line;
	unsigned char          tls_ticket_key[80];   /* read from tls_ticket_key_file */
	bool                   tls_ticket_key_set;
	unsigned               tls_session_timeout;

	struct server_module  *modules;         /* every module the locations name, once */
	size_t                 module_count;

	struct error_page     *error_pages;
	size_t                 error_page_count;
};

/*
 * Reads and validates path, loads everything the server would load at
 * start (modules, the mime types file, module files such as roots and
 * secrets), runs server_init and configure hooks.  Every problem is
 * reported as "file:line: message" on stderr (and in the error log when
 * log_errors is set).  NULL on failure.
 */
struct httpd_config *config_load(const char *path, bool log_errors);
/* Runs module release and server_exit hooks and frees everything. */
void config_free(struct httpd_config *config);

/* The operator's page for status in server (or at the top level), or NULL for the built-in one. */
const struct error_page *config_error_page(const struct httpd_config *config,
                                           const struct httpd_server *server, int status);
/* "512", "16k", "1m", "2g" (case-insensitive); -1 if malformed or too large. */
int config_size_parse(const char *text, uint64_t *out);

/*
 * The tables of directives, in the order their rows are stored: the
 * daemon hands them over once, before the first config_load (the core's
 * own table is always first).
 */
void config_tables_set(const struct directive_table *const *tables, size_t count);

/* A configuration problem, as "file:line: message" on stderr (and in the error log while loading). */
void config_report(const char *file, int line, const char *msg);
void config_error(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Hands ptr to the configuration: release(ptr) runs when it is freed, in
 * the reverse order of giving.  -1 out of memory (ptr is released then).
 */
int config_own(struct httpd_config *config, void *ptr, void (*release)(void *));
/* calloc that config_own's the block; NULL out of memory. */
void *config_calloc(struct httpd_config *config, size_t n, size_t size);

/* Where sec (a block of this configuration) set name, else the block itself. */
void config_directive_origin(const struct httpd_config *config, const struct httpd_conf *sec, const char *name,
                             const char **file, int *line);

/* httpd -t: modules are told (httpd_config_checking) to leave the system as it is. */
void config_checking_set(bool only_checking);

#endif
