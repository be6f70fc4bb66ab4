/* SPDX-License-Identifier: Apache-2.0 */
/* Engine life cycle, the poll loop and the engine thread. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine_priv.h"
#include "warp/error.h"

static inline uint64_t engine_clock(const warp_engine_t *e)
{
	return e->cfg.clock ? e->cfg.clock(e->cfg.clock_arg) : warp__clock_ns();
}

/* Read the clock outside a poll (slow-path calls that start timers). */
void warp__engine_tick(warp_engine_t *e)
{
	e->now = engine_clock(e);
	atomic_store_explicit(&e->now_pub, e->now, memory_order_relaxed);
}

static uint32_t pow2_at_least(uint64_t v)
{
	uint32_t s = 1;
	while (s < v)
		s <<= 1;
	return s;
}

static void reasm_timer_cb(struct warp_timer *t, uint64_t now)
{
	warp__reasm_timeout(t, now);
}

warp__cold int warp_engine_create(const warp_config_t *cfg, warp_engine_t **out)
{
	if (!cfg || !out)
		return warp__err(WARP_EINVAL, "engine: NULL argument");
	int rc = warp_config_validate(cfg);
	if (rc)
		return rc;
	warp__clock_init();
	warp_engine_t *e = warp__aligned_alloc(WARP_CACHE_LINE, sizeof(*e));
	if (!e)
		return warp__err(WARP_ENOMEM, "engine: out of memory");
	memset(e, 0, sizeof(*e));
	e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	e->cfg = *cfg;
	e->cfg.peers = NULL;
	e->cfg.n_peers = 0;
	e->conn_id = warp__conn_id(cfg->node_id);
	e->now = engine_clock(e);
	atomic_store_explicit(&e->now_pub, e->now, memory_order_relaxed);
	e->stream_payload_max = warp__stream_payload_max(cfg->mtu);
	e->tx_cap = cfg->tx_burst;
	e->cc = warp__cc_find(cfg->congestion);

	rc = WARP_ENOMEM;
	/* Slack past the MTU lets drivers see (and count) oversized packets
	 * instead of silently truncating them. */
	if (warp__pktpool_init(&e->pkts, cfg->pkt_pool, cfg->mtu + WARP_PKT_SLACK))
		goto fail_mem;
	if (warp__buddy_init(&e->txa, cfg->tx_arena_bytes) ||
	    warp__buddy_init(&e->rxa, cfg->rx_arena_bytes))
		goto fail_mem;
	e->txmsgs = warp__calloc(cfg->max_tx_msgs, sizeof(*e->txmsgs));
	if (!e->txmsgs || warp__idxpool_init(&e->txmsg_free, cfg->max_tx_msgs))
		goto fail_mem;

	e->peers = warp__calloc(cfg->max_peers, sizeof(*e->peers));
	if (!e->peers)
		goto fail_mem;
	for (uint32_t i = 0; i < cfg->max_peers; i++) {
		struct warp_peer *p = &e->peers[i];
		p->streams = warp__calloc(cfg->max_streams, sizeof(struct warp_stream));
		p->rxs = warp__calloc(cfg->max_streams, sizeof(struct warp_rxstream));
		p->sent = warp__calloc(cfg->max_unacked_pkts, sizeof(struct warp_sent));
		p->frefs = warp__calloc((size_t)cfg->max_unacked_pkts * 8, sizeof(struct warp_fref));
		p->rtx = warp__calloc((size_t)cfg->max_unacked_pkts * 16, sizeof(struct warp_fref));
		if (!p->streams || !p->rxs || !p->sent || !p->frefs || !p->rtx)
			goto fail_mem;
	}
	uint32_t ph = pow2_at_least(2ull * cfg->max_peers);
	e->peer_hash = warp__malloc(ph * sizeof(*e->peer_hash));
	if (!e->peer_hash)
		goto fail_mem;
	memset(e->peer_hash, 0xff, ph * sizeof(*e->peer_hash));
	e->peer_hash_mask = ph - 1;

	e->reasm = warp__calloc(cfg->max_reassembly, sizeof(*e->reasm));
	if (!e->reasm || warp__idxpool_init(&e->reasm_free, cfg->max_reassembly))
		goto fail_mem;
	for (uint32_t i = 0; i < cfg->max_reassembly; i++) {
		warp__timer_init(&e->reasm[i].timer, reasm_timer_cb);
		e->reasm[i].engine = e;
		e->reasm[i].hnext = e->reasm[i].qnext = e->reasm[i].onext = -1;
	}
	uint32_t rh = pow2_at_least(2ull * cfg->max_reassembly);
	e->reasm_hash = warp__malloc(rh * sizeof(*e->reasm_hash));
	if (!e->reasm_hash)
		goto fail_mem;
	memset(e->reasm_hash, 0xff, rh * sizeof(*e->reasm_hash));
	e->reasm_hash_mask = rh - 1;

	if (warp__wheel_init(&e->wheel, cfg->timer_slots, cfg->timer_tick_ns, e->now))
		goto fail_mem;
	e->channels = warp__calloc(cfg->max_channels, sizeof(*e->channels));
	e->rx_channels = warp__calloc(cfg->max_channels, sizeof(*e->rx_channels));
	e->rxv = warp__calloc(cfg->rx_burst, sizeof(*e->rxv));
	if (!e->channels || !e->rx_channels || !e->rxv)
		goto fail_mem;
	rc = warp__sec_init(e);
	if (rc)
		goto fail;

	for (uint32_t i = 0; i < cfg->n_transports; i++) {
		const warp_transport_config_t *tc = &cfg->transports[i];
		const struct warp_driver_ops *ops = warp__driver_find(tc->driver);
		if (!ops) {
			rc = warp__err(WARP_ECONFIG,
				       "transports[%u].driver: '%s' is not built in (have: %s)", i,
				       tc->driver, warp__driver_names());
			goto fail;
		}
		for (uint32_t j = 0; j < i; j++)
			if (e->tp[j].ops == ops) {
				rc = warp__err(WARP_ECONFIG,
					       "transports[%u].driver: '%s' is listed twice", i,
					       tc->driver);
				goto fail;
			}
		struct warp_transport *t = &e->tp[i];
		t->txq = warp__calloc(e->tx_cap, sizeof(*t->txq));
		if (!t->txq)
			goto fail_mem;
		struct warp_driver_open_args a = {
			.listen = tc->listen,
			.driver_arg = tc->driver_arg,
			.node_id = cfg->node_id,
			.mtu = cfg->mtu,
			.pool = &e->pkts,
			.flags = tc->flags,
			.sock_buf_bytes = tc->sock_buf_bytes,
			.connect_timeout_ns = cfg->connect_timeout_ns,
			.retry_initial_backoff_ns = cfg->retry_initial_backoff_ns,
			.retry_max_backoff_ns = cfg->retry_max_backoff_ns,
			.retry_max_attempts = cfg->retry_max_attempts,
			.max_peers = cfg->max_peers,
			.cpu = cfg->cpu,
			.cnt = &t->cnt,
		};
		rc = ops->open(&a, &t->ctx);
		if (rc) {
			rc = warp__err_prefix(rc, "transports[%u] (%s, listen '%s'): ", i,
					      tc->driver, tc->listen);
			goto fail;
		}
		t->ops = ops;
		if (ops->single_issuer && ops->single_issuer(t->ctx))
			e->single_issuer = true;
		t->rx_burst = ops->rx_burst;
		t->tx_burst = ops->tx_burst;
		t->link_up = ops->link_up;
		e->n_tp = i + 1;
	}
	for (uint32_t i = 0; i < cfg->n_peers; i++) {
		rc = warp_peer_add_config(e, &cfg->peers[i], NULL);
		if (rc) {
			rc = warp__err_prefix(rc, "peers[%u]: ", i);
			goto fail;
		}
	}
	*out = e;
	return 0;

fail_mem:
	rc = warp__err(WARP_ENOMEM, "engine: out of memory sizing pools (pkt_pool %u, arenas "
				    "%llu + %llu bytes)",
		       cfg->pkt_pool, (unsigned long long)cfg->tx_arena_bytes,
		       (unsigned long long)cfg->rx_arena_bytes);
fail:
	warp_engine_destroy(e);
	return rc;
}

warp__cold void warp_engine_destroy(warp_engine_t *e)
{
	if (!e)
		return;
	if (e->started)
		warp_engine_stop(e);
	/* received packets may hold a driver's buffers: back before close */
	while (e->rx_next < e->rx_n)
		warp__pkt_put(&e->pkts, e->rxv[e->rx_next++]);
	for (uint32_t i = 0; i < WARP_MAX_TRANSPORTS; i++) {
		struct warp_transport *t = &e->tp[i];
		for (uint32_t k = 0; k < t->ntxq; k++)
			warp__pkt_put(&e->pkts, t->txq[k]);
		if (t->ops)
			t->ops->close(t->ctx);
		warp__free(t->txq);
	}
	for (uint32_t i = 0; i < e->n_channels; i++)
		warp__channel_free(e->channels[i]);
	warp__free(e->channels);
	warp__free(e->rx_channels);
	warp__free(e->rxv);
	warp__wheel_fini(&e->wheel);
	warp__free(e->reasm_hash);
	warp__idxpool_fini(&e->reasm_free);
	warp__free(e->reasm);
	warp__free(e->peer_hash);
	warp__sec_fini(e);
	if (e->peers)
		for (uint32_t i = 0; i < e->cfg.max_peers; i++) {
			warp__free(e->peers[i].streams);
			warp__free(e->peers[i].rxs);
			warp__free(e->peers[i].sent);
			warp__free(e->peers[i].frefs);
			warp__free(e->peers[i].rtx);
		}
	warp__free(e->peers);
	warp__idxpool_fini(&e->txmsg_free);
	warp__free(e->txmsgs);
	warp__buddy_fini(&e->txa);
	warp__buddy_fini(&e->rxa);
	warp__pktpool_fini(&e->pkts);
	if (e->wake_fd >= 0)
		close(e->wake_fd);
	warp__free(e);
}

const char *warp_engine_node_id(const warp_engine_t *e)
{
	return e ? e->cfg.node_id : "";
}

void warp_engine_set_recv(warp_engine_t *e, warp_recv_fn fn, void *user)
{
	if (!e)
		return;
	e->recv_fn = fn;
	e->recv_user = user;
}

void warp_engine_set_completion(warp_engine_t *e, warp_recv_fn fn, void *user)
{
	if (!e)
		return;
	e->completion_fn = fn;
	e->completion_user = user;
}

uint64_t warp_engine_now(const warp_engine_t *e)
{
	/* relaxed: a clock reading, no data depends on it */
	return atomic_load_explicit(&e->now_pub, memory_order_relaxed);
}

/* Room for one packet's worth of deliveries in every receiving channel:
 * its payload plus a record header per frame it can hold. */
static bool rx_room(warp_engine_t *e)
{
	if (e->recv_fn || !e->n_rx_channels)
		return true;
	/* payload + one record (8-byte ring header, the message record header,
	 * up to 7 bytes of alignment) per frame the packet can hold */
	size_t need = e->cfg.mtu + (e->cfg.mtu / WARP_FRAME_STREAM_HDR + 1) *
					   (8 + sizeof(struct warp_chrec_msg) + 7);
	for (uint32_t i = 0; i < e->n_rx_channels; i++) {
		struct warp_channel *c = e->rx_channels[i];
		size_t cap = warp_spsc_capacity(c->del);
		if (c->spill_head >= 0 || cap - warp_spsc_used(c->del) < WARP__MIN(need, cap / 2))
			return false;
	}
	return true;
}

/* Parse the received packets not handled yet, while there is room. */
static unsigned rx_held(warp_engine_t *e)
{
	unsigned n = 0;
	while (e->rx_next < e->rx_n && rx_room(e)) {
		struct warp_pkt *pkt = e->rxv[e->rx_next++];
		warp__rx_packet(e, pkt);
		warp__pkt_put(&e->pkts, pkt);
		n++;
	}
	return n;
}

/* Transports bound to one thread (io_uring SINGLE_ISSUER) take the first
 * polling thread; any other thread is refused. */
static int check_thread(warp_engine_t *e)
{
	pthread_t self = pthread_self();
	if (!e->bound) {
		e->bound = true;
		e->bound_thread = self;
		return 0;
	}
	if (pthread_equal(self, e->bound_thread))
		return 0;
	return warp__err(WARP_ESTATE,
			 "engine '%s': a transport is bound to the thread that first polled it "
			 "(io_uring SINGLE_ISSUER); use uring_setup = coop to poll from "
			 "several threads",
			 e->cfg.node_id);
}

/* A transport's link went down or came back. Down: every peer whose active
 * transport it is fails over to its next one now, instead of after
 * failover_after_rtos timeouts; health reports the others degraded. Up:
 * nothing to do here, the failback probes find the first transport again. */
static warp__cold void link_changed(warp_engine_t *e, uint32_t ti, bool up)
{
	struct warp_transport *t = &e->tp[ti];
	t->link_down = !up;
	if (up)
		return;
	warp__cnt_add(t->cnt.drv_link_down, 1);
	for (uint32_t i = 0; i < e->n_peers; i++) {
		struct warp_peer *p = &e->peers[i];
		if (!p->closed && p->tp[p->active_tp].transport == ti)
			warp__peer_failover(e, p);
	}
}

static int engine_poll(warp_engine_t *e)
{
	uint64_t allocs = warp__alloc_count_thread();
	unsigned work = 0;
	e->now = engine_clock(e);
	atomic_store_explicit(&e->now_pub, e->now, memory_order_relaxed);
	warp__stat(e, polls, 1);

	if (e->n_channels)
		work += warp__channels_drain(e);
	if (e->n_spilled || e->n_cpend)
		work += warp__deliver_spilled(e);

	/* Receive. A packet is only parsed when every receiving channel has
	 * room for all it can deliver; otherwise it waits in rxv (at most one
	 * burst) and the driver's own queue holds the rest: backpressure
	 * towards the network instead of dropping what was received. */
	if (e->rx_next < e->rx_n)
		work += rx_held(e);
	if (e->rx_next == e->rx_n) {
		for (uint32_t i = 0; i < e->n_tp; i++) {
			struct warp_transport *t = &e->tp[i];
			uint16_t n = t->rx_burst(t->ctx, e->rxv, (uint16_t)e->cfg.rx_burst, e->now);
			for (uint16_t k = 0; k < n; k++)
				e->rxv[k]->transport = (uint8_t)i;
			e->rx_n = n;
			e->rx_next = 0;
			if (n)
				work += rx_held(e);
			if (e->rx_next != e->rx_n)
				break;
		}
	}

	for (uint32_t i = 0; i < e->n_tp; i++) {
		struct warp_transport *t = &e->tp[i];
		if (!t->link_up)
			continue;
		bool up = t->link_up(t->ctx);
		if (warp__unlikely(up == t->link_down))
			link_changed(e, i, up);
	}

	work += warp__wheel_advance(&e->wheel, e->now);
	if (e->tx_active)
		work += warp__tx_build(e);
	if (e->tx_queued)
		work += warp__tx_flush(e);
	if (e->n_channels)
		warp__rx_commit(e);

	if (!work)
		warp__stat(e, idle_polls, 1);
	uint64_t grown = warp__alloc_count_thread() - allocs;
	if (warp__unlikely(grown))
		warp__stat(e, allocs_after_start, grown);
	return (int)work;
}

int warp_engine_poll(warp_engine_t *e)
{
	if (warp__unlikely(!e))
		return WARP_EINVAL;
	if (warp__unlikely(e->started))
		return WARP_ESTATE;
	if (warp__unlikely(e->single_issuer) && check_thread(e))
		return WARP_ESTATE;
	return engine_poll(e);
}

/* ---- engine thread and idle strategies --------------------------------- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

struct idle_state {
	uint64_t empty;
	uint64_t sleep_ns;
};

void warp__engine_wake_slow(warp_engine_t *e)
{
	if (e->wake_fd >= 0)
		(void)!eventfd_write(e->wake_fd, 1);
}

/* Submissions an application thread committed that the engine has not read
 * (one stalled for memory waits for the network, not for a wakeup). */
static bool channels_pending(const warp_engine_t *e)
{
	for (uint32_t i = 0; i < e->n_channels; i++) {
		const struct warp_channel *c = e->channels[i];
		if (!c->stalled && warp_spsc_used(c->sub) > 0)
			return true;
	}
	return false;
}

/* Deliveries wait for the application to make room in a receiving channel:
 * a message spilled aside, or received packets held back (rx_room). */
static bool waits_for_room(const warp_engine_t *e)
{
	return e->n_spilled || e->n_cpend || e->rx_next < e->rx_n;
}

/* The application has made the room they wait for, so the next poll
 * delivers: the spilled message at the head of a channel fits now, or (no
 * spills left) every receiving channel has room for a held packet. The same
 * tests as the deliveries themselves, so a "yes" is never followed by a poll
 * that delivers nothing. */
static bool room_made(warp_engine_t *e)
{
	bool spilled = false;
	for (uint32_t i = 0; i < e->n_channels; i++) {
		struct warp_channel *c = e->channels[i];
		if (c->cpend_head >= 0 &&
		    warp_spsc_fits(c->del, (uint32_t)sizeof(struct warp_chrec_msg)))
			return true; /* a parked completion fits (they do not hold packets back) */
		if (c->spill_head < 0)
			continue;
		spilled = true;
		const struct warp_reasm *r = &e->reasm[c->spill_head];
		if (warp_spsc_fits(c->del, (uint32_t)sizeof(struct warp_chrec_msg) + r->msg_len))
			return true;
	}
	return !spilled && e->rx_next < e->rx_n && rx_room(e);
}

/* Sleep up to timeout_ns, woken at once by a packet on any transport that
 * offers a wakeup descriptor (every io_uring one: an eventfd registered on
 * its ring), by an application thread's submission, by the application
 * making room for deliveries that wait for it, or by warp_engine_stop. A
 * transport without a descriptor (dpdk) is looked at again when the time is
 * up. While received packets are held back for room, no transport is read
 * until the application makes it, so the transports are left out: their
 * unread packets would end every sleep at once. Returns whether every
 * transport could wake it (idle_waits counts those sleeps). */
static bool idle_sleep(warp_engine_t *e, uint64_t timeout_ns)
{
	struct pollfd pf[WARP_MAX_TRANSPORTS + 1];
	nfds_t n = 0;
	bool all = true;
	uint32_t n_tp = e->rx_next < e->rx_n ? 0 : e->n_tp;
	for (uint32_t i = 0; i < n_tp; i++) {
		const struct warp_driver_ops *ops = e->tp[i].ops;
		int fd = ops->wait_fd ? ops->wait_fd(e->tp[i].ctx) : -1;
		if (fd < 0) {
			all = false;
			continue;
		}
		pf[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	if (e->wake_fd >= 0)
		pf[n++] = (struct pollfd){ .fd = e->wake_fd, .events = POLLIN };
	bool room = waits_for_room(e);
	atomic_store_explicit(&e->sleeping, true, memory_order_relaxed);
	atomic_store_explicit(&e->sleeping_for_room, room, memory_order_relaxed);
	/* pairs with warp__engine_wake and warp__engine_wake_for_room */
	atomic_thread_fence(memory_order_seq_cst);
	if (channels_pending(e) || atomic_load_explicit(&e->stop, memory_order_relaxed) ||
	    (room && room_made(e))) {
		atomic_store_explicit(&e->sleeping, false, memory_order_relaxed);
		atomic_store_explicit(&e->sleeping_for_room, false, memory_order_relaxed);
		return all;
	}
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000ull),
			       .tv_nsec = (long)(timeout_ns % 1000000000ull) };
	if (ppoll(pf, n, &ts, NULL) > 0) {
		uint64_t v;
		for (nfds_t i = 0; i < n; i++)
			if (pf[i].revents & POLLIN)
				(void)!read(pf[i].fd, &v, sizeof(v)); /* empty it */
	}
	atomic_store_explicit(&e->sleeping, false, memory_order_relaxed);
	atomic_store_explicit(&e->sleeping_for_room, false, memory_order_relaxed);
	return all;
}

static void idle_step(warp_engine_t *e, const warp_idle_config_t *ic, struct idle_state *st)
{
	switch (ic->kind) {
	case WARP_IDLE_SPIN:
		cpu_relax();
		return;
	case WARP_IDLE_YIELD:
		sched_yield();
		return;
	case WARP_IDLE_BACKOFF:
		st->empty++;
		if (st->empty <= ic->spins) {
			cpu_relax();
		} else if (st->empty <= (uint64_t)ic->spins + ic->yields) {
			sched_yield();
		} else {
			if (st->sleep_ns < ic->min_sleep_ns)
				st->sleep_ns = ic->min_sleep_ns;
			/* Never past the next timer: a resend, a heartbeat or a
			 * reassembly timeout due during the sleep runs on time. */
			uint64_t timeout = st->sleep_ns;
			uint64_t due = warp__wheel_next_deadline(&e->wheel);
			if (due != UINT64_MAX) {
				uint64_t now = engine_clock(e);
				if (due <= now)
					return; /* due already: poll it */
				timeout = WARP__MIN(timeout, due - now);
			}
			if (idle_sleep(e, timeout) && e->n_tp)
				warp__stat(e, idle_waits, 1);
			st->sleep_ns *= 2;
			if (st->sleep_ns > ic->max_sleep_ns)
				st->sleep_ns = ic->max_sleep_ns;
		}
		return;
	}
}

static void *engine_thread(void *arg)
{
	warp_engine_t *e = arg;
	if (e->cfg.cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(e->cfg.cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	struct idle_state st = { 0, 0 };
	if (e->single_issuer) {
		e->bound = true; /* checked free by warp_engine_start */
		e->bound_thread = pthread_self();
	}
	/* acquire: pairs with the release store of stop in warp_engine_stop */
	while (!atomic_load_explicit(&e->stop, memory_order_acquire)) {
		if (engine_poll(e) > 0) {
			st.empty = 0;
			st.sleep_ns = 0;
		} else {
			idle_step(e, &e->cfg.idle, &st);
		}
	}
	return NULL;
}

warp__cold int warp_engine_start(warp_engine_t *e)
{
	if (!e)
		return WARP_EINVAL;
	if (e->started)
		return warp__err(WARP_ESTATE, "engine '%s': already started", e->cfg.node_id);
	if (e->single_issuer && e->bound)
		return warp__err(WARP_ESTATE,
				 "engine '%s': already polled by another thread, and a transport is "
				 "bound to it (io_uring SINGLE_ISSUER); use uring_setup = coop",
				 e->cfg.node_id);
	atomic_store_explicit(&e->stop, false, memory_order_relaxed);
	e->may_sleep = e->cfg.idle.kind == WARP_IDLE_BACKOFF;
	e->started = true;
	int rc = pthread_create(&e->thread, NULL, engine_thread, e);
	if (rc) {
		e->started = false;
		return warp__err(WARP_EDRIVER, "engine '%s': pthread_create: %s", e->cfg.node_id,
				 strerror(rc));
	}
	return 0;
}

warp__cold int warp_engine_stop(warp_engine_t *e)
{
	if (!e)
		return WARP_EINVAL;
	if (!e->started)
		return warp__err(WARP_ESTATE, "engine '%s': not started", e->cfg.node_id);
	/* release: pairs with the engine thread's acquire load of stop */
	atomic_store_explicit(&e->stop, true, memory_order_release);
	warp__engine_wake_slow(e); /* out of an idle sleep */
	pthread_join(e->thread, NULL);
	e->started = false;
	e->may_sleep = false;
	return 0;
}

int warp_engine_local_addr(const warp_engine_t *e, unsigned transport, char *buf, size_t cap)
{
	if (!e || !buf || !cap || transport >= e->n_tp)
		return WARP_EINVAL;
	const struct warp_transport *t = &e->tp[transport];
	if (!t->ops->local_addr)
		return WARP_ENOTSUP;
	return t->ops->local_addr(t->ctx, buf, cap);
}

int warp_engine_transport_error(const warp_engine_t *e, unsigned transport, char *buf,
				size_t cap)
{
	if (!e || !buf || !cap || transport >= e->n_tp)
		return WARP_EINVAL;
	const struct warp_transport *t = &e->tp[transport];
	buf[0] = '\0';
	return t->ops->last_error ? t->ops->last_error(t->ctx, buf, cap) : 0;
}

int warp_engine_stats(const warp_engine_t *e, warp_stats_t *out)
{
	if (!e || !out)
		return WARP_EINVAL;
	memset(out, 0, sizeof(*out));
#define WARP__STAT_COPY(name, help) out->name = warp__cnt_get(e->st.name);
	WARP_STATS_MAP(WARP__STAT_COPY)
#undef WARP__STAT_COPY
	for (unsigned i = 0; i < WARP_DROP__COUNT; i++)
		out->drop[i] = warp__cnt_get(e->st.drop[i]);
	for (uint32_t i = 0; i < e->n_tp; i++) {
		const struct warp_driver_counters *c = &e->tp[i].cnt;
#define WARP__DRV_SUM(name, help) out->name += warp__cnt_get(c->name);
		WARP_DRV_STATS_MAP(WARP__DRV_SUM)
#undef WARP__DRV_SUM
	}
	out->n_drop_reasons = WARP_DROP__COUNT;
	return 0;
}

const char *warp_drop_reason_name(unsigned i)
{
	static const char *const names[] = {
#define WARP__DROP_NAME(up, low, s) #low,
		WARP_DROP_MAP(WARP__DROP_NAME)
#undef WARP__DROP_NAME
	};
	return i < WARP_DROP__COUNT ? names[i] : NULL;
}
