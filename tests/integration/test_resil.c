/* SPDX-License-Identifier: Apache-2.0 */
/* Circuit breakers, health, broadcast and graceful shutdown over the loop
 * driver with a manual clock. */
#include "../helpers.h"

struct trans {
	int n;
	warp_breaker_state_t from[32], to[32];
	uint64_t at[32];
};

static struct trans tr;

static void on_breaker(void *user, warp_peer_t *p, warp_breaker_state_t from,
		       warp_breaker_state_t to)
{
	(void)user;
	(void)p;
	if (tr.n < 32) {
		tr.from[tr.n] = from;
		tr.to[tr.n] = to;
		tr.at[tr.n] = th_now;
		tr.n++;
	}
}

struct two {
	struct th_env env;
	warp_engine_t *a, *b;
	warp_peer_t *ab;
	warp_stream_t *s;
	struct th_log rx, done;
};

static void two_up(struct two *t, warp_config_t *cfg)
{
	memset(t, 0, sizeof(*t));
	memset(&tr, 0, sizeof(tr));
	th_env_up(&t->env, "loop", 7);
	t->a = th_make(&t->env, "a", cfg);
	t->b = th_make(&t->env, "b", cfg);
	t->ab = th_link(t->a, t->b);
	warp_peer_t *ba = th_link(t->b, t->a);
	th_up2(t->a, t->ab, t->b, ba);
	th_log_init(&t->rx);
	th_log_init(&t->done);
	warp_engine_set_recv(t->b, th_recv, &t->rx);
	warp_engine_set_completion(t->a, th_recv, &t->done);
	warp_engine_set_breaker_callback(t->a, on_breaker, NULL);
	cr_assert_eq(warp_stream_open(t->a, t->ab, 1, 16, &t->s), 0);
}

static void two_down(struct two *t)
{
	warp_engine_destroy(t->a);
	warp_engine_destroy(t->b);
	th_env_down(&t->env);
	free(t->rx.rx);
	free(t->done.rx);
}

static void run_ms(struct two *t, unsigned ms)
{
	warp_engine_t *es[2] = { t->a, t->b };
	th_run(es, 2, ms * 10, 100000); /* 100 us steps */
}

static warp_config_t breaker_cfg(void)
{
	warp_config_t c;
	warp_config_init(&c);
	c.ack_timeout_ns = 10000000; /* 10 ms */
	c.breaker_failure_threshold = 3;
	c.breaker_open_timeout_ns = 50000000; /* 50 ms */
	c.breaker_half_open_max_calls = 2;
	c.breaker_success_threshold = 2;
	return c;
}

Test(breaker, opens_after_consecutive_failures_and_closes_after_trials)
{
	warp_config_t c = breaker_cfg();
	struct two t;
	two_up(&t, &c);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_CLOSED);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", true), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	run_ms(&t, 30);
	cr_assert_eq(t.done.n, 2);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_CLOSED, "2 failures < 3");
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	run_ms(&t, 30);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_OPEN,
		     "third failure opens it (completions %zu: %d %d %d, failures %u)", t.done.n,
		     t.done.rx[0].status, t.done.rx[1].status, t.done.n > 2 ? t.done.rx[2].status : 1,
		     t.ab->breaker_failures);
	uint64_t opened = tr.at[0];
	uint64_t id;
	cr_assert_eq(th_send(t.a, t.s, 10, &id), WARP_ECIRCUIT_OPEN, "fails at once");
	cr_assert_str_eq(warp_strerror(WARP_ECIRCUIT_OPEN), "circuit open");
	warp_health_t h;
	warp_peer_health(t.a, t.ab, &h);
	cr_assert_eq(h.state, WARP_HEALTH_DOWN);
	cr_assert(strstr(h.reason, "circuit open"), "%s", h.reason);

	/* after open_timeout: half-open, exactly 2 trial sends let through */
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", false), 0);
	run_ms(&t, 60);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_HALF_OPEN);
	cr_assert_geq(tr.at[1] - opened, 50000000ull, "not before open_timeout");
	cr_assert_lt(tr.at[1] - opened, 51000000ull, "on time");
	warp_peer_health(t.a, t.ab, &h);
	cr_assert_eq(h.state, WARP_HEALTH_DEGRADED);
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), WARP_ECIRCUIT_OPEN, "only 2 trials");
	run_ms(&t, 5);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_CLOSED, "2 successes close it");
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	/* callback order */
	cr_assert_eq(tr.n, 3);
	cr_assert(tr.from[0] == WARP_BREAKER_CLOSED && tr.to[0] == WARP_BREAKER_OPEN);
	cr_assert(tr.from[1] == WARP_BREAKER_OPEN && tr.to[1] == WARP_BREAKER_HALF_OPEN);
	cr_assert(tr.from[2] == WARP_BREAKER_HALF_OPEN && tr.to[2] == WARP_BREAKER_CLOSED);
	two_down(&t);
}

/* Messages settled because the handshake was refused say nothing about the
 * peer's health: in a half-open circuit they are neither the successes
 * that would close it nor failures. */
Test(breaker, a_refused_handshake_neither_closes_nor_opens_it)
{
	warp_config_t c = breaker_cfg();
	c.breaker_failure_threshold = 1;
	struct two t;
	two_up(&t, &c);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", true), 0);
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	run_ms(&t, 30);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_OPEN);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", false), 0);
	run_ms(&t, 60);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_HALF_OPEN);
	/* b comes back as a node a cannot agree with: a required capability
	 * with no common version; a's two trial sends are refused with it */
	warp_engine_destroy(t.b);
	warp_config_t cb = breaker_cfg();
	cb.n_caps = 1;
	cb.caps[0] = (warp_cap_config_t){ .name = "codec", .min = 1, .max = 1, .required = 1 };
	t.b = th_make(&t.env, "b", &cb);
	th_link(t.b, t.a);
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	size_t before = t.done.n;
	run_ms(&t, 20);
	cr_assert_eq(t.done.n, before + 2, "both trials settled");
	for (size_t i = before; i < t.done.n; i++)
		cr_assert_eq(t.done.rx[i].status, WARP_EHANDSHAKE, "status %d", t.done.rx[i].status);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_HALF_OPEN,
		     "refusals are not successes (state %d)", warp_peer_breaker(t.ab));
	/* nor do they use the trials up */
	cr_assert_eq(t.ab->breaker_trials, 0, "trials taken: %u", t.ab->breaker_trials);
	two_down(&t);
}

/* Trials that end without a verdict give their slot back: lost at-most-once
 * messages said nothing of the peer, and with no timer in the half-open
 * state, trials that never report used to hold it half-open for good,
 * refusing every send to a peer that was long reachable again. */
Test(breaker, trials_without_a_verdict_do_not_hold_it_half_open)
{
	warp_config_t c = breaker_cfg();
	struct two t;
	two_up(&t, &c);
	warp_stream_opts_t o = { .priority = 16, .guarantee = WARP_AT_MOST_ONCE };
	warp_stream_t *amo;
	cr_assert_eq(warp_stream_open_ex(t.a, t.ab, 3, &o, &amo), 0);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", true), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	run_ms(&t, 30);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_OPEN);
	run_ms(&t, 60);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_HALF_OPEN);
	/* both trials at-most-once, both lost */
	cr_assert_eq(th_send(t.a, amo, 10, NULL), 0);
	cr_assert_eq(th_send(t.a, amo, 10, NULL), 0);
	size_t before = t.done.n;
	for (int k = 0; k < 5000 && t.done.n < before + 2; k++)
		run_ms(&t, 1);
	cr_assert_eq(t.done.n, before + 2);
	for (size_t i = before; i < t.done.n; i++)
		cr_assert_eq(t.done.rx[i].status, WARP_ETIMEDOUT);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_HALF_OPEN);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", false), 0);
	run_ms(&t, 100);
	/* reliable trials now, to the reachable peer: they close it */
	for (int i = 0; i < 2; i++)
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0, "trial %d admitted", i);
	run_ms(&t, 30);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_CLOSED, "state %d",
		     warp_peer_breaker(t.ab));
	two_down(&t);
}

Test(breaker, a_failed_trial_opens_it_again)
{
	warp_config_t c = breaker_cfg();
	struct two t;
	two_up(&t, &c);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", true), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	run_ms(&t, 30);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_OPEN);
	run_ms(&t, 60);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_HALF_OPEN);
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0); /* the trial fails: still cut */
	run_ms(&t, 30);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_OPEN);
	cr_assert_eq(tr.n, 3);
	cr_assert(tr.from[2] == WARP_BREAKER_HALF_OPEN && tr.to[2] == WARP_BREAKER_OPEN);
	/* a success in between resets the count of consecutive failures */
	two_down(&t);
}

/* Channel sends refused while the circuit is open took their message ids
 * when the application wrote them. The stream's receiver used to wait for
 * those ids for good: the trials after them were acknowledged (and closed
 * the circuit) but held, never delivered, and so was everything after.
 * Now the stream moves past a refused id as past a failed message, and its
 * receiver is told (STREAM_LOW). */
static int chan_send(warp_channel_t *ch, warp_stream_t *s)
{
	uint8_t buf[10];
	th_fill(buf, sizeof(buf), th_seed(s->id, s->next_msg_id, sizeof(buf)));
	return warp_channel_send(ch, s, buf, sizeof(buf), NULL);
}

Test(breaker, channel_sends_refused_while_open_leave_no_hole_in_the_stream)
{
	warp_config_t c = breaker_cfg();
	struct two t;
	two_up(&t, &c);
	warp_channel_t *ch;
	cr_assert_eq(warp_channel_open(t.a, WARP_CHANNEL_COMPLETIONS, &ch), 0);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", true), 0);
	for (int i = 0; i < 3; i++) /* ids 0-2 time out: the circuit opens */
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
	run_ms(&t, 30);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_OPEN);
	for (int i = 0; i < 2; i++) /* ids 3 and 4: refused by the engine */
		cr_assert_eq(chan_send(ch, t.s), 0);
	run_ms(&t, 1);
	warp_msg_t m[16];
	int n = warp_channel_recv_burst(ch, m, 16);
	cr_assert_eq(n, 2);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(m[i].msg_id, (uint64_t)(3 + i));
		cr_assert_eq(m[i].status, WARP_ECIRCUIT_OPEN);
	}
	warp_channel_recv_done(ch);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", false), 0);
	run_ms(&t, 60);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_HALF_OPEN);
	for (int i = 0; i < 2; i++) /* ids 5 and 6: the trials */
		cr_assert_eq(chan_send(ch, t.s), 0);
	run_ms(&t, 5);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_CLOSED);
	for (int i = 0; i < 3; i++) /* ids 7-9 */
		cr_assert_eq(chan_send(ch, t.s), 0);
	run_ms(&t, 10);
	n = warp_channel_recv_burst(ch, m, 16);
	cr_assert_eq(n, 5);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(m[i].msg_id, (uint64_t)(5 + i));
		cr_assert_eq(m[i].status, 0, "message %d: %s", 5 + i, warp_strerror(m[i].status));
	}
	warp_channel_recv_done(ch);
	/* what the sender was told arrived, arrived */
	cr_assert_eq(t.rx.n, 5, "b delivered %zu of the 5 acknowledged", t.rx.n);
	cr_assert_eq(t.rx.bad, 0);
	for (size_t i = 0; i < t.rx.n; i++)
		cr_assert_eq(t.rx.rx[i].msg_id, 5 + i);
	two_down(&t);
}

Test(breaker, successes_reset_the_failure_count)
{
	warp_config_t c = breaker_cfg();
	struct two t;
	two_up(&t, &c);
	for (int round = 0; round < 4; round++) {
		cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", true), 0);
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
		run_ms(&t, 30);
		cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", false), 0);
		cr_assert_eq(th_send(t.a, t.s, 10, NULL), 0);
		run_ms(&t, 5);
	}
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_CLOSED, "never 3 in a row");
	cr_assert_eq(tr.n, 0);
	two_down(&t);
}

Test(health, silent_peer_goes_down_and_comes_back)
{
	warp_config_t c;
	warp_config_init(&c);
	c.heartbeat_interval_ns = 1000000; /* 1 ms, down after 3 silent */
	struct two t;
	two_up(&t, &c);
	run_ms(&t, 5);
	warp_health_t h;
	warp_peer_health(t.a, t.ab, &h);
	cr_assert_eq(h.state, WARP_HEALTH_UP, "%s", h.reason);
	warp_engine_health(t.a, &h);
	cr_assert_eq(h.state, WARP_HEALTH_UP);
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", true), 0);
	run_ms(&t, 5);
	warp_peer_health(t.a, t.ab, &h);
	cr_assert_eq(h.state, WARP_HEALTH_DOWN);
	cr_assert(strstr(h.reason, "silent for"), "%s", h.reason);
	warp_engine_health(t.a, &h);
	cr_assert_eq(h.state, WARP_HEALTH_DOWN, "its only peer is down");
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", false), 0);
	run_ms(&t, 3);
	warp_peer_health(t.a, t.ab, &h);
	cr_assert_eq(h.state, WARP_HEALTH_UP, "%s", h.reason);
	two_down(&t);
}

Test(broadcast, one_result_per_peer_and_no_peer_holds_up_the_others)
{
	struct th_env env;
	th_env_up(&env, "loop", 9);
	warp_config_t c;
	warp_config_init(&c);
	c.ack_timeout_ns = 20000000; /* 20 ms */
	warp_engine_t *src = th_make(&env, "src", &c);
	const char *names[3] = { "fast", "slow", "cut" };
	warp_engine_t *dst[3];
	struct th_log log[3], done;
	th_log_init(&done);
	warp_engine_set_completion(src, th_recv, &done);
	warp_bcast_t b[4];
	for (int i = 0; i < 3; i++) {
		dst[i] = th_make(&env, names[i], &c);
		th_log_init(&log[i]);
		warp_engine_set_recv(dst[i], th_recv, &log[i]);
		warp_peer_t *p = th_link(src, dst[i]);
		warp_peer_t *back = th_link(dst[i], src);
		th_up2(src, p, dst[i], back); /* sessions first; then the faults */
		cr_assert_eq(warp_stream_open(src, p, 1, 16, &b[i].stream), 0);
	}
	b[3].stream = NULL; /* an unknown destination */
	warp_loop_fault_t slow = { .delay_ns = 5000000 }; /* 5 ms each way */
	cr_assert_eq(warp_loop_set_fault(env.net, "src:1", "slow:1", &slow), 0);
	cr_assert_eq(warp_loop_set_fault(env.net, "slow:1", "src:1", &slow), 0);
	cr_assert_eq(warp_loop_partition(env.net, "src:1", "cut:1", true), 0);
	uint8_t buf[100];
	th_fill(buf, sizeof(buf), th_seed(1, 0, sizeof(buf)));
	cr_assert_eq(warp_broadcast(src, b, 4, buf, sizeof(buf)), 3, "three accepted");
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(b[i].status, 0);
		cr_assert_eq(b[i].msg_id, 0);
	}
	cr_assert_eq(b[3].status, WARP_EINVALID_NODE);
	warp_engine_t *es[4] = { src, dst[0], dst[1], dst[2] };
	/* the fast peer is served at once, while the slow one still waits */
	th_run(es, 4, 10, 100000);
	cr_assert_eq(log[0].n, 1);
	cr_assert_eq(log[1].n, 0);
	cr_assert_eq(done.n, 1, "fast completed first");
	cr_assert_str_eq(done.rx[0].src, "fast");
	th_run(es, 4, 400, 100000);
	cr_assert_eq(log[1].n, 1);
	cr_assert_eq(log[2].n, 0);
	cr_assert_eq(done.n, 3);
	for (size_t i = 0; i < done.n; i++) {
		if (strcmp(done.rx[i].src, "cut") == 0)
			cr_assert_eq(done.rx[i].status, WARP_ETIMEDOUT);
		else
			cr_assert_eq(done.rx[i].status, 0);
	}
	/* all destinations failing is an error */
	warp_bcast_t none[1] = { { .stream = NULL } };
	cr_assert_eq(warp_broadcast(src, none, 1, buf, sizeof(buf)), WARP_EINVALID_NODE);
	for (int i = 0; i < 3; i++) {
		warp_engine_destroy(dst[i]);
		free(log[i].rx);
	}
	warp_engine_destroy(src);
	free(done.rx);
	th_env_down(&env);
}

/* Shutdown polls the engine itself; the peer must keep running meanwhile,
 * so it is polled from the clock callback. */
static warp_engine_t *peer_to_poll;
static uint64_t shutdown_clock(void *arg)
{
	(void)arg;
	if (peer_to_poll)
		warp_engine_poll(peer_to_poll);
	th_now += 100000;
	return th_now;
}

Test(shutdown, drains_in_flight_messages)
{
	warp_config_t c;
	warp_config_init(&c);
	struct two t;
	two_up(&t, &c);
	t.a->cfg.clock = shutdown_clock;
	warp_loop_fault_t f = { .loss = 0.2 };
	cr_assert_eq(warp_loop_set_fault(t.env.net, NULL, NULL, &f), 0);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(th_send(t.a, t.s, 1000, NULL), 0);
	peer_to_poll = t.b;
	uint64_t left = 99;
	cr_assert_eq(warp_engine_shutdown(t.a, 10000000000ull, &left), 0, "%s", warp_errdetail());
	peer_to_poll = NULL;
	cr_assert_eq(left, 0);
	cr_assert_eq(t.rx.n, 50, "everything in flight was delivered");
	cr_assert_eq(th_send(t.a, t.s, 10, NULL), WARP_ECLOSED, "no new sends");
	two_down(&t);
}

Test(shutdown, times_out_and_reports_what_was_not_delivered)
{
	warp_config_t c;
	warp_config_init(&c);
	struct two t;
	two_up(&t, &c);
	t.a->cfg.clock = shutdown_clock;
	cr_assert_eq(warp_loop_partition(t.env.net, "a:1", "b:1", true), 0);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(th_send(t.a, t.s, 100, NULL), 0);
	peer_to_poll = t.b;
	uint64_t left = 0;
	cr_assert_eq(warp_engine_shutdown(t.a, 100000000ull, &left), WARP_ESHUTDOWN_TIMEOUT);
	peer_to_poll = NULL;
	cr_assert_eq(left, 20);
	cr_assert(strstr(warp_errdetail(), "20 messages still unsettled"), "%s", warp_errdetail());
	two_down(&t);
}

/* The timeout counts from the call, not from the engine's last poll: an
 * engine not polled for 2 s used to give up after one poll of a 1 s
 * shutdown, with its messages reported undelivered. */
Test(shutdown, the_timeout_counts_from_the_call)
{
	warp_config_t c;
	warp_config_init(&c);
	struct two t;
	two_up(&t, &c);
	t.a->cfg.clock = shutdown_clock;
	for (int i = 0; i < 20; i++)
		cr_assert_eq(th_send(t.a, t.s, 100, NULL), 0);
	th_now += 2000000000ull; /* the application did other things for 2 s */
	peer_to_poll = t.b;
	uint64_t left = 99;
	cr_assert_eq(warp_engine_shutdown(t.a, 1000000000ull, &left), 0, "%s", warp_errdetail());
	peer_to_poll = NULL;
	cr_assert_eq(left, 0);
	cr_assert_eq(t.rx.n, 20);
	two_down(&t);
}

/* A message the old process had partly sent when it died: its new
 * incarnation numbers its messages from 0 again, and its message of the
 * same id and length used to be merged into the old one (fragments inside
 * the old ones' ranges dropped as duplicates), so a delivered a message of
 * old and new bytes. The restart now drops what was being reassembled. */
static bool drop_third_fragment(void *arg, const char *from, const char *to, const uint8_t *pkt,
				uint32_t len)
{
	int *dropped = arg;
	(void)to;
	struct warp_pkt_hdr h;
	if (strcmp(from, "b:1") != 0 || warp__pkt_validate(pkt, len, 9000, UINT32_MAX, &h, NULL))
		return true;
	size_t off = WARP_WIRE_HDR_LEN;
	struct warp_frame f;
	while (warp__frame_next(pkt, len - WARP_WIRE_CRC_LEN, &off, &f))
		if (f.type == WARP_FRAME_STREAM && f.u.stream.offset >= 2000) {
			++*dropped;
			return false;
		}
	return true;
}

struct bytes_check {
	size_t n, bad;
	uint8_t want;
};
static void check_bytes(void *user, const warp_msg_t *m)
{
	struct bytes_check *c = user;
	c->n++;
	for (uint32_t i = 0; i < m->len; i++)
		if (((const uint8_t *)m->data)[i] != c->want) {
			c->bad++;
			break;
		}
}

Test(restart, a_message_the_old_process_left_half_sent_is_not_merged_into_a_new_one)
{
	warp_config_t c;
	warp_config_init(&c);
	struct two t;
	two_up(&t, &c);
	warp_peer_t *ba;
	cr_assert_eq(warp_peer_find(t.b, "a", &ba), 0);
	warp_stream_t *bs;
	cr_assert_eq(warp_stream_open(t.b, ba, 1, 16, &bs), 0);
	struct bytes_check at_a = { .want = 0xBB };
	warp_engine_set_recv(t.a, check_bytes, &at_a);
	static uint8_t msg[3000];
	int dropped = 0;
	warp_loop_set_filter(t.env.net, drop_third_fragment, &dropped);
	memset(msg, 0xAA, sizeof(msg));
	cr_assert_eq(warp_send(t.b, bs, msg, sizeof(msg), NULL), 0);
	run_ms(&t, 1);
	cr_assert_eq(dropped, 1, "the old message's last fragment is lost");
	cr_assert_eq(at_a.n, 0);
	warp_loop_set_filter(t.env.net, NULL, NULL);
	/* b dies before it resends, and starts again */
	warp_engine_destroy(t.b);
	t.b = th_make(&t.env, "b", &c);
	warp_engine_set_recv(t.b, th_recv, &t.rx);
	warp_peer_t *ba2 = th_link(t.b, t.a);
	cr_assert_eq(warp_stream_open(t.b, ba2, 1, 16, &bs), 0);
	memset(msg, 0xBB, sizeof(msg));
	uint64_t id = 99;
	cr_assert_eq(warp_send(t.b, bs, msg, sizeof(msg), &id), 0);
	cr_assert_eq(id, 0, "the new process numbers from 0 again");
	run_ms(&t, 10);
	warp_stats_t st;
	warp_engine_stats(t.a, &st);
	cr_assert_eq(st.peer_restarts, 1);
	cr_assert_eq(at_a.n, 1, "the new message is delivered");
	cr_assert_eq(at_a.bad, 0, "with the new process's bytes only");
	cr_assert_eq(st.msgs_dropped_reset, 1, "the old partial message is dropped, counted");
	two_down(&t);
}

/* A peer that is killed and started again: its silence opens the circuit,
 * its new incarnation is recognised, the circuit closes again and messages
 * flow in both directions. */
Test(breaker, killed_and_restarted_peer_is_detected_and_the_circuit_closes)
{
	warp_config_t c = breaker_cfg();
	struct two t;
	two_up(&t, &c);
	warp_peer_t *ba;
	cr_assert_eq(warp_peer_find(t.b, "a", &ba), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(th_send(t.a, t.s, 100, NULL), 0);
	run_ms(&t, 5);
	cr_assert_eq(t.rx.n, 5);
	/* kill b */
	warp_engine_destroy(t.b);
	t.b = NULL;
	warp_engine_t *es1[1] = { t.a };
	for (int i = 0; i < 3; i++)
		cr_assert_eq(th_send(t.a, t.s, 100, NULL), 0);
	th_run(es1, 1, 400, 100000); /* 40 ms: the three time out */
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_OPEN);
	th_run(es1, 1, 1200, 100000); /* b stays dead a while: half-open, no trial yet */
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_HALF_OPEN);
	/* start b again on the same address */
	t.b = th_make(&t.env, "b", &c);
	t.rx.n = 0;
	warp_engine_set_recv(t.b, th_recv, &t.rx);
	warp_peer_t *ba2 = th_link(t.b, t.a);
	warp_stream_t *back;
	cr_assert_eq(warp_stream_open(t.b, ba2, 1, 16, &back), 0);
	struct th_log at_a;
	th_log_init(&at_a);
	warp_engine_set_recv(t.a, th_recv, &at_a);
	cr_assert_eq(th_send(t.b, back, 10, NULL), 0); /* the new b speaks first */
	run_ms(&t, 5);
	cr_assert_eq(at_a.n, 1, "a accepts the new incarnation");
	warp_stats_t st;
	warp_engine_stats(t.a, &st);
	cr_assert_eq(st.peer_restarts, 1);
	cr_assert_eq(th_send(t.a, t.s, 100, NULL), 0);
	cr_assert_eq(th_send(t.a, t.s, 100, NULL), 0);
	run_ms(&t, 10);
	cr_assert_eq(warp_peer_breaker(t.ab), WARP_BREAKER_CLOSED, "trials succeeded");
	cr_assert_eq(t.rx.n, 2, "b gets what a sends now");
	cr_assert_eq(tr.n, 3);
	free(at_a.rx);
	two_down(&t);
}
