/*
 * SipHash-1-3 (Aumasson and Bernstein): a keyed hash for tables whose keys
 * a client chooses, so that it cannot aim many keys at one bucket.
 */
#ifndef HTTPD_SIPHASH_H
#define HTTPD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash_key {
	uint64_t k0, k1;
};

/* A fresh random key (getrandom); falls back to the clock and pid only if that fails. */
void     siphash_key_random(struct siphash_key *key);
uint64_t siphash13(const struct siphash_key *key, const void *data, size_t len);

#endif
