/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transmit side: queue messages per stream, schedule streams by priority,
 * coalesce small messages and fragment large ones into packets, hand the
 * packets to the drivers in bursts.
 */
#include <string.h>

#include "engine/engine_priv.h"
#include "warp/error.h"


/* ---- per-peer priority lists: one bit per priority with data, a circular
 * round-robin list of streams per priority ---------------------------------- */

void warp__stream_activate(struct warp_peer *p, struct warp_stream *s)
{
	if (s->active)
		return;
	s->active = true;
	struct warp_stream *h = p->prio_head[s->prio];
	if (!h) {
		s->rr_next = s->rr_prev = s;
		p->prio_head[s->prio] = s;
		p->prio_bits[s->prio >> 6] |= 1ull << (s->prio & 63);
	} else { /* insert at the tail: just before the head */
		s->rr_next = h;
		s->rr_prev = h->rr_prev;
		h->rr_prev->rr_next = s;
		h->rr_prev = s;
	}
}

void warp__stream_deactivate(struct warp_peer *p, struct warp_stream *s)
{
	if (!s->active)
		return;
	s->active = false;
	if (s->rr_next == s) {
		p->prio_head[s->prio] = NULL;
		p->prio_bits[s->prio >> 6] &= ~(1ull << (s->prio & 63));
	} else {
		s->rr_prev->rr_next = s->rr_next;
		s->rr_next->rr_prev = s->rr_prev;
		if (p->prio_head[s->prio] == s)
			p->prio_head[s->prio] = s->rr_next;
	}
	s->rr_next = s->rr_prev = NULL;
}

static struct warp_stream *stream_most_urgent(struct warp_peer *p)
{
	for (unsigned w = 0; w < 4; w++)
		if (p->prio_bits[w])
			return p->prio_head[w * 64 + (unsigned)__builtin_ctzll(p->prio_bits[w])];
	return NULL;
}

/* A NACK not in any packet in flight: it needs a packet of its own if
 * nothing else goes out (the others ride along with whatever does). */
static bool nacks_due(const struct warp_peer *p)
{
	for (uint32_t i = 0; i < p->n_nacks; i++)
		if (p->nacks[i].due)
			return true;
	return false;
}

static bool peer_has_tx(const struct warp_peer *p)
{
	return p->hs_tx || p->close_pending || p->hb_pending || p->hb_reply_pending || p->ack_pending ||
	       p->probe_pending || p->n_credit_pending ||
	       (p->n_nacks && nacks_due(p)) || p->low_list || p->rtx_head != p->rtx_tail ||
	       (p->prio_bits[0] | p->prio_bits[1] | p->prio_bits[2] | p->prio_bits[3]);
}

void warp__tx_activate_peer(warp_engine_t *e, struct warp_peer *p)
{
	if (p->tx_active)
		return;
	p->tx_active = true;
	struct warp_peer *h = e->tx_active;
	if (!h) {
		p->tx_next = p->tx_prev = p;
		e->tx_active = p;
	} else {
		p->tx_next = h;
		p->tx_prev = h->tx_prev;
		h->tx_prev->tx_next = p;
		h->tx_prev = p;
	}
}

static void peer_deactivate(warp_engine_t *e, struct warp_peer *p)
{
	if (!p->tx_active)
		return;
	p->tx_active = false;
	if (p->tx_next == p) {
		e->tx_active = NULL;
	} else {
		p->tx_prev->tx_next = p->tx_next;
		p->tx_next->tx_prev = p->tx_prev;
		if (e->tx_active == p)
			e->tx_active = p->tx_next;
	}
	p->tx_next = p->tx_prev = NULL;
}

static inline uint32_t frag_len(const warp_engine_t *e, const struct warp_txmsg *m, uint32_t i)
{
	uint32_t off = i * e->stream_payload_max;
	uint32_t left = m->len - off;
	return left < e->stream_payload_max ? left : e->stream_payload_max;
}

void warp__txmsg_drop_data(warp_engine_t *e, struct warp_txmsg *m)
{
	warp__buddy_free(&e->txa, m->data);
	m->data = NULL;
	m->gen++; /* fragment references to it are stale from now on */
}

void warp__txmsg_free(warp_engine_t *e, struct warp_txmsg *m)
{
	warp__txmsg_drop_data(e, m);
	warp__idx_put(&e->txmsg_free, (uint32_t)(m - e->txmsgs));
}

int warp__tx_enqueue(warp_engine_t *e, warp_stream_t *s, uint64_t msg_id, const void *buf,
		     size_t len, int32_t chan)
{
	struct warp_peer *p = s->peer;
	if (warp__unlikely(p->closed || e->shutting_down))
		return WARP_ECLOSED;
	/* refused (not timed out: then the message waits for the next attempt) */
	if (warp__unlikely(p->ss == WARP_SESSION_FAILED) &&
	    (p->hs_status != WARP_ETIMEDOUT || p->hs_gave_up))
		return warp__err(p->hs_status, "handshake with '%s': %s", p->node, p->hs_error);
	/* flow control: queue no more than the peer's window ahead */
	if (warp__unlikely(p->queued_bytes && p->queued_bytes + len > p->peer_window))
		return WARP_EAGAIN;
	int rc = warp__breaker_admit(e, p);
	if (warp__unlikely(rc))
		return rc;
	int64_t i = warp__idx_get(&e->txmsg_free);
	if (warp__unlikely(i < 0)) {
		warp__breaker_unadmit(e, p); /* not sent: not a trial */
		return WARP_EAGAIN;
	}
	struct warp_txmsg *m = &e->txmsgs[i];
	uint32_t nfrags = warp__tx_nfrags(len, e->stream_payload_max);
	size_t body = (len + 7) & ~(size_t)7;
	m->data = warp__buddy_alloc(&e->txa, warp__tx_block_bytes(len, e->stream_payload_max));
	if (warp__unlikely(!m->data)) {
		warp__idx_put(&e->txmsg_free, (uint32_t)i);
		warp__breaker_unadmit(e, p);
		return WARP_EAGAIN;
	}
	if (len)
		memcpy(m->data, buf, len);
	m->acked = (uint64_t *)(void *)(m->data + body);
	memset(m->acked, 0, ((nfrags + 63) / 64) * 8);
	m->len = (uint32_t)len;
	m->nfrags = nfrags;
	m->next_frag = 0;
	m->acked_frags = 0;
	m->retries = 0;
	m->deadline_ns = 0;
	m->queued_ns = e->now;
	m->msg_id = msg_id;
	m->chan = chan;
	m->stream = s;
	m->unext = NULL;
	m->uprev = s->utail;
	if (s->utail)
		s->utail->unext = m;
	else
		s->uhead = m;
	s->utail = m;
	if (!s->cursor)
		s->cursor = m;
	s->last_id = msg_id;
	s->any_queued = true;
	p->unsettled++;
	e->unsettled++;
	p->queued_bytes += len;
	warp__stream_activate(p, s);
	warp__tx_activate_peer(e, p);
	warp__stat(e, msgs_sent, 1);
	if (nfrags > 1)
		warp__stat(e, msgs_fragmented, 1);
	return 0;
}

int warp_send(warp_engine_t *e, warp_stream_t *s, const void *buf, size_t len, uint64_t *msg_id)
{
	if (warp__unlikely(!e || !s || (!buf && len)))
		return WARP_EINVAL;
	if (warp__unlikely(len > e->cfg.max_payload_bytes)) {
		warp__stat(e, send_too_big, 1);
		return WARP_ETOOBIG;
	}
	int rc = warp__tx_enqueue(e, s, s->next_msg_id, buf, len, -1);
	if (rc) {
		if (rc == WARP_EAGAIN)
			warp__stat(e, send_backpressure, 1);
		return rc;
	}
	if (msg_id)
		*msg_id = s->next_msg_id;
	s->next_msg_id++;
	return 0;
}

void warp__tx_drop_peer_queue(warp_engine_t *e, struct warp_peer *p, int status)
{
	for (uint32_t i = 0; i < p->n_streams; i++) {
		struct warp_stream *s = &p->streams[i];
		while (s->uhead) {
			warp__stat(e, msgs_dropped_closed, 1);
			warp__settle(e, s->uhead, status, 0);
		}
		warp__stream_deactivate(p, s);
	}
	p->rtx_head = p->rtx_tail = 0;
}

/* Put one fragment of m into the packet: returns the frame length, 0 when
 * it does not fit (or the reference ring is full). */
static size_t put_frag(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t room,
		       struct warp_txmsg *m, uint32_t frag, uint32_t *bytes)
{
	if (p->fref_head - p->fref_tail > p->fref_mask)
		return 0;
	uint32_t flen = frag_len(e, m, frag);
	uint32_t off = frag * e->stream_payload_max;
	size_t n = warp__frame_stream_encode(b, room, m->stream->id, m->msg_id, m->len, off,
					     m->data + off, (uint16_t)flen);
	if (!n)
		return 0;
	warp__frame_stream_set_guarantee(b, m->stream->guarantee);
	struct warp_fref *r = &p->frefs[p->fref_head++ & p->fref_mask];
	r->msg = (uint32_t)(m - e->txmsgs);
	r->gen = m->gen;
	r->frag = frag;
	if (!m->deadline_ns && m->stream->guarantee != WARP__AMO && m->stream->ack_timeout_ns) {
		m->deadline_ns = e->now + m->stream->ack_timeout_ns;
		/* the peer's timer also watches message deadlines */
		if (!warp__timer_armed(&p->rto_timer) || p->rto_timer.deadline_ns > m->deadline_ns)
			warp__wheel_arm(&e->wheel, &p->rto_timer, m->deadline_ns);
	}
	warp__stat(e, tx_frames, 1);
	*bytes += flen;
	return n;
}

enum build_mode {
	BUILD_ALL,   /* everything due, on the active transport */
	BUILD_REPLY, /* only the ACK and heartbeat reply (on the transport data came over) */
	BUILD_PROBE, /* only a heartbeat request (on the first transport, while failed over) */
	BUILD_HANDSHAKE, /* the handshake's frames (crypto/handshake.c), on the active transport */
};

/* Build one packet for p into pkt. Returns its length (0: nothing to send). */
static uint32_t build_packet(warp_engine_t *e, struct warp_peer *p, struct warp_pkt *pkt,
			     enum build_mode mode)
{
	uint8_t *b = pkt->data;
	size_t room = e->cfg.mtu - WARP_WIRE_TAG_RESERVE;
	uint64_t pn = p->next_pkt_num;
	/* pure ACKs are done when sent: let the tail move past them */
	warp__retire(p);
	/* A packet that needs an acknowledgement needs a free slot in the
	 * sent ring; without one only an ACK goes out. */
	bool can_track = pn - p->sent_tail <= p->sent_mask;
	size_t off = warp__hdr_encode(b, room, WARP_PKT_FRAMES, e->conn_id, pn);
	size_t start = off;
	uint64_t fref_first = p->fref_head;
	uint16_t low_stream = 0;
	bool credit_sent = false;
	bool nack_sent = false;
	uint32_t pkt_bytes = 0;

	/* Every NACK not yet known to be read goes first in every packet, so
	 * the sender reads it before any ACK of the packet that carried the
	 * refused message (and settles the message as refused, not as
	 * delivered). They stay in the list until a tracked packet that
	 * carried them is acknowledged (warp__nacks_acked); a packet that
	 * only repeats them is not built unless one is due (lost, or new). */
	bool nack_due = false;
	for (uint32_t i = 0; i < p->n_nacks; i++) {
		size_t n = warp__frame_nack_encode(b + off, room - off, p->nacks[i].stream,
						   p->nacks[i].msg_id, p->nacks[i].reason);
		if (!n) /* 16 of 14 bytes always fit: cannot happen */
			return 0;
		off += n;
		nack_due |= p->nacks[i].due;
		nack_sent = true;
	}
	size_t after_nacks = off;
	if (mode == BUILD_PROBE) {
		off += warp__frame_heartbeat_encode(b + off, room - off, 0, ++p->hb_seq, e->now);
		p->probe_pending = false;
		warp__stat(e, heartbeats_tx, 1);
		can_track = false; /* a probe is not resent */
		goto done;
	}
	if (p->ack_pending) {
		size_t n = warp__ack_encode(e, p, b + off, room - off);
		if (n) {
			off += n;
			p->ack_pending = false;
			/* with every ACK, the window we can take now */
			uint64_t free_rx = e->rxa.size - e->rxa.in_use;
			uint64_t w = WARP__MIN(e->cfg.rx_window_bytes, free_rx);
			off += warp__frame_credit_encode(b + off, room - off, (uint32_t)w);
		}
	}
	size_t after_ack = off;
	if (mode == BUILD_REPLY) {
		if (p->hb_reply_pending) {
			off += warp__frame_heartbeat_encode(b + off, room - off, WARP_HEARTBEAT_REPLY,
							    p->hb_reply_seq, p->hb_reply_ts);
			p->hb_reply_pending = false;
		}
		can_track = false; /* acks and replies are not resent */
		goto done;
	}
	if (!can_track)
		goto done;

	/* Control frames first (priorities 0..15). */
	if (p->close_pending) {
		size_t n = warp__frame_close_encode(b + off, room - off, p->close_code,
						    p->close_reason);
		if (n) {
			off += n;
			p->close_pending = false;
		}
	}
	if (p->hb_reply_pending) {
		size_t n = warp__frame_heartbeat_encode(b + off, room - off, WARP_HEARTBEAT_REPLY,
							p->hb_reply_seq, p->hb_reply_ts);
		if (n) {
			off += n;
			p->hb_reply_pending = false;
		}
	}
	if (p->hb_pending) {
		size_t n = warp__frame_heartbeat_encode(b + off, room - off, 0, ++p->hb_seq, e->now);
		if (n) {
			off += n;
			p->hb_pending = false;
			warp__stat(e, heartbeats_tx, 1);
		}
	}
	if (p->n_credit_pending) { /* per-stream grants of ordered streams we receive */
		for (uint32_t i = 0; i < e->cfg.max_streams && p->n_credit_pending; i++) {
			struct warp_rxstream *r = &p->rxs[i];
			if (!r->used || !r->credit_pending)
				continue;
			size_t n = warp__frame_stream_credit_encode(b + off, room - off, r->id,
								    r->credit_sent);
			if (!n)
				break;
			off += n;
			r->credit_pending = false;
			p->n_credit_pending--;
			credit_sent = true;
		}
	}
	if (p->low_list) { /* one per packet, so a loss can requeue it exactly */
		struct warp_stream *s = p->low_list;
		size_t n = warp__frame_stream_low_encode(b + off, room - off, s->id, s->low_sent);
		if (n) {
			off += n;
			s->low_pending = false;
			p->low_list = s->low_next;
			low_stream = (uint16_t)(s - p->streams + 1);
		}
	}

	/* Resends before new data. */
	while (p->rtx_head != p->rtx_tail) {
		struct warp_fref *r = &p->rtx[p->rtx_tail & p->rtx_mask];
		struct warp_txmsg *m = &e->txmsgs[r->msg];
		if (m->gen != r->gen || !m->data || (m->acked[r->frag / 64] >> (r->frag % 64)) & 1) {
			p->rtx_tail++; /* settled or acknowledged meanwhile */
			continue;
		}
		size_t n = put_frag(e, p, b + off, room - off, m, r->frag, &pkt_bytes);
		if (!n)
			break;
		off += n;
		p->rtx_tail++;
		warp__stat(e, retransmits, 1);
	}

	struct warp_stream *s;
	while ((s = stream_most_urgent(p)) != NULL) {
		struct warp_txmsg *m = s->cursor;
		if (s->guarantee != WARP__AMO && m->msg_id >= s->credit_max) {
			/* the receiver has not granted this id yet: park the stream */
			warp__stream_deactivate(p, s);
			s->credit_blocked = true;
			warp__stat(e, flow_blocked, 1);
			if (!s->blocked_since && s->ack_timeout_ns) {
				/* a receiver that never grants more (gone, or stuck)
				 * must not hold these for ever: the peer's timer also
				 * watches the wait */
				s->blocked_since = e->now ? e->now : 1;
				uint64_t at = s->blocked_since + s->ack_timeout_ns;
				if (!warp__timer_armed(&p->rto_timer) || p->rto_timer.deadline_ns > at)
					warp__wheel_arm(&e->wheel, &p->rto_timer, at);
			}
			continue;
		}
		uint32_t flen = frag_len(e, m, m->next_frag);
		uint64_t limit = WARP__MIN((uint64_t)p->peer_window, e->cc->window(&p->cc));
		if (p->inflight_bytes + pkt_bytes > 0 &&
		    p->inflight_bytes + pkt_bytes + flen > limit) {
			/* the peer's window or the congestion window is full */
			warp__stat(e, flow_blocked, 1);
			break;
		}
		size_t n = put_frag(e, p, b + off, room - off, m, m->next_frag, &pkt_bytes);
		if (!n)
			break; /* the next fragment starts the next packet */
		off += n;
		p->queued_bytes -= flen;
		if (++m->next_frag == m->nfrags) {
			s->cursor = m->unext;
			if (!s->cursor)
				warp__stream_deactivate(p, s);
		}
		/* Round-robin among streams of equal priority. */
		if (s->active && p->prio_head[s->prio] == s)
			p->prio_head[s->prio] = s->rr_next;
	}
done:
	if (off == start || (off == after_nacks && !(nack_due && can_track)))
		return 0; /* nothing, or only NACKs already in flight (or that a
			   * packet that is not tracked would not get read for sure) */
	p->next_pkt_num++;
	size_t body = off;
	off = p->encrypted ? warp__protect(e, p, b, off, pn) : warp__pkt_seal(b, off);
	if (can_track && (body > after_ack || nack_sent || p->fref_head != fref_first)) {
		/* ack-eliciting: track it */
		struct warp_sent *st = &p->sent[pn & p->sent_mask];
		st->pkt_num = pn;
		st->sent_ns = e->now;
		st->fref_first = fref_first;
		st->fref_n = (uint16_t)(p->fref_head - fref_first);
		st->state = SENT_INFLIGHT;
		st->eliciting = 1;
		st->low_stream = low_stream;
		st->bytes = pkt_bytes;
		st->credit = credit_sent;
		st->nacks = nack_sent;
		for (uint32_t i = 0; nack_sent && i < p->n_nacks; i++) {
			p->nacks[i].due = false;
			if (p->nacks[i].pn == UINT64_MAX)
				p->nacks[i].pn = pn;
		}
		p->inflight_bytes += pkt_bytes;
		uint64_t rto_at = e->now + (p->rto_ns << p->rto_backoff);
		if (!warp__timer_armed(&p->rto_timer) || p->rto_timer.deadline_ns > rto_at)
			warp__wheel_arm(&e->wheel, &p->rto_timer, rto_at);
	} else if (can_track) {
		struct warp_sent *st = &p->sent[pn & p->sent_mask];
		st->pkt_num = pn;
		st->state = SENT_DONE; /* a pure ACK is never acknowledged */
		st->fref_first = fref_first;
		st->fref_n = 0;
		st->eliciting = 0;
		st->low_stream = 0;
		st->bytes = 0;
		st->credit = false;
		st->nacks = false;
	}
	return (uint32_t)off;
}

/* Queue one packet of the given mode for p on its transport number tpi.
 * Returns 1 when a packet was queued, 0 when nothing was due, -1 when the
 * driver queue or the pool is full. */
static int queue_packet(warp_engine_t *e, struct warp_peer *p, uint32_t tpi, enum build_mode mode)
{
	struct warp_peer_tp *ptp = &p->tp[tpi];
	struct warp_transport *t = &e->tp[ptp->transport];
	if (t->ntxq >= e->tx_cap)
		return -1; /* driver behind: keep the rest queued */
	if (warp__unlikely(p->drv_blocked & (1u << tpi)))
		return 0; /* its last packet still waits for the driver */
	struct warp_pkt *pkt = warp__pkt_get(&e->pkts);
	if (!pkt)
		return -1;
	uint32_t len = mode == BUILD_HANDSHAKE
			       ? (uint32_t)warp__hs_build(e, p, pkt->data,
							  e->cfg.mtu - WARP_WIRE_TAG_RESERVE)
			       : build_packet(e, p, pkt, mode);
	if (!len) {
		warp__pkt_put(&e->pkts, pkt);
		return 0;
	}
	pkt->len = len;
	pkt->addr = ptp->addr;
	pkt->transport = ptp->transport;
	pkt->peer = (uint32_t)(p - e->peers);
	pkt->peer_tp = (uint8_t)tpi;
	t->txq[t->ntxq++] = pkt;
	e->tx_queued = true;
	return 1;
}

unsigned warp__tx_build(warp_engine_t *e)
{
	unsigned built = 0;
	unsigned idle_peers = 0;
	while (e->tx_active) {
		struct warp_peer *p = e->tx_active;
		int r = 0;
		if (warp__unlikely(p->hs_tx)) {
			r = queue_packet(e, p, p->active_tp, BUILD_HANDSHAKE);
			if (r < 0)
				break;
			built += (unsigned)r;
			if (p->ss != WARP_SESSION_UP) {
				/* nothing else goes out before the session */
				e->tx_active = p->tx_next;
				if (!p->hs_tx || !r)
					peer_deactivate(e, p);
				continue;
			}
		}
		/* acks and replies go back over the transport the peer used: a
		 * heartbeat reply over the one its request came in on (a failback
		 * probe's reply must come back over the first transport, even
		 * when data came over another in the same poll) */
		uint32_t rtp = p->hb_reply_pending ? p->hb_reply_tp : p->ack_tp;
		if ((p->ack_pending || p->hb_reply_pending) && rtp != p->active_tp &&
		    rtp < p->n_tp) {
			r = queue_packet(e, p, rtp, BUILD_REPLY);
			if (r < 0)
				break;
			built += (unsigned)r;
		}
		if (p->probe_pending && p->active_tp != 0) {
			r = queue_packet(e, p, 0, BUILD_PROBE);
			if (r < 0)
				break;
			built += (unsigned)r;
		}
		p->probe_pending = false;
		r = queue_packet(e, p, p->active_tp, BUILD_ALL);
		if (r < 0)
			break;
		built += (unsigned)r;
		if (r)
			idle_peers = 0;
		/* Next peer gets the next packet (fair across peers). */
		e->tx_active = p->tx_next;
		if (!peer_has_tx(p)) {
			peer_deactivate(e, p);
		} else if (!r) {
			/* blocked (window or reference ring full): wait for acks */
			peer_deactivate(e, p);
			if (++idle_peers > e->n_peers)
				break;
		}
	}
	return built;
}

unsigned warp__tx_flush(warp_engine_t *e)
{
	unsigned sent = 0;
	e->tx_queued = false;
	for (uint32_t i = 0; i < e->n_tp; i++) {
		struct warp_transport *t = &e->tp[i];
		if (!t->ntxq)
			continue;
		uint64_t bytes = 0;
		for (uint32_t k = 0; k < t->ntxq; k++)
			bytes += t->txq[k]->len;
		/* the peers of what was refused last time are let go; those
		 * refused again are held back again below */
		for (uint32_t k = 0; k < t->nrefused; k++) {
			struct warp_peer *p = &e->peers[t->txq[k]->peer];
			p->drv_blocked &= (uint8_t)~(1u << t->txq[k]->peer_tp);
			warp__tx_activate_peer(e, p);
		}
		uint16_t n = t->tx_burst(t->ctx, t->txq, (uint16_t)t->ntxq, e->now);
		if (n < t->ntxq) {
			for (uint32_t k = n; k < t->ntxq; k++) {
				bytes -= t->txq[k]->len;
				e->peers[t->txq[k]->peer].drv_blocked |=
					(uint8_t)(1u << t->txq[k]->peer_tp);
			}
			memmove(t->txq, t->txq + n, (t->ntxq - n) * sizeof(*t->txq));
			warp__stat(e, tx_driver_full, t->ntxq - n);
		}
		t->ntxq -= n;
		t->nrefused = t->ntxq;
		if (t->ntxq)
			e->tx_queued = true; /* the driver was full: again next poll */
		warp__stat(e, tx_packets, n);
		warp__stat(e, tx_bytes, bytes);
		sent += n;
	}
	return sent;
}
