#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "auth_basic.h"
#include "limit.h"
#include "log.h"
#include "tls.h"

/*
 * Errors are reported through one function so that every message has the
 * same "file:line: message" shape.  The current config_source maps libconfuse
 * line numbers back to files.
 */
static const struct config_source *current_src;
static bool current_log_errors;
static unsigned error_count;

static void report(const char *file, int line, const char *msg)
{
	error_count++;
	if (line > 0)
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
	if (current_log_errors)
		httpd_log(HTTPD_LOG_ERR, "%s:%d: %s", file, line, msg);
}

static void reportf(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reportf(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(file, line, msg);
}

static void confuse_error(cfg_t *cfg, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void confuse_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[1024];
	const char *file;
	int line;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	config_source_origin(current_src, cfg->line, &file, &line);
	report(file, line, msg);
}

static void cfg_origin(cfg_t *cfg, const char **file, int *line)
{
	config_source_origin(current_src, cfg->line, file, line);
}

int config_size_parse(const char *text, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = text;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': mult = 1024; p++; break;
	case 'm': case 'M': mult = 1024 * 1024; p++; break;
	case 'g': case 'G': mult = 1024 * 1024 * 1024; p++; break;
	default: return -1;
	}
	if (*p != '\0' || v > (uint64_t)INT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* --- validation callbacks: run while parsing, so cfg->line is exact ----- */

/* Output lines of options whose files are checked after parsing. */
static int listen_line;
static int real_ip_header_line;
static int proxy_protocol_from_line;
static int mime_line;
static int temp_dir_line;

static int validate_listen(cfg_t *cfg, cfg_opt_t *opt)
{
	char err[256];
	struct listen_spec spec;

	listen_line = cfg->line;
	if (cfg_opt_size(opt) == 0) {
		cfg_error(cfg, "listen needs at least one address");
		return -1;
	}
	if (cfg_opt_size(opt) > HTTPD_LISTEN_MAX) {
		cfg_error(cfg, "listen: at most %d addresses", HTTPD_LISTEN_MAX);
		return -1;
	}
	for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
		if (listen_spec_parse(cfg_opt_getnstr(opt, i), &spec, err, sizeof(err)) < 0) {
			cfg_error(cfg, "listen: %s", err);
			return -1;
		}
	}
	return 0;
}

static int validate_real_ip_from(cfg_t *cfg, cfg_opt_t *opt)
{
	struct cidr c;

	if (strcmp(opt->name, "proxy_protocol_from") == 0)
		proxy_protocol_from_line = cfg->line;
	for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
		if (cidr_parse(cfg_opt_getnstr(opt, i), &c) < 0) {
			cfg_error(cfg, "%s: \"%s\" is not an address or CIDR block", opt->name, cfg_opt_getnstr(opt, i));
			return -1;
		}
	}
	return 0;
}

/* access = {"allow 10.0.0.0/8", "deny all"}: each rule checked at its own line. */
static int validate_access(cfg_t *cfg, cfg_opt_t *opt)
{
	struct access_rule rule;

	for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
		if (access_rule_parse(cfg_opt_getnstr(opt, i), &rule) < 0) {
			cfg_error(cfg, "access: \"%s\" is not a rule: \"allow\" or \"deny\", then an address, a CIDR "
			          "block or \"all\"", cfg_opt_getnstr(opt, i));
			return -1;
		}
	}
	return 0;
}

static int validate_real_ip_header(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	real_ip_header_line = cfg->line;
	if (strcasecmp(v, "X-Forwarded-For") == 0 || strcasecmp(v, "Forwarded") == 0 ||
	    strcasecmp(v, "proxy_protocol") == 0)
		return 0;
	cfg_error(cfg, "real_ip_header must be \"X-Forwarded-For\", \"Forwarded\" or \"proxy_protocol\", "
	          "not \"%s\"", v);
	return -1;
}

static int access_log_format_line;

/*
 * Lines of directives checked after parsing, by section: libconfuse keeps
 * no line per option, and a certificate that does not match its key must
 * still be reported at its tls_certificate_key line.
 */
struct directive_line {
	const cfg_t *sec;
	const char  *name;
	int          line;
};
static struct directive_line *directive_lines;
static size_t directive_line_count;

static void directive_line_note(const cfg_t *sec, const char *name)
{
	struct directive_line *grown = realloc(directive_lines, (directive_line_count + 1) * sizeof(*grown));

	if (grown == NULL)
		return;   /* the message then says line 0: worse, not wrong */
	directive_lines = grown;
	directive_lines[directive_line_count++] = (struct directive_line){ sec, name, sec->line };
}

static int directive_line(const cfg_t *sec, const char *name)
{
	for (size_t i = directive_line_count; i > 0; i--)
		if (directive_lines[i - 1].sec == sec && strcmp(directive_lines[i - 1].name, name) == 0)
			return directive_lines[i - 1].line;
	return 0;
}

/* A private key must be the server's alone: refused when group or others may read or replace it. */
static int validate_tls_key(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *path = cfg_opt_getnstr(opt, 0);
	struct stat st;

	directive_line_note(cfg, "tls_certificate_key");
	if (path == NULL || path[0] != '/') {
		cfg_error(cfg, "tls_certificate_key must be an absolute path");
		return -1;
	}
	if (stat(path, &st) < 0) {
		cfg_error(cfg, "tls_certificate_key: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		cfg_error(cfg, "tls_certificate_key: %s is %s by %s (mode %04o); a private key must be "
		          "readable by its owner only (chmod 600)", path,
		          (st.st_mode & (S_IRGRP | S_IROTH)) ? "readable" : "writable",
		          (st.st_mode & S_IRWXO) ? "others" : "its group", (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

static int validate_tls_file(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *path = cfg_opt_getnstr(opt, 0);

	directive_line_note(cfg, cfg_opt_name(opt));
	if (path == NULL || path[0] != '/') {
		cfg_error(cfg, "%s must be an absolute path", cfg_opt_name(opt));
		return -1;
	}
	if (access(path, R_OK) < 0) {
		cfg_error(cfg, "%s: cannot read %s: %s", cfg_opt_name(opt), path, strerror(errno));
		return -1;
	}
	return 0;
}

/* "TLSv1.2 TLSv1.3": the versions allowed, which must follow one another. */
static int tls_protocols_parse(const char *text, int *min, int *max)
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

static int validate_tls_protocols(cfg_t *cfg, cfg_opt_t *opt)
{
	int min, max, rc = tls_protocols_parse(cfg_opt_getnstr(opt, 0), &min, &max);

	if (rc == -1) {
		cfg_error(cfg, "tls_protocols: \"%s\" is not a list of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3",
		          cfg_opt_getnstr(opt, 0));
		return -1;
	}
	if (rc == -2) {
		cfg_error(cfg, "tls_protocols: \"%s\" leaves a gap; name consecutive versions",
		          cfg_opt_getnstr(opt, 0));
		return -1;
	}
	return 0;
}

static int validate_tls_verify(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	if (strcmp(v, "off") == 0 || strcmp(v, "optional") == 0 || strcmp(v, "required") == 0)
		return 0;
	cfg_error(cfg, "tls_verify_client must be \"off\", \"optional\" or \"required\", not \"%s\"", v);
	return -1;
}

static int validate_hsts(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);

	if (v < 0 || v > 100000000) {
		cfg_error(cfg, "hsts must be a max-age in seconds from 0 (off) to 100000000, not %ld", v);
		return -1;
	}
	return 0;
}

/* Server names: DNS names, lower case when compared; a wildcard only as a leading "*." label. */
static bool server_name_ok(const char *name)
{
	size_t len = strlen(name);
	const char *p = name;

	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	return len > 0 && len <= 253 && *p != '\0' && *p != '.' && strstr(p, "..") == NULL &&
	       p[strlen(p) - 1] != '.' &&
	       strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == strlen(p);
}

#define SERVER_NAME_RULE "letters, digits, '-' and '.'; a wildcard only as \"*.example.com\""

static int validate_aliases(cfg_t *cfg, cfg_opt_t *opt)
{
	for (unsigned i = 0; i < cfg_opt_size(opt); i++)
		if (!server_name_ok(cfg_opt_getnstr(opt, i))) {
			cfg_error(cfg, "alias \"%s\" is not a host name (" SERVER_NAME_RULE ")", cfg_opt_getnstr(opt, i));
			return -1;
		}
	return 0;
}


static const char *const log_levels[] = { "error", "warn", "notice", "info", "debug" };

static int validate_log_level(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcmp(v, log_levels[i]) == 0)
			return 0;
	cfg_error(cfg, "error_log_level must be \"error\", \"warn\", \"notice\", \"info\" or \"debug\", not \"%s\"", v);
	return -1;
}

static int validate_escape(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	if (strcmp(v, "default") == 0 || strcmp(v, "json") == 0)
		return 0;
	cfg_error(cfg, "escape must be \"default\" or \"json\", not \"%s\"", v);
	return -1;
}

static int validate_log_format(cfg_t *cfg, cfg_opt_t *opt)
{
	struct log_format f;
	char err[256];

	if (log_format_compile(cfg_opt_getnstr(opt, 0), LOG_ESCAPE_DEFAULT, &f, err, sizeof(err)) < 0) {
		cfg_error(cfg, "%s", err);
		return -1;
	}
	log_format_free(&f);
	return 0;
}

static int validate_access_log_format(cfg_t *cfg, cfg_opt_t *opt)
{
	(void)opt;
	access_log_format_line = cfg->line;
	return 0;
}

/* access_log_format: a log_format section of that name, else a built-in one. */
static int access_format_read(struct httpd_config *config)
{
	const char *name = cfg_getstr(config->cfg, "access_log_format");
	const char *text = NULL, *file;
	enum log_escape escape = LOG_ESCAPE_DEFAULT;
	char err[256];
	int line;

	for (unsigned i = 0; i < cfg_size(config->cfg, "log_format"); i++) {
		cfg_t *sec = cfg_getnsec(config->cfg, "log_format", i);

		if (log_format_builtin(cfg_title(sec), &escape) != NULL) {
			config_source_origin(&config->src, sec->line, &file, &line);
			reportf(file, line, "log_format \"%s\": that name is a built-in format", cfg_title(sec));
			return -1;
		}
		if (cfg_getstr(sec, "format") == NULL) {
			config_source_origin(&config->src, sec->line, &file, &line);
			reportf(file, line, "log_format \"%s\" needs a format", cfg_title(sec));
			return -1;
		}
		if (strcmp(cfg_title(sec), name) == 0) {
			text = cfg_getstr(sec, "format");
			escape = strcmp(cfg_getstr(sec, "escape"), "json") == 0 ? LOG_ESCAPE_JSON : LOG_ESCAPE_DEFAULT;
		}
	}
	if (text == NULL && (text = log_format_builtin(name, &escape)) == NULL) {
		config_source_origin(&config->src, access_log_format_line, &file, &line);
		reportf(file, line, "access_log_format: no log_format \"%s\" (built in: combined, common, json)", name);
		return -1;
	}
	if (log_format_compile(text, escape, &config->access_format, err, sizeof(err)) < 0) {
		config_source_origin(&config->src, 0, &file, &line);
		reportf(file, 0, "%s", err);
		return -1;
	}
	return 0;
}

static int validate_workers(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);
	char *end;
	long n;

	if (strcmp(v, "auto") == 0)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || end == v || n < 1 || n > 1024) {
		cfg_error(cfg, "workers must be \"auto\" or a number from 1 to 1024, not \"%s\"", v);
		return -1;
	}
	return 0;
}

static int validate_size(cfg_t *cfg, cfg_opt_t *opt)
{
	uint64_t v;

	if (config_size_parse(cfg_opt_getnstr(opt, 0), &v) < 0) {
		cfg_error(cfg, "%s: \"%s\" is not a size (a number, optionally with k, m or g)",
		          cfg_opt_name(opt), cfg_opt_getnstr(opt, 0));
		return -1;
	}
	return 0;
}

static int validate_range(cfg_t *cfg, cfg_opt_t *opt, long min)
{
	long v = cfg_opt_getnint(opt, 0);

	if (v < min || v > 1000000) {
		cfg_error(cfg, "%s must be from %ld to 1000000, not %ld", cfg_opt_name(opt), min, v);
		return -1;
	}
	return 0;
}

static int validate_positive(cfg_t *cfg, cfg_opt_t *opt)
{
	return validate_range(cfg, opt, 1);
}

/* 0 turns the feature off (file_cache_valid, file_cache_entries). */
static int validate_not_negative(cfg_t *cfg, cfg_opt_t *opt)
{
	return validate_range(cfg, opt, 0);
}

static int validate_path(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	if (strcmp(cfg_opt_name(opt), "mime_types") == 0)
		mime_line = cfg->line;
	else if (strcmp(cfg_opt_name(opt), "temp_dir") == 0)
		temp_dir_line = cfg->line;

	if (v == NULL || v[0] == '\0') {
		cfg_error(cfg, "%s must not be empty", cfg_opt_name(opt));
		return -1;
	}
	return 0;
}

/*
 * error_page(CODE, "PATH"): the page is read once, at load time, so a
 * missing file is a configuration error and serving it costs no I/O.
 * libconfuse gives function options no user pointer, hence the static.
 */
#define ERROR_PAGE_MAX (64 * 1024)

static struct httpd_config *collecting;

static int error_page_read(cfg_t *cfg, const char *path, struct error_page *page)
{
	char *body = malloc(ERROR_PAGE_MAX + 1);
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && body != NULL) {
		n = read(fd, body, ERROR_PAGE_MAX + 1);
		if (n > ERROR_PAGE_MAX) {
			cfg_error(cfg, "error_page: %s is larger than %d bytes", path, ERROR_PAGE_MAX);
			n = -2;
		}
	}
	if (n == -1)
		cfg_error(cfg, "error_page: cannot read %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (n < 0) {
		free(body);
		return -1;
	}
	page->body = body;
	page->len = (size_t)n;
	return 0;
}

static const char *error_page_type(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (dot != NULL && (strcmp(dot, ".html") == 0 || strcmp(dot, ".htm") == 0))
		return "text/html; charset=utf-8";
	if (dot != NULL && strcmp(dot, ".json") == 0)
		return "application/json";
	return "text/plain; charset=utf-8";
}

static int error_page_func(cfg_t *cfg, cfg_opt_t *opt, int argc, const char **argv)
{
	struct error_page page, *grown;
	char *end;
	long status;

	(void)opt;
	if (argc != 2) {
		cfg_error(cfg, "error_page needs a status and a file: error_page(404, \"/srv/404.html\")");
		return -1;
	}
	errno = 0;
	status = strtol(argv[0], &end, 10);
	if (errno != 0 || *end != '\0' || status < 400 || status > 599) {
		cfg_error(cfg, "error_page: \"%s\" is not an error status (400-599)", argv[0]);
		return -1;
	}
	if (argv[1][0] != '/') {
		cfg_error(cfg, "error_page: \"%s\" must be an absolute path", argv[1]);
		return -1;
	}
	if (collecting == NULL)
		return 0;   /* the first pass only learns module names */
	memset(&page, 0, sizeof(page));
	page.owner = cfg;
	page.status = (int)status;
	page.content_type = error_page_type(argv[1]);
	if (error_page_read(cfg, argv[1], &page) < 0)
		return -1;
	grown = realloc(collecting->error_pages, (collecting->error_page_count + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(page.body);
		return -1;
	}
	collecting->error_pages = grown;
	collecting->error_pages[collecting->error_page_count++] = page;
	return 0;
}

const struct error_page *config_error_page(const struct httpd_config *config,
                                           const struct httpd_server *server, int status)
{
	/* The server's own pages, then the top level's; later lines win, as a later directive should. */
	for (int pass = 0; pass < 2; pass++) {
		const void *owner = pass == 0 && server != NULL ? server->owner : config->cfg;

		for (size_t i = config->error_page_count; i > 0; i--)
			if (config->error_pages[i - 1].status == status && config->error_pages[i - 1].owner == owner)
				return &config->error_pages[i - 1];
	}
	return NULL;
}

/* --- schema ------------------------------------------------------------- */

static cfg_opt_t limit_req_zone_opts[] = {
	CFG_STR("key", NULL, CFGF_NODEFAULT),
	CFG_STR("rate", NULL, CFGF_NODEFAULT),
	CFG_STR("size", "10m", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t limit_conn_zone_opts[] = {
	CFG_STR("key", NULL, CFGF_NODEFAULT),
	CFG_STR("size", "10m", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t limit_req_opts[] = {
	CFG_INT("burst", 0, CFGF_NONE),
	CFG_BOOL("nodelay", cfg_false, CFGF_NONE),
	CFG_INT("delay", 0, CFGF_NONE),
	CFG_END()
};

static cfg_opt_t limit_conn_opts[] = {
	CFG_INT("max", 0, CFGF_NODEFAULT),
	CFG_END()
};

/* Who may come in: the same in a location, a server block and the top level. */
#define GATE_OPTS \
	CFG_STR_LIST("access", "{}", CFGF_NONE), \
	CFG_STR("auth_basic", NULL, CFGF_NODEFAULT), \
	CFG_STR("auth_basic_user_file", NULL, CFGF_NODEFAULT), \
	CFG_SEC("limit_req", limit_req_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES), \
	CFG_SEC("limit_conn", limit_conn_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES), \
	CFG_INT("limit_req_status", 429, CFGF_NONE), \
	CFG_INT("limit_conn_status", 429, CFGF_NONE), \
	CFG_BOOL("limit_req_dry_run", cfg_false, CFGF_NONE)

static const cfg_opt_t core_location_opts[] = {
	CFG_STR("handler", NULL, CFGF_NODEFAULT),
	CFG_STR_LIST("check", "{}", CFGF_NONE),
	CFG_STR("max_body_size", NULL, CFGF_NODEFAULT),
	CFG_BOOL("gzip", cfg_false, CFGF_NONE),
	CFG_INT("gzip_level", 6, CFGF_NONE),
	CFG_STR("gzip_min_length", "1024", CFGF_NONE),
	CFG_STR("access_log", "on", CFGF_NONE),
	CFG_INT("access_log_min_status", 0, CFGF_NONE),
	GATE_OPTS,
	CFG_END()
};

static cfg_opt_t log_format_opts[] = {
	CFG_STR("format", NULL, CFGF_NODEFAULT),
	CFG_STR("escape", "default", CFGF_NONE),
	CFG_END()
};

#define CORE_LOCATION_OPTS (sizeof(core_location_opts) / sizeof(core_location_opts[0]) - 1)

/* TLS and vhost settings a server block may set; the top level's are every server's defaults. */
#define SERVER_TLS_OPTS \
	CFG_STR("tls_certificate", NULL, CFGF_NODEFAULT), \
	CFG_STR("tls_certificate_key", NULL, CFGF_NODEFAULT), \
	CFG_STR("tls_protocols", NULL, CFGF_NODEFAULT), \
	CFG_STR("tls_ciphers", NULL, CFGF_NODEFAULT), \
	CFG_STR("tls_client_ca", NULL, CFGF_NODEFAULT), \
	CFG_STR("tls_verify_client", NULL, CFGF_NODEFAULT), \
	CFG_BOOL("redirect_https", cfg_false, CFGF_NODEFAULT), \
	CFG_INT("hsts", 0, CFGF_NODEFAULT), \
	CFG_BOOL("http2", cfg_true, CFGF_NODEFAULT)

static cfg_opt_t *root_schema(cfg_opt_t *location_opts, const cfg_opt_t *module_opts,
                              cfg_opt_t **server_schema)
{
	cfg_opt_t opts[] = {
		CFG_STR_LIST("listen", "{0.0.0.0:80}", CFGF_NONE),
		CFG_STR("workers", "auto", CFGF_NONE),
		CFG_STR("user", "www-data", CFGF_NONE),
		CFG_STR("pid_file", HTTPD_RUNSTATEDIR "/httpd.pid", CFGF_NONE),
		CFG_STR("error_log", HTTPD_LOGDIR "/error.log", CFGF_NONE),
		CFG_STR("access_log", HTTPD_LOGDIR "/access.log", CFGF_NONE),
		CFG_STR("module_dir", HTTPD_MODULEDIR, CFGF_NONE),
		CFG_STR("mime_types", "/etc/mime.types", CFGF_NONE),
		CFG_STR("temp_dir", "/var/tmp", CFGF_NONE),
		CFG_STR("body_buffer_size", "16k", CFGF_NONE),
		CFG_INT("handler_timeout", 60, CFGF_NONE),
		CFG_INT("worker_threads", 4, CFGF_NONE),
		CFG_STR("error_log_level", "notice", CFGF_NONE),
		CFG_STR("access_log_format", "combined", CFGF_NONE),
		CFG_SEC("log_format", log_format_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_STR("access_log_buffer", "64k", CFGF_NONE),
		CFG_INT("access_log_flush", 1, CFGF_NONE),
		CFG_INT("file_cache_valid", 1, CFGF_NONE),
		CFG_INT("file_cache_entries", 1024, CFGF_NONE),
		CFG_STR("file_cache_size", "32m", CFGF_NONE),
		CFG_BOOL("file_cache_errors", cfg_false, CFGF_NONE),
		CFG_BOOL("server_tokens", cfg_true, CFGF_NONE),
		CFG_BOOL("reuseport", cfg_false, CFGF_NONE),
		CFG_INT("max_request_line", 8192, CFGF_NONE),
		CFG_STR("max_header_size", "16k", CFGF_NONE),
		CFG_INT("max_headers", 100, CFGF_NONE),
		CFG_STR("max_body_size", "1m", CFGF_NONE),
		CFG_INT("header_timeout", 10, CFGF_NONE),
		CFG_INT("body_timeout", 30, CFGF_NONE),
		CFG_INT("keepalive_timeout", 15, CFGF_NONE),
		CFG_INT("send_timeout", 30, CFGF_NONE),
		CFG_INT("shutdown_timeout", 10, CFGF_NONE),
		CFG_INT("shutdown_delay", 0, CFGF_NONE),
		CFG_INT("drain_timeout", 300, CFGF_NONE),
		CFG_INT("upgrade_timeout", 30, CFGF_NONE),
		CFG_STR_LIST("proxy_protocol_from", "{}", CFGF_NONE),
		CFG_INT("proxy_protocol_timeout", 5, CFGF_NONE),
		CFG_STR_LIST("real_ip_from", "{}", CFGF_NONE),
		CFG_STR("real_ip_header", "X-Forwarded-For", CFGF_NONE),
		GATE_OPTS,
		CFG_SEC("limit_req_zone", limit_req_zone_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_SEC("limit_conn_zone", limit_conn_zone_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_INT("keepalive_requests", 1000, CFGF_NONE),
		CFG_INT("http2_max_concurrent_streams", 128, CFGF_NONE),
		CFG_INT("worker_connections", 4096, CFGF_NONE),
		CFG_FUNC("error_page", error_page_func),
		CFG_SEC("location", location_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		SERVER_TLS_OPTS,
		CFG_BOOL("tls_ktls", cfg_false, CFGF_NONE),
		CFG_STR("tls_ticket_key_file", NULL, CFGF_NODEFAULT),
		CFG_INT("tls_session_timeout", 300, CFGF_NONE),
		CFG_SEC("server", NULL, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_END()
	};
	cfg_opt_t server_template[] = {
		CFG_STR_LIST("aliases", "{}", CFGF_NONE),
		CFG_BOOL("default_server", cfg_false, CFGF_NONE),
		CFG_STR("access_log", NULL, CFGF_NODEFAULT),
		GATE_OPTS,
		CFG_FUNC("error_page", error_page_func),
		CFG_SEC("location", location_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		SERVER_TLS_OPTS,
		CFG_END()
	};
	size_t count = sizeof(opts) / sizeof(opts[0]) - 1;
	cfg_opt_t *copy = malloc(sizeof(opts));
	const char *clash = NULL;

	*server_schema = malloc(sizeof(server_template));
	if (copy == NULL || *server_schema == NULL) {
		free(copy);
		return NULL;
	}
	memcpy(*server_schema, server_template, sizeof(server_template));
	for (size_t i = 0; i < count; i++)
		if (strcmp(opts[i].name, "server") == 0)
			opts[i].subopts = *server_schema;
	memcpy(copy, opts, sizeof(opts));
	/* Module server options join the top level; a clash with a core directive is refused. */
	if (module_opts != NULL && options_union(&copy, &count, module_opts, &clash) != 0) {
		if (clash != NULL) {
			const char *file;
			int line;

			config_source_origin(current_src, 0, &file, &line);
			reportf(file, 0, "a module's server option \"%s\" clashes with another option", clash);
		}
		free(copy);
		return NULL;
	}
	return copy;
}

static void validators_set(cfg_t *cfg)
{
	static const char *const positive[] = {
		"max_request_line", "max_headers", "header_timeout", "body_timeout",
		"keepalive_timeout", "send_timeout", "shutdown_timeout", "keepalive_requests",
		"worker_connections", "handler_timeout", "worker_threads", "access_log_flush",
		"drain_timeout", "proxy_protocol_timeout", "upgrade_timeout", "tls_session_timeout",
		"http2_max_concurrent_streams",
	};

	/* Server options that may also stand at the top level: validated in both places. */
	static const struct { const char *name; cfg_validate_callback_t fn; } server_checked[] = {
		{ "tls_certificate_key", validate_tls_key }, { "tls_certificate", validate_tls_file },
		{ "tls_client_ca", validate_tls_file }, { "tls_protocols", validate_tls_protocols },
		{ "tls_verify_client", validate_tls_verify }, { "hsts", validate_hsts },
	};
	char name[64];

	for (size_t i = 0; i < sizeof(server_checked) / sizeof(server_checked[0]); i++) {
		cfg_set_validate_func(cfg, server_checked[i].name, server_checked[i].fn);
		snprintf(name, sizeof(name), "server|%s", server_checked[i].name);
		cfg_set_validate_func(cfg, name, server_checked[i].fn);
	}
	cfg_set_validate_func(cfg, "server|aliases", validate_aliases);
	cfg_set_validate_func(cfg, "tls_ticket_key_file", validate_tls_file);
	cfg_set_validate_func(cfg, "listen", validate_listen);
	cfg_set_validate_func(cfg, "workers", validate_workers);
	cfg_set_validate_func(cfg, "real_ip_from", validate_real_ip_from);
	cfg_set_validate_func(cfg, "proxy_protocol_from", validate_real_ip_from);
	cfg_set_validate_func(cfg, "real_ip_header", validate_real_ip_header);
	cfg_set_validate_func(cfg, "access", validate_access);
	cfg_set_validate_func(cfg, "location|access", validate_access);
	cfg_set_validate_func(cfg, "server|access", validate_access);
	cfg_set_validate_func(cfg, "server|location|access", validate_access);
	cfg_set_validate_func(cfg, "max_header_size", validate_size);
	cfg_set_validate_func(cfg, "max_body_size", validate_size);
	cfg_set_validate_func(cfg, "body_buffer_size", validate_size);
	cfg_set_validate_func(cfg, "file_cache_size", validate_size);
	cfg_set_validate_func(cfg, "access_log_buffer", validate_size);
	cfg_set_validate_func(cfg, "access_log_format", validate_access_log_format);
	cfg_set_validate_func(cfg, "error_log_level", validate_log_level);
	cfg_set_validate_func(cfg, "log_format|format", validate_log_format);
	cfg_set_validate_func(cfg, "log_format|escape", validate_escape);
	cfg_set_validate_func(cfg, "file_cache_valid", validate_not_negative);
	cfg_set_validate_func(cfg, "shutdown_delay", validate_not_negative);
	cfg_set_validate_func(cfg, "file_cache_entries", validate_not_negative);
	cfg_set_validate_func(cfg, "temp_dir", validate_path);
	cfg_set_validate_func(cfg, "pid_file", validate_path);
	cfg_set_validate_func(cfg, "error_log", validate_path);
	cfg_set_validate_func(cfg, "module_dir", validate_path);
	cfg_set_validate_func(cfg, "mime_types", validate_path);
	for (size_t i = 0; i < sizeof(positive) / sizeof(positive[0]); i++)
		cfg_set_validate_func(cfg, positive[i], validate_positive);
}

static cfg_t *parse_text(cfg_opt_t *schema, const struct config_source *src, cfg_flag_t flags)
{
	cfg_t *cfg = cfg_init(schema, flags);

	if (cfg == NULL)
		return NULL;
	cfg_set_error_function(cfg, confuse_error);
	validators_set(cfg);
	if (cfg_parse_buf(cfg, src->text) != CFG_SUCCESS) {
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Where the index-th location keyword of the text is. */
static void location_origin(const struct httpd_config *config, size_t index, const char **file,
                            int *line)
{
	int out_line = index < config->src.location_count ? config->src.location_lines[index] : 0;

	config_source_origin(&config->src, out_line, file, line);
}

/* Where a parsed block's title is (libconfuse remembers where it ended). */
static void block_origin(const struct httpd_config *config, const int *lines, size_t count, const cfg_t *sec,
                         const char **file, int *line)
{
	config_source_origin(&config->src, config_source_title_line(lines, count, sec->line), file, line);
}

/* Module options are unioned into the location section; a clash of types is an error. */
static int schema_add_module(struct httpd_config *config, cfg_opt_t **opts, size_t *count,
                             const struct httpd_option *options, const struct module *m,
                             const char *file, int line)
{
	cfg_opt_t *converted;
	const char *clash = NULL;
	int rc;

	if (options == NULL)
		return 0;
	converted = options_convert(options, &config->arena);
	if (converted == NULL) {
		reportf(file, line, "module \"%s\": its option table is malformed", m->name);
		return -1;
	}
	rc = options_union(opts, count, converted, &clash);
	if (rc == -2)
		reportf(file, line, "module \"%s\" option \"%s\" clashes with another module's", m->name, clash);
	return rc == 0 ? 0 : -1;
}

/* Remembers m as used by this configuration (once), for server_init and worker hooks. */
static int server_module_add(struct httpd_config *config, const struct module *m)
{
	struct server_module *grown;

	for (size_t i = 0; i < config->module_count; i++)
		if (config->modules[i].mod == m)
			return 0;
	grown = realloc(config->modules, (config->module_count + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	config->modules = grown;
	config->modules[config->module_count++] = (struct server_module){ .mod = m };
	return 0;
}

/*
 * Pass 1 reads the text with a small scanner of its own, not libconfuse:
 * module options (sections included) are unknown until the modules are
 * loaded, and libconfuse cannot skip unknown sections.  It learns
 * module_dir and each location's handler and checks, in order; pass 2
 * reports any syntax error exactly.
 */
struct scan {
	const char *p;
	char        tok[4096];
	bool        quoted;
};

/* The next token: a quoted string (unescaped), a word, or one punctuation byte.  false at the end. */
static bool scan_next(struct scan *sc)
{
	size_t n = 0;

	while (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r')
		sc->p++;
	if (*sc->p == '\0')
		return false;
	sc->quoted = *sc->p == '"';
	if (sc->quoted) {
		for (sc->p++; *sc->p != '\0' && *sc->p != '"'; sc->p++) {
			if (*sc->p == '\\' && sc->p[1] != '\0')
				sc->p++;
			if (n + 1 < sizeof(sc->tok))
				sc->tok[n++] = *sc->p;
		}
		if (*sc->p == '"')
			sc->p++;
	} else if (strchr("{}=(),+", *sc->p) != NULL) {
		sc->tok[n++] = *sc->p++;
	} else {
		while (*sc->p != '\0' && strchr(" \t\r\n{}=(),+\"", *sc->p) == NULL) {
			if (n + 1 < sizeof(sc->tok))
				sc->tok[n++] = *sc->p;
			sc->p++;
		}
	}
	sc->tok[n] = '\0';
	return true;
}

static bool scan_is(const struct scan *sc, const char *word)
{
	return !sc->quoted && strcmp(sc->tok, word) == 0;
}

struct module_ref {
	size_t location;   /* index among the location blocks */
	char  *name;
};

/* Collects module_dir and the (location, module) pairs the text names. */
static int modules_scan(const char *text, char **dir, struct module_ref **refs, size_t *count)
{
	struct scan sc = { .p = text };
	int depth = 0, location_depth = 0;   /* depth of the location keyword: 0, or 1 in a server */
	size_t locations = 0;
	bool in_location = false, in_server = false;
	char key[64] = "";

	while (scan_next(&sc)) {
		if (scan_is(&sc, "{")) {
			depth++;
			continue;
		}
		if (scan_is(&sc, "}")) {
			if (--depth == location_depth)
				in_location = false;
			if (depth == 0)
				in_server = false;
			key[0] = '\0';
			continue;
		}
		if (depth == 0 && scan_is(&sc, "server")) {
			in_server = true;
			continue;
		}
		if ((depth == 0 || (depth == 1 && in_server)) && !in_location && scan_is(&sc, "location")) {
			in_location = true;
			location_depth = depth;
			locations++;
			continue;
		}
		if (scan_is(&sc, "=") || scan_is(&sc, "+") || scan_is(&sc, ","))
			continue;
		if (!sc.quoted) {
			snprintf(key, sizeof(key), "%s", sc.tok);
			continue;
		}
		/* A quoted value: the key before it says what it is. */
		if (depth == 0 && strcmp(key, "module_dir") == 0) {
			free(*dir);
			if ((*dir = strdup(sc.tok)) == NULL)
				return -1;
		} else if (in_location && (depth == location_depth + 1 || depth == location_depth + 2) &&
		           (strcmp(key, "handler") == 0 || strcmp(key, "check") == 0)) {
			struct module_ref *grown = realloc(*refs, (*count + 1) * sizeof(*grown));

			if (grown == NULL)
				return -1;
			*refs = grown;
			grown[*count].location = locations - 1;
			if ((grown[*count].name = strdup(sc.tok)) == NULL)
				return -1;
			(*count)++;
		}
		if (strcmp(key, "check") != 0)
			key[0] = '\0';   /* a list keeps its key until its closing brace */
	}
	return 0;
}

/* Pass 1: learn which modules the locations name, then load them and merge their options. */
static int modules_load(struct httpd_config *config, cfg_opt_t **loc_opts, size_t *loc_count,
                        cfg_opt_t **srv_opts, size_t *srv_count)
{
	struct module_ref *refs = NULL;
	size_t count = 0;
	char *dir = NULL;
	int rc = modules_scan(config->src.text, &dir, &refs, &count);

	for (size_t i = 0; rc == 0 && i < count; i++) {
		const struct module *m;
		const char *file;
		int line;
		char err[1024];

		location_origin(config, refs[i].location, &file, &line);
		m = module_load(dir != NULL ? dir : HTTPD_MODULEDIR, refs[i].name, err, sizeof(err));
		if (m == NULL) {
			report(file, line, err);
			rc = -1;
			continue;
		}
		if (server_module_add(config, m) < 0 ||
		    schema_add_module(config, loc_opts, loc_count, m->api.options, m, file, line) < 0 ||
		    schema_add_module(config, srv_opts, srv_count, m->api.server_options, m, file, line) < 0)
			rc = -1;
	}
	for (size_t i = 0; i < count; i++)
		free(refs[i].name);
	free(refs);
	free(dir);
	return rc;
}

static bool option_belongs(const char *name, const struct module *m)
{
	if (m == NULL || m->api.options == NULL)
		return false;
	for (const struct httpd_option *o = m->api.options; o->type != HTTPD_OPT_END; o++)
		if (strcmp(o->name, name) == 0)
			return true;
	return false;
}

static int location_module_configure(struct httpd_location *loc, struct location_module *lm,
                                     cfg_t *sec)
{
	char err[1024] = "";

	if (lm->mod->api.configure == NULL)
		return 0;
	if (lm->mod->api.configure(loc, (const struct httpd_conf *)sec, &lm->data, err, sizeof(err)) != 0) {
		reportf(loc->file, loc->line, "location \"%s\": %s", loc->prefix,
		        err[0] ? err : "module configuration failed");
		return -1;
	}
	return 0;
}

static struct limit_zone *zone_find(const struct httpd_config *config, const char *name, enum limit_kind kind)
{
	for (size_t i = 0; i < config->limit_zone_count; i++)
		if (strcmp(limit_zone_name(config->limit_zones[i]), name) == 0 &&
		    limit_zone_kind(config->limit_zones[i]) == kind)
			return config->limit_zones[i];
	return NULL;
}

/* limit_req_zone and limit_conn_zone blocks: one shared table each, kept across reloads when unchanged. */
static int zones_read(struct httpd_config *config)
{
	static const char *const kinds[] = { "limit_req_zone", "limit_conn_zone" };
	size_t total = cfg_size(config->cfg, kinds[0]) + cfg_size(config->cfg, kinds[1]);
	int rc = 0;

	config->limit_zones = calloc(total ? total : 1, sizeof(*config->limit_zones));
	if (config->limit_zones == NULL)
		return -1;
	for (int k = 0; k < 2; k++) {
		for (unsigned i = 0; i < cfg_size(config->cfg, kinds[k]); i++) {
			cfg_t *z = cfg_getnsec(config->cfg, kinds[k], i);
			const char *key = cfg_getstr(z, "key"), *rate = k == 0 ? cfg_getstr(z, "rate") : NULL;
			uint64_t size = 0, per_ks = 0;
			struct limit_zone *zone;
			const char *file;
			char err[256];
			int line;

			config_source_origin(&config->src, z->line, &file, &line);
			if (key == NULL || (k == 0 && rate == NULL)) {
				reportf(file, line, "%s \"%s\": needs key%s", kinds[k], cfg_title(z), k == 0 ? " and rate" : "");
				rc = -1;
				continue;
			}
			if (k == 0 && limit_rate_parse(rate, &per_ks) < 0) {
				reportf(file, line, "%s \"%s\": rate \"%s\" is not a rate (\"10r/s\", \"30r/m\")", kinds[k],
				        cfg_title(z), rate);
				rc = -1;
				continue;
			}
			if (config_size_parse(cfg_getstr(z, "size"), &size) < 0) {
				reportf(file, line, "%s \"%s\": size \"%s\" is not a size", kinds[k], cfg_title(z),
				        cfg_getstr(z, "size"));
				rc = -1;
				continue;
			}
			zone = limit_zone_get(cfg_title(z), k == 0 ? LIMIT_REQ : LIMIT_CONN, key, size, per_ks, err,
			                      sizeof(err));
			if (zone == NULL) {
				reportf(file, line, "%s \"%s\": %s", kinds[k], cfg_title(z), err);
				rc = -1;
				continue;
			}
			config->limit_zones[config->limit_zone_count++] = zone;
		}
	}
	return rc;
}

/* The nearest block that sets name: the location, its server block, or the top level. */
static cfg_t *nearest_setting(struct httpd_config *config, const struct httpd_location *loc, cfg_t *sec,
                              const char *name)
{
	cfg_t *server = (cfg_t *)(uintptr_t)loc->server->owner;

	if (option_is_set(cfg_getopt(sec, name)))
		return sec;
	if (server != config->cfg && option_is_set(cfg_getopt(server, name)))
		return server;
	return config->cfg;
}

/* limit_req and limit_conn of the nearest block that sets them; each names a zone of its kind. */
static int location_limits_read(struct httpd_config *config, struct httpd_location *loc, cfg_t *sec)
{
	cfg_t *req_from = nearest_setting(config, loc, sec, "limit_req");
	cfg_t *conn_from = nearest_setting(config, loc, sec, "limit_conn");
	size_t nreq = cfg_size(req_from, "limit_req"), nconn = cfg_size(conn_from, "limit_conn");
	int rc = 0;

	loc->limit_reqs = calloc(nreq ? nreq : 1, sizeof(*loc->limit_reqs));
	loc->limit_conns = calloc(nconn ? nconn : 1, sizeof(*loc->limit_conns));
	if (loc->limit_reqs == NULL || loc->limit_conns == NULL)
		return -1;
	for (size_t i = 0; i < nreq; i++) {
		cfg_t *l = cfg_getnsec(req_from, "limit_req", (unsigned)i);
		struct location_limit_req *lr = &loc->limit_reqs[loc->limit_req_count];
		long burst = cfg_getint(l, "burst"), delay = cfg_getint(l, "delay");
		const char *file;
		int line;

		config_source_origin(&config->src, l->line, &file, &line);
		lr->zone = zone_find(config, cfg_title(l), LIMIT_REQ);
		if (lr->zone == NULL) {
			reportf(file, line, "limit_req \"%s\": no limit_req_zone of that name", cfg_title(l));
			rc = -1;
			continue;
		}
		if (burst < 0 || burst > 1000000 || delay < 0 || delay > burst) {
			reportf(file, line, "limit_req \"%s\": burst must be from 0 to 1000000, delay from 0 to burst",
			        cfg_title(l));
			rc = -1;
			continue;
		}
		lr->burst = (uint64_t)burst;
		lr->delay = cfg_getbool(l, "nodelay") ? (uint64_t)burst : (uint64_t)delay;
		loc->limit_req_count++;
	}
	for (size_t i = 0; i < nconn; i++) {
		cfg_t *l = cfg_getnsec(conn_from, "limit_conn", (unsigned)i);
		struct location_limit_conn *lc = &loc->limit_conns[loc->limit_conn_count];
		const char *file;
		int line;

		config_source_origin(&config->src, l->line, &file, &line);
		lc->zone = zone_find(config, cfg_title(l), LIMIT_CONN);
		if (lc->zone == NULL || cfg_getint(l, "max") < 1 || cfg_getint(l, "max") > 1000000) {
			reportf(file, line, lc->zone == NULL ? "limit_conn \"%s\": no limit_conn_zone of that name"
			        : "limit_conn \"%s\": max must be from 1 to 1000000", cfg_title(l));
			rc = -1;
			continue;
		}
		lc->max = (unsigned)cfg_getint(l, "max");
		loc->limit_conn_count++;
	}
	loc->limit_req_status = (int)cfg_getint(nearest_setting(config, loc, sec, "limit_req_status"), "limit_req_status");
	loc->limit_conn_status = (int)cfg_getint(nearest_setting(config, loc, sec, "limit_conn_status"),
	                                         "limit_conn_status");
	loc->limit_req_dry_run = cfg_getbool(nearest_setting(config, loc, sec, "limit_req_dry_run"),
	                                     "limit_req_dry_run");
	if (loc->limit_req_status < 400 || loc->limit_req_status > 599 || loc->limit_conn_status < 400 ||
	    loc->limit_conn_status > 599) {
		reportf(loc->file, loc->line, "location \"%s\": limit_req_status and limit_conn_status must be from "
		        "400 to 599", loc->prefix);
		rc = -1;
	}
	return rc;
}

/* auth_basic: the realm and the user file of the nearest block that sets them, read now (as root). */
static int location_auth_read(struct httpd_config *config, struct httpd_location *loc, cfg_t *sec)
{
	cfg_t *from = nearest_setting(config, loc, sec, "auth_basic");
	const char *realm = cfg_getstr(from, "auth_basic"), *file;
	char err[512];
	int line;

	if (realm == NULL || strcmp(realm, "off") == 0)
		return 0;
	file = cfg_getstr(nearest_setting(config, loc, sec, "auth_basic_user_file"), "auth_basic_user_file");
	if (file == NULL) {
		reportf(loc->file, loc->line, "location \"%s\": auth_basic needs auth_basic_user_file", loc->prefix);
		return -1;
	}
	for (size_t i = 0; i < config->listen_count; i++) {
		if (!(config->listens[i].flags & LISTEN_TLS)) {
			httpd_log(HTTPD_LOG_WARN, "%s:%d: location \"%s\": auth_basic over the plain-HTTP listener %s "
			          "sends passwords in clear text", loc->file, loc->line, loc->prefix, config->listens[i].text);
			break;
		}
	}
	loc->auth = auth_basic_load(realm, file, err, sizeof(err), &line);
	if (loc->auth == NULL) {
		if (line > 0)
			reportf(loc->file, loc->line, "location \"%s\": auth_basic_user_file %s:%d: %s", loc->prefix, file,
			        line, err);
		else
			reportf(loc->file, loc->line, "location \"%s\": %s", loc->prefix, err);
		return -1;
	}
	return 0;
}

/* The location's access rules, else its server's, else the top level's (the nearest block that sets them). */
static int location_access_read(struct httpd_config *config, struct httpd_location *loc, cfg_t *sec)
{
	cfg_t *from = nearest_setting(config, loc, sec, "access");
	size_t n = cfg_size(from, "access");

	loc->access = calloc(n ? n : 1, sizeof(*loc->access));
	if (loc->access == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (access_rule_parse(cfg_getnstr(from, "access", (unsigned)i), &loc->access[i]) < 0)
			return -1;   /* validated as it was read: not reached */
	loc->access_count = n;
	return 0;
}
static int location_build(struct httpd_config *config, size_t index, cfg_t *sec,
                          const struct httpd_server *server)
{
	struct httpd_location *loc = &config->locations[index];
	const char *handler = cfg_getstr(sec, "handler");
	const char *body = cfg_getstr(sec, "max_body_size");
	const char *gzip_min = cfg_getstr(sec, "gzip_min_length");
	unsigned nchecks = cfg_size(sec, "check");
	char err[1024];
	int rc = 0;

	block_origin(config, config->src.location_lines, config->src.location_count, sec, &loc->file, &loc->line);
	loc->server = server;
	loc->prefix = cfg_title(sec);
	loc->prefix_len = strlen(loc->prefix);
	loc->max_body_size = config->max_body_size;
	loc->config = config;
	loc->gzip = cfg_getbool(sec, "gzip");
	loc->gzip_level = (int)cfg_getint(sec, "gzip_level");
	if (loc->gzip_level < 1 || loc->gzip_level > 9) {
		reportf(loc->file, loc->line, "location \"%s\": gzip_level must be from 1 to 9", loc->prefix);
		rc = -1;
	}
	if (config_size_parse(gzip_min, &loc->gzip_min_length) < 0) {
		reportf(loc->file, loc->line, "location \"%s\": gzip_min_length \"%s\" is not a size",
		        loc->prefix, gzip_min);
		rc = -1;
	}
	if (strcmp(cfg_getstr(sec, "access_log"), "off") != 0 && strcmp(cfg_getstr(sec, "access_log"), "on") != 0) {
		reportf(loc->file, loc->line, "location \"%s\": access_log must be \"on\" or \"off\" here (the file "
		        "is set at the top level)", loc->prefix);
		rc = -1;
	}
	loc->access_log_off = strcmp(cfg_getstr(sec, "access_log"), "off") == 0;
	if (location_access_read(config, loc, sec) < 0 || location_limits_read(config, loc, sec) < 0 ||
	    location_auth_read(config, loc, sec) < 0)
		rc = -1;
	loc->access_log_min_status = (int)cfg_getint(sec, "access_log_min_status");
	if (loc->access_log_min_status < 0 || loc->access_log_min_status > 599) {
		reportf(loc->file, loc->line, "location \"%s\": access_log_min_status must be from 0 to 599", loc->prefix);
		rc = -1;
	}
	if (loc->prefix[0] != '/') {
		reportf(loc->file, loc->line, "location \"%s\": the prefix must start with '/'", loc->prefix);
		rc = -1;
	}
	if (body != NULL && config_size_parse(body, &loc->max_body_size) < 0) {
		reportf(loc->file, loc->line, "location \"%s\": max_body_size \"%s\" is not a size",
		        loc->prefix, body);
		rc = -1;
	}
	if (handler == NULL) {
		reportf(loc->file, loc->line, "location \"%s\": no handler (handler = \"static\", ...)",
		        loc->prefix);
		return -1;
	}
	loc->handler.mod = module_load(config->module_dir, handler, err, sizeof(err));
	if (loc->handler.mod == NULL || loc->handler.mod->api.handler == NULL) {
		reportf(loc->file, loc->line, "location \"%s\": handler \"%s\": %s", loc->prefix,
		        handler, loc->handler.mod ? "the module has no handler hook" : err);
		loc->handler.mod = NULL;
		return -1;
	}
	loc->methods = loc->handler.mod->api.methods;
	if (nchecks > LOCATION_CHECKS_MAX) {
		reportf(loc->file, loc->line, "location \"%s\": at most %d check modules", loc->prefix,
		        LOCATION_CHECKS_MAX);
		return -1;
	}
	loc->checks = calloc(nchecks ? nchecks : 1, sizeof(*loc->checks));
	if (loc->checks == NULL)
		return -1;
	for (unsigned i = 0; i < nchecks; i++) {
		const struct module *m = module_load(config->module_dir, cfg_getnstr(sec, "check", i),
		                                     err, sizeof(err));

		if (m == NULL || (m->api.check == NULL && m->api.body_check == NULL)) {
			reportf(loc->file, loc->line, "location \"%s\": check \"%s\": %s", loc->prefix,
			        cfg_getnstr(sec, "check", i), m ? "the module has no check hook" : err);
			return -1;
		}
		loc->checks[loc->check_count++].mod = m;
	}

	/* An option only means something to the modules of its own location. */
	for (cfg_opt_t *o = sec->opts; o->name != NULL; o++) {
		bool ok = false;

		if (!option_is_set(o))
			continue;
		for (size_t i = 0; i < CORE_LOCATION_OPTS && !ok; i++)
			ok = strcmp(core_location_opts[i].name, o->name) == 0;
		ok = ok || option_belongs(o->name, loc->handler.mod);
		for (size_t i = 0; i < loc->check_count && !ok; i++)
			ok = option_belongs(o->name, loc->checks[i].mod);
		if (!ok) {
			reportf(loc->file, loc->line, "location \"%s\": option \"%s\" is not one of handler \"%s\"",
			        loc->prefix, o->name, handler);
			rc = -1;
		}
	}
	if (rc != 0)
		return rc;
	if (location_module_configure(loc, &loc->handler, sec) < 0)
		rc = -1;
	for (size_t i = 0; i < loc->check_count; i++)
		if (location_module_configure(loc, &loc->checks[i], sec) < 0)
			rc = -1;
	return rc;
}

static int location_cmp(const void *a, const void *b)
{
	const struct httpd_location *la = a, *lb = b;

	return la->prefix_len < lb->prefix_len ? 1 : la->prefix_len > lb->prefix_len ? -1 : 0;
}

static unsigned workers_resolve(const char *text)
{
	long n;

	if (strcmp(text, "auto") != 0)
		return (unsigned)strtoul(text, NULL, 10);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* What the server opens at start is opened now, so -t finds a missing file. */
static int files_check(struct httpd_config *config)
{
	char err[512];
	const char *file;
	int line, fd;

	config_source_origin(&config->src, mime_line, &file, &line);
	config->mime = mime_table_load(config->mime_types, err, sizeof(err));
	if (config->mime == NULL) {
		report(file, mime_line > 0 ? line : 0, err);
		return -1;
	}
	/* O_TMPFILE is what request bodies spill to: make sure it works here. */
	fd = open(config->temp_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EACCES) {
		config_source_origin(&config->src, temp_dir_line, &file, &line);
		reportf(file, temp_dir_line > 0 ? line : 0, "temp_dir: cannot make a temporary file in %s: %s",
		        config->temp_dir, strerror(errno));
		return -1;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

static int globals_read(struct httpd_config *config)
{
	cfg_t *cfg = config->cfg;
	cfg_opt_t *listen_opt = cfg_getopt(cfg, "listen");
	const char *file;
	int line;
	uint64_t head;
	char err[256];
	size_t proxy_listeners = 0;

	config->workers = workers_resolve(cfg_getstr(cfg, "workers"));
	config->user = cfg_getstr(cfg, "user");
	config->pid_file = cfg_getstr(cfg, "pid_file");
	config->error_log = cfg_getstr(cfg, "error_log");
	config->error_log_level = HTTPD_LOG_NOTICE;
	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcmp(cfg_getstr(cfg, "error_log_level"), log_levels[i]) == 0)
			config->error_log_level = (enum httpd_log_level)i;
	config->access_log = cfg_getstr(cfg, "access_log");
	config->module_dir = cfg_getstr(cfg, "module_dir");
	config->mime_types = cfg_getstr(cfg, "mime_types");
	config->temp_dir = cfg_getstr(cfg, "temp_dir");
	config->server_tokens = cfg_getbool(cfg, "server_tokens");
	config->reuseport = cfg_getbool(cfg, "reuseport");
	config->limits.max_request_line = (size_t)cfg_getint(cfg, "max_request_line");
	config->limits.max_headers = (size_t)cfg_getint(cfg, "max_headers");
	config_size_parse(cfg_getstr(cfg, "max_header_size"), &head);
	config->limits.max_head = (size_t)head;
	config_size_parse(cfg_getstr(cfg, "max_body_size"), &config->max_body_size);
	config_size_parse(cfg_getstr(cfg, "body_buffer_size"), &head);
	config->body_buffer_size = (size_t)head;
	config_size_parse(cfg_getstr(cfg, "max_header_size"), &head);
	config->header_timeout_ms = (unsigned)cfg_getint(cfg, "header_timeout") * 1000;
	config->body_timeout_ms = (unsigned)cfg_getint(cfg, "body_timeout") * 1000;
	config->keepalive_timeout_ms = (unsigned)cfg_getint(cfg, "keepalive_timeout") * 1000;
	config->send_timeout_ms = (unsigned)cfg_getint(cfg, "send_timeout") * 1000;
	config->handler_timeout_ms = (unsigned)cfg_getint(cfg, "handler_timeout") * 1000;
	config->worker_threads = (unsigned)cfg_getint(cfg, "worker_threads");
	config_size_parse(cfg_getstr(cfg, "access_log_buffer"), &head);
	config->access_log_buffer = (size_t)head;
	config->access_log_flush_ms = (unsigned)cfg_getint(cfg, "access_log_flush") * 1000;
	config->file_cache_valid_ms = (unsigned)cfg_getint(cfg, "file_cache_valid") * 1000;
	config->file_cache_entries = (size_t)cfg_getint(cfg, "file_cache_entries");
	config->file_cache_errors = cfg_getbool(cfg, "file_cache_errors");
	config_size_parse(cfg_getstr(cfg, "file_cache_size"), &config->file_cache_size);
	config->shutdown_timeout_ms = (unsigned)cfg_getint(cfg, "shutdown_timeout") * 1000;
	config->shutdown_delay_ms = (unsigned)cfg_getint(cfg, "shutdown_delay") * 1000;
	config->real_ip_header_name = cfg_getstr(cfg, "real_ip_header");
	config->real_ip_header = strcasecmp(config->real_ip_header_name, "Forwarded") == 0
	                       ? REAL_IP_FORWARDED
	                       : strcasecmp(config->real_ip_header_name, "proxy_protocol") == 0
	                       ? REAL_IP_PROXY_PROTOCOL : REAL_IP_X_FORWARDED_FOR;
	config->drain_timeout_ms = (unsigned)cfg_getint(cfg, "drain_timeout") * 1000;
	config->upgrade_timeout_ms = (unsigned)cfg_getint(cfg, "upgrade_timeout") * 1000;
	config->proxy_protocol_timeout_ms = (unsigned)cfg_getint(cfg, "proxy_protocol_timeout") * 1000;
	config->proxy_protocol_from_count = cfg_size(cfg, "proxy_protocol_from");
	config->proxy_protocol_from = calloc(config->proxy_protocol_from_count ? config->proxy_protocol_from_count : 1,
	                                     sizeof(*config->proxy_protocol_from));
	if (config->proxy_protocol_from == NULL)
		return -1;
	for (size_t i = 0; i < config->proxy_protocol_from_count; i++)
		(void)cidr_parse(cfg_getnstr(cfg, "proxy_protocol_from", (unsigned)i), &config->proxy_protocol_from[i]);
	config->real_ip_from_count = cfg_size(cfg, "real_ip_from");
	config->real_ip_from = calloc(config->real_ip_from_count ? config->real_ip_from_count : 1,
	                              sizeof(*config->real_ip_from));
	if (config->real_ip_from == NULL)
		return -1;
	for (size_t i = 0; i < config->real_ip_from_count; i++)
		(void)cidr_parse(cfg_getnstr(cfg, "real_ip_from", (unsigned)i), &config->real_ip_from[i]);
	config->keepalive_requests = (unsigned)cfg_getint(cfg, "keepalive_requests");
	config->http2_max_concurrent_streams = (unsigned)cfg_getint(cfg, "http2_max_concurrent_streams");
	config->worker_connections = (unsigned)cfg_getint(cfg, "worker_connections");

	if (config->limits.max_head < config->limits.max_request_line + 2) {
		config_source_origin(&config->src, 0, &file, &line);
		reportf(file, 0, "max_header_size must be larger than max_request_line");
		return -1;
	}

	config->listen_count = cfg_opt_size(listen_opt);
	config->listens = calloc(config->listen_count, sizeof(*config->listens));
	if (config->listens == NULL)
		return -1;
	if (listen_line > 0) {
		config_source_origin(&config->src, listen_line, &file, &line);
	} else {
		cfg_origin(cfg, &file, &line);
		line = 0;
	}
	for (size_t i = 0; i < config->listen_count; i++) {
		struct listen_spec *ls = &config->listens[i];

		ls->text = cfg_opt_getnstr(listen_opt, (unsigned)i);
		ls->file = file;
		ls->line = line;
		if (listen_spec_parse(ls->text, ls, err, sizeof(err)) < 0) {
			report(file, 0, err);
			return -1;
		}
		if (ls->flags & LISTEN_PROXY_PROTOCOL)
			proxy_listeners++;
	}
	/* PROXY settings without a PROXY listener are a mistake worth naming. */
	if (proxy_listeners == 0 && config->real_ip_header == REAL_IP_PROXY_PROTOCOL) {
		config_source_origin(&config->src, real_ip_header_line, &file, &line);
		reportf(file, line, "real_ip_header \"proxy_protocol\" needs a listen address with the "
		        "proxy_protocol flag");
		return -1;
	}
	if (proxy_listeners == 0 && config->proxy_protocol_from_count > 0) {
		config_source_origin(&config->src, proxy_protocol_from_line, &file, &line);
		reportf(file, line, "proxy_protocol_from: no listen address has the proxy_protocol flag");
		return -1;
	}
	if (config->module_dir[0] != '/') {
		report(file, 0, "module_dir must be an absolute path");
		return -1;
	}
	if (config->worker_threads > 64) {
		report(file, 0, "worker_threads must be from 1 to 64");
		return -1;
	}
	if (config->access_log_buffer > 16 * 1024 * 1024) {
		report(file, 0, "access_log_buffer must be at most 16m");
		return -1;
	}
	if (config->body_buffer_size < 1024 || config->body_buffer_size > 64 * 1024 * 1024) {
		report(file, 0, "body_buffer_size must be from 1k to 64m");
		return -1;
	}
	return files_check(config);
}

static int server_modules_init(struct httpd_config *config);

static char *lower_dup(const char *text)
{
	char *out = strdup(text);

	for (char *p = out; p != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}

/* An access_log path of a server: an index into config->access_logs, added once. */
static int access_log_index(struct httpd_config *config, const char *path, size_t *index)
{
	const char **grown;

	for (size_t i = 0; i < config->access_log_count; i++)
		if (strcmp(config->access_logs[i], path) == 0) {
			*index = i;
			return 0;
		}
	if (config->access_log_count == ACCESS_LOGS_MAX)
		return -2;
	grown = realloc(config->access_logs, (config->access_log_count + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	config->access_logs = grown;
	grown[config->access_log_count] = path;
	*index = config->access_log_count++;
	return 0;
}

/* TLS settings: the section's own, else the top level's. */
static const char *tls_str(cfg_t *sec, cfg_t *root, const char *name)
{
	const char *v = sec != NULL ? cfg_getstr(sec, name) : NULL;

	return v != NULL ? v : cfg_getstr(root, name);
}

static bool opt_set(cfg_t *sec, const char *name)
{
	cfg_opt_t *o = sec != NULL ? cfg_getopt(sec, name) : NULL;

	return o != NULL && cfg_opt_size(o) > 0;
}

static int server_tls_read(struct httpd_config *config, struct httpd_server *srv, cfg_t *sec)
{
	cfg_t *root = config->cfg;
	cfg_t *key_sec = opt_set(sec, "tls_certificate_key") ? sec : root;
	const char *protocols = tls_str(sec, root, "tls_protocols");
	const char *verify = tls_str(sec, root, "tls_verify_client");

	srv->tls_certificate = tls_str(sec, root, "tls_certificate");
	srv->tls_certificate_key = tls_str(sec, root, "tls_certificate_key");
	config_source_origin(&config->src, directive_line(key_sec, "tls_certificate_key"), &srv->tls_key_file,
	                     &srv->tls_key_line);
	if (srv->tls_certificate_key == NULL) {
		srv->tls_key_file = srv->file;
		srv->tls_key_line = srv->line;
	}
	srv->tls_min_version = 0x0303;   /* TLS 1.2 and 1.3 */
	srv->tls_max_version = 0x0304;
	if (protocols != NULL)
		(void)tls_protocols_parse(protocols, &srv->tls_min_version, &srv->tls_max_version);
	srv->tls_ciphers = tls_str(sec, root, "tls_ciphers");
	srv->tls_client_ca = tls_str(sec, root, "tls_client_ca");
	srv->tls_verify_client = srv->tls_client_ca == NULL ? TLS_VERIFY_OFF : TLS_VERIFY_REQUIRED;
	if (verify != NULL)
		srv->tls_verify_client = strcmp(verify, "off") == 0 ? TLS_VERIFY_OFF
		                       : strcmp(verify, "optional") == 0 ? TLS_VERIFY_OPTIONAL : TLS_VERIFY_REQUIRED;
	srv->redirect_https = opt_set(sec, "redirect_https") ? cfg_getbool(sec, "redirect_https")
	                    : opt_set(root, "redirect_https") && cfg_getbool(root, "redirect_https");
	srv->hsts = (unsigned)(opt_set(sec, "hsts") ? cfg_getint(sec, "hsts")
	                     : opt_set(root, "hsts") ? cfg_getint(root, "hsts") : 0);
	snprintf(srv->hsts_header, sizeof(srv->hsts_header), "max-age=%u", srv->hsts);
	srv->http2 = opt_set(sec, "http2") ? cfg_getbool(sec, "http2")
	           : !opt_set(root, "http2") || cfg_getbool(root, "http2");
	if ((srv->tls_certificate == NULL) != (srv->tls_certificate_key == NULL)) {
		reportf(srv->file, srv->line, "%s: tls_certificate and tls_certificate_key go together",
		        srv->name != NULL ? srv->name : "the top-level server");
		return -1;
	}
	if (srv->tls_verify_client != TLS_VERIFY_OFF && srv->tls_client_ca == NULL) {
		reportf(srv->file, srv->line, "%s: tls_verify_client needs tls_client_ca",
		        srv->name != NULL ? srv->name : "the top-level server");
		return -1;
	}
	return 0;
}

/* One server block (sec), or the top level (sec NULL); its locations go to config->locations[*next...]. */
static int server_build(struct httpd_config *config, struct httpd_server *srv, cfg_t *sec, size_t *next)
{
	cfg_t *holder = sec != NULL ? sec : config->cfg;
	size_t count = cfg_size(holder, "location");
	const char *log;
	int rc = 0;

	srv->config = config;
	srv->owner = holder;
	if (sec != NULL) {
		size_t aliases = cfg_size(sec, "aliases");

		block_origin(config, config->src.server_lines, config->src.server_count, sec, &srv->file, &srv->line);
		srv->name = cfg_title(sec);
		if (!server_name_ok(srv->name)) {
			reportf(srv->file, srv->line, "server \"%s\" is not a host name (" SERVER_NAME_RULE ")", srv->name);
			rc = -1;
		}
		srv->names = calloc(aliases + 1, sizeof(*srv->names));
		if (srv->names == NULL || (srv->names[0] = lower_dup(srv->name)) == NULL)
			return -1;
		srv->name_count = 1;
		for (size_t i = 0; i < aliases; i++) {
			if ((srv->names[srv->name_count] = lower_dup(cfg_getnstr(sec, "aliases", (unsigned)i))) == NULL)
				return -1;
			srv->name_count++;
		}
		srv->is_default = cfg_getbool(sec, "default_server");
		log = cfg_getstr(sec, "access_log");
		if (log != NULL && strcmp(log, "off") == 0)
			srv->access_log = SIZE_MAX;
		else if (log != NULL && (rc = access_log_index(config, log, &srv->access_log)) < 0) {
			if (rc == -2)
				reportf(srv->file, srv->line, "server \"%s\": at most %d access_log files", srv->name,
				        ACCESS_LOGS_MAX);
			return -1;
		}
		if (count == 0) {
			reportf(srv->file, srv->line, "server \"%s\" has no location blocks: nothing to serve", srv->name);
			rc = -1;
		}
	} else {
		config_source_origin(&config->src, 0, &srv->file, &srv->line);
	}
	if (server_tls_read(config, srv, sec) < 0)
		rc = -1;
	srv->locations = &config->locations[*next];
	for (size_t i = 0; i < count; i++) {
		if (location_build(config, *next, cfg_getnsec(holder, "location", (unsigned)i), srv) < 0)
			rc = -1;
		(*next)++;
		srv->location_count++;
	}
	if (rc == 0)
		qsort(srv->locations, srv->location_count, sizeof(*srv->locations), location_cmp);
	return rc;
}

/* Two servers must never answer to the same name, nor both claim to be the default. */
static int servers_check(struct httpd_config *config)
{
	int rc = 0;

	for (size_t a = 0; a < config->server_count; a++) {
		const struct httpd_server *sa = &config->servers[a];

		for (size_t b = a + 1; b < config->server_count; b++) {
			const struct httpd_server *sb = &config->servers[b];

			if (sa->is_default && sb->is_default) {
				reportf(sb->file, sb->line, "server \"%s\": default_server is already server \"%s\" at %s:%d",
				        sb->name, sa->name, sa->file, sa->line);
				rc = -1;
			}
			for (size_t i = 0; i < sa->name_count; i++)
				for (size_t j = 0; j < sb->name_count; j++)
					if (strcmp(sa->names[i], sb->names[j]) == 0) {
						reportf(sb->file, sb->line, "server \"%s\": the name \"%s\" is already server "
						        "\"%s\"'s at %s:%d", sb->name, sb->names[j], sa->name, sa->file, sa->line);
						rc = -1;
					}
		}
	}
	return rc;
}

static int servers_build(struct httpd_config *config)
{
	cfg_t *root = config->cfg;
	size_t blocks = cfg_size(root, "server"), top = cfg_size(root, "location"), total = top, next = 0;
	int rc = 0;

	for (size_t i = 0; i < blocks; i++)
		total += cfg_size(cfg_getnsec(root, "server", (unsigned)i), "location");
	config->locations = calloc(total ? total : 1, sizeof(*config->locations));
	config->servers = calloc(blocks + 1, sizeof(*config->servers));
	if (config->locations == NULL || config->servers == NULL || server_modules_init(config) < 0)
		return -1;
	config->location_count = total;
	if (access_log_index(config, config->access_log, &(size_t){ 0 }) < 0)
		return -1;
	/* The top-level locations are a server of their own, as before server blocks existed. */
	if (top > 0 || blocks == 0) {
		if (server_build(config, &config->servers[config->server_count++], NULL, &next) < 0)
			rc = -1;
	}
	for (size_t i = 0; i < blocks; i++)
		if (server_build(config, &config->servers[config->server_count++],
		                 cfg_getnsec(root, "server", (unsigned)i), &next) < 0)
			rc = -1;
	if (rc == 0 && total == 0) {
		const char *file;
		int line;

		config_source_origin(&config->src, 0, &file, &line);
		report(file, 0, "no location blocks: nothing to serve");
		return -1;
	}
	if (rc != 0 || servers_check(config) < 0)
		return -1;
	config->default_server = &config->servers[0];
	for (size_t i = 0; i < config->server_count; i++)
		if (config->servers[i].is_default)
			config->default_server = &config->servers[i];
	config->vhosts = config->server_count > 1;
	return 0;
}

/* server_init of every module, in the master, before any location is configured. */
static int server_modules_init(struct httpd_config *config)
{
	const char *file;
	int line;

	config_source_origin(&config->src, 0, &file, &line);
	for (size_t i = 0; i < config->module_count; i++) {
		struct server_module *sm = &config->modules[i];
		char err[1024] = "";

		if (sm->mod->api.server_init == NULL)
			continue;
		if (sm->mod->api.server_init((const struct httpd_conf *)config->cfg, &sm->data, err,
		                             sizeof(err)) != 0) {
			report(file, 0, err[0] ? err : "module server_init failed");
			return -1;
		}
		sm->inited = true;
	}
	return 0;
}

static bool checking;

void config_checking_set(bool only_checking)
{
	checking = only_checking;
}

int httpd_config_checking(void)
{
	return checking;
}

struct httpd_config *config_load(const char *path, bool log_errors)
{
	struct httpd_config *config = calloc(1, sizeof(*config));
	size_t loc_count = CORE_LOCATION_OPTS, srv_count = 0;
	cfg_opt_t *loc_opts = NULL, *srv_opts = NULL;
	int rc = -1;

	if (config == NULL)
		return NULL;
	current_src = &config->src;
	current_log_errors = log_errors;
	error_count = 0;
	listen_line = mime_line = temp_dir_line = 0;
	real_ip_header_line = proxy_protocol_from_line = access_log_format_line = 0;
	free(directive_lines);
	directive_lines = NULL;
	directive_line_count = 0;
	options_source_set(&config->src);
	if (config_source_load(&config->src, path, report) < 0)
		goto out;

	loc_opts = calloc(CORE_LOCATION_OPTS + 1, sizeof(*loc_opts));
	if (loc_opts == NULL)
		goto out;
	memcpy(loc_opts, core_location_opts, sizeof(core_location_opts));
	srv_opts = calloc(1, sizeof(*srv_opts));
	if (srv_opts == NULL)
		goto out;
	if (modules_load(config, &loc_opts, &loc_count, &srv_opts, &srv_count) < 0)
		goto out;

	config->location_schema = loc_opts;
	loc_opts = NULL;
	config->schema = root_schema(config->location_schema, srv_opts, &config->server_schema);
	if (config->schema == NULL)
		goto out;
	collecting = config;
	config->cfg = parse_text(config->schema, &config->src, 0);
	collecting = NULL;
	if (config->cfg == NULL || globals_read(config) < 0 || access_format_read(config) < 0)
		goto out;

	if (zones_read(config) < 0)
		goto out;
	rc = servers_build(config);
	config_source_origin(&config->src, directive_line(config->cfg, "tls_ticket_key_file"),
	                     &config->tls_ticket_key_origin, &config->tls_ticket_key_line);
	if (rc == 0)
		rc = tls_config_build(config, report);
out:
	free(directive_lines);
	directive_lines = NULL;
	directive_line_count = 0;
	free(loc_opts);
	free(srv_opts);
	current_src = NULL;
	if (rc != 0 || error_count > 0) {
		if (error_count == 0)
			fprintf(stderr, "%s: out of memory\n", path);
		config_free(config);
		return NULL;
	}
	return config;
}

void config_free(struct httpd_config *config)
{
	if (config == NULL)
		return;
	for (size_t i = 0; i < config->location_count; i++) {
		struct httpd_location *loc = &config->locations[i];

		if (loc->handler.mod != NULL && loc->handler.mod->api.release != NULL && loc->handler.data)
			loc->handler.mod->api.release(loc->handler.data);
		for (size_t j = 0; j < loc->check_count; j++)
			if (loc->checks[j].mod->api.release != NULL && loc->checks[j].data)
				loc->checks[j].mod->api.release(loc->checks[j].data);
		free(loc->checks);
		free(loc->access);
		free(loc->limit_reqs);
		free(loc->limit_conns);
		auth_basic_free(loc->auth);
	}
	for (size_t i = config->module_count; i > 0; i--) {
		struct server_module *sm = &config->modules[i - 1];

		if (sm->inited && sm->mod->api.server_exit != NULL)
			sm->mod->api.server_exit(sm->data);
	}
	free(config->modules);
	mime_table_free(config->mime);
	for (size_t i = 0; i < config->server_count; i++) {
		for (size_t j = 0; j < config->servers[i].name_count; j++)
			free(config->servers[i].names[j]);
		free(config->servers[i].names);
		tls_server_free(config->servers[i].tls);
	}
	free(config->servers);
	free(config->access_logs);
	free(config->locations);
	for (size_t i = 0; i < config->limit_zone_count; i++)
		limit_zone_put(config->limit_zones[i]);
	free(config->limit_zones);
	free(config->listens);
	free(config->real_ip_from);
	free(config->proxy_protocol_from);
	log_format_free(&config->access_format);
	for (size_t i = 0; i < config->error_page_count; i++)
		free(config->error_pages[i].body);
	free(config->error_pages);
	if (config->cfg != NULL)
		cfg_free(config->cfg);
	free(config->schema);
	free(config->server_schema);
	free(config->location_schema);
	option_arena_free(&config->arena);
	config_source_free(&config->src);
	free(config);
}

const struct httpd_location *config_location_match(const struct httpd_config *config,
                                                   const char *path, size_t path_len)
{
	return config_server_location(config->default_server, path, path_len);
}

const struct httpd_location *config_server_location(const struct httpd_server *server,
                                                    const char *path, size_t path_len)
{
	for (size_t i = 0; i < server->location_count; i++) {
		const struct httpd_location *loc = &server->locations[i];

		if (loc->prefix_len > path_len || memcmp(loc->prefix, path, loc->prefix_len) != 0)
			continue;
		/* "/docs" is /docs and what lies below it, never /docsecret. */
		if (loc->prefix_len == path_len || loc->prefix[loc->prefix_len - 1] == '/' ||
		    path[loc->prefix_len] == '/')
			return loc;
	}
	return NULL;
}

const char *httpd_location_prefix(const struct httpd_location *loc)
{
	return loc->prefix;
}

void httpd_location_set_methods(const struct httpd_location *loc, unsigned methods)
{
	/* Locations are the config's own; const only keeps modules from other fields. */
	struct httpd_location *own = (struct httpd_location *)(uintptr_t)loc;

	own->methods = own->handler.mod->api.methods & methods;
}

void *httpd_location_server_data(const struct httpd_location *loc, const char *module)
{
	const struct httpd_config *config = loc->config;

	for (size_t i = 0; i < config->module_count; i++)
		if (strcmp(config->modules[i].mod->name, module) == 0)
			return config->modules[i].data;
	return NULL;
}
