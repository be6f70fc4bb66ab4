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
 * with the engine, which retries them on the next poll.
 */
#ifndef WARP_DRIVER_H
#define WARP_DRIVER_H

#include <stdint.h>

#include "engine/pool.h"

#define WARP_DRV_DATAGRAM 0x1u /* carries packets as they are */
#define WARP_DRV_STREAM 0x2u   /* carries packets length-prefixed */

struct warp_driver_open_args {
	const char *listen; /* local address string */
	void *driver_arg;   /* warp_transport_config_t.driver_arg */
	const char *node_id;
	uint32_t mtu;
	struct warp__pktpool *pool;
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
};

/* The registry: NULL when no driver of that name is built in. */
const struct warp_driver_ops *warp__driver_find(const char *name);
/* Names of the built-in drivers, comma separated, for error messages. */
const char *warp__driver_names(void);

extern const struct warp_driver_ops warp__loop_driver;

#endif
