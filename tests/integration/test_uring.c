/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Real sockets on 127.0.0.1: two processes over uring-udp and uring-tcp,
 * and the error cases of the io_uring drivers (peer not listening, port in
 * use, unresolvable host, connection reset mid-message, reconnect).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/tcp.h>

#include "../helpers.h"
#include "driver.h"
#include "engine/pool.h"
#include "uring/ring.h"

#include "two_processes.h"

static warp_engine_t *sock_engine(const char *drv, const char *name)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	cfg.max_payload_bytes = 1u << 20;
	cfg.tx_arena_bytes = cfg.rx_arena_bytes = 16u << 20;
	if (warp_config_add_transport(&cfg, drv, "127.0.0.1:0", NULL))
		return NULL;
	warp_engine_t *e = NULL;
	if (warp_engine_create(&cfg, &e))
		return NULL;
	return e;
}

static void two_processes(const char *drv)
{
	two_processes_with(drv, sock_engine);
}

Test(uring_udp, two_processes_100k_messages_byte_exact, .timeout = 120)
{
	two_processes("uring-udp");
}

Test(uring_tcp, two_processes_100k_messages_byte_exact, .timeout = 120)
{
	two_processes("uring-tcp");
}

/* ---- errors ------------------------------------------------------------------ */

static void port_in_use(const char *drv)
{
	warp_engine_t *a = sock_engine(drv, "a");
	cr_assert_not_null(a);
	char addr[160];
	cr_assert_eq(warp_engine_local_addr(a, 0, addr, sizeof(addr)), 0);
	warp_config_t cfg;
	warp_config_init(&cfg);
	strcpy(cfg.node_id, "b");
	warp_config_add_transport(&cfg, drv, addr, NULL);
	warp_engine_t *b = NULL;
	cr_assert_eq(warp_engine_create(&cfg, &b), WARP_EDRIVER);
	cr_assert(strstr(warp_errdetail(), "port in use"), "%s", warp_errdetail());
	cr_assert(strstr(warp_errdetail(), addr), "names the address: %s", warp_errdetail());
	warp_engine_destroy(a);
}

/* The TCP driver takes SQEs one at a time, and a linked pair to connect.
 * When the SQ lacks room, what is queued is submitted first; a pair is
 * never cut. It used to take the first SQE of a pair and leave it
 * unprepared when the second was missing (the next submit sent whatever it
 * held before), and a receive that found no SQE was never armed again. */
Test(uring_ring, a_full_sq_is_submitted_to_make_room)
{
	struct warp__uring r;
	cr_assert_eq(warp__uring_init(&r, WARP_TRANSPORT_URING_PLAIN, 4, 8), 0, "%s",
		     warp_errdetail());
	for (int i = 0; i < 3; i++) {
		struct io_uring_sqe *q = io_uring_get_sqe(&r.ring);
		cr_assert_not_null(q);
		io_uring_prep_nop(q);
		io_uring_sqe_set_data64(q, (uint64_t)i);
	}
	cr_assert_eq(io_uring_sq_space_left(&r.ring), 1);
	cr_assert(warp__uring_sq_room(&r, 1));
	cr_assert_eq(io_uring_sq_space_left(&r.ring), 1, "room already: nothing submitted");
	cr_assert(warp__uring_sq_room(&r, 2));
	cr_assert_eq(io_uring_sq_space_left(&r.ring), 4, "the queued ones went in first");
	struct io_uring_cqe *cqe;
	for (uint64_t i = 0; i < 3; i++) {
		cr_assert_eq(io_uring_wait_cqe(&r.ring, &cqe), 0);
		cr_assert_eq(cqe->user_data, i, "queued SQE %llu completed in order",
			     (unsigned long long)i);
		io_uring_cqe_seen(&r.ring, cqe);
	}
	cr_assert_not(warp__uring_sq_room(&r, 5), "more than the SQ holds");
	cr_assert_eq(io_uring_sq_space_left(&r.ring), 4, "and nothing taken");
	warp__uring_exit(&r);
}

Test(uring_udp, port_in_use_is_a_clear_error) { port_in_use("uring-udp"); }
Test(uring_tcp, port_in_use_is_a_clear_error) { port_in_use("uring-tcp"); }

/* SO_REUSEPORT (reuseport = yes): two engines listen on one port, and the
 * kernel hands each sender's datagrams to one of them (by a hash of the
 * sender's address). 64 senders of 4 datagrams each: the chance that all
 * hash to one engine is 2^-63. The datagrams are not warp packets: each
 * is received, counted and dropped by the engine it reached. */
Test(uring_udp, reuseport_lets_two_engines_share_a_port)
{
	enum { SENDERS = 64, EACH = 4 };
	warp_engine_t *e[2];
	char addr[160] = "127.0.0.1:0";
	for (int i = 0; i < 2; i++) {
		warp_config_t cfg;
		warp_config_init(&cfg);
		strcpy(cfg.node_id, "srv");
		cr_assert_eq(warp_config_add_transport(&cfg, "uring-udp", addr, NULL), 0);
		cfg.transports[0].flags |= WARP_TRANSPORT_REUSEPORT;
		cr_assert_eq(warp_engine_create(&cfg, &e[i]), 0, "engine %d on %s: %s", i, addr,
			     warp_errdetail());
		if (i == 0)
			cr_assert_eq(warp_engine_local_addr(e[0], 0, addr, sizeof(addr)), 0);
	}
	char other[160];
	cr_assert_eq(warp_engine_local_addr(e[1], 0, other, sizeof(other)), 0);
	cr_assert_str_eq(other, addr, "both on one port");
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1)) };
	for (int k = 0; k < SENDERS; k++) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		cr_assert_geq(fd, 0);
		for (int j = 0; j < EACH; j++)
			cr_assert_eq(sendto(fd, "not a warp packet", 17, 0, (struct sockaddr *)&to,
					    sizeof(to)),
				     17);
		close(fd);
	}
	warp_stats_t st[2];
	for (int r = 0; r < 2000000; r++) {
		warp_engine_poll(e[0]);
		warp_engine_poll(e[1]);
		warp_engine_stats(e[0], &st[0]);
		warp_engine_stats(e[1], &st[1]);
		if (st[0].rx_packets + st[1].rx_packets >= SENDERS * EACH)
			break;
	}
	cr_assert_eq(st[0].rx_packets + st[1].rx_packets, SENDERS * EACH, "%llu + %llu received",
		     (unsigned long long)st[0].rx_packets, (unsigned long long)st[1].rx_packets);
	for (int i = 0; i < 2; i++) {
		cr_assert_gt(st[i].rx_packets, 0, "engine %d got none: the port is not shared", i);
		cr_assert_eq(st[i].rx_packets % EACH, 0, "a sender's datagrams go to one engine");
		cr_assert_eq(st[i].drops, st[i].rx_packets, "each one dropped and counted");
		warp_engine_destroy(e[i]);
	}
}

static void unresolvable(const char *drv)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	strcpy(cfg.node_id, "a");
	warp_config_add_transport(&cfg, drv, "no-such-host.invalid:7000", NULL);
	warp_engine_t *e = NULL;
	cr_assert_eq(warp_engine_create(&cfg, &e), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "not resolvable"), "%s", warp_errdetail());
	cr_assert(strstr(warp_errdetail(), "no-such-host.invalid"), "%s", warp_errdetail());
	e = sock_engine(drv, "a");
	cr_assert_not_null(e);
	cr_assert_eq(warp_peer_add(e, "b@no-such-host.invalid:7000", NULL), WARP_EINVALID_NODE);
	cr_assert(strstr(warp_errdetail(), "not resolvable"), "%s", warp_errdetail());
	cr_assert_eq(warp_peer_add(e, "b@127.0.0.1:99999", NULL), WARP_EINVALID_NODE);
	cr_assert(strstr(warp_errdetail(), "port"), "%s", warp_errdetail());
	cr_assert_eq(warp_peer_add(e, "b@[::1]:7000", NULL), WARP_EINVALID_NODE,
		     "IPv6 peer on an IPv4 transport");
	warp_engine_destroy(e);
}

Test(uring_udp, unresolvable_host_is_a_clear_error) { unresolvable("uring-udp"); }
Test(uring_tcp, unresolvable_host_is_a_clear_error) { unresolvable("uring-tcp"); }

/* A port on 127.0.0.1 nobody listens on. */
static int dead_port(int type)
{
	int fd = socket(AF_INET, type, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	bind(fd, (struct sockaddr *)&sa, sl);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	return ntohs(sa.sin_port);
}

Test(uring_tcp, peer_not_listening_is_counted_and_named)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.connect_timeout_ns = 200000000;
	cfg.retry_initial_backoff_ns = 1000000;
	cfg.retry_max_backoff_ns = 4000000;
	strcpy(cfg.node_id, "a");
	warp_config_add_transport(&cfg, "uring-tcp", "127.0.0.1:0", NULL);
	warp_engine_t *e;
	cr_assert_eq(warp_engine_create(&cfg, &e), 0);
	char id[64];
	int port = dead_port(SOCK_STREAM);
	snprintf(id, sizeof(id), "b@127.0.0.1:%d", port);
	warp_peer_t *p;
	cr_assert_eq(warp_peer_add(e, id, &p), 0);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(e, p, 1, 16, &s), 0);
	warp_stats_t st = { 0 };
	uint64_t t0 = warp_engine_now(e);
	for (int i = 0; st.drv_connect_failures < 3 && warp_engine_now(e) - t0 < 5000000000ull;
	     i++) {
		if (i % 1000 == 0)
			cr_assert_eq(th_send(e, s, 100, NULL), 0, "sends are accepted while connecting");
		warp_engine_poll(e);
		warp_engine_stats(e, &st);
	}
	cr_assert_geq(st.drv_connect_failures, 3, "it keeps retrying with back-off");
	char err[160];
	cr_assert_eq(warp_engine_transport_error(e, 0, err, sizeof(err)), 0);
	char want[64];
	snprintf(want, sizeof(want), "connect 127.0.0.1:%d: Connection refused", port);
	cr_assert_str_eq(err, want);
	warp_engine_destroy(e);

	/* with retry_max_attempts the policy gives up, and says so */
	cfg.retry_max_attempts = 2;
	cr_assert_eq(warp_engine_create(&cfg, &e), 0);
	cr_assert_eq(warp_peer_add(e, id, &p), 0);
	cr_assert_eq(warp_stream_open(e, p, 1, 16, &s), 0);
	t0 = warp_engine_now(e);
	memset(&st, 0, sizeof(st));
	err[0] = '\0';
	/* until it gives up (a deadline only against hanging), then a while
	 * longer to see that no attempt follows */
	for (int i = 0; !strstr(err, "gave up") && warp_engine_now(e) - t0 < 10000000000ull; i++) {
		if (i % 1000 == 0)
			th_send(e, s, 100, NULL);
		warp_engine_poll(e);
		warp_engine_transport_error(e, 0, err, sizeof(err));
	}
	for (int i = 0; i < 20000; i++) {
		if (i % 1000 == 0)
			th_send(e, s, 100, NULL);
		warp_engine_poll(e);
	}
	warp_engine_stats(e, &st);
	cr_assert_eq(st.drv_connect_failures, 2, "exactly max_attempts, not %llu",
		     (unsigned long long)st.drv_connect_failures);
	warp_engine_transport_error(e, 0, err, sizeof(err));
	cr_assert_str_eq(err, "connect: gave up after 2 attempts");
	warp_engine_destroy(e);
}

/* Engine "a" on uring-tcp (back-off 1-4 ms, `max_attempts`, and
 * `connect_timeout_ns` unless 0) with peer b at 127.0.0.1:port and its
 * stream 1 in *s. */
static warp_engine_t *tcp_engine_to(int port, uint32_t max_attempts, uint64_t connect_timeout_ns,
				    warp_stream_t **s)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	if (connect_timeout_ns)
		cfg.connect_timeout_ns = connect_timeout_ns;
	cfg.retry_initial_backoff_ns = 1000000;
	cfg.retry_max_backoff_ns = 4000000;
	cfg.retry_max_attempts = max_attempts;
	strcpy(cfg.node_id, "a");
	warp_config_add_transport(&cfg, "uring-tcp", "127.0.0.1:0", NULL);
	warp_engine_t *e;
	cr_assert_eq(warp_engine_create(&cfg, &e), 0, "%s", warp_errdetail());
	char id[64];
	snprintf(id, sizeof(id), "b@127.0.0.1:%d", port);
	warp_peer_t *p;
	cr_assert_eq(warp_peer_add(e, id, &p), 0);
	cr_assert_eq(warp_stream_open(e, p, 1, 16, s), 0);
	return e;
}

/* A peer that accepts and closes at once (it refuses our hello, or has no
 * free slot, or is no warp node): each such connection is a failed attempt,
 * so the back-off grows and retry_max_attempts gives up. A connect that
 * succeeded used to reset both: the driver reconnected at once, for ever. */
Test(uring_tcp, a_peer_that_closes_at_once_is_a_failed_attempt, .timeout = 60)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sl), 0);
	cr_assert_eq(listen(lfd, 16), 0);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	warp_stream_t *s;
	warp_engine_t *e = tcp_engine_to(ntohs(sa.sin_port), 3, 0, &s);
	char err[160] = "";
	unsigned accepted = 0;
	uint64_t t0 = warp_engine_now(e);
	/* until it gives up (a deadline only against hanging), then a while
	 * longer to see that no attempt follows */
	for (int i = 0; i < 20000 || !strstr(err, "gave up"); i++) {
		if (warp_engine_now(e) - t0 > 10000000000ull)
			break;
		if (i % 1000 == 0)
			th_send(e, s, 100, NULL);
		warp_engine_poll(e);
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			accepted++;
			close(fd);
		}
		if (strstr(err, "gave up") == NULL)
			warp_engine_transport_error(e, 0, err, sizeof(err));
	}
	cr_assert_str_eq(err, "connect: gave up after 3 attempts");
	cr_assert_eq(accepted, 3, "connections: %u, one per allowed attempt", accepted);
	warp_stats_t st;
	warp_engine_stats(e, &st);
	cr_assert_eq(st.drv_connects, 3);
	cr_assert_eq(st.drv_disconnects, 3);
	warp_engine_destroy(e);
	close(lfd);
}

static uint64_t manual_now(void *arg)
{
	return *(const uint64_t *)arg;
}

/* The retry policy's schedule, on a manual clock: after the k-th refused
 * connect the next attempt waits back-off b_k = min(initial * 2^k, max),
 * jittered into [b_k / 2, b_k]. A connect is attempted when a packet is to
 * go to the peer, so a 1-byte message goes out every other step
 * (at-most-once: nothing resent; 500 of them stay within the peer's
 * window, which no acknowledgement opens here). The clock moves in 50 us steps and
 * stands still while the engine polls, so an attempt and its refusal
 * (immediate on loopback) are seen at one clock value. */
Test(uring_tcp, reconnect_attempts_back_off_exponentially_with_jitter, .timeout = 60)
{
	static uint64_t now = 1000000000ull;
	const uint64_t initial = 1000000, max = 8000000, step = 50000;
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.clock = manual_now;
	cfg.clock_arg = &now;
	cfg.retry_initial_backoff_ns = initial;
	cfg.retry_max_backoff_ns = max;
	strcpy(cfg.node_id, "a");
	warp_config_add_transport(&cfg, "uring-tcp", "127.0.0.1:0", NULL);
	warp_engine_t *e;
	cr_assert_eq(warp_engine_create(&cfg, &e), 0, "%s", warp_errdetail());
	char id[64];
	snprintf(id, sizeof(id), "b@127.0.0.1:%d", dead_port(SOCK_STREAM));
	warp_peer_t *p;
	cr_assert_eq(warp_peer_add(e, id, &p), 0);
	warp_stream_t *s;
	warp_stream_opts_t amo = { .priority = 16, .guarantee = WARP_AT_MOST_ONCE };
	cr_assert_eq(warp_stream_open_ex(e, p, 1, &amo, &s), 0);
	enum { N = 8 };
	uint64_t at[N];
	uint64_t seen = 0, t_end = now + 10000000000ull;
	while (seen < N && now < t_end) {
		warp_stats_t st;
		if ((now / step) % 2 == 0) /* small and sparse: within the peer window
					     * while no acknowledgement comes back */
			cr_assert_eq(th_send(e, s, 1, NULL), 0);
		for (int i = 0; i < 50; i++)
			warp_engine_poll(e);
		warp_engine_stats(e, &st);
		cr_assert_leq(st.drv_connect_failures, seen + 1,
			      "two attempts at one clock value (%llu)", (unsigned long long)now);
		if (st.drv_connect_failures > seen)
			at[seen++] = now;
		now += step;
	}
	cr_assert_eq(seen, N, "%llu attempts in 10 s of clock", (unsigned long long)seen);
	for (unsigned k = 1; k < N; k++) {
		uint64_t b = initial << k < max ? initial << k : max;
		uint64_t gap = at[k] - at[k - 1];
		cr_assert(gap >= b / 2 && gap <= b + 2 * step,
			  "attempt %u came %llu us after the one before; back-off %llu us, so "
			  "%llu..%llu us",
			  k + 1, (unsigned long long)gap / 1000, (unsigned long long)b / 1000,
			  (unsigned long long)b / 2000, (unsigned long long)(b + 2 * step) / 1000);
	}
	warp_engine_destroy(e);
}

/* A peer whose SYNs go unanswered: connect_timeout ends each attempt. The
 * listener's accept queue (backlog 0: one connection) is full with a
 * connection nobody accepts, so the kernel drops every further SYN. */
Test(uring_tcp, a_connect_that_gets_no_answer_ends_at_connect_timeout, .timeout = 60)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	cr_assert_eq(bind(l, (struct sockaddr *)&sa, sl), 0);
	cr_assert_eq(listen(l, 0), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	int filler = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(filler, (struct sockaddr *)&sa, sl), 0, "%s", strerror(errno));

	warp_stream_t *s;
	warp_engine_t *e = tcp_engine_to(ntohs(sa.sin_port), 0, 100000000, &s);
	cr_assert_eq(th_send(e, s, 100, NULL), 0);
	warp_stats_t st = { 0 };
	uint64_t t0 = warp_engine_now(e);
	while (st.drv_connect_failures < 2 && warp_engine_now(e) - t0 < 20000000000ull) {
		warp_engine_poll(e);
		warp_engine_stats(e, &st);
	}
	cr_assert_geq(st.drv_connect_failures, 2, "two attempts timed out (%llu)",
		      (unsigned long long)st.drv_connect_failures);
	cr_assert_eq(st.drv_connects, 0, "nothing connected");
	char err[160], want[96];
	cr_assert_eq(warp_engine_transport_error(e, 0, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "connect 127.0.0.1:%d: %s", ntohs(sa.sin_port),
		 strerror(ETIMEDOUT));
	cr_assert_str_eq(err, want);
	warp_engine_destroy(e);
	close(filler);
	close(l);
}

Test(uring_udp, peer_not_listening_does_not_break_the_engine)
{
	warp_engine_t *e = sock_engine("uring-udp", "a");
	cr_assert_not_null(e);
	char id[64];
	snprintf(id, sizeof(id), "b@127.0.0.1:%d", dead_port(SOCK_DGRAM));
	warp_peer_t *p;
	cr_assert_eq(warp_peer_add(e, id, &p), 0);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(e, p, 1, 16, &s), 0);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(th_send(e, s, 100, NULL), 0);
		for (int k = 0; k < 50; k++)
			warp_engine_poll(e);
	}
	warp_stats_t st;
	warp_engine_stats(e, &st);
	/* An unconnected UDP socket gets no error for a peer that does not
	 * listen (the ICMP port-unreachable is not reported to it): every
	 * packet leaves, none comes back. Noticing a silent peer is the job of
	 * heartbeats and acknowledgements (reliability issue). */
	cr_assert_eq(st.tx_packets, 100);
	cr_assert_eq(st.rx_packets, 0);
	cr_assert_eq(st.drv_tx_errors, 0);
	warp_engine_destroy(e);
}

/* The 20 bytes an outbound uring-tcp connection starts with (drivers/uring/tcp.c). */
static void tcp_hello(int fd, uint16_t listen_port, uint8_t version)
{
	uint8_t h[20] = { 0, 0, 'W', 'T', 'C', 'P', version, 0, (uint8_t)(listen_port >> 8),
			  (uint8_t)listen_port };
	for (int k = 0; k < 8; k++)
		h[12 + k] = (uint8_t)(0x1122334455667788ull >> (56 - 8 * k));
	cr_assert_eq(write(fd, h, sizeof(h)), (ssize_t)sizeof(h));
}

/* A plain TCP socket connected to e's uring-tcp port. */
static int raw_connect(warp_engine_t *e)
{
	char addr[160];
	cr_assert_eq(warp_engine_local_addr(e, 0, addr, sizeof(addr)), 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	sa.sin_port = htons((uint16_t)atoi(strchr(addr, ':') + 1));
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Poll e until its drv_rx_errors reaches n; then it is n and the transport's
 * last error says `want`. */
static void rx_errors_reach(warp_engine_t *e, uint64_t n, const char *want)
{
	warp_stats_t st = { 0 };
	for (int k = 0; k < 200000 && st.drv_rx_errors < n; k++) {
		warp_engine_poll(e);
		warp_engine_stats(e, &st);
	}
	cr_assert_eq(st.drv_rx_errors, n);
	char err[256];
	warp_engine_transport_error(e, 0, err, sizeof(err));
	cr_assert(strstr(err, want), "%s", err);
}

Test(uring_tcp, reset_mid_message_and_garbage_are_survived)
{
	warp_engine_t *e = sock_engine("uring-tcp", "a");
	cr_assert_not_null(e);
	struct th_log log;
	th_log_init(&log);
	warp_engine_set_recv(e, th_recv, &log);
	cr_assert_eq(warp_peer_add(e, "b@127.0.0.1:1", NULL), 0);

	/* 1: half a packet, then a reset */
	int fd = raw_connect(e);
	tcp_hello(fd, 1, 1);
	uint8_t half[52] = { 0, 100 }; /* announces 100 bytes, carries 50 */
	cr_assert_eq(write(fd, half, sizeof(half)), (ssize_t)sizeof(half));
	for (int k = 0; k < 2000; k++)
		warp_engine_poll(e);
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd); /* RST */
	warp_stats_t st = { 0 };
	for (int k = 0; k < 200000 && st.drv_disconnects < 1; k++) {
		warp_engine_poll(e);
		warp_engine_stats(e, &st);
	}
	cr_assert_eq(st.drv_disconnects, 1);
	cr_assert_eq(st.drv_rx_truncated, 1, "the cut packet is counted");

	/* 2: a length prefix no warp stream can carry */
	fd = raw_connect(e);
	tcp_hello(fd, 1, 1);
	uint8_t bad[4] = { 0xff, 0xff, 1, 2 };
	cr_assert_eq(write(fd, bad, sizeof(bad)), 4);
	rx_errors_reach(e, 1, "bad length prefix 65535");
	close(fd);
	/* 3: a well-framed packet of garbage is dropped by the parser */
	fd = raw_connect(e);
	tcp_hello(fd, 1, 1);
	uint8_t junk[2 + 40] = { 0, 40 };
	memset(junk + 2, 0xab, 40);
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	for (int k = 0; k < 200000 && st.drop[WARP_DROP_BAD_MAGIC] < 1; k++) {
		warp_engine_poll(e);
		warp_engine_stats(e, &st);
	}
	cr_assert_eq(st.drop[WARP_DROP_BAD_MAGIC], 1);
	cr_assert_eq(log.n, 0);
	close(fd);
	warp_engine_destroy(e);
	free(log.rx);
}

/* A connection that does not start with the hello is closed and named:
 * something that is not warp (an HTTP client), or a hello of another version. */
static void bad_start(const void *first, size_t len, const char *want)
{
	warp_engine_t *e = sock_engine("uring-tcp", "a");
	cr_assert_not_null(e);
	int fd = raw_connect(e);
	if (first)
		cr_assert_eq(write(fd, first, len), (ssize_t)len);
	else
		tcp_hello(fd, 7000, 9);
	rx_errors_reach(e, 1, want);
	rx_errors_reach(e, 1, "connection from 127.0.0.1:"); /* names the connection */
	char b;
	for (int k = 0; k < 1000; k++)
		warp_engine_poll(e);
	cr_assert_eq(read(fd, &b, 1), 0, "the engine closed the connection");
	close(fd);
	warp_engine_destroy(e);
}

Test(uring_tcp, a_connection_without_the_hello_is_closed_and_named)
{
	const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	bad_start(get, sizeof(get) - 1, "did not start with warp's TCP hello");
}

Test(uring_tcp, a_hello_of_another_version_is_closed_and_named)
{
	bad_start(NULL, 0, "TCP hello version 9, this build speaks 1");
}

/* Connected TCP sockets of this process (both engines' ends): bytes each
 * sent (acknowledged) and received. */
struct tcp_end {
	uint64_t sent, received;
	int nodelay; /* TCP_NODELAY */
	int rcvbuf;  /* SO_RCVBUF */
};

static size_t tcp_ends(struct tcp_end *out, size_t cap)
{
	size_t n = 0;
	for (int fd = 0; fd < 1024 && n < cap; fd++) {
		int type = 0, listening = 0;
		socklen_t l = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) || type != SOCK_STREAM)
			continue;
		l = sizeof(listening);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) || listening)
			continue;
		struct tcp_info ti;
		l = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) || ti.tcpi_state != 1 /* TCP_ESTABLISHED */)
			continue;
		out[n].sent = ti.tcpi_bytes_acked;
		out[n].received = ti.tcpi_bytes_received;
		l = sizeof(out[n].nodelay);
		if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &out[n].nodelay, &l))
			out[n].nodelay = -1;
		l = sizeof(out[n].rcvbuf);
		if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &out[n].rcvbuf, &l))
			out[n].rcvbuf = -1;
		n++;
	}
	return n;
}

/* Two uring-tcp engines on loopback that log what they receive; a has b
 * as a peer, b gets a with tcp_pair_link_b (when the test says). */
struct tcp_pair {
	warp_engine_t *a, *b;
	struct th_log la, lb;
	warp_stream_t *sa, *sb;
};

static void tcp_pair_up(struct tcp_pair *p)
{
	p->a = sock_engine("uring-tcp", "a");
	p->b = sock_engine("uring-tcp", "b");
	cr_assert(p->a && p->b);
	th_log_init(&p->la);
	th_log_init(&p->lb);
	warp_engine_set_recv(p->a, th_recv, &p->la);
	warp_engine_set_recv(p->b, th_recv, &p->lb);
	cr_assert_eq(warp_stream_open(p->a, th_link(p->a, p->b), 1, 16, &p->sa), 0);
}

static void tcp_pair_link_b(struct tcp_pair *p)
{
	cr_assert_eq(warp_stream_open(p->b, th_link(p->b, p->a), 1, 16, &p->sb), 0);
}

static void tcp_pair_down(struct tcp_pair *p)
{
	warp_engine_destroy(p->a);
	warp_engine_destroy(p->b);
	free(p->la.rx);
	free(p->lb.rx);
}

/* a and b exchange 3 x 100 messages of 1000 bytes each way. Then every TCP
 * end that carried the bulk must have carried it both ways: one connection
 * in both directions (with one per direction, each end is one-way). Returns
 * the number of established TCP ends. */
static size_t one_connection_both_ways(struct tcp_pair *p)
{
	warp_engine_t *es[2] = { p->a, p->b };
	for (int r = 0; r < 3; r++) {
		size_t want_a = p->la.n + 100, want_b = p->lb.n + 100;
		for (int k = 0; k < 100; k++) {
			cr_assert_eq(th_send(p->a, p->sa, 1000, NULL), 0);
			cr_assert_eq(th_send(p->b, p->sb, 1000, NULL), 0);
		}
		cr_assert(th_pump(es, 2, &p->lb.n, want_b, 2000000));
		cr_assert(th_pump(es, 2, &p->la.n, want_a, 2000000));
	}
	cr_assert_eq(p->la.bad + p->lb.bad, 0);
	struct tcp_end ends[16];
	size_t n = tcp_ends(ends, 16), busy = 0;
	for (size_t i = 0; i < n; i++) {
		bool out = ends[i].sent >= 200000, in = ends[i].received >= 200000;
		cr_assert_eq(out, in, "a TCP end sent %llu bytes and received %llu: the pair uses "
				      "one connection per direction",
			     (unsigned long long)ends[i].sent, (unsigned long long)ends[i].received);
		busy += out;
		/* small messages go out at once, on the connecting end and on
		 * the accepted one */
		cr_assert_eq(ends[i].nodelay, 1, "TCP end %zu of %zu: TCP_NODELAY is %d", i, n,
			     ends[i].nodelay);
	}
	cr_assert_eq(busy, 2, "both ends of one connection carry the traffic (%zu did)", busy);
	return n;
}

Test(uring_tcp, a_peer_answers_on_the_connection_it_was_reached_by)
{
	struct tcp_pair p;
	tcp_pair_up(&p);
	/* a connects first; b learns of a only once that connection is up, so
	 * b never needs a connection of its own */
	warp_engine_t *es[2] = { p.a, p.b };
	cr_assert_eq(th_send(p.a, p.sa, 10, NULL), 0);
	warp_stats_t st[2] = { 0 };
	for (int k = 0; k < 2000000 && st[1].rx_packets == 0; k++) {
		th_run(es, 2, 1, 0);
		warp_engine_stats(p.b, &st[1]);
	}
	cr_assert_gt(st[1].rx_packets, 0, "a's handshake reached b");
	tcp_pair_link_b(&p);
	cr_assert(th_pump(es, 2, &p.lb.n, 1, 2000000));
	size_t n = one_connection_both_ways(&p);
	cr_assert_eq(n, 2, "one connection: %zu established TCP ends", n);
	warp_engine_stats(p.a, &st[0]);
	warp_engine_stats(p.b, &st[1]);
	cr_assert_eq(st[0].drv_connects + st[1].drv_connects, 2, "a connected, b accepted");
	tcp_pair_down(&p);
}

Test(uring_tcp, engines_that_connect_at_once_settle_on_one_connection)
{
	struct tcp_pair p;
	tcp_pair_up(&p);
	tcp_pair_link_b(&p);
	/* both send before either polls: each opens a connection to the other
	 * (as when both start at once: each side's handshake goes out at once) */
	cr_assert_eq(th_send(p.a, p.sa, 10, NULL), 0);
	cr_assert_eq(th_send(p.b, p.sb, 10, NULL), 0);
	warp_engine_poll(p.a);
	warp_engine_poll(p.b);
	warp_engine_t *es[2] = { p.a, p.b };
	cr_assert(th_pump(es, 2, &p.lb.n, 1, 2000000));
	cr_assert(th_pump(es, 2, &p.la.n, 1, 2000000));
	size_t n = one_connection_both_ways(&p);
	cr_assert_eq(n, 4, "two connections were opened (%zu established TCP ends)", n);
	tcp_pair_down(&p);
}

/* A uring-tcp engine with small socket buffers (so that a peer that stops
 * reading fills its connection soon). */
static warp_engine_t *tcp_small_bufs(const char *name)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	cfg.max_payload_bytes = 1u << 20;
	cfg.tx_arena_bytes = cfg.rx_arena_bytes = 16u << 20;
	cr_assert_eq(warp_config_add_transport(&cfg, "uring-tcp", "127.0.0.1:0", NULL), 0);
	cfg.transports[0].sock_buf_bytes = 64u << 10;
	/* no congestion window: a's data for b fills the connection at once
	 * (an AIMD window grown over a fast link does the same, later) */
	strcpy(cfg.congestion, "none");
	warp_engine_t *e = NULL;
	cr_assert_eq(warp_engine_create(&cfg, &e), 0, "%s", warp_errdetail());
	return e;
}

/* b stops reading: its connection from a fills (kernel buffers, then a's
 * own), and the driver refuses a's packets for b. a's traffic to c over the
 * same transport goes on; once b reads again, it gets what a accepted. */
Test(uring_tcp, a_peer_that_stops_reading_does_not_hold_up_the_others, .timeout = 60)
{
	warp_engine_t *a = tcp_small_bufs("a"), *b = tcp_small_bufs("b"), *c = tcp_small_bufs("c");
	warp_peer_t *ab = th_link(a, b), *ac = th_link(a, c);
	warp_peer_t *ps[4] = { ab, ac, th_link(b, a), th_link(c, a) };
	warp_engine_t *es[3] = { a, b, c };
	th_up(es, 3, ps, 4);
	struct tcp_end ends[16];
	size_t nends = tcp_ends(ends, 16);
	cr_assert_geq(nends, 4, "a-b and a-c connected");
	for (size_t i = 0; i < nends; i++) /* the kernel doubles what it is given */
		cr_assert_eq(ends[i].rcvbuf, 128 << 10, "TCP end %zu: SO_RCVBUF %d, sock_buf_bytes "
							"64K", i, ends[i].rcvbuf);
	struct th_log lb, lc;
	th_log_init(&lb);
	th_log_init(&lc);
	warp_engine_set_recv(b, th_recv, &lb);
	warp_engine_set_recv(c, th_recv, &lc);
	warp_stream_t *sb, *sc;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &sb), 0);
	cr_assert_eq(warp_stream_open(a, ac, 1, 16, &sc), 0);

	/* b is not polled from here on: first fill its connection */
	warp_engine_t *live[2] = { a, c };
	size_t to_b = 0, to_c = 0;
	warp_stats_t st;
	uint64_t end = th_mono_ns() + 10000000000ull;
	do {
		if (to_b < 100 && th_send(a, sb, 64u << 10, NULL) == 0)
			to_b++;
		th_run(live, 2, 1, 0);
		warp_engine_stats(a, &st);
	} while (st.tx_driver_full < 100 && th_mono_ns() < end);
	cr_assert_geq(st.tx_driver_full, 100, "b's connection never filled (%zu messages sent to b)",
		      to_b);
	/* then a sends to c, while its packets for b are still refused */
	const size_t n = 500;
	while (lc.n < n && th_mono_ns() < end) {
		if (to_c < n && th_send(a, sc, 1000, NULL) == 0)
			to_c++;
		th_run(live, 2, 1, 0);
	}
	warp_stats_t st2;
	warp_engine_stats(a, &st2);
	cr_assert_gt(st2.tx_driver_full, st.tx_driver_full, "b's packets were still refused");
	cr_assert_eq(lc.n, n, "c received %zu of %zu while b read nothing", lc.n, n);
	cr_assert_eq(lc.bad, 0);
	cr_assert_eq(lb.n, 0);

	/* b reads again and gets everything a accepted for it */
	cr_assert(th_pump(es, 3, &lb.n, to_b, 20000000), "b got %zu of %zu", lb.n, to_b);
	cr_assert_eq(lb.bad, 0);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	warp_engine_destroy(c);
	free(lb.rx);
	free(lc.rx);
}

Test(uring_tcp, reconnects_after_the_peer_restarts)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.retry_initial_backoff_ns = 1000000;
	cfg.retry_max_backoff_ns = 20000000;
	strcpy(cfg.node_id, "a");
	warp_config_add_transport(&cfg, "uring-tcp", "127.0.0.1:0", NULL);
	warp_engine_t *a;
	cr_assert_eq(warp_engine_create(&cfg, &a), 0);
	warp_engine_t *b = sock_engine("uring-tcp", "b");
	struct th_log lb;
	th_log_init(&lb);
	warp_engine_set_recv(b, th_recv, &lb);
	char baddr[160];
	warp_engine_local_addr(b, 0, baddr, sizeof(baddr));
	warp_peer_t *ab = th_link(a, b);
	th_link(b, a);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &s), 0);
	warp_engine_t *es[2] = { a, b };
	cr_assert_eq(th_send(a, s, 1000, NULL), 0);
	cr_assert(th_pump(es, 2, &lb.n, 1, 1000000));

	/* b goes away and comes back on the same address */
	warp_engine_destroy(b);
	warp_config_t cb;
	warp_config_init(&cb);
	strcpy(cb.node_id, "b");
	warp_config_add_transport(&cb, "uring-tcp", baddr, NULL);
	cr_assert_eq(warp_engine_create(&cb, &b), 0, "%s", warp_errdetail());
	lb.n = 0;
	warp_engine_set_recv(b, th_recv, &lb);
	th_link(b, a);
	es[1] = b;
	/* messages sent while the connection is re-established get through
	 * once it is (or are counted as lost on the broken connection) */
	warp_stats_t st = { 0 };
	uint64_t t0 = warp_engine_now(a);
	while (lb.n == 0 && warp_engine_now(a) - t0 < 5000000000ull) {
		cr_assert_eq(th_send(a, s, 1000, NULL), 0);
		size_t never = 0;
		th_pump(es, 2, &never, 1, 2000);
	}
	cr_assert_gt(lb.n, 0, "messages flow again after the peer restarted");
	warp_engine_stats(a, &st);
	cr_assert_geq(st.drv_connects, 2, "a reconnected");
	cr_assert_geq(st.drv_disconnects, 1);
	cr_assert_eq(lb.bad, 0);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	free(lb.rx);
}

static bool have_ipv6_loopback(void)
{
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void ipv6(const char *drv)
{
	if (!have_ipv6_loopback()) {
		cr_skip_test("no IPv6 loopback (::1) on this machine");
		return;
	}
	warp_engine_t *e[2];
	struct th_log log;
	th_log_init(&log);
	for (int i = 0; i < 2; i++) {
		warp_config_t cfg;
		warp_config_init(&cfg);
		snprintf(cfg.node_id, sizeof(cfg.node_id), "v6-%d", i);
		warp_config_add_transport(&cfg, drv, "[::1]:0", NULL);
		cr_assert_eq(warp_engine_create(&cfg, &e[i]), 0, "%s", warp_errdetail());
	}
	char addr[160];
	warp_engine_local_addr(e[1], 0, addr, sizeof(addr));
	cr_assert_eq(strncmp(addr, "[::1]:", 6), 0, "%s", addr);
	warp_peer_t *p = th_link(e[0], e[1]);
	th_link(e[1], e[0]);
	warp_engine_set_recv(e[1], th_recv, &log);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(e[0], p, 1, 16, &s), 0);
	cr_assert_eq(th_send(e[0], s, 5000, NULL), 0);
	cr_assert(th_pump(e, 2, &log.n, 1, 1000000));
	cr_assert(log.rx[0].ok);
	warp_engine_destroy(e[0]);
	warp_engine_destroy(e[1]);
	free(log.rx);
}

Test(uring_udp, ipv6_loopback) { ipv6("uring-udp"); }
Test(uring_tcp, ipv6_loopback) { ipv6("uring-tcp"); }

/* A started engine in the back-off idle strategy sleeps in the kernel
 * (io_uring wait with timeout) and still wakes for a packet. */
static void idle_wakeup(const char *drv)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.idle.kind = WARP_IDLE_BACKOFF;
	cfg.idle.spins = 10;
	cfg.idle.yields = 10;
	cfg.idle.max_sleep_ns = 50000000; /* long sleeps: only a wakeup is quick */
	strcpy(cfg.node_id, "sleeper");
	warp_config_add_transport(&cfg, drv, "127.0.0.1:0", NULL);
	warp_engine_t *b;
	cr_assert_eq(warp_engine_create(&cfg, &b), 0);
	warp_engine_t *a = sock_engine(drv, "a");
	warp_peer_t *ab = th_link(a, b);
	th_link(b, a);
	warp_channel_t *rx;
	cr_assert_eq(warp_channel_open(b, WARP_CHANNEL_RECV, &rx), 0);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &s), 0);
	cr_assert_eq(warp_engine_start(b), 0);
	usleep(200000); /* b is asleep in the kernel now */
	warp_stats_t before;
	warp_engine_stats(b, &before);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(th_send(a, s, 100, NULL), 0);
		size_t got = 0;
		warp_msg_t m;
		for (int k = 0; k < 5000000 && !got; k++) {
			warp_engine_poll(a);
			got = (size_t)warp_channel_recv_burst(rx, &m, 1);
		}
		warp_stats_t sb, sa;
		warp_engine_stats(b, &sb);
		warp_engine_stats(a, &sa);
		cr_assert_eq(got, 1,
			     "message %d woke the sleeping engine (a: tx %llu; b: polls %llu rx %llu "
			     "delivered %llu rearms %llu)",
			     i, (unsigned long long)sa.tx_packets, (unsigned long long)sb.polls,
			     (unsigned long long)sb.rx_packets, (unsigned long long)sb.msgs_delivered,
			     (unsigned long long)sb.drv_rx_rearms);
		cr_assert(th_check(m.data, m.len, th_seed(1, m.msg_id, m.len)));
		warp_channel_recv_done(rx);
	}
	warp_stats_t after;
	warp_engine_stats(b, &after);
	/* it slept in the kernel (not a timing: the back-off reached its sleeps) */
	cr_assert_gt(after.idle_waits, 0);
	cr_assert_eq(warp_engine_stop(b), 0);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
}

Test(uring_udp, idle_engine_sleeps_in_the_kernel_and_wakes_for_a_packet)
{
	idle_wakeup("uring-udp");
}
Test(uring_tcp, idle_engine_sleeps_in_the_kernel_and_wakes_for_a_packet)
{
	idle_wakeup("uring-tcp");
}

/* An engine with two transports (uring-udp and uring-tcp) sleeps on both at
 * once and wakes for a packet on either, and for warp_engine_stop. The test
 * waits until it is asleep before each of 4 messages; an engine that slept
 * blind would hold the first for 10 minutes. */
static void link_by(warp_engine_t *from, const char *drv, warp_engine_t *to, unsigned tp)
{
	warp_peer_config_t pc;
	memset(&pc, 0, sizeof(pc));
	snprintf(pc.node, sizeof(pc.node), "%s", warp_engine_node_id(to));
	snprintf(pc.transports[0].driver, sizeof(pc.transports[0].driver), "%s", drv);
	cr_assert_eq(warp_engine_local_addr(to, tp, pc.transports[0].addr,
					    sizeof(pc.transports[0].addr)),
		     0);
	pc.n_transports = 1;
	cr_assert_eq(warp_peer_add_config(from, &pc, NULL), 0, "%s", warp_errdetail());
}

/* "sleeper": the back-off idle strategy with 10-minute sleeps, reached
 * after 10 spins and 10 yields: only a wakeup ends one within a test's
 * lifetime (the Criterion timeout is a hang guard, not a measurement). */
static void sleeper_config(warp_config_t *cfg)
{
	warp_config_init(cfg);
	cfg->idle.kind = WARP_IDLE_BACKOFF;
	cfg->idle.spins = 10;
	cfg->idle.yields = 10;
	cfg->idle.min_sleep_ns = cfg->idle.max_sleep_ns = 600000000000ull;
	strcpy(cfg->node_id, "sleeper");
}

Test(uring_udp, idle_engine_with_udp_and_tcp_wakes_for_either, .timeout = 60)
{
	warp_config_t cfg;
	sleeper_config(&cfg);
	warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL);
	warp_config_add_transport(&cfg, "uring-tcp", "127.0.0.1:0", NULL);
	warp_engine_t *b;
	cr_assert_eq(warp_engine_create(&cfg, &b), 0, "%s", warp_errdetail());
	warp_engine_t *snd[2] = { sock_engine("uring-udp", "a"), sock_engine("uring-tcp", "c") };
	const char *drv[2] = { "uring-udp", "uring-tcp" };
	warp_stream_t *s[2];
	for (int i = 0; i < 2; i++) {
		cr_assert_not_null(snd[i]);
		link_by(snd[i], drv[i], b, (unsigned)i);
		link_by(b, drv[i], snd[i], 0);
		warp_peer_t *p;
		cr_assert_eq(warp_peer_find(snd[i], "sleeper", &p), 0);
		cr_assert_eq(warp_stream_open(snd[i], p, 1, 16, &s[i]), 0);
	}
	warp_channel_t *rx;
	cr_assert_eq(warp_channel_open(b, WARP_CHANNEL_RECV, &rx), 0);
	cr_assert_eq(warp_engine_start(b), 0);
	for (int k = 0; k < 4; k++) {
		int i = k % 2;
		usleep(100000); /* b is asleep now */
		cr_assert_eq(th_send(snd[i], s[i], 100, NULL), 0);
		warp_msg_t m;
		while (warp_channel_recv_burst(rx, &m, 1) == 0) {
			warp_engine_poll(snd[0]);
			warp_engine_poll(snd[1]);
		}
		cr_assert(th_check(m.data, m.len, th_seed(1, m.msg_id, m.len)));
		cr_assert_str_eq(m.transport, drv[i], "message %d came over %s", k, m.transport);
		warp_channel_recv_done(rx);
	}
	warp_stats_t st;
	warp_engine_stats(b, &st);
	cr_assert_gt(st.idle_waits, 0, "it slept on its transports");
	cr_assert_eq(warp_engine_stop(b), 0);
	for (int i = 0; i < 2; i++)
		warp_engine_destroy(snd[i]);
	warp_engine_destroy(b);
}

/* A sleeping engine wakes for an application thread's send through a
 * channel, and warp_engine_stop wakes it too. The test waits until it
 * sleeps before each step; a send or a stop that waited out a sleep would
 * wait 10 minutes. (The first message also brings the peer's handshake
 * reply, a packet, which wakes it anyway; the next 3 do not.) */
Test(uring_udp, idle_engine_wakes_for_an_application_send_and_for_stop, .timeout = 60)
{
	warp_config_t cfg;
	sleeper_config(&cfg);
	warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL);
	cfg.transports[0].flags = WARP_TRANSPORT_URING_COOP; /* started again below */
	warp_engine_t *b;
	cr_assert_eq(warp_engine_create(&cfg, &b), 0, "%s", warp_errdetail());
	warp_engine_t *a = sock_engine("uring-udp", "a");
	cr_assert_not_null(a);
	warp_peer_t *ba = th_link(b, a);
	th_link(a, b);
	struct th_log log;
	th_log_init(&log);
	warp_engine_set_recv(a, th_recv, &log);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(b, ba, 1, 16, &s), 0);
	warp_channel_t *tx;
	cr_assert_eq(warp_channel_open(b, 0, &tx), 0); /* sends only */
	cr_assert_eq(warp_engine_start(b), 0);
	uint8_t buf[100];
	for (uint64_t i = 0; i < 4; i++) {
		usleep(100000); /* b sleeps now */
		th_fill(buf, sizeof(buf), th_seed(1, i, sizeof(buf)));
		cr_assert_eq(warp_channel_send(tx, s, buf, sizeof(buf), NULL), 0);
		while (log.n < i + 1)
			warp_engine_poll(a);
		cr_assert(log.rx[i].ok, "message %llu byte-exact", (unsigned long long)i);
	}
	for (int i = 0; i < 3; i++) {
		usleep(100000);
		cr_assert_eq(warp_engine_stop(b), 0);
		cr_assert_eq(warp_engine_start(b), 0);
	}
	warp_stats_t st;
	warp_engine_stats(b, &st);
	cr_assert_gt(st.idle_waits, 0, "it slept");
	cr_assert_eq(warp_engine_stop(b), 0);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	free(log.rx);
}

/* A sleep never runs past the engine's next timer: a message the peer does
 * not answer is resent while the sender sleeps (its sleeps are 10 minutes,
 * so only the timer can end the one after the send within the test). */
Test(uring_udp, idle_engine_wakes_for_its_next_timer, .timeout = 60)
{
	warp_config_t cfg;
	sleeper_config(&cfg);
	warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL);
	cfg.transports[0].flags = WARP_TRANSPORT_URING_COOP;
	warp_engine_t *b;
	cr_assert_eq(warp_engine_create(&cfg, &b), 0, "%s", warp_errdetail());
	warp_engine_t *a = sock_engine("uring-udp", "a");
	cr_assert_not_null(a);
	warp_peer_t *ba = th_link(b, a);
	th_link(a, b);
	struct th_log log;
	th_log_init(&log);
	warp_engine_set_recv(a, th_recv, &log);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(b, ba, 1, 16, &s), 0);
	warp_channel_t *tx;
	cr_assert_eq(warp_channel_open(b, 0, &tx), 0);
	cr_assert_eq(warp_engine_start(b), 0);
	uint8_t buf[100];
	th_fill(buf, sizeof(buf), th_seed(1, 0, sizeof(buf)));
	cr_assert_eq(warp_channel_send(tx, s, buf, sizeof(buf), NULL), 0);
	while (log.n < 1) /* the first one is answered: the peers know each other */
		warp_engine_poll(a);
	for (int i = 0; i < 200; i++) { /* ... and its ACK has reached b */
		warp_engine_poll(a);
		usleep(1000);
	}
	warp_stats_t st0, st;
	warp_engine_stats(b, &st0);
	/* a is not polled now: b's next message goes unanswered */
	th_fill(buf, sizeof(buf), th_seed(1, 1, sizeof(buf)));
	cr_assert_eq(warp_channel_send(tx, s, buf, sizeof(buf), NULL), 0);
	do {
		usleep(1000);
		warp_engine_stats(b, &st);
	} while (st.rto_fired == st0.rto_fired);
	cr_assert_gt(st.idle_waits, st0.idle_waits, "b slept between the send and the resend");
	while (log.n < 2)
		warp_engine_poll(a);
	cr_assert(log.rx[1].ok, "the resent message is byte-exact");
	cr_assert_eq(warp_engine_stop(b), 0);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	free(log.rx);
}

/* Deliveries held back for a full receiving channel go on as soon as the
 * application makes room, also when the engine sleeps: the application's
 * recv_done wakes it. Nothing else can (the sender is no longer polled, and
 * the sleeps are 10 minutes). */
Test(uring_udp, idle_engine_wakes_when_the_application_makes_room, .timeout = 60)
{
	enum { N = 64, LEN = 200 };
	warp_config_t cfg;
	sleeper_config(&cfg);
	cfg.max_payload_bytes = 1000;
	cfg.channel_ring_bytes = 4096; /* about 15 messages */
	warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL);
	cfg.transports[0].flags = WARP_TRANSPORT_URING_COOP;
	warp_engine_t *b;
	cr_assert_eq(warp_engine_create(&cfg, &b), 0, "%s", warp_errdetail());
	warp_engine_t *a = sock_engine("uring-udp", "a");
	cr_assert_not_null(a);
	th_link(b, a);
	warp_peer_t *ab = th_link(a, b);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &s), 0);
	warp_channel_t *rx;
	cr_assert_eq(warp_channel_open(b, WARP_CHANNEL_RECV, &rx), 0);
	cr_assert_eq(warp_engine_start(b), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(th_send(a, s, LEN, NULL), 0);
	for (int i = 0; i < 200; i++) { /* everything is out, and b has read what fits */
		warp_engine_poll(a);
		usleep(1000);
	}
	/* b sleeps now, its channel full. Its sleep does not end for the
	 * packets it cannot take yet: a few polls (back-off spins and yields,
	 * one sleep), not an engine that wakes at once for ever. */
	warp_stats_t pre, st0, st;
	warp_engine_stats(b, &pre);
	usleep(100000);
	warp_engine_stats(b, &st0);
	cr_assert_lt(st0.polls - pre.polls, 100, "b polled %llu times in its sleep",
		     (unsigned long long)(st0.polls - pre.polls));
	int got = 0;
	while (got < N) {
		warp_msg_t m[8];
		int n = warp_channel_recv_burst(rx, m, 8);
		for (int k = 0; k < n; k++, got++) {
			cr_assert_eq(m[k].msg_id, (uint64_t)got, "in order");
			cr_assert(th_check(m[k].data, m[k].len, th_seed(1, m[k].msg_id, LEN)),
				  "message %d byte-exact", got);
		}
		warp_channel_recv_done(rx);
		if (n == 0)
			usleep(1000);
	}
	warp_engine_stats(b, &st);
	cr_assert_gt(st0.msgs_delivered, 0, "some fitted at first");
	cr_assert_lt(st0.msgs_delivered, N, "the channel was full before the application read");
	cr_assert_eq(st.msgs_delivered, N);
	cr_assert_eq(warp_engine_stop(b), 0);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
}

/* The default ring setup (SINGLE_ISSUER | DEFER_TASKRUN) binds an engine to
 * the thread that polls it first; the coop setup does not. */
static void *poll_once(void *arg)
{
	return (void *)(intptr_t)warp_engine_poll(arg);
}

Test(uring_udp, single_issuer_binds_the_engine_to_its_first_polling_thread)
{
	warp_engine_t *e = sock_engine("uring-udp", "a");
	cr_assert_eq(warp_engine_poll(e) >= 0, 1);
	cr_assert_eq(warp_engine_start(e), WARP_ESTATE);
	cr_assert(strstr(warp_errdetail(), "SINGLE_ISSUER"), "%s", warp_errdetail());
	pthread_t th;
	void *rc;
	pthread_create(&th, NULL, poll_once, e);
	pthread_join(th, &rc);
	cr_assert_eq((int)(intptr_t)rc, WARP_ESTATE, "another thread may not poll it");
	warp_engine_destroy(e);

	warp_config_t cfg;
	warp_config_init(&cfg);
	strcpy(cfg.node_id, "c");
	warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL);
	cfg.transports[0].flags = WARP_TRANSPORT_URING_COOP;
	cr_assert_eq(warp_engine_create(&cfg, &e), 0);
	cr_assert_geq(warp_engine_poll(e), 0);
	cr_assert_eq(warp_engine_start(e), 0, "coop rings may move to the engine thread");
	cr_assert_eq(warp_engine_stop(e), 0);
	pthread_create(&th, NULL, poll_once, e);
	pthread_join(th, &rc);
	cr_assert_geq((int)(intptr_t)rc, 0);
	warp_engine_destroy(e);
}

/* Root and iptables, or the test is skipped, saying why. */
static bool have_iptables(void)
{
	if (geteuid() == 0 && th_sh("iptables -L OUTPUT -n >/dev/null 2>&1") == 0)
		return true;
	cr_skip_test("needs root and iptables (tools/deps installs it)");
	return false;
}

/* ---- loss injected by iptables on the loopback ports ------------------------ */

static char ipt_rules[2][160];

static bool iptables_drop(int slot, int port, double p)
{
	snprintf(ipt_rules[slot], sizeof(ipt_rules[slot]),
		 "OUTPUT -o lo -p udp --dport %d -m statistic --mode random --probability %.3f -j DROP",
		 port, p);
	return th_sh("iptables -A %s 2>/dev/null", ipt_rules[slot]) == 0;
}

static void iptables_cleanup(void)
{
	for (int i = 0; i < 2; i++)
		if (ipt_rules[i][0]) {
			th_sh("iptables -D %s 2>/dev/null", ipt_rules[i]);
			ipt_rules[i][0] = '\0';
		}
}

static int port_of(warp_engine_t *e)
{
	char addr[160];
	warp_engine_local_addr(e, 0, addr, sizeof(addr));
	return atoi(strrchr(addr, ':') + 1);
}

Test(uring_udp, exactly_once_holds_under_iptables_loss, .fini = iptables_cleanup, .timeout = 120)
{
	if (!have_iptables())
		return;
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.default_guarantee = WARP_EXACTLY_ONCE;
	struct th_env env;
	th_env_up(&env, "uring-udp", 1);
	warp_engine_t *e[2] = { th_make(&env, "a", &cfg), th_make(&env, "b", &cfg) };
	warp_peer_t *ab = th_link(e[0], e[1]);
	th_link(e[1], e[0]);
	cr_assert(iptables_drop(0, port_of(e[0]), 0.10), "iptables rule");
	cr_assert(iptables_drop(1, port_of(e[1]), 0.10), "iptables rule");
	struct th_log rx, done;
	th_log_init(&rx);
	th_log_init(&done);
	warp_engine_set_recv(e[1], th_recv, &rx);
	warp_engine_set_completion(e[0], th_recv, &done);
	warp_stream_t *s[2];
	cr_assert_eq(warp_stream_open(e[0], ab, 1, 16, &s[0]), 0);
	cr_assert_eq(warp_stream_open(e[0], ab, 2, 100, &s[1]), 0);
	const int n = 2000;
	for (int i = 0; i < n; i++) {
		size_t len = (size_t)((i * 7919) % 31 == 0 ? 20000 : (i * 131) % 1500);
		int rc;
		while ((rc = th_send(e[0], s[i & 1], len, NULL)) == WARP_EAGAIN)
			th_pump(e, 2, &rx.n, SIZE_MAX, 10);
		cr_assert_eq(rc, 0);
		size_t never = 0;
		th_pump(e, 2, &never, 1, 2);
	}
	uint64_t t0 = warp_engine_now(e[0]);
	while (done.n < (size_t)n && warp_engine_now(e[0]) - t0 < 30000000000ull)
		th_pump(e, 2, &done.n, (size_t)n, 1000);
	iptables_cleanup();
	warp_stats_t st;
	warp_engine_stats(e[0], &st);
	cr_assert_eq(done.n, (size_t)n, "completions %zu (retransmits %llu)", done.n,
		     (unsigned long long)st.retransmits);
	cr_assert_gt(st.retransmits, 0, "iptables dropped something");
	cr_assert_eq(rx.n, (size_t)n, "each message exactly once");
	cr_assert_eq(rx.bad, 0);
	uint64_t next[3] = { 0 };
	for (size_t i = 0; i < rx.n; i++)
		cr_assert_eq(rx.rx[i].msg_id, next[rx.rx[i].stream]++, "in order, no duplicate");
	for (size_t i = 0; i < done.n; i++)
		cr_assert_eq(done.rx[i].status, 0);
	warp_engine_destroy(e[0]);
	warp_engine_destroy(e[1]);
	free(rx.rx);
	free(done.rx);
}

/* ---- UDP segmentation offload ---------------------------------------- */

/* a and b over uring-udp, at-most-once (no resend can hide a loss), the
 * session up, b logging what it receives; *s is a's stream 1 to b. */
struct udp_pair {
	warp_engine_t *e[2];
	warp_peer_t *ab, *ba;
	warp_stream_t *s;
	struct th_log rx;
};

/* A uring-udp engine named `name` on 127.0.0.1, at-most-once, with
 * transport flags `flags` and (when not 0) receive bursts of `rx_burst`. */
static warp_engine_t *amo_udp_engine_with(const char *name, uint32_t flags, uint32_t rx_burst)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.default_guarantee = WARP_AT_MOST_ONCE;
	if (rx_burst)
		cfg.rx_burst = rx_burst;
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	cr_assert_eq(warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL), 0);
	cfg.transports[0].flags |= flags;
	warp_engine_t *e = NULL;
	int rc = warp_engine_create(&cfg, &e);
	cr_assert_eq(rc, 0, "create %s: %s (%s)", name, warp_strerror(rc), warp_errdetail());
	return e;
}

static warp_engine_t *amo_udp_engine(const char *name)
{
	return amo_udp_engine_with(name, 0, 0);
}

/* a and b, b with transport flags b_flags and (when not 0) receive bursts
 * of b_rx_burst packets. */
static void udp_pair_up_b(struct udp_pair *p, uint32_t b_flags, uint32_t b_rx_burst)
{
	p->e[0] = amo_udp_engine("a");
	p->e[1] = amo_udp_engine_with("b", b_flags, b_rx_burst);
	p->ab = th_link(p->e[0], p->e[1]);
	p->ba = th_link(p->e[1], p->e[0]);
	th_up2(p->e[0], p->ab, p->e[1], p->ba);
	th_log_init(&p->rx);
	warp_engine_set_recv(p->e[1], th_recv, &p->rx);
	cr_assert_eq(warp_stream_open(p->e[0], p->ab, 1, 16, &p->s), 0);
}

static void udp_pair_up(struct udp_pair *p)
{
	udp_pair_up_b(p, 0, 0);
}

static void udp_pair_down(struct udp_pair *p)
{
	warp_engine_destroy(p->e[0]);
	warp_engine_destroy(p->e[1]);
	free(p->rx.rx);
}

/* Poll the engines a while: the last sends' completions are reaped
 * (drv_tx_segmented counts a send when its completion comes back). */
static void udp_settle(warp_engine_t **e, size_t n)
{
	size_t never = 0;
	th_pump(e, n, &never, 1, 2000);
}

/* Queue n messages of 1000 bytes (one per packet, all packets the same
 * length) before a polls, then poll both until b has `total`. */
static void udp_burst(struct udp_pair *p, int n, size_t total)
{
	for (int i = 0; i < n; i++)
		cr_assert_eq(th_send(p->e[0], p->s, 1000, NULL), 0);
	cr_assert(th_pump(p->e, 2, &p->rx.n, total, 2000000), "b received %zu of %zu", p->rx.n,
		  total);
	cr_assert_eq(p->rx.n, total, "each message once");
	cr_assert_eq(p->rx.bad, 0, "byte-exact");
	udp_settle(p->e, 2);
}

/* udp_burst(p, 64, 64) with both engines' counters before and after. */
struct udp_counts {
	warp_stats_t a0, a1, b0, b1;
};

static void udp_burst_counted(struct udp_pair *p, struct udp_counts *c)
{
	warp_engine_stats(p->e[0], &c->a0);
	warp_engine_stats(p->e[1], &c->b0);
	udp_burst(p, 64, 64);
	warp_engine_stats(p->e[0], &c->a1);
	warp_engine_stats(p->e[1], &c->b1);
}

/* Skip unless this kernel takes the UDP socket option opt (set to val). */
static void need_udp_option(int opt, int val, const char *why)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	bool ok = fd >= 0 && setsockopt(fd, IPPROTO_UDP, opt, &val, sizeof(val)) == 0;
	if (fd >= 0)
		close(fd);
	if (!ok)
		cr_skip_test("%s", why);
}

static void need_udp_gso(void)
{
	need_udp_option(UDP_SEGMENT, 0, "the kernel has no UDP_SEGMENT (needs 4.18)");
}

/* The engine's UDP socket bound to `port` in this process. */
static int udp_fd_of(int port)
{
	for (int fd = 0; fd < 1024; fd++) {
		int type = 0;
		socklen_t l = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) || type != SOCK_DGRAM)
			continue;
		struct sockaddr_in sin;
		l = sizeof(sin);
		if (getsockname(fd, (struct sockaddr *)&sin, &l) == 0 && sin.sin_family == AF_INET &&
		    ntohs(sin.sin_port) == port)
			return fd;
	}
	return -1;
}

Test(uring_udp, equal_packets_to_one_peer_leave_in_segmented_sends, .timeout = 60)
{
	need_udp_gso();
	struct udp_pair p;
	udp_pair_up(&p);
	struct udp_counts c;
	udp_burst_counted(&p, &c);
	const warp_stats_t a0 = c.a0, a1 = c.a1, b0 = c.b0, b1 = c.b1;
	uint64_t pkts = a1.tx_packets - a0.tx_packets, sends = a1.drv_tx_segmented - a0.drv_tx_segmented;
	/* 64 packets of one length to one peer: a few sends of up to 32 (as
	 * many as the congestion window lets out at a time), not 64 */
	cr_assert_gt(sends, 0, "no segmented send for %llu packets", (unsigned long long)pkts);
	cr_assert_leq(sends * 4, pkts, "%llu segmented sends for %llu packets",
		      (unsigned long long)sends, (unsigned long long)pkts);
	cr_assert_eq(a1.drv_tx_errors, 0);
	/* the kernel cut them back into one datagram per packet */
	cr_assert_geq(b1.rx_packets - b0.rx_packets, 64);
	cr_assert_eq(b1.drv_rx_truncated + b1.drv_rx_errors, 0);
	udp_pair_down(&p);
}

Test(uring_udp, a_burst_to_two_peers_is_gathered_per_peer_into_segmented_sends, .timeout = 60)
{
	need_udp_gso();
	warp_engine_t *e[3] = { amo_udp_engine("a"), amo_udp_engine("b"), amo_udp_engine("c") };
	warp_peer_t *ps[4] = { th_link(e[0], e[1]), th_link(e[1], e[0]), th_link(e[0], e[2]),
			       th_link(e[2], e[0]) };
	th_up(e, 3, ps, 4);
	struct th_log rx[2];
	warp_stream_t *s[2];
	for (int k = 0; k < 2; k++) {
		th_log_init(&rx[k]);
		warp_engine_set_recv(e[1 + k], th_recv, &rx[k]);
		cr_assert_eq(warp_stream_open(e[0], ps[2 * k], 1, 16, &s[k]), 0);
	}
	warp_stats_t a0, a1;
	warp_engine_stats(e[0], &a0);
	/* the engine builds the burst peer by peer in turn (b, c, b, c, ...);
	 * each peer's last message is shorter, so its last packet is too */
	for (int i = 0; i < 31; i++)
		for (int k = 0; k < 2; k++)
			cr_assert_eq(th_send(e[0], s[k], i == 30 ? 500 : 1000, NULL), 0);
	size_t got = 0;
	for (unsigned r = 0; r < 2000000 && got < 62; r++) {
		for (int i = 0; i < 3; i++)
			warp_engine_poll(e[i]);
		got = rx[0].n + rx[1].n;
	}
	udp_settle(e, 3);
	for (int k = 0; k < 2; k++) {
		cr_assert_eq(rx[k].n, 31, "peer %d received %zu of 31", k, rx[k].n);
		cr_assert_eq(rx[k].bad, 0, "byte-exact");
		for (size_t i = 0; i < rx[k].n; i++)
			cr_assert_eq(rx[k].rx[i].msg_id, i, "one peer's packets keep their order");
	}
	warp_engine_stats(e[0], &a1);
	uint64_t pkts = a1.tx_packets - a0.tx_packets, sends = a1.drv_tx_segmented - a0.drv_tx_segmented;
	cr_assert_geq(sends, 2, "%llu segmented sends for two peers", (unsigned long long)sends);
	cr_assert_leq(sends * 4, pkts, "%llu segmented sends for %llu packets",
		      (unsigned long long)sends, (unsigned long long)pkts);
	cr_assert_eq(a1.drv_tx_errors, 0);
	for (int i = 0; i < 3; i++)
		warp_engine_destroy(e[i]);
	free(rx[0].rx);
	free(rx[1].rx);
}

Test(uring_udp, a_refused_segmented_send_goes_again_one_datagram_each, .timeout = 60)
{
	need_udp_gso();
	struct udp_pair p;
	udp_pair_up(&p);
	/* without UDP checksums the kernel refuses segmentation (EINVAL), as
	 * it does on a device without checksum offload (EIO) */
	int fd = udp_fd_of(port_of(p.e[0]));
	cr_assert_geq(fd, 0, "a's socket");
	int one = 1;
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)), 0);
	warp_stats_t a0, a1, a2;
	warp_engine_stats(p.e[0], &a0);
	udp_burst(&p, 64, 64);
	warp_engine_stats(p.e[0], &a1);
	cr_assert_geq(a1.drv_tx_errors - a0.drv_tx_errors, 1, "the refusal is counted");
	cr_assert_eq(a1.drv_tx_segmented, a0.drv_tx_segmented);
	char err[256];
	cr_assert_eq(warp_engine_transport_error(p.e[0], 0, err, sizeof(err)), 0);
	cr_assert(strstr(err, "UDP segmentation offload refused") && strstr(err, "127.0.0.1:") &&
			  strstr(err, strerror(EINVAL)),
		  "named: '%s'", err);
	/* segmentation stays off: nothing more is refused */
	udp_burst(&p, 64, 128);
	warp_engine_stats(p.e[0], &a2);
	cr_assert_eq(a2.drv_tx_errors, a1.drv_tx_errors);
	cr_assert_eq(a2.drv_tx_segmented, a0.drv_tx_segmented);
	udp_pair_down(&p);
}

/* This test's process (Criterion forks one per test) in a network namespace
 * of its own, lo up, so that it may change lo's MTU; skips without root. */
static void own_netns(void)
{
	if (unshare(CLONE_NEWNET))
		cr_skip_test("unshare(CLONE_NEWNET): %s (a network namespace needs root)",
			     strerror(errno));
	cr_assert_eq(th_sh("ip link set lo up"), 0);
}

/* Poll a and b until, counted from *base, a has sent `frames` stream
 * frames and counted `errors` transport errors. */
static bool udp_pump_sent_and_failed(struct udp_pair *p, const warp_stats_t *base,
				     uint64_t frames, uint64_t errors)
{
	warp_stats_t st;
	for (unsigned r = 0; r < 2000000; r++) {
		warp_engine_poll(p->e[0]);
		warp_engine_poll(p->e[1]);
		warp_engine_stats(p->e[0], &st);
		if (st.tx_frames - base->tx_frames >= frames &&
		    st.drv_tx_errors - base->drv_tx_errors >= errors)
			return true;
	}
	return false;
}

Test(uring_udp, a_refusal_not_about_segmentation_turns_it_back_on, .timeout = 60)
{
	need_udp_gso();
	own_netns();
	struct udp_pair p;
	udp_pair_up(&p);
	/* a may not fragment (DF) and lo's MTU is below a's 1000-byte packets:
	 * the kernel refuses a segmented send (EINVAL, a segment above the
	 * MTU), and the first packet alone as well (EMSGSIZE), so the refusal
	 * was not about segmentation */
	int fd = udp_fd_of(port_of(p.e[0]));
	cr_assert_geq(fd, 0, "a's socket");
	int df = IP_PMTUDISC_DO;
	cr_assert_eq(setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &df, sizeof(df)), 0);
	cr_assert_eq(th_sh("ip link set lo mtu 900"), 0);
	warp_stats_t a0, a1, a2;
	warp_engine_stats(p.e[0], &a0);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(th_send(p.e[0], p.s, 1000, NULL), 0);
	/* all 16 sent (at-most-once: none goes again later, after the MTU is
	 * back up), each failed once on its own, and at least one segmented
	 * send was refused before: 17 errors at least */
	cr_assert(udp_pump_sent_and_failed(&p, &a0, 16, 17), "a's sends did not all go out and fail");
	udp_settle(p.e, 2);
	warp_engine_stats(p.e[0], &a1);
	cr_assert_eq(a1.drv_tx_segmented, a0.drv_tx_segmented, "no segmented send went out");
	cr_assert_eq(p.rx.n, 0, "nothing above the MTU arrived");
	char err[256];
	cr_assert_eq(warp_engine_transport_error(p.e[0], 0, err, sizeof(err)), 0);
	cr_assert(strstr(err, "send") && strstr(err, strerror(EMSGSIZE)), "named: '%s'", err);
	/* the MTU back up: segmented sends again, and nothing refused */
	cr_assert_eq(th_sh("ip link set lo mtu 65536"), 0);
	udp_burst(&p, 64, 64);
	warp_engine_stats(p.e[0], &a2);
	cr_assert_gt(a2.drv_tx_segmented, a1.drv_tx_segmented, "segmentation is back on");
	cr_assert_eq(a2.drv_tx_errors, a1.drv_tx_errors);
	udp_pair_down(&p);
}

/* ---- UDP generic receive offload -------------------------------------- */

/* GRO over loopback needs a segmented send, so both. */
static void need_udp_gro(void)
{
	need_udp_gso();
	need_udp_option(UDP_GRO, 1, "the kernel has no UDP_GRO (needs 5.0)");
}

/* 64 messages of 1000 bytes from a (segmented sends) to b: all arrive, in
 * order, byte-exact, none truncated; returns b's coalesced receives. */
static uint64_t gro_run(uint32_t b_flags, uint32_t b_rx_burst)
{
	struct udp_pair p;
	udp_pair_up_b(&p, b_flags, b_rx_burst);
	struct udp_counts c;
	udp_burst_counted(&p, &c);
	const warp_stats_t a0 = c.a0, a1 = c.a1, b0 = c.b0, b1 = c.b1;
	cr_assert_gt(a1.drv_tx_segmented, a0.drv_tx_segmented, "a sent segmented");
	for (size_t i = 0; i < p.rx.n; i++)
		cr_assert_eq(p.rx.rx[i].msg_id, i, "in order, no duplicate");
	cr_assert_geq(b1.rx_packets - b0.rx_packets, 64, "one packet per datagram");
	cr_assert_eq(b1.drv_rx_truncated + b1.drv_rx_errors, 0);
	cr_assert_eq(b1.drops, b0.drops, "nothing b received was dropped");
	uint64_t coalesced = b1.drv_rx_coalesced - b0.drv_rx_coalesced;
	udp_pair_down(&p);
	return coalesced;
}

Test(uring_udp, a_segmented_send_arrives_as_one_receive_cut_into_packets, .timeout = 60)
{
	need_udp_gro();
	/* over loopback the kernel hands the unsegmented send to a socket
	 * that takes UDP_GRO whole */
	uint64_t c = gro_run(0, 0);
	cr_assert_gt(c, 0, "no coalesced receive");
	cr_assert_leq(c * 4, 64, "%llu coalesced receives for 64 packets", (unsigned long long)c);
}

Test(uring_udp, a_coalesced_receive_longer_than_a_burst_is_finished_by_the_next, .timeout = 60)
{
	need_udp_gro();
	/* bursts of 3 packets: a receive of up to 32 datagrams is taken over
	 * several bursts, each going on where the last stopped */
	cr_assert_gt(gro_run(0, 3), 0, "no coalesced receive");
}

Test(uring_udp, udp_gro_off_takes_one_datagram_per_receive, .timeout = 60)
{
	need_udp_gro();
	cr_assert_eq(gro_run(WARP_TRANSPORT_NO_UDP_GRO, 0), 0);
}

/* A datagram that finds the packet pool empty is dropped and counted, not
 * left at the head of the completion queue: the send completions queued
 * behind it are what give packets back, so waiting could last for ever.
 * The next datagram, with packets free again, is received. The driver is
 * driven directly here, so the test holds the whole pool. */
Test(uring_udp, a_datagram_with_no_free_packet_is_dropped_and_counted, .timeout = 60)
{
	const struct warp_driver_ops *ops = warp__driver_find("uring-udp");
	cr_assert_not_null(ops);
	struct warp__pktpool pool;
	cr_assert_eq(warp__pktpool_init(&pool, 64, WARP_DEFAULT_MTU + WARP_PKT_SLACK), 0);
	struct warp_driver_counters cnt;
	memset(&cnt, 0, sizeof(cnt));
	struct warp_driver_open_args a = { .listen = "127.0.0.1:0", .node_id = "t",
					   .mtu = WARP_DEFAULT_MTU, .pool = &pool, .cnt = &cnt,
					   .cpu = -1 };
	void *ctx = NULL;
	cr_assert_eq(ops->open(&a, &ctx), 0, "open: %s", warp_errdetail());
	char local[64];
	cr_assert_eq(ops->local_addr(ctx, local, sizeof(local)), 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons((uint16_t)atoi(strrchr(local, ':') + 1)) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);

	struct warp_pkt *held[64], *got[32];
	unsigned nheld = 0;
	while (nheld < 64 && (held[nheld] = warp__pkt_get(&pool)) != NULL)
		nheld++;
	cr_assert_eq(nheld, 64, "the test holds the whole pool");
	cr_assert_eq(ops->rx_burst(ctx, got, 32, 0), 0); /* enables the ring, arms the receive */
	char x[100];
	memset(x, 'x', sizeof(x));
	cr_assert_eq(send(fd, x, sizeof(x), 0), (ssize_t)sizeof(x));
	for (int i = 0; i < 1000000 && warp__cnt_get(cnt.drv_rx_no_packet) == 0; i++)
		cr_assert_eq(ops->rx_burst(ctx, got, 32, 0), 0, "no packet to receive into");
	cr_assert_eq(warp__cnt_get(cnt.drv_rx_no_packet), 1, "the datagram is counted");

	for (unsigned i = 0; i < nheld; i++)
		warp__pkt_put(&pool, held[i]);
	memset(x, 'y', sizeof(x));
	cr_assert_eq(send(fd, x, sizeof(x), 0), (ssize_t)sizeof(x));
	uint16_t n = 0;
	for (int i = 0; i < 1000000 && n == 0; i++)
		n = ops->rx_burst(ctx, got, 32, 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(got[0]->len, sizeof(x));
	cr_assert_eq(got[0]->data[0], 'y', "the next datagram, not the dropped one");
	cr_assert_eq(warp__cnt_get(cnt.drv_rx_no_packet), 1);
	warp__pkt_put(&pool, got[0]);
	close(fd);
	ops->close(ctx);
	warp__pktpool_fini(&pool);
}

static bool iptables_block(int slot, int port)
{
	snprintf(ipt_rules[slot], sizeof(ipt_rules[slot]), "OUTPUT -o lo -p udp --dport %d -j DROP",
		 port);
	return th_sh("iptables -A %s 2>/dev/null", ipt_rules[slot]) == 0;
}

/* Engines n0 and n1, each with uring-udp then uring-tcp on loopback
 * (exactly-once by default, failback probes every 20 ms), peers of each
 * other over both in that order; with rx, n1 logs what it receives and
 * *s is n0's stream 1 to n1. */
static void udp_tcp_pair(warp_engine_t *e[2], warp_peer_t *p[2], struct th_log *rx,
			 warp_stream_t **s)
{
	char udp[2][160], tcp[2][160];
	for (int i = 0; i < 2; i++) {
		warp_config_t cfg;
		warp_config_init(&cfg);
		snprintf(cfg.node_id, sizeof(cfg.node_id), "n%d", i);
		cfg.default_guarantee = WARP_EXACTLY_ONCE;
		cfg.failback_probe_ns = 20000000; /* 20 ms */
		warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL);
		warp_config_add_transport(&cfg, "uring-tcp", "127.0.0.1:0", NULL);
		cr_assert_eq(warp_engine_create(&cfg, &e[i]), 0, "%s", warp_errdetail());
		warp_engine_local_addr(e[i], 0, udp[i], sizeof(udp[i]));
		warp_engine_local_addr(e[i], 1, tcp[i], sizeof(tcp[i]));
	}
	for (int i = 0; i < 2; i++) {
		warp_peer_config_t pc;
		memset(&pc, 0, sizeof(pc));
		snprintf(pc.node, sizeof(pc.node), "n%d", 1 - i);
		strcpy(pc.transports[0].driver, "uring-udp");
		strcpy(pc.transports[0].addr, udp[1 - i]);
		strcpy(pc.transports[1].driver, "uring-tcp");
		strcpy(pc.transports[1].addr, tcp[1 - i]);
		pc.n_transports = 2;
		cr_assert_eq(warp_peer_add_config(e[i], &pc, &p[i]), 0, "%s", warp_errdetail());
	}
	if (rx) {
		th_log_init(rx);
		warp_engine_set_recv(e[1], th_recv, rx);
		cr_assert_eq(warp_stream_open(e[0], p[0], 1, 16, s), 0);
	}
}

/* Each engine has uring-udp then uring-tcp; UDP is blocked by iptables
 * mid-run: the peers fail over to TCP, and back once UDP works again,
 * delivering every message exactly once. */
Test(uring_udp, failover_to_tcp_when_udp_is_blocked_and_back, .fini = iptables_cleanup,
     .timeout = 120)
{
	if (!have_iptables())
		return;
	warp_engine_t *e[2];
	warp_peer_t *p[2];
	struct th_log rx;
	warp_stream_t *s;
	udp_tcp_pair(e, p, &rx, &s);
	size_t sent = 0;
	for (int phase = 0; phase < 3; phase++) {
		if (phase == 1) {
			cr_assert(iptables_block(0, port_of(e[0])));
			cr_assert(iptables_block(1, port_of(e[1])));
		}
		if (phase == 2) {
			iptables_cleanup();
			/* wait for a probe over UDP to be answered */
			uint64_t t0 = warp_engine_now(e[0]);
			while (warp_peer_transport(p[0]) != 0 &&
			       warp_engine_now(e[0]) - t0 < 5000000000ull) {
				size_t never = 0;
				th_pump(e, 2, &never, 1, 100);
			}
			cr_assert_eq(warp_peer_transport(p[0]), 0, "failed back to UDP");
		}
		for (int i = 0; i < 200; i++) {
			cr_assert_eq(th_send(e[0], s, (size_t)(i * 37) % 2000, NULL), 0);
			sent++;
			size_t never = 0;
			th_pump(e, 2, &never, 1, 20);
		}
		uint64_t t0 = warp_engine_now(e[0]);
		while (rx.n < sent && warp_engine_now(e[0]) - t0 < 10000000000ull)
			th_pump(e, 2, &rx.n, sent, 1000);
		cr_assert_eq(rx.n, sent, "phase %d: %zu of %zu delivered", phase, rx.n, sent);
		if (phase == 1)
			cr_assert_eq(warp_peer_transport(p[0]), 1, "on TCP while UDP is blocked");
	}
	warp_stats_t st;
	warp_engine_stats(e[0], &st);
	cr_assert_geq(st.failovers, 1);
	cr_assert_geq(st.failbacks, 1);
	cr_assert_eq(rx.bad, 0);
	for (size_t i = 0; i < rx.n; i++)
		cr_assert_eq(rx.rx[i].msg_id, i, "exactly once, in order");
	warp_engine_destroy(e[0]);
	warp_engine_destroy(e[1]);
	free(rx.rx);
}

/* A peer failed over to TCP, then closed and reopened: it fails back to
 * UDP once UDP answers again. Its failback probe used to stop for good while
 * it was closed, so a reopened peer stayed on TCP. */
Test(uring_udp, a_peer_reopened_after_failing_over_fails_back, .fini = iptables_cleanup,
     .timeout = 120)
{
	if (!have_iptables())
		return;
	warp_engine_t *e[2];
	warp_peer_t *p[2];
	struct th_log rx;
	warp_stream_t *s;
	udp_tcp_pair(e, p, &rx, &s);
	cr_assert(iptables_block(0, port_of(e[0])));
	cr_assert(iptables_block(1, port_of(e[1])));
	size_t sent = 0;
	uint64_t t0 = warp_engine_now(e[0]);
	while (warp_peer_transport(p[0]) != 1 && warp_engine_now(e[0]) - t0 < 10000000000ull) {
		if (sent < 200) { /* as in the failover test above */
			cr_assert_eq(th_send(e[0], s, 100, NULL), 0);
			sent++;
		}
		size_t never = 0;
		th_pump(e, 2, &never, 1, 20);
	}
	cr_assert_eq(warp_peer_transport(p[0]), 1, "failed over to TCP");
	t0 = warp_engine_now(e[0]);
	while (rx.n < sent && warp_engine_now(e[0]) - t0 < 10000000000ull)
		th_pump(e, 2, &rx.n, sent, 1000);
	cr_assert_eq(rx.n, sent, "delivered %zu of %zu over TCP", rx.n, sent);
	cr_assert_eq(warp_peer_close(e[0], p[0], 1, "test"), 0);
	iptables_cleanup();
	/* closed for 100 ms: several probe periods */
	t0 = warp_engine_now(e[0]);
	while (warp_engine_now(e[0]) - t0 < 100000000ull) {
		size_t never = 0;
		th_pump(e, 2, &never, 1, 100);
	}
	cr_assert_eq(warp_peer_transport(p[0]), 1, "closed: no probes, still on TCP");
	cr_assert_eq(warp_peer_reopen(e[0], p[0]), 0);
	cr_assert_eq(warp_peer_reopen(e[1], p[1]), 0); /* the CLOSE closed it there too */
	t0 = warp_engine_now(e[0]);
	while (warp_peer_transport(p[0]) != 0 && warp_engine_now(e[0]) - t0 < 5000000000ull) {
		size_t never = 0;
		th_pump(e, 2, &never, 1, 100);
	}
	cr_assert_eq(warp_peer_transport(p[0]), 0, "failed back to UDP after the reopen");
	warp_stats_t st;
	warp_engine_stats(e[0], &st);
	cr_assert_geq(st.failbacks, 1);
	warp_engine_destroy(e[0]);
	warp_engine_destroy(e[1]);
	free(rx.rx);
}

/* A failback probe that arrives over the first transport in the same poll
 * as data over the second is answered over the first: its reply used to
 * follow the data's transport, so the prober saw no reply over its first
 * transport and did not fail back. */
static void inject(warp_engine_t *e, uint8_t transport, uint64_t pn, uint8_t hb_flags)
{
	uint8_t fr[64];
	th_inject(e, "n0", transport, pn, fr,
		  warp__frame_heartbeat_encode(fr, sizeof(fr), hb_flags, 7, 0));
}

static bool carries_hb_reply(const struct warp_pkt *pkt)
{
	struct warp_pkt_hdr h;
	if (warp__pkt_validate(pkt->data, pkt->len, 9000, UINT32_MAX, &h, NULL))
		return false;
	size_t off = WARP_WIRE_HDR_LEN;
	struct warp_frame f;
	while (warp__frame_next(pkt->data, pkt->len - WARP_WIRE_CRC_LEN, &off, &f))
		if (f.type == WARP_FRAME_HEARTBEAT && (f.u.heartbeat.flags & WARP_HEARTBEAT_REPLY))
			return true;
	return false;
}

Test(uring_udp, a_probe_is_answered_over_the_transport_it_came_in_on)
{
	warp_engine_t *e[2];
	warp_peer_t *p[2];
	udp_tcp_pair(e, p, NULL, NULL);
	th_up2(e[0], p[0], e[1], p[1]);
	struct warp_peer *n0 = p[1];
	n0->active_tp = 1; /* n1 is failed over to TCP too */
	warp__tx_flush(e[1]); /* nothing queued before */
	uint64_t top = n0->rx_largest;
	inject(e[1], 0, top + 1, 0);                    /* the probe, over UDP */
	inject(e[1], 1, top + 2, WARP_HEARTBEAT_REPLY); /* then data, over TCP */
	cr_assert_eq(n0->ack_tp, 1, "acknowledgements follow the data");
	cr_assert_eq(e[1]->tp[0].ntxq + e[1]->tp[1].ntxq, 0);
	warp__tx_build(e[1]);
	bool over_udp = false, over_tcp = false;
	for (uint32_t k = 0; k < e[1]->tp[0].ntxq; k++)
		over_udp |= carries_hb_reply(e[1]->tp[0].txq[k]);
	for (uint32_t k = 0; k < e[1]->tp[1].ntxq; k++)
		over_tcp |= carries_hb_reply(e[1]->tp[1].txq[k]);
	cr_assert(over_udp, "the reply goes over UDP, where the probe came in");
	cr_assert_not(over_tcp);
	warp__tx_flush(e[1]);
	warp_engine_destroy(e[0]);
	warp_engine_destroy(e[1]);
}

/* Failing over skips a transport whose link is known to be down; with no
 * other, the peer stays. It used to take the next one in order, down or
 * not. */
Test(uring_udp, failover_skips_a_transport_whose_link_is_down)
{
	warp_engine_t *e[2];
	warp_peer_t *p[2];
	udp_tcp_pair(e, p, NULL, NULL);
	e[0]->tp[1].link_down = true; /* as link_changed sets it for a port that went down */
	warp__peer_failover(e[0], p[0]);
	cr_assert_eq(warp_peer_transport(p[0]), 0, "the only other one is down: it stays");
	e[0]->tp[1].link_down = false;
	warp__peer_failover(e[0], p[0]);
	cr_assert_eq(warp_peer_transport(p[0]), 1);
	e[0]->tp[0].link_down = true;
	warp__peer_failover(e[0], p[0]);
	cr_assert_eq(warp_peer_transport(p[0]), 1, "nor back onto a link that is down");
	warp_engine_destroy(e[0]);
	warp_engine_destroy(e[1]);
}

/* What is in flight on the transport a peer fails over from goes out on the
 * new one at once, with a fresh congestion window. It used to wait for its
 * own timeout (and that timeout counted towards the next failover: with
 * failover_after_rtos = 1 the peer moved on again, back to the broken path). */
Test(uring_udp, a_failover_resends_what_was_in_flight_at_once)
{
	warp_engine_t *e[2];
	warp_peer_t *p[2];
	struct th_log rx;
	warp_stream_t *s;
	udp_tcp_pair(e, p, &rx, &s);
	th_up2(e[0], p[0], e[1], p[1]);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(th_send(e[0], s, 1000, NULL), 0);
	warp_engine_poll(e[0]); /* out over UDP; n1 does not poll, so no ACK */
	struct warp_peer *n1 = p[0];
	cr_assert_gt(n1->inflight_bytes, 0);
	n1->cc.cwnd = 4ull * e[0]->cfg.mtu; /* as after losses on the old path */
	warp__peer_failover(e[0], n1);
	cr_assert_eq(warp_peer_transport(p[0]), 1);
	cr_assert_eq(n1->inflight_bytes, 0, "nothing waits for a timeout on the old path");
	cr_assert_eq(n1->rto_streak, 0);
	cr_assert_eq(n1->cc.cwnd, 32ull * e[0]->cfg.mtu, "congestion control starts afresh");
	warp__tx_build(e[0]);
	cr_assert_gt(e[0]->tp[1].ntxq, 0, "the resends go out over TCP now");
	cr_assert_eq(e[0]->tp[0].ntxq, 0);
	cr_assert(th_pump(e, 2, &rx.n, 5, 2000000));
	th_run(e, 2, 1000, 0);
	cr_assert_eq(rx.n, 5, "exactly once: %zu deliveries", rx.n);
	for (size_t i = 0; i < rx.n; i++)
		cr_assert_eq(rx.rx[i].msg_id, i);
	warp_engine_destroy(e[0]);
	warp_engine_destroy(e[1]);
	free(rx.rx);
}

/* ---- a killed and restarted peer, two processes over uring-udp --------------- */

struct restart_shm {
	char a_addr[160];
	_Atomic int b_port;
	_Atomic int delivered;
	_Atomic int ready;
};

static void restart_child(struct restart_shm *sh, int port, bool hello)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	strcpy(cfg.node_id, "b");
	char listen[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	warp_config_add_transport(&cfg, "uring-udp", listen, NULL);
	warp_engine_t *b = NULL;
	for (int i = 0; i < 100 && warp_engine_create(&cfg, &b); i++)
		usleep(10000); /* the old process's port may take a moment */
	if (!b)
		_exit(20);
	char addr[160], id[256];
	warp_engine_local_addr(b, 0, addr, sizeof(addr));
	atomic_store(&sh->b_port, atoi(strrchr(addr, ':') + 1));
	snprintf(id, sizeof(id), "a@%s", sh->a_addr);
	warp_peer_t *ba;
	if (warp_peer_add(b, id, &ba))
		_exit(21);
	warp_stream_t *s;
	if (warp_stream_open(b, ba, 1, 16, &s))
		_exit(22);
	struct th_log rx;
	th_log_init(&rx);
	warp_engine_set_recv(b, th_recv, &rx);
	if (hello)
		th_send(b, s, 5, NULL);
	atomic_store(&sh->ready, 1);
	for (;;) {
		warp_engine_poll(b);
		atomic_store(&sh->delivered, (int)rx.n);
	}
}

static pid_t restart_spawn(struct restart_shm *sh, int port, bool hello)
{
	atomic_store(&sh->ready, 0);
	atomic_store(&sh->delivered, 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		th_child_dies_with_parent(parent);
		restart_child(sh, port, hello);
	}
	while (!atomic_load(&sh->ready))
		usleep(100);
	return pid;
}

static bool poll_until(warp_engine_t *e, bool (*cond)(void *), void *arg, uint64_t ns)
{
	uint64_t t0 = warp_engine_now(e);
	while (!cond(arg)) {
		if (warp_engine_now(e) - t0 > ns)
			return false;
		warp_engine_poll(e);
	}
	return true;
}

static warp_peer_t *rs_peer;
static bool breaker_open(void *a) { (void)a; return warp_peer_breaker(rs_peer) == WARP_BREAKER_OPEN; }
static bool breaker_half(void *a) { (void)a; return warp_peer_breaker(rs_peer) == WARP_BREAKER_HALF_OPEN; }
static bool breaker_closed(void *a) { (void)a; return warp_peer_breaker(rs_peer) == WARP_BREAKER_CLOSED; }
static bool log_has_one(void *a) { return ((struct th_log *)a)->n >= 1; }
static bool delivered_2(void *a) { return atomic_load(&((struct restart_shm *)a)->delivered) >= 2; }
static bool delivered_5(void *a) { return atomic_load(&((struct restart_shm *)a)->delivered) >= 5; }

Test(uring_udp, killed_and_restarted_peer_opens_and_closes_the_circuit, .timeout = 60)
{
	struct restart_shm *sh = th_shared(sizeof(*sh));
	warp_config_t cfg;
	warp_config_init(&cfg);
	strcpy(cfg.node_id, "a");
	cfg.ack_timeout_ns = 20000000; /* 20 ms */
	cfg.breaker_failure_threshold = 3;
	cfg.breaker_open_timeout_ns = 100000000; /* 100 ms */
	cfg.breaker_half_open_max_calls = 2;
	cfg.breaker_success_threshold = 2;
	warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL);
	warp_engine_t *a;
	cr_assert_eq(warp_engine_create(&cfg, &a), 0);
	warp_engine_local_addr(a, 0, sh->a_addr, sizeof(sh->a_addr));
	pid_t b = restart_spawn(sh, 0, false);
	int port = atomic_load(&sh->b_port);
	char id[64];
	snprintf(id, sizeof(id), "b@127.0.0.1:%d", port);
	cr_assert_eq(warp_peer_add(a, id, &rs_peer), 0);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(a, rs_peer, 1, 16, &s), 0);
	struct th_log at_a;
	th_log_init(&at_a);
	warp_engine_set_recv(a, th_recv, &at_a);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(th_send(a, s, 100, NULL), 0);
	cr_assert(poll_until(a, delivered_5, sh, 5000000000ull), "b is up");

	kill(b, SIGKILL); /* b dies */
	waitpid(b, NULL, 0);
	for (int i = 0; i < 3; i++) {
		int rc = th_send(a, s, 100, NULL);
		cr_assert_eq(rc, 0, "%s: %s", warp_strerror(rc), warp_errdetail());
	}
	cr_assert(poll_until(a, breaker_open, NULL, 5000000000ull), "its silence opens the circuit");
	cr_assert_eq(th_send(a, s, 100, NULL), WARP_ECIRCUIT_OPEN);
	cr_assert(poll_until(a, breaker_half, NULL, 5000000000ull));

	b = restart_spawn(sh, port, true); /* b comes back on its address */
	bool heard = poll_until(a, log_has_one, &at_a, 5000000000ull);
	if (!heard) {
		warp_session_info_t si;
		warp_peer_session(rs_peer, &si);
		kill(b, SIGKILL);
		cr_assert(heard, "a hears the new b (session state %d: %s)", si.state,
			  si.error_detail);
	}
	warp_stats_t st;
	warp_engine_stats(a, &st);
	cr_assert_eq(st.peer_restarts, 1);
	cr_assert_eq(th_send(a, s, 100, NULL), 0);
	cr_assert_eq(th_send(a, s, 100, NULL), 0);
	cr_assert(poll_until(a, breaker_closed, NULL, 5000000000ull), "the trials close it");
	cr_assert(poll_until(a, delivered_2, sh, 5000000000ull), "the new b got both");
	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
	warp_engine_destroy(a);
	free(at_a.rx);
	munmap(sh, sizeof(*sh));
}

/* ---- secure sessions: mutual TLS 1.3 over uring-udp ----------------------------- */

/* The handshakes of test_secure.c (loop driver, manual clock) on real
 * sockets and the real clock: a session that comes up encrypted and carries
 * messages byte-exact, and each certificate failure named on both sides,
 * with the test PKI of tests/helpers.h (th_pki_dir). */

static warp_config_t tls_sock_cfg(const char *name, const char *cert, const char *ca)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	cfg.max_payload_bytes = 1u << 20;
	cfg.tx_arena_bytes = cfg.rx_arena_bytes = 16u << 20;
	cfg.encryption = WARP_ENCRYPTION_REQUIRED;
	th_tls_cfg(&cfg, cert, ca);
	return cfg;
}

/* Node `name` on uring-udp 127.0.0.1 (port 0), encryption required,
 * presenting certificate `cert` and trusting `ca`. */
static warp_engine_t *tls_engine(const char *name, const char *cert, const char *ca,
				 uint64_t key_update_packets)
{
	warp_config_t cfg = tls_sock_cfg(name, cert, ca);
	if (key_update_packets)
		cfg.key_update_packets = key_update_packets;
	cr_assert_eq(warp_config_add_transport(&cfg, "uring-udp", "127.0.0.1:0", NULL), 0);
	warp_engine_t *e = NULL;
	int rc = warp_engine_create(&cfg, &e);
	cr_assert_eq(rc, 0, "create %s: %s (%s)", name, warp_strerror(rc), warp_errdetail());
	return e;
}

/* A session has settled when it is up or failed by the handshake itself; a
 * timeout is not final (the attempt is retried, and a slow first attempt is
 * not what these tests look at). */
static bool settled(const warp_session_info_t *si)
{
	return si->state == WARP_SESSION_UP ||
	       (si->state == WARP_SESSION_FAILED && si->error == WARP_EHANDSHAKE);
}

/* Polls both engines until both sessions have settled (for both up: until
 * both are up); out[i] is peer ps[i]'s state when it first settled. The
 * deadline is only against hanging. */
static void settle(warp_engine_t **es, warp_peer_t **ps, warp_session_info_t out[2])
{
	bool done[2] = { false, false };
	uint64_t t0 = th_mono_ns();
	while (!(done[0] && done[1]) && th_mono_ns() - t0 < 10000000000ull) {
		for (int i = 0; i < 2; i++)
			warp_engine_poll(es[i]);
		for (int i = 0; i < 2; i++) {
			if (done[i])
				continue;
			cr_assert_eq(warp_peer_session(ps[i], &out[i]), 0);
			done[i] = settled(&out[i]);
		}
	}
	for (int i = 0; i < 2; i++)
		cr_assert(done[i], "%s's session with '%s' did not settle in 10 s: state %d, %s",
			  warp_engine_node_id(es[i]), warp_peer_node(ps[i]), out[i].state,
			  out[i].error_detail);
}

Test(uring_udp, mutual_tls_session_is_encrypted_and_carries_messages_byte_exact,
     .fini = th_pki_cleanup, .timeout = 120)
{
	th_need_tls();
	/* key updates every 4096 packets: several of them on the way */
	warp_engine_t *es[2] = { tls_engine("a", "a", "ca", 4096), tls_engine("b", "b", "ca", 4096) };
	warp_peer_t *ps[2] = { th_link(es[0], es[1]), th_link(es[1], es[0]) };
	warp_session_info_t si[2];
	settle(es, ps, si);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(si[i].state, WARP_SESSION_UP, "%s: %s", warp_engine_node_id(es[i]),
			     si[i].error_detail);
		cr_assert_eq(si[i].encrypted, 1);
		cr_assert_str_eq(si[i].cipher, "aes-128-gcm");
		cr_assert_eq(si[i].error, 0);
	}
	cr_assert_eq(warp_peer_capability(ps[0], "encryption"), 1);

	/* a -> b: 2000 messages of random sizes up to 100 KiB on an exactly-once
	 * stream; b -> a: 200 up to 10 KiB */
	struct th_log rx[2];
	th_log_init(&rx[0]);
	th_log_init(&rx[1]);
	warp_engine_set_recv(es[1], th_recv, &rx[1]);
	warp_engine_set_recv(es[0], th_recv, &rx[0]);
	warp_stream_opts_t o = { .priority = 16, .guarantee = WARP_EXACTLY_ONCE };
	warp_stream_t *s[2];
	cr_assert_eq(warp_stream_open_ex(es[0], ps[0], 3, &o, &s[0]), 0);
	cr_assert_eq(warp_stream_open_ex(es[1], ps[1], 4, &o, &s[1]), 0);
	const unsigned n[2] = { 2000, 200 };
	const size_t maxlen[2] = { 100u << 10, 10u << 10 };
	unsigned sent[2] = { 0, 0 };
	uint64_t rnd = 88172645463325252ull;
	uint64_t t0 = th_mono_ns();
	while ((rx[1].n < n[0] || rx[0].n < n[1]) && th_mono_ns() - t0 < 60000000000ull) {
		for (int i = 0; i < 2; i++)
			if (sent[i] < n[i]) {
				rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
				int rc = th_send(es[i], s[i], rnd % (maxlen[i] + 1), NULL);
				if (rc != WARP_EAGAIN) {
					cr_assert_eq(rc, 0, "%s", warp_errdetail());
					sent[i]++;
				}
			}
		for (int i = 0; i < 2; i++)
			warp_engine_poll(es[i]);
	}
	warp_stats_t st[2];
	for (int i = 0; i < 2; i++)
		warp_engine_stats(es[i], &st[i]);
	cr_assert_eq(rx[1].n, n[0], "b got %zu of %u (a: retransmits %llu, lost %llu)", rx[1].n,
		     n[0], (unsigned long long)st[0].retransmits, (unsigned long long)st[0].pkts_lost);
	cr_assert_eq(rx[0].n, n[1], "a got %zu of %u", rx[0].n, n[1]);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(rx[i].bad, 0, "payloads differ");
		for (size_t k = 0; k < rx[i].n; k++)
			cr_assert_eq(rx[i].rx[k].msg_id, k, "exactly once, in order");
		cr_assert_eq(st[i].drop[WARP_DROP_BAD_TAG], 0);
		cr_assert_eq(st[i].drop[WARP_DROP_PLAINTEXT], 0);
		cr_assert_eq(st[i].handshakes, 1);
		cr_assert_eq(st[i].handshake_failures, 0);
	}
	/* the sender moved keys, and the receiver followed */
	warp_session_info_t ab, ba;
	warp_peer_session(ps[0], &ab);
	warp_peer_session(ps[1], &ba);
	cr_assert_gt(ab.tx_key_gen, 0, "a never updated its key (%llu packets sent)",
		     (unsigned long long)st[0].tx_packets);
	cr_assert_gt(ba.rx_key_gen, 0);
	cr_assert_leq(ba.rx_key_gen, ab.tx_key_gen);
	cr_assert_eq(st[1].key_updates_rx, ba.rx_key_gen);
	for (int i = 0; i < 2; i++) {
		warp_engine_destroy(es[i]);
		free(rx[i].rx);
	}
}

/* Engines from cfg[0] and cfg[1] (uring-udp on 127.0.0.1) meet; both
 * sessions must fail with WARP_EHANDSHAKE, side i's error naming each of
 * want[i][0] and want[i][1] (NULL: not checked). A message queued before
 * the handshake is settled with the failure and never delivered; new sends
 * fail at once. */
static void both_refuse(warp_config_t cfg[2], const char *want[2][2])
{
	warp_engine_t *es[2];
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(warp_config_add_transport(&cfg[i], "uring-udp", "127.0.0.1:0", NULL), 0);
		int rc = warp_engine_create(&cfg[i], &es[i]);
		cr_assert_eq(rc, 0, "create %s: %s (%s)", cfg[i].node_id, warp_strerror(rc),
			     warp_errdetail());
	}
	warp_peer_t *ps[2] = { th_link(es[0], es[1]), th_link(es[1], es[0]) };
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(es[0], ps[0], 1, 16, &s), 0);
	cr_assert_eq(th_send(es[0], s, 100, NULL), 0);
	struct th_log rx, done;
	th_log_init(&rx);
	th_log_init(&done);
	warp_engine_set_recv(es[1], th_recv, &rx);
	warp_engine_set_completion(es[0], th_recv, &done);
	warp_session_info_t si[2];
	settle(es, ps, si);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(si[i].state, WARP_SESSION_FAILED, "%s: state %d (%s)", cfg[i].node_id,
			     si[i].state, si[i].error_detail);
		cr_assert_eq(si[i].error, WARP_EHANDSHAKE, "%s: %s", cfg[i].node_id,
			     si[i].error_detail);
		for (int k = 0; k < 2; k++)
			if (want[i][k])
				cr_assert(strstr(si[i].error_detail, want[i][k]),
					  "%s should name \"%s\", says: %s", cfg[i].node_id,
					  want[i][k], si[i].error_detail);
	}
	cr_assert_eq(rx.n, 0, "nothing crosses a refused session");
	cr_assert_eq(done.n, 1);
	cr_assert_eq(done.rx[0].status, WARP_EHANDSHAKE);
	cr_assert_eq(th_send(es[0], s, 100, NULL), WARP_EHANDSHAKE, "sends fail at once");
	for (int i = 0; i < 2; i++)
		warp_engine_destroy(es[i]);
	free(rx.rx);
	free(done.rx);
}

/* Node x (cert, trusting ca) meets node y; `v` (0: x, 1: y) verifies the
 * other's certificate and refuses it, naming why (`why`, and `also` if not
 * NULL); the other side fails with "refused by '<v>'" and is told why. */
struct tls_node {
	const char *name, *cert, *ca;
};

static void refused(struct tls_node x, struct tls_node y, int v, const char *why, const char *also)
{
	th_need_tls();
	warp_config_t cfg[2] = { tls_sock_cfg(x.name, x.cert, x.ca),
				 tls_sock_cfg(y.name, y.cert, y.ca) };
	char by[64];
	snprintf(by, sizeof(by), "refused by '%s'", v ? y.name : x.name);
	const char *want[2][2];
	want[v][0] = why;
	want[v][1] = also;
	want[1 - v][0] = by;
	want[1 - v][1] = why;
	both_refuse(cfg, want);
}

/* "a" is the TLS client (the smaller node id), "b" the server. */
Test(uring_udp, tls_wrong_ca_at_the_server_fails_both_sides, .fini = th_pki_cleanup)
{
	refused((struct tls_node){ "a", "a", "ca" }, (struct tls_node){ "b", "b", "other-ca" }, 1,
		"certificate of 'a' not trusted", NULL);
}

Test(uring_udp, tls_wrong_ca_at_the_client_fails_both_sides, .fini = th_pki_cleanup)
{
	refused((struct tls_node){ "a", "a", "other-ca" }, (struct tls_node){ "b", "b", "ca" }, 0,
		"certificate of 'b' not trusted", NULL);
}

Test(uring_udp, tls_expired_server_certificate_fails_both_sides, .fini = th_pki_cleanup)
{
	refused((struct tls_node){ "a", "a", "ca" },
		(struct tls_node){ "expired", "expired", "ca" }, 0,
		"certificate of 'expired' expired", "2020");
}

Test(uring_udp, tls_expired_client_certificate_fails_both_sides, .fini = th_pki_cleanup)
{
	refused((struct tls_node){ "expired", "expired", "ca" },
		(struct tls_node){ "f", "f", "ca" }, 1, "certificate of 'expired' expired",
		"2020");
}

Test(uring_udp, tls_node_id_not_matching_the_client_certificate_fails_both_sides,
     .fini = th_pki_cleanup)
{
	refused((struct tls_node){ "a", "mismatch", "ca" }, (struct tls_node){ "b", "b", "ca" }, 1,
		"node id 'a' does not match its certificate", "mallory");
}

Test(uring_udp, tls_node_id_not_matching_the_server_certificate_fails_both_sides,
     .fini = th_pki_cleanup)
{
	refused((struct tls_node){ "a", "a", "ca" }, (struct tls_node){ "b", "mismatch", "ca" }, 0,
		"node id 'b' does not match its certificate", "mallory");
}

Test(uring_udp, no_common_capability_version_fails_both_sides_naming_it, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t cfg[2] = { tls_sock_cfg("a", "a", "ca"), tls_sock_cfg("b", "b", "ca") };
	cfg[0].n_caps = cfg[1].n_caps = 1;
	cfg[0].caps[0] = (warp_cap_config_t){ .name = "codec", .min = 1, .max = 2, .required = 1 };
	cfg[1].caps[0] = (warp_cap_config_t){ .name = "codec", .min = 3, .max = 4 };
	const char *want[2][2] = {
		{ "capability 'codec': no common version (local 1..2, peer 3..4)", NULL },
		{ "capability 'codec': no common version (local 3..4, peer 1..2)", NULL },
	};
	both_refuse(cfg, want);
}

Test(uring_udp, encryption_required_but_not_offered_is_refused_on_both_sides,
     .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t cfg[2] = { tls_sock_cfg("a", "a", "ca"), tls_sock_cfg("b", "b", "ca") };
	cfg[1].encryption = WARP_ENCRYPTION_OFF; /* b does not offer it */
	const char *want[2][2] = { { "capability 'encryption'", "not offered" },
				   { "capability 'encryption'", NULL } };
	both_refuse(cfg, want);
}

static warp_engine_t *tls_sock_engine(const char *drv, const char *name)
{
	warp_config_t cfg = tls_sock_cfg(name, name, "ca");
	if (warp_config_add_transport(&cfg, drv, "127.0.0.1:0", NULL))
		return NULL;
	warp_engine_t *e = NULL;
	if (warp_engine_create(&cfg, &e))
		return NULL;
	return e;
}

/* The two-process suite with encryption required on both sides: every
 * message crosses encrypted, or none does. */
Test(uring_udp, two_processes_100k_messages_byte_exact_encrypted, .fini = th_pki_cleanup,
     .timeout = 120)
{
	th_need_tls();
	th_pki_dir(); /* before the fork: both processes use the same PKI */
	two_processes_with("uring-udp", tls_sock_engine);
}
