/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Channels: an application thread's pair of SPSC rings to a started engine.
 * Submission ring (app -> engine): SEND records {stream, msg_id} + payload.
 * Delivery ring (engine -> app): MSG records {peer, msg_id, ...} + payload,
 * also used for failed-send reports (status < 0).
 */
#include <string.h>

#include "engine/engine_priv.h"
#include "warp/error.h"

static size_t auto_ring_bytes(const warp_engine_t *e)
{
	size_t need = 2 * ((size_t)e->cfg.max_payload_bytes + 64);
	size_t s = 4096;
	while (s < need)
		s <<= 1;
	return s;
}

int warp_channel_open(warp_engine_t *e, unsigned flags, warp_channel_t **out)
{
	if (!e || !out)
		return warp__err(WARP_EINVAL, "channel: NULL argument");
	if (e->started)
		return warp__err(WARP_ESTATE, "channel: open channels before warp_engine_start");
	if (flags & ~(WARP_CHANNEL_RECV | WARP_CHANNEL_COMPLETIONS))
		return warp__err(WARP_EINVAL, "channel: unknown flags 0x%x", flags);
	if (e->n_channels >= e->cfg.max_channels)
		return warp__err(WARP_ENOMEM, "channel: max_channels (%u) reached",
				 e->cfg.max_channels);
	struct warp_channel *c = warp__calloc(1, sizeof(*c));
	if (!c)
		return warp__err(WARP_ENOMEM, "channel: out of memory");
	size_t bytes = e->cfg.channel_ring_bytes ? e->cfg.channel_ring_bytes : auto_ring_bytes(e);
	int rc = warp_spsc_create(bytes, &c->sub);
	if (!rc)
		rc = warp_spsc_create(bytes, &c->del);
	if (rc) {
		warp__channel_free(c);
		return warp__err(rc, "channel: cannot create rings of %zu bytes", bytes);
	}
	c->e = e;
	c->flags = flags;
	c->spill_head = c->spill_tail = -1;
	c->cpend_head = c->cpend_tail = -1;
	c->idx = (int32_t)e->n_channels;
	e->channels[e->n_channels++] = c;
	if (flags & WARP_CHANNEL_RECV)
		e->rx_channels[e->n_rx_channels++] = c;
	*out = c;
	return 0;
}

void warp__channel_free(struct warp_channel *c)
{
	if (!c)
		return;
	warp_spsc_destroy(c->sub);
	warp_spsc_destroy(c->del);
	warp__free(c);
}

static int chan_submit(warp_channel_t *c, warp_stream_t *s, const void *buf, size_t len,
		       uint64_t *msg_id)
{
	if (warp__unlikely(!s || (!buf && len) || s->peer->engine != c->e))
		return WARP_EINVAL;
	if (warp__unlikely(len > c->e->cfg.max_payload_bytes))
		return WARP_ETOOBIG;
	struct warp_chrec_send *r = warp_spsc_reserve(
		c->sub, (uint32_t)(sizeof(*r) + len), WARP_CHREC_SEND);
	if (!r)
		return WARP_EAGAIN;
	r->stream = s;
	r->msg_id = s->next_msg_id;
	if (len)
		memcpy(r + 1, buf, len);
	if (msg_id)
		*msg_id = s->next_msg_id;
	s->next_msg_id++;
	return 0;
}

int warp_channel_send(warp_channel_t *c, warp_stream_t *s, const void *buf, size_t len,
		      uint64_t *msg_id)
{
	if (!c)
		return WARP_EINVAL;
	int rc = chan_submit(c, s, buf, len, msg_id);
	if (rc == 0) {
		warp_spsc_commit(c->sub); /* release: pairs with the engine's acquire in read */
		warp__engine_wake(c->e);
	}
	return rc;
}

int warp_channel_send_burst(warp_channel_t *c, warp_send_req_t *reqs, unsigned n)
{
	if (!c || (!reqs && n))
		return WARP_EINVAL;
	unsigned i;
	for (i = 0; i < n; i++) {
		reqs[i].status = chan_submit(c, reqs[i].stream, reqs[i].buf, reqs[i].len,
					     &reqs[i].msg_id);
		if (reqs[i].status)
			break;
	}
	if (i) {
		warp_spsc_commit(c->sub);
		warp__engine_wake(c->e);
	}
	return (int)i;
}

int warp_channel_recv_burst(warp_channel_t *c, warp_msg_t *msgs, unsigned n)
{
	if (!c || (!msgs && n))
		return WARP_EINVAL;
	unsigned k = 0;
	while (k < n) {
		uint32_t len, type;
		const struct warp_chrec_msg *r = warp_spsc_read(c->del, &len, &type);
		if (!r)
			break;
		warp_msg_t *m = &msgs[k++];
		m->peer = r->peer;
		m->src_node = r->peer->node;
		m->stream_id = r->stream_id;
		m->msg_id = r->msg_id;
		m->kind = r->kind;
		m->nack_reason = r->reason;
		m->data = r->kind == WARP_MSG_DATA ? (const void *)(r + 1) : NULL;
		m->len = len - sizeof(*r);
		m->rx_time_ns = r->rx_ns;
		m->transport = c->e->tp[r->transport].ops->name;
		m->status = r->status;
	}
	return (int)k;
}

void warp_channel_recv_done(warp_channel_t *c)
{
	if (c) {
		warp_spsc_release(c->del);
		warp__engine_wake_for_room(c->e);
	}
}

/* Engine side: returns how many records were handled. */
static int submit_one(warp_engine_t *e, struct warp_channel *c, const void *rec, uint32_t len)
{
	const struct warp_chrec_send *r = rec;
	/* A channel that wants completions submits only while a completion
	 * fits in its ring: the one a refusal needs now, and the ones its
	 * sends will need go behind those that wait (cpend), never lost. */
	if ((c->flags & WARP_CHANNEL_COMPLETIONS) &&
	    (c->cpend_head >= 0 || !warp_spsc_fits(c->del, sizeof(struct warp_chrec_msg))))
		return WARP_EAGAIN;
	int rc = warp__tx_enqueue(e, r->stream, r->msg_id, r + 1, len - sizeof(*r), c->idx);
	if (rc && rc != WARP_EAGAIN) { /* closed, circuit open, shutting down */
		warp__stream_refused(e, r->stream, r->msg_id, rc);
		warp__deliver_completion(e, r->stream->peer, r->stream->id, r->msg_id, rc, 0,
					 c->idx);
	}
	return rc;
}

unsigned warp__channels_drain(warp_engine_t *e)
{
	unsigned done = 0;
	for (uint32_t i = 0; i < e->n_channels; i++) {
		struct warp_channel *c = e->channels[i];
		uint32_t budget = e->cfg.submit_budget;
		if (c->stalled) {
			if (submit_one(e, c, c->stalled, c->stalled_len) == WARP_EAGAIN)
				continue;
			c->stalled = NULL;
			done++;
		}
		while (budget--) {
			uint32_t len, type;
			const void *rec = warp_spsc_read(c->sub, &len, &type);
			if (!rec)
				break;
			if (submit_one(e, c, rec, len) == WARP_EAGAIN) {
				warp__stat(e, send_backpressure, 1);
				c->stalled = rec; /* not released until it goes through */
				c->stalled_len = len;
				break;
			}
			done++;
		}
		if (!c->stalled)
			warp_spsc_release(c->sub);
	}
	return done;
}
