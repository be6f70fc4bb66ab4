/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "engine/pool.h"
#include "warp/error.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
	rng_state = s ? s : 0x9e3779b97f4a7c15ull;
}

static uint64_t rng_next(void) /* xorshift64* */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Uniform in lo..hi inclusive. */
static uint64_t rng_range(uint64_t lo, uint64_t hi)
{
	return lo + rng_next() % (hi - lo + 1);
}

/* The block size the buddy allocator hands out for a request of n bytes. */
static uint64_t buddy_rounded(uint64_t n)
{
	uint64_t s = (uint64_t)1 << WARP_BUDDY_MIN_SHIFT;
	while (s < n)
		s <<= 1;
	return s;
}

static uint64_t pattern_word(uint64_t tag, uint64_t i)
{
	uint64_t x = (tag + 1) * 0x9e3779b97f4a7c15ull ^ (i + 1) * 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 31);
}

/* Blocks are at least 64 bytes and 64-byte aligned, so word access is fine. */
static void pattern_fill(void *p, uint64_t size, uint64_t tag)
{
	uint64_t *w = p;
	for (uint64_t i = 0; i < size / 8; i++)
		w[i] = pattern_word(tag, i);
}

static int pattern_ok(const void *p, uint64_t size, uint64_t tag)
{
	const uint64_t *w = p;
	for (uint64_t i = 0; i < size / 8; i++)
		if (w[i] != pattern_word(tag, i))
			return 0;
	return 1;
}

/* ---- packet pool -------------------------------------------------------- */

#define PP_N 64
#define PP_SIZE 1500

Test(pktpool, get_until_empty_returns_null_and_counts_empty_events)
{
	struct warp__pktpool pp;
	struct warp_pkt *got[PP_N];
	cr_assert_eq(warp__pktpool_init(&pp, PP_N, PP_SIZE), 0);
	cr_assert_eq(pp.empty_events, 0);
	for (unsigned i = 0; i < PP_N; i++) {
		got[i] = warp__pkt_get(&pp);
		cr_assert_not_null(got[i], "get %u of %u", i, PP_N);
	}
	cr_assert_eq(pp.nfree, 0);
	cr_assert_null(warp__pkt_get(&pp));
	cr_assert_eq(pp.empty_events, 1);
	cr_assert_null(warp__pkt_get(&pp));
	cr_assert_null(warp__pkt_get(&pp));
	cr_assert_eq(pp.empty_events, 3);
	for (unsigned i = 0; i < PP_N; i++)
		warp__pkt_put(&pp, got[i]);
	cr_assert_eq(pp.nfree, PP_N);
	cr_assert_eq(pp.empty_events, 3, "put does not touch the counter");
	warp__pktpool_fini(&pp);
}

Test(pktpool, put_back_then_get_again_reuses_the_buffer_with_len_reset)
{
	struct warp__pktpool pp;
	cr_assert_eq(warp__pktpool_init(&pp, 4, PP_SIZE), 0);
	struct warp_pkt *a = warp__pkt_get(&pp);
	cr_assert_not_null(a);
	a->len = 777;
	a->data[0] = 0x5a;
	warp__pkt_put(&pp, a);
	struct warp_pkt *b = warp__pkt_get(&pp);
	cr_assert_eq(b, a, "LIFO: the buffer just put back comes out first");
	cr_assert_eq(b->len, 0, "len reset on get");
	cr_assert_eq(b->cap, a->cap);

	/* Drain, put everything back, drain again: the same set comes out. */
	struct warp_pkt *first[4], *second[4];
	first[0] = b;
	for (int i = 1; i < 4; i++)
		cr_assert_not_null(first[i] = warp__pkt_get(&pp));
	cr_assert_null(warp__pkt_get(&pp));
	for (int i = 0; i < 4; i++)
		warp__pkt_put(&pp, first[i]);
	for (int i = 0; i < 4; i++)
		cr_assert_not_null(second[i] = warp__pkt_get(&pp));
	cr_assert_null(warp__pkt_get(&pp));
	for (int i = 0; i < 4; i++) {
		int found = 0;
		for (int j = 0; j < 4; j++)
			found += second[j] == first[i];
		cr_assert_eq(found, 1, "packet %d handed out exactly once again", i);
	}
	warp__pktpool_fini(&pp);
}

Test(pktpool, buffers_are_distinct_cache_line_aligned_and_large_enough)
{
	static const uint32_t sizes[] = { 1, 63, 64, 65, 1472, 1500, 9000 };
	for (size_t s = 0; s < WARP__ARRAY_LEN(sizes); s++) {
		struct warp__pktpool pp;
		struct warp_pkt *got[PP_N];
		cr_assert_eq(warp__pktpool_init(&pp, PP_N, sizes[s]), 0);
		for (unsigned i = 0; i < PP_N; i++) {
			struct warp_pkt *p = got[i] = warp__pkt_get(&pp);
			cr_assert_not_null(p);
			cr_assert_eq((uintptr_t)p->data % WARP_CACHE_LINE, 0,
				     "size %u pkt %u: data %p not cache-line aligned", sizes[s], i,
				     (void *)p->data);
			cr_assert_geq(p->cap, sizes[s], "size %u pkt %u: cap %u", sizes[s], i,
				      p->cap);
			cr_assert_lt(p->idx, PP_N);
			cr_assert_eq(&pp.pkts[p->idx], p, "idx names the packet's own slot");
			/* The whole capacity is writable (ASan checks the bounds). */
			memset(p->data, (int)(i + 1), p->cap);
		}
		for (unsigned i = 0; i < PP_N; i++)
			for (unsigned j = i + 1; j < PP_N; j++) {
				cr_assert_neq(got[i], got[j]);
				const uint8_t *a = got[i]->data, *b = got[j]->data;
				cr_assert(a + got[i]->cap <= b || b + got[j]->cap <= a,
					  "size %u: buffers %u and %u overlap", sizes[s], i, j);
			}
		/* No write spilled into a neighbour. */
		for (unsigned i = 0; i < PP_N; i++)
			for (uint32_t k = 0; k < got[i]->cap; k++)
				cr_assert_eq(got[i]->data[k], (uint8_t)(i + 1));
		warp__pktpool_fini(&pp);
	}
}

Test(pktpool, get_and_put_allocate_nothing)
{
	struct warp__pktpool pp;
	struct warp_pkt *got[PP_N];
	cr_assert_eq(warp__pktpool_init(&pp, PP_N, PP_SIZE), 0);
	uint64_t before = warp__alloc_count_thread();
	for (int round = 0; round < 100; round++) {
		for (unsigned i = 0; i < PP_N; i++)
			got[i] = warp__pkt_get(&pp);
		cr_assert_null(warp__pkt_get(&pp));
		for (unsigned i = 0; i < PP_N; i++)
			warp__pkt_put(&pp, got[PP_N - 1 - i]);
	}
	cr_assert_eq(warp__alloc_count_thread(), before);
	warp__pktpool_fini(&pp);
}

/* ---- index pool --------------------------------------------------------- */

Test(idxpool, hands_out_every_index_exactly_once)
{
	enum { N = 1000 };
	static unsigned seen[N];
	struct warp__idxpool ip;
	cr_assert_eq(warp__idxpool_init(&ip, N), 0);
	uint64_t before = warp__alloc_count_thread();
	for (int round = 0; round < 2; round++) {
		memset(seen, 0, sizeof(seen));
		int64_t got[N];
		for (unsigned i = 0; i < N; i++) {
			int64_t x = warp__idx_get(&ip);
			cr_assert(x >= 0 && x < N, "round %d get %u: %lld", round, i, (long long)x);
			cr_assert_eq(seen[x], 0, "index %lld handed out twice", (long long)x);
			seen[x]++;
			got[i] = x;
		}
		cr_assert_eq(warp__idx_get(&ip), -1, "empty pool");
		cr_assert_eq(warp__idx_get(&ip), -1);
		/* Put back in a scrambled order; the next round must still see each once. */
		for (unsigned i = 0; i < N; i++)
			warp__idx_put(&ip, (uint32_t)got[(i * 7919u) % N]);
		cr_assert_eq(ip.nfree, N);
	}
	cr_assert_eq(warp__alloc_count_thread(), before);
	warp__idxpool_fini(&ip);
}

Test(idxpool, empty_pool_returns_minus_one)
{
	struct warp__idxpool ip;
	cr_assert_eq(warp__idxpool_init(&ip, 0), 0);
	cr_assert_eq(warp__idx_get(&ip), -1);
	warp__idxpool_fini(&ip);
}

/* ---- buddy allocator ---------------------------------------------------- */

Test(buddy, init_rounds_the_arena_up_to_a_power_of_two_of_at_least_4096)
{
	struct warp__buddy b;
	cr_assert_eq(warp__buddy_init(&b, 0), 0);
	cr_assert_eq(b.size, 4096);
	cr_assert_eq(warp__buddy_max(&b), 4096);
	cr_assert_eq(b.in_use, 0);
	warp__buddy_fini(&b);
	cr_assert_eq(warp__buddy_init(&b, 5000), 0);
	cr_assert_eq(b.size, 8192);
	warp__buddy_fini(&b);
	cr_assert_eq(warp__buddy_init(&b, 65536), 0);
	cr_assert_eq(b.size, 65536);
	warp__buddy_fini(&b);
}

Test(buddy, small_requests_round_to_64_byte_blocks_and_powers_of_two)
{
	struct warp__buddy b;
	cr_assert_eq(warp__buddy_init(&b, 4096), 0);
	static const struct {
		uint64_t n, block;
	} cases[] = { { 0, 64 }, { 1, 64 }, { 63, 64 }, { 64, 64 }, { 65, 128 },
		      { 128, 128 }, { 129, 256 }, { 1000, 1024 } };
	for (size_t i = 0; i < WARP__ARRAY_LEN(cases); i++) {
		uint64_t before = b.in_use;
		uint8_t *p = warp__buddy_alloc(&b, cases[i].n);
		cr_assert_not_null(p, "alloc(%llu)", (unsigned long long)cases[i].n);
		cr_assert_eq(b.in_use - before, cases[i].block, "alloc(%llu) took %llu bytes",
			     (unsigned long long)cases[i].n,
			     (unsigned long long)(b.in_use - before));
		uint64_t off = (uint64_t)(p - b.mem);
		cr_assert_lt(off, b.size);
		cr_assert_eq(off % cases[i].block, 0, "block aligned to its size");
		memset(p, 0xa5, cases[i].block); /* the whole block is ours */
		warp__buddy_free(&b, p);
		cr_assert_eq(b.in_use, before);
	}
	cr_assert_eq(b.in_use, 0);
	warp__buddy_fini(&b);
}

Test(buddy, whole_arena_block_fits_an_empty_arena_and_then_nothing_else)
{
	struct warp__buddy b;
	cr_assert_eq(warp__buddy_init(&b, 65536), 0);
	uint64_t whole = warp__buddy_max(&b);
	void *p = warp__buddy_alloc(&b, whole);
	cr_assert_eq(p, b.mem);
	cr_assert_eq(b.in_use, whole);
	cr_assert_null(warp__buddy_alloc(&b, 0));
	cr_assert_null(warp__buddy_alloc(&b, 1));
	cr_assert_null(warp__buddy_alloc(&b, whole));
	warp__buddy_free(&b, p);
	cr_assert_eq(b.in_use, 0);
	cr_assert_eq(warp__buddy_alloc(&b, whole), b.mem, "free block of the whole arena again");
	warp__buddy_fini(&b);
}

/* Lazy coalescing: a freed small block waits whole in its order's quick
 * list and is the next one handed out; the list is bounded, and a request
 * nothing else can satisfy drains it and merges the blocks back. */
Test(buddy, freed_small_blocks_are_reused_at_once_and_merged_back_when_needed)
{
	struct warp__buddy b;
	cr_assert_eq(warp__buddy_init(&b, 1u << 20), 0);
	void *p = warp__buddy_alloc(&b, 100); /* a 128-byte block */
	cr_assert_not_null(p);
	warp__buddy_free(&b, p);
	cr_assert_eq(b.in_use, 0);
	cr_assert_eq(b.nquick[1], 1);
	cr_assert_eq(warp__buddy_alloc(&b, 120), p, "the quick list hands the block back");
	cr_assert_eq(b.nquick[1], 0);
	warp__buddy_free(&b, p);
	/* fill more than the bound, free everything */
	enum { N = WARP_BUDDY_QUICK_MAX + 100 };
	static void *v[N];
	for (int i = 0; i < N; i++)
		cr_assert_not_null(v[i] = warp__buddy_alloc(&b, 64));
	for (int i = 0; i < N; i++)
		warp__buddy_free(&b, v[i]);
	cr_assert_eq(b.nquick[0], WARP_BUDDY_QUICK_MAX, "bounded");
	cr_assert_eq(b.in_use, 0);
	/* only the whole arena merged back can satisfy this */
	cr_assert_eq(warp__buddy_alloc(&b, 1u << 20), b.mem);
	for (unsigned o = 0; o < WARP_BUDDY_QUICK_ORDERS; o++)
		cr_assert_eq(b.nquick[o], 0);
	warp__buddy_fini(&b);
}

Test(buddy, larger_than_the_arena_returns_null)
{
	struct warp__buddy b;
	cr_assert_eq(warp__buddy_init(&b, 65536), 0);
	cr_assert_null(warp__buddy_alloc(&b, 65537));
	cr_assert_null(warp__buddy_alloc(&b, 1ull << 40));
	cr_assert_null(warp__buddy_alloc(&b, UINT64_MAX));
	cr_assert_eq(b.in_use, 0);
	cr_assert_not_null(warp__buddy_alloc(&b, 65536), "failed requests change nothing");
	warp__buddy_fini(&b);
}

Test(buddy, free_null_is_a_no_op)
{
	struct warp__buddy b;
	cr_assert_eq(warp__buddy_init(&b, 4096), 0);
	void *p = warp__buddy_alloc(&b, 100);
	uint64_t in_use = b.in_use;
	warp__buddy_free(&b, NULL);
	cr_assert_eq(b.in_use, in_use);
	warp__buddy_free(&b, p);
	cr_assert_eq(b.in_use, 0);
	cr_assert_eq(warp__buddy_alloc(&b, 4096), b.mem);
	warp__buddy_fini(&b);
}

/* Fill the arena with minimum blocks, free them in an order, and check the
 * arena coalesces back into one block. */
static void fill_with_min_blocks_then_free(int order_kind)
{
	enum { ARENA = 65536, NB = ARENA / 64 };
	static void *blk[NB];
	struct warp__buddy b;
	cr_assert_eq(warp__buddy_init(&b, ARENA), 0);
	uint64_t before = warp__alloc_count_thread();
	for (unsigned i = 0; i < NB; i++)
		cr_assert_not_null(blk[i] = warp__buddy_alloc(&b, 1), "block %u", i);
	cr_assert_null(warp__buddy_alloc(&b, 1));
	cr_assert_eq(b.in_use, ARENA);
	if (order_kind == 1) { /* reverse */
		for (unsigned i = 0; i < NB / 2; i++) {
			void *t = blk[i];
			blk[i] = blk[NB - 1 - i];
			blk[NB - 1 - i] = t;
		}
	} else if (order_kind == 2) { /* shuffled */
		rng_seed(42);
		for (unsigned i = NB - 1; i > 0; i--) {
			unsigned j = (unsigned)rng_range(0, i);
			void *t = blk[i];
			blk[i] = blk[j];
			blk[j] = t;
		}
	}
	for (unsigned i = 0; i < NB; i++)
		warp__buddy_free(&b, blk[i]);
	cr_assert_eq(b.in_use, 0);
	cr_assert_eq(warp__buddy_alloc(&b, ARENA), b.mem, "order %d: arena coalesced", order_kind);
	cr_assert_eq(warp__alloc_count_thread(), before);
	warp__buddy_fini(&b);
}

Test(buddy, freeing_all_min_blocks_in_order_coalesces_the_arena)
{
	fill_with_min_blocks_then_free(0);
}

Test(buddy, freeing_all_min_blocks_in_reverse_coalesces_the_arena)
{
	fill_with_min_blocks_then_free(1);
}

Test(buddy, freeing_all_min_blocks_shuffled_coalesces_the_arena)
{
	fill_with_min_blocks_then_free(2);
}

/* Randomized run against a reference model. The model keeps, per minimum
 * block of the arena, which live allocation owns it (0 = free). */
#define RB_ARENA (256u * 1024u)
#define RB_CELLS (RB_ARENA >> WARP_BUDDY_MIN_SHIFT)
#define RB_MAX_LIVE RB_CELLS
#define RB_OPS 100000

struct rb_live {
	uint8_t *p;
	uint64_t size; /* rounded block size */
	uint64_t tag;
};

static struct rb_live rb_live[RB_MAX_LIVE];
static uint32_t rb_owner[RB_CELLS]; /* 1 + tag of the owner, 0 = free */

/* Is there an aligned, completely free region of `size` bytes in the model? */
static int model_has_free_region(uint64_t size)
{
	uint64_t cells = size >> WARP_BUDDY_MIN_SHIFT;
	for (uint64_t start = 0; start < RB_CELLS; start += cells) {
		uint64_t c = 0;
		while (c < cells && rb_owner[start + c] == 0)
			c++;
		if (c == cells)
			return 1;
	}
	return 0;
}

static uint64_t random_request(void)
{
	/* Half uniform over 1..arena/8, half log-uniform so small sizes and
	 * exact powers of two (and +-1 around them) are common too. */
	uint64_t max = RB_ARENA / 8;
	switch (rng_next() % 4) {
	case 0:
	case 1:
		return rng_range(1, max);
	case 2: {
		uint64_t hi = (uint64_t)1 << rng_range(0, 15); /* 1..32768 */
		return rng_range(hi / 2 + 1, hi);
	}
	default: {
		uint64_t s = (uint64_t)1 << rng_range(0, 15);
		s = s + rng_range(0, 2) - 1; /* s-1, s, s+1 */
		if (s < 1)
			s = 1;
		return s > max ? max : s;
	}
	}
}

Test(buddy, random_alloc_free_matches_a_reference_model_and_coalesces_fully)
{
	const uint64_t seed = 0x5eed0001ull;
	struct warp__buddy b;
	cr_assert_eq(warp__buddy_init(&b, RB_ARENA), 0);
	cr_assert_eq(b.size, RB_ARENA);
	memset(rb_owner, 0, sizeof(rb_owner));
	rng_seed(seed);
	uint32_t nlive = 0;
	uint64_t model_in_use = 0, next_tag = 0;
	uint64_t n_alloc = 0, n_null = 0, n_free = 0;
	uint64_t allocs_before = warp__alloc_count_thread();

	for (uint32_t op = 0; op < RB_OPS; op++) {
		int do_alloc = nlive == 0 || (nlive < RB_MAX_LIVE && rng_next() % 100 < 55);
		if (do_alloc) {
			uint64_t n = random_request();
			uint64_t size = buddy_rounded(n);
			uint8_t *p = warp__buddy_alloc(&b, n);
			if (!p) {
				n_null++;
				cr_assert(!model_has_free_region(size),
					  "seed %llx op %u: alloc(%llu) NULL although an aligned "
					  "%llu-byte region is free",
					  (unsigned long long)seed, op, (unsigned long long)n,
					  (unsigned long long)size);
				cr_assert_eq(b.in_use, model_in_use);
				continue;
			}
			n_alloc++;
			cr_assert(p >= b.mem && p + size <= b.mem + b.size,
				  "seed %llx op %u: block outside the arena", (unsigned long long)seed,
				  op);
			uint64_t off = (uint64_t)(p - b.mem);
			cr_assert_eq(off % size, 0, "seed %llx op %u: block of %llu at offset %llu",
				     (unsigned long long)seed, op, (unsigned long long)size,
				     (unsigned long long)off);
			uint64_t tag = next_tag++;
			for (uint64_t c = off >> WARP_BUDDY_MIN_SHIFT;
			     c < (off + size) >> WARP_BUDDY_MIN_SHIFT; c++) {
				cr_assert_eq(rb_owner[c], 0,
					     "seed %llx op %u: [%llu, %llu) overlaps a live block",
					     (unsigned long long)seed, op, (unsigned long long)off,
					     (unsigned long long)(off + size));
				rb_owner[c] = (uint32_t)(tag + 1);
			}
			pattern_fill(p, size, tag);
			rb_live[nlive++] = (struct rb_live){ p, size, tag };
			model_in_use += size;
		} else {
			uint32_t i = (uint32_t)rng_range(0, nlive - 1);
			struct rb_live l = rb_live[i];
			rb_live[i] = rb_live[--nlive];
			uint64_t off = (uint64_t)(l.p - b.mem);
			cr_assert(pattern_ok(l.p, l.size, l.tag),
				  "seed %llx op %u: block at %llu (%llu bytes) was overwritten",
				  (unsigned long long)seed, op, (unsigned long long)off,
				  (unsigned long long)l.size);
			for (uint64_t c = off >> WARP_BUDDY_MIN_SHIFT;
			     c < (off + l.size) >> WARP_BUDDY_MIN_SHIFT; c++) {
				cr_assert_eq(rb_owner[c], l.tag + 1);
				rb_owner[c] = 0;
			}
			warp__buddy_free(&b, l.p);
			n_free++;
			model_in_use -= l.size;
		}
		cr_assert_eq(b.in_use, model_in_use, "seed %llx op %u: in_use %llu, model %llu",
			     (unsigned long long)seed, op, (unsigned long long)b.in_use,
			     (unsigned long long)model_in_use);
	}
	/* The run must have exercised both success and exhaustion. */
	cr_assert_gt(n_alloc, RB_OPS / 4);
	cr_assert_gt(n_free, RB_OPS / 4);
	cr_assert_gt(n_null, 0);

	while (nlive) {
		struct rb_live l = rb_live[--nlive];
		cr_assert(pattern_ok(l.p, l.size, l.tag), "final free: block overwritten");
		warp__buddy_free(&b, l.p);
		model_in_use -= l.size;
		cr_assert_eq(b.in_use, model_in_use);
	}
	cr_assert_eq(b.in_use, 0);
	cr_assert_eq(warp__alloc_count_thread(), allocs_before, "alloc/free allocated memory");
	void *whole = warp__buddy_alloc(&b, RB_ARENA);
	cr_assert_eq(whole, b.mem, "after freeing everything the arena is one block again");
	cr_assert_null(warp__buddy_alloc(&b, 1));
	warp__buddy_free(&b, whole);
	cr_assert_eq(b.in_use, 0);
	warp__buddy_fini(&b);
}

Test(buddy, alloc_and_free_allocate_nothing)
{
	struct warp__buddy b;
	void *p[64];
	cr_assert_eq(warp__buddy_init(&b, 1u << 20), 0);
	uint64_t before = warp__alloc_count_thread();
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 64; i++)
			p[i] = warp__buddy_alloc(&b, (uint64_t)(i + 1) * 200);
		cr_assert_null(warp__buddy_alloc(&b, 1u << 21));
		for (int i = 0; i < 64; i++)
			warp__buddy_free(&b, p[(i * 37) % 64]);
		warp__buddy_free(&b, NULL);
	}
	cr_assert_eq(b.in_use, 0);
	cr_assert_eq(warp__alloc_count_thread(), before);
	warp__buddy_fini(&b);
}
