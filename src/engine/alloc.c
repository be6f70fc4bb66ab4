/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Counts calls from every thread; relaxed is enough, tests compare values
 * read after joining or from the allocating thread. */
static _Atomic uint64_t alloc_calls;
static _Thread_local uint64_t alloc_calls_thread;

#define COUNT()                                                              \
	do {                                                                 \
		atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed); \
		alloc_calls_thread++;                                        \
	} while (0)

void *warp__malloc(size_t n)
{
	COUNT();
	return malloc(n);
}

void *warp__calloc(size_t n, size_t sz)
{
	COUNT();
	return calloc(n, sz);
}

void *warp__aligned_alloc(size_t align, size_t n)
{
	COUNT();
	size_t rounded = (n + align - 1) / align * align;
	/* Not zeroed: large arenas stay untouched (and unbacked) until used. */
	return aligned_alloc(align, rounded ? rounded : align);
}

void warp__free(void *p)
{
	free(p);
}

uint64_t warp__alloc_count(void)
{
	return atomic_load_explicit(&alloc_calls, memory_order_relaxed);
}

uint64_t warp__alloc_count_thread(void)
{
	return alloc_calls_thread;
}
