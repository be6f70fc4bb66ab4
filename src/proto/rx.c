/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Receive side: validate, find the peer, drop network duplicates, act on
 * frames, reassemble fragmented messages, deliver (inline callback or the
 * receiving channel's ring, spilling to rx-arena memory while a ring is full).
 */
#include <string.h>

#include "engine/engine_priv.h"
#include "warp/error.h"

/* ---- delivery ------------------------------------------------------------ */

static struct warp_channel *rx_channel_for(warp_engine_t *e, uint16_t stream_id)
{
	if (!e->n_rx_channels)
		return NULL;
	return e->rx_channels[stream_id % e->n_rx_channels];
}

/* Try to put a record in c's delivery ring; false when full. */
static bool chan_put(struct warp_channel *c, struct warp_peer *p, uint16_t stream_id,
		     uint64_t msg_id, uint8_t transport, uint64_t rx_ns, int status, uint8_t kind,
		     uint16_t reason, const void *data, uint32_t len)
{
	struct warp_chrec_msg *r =
		warp_spsc_reserve(c->del, (uint32_t)sizeof(*r) + len, WARP_CHREC_MSG);
	if (!r)
		return false;
	r->peer = p;
	r->msg_id = msg_id;
	r->rx_ns = rx_ns;
	r->status = status;
	r->stream_id = stream_id;
	r->transport = transport;
	r->kind = kind;
	r->reason = reason;
	memset(r->pad, 0, sizeof(r->pad));
	if (len)
		memcpy(r + 1, data, len);
	c->del_dirty = true;
	return true;
}

static void spill_push(struct warp_channel *c, warp_engine_t *e, struct warp_reasm *r)
{
	int32_t i = (int32_t)(r - e->reasm);
	r->spilled = true;
	r->qnext = -1;
	if (c->spill_tail >= 0)
		e->reasm[c->spill_tail].qnext = i;
	else
		c->spill_head = i;
	c->spill_tail = i;
	e->n_spilled++;
	warp__stat(e, rx_spilled, 1);
}

static struct warp_reasm *reasm_alloc(warp_engine_t *e, uint32_t len)
{
	int64_t i = warp__idx_get(&e->reasm_free);
	if (i < 0)
		return NULL;
	struct warp_reasm *r = &e->reasm[i];
	r->buf = warp__buddy_alloc(&e->rxa, len);
	if (!r->buf) {
		warp__idx_put(&e->reasm_free, (uint32_t)i);
		return NULL;
	}
	r->used = true;
	r->spilled = false;
	r->held = false;
	r->kind = WARP_MSG_DATA;
	r->reason = 0;
	r->hnext = r->qnext = r->onext = -1;
	r->n_iv = 0;
	r->status = 0;
	return r;
}

/* Whether a reassembly slot may be taken. The last max_reassembly / 16
 * slots (at least one) are kept for the message each ordered stream waits
 * for next (head): without that, messages after it (held out of order, or
 * partly received) can take every slot after a loss burst, the head's
 * fragments then find none, and the stream stalls until the sender gives
 * the head up at ack_timeout. A refused fragment is not acknowledged and
 * comes again. */
static inline bool reasm_room(const warp_engine_t *e, bool head)
{
	uint32_t n = e->cfg.max_reassembly;
	uint32_t reserve = n < 2 ? 0 : (n / 16 ? n / 16 : 1);
	return e->reasm_free.nfree > (head ? 0 : reserve);
}

void warp__reasm_release(warp_engine_t *e, struct warp_reasm *r)
{
	warp__wheel_cancel(&e->wheel, &r->timer);
	warp__buddy_free(&e->rxa, r->buf);
	r->buf = NULL;
	r->used = false;
	r->spilled = false;
	warp__idx_put(&e->reasm_free, (uint32_t)(r - e->reasm));
}

/* Deliver a complete message (kind DATA) or a completion. `held` is the
 * reassembly entry holding the data (or NULL when data points into a
 * packet). Returns true when the data was consumed (delivered, spilled or
 * dropped and counted) and `held`, if any, may be reused by the caller, false
 * when `held` was kept as a spill entry. */
static bool deliver(warp_engine_t *e, struct warp_channel *target, struct warp_peer *p,
		    uint16_t stream_id, uint64_t msg_id, uint8_t transport, const void *data,
		    uint32_t len, int status, uint8_t kind, uint16_t reason,
		    struct warp_reasm *held)
{
	bool acked = e->rx_next_acked;
	e->rx_next_acked = false;
	if (!target && kind == WARP_MSG_DATA && e->recv_fn) {
		warp_msg_t m = {
			.peer = p,
			.src_node = p->node,
			.stream_id = stream_id,
			.msg_id = msg_id,
			.data = data,
			.len = len,
			.rx_time_ns = e->now,
			.transport = e->tp[transport].ops->name,
			.status = 0,
			.kind = WARP_MSG_DATA,
		};
		/* the callback may poll the engine, and a nested delivery runs
		 * its own callback: keep ours */
		struct warp_peer *cur_p = e->rx_cur_peer;
		uint16_t cur_s = e->rx_cur_stream;
		uint64_t cur_m = e->rx_cur_msg;
		uint8_t cur_reject = e->reject;
		bool cur_acked = e->rx_cur_acked;
		e->rx_cur_peer = p;
		e->rx_cur_stream = stream_id;
		e->rx_cur_msg = msg_id;
		e->rx_cur_acked = acked;
		e->reject = WARP__REJECT_NONE;
		e->in_recv++;
		e->recv_fn(e->recv_user, &m);
		e->in_recv--;
		/* a refusal that could not be queued counts as delivered: so
		 * the sender takes it, and warp_msg_reject said so */
		bool refused = e->reject == WARP__REJECT_QUEUED;
		e->rx_cur_peer = cur_p;
		e->rx_cur_stream = cur_s;
		e->rx_cur_msg = cur_m;
		e->rx_cur_acked = cur_acked;
		e->reject = cur_reject;
		if (!refused) /* else warp_msg_reject queued its NACK */
			warp__stat(e, msgs_delivered, 1);
		return true;
	}
	if (!target && kind == WARP_MSG_COMPLETION && e->completion_fn) {
		warp_msg_t m = {
			.peer = p,
			.src_node = p->node,
			.stream_id = stream_id,
			.msg_id = msg_id,
			.rx_time_ns = e->now,
			.transport = e->tp[transport].ops->name,
			.status = status,
			.kind = WARP_MSG_COMPLETION,
			.nack_reason = reason,
		};
		e->completion_fn(e->completion_user, &m);
		return true;
	}
	struct warp_channel *c =
		target ? target : (kind == WARP_MSG_DATA ? rx_channel_for(e, stream_id) : NULL);
	if (!c) {
		if (kind == WARP_MSG_DATA)
			warp__stat(e, msgs_undeliverable, 1);
		return true;
	}
	/* Keep per-stream order: once something waits, everything after waits. */
	if (c->spill_head < 0 && chan_put(c, p, stream_id, msg_id, transport, e->now, status, kind,
					  reason, data, len)) {
		if (kind == WARP_MSG_DATA)
			warp__stat(e, msgs_delivered, 1);
		return true;
	}
	struct warp_reasm *r = held;
	if (!r) {
		r = reasm_alloc(e, len);
		if (!r) {
			warp__drop(e, WARP_DROP_RX_BACKPRESSURE);
			e->rx_dropped = true; /* the caller refuses the packet if it can */
			return true;
		}
		if (len)
			memcpy(r->buf, data, len);
	}
	r->peer_idx = p->idx;
	r->stream_id = stream_id;
	r->msg_id = msg_id;
	r->msg_len = len;
	r->transport = transport;
	r->status = status;
	r->kind = kind;
	r->reason = reason;
	r->rx_ns = e->now;
	warp__wheel_cancel(&e->wheel, &r->timer);
	spill_push(c, e, r);
	return r != held;
}

bool warp__deliver_completion(warp_engine_t *e, struct warp_peer *p, uint16_t stream_id,
			      uint64_t msg_id, int status, uint16_t reason, int chan)
{
	if (chan < 0) {
		if (e->completion_fn) /* else the engine thread's own send: counted */
			deliver(e, NULL, p, stream_id, msg_id, p->tp[p->active_tp].transport,
				NULL, 0, status, WARP_MSG_COMPLETION, reason, NULL);
		return true;
	}
	struct warp_channel *c = e->channels[chan];
	if (!(c->flags & WARP_CHANNEL_COMPLETIONS))
		return true; /* counted; the channel did not ask */
	/* in order behind those that wait; not behind spilled messages (a
	 * completion is not part of any received stream's order) */
	return c->cpend_head < 0 &&
	       chan_put(c, p, stream_id, msg_id, p->tp[p->active_tp].transport, e->now, status,
			WARP_MSG_COMPLETION, reason, NULL, 0);
}

void warp__completion_park(warp_engine_t *e, struct warp_txmsg *m, int status, uint16_t reason)
{
	struct warp_channel *c = e->channels[m->chan];
	warp__txmsg_drop_data(e, m);
	m->cstatus = status;
	m->creason = reason;
	m->cnext = -1;
	int32_t i = (int32_t)(m - e->txmsgs);
	if (c->cpend_tail >= 0)
		e->txmsgs[c->cpend_tail].cnext = i;
	else
		c->cpend_head = i;
	c->cpend_tail = i;
	e->n_cpend++;
	warp__stat(e, completions_parked, 1);
}

/* The parked completions of c that fit now, in order. */
static unsigned deliver_parked(warp_engine_t *e, struct warp_channel *c)
{
	unsigned n = 0;
	while (c->cpend_head >= 0) {
		struct warp_txmsg *m = &e->txmsgs[c->cpend_head];
		struct warp_peer *p = m->stream->peer;
		if (!chan_put(c, p, m->stream->id, m->msg_id, p->tp[p->active_tp].transport, e->now,
			      m->cstatus, WARP_MSG_COMPLETION, m->creason, NULL, 0))
			break;
		c->cpend_head = m->cnext;
		if (c->cpend_head < 0)
			c->cpend_tail = -1;
		e->n_cpend--;
		warp__idx_put(&e->txmsg_free, (uint32_t)(m - e->txmsgs));
		n++;
	}
	return n;
}

unsigned warp__deliver_spilled(warp_engine_t *e)
{
	unsigned n = 0;
	for (uint32_t i = 0; i < e->n_channels; i++) {
		struct warp_channel *c = e->channels[i];
		if (c->cpend_head >= 0)
			n += deliver_parked(e, c);
		while (c->spill_head >= 0) {
			struct warp_reasm *r = &e->reasm[c->spill_head];
			if (!chan_put(c, &e->peers[r->peer_idx], r->stream_id, r->msg_id,
				      r->transport, r->rx_ns, r->status, r->kind, r->reason, r->buf,
				      r->msg_len))
				break;
			if (r->kind == WARP_MSG_DATA)
				warp__stat(e, msgs_delivered, 1);
			c->spill_head = r->qnext;
			if (c->spill_head < 0)
				c->spill_tail = -1;
			e->n_spilled--;
			warp__reasm_release(e, r);
			n++;
		}
	}
	return n;
}

void warp__rx_commit(warp_engine_t *e)
{
	for (uint32_t i = 0; i < e->n_channels; i++) {
		struct warp_channel *c = e->channels[i];
		if (c->del_dirty) {
			warp_spsc_commit(c->del);
			c->del_dirty = false;
		}
	}
}

/* ---- reassembly ---------------------------------------------------------- */

static inline uint32_t reasm_hash(const warp_engine_t *e, uint32_t peer, uint16_t stream,
				  uint64_t msg_id)
{
	uint64_t h = (msg_id * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)peer << 16 | stream);
	h ^= h >> 29;
	return (uint32_t)h & e->reasm_hash_mask;
}

static void reasm_unhash(warp_engine_t *e, struct warp_reasm *r)
{
	int32_t idx = (int32_t)(r - e->reasm);
	int32_t *pp = &e->reasm_hash[reasm_hash(e, r->peer_idx, r->stream_id, r->msg_id)];
	while (*pp >= 0 && *pp != idx)
		pp = &e->reasm[*pp].hnext;
	if (*pp == idx)
		*pp = r->hnext;
	r->hnext = -1;
}

void warp__reasm_drop_partial(warp_engine_t *e, struct warp_peer *p, int stream_id)
{
	for (uint32_t i = 0; i < e->cfg.max_reassembly; i++) {
		struct warp_reasm *r = &e->reasm[i];
		if (!r->used || r->held || r->spilled || r->peer_idx != p->idx ||
		    (stream_id >= 0 && r->stream_id != (uint16_t)stream_id))
			continue;
		reasm_unhash(e, r);
		warp__reasm_release(e, r);
		warp__stat(e, msgs_dropped_reset, 1);
	}
}

/* A partial message of an ordered stream that the stream has not moved past,
 * from a peer not closed: its acknowledged fragments are never resent, so
 * dropping it would stall the stream for good; its missing ones are resent
 * until the sender completes it or gives it up (its STREAM_LOW then moves
 * the stream past it, and the next timeout drops it). What it holds is
 * bounded by the stream's credit window. */
static bool reasm_still_owed(warp_engine_t *e, const struct warp_reasm *r)
{
	const struct warp_peer *p = &e->peers[r->peer_idx];
	if (p->closed)
		return false;
	for (uint32_t i = 0; i < e->cfg.max_streams; i++) {
		const struct warp_rxstream *rs = &p->rxs[i];
		if (rs->used && rs->id == r->stream_id)
			return r->msg_id >= rs->next;
	}
	return false; /* at-most-once: lost fragments are not resent */
}

void warp__reasm_timeout(struct warp_timer *t, uint64_t now)
{
	struct warp_reasm *r = warp__container_of(t, struct warp_reasm, timer);
	warp_engine_t *e = r->engine;
	if (reasm_still_owed(e, r)) {
		warp__wheel_arm(&e->wheel, &r->timer, now + e->cfg.reassembly_timeout_ns);
		return;
	}
	reasm_unhash(e, r);
	warp__stat(e, reassembly_timeouts, 1);
	warp__reasm_release(e, r);
}

/* Add [lo, hi) to r's received intervals. Returns 1 if new bytes were
 * added, 0 if all were there already, -1 when too many gaps. */
static int iv_add(struct warp_reasm *r, uint32_t lo, uint32_t hi)
{
	unsigned i = 0;
	while (i < r->n_iv && r->iv[i].hi < lo)
		i++;
	if (i < r->n_iv && r->iv[i].lo <= lo && r->iv[i].hi >= hi)
		return 0;
	/* merge every interval touching [lo, hi) into one at i */
	unsigned j = i;
	uint32_t nlo = lo, nhi = hi;
	while (j < r->n_iv && r->iv[j].lo <= hi) {
		if (r->iv[j].lo < nlo)
			nlo = r->iv[j].lo;
		if (r->iv[j].hi > nhi)
			nhi = r->iv[j].hi;
		j++;
	}
	unsigned merged = j - i;
	if (merged == 0) {
		if (r->n_iv >= WARP_REASM_MAX_IVALS)
			return -1;
		memmove(&r->iv[i + 1], &r->iv[i], (r->n_iv - i) * sizeof(r->iv[0]));
		r->n_iv++;
	} else if (merged > 1) {
		memmove(&r->iv[i + 1], &r->iv[j], (r->n_iv - j) * sizeof(r->iv[0]));
		r->n_iv -= merged - 1;
	}
	r->iv[i].lo = nlo;
	r->iv[i].hi = nhi;
	return 1;
}

/* Hand a complete data message to the application (a refusal in the
 * callback becomes a NACK, queued by warp_msg_reject). Returns deliver()'s
 * verdict on `held`. */
static bool deliver_data(warp_engine_t *e, struct warp_peer *p, uint16_t sid, uint64_t mid,
			 uint8_t transport, const void *data, uint32_t len, struct warp_reasm *held)
{
	return deliver(e, NULL, p, sid, mid, transport, data, len, 0, WARP_MSG_DATA, 0, held);
}

int warp__nack_queue(warp_engine_t *e, uint16_t reason)
{
	struct warp_peer *p = e->rx_cur_peer;
	if (e->reject == WARP__REJECT_QUEUED)
		return 0; /* refused already */
	if (warp__unlikely(e->reject == WARP__REJECT_UNSENT || e->rx_cur_acked ||
			   p->n_nacks >= WARP__ARRAY_LEN(p->nacks))) {
		/* Known limits: the message waited for order and an ACK of its
		 * packet went out meanwhile (the sender settles at the packet
		 * acknowledgement), or more refusals than the list holds
		 * within a round trip. This one is not reported, and the
		 * sender takes the message as delivered: counted once, and the
		 * caller told, so the message is handled as delivered. No NACK
		 * either, so the sender cannot see it refused after all. */
		if (e->reject == WARP__REJECT_NONE)
			warp__stat(e, nacks_unsent, 1);
		e->reject = WARP__REJECT_UNSENT;
		if (e->rx_cur_acked)
			return warp__err(WARP_EAGAIN,
					 "peer '%s' stream %u message %llu: the refusal cannot be "
					 "reported, the message waited for order and its packet was "
					 "acknowledged meanwhile; the sender takes it as delivered",
					 p->node, (unsigned)e->rx_cur_stream,
					 (unsigned long long)e->rx_cur_msg);
		return warp__err(WARP_EAGAIN,
				 "peer '%s' stream %u message %llu: the refusal cannot be "
				 "reported, %zu refusals wait unread by the sender; it takes "
				 "the message as delivered",
				 p->node, (unsigned)e->rx_cur_stream,
				 (unsigned long long)e->rx_cur_msg, WARP__ARRAY_LEN(p->nacks));
	}
	e->reject = WARP__REJECT_QUEUED;
	p->nacks[p->n_nacks].stream = e->rx_cur_stream;
	p->nacks[p->n_nacks].msg_id = e->rx_cur_msg;
	p->nacks[p->n_nacks].reason = reason;
	p->nacks[p->n_nacks].due = true;
	p->nacks[p->n_nacks].pn = UINT64_MAX;
	p->n_nacks++;
	warp__tx_activate_peer(e, p);
	return 0;
}

/* The peer acknowledged packets of ours up to max_pn that carried our NACKs
 * (warp__on_ack): it has read the NACKs those carried. */
void warp__nacks_acked(warp_engine_t *e, struct warp_peer *p, uint64_t max_pn)
{
	(void)e;
	uint32_t n = 0;
	for (uint32_t i = 0; i < p->n_nacks; i++)
		if (p->nacks[i].pn > max_pn) /* UINT64_MAX: not sent yet */
			p->nacks[n++] = p->nacks[i];
	p->n_nacks = n;
}

/* The link in rs's held list (in id order) where message mid is, or would
 * go: it points at mid's entry when mid is held. */
static int32_t *held_link(warp_engine_t *e, struct warp_rxstream *rs, uint64_t mid)
{
	int32_t *pp = &rs->held;
	while (*pp >= 0 && e->reasm[*pp].msg_id < mid)
		pp = &e->reasm[*pp].onext;
	return pp;
}

/* Deliver the held messages of an ordered stream that are now in order
 * (and drop held ones below `next`, which are duplicates). */
static void drain_held(warp_engine_t *e, struct warp_peer *p, struct warp_rxstream *rs)
{
	while (rs->held >= 0) {
		struct warp_reasm *h = &e->reasm[rs->held];
		if (h->msg_id > rs->next)
			break;
		rs->held = h->onext;
		h->held = false;
		if (h->msg_id < rs->next) {
			warp__stat(e, dup_msgs, 1);
			warp__reasm_release(e, h);
			continue;
		}
		rs->next++;
		e->rx_next_acked = h->ack_mark != p->acks_built;
		if (deliver_data(e, p, h->stream_id, h->msg_id, h->transport, h->buf, h->msg_len, h))
			warp__reasm_release(e, h);
	}
}

/* A complete message: deliver it now (unordered, or next in order), hold it
 * until the gap before it fills, or drop it as a duplicate. `held` is the
 * reassembly entry with its bytes, or NULL when data points into a packet. */
static void complete_msg(warp_engine_t *e, struct warp_peer *p, struct warp_rxstream *rs,
			 uint16_t sid, uint64_t mid, uint8_t transport, const void *data,
			 uint32_t len, struct warp_reasm *held)
{
	if (!rs) {
		if (deliver_data(e, p, sid, mid, transport, data, len, held) && held)
			warp__reasm_release(e, held);
		return;
	}
	if (mid < rs->next) {
		warp__stat(e, dup_msgs, 1);
		if (held)
			warp__reasm_release(e, held);
		return;
	}
	if (mid == rs->next) {
		rs->next++;
		e->rx_dropped = false;
		if (deliver_data(e, p, sid, mid, transport, data, len, held) && held)
			warp__reasm_release(e, held);
		if (warp__unlikely(e->rx_dropped)) {
			/* no room to hand it over: not delivered, not acknowledged,
			 * the sender resends it */
			rs->next--;
			e->rx_refuse = true;
			return;
		}
		drain_held(e, p, rs);
		warp__credit_check(e, p, rs);
		return;
	}
	/* out of order: keep it until the gap before it fills */
	if (!held) {
		held = reasm_room(e, false) ? reasm_alloc(e, len) : NULL;
		if (!held) {
			warp__drop(e, WARP_DROP_REASSEMBLY_FULL);
			e->rx_refuse = true; /* not acknowledged: it will be resent */
			return;
		}
		if (len)
			memcpy(held->buf, data, len);
		held->peer_idx = p->idx;
		held->stream_id = sid;
		held->msg_id = mid;
		held->msg_len = len;
		held->transport = transport;
	}
	warp__wheel_cancel(&e->wheel, &held->timer);
	held->ack_mark = p->acks_built;
	int32_t *pp = held_link(e, rs, mid);
	if (*pp >= 0 && e->reasm[*pp].msg_id == mid) {
		warp__stat(e, dup_msgs, 1);
		warp__reasm_release(e, held);
		return;
	}
	held->held = true;
	held->onext = *pp;
	*pp = (int32_t)(held - e->reasm);
}

static void on_stream_frame(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f,
			    uint8_t transport, bool again)
{
	uint16_t sid = f->u.stream.stream_id;
	uint64_t mid = f->u.stream.msg_id;
	uint32_t mlen = f->u.stream.msg_len;
	uint8_t g = (f->u.stream.flags & WARP_STREAM_GUARANTEE_MASK) >> WARP_STREAM_GUARANTEE_SHIFT;
	warp__stat(e, rx_frames, 1);

	struct warp_rxstream *rs = NULL;
	if (g == WARP__AMO) {
		if (warp__unlikely(again)) {
			/* a copy of a refused packet: this frame was acted upon */
			warp__stat(e, dup_amo_msgs, 1);
			return;
		}
	} else {
		rs = warp__rx_stream(e, p, sid, g);
		if (!rs) {
			warp__drop(e, WARP_DROP_REASSEMBLY_FULL);
			e->rx_refuse = true;
			return;
		}
		if (mid < rs->next) { /* a resend of something delivered */
			warp__stat(e, dup_msgs, 1);
			return;
		}
		if (warp__unlikely(mid >= rs->credit_sent)) {
			/* beyond what we granted: an honest sender waits for the
			 * credit, so this one would take reassembly slots and
			 * memory every peer shares, and hold them. Refused, not
			 * acknowledged: resent once the credit covers it (after
			 * our reopen, a STREAM_LOW moves the stream there). */
			warp__drop(e, WARP_DROP_NO_CREDIT);
			e->rx_refuse = true;
			return;
		}
	}
	if (f->u.stream.offset == 0 && f->u.stream.len == mlen) { /* whole message */
		complete_msg(e, p, rs, sid, mid, transport, f->u.stream.data, mlen, NULL);
		return;
	}
	uint32_t h = reasm_hash(e, p->idx, sid, mid);
	int32_t i = e->reasm_hash[h];
	while (i >= 0) {
		struct warp_reasm *r = &e->reasm[i];
		if (r->peer_idx == p->idx && r->stream_id == sid && r->msg_id == mid)
			break;
		i = r->hnext;
	}
	struct warp_reasm *r;
	if (i < 0 && rs && mid > rs->next) {
		/* a resent fragment of a message complete and held for order
		 * (no longer in the hash): a duplicate, not a new message */
		int32_t k = *held_link(e, rs, mid);
		if (k >= 0 && e->reasm[k].msg_id == mid) {
			warp__stat(e, dup_msgs, 1);
			return;
		}
	}
	if (i < 0) {
		if (!reasm_room(e, rs && mid == rs->next)) {
			warp__drop(e, WARP_DROP_REASSEMBLY_FULL);
			e->rx_refuse |= rs != NULL;
			return;
		}
		r = reasm_alloc(e, mlen);
		if (!r) {
			warp__drop(e, WARP_DROP_NO_BUFFER);
			e->rx_refuse |= rs != NULL;
			return;
		}
		r->peer_idx = p->idx;
		r->stream_id = sid;
		r->msg_id = mid;
		r->msg_len = mlen;
		r->transport = transport;
		r->hnext = e->reasm_hash[h];
		e->reasm_hash[h] = (int32_t)(r - e->reasm);
		warp__wheel_arm(&e->wheel, &r->timer, e->now + e->cfg.reassembly_timeout_ns);
	} else {
		r = &e->reasm[i];
		if (r->msg_len != mlen) {
			warp__drop(e, WARP_DROP_REASSEMBLY_CONFLICT);
			return;
		}
	}
	uint32_t lo = f->u.stream.offset, hi = lo + f->u.stream.len;
	int added = iv_add(r, lo, hi);
	if (added == 0) {
		warp__drop(e, WARP_DROP_DUP_FRAGMENT);
		return;
	}
	if (added < 0) {
		warp__drop(e, WARP_DROP_REASSEMBLY_GAPS);
		e->rx_refuse |= rs != NULL;
		return;
	}
	memcpy(r->buf + lo, f->u.stream.data, f->u.stream.len);
	if (r->n_iv == 1 && r->iv[0].lo == 0 && r->iv[0].hi == mlen) {
		reasm_unhash(e, r);
		complete_msg(e, p, rs, sid, mid, transport, r->buf, mlen, r);
	}
}

static void on_stream_low(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f)
{
	struct warp_rxstream *rs = warp__rx_stream(e, p, f->u.low.stream_id, WARP__ALO);
	if (!rs || f->u.low.low <= rs->next)
		return;
	/* complete messages below the mark still go out, in order */
	while (rs->held >= 0 && e->reasm[rs->held].msg_id < f->u.low.low) {
		rs->next = e->reasm[rs->held].msg_id;
		drain_held(e, p, rs);
	}
	if (rs->next < f->u.low.low)
		rs->next = f->u.low.low;
	drain_held(e, p, rs);
	warp__credit_check(e, p, rs);
}

static void on_stream_credit(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f)
{
	for (uint32_t i = 0; i < p->n_streams; i++) {
		struct warp_stream *s = &p->streams[i];
		if (s->id != f->u.low.stream_id)
			continue;
		if (f->u.low.low > s->credit_max) {
			s->credit_max = f->u.low.low;
			s->blocked_since = 0; /* the receiver takes more: no longer a wait */
		}
		if (s->credit_blocked && s->cursor) {
			s->credit_blocked = false;
			warp__stream_activate(p, s);
			warp__tx_activate_peer(e, p);
		}
		return;
	}
}

static void on_nack(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f)
{
	for (uint32_t i = 0; i < p->n_streams; i++) {
		struct warp_stream *s = &p->streams[i];
		if (s->id != f->u.nack.stream_id)
			continue;
		for (struct warp_txmsg *m = s->uhead; m; m = m->unext)
			if (m->msg_id == f->u.nack.msg_id) {
				warp__settle(e, m, WARP_ENACK, f->u.nack.reason);
				return;
			}
		return;
	}
}

/* ---- packets --------------------------------------------------------------- */

/* The packet-number window: a ring of 64-bit words indexed by pn / 64 (RFC
 * 6479); numbers more than (words - 1) * 64 below the largest are refused
 * as old. Asking (peek) and recording (mark) are apart, so that a protected
 * packet moves the window only once it authenticated. */

/* 0 when pn is new, else a drop reason + 1. */
static int rx_window_peek(const struct warp_peer *p, uint64_t pn)
{
	if (pn == 0)
		return 1 + WARP_DROP_OLD_PACKET; /* numbering starts at 1 */
	if (pn > p->rx_largest) {
		/* A sender numbers every packet, and cannot get far ahead of
		 * what arrives: tracked packets wait for acknowledgements, the
		 * others answer or probe. A number far beyond (a forged or
		 * corrupted plaintext packet whose CRC holds) would move the
		 * window past every genuine packet to come. */
		if (warp__unlikely(p->rx_largest && pn - p->rx_largest > WARP_PKT_NUM_JUMP_MAX))
			return 1 + WARP_DROP_PKT_NUM_JUMP;
		return 0;
	}
	if (p->rx_largest - pn >= (WARP_RX_WINDOW_WORDS - 1) * 64)
		return 1 + WARP_DROP_OLD_PACKET;
	if (p->rx_window[(pn / 64) % WARP_RX_WINDOW_WORDS] & (1ull << (pn & 63)))
		return 1 + WARP_DROP_DUP_PACKET;
	return 0;
}

/* Record pn, which rx_window_peek found new: advancing clears the words of
 * the blocks skipped. */
static void rx_window_mark(struct warp_peer *p, uint64_t pn)
{
	if (pn > p->rx_largest) {
		uint64_t cur = p->rx_largest / 64, nb = pn / 64;
		if (nb - cur >= WARP_RX_WINDOW_WORDS) {
			memset(p->rx_window, 0, sizeof(p->rx_window));
			memset(p->rx_refused, 0, sizeof(p->rx_refused));
		} else {
			for (uint64_t b = cur + 1; b <= nb; b++) {
				p->rx_window[b % WARP_RX_WINDOW_WORDS] = 0;
				p->rx_refused[b % WARP_RX_WINDOW_WORDS] = 0;
			}
		}
		if (pn != p->rx_largest + 1)
			p->rx_run_ok = false; /* a gap below the new largest */
		p->rx_largest = pn;
	}
	p->rx_window[(pn / 64) % WARP_RX_WINDOW_WORDS] |= 1ull << (pn & 63);
}

/* rx_frame's heartbeat findings for its packet */
enum { HB_SAW_REPLY = 1, HB_SAW_REQUEST = 2 };

/* Act on one frame of a validated packet from p. */
static inline void rx_frame(warp_engine_t *e, struct warp_peer *p, const struct warp_frame *f,
			    uint8_t transport, bool again, bool *eliciting, uint8_t *saw_hb)
{
	if (f->type != WARP_FRAME_ACK && f->type != WARP_FRAME_CREDIT)
		*eliciting = true;
	switch (f->type) {
	case WARP_FRAME_STREAM:
		if (!p->closed)
			on_stream_frame(e, p, f, transport, again);
		break;
	case WARP_FRAME_ACK:
		warp__stat(e, acks_rx, 1);
		warp__on_ack(e, p, f);
		break;
	case WARP_FRAME_NACK:
		on_nack(e, p, f);
		break;
	case WARP_FRAME_STREAM_LOW:
		on_stream_low(e, p, f);
		break;
	case WARP_FRAME_STREAM_CREDIT:
		on_stream_credit(e, p, f);
		break;
	case WARP_FRAME_CREDIT:
		if (e->rx_pn < p->credit_pn)
			break; /* a reordered older packet: its window is stale */
		p->credit_pn = e->rx_pn;
		p->peer_window = f->u.credit.window;
		warp__tx_activate_peer(e, p);
		break;
	case WARP_FRAME_HEARTBEAT:
		warp__stat(e, heartbeats_rx, 1);
		if (f->u.heartbeat.flags & WARP_HEARTBEAT_REPLY)
			*saw_hb |= HB_SAW_REPLY;
		if (!(f->u.heartbeat.flags & WARP_HEARTBEAT_REPLY)) {
			p->hb_reply_pending = true;
			*saw_hb |= HB_SAW_REQUEST;
			p->hb_reply_seq = f->u.heartbeat.seq;
			p->hb_reply_ts = f->u.heartbeat.timestamp_ns;
			warp__tx_activate_peer(e, p);
		}
		break;
	case WARP_FRAME_CLOSE:
		warp__stat(e, closes_rx, 1);
		if (!p->closed) {
			warp__tx_drop_peer_queue(e, p, WARP_ECLOSED);
			p->closed = true;
		}
		break;
	default:
		break;
	}
}

void warp__rx_packet(warp_engine_t *e, struct warp_pkt *pkt)
{
	struct warp_pkt_hdr h;
	struct warp_frames fr;
	warp__stat(e, rx_packets, 1);
	warp__stat(e, rx_bytes, pkt->len);
	/* Plaintext packets are checked whole (CRC, every frame) before their
	 * sender is looked up; a protected one needs its sender's key first. */
	int rc = pkt->len > WARP_WIRE_HDR_LEN && pkt->data[5] == WARP_PKT_PROTECTED
			 ? warp__hdr_decode(pkt->data, pkt->len, e->cfg.mtu, &h)
			 : warp__pkt_validate(pkt->data, pkt->len, e->cfg.mtu,
					      e->cfg.max_payload_bytes, &h, &fr);
	if (warp__unlikely(rc < 0)) {
		warp__drop(e, -rc - 1);
		return;
	}
	uint32_t slot = (uint32_t)h.conn_id & e->peer_hash_mask;
	struct warp_peer *p = NULL;
	while (e->peer_hash[slot] >= 0) {
		if (e->peers[e->peer_hash[slot]].conn_id == h.conn_id) {
			p = &e->peers[e->peer_hash[slot]];
			break;
		}
		slot = (slot + 1) & e->peer_hash_mask;
	}
	if (warp__unlikely(!p)) {
		warp__drop(e, WARP_DROP_UNKNOWN_PEER);
		return;
	}
	if (warp__unlikely(p->closed)) {
		warp__drop(e, WARP_DROP_PEER_CLOSED);
		return;
	}
	size_t body;
	if (h.type == WARP_PKT_PROTECTED) {
		if (warp__unlikely(!p->encrypted)) {
			warp__drop(e, WARP_DROP_NO_SESSION);
			return;
		}
		/* a repeat is dropped before the work of opening it; the window
		 * itself moves only once the packet authenticated */
		rc = rx_window_peek(p, h.pkt_num);
		if (warp__unlikely(rc)) {
			warp__drop(e, rc - 1);
			return;
		}
		long n = warp__unprotect(e, p, pkt->data, pkt->len, &h);
		if (warp__unlikely(n < 0)) {
			warp__drop(e, (int)-n - 1);
			return;
		}
		body = (size_t)n;
		rc = warp__frames_validate(pkt->data, body, WARP_PKT_PROTECTED,
					   e->cfg.max_payload_bytes, &fr);
		if (warp__unlikely(rc < 0)) {
			warp__drop(e, -rc - 1);
			return;
		}
	} else if (h.type == WARP_PKT_HANDSHAKE) {
		warp__hs_rx(e, p, pkt);
		return;
	} else {
		if (warp__unlikely(p->ss != WARP_SESSION_UP || p->encrypted)) {
			warp__drop(e, p->encrypted ? WARP_DROP_PLAINTEXT : WARP_DROP_NO_SESSION);
			return;
		}
		rc = rx_window_peek(p, h.pkt_num);
		if (rc) {
			warp__drop(e, rc - 1);
			return;
		}
		body = pkt->len - WARP_WIRE_CRC_LEN;
	}
	rx_window_mark(p, h.pkt_num);
	uint64_t *refused_w = &p->rx_refused[(h.pkt_num / 64) % WARP_RX_WINDOW_WORDS];
	uint64_t pn_bit = 1ull << (h.pkt_num & 63);
	bool again = warp__unlikely(p->rx_refused_any) && (*refused_w & pn_bit);
	p->last_rx_ns = e->now;
	if (h.pkt_num == p->rx_largest)
		p->ack_largest_rx_ns = e->now;

	size_t off = fr.rest_off;
	bool eliciting = false;
	uint8_t saw_hb = 0;
	/* an application that polls from its receive callback runs this for
	 * another packet meanwhile: keep the enclosing packet's refusal */
	bool outer_refuse = e->rx_refuse;
	uint64_t outer_pn = e->rx_pn;
	e->rx_refuse = false;
	e->rx_pn = h.pkt_num;
	/* the frames validation kept, then (a packet of many frames) the rest */
	for (uint32_t i = 0; i < fr.n; i++)
		rx_frame(e, p, &fr.f[i], pkt->transport, again, &eliciting, &saw_hb);
	struct warp_frame f;
	while (warp__frame_next(pkt->data, body, &off, &f))
		rx_frame(e, p, &f, pkt->transport, again, &eliciting, &saw_hb);
	/* which of the peer's transports it came over */
	uint32_t via = p->active_tp;
	for (uint32_t i = 0; i < p->n_tp; i++)
		if (p->tp[i].transport == pkt->transport) {
			via = i;
			break;
		}
	if (eliciting)
		p->ack_tp = via; /* answer the way the data came */
	if (saw_hb & HB_SAW_REQUEST)
		p->hb_reply_tp = via; /* a failback probe is answered the way it came */
	if (warp__unlikely((saw_hb & HB_SAW_REPLY) && via == 0 && p->active_tp != 0))
		warp__peer_failback(e, p); /* the first transport answers again */
	bool refuse = e->rx_refuse;
	e->rx_refuse = outer_refuse;
	e->rx_pn = outer_pn;
	if (warp__unlikely(refuse)) {
		/* part of it could not be kept: do not acknowledge it, so the
		 * sender resends (what was delivered is deduplicated; a copy
		 * of this packet skips its at-most-once frames) */
		p->rx_window[(h.pkt_num / 64) % WARP_RX_WINDOW_WORDS] &= ~pn_bit;
		*refused_w |= pn_bit;
		p->rx_refused_any = true;
		p->rx_run_ok = false;
	} else if (eliciting && !p->closed) {
		p->ack_pending = true;
		warp__tx_activate_peer(e, p);
	}
}
