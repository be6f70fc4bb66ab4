/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secure sessions over the loop driver (manual clock): the handshake
 * (HELLO, capabilities, retransmission, timeouts, bounded slots), mutual
 * TLS 1.3 with the test PKI of tools/mkcerts (each failure named on both
 * sides), per-packet protection (tampering, replay, old keys, key updates),
 * resumption, and exactly-once delivery under loss with encryption on.
 * The same handshakes over uring-udp and DPDK memif are in test_uring.c and
 * test_dpdk.c.
 */
#include "../helpers.h"

/* ---- a pair of engines ---------------------------------------------------- */

struct pair {
	warp_loop_net_t *net;
	warp_engine_t *a, *b;
	warp_peer_t *ab, *ba;
	struct th_log la, lb, da;
	warp_stream_t *s[3]; /* a -> b, by guarantee */
};

static void pair_make(struct pair *p, const warp_config_t *ca, const warp_config_t *cb)
{
	memset(p, 0, sizeof(*p));
	cr_assert_eq(warp_loop_net_create(3, 0, &p->net), 0);
	warp_config_t x = *ca, y = *cb;
	p->a = th_engine(p->net, "a", &x);
	p->b = th_engine(p->net, "b", &y);
	p->ab = th_peer(p->a, "b");
	p->ba = th_peer(p->b, "a");
	th_log_init(&p->la);
	th_log_init(&p->lb);
	th_log_init(&p->da);
	warp_engine_set_recv(p->a, th_recv, &p->la);
	warp_engine_set_recv(p->b, th_recv, &p->lb);
	warp_engine_set_completion(p->a, th_recv, &p->da);
}

static void pair_free(struct pair *p)
{
	warp_engine_destroy(p->a);
	warp_engine_destroy(p->b);
	warp_loop_net_destroy(p->net);
	free(p->la.rx);
	free(p->lb.rx);
	free(p->da.rx);
}

static void run_ms(struct pair *p, unsigned ms)
{
	warp_engine_t *es[2] = { p->a, p->b };
	th_run(es, 2, ms * 10, 100000); /* 100 us steps */
}

static warp_session_info_t sess(warp_peer_t *p)
{
	warp_session_info_t si;
	cr_assert_eq(warp_peer_session(p, &si), 0);
	return si;
}

static warp_stats_t stats(warp_engine_t *e)
{
	warp_stats_t s;
	warp_engine_stats(e, &s);
	return s;
}

static warp_config_t plain(void)
{
	warp_config_t c;
	warp_config_init(&c);
	c.encryption = WARP_ENCRYPTION_OFF;
	return c;
}

static warp_config_t secure(const char *cert)
{
	warp_config_t c;
	warp_config_init(&c);
	c.encryption = WARP_ENCRYPTION_REQUIRED;
	th_tls_cfg(&c, cert, "ca");
	return c;
}

/* Both sides failed; each error names what (both strings must appear). */
static void both_fail(struct pair *p, int code, const char *a_has, const char *b_has)
{
	run_ms(p, 200);
	warp_session_info_t sa = sess(p->ab), sb = sess(p->ba);
	cr_assert_eq(sa.state, WARP_SESSION_FAILED, "a: state %d", sa.state);
	cr_assert_eq(sb.state, WARP_SESSION_FAILED, "b: state %d", sb.state);
	cr_assert_eq(sa.error, code, "a: %s", sa.error_detail);
	cr_assert(strstr(sa.error_detail, a_has), "a says: %s", sa.error_detail);
	cr_assert(strstr(sb.error_detail, b_has), "b says: %s", sb.error_detail);
	cr_assert_eq(p->lb.n, 0);
}

/* Send n messages of random sizes a -> b on a stream of guarantee g and
 * wait for all of them; byte-exact. */
static void exchange(struct pair *p, int g, unsigned n, size_t maxlen, unsigned max_ms)
{
	warp_stream_opts_t o = { .priority = 16, .guarantee = g };
	if (!p->s[g])
		cr_assert_eq(warp_stream_open_ex(p->a, p->ab, (uint16_t)(7 + g), &o, &p->s[g]), 0);
	warp_stream_t *s = p->s[g];
	size_t base = p->lb.n;
	uint64_t rnd = 88172645463325252ull;
	unsigned sent = 0;
	for (unsigned ms = 0; ms < max_ms && p->lb.n - base < n; ms++) {
		while (sent < n) {
			rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
			int rc = th_send(p->a, s, rnd % (maxlen + 1), NULL);
			if (rc == WARP_EAGAIN)
				break;
			cr_assert_eq(rc, 0, "%s", warp_errdetail());
			sent++;
		}
		run_ms(p, 1);
	}
	cr_assert_eq(p->lb.n - base, n, "delivered %zu of %u", p->lb.n - base, n);
	cr_assert_eq(p->lb.bad, 0);
}

/* ---- the handshake, plaintext --------------------------------------------- */

Test(handshake, plaintext_session_negotiates_capabilities)
{
	warp_config_t ca = plain(), cb = plain();
	ca.n_caps = 1;
	cb.n_caps = 1;
	ca.caps[0] = (warp_cap_config_t){ .name = "feature-x", .min = 1, .max = 3 };
	cb.caps[0] = (warp_cap_config_t){ .name = "feature-x", .min = 2, .max = 5 };
	struct pair p;
	pair_make(&p, &ca, &cb);
	cr_assert_eq(warp_peer_capability(p.ab, "warp"), WARP_ESTATE, "not before the session");
	th_up2(p.a, p.ab, p.b, p.ba);
	warp_session_info_t si = sess(p.ab);
	cr_assert_eq(si.encrypted, 0);
	cr_assert_str_eq(si.cipher, "none");
	cr_assert_eq(si.handshakes, 1);
	cr_assert_neq(si.peer_incarnation, 0);
	cr_assert_eq(warp_peer_capability(p.ab, "warp"), 1);
	cr_assert_eq(warp_peer_capability(p.ab, "encryption"), 0);
	cr_assert_eq(warp_peer_capability(p.ab, "feature-x"), 3, "highest common version");
	cr_assert_eq(warp_peer_capability(p.ba, "feature-x"), 3);
	cr_assert_eq(warp_peer_capability(p.ba, "unknown"), 0);
	exchange(&p, WARP_AT_LEAST_ONCE, 200, 5000, 1000);
	pair_free(&p);
}

Test(handshake, no_common_capability_version_fails_both_sides_naming_it)
{
	warp_config_t ca = plain(), cb = plain();
	ca.n_caps = cb.n_caps = 1;
	ca.caps[0] = (warp_cap_config_t){ .name = "codec", .min = 1, .max = 2, .required = 1 };
	cb.caps[0] = (warp_cap_config_t){ .name = "codec", .min = 3, .max = 4 };
	struct pair p;
	pair_make(&p, &ca, &cb);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(p.a, p.ab, 1, 16, &s), 0);
	cr_assert_eq(th_send(p.a, s, 10, NULL), 0, "queued while the handshake runs");
	both_fail(&p, WARP_EHANDSHAKE, "capability 'codec': no common version (local 1..2, peer 3..4)",
		  "capability 'codec': no common version (local 3..4, peer 1..2)");
	/* the queued message is settled with the failure, new sends fail at once */
	cr_assert_eq(p.da.n, 1);
	cr_assert_eq(p.da.rx[0].status, WARP_EHANDSHAKE);
	cr_assert_eq(th_send(p.a, s, 10, NULL), WARP_EHANDSHAKE);
	cr_assert(strstr(warp_errdetail(), "capability 'codec'"), "%s", warp_errdetail());
	cr_assert_geq(stats(p.a).handshake_failures, 1);
	pair_free(&p);
}

Test(handshake, unanswered_handshake_times_out_then_recovers_when_the_peer_comes)
{
	warp_config_t ca = plain();
	ca.connect_timeout_ns = 50000000; /* 50 ms */
	ca.retry_initial_backoff_ns = 10000000;
	ca.retry_max_backoff_ns = 40000000;
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_engine_t *a = th_engine(net, "a", &ca);
	warp_peer_t *ab = th_peer(a, "b");
	warp_engine_t *es[2] = { a, NULL };
	th_run(es, 1, 700, 100000); /* 70 ms: b does not exist */
	warp_session_info_t si = sess(ab);
	cr_assert_eq(si.state, WARP_SESSION_FAILED);
	cr_assert_eq(si.error, WARP_ETIMEDOUT);
	cr_assert(strstr(si.error_detail, "handshake with 'b': timed out after 50 ms (no answer"),
		  "%s", si.error_detail);
	cr_assert_eq(stats(a).handshake_timeouts, 1);
	th_run(es, 1, 2000, 100000); /* retried with back-off, still nobody */
	cr_assert_gt(stats(a).handshake_timeouts, 2, "retries go on");
	/* b starts: its request (or a's next attempt) brings the session up */
	warp_config_t cb = plain();
	warp_engine_t *b = th_engine(net, "b", &cb);
	warp_peer_t *ba = th_peer(b, "a");
	th_up2(a, ab, b, ba);
	cr_assert_eq(sess(ab).error, 0, "the error is cleared");
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	warp_loop_net_destroy(net);
}

/* Once retry_max_attempts attempts timed out in a row nothing would send
 * what is queued: it is settled with the timeout, and sends fail with it,
 * until a new attempt starts (here: the peer appears and asks for one). */
Test(handshake, retries_given_up_settle_the_queue_with_the_timeout)
{
	warp_config_t ca = plain();
	ca.connect_timeout_ns = 20000000; /* 20 ms */
	ca.retry_initial_backoff_ns = 10000000;
	ca.retry_max_backoff_ns = 10000000;
	ca.retry_max_attempts = 2;
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_engine_t *a = th_engine(net, "a", &ca);
	warp_peer_t *ab = th_peer(a, "b");
	struct th_log done;
	th_log_init(&done);
	warp_engine_set_completion(a, th_recv, &done);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(a, ab, 1, 16, &s), 0);
	cr_assert_eq(th_send(a, s, 10, NULL), 0);
	warp_engine_t *es[2] = { a, NULL };
	th_run(es, 1, 300, 100000); /* 30 ms: one attempt timed out, a retry runs */
	cr_assert_eq(done.n, 0, "kept while attempts remain");
	cr_assert_eq(th_send(a, s, 10, NULL), 0);
	th_run(es, 1, 1000, 100000); /* 100 ms: the second timed out too, no more */
	warp_session_info_t si = sess(ab);
	cr_assert_eq(si.state, WARP_SESSION_FAILED);
	cr_assert_eq(si.error, WARP_ETIMEDOUT);
	cr_assert(strstr(si.error_detail, "gave up after 2 attempts (retry_max_attempts)"), "%s",
		  si.error_detail);
	cr_assert_eq(stats(a).handshake_timeouts, 2);
	cr_assert_eq(done.n, 2, "both queued messages are settled");
	for (uint32_t i = 0; i < done.n; i++)
		cr_assert_eq(done.rx[i].status, WARP_ETIMEDOUT);
	cr_assert_eq(th_send(a, s, 10, NULL), WARP_ETIMEDOUT, "sends fail with the timeout");
	cr_assert(strstr(warp_errdetail(), "gave up after 2 attempts"), "%s", warp_errdetail());
	/* b appears and asks for a session: a new attempt, sends queue again */
	warp_config_t cb = plain();
	warp_engine_t *b = th_engine(net, "b", &cb);
	warp_peer_t *ba = th_peer(b, "a");
	th_up2(a, ab, b, ba);
	cr_assert_eq(th_send(a, s, 10, NULL), 0);
	free(done.rx);
	warp_engine_destroy(a);
	warp_engine_destroy(b);
	warp_loop_net_destroy(net);
}

Test(handshake, completes_under_heavy_loss_and_duplication)
{
	warp_config_t c = plain();
	c.connect_timeout_ns = 10000000000ull;
	struct pair p;
	pair_make(&p, &c, &c);
	warp_loop_fault_t f = { .loss = 0.4, .duplicate = 0.2, .reorder = 0.2, .reorder_window = 3 };
	cr_assert_eq(warp_loop_set_fault(p.net, "a:1", "b:1", &f), 0);
	cr_assert_eq(warp_loop_set_fault(p.net, "b:1", "a:1", &f), 0);
	th_up2(p.a, p.ab, p.b, p.ba);
	cr_assert_eq(sess(p.ab).handshakes, 1, "one session, not several");
	cr_assert_eq(sess(p.ba).handshakes, 1);
	pair_free(&p);
}

Test(handshake, slots_are_bounded_and_every_peer_gets_its_turn)
{
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_config_t c = plain();
	c.max_handshakes = 1;
	warp_engine_t *a = th_engine(net, "a", &c);
	const char *names[4] = { "b", "c", "d", "e" };
	warp_engine_t *es[5] = { a };
	warp_peer_t *ps[8];
	for (int i = 0; i < 4; i++) {
		warp_config_t o = plain();
		es[i + 1] = th_engine(net, names[i], &o);
		ps[2 * i] = th_peer(a, names[i]);
		ps[2 * i + 1] = th_peer(es[i + 1], "a");
	}
	uint32_t most = 0;
	for (int r = 0; r < 20000; r++) {
		th_run(es, 5, 1, 1000);
		most = WARP__MAX(most, a->hs_used);
		int up = 0;
		for (int k = 0; k < 8; k++)
			up += sess(ps[k]).state == WARP_SESSION_UP;
		if (up == 8)
			break;
	}
	th_up(es, 5, ps, 8);
	cr_assert_eq(most, 1, "never more than max_handshakes at once");
	for (int i = 0; i < 5; i++)
		warp_engine_destroy(es[i]);
	warp_loop_net_destroy(net);
}

/* With every slot busy, initiators wait in the order they began to (not in
 * peer order), and a wait ends at connect_timeout as a timeout. None of the
 * peers exists, so each attempt holds the one slot for connect_timeout. */
Test(handshake, slots_go_first_come_and_a_wait_ends_at_connect_timeout)
{
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_config_t c = plain();
	c.max_handshakes = 1;
	c.connect_timeout_ns = 50000000;       /* 50 ms */
	c.retry_initial_backoff_ns = 10000000; /* retried 5-10 ms after a failure */
	c.retry_max_backoff_ns = 10000000;
	warp_engine_t *a = th_engine(net, "a", &c);
	warp_engine_t *es[1] = { a };
	warp_peer_t *pb = th_peer(a, "b"); /* takes the slot at 0 */
	th_run(es, 1, 5, 1000000);
	warp_peer_t *pc = th_peer(a, "c"); /* waits from 5 ms */
	th_run(es, 1, 47, 1000000);
	/* 52 ms: b's attempt timed out at 50, c has the slot, b retries at 55-60 */
	cr_assert_not_null(pc->hs, "c waited and got the freed slot");
	cr_assert_null(pb->hs);
	warp_peer_t *pd = th_peer(a, "d"); /* waits from 52 ms, before b's retry */
	th_run(es, 1, 51, 1000000);
	/* 103 ms: c's attempt ended at 100; d has waited longer than b */
	cr_assert_not_null(pd->hs, "the slot goes to the peer that waited longest");
	cr_assert(pb->hs_waiting && !pb->hs, "b, the first peer, waits on");
	th_run(es, 1, 15, 1000000);
	/* 118 ms: b's wait (from 55-60 ms) ended at connect_timeout */
	warp_session_info_t si = sess(pb);
	cr_assert_eq(si.state, WARP_SESSION_FAILED);
	cr_assert_eq(si.error, WARP_ETIMEDOUT);
	cr_assert(strstr(si.error_detail,
			 "timed out after 50 ms waiting for a handshake slot (all 1 max_handshakes busy)"),
		  "%s", si.error_detail);
	cr_assert_eq(stats(a).handshake_timeouts, 3, "b, c, then b's wait");
	cr_assert_not_null(pd->hs, "d's attempt runs on");
	warp_engine_destroy(a);
	warp_loop_net_destroy(net);
}

/* ---- TLS 1.3 ---------------------------------------------------------------- */

/* Which packet types crossed a -> b after the handshake. */
static _Atomic uint64_t seen_type[4];
static bool count_types(void *arg, const char *from, const char *to, const uint8_t *pkt,
			uint32_t len)
{
	(void)arg;
	(void)to;
	if (len > 5 && pkt[5] < 4 && strcmp(from, "a:1") == 0)
		seen_type[pkt[5]]++;
	return true;
}

Test(tls, mutual_tls_session_protects_every_packet, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	struct pair p;
	pair_make(&p, &ca, &cb);
	th_up2(p.a, p.ab, p.b, p.ba);
	warp_session_info_t sa = sess(p.ab), sb = sess(p.ba);
	cr_assert_eq(sa.encrypted, 1);
	cr_assert_eq(sb.encrypted, 1);
	cr_assert_str_eq(sa.cipher, "aes-128-gcm");
	cr_assert_eq(sa.resumed, 0);
	cr_assert_eq(warp_peer_capability(p.ab, "encryption"), 1);
	memset(seen_type, 0, sizeof(seen_type));
	warp_loop_set_filter(p.net, count_types, NULL);
	exchange(&p, WARP_EXACTLY_ONCE, 1000, 20000, 2000);
	warp_loop_set_filter(p.net, NULL, NULL);
	cr_assert_gt(seen_type[WARP_PKT_PROTECTED], 100);
	cr_assert_eq(seen_type[WARP_PKT_FRAMES], 0, "no plaintext data packet");
	warp_stats_t st = stats(p.b);
	cr_assert_eq(st.drop[WARP_DROP_BAD_TAG], 0);
	cr_assert_eq(st.handshakes, 1);
	pair_free(&p);
}

Test(tls, chacha20_poly1305_when_negotiated, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	strcpy(ca.tls.ciphers, "chacha20-poly1305");
	strcpy(cb.tls.ciphers, "chacha20-poly1305:aes-128-gcm");
	struct pair p;
	pair_make(&p, &ca, &cb);
	th_up2(p.a, p.ab, p.b, p.ba);
	cr_assert_str_eq(sess(p.ab).cipher, "chacha20-poly1305");
	cr_assert_str_eq(sess(p.ba).cipher, "chacha20-poly1305");
	exchange(&p, WARP_AT_LEAST_ONCE, 300, 4000, 1000);
	pair_free(&p);
}

Test(tls, wrong_ca_fails_both_sides, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	th_tls_cfg(&cb, "b", "other-ca"); /* b trusts another CA */
	struct pair p;
	pair_make(&p, &ca, &cb);
	both_fail(&p, WARP_EHANDSHAKE, "refused by 'b'", "not trusted");
	pair_free(&p);
}

Test(tls, expired_certificate_fails_both_sides, .fini = th_pki_cleanup)
{
	th_need_tls();
	/* node "expired" (its certificate ran out in 2020) and node "x" */
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_config_t ce = secure("expired"), cx = secure("a");
	warp_engine_t *e = th_engine(net, "expired", &ce);
	warp_engine_t *x = th_engine(net, "a", &cx);
	warp_peer_t *ex = th_peer(e, "a"), *xe = th_peer(x, "expired");
	warp_engine_t *es[2] = { e, x };
	th_run(es, 2, 2000, 100000);
	warp_session_info_t s1 = sess(xe), s2 = sess(ex);
	cr_assert_eq(s1.state, WARP_SESSION_FAILED);
	cr_assert_eq(s2.state, WARP_SESSION_FAILED);
	cr_assert(strstr(s1.error_detail, "expired"), "a says: %s", s1.error_detail);
	cr_assert(strstr(s2.error_detail, "refused by 'a'"), "expired says: %s", s2.error_detail);
	warp_engine_destroy(e);
	warp_engine_destroy(x);
	warp_loop_net_destroy(net);
}

Test(tls, node_id_not_matching_its_certificate_fails_both_sides, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("mismatch"), cb = secure("b"); /* a shows mallory's cert */
	struct pair p;
	pair_make(&p, &ca, &cb);
	both_fail(&p, WARP_EHANDSHAKE, "refused by 'b'", "node id 'a' does not match");
	cr_assert(strstr(sess(p.ba).error_detail, "mallory"), "%s", sess(p.ba).error_detail);
	pair_free(&p);
}

/* a gives up (its connect_timeout is short, b's answers are lost) and tells
 * b with HS_FAIL: b records a timeout, not a refusal, so the message b
 * queued waits for the next attempt instead of failing, and arrives once
 * the path heals. With TLS, so that b (the TLS server) is not up before a
 * has heard from it. */
Test(tls, the_peer_giving_up_is_a_timeout_and_keeps_the_queue, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	ca.connect_timeout_ns = 50000000; /* 50 ms */
	ca.retry_initial_backoff_ns = 10000000;
	ca.retry_max_backoff_ns = 40000000;
	cb.connect_timeout_ns = 10000000000ull;
	struct pair p;
	pair_make(&p, &ca, &cb);
	warp_loop_fault_t cut = { .loss = 1.0 }, ok = { 0 };
	cr_assert_eq(warp_loop_set_fault(p.net, "b:1", "a:1", &cut), 0);
	struct th_log db;
	th_log_init(&db);
	warp_engine_set_completion(p.b, th_recv, &db);
	warp_stream_t *s;
	cr_assert_eq(warp_stream_open(p.b, p.ba, 1, 16, &s), 0);
	cr_assert_eq(th_send(p.b, s, 10, NULL), 0);
	warp_engine_t *es[2] = { p.a, p.b };
	/* until b hears of a's failure (a times out at 50 ms and retries
	 * after its back-off, when b's state moves on) */
	for (int i = 0; i < 1000 && sess(p.ba).state != WARP_SESSION_FAILED; i++)
		th_run(es, 2, 1, 100000);
	warp_session_info_t si = sess(p.ba);
	cr_assert_eq(si.state, WARP_SESSION_FAILED, "state %d (%s)", si.state, si.error_detail);
	cr_assert_eq(si.error, WARP_ETIMEDOUT, "b: %s", si.error_detail);
	cr_assert(strstr(si.error_detail, "'a' gave up waiting"), "%s", si.error_detail);
	cr_assert(strstr(si.error_detail, "timed out"), "b is told a's words: %s",
		  si.error_detail);
	cr_assert_eq(db.n, 0, "the queued message is not settled by a timeout");
	cr_assert_eq(th_send(p.b, s, 10, NULL), 0, "sends still queue");
	cr_assert_eq(warp_loop_set_fault(p.net, "b:1", "a:1", &ok), 0);
	th_up2(p.a, p.ab, p.b, p.ba);
	th_run(es, 2, 200, 100000);
	cr_assert_eq(p.la.n, 2, "both queued messages arrive after the session comes up");
	cr_assert_eq(db.n, 2);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(db.rx[i].status, 0);
	free(db.rx);
	pair_free(&p);
}

Test(tls, encryption_required_but_not_offered_is_refused_on_both_sides, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = plain();
	struct pair p;
	pair_make(&p, &ca, &cb);
	both_fail(&p, WARP_EHANDSHAKE, "capability 'encryption'", "capability 'encryption'");
	cr_assert(strstr(sess(p.ab).error_detail, "not offered"), "%s", sess(p.ab).error_detail);
	pair_free(&p);
}

Test(tls, optional_meets_off_as_plaintext_and_optional_as_encrypted, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = plain();
	ca.encryption = WARP_ENCRYPTION_OPTIONAL;
	struct pair p;
	pair_make(&p, &ca, &cb);
	th_up2(p.a, p.ab, p.b, p.ba);
	cr_assert_eq(sess(p.ab).encrypted, 0);
	pair_free(&p);
	cb = secure("b");
	cb.encryption = WARP_ENCRYPTION_OPTIONAL;
	pair_make(&p, &ca, &cb);
	th_up2(p.a, p.ab, p.b, p.ba);
	cr_assert_eq(sess(p.ab).encrypted, 1);
	pair_free(&p);
}

/* ---- packet protection ---------------------------------------------------- */

/* The first two protected packets a -> b are kept here and lost on the way
 * (b never saw them; a resends their content in new packets). */
static struct {
	uint8_t pkt[2][2048];
	uint32_t len[2];
	unsigned n;
} cap;
static bool capture_a(void *arg, const char *from, const char *to, const uint8_t *pkt,
		      uint32_t len)
{
	(void)arg;
	(void)to;
	if (cap.n < 2 && strcmp(from, "a:1") == 0 && len > 5 && pkt[5] == WARP_PKT_PROTECTED &&
	    len <= sizeof(cap.pkt[0])) {
		memcpy(cap.pkt[cap.n], pkt, len);
		cap.len[cap.n++] = len;
		return false;
	}
	return true;
}

/* Hand b a packet as if it came from the wire. */
static void inject(warp_engine_t *b, const uint8_t *data, uint32_t len)
{
	struct warp_pkt *pkt = warp__pkt_get(&b->pkts);
	cr_assert(pkt);
	memcpy(pkt->data, data, len);
	pkt->len = len;
	pkt->transport = 0;
	warp__rx_packet(b, pkt);
	warp__pkt_put(&b->pkts, pkt);
}

static uint64_t dropped(warp_engine_t *e, int reason)
{
	return stats(e).drop[reason];
}

Test(protect, tampering_replay_and_old_keys_are_dropped_and_counted, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	ca.key_update_packets = 16;
	cb.key_update_packets = 16;
	struct pair p;
	pair_make(&p, &ca, &cb);
	th_up2(p.a, p.ab, p.b, p.ba);
	memset(&cap, 0, sizeof(cap));
	warp_loop_set_filter(p.net, capture_a, NULL);
	warp_stream_opts_t o = { .priority = 16, .guarantee = WARP_EXACTLY_ONCE };
	cr_assert_eq(warp_stream_open_ex(p.a, p.ab, 9, &o, &p.s[WARP_EXACTLY_ONCE]), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(th_send(p.a, p.s[WARP_EXACTLY_ONCE], 1000, NULL), 0);
	warp_engine_t *es[2] = { p.a, p.b };
	for (int r = 0; r < 1000 && cap.n < 2; r++)
		th_run(es, 2, 1, 1000);
	warp_loop_set_filter(p.net, NULL, NULL);
	cr_assert_eq(cap.n, 2);

	/* a flipped bit in the ciphertext, in the tag, in the header */
	uint64_t bad0 = dropped(p.b, WARP_DROP_BAD_TAG);
	uint8_t t[2048];
	uint32_t l = cap.len[0];
	memcpy(t, cap.pkt[0], l);
	t[WARP_WIRE_HDR_LEN + 3] ^= 0x10;
	inject(p.b, t, l);
	memcpy(t, cap.pkt[0], l);
	t[l - 1] ^= 0x01;
	inject(p.b, t, l);
	memcpy(t, cap.pkt[0], l);
	t[12] ^= 0x40; /* the connection id: authenticated too */
	inject(p.b, t, l);
	cr_assert_eq(dropped(p.b, WARP_DROP_UNKNOWN_PEER), 1, "another connection id: nobody's");
	memcpy(t, cap.pkt[0], l);
	t[22] ^= 0x01; /* the packet number (+256): authenticated, and the nonce */
	inject(p.b, t, l);
	cr_assert_eq(dropped(p.b, WARP_DROP_BAD_TAG) - bad0, 3);

	/* the genuine packet is taken once (its message was resent meanwhile
	 * and is not delivered twice); its replay is a duplicate */
	exchange(&p, WARP_EXACTLY_ONCE, 0, 0, 500);
	for (int r = 0; r < 100000 && p.lb.n < 10; r++)
		th_run(es, 2, 1, 1000);
	cr_assert_eq(p.lb.n, 10);
	size_t delivered = p.lb.n;
	uint64_t dup0 = dropped(p.b, WARP_DROP_DUP_PACKET);
	inject(p.b, cap.pkt[0], cap.len[0]);
	cr_assert_eq(dropped(p.b, WARP_DROP_DUP_PACKET), dup0);
	inject(p.b, cap.pkt[0], cap.len[0]);
	cr_assert_eq(dropped(p.b, WARP_DROP_DUP_PACKET) - dup0, 1);
	cr_assert_eq(p.lb.n, delivered);

	/* many key updates later, the second packet's key is gone */
	exchange(&p, WARP_EXACTLY_ONCE, 200, 1400, 2000);
	cr_assert_gt(sess(p.ab).tx_key_gen, 3, "a moved keys %u times", sess(p.ab).tx_key_gen);
	cr_assert_eq(sess(p.ba).rx_key_gen, sess(p.ab).tx_key_gen);
	cr_assert_gt(stats(p.a).key_updates_tx, 3);
	cr_assert_eq(stats(p.b).key_updates_rx, stats(p.a).key_updates_tx);
	uint64_t old0 = dropped(p.b, WARP_DROP_OLD_KEY);
	inject(p.b, cap.pkt[1], cap.len[1]);
	cr_assert_eq(dropped(p.b, WARP_DROP_OLD_KEY) - old0, 1);
	/* nothing was delivered twice, and the connection kept working */
	cr_assert_eq(p.lb.n, delivered + 200);
	exchange(&p, WARP_EXACTLY_ONCE, 50, 3000, 1000);
	for (size_t i = 0; i < p.lb.n; i++)
		cr_assert_eq(p.lb.rx[i].msg_id, i, "exactly once, in order");
	pair_free(&p);
}

Test(protect, plaintext_packets_are_refused_on_an_encrypted_session, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	struct pair p;
	pair_make(&p, &ca, &cb);
	th_up2(p.a, p.ab, p.b, p.ba);
	/* a forged plaintext STREAM packet from a's connection id */
	uint8_t b[256];
	size_t off = warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, p.a->conn_id, 999);
	off += warp__frame_stream_encode(b + off, sizeof(b) - off, 7, 0, 5, 0, "hello", 5);
	size_t len = warp__pkt_seal(b, off);
	warp_stats_t s0 = stats(p.b);
	inject(p.b, b, (uint32_t)len);
	warp_stats_t s1 = stats(p.b);
	cr_assert_eq(s1.drop[WARP_DROP_PLAINTEXT] - s0.drop[WARP_DROP_PLAINTEXT], 1);
	cr_assert_eq(p.lb.n, 0);
	pair_free(&p);
}

Test(protect, exactly_once_under_20_percent_loss_with_encryption, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	ca.connect_timeout_ns = cb.connect_timeout_ns = 10000000000ull;
	ca.key_update_packets = cb.key_update_packets = 256;
	struct pair p;
	pair_make(&p, &ca, &cb);
	warp_loop_fault_t f = { .loss = 0.2, .duplicate = 0.05, .reorder = 0.1, .reorder_window = 4 };
	cr_assert_eq(warp_loop_set_fault(p.net, "a:1", "b:1", &f), 0);
	cr_assert_eq(warp_loop_set_fault(p.net, "b:1", "a:1", &f), 0);
	th_up2(p.a, p.ab, p.b, p.ba);
	exchange(&p, WARP_EXACTLY_ONCE, 2000, 6000, 20000);
	/* each message once, in order */
	for (size_t i = 0; i < p.lb.n; i++)
		cr_assert_eq(p.lb.rx[i].msg_id, i);
	warp_loop_stats_t ls;
	warp_loop_stats(p.net, &ls);
	cr_assert_gt(ls.lost, 100);
	cr_assert_gt(stats(p.a).key_updates_tx, 0);
	pair_free(&p);
}

/* ---- resumption ------------------------------------------------------------- */

Test(tls, reconnect_resumes_with_a_ticket, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	struct pair p;
	pair_make(&p, &ca, &cb);
	th_up2(p.a, p.ab, p.b, p.ba);
	run_ms(&p, 50); /* the ticket arrives after the handshake */
	cr_assert_eq(sess(p.ab).resumed, 0);
	for (int round = 0; round < 3; round++) {
		/* b (the responder) asks for a new session: a resumes */
		cr_assert_eq(warp_peer_reopen(p.b, p.ba), 0);
		run_ms(&p, 1);
		th_up2(p.a, p.ab, p.b, p.ba);
		run_ms(&p, 50);
		cr_assert_eq(sess(p.ab).handshakes, (uint32_t)round + 2);
		cr_assert_eq(sess(p.ab).resumed, 1, "round %d", round);
		cr_assert_eq(sess(p.ba).resumed, 1);
		exchange(&p, WARP_AT_LEAST_ONCE, 20, 2000, 1000);
	}
	cr_assert_eq(stats(p.a).handshakes_resumed, 3);
	cr_assert_eq(stats(p.b).handshakes_resumed, 3);
	pair_free(&p);
}

/* tls.resumption = 0 holds on either side: an initiator offers no ticket,
 * a responder takes none (every reconnect is a full handshake). */
Test(tls, resumption_off_on_either_side_means_full_handshakes, .fini = th_pki_cleanup)
{
	th_need_tls();
	for (int off = 0; off < 2; off++) {
		warp_config_t ca = secure("a"), cb = secure("b");
		(off ? &cb : &ca)->tls.resumption = 0;
		struct pair p;
		pair_make(&p, &ca, &cb);
		th_up2(p.a, p.ab, p.b, p.ba);
		run_ms(&p, 50);
		for (int round = 0; round < 2; round++) {
			cr_assert_eq(warp_peer_reopen(p.b, p.ba), 0);
			run_ms(&p, 1);
			th_up2(p.a, p.ab, p.b, p.ba);
			run_ms(&p, 50);
			cr_assert_eq(sess(p.ab).handshakes, (uint32_t)round + 2);
			cr_assert_eq(sess(p.ab).resumed, 0, "%s off, round %d: resumed",
				     off ? "b" : "a", round);
			cr_assert_eq(sess(p.ba).resumed, 0);
			exchange(&p, WARP_AT_LEAST_ONCE, 20, 2000, 1000);
		}
		cr_assert_eq(stats(p.a).handshakes_resumed, 0);
		cr_assert_eq(stats(p.b).handshakes_resumed, 0);
		pair_free(&p);
	}
}

/* ---- configuration ------------------------------------------------------------ */

Test(config, bad_security_settings_are_named, .fini = th_pki_cleanup)
{
	warp_config_t c;
	warp_config_init(&c);
	strcpy(c.node_id, "z");
	warp_config_add_transport(&c, "loop", "z:1", NULL);
	c.encryption = WARP_ENCRYPTION_REQUIRED;
	cr_assert_eq(warp_config_validate(&c), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "encryption: required, but tls.cert_file is not set"),
		  "%s", warp_errdetail());
	c.encryption = 7;
	cr_assert_eq(warp_config_validate(&c), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "encryption: 7"), "%s", warp_errdetail());
	c.encryption = WARP_ENCRYPTION_OPTIONAL;
	strcpy(c.tls.ciphers, "aes-256-gcm");
	cr_assert_eq(warp_config_validate(&c), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "tls.ciphers"), "%s", warp_errdetail());
	strcpy(c.tls.ciphers, "aes-128-gcm");
	c.n_caps = 1;
	c.caps[0] = (warp_cap_config_t){ .name = "encryption", .min = 1, .max = 1 };
	cr_assert_eq(warp_config_validate(&c), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "built in"), "%s", warp_errdetail());
	c.caps[0] = (warp_cap_config_t){ .name = "Bad", .min = 1, .max = 1 };
	cr_assert_eq(warp_config_validate(&c), WARP_ECONFIG);
	c.caps[0] = (warp_cap_config_t){ .name = "ok", .min = 3, .max = 2 };
	cr_assert_eq(warp_config_validate(&c), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "3..2"), "%s", warp_errdetail());
	if (!th_have_tls()) /* the checks above are the whole test without TLS */
		cr_skip_test("the certificate checks: libwarp was built without TLS (OpenSSL 3)");
	/* files that are not there, a key of another certificate */
	warp_loop_net_t *net;
	cr_assert_eq(warp_loop_net_create(1, 0, &net), 0);
	warp_config_t s = secure("a");
	strcpy(s.node_id, "a");
	warp_config_add_transport(&s, "loop", "a:1", net);
	strcat(s.tls.cert_file, ".missing");
	warp_engine_t *e;
	cr_assert_eq(warp_engine_create(&s, &e), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "cert_file"), "%s", warp_errdetail());
	s = secure("a");
	strcpy(s.node_id, "a");
	warp_config_add_transport(&s, "loop", "a:1", net);
	snprintf(s.tls.key_file, sizeof(s.tls.key_file), "%s/b.key", th_pki_dir());
	cr_assert_eq(warp_engine_create(&s, &e), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "key_file"), "%s", warp_errdetail());
	warp_loop_net_destroy(net);
}

/* ---- forged handshake packets (found by fuzz_handshake) ---------------------- */

/* A handshake packet claiming to come from `from` (its connection id), with
 * one HS_HELLO (attempt, HELLO of node `node`, incarnation inc, offering
 * encryption or not) or one HS_FAIL. */
static uint32_t forge(uint8_t *b, const char *from, uint8_t frame, uint32_t attempt, uint64_t inc,
		      bool offer_enc)
{
	size_t off = warp__hdr_encode(b, 1400, WARP_PKT_HANDSHAKE, warp__conn_id(from), 1);
	if (frame == WARP_FRAME_HS_HELLO) {
		struct warp__hello h;
		memset(&h, 0, sizeof(h));
		strcpy(h.node, from);
		h.incarnation = inc;
		strcpy(h.caps[h.ncaps].name, "warp");
		h.caps[h.ncaps].min = h.caps[h.ncaps].max = 1;
		h.caps[h.ncaps++].flags = WARP_CAP_REQUIRED;
		if (offer_enc) {
			strcpy(h.caps[h.ncaps].name, "encryption");
			h.caps[h.ncaps].min = h.caps[h.ncaps].max = 1;
			h.ncaps++;
		}
		uint8_t hb[WARP_HELLO_MAX];
		size_t hl = warp__hello_encode(&h, hb, sizeof(hb));
		cr_assert_gt(hl, 0);
		off += warp__frame_hs_hello_encode(b + off, 1400 - off, attempt, hb, (uint16_t)hl);
	} else {
		off += warp__frame_hs_fail_encode(b + off, 1400 - off, attempt, 19, "forged");
	}
	return (uint32_t)warp__pkt_seal(b, off);
}

Test(forged, a_high_attempt_number_does_not_lock_the_initiator_out)
{
	warp_config_t c = plain();
	c.connect_timeout_ns = 100000000;
	struct pair p;
	pair_make(&p, &c, &c);
	th_up2(p.a, p.ab, p.b, p.ba);
	uint8_t b[1500];
	/* "a" with its real incarnation and attempt 100: b follows it */
	inject(p.b, b, forge(b, "a", WARP_FRAME_HS_HELLO, 100, p.a->incarnation, false));
	cr_assert_eq(p.ba->attempt, 100);
	/* the real a opens its next attempt (2): b answers with 100, a goes above */
	cr_assert_eq(warp_peer_reopen(p.a, p.ab), 0);
	th_up2(p.a, p.ab, p.b, p.ba);
	cr_assert_gt(p.ab->attempt, 100);
	exchange(&p, WARP_AT_LEAST_ONCE, 20, 1000, 1000);
	pair_free(&p);
}

Test(forged, a_plaintext_hello_cannot_replace_an_encrypted_session, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	ca.encryption = cb.encryption = WARP_ENCRYPTION_OPTIONAL;
	struct pair p;
	pair_make(&p, &ca, &cb);
	th_up2(p.a, p.ab, p.b, p.ba);
	cr_assert_eq(sess(p.ba).encrypted, 1);
	uint8_t b[1500];
	inject(p.b, b, forge(b, "a", WARP_FRAME_HS_HELLO, p.ba->attempt + 1, p.a->incarnation,
			     false));
	run_ms(&p, 5);
	cr_assert_eq(sess(p.ba).state, WARP_SESSION_UP);
	cr_assert_eq(sess(p.ba).encrypted, 1, "still encrypted");
	exchange(&p, WARP_AT_LEAST_ONCE, 50, 2000, 2000);
	pair_free(&p);
}

Test(forged, an_hs_fail_after_the_session_came_up_is_ignored, .fini = th_pki_cleanup)
{
	th_need_tls();
	warp_config_t ca = secure("a"), cb = secure("b");
	struct pair p;
	pair_make(&p, &ca, &cb);
	warp_engine_t *es[2] = { p.a, p.b };
	/* poll until b (the responder) is up, while its slot still lingers */
	for (int r = 0; r < 100000 && sess(p.ba).state != WARP_SESSION_UP; r++)
		th_run(es, 2, 1, 1000);
	cr_assert_eq(sess(p.ba).state, WARP_SESSION_UP);
	uint8_t b[1500];
	inject(p.b, b, forge(b, "a", WARP_FRAME_HS_FAIL, p.ba->attempt, 0, false));
	cr_assert_eq(sess(p.ba).state, WARP_SESSION_UP);
	th_up2(p.a, p.ab, p.b, p.ba);
	/* a (the TLS client) is up too once the ticket came: same for it */
	inject(p.a, b, forge(b, "b", WARP_FRAME_HS_FAIL, p.ab->attempt, 0, false));
	cr_assert_eq(sess(p.ab).state, WARP_SESSION_UP);
	cr_assert_eq(sess(p.ba).handshakes, 1, "the session was not torn down");
	cr_assert_eq(sess(p.ab).handshakes, 1);
	exchange(&p, WARP_AT_LEAST_ONCE, 20, 1000, 1000);
	pair_free(&p);
}
