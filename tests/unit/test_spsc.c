/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the SPSC record ring (warp/spsc.h). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warp/error.h"
#include "warp/spsc.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define SANITIZED 1
#elif defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define SANITIZED 2
#else
#define SANITIZED 0
#endif

#define HDR 8u

/* ---- helpers ---------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

static uint64_t rec_total(uint32_t len)
{
	return HDR + (((uint64_t)len + 7) & ~(uint64_t)7);
}

/* Byte k of the payload of record `seed`. */
static uint8_t pattern_byte(uint64_t seed, uint32_t k)
{
	return (uint8_t)((mix64(seed) >> ((k & 7) * 8)) ^ (k * 131u));
}

static void fill_pattern(void *p, uint32_t len, uint64_t seed)
{
	uint8_t *b = p;
	uint64_t m = mix64(seed);
	for (uint32_t k = 0; k < len; k++)
		b[k] = (uint8_t)((m >> ((k & 7) * 8)) ^ (k * 131u));
}

/* Index of the first wrong byte, or -1. */
static long check_pattern(const void *p, uint32_t len, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t m = mix64(seed);
	for (uint32_t k = 0; k < len; k++)
		if (b[k] != (uint8_t)((m >> ((k & 7) * 8)) ^ (k * 131u)))
			return (long)k;
	return -1;
}

static warp_spsc_t *make_ring(size_t cap)
{
	warp_spsc_t *r = NULL;
	int rc = warp_spsc_create(cap, &r);
	cr_assert_eq(rc, 0, "create(%zu) = %d", cap, rc);
	cr_assert_not_null(r);
	return r;
}

/* Reserve, fill and commit one record; false when the ring is full. */
static int push(warp_spsc_t *r, uint32_t len, uint32_t type, uint64_t seed)
{
	void *p = warp_spsc_reserve(r, len, type);
	if (!p)
		return 0;
	cr_assert_eq((uintptr_t)p % 8, 0, "payload pointer not 8-byte aligned");
	fill_pattern(p, len, seed);
	warp_spsc_commit(r);
	return 1;
}

/* Read one record and check it is exactly (len, type, pattern(seed)). */
static void expect_record(warp_spsc_t *r, uint32_t len, uint32_t type, uint64_t seed)
{
	uint32_t got_len = 0xdeadbeef, got_type = 0xdeadbeef;
	const void *p = warp_spsc_read(r, &got_len, &got_type);
	cr_assert_not_null(p, "record (seed %llu) missing", (unsigned long long)seed);
	cr_assert_eq((uintptr_t)p % 8, 0, "payload pointer not 8-byte aligned");
	cr_assert_eq(got_len, len, "seed %llu: len %u, want %u", (unsigned long long)seed, got_len,
		     len);
	cr_assert_eq(got_type, type, "seed %llu: type %u, want %u", (unsigned long long)seed,
		     got_type, type);
	long bad = check_pattern(p, len, seed);
	cr_assert_eq(bad, -1, "seed %llu: byte %ld corrupted", (unsigned long long)seed, bad);
}

static void expect_empty(warp_spsc_t *r)
{
	uint32_t len, type;
	cr_assert_null(warp_spsc_read(r, &len, &type), "ring should have nothing to read");
}

/* Move an empty ring's positions forward by `bytes` (multiple of 8) without
 * crossing the end of the buffer; the ring is empty again afterwards. */
static void advance_empty(warp_spsc_t *r, uint64_t bytes)
{
	uint64_t half = warp_spsc_capacity(r) / 2;
	while (bytes) {
		uint64_t step = bytes < half ? bytes : half;
		cr_assert(push(r, (uint32_t)(step - HDR), 9, step));
		expect_record(r, (uint32_t)(step - HDR), 9, step);
		warp_spsc_release(r);
		bytes -= step;
	}
	cr_assert_eq(warp_spsc_used(r), 0);
}

/* ---- create / limits -------------------------------------------------- */

Test(spsc, create_rejects_non_power_of_two_too_small_and_too_large_capacities)
{
	size_t bad[] = {0,    1,    8,    2048, 4095, 4097, 6144, 12288, ((size_t)1 << 20) + 8,
			((size_t)1 << 31) - 4096, ((size_t)1 << 31) + 4096, (size_t)3 << 30, SIZE_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		warp_spsc_t *r = NULL;
		int rc = warp_spsc_create(bad[i], &r);
		cr_expect_eq(rc, WARP_EINVAL, "create(%zu) = %d, want WARP_EINVAL", bad[i], rc);
		cr_expect_null(r);
	}
#if SIZE_MAX > 0xffffffffu
	/* Powers of two above 2^31 are out of range too. */
	size_t big[] = {(size_t)1 << 32, (size_t)1 << 40, (size_t)1 << 63};
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		warp_spsc_t *r = NULL;
		cr_expect_eq(warp_spsc_create(big[i], &r), WARP_EINVAL, "create(%zu)", big[i]);
	}
#endif
}

Test(spsc, create_accepts_powers_of_two_and_max_record_is_half_capacity_minus_header)
{
	size_t caps[] = {4096, 8192, 1 << 16, 1 << 20};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		warp_spsc_t *r = make_ring(caps[i]);
		cr_expect_eq(warp_spsc_capacity(r), caps[i]);
		cr_expect_eq(warp_spsc_max_record(r), caps[i] / 2 - HDR);
		cr_expect_eq(warp_spsc_used(r), 0);
		expect_empty(r);
		warp_spsc_destroy(r);
	}
}

Test(spsc, destroy_null_is_ignored)
{
	warp_spsc_destroy(NULL);
}

Test(spsc, reserve_rejects_type_zero_and_len_above_max_record)
{
	warp_spsc_t *r = make_ring(4096);
	uint32_t max = (uint32_t)warp_spsc_max_record(r);
	cr_expect_null(warp_spsc_reserve(r, 0, 0));
	cr_expect_null(warp_spsc_reserve(r, 16, 0));
	cr_expect_null(warp_spsc_reserve(r, max + 1, 1));
	cr_expect_null(warp_spsc_reserve(r, max + 8, 1));
	cr_expect_null(warp_spsc_reserve(r, UINT32_MAX, 1));
	warp_spsc_commit(r);
	cr_expect_eq(warp_spsc_used(r), 0, "rejected reserves must not take space");
	expect_empty(r);
	cr_assert(push(r, max, 1, 42));
	expect_record(r, max, 1, 42);
	warp_spsc_destroy(r);
}

/* ---- single-thread semantics ------------------------------------------ */

Test(spsc, records_come_out_in_order_with_exact_len_type_and_bytes)
{
	warp_spsc_t *r = make_ring(4096);
	uint32_t lens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 255, 1000};
	size_t n = sizeof(lens) / sizeof(lens[0]);
	uint64_t used = 0;
	for (size_t i = 0; i < n; i++) {
		cr_assert(push(r, lens[i], (uint32_t)(i * 7919 + 1), i));
		used += rec_total(lens[i]);
		cr_expect_eq(warp_spsc_used(r), used);
	}
	for (size_t i = 0; i < n; i++)
		expect_record(r, lens[i], (uint32_t)(i * 7919 + 1), i);
	expect_empty(r);
	warp_spsc_release(r);
	cr_expect_eq(warp_spsc_used(r), 0);
	/* Full 32-bit type range round-trips. */
	cr_assert(push(r, 3, UINT32_MAX, 77));
	expect_record(r, 3, UINT32_MAX, 77);
	warp_spsc_destroy(r);
}

Test(spsc, zero_length_records_round_trip_and_take_one_header)
{
	warp_spsc_t *r = make_ring(4096);
	cr_assert_not_null(warp_spsc_reserve(r, 0, 5));
	warp_spsc_commit(r);
	cr_expect_eq(warp_spsc_used(r), HDR);
	cr_assert(push(r, 12, 6, 1));
	cr_assert(push(r, 0, 7, 2));
	expect_record(r, 0, 5, 0);
	expect_record(r, 12, 6, 1);
	expect_record(r, 0, 7, 2);
	expect_empty(r);
	warp_spsc_release(r);
	cr_expect_eq(warp_spsc_used(r), 0);
	/* A ring filled with empty records holds capacity / 8 of them. */
	size_t n = 0;
	while (push(r, 0, 3, n))
		n++;
	cr_expect_eq(n, 4096 / HDR);
	for (size_t i = 0; i < n; i++)
		expect_record(r, 0, 3, i);
	expect_empty(r);
	warp_spsc_destroy(r);
}

Test(spsc, reserve_without_commit_is_invisible_to_read)
{
	warp_spsc_t *r = make_ring(4096);
	void *p = warp_spsc_reserve(r, 32, 2);
	cr_assert_not_null(p);
	fill_pattern(p, 32, 11);
	expect_empty(r);
	cr_expect_eq(warp_spsc_used(r), 0);
	/* A second uncommitted record is invisible as well. */
	p = warp_spsc_reserve(r, 8, 3);
	cr_assert_not_null(p);
	fill_pattern(p, 8, 12);
	expect_empty(r);
	warp_spsc_commit(r);
	cr_expect_eq(warp_spsc_used(r), rec_total(32) + rec_total(8));
	expect_record(r, 32, 2, 11);
	expect_record(r, 8, 3, 12);
	expect_empty(r);
	warp_spsc_destroy(r);
}

Test(spsc, read_without_release_does_not_free_space)
{
	warp_spsc_t *r = make_ring(4096);
	size_t n = 0;
	while (push(r, 56, 1, n))
		n++;
	cr_assert_eq(n, 4096 / 64);
	for (size_t i = 0; i < n; i++)
		expect_record(r, 56, 1, i);
	expect_empty(r);
	cr_expect_eq(warp_spsc_used(r), 4096, "read records are still in use");
	cr_expect_null(warp_spsc_reserve(r, 0, 1), "read-but-unreleased space was reused");
	warp_spsc_release(r);
	cr_expect_eq(warp_spsc_used(r), 0);
	cr_expect(push(r, 56, 1, 99));
	expect_record(r, 56, 1, 99);
	warp_spsc_destroy(r);
}

Test(spsc, commit_and_release_with_nothing_pending_are_noops)
{
	warp_spsc_t *r = make_ring(4096);
	warp_spsc_commit(r);
	warp_spsc_release(r);
	expect_empty(r);
	cr_assert(push(r, 10, 1, 1));
	warp_spsc_commit(r);
	warp_spsc_commit(r);
	cr_expect_eq(warp_spsc_used(r), rec_total(10));
	warp_spsc_release(r); /* nothing read yet */
	cr_expect_eq(warp_spsc_used(r), rec_total(10));
	expect_record(r, 10, 1, 1);
	warp_spsc_release(r);
	warp_spsc_release(r);
	cr_expect_eq(warp_spsc_used(r), 0);
	expect_empty(r);
	warp_spsc_destroy(r);
}

/* ---- full / empty ----------------------------------------------------- */

Test(spsc, fill_until_full_loses_nothing_and_space_returns_only_after_release)
{
	const size_t cap = 4096;
	warp_spsc_t *r = make_ring(cap);
	/* 40-byte records take 48 bytes: 85 fit (4080 bytes); the 86th would
	 * need padding of the last 16 bytes plus 48 at offset 0. */
	size_t n = 0;
	while (push(r, 40, 4, n))
		n++;
	cr_assert_eq(n, cap / 48, "filled %zu records", n);
	cr_expect_eq(warp_spsc_used(r), n * 48);
	/* The 16 bytes left still take a record that fits exactly. */
	cr_assert(push(r, 8, 5, 1000));
	cr_expect_eq(warp_spsc_used(r), cap);
	cr_expect_null(warp_spsc_reserve(r, 0, 1), "full ring accepted a record");

	/* Releasing one record frees exactly its space, no more. */
	expect_record(r, 40, 4, 0);
	cr_expect_null(warp_spsc_reserve(r, 0, 1), "space came back before release");
	warp_spsc_release(r);
	cr_expect_eq(warp_spsc_used(r), cap - 48);
	cr_expect_null(warp_spsc_reserve(r, 41, 4), "49+ bytes cannot fit in 48 freed bytes");
	cr_assert(push(r, 40, 4, n));
	cr_expect_null(warp_spsc_reserve(r, 0, 1));

	/* Drain: everything arrives, in order, then the ring reads empty. */
	for (size_t i = 1; i < n; i++)
		expect_record(r, 40, 4, i);
	expect_record(r, 8, 5, 1000);
	expect_record(r, 40, 4, n);
	expect_empty(r);
	cr_expect_eq(warp_spsc_used(r), cap);
	cr_expect_null(warp_spsc_reserve(r, 0, 1));
	warp_spsc_release(r);
	cr_expect_eq(warp_spsc_used(r), 0);
	expect_empty(r);
	cr_expect(push(r, (uint32_t)warp_spsc_max_record(r), 1, 5));
	warp_spsc_destroy(r);
}

Test(spsc, padding_record_is_skipped_and_counted_in_used)
{
	const size_t cap = 4096;
	warp_spsc_t *r = make_ring(cap);
	advance_empty(r, cap - 64); /* 64 bytes left before the end */
	cr_assert(push(r, 48, 1, 1)); /* 56 bytes, fits: 8 left */
	cr_expect_eq(warp_spsc_used(r), 56);
	cr_assert(push(r, 8, 2, 2)); /* 16 bytes: pads 8, goes to offset 0 */
	cr_expect_eq(warp_spsc_used(r), 56 + 8 + 16);
	cr_assert(push(r, 0, 3, 3)); /* exactly at the end: no pad needed */
	cr_expect_eq(warp_spsc_used(r), 56 + 8 + 16 + 8);
	expect_record(r, 48, 1, 1);
	expect_record(r, 8, 2, 2);
	expect_record(r, 0, 3, 3);
	expect_empty(r);
	warp_spsc_release(r);
	cr_expect_eq(warp_spsc_used(r), 0);

	/* A record ending exactly at the buffer end needs no padding. */
	advance_empty(r, cap - 24);
	cr_assert(push(r, 16, 4, 4));
	cr_assert(push(r, 16, 5, 5));
	cr_expect_eq(warp_spsc_used(r), 48);
	expect_record(r, 16, 4, 4);
	expect_record(r, 16, 5, 5);
	warp_spsc_release(r);
	warp_spsc_destroy(r);
}

/* ---- wrap-around ------------------------------------------------------- */

struct model_rec {
	uint64_t seed;
	uint64_t end; /* position just past the record */
	uint32_t len, type;
};

/* One thread, random sizes and batch sizes over a small ring, against a model
 * of the positions: every reserve must succeed exactly when the model says
 * the record (plus any padding) fits, and used() must match the model. */
static void wraparound_run(size_t cap, uint64_t records, uint64_t seed)
{
	warp_spsc_t *r = make_ring(cap);
	const uint32_t max = (uint32_t)warp_spsc_max_record(r);
	const size_t qcap = cap / HDR + 1; /* more than the ring can hold */
	struct model_rec *q = calloc(qcap, sizeof(*q));
	cr_assert_not_null(q);
	size_t qh = 0, qt = 0, qread = 0; /* FIFO: released / pushed / read */
	uint64_t tail = 0, pend = 0, head = 0, rd = 0; /* model positions */
	uint64_t rng = seed, next = 0, pads = 0, fulls = 0, exact_end = 0;

	while (next < records || qh != qt) {
		/* Producer: a batch of reserves, then one commit. */
		uint64_t batch = 1 + rng_next(&rng) % 8;
		for (uint64_t b = 0; b < batch && next < records; b++) {
			uint64_t x = rng_next(&rng);
			uint32_t len;
			switch (x % 4) {
			case 0:
				len = (uint32_t)((x >> 8) % 16);
				break;
			case 1:
				len = (uint32_t)((x >> 8) % 300);
				break;
			case 2:
				len = (uint32_t)((x >> 8) % (max + 1));
				break;
			default:
				len = max - (uint32_t)((x >> 8) % 64);
				break;
			}
			uint64_t need = rec_total(len);
			uint64_t rem = cap - (pend % cap);
			uint64_t total = need <= rem ? need : rem + need;
			int fits = pend + total - head <= cap;
			uint32_t type = (uint32_t)(next % 1000) + 1;
			void *p = warp_spsc_reserve(r, len, type);
			cr_assert_eq(p != NULL, fits,
				     "record %llu len %u: reserve %s but model says %s (used %llu)",
				     (unsigned long long)next, len, p ? "succeeded" : "failed",
				     fits ? "fits" : "full", (unsigned long long)(pend - head));
			if (!p) {
				fulls++;
				break;
			}
			fill_pattern(p, len, next);
			if (need > rem)
				pads++;
			if (need == rem)
				exact_end++;
			pend += total;
			q[qt % qcap] = (struct model_rec){next, pend, len, type};
			qt++;
			next++;
		}
		warp_spsc_commit(r);
		tail = pend;
		cr_assert_eq(warp_spsc_used(r), tail - head);

		/* Consumer: a batch of reads, then one release. */
		batch = 1 + rng_next(&rng) % 8;
		for (uint64_t b = 0; b < batch; b++) {
			uint32_t len, type;
			const void *p = warp_spsc_read(r, &len, &type);
			if (qread == qt) {
				cr_assert_null(p, "read beyond the committed records");
				break;
			}
			struct model_rec *m = &q[qread % qcap];
			cr_assert_not_null(p, "record %llu missing", (unsigned long long)m->seed);
			cr_assert_eq(len, m->len, "record %llu", (unsigned long long)m->seed);
			cr_assert_eq(type, m->type, "record %llu", (unsigned long long)m->seed);
			long bad = check_pattern(p, len, m->seed);
			cr_assert_eq(bad, -1, "record %llu byte %ld", (unsigned long long)m->seed,
				     bad);
			rd = m->end;
			qread++;
		}
		if (rng_next(&rng) % 4 != 0) { /* sometimes hold on to what was read */
			warp_spsc_release(r);
			head = rd;
			qh = qread;
		} else if (qread == qt && next == records) {
			warp_spsc_release(r);
			head = rd;
			qh = qread;
		}
		cr_assert_eq(warp_spsc_used(r), tail - head);
	}
	expect_empty(r);
	cr_expect_eq(warp_spsc_used(r), 0);
	cr_expect_gt(tail / cap, 100, "only %llu laps", (unsigned long long)(tail / cap));
	cr_expect_gt(pads, 100, "padding exercised only %llu times", (unsigned long long)pads);
	cr_expect_gt(fulls, 100, "full ring hit only %llu times", (unsigned long long)fulls);
	cr_expect_gt(exact_end, 0, "no record ended exactly at the buffer end");
	free(q);
	warp_spsc_destroy(r);
}

Test(spsc, wraparound_many_cycles_varied_sizes_with_padding_checks_every_byte)
{
	/* ThreadSanitizer instruments every byte checked: fewer records there. */
	const uint64_t scale = SANITIZED == 2 ? 4 : 1;
	wraparound_run(4096, 200000 / scale, 1);
	wraparound_run(8192, 100000 / scale, 2);
}

Test(spsc, max_record_fits_in_empty_ring_at_every_offset)
{
	size_t caps[] = {4096, 8192};
	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		const size_t cap = caps[c];
		for (size_t off = 0; off < cap; off += HDR) {
			warp_spsc_t *r = make_ring(cap);
			const uint32_t max = (uint32_t)warp_spsc_max_record(r);
			advance_empty(r, off);
			cr_assert(push(r, max, 8, off), "cap %zu offset %zu: max record rejected",
				  cap, off);
			size_t pad = cap - off >= cap / 2 ? 0 : cap - off;
			cr_expect_eq(warp_spsc_used(r), pad + cap / 2, "cap %zu offset %zu", cap,
				     off);
			expect_record(r, max, 8, off);
			expect_empty(r);
			warp_spsc_release(r);
			cr_expect_eq(warp_spsc_used(r), 0);
			/* And again from wherever that left the ring. */
			cr_assert(push(r, max, 8, off + 1), "cap %zu offset %zu (2nd)", cap, off);
			expect_record(r, max, 8, off + 1);
			warp_spsc_destroy(r);
		}
	}
}

/* warp_spsc_fits answers what warp_spsc_reserve then does, at every offset
 * and fill level, padding at the end of the buffer included; and it sees a
 * release the producer has not looked at yet. */
Test(spsc, fits_predicts_reserve_exactly)
{
	const size_t cap = 4096;
	uint64_t seed = 7;
	warp_spsc_t *r = make_ring(cap);
	size_t yes = 0, no = 0;
	for (int step = 0; step < 20000; step++) {
		seed = mix64(seed + (uint64_t)step);
		uint32_t len = (uint32_t)(seed % (warp_spsc_max_record(r) + 40));
		bool fits = warp_spsc_fits(r, len);
		void *p = warp_spsc_reserve(r, len, 1);
		cr_assert_eq(fits, p != NULL, "step %d: len %u, fits said %d", step, len, fits);
		if (p) {
			yes++;
			warp_spsc_commit(r);
		} else {
			no++;
		}
		if ((seed >> 40) % 3 == 0) { /* the consumer reads and frees some */
			uint32_t l, t;
			int k = (int)((seed >> 20) % 4);
			while (k-- && warp_spsc_read(r, &l, &t))
				;
			warp_spsc_release(r);
		}
	}
	cr_assert_gt(yes, 1000);
	cr_assert_gt(no, 1000, "full rings were tried too");
	/* a release the producer has not looked at yet */
	warp_spsc_destroy(r);
	r = make_ring(cap);
	while (warp_spsc_reserve(r, 100, 1))
		warp_spsc_commit(r);
	cr_assert_not(warp_spsc_fits(r, 100));
	uint32_t l, t;
	cr_assert_not_null(warp_spsc_read(r, &l, &t));
	warp_spsc_release(r);
	cr_assert(warp_spsc_fits(r, 100), "the freed record's room is seen");
	cr_assert_not(warp_spsc_fits(r, (uint32_t)warp_spsc_max_record(r) + 1));
	warp_spsc_destroy(r);
}

/* ---- batching ---------------------------------------------------------- */

Test(spsc, batch_of_reserves_becomes_visible_at_once_on_one_commit)
{
	warp_spsc_t *r = make_ring(4096);
	advance_empty(r, 4096 - 200); /* so the batch wraps and pads */
	const unsigned n = 20;
	uint64_t bytes = 0, pos = 4096 - 200;
	for (unsigned i = 0; i < n; i++) {
		uint32_t len = 10 + i * 3;
		void *p = warp_spsc_reserve(r, len, i + 1);
		cr_assert_not_null(p, "reserve %u", i);
		fill_pattern(p, len, i);
		uint64_t rem = 4096 - pos % 4096, t = rec_total(len);
		uint64_t step = t <= rem ? t : rem + t;
		bytes += step;
		pos += step;
		expect_empty(r);
		cr_expect_eq(warp_spsc_used(r), 0, "uncommitted batch counted as used");
	}
	warp_spsc_commit(r);
	cr_expect_eq(warp_spsc_used(r), bytes);
	for (unsigned i = 0; i < n; i++)
		expect_record(r, 10 + i * 3, i + 1, i);
	expect_empty(r);
	warp_spsc_destroy(r);
}

Test(spsc, batch_of_reads_is_freed_at_once_by_one_release)
{
	warp_spsc_t *r = make_ring(4096);
	size_t n = 0;
	while (push(r, 24, 1, n)) /* 32 bytes each */
		n++;
	cr_assert_eq(n, 4096 / 32);
	/* Release a prefix of 3: exactly their 96 bytes come back. */
	for (size_t i = 0; i < 3; i++)
		expect_record(r, 24, 1, i);
	cr_expect_eq(warp_spsc_used(r), 4096);
	warp_spsc_release(r);
	cr_expect_eq(warp_spsc_used(r), 4096 - 96);
	/* Then read all the rest with one release at the end. */
	for (size_t i = 3; i < n; i++) {
		expect_record(r, 24, 1, i);
		cr_expect_eq(warp_spsc_used(r), 4096 - 96);
		/* 104 bytes needed, only the 96 released ones are free. */
		cr_expect_null(warp_spsc_reserve(r, 96, 1), "space of unreleased reads reused");
	}
	expect_empty(r);
	warp_spsc_release(r);
	cr_expect_eq(warp_spsc_used(r), 0);
	n = 0;
	while (push(r, 24, 1, 1000 + n))
		n++;
	cr_expect_eq(n, 4096 / 32, "one release did not free the whole batch");
	warp_spsc_destroy(r);
}

/* ---- two threads ------------------------------------------------------- */

#define STRESS_MAX_LEN 200u

struct stress {
	warp_spsc_t *r;
	uint64_t n;
	_Atomic int stop;     /* set on failure: everyone bails out */
	_Atomic int finished; /* consumer done */
	uint64_t received;
	uint64_t producer_full, consumer_empty;
	char err[256];
	char observer_err[128];
};

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Record `seq`: length and type derive from seq; the payload is
 * [seq: 8 bytes][pattern][fnv1a of everything before: 4 bytes] when long
 * enough, else just pattern bytes. */
static uint32_t stress_len(uint64_t seq)
{
	return (uint32_t)(mix64(seq ^ 0x5eed) % (STRESS_MAX_LEN + 1));
}

static uint32_t stress_type(uint64_t seq)
{
	return (uint32_t)(seq % 0xfffffffeu) + 1;
}

static void stress_fill(uint8_t *p, uint32_t len, uint64_t seq)
{
	fill_pattern(p, len, seq);
	if (len >= 8)
		memcpy(p, &seq, 8);
	if (len >= 12) {
		uint32_t sum = fnv1a(p, len - 4);
		memcpy(p + len - 4, &sum, 4);
	}
}

static int stress_check(struct stress *s, const uint8_t *p, uint32_t len, uint32_t type,
			uint64_t seq)
{
	if (len != stress_len(seq) || type != stress_type(seq)) {
		snprintf(s->err, sizeof(s->err), "record %llu: len %u type %u, want %u %u",
			 (unsigned long long)seq, len, type, stress_len(seq), stress_type(seq));
		return 0;
	}
	uint32_t body_end = len;
	if (len >= 8) {
		uint64_t got;
		memcpy(&got, p, 8);
		if (got != seq) {
			snprintf(s->err, sizeof(s->err), "expected record %llu, got %llu (%s)",
				 (unsigned long long)seq, (unsigned long long)got,
				 got < seq ? "duplicate" : "lost records");
			return 0;
		}
	}
	if (len >= 12) {
		uint32_t sum;
		memcpy(&sum, p + len - 4, 4);
		if (sum != fnv1a(p, len - 4)) {
			snprintf(s->err, sizeof(s->err), "record %llu: bad checksum",
				 (unsigned long long)seq);
			return 0;
		}
		body_end = len - 4;
	}
	for (uint32_t k = len >= 8 ? 8 : 0; k < body_end; k++) {
		if (p[k] != pattern_byte(seq, k)) {
			snprintf(s->err, sizeof(s->err), "record %llu: byte %u corrupted",
				 (unsigned long long)seq, k);
			return 0;
		}
	}
	return 1;
}

static void *stress_producer(void *arg)
{
	struct stress *s = arg;
	uint64_t rng = 0x1234, seq = 0;
	while (seq < s->n) {
		uint64_t batch = 1 + rng_next(&rng) % 32;
		for (uint64_t b = 0; b < batch && seq < s->n; b++) {
			uint32_t len = stress_len(seq);
			uint8_t *p;
			while (!(p = warp_spsc_reserve(s->r, len, stress_type(seq)))) {
				/* Publish what is reserved, or the consumer could
				 * wait for it forever while we wait for space. */
				warp_spsc_commit(s->r);
				s->producer_full++;
				if (atomic_load_explicit(&s->stop, memory_order_relaxed))
					return NULL;
				sched_yield();
			}
			stress_fill(p, len, seq);
			seq++;
		}
		warp_spsc_commit(s->r);
	}
	return NULL;
}

static void *stress_consumer(void *arg)
{
	struct stress *s = arg;
	uint64_t rng = 0x9876, seq = 0;
	while (seq < s->n) {
		uint64_t batch = 1 + rng_next(&rng) % 32;
		for (uint64_t b = 0; b < batch && seq < s->n; b++) {
			uint32_t len, type;
			const uint8_t *p;
			while (!(p = warp_spsc_read(s->r, &len, &type))) {
				/* Give back what was read, or the producer could
				 * wait for space forever while we wait for data. */
				warp_spsc_release(s->r);
				s->consumer_empty++;
				if (atomic_load_explicit(&s->stop, memory_order_relaxed))
					goto out;
				sched_yield();
			}
			if (!stress_check(s, p, len, type, seq)) {
				atomic_store_explicit(&s->stop, 1, memory_order_relaxed);
				goto out;
			}
			seq++;
		}
		warp_spsc_release(s->r);
	}
	/* Nothing beyond the n records may show up. */
	uint32_t len, type;
	if (warp_spsc_read(s->r, &len, &type)) {
		snprintf(s->err, sizeof(s->err), "extra record after the last one");
		atomic_store_explicit(&s->stop, 1, memory_order_relaxed);
	}
out:
	warp_spsc_release(s->r);
	s->received = seq;
	atomic_store_explicit(&s->finished, 1, memory_order_release);
	return NULL;
}

/* used() from a third thread: always a multiple of 8 within [0, capacity]. */
static void *stress_observer(void *arg)
{
	struct stress *s = arg;
	size_t cap = warp_spsc_capacity(s->r);
	while (!atomic_load_explicit(&s->finished, memory_order_acquire)) {
		size_t u = warp_spsc_used(s->r);
		if (u > cap || u % 8) {
			snprintf(s->observer_err, sizeof(s->observer_err), "used() = %zu", u);
			break;
		}
		sched_yield();
	}
	return NULL;
}

Test(spsc, two_threads_stress_every_record_arrives_once_in_order_intact, .timeout = 120)
{
	struct stress s = {0};
	/* ~5M records natively; fewer under sanitizers to stay within seconds. */
	s.n = SANITIZED == 0 ? 5000000 : SANITIZED == 1 ? 2000000 : 1000000;
	s.r = make_ring(8192);
	pthread_t prod, cons, obs;
	cr_assert_eq(pthread_create(&cons, NULL, stress_consumer, &s), 0);
	cr_assert_eq(pthread_create(&prod, NULL, stress_producer, &s), 0);
	cr_assert_eq(pthread_create(&obs, NULL, stress_observer, &s), 0);
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	pthread_join(obs, NULL);
	cr_assert_eq(s.err[0], '\0', "%s", s.err);
	cr_assert_eq(s.observer_err[0], '\0', "%s", s.observer_err);
	cr_assert_eq(s.received, s.n, "received %llu of %llu records",
		     (unsigned long long)s.received, (unsigned long long)s.n);
	cr_expect_eq(warp_spsc_used(s.r), 0);
	expect_empty(s.r);
	cr_log_info("stress: %llu records, producer saw full %llu times, consumer saw empty %llu "
		    "times",
		    (unsigned long long)s.n, (unsigned long long)s.producer_full,
		    (unsigned long long)s.consumer_empty);
	warp_spsc_destroy(s.r);
}
