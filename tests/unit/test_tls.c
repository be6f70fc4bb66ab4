/* SPDX-License-Identifier: Apache-2.0 */
/* The mutual TLS 1.3 handshake (src/crypto/tls.c), two handshakes pumped
 * against each other in memory: secrets, suites, resumption, and every
 * refusal in words on both sides (untrusted, expired, wrong node id,
 * altered HELLO exchange, broken files, garbage on the wire). The PKI comes
 * from tools/mkcerts, made once per run in a temporary directory. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "crypto/aead.h"
#include "crypto/tls.h"
#include "warp/error.h"

/* ---- the PKI: made by the runner process, found by each test through the
 * environment (Criterion runs every test in a fresh process) ------------- */

#define ENV_DIR "WARP_TLS_TEST_PKI"
#define ENV_SKIP "WARP_TLS_TEST_SKIP"
#define ENV_FAIL "WARP_TLS_TEST_FAIL"

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	const char *root = getenv("WARP_SOURCE_ROOT");
	if (!root || !root[0]) {
		setenv(ENV_SKIP, "WARP_SOURCE_ROOT is not set (run through meson test): cannot "
				 "find tools/mkcerts", 1);
		return;
	}
	if (sh("openssl version >/dev/null 2>&1") != 0) {
		setenv(ENV_SKIP, "no openssl command-line tool to make the test PKI "
				 "(apt-get install openssl)", 1);
		return;
	}
	static char dir[] = "/tmp/warp-tls-test-XXXXXX";
	if (!mkdtemp(dir)) {
		setenv(ENV_FAIL, "mkdtemp under /tmp failed", 1);
		return;
	}
	setenv(ENV_DIR, dir, 1);
	char cmd[2 * PATH_MAX + 256];
	snprintf(cmd, sizeof(cmd), "'%s/tools/mkcerts' '%s' a b c >/dev/null", root, dir);
	if (sh(cmd) != 0) {
		setenv(ENV_FAIL, "tools/mkcerts failed (its message is above)", 1);
		return;
	}
	/* one more: node "d" named only by its subject CN (no SAN), signed by ca */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && printf 'basicConstraints = critical, CA:FALSE\\n' >d.ext && "
		 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out d.key && "
		 "openssl req -new -key d.key -subj /CN=d -out d.csr && "
		 "openssl x509 -req -in d.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 "
		 "-sha256 -extfile d.ext -out d.pem && "
		 "openssl pkey -in a.key -aes-128-cbc -passout pass:secret -out encrypted.key && "
		 "printf 'this is not a certificate\\n' >garbage.pem",
		 dir);
	if (sh(cmd) != 0)
		setenv(ENV_FAIL, "making the CN-only certificate failed (openssl's message is above)",
		       1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	const char *dir = getenv(ENV_DIR);
	if (dir && !strncmp(dir, "/tmp/warp-tls-test-", 19)) {
		char cmd[PATH_MAX + 32];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		sh(cmd);
	}
}

static const char *pki;

static void setup(void)
{
	const char *skip = getenv(ENV_SKIP), *fail = getenv(ENV_FAIL);
	if (skip)
		cr_skip("%s", skip);
	cr_assert_null(fail, "%s", fail);
	pki = getenv(ENV_DIR);
	cr_assert_not_null(pki);
	ERR_clear_error();
}

static void teardown(void)
{
	cr_expect_eq(ERR_peek_error(), 0ul, "OpenSSL's error queue is left clean");
}

TestSuite(tls, .init = setup, .fini = teardown);

/* ---- nodes and handshakes ----------------------------------------------- */

struct node {
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	struct warp__tls_cfg cfg;
	struct warp__tls_ctx *ctx;
};

/* The config of a node presenting <cert>.pem/<key>.key and trusting ca.pem. */
static void node_cfg(struct node *n, const char *cert, const char *key)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->cert, sizeof(n->cert), "%s/%s.pem", pki, cert);
	snprintf(n->key, sizeof(n->key), "%s/%s.key", pki, key);
	snprintf(n->ca, sizeof(n->ca), "%s/ca.pem", pki);
	n->cfg = (struct warp__tls_cfg){
		.cert_file = n->cert,
		.key_file = n->key,
		.ca_file = n->ca,
		.verify_peer = true,
		.suites = WARP_TLS_AES128GCM | WARP_TLS_CHACHA20,
	};
}

static void node_up(struct node *n)
{
	cr_assert_eq(warp__tls_ctx_new(&n->cfg, &n->ctx), 0, "%s: %s", n->cert, warp_errdetail());
}

static void node(struct node *n, const char *name)
{
	node_cfg(n, name, name);
	node_up(n);
}

static void node_down(struct node *n)
{
	warp__tls_ctx_free(n->ctx);
	n->ctx = NULL;
}

static const uint8_t binding1[WARP_TLS_BINDING_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const uint8_t binding2[WARP_TLS_BINDING_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 10 };

struct hs {
	struct warp__tls *c, *s;
	int crc, src; /* the last warp__tls_step of each */
};

/* client (expecting the server to be srv_node) and server (expecting
 * cli_node), both with binding1. */
static void hs_start(struct hs *h, struct node *client, const char *srv_node, struct node *server,
		     const char *cli_node, void *session)
{
	memset(h, 0, sizeof(*h));
	cr_assert_eq(warp__tls_new(client->ctx, true, srv_node, binding1, session, &h->c), 0, "%s",
		     warp_errdetail());
	cr_assert_eq(warp__tls_new(server->ctx, false, cli_node, binding1, NULL, &h->s), 0, "%s",
		     warp_errdetail());
}

static void hs_free(struct hs *h)
{
	warp__tls_free(h->c);
	warp__tls_free(h->s);
}

/* Move what from wants sent into to, chunk bytes at a time, running to
 * after each chunk (as the engine does when frames arrive). */
static size_t deliver(struct warp__tls *from, struct warp__tls *to, int *to_rc, size_t chunk)
{
	uint8_t buf[4096];
	size_t total = 0, n;
	while ((n = warp__tls_output(from, buf, chunk < sizeof(buf) ? chunk : sizeof(buf))) > 0) {
		cr_assert_eq(warp__tls_input(to, buf, n), 0);
		*to_rc = warp__tls_step(to);
		total += n;
	}
	return total;
}

/* Shuttle bytes both ways until nothing more moves: both complete (and the
 * server's ticket reached the client), or one failed and its alert reached
 * the other. */
static void pump_chunked(struct hs *h, size_t chunk)
{
	h->crc = warp__tls_step(h->c);
	h->src = warp__tls_step(h->s);
	int rounds = 0;
	while (deliver(h->c, h->s, &h->src, chunk) + deliver(h->s, h->c, &h->crc, chunk) > 0)
		cr_assert_lt(++rounds, 20, "the handshake does not settle");
}

static void pump(struct hs *h)
{
	pump_chunked(h, SIZE_MAX);
}

static void expect_done(const struct hs *h)
{
	cr_assert_eq(h->crc, 1, "client: %d: %s", h->crc, warp__tls_error(h->c));
	cr_assert_eq(h->src, 1, "server: %d: %s", h->src, warp__tls_error(h->s));
	cr_assert_str_empty(warp__tls_error(h->c));
	cr_assert_str_empty(warp__tls_error(h->s));
}

/* Exported secrets: equal on both sides, not zero, the two directions
 * different. Into out when not NULL. */
static void expect_same_secrets(struct hs *h, uint8_t *out)
{
	uint8_t c[WARP_TLS_SECRETS_LEN], s[WARP_TLS_SECRETS_LEN], zero[WARP_TLS_SECRETS_LEN] = { 0 };
	cr_assert_eq(warp__tls_export(h->c, c), 0, "%s", warp_errdetail());
	cr_assert_eq(warp__tls_export(h->s, s), 0, "%s", warp_errdetail());
	cr_assert_eq(memcmp(c, s, sizeof(c)), 0, "both sides export the same 64 bytes");
	cr_assert_neq(memcmp(c, zero, sizeof(c)), 0);
	cr_assert_neq(memcmp(c, c + 32, 32), 0, "one secret per direction");
	if (out)
		memcpy(out, c, sizeof(c));
}

/* A handshake failed: the side that refused says why, the other side
 * names the alert it received. */
static void expect_refused(const struct hs *h, bool client_refuses, const char *why,
			   const char *alert)
{
	struct warp__tls *refuser = client_refuses ? h->c : h->s;
	struct warp__tls *other = client_refuses ? h->s : h->c;
	int rrc = client_refuses ? h->crc : h->src, orc = client_refuses ? h->src : h->crc;
	cr_assert_eq(rrc, WARP_EHANDSHAKE, "%s: %d: %s", client_refuses ? "client" : "server", rrc,
		     warp__tls_error(refuser));
	cr_assert(strstr(warp__tls_error(refuser), why), "'%s' does not say '%s'",
		  warp__tls_error(refuser), why);
	cr_assert_eq(orc, WARP_EHANDSHAKE, "the other side: %d: %s", orc, warp__tls_error(other));
	char want[128];
	snprintf(want, sizeof(want), "peer refused the handshake: TLS alert '%s'", alert);
	cr_assert_str_eq(warp__tls_error(other), want);
	/* and it stays failed */
	cr_assert_eq(warp__tls_step(refuser), WARP_EHANDSHAKE);
	uint8_t out[WARP_TLS_SECRETS_LEN];
	cr_assert_eq(warp__tls_export(refuser, out), WARP_EPROTO);
}

/* client `cli` (presenting cli_cert) against server `srv` (srv_cert), each
 * expecting the node id given. */
static void run_pair(const char *cli_cert, const char *srv_node, const char *srv_cert,
		     const char *cli_node, struct node *c, struct node *s, struct hs *h)
{
	node(c, cli_cert);
	node(s, srv_cert);
	hs_start(h, c, srv_node, s, cli_node, NULL);
	pump(h);
}

/* ---- success ------------------------------------------------------------ */

Test(tls, a_full_handshake_completes_with_the_same_secrets_on_both_sides)
{
	struct node a, b;
	struct hs h;
	run_pair("a", "b", "b", "a", &a, &b, &h);
	expect_done(&h);
	expect_same_secrets(&h, NULL);
	cr_assert_eq(warp__tls_aead(h.c), WARP_AEAD_AES128GCM, "AES-GCM first by default");
	cr_assert_eq(warp__tls_aead(h.s), WARP_AEAD_AES128GCM);
	cr_assert(!warp__tls_resumed(h.c));
	cr_assert(!warp__tls_resumed(h.s));
	/* the server's ticket came across with the pump */
	void *sess = warp__tls_take_session(h.c);
	cr_assert_not_null(sess, "the client holds a session from the server's ticket");
	cr_assert_null(warp__tls_take_session(h.c), "each ticket is handed over once");
	cr_assert_null(warp__tls_take_session(h.s), "a server keeps no sessions");
	warp__tls_session_free(sess);
	/* later steps keep saying "done" */
	cr_assert_eq(warp__tls_step(h.c), 1);
	cr_assert_eq(warp__tls_step(h.s), 1);
	hs_free(&h);
	node_down(&a);
	node_down(&b);
}

Test(tls, handshake_bytes_delivered_one_at_a_time_complete_the_same)
{
	struct node a, b;
	node(&a, "a");
	node(&b, "b");
	struct hs h;
	hs_start(&h, &a, "b", &b, "a", NULL);
	pump_chunked(&h, 1);
	expect_done(&h);
	expect_same_secrets(&h, NULL);
	void *sess = warp__tls_take_session(h.c);
	cr_assert_not_null(sess);
	warp__tls_session_free(sess);
	hs_free(&h);
	node_down(&a);
	node_down(&b);
}

Test(tls, nothing_is_exported_before_completion)
{
	struct node a, b;
	node(&a, "a");
	node(&b, "b");
	struct hs h;
	hs_start(&h, &a, "b", &b, "a", NULL);
	cr_assert_eq(warp__tls_step(h.c), 0, "in progress");
	uint8_t out[WARP_TLS_SECRETS_LEN];
	cr_assert_eq(warp__tls_export(h.c, out), WARP_EPROTO);
	cr_assert_eq(warp__tls_aead(h.c), 0);
	cr_assert(!warp__tls_resumed(h.c));
	cr_assert_null(warp__tls_take_session(h.c));
	cr_assert_str_empty(warp__tls_error(h.c));
	uint8_t b1[8];
	cr_assert_gt(warp__tls_output(h.c, b1, sizeof(b1)), 0, "the ClientHello is waiting");
	hs_free(&h); /* freed half-way: no leak */
	node_down(&a);
	node_down(&b);
}

static void suites_case(unsigned cli_suites, bool cli_chacha_first, unsigned srv_suites,
			bool srv_chacha_first, int want)
{
	struct node a, b;
	node_cfg(&a, "a", "a");
	node_cfg(&b, "b", "b");
	a.cfg.suites = cli_suites;
	a.cfg.chacha_first = cli_chacha_first;
	b.cfg.suites = srv_suites;
	b.cfg.chacha_first = srv_chacha_first;
	node_up(&a);
	node_up(&b);
	struct hs h;
	hs_start(&h, &a, "b", &b, "a", NULL);
	pump(&h);
	expect_done(&h);
	expect_same_secrets(&h, NULL);
	cr_assert_eq(warp__tls_aead(h.c), want);
	cr_assert_eq(warp__tls_aead(h.s), want);
	hs_free(&h);
	node_down(&a);
	node_down(&b);
}

Test(tls, chacha_is_chosen_when_both_offer_only_chacha)
{
	suites_case(WARP_TLS_CHACHA20, false, WARP_TLS_CHACHA20, false,
		    WARP_AEAD_CHACHA20POLY1305);
}

Test(tls, chacha_is_chosen_when_the_server_prefers_it)
{
	suites_case(WARP_TLS_AES128GCM | WARP_TLS_CHACHA20, false,
		    WARP_TLS_AES128GCM | WARP_TLS_CHACHA20, true, WARP_AEAD_CHACHA20POLY1305);
}

Test(tls, the_server_preference_wins_over_the_clients)
{
	suites_case(WARP_TLS_AES128GCM | WARP_TLS_CHACHA20, true,
		    WARP_TLS_AES128GCM | WARP_TLS_CHACHA20, false, WARP_AEAD_AES128GCM);
}

Test(tls, no_common_suite_fails_on_both_sides)
{
	struct node a, b;
	node_cfg(&a, "a", "a");
	node_cfg(&b, "b", "b");
	a.cfg.suites = WARP_TLS_AES128GCM;
	b.cfg.suites = WARP_TLS_CHACHA20;
	node_up(&a);
	node_up(&b);
	struct hs h;
	hs_start(&h, &a, "b", &b, "a", NULL);
	pump(&h);
	expect_refused(&h, false, "no shared cipher", "handshake failure");
	hs_free(&h);
	node_down(&a);
	node_down(&b);
}

/* ---- resumption ---------------------------------------------------------- */

Test(tls, a_ticket_resumes_on_both_sides_with_new_secrets)
{
	struct node a, b;
	struct hs h;
	run_pair("a", "b", "b", "a", &a, &b, &h);
	expect_done(&h);
	uint8_t first[WARP_TLS_SECRETS_LEN], second[WARP_TLS_SECRETS_LEN];
	expect_same_secrets(&h, first);
	void *sess = warp__tls_take_session(h.c);
	cr_assert_not_null(sess);
	hs_free(&h);

	for (int round = 0; round < 2; round++) {
		hs_start(&h, &a, "b", &b, "a", sess);
		warp__tls_session_free(sess); /* the handshake took its own reference */
		pump(&h);
		expect_done(&h);
		cr_assert(warp__tls_resumed(h.c), "round %d: the client resumed", round);
		cr_assert(warp__tls_resumed(h.s), "round %d: the server resumed", round);
		expect_same_secrets(&h, second);
		cr_assert_neq(memcmp(first, second, sizeof(first)), 0, "fresh secrets");
		memcpy(first, second, sizeof(first));
		cr_assert_eq(warp__tls_aead(h.c), WARP_AEAD_AES128GCM);
		sess = warp__tls_take_session(h.c);
		cr_assert_not_null(sess, "a resumption brings a fresh ticket");
		hs_free(&h);
	}
	warp__tls_session_free(sess);
	node_down(&a);
	node_down(&b);
}

Test(tls, a_server_does_not_resume_a_ticket_issued_to_another_node)
{
	struct node a, b, c;
	struct hs h;
	run_pair("a", "b", "b", "a", &a, &b, &h);
	expect_done(&h);
	void *sess = warp__tls_take_session(h.c);
	cr_assert_not_null(sess);
	hs_free(&h);
	/* c presents a's ticket to b: b would resume a's session as c's; it
	 * makes a full handshake instead, which c passes on its own cert */
	node(&c, "c");
	hs_start(&h, &c, "b", &b, "c", sess);
	warp__tls_session_free(sess);
	pump(&h);
	expect_done(&h);
	cr_assert(!warp__tls_resumed(h.s));
	cr_assert(!warp__tls_resumed(h.c));
	expect_same_secrets(&h, NULL);
	hs_free(&h);
	node_down(&a);
	node_down(&b);
	node_down(&c);
}

Test(tls, a_client_does_not_resume_a_session_with_a_node_it_does_not_name)
{
	struct node a, b;
	struct hs h;
	run_pair("a", "b", "b", "a", &a, &b, &h);
	expect_done(&h);
	void *sess = warp__tls_take_session(h.c);
	cr_assert_not_null(sess);
	hs_free(&h);
	/* a now expects node c, but b answers: b's ticket must not stand in
	 * for c's certificate */
	hs_start(&h, &a, "c", &b, "a", sess);
	warp__tls_session_free(sess);
	pump(&h);
	expect_refused(&h, true,
		       "node id 'c' does not match its certificate (names: b, warp://node/b)",
		       "bad certificate");
	hs_free(&h);
	node_down(&a);
	node_down(&b);
}

/* ---- refusals ----------------------------------------------------------- */

Test(tls, a_client_certificate_from_another_ca_is_not_trusted)
{
	struct node s, b;
	struct hs h;
	run_pair("stranger", "b", "b", "stranger", &s, &b, &h);
	expect_refused(&h, false,
		       "certificate of 'stranger' not trusted: unable to get local issuer certificate",
		       "unknown CA");
	hs_free(&h);
	node_down(&s);
	node_down(&b);
}

Test(tls, a_server_certificate_from_another_ca_is_not_trusted)
{
	struct node a, s;
	struct hs h;
	run_pair("a", "stranger", "stranger", "a", &a, &s, &h);
	expect_refused(&h, true,
		       "certificate of 'stranger' not trusted: unable to get local issuer certificate",
		       "unknown CA");
	hs_free(&h);
	node_down(&a);
	node_down(&s);
}

Test(tls, an_expired_client_certificate_is_refused_with_its_date)
{
	struct node e, b;
	struct hs h;
	run_pair("expired", "b", "b", "expired", &e, &b, &h);
	expect_refused(&h, false, "certificate of 'expired' expired (notAfter 2020-01-02)",
		       "certificate expired");
	hs_free(&h);
	node_down(&e);
	node_down(&b);
}

Test(tls, an_expired_server_certificate_is_refused_with_its_date)
{
	struct node a, e;
	struct hs h;
	run_pair("a", "expired", "expired", "a", &a, &e, &h);
	expect_refused(&h, true, "certificate of 'expired' expired (notAfter 2020-01-02)",
		       "certificate expired");
	hs_free(&h);
	node_down(&a);
	node_down(&e);
}

Test(tls, a_client_certificate_naming_another_node_is_refused)
{
	struct node m, b;
	struct hs h;
	run_pair("mismatch", "b", "b", "a", &m, &b, &h);
	expect_refused(&h, false,
		       "node id 'a' does not match its certificate (names: mallory, "
		       "warp://node/mallory)",
		       "bad certificate");
	hs_free(&h);
	node_down(&m);
	node_down(&b);
}

Test(tls, a_server_certificate_naming_another_node_is_refused)
{
	struct node a, a2;
	struct hs h;
	run_pair("a", "b", "a", "a", &a, &a2, &h);
	expect_refused(&h, true,
		       "node id 'b' does not match its certificate (names: a, warp://node/a)",
		       "bad certificate");
	hs_free(&h);
	node_down(&a);
	node_down(&a2);
}

Test(tls, a_certificate_without_san_is_matched_by_its_common_name)
{
	struct node d, b;
	struct hs h;
	run_pair("d", "b", "b", "d", &d, &b, &h);
	expect_done(&h);
	hs_free(&h);
	hs_start(&h, &d, "b", &b, "x", NULL);
	pump(&h);
	expect_refused(&h, false, "node id 'x' does not match its certificate (names: d)",
		       "bad certificate");
	hs_free(&h);
	node_down(&d);
	node_down(&b);
}

Test(tls, a_different_binding_means_the_hello_exchange_was_altered)
{
	struct node a, b;
	node(&a, "a");
	node(&b, "b");
	struct hs h = { 0 };
	cr_assert_eq(warp__tls_new(a.ctx, true, "b", binding1, NULL, &h.c), 0);
	cr_assert_eq(warp__tls_new(b.ctx, false, "a", binding2, NULL, &h.s), 0);
	pump(&h);
	expect_refused(&h, false, "HELLO exchange altered in transit", "handshake failure");
	cr_assert_str_eq(warp__tls_error(h.s), "HELLO exchange altered in transit");
	hs_free(&h);
	node_down(&a);
	node_down(&b);
}

/* ---- verify_peer off ---------------------------------------------------- */

Test(tls, without_verify_peer_a_server_accepts_any_client)
{
	struct node s, b;
	node(&s, "stranger"); /* s still checks b against ca.pem */
	node_cfg(&b, "b", "b");
	b.cfg.verify_peer = false;
	node_up(&b);
	struct hs h;
	hs_start(&h, &s, "b", &b, "stranger", NULL);
	pump(&h);
	expect_done(&h);
	expect_same_secrets(&h, NULL);
	hs_free(&h);
	/* and the node id is not checked either */
	hs_start(&h, &s, "b", &b, "someone-else", NULL);
	pump(&h);
	expect_done(&h);
	hs_free(&h);
	node_down(&s);
	node_down(&b);
}

Test(tls, without_verify_peer_on_both_sides_any_certificates_do)
{
	struct node m, e;
	node_cfg(&m, "mismatch", "mismatch");
	node_cfg(&e, "expired", "expired");
	m.cfg.verify_peer = e.cfg.verify_peer = false;
	m.cfg.ca_file = e.cfg.ca_file = NULL; /* no CA needed then */
	node_up(&m);
	node_up(&e);
	struct hs h;
	hs_start(&h, &m, "b", &e, "a", NULL);
	pump(&h);
	expect_done(&h);
	expect_same_secrets(&h, NULL);
	void *sess = warp__tls_take_session(h.c);
	hs_free(&h);
	cr_assert_not_null(sess);
	hs_start(&h, &m, "b", &e, "a", sess);
	warp__tls_session_free(sess);
	pump(&h);
	expect_done(&h);
	cr_assert(warp__tls_resumed(h.c));
	hs_free(&h);
	node_down(&m);
	node_down(&e);
}

/* ---- garbage ------------------------------------------------------------ */

Test(tls, garbage_to_a_server_fails_cleanly)
{
	struct node b;
	node(&b, "b");
	struct warp__tls *s;
	cr_assert_eq(warp__tls_new(b.ctx, false, "a", binding1, NULL, &s), 0);
	static const char junk[] = "GET / HTTP/1.1\r\nHost: b\r\n\r\n";
	cr_assert_eq(warp__tls_input(s, (const uint8_t *)junk, sizeof(junk) - 1), 0);
	cr_assert_eq(warp__tls_step(s), WARP_EHANDSHAKE);
	cr_assert(strstr(warp__tls_error(s), "TLS: "), "%s", warp__tls_error(s));
	cr_log_info("garbage: %s", warp__tls_error(s));
	uint8_t out[64];
	warp__tls_output(s, out, sizeof(out)); /* maybe an alert */
	cr_assert_eq(warp__tls_input(s, (const uint8_t *)junk, 4), 0);
	cr_assert_eq(warp__tls_step(s), WARP_EHANDSHAKE, "and it stays failed");
	warp__tls_free(s);

	/* a record header of a handshake record, then noise */
	cr_assert_eq(warp__tls_new(b.ctx, false, "a", binding1, NULL, &s), 0);
	uint8_t noise[300] = { 0x16, 0x03, 0x01, 0x01, 0x20 };
	for (size_t i = 5; i < sizeof(noise); i++)
		noise[i] = (uint8_t)(i * 151 + 7);
	cr_assert_eq(warp__tls_input(s, noise, sizeof(noise)), 0);
	cr_assert_eq(warp__tls_step(s), WARP_EHANDSHAKE);
	cr_assert(strstr(warp__tls_error(s), "TLS: "), "%s", warp__tls_error(s));
	cr_log_info("noise: %s", warp__tls_error(s));
	warp__tls_free(s);
	node_down(&b);
}

Test(tls, a_flipped_byte_in_the_servers_flight_fails_the_client)
{
	struct node a, b;
	node(&a, "a");
	node(&b, "b");
	struct hs h;
	hs_start(&h, &a, "b", &b, "a", NULL);
	h.crc = warp__tls_step(h.c);
	deliver(h.c, h.s, &h.src, SIZE_MAX);
	cr_assert_eq(h.src, 0);
	uint8_t buf[8192];
	size_t n = warp__tls_output(h.s, buf, sizeof(buf));
	cr_assert_gt(n, 200);
	buf[n - 20] ^= 0x40; /* in the encrypted part of the flight */
	cr_assert_eq(warp__tls_input(h.c, buf, n), 0);
	h.crc = warp__tls_step(h.c);
	cr_assert_eq(h.crc, WARP_EHANDSHAKE);
	cr_assert_str_not_empty(warp__tls_error(h.c));
	cr_log_info("flipped: %s", warp__tls_error(h.c));
	deliver(h.c, h.s, &h.src, SIZE_MAX); /* the alert */
	cr_assert_eq(h.src, WARP_EHANDSHAKE);
	cr_assert(strstr(warp__tls_error(h.s), "peer refused the handshake: TLS alert"), "%s",
		  warp__tls_error(h.s));
	hs_free(&h);
	node_down(&a);
	node_down(&b);
}

/* ---- a plain OpenSSL client, to send what warp's never does --------------- */

struct raw {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rb, *wb;
};

static int raw_add_binding(SSL *s, unsigned int type, unsigned int context,
			   const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx,
			   int *al, void *arg)
{
	(void)s, (void)type, (void)context, (void)x, (void)chainidx, (void)al, (void)arg;
	*out = binding1;
	*outlen = sizeof(binding1);
	return 1;
}

static void raw_client(struct raw *r, bool with_binding)
{
	char cert[PATH_MAX], key[PATH_MAX];
	snprintf(cert, sizeof(cert), "%s/a.pem", pki);
	snprintf(key, sizeof(key), "%s/a.key", pki);
	r->ctx = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(r->ctx);
	cr_assert_eq(SSL_CTX_set_min_proto_version(r->ctx, TLS1_3_VERSION), 1);
	cr_assert_eq(SSL_CTX_use_certificate_chain_file(r->ctx, cert), 1);
	cr_assert_eq(SSL_CTX_use_PrivateKey_file(r->ctx, key, SSL_FILETYPE_PEM), 1);
	if (with_binding)
		cr_assert_eq(SSL_CTX_add_custom_ext(r->ctx, 0xff5a, SSL_EXT_CLIENT_HELLO,
						    raw_add_binding, NULL, NULL, NULL, NULL),
			     1);
	r->ssl = SSL_new(r->ctx);
	r->rb = BIO_new(BIO_s_mem());
	r->wb = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(r->rb, -1);
	SSL_set_bio(r->ssl, r->rb, r->wb);
	SSL_set_connect_state(r->ssl);
}

static void raw_free(struct raw *r)
{
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
	ERR_clear_error();
}

/* Run the raw client against a warp server until nothing moves; whether
 * the raw client finished its handshake. */
static bool raw_pump(struct raw *r, struct warp__tls *s, int *src)
{
	uint8_t buf[8192];
	bool done = false;
	for (int round = 0; round < 20; round++) {
		done = SSL_do_handshake(r->ssl) == 1;
		size_t moved = 0;
		int n;
		while ((n = BIO_read(r->wb, buf, sizeof(buf))) > 0) {
			cr_assert_eq(warp__tls_input(s, buf, (size_t)n), 0);
			moved += (size_t)n;
		}
		*src = warp__tls_step(s);
		size_t m;
		while ((m = warp__tls_output(s, buf, sizeof(buf))) > 0) {
			cr_assert_eq(BIO_write(r->rb, buf, (int)m), (int)m);
			moved += m;
		}
		if (!moved)
			break;
	}
	ERR_clear_error();
	return done;
}

Test(tls, a_client_hello_without_the_binding_is_refused)
{
	struct node b;
	node(&b, "b");
	struct warp__tls *s;
	cr_assert_eq(warp__tls_new(b.ctx, false, "a", binding1, NULL, &s), 0);
	struct raw r;
	raw_client(&r, false);
	int src = 0;
	cr_assert(!raw_pump(&r, s, &src));
	cr_assert_eq(src, WARP_EHANDSHAKE);
	cr_assert(strstr(warp__tls_error(s), "HELLO exchange altered in transit"), "%s",
		  warp__tls_error(s));
	raw_free(&r);
	warp__tls_free(s);
	node_down(&b);
}

Test(tls, application_data_after_the_handshake_is_a_protocol_error)
{
	struct node b;
	node(&b, "b");
	struct warp__tls *s;
	cr_assert_eq(warp__tls_new(b.ctx, false, "a", binding1, NULL, &s), 0);
	struct raw r;
	raw_client(&r, true);
	int src = 0;
	cr_assert(raw_pump(&r, s, &src), "the plain client with the binding gets through");
	cr_assert_eq(src, 1, "%s", warp__tls_error(s));
	cr_assert_eq(SSL_write(r.ssl, "hello", 5), 5);
	raw_pump(&r, s, &src);
	cr_assert_eq(src, WARP_EHANDSHAKE);
	cr_assert(strstr(warp__tls_error(s), "application data"), "%s", warp__tls_error(s));
	raw_free(&r);
	warp__tls_free(s);
	node_down(&b);
}

/* ---- configuration errors ----------------------------------------------- */

static void expect_config_error(struct node *n, const char *key, const char *path,
				const char *why)
{
	struct warp__tls_ctx *ctx = NULL;
	cr_assert_eq(warp__tls_ctx_new(&n->cfg, &ctx), WARP_ECONFIG, "%s", warp_errdetail());
	cr_assert_null(ctx);
	const char *d = warp_errdetail();
	cr_log_info("%s", d);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "tls %s '%s': ", key, path);
	cr_assert(strstr(d, want), "'%s' does not name '%s'", d, want);
	cr_assert(strstr(d, why), "'%s' does not say '%s'", d, why);
	cr_assert_eq(ERR_peek_error(), 0ul);
}

Test(tls, a_missing_certificate_file_is_named)
{
	struct node n;
	node_cfg(&n, "nope", "a");
	expect_config_error(&n, "cert_file", n.cert, "cannot read: No such file or directory");
}

Test(tls, a_certificate_file_without_a_certificate_is_named)
{
	struct node n;
	node_cfg(&n, "garbage", "a");
	expect_config_error(&n, "cert_file", n.cert, "not a PEM certificate");
}

Test(tls, a_missing_key_file_is_named)
{
	struct node n;
	node_cfg(&n, "a", "nope");
	expect_config_error(&n, "key_file", n.key, "cannot read: No such file or directory");
}

Test(tls, a_key_of_another_certificate_is_named)
{
	struct node n;
	node_cfg(&n, "a", "b");
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "does not match the certificate in '%s'", n.cert);
	expect_config_error(&n, "key_file", n.key, want);
}

Test(tls, a_key_file_that_is_not_a_key_is_named)
{
	struct node n;
	node_cfg(&n, "a", "a");
	n.cfg.key_file = n.cert; /* a certificate where the key should be */
	expect_config_error(&n, "key_file", n.cert, "not a PEM private key");
}

Test(tls, an_encrypted_key_is_refused_without_asking_for_a_password)
{
	struct node n;
	node_cfg(&n, "a", "encrypted");
	expect_config_error(&n, "key_file", n.key, "not a PEM private key (or an encrypted one)");
}

Test(tls, a_garbage_ca_file_is_named)
{
	struct node n;
	node_cfg(&n, "a", "a");
	snprintf(n.ca, sizeof(n.ca), "%s/garbage.pem", pki);
	expect_config_error(&n, "ca_file", n.ca, "no PEM CA certificate");
}

Test(tls, a_missing_ca_file_is_named)
{
	struct node n;
	node_cfg(&n, "a", "a");
	snprintf(n.ca, sizeof(n.ca), "%s/nope.pem", pki);
	expect_config_error(&n, "ca_file", n.ca, "cannot read: No such file or directory");
}

Test(tls, verify_peer_needs_a_ca_file)
{
	struct node n;
	node_cfg(&n, "a", "a");
	n.cfg.ca_file = NULL;
	struct warp__tls_ctx *ctx = NULL;
	cr_assert_eq(warp__tls_ctx_new(&n.cfg, &ctx), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "ca_file"), "%s", warp_errdetail());
	n.cfg.verify_peer = false;
	cr_assert_eq(warp__tls_ctx_new(&n.cfg, &ctx), 0, "%s", warp_errdetail());
	warp__tls_ctx_free(ctx);
}

Test(tls, an_empty_suite_set_is_refused)
{
	struct node n;
	node_cfg(&n, "a", "a");
	n.cfg.suites = 0;
	struct warp__tls_ctx *ctx = NULL;
	cr_assert_eq(warp__tls_ctx_new(&n.cfg, &ctx), WARP_ECONFIG);
	cr_assert(strstr(warp_errdetail(), "ciphers"), "%s", warp_errdetail());
}

Test(tls, a_session_on_the_server_side_and_an_empty_peer_id_are_refused)
{
	struct node b;
	node(&b, "b");
	struct warp__tls *t = NULL;
	int dummy;
	cr_assert_eq(warp__tls_new(b.ctx, false, "a", binding1, &dummy, &t), WARP_EPROTO);
	cr_assert_null(t);
	cr_assert_eq(warp__tls_new(b.ctx, true, "", binding1, NULL, &t), WARP_EPROTO);
	cr_assert_null(t);
	node_down(&b);
}
