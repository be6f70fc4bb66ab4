/* SPDX-License-Identifier: Apache-2.0 */
/* HELLO encoding, parsing and capability negotiation (see hello.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "crypto/hello.h"
#include "warp/error.h"

static bool node_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static bool cap_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == '-';
}

static int check_hello(const struct warp__hello *h, const char **why)
{
	size_t nl = strnlen(h->node, sizeof(h->node));
	if (nl == 0 || nl >= sizeof(h->node)) {
		*why = "node id length not 1..63";
		return -1;
	}
	for (size_t i = 0; i < nl; i++)
		if (!node_char((uint8_t)h->node[i])) {
			*why = "node id character outside [A-Za-z0-9._-]";
			return -1;
		}
	if (h->ncaps > WARP_HELLO_MAX_CAPS) {
		*why = "too many capabilities";
		return -1;
	}
	for (unsigned i = 0; i < h->ncaps; i++) {
		const struct warp__cap *c = &h->caps[i];
		size_t cl = strnlen(c->name, sizeof(c->name));
		if (cl == 0 || cl > WARP_CAP_NAME_MAX) {
			*why = "capability name length not 1..31";
			return -1;
		}
		for (size_t k = 0; k < cl; k++)
			if (!cap_char((uint8_t)c->name[k])) {
				*why = "capability name character outside [a-z0-9._-]";
				return -1;
			}
		if (c->min > c->max) {
			*why = "capability min above max";
			return -1;
		}
		if (c->flags & ~WARP_CAP_REQUIRED) {
			*why = "unknown capability flags";
			return -1;
		}
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(h->caps[j].name, c->name)) {
				*why = "capability listed twice";
				return -1;
			}
	}
	return 0;
}

size_t warp__hello_encode(const struct warp__hello *h, uint8_t *b, size_t room)
{
	const char *why;
	if (check_hello(h, &why))
		return 0;
	size_t nl = strlen(h->node), need = 1 + 1 + nl + 8 + 1;
	for (unsigned i = 0; i < h->ncaps; i++)
		need += 1 + strlen(h->caps[i].name) + 5;
	if (need > room)
		return 0;
	size_t o = 0;
	b[o++] = WARP_HELLO_FORMAT;
	b[o++] = (uint8_t)nl;
	memcpy(b + o, h->node, nl);
	o += nl;
	for (int i = 7; i >= 0; i--)
		b[o++] = (uint8_t)(h->incarnation >> (8 * i));
	b[o++] = h->ncaps;
	for (unsigned i = 0; i < h->ncaps; i++) {
		const struct warp__cap *c = &h->caps[i];
		size_t cl = strlen(c->name);
		b[o++] = (uint8_t)cl;
		memcpy(b + o, c->name, cl);
		o += cl;
		b[o++] = (uint8_t)(c->min >> 8);
		b[o++] = (uint8_t)c->min;
		b[o++] = (uint8_t)(c->max >> 8);
		b[o++] = (uint8_t)c->max;
		b[o++] = c->flags;
	}
	return o;
}

int warp__hello_decode(const uint8_t *b, size_t len, struct warp__hello *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	size_t o = 0;
#define NEED(n, what)                      \
	do {                               \
		if (len - o < (size_t)(n)) { \
			*why = what;       \
			return -1;         \
		}                          \
	} while (0)
	NEED(2, "truncated before the node id");
	if (b[o++] != WARP_HELLO_FORMAT) {
		*why = "unknown hello format";
		return -1;
	}
	size_t nl = b[o++];
	if (nl == 0 || nl >= sizeof(out->node)) {
		*why = "node id length not 1..63";
		return -1;
	}
	NEED(nl + 8 + 1, "truncated in the node id or incarnation");
	for (size_t i = 0; i < nl; i++)
		if (!node_char(b[o + i])) { /* a NUL too: the length must be exact */
			*why = "node id character outside [A-Za-z0-9._-]";
			return -1;
		}
	memcpy(out->node, b + o, nl);
	o += nl;
	for (int i = 0; i < 8; i++)
		out->incarnation = out->incarnation << 8 | b[o++];
	out->ncaps = b[o++];
	if (out->ncaps > WARP_HELLO_MAX_CAPS) {
		*why = "too many capabilities";
		return -1;
	}
	for (unsigned i = 0; i < out->ncaps; i++) {
		struct warp__cap *c = &out->caps[i];
		NEED(1, "truncated before a capability");
		size_t cl = b[o++];
		if (cl == 0 || cl > WARP_CAP_NAME_MAX) {
			*why = "capability name length not 1..31";
			return -1;
		}
		NEED(cl + 5, "truncated in a capability");
		for (size_t k = 0; k < cl; k++)
			if (!cap_char(b[o + k])) {
				*why = "capability name character outside [a-z0-9._-]";
				return -1;
			}
		memcpy(c->name, b + o, cl);
		o += cl;
		c->min = (uint16_t)(b[o] << 8 | b[o + 1]);
		c->max = (uint16_t)(b[o + 2] << 8 | b[o + 3]);
		c->flags = b[o + 4];
		o += 5;
	}
#undef NEED
	if (o != len) {
		*why = "bytes after the last capability";
		return -1;
	}
	return check_hello(out, why);
}

static const struct warp__cap *find_cap(const struct warp__hello *h, const char *name)
{
	for (unsigned i = 0; i < h->ncaps; i++)
		if (!strcmp(h->caps[i].name, name))
			return &h->caps[i];
	return NULL;
}

static int add_name(const char **names, unsigned *n, const char *name)
{
	for (unsigned i = 0; i < *n; i++)
		if (!strcmp(names[i], name))
			return 0;
	names[(*n)++] = name;
	return 1;
}

int warp__caps_negotiate(const struct warp__hello *local, const struct warp__hello *peer,
			 struct warp__cap_choice *out, unsigned *nout, char *err, size_t errcap)
{
	const char *names[2 * WARP_HELLO_MAX_CAPS];
	unsigned n = 0;
	for (unsigned i = 0; i < local->ncaps && i < WARP_HELLO_MAX_CAPS; i++)
		add_name(names, &n, local->caps[i].name);
	for (unsigned i = 0; i < peer->ncaps && i < WARP_HELLO_MAX_CAPS; i++)
		add_name(names, &n, peer->caps[i].name);
	/* sorted, so the result and the first error do not depend on order */
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	*nout = 0;
	if (errcap)
		err[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		const struct warp__cap *l = find_cap(local, names[i]);
		const struct warp__cap *p = find_cap(peer, names[i]);
		bool required = (l && (l->flags & WARP_CAP_REQUIRED)) ||
				(p && (p->flags & WARP_CAP_REQUIRED));
		uint16_t v = 0;
		if (l && p) {
			uint16_t lo = WARP__MAX(l->min, p->min), hi = WARP__MIN(l->max, p->max);
			if (lo <= hi)
				v = hi;
			else if (required) {
				snprintf(err, errcap,
					 "capability '%s': no common version (local %u..%u, peer "
					 "%u..%u)",
					 names[i], l->min, l->max, p->min, p->max);
				return WARP_EPROTO;
			}
		} else if (required) {
			const struct warp__cap *c = l ? l : p;
			snprintf(err, errcap, "capability '%s': required by the %s (%u..%u), not offered %s",
				 names[i], l ? "local node" : "peer", c->min, c->max,
				 l ? "by the peer" : "here");
			return WARP_EPROTO;
		}
		memset(&out[*nout], 0, sizeof(out[*nout]));
		snprintf(out[*nout].name, sizeof(out[*nout].name), "%s", names[i]);
		out[*nout].version = v;
		(*nout)++;
	}
	return 0;
}
