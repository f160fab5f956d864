/* The real client address behind trusted proxies: CIDRs, X-Forwarded-For, RFC 7239 Forwarded. */
#include <string.h>
#include <sys/socket.h>

#include "access.h"
#include "real_ip.h"
#include "tap.h"

static struct cidr trusted[3];
static size_t trusted_count;

static void trust(const char *a, const char *b, const char *c)
{
	const char *list[] = { a, b, c };

	trusted_count = 0;
	for (size_t i = 0; i < 3; i++)
		if (list[i] != NULL)
			ck_assert_int_eq(cidr_parse(list[i], &trusted[trusted_count++]), 0);
}

/* The client as real_ip_find sees it, or "" when the header names none. */
static const char *client(enum real_ip_header kind, const char *v1, const char *v2)
{
	static char out[64];
	const char *values[2] = { v1, v2 };

	if (!real_ip_find(kind, values, v2 ? 2 : 1, trusted, trusted_count, out, sizeof(out)))
		out[0] = '\0';
	return out;
}

START_TEST(test_cidr_parse_and_match)
{
	struct cidr c[2];

	ck_assert_int_eq(cidr_parse("10.0.0.0/8", &c[0]), 0);
	ck_assert_int_eq(cidr_parse("2001:db8::/33", &c[1]), 0);
	ck_assert(cidr_list_contains(c, 2, "10.200.3.4"));
	ck_assert(!cidr_list_contains(c, 2, "11.0.0.1"));
	ck_assert(cidr_list_contains(c, 2, "2001:db8:7fff::1"));
	ck_assert(!cidr_list_contains(c, 2, "2001:db8:8000::1"));
	ck_assert(!cidr_list_contains(c, 2, "not-an-address"));
	ck_assert_int_eq(cidr_parse("10.0.0.0/33", &c[0]), -1);
	ck_assert_int_eq(cidr_parse("10.0.0.0/", &c[0]), -1);
	ck_assert_int_eq(cidr_parse("10.0.0/8", &c[0]), -1);
	ck_assert_int_eq(cidr_parse("/8", &c[0]), -1);
	ck_assert_int_eq(cidr_parse("::1/-1", &c[0]), -1);
}
END_TEST

/* The leftmost entry is the client's own claim: only the first untrusted hop from the right counts. */
START_TEST(test_xff_walks_from_the_right)
{
	trust("10.0.0.0/8", "127.0.0.1", NULL);
	ck_assert_str_eq(client(REAL_IP_X_FORWARDED_FOR, "203.0.113.7", NULL), "203.0.113.7");
	ck_assert_str_eq(client(REAL_IP_X_FORWARDED_FOR, "6.6.6.6, 203.0.113.7, 10.1.1.1", NULL), "203.0.113.7");
	ck_assert_str_eq(client(REAL_IP_X_FORWARDED_FOR, "6.6.6.6, 203.0.113.7", "10.0.0.2"), "203.0.113.7");
	/* every hop trusted: the leftmost one is as far as trust reaches */
	ck_assert_str_eq(client(REAL_IP_X_FORWARDED_FOR, "10.0.0.9, 10.0.0.8", NULL), "10.0.0.9");
	/* garbage ends the walk at the hop before it */
	ck_assert_str_eq(client(REAL_IP_X_FORWARDED_FOR, "1.2.3.4, evil, 10.0.0.1", NULL), "10.0.0.1");
	ck_assert_str_eq(client(REAL_IP_X_FORWARDED_FOR, "nonsense", NULL), "");
	ck_assert_str_eq(client(REAL_IP_X_FORWARDED_FOR, "[2001:db8::5]:4711, 10.0.0.1", NULL), "2001:db8::5");
	ck_assert_str_eq(client(REAL_IP_X_FORWARDED_FOR, "198.51.100.1:8080", NULL), "198.51.100.1");
}
END_TEST

START_TEST(test_forwarded_rfc7239)
{
	trust("10.0.0.0/8", NULL, NULL);
	ck_assert_str_eq(client(REAL_IP_FORWARDED, "for=192.0.2.43", NULL), "192.0.2.43");
	ck_assert_str_eq(client(REAL_IP_FORWARDED, "for=\"[2001:db8:cafe::17]:4711\"", NULL), "2001:db8:cafe::17");
	ck_assert_str_eq(client(REAL_IP_FORWARDED, "for=192.0.2.60;proto=http;by=203.0.113.43", NULL),
	                 "192.0.2.60");
	ck_assert_str_eq(client(REAL_IP_FORWARDED, "For=6.6.6.6, for=198.51.100.17;proto=https, for=10.1.2.3",
	                        NULL), "198.51.100.17");
	ck_assert_str_eq(client(REAL_IP_FORWARDED, "for=198.51.100.17", "for=10.0.0.1;host=\"a,b\""),
	                 "198.51.100.17");
	/* obfuscated and unknown identifiers are not addresses: trust stops before them */
	ck_assert_str_eq(client(REAL_IP_FORWARDED, "for=1.2.3.4, for=_hidden, for=10.0.0.7", NULL), "10.0.0.7");
	ck_assert_str_eq(client(REAL_IP_FORWARDED, "for=unknown", NULL), "");
	ck_assert_str_eq(client(REAL_IP_FORWARDED, "proto=https", NULL), "");
	ck_assert_str_eq(client(REAL_IP_FORWARDED, "for=\"1.2.3.4", NULL), "");
}
END_TEST

START_TEST(test_access_rules_first_match_wins)
{
	struct access_rule r[4];
	const char *bad[] = { "permit 10.0.0.0/8", "allow", "deny 10.0.0.0/33", "allow everyone", "Allow all", "" };

	ck_assert_int_eq(access_rule_parse("allow 10.0.0.0/8", &r[0]), 0);
	ck_assert_int_eq(access_rule_parse("deny 10.1.0.0/16", &r[1]), 0);
	ck_assert_int_eq(access_rule_parse("allow 2001:db8::/32", &r[2]), 0);
	ck_assert_int_eq(access_rule_parse("deny all", &r[3]), 0);
	ck_assert(r[0].allow && !r[1].allow && r[3].all && !r[3].allow);
	ck_assert(access_allowed(r, 4, "10.1.2.3"));           /* the first rule covers it: allowed */
	ck_assert(!access_allowed(r + 1, 3, "10.1.2.3"));
	ck_assert(access_allowed(r, 4, "2001:db8::7"));
	ck_assert(!access_allowed(r, 4, "192.0.2.1"));         /* deny all */
	ck_assert(access_allowed(r, 4, "::ffff:10.9.9.9"));   /* v4-mapped: matched as IPv4 */
	ck_assert(!access_allowed(r, 4, "not an address"));    /* only "all" covers it */
	ck_assert(access_allowed(r, 3, "192.0.2.1"));          /* no rule covers it: allowed, as nginx */
	ck_assert(access_allowed(r, 0, "192.0.2.1"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(access_rule_parse(bad[i], &r[0]) < 0, "%s", bad[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("real_ip");
	TCase *tc = tcase_create("real_ip");

	tcase_add_test(tc, test_cidr_parse_and_match);
	tcase_add_test(tc, test_xff_walks_from_the_right);
	tcase_add_test(tc, test_forwarded_rfc7239);
	tcase_add_test(tc, test_access_rules_first_match_wins);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
