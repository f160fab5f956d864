/*
 * prefork-httpd module API, ABI 2.
 *
 * A module is a shared object in the modules directory named NAME.so.  It
 * exports one registration function through HTTPD_MODULE(); the core calls
 * it once at load time with a hook table the core owns, and the module
 * registers the hooks and options it uses.  A hook added to a later ABI 2
 * server never changes what a module exports, so modules built for ABI 2
 * keep loading.  See httpd-module(7) for the whole contract and the phases.
 */
#ifndef HTTPD_MODULE_H
#define HTTPD_MODULE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Bumped only when something a built module relies on changes meaning or
 * layout.  New hooks, new registration functions and new fields at the end
 * of struct httpd_request do not bump it.  The loader refuses a module built
 * for another version, naming both.
 */
#define HTTPD_MODULE_ABI 2

/*
 * Raised when ABI 2 gains something a module may come to need (an option
 * type, a field at the end of struct httpd_option): a module built against
 * minor N loads in any ABI 2 server of minor N or later, and a server
 * refuses a module that needs a newer minor than its own, naming both.
 * Minor 1: option types SIZE, DURATION and ENUM, and bounds (min, max).
 * Minor 2: variables a module offers (httpd_module_variable), and
 * expressions (HTTPD_OPT_EXPR, httpd_conf_expr, httpd_expr_eval).
 * Minor 3: body filters (httpd_hook_body_filter, httpd_body_pull,
 * httpd_body_read) and content codings (httpd_module_content_coding,
 * httpd_response_coding).
 * Minor 4: httpd_response_set_date and httpd_http_date_parse (a cache
 * answering with the Date it stored), httpd_pool_new and httpd_pool_free.
 * Minor 5: checks that wait (HTTPD_PENDING from a check, or from a body
 * check at END, then httpd_request_check_done), and Redis (httpd_redis_*).
 */
#define HTTPD_MODULE_ABI_MINOR 5

#define HTTPD_MODULE_ABI_SYMBOL  "httpd_module_abi"
#define HTTPD_MODULE_ABI_MINOR_SYMBOL "httpd_module_abi_minor"
#define HTTPD_MODULE_INIT_SYMBOL "httpd_module_init"

/* Request methods, as bits so a module can declare the set it handles. */
enum httpd_method {
	HTTPD_METHOD_GET     = 1u << 0,
	HTTPD_METHOD_HEAD    = 1u << 1,
	HTTPD_METHOD_POST    = 1u << 2,
	HTTPD_METHOD_PUT     = 1u << 3,
	HTTPD_METHOD_DELETE  = 1u << 4,
	HTTPD_METHOD_OPTIONS = 1u << 5,
	HTTPD_METHOD_TRACE   = 1u << 6,
	HTTPD_METHOD_CONNECT = 1u << 7,
	HTTPD_METHOD_PATCH   = 1u << 8,
	/* Any other RFC 9110 method token (PROPFIND, MKCOL, ...): see method_name. */
	HTTPD_METHOD_OTHER   = 1u << 9,
};

/* Hook return values besides an HTTP status code. */
#define HTTPD_OK        0   /* done: the response is filled in, or go on */
#define HTTPD_DECLINED (-1) /* no objection / not interested: go on */
#define HTTPD_PENDING  (-2) /* handler: the response comes later (httpd_request_finish); check: the verdict
                               * comes later (httpd_request_check_done) */

struct httpd_pool;
struct httpd_location;
struct httpd_response;
struct httpd_conf;
struct httpd_module_api;
struct httpd_event;

struct httpd_header {
	const char *name;       /* NUL-terminated, as received */
	const char *value;      /* NUL-terminated, surrounding whitespace removed */
	size_t      name_len;
	size_t      value_len;
};

/*
 * What a module sees of a request.  The core owns it; modules read the
 * fields and change the request only through the functions below.  Every
 * pointer lives until the request ends.  New fields are only ever added at
 * the end.
 */
struct httpd_request {
	unsigned                   method;       /* one enum httpd_method bit */
	const char                *method_name;  /* as sent, e.g. "PROPFIND" */
	const char                *target;       /* request-target as received, never decoded */
	const char                *path;         /* decoded and normalised, starts with '/' */
	const char                *path_rest;    /* path after the location prefix, starts with '/' */
	const char                *query;        /* raw query without '?', or NULL */
	const char                *host;         /* Host header (or absolute-form authority), or NULL */
	int                        version;      /* 10 for HTTP/1.0, 11 for HTTP/1.1, 20 for HTTP/2 */
	const struct httpd_header *headers;
	size_t                     header_count;
	/*
	 * The body, once the body phase is over (handler, filters, log): in
	 * memory when it was small (body != NULL), else in an unlinked
	 * temporary file (httpd_request_body_fd).  body_len is its length in
	 * both cases.  NULL and 0 while the body is still arriving, or when a
	 * body hook took it piece by piece.
	 */
	const char                *body;
	uint64_t                   body_len;
	const char                *client_addr;  /* textual peer address */
	const struct httpd_location *location;
	struct httpd_pool         *pool;         /* freed when the request ends */
	/* ABI 2 */
	unsigned                   client_port;
	const char                *local_addr;   /* the address the client connected to */
	unsigned                   local_port;
	const char                *scheme;       /* "http" (or "https" on TLS listeners) */
	const char                *request_id;   /* unique per request, for logs and tracing */
	int64_t                    content_length; /* declared Content-Length, -1 if none (chunked) */
	int                        chunked;      /* body sent with chunked framing */
	/*
	 * The TCP peer (on a proxy_protocol listener, the client the PROXY
	 * preamble named).  client_addr is the same, unless the peer is a
	 * trusted proxy (real_ip_from) that named the client in real_ip_header.
	 */
	const char                *peer_addr;
};

/* --- Options: what a module adds to the configuration ------------------- */

enum httpd_option_type {
	HTTPD_OPT_END = 0,
	HTTPD_OPT_STR,
	HTTPD_OPT_INT,
	HTTPD_OPT_BOOL,
	HTTPD_OPT_STR_LIST,
	HTTPD_OPT_SECTION,      /* name [ "TITLE" ] { options } */
	/* minor 1 */
	HTTPD_OPT_SIZE,         /* "512", "64k", "1m", "2g": read with httpd_conf_size */
	HTTPD_OPT_DURATION,     /* "30" (seconds), "500ms", "30s", "5m", "2h", "1d": httpd_conf_duration */
	HTTPD_OPT_ENUM,         /* one of words: httpd_conf_str, or httpd_conf_enum for its index */
	/* minor 2 */
	HTTPD_OPT_EXPR,         /* text with $variables, checked at load: httpd_conf_expr */
};

#define HTTPD_OPT_MULTI  1u  /* a section that may appear more than once */
#define HTTPD_OPT_TITLED 2u  /* a section with a title: key "app-1" { ... }; titles are unique */

struct httpd_option {
	const char                *name;
	enum httpd_option_type     type;
	const char                *def;      /* default in config syntax ("6", "true", "{index.html}"); NULL: none */
	unsigned                   flags;
	const struct httpd_option *section;  /* HTTPD_OPT_SECTION: the options inside, END-terminated */
	/*
	 * minor 1: bounds of INT, SIZE (bytes) and DURATION (milliseconds)
	 * values, checked at the option's file:line (min = max = 0: none);
	 * the words of an ENUM, NULL-terminated.
	 */
	long long                  min, max;
	const char *const         *words;
};

#define HTTPD_OPTION_STR(n, d)       { (n), HTTPD_OPT_STR, (d), 0, NULL, 0, 0, NULL }
#define HTTPD_OPTION_INT(n, d)       { (n), HTTPD_OPT_INT, (d), 0, NULL, 0, 0, NULL }
#define HTTPD_OPTION_BOOL(n, d)      { (n), HTTPD_OPT_BOOL, (d), 0, NULL, 0, 0, NULL }
#define HTTPD_OPTION_STR_LIST(n, d)  { (n), HTTPD_OPT_STR_LIST, (d), 0, NULL, 0, 0, NULL }
#define HTTPD_OPTION_SECTION(n, f, s) { (n), HTTPD_OPT_SECTION, NULL, (f), (s), 0, 0, NULL }
/* minor 1 */
#define HTTPD_OPTION_INT_RANGE(n, d, lo, hi)  { (n), HTTPD_OPT_INT, (d), 0, NULL, (lo), (hi), NULL }
#define HTTPD_OPTION_SIZE(n, d, lo, hi)       { (n), HTTPD_OPT_SIZE, (d), 0, NULL, (lo), (hi), NULL }
#define HTTPD_OPTION_DURATION(n, d, lo, hi)   { (n), HTTPD_OPT_DURATION, (d), 0, NULL, (lo), (hi), NULL }
#define HTTPD_OPTION_ENUM(n, d, w)            { (n), HTTPD_OPT_ENUM, (d), 0, NULL, 0, 0, (w) }
/* minor 2 */
#define HTTPD_OPTION_EXPR(n, d)               { (n), HTTPD_OPT_EXPR, (d), 0, NULL, 0, 0, NULL }
#define HTTPD_OPTION_END             { NULL, HTTPD_OPT_END, NULL, 0, NULL, 0, 0, NULL }

/* Reading a block of options: a location, the server level, or a section. */
const char *httpd_conf_str(const struct httpd_conf *conf, const char *name);   /* NULL if unset */
long        httpd_conf_int(const struct httpd_conf *conf, const char *name);
int         httpd_conf_bool(const struct httpd_conf *conf, const char *name);
int         httpd_conf_is_set(const struct httpd_conf *conf, const char *name);
/* Items of a list option, or instances of a section. */
size_t      httpd_conf_count(const struct httpd_conf *conf, const char *name);
const char *httpd_conf_list_str(const struct httpd_conf *conf, const char *name, size_t i);
/* A string option read as a size ("64k", "512m", "1g", bytes): 0, or -1 if it is not one. */
int httpd_conf_size(const struct httpd_conf *conf, const char *name, uint64_t *out);
/* minor 1: a duration option in milliseconds ("30" is seconds): 0, or -1 if unset or not one. */
int httpd_conf_duration(const struct httpd_conf *conf, const char *name, uint64_t *ms);
/* minor 1: the index of an ENUM option's value in its words, or -1 if unset. */
int httpd_conf_enum(const struct httpd_conf *conf, const char *name);

/*
 * minor 2: expressions.  An EXPR option compiled (in configure, so once per
 * location), or NULL when unset or out of memory; the module owns it and
 * releases it with httpd_expr_free.  Evaluating it gives NUL-terminated
 * text in the request's pool (*len bytes), "" for a variable without a
 * value, NULL out of memory.
 */
struct httpd_expr;
const struct httpd_expr *httpd_conf_expr(const struct httpd_conf *conf, const char *name);
void        httpd_expr_free(const struct httpd_expr *expr);
const char *httpd_expr_eval(const struct httpd_expr *expr, struct httpd_request *req, size_t *len);
const struct httpd_conf *httpd_conf_section(const struct httpd_conf *conf, const char *name, size_t i);
/* The title of a titled section, or NULL. */
const char *httpd_conf_title(const struct httpd_conf *conf);
/* "file:line" of a section (or a whole block), for error messages. */
const char *httpd_conf_origin(const struct httpd_conf *conf, char *buf, size_t size);

/* --- Hooks -------------------------------------------------------------- */

/*
 * Body events, for body and body_check hooks.  START comes before the
 * first byte, DATA with each piece as it arrives, END after the last.
 */
enum httpd_body_event { HTTPD_BODY_START, HTTPD_BODY_DATA, HTTPD_BODY_END };

/* In the master, after parsing, before any location is configured.  Shared memory made here is seen by every worker. */
typedef int  (*httpd_server_init_fn)(const struct httpd_conf *server, void **server_data,
                                     char *err, size_t errlen);
typedef void (*httpd_server_exit_fn)(void *server_data);
/* In the master, once per location naming the module.  Store state in *data.  On failure write err and return -1. */
typedef int  (*httpd_configure_fn)(const struct httpd_location *loc, const struct httpd_conf *opts,
                                   void **data, char *err, size_t errlen);
typedef void (*httpd_release_fn)(void *data);
typedef int  (*httpd_worker_init_fn)(void *data);
typedef void (*httpd_worker_exit_fn)(void *data);
/*
 * Check phase: after routing, before any body byte is read (and before
 * 100 Continue).  HTTPD_DECLINED lets the request on, HTTPD_OK answers it
 * with res, a status refuses it; headers added to res stay on the refusal.
 * minor 5: HTTPD_PENDING waits for something outside (Redis) without
 * holding the worker: nothing more is read from the client until the
 * check calls httpd_request_check_done with its verdict.
 */
typedef int  (*httpd_check_fn)(void *data, struct httpd_request *req, struct httpd_response *res);
/*
 * Body-check phase, for check modules that must see the body (a digest):
 * called with each event as the body streams; HTTPD_OK or HTTPD_DECLINED
 * goes on (DECLINED at START: not for this request), a status refuses.
 * minor 5: at END it may return HTTPD_PENDING, as a check may.
 */
typedef int  (*httpd_body_fn)(void *data, struct httpd_request *req, struct httpd_response *res,
                              enum httpd_body_event ev, const void *buf, size_t len);
/*
 * Handler: HTTPD_OK after filling res, a status for an error page, or
 * HTTPD_PENDING to answer later with httpd_request_finish.
 */
typedef int  (*httpd_handler_fn)(void *data, struct httpd_request *req, struct httpd_response *res);
/* Filter: after the handler (or a check that answered), before the head is built. */
typedef int  (*httpd_filter_fn)(void *data, struct httpd_request *req, struct httpd_response *res);
/* Log phase: after the response went out (status, bytes sent known). */
typedef void (*httpd_log_fn)(void *data, const struct httpd_request *req,
                             const struct httpd_response *res);

/*
 * Registration, from the module's init function only.  The name must
 * equal the file name without ".so".  Options are copied by reference:
 * the arrays must be static.
 */
void httpd_module_name(struct httpd_module_api *api, const char *name);
void httpd_module_options(struct httpd_module_api *api, const struct httpd_option *location_options);
void httpd_module_server_options(struct httpd_module_api *api, const struct httpd_option *server_options);
/*
 * minor 2: a variable every expression may name ($name: log formats, limit
 * keys, add_header, other modules' EXPR options).  fn returns the value for
 * req (in scratch, size bytes, or anything living as long as the request),
 * or NULL for none.  Names are [a-z0-9_]; a module registers at most 16,
 * and a name the server or another module has is refused at load.
 */
typedef const char *(*httpd_variable_fn)(const struct httpd_request *req, char *scratch, size_t size);
void httpd_module_variable(struct httpd_module_api *api, const char *name, httpd_variable_fn fn);
void httpd_hook_server_init(struct httpd_module_api *api, httpd_server_init_fn fn);
void httpd_hook_server_exit(struct httpd_module_api *api, httpd_server_exit_fn fn);
void httpd_hook_configure(struct httpd_module_api *api, httpd_configure_fn fn);
void httpd_hook_release(struct httpd_module_api *api, httpd_release_fn fn);
void httpd_hook_worker_init(struct httpd_module_api *api, httpd_worker_init_fn fn);
void httpd_hook_worker_exit(struct httpd_module_api *api, httpd_worker_exit_fn fn);
void httpd_hook_check(struct httpd_module_api *api, httpd_check_fn fn);
void httpd_hook_body_check(struct httpd_module_api *api, httpd_body_fn fn);
/* methods: enum httpd_method bits the handler accepts (OTHER: any extension method). */
void httpd_hook_handler(struct httpd_module_api *api, httpd_handler_fn fn, unsigned methods);
/*
 * The handler's own body reader: START returns HTTPD_OK to take the body
 * piece by piece (the core then keeps none of it), HTTPD_DECLINED to let
 * the core collect it, or a status.
 */
void httpd_hook_body(struct httpd_module_api *api, httpd_body_fn fn);
void httpd_hook_filter(struct httpd_module_api *api, httpd_filter_fn fn);
void httpd_hook_log(struct httpd_module_api *api, httpd_log_fn fn);

/*
 * minor 3: body filters.  A response body reaches the client through a
 * chain: the handler's body (a buffer, a file, a stream) first, then the
 * body filters of the location's modules (its checks, its handler, then its
 * filter list, in that order), then the content coding the core negotiated
 * (compression), then the protocol (HTTP/1.1 chunks or HTTP/2 DATA frames).
 *
 * Each link is pulled by the one after it when the client can take more,
 * so back-pressure is free: a filter is asked for output only when there
 * is room for it.  A piece of body is a chunk: bytes in memory, or a range
 * of a file (data NULL), which the core sends with sendfile when it reaches
 * the end of the chain unchanged.
 */
struct httpd_chunk {
	const void *data;    /* len bytes in memory, or NULL for a file range */
	size_t      len;
	int         fd;      /* file range: len bytes of fd from offset (fd is not the filter's) */
	off_t       offset;
};
/* What a filter reads from: the body as the links before it left it. */
struct httpd_body;
/*
 * The next piece of the body, at most max bytes (max > 0), consumed by the
 * call: 1 with *chunk set (valid until the next pull), 0 at the end of the
 * body, HTTPD_STREAM_AGAIN when none is ready yet (the core asks again
 * after httpd_response_stream_wake), -1 on an error (already logged).
 */
int     httpd_body_pull(struct httpd_body *in, struct httpd_chunk *chunk, size_t max);
/* The same as bytes: a file range is read into buf.  Bytes copied, 0, HTTPD_STREAM_AGAIN or -1. */
ssize_t httpd_body_read(struct httpd_body *in, void *buf, size_t len);
/*
 * Per response, after the handler and the header filters, before the head
 * is built: HTTPD_OK joins the chain for this response with state in *ctx
 * (allocate it from req->pool; register cleanups with httpd_pool_cleanup),
 * HTTPD_DECLINED stays out, a status answers with an error instead.  It
 * may change the response's headers.  A filter that changes the body's
 * length need do nothing about Content-Length: a response any filter joins
 * is sent without one (chunked on HTTP/1.1).  Not called for responses
 * without a body (HEAD, 204, 304, an empty body).
 */
typedef int (*httpd_body_filter_start_fn)(void *data, struct httpd_request *req, struct httpd_response *res,
                                          void **ctx);
/*
 * The filter's output: the next chunk of at most max bytes into *out, with
 * the returns of httpd_body_pull.  It pulls its input from in as it needs;
 * passing a chunk on unchanged keeps a file range a file range.  Memory it
 * returns must stay valid until its next call.  To hold the body until
 * something else happens, return HTTPD_STREAM_AGAIN and call
 * httpd_response_stream_wake then.
 */
typedef int (*httpd_body_filter_fn)(void *ctx, struct httpd_body *in, struct httpd_chunk *out, size_t max);
void httpd_hook_body_filter(struct httpd_module_api *api, httpd_body_filter_start_fn start,
                            httpd_body_filter_fn filter);
/*
 * minor 3: the module's body filter produces a content coding ("gzip",
 * "br", "zstd").  The core negotiates codings (compress, compress_types,
 * compress_min_length; Accept-Encoding with q-values), sets
 * Content-Encoding, Vary and a weak ETag, and starts only the filter of the
 * coding it chose, last in the chain.  Such a module is loaded by the
 * compress directive, not by a location's filter list.
 */
void httpd_module_content_coding(struct httpd_module_api *api, const char *coding);

typedef int (*httpd_module_init_fn)(struct httpd_module_api *api);

/* Exports the ABI number and the module's registration function. */
#define HTTPD_MODULE(register_fn)                                                        \
	__attribute__((visibility("default"))) const unsigned httpd_module_abi = HTTPD_MODULE_ABI; \
	__attribute__((visibility("default"))) const unsigned httpd_module_abi_minor = HTTPD_MODULE_ABI_MINOR; \
	__attribute__((visibility("default"))) int httpd_module_init(struct httpd_module_api *api); \
	int httpd_module_init(struct httpd_module_api *api) { return register_fn(api); }

/* --- Request ------------------------------------------------------------ */

/* Value of the first header called name (case-insensitive), or NULL. */
const char *httpd_request_header(const struct httpd_request *req, const char *name);

/*
 * Does the Accept-Encoding header accept coding ("gzip", "br") with q > 0,
 * by name or through "*"?  (RFC 9110 §12.5.3)
 */
int httpd_request_accepts_encoding(const struct httpd_request *req, const char *coding);
/*
 * minor 3: the content codings the client accepts, best first (RFC 9110
 * §12.5.3: by q-value, then by the server's preference: the location's
 * compress list, or zstd, br, gzip when it has none), at most max of them
 * into out.  Returns how many; 0 without Accept-Encoding.  For choosing
 * among precompressed files.
 */
size_t httpd_request_codings(const struct httpd_request *req, const char **out, size_t max);

/* The body file (read it with pread) when the body was spilled to disk: its fd, else -1. */
int httpd_request_body_fd(const struct httpd_request *req);
/* The whole body in memory, reading a spilled body into the pool; NULL on failure. */
const char *httpd_request_body_load(struct httpd_request *req);

/*
 * What the PROXY protocol preamble said about the connection (listen
 * "ADDR:PORT proxy_protocol"), or NULL when there was none or it lacked
 * the field.  client_addr and peer_addr already are the client it named.
 *   "version"                         "1" or "2"
 *   "addr", "port"                    the client, as the balancer saw it
 *   "server_addr", "server_port"      the address the client connected to
 *   "balancer_addr", "balancer_port"  the balancer's own end of this TCP connection
 *   "alpn", "authority", "unique_id", "netns"     v2 TLVs
 *   "crc32c"                          "1" when a CRC32C TLV was present and verified
 *   "ssl"                             PP2_CLIENT_* bits, when the balancer terminated TLS;
 *   "ssl_verify" (0: client certificate verified), "ssl_version", "ssl_cn",
 *   "ssl_cipher", "ssl_sig_alg", "ssl_key_alg"
 * Values are text; a TLV with a NUL byte is cut there.  Valid until the
 * connection closes.
 */
const char *httpd_request_proxy(const struct httpd_request *req, const char *field);

/*
 * The TLS session of the request's connection (NULL on plain HTTP, or when
 * the field does not apply).  Fields: "protocol" ("TLSv1.3"), "cipher",
 * "server_name" (the SNI), "alpn", "session_reused" ("r" or "."),
 * "client_subject" and "client_issuer" (RFC 2253 text of a client
 * certificate), "client_verify" ("SUCCESS", "NONE", "FAILED:reason"), and
 * "server": the name of the server block that answers (NULL at the top
 * level), on plain HTTP too.  Valid until the request ends.
 */
const char *httpd_request_tls(const struct httpd_request *req, const char *field);

/* Per-request notes: a check leaves data that the handler or the log phase reads. */
int   httpd_request_note_set(struct httpd_request *req, const char *key, void *value);
void *httpd_request_note(const struct httpd_request *req, const char *key);

/* --- Asynchronous handlers ---------------------------------------------- */

/*
 * After a handler returned HTTPD_PENDING: rc is HTTPD_OK (res is filled)
 * or an error status.  Call it from an event, timer or blocking-job
 * callback; afterwards the request and its pool may be gone.
 */
void httpd_request_finish(struct httpd_request *req, int rc);

/*
 * minor 5: the verdict of a check (or a body check at END) that returned
 * HTTPD_PENDING: HTTPD_DECLINED (or HTTPD_OK from a body check) goes on to
 * the next check, HTTPD_OK from a check answers with res, a status refuses
 * (headers added to res stay on it).  Call it once, from an event, timer
 * or Redis callback; afterwards the request may be gone.  If the client
 * goes first the request ends without it (pool cleanups run as usual).
 */
void httpd_request_check_done(struct httpd_request *req, int rc);

#define HTTPD_EVENT_READ  1u
#define HTTPD_EVENT_WRITE 2u
#define HTTPD_EVENT_TIMER 4u   /* the timer fired */
#define HTTPD_EVENT_ERROR 8u   /* EPOLLERR or EPOLLHUP on the fd */

typedef void (*httpd_event_fn)(struct httpd_request *req, void *arg, unsigned events);

/*
 * Calls fn from the worker's event loop when fd is ready (level-triggered)
 * or after ms milliseconds.  Every event of a request is removed when the
 * request ends, whichever way; httpd_event_del removes one earlier.  The
 * fd stays the module's to close.  NULL on failure.
 */
struct httpd_event *httpd_event_fd(struct httpd_request *req, int fd, unsigned events,
                                   httpd_event_fn fn, void *arg);
struct httpd_event *httpd_event_timer(struct httpd_request *req, unsigned ms, httpd_event_fn fn,
                                      void *arg);
void httpd_event_del(struct httpd_event *ev);
/*
 * A worker's own events, tied to no request (req is NULL in fn): for work
 * a module does in the background, such as health checks.  Call them from
 * worker_init or from their own callbacks; remove them with
 * httpd_event_del.
 */
struct httpd_event *httpd_worker_event_fd(int fd, unsigned events, httpd_event_fn fn, void *arg);
struct httpd_event *httpd_worker_timer(unsigned ms, httpd_event_fn fn, void *arg);
/* This worker's number, 0 to workers - 1 (a reload's new workers count from 0 again); -1 in the master. */
int httpd_worker_id(void);

/* Changes what an fd event waits for (HTTPD_EVENT_READ, HTTPD_EVENT_WRITE, both, or 0); -1 on failure. */
int  httpd_event_fd_mod(struct httpd_event *ev, unsigned events);

/*
 * Runs work(arg) on the worker's thread pool, then done(req, arg) in the
 * event loop.  work must not touch the event loop or other requests; it
 * may use the request's pool and response.  If the client goes away first,
 * done is not called, and the request is freed once work has returned.
 */
int httpd_run_blocking(struct httpd_request *req, void (*work)(void *arg),
                       void (*done)(struct httpd_request *req, void *arg), void *arg);

/*
 * Back-pressure for a body hook that forwards the body somewhere slower
 * than the client: after pause the core delivers no more DATA (and reads
 * no more from the client, so TCP pushes back) until resume.  The body
 * timeout does not run while paused.
 */
void httpd_request_body_pause(struct httpd_request *req);
void httpd_request_body_resume(struct httpd_request *req);

/* Runs fn(arg) if the request is cancelled (client gone, timeout) while pending. */
int httpd_request_on_cancel(struct httpd_request *req, void (*fn)(void *arg), void *arg);

/* --- Response ----------------------------------------------------------- */

/* A status outside 100-999 is answered as 500. */
void httpd_response_set_status(struct httpd_response *res, int status);
/*
 * minor 4: the Date the answer carries instead of now (a cache's stored
 * response keeps its origin's Date, RFC 9110 §6.6.1); 0 for now.
 */
void httpd_response_set_date(struct httpd_response *res, time_t date);
int  httpd_response_status(const struct httpd_response *res);
/*
 * Adds a header (copied).  Framing headers (Content-Length,
 * Transfer-Encoding, Connection, Date, Server) belong to the core: -1.
 * A NULL, or a name or value with CR, LF or NUL, is refused: -1.
 */
int  httpd_response_add_header(struct httpd_response *res, const char *name, const char *value);
/*
 * minor 3: removes every header called name (case-insensitive) added so far,
 * framing headers excepted; for a filter whose change of the body makes
 * them wrong (ETag, Last-Modified, Accept-Ranges).  0, or -1 on a bad name.
 */
int  httpd_response_remove_header(struct httpd_response *res, const char *name);
/* Value of a header added so far (case-insensitive), or NULL. */
const char *httpd_response_header(const struct httpd_response *res, const char *name);
/* The body is data[0..len); data must live as long as the request pool. */
void httpd_response_set_body_buffer(struct httpd_response *res, const void *data, size_t len);
/* The body is len bytes of fd from offset; the core sends it with sendfile and closes fd. */
void httpd_response_set_body_file(struct httpd_response *res, int fd, off_t offset, off_t len);
/*
 * For a HEAD request whose body lives elsewhere (an upstream): the
 * Content-Length the GET would have had, or len < 0 for none.  No body is
 * sent; on any other method the response is an empty body.
 */
void httpd_response_set_head_length(struct httpd_response *res, off_t len);
/*
 * A streamed body: called whenever the client can take more.  Return the
 * number of bytes written to buf, 0 at the end of the body, -1 on error
 * (the connection is closed).  Must not block for long.
 */
typedef ssize_t (*httpd_stream_fn)(void *ctx, char *buf, size_t len);
/* The body comes from fn; chunked on HTTP/1.1, close-delimited on HTTP/1.0. */
void httpd_response_set_body_stream(struct httpd_response *res, httpd_stream_fn fn, void *ctx);
/*
 * A stream whose bytes come from elsewhere (an upstream server) returns
 * HTTPD_STREAM_AGAIN when it has none yet: the core stops asking (and stops
 * timing the client: the module times its source) until the module calls
 * httpd_response_stream_wake from an event.
 */
#define HTTPD_STREAM_AGAIN (-2)
void httpd_response_stream_wake(struct httpd_request *req);
/*
 * 101 Switching Protocols, then a tunnel: once the head is out the core
 * relays bytes between the client and fd both ways (len bytes at pending,
 * already read from fd, go to the client first) until both sides have
 * closed or nothing moved for idle_ms; fd is the core's from now on.  Add
 * the Upgrade header (and the protocol's own) before finishing with
 * HTTPD_OK.  -1 on a bad argument.
 */
int  httpd_response_tunnel(struct httpd_response *res, int fd, unsigned idle_ms, const void *pending,
                           size_t len);
/*
 * minor 3: the body's length as it stands, or -1 when it is not known
 * before it is sent (a stream, or a body filters changed).  A coding module
 * sizes its window by it.
 */
int64_t httpd_response_body_length(const struct httpd_response *res);
/* Bytes of body sent so far (in the log phase: all of it). */
uint64_t httpd_response_bytes_sent(const struct httpd_response *res);

/*
 * Asks for the gzip content coding of a 200 body whatever the location
 * says (level 1 to 9), when the gzip module is loaded (a location of the
 * configuration names gzip in compress, or has gzip = true): Content-Encoding,
 * a weak ETag, the body compressed as it is sent.  0, or -1 when the gzip
 * module is not loaded.  Kept for modules built before minor 3; the compress
 * directive does this for every handler.
 */
int  httpd_response_gzip(struct httpd_response *res, int level);
/*
 * minor 3: the content coding the core chose for this response ("gzip",
 * "br", "zstd") and its level (compress_level) in *level, or NULL for none.
 * For a coding module's filter start.
 */
const char *httpd_response_coding(const struct httpd_response *res, int *level);

/*
 * 301 to the request path with '/' appended (query kept), as for a
 * directory named without its trailing slash.  Returns HTTPD_OK or 500.
 */
int  httpd_redirect_to_directory(const struct httpd_request *req, struct httpd_response *res);

/*
 * An HTML listing of the directory dirfd: names escaped, directories first,
 * sorted, with sizes and dates; dotfiles only when show_hidden.  Blocking
 * (it reads the whole directory): call it from httpd_run_blocking work.
 */
int  httpd_respond_listing(const struct httpd_request *req, struct httpd_response *res, int dirfd,
                           int show_hidden);

/*
 * The same listing, built on the worker's thread pool so that a large
 * directory never stalls the event loop.  Takes dirfd.  Returns
 * HTTPD_PENDING (return it from the handler) or an error status.
 */
int  httpd_respond_listing_async(struct httpd_request *req, struct httpd_response *res, int dirfd,
                                 int show_hidden);

/* Does path have a segment starting with '.' (other than /.well-known/)? */
int  httpd_path_is_hidden(const char *path);

/* --- Locations ---------------------------------------------------------- */

const char *httpd_location_prefix(const struct httpd_location *loc);

/*
 * From configure only: the methods this location accepts, a subset of the
 * handler's methods (a read-only location of a module that can also write).
 */
void httpd_location_set_methods(const struct httpd_location *loc, unsigned methods);

/* What the module's server_init stored for this location's configuration, or NULL. */
void *httpd_location_server_data(const struct httpd_location *loc, const char *module);

/* --- Server state ------------------------------------------------------ */

/*
 * True once this worker knows the server is going away: a graceful stop,
 * a reload that replaces it, or the shutdown_delay before a stop.  It
 * still serves; a readiness check should fail.
 */
int httpd_server_draining(void);

/*
 * True while the configuration is only being checked (httpd -t, -T, -M):
 * server_init and configure hooks must then create and change nothing
 * outside the process (no files, no shared state a running server uses).
 */
int httpd_config_checking(void);

/* --- Memory: freed in one step when the request ends -------------------- */

void *httpd_pool_alloc(struct httpd_pool *pool, size_t size);
char *httpd_pool_strdup(struct httpd_pool *pool, const char *s);
char *httpd_pool_printf(struct httpd_pool *pool, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Runs fn(arg) when the request ends, whatever way it ends (close fds here). */
int httpd_pool_cleanup(struct httpd_pool *pool, void (*fn)(void *arg), void *arg);
/*
 * minor 4: a pool of the module's own, for work that outlives the request
 * that started it (a cache's background revalidation); freeing it runs its
 * cleanups.  NULL when out of memory.
 */
struct httpd_pool *httpd_pool_new(void);
void httpd_pool_free(struct httpd_pool *pool);

/* --- Redis: state a fleet of servers shares (minor 5) ------------------- */

struct httpd_redis;
struct httpd_redis_script;

enum httpd_redis_type {
	HTTPD_REDIS_FAILED,    /* no answer: unreachable, or slower than the timeout (str says which) */
	HTTPD_REDIS_STRING, HTTPD_REDIS_STATUS, HTTPD_REDIS_ERROR, HTTPD_REDIS_INTEGER, HTTPD_REDIS_NIL,
	HTTPD_REDIS_ARRAY,
};

/* An answer, valid during the callback only. */
struct httpd_redis_reply {
	enum httpd_redis_type           type;
	long long                       integer;    /* INTEGER */
	const char                     *str;        /* STRING, STATUS, ERROR (and FAILED: why) */
	size_t                          len;
	size_t                          elements;   /* ARRAY: the first 16 members, one level deep */
	const struct httpd_redis_reply *element;
};

/*
 * In the master (server_init or configure): a Redis server at address,
 * "HOST:PORT", "[IPv6]:PORT" or "unix:/path" (a host name is resolved here,
 * once), with the password in password_file (NULL for none; read now, and
 * refused when group or others may read it), and timeout_ms for each
 * command to be answered.  Nothing connects here: httpd -t needs no Redis.
 * NULL with err on failure.  Each worker opens one connection on first
 * use, pipelines every command on it and, when a command is late or the
 * connection fails, fails what was queued and reconnects with backoff.
 */
struct httpd_redis *httpd_redis_new(const char *address, const char *password_file, unsigned timeout_ms,
                                    char *err, size_t errlen);
/* In the master, from the module's release or server_exit hook (a worker frees nothing). */
void httpd_redis_free(struct httpd_redis *rd);
const char *httpd_redis_address(const struct httpd_redis *rd);
/*
 * A Lua script, in the master: loaded (SCRIPT LOAD) on every connection and
 * run by its SHA1 (EVALSHA), sent whole once when a restarted Redis lost it.
 * At most 8 per endpoint; NULL when out of room or memory.
 */
const struct httpd_redis_script *httpd_redis_script(struct httpd_redis *rd, const char *source);

typedef void (*httpd_redis_fn)(struct httpd_request *req, void *arg, const struct httpd_redis_reply *reply);
/*
 * In a worker: sends argv (binary-safe) and returns 0; fn(req, arg, reply)
 * comes later from the event loop, exactly once and never from within
 * this call, with the answer or HTTPD_REDIS_FAILED.  If req ends first,
 * fn is not called.  req may be NULL for work tied to no request.  -1 when
 * nothing was sent (Redis down and the worker waiting to retry, out of
 * memory): fn is then never called, and the caller decides at once.
 */
int httpd_redis_command(struct httpd_redis *rd, struct httpd_request *req, httpd_redis_fn fn, void *arg,
                        int argc, const char *const *argv, const size_t *argv_len);
/* The same for a script: argv is what follows the script (numkeys, keys, args). */
int httpd_redis_eval(struct httpd_redis *rd, struct httpd_request *req, const struct httpd_redis_script *script,
                     httpd_redis_fn fn, void *arg, int argc, const char *const *argv, const size_t *argv_len);
/* From the module's worker_exit: the worker's connection closes, nothing is told. */
void httpd_redis_worker_exit(struct httpd_redis *rd);

/* --- Files -------------------------------------------------------------- */

struct stat;

/*
 * Answers req with an open regular file, as the static module does:
 * ETag (from inode, size and mtime) and Last-Modified; If-Match,
 * If-Unmodified-Since, If-None-Match and If-Modified-Since in the order of
 * RFC 9110 §13.2.2 (304, 412); Range and If-Range (206, multipart/byteranges,
 * 416), Accept-Ranges.  Takes ownership of fd.  etag_suffix (or NULL) keeps
 * variants of one file apart, e.g. "gz" for a precompressed sibling.
 * Returns HTTPD_OK or an error status.
 */
int httpd_respond_file(const struct httpd_request *req, struct httpd_response *res, int fd,
                       const struct stat *st, const char *content_type, const char *etag_suffix);

/*
 * RFC 9110 §13.2.2 preconditions (If-Match, If-Unmodified-Since,
 * If-None-Match, If-Modified-Since, in that order) for any method, against
 * the resource as it is now: st its stat, or NULL when it does not exist;
 * etag its entity tag, or NULL for the core's own (as httpd_respond_file
 * sends it).  Returns 0 to go on with the method, 304 (GET and HEAD only)
 * or 412.  A handler that changes a resource (PUT, DELETE, POST) evaluates
 * them just before the change, where no other writer can interleave.
 * Safe to call from a blocking job (httpd_run_blocking).
 */
int httpd_request_preconditions(const struct httpd_request *req, const struct stat *st, const char *etag);

/*
 * The worker's open-file cache.  httpd_file_open opens path beneath dirfd
 * as httpd_open_beneath would, but keeps the descriptor, its stat, its
 * validators and (for files up to 16 KiB) its content, revalidated with one
 * stat at most every file_cache_valid seconds; a missing file is cached as
 * missing.  The file stays usable until the request ends; its descriptor
 * is the cache's (never close it).  NULL with errno on failure.
 */
struct httpd_file;
const struct httpd_file *httpd_file_open(struct httpd_request *req, int dirfd, const char *path);
int                      httpd_file_fd(const struct httpd_file *file);
const struct stat       *httpd_file_stat(const struct httpd_file *file);
/*
 * Drops path from this worker's cache at once, after the module changed the
 * file itself (other workers notice within file_cache_valid).
 */
void                     httpd_file_forget(int dirfd, const char *path);
/* httpd_respond_file for a cached file: from memory when small, else sendfile. */
int httpd_respond_cached_file(const struct httpd_request *req, struct httpd_response *res,
                              const struct httpd_file *file, const char *content_type,
                              const char *etag_suffix);

/*
 * Opens path (relative, no leading '/') beneath the directory dirfd.  The
 * kernel refuses any step, symlinks included, that leaves dirfd: -1 with
 * errno EXDEV.  Other failures return -1 with errno from openat2(2).  Without
 * openat2 (before Linux 5.6, or refused by seccomp) the server walks the path
 * itself with the same answers.
 */
int httpd_open_beneath(int dirfd, const char *path, int flags);

/* An HTTP status for a failed open(2) or stat(2): 404, 403 or 500. */
int httpd_status_from_errno(int err);

/* Media type for a file name from the mime_types file, or application/octet-stream. */
const char *httpd_mime_type(const char *filename);
/* Non-zero if a media type is worth compressing: text, JSON, XML, JavaScript, WebAssembly. */
int httpd_mime_compressible(const char *type);
/*
 * Length of the valid UTF-8 sequence at s, of the left bytes there (RFC 3629:
 * no overlong forms, no surrogates, nothing past U+10FFFF), 0 if invalid.
 */
size_t httpd_utf8_seq(const unsigned char *s, size_t left);

/* IMF-fixdate (RFC 9110 §5.6.7) of t into buf; returns buf. */
#define HTTPD_DATE_LEN 30
char *httpd_http_date(time_t t, char buf[HTTPD_DATE_LEN]);
/* minor 4: an HTTP date (IMF-fixdate, RFC 850 or asctime) into *out: 0, or -1 if it is not one. */
int httpd_http_date_parse(const char *s, time_t *out);

/* --- Logging ------------------------------------------------------------ */

enum httpd_log_level { HTTPD_LOG_ERR, HTTPD_LOG_WARN, HTTPD_LOG_NOTICE, HTTPD_LOG_INFO, HTTPD_LOG_DEBUG };
void httpd_log(enum httpd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * A message about one request: prefixed with the client address and the
 * request line ("192.0.2.7: GET /x?y: ..."), so every such line says who
 * and what; say why (the path and errno, the config line) in fmt.
 */
void httpd_log_request(enum httpd_log_level level, const struct httpd_request *req, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
