/*
 * The HTTP layer's directives: request limits and timeouts, compression,
 * the access log and its formats, the client's real address, and the
 * gates (access rules, auth_basic, limit_req and limit_conn).
 */
#include "http_directives.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "access.h"
#include "auth_basic.h"
#include "cidr.h"
#include "header_rules.h"
#include "location.h"
#include "rewrite.h"
#include "config.h"
#include "limit.h"
#include "listen.h"
#include "log.h"
#include "log_format.h"
#include "real_ip.h"

#define TOP DIRECTIVE_TOP
#define SERVER DIRECTIVE_SERVER
#define LOCATION DIRECTIVE_LOCATION
#define GATE (TOP | SERVER | LOCATION)
#define SECONDS(n) ((int64_t)(n) * 1000)

/* --- the access log ----------------------------------------------------------- */

/* An access_log path: an index into config->access_logs, added once. */
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
	if (config->access_logs == NULL)
		config->access_logs = config_calloc(config, ACCESS_LOGS_MAX, sizeof(*config->access_logs));
	if ((grown = config->access_logs) == NULL)
		return -1;
	grown[config->access_log_count] = path;
	*index = config->access_log_count++;
	return 0;
}

/* The top level's file is access_logs[0]. */
static int access_log_top_build(const struct directive_use *use)
{
	size_t index;

	return access_log_index(use->config, use->config->access_log, &index);
}

static int access_log_file_check(const char *text, char *err, size_t errlen)
{
	if (strcmp(text, "off") == 0 || strcmp(text, "stderr") == 0 || strcmp(text, "syslog") == 0 || text[0] == '/')
		return 0;
	snprintf(err, errlen, "access_log must be an absolute path, \"stderr\", \"syslog\" or \"off\", not \"%s\"", text);
	return -1;
}

static int access_log_server_build(const struct directive_use *use)
{
	struct httpd_server *srv = use->server;
	const char *log = httpd_conf_str(use->from, "access_log");
	int rc;

	if (!use->set || log == NULL)
		return 0;
	if (strcmp(log, "off") == 0) {
		srv->access_log = SIZE_MAX;
		return 0;
	}
	rc = access_log_index(use->config, log, &srv->access_log);
	if (rc == -2)
		config_error(use->file, use->line, "server \"%s\": at most %d access_log files", srv->name, ACCESS_LOGS_MAX);
	return rc;
}

static int access_log_location_build(const struct directive_use *use)
{
	use->location->access_log_off = strcmp(httpd_conf_str(use->from, "access_log"), "off") == 0;
	return 0;
}

static int log_format_check(const char *text, char *err, size_t errlen)
{
	struct log_format f;

	if (log_format_compile(text, LOG_ESCAPE_DEFAULT, &f, err, errlen) < 0)
		return -1;
	log_format_free(&f);
	return 0;
}

static void log_format_release(void *p)
{
	log_format_free(p);
	free(p);
}

/* access_log_format: a log_format block of that name, else a built-in format. */
static int access_format_build(const struct directive_use *use)
{
	const char *name = httpd_conf_str(use->from, "access_log_format");
	const char *text = NULL, *file;
	enum log_escape escape = LOG_ESCAPE_DEFAULT;
	char err[256];
	int line;
	struct log_format *f;

	for (size_t i = 0; i < httpd_conf_count(use->from, "log_format"); i++) {
		const struct httpd_conf *sec = httpd_conf_section(use->from, "log_format", i);

		config_directive_origin(use->config, sec, "", &file, &line);
		if (log_format_builtin(httpd_conf_title(sec), &escape) != NULL) {
			config_error(file, line, "log_format \"%s\": that name is a built-in format", httpd_conf_title(sec));
			return -1;
		}
		if (httpd_conf_str(sec, "format") == NULL) {
			config_error(file, line, "log_format \"%s\" needs a format", httpd_conf_title(sec));
			return -1;
		}
		if (strcmp(httpd_conf_title(sec), name) == 0) {
			text = httpd_conf_str(sec, "format");
			escape = strcmp(httpd_conf_str(sec, "escape"), "json") == 0 ? LOG_ESCAPE_JSON : LOG_ESCAPE_DEFAULT;
		}
	}
	if (text == NULL && (text = log_format_builtin(name, &escape)) == NULL) {
		config_error(use->file, use->line, "access_log_format: no log_format \"%s\" (built in: combined, common, "
		             "json)", name);
		return -1;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	if (log_format_compile(text, escape, f, err, sizeof(err)) < 0) {
		free(f);
		config_report(use->file, use->line, err);
		return -1;
	}
	use->config->access_format = f;
	return config_own(use->config, f, log_format_release);
}

/* --- the real client address ---------------------------------------------------- */

static int cidrs_build(const struct directive_use *use, struct cidr **out, size_t *count)
{
	size_t n = httpd_conf_count(use->from, use->d->name);

	*out = config_calloc(use->config, n, sizeof(**out));
	if (*out == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		(void)cidr_parse(httpd_conf_list_str(use->from, use->d->name, i), &(*out)[i]);   /* checked while parsing */
	*count = n;
	return 0;
}

static int real_ip_from_build(const struct directive_use *use)
{
	return cidrs_build(use, &use->config->real_ip_from, &use->config->real_ip_from_count);
}

static int proxy_protocol_from_build(const struct directive_use *use)
{
	return cidrs_build(use, &use->config->proxy_protocol_from, &use->config->proxy_protocol_from_count);
}

static int real_ip_header_check(const char *text, char *err, size_t errlen)
{
	if (strcasecmp(text, "X-Forwarded-For") == 0 || strcasecmp(text, "Forwarded") == 0 ||
	    strcasecmp(text, "proxy_protocol") == 0)
		return 0;
	snprintf(err, errlen, "real_ip_header must be \"X-Forwarded-For\", \"Forwarded\" or \"proxy_protocol\", not "
	         "\"%s\"", text);
	return -1;
}

static int real_ip_header_build(const struct directive_use *use)
{
	const char *v = use->config->real_ip_header_name;

	use->config->real_ip_header = strcasecmp(v, "Forwarded") == 0 ? REAL_IP_FORWARDED
	                            : strcasecmp(v, "proxy_protocol") == 0 ? REAL_IP_PROXY_PROTOCOL
	                            : REAL_IP_X_FORWARDED_FOR;
	return 0;
}

/* --- gates: access rules, auth_basic, limits ------------------------------------ */

static int access_check(const char *text, char *err, size_t errlen)
{
	struct access_rule rule;

	if (access_rule_parse(text, &rule) == 0)
		return 0;
	snprintf(err, errlen, "access: \"%s\" is not a rule: \"allow\" or \"deny\", then an address, a CIDR block or "
	         "\"all\"", text);
	return -1;
}

/* The location's rules, else its server's, else the top level's: the nearest block that sets them. */
static int access_build(const struct directive_use *use)
{
	struct httpd_location *loc = use->location;
	size_t n = httpd_conf_count(use->from, "access");

	loc->access = config_calloc(use->config, n, sizeof(*loc->access));
	if (loc->access == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		(void)access_rule_parse(httpd_conf_list_str(use->from, "access", i), &loc->access[i]);   /* checked */
	loc->access_count = n;
	return 0;
}

static int auth_user_file_build(const struct directive_use *use)
{
	use->location->auth_user_file_origin = use->file;
	use->location->auth_user_file_line = use->line;
	return 0;
}

static void auth_release(void *p)
{
	auth_basic_free(p);
}

/* auth_basic: the realm, with the user file of the nearest block that names one, read now (as root). */
static int auth_basic_build(const struct directive_use *use)
{
	struct httpd_location *loc = use->location;
	struct httpd_config *config = use->config;
	const char *realm = httpd_conf_str(use->from, "auth_basic");
	char err[512];
	int line;

	if (realm == NULL || strcmp(realm, "off") == 0)
		return 0;
	if (loc->auth_user_file == NULL) {
		config_error(use->file, use->line, "location \"%s\": auth_basic needs auth_basic_user_file", loc->prefix);
		return -1;
	}
	for (size_t i = 0; i < config->listen_count; i++) {
		if (!(config->listens[i].flags & LISTEN_TLS)) {
			httpd_log(HTTPD_LOG_WARN, "%s:%d: location \"%s\": auth_basic over the plain-HTTP listener %s "
			          "sends passwords in clear text", loc->file, loc->line, loc->prefix, config->listens[i].text);
			break;
		}
	}
	loc->auth = auth_basic_load(realm, loc->auth_user_file, err, sizeof(err), &line);
	if (loc->auth == NULL) {
		if (line > 0)
			config_error(loc->auth_user_file_origin, loc->auth_user_file_line,
			             "location \"%s\": auth_basic_user_file %s:%d: %s", loc->prefix,
			             loc->auth_user_file, line, err);
		else
			config_error(use->file, use->line, "location \"%s\": %s", loc->prefix, err);
		return -1;
	}
	return config_own(config, loc->auth, auth_release);
}

static void zone_release(void *p)
{
	limit_zone_put(p);
}

/* limit_req_zone and limit_conn_zone blocks: one shared table each, kept across reloads when unchanged. */
static int zones_build(const struct directive_use *use)
{
	struct httpd_config *config = use->config;
	bool req = strcmp(use->d->name, "limit_req_zone") == 0;
	size_t n = httpd_conf_count(use->from, use->d->name);
	int rc = 0;

	if (config->limit_zones == NULL) {
		size_t all = httpd_conf_count(use->from, "limit_req_zone") + httpd_conf_count(use->from, "limit_conn_zone");

		if ((config->limit_zones = config_calloc(config, all, sizeof(*config->limit_zones))) == NULL)
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct httpd_conf *z = httpd_conf_section(use->from, use->d->name, i);
		const char *key = httpd_conf_str(z, "key"), *rate = req ? httpd_conf_str(z, "rate") : NULL, *file;
		uint64_t size = 0, per_ks = 0;
		struct limit_zone *zone;
		char err[256];
		int line;

		config_directive_origin(config, z, "", &file, &line);
		if (key == NULL || (req && rate == NULL)) {
			config_error(file, line, "%s \"%s\": needs key%s", use->d->name, httpd_conf_title(z),
			             req ? " and rate" : "");
			rc = -1;
			continue;
		}
		if (req)
			(void)config_rate_parse(rate, &per_ks);   /* checked while parsing */
		(void)httpd_conf_size(z, "size", &size);
		if (req && httpd_conf_enum(z, "backend") == 1) {
			uint64_t timeout_ms = 250;

			(void)httpd_conf_duration(z, "timeout", &timeout_ms);
			zone = limit_zone_redis(httpd_conf_title(z), key, per_ks, httpd_conf_str(z, "redis"),
			                        httpd_conf_str(z, "password_file"), (unsigned)timeout_ms, err, sizeof(err));
		} else {
			zone = limit_zone_get(httpd_conf_title(z), req ? LIMIT_REQ : LIMIT_CONN, key, size, per_ks, err,
			                      sizeof(err));
		}
		if (zone == NULL) {
			config_error(file, line, "%s \"%s\": %s", use->d->name, httpd_conf_title(z), err);
			rc = -1;
			continue;
		}
		if (config_own(config, zone, zone_release) < 0)
			return -1;
		config->limit_zones[config->limit_zone_count++] = zone;
	}
	return rc;
}

static struct limit_zone *zone_find(const struct httpd_config *config, const char *name, enum limit_kind kind)
{
	for (size_t i = 0; i < config->limit_zone_count; i++)
		if (strcmp(limit_zone_name(config->limit_zones[i]), name) == 0 &&
		    limit_zone_kind(config->limit_zones[i]) == kind)
			return config->limit_zones[i];
	return NULL;
}

/* limit_req "zone" { burst delay nodelay } of the nearest block that has any. */
static int limit_req_build(const struct directive_use *use)
{
	struct httpd_location *loc = use->location;
	size_t n = httpd_conf_count(use->from, "limit_req");
	int rc = 0;

	loc->limit_reqs = config_calloc(use->config, n, sizeof(*loc->limit_reqs));
	if (loc->limit_reqs == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct httpd_conf *l = httpd_conf_section(use->from, "limit_req", i);
		struct location_limit_req *lr = &loc->limit_reqs[loc->limit_req_count];
		long burst = httpd_conf_int(l, "burst"), delay = httpd_conf_int(l, "delay");
		const char *file;
		int line;

		config_directive_origin(use->config, l, "", &file, &line);
		lr->zone = zone_find(use->config, httpd_conf_title(l), LIMIT_REQ);
		if (lr->zone == NULL) {
			config_error(file, line, "limit_req \"%s\": no limit_req_zone of that name", httpd_conf_title(l));
			rc = -1;
			continue;
		}
		if (delay > burst) {
			config_error(file, line, "limit_req \"%s\": burst must be from 0 to 1000000, delay from 0 to burst",
			             httpd_conf_title(l));
			rc = -1;
			continue;
		}
		lr->burst = (uint64_t)burst;
		lr->delay = httpd_conf_bool(l, "nodelay") ? (uint64_t)burst : (uint64_t)delay;
		loc->limit_req_count++;
	}
	return rc;
}

static int limit_conn_build(const struct directive_use *use)
{
	struct httpd_location *loc = use->location;
	size_t n = httpd_conf_count(use->from, "limit_conn");
	int rc = 0;

	loc->limit_conns = config_calloc(use->config, n, sizeof(*loc->limit_conns));
	if (loc->limit_conns == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct httpd_conf *l = httpd_conf_section(use->from, "limit_conn", i);
		struct location_limit_conn *lc = &loc->limit_conns[loc->limit_conn_count];
		const char *file;
		int line;

		config_directive_origin(use->config, l, "", &file, &line);
		lc->zone = zone_find(use->config, httpd_conf_title(l), LIMIT_CONN);
		if (lc->zone == NULL || !httpd_conf_is_set(l, "max")) {
			config_error(file, line, lc->zone == NULL ? "limit_conn \"%s\": no limit_conn_zone of that name"
			             : "limit_conn \"%s\": max must be from 1 to 1000000", httpd_conf_title(l));
			rc = -1;
			continue;
		}
		lc->max = (unsigned)httpd_conf_int(l, "max");
		loc->limit_conn_count++;
	}
	return rc;
}

/* --- after every row: what only the whole configuration can tell -------------- */

static int http_finish(struct httpd_config *config)
{
	const struct httpd_conf *root = (const struct httpd_conf *)config->cfg;
	size_t proxy_listeners = 0;
	const char *file;
	int line;

	if (config->limits.max_head < config->limits.max_request_line + 2) {
		config_directive_origin(config, root, "max_header_size", &file, &line);
		config_error(file, line, "max_header_size must be larger than max_request_line");
		return -1;
	}
	for (size_t i = 0; i < config->listen_count; i++)
		if (config->listens[i].flags & LISTEN_PROXY_PROTOCOL)
			proxy_listeners++;
	/* PROXY settings without a PROXY listener are a mistake worth naming. */
	if (proxy_listeners == 0 && config->real_ip_header == REAL_IP_PROXY_PROTOCOL) {
		config_directive_origin(config, root, "real_ip_header", &file, &line);
		config_error(file, line, "real_ip_header \"proxy_protocol\" needs a listen address with the proxy_protocol "
		             "flag");
		return -1;
	}
	if (proxy_listeners == 0 && config->proxy_protocol_from_count > 0) {
		config_directive_origin(config, root, "proxy_protocol_from", &file, &line);
		config_error(file, line, "proxy_protocol_from: no listen address has the proxy_protocol flag");
		return -1;
	}
	return 0;
}

static const char *const escapes[] = { "default", "json", NULL };
static const char *const on_off[] = { "on", "off", NULL };

static const struct directive log_format_rows[] = {
	{ "format", 0, DIRECTIVE_STR, NULL, .check = log_format_check },
	{ "escape", 0, DIRECTIVE_ENUM, "default", .words = escapes },
	{ .name = NULL },
};

static const char *const zone_backends[] = { "shm", "redis", NULL };
static const char *const closed_open[] = { "closed", "open", NULL };

static const struct directive req_zone_rows[] = {
	{ "key", 0, DIRECTIVE_EXPR, NULL, .flags = 0 },
	{ "rate", 0, DIRECTIVE_RATE, NULL, .flags = 0 },
	{ "size", 0, DIRECTIVE_SIZE, "10m", 0, INT64_MAX, .flags = 0 },
	{ "backend", 0, DIRECTIVE_ENUM, "shm", .words = zone_backends },
	{ "redis", 0, DIRECTIVE_STR, "127.0.0.1:6379", .flags = 0 },
	{ "timeout", 0, DIRECTIVE_DURATION, "250ms", 1, 60000, .flags = 0 },
	{ "password_file", 0, DIRECTIVE_PATH, NULL, .flags = 0 },
	{ .name = NULL },
};

static const struct directive conn_zone_rows[] = {
	{ "key", 0, DIRECTIVE_EXPR, NULL, .flags = 0 },
	{ "size", 0, DIRECTIVE_SIZE, "10m", 0, INT64_MAX, .flags = 0 },
	{ .name = NULL },
};

static const struct directive limit_req_rows[] = {
	{ "burst", 0, DIRECTIVE_INT, "0", 0, 1000000, .flags = 0 },
	{ "nodelay", 0, DIRECTIVE_BOOL, "false", .flags = 0 },
	{ "delay", 0, DIRECTIVE_INT, "0", 0, 1000000, .flags = 0 },
	{ .name = NULL },
};

static const struct directive limit_conn_rows[] = {
	{ "max", 0, DIRECTIVE_INT, NULL, 1, 1000000, .flags = 0 },
	{ .name = NULL },
};

#define BLOCKS (DIRECTIVE_MULTI | DIRECTIVE_TITLED)

static const struct directive http_rows[] = {
	/* requests */
	{ "max_request_line", TOP, DIRECTIVE_INT, "8192", 1, 1000000, DIRECTIVE_CONFIG(limits.max_request_line) },
	{ "max_header_size", TOP, DIRECTIVE_SIZE, "16k", 0, INT64_MAX, DIRECTIVE_CONFIG(limits.max_head) },
	{ "max_headers", TOP, DIRECTIVE_INT, "100", 1, 1000000, DIRECTIVE_CONFIG(limits.max_headers) },
	{ "max_body_size", TOP | LOCATION, DIRECTIVE_SIZE, "1m", 0, INT64_MAX, DIRECTIVE_LOCATION_AT(max_body_size) },
	{ "body_buffer_size", TOP, DIRECTIVE_SIZE, "16k", 1024, 64 * 1024 * 1024, DIRECTIVE_CONFIG(body_buffer_size) },
	{ "header_timeout", TOP, DIRECTIVE_DURATION, "10", 1, SECONDS(1000000), DIRECTIVE_CONFIG(header_timeout_ms) },
	{ "body_timeout", TOP, DIRECTIVE_DURATION, "30", 1, SECONDS(1000000), DIRECTIVE_CONFIG(body_timeout_ms) },
	{ "keepalive_timeout", TOP, DIRECTIVE_DURATION, "15", 1, SECONDS(1000000),
	  DIRECTIVE_CONFIG(keepalive_timeout_ms) },
	{ "send_timeout", TOP, DIRECTIVE_DURATION, "30", 1, SECONDS(1000000), DIRECTIVE_CONFIG(send_timeout_ms) },
	{ "keepalive_requests", TOP, DIRECTIVE_INT, "1000", 1, 1000000, DIRECTIVE_CONFIG(keepalive_requests) },
	{ "http2_max_concurrent_streams", TOP, DIRECTIVE_INT, "128", 1, 1000000,
	  DIRECTIVE_CONFIG(http2_max_concurrent_streams) },
	{ "server_tokens", TOP, DIRECTIVE_BOOL, "true", DIRECTIVE_CONFIG(server_tokens) },
	/* the access log: a file at the top level and in a server block, on or off in a location */
	{ "access_log", TOP, DIRECTIVE_STR, HTTPD_LOGDIR "/access.log", .check = access_log_file_check,
	  DIRECTIVE_CONFIG(access_log), .build = access_log_top_build },
	{ "access_log", SERVER, DIRECTIVE_STR, NULL, .check = access_log_file_check,
	  .store = DIRECTIVE_IN_SERVER, .build = access_log_server_build },
	{ "access_log", LOCATION, DIRECTIVE_ENUM, "on", .words = on_off, .store = DIRECTIVE_IN_LOCATION,
	  .build = access_log_location_build },
	{ "access_log_min_status", LOCATION, DIRECTIVE_INT, "0", 0, 599, DIRECTIVE_LOCATION_AT(access_log_min_status) },
	{ "log_format", TOP, DIRECTIVE_BLOCK, .flags = BLOCKS, .block = log_format_rows },
	{ "access_log_format", TOP, DIRECTIVE_STR, "combined", .store = DIRECTIVE_IN_CONFIG,
	  .build = access_format_build },
	{ "access_log_buffer", TOP, DIRECTIVE_SIZE, "64k", 0, 16 * 1024 * 1024, DIRECTIVE_CONFIG(access_log_buffer) },
	{ "access_log_flush", TOP, DIRECTIVE_DURATION, "1", 1, SECONDS(1000000), DIRECTIVE_CONFIG(access_log_flush_ms) },
	/* who the client is */
	{ "real_ip_from", TOP, DIRECTIVE_CIDR_LIST, "{}", .store = DIRECTIVE_IN_CONFIG, .build = real_ip_from_build },
	{ "real_ip_header", TOP, DIRECTIVE_STR, "X-Forwarded-For", .check = real_ip_header_check,
	  DIRECTIVE_CONFIG(real_ip_header_name), .build = real_ip_header_build },
	{ "proxy_protocol_from", TOP, DIRECTIVE_CIDR_LIST, "{}", .store = DIRECTIVE_IN_CONFIG,
	  .build = proxy_protocol_from_build },
	{ "proxy_protocol_timeout", TOP, DIRECTIVE_DURATION, "5", 1, SECONDS(1000000),
	  DIRECTIVE_CONFIG(proxy_protocol_timeout_ms) },
	/* who may come in: the nearest block that sets each, the location's, its server's, the top level's */
	{ "limit_req_zone", TOP, DIRECTIVE_BLOCK, .flags = BLOCKS, .block = req_zone_rows,
	  .store = DIRECTIVE_IN_CONFIG, .build = zones_build },
	{ "limit_conn_zone", TOP, DIRECTIVE_BLOCK, .flags = BLOCKS, .block = conn_zone_rows,
	  .store = DIRECTIVE_IN_CONFIG, .build = zones_build },
	{ "access", GATE, DIRECTIVE_LIST, "{}", .check = access_check, .store = DIRECTIVE_IN_LOCATION,
	  .build = access_build },
	{ "auth_basic_user_file", GATE, DIRECTIVE_PATH, NULL, DIRECTIVE_LOCATION_AT(auth_user_file),
	  .build = auth_user_file_build },
	{ "auth_basic", GATE, DIRECTIVE_STR, NULL, .store = DIRECTIVE_IN_LOCATION, .build = auth_basic_build },
	{ "limit_req", GATE, DIRECTIVE_BLOCK, .flags = BLOCKS, .block = limit_req_rows,
	  .store = DIRECTIVE_IN_LOCATION, .build = limit_req_build },
	{ "limit_conn", GATE, DIRECTIVE_BLOCK, .flags = BLOCKS, .block = limit_conn_rows,
	  .store = DIRECTIVE_IN_LOCATION, .build = limit_conn_build },
	{ "limit_req_status", GATE, DIRECTIVE_INT, "429", 400, 599, DIRECTIVE_LOCATION_AT(limit_req_status) },
	{ "limit_conn_status", GATE, DIRECTIVE_INT, "429", 400, 599, DIRECTIVE_LOCATION_AT(limit_conn_status) },
	{ "limit_req_dry_run", GATE, DIRECTIVE_BOOL, "false", DIRECTIVE_LOCATION_AT(limit_req_dry_run) },
	{ "limit_req_redis_failure", GATE, DIRECTIVE_ENUM, "closed", .words = closed_open,
	  DIRECTIVE_LOCATION_AT(limit_req_redis_failure) },
	{ .name = NULL },
};

const struct directive_table http_directives = { "http", http_rows, http_finish, NULL };

/* Every location built: index them for routing, then the rules that name locations. */
static int routing_finish(struct httpd_config *config)
{
	return locations_index(config) < 0 || rewrite_finish(config) < 0 ? -1 : 0;
}

/* Locations' titles (kinds, regexes), rewrite, return and try_files. */
const struct directive_table rewrite_directives = { "rewrite", rewrite_rows, routing_finish, location_title_read };

/* add_header and expires. */
const struct directive_table header_directives = { "headers", header_rows, NULL, NULL };
