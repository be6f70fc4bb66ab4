/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: one input = one packet into an engine's receive path.
 * Byte 0 selects helpers so the fuzzer reaches the frame parser quickly:
 * bit 0 rewrites the header to a valid one from the known peer, bit 1 gives
 * the packet a fresh packet number, and unless bit 3 is set the input is a
 * packet body that gets its CRC32C trailer (bit 3: the input is taken as it
 * is, checksum included). Delivered payloads are read in full so
 * the sanitizers see any out-of-bounds pointer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_priv.h"
#include "fuzz.h"
#include "warp/warp.h"

static warp_engine_t *eng;
static warp_loop_net_t *net;
static uint64_t pn;
static volatile uint8_t sink;

static void on_msg(void *user, const warp_msg_t *m)
{
	(void)user;
	uint8_t x = 0;
	for (size_t i = 0; i < m->len; i++)
		x ^= ((const uint8_t *)m->data)[i];
	sink = x;
}

static void setup(void)
{
	warp_config_t cfg;
	warp_config_init(&cfg);
	strcpy(cfg.node_id, "fz");
	cfg.max_payload_bytes = 1u << 20;
	cfg.tx_arena_bytes = cfg.rx_arena_bytes = 4u << 20;
	cfg.max_reassembly = 16;
	cfg.pkt_pool = 256;
	cfg.max_tx_msgs = 256;
	if (warp_loop_net_create(1, 64, &net) ||
	    warp_config_add_transport(&cfg, "loop", "fz:1", net) ||
	    warp_engine_create(&cfg, &eng) || warp_peer_add(eng, "src@src:1", NULL))
		abort();
	warp_engine_set_recv(eng, on_msg, NULL);
	/* a real src brings the session up (plaintext), so the frames of the
	 * packets fed below reach their handlers; then it goes away (fz's
	 * packets to it are dropped by the net: no endpoint) */
	warp_config_t sc;
	warp_config_init(&sc);
	strcpy(sc.node_id, "src");
	warp_engine_t *src;
	warp_peer_t *to_fz, *to_src;
	if (warp_config_add_transport(&sc, "loop", "src:1", net) ||
	    warp_engine_create(&sc, &src) || warp_peer_add(src, "fz@fz:1", &to_fz) ||
	    warp_peer_find(eng, "src", &to_src))
		abort();
	for (int i = 0; i < 100000; i++) {
		warp_session_info_t x, y;
		warp_peer_session(to_fz, &x);
		warp_peer_session(to_src, &y);
		if (x.state == WARP_SESSION_UP && y.state == WARP_SESSION_UP)
			break;
		warp_engine_poll(eng);
		warp_engine_poll(src);
	}
	warp_session_info_t up;
	warp_peer_session(to_src, &up);
	if (up.state != WARP_SESSION_UP)
		abort();
	warp_engine_destroy(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!eng)
		setup();
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	struct warp_pkt *pkt = warp__pkt_get(&eng->pkts);
	if (!pkt)
		abort();
	size_t len = size < pkt->cap - WARP_WIRE_CRC_LEN ? size : pkt->cap - WARP_WIRE_CRC_LEN;
	memcpy(pkt->data, data, len);
	if ((mode & 1) && len >= WARP_WIRE_HDR_LEN)
		warp__hdr_encode(pkt->data, len, WARP_PKT_FRAMES, warp__conn_id("src"),
				 warp__get64(pkt->data + 16));
	if ((mode & 2) && len >= WARP_WIRE_HDR_LEN)
		warp__put64(pkt->data + 16, ++pn);
	if (!(mode & 8))
		len = warp__pkt_seal(pkt->data, len);
	pkt->len = (uint32_t)len;
	pkt->transport = 0;
	warp__rx_packet(eng, pkt);
	warp__pkt_put(&eng->pkts, pkt);
	/* let reassembly timeouts fire now and then */
	if (mode & 4)
		warp__wheel_advance(&eng->wheel, eng->now + (uint64_t)mode * 100000000ull);
	return 0;
}

size_t warp_fuzz_seeds(uint8_t seeds[][1600], size_t max)
{
	size_t n = 0;
	uint8_t payload[1400];
	memset(payload, 'x', sizeof(payload));
	for (int k = 0; k < 4 && n < max; k++) {
		uint8_t *b = seeds[n];
		b[0] = 3;
		size_t off = 1 + warp__hdr_encode(b + 1, 1599, WARP_PKT_FRAMES, warp__conn_id("src"),
						  (uint64_t)k + 1);
		switch (k) {
		case 0: /* three small messages */
			for (uint64_t i = 0; i < 3; i++)
				off += warp__frame_stream_encode(b + off, 1600 - off, 1, i, 50, 0,
								 payload, 50);
			break;
		case 1: /* a fragment and an ack */
			off += warp__frame_stream_encode(b + off, 1600 - off, 2, 0, 3000, 1000,
							 payload, 1000);
			off += warp__frame_ack_encode(b + off, 1600 - off, 10, 2, 5, NULL, 0);
			break;
		case 2: /* heartbeat and close */
			off += warp__frame_heartbeat_encode(b + off, 1600 - off, 0, 9, 99);
			off += warp__frame_close_encode(b + off, 1600 - off, 4, "bye");
			break;
		default: /* the first fragment of the message in case 1 */
			off += warp__frame_stream_encode(b + off, 1600 - off, 2, 0, 3000, 0, payload,
							 1000);
			break;
		}
		/* store the length in the last two bytes of the slot */
		seeds[n][1598] = (uint8_t)(off >> 8);
		seeds[n][1599] = (uint8_t)off;
		n++;
	}
	return n;
}
