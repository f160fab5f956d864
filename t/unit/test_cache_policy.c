/* RFC 9111 and RFC 5861 for a shared cache: parsing Cache-Control, storing, freshness, age, reuse. */
#include <string.h>

#include "cache_policy.h"
#include "tap.h"

static struct cache_control cc_of(const char *value)
{
	struct cache_control cc;

	cache_control_init(&cc);
	cache_control_parse(&cc, value);
	return cc;
}

START_TEST(test_cache_control_parse)
{
	struct cache_control cc = cc_of("max-age=60, public");

	ck_assert_int_eq(cc.max_age, 60);
	ck_assert(cc.public_ && !cc.private_ && !cc.conflict);
	cc = cc_of("MAX-AGE=\"3600\"");                 /* case and the quoted form */
	ck_assert_int_eq(cc.max_age, 3600);
	cc = cc_of("max-age=60, max-age=10");           /* twice: a conflict (stale) */
	ck_assert(cc.conflict);
	cc = cc_of("max-age=abc");
	ck_assert(cc.conflict && cc.max_age == CACHE_UNSET);
	cc = cc_of("max-age=-1");
	ck_assert(cc.conflict);
	cc = cc_of("max-age=");
	ck_assert(cc.conflict);
	cc = cc_of("max-age=99999999999999999999");     /* past 2^31: 2^31 */
	ck_assert_int_eq(cc.max_age, CACHE_DELTA_MAX);
	cc = cc_of("max-stale");
	ck_assert_int_eq(cc.max_stale, CACHE_DELTA_MAX);
	cc = cc_of("max-stale=5, min-fresh=7");
	ck_assert_int_eq(cc.max_stale, 5);
	ck_assert_int_eq(cc.min_fresh, 7);
	cc = cc_of("no-cache=\"Set-Cookie, X-Foo\", private=\"X\"");   /* qualified forms taken whole */
	ck_assert(cc.no_cache && cc.private_ && !cc.conflict);
	cc = cc_of("foo=\"a,b\", s-maxage=5 , ,  bar, no-store");       /* unknown ones ignored, commas in quotes */
	ck_assert_int_eq(cc.s_maxage, 5);
	ck_assert(cc.no_store && !cc.no_cache);
	cc = cc_of("stale-while-revalidate=30, stale-if-error=600, must-revalidate, proxy-revalidate, immutable");
	ck_assert_int_eq(cc.stale_while_revalidate, 30);
	ck_assert_int_eq(cc.stale_if_error, 600);
	ck_assert(cc.must_revalidate && cc.proxy_revalidate && cc.immutable);
	cc = cc_of("only-if-cached, no-transform, must-understand");
	ck_assert(cc.only_if_cached && cc.no_transform && cc.must_understand);
	cc = cc_of("");
	ck_assert(cc.max_age == CACHE_UNSET && !cc.conflict && !cc.no_store);
	/* two field lines add up */
	cache_control_init(&cc);
	cache_control_parse(&cc, "public");
	cache_control_parse(&cc, "max-age=5");
	ck_assert(cc.public_ && cc.max_age == 5);
	cache_control_parse(&cc, "max-age=5");
	ck_assert(cc.conflict);
}
END_TEST

static struct cache_request get_request(void)
{
	struct cache_request req = { .get_or_head = true };

	cache_control_init(&req.cc);
	return req;
}

static struct cache_response response(int status, const char *cache_control)
{
	struct cache_response res = { .status = status, .age = CACHE_UNSET, .has_date = true, .date = 1000000,
	                              .request_time = 1000000, .response_time = 1000000 };

	res.cc = cc_of(cache_control);
	return res;
}

START_TEST(test_storable)
{
	struct cache_request req = get_request();
	struct cache_response res = response(200, "");

	ck_assert(cache_storable(&req, &res));                          /* heuristically cacheable */
	res = response(302, "");
	ck_assert(!cache_storable(&req, &res));
	res = response(302, "max-age=5");
	ck_assert(cache_storable(&req, &res));
	res = response(302, "");
	res.has_expires = true;
	ck_assert(cache_storable(&req, &res));
	res = response(200, "no-store");
	ck_assert(!cache_storable(&req, &res));
	res = response(200, "private, max-age=60");
	ck_assert(!cache_storable(&req, &res));
	res = response(206, "max-age=60");
	ck_assert(!cache_storable(&req, &res));                         /* partial content: the caller's */
	res = response(304, "max-age=60");
	ck_assert(!cache_storable(&req, &res));
	res = response(100, "max-age=60");
	ck_assert(!cache_storable(&req, &res));
	/* must-understand overrides no-store for a status this cache knows */
	res = response(200, "must-understand, no-store, max-age=60");
	ck_assert(cache_storable(&req, &res));
	res = response(299, "must-understand, no-store, max-age=60");
	ck_assert(!cache_storable(&req, &res));
	/* §3.5: Authorization */
	req.authorization = true;
	res = response(200, "max-age=60");
	ck_assert(!cache_storable(&req, &res));
	res = response(200, "public");
	ck_assert(cache_storable(&req, &res));
	res = response(200, "s-maxage=60");
	ck_assert(cache_storable(&req, &res));
	res = response(200, "must-revalidate, max-age=60");
	ck_assert(cache_storable(&req, &res));
	/* the request's no-store, and methods */
	req = get_request();
	req.cc = cc_of("no-store");
	res = response(200, "max-age=60");
	ck_assert(!cache_storable(&req, &res));
	req = get_request();
	req.get_or_head = false;
	ck_assert(!cache_storable(&req, &res));
}
END_TEST

START_TEST(test_freshness_lifetime)
{
	struct cache_response res = response(200, "s-maxage=10, max-age=60");

	ck_assert_int_eq(cache_freshness_lifetime(&res), 10);           /* s-maxage first in a shared cache */
	res = response(200, "max-age=60");
	res.has_expires = true;
	res.expires = res.date + 3600;
	ck_assert_int_eq(cache_freshness_lifetime(&res), 60);           /* max-age over Expires */
	res = response(200, "");
	res.has_expires = true;
	res.expires = res.date + 3600;
	ck_assert_int_eq(cache_freshness_lifetime(&res), 3600);
	res.expires = res.date - 5;
	ck_assert_int_eq(cache_freshness_lifetime(&res), 0);
	res.expires = 0;                                                /* an invalid Expires: in the past */
	ck_assert_int_eq(cache_freshness_lifetime(&res), 0);
	res.has_date = false;                                           /* no Date: when it arrived */
	res.response_time = 2000000;
	res.expires = 2000100;
	ck_assert_int_eq(cache_freshness_lifetime(&res), 100);
	/* heuristic: 10% of Date - Last-Modified, at most a day, only for heuristic statuses */
	res = response(200, "");
	res.has_last_modified = true;
	res.last_modified = res.date - 1000;
	ck_assert_int_eq(cache_freshness_lifetime(&res), 100);
	res.last_modified = res.date - 100 * 86400;
	ck_assert_int_eq(cache_freshness_lifetime(&res), 86400);
	res.status = 302;
	ck_assert_int_eq(cache_freshness_lifetime(&res), 0);
	res = response(200, "");
	ck_assert_int_eq(cache_freshness_lifetime(&res), 0);
	res = response(200, "max-age=60, max-age=60");                  /* a conflict: stale at once */
	ck_assert_int_eq(cache_freshness_lifetime(&res), 0);
}
END_TEST

START_TEST(test_current_age)
{
	struct cache_response res = response(200, "max-age=60");

	ck_assert_int_eq(cache_current_age(&res, res.response_time), 0);
	ck_assert_int_eq(cache_current_age(&res, res.response_time + 30), 30);
	res.age = 50;                                                   /* an Age from upstream caches */
	ck_assert_int_eq(cache_current_age(&res, res.response_time + 30), 80);
	res.request_time = res.response_time - 2;                       /* plus the response delay */
	ck_assert_int_eq(cache_current_age(&res, res.response_time), 52);
	res = response(200, "");
	res.date = res.response_time - 100;                             /* apparent age from Date */
	ck_assert_int_eq(cache_current_age(&res, res.response_time), 100);
	res.date = res.response_time + 100;                             /* a Date in the future counts as 0 */
	ck_assert_int_eq(cache_current_age(&res, res.response_time + 5), 5);
}
END_TEST

START_TEST(test_decide)
{
	struct cache_request req = get_request();
	struct cache_response res = response(200, "max-age=60");
	time_t t = res.response_time;

	ck_assert_int_eq(cache_decide(&req, &res, t + 59), CACHE_USE_FRESH);
	ck_assert_int_eq(cache_decide(&req, &res, t + 60), CACHE_USE_REVALIDATE);
	/* the client's directives */
	req.cc = cc_of("max-stale=30");
	ck_assert_int_eq(cache_decide(&req, &res, t + 90), CACHE_USE_STALE_OK);
	ck_assert_int_eq(cache_decide(&req, &res, t + 91), CACHE_USE_REVALIDATE);
	req.cc = cc_of("max-stale");
	ck_assert_int_eq(cache_decide(&req, &res, t + 100000), CACHE_USE_STALE_OK);
	req.cc = cc_of("max-age=10");
	ck_assert_int_eq(cache_decide(&req, &res, t + 5), CACHE_USE_FRESH);
	ck_assert_int_eq(cache_decide(&req, &res, t + 11), CACHE_USE_REVALIDATE);
	req.cc = cc_of("min-fresh=20");
	ck_assert_int_eq(cache_decide(&req, &res, t + 30), CACHE_USE_FRESH);
	ck_assert_int_eq(cache_decide(&req, &res, t + 50), CACHE_USE_REVALIDATE);
	req.cc = cc_of("no-cache");
	ck_assert_int_eq(cache_decide(&req, &res, t), CACHE_USE_REVALIDATE);
	req = get_request();
	req.pragma_no_cache = true;
	ck_assert_int_eq(cache_decide(&req, &res, t), CACHE_USE_REVALIDATE);
	/* the response's */
	req = get_request();
	res = response(200, "max-age=60, no-cache");
	ck_assert_int_eq(cache_decide(&req, &res, t), CACHE_USE_REVALIDATE);
	res = response(200, "max-age=60, must-revalidate");
	req.cc = cc_of("max-stale=1000");
	ck_assert_int_eq(cache_decide(&req, &res, t + 10), CACHE_USE_FRESH);
	ck_assert_int_eq(cache_decide(&req, &res, t + 61), CACHE_USE_REVALIDATE);   /* never served stale */
	res = response(200, "s-maxage=60");
	ck_assert_int_eq(cache_decide(&req, &res, t + 61), CACHE_USE_REVALIDATE);
	/* RFC 5861 stale-while-revalidate */
	req = get_request();
	res = response(200, "max-age=60, stale-while-revalidate=30");
	ck_assert_int_eq(cache_decide(&req, &res, t + 70), CACHE_USE_STALE_REVALIDATE_BACKGROUND);
	ck_assert_int_eq(cache_decide(&req, &res, t + 91), CACHE_USE_REVALIDATE);
	res.vary_star = true;
	ck_assert_int_eq(cache_decide(&req, &res, t), CACHE_USE_REVALIDATE);
}
END_TEST

START_TEST(test_stale_on_error)
{
	struct cache_request req = get_request();
	struct cache_response res = response(200, "max-age=60, stale-if-error=100");
	time_t t = res.response_time;

	ck_assert(cache_stale_on_error(&req, &res, t + 10, false));      /* still fresh */
	ck_assert(cache_stale_on_error(&req, &res, t + 160, false));
	ck_assert(!cache_stale_on_error(&req, &res, t + 161, false));
	ck_assert(cache_stale_on_error(&req, &res, t + 100000, true));   /* proxy_cache_use_stale error */
	req.cc = cc_of("stale-if-error=1000");                            /* the client allows more */
	ck_assert(cache_stale_on_error(&req, &res, t + 500, false));
	res = response(200, "max-age=60, must-revalidate, stale-if-error=100");
	ck_assert(!cache_stale_on_error(&req, &res, t + 70, true));
	res = response(200, "max-age=60");
	req = get_request();
	ck_assert(!cache_stale_on_error(&req, &res, t + 70, false));
}
END_TEST

START_TEST(test_fields_stored_and_updated)
{
	ck_assert(cache_field_unstorable("Connection", 10, NULL));
	ck_assert(cache_field_unstorable("keep-alive", 10, NULL));
	ck_assert(cache_field_unstorable("Transfer-Encoding", 17, NULL));
	ck_assert(cache_field_unstorable("Proxy-Authenticate", 18, NULL));
	ck_assert(cache_field_unstorable("X-Hop", 5, "close, x-hop"));      /* named by Connection */
	ck_assert(!cache_field_unstorable("X-Hop", 5, "close, x-hopper"));
	ck_assert(!cache_field_unstorable("ETag", 4, NULL));
	ck_assert(!cache_field_unstorable("Content-Length", 14, NULL));
	/* a 304 updates every stored field but those that describe the stored body */
	ck_assert(cache_field_updates("Cache-Control", 13, NULL));
	ck_assert(cache_field_updates("Content-Type", 12, NULL));
	ck_assert(cache_field_updates("X-Test-Header", 13, NULL));
	ck_assert(!cache_field_updates("Content-Length", 14, NULL));
	ck_assert(!cache_field_updates("Content-Encoding", 16, NULL));
	ck_assert(!cache_field_updates("content-range", 13, NULL));
	ck_assert(!cache_field_updates("Content-MD5", 11, NULL));
	ck_assert(!cache_field_updates("ETag", 4, NULL));
	ck_assert(!cache_field_updates("Upgrade", 7, NULL));
}
END_TEST

START_TEST(test_invalidation_targets)
{
	char out[64];

	ck_assert(cache_invalidation_target("/a/b?c=d#frag", "http", "a.test", out, sizeof(out)));
	ck_assert_str_eq(out, "/a/b?c=d");
	ck_assert(cache_invalidation_target("http://A.test/x", "http", "a.test", out, sizeof(out)));
	ck_assert_str_eq(out, "/x");
	ck_assert(cache_invalidation_target("http://a.test:80/x", "http", "a.test", out, sizeof(out)));
	ck_assert(cache_invalidation_target("https://a.test/x", "https", "a.test:443", out, sizeof(out)));
	ck_assert(cache_invalidation_target("//a.test/y", "http", "a.test", out, sizeof(out)));
	ck_assert_str_eq(out, "/y");
	ck_assert(cache_invalidation_target("http://a.test", "http", "a.test", out, sizeof(out)));
	ck_assert_str_eq(out, "/");
	/* another origin: never */
	ck_assert(!cache_invalidation_target("http://b.test/x", "http", "a.test", out, sizeof(out)));
	ck_assert(!cache_invalidation_target("http://a.test:8080/x", "http", "a.test", out, sizeof(out)));
	ck_assert(!cache_invalidation_target("https://a.test/x", "http", "a.test", out, sizeof(out)));
	ck_assert(!cache_invalidation_target("http://a.test.evil/x", "http", "a.test", out, sizeof(out)));
	ck_assert(!cache_invalidation_target("relative/x", "http", "a.test", out, sizeof(out)));
	ck_assert(!cache_invalidation_target("/x", "http", "a.test", out, 2));    /* does not fit */
}
END_TEST

START_TEST(test_cache_status)
{
	char out[128];

	ck_assert_uint_gt(cache_status_format(out, sizeof(out), CACHE_STATUS_HIT, false, true, 12, NULL), 0);
	ck_assert_str_eq(out, "prefork-httpd; hit; ttl=12");
	cache_status_format(out, sizeof(out), CACHE_STATUS_URI_MISS, true, true, 60, NULL);
	ck_assert_str_eq(out, "prefork-httpd; fwd=uri-miss; stored; ttl=60");
	cache_status_format(out, sizeof(out), CACHE_STATUS_STALE, false, true, -5, "revalidated");
	ck_assert_str_eq(out, "prefork-httpd; fwd=stale; ttl=-5; detail=revalidated");
	cache_status_format(out, sizeof(out), CACHE_STATUS_BYPASS, false, false, 0, NULL);
	ck_assert_str_eq(out, "prefork-httpd; fwd=bypass");
	ck_assert_uint_eq(cache_status_format(out, 10, CACHE_STATUS_HIT, false, false, 0, NULL), 0);
}
END_TEST

START_TEST(test_age_values)
{
	ck_assert_int_eq(cache_age_value("7200"), 7200);
	ck_assert_int_eq(cache_age_value(" 30 "), 30);
	ck_assert_int_eq(cache_age_value("7200, 0"), 7200);          /* the first member */
	ck_assert_int_eq(cache_age_value("0,7200"), 0);
	ck_assert_int_eq(cache_age_value("7200.0"), 7200);           /* malformed: older, never younger */
	ck_assert_int_eq(cache_age_value("7200;foo=bar"), 7200);
	ck_assert_int_eq(cache_age_value("abc"), CACHE_UNSET);
	ck_assert_int_eq(cache_age_value("-7200"), CACHE_UNSET);
	ck_assert_int_eq(cache_age_value(""), CACHE_UNSET);
	ck_assert_int_eq(cache_age_value("99999999999999999999999"), CACHE_DELTA_MAX);
}
END_TEST

START_TEST(test_etags_listed)
{
	ck_assert(cache_etag_listed("\"a\"", "\"a\""));
	ck_assert(cache_etag_listed("\"x\", W/\"a\"", "\"a\""));    /* weak comparison */
	ck_assert(cache_etag_listed("\"a\"", "W/\"a\""));
	ck_assert(cache_etag_listed("*", "\"a\""));
	ck_assert(!cache_etag_listed("\"ab\"", "\"a\""));
	ck_assert(!cache_etag_listed("\"a", "\"a\""));                  /* unterminated */
	ck_assert(!cache_etag_listed("a", "\"a\""));
	ck_assert(!cache_etag_listed("", "\"a\""));
}
END_TEST

START_TEST(test_byte_ranges)
{
	uint64_t first = 0, last = 0;

	ck_assert_int_eq(cache_byte_range("bytes=2-4", 10, &first, &last), 1);
	ck_assert_uint_eq(first, 2);
	ck_assert_uint_eq(last, 4);
	ck_assert_int_eq(cache_byte_range("bytes=5-", 10, &first, &last), 1);
	ck_assert_uint_eq(first, 5);
	ck_assert_uint_eq(last, 9);
	ck_assert_int_eq(cache_byte_range("bytes=-3", 10, &first, &last), 1);
	ck_assert_uint_eq(first, 7);
	ck_assert_uint_eq(last, 9);
	ck_assert_int_eq(cache_byte_range("bytes=-30", 10, &first, &last), 1);
	ck_assert_uint_eq(first, 0);
	ck_assert_int_eq(cache_byte_range("bytes=8-100", 10, &first, &last), 1);
	ck_assert_uint_eq(last, 9);
	ck_assert_int_eq(cache_byte_range("bytes=10-", 10, &first, &last), -1);   /* 416 */
	ck_assert_int_eq(cache_byte_range("bytes=-0", 10, &first, &last), -1);
	ck_assert_int_eq(cache_byte_range("bytes=0-1", 0, &first, &last), -1);
	ck_assert_int_eq(cache_byte_range("bytes=0-1,3-4", 10, &first, &last), 0); /* several: the whole */
	ck_assert_int_eq(cache_byte_range("bytes=4-2", 10, &first, &last), 0);
	ck_assert_int_eq(cache_byte_range("items=0-1", 10, &first, &last), 0);
	ck_assert_int_eq(cache_byte_range("bytes=x", 10, &first, &last), 0);
	ck_assert_int_eq(cache_byte_range("bytes=99999999999999999999999-", 10, &first, &last), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache_policy");
	TCase *tc = tcase_create("cache_policy");

	tcase_add_test(tc, test_cache_control_parse);
	tcase_add_test(tc, test_storable);
	tcase_add_test(tc, test_freshness_lifetime);
	tcase_add_test(tc, test_current_age);
	tcase_add_test(tc, test_decide);
	tcase_add_test(tc, test_stale_on_error);
	tcase_add_test(tc, test_fields_stored_and_updated);
	tcase_add_test(tc, test_invalidation_targets);
	tcase_add_test(tc, test_cache_status);
	tcase_add_test(tc, test_age_values);
	tcase_add_test(tc, test_etags_listed);
	tcase_add_test(tc, test_byte_ranges);
	suite_add_tcase(s, tc);
	return tap_run(s);
}
