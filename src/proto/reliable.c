/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reliability: acknowledgements, RTT estimate and retransmission timeout,
 * loss detection, resends, message outcomes (completions), and the receive
 * side of ordered streams (in-order delivery, deduplication, STREAM_LOW).
 *
 * Sender: every ack-eliciting packet is recorded in the peer's sent ring
 * with references to the message fragments it carried. An ACK marks packets
 * acknowledged and their fragments received; a message whose fragments are
 * all acknowledged completes with status 0. A packet is lost when one three
 * numbers later is acknowledged (fast retransmit) or when the RTO passes;
 * its unacknowledged fragments are resent (at-least-once, exactly-once) or
 * their message completes with WARP_ETIMEDOUT (at-most-once, or after
 * max_retries / ack_timeout). A given-up message on an ordered stream is
 * announced with STREAM_LOW so the receiver does not wait for it.
 */
#include <string.h>

#include "engine/engine_priv.h"
#include "warp/error.h"

#define PKT_THRESHOLD 3

/* ---- completions -------------------------------------------------------- */

/* An ordered stream's receiver must not wait for a message that will not
 * come: announce the new low-water mark. The mark is the oldest message not
 * settled, so one given up while an older one is still in flight is owed:
 * announced once the older ones settle, however they do (else the receiver
 * waits for it for good). A close drops messages without a mark: the reopen
 * announces it. */
static void stream_low_update(warp_engine_t *e, struct warp_stream *s, uint64_t msg_id, int status)
{
	if (status && status != WARP_ECLOSED && s->guarantee != WARP__AMO &&
	    msg_id + 1 > s->low_owed)
		s->low_owed = msg_id + 1;
	if (warp__unlikely(s->low_owed)) {
		uint64_t low = warp__stream_low(s);
		if (low > s->low_sent) {
			s->low_sent = low;
			warp__queue_low(e, s->peer, s);
		}
		if (low >= s->low_owed)
			s->low_owed = 0;
	}
}

void warp__stream_refused(warp_engine_t *e, struct warp_stream *s, uint64_t msg_id, int status)
{
	if (s->guarantee == WARP__AMO)
		return;
	if (!s->any_queued || msg_id > s->last_id)
		s->last_id = msg_id;
	s->any_queued = true;
	stream_low_update(e, s, msg_id, status);
}

void warp__settle(warp_engine_t *e, struct warp_txmsg *m, int status, uint16_t reason)
{
	struct warp_stream *s = m->stream;
	struct warp_peer *p = s->peer;
	if (m->uprev)
		m->uprev->unext = m->unext;
	else
		s->uhead = m->unext;
	if (m->unext)
		m->unext->uprev = m->uprev;
	else
		s->utail = m->uprev;
	if (s->cursor == m) {
		s->cursor = m->unext;
		if (!s->cursor)
			warp__stream_deactivate(p, s);
	}
	if (m->next_frag < m->nfrags) { /* never fully framed: release its queued bytes */
		uint64_t framed = (uint64_t)m->next_frag * e->stream_payload_max;
		p->queued_bytes -= m->len - (framed < m->len ? framed : m->len);
	}
	if (status == 0)
		warp__stat(e, msgs_acked, 1);
	else if (status == WARP_ENACK)
		warp__stat(e, msgs_nacked, 1);
	else if (status == WARP_ETIMEDOUT)
		warp__stat(e, msgs_timed_out, 1);
	stream_low_update(e, s, m->msg_id, status);
	uint16_t sid = s->id;
	uint64_t mid = m->msg_id;
	int chan = m->chan;
	p->unsettled--;
	e->unsettled--;
	/* at-most-once losses are expected: only reliable messages that ran out
	 * of retries (or were acknowledged) speak for the peer's health */
	bool verdict = s->guarantee != WARP__AMO || status == 0;
	/* a channel's completion goes into its ring now, or waits in m (never
	 * lost: m's slot is what bounds the sends awaiting completions) */
	if (chan >= 0 && !warp__deliver_completion(e, p, sid, mid, status, reason, chan))
		warp__completion_park(e, m, status, reason);
	else
		warp__txmsg_free(e, m);
	if (verdict)
		warp__breaker_outcome(e, p, status);
	else
		warp__breaker_unadmit(e, p); /* a lost at-most-once trial says nothing */
	if (chan < 0)
		warp__deliver_completion(e, p, sid, mid, status, reason, chan);
}

/* ---- acknowledgements ------------------------------------------------------ */

/* Lowest number y >= floor such that every number in [y, x] has its bit
 * equal to `set` in the receive window (x itself must have it). Word at a
 * time: an ACK is built on every reply, so this must not walk bit by bit. */
static uint64_t run_down(const struct warp_peer *p, uint64_t x, uint64_t floor, bool set)
{
	for (;;) {
		uint64_t w = p->rx_window[(x / 64) % WARP_RX_WINDOW_WORDS];
		if (set)
			w = ~w; /* look for the highest bit that breaks the run */
		unsigned pos = (unsigned)(x & 63);
		uint64_t below = pos == 63 ? ~0ull : ((1ull << (pos + 1)) - 1);
		uint64_t brk = w & below;
		uint64_t base = x - pos;
		if (brk) {
			uint64_t y = base + (unsigned)(63 - __builtin_clzll(brk)) + 1;
			return y < floor ? floor : y;
		}
		if (base <= floor)
			return floor;
		x = base - 1;
	}
}

size_t warp__ack_encode(warp_engine_t *e, struct warp_peer *p, uint8_t *b, size_t room)
{
	uint64_t largest = p->rx_largest;
	if (!largest)
		return 0;
	/* runs of received numbers separated by gaps, down from the largest */
	uint32_t ranges[2 * WARP_FRAME_ACK_MAX_RANGES];
	unsigned nr = 0;
	const uint64_t span = (WARP_RX_WINDOW_WORDS - 1) * 64;
	uint64_t floor = largest > span ? largest - span + 1 : 1;
	if (!((p->rx_window[(largest / 64) % WARP_RX_WINDOW_WORDS] >> (largest & 63)) & 1)) {
		/* the largest number seen was refused: acknowledge below it */
		uint64_t below = run_down(p, largest, floor, false);
		if (below <= floor)
			return 0;
		largest = below - 1;
	}
	uint64_t lo;
	if (p->rx_run_ok && largest == p->rx_largest) {
		/* [rx_run_lo, largest] is known received: scan only below it */
		lo = p->rx_run_lo > floor ? run_down(p, p->rx_run_lo, floor, true) : floor;
	} else {
		lo = run_down(p, largest, floor, true);
	}
	p->rx_run_lo = lo;
	p->rx_run_ok = largest == p->rx_largest;
	uint32_t first = (uint32_t)(largest - lo);
	while (nr < WARP_FRAME_ACK_MAX_RANGES && lo > floor) {
		/* lo - 1 is missing: find the received number below the gap */
		uint64_t gap_lo = run_down(p, lo - 1, floor, false);
		if (gap_lo <= floor &&
		    !((p->rx_window[(floor / 64) % WARP_RX_WINDOW_WORDS] >> (floor & 63)) & 1))
			break; /* nothing received below */
		uint64_t top = gap_lo - 1;
		if (gap_lo == floor || top < floor)
			break;
		uint64_t k = run_down(p, top, floor, true);
		ranges[2 * nr] = (uint32_t)(lo - top - 2);
		ranges[2 * nr + 1] = (uint32_t)(top - k);
		nr++;
		lo = k;
	}
	uint64_t delay_us = (e->now - p->ack_largest_rx_ns) / 1000;
	size_t w = warp__frame_ack_encode(b, room, largest, first,
					  (uint16_t)(delay_us > 65535 ? 65535 : delay_us), ranges,
					  (uint8_t)nr);
	if (w) {
		warp__stat(e, acks_tx, 1);
		p->acks_built++;
	}
	return w;
}

static void update_rtt(warp_engine_t *e, struct warp_peer *p, uint64_t sample)
{
	if (!p->srtt_ns) {
		p->srtt_ns = sample;
		p->rttvar_ns = sample / 2;
	} else {
		uint64_t d = p->srtt_ns > sample ? p->srtt_ns - sample : sample - p->srtt_ns;
		p->rttvar_ns = (3 * p->rttvar_ns + d) / 4;
		p->srtt_ns = (7 * p->srtt_ns + sample) / 8;
	}
	uint64_t var = 4 * p->rttvar_ns;
	if (var < e->cfg.timer_tick_ns)
		var = e->cfg.timer_tick_ns; /* the wheel cannot do better */
	uint64_t rto = p->srtt_ns + var;
	if (rto < e->cfg.rto_min_ns)
		rto = e->cfg.rto_min_ns;
	if (rto > e->cfg.rto_max_ns)
		rto = e->cfg.rto_max_ns;
	p->rto_ns = rto;
	warp__stat(e, rtt_samples, 1);
}

static void frag_acked(warp_engine_t *e, const struct warp_fref *r)
{
	struct warp_txmsg *m = &e->txmsgs[r->msg];
	if (m->gen != r->gen || !m->data)
		return; /* settled already */
	uint64_t bit = 1ull << (r->frag % 64);
	if (m->acked[r->frag / 64] & bit)
		return;
	m->acked[r->frag / 64] |= bit;
	if (++m->acked_frags == m->nfrags && m->next_frag == m->nfrags)
		warp__settle(e, m, 0, 0);
}

static void credit_pending(struct warp_peer *p, struct warp_rxstream *r)
{
	if (!r->credit_pending) {
		r->credit_pending = true;
		p->n_credit_pending++;
	}
}

void warp__queue_low(warp_engine_t *e, struct warp_peer *p, struct warp_stream *s)
{
	if (!s->low_pending) {
		s->low_pending = true;
		s->low_next = p->low_list;
		p->low_list = s;
	}
	warp__tx_activate_peer(e, p);
}

static void pkt_lost(warp_engine_t *e, struct warp_peer *p, struct warp_sent *st)
{
	st->state = SENT_DONE;
	p->inflight_bytes -= st->bytes;
	e->cc->on_loss(&p->cc, st->sent_ns, e->now);
	warp__stat(e, pkts_lost, 1);
	if (st->low_stream) /* the low-water mark it carried must still arrive */
		warp__queue_low(e, p, &p->streams[st->low_stream - 1]);
	if (st->nacks) /* the NACKs it carried must still be read: due again */
		for (uint32_t i = 0; i < p->n_nacks; i++)
			if (p->nacks[i].pn <= st->pkt_num)
				p->nacks[i].due = true;
	if (st->credit) /* grants are idempotent: announce them all again */
		for (uint32_t i = 0; i < e->cfg.max_streams; i++)
			if (p->rxs[i].used)
				credit_pending(p, &p->rxs[i]);
	for (uint16_t i = 0; i < st->fref_n; i++) {
		const struct warp_fref *r = &p->frefs[(st->fref_first + i) & p->fref_mask];
		struct warp_txmsg *m = &e->txmsgs[r->msg];
		if (m->gen != r->gen || !m->data || ((m->acked[r->frag / 64] >> (r->frag % 64)) & 1))
			continue;
		if (m->stream->guarantee == WARP__AMO) {
			warp__settle(e, m, WARP_ETIMEDOUT, 0); /* never resent */
			continue;
		}
		if (m->retries >= (uint64_t)m->stream->max_retries * m->nfrags ||
		    p->rtx_head - p->rtx_tail > p->rtx_mask) {
			warp__settle(e, m, WARP_ETIMEDOUT, 0);
			continue;
		}
		m->retries++;
		p->rtx[p->rtx_head++ & p->rtx_mask] = *r;
	}
	warp__tx_activate_peer(e, p);
}

/* Retire packets from the tail of the sent ring while they are done,
 * releasing their fragment references. */
void warp__retire(struct warp_peer *p)
{
	while (p->sent_tail < p->next_pkt_num) {
		struct warp_sent *st = &p->sent[p->sent_tail & p->sent_mask];
		if (st->pkt_num == p->sent_tail && st->state == SENT_INFLIGHT)
			break;
		if (st->pkt_num == p->sent_tail)
			p->fref_tail = st->fref_first + st->fref_n;
		p->sent_tail++;
	}
}

/* The peer's timer fires at the earliest of: the oldest packet in flight
 * reaching the RTO, and the oldest message deadline of each stream. */
static void rearm_rto(warp_engine_t *e, struct warp_peer *p)
{
	uint64_t at = UINT64_MAX;
	for (uint64_t n = p->sent_tail; n < p->next_pkt_num; n++) {
		struct warp_sent *st = &p->sent[n & p->sent_mask];
		if (st->pkt_num == n && st->state == SENT_INFLIGHT) {
			at = st->sent_ns + (p->rto_ns << p->rto_backoff);
			break;
		}
	}
	for (uint32_t i = 0; i < p->n_streams; i++) {
		const struct warp_txmsg *m = p->streams[i].uhead;
		uint64_t dl = m ? warp__msg_deadline(&p->streams[i], m) : 0;
		if (dl && dl < at)
			at = dl;
	}
	if (at == UINT64_MAX)
		warp__wheel_cancel(&e->wheel, &p->rto_timer);
	else
		warp__wheel_arm(&e->wheel, &p->rto_timer, at);
}

void warp__on_ack(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f)
{
	uint64_t hi = f->u.ack.largest;
	uint64_t lo = hi - f->u.ack.first_range;
	bool newly_largest = false;
	uint64_t sample_sent = 0;
	uint64_t nacks_read = 0; /* the largest of them that carried our NACKs */
	unsigned i = 0;
	for (;;) {
		/* this range: [lo, hi], clamped to what is in flight */
		uint64_t a = lo < p->sent_tail ? p->sent_tail : lo;
		uint64_t z = hi >= p->next_pkt_num ? p->next_pkt_num - 1 : hi;
		for (uint64_t n = a; n <= z && z >= a; n++) {
			struct warp_sent *st = &p->sent[n & p->sent_mask];
			if (st->pkt_num != n || st->state != SENT_INFLIGHT)
				continue;
			st->state = SENT_DONE;
			p->inflight_bytes -= st->bytes;
			e->cc->on_ack(&p->cc, st->bytes);
			if (st->nacks && n > nacks_read)
				nacks_read = n;
			if (n > p->largest_acked || !p->largest_acked) {
				newly_largest = true;
				sample_sent = st->sent_ns;
			}
			for (uint16_t k = 0; k < st->fref_n; k++)
				frag_acked(e, &p->frefs[(st->fref_first + k) & p->fref_mask]);
		}
		if (i == f->u.ack.nranges)
			break;
		uint64_t gap = warp__get32(f->u.ack.ranges + i * 8);
		uint64_t len = warp__get32(f->u.ack.ranges + i * 8 + 4);
		hi = lo - gap - 2;
		lo = hi - len;
		i++;
	}
	if (f->u.ack.largest > p->largest_acked && f->u.ack.largest < p->next_pkt_num)
		p->largest_acked = f->u.ack.largest;
	if (warp__unlikely(nacks_read))
		warp__nacks_acked(e, p, nacks_read);
	if (newly_largest && sample_sent) {
		uint64_t rtt = e->now - sample_sent;
		uint64_t delay = (uint64_t)f->u.ack.ack_delay_us * 1000;
		if (rtt > delay + e->cfg.timer_tick_ns / 100)
			rtt -= delay;
		update_rtt(e, p, rtt);
		p->rto_backoff = 0;
		p->rto_streak = 0;
	}
	/* fast retransmit: a packet PKT_THRESHOLD numbers below an acknowledged
	 * one is lost */
	for (uint64_t n = p->sent_tail; n + PKT_THRESHOLD <= p->largest_acked; n++) {
		struct warp_sent *st = &p->sent[n & p->sent_mask];
		if (st->pkt_num == n && st->state == SENT_INFLIGHT)
			pkt_lost(e, p, st);
	}
	warp__retire(p);
	rearm_rto(e, p);
	warp__tx_activate_peer(e, p); /* the window may have opened */
}

void warp__peer_new_path(warp_engine_t *e, struct warp_peer *p)
{
	for (uint64_t n = p->sent_tail; n < p->next_pkt_num; n++) {
		struct warp_sent *st = &p->sent[n & p->sent_mask];
		if (st->pkt_num == n && st->state == SENT_INFLIGHT)
			pkt_lost(e, p, st);
	}
	e->cc->init(&p->cc, e->cfg.mtu); /* after the losses: they were the old path's */
	p->rto_backoff = 0;
	p->rto_streak = 0;
	warp__retire(p);
	rearm_rto(e, p);
}

void warp__peer_rto_timer(struct warp_timer *t, uint64_t now)
{
	struct warp_peer *p = warp__container_of(t, struct warp_peer, rto_timer);
	warp_engine_t *e = p->engine;
	uint64_t rto = p->rto_ns << p->rto_backoff;
	bool fired = false;
	for (uint64_t n = p->sent_tail; n < p->next_pkt_num; n++) {
		struct warp_sent *st = &p->sent[n & p->sent_mask];
		if (st->pkt_num == n && st->state == SENT_INFLIGHT && st->sent_ns + rto <= now) {
			pkt_lost(e, p, st);
			fired = true;
		}
	}
	if (fired) {
		warp__stat(e, rto_fired, 1);
		if ((p->rto_ns << (p->rto_backoff + 1)) <= e->cfg.rto_max_ns)
			p->rto_backoff++;
		p->rto_streak++;
		/* nothing acknowledged for several timeouts: the path is gone
		 * (not for a closed peer: it drops every packet, ACKs too, so
		 * its CLOSE is never acknowledged) */
		if (p->rto_streak >= e->cfg.failover_after_rtos && !p->closed)
			warp__peer_failover(e, p);
	}
	/* messages past their ack_timeout */
	for (uint32_t i = 0; i < p->n_streams; i++) {
		struct warp_stream *s = &p->streams[i];
		for (;;) {
			uint64_t dl = s->uhead ? warp__msg_deadline(s, s->uhead) : 0;
			if (!dl || dl > now)
				break;
			warp__settle(e, s->uhead, WARP_ETIMEDOUT, 0);
		}
	}
	warp__retire(p);
	rearm_rto(e, p);
}

/* ---- receive side of ordered streams ------------------------------------ */

struct warp_rxstream *warp__rx_stream(warp_engine_t *e, struct warp_peer *p, uint16_t id,
				      uint8_t guarantee)
{
	struct warp_rxstream *freeslot = NULL;
	for (uint32_t i = 0; i < e->cfg.max_streams; i++) {
		struct warp_rxstream *r = &p->rxs[i];
		if (r->used && r->id == id) {
			/* a STREAM_LOW that came first made it at-least-once:
			 * the data says exactly-once, which keeps its
			 * deduplication across a reopen */
			if (guarantee == WARP__EO)
				r->guarantee = WARP__EO;
			return r;
		}
		if (!r->used && !freeslot)
			freeslot = r;
	}
	if (!freeslot)
		return NULL;
	freeslot->used = true;
	freeslot->id = id;
	freeslot->guarantee = guarantee;
	freeslot->next = 0;
	freeslot->held = -1;
	freeslot->credit_sent = e->cfg.stream_window_msgs; /* the implicit first grant */
	freeslot->credit_pending = false;
	return freeslot;
}

/* Grant more ids once a quarter of the stream window has been delivered. */
void warp__credit_check(warp_engine_t *e, struct warp_peer *p, struct warp_rxstream *r)
{
	uint64_t want = r->next + e->cfg.stream_window_msgs;
	if (want >= r->credit_sent + e->cfg.stream_window_msgs / 4) {
		r->credit_sent = want;
		credit_pending(p, r);
		warp__tx_activate_peer(e, p);
	}
}

void warp__rx_stream_reset(warp_engine_t *e, struct warp_peer *p, struct warp_rxstream *r)
{
	if (r->credit_pending) {
		r->credit_pending = false;
		p->n_credit_pending--;
	}
	while (r->held >= 0) {
		struct warp_reasm *h = &e->reasm[r->held];
		r->held = h->onext;
		h->held = false;
		warp__reasm_release(e, h);
		/* acknowledged to the sender and never delivered: counted */
		warp__stat(e, msgs_dropped_reset, 1);
	}
	warp__reasm_drop_partial(e, p, r->id);
	r->used = false;
}

/* Tell the peer where each of our ordered streams continues (after a close
 * and reopen, or when it restarted): messages dropped meanwhile will not
 * come. */
void warp__announce_lows(warp_engine_t *e, struct warp_peer *p)
{
	for (uint32_t i = 0; i < p->n_streams; i++) {
		struct warp_stream *s = &p->streams[i];
		if (s->guarantee == WARP__AMO || !s->any_queued)
			continue;
		s->low_sent = warp__stream_low(s);
		warp__queue_low(e, p, s);
	}
}

int warp_msg_reject(warp_engine_t *e, uint16_t reason)
{
	if (!e || !e->in_recv)
		return WARP_ESTATE;
	/* queued now, so a poll from the callback after this carries it */
	return warp__nack_queue(e, reason);
}
