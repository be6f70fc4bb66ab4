/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uring-tcp: the same warp packets over TCP, each prefixed with its length
 * (2 bytes, big endian), through io_uring.
 *
 * Connections: every engine listens (multishot accept). To send to a peer
 * address it uses a connection that already links the two engines, whichever
 * side opened it, and opens its own outbound one (non-blocking connect linked
 * to a timeout of connect_timeout) only when there is none. So a pair of
 * engines normally shares one connection in both directions, and TCP's
 * acknowledgements ride on the replies (with one connection per direction,
 * every segment drew a pure ACK, sent and processed on the critical path:
 * about 8 us of a 22 us round trip on loopback).
 * An outbound connection starts with a hello (TCP_HELLO_LEN bytes: a zero
 * length prefix, "WTCP", version, the sender's listen port and a random
 * nonce), so the accepting side knows the peer's listen address (the
 * connection's source IP and that port) and can send on it. When both sides
 * opened one at once, both use the one opened by the side with the smaller
 * nonce; the other stays idle. Received packets are still attributed by their
 * connection id like on every driver.
 * Loss of a connection: the partial packet being received is dropped and
 * counted; an outbound connection is re-opened on demand after a back-off
 * (retry_initial_backoff doubling to retry_max_backoff, with jitter). Bytes queued for a
 * connection that is down are kept up to the buffer size and sent once it is
 * up; beyond that, packets are dropped and counted (at-most-once: the
 * reliability layer retransmits).
 * Partial reads and writes: each connection has a receive buffer parsed into
 * packets and a send buffer with at most one SEND in flight; a short send is
 * continued from where it stopped.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "driver.h"
#include "ring.h"
#include "sockaddr.h"
#include "warp/config.h"
#include "warp/error.h"

#define RXCAP (64u << 10)
#define TXCAP (256u << 10)
#define RING_SQ 1024u
#define RING_CQ 8192u
/* the hello that opens an outbound connection: 0x0000 (a length no packet
 * has), "WTCP", version, flags (0), listen port, 2 reserved bytes (0), nonce */
#define TCP_HELLO_LEN 20u
#define TCP_HELLO_VERSION 1u

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CONNECT, OP_TIMEOUT, OP_CLOSE };
enum cstate { C_FREE = 0, C_BACKOFF, C_CONNECTING, C_UP };

struct conn {
	enum cstate state;
	bool outbound;
	bool hello_seen; /* inbound: the peer's hello arrived, addr is its listen address */
	int fd;
	warp__addr_t addr; /* the peer's listen address (inbound: once hello_seen) */
	uint64_t peer_nonce; /* inbound: from the hello */
	uint64_t accepted;   /* inbound: accept order (the newest one wins) */
	uint32_t gen;      /* bumped on every close: stale completions are ignored */
	uint8_t *rx;
	uint32_t rx_len;
	bool rx_inflight;
	uint8_t *tx;
	uint32_t tx_head, tx_tail;
	uint32_t tx_inflight; /* bytes of the SEND in flight, 0 = none */
	uint64_t next_attempt_ns;
	uint64_t backoff_ns;
	uint32_t failed_attempts; /* consecutive */
	bool heard; /* outbound: the peer sent bytes since the connect */
	struct __kernel_timespec ts;
	bool ready; /* in the parse list */
	bool rearm; /* in the re-arm list */
	uint32_t refused_in; /* the tx_burst that found its buffer full */
};

struct uring_tcp {
	int lfd;
	int family;
	struct warp__uring r;
	struct warp__pktpool *pool;
	struct warp_driver_counters *cnt;
	uint32_t mtu;
	uint64_t connect_timeout_ns, backoff_min_ns, backoff_max_ns;
	uint32_t max_attempts;
	uint32_t sock_buf; /* SO_RCVBUF/SO_SNDBUF of every socket, 0 = the kernel's autotuning */
	uint64_t rng;
	uint64_t nonce;    /* in our hellos */
	uint16_t lport;    /* our listen port, network order */
	uint64_t accepts;
	uint64_t now; /* the clock of the current burst */
	uint32_t burst; /* tx_burst calls, numbered from 1 */
	bool accept_armed;
	struct conn *c;
	uint32_t nconns; /* an outbound and an inbound one per peer, plus slack */
	uint8_t *mem;    /* every connection's buffers, allocated at open */
	uint32_t *ready; /* conns with unparsed bytes */
	uint32_t nready;
	uint32_t *rearm; /* conns whose receive is to be armed again */
	uint32_t nrearm;
	char last_error[256];
};

static inline uint64_t ud(uint32_t idx, uint32_t gen, unsigned op)
{
	return ((uint64_t)gen << 32) | ((uint64_t)idx << 8) | op;
}

static void tcp_close(void *ctx);

static void set_error(struct uring_tcp *t, const char *what, const warp__addr_t *a, int err)
{
	char as[80] = "";
	if (a) {
		struct sockaddr_storage ss;
		warp__sockaddr_unpack(a, &ss);
		warp__sockaddr_str((struct sockaddr *)&ss, as, sizeof(as));
	}
	snprintf(t->last_error, sizeof(t->last_error), "%s%s%s: %s", what, a ? " " : "", as,
		 strerror(err));
}

static void arm_accept(struct uring_tcp *t)
{
	if (!warp__uring_sq_room(&t->r, 1))
		return; /* accept_armed stays false: the next poll tries again */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->r.ring);
	io_uring_prep_multishot_accept(sqe, t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud(0, 0, OP_ACCEPT));
	t->accept_armed = true;
	t->r.need_submit = true;
	warp__cnt_add(t->cnt->drv_rx_rearms, 1);
}

/* False only when the SQ had no room: the caller keeps the connection on
 * the re-arm list, else nothing would ever read it again. */
static bool arm_recv(struct uring_tcp *t, uint32_t i)
{
	struct conn *c = &t->c[i];
	if (c->rx_inflight || c->state != C_UP || c->rx_len >= RXCAP)
		return true;
	if (!warp__uring_sq_room(&t->r, 1))
		return false;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->r.ring);
	io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len, RXCAP - c->rx_len, 0);
	io_uring_sqe_set_data64(sqe, ud(i, c->gen, OP_RECV));
	c->rx_inflight = true;
	t->r.need_submit = true;
	return true;
}

/* A receive that completed is armed again after this poll's sends are
 * queued: the kernel tries a receive at once when it is submitted (and
 * finds nothing), which would otherwise delay the reply behind it. */
static void rearm_later(struct uring_tcp *t, uint32_t i)
{
	if (!t->c[i].rearm) {
		t->c[i].rearm = true;
		t->rearm[t->nrearm++] = i;
	}
}

static void rearm_now(struct uring_tcp *t)
{
	uint32_t kept = 0;
	for (uint32_t r = 0; r < t->nrearm; r++) {
		uint32_t i = t->rearm[r];
		if (arm_recv(t, i))
			t->c[i].rearm = false;
		else
			t->rearm[kept++] = i; /* the next poll tries again */
	}
	t->nrearm = kept;
}

static void arm_send(struct uring_tcp *t, uint32_t i)
{
	struct conn *c = &t->c[i];
	if (c->tx_inflight || c->state != C_UP || c->tx_head == c->tx_tail)
		return;
	if (!warp__uring_sq_room(&t->r, 1))
		return; /* the next tx_burst to it tries again */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->r.ring);
	c->tx_inflight = c->tx_tail - c->tx_head;
	io_uring_prep_send(sqe, c->fd, c->tx + c->tx_head, c->tx_inflight, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud(i, c->gen, OP_SEND));
	t->r.need_submit = true;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static uint64_t jitter(struct uring_tcp *t, uint64_t v)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return v / 2 + t->rng % (v / 2 + 1);
}

/* Close a connection; its in-flight operations complete with errors that
 * the generation check ignores. */
static void conn_down(struct uring_tcp *t, uint32_t i, bool lost)
{
	struct conn *c = &t->c[i];
	if (c->fd >= 0) {
		shutdown(c->fd, SHUT_RDWR); /* the peer sees the end even while ops hold the file */
		struct io_uring_sqe *sqe =
			warp__uring_sq_room(&t->r, 1) ? io_uring_get_sqe(&t->r.ring) : NULL;
		if (sqe) { /* cancel in-flight ops, then close, in the ring's order */
			io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data64(sqe, ud(i, c->gen, OP_CLOSE));
			t->r.need_submit = true;
			warp__uring_submit(&t->r);
		}
		close(c->fd);
		c->fd = -1;
	}
	if (lost)
		warp__cnt_add(t->cnt->drv_disconnects, 1);
	if (c->rx_len)
		warp__cnt_add(t->cnt->drv_rx_truncated, 1); /* a packet cut by the loss */
	c->gen++;
	c->ready = false; /* a list entry left behind is skipped */
	c->rx_len = 0;
	c->rx_inflight = false;
	c->tx_inflight = 0;
	if (c->outbound) {
		/* an unsent partial packet cannot be resumed on a new stream */
		if (c->tx_head != c->tx_tail && c->state == C_UP) {
			warp__cnt_add(t->cnt->drv_tx_errors, 1);
			c->tx_head = c->tx_tail = 0;
		}
		if (lost && c->state == C_UP && !c->heard) {
			/* up, then lost before the peer sent a byte: it refused
			 * us (our hello, no free slot) or is no warp node. A
			 * failed attempt: the back-off grows and
			 * retry_max_attempts applies, else this reconnects at
			 * once, for ever */
			c->failed_attempts++;
			c->backoff_ns = WARP__MIN(c->backoff_ns * 2, t->backoff_max_ns);
		}
		c->state = C_BACKOFF;
		c->next_attempt_ns = t->now + jitter(t, c->backoff_ns);
	} else {
		if (c->tx_head != c->tx_tail)
			warp__cnt_add(t->cnt->drv_tx_errors, 1); /* what was queued is lost */
		c->state = C_FREE; /* conn_alloc resets the rest when it is reused */
	}
}


static void start_connect(struct uring_tcp *t, uint32_t i, uint64_t now)
{
	struct conn *c = &t->c[i];
	struct sockaddr_storage ss;
	socklen_t sl = warp__sockaddr_unpack(&c->addr, &ss);
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd >= 0 && t->sock_buf) /* before connect: it sets the window scale */
		warp__sock_bufs(c->fd, t->sock_buf);
	/* both or neither: a taken SQE left unprepared would be submitted
	 * with whatever it held before */
	bool room = c->fd >= 0 && warp__uring_sq_room(&t->r, 2);
	struct io_uring_sqe *a = room ? io_uring_get_sqe(&t->r.ring) : NULL;
	struct io_uring_sqe *b = room ? io_uring_get_sqe(&t->r.ring) : NULL;
	if (!b) {
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		c->next_attempt_ns = now + jitter(t, c->backoff_ns);
		return;
	}
	nodelay(c->fd);
	c->state = C_CONNECTING;
	/* the connect SQE keeps a pointer to the address until it completes:
	 * keep it in the connection (rx buffer is idle while connecting) */
	memcpy(c->rx, &ss, sl);
	io_uring_prep_connect(a, c->fd, (struct sockaddr *)c->rx, sl);
	a->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(a, ud(i, c->gen, OP_CONNECT));
	c->ts.tv_sec = (long long)(t->connect_timeout_ns / 1000000000ull);
	c->ts.tv_nsec = (long long)(t->connect_timeout_ns % 1000000000ull);
	io_uring_prep_link_timeout(b, &c->ts, 0);
	io_uring_sqe_set_data64(b, ud(i, c->gen, OP_TIMEOUT));
	t->r.need_submit = true;
}

static int conn_alloc(struct uring_tcp *t)
{
	for (uint32_t i = 0; i < t->nconns; i++) {
		struct conn *c = &t->c[i];
		if (c->state != C_FREE)
			continue;
		c->fd = -1;
		c->rx_len = c->tx_head = c->tx_tail = 0;
		c->hello_seen = false;
		memset(&c->addr, 0, sizeof(c->addr));
		c->backoff_ns = t->backoff_min_ns;
		c->failed_attempts = 0;
		return (int)i;
	}
	return -1;
}

static int tcp_open(const struct warp_driver_open_args *a, void **ctx)
{
	struct uring_tcp *t = warp__calloc(1, sizeof(*t));
	if (!t)
		return WARP_ENOMEM;
	t->lfd = -1;
	t->pool = a->pool;
	t->cnt = a->cnt;
	t->mtu = a->mtu;
	t->connect_timeout_ns = a->connect_timeout_ns ? a->connect_timeout_ns : 1000000000ull;
	t->backoff_min_ns = a->retry_initial_backoff_ns ? a->retry_initial_backoff_ns : 10000000ull;
	t->backoff_max_ns = a->retry_max_backoff_ns ? a->retry_max_backoff_ns : 1000000000ull;
	t->max_attempts = a->retry_max_attempts;
	t->sock_buf = a->sock_buf_bytes;
	t->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)t;
	t->nconns = 2 * a->max_peers + 8;
	t->c = warp__calloc(t->nconns, sizeof(*t->c));
	/* a closed connection's stale entry may sit beside its successor's */
	t->ready = warp__calloc(2 * (size_t)t->nconns, sizeof(*t->ready));
	t->rearm = warp__calloc(t->nconns, sizeof(*t->rearm));
	/* not touched until used: the kernel backs pages on first write */
	t->mem = warp__aligned_alloc(4096, (size_t)t->nconns * (RXCAP + TXCAP));
	if (!t->c || !t->ready || !t->rearm || !t->mem) {
		tcp_close(t);
		return WARP_ENOMEM;
	}
	for (uint32_t i = 0; i < t->nconns; i++) {
		t->c[i].fd = -1;
		t->c[i].rx = t->mem + (size_t)i * (RXCAP + TXCAP);
		t->c[i].tx = t->c[i].rx + RXCAP;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc = warp__sockaddr_parse(a->listen, SOCK_STREAM, &ss, &sl);
	if (rc) {
		tcp_close(t);
		return warp__err_prefix(WARP_ECONFIG, "listen: ");
	}
	t->family = ss.ss_family;
	t->lfd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->lfd < 0) {
		rc = warp__err(WARP_EDRIVER, "socket: %s", strerror(errno));
		tcp_close(t);
		return rc;
	}
	int one = 1;
	setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (t->sock_buf) /* accepted sockets inherit it (and its window scale) */
		warp__sock_bufs(t->lfd, t->sock_buf);
	if ((a->flags & WARP_TRANSPORT_REUSEPORT) &&
	    setsockopt(t->lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) {
		rc = warp__err(WARP_EDRIVER, "reuseport: setsockopt(SO_REUSEPORT): %s",
			       strerror(errno));
		tcp_close(t);
		return rc;
	}
	if (bind(t->lfd, (struct sockaddr *)&ss, sl) || listen(t->lfd, 128)) {
		int e = errno;
		tcp_close(t);
		if (e == EADDRINUSE)
			return warp__err(WARP_EDRIVER, "listen '%s': port in use", a->listen);
		return warp__err(WARP_EDRIVER, "listen '%s': %s", a->listen, strerror(e));
	}
	sl = sizeof(ss);
	if (getsockname(t->lfd, (struct sockaddr *)&ss, &sl) == 0)
		t->lport = ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						    : ((struct sockaddr_in *)&ss)->sin_port;
	if (getrandom(&t->nonce, sizeof(t->nonce), 0) != sizeof(t->nonce))
		t->nonce = t->rng ^ (uint64_t)getpid() << 32; /* only picks between connections */
	rc = warp__uring_init(&t->r, a->flags, RING_SQ, RING_CQ);
	if (rc) {
		tcp_close(t);
		return rc;
	}
	if (t->r.enabled)
		arm_accept(t);
	*ctx = t;
	return 0;
}

static void tcp_close(void *ctx)
{
	struct uring_tcp *t = ctx;
	if (!t)
		return;
	/* In-flight requests keep their files until the ring's asynchronous
	 * teardown ends; shutting the sockets down first frees the port at
	 * once and tells peers now. */
	if (t->lfd >= 0)
		shutdown(t->lfd, SHUT_RDWR);
	if (t->c)
		for (uint32_t i = 0; i < t->nconns; i++)
			if (t->c[i].fd >= 0)
				shutdown(t->c[i].fd, SHUT_RDWR);
	warp__uring_exit(&t->r);
	if (t->c)
		for (uint32_t i = 0; i < t->nconns; i++)
			if (t->c[i].fd >= 0)
				close(t->c[i].fd);
	warp__free(t->mem);
	if (t->lfd >= 0)
		close(t->lfd);
	warp__free(t->c);
	warp__free(t->ready);
	warp__free(t->rearm);
	warp__free(t);
}

static int tcp_parse_addr(void *ctx, const char *s, warp__addr_t *out)
{
	struct uring_tcp *t = ctx;
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc = warp__sockaddr_parse(s, SOCK_STREAM, &ss, &sl);
	if (rc)
		return rc;
	if (ss.ss_family != t->family)
		return warp__err(WARP_EINVALID_NODE,
				 "address '%s': address family differs from this transport's", s);
	warp__sockaddr_pack((struct sockaddr *)&ss, sl, out);
	return 0;
}

static void mark_ready(struct uring_tcp *t, uint32_t i)
{
	if (!t->c[i].ready) {
		t->c[i].ready = true;
		t->ready[t->nready++] = i;
	}
}

/* In front of what waited for the connection (tx_burst keeps room for it). */
static void put_hello(struct uring_tcp *t, struct conn *c)
{
	uint32_t queued = c->tx_tail - c->tx_head;
	memmove(c->tx + TCP_HELLO_LEN, c->tx + c->tx_head, queued);
	uint8_t *h = c->tx;
	memset(h, 0, TCP_HELLO_LEN);
	memcpy(h + 2, "WTCP", 4);
	h[6] = TCP_HELLO_VERSION;
	memcpy(h + 8, &t->lport, 2);
	for (int k = 0; k < 8; k++)
		h[12 + k] = (uint8_t)(t->nonce >> (56 - 8 * k));
	c->tx_head = 0;
	c->tx_tail = TCP_HELLO_LEN + queued;
}

/* An inbound connection's hello: the peer's listen address is the
 * connection's source address with the port the hello names. false: not a
 * warp hello (the caller drops the connection; last_error says why). */
static bool take_hello(struct uring_tcp *t, struct conn *c)
{
	const uint8_t *h = c->rx;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char who[80] = "a connection";
	bool named = getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0;
	if (named) {
		char as[64];
		snprintf(who, sizeof(who), "connection from %s",
			 warp__sockaddr_str((struct sockaddr *)&ss, as, sizeof(as)));
	}
	if (h[0] || h[1] || memcmp(h + 2, "WTCP", 4) != 0) {
		snprintf(t->last_error, sizeof(t->last_error),
			 "recv: %s did not start with warp's TCP hello (not a warp peer, or one "
			 "older than the hello)",
			 who);
		return false;
	}
	if (h[6] != TCP_HELLO_VERSION) {
		snprintf(t->last_error, sizeof(t->last_error),
			 "recv: %s: TCP hello version %u, this build speaks %u", who, h[6],
			 TCP_HELLO_VERSION);
		return false;
	}
	uint64_t nonce = 0;
	for (int k = 0; k < 8; k++)
		nonce = nonce << 8 | h[12 + k];
	c->peer_nonce = nonce;
	c->hello_seen = true;
	if (!named || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return true; /* usable for receiving only: no address to send to it by */
	if (ss.ss_family == AF_INET) {
		memcpy(&((struct sockaddr_in *)&ss)->sin_port, h + 8, 2);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		memcpy(&in6->sin6_port, h + 8, 2);
		in6->sin6_flowinfo = 0;
	}
	warp__sockaddr_pack((struct sockaddr *)&ss, sl, &c->addr);
	return true;
}

static void on_cqe(struct uring_tcp *t, struct io_uring_cqe *cqe)
{
	uint64_t u = io_uring_cqe_get_data64(cqe);
	unsigned op = u & 0xff;
	uint32_t i = (uint32_t)(u >> 8) & 0xffffff;
	uint32_t gen = (uint32_t)(u >> 32);
	if (op == OP_ACCEPT) {
		if (!(cqe->flags & IORING_CQE_F_MORE))
			t->accept_armed = false;
		if (cqe->res < 0) {
			warp__cnt_add(t->cnt->drv_rx_errors, 1);
			return;
		}
		int k = conn_alloc(t);
		if (k < 0) {
			close(cqe->res);
			warp__cnt_add(t->cnt->drv_rx_errors, 1);
			snprintf(t->last_error, sizeof(t->last_error),
				 "accept: more than %u connections (2 x max_peers + 8)", t->nconns);
			return;
		}
		struct conn *c = &t->c[k];
		c->fd = cqe->res;
		c->outbound = false;
		c->accepted = ++t->accepts;
		c->state = C_UP;
		nodelay(c->fd);
		warp__cnt_add(t->cnt->drv_connects, 1);
		if (!arm_recv(t, (uint32_t)k))
			rearm_later(t, (uint32_t)k);
		return;
	}
	if (op == OP_TIMEOUT || op == OP_CLOSE || i >= t->nconns)
		return;
	struct conn *c = &t->c[i];
	if (gen != c->gen || c->state == C_FREE)
		return; /* completion of a connection closed since */
	switch (op) {
	case OP_CONNECT:
		if (cqe->res < 0) {
			int err = cqe->res == -ECANCELED ? ETIMEDOUT : -cqe->res;
			set_error(t, "connect", &c->addr, err);
			warp__cnt_add(t->cnt->drv_connect_failures, 1);
			c->failed_attempts++;
			c->backoff_ns = WARP__MIN(c->backoff_ns * 2, t->backoff_max_ns);
			conn_down(t, i, false); /* the next attempt after that back-off */
			return;
		}
		c->state = C_UP;
		c->heard = false; /* the back-off is reset once the peer answers */
		put_hello(t, c);
		warp__cnt_add(t->cnt->drv_connects, 1);
		if (!arm_recv(t, i)) /* notices the peer closing */
			rearm_later(t, i);
		arm_send(t, i);
		return;
	case OP_RECV:
		c->rx_inflight = false;
		if (cqe->res <= 0) {
			if (cqe->res < 0)
				set_error(t, "recv", c->outbound ? &c->addr : NULL, -cqe->res);
			conn_down(t, i, true);
			return;
		}
		c->rx_len += (uint32_t)cqe->res;
		if (c->outbound && !c->heard) { /* the peer took us: the attempts succeeded */
			c->heard = true;
			c->backoff_ns = t->backoff_min_ns;
			c->failed_attempts = 0;
		}
		mark_ready(t, i);
		return;
	case OP_SEND:
		if (cqe->res < 0) {
			set_error(t, "send", c->outbound ? &c->addr : NULL, -cqe->res);
			warp__cnt_add(t->cnt->drv_tx_errors, 1);
			conn_down(t, i, true);
			return;
		}
		c->tx_head += (uint32_t)cqe->res; /* short sends continue from here */
		c->tx_inflight = 0;
		if (c->tx_head == c->tx_tail)
			c->tx_head = c->tx_tail = 0;
		arm_send(t, i);
		return;
	}
}

/* Cut complete packets out of c's receive buffer. Returns false when the
 * caller's array or the pool is full (the rest stays for the next burst). */
static bool parse(struct uring_tcp *t, uint32_t i, struct warp_pkt **pkts, uint16_t n,
		  uint16_t *k, uint64_t now)
{
	struct conn *c = &t->c[i];
	uint32_t off = 0;
	bool more = true;
	if (!c->outbound && !c->hello_seen) {
		if (c->rx_len < TCP_HELLO_LEN) {
			c->ready = false;
			rearm_later(t, i);
			return true;
		}
		if (!take_hello(t, c)) {
			warp__cnt_add(t->cnt->drv_rx_errors, 1);
			c->rx_len = 0;
			conn_down(t, i, true);
			return true;
		}
		off = TCP_HELLO_LEN;
	}
	while (c->rx_len - off >= 2) {
		uint32_t plen = (uint32_t)c->rx[off] << 8 | c->rx[off + 1];
		if (plen == 0 || plen > t->mtu + WARP_PKT_SLACK) {
			/* not a warp stream: drop the connection */
			snprintf(t->last_error, sizeof(t->last_error),
				 "recv: bad length prefix %u on a connection", plen);
			warp__cnt_add(t->cnt->drv_rx_errors, 1);
			c->rx_len = 0;
			conn_down(t, i, true);
			return true;
		}
		if (c->rx_len - off < 2 + plen)
			break;
		if (*k == n) {
			more = false;
			break;
		}
		struct warp_pkt *pkt = warp__pkt_get(t->pool);
		if (!pkt) {
			more = false;
			break;
		}
		memcpy(pkt->data, c->rx + off + 2, plen);
		pkt->len = plen;
		pkt->rx_ns = now;
		memset(&pkt->addr, 0, sizeof(pkt->addr));
		pkts[(*k)++] = pkt;
		off += 2 + plen;
	}
	if (off) {
		memmove(c->rx, c->rx + off, c->rx_len - off);
		c->rx_len -= off;
	}
	if (more) {
		c->ready = false;
		rearm_later(t, i);
	}
	return more;
}

static uint16_t tcp_rx_burst(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now)
{
	struct uring_tcp *t = ctx;
	t->now = now;
	if (warp__uring_enable(&t->r) || !t->accept_armed)
		arm_accept(t);
	rearm_now(t); /* nothing was sent last poll */
	warp__uring_pump(&t->r);
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	io_uring_for_each_cqe(&t->r.ring, head, cqe)
	{
		on_cqe(t, cqe);
		seen++;
	}
	if (seen)
		io_uring_cq_advance(&t->r.ring, seen);
	uint16_t k = 0;
	uint32_t w = 0;
	for (uint32_t r = 0; r < t->nready; r++) {
		uint32_t i = t->ready[r];
		if (t->c[i].ready && !parse(t, i, pkts, n, &k, now))
			t->ready[w++] = i; /* still has packets */
	}
	t->nready = w;
	return k;
}

/* Make room for need more bytes below cap in c's send buffer by moving
 * what is queued to its start (not while a SEND of it is in flight). */
static void tx_compact(struct conn *c, uint32_t need, uint32_t cap)
{
	if (c->tx_tail + need > cap && !c->tx_inflight && c->tx_head) {
		memmove(c->tx, c->tx + c->tx_head, c->tx_tail - c->tx_head);
		c->tx_tail -= c->tx_head;
		c->tx_head = 0;
	}
}

/* Packets queued on our outbound connection while it was not up, once the
 * peer's own connection is the one to send on: they go out on it, ahead of
 * what follows (else they would wait, uncounted, for a connect that is no
 * longer tried). Whole packets only: a connection that was never up has sent
 * none of them. */
static void move_queued(struct uring_tcp *t, struct conn *from, struct conn *to)
{
	uint32_t len = from->tx_tail - from->tx_head;
	if (!len)
		return;
	tx_compact(to, len, TXCAP);
	if (to->tx_tail + len <= TXCAP) {
		memcpy(to->tx + to->tx_tail, from->tx + from->tx_head, len);
		to->tx_tail += len;
	} else {
		warp__cnt_add(t->cnt->drv_tx_errors, 1); /* no room: dropped, counted */
	}
	from->tx_head = from->tx_tail = 0;
}

/* The connection to send to a: one the peer opened to us (it said a is its
 * listen address) or our own outbound one; with both up, the one opened by
 * the side with the smaller nonce, which the peer picks too. Without either,
 * a new outbound connection (opened by the caller). -1: no room. */
static int pick_conn(struct uring_tcp *t, const warp__addr_t *a)
{
	int out = -1, in = -1;
	for (uint32_t i = 0; i < t->nconns; i++) {
		struct conn *c = &t->c[i];
		if (c->state == C_FREE || !warp__addr_eq(&c->addr, a))
			continue;
		if (c->outbound)
			out = (int)i;
		else if (c->hello_seen && (in < 0 || c->accepted > t->c[in].accepted))
			in = (int)i; /* the newest: an older one may be a dead peer's */
	}
	if (in >= 0 && (out < 0 || t->c[out].state != C_UP || t->c[in].peer_nonce < t->nonce)) {
		if (out >= 0 && t->c[out].state != C_UP)
			move_queued(t, &t->c[out], &t->c[in]);
		return in;
	}
	if (out >= 0)
		return out;
	int i = conn_alloc(t);
	if (i < 0)
		return -1;
	t->c[i].outbound = true;
	t->c[i].addr = *a;
	t->c[i].state = C_BACKOFF;
	t->c[i].next_attempt_ns = 0;
	return i;
}

/* A full buffer refuses the packet and every later one for that
 * connection in the burst (a peer's packets keep their order); packets for
 * other connections still go. The refused ones end up in pkts[k..n). */
static uint16_t tcp_tx_burst(void *ctx, struct warp_pkt **pkts, uint16_t n, uint64_t now)
{
	struct uring_tcp *t = ctx;
	t->now = now;
	if (warp__uring_enable(&t->r))
		arm_accept(t);
	uint32_t burst = ++t->burst ? t->burst : ++t->burst;
	uint16_t nref = 0; /* refused so far, kept in pkts[0..nref) */
	int last = -1;
	for (uint16_t i = 0; i < n; i++) {
		struct warp_pkt *pkt = pkts[i];
		int ci = last >= 0 && warp__addr_eq(&t->c[last].addr, &pkt->addr)
				 ? last
				 : pick_conn(t, &pkt->addr);
		if (ci < 0) {
			warp__cnt_add(t->cnt->drv_tx_errors, 1);
			warp__pkt_put(t->pool, pkt);
			continue;
		}
		last = ci;
		struct conn *c = &t->c[ci];
		if (c->refused_in == burst) {
			pkts[nref++] = pkt;
			continue;
		}
		if (c->state == C_BACKOFF && t->max_attempts && c->failed_attempts >= t->max_attempts) {
			/* the retry policy gave up on this address */
			snprintf(t->last_error, sizeof(t->last_error),
				 "connect: gave up after %u attempts", c->failed_attempts);
			warp__cnt_add(t->cnt->drv_tx_errors, 1);
			warp__pkt_put(t->pool, pkt);
			continue;
		}
		if (c->state == C_BACKOFF && now >= c->next_attempt_ns)
			start_connect(t, (uint32_t)ci, now);
		uint32_t need = 2 + pkt->len;
		/* a connection not up yet keeps room for its hello */
		uint32_t cap = c->state == C_UP ? TXCAP : TXCAP - TCP_HELLO_LEN;
		tx_compact(c, need, cap);
		if (c->tx_tail + need > cap) {
			if (c->state == C_UP) {
				/* backpressure: the engine retries it */
				c->refused_in = burst;
				pkts[nref++] = pkt;
				continue;
			}
			warp__cnt_add(t->cnt->drv_tx_errors, 1); /* peer unreachable, buffer full */
			warp__pkt_put(t->pool, pkt);
			continue;
		}
		c->tx[c->tx_tail] = (uint8_t)(pkt->len >> 8);
		c->tx[c->tx_tail + 1] = (uint8_t)pkt->len;
		memcpy(c->tx + c->tx_tail + 2, pkt->data, pkt->len);
		c->tx_tail += need;
		warp__pkt_put(t->pool, pkt);
		arm_send(t, (uint32_t)ci);
	}
	rearm_now(t);
	if (t->r.need_submit)
		warp__uring_submit(&t->r);
	memmove(pkts + (n - nref), pkts, nref * sizeof(*pkts));
	return (uint16_t)(n - nref);
}

/* Before sleeping: accepts armed, and the receives that completed in the
 * last poll armed again (they wait for the next send or poll otherwise,
 * and a sleeper would not wake for their connections). */
static void tcp_arm_for_sleep(struct uring_tcp *t)
{
	if (warp__uring_enable(&t->r) || !t->accept_armed)
		arm_accept(t);
	rearm_now(t);
}

static int tcp_wait_fd(void *ctx)
{
	struct uring_tcp *t = ctx;
	tcp_arm_for_sleep(t);
	return warp__uring_wait_fd(&t->r);
}

static int tcp_local_addr(void *ctx, char *buf, size_t cap)
{
	struct uring_tcp *t = ctx;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(t->lfd, (struct sockaddr *)&ss, &sl))
		return warp__err(WARP_EDRIVER, "getsockname: %s", strerror(errno));
	warp__sockaddr_str((struct sockaddr *)&ss, buf, cap);
	return 0;
}

static int tcp_last_error(void *ctx, char *buf, size_t cap)
{
	struct uring_tcp *t = ctx;
	snprintf(buf, cap, "%s", t->last_error);
	return 0;
}

static bool tcp_single_issuer(void *ctx)
{
	struct uring_tcp *t = ctx;
	return t->r.single_issuer;
}

const struct warp_driver_ops warp__uring_tcp_driver = {
	.name = "uring-tcp",
	.caps = WARP_DRV_STREAM,
	.open = tcp_open,
	.close = tcp_close,
	.parse_addr = tcp_parse_addr,
	.rx_burst = tcp_rx_burst,
	.tx_burst = tcp_tx_burst,
	.wait_fd = tcp_wait_fd,
	.last_error = tcp_last_error,
	.local_addr = tcp_local_addr,
	.single_issuer = tcp_single_issuer,
};
