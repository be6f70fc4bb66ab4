/* SPDX-License-Identifier: Apache-2.0 */
/* Engines over the loop driver: framing, coalescing, fragmentation, streams
 * and priorities, faults, close, heartbeats, no allocation on the hot path. */
#include "../helpers.h"

struct pair {
	warp_loop_net_t *net;
	warp_engine_t *a, *b;
	warp_peer_t *ab, *ba; /* a's view of b, b's view of a */
	struct th_log la, lb;
};

/* These tests exercise the fault model and v1 behaviour: their streams are
 * at-most-once unless a test says otherwise (test_reliable.c covers the
 * other guarantees). */
static void pair_up(struct pair *p, uint64_t seed, warp_config_t *tweak)
{
	warp_config_t amo;
	if (!tweak) {
		warp_config_init(&amo);
		tweak = &amo;
	}
	tweak->default_guarantee = WARP_AT_MOST_ONCE;
	memset(p, 0, sizeof(*p));
	cr_assert_eq(warp_loop_net_create(seed, 0, &p->net), 0);
	p->a = th_engine(p->net, "a", tweak);
	p->b = th_engine(p->net, "b", tweak);
	p->ab = th_peer(p->a, "b");
	p->ba = th_peer(p->b, "a");
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
	warp_loop_net_destroy(p->net);
	free(p->la.rx);
	free(p->lb.rx);
}

static void pair_run(struct pair *p, unsigned rounds)
{
	warp_engine_t *es[2] = { p->a, p->b };
	th_run(es, 2, rounds, 1000);
}

static warp_stats_t stats(warp_engine_t *e)
{
	warp_stats_t s;
	cr_assert_eq(warp_engine_stats(e, &s), 0);
	return s;
}

Test(streams, equal_priorities_share_packets_round_robin)
{
	struct pair p;
	pair_up(&p, 1, NULL);
	warp_stream_t *x, *y;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 100, &x), 0);
	cr_assert_eq(warp_stream_open(p.a, p.ab, 2, 100, &y), 0);
	cr_assert_eq(th_send(p.a, x, 1u << 20, NULL), 0);
	cr_assert_eq(th_send(p.a, y, 1u << 20, NULL), 0);
	/* after half of the traffic, both are about half done */
	pair_run(&p, 12);
	struct warp_txmsg *mx = x->uhead, *my = y->uhead;
	cr_assert_not_null(mx);
	cr_assert_not_null(my);
	long d = (long)mx->next_frag - (long)my->next_frag;
	cr_assert_leq(labs(d), 2, "x %u, y %u fragments", mx->next_frag, my->next_frag);
	cr_assert_gt(mx->next_frag, 0);
	pair_run(&p, 4000);
	cr_assert_eq(p.lb.n, 2);
	pair_down(&p);
}

/* Drop, once, the first packet that carries a non-first fragment of stream 1
 * and nothing of stream 2. */
struct holdup {
	int dropped;
};
static bool holdup_filter(void *arg, const char *from, const char *to, const uint8_t *pkt,
			  uint32_t len)
{
	struct holdup *h = arg;
	(void)from;
	(void)to;
	if (h->dropped)
		return true;
	struct warp_pkt_hdr hdr;
	if (warp__pkt_validate(pkt, len, 9000, UINT32_MAX, &hdr, NULL))
		return true;
	size_t off = WARP_WIRE_HDR_LEN;
	struct warp_frame f;
	bool s1_frag = false, s2 = false;
	while (warp__frame_next(pkt, len - WARP_WIRE_CRC_LEN, &off, &f)) {
		if (f.type != WARP_FRAME_STREAM)
			continue;
		if (f.u.stream.stream_id == 1 && f.u.stream.offset > 0)
			s1_frag = true;
		if (f.u.stream.stream_id == 2)
			s2 = true;
	}
	if (s1_frag && !s2) {
		h->dropped = 1;
		return false;
	}
	return true;
}

Test(streams, a_held_up_message_does_not_delay_other_streams)
{
	struct pair p;
	pair_up(&p, 1, NULL);
	struct holdup h = { 0 };
	warp_loop_set_filter(p.net, holdup_filter, &h);
	warp_stream_t *s1, *s2;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 16, &s1), 0);
	cr_assert_eq(warp_stream_open(p.a, p.ab, 2, 200, &s2), 0);
	cr_assert_eq(th_send(p.a, s1, 100000, NULL), 0);
	pair_run(&p, 50);
	cr_assert_eq(h.dropped, 1);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(th_send(p.a, s2, 300, NULL), 0);
	pair_run(&p, 50);
	/* stream 1's message is stuck (at-most-once: no retransmission in v1);
	 * all 50 of stream 2 arrived regardless */
	cr_assert_eq(p.lb.n, 50);
	for (size_t i = 0; i < 50; i++) {
		cr_assert_eq(p.lb.rx[i].stream, 2);
		cr_assert(p.lb.rx[i].ok);
	}
	uint64_t in_use = p.b->rxa.in_use;
	cr_assert_gt(in_use, 0, "the partial message holds reassembly memory");
	th_now += WARP_DEFAULT_REASSEMBLY_TIMEOUT_NS + 1000000;
	pair_run(&p, 2);
	cr_assert_eq(stats(p.b).reassembly_timeouts, 1);
	cr_assert_eq(p.b->rxa.in_use, 0, "the partial message was given up and freed");
	pair_down(&p);
}

Test(errors, bad_arguments_and_unknown_things)
{
	struct pair p;
	pair_up(&p, 1, NULL);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 15, &s), WARP_EINVAL);
	cr_assert(strstr(warp_errdetail(), "reserved"));
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 16, &s), 0);
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 16, &s), WARP_EEXIST);
	warp_peer_t *x;
	cr_assert_eq(warp_peer_add(p.a, "b@b:1", &x), WARP_EEXIST);
	cr_assert_eq(warp_peer_add(p.a, "bad name@q:1", &x), WARP_EINVALID_NODE);
	cr_assert(strstr(warp_errdetail(), "invalid character ' '"));
	cr_assert_eq(warp_peer_add(p.a, "nohost", &x), WARP_EINVALID_NODE);
	cr_assert(strstr(warp_errdetail(), "missing '@address'"), "%s", warp_errdetail());
	cr_assert_eq(warp_peer_add(p.a, "a@a:1", &x), WARP_EINVALID_NODE, "own id");
	cr_assert_eq(warp_peer_find(p.a, "zz", &x), WARP_EINVALID_NODE);
	cr_assert_eq(warp_send(p.a, NULL, "x", 1, NULL), WARP_EINVAL);
	cr_assert_str_eq(warp_strerror(WARP_ETOOBIG), "payload too large");
	cr_assert_str_eq(warp_strerror(-9999), "unknown error");

	/* an engine c that b does not know: its packets are dropped and counted */
	warp_engine_t *c = th_engine(p.net, "c", NULL);
	warp_peer_t *cb = th_peer(c, "b");
	warp_stream_t *cs;
	cr_assert_eq(warp_stream_open(c, cb, 1, 16, &cs), 0);
	cr_assert_eq(th_send(c, cs, 10, NULL), 0);
	warp_engine_t *es[3] = { p.a, p.b, c };
	th_run(es, 3, 5, 1000);
	/* c's handshake never gets an answer: its HELLOs are the unknown
	 * peer's packets, and the message waits for a session that does not come */
	cr_assert_geq(stats(p.b).drop[WARP_DROP_UNKNOWN_PEER], 1);
	warp_session_info_t si;
	cr_assert_eq(warp_peer_session(cb, &si), 0);
	cr_assert_eq(si.state, WARP_SESSION_HANDSHAKE);
	cr_assert_eq(p.lb.n, 0);
	warp_engine_destroy(c);

	/* bad engine configs name their key */
	warp_config_t cfg;
	warp_config_init(&cfg);
	warp_engine_t *e2;
	cr_assert_eq(warp_engine_create(&cfg, &e2), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "node_id"));
	strcpy(cfg.node_id, "z");
	warp_config_add_transport(&cfg, "nosuch", "k", NULL);
	cr_assert_eq(warp_engine_create(&cfg, &e2), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "'nosuch' is not built in"), "%s", warp_errdetail());
	cfg.n_transports = 0;
	warp_config_add_transport(&cfg, "loop", "a:1", p.net);
	cr_assert_eq(warp_engine_create(&cfg, &e2), WARP_EDRIVER);
	cr_assert(strstr(warp_errdetail(), "in use"), "%s", warp_errdetail());
	/* a TX arena as large as max_payload_bytes has no room for that
	 * message's fragment map: it used to be accepted, and such a message
	 * was refused with WARP_EAGAIN for ever */
	warp_config_t big;
	warp_config_init(&big);
	strcpy(big.node_id, "y");
	warp_config_add_transport(&big, "loop", "y:1", p.net);
	big.max_payload_bytes = 1u << 20;
	big.tx_arena_bytes = 1u << 20;
	cr_assert_eq(warp_config_validate(&big), WARP_ECONFIG);
	cr_assert_eq(warp_engine_create(&big, &e2), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "tx_arena_bytes: 1048576") &&
		  strstr(warp_errdetail(), "give at least 2097152"), "%s", warp_errdetail());
	big.tx_arena_bytes = 2u << 20;
	cr_assert_eq(warp_engine_create(&big, &e2), 0, "%s", warp_errdetail());
	warp_peer_t *yb = th_peer(e2, "b");
	cr_assert_eq(warp_stream_open(e2, yb, 1, 16, &s), 0);
	uint8_t *m = calloc(1, 1u << 20);
	cr_assert_eq(warp_send(e2, s, m, 1u << 20, NULL), 0, "the largest message fits");
	free(m);
	warp_engine_destroy(e2);
	pair_down(&p);
}

Test(faults, same_seed_replays_the_same_run)
{
	size_t n1 = 0, n2 = 0;
	uint64_t ids1[4000], ids2[4000];
	for (int run = 0; run < 2; run++) {
		struct pair p;
		pair_up(&p, 1234, NULL);
		warp_loop_fault_t f = { .loss = 0.1, .duplicate = 0.05, .reorder = 0.1,
					.reorder_window = 4, .delay_ns = 3000, .jitter_ns = 5000 };
		/* faults on a -> b only, so b's counters account for all of them */
		cr_assert_eq(warp_loop_set_fault(p.net, "a:1", "b:1", &f), 0);
		warp_stream_t *s;
		cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 50, &s), 0);
		for (int i = 0; i < 2000; i++) {
			cr_assert_eq(th_send(p.a, s, (size_t)(i % 7) * 300, NULL), 0);
			pair_run(&p, 1);
		}
		pair_run(&p, 100);
		uint64_t *ids = run ? ids2 : ids1;
		for (size_t i = 0; i < p.lb.n; i++) {
			ids[i] = p.lb.rx[i].msg_id;
			cr_assert(p.lb.rx[i].ok);
		}
		if (run)
			n2 = p.lb.n;
		else
			n1 = p.lb.n;
		warp_loop_stats_t ls;
		warp_loop_stats(p.net, &ls);
		cr_assert_gt(ls.lost, 0);
		cr_assert_gt(ls.duplicated, 0);
		cr_assert_gt(ls.reordered, 0);
		/* duplicates are dropped by packet number, never delivered twice */
		cr_assert_eq(stats(p.b).drop[WARP_DROP_DUP_PACKET], ls.duplicated);
		for (size_t i = 0; i < p.lb.n; i++)
			for (size_t j = i + 1; j < p.lb.n && j < i + 50; j++)
				cr_assert_neq(p.lb.rx[i].msg_id, p.lb.rx[j].msg_id);
		pair_down(&p);
	}
	cr_assert_gt(n1, 1000);
	cr_assert_lt(n1, 2000, "10%% loss must lose something");
	cr_assert_eq(n1, n2);
	cr_assert_arr_eq(ids1, ids2, n1 * sizeof(uint64_t));
}

Test(faults, partition_cuts_and_heals)
{
	struct pair p;
	pair_up(&p, 5, NULL);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 50, &s), 0);
	cr_assert_eq(warp_loop_partition(p.net, "a:1", "b:1", true), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(th_send(p.a, s, 100, NULL), 0);
	pair_run(&p, 10);
	cr_assert_eq(p.lb.n, 0);
	cr_assert_eq(warp_loop_partition(p.net, "a:1", "b:1", false), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(th_send(p.a, s, 100, NULL), 0);
	pair_run(&p, 10);
	cr_assert_eq(p.lb.n, 10);
	cr_assert_eq(p.lb.rx[0].msg_id, 10);
	pair_down(&p);
}

Test(faults, corruption_is_detected_and_dropped)
{
	struct pair p;
	pair_up(&p, 9, NULL);
	warp_loop_fault_t f = { .corrupt = 0.3 };
	cr_assert_eq(warp_loop_set_fault(p.net, "a:1", "b:1", &f), 0);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 50, &s), 0);
	for (int i = 0; i < 3000; i++) {
		cr_assert_eq(th_send(p.a, s, (size_t)(i * 131) % 4000, NULL), 0);
		pair_run(&p, 1);
	}
	pair_run(&p, 100);
	warp_loop_stats_t ls;
	warp_loop_stats(p.net, &ls);
	warp_stats_t sb = stats(p.b);
	cr_assert_gt(ls.corrupted, 20);
	/* every corrupted packet is dropped (the CRC32C trailer, or the magic
	 * and version checks before it); no corrupted payload is delivered */
	cr_assert_eq(sb.drop[WARP_DROP_BAD_CHECKSUM] + sb.drop[WARP_DROP_BAD_MAGIC] +
			     sb.drop[WARP_DROP_BAD_VERSION],
		     ls.corrupted);
	cr_assert_eq(p.lb.bad, 0);
	pair_down(&p);
}

Test(peers, heartbeats_are_answered)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.heartbeat_interval_ns = 1000000; /* 1 ms */
	struct pair p;
	pair_up(&p, 1, &cfg);
	warp_engine_t *es[2] = { p.a, p.b };
	th_run(es, 2, 100, 100000); /* 10 ms */
	warp_stats_t sa = stats(p.a), sb = stats(p.b);
	cr_assert_geq(sa.heartbeats_tx, 9);
	cr_assert_leq(sa.heartbeats_tx, 11);
	/* every heartbeat b received came from a (9..11) plus a's replies to b's */
	cr_assert_eq(sb.heartbeats_rx, sa.heartbeats_tx + sa.heartbeats_rx - sb.heartbeats_tx);
	pair_down(&p);
}
