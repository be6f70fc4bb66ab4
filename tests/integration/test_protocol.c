/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Protocol tests that run over every driver that can carry them: the loop
 * driver (manual clock) and uring-udp (real sockets on 127.0.0.1, real
 * clock). PROTO_TEST(name) defines the body once and a Criterion test per
 * driver (loop, uring-udp, uring-tcp). Fault-model tests live in
 * test_engine_loop.c.
 */
#include "../helpers.h"

#define PROTO_TEST(name)                                   \
	static void name(const char *drv);                 \
	Test(loop, name) { name("loop"); }                 \
	Test(uring_udp, name) { name("uring-udp"); }       \
	Test(uring_tcp, name) { name("uring-tcp"); }       \
	static void name(const char *drv)

struct pair {
	struct th_env env;
	warp_engine_t *a, *b;
	warp_peer_t *ab, *ba;
	struct th_log la, lb;
};

static void pair_up(struct pair *p, const char *drv, warp_config_t *tweak)
{
	memset(p, 0, sizeof(*p));
	th_env_up(&p->env, drv, 1);
	p->a = th_make(&p->env, "a", tweak);
	p->b = th_make(&p->env, "b", tweak);
	p->ab = th_link(p->a, p->b);
	p->ba = th_link(p->b, p->a);
	th_log_init(&p->la);
	th_log_init(&p->lb);
	warp_engine_set_recv(p->a, th_recv, &p->la);
	warp_engine_set_recv(p->b, th_recv, &p->lb);
	th_up2(p->a, p->ab, p->b, p->ba);
}

static void pair_down(struct pair *p)
{
	warp_engine_destroy(p->a);
	warp_engine_destroy(p->b);
	th_env_down(&p->env);
	free(p->la.rx);
	free(p->lb.rx);
}

static bool pair_wait(struct pair *p, const size_t *counter, size_t want)
{
	warp_engine_t *es[2] = { p->a, p->b };
	return th_pump(es, 2, counter, want, 2000000);
}

static void pair_polls(struct pair *p, unsigned n)
{
	warp_engine_t *es[2] = { p->a, p->b };
	size_t never = 0;
	th_pump(es, 2, &never, 1, n);
}

static warp_stats_t stats(warp_engine_t *e)
{
	warp_stats_t s;
	cr_assert_eq(warp_engine_stats(e, &s), 0);
	return s;
}

PROTO_TEST(framing_round_trips_every_size_class)
{
	struct pair p;
	pair_up(&p, drv, NULL);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 7, 100, &s), 0);
	size_t P = p.a->stream_payload_max; /* payload of one full frame */
	size_t max = WARP_DEFAULT_MAX_PAYLOAD_BYTES;
	size_t sizes[] = { 0, 1, P - 1, P, P + 1, 3 * P + 5, 1u << 20, max };
	for (size_t i = 0; i < WARP__ARRAY_LEN(sizes); i++) {
		cr_assert_eq(th_send(p.a, s, sizes[i], NULL), 0, "size %zu", sizes[i]);
		cr_assert(pair_wait(&p, &p.lb.n, i + 1), "size %zu not delivered over %s",
			  sizes[i], drv);
		cr_assert_eq(p.lb.rx[i].len, sizes[i]);
		cr_assert(p.lb.rx[i].ok, "size %zu corrupted", sizes[i]);
		cr_assert_eq(p.lb.rx[i].msg_id, i);
	}
	/* A message of exactly P fits one packet; P + 1 needs two. */
	cr_assert_eq(stats(p.a).msgs_fragmented, 4);
	cr_assert_eq(stats(p.b).drops, 0);
	pair_down(&p);
}

PROTO_TEST(framing_max_payload_plus_one_is_refused_before_sending)
{
	struct pair p;
	pair_up(&p, drv, NULL);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 16, &s), 0);
	warp_stats_t before = stats(p.a);
	uint64_t id = 77;
	cr_assert_eq(th_send(p.a, s, WARP_DEFAULT_MAX_PAYLOAD_BYTES + 1, &id), WARP_ETOOBIG);
	cr_assert_eq(id, UINT64_MAX, "no id is handed out for a refused send");
	pair_polls(&p, 10);
	warp_stats_t after = stats(p.a);
	cr_assert_eq(after.tx_packets, before.tx_packets, "nothing was sent");
	cr_assert_eq(after.send_too_big, 1);
	cr_assert_eq(p.lb.n, 0);
	cr_assert_eq(th_send(p.a, s, 10, &id), 0);
	cr_assert_eq(id, 0, "the refusal consumed no id");
	cr_assert(pair_wait(&p, &p.lb.n, 1));
	pair_down(&p);
}

PROTO_TEST(framing_small_messages_coalesce_into_few_packets)
{
	struct pair p;
	pair_up(&p, drv, NULL);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 3, 50, &s), 0);
	warp_stats_t s0 = stats(p.a); /* after the handshake */
	for (int i = 0; i < 200; i++)
		cr_assert_eq(th_send(p.a, s, 16, NULL), 0);
	warp_engine_poll(p.a);
	warp_stats_t sa = stats(p.a);
	/* 200 frames of 22 + 16 bytes in 1432-byte packets: 6 packets */
	cr_assert_leq(sa.tx_packets - s0.tx_packets, 6, "sent %llu packets",
		      (unsigned long long)(sa.tx_packets - s0.tx_packets));
	cr_assert_eq(sa.tx_frames, 200);
	cr_assert(pair_wait(&p, &p.lb.n, 200));
	for (size_t i = 0; i < 200; i++) {
		cr_assert(p.lb.rx[i].ok);
		cr_assert_eq(p.lb.rx[i].msg_id, i, "in order");
	}
	pair_down(&p);
}

PROTO_TEST(streams_urgent_stream_overtakes_a_large_message)
{
	struct pair p;
	pair_up(&p, drv, NULL);
	warp_stream_t *bulk, *ctl;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 200, &bulk), 0);
	cr_assert_eq(warp_stream_open(p.a, p.ab, 2, 16, &ctl), 0);
	cr_assert_eq(th_send(p.a, bulk, 2u << 20, NULL), 0);
	warp_engine_poll(p.a); /* the bulk message is under way */
	warp_engine_poll(p.a);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(th_send(p.a, ctl, 100, NULL), 0);
	cr_assert(pair_wait(&p, &p.lb.n, 11));
	for (size_t i = 0; i < 10; i++)
		cr_assert_eq(p.lb.rx[i].stream, 2, "urgent message %zu came after the bulk one", i);
	cr_assert_eq(p.lb.rx[10].stream, 1);
	cr_assert(p.lb.rx[10].ok);
	pair_down(&p);
}

PROTO_TEST(engines_three_engines_many_streams_exact)
{
	struct th_env env;
	th_env_up(&env, drv, 3);
	const char *names[3] = { "n0", "n1", "n2" };
	warp_engine_t *e[3];
	struct th_log log[3];
	warp_stream_t *st[3][3][3]; /* [from][to][stream] */
	for (int i = 0; i < 3; i++) {
		e[i] = th_make(&env, names[i], NULL);
		th_log_init(&log[i]);
		warp_engine_set_recv(e[i], th_recv, &log[i]);
	}
	uint8_t prio[3] = { 16, 100, 255 };
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			if (i == j)
				continue;
			warp_peer_t *pj = th_link(e[i], e[j]);
			for (int k = 0; k < 3; k++)
				cr_assert_eq(warp_stream_open(e[i], pj, (uint16_t)(10 + k), prio[k],
							      &st[i][j][k]),
					     0);
		}
	srand(42);
	size_t sent[3] = { 0 };
	size_t never = 0;
	for (int round = 0; round < 300; round++) {
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 3; j++) {
				if (i == j)
					continue;
				int k = rand() % 3;
				size_t len = (rand() % 10 == 0) ? (size_t)(rand() % 100000)
								 : (size_t)(rand() % 2000);
				int rc = th_send(e[i], st[i][j][k], len, NULL);
				cr_assert_eq(rc, 0, "%s", warp_strerror(rc));
				sent[j]++;
			}
		th_pump(e, 3, &never, 1, 3);
	}
	for (int j = 0; j < 3; j++) {
		cr_assert(th_pump(e, 3, &log[j].n, sent[j], 2000000), "%s got %zu of %zu over %s",
			  names[j], log[j].n, sent[j], drv);
		cr_assert_eq(log[j].bad, 0);
		/* per (source, stream): ids arrive 0, 1, 2, ... in order */
		uint64_t next[3][3] = { { 0 } };
		for (size_t m = 0; m < log[j].n; m++) {
			int src = log[j].rx[m].src[1] - '0';
			int k = log[j].rx[m].stream - 10;
			cr_assert_eq(log[j].rx[m].msg_id, next[src][k]++, "order on %s<-%s/%d",
				     names[j], names[src], k);
		}
	}
	for (int i = 0; i < 3; i++) {
		warp_engine_destroy(e[i]);
		free(log[i].rx);
	}
	th_env_down(&env);
}

PROTO_TEST(hotpath_no_allocation_after_start)
{
	struct pair p;
	pair_up(&p, drv, NULL);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 50, &s), 0);
	static uint8_t buf[300000];
	th_fill(buf, sizeof(buf), 1);
	/* warm up: stream transports set their connection up (slow path,
	 * allocates its buffers) with the first message */
	cr_assert_eq(warp_send(p.a, s, buf, 10, NULL), 0);
	cr_assert(pair_wait(&p, &p.lb.n, 1));
	uint64_t before = warp__alloc_count();
	size_t want = 1;
	for (int i = 0; i < 2000; i++) {
		cr_assert_eq(warp_send(p.a, s, buf, (size_t)(i * 37) % 3000, NULL), 0);
		want++;
		if (i % 100 == 0) {
			cr_assert_eq(warp_send(p.a, s, buf, sizeof(buf), NULL), 0);
			want++;
		}
		pair_polls(&p, 2);
	}
	cr_assert(pair_wait(&p, &p.lb.n, want));
	cr_assert_eq(warp__alloc_count(), before, "heap allocations happened on the data path");
	cr_assert_eq(stats(p.a).allocs_after_start, 0);
	cr_assert_eq(stats(p.b).allocs_after_start, 0);
	pair_down(&p);
}

PROTO_TEST(peers_close_and_reopen)
{
	struct pair p;
	pair_up(&p, drv, NULL);
	warp_stream_t *s, *r;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 50, &s), 0);
	cr_assert_eq(warp_stream_open(p.b, p.ba, 1, 50, &r), 0);
	struct th_log done;
	th_log_init(&done);
	warp_engine_set_completion(p.a, th_recv, &done);
	cr_assert_eq(th_send(p.a, s, 10, NULL), 0);
	cr_assert_eq(warp_peer_close(p.a, p.ab, 7, "bye"), 0);
	cr_assert_eq(done.n, 1, "the queued message is reported");
	cr_assert_eq(done.rx[0].status, WARP_ECLOSED);
	cr_assert_eq(th_send(p.a, s, 10, NULL), WARP_ECLOSED);
	warp_engine_t *es[2] = { p.a, p.b };
	size_t closes = 0;
	for (int i = 0; i < 2000000 && closes == 0; i++) {
		th_pump(es, 2, &closes, 1, 1);
		closes = stats(p.b).closes_rx;
	}
	cr_assert_eq(closes, 1);
	cr_assert_eq(th_send(p.b, r, 10, NULL), WARP_ECLOSED, "b saw the close");
	cr_assert_eq(warp_peer_reopen(p.a, p.ab), 0);
	cr_assert_eq(warp_peer_reopen(p.b, p.ba), 0);
	cr_assert_eq(th_send(p.a, s, 10, NULL), 0);
	cr_assert(pair_wait(&p, &p.lb.n, 1));
	cr_assert_eq(p.lb.rx[0].msg_id, 1);
	cr_assert(pair_wait(&p, &done.n, 2), "the resent message completes");
	cr_assert_eq(done.rx[1].status, 0);
	free(done.rx);
	pair_down(&p);
}
