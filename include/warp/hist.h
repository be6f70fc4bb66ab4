/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file warp/hist.h
 * Latency histogram with log-linear buckets (like HdrHistogram), used by
 * warp-bench and the metrics layer; public so applications can record their
 * own latencies the same way.
 *
 * Values are uint64_t (nanoseconds typically); the whole uint64_t range is
 * supported. Values below 256 are recorded exactly; above, each power-of-two
 * range [2^k, 2^(k+1)) is split into 128 equal sub-buckets, so a reported
 * percentile is at most 1/128 (0.78 %) above the true value, never below.
 * count, min, max and mean are exact. Memory is fixed at create (about
 * 58 KiB, one allocation); recording never allocates.
 *
 * Thread rules: a histogram is used by one thread at a time; nothing here
 * synchronises. To aggregate per-thread histograms, merge them once the
 * writers are quiescent (or merge copies each writer hands over). create
 * and destroy may be called from any thread.
 */
#ifndef WARP_HIST_H
#define WARP_HIST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct warp_hist warp_hist_t;

/**
 * Create an empty histogram.
 * @param out receives the histogram; the caller owns it and frees it with
 *        warp_hist_destroy().
 * @return 0, WARP_EINVAL (out NULL), WARP_ENOMEM.
 * Any thread.
 */
int warp_hist_create(warp_hist_t **out);

/** Free a histogram. NULL is ignored. Not concurrent with any other use. */
void warp_hist_destroy(warp_hist_t *h);

/**
 * Record one value. O(1), no allocation, no branch on the bucket layout.
 * The counters are 64-bit and do not saturate (2^64 records would wrap).
 * @param h the histogram, not NULL. @param v any value.
 * The thread currently using h.
 */
void warp_hist_record(warp_hist_t *h, uint64_t v);

/** Forget every recorded value (back to the state after create). The
 *  thread currently using h. */
void warp_hist_reset(warp_hist_t *h);

/**
 * Add every value recorded in src to dst, as if each had been recorded in
 * dst too. dst == src doubles every count.
 * @param dst the histogram that changes. @param src read only; not being
 *        written by another thread meanwhile.
 * @return 0, WARP_EINVAL (dst or src NULL).
 * The thread currently using dst.
 */
int warp_hist_merge(warp_hist_t *dst, const warp_hist_t *src);

/** Number of recorded values. */
uint64_t warp_hist_count(const warp_hist_t *h);

/** Smallest recorded value, exact; 0 if empty. */
uint64_t warp_hist_min(const warp_hist_t *h);

/** Largest recorded value, exact; 0 if empty. */
uint64_t warp_hist_max(const warp_hist_t *h);

/** Arithmetic mean of the recorded values, from an exact 128-bit sum
 *  (rounded once to double); 0.0 if empty. */
double warp_hist_mean(const warp_hist_t *h);

/**
 * Value at percentile p: the highest value equivalent to (sharing the bucket
 * of) the smallest recorded value v such that at least p % of the recorded
 * values are <= v, clamped to [min, max]. So the result is >= the exact
 * percentile and within 1/128 of it (exact below 256).
 * @param p in [0, 100]; values outside (and NaN) are clamped (NaN as 0).
 *        p == 0 returns min and p == 100 returns max, exactly.
 * @return the value; 0 if the histogram is empty.
 * O(number of buckets) = 7424 counters at most.
 */
uint64_t warp_hist_percentile(const warp_hist_t *h, double p);

#ifdef __cplusplus
}
#endif
#endif
