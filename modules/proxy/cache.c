/* The proxy's HTTP cache: zones, and what a cache location does with a request.  See cache.h. */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cache_entry.h"
#include "cache_index.h"
#include "cache_policy.h"
#include "cache_store.h"

#define EVICT_MAX      64
#define WAIT_POLL_MS   10     /* a waiting request looks for the fetcher's entry this often */
#define COPY_MAX       (1024 * 1024)

struct cache_zone {
	char               *name, *path;
	uint64_t            size, max_object;
	size_t              entries;
	int64_t             inactive;       /* seconds */
	struct cache_index *idx;
	int                 dirfd;
	unsigned            refs;
	struct cache_zone  *next;           /* in `kept`: every zone the master holds, across reloads */
};

struct cache_zones {
	struct cache_zone **zone;
	size_t              count;
};

/* The master's zones, kept while some configuration names them: a reload finds its own here. */
static struct cache_zone *kept;

static const char *const stale_words[] = { "error", "timeout", "updating", "http_500", "http_502", "http_503",
                                           "http_504", NULL };

const struct httpd_option cache_path_options[] = {
	HTTPD_OPTION_STR("path", NULL),
	HTTPD_OPTION_SIZE("size", "1g", 65536, INT64_MAX),
	HTTPD_OPTION_INT_RANGE("entries", "100000", 16, 100000000),
	HTTPD_OPTION_DURATION("inactive", "600", 1000, 365LL * 86400 * 1000),
	HTTPD_OPTION_END
};

/* --- zones (master) --------------------------------------------------------- */

static void zone_unref(struct cache_zone *z)
{
	if (z == NULL || --z->refs > 0)
		return;
	for (struct cache_zone **pp = &kept; *pp != NULL; pp = &(*pp)->next)
		if (*pp == z) {
			*pp = z->next;
			break;
		}
	if (z->idx != NULL)
		cache_index_destroy(z->idx);
	if (z->dirfd >= 0)
		close(z->dirfd);
	free(z->name);
	free(z->path);
	free(z);
}

/* The directory exists (made if missing, for user) and user may write it. */
static int zone_directory(const struct httpd_conf *server, const char *path, char *why, size_t whylen)
{
	const char *user = httpd_conf_str(server, "user");
	struct passwd *pw = user != NULL ? getpwnam(user) : NULL;
	bool root = geteuid() == 0;
	struct stat st;

	if (path[0] != '/') {
		snprintf(why, whylen, "path \"%s\" must be absolute", path);
		return -1;
	}
	if (stat(path, &st) < 0 && errno == ENOENT && httpd_config_checking()) {
		/* httpd -t makes nothing: the server will make it, under a directory that must be there. */
		char parent[4096];
		const char *slash = strrchr(path, '/');
		size_t len = slash != NULL && slash != path ? (size_t)(slash - path) : 1;

		if (len >= sizeof(parent) || (memcpy(parent, path, len), parent[len] = '\0', stat(parent, &st) < 0) ||
		    !S_ISDIR(st.st_mode)) {
			snprintf(why, whylen, "cannot make %s: %.*s is not a directory", path, (int)len, path);
			return -1;
		}
		return 0;
	}
	if (stat(path, &st) < 0 && errno == ENOENT) {
		if (mkdir(path, 0700) < 0) {
			snprintf(why, whylen, "cannot make %s: %s", path, strerror(errno));
			return -1;
		}
		if (root && pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) < 0) {
			snprintf(why, whylen, "cannot give %s to %s: %s", path, user, strerror(errno));
			return -1;
		}
	}
	if (stat(path, &st) < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%s is not a directory", path);
		return -1;
	}
	if (root && pw != NULL) {
		/* Workers run as user: the directory must be theirs to write, not merely root's. */
		bool ok = st.st_uid == pw->pw_uid ? (st.st_mode & S_IWUSR) && (st.st_mode & S_IXUSR)
		        : st.st_gid == pw->pw_gid ? (st.st_mode & S_IWGRP) && (st.st_mode & S_IXGRP)
		        : (st.st_mode & S_IWOTH) && (st.st_mode & S_IXOTH);

		if (pw->pw_uid != 0 && !ok) {
			snprintf(why, whylen, "%s is not writable by user %s (chown it to %s)", path, user, user);
			return -1;
		}
	} else if (access(path, W_OK | X_OK) < 0) {
		snprintf(why, whylen, "%s is not writable: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static struct cache_zone *zone_make(const struct httpd_conf *server, const struct httpd_conf *sec, char *err,
                                    size_t errlen)
{
	const char *name = httpd_conf_title(sec), *path = httpd_conf_str(sec, "path");
	char origin[256], why[512];
	uint64_t size = 0, inactive = 0;
	size_t entries = (size_t)httpd_conf_int(sec, "entries");
	struct cache_zone *z;

	httpd_conf_origin(sec, origin, sizeof(origin));
	if (path == NULL) {
		snprintf(err, errlen, "%s: proxy_cache_path \"%s\" needs path = \"/var/cache/httpd/%s\"", origin, name, name);
		return NULL;
	}
	(void)httpd_conf_size(sec, "size", &size);
	(void)httpd_conf_duration(sec, "inactive", &inactive);
	if (zone_directory(server, path, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: proxy_cache_path \"%s\": %s", origin, name, why);
		return NULL;
	}
	for (z = kept; z != NULL; z = z->next)
		if (strcmp(z->name, name) == 0 && strcmp(z->path, path) == 0 && z->size == size && z->entries == entries) {
			/* A reload with the same zone: the index and its entries go on. */
			z->refs++;
			z->inactive = (int64_t)(inactive / 1000);
			return z;
		}
	z = calloc(1, sizeof(*z));
	if (z == NULL || (z->name = strdup(name)) == NULL || (z->path = strdup(path)) == NULL) {
		if (z != NULL)
			free(z->name);
		free(z);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	z->size = size;
	z->max_object = size / 8;
	z->entries = entries;
	z->inactive = (int64_t)(inactive / 1000);
	z->refs = 1;
	z->dirfd = -1;
	z->next = kept;
	kept = z;
	if (httpd_config_checking())
		return z;   /* httpd -t: the directory is checked, nothing is mapped or scanned */
	z->dirfd = cache_store_open(path);
	z->idx = z->dirfd >= 0 ? cache_index_create(entries, size) : NULL;
	if (z->idx == NULL) {
		snprintf(err, errlen, "%s: proxy_cache_path \"%s\": cannot %s %s: %s", origin, name,
		         z->dirfd < 0 ? "open" : "map the index for", path, strerror(errno));
		zone_unref(z);
		return NULL;
	}
	{
		size_t kept_n = 0, removed = 0;

		if (cache_store_scan(z->dirfd, z->idx, (int64_t)time(NULL), &kept_n, &removed) < 0) {
			snprintf(err, errlen, "%s: proxy_cache_path \"%s\": cannot read %s: %s", origin, name, path,
			         strerror(errno));
			zone_unref(z);
			return NULL;
		}
		httpd_log(HTTPD_LOG_NOTICE, "proxy cache \"%s\": %zu stored responses found in %s, %zu damaged or "
		          "unfinished files removed", name, kept_n, path, removed);
	}
	return z;
}

int cache_zones_init(const struct httpd_conf *server, struct cache_zones **out, char *err, size_t errlen)
{
	size_t n = httpd_conf_count(server, "proxy_cache_path");
	struct cache_zones *zs = calloc(1, sizeof(*zs));

	*out = zs;
	if (zs == NULL || (n > 0 && (zs->zone = calloc(n, sizeof(*zs->zone))) == NULL)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct httpd_conf *sec = httpd_conf_section(server, "proxy_cache_path", i);

		zs->zone[zs->count] = zone_make(server, sec, err, errlen);
		if (zs->zone[zs->count] == NULL)
			return -1;
		zs->count++;
	}
	return 0;
}

void cache_zones_release(struct cache_zones *zones)
{
	if (zones == NULL)
		return;
	for (size_t i = 0; i < zones->count; i++)
		zone_unref(zones->zone[i]);
	free(zones->zone);
	free(zones);
}

int cache_conf_read(const struct httpd_conf *opts, struct cache_zones *zones, struct cache_conf *cc, char *err,
                    size_t errlen)
{
	const char *name = httpd_conf_str(opts, "proxy_cache");
	uint64_t lock_ms = 0;

	memset(cc, 0, sizeof(*cc));
	if (name == NULL || name[0] == '\0')
		return 0;
	for (size_t i = 0; zones != NULL && i < zones->count; i++)
		if (strcmp(zones->zone[i]->name, name) == 0)
			cc->zone = zones->zone[i];
	if (cc->zone == NULL) {
		snprintf(err, errlen, "proxy_cache \"%s\": no proxy_cache_path \"%s\" block", name, name);
		return -1;
	}
	cc->lock = httpd_conf_bool(opts, "proxy_cache_lock");
	(void)httpd_conf_duration(opts, "proxy_cache_lock_timeout", &lock_ms);
	cc->lock_timeout_ms = (unsigned)lock_ms;
	cc->background_update = httpd_conf_bool(opts, "proxy_cache_background_update");
	for (size_t i = 0; i < httpd_conf_count(opts, "proxy_cache_use_stale"); i++) {
		const char *w = httpd_conf_list_str(opts, "proxy_cache_use_stale", i);
		size_t k = 0;

		while (stale_words[k] != NULL && strcmp(stale_words[k], w) != 0)
			k++;
		if (stale_words[k] == NULL) {
			snprintf(err, errlen, "proxy_cache_use_stale: \"%s\" is not one of error, timeout, updating, "
			         "http_500, http_502, http_503, http_504", w);
			return -1;
		}
		cc->use_stale |= 1u << k;
	}
	for (size_t i = 0; i < httpd_conf_count(opts, "proxy_cache_methods"); i++) {
		const char *m = httpd_conf_list_str(opts, "proxy_cache_methods", i);

		if (strcmp(m, "GET") == 0) {
			cc->methods |= HTTPD_METHOD_GET;
		} else if (strcmp(m, "HEAD") == 0) {
			cc->methods |= HTTPD_METHOD_HEAD;
		} else {
			snprintf(err, errlen, "proxy_cache_methods: \"%s\": only GET and HEAD answers are cached", m);
			return -1;
		}
	}
	cc->key = httpd_conf_expr(opts, "proxy_cache_key");
	cc->bypass = httpd_conf_expr(opts, "proxy_cache_bypass");
	if ((httpd_conf_is_set(opts, "proxy_cache_key") && cc->key == NULL) ||
	    (httpd_conf_is_set(opts, "proxy_cache_bypass") && cc->bypass == NULL)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

void cache_conf_release(struct cache_conf *cc)
{
	if (cc->key != NULL)
		httpd_expr_free(cc->key);
	if (cc->bypass != NULL)
		httpd_expr_free(cc->bypass);
	cc->key = cc->bypass = NULL;
}

/* --- removing files, off the request path (a worker's timer) ------------------ */

#define REMOVALS_MAX 1024

struct removal {
	struct cache_zone *zone;
	uint8_t            hash[32];
};

static struct removal removals[REMOVALS_MAX];
static size_t removal_count;
static bool removal_armed;

/* Removes a file the index no longer lists (if it lists it again, a new one was stored meanwhile: kept). */
static void removal_do(const struct removal *r)
{
	if (cache_index_contains(r->zone->idx, r->hash) == 0)
		(void)cache_store_remove(r->zone->dirfd, r->hash);
}

static void removals_run(struct httpd_request *req, void *arg, unsigned events)
{
	(void)req;
	(void)arg;
	(void)events;
	removal_armed = false;
	for (size_t i = 0; i < removal_count; i++)
		removal_do(&removals[i]);
	removal_count = 0;
}

/* The file of hash goes once this event-loop turn is over (evictions and invalidations). */
static void removal_queue(struct cache_zone *z, const uint8_t hash[32])
{
	struct removal r = { .zone = z };

	memcpy(r.hash, hash, 32);
	if (removal_count == REMOVALS_MAX) {
		removal_do(&r);   /* a flood of evictions: no worse than removing at once */
		return;
	}
	removals[removal_count++] = r;
	if (!removal_armed && httpd_worker_timer(1, removals_run, NULL) != NULL)
		removal_armed = true;
	else if (!removal_armed)
		removals_run(NULL, NULL, 0);
}

/* --- inactive entries (a worker's timer) ------------------------------------- */

static void zone_expire(struct httpd_request *req, void *arg, unsigned events)
{
	struct cache_zone *z = arg;
	uint8_t evicted[EVICT_MAX][32];
	size_t n;
	unsigned period = z->inactive > 120 ? 60000 : z->inactive > 2 ? (unsigned)(z->inactive * 500) : 1000;

	(void)req;
	(void)events;
	do {
		n = cache_index_expire(z->idx, (int64_t)time(NULL), z->inactive, evicted, EVICT_MAX);
		for (size_t i = 0; i < n; i++)
			(void)cache_store_remove(z->dirfd, evicted[i]);
	} while (n == EVICT_MAX);
	if (httpd_worker_timer(period, zone_expire, z) == NULL)
		httpd_log(HTTPD_LOG_ERR, "proxy cache \"%s\": cannot schedule the removal of inactive entries", z->name);
}

void cache_worker_start(struct cache_zones *zones)
{
	/* One worker is enough: the index is shared. */
	if (zones == NULL || httpd_worker_id() != 0)
		return;
	for (size_t i = 0; i < zones->count; i++)
		if (zones->zone[i]->idx != NULL)
			zone_expire(NULL, zones->zone[i], 0);
}

/* --- a stored response ------------------------------------------------------ */

struct stored {
	int                      fd;
	bool                     from_memo;     /* its strings are the worker's copy's: read it again to keep it */
	const char              *body;          /* the copy's body in memory, or NULL (read from fd) */
	uint8_t                  hash[32];
	size_t                   head_len;
	struct cache_entry_meta  meta;
	struct cache_response    policy;
	const char              *etag, *last_modified, *vary;
};

/* The response's policy facts from its fields (NUL-terminated values). */
static void policy_from_fields(struct cache_response *r, int status, const struct cache_field *f, size_t n,
                               int64_t request_time, int64_t response_time)
{
	memset(r, 0, sizeof(*r));
	cache_control_init(&r->cc);
	r->status = status;
	r->age = CACHE_UNSET;
	r->request_time = (time_t)request_time;
	r->response_time = (time_t)response_time;
	bool age_seen = false;

	for (size_t i = 0; i < n; i++) {
		const char *name = f[i].name, *value = f[i].value;
		time_t t;

		if (strcasecmp(name, "Cache-Control") == 0) {
			cache_control_parse(&r->cc, value);
		} else if (strcasecmp(name, "Expires") == 0) {
			/* An invalid Expires is in the past (RFC 9111 §5.3). */
			r->has_expires = true;
			r->expires = httpd_http_date_parse(value, &t) == 0 ? t : 0;
		} else if (strcasecmp(name, "Date") == 0 && httpd_http_date_parse(value, &t) == 0) {
			r->has_date = true;
			r->date = t;
		} else if (strcasecmp(name, "Last-Modified") == 0 && httpd_http_date_parse(value, &t) == 0) {
			r->has_last_modified = true;
			r->last_modified = t;
		} else if (strcasecmp(name, "Age") == 0 && !age_seen) {
			age_seen = true;
			r->age = cache_age_value(value);
		} else if (strcasecmp(name, "Vary") == 0 && strchr(value, '*') != NULL) {
			r->vary_star = true;
		}
	}
}

static const char *field_value(const struct cache_field *f, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(f[i].name, name) == 0)
			return f[i].value;
	return NULL;
}

/* The head's size and field count from its fixed part, and the file's size: false when they cannot be a head. */
static bool stored_measure(int fd, size_t *head, size_t *count, uint64_t *file_size)
{
	uint8_t fixed[70];
	struct stat st;

	if (fstat(fd, &st) < 0 || pread(fd, fixed, sizeof(fixed), 0) != (ssize_t)sizeof(fixed))
		return false;
	*head = (size_t)fixed[4] | (size_t)fixed[5] << 8 | (size_t)fixed[6] << 16 | (size_t)fixed[7] << 24;
	*count = (size_t)fixed[66] | (size_t)fixed[67] << 8;
	*file_size = (uint64_t)st.st_size;
	return *head >= sizeof(fixed) && *head <= CACHE_ENTRY_HEAD_MAX && *head <= *file_size &&
	       *count <= CACHE_ENTRY_FIELDS_MAX;
}

/*
 * Reads the head (head bytes, into buf of head + 1) of fd and makes *s of it:
 * false when it is not whole, not the entry of hash, or not key's.
 */
static bool stored_parse(int fd, uint8_t *buf, size_t head, struct cache_field *fields, size_t count,
                         uint64_t file_size, const uint8_t hash[32], const char *key, size_t key_len, struct stored *s)
{
	/* file_size 0: a file still arriving, whose length says nothing yet. */
	if (pread(fd, buf, head, 0) != (ssize_t)head || cache_meta_parse(buf, head, &s->meta, fields, count) != head ||
	    memcmp(s->meta.hash, hash, 32) != 0 || s->meta.key_len != key_len || memcmp(s->meta.key, key, key_len) != 0 ||
	    (file_size != 0 && file_size != head + s->meta.body_len))
		return false;
	/* Every length is read: the byte after each string may become its NUL. */
	for (size_t i = s->meta.field_count; i-- > 0;) {
		((char *)fields[i].value)[fields[i].value_len] = '\0';
		((char *)fields[i].name)[fields[i].name_len] = '\0';
	}
	((char *)s->meta.vary)[s->meta.vary_len] = '\0';
	memcpy(s->hash, hash, 32);
	s->head_len = head;
	policy_from_fields(&s->policy, s->meta.status, fields, s->meta.field_count, s->meta.request_time,
	                   s->meta.response_time);
	s->etag = field_value(fields, s->meta.field_count, "ETag");
	s->last_modified = field_value(fields, s->meta.field_count, "Last-Modified");
	s->vary = field_value(fields, s->meta.field_count, "Vary");
	return true;
}

/* Opens and reads hash's entry into pool; false when there is none, or it is not the one for key. */
static bool stored_open(struct cache_zone *z, struct httpd_pool *pool, const uint8_t hash[32], const char *key,
                        size_t key_len, struct stored *s)
{
	size_t head = 0, count = 0;
	uint64_t file_size = 0;
	uint8_t *buf;
	struct cache_field *fields;

	memset(s, 0, sizeof(*s));
	s->fd = cache_store_read(z->dirfd, hash);
	if (s->fd < 0)
		return false;
	if (!stored_measure(s->fd, &head, &count, &file_size))
		goto fail;
	buf = httpd_pool_alloc(pool, head + 1);
	fields = httpd_pool_alloc(pool, (count ? count : 1) * sizeof(*fields));
	if (buf == NULL || fields == NULL || !stored_parse(s->fd, buf, head, fields, count, file_size, hash, key, key_len, s))
		goto fail;
	return true;
fail:
	close(s->fd);
	s->fd = -1;
	return false;
}

/*
 * Each worker's copies of the entries it answers from, so that a hit costs
 * no open, stat or read: the parsed head, and the body itself when small.
 * A larger body is opened per answer and must be the same file (inode) the
 * copy was made from; no file is kept open, so a removed entry's space is
 * free at once.  A copy is used only while the index says the same version
 * of the entry is stored (each commit makes a new one).
 */
#define MEMO_SLOTS    256
#define MEMO_BODY_MAX (16 * 1024)

struct memo {
	struct cache_zone  *zone;
	uint64_t            version;
	struct stored       s;          /* its fd unused: see fd */
	uint8_t            *head;
	struct cache_field *fields;
	char               *body;       /* small bodies */
	ino_t               ino;        /* larger ones: the file they are in */
};

static struct memo memos[MEMO_SLOTS];

static struct memo *memo_slot(const uint8_t hash[32])
{
	return &memos[(hash[0] | (unsigned)hash[1] << 8) % MEMO_SLOTS];
}

static void memo_clear(struct memo *m)
{
	free(m->head);
	free(m->fields);
	free(m->body);
	memset(m, 0, sizeof(*m));
}

/* Keeps a copy of s (just read from its file) as version of its entry. */
static void memo_fill(struct cache_zone *z, uint64_t version, const struct stored *s)
{
	struct memo *m = memo_slot(s->hash);
	size_t head = 0, count = 0;
	uint64_t file_size = 0;

	memo_clear(m);
	if (!stored_measure(s->fd, &head, &count, &file_size))
		return;
	m->head = malloc(head + 1);
	m->fields = malloc((count ? count : 1) * sizeof(*m->fields));
	if (m->head == NULL || m->fields == NULL ||
	    !stored_parse(s->fd, m->head, head, m->fields, count, file_size, s->hash, s->meta.key, s->meta.key_len, &m->s))
		goto fail;
	if (m->s.meta.body_len <= MEMO_BODY_MAX) {
		m->body = malloc(m->s.meta.body_len ? m->s.meta.body_len : 1);
		if (m->body == NULL ||
		    pread(s->fd, m->body, m->s.meta.body_len, (off_t)head) != (ssize_t)m->s.meta.body_len)
			goto fail;
	} else {
		struct stat st;

		if (fstat(s->fd, &st) < 0)
			goto fail;
		m->ino = st.st_ino;
	}
	m->s.fd = -1;
	m->zone = z;
	m->version = version;
	return;
fail:
	memo_clear(m);
}

/*
 * hash's entry as version says it is stored: from this worker's copy, or
 * read from its file into pool (and copied for the next time).
 */
static bool stored_get(struct cache_zone *z, struct httpd_pool *pool, const uint8_t hash[32], uint64_t version,
                       const char *key, size_t key_len, struct stored *s)
{
	struct memo *m = memo_slot(hash);

	if (m->zone == z && m->version == version && memcmp(m->s.hash, hash, 32) == 0 && m->s.meta.key_len == key_len &&
	    memcmp(m->s.meta.key, key, key_len) == 0) {
		struct stat st;
		int fd = -1;

		if (m->body != NULL ||
		    ((fd = cache_store_read(z->dirfd, hash)) >= 0 && fstat(fd, &st) == 0 && st.st_ino == m->ino)) {
			*s = m->s;
			s->from_memo = true;
			s->body = m->body;
			s->fd = fd;
			return true;
		}
		if (fd >= 0)
			close(fd);
	}
	if (!stored_open(z, pool, hash, key, key_len, s))
		return false;
	memo_fill(z, version, s);
	return true;
}

static void stored_close(struct stored *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* --- a request through a cache location --------------------------------------- */

enum cache_mode {
	MODE_PASS,         /* not this cache's business: the answer is neither looked up nor stored */
	MODE_STORE,        /* a miss: the answer is stored if it may be */
	MODE_REVALIDATE,   /* a stale entry: the origin is asked whether it still holds */
	MODE_INVALIDATE,   /* an unsafe method: a success removes what is stored for the target */
};

struct cache_req {
	const struct cache_conf *cc;
	struct cache_zone       *zone;
	struct httpd_request    *req;           /* NULL for a background revalidation, which has no client */
	struct httpd_response   *res;
	struct httpd_pool       *pool;          /* the request's, or the background revalidation's own */
	enum cache_mode          mode;
	enum cache_status_kind   kind;          /* what Cache-Status will say of a forwarded request */
	const char              *log_status;    /* $upstream_cache_status */
	char                    *key;
	size_t                   key_len;
	uint8_t                  primary[32];   /* of the key */
	uint8_t                  hash[32];      /* of the entry to write (the primary, or a Vary variant's) */
	struct cache_request     policy;
	struct stored            entry;         /* a stale entry being revalidated (fd >= 0) */
	bool                     primary_other_variant;   /* the primary holds another variant of the same Vary */
	bool                     claimed;
	bool                     no_store;      /* fetch, never store (a lock wait that timed out) */
	char                    *extra;         /* validators for the origin */
	/* A miss being stored. */
	int                      fd;
	uint64_t                 written;
	size_t                   meta_len;
	struct cache_entry_meta  meta;
	int64_t                  request_time;
	/* A lock wait. */
	struct httpd_event      *timer;
	uint64_t                 wait_until;
	cache_fetch_fn           fetch;
	void                    *fetch_arg;
	cache_refresh_fn         refresh;
	const char              *entry_vary, *entry_vary_values;   /* a background revalidation's variant */
	bool                     published;     /* the file being stored has its .part name, for waiters */
	int64_t                  response_time; /* of the response being stored (its head says 0 until it is whole) */
	/* A waiter answered from another's file as it arrives. */
	int                      part_fd;
	uint64_t                 part_sent, part_idle_since;
	bool                     part_waiting;
};

/* Errors name the request when there is one. */
#define CACHE_LOG(cr, ...) do { \
		if ((cr)->req != NULL) \
			httpd_log_request(HTTPD_LOG_ERR, (cr)->req, __VA_ARGS__); \
		else \
			httpd_log(HTTPD_LOG_ERR, __VA_ARGS__); \
	} while (0)

static uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* SHA-256 of the key, and of the variant's values after a NUL when there is one: the file's name. */
static void key_hash(const char *key, size_t len, const char *variant, size_t variant_len, uint8_t out[32])
{
	/* Fetched and made once per process: every lookup hashes, and OpenSSL 3's implicit fetch is not free. */
	static EVP_MD *sha256;
	static EVP_MD_CTX *c;
	unsigned n = 0;

	if (sha256 == NULL)
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (c == NULL)
		c = EVP_MD_CTX_new();
	if (sha256 == NULL || c == NULL || EVP_DigestInit_ex(c, sha256, NULL) != 1 || EVP_DigestUpdate(c, key, len) != 1 ||
	    (variant != NULL && (EVP_DigestUpdate(c, "", 1) != 1 || EVP_DigestUpdate(c, variant, variant_len) != 1)) ||
	    EVP_DigestFinal_ex(c, out, &n) != 1 || n != 32) {
		/* Out of memory in libcrypto: a hash no stored entry has, so the request is a miss. */
		memset(out, 0xff, 32);
	}
}

/* Every field line of name, joined with ", " (RFC 9110 §5.3), or NULL; for Vary and Cache-Control. */
static const char *request_field(const struct httpd_request *req, const char *name, size_t name_len)
{
	const char *first = NULL;
	size_t total = 0, count = 0;
	char *joined;

	for (size_t i = 0; i < req->header_count; i++)
		if (req->headers[i].name_len == name_len && strncasecmp(req->headers[i].name, name, name_len) == 0) {
			if (first == NULL)
				first = req->headers[i].value;
			total += strlen(req->headers[i].value) + 2;
			count++;
		}
	if (count <= 1)
		return first;
	joined = httpd_pool_alloc(req->pool, total);
	if (joined == NULL)
		return first;
	joined[0] = '\0';
	total = 0;
	for (size_t i = 0; i < req->header_count; i++)
		if (req->headers[i].name_len == name_len && strncasecmp(req->headers[i].name, name, name_len) == 0) {
			size_t l = strlen(req->headers[i].value);

			if (total > 0) {
				memcpy(joined + total, ", ", 2);
				total += 2;
			}
			memcpy(joined + total, req->headers[i].value, l + 1);
			total += l;
		}
	return joined;
}

static const char *vary_header(void *arg, const char *name, size_t len)
{
	return request_field(arg, name, len);
}

/* The request's values of the fields vary names (pool text), or NULL when they cannot match (Vary: *). */
static char *vary_values(struct httpd_request *req, const char *vary, size_t *len)
{
	size_t size = 4096;
	char *out = httpd_pool_alloc(req->pool, size);
	long n = out != NULL ? cache_vary_values(vary, vary_header, req, out, size) : -1;

	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return out;
}

static void set_status_note(struct cache_req *cr, const char *word)
{
	cr->log_status = word;
	if (cr->req == NULL)
		return;
	(void)httpd_request_note_set(cr->req, "upstream_cache_status", (void *)word);
}

static void add_cache_status(struct cache_req *cr, enum cache_status_kind kind, bool stored, bool ttl_known,
                             int64_t ttl, const char *detail)
{
	char text[160];

	if (cr->res == NULL)
		return;
	if (cache_status_format(text, sizeof(text), kind, stored, ttl_known, ttl, detail) > 0) {
		char *copy = httpd_pool_strdup(cr->pool, text);

		if (copy != NULL) {
			(void)httpd_response_remove_header(cr->res, "Cache-Status");
			(void)httpd_response_add_header(cr->res, "Cache-Status", copy);
		}
	}
}

/* Does the client's conditional GET or HEAD hold against the stored response, so it gets a 304? */
static bool not_modified(const struct httpd_request *req, const struct stored *s)
{
	const char *inm = httpd_request_header(req, "If-None-Match");
	const char *ims = httpd_request_header(req, "If-Modified-Since");
	time_t since, modified;

	if (s->meta.status != 200 || (req->method != HTTPD_METHOD_GET && req->method != HTTPD_METHOD_HEAD))
		return false;
	if (inm != NULL)
		return s->etag != NULL && cache_etag_listed(inm, s->etag);
	if (ims == NULL || httpd_http_date_parse(ims, &since) < 0)
		return false;
	modified = s->policy.has_last_modified ? s->policy.last_modified
	         : s->policy.has_date ? s->policy.date : (time_t)s->meta.response_time;
	return modified <= since;
}

/* The fields of a 304 answer (RFC 9110 §15.4.5). */
static bool field_of_304(const char *name)
{
	static const char *const keep[] = { "Cache-Control", "Content-Location", "ETag", "Expires", "Vary",
	                                    "Last-Modified" };

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (strcasecmp(name, keep[i]) == 0)
			return true;
	return false;
}

/*
 * A single byte range of a stored 200 (RFC 9110 §14.2), as nginx serves them
 * from its cache: 1 and [*first, *last] when Range asks for one that If-Range
 * allows, 0 to send the whole (several ranges, another unit, a failed
 * If-Range), -1 when it cannot be satisfied (416).
 */
static int stored_range(const struct httpd_request *req, const struct stored *s, uint64_t *first, uint64_t *last)
{
	const char *range = httpd_request_header(req, "Range"), *if_range = httpd_request_header(req, "If-Range");

	if (range == NULL || s->meta.status != 200 || req->method != HTTPD_METHOD_GET)
		return 0;
	if (if_range != NULL && (s->etag == NULL || strcmp(if_range, s->etag) != 0 || strncmp(if_range, "W/", 2) == 0) &&
	    (s->last_modified == NULL || strcmp(if_range, s->last_modified) != 0))
		return 0;
	return cache_byte_range(range, s->meta.body_len, first, last);
}

/* Answers from s (taking its fd): the stored response, or a 304 to a conditional request. */
static void serve_stored(struct cache_req *cr, struct stored *s, enum cache_status_kind kind, const char *detail,
                         const char *log_word)
{
	struct httpd_response *res = cr->res;
	time_t now = time(NULL);
	int64_t age = cache_current_age(&s->policy, now), ttl = cache_freshness_lifetime(&s->policy) - age;
	bool nm;

	if (res == NULL) {
		stored_close(s);   /* a background revalidation answers nobody */
		return;
	}
	nm = not_modified(cr->req, s);
	uint64_t first = 0, last = 0;
	int range = nm ? 0 : stored_range(cr->req, s, &first, &last);
	char age_text[24], *content_range = NULL;

	httpd_response_set_status(res, nm ? 304 : range > 0 ? 206 : range < 0 ? 416 : s->meta.status);
	if (range != 0)
		content_range = range > 0 ? httpd_pool_printf(cr->pool, "bytes %llu-%llu/%llu", (unsigned long long)first,
		                                              (unsigned long long)last, (unsigned long long)s->meta.body_len)
		                          : httpd_pool_printf(cr->pool, "bytes */%llu", (unsigned long long)s->meta.body_len);
	for (size_t i = 0; i < s->meta.field_count; i++) {
		const char *name = s->meta.fields[i].name;

		if (strcasecmp(name, "Age") == 0 || strcasecmp(name, "Date") == 0 || strcasecmp(name, "Cache-Status") == 0 ||
		    (nm && !field_of_304(name)))
			continue;
		(void)httpd_response_add_header(res, name, s->meta.fields[i].value);
	}
	snprintf(age_text, sizeof(age_text), "%lld", (long long)(age > 0 ? age : 0));
	(void)httpd_response_add_header(res, "Age", httpd_pool_strdup(cr->pool, age_text));
	httpd_response_set_date(res, s->policy.has_date ? s->policy.date : (time_t)s->meta.response_time);
	add_cache_status(cr, kind, false, true, ttl, detail);
	set_status_note(cr, log_word);
	if (content_range != NULL)
		(void)httpd_response_add_header(res, "Content-Range", content_range);
	if (nm || range < 0 || s->meta.body_len == 0) {
		stored_close(s);
		httpd_response_set_body_buffer(res, "", 0);
		return;
	}
	if (range == 0) {
		first = 0;
		last = s->meta.body_len - 1;
	}
	if (s->body != NULL) {
		/* The worker's copy may be replaced while this answer is on its way: the request's own bytes. */
		char *copy = httpd_pool_alloc(cr->pool, (size_t)(last - first + 1));

		if (copy != NULL) {
			memcpy(copy, s->body + first, (size_t)(last - first + 1));
			httpd_response_set_body_buffer(res, copy, (size_t)(last - first + 1));
		} else {
			httpd_response_set_status(res, 500);
			httpd_response_set_body_buffer(res, "", 0);
		}
		return;
	}
	if (range > 0) {
		httpd_response_set_body_file(res, s->fd, (off_t)(s->head_len + first), (off_t)(last - first + 1));
		s->fd = -1;
		return;
	}
	/* The pool closes an owned file body when the request ends. */
	httpd_response_set_body_file(res, s->fd, (off_t)s->head_len, (off_t)s->meta.body_len);
	s->fd = -1;
}

static void cache_req_cleanup(void *arg)
{
	struct cache_req *cr = arg;

	if (cr->timer != NULL)
		httpd_event_del(cr->timer);
	cr->timer = NULL;
	if (cr->fd >= 0)
		close(cr->fd);   /* unnamed: a store that did not finish leaves nothing */
	cr->fd = -1;
	stored_close(&cr->entry);
	if (cr->part_fd >= 0)
		close(cr->part_fd);
	cr->part_fd = -1;
	if (cr->claimed)
		cache_index_release(cr->zone->idx, cr->primary, getpid());
	cr->claimed = false;
}

static void request_policy(struct cache_req *cr)
{
	struct httpd_request *req = cr->req;
	const char *cc = request_field(req, "Cache-Control", 13);
	const char *pragma = httpd_request_header(req, "Pragma");

	cache_control_init(&cr->policy.cc);
	if (cc != NULL)
		cache_control_parse(&cr->policy.cc, cc);
	cr->policy.get_or_head = req->method == HTTPD_METHOD_GET || req->method == HTTPD_METHOD_HEAD;
	cr->policy.authorization = httpd_request_header(req, "Authorization") != NULL;
	cr->policy.pragma_no_cache = cc == NULL && pragma != NULL && strstr(pragma, "no-cache") != NULL;
}

/*
 * $scheme$host$request_uri with runs of '/' in the path made one, as
 * nginx's merge_slashes does: "//a" and "/a" are one resource to a client,
 * and a Location naming "/a" must find what "//a" stored.
 */
static char *default_key(struct httpd_pool *pool, const char *scheme, const char *host, const char *target,
                         size_t *len)
{
	size_t s_len = strlen(scheme), h_len = host != NULL ? strlen(host) : 0, t_len = strlen(target), n;
	char *key = httpd_pool_alloc(pool, s_len + h_len + t_len + 1);
	bool in_path = true;

	if (key == NULL)
		return NULL;
	memcpy(key, scheme, s_len);
	if (h_len > 0)
		memcpy(key + s_len, host, h_len);
	n = s_len + h_len;
	for (size_t i = 0; i < t_len; i++) {
		if (target[i] == '?')
			in_path = false;
		if (in_path && target[i] == '/' && n > s_len + h_len && key[n - 1] == '/')
			continue;
		key[n++] = target[i];
	}
	key[n] = '\0';
	*len = n;
	return key;
}

/* The key of this request: the configured expression, or $scheme$host$request_uri. */
static bool key_make(struct cache_req *cr)
{
	struct httpd_request *req = cr->req;

	if (cr->cc->key != NULL) {
		const char *k = httpd_expr_eval(cr->cc->key, req, &cr->key_len);

		cr->key = (char *)k;
	} else {
		cr->key = default_key(req->pool, req->scheme, req->host, req->target, &cr->key_len);
	}
	if (cr->key == NULL)
		return false;
	key_hash(cr->key, cr->key_len, NULL, 0, cr->primary);
	memcpy(cr->hash, cr->primary, 32);
	return true;
}

/*
 * The stored response for this request, if any: the primary entry when it
 * has no Vary or its Vary values match, else the variant of this request's
 * values.  *kind says what a miss was.
 */
static bool lookup(struct cache_req *cr, struct stored *s, enum cache_status_kind *kind)
{
	struct cache_zone *z = cr->zone;
	struct cache_index_info info;
	int64_t now = (int64_t)time(NULL);
	const char *values;
	size_t values_len = 0;

	*kind = CACHE_STATUS_URI_MISS;
	if (cache_index_lookup(z->idx, cr->primary, now, &info) != 1)
		return false;
	if (!stored_get(z, cr->pool, cr->primary, info.version, cr->key, cr->key_len, s)) {
		(void)cache_index_remove(z->idx, cr->primary);
		return false;
	}
	if (s->vary == NULL)
		return true;
	*kind = CACHE_STATUS_VARY_MISS;
	values = vary_values(cr->req, s->vary, &values_len);
	if (values == NULL) {
		stored_close(s);
		return false;
	}
	if (values_len == s->meta.vary_len && memcmp(values, s->meta.vary, values_len) == 0)
		return true;
	/* Another variant is the primary: this one, if stored, is under the key with its values. */
	stored_close(s);
	cr->primary_other_variant = true;
	key_hash(cr->key, cr->key_len, values, values_len, cr->hash);
	if (cache_index_lookup(z->idx, cr->hash, now, &info) != 1)
		return false;
	if (!stored_get(z, cr->pool, cr->hash, info.version, cr->key, cr->key_len, s)) {
		(void)cache_index_remove(z->idx, cr->hash);
		return false;
	}
	if (values_len == s->meta.vary_len && memcmp(values, s->meta.vary, values_len) == 0)
		return true;
	stored_close(s);
	return false;
}

/* The header lines of a conditional request for s (RFC 9111 §4.3.1), in pool; NULL out of memory. */
static char *validators(struct httpd_pool *pool, const struct stored *s)
{
	const char *etag = s->etag, *lm = s->last_modified;

	return httpd_pool_printf(pool, "%s%s%s%s%s%s", etag ? "If-None-Match: " : "", etag ? etag : "",
	                         etag ? "\r\n" : "", lm ? "If-Modified-Since: " : "", lm ? lm : "", lm ? "\r\n" : "");
}

/* Validators for a conditional request to the origin (RFC 9111 §4.3.1). */
static void revalidate_with(struct cache_req *cr, struct stored *s)
{
	if (s->from_memo) {
		/* The worker's copy may change before the origin answers: the request's own. */
		uint8_t hash[32];

		memcpy(hash, s->hash, 32);
		stored_close(s);
		if (!stored_open(cr->zone, cr->pool, hash, cr->key, cr->key_len, s)) {
			cr->mode = MODE_STORE;
			cr->kind = CACHE_STATUS_MISS;
			return;
		}
	}
	cr->entry = *s;
	s->fd = -1;
	cr->mode = MODE_REVALIDATE;
	cr->extra = validators(cr->pool, &cr->entry);
}

static bool bypassed(struct cache_req *cr)
{
	size_t len = 0;
	const char *v;

	if (cr->cc->bypass == NULL)
		return false;
	v = httpd_expr_eval(cr->cc->bypass, cr->req, &len);
	return v != NULL && len > 0 && !(len == 1 && v[0] == '0');
}

static void wait_poll(struct httpd_request *req, void *arg, unsigned events);

/* How often a waiter reading another's unfinished file looks for more. */
#define PART_POLL_MS 5

static void part_wake(struct httpd_request *req, void *arg, unsigned events)
{
	struct cache_req *cr = arg;

	(void)events;
	cr->timer = NULL;
	if (cr->part_waiting) {
		cr->part_waiting = false;
		httpd_response_stream_wake(req);
	}
}

static uint64_t le64_at(int fd, off_t at, bool *ok)
{
	uint8_t b[8];
	uint64_t v = 0;

	*ok = pread(fd, b, 8, at) == 8;
	for (int i = 0; *ok && i < 8; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

/*
 * The body of another request's fetch, as it reaches its file: what is
 * there, then AGAIN (a timer looks again) until the head says the file is
 * whole (its response time set, its length known).  A file unlinked
 * before it was whole (the fetch broke off), or no growth within
 * proxy_cache_lock_timeout, is a cut.
 */
static ssize_t part_read(void *ctx, char *out, size_t len)
{
	struct cache_req *cr = ctx;
	const off_t body_at = (off_t)cr->entry.head_len;

	for (int pass = 0; pass < 2; pass++) {
		ssize_t n = pread(cr->part_fd, out, len, body_at + (off_t)cr->part_sent);
		bool ok_time, ok_len;
		uint64_t response_time, body_len;
		struct stat st;

		if (n > 0) {
			cr->part_sent += (uint64_t)n;
			cr->part_idle_since = clock_ms();
			return n;
		}
		if (n < 0)
			return -1;
		response_time = le64_at(cr->part_fd, 48, &ok_time);
		body_len = le64_at(cr->part_fd, 56, &ok_len);
		if (!ok_time || !ok_len)
			return -1;
		if (response_time != 0) {
			if (cr->part_sent >= body_len)
				return 0;
			continue;   /* whole now: what came since the read above is there */
		}
		if (fstat(cr->part_fd, &st) < 0 || st.st_nlink == 0 ||
		    clock_ms() - cr->part_idle_since > 2 * (uint64_t)cr->cc->lock_timeout_ms) {
			CACHE_LOG(cr, "proxy cache \"%s\": the fetch this request waited for broke off", cr->zone->name);
			return -1;
		}
		break;
	}
	if (cr->timer == NULL)
		cr->timer = httpd_event_timer(cr->req, PART_POLL_MS, part_wake, cr);
	if (cr->timer == NULL)
		return -1;
	cr->part_waiting = true;
	return HTTPD_STREAM_AGAIN;
}

/*
 * proxy_cache_lock: another request is fetching this key.  Once its
 * response's head is in its file, this one is answered from that file as it
 * fills, rather than when it is whole.  false while there is no such file
 * yet (or it is another variant's).
 */
static bool partial_serve(struct cache_req *cr)
{
	struct stored *s = &cr->entry;
	size_t head = 0, count = 0, values_len = 0;
	uint64_t file_size = 0;
	uint8_t *buf;
	struct cache_field *fields;
	const char *values;
	char age_text[24];

	if (cr->req->method != HTTPD_METHOD_GET || httpd_request_header(cr->req, "Range") != NULL)
		return false;   /* a HEAD or a range waits for the whole entry */
	cr->part_fd = cache_store_read_partial(cr->zone->dirfd, cr->primary);
	if (cr->part_fd < 0)
		return false;
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (!stored_measure(cr->part_fd, &head, &count, &file_size) ||
	    (buf = httpd_pool_alloc(cr->pool, head + 1)) == NULL ||
	    (fields = httpd_pool_alloc(cr->pool, (count ? count : 1) * sizeof(*fields))) == NULL ||
	    !stored_parse(cr->part_fd, buf, head, fields, count, 0, cr->primary, cr->key, cr->key_len, s) ||
	    s->meta.response_time != 0)
		goto not_now;
	if (s->vary != NULL) {
		values = vary_values(cr->req, s->vary, &values_len);
		if (values == NULL || values_len != s->meta.vary_len || memcmp(values, s->meta.vary, values_len) != 0)
			goto not_now;
	}
	httpd_response_set_status(cr->res, s->meta.status);
	for (size_t i = 0; i < s->meta.field_count; i++) {
		const char *name = s->meta.fields[i].name;

		if (strcasecmp(name, "Age") == 0 || strcasecmp(name, "Date") == 0 || strcasecmp(name, "Cache-Status") == 0)
			continue;
		(void)httpd_response_add_header(cr->res, name, s->meta.fields[i].value);
	}
	/* Fresh from the origin a moment ago: the origin's own Age, if it gave one. */
	snprintf(age_text, sizeof(age_text), "%lld", (long long)(s->policy.age > 0 ? s->policy.age : 0));
	(void)httpd_response_add_header(cr->res, "Age", httpd_pool_strdup(cr->pool, age_text));
	if (s->policy.has_date)
		httpd_response_set_date(cr->res, s->policy.date);
	add_cache_status(cr, CACHE_STATUS_HIT, false, false, 0, "collapsed");
	set_status_note(cr, "HIT");
	cr->part_sent = 0;
	cr->part_idle_since = clock_ms();
	httpd_response_set_body_stream(cr->res, part_read, cr);
	return true;
not_now:
	close(cr->part_fd);
	cr->part_fd = -1;
	return false;
}

/*
 * A miss: fetch it ourselves, or (proxy_cache_lock) wait for the worker
 * already fetching it.  Returns CACHE_FETCH or CACHE_WAITING.
 */
static enum cache_start miss(struct cache_req *cr, enum cache_status_kind kind)
{
	cr->kind = kind;
	cr->mode = MODE_STORE;
	set_status_note(cr, "MISS");
	if (!cr->cc->lock || cr->no_store)
		return CACHE_FETCH;
	/* Held twice as long as a waiter waits, so waiters that time out do not fetch to store too. */
	switch (cache_index_claim(cr->zone->idx, cr->primary, getpid(), (int64_t)clock_ms(),
	                          2 * (int64_t)cr->cc->lock_timeout_ms)) {
	case 1:
		cr->claimed = true;
		return CACHE_FETCH;
	case 0:
		if (partial_serve(cr))
			return CACHE_ANSWERED;
		break;
	default:
		return CACHE_FETCH;   /* no claim could be made: fetching twice is better than not at all */
	}
	if (cr->wait_until == 0)
		cr->wait_until = clock_ms() + cr->cc->lock_timeout_ms;
	cr->timer = httpd_event_timer(cr->req, WAIT_POLL_MS, wait_poll, cr);
	return cr->timer != NULL ? CACHE_WAITING : CACHE_FETCH;
}

/*
 * RFC 5861 §3 and proxy_cache_background_update: the stale answer goes out
 * now, and one revalidation (the claim keeps it to one across workers)
 * runs on its own, with its own pool, after this request has ended.
 */
static void background_start(struct cache_req *cr, const struct stored *s)
{
	struct httpd_pool *pool;
	struct cache_req *bg;
	/* Long enough for any fetch to finish; a worker that dies holding it delays the next one this long. */
	int64_t hold = 60000;

	/* A HEAD cannot refresh a stored body. */
	if (cr->refresh == NULL || cr->req->method != HTTPD_METHOD_GET ||
	    cache_index_claim(cr->zone->idx, cr->primary, getpid(), (int64_t)clock_ms(), hold) != 1)
		return;
	pool = httpd_pool_new();
	bg = pool != NULL ? httpd_pool_alloc(pool, sizeof(*bg)) : NULL;
	if (bg == NULL)
		goto fail;
	memset(bg, 0, sizeof(*bg));
	bg->cc = cr->cc;
	bg->zone = cr->zone;
	bg->pool = pool;
	bg->mode = MODE_REVALIDATE;
	bg->kind = CACHE_STATUS_STALE;
	bg->fd = -1;
	bg->entry.fd = -1;
	bg->part_fd = -1;
	bg->extra = "";
	bg->request_time = (int64_t)time(NULL);
	bg->policy = cr->policy;
	bg->policy.cc.no_cache = false;
	bg->primary_other_variant = cr->primary_other_variant;
	memcpy(bg->primary, cr->primary, 32);
	memcpy(bg->hash, s->hash, 32);
	bg->key = httpd_pool_alloc(pool, cr->key_len + 1);
	if (bg->key == NULL || httpd_pool_cleanup(pool, cache_req_cleanup, bg) < 0) {
		httpd_pool_free(pool);
		goto fail;
	}
	bg->claimed = true;   /* from here the pool's cleanup releases it */
	memcpy(bg->key, cr->key, cr->key_len);
	bg->key[cr->key_len] = '\0';
	bg->key_len = cr->key_len;
	if (!stored_open(bg->zone, pool, bg->hash, bg->key, bg->key_len, &bg->entry)) {
		httpd_pool_free(pool);
		return;
	}
	bg->entry_vary = bg->entry.vary;
	bg->entry_vary_values = bg->entry.meta.vary;
	bg->extra = validators(pool, &bg->entry);
	if (bg->extra == NULL || cr->refresh(cr->fetch_arg, cr->req, bg) < 0)
		httpd_pool_free(pool);
	return;
fail:
	cache_index_release(cr->zone->idx, cr->primary, getpid());
}

struct httpd_pool *cache_background_pool(struct cache_req *bg)
{
	return bg->pool;
}

void cache_background_end(struct cache_req *bg)
{
	httpd_pool_free(bg->pool);
}

/* Decides for a request whose entry lookup is done: answer, revalidate, or fetch. */
static enum cache_start decide(struct cache_req *cr)
{
	struct stored s;
	enum cache_status_kind kind;

	if (!lookup(cr, &s, &kind)) {
		if (cr->policy.cc.only_if_cached) {
			httpd_response_set_status(cr->res, 504);
			add_cache_status(cr, kind, false, false, 0, "only-if-cached");
			return CACHE_ANSWERED;
		}
		return miss(cr, kind);
	}
	switch (cache_decide(&cr->policy, &s.policy, time(NULL))) {
	case CACHE_USE_FRESH:
		serve_stored(cr, &s, CACHE_STATUS_HIT, NULL, "HIT");
		return CACHE_ANSWERED;
	case CACHE_USE_STALE_OK:
		serve_stored(cr, &s, CACHE_STATUS_HIT, "stale", "STALE");
		return CACHE_ANSWERED;
	case CACHE_USE_STALE_REVALIDATE_BACKGROUND:
		background_start(cr, &s);
		serve_stored(cr, &s, CACHE_STATUS_HIT, "stale-while-revalidate", "UPDATING");
		return CACHE_ANSWERED;
	case CACHE_USE_REVALIDATE:
		break;
	}
	if (cr->policy.cc.only_if_cached) {
		stored_close(&s);
		httpd_response_set_status(cr->res, 504);
		add_cache_status(cr, CACHE_STATUS_STALE, false, false, 0, "only-if-cached");
		return CACHE_ANSWERED;
	}
	if (cr->cc->use_stale & CACHE_STALE_UPDATING) {
		/* One request revalidates; the others get the stale answer meanwhile. */
		int claim = cache_index_claim(cr->zone->idx, cr->primary, getpid(), (int64_t)clock_ms(),
		                              (int64_t)cr->cc->lock_timeout_ms);

		bool may_be_stale = !s.policy.cc.must_revalidate && !s.policy.cc.proxy_revalidate &&
		                    !s.policy.cc.no_cache && s.policy.cc.s_maxage == CACHE_UNSET && !cr->policy.cc.no_cache;

		if (claim == 0 && may_be_stale) {
			serve_stored(cr, &s, CACHE_STATUS_HIT, "updating", "UPDATING");
			return CACHE_ANSWERED;
		}
		if (claim == 1 && may_be_stale && cr->cc->background_update && cr->refresh != NULL) {
			/* proxy_cache_background_update: this client gets the stale answer too. */
			cache_index_release(cr->zone->idx, cr->primary, getpid());
			background_start(cr, &s);
			serve_stored(cr, &s, CACHE_STATUS_HIT, "updating", "UPDATING");
			return CACHE_ANSWERED;
		}
		cr->claimed = claim == 1;
	}
	revalidate_with(cr, &s);
	cr->kind = CACHE_STATUS_STALE;
	set_status_note(cr, "EXPIRED");
	return CACHE_FETCH;
}

static void wait_poll(struct httpd_request *req, void *arg, unsigned events)
{
	struct cache_req *cr = arg;
	enum cache_start next;

	(void)events;
	cr->timer = NULL;
	if (clock_ms() >= cr->wait_until) {
		/* proxy_cache_lock_timeout: to the origin, without storing (the fetcher will). */
		cr->no_store = true;
		cr->mode = MODE_PASS;
		set_status_note(cr, "MISS");
		cr->fetch(cr->fetch_arg, req, cr->res, cr);
		return;
	}
	/* Stored, or no longer claimed (the answer could not be kept): decide again, as if it had just arrived. */
	next = decide(cr);
	if (next == CACHE_ANSWERED)
		httpd_request_finish(req, HTTPD_OK);
	else if (next == CACHE_FETCH)
		cr->fetch(cr->fetch_arg, req, cr->res, cr);
	else if (next == CACHE_FAILED)
		httpd_request_finish(req, 500);
}

enum cache_start cache_request_start(const struct cache_conf *cc, struct httpd_request *req,
                                     struct httpd_response *res, cache_fetch_fn fetch, cache_refresh_fn refresh,
                                     void *arg, struct cache_req **out)
{
	struct cache_req *cr = httpd_pool_alloc(req->pool, sizeof(*cr));

	*out = cr;
	if (cr == NULL)
		return CACHE_FAILED;
	memset(cr, 0, sizeof(*cr));
	cr->cc = cc;
	cr->zone = cc->zone;
	cr->req = req;
	cr->res = res;
	cr->pool = req->pool;
	cr->fd = -1;
	cr->entry.fd = -1;
	cr->part_fd = -1;
	cr->fetch = fetch;
	cr->refresh = refresh;
	cr->fetch_arg = arg;
	cr->extra = "";
	cr->request_time = (int64_t)time(NULL);
	if (httpd_pool_cleanup(req->pool, cache_req_cleanup, cr) < 0)
		return CACHE_FAILED;
	if (cr->zone->idx == NULL) {
		cr->mode = MODE_PASS;
		return CACHE_FETCH;
	}
	request_policy(cr);
	if (!(req->method & (HTTPD_METHOD_GET | HTTPD_METHOD_HEAD | HTTPD_METHOD_OPTIONS))) {
		/* Unsafe: a success invalidates the target (RFC 9111 §4.4). */
		cr->mode = key_make(cr) ? MODE_INVALIDATE : MODE_PASS;
		cr->kind = CACHE_STATUS_BYPASS;
		set_status_note(cr, "BYPASS");
		return CACHE_FETCH;
	}
	if (!(req->method & cc->methods) || req->chunked || req->content_length > 0 ||
	    httpd_request_header(req, "Upgrade") != NULL) {
		cr->mode = MODE_PASS;
		cr->kind = CACHE_STATUS_BYPASS;
		set_status_note(cr, "BYPASS");
		return CACHE_FETCH;
	}
	if (!key_make(cr))
		return CACHE_FAILED;
	if (bypassed(cr)) {
		cr->mode = MODE_STORE;
		cr->kind = CACHE_STATUS_BYPASS;
		set_status_note(cr, "BYPASS");
		return CACHE_FETCH;
	}
	return decide(cr);
}

bool cache_request_drops(const struct cache_req *cr, const char *name)
{
	static const char *const validators[] = { "If-None-Match", "If-Modified-Since", "If-Match",
	                                          "If-Unmodified-Since", "If-Range", "Range" };

	/* The cache asks for the whole response for itself, and answers the client's conditions from it. */
	if (cr->mode != MODE_STORE && cr->mode != MODE_REVALIDATE)
		return false;
	for (size_t i = 0; i < sizeof(validators) / sizeof(validators[0]); i++)
		if (strcasecmp(name, validators[i]) == 0)
			return true;
	return false;
}

const char *cache_request_extra(const struct cache_req *cr)
{
	return cr->extra;
}

/* --- the origin's answer ------------------------------------------------------ */

/* The response's Connection value (the fields it names are hop-by-hop), or NULL. */
static const char *head_connection(const struct proxy_head *h)
{
	const char *connection = NULL;

	for (size_t i = 0; i < h->count; i++)
		if (strcasecmp(h->headers[i].name, "Connection") == 0)
			connection = h->headers[i].value;
	return connection;
}

/* The response's fields as the store keeps them: no framing, nothing hop-by-hop, no Server. */
static size_t fields_to_store(const struct proxy_head *h, struct cache_field *out, size_t max)
{
	const char *connection = head_connection(h);
	size_t n = 0;

	for (size_t i = 0; i < h->count && n < max; i++) {
		const char *name = h->headers[i].name;
		size_t len = strlen(name);

		if (cache_field_unstorable(name, len, connection) || strcasecmp(name, "Content-Length") == 0 ||
		    strcasecmp(name, "Server") == 0 || strcasecmp(name, "Cache-Status") == 0)
			continue;
		out[n++] = (struct cache_field){ name, h->headers[i].value, len, strlen(h->headers[i].value) };
	}
	return n;
}

static void invalidate_hash(struct cache_zone *z, const uint8_t hash[32])
{
	if (cache_index_remove(z->idx, hash) == 1)
		removal_queue(z, hash);
}

/* RFC 9111 §4.4: the target of a successful unsafe request, and its Location and Content-Location. */
static void invalidate(struct cache_req *cr, const struct proxy_head *h)
{
	struct httpd_request *req = cr->req;

	invalidate_hash(cr->zone, cr->primary);
	if (cr->cc->key != NULL)
		return;   /* another key: only the request's own maps onto it */
	for (size_t i = 0; i < h->count; i++) {
		char path[2048];
		char *key;
		size_t key_len = 0;
		uint8_t hash[32];

		if (strcasecmp(h->headers[i].name, "Location") != 0 && strcasecmp(h->headers[i].name, "Content-Location") != 0)
			continue;
		if (req->host == NULL || !cache_invalidation_target(h->headers[i].value, req->scheme, req->host, path,
		                                                    sizeof(path)))
			continue;
		key = default_key(req->pool, req->scheme, req->host, path, &key_len);
		if (key == NULL)
			continue;
		key_hash(key, key_len, NULL, 0, hash);
		invalidate_hash(cr->zone, hash);
	}
}

/* Writes the head of cr->meta at the start of the file: false when it cannot (the store is given up). */
static bool head_write(struct cache_req *cr)
{
	uint8_t *buf = httpd_pool_alloc(cr->pool, cr->meta_len);

	return buf != NULL && cache_meta_write(&cr->meta, buf, cr->meta_len) == cr->meta_len &&
	       pwrite(cr->fd, buf, cr->meta_len, 0) == (ssize_t)cr->meta_len;
}

static void store_abandon(struct cache_req *cr)
{
	if (cr->published)
		cache_store_unpublish(cr->zone->dirfd, cr->hash);   /* waiters see the file unlinked: a cut */
	cr->published = false;
	if (cr->fd >= 0)
		close(cr->fd);
	cr->fd = -1;
}

/* Starts keeping the answer: the file, with its head written (the body length is filled in at the end). */
static void store_begin(struct cache_req *cr, const struct proxy_head *h, const char *vary_values_text,
                        size_t vary_len)
{
	struct cache_field *fields = httpd_pool_alloc(cr->pool, CACHE_ENTRY_FIELDS_MAX * sizeof(*fields));

	if (fields == NULL || (h->content_length > 0 && (uint64_t)h->content_length > cr->zone->max_object))
		return;
	memset(&cr->meta, 0, sizeof(cr->meta));
	memcpy(cr->meta.hash, cr->hash, 32);
	cr->meta.request_time = cr->request_time;
	cr->response_time = (int64_t)time(NULL);
	cr->meta.response_time = 0;   /* still arriving: the head says so until the commit */
	cr->meta.status = h->status;
	cr->meta.key = cr->key;
	cr->meta.key_len = cr->key_len;
	cr->meta.vary = vary_values_text;
	cr->meta.vary_len = vary_len;
	cr->meta.fields = fields;
	cr->meta.field_count = fields_to_store(h, fields, CACHE_ENTRY_FIELDS_MAX);
	/* The head is written again at the end, when the upstream's buffer holds body bytes: copies. */
	for (size_t i = 0; i < cr->meta.field_count; i++) {
		char *name = httpd_pool_alloc(cr->pool, fields[i].name_len + fields[i].value_len + 2);

		if (name == NULL)
			return;
		memcpy(name, fields[i].name, fields[i].name_len + 1);
		memcpy(name + fields[i].name_len + 1, fields[i].value, fields[i].value_len + 1);
		fields[i].name = name;
		fields[i].value = name + fields[i].name_len + 1;
	}
	cr->meta_len = cache_meta_size(&cr->meta);
	if (cr->meta_len == 0)
		return;
	cr->fd = cache_store_begin(cr->zone->dirfd);
	if (cr->fd < 0) {
		CACHE_LOG(cr, "proxy cache \"%s\": cannot make a file in %s: %s",
		                  cr->zone->name, cr->zone->path, strerror(errno));
		return;
	}
	cr->written = 0;
	if (!head_write(cr)) {
		store_abandon(cr);
		return;
	}
	/* proxy_cache_lock: requests waiting for this fetch read the file as it fills. */
	if (cr->claimed && cache_store_publish(cr->zone->dirfd, cr->fd, cr->hash) == 0)
		cr->published = true;
}

/* A version no other commit of any worker has made: the time in nanoseconds, the pid, a count. */
static uint64_t next_version(void)
{
	static uint32_t count;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 44) ^ ++count;
}

/* The file is whole: its head says so, it gets its name, and the index learns of it. */
static bool store_commit(struct cache_req *cr)
{
	struct cache_index_info info = { .size = cr->meta_len + cr->written, .last_use = (int64_t)time(NULL),
	                                 .version = next_version() };
	uint8_t evicted[EVICT_MAX][32];
	size_t n = 0;

	cr->meta.body_len = cr->written;
	if (cr->response_time != 0)
		cr->meta.response_time = cr->response_time;
	if (!head_write(cr) || cache_store_commit(cr->zone->dirfd, cr->fd, cr->hash) < 0) {
		CACHE_LOG(cr, "proxy cache \"%s\": cannot store a response in %s: %s",
		                  cr->zone->name, cr->zone->path, strerror(errno));
		store_abandon(cr);
		return false;
	}
	/* Named: waiters holding the file read on to its end; the unfinished name goes. */
	if (cr->published)
		cache_store_unpublish(cr->zone->dirfd, cr->hash);
	cr->published = false;
	store_abandon(cr);
	memcpy(info.hash, cr->hash, 32);
	if (cache_index_insert(cr->zone->idx, &info, evicted, EVICT_MAX, &n) < 0) {
		removal_queue(cr->zone, cr->hash);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		removal_queue(cr->zone, evicted[i]);
	return true;
}

/* RFC 9111 §4.3.4: a 304 freshens the stored response: its fields updated, the same body, a new file. */
static bool freshen(struct cache_req *cr, const struct proxy_head *h)
{
	struct stored *s = &cr->entry;
	struct cache_field *fields = httpd_pool_alloc(cr->pool, CACHE_ENTRY_FIELDS_MAX * sizeof(*fields));
	struct cache_field fresh[PROXY_HEADERS_MAX];
	size_t n = 0, fresh_n = fields_to_store(h, fresh, PROXY_HEADERS_MAX);
	const char *connection = head_connection(h);
	loff_t from;
	uint64_t left;

	if (fields == NULL)
		return false;
	for (size_t i = 0; i < s->meta.field_count; i++) {
		bool replaced = false;

		for (size_t k = 0; k < fresh_n && !replaced; k++)
			replaced = strcasecmp(fresh[k].name, s->meta.fields[i].name) == 0 &&
			           cache_field_updates(fresh[k].name, fresh[k].name_len, connection);
		if (!replaced && n < CACHE_ENTRY_FIELDS_MAX)
			fields[n++] = s->meta.fields[i];
	}
	for (size_t k = 0; k < fresh_n && n < CACHE_ENTRY_FIELDS_MAX; k++)
		if (cache_field_updates(fresh[k].name, fresh[k].name_len, connection))
			fields[n++] = fresh[k];
	cr->meta = s->meta;
	cr->meta.fields = fields;
	cr->meta.field_count = n;
	cr->meta.request_time = cr->request_time;
	cr->meta.response_time = (int64_t)time(NULL);
	memcpy(cr->hash, s->hash, 32);
	cr->meta_len = cache_meta_size(&cr->meta);
	if (cr->meta_len == 0 || (cr->fd = cache_store_begin(cr->zone->dirfd)) < 0 || !head_write(cr))
		goto fail;
	from = (loff_t)s->head_len;
	left = s->meta.body_len;
	while (left > 0) {
		loff_t to = (loff_t)(cr->meta_len + cr->written);
		ssize_t c = copy_file_range(s->fd, &from, cr->fd, &to, left < COPY_MAX ? (size_t)left : COPY_MAX, 0);

		if (c <= 0)
			goto fail;
		cr->written += (uint64_t)c;
		left -= (uint64_t)c;
	}
	if (!store_commit(cr))
		return false;
	/* Serve what was just stored: its fields are the new ones, its body the old file's. */
	s->meta = cr->meta;
	s->meta.body_len = cr->written;
	policy_from_fields(&s->policy, s->meta.status, s->meta.fields, s->meta.field_count, s->meta.request_time,
	                   s->meta.response_time);
	s->etag = field_value(s->meta.fields, s->meta.field_count, "ETag");
	s->last_modified = field_value(s->meta.fields, s->meta.field_count, "Last-Modified");
	return true;
fail:
	store_abandon(cr);
	return false;
}

static bool stale_for_status(const struct cache_req *cr, int status)
{
	unsigned bit = status == 500 ? CACHE_STALE_500 : status == 502 ? CACHE_STALE_502
	             : status == 503 ? CACHE_STALE_503 : status == 504 ? CACHE_STALE_504 : 0;

	return bit != 0 && (cr->cc->use_stale & bit) != 0;
}

bool cache_upstream_head(struct cache_req *cr, const struct proxy_head *h)
{
	const char *vary = NULL, *date = NULL;
	struct cache_response policy;
	struct cache_field fields[PROXY_HEADERS_MAX];
	size_t n = fields_to_store(h, fields, PROXY_HEADERS_MAX);
	char *values = NULL;
	size_t values_len = 0;
	time_t t;
	bool storable;

	for (size_t i = 0; i < h->count; i++) {
		if (strcasecmp(h->headers[i].name, "Vary") == 0)
			vary = h->headers[i].value;
		else if (strcasecmp(h->headers[i].name, "Date") == 0)
			date = h->headers[i].value;
	}
	if (cr->mode == MODE_INVALIDATE && cr->req != NULL && h->status >= 200 && h->status < 400)
		invalidate(cr, h);
	if (cr->mode == MODE_REVALIDATE) {
		if (h->status == 304 && freshen(cr, h)) {
			serve_stored(cr, &cr->entry, CACHE_STATUS_STALE, NULL, "REVALIDATED");
			return true;
		}
		if (h->status >= 500 && (stale_for_status(cr, h->status) ||
		                         cache_stale_on_error(&cr->policy, &cr->entry.policy, time(NULL), false))) {
			serve_stored(cr, &cr->entry, CACHE_STATUS_HIT, "stale-if-error", "STALE");
			return true;
		}
		if (h->status == 304) {
			/* The 304 could not be merged: the client still gets an answer, the stored one. */
			serve_stored(cr, &cr->entry, CACHE_STATUS_STALE, "not-updated", "REVALIDATED");
			return true;
		}
		stored_close(&cr->entry);
	}
	if (cr->res != NULL && date != NULL && httpd_http_date_parse(date, &t) == 0)
		httpd_response_set_date(cr->res, t);   /* RFC 9110 §6.6.1: the origin's, kept */
	policy_from_fields(&policy, h->status, fields, n, cr->request_time, (int64_t)time(NULL));
	/* fields_to_store points into the head; policy_from_fields needs only names and values. */
	storable = (cr->mode == MODE_STORE || cr->mode == MODE_REVALIDATE) && !cr->no_store &&
	           cache_storable(&cr->policy, &policy) && (cr->req == NULL || cr->req->method == HTTPD_METHOD_GET);
	if (storable && vary != NULL && cr->req == NULL) {
		/* A background revalidation stores the variant it revalidated, if Vary still says the same. */
		storable = cr->entry_vary != NULL && strcmp(vary, cr->entry_vary) == 0;
		values = (char *)cr->entry_vary_values;
		values_len = values != NULL ? strlen(values) : 0;
	} else if (storable && vary != NULL) {
		values = vary_values(cr->req, vary, &values_len);
		storable = values != NULL;
	}
	if (storable) {
		/* With Vary: the primary unless it holds another variant, then the variant's own key. */
		memcpy(cr->hash, cr->primary, 32);
		if (vary != NULL && cr->primary_other_variant)
			key_hash(cr->key, cr->key_len, values, values_len, cr->hash);
		store_begin(cr, h, values != NULL ? values : "", values_len);
	}
	if (cr->fd < 0 && cr->claimed && cr->req != NULL) {
		/* Nothing will be stored: the requests waiting for it go to the origin now, not at the body's end. */
		cache_index_release(cr->zone->idx, cr->primary, getpid());
		cr->claimed = false;
	}
	if (cr->mode != MODE_PASS && cr->mode != MODE_INVALIDATE) {
		int64_t ttl = cache_freshness_lifetime(&policy) - cache_current_age(&policy, time(NULL));

		add_cache_status(cr, cr->kind == CACHE_STATUS_BYPASS ? CACHE_STATUS_BYPASS : cr->kind, cr->fd >= 0,
		                 cr->fd >= 0, ttl, NULL);
	} else {
		add_cache_status(cr, cr->kind == CACHE_STATUS_STALE ? CACHE_STATUS_MISS : CACHE_STATUS_BYPASS, false,
		                 false, 0, NULL);
	}
	return false;
}

void cache_body(struct cache_req *cr, const char *data, size_t len)
{
	off_t at;

	if (cr == NULL || cr->fd < 0 || len == 0)
		return;
	if (cr->written + len > cr->zone->max_object) {
		store_abandon(cr);   /* bigger than size/8: streamed on, never kept */
		return;
	}
	at = (off_t)(cr->meta_len + cr->written);
	while (len > 0) {
		ssize_t w = pwrite(cr->fd, data, len, at);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			CACHE_LOG(cr, "proxy cache \"%s\": writing to %s: %s", cr->zone->name,
			                  cr->zone->path, w < 0 ? strerror(errno) : "no space");
			store_abandon(cr);
			return;
		}
		cr->written += (uint64_t)w;
		at += w;
		data += w;
		len -= (size_t)w;
	}
}

void cache_body_end(struct cache_req *cr, bool whole)
{
	if (cr == NULL)
		return;
	if (cr->fd >= 0) {
		if (whole)
			(void)store_commit(cr);
		else
			store_abandon(cr);
	}
	if (cr->claimed)
		cache_index_release(cr->zone->idx, cr->primary, getpid());
	cr->claimed = false;
}

bool cache_upstream_failed(struct cache_req *cr, int status)
{
	unsigned bit = status == 504 ? CACHE_STALE_TIMEOUT : CACHE_STALE_ERROR;

	if (cr == NULL)
		return false;
	if (cr->claimed)
		cache_index_release(cr->zone->idx, cr->primary, getpid());
	cr->claimed = false;
	if (cr->mode != MODE_REVALIDATE || cr->entry.fd < 0)
		return false;
	if ((cr->cc->use_stale & bit) == 0 && !cache_stale_on_error(&cr->policy, &cr->entry.policy, time(NULL), false))
		return false;
	serve_stored(cr, &cr->entry, CACHE_STATUS_HIT, "stale-if-error", "STALE");
	return true;
}
