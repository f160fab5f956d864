#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "directive_schema.h"
#include "log.h"
#include "vhost.h"

/*
 * The state of the load in progress: libconfuse's callbacks take no user
 * pointer, so the one configuration being read is reachable from here.
 */
static struct {
	struct httpd_config *config;
	bool                 log_errors;
	unsigned             errors;
	bool                 collecting;   /* pass 2: error_page reads its file */
} loading;

/* Whether msg starts with "file:line: " already (a module names the line of a section it read). */
static bool has_origin(const char *msg)
{
	const char *colon = strchr(msg, ':');
	size_t digits;

	if (colon == NULL || colon == msg || strchr(" \t", msg[0]) != NULL)
		return false;
	digits = strspn(colon + 1, "0123456789");
	return digits > 0 && colon[1 + digits] == ':' && colon[2 + digits] == ' ';
}

void config_report(const char *file, int line, const char *msg)
{
	loading.errors++;
	if (line <= 0 && has_origin(msg)) {
		fprintf(stderr, "%s\n", msg);
		if (loading.log_errors)
			httpd_log(HTTPD_LOG_ERR, "%s", msg);
		return;
	}
	if (line > 0)
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
	if (loading.log_errors) {
		if (line > 0)
			httpd_log(HTTPD_LOG_ERR, "%s:%d: %s", file, line, msg);
		else
			httpd_log(HTTPD_LOG_ERR, "%s: %s", file, msg);
	}
}

void config_error(const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	config_report(file, line, msg);
}

void config_line_origin(int text_line, const char **file, int *line)
{
	if (loading.config == NULL) {
		*file = "?";
		*line = 0;
		return;
	}
	config_source_origin(&loading.config->src, text_line, file, line);
}

static void confuse_error(cfg_t *cfg, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void confuse_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[1024];
	const char *file;
	int line;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	config_line_origin(cfg->line, &file, &line);
	config_report(file, line, msg);
}

/* The file itself, for what belongs to no line. */
static const char *config_file(const struct httpd_config *config)
{
	const char *file;
	int line;

	config_source_origin(&config->src, 0, &file, &line);
	return file;
}

void config_directive_origin(const struct httpd_config *config, const struct httpd_conf *sec, const char *name,
                             const char **file, int *line)
{
	const cfg_t *c = (const cfg_t *)(const void *)sec;
	int at = directive_line(c, name);

	config_source_origin(&config->src, at > 0 ? at : c->line, file, line);
	if (at == 0 && strcmp(c->name, "root") == 0)
		*line = 0;
}

int config_own(struct httpd_config *config, void *ptr, void (*release)(void *))
{
	struct config_owned *grown;

	if (ptr == NULL)
		return -1;
	grown = realloc(config->owned, (config->owned_count + 1) * sizeof(*grown));
	if (grown == NULL) {
		release(ptr);
		return -1;
	}
	config->owned = grown;
	config->owned[config->owned_count++] = (struct config_owned){ ptr, release };
	return 0;
}

void *config_calloc(struct httpd_config *config, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	return p != NULL && config_own(config, p, free) == 0 ? p : NULL;
}

/* --- the core's directives --------------------------------------------------- */

static int workers_check(const char *text, char *err, size_t errlen)
{
	char *end;
	long n;

	if (strcmp(text, "auto") == 0)
		return 0;
	errno = 0;
	n = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || end == text || n < 1 || n > 1024) {
		snprintf(err, errlen, "workers must be \"auto\" or a number from 1 to 1024, not \"%s\"", text);
		return -1;
	}
	return 0;
}

static int error_log_check(const char *text, char *err, size_t errlen)
{
	if (text[0] == '/' || strcmp(text, "syslog") == 0 || strcmp(text, "stderr") == 0)
		return 0;
	snprintf(err, errlen, "error_log must be an absolute path, \"stderr\" or \"syslog\", not \"%s\"", text);
	return -1;
}

static int workers_build(const struct directive_use *use)
{
	const char *text = httpd_conf_str(use->from, "workers");
	long n;

	if (strcmp(text, "auto") != 0) {
		use->config->workers = (unsigned)strtoul(text, NULL, 10);
		return 0;
	}
	n = sysconf(_SC_NPROCESSORS_ONLN);
	use->config->workers = n > 0 ? (unsigned)n : 1;
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

static int server_name_check(const char *text, char *err, size_t errlen)
{
	if (server_name_ok(text))
		return 0;
	snprintf(err, errlen, "alias \"%s\" is not a host name (" SERVER_NAME_RULE ")", text);
	return -1;
}

/*
 * error_page(CODE, "PATH"): the page is read once, at load time, so a
 * missing file is a configuration error and serving it costs no I/O.
 */
#define ERROR_PAGE_MAX (64 * 1024)

static int error_page_read(const char *file, int line, const char *path, struct error_page *page)
{
	char *body = malloc(ERROR_PAGE_MAX + 1);
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && body != NULL) {
		n = read(fd, body, ERROR_PAGE_MAX + 1);
		if (n > ERROR_PAGE_MAX) {
			config_error(file, line, "error_page: %s is larger than %d bytes", path, ERROR_PAGE_MAX);
			n = -2;
		}
	}
	if (n == -1)
		config_error(file, line, "error_page: cannot read %s: %s", path, strerror(errno));
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

static int error_page_func(const struct httpd_conf *in, const char *file, int line, int argc, const char **argv)
{
	struct httpd_config *config = loading.config;
	struct error_page page, *grown;
	char *end;
	long status;

	if (argc != 2) {
		config_error(file, line, "error_page needs a status and a file: error_page(404, \"/srv/404.html\")");
		return -1;
	}
	errno = 0;
	status = strtol(argv[0], &end, 10);
	if (errno != 0 || *end != '\0' || status < 400 || status > 599) {
		config_error(file, line, "error_page: \"%s\" is not an error status (400-599)", argv[0]);
		return -1;
	}
	if (argv[1][0] != '/') {
		config_error(file, line, "error_page: \"%s\" must be an absolute path", argv[1]);
		return -1;
	}
	if (!loading.collecting || config == NULL)
		return 0;
	memset(&page, 0, sizeof(page));
	page.owner = in;
	page.status = (int)status;
	page.content_type = error_page_type(argv[1]);
	if (error_page_read(file, line, argv[1], &page) < 0)
		return -1;
	grown = realloc(config->error_pages, (config->error_page_count + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(page.body);
		return -1;
	}
	config->error_pages = grown;
	config->error_pages[config->error_page_count++] = page;
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

static const char *const log_levels[] = { "error", "warn", "notice", "info", "debug", NULL };

#define TOP DIRECTIVE_TOP
#define SERVER DIRECTIVE_SERVER
#define LOCATION DIRECTIVE_LOCATION
#define SECONDS(n) ((int64_t)(n) * 1000)

/* What the core itself reads: processes, files, timers of the daemon, virtual hosts, locations. */
static const struct directive core_rows[] = {
	{ "workers", TOP, DIRECTIVE_STR, "auto", .check = workers_check, .store = DIRECTIVE_IN_CONFIG,
	  .build = workers_build },
	{ "user", TOP, DIRECTIVE_STR, "www-data", DIRECTIVE_CONFIG(user) },
	{ "pid_file", TOP, DIRECTIVE_PATH, HTTPD_RUNSTATEDIR "/httpd.pid", DIRECTIVE_CONFIG(pid_file) },
	{ "error_log", TOP, DIRECTIVE_STR, HTTPD_LOGDIR "/error.log", .check = error_log_check,
	  DIRECTIVE_CONFIG(error_log) },
	{ "error_log_level", TOP, DIRECTIVE_ENUM, "notice", .words = log_levels, DIRECTIVE_CONFIG(error_log_level) },
	{ "module_dir", TOP, DIRECTIVE_PATH, HTTPD_MODULEDIR, DIRECTIVE_CONFIG(module_dir) },
	{ "mime_types", TOP, DIRECTIVE_PATH, "/etc/mime.types", DIRECTIVE_CONFIG(mime_types) },
	{ "temp_dir", TOP, DIRECTIVE_PATH, "/var/tmp", DIRECTIVE_CONFIG(temp_dir) },
	{ "worker_threads", TOP, DIRECTIVE_INT, "4", 1, 64, DIRECTIVE_CONFIG(worker_threads) },
	{ "worker_connections", TOP, DIRECTIVE_INT, "4096", 1, 1000000, DIRECTIVE_CONFIG(worker_connections) },
	{ "handler_timeout", TOP, DIRECTIVE_DURATION, "60", 1, SECONDS(1000000), DIRECTIVE_CONFIG(handler_timeout_ms) },
	{ "shutdown_timeout", TOP, DIRECTIVE_DURATION, "10", 1, SECONDS(1000000),
	  DIRECTIVE_CONFIG(shutdown_timeout_ms) },
	{ "shutdown_delay", TOP, DIRECTIVE_DURATION, "0", 0, SECONDS(1000000), DIRECTIVE_CONFIG(shutdown_delay_ms) },
	{ "drain_timeout", TOP, DIRECTIVE_DURATION, "300", 1, SECONDS(1000000), DIRECTIVE_CONFIG(drain_timeout_ms) },
	{ "upgrade_timeout", TOP, DIRECTIVE_DURATION, "30", 1, SECONDS(1000000), DIRECTIVE_CONFIG(upgrade_timeout_ms) },
	{ "file_cache_valid", TOP, DIRECTIVE_DURATION, "1", 0, SECONDS(1000000), DIRECTIVE_CONFIG(file_cache_valid_ms) },
	{ "file_cache_entries", TOP, DIRECTIVE_INT, "1024", 0, 1000000, DIRECTIVE_CONFIG(file_cache_entries) },
	{ "file_cache_size", TOP, DIRECTIVE_SIZE, "32m", 0, INT64_MAX, DIRECTIVE_CONFIG(file_cache_size) },
	{ "file_cache_errors", TOP, DIRECTIVE_BOOL, "false", DIRECTIVE_CONFIG(file_cache_errors) },
	{ "error_page", TOP | SERVER, DIRECTIVE_FUNC, .func = error_page_func },
	{ "aliases", SERVER, DIRECTIVE_LIST, "{}", .check = server_name_check, .store = DIRECTIVE_IN_SERVER },
	{ "default_server", SERVER, DIRECTIVE_BOOL, "false", DIRECTIVE_SERVER_AT(is_default) },
	{ "handler", LOCATION, DIRECTIVE_STR, NULL, .store = DIRECTIVE_IN_LOCATION },
	{ "check", LOCATION, DIRECTIVE_LIST, "{}", 0, LOCATION_CHECKS_MAX, .store = DIRECTIVE_IN_LOCATION },
	{ "filter", LOCATION, DIRECTIVE_LIST, "{}", 0, LOCATION_CHECKS_MAX, .store = DIRECTIVE_IN_LOCATION },
	{ .name = NULL },
};

static int files_check(struct httpd_config *config);

static const struct directive_table core_table = { "core", core_rows, files_check, NULL };

#define TABLES_MAX 16
static const struct directive_table *all_tables[TABLES_MAX] = { &core_table };

void config_tables_set(const struct directive_table *const *t, size_t count)
{
	size_t n = 1;

	for (size_t i = 0; i < count && n < TABLES_MAX; i++)
		all_tables[n++] = t[i];
	directive_tables_set(all_tables, n);
}

/* What the server opens at start is opened now, so -t finds a missing file. */
static int files_check(struct httpd_config *config)
{
	char err[512];
	const char *file;
	int line, fd;

	config_directive_origin(config, (const struct httpd_conf *)config->cfg, "mime_types", &file, &line);
	config->mime = mime_table_load(config->mime_types, err, sizeof(err));
	if (config->mime == NULL) {
		config_report(file, line, err);
		return -1;
	}
	/* O_TMPFILE is what request bodies spill to: make sure it works here. */
	fd = open(config->temp_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EACCES) {
		config_directive_origin(config, (const struct httpd_conf *)config->cfg, "temp_dir", &file, &line);
		config_error(file, line, "temp_dir: cannot make a temporary file in %s: %s", config->temp_dir,
		             strerror(errno));
		return -1;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* --- modules ---------------------------------------------------------------- */

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

/* The module rows of one load: its location options and its top-level (server) options. */
struct module_rows {
	struct directive *location, *top;
	size_t            location_count, top_count;
};

static int rows_add_module(struct httpd_config *config, struct directive **rows, size_t *count,
                           const struct httpd_option *options, unsigned where, const struct module *m,
                           const char *file, int line)
{
	const struct directive *converted;
	const char *clash = NULL;
	int rc;

	if (options == NULL)
		return 0;
	converted = options_rows(options, m->abi_minor, &config->arena);
	if (converted == NULL) {
		config_error(file, line, "module \"%s\": its option table is malformed", m->name);
		return -1;
	}
	for (const struct directive *d = converted; d->name != NULL; d++)
		if (directive_table_row(where, d->name) != NULL) {
			config_error(file, line, "module \"%s\" option \"%s\" clashes with a core directive", m->name, d->name);
			return -1;
		}
	rc = rows_union(rows, count, converted, where, &clash);
	if (rc == -2)
		config_error(file, line, "module \"%s\" option \"%s\" clashes with another module's", m->name, clash);
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
		           (strcmp(key, "handler") == 0 || strcmp(key, "check") == 0 || strcmp(key, "filter") == 0)) {
			struct module_ref *grown = realloc(*refs, (*count + 1) * sizeof(*grown));

			if (grown == NULL)
				return -1;
			*refs = grown;
			grown[*count].location = locations - 1;
			if ((grown[*count].name = strdup(sc.tok)) == NULL)
				return -1;
			(*count)++;
		}
		if (strcmp(key, "check") != 0 && strcmp(key, "filter") != 0)
			key[0] = '\0';   /* a list keeps its key until its closing brace */
	}
	return 0;
}

/* Pass 1: learn which modules the locations name, then load them and gather their options. */
static int modules_load(struct httpd_config *config, struct module_rows *mr)
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
			config_report(file, line, err);
			rc = -1;
			continue;
		}
		if (server_module_add(config, m) < 0 ||
		    rows_add_module(config, &mr->location, &mr->location_count, m->api.options, DIRECTIVE_LOCATION, m,
		                    file, line) < 0 ||
		    rows_add_module(config, &mr->top, &mr->top_count, m->api.server_options, DIRECTIVE_TOP, m,
		                    file, line) < 0)
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
	return m != NULL && m->api.options != NULL && options_has(m->api.options, m->abi_minor, name);
}

/* --- schema and parse --------------------------------------------------------- */

static cfg_opt_t *schema_build(struct httpd_config *config, const struct module_rows *mr)
{
	const char *clash = NULL, *file = config_file(config);
	cfg_opt_t *location, *server, *top;

	location = directive_schema(DIRECTIVE_LOCATION, mr->location, NULL, &config->arena, &clash);
	if (location != NULL) {
		cfg_opt_t blocks[] = { CFG_SEC("location", location, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		                       CFG_END() };

		server = directive_schema(DIRECTIVE_SERVER, NULL, blocks, &config->arena, &clash);
		if (server != NULL) {
			cfg_opt_t top_blocks[] = {
				CFG_SEC("location", location, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
				CFG_SEC("server", server, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
				CFG_END()
			};

			top = directive_schema(DIRECTIVE_TOP, mr->top, top_blocks, &config->arena, &clash);
			if (top != NULL)
				return top;
		}
	}
	if (clash != NULL)
		config_error(file, 0, "a module's server option \"%s\" clashes with another option", clash);
	return NULL;
}

static cfg_t *parse_text(cfg_opt_t *schema, const struct config_source *src)
{
	cfg_t *cfg = cfg_init(schema, 0);

	if (cfg == NULL)
		return NULL;
	cfg_set_error_function(cfg, confuse_error);
	if (cfg_parse_buf(cfg, src->text) != CFG_SUCCESS) {
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

/* --- locations and servers ----------------------------------------------------- */

static int location_module_configure(struct httpd_location *loc, struct location_module *lm,
                                     cfg_t *sec)
{
	char err[1024] = "";

	if (lm->mod->api.configure == NULL)
		return 0;
	if (lm->mod->api.configure(loc, (const struct httpd_conf *)sec, &lm->data, err, sizeof(err)) != 0) {
		config_error(loc->file, loc->line, "location \"%s\": %s", loc->prefix,
		             err[0] ? err : "module configuration failed");
		return -1;
	}
	return 0;
}

/* Whether sec sets a directive that answers by itself (return): then the location needs no handler. */
static bool location_answers(cfg_t *sec)
{
	for (size_t t = 0; t < directive_table_count(); t++)
		for (const struct directive *d = directive_table_at(t)->rows; d->name != NULL; d++)
			if ((d->flags & DIRECTIVE_ANSWERS) && (d->where & DIRECTIVE_LOCATION) &&
			    option_is_set(cfg_getopt(sec, d->name)))
				return true;
	return false;
}

/* The handler and check modules of a location (loaded, not yet configured), and its document root. */
static int location_modules_load(struct httpd_config *config, struct httpd_location *loc, cfg_t *sec)
{
	const char *handler = cfg_getstr(sec, "handler");
	unsigned nchecks = cfg_size(sec, "check"), nfilters = cfg_size(sec, "filter");
	char err[1024];

	loc->methods = ~0u;   /* without a handler, return answers every method */
	loc->checks = calloc(nchecks ? nchecks : 1, sizeof(*loc->checks));
	loc->filters = calloc(nfilters ? nfilters : 1, sizeof(*loc->filters));
	if (loc->checks == NULL || loc->filters == NULL)
		return -1;
	if (handler == NULL && !location_answers(sec)) {
		config_error(loc->file, loc->line, "location \"%s\": no handler (handler = \"static\", ...)", loc->prefix);
		return -1;
	}
	if (handler != NULL) {
		loc->handler.mod = module_load(config->module_dir, handler, err, sizeof(err));
		if (loc->handler.mod == NULL || loc->handler.mod->api.handler == NULL) {
			config_error(loc->file, loc->line, "location \"%s\": handler \"%s\": %s", loc->prefix, handler,
			             loc->handler.mod ? "the module has no handler hook" : err);
			loc->handler.mod = NULL;
			return -1;
		}
		loc->methods = loc->handler.mod->api.methods;
	}
	for (unsigned i = 0; i < nchecks; i++) {
		const struct module *m = module_load(config->module_dir, cfg_getnstr(sec, "check", i), err, sizeof(err));

		if (m == NULL || (m->api.check == NULL && m->api.body_check == NULL)) {
			config_error(loc->file, loc->line, "location \"%s\": check \"%s\": %s", loc->prefix,
			             cfg_getnstr(sec, "check", i), m ? "the module has no check hook" : err);
			return -1;
		}
		loc->checks[loc->check_count++].mod = m;
	}
	for (unsigned i = 0; i < nfilters; i++) {
		const char *name = cfg_getnstr(sec, "filter", i);
		const struct module *m = module_load(config->module_dir, name, err, sizeof(err));

		if (m == NULL || m->api.body_filter == NULL || m->api.coding != NULL) {
			config_error(loc->file, loc->line, "location \"%s\": filter \"%s\": %s", loc->prefix, name,
			             m == NULL ? err : m->api.coding != NULL ? "a content coding is chosen by compress, "
			             "not listed as a filter" : "the module has no body filter");
			return -1;
		}
		for (size_t j = 0; j < loc->filter_count; j++)
			if (loc->filters[j].mod == m) {
				config_error(loc->file, loc->line, "location \"%s\": filter \"%s\" is listed twice",
				             loc->prefix, name);
				return -1;
			}
		loc->filters[loc->filter_count++].mod = m;
	}
	/* $document_root and try_files: the handler's root, when it has one (cfg_getopt would complain of none). */
	for (cfg_opt_t *o = sec->opts; o->name != NULL; o++)
		if (strcmp(o->name, "root") == 0 && o->type == CFGT_STR && option_belongs("root", loc->handler.mod))
			loc->document_root = cfg_getstr(sec, "root");
	return 0;
}

/* The options only the location's own modules understand, then their configure hooks. */
static int location_modules_configure(struct httpd_config *config, struct httpd_location *loc, cfg_t *sec)
{
	const char *handler = cfg_getstr(sec, "handler");
	int rc = 0;

	for (cfg_opt_t *o = sec->opts; o->name != NULL; o++) {
		bool ok;
		const char *file;
		int line;

		if (!option_is_set(o))
			continue;
		ok = directive_table_row(DIRECTIVE_LOCATION, o->name) != NULL || option_belongs(o->name, loc->handler.mod);
		for (size_t i = 0; i < loc->check_count && !ok; i++)
			ok = option_belongs(o->name, loc->checks[i].mod);
		for (size_t i = 0; i < loc->filter_count && !ok; i++)
			ok = option_belongs(o->name, loc->filters[i].mod);
		if (!ok) {
			config_directive_origin(config, (const struct httpd_conf *)sec, o->name, &file, &line);
			config_error(file, line, "location \"%s\": option \"%s\" is not one of handler \"%s\"", loc->prefix,
			             o->name, handler != NULL ? handler : "(none)");
			rc = -1;
		}
	}
	if (rc != 0)
		return rc;
	if (loc->handler.mod != NULL && location_module_configure(loc, &loc->handler, sec) < 0)
		rc = -1;
	for (size_t i = 0; i < loc->check_count; i++)
		if (location_module_configure(loc, &loc->checks[i], sec) < 0)
			rc = -1;
	for (size_t i = 0; i < loc->filter_count; i++)
		if (location_module_configure(loc, &loc->filters[i], sec) < 0)
			rc = -1;
	return rc;
}

static int location_build(struct httpd_config *config, size_t index, cfg_t *sec, struct httpd_server *server,
                          cfg_t *server_sec)
{
	struct httpd_location *loc = &config->locations[index];
	struct directive_scope scope = { .config = config, .server = server, .location = loc, .root = config->cfg,
	                                 .server_sec = server_sec, .location_sec = sec };
	int rc = 0;

	block_origin(config, config->src.location_lines, config->src.location_count, sec, &loc->file, &loc->line);
	loc->server = server;
	loc->prefix = loc->path = cfg_title(sec);
	loc->prefix_len = strlen(loc->prefix);
	loc->config = config;
	loc->root_fd = -1;
	/* The layers read the title (its kind, a regex) before the location's rows are stored. */
	for (size_t t = 0; t < directive_table_count(); t++)
		if (directive_table_at(t)->location != NULL && directive_table_at(t)->location(config, loc) < 0)
			return -1;
	if (location_modules_load(config, loc, sec) < 0)
		return -1;
	scope.file = loc->file;
	scope.line = loc->line;
	if (directive_store(DIRECTIVE_IN_LOCATION, &scope) < 0)
		rc = -1;
	if (rc == 0 && location_modules_configure(config, loc, sec) < 0)
		rc = -1;
	return rc;
}

static char *lower_dup(const char *text)
{
	char *out = strdup(text);

	for (char *p = out; p != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}

/* The server's name and aliases, lower case. */
static int server_names(struct httpd_server *srv, cfg_t *sec)
{
	size_t aliases = cfg_size(sec, "aliases");

	srv->names = calloc(aliases + 1, sizeof(*srv->names));
	if (srv->names == NULL || (srv->names[0] = lower_dup(srv->name)) == NULL)
		return -1;
	srv->name_count = 1;
	for (size_t i = 0; i < aliases; i++) {
		if ((srv->names[srv->name_count] = lower_dup(cfg_getnstr(sec, "aliases", (unsigned)i))) == NULL)
			return -1;
		srv->name_count++;
	}
	return 0;
}

/* One server block (sec), or the top level (sec NULL); its locations go to config->locations[*next...]. */
static int server_build(struct httpd_config *config, struct httpd_server *srv, cfg_t *sec, size_t *next)
{
	cfg_t *holder = sec != NULL ? sec : config->cfg;
	size_t count = cfg_size(holder, "location");
	struct directive_scope scope = { .config = config, .server = srv, .root = config->cfg, .server_sec = sec };
	int rc = 0;

	srv->config = config;
	srv->owner = holder;
	if (sec != NULL) {
		block_origin(config, config->src.server_lines, config->src.server_count, sec, &srv->file, &srv->line);
		srv->name = cfg_title(sec);
		if (!server_name_ok(srv->name)) {
			config_error(srv->file, srv->line, "server \"%s\" is not a host name (" SERVER_NAME_RULE ")",
			             srv->name);
			rc = -1;
		}
		if (server_names(srv, sec) < 0)
			return -1;
	} else {
		config_source_origin(&config->src, 0, &srv->file, &srv->line);
	}
	scope.file = srv->file;
	scope.line = srv->line;
	if (directive_store(DIRECTIVE_IN_SERVER, &scope) < 0)
		rc = -1;
	srv->locations = &config->locations[*next];
	for (size_t i = 0; i < count; i++) {
		if (location_build(config, *next, cfg_getnsec(holder, "location", (unsigned)i), srv, sec) < 0)
			rc = -1;
		(*next)++;
		srv->location_count++;
	}
	return rc;
}

/*
 * Two servers must never answer to the same name, nor both claim to be the
 * default.  One table of every name, so 5,000 servers take 5,000 lookups,
 * not every pair compared.
 */
static int servers_check(struct httpd_config *config)
{
	const struct httpd_server *def = NULL;
	struct name_table seen;
	size_t names = 0;
	int rc = 0;

	for (size_t i = 0; i < config->server_count; i++)
		names += config->servers[i].name_count;
	if (name_table_init(&seen, names) < 0)
		return -1;
	for (size_t a = 0; a < config->server_count; a++) {
		const struct httpd_server *sa = &config->servers[a];

		if (sa->is_default && def != NULL) {
			config_error(sa->file, sa->line, "server \"%s\": default_server is already server \"%s\" at %s:%d",
			             sa->name, def->name, def->file, def->line);
			rc = -1;
		} else if (sa->is_default) {
			def = sa;
		}
		for (size_t i = 0; i < sa->name_count; i++) {
			const char *n = sa->names[i];
			const struct httpd_server *first;

			if (name_table_add(&seen, n, strlen(n), sa) == 0)
				continue;
			first = name_table_find(&seen, n, strlen(n));
			if (first != sa) {
				config_error(sa->file, sa->line, "server \"%s\": the name \"%s\" is already server \"%s\"'s at %s:%d",
				             sa->name, n, first->name, first->file, first->line);
				rc = -1;
			}
		}
	}
	name_table_free(&seen);
	return rc;
}

static int server_modules_init(struct httpd_config *config);

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
	/* The top-level locations are a server of their own, as before server blocks existed. */
	if (top > 0 || blocks == 0) {
		if (server_build(config, &config->servers[config->server_count++], NULL, &next) < 0)
			rc = -1;
	}
	for (size_t i = 0; i < blocks; i++)
		if (server_build(config, &config->servers[config->server_count++],
		                 cfg_getnsec(root, "server", (unsigned)i), &next) < 0)
			rc = -1;
	if (rc != 0 || servers_check(config) < 0)
		return -1;
	config->default_server = &config->servers[0];
	for (size_t i = 0; i < config->server_count; i++)
		if (config->servers[i].is_default)
			config->default_server = &config->servers[i];
	config->vhosts = config->server_count > 1;
	return vhost_index(config);
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
			config_report(file, 0, err[0] ? err : "module server_init failed");
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
	struct module_rows mr = { 0 };
	struct directive_rowset rowset;
	struct directive_scope scope;
	int rc = -1;

	if (config == NULL)
		return NULL;
	if (directive_table_count() == 0)
		directive_tables_set(all_tables, 1);
	loading.config = config;
	loading.log_errors = log_errors;
	loading.errors = 0;
	directive_lines_reset();
	options_source_set(&config->src);
	if (config_source_load(&config->src, path, config_report) < 0)
		goto out;
	if (modules_load(config, &mr) < 0)
		goto out;
	rowset = (struct directive_rowset){ mr.location, mr.top };
	directive_rowset_activate(&rowset);
	if ((config->schema = schema_build(config, &mr)) == NULL)
		goto out;
	loading.collecting = true;
	config->cfg = parse_text(config->schema, &config->src);
	loading.collecting = false;
	if (config->cfg == NULL)
		goto out;
	scope = (struct directive_scope){ .config = config, .root = config->cfg, .file = config_file(config) };
	if (directive_store(DIRECTIVE_IN_CONFIG, &scope) < 0)
		goto out;
	rc = servers_build(config);
	for (size_t i = 0; rc == 0 && i < directive_table_count(); i++) {
		const struct directive_table *t = directive_table_at(i);

		if (t->finish != NULL && t->finish(config) < 0)
			rc = -1;
	}
out:
	directive_rowset_activate(NULL);
	directive_lines_reset();
	free(mr.location);
	free(mr.top);
	loading.config = NULL;
	loading.collecting = false;
	if (rc != 0 || loading.errors > 0) {
		if (loading.errors == 0)
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

		if (loc->root_fd >= 0)
			close(loc->root_fd);
		if (loc->handler.mod != NULL && loc->handler.mod->api.release != NULL && loc->handler.data)
			loc->handler.mod->api.release(loc->handler.data);
		for (size_t j = 0; j < loc->check_count; j++)
			if (loc->checks[j].mod->api.release != NULL && loc->checks[j].data)
				loc->checks[j].mod->api.release(loc->checks[j].data);
		free(loc->checks);
		for (size_t j = 0; j < loc->filter_count; j++)
			if (loc->filters[j].mod->api.release != NULL && loc->filters[j].data)
				loc->filters[j].mod->api.release(loc->filters[j].data);
		free(loc->filters);
	}
	for (size_t i = config->module_count; i > 0; i--) {
		struct server_module *sm = &config->modules[i - 1];

		if (sm->inited && sm->mod->api.server_exit != NULL)
			sm->mod->api.server_exit(sm->data);
	}
	free(config->modules);
	for (size_t i = config->owned_count; i > 0; i--)
		config->owned[i - 1].release(config->owned[i - 1].ptr);
	free(config->owned);
	mime_table_free(config->mime);
	for (size_t i = 0; i < config->server_count; i++) {
		for (size_t j = 0; j < config->servers[i].name_count; j++)
			free(config->servers[i].names[j]);
		free(config->servers[i].names);
	}
	vhost_index_free(config);
	free(config->servers);
	free(config->locations);
	for (size_t i = 0; i < config->error_page_count; i++)
		free(config->error_pages[i].body);
	free(config->error_pages);
	if (config->cfg != NULL)
		cfg_free(config->cfg);
	option_arena_free(&config->arena);
	config_source_free(&config->src);
	free(config);
}

const char *httpd_location_prefix(const struct httpd_location *loc)
{
	return loc->prefix;
}

void httpd_location_set_methods(const struct httpd_location *loc, unsigned methods)
{
	/* Locations are the config's own; const only keeps modules from other fields. */
	struct httpd_location *own = (struct httpd_location *)(uintptr_t)loc;

	own->methods = own->handler.mod != NULL ? own->handler.mod->api.methods & methods : methods;
}

void *httpd_location_server_data(const struct httpd_location *loc, const char *module)
{
	const struct httpd_config *config = loc->config;

	for (size_t i = 0; i < config->module_count; i++)
		if (strcmp(config->modules[i].mod->name, module) == 0)
			return config->modules[i].data;
	return NULL;
}
