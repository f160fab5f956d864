/*
 * static: files under a root directory, GET and HEAD.
 *
 *   location "/" { handler = "static"  root = "/var/www/html" }
 *
 * Validators, conditional and range requests come from the core
 * (httpd_respond_file); this module maps paths to files, picks index files
 * and compressed variants, and lists directories when asked to.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <httpd/module.h>

#define INDEX_MAX 8

struct static_conf {
	int    root_fd;                /* O_PATH directory: every open is beneath it */
	char  *index[INDEX_MAX];
	size_t index_count;
	bool   autoindex;
	bool   dotfiles;
	bool   precompressed;
	bool   gzip;
	int    gzip_level;
	long   gzip_min_length;
	long   expires;                /* seconds, -1 for no Cache-Control/Expires */
};

static cfg_opt_t static_options[] = {
	CFG_STR("root", NULL, CFGF_NODEFAULT),
	CFG_STR_LIST("index", "{index.html}", CFGF_NONE),
	CFG_BOOL("autoindex", cfg_false, CFGF_NONE),
	CFG_BOOL("dotfiles", cfg_false, CFGF_NONE),
	CFG_BOOL("precompressed", cfg_true, CFGF_NONE),
	CFG_BOOL("gzip", cfg_false, CFGF_NONE),
	CFG_INT("gzip_level", 6, CFGF_NONE),
	CFG_INT("gzip_min_length", 1024, CFGF_NONE),
	CFG_INT("expires", -1, CFGF_NONE),
	CFG_END()
};

static void static_release(void *data)
{
	struct static_conf *conf = data;

	if (conf->root_fd >= 0)
		close(conf->root_fd);
	for (size_t i = 0; i < conf->index_count; i++)
		free(conf->index[i]);
	free(conf);
}

static int static_configure(const struct httpd_location *loc, cfg_t *opts, void **data,
                            char *err, size_t errlen)
{
	const char *root = cfg_getstr(opts, "root");
	struct static_conf *conf;

	(void)loc;
	if (root == NULL) {
		snprintf(err, errlen, "root is required (root = \"/var/www/html\")");
		return -1;
	}
	conf = calloc(1, sizeof(*conf));
	if (conf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	conf->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (conf->root_fd < 0) {
		snprintf(err, errlen, "root \"%s\": %s", root, strerror(errno));
		goto fail;
	}
	if (cfg_size(opts, "index") > INDEX_MAX) {
		snprintf(err, errlen, "index: at most %d names", INDEX_MAX);
		goto fail;
	}
	for (unsigned i = 0; i < cfg_size(opts, "index"); i++) {
		const char *name = cfg_getnstr(opts, "index", i);

		if (name[0] == '\0' || strchr(name, '/') != NULL) {
			snprintf(err, errlen, "index \"%s\" must be a plain file name", name);
			goto fail;
		}
		if ((conf->index[conf->index_count++] = strdup(name)) == NULL)
			goto fail;
	}
	conf->autoindex = cfg_getbool(opts, "autoindex");
	conf->dotfiles = cfg_getbool(opts, "dotfiles");
	conf->precompressed = cfg_getbool(opts, "precompressed");
	conf->gzip = cfg_getbool(opts, "gzip");
	conf->gzip_level = (int)cfg_getint(opts, "gzip_level");
	conf->gzip_min_length = cfg_getint(opts, "gzip_min_length");
	conf->expires = cfg_getint(opts, "expires");
	if (conf->gzip_level < 1 || conf->gzip_level > 9) {
		snprintf(err, errlen, "gzip_level must be from 1 to 9");
		goto fail;
	}
	if (conf->gzip_min_length < 0 || conf->expires < -1) {
		snprintf(err, errlen, "gzip_min_length must be >= 0 and expires >= -1");
		goto fail;
	}
	*data = conf;
	return 0;
fail:
	static_release(conf);
	return -1;
}

/* A path segment starting with '.' (but not /.well-known/, RFC 8615). */
static bool path_has_dotfile(const char *path)
{
	for (const char *p = strstr(path, "/."); p != NULL; p = strstr(p + 1, "/.")) {
		if (strncmp(p, "/.well-known/", 13) == 0 || strcmp(p, "/.well-known") == 0)
			continue;
		return true;
	}
	return false;
}

static char *uri_escape(struct httpd_pool *pool, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = httpd_pool_alloc(pool, strlen(s) * 3 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p) != NULL) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* 301 to the same path with a '/' added, query kept (as nginx and lighttpd do). */
static int redirect_to_directory(const struct httpd_request *req, struct httpd_response *res)
{
	static const char body[] = "<!DOCTYPE html>\n<html><head><title>301 Moved Permanently</title></head>\n"
	                           "<body><h1>301 Moved Permanently</h1></body></html>\n";
	/* Re-encode: the decoded path may hold bytes (CR, LF, space) unfit for a header. */
	char *path = uri_escape(req->pool, req->path);
	char *loc = path ? httpd_pool_printf(req->pool, "%s/%s%s", path, req->query ? "?" : "",
	                                     req->query ? req->query : "") : NULL;

	if (loc == NULL)
		return 500;
	httpd_response_set_status(res, 301);
	if (httpd_response_add_header(res, "Location", loc) < 0)
		return 500;
	httpd_response_add_header(res, "Content-Type", "text/html; charset=utf-8");
	httpd_response_set_body_buffer(res, body, sizeof(body) - 1);
	return HTTPD_OK;
}

struct listing_entry {
	char       *name;
	bool        dir;
	long long   size;
	time_t      mtime;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct listing_entry *x = a, *y = b;

	if (x->dir != y->dir)
		return x->dir ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Appends s to the growing page, HTML-escaped when escape is set. */
struct page {
	char  *buf;
	size_t len, cap;
	bool   failed;
};

static void page_put(struct page *pg, const char *s, bool escape)
{
	for (; *s != '\0'; s++) {
		const char *rep = NULL;
		char one[2] = { *s, '\0' };

		if (escape) {
			switch (*s) {
			case '<': rep = "&lt;"; break;
			case '>': rep = "&gt;"; break;
			case '&': rep = "&amp;"; break;
			case '"': rep = "&quot;"; break;
			case '\'': rep = "&#39;"; break;
			default: break;
			}
		}
		if (rep == NULL)
			rep = one;
		for (; *rep != '\0'; rep++) {
			if (pg->len + 1 >= pg->cap) {
				size_t cap = pg->cap ? pg->cap * 2 : 4096;
				char *grown = realloc(pg->buf, cap);

				if (grown == NULL) {
					pg->failed = true;
					return;
				}
				pg->buf = grown;
				pg->cap = cap;
			}
			pg->buf[pg->len++] = *rep;
		}
	}
}

/* An HTML listing: names escaped, directories first, sorted, with sizes and dates. */
static int autoindex_respond(struct static_conf *conf, const struct httpd_request *req,
                             struct httpd_response *res, int listed_fd)
{
	int fd = httpd_open_beneath(listed_fd, ".", O_RDONLY | O_DIRECTORY);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct listing_entry *entries = NULL;
	size_t count = 0, cap = 0;
	struct page pg = { 0 };
	struct dirent *de;
	char *body;
	int status = 500;

	if (dir == NULL) {
		if (fd >= 0)
			close(fd);
		return httpd_status_from_errno(errno);
	}
	while ((de = readdir(dir)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' && (!conf->dotfiles || strcmp(de->d_name, ".") == 0 ||
		                             strcmp(de->d_name, "..") == 0))
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (count == cap) {
			struct listing_entry *grown = realloc(entries, (cap ? cap * 2 : 64) * sizeof(*grown));

			if (grown == NULL)
				goto out;
			entries = grown;
			cap = cap ? cap * 2 : 64;
		}
		entries[count].name = httpd_pool_strdup(req->pool, de->d_name);
		entries[count].dir = S_ISDIR(st.st_mode);
		entries[count].size = (long long)st.st_size;
		entries[count].mtime = st.st_mtime;
		if (entries[count].name == NULL)
			goto out;
		count++;
	}
	qsort(entries, count, sizeof(*entries), entry_cmp);

	page_put(&pg, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ", false);
	page_put(&pg, req->path, true);
	page_put(&pg, "</title></head>\n<body><h1>Index of ", false);
	page_put(&pg, req->path, true);
	page_put(&pg, "</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>\n"
	              "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n", false);
	for (size_t i = 0; i < count; i++) {
		char size[32], date[HTTPD_DATE_LEN];
		char *href = uri_escape(req->pool, entries[i].name);

		if (href == NULL)
			goto out;
		if (entries[i].dir)
			snprintf(size, sizeof(size), "-");
		else
			snprintf(size, sizeof(size), "%lld", entries[i].size);
		page_put(&pg, "<tr><td><a href=\"", false);
		page_put(&pg, href, true);
		page_put(&pg, entries[i].dir ? "/\">" : "\">", false);
		page_put(&pg, entries[i].name, true);
		page_put(&pg, entries[i].dir ? "/</a></td><td>" : "</a></td><td>", false);
		page_put(&pg, size, false);
		page_put(&pg, "</td><td>", false);
		page_put(&pg, httpd_http_date(entries[i].mtime, date), false);
		page_put(&pg, "</td></tr>\n", false);
	}
	page_put(&pg, "</table>\n</body></html>\n", false);
	if (pg.failed)
		goto out;
	body = httpd_pool_alloc(req->pool, pg.len);
	if (body == NULL)
		goto out;
	memcpy(body, pg.buf, pg.len);
	httpd_response_add_header(res, "Content-Type", "text/html; charset=utf-8");
	httpd_response_set_body_buffer(res, body, pg.len);
	status = HTTPD_OK;
out:
	free(pg.buf);
	free(entries);
	closedir(dir);
	return status;
}

static bool type_compressible(const char *type)
{
	return strncmp(type, "text/", 5) == 0 || strstr(type, "javascript") != NULL ||
	       strstr(type, "json") != NULL || strstr(type, "xml") != NULL ||
	       strcmp(type, "image/svg+xml") == 0 || strcmp(type, "application/wasm") == 0;
}

/*
 * A precompressed sibling (name.br, name.gz) the client accepts, newer than
 * or as new as the file itself; -1 if none.
 */
static int precompressed_open(int dirfd, const char *rel, const struct stat *orig,
                              const struct httpd_request *req, struct stat *st, const char **coding)
{
	static const char *const codings[][2] = { { "br", ".br" }, { "gzip", ".gz" } };

	for (size_t i = 0; i < 2; i++) {
		char *name;
		int fd;

		if (!httpd_request_accepts_encoding(req, codings[i][0]))
			continue;
		name = httpd_pool_printf(req->pool, "%s%s", rel, codings[i][1]);
		if (name == NULL)
			return -1;
		fd = httpd_open_beneath(dirfd, name, O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) && st->st_mtime >= orig->st_mtime) {
			*coding = codings[i][0];
			return fd;
		}
		close(fd);
	}
	return -1;
}

static void cache_headers(struct static_conf *conf, struct httpd_response *res, struct httpd_pool *pool)
{
	char date[HTTPD_DATE_LEN];

	if (conf->expires < 0)
		return;
	httpd_response_add_header(res, "Cache-Control", httpd_pool_printf(pool, "max-age=%ld", conf->expires));
	httpd_response_add_header(res, "Expires", httpd_http_date(time(NULL) + conf->expires, date));
}

static int static_handle(void *data, const struct httpd_request *req, struct httpd_response *res)
{
	struct static_conf *conf = data;
	const char *rel = req->path_rest;
	const char *name = rel;
	const char *type, *coding = NULL;
	struct stat st, zst;
	int fd, zfd, rc;

	if (!conf->dotfiles && path_has_dotfile(rel))
		return 403;
	fd = httpd_open_beneath(conf->root_fd, rel, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return httpd_status_from_errno(errno);
	if (fstat(fd, &st) < 0) {
		rc = httpd_status_from_errno(errno);
		close(fd);
		return rc;
	}
	if (S_ISDIR(st.st_mode)) {
		size_t len = strlen(rel);
		int dirfd = fd;

		if (len == 0 || rel[len - 1] != '/') {
			close(dirfd);
			return redirect_to_directory(req, res);
		}
		fd = -1;
		for (size_t i = 0; i < conf->index_count && fd < 0; i++) {
			fd = httpd_open_beneath(dirfd, conf->index[i], O_RDONLY | O_NONBLOCK);
			name = conf->index[i];
		}
		if (fd < 0) {
			rc = conf->autoindex ? autoindex_respond(conf, req, res, dirfd) : 403;
			close(dirfd);
			return rc;
		}
		close(dirfd);
		if (fstat(fd, &st) < 0) {
			rc = httpd_status_from_errno(errno);
			close(fd);
			return rc;
		}
		rel = httpd_pool_printf(req->pool, "%s%s", rel, name);
		if (rel == NULL) {
			close(fd);
			return 500;
		}
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return 403;
	}
	type = httpd_mime_type(name);
	if (type_compressible(type) && (conf->precompressed || conf->gzip))
		httpd_response_add_header(res, "Vary", "Accept-Encoding");
	cache_headers(conf, res, req->pool);

	if (conf->precompressed &&
	    (zfd = precompressed_open(conf->root_fd, rel, &st, req, &zst, &coding)) >= 0) {
		close(fd);
		httpd_response_add_header(res, "Content-Encoding", coding);
		return httpd_respond_file(req, res, zfd, &zst, type, coding);
	}
	rc = httpd_respond_file(req, res, fd, &st, type, NULL);
	/* Compress whole 200 bodies only: a range of a gzip stream is not a range of the file. */
	if (rc == HTTPD_OK && conf->gzip && type_compressible(type) && st.st_size >= conf->gzip_min_length &&
	    httpd_request_header(req, "Range") == NULL && httpd_request_accepts_encoding(req, "gzip") &&
	    httpd_response_gzip(res, conf->gzip_level) < 0)
		return 500;
	return rc;
}

HTTPD_MODULE_EXPORT = {
	.abi = HTTPD_MODULE_ABI,
	.name = "static",
	.methods = HTTPD_METHOD_GET | HTTPD_METHOD_HEAD,
	.options = static_options,
	.configure = static_configure,
	.release = static_release,
	.handle = static_handle,
};
