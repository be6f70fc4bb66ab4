/* SPDX-License-Identifier: Apache-2.0 */
/* Internal helpers shared by every layer. Never installed. */
#ifndef WARP_COMMON_H
#define WARP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

#define WARP_CACHE_LINE 64
#define warp__likely(x) __builtin_expect(!!(x), 1)
#define warp__unlikely(x) __builtin_expect(!!(x), 0)
#define warp__cold __attribute__((cold))
#define warp__aligned_cl __attribute__((aligned(WARP_CACHE_LINE)))
#define warp__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define WARP__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define WARP__MIN(a, b) ((a) < (b) ? (a) : (b))
#define WARP__MAX(a, b) ((a) > (b) ? (a) : (b))

/* Counters: written by exactly one thread (the engine's), read by any.
 * A relaxed load + relaxed store compiles to a plain add on x86-64 and keeps
 * the concurrent reader free of data races. */
typedef _Atomic uint64_t warp__counter_t;
#define warp__cnt_add(c, n) \
	atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n), \
			      memory_order_relaxed)
#define warp__cnt_get(c) atomic_load_explicit(&(c), memory_order_relaxed)

/* Every allocation of libwarp goes through these, so a counter can prove
 * that the hot path allocates nothing after start-up (tests check
 * warp__alloc_count() stays put while traffic flows). */
void *warp__malloc(size_t n);
void *warp__calloc(size_t n, size_t sz);
void *warp__aligned_alloc(size_t align, size_t n); /* not zeroed */
void warp__free(void *p);
uint64_t warp__alloc_count(void);        /* all threads */
uint64_t warp__alloc_count_thread(void); /* calling thread */

/* Slow-path error detail (thread-local); returns err so callers can write
 * `return warp__err(WARP_EINVAL, "key '%s': ...", k);`. */
int warp__err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepend context to the current detail: "peers[2]: " + old detail. */
int warp__err_prefix(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void warp__err_clear(void);

/* The engine clock (src/engine/clock.c): ns, TSC-based when invariant. */
void warp__clock_init(void);
uint64_t warp__clock_ns(void);
int warp__clock_is_tsc(void);

/* tls.ciphers ("aes-128-gcm:chacha20-poly1305"): the suites as WARP_TLS_*
 * bits (crypto/tls.h) and whether ChaCha comes first; 0 or -1 (bad list).
 * In config/config.c. */
int warp__tls_ciphers_parse(const char *s, unsigned *suites, bool *chacha_first);

#endif
