/* SPDX-License-Identifier: Apache-2.0 */
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "warp/error.h"
#include "warp/hist.h"

/* Bucket layout (S = 8): values 0..255 have one bucket each (index = v).
 * A value with highest set bit k >= 8 falls in [2^k, 2^(k+1)), split into
 * 128 sub-buckets of width 2^(k-7): with shift = k - 7, the top 8 bits
 * sub = v >> shift lie in 128..255 and index = 128 * shift + sub. Both cases
 * are one formula once k is computed from (v | 255):
 *   k = 63 - clz(v | 255), shift = k - 7, index = (shift << 7) + (v >> shift).
 * Largest index: shift 56, sub 255 -> 7423. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)			     /* 128 */
#define HIST_EXACT (2u * HIST_SUB)			     /* 256 */
#define HIST_NBUCKETS ((64u - HIST_SUB_BITS + 1) * HIST_SUB) /* 256 + 56 * 128 */

_Static_assert(HIST_NBUCKETS == ((64u - 1 - HIST_SUB_BITS) << HIST_SUB_BITS) + 2 * HIST_SUB,
	       "one past the bucket of UINT64_MAX");

struct warp_hist {
	uint64_t count;
	uint64_t min; /* UINT64_MAX when empty */
	uint64_t max;
	uint64_t sum_lo, sum_hi; /* exact 128-bit sum */
	uint64_t buckets[HIST_NBUCKETS];
};

static inline uint32_t bucket_of(uint64_t v)
{
	uint32_t shift = (uint32_t)(63 - __builtin_clzll(v | (HIST_EXACT - 1))) - HIST_SUB_BITS;
	return (shift << HIST_SUB_BITS) + (uint32_t)(v >> shift);
}

/* Highest value that falls in bucket i. */
static inline uint64_t bucket_high(uint32_t i)
{
	if (i < HIST_EXACT)
		return i;
	uint32_t shift = (i >> HIST_SUB_BITS) - 1;
	uint64_t sub = i - (shift << HIST_SUB_BITS); /* 128..255 */
	return (sub << shift) + ((UINT64_C(1) << shift) - 1);
}

static void hist_clear(warp_hist_t *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

int warp_hist_create(warp_hist_t **out)
{
	if (!out)
		return WARP_EINVAL;
	warp_hist_t *h = warp__calloc(1, sizeof(*h));
	if (!h)
		return WARP_ENOMEM;
	h->min = UINT64_MAX;
	*out = h;
	return 0;
}

void warp_hist_destroy(warp_hist_t *h)
{
	warp__free(h);
}

void warp_hist_record(warp_hist_t *h, uint64_t v)
{
	h->buckets[bucket_of(v)]++;
	h->count++;
	h->sum_lo += v;
	h->sum_hi += h->sum_lo < v;
	h->min = v < h->min ? v : h->min;
	h->max = v > h->max ? v : h->max;
}

void warp_hist_reset(warp_hist_t *h)
{
	hist_clear(h);
}

int warp_hist_merge(warp_hist_t *dst, const warp_hist_t *src)
{
	if (!dst || !src)
		return WARP_EINVAL;
	if (src->count == 0)
		return 0;
	for (uint32_t i = 0; i < HIST_NBUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	uint64_t lo = src->sum_lo, hi = src->sum_hi; /* read before dst == src changes */
	dst->count += src->count;
	dst->sum_lo += lo;
	dst->sum_hi += hi + (dst->sum_lo < lo);
	dst->min = WARP__MIN(dst->min, src->min);
	dst->max = WARP__MAX(dst->max, src->max);
	return 0;
}

uint64_t warp_hist_count(const warp_hist_t *h)
{
	return h->count;
}

uint64_t warp_hist_min(const warp_hist_t *h)
{
	return h->count ? h->min : 0;
}

uint64_t warp_hist_max(const warp_hist_t *h)
{
	return h->max; /* 0 when empty */
}

double warp_hist_mean(const warp_hist_t *h)
{
	if (!h->count)
		return 0.0;
	long double sum = (long double)h->sum_hi * 18446744073709551616.0L + (long double)h->sum_lo;
	return (double)(sum / (long double)h->count);
}

/* Rank of the percentile: ceil(p / 100 * count) in [1, count], forgiving the
 * representation error of p (99.9 is not exact in binary) so that, e.g.,
 * p = 99.9 of 1000 values is rank 999, not 1000. No libm needed. */
static uint64_t rank_of(double p, uint64_t count)
{
	long double x = (long double)p * (long double)count / 100.0L;
	if (x >= 18446744073709551615.0L)
		return count;
	uint64_t whole = (uint64_t)x;
	uint64_t rank = whole + (x - (long double)whole > x * 1e-12L);
	return rank < 1 ? 1 : rank > count ? count : rank;
}

uint64_t warp_hist_percentile(const warp_hist_t *h, double p)
{
	if (h->count == 0)
		return 0;
	if (!(p > 0.0)) /* NaN too */
		return h->min;
	if (p >= 100.0)
		return h->max;
	uint64_t rank = rank_of(p, h->count), seen = 0;
	uint32_t last = bucket_of(h->max);
	for (uint32_t i = bucket_of(h->min); i < last; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			return WARP__MAX(bucket_high(i), h->min); /* < max: below max's bucket */
	}
	return h->max;
}
