/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mutual TLS 1.3 over memory BIOs (see tls.h).
 *
 * Checks, in the order a failing handshake meets them:
 *  - server: the ClientHello must carry the binding extension (0xff5a)
 *    with the server's own binding (client_hello callback; refused with a
 *    handshake_failure alert: "HELLO exchange altered in transit");
 *  - both: the peer's chain against the CA (OpenSSL), then, at depth 0,
 *    that the certificate names the expected node id (verify callback;
 *    OpenSSL queues a bad_certificate alert, but the handshake slot is
 *    released before it is sent, so the peer learns why from HS_FAIL);
 *  - both, on completion: the same node id check on the certificate the
 *    session carries, for resumed handshakes that exchanged none. A server
 *    also refuses, before that, a ticket whose certificate does not name
 *    the peer it expects (full handshake instead), and a client does not
 *    offer a session whose certificate does not name its peer.
 * A failure is recorded once, as the first cause, in words: a verify
 * callback's reason, else the alert the peer sent, else OpenSSL's errors.
 *
 * verify_peer = false: SSL_VERIFY_NONE on both sides, so a server does not
 * ask for a certificate, and neither side checks the CA nor the node id
 * (not even of a certificate that arrives anyway). The binding check
 * stays: it does not depend on certificates.
 *
 * Completion: a server is done when its handshake is (it writes its
 * ticket then, in the same step); a client only once that ticket has
 * arrived. In TLS 1.3 the client finishes before the server has checked
 * the client's certificate; the ticket is the server's word that it did,
 * so a client never reports success (and keys) for a handshake the server
 * then refuses: it reports the server's alert instead.
 *
 * Session tickets: stateless (the SSL_CTX's own ticket keys, made by
 * OpenSSL at SSL_CTX_new; no server session cache), one per handshake,
 * a fresh one after a resumption too. A client keeps the newest ticket's
 * session from the new-session callback until warp__tls_take_session.
 *
 * Callbacks find their handshake through SSL_get_app_data (ex_data index
 * 0, reserved for applications); every SSL here is this module's own.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common.h"
#include "crypto/aead.h"
#include "crypto/tls.h"
#include "warp/error.h"

#define EXT_BINDING 0xff5au
#define EXPORTER_LABEL "EXPORTER-warp packet protection"
#define NODE_URI_PREFIX "warp://node/"
#define NAMES_MAX 160u /* the certificate's names, as listed in a message */

struct warp__tls_ctx {
	SSL_CTX *ssl;
	bool verify_peer;
	bool no_resumption;
};

/* CONFIRMING: a client whose TLS handshake is over, waiting for the
 * server's first ticket (the server accepted its certificate). */
enum { RUNNING = 0, CONFIRMING = 2, DONE = 1, FAILED = -1 };

struct warp__tls {
	SSL *ssl; /* owns both BIOs */
	BIO *rbio, *wbio;
	const struct warp__tls_ctx *ctx;
	SSL_SESSION *session; /* client: newest ticket's session, ours until taken */
	int state;
	bool client;
	bool ticket; /* client: a ticket arrived */
	uint8_t binding[WARP_TLS_BINDING_LEN];
	char alert[64]; /* a fatal alert the peer sent, in words */
	char err[WARP_TLS_ERR_MAX];
	char peer_node[]; /* NUL-terminated */
};

/* ---- errors ------------------------------------------------------------- */

/* Drain OpenSSL's error queue (this thread's) into buf as "reason; reason",
 * root cause first, each reason once. Leaves the queue empty. */
static void ossl_errors(char *buf, size_t cap)
{
	size_t n = 0;
	unsigned long e;
	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		char one[128];
		const char *r = ERR_reason_error_string(e);
		if (!r) {
			ERR_error_string_n(e, one, sizeof(one));
			r = one;
		}
		if (n < cap && !strstr(buf, r)) {
			int w = snprintf(buf + n, cap - n, "%s%s", n ? "; " : "", r);
			n += w > 0 ? (size_t)w : 0;
		}
	}
	if (!buf[0])
		snprintf(buf, cap, "unknown error");
}

/* Record the first reason this handshake fails for; later ones are
 * consequences. */
static void record(struct warp__tls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(struct warp__tls *t, const char *fmt, ...)
{
	if (t->err[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

static int failed(struct warp__tls *t)
{
	if (!t->err[0])
		record(t, "TLS handshake failed");
	t->state = FAILED;
	ERR_clear_error();
	return WARP_EHANDSHAKE;
}

/* "2020-01-02" */
static void date_of(const ASN1_TIME *at, char *buf, size_t cap)
{
	struct tm tm;
	if (!at || ASN1_TIME_to_tm(at, &tm) != 1 || !strftime(buf, cap, "%Y-%m-%d", &tm))
		snprintf(buf, cap, "unknown");
}

static void record_verify_error(struct warp__tls *t, int err, int depth, X509 *cert)
{
	char when[32];
	const char *who = t->peer_node;
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		date_of(cert ? X509_get0_notAfter(cert) : NULL, when, sizeof(when));
		if (depth == 0)
			record(t, "certificate of '%s' expired (notAfter %s)", who, when);
		else
			record(t, "certificate of '%s' not trusted: its issuer at depth %d expired "
				  "(notAfter %s)", who, depth, when);
		return;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		date_of(cert ? X509_get0_notBefore(cert) : NULL, when, sizeof(when));
		if (depth == 0)
			record(t, "certificate of '%s' not valid yet (notBefore %s)", who, when);
		else
			record(t, "certificate of '%s' not trusted: its issuer at depth %d is not "
				  "valid yet (notBefore %s)", who, depth, when);
		return;
	}
	if (depth > 0)
		record(t, "certificate of '%s' not trusted: %s (at depth %d)", who,
		       X509_verify_cert_error_string(err), depth);
	else
		record(t, "certificate of '%s' not trusted: %s", who,
		       X509_verify_cert_error_string(err));
}

/* ---- node ids ----------------------------------------------------------- */

static bool same(const unsigned char *d, int len, const char *s, size_t slen)
{
	return len >= 0 && (size_t)len == slen && memcmp(d, s, slen) == 0;
}

/* Append one name to the list, printable ASCII only (it comes from the
 * peer and ends up in logs). */
static void add_name(char *names, size_t cap, const unsigned char *d, int len)
{
	size_t n = strlen(names);
	if (n + 4 >= cap)
		return;
	if (n) {
		names[n++] = ',';
		names[n++] = ' ';
	}
	for (int i = 0; i < len; i++) {
		if (n + 4 >= cap) {
			memcpy(names + n, "...", 3);
			n += 3;
			break;
		}
		names[n++] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '?';
	}
	names[n] = '\0';
}

/* Whether cert names node: a URI SAN "warp://node/<node>" or a DNS SAN
 * "<node>" (exact, case-sensitive, no wildcards: node ids are compared
 * with strcmp everywhere), or, only when the certificate has no SAN
 * extension, a subject CN "<node>". Lists the names it has in names. */
static bool names_node(X509 *cert, const char *node, char *names, size_t cap)
{
	size_t nl = strlen(node);
	char uri[sizeof(NODE_URI_PREFIX) + WARP_TLS_ERR_MAX];
	int ul = snprintf(uri, sizeof(uri), NODE_URI_PREFIX "%s", node);
	bool match = false;
	names[0] = '\0';
	int crit = -1;
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (gens) {
		for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
			if (g->type != GEN_DNS && g->type != GEN_URI)
				continue;
			const unsigned char *d = ASN1_STRING_get0_data(g->d.ia5);
			int len = ASN1_STRING_length(g->d.ia5);
			if (g->type == GEN_DNS ? same(d, len, node, nl)
					       : ul > 0 && (size_t)ul < sizeof(uri) &&
							 same(d, len, uri, (size_t)ul))
				match = true;
			add_name(names, cap, d, len);
		}
		GENERAL_NAMES_free(gens);
	} else if (crit == -1) { /* no SAN extension at all (not a broken one) */
		const X509_NAME *subj = X509_get_subject_name(cert);
		int i = -1;
		while ((i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0) {
			unsigned char *u = NULL;
			int len = ASN1_STRING_to_UTF8(
				&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
			if (len < 0)
				continue;
			if (same(u, len, node, nl))
				match = true;
			add_name(names, cap, u, len);
			OPENSSL_free(u);
		}
	}
	if (!names[0])
		snprintf(names, cap, "none");
	ERR_clear_error();
	return match;
}

static bool cert_names_peer(const struct warp__tls *t, X509 *cert, char *names, size_t cap)
{
	return cert && names_node(cert, t->peer_node, names, cap);
}

static void record_mismatch(struct warp__tls *t, const char *names)
{
	record(t, "node id '%s' does not match its certificate (names: %s)", t->peer_node, names);
}

/* ---- callbacks ---------------------------------------------------------- */

static int on_verify(int ok, X509_STORE_CTX *xs)
{
	SSL *s = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct warp__tls *t = s ? SSL_get_app_data(s) : NULL;
	if (!t)
		return ok;
	int depth = X509_STORE_CTX_get_error_depth(xs);
	X509 *cert = X509_STORE_CTX_get_current_cert(xs);
	if (!ok) {
		record_verify_error(t, X509_STORE_CTX_get_error(xs), depth, cert);
		return 0;
	}
	if (depth == 0) {
		char names[NAMES_MAX];
		if (!cert_names_peer(t, cert, names, sizeof(names))) {
			record_mismatch(t, names);
			/* sends bad_certificate */
			X509_STORE_CTX_set_error(xs, X509_V_ERR_HOSTNAME_MISMATCH);
			return 0;
		}
	}
	return 1;
}

static void on_info(const SSL *s, int where, int ret)
{
	if ((where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT) /* not SSL_CB_WRITE_ALERT */
		return;
	struct warp__tls *t = SSL_get_app_data(s);
	if (!t || t->alert[0] || (ret & 0xff) == SSL_AD_CLOSE_NOTIFY)
		return;
	snprintf(t->alert, sizeof(t->alert), "%s", SSL_alert_desc_string_long(ret));
}

/* Client: put the binding in the ClientHello. */
static int binding_add(SSL *s, unsigned int type, unsigned int context, const unsigned char **out,
		       size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
	(void)type, (void)context, (void)x, (void)chainidx, (void)al, (void)arg;
	struct warp__tls *t = SSL_get_app_data(s);
	if (!t || !t->client)
		return 0;
	*out = t->binding;
	*outlen = sizeof(t->binding);
	return 1;
}

/* Server: the ClientHello must carry our binding (before anything else
 * of the handshake runs). */
static int on_client_hello(SSL *s, int *al, void *arg)
{
	(void)arg;
	struct warp__tls *t = SSL_get_app_data(s);
	if (!t)
		return SSL_CLIENT_HELLO_SUCCESS;
	const unsigned char *b = NULL;
	size_t n = 0;
	if (!SSL_client_hello_get0_ext(s, EXT_BINDING, &b, &n)) {
		record(t, "HELLO exchange altered in transit (the ClientHello of '%s' has no "
			  "binding)", t->peer_node);
		*al = SSL_AD_HANDSHAKE_FAILURE;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (n != sizeof(t->binding) || CRYPTO_memcmp(b, t->binding, n) != 0) {
		record(t, "HELLO exchange altered in transit");
		*al = SSL_AD_HANDSHAKE_FAILURE;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Client: keep the newest session (a ticket arrived). */
static int on_new_session(SSL *s, SSL_SESSION *sess)
{
	struct warp__tls *t = SSL_get_app_data(s);
	if (!t || !t->client)
		return 0;
	t->ticket = true;
	/* a copy: SSL_free marks the SSL's own session unresumable when the
	 * connection was not shut down, and this one outlives it */
	SSL_SESSION *copy = SSL_SESSION_dup(sess);
	if (!copy) {
		ERR_clear_error();
		return 0; /* no ticket this time: a full handshake next time */
	}
	SSL_SESSION_free(t->session);
	t->session = copy;
	return 0; /* OpenSSL keeps its reference to sess */
}

/* Server: a ticket decrypted; resume only a session with the peer this
 * handshake expects, else fall back to a full handshake. */
static SSL_TICKET_RETURN on_ticket(SSL *s, SSL_SESSION *ss, const unsigned char *keyname,
				   size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	(void)keyname, (void)keyname_len;
	const struct warp__tls_ctx *ctx = arg;
	struct warp__tls *t = SSL_get_app_data(s);
	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		if (ctx->no_resumption)
			return SSL_TICKET_RETURN_IGNORE_RENEW; /* full handshake, new ticket */
		if (t && ctx->verify_peer) {
			char names[NAMES_MAX];
			if (!cert_names_peer(t, SSL_SESSION_get0_peer(ss), names, sizeof(names)))
				return SSL_TICKET_RETURN_IGNORE_RENEW;
		}
		return SSL_TICKET_RETURN_USE_RENEW; /* a fresh ticket each time */
	case SSL_TICKET_EMPTY:
	case SSL_TICKET_NO_DECRYPT:
	case SSL_TICKET_NONE:
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	default:
		return SSL_TICKET_RETURN_ABORT;
	}
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1; /* never prompt on a terminal */
}

/* ---- context ------------------------------------------------------------ */

/* 0, or WARP_ECONFIG naming the key and why the file cannot be opened. */
static int readable(const char *key, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return warp__err(WARP_ECONFIG, "tls %s '%s': cannot read: %s", key, path,
				 strerror(errno));
	fclose(f);
	return 0;
}

static int config_err(const char *key, const char *path, const char *what)
{
	char e[160];
	ossl_errors(e, sizeof(e));
	return warp__err(WARP_ECONFIG, "tls %s '%s': %s (%s)", key, path, what, e);
}

static int load_key(SSL_CTX *s, const struct warp__tls_cfg *cfg)
{
	int rc = readable("key_file", cfg->key_file);
	if (rc)
		return rc;
	BIO *b = BIO_new_file(cfg->key_file, "r");
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_password, NULL) : NULL;
	BIO_free(b);
	if (!k)
		return config_err("key_file", cfg->key_file,
				  "not a PEM private key (or an encrypted one)");
	X509 *cert = SSL_CTX_get0_certificate(s);
	if (!cert || X509_check_private_key(cert, k) != 1) {
		EVP_PKEY_free(k);
		ERR_clear_error();
		return warp__err(WARP_ECONFIG, "tls key_file '%s': does not match the certificate "
					       "in '%s'", cfg->key_file, cfg->cert_file);
	}
	int ok = SSL_CTX_use_PrivateKey(s, k) == 1 && SSL_CTX_check_private_key(s) == 1;
	EVP_PKEY_free(k);
	if (!ok)
		return config_err("key_file", cfg->key_file, "cannot use the key");
	return 0;
}

static int suites_of(const struct warp__tls_cfg *cfg, char *buf, size_t cap)
{
	static const char aes[] = "TLS_AES_128_GCM_SHA256", cha[] = "TLS_CHACHA20_POLY1305_SHA256";
	unsigned s = cfg->suites;
	if (!s || (s & ~(WARP_TLS_AES128GCM | WARP_TLS_CHACHA20)))
		return warp__err(WARP_ECONFIG, "tls ciphers: 0x%x is not a set of WARP_TLS_* suites",
				 s);
	const char *first = cfg->chacha_first ? cha : aes, *second = cfg->chacha_first ? aes : cha;
	unsigned first_bit = cfg->chacha_first ? WARP_TLS_CHACHA20 : WARP_TLS_AES128GCM;
	buf[0] = '\0';
	if (s & first_bit)
		snprintf(buf, cap, "%s", first);
	if (s & ~first_bit)
		snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? ":" : "", second);
	return 0;
}

static warp__cold int configure(struct warp__tls_ctx *c, const struct warp__tls_cfg *cfg,
				const char *suites)
{
	SSL_CTX *s = c->ssl;
	if (SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(s, suites) != 1) {
		char e[160];
		ossl_errors(e, sizeof(e));
		return warp__err(WARP_ECONFIG, "tls: cannot set TLS 1.3 with '%s': %s", suites, e);
	}
	SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* the bytes never cross a middlebox as TLS: no fake ChangeCipherSpec */
	SSL_CTX_clear_options(s, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
	SSL_CTX_set_default_passwd_cb(s, no_password);

	int rc = readable("cert_file", cfg->cert_file);
	if (rc)
		return rc;
	if (SSL_CTX_use_certificate_chain_file(s, cfg->cert_file) != 1)
		return config_err("cert_file", cfg->cert_file, "not a PEM certificate (chain)");
	if ((rc = load_key(s, cfg)))
		return rc;
	if (cfg->ca_file && cfg->ca_file[0]) {
		if ((rc = readable("ca_file", cfg->ca_file)))
			return rc;
		if (SSL_CTX_load_verify_locations(s, cfg->ca_file, NULL) != 1)
			return config_err("ca_file", cfg->ca_file, "no PEM CA certificate");
	}

	/* resumption: stateless tickets under this SSL_CTX's keys, one per
	 * handshake; the client side keeps sessions through the callback only */
	static const unsigned char sid_ctx[] = "warp";
	if (SSL_CTX_set_session_id_context(s, sid_ctx, sizeof(sid_ctx) - 1) != 1 ||
	    SSL_CTX_set_num_tickets(s, 1) != 1 ||
	    SSL_CTX_set_session_ticket_cb(s, NULL, on_ticket, c) != 1 ||
	    SSL_CTX_add_custom_ext(s, EXT_BINDING, SSL_EXT_CLIENT_HELLO, binding_add, NULL, NULL,
				   NULL, NULL) != 1) {
		char e[160];
		ossl_errors(e, sizeof(e));
		return warp__err(WARP_ENOMEM, "tls: cannot set up the context: %s", e);
	}
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(s, on_new_session);
	SSL_CTX_set_client_hello_cb(s, on_client_hello, NULL);
	SSL_CTX_set_info_callback(s, on_info);
	return 0;
}

warp__cold int warp__tls_ctx_new(const struct warp__tls_cfg *cfg, struct warp__tls_ctx **out)
{
	*out = NULL;
	ERR_clear_error();
	char suites[96];
	int rc = suites_of(cfg, suites, sizeof(suites));
	if (rc)
		return rc;
	if (!cfg->cert_file || !cfg->cert_file[0])
		return warp__err(WARP_ECONFIG, "tls cert_file: not set");
	if (!cfg->key_file || !cfg->key_file[0])
		return warp__err(WARP_ECONFIG, "tls key_file: not set (required with cert_file)");
	if (cfg->verify_peer && (!cfg->ca_file || !cfg->ca_file[0]))
		return warp__err(WARP_ECONFIG, "tls ca_file: not set (required when verify_peer "
					       "is on)");
	struct warp__tls_ctx *c = warp__calloc(1, sizeof(*c));
	if (!c)
		return warp__err(WARP_ENOMEM, "tls: out of memory");
	c->verify_peer = cfg->verify_peer;
	c->no_resumption = cfg->no_resumption;
	c->ssl = SSL_CTX_new(TLS_method());
	if (!c->ssl) {
		warp__free(c);
		ERR_clear_error();
		return warp__err(WARP_ENOMEM, "tls: cannot make an SSL_CTX");
	}
	rc = configure(c, cfg, suites);
	if (rc) {
		warp__tls_ctx_free(c);
		ERR_clear_error();
		return rc;
	}
	*out = c;
	return 0;
}

void warp__tls_ctx_free(struct warp__tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	warp__free(ctx);
}

/* ---- one handshake ------------------------------------------------------ */

int warp__tls_new(struct warp__tls_ctx *ctx, bool client, const char *peer_node,
		  const uint8_t binding[WARP_TLS_BINDING_LEN], void *session,
		  struct warp__tls **out)
{
	*out = NULL;
	if (!peer_node || !peer_node[0])
		return warp__err(WARP_EPROTO, "tls: no peer node id");
	if (session && !client)
		return warp__err(WARP_EPROTO, "tls: only a client resumes a session");
	size_t nl = strlen(peer_node);
	if (nl >= WARP_TLS_ERR_MAX)
		return warp__err(WARP_EPROTO, "tls: peer node id of %zu bytes", nl);
	ERR_clear_error();
	struct warp__tls *t = warp__calloc(1, sizeof(*t) + nl + 1);
	if (!t)
		return warp__err(WARP_ENOMEM, "tls: out of memory");
	memcpy(t->peer_node, peer_node, nl + 1);
	memcpy(t->binding, binding, sizeof(t->binding));
	t->ctx = ctx;
	t->client = client;
	t->ssl = SSL_new(ctx->ssl);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		warp__free(t);
		ERR_clear_error();
		return warp__err(WARP_ENOMEM, "tls: out of memory");
	}
	BIO_set_mem_eof_return(t->rbio, -1); /* empty = "want more", not EOF */
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_app_data(t->ssl, t);
	if (!ctx->verify_peer)
		SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
	else if (client)
		SSL_set_verify(t->ssl, SSL_VERIFY_PEER, on_verify);
	else
		SSL_set_verify(t->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, on_verify);
	if (client) {
		SSL_set_connect_state(t->ssl);
		SSL_SESSION *sess = session;
		char names[NAMES_MAX];
		/* offer only a session with the same peer; else a full handshake */
		if (sess && SSL_SESSION_is_resumable(sess) &&
		    (!ctx->verify_peer ||
		     cert_names_peer(t, SSL_SESSION_get0_peer(sess), names, sizeof(names))) &&
		    SSL_set_session(t->ssl, sess) != 1)
			ERR_clear_error(); /* unusable: a full handshake then */
	} else {
		SSL_set_accept_state(t->ssl);
	}
	*out = t;
	return 0;
}

void warp__tls_free(struct warp__tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	SSL_SESSION_free(t->session);
	OPENSSL_cleanse(t->binding, sizeof(t->binding));
	warp__free(t);
}

int warp__tls_input(struct warp__tls *t, const uint8_t *b, size_t n)
{
	if (t->state == FAILED)
		return 0; /* nothing reads it any more */
	while (n) {
		int chunk = (int)WARP__MIN(n, (size_t)INT_MAX);
		int w = BIO_write(t->rbio, b, chunk);
		if (w != chunk) {
			ERR_clear_error();
			return warp__err(WARP_ENOMEM, "tls: out of memory buffering %zu bytes", n);
		}
		b += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

/* The handshake (or what followed it) failed in OpenSSL: say why. */
static int ssl_failed(struct warp__tls *t, int ssl_err)
{
	if (!t->err[0]) {
		const char *when = t->state == DONE ? "after the handshake: " : "";
		if (t->alert[0]) {
			record(t, "%speer refused the handshake: TLS alert '%s'", when, t->alert);
		} else if (ssl_err == SSL_ERROR_ZERO_RETURN) {
			record(t, "%sthe peer closed TLS", when);
		} else {
			char e[200];
			ossl_errors(e, sizeof(e));
			record(t, "%sTLS: %s", when, e);
		}
	}
	return failed(t);
}

/* Completed: check the certificate the session carries (the one just
 * verified, or on resumption the one verified when the session began). */
static int completed(struct warp__tls *t)
{
	if (!t->ctx->verify_peer)
		return 0;
	X509 *peer = SSL_get0_peer_certificate(t->ssl);
	if (!peer) {
		record(t, "no certificate of '%s'%s", t->peer_node,
		       SSL_session_reused(t->ssl) ? " in the resumed session" : "");
		return failed(t);
	}
	long vr = SSL_get_verify_result(t->ssl);
	if (vr != X509_V_OK) {
		record_verify_error(t, (int)vr, 0, peer);
		return failed(t);
	}
	char names[NAMES_MAX];
	if (!names_node(peer, t->peer_node, names, sizeof(names))) {
		record_mismatch(t, names);
		return failed(t);
	}
	return 0;
}

int warp__tls_step(struct warp__tls *t)
{
	if (t->state == FAILED)
		return WARP_EHANDSHAKE;
	ERR_clear_error(); /* SSL_get_error reads the queue */
	if (t->state == RUNNING) {
		int r = SSL_do_handshake(t->ssl);
		if (r != 1) {
			int e = SSL_get_error(t->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			return ssl_failed(t, e);
		}
		if (completed(t))
			return WARP_EHANDSHAKE;
		t->state = t->client ? CONFIRMING : DONE;
	}
	/* post-handshake messages: session tickets (and key updates, which
	 * OpenSSL answers itself); application data has no business here.
	 * SSL_read processes every whole record buffered and then wants more. */
	for (;;) {
		uint8_t scratch[64];
		int r = SSL_read(t->ssl, scratch, sizeof(scratch));
		if (r > 0) {
			OPENSSL_cleanse(scratch, sizeof(scratch));
			record(t, "after the handshake: the peer sent application data over TLS");
			return failed(t);
		}
		int e = SSL_get_error(t->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return ssl_failed(t, e);
		if (t->state == CONFIRMING && t->ticket)
			t->state = DONE;
		return t->state == DONE ? 1 : 0;
	}
}

size_t warp__tls_output(struct warp__tls *t, uint8_t *b, size_t cap)
{
	size_t pending = BIO_ctrl_pending(t->wbio);
	size_t want = WARP__MIN(WARP__MIN(pending, cap), (size_t)INT_MAX);
	if (!want)
		return 0;
	int r = BIO_read(t->wbio, b, (int)want);
	return r > 0 ? (size_t)r : 0;
}

int warp__tls_export(struct warp__tls *t, uint8_t out[WARP_TLS_SECRETS_LEN])
{
	if (t->state != DONE)
		return warp__err(WARP_EPROTO, "tls: export before the handshake completed");
	if (SSL_export_keying_material(t->ssl, out, WARP_TLS_SECRETS_LEN, EXPORTER_LABEL,
				       sizeof(EXPORTER_LABEL) - 1, NULL, 0, 0) != 1) {
		char e[160];
		ossl_errors(e, sizeof(e));
		return warp__err(WARP_EPROTO, "tls: exporter failed: %s", e);
	}
	return 0;
}

int warp__tls_aead(const struct warp__tls *t)
{
	const SSL_CIPHER *c = t->state == DONE ? SSL_get_current_cipher(t->ssl) : NULL;
	switch (c ? SSL_CIPHER_get_id(c) : 0) {
	case TLS1_3_CK_AES_128_GCM_SHA256:
		return WARP_AEAD_AES128GCM;
	case TLS1_3_CK_CHACHA20_POLY1305_SHA256:
		return WARP_AEAD_CHACHA20POLY1305;
	}
	return 0;
}

bool warp__tls_resumed(const struct warp__tls *t)
{
	return t->state == DONE && SSL_session_reused(t->ssl) == 1;
}

void *warp__tls_take_session(struct warp__tls *t)
{
	SSL_SESSION *s = t->session;
	t->session = NULL;
	return s;
}

void warp__tls_session_free(void *session)
{
	SSL_SESSION_free(session);
}

const char *warp__tls_error(const struct warp__tls *t)
{
	return t->err;
}
