/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lock-free SPSC ring of variable-length records (see warp/spsc.h).
 *
 * Positions (tail, head and the private cursors) are 64-bit byte counts that
 * only grow; the buffer offset is pos & mask. They never wrap in practice, and
 * every comparison is a difference of two positions, so even a wrap of the
 * counters would be harmless.
 *
 *   head <= read <= tail <= reserve,  reserve - head <= capacity
 *
 * [head, read)      read by the consumer, not yet released
 * [read, tail)      committed, not yet read
 * [tail, reserve)   reserved by the producer, not yet committed
 *
 * Each record is an 8-byte header {len, type} followed by the payload, the
 * whole rounded up to 8 bytes. A record never wraps: when it does not fit in
 * the rem bytes left before the end of the buffer, the producer writes a
 * padding record (type 0, len = rem - 8) over them and places the record at
 * offset 0. Everything is 8-aligned and rem is in [8, capacity], so a padding
 * header always fits. A record of total size T <= capacity / 2 then fits in an
 * empty ring at every offset (either T <= rem, or rem < T and rem + T <
 * capacity), hence max_record = capacity / 2 - 8.
 *
 * Synchronisation: the producer publishes records with a release store of
 * tail (commit); the consumer acquire-loads tail before reading headers and
 * payloads. The consumer frees space with a release store of head (release);
 * the producer acquire-loads head before overwriting that space. Each side
 * keeps a cached copy of the other side's index and reloads it only when the
 * cached value says there is not enough room / nothing to read.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "warp/error.h"
#include "warp/spsc.h"

#define SPSC_HDR 8u
#define SPSC_MIN_CAP ((size_t)4096)
#define SPSC_MAX_CAP ((size_t)1 << 31)
#define SPSC_TYPE_PAD 0u

struct spsc_hdr {
	uint32_t len;  /* payload bytes (for padding: bytes after the header) */
	uint32_t type; /* 0 = padding */
};

struct warp_spsc {
	/* Producer line: written by the producer only. */
	alignas(WARP_CACHE_LINE) _Atomic uint64_t tail; /* committed end */
	uint64_t reserve;    /* producer-private: end of reserved records */
	uint64_t head_cache; /* producer's copy of head */

	/* Consumer line: written by the consumer only. */
	alignas(WARP_CACHE_LINE) _Atomic uint64_t head; /* released end */
	uint64_t read;       /* consumer-private: end of records read */
	uint64_t tail_cache; /* consumer's copy of tail */

	/* Read-only after create. */
	alignas(WARP_CACHE_LINE) unsigned char *buf;
	uint64_t mask;
	size_t capacity;
	size_t max_record;
};

_Static_assert(offsetof(struct warp_spsc, head) - offsetof(struct warp_spsc, tail) >=
		       WARP_CACHE_LINE,
	       "producer and consumer fields must not share a cache line");
_Static_assert(offsetof(struct warp_spsc, buf) - offsetof(struct warp_spsc, head) >=
		       WARP_CACHE_LINE,
	       "consumer and read-only fields must not share a cache line");
_Static_assert(sizeof(struct spsc_hdr) == SPSC_HDR, "record header is 8 bytes");

static inline uint64_t spsc_align8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

static inline struct spsc_hdr *spsc_hdr_at(const struct warp_spsc *r, uint64_t pos)
{
	return (struct spsc_hdr *)(void *)(r->buf + (pos & r->mask));
}

int warp_spsc_create(size_t capacity_bytes, warp_spsc_t **out)
{
	if (!out)
		return WARP_EINVAL;
	*out = NULL;
	if (capacity_bytes < SPSC_MIN_CAP || capacity_bytes > SPSC_MAX_CAP ||
	    (capacity_bytes & (capacity_bytes - 1)) != 0)
		return WARP_EINVAL;

	struct warp_spsc *r = warp__aligned_alloc(WARP_CACHE_LINE, sizeof(*r));
	if (!r)
		return WARP_ENOMEM;
	r->buf = warp__aligned_alloc(WARP_CACHE_LINE, capacity_bytes);
	if (!r->buf) {
		warp__free(r);
		return WARP_ENOMEM;
	}
	r->mask = (uint64_t)capacity_bytes - 1;
	r->capacity = capacity_bytes;
	r->max_record = capacity_bytes / 2 - SPSC_HDR;
	r->reserve = 0;
	r->head_cache = 0;
	r->read = 0;
	r->tail_cache = 0;
	/* relaxed: not yet shared; whoever hands r to the other threads (thread
	 * creation, a queue) provides the happens-before edge. */
	atomic_store_explicit(&r->tail, 0, memory_order_relaxed);
	atomic_store_explicit(&r->head, 0, memory_order_relaxed);
	*out = r;
	return 0;
}

void warp_spsc_destroy(warp_spsc_t *r)
{
	if (!r)
		return;
	warp__free(r->buf);
	warp__free(r);
}

size_t warp_spsc_max_record(const warp_spsc_t *r)
{
	return r->max_record;
}

size_t warp_spsc_capacity(const warp_spsc_t *r)
{
	return r->capacity;
}

/* Bytes a record of len takes at the producer's position, the padding to
 * the end of the buffer included when it does not fit before the end. */
static inline uint64_t spsc_total(const warp_spsc_t *r, uint32_t len)
{
	const uint64_t need = SPSC_HDR + spsc_align8(len);
	const uint64_t rem = r->capacity - (r->reserve & r->mask); /* in [8, capacity] */
	return warp__likely(need <= rem) ? need : rem + need;
}

bool warp_spsc_fits(warp_spsc_t *r, uint32_t len)
{
	if (len > r->max_record)
		return false;
	/* acquire: as in warp_spsc_reserve */
	r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
	return r->reserve + spsc_total(r, len) - r->head_cache <= r->capacity;
}

void *warp_spsc_reserve(warp_spsc_t *r, uint32_t len, uint32_t type)
{
	if (warp__unlikely(type == SPSC_TYPE_PAD || len > r->max_record))
		return NULL;

	const uint64_t need = SPSC_HDR + spsc_align8(len);
	uint64_t pos = r->reserve;
	const uint64_t rem = r->capacity - (pos & r->mask); /* in [8, capacity] */
	const uint64_t total = spsc_total(r, len);

	if (pos + total - r->head_cache > r->capacity) {
		/* acquire: pairs with the consumer's release-store of head in
		 * warp_spsc_release, so its reads of the freed records happen
		 * before we overwrite them. */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (pos + total - r->head_cache > r->capacity)
			return NULL;
	}

	struct spsc_hdr *h;
	if (warp__unlikely(need > rem)) {
		h = spsc_hdr_at(r, pos);
		h->len = (uint32_t)(rem - SPSC_HDR);
		h->type = SPSC_TYPE_PAD;
		pos += rem; /* now at offset 0 */
	}
	h = spsc_hdr_at(r, pos);
	h->len = len;
	h->type = type;
	r->reserve = pos + need;
	return h + 1;
}

void warp_spsc_commit(warp_spsc_t *r)
{
	const uint64_t end = r->reserve;
	/* relaxed: only this thread stores tail, so this reads our own last store. */
	if (atomic_load_explicit(&r->tail, memory_order_relaxed) != end)
		/* release: pairs with the consumer's acquire-load of tail in
		 * warp_spsc_read (and in warp_spsc_used), publishing the headers
		 * and payloads written since the last commit. */
		atomic_store_explicit(&r->tail, end, memory_order_release);
}

const void *warp_spsc_read(warp_spsc_t *r, uint32_t *len, uint32_t *type)
{
	uint64_t pos = r->read;
	const struct spsc_hdr *h;

	for (;;) {
		if (pos == r->tail_cache) {
			/* acquire: pairs with the producer's release-store of tail
			 * in warp_spsc_commit, so the committed headers and
			 * payloads are visible. */
			r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
			if (pos == r->tail_cache) {
				r->read = pos;
				return NULL;
			}
		}
		h = spsc_hdr_at(r, pos);
		if (warp__likely(h->type != SPSC_TYPE_PAD))
			break;
		pos += SPSC_HDR + h->len; /* padding runs to the end of the buffer */
	}

	r->read = pos + SPSC_HDR + spsc_align8(h->len);
	if (len)
		*len = h->len;
	if (type)
		*type = h->type;
	return h + 1;
}

void warp_spsc_release(warp_spsc_t *r)
{
	const uint64_t end = r->read;
	/* relaxed: only this thread stores head, so this reads our own last store. */
	if (atomic_load_explicit(&r->head, memory_order_relaxed) != end)
		/* release: pairs with the producer's acquire-load of head in
		 * warp_spsc_reserve (and in warp_spsc_used): our reads of the
		 * released records happen before the producer reuses them. */
		atomic_store_explicit(&r->head, end, memory_order_release);
}

size_t warp_spsc_used(const warp_spsc_t *r)
{
	/* head and tail cannot be read at one instant, so read head, tail, head
	 * again. If head did not move, tail - head is the exact value at the
	 * instant tail was read: tail >= head because the consumer never passes a
	 * tail it has seen, and tail - head <= capacity because the producer
	 * checked tail against a head no newer than ours. The owner threads always
	 * succeed at once; a third thread retries while the consumer releases. */
	uint64_t head, tail, again;
	for (int tries = 0;; tries++) {
		/* acquire: pairs with the consumer's release-store of head in
		 * warp_spsc_release; the tail the consumer had seen before that
		 * store is then visible, so the tail loaded below is >= head. */
		head = atomic_load_explicit(&r->head, memory_order_acquire);
		/* acquire: pairs with the producer's release-store of tail in
		 * warp_spsc_commit; the head the producer checked that tail against
		 * is then visible, so the head loaded below is no older. */
		tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		/* acquire: pairs with the consumer's release-store of head in
		 * warp_spsc_release, as the first load. */
		again = atomic_load_explicit(&r->head, memory_order_acquire);
		if (warp__likely(again == head))
			return (size_t)(tail - head);
		if (tries == 3) /* still racing a busy consumer: stay in range */
			return (size_t)WARP__MIN(tail - head, (uint64_t)r->capacity);
	}
}
