/* SPDX-License-Identifier: Apache-2.0 */
/* Parser robustness through the engine's receive path: truncations, flipped
 * bits, wrong magic/version/type, garbage. Each bad packet is dropped and
 * counted by reason; nothing crashes, nothing leaks (sanitizer run). */
#include "../helpers.h"

struct rx_fixture {
	warp_loop_net_t *net;
	warp_engine_t *e, *src;
	warp_peer_t *peer; /* "src", the sender the packets claim to come from */
	struct th_log log;
	uint8_t pkt[1500];
	size_t len;
	uint64_t pn;
};

static void fx_up(struct rx_fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	cr_assert_eq(warp_loop_net_create(1, 0, &fx->net), 0);
	fx->e = th_engine(fx->net, "dst", NULL);
	fx->peer = th_peer(fx->e, "src");
	/* a real src brings the (plaintext) session up; the packets fed
	 * below claim to be its */
	fx->src = th_engine(fx->net, "src", NULL);
	th_up2(fx->e, fx->peer, fx->src, th_peer(fx->src, "dst"));
	th_log_init(&fx->log);
	warp_engine_set_recv(fx->e, th_recv, &fx->log);
	/* A valid packet: three whole messages, a fragment, a heartbeat. */
	uint8_t *b = fx->pkt;
	size_t off = warp__hdr_encode(b, sizeof(fx->pkt), WARP_PKT_FRAMES, warp__conn_id("src"), 1);
	uint8_t data[400];
	for (uint64_t id = 0; id < 3; id++) {
		th_fill(data, 100, th_seed(5, id, 100));
		off += warp__frame_stream_encode(b + off, sizeof(fx->pkt) - off, 5, id, 100, 0, data,
						 100);
	}
	th_fill(data, 400, th_seed(6, 0, 1000));
	off += warp__frame_stream_encode(b + off, sizeof(fx->pkt) - off, 6, 0, 1000, 0, data, 400);
	off += warp__frame_heartbeat_encode(b + off, sizeof(fx->pkt) - off, 0, 1, 2);
	fx->len = off;
	fx->pn = 1;
}

static void fx_down(struct rx_fixture *fx)
{
	warp_engine_destroy(fx->e);
	warp_engine_destroy(fx->src);
	warp_loop_net_destroy(fx->net);
	free(fx->log.rx);
}

/* Feed one packet body straight into the receive path: a fresh packet
 * number (renumber), then the CRC32C trailer, so what is tested is the
 * parser behind the checksum (test_wire.c tests the checksum itself). */
static void feed(struct rx_fixture *fx, const uint8_t *data, size_t len, bool renumber)
{
	struct warp_pkt *pkt = warp__pkt_get(&fx->e->pkts);
	cr_assert_not_null(pkt);
	cr_assert_leq(len + WARP_WIRE_CRC_LEN, pkt->cap);
	memcpy(pkt->data, data, len);
	pkt->transport = 0;
	if (renumber && len >= WARP_WIRE_HDR_LEN)
		warp__put64(pkt->data + 16, ++fx->pn);
	pkt->len = (uint32_t)warp__pkt_seal(pkt->data, len);
	warp__rx_packet(fx->e, pkt);
	warp__pkt_put(&fx->e->pkts, pkt);
}

static warp_stats_t st(struct rx_fixture *fx)
{
	warp_stats_t s;
	warp_engine_stats(fx->e, &s);
	return s;
}

Test(parser, valid_packet_is_accepted)
{
	struct rx_fixture fx;
	fx_up(&fx);
	feed(&fx, fx.pkt, fx.len, false);
	cr_assert_eq(fx.log.n, 3);
	cr_assert_eq(fx.log.bad, 0);
	cr_assert_eq(st(&fx).drops, 0);
	cr_assert_eq(st(&fx).heartbeats_rx, 1);
	feed(&fx, fx.pkt, fx.len, false);
	cr_assert_eq(st(&fx).drop[WARP_DROP_DUP_PACKET], 1, "same packet number twice");
	cr_assert_eq(fx.log.n, 3);
	fx_down(&fx);
}

Test(parser, every_truncation_is_dropped_or_whole_frames_only)
{
	struct rx_fixture fx;
	fx_up(&fx);
	/* frame boundaries of the valid packet */
	size_t bounds[8], nb = 0, off = WARP_WIRE_HDR_LEN;
	struct warp_frame f;
	bounds[nb++] = off;
	while (warp__frame_next(fx.pkt, fx.len, &off, &f))
		bounds[nb++] = off;
	for (size_t L = 0; L < fx.len; L++) {
		warp_stats_t before = st(&fx);
		size_t n_before = fx.log.n;
		feed(&fx, fx.pkt, L, true);
		warp_stats_t after = st(&fx);
		bool boundary = false;
		for (size_t i = 0; i < nb; i++)
			boundary |= bounds[i] == L;
		if (boundary) {
			cr_assert_eq(after.drops, before.drops, "len %zu ends on a frame", L);
		} else {
			cr_assert_eq(after.drops, before.drops + 1, "len %zu must be dropped", L);
			cr_assert_eq(fx.log.n, n_before, "a dropped packet delivers nothing");
			int reason = L < WARP_WIRE_HDR_LEN ? WARP_DROP_TRUNCATED
							   : WARP_DROP_FRAME_TRUNCATED;
			cr_assert_eq(after.drop[reason], before.drop[reason] + 1, "len %zu", L);
		}
	}
	cr_assert_eq(fx.log.bad, 0);
	fx_down(&fx);
}

Test(parser, wrong_magic_version_type_are_counted_by_reason)
{
	struct rx_fixture fx;
	fx_up(&fx);
	uint8_t b[1500];
	memcpy(b, fx.pkt, fx.len);
	b[0] ^= 0xff;
	feed(&fx, b, fx.len, true);
	cr_assert_eq(st(&fx).drop[WARP_DROP_BAD_MAGIC], 1);
	memcpy(b, fx.pkt, fx.len);
	b[4] = 2;
	feed(&fx, b, fx.len, true);
	cr_assert_eq(st(&fx).drop[WARP_DROP_BAD_VERSION], 1);
	memcpy(b, fx.pkt, fx.len);
	b[5] = 9;
	feed(&fx, b, fx.len, true);
	cr_assert_eq(st(&fx).drop[WARP_DROP_BAD_TYPE], 1);
	memcpy(b, fx.pkt, fx.len);
	b[5] = WARP_PKT_PROTECTED; /* this session is plaintext: no key to open it */
	feed(&fx, b, fx.len, true);
	cr_assert_eq(st(&fx).drop[WARP_DROP_NO_SESSION], 1);
	memcpy(b, fx.pkt, fx.len);
	b[8] ^= 1; /* connection id of nobody */
	feed(&fx, b, fx.len, true);
	cr_assert_eq(st(&fx).drop[WARP_DROP_UNKNOWN_PEER], 1);
	cr_assert_eq(fx.log.n, 0);
	cr_assert_eq(st(&fx).drops, 5);
	fx_down(&fx);
}

Test(parser, every_flipped_bit_is_survived)
{
	struct rx_fixture fx;
	fx_up(&fx);
	uint8_t b[1500];
	size_t accepted = 0;
	for (size_t i = 0; i < fx.len; i++) {
		if (i >= 16 && i < 24)
			continue; /* the packet number is renumbered anyway */
		for (int bit = 0; bit < 8; bit++) {
			memcpy(b, fx.pkt, fx.len);
			b[i] ^= (uint8_t)(1u << bit);
			warp_stats_t before = st(&fx);
			feed(&fx, b, fx.len, true);
			warp_stats_t after = st(&fx);
			if (after.drops == before.drops)
				accepted++;
		}
	}
	/* Header and frame-header bits are caught; payload bits cannot be
	 * without packet protection (see docs/wire-protocol.md). */
	cr_assert_gt(accepted, 0);
	cr_assert_lt(accepted, fx.len * 8);
	warp_stats_t s = st(&fx);
	cr_assert_eq(s.drop[WARP_DROP_BAD_MAGIC], 32);
	cr_assert_eq(s.drop[WARP_DROP_BAD_VERSION], 8);
	fx_down(&fx);
}

Test(parser, random_garbage_is_dropped)
{
	struct rx_fixture fx;
	fx_up(&fx);
	uint64_t x = 88172645463325252ull;
	uint8_t b[1500];
	for (int k = 0; k < 20000; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t len = x % 1500;
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			b[i] = (uint8_t)x;
		}
		if (k & 1) /* half keep a valid header, so the frame parser gets garbage */
			memcpy(b, fx.pkt, len < WARP_WIRE_HDR_LEN ? len : WARP_WIRE_HDR_LEN);
		feed(&fx, b, len, (k & 1) != 0);
	}
	warp_stats_t s = st(&fx);
	cr_assert_gt(s.drops, 19000);
	cr_assert_eq(fx.log.bad, 0, "garbage never delivers a message whose bytes do not match");
	fx_down(&fx);
}

Test(parser, oversize_and_conflicting_fragments)
{
	struct rx_fixture fx;
	fx_up(&fx);
	uint8_t b[1500];
	memset(b, 0, sizeof(b));
	memcpy(b, fx.pkt, fx.len);
	feed(&fx, b, 1500, true); /* valid frames then zero padding: 1504 > mtu 1472 */
	cr_assert_eq(st(&fx).drop[WARP_DROP_OVERSIZE], 1);

	/* two fragments of one message that disagree on its length */
	uint8_t d[100];
	memset(d, 'd', sizeof(d));
	size_t off = warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, warp__conn_id("src"), 1);
	size_t n = warp__frame_stream_encode(b + off, sizeof(b) - off, 9, 1, 1000, 0, d, 100);
	feed(&fx, b, off + n, true);
	n = warp__frame_stream_encode(b + off, sizeof(b) - off, 9, 1, 2000, 100, d, 100);
	feed(&fx, b, off + n, true);
	cr_assert_eq(st(&fx).drop[WARP_DROP_REASSEMBLY_CONFLICT], 1);
	/* a fragment received twice */
	n = warp__frame_stream_encode(b + off, sizeof(b) - off, 9, 1, 1000, 0, d, 100);
	feed(&fx, b, off + n, true);
	cr_assert_eq(st(&fx).drop[WARP_DROP_DUP_FRAGMENT], 1);
	/* a message above max_payload_bytes */
	n = warp__frame_stream_encode(b + off, sizeof(b) - off, 9, 2,
				      WARP_DEFAULT_MAX_PAYLOAD_BYTES + 1, 0, d, 100);
	feed(&fx, b, off + n, true);
	cr_assert_eq(st(&fx).drop[WARP_DROP_MSG_TOO_LARGE], 1);
	fx_down(&fx);
}
