/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-engine memory, all sized at start-up:
 * - warp__pktpool: fixed-size packet buffers for the drivers.
 * - warp__buddy:   a binary buddy allocator over one arena, for message
 *                  bytes (queued sends, partial receives). O(log n) alloc and
 *                  free, no system call, no malloc.
 * - warp__idxpool: a free stack of indices for fixed tables.
 * Single-threaded: the engine thread owns them.
 */
#ifndef WARP_ENGINE_POOL_H
#define WARP_ENGINE_POOL_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "common.h"

typedef struct warp__addr {
	uint8_t len; /* bytes of b in use; 0 = none */
	uint8_t b[39];
} warp__addr_t;

static inline bool warp__addr_eq(const warp__addr_t *a, const warp__addr_t *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* Bytes past the MTU in every packet buffer. */
#define WARP_PKT_SLACK 128u

struct warp_pkt {
	uint8_t *data; /* the warp packet */
	uint32_t len;
	uint32_t cap;
	uint32_t idx; /* in its pool */
	/* A driver's own buffer lent to the engine (DPDK: the received mbuf,
	 * data points into it); released by warp__pkt_put with the pool's
	 * ext_free, which points data back at the pool's buffer. */
	void *ext;
	uint8_t transport; /* engine transport index (set by the engine) */
	uint8_t peer_tp;   /* tx: index in its peer's transports */
	uint32_t peer;     /* tx: the engine's index of the peer it is for */
	uint64_t rx_ns;
	warp__addr_t addr; /* rx: source; tx: destination */
};

struct warp__pktpool {
	struct warp_pkt *pkts;
	uint8_t *mem;
	uint32_t *free;
	uint32_t nfree;
	uint32_t n;
	uint32_t buf_size;
	uint64_t empty_events;
	/* set by the driver that lends buffers (struct warp_pkt.ext) */
	void (*ext_free)(void *ctx, void *ext);
	void *ext_ctx;
};

int warp__pktpool_init(struct warp__pktpool *pp, uint32_t n, uint32_t buf_size);
void warp__pktpool_fini(struct warp__pktpool *pp);

static inline struct warp_pkt *warp__pkt_get(struct warp__pktpool *pp)
{
	if (warp__unlikely(pp->nfree == 0)) {
		pp->empty_events++;
		return NULL;
	}
	struct warp_pkt *p = &pp->pkts[pp->free[--pp->nfree]];
	p->len = 0;
	return p;
}

static inline void warp__pkt_put(struct warp__pktpool *pp, struct warp_pkt *p)
{
	if (p->ext) {
		pp->ext_free(pp->ext_ctx, p->ext);
		p->ext = NULL;
		p->data = pp->mem + (size_t)p->idx * pp->buf_size;
		p->cap = pp->buf_size;
	}
	pp->free[pp->nfree++] = p->idx;
}

struct warp__idxpool {
	uint32_t *free;
	uint32_t nfree;
	uint32_t n;
};

int warp__idxpool_init(struct warp__idxpool *ip, uint32_t n);
void warp__idxpool_fini(struct warp__idxpool *ip);
static inline int64_t warp__idx_get(struct warp__idxpool *ip)
{
	if (warp__unlikely(ip->nfree == 0))
		return -1;
	return ip->free[--ip->nfree];
}
static inline void warp__idx_put(struct warp__idxpool *ip, uint32_t i)
{
	ip->free[ip->nfree++] = i;
}

#define WARP_BUDDY_MIN_SHIFT 6 /* 64-byte blocks */
#define WARP_BUDDY_MAX_ORDERS 40
#define WARP_BUDDY_QUICK_ORDERS 6 /* blocks of 64 B .. 2 KiB */
#define WARP_BUDDY_QUICK_MAX 256  /* blocks kept per order */

struct warp__buddy {
	uint8_t *mem;
	uint8_t *meta; /* one byte per min block: order | 0x80 if free block head */
	uint64_t size; /* power of two */
	unsigned max_order;
	void *free_head[WARP_BUDDY_MAX_ORDERS];
	uint64_t in_use; /* bytes in blocks handed out (not counting the quick lists) */
	/* Freed small blocks kept as they are (lazy coalescing): a message
	 * allocates and frees one small block, and splitting the arena down to
	 * it and merging it back up would touch a free-list node in every
	 * order on the way (a cache line each, far apart). Drained into the
	 * buddy lists when an allocation finds nothing else. */
	void *quick[WARP_BUDDY_QUICK_ORDERS];
	uint32_t nquick[WARP_BUDDY_QUICK_ORDERS];
};

/* The arena warp__buddy_init makes for size bytes: a power of two, at least
 * 4096. A block of n bytes fits in it when n <= that. */
static inline uint64_t warp__buddy_arena_size(uint64_t size)
{
	uint64_t s = 4096;
	while (s < size)
		s <<= 1;
	return s;
}

/* size is rounded up as warp__buddy_arena_size says. */
int warp__buddy_init(struct warp__buddy *b, uint64_t size);
void warp__buddy_fini(struct warp__buddy *b);
/* A block of at least n bytes (n >= 0), or NULL when none is free. */
void *warp__buddy_alloc(struct warp__buddy *b, uint64_t n);
void warp__buddy_free(struct warp__buddy *b, void *p);
/* Largest single allocation that can succeed when the arena is empty. */
static inline uint64_t warp__buddy_max(const struct warp__buddy *b)
{
	return b->size;
}

#endif
