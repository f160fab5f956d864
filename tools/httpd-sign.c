/*
 * httpd-sign: signs a request for prefork-httpd's sign module (RFC 9421
 * hmac-sha256, or classic mode) with the same canonicalisation code the
 * module verifies with, and prints it for curl:
 *
 *   httpd-sign --key-id app-1 --secret-file key --url http://127.0.0.1/api/x | curl -K -
 *
 * --verify reads a captured request on standard input and prints the base
 * and the verdict, to find out why a signature does not match.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "sf.h"
#include "sign_base.h"

#define HEADERS_MAX 64

struct request {
	const char        *method;
	char               scheme[8];
	char               host[512];
	char              *target;
	struct sign_header headers[HEADERS_MAX + 8];
	size_t             header_count;
	char              *body;
	size_t             body_len;
	const char        *body_file;    /* --data @FILE: curl reads it itself */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "httpd-sign: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void usage(FILE *out, int status)
{
	fputs("usage: httpd-sign --key-id ID --secret-file FILE --url URL [--method M]\n"
	      "                  [--data STRING|@FILE|@-] [-H 'Name: value']... [--cover LIST]\n"
	      "                  [--digest sha-256|sha-512] [--mode rfc9421|classic]\n"
	      "                  [--created T] [--nonce N] [--format curl-config|headers|http]\n"
	      "                  [--print-base]\n"
	      "       httpd-sign --verify --key-id ID --secret-file FILE [--scheme http|https] < request\n"
	      "See httpd-sign(1).\n", out);
	exit(status);
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	while (buf != NULL) {
		size_t got = fread(buf + n, 1, cap - n - 1, f);

		n += got;
		if (got == 0)
			break;
		if (cap - n < 2) {
			char *grown = realloc(buf, cap * 2);

			if (grown == NULL) {
				free(buf);
				return NULL;
			}
			buf = grown;
			cap *= 2;
		}
	}
	if (buf == NULL)
		return NULL;
	buf[n] = '\0';
	*len = n;
	return buf;
}

static size_t secret_load(const char *path, uint8_t *out, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	long len;
	char *text;

	if (f == NULL)
		die("cannot read the secret file: %s", strerror(errno));
	text = read_all(f, &n);
	fclose(f);
	if (text == NULL)
		die("%s", "out of memory");
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	len = sf_base64_decode(text, n, out, size);
	sign_wipe(text, n);
	free(text);
	if (len < 32)
		die("%s: the secret must be base64 of at least 32 bytes", path);
	return (size_t)len;
}

static void url_parse(const char *url, struct request *r)
{
	const char *p = strstr(url, "://"), *slash;
	size_t n;

	if (p == NULL || (size_t)(p - url) >= sizeof(r->scheme))
		die("--url %s: not http://HOST[:PORT]/PATH", url);
	memcpy(r->scheme, url, (size_t)(p - url));
	r->scheme[p - url] = '\0';
	if (strcmp(r->scheme, "http") != 0 && strcmp(r->scheme, "https") != 0)
		die("--url %s: only http and https", url);
	p += 3;
	slash = p + strcspn(p, "/?");
	n = (size_t)(slash - p);
	if (n == 0 || n >= sizeof(r->host))
		die("--url %s: no host", url);
	memcpy(r->host, p, n);
	r->host[n] = '\0';
	if (*slash == '/') {
		r->target = strdup(slash);
	} else {
		size_t len = strlen(slash);

		r->target = malloc(len + 2);
		if (r->target != NULL) {
			r->target[0] = '/';
			memcpy(r->target + 1, slash, len + 1);
		}
	}
	if (r->target == NULL)
		die("%s", "out of memory");
}

static void header_add(struct request *r, const char *line)
{
	const char *colon = strchr(line, ':');
	char *name, *value;

	if (colon == NULL || colon == line)
		die("-H %s: not 'Name: value'", line);
	if (r->header_count >= HEADERS_MAX)
		die("%s", "too many headers");
	name = strndup(line, (size_t)(colon - line));
	value = strdup(colon + 1 + strspn(colon + 1, " \t"));
	if (name == NULL || value == NULL)
		die("%s", "out of memory");
	r->headers[r->header_count++] = (struct sign_header){ name, value };
}

static void header_set(struct request *r, const char *name, const char *value)
{
	char *n = strdup(name), *v = strdup(value);

	if (n == NULL || v == NULL)
		die("%s", "out of memory");
	r->headers[r->header_count++] = (struct sign_header){ n, v };
}

static const char *header_get(const struct request *r, const char *name)
{
	for (size_t i = 0; i < r->header_count; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void body_load(struct request *r, const char *data)
{
	if (data[0] == '@') {
		FILE *f = strcmp(data, "@-") == 0 ? stdin : fopen(data + 1, "rb");

		if (f == NULL)
			die("--data: %s", strerror(errno));
		r->body = read_all(f, &r->body_len);
		if (f != stdin) {
			fclose(f);
			r->body_file = data + 1;
		}
	} else {
		r->body = strdup(data);
		r->body_len = strlen(data);
	}
	if (r->body == NULL)
		die("%s", "out of memory");
}

static void digest_of(const struct request *r, enum sign_digest alg, uint8_t *out, size_t *len)
{
	struct sign_hash *h = sign_hash_new(alg);

	if (h == NULL)
		die("%s", "libcrypto failed");
	sign_hash_update(h, r->body ? r->body : "", r->body_len);
	*len = sign_hash_final(h, out);
}

static struct sign_msg msg_of(const struct request *r)
{
	return (struct sign_msg){ r->method, r->target, r->scheme, r->host, r->headers, r->header_count };
}

/* The Signature-Input member value for the covered components and parameters. */
static char *input_make(const char *cover, bool body, long long created, const char *key_id, const char *nonce)
{
	struct sign_buf b = { 0 };
	char *list = strdup(cover), *save = NULL;
	bool first = true, digest = false;
	char num[32];

	if (list == NULL)
		die("%s", "out of memory");
	sign_buf_put(&b, "(", 1);
	for (char *c = strtok_r(list, ", ", &save); c != NULL; c = strtok_r(NULL, ", ", &save)) {
		if (!first)
			sign_buf_put(&b, " ", 1);
		first = false;
		if (c[0] == '"') {
			sign_buf_puts(&b, c);   /* already an identifier, maybe with parameters */
		} else {
			sign_buf_put(&b, "\"", 1);
			sign_buf_puts(&b, c);
			sign_buf_put(&b, "\"", 1);
		}
		digest |= strcmp(c, "content-digest") == 0 || strcmp(c, "\"content-digest\"") == 0;
	}
	if (body && !digest) {
		if (!first)
			sign_buf_put(&b, " ", 1);
		sign_buf_puts(&b, "\"content-digest\"");
	}
	snprintf(num, sizeof(num), "%lld", created);
	sign_buf_puts(&b, ");created=");
	sign_buf_puts(&b, num);
	sign_buf_puts(&b, ";keyid=\"");
	sign_buf_puts(&b, key_id);
	sign_buf_puts(&b, "\";alg=\"hmac-sha256\";nonce=\"");
	sign_buf_puts(&b, nonce);
	sign_buf_puts(&b, "\"");
	free(list);
	if (b.failed)
		die("%s", "out of memory");
	return b.p;
}

static void base_for(const struct request *r, const char *input_value, struct sign_buf *base)
{
	static char arena_buf[1 << 16];
	struct sf_arena arena = { arena_buf, 0, sizeof(arena_buf) };
	struct sign_msg m = msg_of(r);
	struct sf_dict d;
	struct sign_buf text = { 0 };
	enum sign_result rc;

	sign_buf_puts(&text, "sig1=");
	sign_buf_puts(&text, input_value);
	if (text.failed || sf_parse_dict(text.p, text.len, &arena, &d) < 0 || d.count != 1)
		die("--cover: \"%s\" is not a list of component names", input_value);
	rc = sign_base_build(&m, &d.members[0], &arena, base);
	sign_buf_free(&text);
	if (rc == SIGN_COMPONENT_UNAVAILABLE)
		die("%s", "a covered component is not in the request (a header not given with -H?)");
	if (rc != SIGN_OK)
		die("%s", "the covered components are malformed");
}

static void classic_sign(const struct request *r, const uint8_t *key, size_t key_len, const char *ts,
                         const char *nonce, char *mac_hex, struct sign_buf *s)
{
	uint8_t d[64], mac[32];
	char hex[129];
	size_t n;
	struct sign_msg m = msg_of(r);

	digest_of(r, SIGN_SHA256, d, &n);
	sign_hex(d, n, hex);
	sign_classic_string(&m, ts, nonce, hex, s);
	if (s->failed || !sign_hmac_sha256(key, key_len, s->p, s->len, mac))
		die("%s", "signing failed");
	sign_hex(mac, 32, mac_hex);
}

/* A curl config string: quotes and backslashes escaped; control bytes cannot be carried. */
static void curl_quoted(const char *key, const char *value, size_t len)
{
	printf("%s = \"", key);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)value[i];

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\r')
			fputs("\\r", stdout);
		else if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch < 0x20 || ch == 0x7f)
			die("%s", "the body has control bytes a curl config cannot carry: use --data @FILE");
		else
			putchar(ch);
	}
	fputs("\"\n", stdout);
}

static void output(const struct request *r, const char *format, const char *url)
{
	if (strcmp(format, "headers") == 0) {
		for (size_t i = 0; i < r->header_count; i++)
			printf("%s: %s\n", r->headers[i].name, r->headers[i].value);
		return;
	}
	if (strcmp(format, "http") == 0) {
		printf("%s %s HTTP/1.1\r\nHost: %s\r\n", r->method, r->target, r->host);
		for (size_t i = 0; i < r->header_count; i++)
			printf("%s: %s\r\n", r->headers[i].name, r->headers[i].value);
		if (r->body != NULL)
			printf("Content-Length: %zu\r\n", r->body_len);
		fputs("\r\n", stdout);
		if (r->body != NULL)
			fwrite(r->body, 1, r->body_len, stdout);
		return;
	}
	curl_quoted("url", url, strlen(url));
	curl_quoted("request", r->method, strlen(r->method));
	for (size_t i = 0; i < r->header_count; i++) {
		char line[8192];

		snprintf(line, sizeof(line), "%s: %s", r->headers[i].name, r->headers[i].value);
		curl_quoted("header", line, strlen(line));
	}
	if (r->body_file != NULL) {
		char at[4096];

		snprintf(at, sizeof(at), "@%s", r->body_file);
		curl_quoted("data-binary", at, strlen(at));
	} else if (r->body != NULL) {
		if (r->body_len > 0 && r->body[0] == '@')
			die("%s", "a body starting with '@' must be given with --data @FILE");
		curl_quoted("data-binary", r->body, r->body_len);
	}
}

/* --verify: a captured request on stdin. */
static int verify(const uint8_t *key, size_t key_len, const char *key_id, const char *scheme)
{
	size_t len, body_len = 0;
	char *raw = read_all(stdin, &len), *line, *save = NULL, *head_end;
	struct request r = { 0 };
	const char *si, *sg;

	if (raw == NULL || (head_end = strstr(raw, "\r\n\r\n")) == NULL)
		die("%s", "standard input is not an HTTP request (CRLF line ends, blank line after the head)");
	*head_end = '\0';
	body_len = len - (size_t)(head_end + 4 - raw);
	snprintf(r.scheme, sizeof(r.scheme), "%s", scheme);
	line = strtok_r(raw, "\r\n", &save);
	if (line == NULL)
		die("%s", "empty request");
	r.method = strtok(line, " ");
	r.target = strtok(NULL, " ");
	if (r.method == NULL || r.target == NULL)
		die("%s", "bad request line");
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		if (strncasecmp(line, "Host:", 5) == 0)
			snprintf(r.host, sizeof(r.host), "%s", line + 5 + strspn(line + 5, " \t"));
		header_add(&r, line);
	}
	r.body = head_end + 4;
	r.body_len = body_len;
	si = header_get(&r, "Signature-Input");
	sg = header_get(&r, "Signature");
	if (si != NULL && sg != NULL) {
		static char arena_buf[1 << 16];
		struct sf_arena arena = { arena_buf, 0, sizeof(arena_buf) };
		struct sf_dict in, sigs;
		struct sign_msg m = msg_of(&r);
		int verdict = 1;

		if (sf_parse_dict(si, strlen(si), &arena, &in) < 0 || sf_parse_dict(sg, strlen(sg), &arena, &sigs) < 0)
			die("%s", "Signature-Input or Signature is not a structured-field dictionary");
		for (size_t i = 0; i < in.count; i++) {
			const struct sf_member *s = sf_dict_get(&sigs, in.members[i].key);
			const struct sf_param *kid = sf_params_get(in.members[i].params, in.members[i].nparams, "keyid");
			struct sign_buf base = { 0 };
			uint8_t mac[32];

			printf("label %s, keyid %s\n", in.members[i].key,
			       kid != NULL && kid->value.type == SF_STRING ? kid->value.str : "(none)");
			if (s == NULL || s->is_inner || s->item.bare.type != SF_BYTES) {
				puts("  no matching Signature member");
				continue;
			}
			if (sign_base_build(&m, &in.members[i], &arena, &base) != SIGN_OK) {
				puts("  no base: a covered component is missing or malformed");
				continue;
			}
			printf("--- signature base ---\n%s\n---\n", base.p);
			if (kid == NULL || kid->value.type != SF_STRING || strcmp(kid->value.str, key_id) != 0) {
				puts("  another key id: not checked");
			} else if (sign_hmac_sha256(key, key_len, base.p, base.len, mac) && s->item.bare.len == 32 &&
			           sign_equal(mac, s->item.bare.str, 32)) {
				puts("  signature: OK");
				verdict = 0;
			} else {
				puts("  signature: MISMATCH");
			}
			sign_buf_free(&base);
		}
		return verdict;
	}
	if (header_get(&r, "X-Sign") != NULL) {
		struct sign_buf s = { 0 };
		char mac_hex[65];
		const char *ts = header_get(&r, "X-Sign-Timestamp"), *nonce = header_get(&r, "X-Sign-Nonce");

		classic_sign(&r, key, key_len, ts ? ts : "", nonce ? nonce : "", mac_hex, &s);
		printf("--- canonical string ---\n%s\n---\n", s.p);
		puts(strcmp(mac_hex, header_get(&r, "X-Sign")) == 0 ? "  signature: OK" : "  signature: MISMATCH");
		return strcmp(mac_hex, header_get(&r, "X-Sign")) == 0 ? 0 : 1;
	}
	puts("no signature in the request");
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "key-id", required_argument, NULL, 'k' }, { "secret-file", required_argument, NULL, 's' },
		{ "method", required_argument, NULL, 'X' }, { "url", required_argument, NULL, 'u' },
		{ "data", required_argument, NULL, 'd' }, { "header", required_argument, NULL, 'H' },
		{ "cover", required_argument, NULL, 'c' }, { "digest", required_argument, NULL, 'D' },
		{ "mode", required_argument, NULL, 'm' }, { "created", required_argument, NULL, 'C' },
		{ "nonce", required_argument, NULL, 'n' }, { "format", required_argument, NULL, 'f' },
		{ "print-base", no_argument, NULL, 'p' }, { "verify", no_argument, NULL, 'V' },
		{ "scheme", required_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct request r = { 0 };
	const char *key_id = NULL, *secret_file = NULL, *url = NULL, *data = NULL, *cover = "@method,@target-uri";
	const char *digest = "sha-256", *mode = "rfc9421", *format = "curl-config", *nonce = NULL, *scheme = "http";
	long long created = (long long)time(NULL);
	bool print_base = false, do_verify = false;
	uint8_t key[1024];
	size_t key_len;
	char nonce_buf[33];
	int opt;

	while ((opt = getopt_long(argc, argv, "H:X:d:h", longs, NULL)) != -1) {
		switch (opt) {
		case 'k': key_id = optarg; break;
		case 's': secret_file = optarg; break;
		case 'X': r.method = optarg; break;
		case 'u': url = optarg; break;
		case 'd': data = optarg; break;
		case 'H': header_add(&r, optarg); break;
		case 'c': cover = optarg; break;
		case 'D': digest = optarg; break;
		case 'm': mode = optarg; break;
		case 'C': created = strtoll(optarg, NULL, 10); break;
		case 'n': nonce = optarg; break;
		case 'f': format = optarg; break;
		case 'p': print_base = true; break;
		case 'V': do_verify = true; break;
		case 'S': scheme = optarg; break;
		case 'h': usage(stdout, 0); break;
		default: usage(stderr, 2);
		}
	}
	if (key_id == NULL || secret_file == NULL || (!do_verify && url == NULL) || optind != argc)
		usage(stderr, 2);
	key_len = secret_load(secret_file, key, sizeof(key));
	if (do_verify)
		return verify(key, key_len, key_id, scheme);
	if (strcmp(format, "curl-config") != 0 && strcmp(format, "headers") != 0 && strcmp(format, "http") != 0)
		die("--format %s: curl-config, headers or http", format);
	url_parse(url, &r);
	if (data != NULL)
		body_load(&r, data);
	if (r.method == NULL)
		r.method = data != NULL ? "POST" : "GET";
	if (nonce == NULL) {
		uint8_t random[16];

		if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
			die("getrandom: %s", strerror(errno));
		sign_hex(random, sizeof(random), nonce_buf);
		nonce = nonce_buf;
	}
	if (strcmp(mode, "classic") == 0) {
		struct sign_buf s = { 0 };
		char mac_hex[65], ts[32];

		snprintf(ts, sizeof(ts), "%lld", created);
		classic_sign(&r, key, key_len, ts, nonce, mac_hex, &s);
		if (print_base)
			fprintf(stderr, "%s\n", s.p);
		header_set(&r, "X-Sign-Key", key_id);
		header_set(&r, "X-Sign-Timestamp", ts);
		header_set(&r, "X-Sign-Nonce", nonce);
		header_set(&r, "X-Sign", mac_hex);
		sign_buf_free(&s);
	} else if (strcmp(mode, "rfc9421") == 0) {
		struct sign_buf base = { 0 }, field = { 0 };
		uint8_t mac[32], d[64];
		char b64[128], *input;
		size_t n;

		if (data != NULL) {
			enum sign_digest alg = strcmp(digest, "sha-512") == 0 ? SIGN_SHA512 : SIGN_SHA256;

			if (strcmp(digest, "sha-256") != 0 && strcmp(digest, "sha-512") != 0)
				die("--digest %s: sha-256 or sha-512", digest);
			digest_of(&r, alg, d, &n);
			sf_base64_encode(d, n, b64);
			sign_buf_puts(&field, digest);
			sign_buf_puts(&field, "=:");
			sign_buf_puts(&field, b64);
			sign_buf_puts(&field, ":");
			header_set(&r, "Content-Digest", field.p);
			sign_buf_free(&field);
		}
		input = input_make(cover, data != NULL, created, key_id, nonce);
		base_for(&r, input, &base);
		if (print_base)
			fprintf(stderr, "%s\n", base.p);
		if (!sign_hmac_sha256(key, key_len, base.p, base.len, mac))
			die("%s", "signing failed");
		sf_base64_encode(mac, 32, b64);
		sign_buf_puts(&field, "sig1=");
		sign_buf_puts(&field, input);
		header_set(&r, "Signature-Input", field.p);
		sign_buf_free(&field);
		sign_buf_puts(&field, "sig1=:");
		sign_buf_puts(&field, b64);
		sign_buf_puts(&field, ":");
		header_set(&r, "Signature", field.p);
		sign_buf_free(&field);
		sign_buf_free(&base);
		free(input);
	} else {
		die("--mode %s: rfc9421 or classic", mode);
	}
	sign_wipe(key, sizeof(key));
	output(&r, format, url);
	return 0;
}
