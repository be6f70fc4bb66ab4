/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file warp/stats.h
 * Engine counters. Every counter is written by the engine's thread only and
 * may be read from any thread with warp_engine_stats() (a consistent-enough
 * snapshot: each counter is read atomically, not the set).
 */
#ifndef WARP_STATS_H
#define WARP_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* name, help */
#define WARP_STATS_MAP(X)                                                            \
	X(polls, "calls to warp_engine_poll")                                         \
	X(idle_polls, "polls that found no work")                                     \
	X(idle_waits, "idle sleeps that a packet on any transport could end (io_uring eventfds)") \
	X(rx_packets, "packets received from drivers")                                \
	X(rx_bytes, "bytes received from drivers")                                    \
	X(tx_packets, "packets handed to drivers")                                    \
	X(tx_bytes, "bytes handed to drivers")                                        \
	X(tx_frames, "stream frames sent")                                            \
	X(rx_frames, "stream frames received")                                        \
	X(msgs_sent, "messages accepted for sending")                                 \
	X(msgs_delivered, "messages delivered to the application")                    \
	X(msgs_fragmented, "messages longer than one full frame (sent as several)")                    \
	X(msgs_dropped_closed, "queued messages dropped because their peer closed")   \
	X(msgs_undeliverable, "messages received with no callback nor channel")       \
	X(msgs_dropped_reset, "received messages held for order or being reassembled, dropped when their stream was reset (peer reopened or restarted)") \
	X(reassembly_timeouts, "partial messages given up after reassembly_timeout")  \
	X(send_backpressure, "engine-thread sends refused with WARP_EAGAIN, and channel records that had to wait for memory")                        \
	X(send_too_big, "engine-thread sends refused with WARP_ETOOBIG")                            \
	X(tx_driver_full, "packets a driver could not take this poll (retried)")      \
	X(rx_spilled, "deliveries that waited for a full channel ring")               \
	X(completions_parked, "channel completions that waited for a full ring (in their send's slot)") \
	X(heartbeats_tx, "heartbeat frames sent (replies not included)")                                     \
	X(heartbeats_rx, "heartbeat frames received")                                 \
	X(acks_rx, "ack frames received")                                             \
	X(closes_rx, "close frames received")                                         \
	X(allocs_after_start, "heap allocations on the engine thread since start")    \
	X(retransmits, "fragments sent again after a loss")                             \
	X(msgs_acked, "sent messages acknowledged")                                      \
	X(msgs_nacked, "sent messages refused by the receiving application")            \
	X(nacks_unsent, "refusals not reported to the sender (16 unread at once, or the message was acknowledged while it waited for order): it takes them as delivered") \
	X(msgs_timed_out, "sent messages given up (ack_timeout, max_retries, or at-most-once lost)") \
	X(acks_tx, "ack frames sent")                                                    \
	X(rtt_samples, "round-trip time samples taken from acks")                         \
	X(pkts_lost, "sent packets declared lost (packet threshold or RTO)")             \
	X(rto_fired, "retransmission timeouts")                                          \
	X(dup_msgs, "reliable-stream messages received again and dropped")               \
	X(dup_amo_msgs, "at-most-once messages in a copy of a refused packet, dropped")  \
	X(breaker_transitions, "circuit breaker state changes")                          \
	X(failovers, "peers moved to their next transport")                               \
	X(peer_restarts, "peers seen starting over (new process)")                        \
	X(flow_blocked, "packet builds stopped by the peer's window or the congestion window") \
	X(failbacks, "peers moved back to their first transport")                         \
	X(send_circuit_open, "sends refused with WARP_ECIRCUIT_OPEN")                     \
	X(handshakes, "handshakes completed (full and resumed)")                          \
	X(handshakes_resumed, "handshakes that resumed a TLS session (no certificates)")  \
	X(handshake_failures, "handshake attempts failed (refused, timed out, or given up by the peer)") \
	X(handshake_timeouts, "handshake attempts not finished within connect_timeout")   \
	X(handshake_pkts_tx, "handshake packets sent")                                    \
	X(handshake_pkts_rx, "handshake packets received")                                \
	X(key_updates_tx, "packet keys this engine moved on from (key_update_packets)")   \
	X(key_updates_rx, "packet keys a peer moved on from")                             \
		X(drops, "packets or fragments dropped (sum of drop_*)")                        \
	WARP_DRV_STATS_MAP(X)

/* Counters a driver keeps for its engine: one struct per transport inside the
 * engine, summed over the transports by warp_engine_stats(). */
#define WARP_DRV_STATS_MAP(X)                                                        \
	X(drv_rx_truncated, "driver: datagrams longer than a receive buffer")           \
	X(drv_rx_errors, "driver: receive errors")                                      \
	X(drv_rx_no_packet, "uring-udp: datagrams dropped with no free packet buffer (pkt_pool exhausted)") \
	X(drv_tx_errors, "driver: sends the kernel refused")                            \
	X(drv_tx_segmented, "uring-udp: sends that carried several datagrams (UDP segmentation offload)") \
	X(drv_rx_coalesced, "uring-udp: receives that carried several datagrams (UDP generic receive offload)") \
	X(drv_rx_rearms, "driver: multishot receives (re-)armed")                       \
	X(drv_connects, "driver: stream connections established")                      \
	X(drv_disconnects, "driver: stream connections lost")                          \
	X(drv_connect_failures, "driver: connection attempts refused or timed out")     \
	X(drv_rx_not_ours, "dpdk: frames for another MAC, IPv4 address or UDP port")     \
	X(drv_rx_other_proto, "dpdk: frames neither IPv4/UDP nor ARP (IPv6, LLDP, ...)") \
	X(drv_rx_bad_header, "dpdk: malformed Ethernet/IPv4/UDP/ARP headers, bad IPv4 checksums, IPv4 fragments") \
	X(drv_rx_segmented, "dpdk: multi-segment frames (larger than one mbuf)")        \
	X(drv_arp_rx, "dpdk: ARP requests and replies received")                        \
	X(drv_arp_tx, "dpdk: ARP requests and replies sent")                            \
	X(drv_neigh_wait_drops, "dpdk: packets dropped waiting for ARP (hold queue full or no answer)") \
	X(drv_tx_no_mbuf, "dpdk: sends delayed because the mbuf pool was empty")         \
	X(drv_link_down, "transports whose link went down")

typedef struct warp_stats {
#define WARP__STAT_FIELD(name, help) uint64_t name;
	WARP_STATS_MAP(WARP__STAT_FIELD)
#undef WARP__STAT_FIELD
	/** Drops by reason; index with warp_drop_reason_name(). */
	uint64_t drop[32];
	uint32_t n_drop_reasons;
} warp_stats_t;

/** Name of drop reason i (0 <= i < n_drop_reasons), e.g. "bad_magic"; NULL if out of range. */
const char *warp_drop_reason_name(unsigned i);

#ifdef __cplusplus
}
#endif
#endif
