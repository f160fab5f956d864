/* What an upstream sends back: response heads, chunked framing, and picking servers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/http1.h"
#include "proxy_parse.h"
#include "tap.h"
#include "upstream.h"

static long head(const char *text, struct proxy_head *h, const char **why)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s", text);
	*why = NULL;
	return proxy_head_parse(buf, strlen(buf), h, why);
}

START_TEST(test_head)
{
	struct proxy_head h;
	const char *why;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A:  b \r\n\r\nbody";

	ck_assert_int_eq(head(ok, &h, &why), (long)strlen(ok) - 4);
	ck_assert_int_eq(h.status, 200);
	ck_assert_int_eq(h.content_length, 12);
	ck_assert(h.keep_alive && !h.chunked);
	ck_assert_str_eq(h.headers[1].name, "X-A");
	ck_assert_str_eq(h.headers[1].value, "b");
	ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nContent-Length: 1", &h, &why), 0);   /* more to come */
	ck_assert_int_gt(head("HTTP/1.1 204 \r\n\r\n", &h, &why), 0);
	ck_assert_int_gt(head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", &h, &why), 0);
	ck_assert(h.keep_alive && h.version == 10);
	ck_assert_int_gt(head("HTTP/1.0 200 OK\r\n\r\n", &h, &why), 0);
	ck_assert(!h.keep_alive);
	ck_assert_int_gt(head("HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n", &h, &why), 0);
	ck_assert(!h.keep_alive);
	ck_assert_int_gt(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &h, &why), 0);
	ck_assert(h.chunked && h.content_length == -1);
	/* equal repeated lengths are one; anything ambiguous is refused */
	ck_assert_int_gt(head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h, &why), 0);
	ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", &h, &why), -1);
	ck_assert_str_eq(why, "both Transfer-Encoding and Content-Length");
	ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/1.1 200 OK\r\n folded\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/2 200 OK\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/1.1 20 OK\r\n\r\n", &h, &why), -1);
	ck_assert_int_eq(head("HTTP/1.1 600 OK\r\n\r\n", &h, &why), -1);
	ck_assert(proxy_head_has_body(&(struct proxy_head){ .status = 200 }, false));
	ck_assert(!proxy_head_has_body(&(struct proxy_head){ .status = 200 }, true));
	ck_assert(!proxy_head_has_body(&(struct proxy_head){ .status = 304 }, false));
	ck_assert(!proxy_head_has_body(&(struct proxy_head){ .status = 204 }, false));
}
END_TEST

/* Decodes text fed in pieces of step bytes; returns the body, or "ERR". */
static const char *dechunk(const char *text, size_t step, bool *done)
{
	static char out[256];
	char in[256];
	size_t len = strlen(text), total = 0, pos = 0, have = 0;
	struct httpd_chunked c;
	int rc = HTTPD_CHUNKED_AGAIN;

	httpd_chunked_init(&c);
	while (pos < len || have > 0) {
		size_t take = len - pos < step ? len - pos : step, produced = 0, used = 0;

		memcpy(in + have, text + pos, take);
		have += take;
		pos += take;
		/* In place, as the proxy decodes. */
		rc = httpd_chunked_decode(&c, in, have, &used, in, have, &produced, INT64_MAX);
		if (rc != HTTPD_CHUNKED_DONE && rc != HTTPD_CHUNKED_AGAIN)
			return "ERR";
		memcpy(out + total, in, produced);
		total += produced;
		memmove(in, in + used, have - used);
		have -= used;
		if (rc == HTTPD_CHUNKED_DONE || (take == 0 && used == 0))
			break;
	}
	out[total] = '\0';
	*done = rc == HTTPD_CHUNKED_DONE;
	return out;
}

START_TEST(test_chunked)
{
	const char *body = "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
	bool done;

	for (size_t step = 1; step <= strlen(body); step++) {
		ck_assert_str_eq(dechunk(body, step, &done), "hello 0123456789");
		ck_assert(done);
	}
	ck_assert_str_eq(dechunk("5\r\nhelloX\r\n", 64, &done), "ERR");
	ck_assert_str_eq(dechunk("g\r\n", 64, &done), "ERR");
	ck_assert_str_eq(dechunk("\r\n", 64, &done), "ERR");
	/* The proxy's bound is what a file offset holds: 2^63 is past it, 2^64 past any size. */
	ck_assert_str_eq(dechunk("8000000000000000\r\n", 64, &done), "ERR");
	ck_assert_str_eq(dechunk("10000000000000000\r\n", 64, &done), "ERR");
	ck_assert_str_eq(dechunk("7fffffffffffffff\r\nab", 64, &done), "ab");
	ck_assert_str_eq(dechunk("3\r\nabc\r\n", 64, &done), "abc");
	ck_assert(!done);
}
END_TEST

START_TEST(test_balance)
{
	struct upstream u = { .balance = BALANCE_ROUND_ROBIN, .max_fails = 2, .fail_timeout_ms = 10000 };
	struct upstream_server s[3], bad;
	char err[256];
	int counts[3] = { 0, 0, 0 };

	ck_assert_int_eq(upstream_server_parse("127.0.0.1:8000 weight=3", &s[0], err, sizeof(err)), 0);
	ck_assert_int_eq(upstream_server_parse("[::1]:8001", &s[1], err, sizeof(err)), 0);
	ck_assert_int_eq(upstream_server_parse("unix:/run/app.sock", &s[2], err, sizeof(err)), 0);
	ck_assert_str_eq(s[0].name, "127.0.0.1:8000");
	ck_assert_int_eq(s[0].weight, 3);
	/* a DNS name: no address yet, its slots are filled when it resolves */
	ck_assert_int_eq(upstream_server_parse("app.internal:80 weight=2", &bad, err, sizeof(err)), 0);
	ck_assert_str_eq(bad.host, "app.internal");
	ck_assert_int_eq(bad.port, 80);
	ck_assert_int_eq(bad.addrlen, 0);
	ck_assert_int_eq(bad.weight, 2);
	free(bad.host);
	free(bad.name);
	ck_assert_int_eq(upstream_server_parse("app_internal:80", &bad, err, sizeof(err)), -1);
	ck_assert_int_eq(upstream_server_parse("-app:80", &bad, err, sizeof(err)), -1);
	ck_assert_int_eq(upstream_server_parse("app.internal", &bad, err, sizeof(err)), -1);
	ck_assert_int_eq(upstream_server_parse("1.2.3.4.5:80", &bad, err, sizeof(err)), -1);
	ck_assert_int_eq(upstream_server_parse("127.0.0.1", &bad, err, sizeof(err)), -1);
	ck_assert_int_eq(upstream_server_parse("127.0.0.1:0", &bad, err, sizeof(err)), -1);
	ck_assert_int_eq(upstream_server_parse("127.0.0.1:80 weight=0", &bad, err, sizeof(err)), -1);
	ck_assert_int_eq(upstream_server_parse("[::1]:80 weight=101", &bad, err, sizeof(err)), -1);
	u.servers = s;
	u.count = 3;
	/* smooth weighted round-robin: 3:1:1, never two of the light ones in a row */
	for (int i = 0; i < 50; i++)
		counts[upstream_pick(&u, 1000, 0) - s]++;
	ck_assert_int_eq(counts[0], 30);
	ck_assert_int_eq(counts[1], 10);
	ck_assert_int_eq(counts[2], 10);
	/* max_fails within fail_timeout takes a server out for fail_timeout */
	upstream_failed(&u, &s[1], 1000);
	ck_assert_uint_eq(s[1].down_until_ms, 0);
	upstream_failed(&u, &s[1], 2000);
	ck_assert_uint_eq(s[1].down_until_ms, 12000);
	for (int i = 0; i < 20; i++)
		ck_assert_ptr_ne(upstream_pick(&u, 5000, 0), &s[1]);
	/* excluded servers (already tried) are skipped; none left: NULL */
	ck_assert_ptr_eq(upstream_pick(&u, 5000, 1 | 4), &s[1]);   /* down, but the only one untried */
	ck_assert_ptr_null(upstream_pick(&u, 5000, 7));
	/* least connections */
	u.balance = BALANCE_LEAST_CONN;
	s[0].active = 5;
	s[1].active = 0;
	s[1].down_until_ms = 0;
	s[2].active = 1;
	ck_assert_ptr_eq(upstream_pick(&u, 20000, 0), &s[1]);
	for (int i = 0; i < 3; i++)
		free(s[i].name);
}
END_TEST

static unsigned gone_calls;

static void gone(struct upstream *u, struct upstream_server *s)
{
	(void)u;
	(void)s;
	gone_calls++;
}

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
	struct sockaddr_storage a;
	struct sockaddr_in *in = (struct sockaddr_in *)&a;

	memset(&a, 0, sizeof(a));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return a;
}

/* A name's slots across re-resolutions: what stays keeps its slot, what went is emptied, what came fills a free one. */
START_TEST(test_name_slots)
{
	struct upstream_server slots[UPSTREAM_NAME_SLOTS];
	struct upstream u = { .servers = slots, .count = UPSTREAM_NAME_SLOTS };
	struct sockaddr_storage a[UPSTREAM_NAME_SLOTS + 2];
	char err[128];
	unsigned gen_a;

	ck_assert_int_eq(upstream_server_parse("app.test:8000", &slots[0], err, sizeof(err)), 0);
	for (size_t i = 1; i < UPSTREAM_NAME_SLOTS; i++) {
		slots[i] = slots[0];
		slots[i].name = strdup(slots[0].name);
	}
	/* nothing resolved yet: nothing to pick */
	ck_assert_ptr_null(upstream_pick(&u, 1000, 0));
	a[0] = v4("10.0.0.1", 8000);
	ck_assert_uint_eq(upstream_name_set(&u, 0, a, 1, gone), 1);
	ck_assert_str_eq(slots[0].addr_text, "10.0.0.1:8000");
	ck_assert_ptr_eq(upstream_pick(&u, 1000, 0), &slots[0]);
	gen_a = slots[0].generation;
	/* 10.0.0.2 comes, 10.0.0.1 stays in its slot (same generation: its pooled connections stay) */
	a[0] = v4("10.0.0.2", 8000);
	a[1] = v4("10.0.0.1", 8000);
	a[2] = v4("10.0.0.2", 8000);   /* twice in one answer: one slot */
	ck_assert_uint_eq(upstream_name_set(&u, 0, a, 3, gone), 1);
	ck_assert_uint_eq(slots[0].generation, gen_a);
	ck_assert_str_eq(slots[1].addr_text, "10.0.0.2:8000");
	ck_assert_int_eq(slots[2].addrlen, 0);
	ck_assert_uint_eq(gone_calls, 0);
	/* both are picked, in turn */
	{
		int seen[2] = { 0, 0 };

		for (int i = 0; i < 10; i++)
			seen[upstream_pick(&u, 1000, 0) - slots]++;
		ck_assert_int_eq(seen[0], 5);
		ck_assert_int_eq(seen[1], 5);
	}
	/* 10.0.0.1 goes: its slot is emptied (its pool closed), then 10.0.0.3 takes it with a new generation */
	a[0] = v4("10.0.0.2", 8000);
	a[1] = v4("10.0.0.3", 8000);
	ck_assert_uint_eq(upstream_name_set(&u, 0, a, 2, gone), 2);
	ck_assert_uint_eq(gone_calls, 1);
	ck_assert_str_eq(slots[0].addr_text, "10.0.0.3:8000");
	ck_assert_uint_ne(slots[0].generation, gen_a);
	ck_assert_str_eq(slots[1].addr_text, "10.0.0.2:8000");
	/* more addresses than slots: the first UPSTREAM_NAME_SLOTS */
	for (size_t i = 0; i < UPSTREAM_NAME_SLOTS + 2; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.0.1.%zu", i + 1);
		a[i] = v4(ip, 8000);
	}
	upstream_name_set(&u, 0, a, UPSTREAM_NAME_SLOTS + 2, gone);
	for (size_t i = 0; i < UPSTREAM_NAME_SLOTS; i++)
		ck_assert_int_ne(slots[i].addrlen, 0);
	for (size_t i = 0; i < UPSTREAM_NAME_SLOTS; i++)
		free(slots[i].name);
	free(slots[0].host);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proxy_parse");
	TCase *tc = tcase_create("proxy_parse");

	tcase_add_test(tc, test_head);
	tcase_add_test(tc, test_chunked);
	tcase_add_test(tc, test_balance);
	tcase_add_test(tc, test_name_slots);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
