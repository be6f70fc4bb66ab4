/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-packet protection (issue: secure sessions), one direction of one
 * connection: AES-128-GCM or ChaCha20-Poly1305 through OpenSSL 3.
 *
 * A protected packet is the 24-byte warp header (authenticated, not
 * encrypted: it carries the connection id and packet number the receiver
 * needs first), then the frames encrypted in place, then a 16-byte tag in
 * the tag reserve every packet already has. The nonce is the direction's
 * 12-byte IV with the packet number XORed into its last 8 bytes (as QUIC
 * does), so a packet number is never used twice under one key: packet
 * numbers only grow, and the key changes before they could wrap.
 *
 * Keys come from a 32-byte traffic secret (the TLS exporter, per
 * direction): key and IV by HKDF-Expand with the labels "warp key" and
 * "warp iv"; a key update replaces the secret with HKDF-Expand(secret,
 * "warp ku") and derives both again. Replay: the engine's receive window
 * (rx.c), checked after a packet is authenticated, drops duplicated and
 * old packet numbers, so a forged packet cannot move it.
 *
 * AES-128-GCM of small payloads runs in gcm.c when the CPU has AES-NI and
 * PCLMULQDQ (OpenSSL 3.0's EVP dispatch costs several times the cipher on
 * small packets); the rest goes through one OpenSSL cipher context per
 * direction, re-keyed with a new nonce per packet. Sealing and opening
 * allocate nothing; init and key updates allocate inside OpenSSL (HKDF).
 * Engine thread only.
 */
#ifndef WARP_CRYPTO_AEAD_H
#define WARP_CRYPTO_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/gcm.h"

#define WARP_AEAD_AES128GCM 1
#define WARP_AEAD_CHACHA20POLY1305 2
#define WARP_AEAD_TAG_LEN 16u
#define WARP_AEAD_IV_LEN 12u
#define WARP_AEAD_SECRET_LEN 32u

struct warp__aead {
	struct warp__gcm gcm; /* AES-128-GCM for small payloads (gcm.h) */
	size_t fast_max;      /* payload bytes up to which gcm is used; 0 = never */
	void *ctx;	      /* EVP_CIPHER_CTX */
	int alg;
	int encrypt;
	uint8_t secret[WARP_AEAD_SECRET_LEN];
	uint8_t key[32];
	uint8_t iv[WARP_AEAD_IV_LEN];
	uint32_t generation; /* key updates so far */
};

/* Set up one direction from its traffic secret. encrypt: 1 = seal, 0 = open.
 * 0, or WARP_EINVAL (unknown alg) / WARP_ENOMEM / WARP_EPROTO (OpenSSL failed)
 * with a detail string. */
int warp__aead_init(struct warp__aead *a, int alg, const uint8_t secret[WARP_AEAD_SECRET_LEN],
		    int encrypt);
void warp__aead_fini(struct warp__aead *a);

/* AES-128-GCM payloads up to this many bytes (an Ethernet MTU's packet)
 * go through gcm.c when the CPU allows; longer ones through OpenSSL, whose
 * stitched AES-NI/AVX code wins once its dispatch cost is spread over enough
 * bytes: aead-bench put the crossing near 1,800 bytes on the dev VM (gcm.c
 * 3.6x faster at 64 B, even at 1,432 B, 1.2x slower at 4 KiB). */
#define WARP_AEAD_FAST_MAX 1600u

/* Tests and aead-bench: contexts set up after this call send payloads up to
 * max bytes through gcm.c; 0 = OpenSSL only (to compare the two). */
void warp__aead_set_fast_max(size_t max);

/* Move to the next key (key update): secret = HKDF-Expand(secret, "warp ku").
 * 0 or WARP_EPROTO. */
int warp__aead_update(struct warp__aead *a);

/* Seal pkt in place: pkt[0, ad_len) is authenticated, pkt[ad_len, ad_len +
 * len) is encrypted, and the tag is written after it (the caller leaves
 * WARP_AEAD_TAG_LEN bytes of room). Returns the protected length
 * (ad_len + len + WARP_AEAD_TAG_LEN), or -1 if OpenSSL failed. */
long warp__aead_seal(struct warp__aead *a, uint64_t pn, uint8_t *pkt, size_t ad_len, size_t len);

/* Open pkt in place (len bytes: header, ciphertext, tag). Returns the
 * plaintext length (len - ad_len - WARP_AEAD_TAG_LEN), or -1 when the
 * packet is too short or does not authenticate (a tampered header,
 * ciphertext or tag, the wrong packet number or key). The plaintext is
 * only to be used when the return is >= 0. */
long warp__aead_open(struct warp__aead *a, uint64_t pn, uint8_t *pkt, size_t ad_len, size_t len);

/* HKDF-Expand (SHA-256) of secret with label into out: exposed for tests
 * and for the handshake. 0 or WARP_EPROTO. */
int warp__hkdf_expand(const uint8_t *secret, size_t secret_len, const char *label, uint8_t *out,
		      size_t out_len);

#endif
