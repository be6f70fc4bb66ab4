/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file warp/loop.h
 * The loop driver: carries packets between engines inside one process,
 * through a warp_loop_net_t, with a seeded fault model. For deterministic
 * protocol tests (same seed + same calls = same run) and in-process
 * benchmarks; never a stand-in for the real drivers.
 *
 * An engine joins a net with a transport {driver "loop", listen "<key>",
 * driver_arg = net}; peers are addressed by the same key ("b@host:port" uses
 * "host:port" as the key). Faults are applied when a packet is sent, on the
 * directed link from the sender's key to the receiver's key.
 *
 * Thread rules: a net may be shared by engines on different threads (an
 * internal mutex is taken once per burst); configuration calls may be made
 * from any thread.
 */
#ifndef WARP_LOOP_H
#define WARP_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct warp_loop_net warp_loop_net_t;

/** Faults on a directed link. Rates are probabilities 0..1 per packet. */
typedef struct warp_loop_fault {
	double loss;
	double duplicate;
	double reorder;          /* probability that a packet is held back ... */
	uint32_t reorder_window; /* ... behind up to this many later packets (>= 1) */
	double corrupt;          /* probability that one random bit is flipped */
	uint64_t delay_ns;       /* fixed one-way delay */
	uint64_t jitter_ns;      /* plus uniform 0..jitter (reorders too) */
} warp_loop_fault_t;

/** Counters of a net. */
typedef struct warp_loop_stats {
	uint64_t sent, delivered, lost, duplicated, reordered, corrupted, partitioned,
		queue_full, no_endpoint, filtered, oversize;
	uint64_t backpressure; /* packets refused because the receiver's queue was full */
} warp_loop_stats_t;

/** Per-packet filter for tests: return false to drop the packet (counted as
 *  filtered). Called with the net's lock held; must not call into the net. */
typedef bool (*warp_loop_filter_fn)(void *arg, const char *from, const char *to,
				    const uint8_t *pkt, uint32_t len);

/**
 * Create a net.
 * @param seed seeds every link's random generator.
 * @param queue_depth packets each endpoint can hold (0 = 8192); when full,
 *        tx_burst takes no more for it (the sender retries, counted as
 *        backpressure) and still takes packets for the others.
 * @return 0, WARP_ENOMEM, WARP_EINVAL.
 */
int warp_loop_net_create(uint64_t seed, uint32_t queue_depth, warp_loop_net_t **out);
/** Destroy a net after every engine on it is destroyed. */
void warp_loop_net_destroy(warp_loop_net_t *n);

/** Faults for one directed link (from NULL = every link). @return 0,
 *  WARP_EINVAL (rates out of 0..1, unknown key with too many endpoints). */
int warp_loop_set_fault(warp_loop_net_t *n, const char *from, const char *to,
			const warp_loop_fault_t *f);
/** Cut (on = true) or heal both directions between two keys. */
int warp_loop_partition(warp_loop_net_t *n, const char *a, const char *b, bool on);
/** Install a packet filter (NULL to remove). */
void warp_loop_set_filter(warp_loop_net_t *n, warp_loop_filter_fn fn, void *arg);
void warp_loop_stats(warp_loop_net_t *n, warp_loop_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
