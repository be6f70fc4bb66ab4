/* SPDX-License-Identifier: Apache-2.0 */
/* Application threads talking to started engines through channels. */
#include <pthread.h>
#include <time.h>

#include "../helpers.h"

#define N_MSGS 100000

struct sender {
	warp_channel_t *ch;
	warp_stream_t *streams[3];
	size_t sent;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	static uint8_t buf[256 * 1024];
	uint64_t x = 12345;
	size_t i = 0;
	while (i < N_MSGS) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		warp_stream_t *st = s->streams[x % 3];
		size_t len = (x >> 8) % 1000 == 0 ? (size_t)((x >> 20) % (200 * 1024))
						   : (size_t)((x >> 20) % 2048);
		th_fill(buf, len, th_seed(warp_stream_id(st), st->next_msg_id, len));
		if (i % 3 == 0) { /* exercise the burst API too */
			warp_send_req_t rq = { .stream = st, .buf = buf, .len = len };
			int n;
			while ((n = warp_channel_send_burst(s->ch, &rq, 1)) == 0) {
				cr_assert_eq(rq.status, WARP_EAGAIN);
				sched_yield();
			}
		} else {
			int rc;
			while ((rc = warp_channel_send(s->ch, st, buf, len, NULL)) == WARP_EAGAIN)
				sched_yield();
			cr_assert_eq(rc, 0, "%s", warp_strerror(rc));
		}
		i++;
	}
	s->sent = i;
	return NULL;
}

Test(channel, two_started_engines_exchange_100k_messages_in_order)
{
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.max_payload_bytes = 256 * 1024;
	cfg.idle.kind = WARP_IDLE_YIELD;
	warp_engine_t *a = th_engine(net, "a", &cfg);
	warp_engine_t *b = th_engine(net, "b", &cfg);
	warp_peer_t *ab = th_peer(a, "b");
	th_up2(a, ab, b, th_peer(b, "a"));
	/* real clock for started engines */
	a->cfg.clock = NULL;
	b->cfg.clock = NULL;
	struct sender snd = { 0 };
	for (int k = 0; k < 3; k++)
		cr_assert_eq(warp_stream_open(a, ab, (uint16_t)(k + 1), (uint8_t)(16 + 50 * k),
					      &snd.streams[k]),
			     0);
	cr_assert_eq(warp_channel_open(a, 0, &snd.ch), 0);
	warp_channel_t *rx;
	cr_assert_eq(warp_channel_open(b, WARP_CHANNEL_RECV, &rx), 0);
	cr_assert_eq(warp_engine_start(a), 0);
	cr_assert_eq(warp_engine_start(b), 0);
	cr_assert_eq(warp_engine_start(b), WARP_ESTATE);
	cr_assert_eq(warp_engine_poll(b), WARP_ESTATE);

	pthread_t t;
	pthread_create(&t, NULL, sender_main, &snd);
	uint64_t next[4] = { 0 };
	size_t got = 0;
	warp_msg_t msgs[64];
	while (got < N_MSGS) {
		int n = warp_channel_recv_burst(rx, msgs, 64);
		cr_assert_geq(n, 0);
		for (int i = 0; i < n; i++) {
			warp_msg_t *m = &msgs[i];
			cr_assert_eq(m->status, 0);
			cr_assert_str_eq(m->src_node, "a");
			cr_assert_str_eq(m->transport, "loop");
			cr_assert_eq(m->msg_id, next[m->stream_id]++, "order on stream %u",
				     m->stream_id);
			cr_assert(th_check(m->data, m->len, th_seed(m->stream_id, m->msg_id, m->len)),
				  "payload of %u/%llu", m->stream_id, (unsigned long long)m->msg_id);
		}
		if (n)
			warp_channel_recv_done(rx);
		else
			sched_yield();
		got += (size_t)n;
	}
	pthread_join(t, NULL);
	cr_assert_eq(snd.sent, N_MSGS);
	cr_assert_eq(warp_engine_stop(a), 0);
	cr_assert_eq(warp_engine_stop(b), 0);
	warp_stats_t sa, sb;
	warp_engine_stats(a, &sa);
	warp_engine_stats(b, &sb);
	cr_assert_eq(sa.msgs_sent, N_MSGS);
	cr_assert_eq(sb.msgs_delivered, N_MSGS);
	cr_assert_eq(sa.allocs_after_start + sb.allocs_after_start, 0);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	warp_loop_net_destroy(net);
}

/* Engines a and b polled by the test thread on a loop net (1000-byte
 * payloads, 4096-byte channel rings); b logs what it receives; a's stream
 * 1 to b is written through channel ch, opened with completions. */
struct chpair {
	warp_loop_net_t *net;
	warp_engine_t *a, *b;
	warp_peer_t *ab;
	warp_stream_t *s;
	warp_channel_t *ch;
	struct th_log lb;
};

static void chpair_up(struct chpair *t, warp_config_t *cfg)
{
	cr_assert_eq(warp_loop_net_create(1, 0, &t->net), 0);
	cfg->max_payload_bytes = 1000;
	cfg->channel_ring_bytes = 4096;
	t->a = th_engine(t->net, "a", cfg);
	t->b = th_engine(t->net, "b", cfg);
	t->ab = th_peer(t->a, "b");
	th_peer(t->b, "a");
	th_log_init(&t->lb);
	warp_engine_set_recv(t->b, th_recv, &t->lb);
	cr_assert_eq(warp_stream_open(t->a, t->ab, 1, 16, &t->s), 0);
	cr_assert_eq(warp_channel_open(t->a, WARP_CHANNEL_COMPLETIONS, &t->ch), 0);
}

static void chpair_down(struct chpair *t)
{
	warp_engine_destroy(t->a);
	warp_engine_destroy(t->b);
	warp_loop_net_destroy(t->net);
	free(t->lb.rx);
}

Test(channel, full_ring_is_backpressure_and_refusals_are_clear)
{
	struct chpair t;
	warp_config_t cfg;
	warp_config_init(&cfg);
	chpair_up(&t, &cfg);
	warp_engine_t *a = t.a, *b = t.b;
	warp_peer_t *ab = t.ab;
	warp_stream_t *s = t.s;
	warp_channel_t *ch = t.ch;
	uint8_t buf[1001];
	cr_assert_eq(warp_channel_send(ch, s, buf, 1001, NULL), WARP_ETOOBIG);
	cr_assert_eq(warp_channel_send(ch, NULL, buf, 1, NULL), WARP_EINVAL);
	int accepted = 0;
	for (;;) {
		th_fill(buf, 500, th_seed(1, s->next_msg_id, 500));
		int rc = warp_channel_send(ch, s, buf, 500, NULL);
		if (rc == WARP_EAGAIN)
			break;
		cr_assert_eq(rc, 0);
		accepted++;
	}
	cr_assert_geq(accepted, 3);
	warp_engine_t *es[2] = { a, b };
	th_run(es, 2, 10, 1000);
	cr_assert_eq(t.lb.n, (size_t)accepted, "everything accepted arrives");
	cr_assert_eq(t.lb.bad, 0);
	th_fill(buf, 500, th_seed(1, s->next_msg_id, 500));
	cr_assert_eq(warp_channel_send(ch, s, buf, 500, NULL), 0, "room again after a poll");
	/* every accepted message completes as acknowledged */
	th_run(es, 2, 10, 1000);
	warp_msg_t m[64];
	int n = warp_channel_recv_burst(ch, m, 64);
	cr_assert_eq(n, accepted + 1);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(m[i].kind, WARP_MSG_COMPLETION);
		cr_assert_eq(m[i].status, 0);
		cr_assert_eq(m[i].msg_id, (uint64_t)i);
		cr_assert_null(m[i].data);
	}
	warp_channel_recv_done(ch);
	/* a send that a close drops comes back as such */
	th_fill(buf, 500, th_seed(1, s->next_msg_id, 500));
	cr_assert_eq(warp_channel_send(ch, s, buf, 500, NULL), 0);
	cr_assert_eq(warp_peer_close(a, ab, 1, "test"), 0);
	th_fill(buf, 500, th_seed(1, s->next_msg_id, 500));
	cr_assert_eq(warp_channel_send(ch, s, buf, 500, NULL), 0);
	th_run(es, 2, 2, 1000);
	n = warp_channel_recv_burst(ch, m, 4);
	cr_assert_geq(n, 1);
	for (int i = 0; i < n; i++)
		cr_assert_eq(m[i].status, WARP_ECLOSED, "record %d: %d", i, m[i].status);
	cr_assert_null(m[0].data);
	warp_channel_recv_done(ch);
	chpair_down(&t);
}

/* An application that reads its completions late: the completions that
 * find its ring full wait in their send's slot and the channel's
 * submissions wait behind them, so every accepted send gets exactly one
 * completion. They used to spill into reassembly entries (taking the ones
 * received data needs) and, once those ran out, were dropped uncounted to
 * the application. */
Test(channel, completions_read_late_are_all_delivered)
{
	struct chpair t;
	warp_config_t cfg;
	warp_config_init(&cfg);
	cfg.max_reassembly = 8;
	chpair_up(&t, &cfg); /* a 4096-byte ring: room for ~85 completions */
	warp_engine_t *a = t.a;
	warp_stream_t *s = t.s;
	warp_channel_t *ch = t.ch;
	warp_engine_t *es[2] = { t.a, t.b };
	uint8_t buf[20];
	size_t accepted = 0;
	/* send whenever the channel takes it, read nothing */
	for (int round = 0; round < 300; round++) {
		for (;;) {
			th_fill(buf, sizeof(buf), th_seed(1, s->next_msg_id, sizeof(buf)));
			int rc = warp_channel_send(ch, s, buf, sizeof(buf), NULL);
			if (rc == WARP_EAGAIN)
				break;
			cr_assert_eq(rc, 0, "%s", warp_strerror(rc));
			accepted++;
		}
		th_run(es, 2, 1, 1000);
	}
	cr_assert_gt(accepted, 200, "more sends than the ring has completions: %zu", accepted);
	warp_stats_t st;
	warp_engine_stats(a, &st);
	cr_assert_gt(st.completions_parked, 0, "completions waited for the ring");
	cr_assert_gt(st.send_backpressure, 0, "and the submissions behind them");
	/* now read: one completion per accepted send, in order */
	size_t got = 0;
	for (int k = 0; k < 2000 && got < accepted; k++) {
		warp_msg_t m[64];
		int n = warp_channel_recv_burst(ch, m, 64);
		for (int i = 0; i < n; i++) {
			cr_assert_eq(m[i].kind, WARP_MSG_COMPLETION);
			cr_assert_eq(m[i].msg_id, (uint64_t)got, "completion %zu is for message %llu",
				     got, (unsigned long long)m[i].msg_id);
			cr_assert_eq(m[i].status, 0, "%s", warp_strerror(m[i].status));
			got++;
		}
		warp_channel_recv_done(ch);
		th_run(es, 2, 1, 1000);
	}
	cr_assert_eq(got, accepted, "completions %zu of %zu accepted sends", got, accepted);
	cr_assert_eq(t.lb.n, accepted);
	cr_assert_eq(t.lb.bad, 0);
	warp_engine_stats(a, &st);
	cr_assert_eq(st.drop[WARP_DROP_RX_BACKPRESSURE], 0);
	cr_assert_eq(st.msgs_acked, accepted);
	chpair_down(&t);
}

/* Each idle strategy keeps a started engine responsive: messages submitted
 * after the engine went idle (backoff: asleep) still arrive. */
Test(channel, every_idle_strategy_delivers_after_idling)
{
	warp_idle_kind_t kinds[] = { WARP_IDLE_SPIN, WARP_IDLE_YIELD, WARP_IDLE_BACKOFF };
	for (size_t k = 0; k < 3; k++) {
		warp_loop_net_t *net;
		cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
		warp_config_t cfg;
		warp_config_init(&cfg);
		cfg.max_payload_bytes = 4096;
		cfg.idle.kind = kinds[k];
		warp_engine_t *a = th_engine(net, "a", &cfg);
		warp_engine_t *b = th_engine(net, "b", &cfg);
		a->cfg.clock = b->cfg.clock = NULL;
		warp_peer_t *ab = th_peer(a, "b");
		th_peer(b, "a");
		warp_stream_t *s;
		cr_assert_eq(warp_stream_open(a, ab, 1, 16, &s), 0);
		warp_channel_t *tx, *rx;
		cr_assert_eq(warp_channel_open(a, 0, &tx), 0);
		cr_assert_eq(warp_channel_open(b, WARP_CHANNEL_RECV, &rx), 0);
		cr_assert_eq(warp_engine_start(a), 0);
		cr_assert_eq(warp_engine_start(b), 0);
		struct timespec ts = { 0, 20 * 1000 * 1000 }; /* let both go idle */
		nanosleep(&ts, NULL);
		uint8_t buf[100];
		size_t got = 0;
		for (int i = 0; i < 100; i++) {
			th_fill(buf, sizeof(buf), th_seed(1, s->next_msg_id, sizeof(buf)));
			cr_assert_eq(warp_channel_send(tx, s, buf, sizeof(buf), NULL), 0);
		}
		warp_msg_t m[16];
		for (int spins = 0; got < 100 && spins < 10000000; spins++) {
			int n = warp_channel_recv_burst(rx, m, 16);
			for (int i = 0; i < n; i++)
				cr_assert(th_check(m[i].data, m[i].len,
						   th_seed(1, m[i].msg_id, m[i].len)));
			if (n)
				warp_channel_recv_done(rx);
			else
				sched_yield();
			got += (size_t)n;
		}
		cr_assert_eq(got, 100, "idle kind %d", (int)kinds[k]);
		cr_assert_eq(warp_engine_stop(a), 0);
		cr_assert_eq(warp_engine_stop(b), 0);
		cr_assert_eq(warp_engine_stop(b), WARP_ESTATE);
		warp_stats_t st;
		warp_engine_stats(b, &st);
		cr_assert_gt(st.idle_polls, 0);
		warp_engine_destroy(a);
		warp_engine_destroy(b);
		warp_loop_net_destroy(net);
	}
}
