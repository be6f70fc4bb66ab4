/* SPDX-License-Identifier: Apache-2.0 */
/* Per-packet AEAD (see aead.h). */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "common.h"
#include "crypto/aead.h"
#include "proto/wire.h"
#include "warp/error.h"

static int ossl_err(const char *what)
{
	char buf[160];
	unsigned long e = ERR_get_error();
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return warp__err(WARP_EPROTO, "crypto: %s: %s", what, e ? buf : "failed");
}

int warp__hkdf_expand(const uint8_t *secret, size_t secret_len, const char *label, uint8_t *out,
		      size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	EVP_KDF_free(kdf);
	if (!kc)
		return ossl_err("HKDF");
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label,
						  strlen(label)),
		OSSL_PARAM_construct_end(),
	};
	int ok = EVP_KDF_derive(kc, out, out_len, params) == 1;
	EVP_KDF_CTX_free(kc);
	return ok ? 0 : ossl_err("HKDF-Expand");
}

static const EVP_CIPHER *cipher_of(int alg)
{
	switch (alg) {
	case WARP_AEAD_AES128GCM:
		return EVP_aes_128_gcm();
	case WARP_AEAD_CHACHA20POLY1305:
		return EVP_chacha20_poly1305();
	}
	return NULL;
}

static size_t fast_max = WARP_AEAD_FAST_MAX;

void warp__aead_set_fast_max(size_t max)
{
	fast_max = max;
}

/* Derive key and IV from the secret and key the context. */
static int rekey(struct warp__aead *a)
{
	const EVP_CIPHER *c = cipher_of(a->alg);
	size_t klen = (size_t)EVP_CIPHER_get_key_length(c);
	if (warp__hkdf_expand(a->secret, sizeof(a->secret), "warp key", a->key, klen) ||
	    warp__hkdf_expand(a->secret, sizeof(a->secret), "warp iv", a->iv, sizeof(a->iv)))
		return WARP_EPROTO;
	if (a->fast_max)
		warp__gcm_init(&a->gcm, a->key);
	EVP_CIPHER_CTX *ctx = a->ctx;
	if (EVP_CipherInit_ex(ctx, c, NULL, NULL, NULL, a->encrypt) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, WARP_AEAD_IV_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, a->key, a->iv, a->encrypt) != 1)
		return ossl_err("cipher init");
	return 0;
}

int warp__aead_init(struct warp__aead *a, int alg, const uint8_t secret[WARP_AEAD_SECRET_LEN],
		    int encrypt)
{
	memset(a, 0, sizeof(*a));
	if (!cipher_of(alg))
		return warp__err(WARP_EINVAL, "crypto: unknown AEAD %d", alg);
	a->alg = alg;
	a->encrypt = encrypt ? 1 : 0;
	memcpy(a->secret, secret, sizeof(a->secret));
	if (alg == WARP_AEAD_AES128GCM && warp__gcm_supported())
		a->fast_max = fast_max;
	a->ctx = EVP_CIPHER_CTX_new();
	if (!a->ctx)
		return warp__err(WARP_ENOMEM, "crypto: out of memory");
	int rc = rekey(a);
	if (rc)
		warp__aead_fini(a);
	return rc;
}

void warp__aead_fini(struct warp__aead *a)
{
	EVP_CIPHER_CTX_free(a->ctx);
	OPENSSL_cleanse(a, sizeof(*a));
}

int warp__aead_update(struct warp__aead *a)
{
	uint8_t next[WARP_AEAD_SECRET_LEN];
	if (warp__hkdf_expand(a->secret, sizeof(a->secret), "warp ku", next, sizeof(next)))
		return WARP_EPROTO;
	memcpy(a->secret, next, sizeof(next));
	OPENSSL_cleanse(next, sizeof(next));
	a->generation++;
	return rekey(a);
}

/* The tag through the provider's parameters directly (the ctrl route
 * translates to these first). */
static inline int get_tag(EVP_CIPHER_CTX *ctx, uint8_t *tag)
{
	OSSL_PARAM p[2] = { OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag,
							      WARP_AEAD_TAG_LEN),
			    OSSL_PARAM_construct_end() };
	return EVP_CIPHER_CTX_get_params(ctx, p) == 1;
}

static inline int set_tag(EVP_CIPHER_CTX *ctx, uint8_t *tag)
{
	OSSL_PARAM p[2] = { OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag,
							      WARP_AEAD_TAG_LEN),
			    OSSL_PARAM_construct_end() };
	return EVP_CIPHER_CTX_set_params(ctx, p) == 1;
}

static inline void nonce_of(const struct warp__aead *a, uint64_t pn, uint8_t n[WARP_AEAD_IV_LEN])
{
	memcpy(n, a->iv, 4);
	warp__put64(n + 4, warp__get64(a->iv + 4) ^ pn);
}

long warp__aead_seal(struct warp__aead *a, uint64_t pn, uint8_t *pkt, size_t ad_len, size_t len)
{
	EVP_CIPHER_CTX *ctx = a->ctx;
	uint8_t n[WARP_AEAD_IV_LEN];
	int out, fin;
	nonce_of(a, pn, n);
	if (warp__likely(len <= a->fast_max && a->fast_max)) {
		warp__gcm_seal(&a->gcm, n, pkt, ad_len, pkt + ad_len, len, pkt + ad_len + len);
		return (long)(ad_len + len + WARP_AEAD_TAG_LEN);
	}
	if (warp__unlikely(EVP_CipherInit_ex(ctx, NULL, NULL, NULL, n, 1) != 1 ||
			   EVP_CipherUpdate(ctx, NULL, &out, pkt, (int)ad_len) != 1 ||
			   EVP_CipherUpdate(ctx, pkt + ad_len, &out, pkt + ad_len, (int)len) != 1 ||
			   EVP_CipherFinal_ex(ctx, pkt + ad_len + out, &fin) != 1 ||
			   !get_tag(ctx, pkt + ad_len + len))) {
		ERR_clear_error();
		return -1;
	}
	return (long)(ad_len + len + WARP_AEAD_TAG_LEN);
}

long warp__aead_open(struct warp__aead *a, uint64_t pn, uint8_t *pkt, size_t ad_len, size_t len)
{
	if (warp__unlikely(len < ad_len + WARP_AEAD_TAG_LEN))
		return -1;
	EVP_CIPHER_CTX *ctx = a->ctx;
	size_t clen = len - ad_len - WARP_AEAD_TAG_LEN;
	uint8_t n[WARP_AEAD_IV_LEN];
	int out, fin;
	nonce_of(a, pn, n);
	if (warp__likely(clen <= a->fast_max && a->fast_max))
		return warp__gcm_open(&a->gcm, n, pkt, ad_len, pkt + ad_len, clen, pkt + ad_len + clen)
			       ? (long)clen
			       : -1;
	if (warp__unlikely(EVP_CipherInit_ex(ctx, NULL, NULL, NULL, n, 0) != 1 ||
			   EVP_CipherUpdate(ctx, NULL, &out, pkt, (int)ad_len) != 1 ||
			   EVP_CipherUpdate(ctx, pkt + ad_len, &out, pkt + ad_len, (int)clen) != 1 ||
			   !set_tag(ctx, pkt + ad_len + clen) ||
			   EVP_CipherFinal_ex(ctx, pkt + ad_len + out, &fin) != 1)) {
		ERR_clear_error();
		return -1;
	}
	return (long)clen;
}
