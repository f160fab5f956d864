/*
 * libFuzzer target: the HTTP/2 input path.  The input is what a client
 * sends after the preface: frames fed, in pieces of a fuzzed size, into a
 * libnghttp2 server session set up as the daemon sets it up (manual window
 * updates, the flood limits), whose header blocks are gathered as
 * http/http2.c gathers them and mapped by http_head_from_h2 into the head
 * every module sees.  libnghttp2's memory is the daemon's (http2_mem.c).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc/http \
 *       t/fuzz/fuzz_h2.c src/http/http_parse.c src/http/http2_mem.c -lnghttp2 -o fuzz_h2
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "http2_mem.h"
#include "http_parse.h"

#define FIELDS_MAX 64
#define ARENA      65536

struct gather {
	struct h2_pseudo    ps;
	struct httpd_header fields[FIELDS_MAX];
	size_t              count;
	char                arena[ARENA];
	size_t              used;
};

static const char *keep(struct gather *g, const uint8_t *p, size_t len)
{
	char *out;

	if (g->used + len + 1 > ARENA)
		return NULL;
	out = g->arena + g->used;
	memcpy(out, p, len);
	out[len] = '\0';
	g->used += len + 1;
	return out;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
	struct gather *g = user;

	(void)s;
	(void)frame;
	memset(&g->ps, 0, sizeof(g->ps));
	g->count = 0;
	g->used = 0;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
	struct gather *g = user;
	const char *n = keep(g, name, namelen), *v = keep(g, value, valuelen);

	(void)s;
	(void)frame;
	(void)flags;
	if (n == NULL || v == NULL)
		return 0;
	if (n[0] == ':') {
		if (strcmp(n, ":method") == 0)
			g->ps.method = v, g->ps.method_len = valuelen;
		else if (strcmp(n, ":scheme") == 0)
			g->ps.scheme = v;
		else if (strcmp(n, ":authority") == 0)
			g->ps.authority = v, g->ps.authority_len = valuelen;
		else if (strcmp(n, ":path") == 0)
			g->ps.path = v, g->ps.path_len = valuelen;
		else if (strcmp(n, ":protocol") == 0)
			g->ps.protocol = v;
		return 0;
	}
	if (g->count < FIELDS_MAX)
		g->fields[g->count++] = (struct httpd_header){ n, v, namelen, valuelen };
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
	struct gather *g = user;
	struct http_head head;

	(void)s;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
	    http_head_from_h2(&g->ps, g->fields, g->count, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0,
	                      &head) == 0) {
		/* What request_begin relies on: a path inside the target, a host that was checked. */
		if (head.path == NULL || head.path_len == 0 || head.version != 20)
			__builtin_trap();
		if (head.form == TARGET_ORIGIN && head.path[0] != '/')
			__builtin_trap();
	}
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
	(void)flags;
	(void)data;
	(void)user;
	return nghttp2_session_consume(s, id, len);
}

/* libnghttp2's memory as the daemon gives it (http2_mem.c), poisoned while free under AddressSanitizer. */
static void *mem_malloc(size_t n, void *user)
{
	(void)user;
	return http2_block_alloc(n);
}

static void mem_free(void *p, void *user)
{
	(void)user;
	http2_block_free(p);
}

static void *mem_calloc(size_t count, size_t size, void *user)
{
	void *p;

	(void)user;
	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	if ((p = http2_block_alloc(count * size)) != NULL)
		memset(p, 0, count * size);
	return p;
}

static void *mem_realloc(void *p, size_t n, void *user)
{
	(void)user;
	return http2_block_realloc(p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static nghttp2_mem mem = { NULL, mem_malloc, mem_free, mem_calloc, mem_realloc };
	static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static struct gather g;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	nghttp2_session *s;
	size_t step, off = 0;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 97 + 1;
	data++;
	size--;
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return 0;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_option_new(&opt);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
	nghttp2_option_set_max_continuations(opt, 8);
	nghttp2_option_set_max_settings(opt, 32);
	if (nghttp2_session_server_new3(&s, cbs, &g, opt, &mem) == 0) {
		const uint8_t *out;

		if (nghttp2_session_mem_recv(s, preface, sizeof(preface) - 1) == (ssize_t)(sizeof(preface) - 1)) {
			while (off < size) {
				size_t take = size - off < step ? size - off : step;
				ssize_t n = nghttp2_session_mem_recv(s, data + off, take);

				if (n < 0)
					break;
				off += (size_t)n;
				while (nghttp2_session_mem_send(s, &out) > 0)
					;   /* drain what the session answers */
			}
		}
		nghttp2_session_del(s);
	}
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	return 0;
}
