/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver interface. Every driver is a const ops table registered by
 * name. open/close/parse_addr are the slow path; rx_burst and tx_burst are
 * the fast path, cached by the engine per transport and called once per poll
 * with a batch of packets.
 *
 * Packet ownership: rx_burst fills pkts[] with buffers taken from the
 * engine's packet pool (args->pool) and the engine puts them back after
 * processing; tx_burst takes the first k packets it accepts (returns k) and
 * puts them back into the pool when it is done with them; the rest stay
 * with the engine, which retries them on the next poll. A driver may
 * reorder pkts[] before returning (uring-udp gathers one peer's packets
 * for a segmented send) as long as each peer's packets keep their order:
 * a driver whose room is per destination (uring-tcp, loop) takes packets
 * for the others and leaves the refused destination's in pkts[k..n), and
 * the engine builds nothing more for that peer on the transport until
 * they are taken.
 */
#ifndef WARP_DRIVER_H
#define WARP_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/pool.h"
#include "warp/stats.h"

#define WARP_DRV_DATAGRAM 0x1u /* carries packets as they are */
#define WARP_DRV_STREAM 0x2u   /* carries packets length-prefixed */

/* Counters a driver keeps for its engine (warp/stats.h: WARP_DRV_STATS_MAP),
 * written by the engine thread only. */
struct warp_driver_counters {
#define WARP__DRV_CNT(name, help) warp__counter_t name;
	WARP_DRV_STATS_MAP(WARP__DRV_CNT)
#undef WARP__DRV_CNT
};

struct warp_driver_open_args {
	const char *listen; /* local address string */
	void *driver_arg;   /* warp_transport_config_t.driver_arg */
	const char *node_id;
	uint32_t mtu;
	struct warp__pktpool *pool;
	uint32_t flags;          /* WARP_TRANSPORT_* */
	uint32_t sock_buf_bytes; /* 0 = default */
	uint64_t connect_timeout_ns, retry_initial_backoff_ns, retry_max_backoff_ns;
	uint32_t retry_max_attempts; /* 0 = no limit */
	uint32_t max_peers; /* stream drivers size their connection table from it */
	int cpu;            /* the engine's cpu (-1 = not pinned) */
	struct warp_driver_counters *cnt;
};

struct warp_driver_ops {
	const char *name;
	uint32_t caps;
	/* Open a transport; *ctx receives the driver's state. 0 or WARP_E*
	 * with a detail string (warp__err). */
	int (*open)(const struct warp_driver_open_args *a, void **ctx);
	void (*close)(void *ctx);
	/* Parse a peer address string into *out. 0 or WARP_EINVALID_NODE. */
	int (*parse_addr)(void *ctx, const char *s, warp__addr_t *out);
	uint16_t (*rx_burst)(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now_ns);
	uint16_t (*tx_burst)(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now_ns);
	/* Optional: an idle engine sleeps on all its transports at once.
	 * Make the transport ready to be woken (arm its receives, submit what
	 * is queued) and return a file descriptor that becomes readable when
	 * it may have work: an eventfd the engine empties with one 8-byte read
	 * after a wakeup. -1 (or NULL) = none: the engine looks at the
	 * transport again when its sleep ends. */
	int (*wait_fd)(void *ctx);
	/* Optional: true when the transport may only ever be polled by the
	 * thread that polled it first (io_uring SINGLE_ISSUER). */
	bool (*single_issuer)(void *ctx);
	/* Optional: the last error the driver saw on the data path, e.g.
	 * "connect 127.0.0.1:7101: Connection refused" ("" when none). */
	int (*last_error)(void *ctx, char *buf, size_t cap);
	/* Optional: the bound local address as a string ("127.0.0.1:40123"). */
	int (*local_addr)(void *ctx, char *buf, size_t cap);
	/* Optional: false while the link is down (a NIC port without carrier).
	 * Called every poll: return a cached value. NULL = always up. */
	bool (*link_up)(void *ctx);
};

/* The registry: NULL when no driver of that name is built in. */
const struct warp_driver_ops *warp__driver_find(const char *name);
/* Names of the built-in drivers, comma separated, for error messages. */
const char *warp__driver_names(void);

extern const struct warp_driver_ops warp__loop_driver;
extern const struct warp_driver_ops warp__uring_udp_driver;
extern const struct warp_driver_ops warp__uring_tcp_driver;
extern const struct warp_driver_ops warp__dpdk_driver;

#endif
