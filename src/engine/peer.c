/* SPDX-License-Identifier: Apache-2.0 */
/* Peers and streams (slow path). */
#include <stdio.h>
#include <string.h>

#include "engine/engine_priv.h"
#include "warp/error.h"

int warp__node_name_check(const char *s, size_t n);

uint64_t warp__conn_id(const char *node)
{
	/* FNV-1a 64. v1 connection ids are the sender's node id hash; the
	 * handshake (crypto issue) replaces them with negotiated ids. */
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)node; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	return h ? h : 1;
}

int warp__parse_node_id(const char *s, char *name, size_t name_cap, const char **addr)
{
	if (!s)
		return warp__err(WARP_EINVALID_NODE, "node id: NULL");
	const char *at = strchr(s, '@');
	size_t n = at ? (size_t)(at - s) : strlen(s);
	int bad = warp__node_name_check(s, n);
	if (bad == -1)
		return warp__err(WARP_EINVALID_NODE, "node id '%s': empty name", s);
	if (bad == -2 || n >= name_cap)
		return warp__err(WARP_EINVALID_NODE, "node id '%s': name longer than %d characters",
				 s, WARP_NODE_MAX - 1);
	if (bad > 0)
		return warp__err(WARP_EINVALID_NODE,
				 "node id '%s': invalid character '%c' in name (allowed: A-Z a-z "
				 "0-9 . _ -)",
				 s, bad);
	memcpy(name, s, n);
	name[n] = '\0';
	if (addr)
		*addr = at ? at + 1 : NULL;
	return 0;
}

static struct warp_peer *peer_lookup_name(warp_engine_t *e, const char *node)
{
	for (uint32_t i = 0; i < e->n_peers; i++)
		if (strcmp(e->peers[i].node, node) == 0)
			return &e->peers[i];
	return NULL;
}

static int transport_index(warp_engine_t *e, const char *driver)
{
	for (uint32_t i = 0; i < e->n_tp; i++)
		if (strcmp(e->tp[i].ops->name, driver) == 0)
			return (int)i;
	return -1;
}

int warp_peer_add_config(warp_engine_t *e, const warp_peer_config_t *pc, warp_peer_t **out)
{
	if (!e || !pc)
		return warp__err(WARP_EINVAL, "peer: NULL argument");
	if (e->started)
		return warp__err(WARP_ESTATE, "peer '%s': engine is started", pc->node);
	char name[WARP_NODE_MAX];
	int rc = warp__parse_node_id(pc->node, name, sizeof(name), NULL);
	if (rc)
		return rc;
	if (strcmp(name, e->cfg.node_id) == 0)
		return warp__err(WARP_EINVALID_NODE, "peer '%s': that is this node's own id", name);
	if (peer_lookup_name(e, name))
		return warp__err(WARP_EEXIST, "peer '%s': already added", name);
	if (e->n_peers >= e->cfg.max_peers)
		return warp__err(WARP_ENOMEM, "peer '%s': max_peers (%u) reached", name,
				 e->cfg.max_peers);
	if (pc->n_transports == 0 || pc->n_transports > WARP_MAX_TRANSPORTS)
		return warp__err(WARP_EINVALID_NODE, "peer '%s': needs 1..%d transports", name,
				 WARP_MAX_TRANSPORTS);
	uint64_t cid = warp__conn_id(name);
	uint32_t slot = (uint32_t)cid & e->peer_hash_mask;
	while (e->peer_hash[slot] >= 0) {
		if (e->peers[e->peer_hash[slot]].conn_id == cid)
			return warp__err(WARP_EEXIST,
					 "peer '%s': connection id collides with peer '%s'; rename one",
					 name, e->peers[e->peer_hash[slot]].node);
		slot = (slot + 1) & e->peer_hash_mask;
	}
	if (cid == e->conn_id)
		return warp__err(WARP_EEXIST, "peer '%s': connection id collides with this node", name);

	struct warp_peer *p = &e->peers[e->n_peers];
	/* tables preallocated at create */
	struct warp_stream *streams = p->streams;
	struct warp_sent *sent = p->sent;
	struct warp_fref *frefs = p->frefs, *rtx = p->rtx;
	struct warp_rxstream *rxs = p->rxs;
	memset(p, 0, sizeof(*p));
	p->streams = streams;
	p->sent = sent;
	p->frefs = frefs;
	p->rtx = rtx;
	p->rxs = rxs;
	p->sent_mask = e->cfg.max_unacked_pkts - 1;
	p->fref_mask = e->cfg.max_unacked_pkts * 8 - 1;
	p->rtx_mask = e->cfg.max_unacked_pkts * 16 - 1;
	memset(p->sent, 0, sizeof(*p->sent) * e->cfg.max_unacked_pkts);
	memset(p->rxs, 0, sizeof(*p->rxs) * e->cfg.max_streams);
	p->sent_tail = 1;
	p->peer_window = (uint32_t)e->cfg.rx_window_bytes; /* until its first CREDIT */
	e->cc->init(&p->cc, e->cfg.mtu);
	p->rto_ns = e->cfg.rto_initial_ns;
	warp__timer_init(&p->rto_timer, warp__peer_rto_timer);
	warp__timer_init(&p->breaker_timer, warp__breaker_timer);
	warp__timer_init(&p->probe_timer, warp__peer_probe_timer);
	p->fallback = pc->fallback;
	if (pc->encryption > WARP_ENCRYPTION_REQUIRED)
		return warp__err(WARP_EINVALID_NODE,
				 "peer '%s': encryption %u is not 0 (engine's), 1 (off), 2 (optional) "
				 "or 3 (required)",
				 name, pc->encryption);
	if (pc->encryption == WARP_ENCRYPTION_REQUIRED && !e->tls_ctx)
		return warp__err(WARP_EINVALID_NODE,
				 "peer '%s': encryption required, but this engine has no TLS "
				 "(set tls.cert_file, tls.key_file and tls.ca_file)",
				 name);
	if (p->fallback > WARP_FALLBACK_NONE)
		return warp__err(WARP_EINVALID_NODE, "peer '%s': fallback %u is not 0..2", name,
				 pc->fallback);
	p->added_ns = e->now;
	for (uint32_t i = 0; i < pc->n_transports; i++) {
		int t = transport_index(e, pc->transports[i].driver);
		if (t < 0)
			return warp__err(WARP_EINVALID_NODE,
					 "peer '%s': transport '%s' is not configured on this engine",
					 name, pc->transports[i].driver);
		p->tp[i].transport = (uint8_t)t;
		rc = e->tp[t].ops->parse_addr(e->tp[t].ctx, pc->transports[i].addr, &p->tp[i].addr);
		if (rc)
			return warp__err_prefix(rc, "peer '%s': transports[%u] (%s): ", name, i,
						pc->transports[i].driver);
	}
	strcpy(p->node, name);
	p->engine = e;
	p->conn_id = cid;
	p->idx = e->n_peers;
	p->n_tp = pc->n_transports;
	p->next_pkt_num = 1;
	p->policy = (uint8_t)(pc->encryption ? pc->encryption : e->cfg.encryption);
	warp__timer_init(&p->hb_timer, warp__peer_hb_timer);
	warp__timer_init(&p->hs_retry_timer, warp__hs_retry_timer);
	e->peer_hash[slot] = (int32_t)e->n_peers;
	e->n_peers++;
	if (e->cfg.heartbeat_interval_ns)
		warp__wheel_arm(&e->wheel, &p->hb_timer, e->now + e->cfg.heartbeat_interval_ns);
	/* added while its first transport's link is down: start on the next */
	if (e->tp[p->tp[0].transport].link_down)
		warp__peer_failover(e, p);
	warp__engine_tick(e); /* the handshake's timers start now, not at the last poll */
	warp__hs_begin(e, p); /* every connection starts with a handshake */
	if (out)
		*out = p;
	return 0;
}

int warp_peer_add(warp_engine_t *e, const char *node_at_addr, warp_peer_t **out)
{
	if (!e || !node_at_addr)
		return warp__err(WARP_EINVAL, "peer: NULL argument");
	warp_peer_config_t pc;
	memset(&pc, 0, sizeof(pc));
	const char *addr;
	int rc = warp__parse_node_id(node_at_addr, pc.node, sizeof(pc.node), &addr);
	if (rc)
		return rc;
	if (!addr || !*addr)
		return warp__err(WARP_EINVALID_NODE, "node id '%s': missing '@address'", node_at_addr);
	if (strlen(addr) >= WARP_ADDR_STR_MAX)
		return warp__err(WARP_EINVALID_NODE, "node id '%s': address too long", node_at_addr);
	strcpy(pc.transports[0].driver, e->tp[0].ops->name);
	strcpy(pc.transports[0].addr, addr);
	pc.n_transports = 1;
	return warp_peer_add_config(e, &pc, out);
}

int warp_peer_find(warp_engine_t *e, const char *node, warp_peer_t **out)
{
	if (!e || !node)
		return WARP_EINVAL;
	struct warp_peer *p = peer_lookup_name(e, node);
	if (!p)
		return warp__err(WARP_EINVALID_NODE, "peer '%s': unknown", node);
	if (out)
		*out = p;
	return 0;
}

const char *warp_peer_node(const warp_peer_t *p)
{
	return p ? p->node : "";
}

int warp_peer_close(warp_engine_t *e, warp_peer_t *p, uint16_t code, const char *reason)
{
	if (!e || !p)
		return WARP_EINVAL;
	if (p->closed)
		return WARP_ECLOSED;
	warp__tx_drop_peer_queue(e, p, WARP_ECLOSED);
	p->closed = true;
	p->close_pending = true;
	p->close_code = code;
	snprintf(p->close_reason, sizeof(p->close_reason), "%s", reason ? reason : "");
	warp__tx_activate_peer(e, p);
	return 0;
}

int warp_peer_reopen(warp_engine_t *e, warp_peer_t *p)
{
	if (!e || !p)
		return WARP_EINVAL;
	p->closed = false;
	p->close_pending = false;
	/* what the close's unacknowledged packets did to the timers */
	p->rto_backoff = 0;
	p->rto_streak = 0;
	if (p->active_tp != 0 && !warp__timer_armed(&p->probe_timer))
		warp__wheel_arm(&e->wheel, &p->probe_timer, e->now + e->cfg.failback_probe_ns);
	/* The remote may have restarted: forget its packet numbers, and the
	 * order of its at-least-once streams. Exactly-once streams keep their
	 * deduplication state: a resent message is still recognised. */
	warp__rx_window_reset(p);
	p->n_nacks = 0; /* refusals of messages the close dropped */
	for (uint32_t i = 0; i < e->cfg.max_streams; i++) {
		struct warp_rxstream *r = &p->rxs[i];
		if (r->used && r->guarantee != WARP__EO) {
			warp__rx_stream_reset(e, p, r);
		}
	}
	/* Tell the other side where each ordered stream continues: messages
	 * dropped by the close will not come. */
	warp__announce_lows(e, p);
	/* and a new session (resumed where TLS has a ticket) */
	warp__engine_tick(e);
	warp__hs_begin(e, p);
	return 0;
}

/* While failed over: ask the first transport for a heartbeat reply now
 * and then; the reply coming back over it means it works again. */
void warp__peer_probe_timer(struct warp_timer *t, uint64_t now)
{
	struct warp_peer *p = warp__container_of(t, struct warp_peer, probe_timer);
	warp_engine_t *e = p->engine;
	if (p->active_tp == 0)
		return;
	if (!p->closed) { /* closed: no probe, but the timer lives on for a reopen */
		p->probe_pending = true;
		warp__tx_activate_peer(e, p);
	}
	warp__wheel_arm(&e->wheel, t, now + e->cfg.failback_probe_ns);
}

void warp__peer_failover(warp_engine_t *e, struct warp_peer *p)
{
	if (p->n_tp < 2 || p->fallback != WARP_FALLBACK_FAILOVER)
		return;
	/* the next transport whose link is not known to be down; none: stay */
	uint32_t next = p->active_tp;
	for (uint32_t k = 1; k < p->n_tp; k++) {
		uint32_t c = (p->active_tp + k) % p->n_tp;
		if (!e->tp[p->tp[c].transport].link_down) {
			next = c;
			break;
		}
	}
	if (next == p->active_tp)
		return;
	p->active_tp = next;
	warp__peer_new_path(e, p);
	warp__stat(e, failovers, 1);
	if (p->active_tp != 0)
		warp__wheel_arm(&e->wheel, &p->probe_timer, e->now + e->cfg.failback_probe_ns);
	warp__tx_activate_peer(e, p);
}

void warp__peer_failback(warp_engine_t *e, struct warp_peer *p)
{
	if (p->active_tp == 0)
		return;
	p->active_tp = 0;
	p->rto_backoff = 0;
	warp__wheel_cancel(&e->wheel, &p->probe_timer);
	warp__stat(e, failbacks, 1);
	warp__tx_activate_peer(e, p);
}

int warp_peer_transport(const warp_peer_t *p)
{
	return p ? (int)p->active_tp : WARP_EINVAL;
}

void warp__peer_hb_timer(struct warp_timer *t, uint64_t now)
{
	struct warp_peer *p = warp__container_of(t, struct warp_peer, hb_timer);
	warp_engine_t *e = p->engine;
	if (!p->closed) {
		p->hb_pending = true;
		warp__tx_activate_peer(e, p);
	}
	warp__wheel_arm(&e->wheel, t, now + e->cfg.heartbeat_interval_ns);
}

int warp_stream_open_ex(warp_engine_t *e, warp_peer_t *p, uint16_t stream_id,
			const warp_stream_opts_t *o, warp_stream_t **out)
{
	if (!e || !p)
		return warp__err(WARP_EINVAL, "stream: NULL argument");
	if (e->started)
		return warp__err(WARP_ESTATE, "stream %u: open streams before warp_engine_start",
				 stream_id);
	uint8_t priority = o && o->priority ? o->priority : WARP_PRIO_MIN;
	int g = o && o->guarantee >= 0 ? o->guarantee : (int)e->cfg.default_guarantee;
	if (priority < WARP_PRIO_MIN)
		return warp__err(WARP_EINVAL,
				 "stream %u: priority %u is reserved for control (use %d..%d)",
				 stream_id, priority, WARP_PRIO_MIN, WARP_PRIO_MAX);
	if (g < WARP_AT_MOST_ONCE || g > WARP_EXACTLY_ONCE)
		return warp__err(WARP_EINVAL, "stream %u: guarantee %d is not one of 0..2", stream_id,
				 g);
	for (uint32_t i = 0; i < p->n_streams; i++)
		if (p->streams[i].id == stream_id)
			return warp__err(WARP_EEXIST, "stream %u to '%s': already open", stream_id,
					 p->node);
	if (p->n_streams >= e->cfg.max_streams)
		return warp__err(WARP_ENOMEM, "stream %u to '%s': max_streams (%u) reached",
				 stream_id, p->node, e->cfg.max_streams);
	struct warp_stream *s = &p->streams[p->n_streams++];
	memset(s, 0, sizeof(*s));
	s->peer = p;
	s->id = stream_id;
	s->prio = priority;
	s->guarantee = (uint8_t)g;
	s->ack_timeout_ns = o && o->ack_timeout_ns ? o->ack_timeout_ns : e->cfg.ack_timeout_ns;
	s->max_retries = o && o->max_retries ? o->max_retries : e->cfg.max_retries;
	s->credit_max = e->cfg.stream_window_msgs; /* the grant every stream starts with */
	if (out)
		*out = s;
	return 0;
}

int warp_stream_open(warp_engine_t *e, warp_peer_t *p, uint16_t stream_id, uint8_t priority,
		     warp_stream_t **out)
{
	warp_stream_opts_t o;
	memset(&o, 0, sizeof(o));
	o.priority = priority;
	o.guarantee = -1;
	if (priority < WARP_PRIO_MIN) /* keep the priority error for 0 too */
		o.priority = priority ? priority : 1;
	return warp_stream_open_ex(e, p, stream_id, &o, out);
}

uint16_t warp_stream_id(const warp_stream_t *s)
{
	return s->id;
}

warp_peer_t *warp_stream_peer(const warp_stream_t *s)
{
	return s->peer;
}
