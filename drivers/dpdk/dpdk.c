/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpdk: warp packets as the UDP payload of Ethernet/IPv4/UDP frames that warp
 * builds itself, on one RX/TX queue pair of a DPDK ethdev port (any PMD).
 *
 * Receive: rte_eth_rx_burst; each frame is checked (MAC, IPv4 header and
 * checksum, UDP port) and its mbuf is lent to the engine zero-copy: the
 * engine packet's data points at the UDP payload inside the mbuf, and the
 * engine's warp__pkt_put hands the mbuf back here (ext_free), where it waits
 * in a batch returned to the mempool at the next burst.
 * Send: one mbuf per packet from this engine's mempool (bulk allocation),
 * headers written in front of a copy of the warp packet (at most one MTU,
 * built by the engine into its own buffer), one rte_eth_tx_burst per poll.
 * IPv4 and UDP checksums go to the NIC when the port offers the offloads.
 *
 * Neighbours: peers are resolved with ARP (or a static table). A packet to a
 * neighbour not resolved yet waits in a small hold queue (at most
 * WARP_DPDK_NEIGH_HOLD) and is sent when the reply comes; beyond that, and
 * when nobody answers, it is dropped and counted (the reliability layer
 * resends). ARP requests for our address are answered in place.
 *
 * Process-wide state (slow path, under a mutex): the EAL, started once, and
 * the ports, configured by the first engine that opens them and closed by
 * the last one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_udp.h>

#include "driver.h"
#include "warp/config.h"
#include "warp/dpdk.h"
#include "warp/error.h"

#define HDR_LEN (RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr))
#define MAX_BURST 256u
#define FREE_BATCH 64u
#define MAX_PORTS 16u
#define MAX_QUEUES WARP_DPDK_MAX_QUEUES
_Static_assert(MAX_QUEUES <= 64, "gport.taken is one bit per queue");
#define MEMPOOL_CACHE 256u
#define MEMIF_RESTART_NS 200000000ull

/* ---- neighbours ------------------------------------------------------------ */

enum { N_FREE, N_INCOMPLETE, N_REACHABLE, N_STATIC };

struct neigh {
	uint32_t ip; /* network order */
	uint8_t state;
	uint8_t nhold;
	uint16_t tries; /* requests unanswered (resolving, or confirming a reachable one) */
	struct rte_ether_addr mac;
	uint64_t next_req_ns; /* incomplete: next request; reachable: next confirmation */
	struct rte_mbuf *hold[WARP_DPDK_NEIGH_HOLD];
};

/* ---- process-wide: EAL and ports --------------------------------------------- */

struct gport {
	bool used;
	uint16_t port_id;
	uint16_t queues;
	uint16_t users;
	uint64_t taken; /* bitmap of queues opened by engines */
	bool probed;    /* warp hot-plugged the vdev, so it removes it */
	bool started;
	bool memif_client; /* net_memif, role=client: restarted while its link stays down */
	bool configured;   /* set up; stopped but kept when its last engine closed */
	/* Restarting a port that several engines use: each of them stops
	 * using it (parks) and the last to park restarts it, so no queue is
	 * polled while the port stops and starts. restart_req is read without
	 * the lock by every burst; all of it is written under g_lock. */
	_Atomic bool restart_req;
	uint16_t parked;	/* engines off the port for this restart */
	uint32_t restart_epoch; /* restarts done: tells a stale park */
	char name[RTE_ETH_NAME_MAX_LEN];
	struct rte_ether_addr mac; /* what its engines send from (port_mac) */
	uint64_t tx_offloads;
	struct rte_mempool *mp[MAX_QUEUES];
	uint32_t data_room; /* of its mbufs: what the mtu of its set-up allows */
	uint32_t mtu;       /* the mtu of the engine that set it up */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_eal_up;      /* started by warp, or found started (eal_external) */
static int g_eal_failed;   /* rte_eal_init failed once: it cannot be retried */
static char g_eal_error[256];
static struct gport g_ports[MAX_PORTS];
static unsigned g_pool_seq;

/* ---- one engine's transport --------------------------------------------------- */

struct dpdk {
	uint16_t port_id;
	uint16_t queue;
	struct gport *gp;
	struct rte_mempool *mp;
	struct warp__pktpool *pool;
	struct warp_driver_counters *cnt;
	struct rte_ether_addr mac;
	uint32_t ip;       /* network order */
	uint16_t udp_port; /* network order */
	uint32_t mask;     /* network order; 0 = everyone on-link */
	uint32_t gateway;  /* network order; 0 = none */
	bool off_ip, off_udp, udp_cksum;
	uint16_t ip_id;
	bool registered; /* the polling thread has an EAL lcore id */
	bool parked;     /* off the port while it restarts (gport.restart_req) */
	uint32_t parked_epoch; /* gport.restart_epoch it parked in */
	bool link_up;
	uint64_t link_next_ns, link_every_ns;
	uint64_t link_down_ns;  /* when the link was seen down (0 = up) */
	uint64_t arp_next_ns;   /* earliest next_req_ns of a pending neighbour */
	uint64_t arp_retry_ns;
	uint64_t arp_reachable_ns;
	uint32_t n_incomplete;

	struct neigh *neigh;
	uint32_t n_neigh, max_neigh;

	struct rte_mbuf *to_free[FREE_BATCH];
	uint32_t n_to_free;
	struct rte_mbuf *rx[MAX_BURST];
	struct rte_mbuf *tx[MAX_BURST];
	uint16_t tx_idx[MAX_BURST];
	char err[160];
};

static void dpdk_close(void *ctx);

static const char *errstr(int e)
{
	return rte_strerror(e < 0 ? -e : e);
}

/* Free hugepages (all sizes) in MiB, from sysfs. */
static uint64_t free_hugepages_mib(void)
{
	glob_t g;
	uint64_t mib = 0;
	if (glob("/sys/kernel/mm/hugepages/hugepages-*kB/free_hugepages", 0, NULL, &g))
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		unsigned long kb = 0, n = 0;
		if (sscanf(g.gl_pathv[i], "/sys/kernel/mm/hugepages/hugepages-%lukB", &kb) != 1)
			continue;
		FILE *f = fopen(g.gl_pathv[i], "r");
		if (!f)
			continue;
		if (fscanf(f, "%lu", &n) != 1)
			n = 0;
		fclose(f);
		mib += (uint64_t)n * kb / 1024;
	}
	globfree(&g);
	return mib;
}

/* Bytes one mbuf of this data room takes in a mempool. */
static uint64_t mbuf_footprint(uint32_t data_room)
{
	struct rte_mempool_objsz sz;
	uint32_t elt = (uint32_t)sizeof(struct rte_mbuf) + RTE_PKTMBUF_HEADROOM + data_room;
	return rte_mempool_calc_obj_size(elt, 0, &sz);
}

/* ---- EAL ---------------------------------------------------------------------- */

static warp__cold int add_arg(char **argv, int *argc, int max, const char *fmt, const char *s)
{
	if (*argc >= max - 1)
		return -1;
	size_t n = strlen(fmt) + (s ? strlen(s) : 0) + 1;
	char *a = malloc(n);
	if (!a)
		return -1;
	snprintf(a, n, fmt, s ? s : "");
	argv[(*argc)++] = a;
	return 0;
}

/* What the EAL takes for itself beyond the mbuf pools (its heap, rings,
 * the ports' queues), in MiB: the -m of a no_huge start. */
#define EAL_OWN_MIB 128

/* Start the EAL from the config; g_lock held. */
static warp__cold int eal_start(const warp_dpdk_config_t *c, const struct warp_driver_open_args *a,
				uint64_t pool_mib)
{
	if (g_eal_up)
		return 0;
	if (g_eal_failed)
		return warp__err(WARP_EDRIVER,
				 "dpdk: the EAL failed to start earlier in this process (%s); DPDK "
				 "cannot start it again",
				 g_eal_error);
	if (c->eal_external) {
		if (rte_lcore_count() == 0)
			return warp__err(WARP_ESTATE,
					 "dpdk: eal = external, but the application has not started "
					 "the EAL (call rte_eal_init() first)");
		g_eal_up = true;
		return 0;
	}
	enum { MAXA = 64 };
	char *argv[MAXA] = { 0 };
	int argc = 0, rc = 0;
	char tmp[64];
	bool bad = add_arg(argv, &argc, MAXA, "warp", NULL) != 0;
	if (c->lcores[0]) {
		bad |= add_arg(argv, &argc, MAXA, "-l%s", c->lcores) != 0;
	} else {
		snprintf(tmp, sizeof(tmp), "%d", a->cpu >= 0 ? a->cpu : 0);
		bad |= add_arg(argv, &argc, MAXA, "-l%s", tmp) != 0;
	}
	if (c->in_memory)
		bad |= add_arg(argv, &argc, MAXA, "--in-memory", NULL) != 0;
	if (c->file_prefix[0]) {
		bad |= add_arg(argv, &argc, MAXA, "--file-prefix=%s", c->file_prefix) != 0;
	} else {
		snprintf(tmp, sizeof(tmp), "warp-%d", (int)getpid());
		bad |= add_arg(argv, &argc, MAXA, "--file-prefix=%s", tmp) != 0;
	}
	if (c->no_huge) {
		/* without hugepages the EAL only takes -m MiB (64 by default) */
		snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)(pool_mib + EAL_OWN_MIB));
		bad |= add_arg(argv, &argc, MAXA, "--no-huge", NULL) != 0;
		bad |= add_arg(argv, &argc, MAXA, "-m%s", tmp) != 0;
	}
	for (uint32_t i = 0; i < c->n_vdevs && i < WARP_DPDK_MAX_VDEVS; i++)
		bad |= add_arg(argv, &argc, MAXA, "--vdev=%s", c->vdevs[i]) != 0;
	for (uint32_t i = 0; i < c->n_pci_allow && i < WARP_DPDK_MAX_ALLOW; i++)
		bad |= add_arg(argv, &argc, MAXA, "-a%s", c->pci_allow[i]) != 0;
	if (c->no_pci || (c->n_vdevs && !c->n_pci_allow))
		bad |= add_arg(argv, &argc, MAXA, "--no-pci", NULL) != 0;
	/* quiet by default, no telemetry socket; eal_extra comes last and wins */
	bad |= add_arg(argv, &argc, MAXA, "--log-level=lib.eal:error", NULL) != 0;
	bad |= add_arg(argv, &argc, MAXA, "--no-telemetry", NULL) != 0;
	char extra[WARP_DPDK_ARG_MAX];
	snprintf(extra, sizeof(extra), "%s", c->eal_extra);
	for (char *save = NULL, *tok = strtok_r(extra, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save))
		bad |= add_arg(argv, &argc, MAXA, "%s", tok) != 0;
	if (bad) {
		rc = warp__err(WARP_ECONFIG, "dpdk: too many EAL arguments (at most %d)", MAXA - 1);
		goto out;
	}
	char *args[MAXA];
	memcpy(args, argv, sizeof(args)); /* rte_eal_init permutes its argv */
	char line[512] = "";
	for (int i = 1; i < argc; i++) {
		size_t l = strlen(line);
		snprintf(line + l, sizeof(line) - l, "%s%s", i > 1 ? " " : "", argv[i]);
	}
	if (rte_eal_init(argc, args) < 0) {
		int e = rte_errno;
		if (e == EALREADY) {
			g_eal_up = true; /* someone else started it: use it */
			goto out;
		}
		g_eal_failed = 1;
		uint64_t have = free_hugepages_mib();
		if (!c->no_huge && have == 0)
			snprintf(g_eal_error, sizeof(g_eal_error),
				 "%s; no free hugepages: need %llu MiB of hugepages (the mbuf pools "
				 "%llu MiB and the EAL's own), have 0; reserve some (echo 1024 > "
				 "/proc/sys/vm/nr_hugepages) or set no_huge; see docs/deployment.md",
				 errstr(e), (unsigned long long)(pool_mib + EAL_OWN_MIB),
				 (unsigned long long)pool_mib);
		else
			snprintf(g_eal_error, sizeof(g_eal_error), "%s", errstr(e));
		rc = warp__err(WARP_EDRIVER, "dpdk: rte_eal_init(%s) failed: %s", line, g_eal_error);
		goto out;
	}
	g_eal_up = true;
	/* The EAL makes /var/run/dpdk/<prefix>/ and never removes it: one empty
	 * directory per process with warp's per-process prefix. With
	 * --in-memory it stays empty (no shared config, no multi-process
	 * socket), so it goes now; otherwise it holds the EAL's files and this
	 * fails with ENOTEMPTY, leaving it as DPDK does. */
	if (!c->file_prefix[0])
		(void)rmdir(rte_eal_get_runtime_dir());
out:
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

/* ---- ports ---------------------------------------------------------------------- */

static struct gport *gport_find(uint16_t port_id)
{
	for (unsigned i = 0; i < MAX_PORTS; i++)
		if (g_ports[i].used && g_ports[i].port_id == port_id)
			return &g_ports[i];
	return NULL;
}

/* The port named by the config: by device name, hot-plugging a configured
 * vdev that is not probed (a port closed before in this process); "" = the
 * first port. g_lock held. */
static warp__cold int port_lookup(const warp_dpdk_config_t *c, uint16_t *port_id, bool *probed)
{
	*probed = false;
	if (!c->port[0]) {
		uint16_t pid;
		RTE_ETH_FOREACH_DEV(pid)
		{
			*port_id = pid;
			return 0;
		}
		return warp__err(WARP_EDRIVER,
				 "dpdk: no ethdev port: the EAL found no device (give a vdev or "
				 "pci_allow, and bind the NIC to vfio-pci; see docs/deployment.md)");
	}
	if (rte_eth_dev_get_port_by_name(c->port, port_id) == 0)
		return 0;
	for (uint32_t i = 0; i < c->n_vdevs; i++) {
		size_t n = strcspn(c->vdevs[i], ",");
		if (n != strlen(c->port) || strncmp(c->vdevs[i], c->port, n) != 0)
			continue;
		/* the EAL could not create it (it logs why and goes on), or a
		 * port closed earlier in this process: probe it (again) */
		int rc = rte_dev_probe(c->vdevs[i]);
		if (rc == 0 && rte_eth_dev_get_port_by_name(c->port, port_id) == 0) {
			*probed = true;
			return 0;
		}
		return warp__err(WARP_EDRIVER,
				 "dpdk: vdev '%s' cannot be created: %s (the PMD's own message is "
				 "on stderr above)",
				 c->vdevs[i], rc ? errstr(rc) : "no ethdev port appeared");
	}
	char names[256] = "";
	uint16_t pid;
	RTE_ETH_FOREACH_DEV(pid)
	{
		char nm[RTE_ETH_NAME_MAX_LEN];
		if (rte_eth_dev_get_name_by_port(pid, nm) == 0) {
			size_t l = strlen(names);
			snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", nm);
		}
	}
	return warp__err(WARP_ENOENT, "dpdk: port '%s' not found (ports: %s)", c->port,
			 names[0] ? names : "none");
}

/* Start a configured port. A memif client refuses to start while its server
 * (another process) has not started yet: try again for connect_timeout.
 * g_lock held. */
static warp__cold int port_start(struct gport *gp, const struct warp_driver_open_args *a)
{
	int rc;
	uint64_t waited = 0;
	while ((rc = rte_eth_dev_start(gp->port_id)) != 0 && waited < a->connect_timeout_ns) {
		usleep(20000);
		waited += 20000000ull;
	}
	if (rc)
		return warp__err(WARP_EDRIVER, "dpdk: port '%s': start: %s (for %llu ms)", gp->name,
				 errstr(rc), (unsigned long long)(waited / 1000000));
	gp->started = true;
	return 0;
}

/* A net_memif port in the client role, from its device arguments: whoever
 * created it (warp's vdev, or an application that started the EAL and
 * hands warp the port). memif's default role is client. */
static warp__cold bool memif_client_port(const struct rte_eth_dev_info *di)
{
	if (strcmp(di->driver_name, "net_memif") != 0)
		return false;
	const struct rte_devargs *da = di->device ? rte_dev_devargs(di->device) : NULL;
	const char *args = da && da->args ? da->args : "";
	return !strstr(args, "role=server") && !strstr(args, "role=master");
}

/* The MAC address an engine opening the port sends from and answers ARP
 * for: the port's own, read again at each open. A port without one (all
 * zeros: net_ring's ports) gets a random locally administered address,
 * chosen once and used by every engine on it: a zero sender address is not
 * an Ethernet station's, and ARP learns nothing from it (on_arp ignores
 * it), so engines on such ports never resolved each other. The PMD is
 * asked to take it; one that cannot (net_ring has no mac_addr_set) has no
 * address to filter by either. g_lock held. */
static warp__cold void port_mac(struct gport *gp)
{
	struct rte_ether_addr mac;
	if (rte_eth_macaddr_get(gp->port_id, &mac) == 0 && !rte_is_zero_ether_addr(&mac)) {
		gp->mac = mac;
		return;
	}
	if (rte_is_zero_ether_addr(&gp->mac)) /* not chosen at an earlier open */
		rte_eth_random_addr(gp->mac.addr_bytes);
	(void)rte_eth_dev_default_mac_addr_set(gp->port_id, &gp->mac);
}

/* Configure and start a port with `queues` queue pairs, a mempool per queue.
 * g_lock held. */
static warp__cold int port_setup(struct gport *gp, const warp_dpdk_config_t *c,
				 const struct warp_driver_open_args *a, uint32_t data_room,
				 uint32_t mbufs)
{
	uint16_t pid = gp->port_id;
	gp->data_room = data_room;
	gp->mtu = a->mtu;
	struct rte_eth_dev_info di;
	int rc = rte_eth_dev_info_get(pid, &di);
	if (rc)
		return warp__err(WARP_EDRIVER, "dpdk: port '%s': dev_info: %s", gp->name, errstr(rc));
	uint16_t q = gp->queues;
	if (q > di.max_rx_queues || q > di.max_tx_queues)
		return warp__err(WARP_ECONFIG,
				 "dpdk: queues = %u, but port '%s' (%s) offers at most %u RX and %u "
				 "TX queues",
				 q, gp->name, di.driver_name, di.max_rx_queues, di.max_tx_queues);
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (q > 1 && di.flow_type_rss_offloads) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & di.flow_type_rss_offloads;
	}
	uint64_t want = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	if (c->udp_checksum)
		want |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	gp->tx_offloads = di.tx_offload_capa & want;
	/* one offload without the other is no use: the frame is written once */
	if (!(gp->tx_offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM))
		gp->tx_offloads = 0;
	conf.txmode.offloads = gp->tx_offloads;
	if (di.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	if (di.rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	uint32_t frame_mtu = a->mtu + (uint32_t)(HDR_LEN - RTE_ETHER_HDR_LEN);
	if (frame_mtu > RTE_ETHER_MTU) {
		if (frame_mtu > di.max_mtu)
			return warp__err(WARP_ECONFIG,
					 "dpdk: mtu %u needs an IP MTU of %u, port '%s' allows at "
					 "most %u",
					 a->mtu, frame_mtu, gp->name, di.max_mtu);
		conf.rxmode.mtu = frame_mtu;
	}
	rc = rte_eth_dev_configure(pid, q, q, &conf);
	if (rc)
		return warp__err(WARP_EDRIVER, "dpdk: port '%s': configure %u queues: %s", gp->name,
				 q, errstr(rc));
	uint16_t nrx = c->rx_desc ? c->rx_desc : WARP_DPDK_DEFAULT_RX_DESC;
	uint16_t ntx = c->tx_desc ? c->tx_desc : WARP_DPDK_DEFAULT_TX_DESC;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nrx, &ntx);
	if (rc)
		return warp__err(WARP_EDRIVER, "dpdk: port '%s': descriptors %u/%u: %s", gp->name,
				 nrx, ntx, errstr(rc));
	int socket = rte_eth_dev_socket_id(pid);
	if (socket < 0)
		socket = (int)rte_socket_id();
	uint64_t need_mib = ((uint64_t)mbufs * mbuf_footprint(data_room) * q >> 20) + 1;
	for (uint16_t i = 0; i < q; i++) {
		char name[RTE_MEMPOOL_NAMESIZE];
		snprintf(name, sizeof(name), "warp%u_%u", g_pool_seq++, (unsigned)i);
		gp->mp[i] = rte_pktmbuf_pool_create(name, mbufs, MEMPOOL_CACHE, 0,
						    (uint16_t)(data_room + RTE_PKTMBUF_HEADROOM),
						    socket);
		if (!gp->mp[i]) {
			int e = rte_errno;
			if (e == ENOMEM) {
				struct rte_malloc_socket_stats st;
				uint64_t heap = 0;
				if (rte_malloc_get_socket_stats(socket, &st) == 0)
					heap = st.heap_freesz_bytes >> 20;
				return warp__err(WARP_ENOMEM,
						 "dpdk: mempool of %u mbufs x %u queues: need %llu "
						 "MiB of hugepages, have %llu; see docs/deployment.md",
						 mbufs, q, (unsigned long long)need_mib,
						 (unsigned long long)(free_hugepages_mib() + heap));
			}
			return warp__err(WARP_EDRIVER, "dpdk: mempool %s: %s", name, errstr(e));
		}
		rc = rte_eth_rx_queue_setup(pid, i, nrx, (unsigned)socket, NULL, gp->mp[i]);
		if (rc)
			return warp__err(WARP_EDRIVER, "dpdk: port '%s': rx queue %u: %s", gp->name,
					 i, errstr(rc));
		struct rte_eth_txconf txc = di.default_txconf;
		txc.offloads = gp->tx_offloads;
		rc = rte_eth_tx_queue_setup(pid, i, ntx, (unsigned)socket, &txc);
		if (rc)
			return warp__err(WARP_EDRIVER, "dpdk: port '%s': tx queue %u: %s", gp->name,
					 i, errstr(rc));
	}
	rc = port_start(gp, a);
	if (rc)
		return rc;
	gp->configured = true;
	gp->memif_client = memif_client_port(&di);
	/* frames to our MAC are what we want; promiscuous mode is not needed
	 * (af_packet sees everything anyway and we filter by MAC) */
	return 0;
}

/* A port nobody uses any more (or whose setup failed). A vdev warp
 * hot-plugged is closed and removed. Any other port (created by the EAL's
 * arguments, or the application's) cannot be probed again once closed, so
 * it is only stopped, and kept with its mempools for the next engine that
 * opens it. g_lock held. */
static warp__cold void port_release(struct gport *gp)
{
	if (gp->started)
		rte_eth_dev_stop(gp->port_id);
	gp->started = false;
	if (!gp->probed && gp->configured)
		return;
	struct rte_eth_dev_info di;
	struct rte_device *dev = NULL;
	if (rte_eth_dev_info_get(gp->port_id, &di) == 0)
		dev = di.device;
	if (gp->probed) {
		rte_eth_dev_close(gp->port_id);
		if (dev)
			rte_dev_remove(dev);
	}
	for (unsigned i = 0; i < MAX_QUEUES; i++)
		rte_mempool_free(gp->mp[i]);
	memset(gp, 0, sizeof(*gp));
}

/* A kept port opened again: start it as it was, or set it up afresh for
 * another queue count or a larger mtu. The old pools are freed only after
 * the set-up released the queues that may still hold their mbufs (a PMD
 * such as net_tap keeps RX buffers posted across a stop). g_lock held. */
static warp__cold int port_reuse(struct gport *gp, const warp_dpdk_config_t *c,
				 const struct warp_driver_open_args *a, uint32_t data_room,
				 uint32_t mbufs, uint16_t queues)
{
	if (gp->queues != queues || data_room > gp->data_room) {
		struct rte_mempool *old[MAX_QUEUES];
		for (unsigned i = 0; i < MAX_QUEUES; i++) {
			old[i] = gp->mp[i];
			gp->mp[i] = NULL;
		}
		gp->queues = queues;
		gp->configured = false;
		int rc = port_setup(gp, c, a, data_room, mbufs);
		for (unsigned i = 0; i < MAX_QUEUES; i++)
			rte_mempool_free(old[i]);
		return rc;
	}
	return port_start(gp, a);
}

/* ---- address parsing -------------------------------------------------------------- */

/* "a.b.c.d:port" -> ip and port in network order. */
static int parse_ip_port(const char *s, uint32_t *ip, uint16_t *port)
{
	char host[32];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	struct in_addr in;
	if (inet_pton(AF_INET, host, &in) != 1)
		return -1;
	char *end;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p > 65535)
		return -1;
	*ip = in.s_addr;
	*port = htons((uint16_t)p);
	return 0;
}

static int parse_mac(const char *s, struct rte_ether_addr *m)
{
	unsigned b[6];
	char tail;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		m->addr_bytes[i] = (uint8_t)b[i];
	return 0;
}

static int neigh_find(struct dpdk *d, uint32_t ip)
{
	for (uint32_t i = 0; i < d->n_neigh; i++)
		if (d->neigh[i].ip == ip)
			return (int)i;
	return -1;
}

/* The neighbour entry for ip, created (to be resolved) when new. */
static int neigh_get(struct dpdk *d, uint32_t ip)
{
	int i = neigh_find(d, ip);
	if (i >= 0)
		return i;
	if (d->n_neigh == d->max_neigh)
		return -1;
	struct neigh *n = &d->neigh[d->n_neigh];
	memset(n, 0, sizeof(*n));
	n->ip = ip;
	n->state = N_INCOMPLETE;
	d->n_incomplete++;
	d->arp_next_ns = 0; /* resolve it at the next poll */
	return (int)d->n_neigh++;
}

/* ---- frames ------------------------------------------------------------------------ */

static void send_ctl(struct dpdk *d, struct rte_mbuf *m)
{
	if (rte_eth_tx_burst(d->port_id, d->queue, &m, 1) == 1) {
		warp__cnt_add(d->cnt->drv_arp_tx, 1);
	} else {
		rte_pktmbuf_free(m);
		warp__cnt_add(d->cnt->drv_tx_errors, 1);
	}
}

static void arp_request(struct dpdk *d, struct neigh *n)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(d->mp);
	if (!m) {
		warp__cnt_add(d->cnt->drv_tx_no_mbuf, 1);
		return;
	}
	const size_t len = RTE_ETHER_HDR_LEN + sizeof(struct rte_arp_hdr);
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)rte_pktmbuf_append(m, len);
	memset(&eh->dst_addr, 0xff, sizeof(eh->dst_addr));
	eh->src_addr = d->mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	struct rte_arp_hdr *ah = (struct rte_arp_hdr *)(eh + 1);
	ah->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	ah->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ah->arp_hlen = RTE_ETHER_ADDR_LEN;
	ah->arp_plen = 4;
	ah->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
	ah->arp_data.arp_sha = d->mac;
	ah->arp_data.arp_sip = d->ip;
	memset(&ah->arp_data.arp_tha, 0, sizeof(ah->arp_data.arp_tha));
	ah->arp_data.arp_tip = n->ip;
	send_ctl(d, m);
}

/* A neighbour's MAC is known (or confirmed, or changed): send what waited
 * for it, and ask again after arp_reachable. */
static void neigh_resolved(struct dpdk *d, struct neigh *n, const struct rte_ether_addr *mac,
			   uint64_t now)
{
	if (n->state == N_STATIC)
		return;
	if (n->state == N_INCOMPLETE)
		d->n_incomplete--;
	n->mac = *mac;
	n->state = N_REACHABLE;
	n->tries = 0;
	n->next_req_ns = now + d->arp_reachable_ns;
	if (n->next_req_ns < d->arp_next_ns)
		d->arp_next_ns = n->next_req_ns;
	if (!n->nhold)
		return;
	for (uint8_t i = 0; i < n->nhold; i++) {
		struct rte_ether_hdr *eh = rte_pktmbuf_mtod(n->hold[i], struct rte_ether_hdr *);
		eh->dst_addr = *mac;
	}
	uint16_t sent = rte_eth_tx_burst(d->port_id, d->queue, n->hold, n->nhold);
	if (sent < n->nhold) {
		warp__cnt_add(d->cnt->drv_neigh_wait_drops, n->nhold - sent);
		rte_pktmbuf_free_bulk(n->hold + sent, n->nhold - sent);
	}
	n->nhold = 0;
}

static void neigh_drop_held(struct dpdk *d, struct neigh *n)
{
	if (!n->nhold)
		return;
	warp__cnt_add(d->cnt->drv_neigh_wait_drops, n->nhold);
	rte_pktmbuf_free_bulk(n->hold, n->nhold);
	n->nhold = 0;
}

/* Send ARP requests when due. A pending neighbour: a request every
 * arp_retry for the first four, then ten times slower; packets held for it
 * are dropped when its fourth request goes unanswered. A reachable one,
 * arp_reachable after it last answered: a request every arp_retry while its
 * old MAC stays in use; four unanswered make it pending again (a neighbour
 * whose MAC changed without a gratuitous ARP is found this way). Runs only
 * when the earliest one is due (arp_next_ns). */
static warp__cold void arp_timers(struct dpdk *d, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < d->n_neigh; i++) {
		struct neigh *n = &d->neigh[i];
		if (n->state == N_REACHABLE && n->next_req_ns <= now) {
			if (n->tries >= 4) {
				n->state = N_INCOMPLETE; /* gone, or moved: resolve anew */
				d->n_incomplete++;
			} else {
				n->tries++;
				n->next_req_ns = now + d->arp_retry_ns;
				arp_request(d, n);
			}
		}
		if (n->state == N_REACHABLE) {
			if (n->next_req_ns < next)
				next = n->next_req_ns;
			continue;
		}
		if (n->state != N_INCOMPLETE)
			continue;
		if (n->next_req_ns <= now) {
			if (n->tries >= 4)
				neigh_drop_held(d, n);
			if (n->tries < UINT16_MAX)
				n->tries++;
			n->next_req_ns = now + d->arp_retry_ns * (n->tries <= 4 ? 1 : 10);
			arp_request(d, n);
		}
		if (n->next_req_ns < next)
			next = n->next_req_ns;
	}
	d->arp_next_ns = next;
}

/* An ARP frame: answer requests for our address in place (the mbuf goes back
 * out as the reply) and learn the sender when it is a neighbour we need.
 * Returns true when the mbuf was consumed. */
static bool on_arp(struct dpdk *d, struct rte_mbuf *m, uint64_t now)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (m->data_len < RTE_ETHER_HDR_LEN + sizeof(struct rte_arp_hdr)) {
		warp__cnt_add(d->cnt->drv_rx_bad_header, 1);
		return false;
	}
	struct rte_arp_hdr *ah = (struct rte_arp_hdr *)(eh + 1);
	if (ah->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    ah->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    ah->arp_hlen != RTE_ETHER_ADDR_LEN || ah->arp_plen != 4) {
		warp__cnt_add(d->cnt->drv_rx_bad_header, 1);
		return false;
	}
	warp__cnt_add(d->cnt->drv_arp_rx, 1);
	uint32_t sip = ah->arp_data.arp_sip, tip = ah->arp_data.arp_tip;
	int ni = neigh_find(d, sip);
	if (ni >= 0 && sip != 0 && !rte_is_zero_ether_addr(&ah->arp_data.arp_sha))
		neigh_resolved(d, &d->neigh[ni], &ah->arp_data.arp_sha, now);
	if (tip != d->ip || ah->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST))
		return false;
	/* the reply, written over the request */
	ah->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	ah->arp_data.arp_tha = ah->arp_data.arp_sha;
	ah->arp_data.arp_tip = sip;
	ah->arp_data.arp_sha = d->mac;
	ah->arp_data.arp_sip = d->ip;
	eh->dst_addr = ah->arp_data.arp_tha;
	eh->src_addr = d->mac;
	m->ol_flags = 0;
	send_ctl(d, m);
	return true;
}

static void mbuf_release(void *ctx, void *ext)
{
	struct dpdk *d = ctx;
	d->to_free[d->n_to_free++] = ext;
	if (d->n_to_free == FREE_BATCH) {
		rte_pktmbuf_free_bulk(d->to_free, d->n_to_free);
		d->n_to_free = 0;
	}
}

/* Stop and start the port (a memif client reconnects). g_lock held, and no
 * other engine is using the port. */
static warp__cold void port_restart(struct dpdk *d)
{
	rte_eth_dev_stop(d->port_id);
	if (rte_eth_dev_start(d->port_id) != 0)
		snprintf(d->err, sizeof(d->err), "port '%s': restart failed, link down",
			 d->gp->name);
}

/* The port restarts (restart_req): keep off it until that is done. The last
 * of its engines to park restarts it. Returns true while this engine must
 * not touch the port. Called by the bursts only during a restart. */
static warp__cold bool park(struct dpdk *d)
{
	struct gport *gp = d->gp;
	bool keep_off = false;
	pthread_mutex_lock(&g_lock);
	if (d->parked && d->parked_epoch != gp->restart_epoch)
		d->parked = false; /* parked for a restart that is over */
	if (atomic_load_explicit(&gp->restart_req, memory_order_relaxed)) {
		if (!d->parked) {
			d->parked = true;
			d->parked_epoch = gp->restart_epoch;
			gp->parked++;
		}
		if (gp->parked >= gp->users) {
			port_restart(d);
			gp->parked = 0;
			gp->restart_epoch++;
			atomic_store_explicit(&gp->restart_req, false, memory_order_release);
			d->parked = false;
		} else {
			keep_off = true;
		}
	} else {
		d->parked = false;
	}
	pthread_mutex_unlock(&g_lock);
	return keep_off;
}

static inline bool parked(struct dpdk *d)
{
	if (warp__likely(!d->parked &&
			 !atomic_load_explicit(&d->gp->restart_req, memory_order_relaxed)))
		return false;
	return park(d);
}

static warp__cold void slow_work(struct dpdk *d, uint64_t now)
{
	if (!d->registered) {
		/* An lcore id gives this thread the mempool's per-lcore cache.
		 * It is not given back (that must happen on this thread, and
		 * close may run on another): a process that makes engines on
		 * new threads again and again uses up RTE_MAX_LCORE ids, after
		 * which engines run without the cache. */
		d->registered = true;
		if (rte_lcore_id() == LCORE_ID_ANY && rte_thread_register() != 0)
			snprintf(d->err, sizeof(d->err),
				 "rte_thread_register: %s (the engine runs without the "
				 "mempool cache)",
				 errstr(rte_errno));
	}
	if (now >= d->link_next_ns) {
		struct rte_eth_link link;
		if (rte_eth_link_get_nowait(d->port_id, &link) == 0)
			d->link_up = link.link_status == RTE_ETH_LINK_UP;
		d->link_next_ns = now + d->link_every_ns;
		if (d->link_up)
			d->link_down_ns = 0;
		else if (!d->link_down_ns)
			d->link_down_ns = now;
		/* A memif client whose server was not there (or went away) does
		 * not try again by itself: restart the port, which reconnects,
		 * once the link has been down for a while (not while a first
		 * connection is still being made): its engines park at their
		 * next burst, and the last to park restarts it (park()). */
		if (!d->link_up && d->gp->memif_client &&
		    now - d->link_down_ns >= MEMIF_RESTART_NS &&
		    pthread_mutex_trylock(&g_lock) == 0) {
			d->link_down_ns = now;
			atomic_store_explicit(&d->gp->restart_req, true, memory_order_release);
			pthread_mutex_unlock(&g_lock);
		}
	}
	if (now >= d->arp_next_ns)
		arp_timers(d, now);
}

static uint16_t dpdk_rx_burst(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now)
{
	struct dpdk *d = ctx;
	if (d->n_to_free) {
		rte_pktmbuf_free_bulk(d->to_free, d->n_to_free);
		d->n_to_free = 0;
	}
	if (warp__unlikely(parked(d)))
		return 0;
	if (warp__unlikely(now >= d->link_next_ns || now >= d->arp_next_ns ||
			   !d->registered))
		slow_work(d, now);
	if (n > MAX_BURST)
		n = MAX_BURST;
	uint16_t nb = rte_eth_rx_burst(d->port_id, d->queue, d->rx, n);
	uint16_t out = 0;
	for (uint16_t i = 0; i < nb; i++) {
		struct rte_mbuf *m = d->rx[i];
		struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		if (warp__unlikely(m->nb_segs != 1)) {
			warp__cnt_add(d->cnt->drv_rx_segmented, 1);
			goto drop;
		}
		if (warp__unlikely(m->data_len < RTE_ETHER_HDR_LEN)) {
			warp__cnt_add(d->cnt->drv_rx_bad_header, 1);
			goto drop;
		}
		if (eh->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
			if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
				if (on_arp(d, m, now))
					continue;
			} else {
				warp__cnt_add(d->cnt->drv_rx_other_proto, 1);
			}
			goto drop;
		}
		if (warp__unlikely(!rte_is_same_ether_addr(&eh->dst_addr, &d->mac))) {
			warp__cnt_add(d->cnt->drv_rx_not_ours, 1);
			goto drop;
		}
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
		uint32_t room = m->data_len - RTE_ETHER_HDR_LEN;
		uint32_t ihl;
		if (warp__unlikely(room < sizeof(*ip) + sizeof(struct rte_udp_hdr) ||
				   (ip->version_ihl >> 4) != 4 ||
				   (ihl = (ip->version_ihl & 0xfu) * 4u) < sizeof(*ip) ||
				   rte_be_to_cpu_16(ip->total_length) > room ||
				   rte_be_to_cpu_16(ip->total_length) <
					   ihl + sizeof(struct rte_udp_hdr) ||
				   (ip->fragment_offset &
				    rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))) {
			warp__cnt_add(d->cnt->drv_rx_bad_header, 1);
			goto drop;
		}
		if (ip->next_proto_id != IPPROTO_UDP) {
			warp__cnt_add(d->cnt->drv_rx_other_proto, 1);
			goto drop;
		}
		uint64_t ipck = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
		if (warp__unlikely(ipck == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
				   (ipck != RTE_MBUF_F_RX_IP_CKSUM_GOOD &&
				    ipck != RTE_MBUF_F_RX_IP_CKSUM_NONE &&
				    rte_raw_cksum(ip, ihl) != 0xffff) ||
				   (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) ==
					   RTE_MBUF_F_RX_L4_CKSUM_BAD)) {
			warp__cnt_add(d->cnt->drv_rx_bad_header, 1);
			goto drop;
		}
		struct rte_udp_hdr *uh = (struct rte_udp_hdr *)((uint8_t *)ip + ihl);
		uint32_t ulen = rte_be_to_cpu_16(uh->dgram_len);
		if (warp__unlikely(ulen < sizeof(*uh) ||
				   ulen > rte_be_to_cpu_16(ip->total_length) - ihl)) {
			warp__cnt_add(d->cnt->drv_rx_bad_header, 1);
			goto drop;
		}
		if (warp__unlikely(ip->dst_addr != d->ip || uh->dst_port != d->udp_port)) {
			warp__cnt_add(d->cnt->drv_rx_not_ours, 1);
			goto drop;
		}
		struct warp_pkt *p = warp__pkt_get(d->pool);
		if (warp__unlikely(!p)) {
			warp__cnt_add(d->cnt->drv_rx_errors, 1);
			goto drop;
		}
		p->ext = m;
		p->data = (uint8_t *)(uh + 1);
		p->len = ulen - (uint32_t)sizeof(*uh);
		p->cap = p->len;
		p->rx_ns = now;
		p->addr.len = 8;
		memcpy(p->addr.b, &ip->src_addr, 4);
		memcpy(p->addr.b + 4, &uh->src_port, 2);
		p->addr.b[6] = p->addr.b[7] = 0xff;
		pkts[out++] = p;
		continue;
drop:
		rte_pktmbuf_free(m);
	}
	return out;
}

/* Ethernet/IPv4/UDP in front of the packet's bytes, into m. */
static inline void build_frame(struct dpdk *d, struct rte_mbuf *m, const struct warp_pkt *p,
			       const struct neigh *n)
{
	uint32_t len = (uint32_t)HDR_LEN + p->len;
	uint8_t *b = rte_pktmbuf_mtod(m, uint8_t *);
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)b;
	eh->dst_addr = n->mac;
	eh->src_addr = d->mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(len - RTE_ETHER_HDR_LEN));
	ip->packet_id = rte_cpu_to_be_16(d->ip_id++);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->hdr_checksum = 0;
	memcpy(&ip->src_addr, &d->ip, 4);
	memcpy(&ip->dst_addr, p->addr.b, 4);
	struct rte_udp_hdr *uh = (struct rte_udp_hdr *)(ip + 1);
	uh->src_port = d->udp_port;
	memcpy(&uh->dst_port, p->addr.b + 4, 2);
	uh->dgram_len = rte_cpu_to_be_16((uint16_t)(p->len + sizeof(*uh)));
	uh->dgram_cksum = 0;
	rte_memcpy(uh + 1, p->data, p->len);
	if (d->off_ip) {
		m->l2_len = RTE_ETHER_HDR_LEN;
		m->l3_len = sizeof(*ip);
		m->ol_flags = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
		if (d->off_udp) {
			m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
			uh->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
		} else if (d->udp_cksum) {
			uh->dgram_cksum = rte_ipv4_udptcp_cksum(ip, uh);
		}
	} else {
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		if (d->udp_cksum)
			uh->dgram_cksum = rte_ipv4_udptcp_cksum(ip, uh);
	}
}

static uint16_t dpdk_tx_burst(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now)
{
	struct dpdk *d = ctx;
	if (warp__unlikely(parked(d)))
		return 0; /* the engine keeps the packets until the port is back */
	if (n > MAX_BURST)
		n = MAX_BURST;
	struct rte_mbuf *m[MAX_BURST];
	struct neigh *nbs[MAX_BURST]; /* each packet's next hop */
	/* all or nothing: with fewer mbufs left, send what they allow */
	while (warp__unlikely(rte_pktmbuf_alloc_bulk(d->mp, m, n) != 0)) {
		warp__cnt_add(d->cnt->drv_tx_no_mbuf, 1);
		if (n == 1)
			return 0; /* the engine keeps the packets and retries */
		n /= 2;
	}
	uint16_t k = 0;
	for (uint16_t i = 0; i < n; i++) {
		const struct warp_pkt *p = pkts[i];
		uint16_t slot;
		memcpy(&slot, p->addr.b + 6, 2);
		if (warp__unlikely(slot >= d->n_neigh)) {
			/* not an address from this driver's parse_addr: cannot
			 * happen (every send address comes from it); refuse it
			 * rather than index past the table */
			rte_pktmbuf_free_bulk(m + i, n - i);
			n = i;
			break;
		}
		nbs[i] = &d->neigh[slot];
		build_frame(d, m[i], p, nbs[i]);
		if (warp__likely(nbs[i]->state >= N_REACHABLE)) {
			d->tx[k] = m[i];
			d->tx_idx[k++] = i;
		}
	}
	uint16_t sent = k ? rte_eth_tx_burst(d->port_id, d->queue, d->tx, k) : 0;
	/* Packets up to the first one the queue refused are done: sent, or held
	 * for ARP. The rest stay with the engine (their mbufs are freed). */
	uint16_t done = sent == k ? n : d->tx_idx[sent];
	for (uint16_t i = 0; i < done; i++) {
		struct neigh *nb = nbs[i];
		if (warp__unlikely(nb->state < N_REACHABLE)) {
			if (nb->nhold < WARP_DPDK_NEIGH_HOLD) {
				nb->hold[nb->nhold++] = m[i];
			} else {
				warp__cnt_add(d->cnt->drv_neigh_wait_drops, 1);
				rte_pktmbuf_free(m[i]);
			}
			if (nb->tries == 0) { /* first packet for it: ask now */
				nb->tries = 1;
				nb->next_req_ns = now + d->arp_retry_ns;
				if (nb->next_req_ns < d->arp_next_ns)
					d->arp_next_ns = nb->next_req_ns;
				arp_request(d, nb);
			}
		}
		warp__pkt_put(d->pool, pkts[i]);
	}
	if (done < n) /* a full queue is back-pressure: the engine counts it */
		rte_pktmbuf_free_bulk(m + done, n - done);
	return done;
}

static int dpdk_parse_addr(void *ctx, const char *s, warp__addr_t *out)
{
	struct dpdk *d = ctx;
	uint32_t ip;
	uint16_t port;
	if (parse_ip_port(s, &ip, &port))
		return warp__err(WARP_EINVALID_NODE,
				 "dpdk: address '%s': expected IPv4 'a.b.c.d:port' (IPv6 is not "
				 "supported by the dpdk driver)",
				 s);
	if (ip == d->ip && port == d->udp_port)
		return warp__err(WARP_EINVALID_NODE, "dpdk: address '%s' is this engine's own", s);
	uint32_t hop = ip;
	if (d->mask && (ip & d->mask) != (d->ip & d->mask)) {
		if (!d->gateway)
			return warp__err(WARP_EINVALID_NODE,
					 "dpdk: address '%s' is outside the local subnet and no "
					 "gateway is configured",
					 s);
		hop = d->gateway;
	}
	int slot = neigh_get(d, hop);
	if (slot < 0)
		return warp__err(WARP_ENOMEM, "dpdk: neighbour table full (%u entries)",
				 d->max_neigh);
	memset(out, 0, sizeof(*out));
	out->len = 8;
	memcpy(out->b, &ip, 4);
	memcpy(out->b + 4, &port, 2);
	uint16_t s16 = (uint16_t)slot;
	memcpy(out->b + 6, &s16, 2);
	return 0;
}

static bool dpdk_link_up(void *ctx)
{
	return ((struct dpdk *)ctx)->link_up;
}

static int dpdk_local_addr(void *ctx, char *buf, size_t cap)
{
	struct dpdk *d = ctx;
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &d->ip, ip, sizeof(ip));
	int n = snprintf(buf, cap, "%s:%u", ip, ntohs(d->udp_port));
	return n < 0 || (size_t)n >= cap ? WARP_EINVAL : 0;
}

static int dpdk_last_error(void *ctx, char *buf, size_t cap)
{
	struct dpdk *d = ctx;
	snprintf(buf, cap, "%s", d->err);
	return 0;
}

static warp__cold int dpdk_open(const struct warp_driver_open_args *a, void **ctx)
{
	warp_dpdk_config_t defc;
	const warp_dpdk_config_t *c = a->driver_arg;
	if (!c) {
		warp_dpdk_config_init(&defc);
		c = &defc;
	}
	uint32_t ip;
	uint16_t port;
	if (parse_ip_port(a->listen, &ip, &port) || port == 0)
		return warp__err(WARP_ECONFIG,
				 "listen: '%s': the dpdk driver needs this node's IPv4 address and "
				 "UDP port, 'a.b.c.d:port'",
				 a->listen);
	uint16_t queues = c->queues ? c->queues : 1;
	if (queues > MAX_QUEUES || c->queue >= queues)
		return warp__err(WARP_ECONFIG, "dpdk: queue %u of %u queues (at most %u)", c->queue,
				 queues, MAX_QUEUES);
	if (c->prefix_len > 32)
		return warp__err(WARP_ECONFIG, "dpdk: subnet prefix /%u is not 0..32", c->prefix_len);
	uint32_t gw = 0;
	if (c->gateway[0]) {
		struct in_addr in;
		if (inet_pton(AF_INET, c->gateway, &in) != 1)
			return warp__err(WARP_ECONFIG, "dpdk: gateway '%s' is not an IPv4 address",
					 c->gateway);
		gw = in.s_addr;
	}
	/* one frame per mbuf: headroom, headers and the MTU */
	uint32_t data_room = RTE_MAX((uint32_t)RTE_MBUF_DEFAULT_DATAROOM, a->mtu + (uint32_t)HDR_LEN);
	uint32_t rxd = c->rx_desc ? c->rx_desc : WARP_DPDK_DEFAULT_RX_DESC;
	uint32_t txd = c->tx_desc ? c->tx_desc : WARP_DPDK_DEFAULT_TX_DESC;
	uint32_t mbufs = c->mbufs ? c->mbufs : rxd + txd + a->pool->n + 1024u;
	uint64_t pool_mib = ((uint64_t)mbufs * mbuf_footprint(data_room) * queues >> 20) + 1;

	struct dpdk *d = calloc(1, sizeof(*d));
	if (!d)
		return warp__err(WARP_ENOMEM, "dpdk: out of memory");
	d->pool = a->pool;
	d->cnt = a->cnt;
	d->ip = ip;
	d->udp_port = port;
	d->mask = c->prefix_len ? htonl(~0u << (32 - c->prefix_len)) : 0;
	d->gateway = gw;
	d->udp_cksum = c->udp_checksum;
	d->link_every_ns = c->link_check_ns ? c->link_check_ns : WARP_DPDK_DEFAULT_LINK_CHECK_NS;
	d->arp_retry_ns = c->arp_retry_ns ? c->arp_retry_ns : WARP_DPDK_DEFAULT_ARP_RETRY_NS;
	d->arp_reachable_ns =
		c->arp_reachable_ns ? c->arp_reachable_ns : WARP_DPDK_DEFAULT_ARP_REACHABLE_NS;
	d->queue = c->queue;
	d->max_neigh = a->max_peers + WARP_DPDK_MAX_NEIGH + 1;
	d->neigh = calloc(d->max_neigh, sizeof(*d->neigh));
	if (!d->neigh) {
		free(d);
		return warp__err(WARP_ENOMEM, "dpdk: out of memory");
	}
	for (uint32_t i = 0; i < c->n_neigh && i < WARP_DPDK_MAX_NEIGH; i++) {
		struct in_addr in;
		struct rte_ether_addr mac;
		if (inet_pton(AF_INET, c->neigh[i].ip, &in) != 1 || parse_mac(c->neigh[i].mac, &mac)) {
			int rc = warp__err(WARP_ECONFIG,
					   "dpdk: neighbor %u: '%s %s' is not '<IPv4> <MAC>'", i,
					   c->neigh[i].ip, c->neigh[i].mac);
			free(d->neigh);
			free(d);
			return rc;
		}
		int s = neigh_get(d, in.s_addr);
		if (d->neigh[s].state == N_INCOMPLETE)
			d->n_incomplete--;
		d->neigh[s].state = N_STATIC; /* a repeated address: the last MAC wins */
		d->neigh[s].mac = mac;
	}

	if (a->pool->ext_free) {
		free(d->neigh);
		free(d);
		return warp__err(WARP_ECONFIG,
				 "dpdk: one dpdk transport per engine (received mbufs are lent "
				 "through the engine's packet pool); use one engine per port");
	}
	if (mbufs < 2 * MEMPOOL_CACHE) {
		free(d->neigh);
		free(d);
		return warp__err(WARP_ECONFIG, "dpdk: mbufs = %u is too few (at least %u)", mbufs,
				 2 * MEMPOOL_CACHE);
	}
	pthread_mutex_lock(&g_lock);
	int rc = eal_start(c, a, pool_mib);
	if (rc)
		goto fail;
	uint16_t pid;
	bool probed;
	rc = port_lookup(c, &pid, &probed);
	if (rc)
		goto fail;
	struct gport *gp = gport_find(pid);
	if (!gp) {
		for (unsigned i = 0; i < MAX_PORTS && !gp; i++)
			if (!g_ports[i].used)
				gp = &g_ports[i];
		if (!gp) {
			rc = warp__err(WARP_ENOMEM, "dpdk: more than %u ports", MAX_PORTS);
			goto fail;
		}
		memset(gp, 0, sizeof(*gp));
		gp->used = true;
		gp->port_id = pid;
		gp->queues = queues;
		gp->probed = probed;
		rte_eth_dev_get_name_by_port(pid, gp->name);
		rc = port_setup(gp, c, a, data_room, mbufs);
		if (rc) {
			port_release(gp);
			goto fail;
		}
	} else if (gp->users == 0) {
		rc = port_reuse(gp, c, a, data_room, mbufs, queues);
		if (rc) {
			port_release(gp);
			goto fail;
		}
	} else if (gp->queues != queues) {
		rc = warp__err(WARP_ECONFIG,
			       "dpdk: port '%s' was set up with %u queues by another engine, this "
			       "one says %u",
			       gp->name, gp->queues, queues);
		goto fail;
	} else if (data_room > gp->data_room) {
		/* its mbufs would be too small for our packets (and its MTU
		 * for our peers' frames) */
		rc = warp__err(WARP_ECONFIG,
			       "dpdk: port '%s' was set up for mtu %u by another engine, this one "
			       "says %u (engines sharing a port take the same mtu)",
			       gp->name, gp->mtu, a->mtu);
		goto fail;
	}
	if (gp->taken & (1ull << c->queue)) {
		rc = warp__err(WARP_EEXIST, "dpdk: port '%s' queue %u is used by another engine",
			       gp->name, c->queue);
		goto fail;
	}
	gp->taken |= 1ull << c->queue;
	gp->users++;
	d->gp = gp;
	d->port_id = pid;
	d->mp = gp->mp[c->queue];
	d->off_ip = (gp->tx_offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
	d->off_udp = (gp->tx_offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0;
	port_mac(gp);
	d->mac = gp->mac;
	pthread_mutex_unlock(&g_lock);

	struct rte_eth_link link;
	if (rte_eth_link_get_nowait(pid, &link) == 0)
		d->link_up = link.link_status == RTE_ETH_LINK_UP;
	a->pool->ext_free = mbuf_release;
	a->pool->ext_ctx = d;
	*ctx = d;
	return 0;
fail:
	pthread_mutex_unlock(&g_lock);
	free(d->neigh);
	free(d);
	return rc;
}

static warp__cold void dpdk_close(void *ctx)
{
	struct dpdk *d = ctx;
	if (!d)
		return;
	if (d->n_to_free)
		rte_pktmbuf_free_bulk(d->to_free, d->n_to_free);
	for (uint32_t i = 0; i < d->n_neigh; i++)
		if (d->neigh[i].nhold)
			rte_pktmbuf_free_bulk(d->neigh[i].hold, d->neigh[i].nhold);
	if (d->pool->ext_ctx == d)
		d->pool->ext_ctx = NULL; /* the engine returned every lent mbuf before close */
	pthread_mutex_lock(&g_lock);
	struct gport *gp = d->gp;
	if (gp) {
		gp->taken &= ~(1ull << d->queue);
		if (d->parked && d->parked_epoch == gp->restart_epoch)
			gp->parked--;
		if (--gp->users == 0) {
			atomic_store_explicit(&gp->restart_req, false, memory_order_relaxed);
			gp->parked = 0;
			port_release(gp);
		}
	}
	pthread_mutex_unlock(&g_lock);
	free(d->neigh);
	free(d);
}

const struct warp_driver_ops warp__dpdk_driver = {
	.name = "dpdk",
	.caps = WARP_DRV_DATAGRAM,
	.open = dpdk_open,
	.close = dpdk_close,
	.parse_addr = dpdk_parse_addr,
	.rx_burst = dpdk_rx_burst,
	.tx_burst = dpdk_tx_burst,
	.link_up = dpdk_link_up,
	.local_addr = dpdk_local_addr,
	.last_error = dpdk_last_error,
};
