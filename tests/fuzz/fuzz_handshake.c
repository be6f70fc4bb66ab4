/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the whole handshake receive path of a real engine. One input
 * = one HANDSHAKE packet to engine "b" (manual clock, loop net) from one of
 * its two peers: "a" (b is the responder: a's HELLO opens attempts and b is
 * the TLS server) or "c" (b is the initiator and the TLS client). The packet
 * gets a valid header and CRC32C trailer, so the fuzz bytes reach the frame
 * decoder, crypto/handshake.c (warp__hs_rx), the HELLO parser and TLS; then
 * the engine is polled with the clock moving, so its timers and the
 * handshake's transmit side run too.
 *
 * Input: byte 0 = mode, byte 1 = arg, then the frame area.
 *   mode bit 0  engine: 0 plaintext, 1 TLS (encryption required; certificates
 *               from tools/mkcerts; plaintext when the PKI cannot be made)
 *   mode bit 1  sender: 0 "a", 1 "c"
 *   mode bit 2-3 prefix the frames with a valid HS_HELLO of the sender:
 *               0 none, 1 of b's current attempt, 2 of the next attempt,
 *               3 of attempt (arg & 0x7f) (0: a responder's request)
 *   mode bit 4  patch the HS frames of the input to that attempt, and the
 *               offsets of its HS_CRYPTO frames to continue the TLS bytes b
 *               received in order (shifted by arg bits 4-6: a gap, a copy, an
 *               overlap): stale fuzz inputs stay current as the engine's
 *               state moves on
 *   mode bit 5  the sender's HELLO shows another incarnation (a restart)
 *   mode bit 6  poll with long clock steps ((arg & 0xf) + 1) * 64 ms
 *               (timeouts, retries, back-off), else 100 us
 *   mode bit 7  live: first let real engines "a" and "c" run the handshake
 *               with b until the session is up (bounded) and send b a
 *               message, so the frames land in an established (encrypted)
 *               session with streams; the real peer also answers during the
 *               polls after the packet
 *   arg bit 7   b queues a message to the sender first
 *
 * State carries over from one input to the next (how state bugs are
 * found); engines are made afresh every WARP_FUZZ_RESET inputs (default
 * 1000; 1 makes every input start from fresh engines: reproduce a crash
 * with WARP_FUZZ_RESET=1 when it does not reproduce alone). The incarnations
 * are fixed, so a HELLO built here matches a real engine's, and a captured
 * ClientHello carries the binding b expects (crypto/tls.h): a seed can take
 * TLS past the ClientHello check. After every input the handshake slots
 * and sessions of every engine are checked for consistency.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/hello.h"
#include "engine/engine_priv.h"
#include "fuzz.h"
#include "proto/wire.h"
#include "warp/warp.h"

#define INC_B 0x0b0b0b0b0b0b0b0bull
#define INC_A 0x0a0a0a0a0a0a0a0aull
#define INC_C 0x0c0c0c0c0c0c0c0cull
#define INC_RESTART 0x5a5a5a5a5a5a5a5aull

#define M_TLS 0x01u
#define M_FROM_C 0x02u
#define M_PFX_CUR 0x04u
#define M_PFX_NEXT 0x08u
#define M_PFX_ARG 0x0cu
#define M_PATCH 0x10u
#define M_RESTART 0x20u
#define M_SLOW 0x40u
#define M_LIVE 0x80u
#define A_SEND 0x80u

#define STEP_NS 100000ull        /* a normal poll step: one timer tick */
#define SLOW_STEP_NS 64000000ull /* a long step, times (arg & 0xf) + 1 */
#define POLLS 3                  /* polls after each packet */
#define LIVE_ROUNDS 400          /* live: rounds of 5 ms to bring the session up */

static const char *const names[2] = { "a", "c" };
static const char *const keys[2] = { "a:1", "c:1" }; /* their loop addresses */
static const uint64_t incs[2] = { INC_A, INC_C };

struct world {
	bool tls;
	bool live;      /* packets to a and c get through (else dropped) */
	uint64_t now;   /* the manual clock of all three engines */
	uint64_t pn;
	warp_loop_net_t *net;
	warp_engine_t *b;
	warp_engine_t *real[2];   /* real "a" and "c" */
	warp_peer_t *peer[2];     /* b's peers a and c */
	warp_peer_t *back[2];     /* a's and c's peer b */
	warp_stream_t *stream[2]; /* b -> a, b -> c */
	warp_stream_t *stream_back[2]; /* a -> b, c -> b */
};

static struct world worlds[2]; /* plaintext, TLS */
static bool ready, have_tls;
static char pki[64];
static unsigned long reset_every = 1000, inputs;
static volatile uint8_t sink;

/* ---- the test PKI ---------------------------------------------------------- */

#ifdef WARP_HAVE_TLS
static void pki_remove(void)
{
	char cmd[128];
	if (!pki[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_handshake: could not remove %s\n", pki);
	pki[0] = '\0';
}

/* Certificates for a, b and c in a temporary directory, made once; false
 * (and the reason on stderr) when that is not possible. */
static bool pki_make(void)
{
	const char *root = getenv("WARP_SOURCE_ROOT");
#ifdef WARP_SOURCE_ROOT
	if (!root)
		root = WARP_SOURCE_ROOT;
#endif
	if (!root) {
		fprintf(stderr, "fuzz_handshake: WARP_SOURCE_ROOT not set: fuzzing plaintext only\n");
		return false;
	}
	snprintf(pki, sizeof(pki), "/tmp/warp-fuzz-pki-XXXXXX");
	if (!mkdtemp(pki)) {
		pki[0] = '\0';
		perror("fuzz_handshake: mkdtemp");
		return false;
	}
	atexit(pki_remove);
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s/tools/mkcerts' --force '%s' a b c >/dev/null", root, pki);
	if (system(cmd) != 0) {
		fprintf(stderr, "fuzz_handshake: tools/mkcerts failed: fuzzing plaintext only\n");
		pki_remove();
		return false;
	}
	return true;
}
#endif

/* ---- engines ----------------------------------------------------------------- */

static uint64_t world_clock(void *arg)
{
	return ((const struct world *)arg)->now;
}

/* Everything to a and c is dropped unless the world is live: their queues
 * stay empty while they are not polled. */
static bool world_filter(void *arg, const char *from, const char *to, const uint8_t *pkt,
			 uint32_t len)
{
	(void)from;
	(void)pkt;
	(void)len;
	return ((const struct world *)arg)->live || strcmp(to, "b:1") == 0;
}

static void on_msg(void *user, const warp_msg_t *m)
{
	(void)user;
	uint8_t x = 0;
	for (size_t i = 0; i < m->len; i++)
		x ^= ((const uint8_t *)m->data)[i];
	sink = x;
}

static void die(const char *what, const char *name)
{
	fprintf(stderr, "fuzz_handshake: %s '%s': %s\n", what, name, warp_errdetail());
	abort();
}

static warp_engine_t *engine(struct world *w, const char *name, uint64_t inc)
{
	warp_config_t c;
	warp_config_init(&c);
	snprintf(c.node_id, sizeof(c.node_id), "%s", name);
	char key[16];
	snprintf(key, sizeof(key), "%s:1", name);
	if (warp_config_add_transport(&c, "loop", key, w->net))
		die("transport", name);
	c.max_payload_bytes = 64u << 10;
	c.tx_arena_bytes = c.rx_arena_bytes = 1u << 20;
	c.max_tx_msgs = 64;
	c.max_reassembly = 8;
	c.pkt_pool = 256;
	c.max_peers = 4;
	c.max_streams = 4;
	c.clock = world_clock;
	c.clock_arg = w;
	if (w->tls) {
		c.encryption = WARP_ENCRYPTION_REQUIRED;
		snprintf(c.tls.cert_file, sizeof(c.tls.cert_file), "%s/%s.pem", pki, name);
		snprintf(c.tls.key_file, sizeof(c.tls.key_file), "%s/%s.key", pki, name);
		snprintf(c.tls.ca_file, sizeof(c.tls.ca_file), "%s/ca.pem", pki);
	} else {
		/* one slot: a and c compete for it (HS_BUSY, waiting peers);
		 * retries stop after a few failures (a request restarts them) */
		c.max_handshakes = 1;
		c.retry_max_attempts = 3;
		c.caps[0] = (warp_cap_config_t){ "compression", 1, 3, 0 };
		c.caps[1] = (warp_cap_config_t){ "batch", 2, 2, 1 };
		c.n_caps = 2;
	}
	warp_engine_t *e;
	if (warp_engine_create(&c, &e))
		die("engine", name);
	e->incarnation = inc; /* fixed: the HELLOs (and the TLS binding) are */
	warp_engine_set_recv(e, on_msg, NULL);
	return e;
}

static warp_peer_t *peer(warp_engine_t *e, const char *name)
{
	char id[32];
	snprintf(id, sizeof(id), "%s@%s:1", name, name);
	warp_peer_t *p;
	if (warp_peer_add(e, id, &p))
		die("peer", id);
	return p;
}

static void world_up(struct world *w, bool tls)
{
	memset(w, 0, sizeof(*w));
	w->tls = tls;
	w->now = 1000000000ull;
	if (warp_loop_net_create(7, 256, &w->net))
		abort();
	warp_loop_set_filter(w->net, world_filter, w);
	w->b = engine(w, "b", INC_B);
	for (int i = 0; i < 2; i++) {
		w->real[i] = engine(w, names[i], incs[i]);
		w->back[i] = peer(w->real[i], "b");
		w->peer[i] = peer(w->b, names[i]);
		if (warp_stream_open(w->b, w->peer[i], 1, 16, &w->stream[i]) ||
		    warp_stream_open(w->real[i], w->back[i], 2, 16, &w->stream_back[i]))
			die("stream with", names[i]);
	}
}

static void world_down(struct world *w)
{
	if (!w->net)
		return;
	warp_engine_destroy(w->b);
	warp_engine_destroy(w->real[0]);
	warp_engine_destroy(w->real[1]);
	warp_loop_net_destroy(w->net);
	memset(w, 0, sizeof(*w));
}

static void setup(void)
{
	const char *r = getenv("WARP_FUZZ_RESET");
	if (r && strtoul(r, NULL, 10) > 0)
		reset_every = strtoul(r, NULL, 10);
#ifdef WARP_HAVE_TLS
	have_tls = pki_make();
#endif
	ready = true;
}

static void worlds_up(void)
{
	world_up(&worlds[0], false);
	if (have_tls)
		world_up(&worlds[1], true);
}

static void worlds_down(void)
{
	world_down(&worlds[0]);
	world_down(&worlds[1]);
}

static void poll_world(struct world *w, uint64_t step)
{
	warp_engine_poll(w->b);
	if (w->live) {
		warp_engine_poll(w->real[0]);
		warp_engine_poll(w->real[1]);
	}
	w->now += step;
}

static bool session_up(warp_peer_t *p)
{
	warp_session_info_t si;
	return warp_peer_session(p, &si) == 0 && si.state == WARP_SESSION_UP;
}

/* Live: run b with the real sender until both ends have the session;
 * the sender then queues a message to b. */
static void live_up(struct world *w, int who)
{
	w->live = true;
	for (int r = 0; r < LIVE_ROUNDS; r++) {
		if (session_up(w->peer[who]) && session_up(w->back[who]))
			break;
		poll_world(w, 5000000ull);
	}
	static const uint8_t msg[64];
	warp_send(w->real[who], w->stream_back[who], msg, sizeof(msg), NULL);
}

/* ---- consistency ------------------------------------------------------------- */

static void broken(const warp_engine_t *e, const char *fmt, unsigned long x)
{
	fprintf(stderr, "fuzz_handshake: engine '%s': ", e->cfg.node_id);
	fprintf(stderr, fmt, x);
	fprintf(stderr, "\n");
	abort();
}

/* Slots and peers point at each other; hs_used counts the busy slots; an
 * encrypted session has keys; TLS byte counters stay ordered. */
static void check(const warp_engine_t *e)
{
	uint32_t used = 0;
	for (uint32_t i = 0; i < e->cfg.max_handshakes; i++) {
		const struct warp__hs *hs = &e->hs[i];
		if (!hs->peer)
			continue;
		used++;
		if (hs->peer->hs != hs)
			broken(e, "handshake slot %lu: its peer does not point back to it", i);
		if (hs->out_acked > hs->out_len || hs->out_sent > hs->out_len ||
		    hs->out_len > WARP_HS_OUT_MAX)
			broken(e, "handshake slot %lu: TLS byte counters out of order", i);
	}
	if (used != e->hs_used)
		broken(e, "hs_used is %lu, not the number of busy slots", e->hs_used);
	for (uint32_t i = 0; i < e->n_peers; i++) {
		const struct warp_peer *p = &e->peers[i];
		if (p->hs && p->hs->peer != p)
			broken(e, "peer %lu: its handshake slot belongs to another peer", i);
		if (p->hs && p->hs_waiting)
			broken(e, "peer %lu: waits for a handshake slot while holding one", i);
		if (p->encrypted && p->ss != WARP_SESSION_UP)
			broken(e, "peer %lu: encrypted without a session", i);
#ifdef WARP_HAVE_TLS
		if (p->encrypted && !p->key_tx.ctx)
			broken(e, "peer %lu: encrypted session without keys", i);
#endif
	}
}

/* ---- the packet ---------------------------------------------------------------- */

/* The HELLO a real engine `who` of world w sends (crypto/handshake.c's local_hello:
 * "warp", then "encryption" when offered or required, then cfg.caps). */
static uint16_t sender_hello(const struct world *w, int who, uint64_t inc, uint8_t *out)
{
	struct warp__hello h;
	memset(&h, 0, sizeof(h));
	strcpy(h.node, names[who]);
	h.incarnation = inc;
	h.caps[h.ncaps++] = (struct warp__cap){ "warp", WARP_WIRE_VERSION, WARP_WIRE_VERSION,
						WARP_CAP_REQUIRED };
	if (w->tls) {
		h.caps[h.ncaps++] = (struct warp__cap){ "encryption", 1, 1, WARP_CAP_REQUIRED };
	} else {
		h.caps[h.ncaps++] = (struct warp__cap){ "compression", 1, 3, 0 };
		h.caps[h.ncaps++] = (struct warp__cap){ "batch", 2, 2, WARP_CAP_REQUIRED };
	}
	return (uint16_t)warp__hello_encode(&h, out, WARP_HELLO_MAX);
}

/* Rewrite the attempt of every handshake frame, and the offsets of the
 * HS_CRYPTO frames to run on from crypto_off. Stops at what it cannot walk
 * (the decoder then refuses the packet anyway). */
static void patch(uint8_t *f, size_t n, uint32_t attempt, uint32_t crypto_off)
{
	size_t off = 0;
	while (off < n) {
		uint8_t *q = f + off;
		size_t left = n - off;
		switch (q[0]) {
		case WARP_FRAME_HS_HELLO:
			if (left < WARP_FRAME_HS_HELLO_HDR)
				return;
			warp__put32(q + 2, attempt);
			off += WARP_FRAME_HS_HELLO_HDR + warp__get16(q + 6);
			break;
		case WARP_FRAME_HS_CRYPTO:
			if (left < WARP_FRAME_HS_CRYPTO_HDR)
				return;
			warp__put32(q + 2, attempt);
			warp__put32(q + 6, crypto_off);
			crypto_off += warp__get16(q + 10);
			off += WARP_FRAME_HS_CRYPTO_HDR + warp__get16(q + 10);
			break;
		case WARP_FRAME_HS_ACK:
			if (left < WARP_FRAME_HS_ACK_LEN)
				return;
			warp__put32(q + 4, attempt);
			off += WARP_FRAME_HS_ACK_LEN;
			break;
		case WARP_FRAME_HS_FAIL:
			if (left < WARP_FRAME_HS_FAIL_HDR)
				return;
			warp__put32(q + 2, attempt);
			off += WARP_FRAME_HS_FAIL_HDR + warp__get16(q + 8);
			break;
		default:
			return;
		}
	}
}

/* One HANDSHAKE packet from `who` with this frame area into b's receive
 * path, as the driver would hand it over. */
static void inject(struct world *w, int who, const uint8_t *frames, size_t n)
{
	warp_engine_t *e = w->b;
	struct warp_pkt *pkt = warp__pkt_get(&e->pkts);
	if (!pkt)
		broken(e, "packet pool empty between polls (%lu packets leaked?)", e->cfg.pkt_pool);
	size_t room = WARP__MIN((size_t)pkt->cap, (size_t)e->cfg.mtu) - WARP_WIRE_CRC_LEN;
	size_t off = warp__hdr_encode(pkt->data, room, WARP_PKT_HANDSHAKE,
				      warp__conn_id(names[who]), ++w->pn);
	n = WARP__MIN(n, room - off);
	memcpy(pkt->data + off, frames, n);
	pkt->len = (uint32_t)warp__pkt_seal(pkt->data, off + n);
	pkt->transport = 0;
	warp__rx_packet(e, pkt);
	warp__pkt_put(&e->pkts, pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	if (inputs++ % reset_every == 0) {
		worlds_down();
		worlds_up();
	}
	if (size < 2)
		return 0;
	uint8_t mode = data[0], arg = data[1];
	data += 2;
	size -= 2;
	struct world *w = &worlds[(mode & M_TLS) && have_tls];
	int who = (mode & M_FROM_C) ? 1 : 0;
	struct warp_peer *p = w->peer[who];

	w->live = false;
	if (mode & M_LIVE)
		live_up(w, who);
	if (arg & A_SEND) {
		uint8_t msg[100];
		memset(msg, arg, sizeof(msg));
		warp_send(w->b, w->stream[who], msg, sizeof(msg), NULL);
	}

	static uint8_t buf[WARP_WIRE_MAX_MTU];
	size_t off = 0;
	uint32_t attempt = p->attempt, crypto_off = p->crypto_rx_off;
	unsigned pfx = mode & M_PFX_ARG;
	if (pfx) {
		if (pfx == M_PFX_CUR)
			attempt = p->attempt ? p->attempt : 1;
		else if (pfx == M_PFX_NEXT)
			attempt = p->attempt + 1;
		else
			attempt = arg & 0x7f;
		if (attempt != p->attempt)
			crypto_off = 0; /* a new attempt starts its TLS bytes over */
		uint8_t hello[WARP_HELLO_MAX];
		uint16_t hl = sender_hello(w, who, (mode & M_RESTART) ? INC_RESTART : incs[who], hello);
		off = warp__frame_hs_hello_encode(buf, sizeof(buf), attempt, hello, hl);
	}
	size = WARP__MIN(size, sizeof(buf) - off);
	memcpy(buf + off, data, size);
	if (mode & M_PATCH) {
		static const int32_t shift[8] = { 0, 0, 0, 0, 1, -1, 100, -100 };
		int32_t d = shift[(arg >> 4) & 7];
		if (d >= 0 || crypto_off >= (uint32_t)-d)
			crypto_off += (uint32_t)d;
		patch(buf + off, size, attempt, crypto_off);
	}
	inject(w, who, buf, off + size);

	uint64_t step = (mode & M_SLOW) ? ((arg & 0xfu) + 1) * SLOW_STEP_NS : STEP_NS;
	for (int i = 0; i < POLLS; i++)
		poll_world(w, step);
	w->live = false;
	check(w->b);
	check(w->real[0]);
	check(w->real[1]);
	return 0;
}

/* ---- seeds ------------------------------------------------------------------------ */

/* Capture: the first HS_CRYPTO frame at offset 0 that `from` sends b (its
 * ClientHello or ServerHello flight), from a real handshake. */
struct capture {
	const char *from;
	uint8_t frame[1400];
	size_t len;
};

static bool capture_filter(void *arg, const char *from, const char *to, const uint8_t *pkt,
			   uint32_t len)
{
	struct capture *cap = arg;
	struct warp_pkt_hdr h;
	if (cap->len || strcmp(from, cap->from) != 0 || strcmp(to, "b:1") != 0 ||
	    warp__pkt_validate(pkt, len, WARP_WIRE_MAX_MTU, 1, &h, NULL) || h.type != WARP_PKT_HANDSHAKE)
		return true;
	size_t off = WARP_WIRE_HDR_LEN, prev = off;
	struct warp_frame f;
	while (warp__frame_next(pkt, len - WARP_WIRE_CRC_LEN, &off, &f)) {
		if (f.type == WARP_FRAME_HS_CRYPTO && f.u.hs.offset == 0 &&
		    off - prev <= sizeof(cap->frame)) {
			memcpy(cap->frame, pkt + prev, off - prev);
			cap->len = off - prev;
			break;
		}
		prev = off;
	}
	return true;
}

static size_t capture(int who, uint8_t *out, size_t room)
{
	struct world w;
	struct capture cap = { .from = keys[who] };
	if (!have_tls)
		return 0;
	world_up(&w, true);
	w.live = true;
	warp_loop_set_filter(w.net, capture_filter, &cap);
	for (int r = 0; r < 2000 && !cap.len; r++)
		poll_world(&w, 100000ull);
	world_down(&w);
	if (!cap.len || cap.len > room) {
		fprintf(stderr, "fuzz_handshake: no TLS bytes from '%s' captured\n", names[who]);
		return 0;
	}
	memcpy(out, cap.frame, cap.len);
	return cap.len;
}

size_t warp_fuzz_seeds(uint8_t seeds[][1600], size_t max)
{
	if (!ready)
		setup();
	/* garbage where TLS expects more handshake messages (or, after the
	 * handshake, a record) */
	static const uint8_t record[] = { 0x17, 0x03, 0x03, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8 };
	size_t n = 0;
	for (int k = 0; k < 11 && n < max; k++) {
		uint8_t *b = seeds[n];
		size_t off = 2, room = 1598;
		switch (k) {
		case 0: /* plaintext: a opens the next attempt; b's HELLO acknowledged */
			b[0] = M_PFX_NEXT | M_PATCH;
			b[1] = 0;
			off += warp__frame_hs_ack_encode(b + off, room - off, WARP_HS_ACK_HELLO, 1, 0);
			break;
		case 1: { /* plaintext: the same, as raw frames */
			struct world w = { .tls = false };
			uint8_t hello[WARP_HELLO_MAX];
			uint16_t hl = sender_hello(&w, 0, INC_A, hello);
			b[0] = 0;
			b[1] = 0;
			off += warp__frame_hs_hello_encode(b + off, room - off, 1, hello, hl);
			off += warp__frame_hs_ack_encode(b + off, room - off, WARP_HS_ACK_HELLO, 1, 0);
			break;
		}
		case 2: /* plaintext: c answers b's HELLO (b initiates) */
			b[0] = M_FROM_C | M_PFX_CUR | M_PATCH;
			b[1] = 0;
			off += warp__frame_hs_ack_encode(b + off, room - off, WARP_HS_ACK_HELLO, 1, 0);
			break;
		case 3: /* plaintext: a gives the attempt up */
			b[0] = M_PFX_CUR | M_PATCH;
			b[1] = 0;
			off += warp__frame_hs_fail_encode(b + off, room - off, 1, 5,
							  "capability 'batch': no common version");
			break;
		case 4: /* TLS: a's HELLO and its real ClientHello (b is the server) */
			b[0] = M_TLS | M_PFX_NEXT | M_PATCH;
			b[1] = 0;
			off += capture(0, b + off, room - off);
			break;
		case 5: /* TLS: c's HELLO, ACK, and the start of its real server flight */
			b[0] = M_TLS | M_FROM_C | M_PFX_CUR | M_PATCH;
			b[1] = 0;
			off += warp__frame_hs_ack_encode(b + off, room - off, WARP_HS_ACK_HELLO, 1, 0);
			off += capture(1, b + off, room - off);
			break;
		case 6: /* TLS, live: a new attempt while the encrypted session is up */
			b[0] = M_TLS | M_LIVE | M_PFX_NEXT | M_PATCH;
			b[1] = A_SEND;
			off += warp__frame_hs_ack_encode(b + off, room - off, WARP_HS_ACK_HELLO, 1, 0);
			break;
		case 7: /* TLS, live: c fails the attempt that brought the session up */
			b[0] = M_TLS | M_LIVE | M_FROM_C | M_PATCH;
			b[1] = A_SEND;
			off += warp__frame_hs_ack_encode(b + off, room - off, WARP_HS_ACK_HELLO, 1, 0);
			off += warp__frame_hs_fail_encode(b + off, room - off, 1, 13, "certificate refused");
			break;
		case 8: /* plaintext: a request (attempt 0) from a, which may not ask */
			b[0] = M_PFX_ARG;
			b[1] = 0;
			break;
		case 9: /* TLS: a HELLO, then silence: timeouts, HS_FAIL, back-off */
			b[0] = M_TLS | M_PFX_NEXT | M_SLOW;
			b[1] = 0x0f;
			break;
		default: /* TLS, live: bytes where b's TLS client may wait for a ticket */
			b[0] = M_TLS | M_LIVE | M_FROM_C | M_PATCH;
			b[1] = 0;
			off += warp__frame_hs_crypto_encode(b + off, room - off, 1, 0, record,
							    sizeof(record));
			break;
		}
		seeds[n][1598] = (uint8_t)(off >> 8);
		seeds[n][1599] = (uint8_t)off;
		n++;
	}
	return n;
}
