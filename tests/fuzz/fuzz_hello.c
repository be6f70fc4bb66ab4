/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: one input = one HELLO body (the handshake's identity and
 * capabilities). A HELLO that parses must encode back to the same bytes,
 * and is negotiated against a fixed local HELLO in both directions, which
 * must agree (same outcome, same choices).
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/hello.h"
#include "fuzz.h"

static void local_hello(struct warp__hello *h)
{
	memset(h, 0, sizeof(*h));
	strcpy(h->node, "local");
	h->incarnation = 42;
	h->ncaps = 3;
	h->caps[0] = (struct warp__cap){ "protocol", 1, 1, WARP_CAP_REQUIRED };
	h->caps[1] = (struct warp__cap){ "encryption", 1, 2, 0 };
	h->caps[2] = (struct warp__cap){ "compression", 0, 3, 0 };
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct warp__hello h, l;
	const char *why = NULL;
	if (warp__hello_decode(data, size, &h, &why)) {
		if (!why)
			abort(); /* every refusal names its reason */
		return 0;
	}
	uint8_t again[WARP_HELLO_MAX];
	size_t n = warp__hello_encode(&h, again, sizeof(again));
	if (n != size || memcmp(again, data, size) != 0)
		abort(); /* a parsed HELLO encodes back to the same bytes */
	local_hello(&l);
	struct warp__cap_choice a[2 * WARP_HELLO_MAX_CAPS], b[2 * WARP_HELLO_MAX_CAPS];
	unsigned na, nb;
	char ea[160], eb[160];
	int ra = warp__caps_negotiate(&l, &h, a, &na, ea, sizeof(ea));
	int rb = warp__caps_negotiate(&h, &l, b, &nb, eb, sizeof(eb));
	if (ra != rb)
		abort(); /* both ends reach the same outcome */
	if (!ra && (na != nb || memcmp(a, b, na * sizeof(a[0])) != 0))
		abort(); /* ... and the same choices */
	return 0;
}

size_t warp_fuzz_seeds(uint8_t seeds[][1600], size_t max)
{
	size_t n = 0;
	struct warp__hello h;
	local_hello(&h);
	for (unsigned k = 0; k <= 3 && n < max; k++, n++) {
		h.ncaps = (uint8_t)k;
		size_t len = warp__hello_encode(&h, seeds[n], 1598);
		seeds[n][1598] = (uint8_t)(len >> 8);
		seeds[n][1599] = (uint8_t)len;
	}
	return n;
}
