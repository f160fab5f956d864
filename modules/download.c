/*
 * download: files under a root served as attachments.
 *
 *   location "/files/" { handler = "download"  root = "/srv/files" }
 *
 * Content-Disposition carries an ASCII fallback name and the exact name in
 * RFC 8187 form (RFC 6266 §4.3); ranges, If-Range and validators come from
 * the core (httpd_respond_file), so downloads resume.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httpd/module.h>

struct download_conf {
	int   root_fd;
	char *content_type;
	bool  listing;
};

static const struct httpd_option download_options[] = {
	HTTPD_OPTION_STR("root", NULL),
	HTTPD_OPTION_STR("content_type", "application/octet-stream"),
	HTTPD_OPTION_BOOL("listing", "false"),
	HTTPD_OPTION_END
};

static void download_release(void *data)
{
	struct download_conf *conf = data;

	if (conf->root_fd >= 0)
		close(conf->root_fd);
	free(conf->content_type);
	free(conf);
}

static int download_configure(const struct httpd_location *loc, const struct httpd_conf *opts, void **data,
                              char *err, size_t errlen)
{
	const char *root = httpd_conf_str(opts, "root");
	const char *type = httpd_conf_str(opts, "content_type");
	struct download_conf *conf;

	(void)loc;
	if (root == NULL) {
		snprintf(err, errlen, "root is required (root = \"/srv/files\")");
		return -1;
	}
	if (strpbrk(type, "\r\n") != NULL || type[0] == '\0') {
		snprintf(err, errlen, "content_type \"%s\" is not a media type", type);
		return -1;
	}
	conf = calloc(1, sizeof(*conf));
	if (conf == NULL || (conf->content_type = strdup(type)) == NULL) {
		free(conf);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	conf->listing = httpd_conf_bool(opts, "listing");
	conf->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (conf->root_fd < 0) {
		snprintf(err, errlen, "root \"%s\": %s", root, strerror(errno));
		download_release(conf);
		return -1;
	}
	*data = conf;
	return 0;
}

/* Length of the UTF-8 sequence starting with lead byte c (1 for anything else). */
static size_t utf8_len(unsigned char c)
{
	return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

/*
 * attachment; filename="ASCII fallback"; filename*=UTF-8''exact
 * The fallback keeps printable ASCII, turns '"' into '\'' and '\\', control
 * bytes and each non-ASCII character into '_', so no name can break the
 * header or the quoted string.  The exact name is percent-encoded (RFC 8187
 * attr-char), which is what browsers use.
 */

static char *content_disposition(struct httpd_pool *pool, const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(name);
	char *ascii = httpd_pool_alloc(pool, len + 1), *a = ascii;
	char *exact = httpd_pool_alloc(pool, len * 3 + 1), *e = exact;

	if (ascii == NULL || exact == NULL)
		return NULL;
	for (size_t i = 0; i < len; ) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 0x80) {
			size_t n = utf8_len(c);

			*a++ = '_';
			for (size_t k = 0; k < n && i < len; k++, i++) {
				*e++ = '%';
				*e++ = hex[(unsigned char)name[i] >> 4];
				*e++ = hex[(unsigned char)name[i] & 15];
			}
			continue;
		}
		*a++ = c == '"' ? '\'' : (c < 0x20 || c == 0x7f || c == '\\') ? '_' : (char)c;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("!#$&+-.^_`|~", c) != NULL) {
			*e++ = (char)c;
		} else {
			*e++ = '%';
			*e++ = hex[c >> 4];
			*e++ = hex[c & 15];
		}
		i++;
	}
	*a = '\0';
	*e = '\0';
	return httpd_pool_printf(pool, "attachment; filename=\"%s\"; filename*=UTF-8''%s", ascii, exact);
}

static int download_handle(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct download_conf *conf = data;
	const char *rel = req->path_rest;
	const char *base;
	char *disposition;
	struct stat st;
	int fd, rc;

	if (httpd_path_is_hidden(rel))
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

		if (len == 0 || rel[len - 1] != '/') {
			close(fd);
			return httpd_redirect_to_directory(req, res);
		}
		if (conf->listing)
			return httpd_respond_listing_async(req, res, fd, 0);
		close(fd);
		return 403;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return 403;
	}
	base = strrchr(rel, '/');
	base = base != NULL ? base + 1 : rel;
	disposition = content_disposition(req->pool, base);
	if (disposition == NULL || httpd_response_add_header(res, "Content-Disposition", disposition) < 0) {
		close(fd);
		return 500;
	}
	if (httpd_response_add_header(res, "X-Content-Type-Options", "nosniff") < 0) {
		close(fd);
		return 500;
	}
	return httpd_respond_file(req, res, fd, &st, conf->content_type, NULL);
}

static int download_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "download");
	httpd_module_options(api, download_options);
	httpd_hook_configure(api, download_configure);
	httpd_hook_release(api, download_release);
	httpd_hook_handler(api, download_handle, HTTPD_METHOD_GET | HTTPD_METHOD_HEAD);
	return 0;
}

HTTPD_MODULE(download_register)
