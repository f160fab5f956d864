#include "siphash.h"

#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline void sip_round(uint64_t v[4])
{
	v[0] += v[1]; v[1] = ROTL(v[1], 13); v[1] ^= v[0]; v[0] = ROTL(v[0], 32);
	v[2] += v[3]; v[3] = ROTL(v[3], 16); v[3] ^= v[2];
	v[0] += v[3]; v[3] = ROTL(v[3], 21); v[3] ^= v[0];
	v[2] += v[1]; v[1] = ROTL(v[1], 17); v[1] ^= v[2]; v[2] = ROTL(v[2], 32);
}

void siphash_key_random(struct siphash_key *key)
{
	if (getrandom(key, sizeof(*key), GRND_NONBLOCK) != (ssize_t)sizeof(*key)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		key->k0 = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid();
		key->k1 = (uint64_t)ts.tv_sec * 0xc2b2ae3d27d4eb4fu ^ (uint64_t)(uintptr_t)key;
	}
}

uint64_t siphash13(const struct siphash_key *key, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t v[4] = {
		key->k0 ^ 0x736f6d6570736575u, key->k1 ^ 0x646f72616e646f6du,
		key->k0 ^ 0x6c7967656e657261u, key->k1 ^ 0x7465646279746573u,
	};
	uint64_t last = (uint64_t)len << 56, m;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);   /* little-endian hosts only matter for speed, not correctness */
		v[3] ^= m;
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t j = 0; i + j < len; j++)
		last |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= last;
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}
