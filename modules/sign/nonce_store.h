/*
 * The replay guard shared by every worker: a fixed table of (keyed hash of
 * key id and nonce, expiry) in a file-backed shared mapping, made by the
 * master before the workers fork.  The file outlives the server: a new
 * master (a restart, a binary upgrade) reopens it when its size and format
 * match, and copies its live entries into a new file when the number of
 * entries changed, so a nonce used before a restart is still refused after
 * it.  One process-shared robust mutex, in the file, guards it, so a worker
 * killed while holding it does not stop the others.  A live entry is never
 * evicted: when the probe window of a nonce is full the claim fails and the
 * client is told to retry.
 *
 * Workers can write the mapping, so nothing the master decides rests on it:
 * the size and the hash secret live in the process's own memory, and a file
 * read back at start is checked against its own length before it is used.
 */
#ifndef HTTPD_SIGN_NONCE_STORE_H
#define HTTPD_SIGN_NONCE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct nonce_store;

enum nonce_claim { NONCE_CLAIMED, NONCE_REPLAY, NONCE_FULL, NONCE_ERROR };

/*
 * Opens (or makes) the store of entries slots in the file path, mode 0600.
 * from, if not NULL, is the store in use until now: when it is the same
 * file with another size, its live entries are copied into the new one.
 * NULL with a message in err on failure.
 */
struct nonce_store *nonce_store_open(const char *path, size_t entries, const struct nonce_store *from,
                                     char *err, size_t errlen);
/* An anonymous store that no restart keeps (tests, and no path). */
struct nonce_store *nonce_store_create(size_t entries);
void   nonce_store_destroy(struct nonce_store *s);
size_t nonce_store_entries(const struct nonce_store *s);
const char *nonce_store_path(const struct nonce_store *s);
/*
 * When the store was made from nothing: signatures created before it may
 * have been used before a restart (a store reopened keeps its first time).
 */
time_t nonce_store_started(const struct nonce_store *s);
/* Whether this start made the store from nothing (no usable file was there). */
bool   nonce_store_fresh(const struct nonce_store *s);
/* Claims (key id, nonce) until expires; a live claim of the same pair is a replay. */
enum nonce_claim nonce_store_claim(struct nonce_store *s, const char *key_id, const char *nonce,
                                   time_t expires, time_t now);

#endif
