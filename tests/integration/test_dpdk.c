/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dpdk driver on real DPDK ports:
 * - two processes over net_memif: the two-process suite of the io_uring
 *   drivers (100,000 messages up to 1 MiB, three streams, byte-exact), and
 *   the secure session (mutual TLS 1.3: up and encrypted, or refused with
 *   the reason on both sides);
 * - net_ring: an application's pair of ring ports (eal = external) joining
 *   two engines of one process, which resolve each other with ARP and
 *   exchange messages both ways, the checksums computed in software;
 * - interop: a DPDK node on net_af_packet on one end of a veth pair in one
 *   network namespace, a uring-udp node on the other end in another, both
 *   ways, resolving each other with ARP;
 * - RSS: two engines on a net_tap port of two queue pairs, 16 kernel flows
 *   spread across them by the kernel, each served whole by one engine;
 * - frames that are not ours (other MAC, address, port, protocol, bad
 *   headers) dropped and counted, ARP requests for us answered;
 * - bad setup: hugepages short, port missing, malformed vdev, more queues
 *   than the PMD has, and the other configuration errors.
 * Every test runs in its own process (Criterion forks), which is what lets
 * each start its own EAL. They need hugepages (and root for namespaces);
 * without them they say why and skip. .ci/run reserves both.
 */
/* rte_eth_dev_conf_get (experimental in 22.11): how the driver configured a port */
#define ALLOW_EXPERIMENTAL_API

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <netinet/ether.h>
#include <net/if.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_peek.h>
#if WARP_TEST_NET_RING /* tests/meson.build found librte_net_ring */
#include <rte_eth_ring.h>
#endif

#include "two_processes.h"
#include "warp/dpdk.h"

static uint64_t free_hugepages(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	char line[128];
	unsigned long n = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %lu", &n) == 1)
			break;
	fclose(f);
	return n;
}

static void need_hugepages(void)
{
	if (free_hugepages() < 64)
		cr_skip("needs free hugepages (echo 1024 > /proc/sys/vm/nr_hugepages as root; "
			".ci/run does)");
}

static warp_engine_t *dpdk_engine(const char *name, const char *listen,
				  const warp_dpdk_config_t *dc, uint32_t max_payload)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	cfg.max_payload_bytes = max_payload;
	cfg.tx_arena_bytes = cfg.rx_arena_bytes = 16u << 20;
	if (warp_config_add_transport(&cfg, "dpdk", listen, (void *)dc))
		return NULL;
	warp_engine_t *e = NULL;
	if (warp_engine_create(&cfg, &e))
		return NULL;
	return e;
}

/* ---- two processes over net_memif -------------------------------------------- */

static char memif_sock[108];

/* This test's memif socket file (the test process's pid in its name). */
static void memif_sock_name(void)
{
	snprintf(memif_sock, sizeof(memif_sock), "/tmp/warp-test-memif-%d.sock", (int)getpid());
}
static warp_dpdk_config_t memif_cfg; /* per process after the fork */

/* tx: the memif server on cpu 0; rx: the client on cpu 1. */
static warp_engine_t *memif_engine(const char *drv, const char *name)
{
	(void)drv;
	bool server = strcmp(name, "tx") == 0;
	warp_dpdk_config_init(&memif_cfg);
	snprintf(memif_cfg.lcores, sizeof(memif_cfg.lcores), "%d", server ? 0 : 1);
	snprintf(memif_cfg.vdevs[0], sizeof(memif_cfg.vdevs[0]), "net_memif0,role=%s,socket=%s",
		 server ? "server" : "client", memif_sock);
	memif_cfg.n_vdevs = 1;
	snprintf(memif_cfg.port, sizeof(memif_cfg.port), "net_memif0");
	warp_engine_t *e = dpdk_engine(name, server ? "10.98.0.1:7000" : "10.98.0.2:7000",
				       &memif_cfg, 1u << 20);
	if (!e)
		fprintf(stderr, "dpdk %s: %s\n", name, warp_errdetail());
	return e;
}

/* The two-process test of two_processes.h over net_memif, each half's
 * engine made by make. */
static void memif_two_processes(tp_engine_fn make)
{
	need_hugepages();
	memif_sock_name();
	two_processes_with("dpdk", make);
	unlink(memif_sock);
}

Test(dpdk_memif, two_processes_100k_messages_byte_exact, .timeout = 240)
{
	memif_two_processes(memif_engine);
}

/* The receiving half as an application that runs DPDK itself: it starts
 * the EAL (probing the memif client port with its own --vdev) and hands
 * warp that port by name (eal = external). warp configures the port's
 * queues and pools; the application must not have configured it. The
 * sending half (the memif server) starts half a second late, so the
 * client's first connect finds nobody: warp must know the port as a memif
 * client from its device arguments (not from a vdev of its own config) to
 * restart it until it connects. */
static warp_engine_t *memif_engine_app_eal(const char *drv, const char *name)
{
	if (strcmp(name, "rx") != 0) {
		/* the server comes late: the application's client port finds
		 * no server and must be restarted by warp until it connects */
		usleep(500000);
		return memif_engine(drv, name);
	}
	char prefix[64], vdev[200];
	snprintf(prefix, sizeof(prefix), "--file-prefix=warp-test-app-%d", (int)getpid());
	snprintf(vdev, sizeof(vdev), "--vdev=net_memif0,role=client,socket=%s", memif_sock);
	char *argv[] = { "app",		  "-l",	   "1",	   "--no-pci", "--in-memory",
			 prefix,	  vdev,	   "--no-telemetry", "--log-level=lib.eal:error",
			 NULL };
	if (rte_eal_init((int)WARP__ARRAY_LEN(argv) - 1, argv) < 0) {
		fprintf(stderr, "rx: the application's rte_eal_init: %s\n",
			rte_strerror(rte_errno));
		return NULL;
	}
	warp_dpdk_config_init(&memif_cfg);
	memif_cfg.eal_external = true;
	snprintf(memif_cfg.port, sizeof(memif_cfg.port), "net_memif0");
	warp_engine_t *e = dpdk_engine(name, "10.98.0.2:7000", &memif_cfg, 1u << 20);
	if (!e)
		fprintf(stderr, "dpdk %s (external EAL): %s\n", name, warp_errdetail());
	return e;
}

Test(dpdk_memif, an_application_that_started_the_eal_hands_warp_its_port, .timeout = 240)
{
	memif_two_processes(memif_engine_app_eal);
}

/* ---- several engines on one port: a queue pair each -------------------------------- */

/* Two processes, each with two engines on one net_memif port of two queue
 * pairs (queues = 2, queue = 0 and 1), all four on the same address. memif
 * hands what a process sends on its queue q to the other's queue q, so
 * engine q of one process talks to engine q of the other; each engine
 * polls only its own queue. */

#define MQ_MSGS 1000

struct mq_shm {
	_Atomic int ready, done;
	_Atomic uint64_t got[2][2], bad[2][2]; /* [process][queue] */
	warp_stats_t st[2][2];
	char err[2][256];
	char dup_err[256]; /* a third engine on queue 0 */
	int dup_rc;
};

static warp_dpdk_config_t mq_cfg[3]; /* a driver_arg each */

static warp_engine_t *mq_engine(int me, uint16_t q, int slot, int *rc)
{
	warp_dpdk_config_t *c = &mq_cfg[slot];
	warp_dpdk_config_init(c);
	snprintf(c->lcores, sizeof(c->lcores), "%d", me);
	snprintf(c->vdevs[0], sizeof(c->vdevs[0]), "net_memif0,role=%s,socket=%s",
		 me ? "client" : "server", memif_sock);
	c->n_vdevs = 1;
	snprintf(c->port, sizeof(c->port), "net_memif0");
	c->queues = 2;
	c->queue = q;
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%c%u", me ? 'c' : 's', (unsigned)q);
	cfg.max_payload_bytes = 64u << 10;
	cfg.tx_arena_bytes = cfg.rx_arena_bytes = 16u << 20;
	warp_engine_t *e = NULL;
	*rc = warp_config_add_transport(&cfg, "dpdk", me ? "10.98.0.2:7000" : "10.98.0.1:7000",
					c);
	if (!*rc)
		*rc = warp_engine_create(&cfg, &e);
	return e;
}

struct mq_side {
	_Atomic uint64_t *got, *bad;
};

static void mq_recv(void *user, const warp_msg_t *m)
{
	struct mq_side *sd = user;
	if (m->status)
		return;
	if (!th_check(m->data, m->len, th_seed(m->stream_id, m->msg_id, m->len)))
		atomic_fetch_add(sd->bad, 1);
	atomic_fetch_add(sd->got, 1);
}

static void mq_node(struct mq_shm *sh, int me)
{
	warp_engine_t *e[2];
	int rc;
	for (uint16_t q = 0; q < 2; q++) {
		e[q] = mq_engine(me, q, q, &rc);
		if (!e[q]) {
			snprintf(sh->err[me], sizeof(sh->err[me]), "queue %u: %s", (unsigned)q,
				 warp_errdetail());
			atomic_fetch_add(&sh->ready, 100);
			_exit(1);
		}
	}
	if (me == 0) {
		warp_engine_t *third = mq_engine(me, 0, 2, &sh->dup_rc);
		snprintf(sh->dup_err, sizeof(sh->dup_err), "%s", warp_errdetail());
		if (third)
			warp_engine_destroy(third);
	}
	warp_stream_t *s[2];
	struct mq_side sd[2];
	for (uint16_t q = 0; q < 2; q++) {
		char peer[64];
		snprintf(peer, sizeof(peer), "%c%u@%s", me ? 's' : 'c', (unsigned)q,
			 me ? "10.98.0.1:7000" : "10.98.0.2:7000");
		warp_peer_t *p;
		if (warp_peer_add(e[q], peer, &p) || warp_stream_open(e[q], p, 1, 100, &s[q])) {
			snprintf(sh->err[me], sizeof(sh->err[me]), "%s", warp_errdetail());
			_exit(2);
		}
		sd[q] = (struct mq_side){ .got = &sh->got[me][q], .bad = &sh->bad[me][q] };
		warp_engine_set_recv(e[q], mq_recv, &sd[q]);
	}
	atomic_fetch_add(&sh->ready, 1);
	while (atomic_load(&sh->ready) < 2) {
		warp_engine_poll(e[0]);
		warp_engine_poll(e[1]);
	}
	uint8_t buf[1200];
	for (uint64_t i = 0; i < MQ_MSGS; i++) {
		for (uint16_t q = 0; q < 2; q++) {
			size_t len = (size_t)((i * 2654435761u + q) % sizeof(buf));
			th_fill(buf, len, th_seed(1, i, len));
			while ((rc = warp_send(e[q], s[q], buf, len, NULL)) == WARP_EAGAIN) {
				warp_engine_poll(e[0]);
				warp_engine_poll(e[1]);
			}
			if (rc) {
				snprintf(sh->err[me], sizeof(sh->err[me]), "send %llu on queue %u: %s",
					 (unsigned long long)i, (unsigned)q, warp_strerror(rc));
				_exit(3);
			}
		}
		warp_engine_poll(e[0]);
		warp_engine_poll(e[1]);
	}
	/* done: 1 for the client, 2 for the server once the client is gone.
	 * One side at a time: a memif server port stopped while the EAL's
	 * interrupt thread handles the client's disconnect can crash in the
	 * PMD (a SIGSEGV seen once in CI with both at once) */
	while (atomic_load(&sh->done) < (me ? 1 : 2)) {
		warp_engine_poll(e[0]);
		warp_engine_poll(e[1]);
	}
	for (uint16_t q = 0; q < 2; q++) {
		warp_engine_stats(e[q], &sh->st[me][q]);
		warp_engine_destroy(e[q]);
	}
	_exit(0);
}

Test(dpdk_memif, two_engines_per_port_each_on_its_own_queue_pair, .timeout = 120)
{
	need_hugepages();
	memif_sock_name();
	struct mq_shm *sh = th_shared(sizeof(*sh));
	pid_t parent = getpid(), pid[2];
	for (int i = 0; i < 2; i++) {
		pid[i] = th_fork(parent);
		if (pid[i] == 0)
			mq_node(sh, i);
		/* the memif server's port started first (a client that came
		 * first would wait for a restart of its port: tested below) */
		uint64_t t = th_mono_ns();
		while (i == 0 && atomic_load(&sh->ready) == 0 && th_mono_ns() - t < 20000000000ull)
			usleep(1000);
	}
	uint64_t t0 = th_mono_ns();
	for (;;) {
		bool all = true;
		for (int i = 0; i < 4; i++)
			all &= atomic_load(&sh->got[i / 2][i % 2]) >= MQ_MSGS;
		if (all || atomic_load(&sh->ready) >= 100 || th_mono_ns() - t0 > 60000000000ull)
			break;
		usleep(1000);
	}
	atomic_store(&sh->done, 1);
	int st[2];
	waitpid(pid[1], &st[1], 0);
	atomic_store(&sh->done, 2);
	waitpid(pid[0], &st[0], 0);
	unlink(memif_sock);
	cr_assert_str_empty(sh->err[0], "server: %s", sh->err[0]);
	cr_assert_str_empty(sh->err[1], "client: %s", sh->err[1]);
	for (int i = 0; i < 2; i++)
		cr_assert(WIFEXITED(st[i]) && WEXITSTATUS(st[i]) == 0, "process %d exit %d", i, st[i]);
	for (int me = 0; me < 2; me++)
		for (int q = 0; q < 2; q++) {
			cr_assert_eq(atomic_load(&sh->got[me][q]), MQ_MSGS,
				     "%s engine of queue %d received %llu", me ? "client" : "server", q,
				     (unsigned long long)atomic_load(&sh->got[me][q]));
			cr_assert_eq(atomic_load(&sh->bad[me][q]), 0, "byte-exact");
			cr_assert_gt(sh->st[me][q].rx_packets, 0);
		}
	cr_assert_eq(sh->dup_rc, WARP_EEXIST, "a third engine on queue 0: %d (%s)", sh->dup_rc,
		     sh->dup_err);
	cr_assert(strstr(sh->dup_err, "queue 0 is used by another engine"), "%s", sh->dup_err);
	munmap(sh, sizeof(*sh));
}

/* A memif client port that two engines share reconnects after its server
 * restarts: the server process (two engines, one a queue pair) is started
 * and killed by a launcher forked before this process starts its EAL.
 * When the server comes back, the client port must be restarted (memif
 * clients do not reconnect by themselves), which needs both of its engines
 * off the port first. */
static void mq_server_launcher(int cmd_fd)
{
	pid_t node = -1;
	char c;
	while (read(cmd_fd, &c, 1) == 1) {
		if (c == 's' && node < 0) {
			node = fork();
			if (node == 0) {
				th_child_dies_with_parent(getppid());
				warp_engine_t *e[2];
				int rc;
				for (uint16_t q = 0; q < 2; q++) {
					char peer[32];
					snprintf(peer, sizeof(peer), "c%u@10.98.0.2:7000", (unsigned)q);
					e[q] = mq_engine(0, q, q, &rc);
					if (!e[q] || warp_peer_add(e[q], peer, NULL))
						_exit(1);
				}
				for (;;) {
					warp_engine_poll(e[0]);
					warp_engine_poll(e[1]);
				}
			}
		} else if (c == 'k' && node > 0) {
			kill(node, SIGKILL);
			waitpid(node, NULL, 0);
			node = -1;
		}
	}
	if (node > 0)
		kill(node, SIGKILL);
	_exit(0);
}

/* Poll both engines until each has `want` messages acknowledged. */
static bool mq_pump_acked(warp_engine_t **e, uint64_t want)
{
	uint64_t t0 = th_mono_ns();
	while (th_mono_ns() - t0 < 30000000000ull) {
		warp_stats_t a, b;
		warp_engine_poll(e[0]);
		warp_engine_poll(e[1]);
		warp_engine_stats(e[0], &a);
		warp_engine_stats(e[1], &b);
		if (a.msgs_acked >= want && b.msgs_acked >= want)
			return true;
	}
	return false;
}

Test(dpdk_memif, a_shared_memif_client_port_reconnects_after_its_server_restarts,
     .timeout = 120)
{
	need_hugepages();
	memif_sock_name();
	int cmd[2];
	cr_assert_eq(pipe(cmd), 0);
	pid_t parent = getpid();
	pid_t launcher = th_fork(parent); /* before this process starts its EAL */
	if (launcher == 0) {
		close(cmd[1]);
		mq_server_launcher(cmd[0]);
	}
	close(cmd[0]);
	cr_assert_eq(write(cmd[1], "s", 1), 1);
	uint64_t t0 = th_mono_ns();
	while (access(memif_sock, F_OK) != 0 && th_mono_ns() - t0 < 20000000000ull)
		usleep(1000);
	warp_engine_t *e[2];
	warp_stream_t *s[2];
	for (uint16_t q = 0; q < 2; q++) {
		int rc;
		e[q] = mq_engine(1, q, q, &rc);
		cr_assert_not_null(e[q], "client queue %u: %s", (unsigned)q, warp_errdetail());
		char peer[32];
		snprintf(peer, sizeof(peer), "s%u@10.98.0.1:7000", (unsigned)q);
		warp_peer_t *p;
		cr_assert_eq(warp_peer_add(e[q], peer, &p), 0, "%s", warp_errdetail());
		cr_assert_eq(warp_stream_open(e[q], p, 1, 100, &s[q]), 0);
	}
	for (int round = 1; round <= 2; round++) {
		for (int i = 0; i < 20; i++)
			for (int q = 0; q < 2; q++)
				cr_assert_eq(th_send(e[q], s[q], 300, NULL), 0);
		cr_assert(mq_pump_acked(e, 20u * (unsigned)round),
			  "round %d: both engines' messages acknowledged", round);
		if (round == 2)
			break;
		/* The server goes away: both engines see the link down. They are
		 * not polled for the first 500 ms: DPDK 22.11's memif PMD takes a
		 * connection down in the EAL interrupt thread (link down, then
		 * the shared regions unmapped) with nothing to hold off a burst
		 * on another thread, and a burst caught in between dies of
		 * SIGSEGV (once in CI, under load; deployment.md). */
		cr_assert_eq(write(cmd[1], "k", 1), 1);
		usleep(500000);
		warp_health_t h[2];
		t0 = th_mono_ns();
		do {
			warp_engine_poll(e[0]);
			warp_engine_poll(e[1]);
			warp_engine_health(e[0], &h[0]);
			warp_engine_health(e[1], &h[1]);
		} while ((h[0].state == WARP_HEALTH_UP || h[1].state == WARP_HEALTH_UP) &&
			 th_mono_ns() - t0 < 20000000000ull);
		cr_assert(strstr(h[0].reason, "link down") && strstr(h[1].reason, "link down"),
			  "%s / %s", h[0].reason, h[1].reason);
		cr_assert_eq(write(cmd[1], "s", 1), 1); /* and comes back */
	}
	close(cmd[1]);
	waitpid(launcher, NULL, 0);
	for (int q = 0; q < 2; q++)
		warp_engine_destroy(e[q]);
	unlink(memif_sock);
}

/* ---- secure sessions over net_memif ---------------------------------------------- */

/* The handshake of test_secure.c (loop driver) between two processes over
 * net_memif, each with its own EAL: mutual TLS 1.3 that comes up encrypted
 * and carries messages byte-exact both ways, and a refused certificate
 * named on both sides, with the test PKI of tests/helpers.h (th_pki_dir). */

#define TLS_MSGS 1000

/* Shared by the test and its two node processes (MAP_SHARED before fork). */
struct tls_shm {
	_Atomic int made[2];    /* 1: engine made and its link up; -1: could not */
	_Atomic int settled[2]; /* 1: session up or refused (si[] is set) */
	_Atomic int done;
	_Atomic uint64_t got[2], bad[2], order[2];
	warp_session_info_t si[2];
	char cipher[2][32];
	warp_stats_t st[2];
	char err[2][256];
};

/* A receiving node's counts (in the test's shared memory): messages, and
 * those with wrong bytes or out of order. */
struct side {
	_Atomic uint64_t *got, *bad, *order;
	uint64_t next;
};

static void side_recv(void *user, const warp_msg_t *m)
{
	struct side *s = user;
	if (m->status)
		return;
	if (!th_check(m->data, m->len, th_seed(m->stream_id, m->msg_id, m->len)))
		atomic_fetch_add(s->bad, 1);
	if (m->msg_id != s->next)
		atomic_fetch_add(s->order, 1);
	s->next = m->msg_id + 1;
	atomic_fetch_add(s->got, 1);
}

/* What each node of a memif TLS test is: node id, certificate, CA it
 * trusts, encryption policy, and whether it offers capability 'codec'
 * (node 0 1..2 required, node 1 3..4: no common version). */
struct tls_setup {
	const char *name[2], *cert[2], *ca[2];
	uint32_t enc[2]; /* WARP_ENCRYPTION_* */
	bool codec_clash;
};
#define TLS_SETUP_OK                                                                    \
	{                                                                               \
		.name = { "a", "b" }, .cert = { "a", "b" }, .ca = { "ca", "ca" },       \
		.enc = { WARP_ENCRYPTION_REQUIRED, WARP_ENCRYPTION_REQUIRED }            \
	}

/* Node 0 (memif server, 10.98.0.1, lcore 0) or node 1 (memif client,
 * 10.98.0.2, lcore 1) as `ts` says: brings its link up, then the session;
 * when it is up, sends TLS_MSGS messages of random sizes up to 100 KiB on an
 * exactly-once stream while receiving the other's. Runs until the test says
 * done. */
static void tls_node(struct tls_shm *sh, int me, const struct tls_setup *ts)
{
	const char *name = ts->name[me];
	warp_dpdk_config_init(&memif_cfg);
	snprintf(memif_cfg.lcores, sizeof(memif_cfg.lcores), "%d", me);
	snprintf(memif_cfg.vdevs[0], sizeof(memif_cfg.vdevs[0]), "net_memif0,role=%s,socket=%s",
		 me ? "client" : "server", memif_sock);
	memif_cfg.n_vdevs = 1;
	snprintf(memif_cfg.port, sizeof(memif_cfg.port), "net_memif0");
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	cfg.max_payload_bytes = 1u << 20;
	cfg.tx_arena_bytes = cfg.rx_arena_bytes = 16u << 20;
	cfg.encryption = ts->enc[me];
	cfg.key_update_packets = 4096; /* several key updates on the way */
	th_tls_cfg(&cfg, ts->cert[me], ts->ca[me]); /* the test made the PKI before the fork */
	if (ts->codec_clash) {
		cfg.n_caps = 1;
		cfg.caps[0] = me ? (warp_cap_config_t){ .name = "codec", .min = 3, .max = 4 }
				 : (warp_cap_config_t){
					   .name = "codec", .min = 1, .max = 2, .required = 1
				   };
	}
	warp_engine_t *e = NULL;
	if (!warp_config_add_transport(&cfg, "dpdk", me ? "10.98.0.2:7000" : "10.98.0.1:7000",
				       &memif_cfg))
		warp_engine_create(&cfg, &e);
	if (!e) {
		snprintf(sh->err[me], sizeof(sh->err[me]), "create: %s", warp_errdetail());
		atomic_store(&sh->made[me], -1);
		_exit(1);
	}
	/* the link first: a handshake started before it could only time out
	 * (and be retried), which is not what this test looks at */
	warp_health_t h = { 0 };
	uint64_t t0 = th_mono_ns();
	do {
		warp_engine_poll(e);
		warp_engine_health(e, &h);
	} while (strstr(h.reason, "link down") && th_mono_ns() - t0 < 10000000000ull);
	if (strstr(h.reason, "link down")) {
		snprintf(sh->err[me], sizeof(sh->err[me]), "memif link not up in 10 s: %s",
			 h.reason);
		atomic_store(&sh->made[me], -1);
		_exit(2);
	}
	atomic_store(&sh->made[me], 1);
	while (atomic_load(&sh->made[1 - me]) == 0)
		warp_engine_poll(e);
	warp_peer_t *p;
	warp_stream_t *s;
	warp_stream_opts_t o = { .priority = 16, .guarantee = WARP_EXACTLY_ONCE };
	char peer[64];
	snprintf(peer, sizeof(peer), "%s@%s", ts->name[1 - me], me ? "10.98.0.1:7000" : "10.98.0.2:7000");
	if (warp_peer_add(e, peer, &p) ||
	    warp_stream_open_ex(e, p, (uint16_t)(1 + me), &o, &s)) {
		snprintf(sh->err[me], sizeof(sh->err[me]), "peer: %s", warp_errdetail());
		_exit(3);
	}
	struct side side = { .got = &sh->got[me], .bad = &sh->bad[me], .order = &sh->order[me] };
	warp_engine_set_recv(e, side_recv, &side);
	/* up, or refused by the handshake itself (a timeout is retried) */
	warp_session_info_t si;
	t0 = th_mono_ns();
	do {
		warp_engine_poll(e);
		warp_peer_session(p, &si);
	} while (si.state != WARP_SESSION_UP &&
		 !(si.state == WARP_SESSION_FAILED && si.error == WARP_EHANDSHAKE) &&
		 th_mono_ns() - t0 < 10000000000ull);
	sh->si[me] = si;
	snprintf(sh->cipher[me], sizeof(sh->cipher[me]), "%s", si.cipher);
	atomic_store(&sh->settled[me], 1);
	static uint8_t buf[100u << 10];
	uint64_t rnd = 88172645463325252ull + (uint64_t)me, sent = 0;
	while (!atomic_load(&sh->done)) {
		if (si.state == WARP_SESSION_UP && sent < TLS_MSGS) {
			rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
			size_t len = rnd % (sizeof(buf) + 1);
			th_fill(buf, len, th_seed(warp_stream_id(s), sent, len));
			int rc = warp_send(e, s, buf, len, NULL);
			if (rc == 0)
				sent++;
			else if (rc != WARP_EAGAIN) {
				snprintf(sh->err[me], sizeof(sh->err[me]), "send %llu: %s (%s)",
					 (unsigned long long)sent, warp_strerror(rc),
					 warp_errdetail());
				_exit(4);
			}
		}
		warp_engine_poll(e);
	}
	warp_engine_stats(e, &sh->st[me]);
	warp_peer_session(p, &sh->si[me]); /* the key generations at the end */
	/* b closes first (done 1), a once b is gone (done 2), neither polling
	 * any more: DPDK's memif PMD tears the rings down in its interrupt
	 * thread when the other end leaves, and an rx burst racing that
	 * crashes (SIGSEGV in rte_eth_rx_burst); two ends closing at once log
	 * "EAL: Error: Invalid memory" */
	while (atomic_load(&sh->done) < 1 + !me)
		usleep(1000);
	warp_engine_destroy(e);
	_exit(0);
}

/* Runs nodes 0 and 1 as `ts` says until both sessions settled and, when
 * both are up, until each got the other's TLS_MSGS messages. */
static struct tls_shm *memif_tls(const struct tls_setup *ts)
{
	need_hugepages();
	th_need_tls();
	th_pki_dir(); /* before the fork: both processes use the same PKI */
	memif_sock_name();
	struct tls_shm *sh = th_shared(sizeof(*sh));
	pid_t parent = getpid(), pid[2];
	for (int i = 0; i < 2; i++) {
		pid[i] = th_fork(parent);
		if (pid[i] == 0)
			tls_node(sh, i, ts);
		/* the memif server (a) first */
		uint64_t t = th_mono_ns();
		while (i == 0 && !atomic_load(&sh->made[0]) && th_mono_ns() - t < 20000000000ull)
			usleep(1000);
	}
	uint64_t t0 = th_mono_ns();
	while (!(atomic_load(&sh->settled[0]) && atomic_load(&sh->settled[1])) &&
	       atomic_load(&sh->made[0]) >= 0 && atomic_load(&sh->made[1]) >= 0 &&
	       th_mono_ns() - t0 < 30000000000ull)
		usleep(1000);
	bool up = sh->si[0].state == WARP_SESSION_UP && sh->si[1].state == WARP_SESSION_UP;
	while (up && (atomic_load(&sh->got[0]) < TLS_MSGS || atomic_load(&sh->got[1]) < TLS_MSGS) &&
	       !sh->err[0][0] && !sh->err[1][0] && th_mono_ns() - t0 < 60000000000ull)
		usleep(1000);
	int st[2];
	atomic_store(&sh->done, 1);
	waitpid(pid[1], &st[1], 0);
	atomic_store(&sh->done, 2);
	waitpid(pid[0], &st[0], 0);
	unlink(memif_sock);
	cr_assert_str_empty(sh->err[0], "%s: %s", ts->name[0], sh->err[0]);
	cr_assert_str_empty(sh->err[1], "%s: %s", ts->name[1], sh->err[1]);
	for (int i = 0; i < 2; i++) {
		cr_assert(WIFEXITED(st[i]) && WEXITSTATUS(st[i]) == 0, "%s exit %d", ts->name[i],
			  st[i]);
		cr_assert_eq(atomic_load(&sh->settled[i]), 1, "%s: no session state", ts->name[i]);
	}
	return sh;
}

Test(dpdk_memif, mutual_tls_session_is_encrypted_and_carries_messages_byte_exact,
     .fini = th_pki_cleanup, .timeout = 120)
{
	struct tls_setup ts = TLS_SETUP_OK;
	struct tls_shm *sh = memif_tls(&ts);
	for (int i = 0; i < 2; i++) {
		const char *who = i ? "b" : "a";
		cr_assert_eq(sh->si[i].state, WARP_SESSION_UP, "%s: state %d (%s)", who,
			     sh->si[i].state, sh->si[i].error_detail);
		cr_assert_eq(sh->si[i].encrypted, 1, "%s", who);
		cr_assert_str_eq(sh->cipher[i], "aes-128-gcm");
		cr_assert_eq(atomic_load(&sh->got[i]), TLS_MSGS, "%s received %llu", who,
			     (unsigned long long)atomic_load(&sh->got[i]));
		cr_assert_eq(atomic_load(&sh->bad[i]), 0, "%s: payloads differ", who);
		cr_assert_eq(atomic_load(&sh->order[i]), 0, "%s: out of order or twice", who);
		cr_assert_eq(sh->st[i].handshakes, 1, "%s", who);
		cr_assert_eq(sh->st[i].handshake_failures, 0, "%s", who);
		cr_assert_eq(sh->st[i].drop[WARP_DROP_BAD_TAG], 0, "%s", who);
		cr_assert_eq(sh->st[i].drop[WARP_DROP_PLAINTEXT], 0, "%s", who);
		/* each sender moved keys, and the receiver followed */
		cr_assert_gt(sh->si[i].tx_key_gen, 0, "%s never updated its key", who);
		cr_assert_gt(sh->si[1 - i].rx_key_gen, 0);
		cr_assert_leq(sh->si[1 - i].rx_key_gen, sh->si[i].tx_key_gen);
	}
	munmap(sh, sizeof(*sh));
}

/* Both sessions fail with WARP_EHANDSHAKE, node i's error naming each of
 * want[i][0] and want[i][1] (NULL: not checked), and nothing crosses. */
static void memif_refused(const struct tls_setup *ts, const char *want[2][2])
{
	struct tls_shm *sh = memif_tls(ts);
	for (int i = 0; i < 2; i++) {
		const char *who = ts->name[i];
		cr_assert_eq(sh->si[i].state, WARP_SESSION_FAILED, "%s: state %d (%s)", who,
			     sh->si[i].state, sh->si[i].error_detail);
		cr_assert_eq(sh->si[i].error, WARP_EHANDSHAKE, "%s: %s", who,
			     sh->si[i].error_detail);
		cr_assert_eq(atomic_load(&sh->got[i]), 0);
		for (int k = 0; k < 2; k++)
			if (want[i][k])
				cr_assert(strstr(sh->si[i].error_detail, want[i][k]),
					  "%s should name \"%s\", says: %s", who, want[i][k],
					  sh->si[i].error_detail);
	}
	munmap(sh, sizeof(*sh));
}

/* b trusts another CA: b (the TLS server) refuses a's certificate and says
 * why; a is told it was refused, and why. */
Test(dpdk_memif, tls_wrong_ca_fails_both_sides, .fini = th_pki_cleanup, .timeout = 120)
{
	struct tls_setup ts = TLS_SETUP_OK;
	ts.ca[1] = "other-ca";
	const char *want[2][2] = { { "refused by 'b'", "not trusted" },
				   { "certificate of 'a' not trusted", NULL } };
	memif_refused(&ts, want);
}

/* node 1 is "expired" (after "a": the TLS server), with its expired
 * certificate: a refuses it. */
Test(dpdk_memif, tls_expired_certificate_fails_both_sides, .fini = th_pki_cleanup,
     .timeout = 120)
{
	struct tls_setup ts = TLS_SETUP_OK;
	ts.name[1] = ts.cert[1] = "expired";
	const char *want[2][2] = { { "certificate of 'expired' expired", "2020" },
				   { "refused by 'a'", "expired" } };
	memif_refused(&ts, want);
}

/* a presents mallory's certificate: b refuses it, naming the names in it. */
Test(dpdk_memif, tls_node_id_not_matching_its_certificate_fails_both_sides,
     .fini = th_pki_cleanup, .timeout = 120)
{
	struct tls_setup ts = TLS_SETUP_OK;
	ts.cert[0] = "mismatch";
	const char *want[2][2] = { { "refused by 'b'", "does not match" },
				   { "node id 'a' does not match its certificate", "mallory" } };
	memif_refused(&ts, want);
}

Test(dpdk_memif, no_common_capability_version_fails_both_sides_naming_it,
     .fini = th_pki_cleanup, .timeout = 120)
{
	struct tls_setup ts = TLS_SETUP_OK;
	ts.codec_clash = true;
	const char *want[2][2] = {
		{ "capability 'codec': no common version (local 1..2, peer 3..4)", NULL },
		{ "capability 'codec': no common version (local 3..4, peer 1..2)", NULL },
	};
	memif_refused(&ts, want);
}

Test(dpdk_memif, encryption_required_but_not_offered_is_refused_on_both_sides,
     .fini = th_pki_cleanup, .timeout = 120)
{
	struct tls_setup ts = TLS_SETUP_OK;
	ts.enc[1] = WARP_ENCRYPTION_OFF;
	const char *want[2][2] = { { "capability 'encryption'", "not offered" },
				   { "capability 'encryption'", NULL } };
	memif_refused(&ts, want);
}

/* ---- net_ring: an application's ring pair ------------------------------------------ */

/* An application that runs DPDK itself and joins two engines of its process
 * with rte_rings: it starts the EAL, makes two net_ring ports with
 * rte_eth_from_rings, cross-connected (what port a sends goes into the ring
 * port b receives from, and back), and hands each port to an engine of its
 * own (eal = external). The engines find each other's MAC with ARP over the
 * rings and exchange RING_MSGS messages each way, one in eight of them
 * fragmented. A ring port offers no checksum offload and starts with its
 * link down: the driver writes the IPv4 and UDP checksums itself, and
 * starts the port. */

#if WARP_TEST_NET_RING

#define RING_MSGS 2000

/* Shared by the test and the application process (MAP_SHARED before fork). */
struct ring_shm {
	_Atomic uint64_t got[2], bad[2], order[2];
	warp_stats_t st[2];
	warp_health_t health[2];
	struct rte_eth_stats es[2]; /* the ring ports' own counts */
	int link[2][3];		    /* before the engine, with it, after it */
	bool port_kept[2];	    /* the port still exists after its engine */
	uint64_t frames[2], bad_ip_cksum[2], bad_udp_cksum[2];
	uint8_t src[2][6], dst[2][6]; /* the MACs of port i's first IPv4 frame */
	uint64_t other_macs[2];	      /* its IPv4 frames with other MACs than that */
	char err[256];
};

/* The IPv4 frames that one port sent, looked at in the ring the other port
 * receives from: their IPv4 header and UDP checksums, which the driver
 * computed in software, and their MAC addresses. The count of frames looked
 * at, and of bad ones. */
struct ring_wire {
	uint16_t next_id; /* the IPv4 id of the next frame not looked at */
	uint64_t *frames, *bad_ip, *bad_udp, *other_macs;
	uint8_t *src, *dst; /* the first frame's */
};

/* Ones' complement sum of len bytes (big-endian 16-bit words) onto sum:
 * the test's own, not the DPDK helpers the driver computes with. */
static uint32_t ones_sum(const uint8_t *b, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* Looks at the frames waiting in r, without taking them (the peek API: r is
 * single-consumer, and this is the thread that polls the engine reading
 * it). Called after each poll of the sending engine and before the
 * receiving one's, it sees every frame; the driver numbers its IPv4 frames
 * one by one, so a frame seen at an earlier call is known by its id. */
static void ring_look(struct rte_ring *r, struct ring_wire *w)
{
	struct rte_mbuf *m[1024];
	unsigned n = rte_ring_dequeue_burst_start(r, (void **)m, RTE_DIM(m), NULL);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *f = rte_pktmbuf_mtod(m[i], const uint8_t *);
		uint32_t len = m[i]->data_len;
		if (len < 14 + 20 + 8 || f[12] != 0x08 || f[13] != 0x00)
			continue; /* ARP */
		const uint8_t *ip = f + 14, *udp = ip + 20;
		uint16_t id = (uint16_t)(ip[4] << 8 | ip[5]);
		if (*w->frames && (int16_t)(id - w->next_id) < 0)
			continue; /* looked at already */
		w->next_id = (uint16_t)(id + 1);
		if (!(*w->frames)++) {
			memcpy(w->dst, f, 6);
			memcpy(w->src, f + 6, 6);
		} else if (memcmp(w->dst, f, 6) || memcmp(w->src, f + 6, 6)) {
			(*w->other_macs)++;
		}
		if (ones_sum(ip, 20, 0) != 0xffff)
			(*w->bad_ip)++;
		uint32_t ulen = (uint32_t)(udp[4] << 8 | udp[5]);
		/* the pseudo-header: addresses, protocol, UDP length; a UDP
		 * checksum of 0 says none was computed */
		uint32_t sum = ones_sum(ip + 12, 8, 17 + ulen);
		if (ulen < 8 || 14 + 20 + ulen > len || (udp[6] == 0 && udp[7] == 0) ||
		    ones_sum(udp, ulen, sum) != 0xffff)
			(*w->bad_udp)++;
	}
	rte_ring_dequeue_finish(r, 0); /* every frame stays in the ring */
}

static int port_link(uint16_t port)
{
	struct rte_eth_link l;
	if (rte_eth_link_get_nowait(port, &l) != 0)
		return -1;
	return l.link_status == RTE_ETH_LINK_UP;
}

#define RING_FAIL(code, ...)                                             \
	do {                                                             \
		snprintf(sh->err, sizeof(sh->err), __VA_ARGS__);         \
		_exit(code);                                             \
	} while (0)

/* The application: its EAL, its ring ports, two engines a (10.99.0.1) and b
 * (10.99.0.2) polled by this one thread. Sends RING_MSGS messages each way,
 * waits for all of them to be delivered and acknowledged, then for the
 * rings to be empty, and records what the test checks. */
static void ring_app(struct ring_shm *sh)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "--file-prefix=warp-test-ring-%d", (int)getpid());
	char *argv[] = { "app", "-l", "0", "--no-pci", "--in-memory", prefix, "--no-telemetry",
			 "--log-level=lib.eal:error", NULL };
	if (rte_eal_init((int)WARP__ARRAY_LEN(argv) - 1, argv) < 0)
		RING_FAIL(1, "the application's rte_eal_init: %s", rte_strerror(rte_errno));
	/* ring[0]: what port a sends and port b receives; ring[1] the other
	 * way. Single producer and consumer: one engine sends into each, the
	 * other reads it (and this thread peeks into it) */
	struct rte_ring *ring[2];
	const char *ring_name[2] = { "warp_ab", "warp_ba" };
	for (int i = 0; i < 2; i++) {
		ring[i] = rte_ring_create(ring_name[i], 1024, (int)rte_socket_id(),
					  RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!ring[i])
			RING_FAIL(2, "rte_ring_create %s: %s", ring_name[i], rte_strerror(rte_errno));
	}
	int port[2];
	port[0] = rte_eth_from_rings("warp_a", &ring[1], 1, &ring[0], 1, rte_socket_id());
	port[1] = rte_eth_from_rings("warp_b", &ring[0], 1, &ring[1], 1, rte_socket_id());
	if (port[0] < 0 || port[1] < 0)
		RING_FAIL(3, "rte_eth_from_rings: %s", rte_strerror(rte_errno));
	static const char *const name[2] = { "a", "b" };
	static const char *const addr[2] = { "10.99.0.1:7000", "10.99.0.2:7000" };
	static warp_dpdk_config_t dc[2];
	warp_engine_t *e[2];
	warp_peer_t *p[2];
	warp_stream_t *s[2];
	struct side side[2];
	for (int i = 0; i < 2; i++) {
		sh->link[i][0] = port_link((uint16_t)port[i]);
		warp_dpdk_config_init(&dc[i]);
		dc[i].eal_external = true;
		/* the name rte_eth_from_rings gives the port */
		snprintf(dc[i].port, sizeof(dc[i].port), "net_ring_warp_%s", name[i]);
		dc[i].prefix_len = 24;
		e[i] = dpdk_engine(name[i], addr[i], &dc[i], 64u << 10);
		if (!e[i])
			RING_FAIL(4, "engine %s on %s: %s", name[i], dc[i].port, warp_errdetail());
		sh->link[i][1] = port_link((uint16_t)port[i]);
	}
	for (int i = 0; i < 2; i++) {
		char peer[64];
		snprintf(peer, sizeof(peer), "%s@%s", name[1 - i], addr[1 - i]);
		if (warp_peer_add(e[i], peer, &p[i]) ||
		    warp_stream_open(e[i], p[i], (uint16_t)(1 + i), 100, &s[i]))
			RING_FAIL(5, "%s: peer %s: %s", name[i], peer, warp_errdetail());
		side[i] = (struct side){ .got = &sh->got[i], .bad = &sh->bad[i],
					 .order = &sh->order[i] };
		warp_engine_set_recv(e[i], side_recv, &side[i]);
	}
	struct ring_wire w[2];
	for (int i = 0; i < 2; i++)
		w[i] = (struct ring_wire){ .frames = &sh->frames[i],
					   .bad_ip = &sh->bad_ip_cksum[i],
					   .bad_udp = &sh->bad_udp_cksum[i],
					   .other_macs = &sh->other_macs[i],
					   .src = sh->src[i],
					   .dst = sh->dst[i] };
	static uint8_t buf[64u << 10];
	uint64_t rnd[2] = { 88172645463325252ull, 2463534242ull }, sent[2] = { 0, 0 };
	uint64_t t0 = th_mono_ns();
	for (;;) {
		bool all = true;
		for (int i = 0; i < 2; i++) {
			warp_stats_t st;
			warp_engine_stats(e[i], &st);
			all &= atomic_load(&sh->got[1 - i]) >= RING_MSGS && st.msgs_acked >= RING_MSGS;
			if (sent[i] == RING_MSGS)
				continue;
			rnd[i] ^= rnd[i] << 13, rnd[i] ^= rnd[i] >> 7, rnd[i] ^= rnd[i] << 17;
			/* one in eight up to 64 KiB (fragmented), the rest up to
			 * 1400 bytes (one packet) */
			size_t len = rnd[i] % ((rnd[i] >> 32) % 8 == 0 ? sizeof(buf) + 1 : 1401);
			th_fill(buf, len, th_seed(warp_stream_id(s[i]), sent[i], len));
			int rc = warp_send(e[i], s[i], buf, len, NULL);
			if (rc == 0)
				sent[i]++;
			else if (rc != WARP_EAGAIN)
				RING_FAIL(6, "%s: send %llu (%zu bytes): %s (%s)", name[i],
					  (unsigned long long)sent[i], len, warp_strerror(rc),
					  warp_errdetail());
		}
		if (all)
			break;
		if (th_mono_ns() - t0 > 60000000000ull) {
			warp_stats_t sa, sb;
			warp_engine_stats(e[0], &sa);
			warp_engine_stats(e[1], &sb);
			RING_FAIL(7,
				  "after 60 s: a got %llu, b got %llu of %u; ARP sent/received: "
				  "a %llu/%llu, b %llu/%llu; dropped waiting for ARP: a %llu, b %llu",
				  (unsigned long long)atomic_load(&sh->got[0]),
				  (unsigned long long)atomic_load(&sh->got[1]), RING_MSGS,
				  (unsigned long long)sa.drv_arp_tx, (unsigned long long)sa.drv_arp_rx,
				  (unsigned long long)sb.drv_arp_tx, (unsigned long long)sb.drv_arp_rx,
				  (unsigned long long)sa.drv_neigh_wait_drops,
				  (unsigned long long)sb.drv_neigh_wait_drops);
		}
		warp_engine_poll(e[0]);
		ring_look(ring[0], &w[0]);
		warp_engine_poll(e[1]);
		ring_look(ring[1], &w[1]);
	}
	/* until both rings are empty: then every frame one port sent, the
	 * other received, and the counts below agree with each other */
	for (t0 = th_mono_ns(); !rte_ring_empty(ring[0]) || !rte_ring_empty(ring[1]);) {
		if (th_mono_ns() - t0 > 10000000000ull)
			RING_FAIL(8, "the rings never emptied: %u and %u frames in them",
				  rte_ring_count(ring[0]), rte_ring_count(ring[1]));
		warp_engine_poll(e[0]);
		ring_look(ring[0], &w[0]);
		warp_engine_poll(e[1]);
		ring_look(ring[1], &w[1]);
	}
	for (int i = 0; i < 2; i++) {
		warp_engine_stats(e[i], &sh->st[i]);
		warp_engine_health(e[i], &sh->health[i]);
		rte_eth_stats_get((uint16_t)port[i], &sh->es[i]);
	}
	for (int i = 0; i < 2; i++) {
		warp_engine_destroy(e[i]);
		/* warp stops the application's port and leaves it there */
		sh->link[i][2] = port_link((uint16_t)port[i]);
		sh->port_kept[i] = rte_eth_dev_is_valid_port((uint16_t)port[i]);
	}
	_exit(0);
}

#endif /* WARP_TEST_NET_RING */

Test(dpdk_ring, two_engines_on_an_applications_ring_pair_exchange_both_ways_with_arp,
     .timeout = 120)
{
#if !WARP_TEST_NET_RING
	cr_skip("needs librte_net_ring (DPDK's net_ring PMD, for rte_eth_from_rings), which "
		"tests/meson.build did not find at build time");
#else
	need_hugepages();
	struct ring_shm *sh = th_shared(sizeof(*sh));
	pid_t pid = th_fork(getpid()); /* its own EAL: the test process never starts one */
	if (pid == 0)
		ring_app(sh);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "application exit %d: %s", st, sh->err);
	for (int i = 0; i < 2; i++) {
		const char *who = i ? "b" : "a", *other = i ? "a" : "b";
		const warp_stats_t *s = &sh->st[i];
		cr_assert_eq(atomic_load(&sh->got[i]), RING_MSGS, "%s received %llu", who,
			     (unsigned long long)atomic_load(&sh->got[i]));
		cr_assert_eq(atomic_load(&sh->bad[i]), 0, "%s: payloads differ", who);
		cr_assert_eq(atomic_load(&sh->order[i]), 0, "%s: out of order or twice", who);
		cr_assert_eq(s->msgs_acked, RING_MSGS, "%s: %llu acknowledged", who,
			     (unsigned long long)s->msgs_acked);
		cr_assert_gt(s->msgs_fragmented, 0, "%s sent no fragmented message", who);
		/* the link: down until warp started the port, up while the
		 * engine used it, down once it stopped it */
		cr_assert_eq(sh->link[i][0], 0, "%s: link before the engine: %d", who,
			     sh->link[i][0]);
		cr_assert_eq(sh->link[i][1], 1, "%s: link with the engine: %d", who,
			     sh->link[i][1]);
		cr_assert_eq(sh->link[i][2], 0, "%s: link after the engine: %d", who,
			     sh->link[i][2]);
		cr_assert(sh->port_kept[i], "%s: the application's port is gone", who);
		cr_assert_eq(sh->health[i].state, WARP_HEALTH_UP, "%s: health %d (%s)", who,
			     sh->health[i].state, sh->health[i].reason);
		cr_assert_eq(s->drv_link_down, 0, "%s", who);
		/* each asked for the other's MAC, or learnt it from its request,
		 * and answered */
		cr_assert_geq(s->drv_arp_tx, 1, "%s sent no ARP", who);
		cr_assert_geq(s->drv_arp_rx, 1, "%s received no ARP", who);
		cr_assert_eq(s->drv_rx_bad_header, 0, "%s: %llu bad headers (IPv4 checksums)", who,
			     (unsigned long long)s->drv_rx_bad_header);
		cr_assert_eq(s->drv_rx_not_ours + s->drv_rx_other_proto + s->drv_rx_segmented, 0,
			     "%s: frames dropped", who);
		cr_assert_eq(s->drv_tx_errors, 0, "%s", who);
		/* the ring path: every frame the engine handed its port (less
		 * those dropped waiting for ARP), and its ARP, went into the
		 * ring; every frame the other port put there, this one received
		 * and handed the engine */
		const struct rte_eth_stats *out = &sh->es[i], *in = &sh->es[1 - i];
		cr_assert_gt(out->opackets, 0, "port %s sent nothing", who);
		cr_assert_eq(out->oerrors, 0, "port %s: %llu frames refused by its ring", who,
			     (unsigned long long)out->oerrors);
		cr_assert_eq(out->opackets, s->tx_packets + s->drv_arp_tx - s->drv_neigh_wait_drops,
			     "port %s sent %llu frames; engine: %llu packets + %llu ARP - %llu "
			     "dropped waiting for ARP",
			     who, (unsigned long long)out->opackets, (unsigned long long)s->tx_packets,
			     (unsigned long long)s->drv_arp_tx,
			     (unsigned long long)s->drv_neigh_wait_drops);
		cr_assert_eq(in->ipackets, out->opackets, "port %s received %llu of %llu", other,
			     (unsigned long long)in->ipackets, (unsigned long long)out->opackets);
		cr_assert_eq(out->ipackets, s->rx_packets + s->drv_arp_rx,
			     "port %s received %llu frames; engine: %llu packets + %llu ARP", who,
			     (unsigned long long)out->ipackets, (unsigned long long)s->rx_packets,
			     (unsigned long long)s->drv_arp_rx);
		/* no checksum offload on a ring port: the driver computed both
		 * checksums of every IPv4 frame */
		cr_assert_eq(sh->frames[i], out->opackets - s->drv_arp_tx,
			     "%llu of port %s's %llu IPv4 frames looked at",
			     (unsigned long long)sh->frames[i], who,
			     (unsigned long long)(out->opackets - s->drv_arp_tx));
		cr_assert_eq(sh->bad_ip_cksum[i], 0, "%s: %llu bad IPv4 header checksums", who,
			     (unsigned long long)sh->bad_ip_cksum[i]);
		cr_assert_eq(sh->bad_udp_cksum[i], 0, "%s: %llu bad or missing UDP checksums", who,
			     (unsigned long long)sh->bad_udp_cksum[i]);
		/* a ring port has no MAC address (all zeros): each engine sends
		 * from one the driver chose, a unicast address of its own, to
		 * the one the other engine answered ARP with */
		static const uint8_t zero[6];
		const uint8_t *m = sh->src[i];
		cr_assert(memcmp(m, zero, 6) != 0, "%s sends from MAC 00:00:00:00:00:00", who);
		cr_assert_eq(m[0] & 1, 0, "%s sends from a multicast MAC", who);
		cr_assert(memcmp(m, sh->src[1 - i], 6) != 0, "a and b send from the same MAC");
		cr_assert(memcmp(sh->dst[i], sh->src[1 - i], 6) == 0,
			  "%s sends to another MAC than %s's", who, other);
		cr_assert_eq(sh->other_macs[i], 0, "%s: %llu frames with other MACs", who,
			     (unsigned long long)sh->other_macs[i]);
	}
	munmap(sh, sizeof(*sh));
#endif
}

/* ---- network namespaces -------------------------------------------------------- */

struct netns {
	char a[32], b[32];   /* namespaces: a holds the DPDK node, b the kernel node */
	char va[16], vb[16]; /* the veth ends */
	struct ether_addr mac_a, mac_b;
};
static struct netns ns;

static void ns_cleanup(void)
{
	if (ns.a[0]) {
		th_sh("ip netns del %s 2>/dev/null", ns.a);
		th_sh("ip netns del %s 2>/dev/null", ns.b);
	}
}

static bool read_mac(const char *nsname, const char *ifname, struct ether_addr *mac)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /sys/class/net/%s/address", nsname, ifname);
	FILE *p = popen(cmd, "r");
	if (!p)
		return false;
	char buf[64] = "";
	bool ok = fgets(buf, sizeof(buf), p) && ether_aton_r(buf, mac);
	pclose(p);
	return ok;
}

/* Two namespaces joined by a veth pair: a's end without an address (the DPDK
 * node owns 10.77.x.1 there), b's end 10.77.x.2/24 for the kernel node. */
static void ns_setup(void)
{
	if (geteuid() != 0)
		cr_skip("needs root for network namespaces (.ci/run runs as root)");
	if (th_sh("command -v ip >/dev/null") != 0)
		cr_skip("needs the ip command (apt-get install iproute2)");
	need_hugepages();
	int id = getpid() % 100000;
	snprintf(ns.a, sizeof(ns.a), "warpA%d", id);
	snprintf(ns.b, sizeof(ns.b), "warpB%d", id);
	snprintf(ns.va, sizeof(ns.va), "wa%d", id);
	snprintf(ns.vb, sizeof(ns.vb), "wb%d", id);
	cr_assert_eq(th_sh("ip netns add %s && ip netns add %s", ns.a, ns.b), 0);
	cr_assert_eq(th_sh("ip link add %s type veth peer name %s", ns.va, ns.vb), 0);
	cr_assert_eq(th_sh("ip link set %s netns %s && ip link set %s netns %s", ns.va, ns.a, ns.vb,
			ns.b),
		     0);
	cr_assert_eq(th_sh("ip -n %s link set lo up && ip -n %s link set %s up", ns.a, ns.a, ns.va), 0);
	cr_assert_eq(th_sh("ip -n %s link set lo up && ip -n %s addr add 10.77.0.2/24 dev %s && "
			"ip -n %s link set %s up",
			ns.b, ns.b, ns.vb, ns.b, ns.vb),
		     0);
	/* no IPv6 chatter (router solicitations) to keep the counters exact */
	th_sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1", ns.a);
	th_sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1", ns.b);
	cr_assert(read_mac(ns.a, ns.va, &ns.mac_a));
	cr_assert(read_mac(ns.b, ns.vb, &ns.mac_b));
}

static void enter_ns(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
		perror("setns");
		_exit(20);
	}
	close(fd);
}

static warp_dpdk_config_t afp_cfg;
static const char *interop_pmd = "net_af_packet0"; /* or net_af_xdp0, net_tap0 */
static char tap_if[16];
/* the DPDK node confirms its neighbour every 200 ms (arp_reachable) */
static bool interop_confirm;
/* the DPDK node has the kernel node in its static neighbour table, and the
 * kernel node has the DPDK node as a permanent neighbour: no ARP at all */
static bool interop_static;

static bool tap_mode(void)
{
	return strcmp(interop_pmd, "net_tap0") == 0;
}

static warp_engine_t *afpacket_engine(const char *name, int cpu)
{
	warp_dpdk_config_init(&afp_cfg);
	snprintf(afp_cfg.lcores, sizeof(afp_cfg.lcores), "%d", cpu);
	if (tap_mode())
		/* the PMD creates the kernel's end of the tap in this namespace */
		snprintf(afp_cfg.vdevs[0], sizeof(afp_cfg.vdevs[0]), "net_tap0,iface=%s", tap_if);
	else if (strcmp(interop_pmd, "net_af_xdp0") == 0)
		/* copy mode, generic XDP: what a veth offers */
		snprintf(afp_cfg.vdevs[0], sizeof(afp_cfg.vdevs[0]),
			 "net_af_xdp0,iface=%s,start_queue=0,queue_count=1,force_copy=1", ns.va);
	else
		snprintf(afp_cfg.vdevs[0], sizeof(afp_cfg.vdevs[0]), "%s,iface=%s", interop_pmd,
			 ns.va);
	afp_cfg.n_vdevs = 1;
	snprintf(afp_cfg.port, sizeof(afp_cfg.port), "%s", interop_pmd);
	afp_cfg.prefix_len = 24;
	if (interop_confirm)
		afp_cfg.arp_reachable_ns = 200000000;
	if (interop_static) {
		const uint8_t *m = ns.mac_b.ether_addr_octet;
		snprintf(afp_cfg.neigh[0].ip, sizeof(afp_cfg.neigh[0].ip), "10.77.0.2");
		snprintf(afp_cfg.neigh[0].mac, sizeof(afp_cfg.neigh[0].mac),
			 "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
		afp_cfg.n_neigh = 1;
	}
	warp_engine_t *e = dpdk_engine(name, "10.77.0.1:7000", &afp_cfg, 256u << 10);
	if (!e)
		fprintf(stderr, "dpdk %s: %s\n", name, warp_errdetail());
	return e;
}

/* ---- interop: DPDK (af_packet) <-> kernel (uring-udp) ---------------------------- */

#define INTEROP_MSGS 2000

struct interop {
	_Atomic int ready, done;
	_Atomic uint64_t got[2], bad[2], order[2];
	_Atomic uint64_t arp_rx; /* interop_confirm: the DPDK node's ARP received so far */
	warp_stats_t st_dpdk;
	char err[2][256];
};

static size_t interop_len(uint64_t i)
{
	return (size_t)((i * 2654435761u) % (i % 50 == 0 ? (200u << 10) : 1400u));
}

/* One node: send INTEROP_MSGS to the other while receiving its messages. */
static void interop_node(struct interop *sh, int me)
{
	enter_ns(me == 0 || tap_mode() ? ns.a : ns.b);
	warp_engine_t *e;
	const char *peer;
	if (me == 0) {
		e = afpacket_engine("dpdk", 0);
		peer = "kernel@10.77.0.2:7001";
	} else {
		warp_config_t cfg;
		warp_config_init(&cfg);
		snprintf(cfg.node_id, sizeof(cfg.node_id), "kernel");
		cfg.max_payload_bytes = 256u << 10;
		e = NULL;
		if (!warp_config_add_transport(&cfg, "uring-udp", "10.77.0.2:7001", NULL)) {
			/* the DPDK node reads the veth's other end: it takes
			 * datagrams, not the unsegmented frames of UDP GSO */
			cfg.transports[0].flags |= WARP_TRANSPORT_NO_UDP_GSO;
			warp_engine_create(&cfg, &e);
		}
		peer = "dpdk@10.77.0.1:7000";
	}
	if (!e) {
		snprintf(sh->err[me], sizeof(sh->err[me]), "%s", warp_errdetail());
		atomic_fetch_add(&sh->ready, 100);
		_exit(1);
	}
	warp_peer_t *p;
	warp_stream_t *s;
	if (warp_peer_add(e, peer, &p) || warp_stream_open(e, p, 1, 100, &s)) {
		snprintf(sh->err[me], sizeof(sh->err[me]), "%s", warp_errdetail());
		_exit(2);
	}
	struct side side = { .got = &sh->got[me], .bad = &sh->bad[me], .order = &sh->order[me] };
	warp_engine_set_recv(e, side_recv, &side);
	atomic_fetch_add(&sh->ready, 1);
	while (atomic_load(&sh->ready) < 2)
		warp_engine_poll(e);
	static uint8_t buf[200u << 10];
	for (uint64_t i = 0; i < INTEROP_MSGS; i++) {
		size_t len = interop_len(i);
		th_fill(buf, len, th_seed(1, i, len));
		int rc;
		while ((rc = warp_send(e, s, buf, len, NULL)) == WARP_EAGAIN)
			warp_engine_poll(e);
		if (rc) {
			snprintf(sh->err[me], sizeof(sh->err[me]), "send %llu: %s",
				 (unsigned long long)i, warp_strerror(rc));
			_exit(3);
		}
		warp_engine_poll(e);
	}
	for (uint64_t n = 0; !atomic_load(&sh->done); n++) {
		warp_engine_poll(e);
		if (interop_confirm && me == 0 && (n & 1023) == 0) {
			warp_engine_stats(e, &sh->st_dpdk);
			atomic_store(&sh->arp_rx, sh->st_dpdk.drv_arp_rx);
		}
	}
	if (me == 0)
		warp_engine_stats(e, &sh->st_dpdk);
	warp_engine_destroy(e);
	_exit(0);
}

static void interop(void);

Test(dpdk_interop, af_packet_node_and_kernel_node_exchange_both_ways_with_arp,
     .fini = ns_cleanup, .timeout = 120)
{
	interop_pmd = "net_af_packet0";
	interop();
}

/* net_tap: the PMD creates a tap interface; the kernel node sits on its
 * other end, in the same namespace, with 10.77.0.2 on it. */
Test(dpdk_interop, tap_node_and_kernel_node_exchange_both_ways_with_arp, .fini = ns_cleanup,
     .timeout = 120)
{
	interop_pmd = "net_tap0";
	interop();
}

Test(dpdk_interop, af_xdp_node_and_kernel_node_exchange_both_ways_with_arp,
     .fini = ns_cleanup, .timeout = 120)
{
	interop_pmd = "net_af_xdp0";
	interop();
}

/* A static neighbour is used as it is: the DPDK node never asks for the
 * kernel node's MAC (the setting for engines on queues other than 0, which
 * never see ARP replies: docs/deployment.md). */
Test(dpdk_interop, a_static_neighbour_is_used_without_arp, .fini = ns_cleanup, .timeout = 120)
{
	interop_pmd = "net_af_packet0";
	interop_static = true;
	interop();
}

static void interop(void)
{
	ns_setup();
	if (interop_confirm || interop_static) {
		/* the kernel node never asks for the DPDK node's MAC: every ARP
		 * the DPDK node receives answers one of its requests */
		const uint8_t *m = ns.mac_a.ether_addr_octet;
		cr_assert_eq(th_sh("ip -n %s neigh replace 10.77.0.1 lladdr "
				   "%02x:%02x:%02x:%02x:%02x:%02x dev %s nud permanent",
				   ns.b, m[0], m[1], m[2], m[3], m[4], m[5], ns.vb),
			     0);
	}
	struct interop *sh = th_shared(sizeof(*sh));
	snprintf(tap_if, sizeof(tap_if), "wt%d", getpid() % 100000);
	pid_t parent = getpid(), pid[2];
	for (int i = 0; i < 2; i++) {
		pid[i] = th_fork(parent);
		if (pid[i] == 0)
			interop_node(sh, i);
		if (i == 0 && tap_mode()) {
			/* the tap exists once the DPDK node is up: address it */
			uint64_t t = th_mono_ns();
			while (atomic_load(&sh->ready) == 0 && th_mono_ns() - t < 20000000000ull)
				usleep(1000);
			cr_assert_eq(atomic_load(&sh->ready), 1, "dpdk node: %s", sh->err[0]);
			cr_assert_eq(th_sh("ip -n %s addr add 10.77.0.2/24 dev %s && ip -n %s link set %s up",
					ns.a, tap_if, ns.a, tap_if),
				     0);
		}
	}
	uint64_t t0 = th_mono_ns();
	while ((atomic_load(&sh->got[0]) < INTEROP_MSGS || atomic_load(&sh->got[1]) < INTEROP_MSGS) &&
	       atomic_load(&sh->ready) < 100 && th_mono_ns() - t0 < 60000000000ull)
		usleep(1000);
	/* the first resolution's answer, then four confirmations answered
	 * (one every arp_reachable); without confirmations it stays at one */
	while (interop_confirm && atomic_load(&sh->arp_rx) < 5 && atomic_load(&sh->ready) < 100 &&
	       th_mono_ns() - t0 < 60000000000ull)
		usleep(1000);
	atomic_store(&sh->done, 1);
	int st[2];
	for (int i = 0; i < 2; i++)
		waitpid(pid[i], &st[i], 0);
	cr_assert_str_empty(sh->err[0], "dpdk node: %s", sh->err[0]);
	cr_assert_str_empty(sh->err[1], "kernel node: %s", sh->err[1]);
	cr_assert(WIFEXITED(st[0]) && WEXITSTATUS(st[0]) == 0, "dpdk node exit %d", st[0]);
	cr_assert(WIFEXITED(st[1]) && WEXITSTATUS(st[1]) == 0, "kernel node exit %d", st[1]);
	cr_assert_eq(atomic_load(&sh->got[0]), INTEROP_MSGS, "dpdk node received %llu",
		     (unsigned long long)atomic_load(&sh->got[0]));
	cr_assert_eq(atomic_load(&sh->got[1]), INTEROP_MSGS, "kernel node received %llu",
		     (unsigned long long)atomic_load(&sh->got[1]));
	cr_assert_eq(atomic_load(&sh->bad[0]) + atomic_load(&sh->bad[1]), 0, "payloads differ");
	cr_assert_eq(atomic_load(&sh->order[0]) + atomic_load(&sh->order[1]), 0, "out of order");
	/* the DPDK node asked for the kernel node's MAC (the kernel learns ours
	 * from that request, so it may never have to ask) */
	if (interop_static) {
		cr_assert_eq(sh->st_dpdk.drv_arp_tx, 0, "ARP sent %llu with a static neighbour",
			     (unsigned long long)sh->st_dpdk.drv_arp_tx);
		cr_assert_eq(sh->st_dpdk.drv_arp_rx, 0, "ARP received %llu",
			     (unsigned long long)sh->st_dpdk.drv_arp_rx);
	} else {
		cr_assert_geq(sh->st_dpdk.drv_arp_tx, 1, "ARP sent %llu",
			      (unsigned long long)sh->st_dpdk.drv_arp_tx);
		cr_assert_geq(sh->st_dpdk.drv_arp_rx, 1, "ARP received %llu",
			      (unsigned long long)sh->st_dpdk.drv_arp_rx);
	}
	cr_assert_eq(sh->st_dpdk.drv_rx_bad_header, 0);
	if (interop_confirm) {
		/* the first resolution, then confirmations, each answered (the
		 * reply refreshes the MAC) */
		cr_assert_geq(sh->st_dpdk.drv_arp_tx, 5, "ARP sent %llu",
			      (unsigned long long)sh->st_dpdk.drv_arp_tx);
		cr_assert_geq(sh->st_dpdk.drv_arp_rx, 5, "ARP received %llu",
			      (unsigned long long)sh->st_dpdk.drv_arp_rx);
	}
	munmap(sh, sizeof(*sh));
}

/* A resolved neighbour is asked again every arp_reachable while its old MAC
 * stays in use: a neighbour whose MAC changed without a gratuitous ARP is
 * found that way. */
Test(dpdk_interop, a_resolved_neighbour_is_confirmed_every_arp_reachable, .fini = ns_cleanup,
     .timeout = 120)
{
	interop_pmd = "net_af_packet0";
	interop_confirm = true;
	interop();
}

/* ---- RSS: kernel flows spread across the engines of one port ------------------------ */

/* A net_tap port of two queue pairs with an engine on each (queue 0 and 1),
 * both node "dpdk" at 10.77.0.1:7000, polled by one thread; on the kernel's
 * side of the tap, in the same namespace, RSSQ_FLOWS uring-udp engines
 * c00, c01, ..., each its own flow (10.77.0.2, port 7100 + i) and each
 * sending RSSQ_MSGS messages to "dpdk".
 *
 * net_tap reports RSS for IP/UDP/TCP (flow_type_rss_offloads), so the
 * driver configures the port with RTE_ETH_MQ_RX_RSS (read back with
 * rte_eth_dev_conf_get). The PMD opens the tun device multi-queue, one file
 * descriptor per queue pair, and the spreading is the kernel's: tun hands a
 * frame to the queue its flow's symmetric hash (addresses, ports) picks,
 * unless a queue has written a frame of that flow within the last 3 s: then
 * to that queue (tun's flow table: a flow's replies pin it).
 *
 * Which engine a flow reaches is the kernel's choice, so every engine would
 * have to know every peer, but a warp engine contacts each peer it knows as
 * soon as it is added (a responder asks for a handshake, again and again
 * until one comes), and a request makes the peer start a new attempt: two
 * engines of one node that both know a peer take its session from each
 * other, and on tap their requests, not the hash, decide the queue of every
 * flow (tun pins it to the queue that wrote last). So each engine here
 * knows only the peers whose flows reach it, found the way a listening
 * server would accept them: the kernel flows start one at a time (the
 * kernel nodes are the initiators: "c.." < "dpdk"), the first HELLO of a
 * flow is dropped as unknown_peer by the engine whose queue it reached, and
 * that engine alone adds the peer; the next HELLO, on the same queue,
 * brings the session up. Then every flow sends at once, and each must be
 * delivered, byte-exact and in order, and acknowledged, all of it by the
 * engine that took it: a frame of a flow on the other queue would be
 * dropped there as unknown_peer, counted, and asserted to be none. */

#define RSSQ_FLOWS 16 /* all of them on one queue: a chance of 2^-15 */
#define RSSQ_MSGS 200
#define RSSQ_PORT0 7100

struct rssq {
	_Atomic int ready, go, homed, done; /* go: kernel flows to start; homed: all have an engine */
	int home[RSSQ_FLOWS];		     /* the queue whose engine took flow i */
	_Atomic uint64_t got[RSSQ_FLOWS][2]; /* flow i's messages delivered by the engine of queue q */
	_Atomic uint64_t bad, order, stranger;
	_Atomic uint64_t acked[RSSQ_FLOWS], failed[RSSQ_FLOWS]; /* the kernel engines' completions */
	uint64_t unknown_homed[2]; /* unknown_peer drops of each engine once every flow had one */
	warp_stats_t st[2];	   /* the dpdk engines */
	warp_stats_t kst[RSSQ_FLOWS];
	uint64_t q_ipackets[2]; /* the port's own per-queue counters */
	int mq_mode;		/* how the driver configured the port */
	uint64_t rss_hf, rss_capa;
	uint16_t nb_rxq, nb_txq;
	char err[2][256];
};

static warp_dpdk_config_t rssq_cfg[2]; /* a driver_arg each */

static warp_engine_t *rssq_dpdk_engine(uint16_t q)
{
	warp_dpdk_config_t *c = &rssq_cfg[q];
	warp_dpdk_config_init(c);
	snprintf(c->lcores, sizeof(c->lcores), "0");
	snprintf(c->vdevs[0], sizeof(c->vdevs[0]), "net_tap0,iface=%s", tap_if);
	c->n_vdevs = 1;
	snprintf(c->port, sizeof(c->port), "net_tap0");
	c->queues = 2;
	c->queue = q;
	c->prefix_len = 24;
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "dpdk");
	cfg.max_payload_bytes = 64u << 10;
	cfg.tx_arena_bytes = cfg.rx_arena_bytes = 16u << 20;
	warp_engine_t *e = NULL;
	if (warp_config_add_transport(&cfg, "dpdk", "10.77.0.1:7000", c) ||
	    warp_engine_create(&cfg, &e))
		return NULL;
	return e;
}

struct rssq_side {
	struct rssq *sh;
	int q;
	uint64_t *next; /* per flow: the next message id expected, whichever engine */
};

static void rssq_recv(void *user, const warp_msg_t *m)
{
	struct rssq_side *sd = user;
	unsigned f;
	if (m->status)
		return;
	if (sscanf(m->src_node, "c%u", &f) != 1 || f >= RSSQ_FLOWS) {
		atomic_fetch_add(&sd->sh->stranger, 1);
		return;
	}
	if (!th_check(m->data, m->len, th_seed(m->stream_id, m->msg_id, m->len)))
		atomic_fetch_add(&sd->sh->bad, 1);
	if (m->msg_id != sd->next[f])
		atomic_fetch_add(&sd->sh->order, 1);
	sd->next[f] = m->msg_id + 1;
	atomic_fetch_add(&sd->sh->got[f][sd->q], 1);
}

static uint64_t unknown_peer_drops(warp_engine_t *e)
{
	warp_stats_t st;
	warp_engine_stats(e, &st);
	return st.drop[WARP_DROP_UNKNOWN_PEER];
}

#define RSSQ_FAIL(code, ...)                                              \
	do {                                                              \
		snprintf(sh->err[0], sizeof(sh->err[0]), __VA_ARGS__);    \
		atomic_fetch_add(&sh->ready, 100);                        \
		_exit(code);                                              \
	} while (0)

/* The DPDK process: two engines on the tap port, one thread. */
static void rssq_dpdk_node(struct rssq *sh)
{
	enter_ns(ns.a);
	warp_engine_t *e[2];
	for (uint16_t q = 0; q < 2; q++)
		if (!(e[q] = rssq_dpdk_engine(q)))
			RSSQ_FAIL(1, "queue %u: %s", (unsigned)q, warp_errdetail());
	uint16_t pid;
	struct rte_eth_conf conf;
	struct rte_eth_dev_info di;
	if (rte_eth_dev_get_port_by_name("net_tap0", &pid) || rte_eth_dev_conf_get(pid, &conf) ||
	    rte_eth_dev_info_get(pid, &di))
		RSSQ_FAIL(1, "the port's configuration: %s", rte_strerror(rte_errno));
	sh->mq_mode = (int)conf.rxmode.mq_mode;
	sh->rss_hf = conf.rx_adv_conf.rss_conf.rss_hf;
	sh->rss_capa = di.flow_type_rss_offloads;
	sh->nb_rxq = di.nb_rx_queues;
	sh->nb_txq = di.nb_tx_queues;
	static uint64_t next[RSSQ_FLOWS];
	struct rssq_side sd[2];
	for (int q = 0; q < 2; q++) {
		sd[q] = (struct rssq_side){ .sh = sh, .q = q, .next = next };
		warp_engine_set_recv(e[q], rssq_recv, &sd[q]);
	}
	atomic_fetch_add(&sh->ready, 1);
	/* the kernel flows one at a time: the engine that drops its HELLO
	 * (unknown_peer) takes it */
	for (unsigned i = 0; i < RSSQ_FLOWS; i++) {
		uint64_t base[2] = { unknown_peer_drops(e[0]), unknown_peer_drops(e[1]) };
		atomic_store(&sh->go, (int)i + 1);
		uint64_t t0 = th_mono_ns(), now[2];
		do {
			if (th_mono_ns() - t0 > 10000000000ull || atomic_load(&sh->ready) >= 100)
				RSSQ_FAIL(2, "flow c%02u: no HELLO reached either engine in 10 s", i);
			warp_engine_poll(e[0]);
			warp_engine_poll(e[1]);
			now[0] = unknown_peer_drops(e[0]);
			now[1] = unknown_peer_drops(e[1]);
		} while (now[0] == base[0] && now[1] == base[1]);
		if (now[0] != base[0] && now[1] != base[1])
			RSSQ_FAIL(2, "flow c%02u: its HELLO reached both queues", i);
		int q = now[1] != base[1];
		sh->home[i] = q;
		char peer[64];
		snprintf(peer, sizeof(peer), "c%02u@10.77.0.2:%u", i, RSSQ_PORT0 + i);
		if (warp_peer_add(e[q], peer, NULL))
			RSSQ_FAIL(2, "queue %d, peer %s: %s", q, peer, warp_errdetail());
	}
	/* a resend of a HELLO still on its way counts too: take the counts a
	 * little later */
	for (uint64_t t0 = th_mono_ns(); th_mono_ns() - t0 < 50000000ull;) {
		warp_engine_poll(e[0]);
		warp_engine_poll(e[1]);
	}
	for (int q = 0; q < 2; q++)
		sh->unknown_homed[q] = unknown_peer_drops(e[q]);
	atomic_store(&sh->homed, 1);
	while (!atomic_load(&sh->done)) {
		warp_engine_poll(e[0]);
		warp_engine_poll(e[1]);
	}
	struct rte_eth_stats ps;
	if (rte_eth_stats_get(pid, &ps) == 0)
		for (int q = 0; q < 2; q++)
			sh->q_ipackets[q] = ps.q_ipackets[q];
	for (int q = 0; q < 2; q++) {
		warp_engine_stats(e[q], &sh->st[q]);
		warp_engine_destroy(e[q]);
	}
	_exit(0);
}

struct rssq_flow {
	struct rssq *sh;
	unsigned f;
};

static void rssq_completion(void *user, const warp_msg_t *m)
{
	struct rssq_flow *fl = user;
	atomic_fetch_add(m->status ? &fl->sh->failed[fl->f] : &fl->sh->acked[fl->f], 1);
}

static size_t rssq_len(uint64_t i, unsigned f)
{
	/* mostly one packet; every 25th message up to 5 fragments */
	return (size_t)((i * 2654435761u + f * 40503u) % (i % 25 == 0 ? 6000u : 1400u));
}

/* The kernel process: RSSQ_FLOWS uring-udp engines, one thread. Flow i
 * starts (its engine is made and its handshake begins) when go > i; the
 * messages go once every flow has its engine (homed). */
static void rssq_kernel_node(struct rssq *sh)
{
	enter_ns(ns.a);
	static warp_engine_t *e[RSSQ_FLOWS];
	static warp_stream_t *s[RSSQ_FLOWS];
	static struct rssq_flow fl[RSSQ_FLOWS];
	unsigned n = 0;
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->homed)) {
		if (atomic_load(&sh->ready) >= 100 || atomic_load(&sh->done))
			_exit(1); /* the DPDK node gave up */
		for (unsigned j = 0; j < n; j++)
			warp_engine_poll(e[j]);
		if (n == RSSQ_FLOWS || atomic_load(&sh->go) <= (int)n)
			continue;
		warp_config_t cfg;
		warp_config_init(&cfg);
		snprintf(cfg.node_id, sizeof(cfg.node_id), "c%02u", n);
		cfg.max_payload_bytes = 64u << 10;
		cfg.tx_arena_bytes = cfg.rx_arena_bytes = 4u << 20;
		cfg.pkt_pool = 1024;
		char listen[32];
		snprintf(listen, sizeof(listen), "10.77.0.2:%u", RSSQ_PORT0 + n);
		warp_peer_t *p;
		if (warp_config_add_transport(&cfg, "uring-udp", listen, NULL))
			goto fail;
		/* the tap's other end takes datagrams, not UDP GSO's long frames */
		cfg.transports[0].flags |= WARP_TRANSPORT_NO_UDP_GSO;
		if (warp_engine_create(&cfg, &e[n]) || warp_peer_add(e[n], "dpdk@10.77.0.1:7000", &p) ||
		    warp_stream_open(e[n], p, 1, 100, &s[n]))
			goto fail;
		fl[n] = (struct rssq_flow){ .sh = sh, .f = n };
		warp_engine_set_completion(e[n], rssq_completion, &fl[n]);
		n++;
	}
	static uint8_t buf[6000];
	for (uint64_t m = 0; m < RSSQ_MSGS; m++) {
		for (unsigned i = 0; i < RSSQ_FLOWS; i++) {
			size_t len = rssq_len(m, i);
			th_fill(buf, len, th_seed(1, m, len));
			int rc;
			while ((rc = warp_send(e[i], s[i], buf, len, NULL)) == WARP_EAGAIN)
				for (unsigned j = 0; j < RSSQ_FLOWS; j++)
					warp_engine_poll(e[j]);
			if (rc) {
				snprintf(sh->err[1], sizeof(sh->err[1]), "c%02u: send %llu: %s", i,
					 (unsigned long long)m, warp_strerror(rc));
				_exit(3);
			}
		}
		for (unsigned j = 0; j < RSSQ_FLOWS; j++)
			warp_engine_poll(e[j]);
	}
	while (!atomic_load(&sh->done))
		for (unsigned j = 0; j < RSSQ_FLOWS; j++)
			warp_engine_poll(e[j]);
	for (unsigned i = 0; i < RSSQ_FLOWS; i++) {
		warp_engine_stats(e[i], &sh->kst[i]);
		warp_engine_destroy(e[i]);
	}
	_exit(0);
fail:
	snprintf(sh->err[1], sizeof(sh->err[1]), "c%02u: %s", n, warp_errdetail());
	atomic_fetch_add(&sh->ready, 100);
	_exit(1);
}

Test(dpdk_interop, tap_port_of_two_queues_spreads_kernel_flows_across_its_two_engines,
     .fini = ns_cleanup, .timeout = 120)
{
	ns_setup();
	struct rssq *sh = th_shared(sizeof(*sh));
	snprintf(tap_if, sizeof(tap_if), "wt%d", getpid() % 100000);
	pid_t parent = getpid(), pid[2];
	pid[0] = th_fork(parent);
	if (pid[0] == 0)
		rssq_dpdk_node(sh);
	/* the tap exists once the DPDK engines are up: address it */
	uint64_t t = th_mono_ns();
	while (atomic_load(&sh->ready) == 0 && th_mono_ns() - t < 20000000000ull)
		usleep(1000);
	if (atomic_load(&sh->ready) != 1) {
		kill(pid[0], SIGKILL);
		waitpid(pid[0], NULL, 0);
		cr_assert_fail("dpdk node: %s", sh->err[0]);
	}
	cr_assert_eq(th_sh("ip -n %s addr add 10.77.0.2/24 dev %s && ip -n %s link set %s up", ns.a,
			   tap_if, ns.a, tap_if),
		     0);
	pid[1] = th_fork(parent);
	if (pid[1] == 0)
		rssq_kernel_node(sh);
	uint64_t t0 = th_mono_ns();
	for (;;) {
		uint64_t settled = 0;
		for (unsigned i = 0; i < RSSQ_FLOWS; i++)
			settled += atomic_load(&sh->acked[i]) + atomic_load(&sh->failed[i]);
		if (settled >= (uint64_t)RSSQ_FLOWS * RSSQ_MSGS || atomic_load(&sh->ready) >= 100 ||
		    th_mono_ns() - t0 > 60000000000ull)
			break;
		usleep(1000);
	}
	atomic_store(&sh->done, 1);
	int st[2];
	for (int i = 0; i < 2; i++)
		waitpid(pid[i], &st[i], 0);
	cr_assert_str_empty(sh->err[0], "dpdk node: %s", sh->err[0]);
	cr_assert_str_empty(sh->err[1], "kernel node: %s", sh->err[1]);
	cr_assert(WIFEXITED(st[0]) && WEXITSTATUS(st[0]) == 0, "dpdk node exit %d", st[0]);
	cr_assert(WIFEXITED(st[1]) && WEXITSTATUS(st[1]) == 0, "kernel node exit %d", st[1]);

	/* the port: two queue pairs, RSS on for IPv4/UDP as the PMD offers it */
	cr_assert_eq(sh->nb_rxq, 2, "rx queues %u", sh->nb_rxq);
	cr_assert_eq(sh->nb_txq, 2, "tx queues %u", sh->nb_txq);
	cr_assert_neq(sh->rss_capa & RTE_ETH_RSS_NONFRAG_IPV4_UDP, 0,
		      "net_tap reports no IPv4/UDP RSS (flow_type_rss_offloads %#llx)",
		      (unsigned long long)sh->rss_capa);
	cr_assert_eq(sh->mq_mode, RTE_ETH_MQ_RX_RSS, "mq_mode %d, not RSS", sh->mq_mode);
	cr_assert_eq(sh->rss_hf, (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & sh->rss_capa,
		     "rss_hf %#llx", (unsigned long long)sh->rss_hf);

	char map[RSSQ_FLOWS + 1] = "";
	uint64_t per_engine[2] = { 0, 0 };
	unsigned flows_on[2] = { 0, 0 };
	for (unsigned i = 0; i < RSSQ_FLOWS; i++) {
		map[i] = (char)('0' + sh->home[i]);
		flows_on[sh->home[i]]++;
		per_engine[0] += atomic_load(&sh->got[i][0]);
		per_engine[1] += atomic_load(&sh->got[i][1]);
	}
	fprintf(stderr, "rss: flow -> queue %s", map);
	for (int q = 0; q < 2; q++)
		fprintf(stderr,
			"; queue %d: %u flows, %llu rx packets (port: %llu frames), ARP %llu sent "
			"%llu received",
			q, flows_on[q], (unsigned long long)sh->st[q].rx_packets,
			(unsigned long long)sh->q_ipackets[q], (unsigned long long)sh->st[q].drv_arp_tx,
			(unsigned long long)sh->st[q].drv_arp_rx);
	fprintf(stderr, "\n");
	/* the kernel spread the flows over both queues */
	cr_assert(flows_on[0] > 0 && flows_on[1] > 0, "every flow on one queue: %s", map);
	/* every flow: all its messages delivered, by the engine that took it,
	 * byte-exact and in order, and acknowledged */
	for (unsigned i = 0; i < RSSQ_FLOWS; i++) {
		int q = sh->home[i];
		uint64_t mine = atomic_load(&sh->got[i][q]), other = atomic_load(&sh->got[i][1 - q]);
		cr_assert_eq(mine, RSSQ_MSGS, "flow c%02u: %llu messages delivered by queue %d", i,
			     (unsigned long long)mine, q);
		cr_assert_eq(other, 0, "flow c%02u: %llu messages delivered by the other queue", i,
			     (unsigned long long)other);
		cr_assert_eq(atomic_load(&sh->acked[i]), RSSQ_MSGS,
			     "flow c%02u: %llu acknowledged, %llu failed", i,
			     (unsigned long long)atomic_load(&sh->acked[i]),
			     (unsigned long long)atomic_load(&sh->failed[i]));
		cr_assert_eq(sh->kst[i].msgs_acked, RSSQ_MSGS);
		cr_assert_eq(sh->kst[i].peer_restarts, 0, "flow c%02u: its session restarted", i);
	}
	cr_assert_eq(atomic_load(&sh->bad), 0, "payloads differ");
	cr_assert_eq(atomic_load(&sh->order), 0, "out of order");
	cr_assert_eq(atomic_load(&sh->stranger), 0, "messages from unknown nodes");
	for (int q = 0; q < 2; q++) {
		cr_assert_gt(sh->st[q].rx_packets, 0, "queue %d: its engine received nothing", q);
		cr_assert_eq(sh->st[q].msgs_delivered, per_engine[q], "queue %d: %llu delivered", q,
			     (unsigned long long)sh->st[q].msgs_delivered);
		/* once every flow had its engine, no frame of one reached the other */
		cr_assert_eq(sh->st[q].drop[WARP_DROP_UNKNOWN_PEER], sh->unknown_homed[q],
			     "queue %d: %llu frames of another queue's flows", q,
			     (unsigned long long)(sh->st[q].drop[WARP_DROP_UNKNOWN_PEER] -
						  sh->unknown_homed[q]));
		cr_assert_eq(sh->st[q].drv_rx_not_ours, 0, "queue %d: %llu frames not ours", q,
			     (unsigned long long)sh->st[q].drv_rx_not_ours);
		cr_assert_eq(sh->st[q].drv_rx_bad_header, 0);
	}
	cr_assert_eq(per_engine[0] + per_engine[1], (uint64_t)RSSQ_FLOWS * RSSQ_MSGS);
	munmap(sh, sizeof(*sh));
}

/* ---- frames that are not ours ------------------------------------------------------ */

struct filter_shm {
	_Atomic int ready, done;
	warp_stats_t st;
	char err[256];
};

static void filter_node(struct filter_shm *sh)
{
	enter_ns(ns.a);
	warp_engine_t *e = afpacket_engine("dpdk", 0);
	if (!e) {
		snprintf(sh->err, sizeof(sh->err), "%s", warp_errdetail());
		_exit(1);
	}
	atomic_store(&sh->ready, 1);
	while (!atomic_load(&sh->done))
		warp_engine_poll(e);
	for (int i = 0; i < 1000; i++) /* what is still queued */
		warp_engine_poll(e);
	warp_engine_stats(e, &sh->st);
	warp_engine_destroy(e);
	_exit(0);
}

static void ip_checksum(uint8_t *ip)
{
	ip[10] = ip[11] = 0;
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
}

static size_t frame_ipv4_udp(uint8_t *f, const struct ether_addr *dst, const struct ether_addr *src,
			     const char *dip, uint16_t dport)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[3] = 20 + 8 + 32; /* total length */
	ip[8] = 64;
	ip[9] = 17;
	inet_pton(AF_INET, "10.77.0.2", ip + 12);
	inet_pton(AF_INET, dip, ip + 16);
	ip_checksum(ip);
	uint8_t *u = ip + 20;
	u[0] = 0x1b;
	u[1] = 0x59; /* 7001 */
	u[2] = (uint8_t)(dport >> 8);
	u[3] = (uint8_t)dport;
	u[4] = 0;
	u[5] = 8 + 32;
	u[6] = u[7] = 0; /* no UDP checksum */
	memset(u + 8, 0xab, 32);
	return 14 + 20 + 8 + 32;
}

static size_t frame_arp_request(uint8_t *f, const struct ether_addr *src, const char *tip)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	uint8_t *a = f + 14;
	const uint8_t hdr[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	memcpy(a, hdr, 8);
	memcpy(a + 8, src, 6);
	inet_pton(AF_INET, "10.77.0.2", a + 14);
	memset(a + 18, 0, 6);
	inet_pton(AF_INET, tip, a + 24);
	return 14 + 28;
}

Test(dpdk_interop, frames_not_for_us_are_dropped_and_counted_and_arp_is_answered,
     .fini = ns_cleanup, .timeout = 60)
{
	ns_setup();
	struct filter_shm *sh = th_shared(sizeof(*sh));
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		th_child_dies_with_parent(parent);
		filter_node(sh);
	}
	uint64_t t0 = th_mono_ns();
	while (!atomic_load(&sh->ready) && th_mono_ns() - t0 < 20000000000ull)
		usleep(1000);
	cr_assert(atomic_load(&sh->ready), "dpdk node did not start: %s", sh->err);

	/* a raw socket on the kernel end of the veth */
	char path[128];
	snprintf(path, sizeof(path), "/run/netns/%s", ns.b);
	int nsfd = open(path, O_RDONLY), self = open("/proc/self/ns/net", O_RDONLY);
	cr_assert(nsfd >= 0 && self >= 0);
	cr_assert_eq(setns(nsfd, CLONE_NEWNET), 0);
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ARP));
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
				  .sll_ifindex = (int)if_nametoindex(ns.vb), .sll_halen = 6 };
	cr_assert_eq(setns(self, CLONE_NEWNET), 0);
	cr_assert(fd >= 0 && ll.sll_ifindex > 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&ll, sizeof(ll)), 0);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	static const struct ether_addr other = { { 0x02, 0, 0, 0, 0x99, 0x99 } };
	uint8_t f[128];
	size_t n;
#define SEND(len) cr_assert_eq(sendto(fd, f, (len), 0, (struct sockaddr *)&ll, sizeof(ll)), (ssize_t)(len))
	/* not ours: another MAC, another address, another port */
	n = frame_ipv4_udp(f, &other, &ns.mac_b, "10.77.0.1", 7000);
	SEND(n);
	n = frame_ipv4_udp(f, &ns.mac_a, &ns.mac_b, "10.77.0.9", 7000);
	SEND(n);
	n = frame_ipv4_udp(f, &ns.mac_a, &ns.mac_b, "10.77.0.1", 7999);
	SEND(n);
	/* bad headers: IPv4 checksum, UDP length, IPv4 total length past the frame */
	n = frame_ipv4_udp(f, &ns.mac_a, &ns.mac_b, "10.77.0.1", 7000);
	f[14 + 10] ^= 0x5a;
	SEND(n);
	/* (an IPv4 fragment cannot be sent this way: the af_packet PMD's
	 * socket asks the kernel to reassemble fragments, so it holds it) */
	n = frame_ipv4_udp(f, &ns.mac_a, &ns.mac_b, "10.77.0.1", 7000);
	f[14 + 20 + 5] = 200; /* UDP length past the IPv4 payload */
	SEND(n);
	n = frame_ipv4_udp(f, &ns.mac_a, &ns.mac_b, "10.77.0.1", 7000);
	f[14 + 3] = 200;
	SEND(n);
	/* another protocol: the IPv6 ethertype */
	n = frame_ipv4_udp(f, &ns.mac_a, &ns.mac_b, "10.77.0.1", 7000);
	f[12] = 0x86;
	f[13] = 0xdd;
	SEND(n);
	/* ARP: a request for someone else (no answer), then one for us */
	n = frame_arp_request(f, &ns.mac_b, "10.77.0.50");
	SEND(n);
	n = frame_arp_request(f, &ns.mac_b, "10.77.0.1");
	SEND(n);
	bool answered = false;
	for (int tries = 0; tries < 50 && !answered; tries++) {
		uint8_t r[128];
		ssize_t got = recv(fd, r, sizeof(r), 0);
		if (got >= 42 && r[20] == 0 && r[21] == 2 && !memcmp(r + 22, &ns.mac_a, 6) &&
		    !memcmp(r, &ns.mac_b, 6)) {
			uint8_t want[4];
			inet_pton(AF_INET, "10.77.0.1", want);
			answered = !memcmp(r + 28, want, 4);
		}
	}
#undef SEND
	close(fd);
	close(nsfd);
	close(self);
	atomic_store(&sh->done, 1);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dpdk node: %s", sh->err);
	cr_assert(answered, "no ARP reply for 10.77.0.1 from the DPDK node");
	cr_assert_eq(sh->st.drv_rx_not_ours, 3);
	cr_assert_eq(sh->st.drv_rx_bad_header, 3);
	cr_assert_geq(sh->st.drv_rx_other_proto, 1);
	cr_assert_eq(sh->st.drv_arp_rx, 2);
	cr_assert_eq(sh->st.drv_arp_tx, 1, "one reply, nothing else");
	cr_assert_eq(sh->st.rx_packets, 0, "nothing reached the protocol");
	munmap(sh, sizeof(*sh));
}

/* ---- bad setup ------------------------------------------------------------------------ */

static void memif_alone(warp_dpdk_config_t *c, const char *vdev_args)
{
	warp_dpdk_config_init(c);
	snprintf(c->lcores, sizeof(c->lcores), "0");
	memif_sock_name();
	snprintf(c->vdevs[0], sizeof(c->vdevs[0]), "net_memif0,role=server,socket=%s%s", memif_sock,
		 vdev_args);
	c->n_vdevs = 1;
	snprintf(c->port, sizeof(c->port), "net_memif0");
}

static void expect_error(const warp_dpdk_config_t *c, const char *listen, int code,
			 const char *const *words)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "bad");
	cr_assert_eq(warp_config_add_transport(&cfg, "dpdk", listen, (void *)c), 0);
	warp_engine_t *e = NULL;
	int rc = warp_engine_create(&cfg, &e);
	cr_assert_eq(rc, code, "got %s (%s)", warp_strerror(rc), warp_errdetail());
	cr_assert_null(e);
	for (; *words; words++)
		cr_assert(strstr(warp_errdetail(), *words), "'%s' not in: %s", *words,
			  warp_errdetail());
	unlink(memif_sock);
}

Test(dpdk_setup, hugepages_short_says_how_many_are_needed)
{
	need_hugepages();
	warp_dpdk_config_t c;
	memif_alone(&c, "");
	c.mbufs = 50u * 1000 * 1000; /* ~110 GiB */
	const char *w[] = { "need", "MiB of hugepages, have", "docs/deployment.md", NULL };
	expect_error(&c, "10.98.0.1:7000", WARP_ENOMEM, w);
}

Test(dpdk_setup, no_hugepages_at_all_says_how_many_are_needed)
{
	/* This test process gets a mount namespace of its own (Criterion runs
	 * each test in its own process) with an empty tmpfs over the kernel's
	 * hugepage directory: the EAL and warp find no hugepages, and the
	 * host's stay as they are. */
	if (geteuid() != 0)
		cr_skip("needs root: hides the hugepages in a mount namespace of its own");
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(mount("none", "/sys/kernel/mm/hugepages", "tmpfs", 0, NULL), 0,
		     "tmpfs over /sys/kernel/mm/hugepages: %s", strerror(errno));
	warp_dpdk_config_t c;
	memif_alone(&c, "");
	const char *w[] = { "rte_eal_init", "no free hugepages: need", "MiB of hugepages",
			    "have 0", "no_huge", "docs/deployment.md", NULL };
	expect_error(&c, "10.98.0.1:7000", WARP_EDRIVER, w);
}

Test(dpdk_setup, missing_port_names_the_ports_there_are)
{
	need_hugepages();
	warp_dpdk_config_t c;
	memif_alone(&c, "");
	snprintf(c.port, sizeof(c.port), "net_memif7");
	const char *w[] = { "port 'net_memif7' not found", "net_memif0", NULL };
	expect_error(&c, "10.98.0.1:7000", WARP_ENOENT, w);
}

Test(dpdk_setup, malformed_vdev_is_named)
{
	need_hugepages();
	warp_dpdk_config_t c;
	memif_alone(&c, ",role=sideways");
	const char *w[] = { "vdev 'net_memif0,", "role=sideways' cannot be created", NULL };
	expect_error(&c, "10.98.0.1:7000", WARP_EDRIVER, w);
}

Test(dpdk_setup, more_queues_than_the_pmd_offers)
{
	need_hugepages();
	warp_dpdk_config_t c;
	warp_dpdk_config_init(&c);
	snprintf(c.lcores, sizeof(c.lcores), "0");
	snprintf(c.vdevs[0], sizeof(c.vdevs[0]), "net_ring0");
	c.n_vdevs = 1;
	snprintf(c.port, sizeof(c.port), "net_ring0");
	c.queues = 64;
	const char *w[] = { "queues = 64", "offers at most", "net_ring", NULL };
	expect_error(&c, "10.98.0.1:7000", WARP_ECONFIG, w);
}

Test(dpdk_setup, bad_addresses_and_options_are_named)
{
	/* refused before the EAL starts: no hugepages needed */
	warp_dpdk_config_t c;
	memif_alone(&c, "");
	const char *w1[] = { "listen", "'[::1]:7000'", "IPv4", NULL };
	expect_error(&c, "[::1]:7000", WARP_ECONFIG, w1);
	c.queues = 2;
	c.queue = 2;
	const char *w2[] = { "queue 2 of 2", NULL };
	expect_error(&c, "10.98.0.1:7000", WARP_ECONFIG, w2);
	c.queues = 0;
	c.queue = 0;
	snprintf(c.gateway, sizeof(c.gateway), "10.0.0.300");
	const char *w3[] = { "gateway '10.0.0.300'", NULL };
	expect_error(&c, "10.98.0.1:7000", WARP_ECONFIG, w3);
	c.gateway[0] = '\0';
	snprintf(c.neigh[0].ip, sizeof(c.neigh[0].ip), "10.98.0.2");
	snprintf(c.neigh[0].mac, sizeof(c.neigh[0].mac), "02:00:00:zz:00:01");
	c.n_neigh = 1;
	const char *w4[] = { "neighbor 0", "02:00:00:zz:00:01", NULL };
	expect_error(&c, "10.98.0.1:7000", WARP_ECONFIG, w4);
}

Test(dpdk_setup, external_eal_that_was_never_started_is_refused)
{
	warp_dpdk_config_t c;
	warp_dpdk_config_init(&c);
	c.eal_external = true;
	const char *w[] = { "eal = external", "rte_eal_init", NULL };
	expect_error(&c, "10.98.0.1:7000", WARP_ESTATE, w);
}

Test(dpdk_setup, peer_addresses_are_checked)
{
	need_hugepages();
	warp_dpdk_config_t c;
	memif_alone(&c, "");
	c.prefix_len = 24;
	warp_engine_t *e = dpdk_engine("a", "10.98.0.1:7000", &c, 1u << 20);
	cr_assert_not_null(e, "%s", warp_errdetail());
	cr_assert_eq(warp_peer_add(e, "b@[::1]:7000", NULL), WARP_EINVALID_NODE);
	cr_assert(strstr(warp_errdetail(), "IPv6 is not supported"), "%s", warp_errdetail());
	cr_assert_eq(warp_peer_add(e, "b@10.1.2.3:7000", NULL), WARP_EINVALID_NODE);
	cr_assert(strstr(warp_errdetail(), "outside the local subnet"), "%s", warp_errdetail());
	cr_assert_eq(warp_peer_add(e, "b@10.98.0.2:7000", NULL), 0, "%s", warp_errdetail());
	warp_health_t h;
	cr_assert_eq(warp_engine_health(e, &h), 0);
	/* no memif client connected: the link is down, and health says so */
	for (int i = 0; i < 10; i++)
		warp_engine_poll(e);
	cr_assert_eq(warp_engine_health(e, &h), 0);
	cr_assert_eq(h.state, WARP_HEALTH_DEGRADED, "%d %s", h.state, h.reason);
	cr_assert(strstr(h.reason, "link down on transport 0 (dpdk)"), "%s", h.reason);
	warp_stats_t st;
	warp_engine_stats(e, &st);
	cr_assert_eq(st.drv_link_down, 1);
	warp_engine_destroy(e);
	unlink(memif_sock);
}

/* A peer reached over dpdk first and uring-udp second: while the DPDK port's
 * link is down (a memif server nobody connected to), the peer is failed
 * over at once, without waiting for timeouts, and messages arrive. */
Test(dpdk_setup, link_down_fails_the_peer_over_to_its_next_transport)
{
	need_hugepages();
	warp_dpdk_config_t c;
	memif_alone(&c, "");
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "a");
	cr_assert_eq(warp_config_add_transport(&cfg, "dpdk", "10.98.0.1:7000", &c), 0);
	cr_assert_eq(warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL), 0);
	cfg.transports[1].flags = WARP_TRANSPORT_URING_COOP;
	warp_engine_t *a = NULL, *b = NULL;
	cr_assert_eq(warp_engine_create(&cfg, &a), 0, "%s", warp_errdetail());
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "b");
	cr_assert_eq(warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL), 0);
	cr_assert_eq(warp_engine_create(&cfg, &b), 0, "%s", warp_errdetail());
	char aaddr[64], baddr[64], id[96];
	cr_assert_eq(warp_engine_local_addr(a, 1, aaddr, sizeof(aaddr)), 0);
	cr_assert_eq(warp_engine_local_addr(b, 0, baddr, sizeof(baddr)), 0);
	warp_peer_config_t pc;
	memset(&pc, 0, sizeof(pc));
	snprintf(pc.node, sizeof(pc.node), "b");
	snprintf(pc.transports[0].driver, sizeof(pc.transports[0].driver), "dpdk");
	snprintf(pc.transports[0].addr, sizeof(pc.transports[0].addr), "10.98.0.2:7000");
	snprintf(pc.transports[1].driver, sizeof(pc.transports[1].driver), "uring-udp");
	snprintf(pc.transports[1].addr, sizeof(pc.transports[1].addr), "%s", baddr);
	pc.n_transports = 2;
	pc.fallback = WARP_FALLBACK_FAILOVER;
	warp_peer_t *pb;
	cr_assert_eq(warp_peer_add_config(a, &pc, &pb), 0, "%s", warp_errdetail());
	snprintf(id, sizeof(id), "a@%s", aaddr);
	cr_assert_eq(warp_peer_add(b, id, NULL), 0, "%s", warp_errdetail());
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(a, pb, 1, 100, &s), 0);
	struct th_log log;
	th_log_init(&log);
	warp_engine_set_recv(b, th_recv, &log);
	uint8_t buf[100];
	for (uint64_t i = 0; i < 10; i++) {
		th_fill(buf, sizeof(buf), th_seed(1, i, sizeof(buf)));
		cr_assert_eq(warp_send(a, s, buf, sizeof(buf), NULL), 0);
	}
	uint64_t t0 = th_mono_ns();
	while (log.n < 10 && th_mono_ns() - t0 < 5000000000ull) {
		warp_engine_poll(a);
		warp_engine_poll(b);
	}
	warp_stats_t st;
	warp_engine_stats(a, &st);
	cr_assert_eq(log.n, 10, "delivered %zu", (size_t)log.n);
	cr_assert_eq(log.bad, 0);
	cr_assert_eq(warp_peer_transport(pb), 1, "the peer is on uring-udp");
	cr_assert_eq(st.drv_link_down, 1);
	cr_assert_geq(st.failovers, 1);
	cr_assert_eq(st.rto_fired, 0, "failed over before any timeout");
	/* a peer added while the link is down starts on its next transport */
	snprintf(pc.node, sizeof(pc.node), "c");
	snprintf(pc.transports[0].addr, sizeof(pc.transports[0].addr), "10.98.0.3:7000");
	warp_peer_t *pcp;
	cr_assert_eq(warp_peer_add_config(a, &pc, &pcp), 0, "%s", warp_errdetail());
	cr_assert_eq(warp_peer_transport(pcp), 1);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	free(log.rx);
	unlink(memif_sock);
}

/* ---- a link that goes down and comes back ---------------------------------- */

/* A process that never starts the EAL and, on command, forks a fresh memif
 * client node (a warp engine of its own) or kills it: the engine of the
 * test (the memif server) sees its link come up and go down, as often as
 * the test asks. Commands on a pipe: 's' start, 'k' kill. */
static void link_launcher(int cmd_fd, pid_t parent)
{
	pid_t node = -1;
	char c;
	while (read(cmd_fd, &c, 1) == 1) {
		if (c == 's' && node < 0) {
			node = fork();
			if (node == 0) {
				th_child_dies_with_parent(getppid());
				warp_engine_t *e = memif_engine("dpdk", "rx");
				if (!e || warp_peer_add(e, "tx@10.98.0.1:7000", NULL))
					_exit(1);
				for (;;)
					warp_engine_poll(e);
			}
		} else if (c == 'k' && node > 0) {
			kill(node, SIGKILL);
			waitpid(node, NULL, 0);
			node = -1;
		}
	}
	if (node > 0)
		kill(node, SIGKILL);
	(void)parent;
	_exit(0);
}

/* Poll until the peer's health is `want` (and, for degraded, says why). */
static bool poll_until_health(warp_engine_t *e, warp_peer_t *p, warp_health_state_t want,
			      warp_health_t *h)
{
	uint64_t t0 = th_mono_ns();
	while (th_mono_ns() - t0 < 20000000000ull) {
		warp_engine_poll(e);
		warp_peer_health(e, p, h);
		if (h->state == want)
			return true;
	}
	return false;
}

Test(dpdk_setup, a_link_that_goes_down_and_comes_back_is_followed, .timeout = 120)
{
	need_hugepages();
	memif_sock_name();
	int cmd[2];
	cr_assert_eq(pipe(cmd), 0);
	pid_t parent = getpid();
	pid_t launcher = fork(); /* before this process starts its EAL */
	cr_assert_geq(launcher, 0);
	if (launcher == 0) {
		th_child_dies_with_parent(parent);
		close(cmd[1]);
		link_launcher(cmd[0], parent);
	}
	close(cmd[0]);
	warp_engine_t *e = memif_engine("dpdk", "tx");
	cr_assert_not_null(e, "%s", warp_errdetail());
	warp_peer_t *p;
	cr_assert_eq(warp_peer_add(e, "rx@10.98.0.2:7000", &p), 0, "%s", warp_errdetail());
	warp_health_t h;
	/* no client yet: the link is down, and the peer's health says so */
	cr_assert(poll_until_health(e, p, WARP_HEALTH_DEGRADED, &h), "state %d: %s", h.state,
		  h.reason);
	cr_assert(strstr(h.reason, "link down"), "%s", h.reason);
	warp_stats_t st;
	for (int round = 1; round <= 2; round++) {
		cr_assert_eq(write(cmd[1], "s", 1), 1);
		cr_assert(poll_until_health(e, p, WARP_HEALTH_UP, &h),
			  "round %d: the client came, the link stays down: %s", round, h.reason);
		cr_assert_eq(write(cmd[1], "k", 1), 1);
		cr_assert(poll_until_health(e, p, WARP_HEALTH_DEGRADED, &h),
			  "round %d: the client is gone, the link stays up", round);
		cr_assert(strstr(h.reason, "link down on transport 0 (dpdk)"), "%s", h.reason);
		warp_engine_stats(e, &st);
		/* down at the start, then once a round */
		cr_assert_eq(st.drv_link_down, (uint64_t)round + 1, "round %d: %llu link downs",
			     round, (unsigned long long)st.drv_link_down);
	}
	close(cmd[1]);
	waitpid(launcher, NULL, 0);
	warp_engine_destroy(e);
	unlink(memif_sock);
}

/* A port the EAL created (from the vdev argument) cannot be probed again
 * once closed: the last engine only stops it, and a new engine in the same
 * process starts it again, with the same or another queue count. */
Test(dpdk_setup, an_engine_can_be_made_again_on_the_same_port)
{
	need_hugepages();
	warp_dpdk_config_t c;
	memif_alone(&c, "");
	for (int round = 0; round < 3; round++) {
		c.queues = round == 2 ? 2 : 1;
		warp_engine_t *e = dpdk_engine("a", "10.98.0.1:7000", &c, 1u << 20);
		cr_assert_not_null(e, "round %d: %s", round, warp_errdetail());
		for (int i = 0; i < 100; i++)
			warp_engine_poll(e);
		warp_engine_destroy(e);
	}
	unlink(memif_sock);
}

/* Engines sharing a port take the same mtu: the port's mbufs are sized for
 * the mtu of the engine that set it up, and a second engine with a larger
 * one used to be let in, its larger packets then written past the end of
 * those mbufs. */
static int engine_on_queue(warp_dpdk_config_t *c, unsigned queue, uint32_t mtu,
			   warp_engine_t **e)
{
	c->queue = queue;
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "q%u", queue);
	cfg.mtu = mtu;
	cfg.tx_arena_bytes = cfg.rx_arena_bytes = 16u << 20;
	cfg.max_payload_bytes = 1u << 20;
	cr_assert_eq(warp_config_add_transport(&cfg, "dpdk", "10.98.0.1:7000", (void *)c), 0);
	*e = NULL;
	return warp_engine_create(&cfg, e);
}

Test(dpdk_setup, engines_sharing_a_port_take_its_mtu)
{
	need_hugepages();
	warp_dpdk_config_t c;
	memif_alone(&c, "");
	c.queues = 2;
	warp_engine_t *a, *b;
	cr_assert_eq(engine_on_queue(&c, 0, 1472, &a), 0, "%s", warp_errdetail());
	cr_assert_eq(engine_on_queue(&c, 1, 4000, &b), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "set up for mtu 1472 by another engine, this one says "
					   "4000"),
		  "%s", warp_errdetail());
	cr_assert_null(b);
	cr_assert_eq(engine_on_queue(&c, 1, 1000, &b), 0, "a smaller one fits: %s", warp_errdetail());
	warp_engine_destroy(b);
	warp_engine_destroy(a);
	unlink(memif_sock);
}

Test(dpdk_setup, two_dpdk_transports_in_one_engine_are_refused)
{
	need_hugepages();
	warp_dpdk_config_t c1, c2;
	memif_alone(&c1, "");
	memif_alone(&c2, "");
	snprintf(c2.port, sizeof(c2.port), "net_memif1");
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "a");
	cr_assert_eq(warp_config_add_transport(&cfg, "dpdk", "10.98.0.1:7000", &c1), 0);
	int rc = warp_config_add_transport(&cfg, "dpdk", "10.98.1.1:7000", &c2);
	warp_engine_t *e = NULL;
	if (rc == 0)
		rc = warp_engine_create(&cfg, &e);
	cr_assert_neq(rc, 0);
	cr_assert_null(e);
	cr_assert(strstr(warp_errdetail(), "dpdk"), "%s", warp_errdetail());
	unlink(memif_sock);
}
