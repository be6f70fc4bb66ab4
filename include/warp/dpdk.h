/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file warp/dpdk.h
 * Configuration of the `dpdk` driver: kernel bypass through a DPDK ethdev
 * port (physical NIC PMDs, net_memif, net_af_packet, net_af_xdp, net_tap,
 * net_ring, ...). docs/deployment.md explains each setting on real hardware.
 *
 * A transport with driver "dpdk" takes a warp_dpdk_config_t as its
 * driver_arg (NULL = all defaults) and a listen address "a.b.c.d:port": the
 * IPv4 address and UDP port this engine owns on the port. warp builds
 * Ethernet/IPv4/UDP itself; the UDP payload is exactly the warp packet the
 * uring-udp driver sends, so DPDK and kernel nodes talk to each other.
 *
 * EAL: the first dpdk transport opened in a process starts the EAL from
 * this config (unless eal_external is set: the application ran
 * rte_eal_init() itself and warp only uses the port it names). The EAL
 * lives until the process exits (DPDK cannot start it twice); the port is
 * stopped and closed when the last engine using it is destroyed.
 *
 * Several engines of one process share a port by using one queue pair each
 * (queues = number of engines, queue = this engine's index): RSS spreads
 * flows across the queues where the PMD offers it, which makes the engines
 * behave like SO_REUSEPORT sockets on one address.
 */
#ifndef WARP_DPDK_H
#define WARP_DPDK_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WARP_DPDK_MAX_VDEVS 4
#define WARP_DPDK_MAX_ALLOW 4
#define WARP_DPDK_MAX_NEIGH 16
#define WARP_DPDK_ARG_MAX 256
#define WARP_DPDK_MAX_QUEUES 64 /* queue pairs per port (engines sharing it) */

#define WARP_DPDK_DEFAULT_RX_DESC 1024u
#define WARP_DPDK_DEFAULT_TX_DESC 1024u
#define WARP_DPDK_DEFAULT_LINK_CHECK_NS 100000000ull /* read the link state every 100 ms */
#define WARP_DPDK_DEFAULT_ARP_RETRY_NS 100000000ull  /* resend an unanswered ARP request */
#define WARP_DPDK_DEFAULT_ARP_REACHABLE_NS 30000000000ull /* re-resolve a neighbour (30 s) */
#define WARP_DPDK_NEIGH_HOLD 8 /* packets held per unresolved neighbour */

/** A static neighbour: IPv4 address and its MAC address. */
typedef struct warp_dpdk_neigh {
	char ip[16];  /* "10.0.0.2" */
	char mac[18]; /* "02:00:00:00:00:02" */
} warp_dpdk_neigh_t;

typedef struct warp_dpdk_config {
	/* ---- EAL (ignored when eal_external) -------------------------------- */
	bool eal_external;    /* the application started the EAL; warp uses `port` only */
	char lcores[64];      /* EAL -l; "" = the engine's cpu if set, else 0 */
	bool in_memory;       /* --in-memory: no files in /dev/hugepages, no shared state (default yes) */
	bool no_huge;         /* --no-huge: anonymous memory instead of hugepages (tests, no NIC DMA) */
	char file_prefix[64]; /* --file-prefix; "" = "warp-<pid>" */
	char vdevs[WARP_DPDK_MAX_VDEVS][WARP_DPDK_ARG_MAX]; /* --vdev=..., e.g. "net_memif0,role=client,socket=/run/m.sock" */
	uint32_t n_vdevs;
	char pci_allow[WARP_DPDK_MAX_ALLOW][32]; /* -a <PCI address>; none and no vdev-only = every device */
	uint32_t n_pci_allow;
	bool no_pci;          /* --no-pci (default: set when vdevs are given and no pci_allow) */
	char eal_extra[WARP_DPDK_ARG_MAX]; /* more EAL arguments, blank-separated, passed as they are */

	/* ---- port ---------------------------------------------------------- */
	char port[64];     /* device name ("net_memif0", "0000:03:00.0"); "" = the first port */
	uint16_t queues;   /* queue pairs configured on the port (engines sharing it); 0 = 1 */
	uint16_t queue;    /* this engine's queue pair, < queues */
	uint16_t rx_desc;  /* 0 = WARP_DPDK_DEFAULT_RX_DESC (adjusted to what the PMD allows) */
	uint16_t tx_desc;  /* 0 = WARP_DPDK_DEFAULT_TX_DESC */
	uint32_t mbufs;    /* mbufs in this engine's pool; 0 = rx_desc + tx_desc + pkt_pool + 1024 */

	/* ---- addressing ------------------------------------------------------ */
	uint8_t prefix_len; /* listen address's subnet; 0 = every peer is on-link (no gateway) */
	char gateway[16];   /* next hop for peers outside the subnet ("" = none: they are refused) */
	warp_dpdk_neigh_t neigh[WARP_DPDK_MAX_NEIGH]; /* static neighbours: never ARPed */
	uint32_t n_neigh;
	bool udp_checksum;  /* compute UDP checksums on send (default yes; in hardware when offered) */
	uint64_t link_check_ns; /* 0 = WARP_DPDK_DEFAULT_LINK_CHECK_NS */
	uint64_t arp_retry_ns;  /* 0 = WARP_DPDK_DEFAULT_ARP_RETRY_NS */
	uint64_t arp_reachable_ns; /* 0 = WARP_DPDK_DEFAULT_ARP_REACHABLE_NS: a resolved neighbour
				      is asked again after this (its MAC may have changed) */

	uint64_t reserved[7]; /* zero */
} warp_dpdk_config_t;

/** Fill *c with the defaults above (in_memory and udp_checksum on). Any thread. */
void warp_dpdk_config_init(warp_dpdk_config_t *c);

#ifdef __cplusplus
}
#endif
#endif
