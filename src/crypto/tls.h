/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mutual TLS 1.3 for the handshake (issue: secure sessions), through
 * OpenSSL 3 with memory BIOs: the engine carries the TLS handshake bytes in
 * its own HS_CRYPTO frames (reliable, in order), so TLS never touches a
 * socket and never sees a record after the handshake: application data is
 * protected per packet by crypto/aead.c with keys from the TLS exporter.
 *
 * One warp__tls_ctx per engine (the SSL_CTX: certificate, key, CA, verify
 * policy, cipher suites, session-ticket keys); one warp__tls per handshake
 * attempt with one peer. Slow path: these allocate (OpenSSL does); the
 * engine bounds how many handshakes run at once. Engine thread only.
 *
 * Roles are fixed by the engine (the node with the smaller node id is the
 * client). Both sides present a certificate and verify the other's against
 * the CA (unless verify_peer is off), and check that the certificate names
 * the expected node id: a URI SAN "warp://node/<id>", a DNS SAN "<id>", or,
 * when the certificate has no SAN, its subject CN "<id>".
 *
 * binding: 32 bytes both sides computed over the plaintext HELLO exchange
 * that preceded TLS (SHA-256 of the client's HELLO then the server's). The
 * client sends it in a TLS extension of its ClientHello (type 0xff5a, in
 * the private range); the server refuses the handshake when it differs
 * from its own ("HELLO exchange altered in transit"), so a HELLO changed
 * on the path (a stripped capability, say) cannot go unnoticed once TLS
 * runs: the ClientHello is covered by both Finished messages.
 */
#ifndef WARP_CRYPTO_TLS_H
#define WARP_CRYPTO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WARP_TLS_BINDING_LEN 32u
#define WARP_TLS_SECRETS_LEN 64u /* client->server secret (32), then server->client (32) */
#define WARP_TLS_ERR_MAX 256u

/* Cipher suites (bit set, order of preference = the order of the bits
 * below unless chacha_first): TLS_AES_128_GCM_SHA256 and
 * TLS_CHACHA20_POLY1305_SHA256. The suite TLS negotiates also chooses the
 * per-packet AEAD (WARP_AEAD_* in aead.h). */
#define WARP_TLS_AES128GCM 0x1u
#define WARP_TLS_CHACHA20 0x2u

struct warp__tls_cfg {
	const char *cert_file; /* PEM certificate (chain) of this node */
	const char *key_file;  /* PEM private key */
	const char *ca_file;   /* PEM CA certificate(s) that sign peers (NULL: none;
				* required with verify_peer) */
	bool verify_peer;      /* false: accept any certificate (tests, never production):
				* a server asks for none, and neither side checks the
				* CA nor the node id of one it gets */
	bool no_resumption;    /* a server takes no ticket (full handshakes only); it still
				* sends one, the client's sign that it was accepted */
	unsigned suites;       /* WARP_TLS_* bits, at least one */
	bool chacha_first;     /* prefer ChaCha20-Poly1305 (hosts without AES instructions) */
};

struct warp__tls_ctx;
struct warp__tls;

/* Make the context: load and check the files (the key matches the
 * certificate, the CA file parses). 0, or WARP_ECONFIG with a detail
 * string naming the key and file, e.g. "tls cert_file '/x/a.pem': cannot
 * read: No such file or directory", "tls key_file '/x/a.key': does not
 * match the certificate in '/x/a.pem'"; WARP_ENOMEM. */
int warp__tls_ctx_new(const struct warp__tls_cfg *cfg, struct warp__tls_ctx **out);
void warp__tls_ctx_free(struct warp__tls_ctx *ctx);

/* Start one handshake with the peer whose node id is peer_node.
 * session: a session from warp__tls_take_session() of an earlier handshake
 * with the same peer (client only; NULL = full handshake); the handshake
 * takes its own reference. 0, WARP_ENOMEM or WARP_EPROTO (detail set). */
int warp__tls_new(struct warp__tls_ctx *ctx, bool client, const char *peer_node,
		  const uint8_t binding[WARP_TLS_BINDING_LEN], void *session,
		  struct warp__tls **out);
void warp__tls_free(struct warp__tls *t);

/* Received handshake bytes, in order (the engine reassembles). 0, or
 * WARP_ENOMEM. */
int warp__tls_input(struct warp__tls *t, const uint8_t *b, size_t n);

/* Run the handshake as far as the input allows, then (once done) read
 * post-handshake messages (the server's session tickets). Returns 0 while
 * in progress, 1 once the handshake is complete (and on every later call,
 * unless the peer sends something broken after it: then WARP_EHANDSHAKE,
 * "after the handshake: ..."). A client counts it complete only once the
 * server's session ticket arrived: in TLS 1.3 the client finishes before
 * the server has checked the client's certificate, and the ticket (sent
 * right after that check) confirms it; so a refused client fails with the
 * server's alert instead of completing first.
 * or WARP_EHANDSHAKE with warp__tls_error() saying why in words, e.g.
 * "certificate of 'b' not trusted: unable to get local issuer certificate",
 * "certificate of 'b' expired (notAfter 2020-01-02)", "node id 'a' does
 * not match its certificate (names: mallory, warp://node/mallory)", "peer
 * refused the handshake: TLS alert 'unknown ca'", "HELLO exchange altered
 * in transit". */
int warp__tls_step(struct warp__tls *t);

/* Bytes TLS wants sent: moves up to cap of them into b, returns how many
 * (0 = none pending). */
size_t warp__tls_output(struct warp__tls *t, uint8_t *b, size_t cap);

/* After completion: the per-direction traffic secrets from the TLS
 * exporter (label "EXPORTER-warp packet protection", no context):
 * out[0..32) protects client->server packets, out[32..64) server->client.
 * 0 or WARP_EPROTO. */
int warp__tls_export(struct warp__tls *t, uint8_t out[WARP_TLS_SECRETS_LEN]);

/* After completion: the WARP_AEAD_* of the negotiated suite. */
int warp__tls_aead(const struct warp__tls *t);

/* After completion: true when the handshake resumed a session (no
 * certificates exchanged). */
bool warp__tls_resumed(const struct warp__tls *t);

/* Client, after completion: the newest resumable session (from the
 * server's ticket), owned by the caller, or NULL when none arrived yet.
 * Each call hands over a new reference or NULL. */
void *warp__tls_take_session(struct warp__tls *t);
void warp__tls_session_free(void *session);

/* Why the handshake failed (after WARP_EHANDSHAKE), "" otherwise. */
const char *warp__tls_error(const struct warp__tls *t);

#endif
