/* SPDX-License-Identifier: Apache-2.0 */
/*
 * warp-bench: round-trip latency between two warp engines.
 *
 * This first version runs both engines inside one process over the loop
 * driver, each engine on its own thread (pinned to its own core when the
 * machine has two), busy-polling. The client sends one message, the server's
 * receive callback echoes it, the client's callback records the round trip
 * and sends the next. The io_uring issue grows this into the two-process
 * tool with real sockets.
 *
 * Usage: warp-bench [--size BYTES] [--count N] [--warmup N] [--driver loop]
 *                   [--json] [--help]
 */
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "warp/warp.h"

struct opts {
	size_t size;
	uint64_t count;
	uint64_t warmup;
	const char *driver;
	int json;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct side {
	warp_engine_t *e;
	warp_stream_t *s;
	int cpu;
	/* client */
	uint64_t sent, done, total, warmup;
	uint64_t t_send;
	warp_hist_t *h;
	uint8_t *buf;
	size_t size;
	int err;
	uint64_t t_first, t_last;
};

static _Atomic int stop_flag;

static void client_send(struct side *c)
{
	c->t_send = now_ns();
	int rc = warp_send(c->e, c->s, c->buf, c->size, NULL);
	if (rc) {
		fprintf(stderr, "warp-bench: send: %s\n", warp_strerror(rc));
		c->err = rc;
		atomic_store(&stop_flag, 1);
		return;
	}
	c->sent++;
}

static void on_client(void *user, const warp_msg_t *m)
{
	struct side *c = user;
	uint64_t t = now_ns();
	if (m->status) {
		c->err = m->status;
		atomic_store(&stop_flag, 1);
		return;
	}
	if (c->done == c->warmup)
		c->t_first = t;
	if (c->done >= c->warmup)
		warp_hist_record(c->h, t - c->t_send);
	c->done++;
	if (c->done < c->total) {
		client_send(c);
	} else {
		c->t_last = t;
		atomic_store(&stop_flag, 1);
	}
}

static void on_server(void *user, const warp_msg_t *m)
{
	struct side *s = user;
	if (m->status == 0) {
		int rc = warp_send(s->e, s->s, m->data, m->len, NULL);
		if (rc) {
			fprintf(stderr, "warp-bench: echo: %s\n", warp_strerror(rc));
			s->err = rc;
			atomic_store(&stop_flag, 1);
		}
	}
}

static void pin(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *run_server(void *arg)
{
	struct side *s = arg;
	pin(s->cpu);
	while (!atomic_load_explicit(&stop_flag, memory_order_relaxed))
		warp_engine_poll(s->e);
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: warp-bench [--size BYTES] [--count N] [--warmup N] [--driver loop] "
		   "[--json]\n"
		   "  --size    message size in bytes (default 64, up to max_payload_bytes)\n"
		   "  --count   measured round trips (default 200000)\n"
		   "  --warmup  round trips before measuring (default 20000)\n"
		   "  --driver  transport (default loop; uring-udp arrives with the io_uring "
		   "driver)\n"
		   "  --json    print the result as one JSON object instead of a table\n");
}

static int make_engine(warp_loop_net_t *net, const char *name, size_t size, warp_engine_t **e)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	if (size > cfg.max_payload_bytes) {
		cfg.max_payload_bytes = size;
		cfg.tx_arena_bytes = cfg.rx_arena_bytes = 4 * size;
	}
	char key[64];
	snprintf(key, sizeof(key), "%s:1", name);
	warp_config_add_transport(&cfg, "loop", key, net);
	int rc = warp_engine_create(&cfg, e);
	if (rc)
		fprintf(stderr, "warp-bench: engine %s: %s: %s\n", name, warp_strerror(rc),
			warp_errdetail());
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = { .size = 64, .count = 200000, .warmup = 20000, .driver = "loop" };
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' },   { "count", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' }, { "driver", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },         { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "s:n:w:d:jh", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o.size = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			o.count = strtoull(optarg, NULL, 0);
			break;
		case 'w':
			o.warmup = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			o.driver = optarg;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (strcmp(o.driver, "loop") != 0) {
		fprintf(stderr, "warp-bench: driver '%s' is not available in this build (have: loop)\n",
			o.driver);
		return 2;
	}
	if (o.count == 0) {
		fprintf(stderr, "warp-bench: --count must be at least 1\n");
		return 2;
	}

	warp_loop_net_t *net;
	if (warp_loop_net_create(1, 0, &net))
		return 1;
	struct side cl = { 0 }, sv = { 0 };
	if (make_engine(net, "client", o.size, &cl.e) || make_engine(net, "server", o.size, &sv.e))
		return 1;
	warp_peer_t *p_sv, *p_cl;
	if (warp_peer_add(cl.e, "server@server:1", &p_sv) ||
	    warp_peer_add(sv.e, "client@client:1", &p_cl) ||
	    warp_stream_open(cl.e, p_sv, 1, 16, &cl.s) || warp_stream_open(sv.e, p_cl, 1, 16, &sv.s)) {
		fprintf(stderr, "warp-bench: setup: %s\n", warp_errdetail());
		return 1;
	}
	warp_engine_set_recv(cl.e, on_client, &cl);
	warp_engine_set_recv(sv.e, on_server, &sv);
	if (warp_hist_create(&cl.h))
		return 1;
	cl.buf = calloc(1, o.size ? o.size : 1);
	cl.size = o.size;
	cl.total = o.count + o.warmup;
	cl.warmup = o.warmup;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cl.cpu = ncpu >= 2 ? 0 : -1;
	sv.cpu = ncpu >= 2 ? 1 : -1;

	/* clock overhead, stated in the output */
	uint64_t t0 = now_ns();
	for (int i = 0; i < 1000000; i++)
		(void)now_ns();
	double clock_ns = (double)(now_ns() - t0) / 1e6;

	pthread_t th;
	pthread_create(&th, NULL, run_server, &sv);
	pin(cl.cpu);
	client_send(&cl);
	while (!atomic_load_explicit(&stop_flag, memory_order_relaxed))
		warp_engine_poll(cl.e);
	pthread_join(th, NULL);
	if (cl.err || sv.err) {
		fprintf(stderr, "warp-bench: failed: %s\n", warp_strerror(cl.err ? cl.err : sv.err));
		return 1;
	}

	double secs = (double)(cl.t_last - cl.t_first) / 1e9;
	double rate = secs > 0 ? (double)(o.count - (o.count > 0)) / secs : 0;
	const double pct[] = { 50, 90, 99, 99.9, 99.99 };
	uint64_t v[5];
	for (int i = 0; i < 5; i++)
		v[i] = warp_hist_percentile(cl.h, pct[i]);
	uint64_t mx = warp_hist_max(cl.h);
	warp_stats_t st;
	warp_engine_stats(cl.e, &st);
	if (o.json) {
		printf("{\"tool\":\"warp-bench\",\"mode\":\"ping-pong\",\"driver\":\"%s\","
		       "\"size\":%zu,\"count\":%llu,\"warmup\":%llu,\"rtt_ns\":{\"p50\":%llu,"
		       "\"p90\":%llu,\"p99\":%llu,\"p99.9\":%llu,\"p99.99\":%llu,\"max\":%llu,"
		       "\"mean\":%.1f},\"round_trips_per_s\":%.0f,\"clock\":\"CLOCK_MONOTONIC\","
		       "\"clock_overhead_ns\":%.1f,\"cpus\":[%d,%d],\"idle\":\"spin\"}\n",
		       o.driver, o.size, (unsigned long long)o.count, (unsigned long long)o.warmup,
		       (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2],
		       (unsigned long long)v[3], (unsigned long long)v[4], (unsigned long long)mx,
		       warp_hist_mean(cl.h), rate, clock_ns, cl.cpu, sv.cpu);
	} else {
		printf("warp-bench: ping-pong, driver %s (two engines in one process, one thread "
		       "each), %zu-byte messages\n",
		       o.driver, o.size);
		printf("round trips %llu (after %llu warm-up), %.0f round trips/s\n",
		       (unsigned long long)o.count, (unsigned long long)o.warmup, rate);
		printf("\n%-10s %10s %10s %10s %10s %10s %10s\n", "RTT (ns)", "p50", "p90", "p99",
		       "p99.9", "p99.99", "max");
		printf("%-10s %10llu %10llu %10llu %10llu %10llu %10llu\n", "", (unsigned long long)v[0],
		       (unsigned long long)v[1], (unsigned long long)v[2], (unsigned long long)v[3],
		       (unsigned long long)v[4], (unsigned long long)mx);
		printf("\nsettings: mtu %u, idle spin (busy-poll), client cpu %d, server cpu %d, "
		       "packets sent %llu\n",
		       WARP_DEFAULT_MTU, cl.cpu, sv.cpu, (unsigned long long)st.tx_packets);
		printf("clock: CLOCK_MONOTONIC, %.1f ns per reading (two readings per round trip)\n",
		       clock_ns);
	}
	warp_hist_destroy(cl.h);
	free(cl.buf);
	warp_engine_destroy(cl.e);
	warp_engine_destroy(sv.e);
	warp_loop_net_destroy(net);
	return 0;
}
