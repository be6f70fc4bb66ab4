/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of the raw baselines (raw-uring-pingpong, raw-udp-pingpong):
 * option parsing, addresses, CPU pinning, the clock, the two-process set-up
 * (fork or --role) and the result printer, so both tools measure and print
 * exactly alike and like warp-bench. The DPDK baselines (dpdk_common.h) have
 * their own set-up but reuse the number parsers and the printer.
 *
 * Protocol between the halves: the client sends a datagram of --size bytes
 * whose first 8 bytes (when size >= 8) carry the round-trip sequence number;
 * the server echoes every datagram back to its sender; a zero-length datagram
 * tells the server to exit. Everything here is slow path except now_ns().
 */
#ifndef WARP_BENCH_RAW_COMMON_H
#define WARP_BENCH_RAW_COMMON_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "warp/hist.h"

#define RAW_MAX_SIZE 65507u   /* largest UDP payload over IPv4 */
#define RAW_TIMEOUT_NS 2000000000ull /* no reply for 2 s: the run failed */

enum raw_role { RAW_ROLE_BOTH, RAW_ROLE_SERVER, RAW_ROLE_CLIENT };

/* Options common to both tools; tool-specific ones go through the hook. */
struct raw_opts {
	const char *tool;   /* "raw-uring-pingpong" */
	size_t size;        /* payload bytes, 1..RAW_MAX_SIZE */
	uint64_t count;     /* measured round trips */
	uint64_t warmup;    /* round trips before measuring */
	enum raw_role role;
	struct sockaddr_in addr; /* server address (--addr); port 0 = pick one */
	int client_cpu;     /* -1 = do not pin */
	int server_cpu;
	int json;
	const char *idle;   /* how both halves wait: "spin" (set by raw_parse) */
};

/* A tool-specific option: name (long option, takes an argument), and the
 * handler that returns 0 or prints a message and returns -1 (exit 2). */
struct raw_extra_opt {
	const char *name;
	int (*set)(const char *val);
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Parse argv into o (defaults filled first). extra: NULL-terminated list of
 * tool options. usage: the tool's help text (printed for --help and after
 * an error). Returns 0 to run, 1 when --help was printed (exit 0), or 2 after
 * printing a clear message (exit 2).
 */
int raw_parse(int argc, char **argv, struct raw_opts *o, const struct raw_extra_opt *extra,
	      const char *usage);

/* Strict unsigned parse of s (the whole string, decimal or 0x, no sign) into
 * [lo, hi]; 0, or -1 after a message naming --opt. */
int raw_parse_u64(const char *tool, const char *opt, const char *s, uint64_t lo, uint64_t hi,
		  uint64_t *out);

/* A CPU number, or -1/"none" (do not pin); 0 or -1 after a message. */
int raw_parse_cpu(const char *tool, const char *opt, const char *s, int *out);

/* Pin the calling process to cpu (no-op for cpu < 0). 0 or -1 with a message. */
int raw_pin(const char *tool, int cpu);

/* UDP socket bound to addr (port 0 = ephemeral), non-blocking when nonblock;
 * the bound address is written back to addr. fd, or -1 with a message. */
int raw_udp_socket(const char *tool, struct sockaddr_in *addr, int nonblock);

/* Average cost of one CLOCK_MONOTONIC reading, in ns. */
double raw_clock_overhead_ns(void);

/*
 * The side runner each tool provides. Both get a socket already bound; the
 * client additionally the server address. run_client records each measured
 * round trip into h and the times of the first and last measured replies;
 * both return 0 or 1 (message printed).
 */
struct raw_result {
	warp_hist_t *h;
	uint64_t t_first, t_last;
};
typedef int (*raw_server_fn)(const struct raw_opts *o, int fd);
typedef int (*raw_client_fn)(const struct raw_opts *o, int fd, const struct sockaddr_in *srv,
			     struct raw_result *r);

/*
 * How a tool measured, for raw_print_result(). The socket tools' printer
 * fills it with "UDP on loopback" and CLOCK_MONOTONIC; other transports and
 * clocks say what they used.
 */
struct raw_report {
	const char *transport;  /* "UDP on loopback" */
	const char *mode;       /* NULL: from o->role ("two processes (server forked)") */
	const char *clock;      /* text line: "CLOCK_MONOTONIC" */
	const char *clock_json; /* JSON "clock" value */
	double clock_ns;        /* cost of one reading */
	const char *settings;   /* the tool's settings line */
	const char *json_extra; /* "\"key\":value," pairs, or "" */
};

/* Print r (t_first/t_last in ns) as the table or, with o->json, one JSON
 * object on one line: the same layout for every raw ping-pong tool. */
void raw_print_result(const struct raw_opts *o, const struct raw_result *r,
		      const struct raw_report *rep);

/*
 * Run the benchmark per o->role: both halves (server forked, child dies with
 * the parent), or one of them. Prints the result (table or JSON) with the
 * settings line `settings` supplied by the tool. Returns the exit code.
 */
int raw_main(const struct raw_opts *o, raw_server_fn server, raw_client_fn client,
	     const char *settings, const char *json_extra);

#endif
