/*
 * Session ticket keys shared by every worker: the master writes them into
 * an anonymous shared mapping made before the first fork, so they outlive
 * reloads and log reopening, and a ticket one worker issued resumes on any
 * other.  The master is the only writer; workers copy a key out under a
 * sequence counter, so a rotation never hands them half a key.
 *
 * Four slots: the current key encrypts, the older ones still decrypt (and a
 * ticket they open is renewed under the current key), so a key lives four
 * rotation periods at most.
 *
 * The master never reads the shared page: its own private copy is the
 * truth, and the page only publishes it, so a worker that writes there (a
 * compromised one) cannot steer the root master.  Workers map the page
 * read-only once forked, and bound every index they read from it.
 */
#include "tls.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "config.h"
#include "log.h"

#define TICKET_SLOTS     4
#define TICKET_ROTATE_S  3600

struct ticket_key {
	unsigned char name[16];
	unsigned char hmac[32];
	unsigned char aes[32];
	int64_t       created;    /* 0: empty */
	bool          from_file;
};

struct ticket_table {
	atomic_uint       seq;       /* odd while the master writes */
	unsigned          current;
	struct ticket_key keys[TICKET_SLOTS];
};

static struct ticket_table *table;   /* shared: written by the master, read by workers */
static struct ticket_table master;   /* the master's own copy, the only one it reads */

int tls_tickets_init(void)
{
	void *p;

	if (table != NULL)
		return 0;
	p = mmap(NULL, sizeof(*table), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	table = p;
	return 0;
}

void tls_tickets_worker_seal(void)
{
	/* A worker only reads the keys: a stray write faults here instead of reaching other workers. */
	if (table != NULL && mprotect(table, sizeof(*table), PROT_READ) < 0)
		httpd_log(HTTPD_LOG_WARN, "cannot make the ticket key table read-only: %s", strerror(errno));
	OPENSSL_cleanse(&master, sizeof(master));
}

/* Master only: key becomes the current one, in the slot after the current one. */
static void key_install(const struct ticket_key *key)
{
	unsigned next = master.keys[master.current].created == 0 ? master.current
	              : (master.current + 1) % TICKET_SLOTS;

	master.keys[next] = *key;
	master.current = next;
	atomic_fetch_add_explicit(&table->seq, 1, memory_order_acq_rel);
	atomic_thread_fence(memory_order_release);
	table->keys[next] = *key;
	table->current = next;
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add_explicit(&table->seq, 1, memory_order_release);
}

static void key_random(time_t now)
{
	struct ticket_key key = { .created = (int64_t)now };

	if (RAND_bytes(key.name, sizeof(key.name)) != 1 || RAND_bytes(key.hmac, sizeof(key.hmac)) != 1 ||
	    RAND_bytes(key.aes, sizeof(key.aes)) != 1) {
		httpd_log(HTTPD_LOG_ERR, "cannot make a session ticket key: the random generator failed");
		return;
	}
	key_install(&key);
	OPENSSL_cleanse(&key, sizeof(key));
}

void tls_tickets_apply(const struct httpd_config *config)
{
	const struct ticket_key *cur;
	struct ticket_key key = { .created = (int64_t)time(NULL), .from_file = true };

	if (table == NULL || (!config->tls && !config->tls_ticket_key_set))
		return;   /* a reload that adds TLS makes the first key */
	cur = &master.keys[master.current];
	if (!config->tls_ticket_key_set) {
		/* Back to random keys when a key file is dropped; otherwise the running key stays. */
		if (cur->created == 0 || cur->from_file)
			key_random(time(NULL));
		return;
	}
	/* nginx's layout: name, HMAC secret, AES key. */
	memcpy(key.name, config->tls_ticket_key, 16);
	memcpy(key.hmac, config->tls_ticket_key + 16, 32);
	memcpy(key.aes, config->tls_ticket_key + 48, 32);
	if (!(cur->from_file && memcmp(cur->name, key.name, 16) == 0 && memcmp(cur->aes, key.aes, 32) == 0))
		key_install(&key);
	OPENSSL_cleanse(&key, sizeof(key));
}

void tls_tickets_rotate(time_t now)
{
	const struct ticket_key *cur;

	if (table == NULL)
		return;
	cur = &master.keys[master.current];
	/* A key from tls_ticket_key_file is shared with other hosts: only the operator replaces it. */
	if (cur->created != 0 && !cur->from_file && now - cur->created >= TICKET_ROTATE_S)
		key_random(now);
}

time_t tls_tickets_next_rotation(void)
{
	const struct ticket_key *cur;

	if (table == NULL)
		return 0;
	cur = &master.keys[master.current];
	return cur->created == 0 || cur->from_file ? 0 : (time_t)cur->created + TICKET_ROTATE_S;
}

/* A consistent copy of the key named name (or the current one, name NULL); false if none. */
static bool key_lookup(const unsigned char *name, struct ticket_key *out, bool *current)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		unsigned seq = atomic_load_explicit(&table->seq, memory_order_acquire);
		unsigned newest = table->current % TICKET_SLOTS;
		bool found = false;

		if (seq & 1)
			continue;
		for (unsigned i = 0; i < TICKET_SLOTS && !found; i++) {
			unsigned slot = (newest + TICKET_SLOTS - i) % TICKET_SLOTS;
			const struct ticket_key *k = &table->keys[slot];

			if (k->created == 0 || (name != NULL && memcmp(k->name, name, 16) != 0) || (name == NULL && i > 0))
				continue;
			*out = *k;
			*current = i == 0;
			found = true;
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&table->seq, memory_order_relaxed) == seq)
			return found;
	}
	return false;
}

static int ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct ticket_key key;
	bool current;
	OSSL_PARAM params[3];
	int rc = -1;

	/* No key: no ticket (encrypting), or a full handshake and a fresh ticket (an unknown name). */
	if (table == NULL || !key_lookup(enc ? NULL : key_name, &key, &current))
		return 0;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof(key.hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (enc) {
		memcpy(key_name, key.name, 16);
		if (RAND_bytes(iv, 16) == 1 && EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv) == 1 &&
		    EVP_MAC_CTX_set_params(hctx, params) == 1)
			rc = 1;
	} else if (EVP_MAC_CTX_set_params(hctx, params) == 1 &&
	           EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv) == 1) {
		/*
		 * 2 asks for a fresh ticket: always on TLS 1.3, where a client uses a
		 * ticket once (without one it would do a full handshake next time),
		 * and on TLS 1.2 when an older key made this one.
		 */
		rc = current && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
	}
	OPENSSL_cleanse(&key, sizeof(key));
	return rc;
}

void tls_tickets_attach(void *ctx)
{
	SSL_CTX_set_tlsext_ticket_key_evp_cb((SSL_CTX *)ctx, ticket_key_cb);
}
