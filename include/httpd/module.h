/*
 * prefork-httpd module API.
 *
 * A module is a shared object in the modules directory named NAME.so that
 * exports one symbol, "httpd_module", a struct httpd_module.  The core loads
 * a module when a location names it as its handler or in its check list.
 * See httpd-module(7) for the whole contract.
 */
#ifndef HTTPD_MODULE_H
#define HTTPD_MODULE_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <confuse.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Bumped whenever a struct in this header changes layout or a hook changes
 * signature.  The loader refuses a module built for another version.
 */
#define HTTPD_MODULE_ABI 1

#define HTTPD_MODULE_SYMBOL "httpd_module"

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
};

/* Hook return values besides an HTTP status code. */
#define HTTPD_OK        0   /* the response is filled in */
#define HTTPD_DECLINED (-1) /* check hook: no objection, go on */

struct httpd_pool;
struct httpd_location;
struct httpd_response;

struct httpd_header {
	const char *name;       /* NUL-terminated, as received */
	const char *value;      /* NUL-terminated, surrounding whitespace removed */
	size_t      name_len;
	size_t      value_len;
};

/*
 * What a module sees of a request.  Every pointer lives until the response
 * has been sent; modules treat the whole struct as read-only.
 */
struct httpd_request {
	unsigned                   method;       /* one enum httpd_method bit */
	const char                *method_name;
	const char                *target;       /* request-target as received */
	const char                *path;         /* decoded and normalised, starts with '/' */
	const char                *path_rest;    /* path after the location prefix, starts with '/' */
	const char                *query;        /* raw query without '?', or NULL */
	const char                *host;         /* Host header (or absolute-form authority), or NULL */
	int                        version;      /* 10 for HTTP/1.0, 11 for HTTP/1.1 */
	const struct httpd_header *headers;
	size_t                     header_count;
	const char                *body;         /* the whole decoded body, or NULL */
	size_t                     body_len;
	const char                *client_addr;  /* textual peer address */
	const struct httpd_location *location;
	struct httpd_pool         *pool;         /* freed when the response is done */
};

/*
 * A streamed body: called whenever the client can take more.  Return the
 * number of bytes written to buf, 0 at the end of the body, -1 on error
 * (the connection is closed).  Must not block for long.
 */
typedef ssize_t (*httpd_stream_fn)(void *ctx, char *buf, size_t len);

struct httpd_module {
	unsigned    abi;         /* HTTPD_MODULE_ABI the module was built with */
	const char *name;        /* equals the file name without ".so" */
	unsigned    methods;     /* enum httpd_method bits handle() accepts */
	cfg_opt_t  *options;     /* location options this module adds, CFG_END()-terminated, or NULL */

	/*
	 * In the master, once per location using the module, after the config
	 * is parsed.  Store per-location state in *data.  On failure write a
	 * message to err (the core prefixes file and line) and return -1.
	 */
	int  (*configure)(const struct httpd_location *loc, cfg_t *opts, void **data,
	                  char *err, size_t errlen);
	/* In the master, when the configuration that configured data is dropped. */
	void (*release)(void *data);
	/* In each worker after fork and privilege drop; -1 stops the worker. */
	int  (*worker_init)(void *data);
	/* In each worker before it exits. */
	void (*worker_exit)(void *data);
	/*
	 * Check phase, before the handler: return HTTPD_DECLINED to let the
	 * request through, HTTPD_OK after filling res, or an error status.
	 */
	int  (*check)(void *data, const struct httpd_request *req, struct httpd_response *res);
	/* Return HTTPD_OK after filling res, or a status for a core error page. */
	int  (*handle)(void *data, const struct httpd_request *req, struct httpd_response *res);
};

#define HTTPD_MODULE_EXPORT \
	__attribute__((visibility("default"))) const struct httpd_module httpd_module

/* --- Request ------------------------------------------------------------ */

/* Value of the first header called name (case-insensitive), or NULL. */
const char *httpd_request_header(const struct httpd_request *req, const char *name);

/*
 * Does the Accept-Encoding header accept coding ("gzip", "br") with q > 0,
 * by name or through "*"?  (RFC 9110 §12.5.3)
 */
int httpd_request_accepts_encoding(const struct httpd_request *req, const char *coding);

/* --- Response ----------------------------------------------------------- */

void httpd_response_set_status(struct httpd_response *res, int status);
/*
 * Adds a header (copied).  Framing headers (Content-Length,
 * Transfer-Encoding, Connection, Date, Server) belong to the core: -1.
 * A name or value with CR, LF or NUL is refused: -1.
 */
int  httpd_response_add_header(struct httpd_response *res, const char *name, const char *value);
/* The body is data[0..len); data must live as long as the request pool. */
void httpd_response_set_body_buffer(struct httpd_response *res, const void *data, size_t len);
/* The body is len bytes of fd from offset; the core sends it with sendfile and closes fd. */
void httpd_response_set_body_file(struct httpd_response *res, int fd, off_t offset, off_t len);
/* The body comes from fn; chunked on HTTP/1.1, close-delimited on HTTP/1.0. */
void httpd_response_set_body_stream(struct httpd_response *res, httpd_stream_fn fn, void *ctx);

/*
 * Compresses a 200 file or buffer body with gzip as it is sent (chunked on
 * HTTP/1.1); the ETag becomes weak.  level is zlib's, 1 to 9.  Does nothing
 * to other responses.  The caller decides that the client accepts gzip
 * (httpd_request_accepts) and adds Vary: Accept-Encoding.  -1 on failure.
 */
int  httpd_response_gzip(struct httpd_response *res, int level);

/*
 * 301 to the request path with '/' appended (query kept), as for a
 * directory named without its trailing slash.  Returns HTTPD_OK or 500.
 */
int  httpd_redirect_to_directory(const struct httpd_request *req, struct httpd_response *res);

/*
 * An HTML listing of the directory dirfd: names escaped, directories first,
 * sorted, with sizes and dates; dotfiles only when show_hidden.
 */
int  httpd_respond_listing(const struct httpd_request *req, struct httpd_response *res, int dirfd,
                           int show_hidden);

/* Does path have a segment starting with '.' (other than /.well-known/)? */
int  httpd_path_is_hidden(const char *path);

/* --- Locations ---------------------------------------------------------- */

const char *httpd_location_prefix(const struct httpd_location *loc);

/*
 * From configure only: the methods this location accepts, a subset of the
 * module's methods (a read-only location of a module that can also write).
 */
void httpd_location_set_methods(const struct httpd_location *loc, unsigned methods);

/* --- Memory: freed in one step when the request ends -------------------- */

void *httpd_pool_alloc(struct httpd_pool *pool, size_t size);
char *httpd_pool_strdup(struct httpd_pool *pool, const char *s);
char *httpd_pool_printf(struct httpd_pool *pool, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Runs fn(arg) when the request ends, whatever way it ends (close fds here). */
int httpd_pool_cleanup(struct httpd_pool *pool, void (*fn)(void *arg), void *arg);

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
 * Opens path (relative, no leading '/') beneath the directory dirfd.  The
 * kernel refuses any step, symlinks included, that leaves dirfd: -1 with
 * errno EXDEV.  Other failures return -1 with errno from openat2(2).
 */
int httpd_open_beneath(int dirfd, const char *path, int flags);

/* An HTTP status for a failed open(2) or stat(2): 404, 403 or 500. */
int httpd_status_from_errno(int err);

/* Media type for a file name from /etc/mime.types, or application/octet-stream. */
const char *httpd_mime_type(const char *filename);

/* IMF-fixdate (RFC 9110 §5.6.7) of t into buf; returns buf. */
#define HTTPD_DATE_LEN 30
char *httpd_http_date(time_t t, char buf[HTTPD_DATE_LEN]);

/* --- Logging ------------------------------------------------------------ */

enum httpd_log_level { HTTPD_LOG_ERR, HTTPD_LOG_WARN, HTTPD_LOG_NOTICE, HTTPD_LOG_INFO, HTTPD_LOG_DEBUG };
void httpd_log(enum httpd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif
