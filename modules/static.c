/*
 * static: files under a root directory, GET and HEAD.
 *
 *   location "/" { handler = "static"  root = "/var/www/html" }
 *
 * Validators, conditional and range requests come from the core
 * (httpd_respond_file); this module maps paths to files, picks index files
 * and compressed variants, and lists directories when asked to.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/random.h>
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
	bool   writable;               /* PUT and DELETE */
	bool   create_dirs;            /* PUT may create missing parent directories */
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
	CFG_BOOL("writable", cfg_false, CFGF_NONE),
	CFG_BOOL("create_dirs", cfg_false, CFGF_NONE),
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
	conf->writable = cfg_getbool(opts, "writable");
	conf->create_dirs = cfg_getbool(opts, "create_dirs");
	/* Read-only unless the location says otherwise. */
	httpd_location_set_methods(loc, conf->writable ? HTTPD_METHOD_GET | HTTPD_METHOD_HEAD |
	                                                 HTTPD_METHOD_PUT | HTTPD_METHOD_DELETE
	                                               : HTTPD_METHOD_GET | HTTPD_METHOD_HEAD);
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

/* Map a failed write, fsync or rename to a status: a full disk is 507 (RFC 4918 §11.5). */
static int write_status(int err)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT:
		return 507;
	case EACCES:
	case EPERM:
	case EROFS:
		return 403;
	default:
		return 500;
	}
}

/* Creates each missing directory of dir, each one beneath the one before. */
static int dirs_create(int root_fd, char *dir, int *status)
{
	int cur = httpd_open_beneath(root_fd, ".", O_PATH | O_DIRECTORY);
	char *save = NULL;

	for (char *seg = strtok_r(dir, "/", &save); seg != NULL && cur >= 0; seg = strtok_r(NULL, "/", &save)) {
		int next;

		if (mkdirat(cur, seg, 0755) < 0 && errno != EEXIST) {
			*status = write_status(errno);
			close(cur);
			return -1;
		}
		next = httpd_open_beneath(cur, seg, O_PATH | O_DIRECTORY);
		close(cur);
		cur = next;
		/* strtok_r cut the string: put the '/' back for the caller. */
		if (save != NULL && save > seg && save[-1] == '\0')
			save[-1] = '/';
	}
	if (cur < 0) {
		*status = errno == ENOTDIR ? 409 : httpd_status_from_errno(errno);
		return -1;
	}
	close(cur);
	return 0;
}

/*
 * Opens the directory that will hold rel's last segment (O_RDONLY so it can
 * be fsynced), creating missing directories beneath the root when allowed.
 * Sets *name to the last segment.  -1 with a status in *status.
 */
static int parent_open(struct static_conf *conf, const struct httpd_request *req, const char *rel,
                       const char **name, int *status)
{
	const char *slash = strrchr(rel, '/');
	char *dir = httpd_pool_alloc(req->pool, (size_t)(slash - rel) + 2);
	int fd;

	*name = slash + 1;
	if (dir == NULL) {
		*status = 500;
		return -1;
	}
	memcpy(dir, rel, (size_t)(slash - rel) + 1);
	dir[slash - rel + 1] = '\0';
	if (conf->create_dirs && dirs_create(conf->root_fd, dir, status) < 0)
		return -1;
	fd = httpd_open_beneath(conf->root_fd, dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		/* RFC 9110 §9.3.4: a missing parent is a conflict with the resource's state. */
		*status = errno == ENOENT || errno == ENOTDIR ? 409 : httpd_status_from_errno(errno);
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * PUT: the body goes to a temporary file beside the target, is fsynced and
 * renamed over it, then the directory is fsynced.  Readers see the old file
 * or the new one, never a mix; a failure leaves the old file and no
 * temporary file.  Concurrent PUTs end with one body or the other.
 */
static int static_put(struct static_conf *conf, const struct httpd_request *req, struct httpd_response *res)
{
	const char *rel = req->path_rest, *name;
	char tmp[64];
	uint64_t nonce;
	struct stat st;
	bool existed;
	int dirfd, fd, status = 500, err;

	if (rel[strlen(rel) - 1] == '/')
		return 409;   /* cannot PUT a directory */
	dirfd = parent_open(conf, req, rel, &name, &status);
	if (dirfd < 0)
		return status;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			close(dirfd);
			return 409;
		}
		existed = true;
	} else {
		existed = false;
	}
	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
		nonce = (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)req;
	/* A dot name: hidden from listings and refused to clients while it exists. */
	snprintf(tmp, sizeof(tmp), ".upload-%016" PRIx64, nonce);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		status = write_status(errno);
		close(dirfd);
		return status;
	}
	if (write_all(fd, req->body ? req->body : "", req->body_len) < 0 || fsync(fd) < 0) {
		err = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
		err = errno;
		goto fail;
	}
	if (fsync(dirfd) < 0)
		httpd_log(HTTPD_LOG_WARN, "PUT %s: fsync of the directory failed: %s", req->path, strerror(errno));
	close(dirfd);
	httpd_response_set_status(res, existed ? 204 : 201);
	if (!existed)
		httpd_response_add_header(res, "Location", req->target);
	return HTTPD_OK;
fail:
	unlinkat(dirfd, tmp, 0);
	close(dirfd);
	httpd_log(HTTPD_LOG_ERR, "PUT %s: %s", req->path, strerror(err));
	return write_status(err);
}

static int static_delete(struct static_conf *conf, const struct httpd_request *req, struct httpd_response *res)
{
	const char *rel = req->path_rest, *name;
	int dirfd, status = 500;

	if (rel[strlen(rel) - 1] == '/')
		return 409;
	dirfd = parent_open(conf, req, rel, &name, &status);
	if (dirfd < 0)
		return status == 409 ? 404 : status;
	if (unlinkat(dirfd, name, 0) < 0) {
		status = errno == ENOENT ? 404 : errno == EISDIR ? 409 : write_status(errno);
		close(dirfd);
		return status;
	}
	close(dirfd);
	httpd_response_set_status(res, 204);
	return HTTPD_OK;
}

static int static_handle(void *data, const struct httpd_request *req, struct httpd_response *res)
{
	struct static_conf *conf = data;
	const char *rel = req->path_rest;
	const char *name = rel;
	const char *type, *coding = NULL;
	struct stat st, zst;
	int fd, zfd, rc;

	if (!conf->dotfiles && httpd_path_is_hidden(rel))
		return 403;
	if (req->method == HTTPD_METHOD_PUT)
		return static_put(conf, req, res);
	if (req->method == HTTPD_METHOD_DELETE)
		return static_delete(conf, req, res);
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
			return httpd_redirect_to_directory(req, res);
		}
		fd = -1;
		for (size_t i = 0; i < conf->index_count && fd < 0; i++) {
			fd = httpd_open_beneath(dirfd, conf->index[i], O_RDONLY | O_NONBLOCK);
			name = conf->index[i];
		}
		if (fd < 0) {
			rc = conf->autoindex ? httpd_respond_listing(req, res, dirfd, conf->dotfiles) : 403;
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
	.methods = HTTPD_METHOD_GET | HTTPD_METHOD_HEAD | HTTPD_METHOD_PUT | HTTPD_METHOD_DELETE,
	.options = static_options,
	.configure = static_configure,
	.release = static_release,
	.handle = static_handle,
};
