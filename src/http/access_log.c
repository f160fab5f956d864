#include "access_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "conn_proxy.h"
#include "tls.h"
#include "log.h"
#include "log_format.h"
#include "pool.h"
#include "request.h"
#include "request_variables.h"
#include "scoreboard.h"
#include "worker.h"

uint64_t access_log_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void access_log_write(const struct request *r)
{
	const struct log_format *f = r->w->config->access_format;
	static char *line;
	static size_t cap;
	/* A request refused before its server was known goes to the default server's log. */
	size_t log = (r->server != NULL ? r->server : r->w->config->default_server)->access_log;

	if (!log_access_enabled(log))
		return;
	if (r->loc != NULL && (r->loc->access_log_off || r->res.status < r->loc->access_log_min_status))
		return;
	if (cap < f->max_line) {
		char *grown = realloc(line, f->max_line);

		if (grown == NULL) {
			httpd_log(HTTPD_LOG_ERR, "out of memory for an access log line");
			return;
		}
		line = grown;
		cap = f->max_line;
	}
	log_access_line(log, line, log_format_render(f, request_variable, (void *)(uintptr_t)r, line));
}
