/*
 * Directory listings, the trailing-slash redirect and the hidden-file rule:
 * shared by every module that serves a tree of files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd/module.h"
#include "path.h"

/* A path segment starting with '.' (but not /.well-known/, RFC 8615). */
int httpd_path_is_hidden(const char *path)
{
	/* A path has few slashes: stopping at each is cheaper than a substring search. */
	for (const char *p = strchr(path, '/'); p != NULL; p = strchr(p + 1, '/')) {
		if (p[1] != '.' || strncmp(p, "/.well-known/", 13) == 0 || strcmp(p, "/.well-known") == 0)
			continue;
		return 1;
	}
	return 0;
}

static char *uri_escape(struct httpd_pool *pool, const char *s)
{
	size_t size = strlen(s) * 3 + 1;
	char *out = httpd_pool_alloc(pool, size);

	return out != NULL && path_encode(s, out, size) >= 0 ? out : NULL;
}

/* 301 to the same path with a '/' added, query kept (as nginx and lighttpd do). */
int httpd_redirect_to_directory(const struct httpd_request *req, struct httpd_response *res)
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
	if (httpd_response_add_header(res, "Location", loc) < 0 ||
	    httpd_response_add_header(res, "Content-Type", "text/html; charset=utf-8") < 0)
		return 500;
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
int httpd_respond_listing(const struct httpd_request *req, struct httpd_response *res, int listed_fd,
                          int show_hidden)
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

		if (de->d_name[0] == '.' && (!show_hidden || strcmp(de->d_name, ".") == 0 ||
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
	if (httpd_response_add_header(res, "Content-Type", "text/html; charset=utf-8") < 0)
		goto out;
	httpd_response_set_body_buffer(res, body, pg.len);
	status = HTTPD_OK;
out:
	free(pg.buf);
	free(entries);
	closedir(dir);
	return status;
}


struct listing_job {
	const struct httpd_request *req;
	struct httpd_response      *res;
	int                         dirfd;
	int                         show_hidden;
	int                         status;
};

/* On a pool thread: a large directory takes a while to read and sort. */
static void listing_build(void *arg)
{
	struct listing_job *job = arg;

	job->status = httpd_respond_listing(job->req, job->res, job->dirfd, job->show_hidden);
	close(job->dirfd);
}

static void listing_built(struct httpd_request *req, void *arg)
{
	struct listing_job *job = arg;

	httpd_request_finish(req, job->status);
}

int httpd_respond_listing_async(struct httpd_request *req, struct httpd_response *res, int dirfd,
                                int show_hidden)
{
	struct listing_job *job = httpd_pool_alloc(req->pool, sizeof(*job));

	if (job == NULL) {
		close(dirfd);
		return 500;
	}
	job->req = req;
	job->res = res;
	job->dirfd = dirfd;
	job->show_hidden = show_hidden;
	if (httpd_run_blocking(req, listing_build, listing_built, job) == 0)
		return HTTPD_PENDING;
	listing_build(job);   /* no thread pool: build it here rather than fail */
	return job->status;
}
