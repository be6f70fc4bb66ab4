/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Congestion control behind a small interface. "none" for dedicated links
 * (the receiver's window is the only limit), "aimd" (NewReno-like: slow
 * start, additive increase, halve once per round trip on loss). Per peer;
 * the sender keeps in-flight bytes within min(peer window, cc window).
 */
#ifndef WARP_PROTO_CC_H
#define WARP_PROTO_CC_H

#include <stdint.h>

struct warp_cc {
	uint64_t cwnd;
	uint64_t ssthresh;
	uint64_t recovery_start_ns; /* losses of packets sent before this are one event */
	uint32_t mtu;
};

struct warp_cc_ops {
	const char *name;
	void (*init)(struct warp_cc *c, uint32_t mtu);
	void (*on_ack)(struct warp_cc *c, uint64_t acked_bytes);
	void (*on_loss)(struct warp_cc *c, uint64_t pkt_sent_ns, uint64_t now_ns);
	uint64_t (*window)(const struct warp_cc *c);
};

/* NULL when the name is unknown. */
const struct warp_cc_ops *warp__cc_find(const char *name);

#endif
