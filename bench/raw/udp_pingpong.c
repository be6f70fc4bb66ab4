/* SPDX-License-Identifier: Apache-2.0 */
/*
 * raw-udp-pingpong: the plain-socket floor under warp's UDP numbers.
 *
 * Two processes ping-pong one datagram over 127.0.0.1 with non-blocking
 * sendto/recvfrom, each busy-polling recvfrom (no io_uring, no epoll), the
 * client pinned to CPU 0 and the server to CPU 1 when the machine has two.
 * The client records every round trip in a warp_hist_t and prints the same
 * table (or JSON object) as warp-bench.
 *
 * Usage: raw-udp-pingpong [--size BYTES] [--count N] [--warmup N] [--json]
 *                         [--role server|client --addr IPv4:PORT]
 *                         [--client-cpu N] [--server-cpu N]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raw_common.h"

static const char usage_text[] =
	"usage: raw-udp-pingpong [options]\n"
	"  --size BYTES      payload size (default 64, 1..65507)\n"
	"  --count N         measured round trips (default 200000)\n"
	"  --warmup N        round trips before measuring (default 20000)\n"
	"  --json            print one JSON object instead of the table\n"
	"  --role R          server or client: run one half only (needs --addr);\n"
	"                    default: both halves, the server forked\n"
	"  --addr IP:PORT    the server's address (default 127.0.0.1, port picked)\n"
	"  --client-cpu N    pin the client (default 0 on 2+ CPUs; -1: no pinning)\n"
	"  --server-cpu N    pin the server (default 1 on 2+ CPUs; -1: no pinning)\n";

static int udp_server(const struct raw_opts *o, int fd)
{
	uint8_t *buf = malloc(RAW_MAX_SIZE + 1);
	if (!buf)
		return 1;
	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, RAW_MAX_SIZE + 1, 0, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			fprintf(stderr, "%s: server recvfrom: %s\n", o->tool, strerror(errno));
			break;
		}
		if (n == 0) {
			free(buf);
			return 0;
		}
		if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) != n) {
			fprintf(stderr, "%s: server sendto: %s\n", o->tool, strerror(errno));
			break;
		}
	}
	free(buf);
	return 1;
}

static int udp_client(const struct raw_opts *o, int fd, const struct sockaddr_in *srv,
		      struct raw_result *r)
{
	uint8_t *out = calloc(1, o->size), *in = malloc(RAW_MAX_SIZE + 1);
	int rc = 1;
	if (!out || !in)
		goto done;
	uint64_t total = o->warmup + o->count;
	for (uint64_t i = 0; i < total; i++) {
		if (o->size >= 8)
			memcpy(out, &i, 8);
		uint64_t t0 = now_ns(), t_resend = t0;
		if (sendto(fd, out, o->size, 0, (const struct sockaddr *)srv, sizeof(*srv)) < 0) {
			fprintf(stderr, "%s: sendto: %s\n", o->tool, strerror(errno));
			goto done;
		}
		for (unsigned spin = 0;; spin++) {
			ssize_t n = recvfrom(fd, in, RAW_MAX_SIZE + 1, 0, NULL, NULL);
			if (n >= 0) {
				uint64_t t1 = now_ns();
				if ((size_t)n != o->size) {
					fprintf(stderr, "%s: reply of %zd bytes, expected %zu\n",
						o->tool, n, o->size);
					goto done;
				}
				if (o->size >= 8 && memcmp(in, &i, 8) != 0)
					continue; /* a late duplicate of a resent first message */
				if (i == o->warmup)
					r->t_first = t1;
				if (i >= o->warmup)
					warp_hist_record(r->h, t1 - t0);
				r->t_last = t1;
				break;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				fprintf(stderr, "%s: recvfrom: %s\n", o->tool, strerror(errno));
				goto done;
			}
			if ((spin & 4095) != 4095)
				continue;
			uint64_t t = now_ns();
			if (t - t0 > RAW_TIMEOUT_NS) {
				fprintf(stderr, "%s: no reply to round trip %llu within 2 s\n",
					o->tool, (unsigned long long)i);
				goto done;
			}
			/* a separately started server may not be up yet */
			if (i == 0 && t - t_resend > 100000000ull) {
				t_resend = t;
				(void)sendto(fd, out, o->size, 0, (const struct sockaddr *)srv,
					     sizeof(*srv));
			}
		}
	}
	rc = 0;
done:
	free(out);
	free(in);
	return rc;
}

int main(int argc, char **argv)
{
	struct raw_opts o = { .tool = "raw-udp-pingpong" };
	int rc = raw_parse(argc, argv, &o, NULL, usage_text);
	if (rc)
		return rc == 1 ? 0 : 2;
	return raw_main(&o, udp_server, udp_client, "non-blocking recv/sendto, no io_uring",
			"\"io\":\"recvfrom/sendto\",");
}
