/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AES-128-GCM for small packets with AES-NI and PCLMULQDQ (NIST SP 800-38D,
 * 96-bit IV, 128-bit tag), used by aead.c when the CPU has both.
 *
 * Why not OpenSSL's EVP interface for every packet: OpenSSL 3.0 spends most
 * of a 64-byte seal in its provider dispatch (parameter lookups by name,
 * the IV length asked again on every init): about 180 ns per packet here,
 * against about 30 ns for the cipher itself. warp seals and opens every
 * packet, four times per ping-pong round trip, so that dispatch was most of
 * the cost of encryption (docs/security.md, docs/benchmarking.md). OpenSSL
 * still does the handshake, HKDF and ChaCha20-Poly1305, and AES-128-GCM on
 * CPUs without these instructions; the unit tests check this code against
 * OpenSSL's on random keys, nonces, lengths and tampering, and against the
 * GCM specification's test vectors.
 *
 * Constant time: AES rounds are the AESENC instruction (no tables), GHASH
 * is carry-less multiplication, and the tag is compared with
 * CRYPTO_memcmp. Engine thread only; no allocation.
 */
#ifndef WARP_CRYPTO_GCM_H
#define WARP_CRYPTO_GCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct warp__gcm {
	_Alignas(16) uint8_t rk[11][16]; /* AES-128 round keys */
	_Alignas(16) uint8_t h[8][16];	 /* H, H^2, ..., H^8, byte-reversed */
};

/* True when this CPU has AES-NI, PCLMULQDQ and SSE4.1. */
bool warp__gcm_supported(void);

/* Expand a 16-byte key. Only when warp__gcm_supported(). */
void warp__gcm_init(struct warp__gcm *g, const uint8_t key[16]);

/* Seal in place: ad[0, ad_len) authenticated, p[0, len) encrypted, the
 * 16-byte tag written to tag. */
void warp__gcm_seal(const struct warp__gcm *g, const uint8_t iv[12], const uint8_t *ad,
		    size_t ad_len, uint8_t *p, size_t len, uint8_t tag[16]);

/* Open in place: checks tag over ad and the ciphertext p[0, len) first and
 * decrypts only when it matches. true when authentic. */
bool warp__gcm_open(const struct warp__gcm *g, const uint8_t iv[12], const uint8_t *ad,
		    size_t ad_len, uint8_t *p, size_t len, const uint8_t tag[16]);

/* Wipe the key schedule. */
void warp__gcm_fini(struct warp__gcm *g);

#endif
