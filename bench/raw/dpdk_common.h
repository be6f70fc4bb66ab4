/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of the raw DPDK baselines (raw-dpdk-pingpong,
 * raw-dpdk-oneway): options, the EAL and port set-up over net_memif, the
 * Ethernet/IPv4/UDP frame, and the two-process plumbing.
 *
 * Two processes, one lcore each, joined by one net_memif link (copy mode):
 * the server half is the memif server (it creates the socket), the client
 * half the memif client. With no --role the client forks and execs the
 * server half itself (--role server --forked) before either touches the
 * EAL: an initialised EAL must never be forked. Each process gets its own
 * --file-prefix and --in-memory, so nothing is shared through hugetlbfs and
 * nothing is left there when a process is killed; the socket path is unique
 * per run and removed by whoever may have left it (memif removes it when the
 * server closes its port; the forking client removes it after reaping).
 *
 * Protocol between the halves: UDP frames 10.0.0.1:7001 (client) <->
 * 10.0.0.2:7000 (server); a frame with a zero-length UDP payload is the
 * client's stop. Everything here is slow path except the inline helpers.
 */
#ifndef WARP_BENCH_DPDK_COMMON_H
#define WARP_BENCH_DPDK_COMMON_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "raw_common.h"

/* One IPv4 packet of 1500 bytes: the frame (at most 1514 bytes) fits one
 * mbuf (2048-byte data room) and one memif buffer (2048 by default), so
 * neither side ever sees a chained mbuf. */
#define RDP_MAX_SIZE 1472u
#define RDP_HDR_LEN                                                                          \
	(sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr))
#define RDP_BURST 32
#define RDP_SOCK_MAX 100 /* memif keeps 108 bytes for the path, NUL included */

/* Which options a tool takes beyond the common ones. */
enum { RDP_OPT_COUNT = 1, RDP_OPT_SECONDS = 2 };

struct rdp_opts {
	struct raw_opts raw;   /* tool, size, count, warmup, role, cpus, json */
	unsigned flags;        /* RDP_OPT_* */
	uint64_t seconds;      /* raw-dpdk-oneway: how long the sender sends */
	char socket[RDP_SOCK_MAX + 1]; /* memif socket path */
	int forked;            /* server exec'd by the client (--forked) */
	char log_level[64];    /* EAL --log-level (--log-level) */
};

/* One side's port, pool and what the fast path needs. */
struct rdp_ctx {
	const struct rdp_opts *o;
	int is_server;
	uint16_t port;
	int have_port;               /* port is valid (the memif device probed) */
	struct rte_mempool *pool;
	uint64_t hz;                 /* rte_get_tsc_hz() */
	uint8_t frame[RDP_HDR_LEN + RDP_MAX_SIZE]; /* client: data frame template */
	uint8_t stop[RDP_HDR_LEN];   /* client: the stop frame */
	pid_t child;                 /* the forked server half; 0 or -1: none */
};

/* Set by SIGINT/SIGTERM: every loop checks it and ends cleanly. */
extern volatile sig_atomic_t rdp_stop;

/*
 * Parse argv into o (defaults first). flags: RDP_OPT_*. Returns 0 to run,
 * 1 after --help (exit 0), 2 after a clear message (exit 2).
 */
int rdp_parse(int argc, char **argv, struct rdp_opts *o, unsigned flags, const char *usage);

/* The side runners each tool provides; the port is up when they are called.
 * Both return 0 or 1 (message printed). The client prints the result. */
typedef int (*rdp_side_fn)(struct rdp_ctx *c);

/* Run per o->raw.role (both: fork and exec the server half, run the client,
 * reap the server, remove the socket). Returns the exit code. */
int rdp_main(struct rdp_opts *o, rdp_side_fn server, rdp_side_fn client);

/* 1 while the peer can still answer: the memif link is up and (client of a
 * forked server) the server process is alive; prints why not and returns 0
 * otherwise. Slow path: call it when a wait runs long. */
int rdp_peer_ok(struct rdp_ctx *c);

/* 1 while the memif link is up (the peer is connected). */
int rdp_link_up(const struct rdp_ctx *c);

/* Wait, without touching the rings, up to ms for the peer to close the
 * link; 1 when it did. A side whose peer closes first must not be inside a
 * burst at that moment: memif unmaps the rings on a peer's disconnect. */
int rdp_wait_link_down(const struct rdp_ctx *c, unsigned ms);

/* Cost of one rte_rdtsc() in ns. */
double rdp_tsc_overhead_ns(const struct rdp_ctx *c);

static inline uint64_t rdp_ticks_to_ns(const struct rdp_ctx *c, uint64_t ticks)
{
	/* split so ticks * 1e9 cannot overflow for runs of any length */
	return ticks / c->hz * 1000000000ull + ticks % c->hz * 1000000000ull / c->hz;
}

/*
 * A new mbuf holding len bytes copied from src (a frame template), or NULL
 * when the pool is empty. The template is copied whole, as an application
 * copies its message into the mbuf: that cost is part of the floor.
 */
static inline struct rte_mbuf *rdp_frame_new(struct rte_mempool *pool, const uint8_t *src,
					     size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	if (m) {
		memcpy(rte_pktmbuf_mtod(m, uint8_t *), src, len);
		m->data_len = (uint16_t)len;
		m->pkt_len = (uint32_t)len;
	}
	return m;
}

/* The UDP payload of m and its length, or NULL when m is not one of our
 * IPv4/UDP frames (memif is point to point, but a stray frame must never be
 * mistaken for a reply). */
static inline const uint8_t *rdp_udp_payload(const struct rte_mbuf *m, size_t *len)
{
	if (m->data_len < RDP_HDR_LEN || m->nb_segs != 1)
		return NULL;
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
	const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)(ip + 1);
	if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    ip->version_ihl != RTE_IPV4_VHL_DEF || ip->next_proto_id != IPPROTO_UDP)
		return NULL;
	size_t ulen = rte_be_to_cpu_16(udp->dgram_len);
	if (ulen < sizeof(*udp) || RDP_HDR_LEN + ulen - sizeof(*udp) > m->data_len)
		return NULL;
	*len = ulen - sizeof(*udp);
	return (const uint8_t *)(udp + 1);
}

/* Send n frames, retrying while the ring is full (the peer drains it) for
 * at most ~2 s. Returns how many were sent; the rest are freed. */
uint16_t rdp_tx_all(struct rdp_ctx *c, struct rte_mbuf **m, uint16_t n);

/* Client: send the stop frame a few times (one is enough on memif, which
 * never drops a frame it accepted; the repeats cover a full ring). */
/* Turn a frame around (MACs, addresses, ports), to answer with the same
 * mbuf: nothing is allocated or copied. */
static inline void rdp_swap_in_place(struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	struct rte_ether_addr ea = eth->src_addr;
	eth->src_addr = eth->dst_addr;
	eth->dst_addr = ea;
	rte_be32_t a = ip->src_addr;
	ip->src_addr = ip->dst_addr;
	ip->dst_addr = a;
	rte_be16_t p = udp->src_port;
	udp->src_port = udp->dst_port;
	udp->dst_port = p;
}

#define RDP_SILENCE_S 5        /* a server hearing nothing for this long gives up */
#define RDP_IDLE_CHECK 0x3fff  /* empty polls between slow-path checks */

/* A server's watch on its client while polling: between bursts with
 * frames, every RDP_IDLE_CHECK empty polls it checks that the link is up
 * and that the client spoke in the last RDP_SILENCE_S seconds. */
struct rdp_watch {
	uint64_t last, silence;
	unsigned idle;
	int seen; /* a frame since the last check */
};

static inline void rdp_watch_init(struct rdp_watch *w, const struct rdp_ctx *c)
{
	w->last = rte_rdtsc();
	w->silence = RDP_SILENCE_S * c->hz;
	w->idle = 0;
	w->seen = 0;
}

/* After an empty poll: 0 to go on, 1 when the client is gone (printed). */
static inline int rdp_watch_idle(struct rdp_watch *w, const struct rdp_ctx *c, const char *tool)
{
	if ((++w->idle & RDP_IDLE_CHECK) != 0)
		return 0;
	uint64_t now = rte_rdtsc();
	if (w->seen) {
		w->last = now;
		w->seen = 0;
	}
	if (!rdp_link_up(c)) {
		fprintf(stderr, "%s: server: the client disconnected without a stop frame\n", tool);
		return 1;
	}
	if (now - w->last > w->silence) {
		fprintf(stderr, "%s: server: no frame from the client for %d s\n", tool,
			RDP_SILENCE_S);
		return 1;
	}
	return 0;
}

void rdp_send_stop(struct rdp_ctx *c);

#endif
