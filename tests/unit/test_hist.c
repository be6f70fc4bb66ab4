/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "warp/error.h"
#include "warp/hist.h"

static warp_hist_t *h;

static void setup(void)
{
	cr_assert_eq(warp_hist_create(&h), 0);
}

static void teardown(void)
{
	warp_hist_destroy(h);
}

TestSuite(hist, .init = setup, .fini = teardown);

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* ceil(p / 100 * n), ignoring the binary representation error of p. */
static uint64_t rank_of(double p, uint64_t n)
{
	double x = p / 100.0 * (double)n - 1e-9;
	uint64_t r = x <= 0 ? 0 : (uint64_t)x;
	return r + ((double)r < x);
}

/* Exact percentile of sorted values: the value of rank ceil(p/100 * n). */
static uint64_t true_percentile(const uint64_t *sorted, size_t n, double p)
{
	uint64_t rank = rank_of(p, n);
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

/* Reported value r is >= the true value t and within 1/128 of it. */
static void check_close(uint64_t r, uint64_t t, double p)
{
	cr_assert_geq(r, t, "p%g: reported %llu below true %llu", p, (unsigned long long)r,
		      (unsigned long long)t);
	cr_assert_leq((long double)(r - t), (long double)t / 128.0L,
		      "p%g: reported %llu, true %llu", p, (unsigned long long)r,
		      (unsigned long long)t);
}

Test(hist, create_rejects_null)
{
	cr_assert_eq(warp_hist_create(NULL), WARP_EINVAL);
	warp_hist_destroy(NULL);
	cr_assert_eq(warp_hist_merge(NULL, h), WARP_EINVAL);
	cr_assert_eq(warp_hist_merge(h, NULL), WARP_EINVAL);
}

Test(hist, empty)
{
	cr_assert_eq(warp_hist_count(h), 0);
	cr_assert_eq(warp_hist_min(h), 0);
	cr_assert_eq(warp_hist_max(h), 0);
	cr_assert_eq(warp_hist_mean(h), 0.0);
	cr_assert_eq(warp_hist_percentile(h, 0), 0);
	cr_assert_eq(warp_hist_percentile(h, 50), 0);
	cr_assert_eq(warp_hist_percentile(h, 100), 0);
}

Test(hist, small_values_are_exact)
{
	for (uint64_t v = 0; v < 256; v++)
		warp_hist_record(h, v);
	cr_assert_eq(warp_hist_count(h), 256);
	cr_assert_eq(warp_hist_min(h), 0);
	cr_assert_eq(warp_hist_max(h), 255);
	cr_assert_float_eq(warp_hist_mean(h), 127.5, 1e-12);
	for (int r = 1; r <= 256; r++) {
		double p = 100.0 * r / 256.0;
		cr_assert_eq(warp_hist_percentile(h, p), (uint64_t)(r - 1), "p%g", p);
	}
	cr_assert_eq(warp_hist_percentile(h, 50), 127);
	cr_assert_eq(warp_hist_percentile(h, 50.1), 128);
	/* one single value */
	warp_hist_reset(h);
	warp_hist_record(h, 42);
	for (double p = 0; p <= 100; p += 12.5)
		cr_assert_eq(warp_hist_percentile(h, p), 42);
}

Test(hist, single_large_value_is_exact)
{
	warp_hist_record(h, 123456789);
	cr_assert_eq(warp_hist_percentile(h, 50), 123456789); /* clamped to [min, max] */
	cr_assert_eq(warp_hist_min(h), 123456789);
	cr_assert_eq(warp_hist_mean(h), 123456789.0);
}

Test(hist, uniform_1_to_1e6_percentiles)
{
	const uint64_t n = 1000000;
	for (uint64_t v = 1; v <= n; v++)
		warp_hist_record(h, v);
	cr_assert_eq(warp_hist_count(h), n);
	cr_assert_float_eq(warp_hist_mean(h), 500000.5, 1e-9);
	static const double ps[] = {0.0001, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999,
				    99.9999};
	for (size_t i = 0; i < WARP__ARRAY_LEN(ps); i++) {
		uint64_t t = rank_of(ps[i], n);
		check_close(warp_hist_percentile(h, ps[i]), t, ps[i]);
	}
	for (double p = 0.5; p < 100; p += 0.5) {
		uint64_t t = rank_of(p, n);
		check_close(warp_hist_percentile(h, p), t, p);
	}
	cr_assert_eq(warp_hist_percentile(h, 0), 1);
	cr_assert_eq(warp_hist_percentile(h, 100), n);
}

Test(hist, p0_p100_exact_and_clamped)
{
	uint64_t vals[] = {1000003, 777777777, 5000001, 999999999999ull, 1000003};
	for (size_t i = 0; i < WARP__ARRAY_LEN(vals); i++)
		warp_hist_record(h, vals[i]);
	cr_assert_eq(warp_hist_percentile(h, 0), 1000003);
	cr_assert_eq(warp_hist_percentile(h, 100), 999999999999ull);
	cr_assert_eq(warp_hist_percentile(h, -5), 1000003);
	cr_assert_eq(warp_hist_percentile(h, 250), 999999999999ull);
	cr_assert_eq(warp_hist_percentile(h, NAN), 1000003);
	cr_assert_eq(warp_hist_percentile(h, 99.99), 999999999999ull);
	check_close(warp_hist_percentile(h, 1e-9), 1000003, 1e-9); /* min's bucket */
	cr_assert_eq(warp_hist_min(h), 1000003);
	cr_assert_eq(warp_hist_max(h), 999999999999ull);
	/* monotonic in p */
	uint64_t prev = 0;
	for (double p = 0; p <= 100; p += 0.25) {
		uint64_t v = warp_hist_percentile(h, p);
		cr_assert_geq(v, prev);
		prev = v;
	}
}

Test(hist, random_values_against_sorted_reference)
{
	enum { N = 200000 };
	uint64_t *vals = malloc(N * sizeof(*vals));
	cr_assert_not_null(vals);
	for (size_t i = 0; i < N; i++) {
		/* log-uniform over the whole range, so every bucket group is hit */
		int bits = (int)(rng() % 65);
		uint64_t v = bits == 0 ? 0 : rng() >> (64 - bits);
		vals[i] = v;
		warp_hist_record(h, v);
	}
	qsort(vals, N, sizeof(*vals), cmp_u64);
	cr_assert_eq(warp_hist_min(h), vals[0]);
	cr_assert_eq(warp_hist_max(h), vals[N - 1]);
	for (double p = 0.01; p < 100; p += 0.37)
		check_close(warp_hist_percentile(h, p), true_percentile(vals, N, p), p);
	long double sum = 0;
	for (size_t i = 0; i < N; i++)
		sum += vals[i];
	cr_assert_float_eq(warp_hist_mean(h), (double)(sum / N), 1e-9 * (double)(sum / N));
	free(vals);
}

/* Highest value of v's bucket, computed the slow way: below 256 exact,
 * else [2^k, 2^(k+1)) cut into 128 slices of width 2^(k-7). */
static uint64_t expected_high(uint64_t v)
{
	if (v < 256)
		return v;
	int k = 0;
	while (k < 63 && (v >> (k + 1)) != 0)
		k++;
	uint64_t width = UINT64_C(1) << (k - 7);
	return v / width * width + (width - 1);
}

Test(hist, bucket_boundaries)
{
	/* each power of two and its neighbours land in a bucket whose reported
	 * value is its highest value, within 1/128 above them */
	for (int k = 0; k < 64; k++) {
		uint64_t base = UINT64_C(1) << k;
		uint64_t cand[] = {base - 1, base, base + 1, base + base / 3};
		for (size_t i = 0; i < WARP__ARRAY_LEN(cand); i++) {
			warp_hist_reset(h);
			warp_hist_record(h, 0);
			warp_hist_record(h, cand[i]);
			warp_hist_record(h, UINT64_MAX);
			check_close(warp_hist_percentile(h, 50), cand[i], 50);
			cr_assert_eq(warp_hist_percentile(h, 50), expected_high(cand[i]));
		}
	}
}

Test(hist, huge_values)
{
	warp_hist_record(h, UINT64_MAX);
	warp_hist_record(h, UINT64_MAX);
	warp_hist_record(h, UINT64_MAX - 1);
	warp_hist_record(h, UINT64_C(1) << 63);
	cr_assert_eq(warp_hist_count(h), 4);
	cr_assert_eq(warp_hist_max(h), UINT64_MAX);
	cr_assert_eq(warp_hist_min(h), UINT64_C(1) << 63);
	cr_assert_eq(warp_hist_percentile(h, 100), UINT64_MAX);
	cr_assert_eq(warp_hist_percentile(h, 99), UINT64_MAX);
	cr_assert_eq(warp_hist_percentile(h, 0), UINT64_C(1) << 63);
	check_close(warp_hist_percentile(h, 25), UINT64_C(1) << 63, 25);
	/* the sum exceeds 2^64 several times over; the mean stays right */
	long double expect = (3.0L * 18446744073709551615.0L - 1.0L + 9223372036854775808.0L) / 4;
	cr_assert_float_eq(warp_hist_mean(h), (double)expect, 1e-12 * (double)expect);
	for (int i = 0; i < 1000; i++)
		warp_hist_record(h, UINT64_MAX);
	expect = (1003.0L * 18446744073709551615.0L - 1.0L + 9223372036854775808.0L) / 1004;
	cr_assert_float_eq(warp_hist_mean(h), (double)expect, 1e-12 * (double)expect);
}

Test(hist, merge_equals_recording_everything_in_one)
{
	warp_hist_t *a, *b, *all;
	cr_assert_eq(warp_hist_create(&a), 0);
	cr_assert_eq(warp_hist_create(&b), 0);
	cr_assert_eq(warp_hist_create(&all), 0);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rng() >> (rng() % 64);
		warp_hist_record(i % 3 ? a : b, v);
		warp_hist_record(all, v);
	}
	warp_hist_record(b, UINT64_MAX);
	warp_hist_record(all, UINT64_MAX);
	cr_assert_eq(warp_hist_merge(h, a), 0); /* into an empty one */
	cr_assert_eq(warp_hist_merge(h, b), 0);
	warp_hist_t *empty;
	cr_assert_eq(warp_hist_create(&empty), 0);
	cr_assert_eq(warp_hist_merge(h, empty), 0); /* merging an empty one: no change */
	cr_assert_eq(warp_hist_count(h), warp_hist_count(all));
	cr_assert_eq(warp_hist_min(h), warp_hist_min(all));
	cr_assert_eq(warp_hist_max(h), warp_hist_max(all));
	cr_assert_eq(warp_hist_mean(h), warp_hist_mean(all));
	for (double p = 0; p <= 100; p += 0.1)
		cr_assert_eq(warp_hist_percentile(h, p), warp_hist_percentile(all, p), "p%g", p);
	/* self-merge doubles counts: percentiles and mean unchanged */
	cr_assert_eq(warp_hist_merge(all, all), 0);
	cr_assert_eq(warp_hist_count(all), 2 * warp_hist_count(h));
	cr_assert_float_eq(warp_hist_mean(all), warp_hist_mean(h), 1e-6 * warp_hist_mean(h));
	for (double p = 0; p <= 100; p += 1)
		cr_assert_eq(warp_hist_percentile(h, p), warp_hist_percentile(all, p), "p%g", p);
	warp_hist_destroy(a);
	warp_hist_destroy(b);
	warp_hist_destroy(all);
	warp_hist_destroy(empty);
}

Test(hist, reset)
{
	for (uint64_t v = 1; v <= 1000; v++)
		warp_hist_record(h, v * 1000);
	warp_hist_reset(h);
	cr_assert_eq(warp_hist_count(h), 0);
	cr_assert_eq(warp_hist_min(h), 0);
	cr_assert_eq(warp_hist_max(h), 0);
	cr_assert_eq(warp_hist_mean(h), 0.0);
	cr_assert_eq(warp_hist_percentile(h, 50), 0);
	warp_hist_record(h, 7);
	warp_hist_record(h, 9);
	cr_assert_eq(warp_hist_min(h), 7);
	cr_assert_eq(warp_hist_max(h), 9);
	cr_assert_eq(warp_hist_percentile(h, 50), 7);
	cr_assert_float_eq(warp_hist_mean(h), 8.0, 1e-12);
}

Test(hist, record_does_not_allocate)
{
	uint64_t before = warp__alloc_count();
	for (int i = 0; i < 100000; i++)
		warp_hist_record(h, rng());
	warp_hist_reset(h);
	(void)warp_hist_percentile(h, 99);
	cr_assert_eq(warp__alloc_count(), before);
}
