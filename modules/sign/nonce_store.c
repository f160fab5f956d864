#include "nonce_store.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "sign_base.h"

/* Slots looked at per nonce: the table may fill to about 90% before a claim fails. */
#define PROBE_WINDOW 64

struct nonce_entry {
	uint8_t key[16];
	int64_t expires;   /* written last: a half-written entry reads as free */
};

struct nonce_store {
	pthread_mutex_t    lock;
	size_t             entries;
	size_t             map_size;
	time_t             started;
	uint8_t            secret[32];   /* keys the slot hash, so clients cannot aim at one slot */
	struct nonce_entry slot[];
};

struct nonce_store *nonce_store_create(size_t entries)
{
	pthread_mutexattr_t attr;
	size_t size = sizeof(struct nonce_store) + entries * sizeof(struct nonce_entry);
	struct nonce_store *s;

	if (entries == 0 || entries > ((size_t)1 << 28)) {
		errno = EINVAL;
		return NULL;
	}
	s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return NULL;
	if (getrandom(s->secret, sizeof(s->secret), 0) != (ssize_t)sizeof(s->secret) ||
	    pthread_mutexattr_init(&attr) != 0) {
		munmap(s, size);
		errno = EIO;
		return NULL;
	}
	(void)pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	(void)pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (pthread_mutex_init(&s->lock, &attr) != 0) {
		pthread_mutexattr_destroy(&attr);
		munmap(s, size);
		errno = EIO;
		return NULL;
	}
	pthread_mutexattr_destroy(&attr);
	s->entries = entries;
	s->map_size = size;
	s->started = time(NULL);
	return s;
}

void nonce_store_destroy(struct nonce_store *s)
{
	if (s == NULL)
		return;
	sign_wipe(s->secret, sizeof(s->secret));
	munmap(s, s->map_size);
}

size_t nonce_store_entries(const struct nonce_store *s)
{
	return s->entries;
}

time_t nonce_store_started(const struct nonce_store *s)
{
	return s->started;
}

static int store_lock(struct nonce_store *s)
{
	int rc = pthread_mutex_lock(&s->lock);

	/* Its holder died: every entry is whole or free (expiry is written last), so carry on. */
	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(&s->lock);
	return rc;
}

enum nonce_claim nonce_store_claim(struct nonce_store *s, const char *key_id, const char *nonce,
                                   time_t expires, time_t now)
{
	struct sign_buf id = { 0 };
	uint8_t mac[32];
	uint64_t start;
	size_t window = s->entries < PROBE_WINDOW ? s->entries : PROBE_WINDOW;
	struct nonce_entry *free_slot = NULL;
	enum nonce_claim result = NONCE_FULL;

	sign_buf_puts(&id, key_id);
	sign_buf_put(&id, "", 1);   /* the NUL keeps ("ab", "c") and ("a", "bc") apart */
	sign_buf_puts(&id, nonce);
	if (id.failed || !sign_hmac_sha256(s->secret, sizeof(s->secret), id.p, id.len, mac)) {
		sign_buf_free(&id);
		return NONCE_ERROR;
	}
	sign_buf_free(&id);
	memcpy(&start, mac + 16, sizeof(start));
	if (store_lock(s) != 0)
		return NONCE_ERROR;
	for (size_t i = 0; i < window; i++) {
		struct nonce_entry *e = &s->slot[(start + i) % s->entries];

		if (e->expires > now) {
			if (memcmp(e->key, mac, sizeof(e->key)) == 0) {
				result = NONCE_REPLAY;
				goto out;
			}
		} else if (free_slot == NULL) {
			free_slot = e;
		}
	}
	if (free_slot != NULL) {
		free_slot->expires = 0;
		memcpy(free_slot->key, mac, sizeof(free_slot->key));
		__atomic_store_n(&free_slot->expires, (int64_t)expires, __ATOMIC_RELEASE);
		result = NONCE_CLAIMED;
	}
out:
	pthread_mutex_unlock(&s->lock);
	return result;
}
