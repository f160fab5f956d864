/*
 * status: the scoreboard as a page for people and for machines.
 *
 *   location "/server-status" { handler = "status" }
 *   location "/metrics"       { handler = "status"  format = "prometheus" }
 *
 * HTML (a per-worker table, totals and an inline SVG chart of requests per
 * second; no JavaScript, nothing external), JSON (?format=json), Apache's
 * ?auto text, and Prometheus text exposition 0.0.4 (?format=prometheus, or
 * OpenMetrics 1.0 when the scraper asks for it in Accept).  Only clients in
 * allow (the real client address, after real_ip_from) may look.
 *
 * An in-tree module: it reads the core's scoreboard (src/os/scoreboard.h),
 * which is not part of the module ABI.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <httpd/module.h>

#include "real_ip.h"
#include "scoreboard.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

#define ALLOW_MAX 32

enum format { FMT_HTML, FMT_JSON, FMT_AUTO, FMT_PROMETHEUS, FMT_OPENMETRICS };

struct status_location {
	struct cidr allow[ALLOW_MAX];
	size_t      allow_count;
	enum format format;
};

static const struct httpd_option status_options[] = {
	HTTPD_OPTION_STR_LIST("allow", "{\"127.0.0.1\", \"::1\"}"),
	HTTPD_OPTION_STR("format", "html"),
	HTTPD_OPTION_END
};

/* --- output ------------------------------------------------------------- */

struct out {
	struct httpd_pool *pool;
	char              *buf;
	size_t             len, cap;
	int                failed;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if (o->buf != NULL && (size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		{
			size_t cap = o->cap ? o->cap * 2 : 16384;
			char *grown;

			while (cap - o->len <= (size_t)n)
				cap *= 2;
			grown = httpd_pool_alloc(o->pool, cap);
			if (grown == NULL) {
				o->failed = 1;
				return;
			}
			if (o->len > 0)
				memcpy(grown, o->buf, o->len);
			o->buf = grown;
			o->cap = cap;
		}
	}
}

/* --- the numbers -------------------------------------------------------- */

struct snapshot {
	struct score_counters total;
	uint64_t              reading, writing, keepalive, draining_conns;
	unsigned              workers, draining;
	int64_t               now, started;
};

static void snapshot_take(struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->now = time(NULL);
	if (scoreboard == NULL)
		return;
	s->started = scoreboard->started;
	score_counters_read(&s->total, &scoreboard->retired);
	for (int i = 0; i < SCORE_SLOTS; i++) {
		const struct score_slot *sl = &scoreboard->slot[i];
		unsigned state = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		struct score_counters c;

		if (state == SCORE_FREE)
			continue;
		score_counters_read(&c, &sl->c);
		score_counters_add(&s->total, &c);
		if (state == SCORE_DRAINING) {
			s->draining++;
			s->draining_conns += __atomic_load_n(&sl->connections, __ATOMIC_RELAXED);
			continue;
		}
		s->workers++;
		s->reading += __atomic_load_n(&sl->reading, __ATOMIC_RELAXED);
		s->writing += __atomic_load_n(&sl->writing, __ATOMIC_RELAXED);
		s->keepalive += __atomic_load_n(&sl->keepalive, __ATOMIC_RELAXED);
	}
}

static const char *state_name(unsigned state)
{
	return state == SCORE_STARTING ? "starting" : state == SCORE_SERVING ? "serving"
	     : state == SCORE_DRAINING ? "draining" : "free";
}

/* Requests per second over the last n samples, oldest first; returns how many there are. */
static unsigned history(double *rates, unsigned n)
{
	unsigned at, have, k = 0;

	if (scoreboard == NULL)
		return 0;
	at = __atomic_load_n(&scoreboard->history_at, __ATOMIC_ACQUIRE);
	have = at < SCORE_HISTORY ? at : SCORE_HISTORY;
	if (have < 2)
		return 0;
	if (have - 1 < n)
		n = have - 1;
	for (unsigned i = at - n; i < at; i++) {
		unsigned cur = i % SCORE_HISTORY, prev = (i - 1) % SCORE_HISTORY;
		int64_t dt = scoreboard->history_time[cur] - scoreboard->history_time[prev];
		uint64_t dr = scoreboard->history_requests[cur] - scoreboard->history_requests[prev];

		rates[k++] = dt > 0 ? (double)dr / (double)dt : 0.0;
	}
	return k;
}

/* --- formats ------------------------------------------------------------ */

static void format_prometheus(struct out *o, const struct snapshot *s, int openmetrics)
{
	const struct score_counters *t = &s->total;
	uint64_t cumulative = 0;
	/* OpenMetrics names a counter family without its _total suffix. */
	const char *suffix = openmetrics ? "" : "_total";

	out_printf(o, "# HELP httpd_requests%s Requests answered, by status code and method.\n"
	              "# TYPE httpd_requests%s counter\n", suffix, suffix);
	for (int k = 0; k < SCORE_CODES; k++)
		if (t->codes[k].key != 0)
			out_printf(o, "httpd_requests_total{code=\"%u\",method=\"%s\"} %llu\n", t->codes[k].key >> 4,
			           score_method_names[(t->codes[k].key & 15u) < SM_COUNT ? t->codes[k].key & 15u : SM_OTHER],
			           (unsigned long long)t->codes[k].count);
	if (t->codes_other > 0)
		out_printf(o, "httpd_requests_total{code=\"other\",method=\"other\"} %llu\n",
		           (unsigned long long)t->codes_other);
	out_printf(o, "# HELP httpd_request_duration_seconds Time from the request head to the log line.\n"
	              "# TYPE httpd_request_duration_seconds histogram\n");
	for (int b = 0; b < SCORE_BUCKETS; b++) {
		cumulative += t->buckets[b];
		if (b == SCORE_BUCKETS - 1)
			out_printf(o, "httpd_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
		else
			out_printf(o, "httpd_request_duration_seconds_bucket{le=\"%g\"} %llu\n", score_bucket_ms[b] / 1000.0,
			           (unsigned long long)cumulative);
	}
	out_printf(o, "httpd_request_duration_seconds_sum %.3f\nhttpd_request_duration_seconds_count %llu\n",
	           (double)t->duration_ms_sum / 1000.0, (unsigned long long)cumulative);
	out_printf(o, "# HELP httpd_received_bytes%s Bytes of request heads and bodies received.\n"
	              "# TYPE httpd_received_bytes%s counter\nhttpd_received_bytes_total %llu\n"
	              "# HELP httpd_sent_bytes%s Bytes of response bodies sent.\n"
	              "# TYPE httpd_sent_bytes%s counter\nhttpd_sent_bytes_total %llu\n",
	           suffix, suffix, (unsigned long long)t->bytes_in, suffix, suffix, (unsigned long long)t->bytes_out);
	out_printf(o, "# HELP httpd_connections_accepted%s Connections accepted.\n"
	              "# TYPE httpd_connections_accepted%s counter\nhttpd_connections_accepted_total %llu\n"
	              "# HELP httpd_connections_handled%s Connections taken on.\n"
	              "# TYPE httpd_connections_handled%s counter\nhttpd_connections_handled_total %llu\n"
	              "# HELP httpd_connections_refused%s Connections closed unanswered (PROXY protocol).\n"
	              "# TYPE httpd_connections_refused%s counter\nhttpd_connections_refused_total %llu\n",
	           suffix, suffix, (unsigned long long)t->accepted, suffix, suffix, (unsigned long long)t->handled,
	           suffix, suffix, (unsigned long long)t->refused);
	out_printf(o, "# HELP httpd_redis_errors%s Redis commands that failed: unreachable, timed out or refused.\n"
	              "# TYPE httpd_redis_errors%s counter\nhttpd_redis_errors_total %llu\n"
	              "# HELP httpd_redis_request_duration_seconds Time from a Redis command to its answer.\n"
	              "# TYPE httpd_redis_request_duration_seconds histogram\n",
	           suffix, suffix, (unsigned long long)t->redis_errors);
	cumulative = 0;
	for (int b = 0; b < SCORE_REDIS_BUCKETS; b++) {
		cumulative += t->redis_buckets[b];
		if (b == SCORE_REDIS_BUCKETS - 1)
			out_printf(o, "httpd_redis_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
			           (unsigned long long)cumulative);
		else
			out_printf(o, "httpd_redis_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
			           score_redis_bucket_us[b] / 1e6, (unsigned long long)cumulative);
	}
	out_printf(o, "httpd_redis_request_duration_seconds_sum %.6f\nhttpd_redis_request_duration_seconds_count %llu\n",
	           (double)t->redis_duration_us_sum / 1e6, (unsigned long long)cumulative);
	out_printf(o, "# HELP httpd_http2_sessions_parked%s Quiet HTTP/2 connections whose session was given back.\n"
	              "# TYPE httpd_http2_sessions_parked%s counter\nhttpd_http2_sessions_parked_total %llu\n"
	              "# HELP httpd_http2_sessions_resumed%s Parked HTTP/2 sessions taken up again.\n"
	              "# TYPE httpd_http2_sessions_resumed%s counter\nhttpd_http2_sessions_resumed_total %llu\n",
	           suffix, suffix, (unsigned long long)t->h2_parked, suffix, suffix, (unsigned long long)t->h2_resumed);
	out_printf(o, "# HELP httpd_connections Open connections by state.\n# TYPE httpd_connections gauge\n"
	              "httpd_connections{state=\"reading\"} %llu\nhttpd_connections{state=\"writing\"} %llu\n"
	              "httpd_connections{state=\"keepalive\"} %llu\nhttpd_connections{state=\"draining\"} %llu\n",
	           (unsigned long long)s->reading, (unsigned long long)s->writing, (unsigned long long)s->keepalive,
	           (unsigned long long)s->draining_conns);
	out_printf(o, "# HELP httpd_worker_requests%s Requests answered by each running worker.\n"
	              "# TYPE httpd_worker_requests%s counter\n", suffix, suffix);
	for (int i = 0; scoreboard != NULL && i < SCORE_SLOTS; i++) {
		const struct score_slot *sl = &scoreboard->slot[i];

		if (__atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) == SCORE_FREE)
			continue;
		out_printf(o, "httpd_worker_requests_total{slot=\"%d\",pid=\"%d\",generation=\"%u\"} %llu\n", i, sl->pid,
		           sl->generation, (unsigned long long)__atomic_load_n(&sl->c.requests, __ATOMIC_RELAXED));
	}
	out_printf(o, "# HELP httpd_worker_connections Open connections of each running worker.\n"
	              "# TYPE httpd_worker_connections gauge\n");
	for (int i = 0; scoreboard != NULL && i < SCORE_SLOTS; i++) {
		const struct score_slot *sl = &scoreboard->slot[i];

		if (__atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) == SCORE_FREE)
			continue;
		out_printf(o, "httpd_worker_connections{slot=\"%d\",pid=\"%d\",generation=\"%u\"} %llu\n", i, sl->pid,
		           sl->generation, (unsigned long long)__atomic_load_n(&sl->connections, __ATOMIC_RELAXED));
	}
	out_printf(o, "# HELP httpd_reloads%s Configuration reloads by result.\n# TYPE httpd_reloads%s counter\n"
	              "httpd_reloads_total{result=\"ok\"} %llu\nhttpd_reloads_total{result=\"failed\"} %llu\n",
	           suffix, suffix, scoreboard ? (unsigned long long)scoreboard->reloads_ok : 0ull,
	           scoreboard ? (unsigned long long)scoreboard->reloads_failed : 0ull);
	out_printf(o, "# HELP httpd_build_info The running version.\n# TYPE httpd_build_info gauge\n"
	              "httpd_build_info{version=\"%s\",abi=\"%d\"} 1\n", PACKAGE_VERSION, HTTPD_MODULE_ABI);
	out_printf(o, "# HELP httpd_start_time_seconds When the server started.\n"
	              "# TYPE httpd_start_time_seconds gauge\nhttpd_start_time_seconds %lld\n", (long long)s->started);
	if (openmetrics)
		out_printf(o, "# EOF\n");
}

static void format_json(struct out *o, const struct snapshot *s)
{
	const struct score_counters *t = &s->total;
	int first = 1;

	out_printf(o, "{\"version\":\"%s\",\"uptime\":%lld,\"workers\":[", PACKAGE_VERSION,
	           (long long)(s->now - s->started));
	for (int i = 0; scoreboard != NULL && i < SCORE_SLOTS; i++) {
		const struct score_slot *sl = &scoreboard->slot[i];
		unsigned state = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);

		if (state == SCORE_FREE)
			continue;
		out_printf(o, "%s{\"slot\":%d,\"worker\":%u,\"pid\":%d,\"generation\":%u,\"state\":\"%s\",\"requests\":%llu,"
		              "\"connections\":%llu,\"reading\":%llu,\"writing\":%llu,\"keepalive\":%llu,"
		              "\"bytes_out\":%llu}",
		           first ? "" : ",", i, sl->worker_id, sl->pid, sl->generation, state_name(state),
		           (unsigned long long)__atomic_load_n(&sl->c.requests, __ATOMIC_RELAXED),
		           (unsigned long long)__atomic_load_n(&sl->connections, __ATOMIC_RELAXED),
		           (unsigned long long)__atomic_load_n(&sl->reading, __ATOMIC_RELAXED),
		           (unsigned long long)__atomic_load_n(&sl->writing, __ATOMIC_RELAXED),
		           (unsigned long long)__atomic_load_n(&sl->keepalive, __ATOMIC_RELAXED),
		           (unsigned long long)__atomic_load_n(&sl->c.bytes_out, __ATOMIC_RELAXED));
		first = 0;
	}
	out_printf(o, "],\"totals\":{\"requests\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"accepted\":%llu,"
	              "\"handled\":%llu,\"refused\":%llu,\"reading\":%llu,\"writing\":%llu,\"keepalive\":%llu,"
	              "\"reloads_ok\":%llu,\"reloads_failed\":%llu,\"status\":{",
	           (unsigned long long)t->requests, (unsigned long long)t->bytes_in, (unsigned long long)t->bytes_out,
	           (unsigned long long)t->accepted, (unsigned long long)t->handled, (unsigned long long)t->refused,
	           (unsigned long long)s->reading, (unsigned long long)s->writing, (unsigned long long)s->keepalive,
	           scoreboard ? (unsigned long long)scoreboard->reloads_ok : 0ull,
	           scoreboard ? (unsigned long long)scoreboard->reloads_failed : 0ull);
	first = 1;
	for (int k = 0; k < SCORE_CODES; k++) {
		uint64_t sum = 0;
		uint32_t code = t->codes[k].key >> 4;
		int seen = 0;

		if (t->codes[k].key == 0)
			continue;
		for (int j = 0; j < k; j++)
			seen |= t->codes[j].key >> 4 == code;
		if (seen)
			continue;
		for (int j = k; j < SCORE_CODES; j++)
			if (t->codes[j].key != 0 && t->codes[j].key >> 4 == code)
				sum += t->codes[j].count;
		out_printf(o, "%s\"%u\":%llu", first ? "" : ",", code, (unsigned long long)sum);
		first = 0;
	}
	out_printf(o, "}}}\n");
}

static void format_auto(struct out *o, const struct snapshot *s)
{
	int64_t up = s->now - s->started > 0 ? s->now - s->started : 1;

	/* What Apache's mod_status ?auto says, so existing exporters and scripts work. */
	out_printf(o, "ServerVersion: prefork-httpd/%s\nServerUptimeSeconds: %lld\nUptime: %lld\n"
	              "Total Accesses: %llu\nTotal kBytes: %llu\nReqPerSec: %.6f\nBytesPerSec: %.6f\n"
	              "BusyWorkers: %llu\nIdleWorkers: %llu\nConnsTotal: %llu\nConnsAsyncWriting: %llu\n"
	              "ConnsAsyncKeepAlive: %llu\nConnsAsyncClosing: 0\nProcesses: %u\nStoppingProcesses: %u\n",
	           PACKAGE_VERSION, (long long)up, (long long)up, (unsigned long long)s->total.requests,
	           (unsigned long long)(s->total.bytes_out / 1024), (double)s->total.requests / (double)up,
	           (double)s->total.bytes_out / (double)up, (unsigned long long)(s->reading + s->writing),
	           (unsigned long long)s->keepalive, (unsigned long long)(s->reading + s->writing + s->keepalive),
	           (unsigned long long)s->writing, (unsigned long long)s->keepalive, s->workers, s->draining);
}

static void svg_chart(struct out *o)
{
	double rates[SCORE_HISTORY], max = 1.0;
	unsigned n = history(rates, SCORE_HISTORY - 1);
	const int w = 600, h = 150;

	for (unsigned i = 0; i < n; i++)
		if (rates[i] > max)
			max = rates[i];
	out_printf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	              "role=\"img\" aria-label=\"requests per second\"><rect width=\"%d\" height=\"%d\" fill=\"#f7f7f7\" "
	              "stroke=\"#ccc\"/>", w, h + 20, w, h + 20, w, h);
	if (n > 1) {
		out_printf(o, "<polyline fill=\"none\" stroke=\"#2b6cb0\" stroke-width=\"2\" points=\"");
		for (unsigned i = 0; i < n; i++)
			out_printf(o, "%.1f,%.1f ", (double)i * (w - 1) / (double)(n - 1), h - rates[i] / max * (h - 10));
		out_printf(o, "\"/>");
	}
	out_printf(o, "<text x=\"4\" y=\"14\" font-size=\"12\" font-family=\"sans-serif\">%.0f req/s</text>"
	              "<text x=\"4\" y=\"%d\" font-size=\"12\" font-family=\"sans-serif\">last %u s, now %.0f req/s"
	              "</text></svg>", max, h + 16, n, n > 0 ? rates[n - 1] : 0.0);
}

static void format_html(struct out *o, const struct snapshot *s)
{
	const struct score_counters *t = &s->total;

	out_printf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>prefork-httpd status</title>"
	              "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
	              "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#eee}"
	              "td.s{text-align:left}</style></head><body>\n<h1>prefork-httpd %s</h1>\n"
	              "<p>Up %lld s; %u workers serving, %u draining; %llu reloads, %llu failed.</p>\n",
	           PACKAGE_VERSION, (long long)(s->now - s->started), s->workers, s->draining,
	           scoreboard ? (unsigned long long)scoreboard->reloads_ok : 0ull,
	           scoreboard ? (unsigned long long)scoreboard->reloads_failed : 0ull);
	svg_chart(o);
	out_printf(o, "\n<h2>Totals</h2>\n<table><tr><th>requests</th><th>bytes in</th><th>bytes out</th><th>accepted</th>"
	              "<th>refused</th><th>reading</th><th>writing</th><th>keep-alive</th></tr>\n"
	              "<tr><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td>"
	              "<td>%llu</td></tr></table>\n<h2>Workers</h2>\n<table><tr><th>slot</th><th>worker</th><th>pid</th>"
	              "<th>generation</th><th>state</th><th>requests</th><th>connections</th><th>serving</th></tr>\n",
	           (unsigned long long)t->requests, (unsigned long long)t->bytes_in, (unsigned long long)t->bytes_out,
	           (unsigned long long)t->accepted, (unsigned long long)t->refused, (unsigned long long)s->reading,
	           (unsigned long long)s->writing, (unsigned long long)s->keepalive);
	for (int i = 0; scoreboard != NULL && i < SCORE_SLOTS; i++) {
		const struct score_slot *sl = &scoreboard->slot[i];
		unsigned state = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		char req[SCORE_REQUEST * 6 + 1];
		size_t r = 0;

		if (state == SCORE_FREE)
			continue;
		/* The request text is the client's: escape it for HTML. */
		for (size_t k = 0; k < SCORE_REQUEST && sl->request[k] != '\0'; k++) {
			char ch = sl->request[k];
			const char *e = ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '&' ? "&amp;" : ch == '"' ? "&quot;" : NULL;

			if (e != NULL) {
				memcpy(req + r, e, strlen(e));
				r += strlen(e);
			} else if ((unsigned char)ch >= 0x20 && (unsigned char)ch < 0x7f) {
				req[r++] = ch;
			} else {
				req[r++] = '?';
			}
		}
		req[r] = '\0';
		out_printf(o, "<tr><td>%d</td><td>%u</td><td>%d</td><td>%u</td><td class=\"s\">%s</td><td>%llu</td>"
		              "<td>%llu</td><td class=\"s\">%s</td></tr>\n", i, sl->worker_id, sl->pid, sl->generation,
		           state_name(state), (unsigned long long)__atomic_load_n(&sl->c.requests, __ATOMIC_RELAXED),
		           (unsigned long long)__atomic_load_n(&sl->connections, __ATOMIC_RELAXED), req);
	}
	out_printf(o, "</table>\n<p>Also as <a href=\"?format=json\">JSON</a>, <a href=\"?auto\">text</a> and "
	              "<a href=\"?format=prometheus\">Prometheus metrics</a>.</p>\n</body></html>\n");
}

/* --- the module --------------------------------------------------------- */

static int status_configure(const struct httpd_location *loc, const struct httpd_conf *opts, void **data,
                            char *err, size_t errlen)
{
	struct status_location *sl = calloc(1, sizeof(*sl));
	const char *format = httpd_conf_str(opts, "format");

	(void)loc;
	if (sl == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*data = sl;
	sl->allow_count = httpd_conf_count(opts, "allow");
	if (sl->allow_count > ALLOW_MAX) {
		snprintf(err, errlen, "status: at most %d allow entries", ALLOW_MAX);
		return -1;
	}
	for (size_t i = 0; i < sl->allow_count; i++) {
		if (cidr_parse(httpd_conf_list_str(opts, "allow", i), &sl->allow[i]) < 0) {
			snprintf(err, errlen, "status: allow \"%s\" is not an address or CIDR block",
			         httpd_conf_list_str(opts, "allow", i));
			return -1;
		}
	}
	if (strcmp(format, "html") == 0)
		sl->format = FMT_HTML;
	else if (strcmp(format, "json") == 0)
		sl->format = FMT_JSON;
	else if (strcmp(format, "auto") == 0)
		sl->format = FMT_AUTO;
	else if (strcmp(format, "prometheus") == 0)
		sl->format = FMT_PROMETHEUS;
	else {
		snprintf(err, errlen, "status: format must be \"html\", \"json\", \"auto\" or \"prometheus\", not \"%s\"",
		         format);
		return -1;
	}
	return 0;
}

static void status_release(void *data)
{
	free(data);
}

static int query_has(const char *query, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = query; p != NULL && *p != '\0'; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
		if (strncmp(p, item, n) == 0 && (p[n] == '&' || p[n] == '\0'))
			return 1;
	return 0;
}

static int status_handle(void *data, struct httpd_request *req, struct httpd_response *res)
{
	const struct status_location *sl = data;
	struct out o = { .pool = req->pool };
	struct snapshot s;
	enum format f = sl->format;
	const char *accept = httpd_request_header(req, "Accept");
	static const char *const types[] = {
		"text/html; charset=utf-8", "application/json", "text/plain; charset=utf-8",
		"text/plain; version=0.0.4; charset=utf-8", "application/openmetrics-text; version=1.0.0; charset=utf-8",
	};

	if (!cidr_list_contains(sl->allow, sl->allow_count, req->client_addr))
		return 403;
	if (query_has(req->query, "format=json"))
		f = FMT_JSON;
	else if (query_has(req->query, "auto"))
		f = FMT_AUTO;
	else if (query_has(req->query, "format=prometheus"))
		f = FMT_PROMETHEUS;
	if (f == FMT_PROMETHEUS && accept != NULL && strstr(accept, "application/openmetrics-text") != NULL)
		f = FMT_OPENMETRICS;
	snapshot_take(&s);
	switch (f) {
	case FMT_HTML:        format_html(&o, &s); break;
	case FMT_JSON:        format_json(&o, &s); break;
	case FMT_AUTO:        format_auto(&o, &s); break;
	case FMT_PROMETHEUS:  format_prometheus(&o, &s, 0); break;
	case FMT_OPENMETRICS: format_prometheus(&o, &s, 1); break;
	}
	if (o.failed)
		return 500;
	if (httpd_response_add_header(res, "Content-Type", types[f]) < 0 ||
	    httpd_response_add_header(res, "Cache-Control", "no-store") < 0)
		return 500;
	httpd_response_set_body_buffer(res, o.buf ? o.buf : "", o.len);
	return HTTPD_OK;
}

static int status_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "status");
	httpd_module_options(api, status_options);
	httpd_hook_configure(api, status_configure);
	httpd_hook_release(api, status_release);
	httpd_hook_handler(api, status_handle, HTTPD_METHOD_GET | HTTPD_METHOD_HEAD);
	return 0;
}

HTTPD_MODULE(status_register)
