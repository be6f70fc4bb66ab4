/* SPDX-License-Identifier: Apache-2.0 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "engine/timer.h"
#include "warp/config.h"
#include "warp/error.h"

/* A test object embedding a timer, as engine objects do. */
struct obj {
	struct warp_timer timer;
	unsigned fired;
	uint64_t fired_at;
	uint64_t period;	 /* re-arm by this much from the callback, 0 = no */
	struct obj *victim;	 /* cancel this one from the callback */
	struct obj *rearm_other; /* re-arm this one from the callback */
	uint64_t rearm_other_at;
};

static struct warp_wheel *cur_wheel;

static void obj_fire(struct warp_timer *t, uint64_t now_ns)
{
	struct obj *o = warp__container_of(t, struct obj, timer);
	cr_assert(!warp__timer_armed(t), "disarmed before the callback");
	cr_assert(now_ns >= t->deadline_ns, "fired early: now %llu deadline %llu",
		  (unsigned long long)now_ns, (unsigned long long)t->deadline_ns);
	o->fired++;
	o->fired_at = now_ns;
	if (o->victim)
		warp__wheel_cancel(cur_wheel, &o->victim->timer);
	if (o->rearm_other)
		warp__wheel_arm(cur_wheel, &o->rearm_other->timer, o->rearm_other_at);
	if (o->period)
		warp__wheel_arm(cur_wheel, t, t->deadline_ns + o->period);
}

static void obj_init(struct obj *o)
{
	memset(o, 0, sizeof(*o));
	warp__timer_init(&o->timer, obj_fire);
}

static struct warp_wheel wheel;

static void setup(void)
{
	cr_assert_eq(warp__wheel_init(&wheel, 64, 1000, 0), 0);
	cur_wheel = &wheel;
}

static void teardown(void)
{
	warp__wheel_fini(&wheel);
}

TestSuite(timer, .init = setup, .fini = teardown);

Test(timer, init_rejects_bad_arguments)
{
	struct warp_wheel w;
	cr_assert_eq(warp__wheel_init(NULL, 64, 1000, 0), WARP_EINVAL);
	cr_assert_eq(warp__wheel_init(&w, 0, 1000, 0), WARP_EINVAL);
	cr_assert_eq(warp__wheel_init(&w, 48, 1000, 0), WARP_EINVAL);
	cr_assert_eq(warp__wheel_init(&w, 64, 0, 0), WARP_EINVAL);
	cr_assert_eq(warp__wheel_init(&w, 1, 1, 0), 0);
	warp__wheel_fini(&w);
}

Test(timer, empty_wheel)
{
	cr_assert_eq(warp__wheel_count(&wheel), 0);
	cr_assert_eq(warp__wheel_next_deadline(&wheel), UINT64_MAX);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000000), 0);
}

Test(timer, fires_at_exact_deadline_not_one_ns_before)
{
	struct obj a, b;
	obj_init(&a);
	obj_init(&b);
	warp__wheel_arm(&wheel, &a.timer, 5500); /* inside a tick */
	warp__wheel_arm(&wheel, &b.timer, 7000); /* on a tick boundary */
	cr_assert(warp__timer_armed(&a.timer));
	cr_assert_eq(warp__wheel_count(&wheel), 2);
	cr_assert_eq(warp__wheel_next_deadline(&wheel), 5500);
	cr_assert_eq(warp__wheel_advance(&wheel, 5499), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 5500), 1);
	cr_assert_eq(a.fired, 1);
	cr_assert_eq(a.fired_at, 5500);
	cr_assert(!warp__timer_armed(&a.timer));
	cr_assert_eq(warp__wheel_next_deadline(&wheel), 7000);
	cr_assert_eq(warp__wheel_advance(&wheel, 6999), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 7000), 1);
	cr_assert_eq(b.fired, 1);
	cr_assert_eq(warp__wheel_count(&wheel), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 100000), 0);
	cr_assert_eq(a.fired + b.fired, 2);
}

Test(timer, cancel)
{
	struct obj a, b;
	obj_init(&a);
	obj_init(&b);
	warp__wheel_cancel(&wheel, &a.timer); /* not armed: no-op */
	cr_assert_eq(warp__wheel_count(&wheel), 0);
	warp__wheel_arm(&wheel, &a.timer, 3000);
	warp__wheel_arm(&wheel, &b.timer, 3000);
	warp__wheel_cancel(&wheel, &a.timer);
	warp__wheel_cancel(&wheel, &a.timer);
	cr_assert(!warp__timer_armed(&a.timer));
	cr_assert_eq(warp__wheel_count(&wheel), 1);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000000), 1);
	cr_assert_eq(a.fired, 0);
	cr_assert_eq(b.fired, 1);
}

Test(timer, rearm_moves)
{
	struct obj a;
	obj_init(&a);
	warp__wheel_arm(&wheel, &a.timer, 1000);
	warp__wheel_arm(&wheel, &a.timer, 50000); /* later */
	cr_assert_eq(warp__wheel_count(&wheel), 1);
	cr_assert_eq(warp__wheel_next_deadline(&wheel), 50000);
	for (uint64_t now = 500; now < 50000; now += 500)
		cr_assert_eq(warp__wheel_advance(&wheel, now), 0, "now %llu",
			     (unsigned long long)now);
	cr_assert_eq(warp__wheel_advance(&wheel, 50000), 1);
	warp__wheel_arm(&wheel, &a.timer, 90000);
	warp__wheel_arm(&wheel, &a.timer, 60000); /* earlier */
	cr_assert_eq(warp__wheel_advance(&wheel, 59999), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 60000), 1);
	cr_assert_eq(warp__wheel_advance(&wheel, 90000), 0);
	cr_assert_eq(a.fired, 2);
}

Test(timer, past_deadline_fires_on_next_advance)
{
	struct obj a, b, c;
	obj_init(&a);
	obj_init(&b);
	obj_init(&c);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000000), 0);
	warp__wheel_arm(&wheel, &a.timer, 0);
	warp__wheel_arm(&wheel, &b.timer, 999999);
	warp__wheel_arm(&wheel, &c.timer, 1000000); /* == now */
	cr_assert_eq(warp__wheel_next_deadline(&wheel), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000000), 3); /* same now */
	cr_assert_eq(a.fired + b.fired + c.fired, 3);
	/* also when the next advance is many rotations later */
	warp__wheel_arm(&wheel, &a.timer, 5);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000000 + 64 * 1000 * 7 + 333), 1);
	cr_assert_eq(a.fired, 2);
}

Test(timer, time_going_backwards_is_ignored)
{
	struct obj a;
	obj_init(&a);
	cr_assert_eq(warp__wheel_advance(&wheel, 10000), 0);
	warp__wheel_arm(&wheel, &a.timer, 10500);
	cr_assert_eq(warp__wheel_advance(&wheel, 5000), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 10499), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 10500), 1);
}

/* Deadlines many rotations away wait in their slot and fire on the first
 * advance at or after the deadline, for both the shift and divide paths. */
static void check_far_timers(uint64_t tick)
{
	struct warp_wheel w;
	cr_assert_eq(warp__wheel_init(&w, 8, tick, 0), 0);
	cur_wheel = &w;
	struct obj o[5];
	uint64_t dl[5] = {8 * tick * 10 + 37, 8 * tick + 1, 8 * tick * 3,
			  8 * tick * 1000 + tick - 1, tick * 3 + 1};
	for (int i = 0; i < 5; i++) {
		obj_init(&o[i]);
		warp__wheel_arm(&w, &o[i].timer, dl[i]);
	}
	cr_assert_eq(warp__wheel_next_deadline(&w), tick * 3 + 1);
	uint64_t prev = 0;
	for (uint64_t now = tick / 3; now <= 8 * tick * 1001; now += tick / 3 + 1) {
		warp__wheel_advance(&w, now);
		for (int i = 0; i < 5; i++) {
			if (dl[i] > now)
				cr_assert_eq(o[i].fired, 0, "timer %d fired early at %llu", i,
					     (unsigned long long)now);
			else if (dl[i] > prev)
				cr_assert_eq(o[i].fired_at, now, "timer %d late", i);
			if (dl[i] <= now)
				cr_assert_eq(o[i].fired, 1);
		}
		prev = now;
	}
	cr_assert_eq(warp__wheel_count(&w), 0);
	warp__wheel_fini(&w);
	cur_wheel = &wheel;
}

Test(timer, far_beyond_one_rotation)
{
	check_far_timers(1000); /* divide */
	check_far_timers(1024); /* shift */
}

Test(timer, next_deadline_beyond_rotation)
{
	struct obj a, b;
	obj_init(&a);
	obj_init(&b);
	/* a is 3 rotations away in slot 5; b 2 rotations away in slot 9 */
	warp__wheel_arm(&wheel, &a.timer, (3 * 64 + 5) * 1000 + 1);
	warp__wheel_arm(&wheel, &b.timer, (2 * 64 + 9) * 1000 + 1);
	cr_assert_eq(warp__wheel_next_deadline(&wheel), (2 * 64 + 9) * 1000 + 1);
	cr_assert_eq(warp__wheel_advance(&wheel, (2 * 64 + 9) * 1000), 0);
	cr_assert_eq(warp__wheel_next_deadline(&wheel), (2 * 64 + 9) * 1000 + 1);
	cr_assert_eq(warp__wheel_advance(&wheel, (2 * 64 + 9) * 1000 + 1), 1);
	cr_assert_eq(warp__wheel_next_deadline(&wheel), (3 * 64 + 5) * 1000 + 1);
	warp__wheel_cancel(&wheel, &a.timer);
}

Test(timer, large_time_jump_fires_everything_due)
{
	static struct obj o[1000];
	for (int i = 0; i < 1000; i++) {
		obj_init(&o[i]);
		warp__wheel_arm(&wheel, &o[i].timer, (uint64_t)i * 997 * 1000 + 1);
	}
	cr_assert_eq(warp__wheel_count(&wheel), 1000);
	uint64_t jump = 500ull * 997 * 1000; /* ~7800 rotations */
	cr_assert_eq(warp__wheel_advance(&wheel, jump), 500); /* i = 0..499 */
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(o[i].fired, i < 500 ? 1u : 0u, "timer %d", i);
	cr_assert_eq(warp__wheel_next_deadline(&wheel), jump + 1);
	cr_assert_eq(warp__wheel_advance(&wheel, UINT64_MAX), 500);
	cr_assert_eq(warp__wheel_count(&wheel), 0);
}

Test(timer, periodic_heartbeat)
{
	struct obj hb;
	obj_init(&hb);
	hb.period = 7 * 1000;
	warp__wheel_arm(&wheel, &hb.timer, 7 * 1000);
	for (uint64_t tick = 1; tick <= 1000; tick++) {
		warp__wheel_advance(&wheel, tick * 1000);
		cr_assert_eq(hb.fired, tick / 7);
	}
	cr_assert_eq(hb.fired, 142);
	cr_assert_eq(hb.fired_at, 994 * 1000);
	cr_assert_eq(warp__wheel_next_deadline(&wheel), 1001 * 1000);
	warp__wheel_cancel(&wheel, &hb.timer);
}

Test(timer, self_rearm_in_the_past_does_not_loop)
{
	struct obj a;
	obj_init(&a);
	a.period = 1; /* next deadline = old + 1 ns, far below now */
	warp__wheel_arm(&wheel, &a.timer, 10);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000000), 1);
	cr_assert(warp__timer_armed(&a.timer));
	cr_assert_eq(warp_timer_deadline(&a.timer), 11);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000000), 1);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000001), 1);
	cr_assert_eq(a.fired, 3);
	warp__wheel_cancel(&wheel, &a.timer);
	cr_assert_eq(warp__wheel_count(&wheel), 0);
}

Test(timer, callback_cancels_timer_due_in_same_advance)
{
	struct obj a, b;
	obj_init(&a);
	obj_init(&b);
	/* whichever fires first cancels the other: exactly one fires */
	a.victim = &b;
	b.victim = &a;
	warp__wheel_arm(&wheel, &a.timer, 5000);
	warp__wheel_arm(&wheel, &b.timer, 5000);
	cr_assert_eq(warp__wheel_advance(&wheel, 5000), 1);
	cr_assert_eq(a.fired + b.fired, 1);
	cr_assert_eq(warp__wheel_count(&wheel), 0);
	/* same across slots, within one multi-slot advance */
	a.fired = b.fired = 0;
	warp__wheel_arm(&wheel, &a.timer, 6000);
	warp__wheel_arm(&wheel, &b.timer, 9500);
	cr_assert_eq(warp__wheel_advance(&wheel, 20000), 1);
	cr_assert_eq(a.fired + b.fired, 1);
	cr_assert_eq(warp__wheel_advance(&wheel, 30000), 0);
}

Test(timer, callback_arms_and_moves_other_timers)
{
	struct obj a, b, c;
	obj_init(&a);
	obj_init(&b);
	obj_init(&c);
	/* a arms b for a past deadline: b fires on the next advance, not this one */
	a.rearm_other = &b;
	a.rearm_other_at = 1;
	warp__wheel_arm(&wheel, &a.timer, 1000);
	cr_assert_eq(warp__wheel_advance(&wheel, 3000), 1);
	cr_assert_eq(b.fired, 0);
	cr_assert(warp__timer_armed(&b.timer));
	cr_assert_eq(warp__wheel_next_deadline(&wheel), 1);
	cr_assert_eq(warp__wheel_advance(&wheel, 3000), 1);
	cr_assert_eq(b.fired, 1);
	/* a moves c, which is due in the same advance, into the future */
	obj_init(&a);
	a.rearm_other = &c;
	a.rearm_other_at = 100000;
	warp__wheel_arm(&wheel, &a.timer, 4000);
	warp__wheel_arm(&wheel, &c.timer, 4000);
	cr_assert_eq(warp__wheel_advance(&wheel, 4000), 1);
	cr_assert_eq(c.fired, 0);
	cr_assert_eq(warp__wheel_count(&wheel), 1);
	cr_assert_eq(warp__wheel_advance(&wheel, 99999), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 100000), 1);
	cr_assert_eq(c.fired, 1);
}

static unsigned nested_result;

static void nested_fire(struct warp_timer *t, uint64_t now_ns)
{
	(void)t;
	nested_result = warp__wheel_advance(cur_wheel, now_ns + 1000000);
}

Test(timer, advance_from_callback_is_a_noop)
{
	struct warp_timer t;
	struct obj b;
	warp__timer_init(&t, nested_fire);
	obj_init(&b);
	warp__wheel_arm(&wheel, &t, 1000);
	warp__wheel_arm(&wheel, &b.timer, 50000);
	nested_result = 99;
	cr_assert_eq(warp__wheel_advance(&wheel, 1000), 1);
	cr_assert_eq(nested_result, 0);
	cr_assert_eq(b.fired, 0);
	warp__wheel_cancel(&wheel, &b.timer); /* b leaves scope */
}

Test(timer, fini_disarms)
{
	struct warp_wheel w;
	struct obj a;
	obj_init(&a);
	cr_assert_eq(warp__wheel_init(&w, 16, 100, 0), 0);
	warp__wheel_arm(&w, &a.timer, 12345);
	warp__wheel_fini(&w);
	cr_assert(!warp__timer_armed(&a.timer));
	cr_assert_eq(a.fired, 0);
}

Test(timer, no_allocation_after_init)
{
	struct obj a;
	obj_init(&a);
	a.period = 3000;
	uint64_t before = warp__alloc_count();
	warp__wheel_arm(&wheel, &a.timer, 10);
	for (uint64_t now = 0; now < 1000000; now += 777)
		warp__wheel_advance(&wheel, now);
	(void)warp__wheel_next_deadline(&wheel);
	warp__wheel_cancel(&wheel, &a.timer);
	cr_assert_eq(warp__alloc_count(), before);
	cr_assert_gt(a.fired, 300);
}

/* ---- randomized comparison against a reference model ---- */

#define NRAND 10000

struct rtimer {
	struct warp_timer timer;
	int armed;	    /* model */
	uint64_t deadline;  /* model */
	uint64_t armed_gen; /* advance call during which it was last armed */
	unsigned fires;
};

static struct rtimer rt[NRAND];
static uint64_t rng_state;
static uint64_t model_now, model_gen;
static unsigned fired_this_gen;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t rand_deadline(uint64_t tick, uint32_t nslots)
{
	uint64_t r = rng() % 16;
	if (r == 0) /* in the past */
		return model_now - WARP__MIN(model_now, rng() % (tick * 10));
	if (r < 3) /* several rotations away */
		return model_now + rng() % (tick * nslots * 8);
	return model_now + rng() % (tick * nslots / 2);
}

static void model_arm(struct rtimer *r, uint64_t dl)
{
	warp__wheel_arm(cur_wheel, &r->timer, dl);
	r->armed = 1;
	r->deadline = dl;
	r->armed_gen = model_gen;
}

static void model_cancel(struct rtimer *r)
{
	warp__wheel_cancel(cur_wheel, &r->timer);
	r->armed = 0;
}

static uint64_t rand_tick, rand_nslots;

static void rand_fire(struct warp_timer *t, uint64_t now_ns)
{
	struct rtimer *r = warp__container_of(t, struct rtimer, timer);
	cr_assert_eq(now_ns, model_now);
	cr_assert(r->armed, "timer %td fired while not armed (twice?)", r - rt);
	cr_assert(r->armed_gen != model_gen, "timer %td armed in this advance fired", r - rt);
	cr_assert_leq(r->deadline, now_ns, "timer %td fired early", r - rt);
	r->armed = 0;
	r->fires++;
	fired_this_gen++;
	uint64_t x = rng() % 16;
	if (x < 3) /* re-arm self, sometimes in the past */
		model_arm(r, rand_deadline(rand_tick, (uint32_t)rand_nslots));
	else if (x == 3) /* cancel a random one, maybe due in this advance */
		model_cancel(&rt[rng() % NRAND]);
	else if (x == 4) /* move a random one */
		model_arm(&rt[rng() % NRAND], rand_deadline(rand_tick, (uint32_t)rand_nslots));
}

static void run_random(uint32_t nslots, uint64_t tick, uint64_t seed, uint64_t start)
{
	struct warp_wheel w;
	rng_state = seed;
	model_now = start;
	model_gen = 0;
	rand_tick = tick;
	rand_nslots = nslots;
	cr_assert_eq(warp__wheel_init(&w, nslots, tick, start), 0);
	cur_wheel = &w;
	for (int i = 0; i < NRAND; i++) {
		memset(&rt[i], 0, sizeof(rt[i]));
		warp__timer_init(&rt[i].timer, rand_fire);
		model_arm(&rt[i], rand_deadline(tick, nslots));
	}
	uint64_t total_fires = 0;
	for (int step = 0; step < 3000; step++) {
		/* a few random arms / cancels between advances */
		for (int k = rng() % 8; k > 0; k--) {
			struct rtimer *r = &rt[rng() % NRAND];
			if (rng() % 3 == 0)
				model_cancel(r);
			else
				model_arm(r, rand_deadline(tick, nslots));
		}
		/* the model's minimum and count */
		uint64_t min = UINT64_MAX;
		unsigned armed = 0;
		for (int i = 0; i < NRAND; i++) {
			if (rt[i].armed) {
				armed++;
				min = WARP__MIN(min, rt[i].deadline);
			}
		}
		cr_assert_eq(warp__wheel_count(&w), armed, "step %d", step);
		cr_assert_eq(warp__wheel_next_deadline(&w), min, "step %d", step);

		uint64_t r = rng() % 100, adv;
		if (r < 60)
			adv = rng() % tick;
		else if (r < 95)
			adv = rng() % (tick * 20);
		else if (r < 99)
			adv = rng() % (tick * nslots * 3);
		else
			adv = 0;
		model_now += adv;
		model_gen++;
		fired_this_gen = 0;
		unsigned n = warp__wheel_advance(&w, model_now);
		cr_assert_eq(n, fired_this_gen);
		total_fires += n;
		/* everything due and armed before this advance has fired */
		for (int i = 0; i < NRAND; i++) {
			if (rt[i].armed && rt[i].deadline <= model_now)
				cr_assert_eq(rt[i].armed_gen, model_gen,
					     "step %d: timer %d (deadline %llu) missed at now %llu",
					     step, i, (unsigned long long)rt[i].deadline,
					     (unsigned long long)model_now);
			cr_assert_eq(warp__timer_armed(&rt[i].timer), rt[i].armed);
		}
	}
	cr_assert_gt(total_fires, NRAND, "the test exercised firing");
	warp__wheel_fini(&w);
	cur_wheel = &wheel;
}

Test(timer, randomized_vs_model_divide)
{
	run_random(256, 1000, 0x9e3779b97f4a7c15ull, 0);
}

Test(timer, randomized_vs_model_shift)
{
	run_random(64, 1024, 0xdeadbeefcafef00dull, 123456789);
}

Test(timer, randomized_vs_model_one_slot)
{
	run_random(1, 500, 42, 7);
}

/* The default tick (100 us, not a power of two: tick_of multiplies by a
 * reciprocal) far from zero, where the reciprocal's error is largest. */
Test(timer, randomized_vs_model_default_tick_late)
{
	run_random(512, WARP_DEFAULT_TIMER_TICK_NS, 0x0123456789abcdefull, (1ull << 62) + 99999);
	run_random(8, 999999937ull, 7, UINT64_MAX / 2 - 3);
}

/* The reciprocal division is exact: against `/` for ticks that are not
 * powers of two, at values near every end of the range. */
Test(timer, tick_of_is_the_exact_quotient)
{
	static const uint64_t ticks[] = { 3, 1000, WARP_DEFAULT_TIMER_TICK_NS, 999999937ull,
					  (1ull << 40) + 1, UINT64_MAX / 3, UINT64_MAX - 1 };
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t k = 0; k < sizeof(ticks) / sizeof(ticks[0]); k++) {
		struct warp_wheel w;
		cr_assert_eq(warp__wheel_init(&w, 8, ticks[k], 0), 0);
		cr_assert_eq(w.tick_shift, 64, "%" PRIu64 " is not a power of two", ticks[k]);
		for (int i = 0; i < 200000; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			uint64_t d = ticks[k];
			uint64_t ns[] = { x, x >> 1, x >> 20, UINT64_MAX - x % 1000000,
					  (x / d) * d, (x / d) * d - 1, (uint64_t)i };
			for (size_t j = 0; j < sizeof(ns) / sizeof(ns[0]); j++)
				cr_assert_eq(warp__wheel_tick_of(&w, ns[j]), ns[j] / d,
					     "tick %" PRIu64 ", ns %" PRIu64, d, ns[j]);
		}
		warp__wheel_fini(&w);
	}
}

/* The quiet fast path of warp__wheel_advance: between two advances in one
 * tick, a timer armed for later in that tick must still fire on time. */
Test(timer, armed_after_an_empty_advance_fires_in_the_same_tick)
{
	struct obj a;
	obj_init(&a);
	cr_assert_eq(warp__wheel_advance(&wheel, 100), 0); /* empty: quiet to 1000 */
	warp__wheel_arm(&wheel, &a.timer, 500);
	cr_assert_eq(warp__wheel_advance(&wheel, 499), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 500), 1);
	cr_assert_eq(a.fired_at, 500);
}

Test(timer, the_rest_of_a_slot_fires_later_in_its_tick)
{
	struct obj a, b, c;
	obj_init(&a);
	obj_init(&b);
	obj_init(&c);
	warp__wheel_arm(&wheel, &a.timer, 300);
	warp__wheel_arm(&wheel, &b.timer, 700);
	cr_assert_eq(warp__wheel_advance(&wheel, 300), 1);
	cr_assert_eq(a.fired, 1);
	/* armed after the advance, earlier than b: lowers the quiet mark */
	warp__wheel_arm(&wheel, &c.timer, 600);
	cr_assert_eq(warp__wheel_advance(&wheel, 599), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 600), 1);
	cr_assert_eq(c.fired, 1);
	cr_assert_eq(b.fired, 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 699), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 700), 1);
	cr_assert_eq(b.fired_at, 700);
}

Test(timer, a_callback_rearming_within_the_tick_fires_again)
{
	struct obj a;
	obj_init(&a);
	a.period = 100;
	warp__wheel_arm(&wheel, &a.timer, 200);
	cr_assert_eq(warp__wheel_advance(&wheel, 250), 1); /* re-armed for 300 */
	cr_assert_eq(warp__wheel_advance(&wheel, 299), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 300), 1);
	cr_assert_eq(a.fired, 2);
	warp__wheel_cancel(&wheel, &a.timer); /* re-armed for 400: a is on the stack */
}

Test(timer, a_timer_one_rotation_ahead_in_the_current_slot_waits)
{
	struct obj a, b;
	obj_init(&a);
	obj_init(&b);
	/* 64 slots of 1000 ns: 64,500 is in slot 0, the slot of tick 0 */
	warp__wheel_arm(&wheel, &a.timer, 64500);
	cr_assert_eq(warp__wheel_advance(&wheel, 900), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000), 0); /* the next tick */
	warp__wheel_arm(&wheel, &b.timer, 1200);
	cr_assert_eq(warp__wheel_advance(&wheel, 1200), 1);
	cr_assert_eq(warp__wheel_advance(&wheel, 64499), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 64500), 1);
	cr_assert_eq(a.fired_at, 64500);
}

Test(timer, a_clock_far_ahead_jumps_every_slot_and_keeps_firing)
{
	struct obj a, b;
	obj_init(&a);
	obj_init(&b);
	warp__wheel_arm(&wheel, &a.timer, 5000);
	/* more than a rotation at once: every slot visited */
	cr_assert_eq(warp__wheel_advance(&wheel, 1000000), 1);
	/* the slot of the new tick holds nothing: later arms still fire */
	warp__wheel_arm(&wheel, &b.timer, 1000400);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000399), 0);
	cr_assert_eq(warp__wheel_advance(&wheel, 1000400), 1);
	cr_assert_eq(b.fired_at, 1000400);
}
