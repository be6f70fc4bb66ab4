/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Benchmark timestamps: the TSC, calibrated against CLOCK_MONOTONIC, when
 * the CPU says it is invariant (constant_tsc and nonstop_tsc in
 * /proc/cpuinfo); CLOCK_MONOTONIC otherwise. Shared by warp-bench and the
 * raw baselines so every number in one table is taken the same way.
 */
#ifndef WARP_BENCH_CLOCK_H
#define WARP_BENCH_CLOCK_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct bench_clock {
	int tsc;           /* 1: TSC, 0: CLOCK_MONOTONIC */
	double ns_per_tick;
	double overhead_ns; /* cost of one reading */
	const char *name;
};

static inline uint64_t bench_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_ticks(const struct bench_clock *c)
{
#if defined(__x86_64__)
	if (c->tsc) {
		uint32_t lo, hi;
		__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
		return ((uint64_t)hi << 32) | lo;
	}
#endif
	(void)c;
	return bench_mono_ns();
}

static inline uint64_t bench_ticks_to_ns(const struct bench_clock *c, uint64_t ticks)
{
	return c->tsc ? (uint64_t)((double)ticks * c->ns_per_tick) : ticks;
}

static inline int bench_tsc_invariant(void)
{
#if defined(__x86_64__)
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return 0;
	char line[4096];
	int ok = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) == 0) {
			ok = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
			break;
		}
	}
	fclose(f);
	return ok;
#else
	return 0;
#endif
}

/* Calibrate over ~100 ms; force_mono selects CLOCK_MONOTONIC. */
static inline void bench_clock_init(struct bench_clock *c, int force_mono)
{
	c->tsc = !force_mono && bench_tsc_invariant();
	c->ns_per_tick = 1.0;
	c->name = c->tsc ? "TSC (invariant, calibrated against CLOCK_MONOTONIC)" : "CLOCK_MONOTONIC";
	if (c->tsc) {
		uint64_t n0 = bench_mono_ns(), t0 = bench_ticks(c);
		while (bench_mono_ns() - n0 < 100000000ull)
			;
		uint64_t n1 = bench_mono_ns(), t1 = bench_ticks(c);
		c->ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
	}
	uint64_t a = bench_ticks(c);
	for (int i = 0; i < 1000000; i++)
		(void)bench_ticks(c);
	c->overhead_ns = (double)bench_ticks_to_ns(c, bench_ticks(c) - a) / 1e6;
}

#endif
