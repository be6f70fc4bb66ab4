/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <string.h>

#include "engine/pool.h"
#include "warp/error.h"

int warp__pktpool_init(struct warp__pktpool *pp, uint32_t n, uint32_t buf_size)
{
	memset(pp, 0, sizeof(*pp));
	if (n == 0 || buf_size == 0 || buf_size > (1u << 20))
		return WARP_EINVAL;
	buf_size = (buf_size + WARP_CACHE_LINE - 1) & ~(uint32_t)(WARP_CACHE_LINE - 1);
	pp->pkts = warp__calloc(n, sizeof(*pp->pkts));
	pp->mem = warp__aligned_alloc(WARP_CACHE_LINE, (size_t)n * buf_size);
	pp->free = warp__calloc(n, sizeof(*pp->free));
	if (!pp->pkts || !pp->mem || !pp->free) {
		warp__pktpool_fini(pp);
		return WARP_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		pp->pkts[i].data = pp->mem + (size_t)i * buf_size;
		pp->pkts[i].cap = buf_size;
		pp->pkts[i].idx = i;
		pp->free[i] = n - 1 - i;
	}
	pp->n = pp->nfree = n;
	pp->buf_size = buf_size;
	return 0;
}

void warp__pktpool_fini(struct warp__pktpool *pp)
{
	warp__free(pp->pkts);
	warp__free(pp->mem);
	warp__free(pp->free);
	memset(pp, 0, sizeof(*pp));
}

int warp__idxpool_init(struct warp__idxpool *ip, uint32_t n)
{
	ip->free = warp__calloc(n ? n : 1, sizeof(*ip->free));
	if (!ip->free)
		return WARP_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		ip->free[i] = n - 1 - i;
	ip->n = ip->nfree = n;
	return 0;
}

void warp__idxpool_fini(struct warp__idxpool *ip)
{
	warp__free(ip->free);
	memset(ip, 0, sizeof(*ip));
}

/* ---- buddy allocator ---------------------------------------------------- */

#define META_FREE 0x80u

struct free_node {
	struct free_node *next, *prev;
};

static inline uint64_t blk_index(const struct warp__buddy *b, const void *p)
{
	return (uint64_t)((const uint8_t *)p - b->mem) >> WARP_BUDDY_MIN_SHIFT;
}

static void list_push(struct warp__buddy *b, unsigned order, void *p)
{
	struct free_node *n = p;
	n->prev = NULL;
	n->next = b->free_head[order];
	if (n->next)
		n->next->prev = n;
	b->free_head[order] = n;
	b->meta[blk_index(b, p)] = (uint8_t)(order | META_FREE);
}

static void list_remove(struct warp__buddy *b, unsigned order, void *p)
{
	struct free_node *n = p;
	if (n->prev)
		n->prev->next = n->next;
	else
		b->free_head[order] = n->next;
	if (n->next)
		n->next->prev = n->prev;
	b->meta[blk_index(b, p)] = (uint8_t)order;
}

int warp__buddy_init(struct warp__buddy *b, uint64_t size)
{
	memset(b, 0, sizeof(*b));
	if (size > ((uint64_t)1 << 40))
		return WARP_EINVAL;
	uint64_t s = warp__buddy_arena_size(size);
	unsigned max_order = 0;
	while (((uint64_t)1 << (max_order + WARP_BUDDY_MIN_SHIFT)) < s)
		max_order++;
	if (max_order >= WARP_BUDDY_MAX_ORDERS)
		return WARP_EINVAL;
	b->mem = warp__aligned_alloc(4096, s);
	b->meta = warp__calloc(s >> WARP_BUDDY_MIN_SHIFT, 1);
	if (!b->mem || !b->meta) {
		warp__buddy_fini(b);
		return WARP_ENOMEM;
	}
	b->size = s;
	b->max_order = max_order;
	list_push(b, max_order, b->mem);
	return 0;
}

void warp__buddy_fini(struct warp__buddy *b)
{
	warp__free(b->mem);
	warp__free(b->meta);
	memset(b, 0, sizeof(*b));
}

/* Free a block into the buddy lists, merging it with free buddies. */
static void buddy_release(struct warp__buddy *b, uint8_t *p, unsigned order)
{
	while (order < b->max_order) {
		uint64_t off = (uint64_t)(p - b->mem);
		uint64_t boff = off ^ ((uint64_t)1 << (order + WARP_BUDDY_MIN_SHIFT));
		uint8_t *bp = b->mem + boff;
		if (b->meta[boff >> WARP_BUDDY_MIN_SHIFT] != (uint8_t)(order | META_FREE))
			break;
		list_remove(b, order, bp);
		if (bp < p)
			p = bp;
		order++;
	}
	list_push(b, order, p);
}

/* Give every block of the quick lists back to the buddy lists; whether
 * there was any. */
static bool quick_drain(struct warp__buddy *b)
{
	bool any = false;
	for (unsigned o = 0; o < WARP_BUDDY_QUICK_ORDERS; o++) {
		while (b->quick[o]) {
			struct free_node *n = b->quick[o];
			b->quick[o] = n->next;
			buddy_release(b, (uint8_t *)n, o);
			any = true;
		}
		b->nquick[o] = 0;
	}
	return any;
}

void *warp__buddy_alloc(struct warp__buddy *b, uint64_t n)
{
	if (n > b->size)
		return NULL;
	unsigned order = 0;
	while (((uint64_t)1 << (order + WARP_BUDDY_MIN_SHIFT)) < n)
		order++;
	if (order < WARP_BUDDY_QUICK_ORDERS && b->quick[order]) {
		struct free_node *q = b->quick[order];
		b->quick[order] = q->next;
		b->nquick[order]--;
		b->in_use += (uint64_t)1 << (order + WARP_BUDDY_MIN_SHIFT);
		return q;
	}
	unsigned k = order;
	while (k <= b->max_order && !b->free_head[k])
		k++;
	if (k > b->max_order) /* the blocks kept back may merge into what is asked */
		return quick_drain(b) ? warp__buddy_alloc(b, n) : NULL;
	uint8_t *p = (uint8_t *)b->free_head[k];
	list_remove(b, k, p);
	while (k > order) { /* split: keep the lower half, free the upper */
		k--;
		list_push(b, k, p + ((uint64_t)1 << (k + WARP_BUDDY_MIN_SHIFT)));
	}
	b->meta[blk_index(b, p)] = (uint8_t)order;
	b->in_use += (uint64_t)1 << (order + WARP_BUDDY_MIN_SHIFT);
	return p;
}

void warp__buddy_free(struct warp__buddy *b, void *ptr)
{
	if (!ptr)
		return;
	uint8_t *p = ptr;
	unsigned order = b->meta[blk_index(b, p)] & 0x7fu;
	b->in_use -= (uint64_t)1 << (order + WARP_BUDDY_MIN_SHIFT);
	if (order < WARP_BUDDY_QUICK_ORDERS && b->nquick[order] < WARP_BUDDY_QUICK_MAX) {
		/* kept whole, still marked allocated in meta */
		struct free_node *q = ptr;
		q->next = b->quick[order];
		b->quick[order] = q;
		b->nquick[order]++;
		return;
	}
	buddy_release(b, p, order);
}

