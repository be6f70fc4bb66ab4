/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "proto/cc.h"

static void none_init(struct warp_cc *c, uint32_t mtu)
{
	c->cwnd = UINT64_MAX;
	c->mtu = mtu;
}
static void none_ack(struct warp_cc *c, uint64_t b)
{
	(void)c;
	(void)b;
}
static void none_loss(struct warp_cc *c, uint64_t s, uint64_t n)
{
	(void)c;
	(void)s;
	(void)n;
}
static uint64_t cwnd_of(const struct warp_cc *c)
{
	return c->cwnd;
}

#define AIMD_INITIAL_PKTS 32 /* generous: datacenter links, short RTTs */
#define AIMD_MIN_PKTS 4

static void aimd_init(struct warp_cc *c, uint32_t mtu)
{
	c->mtu = mtu;
	c->cwnd = (uint64_t)AIMD_INITIAL_PKTS * mtu;
	c->ssthresh = UINT64_MAX;
	c->recovery_start_ns = 0;
}

static void aimd_ack(struct warp_cc *c, uint64_t acked)
{
	if (c->cwnd < c->ssthresh)
		c->cwnd += acked; /* slow start */
	else
		c->cwnd += (uint64_t)c->mtu * acked / c->cwnd + 1; /* about one MTU per round trip */
}

static void aimd_loss(struct warp_cc *c, uint64_t sent_ns, uint64_t now_ns)
{
	if (sent_ns <= c->recovery_start_ns)
		return; /* same loss event */
	c->recovery_start_ns = now_ns;
	c->ssthresh = c->cwnd / 2;
	uint64_t floor = (uint64_t)AIMD_MIN_PKTS * c->mtu;
	c->cwnd = c->ssthresh > floor ? c->ssthresh : floor;
}

static const struct warp_cc_ops ccs[] = {
	{ "none", none_init, none_ack, none_loss, cwnd_of },
	{ "aimd", aimd_init, aimd_ack, aimd_loss, cwnd_of },
};

const struct warp_cc_ops *warp__cc_find(const char *name)
{
	for (size_t i = 0; i < sizeof(ccs) / sizeof(ccs[0]); i++)
		if (strcmp(ccs[i].name, name) == 0)
			return &ccs[i];
	return NULL;
}
