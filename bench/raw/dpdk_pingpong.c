/* SPDX-License-Identifier: Apache-2.0 */
/*
 * raw-dpdk-pingpong: the DPDK floor under warp's dpdk numbers.
 *
 * Two processes, one lcore each (client on CPU 0, server on CPU 1 when the
 * machine has two), joined by a net_memif link, ping-pong one
 * Ethernet/IPv4/UDP frame with a --size byte payload whose first 8 bytes
 * carry the round-trip number. Both busy-poll rte_eth_rx_burst (bursts of
 * 32); the server turns every frame around in place (MAC, IP and port
 * swapped; the IPv4 checksum does not change when its addresses swap) and
 * re-sends the same mbuf; the client builds each request in a fresh mbuf,
 * as an application copies its message in.
 *
 * A round trip is timed with the TSC (rte_rdtsc, rte_get_tsc_hz) from just
 * before the request's mbuf is allocated to the rx_burst that returns the
 * reply, recorded in a warp_hist_t and printed with the other raw tools'
 * table (or JSON object). A frame with an empty UDP payload stops the
 * server; so does 5 s without a frame or the client disconnecting.
 *
 * Usage: raw-dpdk-pingpong [--size BYTES] [--count N] [--warmup N] [--json]
 *                          [--role server|client --socket PATH]
 *                          [--client-cpu N] [--server-cpu N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_version.h>

#include "dpdk_common.h"

#define RESEND_MS 100      /* client: first request resent this often */

static const char usage_text[] =
	"usage: raw-dpdk-pingpong [options]\n"
	"  --size BYTES      UDP payload size (default 64, 1..1472: one frame per\n"
	"                    1500-byte IPv4 packet)\n"
	"  --count N         measured round trips (default 200000)\n"
	"  --warmup N        round trips before measuring (default 20000; keep it well\n"
	"                    above 1024: the first pass over memif's 1024-slot rings\n"
	"                    page-faults the shared buffers, ~40 us a round trip)\n"
	"  --json            print one JSON object instead of the table\n"
	"  --role R          server or client: run one half only (needs --socket);\n"
	"                    default: both halves, the server forked and exec'd\n"
	"  --socket PATH     memif socket file (default /tmp/raw-dpdk-pingpong-PID.sock;\n"
	"                    the server creates it and removes it on exit)\n"
	"  --client-cpu N    the client's lcore/CPU (default 0 on 2+ CPUs; -1: unpinned)\n"
	"  --server-cpu N    the server's lcore/CPU (default 1 on 2+ CPUs; -1: unpinned)\n"
	"  --log-level L     the EAL's --log-level, e.g. info or pmd.net.memif:debug\n"
	"                    (default: warnings, and errors only from memif)\n"
	"Needs free hugepages (HugePages_Free in /proc/meminfo).\n";

static int pp_server(struct rdp_ctx *c)
{
	const char *tool = c->o->raw.tool;
	struct rte_mbuf *pkts[RDP_BURST];
	struct rdp_watch w;
	rdp_watch_init(&w, c);
	while (!rdp_stop) {
		uint16_t n = rte_eth_rx_burst(c->port, 0, pkts, RDP_BURST);
		if (n == 0) {
			if (rdp_watch_idle(&w, c, tool))
				return 1;
			continue;
		}
		w.seen = 1;
		uint16_t k = 0;
		int stop = 0;
		for (uint16_t i = 0; i < n; i++) {
			size_t len = 0;
			const uint8_t *p = rdp_udp_payload(pkts[i], &len);
			if (p == NULL || len == 0) {
				stop |= p != NULL; /* an empty payload: the stop frame */
				rte_pktmbuf_free(pkts[i]);
				continue;
			}
			rdp_swap_in_place(pkts[i]);
			pkts[k++] = pkts[i];
		}
		if (k && rdp_tx_all(c, pkts, k) != k)
			return 1;
		if (stop)
			return 0; /* closing now is safe: the client stopped polling */
	}
	return 0;
}

/* Send request seq in a new mbuf. 0 or -1 (message printed). */
static inline int send_request(struct rdp_ctx *c, uint64_t seq, size_t len)
{
	struct rte_mbuf *m = rdp_frame_new(c->pool, c->frame, len);
	if (unlikely(m == NULL)) {
		fprintf(stderr, "%s: client: mbuf pool empty\n", c->o->raw.tool);
		return -1;
	}
	if (c->o->raw.size >= 8)
		memcpy(rte_pktmbuf_mtod_offset(m, uint8_t *, RDP_HDR_LEN), &seq, 8);
	return rdp_tx_all(c, &m, 1) == 1 ? 0 : -1;
}

static int pp_client(struct rdp_ctx *c)
{
	const struct raw_opts *o = &c->o->raw;
	const char *tool = o->tool;
	struct raw_result r = { 0 };
	if (warp_hist_create(&r.h)) {
		fprintf(stderr, "%s: out of memory\n", tool);
		return 1;
	}
	double tsc_ns = rdp_tsc_overhead_ns(c);
	const uint64_t timeout = RAW_TIMEOUT_NS / 1000000ull * c->hz / 1000ull;
	const uint64_t resend = RESEND_MS * c->hz / 1000ull;
	const size_t len = RDP_HDR_LEN + o->size;
	const uint64_t total = o->warmup + o->count;
	struct rte_mbuf *pkts[RDP_BURST];
	int err = 0;
	for (uint64_t i = 0; i < total && !err && !rdp_stop; i++) {
		uint64_t t0 = rte_rdtsc(), t_resend = t0, t_got = 0;
		if (send_request(c, i, len)) {
			err = 1;
			break;
		}
		for (unsigned spin = 1; !t_got && !err; spin++) {
			uint16_t n = rte_eth_rx_burst(c->port, 0, pkts, RDP_BURST);
			if (n) {
				uint64_t t = rte_rdtsc();
				for (uint16_t j = 0; j < n; j++) {
					size_t plen;
					const uint8_t *p = rdp_udp_payload(pkts[j], &plen);
					if (p == NULL)
						continue; /* not ours */
					if (plen != o->size) {
						fprintf(stderr, "%s: reply of %zu bytes, expected "
								"%zu\n",
							tool, plen, o->size);
						err = 1;
					} else if (o->size < 8 || memcmp(p, &i, 8) == 0) {
						t_got = t;
					} /* else a late copy of a resent first request */
				}
				rte_pktmbuf_free_bulk(pkts, n);
				continue;
			}
			if ((spin & RDP_IDLE_CHECK) != 0)
				continue;
			uint64_t t = rte_rdtsc();
			if (rdp_stop) {
				err = 1;
			} else if (!rdp_link_up(c)) {
				fprintf(stderr, "%s: the memif link went down at round trip %llu\n",
					tool, (unsigned long long)i);
				(void)rdp_peer_ok(c); /* says why when the server was forked */
				err = 1;
			} else if (t - t0 > timeout) {
				fprintf(stderr, "%s: no reply to round trip %llu within 2 s\n",
					tool, (unsigned long long)i);
				(void)rdp_peer_ok(c);
				err = 1;
			} else if (i == 0 && t - t_resend > resend) {
				/* a separately started server may not poll yet; memif
				 * keeps what it accepted, so this is belt and braces */
				t_resend = t;
				err = send_request(c, i, len) != 0;
			}
		}
		if (!t_got)
			break;
		uint64_t got_ns = rdp_ticks_to_ns(c, t_got);
		if (i == o->warmup)
			r.t_first = got_ns;
		if (i >= o->warmup)
			warp_hist_record(r.h, rdp_ticks_to_ns(c, t_got - t0));
		r.t_last = got_ns;
	}
	if (!err && !rdp_stop) {
		rdp_send_stop(c);
		/* the server closes when it reads the stop; wait for that
		 * before this side closes, so neither closes under a burst */
		(void)rdp_wait_link_down(c, 2000);
		char transport[96], clock[96], settings[160];
		snprintf(transport, sizeof(transport), "net_memif (%s, copy mode)", rte_version());
		snprintf(clock, sizeof(clock), "TSC (rte_rdtsc, rte_get_tsc_hz %.3f GHz)",
			 (double)c->hz / 1e9);
		snprintf(settings, sizeof(settings),
			 "rx/tx burst %d, one lcore per side, memif 1024 x 2048 B rings, "
			 "EAL --in-memory",
			 RDP_BURST);
		const struct raw_report rep = {
			.transport = transport,
			.mode = o->role == RAW_ROLE_BOTH
					? "two processes (server forked and exec'd)"
					: "two processes (started separately)",
			.clock = clock,
			.clock_json = "tsc",
			.clock_ns = tsc_ns,
			.settings = settings,
			.json_extra = "\"io\":\"dpdk\",\"pmd\":\"net_memif\",\"burst\":32,",
		};
		raw_print_result(o, &r, &rep);
	}
	warp_hist_destroy(r.h);
	return err || rdp_stop;
}

int main(int argc, char **argv)
{
	struct rdp_opts o;
	memset(&o, 0, sizeof(o));
	o.raw.tool = "raw-dpdk-pingpong";
	int rc = rdp_parse(argc, argv, &o, RDP_OPT_COUNT, usage_text);
	if (rc)
		return rc == 1 ? 0 : 2;
	return rdp_main(&o, pp_server, pp_client);
}
