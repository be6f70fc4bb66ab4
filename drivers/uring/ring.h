/* SPDX-License-Identifier: Apache-2.0 */
/* The io_uring instance of a uring driver: setup flags, lazy enabling for
 * SINGLE_ISSUER rings, and the "enter only when needed" pump. */
#ifndef WARP_URING_RING_H
#define WARP_URING_RING_H

#include <liburing.h>
#include <stdbool.h>

#include "common.h"

struct warp__uring {
	struct io_uring ring;
	bool ok;
	bool enabled;     /* R_DISABLED rings are enabled by the first poll */
	bool need_submit; /* SQEs prepared, not submitted yet */
	bool single_issuer;
	int efd; /* eventfd the kernel signals for each completion or deferred
		  * task work (io_uring_register_eventfd); -1 if that failed */
	bool efd_on; /* its signals are enabled: only while the engine sleeps */
};

/* flags: WARP_TRANSPORT_URING_*. 0 or WARP_EDRIVER with a detail. */
int warp__uring_init(struct warp__uring *r, uint32_t flags, unsigned sq, unsigned cq);
void warp__uring_exit(struct warp__uring *r);
/* Returns true when this call enabled the ring (the caller arms its
 * receives then). */
bool warp__uring_enable_slow(struct warp__uring *r);
static inline bool warp__uring_enable(struct warp__uring *r)
{
	return warp__likely(r->enabled) ? false : warp__uring_enable_slow(r);
}

/* Signals off again after a sleep on the eventfd (warp__uring_wait_fd):
 * a busy poller needs none, and each would cost the kernel a wakeup. */
static inline void warp__uring_awake(struct warp__uring *r)
{
	if (warp__unlikely(r->efd_on)) {
		io_uring_cq_eventfd_toggle(&r->ring, false);
		r->efd_on = false;
	}
}

/* Enter the kernel only when there is something to submit or the kernel
 * flagged task work waiting to post completions (TASKRUN_FLAG; with
 * DEFER_TASKRUN that work only runs inside io_uring_enter). An idle
 * busy-poll therefore makes no system call. */
static inline void warp__uring_pump(struct warp__uring *r)
{
	warp__uring_awake(r);
	unsigned kflags = IO_URING_READ_ONCE(*r->ring.sq.kflags);
	if (r->need_submit || (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) {
		r->need_submit = false;
		io_uring_submit_and_get_events(&r->ring);
	}
}

static inline void warp__uring_submit(struct warp__uring *r)
{
	r->need_submit = false;
	io_uring_submit(&r->ring);
}

/* Room for n SQEs taken one after another (a linked pair must not be cut):
 * when the SQ lacks it, what is queued is submitted first, which empties
 * it. False only when even that did not make room: take none. */
static inline bool warp__uring_sq_room(struct warp__uring *r, unsigned n)
{
	if (warp__likely(io_uring_sq_space_left(&r->ring) >= n))
		return true;
	if (r->enabled)
		warp__uring_submit(r);
	return io_uring_sq_space_left(&r->ring) >= n;
}

/* Submit what is queued (without waiting), enable the eventfd's signals
 * and return it (-1: none): for an engine that sleeps on several transports
 * at once. Work that came before the signals were on is signalled here. */
int warp__uring_wait_fd(struct warp__uring *r);

#endif
