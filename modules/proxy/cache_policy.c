/* RFC 9111 (and RFC 5861) for a shared cache, as pure functions: see cache_policy.h. */
#include "cache_policy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HEURISTIC_MAX 86400   /* a day: heuristic freshness beyond it is guesswork (RFC 9111 §4.2.2) */

void cache_control_init(struct cache_control *cc)
{
	memset(cc, 0, sizeof(*cc));
	cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = CACHE_UNSET;
	cc->stale_while_revalidate = cc->stale_if_error = CACHE_UNSET;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* delta-seconds (§1.2.2), from a token or a quoted string's content: -1 if it is not one. */
static int64_t delta_seconds(const char *p, size_t len)
{
	int64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (v < CACHE_DELTA_MAX)
			v = v * 10 + (p[i] - '0');
	}
	return v > CACHE_DELTA_MAX ? CACHE_DELTA_MAX : v;
}

/* Sets a delta-seconds directive; a second occurrence or a bad value is a conflict. */
static void delta_set(struct cache_control *cc, int64_t *field, const char *value, size_t len, bool has_value,
                      int64_t without_value)
{
	int64_t v = has_value ? delta_seconds(value, len) : without_value;

	if (*field != CACHE_UNSET || v < 0) {
		cc->conflict = true;
		return;
	}
	*field = v;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static void directive_apply(struct cache_control *cc, const char *name, size_t name_len, const char *value,
                            size_t value_len, bool has_value)
{
	if (name_is(name, name_len, "max-age"))
		delta_set(cc, &cc->max_age, value, value_len, has_value, -1);
	else if (name_is(name, name_len, "s-maxage"))
		delta_set(cc, &cc->s_maxage, value, value_len, has_value, -1);
	else if (name_is(name, name_len, "max-stale"))
		delta_set(cc, &cc->max_stale, value, value_len, has_value, CACHE_DELTA_MAX);
	else if (name_is(name, name_len, "min-fresh"))
		delta_set(cc, &cc->min_fresh, value, value_len, has_value, -1);
	else if (name_is(name, name_len, "stale-while-revalidate"))
		delta_set(cc, &cc->stale_while_revalidate, value, value_len, has_value, -1);
	else if (name_is(name, name_len, "stale-if-error"))
		delta_set(cc, &cc->stale_if_error, value, value_len, has_value, -1);
	/* The qualified forms (no-cache="Set-Cookie", private="X") are taken whole: the stricter reading. */
	else if (name_is(name, name_len, "no-store"))
		cc->no_store = true;
	else if (name_is(name, name_len, "no-cache"))
		cc->no_cache = true;
	else if (name_is(name, name_len, "private"))
		cc->private_ = true;
	else if (name_is(name, name_len, "public"))
		cc->public_ = true;
	else if (name_is(name, name_len, "must-revalidate"))
		cc->must_revalidate = true;
	else if (name_is(name, name_len, "proxy-revalidate"))
		cc->proxy_revalidate = true;
	else if (name_is(name, name_len, "immutable"))
		cc->immutable = true;
	else if (name_is(name, name_len, "only-if-cached"))
		cc->only_if_cached = true;
	else if (name_is(name, name_len, "no-transform"))
		cc->no_transform = true;
	else if (name_is(name, name_len, "must-understand"))
		cc->must_understand = true;
	/* Unknown directives are ignored (§5.2.3). */
}

void cache_control_parse(struct cache_control *cc, const char *p)
{
	while (*p != '\0') {
		const char *name, *value = NULL;
		size_t name_len, value_len = 0;
		bool has_value = false;

		while (*p == ',' || is_space(*p))
			p++;
		if (*p == '\0')
			break;
		name = p;
		while (*p != '\0' && *p != '=' && *p != ',' && !is_space(*p))
			p++;
		name_len = (size_t)(p - name);
		while (is_space(*p))
			p++;
		if (*p == '=') {
			p++;
			while (is_space(*p))
				p++;
			has_value = true;
			if (*p == '"') {
				/* A quoted string: its content, escapes and all, is the value. */
				value = ++p;
				while (*p != '\0' && *p != '"') {
					if (*p == '\\' && p[1] != '\0')
						p++;
					p++;
				}
				value_len = (size_t)(p - value);
				if (*p == '"')
					p++;
			} else {
				value = p;
				while (*p != '\0' && *p != ',' && !is_space(*p))
					p++;
				value_len = (size_t)(p - value);
			}
		}
		/* What follows a directive before the next comma is not part of any: skip it. */
		while (*p != '\0' && *p != ',')
			p++;
		if (name_len > 0)
			directive_apply(cc, name, name_len, value, value_len, has_value);
	}
}

bool cache_status_heuristic(int status)
{
	switch (status) {
	case 200: case 203: case 204: case 206: case 300: case 301: case 308:
	case 404: case 405: case 410: case 414: case 501:
		return true;
	default:
		return false;
	}
}

/* Statuses whose meaning this cache knows (for must-understand, RFC 9111 §5.2.2.3). */
static bool status_understood(int status)
{
	return cache_status_heuristic(status) || status == 302 || status == 303 || status == 307;
}

bool cache_storable(const struct cache_request *req, const struct cache_response *res)
{
	const struct cache_control *cc = &res->cc;

	if (!req->get_or_head || res->status < 200 || res->status == 206 || res->status == 304)
		return false;
	if (cc->must_understand) {
		/* It overrides no-store for a cache that knows the status (§5.2.2.3). */
		if (!status_understood(res->status))
			return false;
	} else if (cc->no_store) {
		return false;
	}
	if (req->cc.no_store || cc->private_)
		return false;
	/* §3.5: a request with credentials only when the response says a shared cache may keep it. */
	if (req->authorization && !cc->must_revalidate && !cc->public_ && cc->s_maxage == CACHE_UNSET)
		return false;
	return cc->public_ || res->has_expires || cc->max_age != CACHE_UNSET || cc->s_maxage != CACHE_UNSET ||
	       cache_status_heuristic(res->status);
}

int64_t cache_freshness_lifetime(const struct cache_response *res)
{
	const struct cache_control *cc = &res->cc;
	time_t date = res->has_date ? res->date : res->response_time;

	if (cc->conflict)
		return 0;
	if (cc->s_maxage != CACHE_UNSET)
		return cc->s_maxage;
	if (cc->max_age != CACHE_UNSET)
		return cc->max_age;
	if (res->has_expires)
		return res->expires > date ? (int64_t)(res->expires - date) : 0;
	if (res->has_last_modified && cache_status_heuristic(res->status) && date > res->last_modified) {
		int64_t h = (int64_t)(date - res->last_modified) / 10;

		return h < HEURISTIC_MAX ? h : HEURISTIC_MAX;
	}
	return 0;
}

int64_t cache_current_age(const struct cache_response *res, time_t now)
{
	int64_t date = res->has_date ? (int64_t)res->date : (int64_t)res->response_time;
	int64_t apparent = (int64_t)res->response_time - date;
	int64_t delay = (int64_t)res->response_time - (int64_t)res->request_time;
	int64_t corrected_age = (res->age > 0 ? res->age : 0) + (delay > 0 ? delay : 0);
	int64_t initial = apparent > corrected_age ? apparent : corrected_age;
	int64_t resident = (int64_t)now - (int64_t)res->response_time;

	return initial + (resident > 0 ? resident : 0);
}

/* Once stale, must it be revalidated whatever the client allows? */
static bool revalidate_when_stale(const struct cache_control *cc)
{
	/* s-maxage carries proxy-revalidate's meaning for a shared cache (§5.2.2.10). */
	return cc->must_revalidate || cc->proxy_revalidate || cc->s_maxage != CACHE_UNSET || cc->no_cache;
}

enum cache_use cache_decide(const struct cache_request *req, const struct cache_response *res, time_t now)
{
	int64_t lifetime = cache_freshness_lifetime(res), age = cache_current_age(res, now), staleness;

	if (res->vary_star || res->cc.no_cache || req->cc.no_cache || req->pragma_no_cache)
		return CACHE_USE_REVALIDATE;
	if (req->cc.max_age != CACHE_UNSET && age > req->cc.max_age && req->cc.max_stale == CACHE_UNSET)
		return CACHE_USE_REVALIDATE;
	if (lifetime > age) {
		if (req->cc.min_fresh != CACHE_UNSET && lifetime - age < req->cc.min_fresh)
			return CACHE_USE_REVALIDATE;
		return CACHE_USE_FRESH;
	}
	if (revalidate_when_stale(&res->cc) || res->cc.conflict)
		return CACHE_USE_REVALIDATE;
	staleness = age - lifetime;
	if (req->cc.max_stale != CACHE_UNSET && staleness <= req->cc.max_stale)
		return CACHE_USE_STALE_OK;
	if (res->cc.stale_while_revalidate != CACHE_UNSET && staleness <= res->cc.stale_while_revalidate)
		return CACHE_USE_STALE_REVALIDATE_BACKGROUND;
	return CACHE_USE_REVALIDATE;
}

bool cache_stale_on_error(const struct cache_request *req, const struct cache_response *res, time_t now,
                          bool use_stale_on_error)
{
	int64_t staleness = cache_current_age(res, now) - cache_freshness_lifetime(res);
	int64_t window = res->cc.stale_if_error;

	if (res->cc.must_revalidate || res->cc.proxy_revalidate || res->cc.s_maxage != CACHE_UNSET)
		return false;
	if (staleness <= 0 || use_stale_on_error)
		return true;
	if (req->cc.stale_if_error != CACHE_UNSET && req->cc.stale_if_error > window)
		window = req->cc.stale_if_error;
	return window != CACHE_UNSET && staleness <= window;
}

/* Is name (len bytes) one of the comma-separated tokens of list (case-insensitive)? */
static bool token_listed(const char *list, const char *name, size_t len)
{
	const char *p = list;

	while (p != NULL && *p != '\0') {
		const char *start;

		while (*p == ',' || is_space(*p))
			p++;
		start = p;
		while (*p != '\0' && *p != ',' && !is_space(*p))
			p++;
		if ((size_t)(p - start) == len && len > 0 && strncasecmp(start, name, len) == 0)
			return true;
		while (*p != '\0' && *p != ',')
			p++;
	}
	return false;
}

bool cache_field_unstorable(const char *name, size_t len, const char *connection)
{
	static const char *const hop[] = { "Connection", "Proxy-Connection", "Keep-Alive", "TE", "Transfer-Encoding",
	                                   "Upgrade" };

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (name_is(name, len, hop[i]))
			return true;
	if (len >= 6 && strncasecmp(name, "Proxy-", 6) == 0)
		return true;   /* Proxy-Authenticate, Proxy-Authentication-Info, Proxy-Authorization */
	return token_listed(connection, name, len);
}

bool cache_field_updates(const char *name, size_t len, const char *connection)
{
	/* What describes the stored body (its length, coding, digest, range, entity tag) is the body's. */
	static const char *const body_fields[] = { "Content-Length", "Content-Encoding", "Content-MD5", "Content-Range",
	                                           "ETag" };

	for (size_t i = 0; i < sizeof(body_fields) / sizeof(body_fields[0]); i++)
		if (name_is(name, len, body_fields[i]))
			return false;
	return !cache_field_unstorable(name, len, connection);
}

/* host[:port] against host[:port], the port defaulted from the scheme, case-insensitive. */
static bool same_authority(const char *a, size_t a_len, const char *b, size_t b_len, const char *scheme)
{
	const char *def = strcasecmp(scheme, "https") == 0 ? ":443" : ":80";
	size_t def_len = strlen(def);

	if (a_len >= def_len && strncmp(a + a_len - def_len, def, def_len) == 0)
		a_len -= def_len;
	if (b_len >= def_len && strncmp(b + b_len - def_len, def, def_len) == 0)
		b_len -= def_len;
	return a_len == b_len && strncasecmp(a, b, a_len) == 0;
}

bool cache_invalidation_target(const char *value, const char *scheme, const char *authority, char *out,
                               size_t size)
{
	const char *p = value, *path;
	size_t len;

	while (is_space(*p))
		p++;
	if (p[0] == '/' && p[1] != '/') {
		path = p;
	} else {
		const char *host;
		size_t scheme_len = strlen(scheme);

		if (p[0] == '/' && p[1] == '/') {
			host = p + 2;                                   /* a network-path reference: the same scheme */
		} else if (strncasecmp(p, scheme, scheme_len) == 0 && strncmp(p + scheme_len, "://", 3) == 0) {
			host = p + scheme_len + 3;
		} else {
			return false;                                   /* another scheme, or a relative path */
		}
		path = host + strcspn(host, "/?#");
		if (authority == NULL || !same_authority(host, (size_t)(path - host), authority, strlen(authority), scheme))
			return false;
	}
	len = strcspn(path, "# \t");
	if (len == 0) {
		path = "/";
		len = 1;
	} else if (*path != '/') {
		return false;                                   /* "http://host?q": no path to speak of */
	}
	if (len >= size)
		return false;
	memcpy(out, path, len);
	out[len] = '\0';
	return true;
}

size_t cache_status_format(char *out, size_t size, enum cache_status_kind kind, bool stored, bool ttl_known,
                           int64_t ttl, const char *detail)
{
	static const char *const what[] = {
		[CACHE_STATUS_HIT] = "hit", [CACHE_STATUS_MISS] = "fwd=miss", [CACHE_STATUS_URI_MISS] = "fwd=uri-miss",
		[CACHE_STATUS_VARY_MISS] = "fwd=vary-miss", [CACHE_STATUS_STALE] = "fwd=stale",
		[CACHE_STATUS_REQUEST] = "fwd=request", [CACHE_STATUS_BYPASS] = "fwd=bypass",
	};
	int n;

	if (size == 0)
		return 0;
	n = snprintf(out, size, "prefork-httpd; %s%s", what[kind], stored ? "; stored" : "");
	if (n > 0 && (size_t)n < size && ttl_known)
		n += snprintf(out + n, size - (size_t)n, "; ttl=%lld", (long long)ttl);
	if (n > 0 && (size_t)n < size && detail != NULL)
		n += snprintf(out + n, size - (size_t)n, "; detail=%s", detail);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

int64_t cache_age_value(const char *value)
{
	/*
	 * RFC 9111 §5.1: the first member of the list.  Leading digits with
	 * something after them ("7200.0", "7200;x") are taken as that age rather
	 * than ignored: erring old costs a revalidation, erring young serves stale.
	 */
	const char *v = value;
	size_t digits;
	int64_t age = 0;

	while (is_space(*v))
		v++;
	digits = strspn(v, "0123456789");
	if (digits == 0)
		return CACHE_UNSET;
	for (size_t i = 0; i < digits; i++) {
		age = age * 10 + (v[i] - '0');
		if (age >= CACHE_DELTA_MAX)
			return CACHE_DELTA_MAX;
	}
	return age;
}

bool cache_etag_listed(const char *list, const char *etag)
{
	const char *e = strncmp(etag, "W/", 2) == 0 ? etag + 2 : etag;
	size_t elen = strlen(e);

	while (*list != '\0') {
		const char *start, *end;

		while (*list == ' ' || *list == '\t' || *list == ',')
			list++;
		if (*list == '*')
			return true;
		if (strncmp(list, "W/", 2) == 0)
			list += 2;
		start = list;
		if (*list != '"')
			return false;
		end = strchr(list + 1, '"');
		if (end == NULL)
			return false;
		if ((size_t)(end + 1 - start) == elen && memcmp(start, e, elen) == 0)
			return true;
		list = end + 1;
	}
	return false;
}

int cache_byte_range(const char *range, uint64_t len, uint64_t *first, uint64_t *last)
{
	uint64_t a = 0, b = 0;
	const char *p;
	bool suffix;

	if (strncmp(range, "bytes=", 6) != 0)
		return 0;
	p = range + 6;
	suffix = *p == '-';
	if (suffix)
		p++;
	if (*p < '0' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (a > (UINT64_MAX - 9) / 10)
			return 0;
		a = a * 10 + (uint64_t)(*p - '0');
	}
	if (suffix) {
		if (*p != '\0')
			return 0;
		if (a == 0 || len == 0)
			return -1;
		*first = a >= len ? 0 : len - a;
		*last = len - 1;
		return 1;
	}
	if (*p++ != '-')
		return 0;
	if (*p == '\0') {
		b = UINT64_MAX;
	} else {
		for (; *p >= '0' && *p <= '9'; p++) {
			if (b > (UINT64_MAX - 9) / 10)
				return 0;
			b = b * 10 + (uint64_t)(*p - '0');
		}
		if (*p != '\0' || b < a)
			return 0;
	}
	if (a >= len)
		return -1;
	*first = a;
	*last = b >= len ? len - 1 : b;
	return 1;
}
