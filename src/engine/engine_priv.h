/* SPDX-License-Identifier: Apache-2.0 */
/* Engine internals shared by src/engine, src/proto and the drivers. */
#ifndef WARP_ENGINE_PRIV_H
#define WARP_ENGINE_PRIV_H

#include <pthread.h>
#include <stdbool.h>

#include "common.h"
#include "driver.h"
#include "engine/pool.h"
#include "engine/timer.h"
#include "proto/wire.h"
#include "warp/engine.h"
#include "warp/spsc.h"

/* A queued outgoing message. */
struct warp_txmsg {
	struct warp_txmsg *next;
	uint64_t msg_id;
	uint8_t *data; /* tx arena block */
	uint32_t len;
	uint32_t sent; /* bytes framed so far */
	int32_t chan;  /* submitting channel index, -1 = the engine thread */
};

struct warp_stream {
	struct warp_peer *peer;
	uint16_t id;
	uint8_t prio;
	bool active; /* linked in the peer's priority list */
	uint64_t next_msg_id; /* written only by the stream's sending thread */
	struct warp_txmsg *head, *tail; /* engine thread */
	struct warp_stream *rr_next, *rr_prev;
};

struct warp_peer_tp {
	uint8_t transport; /* engine transport index */
	warp__addr_t addr;
};

/* Received packet numbers: a sliding bitmap (RFC 6479 style) so packets the
 * network duplicated are dropped and very old ones refused. */
#define WARP_RX_WINDOW_BITS 1024u
#define WARP_RX_WINDOW_WORDS (WARP_RX_WINDOW_BITS / 64u)

struct warp_peer {
	warp_engine_t *engine;
	char node[WARP_NODE_MAX];
	uint64_t conn_id;
	uint32_t idx;
	struct warp_peer_tp tp[WARP_MAX_TRANSPORTS];
	uint32_t n_tp;
	uint32_t active_tp;

	bool closed;          /* sends refused, rx dropped */
	bool close_pending;   /* a CLOSE frame is to be sent */
	uint16_t close_code;
	char close_reason[64];

	uint64_t next_pkt_num;
	uint64_t rx_largest;  /* largest packet number received, 0 = none */
	uint64_t rx_window[WARP_RX_WINDOW_WORDS];
	uint64_t last_rx_ns;

	/* heartbeats */
	struct warp_timer hb_timer;
	bool hb_pending;
	uint32_t hb_seq;
	bool hb_reply_pending;
	uint32_t hb_reply_seq;
	uint64_t hb_reply_ts;

	/* streams and transmit scheduling */
	struct warp_stream *streams; /* max_streams slots */
	uint32_t n_streams;
	uint64_t prio_bits[4];
	struct warp_stream *prio_head[256];
	bool tx_active;
	struct warp_peer *tx_next, *tx_prev;
};

/* A partial message being reassembled, or a complete one waiting for room
 * in a full channel ring ("spilled"). */
#define WARP_REASM_MAX_IVALS 16u
struct warp_reasm {
	struct warp_timer timer;
	warp_engine_t *engine;
	int32_t hnext; /* hash chain, -1 = end */
	int32_t qnext; /* spill queue link, -1 = end */
	bool used, spilled;
	uint32_t peer_idx;
	uint16_t stream_id;
	uint8_t transport;
	int status;
	uint64_t msg_id;
	uint32_t msg_len;
	uint8_t *buf; /* rx arena block */
	uint16_t n_iv;
	struct {
		uint32_t lo, hi;
	} iv[WARP_REASM_MAX_IVALS];
	uint64_t rx_ns;
};

/* Channel records. */
#define WARP_CHREC_SEND 1u
#define WARP_CHREC_MSG 2u

struct warp_chrec_send {
	warp_stream_t *stream;
	uint64_t msg_id;
};

struct warp_chrec_msg {
	warp_peer_t *peer;
	uint64_t msg_id;
	uint64_t rx_ns;
	int32_t status;
	uint16_t stream_id;
	uint8_t transport;
	uint8_t pad;
};

struct warp_channel {
	warp_engine_t *e;
	int32_t idx;
	unsigned flags;
	warp_spsc_t *sub; /* app -> engine */
	warp_spsc_t *del; /* engine -> app */
	/* engine side */
	const void *stalled; /* a read submission waiting for memory */
	uint32_t stalled_len;
	bool del_dirty;      /* records reserved in del, not committed yet */
	int32_t spill_head, spill_tail;
};

struct warp_transport {
	const struct warp_driver_ops *ops;
	void *ctx;
	uint16_t (*rx_burst)(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now_ns);
	uint16_t (*tx_burst)(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now_ns);
	struct warp_pkt **txq; /* built, not yet taken by the driver */
	uint32_t ntxq;
	struct warp_driver_counters cnt;
};

struct warp__stats {
#define WARP__STAT_CNT(name, help) warp__counter_t name;
	WARP_STATS_MAP(WARP__STAT_CNT)
#undef WARP__STAT_CNT
	warp__counter_t drop[WARP_DROP__COUNT];
};

struct warp_engine {
	warp_config_t cfg;
	uint64_t conn_id; /* this node's connection id (v1: FNV-1a of node id) */
	uint64_t now;
	_Atomic uint64_t now_pub; /* `now` for other threads */

	struct warp_transport tp[WARP_MAX_TRANSPORTS];
	uint32_t n_tp;
	uint32_t tx_cap; /* txq capacity per transport */

	struct warp__pktpool pkts;
	struct warp__buddy txa, rxa;
	struct warp_txmsg *txmsgs;
	struct warp__idxpool txmsg_free;

	struct warp_peer *peers;
	uint32_t n_peers;
	int32_t *peer_hash; /* open addressing on conn_id, -1 = empty */
	uint32_t peer_hash_mask;
	struct warp_peer *tx_active; /* circular list of peers with data */

	struct warp_reasm *reasm;
	struct warp__idxpool reasm_free;
	int32_t *reasm_hash;
	uint32_t reasm_hash_mask;
	uint32_t n_spilled;

	struct warp_wheel wheel;

	warp_recv_fn recv_fn;
	void *recv_user;
	struct warp_channel **channels;
	uint32_t n_channels;
	struct warp_channel **rx_channels;
	uint32_t n_rx_channels;

	struct warp_pkt **rxv; /* the current rx burst: rxv[rx_next .. rx_n) not parsed yet */
	uint32_t rx_next, rx_n;
	uint32_t stream_payload_max; /* largest stream frame payload in one packet */

	struct warp__stats st;

	pthread_t thread;
	bool started;
	bool single_issuer;   /* a transport is bound to the first polling thread */
	bool bound;
	pthread_t bound_thread;
	_Atomic bool stop;
};

#define warp__stat(e, name, n) warp__cnt_add((e)->st.name, (n))
static inline void warp__drop(warp_engine_t *e, int reason)
{
	warp__cnt_add(e->st.drop[reason], 1);
	warp__cnt_add(e->st.drops, 1);
}

/* proto/tx.c */
int warp__tx_enqueue(warp_engine_t *e, warp_stream_t *s, uint64_t msg_id, const void *buf,
		     size_t len, int32_t chan);
void warp__tx_activate_peer(warp_engine_t *e, struct warp_peer *p);
unsigned warp__tx_build(warp_engine_t *e);
unsigned warp__tx_flush(warp_engine_t *e);
void warp__tx_drop_peer_queue(warp_engine_t *e, struct warp_peer *p, int status);
/* proto/rx.c */
void warp__rx_packet(warp_engine_t *e, struct warp_pkt *pkt);
void warp__reasm_timeout(struct warp_timer *t, uint64_t now);
void warp__report_send_failure(warp_engine_t *e, struct warp_peer *p, uint16_t stream_id,
			       uint64_t msg_id, int status, int chan);
unsigned warp__deliver_spilled(warp_engine_t *e);
void warp__rx_commit(warp_engine_t *e);
void warp__reasm_release(warp_engine_t *e, struct warp_reasm *r);
/* engine/channel.c */
unsigned warp__channels_drain(warp_engine_t *e);
void warp__channel_free(struct warp_channel *c);
/* engine/peer.c */
void warp__peer_hb_timer(struct warp_timer *t, uint64_t now);
uint64_t warp__conn_id(const char *node);
int warp__parse_node_id(const char *s, char *name, size_t name_cap, const char **addr);

#endif
