/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration file loader (slow path): an INI file (docs/configuration.md)
 * into a warp_config_t, with "<path>:<line>: <key>: <what>" on every error.
 *
 * Parsing uses Debian's libinih (<ini.h>, pkg-config "inih"). Debian builds
 * it with INI_HANDLER_LINENO 0: the handler is not told the line number. So
 * the file is fed to ini_parse_stream() through our own reader, which hands
 * inih exactly one physical line per call and counts them; inih counts the
 * same way, so the reader's count is the line of every handler call (and of
 * a syntax error inih reports). The reader also does the parts inih cannot
 * be trusted with, so the result does not depend on how libinih was built or
 * on its process-wide runtime options (ini_allow_multiline, ...), which this
 * file never changes:
 *  - it strips comments and leading/trailing blanks itself, so an indented
 *    line is never taken as a multi-line continuation;
 *  - it tracks sections itself: inih truncates section names to 49
 *    characters (a [peer <63-character id>] would be cut), and never tells
 *    the handler about a section without keys, or about a section that
 *    follows another of the same name (two [transport] in a row);
 *  - it finds syntax errors itself, so it can quote the offending line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "warp/config.h"
#include "warp/engine.h"
#include "warp/error.h"

int warp__node_name_check(const char *s, size_t n); /* config.c */

/* ---- keys ------------------------------------------------------------------ */

enum ktype {
	K_NODE,  /* node id string */
	K_U32,   /* plain count */
	K_SIZE,  /* uint64_t bytes, K/M/G suffix */
	K_SIZET, /* size_t bytes, K/M/G suffix */
	K_DUR,   /* uint64_t nanoseconds, ns/us/ms/s suffix */
	K_IDLE,  /* warp_idle_kind_t */
	K_INT,   /* int, -1..INT_MAX */
	K_CC,    /* congestion controller name: aimd or none */
	K_U64,   /* uint64_t plain count */
	K_BOOL,  /* uint32_t 0 or 1: yes/no, true/false, on/off, 1/0 */
	K_ENC,   /* uint32_t WARP_ENCRYPTION_*: off, optional or required */
	K_STR,   /* string; its length is checked here, its value by validate */
	K_PATH,  /* file name; a relative one is taken from the config file's directory */
	K_CAP,   /* '<name> <min>..<max> [required]': appends to caps[]; repeatable */
};

struct ekey {
	const char *name;   /* key in the file */
	const char *cfgkey; /* the name warp_config_validate() uses in its detail */
	enum ktype type;
	size_t off;         /* in warp_config_t */
	size_t size;        /* of the field (K_STR, K_PATH: the buffer, NUL included) */
};

#define EK(n, c, t, f) { n, c, t, offsetof(warp_config_t, f), sizeof(((warp_config_t *)0)->f) }
static const struct ekey ekeys[] = {
	EK("node_id", "node_id", K_NODE, node_id),
	EK("mtu", "mtu", K_U32, mtu),
	EK("max_payload_bytes", "max_payload_bytes", K_SIZE, max_payload_bytes),
	EK("pkt_pool", "pkt_pool", K_U32, pkt_pool),
	EK("tx_arena_bytes", "tx_arena_bytes", K_SIZE, tx_arena_bytes),
	EK("rx_arena_bytes", "rx_arena_bytes", K_SIZE, rx_arena_bytes),
	EK("max_tx_msgs", "max_tx_msgs", K_U32, max_tx_msgs),
	EK("max_peers", "max_peers", K_U32, max_peers),
	EK("max_streams", "max_streams", K_U32, max_streams),
	EK("max_reassembly", "max_reassembly", K_U32, max_reassembly),
	EK("reassembly_timeout", "reassembly_timeout_ns", K_DUR, reassembly_timeout_ns),
	EK("rx_burst", "rx_burst", K_U32, rx_burst),
	EK("tx_burst", "tx_burst", K_U32, tx_burst),
	EK("submit_budget", "submit_budget", K_U32, submit_budget),
	EK("max_channels", "max_channels", K_U32, max_channels),
	EK("channel_ring_bytes", "channel_ring_bytes", K_SIZET, channel_ring_bytes),
	EK("timer_tick", "timer_tick_ns", K_DUR, timer_tick_ns),
	EK("timer_slots", "timer_slots", K_U32, timer_slots),
	EK("heartbeat_interval", "heartbeat_interval_ns", K_DUR, heartbeat_interval_ns),
	EK("connect_timeout", "connect_timeout_ns", K_DUR, connect_timeout_ns),
	EK("retry_initial_backoff", "retry_initial_backoff_ns", K_DUR, retry_initial_backoff_ns),
	EK("retry_max_backoff", "retry_max_backoff_ns", K_DUR, retry_max_backoff_ns),
	EK("retry_max_attempts", "retry_max_attempts", K_U32, retry_max_attempts),
	EK("idle", "idle.kind", K_IDLE, idle.kind),
	EK("idle_spins", "idle.spins", K_U32, idle.spins),
	EK("idle_yields", "idle.yields", K_U32, idle.yields),
	EK("idle_min_sleep", "idle.min_sleep_ns", K_DUR, idle.min_sleep_ns),
	EK("idle_max_sleep", "idle.max_sleep_ns", K_DUR, idle.max_sleep_ns),
	EK("cpu", "cpu", K_INT, cpu),
	EK("default_guarantee", "default_guarantee", K_U32, default_guarantee),
	EK("ack_timeout", "ack_timeout_ns", K_DUR, ack_timeout_ns),
	EK("max_retries", "max_retries", K_U32, max_retries),
	EK("rto_initial", "rto_initial_ns", K_DUR, rto_initial_ns),
	EK("rto_min", "rto_min_ns", K_DUR, rto_min_ns),
	EK("rto_max", "rto_max_ns", K_DUR, rto_max_ns),
	EK("max_unacked_pkts", "max_unacked_pkts", K_U32, max_unacked_pkts),
	EK("rx_window_bytes", "rx_window_bytes", K_SIZE, rx_window_bytes),
	EK("congestion", "congestion", K_CC, congestion),
	EK("stream_window_msgs", "stream_window_msgs", K_U32, stream_window_msgs),
	EK("breaker_failure_threshold", "breaker_failure_threshold", K_U32, breaker_failure_threshold),
	EK("breaker_open_timeout", "breaker_open_timeout_ns", K_DUR, breaker_open_timeout_ns),
	EK("breaker_half_open_max_calls", "breaker_half_open_max_calls", K_U32,
	   breaker_half_open_max_calls),
	EK("breaker_success_threshold", "breaker_success_threshold", K_U32, breaker_success_threshold),
	EK("heartbeat_miss_limit", "heartbeat_miss_limit", K_U32, heartbeat_miss_limit),
	EK("failover_after_rtos", "failover_after_rtos", K_U32, failover_after_rtos),
	EK("failback_probe", "failback_probe_ns", K_DUR, failback_probe_ns),
	EK("encryption", "encryption", K_ENC, encryption),
	EK("tls_cert_file", "tls.cert_file", K_PATH, tls.cert_file),
	EK("tls_key_file", "tls.key_file", K_PATH, tls.key_file),
	EK("tls_ca_file", "tls.ca_file", K_PATH, tls.ca_file),
	EK("tls_verify_peer", "tls.verify_peer", K_BOOL, tls.verify_peer),
	EK("tls_ciphers", "tls.ciphers", K_STR, tls.ciphers),
	EK("tls_resumption", "tls.resumption", K_BOOL, tls.resumption),
	EK("key_update_packets", "key_update_packets", K_U64, key_update_packets),
	EK("max_handshakes", "max_handshakes", K_U32, max_handshakes),
	/* validate names one as "caps[i]...": validate_line() finds its line */
	EK("cap", "caps", K_CAP, caps),
};
#undef EK
#define N_EKEYS WARP__ARRAY_LEN(ekeys)

/* [transport] keys. Those from TK_DPDK_FIRST on are the dpdk driver's
 * (warp_dpdk_config_t), udp_gso and udp_gro uring-udp's: each allowed only
 * in a section of its driver (tkey_driver()), which may be named before or
 * after them. */
enum {
	TK_DRIVER,
	TK_LISTEN,
	TK_SOCK_BUF,
	TK_REUSEPORT,
	TK_URING_SETUP,
	TK_UDP_GSO,
	TK_UDP_GRO,
	TK_DPDK_FIRST,
	TK_EAL = TK_DPDK_FIRST,
	TK_LCORES,
	TK_IN_MEMORY,
	TK_NO_HUGE,
	TK_NO_PCI,
	TK_FILE_PREFIX,
	TK_VDEV,
	TK_PCI_ALLOW,
	TK_EAL_ARGS,
	TK_PORT,
	TK_QUEUES,
	TK_QUEUE,
	TK_RX_DESC,
	TK_TX_DESC,
	TK_MBUFS,
	TK_SUBNET,
	TK_GATEWAY,
	TK_NEIGHBOR,
	TK_UDP_CHECKSUM,
	TK_LINK_CHECK,
	TK_ARP_RETRY,
	TK_ARP_REACHABLE,
	N_TKEYS
};
static const char *const tkeys[N_TKEYS] = {
	[TK_DRIVER] = "driver",
	[TK_LISTEN] = "listen",
	[TK_SOCK_BUF] = "sock_buf_bytes",
	[TK_REUSEPORT] = "reuseport",
	[TK_URING_SETUP] = "uring_setup",
	[TK_UDP_GSO] = "udp_gso",
	[TK_UDP_GRO] = "udp_gro",
	[TK_EAL] = "eal",
	[TK_LCORES] = "lcores",
	[TK_IN_MEMORY] = "in_memory",
	[TK_NO_HUGE] = "no_huge",
	[TK_NO_PCI] = "no_pci",
	[TK_FILE_PREFIX] = "file_prefix",
	[TK_VDEV] = "vdev",
	[TK_PCI_ALLOW] = "pci_allow",
	[TK_EAL_ARGS] = "eal_args",
	[TK_PORT] = "port",
	[TK_QUEUES] = "queues",
	[TK_QUEUE] = "queue",
	[TK_RX_DESC] = "rx_desc",
	[TK_TX_DESC] = "tx_desc",
	[TK_MBUFS] = "mbufs",
	[TK_SUBNET] = "subnet",
	[TK_GATEWAY] = "gateway",
	[TK_NEIGHBOR] = "neighbor",
	[TK_UDP_CHECKSUM] = "udp_checksum",
	[TK_LINK_CHECK] = "link_check",
	[TK_ARP_RETRY] = "arp_retry",
	[TK_ARP_REACHABLE] = "arp_reachable",
};

/* Keys that append to a list: each line adds one entry. */
static int tkey_repeatable(int k)
{
	return k == TK_VDEV || k == TK_PCI_ALLOW || k == TK_NEIGHBOR;
}

#define DPDK_DRIVER "dpdk"
#define UDP_DRIVER "uring-udp"

enum sect { S_NONE, S_ENGINE, S_TRANSPORT, S_PEER };

struct ld {
	const char *path;
	warp_config_file_t *f;
	FILE *fp;
	char *buf; /* getline() buffer (libc allocation) */
	size_t cap;
	uint32_t lineno;
	int failed; /* the first error is in warp_errdetail() */
	int rc;
	uint32_t err_line;
	int read_errno;

	enum sect sect;
	uint32_t sect_line;
	char sect_label[WARP_NODE_MAX + 8]; /* "[engine]", "[peer b]", ... for messages */
	uint32_t engine_line;
	uint32_t ekey_line[N_EKEYS]; /* cap: its first line */
	uint32_t cap_line[WARP_MAX_CAPS]; /* line of each cap = ... (cfg.caps[i]) */
	uint32_t tkey_line[WARP_MAX_TRANSPORTS][N_TKEYS]; /* repeated keys: their first line */
	uint32_t penc_line[WARP_CONFIG_FILE_MAX_PEERS]; /* line of each peer's encryption */
};

/* Record the first error: "<path>:<line>: <message>". Returns 0 (the inih
 * handler's "error" value). */
__attribute__((format(printf, 3, 4))) static int fail(struct ld *st, uint32_t line,
							const char *fmt, ...)
{
	if (st->failed)
		return 0;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	warp__err(WARP_ECONFIG, "%s:%u: %s", st->path, line, msg);
	st->failed = 1;
	st->rc = WARP_ECONFIG;
	st->err_line = line;
	return 0;
}

/* ---- values ---------------------------------------------------------------- */

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Leading decimal digits of s into *v. Returns the end, or NULL (no digit,
 * or overflow: *ovf set). */
static const char *parse_digits(const char *s, uint64_t *v, int *ovf)
{
	uint64_t x = 0;
	const char *p = s;
	*ovf = 0;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - d) / 10)
			*ovf = 1;
		else
			x = x * 10 + d;
		p++;
	}
	if (p == s || *ovf)
		return NULL;
	*v = x;
	return p;
}

static const char *skip_blank(const char *s)
{
	while (is_blank(*s))
		s++;
	return s;
}

/* A plain count, size or duration into *out (at most max). Returns 0, or -1
 * with the error recorded. */
static int parse_unsigned(struct ld *st, const char *key, const char *val, enum ktype t,
			  uint64_t max, uint64_t *out)
{
	uint32_t line = st->lineno;
	const char *unit = t == K_DUR ? " ns" : (t == K_SIZE || t == K_SIZET) ? " bytes" : "";
	uint64_t v;
	int ovf;
	const char *p = parse_digits(val, &v, &ovf);
	if (!p) {
		if (ovf)
			fail(st, line, "%s: '%s' is out of range (0..%llu%s)", key, val,
			     (unsigned long long)max, unit);
		else
			fail(st, line, "%s: '%s' is not a number", key, val);
		return -1;
	}
	const char *sfx = skip_blank(p);
	uint64_t mul = 1;
	if (t == K_SIZE || t == K_SIZET) {
		if (!strcmp(sfx, "K")) {
			mul = 1ull << 10;
		} else if (!strcmp(sfx, "M")) {
			mul = 1ull << 20;
		} else if (!strcmp(sfx, "G")) {
			mul = 1ull << 30;
		} else if (*sfx) {
			fail(st, line,
			     "%s: '%s': bad size suffix '%s' (use bytes, or K, M or G: powers of 1024)",
			     key, val, sfx);
			return -1;
		}
	} else if (t == K_DUR) {
		if (!strcmp(sfx, "ns")) {
			mul = 1;
		} else if (!strcmp(sfx, "us")) {
			mul = 1000ull;
		} else if (!strcmp(sfx, "ms")) {
			mul = 1000000ull;
		} else if (!strcmp(sfx, "s")) {
			mul = 1000000000ull;
		} else if (*sfx) {
			fail(st, line, "%s: '%s': bad duration unit '%s' (use ns, us, ms or s)", key,
			     val, sfx);
			return -1;
		} else if (v != 0) { /* a bare 0 needs no unit */
			fail(st, line, "%s: '%s': a duration needs a unit (ns, us, ms or s)", key,
			     val);
			return -1;
		}
	} else if (*sfx) {
		fail(st, line, "%s: '%s' is not a number", key, val);
		return -1;
	}
	if (v > max / mul) {
		fail(st, line, "%s: '%s' is out of range (0..%llu%s)", key, val,
		     (unsigned long long)max, unit);
		return -1;
	}
	*out = v * mul;
	return 0;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < WARP__ARRAY_LEN(yes); i++) {
		if (!strcmp(v, yes[i]))
			return *out = 1, 0;
		if (!strcmp(v, no[i]))
			return *out = 0, 0;
	}
	return -1;
}

/* "off", "optional", "required": WARP_ENCRYPTION_*, or 0 for anything else. */
static uint32_t parse_encryption(const char *v)
{
	if (!strcmp(v, "off"))
		return WARP_ENCRYPTION_OFF;
	if (!strcmp(v, "optional"))
		return WARP_ENCRYPTION_OPTIONAL;
	if (!strcmp(v, "required"))
		return WARP_ENCRYPTION_REQUIRED;
	return 0;
}

/* ---- sections -------------------------------------------------------------- */

/* A [transport] section with its driver ends. A dpdk transport gets its
 * settings as driver_arg, after the checks that involve two keys (done here
 * because either may come first; reported at the line of the key that has
 * to change). Any other driver has had no dpdk key (transport_key() refused
 * them), and its dpdk[] slot is zeroed again. */
static void end_transport(struct ld *st, uint32_t i)
{
	warp_transport_config_t *t = &st->f->cfg.transports[i];
	warp_dpdk_config_t *d = &st->f->dpdk[i];
	const uint32_t *kl = st->tkey_line[i];
	if (strcmp(t->driver, DPDK_DRIVER) != 0) {
		memset(d, 0, sizeof(*d));
		return;
	}
	if (kl[TK_QUEUE]) {
		/* queues = 0 (unset) means one queue pair: queue must then be 0 */
		unsigned nq = d->queues ? d->queues : 1;
		if (d->queue >= nq) {
			if (kl[TK_QUEUES])
				fail(st, kl[TK_QUEUE], "queue: %u is not below queues (%u)",
				     d->queue, nq);
			else
				fail(st, kl[TK_QUEUE],
				     "queue: %u is not below queues (queues is not set, so the port "
				     "has one queue pair)",
				     d->queue);
			return;
		}
	}
	if (kl[TK_GATEWAY] && d->prefix_len == 0) {
		fail(st, kl[TK_GATEWAY],
		     "gateway: needs subnet (the listen address's prefix length, e.g. 'subnet = "
		     "24'): without it every peer is on-link and the gateway is never used");
		return;
	}
	t->driver_arg = d;
}

/* Checks when a section ends (next section header or end of file). */
static void end_section(struct ld *st)
{
	warp_config_t *c = &st->f->cfg;
	if (st->sect == S_TRANSPORT) {
		uint32_t i = c->n_transports - 1;
		if (!st->tkey_line[i][TK_DRIVER])
			fail(st, st->sect_line,
			     "driver: required in [transport] (e.g. 'driver = uring-udp')");
		else
			end_transport(st, i);
	} else if (st->sect == S_PEER) {
		const warp_peer_config_t *p = &st->f->peers[c->n_peers - 1];
		if (p->n_transports == 0)
			fail(st, st->sect_line,
			     "transport: missing peer address in %s (add 'transport = <driver> "
			     "<address>')",
			     st->sect_label);
	}
	st->sect = S_NONE;
}

/* A "[...]" line: s is trimmed, starts with '['. */
static void begin_section(struct ld *st, char *s)
{
	uint32_t line = st->lineno;
	char *close = strchr(s, ']');
	if (!close) {
		fail(st, line, "syntax error: '%s' has no closing ']'", s);
		return;
	}
	if (*skip_blank(close + 1)) {
		fail(st, line, "syntax error: '%s': text after ']'", s);
		return;
	}
	end_section(st);
	if (st->failed)
		return;
	*close = '\0';
	char *name = (char *)skip_blank(s + 1);
	char *e = name + strlen(name);
	while (e > name && is_blank(e[-1]))
		*--e = '\0';
	size_t wl = strcspn(name, " \t");
	const char *arg = skip_blank(name + wl);
	warp_config_t *c = &st->f->cfg;

	if (wl == 6 && !strncmp(name, "engine", 6) && !*arg) {
		if (st->engine_line)
			fail(st, line, "[engine]: section appears twice (first on line %u)",
			     st->engine_line);
		st->engine_line = line;
		st->sect = S_ENGINE;
		snprintf(st->sect_label, sizeof(st->sect_label), "[engine]");
	} else if (wl == 9 && !strncmp(name, "transport", 9) && !*arg) {
		if (c->n_transports >= WARP_MAX_TRANSPORTS) {
			fail(st, line, "[transport]: too many transports (at most %d)",
			     WARP_MAX_TRANSPORTS);
			return;
		}
		uint32_t i = c->n_transports++;
		memset(&c->transports[i], 0, sizeof(c->transports[i]));
		/* dpdk keys may come before 'driver = dpdk': collect them from the
		 * defaults on; end_transport() drops them for another driver */
		warp_dpdk_config_init(&st->f->dpdk[i]);
		st->f->transport_line[i] = line;
		st->sect = S_TRANSPORT;
		snprintf(st->sect_label, sizeof(st->sect_label), "[transport]");
	} else if (wl == 4 && !strncmp(name, "peer", 4)) {
		size_t n = strlen(arg);
		int bad = warp__node_name_check(arg, n);
		if (bad == -1) {
			fail(st, line, "[peer]: needs the peer's node id: [peer <node>]");
			return;
		}
		if (bad == -2) {
			fail(st, line, "[peer %.20s...]: node id longer than %d characters", arg,
			     WARP_NODE_MAX - 1);
			return;
		}
		if (bad > 0) {
			fail(st, line,
			     "[peer %s]: node id: invalid character '%c' (allowed: A-Z a-z 0-9 . _ -)",
			     arg, bad);
			return;
		}
		for (uint32_t i = 0; i < c->n_peers; i++)
			if (!strcmp(st->f->peers[i].node, arg)) {
				fail(st, line, "[peer %s]: duplicate section (first on line %u)", arg,
				     st->f->peer_line[i]);
				return;
			}
		if (c->n_peers >= WARP_CONFIG_FILE_MAX_PEERS) {
			fail(st, line, "[peer %s]: too many peers (at most %d)", arg,
			     WARP_CONFIG_FILE_MAX_PEERS);
			return;
		}
		uint32_t i = c->n_peers++;
		warp_peer_config_t *p = &st->f->peers[i];
		memset(p, 0, sizeof(*p));
		memcpy(p->node, arg, n + 1);
		st->f->peer_line[i] = line;
		st->sect = S_PEER;
		snprintf(st->sect_label, sizeof(st->sect_label), "[peer %s]", arg);
	} else {
		fail(st, line,
		     "[%s]: unknown section (expected [engine], [transport] or [peer <node>])",
		     name);
	}
	st->sect_line = line;
}

/* ---- the reader: one physical line per call -------------------------------- */

/* Strip comments: a line starting with ';' or '#', and from a ';' or '#'
 * that follows a blank. Then trim. Returns the start of what is left. */
static char *clean_line(char *s)
{
	s = (char *)skip_blank(s);
	if (!*s)
		return s; /* blank: the loop below would start past the end */
	if (*s == ';' || *s == '#') {
		*s = '\0';
		return s;
	}
	for (char *p = s + 1; *p; p++)
		if ((*p == ';' || *p == '#') && is_blank(p[-1])) {
			*p = '\0';
			break;
		}
	char *e = s + strlen(s);
	while (e > s && is_blank(e[-1]))
		*--e = '\0';
	return s;
}

static char *reader(char *out, int num, void *stream)
{
	struct ld *st = stream;
	if (st->failed || num < 3)
		return NULL;
	errno = 0;
	ssize_t n = getline(&st->buf, &st->cap, st->fp);
	if (n < 0) {
		if (ferror(st->fp))
			st->read_errno = errno ? errno : EIO;
		return NULL;
	}
	st->lineno++;
	char *s = st->buf;
	if (st->lineno == 1 && (unsigned char)s[0] == 0xef && (unsigned char)s[1] == 0xbb &&
	    (unsigned char)s[2] == 0xbf)
		s += 3; /* UTF-8 byte order mark */
	s = clean_line(s);
	if (*s == '[') {
		begin_section(st, s);
		s = ""; /* inih needs not know: sections are tracked here */
	} else if (*s && !strpbrk(s, "=:")) {
		fail(st, st->lineno, "syntax error: '%s' is neither '[section]' nor 'key = value'",
		     s);
		return NULL;
	} else if (*s == '=' || *s == ':') {
		fail(st, st->lineno, "syntax error: '%s': no key before '%c'", s, *s);
		return NULL;
	}
	if (st->failed)
		return NULL;
	size_t len = strlen(s);
	if (len + 2 > (size_t)num) {
		fail(st, st->lineno, "syntax error: line longer than %d characters", num - 2);
		return NULL;
	}
	memcpy(out, s, len);
	out[len] = '\n';
	out[len + 1] = '\0';
	return out;
}

/* ---- the handler: one key = value ------------------------------------------ */

/* A file name into dst (cap bytes, NUL included). A relative name is taken
 * from the directory of the config file, so a config and its certificates
 * can move together: "certs/a.pem" in "config/x.ini" is "config/certs/a.pem".
 * The file is not opened here (warp_engine_create() does). */
static int engine_path(struct ld *st, const char *name, const char *val, char *dst, size_t cap)
{
	uint32_t line = st->lineno;
	const char *slash = strrchr(st->path, '/');
	size_t dl = val[0] != '/' && slash ? (size_t)(slash - st->path) + 1 : 0;
	size_t n = strlen(val);
	if (dl + n >= cap) {
		if (dl)
			return fail(st, line,
				    "%s: '%.40s%s' is longer than %zu characters once taken from "
				    "the directory of this file",
				    name, val, n > 40 ? "..." : "", cap - 1);
		return fail(st, line, "%s: '%.40s%s' is longer than %zu characters", name, val,
			    n > 40 ? "..." : "", cap - 1);
	}
	memcpy(dst, st->path, dl);
	memcpy(dst + dl, val, n + 1);
	return 1;
}

/* A version of 'cap': the n characters at s, a number in 1..65535. */
static int cap_version(struct ld *st, const char *val, const char *s, size_t n, uint16_t *out)
{
	uint64_t v = 0;
	size_t i;
	for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		if (v <= 65535) /* stops growing once too large: no overflow */
			v = v * 10 + (uint64_t)(s[i] - '0');
	if (!n || i != n)
		return fail(st, st->lineno, "cap: '%s': version '%.*s' is not a number", val,
			    (int)n, s);
	if (v < 1 || v > 65535)
		return fail(st, st->lineno, "cap: '%s': version %.*s is out of range (1..65535)",
			    val, (int)n, s);
	*out = (uint16_t)v;
	return 1;
}

/* 'cap = <name> <min>..<max> [required]': appends to cfg.caps[]. The name's
 * characters, duplicates and min <= max are warp_config_validate()'s to
 * check (reported at this line by validate_line()). */
static int engine_cap(struct ld *st, const char *val)
{
	uint32_t line = st->lineno;
	warp_config_t *c = &st->f->cfg;
	size_t nl = strcspn(val, " \t");
	const char *range = skip_blank(val + nl);
	size_t rl = strcspn(range, " \t");
	const char *opt = skip_blank(range + rl);
	size_t ol = strcspn(opt, " \t");
	const char *dots = strstr(range, "..");
	if (!nl || !rl || !dots || dots >= range + rl || *skip_blank(opt + ol) ||
	    (ol && (ol != 8 || strncmp(opt, "required", 8) != 0)))
		return fail(st, line, "cap: '%s' is not '<name> <min>..<max> [required]'", val);
	if (c->n_caps >= WARP_MAX_CAPS)
		return fail(st, line, "cap: at most %d per engine", WARP_MAX_CAPS);
	warp_cap_config_t k;
	memset(&k, 0, sizeof(k));
	if (nl >= sizeof(k.name))
		return fail(st, line, "cap: name '%.*s' is longer than %zu characters", (int)nl,
			    val, sizeof(k.name) - 1);
	memcpy(k.name, val, nl);
	if (!cap_version(st, val, range, (size_t)(dots - range), &k.min) ||
	    !cap_version(st, val, dots + 2, (size_t)(range + rl - dots - 2), &k.max))
		return 0;
	k.required = ol != 0;
	st->cap_line[c->n_caps] = line;
	c->caps[c->n_caps++] = k;
	return 1;
}

static int engine_key(struct ld *st, const char *name, const char *val)
{
	uint32_t line = st->lineno;
	warp_config_t *c = &st->f->cfg;
	size_t k;
	for (k = 0; k < N_EKEYS; k++)
		if (!strcmp(ekeys[k].name, name))
			break;
	if (k == N_EKEYS)
		return fail(st, line, "%s: unknown key in [engine]", name);
	const struct ekey *ek = &ekeys[k];
	if (st->ekey_line[k] && ek->type != K_CAP) /* cap is a list: one entry a line */
		return fail(st, line, "%s: set twice in [engine] (first on line %u)", name,
			    st->ekey_line[k]);
	if (!st->ekey_line[k])
		st->ekey_line[k] = line;
	void *dst = (char *)c + ek->off;
	if (!*val && ek->type != K_NODE)
		return fail(st, line, "%s: empty value", name);
	uint64_t v;
	int b;
	switch (ek->type) {
	case K_NODE: {
		size_t n = strlen(val);
		if (n == 0)
			return fail(st, line, "%s: empty node id", name);
		if (n >= WARP_NODE_MAX)
			return fail(st, line, "%s: '%s' is longer than %d characters", name, val,
				    WARP_NODE_MAX - 1);
		memcpy(dst, val, n + 1);
		return 1; /* the characters are warp_config_validate()'s to check */
	}
	case K_U32:
		if (parse_unsigned(st, name, val, K_U32, UINT32_MAX, &v))
			return 0;
		*(uint32_t *)dst = (uint32_t)v;
		return 1;
	case K_SIZE:
	case K_DUR:
		if (parse_unsigned(st, name, val, ek->type, UINT64_MAX, &v))
			return 0;
		*(uint64_t *)dst = v;
		return 1;
	case K_SIZET:
		if (parse_unsigned(st, name, val, K_SIZET, SIZE_MAX, &v))
			return 0;
		*(size_t *)dst = (size_t)v;
		return 1;
	case K_IDLE:
		if (!strcmp(val, "spin"))
			*(warp_idle_kind_t *)dst = WARP_IDLE_SPIN;
		else if (!strcmp(val, "yield"))
			*(warp_idle_kind_t *)dst = WARP_IDLE_YIELD;
		else if (!strcmp(val, "backoff"))
			*(warp_idle_kind_t *)dst = WARP_IDLE_BACKOFF;
		else
			return fail(st, line, "%s: '%s' is not spin, yield or backoff", name, val);
		return 1;
	case K_CC:
		if (strcmp(val, "aimd") && strcmp(val, "none"))
			return fail(st, line, "%s: '%s' is not aimd or none", name, val);
		snprintf((char *)dst, sizeof(((warp_config_t *)0)->congestion), "%s", val);
		return 1;
	case K_INT:
		if (!strcmp(val, "-1")) {
			*(int *)dst = -1;
			return 1;
		}
		if (val[0] == '-' && val[1] >= '0' && val[1] <= '9')
			return fail(st, line, "%s: '%s' is out of range (-1..2147483647)", name, val);
		if (parse_unsigned(st, name, val, K_U32, 2147483647u, &v))
			return 0;
		*(int *)dst = (int)v;
		return 1;
	case K_U64:
		if (parse_unsigned(st, name, val, K_U64, UINT64_MAX, &v))
			return 0;
		*(uint64_t *)dst = v;
		return 1;
	case K_BOOL:
		if (parse_bool(val, &b))
			return fail(st, line, "%s: '%s' is not yes or no", name, val);
		*(uint32_t *)dst = (uint32_t)b;
		return 1;
	case K_ENC: {
		uint32_t e = parse_encryption(val);
		if (!e)
			return fail(st, line, "%s: '%s' is not off, optional or required", name,
				    val);
		*(uint32_t *)dst = e;
		return 1;
	}
	case K_STR: {
		size_t n = strlen(val);
		if (n >= ek->size)
			return fail(st, line, "%s: '%.40s%s' is longer than %zu characters", name,
				    val, n > 40 ? "..." : "", ek->size - 1);
		memcpy(dst, val, n + 1);
		return 1;
	}
	case K_PATH:
		return engine_path(st, name, val, (char *)dst, ek->size);
	case K_CAP:
		return engine_cap(st, val);
	}
	return fail(st, line, "%s: internal error: unhandled type", name);
}

/* ---- dpdk keys (warp_dpdk_config_t) ---------------------------------------- */

/* A string key into dst (cap bytes, NUL included). Values are one EAL
 * argument each unless blanks_ok, so a blank would split them silently. */
static int dpdk_str(struct ld *st, const char *name, const char *val, char *dst, size_t cap,
		    int blanks_ok)
{
	uint32_t line = st->lineno;
	size_t n = strlen(val);
	if (n >= cap)
		return fail(st, line, "%s: '%.40s%s' is longer than %zu characters", name, val,
			    n > 40 ? "..." : "", cap - 1);
	if (!blanks_ok && strpbrk(val, " \t"))
		return fail(st, line, "%s: '%s': one word, without blanks", name, val);
	memcpy(dst, val, n + 1);
	return 1;
}

/* A count in lo..hi into *out. Returns 0, or -1 with the error recorded. */
static int dpdk_range(struct ld *st, const char *name, const char *val, uint64_t lo,
		      uint64_t hi, uint64_t *out)
{
	uint64_t v;
	if (parse_unsigned(st, name, val, K_U32, UINT64_MAX, &v))
		return -1;
	if (v < lo || v > hi) {
		fail(st, st->lineno, "%s: '%s' is out of range (%llu..%llu)", name, val,
		     (unsigned long long)lo, (unsigned long long)hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "02:00:00:00:00:0a": exactly six hex pairs separated by ':' */
static int mac_ok(const char *s, size_t n)
{
	if (n != 17)
		return 0;
	for (size_t j = 0; j < 17; j++)
		if (j % 3 == 2 ? s[j] != ':' : !is_hex(s[j]))
			return 0;
	return 1;
}

/* 'neighbor = <IPv4> <MAC>': appends one static neighbour. */
static int dpdk_neighbor(struct ld *st, warp_dpdk_config_t *d, const char *val)
{
	uint32_t line = st->lineno;
	size_t il = strcspn(val, " \t");
	const char *mac = skip_blank(val + il);
	size_t ml = strcspn(mac, " \t");
	if (!*mac || *skip_blank(mac + ml))
		return fail(st, line,
			    "neighbor: '%s': expected '<IPv4 address> <MAC address>', e.g. "
			    "'10.0.0.2 02:00:00:00:00:02'",
			    val);
	char ip[sizeof(d->neigh[0].ip)];
	struct in_addr a, b;
	int ip_ok = il < sizeof(ip);
	if (ip_ok) {
		memcpy(ip, val, il);
		ip[il] = '\0';
		ip_ok = inet_pton(AF_INET, ip, &a) == 1;
	}
	if (!ip_ok)
		return fail(st, line, "neighbor: '%.*s' is not an IPv4 address", (int)il, val);
	if (!mac_ok(mac, ml))
		return fail(st, line,
			    "neighbor: '%.*s' is not a MAC address (six hex pairs separated by "
			    "':', e.g. 02:00:00:00:00:02)",
			    (int)ml, mac);
	for (uint32_t j = 0; j < d->n_neigh; j++)
		if (inet_pton(AF_INET, d->neigh[j].ip, &b) == 1 && a.s_addr == b.s_addr)
			return fail(st, line, "neighbor: %s is listed twice", ip);
	if (d->n_neigh >= WARP_DPDK_MAX_NEIGH)
		return fail(st, line, "neighbor: too many (at most %d per transport)",
			    WARP_DPDK_MAX_NEIGH);
	warp_dpdk_neigh_t *e = &d->neigh[d->n_neigh++];
	memcpy(e->ip, ip, il + 1);
	memcpy(e->mac, mac, ml);
	e->mac[ml] = '\0';
	return 1;
}

/* One dpdk key of [transport] i (k >= TK_DPDK_FIRST). */
static int dpdk_key(struct ld *st, uint32_t i, int k, const char *name, const char *val)
{
	uint32_t line = st->lineno;
	warp_dpdk_config_t *d = &st->f->dpdk[i];
	if (!*val)
		return fail(st, line, "%s: empty value", name);
	uint64_t v;
	int b;
	switch (k) {
	case TK_EAL:
		if (strcmp(val, "external") != 0)
			return fail(st, line,
				    "eal: '%s' is not 'external' (the only value: the application "
				    "starts the EAL; leave the key out and warp starts it)",
				    val);
		d->eal_external = true;
		return 1;
	case TK_LCORES:
		/* EAL -l: CPU numbers and ranges; a typo here would otherwise
		 * surface as an EAL start-up failure much later */
		if (strspn(val, "0123456789,-") != strlen(val))
			return fail(st, line,
				    "lcores: '%s' is not a CPU list (numbers and ranges: '1', "
				    "'1-2', '0,2')",
				    val);
		return dpdk_str(st, name, val, d->lcores, sizeof(d->lcores), 0);
	case TK_IN_MEMORY:
	case TK_NO_HUGE:
	case TK_NO_PCI:
	case TK_UDP_CHECKSUM:
		if (parse_bool(val, &b))
			return fail(st, line, "%s: '%s' is not yes or no", name, val);
		*(k == TK_IN_MEMORY ? &d->in_memory
		  : k == TK_NO_HUGE ? &d->no_huge
		  : k == TK_NO_PCI  ? &d->no_pci
				    : &d->udp_checksum) = b;
		return 1;
	case TK_FILE_PREFIX:
		if (strchr(val, '/'))
			return fail(st, line, "file_prefix: '%s': a name, without '/'", val);
		return dpdk_str(st, name, val, d->file_prefix, sizeof(d->file_prefix), 0);
	case TK_VDEV:
		if (d->n_vdevs >= WARP_DPDK_MAX_VDEVS)
			return fail(st, line, "vdev: too many (at most %d per transport)",
				    WARP_DPDK_MAX_VDEVS);
		if (!dpdk_str(st, name, val, d->vdevs[d->n_vdevs], sizeof(d->vdevs[0]), 0))
			return 0;
		d->n_vdevs++;
		return 1;
	case TK_PCI_ALLOW:
		if (d->n_pci_allow >= WARP_DPDK_MAX_ALLOW)
			return fail(st, line, "pci_allow: too many (at most %d per transport)",
				    WARP_DPDK_MAX_ALLOW);
		if (!dpdk_str(st, name, val, d->pci_allow[d->n_pci_allow],
			      sizeof(d->pci_allow[0]), 0))
			return 0;
		d->n_pci_allow++;
		return 1;
	case TK_EAL_ARGS:
		return dpdk_str(st, name, val, d->eal_extra, sizeof(d->eal_extra), 1);
	case TK_PORT:
		return dpdk_str(st, name, val, d->port, sizeof(d->port), 0);
	case TK_QUEUES:
		if (dpdk_range(st, name, val, 1, WARP_DPDK_MAX_QUEUES, &v))
			return 0;
		d->queues = (uint16_t)v;
		return 1;
	case TK_QUEUE: /* below queues: end_transport() checks, either may come first */
		if (dpdk_range(st, name, val, 0, WARP_DPDK_MAX_QUEUES - 1, &v))
			return 0;
		d->queue = (uint16_t)v;
		return 1;
	case TK_RX_DESC:
	case TK_TX_DESC:
		if (dpdk_range(st, name, val, 1, 65535, &v))
			return 0;
		*(k == TK_RX_DESC ? &d->rx_desc : &d->tx_desc) = (uint16_t)v;
		return 1;
	case TK_MBUFS:
		if (dpdk_range(st, name, val, 0, UINT32_MAX, &v))
			return 0;
		d->mbufs = (uint32_t)v;
		return 1;
	case TK_SUBNET:
		if (dpdk_range(st, name, val, 0, 32, &v))
			return 0;
		d->prefix_len = (uint8_t)v;
		return 1;
	case TK_GATEWAY: {
		struct in_addr a;
		if (strlen(val) >= sizeof(d->gateway) || inet_pton(AF_INET, val, &a) != 1)
			return fail(st, line, "gateway: '%s' is not an IPv4 address", val);
		strcpy(d->gateway, val);
		return 1;
	}
	case TK_NEIGHBOR:
		return dpdk_neighbor(st, d, val);
	case TK_LINK_CHECK:
	case TK_ARP_RETRY:
	case TK_ARP_REACHABLE:
		if (parse_unsigned(st, name, val, K_DUR, UINT64_MAX, &v))
			return 0;
		*(k == TK_LINK_CHECK ? &d->link_check_ns
		  : k == TK_ARP_RETRY ? &d->arp_retry_ns
				      : &d->arp_reachable_ns) = v;
		return 1;
	}
	return fail(st, line, "%s: internal error: unhandled key", name);
}

/* The driver a [transport] key belongs to, or NULL for a key of every
 * driver: dpdk's keys, and uring-udp's offloads. */
static const char *tkey_driver(int k)
{
	if (k >= TK_DPDK_FIRST)
		return DPDK_DRIVER;
	if (k == TK_UDP_GSO || k == TK_UDP_GRO)
		return UDP_DRIVER;
	return NULL;
}

/* The first key of [transport] i in file order that belongs to another
 * driver than `driver`, or -1. */
static int first_foreign_key(const struct ld *st, uint32_t i, const char *driver)
{
	int first = -1;
	for (int k = 0; k < N_TKEYS; k++) {
		const char *kd = tkey_driver(k);
		if (kd && strcmp(kd, driver) && st->tkey_line[i][k] &&
		    (first < 0 || st->tkey_line[i][k] < st->tkey_line[i][first]))
			first = k;
	}
	return first;
}

static int transport_key(struct ld *st, const char *name, const char *val)
{
	uint32_t line = st->lineno;
	uint32_t i = st->f->cfg.n_transports - 1;
	warp_transport_config_t *t = &st->f->cfg.transports[i];
	int k;
	for (k = 0; k < N_TKEYS; k++)
		if (!strcmp(tkeys[k], name))
			break;
	if (k == N_TKEYS)
		return fail(st, line, "%s: unknown key in [transport]", name);
	if (st->tkey_line[i][k] && !tkey_repeatable(k))
		return fail(st, line, "%s: set twice in [transport] (first on line %u)", name,
			    st->tkey_line[i][k]);
	const char *kd = tkey_driver(k);
	if (kd && st->tkey_line[i][TK_DRIVER] && strcmp(t->driver, kd))
		return fail(st, line, "%s: a key of driver %s, but this [transport] has driver '%s'",
			    name, kd, t->driver);
	if (!st->tkey_line[i][k])
		st->tkey_line[i][k] = line;
	if (k == TK_LISTEN)
		st->f->listen_line[i] = line;
	if (k >= TK_DPDK_FIRST)
		return dpdk_key(st, i, k, name, val);
	uint64_t v;
	int b;
	switch (k) {
	case TK_DRIVER:
		if (!*val)
			return fail(st, line, "driver: empty value");
		if (strpbrk(val, " \t"))
			return fail(st, line, "driver: '%s': one driver name, without blanks", val);
		if (strlen(val) >= WARP_DRIVER_NAME_MAX)
			return fail(st, line, "driver: '%s' is longer than %d characters", val,
				    WARP_DRIVER_NAME_MAX - 1);
		strcpy(t->driver, val);
		/* another driver's keys above this line: the error is at the first */
		int fk = first_foreign_key(st, i, val);
		if (fk >= 0)
			return fail(st, st->tkey_line[i][fk],
				    "%s: a key of driver %s, but this [transport] has driver '%s' "
				    "(set on line %u)",
				    tkeys[fk], tkey_driver(fk), val, line);
		return 1;
	case TK_LISTEN:
		if (strlen(val) >= WARP_ADDR_STR_MAX)
			return fail(st, line, "listen: '%.40s...' is longer than %d characters", val,
				    WARP_ADDR_STR_MAX - 1);
		strcpy(t->listen, val);
		return 1;
	case TK_SOCK_BUF:
		if (!*val)
			return fail(st, line, "%s: empty value", name);
		if (parse_unsigned(st, name, val, K_SIZE, UINT32_MAX, &v))
			return 0;
		t->sock_buf_bytes = (uint32_t)v;
		return 1;
	case TK_REUSEPORT:
		if (parse_bool(val, &b))
			return fail(st, line, "reuseport: '%s' is not yes or no", val);
		t->flags = b ? (t->flags | WARP_TRANSPORT_REUSEPORT)
			     : (t->flags & ~WARP_TRANSPORT_REUSEPORT);
		return 1;
	case TK_UDP_GSO:
		if (parse_bool(val, &b))
			return fail(st, line, "udp_gso: '%s' is not yes or no", val);
		t->flags = b ? (t->flags & ~WARP_TRANSPORT_NO_UDP_GSO)
			     : (t->flags | WARP_TRANSPORT_NO_UDP_GSO);
		return 1;
	case TK_UDP_GRO:
		if (parse_bool(val, &b))
			return fail(st, line, "udp_gro: '%s' is not yes or no", val);
		t->flags = b ? (t->flags & ~WARP_TRANSPORT_NO_UDP_GRO)
			     : (t->flags | WARP_TRANSPORT_NO_UDP_GRO);
		return 1;
	case TK_URING_SETUP: {
		const uint32_t m = WARP_TRANSPORT_URING_COOP | WARP_TRANSPORT_URING_SQPOLL |
				   WARP_TRANSPORT_URING_PLAIN;
		uint32_t f;
		if (!strcmp(val, "defer"))
			f = 0;
		else if (!strcmp(val, "coop"))
			f = WARP_TRANSPORT_URING_COOP;
		else if (!strcmp(val, "sqpoll"))
			f = WARP_TRANSPORT_URING_SQPOLL;
		else if (!strcmp(val, "plain"))
			f = WARP_TRANSPORT_URING_PLAIN;
		else
			return fail(st, line,
				    "uring_setup: '%s' is not coop, defer, sqpoll or plain", val);
		t->flags = (t->flags & ~m) | f;
		return 1;
	}
	}
	return fail(st, line, "%s: internal error: unhandled key", name);
}

static int peer_key(struct ld *st, const char *name, const char *val)
{
	uint32_t line = st->lineno;
	uint32_t pi = st->f->cfg.n_peers - 1;
	warp_peer_config_t *p = &st->f->peers[pi];
	if (!strcmp(name, "encryption")) {
		if (st->penc_line[pi])
			return fail(st, line, "encryption: set twice in %s (first on line %u)",
				    st->sect_label, st->penc_line[pi]);
		st->penc_line[pi] = line;
		uint32_t e = parse_encryption(val);
		if (!e)
			return fail(st, line, "encryption: '%s' is not off, optional or required",
				    val);
		p->encryption = e;
		return 1;
	}
	if (strcmp(name, "transport") != 0)
		return fail(st, line, "%s: unknown key in %s", name, st->sect_label);
	size_t dl = strcspn(val, " \t");
	const char *addr = skip_blank(val + dl);
	size_t al = strcspn(addr, " \t");
	if (!*val || !*addr)
		return fail(st, line,
			    "transport: '%s': missing peer address (write 'transport = <driver> "
			    "<address>')",
			    val);
	if (*skip_blank(addr + al))
		return fail(st, line, "transport: '%s': expected '<driver> <address>'", val);
	if (p->n_transports >= WARP_MAX_TRANSPORTS)
		return fail(st, line, "transport: at most %d per peer", WARP_MAX_TRANSPORTS);
	if (dl >= WARP_DRIVER_NAME_MAX)
		return fail(st, line, "transport: driver '%.*s' is longer than %d characters",
			    (int)dl, val, WARP_DRIVER_NAME_MAX - 1);
	if (al >= WARP_ADDR_STR_MAX)
		return fail(st, line, "transport: address '%.40s...' is longer than %d characters",
			    addr, WARP_ADDR_STR_MAX - 1);
	uint32_t i = p->n_transports++;
	memcpy(p->transports[i].driver, val, dl);
	p->transports[i].driver[dl] = '\0';
	memcpy(p->transports[i].addr, addr, al);
	p->transports[i].addr[al] = '\0';
	st->f->peer_transport_line[pi][i] = line;
	return 1;
}

#if INI_HANDLER_LINENO
static int handler(void *user, const char *section, const char *name, const char *value,
		   int lineno)
#else
static int handler(void *user, const char *section, const char *name, const char *value)
#endif
{
	struct ld *st = user;
	(void)section; /* tracked by the reader (see the top of this file) */
#if INI_HANDLER_LINENO
	(void)lineno; /* equal to st->lineno: the reader feeds one line per call */
#endif
	if (st->failed)
		return 0;
	if (!value)
		value = "";
	switch (st->sect) {
	case S_ENGINE:
		return engine_key(st, name, value);
	case S_TRANSPORT:
		return transport_key(st, name, value);
	case S_PEER:
		return peer_key(st, name, value);
	case S_NONE:
		break;
	}
	return fail(st, st->lineno, "%s: key outside any section (put it under [engine])", name);
}

/* ---- after parsing --------------------------------------------------------- */

/* Every peer transport names a driver that has a [transport] here. */
static int check_peer_drivers(struct ld *st)
{
	const warp_config_t *c = &st->f->cfg;
	for (uint32_t i = 0; i < c->n_peers; i++) {
		const warp_peer_config_t *p = &st->f->peers[i];
		for (uint32_t j = 0; j < p->n_transports; j++) {
			uint32_t k;
			for (k = 0; k < c->n_transports; k++)
				if (!strcmp(c->transports[k].driver, p->transports[j].driver))
					break;
			if (k == c->n_transports) {
				fail(st, st->f->peer_transport_line[i][j],
				     "transport: driver '%s' of [peer %s] has no [transport] section "
				     "in this file",
				     p->transports[j].driver, p->node);
				return -1;
			}
		}
	}
	return 0;
}

/* The index of ekeys[] named `name` in the file. */
static size_t ekey_index(const char *name)
{
	size_t k;
	for (k = 0; k < N_EKEYS; k++)
		if (!strcmp(ekeys[k].name, name))
			break;
	return k;
}

/* Which key did warp_config_validate() complain about, and where was it set?
 * `token` is the leading name of its detail ("mtu", "idle", "transports"),
 * `detail` all of it. */
static uint32_t validate_line(const struct ld *st, const char *token, const char *detail,
			      const char **filekey)
{
	static const struct {
		const char *token;
		const char *keys[3]; /* first one set in the file wins */
	} alias[] = {
		{ "tx_arena_bytes", { "tx_arena_bytes", "max_payload_bytes", NULL } },
		{ "rx_arena_bytes", { "rx_arena_bytes", "max_payload_bytes", NULL } },
		{ "channel_ring_bytes", { "channel_ring_bytes", "max_payload_bytes", NULL } },
		/* a limit one key's default breaks because another key moved */
		{ "rx_window_bytes", { "rx_window_bytes", "max_payload_bytes", NULL } },
		{ "rto_initial_ns", { "rto_initial", "rto_min", "rto_max" } },
		{ "rto_max_ns", { "rto_max", "rto_min", NULL } },
		{ "breaker_success_threshold",
		  { "breaker_success_threshold", "breaker_half_open_max_calls", NULL } },
		{ "retry_max_backoff_ns", { "retry_max_backoff", "retry_initial_backoff", NULL } },
		{ "idle", { "idle_max_sleep", "idle_min_sleep", "idle" } },
		/* "required with tls.cert_file": unset, so the line that needs it */
		{ "tls.key_file", { "tls_key_file", "tls_cert_file", NULL } },
		{ "tls.ca_file", { "tls_ca_file", "tls_cert_file", NULL } },
	};
	const warp_config_t *c = &st->f->cfg;
	if (!strcmp(token, "encryption")) {
		/* "required, but tls.cert_file is not set": the engine's
		 * encryption = required, else the first peer's */
		uint32_t el = st->ekey_line[ekey_index("encryption")];
		if (el && c->encryption == WARP_ENCRYPTION_REQUIRED) {
			*filekey = "encryption";
			return el;
		}
		for (uint32_t i = 0; i < c->n_peers; i++)
			if (st->f->peers[i].encryption == WARP_ENCRYPTION_REQUIRED &&
			    st->penc_line[i]) {
				*filekey = "encryption";
				return st->penc_line[i];
			}
	}
	if (!strcmp(token, "caps")) {
		/* "caps[i].name: ..." or "caps[i] 'x': ...": the line of entry i */
		unsigned i;
		if (sscanf(detail, "caps[%u]", &i) == 1 && i < c->n_caps && i < WARP_MAX_CAPS &&
		    st->cap_line[i]) {
			*filekey = "cap";
			return st->cap_line[i];
		}
	}
	for (size_t a = 0; a < WARP__ARRAY_LEN(alias); a++) {
		if (strcmp(alias[a].token, token) != 0)
			continue;
		for (size_t j = 0; j < 3 && alias[a].keys[j]; j++)
			for (size_t k = 0; k < N_EKEYS; k++)
				if (!strcmp(ekeys[k].name, alias[a].keys[j]) && st->ekey_line[k]) {
					*filekey = ekeys[k].name;
					return st->ekey_line[k];
				}
		return 0;
	}
	for (size_t k = 0; k < N_EKEYS; k++)
		if ((!strcmp(ekeys[k].cfgkey, token) || !strcmp(ekeys[k].name, token)) &&
		    st->ekey_line[k]) {
			*filekey = ekeys[k].name;
			return st->ekey_line[k];
		}
	if (!strcmp(token, "peers")) {
		/* "peers: N listed, max_peers is M": the first peer too many */
		if (c->max_peers < c->n_peers) {
			*filekey = "[peer]";
			return st->f->peer_line[c->max_peers];
		}
	}
	return 0;
}

static int map_validate_error(struct ld *st, int rc)
{
	char d[512];
	snprintf(d, sizeof(d), "%s", warp_errdetail());
	char token[64];
	size_t n = strcspn(d, ":[ ");
	if (n >= sizeof(token))
		n = sizeof(token) - 1;
	memcpy(token, d, n);
	token[n] = '\0';
	const char *filekey = NULL;
	uint32_t line = validate_line(st, token, d, &filekey);
	if (!line)
		return warp__err(rc, "%s: %s", st->path, d);
	if (!strcmp(filekey, token))
		return warp__err(rc, "%s:%u: %s", st->path, line, d);
	return warp__err(rc, "%s:%u: %s: %s", st->path, line, filekey, d);
}

int warp_config_load(const char *path, warp_config_file_t *out)
{
	if (!path || !out)
		return warp__err(WARP_EINVAL, "config file: NULL argument");
	memset(out, 0, sizeof(*out));
	warp_config_init(&out->cfg);
	out->cfg.peers = out->peers;
	if (strlen(path) >= sizeof(out->path))
		return warp__err(WARP_ECONFIG, "%s: path longer than %zu characters", path,
				 sizeof(out->path) - 1);
	strcpy(out->path, path);

	struct ld *st = warp__calloc(1, sizeof(*st)); /* ~8 KiB of line tables */
	if (!st)
		return warp__err(WARP_ENOMEM, "%s: out of memory", path);
	st->path = path;
	st->f = out;
	int rc = 0;
	st->fp = fopen(path, "r");
	if (!st->fp) {
		rc = warp__err(WARP_ECONFIG, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	int irc = ini_parse_stream(reader, st, handler, st);
	if (!st->failed && !st->read_errno)
		end_section(st);
	if (st->read_errno) {
		rc = warp__err(st->read_errno == ENOMEM ? WARP_ENOMEM : WARP_ECONFIG,
			       "%s: cannot read: %s", path, strerror(st->read_errno));
	} else if (irc > 0 && (!st->failed || (uint32_t)irc < st->err_line)) {
		/* inih found an error our reader did not (it checks the same
		 * things, so this is a safety net) */
		rc = warp__err(WARP_ECONFIG, "%s:%d: syntax error", path, irc);
	} else if (irc < 0 && !st->failed) {
		rc = warp__err(irc == -2 ? WARP_ENOMEM : WARP_ECONFIG,
			       "%s: the INI parser failed (%d)", path, irc);
	} else if (st->failed) {
		rc = st->rc; /* the detail is set */
	} else if (check_peer_drivers(st)) {
		rc = st->rc;
	} else {
		rc = warp_config_validate(&out->cfg);
		if (rc)
			rc = map_validate_error(st, rc);
	}
out:
	if (st->fp)
		fclose(st->fp);
	free(st->buf); /* from getline() */
	warp__free(st);
	return rc;
}

/* ---- engine from a file ---------------------------------------------------- */

/* Rewrite warp_engine_create()'s detail as "<path>:<line>: ...": engine.c
 * prefixes transport errors with "transports[N]." or "transports[N] (...)"
 * and peer errors with "peers[N]: ". */
static void map_engine_error(const warp_config_file_t *f)
{
	char d[512];
	snprintf(d, sizeof(d), "%s", warp_errdetail());
	unsigned idx, k;
	int n = -1, m = -1;
	if (sscanf(d, "transports[%u]%n", &idx, &n) == 1 && n > 0 &&
	    idx < f->cfg.n_transports) {
		const char *rest = d + n;
		if (*rest == '.') {
			warp__err(0, "%s:%u: %s", f->path, f->transport_line[idx], rest + 1);
			return;
		}
		/* "transports[i] (drv, listen 'x'): listen ...": the driver could
		 * not use the listen address (unresolvable, port in use): the
		 * line of that key */
		const char *why = strstr(rest, "): ");
		if (why && !strncmp(why + 3, "listen", 6) && f->listen_line[idx]) {
			warp__err(0, "%s:%u: %s", f->path, f->listen_line[idx], why + 3);
			return;
		}
		warp__err(0, "%s:%u: [transport]%s", f->path, f->transport_line[idx], rest);
		return;
	}
	n = -1;
	if (sscanf(d, "peers[%u]: %n", &idx, &n) == 1 && n > 0 && idx < f->cfg.n_peers) {
		/* "peers[i]: peer 'b': transports[j] (drv): address ...": the line
		 * of the peer's j-th transport key */
		const char *t = strstr(d + n, ": transports[");
		if (t && sscanf(t, ": transports[%u]%n", &k, &m) == 1 && m > 0 &&
		    k < f->peers[idx].n_transports && f->peer_transport_line[idx][k]) {
			warp__err(0, "%s:%u: transport: %.*s%s", f->path,
				  f->peer_transport_line[idx][k], (int)(t - (d + n)), d + n, t + m);
			return;
		}
		warp__err(0, "%s:%u: %s", f->path, f->peer_line[idx], d + n);
		return;
	}
	warp__err(0, "%s: %s", f->path, d);
}

/* Internal (tests): create an engine from a loaded file, mapping the
 * engine's errors to file lines. Lets a caller set what a file cannot say
 * (driver_arg: the loop driver's net) between loading and creating. */
int warp__config_file_engine_create(const warp_config_file_t *f, warp_engine_t **out);
int warp__config_file_engine_create(const warp_config_file_t *f, warp_engine_t **out)
{
	if (!f || !out)
		return warp__err(WARP_EINVAL, "engine: NULL argument");
	warp_config_t c = f->cfg;
	c.peers = f->peers; /* in case the struct was copied */
	int rc = warp_engine_create(&c, out);
	if (rc)
		map_engine_error(f);
	return rc;
}

int warp_engine_create_from_file(const char *path, warp_engine_t **out)
{
	if (!path || !out)
		return warp__err(WARP_EINVAL, "engine: NULL argument");
	warp_config_file_t *f = warp__malloc(sizeof(*f));
	if (!f)
		return warp__err(WARP_ENOMEM, "%s: out of memory", path);
	int rc = warp_config_load(path, f);
	if (!rc)
		rc = warp__config_file_engine_create(f, out);
	warp__free(f);
	return rc;
}
