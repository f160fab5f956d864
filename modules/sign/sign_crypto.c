/* The cryptography of signed requests, all from libcrypto: HMAC-SHA256, SHA-256/512, constant-time compare. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sign_base.h"

struct sign_hash {
	EVP_MD_CTX *ctx;
};

struct sign_hash *sign_hash_new(enum sign_digest alg)
{
	struct sign_hash *h = OPENSSL_zalloc(sizeof(*h));

	if (h == NULL)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL ||
	    EVP_DigestInit_ex(h->ctx, alg == SIGN_SHA512 ? EVP_sha512() : EVP_sha256(), NULL) != 1) {
		sign_hash_free(h);
		return NULL;
	}
	return h;
}

void sign_hash_update(struct sign_hash *h, const void *data, size_t len)
{
	(void)EVP_DigestUpdate(h->ctx, data, len);
}

size_t sign_hash_final(struct sign_hash *h, uint8_t out[64])
{
	unsigned n = 0;

	if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1)
		n = 0;
	sign_hash_free(h);
	return n;
}

void sign_hash_free(struct sign_hash *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	OPENSSL_free(h);
}

bool sign_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t out[32])
{
	unsigned n = 32;

	return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) != NULL && n == 32;
}

bool sign_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void sign_wipe(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}
