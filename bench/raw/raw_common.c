/* SPDX-License-Identifier: Apache-2.0 */
/* Shared slow-path pieces of the raw baselines; see raw_common.h. */
#include "raw_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_EXTRA 8

int raw_parse_u64(const char *tool, const char *opt, const char *s, uint64_t lo, uint64_t hi,
		  uint64_t *out)
{
	char *end;
	errno = 0;
	if (*s == '-' || *s == '\0')
		goto bad;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end != '\0' || v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	fprintf(stderr, "%s: --%s '%s': expected an integer in [%" PRIu64 ", %" PRIu64 "]\n", tool,
		opt, s, lo, hi);
	return -1;
}

int raw_parse_cpu(const char *tool, const char *opt, const char *s, int *out)
{
	if (strcmp(s, "-1") == 0 || strcmp(s, "none") == 0) {
		*out = -1;
		return 0;
	}
	uint64_t v;
	if (raw_parse_u64(tool, opt, s, 0, CPU_SETSIZE - 1, &v))
		return -1;
	*out = (int)v;
	return 0;
}

/* "a.b.c.d:port" or "a.b.c.d" (port 0). */
static int parse_addr(const char *tool, const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : strlen(s);
	uint64_t port = 0;
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		goto bad;
	if (colon && raw_parse_u64(tool, "addr port", colon + 1, 0, 65535, &port))
		return -1;
	a->sin_port = htons((uint16_t)port);
	return 0;
bad:
	fprintf(stderr, "%s: --addr '%s': expected IPv4ADDR[:PORT], e.g. 127.0.0.1:7000\n", tool,
		s);
	return -1;
}

int raw_parse(int argc, char **argv, struct raw_opts *o, const struct raw_extra_opt *extra,
	      const char *usage)
{
	const char *tool = o->tool;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	o->size = 64;
	o->count = 200000;
	o->warmup = 20000;
	o->role = RAW_ROLE_BOTH;
	memset(&o->addr, 0, sizeof(o->addr));
	o->addr.sin_family = AF_INET;
	o->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	o->client_cpu = ncpu >= 2 ? 0 : -1;
	o->server_cpu = ncpu >= 2 ? 1 : -1;
	o->json = 0;
	o->idle = "spin";

	enum { O_SIZE = 256, O_COUNT, O_WARMUP, O_ROLE, O_ADDR, O_CCPU, O_SCPU, O_JSON, O_HELP,
	       O_EXTRA };
	struct option lo[16 + MAX_EXTRA] = {
		{ "size", required_argument, NULL, O_SIZE },
		{ "count", required_argument, NULL, O_COUNT },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "role", required_argument, NULL, O_ROLE },
		{ "addr", required_argument, NULL, O_ADDR },
		{ "client-cpu", required_argument, NULL, O_CCPU },
		{ "server-cpu", required_argument, NULL, O_SCPU },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, O_HELP },
	};
	int n = 9;
	for (int i = 0; extra && extra[i].name; i++) {
		if (i == MAX_EXTRA)
			abort(); /* programming error */
		lo[n++] = (struct option){ extra[i].name, required_argument, NULL, O_EXTRA + i };
	}
	lo[n] = (struct option){ NULL, 0, NULL, 0 };

	int have_addr = 0;
	uint64_t v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case O_SIZE:
			if (raw_parse_u64(tool, "size", optarg, 1, RAW_MAX_SIZE, &v))
				return 2;
			o->size = v;
			break;
		case O_COUNT:
			if (raw_parse_u64(tool, "count", optarg, 1, UINT64_MAX / 2, &o->count))
				return 2;
			break;
		case O_WARMUP:
			if (raw_parse_u64(tool, "warmup", optarg, 0, UINT64_MAX / 2, &o->warmup))
				return 2;
			break;
		case O_ROLE:
			if (strcmp(optarg, "server") == 0) {
				o->role = RAW_ROLE_SERVER;
			} else if (strcmp(optarg, "client") == 0) {
				o->role = RAW_ROLE_CLIENT;
			} else {
				fprintf(stderr, "%s: --role '%s': expected server or client\n",
					tool, optarg);
				return 2;
			}
			break;
		case O_ADDR:
			if (parse_addr(tool, optarg, &o->addr))
				return 2;
			have_addr = 1;
			break;
		case O_CCPU:
			if (raw_parse_cpu(tool, "client-cpu", optarg, &o->client_cpu))
				return 2;
			break;
		case O_SCPU:
			if (raw_parse_cpu(tool, "server-cpu", optarg, &o->server_cpu))
				return 2;
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_HELP:
			fputs(usage, stdout);
			return 1;
		case '?':
			if (optopt)
				fprintf(stderr, "%s: option '%s' needs a value or takes none\n",
					tool, argv[optind - 1]);
			else
				fprintf(stderr, "%s: unknown option '%s'\n", tool,
					argv[optind - 1]);
			fputs(usage, stderr);
			return 2;
		default:
			if (c >= O_EXTRA && c < O_EXTRA + MAX_EXTRA) {
				if (extra[c - O_EXTRA].set(optarg))
					return 2;
				break;
			}
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", tool, argv[optind]);
		fputs(usage, stderr);
		return 2;
	}
	if (o->role != RAW_ROLE_BOTH && (!have_addr || o->addr.sin_port == 0)) {
		fprintf(stderr, "%s: --role %s needs --addr IPv4ADDR:PORT (the server's)\n", tool,
			o->role == RAW_ROLE_SERVER ? "server" : "client");
		return 2;
	}
	if ((o->client_cpu >= ncpu) || (o->server_cpu >= ncpu)) {
		fprintf(stderr, "%s: cpu out of range: this machine has %ld online CPUs\n", tool,
			ncpu);
		return 2;
	}
	return 0;
}

int raw_pin(const char *tool, int cpu)
{
	if (cpu < 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "%s: pin to cpu %d: %s\n", tool, cpu, strerror(errno));
		return -1;
	}
	return 0;
}

int raw_udp_socket(const char *tool, struct sockaddr_in *addr, int nonblock)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		fprintf(stderr, "%s: socket: %s\n", tool, strerror(errno));
		return -1;
	}
	socklen_t len = sizeof(*addr);
	if (bind(fd, (const struct sockaddr *)addr, len) ||
	    getsockname(fd, (struct sockaddr *)addr, &len)) {
		char b[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &addr->sin_addr, b, sizeof(b));
		fprintf(stderr, "%s: bind %s:%u: %s\n", tool, b, ntohs(addr->sin_port),
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

double raw_clock_overhead_ns(void)
{
	uint64_t t0 = now_ns();
	for (int i = 0; i < 1000000; i++)
		(void)now_ns();
	return (double)(now_ns() - t0) / 1e6;
}

void raw_print_result(const struct raw_opts *o, const struct raw_result *r,
		      const struct raw_report *rep)
{
	double secs = (double)(r->t_last - r->t_first) / 1e9;
	/* t_first is the first measured reply: count - 1 round trips follow it */
	double rate = secs > 0 ? (double)(o->count - 1) / secs : 0;
	const double pct[] = { 50, 90, 99, 99.9, 99.99 };
	unsigned long long v[5];
	for (int i = 0; i < 5; i++)
		v[i] = warp_hist_percentile(r->h, pct[i]);
	unsigned long long mx = warp_hist_max(r->h);
	const char *mode = rep->mode ? rep->mode
		: o->role == RAW_ROLE_BOTH ? "two processes (server forked)"
					   : "two processes (started separately)";
	if (o->json) {
		printf("{\"tool\":\"%s\",\"mode\":\"ping-pong\",%s\"size\":%zu,\"count\":%llu,"
		       "\"warmup\":%llu,\"rtt_ns\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
		       "\"p99.9\":%llu,\"p99.99\":%llu,\"max\":%llu,\"mean\":%.1f},"
		       "\"round_trips_per_s\":%.0f,\"clock\":\"%s\","
		       "\"clock_overhead_ns\":%.1f,\"cpus\":[%d,%d],\"idle\":\"%s\"}\n",
		       o->tool, rep->json_extra, o->size, (unsigned long long)o->count,
		       (unsigned long long)o->warmup, v[0], v[1], v[2], v[3], v[4], mx,
		       warp_hist_mean(r->h), rate, rep->clock_json, rep->clock_ns, o->client_cpu,
		       o->server_cpu, o->idle);
		return;
	}
	printf("%s: ping-pong over %s, %s, %zu-byte messages\n", o->tool, rep->transport, mode,
	       o->size);
	printf("round trips %llu (after %llu warm-up), %.0f round trips/s\n",
	       (unsigned long long)o->count, (unsigned long long)o->warmup, rate);
	printf("\n%-10s %10s %10s %10s %10s %10s %10s\n", "RTT (ns)", "p50", "p90", "p99", "p99.9",
	       "p99.99", "max");
	printf("%-10s %10llu %10llu %10llu %10llu %10llu %10llu\n", "", v[0], v[1], v[2], v[3],
	       v[4], mx);
	printf("\nsettings: %s, idle %s, client cpu %d, server cpu %d\n", rep->settings,
	       strcmp(o->idle, "spin") == 0 ? "spin (busy-poll)" : o->idle, o->client_cpu,
	       o->server_cpu);
	printf("clock: %s, %.1f ns per reading (two readings per round trip)\n", rep->clock,
	       rep->clock_ns);
}

static void print_result(const struct raw_opts *o, const struct raw_result *r, double clock_ns,
			 const char *settings, const char *json_extra)
{
	const struct raw_report rep = {
		.transport = "UDP on loopback",
		.clock = "CLOCK_MONOTONIC",
		.clock_json = "CLOCK_MONOTONIC",
		.clock_ns = clock_ns,
		.settings = settings,
		.json_extra = json_extra,
	};
	raw_print_result(o, r, &rep);
}

/* The zero-length datagram that ends the server. */
static void send_stop(int fd, const struct sockaddr_in *srv)
{
	char b;
	for (int i = 0; i < 3; i++)
		(void)sendto(fd, &b, 0, 0, (const struct sockaddr *)srv, sizeof(*srv));
}

static int run_client_side(const struct raw_opts *o, raw_client_fn client,
			   const struct sockaddr_in *srv, const char *settings,
			   const char *json_extra)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr = srv->sin_addr };
	int fd = raw_udp_socket(o->tool, &me, 1);
	if (fd < 0)
		return 1;
	if (raw_pin(o->tool, o->client_cpu))
		return 1;
	double clock_ns = raw_clock_overhead_ns();
	struct raw_result r = { 0 };
	if (warp_hist_create(&r.h)) {
		fprintf(stderr, "%s: out of memory\n", o->tool);
		return 1;
	}
	int rc = client(o, fd, srv, &r);
	send_stop(fd, srv);
	if (rc == 0)
		print_result(o, &r, clock_ns, settings, json_extra);
	warp_hist_destroy(r.h);
	close(fd);
	return rc;
}

int raw_main(const struct raw_opts *o, raw_server_fn server, raw_client_fn client,
	     const char *settings, const char *json_extra)
{
	struct sockaddr_in srv = o->addr;
	if (o->role == RAW_ROLE_CLIENT)
		return run_client_side(o, client, &srv, settings, json_extra);

	int sfd = raw_udp_socket(o->tool, &srv, 1);
	if (sfd < 0)
		return 1;
	if (o->role == RAW_ROLE_SERVER) {
		if (raw_pin(o->tool, o->server_cpu))
			return 1;
		if (!o->json) {
			char b[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &srv.sin_addr, b, sizeof(b));
			fprintf(stderr, "%s: server on %s:%u (a zero-length datagram stops it)\n",
				o->tool, b, ntohs(srv.sin_port));
		}
		int rc = server(o, sfd);
		close(sfd);
		return rc;
	}

	/* both halves: the server socket exists before the fork, so the first
	 * datagram queues even if the child is not polling yet */
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", o->tool, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		int rc = raw_pin(o->tool, o->server_cpu) ? 1 : server(o, sfd);
		_exit(rc);
	}
	close(sfd);
	int rc = run_client_side(o, client, &srv, settings, json_extra);
	int st = 0;
	if (rc) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return rc;
	}
	/* the stop datagram ends the server; do not wait forever if it was lost */
	for (int i = 0; i < 200; i++) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (i == 199) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		usleep(10000);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: server half failed (exit %d)\n", o->tool, WEXITSTATUS(st));
		return 1;
	}
	return 0;
}
