/* SPDX-License-Identifier: Apache-2.0 */
/*
 * raw-uring-sendzc: does zero-copy sending help uring-udp here? The same
 * segmented UDP sends (UDP_SEGMENT: --segment bytes a datagram, --bytes a
 * send, as uring-udp sends a burst to one peer) go out through io_uring as
 * IORING_OP_SENDMSG (the kernel copies the payload) and as
 * IORING_OP_SENDMSG_ZC (the kernel pins the pages and says when it is done
 * with them). Each mode runs --seconds with --inflight sends outstanding;
 * the tool prints sends/s, Gbit/s and, for zero-copy, how many of the
 * kernel's notifications said it had copied after all
 * (IORING_NOTIF_USAGE_ZC_COPIED): on loopback and veth the receiving side
 * needs its own copy, so zero copy cannot save anything there. Run it with
 * --dest against another host over a real NIC to see what it saves there
 * (docs/architecture.md, uring-udp).
 *
 *   raw-uring-sendzc [--dest IP:PORT] [--bytes N] [--segment N] [--inflight N]
 *                    [--seconds S] [--cpu C] [--sink-cpu C]
 *   raw-uring-sendzc --sink IP:PORT [--seconds S] [--sink-cpu C]
 * Without --dest a sink thread on 127.0.0.1 reads and counts everything;
 * --sink runs only such a sink, for the other end of a --dest run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "raw_common.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
/* Linux 6.2 uapi; liburing 2.3's own header predates them */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define TOOL "raw-uring-sendzc"
#define MAX_INFLIGHT 64

static const char usage[] =
	"usage: " TOOL " [options]\n"
	"  --dest IP:PORT   send there (default: a sink thread on 127.0.0.1)\n"
	"  --bytes N        payload of one send (default 64768: 44 datagrams)\n"
	"  --segment N      bytes a datagram, UDP_SEGMENT (default 1472)\n"
	"  --inflight N     sends outstanding (default 8, at most 64)\n"
	"  --seconds S      each mode runs this long (default 2)\n"
	"  --cpu C          the sender's CPU (default 0; -1: unpinned)\n"
	"  --sink-cpu C     the sink's CPU (default 1; -1: unpinned)\n"
	"  --sink IP:PORT   be only the sink, on that address, for --seconds (the\n"
	"                   receiving end of a --dest run on another host or netns)\n";

static atomic_int sink_stop;
static atomic_ulong sink_bytes;

static void *sink(void *arg)
{
	int fd = *(int *)arg;
	static uint8_t buf[65536];
	int one = 1; /* take what arrives together in one read (UDP GRO), as uring-udp does */
	setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one));
	while (!atomic_load_explicit(&sink_stop, memory_order_relaxed)) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			atomic_fetch_add_explicit(&sink_bytes, (unsigned long)n, memory_order_relaxed);
	}
	return NULL;
}

struct slot {
	struct msghdr msg;
	struct iovec iov;
	char cm[CMSG_SPACE(sizeof(uint16_t))];
	uint8_t *buf;
	int busy; /* zc: until its notification */
};

struct result {
	double sends_per_s, gbit_per_s;
	uint64_t sends, notifs, copied, errors;
};

static int run(int fd, const struct sockaddr_in *to, int zc, size_t bytes, uint16_t seg,
	       unsigned inflight, double seconds, struct result *r)
{
	struct io_uring ring;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	int rc = io_uring_queue_init_params(256, &ring, &p);
	if (rc < 0) {
		fprintf(stderr, TOOL ": io_uring_queue_init: %s\n", strerror(-rc));
		return -1;
	}
	static struct slot s[MAX_INFLIGHT];
	for (unsigned i = 0; i < inflight; i++) {
		if (!s[i].buf && !(s[i].buf = malloc(bytes))) {
			fprintf(stderr, TOOL ": out of memory\n");
			return -1;
		}
		memset(s[i].buf, (int)i, bytes);
		s[i].iov = (struct iovec){ .iov_base = s[i].buf, .iov_len = bytes };
		s[i].msg = (struct msghdr){ .msg_name = (void *)to, .msg_namelen = sizeof(*to),
					    .msg_iov = &s[i].iov, .msg_iovlen = 1,
					    .msg_control = s[i].cm, .msg_controllen = sizeof(s[i].cm) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&s[i].msg);
		c->cmsg_level = IPPROTO_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		s[i].busy = 0;
	}
	memset(r, 0, sizeof(*r));
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	unsigned outstanding = 0;
	for (;;) {
		uint64_t t = now_ns();
		for (unsigned i = 0; t < end && i < inflight; i++) {
			if (s[i].busy)
				continue;
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (!sqe)
				break;
			if (zc) {
				io_uring_prep_sendmsg_zc(sqe, fd, &s[i].msg, 0);
				sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
			} else {
				io_uring_prep_sendmsg(sqe, fd, &s[i].msg, 0);
			}
			io_uring_sqe_set_data64(sqe, i);
			s[i].busy = 1;
			outstanding++;
		}
		if (!outstanding)
			break;
		io_uring_submit_and_wait(&ring, 1);
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			unsigned i = (unsigned)io_uring_cqe_get_data64(cqe);
			seen++;
			if (cqe->flags & IORING_CQE_F_NOTIF) { /* zc: the pages are free */
				r->notifs++;
				if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
					r->copied++;
				s[i].busy = 0;
				outstanding--;
				continue;
			}
			if (cqe->res < 0) {
				if (!r->errors)
					fprintf(stderr, TOOL ": %s: %s\n", zc ? "sendmsg_zc" : "sendmsg",
						strerror(-cqe->res));
				r->errors++;
			} else {
				r->sends++;
			}
			if (!(cqe->flags & IORING_CQE_F_MORE)) { /* no notification follows */
				s[i].busy = 0;
				outstanding--;
			}
		}
		io_uring_cq_advance(&ring, seen);
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	r->sends_per_s = (double)r->sends / secs;
	r->gbit_per_s = (double)r->sends * (double)bytes * 8 / secs / 1e9;
	io_uring_queue_exit(&ring);
	return r->errors && !r->sends ? -1 : 0;
}

static int parse_ipv4_port(const char *s, struct sockaddr_in *a)
{
	char host[64];
	unsigned port;
	if (sscanf(s, "%63[^:]:%u", host, &port) != 2 || port > 65535 ||
	    inet_pton(AF_INET, host, &a->sin_addr) != 1) {
		fprintf(stderr, TOOL ": '%s': expected IPv4:port\n", s);
		return -1;
	}
	a->sin_port = htons((uint16_t)port);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t bytes = 44 * 1472, seg = 1472, inflight = 8;
	double seconds = 2;
	int cpu = 0, sink_cpu = 1;
	const char *dest = NULL, *sink_at = NULL;
	static const struct option lo[] = {
		{ "dest", required_argument, NULL, 'd' },   { "bytes", required_argument, NULL, 'b' },
		{ "segment", required_argument, NULL, 's' }, { "inflight", required_argument, NULL, 'i' },
		{ "seconds", required_argument, NULL, 't' }, { "cpu", required_argument, NULL, 'c' },
		{ "sink-cpu", required_argument, NULL, 'k' }, { "sink", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *end;
		switch (ch) {
		case 'd': dest = optarg; break;
		case 'S': sink_at = optarg; break;
		case 'b':
			if (raw_parse_u64(TOOL, "--bytes", optarg, 1, RAW_MAX_SIZE, &bytes))
				return 2;
			break;
		case 's':
			if (raw_parse_u64(TOOL, "--segment", optarg, 1, 65507, &seg))
				return 2;
			break;
		case 'i':
			if (raw_parse_u64(TOOL, "--inflight", optarg, 1, MAX_INFLIGHT, &inflight))
				return 2;
			break;
		case 't':
			seconds = strtod(optarg, &end);
			if (*end || seconds <= 0) {
				fprintf(stderr, TOOL ": --seconds '%s': expected a positive number\n",
					optarg);
				return 2;
			}
			break;
		case 'c':
			if (raw_parse_cpu(TOOL, "--cpu", optarg, &cpu))
				return 2;
			break;
		case 'k':
			if (raw_parse_cpu(TOOL, "--sink-cpu", optarg, &sink_cpu))
				return 2;
			break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (bytes / seg > 64) {
		fprintf(stderr, TOOL ": --bytes %llu / --segment %llu is more than 64 datagrams a send "
				"(the kernel's UDP_SEGMENT limit)\n",
			(unsigned long long)bytes, (unsigned long long)seg);
		return 2;
	}
	struct sockaddr_in to = { .sin_family = AF_INET };
	int sfd = -1;
	pthread_t th;
	if (sink_at) {
		/* only the sink, for --seconds: the receiving end on another host
		 * or in another network namespace */
		if (parse_ipv4_port(sink_at, &to))
			return 2;
		sfd = raw_udp_socket(TOOL, &to, 1);
		if (sfd < 0 || raw_pin(TOOL, sink_cpu))
			return 1;
		int big = 8 << 20;
		setsockopt(sfd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
		pthread_create(&th, NULL, sink, &sfd);
		usleep((useconds_t)(seconds * 1e6));
		atomic_store(&sink_stop, 1);
		pthread_join(th, NULL);
		printf("sink on %s received %.1f MB\n", sink_at,
		       (double)atomic_load(&sink_bytes) / 1e6);
		return 0;
	}
	if (dest) {
		if (parse_ipv4_port(dest, &to))
			return 2;
	} else {
		to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sfd = raw_udp_socket(TOOL, &to, 1);
		if (sfd < 0)
			return 1;
		int big = 8 << 20;
		setsockopt(sfd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
		pthread_create(&th, NULL, sink, &sfd);
		if (sink_cpu >= 0) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(sink_cpu, &set);
			pthread_setaffinity_np(th, sizeof(set), &set);
		}
	}
	if (raw_pin(TOOL, cpu)) /* this thread: the sink has its own CPU */
		return 1;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, TOOL ": socket: %s\n", strerror(errno));
		return 1;
	}
	printf("%s: %llu-byte sends of %llu-byte datagrams to %s, %llu in flight, %.1f s a mode\n",
	       TOOL, (unsigned long long)bytes, (unsigned long long)seg,
	       dest ? dest : "a sink on 127.0.0.1", (unsigned long long)inflight, seconds);
	printf("%-10s %12s %10s %14s %14s\n", "mode", "sends/s", "Gbit/s", "notifications",
	       "of them copied");
	int status = 0;
	for (int zc = 0; zc < 2; zc++) {
		struct result r;
		if (run(fd, &to, zc, bytes, (uint16_t)seg, (unsigned)inflight, seconds, &r)) {
			status = 1;
			continue;
		}
		printf("%-10s %12.0f %10.2f", zc ? "sendmsg_zc" : "sendmsg", r.sends_per_s,
		       r.gbit_per_s);
		if (zc)
			printf(" %14llu %14llu\n", (unsigned long long)r.notifs,
			       (unsigned long long)r.copied);
		else
			printf(" %14s %14s\n", "-", "-");
	}
	if (sfd >= 0) {
		atomic_store(&sink_stop, 1);
		pthread_join(th, NULL);
		printf("sink received %.1f MB\n", (double)atomic_load(&sink_bytes) / 1e6);
	}
	return status;
}
