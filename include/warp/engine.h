/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file warp/engine.h
 * Engines, peers, streams, messages and application channels.
 *
 * Thread rules (read these first):
 * - An engine is owned by one thread at a time, "the engine thread": either
 *   the application thread that calls warp_engine_poll() (embedded mode:
 *   callbacks run inline, inside poll), or the thread warp_engine_start()
 *   creates. Functions marked [engine thread] may only be called from it.
 * - Setup functions marked [setup] (peers, streams, channels, callbacks)
 *   may be called from the owning thread while the engine is not started
 *   with warp_engine_start(); they allocate and are not for the hot path.
 * - Other application threads talk to a started engine only through a
 *   warp_channel_t: a pair of lock-free SPSC rings, one channel per thread.
 *   Functions marked [channel thread] may be called by the one thread
 *   using that channel.
 * - All sends on one stream must come from one thread (the engine thread or
 *   one channel's thread): the stream's message ids are assigned by it.
 */
#ifndef WARP_ENGINE_H
#define WARP_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "warp/config.h"
#include "warp/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct warp_engine warp_engine_t;
typedef struct warp_peer warp_peer_t;
typedef struct warp_stream warp_stream_t;
typedef struct warp_channel warp_channel_t;

#define WARP_PRIO_MIN 16  /* most urgent application priority; 0..15 are control */
#define WARP_PRIO_MAX 255 /* least urgent */

/** Delivery guarantees, per stream. */
typedef enum warp_guarantee {
	WARP_AT_MOST_ONCE = 0,  /* never resent, never duplicated; may be lost */
	WARP_AT_LEAST_ONCE = 1, /* resent until acknowledged (ack_timeout, max_retries); in order */
	WARP_EXACTLY_ONCE = 2,  /* at-least-once plus receiver deduplication that survives
				   warp_peer_reopen; in order */
} warp_guarantee_t;

#define WARP_MSG_DATA 0       /* a received message */
#define WARP_MSG_COMPLETION 1 /* the outcome of a message this side sent */

/** A received message, or the outcome (completion) of one you sent. */
typedef struct warp_msg {
	warp_peer_t *peer;     /* the sending peer */
	const char *src_node;  /* its node id */
	uint16_t stream_id;
	uint64_t msg_id;       /* the sender's id for this message on this stream */
	const void *data;      /* payload; see the delivery function for its lifetime */
	size_t len;
	uint64_t rx_time_ns;   /* engine clock when the last fragment arrived */
	const char *transport; /* driver name that carried it, e.g. "loop" */
	int status;            /* DATA: 0. COMPLETION: 0 = acknowledged by the receiving
				  engine; WARP_ENACK = refused by the receiving application
				  (nack_reason says why); WARP_ETIMEDOUT = not acknowledged
				  within ack_timeout / max_retries (at-most-once: lost or its
				  acknowledgement lost); WARP_ECLOSED = dropped by a close.
				  data is NULL, len 0 */
	int kind;              /* WARP_MSG_DATA or WARP_MSG_COMPLETION */
	uint16_t nack_reason;
} warp_msg_t;

/** Inline receive callback [engine thread]. msg and msg->data are valid only
 *  during the call; copy what you keep. The callback may call warp_send(). */
typedef void (*warp_recv_fn)(void *user, const warp_msg_t *msg);

/* ---- engine --------------------------------------------------------------- */

/**
 * Create an engine: validate cfg, allocate every pool, open the transports,
 * add cfg->peers. Nothing is allocated on the data path afterwards (the
 * handshake is not data path: a TLS attempt allocates inside OpenSSL and
 * counts one in allocs_after_start, and so do key updates inside OpenSSL's
 * HKDF; sealing and opening packets allocate nothing).
 * @param cfg configuration (copied; the caller keeps ownership).
 * @param out receives the engine; free with warp_engine_destroy().
 * @return 0; WARP_ECONFIG (bad config), WARP_ENOMEM, WARP_EDRIVER (a
 *         transport failed to open), WARP_EINVALID_NODE (bad peer); the detail
 *         string names the key, peer or driver. Any thread; the caller becomes
 *         the engine thread.
 */
int warp_engine_create(const warp_config_t *cfg, warp_engine_t **out);

/** Stop (if started), close transports, free everything. NULL is ignored.
 *  Messages still queued are dropped. [setup] */
void warp_engine_destroy(warp_engine_t *e);

/** This engine's node id. Any thread. */
const char *warp_engine_node_id(const warp_engine_t *e);

/** Set the inline receive callback (NULL: deliver to receiving channels). [setup] */
void warp_engine_set_recv(warp_engine_t *e, warp_recv_fn fn, void *user);

/** Set the callback for completions of messages sent from the engine thread
 *  (warp_send); it receives kind WARP_MSG_COMPLETION. Without it those
 *  outcomes are only counted. Channel sends get their completions in their
 *  channel. [setup] */
void warp_engine_set_completion(warp_engine_t *e, warp_recv_fn fn, void *user);

/**
 * Refuse a message from inside the receive callback: it is not delivered
 * again, and the sender's completion is WARP_ENACK with `reason`.
 * @return 0; WARP_ESTATE outside a receive callback; WARP_EAGAIN when the
 *         refusal cannot be reported (16 refusals from this peer wait unread
 *         by it): the sender will take the message as delivered, so handle
 *         it as delivered (it counts in msgs_delivered and nacks_unsent).
 *         [engine thread]
 */
int warp_msg_reject(warp_engine_t *e, uint16_t reason);

/**
 * Run one iteration of the engine: read the clock once, drain channel
 * submissions, receive a burst per transport, deliver, run due timers, build
 * and send packets.
 * @return the amount of work done (0 = idle), or WARP_ESTATE when the engine
 *         is started on its own thread. [engine thread]
 */
int warp_engine_poll(warp_engine_t *e);

/**
 * Start a thread that polls the engine with cfg->idle as idle strategy (and
 * pinned to cfg->cpu if >= 0). From now on use channels from other threads.
 * @return 0; WARP_ESTATE (already started), WARP_EDRIVER (thread creation).
 */
int warp_engine_start(warp_engine_t *e);

/** Stop the engine thread and join it; the caller becomes the engine thread.
 *  @return 0, WARP_ESTATE when not started. */
int warp_engine_stop(warp_engine_t *e);

/**
 * The local address transport number `transport` (0-based, in config order)
 * is bound to, e.g. "127.0.0.1:40123" after listening on port 0.
 * @return 0; WARP_EINVAL; WARP_ENOTSUP (driver cannot tell). Any thread.
 */
int warp_engine_local_addr(const warp_engine_t *e, unsigned transport, char *buf, size_t cap);

/**
 * The last data-path error of a transport, e.g. "connect 127.0.0.1:7101:
 * Connection refused" ("" when none). Such errors never fail a call (the
 * packets concerned are counted in warp_stats_t); this names the cause.
 * @return 0, WARP_EINVAL. [engine thread]
 */
int warp_engine_transport_error(const warp_engine_t *e, unsigned transport, char *buf,
				size_t cap);

/** Copy the counters. Any thread. @return 0, WARP_EINVAL. */
int warp_engine_stats(const warp_engine_t *e, warp_stats_t *out);

/** Engine clock now (as the engine reads it). Any thread. */
uint64_t warp_engine_now(const warp_engine_t *e);

/* ---- peers -------------------------------------------------------------- */

/**
 * Add a peer by node id "name@host:port" on the engine's first transport
 * (the address syntax is the driver's: loop takes any "host:port" key).
 * @return 0; WARP_EINVALID_NODE (malformed id, bad address), WARP_EEXIST
 *         (node already added), WARP_ENOMEM (max_peers reached), with a
 *         detail string. [setup]
 */
int warp_peer_add(warp_engine_t *e, const char *node_at_addr, warp_peer_t **out);

/** Add a peer with its transports in order of preference. [setup] */
int warp_peer_add_config(warp_engine_t *e, const warp_peer_config_t *pc, warp_peer_t **out);

/** Look a peer up by node id. @return 0 or WARP_EINVALID_NODE. Any thread
 *  (peers are not removed while channels are in use). */
int warp_peer_find(warp_engine_t *e, const char *node, warp_peer_t **out);

/** Index (in the peer's transport list) of the transport in use now: 0 is
 *  the preferred one; more after a failover. [engine thread] */
int warp_peer_transport(const warp_peer_t *p);

/** Node id of a peer. Any thread. */
const char *warp_peer_node(const warp_peer_t *p);

/**
 * Close the connection to a peer: queued messages are dropped (reported
 * with status WARP_ECLOSED), a CLOSE frame is sent, further sends fail with
 * WARP_ECLOSED. A peer that receives CLOSE treats the connection as closed
 * too. warp_peer_reopen() allows sending again. [engine thread]
 */
int warp_peer_close(warp_engine_t *e, warp_peer_t *p, uint16_t code, const char *reason);
int warp_peer_reopen(warp_engine_t *e, warp_peer_t *p);

/* ---- resilience: circuit breaker, health ------------------------------- */

/** Circuit breaker states (one breaker per peer). */
typedef enum warp_breaker_state {
	WARP_BREAKER_CLOSED = 0,    /* sends go through */
	WARP_BREAKER_OPEN = 1,      /* sends fail at once with WARP_ECIRCUIT_OPEN */
	WARP_BREAKER_HALF_OPEN = 2, /* up to breaker_half_open_max_calls trial sends */
} warp_breaker_state_t;

/** Called on every breaker transition, in order, on the engine thread. */
typedef void (*warp_breaker_fn)(void *user, warp_peer_t *peer, warp_breaker_state_t from,
				warp_breaker_state_t to);

/** Set the breaker transition callback. [setup] */
void warp_engine_set_breaker_callback(warp_engine_t *e, warp_breaker_fn fn, void *user);

/** A peer's breaker state. [engine thread] */
warp_breaker_state_t warp_peer_breaker(const warp_peer_t *p);

typedef enum warp_health_state {
	WARP_HEALTH_UP = 0,
	WARP_HEALTH_DEGRADED = 1,
	WARP_HEALTH_DOWN = 2,
} warp_health_state_t;

typedef struct warp_health {
	warp_health_state_t state;
	char reason[96]; /* empty when up */
} warp_health_t;

/**
 * Health of a peer: down when it has been silent for heartbeat_miss_limit
 * heartbeat intervals (heartbeats on), its circuit is open, or its last
 * handshake failed ("handshake failed: ..."); degraded when the link of its
 * transport is down, a handshake is in progress, its circuit is half-open
 * or messages to it are being resent; up otherwise.
 * O(1). @return 0, WARP_EINVAL. [engine thread]
 */
int warp_peer_health(const warp_engine_t *e, const warp_peer_t *p, warp_health_t *out);

/** Session state of a peer (warp_session_info_t.state). */
#define WARP_SESSION_HANDSHAKE 1 /* handshake in progress; sends are queued */
#define WARP_SESSION_UP 2        /* established */
#define WARP_SESSION_FAILED 3    /* the last attempt failed, until an attempt succeeds (they
				    are retried with back-off; warp_peer_reopen() starts one
				    now). After a refusal (WARP_EHANDSHAKE) sends fail with
				    it; after a timeout they stay queued for the next one */

/** A peer's session (docs/security.md). */
typedef struct warp_session_info {
	int state;              /* WARP_SESSION_* */
	int encrypted;          /* 1: every packet is protected (AEAD) */
	int resumed;            /* 1: the last handshake resumed a TLS session */
	const char *cipher;     /* "aes-128-gcm", "chacha20-poly1305" or "none" */
	uint32_t tx_key_gen;    /* key updates this side made */
	uint32_t rx_key_gen;    /* key updates the peer made */
	uint32_t handshakes;    /* completed with this peer */
	uint64_t peer_incarnation; /* changes when the peer process restarts */
	int error;              /* the last failure (WARP_EHANDSHAKE, WARP_ETIMEDOUT), 0 = none */
	char error_detail[256]; /* its words, e.g. "handshake with 'b': certificate of 'b'
				   expired (notAfter 2020-01-02)" */
} warp_session_info_t;

/**
 * A peer's session state.
 * @return 0; WARP_EINVAL. [engine thread, or any thread while no engine
 *         thread runs]
 */
int warp_peer_session(const warp_peer_t *p, warp_session_info_t *out);

/**
 * The version negotiated for a capability with this peer (the built-in
 * "warp" and "encryption", and warp_config_t.caps).
 * @return the version (>= 1), 0 when off (no common version, or not offered
 *         by both), WARP_ESTATE before the session is up, WARP_EINVAL.
 *         [as warp_peer_session]
 */
int warp_peer_capability(const warp_peer_t *p, const char *name);

/**
 * Health of the engine: down when every peer is down (and there is one),
 * degraded when any peer is not up, up otherwise; the reason names the
 * first peer that is not up. O(peers). [engine thread]
 */
int warp_engine_health(const warp_engine_t *e, warp_health_t *out);

/* ---- streams ------------------------------------------------------------ */

/**
 * Open stream `stream_id` to a peer with a priority (WARP_PRIO_MIN..MAX,
 * lower is more urgent). Frames of the most urgent stream with data go first;
 * equal priorities share packets round-robin; a large or held-up message on
 * one stream never waits for another stream.
 * @return 0; WARP_EINVAL (priority out of range), WARP_EEXIST (already open),
 *         WARP_ENOMEM (max_streams). [setup]
 */
int warp_stream_open(warp_engine_t *e, warp_peer_t *p, uint16_t stream_id, uint8_t priority,
		     warp_stream_t **out);

/** Stream options; zero fields take the engine's defaults. */
typedef struct warp_stream_opts {
	uint8_t priority;         /* WARP_PRIO_MIN..MAX (0 = WARP_PRIO_MIN) */
	int guarantee;            /* warp_guarantee_t, -1 = cfg.default_guarantee */
	uint64_t ack_timeout_ns;  /* 0 = cfg.ack_timeout_ns */
	uint32_t max_retries;     /* 0 = cfg.max_retries */
	uint8_t reserved[32];
} warp_stream_opts_t;

/** Open a stream with options (guarantee per stream). [setup] */
int warp_stream_open_ex(warp_engine_t *e, warp_peer_t *p, uint16_t stream_id,
			const warp_stream_opts_t *opts, warp_stream_t **out);

/** Stream id and peer of a stream. Any thread. */
uint16_t warp_stream_id(const warp_stream_t *s);
warp_peer_t *warp_stream_peer(const warp_stream_t *s);

/* ---- sending from the engine thread -------------------------------------- */

/**
 * Queue a message; it is copied, so buf may be reused at once. It goes out
 * (coalesced with other small messages, or fragmented) at the end of the
 * current or next poll.
 * @param msg_id receives the message id (may be NULL).
 * @return 0; WARP_ETOOBIG (len > max_payload_bytes; nothing queued),
 *         WARP_EAGAIN (tx arena or message table full, or more than the peer's
 *         window already queued: poll and retry), WARP_ECIRCUIT_OPEN (the
 *         peer's circuit breaker is open), WARP_ECLOSED (peer closed, or the
 *         engine is shutting down), WARP_EINVAL. Nothing is half-queued on
 *         failure. [engine thread]
 */
int warp_send(warp_engine_t *e, warp_stream_t *s, const void *buf, size_t len, uint64_t *msg_id);

/** One destination of a broadcast, and its result. */
typedef struct warp_bcast {
	warp_stream_t *stream; /* in: a stream to the destination peer */
	int status;            /* out: 0 or the WARP_E* code of that destination */
	uint64_t msg_id;       /* out: the id on that stream */
} warp_bcast_t;

/**
 * Send one message to several peers: one result per destination. Each
 * destination is independent (its own stream, retries and breaker), so a
 * slow or dead peer does not hold up the others; outcomes arrive as
 * completions per destination.
 * @return how many destinations accepted the message; an error (the first
 *         destination's) only when none did. [engine thread]
 */
int warp_broadcast(warp_engine_t *e, warp_bcast_t *dst, unsigned n, const void *buf, size_t len);

/**
 * Graceful shutdown: refuse new sends (WARP_ECLOSED), keep polling until every
 * message in flight is settled, or timeout_ns passes.
 * @param undelivered receives how many messages were still unsettled (may be NULL).
 * @return 0 when all were settled; WARP_ESHUTDOWN_TIMEOUT otherwise. [engine thread,
 *         engine not started]
 */
int warp_engine_shutdown(warp_engine_t *e, uint64_t timeout_ns, uint64_t *undelivered);

/* ---- channels: application threads that do not own the engine ----------- */

#define WARP_CHANNEL_RECV 0x1u        /* this channel receives messages (see warp_channel_open) */
#define WARP_CHANNEL_COMPLETIONS 0x2u /* the outcome of every message sent through this channel
					 comes back as a WARP_MSG_COMPLETION; without it outcomes
					 are only counted */

/**
 * Open a channel (a submission ring and a delivery ring of
 * cfg->channel_ring_bytes each). With WARP_CHANNEL_RECV and no inline
 * callback set, received messages are delivered to the receiving channels:
 * stream id modulo the number of receiving channels picks one, so a stream
 * always lands on the same channel, in the order its messages complete (in
 * v1 that is the send order unless the network reorders packets; the
 * reliability layer adds in-order delivery).
 * @return 0; WARP_ENOMEM (max_channels or memory); WARP_ESTATE (started). [setup]
 */
int warp_channel_open(warp_engine_t *e, unsigned flags, warp_channel_t **out);

/** One send of a burst. */
typedef struct warp_send_req {
	warp_stream_t *stream;
	const void *buf;
	size_t len;
	uint64_t msg_id; /* out: assigned id */
	int status;      /* out: 0 or WARP_E* */
} warp_send_req_t;

/**
 * Copy a message into the channel's submission ring; the engine queues it at
 * its next poll. With WARP_CHANNEL_COMPLETIONS, the outcome of every message
 * (acknowledged, refused, timed out, or an error the engine found when
 * queueing it: closed, circuit open) comes back as a WARP_MSG_COMPLETION
 * through warp_channel_recv_burst(); without it outcomes are only counted.
 * @return 0; WARP_ETOOBIG, WARP_EAGAIN (ring full: the engine is behind),
 *         WARP_EINVAL. [channel thread]
 */
int warp_channel_send(warp_channel_t *c, warp_stream_t *s, const void *buf, size_t len,
		      uint64_t *msg_id);

/**
 * Submit up to n sends with one publication. Stops at the first refused
 * request (its status says why).
 * @return how many were accepted (0..n). [channel thread]
 */
int warp_channel_send_burst(warp_channel_t *c, warp_send_req_t *reqs, unsigned n);

/**
 * Take up to n delivered messages (and failed-send reports). Each msg->data
 * points into the delivery ring and stays valid until warp_channel_recv_done().
 * @return 0..n. [channel thread]
 */
int warp_channel_recv_burst(warp_channel_t *c, warp_msg_t *msgs, unsigned n);

/** Give the ring space of every message received so far back to the engine.
 *  [channel thread] */
void warp_channel_recv_done(warp_channel_t *c);

#ifdef __cplusplus
}
#endif
#endif
