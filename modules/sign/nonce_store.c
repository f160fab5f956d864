#include "nonce_store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sign_base.h"

/* Slots looked at per nonce: the table may fill to about 90% before a claim fails. */
#define PROBE_WINDOW 64
#define STORE_MAGIC  "HTTPDNS1"
#define STORE_VERSION 1u

struct nonce_entry {
	uint8_t key[16];   /* the first 8 bytes also choose the first slot */
	int64_t expires;   /* written last: a half-written entry reads as free */
};

/* The file's head; the slots follow it. */
struct store_head {
	char            magic[8];
	uint32_t        version;
	uint32_t        head_size;
	uint64_t        entries;
	int64_t         created;       /* when a store was last made from nothing */
	char            boot_id[40];   /* the boot whose processes may hold lock */
	uint8_t         secret[32];    /* keys the slot hash, so clients cannot aim at one slot */
	pthread_mutex_t lock;
} __attribute__((aligned(64)));

/* The process's own view: sizes and secret are never read back from the mapping. */
struct nonce_store {
	struct store_head  *head;
	struct nonce_entry *slot;
	size_t              entries;
	size_t              map_size;
	time_t              created;
	bool                fresh;
	uint8_t             secret[32];
	char               *path;      /* NULL: anonymous */
};

static size_t store_size(size_t entries)
{
	return sizeof(struct store_head) + entries * sizeof(struct nonce_entry);
}

static void boot_id_read(char out[40])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	memset(out, 0, 40);
	if (fd >= 0) {
		n = read(fd, out, 39);
		close(fd);
	}
	if (n <= 0)
		memcpy(out, "unknown", 8);
}

static int lock_init(struct store_head *h)
{
	pthread_mutexattr_t attr;
	int rc;

	if (pthread_mutexattr_init(&attr) != 0)
		return -1;
	(void)pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	(void)pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	rc = pthread_mutex_init(&h->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return rc == 0 ? 0 : -1;
}

static struct nonce_store *store_wrap(void *map, size_t entries)
{
	struct nonce_store *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->head = map;
	s->slot = (struct nonce_entry *)((char *)map + sizeof(struct store_head));
	s->entries = entries;
	s->map_size = store_size(entries);
	return s;
}

/* A new head: a fresh secret and start unless they are carried over from an older store. */
static int head_init(struct nonce_store *s, const struct nonce_store *carry)
{
	struct store_head *h = s->head;

	memcpy(h->magic, STORE_MAGIC, sizeof(h->magic));
	h->version = STORE_VERSION;
	h->head_size = sizeof(*h);
	h->entries = s->entries;
	boot_id_read(h->boot_id);
	if (carry != NULL) {
		memcpy(s->secret, carry->secret, sizeof(s->secret));
		s->created = carry->created;
	} else {
		if (getrandom(s->secret, sizeof(s->secret), 0) != (ssize_t)sizeof(s->secret))
			return -1;
		s->created = time(NULL);
		s->fresh = true;
	}
	memcpy(h->secret, s->secret, sizeof(s->secret));
	h->created = (int64_t)s->created;
	return lock_init(h);
}

struct nonce_store *nonce_store_create(size_t entries)
{
	size_t size = store_size(entries);
	struct nonce_store *s;
	void *map;

	if (entries == 0 || entries > ((size_t)1 << 28)) {
		errno = EINVAL;
		return NULL;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	s = store_wrap(map, entries);
	if (s == NULL || head_init(s, NULL) < 0) {
		munmap(map, size);
		free(s);
		errno = EIO;
		return NULL;
	}
	return s;
}

void nonce_store_destroy(struct nonce_store *s)
{
	if (s == NULL)
		return;
	sign_wipe(s->secret, sizeof(s->secret));
	munmap(s->head, s->map_size);
	free(s->path);
	free(s);
}

size_t nonce_store_entries(const struct nonce_store *s)
{
	return s->entries;
}

const char *nonce_store_path(const struct nonce_store *s)
{
	return s->path;
}

time_t nonce_store_started(const struct nonce_store *s)
{
	return s->created;
}

bool nonce_store_fresh(const struct nonce_store *s)
{
	return s->fresh;
}

static int store_lock(struct nonce_store *s)
{
	int rc = pthread_mutex_lock(&s->head->lock);

	/* Its holder died: every entry is whole or free (expiry is written last), so carry on. */
	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(&s->head->lock);
	return rc;
}

/* Under the lock: the slot for key (live or a replay of it), or where it may go; NULL when full. */
static struct nonce_entry *slot_find(struct nonce_store *s, const uint8_t key[16], time_t now, bool *replay)
{
	size_t window = s->entries < PROBE_WINDOW ? s->entries : PROBE_WINDOW;
	struct nonce_entry *free_slot = NULL;
	uint64_t start;

	memcpy(&start, key, sizeof(start));
	*replay = false;
	for (size_t i = 0; i < window; i++) {
		struct nonce_entry *e = &s->slot[(start + i) % s->entries];

		if (__atomic_load_n(&e->expires, __ATOMIC_ACQUIRE) > now) {
			if (memcmp(e->key, key, sizeof(e->key)) == 0) {
				*replay = true;
				return e;
			}
		} else if (free_slot == NULL) {
			free_slot = e;
		}
	}
	return free_slot;
}

static void slot_fill(struct nonce_entry *e, const uint8_t key[16], int64_t expires)
{
	e->expires = 0;
	memcpy(e->key, key, sizeof(e->key));
	__atomic_store_n(&e->expires, expires, __ATOMIC_RELEASE);
}

enum nonce_claim nonce_store_claim(struct nonce_store *s, const char *key_id, const char *nonce,
                                   time_t expires, time_t now)
{
	struct sign_buf id = { 0 };
	uint8_t mac[32];
	struct nonce_entry *e;
	bool replay;
	enum nonce_claim result = NONCE_FULL;

	sign_buf_puts(&id, key_id);
	sign_buf_put(&id, "", 1);   /* the NUL keeps ("ab", "c") and ("a", "bc") apart */
	sign_buf_puts(&id, nonce);
	if (id.failed || !sign_hmac_sha256(s->secret, sizeof(s->secret), id.p, id.len, mac)) {
		sign_buf_free(&id);
		return NONCE_ERROR;
	}
	sign_buf_free(&id);
	if (store_lock(s) != 0)
		return NONCE_ERROR;
	e = slot_find(s, mac, now, &replay);
	if (replay) {
		result = NONCE_REPLAY;
	} else if (e != NULL) {
		slot_fill(e, mac, (int64_t)expires);
		result = NONCE_CLAIMED;
	}
	pthread_mutex_unlock(&s->head->lock);
	return result;
}

/* --- the file ---------------------------------------------------------- */

/* Is the mapping of a file of size bytes a store head we wrote, holding entries slots? */
static bool head_valid(const struct store_head *h, size_t size, size_t *entries)
{
	time_t now = time(NULL);

	if (size < sizeof(*h) || memcmp(h->magic, STORE_MAGIC, sizeof(h->magic)) != 0 ||
	    h->version != STORE_VERSION || h->head_size != sizeof(*h) || h->entries == 0 ||
	    h->entries > ((uint64_t)1 << 28) || store_size((size_t)h->entries) != size ||
	    h->created <= 0 || h->created > (int64_t)now + 60)
		return false;
	*entries = (size_t)h->entries;
	return true;
}

/* The store already in path, if it is whole; its size in *entries. */
static struct nonce_store *file_reopen(const char *path, int fd, char *err, size_t errlen)
{
	struct stat st;
	struct nonce_store *s;
	char boot[40];
	size_t entries;
	void *map;

	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "sign_nonce_store: %s: %s", path, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "sign_nonce_store: %s must be a regular file of this user with mode 0600",
		         path);
		return NULL;
	}
	if ((size_t)st.st_size < sizeof(struct store_head))
		return NULL;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return NULL;
	if (!head_valid(map, (size_t)st.st_size, &entries) || (s = store_wrap(map, entries)) == NULL) {
		munmap(map, (size_t)st.st_size);
		return NULL;
	}
	memcpy(s->secret, s->head->secret, sizeof(s->secret));
	s->created = (time_t)s->head->created;
	/* No process of an earlier boot can hold the lock: make it new rather than wait on a ghost. */
	boot_id_read(boot);
	if (memcmp(boot, s->head->boot_id, sizeof(boot)) != 0) {
		memcpy(s->head->boot_id, boot, sizeof(boot));
		if (lock_init(s->head) < 0) {
			nonce_store_destroy(s);
			return NULL;
		}
	}
	return s;
}

/* Live entries of from, into s (both private sizes; from's slots are only data). */
static void entries_copy(struct nonce_store *s, const struct nonce_store *from)
{
	time_t now = time(NULL);

	for (size_t i = 0; i < from->entries; i++) {
		struct nonce_entry e = from->slot[i];
		struct nonce_entry *to;
		bool replay;

		if (e.expires <= now)
			continue;
		to = slot_find(s, e.key, now, &replay);
		if (to != NULL && !replay)
			slot_fill(to, e.key, e.expires);
	}
}

/* A new file beside path, filled, then renamed over it: a reader sees the old store or the new one. */
static struct nonce_store *file_create(const char *path, size_t entries, const struct nonce_store *carry,
                                       char *err, size_t errlen)
{
	size_t size = store_size(entries), len = strlen(path);
	char *tmp = malloc(len + 8);
	struct nonce_store *s = NULL;
	void *map = MAP_FAILED;
	int fd = -1;

	if (tmp == NULL) {
		snprintf(err, errlen, "sign_nonce_store: out of memory");
		return NULL;
	}
	memcpy(tmp, path, len);
	memcpy(tmp + len, ".XXXXXX", 8);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0 || fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0) {
		snprintf(err, errlen, "sign_nonce_store: cannot make %s: %s", fd < 0 ? path : tmp, strerror(errno));
		goto fail;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED || (s = store_wrap(map, entries)) == NULL) {
		snprintf(err, errlen, "sign_nonce_store: cannot map %zu entries of %s: %s", entries, tmp,
		         strerror(errno));
		goto fail;
	}
	map = MAP_FAILED;
	if (head_init(s, carry) < 0) {
		snprintf(err, errlen, "sign_nonce_store: cannot set up %s", tmp);
		goto fail;
	}
	if (carry != NULL)
		entries_copy(s, carry);
	if (rename(tmp, path) < 0) {
		snprintf(err, errlen, "sign_nonce_store: cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
	close(fd);
	free(tmp);
	return s;
fail:
	if (map != MAP_FAILED)
		munmap(map, size);
	nonce_store_destroy(s);
	if (fd >= 0) {
		unlink(tmp);
		close(fd);
	}
	free(tmp);
	return NULL;
}

struct nonce_store *nonce_store_open(const char *path, size_t entries, const struct nonce_store *from,
                                     char *err, size_t errlen)
{
	struct nonce_store *old = NULL, *s;
	int fd;

	if (entries == 0 || entries > ((size_t)1 << 28)) {
		snprintf(err, errlen, "sign_nonce_store: entries must be 16 to 268435456");
		return NULL;
	}
	err[0] = '\0';
	if (from != NULL && from->path != NULL && strcmp(from->path, path) != 0)
		from = NULL;   /* another file: its nonces were another instance's */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT) {
		snprintf(err, errlen, "sign_nonce_store: %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fd >= 0 && from == NULL) {
		old = file_reopen(path, fd, err, errlen);
		if (old == NULL && err[0] != '\0') {
			close(fd);
			return NULL;
		}
	}
	if (fd >= 0)
		close(fd);
	if (old != NULL && old->entries == entries) {
		s = old;   /* the same store, every nonce in it */
	} else {
		s = file_create(path, entries, from != NULL ? from : old, err, errlen);
		nonce_store_destroy(old);
		if (s == NULL)
			return NULL;
	}
	s->path = strdup(path);
	if (s->path == NULL) {
		snprintf(err, errlen, "sign_nonce_store: out of memory");
		nonce_store_destroy(s);
		return NULL;
	}
	return s;
}
