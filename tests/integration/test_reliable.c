/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery guarantees over the loop driver's seeded faults, manual clock.
 * Every run sends checksummed messages on three streams and checks, per
 * guarantee: exactly-once delivers each message once and in order per
 * stream; at-least-once loses none and keeps order; at-most-once duplicates
 * none; and every sender completion agrees with what the receiver saw.
 */
#include "../helpers.h"

#define N_MSGS 300
#define N_STREAMS 3

struct outcome {
	int completed;
	int status;
};

struct run {
	struct th_env env;
	warp_engine_t *a, *b;
	struct th_log rx;
	struct th_log done; /* completions at a */
	warp_stream_t *s[N_STREAMS];
};

static void run_up(struct run *r, int guarantee, uint64_t seed, uint64_t ack_timeout_ns)
{
	memset(r, 0, sizeof(*r));
	th_env_up(&r->env, "loop", seed);
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.ack_timeout_ns = ack_timeout_ns;
	r->a = th_make(&r->env, "a", &cfg);
	r->b = th_make(&r->env, "b", &cfg);
	warp_peer_t *ab = th_link(r->a, r->b);
	th_link(r->b, r->a);
	th_log_init(&r->rx);
	th_log_init(&r->done);
	warp_engine_set_recv(r->b, th_recv, &r->rx);
	warp_engine_set_completion(r->a, th_recv, &r->done);
	for (int k = 0; k < N_STREAMS; k++) {
		warp_stream_opts_t o = { .priority = (uint8_t)(16 + 50 * k), .guarantee = guarantee };
		cr_assert_eq(warp_stream_open_ex(r->a, ab, (uint16_t)(k + 1), &o, &r->s[k]), 0);
	}
}

static void run_down(struct run *r)
{
	warp_engine_destroy(r->a);
	warp_engine_destroy(r->b);
	th_env_down(&r->env);
	free(r->rx.rx);
	free(r->done.rx);
}

static size_t msg_size(int i)
{
	return (size_t)((i * 7919) % 97 == 0 ? 20000 + i * 13 : (i * 131) % 3000);
}

/* Send N_MSGS round-robin over the streams, polling as we go; then poll
 * until every message has a completion (or max_rounds). The clock moves
 * 100 us per round. */
static void run_traffic(struct run *r, unsigned max_rounds, void (*mid)(struct run *, int))
{
	warp_engine_t *es[2] = { r->a, r->b };
	for (int i = 0; i < N_MSGS; i++) {
		if (mid)
			mid(r, i);
		int rc;
		while ((rc = th_send(r->a, r->s[i % N_STREAMS], msg_size(i), NULL)) == WARP_EAGAIN)
			th_run(es, 2, 1, 100000);
		cr_assert_eq(rc, 0, "%s", warp_strerror(rc));
		th_run(es, 2, 1, 100000);
	}
	for (unsigned k = 0; k < max_rounds && r->done.n < N_MSGS; k++)
		th_run(es, 2, 1, 100000);
}

/* The invariants. */
static void check(struct run *r, int g, bool all_must_arrive)
{
	static int seen[N_STREAMS + 1][N_MSGS];
	static struct outcome out[N_STREAMS + 1][N_MSGS];
	memset(seen, 0, sizeof(seen));
	memset(out, 0, sizeof(out));
	cr_assert_eq(r->rx.bad, 0, "a payload arrived corrupted");
	uint64_t last[N_STREAMS + 1];
	bool any[N_STREAMS + 1] = { false };
	for (size_t i = 0; i < r->rx.n; i++) {
		struct th_rx *m = &r->rx.rx[i];
		cr_assert(m->stream >= 1 && m->stream <= N_STREAMS);
		cr_assert_lt(m->msg_id, N_MSGS);
		seen[m->stream][m->msg_id]++;
		if (g != WARP_AT_MOST_ONCE) { /* in order per stream */
			if (any[m->stream])
				cr_assert_gt(m->msg_id, last[m->stream], "order on stream %u", m->stream);
			last[m->stream] = m->msg_id;
			any[m->stream] = true;
		}
	}
	for (size_t i = 0; i < r->done.n; i++) {
		struct th_rx *c = &r->done.rx[i];
		cr_assert_eq(out[c->stream][c->msg_id].completed, 0, "one completion per message");
		out[c->stream][c->msg_id].completed = 1;
		out[c->stream][c->msg_id].status = c->status;
	}
	cr_assert_eq(r->done.n, N_MSGS, "every message completes (%zu)", r->done.n);
	for (int k = 1; k <= N_STREAMS; k++) {
		uint64_t per_stream = (N_MSGS + N_STREAMS - k) / N_STREAMS;
		for (uint64_t id = 0; id < per_stream; id++) {
			int n = seen[k][id];
			cr_assert_leq(n, 1, "stream %d msg %llu delivered %d times", k,
				      (unsigned long long)id, n);
			if (all_must_arrive && g != WARP_AT_MOST_ONCE)
				cr_assert_eq(n, 1, "stream %d msg %llu lost", k, (unsigned long long)id);
			if (out[k][id].status == 0)
				cr_assert_eq(n, 1, "stream %d msg %llu acknowledged but not delivered",
					     k, (unsigned long long)id);
			if (all_must_arrive && g != WARP_AT_MOST_ONCE)
				cr_assert_eq(out[k][id].status, 0);
		}
	}
}

static void lossy(int g, double loss, uint64_t seed)
{
	struct run r;
	run_up(&r, g, seed, 600000000000ull);
	warp_loop_fault_t f = { .loss = loss };
	cr_assert_eq(warp_loop_set_fault(r.env.net, NULL, NULL, &f), 0);
	run_traffic(&r, 2000000, NULL);
	check(&r, g, true);
	warp_stats_t st;
	warp_engine_stats(r.a, &st);
	if (loss > 0 && g != WARP_AT_MOST_ONCE)
		cr_assert_gt(st.retransmits, 0);
	if (loss == 0) {
		cr_assert_eq(st.retransmits, 0);
		cr_assert_eq(st.msgs_acked, N_MSGS);
	}
	run_down(&r);
}

#define LOSS_TESTS(gname, g)                                                      \
	Test(gname, loss_0) { lossy(g, 0.0, 1); }                                 \
	Test(gname, loss_1) { lossy(g, 0.01, 2); }                                \
	Test(gname, loss_5) { lossy(g, 0.05, 3); }                                \
	Test(gname, loss_20) { lossy(g, 0.20, 4); }                               \
	Test(gname, loss_30) { lossy(g, 0.30, 5); }

LOSS_TESTS(exactly_once, WARP_EXACTLY_ONCE)
LOSS_TESTS(at_least_once, WARP_AT_LEAST_ONCE)
LOSS_TESTS(at_most_once, WARP_AT_MOST_ONCE)

static void faulty(int g, const warp_loop_fault_t *f, uint64_t seed)
{
	struct run r;
	run_up(&r, g, seed, 600000000000ull);
	cr_assert_eq(warp_loop_set_fault(r.env.net, NULL, NULL, f), 0);
	run_traffic(&r, 2000000, NULL);
	check(&r, g, true);
	run_down(&r);
}

static const warp_loop_fault_t dup_fault = { .duplicate = 0.2 };
static const warp_loop_fault_t reorder_fault = { .reorder = 0.3, .reorder_window = 8,
						 .jitter_ns = 300000 };
static const warp_loop_fault_t corrupt_fault = { .corrupt = 0.1 };
static const warp_loop_fault_t everything = { .loss = 0.05, .duplicate = 0.05, .reorder = 0.1,
					      .reorder_window = 4, .corrupt = 0.05,
					      .delay_ns = 200000, .jitter_ns = 100000 };

Test(exactly_once, duplication) { faulty(WARP_EXACTLY_ONCE, &dup_fault, 11); }
Test(exactly_once, reordering) { faulty(WARP_EXACTLY_ONCE, &reorder_fault, 12); }
Test(exactly_once, corruption) { faulty(WARP_EXACTLY_ONCE, &corrupt_fault, 13); }
Test(exactly_once, everything_at_once) { faulty(WARP_EXACTLY_ONCE, &everything, 14); }
Test(at_least_once, duplication) { faulty(WARP_AT_LEAST_ONCE, &dup_fault, 21); }
Test(at_least_once, reordering) { faulty(WARP_AT_LEAST_ONCE, &reorder_fault, 22); }
Test(at_least_once, corruption) { faulty(WARP_AT_LEAST_ONCE, &corrupt_fault, 23); }
Test(at_least_once, everything_at_once) { faulty(WARP_AT_LEAST_ONCE, &everything, 24); }

/* at-most-once under duplication and reordering: nothing twice, nothing
 * corrupted; completions may say timed out for what was delivered (its
 * acknowledgement was lost), never acknowledged for what was not. */
static void amo_faulty(const warp_loop_fault_t *f, uint64_t seed)
{
	struct run r;
	run_up(&r, WARP_AT_MOST_ONCE, seed, 600000000000ull);
	cr_assert_eq(warp_loop_set_fault(r.env.net, NULL, NULL, f), 0);
	run_traffic(&r, 200000, NULL);
	check(&r, WARP_AT_MOST_ONCE, false);
	run_down(&r);
}

Test(at_most_once, duplication) { amo_faulty(&dup_fault, 31); }
Test(at_most_once, reordering) { amo_faulty(&reorder_fault, 32); }
Test(at_most_once, corruption) { amo_faulty(&corrupt_fault, 33); }
Test(at_most_once, everything_at_once) { amo_faulty(&everything, 34); }

static void cut_at_100(struct run *r, int i)
{
	if (i == 100)
		cr_assert_eq(warp_loop_partition(r->env.net, "a:1", "b:1", true), 0);
	if (i == 200) /* heals after 100 messages (10 ms of clock) */
		cr_assert_eq(warp_loop_partition(r->env.net, "a:1", "b:1", false), 0);
}

static void cut_for_good(struct run *r, int i)
{
	if (i == 100)
		cr_assert_eq(warp_loop_partition(r->env.net, "a:1", "b:1", true), 0);
}

Test(exactly_once, partition_that_heals)
{
	struct run r;
	run_up(&r, WARP_EXACTLY_ONCE, 41, 600000000000ull);
	run_traffic(&r, 2000000, cut_at_100);
	check(&r, WARP_EXACTLY_ONCE, true);
	run_down(&r);
}

Test(at_least_once, partition_that_heals)
{
	struct run r;
	run_up(&r, WARP_AT_LEAST_ONCE, 42, 600000000000ull);
	run_traffic(&r, 2000000, cut_at_100);
	check(&r, WARP_AT_LEAST_ONCE, true);
	run_down(&r);
}

static void partition_for_good(int g)
{
	struct run r;
	run_up(&r, g, 43, 50000000); /* ack_timeout 50 ms */
	run_traffic(&r, 200000, cut_for_good);
	check(&r, g, false);
	/* what was sent after the cut times out; the receiver saw none of it */
	size_t timed_out = 0;
	for (size_t i = 0; i < r.done.n; i++)
		timed_out += r.done.rx[i].status == WARP_ETIMEDOUT;
	cr_assert_geq(timed_out, N_MSGS - 100 - 8, "timed out: %zu", timed_out);
	cr_assert_leq(r.rx.n, 100 + 8);
	run_down(&r);
}

Test(exactly_once, partition_that_does_not_heal) { partition_for_good(WARP_EXACTLY_ONCE); }
Test(at_least_once, partition_that_does_not_heal) { partition_for_good(WARP_AT_LEAST_ONCE); }
Test(at_most_once, partition_that_does_not_heal) { partition_for_good(WARP_AT_MOST_ONCE); }

/* A message the receiving application refuses completes as not
 * acknowledged, with its reason; the stream goes on. */
static void reject_7(void *user, const warp_msg_t *m)
{
	struct run *r = user;
	if (m->stream_id == 1 && m->msg_id == 7) {
		cr_assert_eq(warp_msg_reject(r->b, 4242), 0);
		return;
	}
	th_recv(&r->rx, m);
}

Test(exactly_once, rejected_message_is_nacked_with_its_reason)
{
	struct run r;
	run_up(&r, WARP_EXACTLY_ONCE, 51, 600000000000ull);
	warp_engine_set_recv(r.b, reject_7, &r);
	cr_assert_eq(warp_msg_reject(r.b, 1), WARP_ESTATE, "only inside the callback");
	run_traffic(&r, 200000, NULL);
	cr_assert_eq(r.done.n, N_MSGS);
	int nacked = 0;
	for (size_t i = 0; i < r.done.n; i++) {
		struct th_rx *c = &r.done.rx[i];
		if (c->stream == 1 && c->msg_id == 7) {
			cr_assert_eq(c->status, WARP_ENACK);
			nacked++;
		} else {
			cr_assert_eq(c->status, 0);
		}
	}
	cr_assert_eq(nacked, 1);
	cr_assert_eq(r.rx.n, N_MSGS - 1);
	warp_stats_t st;
	warp_engine_stats(r.a, &st);
	cr_assert_eq(st.msgs_nacked, 1);
	run_down(&r);
}

/* A receiver that only acknowledges (its packets need no acknowledgement)
 * for far more than max_unacked_pkts packets can still send afterwards:
 * its pure ACKs do not fill its window. */
Test(at_least_once, one_way_traffic_does_not_block_the_reverse_direction)
{
	struct run r;
	run_up(&r, WARP_AT_LEAST_ONCE, 61, 600000000000ull);
	warp_engine_t *es[2] = { r.a, r.b };
	for (int i = 0; i < 5000; i++) { /* > 1024 packets of 1000 bytes */
		cr_assert_eq(th_send(r.a, r.s[0], 1000, NULL), 0);
		th_run(es, 2, 1, 1000);
	}
	th_run(es, 2, 100, 1000);
	cr_assert_eq(r.rx.n, 5000);
	warp_peer_t *ba;
	cr_assert_eq(warp_peer_find(r.b, "a", &ba), 0);
	warp_stream_t *back;
	cr_assert_eq(warp_stream_open(r.b, ba, 9, 16, &back), 0);
	struct th_log at_a;
	th_log_init(&at_a);
	warp_engine_set_recv(r.a, th_recv, &at_a);
	cr_assert_eq(th_send(r.b, back, 10, NULL), 0);
	th_run(es, 2, 10, 1000);
	cr_assert_eq(at_a.n, 1, "b could still send");
	free(at_a.rx);
	run_down(&r);
}

/* Flow control: a receiver that reads slowly (a small channel ring, a
 * small receive arena) is never overrun: the sender stays within the
 * advertised window and gets WARP_EAGAIN instead; nothing is dropped at the
 * receiver and everything arrives once, in order. */
Test(flow, slow_receiver_is_never_overrun)
{
	struct th_env env;
	th_env_up(&env, "loop", 71);
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.max_payload_bytes = 16384;
	cfg.rx_arena_bytes = 1u << 20;
	cfg.rx_window_bytes = 256u << 10;
	cfg.channel_ring_bytes = 64u << 10;
	cfg.default_guarantee = WARP_EXACTLY_ONCE;
	warp_engine_t *a = th_make(&env, "a", &cfg);
	warp_engine_t *b = th_make(&env, "b", &cfg);
	warp_peer_t *ab = th_link(a, b);
	th_link(b, a);
	warp_channel_t *rx;
	cr_assert_eq(warp_channel_open(b, WARP_CHANNEL_RECV, &rx), 0);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &s), 0);
	warp_engine_t *es[2] = { a, b };
	const int n = 2000;
	int sent = 0, eagain = 0;
	size_t got = 0;
	uint64_t next = 0, max_inflight = 0;
	for (int round = 0; round < 2000000 && got < (size_t)n; round++) {
		if (sent < n) {
			int rc = th_send(a, s, 2000, NULL);
			if (rc == WARP_EAGAIN)
				eagain++;
			else {
				cr_assert_eq(rc, 0, "%s", warp_strerror(rc));
				sent++;
			}
		}
		th_run(es, 2, 1, 10000);
		if (ab->inflight_bytes > max_inflight)
			max_inflight = ab->inflight_bytes;
		if (round % 20 == 0) { /* the slow application: 2 messages now and then */
			warp_msg_t m[2];
			int k = warp_channel_recv_burst(rx, m, 2);
			for (int i = 0; i < k; i++) {
				cr_assert_eq(m[i].msg_id, next++, "in order, once");
				cr_assert(th_check(m[i].data, m[i].len, th_seed(1, m[i].msg_id, m[i].len)));
			}
			warp_channel_recv_done(rx);
			got += (size_t)k;
		}
	}
	cr_assert_eq(got, (size_t)n);
	warp_stats_t sa, sb;
	warp_engine_stats(a, &sa);
	warp_engine_stats(b, &sb);
	cr_assert_gt(eagain + (int)sa.flow_blocked, 0, "the sender was held back");
	cr_assert_leq(max_inflight, cfg.rx_window_bytes + cfg.mtu, "within the window");
	cr_assert_eq(sb.drop[WARP_DROP_RX_BACKPRESSURE], 0, "never overrun");
	cr_assert_eq(sb.drop[WARP_DROP_NO_BUFFER] + sb.drop[WARP_DROP_REASSEMBLY_FULL], 0);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	th_env_down(&env);
}

/* The ACK frame names exactly the packet numbers the window holds (up to
 * 32 ranges), for random windows. */
Test(acks, ack_ranges_match_the_receive_window)
{
	struct run r;
	run_up(&r, WARP_AT_LEAST_ONCE, 81, 600000000000ull);
	warp_peer_t *p;
	cr_assert_eq(warp_peer_find(r.b, "a", &p), 0);
	uint64_t x = 88172645463325252ull;
	for (int iter = 0; iter < 2000; iter++) {
		memset(p->rx_window, 0, sizeof(p->rx_window));
		p->rx_run_ok = false; /* the window is written here, not received */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t largest = 1 + x % 5000;
		p->rx_largest = largest;
		const uint64_t span = (WARP_RX_WINDOW_WORDS - 1) * 64;
		uint64_t floor = largest > span ? largest - span + 1 : 1;
		unsigned density = (unsigned)(x >> 40) % 100;
		for (uint64_t n = floor; n <= largest; n++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			if (n == largest || x % 100 < density)
				p->rx_window[(n / 64) % WARP_RX_WINDOW_WORDS] |= 1ull << (n & 63);
		}
		uint64_t top = largest;
		if (iter % 3 == 0) { /* the largest was refused after it moved the window */
			p->rx_window[(largest / 64) % WARP_RX_WINDOW_WORDS] &= ~(1ull << (largest & 63));
			while (top >= floor &&
			       !((p->rx_window[(top / 64) % WARP_RX_WINDOW_WORDS] >> (top & 63)) & 1))
				top--;
		}
		uint8_t buf[1024];
		size_t len = warp__ack_encode(r.b, p, buf, sizeof(buf));
		if (top < floor) {
			cr_assert_eq(len, 0, "nothing to acknowledge");
			continue;
		}
		cr_assert_gt(len, 0);
		/* decode and compare, number by number, down to where it stops */
		struct warp_frame f;
		size_t off = 0;
		uint8_t pkt[1100];
		size_t hl = warp__hdr_encode(pkt, sizeof(pkt), WARP_PKT_FRAMES, 1, 1);
		memcpy(pkt + hl, buf, len);
		off = hl;
		cr_assert_eq(warp__frame_next(pkt, hl + len, &off, &f), 1);
		cr_assert_eq(f.u.ack.largest, top, "the highest number received");
		uint64_t hi = top, lo = top - f.u.ack.first_range, covered_to = lo;
		unsigned i = 0;
		for (;;) {
			for (uint64_t n = lo; n <= hi; n++)
				cr_assert((p->rx_window[(n / 64) % WARP_RX_WINDOW_WORDS] >> (n & 63)) & 1,
					  "iter %d: %llu acked but not received", iter,
					  (unsigned long long)n);
			covered_to = lo;
			if (i == f.u.ack.nranges)
				break;
			uint64_t gap = warp__get32(f.u.ack.ranges + i * 8);
			uint64_t rl = warp__get32(f.u.ack.ranges + i * 8 + 4);
			for (uint64_t n = lo - gap - 1; n < lo; n++)
				cr_assert(!((p->rx_window[(n / 64) % WARP_RX_WINDOW_WORDS] >> (n & 63)) & 1),
					  "iter %d: %llu received but skipped", iter, (unsigned long long)n);
			hi = lo - gap - 2;
			lo = hi - rl;
			i++;
		}
		if (f.u.ack.nranges < WARP_FRAME_ACK_MAX_RANGES) /* complete: nothing below */
			for (uint64_t n = floor; n < covered_to; n++)
				cr_assert(!((p->rx_window[(n / 64) % WARP_RX_WINDOW_WORDS] >> (n & 63)) & 1),
					  "iter %d: %llu received but not acked", iter,
					  (unsigned long long)n);
		if (top != largest)
			continue;
		/* then packets arrive in order (what keeps the encoder's cached
		 * run valid): the cached encoding equals a full scan */
		unsigned more = 1 + (unsigned)(x % 200);
		for (unsigned k = 0; k < more; k++) {
			uint64_t n = ++p->rx_largest; /* as rx_window_check does in order */
			if (n % 64 == 0)
				p->rx_window[(n / 64) % WARP_RX_WINDOW_WORDS] = 0;
			p->rx_window[(n / 64) % WARP_RX_WINDOW_WORDS] |= 1ull << (n & 63);
			if (k % 7 == 0 || k + 1 == more) {
				uint8_t cached[1024], full[1024];
				size_t lc = warp__ack_encode(r.b, p, cached, sizeof(cached));
				bool keep = p->rx_run_ok;
				uint64_t keep_lo = p->rx_run_lo;
				p->rx_run_ok = false;
				size_t lf = warp__ack_encode(r.b, p, full, sizeof(full));
				cr_assert(keep, "an in-order run keeps the cache");
				cr_assert_eq(p->rx_run_lo, keep_lo);
				cr_assert_eq(lc, lf, "iter %d", iter);
				cr_assert_eq(memcmp(cached, full, lc), 0, "iter %d: cached ack differs",
					     iter);
			}
		}
	}
	run_down(&r);
}

/* Engines a and b on a loop net, linked both ways with the session up; b
 * logs what it receives, a its completions; a's stream 1 to b is ordered
 * at-least-once (pair_up_as: `guarantee`), priority 16. */
struct pair {
	struct th_env env;
	warp_engine_t *a, *b;
	warp_peer_t *ab, *ba;
	warp_stream_t *s;
	struct th_log rx, done;
};

static void pair_up_as(struct pair *t, warp_config_t *cfg, uint64_t seed, int guarantee)
{
	memset(t, 0, sizeof(*t));
	th_env_up(&t->env, "loop", seed);
	t->a = th_make(&t->env, "a", cfg);
	t->b = th_make(&t->env, "b", cfg);
	t->ab = th_link(t->a, t->b);
	t->ba = th_link(t->b, t->a);
	th_up2(t->a, t->ab, t->b, t->ba);
	th_log_init(&t->rx);
	th_log_init(&t->done);
	warp_engine_set_recv(t->b, th_recv, &t->rx);
	warp_engine_set_completion(t->a, th_recv, &t->done);
	warp_stream_opts_t o = { .priority = 16, .guarantee = (uint8_t)guarantee };
	cr_assert_eq(warp_stream_open_ex(t->a, t->ab, 1, &o, &t->s), 0);
}

static void pair_up(struct pair *t, warp_config_t *cfg, uint64_t seed)
{
	pair_up_as(t, cfg, seed, WARP_AT_LEAST_ONCE);
}

static void pair_down(struct pair *t)
{
	warp_engine_destroy(t->a);
	warp_engine_destroy(t->b);
	th_env_down(&t->env);
	free(t->rx.rx);
	free(t->done.rx);
}

/* A loop filter: drops the packets from `from` that carry a frame `match`
 * picks, the first `limit` of them (0: all), and counts them. m0 and m1 are
 * for matchers that count further. */
struct frame_drop {
	const char *from;
	bool (*match)(struct frame_drop *d, const struct warp_frame *f);
	int dropped, limit;
	int m0, m1;
};
static bool drop_frames(void *arg, const char *from, const char *to, const uint8_t *pkt,
			uint32_t len)
{
	struct frame_drop *d = arg;
	(void)to;
	if ((d->limit && d->dropped >= d->limit) || strcmp(from, d->from) != 0)
		return true;
	struct warp_pkt_hdr h;
	if (warp__pkt_validate(pkt, len, 9000, UINT32_MAX, &h, NULL))
		return true;
	size_t off = WARP_WIRE_HDR_LEN;
	struct warp_frame f;
	while (warp__frame_next(pkt, len - WARP_WIRE_CRC_LEN, &off, &f))
		if (d->match(d, &f)) {
			d->dropped++;
			return false;
		}
	return true;
}

static bool is_s1_m0(struct frame_drop *d, const struct warp_frame *f)
{
	(void)d;
	return f->type == WARP_FRAME_STREAM && f->u.stream.stream_id == 1 && f->u.stream.msg_id == 0;
}

/* A refusal whose NACK is lost is still reported: the NACK goes out again,
 * first in every packet until one that carried it is acknowledged, so the
 * ACK of the refused message never reaches the sender without it. It used
 * to be sent once: lost, the message completed as acknowledged. */
static bool is_nack(struct frame_drop *d, const struct warp_frame *f)
{
	(void)d;
	return f->type == WARP_FRAME_NACK;
}

struct refuser {
	warp_engine_t *b;
	struct th_log log;
};
static void refuse_multiples_of_5(void *user, const warp_msg_t *m)
{
	struct refuser *r = user;
	if (m->msg_id % 5 == 0) {
		cr_assert_eq(warp_msg_reject(r->b, (uint16_t)(700 + m->msg_id)), 0);
		cr_assert_eq(warp_msg_reject(r->b, 1), 0, "a second call changes nothing");
		warp_engine_poll(r->b); /* nested: the refusal is kept */
		return;
	}
	th_recv(&r->log, m);
}

static void lost_nacks(int guarantee, int drops)
{
	struct th_env env;
	th_env_up(&env, "loop", 93);
	warp_config_t cfg;
	warp_config_init(&cfg);
	warp_engine_t *a = th_make(&env, "a", &cfg);
	warp_engine_t *b = th_make(&env, "b", &cfg);
	warp_peer_t *ab = th_link(a, b);
	th_link(b, a);
	struct refuser rf = { .b = b };
	th_log_init(&rf.log);
	warp_engine_set_recv(b, refuse_multiples_of_5, &rf);
	struct th_log done;
	th_log_init(&done);
	warp_engine_set_completion(a, th_recv, &done);
	warp_stream_opts_t o = { .priority = 16, .guarantee = (uint8_t)guarantee };
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open_ex(a, ab, 1, &o, &s), 0);
	struct frame_drop d = { .from = "b:1", .match = is_nack, .limit = drops };
	warp_loop_set_filter(env.net, drop_frames, &d);
	warp_engine_t *es[2] = { a, b };
	/* one message at a time, so none waits behind another for order */
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(th_send(a, s, 100, NULL), 0);
		for (int k = 0; k < 20000 && done.n < (size_t)i + 1; k++)
			th_run(es, 2, 1, 100000);
		cr_assert_eq(done.n, (size_t)i + 1, "message %d completed", i);
	}
	cr_assert_eq(d.dropped, drops, "b's NACK packets dropped: %d", d.dropped);
	for (size_t i = 0; i < done.n; i++) {
		struct th_rx *c = &done.rx[i];
		if (c->msg_id % 5 == 0) {
			cr_assert_eq(c->status, WARP_ENACK, "message %llu was refused, completed with "
				     "%s", (unsigned long long)c->msg_id, warp_strerror(c->status));
			cr_assert_eq(c->nack_reason, 700 + c->msg_id);
		} else {
			cr_assert_eq(c->status, 0, "message %llu: %s", (unsigned long long)c->msg_id,
				     warp_strerror(c->status));
		}
	}
	cr_assert_eq(rf.log.n, 32, "delivered %zu", rf.log.n);
	cr_assert_eq(rf.log.bad, 0);
	warp_stats_t sa, sb;
	warp_engine_stats(a, &sa);
	warp_engine_stats(b, &sb);
	cr_assert_eq(sa.msgs_nacked, 8);
	cr_assert_eq(sb.nacks_unsent, 0);
	cr_assert_eq(sb.msgs_delivered, 32);
	cr_assert_eq(b->peers[0].n_nacks, 0, "every NACK was read and left the list");
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	th_env_down(&env);
	free(rf.log.rx);
	free(done.rx);
}

Test(at_least_once, a_refusal_whose_nack_is_lost_is_still_reported)
{
	lost_nacks(WARP_AT_LEAST_ONCE, 6);
}
Test(exactly_once, a_refusal_whose_nack_is_lost_is_still_reported)
{
	lost_nacks(WARP_EXACTLY_ONCE, 6);
}

/* More refusals in one round trip than the NACK list holds (16 per peer):
 * the ones beyond cannot be reported, and the sender takes those messages as
 * delivered. warp_msg_reject says so (WARP_EAGAIN, with the limit in the
 * detail), so the application knows to handle them as delivered; it used to
 * return 0 for them too. Each message's completion matches what the
 * receiver was told. */
struct refuse_all {
	warp_engine_t *b;
	int rc[256];  /* warp_msg_reject's result per message id */
	int calls;
	char detail[256];
};
static void refuse_everything(void *user, const warp_msg_t *m)
{
	struct refuse_all *r = user;
	cr_assert_lt(m->msg_id, 256);
	r->rc[m->msg_id] = warp_msg_reject(r->b, 9);
	r->calls++;
	if (r->rc[m->msg_id] == WARP_EAGAIN) {
		snprintf(r->detail, sizeof(r->detail), "%s", warp_errdetail());
		cr_assert_eq(warp_msg_reject(r->b, 9), WARP_EAGAIN, "a second call says the same");
	}
}

static void refusals_beyond_the_list(int guarantee)
{
	struct pair t;
	warp_config_t cfg;
	warp_config_init(&cfg);
	pair_up_as(&t, &cfg, 97, guarantee);
	struct refuse_all rf = { .b = t.b };
	warp_engine_set_recv(t.b, refuse_everything, &rf);
	enum { N = 200 };
	for (int i = 0; i < N; i++) /* all queued before b reads any */
		cr_assert_eq(th_send(t.a, t.s, 40, NULL), 0);
	warp_engine_t *es[2] = { t.a, t.b };
	for (int k = 0; k < 20000 && t.done.n < N; k++)
		th_run(es, 2, 1, 100000);
	cr_assert_eq(t.done.n, N, "completed %zu of %d", t.done.n, N);
	cr_assert_eq(rf.calls, N, "each message delivered once: %d", rf.calls);
	int nacked = 0, unsent = 0;
	for (size_t i = 0; i < t.done.n; i++) {
		struct th_rx *c = &t.done.rx[i];
		int rc = rf.rc[c->msg_id];
		cr_assert(rc == 0 || rc == WARP_EAGAIN, "message %llu: reject gave %d",
			  (unsigned long long)c->msg_id, rc);
		if (rc == 0) {
			cr_assert_eq(c->status, WARP_ENACK, "message %llu refused, completed with %s",
				     (unsigned long long)c->msg_id, warp_strerror(c->status));
			cr_assert_eq(c->nack_reason, 9);
			nacked++;
		} else {
			cr_assert_eq(c->status, 0, "message %llu: b was told its refusal is unsent, "
				     "completed with %s", (unsigned long long)c->msg_id,
				     warp_strerror(c->status));
			unsent++;
		}
	}
	cr_assert_geq(nacked, 16, "nacked %d", nacked);
	cr_assert_gt(unsent, 0, "the list overflowed: nacked %d, unsent %d", nacked, unsent);
	cr_assert(strstr(rf.detail, "16 refusals wait unread") != NULL, "detail: %s", rf.detail);
	warp_stats_t sa, sb;
	warp_engine_stats(t.a, &sa);
	warp_engine_stats(t.b, &sb);
	cr_assert_eq(sa.msgs_nacked, (uint64_t)nacked);
	cr_assert_eq(sb.nacks_unsent, (uint64_t)unsent);
	cr_assert_eq(sb.msgs_delivered, (uint64_t)unsent, "the unsent refusals count as delivered");
	pair_down(&t);
}

Test(at_least_once, refusals_beyond_the_nack_list_are_reported_to_the_refuser)
{
	refusals_beyond_the_list(WARP_AT_LEAST_ONCE);
}
Test(exactly_once, refusals_beyond_the_nack_list_are_reported_to_the_refuser)
{
	refusals_beyond_the_list(WARP_EXACTLY_ONCE);
}

/* A message that waited for order behind a lost one: by the time the gap
 * fills, b has acknowledged its packet and a has settled it as delivered, so
 * a refusal cannot be reported. warp_msg_reject says so (WARP_EAGAIN) and
 * sends no NACK; it used to return 0. A refusal of a message that did not
 * wait is reported as before. */
struct refuse_ids {
	warp_engine_t *b;
	uint64_t ids[2];
	int rc[2];
	char detail[256];
	struct th_log log;
};
static void refuse_listed(void *user, const warp_msg_t *m)
{
	struct refuse_ids *r = user;
	for (int i = 0; i < 2; i++)
		if (m->stream_id == 1 && m->msg_id == r->ids[i]) {
			r->rc[i] = warp_msg_reject(r->b, (uint16_t)(50 + i));
			if (r->rc[i] == WARP_EAGAIN)
				snprintf(r->detail, sizeof(r->detail), "%s", warp_errdetail());
			return;
		}
	th_recv(&r->log, m);
}

static void refusal_after_the_wait(int guarantee)
{
	struct pair t;
	warp_config_t cfg;
	warp_config_init(&cfg);
	pair_up_as(&t, &cfg, 98, guarantee);
	/* message 3 waits behind message 0, lost once; 14 is sent after all
	 * of 0..9 have completed. 1200 bytes: one message per packet */
	struct refuse_ids rf = { .b = t.b, .ids = { 3, 14 }, .rc = { 1, 1 } };
	th_log_init(&rf.log);
	warp_engine_set_recv(t.b, refuse_listed, &rf);
	struct frame_drop d = { .from = "a:1", .match = is_s1_m0, .limit = 1 };
	warp_loop_set_filter(t.env.net, drop_frames, &d);
	warp_engine_t *es[2] = { t.a, t.b };
	for (int i = 0; i < 10; i++)
		cr_assert_eq(th_send(t.a, t.s, 1200, NULL), 0);
	for (int k = 0; k < 20000 && t.done.n < 10; k++)
		th_run(es, 2, 1, 100000);
	cr_assert_eq(t.done.n, 10, "completed %zu of 10", t.done.n);
	cr_assert_eq(d.dropped, 1);
	for (int i = 10; i < 20; i++)
		cr_assert_eq(th_send(t.a, t.s, 1200, NULL), 0);
	for (int k = 0; k < 20000 && t.done.n < 20; k++)
		th_run(es, 2, 1, 100000);
	cr_assert_eq(t.done.n, 20, "completed %zu of 20", t.done.n);
	cr_assert_eq(rf.rc[0], WARP_EAGAIN, "message 3 waited and was acknowledged: %d", rf.rc[0]);
	cr_assert(strstr(rf.detail, "waited for order") != NULL, "detail: %s", rf.detail);
	cr_assert_eq(rf.rc[1], 0, "message 14 did not wait: its refusal is reported");
	for (size_t i = 0; i < t.done.n; i++) {
		struct th_rx *c = &t.done.rx[i];
		int want = c->msg_id == 14 ? WARP_ENACK : 0;
		cr_assert_eq(c->status, want, "message %llu completed with %s",
			     (unsigned long long)c->msg_id, warp_strerror(c->status));
	}
	cr_assert_eq(rf.log.n, 18);
	warp_stats_t sa, sb;
	warp_engine_stats(t.a, &sa);
	warp_engine_stats(t.b, &sb);
	cr_assert_eq(sa.msgs_nacked, 1);
	cr_assert_eq(sb.nacks_unsent, 1);
	cr_assert_eq(sb.msgs_delivered, 19, "18 taken, and 3, whose refusal was not sent");
	free(rf.log.rx);
	pair_down(&t);
}

Test(at_least_once, a_refusal_after_the_wait_for_order_is_reported_to_the_refuser)
{
	refusal_after_the_wait(WARP_AT_LEAST_ONCE);
}
Test(exactly_once, a_refusal_after_the_wait_for_order_is_reported_to_the_refuser)
{
	refusal_after_the_wait(WARP_EXACTLY_ONCE);
}

/* A refusal while the receiver's own packets fill its sent ring (it cannot
 * track another packet): its ACK went out alone, the sender settled the
 * message as acknowledged and ignored the NACK that came later. Now every
 * packet that carries an ACK carries the NACKs first, tracked or not. */
static bool is_stream(struct frame_drop *d, const struct warp_frame *f)
{
	(void)d;
	return f->type == WARP_FRAME_STREAM;
}

static warp_engine_t *refusing_b;
static void refuse_all(void *user, const warp_msg_t *m)
{
	(void)m;
	cr_assert_eq(warp_msg_reject(refusing_b, 77), 0);
	(*(int *)user)++;
}

Test(at_least_once, a_refusal_while_the_receivers_sent_ring_is_full_is_reported)
{
	struct th_env env;
	th_env_up(&env, "loop", 12);
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.max_unacked_pkts = 16;
	cfg.rto_min_ns = cfg.rto_initial_ns = 100000000;
	warp_engine_t *a = th_make(&env, "a", &cfg);
	warp_engine_t *b = th_make(&env, "b", &cfg);
	warp_peer_t *ab = th_link(a, b);
	warp_peer_t *ba = th_link(b, a);
	int refused = 0;
	refusing_b = b;
	warp_engine_set_recv(b, refuse_all, &refused);
	struct th_log done, at_a;
	th_log_init(&done);
	th_log_init(&at_a);
	warp_engine_set_completion(a, th_recv, &done);
	warp_engine_set_recv(a, th_recv, &at_a);
	warp_stream_t *s_ab, *s_ba;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &s_ab), 0);
	cr_assert_eq(warp_stream_open(b, ba, 2, 16, &s_ba), 0);
	struct frame_drop d = { .from = "b:1", .match = is_stream };
	warp_loop_set_filter(env.net, drop_frames, &d);
	warp_engine_t *es[2] = { a, b };
	for (int i = 0; i < 17; i++) { /* b's data is lost: its sent ring fills */
		cr_assert_eq(th_send(b, s_ba, 100, NULL), 0);
		th_run(es, 2, 1, 10000);
	}
	cr_assert_geq(ba->next_pkt_num - ba->sent_tail, 16, "b's sent ring is full");
	cr_assert_eq(th_send(a, s_ab, 10, NULL), 0);
	th_run(es, 2, 3000, 100000);
	cr_assert_eq(refused, 1);
	cr_assert_geq(done.n, 1);
	cr_assert_eq(done.rx[0].status, WARP_ENACK, "the refused message completed with %s",
		     warp_strerror(done.rx[0].status));
	cr_assert_eq(done.rx[0].nack_reason, 77);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	th_env_down(&env);
	free(done.rx);
	free(at_a.rx);
}

/* A message given up while an older one of its ordered stream is still in
 * flight (a one-fragment message has fewer retries than a four-fragment
 * one) is announced once the older one settles: the receiver used to wait
 * for it for good, and everything after it stayed acknowledged but never
 * delivered. */
/* message 1 of stream 1: every sending; message 0's later fragments: the
 * first four */
static bool is_m1_or_early_m0_tail(struct frame_drop *d, const struct warp_frame *f)
{
	if (f->type != WARP_FRAME_STREAM || f->u.stream.stream_id != 1)
		return false;
	if (f->u.stream.msg_id == 1) {
		d->m1++;
		return true;
	}
	if (f->u.stream.msg_id == 0 && f->u.stream.offset > 0 && d->m0 < 4) {
		d->m0++;
		return true;
	}
	return false;
}

Test(at_least_once, a_message_given_up_behind_an_older_one_does_not_stall_the_stream)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.ack_timeout_ns = 0; /* given up by retries only */
	cfg.max_retries = 2;
	cfg.breaker_failure_threshold = 0;
	struct pair t;
	pair_up(&t, &cfg, 13);
	struct frame_drop d = { .from = "a:1", .match = is_m1_or_early_m0_tail };
	warp_loop_set_filter(t.env.net, drop_frames, &d);
	warp_engine_t *es[2] = { t.a, t.b };
	cr_assert_eq(th_send(t.a, t.s, 5000, NULL), 0); /* 4 fragments: 8 resends allowed */
	cr_assert_eq(th_send(t.a, t.s, 100, NULL), 0);  /* 1 fragment: 2 resends */
	th_run(es, 2, 5000, 100000);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(th_send(t.a, t.s, 100, NULL), 0);
	th_run(es, 2, 30000, 100000);
	cr_assert_eq(d.m0, 4, "message 0 was resent past its losses");
	cr_assert_eq(t.done.n, 6);
	for (size_t i = 0; i < t.done.n; i++) {
		struct th_rx *c = &t.done.rx[i];
		cr_assert_eq(c->status, c->msg_id == 1 ? WARP_ETIMEDOUT : 0, "message %llu: %s",
			     (unsigned long long)c->msg_id, warp_strerror(c->status));
	}
	cr_assert_eq(t.rx.n, 5, "delivered %zu of 5", t.rx.n);
	uint64_t want[5] = { 0, 2, 3, 4, 5 };
	for (size_t i = 0; i < t.rx.n; i++)
		cr_assert_eq(t.rx.rx[i].msg_id, want[i], "delivery %zu is message %llu", i,
			     (unsigned long long)t.rx.rx[i].msg_id);
	cr_assert_eq(t.rx.bad, 0);
	pair_down(&t);
}

/* Messages a stream cannot frame because the receiver grants no more
 * credit (it is gone) time out too: the wait counts against ack_timeout.
 * They used to stay queued for ever (never framed, never given a deadline),
 * and warp_engine_shutdown could only time out. When the peer is back, the
 * stream goes on past them. */
Test(flow, messages_waiting_for_credit_time_out_when_the_peer_is_gone)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.ack_timeout_ns = 10000000; /* 10 ms */
	cfg.breaker_failure_threshold = 0;
	cfg.stream_window_msgs = 4;
	struct pair t;
	pair_up(&t, &cfg, 8);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", true), 0);
	warp_engine_t *es[2] = { t.a, t.b };
	for (int i = 0; i < 10; i++)
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	th_run(es, 2, 3000, 100000); /* 300 ms */
	cr_assert_eq(t.done.n, 10, "completions: %zu of 10", t.done.n);
	for (size_t i = 0; i < t.done.n; i++)
		cr_assert_eq(t.done.rx[i].status, WARP_ETIMEDOUT);
	cr_assert_eq(t.a->unsettled, 0);
	warp_stats_t st;
	warp_engine_stats(t.a, &st);
	cr_assert_gt(st.flow_blocked, 0, "the stream waited for credit");
	cr_assert_eq(st.msgs_timed_out, 10);
	/* the peer is back: once the STREAM_LOW lost in the partition has been
	 * resent (at t.a't.s backed-off resend timeout) and t.b grants credit again,
	 * what follows is delivered */
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", false), 0);
	th_run(es, 2, 50000, 100000); /* 5 t.s */
	cr_assert_geq(t.s->credit_max, 14, "b grants past the given-up ones: %llu",
		      (unsigned long long)t.s->credit_max);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	th_run(es, 2, 1000, 100000);
	cr_assert_eq(t.done.n, 13);
	for (size_t i = 10; i < t.done.n; i++)
		cr_assert_eq(t.done.rx[i].status, 0, "message %llu: %s",
			     (unsigned long long)t.done.rx[i].msg_id, warp_strerror(t.done.rx[i].status));
	cr_assert_eq(t.rx.n, 3);
	cr_assert_eq(t.rx.bad, 0);
	pair_down(&t);
}

/* The message an ordered stream waits for keeps its partial reassembly past
 * reassembly_timeout while its sender is heard from: its first fragment was
 * acknowledged and is never resent, so dropping the partial used to leave
 * the message acknowledged and never delivered, and the stream stalled for
 * good behind it. */
static bool is_m0_tail(struct frame_drop *d, const struct warp_frame *f)
{
	(void)d;
	return f->type == WARP_FRAME_STREAM && f->u.stream.stream_id == 1 &&
	       f->u.stream.msg_id == 0 && f->u.stream.offset > 0;
}

Test(flow, the_awaited_message_outlives_reassembly_timeout_while_its_sender_resends)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.reassembly_timeout_ns = 1000000; /* 1 ms: below the 20 ms first resend timeout */
	cfg.stream_window_msgs = 4;
	cfg.ack_timeout_ns = 0; /* given up by max_retries only */
	struct pair t;
	pair_up(&t, &cfg, 9);
	struct frame_drop d = { .from = "a:1", .match = is_m0_tail, .limit = 4 };
	warp_loop_set_filter(t.env.net, drop_frames, &d);
	warp_engine_t *es[2] = { t.a, t.b };
	cr_assert_eq(th_send(t.a, t.s, 2000, NULL), 0); /* two fragments */
	for (int i = 0; i < 9; i++) {
		int rc;
		while ((rc = th_send(t.a, t.s, 100, NULL)) == WARP_EAGAIN)
			th_run(es, 2, 10, 100000);
		cr_assert_eq(rc, 0);
	}
	for (int k = 0; k < 100000 && t.done.n < 10; k++)
		th_run(es, 2, 1, 100000);
	warp_stats_t sb;
	warp_engine_stats(t.b, &sb);
	cr_assert_eq(d.dropped, 4);
	cr_assert_eq(t.done.n, 10, "completions %zu; delivered %zu; b reassembly timeouts %llu; a unsettled %llu",
		     t.done.n, t.rx.n, (unsigned long long)sb.reassembly_timeouts, (unsigned long long)t.a->unsettled);
	for (size_t i = 0; i < t.done.n; i++)
		cr_assert_eq(t.done.rx[i].status, 0);
	cr_assert_eq(t.rx.n, 10, "delivered %zu of 10", t.rx.n);
	for (size_t i = 0; i < t.rx.n; i++)
		cr_assert_eq(t.rx.rx[i].msg_id, i);
	cr_assert_eq(t.rx.bad, 0);
	pair_down(&t);
}

/* One plaintext packet with a valid CRC and a packet number far ahead (forged,
 * or corrupted past the CRC) is dropped and named: it used to move the
 * receive window past every genuine packet, which were then all dropped as
 * old until a new session. */
Test(flow, a_packet_number_far_ahead_is_dropped_and_the_connection_goes_on)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	struct pair t;
	pair_up(&t, &cfg, 10);
	warp_engine_t *es[2] = { t.a, t.b };
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	th_run(es, 2, 50, 100000);
	cr_assert_eq(t.rx.n, 1);
	cr_assert_eq(t.ba->encrypted, false);
	uint64_t jumps[2] = { 1ull << 62, t.ba->rx_largest + WARP_PKT_NUM_JUMP_MAX + 1 };
	for (int i = 0; i < 2; i++) {
		uint8_t fr[64];
		size_t n = warp__frame_heartbeat_encode(fr, sizeof(fr), WARP_HEARTBEAT_REPLY, 1, 0);
		th_inject(t.b, "a", 0, jumps[i], fr, n);
	}
	warp_stats_t sb;
	warp_engine_stats(t.b, &sb);
	cr_assert_eq(sb.drop[WARP_DROP_PKT_NUM_JUMP], 2);
	cr_assert_str_eq(warp_drop_reason_name(WARP_DROP_PKT_NUM_JUMP), "pkt_num_jump");
	for (int i = 0; i < 5; i++)
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	th_run(es, 2, 3000, 100000);
	warp_engine_stats(t.b, &sb);
	cr_assert_eq(t.rx.n, 6, "delivered %zu of 6 (old_packet drops %llu)", t.rx.n,
		     (unsigned long long)sb.drop[WARP_DROP_OLD_PACKET]);
	cr_assert_eq(sb.drop[WARP_DROP_OLD_PACKET], 0);
	pair_down(&t);
}

/* An exactly-once stream whose first event at the receiver is a STREAM_LOW
 * (its first message timed out): the slot the mark made was at-least-once,
 * and stayed so when exactly-once data followed, so a reopen wiped its
 * deduplication and a resent message could be delivered again. */
static struct warp_rxstream *rx_slot(struct warp_peer *p, uint16_t id, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (p->rxs[i].used && p->rxs[i].id == id)
			return &p->rxs[i];
	return NULL;
}

Test(exactly_once, a_stream_first_seen_in_a_stream_low_stays_exactly_once)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.ack_timeout_ns = 10000000; /* 10 ms */
	struct pair t;
	pair_up_as(&t, &cfg, 15, WARP_EXACTLY_ONCE);
	struct frame_drop d = { .from = "a:1", .match = is_s1_m0 }; /* message 0: always */
	warp_loop_set_filter(t.env.net, drop_frames, &d);
	warp_engine_t *es[2] = { t.a, t.b };
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	for (int k = 0; k < 2000 && t.done.n < 1; k++)
		th_run(es, 2, 1, 100000);
	cr_assert_eq(t.done.n, 1);
	cr_assert_eq(t.done.rx[0].status, WARP_ETIMEDOUT);
	th_run(es, 2, 20, 100000); /* its STREAM_LOW reaches b */
	uint32_t ns = t.b->cfg.max_streams;
	struct warp_rxstream *rs = rx_slot(t.ba, 1, ns);
	cr_assert_not_null(rs, "the mark made b's slot");
	cr_assert_eq(rs->guarantee, WARP__ALO, "as at-least-once: it carries no guarantee");
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	th_run(es, 2, 50, 100000);
	cr_assert_eq(t.rx.n, 1);
	cr_assert_eq(t.rx.rx[0].msg_id, 1);
	cr_assert_eq(rs->guarantee, WARP__EO, "the data made it exactly-once");
	cr_assert_eq(warp_peer_reopen(t.b, t.ba), 0);
	rs = rx_slot(t.ba, 1, ns);
	cr_assert_not_null(rs, "a reopen keeps an exactly-once stream's state");
	cr_assert_eq(rs->next, 2);
	pair_down(&t);
}

/* A sender that ignores the stream credit (buggy or hostile): the receiver
 * used to hold every message it sent ahead of a lost one, in reassembly
 * entries and memory all peers share. Ids at or above the credit granted
 * are refused now (no_credit, not acknowledged), so what it holds stays
 * within the window. */
Test(flow, a_sender_ignoring_the_credit_is_refused_beyond_it)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.stream_window_msgs = 16; /* below max_reassembly, so the window is the bound */
	struct pair t;
	pair_up(&t, &cfg, 16);
	t.s->credit_max = UINT64_MAX; /* the misbehaviour */
	struct frame_drop d = { .from = "a:1", .match = is_s1_m0 }; /* message 0: always */
	warp_loop_set_filter(t.env.net, drop_frames, &d);
	warp_engine_t *es[2] = { t.a, t.b };
	uint32_t window = t.b->cfg.stream_window_msgs;
	for (uint32_t i = 0; i < 2 * window; i++) {
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
		th_run(es, 2, 1, 10000);
	}
	th_run(es, 2, 50, 10000);
	unsigned held = 0;
	for (uint32_t i = 0; i < t.b->cfg.max_reassembly; i++)
		held += t.b->reasm[i].used;
	warp_stats_t sb;
	warp_engine_stats(t.b, &sb);
	cr_assert_gt(sb.drop[WARP_DROP_NO_CREDIT], 0, "ids beyond the credit were refused");
	cr_assert_str_eq(warp_drop_reason_name(WARP_DROP_NO_CREDIT), "no_credit");
	cr_assert_lt(held, window, "b holds %u, within the window of %u", held, window);
	cr_assert_eq(t.rx.n, 0, "all wait for message 0");
	pair_down(&t);
}

/* A resent fragment of a message already complete and held for order (its
 * ACK was lost): held messages are not in the reassembly hash, so it used
 * to open a new reassembly entry, taking a slot real messages need. Now it
 * is a duplicate. */
struct held_resend {
	struct frame_drop m0; /* a's message 0, always */
	bool mute_b;          /* and everything b sends, while set */
};
static bool m0_and_b(void *arg, const char *from, const char *to, const uint8_t *pkt, uint32_t len)
{
	struct held_resend *h = arg;
	if (h->mute_b && strcmp(from, "b:1") == 0)
		return false;
	return drop_frames(&h->m0, from, to, pkt, len);
}

Test(at_least_once, a_resent_fragment_of_a_held_message_is_a_duplicate)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.max_reassembly = 2; /* one for the held message, one kept for the head */
	struct pair t;
	pair_up(&t, &cfg, 17);
	struct held_resend h = { .m0 = { .from = "a:1", .match = is_s1_m0 }, .mute_b = true };
	warp_loop_set_filter(t.env.net, m0_and_b, &h);
	warp_engine_t *es[2] = { t.a, t.b };
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	th_run(es, 2, 1, 100000);
	cr_assert_eq(th_send(t.a, t.s, 3000, NULL), 0); /* three fragments */
	th_run(es, 2, 3000, 100000); /* 300 ms: b's ACKs lost, a resends message 1 */
	warp_stats_t sa, sb;
	warp_engine_stats(t.a, &sa);
	warp_engine_stats(t.b, &sb);
	cr_assert_gt(sa.retransmits, 0);
	cr_assert_gt(sb.dup_msgs, 0, "the resent fragments are duplicates (retransmits %llu, dup "
		     "fragments %llu, rx %llu)", (unsigned long long)sa.retransmits,
		     (unsigned long long)sb.drop[WARP_DROP_DUP_FRAGMENT],
		     (unsigned long long)sb.rx_frames);
	unsigned used = 0;
	for (uint32_t i = 0; i < t.b->cfg.max_reassembly; i++)
		used += t.b->reasm[i].used;
	cr_assert_eq(used, 1, "only held message 1 takes an entry, not %u", used);
	cr_assert_eq(sb.drop[WARP_DROP_REASSEMBLY_FULL], 0,
		     "no resent fragment looked for a new entry (and was refused)");
	cr_assert_eq(t.rx.n, 0);
	pair_down(&t);
}

/* A CREDIT carried by a packet older than the one the last CREDIT came in
 * (the network reordered them) is stale: the newer window stands. The last
 * one to arrive used to win. */
static void inject_credit(struct pair *t, uint64_t pn, uint32_t window)
{
	uint8_t fr[64];
	th_inject(t->b, "a", 0, pn, fr, warp__frame_credit_encode(fr, sizeof(fr), window));
}

Test(flow, a_credit_from_a_reordered_older_packet_is_stale)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	struct pair t;
	pair_up(&t, &cfg, 18);
	uint64_t top = t.ba->rx_largest;
	inject_credit(&t, top + 2, 100000);
	cr_assert_eq(t.ba->peer_window, 100000);
	inject_credit(&t, top + 1, 5000); /* sent before, arrived after */
	cr_assert_eq(t.ba->peer_window, 100000, "the older packet's window is not taken");
	inject_credit(&t, top + 3, 7000);
	cr_assert_eq(t.ba->peer_window, 7000, "a newer one is");
	pair_down(&t);
}

/* Messages held for order when their stream is reset (the receiver reopens
 * the peer) were acknowledged and are never delivered: they are counted. */
Test(at_least_once, held_messages_dropped_by_a_reopen_are_counted)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	struct pair t;
	pair_up(&t, &cfg, 14);
	struct frame_drop d = { .from = "a:1", .match = is_s1_m0 }; /* message 0: always */
	warp_loop_set_filter(t.env.net, drop_frames, &d);
	warp_engine_t *es[2] = { t.a, t.b };
	for (int i = 0; i < 4; i++) { /* one packet each */
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
		th_run(es, 2, 1, 100000);
	}
	th_run(es, 2, 100, 100000);
	cr_assert_gt(d.dropped, 0);
	cr_assert_eq(t.rx.n, 0, "1..3 wait for 0");
	warp_stats_t sb;
	warp_engine_stats(t.b, &sb);
	cr_assert_eq(sb.msgs_dropped_reset, 0);
	cr_assert_eq(warp_peer_reopen(t.b, t.ba), 0);
	warp_engine_stats(t.b, &sb);
	cr_assert_eq(sb.msgs_dropped_reset, 3);
	pair_down(&t);
}

/* Per-stream credit: while message 0 of stream 1 is lost, the receiver
 * holds what follows it; the sender stays within the stream's window
 * (stream_window_msgs) instead of filling the receiver, and stream 2 is not
 * held back by stream 1's window. */
Test(flow, per_stream_credit_bounds_what_the_receiver_holds)
{
	struct th_env env;
	th_env_up(&env, "loop", 91);
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.stream_window_msgs = 16;
	warp_engine_t *a = th_make(&env, "a", &cfg);
	warp_engine_t *b = th_make(&env, "b", &cfg);
	warp_peer_t *ab = th_link(a, b);
	th_link(b, a);
	struct th_log rx;
	th_log_init(&rx);
	warp_engine_set_recv(b, th_recv, &rx);
	warp_stream_t *s1, *s2;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &s1), 0);
	cr_assert_eq(warp_stream_open(a, ab, 2, 16, &s2), 0);
	struct frame_drop d = { .from = "a:1", .match = is_s1_m0, .limit = 1 };
	warp_loop_set_filter(env.net, drop_frames, &d);
	warp_engine_t *es[2] = { a, b };
	for (int i = 0; i < 100; i++)
		cr_assert_eq(th_send(a, s1, 500, NULL), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(th_send(a, s2, 500, NULL), 0);
	/* poll one step at a time; count what b holds for stream 1 */
	unsigned max_held = 0, blocked_seen = 0;
	for (int k = 0; k < 20000 && rx.n < 110; k++) {
		th_run(es, 2, 1, 10000);
		unsigned held = 0;
		for (uint32_t i = 0; i < b->cfg.max_reassembly; i++)
			held += b->reasm[i].used && b->reasm[i].held && b->reasm[i].stream_id == 1;
		if (held > max_held)
			max_held = held;
		blocked_seen += s1->credit_blocked;
	}
	cr_assert_eq(d.dropped, 1);
	cr_assert_gt(max_held, 0, "b held messages behind the lost one");
	cr_assert_leq(max_held, 15, "never more than the stream window");
	cr_assert_gt(blocked_seen, 0, "the sender waited for credit");
	/* after the resend everything arrives, in order */
	th_run(es, 2, 20000, 10000);
	cr_assert_eq(rx.n, 110);
	uint64_t next = 0;
	for (size_t i = 0; i < rx.n; i++)
		if (rx.rx[i].stream == 1)
			cr_assert_eq(rx.rx[i].msg_id, next++);
	cr_assert_eq(next, 100);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	th_env_down(&env);
	free(rx.rx);
}

/* The reassembly slots are not all for messages behind a lost one: with a
 * stream window larger than max_reassembly, what follows a lost multi-
 * fragment message used to take every slot, its resent fragments then found
 * none, and the stream stalled until ack_timeout gave it up. The last slots
 * are kept for the message each stream waits for. */
Test(flow, messages_behind_a_lost_one_leave_it_a_reassembly_slot)
{
	struct th_env env;
	th_env_up(&env, "loop", 92);
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.max_reassembly = 16;
	cfg.stream_window_msgs = 64;
	cfg.ack_timeout_ns = 2000000000ull;
	warp_engine_t *a = th_make(&env, "a", &cfg);
	warp_engine_t *b = th_make(&env, "b", &cfg);
	warp_peer_t *ab = th_link(a, b);
	th_link(b, a);
	struct th_log rx;
	th_log_init(&rx);
	warp_engine_set_recv(b, th_recv, &rx);
	warp_stream_t *s1;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &s1), 0);
	/* message 0 is six fragments; every packet of its first sending is lost */
	struct frame_drop d = { .from = "a:1", .match = is_s1_m0, .limit = 6 };
	warp_loop_set_filter(env.net, drop_frames, &d);
	warp_engine_t *es[2] = { a, b };
	cr_assert_eq(th_send(a, s1, 8000, NULL), 0);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(th_send(a, s1, 100, NULL), 0);
	th_run(es, 2, 20000, 10000); /* 200 ms */
	cr_assert_eq(d.dropped, 6);
	warp_stats_t sa, sb;
	warp_engine_stats(a, &sa);
	warp_engine_stats(b, &sb);
	cr_assert_gt(sb.drop[WARP_DROP_REASSEMBLY_FULL], 0, "b ran out of slots for the later ones");
	cr_assert_eq(sa.msgs_timed_out, 0, "the lost message was given up");
	cr_assert_eq(rx.n, 41, "delivered %zu of 41", (size_t)rx.n);
	for (size_t i = 0; i < rx.n; i++)
		cr_assert_eq(rx.rx[i].msg_id, i);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	th_env_down(&env);
	free(rx.rx);
}

/* A packet with a frame b could not keep is not acknowledged, so the frame
 * is resent; that must hold when the receive callback, called for a later
 * frame of the same packet, polls the engine and another (clean) packet is
 * taken meanwhile. The inner packet used to clear the outer one's refusal:
 * the outer packet was acknowledged, and the refused message was lost. */
struct nested {
	struct th_log log;
	warp_engine_t *b;
	int polls;      /* polls made from the callback */
	uint64_t taken; /* packets those polls took */
};
static void recv_and_poll(void *user, const warp_msg_t *m)
{
	struct nested *n = user;
	th_recv(&n->log, m);
	if (m->stream_id != 2 || n->polls >= 10000)
		return;
	warp_stats_t before, after;
	warp_engine_stats(n->b, &before);
	n->polls++;
	warp_engine_poll(n->b);
	warp_engine_stats(n->b, &after);
	n->taken += after.rx_packets - before.rx_packets;
}

Test(exactly_once, a_refused_frame_stays_unacknowledged_when_the_callback_polls)
{
	struct th_env env;
	th_env_up(&env, "loop", 93);
	warp_config_t ca, cb;
	warp_config_init(&ca);
	warp_config_init(&cb);
	cb.max_reassembly = 4;  /* the messages behind the lost one soon find no slot */
	cb.rx_burst = 1;        /* so the callback's poll takes the next packet */
	warp_engine_t *a = th_make(&env, "a", &ca);
	warp_engine_t *b = th_make(&env, "b", &cb);
	warp_peer_t *ab = th_link(a, b);
	th_link(b, a);
	struct nested n = { .b = b };
	th_log_init(&n.log);
	warp_engine_set_recv(b, recv_and_poll, &n);
	warp_stream_t *s1, *s2;
	warp_stream_opts_t urgent = { .priority = 16, .guarantee = WARP_EXACTLY_ONCE };
	warp_stream_opts_t later = { .priority = 200, .guarantee = WARP_EXACTLY_ONCE };
	cr_assert_eq(warp_stream_open_ex(a, ab, 1, &urgent, &s1), 0);
	cr_assert_eq(warp_stream_open_ex(a, ab, 2, &later, &s2), 0);
	struct frame_drop d = { .from = "a:1", .match = is_s1_m0, .limit = 1 };
	warp_loop_set_filter(env.net, drop_frames, &d);
	warp_engine_t *es[2] = { a, b };
	/* stream 1's frames go first in each packet, stream 2's fill the rest
	 * and the packets after */
	for (int i = 0; i < 40; i++)
		cr_assert_eq(th_send(a, s1, 100, NULL), 0);
	for (int i = 0; i < 120; i++)
		cr_assert_eq(th_send(a, s2, 100, NULL), 0);
	th_run(es, 2, 40000, 10000); /* 400 ms */
	cr_assert_eq(d.dropped, 1);
	warp_stats_t sa, sb;
	warp_engine_stats(a, &sa);
	warp_engine_stats(b, &sb);
	cr_assert_gt(sb.drop[WARP_DROP_REASSEMBLY_FULL], 0, "b refused some of stream 1");
	cr_assert_gt(n.taken, 0, "the callback's polls took packets");
	cr_assert_eq(sa.msgs_timed_out, 0);
	cr_assert_eq(n.log.bad, 0);
	cr_assert_eq(n.log.n, 160, "delivered %zu of 160", (size_t)n.log.n);
	uint64_t next[3] = { 0, 0, 0 };
	for (size_t i = 0; i < n.log.n; i++)
		cr_assert_eq(n.log.rx[i].msg_id, next[n.log.rx[i].stream]++);
	cr_assert_eq(next[1], 40);
	cr_assert_eq(next[2], 120);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	th_env_down(&env);
	free(n.log.rx);
}

/* A packet b refuses (a reliable frame found no reassembly slot) leaves b's
 * window, so that its ACKs do not cover it and a resends. Its at-most-once
 * frames were delivered all the same; a copy of it (the network duplicates
 * every packet here) must not deliver them again. It did: at-most-once has
 * no deduplication but the packet window. */
Test(at_most_once, a_copy_of_a_refused_packet_does_not_deliver_its_messages_again)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.max_reassembly = 4; /* stream 1's messages behind the lost one soon find no slot */
	struct pair t;
	pair_up(&t, &cfg, 94);
	warp_stream_t *s2;
	warp_stream_opts_t amo = { .priority = 200, .guarantee = WARP_AT_MOST_ONCE };
	cr_assert_eq(warp_stream_open_ex(t.a, t.ab, 2, &amo, &s2), 0);
	struct frame_drop d = { .from = "a:1", .match = is_s1_m0, .limit = 1 };
	warp_loop_set_filter(t.env.net, drop_frames, &d);
	warp_loop_fault_t f = { .duplicate = 1.0 };
	cr_assert_eq(warp_loop_set_fault(t.env.net, "a:1", "b:1", &f), 0);
	warp_engine_t *es[2] = { t.a, t.b };
	/* stream 1's frames go first in each packet, stream 2's fill the rest */
	for (int i = 0; i < 40; i++)
		cr_assert_eq(th_send(t.a, t.s, 100, NULL), 0);
	for (int i = 0; i < 120; i++)
		cr_assert_eq(th_send(t.a, s2, 100, NULL), 0);
	th_run(es, 2, 40000, 10000); /* 400 ms */
	cr_assert_eq(d.dropped, 1);
	warp_stats_t sb;
	warp_engine_stats(t.b, &sb);
	cr_assert_gt(sb.drop[WARP_DROP_REASSEMBLY_FULL], 0, "b refused packets");
	cr_assert_gt(sb.drop[WARP_DROP_DUP_PACKET], 0, "copies of accepted packets are dropped");
	cr_assert_gt(sb.dup_amo_msgs, 0, "copies of refused packets carried stream 2's frames");
	cr_assert_eq(t.rx.bad, 0);
	uint64_t next1 = 0;
	size_t n2 = 0;
	static uint8_t seen[120];
	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; i < t.rx.n; i++) {
		if (t.rx.rx[i].stream == 1) {
			cr_assert_eq(t.rx.rx[i].msg_id, next1++);
			continue;
		}
		cr_assert_eq(t.rx.rx[i].stream, 2);
		cr_assert_lt(t.rx.rx[i].msg_id, 120);
		cr_assert_eq(seen[t.rx.rx[i].msg_id]++, 0, "stream 2's message %llu delivered twice",
			     (unsigned long long)t.rx.rx[i].msg_id);
		n2++;
	}
	cr_assert_eq(next1, 40, "stream 1 delivered %llu of 40", (unsigned long long)next1);
	cr_assert_eq(n2, 120, "stream 2 delivered %zu of 120", n2);
	pair_down(&t);
}

/* A peer that takes nothing (b is not polled: its loop queue fills and the
 * driver refuses a's packets for it) must not hold up a's traffic to c: the
 * driver takes c's packets past b's, and a builds nothing more for b until
 * b's wait. Nothing a accepted for b is lost: once b polls, it has all. */
Test(flow, a_peer_that_takes_nothing_does_not_hold_up_the_others)
{
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(5, 32, &net), 0);
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.tx_burst = 8; /* a's packets for b would fill it at once */
	warp_engine_t *a = th_engine(net, "a", &cfg);
	warp_engine_t *b = th_engine(net, "b", NULL);
	warp_engine_t *c = th_engine(net, "c", NULL);
	warp_peer_t *ab = th_peer(a, "b");
	warp_peer_t *ac = th_peer(a, "c");
	warp_peer_t *ba = th_peer(b, "a");
	warp_peer_t *ca = th_peer(c, "a");
	warp_engine_t *es[3] = { a, b, c };
	warp_peer_t *ps[4] = { ab, ac, ba, ca };
	th_up(es, 3, ps, 4);
	struct th_log rxb, rxc, done;
	th_log_init(&rxb);
	th_log_init(&rxc);
	th_log_init(&done);
	warp_engine_set_recv(b, th_recv, &rxb);
	warp_engine_set_recv(c, th_recv, &rxc);
	warp_engine_set_completion(a, th_recv, &done);
	warp_stream_t *sb, *sc;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &sb), 0);
	cr_assert_eq(warp_stream_open(a, ac, 1, 16, &sc), 0);

	/* b stops polling; a keeps sending to both */
	warp_engine_t *live[2] = { a, c };
	const size_t n = 200;
	size_t to_b = 0, to_c = 0;
	for (unsigned r = 0; r < 200000 && (to_c < n || rxc.n < n); r++) {
		if (to_b < n && th_send(a, sb, 1000, NULL) == 0)
			to_b++;
		if (to_c < n && th_send(a, sc, 1000, NULL) == 0)
			to_c++;
		th_run(live, 2, 1, 1000);
	}
	th_run(live, 2, 2000, 1000); /* c's last acknowledgements */
	warp_loop_stats_t ls;
	warp_loop_stats(net, &ls);
	cr_assert_gt(ls.backpressure, 0, "b's queue filled and the driver refused packets for it");
	cr_assert_gt(to_b, 32, "a took more for b than b's queue holds");
	cr_assert_eq(rxc.n, n, "c received %zu of %zu while b took nothing", rxc.n, n);
	cr_assert_eq(rxc.bad, 0);
	size_t c_done = 0;
	for (size_t i = 0; i < done.n; i++)
		if (strcmp(done.rx[i].src, "c") == 0) {
			cr_assert_eq(done.rx[i].status, 0);
			c_done++;
		}
	cr_assert_eq(c_done, n, "every message to c completed");

	/* b polls again: it gets everything a accepted for it */
	th_pump(es, 3, &rxb.n, to_b, 2000000);
	cr_assert_eq(rxb.n, to_b, "b received %zu of the %zu a accepted", rxb.n, to_b);
	cr_assert_eq(rxb.bad, 0);
	for (size_t i = 0; i < rxb.n; i++)
		cr_assert_eq(rxb.rx[i].msg_id, i, "in order");
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	warp_engine_destroy(c);
	warp_loop_net_destroy(net);
	free(rxb.rx);
	free(rxc.rx);
	free(done.rx);
}
