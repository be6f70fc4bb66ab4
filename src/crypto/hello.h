/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The handshake's HELLO (issue: secure sessions): who a node is and what it
 * can do, and the negotiation both sides run on the two HELLOs.
 *
 * A capability is a name with a range of versions it supports (min..max)
 * and whether the node requires it. For each name: the highest version in
 * both ranges is chosen; with no common version (or offered by one side
 * only) it is off, unless a side requires it, in which case the connection
 * fails with an error naming the capability and both ranges. The rules are
 * symmetric, so both ends reach the same result (and the same error).
 *
 * Wire format (all integers big-endian), at most WARP_HELLO_MAX bytes:
 *   u8  format (1)
 *   u8  node id length (1..63), node id ([A-Za-z0-9._-])
 *   u64 incarnation (random per process start: a restarted peer shows a new one)
 *   u8  capability count (0..WARP_HELLO_MAX_CAPS)
 *   per capability: u8 name length (1..31), name ([a-z0-9_.-]), u16 min,
 *                   u16 max (min <= max), u8 flags (bit 0: required; others 0)
 * Names are unique; nothing may follow the last capability.
 * The parser is pure and bounds-checked (fuzzed: tests/fuzz/fuzz_hello.c).
 */
#ifndef WARP_CRYPTO_HELLO_H
#define WARP_CRYPTO_HELLO_H

#include <stddef.h>
#include <stdint.h>

#define WARP_HELLO_FORMAT 1u
#define WARP_HELLO_MAX_CAPS 16u
#define WARP_CAP_NAME_MAX 31u
#define WARP_HELLO_MAX (1u + 1u + 63u + 8u + 1u + WARP_HELLO_MAX_CAPS * (1u + WARP_CAP_NAME_MAX + 5u))
#define WARP_CAP_REQUIRED 0x1u

struct warp__cap {
	char name[WARP_CAP_NAME_MAX + 1];
	uint16_t min, max;
	uint8_t flags;
};

struct warp__hello {
	char node[64];
	uint64_t incarnation;
	uint8_t ncaps;
	struct warp__cap caps[WARP_HELLO_MAX_CAPS];
};

/* What the negotiation chose: version 0 = off. */
struct warp__cap_choice {
	char name[WARP_CAP_NAME_MAX + 1];
	uint16_t version;
};

/* Bytes written, or 0 when room is too small or h is not valid. */
size_t warp__hello_encode(const struct warp__hello *h, uint8_t *b, size_t room);

/* 0, or -1 with *why set to a static string naming what was wrong. */
int warp__hello_decode(const uint8_t *b, size_t len, struct warp__hello *out, const char **why);

/* Negotiate: fills out[] (up to 2 * WARP_HELLO_MAX_CAPS entries, sorted by
 * name) and *nout. Returns 0, or WARP_EPROTO with err = "capability
 * 'encryption': no common version (local 1..2, peer 3..4)" or "capability
 * 'x': required by the peer (1..1), not offered here" (and the same seen
 * from the other side). */
int warp__caps_negotiate(const struct warp__hello *local, const struct warp__hello *peer,
			 struct warp__cap_choice *out, unsigned *nout, char *err, size_t errcap);

#endif
