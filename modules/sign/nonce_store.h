/*
 * The replay guard shared by every worker: a fixed table in shared memory,
 * made by the master before the workers fork, of (keyed hash of key id and
 * nonce, expiry).  One process-shared robust mutex guards it, so a worker
 * killed while holding it does not stop the others.  A live entry is never
 * evicted: when the probe window of a nonce is full the claim fails and
 * the client is told to retry.
 */
#ifndef HTTPD_SIGN_NONCE_STORE_H
#define HTTPD_SIGN_NONCE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct nonce_store;

enum nonce_claim { NONCE_CLAIMED, NONCE_REPLAY, NONCE_FULL, NONCE_ERROR };

/* NULL with errno on failure. */
struct nonce_store *nonce_store_create(size_t entries);
void   nonce_store_destroy(struct nonce_store *s);
size_t nonce_store_entries(const struct nonce_store *s);
/* When the store was made: signatures created before it may have been used before a restart. */
time_t nonce_store_started(const struct nonce_store *s);
/* Claims (key id, nonce) until expires; a live claim of the same pair is a replay. */
enum nonce_claim nonce_store_claim(struct nonce_store *s, const char *key_id, const char *nonce,
                                   time_t expires, time_t now);

#endif
