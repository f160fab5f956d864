/*
 * A module for the test suite only (never installed): exercises every
 * hook of ABI 2 and misbehaves on demand.
 *   fail_init = true        worker_init fails, so every worker dies at once
 *   exit_log = "/path"      worker_exit appends "exit PREFIX" there
 *   crash_path = "/crash"   a request for this path kills the worker (abort)
 *   filter_tag = "x"        the filter adds X-Filter: x to every answer
 *   deny_body = "evil"      the body-check refuses a body containing it (403)
 *   log_file = "/path"      the log hook appends "STATUS PATH BYTES"
 *   cancel_log = "/path"    a cancelled asynchronous request appends "cancelled"
 *   files_root = "/dir"     /file/NAME?TYPE answers the file through the open-file cache as TYPE
 *   body_tap = "/path"      a body filter passing chunks on untouched; at the end appends
 *                           "file F memory M bytes B" (how many of each kind it passed) there
 *   key "ID" { secret = "..." }            a titled, repeatable section
 *   testmod_store { entries = N }          a server-wide section (server_init)
 *   typed_size = "64k", typed_wait = "1500ms", typed_mode = "safe", typed_count = 3
 *                            typed options (ABI 2.1), checked by the core at their lines
 *   typed_expr = "$uri ..."  an expression (ABI 2.2), answered at /expr
 *   $testmod_tag             a variable (ABI 2.2): "tag-" and the X-Tag header
 * and answers, whatever the options:
 *   /stream        a streamed body of five lines (chunked on 1.1)
 *   /gzipped       4000 bytes of text it asks the core to gzip (httpd_response_gzip)
 *   /status/NNN    status NNN with a body (the core must drop it for 204/304)
 *   /body          the request body, as received and decoded
 *   /note          the note the check phase left ("-" without one)
 *   /info          local address and port, scheme, request id, client port
 *   /keys          the key sections, "ID=secret" per line
 *   /server-data   what server_init made of testmod_store
 *   /typed         the typed options as the module reads them
 *   /async/timer?ms=N   answers from a timer
 *   /async/fifo?PATH    answers with what a writer puts into the FIFO PATH
 *   /blocking?PATH      the same, with a blocking read on the thread pool
 * As a check module (check = {"testmod"}): X-Deny refuses with 403,
 * X-Auth refuses with 401 and WWW-Authenticate, X-Answer answers from the
 * check phase, anything else goes on (leaving a note for the handler).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <httpd/module.h>

struct testmod_conf {
	bool  fail_init;
	char  prefix[256];
	char  crash_path[256];
	char  filter_tag[64];
	char  deny_body[64];
	char  exit_log[256];
	char  log_file[256];
	char  body_tap[256];
	char  cancel_log[256];
	char  keys[1024];
	long *store_entries;   /* from server_init */
	int   files_fd;        /* files_root, or -1 */
	char  typed[256];      /* the typed options, as read */
	const struct httpd_expr *expr;   /* typed_expr */
};

static const struct httpd_option key_options[] = {
	HTTPD_OPTION_STR("secret", NULL),
	HTTPD_OPTION_END
};

static const char *const typed_modes[] = { "fast", "safe", NULL };

static const struct httpd_option testmod_options[] = {
	HTTPD_OPTION_BOOL("fail_init", "false"),
	HTTPD_OPTION_STR("crash_path", ""),
	HTTPD_OPTION_STR("filter_tag", ""),
	HTTPD_OPTION_STR("deny_body", ""),
	HTTPD_OPTION_STR("exit_log", ""),
	HTTPD_OPTION_STR("log_file", ""),
	HTTPD_OPTION_STR("cancel_log", ""),
	HTTPD_OPTION_STR("files_root", ""),
	HTTPD_OPTION_STR("body_tap", ""),
	HTTPD_OPTION_SECTION("key", HTTPD_OPT_MULTI | HTTPD_OPT_TITLED, key_options),
	HTTPD_OPTION_SIZE("typed_size", "16k", 1024, 1024 * 1024),
	HTTPD_OPTION_DURATION("typed_wait", "2", 0, 10000),
	HTTPD_OPTION_ENUM("typed_mode", "fast", typed_modes),
	HTTPD_OPTION_INT_RANGE("typed_count", "1", 1, 10),
	HTTPD_OPTION_EXPR("typed_expr", "$request_method $testmod_tag"),
	HTTPD_OPTION_END
};

static const struct httpd_option store_options[] = {
	HTTPD_OPTION_INT("entries", "16"),
	HTTPD_OPTION_END
};

static const struct httpd_option testmod_server_options[] = {
	HTTPD_OPTION_SECTION("testmod_store", 0, store_options),
	HTTPD_OPTION_END
};

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void append_line(const char *path, const char *line)
{
	int fd;

	if (path[0] == '\0')
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, strlen(line)) < 0) {
		/* A test log: nothing to do about a failed write. */
	}
	close(fd);
}

static int testmod_server_init(const struct httpd_conf *server, void **server_data, char *err,
                               size_t errlen)
{
	const struct httpd_conf *store = httpd_conf_section(server, "testmod_store", 0);
	long *entries = malloc(sizeof(*entries));

	if (entries == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*entries = store != NULL ? httpd_conf_int(store, "entries") : -1;
	if (*entries == 0) {
		char where[300];

		snprintf(err, errlen, "%s: testmod_store: entries must not be 0",
		         httpd_conf_origin(store, where, sizeof(where)));
		free(entries);
		return -1;
	}
	*server_data = entries;
	return 0;
}

static void testmod_server_exit(void *server_data)
{
	free(server_data);
}

static int testmod_configure(const struct httpd_location *loc, const struct httpd_conf *opts,
                             void **data, char *err, size_t errlen)
{
	struct testmod_conf *conf = calloc(1, sizeof(*conf));
	size_t used = 0;

	if (conf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	conf->fail_init = httpd_conf_bool(opts, "fail_init");
	copy(conf->prefix, sizeof(conf->prefix), httpd_location_prefix(loc));
	copy(conf->crash_path, sizeof(conf->crash_path), httpd_conf_str(opts, "crash_path"));
	copy(conf->filter_tag, sizeof(conf->filter_tag), httpd_conf_str(opts, "filter_tag"));
	copy(conf->body_tap, sizeof(conf->body_tap), httpd_conf_str(opts, "body_tap"));
	copy(conf->deny_body, sizeof(conf->deny_body), httpd_conf_str(opts, "deny_body"));
	copy(conf->exit_log, sizeof(conf->exit_log), httpd_conf_str(opts, "exit_log"));
	copy(conf->log_file, sizeof(conf->log_file), httpd_conf_str(opts, "log_file"));
	copy(conf->cancel_log, sizeof(conf->cancel_log), httpd_conf_str(opts, "cancel_log"));
	for (size_t i = 0; i < httpd_conf_count(opts, "key"); i++) {
		const struct httpd_conf *key = httpd_conf_section(opts, "key", i);
		const char *secret = httpd_conf_str(key, "secret");
		int n;

		if (secret == NULL) {
			snprintf(err, errlen, "key \"%s\": secret is required", httpd_conf_title(key));
			free(conf);
			return -1;
		}
		n = snprintf(conf->keys + used, sizeof(conf->keys) - used, "%s=%s\n", httpd_conf_title(key), secret);
		if (n > 0 && (size_t)n < sizeof(conf->keys) - used)
			used += (size_t)n;
	}
	{
		uint64_t size = 0, wait = 0;

		httpd_conf_size(opts, "typed_size", &size);
		httpd_conf_duration(opts, "typed_wait", &wait);
		snprintf(conf->typed, sizeof(conf->typed), "size %llu wait %llu mode %d %s count %ld\n",
		         (unsigned long long)size, (unsigned long long)wait, httpd_conf_enum(opts, "typed_mode"),
		         httpd_conf_str(opts, "typed_mode"), httpd_conf_int(opts, "typed_count"));
	}
	conf->expr = httpd_conf_expr(opts, "typed_expr");
	conf->store_entries = httpd_location_server_data(loc, "testmod");
	conf->files_fd = -1;
	if (httpd_conf_str(opts, "files_root")[0] != '\0' &&
	    (conf->files_fd = open(httpd_conf_str(opts, "files_root"), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "files_root: %s", strerror(errno));
		free(conf);
		return -1;
	}
	*data = conf;
	return 0;
}

static void testmod_release(void *data)
{
	struct testmod_conf *conf = data;

	if (conf->files_fd >= 0)
		close(conf->files_fd);
	httpd_expr_free(conf->expr);
	free(conf);
}

static const char *tag_variable(const struct httpd_request *req, char *scratch, size_t size)
{
	const char *tag = httpd_request_header(req, "X-Tag");

	if (tag == NULL)
		return NULL;
	snprintf(scratch, size, "tag-%s", tag);
	return scratch;
}

static int testmod_worker_init(void *data)
{
	struct testmod_conf *conf = data;

	return conf->fail_init ? -1 : 0;
}

static void testmod_worker_exit(void *data)
{
	struct testmod_conf *conf = data;
	char line[300];

	snprintf(line, sizeof(line), "exit %s\n", conf->prefix);
	append_line(conf->exit_log, line);
}

struct stream_state {
	int line;
};

static ssize_t stream_lines(void *ctx, char *buf, size_t len)
{
	struct stream_state *st = ctx;
	int n;

	if (st->line >= 5)
		return 0;
	n = snprintf(buf, len, "line %d\n", st->line++);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

static int text(struct httpd_response *res, const char *body)
{
	if (body == NULL || httpd_response_add_header(res, "Content-Type", "text/plain") < 0)
		return 500;
	httpd_response_set_body_buffer(res, body, strlen(body));
	return HTTPD_OK;
}

/* --- asynchronous answers ------------------------------------------------- */

struct waiter {
	struct testmod_conf   *conf;
	struct httpd_response *res;
	const char            *path;
	int                    fd;
	char                   buf[256];
	ssize_t                got;
};

static void waiter_cancelled(void *arg)
{
	struct waiter *wt = arg;
	char line[300];

	if (wt->fd >= 0)
		close(wt->fd);
	wt->fd = -1;
	snprintf(line, sizeof(line), "cancelled %s\n", wt->path);
	append_line(wt->conf->cancel_log, line);
}

static void waiter_close(void *arg)
{
	struct waiter *wt = arg;

	if (wt->fd >= 0)
		close(wt->fd);
	wt->fd = -1;
}

static void timer_fired(struct httpd_request *req, void *arg, unsigned events)
{
	struct waiter *wt = arg;

	httpd_request_finish(req, events & HTTPD_EVENT_TIMER ? text(wt->res, "timer fired\n") : 500);
}

static void fifo_readable(struct httpd_request *req, void *arg, unsigned events)
{
	struct waiter *wt = arg;
	ssize_t n = read(wt->fd, wt->buf, sizeof(wt->buf) - 1);

	(void)events;
	if (n < 0 && errno == EAGAIN)
		return;   /* spurious: keep waiting */
	wt->buf[n > 0 ? n : 0] = '\0';
	httpd_request_finish(req, text(wt->res, httpd_pool_printf(req->pool, "fifo: %s\n", wt->buf)));
}

/* On a pool thread: a read that blocks until the test writes. */
static void fifo_read_blocking(void *arg)
{
	struct waiter *wt = arg;
	int fd = open(wt->path, O_RDONLY | O_CLOEXEC);

	wt->got = fd >= 0 ? read(fd, wt->buf, sizeof(wt->buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
}

static void fifo_read_done(struct httpd_request *req, void *arg)
{
	struct waiter *wt = arg;

	if (wt->got < 0) {
		httpd_request_finish(req, 500);
		return;
	}
	wt->buf[wt->got] = '\0';
	httpd_request_finish(req, text(wt->res, httpd_pool_printf(req->pool, "blocking: %s\n", wt->buf)));
}

static int async_start(struct testmod_conf *conf, struct httpd_request *req, struct httpd_response *res)
{
	struct waiter *wt = httpd_pool_alloc(req->pool, sizeof(*wt));

	if (wt == NULL || req->query == NULL)
		return wt == NULL ? 500 : 400;
	memset(wt, 0, sizeof(*wt));
	wt->conf = conf;
	wt->res = res;
	wt->fd = -1;
	wt->path = req->query;
	if (strcmp(req->path_rest, "/async/timer") == 0) {
		unsigned ms = (unsigned)strtoul(req->query + (strncmp(req->query, "ms=", 3) == 0 ? 3 : 0), NULL, 10);

		return httpd_event_timer(req, ms, timer_fired, wt) != NULL ? HTTPD_PENDING : 500;
	}
	if (strcmp(req->path_rest, "/blocking") == 0)
		return httpd_run_blocking(req, fifo_read_blocking, fifo_read_done, wt) == 0 ? HTTPD_PENDING : 500;
	wt->fd = open(wt->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (wt->fd < 0 || httpd_pool_cleanup(req->pool, waiter_close, wt) < 0 ||
	    httpd_request_on_cancel(req, waiter_cancelled, wt) < 0)
		return 500;
	return httpd_event_fd(req, wt->fd, HTTPD_EVENT_READ, fifo_readable, wt) != NULL ? HTTPD_PENDING : 500;
}

static int testmod_handle(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct testmod_conf *conf = data;

	if (conf->crash_path[0] != '\0' && strcmp(req->path, conf->crash_path) == 0)
		abort();
	if (strcmp(req->path_rest, "/stream") == 0) {
		struct stream_state *st = httpd_pool_alloc(req->pool, sizeof(*st));

		if (st == NULL || httpd_response_add_header(res, "Content-Type", "text/plain") < 0)
			return 500;
		st->line = 0;
		httpd_response_set_body_stream(res, stream_lines, st);
		return HTTPD_OK;
	}
	if (strcmp(req->path_rest, "/gzipped") == 0) {
		/* The handler asks for gzip itself (httpd_response_gzip, kept from before minor 3). */
		static char text_body[4000];

		memset(text_body, 'z', sizeof(text_body));
		if (httpd_response_add_header(res, "Content-Type", "text/plain") < 0)
			return 500;
		httpd_response_set_body_buffer(res, text_body, sizeof(text_body));
		if (httpd_response_gzip(res, 1) < 0 && httpd_response_add_header(res, "X-Gzip", "refused") < 0)
			return 500;
		return HTTPD_OK;
	}
	if (strncmp(req->path_rest, "/status/", 8) == 0) {
		httpd_response_set_status(res, atoi(req->path_rest + 8));
		httpd_response_set_body_buffer(res, "should-not-be-sent", 18);
		return HTTPD_OK;
	}
	if (strcmp(req->path_rest, "/body") == 0) {
		const char *body = httpd_request_body_load(req);

		if (body == NULL || httpd_response_add_header(res, "Content-Type", "application/octet-stream") < 0)
			return 500;
		httpd_response_set_body_buffer(res, body, (size_t)req->body_len);
		return HTTPD_OK;
	}
	if (strcmp(req->path_rest, "/note") == 0) {
		const char *note = httpd_request_note(req, "testmod.check");

		return text(res, httpd_pool_printf(req->pool, "note: %s\n", note ? note : "-"));
	}
	if (strcmp(req->path_rest, "/info") == 0)
		return text(res, httpd_pool_printf(req->pool, "local %s %u\nscheme %s\nid %s\nclient %s %u\n",
		                                   req->local_addr, req->local_port, req->scheme,
		                                   req->request_id, req->client_addr, req->client_port));
	if (strcmp(req->path_rest, "/keys") == 0)
		return text(res, conf->keys);
	if (strcmp(req->path_rest, "/typed") == 0)
		return text(res, conf->typed);
	if (strcmp(req->path_rest, "/expr") == 0)
		return text(res, httpd_pool_printf(req->pool, "[%s]\n", httpd_expr_eval(conf->expr, req, NULL)));
	if (strcmp(req->path_rest, "/server-data") == 0)
		return text(res, httpd_pool_printf(req->pool, "entries %ld\n",
		                                   conf->store_entries ? *conf->store_entries : -2));
	if (strncmp(req->path_rest, "/async/", 7) == 0 || strcmp(req->path_rest, "/blocking") == 0)
		return async_start(conf, req, res);
	if (strncmp(req->path_rest, "/file/", 6) == 0 && conf->files_fd >= 0) {
		const struct httpd_file *file = httpd_file_open(req, conf->files_fd, req->path_rest + 6);

		if (file == NULL)
			return httpd_status_from_errno(errno);
		return httpd_respond_cached_file(req, res, file, req->query ? req->query : "text/plain", NULL);
	}
	return text(res, "testmod\n");
}

static int testmod_check(void *data, struct httpd_request *req, struct httpd_response *res)
{
	static const char body[] = "answered by the check phase\n";

	(void)data;
	if (httpd_request_header(req, "X-Deny") != NULL)
		return 403;
	if (httpd_request_header(req, "X-Auth") != NULL) {
		/* RFC 9110 §11.6.1: a 401 must say how to authenticate; the core keeps it on the error page. */
		if (httpd_response_add_header(res, "WWW-Authenticate", "Signature realm=\"test\"") < 0)
			return 500;
		return 401;
	}
	if (httpd_request_header(req, "X-Answer") != NULL) {
		httpd_response_set_status(res, 200);
		httpd_response_set_body_buffer(res, body, sizeof(body) - 1);
		return HTTPD_OK;
	}
	if (httpd_request_note_set(req, "testmod.check", "passed") < 0)
		return 500;
	return HTTPD_DECLINED;
}

static int testmod_body_check(void *data, struct httpd_request *req, struct httpd_response *res,
                              enum httpd_body_event ev, const void *buf, size_t len)
{
	struct testmod_conf *conf = data;

	(void)req;
	(void)res;
	if (ev == HTTPD_BODY_START)
		return conf->deny_body[0] != '\0' ? HTTPD_OK : HTTPD_DECLINED;
	if (ev == HTTPD_BODY_DATA && memmem(buf, len, conf->deny_body, strlen(conf->deny_body)) != NULL)
		return 403;
	return HTTPD_OK;
}

static int testmod_filter(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct testmod_conf *conf = data;

	(void)req;
	if (conf->filter_tag[0] != '\0' && httpd_response_add_header(res, "X-Filter", conf->filter_tag) < 0)
		return 500;
	return HTTPD_OK;
}

/* body_tap: a body filter that passes every chunk on untouched, and says what kinds it saw. */
struct body_tap {
	const char *path;
	unsigned long long files, memory, bytes;
};

static int tap_start(void *data, struct httpd_request *req, struct httpd_response *res, void **ctx)
{
	struct testmod_conf *conf = data;
	struct body_tap *t;

	(void)res;
	if (conf->body_tap[0] == '\0')
		return HTTPD_DECLINED;
	t = httpd_pool_alloc(req->pool, sizeof(*t));
	if (t == NULL)
		return 500;
	*t = (struct body_tap){ conf->body_tap, 0, 0, 0 };
	*ctx = t;
	return HTTPD_OK;
}

static int tap_filter(void *ctx, struct httpd_body *in, struct httpd_chunk *out, size_t max)
{
	struct body_tap *t = ctx;
	int rc = httpd_body_pull(in, out, max);

	if (rc == 1) {
		if (out->data == NULL)
			t->files++;
		else
			t->memory++;
		t->bytes += out->len;
	} else if (rc == 0) {
		char line[128];

		snprintf(line, sizeof(line), "file %llu memory %llu bytes %llu\n", t->files, t->memory, t->bytes);
		append_line(t->path, line);
	}
	return rc;
}

static void testmod_log(void *data, const struct httpd_request *req, const struct httpd_response *res)
{
	struct testmod_conf *conf = data;
	char line[600];

	snprintf(line, sizeof(line), "%d %s %llu\n", httpd_response_status(res), req->path ? req->path : "-",
	         (unsigned long long)httpd_response_bytes_sent(res));
	append_line(conf->log_file, line);
}

static int testmod_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "testmod");
	httpd_module_options(api, testmod_options);
	httpd_module_server_options(api, testmod_server_options);
	httpd_module_variable(api, "testmod_tag", tag_variable);
	httpd_hook_server_init(api, testmod_server_init);
	httpd_hook_server_exit(api, testmod_server_exit);
	httpd_hook_configure(api, testmod_configure);
	httpd_hook_release(api, testmod_release);
	httpd_hook_worker_init(api, testmod_worker_init);
	httpd_hook_worker_exit(api, testmod_worker_exit);
	httpd_hook_check(api, testmod_check);
	httpd_hook_body_check(api, testmod_body_check);
	httpd_hook_handler(api, testmod_handle, HTTPD_METHOD_GET | HTTPD_METHOD_HEAD | HTTPD_METHOD_POST);
	httpd_hook_filter(api, testmod_filter);
	httpd_hook_body_filter(api, tap_start, tap_filter);
	httpd_hook_log(api, testmod_log);
	return 0;
}

HTTPD_MODULE(testmod_register)
