#include "access_log.h"

#include <stdio.h>
#include <time.h>

#include "log.h"
#include "request.h"
#include "worker.h"

/* Access log fields must not let a client forge lines: escape quotes and controls. */
static size_t log_escape(char *out, size_t size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (s == NULL)
		s = "-";
	for (; *s != '\0' && o + 5 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return o;
}

/* Common Log Format time, reformatted once a second. */
static const char *log_time(time_t now)
{
	static char cached[40];
	static time_t cached_at = -1;
	struct tm tm;

	if (now != cached_at) {
		localtime_r(&now, &tm);
		strftime(cached, sizeof(cached), "%d/%b/%Y:%H:%M:%S %z", &tm);
		cached_at = now;
	}
	return cached;
}

void access_log_write(const struct request *r)
{
	const struct httpd_request *req = &r->req;
	char line[4096], method[32], target[2048], referer[512], agent[512];
	int n;

	if (!log_access_enabled())
		return;
	log_escape(method, sizeof(method), req->method_name);
	log_escape(target, sizeof(target), req->target);
	log_escape(referer, sizeof(referer), req->headers ? httpd_request_header(req, "Referer") : NULL);
	log_escape(agent, sizeof(agent), req->headers ? httpd_request_header(req, "User-Agent") : NULL);
	n = snprintf(line, sizeof(line), "%s - - [%s] \"%s %s HTTP/1.%d\" %d %llu \"%s\" \"%s\"\n",
	             req->client_addr, log_time(r->w->now), method, target, req->version == 10 ? 0 : 1,
	             r->res.status, (unsigned long long)r->res.body_sent, referer, agent);
	if (n > 0)
		log_access_line(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
