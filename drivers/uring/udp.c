/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uring-udp: warp packets as UDP datagrams through io_uring.
 *
 * Receive: one multishot RECVMSG on the socket, filling buffers from a
 * provided buffer ring; every completion is one datagram, copied into an
 * engine packet buffer and its ring buffer handed straight back. With UDP
 * generic receive offload (UDP_GRO, on unless WARP_TRANSPORT_NO_UDP_GRO)
 * one completion may carry several datagrams of one sender and one size
 * (the UDP_GRO cmsg gives the size; the last may be shorter), up to 64 KiB:
 * the driver cuts it into one packet per datagram. A completion that does
 * not fit the engine's burst is left at the head of the completion queue
 * with how much of it was taken (rx_skip) and finished by the next burst.
 * A datagram that finds no free packet buffer is dropped and counted
 * (drv_rx_no_packet) rather than left waiting: the send completions queued
 * behind it are what return packets to the pool, so waiting could wait for
 * ever.
 * Send: a burst submitted with one io_uring_enter. Packets of a burst to
 * one peer that UDP generic segmentation offload can carry (all the same
 * length but the last, which may be shorter) go as one SENDMSG with a
 * UDP_SEGMENT cmsg: one pass through the kernel's UDP/IP stack for up to
 * GSO_MAX datagrams, cut into datagrams by the NIC or the kernel. Others
 * go one SENDMSG each. Packets return to the pool when the completion is
 * reaped (the kernel copies UDP payloads during the send). Should the
 * kernel refuse a segmented send (a device without checksum offload: EIO;
 * a path MTU below the packet: EINVAL), segmentation is turned off for
 * the socket, last_error names why, and that send's packets go again one
 * datagram each: none is lost to the fallback. WARP_TRANSPORT_NO_UDP_GSO
 * (udp_gso = no) turns it off.
 *
 * Ring setup: see WARP_TRANSPORT_URING_* in warp/config.h. With the default
 * COOP_TASKRUN | TASKRUN_FLAG, the receive side only enters the kernel when
 * the kernel has flagged pending task work (IORING_SQ_TASKRUN), so an idle
 * busy-poll costs no system call.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "driver.h"
#include "ring.h"
#include "sockaddr.h"
#include "warp/config.h"
#include "warp/error.h"

#define RX_BUFS 1024u  /* provided buffers (power of two) */
#define RX_BUFS_GRO 128u /* with UDP_GRO, each of 64 KiB of payload */
#define GRO_MAX_BYTES 65536u
/* A receive buffer holds struct io_uring_recvmsg_out (16 bytes), the name
 * in RX_NAME_LEN bytes, the control data, then the payload: the name's
 * room is rounded up to 8 so the UDP_GRO cmsg after it is aligned. */
#define RX_NAME_LEN ((uint32_t)(sizeof(struct sockaddr_in6) + 7) & ~7u)
#define TX_SLOTS 512u  /* sends in flight */
#define GSO_MAX 32u    /* datagrams per segmented send (the kernel takes at least 64) */
#define GSO_MAX_BYTES 65000u /* and their bytes: one IP datagram's worth */
#define RING_SQ 1024u
#define RING_CQ 8192u
#define BGID 7
#define TAG_RX (1ull << 63)

struct tx_slot {
	struct msghdr msg;
	struct sockaddr_storage to;
	uint16_t n;       /* packets in this send */
	uint16_t next;    /* resending: the packet in flight alone */
	bool resending;   /* the segmented send was refused: one by one */
	bool probing;     /* and its first packet tells whether segmentation was why */
	/* the UDP_SEGMENT cmsg (struct cmsghdr ends in a flexible array, so
	 * it cannot share a union here) */
	_Alignas(struct cmsghdr) char cm[CMSG_SPACE(sizeof(uint16_t))];
	struct warp_pkt *pkt[GSO_MAX]; /* NULL once back in the pool */
	struct iovec iov[GSO_MAX];
};

struct uring_udp {
	int fd;
	int family;
	struct warp__uring r;
	struct warp__pktpool *pool;
	struct warp_driver_counters *cnt;

	struct io_uring_buf_ring *br;
	size_t br_bytes;
	uint8_t *rx_mem;
	uint32_t rx_buf_size;
	uint32_t rx_bufs;     /* RX_BUFS, or RX_BUFS_GRO with gro */
	struct msghdr rx_msg; /* template for the multishot receive */
	bool rx_armed;
	bool gro;             /* UDP_GRO: a receive may carry several datagrams */
	uint32_t rx_skip;     /* bytes of the head completion's payload already taken */

	struct tx_slot *tx;
	uint32_t *tx_free;
	uint32_t ntx_free;
	bool gso;             /* UDP_SEGMENT sends (until the kernel refuses one) */
	bool gso_ok;          /* the kernel has UDP_SEGMENT and the config allows it */
	uint32_t *resend;     /* FIFO of slots with a packet to send again */
	uint32_t resend_head, resend_n;
	char last_error[200];
};

static void udp_close(void *ctx);

static int fail(struct uring_udp *u, int err, const char *what, int e)
{
	udp_close(u);
	return warp__err(err, "%s: %s", what, strerror(e));
}

static void arm_rx(struct uring_udp *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->r.ring);
	if (!sqe)
		return; /* SQ full: try again next poll */
	io_uring_prep_recvmsg_multishot(sqe, u->fd, &u->rx_msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, TAG_RX);
	u->rx_armed = true;
	u->r.need_submit = true;
	warp__cnt_add(u->cnt->drv_rx_rearms, 1);
}

static int udp_open(const struct warp_driver_open_args *a, void **ctx)
{
	struct uring_udp *u = warp__calloc(1, sizeof(*u));
	if (!u)
		return WARP_ENOMEM;
	u->fd = -1;
	u->pool = a->pool;
	u->cnt = a->cnt;

	struct sockaddr_storage ss;
	socklen_t sl;
	int rc = warp__sockaddr_parse(a->listen, SOCK_DGRAM, &ss, &sl);
	if (rc) {
		udp_close(u);
		return warp__err_prefix(WARP_ECONFIG, "listen: ");
	}
	u->family = ss.ss_family;
	u->fd = socket(u->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		return fail(u, WARP_EDRIVER, "socket", errno);
	int one = 1;
	if ((a->flags & WARP_TRANSPORT_REUSEPORT) &&
	    setsockopt(u->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		return fail(u, WARP_EDRIVER, "reuseport: setsockopt(SO_REUSEPORT)", errno);
	warp__sock_bufs(u->fd, a->sock_buf_bytes ? a->sock_buf_bytes : WARP_DEFAULT_SOCK_BUF_BYTES);
	/* a kernel without UDP GSO (before 4.18) refuses the option */
	int no_seg = 0;
	u->gso_ok = !(a->flags & WARP_TRANSPORT_NO_UDP_GSO) &&
		    setsockopt(u->fd, IPPROTO_UDP, UDP_SEGMENT, &no_seg, sizeof(no_seg)) == 0;
	u->gso = u->gso_ok;
	/* a kernel without UDP GRO (before 5.0) refuses this one */
	u->gro = !(a->flags & WARP_TRANSPORT_NO_UDP_GRO) &&
		 setsockopt(u->fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one)) == 0;
	if (bind(u->fd, (struct sockaddr *)&ss, sl)) {
		int e = errno;
		udp_close(u);
		if (e == EADDRINUSE)
			return warp__err(WARP_EDRIVER, "listen '%s': port in use", a->listen);
		return warp__err(WARP_EDRIVER, "listen '%s': bind: %s", a->listen, strerror(e));
	}

	rc = warp__uring_init(&u->r, a->flags, RING_SQ, RING_CQ);
	if (rc) {
		udp_close(u);
		return rc;
	}

	/* provided buffer ring: a datagram (MTU + slack; longer ones are
	 * counted as truncated), or with GRO the 64 KiB a receive may carry,
	 * behind the name and the UDP_GRO cmsg */
	u->rx_bufs = u->gro ? RX_BUFS_GRO : RX_BUFS;
	u->rx_buf_size = (u->gro ? GRO_MAX_BYTES : a->mtu + WARP_PKT_SLACK) +
			 (uint32_t)sizeof(struct io_uring_recvmsg_out) +
			 RX_NAME_LEN +
			 (u->gro ? (uint32_t)CMSG_SPACE(sizeof(int)) : 0);
	u->rx_buf_size = (u->rx_buf_size + 63) & ~63u;
	u->br_bytes = u->rx_bufs * sizeof(struct io_uring_buf);
	u->br = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
		     0);
	if (u->br == MAP_FAILED) {
		u->br = NULL;
		return fail(u, WARP_ENOMEM, "mmap buffer ring", errno);
	}
	u->rx_mem = warp__aligned_alloc(4096, (size_t)u->rx_bufs * u->rx_buf_size);
	u->tx = warp__calloc(TX_SLOTS, sizeof(*u->tx));
	u->tx_free = warp__calloc(TX_SLOTS, sizeof(*u->tx_free));
	u->resend = warp__calloc(TX_SLOTS, sizeof(*u->resend));
	if (!u->rx_mem || !u->tx || !u->tx_free || !u->resend) {
		udp_close(u);
		return WARP_ENOMEM;
	}
	io_uring_buf_ring_init(u->br);
	struct io_uring_buf_reg reg = { .ring_addr = (unsigned long)u->br,
					.ring_entries = u->rx_bufs,
					.bgid = BGID };
	rc = io_uring_register_buf_ring(&u->r.ring, &reg, 0);
	if (rc)
		return fail(u, WARP_EDRIVER, "io_uring_register_buf_ring (kernel >= 5.19 needed)",
			    -rc);
	int mask = io_uring_buf_ring_mask(u->rx_bufs);
	for (uint32_t i = 0; i < u->rx_bufs; i++)
		io_uring_buf_ring_add(u->br, u->rx_mem + (size_t)i * u->rx_buf_size, u->rx_buf_size,
				      (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(u->br, (int)u->rx_bufs);
	u->rx_msg.msg_namelen = RX_NAME_LEN;
	u->rx_msg.msg_controllen = u->gro ? CMSG_SPACE(sizeof(int)) : 0;
	for (uint32_t i = 0; i < TX_SLOTS; i++)
		u->tx_free[i] = TX_SLOTS - 1 - i;
	u->ntx_free = TX_SLOTS;
	if (u->r.enabled)
		arm_rx(u);
	*ctx = u;
	return 0;
}

static void udp_close(void *ctx)
{
	struct uring_udp *u = ctx;
	if (!u)
		return;
	warp__uring_exit(&u->r);
	if (u->tx)
		for (uint32_t i = 0; i < TX_SLOTS; i++)
			for (uint32_t k = 0; k < u->tx[i].n; k++)
				if (u->tx[i].pkt[k])
					warp__pkt_put(u->pool, u->tx[i].pkt[k]);
	if (u->br)
		munmap(u->br, u->br_bytes);
	warp__free(u->rx_mem);
	warp__free(u->tx);
	warp__free(u->tx_free);
	warp__free(u->resend);
	if (u->fd >= 0)
		close(u->fd);
	warp__free(u);
}

static int udp_parse_addr(void *ctx, const char *s, warp__addr_t *out)
{
	struct uring_udp *u = ctx;
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc = warp__sockaddr_parse(s, SOCK_DGRAM, &ss, &sl);
	if (rc)
		return rc;
	if (ss.ss_family != u->family)
		return warp__err(WARP_EINVALID_NODE,
				 "address '%s': %s, but this transport listens on %s", s,
				 ss.ss_family == AF_INET ? "IPv4" : "IPv6",
				 u->family == AF_INET ? "IPv4" : "IPv6");
	warp__sockaddr_pack((struct sockaddr *)&ss, sl, out);
	return 0;
}

static inline void ring_enable(struct uring_udp *u)
{
	if (warp__uring_enable(&u->r))
		arm_rx(u);
}

static void set_error(struct uring_udp *u, const struct tx_slot *t, const char *what, int err)
{
	char to[64];
	warp__sockaddr_str((const struct sockaddr *)&t->to, to, sizeof(to));
	snprintf(u->last_error, sizeof(u->last_error), "%s to %s: %s", what, to, strerror(err));
}

static void slot_free(struct uring_udp *u, uint32_t si)
{
	struct tx_slot *t = &u->tx[si];
	t->n = 0;
	t->resending = t->probing = false;
	u->tx_free[u->ntx_free++] = si;
}

static void resend_push(struct uring_udp *u, uint32_t si)
{
	u->resend[(u->resend_head + u->resend_n++) % TX_SLOTS] = si;
}

/* Slots whose segmented send was refused send their packets one datagram
 * at a time, the next when the previous completes. Returns how many it
 * prepared. */
static unsigned resend_drain(struct uring_udp *u)
{
	unsigned prepared = 0;
	while (u->resend_n) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->r.ring);
		if (!sqe)
			break; /* SQ full: next poll */
		uint32_t si = u->resend[u->resend_head];
		u->resend_head = (u->resend_head + 1) % TX_SLOTS;
		u->resend_n--;
		struct tx_slot *t = &u->tx[si];
		t->msg.msg_iov = &t->iov[t->next];
		t->msg.msg_iovlen = 1;
		t->msg.msg_control = NULL;
		t->msg.msg_controllen = 0;
		io_uring_prep_sendmsg(sqe, u->fd, &t->msg, 0);
		io_uring_sqe_set_data64(sqe, si);
		u->r.need_submit = true;
		prepared++;
	}
	return prepared;
}

/* A send finished: its packets go back to the pool, or, when the kernel
 * refused to segment it, again one by one. */
static void tx_done(struct uring_udp *u, uint32_t si, int res)
{
	struct tx_slot *t = &u->tx[si];
	if (t->resending) {
		if (t->probing) {
			/* the first packet alone: if it fails as well, the refusal
			 * was not about segmentation (say, a bad destination) and
			 * segmentation goes back on */
			t->probing = false;
			if (res < 0)
				u->gso = u->gso_ok;
		}
		if (res < 0) {
			warp__cnt_add(u->cnt->drv_tx_errors, 1);
			set_error(u, t, "send", -res);
		}
		warp__pkt_put(u->pool, t->pkt[t->next]);
		t->pkt[t->next++] = NULL;
		if (t->next < t->n)
			resend_push(u, si);
		else
			slot_free(u, si);
		return;
	}
	if (res < 0 && t->n > 1 &&
	    (res == -EIO || res == -EINVAL || res == -EMSGSIZE || res == -EOPNOTSUPP)) {
		/* no UDP segmentation on this path: off for good, and these
		 * packets go again unsegmented */
		u->gso = false;
		warp__cnt_add(u->cnt->drv_tx_errors, 1);
		set_error(u, t, "UDP segmentation offload refused (now sending one datagram per packet); send",
			  -res);
		t->resending = t->probing = true;
		t->next = 0;
		resend_push(u, si);
		return;
	}
	if (res < 0) {
		warp__cnt_add(u->cnt->drv_tx_errors, 1);
		set_error(u, t, "send", -res);
	} else if (t->n > 1) {
		warp__cnt_add(u->cnt->drv_tx_segmented, 1);
	}
	for (uint32_t k = 0; k < t->n; k++) {
		warp__pkt_put(u->pool, t->pkt[k]);
		t->pkt[k] = NULL;
	}
	slot_free(u, si);
}

/* The datagram size of a coalesced receive (the UDP_GRO cmsg), or 0. */
static uint32_t gro_size(struct uring_udp *u, struct io_uring_recvmsg_out *o)
{
	for (struct cmsghdr *c = io_uring_recvmsg_cmsg_firsthdr(o, &u->rx_msg); c;
	     c = io_uring_recvmsg_cmsg_nexthdr(o, &u->rx_msg, c))
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int g;
			memcpy(&g, CMSG_DATA(c), sizeof(g));
			return g > 0 ? (uint32_t)g : 0;
		}
	return 0;
}

/* Cut a received payload into packets, from u->rx_skip on: one packet per
 * datagram of seg bytes (the last may be shorter). Returns true when the
 * whole payload is taken; false when pkts[] is full first (u->rx_skip then
 * says how far it got, and the completion stays at the head of the queue).
 * With no free packet the rest is dropped and counted instead of waiting:
 * the send completions behind this one are what give packets back. */
static bool take_payload(struct uring_udp *u, struct io_uring_recvmsg_out *o, uint32_t plen,
			 uint32_t seg, struct warp_pkt **pkts, uint16_t n, uint16_t *k,
			 uint64_t now)
{
	const uint8_t *data = io_uring_recvmsg_payload(o, &u->rx_msg);
	uint32_t nl = o->namelen < u->rx_msg.msg_namelen ? o->namelen : u->rx_msg.msg_namelen;
	warp__addr_t from; /* one sender for every datagram of the receive */
	warp__sockaddr_pack(io_uring_recvmsg_name(o), nl, &from);
	uint32_t off = u->rx_skip;
	do {
		if (*k == n) { /* the rest waits for the next burst */
			u->rx_skip = off;
			return false;
		}
		uint32_t len = plen - off < seg ? plen - off : seg;
		struct warp_pkt *pkt = warp__pkt_get(u->pool);
		if (warp__unlikely(!pkt)) {
			warp__cnt_add(u->cnt->drv_rx_no_packet, 1);
		} else if (len <= pkt->cap) {
			memcpy(pkt->data, data + off, len);
			pkt->len = len;
			pkt->addr = from;
			pkt->rx_ns = now;
			pkts[(*k)++] = pkt;
		} else {
			warp__cnt_add(u->cnt->drv_rx_truncated, 1);
			warp__pkt_put(u->pool, pkt);
		}
		off += len;
	} while (off < plen);
	u->rx_skip = 0;
	return true;
}

static uint16_t udp_rx_burst(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now)
{
	struct uring_udp *u = ctx;
	ring_enable(u);
	if (!u->rx_armed)
		arm_rx(u);
	warp__uring_pump(&u->r);

	uint16_t k = 0;
	unsigned seen = 0, returned = 0;
	int mask = io_uring_buf_ring_mask(u->rx_bufs);
	struct io_uring_cqe *cqe;
	unsigned head;
	io_uring_for_each_cqe(&u->r.ring, head, cqe)
	{
		uint64_t tag = io_uring_cqe_get_data64(cqe);
		if (tag != TAG_RX) { /* a send finished */
			tx_done(u, (uint32_t)tag, cqe->res);
			seen++;
			continue;
		}
		if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_BUFFER)) {
			if (cqe->res != -ENOBUFS)
				warp__cnt_add(u->cnt->drv_rx_errors, 1);
			if (!(cqe->flags & IORING_CQE_F_MORE))
				u->rx_armed = false;
			seen++;
			continue;
		}
		if (k == n)
			break; /* this datagram waits for the next burst */
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		uint8_t *buf = u->rx_mem + (size_t)bid * u->rx_buf_size;
		struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, cqe->res, &u->rx_msg);
		if (!o) {
			warp__cnt_add(u->cnt->drv_rx_errors, 1);
		} else if (o->flags & MSG_TRUNC) {
			warp__cnt_add(u->cnt->drv_rx_truncated, 1);
		} else if (warp__unlikely(o->flags & MSG_CTRUNC)) {
			/* the UDP_GRO cmsg cut off: the datagram size is unknown */
			warp__cnt_add(u->cnt->drv_rx_errors, 1);
		} else {
			uint32_t plen = io_uring_recvmsg_payload_length(o, cqe->res, &u->rx_msg);
			uint32_t seg = u->gro ? gro_size(u, o) : 0;
			if (!seg || seg > plen)
				seg = plen ? plen : 1;
			if (!take_payload(u, o, plen, seg, pkts, n, &k, now))
				break; /* the rest of it goes with the next burst */
			if (seg < plen)
				warp__cnt_add(u->cnt->drv_rx_coalesced, 1);
		}
		if (!(cqe->flags & IORING_CQE_F_MORE))
			u->rx_armed = false;
		io_uring_buf_ring_add(u->br, buf, u->rx_buf_size, (unsigned short)bid, mask,
				      (int)returned++);
		seen++;
	}
	if (seen)
		io_uring_cq_advance(&u->r.ring, seen);
	if (returned)
		io_uring_buf_ring_advance(u->br, (int)returned);
	if (!u->rx_armed)
		arm_rx(u); /* submitted with the next pump or send */
	/* resends go out now: tx_burst runs only when the engine has
	 * something to send */
	if (warp__unlikely(u->resend_n) && resend_drain(u))
		warp__uring_submit(&u->r);
	return k;
}

/* Gather into pkts[0..k) what one segmented send can carry: pkts[0] and
 * the packets after it to the same peer, of its length (the last may be
 * shorter), within the limits. The engine interleaves peers in a burst,
 * so other peers' packets are passed over; they move back behind the
 * group in their order, and one peer's packets keep theirs (gathering
 * stops at that peer's first packet that does not fit). Returns k. */
static uint16_t gso_gather(struct warp_pkt **pkts, uint16_t n)
{
	const struct warp_pkt *p0 = pkts[0];
	uint32_t seg = p0->len, bytes = seg;
	uint16_t k = 1;
	bool shorter = false; /* the group ends in a shorter packet */
	for (uint16_t j = 1; j < n && k < GSO_MAX && !shorter; j++) {
		struct warp_pkt *q = pkts[j];
		if (!warp__addr_eq(&q->addr, &p0->addr))
			continue; /* another peer's */
		if (!q->len || q->len > seg || bytes + q->len > GSO_MAX_BYTES)
			break;
		shorter = q->len < seg;
		bytes += q->len;
		memmove(&pkts[k + 1], &pkts[k], (size_t)(j - k) * sizeof(*pkts));
		pkts[k++] = q;
	}
	return k;
}

static uint16_t udp_tx_burst(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now)
{
	struct uring_udp *u = ctx;
	(void)now;
	ring_enable(u);
	if (warp__unlikely(u->resend_n))
		resend_drain(u);
	uint16_t i = 0;
	while (i < n && u->ntx_free) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->r.ring);
		if (!sqe)
			break;
		uint16_t k = u->gso && n - i > 1 ? gso_gather(pkts + i, (uint16_t)(n - i)) : 1;
		uint32_t si = u->tx_free[--u->ntx_free];
		struct tx_slot *t = &u->tx[si];
		t->n = k;
		t->resending = t->probing = false;
		for (uint16_t j = 0; j < k; j++) {
			struct warp_pkt *pkt = pkts[i + j];
			t->pkt[j] = pkt;
			t->iov[j].iov_base = pkt->data;
			t->iov[j].iov_len = pkt->len;
		}
		t->msg.msg_name = &t->to;
		t->msg.msg_namelen = warp__sockaddr_unpack(&pkts[i]->addr, &t->to);
		t->msg.msg_iov = t->iov;
		t->msg.msg_iovlen = k;
		t->msg.msg_control = NULL;
		t->msg.msg_controllen = 0;
		if (k > 1) {
			t->msg.msg_control = t->cm;
			t->msg.msg_controllen = sizeof(t->cm);
			struct cmsghdr *c = CMSG_FIRSTHDR(&t->msg);
			c->cmsg_level = IPPROTO_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			uint16_t seg = (uint16_t)pkts[i]->len;
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		}
		io_uring_prep_sendmsg(sqe, u->fd, &t->msg, 0);
		io_uring_sqe_set_data64(sqe, si);
		i = (uint16_t)(i + k);
	}
	if (i || u->r.need_submit)
		warp__uring_submit(&u->r);
	return i;
}

static int udp_wait_fd(void *ctx)
{
	struct uring_udp *u = ctx;
	ring_enable(u);
	if (!u->rx_armed)
		arm_rx(u);
	return warp__uring_wait_fd(&u->r);
}

static int udp_local_addr(void *ctx, char *buf, size_t cap)
{
	struct uring_udp *u = ctx;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(u->fd, (struct sockaddr *)&ss, &sl))
		return warp__err(WARP_EDRIVER, "getsockname: %s", strerror(errno));
	warp__sockaddr_str((struct sockaddr *)&ss, buf, cap);
	return 0;
}

static int udp_last_error(void *ctx, char *buf, size_t cap)
{
	struct uring_udp *u = ctx;
	snprintf(buf, cap, "%s", u->last_error);
	return 0;
}

static bool udp_single_issuer(void *ctx)
{
	struct uring_udp *u = ctx;
	return u->r.single_issuer;
}

const struct warp_driver_ops warp__uring_udp_driver = {
	.name = "uring-udp",
	.caps = WARP_DRV_DATAGRAM,
	.open = udp_open,
	.close = udp_close,
	.parse_addr = udp_parse_addr,
	.rx_burst = udp_rx_burst,
	.tx_burst = udp_tx_burst,
	.wait_fd = udp_wait_fd,
	.last_error = udp_last_error,
	.local_addr = udp_local_addr,
	.single_issuer = udp_single_issuer,
};
