/*
 * Test only: a compromised worker.  In worker_init, once per marker file,
 * it overwrites every shared mapping the worker can write (every "rw-s"
 * line of /proc/self/maps) with 0xff bytes, then dies.  The master must
 * survive it, replace the worker and keep serving: it may trust nothing
 * a worker can write.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <httpd/module.h>

static const struct httpd_option options[] = {
	HTTPD_OPTION_STR("scribble_marker", NULL),
	HTTPD_OPTION_END
};

static int configure(const struct httpd_location *loc, const struct httpd_conf *opts, void **data, char *err,
                     size_t errlen)
{
	const char *marker = httpd_conf_str(opts, "scribble_marker");

	(void)loc;
	if (marker == NULL) {
		snprintf(err, errlen, "scribble_marker is required");
		return -1;
	}
	*data = strdup(marker);
	return *data != NULL ? 0 : -1;
}

static void release(void *data)
{
	free(data);
}

static size_t scribble_all(void)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];
	size_t pages = 0;

	if (maps == NULL)
		return 0;
	while (fgets(line, sizeof(line), maps) != NULL) {
		unsigned long start, end;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || strcmp(perms, "rw-s") != 0)
			continue;
		memset((void *)start, 0xff, end - start);
		pages += (end - start) / 4096;
	}
	fclose(maps);
	return pages;
}

static int worker_init(void *data)
{
	/* O_EXCL: the first worker scribbles, the ones that replace it serve. */
	int fd = open(data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	char msg[64];
	int len;

	if (fd < 0)
		return 0;
	len = snprintf(msg, sizeof(msg), "%zu pages\n", scribble_all());
	if (write(fd, msg, (size_t)len) != len)
		_exit(3);
	close(fd);
	_exit(3);
}

static int handler(void *data, struct httpd_request *req, struct httpd_response *res)
{
	(void)data;
	(void)req;
	httpd_response_set_body_buffer(res, "alive\n", 6);
	return HTTPD_OK;
}

static int scribble_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "scribble");
	httpd_module_options(api, options);
	httpd_hook_configure(api, configure);
	httpd_hook_release(api, release);
	httpd_hook_worker_init(api, worker_init);
	httpd_hook_handler(api, handler, HTTPD_METHOD_GET);
	return 0;
}

HTTPD_MODULE(scribble_register)
