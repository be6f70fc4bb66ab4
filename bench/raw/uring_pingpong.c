/* SPDX-License-Identifier: Apache-2.0 */
/*
 * raw-uring-pingpong: the io_uring floor under warp's uring-udp numbers.
 *
 * Two processes ping-pong one datagram over 127.0.0.1, each with its own
 * ring, busy-polling it (client on CPU 0, server on CPU 1 when the machine
 * has two). Sends are IORING_OP_SENDMSG (the peer address in the msghdr, as
 * a multi-peer driver does it) with IOSQE_CQE_SKIP_SUCCESS; receives are
 * either one IORING_OP_RECVMSG multishot request drawing from a provided
 * buffer ring, or a single-shot IORING_OP_RECVMSG re-armed after each
 * datagram. The ring fd is registered (IORING_ENTER_REGISTERED_RING).
 *
 * --flags picks the ring set-up, and with it how a busy-poll loop must run
 * the kernel's completion work (task_work) to see a receive complete:
 *   default       no flag: task_work is signalled to the task; a task running
 *                 in user space is kicked by an IPI and runs it on the way
 *                 back; the loop only peeks the CQ (and enters to submit).
 *   coop          COOP_TASKRUN: no IPI; task_work waits for the next kernel
 *                 entry, so the loop enters (GETEVENTS) on every iteration.
 *   coop-taskrun  COOP_TASKRUN|TASKRUN_FLAG: the kernel sets IORING_SQ_TASKRUN
 *                 in sq.kflags when work is pending; the loop peeks and enters
 *                 only when the flag is up (or to submit).
 *   defer         SINGLE_ISSUER|DEFER_TASKRUN: work runs only inside
 *                 io_uring_enter(GETEVENTS); the loop calls
 *                 io_uring_submit_and_get_events() on every iteration.
 *   sqpoll        SQPOLL (+SQ_AFF, pinned): the kernel thread submits and
 *                 runs the task_work; the loop only peeks the CQ. It needs a
 *                 core of its own: on a 2-CPU machine its thread shares the
 *                 CPU of the side that owns it (--sq-cpu to choose).
 *
 * --idle wait replaces the spin with what an idle engine does: both halves
 * sleep in io_uring_submit_and_wait_timeout() (one completion, 100 ms
 * timeout) whenever their CQ is empty, so every datagram has to wake a
 * sleeping task; this measures the flags for the idle strategy.
 *
 * Usage: raw-uring-pingpong [--flags F] [--recv multishot|single] [--size B]
 *                           [--count N] [--warmup N] [--idle spin|wait] [--json]
 *                           [--role R --addr A]
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raw_common.h"

enum ring_mode { M_DEFAULT, M_COOP, M_COOP_TASKRUN, M_DEFER, M_SQPOLL };
static const char *const mode_names[] = { "default", "coop", "coop-taskrun", "defer", "sqpoll" };
static const char *const mode_flags[] = {
	"no setup flags", "COOP_TASKRUN", "COOP_TASKRUN|TASKRUN_FLAG",
	"SINGLE_ISSUER|DEFER_TASKRUN", "SQPOLL|SQ_AFF"
};

static enum ring_mode g_mode = M_DEFER;
static int g_multishot = 1;
static int g_sq_cpu = -2; /* -2: the CPU of the side that owns the ring */
static int g_wait;        /* --idle wait */

#define RING_ENTRIES 64
#define NBUFS 64 /* provided buffers (power of two) */
#define BGID 7
#define UD_RECV 1
#define UD_SEND 2
#define SQ_IDLE_MS 2000

static const char usage_text[] =
	"usage: raw-uring-pingpong [options]\n"
	"  --flags F         ring set-up: default, coop (COOP_TASKRUN), coop-taskrun\n"
	"                    (COOP_TASKRUN|TASKRUN_FLAG), defer (SINGLE_ISSUER|DEFER_TASKRUN,\n"
	"                    the default), sqpoll (SQPOLL, pinned sq thread)\n"
	"  --recv R          multishot (RECVMSG multishot + provided buffer ring, default)\n"
	"                    or single (one RECVMSG re-armed per datagram)\n"
	"  --sq-cpu N        sqpoll only: CPU of both sides' sq threads (default: each\n"
	"                    side's own CPU; -1: not pinned)\n"
	"  --idle I          spin (busy-poll, default) or wait (sleep in\n"
	"                    io_uring_submit_and_wait_timeout while the CQ is empty)\n"
	"  --size BYTES      payload size (default 64, 1..65507)\n"
	"  --count N         measured round trips (default 200000)\n"
	"  --warmup N        round trips before measuring (default 20000)\n"
	"  --json            print one JSON object instead of the table\n"
	"  --role R          server or client: run one half only (needs --addr);\n"
	"                    default: both halves, the server forked\n"
	"  --addr IP:PORT    the server's address (default 127.0.0.1, port picked)\n"
	"  --client-cpu N    pin the client (default 0 on 2+ CPUs; -1: no pinning)\n"
	"  --server-cpu N    pin the server (default 1 on 2+ CPUs; -1: no pinning)\n";

static int set_flags(const char *v)
{
	for (int i = 0; i <= M_SQPOLL; i++) {
		if (strcmp(v, mode_names[i]) == 0) {
			g_mode = (enum ring_mode)i;
			return 0;
		}
	}
	fprintf(stderr, "raw-uring-pingpong: --flags '%s': expected default, coop, coop-taskrun, "
			"defer or sqpoll\n", v);
	return -1;
}

static int set_recv(const char *v)
{
	if (strcmp(v, "multishot") == 0 || strcmp(v, "single") == 0) {
		g_multishot = v[0] == 'm';
		return 0;
	}
	fprintf(stderr, "raw-uring-pingpong: --recv '%s': expected multishot or single\n", v);
	return -1;
}

static int set_idle(const char *v)
{
	if (strcmp(v, "spin") == 0 || strcmp(v, "wait") == 0) {
		g_wait = v[0] == 'w';
		return 0;
	}
	fprintf(stderr, "raw-uring-pingpong: --idle '%s': expected spin or wait\n", v);
	return -1;
}

static int set_sq_cpu(const char *v)
{
	char *end;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	errno = 0;
	long c = strtol(v, &end, 10);
	if (errno || *v == '\0' || *end != '\0' || c < -1 || c >= ncpu) {
		fprintf(stderr, "raw-uring-pingpong: --sq-cpu '%s': expected -1 or a CPU in "
				"[0, %ld]\n", v, ncpu - 1);
		return -1;
	}
	g_sq_cpu = (int)c;
	return 0;
}

/* One side: its ring, socket, receive state and the one send in flight. */
struct side {
	const struct raw_opts *o;
	struct io_uring ring;
	int fd;
	int is_server;
	/* receive */
	struct msghdr rmsg;
	struct iovec riov;          /* single only */
	struct sockaddr_in rname;   /* single only */
	uint8_t *rbuf;              /* single: one buffer; multishot: NBUFS of buf_len */
	size_t buf_len;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	int armed;
	/* send */
	struct msghdr smsg;
	struct iovec siov;
	struct sockaddr_in sname;
	uint8_t *sbuf;
	/* what the last reap saw */
	int stop;    /* server: the zero-length datagram */
	int got;     /* client: the reply for `want` */
	uint64_t want;
	uint64_t t_got;
	int err;
};

static int side_init(struct side *s, const struct raw_opts *o, int fd, int cpu)
{
	memset(s, 0, sizeof(*s));
	s->o = o;
	s->fd = fd;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	switch (g_mode) {
	case M_DEFAULT:
		break;
	case M_COOP:
		p.flags = IORING_SETUP_COOP_TASKRUN;
		break;
	case M_COOP_TASKRUN:
		p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
		break;
	case M_DEFER:
		p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
		break;
	case M_SQPOLL: {
		int sq = g_sq_cpu == -2 ? cpu : g_sq_cpu;
		p.flags = IORING_SETUP_SQPOLL;
		p.sq_thread_idle = SQ_IDLE_MS;
		if (sq >= 0) {
			p.flags |= IORING_SETUP_SQ_AFF;
			p.sq_thread_cpu = (unsigned)sq;
		}
		break;
	}
	}
	int rc = io_uring_queue_init_params(RING_ENTRIES, &s->ring, &p);
	if (rc < 0) {
		fprintf(stderr, "%s: io_uring_queue_init_params (%s): %s\n", o->tool,
			mode_flags[g_mode], strerror(-rc));
		return -1;
	}
	(void)io_uring_register_ring_fd(&s->ring); /* an optimisation; fine if refused */

	s->sbuf = calloc(1, o->size);
	s->smsg.msg_name = &s->sname;
	s->smsg.msg_namelen = sizeof(s->sname);
	s->siov.iov_base = s->sbuf;
	s->siov.iov_len = o->size;
	s->smsg.msg_iov = &s->siov;
	s->smsg.msg_iovlen = 1;
	if (!s->sbuf)
		goto nomem;

	/* room for one more byte than expected, so a longer datagram shows */
	if (g_multishot) {
		s->buf_len = sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_in) +
			     o->size + 1;
		s->buf_len = (s->buf_len + 63) & ~(size_t)63;
		s->rbuf = malloc(s->buf_len * NBUFS);
		s->br_bytes = NBUFS * sizeof(struct io_uring_buf);
		/* liburing 2.3 has no io_uring_setup_buf_ring(): map the ring
		 * (page aligned, as the kernel requires) and register it */
		void *m = mmap(NULL, s->br_bytes, PROT_READ | PROT_WRITE,
			       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
		if (!s->rbuf || m == MAP_FAILED)
			goto nomem;
		s->br = m;
		struct io_uring_buf_reg reg = {
			.ring_addr = (unsigned long)(uintptr_t)m,
			.ring_entries = NBUFS,
			.bgid = BGID,
		};
		rc = io_uring_register_buf_ring(&s->ring, &reg, 0);
		if (rc < 0) {
			fprintf(stderr, "%s: io_uring_register_buf_ring: %s\n", o->tool,
				strerror(-rc));
			return -1;
		}
		io_uring_buf_ring_init(s->br);
		for (unsigned i = 0; i < NBUFS; i++)
			io_uring_buf_ring_add(s->br, s->rbuf + i * s->buf_len,
					      (unsigned)s->buf_len, (unsigned short)i,
					      io_uring_buf_ring_mask(NBUFS), (int)i);
		io_uring_buf_ring_advance(s->br, NBUFS);
		s->rmsg.msg_namelen = sizeof(struct sockaddr_in);
	} else {
		s->buf_len = o->size + 1;
		s->rbuf = malloc(s->buf_len);
		if (!s->rbuf)
			goto nomem;
		s->riov.iov_base = s->rbuf;
		s->riov.iov_len = s->buf_len;
		s->rmsg.msg_iov = &s->riov;
		s->rmsg.msg_iovlen = 1;
		s->rmsg.msg_name = &s->rname;
		s->rmsg.msg_namelen = sizeof(s->rname);
	}
	return 0;
nomem:
	fprintf(stderr, "%s: out of memory\n", o->tool);
	return -1;
}

static void side_fini(struct side *s)
{
	io_uring_queue_exit(&s->ring);
	if (s->br)
		munmap(s->br, s->br_bytes);
	free(s->rbuf);
	free(s->sbuf);
}

/* The SQ has 64 entries and at most two are queued between submits. */
static struct io_uring_sqe *sqe_get(struct side *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
	if (!sqe) {
		io_uring_submit(&s->ring);
		sqe = io_uring_get_sqe(&s->ring);
	}
	return sqe;
}

static int arm_recv(struct side *s)
{
	struct io_uring_sqe *sqe = sqe_get(s);
	if (!sqe)
		return -1;
	if (g_multishot) {
		io_uring_prep_recvmsg_multishot(sqe, s->fd, &s->rmsg, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = BGID;
	} else {
		s->rmsg.msg_namelen = sizeof(s->rname);
		io_uring_prep_recvmsg(sqe, s->fd, &s->rmsg, 0);
	}
	io_uring_sqe_set_data64(sqe, UD_RECV);
	s->armed = 1;
	return 0;
}

/* Queue the send of sbuf (len bytes) to sname; submitted by the next pump. */
static int queue_send(struct side *s, size_t len)
{
	struct io_uring_sqe *sqe = sqe_get(s);
	if (!sqe)
		return -1;
	s->siov.iov_len = len;
	io_uring_prep_sendmsg(sqe, s->fd, &s->smsg, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, UD_SEND);
	return 0;
}

/* A datagram arrived: the server echoes it, the client checks it. */
static void on_datagram(struct side *s, const uint8_t *p, size_t len, const void *name,
			size_t namelen)
{
	const struct raw_opts *o = s->o;
	if (s->is_server) {
		if (len == 0) {
			s->stop = 1;
			return;
		}
		if (len > o->size || namelen != sizeof(s->sname)) {
			fprintf(stderr, "%s: server: unexpected datagram of %zu bytes\n", o->tool,
				len);
			s->err = 1;
			return;
		}
		memcpy(s->sbuf, p, len);
		memcpy(&s->sname, name, sizeof(s->sname));
		if (queue_send(s, len))
			s->err = 1;
		return;
	}
	uint64_t t = now_ns();
	if (len != o->size) {
		fprintf(stderr, "%s: reply of %zu bytes, expected %zu\n", o->tool, len, o->size);
		s->err = 1;
		return;
	}
	if (o->size >= 8 && memcmp(p, &s->want, 8) != 0)
		return; /* a late duplicate of a resent first message */
	s->got = 1;
	s->t_got = t;
}

static void on_recv_cqe(struct side *s, const struct io_uring_cqe *cqe)
{
	const char *tool = s->o->tool;
	if (!(cqe->flags & IORING_CQE_F_MORE))
		s->armed = 0; /* single-shot, or the kernel ended the multishot */
	if (cqe->res < 0) {
		if (cqe->res == -EINTR || cqe->res == -EAGAIN)
			return;
		fprintf(stderr, "%s: recvmsg: %s\n", tool, strerror(-cqe->res));
		s->err = 1;
		return;
	}
	if (!g_multishot) {
		on_datagram(s, s->rbuf, (size_t)cqe->res, &s->rname, s->rmsg.msg_namelen);
		return;
	}
	if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
		fprintf(stderr, "%s: multishot completion without a buffer\n", tool);
		s->err = 1;
		return;
	}
	unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	uint8_t *buf = s->rbuf + (size_t)bid * s->buf_len;
	struct io_uring_recvmsg_out *out = io_uring_recvmsg_validate(buf, cqe->res, &s->rmsg);
	if (!out || (out->flags & MSG_TRUNC)) {
		fprintf(stderr, "%s: bad or truncated multishot datagram\n", tool);
		s->err = 1;
	} else {
		on_datagram(s, io_uring_recvmsg_payload(out, &s->rmsg),
			    io_uring_recvmsg_payload_length(out, cqe->res, &s->rmsg),
			    io_uring_recvmsg_name(out), out->namelen);
	}
	/* the payload was copied (server) or checked (client): recycle at once */
	io_uring_buf_ring_add(s->br, buf, (unsigned)s->buf_len, (unsigned short)bid,
			      io_uring_buf_ring_mask(NBUFS), 0);
	io_uring_buf_ring_advance(s->br, 1);
}

/* Process every CQE already posted; no system call. */
static void reap(struct side *s)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&s->ring, head, cqe)
	{
		n++;
		if (cqe->user_data == UD_RECV) {
			on_recv_cqe(s, cqe);
		} else if (cqe->res < 0) { /* sends post a CQE only on failure */
			fprintf(stderr, "%s: sendmsg: %s\n", s->o->tool, strerror(-cqe->res));
			s->err = 1;
		}
	}
	io_uring_cq_advance(&s->ring, n);
}

/* Busy-poll: submit what is queued and make the kernel run its completion
 * work the way the ring's flags require. 0 or a negative errno. */
static int spin_once(struct io_uring *r)
{
	switch (g_mode) {
	case M_DEFER: /* task_work runs only in io_uring_enter(GETEVENTS) */
	case M_COOP:  /* no IPI: work waits for a kernel entry, so enter every time */
		return io_uring_submit_and_get_events(r);
	case M_COOP_TASKRUN: /* enter when there is something to submit or work pending */
		if (io_uring_sq_ready(r) || (IO_URING_READ_ONCE(*r->sq.kflags) & IORING_SQ_TASKRUN))
			return io_uring_submit_and_get_events(r);
		break;
	case M_DEFAULT: /* the IPI runs the work; enter only to submit */
	case M_SQPOLL:  /* io_uring_submit enters only to wake a sleeping sq thread */
		if (io_uring_sq_ready(r))
			return io_uring_submit(r);
		break;
	}
	return 0;
}

/* Idle: submit and sleep until a completion (or 100 ms). */
static int wait_once(struct io_uring *r)
{
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100000000 };
	struct io_uring_cqe *cqe;
	int rc = io_uring_submit_and_wait_timeout(r, &cqe, 1, &ts, NULL);
	return rc == -ETIME ? 0 : rc;
}

/* One iteration of a side's loop: (re-)arm the receive, enter the kernel
 * as the flags and --idle require, then reap. */
static void pump(struct side *s)
{
	struct io_uring *r = &s->ring;
	if (!s->armed && !s->stop && arm_recv(s))
		s->err = 1;
	int rc = g_wait && io_uring_cq_ready(r) == 0 ? wait_once(r) : spin_once(r);
	if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
		fprintf(stderr, "%s: io_uring_enter: %s\n", s->o->tool, strerror(-rc));
		s->err = 1;
	}
	reap(s);
}

static int uring_server(const struct raw_opts *o, int fd)
{
	struct side s;
	if (side_init(&s, o, fd, o->server_cpu))
		return 1;
	s.is_server = 1;
	while (!s.stop && !s.err)
		pump(&s);
	side_fini(&s);
	return s.err;
}

static int uring_client(const struct raw_opts *o, int fd, const struct sockaddr_in *srv,
			struct raw_result *r)
{
	struct side s;
	if (side_init(&s, o, fd, o->client_cpu))
		return 1;
	s.sname = *srv;
	uint64_t total = o->warmup + o->count;
	for (uint64_t i = 0; i < total && !s.err; i++) {
		s.want = i;
		s.got = 0;
		if (o->size >= 8)
			memcpy(s.sbuf, &i, 8);
		uint64_t t0 = now_ns(), t_resend = t0;
		if (queue_send(&s, o->size)) {
			s.err = 1;
			break;
		}
		for (unsigned spin = 1; !s.got && !s.err; spin++) {
			pump(&s);
			if (!g_wait && (spin & 4095) != 0)
				continue;
			uint64_t t = now_ns();
			if (t - t0 > RAW_TIMEOUT_NS) {
				fprintf(stderr, "%s: no reply to round trip %llu within 2 s\n",
					o->tool, (unsigned long long)i);
				s.err = 1;
			} else if (i == 0 && t - t_resend > 100000000ull) {
				/* a separately started server may not be up yet */
				t_resend = t;
				if (queue_send(&s, o->size))
					s.err = 1;
			}
		}
		if (!s.got)
			break;
		if (i == o->warmup)
			r->t_first = s.t_got;
		if (i >= o->warmup)
			warp_hist_record(r->h, s.t_got - t0);
		r->t_last = s.t_got;
	}
	side_fini(&s);
	return s.err;
}

int main(int argc, char **argv)
{
	static const struct raw_extra_opt extra[] = {
		{ "flags", set_flags },
		{ "recv", set_recv },
		{ "sq-cpu", set_sq_cpu },
		{ "idle", set_idle },
		{ NULL, NULL },
	};
	struct raw_opts o = { .tool = "raw-uring-pingpong" };
	int rc = raw_parse(argc, argv, &o, extra, usage_text);
	if (rc)
		return rc == 1 ? 0 : 2;
	o.idle = g_wait ? "wait (io_uring_submit_and_wait_timeout)" : "spin";
	if (g_mode != M_SQPOLL && g_sq_cpu != -2) {
		fprintf(stderr, "%s: --sq-cpu applies to --flags sqpoll only\n", o.tool);
		return 2;
	}
	char settings[256], json[256];
	char sq[32] = "";
	if (g_mode == M_SQPOLL) {
		if (g_sq_cpu == -2)
			snprintf(sq, sizeof(sq), " (sq thread on its side's cpu)");
		else
			snprintf(sq, sizeof(sq), " (sq threads on cpu %d)", g_sq_cpu);
	}
	snprintf(settings, sizeof(settings),
		 "io_uring flags %s [%s]%s, recv %s, send SENDMSG+CQE_SKIP_SUCCESS",
		 mode_names[g_mode], mode_flags[g_mode], sq,
		 g_multishot ? "RECVMSG multishot + buffer ring" : "single RECVMSG re-armed");
	snprintf(json, sizeof(json), "\"io\":\"io_uring\",\"flags\":\"%s\",\"recv\":\"%s\",",
		 mode_names[g_mode], g_multishot ? "multishot" : "single");
	return raw_main(&o, uring_server, uring_client, settings, json);
}
