/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A peer's session: the handshake that opens it and the packet protection
 * it keys (docs/security.md has the protocol, docs/wire-protocol.md the
 * frames).
 *
 * Roles are fixed by the node ids: the node with the smaller id (strcmp)
 * is the initiator (and the TLS client), the other the responder. Attempts
 * are numbered by the initiator, so both sides always talk about the same
 * one:
 *   initiator: HS_HELLO(n) -> responder: HS_HELLO(n) -> both negotiate the
 *   capabilities of the two HELLOs; without encryption the session is up,
 *   with it TLS 1.3 runs in HS_CRYPTO(n, offset) frames and the session is
 *   up, on each side, when TLS finishes there.
 * HS_ACK(n) says which HELLO and how many TLS bytes arrived in order; what
 * is not acknowledged is sent again (go-back-N from the acknowledged
 * offset) with a doubling timeout, until connect_timeout fails the attempt.
 * A responder that wants a session (at start, after a restart or a
 * failure) sends HS_HELLO(0), a request the initiator answers with a new
 * attempt. A failed attempt is reported (HS_FAIL, with the reason) and
 * retried with the retry policy's back-off.
 *
 * An encrypted session stays in use while a new attempt runs (a HELLO is
 * not authenticated, so a forged one must not cut a working session); a
 * plaintext one has nothing to lose and restarts at once.
 *
 * Handshakes run in a pool of max_handshakes slots (memory fixed at engine
 * create; TLS allocates in OpenSSL while a handshake runs); an initiator
 * that finds no slot waits for one, first come first served, for at most
 * connect_timeout: then the attempt fails as a timeout and is retried.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_priv.h"
#include "warp/error.h"
#ifdef WARP_HAVE_TLS
#include <openssl/evp.h>

#include "crypto/tls.h"
#endif

#define CAP_WARP 0 /* index in cap_ver */
#define CAP_ENC 1

static bool initiator(const warp_engine_t *e, const struct warp_peer *p)
{
	return strcmp(e->cfg.node_id, p->node) < 0;
}

static bool offers_encryption(const warp_engine_t *e, const struct warp_peer *p)
{
	return p->policy != WARP_ENCRYPTION_OFF && e->tls_ctx != NULL;
}

static void local_hello(const warp_engine_t *e, const struct warp_peer *p, struct warp__hello *h)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->node, sizeof(h->node), "%s", e->cfg.node_id);
	h->incarnation = e->incarnation;
	struct warp__cap *c = &h->caps[h->ncaps++];
	strcpy(c->name, "warp");
	c->min = c->max = WARP_WIRE_VERSION;
	c->flags = WARP_CAP_REQUIRED;
	if (offers_encryption(e, p) || p->policy == WARP_ENCRYPTION_REQUIRED) {
		/* required but impossible cannot pass config validation */
		c = &h->caps[h->ncaps++];
		strcpy(c->name, "encryption");
		c->min = c->max = 1;
		c->flags = p->policy == WARP_ENCRYPTION_REQUIRED ? WARP_CAP_REQUIRED : 0;
	}
	for (uint32_t i = 0; i < e->cfg.n_caps; i++) {
		c = &h->caps[h->ncaps++];
		snprintf(c->name, sizeof(c->name), "%s", e->cfg.caps[i].name);
		c->min = e->cfg.caps[i].min;
		c->max = e->cfg.caps[i].max;
		c->flags = e->cfg.caps[i].required ? WARP_CAP_REQUIRED : 0;
	}
}

static uint16_t hello_bytes(const warp_engine_t *e, const struct warp_peer *p, uint8_t *b)
{
	struct warp__hello h;
	local_hello(e, p, &h);
	return (uint16_t)warp__hello_encode(&h, b, WARP_HELLO_MAX);
}

/* ---- engine set-up ------------------------------------------------------- */

static void hs_timer_cb(struct warp_timer *t, uint64_t now);

int warp__sec_init(warp_engine_t *e)
{
	if (getrandom(&e->incarnation, sizeof(e->incarnation), 0) != sizeof(e->incarnation)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		e->incarnation = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
				 ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)e;
	}
	if (!e->incarnation)
		e->incarnation = 1;
	e->hs = warp__calloc(e->cfg.max_handshakes, sizeof(*e->hs));
	if (!e->hs)
		return warp__err(WARP_ENOMEM, "engine: out of memory (handshake slots)");
	for (uint32_t i = 0; i < e->cfg.max_handshakes; i++) {
		e->hs[i].out = warp__malloc(WARP_HS_OUT_MAX);
		if (!e->hs[i].out)
			return warp__err(WARP_ENOMEM, "engine: out of memory (handshake slots)");
		warp__timer_init(&e->hs[i].timer, hs_timer_cb);
	}
	/* a HELLO with every capability, an ACK and a short HS_FAIL must fit
	 * one packet */
	struct warp_peer probe;
	memset(&probe, 0, sizeof(probe));
	probe.policy = WARP_ENCRYPTION_REQUIRED;
	uint8_t hello[WARP_HELLO_MAX];
	size_t need = WARP_WIRE_HDR_LEN + WARP_FRAME_HS_ACK_LEN + WARP_FRAME_HS_HELLO_HDR +
		      hello_bytes(e, &probe, hello) + WARP_FRAME_HS_FAIL_HDR + 16 +
		      WARP_WIRE_TAG_RESERVE;
	if (need > e->cfg.mtu)
		return warp__err(WARP_ECONFIG,
				 "caps: the HELLO with %u capabilities needs packets of %zu bytes, "
				 "mtu is %u",
				 e->cfg.n_caps, need, e->cfg.mtu);
#ifdef WARP_HAVE_TLS
	if (e->cfg.tls.cert_file[0]) {
		struct warp__tls_cfg tc = {
			.cert_file = e->cfg.tls.cert_file,
			.key_file = e->cfg.tls.key_file,
			.ca_file = e->cfg.tls.ca_file[0] ? e->cfg.tls.ca_file : NULL,
			.verify_peer = e->cfg.tls.verify_peer != 0,
			.no_resumption = !e->cfg.tls.resumption,
		};
		if (warp__tls_ciphers_parse(e->cfg.tls.ciphers, &tc.suites, &tc.chacha_first))
			return warp__err(WARP_ECONFIG, "tls.ciphers: '%s' is not valid",
					 e->cfg.tls.ciphers);
		struct warp__tls_ctx *ctx;
		int rc = warp__tls_ctx_new(&tc, &ctx);
		if (rc)
			return rc;
		e->tls_ctx = ctx;
	}
#endif
	return 0;
}

static void keys_free(struct warp_peer *p)
{
#ifdef WARP_HAVE_TLS
	if (p->key_tx.ctx) {
		warp__aead_fini(&p->key_tx);
		for (int i = 0; i < 4; i++)
			warp__aead_fini(&p->key_rx[i]);
	}
#endif
	memset(&p->key_tx, 0, sizeof(p->key_tx));
	memset(p->key_rx, 0, sizeof(p->key_rx));
}

static void hs_slot_clear(struct warp__hs *hs)
{
#ifdef WARP_HAVE_TLS
	if (hs->tls)
		warp__tls_free(hs->tls);
#endif
	hs->tls = NULL;
}

void warp__sec_fini(warp_engine_t *e)
{
	if (e->peers)
		for (uint32_t i = 0; i < e->n_peers; i++) {
			keys_free(&e->peers[i]);
#ifdef WARP_HAVE_TLS
			if (e->peers[i].tls_session)
				warp__tls_session_free(e->peers[i].tls_session);
#endif
			e->peers[i].tls_session = NULL;
		}
	if (e->hs) {
		for (uint32_t i = 0; i < e->cfg.max_handshakes; i++) {
			hs_slot_clear(&e->hs[i]);
			warp__free(e->hs[i].out);
		}
		warp__free(e->hs);
		e->hs = NULL;
	}
#ifdef WARP_HAVE_TLS
	if (e->tls_ctx)
		warp__tls_ctx_free(e->tls_ctx);
#endif
	e->tls_ctx = NULL;
}

/* ---- slots, attempts, failures ------------------------------------------- */

static void want_tx(warp_engine_t *e, struct warp_peer *p)
{
	p->hs_tx = true;
	warp__tx_activate_peer(e, p);
}

static void hs_release(warp_engine_t *e, struct warp_peer *p)
{
	struct warp__hs *hs = p->hs;
	if (!hs)
		return;
	warp__wheel_cancel(&e->wheel, &hs->timer);
	hs_slot_clear(hs);
	hs->peer = NULL;
	p->hs = NULL;
	e->hs_used--;
	/* the slot goes to the peer that has waited longest */
	struct warp_peer *next = NULL;
	for (uint32_t i = 0; i < e->n_peers; i++) {
		struct warp_peer *q = &e->peers[i];
		if (q->hs_waiting && !q->closed && (!next || q->hs_wait_seq < next->hs_wait_seq))
			next = q;
	}
	if (next) {
		next->hs_waiting = false;
		warp__hs_begin(e, next);
	}
}

static struct warp__hs *hs_take(warp_engine_t *e, struct warp_peer *p, uint32_t attempt)
{
	struct warp__hs *hs = NULL;
	for (uint32_t i = 0; i < e->cfg.max_handshakes && !hs; i++)
		if (!e->hs[i].peer)
			hs = &e->hs[i];
	if (!hs)
		return NULL;
	uint8_t *out = hs->out;
	struct warp_timer timer = hs->timer;
	memset(hs, 0, sizeof(*hs));
	hs->out = out;
	hs->timer = timer;
	hs->peer = p;
	hs->attempt = attempt;
	hs->deadline_ns = e->now + e->cfg.connect_timeout_ns;
	hs->rto_ns = e->cfg.rto_initial_ns;
	hs->client = initiator(e, p);
	hs->hello_len = hello_bytes(e, p, hs->hello);
	hs->hello_due = true;
	p->hs = hs;
	p->hello_rx = false;
	p->crypto_rx_off = 0;
	e->hs_used++;
	warp__wheel_arm(&e->wheel, &hs->timer, WARP__MIN(e->now + hs->rto_ns, hs->deadline_ns));
	return hs;
}

static uint64_t backoff_ns(const warp_engine_t *e, uint32_t failures)
{
	uint64_t b = e->cfg.retry_initial_backoff_ns;
	for (uint32_t i = 1; i < failures && b < e->cfg.retry_max_backoff_ns; i++)
		b *= 2;
	b = WARP__MIN(b, e->cfg.retry_max_backoff_ns);
	/* jitter: between half and all of it */
	uint64_t r = (e->now ^ e->incarnation) * 0x9e3779b97f4a7c15ull;
	r ^= r >> 29;
	return b / 2 + r % (b / 2 + 1);
}

/* Arm the next try: the initiator's next attempt, the responder's next
 * request; none once retry_max_attempts failed in a row (false). */
static bool schedule_retry(warp_engine_t *e, struct warp_peer *p)
{
	if (e->cfg.retry_max_attempts && p->hs_failures >= e->cfg.retry_max_attempts)
		return false;
	warp__wheel_arm(&e->wheel, &p->hs_retry_timer, e->now + backoff_ns(e, p->hs_failures));
	return true;
}

/* The attempt (or, for a responder without one, the wait for one) failed. */
static void hs_fail(warp_engine_t *e, struct warp_peer *p, int code, bool tell_peer,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void hs_fail(warp_engine_t *e, struct warp_peer *p, int code, bool tell_peer,
		    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->hs_error, sizeof(p->hs_error), fmt, ap);
	va_end(ap);
	p->hs_status = code;
	p->hs_failures++;
	warp__stat(e, handshake_failures, 1);
	if (code == WARP_ETIMEDOUT)
		warp__stat(e, handshake_timeouts, 1);
	if (tell_peer && p->attempt) {
		p->fail_attempt = p->attempt;
		p->fail_code = (uint16_t)-code;
		p->hs_fail_pending = true;
		want_tx(e, p);
	}
	hs_release(e, p);
	bool retry = schedule_retry(e, p);
	if (p->ss != WARP_SESSION_UP) {
		p->ss = WARP_SESSION_FAILED;
		/* A refusal settles what was queued for the session with its
		 * error. A timeout does not: the peer may not be up yet, and
		 * the next attempt may bring the session for them; unless it
		 * was the last attempt the retry policy allows: then nothing
		 * would ever send them, and they are settled with the timeout
		 * (and new sends fail with it) until a new attempt starts. */
		if (!retry && code == WARP_ETIMEDOUT) {
			size_t l = strlen(p->hs_error);
			snprintf(p->hs_error + l, sizeof(p->hs_error) - l,
				 "; gave up after %u attempts (retry_max_attempts)", p->hs_failures);
			p->hs_gave_up = true;
		}
		if (code != WARP_ETIMEDOUT || p->hs_gave_up)
			warp__tx_drop_peer_queue(e, p, code);
	}
}

/* Start wanting a session: the initiator opens an attempt, the responder
 * asks the initiator for one. */
void warp__hs_begin(warp_engine_t *e, struct warp_peer *p)
{
	if (p->closed)
		return;
	warp__wheel_cancel(&e->wheel, &p->hs_retry_timer);
	p->hs_gave_up = false; /* sends queue again for this attempt */
	/* an encrypted session stays up meanwhile; a failed one stays failed
	 * (sends fail fast with its error) until an attempt succeeds */
	if (p->ss != WARP_SESSION_FAILED && !(p->ss == WARP_SESSION_UP && p->encrypted))
		p->ss = WARP_SESSION_HANDSHAKE;
	if (!initiator(e, p)) {
		/* responder: request an attempt now and again (rto doubling)
		 * until one comes; connect_timeout without one is a failure */
		p->hs_request = true;
		p->req_deadline_ns = e->now + e->cfg.connect_timeout_ns;
		p->req_rto_ns = e->cfg.rto_initial_ns;
		warp__wheel_arm(&e->wheel, &p->hs_retry_timer, e->now + p->req_rto_ns);
		want_tx(e, p);
		return;
	}
	if (p->hs)
		hs_release(e, p);
	if (!hs_take(e, p, p->attempt + 1)) {
		p->hs_waiting = true;
		p->hs_wait_seq = ++e->hs_wait_seq;
		warp__wheel_arm(&e->wheel, &p->hs_retry_timer, e->now + e->cfg.connect_timeout_ns);
		return;
	}
	p->attempt++;
	want_tx(e, p);
}

void warp__hs_retry_timer(struct warp_timer *t, uint64_t now)
{
	struct warp_peer *p = warp__container_of(t, struct warp_peer, hs_retry_timer);
	warp_engine_t *e = p->engine;
	if (p->closed || p->hs)
		return;
	if (initiator(e, p)) {
		if (p->hs_waiting) { /* connect_timeout passed without a free slot */
			p->hs_waiting = false;
			hs_fail(e, p, WARP_ETIMEDOUT, false,
				"timed out after %llu ms waiting for a handshake slot (all %u "
				"max_handshakes busy)",
				(unsigned long long)(e->cfg.connect_timeout_ns / 1000000),
				e->cfg.max_handshakes);
		} else if (p->ss != WARP_SESSION_UP) {
			warp__hs_begin(e, p);
		}
		return;
	}
	if (p->ss == WARP_SESSION_UP)
		return;
	if (!p->req_deadline_ns) { /* the back-off after a failure is over */
		warp__hs_begin(e, p);
		return;
	}
	if (now >= p->req_deadline_ns) {
		p->hs_request = false;
		p->req_deadline_ns = 0;
		hs_fail(e, p, WARP_ETIMEDOUT, false,
			"timed out after %llu ms (no handshake from '%s')",
			(unsigned long long)(e->cfg.connect_timeout_ns / 1000000), p->node);
		return;
	}
	p->hs_request = true;
	want_tx(e, p);
	p->req_rto_ns = WARP__MIN(p->req_rto_ns * 2, e->cfg.rto_max_ns);
	warp__wheel_arm(&e->wheel, t, WARP__MIN(now + p->req_rto_ns, p->req_deadline_ns));
}

/* ---- the session --------------------------------------------------------- */

static const char *cipher_name(int alg)
{
	switch (alg) {
	case WARP_AEAD_AES128GCM:
		return "aes-128-gcm";
	case WARP_AEAD_CHACHA20POLY1305:
		return "chacha20-poly1305";
	default:
		return "none";
	}
}

#ifdef WARP_HAVE_TLS
/* Per-direction keys from the exporter's two secrets. 0 or a WARP_E*. */
static int keys_install(warp_engine_t *e, struct warp_peer *p, int alg,
			const uint8_t secrets[WARP_TLS_SECRETS_LEN], bool client)
{
	const uint8_t *tx = client ? secrets : secrets + 32;
	const uint8_t *rx = client ? secrets + 32 : secrets;
	int rc = warp__aead_init(&p->key_tx, alg, tx, 1);
	for (int i = 0; i < 4 && !rc; i++) {
		rc = warp__aead_init(&p->key_rx[i], alg, rx, 0);
		/* slot i holds generation i (slot 3 waits for generation 3) */
		for (int g = 0; g < i && !rc; g++)
			rc = warp__aead_update(&p->key_rx[i]);
	}
	if (rc) {
		keys_free(p);
		return rc;
	}
	p->rx_gen = 0;
	p->rx_prev_until_ns = 0;
	p->rx_next_missing = false;
	p->tx_gen_pkts = 0;
	p->tx_gen_first_pn = p->next_pkt_num;
	(void)e;
	return 0;
}
#endif

/* The session is up on this side: plaintext (secrets NULL) or protected. */
static int session_up(warp_engine_t *e, struct warp_peer *p, const uint8_t *secrets, int alg,
		      bool resumed)
{
	keys_free(p);
	p->encrypted = false;
	p->aead_alg = 0;
#ifdef WARP_HAVE_TLS
	if (secrets) {
		int rc = keys_install(e, p, alg, secrets, initiator(e, p));
		if (rc)
			return rc;
		p->encrypted = true;
		p->aead_alg = alg;
	}
#else
	(void)secrets;
	(void)alg;
#endif
	bool restarted = p->handshakes && p->session_inc != p->peer_inc;
	p->session_inc = p->peer_inc;
	p->resumed = resumed;
	p->ss = WARP_SESSION_UP;
	p->hs_status = 0;
	p->hs_error[0] = '\0';
	p->hs_failures = 0;
	p->req_deadline_ns = 0;
	p->hs_request = false;
	p->hs_waiting = false;
	warp__wheel_cancel(&e->wheel, &p->hs_retry_timer);
	p->handshakes++;
	warp__stat(e, handshakes, 1);
	if (resumed)
		warp__stat(e, handshakes_resumed, 1);
	/* a new session numbers the peer's packets afresh */
	warp__rx_window_reset(p);
	if (restarted) {
		/* a new process: its stream order starts over */
		warp__stat(e, peer_restarts, 1);
		for (uint32_t i = 0; i < e->cfg.max_streams; i++)
			if (p->rxs[i].used)
				warp__rx_stream_reset(e, p, &p->rxs[i]);
		warp__reasm_drop_partial(e, p, -1); /* at-most-once streams' too */
	}
	/* a new session after another (a restart, or a reopen on either
	 * side that reset its receive order): tell the peer where our
	 * ordered streams continue */
	if (p->handshakes > 1)
		warp__announce_lows(e, p);
	if (p->hs) {
		p->hs->established = true;
		p->hs->done_ns = e->now;
	}
	warp__tx_activate_peer(e, p);
	return 0;
}

/* Record the negotiated versions of the capabilities this node offers. */
static void caps_record(warp_engine_t *e, struct warp_peer *p, const struct warp__cap_choice *ch,
			unsigned n)
{
	memset(p->cap_ver, 0, sizeof(p->cap_ver));
	for (unsigned i = 0; i < n; i++) {
		int k = -1;
		if (!strcmp(ch[i].name, "warp"))
			k = CAP_WARP;
		else if (!strcmp(ch[i].name, "encryption"))
			k = CAP_ENC;
		for (uint32_t j = 0; j < e->cfg.n_caps && k < 0; j++)
			if (!strcmp(ch[i].name, e->cfg.caps[j].name))
				k = 2 + (int)j;
		if (k >= 0)
			p->cap_ver[k] = ch[i].version;
	}
}

#ifdef WARP_HAVE_TLS
/* Run TLS as far as it goes; queue what it wrote; finish or fail. */
static void tls_pump(warp_engine_t *e, struct warp_peer *p)
{
	struct warp__hs *hs = p->hs;
	int rc = warp__tls_step(hs->tls);
	size_t n = warp__tls_output(hs->tls, hs->out + hs->out_len, WARP_HS_OUT_MAX - hs->out_len);
	hs->out_len += (uint32_t)n;
	if (n)
		want_tx(e, p);
	if (rc < 0) {
		hs_fail(e, p, WARP_EHANDSHAKE, true, "%s", warp__tls_error(hs->tls));
		return;
	}
	uint8_t more;
	if (hs->out_len == WARP_HS_OUT_MAX && warp__tls_output(hs->tls, &more, 1)) {
		hs_fail(e, p, WARP_EHANDSHAKE, true,
			"TLS handshake messages exceed %u bytes (certificate chain too long?)",
			WARP_HS_OUT_MAX);
		return;
	}
	if (rc == 1 && !hs->tls_done) {
		hs->tls_done = true;
		uint8_t secrets[WARP_TLS_SECRETS_LEN];
		int erc = warp__tls_export(hs->tls, secrets);
		if (!erc)
			erc = session_up(e, p, secrets, warp__tls_aead(hs->tls),
					 warp__tls_resumed(hs->tls));
		OPENSSL_cleanse(secrets, sizeof(secrets));
		if (erc) {
			hs_fail(e, p, WARP_EHANDSHAKE, true, "packet keys: %s", warp_errdetail());
			return;
		}
	}
	if (hs->tls_done && hs->client && e->cfg.tls.resumption) {
		void *s = warp__tls_take_session(hs->tls);
		if (s) {
			if (p->tls_session)
				warp__tls_session_free(p->tls_session);
			p->tls_session = s;
			hs->ticket = true;
		}
	}
}
#endif

/* Both HELLOs are known: negotiate, then go up (plaintext) or start TLS. */
static void negotiate(warp_engine_t *e, struct warp_peer *p, const struct warp__hello *peer)
{
	struct warp__hello mine;
	local_hello(e, p, &mine);
	struct warp__cap_choice ch[2 * WARP_HELLO_MAX_CAPS];
	unsigned n = 0;
	char err[200];
	if (warp__caps_negotiate(&mine, peer, ch, &n, err, sizeof(err))) {
		/* the HS_FAIL goes with our HELLO: the peer negotiates the
		 * same two and fails with the same words, from its side */
		hs_fail(e, p, WARP_EHANDSHAKE, true, "%s", err);
		return;
	}
	bool enc = false;
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(ch[i].name, "encryption"))
			enc = ch[i].version > 0;
	if (!enc && p->ss == WARP_SESSION_UP && p->encrypted) {
		/* a HELLO is not authenticated: it cannot trade an encrypted
		 * session for a plaintext one */
		hs_fail(e, p, WARP_EHANDSHAKE, true,
			"a new handshake without encryption while an encrypted session is up: "
			"refused, the encrypted session stays");
		return;
	}
	caps_record(e, p, ch, n);
	if (!p->cap_ver[CAP_ENC]) {
		if (session_up(e, p, NULL, 0, false))
			hs_fail(e, p, WARP_EHANDSHAKE, true, "%s", warp_errdetail());
		return;
	}
#ifdef WARP_HAVE_TLS
	struct warp__hs *hs = p->hs;
	/* bind the HELLO exchange into TLS: initiator's HELLO, then responder's */
	uint8_t both[2 * WARP_HELLO_MAX], binding[WARP_TLS_BINDING_LEN];
	const uint8_t *first = hs->client ? hs->hello : hs->peer_hello;
	size_t first_len = hs->client ? hs->hello_len : hs->peer_hello_len;
	const uint8_t *second = hs->client ? hs->peer_hello : hs->hello;
	size_t second_len = hs->client ? hs->peer_hello_len : hs->hello_len;
	memcpy(both, first, first_len);
	memcpy(both + first_len, second, second_len);
	unsigned mdlen = 0;
	if (EVP_Digest(both, first_len + second_len, binding, &mdlen, EVP_sha256(), NULL) != 1) {
		hs_fail(e, p, WARP_EHANDSHAKE, true, "SHA-256 of the HELLOs failed");
		return;
	}
	struct warp__tls *t;
	void *resume = hs->client && e->cfg.tls.resumption ? p->tls_session : NULL;
	if (warp__tls_new(e->tls_ctx, hs->client, p->node, binding, resume, &t)) {
		hs_fail(e, p, WARP_EHANDSHAKE, true, "%s", warp_errdetail());
		return;
	}
	hs->tls = t;
	tls_pump(e, p);
#else
	hs_fail(e, p, WARP_EHANDSHAKE, true, "encryption chosen but this build has no TLS");
#endif
}

/* ---- receiving handshake frames ------------------------------------------ */

static bool hello_decode(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f,
			 struct warp__hello *h)
{
	const char *why = "";
	if (warp__hello_decode(f->u.hs.data, f->u.hs.len, h, &why)) {
		warp__drop(e, WARP_DROP_BAD_FRAME);
		snprintf(p->hs_error, sizeof(p->hs_error), "malformed HELLO from the peer: %s", why);
		return false;
	}
	if (strcmp(h->node, p->node) != 0) {
		warp__drop(e, WARP_DROP_BAD_FRAME);
		snprintf(p->hs_error, sizeof(p->hs_error),
			 "HELLO on the connection of '%s' names node '%s'", p->node, h->node);
		return false;
	}
	return true;
}

static void store_peer_hello(struct warp__hs *hs, const struct warp_frame *f)
{
	memcpy(hs->peer_hello, f->u.hs.data, f->u.hs.len);
	hs->peer_hello_len = f->u.hs.len;
}

/* Initiator: the responder's HELLO, or its request for an attempt. */
static void on_hello_initiator(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f,
			       const struct warp__hello *h)
{
	if (f->u.hs.attempt == 0) {
		/* a request: it has no session with us. An attempt in
		 * progress will reach it; otherwise open one (a finished
		 * attempt still lingering for its last acknowledgements is
		 * of no use to it any more) */
		if (p->hs && p->hs->established)
			hs_release(e, p);
		if (!p->hs && !p->hs_waiting)
			warp__hs_begin(e, p);
		return;
	}
	struct warp__hs *hs = p->hs;
	if (!hs || f->u.hs.attempt != hs->attempt) {
		warp__drop(e, WARP_DROP_HS_STALE);
		return;
	}
	p->hs_ack_pending = true;
	want_tx(e, p);
	if (p->hello_rx)
		return; /* a copy */
	p->hello_rx = true;
	p->peer_inc = h->incarnation;
	store_peer_hello(hs, f);
	negotiate(e, p, h);
}

/* Responder: the initiator's HELLO opens (or repeats) an attempt. */
static void on_hello_responder(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f,
			       const struct warp__hello *h)
{
	uint32_t n = f->u.hs.attempt;
	if (n == 0) { /* requests come from responders only */
		warp__drop(e, WARP_DROP_BAD_FRAME);
		return;
	}
	bool same_inc = h->incarnation == p->peer_inc;
	if (same_inc && n < p->attempt) {
		/* older than the attempt we know (a late copy, or our number
		 * was pushed up by a forged HELLO): our HS_ACK names the
		 * current number, and the initiator continues above it */
		warp__drop(e, WARP_DROP_HS_STALE);
		p->hs_ack_pending = true;
		want_tx(e, p);
		return;
	}
	if (same_inc && n == p->attempt) {
		/* a copy: acknowledge again; our answer too if not yet taken */
		p->hs_ack_pending = true;
		if (p->hs && !p->hs->hello_acked)
			p->hs->hello_due = true;
		if (p->fail_attempt == n)
			p->hs_fail_pending = true;
		want_tx(e, p);
		return;
	}
	/* a new attempt replaces whatever ran */
	if (p->hs)
		hs_release(e, p);
	struct warp__hs *hs = hs_take(e, p, n);
	if (!hs) {
		warp__drop(e, WARP_DROP_HS_BUSY); /* it asks again; a slot may be free then */
		return;
	}
	p->attempt = n;
	p->peer_inc = h->incarnation;
	p->hello_rx = true;
	p->hs_request = false;
	p->req_deadline_ns = 0;
	warp__wheel_cancel(&e->wheel, &p->hs_retry_timer);
	if (p->ss != WARP_SESSION_FAILED && !(p->ss == WARP_SESSION_UP && p->encrypted))
		p->ss = WARP_SESSION_HANDSHAKE;
	p->hs_ack_pending = true;
	want_tx(e, p);
	store_peer_hello(hs, f);
	negotiate(e, p, h);
}

static void on_crypto(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f,
		      bool *pump)
{
	struct warp__hs *hs = p->hs;
	if (!hs || f->u.hs.attempt != hs->attempt || !hs->tls) {
		warp__drop(e, WARP_DROP_HS_STALE);
		return;
	}
	uint32_t off = f->u.hs.offset, len = f->u.hs.len;
	p->hs_ack_pending = true;
	want_tx(e, p);
	if (off > p->crypto_rx_off || off + len <= p->crypto_rx_off)
		return; /* a gap (resent from the acknowledged offset) or a copy */
#ifdef WARP_HAVE_TLS
	uint32_t skip = p->crypto_rx_off - off;
	if (warp__tls_input(hs->tls, f->u.hs.data + skip, len - skip)) {
		hs_fail(e, p, WARP_EHANDSHAKE, true, "out of memory for TLS input");
		return;
	}
	p->crypto_rx_off = off + len;
	*pump = true;
#else
	(void)pump;
#endif
}

static void maybe_release(warp_engine_t *e, struct warp_peer *p)
{
	struct warp__hs *hs = p->hs;
	if (!hs || !hs->established || !hs->hello_acked || hs->out_acked < hs->out_len)
		return;
	/* the initiator keeps TLS a little for the resumption ticket */
	if (hs->tls && hs->client && e->cfg.tls.resumption && !hs->ticket &&
	    e->now - hs->done_ns < e->cfg.connect_timeout_ns)
		return;
	hs_release(e, p);
}

static void on_hs_ack(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f)
{
	struct warp__hs *hs = p->hs;
	if (initiator(e, p) && f->u.hs.attempt > p->attempt && f->u.hs.attempt < 0xffff0000u &&
	    !(hs && hs->established)) {
		/* the responder is at a higher attempt than ours: number the
		 * next one above it, now */
		warp__drop(e, WARP_DROP_HS_STALE);
		p->attempt = f->u.hs.attempt;
		warp__hs_begin(e, p);
		return;
	}
	if (!hs || f->u.hs.attempt != hs->attempt) {
		warp__drop(e, WARP_DROP_HS_STALE);
		return;
	}
	if (f->u.hs.flags & WARP_HS_ACK_HELLO)
		hs->hello_acked = true;
	if (f->u.hs.offset > hs->out_acked && f->u.hs.offset <= hs->out_len)
		hs->out_acked = f->u.hs.offset;
	maybe_release(e, p);
}

static void on_hs_fail(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f)
{
	struct warp__hs *hs = p->hs;
	/* An attempt that brought the session up is past refusing: the TLS
	 * client only finishes once the server accepted it (its ticket comes
	 * after that), so an HS_FAIL then is forged or stale. */
	if (!hs || f->u.hs.attempt != hs->attempt || hs->established) {
		warp__drop(e, WARP_DROP_HS_STALE);
		return;
	}
	char reason[WARP_FRAME_HS_FAIL_MAX_REASON + 1];
	size_t n = 0;
	for (uint16_t i = 0; i < f->u.hs.len; i++) /* printable only */
		reason[n++] = (f->u.hs.data[i] >= 0x20 && f->u.hs.data[i] < 0x7f)
				      ? (char)f->u.hs.data[i]
				      : '?';
	reason[n] = '\0';
	/* The peer's own timeout is a timeout here too (the queued messages
	 * wait for the next attempt); anything else is a refusal. */
	if (-(int)f->u.hs.code == WARP_ETIMEDOUT)
		hs_fail(e, p, WARP_ETIMEDOUT, false, "'%s' gave up waiting: %s", p->node, reason);
	else
		hs_fail(e, p, WARP_EHANDSHAKE, false, "refused by '%s': %s", p->node, reason);
}

void warp__hs_rx(warp_engine_t *e, struct warp_peer *p, struct warp_pkt *pkt)
{
	warp__stat(e, handshake_pkts_rx, 1);
	bool pump = false;
	struct warp_frame f;
	size_t off = WARP_WIRE_HDR_LEN;
	size_t body = pkt->len - WARP_WIRE_CRC_LEN;
	struct warp__hello h;
	while (warp__frame_next(pkt->data, body, &off, &f)) {
		switch (f.type) {
		case WARP_FRAME_HS_HELLO:
			if (!hello_decode(e, p, &f, &h)) {
				/* a HELLO we cannot use ends the attempt it names */
				if (p->hs && f.u.hs.attempt == p->hs->attempt) {
					char why[sizeof(p->hs_error)];
					memcpy(why, p->hs_error, sizeof(why));
					hs_fail(e, p, WARP_EHANDSHAKE, true, "%s", why);
				}
				return;
			}
			if (initiator(e, p))
				on_hello_initiator(e, p, &f, &h);
			else
				on_hello_responder(e, p, &f, &h);
			break;
		case WARP_FRAME_HS_CRYPTO:
			on_crypto(e, p, &f, &pump);
			break;
		case WARP_FRAME_HS_ACK:
			on_hs_ack(e, p, &f);
			break;
		case WARP_FRAME_HS_FAIL:
			on_hs_fail(e, p, &f);
			break;
		default:
			break;
		}
	}
#ifdef WARP_HAVE_TLS
	if (pump && p->hs && p->hs->tls)
		tls_pump(e, p);
#endif
}

/* ---- sending -------------------------------------------------------------- */

static void hs_timer_cb(struct warp_timer *t, uint64_t now)
{
	struct warp__hs *hs = warp__container_of(t, struct warp__hs, timer);
	struct warp_peer *p = hs->peer;
	warp_engine_t *e = p->engine;
	if (hs->established) {
		maybe_release(e, p);
		if (!p->hs)
			return;
		if (now - hs->done_ns >= e->cfg.connect_timeout_ns) {
			hs_release(e, p); /* the peer has what it needs, or is gone */
			return;
		}
	} else if (now >= hs->deadline_ns) {
		hs_fail(e, p, WARP_ETIMEDOUT, true, "timed out after %llu ms (%s)",
			(unsigned long long)(e->cfg.connect_timeout_ns / 1000000),
			!p->hello_rx ? "no answer to our HELLO"
				     : "TLS did not finish");
		return;
	}
	if (!hs->hello_acked)
		hs->hello_due = true;
	if (hs->out_acked < hs->out_len)
		hs->resend = true;
	if (hs->hello_due || hs->resend)
		want_tx(e, p);
	hs->rto_ns = WARP__MIN(hs->rto_ns * 2, e->cfg.rto_max_ns);
	uint64_t at = now + hs->rto_ns;
	if (!hs->established)
		at = WARP__MIN(at, hs->deadline_ns);
	warp__wheel_arm(&e->wheel, t, at);
}

size_t warp__hs_build(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t room)
{
	struct warp__hs *hs = p->hs;
	size_t off = warp__hdr_encode(b, room, WARP_PKT_HANDSHAKE, e->conn_id, p->hs_pkt_num + 1);
	size_t start = off;
	if (p->hs_ack_pending && p->attempt) {
		off += warp__frame_hs_ack_encode(b + off, room - off,
						 p->hello_rx ? WARP_HS_ACK_HELLO : 0, p->attempt,
						 p->crypto_rx_off);
		p->hs_ack_pending = false;
	}
	if (p->hs_fail_pending) {
		/* our HELLO first: with it the peer can name a capability
		 * mismatch itself; the reason is cut to what fits (the HELLO
		 * and a short reason always do: warp__sec_init checks) */
		uint8_t hello[WARP_HELLO_MAX];
		uint16_t hl = hello_bytes(e, p, hello);
		size_t need = WARP_FRAME_HS_HELLO_HDR + hl + WARP_FRAME_HS_FAIL_HDR;
		if (room - off >= need + 16) {
			char reason[WARP_FRAME_HS_FAIL_MAX_REASON + 1];
			snprintf(reason, WARP__MIN(sizeof(reason), room - off - need + 1), "%s",
				 p->hs_error);
			off += warp__frame_hs_hello_encode(b + off, room - off, p->fail_attempt, hello,
							   hl);
			off += warp__frame_hs_fail_encode(b + off, room - off, p->fail_attempt,
							  p->fail_code, reason);
			p->hs_fail_pending = false;
		}
	}
	if (p->hs_request) {
		uint8_t hello[WARP_HELLO_MAX];
		uint16_t hl = hello_bytes(e, p, hello);
		size_t n = warp__frame_hs_hello_encode(b + off, room - off, 0, hello, hl);
		if (n) {
			off += n;
			p->hs_request = false;
		}
	}
	if (hs && hs->hello_due) {
		size_t n = warp__frame_hs_hello_encode(b + off, room - off, hs->attempt, hs->hello,
						       hs->hello_len);
		if (n) {
			off += n;
			hs->hello_due = false;
		}
	}
	if (hs && hs->resend) {
		hs->out_sent = hs->out_acked; /* go back to what the peer has */
		hs->resend = false;
	}
	while (hs && hs->out_sent < hs->out_len && room - off > WARP_FRAME_HS_CRYPTO_HDR) {
		uint32_t chunk = WARP__MIN(hs->out_len - hs->out_sent,
					   (uint32_t)(room - off - WARP_FRAME_HS_CRYPTO_HDR));
		off += warp__frame_hs_crypto_encode(b + off, room - off, hs->attempt, hs->out_sent,
						    hs->out + hs->out_sent, (uint16_t)chunk);
		hs->out_sent += chunk;
	}
	p->hs_tx = p->hs_ack_pending || p->hs_fail_pending || p->hs_request ||
		   (hs && (hs->hello_due || hs->out_sent < hs->out_len));
	if (off == start)
		return 0;
	p->hs_pkt_num++;
	warp__stat(e, handshake_pkts_tx, 1);
	return warp__pkt_seal(b, off);
}

/* ---- packet protection ---------------------------------------------------- */

#ifdef WARP_HAVE_TLS
size_t warp__protect(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t body, uint64_t pn)
{
	b[5] = WARP_PKT_PROTECTED;
	warp__put16(b + 6, (uint16_t)(p->key_tx.generation & WARP_HDR_KEY_GEN_MASK));
	long n = warp__aead_seal(&p->key_tx, pn, b, WARP_WIRE_HDR_LEN, body - WARP_WIRE_HDR_LEN);
	if (warp__unlikely(n < 0)) {
		/* cannot happen with a valid key; the peer drops it (bad tag)
		 * and it is resent like a lost packet */
		memset(b + body, 0, WARP_AEAD_TAG_LEN);
		n = (long)(body + WARP_AEAD_TAG_LEN);
	}
	/* Next key after key_update_packets, once the peer has shown (by an
	 * acknowledgement) that it reached this one, so it holds the next. */
	if (warp__unlikely(++p->tx_gen_pkts >= e->cfg.key_update_packets) &&
	    p->largest_acked >= p->tx_gen_first_pn) {
		if (warp__aead_update(&p->key_tx) == 0) {
			p->tx_gen_pkts = 0;
			p->tx_gen_first_pn = pn + 1;
			warp__stat(e, key_updates_tx, 1);
		}
	}
	return (size_t)n;
}

/* The key of generation gen + 1 into its slot, from generation gen's.
 * Only fails when OpenSSL does (HKDF: out of memory): the slot is then
 * marked missing and the derivation tried again when a packet of that
 * generation comes, instead of the slot keeping a stale key. */
static bool rx_derive_next(struct warp_peer *p, uint32_t gen)
{
	struct warp__aead *next = &p->key_rx[(gen + 1) & 3];
	const struct warp__aead *cur = &p->key_rx[gen & 3];
	memcpy(next->secret, cur->secret, sizeof(next->secret));
	next->generation = cur->generation;
	p->rx_next_missing = warp__aead_update(next) != 0;
	return !p->rx_next_missing;
}

long warp__unprotect(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t len,
		     const struct warp_pkt_hdr *h)
{
	int8_t d = (int8_t)(uint8_t)((h->flags & WARP_HDR_KEY_GEN_MASK) - (p->rx_gen & 0xff));
	uint32_t gen;
	if (warp__likely(d == 0))
		gen = p->rx_gen;
	else if (d == 1)
		gen = p->rx_gen + 1;
	else if (d == -1 && p->rx_gen > 0 && e->now < p->rx_prev_until_ns)
		gen = p->rx_gen - 1;
	else if (d < 0)
		return -(1 + WARP_DROP_OLD_KEY);
	else
		return -(1 + WARP_DROP_BAD_TAG); /* a key the sender cannot have yet */
	if (warp__unlikely(p->rx_next_missing) && gen == p->rx_gen + 1 &&
	    !rx_derive_next(p, p->rx_gen))
		return -(1 + WARP_DROP_BAD_TAG); /* still no key for it (OpenSSL failed) */
	long n = warp__aead_open(&p->key_rx[gen & 3], h->pkt_num, b, WARP_WIRE_HDR_LEN, len);
	if (warp__unlikely(n < 0))
		return -(1 + WARP_DROP_BAD_TAG);
	if (warp__unlikely(gen != p->rx_gen) && gen == p->rx_gen + 1) {
		/* the peer moved to its next key: keep the previous one a few
		 * RTOs for packets still on the way, derive the one after */
		p->rx_gen = gen;
		p->rx_prev_until_ns = e->now + WARP__MAX(3 * p->rto_ns, 10000000ull);
		rx_derive_next(p, gen);
		warp__stat(e, key_updates_rx, 1);
	}
	return (long)WARP_WIRE_HDR_LEN + n;
}
#else
size_t warp__protect(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t body, uint64_t pn)
{
	(void)e;
	(void)p;
	(void)pn;
	return warp__pkt_seal(b, body); /* never encrypted without TLS */
}

long warp__unprotect(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t len,
		     const struct warp_pkt_hdr *h)
{
	(void)e;
	(void)p;
	(void)b;
	(void)len;
	(void)h;
	return -(1 + WARP_DROP_NO_SESSION);
}
#endif

/* ---- public --------------------------------------------------------------- */

int warp_peer_session(const warp_peer_t *p, warp_session_info_t *out)
{
	if (!p || !out)
		return WARP_EINVAL;
	memset(out, 0, sizeof(*out));
	out->state = p->ss ? p->ss : WARP_SESSION_HANDSHAKE;
	out->encrypted = p->encrypted;
	out->resumed = p->resumed;
	out->cipher = cipher_name(p->encrypted ? p->aead_alg : 0);
	out->tx_key_gen = p->key_tx.generation;
	out->rx_key_gen = p->rx_gen;
	out->handshakes = p->handshakes;
	out->peer_incarnation = p->session_inc;
	out->error = p->hs_status;
	if (p->hs_status &&
	    snprintf(out->error_detail, sizeof(out->error_detail), "handshake with '%s': %s",
		     p->node, p->hs_error) < 0)
		out->error_detail[0] = '\0';
	return 0;
}

int warp_peer_capability(const warp_peer_t *p, const char *name)
{
	if (!p || !name)
		return WARP_EINVAL;
	if (p->ss != WARP_SESSION_UP)
		return warp__err(WARP_ESTATE, "peer '%s': no session yet", p->node);
	if (!strcmp(name, "warp"))
		return p->cap_ver[CAP_WARP];
	if (!strcmp(name, "encryption"))
		return p->cap_ver[CAP_ENC];
	const warp_engine_t *e = p->engine;
	for (uint32_t j = 0; j < e->cfg.n_caps; j++)
		if (!strcmp(name, e->cfg.caps[j].name))
			return p->cap_ver[2 + j];
	return 0;
}
