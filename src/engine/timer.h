/* SPDX-License-Identifier: Apache-2.0 */
/* Hashed timing wheel for the engine's poll loop (retransmit, heartbeat and
 * reassembly timeouts). Private: never installed.
 *
 * Time is uint64_t nanoseconds from a monotonic clock. Timers are intrusive:
 * embed a struct warp_timer in the owning object and recover the object in
 * the callback with warp__container_of(). The wheel allocates its slot array
 * once in warp__wheel_init(); arm, cancel and advance never allocate.
 *
 * Design: slot = (tick of deadline) & (nslots - 1), one circular doubly
 * linked list per slot, so arm, re-arm and cancel are O(1). A slot holds the
 * timers of every rotation; advance() visits the slots of the ticks elapsed
 * since the previous advance (every slot once when a whole rotation or more
 * elapsed), moves the timers whose deadline <= now to a private "due" list
 * and leaves the others, then fires the due list one timer at a time.
 * Because callbacks run only after collection, a callback may arm, re-arm or
 * cancel any timer (itself, or one still waiting in the due list), and a
 * timer armed from a callback never fires in the same advance call, even
 * when its deadline is <= now: it fires on the next one.
 *
 * Guarantees: a timer never fires before its deadline, and it fires on the
 * first advance whose now_ns >= its deadline. A deadline already in the past
 * when armed fires on the next advance. Timers due in the same advance fire
 * roughly in tick order, not sorted by exact deadline.
 *
 * Thread rules: a wheel and its timers belong to one thread (the engine
 * thread that owns the wheel); nothing here is thread-safe.
 */
#ifndef WARP_ENGINE_TIMER_H
#define WARP_ENGINE_TIMER_H

#include <stdint.h>

struct warp_timer;

/**
 * Timer callback. Called by warp__wheel_advance() on the wheel's thread,
 * after the timer has been disarmed (warp__timer_armed(t) is 0 on entry).
 * It may arm, re-arm or cancel any timer of the same wheel, including t.
 * It must not call warp__wheel_advance() or warp__wheel_fini().
 * @param t the timer that fired.
 * @param now_ns the now_ns given to warp__wheel_advance().
 */
typedef void (*warp_timer_fn)(struct warp_timer *t, uint64_t now_ns);

/** An intrusive timer. Fields are private to timer.c; read them only through
 *  the functions below. next == NULL means "not armed". */
struct warp_timer {
	struct warp_timer *next, *prev;
	uint64_t deadline_ns;
	warp_timer_fn fn;
};

/** A timing wheel. Fields are private to timer.c. */
struct warp_wheel {
	struct warp_timer *slots; /* nslots list heads (sentinels) */
	struct warp_timer due;    /* sentinel: timers collected by advance, not yet fired */
	uint64_t tick_ns;
	uint64_t now_ns;	  /* now_ns of the last advance (or of init) */
	uint64_t quiet_ns;	  /* nothing can be due before this: <= the end of
				   * the current tick and <= every deadline in its
				   * slot (arming only lowers it); 0 = unknown */
	uint32_t mask;		  /* nslots - 1 */
	uint32_t tick_shift;	  /* log2(tick_ns) when a power of two, else 64 */
	uint64_t tick_recip;	  /* floor((2^64 - 1) / tick_ns): tick_of() multiplies */
	unsigned count;		  /* armed timers, due list included */
	int firing;		  /* inside advance(): guards against recursion */
};

/**
 * The tick of ns: ns / tick_ns. Every poll and every arm asks, and a 64-bit
 * division costs tens of cycles, so a tick that is not a power of two (the
 * default is 100 us) is divided by multiplying with its reciprocal
 * r = floor((2^64 - 1) / tick_ns): the high half of ns * r is never above
 * the quotient and, as r falls short of 2^64 / tick_ns by less than 1, at
 * most one below it for ns < 2^63 (two at worst); the loop adds the rest.
 * Any thread (reads only tick_ns, tick_shift and tick_recip).
 */
static inline uint64_t warp__wheel_tick_of(const struct warp_wheel *w, uint64_t ns)
{
	if (w->tick_shift < 64)
		return ns >> w->tick_shift;
	uint64_t q = (uint64_t)(((unsigned __int128)ns * w->tick_recip) >> 64);
	while (ns - q * w->tick_ns >= w->tick_ns)
		q++;
	return q;
}

/**
 * Initialise a timer (not armed). Call once before first use; the timer
 * must not be armed (re-initialising an armed timer corrupts its wheel).
 * @param t the timer, owned by the caller (usually embedded in an object).
 * @param fn the callback, not NULL.
 * Wheel thread (or before the timer is shared with it).
 */
void warp__timer_init(struct warp_timer *t, warp_timer_fn fn);

/**
 * Is the timer armed (waiting to fire)?
 * @return 1 if armed, 0 if not (never armed, fired, or cancelled).
 * Wheel thread.
 */
static inline int warp__timer_armed(const struct warp_timer *t)
{
	return t->next != NULL;
}

/** Deadline the timer was last armed for (meaningful while armed). */
static inline uint64_t warp_timer_deadline(const struct warp_timer *t)
{
	return t->deadline_ns;
}

/**
 * Initialise a wheel: one allocation (nslots list heads, 32 bytes each).
 * @param w the wheel, owned by the caller; free its slots with
 *        warp__wheel_fini().
 * @param nslots number of slots, a power of two (1 .. 2^31). One rotation
 *        covers nslots * tick_ns; later deadlines are fine, they just wait
 *        in their slot for the right rotation.
 * @param tick_ns slot granularity in ns, > 0 (a power of two is slightly
 *        faster: shift instead of divide).
 * @param now_ns the current time; the first advance starts from here.
 * @return 0, WARP_EINVAL (w NULL, nslots not a power of two, tick_ns 0),
 *         WARP_ENOMEM.
 * Any thread; the wheel then belongs to that thread.
 */
int warp__wheel_init(struct warp_wheel *w, uint32_t nslots, uint64_t tick_ns, uint64_t now_ns);

/**
 * Release the wheel's slots. Timers still armed are disarmed (their links
 * are cleared, callbacks are not called), so they must still be valid
 * memory; their owners may free them afterwards.
 * The wheel may be initialised again afterwards. Not from a callback.
 * Wheel thread.
 */
void warp__wheel_fini(struct warp_wheel *w);

/**
 * Arm t to fire at deadline_ns, or move it there if already armed. O(1),
 * no allocation. A deadline <= the last advance's now fires on the next
 * advance. Callable from a callback (the timer then fires on a later
 * advance call, never the current one).
 * @param t an initialised timer, not armed on another wheel; it stays owned
 *        by the caller but must stay valid while armed.
 * Wheel thread.
 */
void warp__wheel_arm(struct warp_wheel *w, struct warp_timer *t, uint64_t deadline_ns);

/**
 * Disarm t. O(1); no-op if t is not armed. Callable from a callback, also
 * for a timer due in the same advance (it then does not fire).
 * Wheel thread.
 */
void warp__wheel_cancel(struct warp_wheel *w, struct warp_timer *t);

/**
 * Fire every timer whose deadline <= now_ns: each is disarmed, then its
 * callback is called with now_ns. Cost: O(1) while nothing in the current
 * tick's slot is due; else O(slots of the elapsed ticks, at most nslots)
 * plus the timers found in them. Not re-entrant: called from a
 * callback it does nothing and returns 0.
 * @param now_ns the current time; a value below the previous advance's is
 *        treated as the previous one (the clock must be monotonic).
 * @return how many callbacks were called.
 * Wheel thread.
 */
unsigned warp__wheel_advance_slow(struct warp_wheel *w, uint64_t now_ns);
static inline unsigned warp__wheel_advance(struct warp_wheel *w, uint64_t now_ns)
{
	/* A poll that finds nothing due (most of them: the tick is 100 us)
	 * costs two compares and a store here, not a call and a slot walk. */
	if (now_ns < w->quiet_ns && !w->firing) {
		if (now_ns > w->now_ns)
			w->now_ns = now_ns;
		return 0;
	}
	return warp__wheel_advance_slow(w, now_ns);
}

/**
 * Earliest deadline among armed timers, for the poll loop's sleep timeout.
 * O(nslots) when a timer is due within one rotation, O(nslots + armed
 * timers) otherwise; meant for the idle path.
 * @return the deadline (possibly already past), UINT64_MAX if none armed.
 * Wheel thread.
 */
uint64_t warp__wheel_next_deadline(const struct warp_wheel *w);

/** Number of armed timers. O(1). Wheel thread. */
unsigned warp__wheel_count(const struct warp_wheel *w);

#endif
