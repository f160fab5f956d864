/*
 * sign: a check module that lets through only requests signed with a
 * shared secret, RFC 9421 HTTP Message Signatures (hmac-sha256) or the
 * classic app-key/timestamp/nonce/X-Sign scheme, each nonce accepted once
 * across every worker.
 *
 *   location "/api/" {
 *       handler = "echo"
 *       check   = {"sign"}
 *       sign { key "app-1" { secret_file = "/etc/httpd/keys/app-1" } }
 *   }
 *   sign_nonce_store { entries = 65536 }
 *
 * Head checks run before the body is read; the body (Content-Digest, or
 * the classic body hash) is checked as it streams, never held.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <httpd/module.h>

#include "nonce_store.h"
#include "sf.h"
#include "sign_base.h"

#define SECRET_MAX    1024
#define NONCE_MAX     128
#define REQUIRE_MAX   16

enum token {
	T_OK, T_MISSING_SIGNATURE, T_MALFORMED, T_UNKNOWN_KEY, T_KEY_NOT_VALID, T_UNKNOWN_PARAMETER, T_ALG,
	T_MISSING_CREATED, T_CREATED_IN_FUTURE, T_TOO_OLD, T_EXPIRED, T_MISSING_NONCE, T_BAD_NONCE,
	T_NOT_COVERED, T_DIGEST_MISMATCH, T_DIGEST_ALGORITHM, T_COMPONENT_UNAVAILABLE, T_SIGNATURE_MISMATCH,
	T_REPLAY, T_NONCE_STORE_FULL, T_RESTARTED, T_INTERNAL, T_NONCE_STORE_UNAVAILABLE,
	T_PENDING,   /* not a verdict: the nonce is being claimed in Redis */
};

static const char *const token_names[] = {
	"ok", "missing-signature", "malformed", "unknown-key", "key-not-valid", "unknown-parameter", "alg",
	"missing-created", "created-in-future", "too-old", "expired", "missing-nonce", "bad-nonce",
	"not-covered", "digest-mismatch", "digest-algorithm", "component-unavailable", "signature-mismatch",
	"replay", "nonce-store-full", "restarted", "internal", "nonce-store-unavailable", "pending",
};

enum mode { MODE_RFC9421, MODE_CLASSIC, MODE_ANY };

struct sign_key {
	char    *id;
	uint8_t *secret;
	size_t   secret_len;
	time_t   not_before, not_after;   /* 0: no bound */
};

/*
 * The nonce store a server block's locations share: this machine's shared
 * memory (backend "shm"), or Redis for a fleet (backend "redis").
 */
struct sign_server {
	struct nonce_store              *shm;
	struct httpd_redis              *redis;
	const struct httpd_redis_script *claim;
	char                            *prefix;
};

struct sign_location {
	const struct sign_server *server;   /* NULL under httpd -t */
	struct sign_key *keys;
	size_t           key_count;
	long             window, skew;
	char            *require[REQUIRE_MAX];
	size_t           require_count;
	unsigned         digests;          /* SIGN_SHA256 | SIGN_SHA512 */
	enum mode        mode;
	char            *accept_signature;
};

/* What the head check leaves for the body check. */
struct sign_state {
	struct sign_location *sl;
	struct sign_hash     *hash;
	/* RFC 9421: the Content-Digest to match */
	enum sign_digest      digest_alg;
	uint8_t               expected[64];
	size_t                expected_len;
	/* classic: the HMAC is checked once the body hash is known */
	bool                  classic;
	const struct sign_key *key;
	const char           *timestamp, *nonce, *mac_hex;
	time_t                expires;
	/* a claim sent to Redis: what the verdict needs when it comes */
	const char           *key_id;
	int64_t               created;
	bool                  at_end;     /* the body check waits for it, not the head check */
	struct httpd_response *res;
};

static struct nonce_store *store;      /* made in the master; every worker inherits it */
static unsigned            store_users;

/* --- configuration -------------------------------------------------------- */

static const struct httpd_option key_options[] = {
	HTTPD_OPTION_STR("secret_file", NULL),
	HTTPD_OPTION_STR("not_before", NULL),
	HTTPD_OPTION_STR("not_after", NULL),
	HTTPD_OPTION_END
};

static const struct httpd_option sign_options[] = {
	HTTPD_OPTION_SECTION("key", HTTPD_OPT_MULTI | HTTPD_OPT_TITLED, key_options),
	HTTPD_OPTION_INT("window", "300"),
	HTTPD_OPTION_INT("skew", "30"),
	HTTPD_OPTION_STR_LIST("require", "{\"@method\", \"@target-uri\"}"),
	HTTPD_OPTION_STR_LIST("digest", "{\"sha-256\", \"sha-512\"}"),
	HTTPD_OPTION_STR("mode", "rfc9421"),
	HTTPD_OPTION_END
};

static const struct httpd_option location_options[] = {
	HTTPD_OPTION_SECTION("sign", 0, sign_options),
	HTTPD_OPTION_END
};

static const char *const backends[] = { "shm", "redis", NULL };

static const struct httpd_option store_options[] = {
	HTTPD_OPTION_INT("entries", "65536"),
	HTTPD_OPTION_STR("path", NULL),
	HTTPD_OPTION_ENUM("backend", "shm", backends),
	HTTPD_OPTION_STR("redis", "127.0.0.1:6379"),
	HTTPD_OPTION_STR("prefix", "httpd:nonce:"),
	HTTPD_OPTION_DURATION("timeout", "250ms", 1, 60 * 1000),
	HTTPD_OPTION_STR("password_file", NULL),
	HTTPD_OPTION_END
};

/*
 * One round trip per accepted signature: the fleet's epoch (written when
 * missing: a Redis that is new, or restarted without its data, has
 * forgotten the nonces of the window) and SET NX PX of the nonce.
 * KEYS: epoch marker, nonce.  ARGV: now (seconds), time to live (ms).
 */
static const char claim_script[] =
	"local e = redis.call('GET', KEYS[1])\n"
	"if not e then e = ARGV[1]; redis.call('SET', KEYS[1], e) end\n"
	"if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return {1, tonumber(e)} end\n"
	"return {0, tonumber(e)}\n";

static const struct httpd_option server_options[] = {
	HTTPD_OPTION_SECTION("sign_nonce_store", 0, store_options),
	HTTPD_OPTION_END
};

/* "2026-12-01T00:00:00Z" (UTC only); -1 if it is not that. */
static time_t rfc3339_parse(const char *s)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (end == NULL || strcmp(end, "Z") != 0)
		return -1;
	return timegm(&tm);
}

/* Reads a base64 secret of at least 32 bytes from a file only its owner can read. */
static int secret_read(const char *path, struct sign_key *k, char *err, size_t errlen)
{
	char text[SECRET_MAX * 2];
	uint8_t buf[SECRET_MAX];
	struct stat st;
	ssize_t n;
	long len;
	size_t t;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, errlen, "secret_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "secret_file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "secret_file %s: readable or writable by group or others (mode %03o); chmod 600 it",
		         path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "secret_file %s: %s", path, strerror(errno));
		return -1;
	}
	t = (size_t)n;
	while (t > 0 && isspace((unsigned char)text[t - 1]))
		t--;
	len = sf_base64_decode(text, t, buf, sizeof(buf));
	sign_wipe(text, sizeof(text));
	if (len < 0) {
		snprintf(err, errlen, "secret_file %s: not base64", path);
		return -1;
	}
	if (len < 32) {
		sign_wipe(buf, sizeof(buf));
		snprintf(err, errlen, "secret_file %s: %ld bytes; at least 32 random bytes are needed", path, len);
		return -1;
	}
	k->secret = malloc((size_t)len);
	if (k->secret == NULL) {
		sign_wipe(buf, sizeof(buf));
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(k->secret, buf, (size_t)len);
	k->secret_len = (size_t)len;
	sign_wipe(buf, sizeof(buf));
	return 0;
}

static void sign_release(void *data)
{
	struct sign_location *sl = data;

	if (sl == NULL)
		return;
	for (size_t i = 0; i < sl->key_count; i++) {
		if (sl->keys[i].secret != NULL)
			sign_wipe(sl->keys[i].secret, sl->keys[i].secret_len);
		free(sl->keys[i].secret);
		free(sl->keys[i].id);
	}
	for (size_t i = 0; i < sl->require_count; i++)
		free(sl->require[i]);
	free(sl->keys);
	free(sl->accept_signature);
	free(sl);
}

static int key_configure(struct sign_key *k, const struct httpd_conf *kc, char *err, size_t errlen)
{
	const char *file = httpd_conf_str(kc, "secret_file");
	const char *nb = httpd_conf_str(kc, "not_before"), *na = httpd_conf_str(kc, "not_after");
	char where[300], why[400];

	httpd_conf_origin(kc, where, sizeof(where));
	k->id = strdup(httpd_conf_title(kc));
	if (k->id == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (file == NULL) {
		snprintf(err, errlen, "%s: key \"%s\" needs a secret_file", where, k->id);
		return -1;
	}
	if ((nb != NULL && (k->not_before = rfc3339_parse(nb)) < 0) ||
	    (na != NULL && (k->not_after = rfc3339_parse(na)) < 0)) {
		snprintf(err, errlen, "%s: key \"%s\": not_before and not_after are like \"2026-12-01T00:00:00Z\"",
		         where, k->id);
		return -1;
	}
	if (secret_read(file, k, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: key \"%s\": %s", where, k->id, why);
		return -1;
	}
	return 0;
}

static char *accept_signature_make(const struct sign_location *sl)
{
	struct sign_buf b = { 0 };

	/* RFC 9421 §5.1: what a signature here must look like. */
	sign_buf_puts(&b, "sig1=(");
	for (size_t i = 0; i < sl->require_count; i++) {
		if (i > 0)
			sign_buf_put(&b, " ", 1);
		sign_buf_put(&b, "\"", 1);
		sign_buf_puts(&b, sl->require[i]);
		sign_buf_put(&b, "\"", 1);
	}
	sign_buf_puts(&b, ");created;nonce;alg=\"hmac-sha256\"");
	if (b.failed) {
		sign_buf_free(&b);
		return NULL;
	}
	return b.p;
}

static int sign_configure(const struct httpd_location *loc, const struct httpd_conf *opts, void **data,
                          char *err, size_t errlen)
{
	const struct httpd_conf *sc = httpd_conf_section(opts, "sign", 0);
	struct sign_location *sl = calloc(1, sizeof(*sl));
	const char *mode;
	char where[300];

	if (sl == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*data = sl;
	sl->server = httpd_location_server_data(loc, "sign");
	if (sc == NULL || httpd_conf_count(sc, "key") == 0) {
		snprintf(err, errlen, "check \"sign\" needs a sign { key \"ID\" { secret_file = \"...\" } } block");
		goto fail;
	}
	httpd_conf_origin(sc, where, sizeof(where));
	sl->key_count = httpd_conf_count(sc, "key");
	sl->keys = calloc(sl->key_count, sizeof(*sl->keys));
	if (sl->keys == NULL)
		goto oom;
	for (size_t i = 0; i < sl->key_count; i++)
		if (key_configure(&sl->keys[i], httpd_conf_section(sc, "key", i), err, errlen) < 0)
			goto fail;
	sl->window = httpd_conf_int(sc, "window");
	sl->skew = httpd_conf_int(sc, "skew");
	if (sl->window < 1 || sl->window > 86400 || sl->skew < 0 || sl->skew > 3600) {
		snprintf(err, errlen, "%s: sign: window must be 1-86400 and skew 0-3600 seconds", where);
		goto fail;
	}
	sl->require_count = httpd_conf_count(sc, "require");
	if (sl->require_count > REQUIRE_MAX) {
		snprintf(err, errlen, "%s: sign: at most %d required components", where, REQUIRE_MAX);
		goto fail;
	}
	for (size_t i = 0; i < sl->require_count; i++)
		if ((sl->require[i] = strdup(httpd_conf_list_str(sc, "require", i))) == NULL)
			goto oom;
	for (size_t i = 0; i < httpd_conf_count(sc, "digest"); i++) {
		const char *d = httpd_conf_list_str(sc, "digest", i);

		if (strcmp(d, "sha-256") == 0) {
			sl->digests |= SIGN_SHA256;
		} else if (strcmp(d, "sha-512") == 0) {
			sl->digests |= SIGN_SHA512;
		} else {
			snprintf(err, errlen, "%s: sign: digest \"%s\" is not accepted (only \"sha-256\" and \"sha-512\"; "
			         "md5 and sha are never safe, RFC 9530 §5)", where, d);
			goto fail;
		}
	}
	mode = httpd_conf_str(sc, "mode");
	if (strcmp(mode, "rfc9421") == 0) {
		sl->mode = MODE_RFC9421;
	} else if (strcmp(mode, "classic") == 0) {
		sl->mode = MODE_CLASSIC;
	} else if (strcmp(mode, "any") == 0) {
		sl->mode = MODE_ANY;
	} else {
		snprintf(err, errlen, "%s: sign: mode must be \"rfc9421\", \"classic\" or \"any\", not \"%s\"", where, mode);
		goto fail;
	}
	if ((sl->accept_signature = accept_signature_make(sl)) == NULL)
		goto oom;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	sign_release(sl);
	*data = NULL;
	return -1;
}

/* The pid file's path with ".nonces" for ".pid": each instance its own store. */
static char *store_default_path(const struct httpd_conf *server)
{
	const char *pid = httpd_conf_str(server, "pid_file");
	size_t len = pid != NULL ? strlen(pid) : 0;
	char *path;

	if (len == 0)
		return NULL;
	if (len > 4 && strcmp(pid + len - 4, ".pid") == 0)
		len -= 4;
	path = malloc(len + sizeof(".nonces"));
	if (path != NULL) {
		memcpy(path, pid, len);
		memcpy(path + len, ".nonces", sizeof(".nonces"));
	}
	return path;
}

/* Backend "shm": this machine's store, kept across reloads unless its size or file changed. */
static int shm_store_init(const struct httpd_conf *server, const struct httpd_conf *sc, const char *where,
                          struct sign_server *ss, char *err, size_t errlen)
{
	long entries = sc != NULL ? httpd_conf_int(sc, "entries") : 65536;
	const char *set = sc != NULL ? httpd_conf_str(sc, "path") : NULL;
	char *path;

	if (entries < 16 || entries > (1L << 28)) {
		snprintf(err, errlen, "%s: sign_nonce_store: entries must be 16 to 268435456", where);
		return -1;
	}
	path = set != NULL ? strdup(set) : store_default_path(server);
	if (path == NULL || path[0] != '/') {
		snprintf(err, errlen, "%s: sign_nonce_store: path must be absolute (the pid file's, with .nonces, "
		         "by default)", where);
		free(path);
		return -1;
	}
	if (httpd_config_checking()) {
		/* httpd -t: the running server's store stays as it is; only say where it would go. */
		char *slash = strrchr(path, '/');

		*slash = '\0';
		if (path[0] != '\0' && access(path, W_OK | X_OK) < 0) {
			snprintf(err, errlen, "%s: sign_nonce_store: cannot make the store in %s: %s", where, path,
			         strerror(errno));
			free(path);
			return -1;
		}
		free(path);
		return 0;
	}
	if (store == NULL || nonce_store_entries(store) != (size_t)entries ||
	    strcmp(nonce_store_path(store), path) != 0) {
		struct nonce_store *s = nonce_store_open(path, (size_t)entries, store, err, errlen);

		if (s == NULL) {
			free(path);
			return -1;
		}
		if (nonce_store_fresh(s))
			httpd_log(HTTPD_LOG_NOTICE, "sign: new nonce store %s (%ld entries): signatures created before "
			          "now are refused as \"restarted\"", path, entries);
		store = s;   /* the one it replaces goes with the last configuration using it (sign_server_exit) */
		store_users = 0;
	}
	free(path);
	store_users++;
	ss->shm = store;
	return 0;
}

/* Backend "redis": the fleet's store; nothing connects here (httpd -t needs no Redis). */
static int redis_store_init(const struct httpd_conf *sc, const char *where, struct sign_server *ss,
                            char *err, size_t errlen)
{
	const char *prefix = httpd_conf_str(sc, "prefix"), *address = httpd_conf_str(sc, "redis");
	uint64_t timeout_ms = 250;
	char why[400];

	if (httpd_conf_duration(sc, "timeout", &timeout_ms) < 0)
		timeout_ms = 250;
	if (address == NULL || *address == '\0') {
		snprintf(err, errlen, "%s: sign_nonce_store: backend \"redis\" needs redis = \"HOST:PORT\" "
		         "(or \"unix:/path\")", where);
		return -1;
	}
	ss->redis = httpd_redis_new(address, httpd_conf_str(sc, "password_file"), (unsigned)timeout_ms, why,
	                            sizeof(why));
	if (ss->redis == NULL) {
		snprintf(err, errlen, "%s: sign_nonce_store: %s", where, why);
		return -1;
	}
	ss->prefix = strdup(prefix != NULL ? prefix : "");
	ss->claim = httpd_redis_script(ss->redis, claim_script);
	if (ss->prefix == NULL || ss->claim == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void sign_server_exit(void *server_data)
{
	struct sign_server *ss = server_data;

	if (ss == NULL)
		return;
	/*
	 * The master's mapping of a store no configuration uses any more goes
	 * (the workers still draining with it have their own; the file stays).
	 */
	if (ss->shm != NULL && ss->shm != store) {
		nonce_store_destroy(ss->shm);
	} else if (ss->shm != NULL && store_users > 0 && --store_users == 0) {
		nonce_store_destroy(store);
		store = NULL;
	}
	/* The master's copy: workers forked with it keep their own. */
	httpd_redis_free(ss->redis);
	free(ss->prefix);
	free(ss);
}

static int sign_server_init(const struct httpd_conf *server, void **server_data, char *err, size_t errlen)
{
	const struct httpd_conf *sc = httpd_conf_section(server, "sign_nonce_store", 0);
	struct sign_server *ss = calloc(1, sizeof(*ss));
	char where[300] = "?";
	int rc;

	if (ss == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (sc != NULL)
		httpd_conf_origin(sc, where, sizeof(where));
	if (sc != NULL && strcmp(httpd_conf_str(sc, "backend"), "redis") == 0)
		rc = redis_store_init(sc, where, ss, err, errlen);
	else
		rc = shm_store_init(server, sc, where, ss, err, errlen);
	if (rc < 0) {
		sign_server_exit(ss);
		return -1;
	}
	*server_data = ss;
	return 0;
}

/* --- refusals ----------------------------------------------------------- */

static int refuse(struct httpd_request *req, struct httpd_response *res, const struct sign_location *sl,
                  enum token t, const char *key_id)
{
	httpd_log_request(HTTPD_LOG_INFO, req, "sign: key %s: refused: %s", key_id != NULL ? key_id : "-", token_names[t]);
	if (httpd_response_add_header(res, "Sign-Error", token_names[t]) < 0)
		return 500;
	switch (t) {
	case T_MALFORMED:
		return 400;
	case T_NONCE_STORE_FULL:
	case T_NONCE_STORE_UNAVAILABLE:
		return httpd_response_add_header(res, "Retry-After", "1") < 0 ? 500 : 503;
	case T_INTERNAL:
		return 500;
	case T_MISSING_SIGNATURE:
		if (httpd_response_add_header(res, "Accept-Signature", sl->accept_signature) < 0)
			return 500;
		return 401;
	default:
		return 401;
	}
}

/* --- the request as the signature library sees it ------------------------ */

static const char *field_joined(struct httpd_request *req, const char *name)
{
	const char *first = NULL;
	char *joined = NULL;

	for (size_t i = 0; i < req->header_count; i++) {
		if (strcasecmp(req->headers[i].name, name) != 0)
			continue;
		if (first == NULL) {
			first = req->headers[i].value;
			continue;
		}
		joined = httpd_pool_printf(req->pool, "%s, %s", joined ? joined : first, req->headers[i].value);
		if (joined == NULL)
			return NULL;
	}
	return joined != NULL ? joined : first;
}

static bool msg_make(struct httpd_request *req, struct sign_msg *m)
{
	struct sign_header *h = httpd_pool_alloc(req->pool, (req->header_count + 1) * sizeof(*h));

	if (h == NULL)
		return false;
	for (size_t i = 0; i < req->header_count; i++)
		h[i] = (struct sign_header){ req->headers[i].name, req->headers[i].value };
	*m = (struct sign_msg){ req->method_name, req->target, req->scheme ? req->scheme : "http", req->host,
	                        h, req->header_count };
	return true;
}

static bool has_body(const struct httpd_request *req)
{
	return req->chunked || req->content_length > 0;
}

static const struct sign_key *key_find(const struct sign_location *sl, const char *id)
{
	for (size_t i = 0; i < sl->key_count; i++)
		if (strcmp(sl->keys[i].id, id) == 0)
			return &sl->keys[i];
	return NULL;
}

/* The same work a known key costs, so a wrong key id takes as long as a wrong signature. */
static void dummy_hmac(const char *data)
{
	static const uint8_t key[32];
	uint8_t mac[32];

	(void)sign_hmac_sha256(key, sizeof(key), data, strlen(data), mac);
}

static enum token freshness(const struct sign_location *sl, const struct sign_key *k, int64_t created, time_t now)
{
	if ((k->not_before != 0 && now < k->not_before) || (k->not_after != 0 && now > k->not_after))
		return T_KEY_NOT_VALID;
	if (created > (int64_t)now + sl->skew)
		return T_CREATED_IN_FUTURE;
	if (created < (int64_t)now - sl->window)
		return T_TOO_OLD;
	if (sl->server != NULL && sl->server->shm != NULL && created < (int64_t)nonce_store_started(sl->server->shm))
		return T_RESTARTED;   /* it may have been used before this start */
	return T_OK;
}

static bool nonce_ok(const char *nonce)
{
	size_t n = strlen(nonce);

	if (n == 0 || n > NONCE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)nonce[i] <= 0x20 || (unsigned char)nonce[i] >= 0x7f)
			return false;
	return true;
}

/* Claims the nonce until expires: at once in shared memory, or T_PENDING to claim it in Redis (claim_send). */
static enum token nonce_claim(struct sign_state *st, const struct sign_key *k, const char *nonce, int64_t created,
                              time_t expires, time_t now)
{
	const struct sign_server *ss = st->sl->server;

	if (ss == NULL)
		return T_INTERNAL;
	if (ss->redis != NULL) {
		st->key_id = k->id;
		st->nonce = nonce;
		st->created = created;
		st->expires = expires;
		return T_PENDING;
	}
	switch (nonce_store_claim(ss->shm, k->id, nonce, expires, now)) {
	case NONCE_CLAIMED: return T_OK;
	case NONCE_REPLAY:  return T_REPLAY;
	case NONCE_FULL:    return T_NONCE_STORE_FULL;
	default:            return T_INTERNAL;
	}
}

/* --- RFC 9421 ------------------------------------------------------------ */

static bool covers(const struct sf_member *input, const char *name)
{
	for (size_t i = 0; i < input->nlist; i++)
		if (input->list[i].bare.type == SF_STRING && strcmp(input->list[i].bare.str, name) == 0 &&
		    input->list[i].nparams == 0)
			return true;
	return false;
}

/* One signature with one of our keys: every rule, then the HMAC, then the nonce. */
static enum token rfc_verify_one(struct httpd_request *req, struct sign_state *st, const struct sign_msg *msg,
                                 const struct sf_member *input, const struct sf_member *sig,
                                 const struct sign_key *k, struct sf_arena *arena, time_t now)
{
	const struct sign_location *sl = st->sl;
	const struct sf_param *created = NULL, *expires = NULL, *nonce = NULL, *alg = NULL;
	struct sign_buf base = { 0 };
	uint8_t mac[32];
	enum token t;
	enum sign_result rc;

	for (size_t i = 0; i < input->nparams; i++) {
		const struct sf_param *p = &input->params[i];
		bool is_int = p->value.type == SF_INTEGER, is_str = p->value.type == SF_STRING;

		if (strcmp(p->key, "created") == 0 && is_int)
			created = p;
		else if (strcmp(p->key, "expires") == 0 && is_int)
			expires = p;
		else if (strcmp(p->key, "nonce") == 0 && is_str)
			nonce = p;
		else if (strcmp(p->key, "alg") == 0 && is_str)
			alg = p;
		else if ((strcmp(p->key, "keyid") == 0 || strcmp(p->key, "tag") == 0) && is_str)
			continue;
		else if (strcmp(p->key, "created") == 0 || strcmp(p->key, "expires") == 0 || strcmp(p->key, "nonce") == 0 ||
		         strcmp(p->key, "alg") == 0 || strcmp(p->key, "keyid") == 0 || strcmp(p->key, "tag") == 0)
			return T_MALFORMED;
		else
			return T_UNKNOWN_PARAMETER;
	}
	if (alg != NULL && strcmp(alg->value.str, "hmac-sha256") != 0)
		return T_ALG;   /* the key fixes the algorithm */
	if (created == NULL)
		return T_MISSING_CREATED;
	if ((t = freshness(sl, k, created->value.integer, now)) != T_OK)
		return t;
	if (expires != NULL && expires->value.integer <= (int64_t)now)
		return T_EXPIRED;
	if (nonce == NULL)
		return T_MISSING_NONCE;
	if (!nonce_ok(nonce->value.str))
		return T_BAD_NONCE;
	for (size_t i = 0; i < sl->require_count; i++)
		if (!covers(input, sl->require[i]))
			return T_NOT_COVERED;
	if (has_body(req) && !covers(input, "content-digest"))
		return T_NOT_COVERED;
	if (covers(input, "content-digest")) {
		const char *cd = field_joined(req, "Content-Digest");
		const uint8_t *expected;

		if (cd == NULL)
			return T_COMPONENT_UNAVAILABLE;
		rc = sign_content_digest(cd, sl->digests, arena, &st->digest_alg, &expected, &st->expected_len);
		if (rc == SIGN_DIGEST_ALGORITHM)
			return T_DIGEST_ALGORITHM;
		if (rc != SIGN_OK)
			return T_MALFORMED;
		memcpy(st->expected, expected, st->expected_len);
	}
	rc = sign_base_build(msg, input, arena, &base);
	if (rc != SIGN_OK) {
		sign_buf_free(&base);
		return rc == SIGN_MALFORMED ? T_MALFORMED : T_COMPONENT_UNAVAILABLE;
	}
	if (!sign_hmac_sha256(k->secret, k->secret_len, base.p, base.len, mac)) {
		sign_buf_free(&base);
		return T_INTERNAL;
	}
	sign_buf_free(&base);
	if (sig->item.bare.len != sizeof(mac) || !sign_equal(mac, sig->item.bare.str, sizeof(mac)))
		return T_SIGNATURE_MISMATCH;
	/* Only a verified signature may claim a nonce: forgeries cannot fill the store. */
	return nonce_claim(st, k, nonce->value.str, created->value.integer,
	                   (time_t)(created->value.integer + sl->window + sl->skew), now);
}

static enum token rfc_verify(struct httpd_request *req, struct sign_state *st, const char **key_id)
{
	const char *si = field_joined(req, "Signature-Input"), *sg = field_joined(req, "Signature");
	size_t cap = 8192 + 4 * ((si ? strlen(si) : 0) + (sg ? strlen(sg) : 0));
	struct sf_arena arena = { httpd_pool_alloc(req->pool, cap), 0, cap };
	struct sf_dict inputs, sigs;
	struct sign_msg msg;
	enum token first = T_OK;
	time_t now = time(NULL);
	bool paired = false;

	if (si == NULL || sg == NULL)
		return T_MISSING_SIGNATURE;
	if (arena.buf == NULL || !msg_make(req, &msg))
		return T_INTERNAL;
	if (sf_parse_dict(si, strlen(si), &arena, &inputs) < 0 || sf_parse_dict(sg, strlen(sg), &arena, &sigs) < 0)
		return T_MALFORMED;
	for (size_t i = 0; i < inputs.count; i++) {
		const struct sf_member *in = &inputs.members[i], *sig = sf_dict_get(&sigs, in->key);
		const struct sf_param *kid;
		const struct sign_key *k;
		enum token t;

		if (sig == NULL)
			continue;   /* a label without its signature: not a signature */
		paired = true;
		if (!in->is_inner || sig->is_inner || sig->item.bare.type != SF_BYTES)
			return T_MALFORMED;
		kid = sf_params_get(in->params, in->nparams, "keyid");
		k = kid != NULL && kid->value.type == SF_STRING ? key_find(st->sl, kid->value.str) : NULL;
		if (k == NULL)
			continue;   /* someone else's signature: ignored, as long as one of ours verifies */
		*key_id = k->id;
		t = rfc_verify_one(req, st, &msg, in, sig, k, &arena, now);
		if (t == T_OK || t == T_PENDING)
			return t;
		if (first == T_OK)
			first = t;
	}
	if (!paired)
		return T_MISSING_SIGNATURE;
	if (first == T_OK) {
		dummy_hmac(si);
		return T_UNKNOWN_KEY;
	}
	return first;
}

/* --- classic mode -------------------------------------------------------- */

static bool digits_only(const char *s)
{
	if (*s == '\0' || strlen(s) > 12)
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static enum token classic_finish(struct httpd_request *req, struct sign_state *st, const char *body_hex)
{
	struct sign_msg msg;
	struct sign_buf s = { 0 };
	uint8_t mac[32], given[32];
	time_t now = time(NULL);

	if (!msg_make(req, &msg))
		return T_INTERNAL;
	sign_classic_string(&msg, st->timestamp, st->nonce, body_hex, &s);
	if (s.failed || !sign_hmac_sha256(st->key->secret, st->key->secret_len, s.p, s.len, mac)) {
		sign_buf_free(&s);
		return T_INTERNAL;
	}
	sign_buf_free(&s);
	for (size_t i = 0; i < 32; i++) {
		unsigned hi = (unsigned)(isdigit((unsigned char)st->mac_hex[2 * i]) ? st->mac_hex[2 * i] - '0' : st->mac_hex[2 * i] - 'a' + 10);
		unsigned lo = (unsigned)(isdigit((unsigned char)st->mac_hex[2 * i + 1]) ? st->mac_hex[2 * i + 1] - '0' : st->mac_hex[2 * i + 1] - 'a' + 10);

		given[i] = (uint8_t)(hi << 4 | lo);
	}
	if (!sign_equal(mac, given, sizeof(mac)))
		return T_SIGNATURE_MISMATCH;
	return nonce_claim(st, st->key, st->nonce, strtoll(st->timestamp, NULL, 10), st->expires, now);
}

static enum token classic_head(struct httpd_request *req, struct sign_state *st, const char **key_id)
{
	const char *kid = httpd_request_header(req, "X-Sign-Key"), *ts = httpd_request_header(req, "X-Sign-Timestamp");
	const char *nonce = httpd_request_header(req, "X-Sign-Nonce"), *mac = httpd_request_header(req, "X-Sign");
	const struct sign_key *k;
	enum token t;
	time_t now = time(NULL);
	int64_t created;

	if (mac == NULL || kid == NULL)
		return T_MISSING_SIGNATURE;
	if (!hex64(mac))
		return T_MALFORMED;
	if ((k = key_find(st->sl, kid)) == NULL) {
		dummy_hmac(mac);
		return T_UNKNOWN_KEY;
	}
	*key_id = k->id;
	if (ts == NULL)
		return T_MISSING_CREATED;
	if (!digits_only(ts))
		return T_MALFORMED;
	created = strtoll(ts, NULL, 10);
	if ((t = freshness(st->sl, k, created, now)) != T_OK)
		return t;
	if (nonce == NULL)
		return T_MISSING_NONCE;
	if (!nonce_ok(nonce))
		return T_BAD_NONCE;
	st->classic = true;
	st->key = k;
	st->timestamp = ts;
	st->nonce = nonce;
	st->mac_hex = mac;
	st->expires = (time_t)(created + st->sl->window + st->sl->skew);
	if (has_body(req))
		return T_OK;   /* the HMAC covers the body hash: checked once the body is in */
	return classic_finish(req, st, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* --- hooks --------------------------------------------------------------- */

static void state_free(void *arg)
{
	struct sign_state *st = arg;

	sign_hash_free(st->hash);
	st->hash = NULL;
}

/* The signature verified and its nonce is ours: the rest of the head check. */
static int head_verified(struct httpd_request *req, struct httpd_response *res, struct sign_state *st,
                         const char *key_id)
{
	if (st->expected_len > 0 && !has_body(req)) {
		/* A covered digest of an empty body. */
		uint8_t d[64];
		struct sign_hash *h = sign_hash_new(st->digest_alg);

		if (h == NULL || sign_hash_final(h, d) != st->expected_len || !sign_equal(d, st->expected, st->expected_len))
			return refuse(req, res, st->sl, T_DIGEST_MISMATCH, key_id);
	}
	if (has_body(req) && httpd_request_note_set(req, "sign", st) < 0)
		return 500;
	return HTTPD_DECLINED;
}

/* Redis answered a claim with {claimed, epoch}, or did not answer. */
static enum token claim_verdict(const struct sign_state *st, const struct httpd_redis_reply *reply)
{
	const struct httpd_redis_reply *e = reply->element;

	if (reply->type != HTTPD_REDIS_ARRAY || reply->elements != 2 || e[0].type != HTTPD_REDIS_INTEGER ||
	    e[1].type != HTTPD_REDIS_INTEGER)
		return T_NONCE_STORE_UNAVAILABLE;   /* the core logged why */
	/* Signatures from before the fleet's store began (plus the clocks' skew) may have been used: refused. */
	if (st->created < e[1].integer + st->sl->skew)
		return T_RESTARTED;
	return e[0].integer == 1 ? T_OK : T_REPLAY;
}

static void claim_answered(struct httpd_request *req, void *arg, const struct httpd_redis_reply *reply)
{
	struct sign_state *st = arg;
	enum token t = claim_verdict(st, reply);
	int rc;

	if (t != T_OK)
		rc = refuse(req, st->res, st->sl, t, st->key_id);
	else
		rc = st->at_end ? HTTPD_OK : head_verified(req, st->res, st, st->key_id);
	httpd_request_check_done(req, rc);
}

/* One round trip to Redis for the claim (claim_script); HTTPD_PENDING, or the refusal when it cannot go. */
static int claim_send(struct httpd_request *req, struct httpd_response *res, struct sign_state *st, bool at_end)
{
	const struct sign_server *ss = st->sl->server;
	time_t now = time(NULL);
	long long ttl_ms = ((long long)st->expires - (long long)now) * 1000;
	char *epoch_key = httpd_pool_printf(req->pool, "%sepoch", ss->prefix);
	char *nonce_key = httpd_pool_printf(req->pool, "%s%s:%s", ss->prefix, st->key_id, st->nonce);
	char now_s[24], ttl_s[24];
	const char *argv[5];
	size_t len[5];

	if (epoch_key == NULL || nonce_key == NULL)
		return 500;
	snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
	snprintf(ttl_s, sizeof(ttl_s), "%lld", ttl_ms < 1000 ? 1000LL : ttl_ms);
	argv[0] = "2";
	argv[1] = epoch_key;
	argv[2] = nonce_key;
	argv[3] = now_s;
	argv[4] = ttl_s;
	for (int i = 0; i < 5; i++)
		len[i] = strlen(argv[i]);
	st->res = res;
	st->at_end = at_end;
	if (httpd_redis_eval(ss->redis, req, ss->claim, claim_answered, st, 5, argv, len) < 0)
		return refuse(req, res, st->sl, T_NONCE_STORE_UNAVAILABLE, st->key_id);
	return HTTPD_PENDING;
}

static int sign_check(void *data, struct httpd_request *req, struct httpd_response *res)
{
	struct sign_location *sl = data;
	struct sign_state *st = httpd_pool_alloc(req->pool, sizeof(*st));
	const char *key_id = NULL;
	enum token t;
	bool classic;

	if (st == NULL)
		return 500;
	memset(st, 0, sizeof(*st));
	st->sl = sl;
	if (httpd_pool_cleanup(req->pool, state_free, st) < 0)
		return 500;
	classic = sl->mode == MODE_CLASSIC ||
	          (sl->mode == MODE_ANY && httpd_request_header(req, "Signature-Input") == NULL &&
	           httpd_request_header(req, "X-Sign") != NULL);
	t = classic ? classic_head(req, st, &key_id) : rfc_verify(req, st, &key_id);
	if (t == T_PENDING)
		return claim_send(req, res, st, false);
	if (t != T_OK)
		return refuse(req, res, sl, t, key_id);
	return head_verified(req, res, st, key_id);
}

static int sign_body_check(void *data, struct httpd_request *req, struct httpd_response *res,
                           enum httpd_body_event ev, const void *buf, size_t len)
{
	struct sign_state *st = httpd_request_note(req, "sign");
	uint8_t d[64];
	char hex[129];
	size_t n;
	enum token t;

	(void)data;
	if (st == NULL)
		return HTTPD_DECLINED;
	switch (ev) {
	case HTTPD_BODY_START:
		if (!st->classic && st->expected_len == 0)
			return HTTPD_DECLINED;
		st->hash = sign_hash_new(st->classic ? SIGN_SHA256 : st->digest_alg);
		return st->hash != NULL ? HTTPD_OK : refuse(req, res, st->sl, T_INTERNAL, NULL);
	case HTTPD_BODY_DATA:
		sign_hash_update(st->hash, buf, len);
		return HTTPD_OK;
	case HTTPD_BODY_END:
		n = sign_hash_final(st->hash, d);
		st->hash = NULL;
		if (n == 0)
			return refuse(req, res, st->sl, T_INTERNAL, NULL);
		if (st->classic) {
			sign_hex(d, n, hex);
			t = classic_finish(req, st, hex);
			if (t == T_PENDING)
				return claim_send(req, res, st, true);
			return t == T_OK ? HTTPD_OK : refuse(req, res, st->sl, t, st->key->id);
		}
		if (n != st->expected_len || !sign_equal(d, st->expected, n))
			return refuse(req, res, st->sl, T_DIGEST_MISMATCH, NULL);
		return HTTPD_OK;
	}
	return HTTPD_OK;
}

static int sign_register(struct httpd_module_api *api)
{
	httpd_module_name(api, "sign");
	httpd_module_options(api, location_options);
	httpd_module_server_options(api, server_options);
	httpd_hook_server_init(api, sign_server_init);
	httpd_hook_server_exit(api, sign_server_exit);
	httpd_hook_configure(api, sign_configure);
	httpd_hook_release(api, sign_release);
	httpd_hook_check(api, sign_check);
	httpd_hook_body_check(api, sign_body_check);
	return 0;
}

HTTPD_MODULE(sign_register)
