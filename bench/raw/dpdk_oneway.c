/* SPDX-License-Identifier: Apache-2.0 */
/*
 * raw-dpdk-oneway: the DPDK throughput floor under warp's dpdk one-way
 * numbers.
 *
 * Same two-process net_memif set-up as raw-dpdk-pingpong. The client (the
 * sender) builds Ethernet/IPv4/UDP frames with a --size byte payload
 * (default 64) in fresh mbufs and hands them to rte_eth_tx_burst in bursts
 * of 32 for --seconds, as fast as the ring takes them; a frame the ring
 * does not take stays queued for the next burst, so memif, which never
 * drops what it accepted, loses nothing. The server (the receiver) counts
 * them with rte_eth_rx_burst and, on the stop frame, answers with what it
 * counted and over how long (TSC, first to last frame), which the client
 * prints: frames/s at the receiver (Mpps) and Gbit/s of UDP payload, plus
 * the loss. --json prints one object with the keys of warp-bench
 * --throughput --json (msgs_per_s, sent_msgs_per_s, gbit_per_s, lost).
 *
 * Usage: raw-dpdk-oneway [--size BYTES] [--seconds S] [--json]
 *                        [--role server|client --socket PATH]
 *                        [--client-cpu N] [--server-cpu N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_version.h>

#include "dpdk_common.h"

#define RESULT_MAGIC 0x7761727072736c74ull /* "warprslt" */

/* The receiver's answer to the stop frame (UDP payload). */
struct ow_result {
	uint64_t magic;
	uint64_t received; /* data frames */
	uint64_t bytes;    /* their UDP payload bytes */
	uint64_t ns;       /* first to last data frame */
};

static const char usage_text[] =
	"usage: raw-dpdk-oneway [options]\n"
	"  --size BYTES      UDP payload size (default 64, 1..1472: one frame per\n"
	"                    1500-byte IPv4 packet)\n"
	"  --seconds S       how long the client sends (default 2)\n"
	"  --json            print one JSON object instead of the text\n"
	"  --role R          server (receiver) or client (sender): run one half only\n"
	"                    (needs --socket); default: both, the server forked and exec'd\n"
	"  --socket PATH     memif socket file (default /tmp/raw-dpdk-oneway-PID.sock;\n"
	"                    the server creates it and removes it on exit)\n"
	"  --client-cpu N    the sender's lcore/CPU (default 0 on 2+ CPUs; -1: unpinned)\n"
	"  --server-cpu N    the receiver's lcore/CPU (default 1 on 2+ CPUs; -1: unpinned)\n"
	"  --log-level L     the EAL's --log-level, e.g. info or pmd.net.memif:debug\n"
	"                    (default: warnings, and errors only from memif)\n"
	"Needs free hugepages (HugePages_Free in /proc/meminfo).\n";

/* Receiver: answer the stop frame m with res, re-using its mbuf. */
static int send_result(struct rdp_ctx *c, struct rte_mbuf *m, const struct ow_result *res)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, sizeof(*res));
	if (p == NULL) {
		rte_pktmbuf_free(m);
		fprintf(stderr, "%s: server: no room for the result\n", c->o->raw.tool);
		return -1;
	}
	memcpy(p, res, sizeof(*res));
	rdp_swap_in_place(m);
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + sizeof(*udp) + sizeof(*res)));
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + sizeof(*res)));
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return rdp_tx_all(c, &m, 1) == 1 ? 0 : -1;
}

static int ow_server(struct rdp_ctx *c)
{
	const char *tool = c->o->raw.tool;
	const uint32_t data_len = (uint32_t)(RDP_HDR_LEN + c->o->raw.size);
	struct rte_mbuf *pkts[RDP_BURST];
	struct rte_mbuf *stop = NULL;
	struct rdp_watch w;
	rdp_watch_init(&w, c);
	uint64_t received = 0, first = 0, last = 0;
	while (!rdp_stop && stop == NULL) {
		uint16_t n = rte_eth_rx_burst(c->port, 0, pkts, RDP_BURST);
		if (n == 0) {
			if (rdp_watch_idle(&w, c, tool))
				return 1;
			continue;
		}
		w.seen = 1;
		uint64_t t = rte_rdtsc();
		uint64_t got = 0;
		for (uint16_t i = 0; i < n; i++) {
			/* the length alone tells a data frame: this loop is the
			 * receiver's whole per-frame cost, as in a counting app */
			if (likely(pkts[i]->pkt_len == data_len)) {
				got++;
				continue;
			}
			size_t len = 1;
			if (rdp_udp_payload(pkts[i], &len) != NULL && len == 0 && stop == NULL) {
				stop = pkts[i];
				pkts[i] = NULL;
			}
		}
		if (got) {
			if (received == 0)
				first = t;
			last = t;
			received += got;
		}
		if (likely(stop == NULL)) {
			rte_pktmbuf_free_bulk(pkts, n);
		} else { /* the stop frame is kept for the answer */
			for (uint16_t i = 0; i < n; i++)
				if (pkts[i])
					rte_pktmbuf_free(pkts[i]);
		}
	}
	if (stop == NULL)
		return 0; /* interrupted */
	const struct ow_result res = {
		.magic = RESULT_MAGIC,
		.received = received,
		.bytes = received * c->o->raw.size,
		.ns = rdp_ticks_to_ns(c, last - first),
	};
	if (send_result(c, stop, &res))
		return 1;
	/* the client closes once it has the result; do not close first while
	 * it may still be polling (memif would unmap its rings under it) */
	if (!rdp_wait_link_down(c, 3000)) {
		fprintf(stderr, "%s: server: the client did not close after the result\n", tool);
		return 1;
	}
	return 0;
}

/* Client: send the stop frame, then wait up to 3 s for the result. */
static int get_result(struct rdp_ctx *c, struct ow_result *res)
{
	const char *tool = c->o->raw.tool;
	struct rte_mbuf *pkts[RDP_BURST];
	rdp_send_stop(c);
	uint64_t t0 = rte_rdtsc(), limit = 3 * c->hz;
	unsigned spin = 0;
	int got = 0;
	while (!got && !rdp_stop) {
		uint16_t n = rte_eth_rx_burst(c->port, 0, pkts, RDP_BURST);
		for (uint16_t i = 0; i < n; i++) {
			size_t len;
			const uint8_t *p = rdp_udp_payload(pkts[i], &len);
			if (p && len == sizeof(*res)) {
				memcpy(res, p, sizeof(*res));
				got = res->magic == RESULT_MAGIC;
			}
		}
		if (n)
			rte_pktmbuf_free_bulk(pkts, n);
		if ((++spin & RDP_IDLE_CHECK) == 0 && rte_rdtsc() - t0 > limit) {
			fprintf(stderr, "%s: no result from the receiver within 3 s\n", tool);
			(void)rdp_peer_ok(c);
			return -1;
		}
	}
	return got ? 0 : -1;
}

static int ow_client(struct rdp_ctx *c)
{
	const struct raw_opts *o = &c->o->raw;
	const char *tool = o->tool;
	const uint16_t len = (uint16_t)(RDP_HDR_LEN + o->size);
	const uint64_t stall = RAW_TIMEOUT_NS / 1000000ull * c->hz / 1000ull;
	struct rte_mbuf *q[RDP_BURST];
	uint16_t nq = 0;
	unsigned full = 0; /* bursts the ring refused */
	uint64_t sent = 0, seq = 0;
	uint64_t t_start = rte_rdtsc(), t_end = t_start, progress = t_start;
	const uint64_t deadline = t_start + c->o->seconds * c->hz;
	int err = 0;
	while (!rdp_stop) {
		/* top the burst up with new frames; unsent ones stay in front */
		uint16_t want = RDP_BURST - nq;
		if (want && rte_pktmbuf_alloc_bulk(c->pool, q + nq, want) == 0) {
			for (uint16_t i = nq; i < RDP_BURST; i++, seq++) {
				uint8_t *d = rte_pktmbuf_mtod(q[i], uint8_t *);
				memcpy(d, c->frame, len);
				if (o->size >= 8)
					memcpy(d + RDP_HDR_LEN, &seq, 8);
				q[i]->data_len = len;
				q[i]->pkt_len = len;
			}
			nq = RDP_BURST;
		}
		uint16_t k = rte_eth_tx_burst(c->port, 0, q, nq);
		if (k && k < nq)
			memmove(q, q + k, (size_t)(nq - k) * sizeof(q[0]));
		nq -= k;
		sent += k;
		t_end = rte_rdtsc();
		if (k) {
			progress = t_end;
		} else if (t_end - progress > stall) {
			fprintf(stderr, "%s: the receiver took nothing for 2 s\n", tool);
			(void)rdp_peer_ok(c);
			err = 1;
			break;
		} else if ((++full & RDP_IDLE_CHECK) == 0 && !rdp_link_up(c)) {
			fprintf(stderr, "%s: the memif link went down\n", tool);
			(void)rdp_peer_ok(c); /* says why when the server was forked */
			err = 1;
			break;
		}
		if (t_end >= deadline)
			break;
	}
	if (nq)
		rte_pktmbuf_free_bulk(q, nq);

	if (err || rdp_stop)
		return 1;
	struct ow_result res;
	if (get_result(c, &res))
		return 1;

	double secs = (double)rdp_ticks_to_ns(c, t_end - t_start) / 1e9;
	double rx_secs = (double)res.ns / 1e9;
	double tx_rate = secs > 0 ? (double)sent / secs : 0;
	double rx_rate = rx_secs > 0 ? (double)res.received / rx_secs : 0;
	double gbit = rx_secs > 0 ? (double)res.bytes * 8 / rx_secs / 1e9 : 0;
	uint64_t lost = sent > res.received ? sent - res.received : 0;
	if (o->json) {
		printf("{\"tool\":\"%s\",\"mode\":\"throughput\",\"io\":\"dpdk\","
		       "\"pmd\":\"net_memif\",\"size\":%zu,\"burst\":%d,\"seconds\":%llu,"
		       "\"count\":%llu,\"received\":%llu,"
		       "\"sent_msgs_per_s\":%.0f,\"msgs_per_s\":%.0f,\"mpps\":%.3f,"
		       "\"gbit_per_s\":%.3f,\"lost\":%llu,\"clock\":\"tsc\",\"cpus\":[%d,%d]}\n",
		       tool, o->size, RDP_BURST, (unsigned long long)c->o->seconds,
		       (unsigned long long)sent, (unsigned long long)res.received, tx_rate, rx_rate,
		       rx_rate / 1e6, gbit, (unsigned long long)lost, o->client_cpu, o->server_cpu);
		return 0;
	}
	printf("%s: one-way throughput over net_memif (%s, copy mode), %s, %zu-byte payloads, "
	       "bursts of %d\n",
	       tool, rte_version(),
	       o->role == RAW_ROLE_BOTH ? "two processes (server forked and exec'd)"
					: "two processes (started separately)",
	       o->size, RDP_BURST);
	printf("sent %llu frames in %.3f s (%.2f Mpps)\n", (unsigned long long)sent, secs,
	       tx_rate / 1e6);
	printf("received %llu: %.2f Mpps, %.3f Gbit/s of payload, lost %llu\n",
	       (unsigned long long)res.received, rx_rate / 1e6, gbit, (unsigned long long)lost);
	printf("\nsettings: one lcore per side, memif 1024 x 2048 B rings, EAL --in-memory, "
	       "client cpu %d, server cpu %d\n",
	       o->client_cpu, o->server_cpu);
	printf("clock: TSC (rte_rdtsc, rte_get_tsc_hz %.3f GHz); receiver rate from its first "
	       "to its last frame\n",
	       (double)c->hz / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	struct rdp_opts o;
	memset(&o, 0, sizeof(o));
	o.raw.tool = "raw-dpdk-oneway";
	int rc = rdp_parse(argc, argv, &o, RDP_OPT_SECONDS, usage_text);
	if (rc)
		return rc == 1 ? 0 : 2;
	return rdp_main(&o, ow_server, ow_client);
}
