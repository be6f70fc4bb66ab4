/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "engine/pool.h"
#include "proto/cc.h"
#include "proto/wire.h"
#include "warp/config.h"
#include "warp/dpdk.h"
#include "warp/error.h"

int warp_config_init(warp_config_t *cfg)
{
	if (!cfg)
		return WARP_EINVAL;
	memset(cfg, 0, sizeof(*cfg));
	cfg->mtu = WARP_DEFAULT_MTU;
	cfg->max_payload_bytes = WARP_DEFAULT_MAX_PAYLOAD_BYTES;
	cfg->pkt_pool = WARP_DEFAULT_PKT_POOL;
	cfg->tx_arena_bytes = WARP_DEFAULT_TX_ARENA_BYTES;
	cfg->rx_arena_bytes = WARP_DEFAULT_RX_ARENA_BYTES;
	cfg->max_tx_msgs = WARP_DEFAULT_MAX_TX_MSGS;
	cfg->max_peers = WARP_DEFAULT_MAX_PEERS;
	cfg->max_streams = WARP_DEFAULT_MAX_STREAMS;
	cfg->max_reassembly = WARP_DEFAULT_MAX_REASSEMBLY;
	cfg->reassembly_timeout_ns = WARP_DEFAULT_REASSEMBLY_TIMEOUT_NS;
	cfg->rx_burst = WARP_DEFAULT_BURST;
	cfg->tx_burst = WARP_DEFAULT_BURST;
	cfg->submit_budget = WARP_DEFAULT_SUBMIT_BUDGET;
	cfg->max_channels = WARP_DEFAULT_MAX_CHANNELS;
	cfg->channel_ring_bytes = 0;
	cfg->timer_tick_ns = WARP_DEFAULT_TIMER_TICK_NS;
	cfg->timer_slots = WARP_DEFAULT_TIMER_SLOTS;
	cfg->heartbeat_interval_ns = WARP_DEFAULT_HEARTBEAT_INTERVAL_NS;
	cfg->default_guarantee = WARP_DEFAULT_GUARANTEE;
	cfg->ack_timeout_ns = WARP_DEFAULT_ACK_TIMEOUT_NS;
	cfg->max_retries = WARP_DEFAULT_MAX_RETRIES;
	cfg->rto_initial_ns = WARP_DEFAULT_RTO_INITIAL_NS;
	cfg->rto_min_ns = WARP_DEFAULT_RTO_MIN_NS;
	cfg->rto_max_ns = WARP_DEFAULT_RTO_MAX_NS;
	cfg->max_unacked_pkts = WARP_DEFAULT_MAX_UNACKED_PKTS;
	cfg->breaker_failure_threshold = WARP_DEFAULT_BREAKER_FAILURES;
	cfg->breaker_open_timeout_ns = WARP_DEFAULT_BREAKER_OPEN_NS;
	cfg->breaker_half_open_max_calls = WARP_DEFAULT_BREAKER_HALF_OPEN_CALLS;
	cfg->breaker_success_threshold = WARP_DEFAULT_BREAKER_SUCCESSES;
	cfg->heartbeat_miss_limit = WARP_DEFAULT_HEARTBEAT_MISSES;
	cfg->failover_after_rtos = WARP_DEFAULT_FAILOVER_RTOS;
	cfg->rx_window_bytes = WARP_DEFAULT_RX_WINDOW_BYTES;
	strcpy(cfg->congestion, "aimd");
	cfg->stream_window_msgs = WARP_DEFAULT_STREAM_WINDOW_MSGS;
	cfg->failback_probe_ns = WARP_DEFAULT_FAILBACK_PROBE_NS;
	cfg->connect_timeout_ns = WARP_DEFAULT_CONNECT_TIMEOUT_NS;
	cfg->retry_initial_backoff_ns = WARP_DEFAULT_RETRY_INITIAL_BACKOFF_NS;
	cfg->retry_max_backoff_ns = WARP_DEFAULT_RETRY_MAX_BACKOFF_NS;
	cfg->idle.kind = WARP_IDLE_BACKOFF;
	cfg->idle.spins = WARP_DEFAULT_IDLE_SPINS;
	cfg->idle.yields = WARP_DEFAULT_IDLE_YIELDS;
	cfg->idle.min_sleep_ns = WARP_DEFAULT_IDLE_MIN_SLEEP_NS;
	cfg->idle.max_sleep_ns = WARP_DEFAULT_IDLE_MAX_SLEEP_NS;
	cfg->cpu = -1;
	cfg->encryption = WARP_ENCRYPTION_OPTIONAL;
	cfg->tls.verify_peer = 1;
	cfg->tls.resumption = 1;
	strcpy(cfg->tls.ciphers, "aes-128-gcm:chacha20-poly1305");
	cfg->key_update_packets = WARP_DEFAULT_KEY_UPDATE_PACKETS;
	cfg->max_handshakes = WARP_DEFAULT_MAX_HANDSHAKES;
	return 0;
}

/* tls.ciphers: fills *suites (WARP_TLS_* bits of crypto/tls.h: 1 = AES,
 * 2 = ChaCha) and *chacha_first; 0 or -1 (bad). */
int warp__tls_ciphers_parse(const char *s, unsigned *suites, bool *chacha_first)
{
	*suites = 0;
	*chacha_first = false;
	const char *p = s;
	while (*p) {
		size_t n = strcspn(p, ":");
		unsigned bit = 0;
		if (n == 11 && strncmp(p, "aes-128-gcm", n) == 0)
			bit = 1;
		else if (n == 17 && strncmp(p, "chacha20-poly1305", n) == 0)
			bit = 2;
		if (!bit || (*suites & bit))
			return -1;
		if (!*suites && bit == 2)
			*chacha_first = true;
		*suites |= bit;
		p += n;
		if (*p == ':' && !*++p)
			return -1;
	}
	return *suites ? 0 : -1;
}

static int security_validate(const warp_config_t *c)
{
	if (c->encryption < WARP_ENCRYPTION_OFF || c->encryption > WARP_ENCRYPTION_REQUIRED)
		return warp__err(WARP_ECONFIG,
				 "encryption: %u is not 1 (off), 2 (optional) or 3 (required)",
				 c->encryption);
	bool required = c->encryption == WARP_ENCRYPTION_REQUIRED;
	for (uint32_t i = 0; i < c->n_peers && c->peers; i++) {
		if (c->peers[i].encryption > WARP_ENCRYPTION_REQUIRED)
			return warp__err(WARP_ECONFIG,
					 "peer '%.63s': encryption: %u is not 0 (engine's), 1 (off), "
					 "2 (optional) or 3 (required)",
					 c->peers[i].node, c->peers[i].encryption);
		if (c->peers[i].encryption == WARP_ENCRYPTION_REQUIRED)
			required = true;
	}
	const warp_tls_config_t *t = &c->tls;
	if (strnlen(t->cert_file, sizeof(t->cert_file)) == sizeof(t->cert_file) ||
	    strnlen(t->key_file, sizeof(t->key_file)) == sizeof(t->key_file) ||
	    strnlen(t->ca_file, sizeof(t->ca_file)) == sizeof(t->ca_file) ||
	    strnlen(t->ciphers, sizeof(t->ciphers)) == sizeof(t->ciphers))
		return warp__err(WARP_ECONFIG, "tls: a path or the cipher list is not terminated");
	if (t->cert_file[0]) {
#ifndef WARP_HAVE_TLS
		return warp__err(WARP_ECONFIG,
				 "tls.cert_file: set, but this libwarp was built without TLS "
				 "(OpenSSL 3 not found at build time)");
#endif
		if (!t->key_file[0])
			return warp__err(WARP_ECONFIG, "tls.key_file: required with tls.cert_file");
		if (t->verify_peer && !t->ca_file[0])
			return warp__err(WARP_ECONFIG,
					 "tls.ca_file: required with tls.cert_file when verify_peer is "
					 "on (the CA that signs the peers)");
	} else if (required) {
		return warp__err(WARP_ECONFIG,
				 "encryption: required, but tls.cert_file is not set (encryption "
				 "needs this node's certificate, key and CA)");
	}
	if (t->verify_peer > 1)
		return warp__err(WARP_ECONFIG, "tls.verify_peer: %u is not 0 or 1", t->verify_peer);
	if (t->resumption > 1)
		return warp__err(WARP_ECONFIG, "tls.resumption: %u is not 0 or 1", t->resumption);
	unsigned suites;
	bool cf;
	if (warp__tls_ciphers_parse(t->ciphers, &suites, &cf))
		return warp__err(WARP_ECONFIG,
				 "tls.ciphers: '%s' is not a ':'-separated list of aes-128-gcm and "
				 "chacha20-poly1305",
				 t->ciphers);
	if (c->key_update_packets < 16 || c->key_update_packets > (1ull << 40))
		return warp__err(WARP_ECONFIG, "key_update_packets: %llu is outside 16..2^40",
				 (unsigned long long)c->key_update_packets);
	if (c->max_handshakes < 1 || c->max_handshakes > 65536)
		return warp__err(WARP_ECONFIG, "max_handshakes: %u is outside 1..65536",
				 c->max_handshakes);
	if (c->n_caps > WARP_MAX_CAPS)
		return warp__err(WARP_ECONFIG, "caps: %u listed, at most %d", c->n_caps,
				 WARP_MAX_CAPS);
	for (uint32_t i = 0; i < c->n_caps; i++) {
		const warp_cap_config_t *k = &c->caps[i];
		size_t n = strnlen(k->name, sizeof(k->name));
		bool ok = n >= 1 && n < sizeof(k->name);
		for (size_t j = 0; ok && j < n; j++) {
			char ch = k->name[j];
			ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
			     ch == '.' || ch == '-';
		}
		if (!ok)
			return warp__err(WARP_ECONFIG,
					 "caps[%u].name: '%.31s' is not 1..31 of [a-z0-9_.-]", i,
					 k->name);
		if (strcmp(k->name, "warp") == 0 || strcmp(k->name, "encryption") == 0)
			return warp__err(WARP_ECONFIG,
					 "caps[%u].name: '%s' is built in (set encryption instead)", i,
					 k->name);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(c->caps[j].name, k->name) == 0)
				return warp__err(WARP_ECONFIG, "caps[%u].name: '%s' listed twice", i,
						 k->name);
		if (k->min < 1 || k->min > k->max)
			return warp__err(WARP_ECONFIG,
					 "caps[%u] '%s': versions %u..%u (need 1 <= min <= max)", i,
					 k->name, k->min, k->max);
		if (k->required > 1)
			return warp__err(WARP_ECONFIG, "caps[%u] '%s': required: %u is not 0 or 1",
					 i, k->name, k->required);
	}
	return 0;
}

/* Here rather than in drivers/dpdk: the file loader fills a dpdk transport's
 * settings on top of these defaults, and it is built with or without DPDK. */
void warp_dpdk_config_init(warp_dpdk_config_t *c)
{
	if (!c)
		return;
	memset(c, 0, sizeof(*c));
	/* Everything else is 0 = "automatic" (warp/dpdk.h). */
	c->in_memory = true;
	c->udp_checksum = true;
}

int warp_config_add_transport(warp_config_t *cfg, const char *driver, const char *listen,
			      void *driver_arg)
{
	if (!cfg || !driver || !listen)
		return warp__err(WARP_EINVAL, "transport: driver and listen address are required");
	if (cfg->n_transports >= WARP_MAX_TRANSPORTS)
		return warp__err(WARP_EINVAL, "transports: at most %d", WARP_MAX_TRANSPORTS);
	if (strlen(driver) >= WARP_DRIVER_NAME_MAX)
		return warp__err(WARP_EINVAL, "transport driver '%s': longer than %d characters",
				 driver, WARP_DRIVER_NAME_MAX - 1);
	if (strlen(listen) >= WARP_ADDR_STR_MAX)
		return warp__err(WARP_EINVAL, "transport listen '%s': longer than %d characters",
				 listen, WARP_ADDR_STR_MAX - 1);
	warp_transport_config_t *t = &cfg->transports[cfg->n_transports++];
	memset(t, 0, sizeof(*t));
	strcpy(t->driver, driver);
	strcpy(t->listen, listen);
	t->driver_arg = driver_arg;
	return 0;
}

/* Node names: [A-Za-z0-9._-]{1,63}. Returns the first bad character or 0. */
int warp__node_name_check(const char *s, size_t n);
int warp__node_name_check(const char *s, size_t n)
{
	if (n == 0)
		return -1;
	if (n >= WARP_NODE_MAX)
		return -2;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return (unsigned char)c;
	}
	return 0;
}

#define RANGE(key, v, lo, hi)                                                                  \
	do {                                                                                   \
		if ((uint64_t)(v) < (uint64_t)(lo) || (uint64_t)(v) > (uint64_t)(hi))          \
			return warp__err(WARP_ECONFIG, "%s: %llu is outside %llu..%llu", key,     \
					 (unsigned long long)(v), (unsigned long long)(lo),    \
					 (unsigned long long)(hi));                            \
	} while (0)

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int warp_config_validate(const warp_config_t *c)
{
	if (!c)
		return warp__err(WARP_ECONFIG, "config: NULL");
	size_t nl = strnlen(c->node_id, WARP_NODE_MAX);
	int bad = warp__node_name_check(c->node_id, nl);
	if (bad == -1)
		return warp__err(WARP_ECONFIG, "node_id: required");
	if (bad == -2)
		return warp__err(WARP_ECONFIG, "node_id: longer than %d characters", WARP_NODE_MAX - 1);
	if (bad > 0)
		return warp__err(WARP_ECONFIG,
				 "node_id '%s': invalid character '%c' (allowed: A-Z a-z 0-9 . _ -)",
				 c->node_id, bad);
	if (c->n_transports == 0)
		return warp__err(WARP_ECONFIG, "transports: at least one transport is required");
	RANGE("n_transports", c->n_transports, 1, WARP_MAX_TRANSPORTS);
	for (uint32_t i = 0; i < c->n_transports; i++) {
		if (strnlen(c->transports[i].driver, WARP_DRIVER_NAME_MAX) == 0)
			return warp__err(WARP_ECONFIG, "transports[%u].driver: required", i);
		if (strnlen(c->transports[i].driver, WARP_DRIVER_NAME_MAX) >= WARP_DRIVER_NAME_MAX ||
		    strnlen(c->transports[i].listen, WARP_ADDR_STR_MAX) >= WARP_ADDR_STR_MAX)
			return warp__err(WARP_ECONFIG, "transports[%u]: string not terminated", i);
	}
	RANGE("mtu", c->mtu, WARP_WIRE_MIN_MTU, WARP_WIRE_MAX_MTU);
	RANGE("max_payload_bytes", c->max_payload_bytes, 1, UINT32_MAX);
	RANGE("pkt_pool", c->pkt_pool, 64, 1u << 24);
	RANGE("max_tx_msgs", c->max_tx_msgs, 16, 1u << 24);
	RANGE("max_peers", c->max_peers, 1, 1u << 16);
	RANGE("max_streams", c->max_streams, 1, 65536);
	RANGE("max_reassembly", c->max_reassembly, 1, 1u << 20);
	RANGE("reassembly_timeout_ns", c->reassembly_timeout_ns, 1000000ull, 3600000000000ull);
	RANGE("rx_burst", c->rx_burst, 1, 256);
	RANGE("tx_burst", c->tx_burst, 1, 256);
	RANGE("submit_budget", c->submit_budget, 1, 1u << 20);
	RANGE("max_channels", c->max_channels, 1, 1024);
	RANGE("timer_tick_ns", c->timer_tick_ns, 1000, 1000000000ull);
	if (c->default_guarantee > 2)
		return warp__err(WARP_ECONFIG,
				 "default_guarantee: %u is not 0 (at-most-once), 1 (at-least-once) "
				 "or 2 (exactly-once)",
				 c->default_guarantee);
	if (c->ack_timeout_ns > 3600000000000ull)
		return warp__err(WARP_ECONFIG, "ack_timeout_ns: above one hour");
	if (c->max_retries > 1000000)
		return warp__err(WARP_ECONFIG, "max_retries: %u is above 1000000", c->max_retries);
	RANGE("rto_min_ns", c->rto_min_ns, 1000ull, 60000000000ull);
	RANGE("rto_max_ns", c->rto_max_ns, c->rto_min_ns, 600000000000ull);
	RANGE("rto_initial_ns", c->rto_initial_ns, c->rto_min_ns, c->rto_max_ns);
	if (!is_pow2(c->max_unacked_pkts) || c->max_unacked_pkts < 16 || c->max_unacked_pkts > 65536)
		return warp__err(WARP_ECONFIG,
				 "max_unacked_pkts: %u is not a power of two in 16..65536",
				 c->max_unacked_pkts);
	if (c->breaker_failure_threshold) {
		RANGE("breaker_open_timeout_ns", c->breaker_open_timeout_ns, 1000ull, 3600000000000ull);
		RANGE("breaker_half_open_max_calls", c->breaker_half_open_max_calls, 1, 1000000);
		RANGE("breaker_success_threshold", c->breaker_success_threshold, 1,
		      c->breaker_half_open_max_calls);
	}
	RANGE("heartbeat_miss_limit", c->heartbeat_miss_limit, 1, 1000000);
	RANGE("failover_after_rtos", c->failover_after_rtos, 1, 30);
	RANGE("stream_window_msgs", c->stream_window_msgs, 4, 1u << 24);
	if (strnlen(c->congestion, sizeof(c->congestion)) == sizeof(c->congestion) ||
	    !warp__cc_find(c->congestion))
		return warp__err(WARP_ECONFIG, "congestion: '%.15s' is not aimd or none",
				 c->congestion);

	RANGE("failback_probe_ns", c->failback_probe_ns, 100000ull, 3600000000000ull);
	RANGE("connect_timeout_ns", c->connect_timeout_ns, 1000000ull, 600000000000ull);
	RANGE("retry_initial_backoff_ns", c->retry_initial_backoff_ns, 1000ull, 600000000000ull);
	if (c->retry_max_backoff_ns < c->retry_initial_backoff_ns)
		return warp__err(WARP_ECONFIG, "retry_max_backoff_ns: %llu is below retry_initial_backoff_ns %llu",
				 (unsigned long long)c->retry_max_backoff_ns,
				 (unsigned long long)c->retry_initial_backoff_ns);
	if (!is_pow2(c->timer_slots) || c->timer_slots < 16 || c->timer_slots > (1u << 20))
		return warp__err(WARP_ECONFIG, "timer_slots: %u is not a power of two in 16..1048576",
				 c->timer_slots);
	if (c->tx_arena_bytes < c->max_payload_bytes)
		return warp__err(WARP_ECONFIG,
				 "tx_arena_bytes: %llu cannot hold one max_payload_bytes (%llu) message",
				 (unsigned long long)c->tx_arena_bytes,
				 (unsigned long long)c->max_payload_bytes);
	if (c->rx_arena_bytes < c->max_payload_bytes)
		return warp__err(WARP_ECONFIG,
				 "rx_arena_bytes: %llu cannot hold one max_payload_bytes (%llu) message",
				 (unsigned long long)c->rx_arena_bytes,
				 (unsigned long long)c->max_payload_bytes);
	RANGE("tx_arena_bytes", c->tx_arena_bytes, 4096, 1ull << 36);
	{
		/* the arena is rounded up to a power of two; a message of
		 * max_payload_bytes also needs its fragment map, else it never
		 * finds room (its send says WARP_EAGAIN for ever, and a channel
		 * stalls on it) */
		uint64_t arena = warp__buddy_arena_size(c->tx_arena_bytes);
		uint64_t need = warp__tx_block_bytes(c->max_payload_bytes,
						     warp__stream_payload_max(c->mtu));
		if (need > arena)
			return warp__err(WARP_ECONFIG,
					 "tx_arena_bytes: %llu (a %llu-byte arena) cannot hold one "
					 "max_payload_bytes (%llu) message, which takes %llu bytes "
					 "with its fragment map: give at least %llu",
					 (unsigned long long)c->tx_arena_bytes,
					 (unsigned long long)arena,
					 (unsigned long long)c->max_payload_bytes,
					 (unsigned long long)need,
					 (unsigned long long)warp__buddy_arena_size(need));
	}
	RANGE("rx_arena_bytes", c->rx_arena_bytes, 4096, 1ull << 36);
	if (c->channel_ring_bytes &&
	    (!is_pow2(c->channel_ring_bytes) ||
	     c->channel_ring_bytes / 2 < c->max_payload_bytes + 64))
		return warp__err(WARP_ECONFIG,
				 "channel_ring_bytes: %zu must be a power of two of at least twice "
				 "max_payload_bytes + 64 (%llu), or 0 for automatic",
				 c->channel_ring_bytes,
				 (unsigned long long)(2 * (c->max_payload_bytes + 64)));
	if (c->idle.kind != WARP_IDLE_SPIN && c->idle.kind != WARP_IDLE_YIELD &&
	    c->idle.kind != WARP_IDLE_BACKOFF)
		return warp__err(WARP_ECONFIG, "idle.kind: %d is not spin, yield or backoff",
				 (int)c->idle.kind);
	if (c->idle.kind == WARP_IDLE_BACKOFF &&
	    (c->idle.min_sleep_ns == 0 || c->idle.max_sleep_ns < c->idle.min_sleep_ns))
		return warp__err(WARP_ECONFIG,
				 "idle: min_sleep_ns must be > 0 and <= max_sleep_ns (%llu, %llu)",
				 (unsigned long long)c->idle.min_sleep_ns,
				 (unsigned long long)c->idle.max_sleep_ns);
	if (c->rx_window_bytes < c->max_payload_bytes || c->rx_window_bytes > UINT32_MAX)
		return warp__err(WARP_ECONFIG,
				 "rx_window_bytes: %llu must hold one max_payload_bytes message (%llu) "
				 "and fit 32 bits",
				 (unsigned long long)c->rx_window_bytes,
				 (unsigned long long)c->max_payload_bytes);
	if (c->n_peers && !c->peers)
		return warp__err(WARP_ECONFIG, "peers: n_peers is %u but peers is NULL", c->n_peers);
	if (c->n_peers > c->max_peers)
		return warp__err(WARP_ECONFIG, "peers: %u listed, max_peers is %u", c->n_peers,
				 c->max_peers);
	for (size_t i = 0; i < sizeof(c->reserved); i++)
		if (c->reserved[i])
			return warp__err(WARP_ECONFIG, "reserved: must be zero");
	return security_validate(c);
}
