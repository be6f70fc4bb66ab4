/* SPDX-License-Identifier: Apache-2.0 */
/* AES-128-GCM with AES-NI and PCLMULQDQ (see gcm.h). */
#include <string.h>

#include <immintrin.h>
#include <openssl/crypto.h>

#include "crypto/gcm.h"

#define GCM_TARGET __attribute__((target("aes,pclmul,sse4.1,ssse3")))
#define GCM_INLINE GCM_TARGET static inline __attribute__((always_inline))

bool warp__gcm_supported(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") &&
	       __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
}

/* ---- AES-128 ---------------------------------------------------------- */

GCM_TARGET static inline __m128i key_step(__m128i k, __m128i assist)
{
	assist = _mm_shuffle_epi32(assist, 0xff);
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	return _mm_xor_si128(k, assist);
}

GCM_TARGET static inline __m128i rk(const struct warp__gcm *g, int i)
{
	return _mm_load_si128((const __m128i *)g->rk[i]);
}

GCM_TARGET static inline __m128i aes(const struct warp__gcm *g, __m128i b)
{
	b = _mm_xor_si128(b, rk(g, 0));
	for (int i = 1; i < 10; i++)
		b = _mm_aesenc_si128(b, rk(g, i));
	return _mm_aesenclast_si128(b, rk(g, 10));
}

/* ---- GHASH ------------------------------------------------------------
 * Field elements are kept byte-reversed; the product of two is the 256-bit
 * carry-less product shifted left by one bit and reduced modulo
 * x^128 + x^7 + x^2 + x + 1 (Gueron and Kounavis, "Intel Carry-Less
 * Multiplication Instruction and its Usage for Computing the GCM Mode").
 * Products are summed before one reduction, four blocks at a time. */

GCM_TARGET static inline __m128i bswap(__m128i x)
{
	return _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

GCM_TARGET static inline void clmul(__m128i a, __m128i b, __m128i *lo, __m128i *hi)
{
	__m128i l = _mm_clmulepi64_si128(a, b, 0x00);
	__m128i h = _mm_clmulepi64_si128(a, b, 0x11);
	__m128i m = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x10),
				  _mm_clmulepi64_si128(a, b, 0x01));
	*lo = _mm_xor_si128(*lo, _mm_xor_si128(l, _mm_slli_si128(m, 8)));
	*hi = _mm_xor_si128(*hi, _mm_xor_si128(h, _mm_srli_si128(m, 8)));
}

GCM_TARGET static inline __m128i reduce(__m128i lo, __m128i hi)
{
	/* hi:lo <<= 1 */
	__m128i c_lo = _mm_srli_epi32(lo, 31), c_hi = _mm_srli_epi32(hi, 31);
	lo = _mm_slli_epi32(lo, 1);
	hi = _mm_slli_epi32(hi, 1);
	hi = _mm_or_si128(hi, _mm_srli_si128(c_lo, 12));
	hi = _mm_or_si128(hi, _mm_slli_si128(c_hi, 4));
	lo = _mm_or_si128(lo, _mm_slli_si128(c_lo, 4));
	/* first phase */
	__m128i a = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi32(lo, 31), _mm_slli_epi32(lo, 30)),
				  _mm_slli_epi32(lo, 25));
	__m128i carry = _mm_srli_si128(a, 4);
	lo = _mm_xor_si128(lo, _mm_slli_si128(a, 12));
	/* second phase */
	__m128i b = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi32(lo, 1), _mm_srli_epi32(lo, 2)),
				  _mm_xor_si128(_mm_srli_epi32(lo, 7), carry));
	return _mm_xor_si128(hi, _mm_xor_si128(lo, b));
}

GCM_TARGET static inline __m128i gfmul(__m128i a, __m128i b)
{
	__m128i lo = _mm_setzero_si128(), hi = _mm_setzero_si128();
	clmul(a, b, &lo, &hi);
	return reduce(lo, hi);
}

GCM_TARGET static inline __m128i hpow(const struct warp__gcm *g, int i)
{
	return _mm_load_si128((const __m128i *)g->h[i - 1]);
}

/* GHASH state: blocks wait (byte-reversed) until eight are there or the
 * input ends, then go in with one reduction: x = (x + b0) H^n + b1 H^(n-1)
 * + ... + b(n-1) H. A small packet (header, payload, lengths) is one or
 * two reductions. */
struct ghash {
	__m128i x;
	int n;
	__m128i b[8];
};

GCM_INLINE void gh_flush(const struct warp__gcm *g, struct ghash *s)
{
	__m128i lo = _mm_setzero_si128(), hi = _mm_setzero_si128();
	s->b[0] = _mm_xor_si128(s->b[0], s->x);
	for (int i = 0; i < s->n; i++)
		clmul(s->b[i], hpow(g, s->n - i), &lo, &hi);
	s->x = reduce(lo, hi);
	s->n = 0;
}

GCM_INLINE void gh_block(const struct warp__gcm *g, struct ghash *s, __m128i b)
{
	s->b[s->n++] = bswap(b);
	if (s->n == 8)
		gh_flush(g, s);
}

/* d[0, len) zero-padded to whole blocks. */
GCM_INLINE void gh_data(const struct warp__gcm *g, struct ghash *s, const uint8_t *d,
				      size_t len)
{
	for (; len >= 16; d += 16, len -= 16)
		gh_block(g, s, _mm_loadu_si128((const __m128i *)d));
	if (len) {
		_Alignas(16) uint8_t last[16] = { 0 };
		memcpy(last, d, len);
		gh_block(g, s, _mm_load_si128((const __m128i *)last));
	}
}

/* ---- GCM -------------------------------------------------------------- */

GCM_TARGET void warp__gcm_init(struct warp__gcm *g, const uint8_t key[16])
{
	__m128i k = _mm_loadu_si128((const __m128i *)key);
	_mm_store_si128((__m128i *)g->rk[0], k);
#define STEP(i, rcon)                                             \
	k = key_step(k, _mm_aeskeygenassist_si128(k, rcon)); \
	_mm_store_si128((__m128i *)g->rk[i], k)
	STEP(1, 0x01);
	STEP(2, 0x02);
	STEP(3, 0x04);
	STEP(4, 0x08);
	STEP(5, 0x10);
	STEP(6, 0x20);
	STEP(7, 0x40);
	STEP(8, 0x80);
	STEP(9, 0x1b);
	STEP(10, 0x36);
#undef STEP
	__m128i h = bswap(aes(g, _mm_setzero_si128()));
	__m128i p = h;
	for (int i = 0; i < 8; i++) {
		_mm_store_si128((__m128i *)g->h[i], p);
		p = gfmul(p, h);
	}
}

/* The counter block with 32-bit big-endian counter c after the IV. */
GCM_TARGET static inline __m128i ctr_block(__m128i j, uint32_t c)
{
	return _mm_insert_epi32(j, (int)__builtin_bswap32(c), 3);
}

/* Four keystream blocks, counters c..c+3, and with_e: E(K, J0) in a fifth
 * lane beside them (so a small packet's tag mask costs no extra latency). */
GCM_INLINE void ks4_lanes(const struct warp__gcm *g, __m128i j, uint32_t c, __m128i ks[4],
			  bool with_e, __m128i *e)
{
	__m128i k = rk(g, 0);
	__m128i b0 = _mm_xor_si128(ctr_block(j, c), k);
	__m128i b1 = _mm_xor_si128(ctr_block(j, c + 1), k);
	__m128i b2 = _mm_xor_si128(ctr_block(j, c + 2), k);
	__m128i b3 = _mm_xor_si128(ctr_block(j, c + 3), k);
	__m128i b4 = with_e ? _mm_xor_si128(ctr_block(j, 1), k) : k;
#pragma GCC unroll 9
	for (int r = 1; r < 10; r++) {
		k = rk(g, r);
		b0 = _mm_aesenc_si128(b0, k);
		b1 = _mm_aesenc_si128(b1, k);
		b2 = _mm_aesenc_si128(b2, k);
		b3 = _mm_aesenc_si128(b3, k);
		if (with_e)
			b4 = _mm_aesenc_si128(b4, k);
	}
	k = rk(g, 10);
	ks[0] = _mm_aesenclast_si128(b0, k);
	ks[1] = _mm_aesenclast_si128(b1, k);
	ks[2] = _mm_aesenclast_si128(b2, k);
	ks[3] = _mm_aesenclast_si128(b3, k);
	if (with_e)
		*e = _mm_aesenclast_si128(b4, k);
}

/* p[0, n) ^= ks, n <= 64. */
GCM_INLINE void xor_ks(uint8_t *p, const __m128i ks[4], size_t n)
{
	__m128i *q = (__m128i *)p;
	int i = 0;
	for (; n >= 16; n -= 16, i++)
		_mm_storeu_si128(q + i, _mm_xor_si128(ks[i], _mm_loadu_si128(q + i)));
	if (n) {
		_Alignas(16) uint8_t last[16];
		_mm_store_si128((__m128i *)last, ks[i]);
		for (size_t b = 0; b < n; b++)
			p[16 * i + b] ^= last[b];
	}
}

/* p ^= keystream from counter c on. */
GCM_TARGET static void ctr(const struct warp__gcm *g, __m128i j, uint32_t c, uint8_t *p,
			   size_t len)
{
	__m128i ks[4];
	for (; len; c += 4) {
		size_t n = len < 64 ? len : 64;
		ks4_lanes(g, j, c, ks, false, NULL);
		xor_ks(p, ks, n);
		p += n;
		len -= n;
	}
}

/* The tag: GHASH(ad, c, lengths) XOR ek0 = E(K, J0). */
GCM_INLINE __m128i tag_of(const struct warp__gcm *g, __m128i ek0, const uint8_t *ad,
			  size_t ad_len, const uint8_t *c, size_t len)
{
	struct ghash s;
	s.x = _mm_setzero_si128();
	s.n = 0;
	gh_data(g, &s, ad, ad_len);
	gh_data(g, &s, c, len);
	/* the lengths block, already in GHASH's byte order */
	s.b[s.n++] = _mm_set_epi64x((long long)((uint64_t)ad_len * 8), (long long)((uint64_t)len * 8));
	gh_flush(g, &s);
	return _mm_xor_si128(bswap(s.x), ek0);
}

/* The IV in the first 12 bytes (the counter goes in the last 4), read
 * straight into a register. */
GCM_INLINE __m128i j0_of(const uint8_t iv[12])
{
	int32_t w2;
	memcpy(&w2, iv + 8, 4);
	return _mm_insert_epi32(_mm_loadl_epi64((const __m128i *)iv), w2, 2);
}

GCM_TARGET void warp__gcm_seal(const struct warp__gcm *g, const uint8_t iv[12], const uint8_t *ad,
			       size_t ad_len, uint8_t *p, size_t len, uint8_t tag[16])
{
	__m128i j = j0_of(iv), ek0, ks[4];
	size_t n = len < 64 ? len : 64;
	ks4_lanes(g, j, 2, ks, true, &ek0);
	xor_ks(p, ks, n);
	if (len > n)
		ctr(g, j, 6, p + n, len - n);
	_mm_storeu_si128((__m128i *)tag, tag_of(g, ek0, ad, ad_len, p, len));
}

GCM_TARGET bool warp__gcm_open(const struct warp__gcm *g, const uint8_t iv[12], const uint8_t *ad,
			       size_t ad_len, uint8_t *p, size_t len, const uint8_t tag[16])
{
	/* the first 64 bytes of keystream are made with E(K, J0), used only
	 * once the tag is checked */
	__m128i j = j0_of(iv), ek0, ks[4];
	ks4_lanes(g, j, 2, ks, true, &ek0);
	_Alignas(16) uint8_t want[16];
	_mm_store_si128((__m128i *)want, tag_of(g, ek0, ad, ad_len, p, len));
	bool ok = CRYPTO_memcmp(want, tag, 16) == 0;
	if (ok) {
		size_t n = len < 64 ? len : 64;
		xor_ks(p, ks, n);
		if (len > n)
			ctr(g, j, 6, p + n, len - n);
	}
	return ok;
}

void warp__gcm_fini(struct warp__gcm *g)
{
	OPENSSL_cleanse(g, sizeof(*g));
}
