/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loop driver: in-process packet exchange with a seeded fault model.
 * A net holds endpoints (one per engine transport, keyed by its listen
 * string) and a directed link between every pair. Each endpoint has a queue
 * of packets ordered by delivery time; faults are applied at send time.
 * One mutex per net, taken once per burst: the loop driver is for tests and
 * in-process benchmarks, not for the production fast path.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "warp/config.h"
#include "warp/error.h"
#include "warp/loop.h"

#define LOOP_MAX_EP 64
#define LOOP_DEFAULT_DEPTH 8192

struct loop_slot {
	uint64_t deliver_ns;
	uint32_t len;
	uint16_t src;
};

struct loop_ep {
	char key[WARP_ADDR_STR_MAX];
	bool bound;
	uint32_t mtu;
	struct loop_slot *slots;
	uint8_t *data; /* depth x mtu */
	uint32_t *free;
	uint32_t nfree;
	uint32_t *ord; /* slot indices by delivery time: ord[head .. head+count) */
	uint32_t head, count;
	/* Packets queued or held back for this endpoint: lets rx_burst skip
	 * the lock when there is nothing (written under the lock). */
	_Atomic uint32_t pending;
	uint64_t refused_in; /* the tx_burst that found it full */
};

struct loop_link {
	bool has_fault;
	bool partitioned;
	warp_loop_fault_t fault;
	uint64_t rng;
	int32_t held; /* slot held back for reordering, -1 = none */
	uint32_t held_countdown;
};

struct warp_loop_net {
	pthread_mutex_t lock;
	uint64_t seed;
	uint32_t depth;
	struct loop_ep ep[LOOP_MAX_EP];
	uint32_t n_ep;
	warp_loop_fault_t def_fault;
	struct loop_link *links; /* [src * LOOP_MAX_EP + dst] */
	warp_loop_filter_fn filter;
	void *filter_arg;
	warp_loop_stats_t st;
	uint64_t bursts; /* tx_burst calls on the net */
};

struct loop_port {
	warp_loop_net_t *net;
	uint16_t ep;
	struct warp__pktpool *pool;
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rnd01(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static struct loop_link *link_of(warp_loop_net_t *n, uint32_t src, uint32_t dst)
{
	return &n->links[src * LOOP_MAX_EP + dst];
}

int warp_loop_net_create(uint64_t seed, uint32_t queue_depth, warp_loop_net_t **out)
{
	if (!out)
		return WARP_EINVAL;
	warp_loop_net_t *n = warp__calloc(1, sizeof(*n));
	if (!n)
		return WARP_ENOMEM;
	n->links = warp__calloc((size_t)LOOP_MAX_EP * LOOP_MAX_EP, sizeof(*n->links));
	if (!n->links) {
		warp__free(n);
		return WARP_ENOMEM;
	}
	pthread_mutex_init(&n->lock, NULL);
	n->seed = seed;
	n->depth = queue_depth ? queue_depth : LOOP_DEFAULT_DEPTH;
	for (uint32_t s = 0; s < LOOP_MAX_EP; s++)
		for (uint32_t d = 0; d < LOOP_MAX_EP; d++) {
			struct loop_link *l = link_of(n, s, d);
			l->held = -1;
			l->rng = seed ^ ((uint64_t)(s * LOOP_MAX_EP + d + 1) * 0xd1342543de82ef95ull);
		}
	*out = n;
	return 0;
}

static void ep_free(struct loop_ep *ep)
{
	warp__free(ep->slots);
	warp__free(ep->data);
	warp__free(ep->free);
	warp__free(ep->ord);
	ep->slots = NULL;
	ep->data = NULL;
	ep->free = NULL;
	ep->ord = NULL;
	ep->bound = false;
}

void warp_loop_net_destroy(warp_loop_net_t *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; i < n->n_ep; i++)
		ep_free(&n->ep[i]);
	pthread_mutex_destroy(&n->lock);
	warp__free(n->links);
	warp__free(n);
}

/* With the lock held: index of the endpoint named key, created unbound if new. */
static int ep_lookup(warp_loop_net_t *n, const char *key)
{
	for (uint32_t i = 0; i < n->n_ep; i++)
		if (strcmp(n->ep[i].key, key) == 0)
			return (int)i;
	if (n->n_ep >= LOOP_MAX_EP || strlen(key) >= WARP_ADDR_STR_MAX)
		return -1;
	struct loop_ep *ep = &n->ep[n->n_ep];
	memset(ep, 0, sizeof(*ep));
	strcpy(ep->key, key);
	return (int)n->n_ep++;
}

static int check_fault(const warp_loop_fault_t *f)
{
	if (!f)
		return WARP_EINVAL;
	double r[] = { f->loss, f->duplicate, f->reorder, f->corrupt };
	for (size_t i = 0; i < 4; i++)
		if (!(r[i] >= 0.0 && r[i] <= 1.0))
			return warp__err(WARP_EINVAL, "loop fault: rate %g outside 0..1", r[i]);
	if (f->reorder > 0 && f->reorder_window == 0)
		return warp__err(WARP_EINVAL, "loop fault: reorder needs reorder_window >= 1");
	return 0;
}

int warp_loop_set_fault(warp_loop_net_t *n, const char *from, const char *to,
			const warp_loop_fault_t *f)
{
	if (!n)
		return WARP_EINVAL;
	int rc = check_fault(f);
	if (rc)
		return rc;
	pthread_mutex_lock(&n->lock);
	if (!from) {
		n->def_fault = *f;
	} else {
		int s = ep_lookup(n, from), d = to ? ep_lookup(n, to) : -1;
		if (s < 0 || d < 0) {
			pthread_mutex_unlock(&n->lock);
			return warp__err(WARP_EINVAL, "loop fault: bad or too many endpoints");
		}
		struct loop_link *l = link_of(n, (uint32_t)s, (uint32_t)d);
		l->fault = *f;
		l->has_fault = true;
	}
	pthread_mutex_unlock(&n->lock);
	return 0;
}

int warp_loop_partition(warp_loop_net_t *n, const char *a, const char *b, bool on)
{
	if (!n || !a || !b)
		return WARP_EINVAL;
	pthread_mutex_lock(&n->lock);
	int x = ep_lookup(n, a), y = ep_lookup(n, b);
	if (x >= 0 && y >= 0) {
		link_of(n, (uint32_t)x, (uint32_t)y)->partitioned = on;
		link_of(n, (uint32_t)y, (uint32_t)x)->partitioned = on;
	}
	pthread_mutex_unlock(&n->lock);
	return (x >= 0 && y >= 0) ? 0 : WARP_EINVAL;
}

void warp_loop_set_filter(warp_loop_net_t *n, warp_loop_filter_fn fn, void *arg)
{
	pthread_mutex_lock(&n->lock);
	n->filter = fn;
	n->filter_arg = arg;
	pthread_mutex_unlock(&n->lock);
}

void warp_loop_stats(warp_loop_net_t *n, warp_loop_stats_t *out)
{
	pthread_mutex_lock(&n->lock);
	*out = n->st;
	pthread_mutex_unlock(&n->lock);
}

/* ---- queue of one endpoint (lock held) --------------------------------- */

static int32_t slot_take(struct loop_ep *ep, const uint8_t *data, uint32_t len, uint16_t src)
{
	if (!ep->nfree)
		return -1;
	uint32_t i = ep->free[--ep->nfree];
	/* relaxed: a hint; the lock orders the data (pairs with rx_burst's load) */
	atomic_fetch_add_explicit(&ep->pending, 1, memory_order_relaxed);
	memcpy(ep->data + (size_t)i * ep->mtu, data, len);
	ep->slots[i].len = len;
	ep->slots[i].src = src;
	return (int32_t)i;
}

static void ord_insert(warp_loop_net_t *n, struct loop_ep *ep, uint32_t slot, uint64_t when)
{
	ep->slots[slot].deliver_ns = when;
	if (ep->head + ep->count >= 2 * n->depth) { /* compact */
		memmove(ep->ord, ep->ord + ep->head, ep->count * sizeof(*ep->ord));
		ep->head = 0;
	}
	uint32_t pos = ep->head + ep->count;
	while (pos > ep->head && ep->slots[ep->ord[pos - 1]].deliver_ns > when) {
		ep->ord[pos] = ep->ord[pos - 1];
		pos--;
	}
	ep->ord[pos] = slot;
	ep->count++;
}

static void release_held(warp_loop_net_t *n, struct loop_link *l, struct loop_ep *dst,
			 uint64_t now)
{
	if (l->held < 0)
		return;
	ord_insert(n, dst, (uint32_t)l->held, now);
	l->held = -1;
}

/* Put one packet on the link src -> dst, applying its faults. */
static void link_send(warp_loop_net_t *n, uint16_t src, uint16_t dst, const uint8_t *data,
		      uint32_t len, uint64_t now)
{
	struct loop_ep *de = &n->ep[dst];
	struct loop_link *l = link_of(n, src, dst);
	const warp_loop_fault_t *f = l->has_fault ? &l->fault : &n->def_fault;
	n->st.sent++;
	if (!de->bound) {
		n->st.no_endpoint++;
		return;
	}
	if (l->partitioned) {
		n->st.partitioned++;
		return;
	}
	if (n->filter && !n->filter(n->filter_arg, n->ep[src].key, de->key, data, len)) {
		n->st.filtered++;
		return;
	}
	if (f->loss > 0 && rnd01(&l->rng) < f->loss) {
		n->st.lost++;
		return;
	}
	if (len > de->mtu) { /* the receiving NIC would not take it */
		n->st.oversize++;
		return;
	}
	unsigned copies = 1;
	if (f->duplicate > 0 && rnd01(&l->rng) < f->duplicate) {
		copies = 2;
		n->st.duplicated++;
	}
	for (unsigned c = 0; c < copies; c++) {
		int32_t s = slot_take(de, data, len, src);
		if (s < 0) {
			n->st.queue_full++;
			continue;
		}
		if (f->corrupt > 0 && rnd01(&l->rng) < f->corrupt && len) {
			uint64_t r = splitmix64(&l->rng);
			de->data[(size_t)s * de->mtu + (r % len)] ^= (uint8_t)(1u << ((r >> 32) & 7));
			n->st.corrupted++;
		}
		uint64_t when = now + f->delay_ns;
		if (f->jitter_ns)
			when += splitmix64(&l->rng) % (f->jitter_ns + 1);
		if (l->held < 0 && f->reorder > 0 && rnd01(&l->rng) < f->reorder) {
			l->held = s;
			l->held_countdown = 1 + (uint32_t)(splitmix64(&l->rng) % f->reorder_window);
			n->st.reordered++;
			continue;
		}
		ord_insert(n, de, (uint32_t)s, when);
		if (l->held >= 0 && --l->held_countdown == 0)
			release_held(n, l, de, when);
	}
}

/* ---- driver ops ------------------------------------------------------------ */

static int loop_open(const struct warp_driver_open_args *a, void **ctx)
{
	warp_loop_net_t *n = a->driver_arg;
	if (!n)
		return warp__err(WARP_EDRIVER,
				 "loop driver needs a warp_loop_net_t as driver_arg");
	if (!a->listen || !*a->listen)
		return warp__err(WARP_EDRIVER, "loop driver needs a listen key");
	struct loop_port *p = warp__calloc(1, sizeof(*p));
	if (!p)
		return WARP_ENOMEM;
	pthread_mutex_lock(&n->lock);
	int i = ep_lookup(n, a->listen);
	int rc = 0;
	if (i < 0) {
		rc = warp__err(WARP_EDRIVER, "loop: too many endpoints (max %d)", LOOP_MAX_EP);
	} else if (n->ep[i].bound) {
		rc = warp__err(WARP_EDRIVER, "loop: listen key '%s' is in use", a->listen);
	} else {
		struct loop_ep *ep = &n->ep[i];
		ep->mtu = a->mtu;
		ep->slots = warp__calloc(n->depth, sizeof(*ep->slots));
		ep->data = warp__malloc((size_t)n->depth * a->mtu);
		ep->free = warp__calloc(n->depth, sizeof(*ep->free));
		ep->ord = warp__calloc(2 * (size_t)n->depth, sizeof(*ep->ord));
		if (!ep->slots || !ep->data || !ep->free || !ep->ord) {
			ep_free(ep);
			rc = WARP_ENOMEM;
		} else {
			for (uint32_t k = 0; k < n->depth; k++)
				ep->free[k] = n->depth - 1 - k;
			ep->nfree = n->depth;
			ep->head = ep->count = 0;
			ep->bound = true;
		}
	}
	pthread_mutex_unlock(&n->lock);
	if (rc) {
		warp__free(p);
		return rc;
	}
	p->net = n;
	p->ep = (uint16_t)i;
	p->pool = a->pool;
	*ctx = p;
	return 0;
}

static void loop_close(void *ctx)
{
	struct loop_port *p = ctx;
	warp_loop_net_t *n = p->net;
	pthread_mutex_lock(&n->lock);
	for (uint32_t s = 0; s < n->n_ep; s++) /* held packets live in our slots */
		link_of(n, s, p->ep)->held = -1;
	atomic_store_explicit(&n->ep[p->ep].pending, 0, memory_order_relaxed);
	ep_free(&n->ep[p->ep]);
	pthread_mutex_unlock(&n->lock);
	warp__free(p);
}

static int loop_parse_addr(void *ctx, const char *s, warp__addr_t *out)
{
	struct loop_port *p = ctx;
	if (!s || !*s)
		return warp__err(WARP_EINVALID_NODE, "loop address: empty");
	pthread_mutex_lock(&p->net->lock);
	int i = ep_lookup(p->net, s);
	pthread_mutex_unlock(&p->net->lock);
	if (i < 0)
		return warp__err(WARP_EINVALID_NODE, "loop address '%s': too many endpoints", s);
	memset(out, 0, sizeof(*out));
	out->len = 2;
	out->b[0] = (uint8_t)(i >> 8);
	out->b[1] = (uint8_t)i;
	return 0;
}

/* A full receive queue pushes back like a full NIC TX ring, but for its
 * destination only: that packet and the sender's later ones to the same
 * endpoint (they keep their order) stay with the engine, in pkts[k..n),
 * and the engine retries them next poll; packets to others still go. */
static uint16_t loop_tx_burst(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now)
{
	struct loop_port *p = ctx;
	warp_loop_net_t *net = p->net;
	uint16_t nref = 0; /* refused so far, kept in pkts[0..nref) */
	pthread_mutex_lock(&net->lock);
	uint64_t burst = ++net->bursts;
	for (uint16_t i = 0; i < n; i++) {
		struct warp_pkt *pkt = pkts[i];
		uint16_t dst = (uint16_t)(pkt->addr.b[0] << 8 | pkt->addr.b[1]);
		if (pkt->addr.len != 2 || dst >= net->n_ep) {
			net->st.no_endpoint++;
			warp__pkt_put(p->pool, pkt);
			continue;
		}
		struct loop_ep *d = &net->ep[dst];
		/* room for two: a duplicated packet needs a second slot */
		if (d->refused_in == burst || (d->bound && d->nfree < 2)) {
			d->refused_in = burst;
			net->st.backpressure++;
			pkts[nref++] = pkt;
			continue;
		}
		link_send(net, p->ep, dst, pkt->data, pkt->len, now);
		warp__pkt_put(p->pool, pkt);
	}
	pthread_mutex_unlock(&net->lock);
	memmove(pkts + (n - nref), pkts, nref * sizeof(*pkts));
	return (uint16_t)(n - nref);
}

static uint16_t loop_rx_burst(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now)
{
	struct loop_port *p = ctx;
	warp_loop_net_t *net = p->net;
	struct loop_ep *ep = &net->ep[p->ep];
	uint16_t k = 0;
	/* relaxed: a stale zero only delays the packet to the next poll */
	if (atomic_load_explicit(&ep->pending, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&net->lock);
	while (k < n && ep->count && ep->slots[ep->ord[ep->head]].deliver_ns <= now) {
		struct warp_pkt *pkt = warp__pkt_get(p->pool);
		if (!pkt)
			break;
		uint32_t s = ep->ord[ep->head++];
		ep->count--;
		pkt->len = ep->slots[s].len;
		memcpy(pkt->data, ep->data + (size_t)s * ep->mtu, pkt->len);
		memset(&pkt->addr, 0, sizeof(pkt->addr));
		pkt->addr.len = 2;
		pkt->addr.b[0] = (uint8_t)(ep->slots[s].src >> 8);
		pkt->addr.b[1] = (uint8_t)ep->slots[s].src;
		pkt->rx_ns = now;
		ep->free[ep->nfree++] = s;
		atomic_fetch_sub_explicit(&ep->pending, 1, memory_order_relaxed);
		pkts[k++] = pkt;
		net->st.delivered++;
	}
	if (ep->count == 0) {
		ep->head = 0;
		/* Nothing else is coming: let held-back packets through. */
		for (uint32_t s = 0; s < net->n_ep; s++)
			release_held(net, link_of(net, s, p->ep), ep, now);
	}
	pthread_mutex_unlock(&net->lock);
	return k;
}

static int loop_local_addr(void *ctx, char *buf, size_t cap)
{
	struct loop_port *p = ctx;
	snprintf(buf, cap, "%s", p->net->ep[p->ep].key);
	return 0;
}

const struct warp_driver_ops warp__loop_driver = {
	.name = "loop",
	.caps = WARP_DRV_DATAGRAM,
	.open = loop_open,
	.close = loop_close,
	.parse_addr = loop_parse_addr,
	.rx_burst = loop_rx_burst,
	.tx_burst = loop_tx_burst,
	.local_addr = loop_local_addr,
};
