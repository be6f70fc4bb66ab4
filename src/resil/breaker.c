/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-peer circuit breaker, health, broadcast and graceful shutdown.
 *
 * Breaker: Closed -> Open after breaker_failure_threshold consecutive
 * failures (a reliable message to the peer that timed out after its
 * retries; at-most-once losses are expected and do not count); Open -> HalfOpen after
 * breaker_open_timeout (a timer, so the callback comes on time); HalfOpen
 * lets breaker_half_open_max_calls sends through as trials: after
 * breaker_success_threshold of them are acknowledged it closes, on any
 * failure it opens again. A send to an open circuit (or beyond the trials)
 * fails at once with WARP_ECIRCUIT_OPEN. A refusal by the receiving
 * application (NACK) proves the peer alive and counts as a success.
 */
#include <stdio.h>
#include <string.h>

#include "engine/engine_priv.h"
#include "warp/error.h"

static void set_state(warp_engine_t *e, struct warp_peer *p, warp_breaker_state_t to)
{
	warp_breaker_state_t from = (warp_breaker_state_t)p->breaker;
	if (from == to)
		return;
	p->breaker = (uint8_t)to;
	p->breaker_trials = 0;
	p->breaker_successes = 0;
	if (to == WARP_BREAKER_OPEN)
		warp__wheel_arm(&e->wheel, &p->breaker_timer, e->now + e->cfg.breaker_open_timeout_ns);
	else
		warp__wheel_cancel(&e->wheel, &p->breaker_timer);
	if (to == WARP_BREAKER_CLOSED)
		p->breaker_failures = 0;
	warp__stat(e, breaker_transitions, 1);
	if (e->breaker_fn)
		e->breaker_fn(e->breaker_user, p, from, to);
}

void warp__breaker_timer(struct warp_timer *t, uint64_t now)
{
	struct warp_peer *p = warp__container_of(t, struct warp_peer, breaker_timer);
	(void)now;
	if (p->breaker == WARP_BREAKER_OPEN)
		set_state(p->engine, p, WARP_BREAKER_HALF_OPEN);
}

int warp__breaker_admit(warp_engine_t *e, struct warp_peer *p)
{
	if (warp__likely(p->breaker == WARP_BREAKER_CLOSED))
		return 0;
	if (p->breaker == WARP_BREAKER_HALF_OPEN &&
	    p->breaker_trials < e->cfg.breaker_half_open_max_calls) {
		p->breaker_trials++;
		return 0;
	}
	warp__stat(e, send_circuit_open, 1);
	return WARP_ECIRCUIT_OPEN;
}

/* A send admitted as a half-open trial that did not go out after all, or
 * whose message settled without a verdict: the trial is free again. With
 * no timer in the half-open state, trials that never report would hold it
 * half-open for good, refusing every send. */
void warp__breaker_unadmit(warp_engine_t *e, struct warp_peer *p)
{
	(void)e;
	if (p->breaker == WARP_BREAKER_HALF_OPEN && p->breaker_trials > 0)
		p->breaker_trials--;
}

void warp__breaker_outcome(warp_engine_t *e, struct warp_peer *p, int status)
{
	/* Messages settled because the peer closed, or because the handshake
	 * was refused, say nothing about the peer's health: neither success
	 * nor failure (a refusal is a setting or certificate to fix, reported
	 * as such, and the handshake retries with its own back-off). */
	if (!e->cfg.breaker_failure_threshold || status == WARP_ECLOSED ||
	    status == WARP_EHANDSHAKE) {
		warp__breaker_unadmit(e, p);
		return;
	}
	bool failed = status == WARP_ETIMEDOUT;
	switch (p->breaker) {
	case WARP_BREAKER_CLOSED:
		if (!failed)
			p->breaker_failures = 0;
		else if (++p->breaker_failures >= e->cfg.breaker_failure_threshold)
			set_state(e, p, WARP_BREAKER_OPEN);
		break;
	case WARP_BREAKER_HALF_OPEN:
		if (failed)
			set_state(e, p, WARP_BREAKER_OPEN);
		else if (++p->breaker_successes >= e->cfg.breaker_success_threshold)
			set_state(e, p, WARP_BREAKER_CLOSED);
		break;
	default: /* open: outcomes of messages sent before it opened */
		break;
	}
}

void warp_engine_set_breaker_callback(warp_engine_t *e, warp_breaker_fn fn, void *user)
{
	if (!e)
		return;
	e->breaker_fn = fn;
	e->breaker_user = user;
}

warp_breaker_state_t warp_peer_breaker(const warp_peer_t *p)
{
	return (warp_breaker_state_t)p->breaker;
}

int warp_peer_health(const warp_engine_t *e, const warp_peer_t *p, warp_health_t *out)
{
	if (!e || !p || !out)
		return WARP_EINVAL;
	out->state = WARP_HEALTH_UP;
	out->reason[0] = '\0';
	uint64_t hb = e->cfg.heartbeat_interval_ns;
	if (p->closed) {
		out->state = WARP_HEALTH_DOWN;
		snprintf(out->reason, sizeof(out->reason), "connection closed");
	} else if (p->ss == WARP_SESSION_FAILED) {
		out->state = WARP_HEALTH_DOWN;
		if (snprintf(out->reason, sizeof(out->reason), "handshake failed: %s", p->hs_error) < 0)
			out->reason[0] = '\0';
	} else if (hb && e->now - (p->last_rx_ns ? p->last_rx_ns : p->added_ns) >
				  hb * e->cfg.heartbeat_miss_limit) {
		out->state = WARP_HEALTH_DOWN;
		snprintf(out->reason, sizeof(out->reason), "silent for %llu ms",
			 (unsigned long long)((e->now - (p->last_rx_ns ? p->last_rx_ns : p->added_ns)) /
					      1000000));
	} else if (p->breaker == WARP_BREAKER_OPEN) {
		out->state = WARP_HEALTH_DOWN;
		snprintf(out->reason, sizeof(out->reason), "circuit open after %u failures",
			 p->breaker_failures);
	} else if (e->tp[p->tp[p->active_tp].transport].link_down) {
		out->state = WARP_HEALTH_DEGRADED;
		snprintf(out->reason, sizeof(out->reason), "link down on transport %u (%s)",
			 p->tp[p->active_tp].transport, e->tp[p->tp[p->active_tp].transport].ops->name);
	} else if (p->ss != WARP_SESSION_UP) {
		/* after a link down: that is why a handshake would not finish */
		out->state = WARP_HEALTH_DEGRADED;
		snprintf(out->reason, sizeof(out->reason), "handshake in progress");
	} else if (p->breaker == WARP_BREAKER_HALF_OPEN) {
		out->state = WARP_HEALTH_DEGRADED;
		snprintf(out->reason, sizeof(out->reason), "circuit half-open (probing)");
	} else if (p->rtx_head != p->rtx_tail || p->rto_backoff) {
		out->state = WARP_HEALTH_DEGRADED;
		snprintf(out->reason, sizeof(out->reason), "resending lost packets (rto %llu us)",
			 (unsigned long long)((p->rto_ns << p->rto_backoff) / 1000));
	}
	return 0;
}

int warp_engine_health(const warp_engine_t *e, warp_health_t *out)
{
	if (!e || !out)
		return WARP_EINVAL;
	out->state = WARP_HEALTH_UP;
	out->reason[0] = '\0';
	uint32_t down = 0;
	for (uint32_t i = 0; i < e->n_peers; i++) {
		warp_health_t h;
		warp_peer_health(e, &e->peers[i], &h);
		if (h.state == WARP_HEALTH_DOWN)
			down++;
		if (h.state != WARP_HEALTH_UP && out->state == WARP_HEALTH_UP) {
			out->state = WARP_HEALTH_DEGRADED;
			if (snprintf(out->reason, sizeof(out->reason), "peer '%s': %s",
				     e->peers[i].node, h.reason) < 0)
				out->reason[0] = '\0'; /* truncation is fine */
		}
	}
	if (e->n_peers && down == e->n_peers) {
		out->state = WARP_HEALTH_DOWN;
		snprintf(out->reason, sizeof(out->reason), "all %u peers down", e->n_peers);
	}
	return 0;
}

int warp_broadcast(warp_engine_t *e, warp_bcast_t *dst, unsigned n, const void *buf, size_t len)
{
	if (!e || (!dst && n) || n == 0)
		return WARP_EINVAL;
	int ok = 0, first_err = 0;
	for (unsigned i = 0; i < n; i++) {
		dst[i].msg_id = 0;
		dst[i].status = dst[i].stream ? warp_send(e, dst[i].stream, buf, len, &dst[i].msg_id)
					      : WARP_EINVALID_NODE;
		if (dst[i].status == 0)
			ok++;
		else if (!first_err)
			first_err = dst[i].status;
	}
	return ok ? ok : first_err;
}

int warp_engine_shutdown(warp_engine_t *e, uint64_t timeout_ns, uint64_t *undelivered)
{
	if (!e)
		return WARP_EINVAL;
	if (e->started)
		return warp__err(WARP_ESTATE, "shutdown: stop the engine thread first");
	e->shutting_down = true;
	/* the timeout counts from now, not from the last poll (an engine
	 * stopped, or not polled, a while ago) */
	warp__engine_tick(e);
	uint64_t start = warp_engine_now(e);
	while (e->unsettled && warp_engine_now(e) - start < timeout_ns) {
		int rc = warp_engine_poll(e);
		if (rc < 0)
			break;
	}
	if (undelivered)
		*undelivered = e->unsettled;
	if (e->unsettled)
		return warp__err(WARP_ESHUTDOWN_TIMEOUT,
				 "shutdown: %llu messages still unsettled after %llu ms",
				 (unsigned long long)e->unsettled,
				 (unsigned long long)(timeout_ns / 1000000));
	return 0;
}
