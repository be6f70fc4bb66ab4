/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transmit side: queue messages per stream, schedule streams by priority,
 * coalesce small messages and fragment large ones into packets, hand the
 * packets to the drivers in bursts.
 */
#include <string.h>

#include "engine/engine_priv.h"
#include "warp/error.h"

/* A fragment shorter than this is not started at the end of a packet
 * that already holds other frames; the message starts in the next packet. */
#define MIN_FRAGMENT 64u

/* ---- per-peer priority lists: one bit per priority with data, a circular
 * round-robin list of streams per priority ---------------------------------- */

static void stream_activate(struct warp_peer *p, struct warp_stream *s)
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

static void stream_deactivate(struct warp_peer *p, struct warp_stream *s)
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

static bool peer_has_tx(const struct warp_peer *p)
{
	return p->close_pending || p->hb_pending || p->hb_reply_pending ||
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

static void txmsg_free(warp_engine_t *e, struct warp_txmsg *m)
{
	warp__buddy_free(&e->txa, m->data);
	m->data = NULL;
	warp__idx_put(&e->txmsg_free, (uint32_t)(m - e->txmsgs));
}

int warp__tx_enqueue(warp_engine_t *e, warp_stream_t *s, uint64_t msg_id, const void *buf,
		     size_t len, int32_t chan)
{
	struct warp_peer *p = s->peer;
	if (warp__unlikely(p->closed))
		return WARP_ECLOSED;
	int64_t i = warp__idx_get(&e->txmsg_free);
	if (warp__unlikely(i < 0))
		goto full;
	struct warp_txmsg *m = &e->txmsgs[i];
	m->data = warp__buddy_alloc(&e->txa, len);
	if (warp__unlikely(!m->data)) {
		warp__idx_put(&e->txmsg_free, (uint32_t)i);
		goto full;
	}
	if (len)
		memcpy(m->data, buf, len);
	m->len = (uint32_t)len;
	m->sent = 0;
	m->msg_id = msg_id;
	m->chan = chan;
	m->next = NULL;
	if (s->tail)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	stream_activate(p, s);
	warp__tx_activate_peer(e, p);
	warp__stat(e, msgs_sent, 1);
	if (len > e->stream_payload_max)
		warp__stat(e, msgs_fragmented, 1);
	return 0;
full:
	return WARP_EAGAIN;
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
		while (s->head) {
			struct warp_txmsg *m = s->head;
			s->head = m->next;
			warp__stat(e, msgs_dropped_closed, 1);
			warp__report_send_failure(e, p, s->id, m->msg_id, status, m->chan);
			txmsg_free(e, m);
		}
		s->tail = NULL;
		stream_deactivate(p, s);
	}
}

/* Build one packet for p into pkt. Returns its length (0: nothing to send). */
static uint32_t build_packet(warp_engine_t *e, struct warp_peer *p, struct warp_pkt *pkt)
{
	uint8_t *b = pkt->data;
	size_t room = e->cfg.mtu - WARP_WIRE_TAG_RESERVE;
	size_t off = warp__hdr_encode(b, room, WARP_PKT_FRAMES, e->conn_id, p->next_pkt_num);
	size_t start = off;

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

	struct warp_stream *s;
	while ((s = stream_most_urgent(p)) != NULL) {
		if (room - off < WARP_FRAME_STREAM_HDR)
			break;
		struct warp_txmsg *m = s->head;
		size_t space = room - off - WARP_FRAME_STREAM_HDR;
		size_t left = m->len - m->sent;
		size_t take = left < space ? left : space;
		if (take < left && take < MIN_FRAGMENT && off > start)
			break;
		off += warp__frame_stream_encode(b + off, room - off, s->id, m->msg_id, m->len,
						 m->sent, m->data + m->sent, (uint16_t)take);
		m->sent += (uint32_t)take;
		warp__stat(e, tx_frames, 1);
		if (m->sent == m->len) {
			/* v1 is at-most-once: a framed message is done. The
			 * reliability layer keeps it until acknowledged. */
			s->head = m->next;
			if (!s->head) {
				s->tail = NULL;
				stream_deactivate(p, s);
			}
			txmsg_free(e, m);
		}
		/* Round-robin among streams of equal priority. */
		if (s->active && p->prio_head[s->prio] == s)
			p->prio_head[s->prio] = s->rr_next;
	}
	if (off == start)
		return 0;
	p->next_pkt_num++;
	return (uint32_t)off;
}

unsigned warp__tx_build(warp_engine_t *e)
{
	unsigned built = 0;
	while (e->tx_active) {
		struct warp_peer *p = e->tx_active;
		struct warp_peer_tp *ptp = &p->tp[p->active_tp];
		struct warp_transport *t = &e->tp[ptp->transport];
		if (t->ntxq >= e->tx_cap)
			break; /* driver behind: keep the rest queued */
		struct warp_pkt *pkt = warp__pkt_get(&e->pkts);
		if (!pkt)
			break;
		uint32_t len = build_packet(e, p, pkt);
		if (len) {
			pkt->len = len;
			pkt->addr = ptp->addr;
			pkt->transport = ptp->transport;
			t->txq[t->ntxq++] = pkt;
			built++;
		} else {
			warp__pkt_put(&e->pkts, pkt);
		}
		/* Next peer gets the next packet (fair across peers). */
		e->tx_active = p->tx_next;
		if (!peer_has_tx(p))
			peer_deactivate(e, p);
	}
	return built;
}

unsigned warp__tx_flush(warp_engine_t *e)
{
	unsigned sent = 0;
	for (uint32_t i = 0; i < e->n_tp; i++) {
		struct warp_transport *t = &e->tp[i];
		if (!t->ntxq)
			continue;
		uint64_t bytes = 0;
		for (uint32_t k = 0; k < t->ntxq; k++)
			bytes += t->txq[k]->len;
		uint16_t n = t->tx_burst(t->ctx, t->txq, (uint16_t)t->ntxq, e->now);
		if (n < t->ntxq) {
			for (uint32_t k = n; k < t->ntxq; k++)
				bytes -= t->txq[k]->len;
			memmove(t->txq, t->txq + n, (t->ntxq - n) * sizeof(*t->txq));
			warp__stat(e, tx_driver_full, t->ntxq - n);
		}
		t->ntxq -= n;
		warp__stat(e, tx_packets, n);
		warp__stat(e, tx_bytes, bytes);
		sent += n;
	}
	return sent;
}
