/* Virtual host selection: exact names, aliases, wildcards, ports, case, the default. */
#include <stdio.h>
#include <string.h>

#include "name_table.h"
#include "sni.h"
#include "tap.h"
#include "vhost.h"

static char *a_names[] = { "example.com", "www.example.com" };
static char *b_names[] = { "*.example.com" };
static char *c_names[] = { "*.api.example.com", "api.example.com" };
static char *d_names[] = { "other.test" };
static struct httpd_server servers[5];
static struct httpd_config config;

static void setup(void)
{
	memset(servers, 0, sizeof(servers));
	servers[0].name = NULL;   /* the top level: no names */
	servers[1].names = a_names;
	servers[1].name_count = 2;
	servers[2].names = b_names;
	servers[2].name_count = 1;
	servers[3].names = c_names;
	servers[3].name_count = 2;
	servers[4].names = d_names;
	servers[4].name_count = 1;
	config.servers = servers;
	config.server_count = 5;
	config.default_server = &servers[0];
	vhost_index_free(&config);
	ck_assert_int_eq(vhost_index(&config), 0);
}

static int find(const char *host)
{
	bool named;
	const struct httpd_server *s = vhost_find(&config, host, host ? strlen(host) : 0, &named);

	ck_assert_int_eq(named, s != config.default_server);
	return (int)(s - servers);
}

START_TEST(test_name_match)
{
	ck_assert(vhost_name_match("example.com", "EXAMPLE.com", 11));
	ck_assert(!vhost_name_match("example.com", "example.co", 10));
	ck_assert(vhost_name_match("*.example.com", "a.example.com", 13));
	ck_assert(vhost_name_match("*.example.com", "a.b.example.com", 15));
	ck_assert(!vhost_name_match("*.example.com", "example.com", 11));
	ck_assert(!vhost_name_match("*.example.com", ".example.com", 12));
	ck_assert(!vhost_name_match("*.example.com", "aexample.com", 12));
}
END_TEST

START_TEST(test_find)
{
	setup();
	ck_assert_int_eq(find("example.com"), 1);
	ck_assert_int_eq(find("WWW.Example.COM"), 1);
	ck_assert_int_eq(find("example.com:8080"), 1);
	ck_assert_int_eq(find("example.com."), 1);
	ck_assert_int_eq(find("example.com.:443"), 1);
	/* an exact name beats any wildcard; the longest wildcard beats a shorter one */
	ck_assert_int_eq(find("api.example.com"), 3);
	ck_assert_int_eq(find("v1.api.example.com"), 3);
	ck_assert_int_eq(find("shop.example.com"), 2);
	ck_assert_int_eq(find("other.test"), 4);
	/* unknown names, IP literals and no Host at all go to the default server */
	ck_assert_int_eq(find("unknown.test"), 0);
	ck_assert_int_eq(find("127.0.0.1:8080"), 0);
	ck_assert_int_eq(find("[::1]:8080"), 0);
	ck_assert_int_eq(find(NULL), 0);
	ck_assert_int_eq(find(""), 0);
	ck_assert_int_eq(find("other.test.evil"), 0);
	ck_assert_int_eq(find("xother.test"), 0);
}
END_TEST

/* A server_name extension body: list length, then (type, length, name) entries. */
static size_t sni(const char *bytes, size_t len, char *out)
{
	const unsigned char *name = NULL;
	size_t n = tls_sni_parse((const unsigned char *)bytes, len, &name);

	memcpy(out, name != NULL ? (const char *)name : "", n);
	out[n] = '\0';
	return n;
}

/* Lookups of every length, the ones no name has (skipped without hashing) and 63 and more (one bit for all). */
START_TEST(test_name_table_lengths)
{
	static const char *const names[] = { "/", "/api/", "/a", "/static/images/", NULL };
	char longer[100], longest[101];
	struct name_table t;
	int v[5];

	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	memcpy(longest, longer, sizeof(longer));
	memcpy(longest + 99, "y", 2);
	ck_assert_int_eq(name_table_init(&t, 6), 0);
	ck_assert_ptr_null(name_table_find(&t, "/", 1));
	for (int i = 0; names[i] != NULL; i++)
		ck_assert_int_eq(name_table_add(&t, names[i], strlen(names[i]), &v[i]), 0);
	ck_assert_int_eq(name_table_add(&t, longer, 99, &v[4]), 0);
	ck_assert_int_eq(name_table_add(&t, "/api/", 5, &v[0]), 1);
	for (int i = 0; names[i] != NULL; i++)
		ck_assert_ptr_eq(name_table_find(&t, names[i], strlen(names[i])), &v[i]);
	ck_assert_ptr_eq(name_table_find(&t, longer, 99), &v[4]);
	ck_assert_ptr_null(name_table_find(&t, longest, 100));   /* the same bit, another length */
	ck_assert_ptr_null(name_table_find(&t, "/b", 2));        /* a length that is there, a name that is not */
	ck_assert_ptr_null(name_table_find(&t, "/api", 4));      /* a length no name has */
	ck_assert_ptr_null(name_table_find(&t, "", 0));
	name_table_free(&t);
}
END_TEST

START_TEST(test_sni_parse)
{
	char out[300], big[2 + 3 + 256];

	ck_assert_uint_eq(sni("\x00\x09\x00\x00\x06" "a.test", 11, out), 6);
	ck_assert_str_eq(out, "a.test");
	/* an entry of another type first, then the host name */
	ck_assert_uint_eq(sni("\x00\x0b\x07\x00\x01" "x\x00\x00\x04" "b.io", 13, out), 4);
	ck_assert_str_eq(out, "b.io");
	/* lengths that disagree, run past the end, or are empty */
	ck_assert_uint_eq(sni("\x00\x0a\x00\x00\x06" "a.test", 11, out), 0);
	ck_assert_uint_eq(sni("\x00\x09\x00\x00\x07" "a.test", 11, out), 0);
	ck_assert_uint_eq(sni("\x00\x03\x00\x00\x00", 5, out), 0);
	ck_assert_uint_eq(sni("\x00", 1, out), 0);
	ck_assert_uint_eq(sni("", 0, out), 0);
	/* a NUL inside the name is no name */
	ck_assert_uint_eq(sni("\x00\x09\x00\x00\x06" "a\0test", 11, out), 0);
	/* at most 255 bytes */
	memset(big, 'a', sizeof(big));
	big[0] = 0x01, big[1] = 0x03, big[2] = 0, big[3] = 0x01, big[4] = 0x00;
	ck_assert_uint_eq(sni(big, sizeof(big), out), 0);
}
END_TEST

/* Thousands of names: each found by its own lookup, wildcards by the longest suffix. */
START_TEST(test_many_servers)
{
	enum { N = 5000 };
	static struct httpd_server many[N + 1];
	static char names[N + 1][2][32];
	static char *lists[N + 1][2];
	struct httpd_config big;
	char host[64];
	bool named;

	memset(&big, 0, sizeof(big));
	memset(many, 0, sizeof(many));
	for (int i = 1; i <= N; i++) {
		snprintf(names[i][0], sizeof(names[i][0]), "site%d.test", i);
		snprintf(names[i][1], sizeof(names[i][1]), "*.w%d.test", i);
		lists[i][0] = names[i][0];
		lists[i][1] = names[i][1];
		many[i].names = lists[i];
		many[i].name_count = 2;
	}
	big.servers = many;
	big.server_count = N + 1;
	big.default_server = &many[0];
	ck_assert_int_eq(vhost_index(&big), 0);
	for (int i = 1; i <= N; i += 7) {
		snprintf(host, sizeof(host), "SITE%d.test:80", i);
		ck_assert_ptr_eq(vhost_find(&big, host, strlen(host), &named), &many[i]);
		snprintf(host, sizeof(host), "a.b.w%d.test", i);
		ck_assert_ptr_eq(vhost_find(&big, host, strlen(host), &named), &many[i]);
	}
	ck_assert_ptr_eq(vhost_find(&big, "site0.test", 10, &named), &many[0]);
	ck_assert(!named);
	vhost_index_free(&big);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vhost");
	TCase *tc = tcase_create("vhost");

	tcase_add_test(tc, test_name_match);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_many_servers);
	tcase_add_test(tc, test_sni_parse);
	tcase_add_test(tc, test_name_table_lengths);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
