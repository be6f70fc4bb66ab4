/* SPDX-License-Identifier: Apache-2.0 */
/* The handshake's HELLO: encoding, every malformed input refused with its
 * reason, and capability negotiation (src/crypto/hello.c). */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crypto/hello.h"
#include "warp/error.h"

static void hello(struct warp__hello *h, const char *node)
{
	memset(h, 0, sizeof(*h));
	strcpy(h->node, node);
	h->incarnation = 0x0102030405060708ull;
}

static void cap(struct warp__hello *h, const char *name, uint16_t min, uint16_t max, int req)
{
	struct warp__cap *c = &h->caps[h->ncaps++];
	strcpy(c->name, name);
	c->min = min;
	c->max = max;
	c->flags = req ? WARP_CAP_REQUIRED : 0;
}

Test(hello, encodes_and_decodes_back)
{
	struct warp__hello h, d;
	hello(&h, "node-a.1");
	cap(&h, "protocol", 1, 1, 1);
	cap(&h, "encryption", 1, 2, 0);
	cap(&h, "compression", 0, 65535, 0);
	uint8_t b[WARP_HELLO_MAX];
	size_t n = warp__hello_encode(&h, b, sizeof(b));
	cr_assert_gt(n, 0);
	const char *why = NULL;
	cr_assert_eq(warp__hello_decode(b, n, &d, &why), 0, "%s", why);
	cr_assert_str_eq(d.node, "node-a.1");
	cr_assert_eq(d.incarnation, h.incarnation);
	cr_assert_eq(d.ncaps, 3);
	cr_assert_eq(memcmp(d.caps, h.caps, 3 * sizeof(h.caps[0])), 0);
	/* the largest HELLO fits WARP_HELLO_MAX */
	hello(&h, "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
	for (unsigned i = 0; i < WARP_HELLO_MAX_CAPS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "cap-%027u", i);
		cap(&h, name, 0, 1, 0);
	}
	cr_assert_eq(warp__hello_encode(&h, b, sizeof(b)), WARP_HELLO_MAX);
	cr_assert_eq(warp__hello_encode(&h, b, WARP_HELLO_MAX - 1), 0, "no room");
}

Test(hello, every_truncation_and_trailing_byte_is_refused)
{
	struct warp__hello h, d;
	hello(&h, "a");
	cap(&h, "protocol", 1, 1, 1);
	cap(&h, "encryption", 1, 2, 0);
	uint8_t b[WARP_HELLO_MAX + 1];
	size_t n = warp__hello_encode(&h, b, sizeof(b));
	const char *why;
	for (size_t k = 0; k < n; k++) {
		why = NULL;
		cr_assert_eq(warp__hello_decode(b, k, &d, &why), -1, "length %zu accepted", k);
		cr_assert_not_null(why);
	}
	b[n] = 0;
	cr_assert_eq(warp__hello_decode(b, n + 1, &d, &why), -1);
	cr_assert_str_eq(why, "bytes after the last capability");
}

/* Corrupt one field of a valid HELLO and expect its reason. */
static void bad(size_t at, uint8_t val, const char *reason)
{
	struct warp__hello h, d;
	hello(&h, "ab");
	cap(&h, "protocol", 1, 1, 1);
	cap(&h, "encryption", 1, 2, 0);
	uint8_t b[WARP_HELLO_MAX];
	size_t n = warp__hello_encode(&h, b, sizeof(b));
	b[at] = val;
	const char *why = NULL;
	cr_assert_eq(warp__hello_decode(b, n, &d, &why), -1, "byte %zu = %u accepted", at, val);
	cr_assert(strstr(why, reason), "byte %zu: '%s', wanted '%s'", at, why, reason);
}

Test(hello, malformed_fields_are_refused_with_their_reason)
{
	/* layout: [0] format [1] node len [2..3] "ab" [4..11] incarnation [12] ncaps
	 * [13] name len [14..21] "protocol" [22..25] min max [26] flags
	 * [27] name len [28..37] "encryption" [38..41] [42] flags */
	bad(0, 2, "unknown hello format");
	bad(1, 0, "node id length");
	bad(1, 64, "node id length");
	bad(2, ' ', "node id character");
	bad(12, WARP_HELLO_MAX_CAPS + 1, "too many capabilities");
	bad(13, 0, "capability name length");
	bad(13, 32, "capability name length");
	bad(14, 'P', "capability name character");
	bad(16, 0, "capability name character"); /* a NUL inside a name (found by fuzzing) */
	bad(3, 0, "node id character");
	bad(22, 0xff, "min above max");
	bad(26, 0x02, "unknown capability flags");
}

Test(hello, a_capability_listed_twice_is_refused)
{
	struct warp__hello h, d;
	hello(&h, "a");
	cap(&h, "encryption", 1, 2, 0);
	cap(&h, "encryption", 1, 2, 0);
	uint8_t b[WARP_HELLO_MAX];
	cr_assert_eq(warp__hello_encode(&h, b, sizeof(b)), 0, "not encoded");
	h.ncaps = 1;
	size_t n = warp__hello_encode(&h, b, sizeof(b));
	/* append a copy of the capability by hand */
	memcpy(b + n, b + n - 16, 16);
	b[11] = 2; /* the capability count (node id "a") */
	const char *why = NULL;
	cr_assert_eq(warp__hello_decode(b, n + 16, &d, &why), -1);
	cr_assert_str_eq(why, "capability listed twice");
}

static int nego(const struct warp__hello *l, const struct warp__hello *p,
		struct warp__cap_choice *out, unsigned *n, char *err)
{
	return warp__caps_negotiate(l, p, out, n, err, 200);
}

static uint16_t version_of(const struct warp__cap_choice *c, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return c[i].version;
	cr_assert_fail("no choice for %s", name);
	return 0;
}

Test(hello, the_highest_common_version_is_chosen_the_same_on_both_sides)
{
	struct warp__hello a, b;
	hello(&a, "a");
	hello(&b, "b");
	cap(&a, "protocol", 1, 3, 1);
	cap(&b, "protocol", 2, 5, 1);
	cap(&a, "encryption", 1, 2, 0);
	cap(&b, "encryption", 3, 4, 0); /* no common version, not required: off */
	cap(&a, "compression", 1, 1, 0); /* only a offers it: off */
	cap(&b, "zz-later", 1, 9, 0);
	struct warp__cap_choice x[32], y[32];
	unsigned nx, ny;
	char err[200];
	cr_assert_eq(nego(&a, &b, x, &nx, err), 0, "%s", err);
	cr_assert_eq(nego(&b, &a, y, &ny, err), 0, "%s", err);
	cr_assert_eq(nx, 4);
	cr_assert_eq(nx, ny);
	cr_assert_eq(memcmp(x, y, nx * sizeof(x[0])), 0, "both sides agree");
	cr_assert_eq(version_of(x, nx, "protocol"), 3);
	cr_assert_eq(version_of(x, nx, "encryption"), 0);
	cr_assert_eq(version_of(x, nx, "compression"), 0);
	cr_assert_eq(version_of(x, nx, "zz-later"), 0);
	cr_assert_str_eq(x[0].name, "compression", "sorted by name");
}

Test(hello, no_common_version_of_a_required_capability_fails_both_sides_naming_both_ranges)
{
	struct warp__hello a, b;
	hello(&a, "a");
	hello(&b, "b");
	cap(&a, "encryption", 1, 2, 1);
	cap(&b, "encryption", 3, 4, 0);
	struct warp__cap_choice x[32];
	unsigned n;
	char ea[200], eb[200];
	cr_assert_eq(nego(&a, &b, x, &n, ea), WARP_EPROTO);
	cr_assert_eq(nego(&b, &a, x, &n, eb), WARP_EPROTO);
	cr_assert_str_eq(ea, "capability 'encryption': no common version (local 1..2, peer 3..4)");
	cr_assert_str_eq(eb, "capability 'encryption': no common version (local 3..4, peer 1..2)");
}

Test(hello, a_required_capability_the_other_side_lacks_fails_both_sides)
{
	struct warp__hello a, b;
	hello(&a, "a");
	hello(&b, "b");
	cap(&a, "encryption", 1, 1, 1);
	struct warp__cap_choice x[32];
	unsigned n;
	char ea[200], eb[200];
	cr_assert_eq(nego(&a, &b, x, &n, ea), WARP_EPROTO);
	cr_assert_eq(nego(&b, &a, x, &n, eb), WARP_EPROTO);
	cr_assert_str_eq(ea, "capability 'encryption': required by the local node (1..1), not "
			     "offered by the peer");
	cr_assert_str_eq(eb, "capability 'encryption': required by the peer (1..1), not offered "
			     "here");
}
