/*
 * static: files under a root directory, GET and HEAD.
 *
 *   location "/" { handler = "static"  root = "/var/www/html"  index = "index.html" }
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httpd/module.h>

struct static_conf {
	int   root_fd;      /* O_PATH directory: every open is beneath it */
	char *root;
	char *index;
};

static cfg_opt_t static_options[] = {
	CFG_STR("root", NULL, CFGF_NODEFAULT),
	CFG_STR("index", "index.html", CFGF_NONE),
	CFG_END()
};

static int static_configure(const struct httpd_location *loc, cfg_t *opts, void **data,
                            char *err, size_t errlen)
{
	const char *root = cfg_getstr(opts, "root");
	const char *index = cfg_getstr(opts, "index");
	struct static_conf *conf;
	int fd;

	(void)loc;
	if (root == NULL) {
		snprintf(err, errlen, "root is required (root = \"/var/www/html\")");
		return -1;
	}
	if (index == NULL || index[0] == '\0' || strchr(index, '/') != NULL) {
		snprintf(err, errlen, "index must be a plain file name");
		return -1;
	}
	fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "root \"%s\": %s", root, strerror(errno));
		return -1;
	}
	conf = calloc(1, sizeof(*conf));
	if (conf == NULL || (conf->root = strdup(root)) == NULL || (conf->index = strdup(index)) == NULL) {
		if (conf != NULL)
			free(conf->root);
		free(conf);
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	conf->root_fd = fd;
	*data = conf;
	return 0;
}

static void static_release(void *data)
{
	struct static_conf *conf = data;

	close(conf->root_fd);
	free(conf->root);
	free(conf->index);
	free(conf);
}

/* 301 to the same path with a '/' added, query kept (as nginx and lighttpd do). */
static int redirect_to_directory(const struct httpd_request *req, struct httpd_response *res)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(req->path);
	char *loc = httpd_pool_alloc(req->pool, len * 3 + 2 + (req->query ? strlen(req->query) + 1 : 0) + 1);
	char *o = loc;

	if (loc == NULL)
		return 500;
	/* Re-encode: the decoded path may hold bytes (CR, LF, space) unfit for a header. */
	for (const unsigned char *p = (const unsigned char *)req->path; *p != '\0'; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '%' && *p != '?' && *p != '#' && *p != '"') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o++ = '/';
	if (req->query != NULL) {
		*o++ = '?';
		memcpy(o, req->query, strlen(req->query));
		o += strlen(req->query);
	}
	*o = '\0';
	httpd_response_set_status(res, 301);
	if (httpd_response_add_header(res, "Location", loc) < 0)
		return 500;
	{
		static const char body[] = "<!DOCTYPE html>\n<html><head><title>301 Moved Permanently</title></head>\n"
		                           "<body><h1>301 Moved Permanently</h1></body></html>\n";
		httpd_response_add_header(res, "Content-Type", "text/html; charset=utf-8");
		httpd_response_set_body_buffer(res, body, sizeof(body) - 1);
	}
	return HTTPD_OK;
}

static int static_handle(void *data, const struct httpd_request *req, struct httpd_response *res)
{
	struct static_conf *conf = data;
	const char *rel = req->path_rest;
	const char *name = rel;
	char date[HTTPD_DATE_LEN];
	struct stat st;
	int fd;

	fd = httpd_open_beneath(conf->root_fd, rel, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return httpd_status_from_errno(errno);
	if (fstat(fd, &st) < 0)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		size_t len = strlen(rel);
		int dirfd = fd;

		if (len == 0 || rel[len - 1] != '/') {
			close(fd);
			return redirect_to_directory(req, res);
		}
		fd = httpd_open_beneath(dirfd, conf->index, O_RDONLY | O_NONBLOCK);
		close(dirfd);
		if (fd < 0)
			return errno == ENOENT ? 403 : httpd_status_from_errno(errno);
		if (fstat(fd, &st) < 0)
			goto fail;
		name = conf->index;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return 403;
	}
	httpd_response_add_header(res, "Content-Type", httpd_mime_type(name));
	httpd_response_add_header(res, "Last-Modified", httpd_http_date(st.st_mtime, date));
	httpd_response_set_body_file(res, fd, 0, st.st_size);
	return HTTPD_OK;
fail:
	{
		int status = httpd_status_from_errno(errno);
		close(fd);
		return status;
	}
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
