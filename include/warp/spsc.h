/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file warp/spsc.h
 * Lock-free single-producer / single-consumer ring of variable-length
 * records. warp uses one pair per application thread and engine (see
 * warp_channel_* in warp/engine.h); it is public so applications and tools
 * can reuse it.
 *
 * Thread rules: exactly one thread calls the producer functions
 * (reserve/commit) and exactly one thread calls the consumer functions
 * (read/release) of a ring at a time. create/destroy are not concurrent with
 * anything.
 *
 * Records are 8-byte aligned; each carries a 32-bit length and a 32-bit type
 * (type 0 is reserved). A record never wraps: when it does not fit before the
 * end of the buffer, the producer pads to the end and starts at offset 0, so
 * the largest record is warp_spsc_max_record() (half the capacity minus the
 * record header).
 *
 * Batching: several reserve() calls followed by one commit() publish a batch
 * with one release store; several read() calls followed by one release()
 * free a batch with one release store.
 */
#ifndef WARP_SPSC_H
#define WARP_SPSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct warp_spsc warp_spsc_t;

/**
 * Create a ring.
 * @param capacity_bytes size of the record buffer; a power of two, at least
 *        4096 and at most 2^31.
 * @param out receives the ring; the caller owns it (warp_spsc_destroy).
 * @return 0, WARP_EINVAL (capacity not a power of two or out of range),
 *         WARP_ENOMEM.
 */
int warp_spsc_create(size_t capacity_bytes, warp_spsc_t **out);

/** Free a ring. Neither side may use it afterwards. NULL is ignored. */
void warp_spsc_destroy(warp_spsc_t *r);

/** Largest payload length one record can carry. Any thread. */
size_t warp_spsc_max_record(const warp_spsc_t *r);

/** Capacity in bytes as given to create. Any thread. */
size_t warp_spsc_capacity(const warp_spsc_t *r);

/**
 * Producer: reserve room for a record of `len` payload bytes of `type`
 * (type != 0). Write the payload through the returned pointer (8-byte
 * aligned), then publish with warp_spsc_commit(). Reserved records are not
 * visible to the consumer before commit.
 * @return a pointer to `len` writable bytes, or NULL when the ring is full
 *         now (backpressure: retry later) or len > max_record / type == 0.
 *         Never blocks.
 */
void *warp_spsc_reserve(warp_spsc_t *r, uint32_t len, uint32_t type);

/**
 * Producer: whether warp_spsc_reserve(r, len, ...) would succeed now
 * (the same test, without reserving). Reads the consumer's released end
 * afresh, so a release that happened before this call is seen.
 */
bool warp_spsc_fits(warp_spsc_t *r, uint32_t len);

/** Producer: publish every record reserved since the last commit. */
void warp_spsc_commit(warp_spsc_t *r);

/**
 * Consumer: the next committed record not yet read, or NULL when there is
 * none. Advances the read cursor; the record's memory stays valid (and is
 * not reused by the producer) until warp_spsc_release().
 * @param len receives the payload length; @param type receives the type.
 */
const void *warp_spsc_read(warp_spsc_t *r, uint32_t *len, uint32_t *type);

/** Consumer: give every record read so far back to the producer. */
void warp_spsc_release(warp_spsc_t *r);

/** Bytes in use (committed and not released), padding included. Any thread;
 *  a snapshot. */
size_t warp_spsc_used(const warp_spsc_t *r);

#ifdef __cplusplus
}
#endif
#endif
