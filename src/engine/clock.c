/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine clock: nanoseconds from the invariant TSC, calibrated once per
 * process against CLOCK_MONOTONIC (20 ms), so reading it costs a few ns
 * instead of a vDSO clock_gettime (measured ~25 ns on the project's VM, and
 * a syscall where the vDSO falls back). Without an invariant TSC (cpuid
 * 0x80000007 EDX bit 8) it is CLOCK_MONOTONIC itself.
 */
#include <pthread.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#include "common.h"

static struct {
	int tsc;
	uint64_t base_tsc, base_ns;
	uint64_t mult; /* ns per tick, 32.32 fixed point */
} clk;
static pthread_once_t clk_once = PTHREAD_ONCE_INIT;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;
	if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
		return;
	uint64_t n0 = mono_ns(), t0 = __rdtsc();
	uint64_t n1, t1;
	do {
		n1 = mono_ns();
		t1 = __rdtsc();
	} while (n1 - n0 < 20000000ull);
	if (t1 <= t0)
		return;
	clk.mult = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0));
	clk.base_tsc = t1;
	clk.base_ns = n1;
	clk.tsc = 1;
#endif
}

void warp__clock_init(void)
{
	pthread_once(&clk_once, calibrate);
}

uint64_t warp__clock_ns(void)
{
#if defined(__x86_64__)
	if (warp__likely(clk.tsc)) {
		uint64_t d = __rdtsc() - clk.base_tsc;
		return clk.base_ns + (uint64_t)(((unsigned __int128)d * clk.mult) >> 32);
	}
#endif
	return mono_ns();
}

int warp__clock_is_tsc(void)
{
	return clk.tsc;
}
