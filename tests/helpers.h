/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers for the Criterion tests: engines over a loop net with a
 * manual clock, deterministic payloads and a receive log. */
#ifndef WARP_TEST_HELPERS_H
#define WARP_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_priv.h"
#include "warp/warp.h"

/* Run a shell command (printf-style); its exit status, or -1. For tests
 * that set up iptables rules or network namespaces. */
static inline int th_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int th_sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* CLOCK_MONOTONIC in ns, for deadlines of tests on real drivers. */
static inline uint64_t th_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* First thing in a child that a test fork()ed: the child dies (SIGKILL)
 * with `parent`, the test process (its getpid() taken before the fork), so
 * a test that fails, times out or is killed leaves no child polling forever.
 * The getppid() check covers a parent that died before prctl(): the child
 * was already handed to init or a subreaper, and no signal would come.
 * PR_SET_PDEATHSIG follows the forking thread: fork from the test's thread. */
static inline void th_child_dies_with_parent(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
		perror("prctl(PR_SET_PDEATHSIG)");
		_exit(1);
	}
	if (getppid() != parent)
		_exit(1);
}

/* Zeroed memory shared by the test and the processes it forks (mmap
 * MAP_SHARED before the fork). */
static inline void *th_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "mmap %zu shared bytes", size);
	memset(p, 0, size);
	return p;
}

/* fork() for a test: in the child, th_child_dies_with_parent(parent) has
 * run. Returns the child's pid (0 in the child). */
static inline pid_t th_fork(pid_t parent)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork");
	if (pid == 0)
		th_child_dies_with_parent(parent);
	return pid;
}

static uint64_t th_now = 1000000000ull;
static inline uint64_t th_clock(void *arg)
{
	(void)arg;
	return th_now;
}

/* Deterministic payload for (stream, msg_id, len). */
static inline uint8_t th_byte(uint64_t seed, size_t i)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
	return (uint8_t)((x >> 29) ^ (x >> 47) ^ i);
}
static inline uint64_t th_seed(uint16_t stream, uint64_t msg_id, size_t len)
{
	return ((uint64_t)stream << 48) ^ (msg_id << 8) ^ len;
}
static inline void th_fill(uint8_t *b, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = th_byte(seed, i);
}
static inline int th_check(const uint8_t *b, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] != th_byte(seed, i))
			return 0;
	return 1;
}

#define TH_LOG_MAX 200000
struct th_rx {
	char src[WARP_NODE_MAX];
	uint16_t stream;
	uint64_t msg_id;
	size_t len;
	int ok;     /* payload matched th_fill(seed of stream, msg_id, len) */
	int status;
	uint16_t nack_reason;
};
struct th_log {
	size_t n;
	size_t bad;
	struct th_rx *rx;
};

static inline void th_log_init(struct th_log *l)
{
	l->n = l->bad = 0;
	l->rx = calloc(TH_LOG_MAX, sizeof(*l->rx));
	cr_assert_not_null(l->rx);
}

static inline void th_recv(void *user, const warp_msg_t *m)
{
	struct th_log *l = user;
	if (l->n >= TH_LOG_MAX)
		return;
	struct th_rx *r = &l->rx[l->n++];
	snprintf(r->src, sizeof(r->src), "%s", m->src_node);
	r->stream = m->stream_id;
	r->msg_id = m->msg_id;
	r->len = m->len;
	r->status = m->status;
	r->nack_reason = m->nack_reason;
	r->ok = m->kind == WARP_MSG_DATA
			? th_check(m->data, m->len, th_seed(m->stream_id, m->msg_id, m->len))
			: 1;
	if (!r->ok)
		l->bad++;
}

/* An engine named `name` on loop key `name:1`, manual clock. */
static inline warp_engine_t *th_engine(warp_loop_net_t *net, const char *name, warp_config_t *tweak)
{
	warp_config_t cfg;
	if (tweak)
		cfg = *tweak;
	else
		warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	char key[64];
	snprintf(key, sizeof(key), "%s:1", name);
	cfg.n_transports = 0;
	cr_assert_eq(warp_config_add_transport(&cfg, "loop", key, net), 0);
	cfg.clock = th_clock;
	warp_engine_t *e = NULL;
	int rc = warp_engine_create(&cfg, &e);
	cr_assert_eq(rc, 0, "create %s: %s (%s)", name, warp_strerror(rc), warp_errdetail());
	return e;
}

static inline warp_peer_t *th_peer(warp_engine_t *e, const char *name)
{
	char id[128];
	snprintf(id, sizeof(id), "%s@%s:1", name, name);
	warp_peer_t *p = NULL;
	int rc = warp_peer_add(e, id, &p);
	cr_assert_eq(rc, 0, "peer %s: %s (%s)", id, warp_strerror(rc), warp_errdetail());
	return p;
}

/* Send a th_fill payload; returns the rc. */
static inline int th_send(warp_engine_t *e, warp_stream_t *s, size_t len, uint64_t *id_out)
{
	static uint8_t *buf;
	static size_t cap;
	if (len > cap) {
		free(buf);
		buf = malloc(len ? len : 1);
		cap = len;
	}
	/* the payload depends on the id the stream will assign next */
	uint64_t id = s->next_msg_id;
	int rc;
	th_fill(buf, len, th_seed(warp_stream_id(s), id, len));
	uint64_t got = UINT64_MAX;
	rc = warp_send(e, s, buf, len, &got);
	if (rc == 0)
		cr_assert_eq(got, id);
	if (id_out)
		*id_out = got;
	return rc;
}

/* Poll every engine `rounds` times, advancing the clock by step_ns each round. */
static inline void th_run(warp_engine_t **es, size_t n, unsigned rounds, uint64_t step_ns)
{
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t i = 0; i < n; i++)
			warp_engine_poll(es[i]);
		th_now += step_ns;
	}
}

/* ---- driver-generic helpers: the same test runs over every driver -------- */

struct th_env {
	const char *drv;       /* "loop" or "uring-udp" */
	warp_loop_net_t *net;  /* loop only */
};

static inline void th_env_up(struct th_env *env, const char *drv, uint64_t seed)
{
	env->drv = drv;
	env->net = NULL;
	if (strcmp(drv, "loop") == 0)
		cr_assert_eq(warp_loop_net_create(seed, 0, &env->net), 0);
}

static inline void th_env_down(struct th_env *env)
{
	warp_loop_net_destroy(env->net);
}

/* Engine `name`: loop key "name:1", or a socket on 127.0.0.1 port 0. Loop
 * engines use the manual clock; socket engines the real one. */
static inline warp_engine_t *th_make(struct th_env *env, const char *name, warp_config_t *tweak)
{
	if (env->net)
		return th_engine(env->net, name, tweak);
	warp_config_t cfg;
	if (tweak)
		cfg = *tweak;
	else
		warp_config_init(&cfg);
	snprintf(cfg.node_id, sizeof(cfg.node_id), "%s", name);
	cfg.n_transports = 0;
	cr_assert_eq(warp_config_add_transport(&cfg, env->drv, "127.0.0.1:0", NULL), 0);
	warp_engine_t *e = NULL;
	int rc = warp_engine_create(&cfg, &e);
	cr_assert_eq(rc, 0, "create %s on %s: %s (%s)", name, env->drv, warp_strerror(rc),
		     warp_errdetail());
	return e;
}

/* Hand engine e, as received over its transport number `transport`, a
 * plaintext FRAMES packet from node `from` numbered pn, carrying the frames
 * encoded in frames[0..n): a forged, reordered or late packet. */
static inline void th_inject(warp_engine_t *e, const char *from, uint8_t transport, uint64_t pn,
			     const uint8_t *frames, size_t n)
{
	struct warp_pkt *pkt = warp__pkt_get(&e->pkts);
	cr_assert_not_null(pkt);
	size_t off = warp__hdr_encode(pkt->data, 1400, WARP_PKT_FRAMES, warp__conn_id(from), pn);
	cr_assert_leq(off + n, 1400);
	memcpy(pkt->data + off, frames, n);
	pkt->len = (uint32_t)warp__pkt_seal(pkt->data, off + n);
	pkt->transport = transport;
	warp__rx_packet(e, pkt);
	warp__pkt_put(&e->pkts, pkt);
}

/* Add engine `to` as a peer of `from`. */
static inline warp_peer_t *th_link(warp_engine_t *from, warp_engine_t *to)
{
	char addr[160], id[256];
	cr_assert_eq(warp_engine_local_addr(to, 0, addr, sizeof(addr)), 0);
	snprintf(id, sizeof(id), "%s@%s", warp_engine_node_id(to), addr);
	warp_peer_t *p = NULL;
	int rc = warp_peer_add(from, id, &p);
	cr_assert_eq(rc, 0, "peer %s: %s (%s)", id, warp_strerror(rc), warp_errdetail());
	return p;
}

/* Poll until *counter >= want (or max_rounds); the manual clock moves 1 us
 * per round. Returns whether the count was reached. */
static inline bool th_pump(warp_engine_t **es, size_t n, const size_t *counter, size_t want,
			   unsigned max_rounds)
{
	for (unsigned r = 0; r < max_rounds; r++) {
		if (*counter >= want)
			return true;
		for (size_t i = 0; i < n; i++)
			warp_engine_poll(es[i]);
		th_now += 1000;
	}
	return *counter >= want;
}

/* Poll until every peer in ps has its session up (the handshake done),
 * advancing the manual clock 1 us per round; fails the test naming the
 * peer and its error otherwise. Tests that count packets start after it,
 * so the handshake's packets are not in their counts. */
static inline void th_up(warp_engine_t **es, size_t n, warp_peer_t **ps, size_t np)
{
	for (unsigned r = 0; r < 2000000; r++) {
		size_t up = 0;
		for (size_t k = 0; k < np; k++) {
			warp_session_info_t si;
			warp_peer_session(ps[k], &si);
			up += si.state == WARP_SESSION_UP;
		}
		if (up == np)
			return;
		for (size_t i = 0; i < n; i++)
			warp_engine_poll(es[i]);
		th_now += 1000;
	}
	for (size_t k = 0; k < np; k++) {
		warp_session_info_t si;
		warp_peer_session(ps[k], &si);
		cr_assert_eq(si.state, WARP_SESSION_UP, "session with '%s' not up: %s",
			     warp_peer_node(ps[k]), si.error_detail);
	}
}

static inline void th_up2(warp_engine_t *a, warp_peer_t *ab, warp_engine_t *b, warp_peer_t *ba)
{
	warp_engine_t *es[2] = { a, b };
	warp_peer_t *ps[2] = { ab, ba };
	th_up(es, 2, ps, 2);
}

/* ---- the test PKI (tools/mkcerts) for secure sessions ---------------------- */

static char th_pki[64]; /* this test process's PKI directory; "" until made */

/* The directory of a throwaway PKI made by tools/mkcerts in a new
 * /tmp/warp-pki-XXXXXX on the first call in the test process (Criterion runs
 * each test in its own), removed by th_pki_cleanup (the test's .fini). It
 * holds ca, other-ca, stranger, expired and mismatch (a certificate for
 * "mallory"), see tools/mkcerts, and nodes a, b, f ("f" sorts after
 * "expired", "a" before it, so either can be the TLS client) and tx, rx
 * (two_processes.h); each NAME as NAME.pem and NAME.key. A test that forks
 * calls it before fork(), so that its processes share one PKI and only the
 * test removes it. */
static inline const char *th_pki_dir(void)
{
	if (th_pki[0])
		return th_pki;
	const char *root = getenv("WARP_SOURCE_ROOT");
	cr_assert(root, "WARP_SOURCE_ROOT is not set (run through meson test)");
	snprintf(th_pki, sizeof(th_pki), "/tmp/warp-pki-XXXXXX");
	cr_assert(mkdtemp(th_pki));
	int rc = th_sh("'%s/tools/mkcerts' --force '%s' a b f rx tx >/dev/null", root, th_pki);
	cr_assert_eq(rc, 0, "tools/mkcerts failed (%d)", rc);
	return th_pki;
}

/* Removes the PKI of th_pki_dir, if this test process made one: the .fini of
 * every test that uses it. */
static inline void th_pki_cleanup(void)
{
	if (th_pki[0])
		th_sh("rm -rf '%s'", th_pki);
}

/* c's TLS files from th_pki_dir(): node `cert`'s certificate and key,
 * trusting CA `ca` (names without .pem/.key, e.g. "a", "ca"). */
static inline void th_tls_cfg(warp_config_t *c, const char *cert, const char *ca)
{
	const char *d = th_pki_dir();
	cr_assert_lt(strlen(d) + strlen(cert) + strlen(ca) + 8, sizeof(c->tls.cert_file));
	snprintf(c->tls.cert_file, sizeof(c->tls.cert_file), "%s/%s.pem", d, cert);
	snprintf(c->tls.key_file, sizeof(c->tls.key_file), "%s/%s.key", d, cert);
	snprintf(c->tls.ca_file, sizeof(c->tls.ca_file), "%s/%s.pem", d, ca);
}

/* Whether libwarp was built with TLS (OpenSSL 3). The configuration check
 * says so before any file is read: no certificate is made. */
static inline bool th_have_tls(void)
{
	warp_config_t c;
	warp_config_init(&c);
	strcpy(c.node_id, "probe");
	strcpy(c.tls.cert_file, "probe.pem");
	strcpy(c.tls.key_file, "probe.key");
	strcpy(c.tls.ca_file, "ca.pem");
	cr_assert_eq(warp_config_add_transport(&c, "uring-udp", "127.0.0.1:0", NULL), 0);
	return !(warp_config_validate(&c) == WARP_ECONFIG && strstr(warp_errdetail(), "without TLS"));
}

/* Skips the test, saying why, when libwarp was built without TLS. */
static inline void th_need_tls(void)
{
	if (!th_have_tls())
		cr_skip_test("libwarp was built without TLS (OpenSSL 3 not found at build time)");
}

#endif
