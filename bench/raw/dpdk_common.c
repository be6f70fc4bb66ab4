/* SPDX-License-Identifier: Apache-2.0 */
/* Shared slow-path pieces of the raw DPDK baselines; see dpdk_common.h. */
#include "dpdk_common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>

#define PORT_NAME "net_memif0"
#define NB_MBUFS 8191 /* 2^n - 1: the pool's ring is then exactly full */
#define MBUF_CACHE 256
#define NB_DESC 1024 /* memif ignores it: its rings have 2^rsize slots (1024) */
/* How long a side waits for the link: a forked server and a client only
 * for the other half's EAL start-up, a server started alone for a user. */
#define LINK_WAIT_S 10
#define LINK_WAIT_ALONE_S 60
#define TX_STALL_NS 2000000000ull
#define DISCONNECT_SETTLE_US 50000
#define CONNECT_RETRY_NS 200000000ull /* client: reconnect when not up by then */

static const char *const client_mac = "02:00:00:00:00:01";
static const char *const server_mac = "02:00:00:00:00:02";
static const struct rte_ether_addr client_ea = { { 0x02, 0, 0, 0, 0, 0x01 } };
static const struct rte_ether_addr server_ea = { { 0x02, 0, 0, 0, 0, 0x02 } };

volatile sig_atomic_t rdp_stop;

/* What the crash handler may touch: plain words, used with async-signal-
 * safe calls (and rte_eth_link_get_nowait, which only copies the port's
 * link word for memif). */
static struct {
	const char *tool;
	volatile pid_t child;    /* forked server to kill, or 0 */
	const char *socket;      /* socket file this process may remove, or NULL */
	volatile int have_port;
	uint16_t port;
} crash;

static void on_signal(int sig)
{
	(void)sig;
	rdp_stop = 1;
}

static void put(const char *s)
{
	ssize_t n = write(STDERR_FILENO, s, strlen(s));
	(void)n;
}

/*
 * memif quirk: when a peer goes away, EAL's interrupt thread unmaps the
 * rings while this side's lcore may be inside a burst on them (22.11 does
 * not synchronise the two), and the burst faults. The normal shutdown never
 * lets that happen; a peer that crashes or is killed can. Say so, and leave
 * neither the forked server nor the socket file behind.
 */
static void on_crash(int sig)
{
	struct rte_eth_link l;
	int memif = crash.have_port && rte_eth_link_get_nowait(crash.port, &l) == 0 &&
		    l.link_status == RTE_ETH_LINK_DOWN;
	put(crash.tool);
	if (memif)
		put(": crashed in a net_memif burst after the peer disconnected (DPDK 22.11's "
		    "memif unmaps the rings under a running burst): the other half ended or "
		    "was killed\n");
	else
		put(sig == SIGBUS ? ": crashed (SIGBUS)\n" : ": crashed (SIGSEGV)\n");
	if (crash.child > 0)
		kill(crash.child, SIGKILL);
	if (crash.socket)
		unlink(crash.socket);
	if (memif)
		_exit(1);
	signal(sig, SIG_DFL); /* anything else: fault again, for a core */
	raise(sig);
}

/* SIGINT/SIGTERM end the loops (and so close the port, which for the memif
 * server also removes the socket file) instead of killing mid-run. A forked
 * server ignores SIGINT: a terminal's ^C reaches both halves, and the client
 * must end first and then the server (killed), or one half would close the
 * link under the other's burst. */
static void catch_signals(const struct rdp_opts *o)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = o->forked ? SIG_IGN : on_signal;
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_crash;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	crash.tool = o->raw.tool;
}

/* ---- options --------------------------------------------------------------- */

int rdp_parse(int argc, char **argv, struct rdp_opts *o, unsigned flags, const char *usage)
{
	const char *tool = o->raw.tool;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	o->flags = flags;
	o->raw.size = 64;
	o->raw.count = 200000;
	o->raw.warmup = 20000;
	o->raw.role = RAW_ROLE_BOTH;
	o->raw.client_cpu = ncpu >= 2 ? 0 : -1;
	o->raw.server_cpu = ncpu >= 2 ? 1 : -1;
	o->raw.json = 0;
	o->raw.idle = "spin";
	o->seconds = 2;
	o->socket[0] = '\0';
	o->forked = 0;
	o->log_level[0] = '\0'; /* the defaults in eal_start() */

	enum { O_SIZE = 256, O_COUNT, O_WARMUP, O_SECONDS, O_ROLE, O_SOCKET, O_CCPU, O_SCPU,
	       O_JSON, O_FORKED, O_LOG, O_HELP };
	struct option lo[16];
	int n = 0;
	lo[n++] = (struct option){ "size", required_argument, NULL, O_SIZE };
	if (flags & RDP_OPT_COUNT) {
		lo[n++] = (struct option){ "count", required_argument, NULL, O_COUNT };
		lo[n++] = (struct option){ "warmup", required_argument, NULL, O_WARMUP };
	}
	if (flags & RDP_OPT_SECONDS)
		lo[n++] = (struct option){ "seconds", required_argument, NULL, O_SECONDS };
	lo[n++] = (struct option){ "role", required_argument, NULL, O_ROLE };
	lo[n++] = (struct option){ "socket", required_argument, NULL, O_SOCKET };
	lo[n++] = (struct option){ "client-cpu", required_argument, NULL, O_CCPU };
	lo[n++] = (struct option){ "server-cpu", required_argument, NULL, O_SCPU };
	lo[n++] = (struct option){ "json", no_argument, NULL, O_JSON };
	lo[n++] = (struct option){ "forked", no_argument, NULL, O_FORKED };
	lo[n++] = (struct option){ "log-level", required_argument, NULL, O_LOG };
	lo[n++] = (struct option){ "help", no_argument, NULL, O_HELP };
	lo[n] = (struct option){ NULL, 0, NULL, 0 };

	uint64_t v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_SIZE:
			/* one line: bench/compare shows a tool's last line */
			if (raw_parse_u64(tool, "size", optarg, 1, RDP_MAX_SIZE, &v))
				return 2;
			o->raw.size = v;
			break;
		case O_COUNT:
			if (raw_parse_u64(tool, "count", optarg, 1, UINT64_MAX / 2, &o->raw.count))
				return 2;
			break;
		case O_WARMUP:
			if (raw_parse_u64(tool, "warmup", optarg, 0, UINT64_MAX / 2,
					  &o->raw.warmup))
				return 2;
			break;
		case O_SECONDS:
			if (raw_parse_u64(tool, "seconds", optarg, 1, 3600, &o->seconds))
				return 2;
			break;
		case O_ROLE:
			if (strcmp(optarg, "server") == 0) {
				o->raw.role = RAW_ROLE_SERVER;
			} else if (strcmp(optarg, "client") == 0) {
				o->raw.role = RAW_ROLE_CLIENT;
			} else if (strcmp(optarg, "both") == 0) {
				o->raw.role = RAW_ROLE_BOTH;
			} else {
				fprintf(stderr,
					"%s: --role '%s': expected server, client or both\n", tool,
					optarg);
				return 2;
			}
			break;
		case O_SOCKET:
			/* the path goes into the --vdev string, where ',' and '='
			 * separate the device arguments */
			if (strlen(optarg) == 0 || strlen(optarg) > RDP_SOCK_MAX ||
			    strpbrk(optarg, ",= ")) {
				fprintf(stderr, "%s: --socket '%s': expected a path of 1..%d bytes "
						"without ',', '=' or spaces\n",
					tool, optarg, RDP_SOCK_MAX);
				return 2;
			}
			strcpy(o->socket, optarg);
			break;
		case O_CCPU:
			if (raw_parse_cpu(tool, "client-cpu", optarg, &o->raw.client_cpu))
				return 2;
			break;
		case O_SCPU:
			if (raw_parse_cpu(tool, "server-cpu", optarg, &o->raw.server_cpu))
				return 2;
			break;
		case O_JSON:
			o->raw.json = 1;
			break;
		case O_FORKED:
			o->forked = 1;
			break;
		case O_LOG:
			/* handed to the EAL as --log-level=VALUE, which checks it */
			if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(o->log_level) ||
			    strpbrk(optarg, " ")) {
				fprintf(stderr, "%s: --log-level '%s': expected an EAL log level, "
						"e.g. info or pmd.net.memif:debug\n",
					tool, optarg);
				return 2;
			}
			strcpy(o->log_level, optarg);
			break;
		case O_HELP:
			fputs(usage, stdout);
			return 1;
		default:
			if (optopt)
				fprintf(stderr, "%s: option '%s' needs a value or takes none\n",
					tool, argv[optind - 1]);
			else
				fprintf(stderr, "%s: unknown option '%s'\n", tool,
					argv[optind - 1]);
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", tool, argv[optind]);
		fputs(usage, stderr);
		return 2;
	}
	if (o->raw.role != RAW_ROLE_BOTH && o->socket[0] == '\0') {
		fprintf(stderr, "%s: --role %s needs --socket PATH (the same on both halves)\n",
			tool, o->raw.role == RAW_ROLE_SERVER ? "server" : "client");
		return 2;
	}
	if (o->raw.client_cpu >= ncpu || o->raw.server_cpu >= ncpu) {
		fprintf(stderr, "%s: cpu out of range: this machine has %ld online CPUs\n", tool,
			ncpu);
		return 2;
	}
	return 0;
}

/* ---- EAL and port ------------------------------------------------------------ */

static long hugepages_free(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long n = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

static void hugepage_hint(const char *tool)
{
	long n = hugepages_free();
	if (n == 0)
		fprintf(stderr, "%s: no free hugepages (HugePages_Free is 0 in /proc/meminfo): "
				"reserve some, e.g. echo 1024 > /proc/sys/vm/nr_hugepages\n",
			tool);
	else if (n > 0)
		fprintf(stderr, "%s: (HugePages_Free is %ld; see the EAL's messages above)\n",
			tool, n);
}

static int eal_start(struct rdp_ctx *c)
{
	const struct rdp_opts *o = c->o;
	const char *tool = o->raw.tool;
	int cpu = c->is_server ? o->raw.server_cpu : o->raw.client_cpu;
	char prefix[64], lcores[64], vdev[256], log[80];
	/* per process: with --in-memory nothing is shared anyway, but a
	 * prefix of its own keeps the two halves apart in any EAL path */
	snprintf(prefix, sizeof(prefix), "--file-prefix=%s-%c%d", tool, c->is_server ? 's' : 'c',
		 (int)getpid());
	if (cpu >= 0) /* lcore id = cpu, and EAL pins the main thread to it */
		snprintf(lcores, sizeof(lcores), "-l%d", cpu);
	else /* unpinned: lcore 0 may float over every online CPU */
		snprintf(lcores, sizeof(lcores), "--lcores=0@(0-%ld)",
			 sysconf(_SC_NPROCESSORS_ONLN) - 1);
	/* socket-abstract=no: 22.11 defaults to the abstract namespace; a file
	 * under /tmp is what the user named, visible and removable */
	snprintf(vdev, sizeof(vdev), "--vdev=%s,role=%s,socket=%s,socket-abstract=no,mac=%s",
		 PORT_NAME, c->is_server ? "server" : "client", o->socket,
		 c->is_server ? server_mac : client_mac);
	/* EAL chatters at info level and tells, at notice level, that there
	 * is no hugetlbfs mount (--in-memory does not need one); memif warns
	 * that --in-memory has no multi-process channel (it needs none for a
	 * primary). By default only what may be wrong shows. */
	char *log1 = "--log-level=warning", *log2 = "--log-level=pmd.net.memif:error";
	if (o->log_level[0]) {
		snprintf(log, sizeof(log), "--log-level=%s", o->log_level);
		log1 = log;
		log2 = NULL;
	}
	char *argv[] = {
		(char *)tool, "--no-pci", "--in-memory", "--no-telemetry", prefix, lcores, vdev,
		log1, log2, NULL,
	};
	int argc = log2 ? 9 : 8;
	/* straight to stderr: stdout carries the result (one JSON line with
	 * --json), and the default stream also copies everything to syslog */
	rte_openlog_stream(stderr);
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "%s: %s: rte_eal_init failed: %s\n", tool,
			c->is_server ? "server" : "client", rte_strerror(rte_errno));
		hugepage_hint(tool);
		return -1;
	}
	/* --in-memory: the EAL's runtime directory stays empty and would be
	 * left behind, one per run */
	(void)rmdir(rte_eal_get_runtime_dir());
	c->hz = rte_get_tsc_hz();
	return 0;
}

/* Client: memif's dev_start connects to the server's socket and fails when
 * nobody listens yet, so it is retried until the socket appears. */
static int port_start(struct rdp_ctx *c, uint64_t deadline_ns)
{
	const char *tool = c->o->raw.tool;
	for (;;) {
		struct stat st;
		/* try only once the file exists: a failed connect logs an error */
		if (c->is_server || (stat(c->o->socket, &st) == 0 && S_ISSOCK(st.st_mode))) {
			int rc = rte_eth_dev_start(c->port);
			if (rc == 0)
				return 0;
			if (c->is_server) {
				fprintf(stderr, "%s: server: start %s: %s\n", tool, PORT_NAME,
					rte_strerror(-rc));
				return -1;
			}
		}
		if (rdp_stop || !rdp_peer_ok(c))
			return -1;
		if (now_ns() > deadline_ns) {
			fprintf(stderr, "%s: client: no memif server on %s within %d s\n", tool,
				c->o->socket, LINK_WAIT_S);
			return -1;
		}
		usleep(2000);
	}
}

int rdp_link_up(const struct rdp_ctx *c)
{
	struct rte_eth_link l;
	return rte_eth_link_get_nowait(c->port, &l) == 0 && l.link_status == RTE_ETH_LINK_UP;
}

int rdp_wait_link_down(const struct rdp_ctx *c, unsigned ms)
{
	for (unsigned i = 0; i < ms && !rdp_stop; i++) {
		if (!rdp_link_up(c))
			return 1;
		usleep(1000);
	}
	return !rdp_link_up(c);
}

static int port_open(struct rdp_ctx *c)
{
	const char *tool = c->o->raw.tool;
	const char *side = c->is_server ? "server" : "client";
	/* a device that fails to probe does not fail rte_eal_init */
	if (rte_eth_dev_get_port_by_name(PORT_NAME, &c->port) != 0) {
		fprintf(stderr, "%s: %s: no %s port: the memif device did not probe (see the "
				"EAL messages above; is librte_net_memif installed?)\n",
			tool, side, PORT_NAME);
		return -1;
	}
	c->have_port = 1;
	crash.port = c->port;
	crash.have_port = 1;
	c->pool = rte_pktmbuf_pool_create("rdp_pool", NB_MBUFS, MBUF_CACHE, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!c->pool) {
		fprintf(stderr, "%s: %s: mbuf pool of %d mbufs: %s\n", tool, side, NB_MBUFS,
			rte_strerror(rte_errno));
		hugepage_hint(tool);
		return -1;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	int sock = rte_eth_dev_socket_id(c->port);
	int rc = rte_eth_dev_configure(c->port, 1, 1, &conf);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(c->port, 0, NB_DESC, (unsigned)sock, NULL, c->pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(c->port, 0, NB_DESC, (unsigned)sock, NULL);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: configure %s: %s\n", tool, side, PORT_NAME,
			rte_strerror(-rc));
		return -1;
	}
	int wait_s = c->is_server && !c->o->forked ? LINK_WAIT_ALONE_S : LINK_WAIT_S;
	uint64_t deadline = now_ns() + (uint64_t)wait_s * 1000000000ull;
	if (c->is_server && !c->o->forked && !c->o->raw.json)
		fprintf(stderr, "%s: server on memif socket %s, waiting %d s for a client\n",
			tool, c->o->socket, wait_s);
	for (;;) {
		if (port_start(c, deadline))
			return -1;
		/* the handshake runs on EAL's interrupt thread; the link comes
		 * up when it is done, on the client after the server */
		uint64_t retry = now_ns() + CONNECT_RETRY_NS;
		while (!rdp_link_up(c)) {
			if (rdp_stop || !rdp_peer_ok(c))
				return -1;
			uint64_t t = now_ns();
			if (t > deadline) {
				fprintf(stderr, "%s: %s: memif link on %s not up within %d s\n",
					tool, side, c->o->socket, wait_s);
				return -1;
			}
			if (!c->is_server && t > retry)
				break;
			usleep(1000);
		}
		if (rdp_link_up(c))
			return 0;
		/* memif quirk: the server's socket accepts from EAL start-up on,
		 * but until its port is started it answers "ID not found" and
		 * drops the client, which never retries by itself */
		(void)rte_eth_dev_stop(c->port);
	}
}

static void port_close(struct rdp_ctx *c)
{
	if (!c->have_port)
		return;
	/* memif quirk: a peer's disconnect is handled on EAL's interrupt
	 * thread, which marks the link down first and frees the regions last,
	 * unlocked; a stop racing it frees them twice ("EAL: Error: Invalid
	 * memory"). Once the link is down, give that thread time to finish. */
	if (!rdp_link_up(c))
		usleep(DISCONNECT_SETTLE_US);
	/* memif's stop sends the peer a disconnect; the server's close also
	 * removes its socket file */
	(void)rte_eth_dev_stop(c->port);
	(void)rte_eth_dev_close(c->port);
	rte_mempool_free(c->pool);
	c->pool = NULL;
	c->have_port = 0;
	crash.have_port = 0;
}

/* ---- frames -------------------------------------------------------------- */

/* Ethernet/IPv4/UDP header client -> server for a payload of len bytes,
 * into hdr (RDP_HDR_LEN bytes). UDP checksum 0 (none), as IPv4 allows. */
static void build_header(uint8_t *hdr, size_t len)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)hdr;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	rte_ether_addr_copy(&server_ea, &eth->dst_addr);
	rte_ether_addr_copy(&client_ea, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + sizeof(*udp) + len));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 1));
	ip->dst_addr = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 2));
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16(7001);
	udp->dst_port = rte_cpu_to_be_16(7000);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + len));
	udp->dgram_cksum = 0;
}

uint16_t rdp_tx_all(struct rdp_ctx *c, struct rte_mbuf **m, uint16_t n)
{
	uint16_t sent = rte_eth_tx_burst(c->port, 0, m, n);
	if (likely(sent == n))
		return n;
	uint64_t t0 = rte_rdtsc(), limit = TX_STALL_NS / 1000000000ull * c->hz;
	while (sent < n && !rdp_stop) {
		sent += rte_eth_tx_burst(c->port, 0, m + sent, n - sent);
		if (rte_rdtsc() - t0 > limit) {
			fprintf(stderr, "%s: %s: transmit ring full for 2 s (peer not polling)\n",
				c->o->raw.tool, c->is_server ? "server" : "client");
			break;
		}
	}
	if (sent < n)
		rte_pktmbuf_free_bulk(m + sent, n - sent);
	return sent;
}

void rdp_send_stop(struct rdp_ctx *c)
{
	/* one accepted frame is enough: memif never drops what tx_burst took.
	 * Only one, because the server closes as soon as it reads it, and a
	 * memif peer's disconnect unmaps the rings under any burst still
	 * running on this side (memif does not synchronise the two). */
	struct rte_mbuf *m = rdp_frame_new(c->pool, c->stop, RDP_HDR_LEN);
	if (m)
		(void)rdp_tx_all(c, &m, 1);
}

/* ---- the two halves ------------------------------------------------------- */

int rdp_peer_ok(struct rdp_ctx *c)
{
	const char *tool = c->o->raw.tool;
	if (c->child > 0) {
		int st;
		if (waitpid(c->child, &st, WNOHANG) == c->child) {
			c->child = -1; /* reaped: rdp_main must not wait for it again */
			crash.child = 0;
			if (WIFEXITED(st))
				fprintf(stderr, "%s: the server half exited (status %d)\n", tool,
					WEXITSTATUS(st));
			else
				fprintf(stderr, "%s: the server half was killed by signal %d\n",
					tool, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
			return 0;
		}
	}
	return 1;
}

double rdp_tsc_overhead_ns(const struct rdp_ctx *c)
{
	uint64_t t0 = rte_rdtsc();
	for (int i = 0; i < 1000000; i++)
		(void)rte_rdtsc();
	return (double)rdp_ticks_to_ns(c, rte_rdtsc() - t0) / 1e6;
}

/* Wait up to ms for the forked server; kill it after that. Its exit code,
 * or 1 when it was killed. */
static int reap(const char *tool, pid_t pid, int ms)
{
	int st = 0;
	for (int i = 0;; i++) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
		if (i >= ms) {
			if (ms > 0)
				fprintf(stderr, "%s: the server half did not exit: killed\n", tool);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return 1;
		}
		usleep(1000);
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	fprintf(stderr, "%s: the server half was killed by signal %d\n", tool,
		WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return 1;
}

/* One half in this process: EAL, port, the runner, and the teardown. */
static int run_side(struct rdp_ctx *c, rdp_side_fn fn)
{
	int rc = 1;
	int eal = eal_start(c) == 0;
	if (eal && port_open(c) == 0) {
		build_header(c->frame, c->o->raw.size);
		memset(c->frame + RDP_HDR_LEN, 0, c->o->raw.size);
		build_header(c->stop, 0);
		rc = fn(c);
	}
	if (rdp_stop) {
		fprintf(stderr, "%s: %s: interrupted\n", c->o->raw.tool,
			c->is_server ? "server" : "client");
		rc = 1;
	}
	if (rc != 0 && c->child > 0) {
		/* the forked server may still be polling: kill it before this
		 * side closes the link under it, then let the disconnect land */
		(void)reap(c->o->raw.tool, c->child, 0);
		c->child = -1;
		crash.child = 0;
		if (c->have_port)
			(void)rdp_wait_link_down(c, 1000);
	}
	if (eal) {
		port_close(c);
		(void)rte_eal_cleanup();
	}
	return rc;
}

/* Child side of the fork: become the server half with the same settings. */
static void exec_server(const struct rdp_opts *o, pid_t parent)
{
	/* ends with the client (PDEATHSIG survives execve); SIGTERM, not
	 * SIGKILL, so that it still closes its port and memif removes the
	 * socket file when the client was killed */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	char size[32], count[32], warmup[32], secs[32], ccpu[16], scpu[16];
	snprintf(size, sizeof(size), "%zu", o->raw.size);
	snprintf(count, sizeof(count), "%" PRIu64, o->raw.count);
	snprintf(warmup, sizeof(warmup), "%" PRIu64, o->raw.warmup);
	snprintf(secs, sizeof(secs), "%" PRIu64, o->seconds);
	snprintf(ccpu, sizeof(ccpu), "%d", o->raw.client_cpu);
	snprintf(scpu, sizeof(scpu), "%d", o->raw.server_cpu);
	char *argv[24];
	int n = 0;
	argv[n++] = (char *)o->raw.tool;
	argv[n++] = "--role";
	argv[n++] = "server";
	argv[n++] = "--forked";
	argv[n++] = "--socket";
	argv[n++] = (char *)o->socket;
	argv[n++] = "--size";
	argv[n++] = size;
	if (o->flags & RDP_OPT_COUNT) {
		argv[n++] = "--count";
		argv[n++] = count;
		argv[n++] = "--warmup";
		argv[n++] = warmup;
	}
	if (o->flags & RDP_OPT_SECONDS) {
		argv[n++] = "--seconds";
		argv[n++] = secs;
	}
	argv[n++] = "--client-cpu";
	argv[n++] = ccpu;
	argv[n++] = "--server-cpu";
	argv[n++] = scpu;
	if (o->log_level[0]) {
		argv[n++] = "--log-level";
		argv[n++] = (char *)o->log_level;
	}
	argv[n] = NULL;
	execv("/proc/self/exe", argv);
	fprintf(stderr, "%s: exec /proc/self/exe for the server half: %s\n", o->raw.tool,
		strerror(errno));
	_exit(127);
}

/* memif wants an absolute path with a directory it may read and write (else it
 * says only "Invalid socket directory"); a server must not find the file
 * already there, because memif binds without unlinking first. 0 or -1
 * after a message. */
static int check_socket(const struct rdp_opts *o, int fresh)
{
	char dir[RDP_SOCK_MAX + 1];
	struct stat st;
	strcpy(dir, o->socket);
	char *slash = strrchr(dir, '/');
	if (dir[0] != '/' || slash == dir) { /* memif resolves no relative path */
		fprintf(stderr, "%s: --socket %s: expected an absolute /DIR/NAME, e.g. "
				"/tmp/rdp.sock\n",
			o->raw.tool, o->socket);
		return -1;
	}
	*slash = '\0';
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, R_OK | W_OK) != 0) {
		fprintf(stderr, "%s: --socket %s: %s is not a directory this process may write\n",
			o->raw.tool, o->socket, dir);
		return -1;
	}
	if (fresh && lstat(o->socket, &st) == 0) {
		fprintf(stderr, "%s: %s exists (left by a killed server?): remove it or choose "
				"another --socket\n",
			o->raw.tool, o->socket);
		return -1;
	}
	return 0;
}

int rdp_main(struct rdp_opts *o, rdp_side_fn server, rdp_side_fn client)
{
	catch_signals(o);
	struct rdp_ctx c;
	memset(&c, 0, sizeof(c));
	c.o = o;
	if (o->raw.role == RAW_ROLE_SERVER) {
		c.is_server = 1;
		if (!o->forked && check_socket(o, 1))
			return 1;
		crash.socket = o->socket;
		return run_side(&c, server);
	}
	if (o->raw.role == RAW_ROLE_CLIENT)
		return check_socket(o, 0) ? 1 : run_side(&c, client);

	if (o->socket[0] == '\0')
		snprintf(o->socket, sizeof(o->socket), "/tmp/%s-%d.sock", o->raw.tool,
			 (int)getpid());
	if (check_socket(o, 1))
		return 1;
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", o->raw.tool, strerror(errno));
		return 1;
	}
	if (pid == 0)
		exec_server(o, parent);
	c.child = pid;
	crash.child = pid;
	crash.socket = o->socket;
	int rc = run_side(&c, client);
	if (c.child > 0) { /* success: the stop frame ends the server */
		int src = reap(o->raw.tool, c.child, 3000);
		crash.child = 0;
		if (src != 0) {
			fprintf(stderr, "%s: the server half failed (exit %d)\n", o->raw.tool, src);
			rc = 1;
		}
	}
	/* a killed server leaves its socket file behind */
	if (unlink(o->socket) == 0 && rc == 0)
		fprintf(stderr, "%s: note: removed %s left by the server half\n", o->raw.tool,
			o->socket);
	return rc;
}
