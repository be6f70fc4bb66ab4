/* SPDX-License-Identifier: Apache-2.0 */
/* Engine internals shared by src/engine, src/proto and the drivers. */
#ifndef WARP_ENGINE_PRIV_H
#define WARP_ENGINE_PRIV_H

#include <pthread.h>
#include <stdbool.h>

#include "common.h"
#include "crypto/aead.h"
#include "crypto/hello.h"
#include "driver.h"
#include "engine/pool.h"
#include "engine/timer.h"
#include "proto/cc.h"
#include "proto/wire.h"
#include "warp/engine.h"
#include "warp/spsc.h"

/* Delivery guarantees (wire: STREAM frame flags bits 1-2). */
enum {
	WARP__AMO = 0, /* at-most-once */
	WARP__ALO = 1, /* at-least-once */
	WARP__EO = 2,  /* exactly-once */
};

/* An outgoing message, from warp_send until it is settled (acknowledged,
 * refused by a NACK, timed out or dropped by a close). Its fragments are
 * fixed: fragment i covers [i * F, min((i + 1) * F, len)) with F the largest
 * stream frame payload, so an acknowledgement names a fragment exactly and a
 * lost one is resent as the same unit. */
struct warp_txmsg {
	struct warp_txmsg *unext, *uprev; /* the stream's unsettled list, in id order */
	struct warp_stream *stream;
	uint64_t msg_id;
	uint8_t *data;       /* tx arena block: payload, then the acked bitmap */
	uint64_t *acked;     /* one bit per fragment */
	uint32_t len;
	uint32_t nfrags;
	uint32_t next_frag;  /* first transmission cursor */
	uint32_t acked_frags;
	uint32_t gen;        /* bumped when freed: stale fragment references are ignored */
	int32_t chan;        /* submitting channel index, -1 = the engine thread */
	uint32_t retries;    /* fragment resends; the limit is max_retries per fragment */
	uint64_t deadline_ns; /* ack_timeout from the first transmission, 0 = not sent yet */
	uint64_t queued_ns;   /* engine clock when it was queued */
	/* settled, its completion waiting for room in its channel's ring (the
	 * entry is kept, its data freed): the channel's list, in order */
	int32_t cnext;
	int cstatus;
	uint16_t creason;
};

/* A fragment reference: which fragment of which message a packet carried. */
struct warp_fref {
	uint32_t msg;
	uint32_t gen;
	uint32_t frag;
};

/* A sent packet, until it is acknowledged or declared lost. */
struct warp_sent {
	uint64_t pkt_num;
	uint64_t sent_ns;
	uint64_t fref_first; /* position in the peer's fragment-reference ring */
	uint16_t fref_n;
	uint8_t state;       /* SENT_* */
	uint8_t eliciting;   /* carries frames that need an acknowledgement */
	uint16_t low_stream; /* index + 1 of the stream whose STREAM_LOW it carries, 0 = none */
	uint32_t bytes;      /* stream payload bytes it carried (flow control) */
	bool credit;         /* carried STREAM_CREDIT frames */
	bool nacks;          /* carried every NACK of the peer's list at the time */
};
#define SENT_FREE 0
#define SENT_INFLIGHT 1
#define SENT_DONE 2

struct warp_stream {
	struct warp_peer *peer;
	uint16_t id;
	uint8_t prio;
	uint8_t guarantee;
	bool active; /* linked in the peer's priority list (has unframed fragments) */
	uint64_t next_msg_id; /* written only by the stream's sending thread */
	uint64_t ack_timeout_ns;
	uint32_t max_retries;
	/* engine thread: */
	struct warp_txmsg *uhead, *utail; /* unsettled messages, in id order */
	struct warp_txmsg *cursor;        /* first message with unframed fragments */
	uint64_t last_id;   /* id of the last message queued */
	uint64_t credit_max; /* ordered streams: ids below this may be framed (peer's credit) */
	bool credit_blocked; /* has unframed data but no credit: off the priority lists */
	uint64_t blocked_since; /* waiting for credit since (engine clock), 0: not; the
				 * wait counts against ack_timeout of what is not framed */
	bool any_queued;
	uint64_t low_sent;  /* low-water mark last announced (STREAM_LOW) */
	uint64_t low_owed;  /* 0, or a mark to announce once it is reached: one
			     * past a message given up out of order */
	bool low_pending;
	struct warp_stream *rr_next, *rr_prev;
	struct warp_stream *low_next; /* peer's list of streams with a STREAM_LOW to send */
};

/* When a message times out: ack_timeout after its first transmission, or
 * for one not framed yet because the receiver grants no credit, ack_timeout
 * after it began to wait for credit (queued, or the stream blocked,
 * whichever came later). 0: never. */
static inline uint64_t warp__msg_deadline(const struct warp_stream *s, const struct warp_txmsg *m)
{
	if (m->deadline_ns || !s->blocked_since || !s->ack_timeout_ns)
		return m->deadline_ns;
	return WARP__MAX(s->blocked_since, m->queued_ns) + s->ack_timeout_ns;
}

/* The stream's low-water mark: its oldest unsettled message, or the next id
 * after the last one queued. */
static inline uint64_t warp__stream_low(const struct warp_stream *s)
{
	return s->uhead ? s->uhead->msg_id : s->last_id + 1;
}

/* Receive side of an ordered (at-least-once / exactly-once) stream. */
struct warp_rxstream {
	uint16_t id;
	bool used;
	uint8_t guarantee;
	uint64_t next;      /* next message id to deliver */
	uint64_t credit_sent; /* the max id last granted to the sender */
	bool credit_pending;
	int32_t held;       /* complete messages waiting for a gap, by id (reasm index) */
};

struct warp_peer_tp {
	uint8_t transport; /* engine transport index */
	warp__addr_t addr;
};

/* One handshake attempt with a peer (crypto/handshake.c), from the
 * engine's pool of max_handshakes: bounded in number and in memory. */
#define WARP_HS_OUT_MAX 16384u /* TLS bytes one attempt may send */
struct warp__hs {
	struct warp_peer *peer; /* NULL: free */
	struct warp_timer timer; /* resends and the connect_timeout deadline */
	uint32_t attempt;        /* ours */
	uint64_t deadline_ns;
	uint64_t rto_ns;
	bool hello_acked;        /* the peer has our HELLO */
	bool hello_due;          /* our HELLO is to be sent (again) */
	bool resend;             /* unacknowledged TLS bytes to send again */
	bool established;        /* this attempt brought the session up on this side */
	bool ticket;             /* initiator: a resumption ticket arrived */
	bool tls_done;           /* TLS finished on this side */
	bool client;
	void *tls;               /* struct warp__tls *, NULL: plaintext */
	uint8_t hello[WARP_HELLO_MAX];
	uint16_t hello_len;
	uint8_t peer_hello[WARP_HELLO_MAX];
	uint16_t peer_hello_len;
	uint8_t *out;            /* TLS bytes produced, from offset 0 */
	uint32_t out_len, out_sent, out_acked;
	uint64_t done_ns;        /* when this side finished (the slot lingers for resends) */
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

	/* session (crypto/handshake.c) */
	uint8_t ss;             /* WARP_SESSION_*, 0 before the first attempt */
	uint8_t policy;         /* WARP_ENCRYPTION_* */
	bool encrypted;         /* packets are protected */
	bool resumed;
	bool hs_tx;             /* handshake frames to send */
	bool hs_ack_pending;
	bool hs_fail_pending;
	bool hs_request;        /* responder: an HS_HELLO(0) request to send */
	bool hs_waiting;        /* wants a handshake slot (hs_retry_timer: until connect_timeout) */
	uint64_t hs_wait_seq;   /* when it began to wait: slots go first come, first served */
	bool hello_rx;          /* the peer's HELLO of the current attempt arrived */
	struct warp__hs *hs;
	uint32_t attempt;       /* the current attempt (numbered by the initiator) */
	uint32_t fail_attempt;  /* the attempt HS_FAIL reports, and its code */
	uint16_t fail_code;
	uint32_t crypto_rx_off; /* TLS bytes of the current attempt received in order */
	uint64_t peer_inc;      /* incarnation in the peer's last HELLO, 0 = none */
	uint64_t session_inc;   /* the peer incarnation the session is with */
	uint64_t hs_pkt_num;
	uint64_t req_deadline_ns; /* responder waiting for an attempt: until, 0 = not waiting */
	uint64_t req_rto_ns;
	int hs_status;          /* last failure, 0 = none */
	char hs_error[232];
	uint32_t hs_failures;   /* consecutive failed attempts (retry back-off) */
	bool hs_gave_up;        /* the last one timed out and was the last retry_max_attempts
				   allows: queue settled, sends fail until a new attempt */
	struct warp_timer hs_retry_timer;
	uint32_t handshakes;
	uint16_t cap_ver[WARP_MAX_CAPS + 2]; /* negotiated: "warp", "encryption", cfg caps */
	void *tls_session;      /* initiator: the TLS session to resume next time */
	int aead_alg;
	struct warp__aead key_tx;
	struct warp__aead key_rx[4]; /* by generation & 3: previous, current, next */
	uint32_t rx_gen;
	uint64_t rx_prev_until_ns; /* the previous generation's key is accepted until */
	bool rx_next_missing;      /* deriving the next generation's key failed: retried */
	uint64_t tx_gen_pkts;       /* packets sent under the current key */
	uint64_t tx_gen_first_pn;   /* first packet number of the current key */
	struct warp_peer_tp tp[WARP_MAX_TRANSPORTS];
	uint32_t n_tp;
	uint32_t active_tp;
	uint32_t fallback;       /* WARP_FALLBACK_* */
	uint32_t ack_tp;         /* acks and heartbeat replies go back the way data came */
	bool probe_pending;      /* a heartbeat probe on tp[0] is to be sent */
	struct warp_timer probe_timer;

	bool closed;          /* sends refused, rx dropped */
	bool close_pending;   /* a CLOSE frame is to be sent */
	uint16_t close_code;
	char close_reason[64];

	uint64_t next_pkt_num;
	uint64_t rx_largest;  /* largest packet number received, 0 = none */
	uint64_t rx_window[WARP_RX_WINDOW_WORDS];
	/* Packets refused (their numbers cleared from rx_window so that the
	 * sender resends their reliable frames), same indexing, cleared with
	 * it: a second copy is acted upon again, except for its at-most-once
	 * frames, which the first copy delivered or dropped. */
	uint64_t rx_refused[WARP_RX_WINDOW_WORDS];
	bool rx_refused_any; /* a bit of rx_refused may be set */
	/* Ack encoding cache: when rx_run_ok, every number in [rx_run_lo,
	 * rx_largest] is in rx_window (packets arrived in order since the last
	 * ACK was built), so the ACK's first range needs no scan in the
	 * common case. Cleared by anything that breaks the run. */
	uint64_t rx_run_lo;
	bool rx_run_ok;
	uint64_t last_rx_ns;
	uint64_t added_ns;

	/* heartbeats */
	struct warp_timer hb_timer;
	bool hb_pending;
	uint32_t hb_seq;
	bool hb_reply_pending;
	uint32_t hb_reply_seq;
	uint64_t hb_reply_ts;
	uint32_t hb_reply_tp; /* the transport the request came in on: the reply goes there */

	/* reliability: sent packets, their fragment references, resends */
	struct warp_sent *sent;      /* ring by packet number */
	uint32_t sent_mask;
	uint64_t sent_tail;          /* oldest packet number not retired */
	struct warp_fref *frefs;
	uint32_t fref_mask;
	uint64_t fref_head, fref_tail;
	struct warp_fref *rtx;       /* fragments to resend, FIFO */
	uint32_t rtx_mask;
	uint64_t rtx_head, rtx_tail;
	uint64_t largest_acked;
	uint64_t inflight_bytes;     /* payload bytes in packets not yet acknowledged or lost */
	uint64_t queued_bytes;       /* payload bytes not framed yet */
	uint32_t peer_window;        /* the peer's last CREDIT */
	uint64_t credit_pn;          /* the packet it came in: an older one's is stale */
	struct warp_cc cc;
	uint64_t srtt_ns, rttvar_ns, rto_ns;
	unsigned rto_backoff;
	unsigned rto_streak;         /* timeouts in a row without a new RTT sample */
	struct warp_timer rto_timer;
	bool ack_pending;            /* ack-eliciting packets received since the last ACK */
	uint64_t ack_largest_rx_ns;  /* when the largest packet number arrived */
	struct warp_stream *low_list;
	struct warp_rxstream *rxs;   /* max_streams slots */
	uint32_t n_credit_pending;   /* rx streams with a STREAM_CREDIT to send */
	/* circuit breaker */
	uint8_t breaker;           /* warp_breaker_state_t */
	uint32_t breaker_failures; /* consecutive */
	uint32_t breaker_trials;   /* sends let through while half-open */
	uint32_t breaker_successes;
	struct warp_timer breaker_timer;
	uint64_t unsettled;        /* messages queued or in flight */
	/* Refusals (NACKs) of the peer's messages. An entry goes out in every
	 * packet we build until a packet that carried it is acknowledged, so
	 * no ACK of the refused message's packet reaches the peer without it
	 * (the peer reads a packet's NACKs before its ACK). */
	struct {
		uint16_t stream;
		uint16_t reason;
		bool due;	/* not in a packet in flight: build one for it */
		uint64_t msg_id;
		uint64_t pn;	/* first tracked packet that carried it; UINT64_MAX: none */
	} nacks[16];
	uint32_t n_nacks;
	/* ACK frames built for the peer: a message held for order notes the
	 * count, and a refusal once it changed comes too late (its packet has
	 * been acknowledged) */
	uint32_t acks_built;

	/* streams and transmit scheduling */
	struct warp_stream *streams; /* max_streams slots */
	uint32_t n_streams;
	uint64_t prio_bits[4];
	struct warp_stream *prio_head[256];
	bool tx_active;
	uint8_t drv_blocked; /* bit i: a driver refused a packet for tp[i] */
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
	int32_t onext; /* ordered stream: next held message */
	bool used, spilled, held;
	uint32_t peer_idx;
	uint16_t stream_id;
	uint8_t transport;
	uint8_t kind;
	uint16_t reason;
	int status;
	uint64_t msg_id;
	uint32_t msg_len;
	uint8_t *buf; /* rx arena block */
	uint16_t n_iv;
	struct {
		uint32_t lo, hi;
	} iv[WARP_REASM_MAX_IVALS];
	uint64_t rx_ns;
	uint32_t ack_mark; /* held for order: the peer's acks_built then */
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
	uint8_t kind;
	uint16_t reason;
	uint8_t pad[6];
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
	/* completions of settled sends that found the ring full: their tx
	 * messages, kept until the completion fits (txmsgs indices, -1 = none).
	 * While any wait, the channel's submissions wait too. */
	int32_t cpend_head, cpend_tail;
};

struct warp_transport {
	const struct warp_driver_ops *ops;
	void *ctx;
	uint16_t (*rx_burst)(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now_ns);
	uint16_t (*tx_burst)(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now_ns);
	bool (*link_up)(void *ctx); /* NULL: the link is always up */
	bool link_down;             /* as last seen by the engine */
	struct warp_pkt **txq; /* built, not yet taken by the driver */
	uint32_t ntxq;
	/* txq[0..nrefused) are what the driver refused in the last flush;
	 * their peers build nothing more for this transport until they are
	 * taken (warp_peer.drv_blocked), so one peer that cannot take more
	 * does not hold up the others */
	uint32_t nrefused;
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
	uint64_t incarnation; /* random per engine: peers see a restart */
	void *tls_ctx;        /* struct warp__tls_ctx *, NULL: no TLS configured */
	struct warp__hs *hs;  /* max_handshakes slots */
	uint32_t hs_used;
	uint64_t hs_wait_seq;
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
	bool tx_queued;		     /* some transport's txq holds packets */

	struct warp_reasm *reasm;
	struct warp__idxpool reasm_free;
	int32_t *reasm_hash;
	uint32_t reasm_hash_mask;
	uint32_t n_spilled;
	uint32_t n_cpend;   /* completions parked in tx messages (warp_channel.cpend_*) */

	struct warp_wheel wheel;

	warp_recv_fn recv_fn;
	void *recv_user;
	warp_recv_fn completion_fn;
	void *completion_user;
	uint32_t in_recv;   /* receive callbacks running (nested when one polls) */
	uint8_t reject;     /* the innermost callback's refusal: WARP__REJECT_* */
	bool rx_cur_acked;  /* the innermost callback's message was acknowledged before */
	bool rx_next_acked; /* drain_held: the message deliver() gets next was */
	struct warp_peer *rx_cur_peer; /* the innermost callback's message */
	uint16_t rx_cur_stream;
	uint64_t rx_cur_msg;
	bool rx_refuse;     /* a reliable frame of this packet could not be stored */
	uint64_t rx_pn;     /* the number of the packet whose frames are being acted on */
	bool rx_dropped;    /* the last delivery found no room (ring and spill full) */
	bool shutting_down;
	uint64_t unsettled; /* messages queued or in flight, all peers */
	warp_breaker_fn breaker_fn;
	void *breaker_user;
	struct warp_channel **channels;
	uint32_t n_channels;
	struct warp_channel **rx_channels;
	uint32_t n_rx_channels;

	struct warp_pkt **rxv; /* the current rx burst: rxv[rx_next .. rx_n) not parsed yet */
	uint32_t rx_next, rx_n;
	uint32_t stream_payload_max; /* largest stream frame payload in one packet */

	const struct warp_cc_ops *cc;
	struct warp__stats st;

	pthread_t thread;
	bool started;
	bool single_issuer;   /* a transport is bound to the first polling thread */
	bool bound;
	pthread_t bound_thread;
	_Atomic bool stop;
	/* The idle engine thread sleeps (ppoll) on its transports' eventfds and
	 * on wake_fd; application threads that submit while `sleeping` and
	 * warp_engine_stop write wake_fd. -1: none (it then sleeps out its
	 * time). */
	int wake_fd;
	_Atomic bool sleeping;
	_Atomic bool sleeping_for_room; /* ... and deliveries wait for room in a
					 * receiving channel */
	bool may_sleep; /* started with the back-off idle strategy: only then
			 * do submitters pay the fence of warp__engine_wake */
};

/* An application thread committed work for the engine: wake it if it sleeps
 * (the engine sets `sleeping`, then looks at its channels; the committer
 * published, then looks at `sleeping`; the fences make one of them see the
 * other). */
void warp__engine_wake_slow(warp_engine_t *e);
static inline void warp__engine_wake(warp_engine_t *e)
{
	if (!e->may_sleep)
		return;
	atomic_thread_fence(memory_order_seq_cst);
	if (warp__unlikely(atomic_load_explicit(&e->sleeping, memory_order_relaxed)))
		warp__engine_wake_slow(e);
}

/* An application thread released deliveries: wake the engine if it sleeps
 * with deliveries that wait for that room (the same pairing as above, with
 * the released end of the channel in place of the submissions). */
static inline void warp__engine_wake_for_room(warp_engine_t *e)
{
	if (!e->may_sleep)
		return;
	atomic_thread_fence(memory_order_seq_cst);
	if (warp__unlikely(atomic_load_explicit(&e->sleeping_for_room, memory_order_relaxed)))
		warp__engine_wake_slow(e);
}

#define warp__stat(e, name, n) warp__cnt_add((e)->st.name, (n))
static inline void warp__drop(warp_engine_t *e, int reason)
{
	warp__cnt_add(e->st.drop[reason], 1);
	warp__cnt_add(e->st.drops, 1);
}

/* proto/tx.c */
/* Forget every received packet number (a restarted or reopened peer). */
static inline void warp__rx_window_reset(struct warp_peer *p)
{
	p->rx_largest = 0;
	p->rx_run_ok = false; /* the ack encoder's cached run goes with it */
	memset(p->rx_window, 0, sizeof(p->rx_window));
	memset(p->rx_refused, 0, sizeof(p->rx_refused));
	p->rx_refused_any = false;
	p->credit_pn = 0;
}

void warp__stream_activate(struct warp_peer *p, struct warp_stream *s);
void warp__stream_deactivate(struct warp_peer *p, struct warp_stream *s);
void warp__txmsg_free(warp_engine_t *e, struct warp_txmsg *m);
/* Its data freed and its fragment references stale; the slot stays taken. */
void warp__txmsg_drop_data(warp_engine_t *e, struct warp_txmsg *m);
int warp__tx_enqueue(warp_engine_t *e, warp_stream_t *s, uint64_t msg_id, const void *buf,
		     size_t len, int32_t chan);
void warp__tx_activate_peer(warp_engine_t *e, struct warp_peer *p);
unsigned warp__tx_build(warp_engine_t *e);
unsigned warp__tx_flush(warp_engine_t *e);
void warp__tx_drop_peer_queue(warp_engine_t *e, struct warp_peer *p, int status);
/* proto/rx.c */
void warp__rx_packet(warp_engine_t *e, struct warp_pkt *pkt);
void warp__reasm_timeout(struct warp_timer *t, uint64_t now);
/* A send's outcome to whoever asked for it: the engine's completion
 * callback, or the submitting channel's ring. False when that ring has no
 * room (or completions wait before it): the caller parks it. */
bool warp__deliver_completion(warp_engine_t *e, struct warp_peer *p, uint16_t stream_id,
			      uint64_t msg_id, int status, uint16_t reason, int chan);
/* Keep settled m, its data freed, until its completion fits in its channel. */
void warp__completion_park(warp_engine_t *e, struct warp_txmsg *m, int status, uint16_t reason);
unsigned warp__deliver_spilled(warp_engine_t *e);
void warp__rx_commit(warp_engine_t *e);
void warp__reasm_release(warp_engine_t *e, struct warp_reasm *r);
/* engine/channel.c */
unsigned warp__channels_drain(warp_engine_t *e);
void warp__channel_free(struct warp_channel *c);
/* proto/reliable.c */
void warp__peer_rto_timer(struct warp_timer *t, uint64_t now);
/* p moved to another path (failover): what is in flight on the old one is
 * lost now, resent on the new one at once (it used to wait for its own
 * timeout, which then counted towards the next failover), and congestion
 * control starts afresh. */
void warp__peer_new_path(warp_engine_t *e, struct warp_peer *p);
void warp__rx_stream_reset(warp_engine_t *e, struct warp_peer *p, struct warp_rxstream *r);
/* rx.c: the messages of p (of one stream, or all with -1) still being
 * reassembled, dropped and counted (msgs_dropped_reset): their sender's
 * process or session is gone, and a new one reuses their ids. */
void warp__reasm_drop_partial(warp_engine_t *e, struct warp_peer *p, int stream_id);
struct warp_rxstream *warp__rx_stream(warp_engine_t *e, struct warp_peer *p, uint16_t id,
				      uint8_t guarantee);
void warp__on_ack(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f);
void warp__settle(warp_engine_t *e, struct warp_txmsg *m, int status, uint16_t reason);
/* A message id the engine refused before queueing it (a channel record: its
 * id was taken when the application wrote it): the stream moves past it as
 * past a message settled with `status`, so its receiver does not wait. */
void warp__stream_refused(warp_engine_t *e, struct warp_stream *s, uint64_t msg_id, int status);
void warp__retire(struct warp_peer *p);
void warp__credit_check(warp_engine_t *e, struct warp_peer *p, struct warp_rxstream *r);
/* rx.c: warp_msg_reject's NACK for the innermost callback's message, and
 * the NACKs the peer has read (our packets up to max_pn that carried them) */
enum { WARP__REJECT_NONE, WARP__REJECT_QUEUED, WARP__REJECT_UNSENT };
int warp__nack_queue(warp_engine_t *e, uint16_t reason);
void warp__nacks_acked(warp_engine_t *e, struct warp_peer *p, uint64_t max_pn);
void warp__queue_low(warp_engine_t *e, struct warp_peer *p, struct warp_stream *s);
size_t warp__ack_encode(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t room);
void warp__announce_lows(warp_engine_t *e, struct warp_peer *p);
/* resil/breaker.c */
int warp__breaker_admit(warp_engine_t *e, struct warp_peer *p);
void warp__breaker_unadmit(warp_engine_t *e, struct warp_peer *p);
void warp__breaker_outcome(warp_engine_t *e, struct warp_peer *p, int status);
void warp__breaker_timer(struct warp_timer *t, uint64_t now);
/* crypto/handshake.c */
int warp__sec_init(warp_engine_t *e);
void warp__sec_fini(warp_engine_t *e);
void warp__hs_begin(warp_engine_t *e, struct warp_peer *p);
void warp__hs_rx(warp_engine_t *e, struct warp_peer *p, struct warp_pkt *pkt);
size_t warp__hs_build(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t room);
void warp__hs_retry_timer(struct warp_timer *t, uint64_t now);
/* Packet protection: seal the packet b[0, body) in place (header type and
 * key generation set here); returns the sealed length. */
size_t warp__protect(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t body, uint64_t pn);
/* Open a PROTECTED packet in place: returns the plaintext body end (header
 * + frames), or -(1 + drop reason). */
long warp__unprotect(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t len,
		     const struct warp_pkt_hdr *h);
/* engine/engine.c */
void warp__engine_tick(warp_engine_t *e);
/* engine/peer.c */
void warp__peer_hb_timer(struct warp_timer *t, uint64_t now);
void warp__peer_probe_timer(struct warp_timer *t, uint64_t now);
void warp__peer_failover(warp_engine_t *e, struct warp_peer *p);
void warp__peer_failback(warp_engine_t *e, struct warp_peer *p);
uint64_t warp__conn_id(const char *node);
int warp__parse_node_id(const char *s, char *name, size_t name_cap, const char **addr);

#endif
