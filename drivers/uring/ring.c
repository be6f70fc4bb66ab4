/* SPDX-License-Identifier: Apache-2.0 */
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ring.h"
#include "warp/config.h"
#include "warp/error.h"

int warp__uring_init(struct warp__uring *r, uint32_t flags, unsigned sq, unsigned cq)
{
	struct io_uring_params p;
	memset(r, 0, sizeof(*r));
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = cq;
	bool defer = false;
	if (flags & WARP_TRANSPORT_URING_SQPOLL) {
		p.flags |= IORING_SETUP_SQPOLL;
		p.sq_thread_idle = 1000;
	} else if (flags & WARP_TRANSPORT_URING_COOP) {
		p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	} else if (!(flags & WARP_TRANSPORT_URING_PLAIN)) {
		/* the polling thread becomes the single issuer when it enables
		 * the ring (R_DISABLED), not the thread that created it */
		p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			   IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_R_DISABLED;
		defer = true;
	}
	int rc = io_uring_queue_init_params(sq, &r->ring, &p);
	if (rc < 0)
		return warp__err(WARP_EDRIVER, "io_uring_queue_init (flags 0x%x): %s", p.flags,
				 strerror(-rc));
	r->ok = true;
	r->enabled = !defer;
	r->single_issuer = defer;
	/* Registered now, while a SINGLE_ISSUER ring is still disabled (no
	 * submitter yet). With DEFER_TASKRUN the kernel signals it when task
	 * work is queued, so a sleeper wakes to run it. Without it the engine
	 * still works; it sleeps blind when it has several transports. */
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd >= 0 && (io_uring_register_eventfd(&r->ring, r->efd) < 0 ||
			    io_uring_cq_eventfd_toggle(&r->ring, false) < 0)) {
		close(r->efd);
		r->efd = -1;
	}
	return 0;
}

void warp__uring_exit(struct warp__uring *r)
{
	if (r->ok)
		io_uring_queue_exit(&r->ring);
	if (r->ok && r->efd >= 0)
		close(r->efd);
	r->ok = false;
	r->efd = -1;
}

bool warp__uring_enable_slow(struct warp__uring *r)
{
	/* liburing 2.3 declares io_uring_enable_rings but Debian's build does
	 * not export it: register directly */
	syscall(__NR_io_uring_register, r->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	/* Registered ring fds belong to the registering thread: only a ring
	 * bound to its polling thread can use one. It saves the fd lookup on
	 * every io_uring_enter. */
	io_uring_register_ring_fd(&r->ring);
	r->enabled = true;
	return true;
}

int warp__uring_wait_fd(struct warp__uring *r)
{
	if (r->efd < 0)
		return -1;
	if (r->need_submit) {
		r->need_submit = false;
		io_uring_submit(&r->ring);
	}
	io_uring_cq_eventfd_toggle(&r->ring, true);
	r->efd_on = true;
	/* the flag's store before the loads below (the kernel posts, then
	 * reads the flag): completions or task work from before the signals
	 * were on are signalled here */
	atomic_thread_fence(memory_order_seq_cst);
	if (io_uring_cq_ready(&r->ring) ||
	    (IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
		eventfd_write(r->efd, 1);
	return r->efd;
}
