/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file warp/config.h
 * Engine configuration. Fill with warp_config_init() (documented defaults,
 * all named below), override what you need, pass to warp_engine_create().
 * The engine copies what it needs; the struct may be freed afterwards.
 * Reserved fields must stay zero so the struct can grow.
 */
#ifndef WARP_CONFIG_H
#define WARP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "warp/dpdk.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WARP_NODE_MAX 64       /* node id length incl. NUL */
#define WARP_DRIVER_NAME_MAX 16
#define WARP_ADDR_STR_MAX 128
#define WARP_MAX_TRANSPORTS 4  /* per engine and per peer */

/* Defaults (units in the names). */
#define WARP_DEFAULT_MTU 1472                      /* bytes of one warp packet (UDP payload on 1500-byte Ethernet) */
#define WARP_DEFAULT_MAX_PAYLOAD_BYTES (8u << 20)  /* largest message */
#define WARP_DEFAULT_PKT_POOL 4096                 /* packet buffers per engine */
#define WARP_DEFAULT_TX_ARENA_BYTES (32u << 20)    /* queued outgoing message bytes */
#define WARP_DEFAULT_RX_ARENA_BYTES (32u << 20)    /* partially received message bytes */
#define WARP_DEFAULT_MAX_TX_MSGS 65536             /* queued outgoing messages */
#define WARP_DEFAULT_MAX_PEERS 64
#define WARP_DEFAULT_MAX_STREAMS 64                /* per peer */
#define WARP_DEFAULT_MAX_REASSEMBLY 256            /* partial messages at once */
#define WARP_DEFAULT_REASSEMBLY_TIMEOUT_NS 5000000000ull
#define WARP_DEFAULT_BURST 32                      /* packets per rx/tx burst */
#define WARP_DEFAULT_SUBMIT_BUDGET 256             /* channel records drained per poll */
#define WARP_DEFAULT_MAX_CHANNELS 8
#define WARP_DEFAULT_TIMER_TICK_NS 100000ull        /* timing wheel resolution: 100 us */
#define WARP_DEFAULT_TIMER_SLOTS 4096
#define WARP_DEFAULT_HEARTBEAT_INTERVAL_NS 0ull    /* 0 = no heartbeats (reliability issue turns them on) */
#define WARP_DEFAULT_GUARANTEE 1                 /* WARP_AT_LEAST_ONCE */
#define WARP_DEFAULT_ACK_TIMEOUT_NS 5000000000ull  /* give a message up after 5 s unacknowledged */
#define WARP_DEFAULT_MAX_RETRIES 20                /* resends of a message's fragments before giving up */
#define WARP_DEFAULT_RTO_INITIAL_NS 20000000ull    /* retransmission timeout before any RTT sample */
#define WARP_DEFAULT_RTO_MIN_NS 1000000ull         /* lower bound of the retransmission timeout */
#define WARP_DEFAULT_RTO_MAX_NS 1000000000ull      /* upper bound, back-off included */
#define WARP_DEFAULT_MAX_UNACKED_PKTS 1024         /* per peer: packets in flight (a power of two) */
#define WARP_DEFAULT_BREAKER_FAILURES 5           /* consecutive failures that open a circuit (0 = no breaker) */
#define WARP_DEFAULT_BREAKER_OPEN_NS 1000000000ull /* open -> half-open after */
#define WARP_DEFAULT_BREAKER_HALF_OPEN_CALLS 3     /* trial sends allowed while half-open */
#define WARP_DEFAULT_BREAKER_SUCCESSES 2           /* successes in half-open that close it */
#define WARP_DEFAULT_HEARTBEAT_MISSES 3            /* heartbeat intervals of silence: peer down */
#define WARP_DEFAULT_RX_WINDOW_BYTES (16u << 20)
#define WARP_DEFAULT_STREAM_WINDOW_MSGS 4096       /* per ordered stream: messages ahead of delivery */  /* flow control: most bytes a peer may have in flight to us */
#define WARP_DEFAULT_FAILOVER_RTOS 3              /* consecutive timeouts on a transport before failing over */
#define WARP_DEFAULT_FAILBACK_PROBE_NS 100000000ull /* probe the first transport every 100 ms */
#define WARP_DEFAULT_CONNECT_TIMEOUT_NS 1000000000ull /* stream transports: one connect attempt */
#define WARP_DEFAULT_RETRY_INITIAL_BACKOFF_NS 10000000ull  /* stream transports: first reconnect back-off */
#define WARP_DEFAULT_RETRY_MAX_BACKOFF_NS 1000000000ull /* ... doubling (with jitter) up to */
#define WARP_DEFAULT_IDLE_SPINS 1000               /* back-off idle: empty polls spinning */
#define WARP_DEFAULT_IDLE_YIELDS 100               /* ... then sched_yield() calls */
#define WARP_DEFAULT_IDLE_MIN_SLEEP_NS 1000ull     /* ... then sleeps doubling from */
#define WARP_DEFAULT_IDLE_MAX_SLEEP_NS 1000000ull  /* ... up to */

#define WARP_DEFAULT_KEY_UPDATE_PACKETS (1ull << 22) /* packets under one key before a key update */
#define WARP_DEFAULT_MAX_HANDSHAKES 16             /* handshakes in progress at once */

/* Encryption policy (warp_config_t.encryption, warp_peer_config_t.encryption).
 * A node offers encryption when its policy is optional or required and it
 * has TLS configured (tls.cert_file); the session is encrypted when both
 * offer it. Required: a peer that does not offer it is refused (both sides
 * fail the handshake, naming the capability). Optional is not safe against
 * a downgrade on the path (the offer travels before TLS); use required
 * where the network is not trusted. */
#define WARP_ENCRYPTION_DEFAULT 0  /* peers only: the engine's policy */
#define WARP_ENCRYPTION_OFF 1
#define WARP_ENCRYPTION_OPTIONAL 2 /* engine default */
#define WARP_ENCRYPTION_REQUIRED 3

#define WARP_PATH_MAX 256
/** Mutual TLS 1.3 of the handshake (docs/security.md). */
typedef struct warp_tls_config {
	char cert_file[WARP_PATH_MAX]; /* PEM certificate (chain) naming this node; "" = no TLS */
	char key_file[WARP_PATH_MAX];  /* PEM private key of cert_file */
	char ca_file[WARP_PATH_MAX];   /* PEM CA certificate(s) that sign the peers */
	uint32_t verify_peer;          /* 1 (default): check the peer's certificate chain and that
					  it names the peer's node id; 0: accept any (tests only) */
	char ciphers[64];              /* "aes-128-gcm", "chacha20-poly1305", or both separated by
					  ':' in order of preference (default: "aes-128-gcm:chacha20-poly1305") */
	uint32_t resumption;           /* 1 (default): a reconnect resumes the last session with its
					  ticket (no certificates exchanged); 0: always a full handshake,
					  on either side (as initiator it offers no ticket, as responder
					  it takes none) */
} warp_tls_config_t;

#define WARP_MAX_CAPS 8
/** A capability this node offers in its HELLO, beside the built-in ones
 *  ("warp", the wire protocol; "encryption"): the highest version in both
 *  nodes' ranges is chosen (warp_peer_capability()); with none in common a
 *  required one fails the handshake. */
typedef struct warp_cap_config {
	char name[32];     /* [a-z0-9_.-]{1,31} */
	uint16_t min, max; /* 1 <= min <= max */
	uint32_t required; /* 1: no common version fails the connection */
} warp_cap_config_t;

/** What the engine thread does when a poll found no work. */
typedef enum warp_idle_kind {
	WARP_IDLE_SPIN = 0,    /* busy-poll: lowest latency, one core at 100 % */
	WARP_IDLE_YIELD = 1,   /* sched_yield() between empty polls */
	WARP_IDLE_BACKOFF = 2, /* spin, then yield, then sleep with exponential back-off */
} warp_idle_kind_t;

typedef struct warp_idle_config {
	warp_idle_kind_t kind;
	uint32_t spins;        /* BACKOFF: empty polls spun before yielding */
	uint32_t yields;       /* BACKOFF: yields before sleeping */
	uint64_t min_sleep_ns; /* BACKOFF: first sleep */
	uint64_t max_sleep_ns; /* BACKOFF: sleep cap; the latency added to the first message after idling */
} warp_idle_config_t;

/** A clock in nanoseconds; NULL in the config means the engine clock (the
 *  invariant TSC calibrated against CLOCK_MONOTONIC, else CLOCK_MONOTONIC). Tests
 *  pass a manual clock to drive timers deterministically. */
typedef uint64_t (*warp_clock_fn)(void *arg);

/** One transport of the engine: a driver instance and its local address. */
typedef struct warp_transport_config {
	char driver[WARP_DRIVER_NAME_MAX]; /* "loop", later "uring-udp", "uring-tcp", "dpdk" */
	char listen[WARP_ADDR_STR_MAX];    /* driver-specific local address, e.g. "127.0.0.1:7000" */
	void *driver_arg;                  /* driver-specific (loop: the warp_loop_net_t *; required) */
	uint32_t flags;                    /* WARP_TRANSPORT_* */
	uint32_t sock_buf_bytes;           /* socket drivers: SO_RCVBUF/SO_SNDBUF; 0 = WARP_DEFAULT_SOCK_BUF_BYTES (uring-udp), the kernel's autotuning (uring-tcp) */
} warp_transport_config_t;

#define WARP_TRANSPORT_REUSEPORT 0x1u /* socket drivers: SO_REUSEPORT, so several engines share a port */
/* io_uring ring setup (docs/benchmarking-baselines.md has the measurements).
 * Default (none of these): SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG, the
 * fastest and with the best tails on the project's VM. The ring is enabled
 * by the first poll, and that thread must poll the engine for its whole
 * life: warp_engine_start() after polling inline (or polling inline after
 * warp_engine_stop()) fails with WARP_ESTATE. */
#define WARP_TRANSPORT_URING_COOP 0x2u   /* COOP_TASKRUN | TASKRUN_FLAG: ~1 us slower, any
					    thread may poll */
#define WARP_TRANSPORT_URING_SQPOLL 0x4u /* a kernel thread polls submissions (costs a core) */
#define WARP_TRANSPORT_URING_PLAIN 0x8u  /* no setup flags (for measurement only) */
/* uring-udp: no UDP segmentation offload. By default a burst's packets of
 * one length to one peer leave in one UDP_SEGMENT send (one pass through the
 * kernel's stack; the NIC or the kernel cuts the datagrams). Set this when a
 * DPDK node reads the other end of a veth on this host with af_packet or
 * af_xdp: such a reader gets the unsegmented frame and cannot take it. */
#define WARP_TRANSPORT_NO_UDP_GSO 0x10u
/* uring-udp: no UDP generic receive offload. By default the socket takes
 * UDP_GRO: datagrams of one flow and one size that arrive together (from a
 * NIC's GRO, or a GSO send over loopback) come up as one receive of up to
 * 64 KiB, which the driver cuts back into packets. The receive buffers are
 * then 64 KiB each (128 of them, 8 MiB per transport, against 1024 of
 * MTU + 128 bytes without). */
#define WARP_TRANSPORT_NO_UDP_GRO 0x20u
#define WARP_DEFAULT_SOCK_BUF_BYTES (4u << 20)

/** A peer known at start-up. */
typedef struct warp_peer_config {
	char node[WARP_NODE_MAX]; /* node id */
	struct {
		char driver[WARP_DRIVER_NAME_MAX];
		char addr[WARP_ADDR_STR_MAX];
	} transports[WARP_MAX_TRANSPORTS]; /* in order of preference */
	uint32_t n_transports;
	uint32_t fallback; /* WARP_FALLBACK_*: what to do when the active transport stops working */
	uint32_t encryption; /* WARP_ENCRYPTION_*; DEFAULT (0) = the engine's policy */
} warp_peer_config_t;

/* Fallback strategies of a peer (warp_peer_config_t.fallback). */
#define WARP_FALLBACK_FAILOVER 0      /* move to the next transport in the list; probe the first
					 and move back when it answers (default) */
#define WARP_FALLBACK_RETRY_PRIMARY 1 /* stay on the first transport; reliability resends there */
#define WARP_FALLBACK_NONE 2          /* stay on the first transport */

typedef struct warp_config {
	char node_id[WARP_NODE_MAX]; /* this node's id: [A-Za-z0-9._-]{1,63}; required */
	warp_transport_config_t transports[WARP_MAX_TRANSPORTS];
	uint32_t n_transports; /* at least one */

	uint32_t mtu;               /* bytes per warp packet, WARP_WIRE_MIN_MTU..WARP_WIRE_MAX_MTU */
	uint64_t max_payload_bytes; /* largest message; larger sends fail with WARP_ETOOBIG */
	uint32_t pkt_pool;          /* packet buffers */
	uint64_t tx_arena_bytes;    /* must hold at least one max_payload_bytes message */
	uint64_t rx_arena_bytes;    /* must hold at least one max_payload_bytes message */
	uint32_t max_tx_msgs;
	uint32_t max_peers;
	uint32_t max_streams;       /* per peer */
	uint32_t max_reassembly;
	uint64_t reassembly_timeout_ns;
	uint32_t rx_burst;          /* 1..256 */
	uint32_t tx_burst;          /* 1..256 */
	uint32_t submit_budget;     /* records handled per channel per poll */
	uint32_t max_channels;
	size_t channel_ring_bytes;  /* 0 = smallest power of two holding two max-size records */
	uint64_t timer_tick_ns;
	uint32_t timer_slots;       /* power of two */
	uint64_t heartbeat_interval_ns;
	uint32_t default_guarantee;   /* WARP_AT_MOST_ONCE, WARP_AT_LEAST_ONCE, WARP_EXACTLY_ONCE */
	uint64_t ack_timeout_ns;      /* reliable streams: a message unacknowledged this long times out */
	uint32_t max_retries;         /* reliable streams: resends before a message times out */
	uint64_t rto_initial_ns, rto_min_ns, rto_max_ns;
	uint32_t max_unacked_pkts;    /* per peer, a power of two */
	uint32_t breaker_failure_threshold; /* consecutive failed messages (timed out) that open a
					       peer's circuit; 0 = no circuit breaker */
	uint64_t breaker_open_timeout_ns;   /* open -> half-open after this long */
	uint32_t breaker_half_open_max_calls; /* trial sends while half-open */
	uint32_t breaker_success_threshold; /* acknowledged trial sends that close it again */
	uint32_t heartbeat_miss_limit;      /* intervals without any packet from a peer: down */
	uint32_t stream_window_msgs;        /* flow control per ordered stream: a sender may be this
					       many messages ahead of what the receiver delivered */
	char congestion[16];                /* "aimd" (default) or "none" (dedicated links) */
	uint64_t rx_window_bytes;           /* flow control: the most a peer may have in flight to this
					       engine (less when the receive arena is fuller); also the
					       most a sender queues per peer before WARP_EAGAIN */
	uint32_t failover_after_rtos;       /* consecutive retransmission timeouts that fail a peer
					       over to its next transport */
	uint64_t failback_probe_ns;         /* while failed over: probe the first transport this often */
	uint64_t connect_timeout_ns;  /* one connect attempt of a stream transport, and one
					 handshake attempt */
	/* Retry policy (stream transports reconnect with it, handshakes are
	 * retried with it after a failure): exponential
	 * back-off from retry_initial_backoff_ns doubling to retry_max_backoff_ns,
	 * each wait jittered to between half and all of its value; at most
	 * retry_max_attempts consecutive failed attempts (0 = no limit). */
	uint64_t retry_initial_backoff_ns;
	uint64_t retry_max_backoff_ns;
	uint32_t retry_max_attempts;

	/* Secure sessions (docs/security.md). Every connection starts with a
	 * handshake (HELLO: node ids, capabilities; then TLS 1.3 when both
	 * offer encryption) that must finish within connect_timeout_ns; a
	 * failed one is retried with the retry policy's back-off. */
	uint32_t encryption;          /* WARP_ENCRYPTION_OFF / OPTIONAL (default) / REQUIRED */
	warp_tls_config_t tls;
	uint64_t key_update_packets;  /* a sender moves to its next key after this many packets */
	uint32_t max_handshakes;      /* handshakes in progress at once; more wait their turn */
	warp_cap_config_t caps[WARP_MAX_CAPS]; /* extra capabilities offered */
	uint32_t n_caps;
	warp_idle_config_t idle;
	int cpu;                    /* engine thread affinity (warp_engine_start), -1 = none */
	warp_clock_fn clock;
	void *clock_arg;

	const warp_peer_config_t *peers; /* read during warp_engine_create only */
	uint32_t n_peers;

	uint8_t reserved[64];
} warp_config_t;

/**
 * Fill *cfg with the defaults above (no transports, empty node id).
 * @return 0, or WARP_EINVAL when cfg is NULL. Any thread.
 */
int warp_config_init(warp_config_t *cfg);

/**
 * Append a transport to cfg.
 * @return 0; WARP_EINVAL (names too long, table full) with a detail string.
 */
int warp_config_add_transport(warp_config_t *cfg, const char *driver, const char *listen,
			      void *driver_arg);

/**
 * Check a configuration without creating anything.
 * @return 0, or WARP_ECONFIG with warp_errdetail() naming the key and the
 *         value, e.g. "mtu: 100 is outside 256..9000".
 */
int warp_config_validate(const warp_config_t *cfg);

/* ---- configuration files (docs/configuration.md) ---------------------------- */

#define WARP_CONFIG_FILE_MAX_PEERS 256 /* [peer] sections per file */

/** A loaded configuration file: the config plus the peers it lists, the
 *  dpdk driver's settings and, for error messages, the line of each section.
 *  Large (about 173 KiB): allocate it on the heap. It points into itself:
 *  cfg.peers points at peers[], and the driver_arg of every transport whose
 *  driver is "dpdk" points at dpdk[i] (same index). A copy of the struct
 *  must set both again: copy.cfg.peers = copy.peers, and
 *  copy.cfg.transports[i].driver_arg = &copy.dpdk[i] for those transports. */
typedef struct warp_config_file {
	warp_config_t cfg;                /* cfg.peers points at peers[] below */
	warp_peer_config_t peers[WARP_CONFIG_FILE_MAX_PEERS];
	/* [transport] i with driver = dpdk: its keys on top of
	 * warp_dpdk_config_init(), and cfg.transports[i].driver_arg ==
	 * &dpdk[i]; all zero for a transport of another driver */
	warp_dpdk_config_t dpdk[WARP_MAX_TRANSPORTS];
	char path[256];                   /* the path given to warp_config_load() */
	uint32_t transport_line[WARP_MAX_TRANSPORTS]; /* line of each [transport] section */
	uint32_t listen_line[WARP_MAX_TRANSPORTS];    /* line of its listen key (0: none) */
	uint32_t peer_line[WARP_CONFIG_FILE_MAX_PEERS]; /* line of each [peer <node>] section */
	/* line of each transport key of a peer: peers[i].transports[j] */
	uint32_t peer_transport_line[WARP_CONFIG_FILE_MAX_PEERS][WARP_MAX_TRANSPORTS];
} warp_config_file_t;

/**
 * Load a configuration file: warp_config_init() defaults, then the file's
 * [engine], [transport] and [peer <node>] sections, then
 * warp_config_validate(). clock stays NULL and so does driver_arg (a file
 * cannot name a pointer), except for a "dpdk" transport, whose driver_arg
 * is &out->dpdk[i], filled from the section's dpdk keys: set them in
 * out->cfg before warp_engine_create() if the driver needs one (the loop
 * driver needs its net).
 * @param path file to read; kept in out->path (at most 255 characters).
 * @param out  filled in (on failure: what was read before the error); owned
 *             by the caller, who may free it once the engine is created
 *             (nothing inside points outside it; see warp_config_file_t
 *             for what points inside it).
 * @return 0; WARP_ECONFIG with warp_errdetail() = "<path>:<line>: <key>:
 *         <what is wrong>" (syntax, unknown section or key, bad value,
 *         duplicate [peer], too many transports or peers, a peer without a
 *         transport, and whatever warp_config_validate() finds, at the line
 *         where that key was set) or "<path>: cannot open: <reason>";
 *         WARP_ENOMEM; WARP_EINVAL (NULL argument). Any thread (allocates;
 *         no global state).
 */
int warp_config_load(const char *path, warp_config_file_t *out);

#ifndef WARP__ENGINE_T_DECLARED
#define WARP__ENGINE_T_DECLARED
/* Also declared in warp/engine.h: C11 allows repeating an identical typedef. */
typedef struct warp_engine warp_engine_t;
#endif

/**
 * warp_config_load(path), then warp_engine_create() with its config. An
 * error from the engine is reported at the line of the [transport] or
 * [peer] section it concerns: "<path>:<line>: <detail>".
 * @param path configuration file.
 * @param out  receives the engine; free with warp_engine_destroy().
 * @return 0; the codes of warp_config_load() and warp_engine_create()
 *         (WARP_ECONFIG, WARP_EDRIVER, WARP_EINVALID_NODE, WARP_ENOMEM, ...).
 *         Any thread; the caller becomes the engine thread.
 */
int warp_engine_create_from_file(const char *path, warp_engine_t **out);

#ifdef __cplusplus
}
#endif
#endif
