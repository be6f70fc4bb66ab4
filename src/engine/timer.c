/* SPDX-License-Identifier: Apache-2.0 */
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "engine/timer.h"
#include "warp/error.h"

/* Circular lists with a sentinel head: an armed timer is always linked
 * (next != NULL), so unlinking never needs to know which list holds it. */
static inline void list_init(struct warp_timer *head)
{
	head->next = head;
	head->prev = head;
}

static inline int list_empty(const struct warp_timer *head)
{
	return head->next == head;
}

static inline void list_add_tail(struct warp_timer *head, struct warp_timer *t)
{
	t->prev = head->prev;
	t->next = head;
	head->prev->next = t;
	head->prev = t;
}

static inline void list_del(struct warp_timer *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = NULL;
	t->prev = NULL;
}

void warp__timer_init(struct warp_timer *t, warp_timer_fn fn)
{
	t->next = NULL;
	t->prev = NULL;
	t->deadline_ns = 0;
	t->fn = fn;
}

int warp__wheel_init(struct warp_wheel *w, uint32_t nslots, uint64_t tick_ns, uint64_t now_ns)
{
	if (!w || nslots == 0 || (nslots & (nslots - 1)) != 0 || tick_ns == 0)
		return WARP_EINVAL;
	w->slots = warp__calloc(nslots, sizeof(*w->slots));
	if (!w->slots)
		return WARP_ENOMEM;
	for (uint32_t i = 0; i < nslots; i++)
		list_init(&w->slots[i]);
	list_init(&w->due);
	w->due.fn = NULL;
	w->tick_ns = tick_ns;
	w->now_ns = now_ns;
	w->mask = nslots - 1;
	w->tick_shift = (tick_ns & (tick_ns - 1)) == 0 ? (uint32_t)__builtin_ctzll(tick_ns) : 64;
	w->tick_recip = UINT64_MAX / tick_ns;
	w->quiet_ns = 0;
	w->count = 0;
	w->firing = 0;
	return 0;
}

static void disarm_all(struct warp_timer *head)
{
	while (!list_empty(head))
		list_del(head->next);
}

void warp__wheel_fini(struct warp_wheel *w)
{
	if (!w || !w->slots)
		return;
	for (uint32_t i = 0; i <= w->mask; i++)
		disarm_all(&w->slots[i]);
	disarm_all(&w->due);
	warp__free(w->slots);
	w->slots = NULL;
	w->count = 0;
}

void warp__wheel_arm(struct warp_wheel *w, struct warp_timer *t, uint64_t deadline_ns)
{
	if (t->next)
		list_del(t);
	else
		w->count++;
	t->deadline_ns = deadline_ns;
	if (deadline_ns < w->quiet_ns)
		w->quiet_ns = deadline_ns;
	/* A past deadline goes to the slot of the current tick, which the next
	 * advance visits first. */
	uint64_t at = deadline_ns > w->now_ns ? deadline_ns : w->now_ns;
	list_add_tail(&w->slots[warp__wheel_tick_of(w, at) & w->mask], t);
}

void warp__wheel_cancel(struct warp_wheel *w, struct warp_timer *t)
{
	if (!t->next)
		return;
	list_del(t);
	w->count--;
}

/* Move the timers of one slot whose deadline <= now to the due list.
 * Returns the earliest deadline of those left (UINT64_MAX: none). */
static uint64_t collect(struct warp_wheel *w, struct warp_timer *head, uint64_t now_ns)
{
	uint64_t left = UINT64_MAX;
	struct warp_timer *t = head->next;
	while (t != head) {
		struct warp_timer *next = t->next;
		if (t->deadline_ns <= now_ns) {
			list_del(t);
			list_add_tail(&w->due, t);
		} else if (t->deadline_ns < left) {
			left = t->deadline_ns;
		}
		t = next;
	}
	return left;
}

unsigned warp__wheel_advance_slow(struct warp_wheel *w, uint64_t now_ns)
{
	if (warp__unlikely(w->firing))
		return 0;
	if (now_ns < w->now_ns)
		now_ns = w->now_ns;

	/* Every deadline in (previous now, now] has its tick in [first, last];
	 * timers armed in the past sit in the slot of `first`. */
	uint64_t first = warp__wheel_tick_of(w, w->now_ns);
	uint64_t last = warp__wheel_tick_of(w, now_ns);
	uint64_t nvisit = last - first >= w->mask ? (uint64_t)w->mask + 1 : last - first + 1;
	w->now_ns = now_ns;
	/* Until the tick ends, only the timers left in its slot can come due
	 * (every other slot's timers are due in a later tick), and what is
	 * armed meanwhile lowers quiet_ns itself. 0 (no fast path) where the
	 * end of the tick does not fit in 64 bits. */
	uint64_t tick_end = last < UINT64_MAX / w->tick_ns ? (last + 1) * w->tick_ns : 0;
	if (w->count == 0) {
		w->quiet_ns = tick_end;
		return 0;
	}
	uint64_t left = UINT64_MAX; /* of the slot of `last` */
	for (uint64_t i = 0; i < nvisit; i++) {
		uint64_t k = (first + i) & w->mask;
		uint64_t l = collect(w, &w->slots[k], now_ns);
		if (k == (last & w->mask))
			left = l;
	}
	w->quiet_ns = WARP__MIN(tick_end, left);

	/* Callbacks run only now: whatever they arm lands in the slots, not in
	 * the due list, so it cannot fire again in this call; whatever they
	 * cancel or move leaves the due list. */
	unsigned fired = 0;
	w->firing = 1;
	while (!list_empty(&w->due)) {
		struct warp_timer *t = w->due.next;
		list_del(t);
		w->count--;
		fired++;
		t->fn(t, now_ns);
	}
	w->firing = 0;
	return fired;
}

uint64_t warp__wheel_next_deadline(const struct warp_wheel *w)
{
	uint64_t best = UINT64_MAX;
	if (w->count == 0)
		return best;
	for (const struct warp_timer *t = w->due.next; t != &w->due; t = t->next)
		best = WARP__MIN(best, t->deadline_ns);

	/* Walk one rotation in tick order from the current tick. In slot k,
	 * a timer whose deadline tick is <= k is due in this rotation (or is
	 * already past); the first slot holding such a timer holds the
	 * earliest deadline of the slots, because every other timer has a
	 * deadline tick > k. */
	uint64_t first = warp__wheel_tick_of(w, w->now_ns);
	for (uint64_t i = 0; i <= w->mask; i++) {
		uint64_t k = first + i;
		const struct warp_timer *head = &w->slots[k & w->mask];
		uint64_t slot_best = UINT64_MAX;
		int found = 0;
		for (const struct warp_timer *t = head->next; t != head; t = t->next) {
			slot_best = WARP__MIN(slot_best, t->deadline_ns);
			found |= warp__wheel_tick_of(w, t->deadline_ns) <= k;
		}
		if (found)
			return WARP__MIN(best, slot_best);
	}

	/* Every timer is at least one rotation away: plain minimum. */
	for (uint32_t i = 0; i <= w->mask; i++) {
		const struct warp_timer *head = &w->slots[i];
		for (const struct warp_timer *t = head->next; t != head; t = t->next)
			best = WARP__MIN(best, t->deadline_ns);
	}
	return best;
}

unsigned warp__wheel_count(const struct warp_wheel *w)
{
	return w->count;
}
