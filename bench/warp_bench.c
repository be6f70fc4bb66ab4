/* SPDX-License-Identifier: Apache-2.0 */
/*
 * warp-bench: latency and throughput between two warp engines.
 *
 * Default: a 64-byte ping-pong between two processes on 127.0.0.1 over
 * uring-udp. warp-bench starts the server half itself (fork), pins the
 * client to CPU 0 and the server to CPU 1, busy-polls both engines and
 * prints RTT percentiles. --role server|client runs one half, for two hosts.
 * --driver loop runs both engines in this process (one thread each).
 *
 * Protocol between the halves: stream 1 carries data (echoed in ping-pong,
 * counted in throughput mode); stream 2 (least urgent, so it never overtakes
 * queued data) carries "done" from the client and the server's result back.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_clock.h"
#include "warp/warp.h"

enum mode { PINGPONG, THROUGHPUT };
enum role { BOTH, SERVER, CLIENT };

struct opts {
	const char *driver;
	size_t size;
	uint64_t count;
	double duration;
	uint64_t warmup;
	uint32_t inflight;
	enum mode mode;
	enum role role;
	const char *listen;
	const char *peer;
	const char *uring_setup;
	int json;
	int mono;
	int no_gso; /* uring-udp: WARP_TRANSPORT_NO_UDP_GSO */
	int no_gro; /* uring-udp: WARP_TRANSPORT_NO_UDP_GRO */
	int one_thread; /* loop driver: both engines polled in turn by one thread */
	int guarantee;
	double loss; /* loop driver: injected loss rate on both directions */
	int cpu_client, cpu_server;
	const char *vdev;   /* dpdk: the port's vdev for --role (e.g. net_af_xdp0,iface=...) */
	const char *eal;    /* dpdk: more EAL arguments */
	const char *port;   /* dpdk: port name */
	const char *tls;    /* encryption required, certificates from this directory */
	const char *cipher; /* tls.ciphers */
};

static struct opts o = {
	.driver = "uring-udp",
	.size = 64,
	.count = 200000,
	.warmup = 20000,
	.inflight = 1,
	.mode = PINGPONG,
	.role = BOTH,
	.uring_setup = "defer",
	.guarantee = WARP_AT_LEAST_ONCE,
	.cpu_client = 0,
	.cpu_server = 1,
};
static struct bench_clock clk;

struct result { /* server -> client, stream 2 */
	uint64_t received, bytes, first_ns, last_ns;
};

struct half {
	warp_engine_t *e;
	warp_engine_t *also; /* --one-thread: the server's engine, polled after e */
	warp_stream_t *data, *ctl;
	int is_server;
	/* client */
	uint64_t sent, recvd, total, lost;
	uint64_t *t_send; /* by msg id & mask */
	uint64_t mask;
	uint64_t t_first, t_last, t_last_rx;
	/* the client engine's counters where measuring starts and ends: the
	 * packets and polls per measured message (reported after the table;
	 * warmup and the final result exchange are left out) */
	warp_stats_t st0, st1;
	uint64_t st_ns0, st_ns1;
	warp_hist_t *h;
	uint8_t *buf;
	int got_result;
	struct result res;
	/* server */
	struct result acc;
	int done;
	int err;
	uint64_t want;	   /* messages the client says it sent (its "done") */
	uint64_t asked_ns; /* when the first "done" came */
	int asked;	   /* a "done" waits for its answer */
};

static _Atomic int stop_all;
static pid_t server_pid; /* --role both: the forked server half */

static void die(const char *what, int rc)
{
	fprintf(stderr, "warp-bench: %s: %s%s%s\n", what, warp_strerror(rc),
		*warp_errdetail() ? ": " : "", warp_errdetail());
	exit(1);
}

static void pin(int cpu)
{
	if (cpu < 0 || sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static uint32_t uring_flags(void)
{
	uint32_t f = (o.no_gso ? WARP_TRANSPORT_NO_UDP_GSO : 0) |
		     (o.no_gro ? WARP_TRANSPORT_NO_UDP_GRO : 0);
	if (strcmp(o.uring_setup, "coop") == 0)
		return f | WARP_TRANSPORT_URING_COOP;
	if (strcmp(o.uring_setup, "sqpoll") == 0)
		return f | WARP_TRANSPORT_URING_SQPOLL;
	if (strcmp(o.uring_setup, "plain") == 0)
		return f | WARP_TRANSPORT_URING_PLAIN;
	return f;
}

static bool is_dpdk(void)
{
	return strcmp(o.driver, "dpdk") == 0;
}

/* The dpdk driver's config for one half. Both halves on one host (--role
 * both) talk over net_memif: the server half owns the socket. */
static warp_dpdk_config_t dpdk_cfg;
static char memif_sock[108];

static void *dpdk_arg(int server, int cpu)
{
	warp_dpdk_config_init(&dpdk_cfg);
	snprintf(dpdk_cfg.lcores, sizeof(dpdk_cfg.lcores), "%d", cpu < 0 ? 0 : cpu);
	if (o.role == BOTH) {
		snprintf(dpdk_cfg.vdevs[0], sizeof(dpdk_cfg.vdevs[0]),
			 "net_memif0,role=%s,socket=%s", server ? "server" : "client", memif_sock);
		dpdk_cfg.n_vdevs = 1;
		snprintf(dpdk_cfg.port, sizeof(dpdk_cfg.port), "net_memif0");
	} else if (o.vdev) {
		snprintf(dpdk_cfg.vdevs[0], sizeof(dpdk_cfg.vdevs[0]), "%s", o.vdev);
		dpdk_cfg.n_vdevs = 1;
		snprintf(dpdk_cfg.port, sizeof(dpdk_cfg.port), "%.*s", (int)strcspn(o.vdev, ","),
			 o.vdev);
	}
	if (o.port)
		snprintf(dpdk_cfg.port, sizeof(dpdk_cfg.port), "%s", o.port);
	if (o.eal)
		snprintf(dpdk_cfg.eal_extra, sizeof(dpdk_cfg.eal_extra), "%s", o.eal);
	return &dpdk_cfg;
}

static warp_engine_t *make_engine(const char *name, const char *listen, void *arg)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	cfg.idle.kind = WARP_IDLE_SPIN;
	if (o.size > cfg.max_payload_bytes) {
		cfg.max_payload_bytes = o.size;
		cfg.tx_arena_bytes = cfg.rx_arena_bytes = 4 * o.size;
	}
	if (o.tls) {
		/* DIR/<node>.pem and .key, DIR/ca.pem (tools/mkcerts DIR client server) */
		cfg.encryption = WARP_ENCRYPTION_REQUIRED;
		if (snprintf(cfg.tls.cert_file, sizeof(cfg.tls.cert_file), "%s/%s.pem", o.tls,
			     name) >= (int)sizeof(cfg.tls.cert_file) ||
		    snprintf(cfg.tls.key_file, sizeof(cfg.tls.key_file), "%s/%s.key", o.tls, name) >=
			    (int)sizeof(cfg.tls.key_file) ||
		    snprintf(cfg.tls.ca_file, sizeof(cfg.tls.ca_file), "%s/ca.pem", o.tls) >=
			    (int)sizeof(cfg.tls.ca_file)) {
			fprintf(stderr, "warp-bench: --tls: path too long\n");
			exit(2);
		}
		if (o.cipher)
			snprintf(cfg.tls.ciphers, sizeof(cfg.tls.ciphers), "%s", o.cipher);
	} else {
		cfg.encryption = WARP_ENCRYPTION_OFF;
	}
	int rc = warp_config_add_transport(&cfg, o.driver, listen, arg);
	if (rc)
		die("config", rc);
	cfg.transports[0].flags = uring_flags();
	warp_engine_t *e;
	rc = warp_engine_create(&cfg, &e);
	if (rc)
		die("engine", rc);
	return e;
}

static void link_peer(struct half *h, const char *peer_id)
{
	warp_peer_t *p;
	int rc = warp_peer_add(h->e, peer_id, &p);
	if (rc)
		die("peer", rc);
	warp_stream_opts_t data = { .priority = 100, .guarantee = o.guarantee };
	warp_stream_opts_t ctl = { .priority = 255, .guarantee = WARP_AT_LEAST_ONCE };
	if ((rc = warp_stream_open_ex(h->e, p, 1, &data, &h->data)) ||
	    (rc = warp_stream_open_ex(h->e, p, 2, &ctl, &h->ctl)))
		die("stream", rc);
}

static inline uint64_t now_ns(void)
{
	return bench_ticks_to_ns(&clk, bench_ticks(&clk));
}

/* One poll of this half (and, with --one-thread, of the other). */
static inline void poll_half(struct half *h)
{
	warp_engine_poll(h->e);
	if (h->also)
		warp_engine_poll(h->also);
}

/* Send, polling while the engine pushes back. */
static void send_retry(struct half *h, warp_stream_t *s, const void *buf, size_t len)
{
	int rc;
	while ((rc = warp_send(h->e, s, buf, len, NULL)) == WARP_EAGAIN)
		poll_half(h);
	if (rc)
		die("send", rc);
}

static void client_send(struct half *c)
{
	c->t_send[c->sent & c->mask] = bench_ticks(&clk);
	send_retry(c, c->data, c->buf, o.size);
	c->sent++;
}

static void snap(struct half *c, warp_stats_t *st, uint64_t *ns)
{
	warp_engine_stats(c->e, st);
	*ns = bench_mono_ns();
}

static void on_client(void *user, const warp_msg_t *m)
{
	struct half *c = user;
	uint64_t t = bench_ticks(&clk);
	if (m->status)
		return;
	if (m->stream_id == 2) {
		if (m->len == sizeof(c->res)) {
			memcpy(&c->res, m->data, sizeof(c->res));
			c->got_result = 1;
		}
		return;
	}
	if (o.mode != PINGPONG || m->msg_id >= c->sent)
		return;
	/* a reply to a message already counted lost and replaced: sending
	 * again for it would put one more message in flight for good */
	if (m->msg_id + o.inflight < c->sent)
		return;
	c->t_last_rx = t;
	if (c->recvd == o.warmup) {
		c->t_first = t;
		snap(c, &c->st0, &c->st_ns0);
	}
	if (c->recvd >= o.warmup)
		warp_hist_record(c->h, bench_ticks_to_ns(&clk, t - c->t_send[m->msg_id & c->mask]));
	c->recvd++;
	c->t_last = t;
	if (c->sent < c->total)
		client_send(c);
}

static void on_server(void *user, const warp_msg_t *m)
{
	struct half *s = user;
	if (m->status)
		return;
	if (m->stream_id == 2) {
		/* the client's "done": answered by run_server */
		if (m->len == sizeof(s->want))
			memcpy(&s->want, m->data, sizeof(s->want));
		if (!s->asked_ns)
			s->asked_ns = bench_mono_ns();
		s->asked = 1;
		return;
	}
	if (o.mode == PINGPONG) {
		send_retry(s, s->data, m->data, m->len);
		return;
	}
	uint64_t t = now_ns();
	if (!s->acc.received)
		s->acc.first_ns = t;
	s->acc.last_ns = t;
	s->acc.received++;
	s->acc.bytes += m->len;
}

/* ---- the server half ------------------------------------------------------ */

static void run_server(struct half *s)
{
	pin(o.cpu_server);
	warp_engine_set_recv(s->e, on_server, s);
	uint64_t done_at = 0;
	while (!atomic_load_explicit(&stop_all, memory_order_relaxed)) {
		warp_engine_poll(s->e);
		/* answer "done" once every message sent has arrived (one-way:
		 * late ones are not lost) or 2 s after the first ask */
		if (s->asked && (s->acc.received >= s->want ||
				 bench_mono_ns() - s->asked_ns > 2000000000ull)) {
			s->asked = 0;
			send_retry(s, s->ctl, &s->acc, sizeof(s->acc));
			s->done = 1;
		}
		if (s->done && !done_at)
			done_at = bench_mono_ns();
		/* linger so a repeated "done" (lost result) is answered too */
		if (done_at && bench_mono_ns() - done_at > 300000000ull)
			break;
	}
}

static void *server_thread(void *arg)
{
	run_server(arg);
	return NULL;
}

/* ---- the client half ------------------------------------------------------ */

static void run_client(struct half *c)
{
	pin(o.cpu_client);
	warp_engine_set_recv(c->e, on_client, c);
	uint64_t cap = 1;
	while (cap < o.inflight)
		cap <<= 1;
	c->mask = cap - 1;
	c->t_send = calloc(cap, sizeof(uint64_t));
	c->buf = calloc(1, o.size ? o.size : 1);
	if (warp_hist_create(&c->h) || !c->t_send || !c->buf)
		die("memory", WARP_ENOMEM);
	c->total = o.duration > 0 ? UINT64_MAX : o.warmup + o.count;
	uint64_t start = bench_mono_ns();
	uint64_t deadline = o.duration > 0 ? start + (uint64_t)(o.duration * 1e9) : UINT64_MAX;

	/* Start when the engine is healthy: a DPDK port's link comes up (memif
	 * connects) a moment after the engine starts, and messages sent before
	 * would be lost (at-most-once) or wait for a timeout. */
	warp_health_t hl;
	uint64_t t_up = bench_mono_ns();
	while (warp_engine_health(c->e, &hl) == 0 && hl.state != WARP_HEALTH_UP &&
	       bench_mono_ns() - t_up < 10000000000ull)
		poll_half(c);
	if (o.mode == PINGPONG) {
		for (uint32_t i = 0; i < o.inflight && c->sent < c->total; i++)
			client_send(c);
		/* progress is timed with the engine's clock (the TSC, read once
		 * per poll): clock_gettime per round trip costs a system call
		 * where the vDSO falls back, and shows in the tail */
		uint64_t last_progress = warp_engine_now(c->e), seen = 0, spins = 0;
		uint64_t edeadline = o.duration > 0 ? last_progress + (deadline - warp_engine_now(c->e))
						    : UINT64_MAX;
		while (c->recvd < c->total) {
			poll_half(c);
			if (c->recvd == seen && (++spins & 1023) != 0)
				continue; /* read the clock rarely while waiting */
			if (c->recvd != seen) {
				seen = c->recvd;
				last_progress = warp_engine_now(c->e);
				if (o.duration > 0 && last_progress > edeadline &&
				    c->recvd > o.warmup) {
					c->total = c->recvd; /* stop */
					break;
				}
			} else if (server_pid > 0 && warp_engine_now(c->e) - last_progress > 1000000000ull &&
				   waitpid(server_pid, &(int){ 0 }, WNOHANG) == server_pid) {
				fprintf(stderr, "warp-bench: the server half exited; no replies\n");
				exit(1);
			} else if (warp_engine_now(c->e) - last_progress >
				   (o.guarantee == WARP_AT_MOST_ONCE ? 20000000ull : 5000000000ull)) {
				/* no reply in 20 ms at-most-once (5 s otherwise, where
				 * the engine resends until max_retries): lost; count it
				 * and send another */
				c->lost++;
				client_send(c);
				last_progress = warp_engine_now(c->e);
			}
		}
	} else {
		c->t_first = bench_ticks(&clk);
		snap(c, &c->st0, &c->st_ns0);
		while (c->sent < c->total &&
		       ((c->sent & 255) != 0 || bench_mono_ns() < deadline)) {
			send_retry(c, c->data, c->buf, o.size);
			c->sent++;
			/* poll once per batch: the engine coalesces the batch into
			 * full packets and hands them to the driver in one burst */
			if ((c->sent & 255) == 0)
				poll_half(c);
		}
		c->t_last = bench_ticks(&clk);
	}
	snap(c, &c->st1, &c->st_ns1);
	/* ask for the server's result, saying how many were sent (the server
	 * answers once it has them all, or 2 s after the first ask); repeat
	 * if the ask or the answer is lost */
	uint8_t ask[8];
	uint64_t want = o.mode == PINGPONG ? 0 : c->sent; /* the server counts one-way only */
	memcpy(ask, &want, sizeof(ask));
	for (int tries = 0; tries < 50 && !c->got_result; tries++) {
		send_retry(c, c->ctl, ask, sizeof(ask));
		uint64_t t0 = bench_mono_ns();
		while (!c->got_result && bench_mono_ns() - t0 < 100000000ull)
			poll_half(c);
	}
	atomic_store(&stop_all, 1);
}

/* What run_client allocated. */
static void client_free(struct half *c)
{
	warp_hist_destroy(c->h);
	free(c->t_send);
	free(c->buf);
	c->h = NULL;
	c->t_send = NULL;
	c->buf = NULL;
}

/* The client engine per measured message, from the snapshots. */
struct engine_counts {
	double tx, rx, polls, ns_per_poll;
};

static bool engine_counts(const struct half *c, struct engine_counts *ec)
{
	double msgs = (double)(c->st1.msgs_sent - c->st0.msgs_sent);
	uint64_t polls = c->st1.polls - c->st0.polls;
	if (msgs <= 0 || !polls)
		return false;
	ec->tx = (double)(c->st1.tx_packets - c->st0.tx_packets) / msgs;
	ec->rx = (double)(c->st1.rx_packets - c->st0.rx_packets) / msgs;
	ec->polls = (double)polls / msgs;
	ec->ns_per_poll = (double)(c->st_ns1 - c->st_ns0) / (double)polls;
	return true;
}

static void report(struct half *c)
{
	const double pct[] = { 50, 90, 99, 99.9, 99.99 };
	uint64_t v[5] = { 0 };
	for (int i = 0; i < 5; i++)
		v[i] = warp_hist_percentile(c->h, pct[i]);
	uint64_t mx = warp_hist_max(c->h);
	double secs = (double)bench_ticks_to_ns(&clk, c->t_last - c->t_first) / 1e9;
	uint64_t measured = o.mode == PINGPONG ? warp_hist_count(c->h) : c->sent;
	double rate = secs > 0 ? (double)measured / secs : 0;
	double srv_secs = (double)(c->res.last_ns - c->res.first_ns) / 1e9;
	double rx_rate = srv_secs > 0 ? (double)c->res.received / srv_secs : 0;
	double gbit = srv_secs > 0 ? (double)c->res.bytes * 8 / srv_secs / 1e9 : 0;
	struct engine_counts ec;
	bool have_ec = engine_counts(c, &ec);
	uint64_t lost = o.mode == PINGPONG ? c->lost
					   : (c->got_result ? c->sent - c->res.received : 0);
	if (o.json) {
		printf("{\"tool\":\"warp-bench\",\"mode\":\"%s\",\"driver\":\"%s\",\"size\":%zu,"
		       "\"inflight\":%u,\"count\":%llu,\"warmup\":%llu,",
		       o.mode == PINGPONG ? "ping-pong" : "throughput", o.driver, o.size,
		       o.inflight, (unsigned long long)measured, (unsigned long long)o.warmup);
		if (o.mode == PINGPONG)
			printf("\"rtt_ns\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p99.9\":%llu,"
			       "\"p99.99\":%llu,\"max\":%llu,\"mean\":%.1f},\"round_trips_per_s\":%.0f,",
			       (unsigned long long)v[0], (unsigned long long)v[1],
			       (unsigned long long)v[2], (unsigned long long)v[3],
			       (unsigned long long)v[4], (unsigned long long)mx, warp_hist_mean(c->h),
			       rate);
		else
			printf("\"sent_msgs_per_s\":%.0f,\"msgs_per_s\":%.0f,\"gbit_per_s\":%.3f,",
			       rate, rx_rate, gbit);
		printf("\"encryption\":\"%s\",", o.tls ? (o.cipher ? o.cipher : "aes-128-gcm") : "none");
		if (have_ec)
			printf("\"client_engine\":{\"tx_packets_per_msg\":%.3f,"
			       "\"rx_packets_per_msg\":%.3f,\"polls_per_msg\":%.4g,"
			       "\"ns_between_polls\":%.1f},",
			       ec.tx, ec.rx, ec.polls, ec.ns_per_poll);
		printf("\"lost\":%llu,\"clock\":\"%s\",\"clock_overhead_ns\":%.1f,\"cpus\":[%d,%d],"
		       "\"idle\":\"spin\",\"uring_setup\":\"%s\",\"udp_gso\":%s,\"udp_gro\":%s,"
		       "\"guarantee\":%d,"
		       "\"injected_loss\":%.3f}\n",
		       (unsigned long long)lost, clk.tsc ? "tsc" : "monotonic", clk.overhead_ns,
		       o.cpu_client, o.cpu_server, o.uring_setup, o.no_gso ? "false" : "true",
		       o.no_gro ? "false" : "true", o.guarantee, o.loss);
		return;
	}
	if (o.mode == PINGPONG) {
		printf("warp-bench: ping-pong over %s, %zu-byte messages, %u in flight\n", o.driver,
		       o.size, o.inflight);
		printf("round trips %llu (after %llu warm-up), %.0f round trips/s, lost %llu\n",
		       (unsigned long long)measured, (unsigned long long)o.warmup, rate,
		       (unsigned long long)lost);
		printf("\n%-10s %10s %10s %10s %10s %10s %10s\n", "RTT (ns)", "p50", "p90", "p99",
		       "p99.9", "p99.99", "max");
		printf("%-10s %10llu %10llu %10llu %10llu %10llu %10llu\n", "",
		       (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2],
		       (unsigned long long)v[3], (unsigned long long)v[4], (unsigned long long)mx);
	} else {
		printf("warp-bench: one-way throughput over %s, %zu-byte messages\n", o.driver,
		       o.size);
		printf("sent %llu messages in %.3f s (%.0f msgs/s)\n", (unsigned long long)c->sent,
		       secs, rate);
		printf("received %llu: %.0f msgs/s, %.3f Gbit/s of payload, lost %llu\n",
		       (unsigned long long)c->res.received, rx_rate, gbit, (unsigned long long)lost);
	}
	printf("\nsettings: %s, mtu %u, idle spin (busy-poll), client cpu %d, server cpu %d, "
	       "uring setup %s%s, guarantee %s, encryption %s\n",
	       o.role != BOTH			     ? "one half of two hosts"
	       : is_dpdk()			     ? "two processes over net_memif"
	       : strcmp(o.driver, "loop") != 0 ? "two processes on 127.0.0.1"
	       : o.one_thread			     ? "one process, both engines on one thread"
					       : "one process",
	       WARP_DEFAULT_MTU, o.cpu_client, o.cpu_server, o.uring_setup,
	       o.no_gso && o.no_gro ? ", no udp gso or gro"
	       : o.no_gso	      ? ", no udp gso"
	       : o.no_gro	      ? ", no udp gro"
				      : "",
	       o.guarantee == WARP_AT_MOST_ONCE ? "at-most-once"
	       : o.guarantee == WARP_EXACTLY_ONCE ? "exactly-once" : "at-least-once",
	       o.tls ? (o.cipher ? o.cipher : "aes-128-gcm") : "off");
	printf("clock: %s, %.1f ns per reading (two readings per measured message)\n", clk.name,
	       clk.overhead_ns);
	if (have_ec)
		printf("client engine, per message sent: %.2f packets sent, %.2f received, "
		       "%.3g polls (one every %.0f ns)\n",
		       ec.tx, ec.rx, ec.polls, ec.ns_per_poll);
}

/* ---- process plumbing ------------------------------------------------------ */

static void local_addr(warp_engine_t *e, char *buf, size_t cap)
{
	int rc = warp_engine_local_addr(e, 0, buf, cap);
	if (rc)
		die("local address", rc);
}

static int run_both_processes(void)
{
	int to_parent[2], to_child[2];
	if (pipe(to_parent) || pipe(to_child)) {
		perror("warp-bench: pipe");
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("warp-bench: fork");
		return 1;
	}
	char addr[160], id[256];
	/* each side keeps only its own ends, so a half that dies is seen as
	 * end of file instead of a read that waits for ever */
	if (pid == 0) {
		close(to_parent[0]);
		close(to_child[1]);
	} else {
		close(to_parent[1]);
		close(to_child[0]);
	}
	if (pid == 0) { /* server */
		struct half s = { .is_server = 1 };
		s.e = is_dpdk() ? make_engine("server", "10.99.0.1:7000", dpdk_arg(1, o.cpu_server))
				: make_engine("server", "127.0.0.1:0", NULL);
		local_addr(s.e, addr, sizeof(addr));
		if (write(to_parent[1], addr, sizeof(addr)) != (ssize_t)sizeof(addr) ||
		    read(to_child[0], addr, sizeof(addr)) != (ssize_t)sizeof(addr))
			_exit(1);
		snprintf(id, sizeof(id), "client@%s", addr);
		link_peer(&s, id);
		run_server(&s);
		warp_engine_destroy(s.e);
		_exit(0);
	}
	server_pid = pid;
	/* The server's engine first: a setting that both halves would refuse
	 * (a driver that is not built in, say) is then reported once, by the
	 * server, and the client exits with its status. */
	char saddr[160];
	if (read(to_parent[0], saddr, sizeof(saddr)) != (ssize_t)sizeof(saddr)) {
		int st = 0;
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st))
			return WEXITSTATUS(st); /* it said why */
		fprintf(stderr, "warp-bench: the server half did not start\n");
		return 1;
	}
	struct half c = { 0 };
	c.e = is_dpdk() ? make_engine("client", "10.99.0.2:7000", dpdk_arg(0, o.cpu_client))
			: make_engine("client", "127.0.0.1:0", NULL);
	local_addr(c.e, addr, sizeof(addr));
	if (write(to_child[1], addr, sizeof(addr)) != (ssize_t)sizeof(addr))
		return 1;
	snprintf(id, sizeof(id), "server@%s", saddr);
	link_peer(&c, id);
	run_client(&c);
	int st;
	waitpid(pid, &st, 0);
	report(&c);
	client_free(&c);
	warp_engine_destroy(c.e);
	return c.got_result ? 0 : 1;
}

static int run_in_process(void)
{
	warp_loop_net_t *net;
	if (warp_loop_net_create(1, 0, &net))
		return 1;
	if (o.loss > 0) {
		warp_loop_fault_t f = { .loss = o.loss };
		warp_loop_set_fault(net, NULL, NULL, &f);
	}
	struct half c = { 0 }, s = { .is_server = 1 };
	c.e = make_engine("client", "client:1", net);
	s.e = make_engine("server", "server:1", net);
	link_peer(&c, "server@server:1");
	link_peer(&s, "client@client:1");
	if (o.one_thread) {
		/* the client's thread polls both engines in turn: a round trip
		 * takes what both engines spend on it, with no driver or other
		 * core in between (the engine's CPU cost per message) */
		c.also = s.e;
		warp_engine_set_recv(s.e, on_server, &s);
		run_client(&c);
	} else {
		pthread_t th;
		pthread_create(&th, NULL, server_thread, &s);
		run_client(&c);
		pthread_join(th, NULL);
	}
	report(&c);
	client_free(&c);
	warp_engine_destroy(c.e);
	warp_engine_destroy(s.e);
	warp_loop_net_destroy(net);
	return 0;
}

static int run_one_half(void)
{
	if (!o.listen || !o.peer) {
		fprintf(stderr, "warp-bench: --role %s needs --listen ADDR and --peer NODE@ADDR\n",
			o.role == SERVER ? "server" : "client");
		return 2;
	}
	struct half h = { .is_server = o.role == SERVER };
	h.e = make_engine(o.role == SERVER ? "server" : "client", o.listen,
			  is_dpdk() ? dpdk_arg(o.role == SERVER, o.role == SERVER ? o.cpu_server
										 : o.cpu_client)
				    : NULL);
	link_peer(&h, o.peer);
	if (o.role == SERVER) {
		char addr[160];
		local_addr(h.e, addr, sizeof(addr));
		fprintf(stderr, "warp-bench: server listening on %s (%s)\n", addr, o.driver);
		run_server(&h);
		if (o.mode == THROUGHPUT) {
			double s = (double)(h.acc.last_ns - h.acc.first_ns) / 1e9;
			printf("server: received %llu messages, %.0f msgs/s\n",
			       (unsigned long long)h.acc.received, s > 0 ? h.acc.received / s : 0);
		}
	} else {
		run_client(&h);
		report(&h);
		client_free(&h);
	}
	warp_engine_destroy(h.e);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: warp-bench [options]\n"
		"  --driver D        uring-udp (default), uring-tcp, dpdk (two processes over\n"
		"                    net_memif), loop (both halves in this process)\n"
		"  --vdev V          dpdk with --role: the port as a vdev (net_af_xdp0,iface=eth1)\n"
		"  --port NAME       dpdk with --role: the port's name (a PCI address)\n"
		"  --eal ARGS        dpdk: more EAL arguments (e.g. \"-a 0000:03:00.0\")\n"
		"  --size BYTES      message size (default 64, up to max_payload_bytes)\n"
		"  --count N         measured messages (default 200000)\n"
		"  --duration SECS   measure for a time instead of a count\n"
		"  --warmup N        ping-pong round trips before measuring (default 20000)\n"
		"  --inflight N      messages in flight (1 = ping-pong, more = pipelined)\n"
		"  --throughput      one-way throughput: messages/s and Gbit/s at the receiver\n"
		"  --role R          both (default: forks the server), server or client\n"
		"  --listen ADDR     this half's address for --role (e.g. 10.0.0.1:7000)\n"
		"  --peer NODE@ADDR  the other half (node id server or client)\n"
		"  --guarantee G     amo, alo (default) or eo: delivery guarantee of the data stream\n"
		"  --one-thread      loop driver: one thread polls both engines in turn, so the RTT\n"
		"                    is the engines' own CPU cost per round trip (no driver, no\n"
		"                    second core)\n"
		"  --loss P          loop driver: drop this fraction of packets each way (e.g. 0.05);\n"
		"                    on sockets use iptables (docs/benchmarking.md)\n"
		"  --uring-setup S   defer (default: SINGLE_ISSUER|DEFER_TASKRUN), coop, sqpoll, plain\n"
		"  --cpus C,S        client and server CPUs (default 0,1; -1 = no pinning)\n"
		"  --mono            time with CLOCK_MONOTONIC instead of the TSC\n"
		"  --no-udp-gso      uring-udp: one datagram per send (udp_gso = no)\n"
		"  --no-udp-gro      uring-udp: one datagram per receive (udp_gro = no)\n"
		"  --tls DIR         encryption required: mutual TLS 1.3 with DIR/ca.pem and\n"
		"                    DIR/{client,server}.{pem,key} (tools/mkcerts DIR client server)\n"
		"  --cipher C        with --tls: aes-128-gcm (default) or chacha20-poly1305\n"
		"  --json            one JSON object instead of the table\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "driver", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "throughput", no_argument, NULL, 'T' },
		{ "role", required_argument, NULL, 'r' },
		{ "listen", required_argument, NULL, 'l' },
		{ "peer", required_argument, NULL, 'p' },
		{ "uring-setup", required_argument, NULL, 'u' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "mono", no_argument, NULL, 'm' },
		{ "no-udp-gso", no_argument, NULL, 'G' },
		{ "no-udp-gro", no_argument, NULL, 'R' },
		{ "one-thread", no_argument, NULL, '1' },
		{ "guarantee", required_argument, NULL, 'g' },
		{ "loss", required_argument, NULL, 'L' },
		{ "json", no_argument, NULL, 'j' },
		{ "vdev", required_argument, NULL, 'V' },
		{ "eal", required_argument, NULL, 'E' },
		{ "port", required_argument, NULL, 'P' },
		{ "tls", required_argument, NULL, 'S' },
		{ "cipher", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	char *end;
	int li = 0; /* the option getopt_long found: named in "bad value" */
	while ((ch = getopt_long(argc, argv, "", lo, &li)) != -1) {
		switch (ch) {
		case 'd': o.driver = optarg; break;
		case 's': o.size = strtoull(optarg, &end, 0); if (*end) goto bad; break;
		case 'n': o.count = strtoull(optarg, &end, 0); if (*end || !o.count) goto bad; break;
		case 't': o.duration = strtod(optarg, &end); if (*end || o.duration <= 0) goto bad; break;
		case 'w': o.warmup = strtoull(optarg, &end, 0); if (*end) goto bad; break;
		case 'i': o.inflight = (uint32_t)strtoul(optarg, &end, 0); if (*end || !o.inflight) goto bad; break;
		case 'T': o.mode = THROUGHPUT; break;
		case 'r':
			if (strcmp(optarg, "server") == 0) o.role = SERVER;
			else if (strcmp(optarg, "client") == 0) o.role = CLIENT;
			else if (strcmp(optarg, "both") == 0) o.role = BOTH;
			else goto bad;
			break;
		case 'l': o.listen = optarg; break;
		case 'p': o.peer = optarg; break;
		case 'u':
			if (strcmp(optarg, "coop") && strcmp(optarg, "defer") &&
			    strcmp(optarg, "sqpoll") && strcmp(optarg, "plain"))
				goto bad;
			o.uring_setup = optarg;
			break;
		case 'c':
			if (sscanf(optarg, "%d,%d", &o.cpu_client, &o.cpu_server) != 2) goto bad;
			break;
		case 'm': o.mono = 1; break;
		case 'G': o.no_gso = 1; break;
		case 'R': o.no_gro = 1; break;
		case '1': o.one_thread = 1; break;
		case 'V': o.vdev = optarg; break;
		case 'E': o.eal = optarg; break;
		case 'P': o.port = optarg; break;
		case 'L': o.loss = strtod(optarg, &end); if (*end || o.loss < 0 || o.loss >= 1) goto bad; break;
		case 'g':
			if (strcmp(optarg, "amo") == 0) o.guarantee = WARP_AT_MOST_ONCE;
			else if (strcmp(optarg, "alo") == 0) o.guarantee = WARP_AT_LEAST_ONCE;
			else if (strcmp(optarg, "eo") == 0) o.guarantee = WARP_EXACTLY_ONCE;
			else goto bad;
			break;
		case 'j': o.json = 1; break;
		case 'S': o.tls = optarg; break;
		case 'C':
			if (strcmp(optarg, "aes-128-gcm") && strcmp(optarg, "chacha20-poly1305"))
				goto bad;
			o.cipher = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "warp-bench: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (o.mode == THROUGHPUT)
		o.warmup = 0;
	bench_clock_init(&clk, o.mono);
	if (o.one_thread && strcmp(o.driver, "loop") != 0) {
		fprintf(stderr, "warp-bench: --one-thread is for the loop driver\n");
		return 2;
	}
	if (strcmp(o.driver, "loop") == 0)
		return o.role == BOTH ? run_in_process() : (fprintf(stderr,
			"warp-bench: the loop driver runs both halves in one process\n"), 2);
	if (o.role != BOTH)
		return run_one_half();
	if (is_dpdk()) {
		snprintf(memif_sock, sizeof(memif_sock), "/tmp/warp-bench-%d.sock", (int)getpid());
		int rc = run_both_processes();
		unlink(memif_sock);
		return rc;
	}
	return run_both_processes();
bad:
	fprintf(stderr, "warp-bench: bad value '%s' for --%s\n", optarg, lo[li].name);
	usage(stderr);
	return 2;
}
