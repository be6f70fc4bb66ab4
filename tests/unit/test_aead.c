/* SPDX-License-Identifier: Apache-2.0 */
/* Per-packet AEAD (src/crypto/aead.c): known answers for both ciphers,
 * round trips, every kind of tampering refused, key updates, no allocation
 * per packet. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/aead.h"
#include "warp/error.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert_eq(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* A context keyed directly (bypassing the secret derivation) for the
 * published test vectors: with pn = 0 the nonce is the IV itself. */
static void set_raw_key(struct warp__aead *a, const char *key_hex, size_t klen,
			const char *iv_hex)
{
	unhex(key_hex, a->key, klen);
	unhex(iv_hex, a->iv, WARP_AEAD_IV_LEN);
	if (a->fast_max)
		warp__gcm_init(&a->gcm, a->key);
	EVP_CIPHER_CTX *ctx = a->ctx;
	cr_assert_eq(EVP_CipherInit_ex(ctx, NULL, NULL, a->key, a->iv, a->encrypt), 1);
}

/* AES-128-GCM has two implementations (gcm.c where the CPU allows, OpenSSL's
 * EVP otherwise): the tests below run each AES-128-GCM case with both. */
static void need_fast(void)
{
	if (!warp__gcm_supported())
		cr_skip_test("this CPU lacks AES-NI or PCLMULQDQ: only OpenSSL's AES-128-GCM "
			     "runs here");
}

static void use_evp(void)
{
	warp__aead_set_fast_max(0);
}

static void known_answer(int alg, const char *key, size_t klen, const char *iv, const char *ad_hex,
			 size_t ad_len, const uint8_t *pt, size_t pt_len, const char *ct_prefix_hex,
			 size_t ct_prefix, const char *tag_hex)
{
	uint8_t secret[WARP_AEAD_SECRET_LEN] = { 0 };
	struct warp__aead a;
	cr_assert_eq(warp__aead_init(&a, alg, secret, 1), 0, "%s", warp_errdetail());
	set_raw_key(&a, key, klen, iv);
	uint8_t pkt[256];
	unhex(ad_hex, pkt, ad_len);
	memcpy(pkt + ad_len, pt, pt_len);
	long n = warp__aead_seal(&a, 0, pkt, ad_len, pt_len);
	cr_assert_eq(n, (long)(ad_len + pt_len + WARP_AEAD_TAG_LEN));
	uint8_t want[64], tag[16];
	unhex(ct_prefix_hex, want, ct_prefix);
	unhex(tag_hex, tag, 16);
	cr_assert_eq(memcmp(pkt + ad_len, want, ct_prefix), 0, "ciphertext");
	cr_assert_eq(memcmp(pkt + ad_len + pt_len, tag, 16), 0, "tag");
	warp__aead_fini(&a);

	struct warp__aead b;
	cr_assert_eq(warp__aead_init(&b, alg, secret, 0), 0);
	set_raw_key(&b, key, klen, iv);
	cr_assert_eq(warp__aead_open(&b, 0, pkt, ad_len, (size_t)n), (long)pt_len);
	cr_assert_eq(memcmp(pkt + ad_len, pt, pt_len), 0, "decrypts back");
	warp__aead_fini(&b);
}

static void gcm_test_case_3_and_4(bool fast)
{
	if (fast) {
		need_fast();
		warp__aead_set_fast_max(SIZE_MAX);
	} else {
		use_evp();
	}
	/* test case 3: four whole blocks, no AD (the four-block GHASH path) */
	uint8_t pt3[64];
	unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
	      pt3, sizeof(pt3));
	known_answer(WARP_AEAD_AES128GCM, "feffe9928665731c6d6a8f9467308308", 16,
		     "cafebabefacedbaddecaf888", "", 0, pt3, sizeof(pt3),
		     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
		     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
		     64, "4d5c2af327cd64a62cf35abd2ba6fab4");
	/* test case 4: AD and plaintext both end in a partial block */
	uint8_t pt[60];
	unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
	      pt, sizeof(pt));
	known_answer(WARP_AEAD_AES128GCM, "feffe9928665731c6d6a8f9467308308", 16,
		     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2", 20, pt,
		     sizeof(pt), "42831ec2217774244b7221b784d0d49c", 16,
		     "5bc94fbc3221a5db94fae95ae7121a47");
}

Test(aead, aes128gcm_matches_the_gcm_spec_test_cases_3_and_4)
{
	gcm_test_case_3_and_4(true);
}

Test(aead, aes128gcm_through_openssl_matches_the_gcm_spec_test_cases_3_and_4)
{
	gcm_test_case_3_and_4(false);
}

static uint64_t xorshift(uint64_t *r)
{
	*r ^= *r << 13;
	*r ^= *r >> 7;
	*r ^= *r << 17;
	return *r;
}

/* gcm.c (for every length here, not only up to WARP_AEAD_FAST_MAX) against
 * OpenSSL, both ways, on random keys, packet numbers, header and payload
 * lengths (every length 0..300 and some large ones). */
Test(aead, aes128gcm_agrees_with_openssl_on_random_packets)
{
	need_fast();
	uint64_t r = 0x9e3779b97f4a7c15ull;
#define NEXT() xorshift(&r)
	static uint8_t a[9100], b[9100], orig[9100];
	for (int i = 0; i < 400; i++) {
		uint8_t secret[WARP_AEAD_SECRET_LEN];
		for (unsigned k = 0; k < sizeof(secret); k++)
			secret[k] = (uint8_t)NEXT();
		struct warp__aead ftx, frx, etx, erx;
		warp__aead_set_fast_max(SIZE_MAX);
		cr_assert_eq(warp__aead_init(&ftx, WARP_AEAD_AES128GCM, secret, 1), 0);
		cr_assert_eq(warp__aead_init(&frx, WARP_AEAD_AES128GCM, secret, 0), 0);
		warp__aead_set_fast_max(0);
		cr_assert_eq(warp__aead_init(&etx, WARP_AEAD_AES128GCM, secret, 1), 0);
		cr_assert_eq(warp__aead_init(&erx, WARP_AEAD_AES128GCM, secret, 0), 0);
		cr_assert(ftx.fast_max && frx.fast_max && !etx.fast_max && !erx.fast_max);
		size_t ad = (size_t)(NEXT() % 80);
		size_t len = i < 301 ? (size_t)i : (size_t)(NEXT() % 9000);
		uint64_t shift = NEXT() % 64;
		uint64_t pn = NEXT() >> shift;
		for (size_t k = 0; k < ad + len; k++)
			orig[k] = (uint8_t)NEXT();
		memcpy(a, orig, ad + len);
		memcpy(b, orig, ad + len);
		long na = warp__aead_seal(&ftx, pn, a, ad, len);
		long nb = warp__aead_seal(&etx, pn, b, ad, len);
		cr_assert_eq(na, nb);
		cr_assert_eq(memcmp(a, b, (size_t)na), 0, "ad %zu len %zu: sealed bytes differ", ad,
			     len);
		cr_assert_eq(warp__aead_open(&erx, pn, a, ad, (size_t)na), (long)len,
			     "ad %zu len %zu: OpenSSL refuses gcm.c's packet", ad, len);
		cr_assert_eq(warp__aead_open(&frx, pn, b, ad, (size_t)nb), (long)len,
			     "ad %zu len %zu: gcm.c refuses OpenSSL's packet", ad, len);
		cr_assert_eq(memcmp(a, orig, ad + len), 0);
		cr_assert_eq(memcmp(b, orig, ad + len), 0);
		/* one flipped bit: refused, and the packet is left as it was */
		long n2 = warp__aead_seal(&etx, pn, b, ad, len);
		size_t at = (size_t)(NEXT() % (uint64_t)n2);
		b[at] ^= (uint8_t)(1u << (NEXT() % 8));
		memcpy(a, b, (size_t)n2);
		cr_assert_eq(warp__aead_open(&frx, pn, b, ad, (size_t)n2), -1,
			     "ad %zu len %zu: bit at %zu flipped and accepted", ad, len, at);
		cr_assert_eq(memcmp(a, b, (size_t)n2), 0, "a refused packet is not decrypted");
		warp__aead_fini(&ftx);
		warp__aead_fini(&frx);
		warp__aead_fini(&etx);
		warp__aead_fini(&erx);
	}
#undef NEXT
}

Test(aead, chacha20poly1305_matches_rfc8439_section_2_8_2)
{
	static const char msg[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
				  "only one tip for the future, sunscreen would be it.";
	known_answer(WARP_AEAD_CHACHA20POLY1305,
		     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", 32,
		     "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7", 12,
		     (const uint8_t *)msg, sizeof(msg) - 1, "d31a8d34648e60db7b86afbc53ef7ec2", 16,
		     "1ae10b594f09e26a7e902ecbd0600691");
}

struct pair {
	struct warp__aead tx, rx;
};

static void pair_up(struct pair *p, int alg)
{
	uint8_t secret[WARP_AEAD_SECRET_LEN];
	for (unsigned i = 0; i < sizeof(secret); i++)
		secret[i] = (uint8_t)(i * 7 + 1);
	cr_assert_eq(warp__aead_init(&p->tx, alg, secret, 1), 0, "%s", warp_errdetail());
	cr_assert_eq(warp__aead_init(&p->rx, alg, secret, 0), 0, "%s", warp_errdetail());
}

static void pair_down(struct pair *p)
{
	warp__aead_fini(&p->tx);
	warp__aead_fini(&p->rx);
}

#define HDR 24

static size_t make_packet(uint8_t *pkt, uint64_t pn, size_t len)
{
	for (size_t i = 0; i < HDR; i++)
		pkt[i] = (uint8_t)(0xa0 + i);
	for (size_t i = 0; i < len; i++)
		pkt[HDR + i] = (uint8_t)(pn * 31 + i);
	return HDR + len;
}

static void round_trips_and_tampering(int alg)
{
	struct pair p;
	pair_up(&p, alg);
	uint8_t pkt[1600], orig[1600];
	for (uint64_t pn = 1; pn <= 200; pn++) {
		size_t len = (size_t)(pn * 7) % 1400;
		make_packet(pkt, pn, len);
		memcpy(orig, pkt, HDR + len);
		long n = warp__aead_seal(&p.tx, pn, pkt, HDR, len);
		cr_assert_eq(n, (long)(HDR + len + WARP_AEAD_TAG_LEN));
		cr_assert_eq(memcmp(pkt, orig, HDR), 0, "the header stays readable");
		if (len >= 16)
			cr_assert_neq(memcmp(pkt + HDR, orig + HDR, len), 0, "the payload is not");
		uint8_t sealed[1600];
		memcpy(sealed, pkt, (size_t)n);
		/* a flipped bit anywhere: header, ciphertext or tag */
		size_t at = (size_t)(pn * 13) % (size_t)n;
		pkt[at] ^= (uint8_t)(1u << (pn % 8));
		cr_assert_eq(warp__aead_open(&p.rx, pn, pkt, HDR, (size_t)n), -1,
			     "pn %llu: byte %zu flipped and accepted", (unsigned long long)pn, at);
		/* the wrong packet number (a replayed or renumbered packet) */
		memcpy(pkt, sealed, (size_t)n);
		cr_assert_eq(warp__aead_open(&p.rx, pn + 1, pkt, HDR, (size_t)n), -1);
		/* truncated */
		memcpy(pkt, sealed, (size_t)n);
		cr_assert_eq(warp__aead_open(&p.rx, pn, pkt, HDR, (size_t)n - 1), -1);
		cr_assert_eq(warp__aead_open(&p.rx, pn, pkt, HDR, HDR + WARP_AEAD_TAG_LEN - 1), -1);
		/* and the genuine one still opens after all that */
		memcpy(pkt, sealed, (size_t)n);
		cr_assert_eq(warp__aead_open(&p.rx, pn, pkt, HDR, (size_t)n), (long)len);
		cr_assert_eq(memcmp(pkt, orig, HDR + len), 0);
	}
	pair_down(&p);
}

Test(aead, aes128gcm_round_trips_and_refuses_every_tampering)
{
	need_fast(); /* gcm.c up to WARP_AEAD_FAST_MAX, OpenSSL above */
	round_trips_and_tampering(WARP_AEAD_AES128GCM);
}

Test(aead, aes128gcm_through_openssl_round_trips_and_refuses_every_tampering)
{
	use_evp();
	round_trips_and_tampering(WARP_AEAD_AES128GCM);
}

Test(aead, chacha20poly1305_round_trips_and_refuses_every_tampering)
{
	round_trips_and_tampering(WARP_AEAD_CHACHA20POLY1305);
}

Test(aead, a_key_update_on_both_sides_keeps_working_and_old_keys_are_refused)
{
	struct pair p;
	pair_up(&p, WARP_AEAD_AES128GCM);
	uint8_t pkt[256], old[256];
	make_packet(pkt, 5, 100);
	long n = warp__aead_seal(&p.tx, 5, pkt, HDR, 100);
	memcpy(old, pkt, (size_t)n); /* sealed under generation 0 */
	cr_assert_eq(warp__aead_update(&p.tx), 0);
	cr_assert_eq(warp__aead_update(&p.rx), 0);
	cr_assert_eq(p.tx.generation, 1);
	cr_assert_eq(memcmp(p.tx.key, p.rx.key, 16), 0);
	make_packet(pkt, 6, 100);
	n = warp__aead_seal(&p.tx, 6, pkt, HDR, 100);
	cr_assert_eq(warp__aead_open(&p.rx, 6, pkt, HDR, (size_t)n), 100);
	cr_assert_eq(warp__aead_open(&p.rx, 5, old, HDR, (size_t)n), -1, "old key refused");
	pair_down(&p);
}

Test(aead, different_secrets_do_not_open_each_others_packets)
{
	uint8_t s1[WARP_AEAD_SECRET_LEN] = { 1 }, s2[WARP_AEAD_SECRET_LEN] = { 2 };
	struct warp__aead tx, rx;
	cr_assert_eq(warp__aead_init(&tx, WARP_AEAD_AES128GCM, s1, 1), 0);
	cr_assert_eq(warp__aead_init(&rx, WARP_AEAD_AES128GCM, s2, 0), 0);
	uint8_t pkt[256];
	make_packet(pkt, 1, 64);
	long n = warp__aead_seal(&tx, 1, pkt, HDR, 64);
	cr_assert_eq(warp__aead_open(&rx, 1, pkt, HDR, (size_t)n), -1);
	warp__aead_fini(&tx);
	warp__aead_fini(&rx);
}

Test(aead, unknown_algorithm_is_refused)
{
	uint8_t s[WARP_AEAD_SECRET_LEN] = { 0 };
	struct warp__aead a;
	cr_assert_eq(warp__aead_init(&a, 99, s, 1), WARP_EINVAL);
	cr_assert(strstr(warp_errdetail(), "unknown AEAD 99"), "%s", warp_errdetail());
}

/* OpenSSL's allocations, counted from the start of this test's process. */
static atomic_long ossl_allocs;
static void *count_malloc(size_t n, const char *f, int l)
{
	(void)f, (void)l;
	atomic_fetch_add(&ossl_allocs, 1);
	return malloc(n);
}
static void *count_realloc(void *p, size_t n, const char *f, int l)
{
	(void)f, (void)l;
	atomic_fetch_add(&ossl_allocs, 1);
	return realloc(p, n);
}
static void count_free(void *p, const char *f, int l)
{
	(void)f, (void)l;
	free(p);
}

/* Installed before main: OpenSSL only takes allocator hooks before its
 * first allocation. */
static int hooks_set;
__attribute__((constructor)) static void set_hooks(void)
{
	hooks_set = CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free);
}

Test(aead, sealing_and_opening_allocate_nothing)
{
	if (!hooks_set)
		cr_skip("OpenSSL allocated before this program's constructors ran: cannot count");
	for (int alg = WARP_AEAD_AES128GCM; alg <= WARP_AEAD_CHACHA20POLY1305; alg++) {
		struct pair p;
		long at_init = atomic_load(&ossl_allocs);
		pair_up(&p, alg);
		cr_assert_gt(atomic_load(&ossl_allocs), at_init, "the counter sees OpenSSL allocate");
		uint8_t pkt[1600];
		/* warm up, then count */
		for (uint64_t pn = 1; pn < 10; pn++) {
			make_packet(pkt, pn, 1000);
			long n = warp__aead_seal(&p.tx, pn, pkt, HDR, 1000);
			cr_assert_eq(warp__aead_open(&p.rx, pn, pkt, HDR, (size_t)n), 1000);
		}
		long before = atomic_load(&ossl_allocs);
		for (uint64_t pn = 10; pn < 10010; pn++) {
			make_packet(pkt, pn, 1000);
			long n = warp__aead_seal(&p.tx, pn, pkt, HDR, 1000);
			cr_assert_eq(warp__aead_open(&p.rx, pn, pkt, HDR, (size_t)n), 1000);
			pkt[HDR] ^= 1; /* failures too */
			cr_assert_eq(warp__aead_open(&p.rx, pn, pkt, HDR, (size_t)n), -1);
		}
		cr_assert_eq(atomic_load(&ossl_allocs) - before, 0, "alg %d: %ld allocations", alg,
			     atomic_load(&ossl_allocs) - before);
		pair_down(&p);
	}
}
