/*
 * static: files under a root directory, GET and HEAD.
 *
 *   location "/" { handler = "static"  root = "/var/www/html" }
 *
 * Validators, conditional and range requests come from the core
 * (httpd_respond_file), on-the-fly compression from compress and the coding
 * modules;
 * this module maps paths to files, picks index files and precompressed
 * variants, lists directories (on the worker's thread pool), and takes
 * PUT bodies as they stream in, committing them with fsync and rename off
 * the event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
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
	bool   writable;               /* PUT and DELETE */
	bool   create_dirs;            /* PUT may create missing parent directories */
	char  *root;                   /* as configured, for error messages */
	char   where[160];             /* "file:line" of the location, for refusals by rule */
};

static const struct httpd_option static_options[] = {
	HTTPD_OPTION_STR("root", NULL),
	HTTPD_OPTION_STR_LIST("index", "{index.html}"),
	HTTPD_OPTION_BOOL("autoindex", "false"),
	HTTPD_OPTION_BOOL("dotfiles", "false"),
	HTTPD_OPTION_BOOL("precompressed", "true"),
	HTTPD_OPTION_BOOL("writable", "false"),
	HTTPD_OPTION_BOOL("create_dirs", "false"),
	HTTPD_OPTION_END
};

static void static_release(void *data)
{
	struct static_conf *conf = data;

	if (conf->root_fd >= 0)
		close(conf->root_fd);
	for (size_t i = 0; i < conf->index_count; i++)
		free(conf->index[i]);
	free(conf->root);
	free(conf);
}

static int static_configure(const struct httpd_location *loc, const struct httpd_conf *opts,
                            void **data, char *err, size_t errlen)
{
	const char *root = httpd_conf_str(opts, "root");
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
	conf->root = strdup(root);
	httpd_conf_origin(opts, conf->where, sizeof(conf->where));
	conf->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (conf->root_fd < 0) {
		snprintf(err, errlen, "root \"%s\": %s", root, strerror(errno));
		goto fail;
	}
	if (httpd_conf_count(opts, "index") > INDEX_MAX) {
		snprintf(err, errlen, "index: at most %d names", INDEX_MAX);
		goto fail;
	}
	for (size_t i = 0; i < httpd_conf_count(opts, "index"); i++) {
		const char *name = httpd_conf_list_str(opts, "index", i);

		if (name[0] == '\0' || strchr(name, '/') != NULL) {
			snprintf(err, errlen, "index \"%s\" must be a plain file name", name);
			goto fail;
		}
		if ((conf->index[conf->index_count++] = strdup(name)) == NULL)
			goto fail;
	}
	conf->autoindex = httpd_conf_bool(opts, "autoindex");
	conf->dotfiles = httpd_conf_bool(opts, "dotfiles");
	conf->precompressed = httpd_conf_bool(opts, "precompressed");
	conf->writable = httpd_conf_bool(opts, "writable");
	conf->create_dirs = httpd_conf_bool(opts, "create_dirs");
	/* Read-only unless the location says otherwise. */
	httpd_location_set_methods(loc, conf->writable ? HTTPD_METHOD_GET | HTTPD_METHOD_HEAD |
	                                                 HTTPD_METHOD_PUT | HTTPD_METHOD_DELETE
	                                               : HTTPD_METHOD_GET | HTTPD_METHOD_HEAD);
	*data = conf;
	return 0;
fail:
	static_release(conf);
	return -1;
}

/*
 * A precompressed sibling (name.zst, name.br, name.gz) in the coding the
 * client prefers (ties: the location's compress order), newer than or as
 * new as the file itself; NULL if none.  Through the open-file cache, so a
 * sibling that does not exist costs no syscall either.
 */
static const struct httpd_file *precompressed_open(int dirfd, const char *rel, const struct stat *orig,
                                                   struct httpd_request *req, const char **coding)
{
	static const char *const suffixes[][2] = { { "zstd", ".zst" }, { "br", ".br" }, { "gzip", ".gz" } };
	const char *codings[3];
	size_t n;

	/* Most clients of a busy file send no Accept-Encoding: one look, not one per coding. */
	if (httpd_request_header(req, "Accept-Encoding") == NULL)
		return NULL;
	n = httpd_request_codings(req, codings, 3);
	for (size_t i = 0; i < n; i++) {
		const struct httpd_file *z;
		const char *suffix = NULL;
		char *name;

		for (size_t j = 0; j < 3; j++)
			if (strcmp(codings[i], suffixes[j][0]) == 0)
				suffix = suffixes[j][1];
		if (suffix == NULL || (name = httpd_pool_printf(req->pool, "%s%s", rel, suffix)) == NULL)
			return NULL;
		z = httpd_file_open(req, dirfd, name);
		if (z != NULL && S_ISREG(httpd_file_stat(z)->st_mode) &&
		    httpd_file_stat(z)->st_mtime >= orig->st_mtime) {
			*coding = codings[i];
			return z;
		}
	}
	return NULL;
}

/*
 * A refusal the client cannot explain: say why in the error log, with what
 * the operator needs (the file and errno, or the rule and its config line).
 * A missing file (404) is not worth a line.
 */
static int refused(const struct static_conf *conf, const struct httpd_request *req, int status,
                   const char *rel, int err, const char *rule)
{
	if (rule != NULL)
		httpd_log_request(HTTPD_LOG_INFO, req, "%d: %s (location at %s)", status, rule, conf->where);
	else if (err != ENOENT && err != ENOTDIR)
		httpd_log_request(HTTPD_LOG_ERR, req, "%d: cannot open %s%s%s: %s", status, conf->root ? conf->root : "?",
		                  rel[0] == '/' ? "" : "/", rel, strerror(err));
	return status;
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
 * An upload in progress: the body streams into a temporary dot file beside
 * the target as it arrives; the commit (fsync, rename, fsync of the
 * directory) runs on the thread pool.  Readers see the old file or the new
 * one, never a mix; a failure or a vanished client leaves the old file and
 * no temporary file.
 */
struct put_state {
	const struct httpd_request *req;
	struct httpd_response      *res;
	int                         dirfd;
	int                         fd;
	char                        tmp[64];
	const char                 *name;
	bool                        existed;
	bool                        committed;
	bool                        removed;
	int                         err;       /* errno of a failed write or commit, or 0 */
	int                         refused;   /* 412: a precondition failed at the commit */
	const char                 *failed;    /* which step failed */
};

/* Drops the temporary file now, so it is gone before the error response leaves. */
static void put_abandon(struct put_state *put)
{
	if (put->fd >= 0)
		close(put->fd);
	put->fd = -1;
	if (!put->committed && !put->removed)
		unlinkat(put->dirfd, put->tmp, 0);
	put->removed = true;
}

static void put_cleanup(void *arg)
{
	struct put_state *put = arg;

	put_abandon(put);
	close(put->dirfd);
}

/* Opens the temporary file for a PUT of req; NULL with a status in *status. */
static struct put_state *put_open(struct static_conf *conf, const struct httpd_request *req,
                                  struct httpd_response *res, int *status)
{
	const char *rel = req->path_rest;
	struct put_state *put;
	uint64_t nonce;
	struct stat st;
	int dirfd;

	if (!conf->dotfiles && httpd_path_is_hidden(rel)) {
		*status = 403;
		return NULL;
	}
	if (rel[strlen(rel) - 1] == '/') {
		*status = 409;   /* cannot PUT a directory */
		return NULL;
	}
	put = httpd_pool_alloc(req->pool, sizeof(*put));
	if (put == NULL) {
		*status = 500;
		return NULL;
	}
	memset(put, 0, sizeof(*put));
	put->req = req;
	put->res = res;
	dirfd = parent_open(conf, req, rel, &put->name, status);
	if (dirfd < 0)
		return NULL;
	if (fstatat(dirfd, put->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			close(dirfd);
			*status = 409;
			return NULL;
		}
		put->existed = true;
	}
	/* Refused before a byte of the body is read; checked again at the commit. */
	*status = httpd_request_preconditions(req, put->existed ? &st : NULL, NULL);
	if (*status != 0) {
		close(dirfd);
		return NULL;
	}
	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
		nonce = (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)req;
	/* A dot name: hidden from listings and refused to clients while it exists. */
	snprintf(put->tmp, sizeof(put->tmp), ".upload-%016" PRIx64, nonce);
	put->fd = openat(dirfd, put->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (put->fd < 0) {
		*status = write_status(errno);
		httpd_log_request(HTTPD_LOG_ERR, req, "cannot create %s: %s", put->tmp, strerror(errno));
		close(dirfd);
		return NULL;
	}
	put->dirfd = dirfd;
	if (httpd_pool_cleanup(req->pool, put_cleanup, put) < 0) {
		put_cleanup(put);
		*status = 500;
		return NULL;
	}
	return put;
}

/* The body, piece by piece, straight into the temporary file: memory stays flat. */
static int static_body(void *data, struct httpd_request *req, struct httpd_response *res,
                       enum httpd_body_event ev, const void *buf, size_t len)
{
	struct put_state *put;
	int status = 500;

	if (req->method != HTTPD_METHOD_PUT)
		return HTTPD_DECLINED;
	if (ev == HTTPD_BODY_START) {
		put = put_open(data, req, res, &status);
		if (put == NULL || httpd_request_note_set(req, "static.put", put) < 0)
			return put == NULL ? status : 500;
		return HTTPD_OK;
	}
	put = httpd_request_note(req, "static.put");
	if (ev == HTTPD_BODY_DATA && write_all(put->fd, buf, len) < 0) {
		int err = errno;

		httpd_log_request(HTTPD_LOG_ERR, req, "writing %s: %s", put->tmp, strerror(err));
		put_abandon(put);
		return write_status(err);
	}
	return HTTPD_OK;
}

/*
 * Writers of one directory take turns between checking a target's
 * preconditions and replacing or removing it, across workers: two
 * conditional PUTs of one file cannot both succeed.  Readers never wait.
 */
static int target_lock(int dirfd, const struct httpd_request *req)
{
	while (flock(dirfd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			httpd_log_request(HTTPD_LOG_ERR, req, "cannot lock the directory of %s: %s", req->path_rest,
			                  strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* 0, or the status of a failed precondition against name as it is now (under target_lock). */
static int target_preconditions(const struct httpd_request *req, int dirfd, const char *name, bool *exists)
{
	struct stat st;

	*exists = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	return httpd_request_preconditions(req, *exists ? &st : NULL, NULL);
}

/* On a pool thread: make the bytes durable, then the name. */
static void put_commit(void *arg)
{
	struct put_state *put = arg;

	if (fsync(put->fd) < 0) {
		put->err = errno;
		put->failed = "fsync";
		return;
	}
	if (close(put->fd) < 0) {
		put->fd = -1;
		put->err = errno;
		put->failed = "close";
		return;
	}
	put->fd = -1;
	if (target_lock(put->dirfd, put->req) < 0) {
		put->err = errno;
		put->failed = "flock";
		return;
	}
	/* The preconditions hold for the file as it is at the rename, whoever wrote it meanwhile. */
	put->refused = target_preconditions(put->req, put->dirfd, put->name, &put->existed);
	if (put->refused == 0 && renameat(put->dirfd, put->tmp, put->dirfd, put->name) < 0) {
		put->err = errno;
		put->failed = "rename";
	}
	flock(put->dirfd, LOCK_UN);
	if (put->err != 0 || put->refused != 0)
		return;
	put->committed = true;
	if (fsync(put->dirfd) < 0)
		httpd_log_request(HTTPD_LOG_WARN, put->req, "fsync of the directory failed: %s", strerror(errno));
}

static int put_answer(struct put_state *put)
{
	if (put->refused != 0) {
		put_abandon(put);
		return put->refused;
	}
	if (put->err != 0) {
		put_abandon(put);
		httpd_log_request(HTTPD_LOG_ERR, put->req, "%s: %s", put->failed, strerror(put->err));
		return write_status(put->err);
	}
	httpd_response_set_status(put->res, put->existed ? 204 : 201);
	if (!put->existed && httpd_response_add_header(put->res, "Location", put->req->target) < 0)
		return 500;
	return HTTPD_OK;
}

static void put_committed(struct httpd_request *req, void *arg)
{
	struct static_conf *conf = httpd_request_note(req, "static.conf");

	if (conf != NULL)
		httpd_file_forget(conf->root_fd, req->path_rest);
	httpd_request_finish(req, put_answer(arg));
}

static int static_put(struct static_conf *conf, struct httpd_request *req, struct httpd_response *res)
{
	struct put_state *put = httpd_request_note(req, "static.put");
	int status = 500;

	/* No body at all (Content-Length: 0): the empty file is made now. */
	if (put == NULL && (put = put_open(conf, req, res, &status)) == NULL)
		return status;
	if (httpd_request_note_set(req, "static.conf", conf) == 0 &&
	    httpd_run_blocking(req, put_commit, put_committed, put) == 0)
		return HTTPD_PENDING;
	put_commit(put);   /* no thread pool: commit here rather than fail */
	httpd_file_forget(conf->root_fd, req->path_rest);
	return put_answer(put);
}

static int static_delete(struct static_conf *conf, const struct httpd_request *req, struct httpd_response *res)
{
	const char *rel = req->path_rest, *name;
	int dirfd, status = 500;
	bool exists;

	if (rel[strlen(rel) - 1] == '/')
		return 409;
	dirfd = parent_open(conf, req, rel, &name, &status);
	if (dirfd < 0) {
		/* No parent, no file: only If-Match can fail on what does not exist. */
		if (status == 409 && httpd_request_preconditions(req, NULL, NULL) != 0)
			return 412;
		return status == 409 ? 404 : status;
	}
	if (target_lock(dirfd, req) < 0) {
		close(dirfd);
		return 500;
	}
	status = target_preconditions(req, dirfd, name, &exists);
	if (status == 0 && unlinkat(dirfd, name, 0) < 0)
		status = errno == ENOENT ? 404 : errno == EISDIR ? 409 : write_status(errno);
	flock(dirfd, LOCK_UN);
	close(dirfd);
	if (status != 0)
		return status;
	httpd_file_forget(conf->root_fd, rel);
	httpd_response_set_status(res, 204);
	return HTTPD_OK;
}

static int static_handle(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct static_conf *conf = data;
	const char *rel = req->path_rest;
	const char *name = rel;
	const char *type, *coding = NULL;
	const struct httpd_file *file, *zfile;
	const struct stat *st;

	if (!conf->dotfiles && httpd_path_is_hidden(rel))
		return refused(conf, req, 403, rel, 0, "a hidden path and dotfiles = false");
	if (req->method == HTTPD_METHOD_PUT)
		return static_put(conf, req, res);
	if (req->method == HTTPD_METHOD_DELETE)
		return static_delete(conf, req, res);
	file = httpd_file_open(req, conf->root_fd, rel);
	if (file == NULL)
		return refused(conf, req, httpd_status_from_errno(errno), rel, errno, NULL);
	st = httpd_file_stat(file);
	if (S_ISDIR(st->st_mode)) {
		size_t len = strlen(rel);
		const char *dir = rel;

		if (len == 0 || rel[len - 1] != '/')
			return httpd_redirect_to_directory(req, res);
		file = NULL;
		for (size_t i = 0; i < conf->index_count && file == NULL; i++) {
			name = conf->index[i];
			rel = httpd_pool_printf(req->pool, "%s%s", dir, name);
			if (rel == NULL)
				return 500;
			file = httpd_file_open(req, conf->root_fd, rel);
		}
		if (file == NULL) {
			int dirfd;

			if (!conf->autoindex)
				return refused(conf, req, 403, rel, 0, "a directory without an index file and autoindex = false");
			dirfd = httpd_open_beneath(conf->root_fd, dir, O_RDONLY | O_DIRECTORY);
			if (dirfd < 0)
				return httpd_status_from_errno(errno);
			return httpd_respond_listing_async(req, res, dirfd, conf->dotfiles);
		}
		st = httpd_file_stat(file);
	}
	if (!S_ISREG(st->st_mode))
		return refused(conf, req, 403, rel, 0, "not a regular file");
	type = httpd_mime_type(name);
	/* Expires and Cache-Control: the core's expires directive, for every handler. */
	if (conf->precompressed && httpd_mime_compressible(type) &&
	    httpd_response_add_header(res, "Vary", "Accept-Encoding") < 0)
		return 500;
	if (conf->precompressed && (zfile = precompressed_open(conf->root_fd, rel, st, req, &coding)) != NULL) {
		if (httpd_response_add_header(res, "Content-Encoding", coding) < 0)
			return 500;
		return httpd_respond_cached_file(req, res, zfile, type, coding);
	}
	return httpd_respond_cached_file(req, res, file, type, NULL);
}

static int static_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "static");
	httpd_module_options(api, static_options);
	httpd_hook_configure(api, static_configure);
	httpd_hook_release(api, static_release);
	httpd_hook_handler(api, static_handle,
	                   HTTPD_METHOD_GET | HTTPD_METHOD_HEAD | HTTPD_METHOD_PUT | HTTPD_METHOD_DELETE);
	httpd_hook_body(api, static_body);
	return 0;
}

HTTPD_MODULE(static_register)
