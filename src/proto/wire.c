/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/wire.h"

#define DROP(r) (-(1 + (int)WARP_DROP_##r))

size_t warp__hdr_encode(uint8_t *p, size_t room, uint8_t type, uint64_t conn_id, uint64_t pkt_num)
{
	if (room < WARP_WIRE_HDR_LEN)
		return 0;
	warp__put32(p, WARP_WIRE_MAGIC);
	p[4] = WARP_WIRE_VERSION;
	p[5] = type;
	warp__put16(p + 6, 0);
	warp__put64(p + 8, conn_id);
	warp__put64(p + 16, pkt_num);
	return WARP_WIRE_HDR_LEN;
}

size_t warp__frame_stream_encode(uint8_t *p, size_t room, uint16_t stream_id, uint64_t msg_id,
				 uint32_t msg_len, uint32_t offset, const void *data, uint16_t len)
{
	size_t need = WARP_FRAME_STREAM_HDR + (size_t)len;
	if (room < need || (uint64_t)offset + len > msg_len)
		return 0;
	p[0] = WARP_FRAME_STREAM;
	p[1] = ((uint64_t)offset + len == msg_len) ? WARP_STREAM_FIN : 0;
	warp__put16(p + 2, stream_id);
	warp__put64(p + 4, msg_id);
	warp__put32(p + 12, msg_len);
	warp__put32(p + 16, offset);
	warp__put16(p + 20, len);
	if (len)
		memcpy(p + WARP_FRAME_STREAM_HDR, data, len);
	return need;
}

size_t warp__frame_ack_encode(uint8_t *p, size_t room, uint64_t largest, uint32_t first_range,
			      uint16_t ack_delay_us, const uint32_t *ranges, uint8_t nranges)
{
	size_t need = WARP_FRAME_ACK_HDR + (size_t)nranges * WARP_FRAME_ACK_RANGE;
	if (room < need || nranges > WARP_FRAME_ACK_MAX_RANGES)
		return 0;
	p[0] = WARP_FRAME_ACK;
	p[1] = nranges;
	warp__put16(p + 2, ack_delay_us);
	warp__put64(p + 4, largest);
	warp__put32(p + 12, first_range);
	for (unsigned i = 0; i < nranges; i++) {
		warp__put32(p + 16 + i * 8, ranges[2 * i]);
		warp__put32(p + 20 + i * 8, ranges[2 * i + 1]);
	}
	return need;
}

size_t warp__frame_heartbeat_encode(uint8_t *p, size_t room, uint8_t flags, uint32_t seq,
				    uint64_t timestamp_ns)
{
	if (room < WARP_FRAME_HEARTBEAT_LEN)
		return 0;
	p[0] = WARP_FRAME_HEARTBEAT;
	p[1] = flags;
	warp__put16(p + 2, 0);
	warp__put32(p + 4, seq);
	warp__put64(p + 8, timestamp_ns);
	return WARP_FRAME_HEARTBEAT_LEN;
}

size_t warp__frame_nack_encode(uint8_t *p, size_t room, uint16_t stream_id, uint64_t msg_id,
			       uint16_t reason)
{
	if (room < WARP_FRAME_NACK_LEN)
		return 0;
	p[0] = WARP_FRAME_NACK;
	p[1] = 0;
	warp__put16(p + 2, stream_id);
	warp__put64(p + 4, msg_id);
	warp__put16(p + 12, reason);
	return WARP_FRAME_NACK_LEN;
}

size_t warp__frame_stream_low_encode(uint8_t *p, size_t room, uint16_t stream_id, uint64_t low)
{
	if (room < WARP_FRAME_STREAM_LOW_LEN)
		return 0;
	p[0] = WARP_FRAME_STREAM_LOW;
	p[1] = 0;
	warp__put16(p + 2, stream_id);
	warp__put64(p + 4, low);
	return WARP_FRAME_STREAM_LOW_LEN;
}

size_t warp__frame_credit_encode(uint8_t *p, size_t room, uint32_t window)
{
	if (room < WARP_FRAME_CREDIT_LEN)
		return 0;
	memset(p, 0, 4);
	p[0] = WARP_FRAME_CREDIT;
	warp__put32(p + 4, window);
	return WARP_FRAME_CREDIT_LEN;
}

size_t warp__frame_close_encode(uint8_t *p, size_t room, uint16_t code, const char *reason)
{
	size_t rl = reason ? strlen(reason) : 0;
	if (rl > WARP_FRAME_CLOSE_MAX_REASON)
		rl = WARP_FRAME_CLOSE_MAX_REASON;
	size_t need = WARP_FRAME_CLOSE_HDR + rl;
	if (room < need)
		return 0;
	p[0] = WARP_FRAME_CLOSE;
	p[1] = 0;
	warp__put16(p + 2, code);
	warp__put16(p + 4, (uint16_t)rl);
	if (rl)
		memcpy(p + WARP_FRAME_CLOSE_HDR, reason, rl);
	return need;
}

size_t warp__frame_hs_hello_encode(uint8_t *p, size_t room, uint32_t attempt, const uint8_t *hello,
				   uint16_t len)
{
	size_t need = WARP_FRAME_HS_HELLO_HDR + (size_t)len;
	if (room < need)
		return 0;
	p[0] = WARP_FRAME_HS_HELLO;
	p[1] = 0;
	warp__put32(p + 2, attempt);
	warp__put16(p + 6, len);
	memcpy(p + WARP_FRAME_HS_HELLO_HDR, hello, len);
	return need;
}

size_t warp__frame_hs_crypto_encode(uint8_t *p, size_t room, uint32_t attempt, uint32_t offset,
				    const uint8_t *data, uint16_t len)
{
	size_t need = WARP_FRAME_HS_CRYPTO_HDR + (size_t)len;
	if (room < need || len == 0 || (uint64_t)offset + len > WARP_HS_MAX_CRYPTO)
		return 0;
	p[0] = WARP_FRAME_HS_CRYPTO;
	p[1] = 0;
	warp__put32(p + 2, attempt);
	warp__put32(p + 6, offset);
	warp__put16(p + 10, len);
	memcpy(p + WARP_FRAME_HS_CRYPTO_HDR, data, len);
	return need;
}

size_t warp__frame_hs_ack_encode(uint8_t *p, size_t room, uint8_t flags, uint32_t attempt,
				 uint32_t crypto_off)
{
	if (room < WARP_FRAME_HS_ACK_LEN)
		return 0;
	p[0] = WARP_FRAME_HS_ACK;
	p[1] = flags;
	warp__put16(p + 2, 0);
	warp__put32(p + 4, attempt);
	warp__put32(p + 8, crypto_off);
	return WARP_FRAME_HS_ACK_LEN;
}

size_t warp__frame_hs_fail_encode(uint8_t *p, size_t room, uint32_t attempt, uint16_t code,
				  const char *reason)
{
	size_t rl = reason ? strlen(reason) : 0;
	if (rl > WARP_FRAME_HS_FAIL_MAX_REASON)
		rl = WARP_FRAME_HS_FAIL_MAX_REASON;
	size_t need = WARP_FRAME_HS_FAIL_HDR + rl;
	if (room < need)
		return 0;
	p[0] = WARP_FRAME_HS_FAIL;
	p[1] = 0;
	warp__put32(p + 2, attempt);
	warp__put16(p + 6, code);
	warp__put16(p + 8, (uint16_t)rl);
	if (rl)
		memcpy(p + WARP_FRAME_HS_FAIL_HDR, reason, rl);
	return need;
}

/* Handshake frames: bounds only; what they mean is checked by the
 * handshake (crypto/handshake.c), which owns their state. */
static long hs_frame_decode(const uint8_t *q, size_t left, struct warp_frame *f)
{
	memset(&f->u.hs, 0, sizeof(f->u.hs));
	switch (q[0]) {
	case WARP_FRAME_HS_HELLO:
		if (left < WARP_FRAME_HS_HELLO_HDR)
			return DROP(FRAME_TRUNCATED);
		f->u.hs.attempt = warp__get32(q + 2);
		f->u.hs.len = warp__get16(q + 6);
		f->u.hs.data = q + WARP_FRAME_HS_HELLO_HDR;
		if (f->u.hs.len > left - WARP_FRAME_HS_HELLO_HDR)
			return DROP(FRAME_TRUNCATED);
		if (q[1] || f->u.hs.len == 0) /* attempt 0: a responder's request */
			return DROP(BAD_FRAME);
		return WARP_FRAME_HS_HELLO_HDR + f->u.hs.len;
	case WARP_FRAME_HS_CRYPTO:
		if (left < WARP_FRAME_HS_CRYPTO_HDR)
			return DROP(FRAME_TRUNCATED);
		f->u.hs.attempt = warp__get32(q + 2);
		f->u.hs.offset = warp__get32(q + 6);
		f->u.hs.len = warp__get16(q + 10);
		f->u.hs.data = q + WARP_FRAME_HS_CRYPTO_HDR;
		if (f->u.hs.len > left - WARP_FRAME_HS_CRYPTO_HDR)
			return DROP(FRAME_TRUNCATED);
		if (q[1] || f->u.hs.attempt == 0 || f->u.hs.len == 0 ||
		    (uint64_t)f->u.hs.offset + f->u.hs.len > WARP_HS_MAX_CRYPTO)
			return DROP(BAD_FRAME);
		return WARP_FRAME_HS_CRYPTO_HDR + f->u.hs.len;
	case WARP_FRAME_HS_ACK:
		if (left < WARP_FRAME_HS_ACK_LEN)
			return DROP(FRAME_TRUNCATED);
		f->u.hs.flags = q[1];
		f->u.hs.attempt = warp__get32(q + 4);
		f->u.hs.offset = warp__get32(q + 8);
		if ((f->u.hs.flags & ~WARP_HS_ACK_HELLO) || warp__get16(q + 2) ||
		    f->u.hs.attempt == 0 || f->u.hs.offset > WARP_HS_MAX_CRYPTO)
			return DROP(BAD_FRAME);
		return WARP_FRAME_HS_ACK_LEN;
	case WARP_FRAME_HS_FAIL:
		if (left < WARP_FRAME_HS_FAIL_HDR)
			return DROP(FRAME_TRUNCATED);
		f->u.hs.attempt = warp__get32(q + 2);
		f->u.hs.code = warp__get16(q + 6);
		f->u.hs.len = warp__get16(q + 8);
		f->u.hs.data = q + WARP_FRAME_HS_FAIL_HDR;
		if (f->u.hs.len > left - WARP_FRAME_HS_FAIL_HDR)
			return DROP(FRAME_TRUNCATED);
		if (q[1] || f->u.hs.attempt == 0 || f->u.hs.len > WARP_FRAME_HS_FAIL_MAX_REASON)
			return DROP(BAD_FRAME);
		return WARP_FRAME_HS_FAIL_HDR + f->u.hs.len;
	default:
		return DROP(BAD_FRAME_TYPE);
	}
}

/* The one frame decoder: bounds-checks the frame at p[off..len) and fills *f.
 * Handshake frames (0x20..0x2f) only when hs, data frames only when not.
 * Returns the frame's length, 0 for padding (the rest of the packet), or a
 * negative drop code. */
static long frame_decode(const uint8_t *p, size_t len, size_t off, uint64_t max_msg_len, bool hs,
			 struct warp_frame *f)
{
	const uint8_t *q = p + off;
	size_t left = len - off;

	f->type = q[0];
	if (q[0] >= 0x20 && q[0] <= 0x2f)
		return hs ? hs_frame_decode(q, left, f) : DROP(BAD_FRAME_TYPE);
	if (hs && q[0] != WARP_FRAME_PADDING)
		return DROP(BAD_FRAME_TYPE);
	switch (q[0]) {
	case WARP_FRAME_PADDING:
		return 0;
	case WARP_FRAME_STREAM: {
		if (left < WARP_FRAME_STREAM_HDR)
			return DROP(FRAME_TRUNCATED);
		f->u.stream.flags = q[1];
		f->u.stream.stream_id = warp__get16(q + 2);
		f->u.stream.msg_id = warp__get64(q + 4);
		f->u.stream.msg_len = warp__get32(q + 12);
		f->u.stream.offset = warp__get32(q + 16);
		f->u.stream.len = warp__get16(q + 20);
		f->u.stream.data = q + WARP_FRAME_STREAM_HDR;
		if (f->u.stream.len > left - WARP_FRAME_STREAM_HDR)
			return DROP(FRAME_TRUNCATED);
		if (f->u.stream.flags & ~(WARP_STREAM_FIN | WARP_STREAM_GUARANTEE_MASK))
			return DROP(BAD_FRAME);
		if ((f->u.stream.flags & WARP_STREAM_GUARANTEE_MASK) == WARP_STREAM_GUARANTEE_MASK)
			return DROP(BAD_FRAME); /* guarantee 3 does not exist */
		if (f->u.stream.msg_len > max_msg_len)
			return DROP(MSG_TOO_LARGE);
		uint64_t end = (uint64_t)f->u.stream.offset + f->u.stream.len;
		if (end > f->u.stream.msg_len)
			return DROP(BAD_FRAME);
		/* FIN marks exactly the fragment that ends the message. */
		if (!!(f->u.stream.flags & WARP_STREAM_FIN) != (end == f->u.stream.msg_len))
			return DROP(BAD_FRAME);
		/* An empty fragment is only valid as a whole empty message. */
		if (f->u.stream.len == 0 && f->u.stream.msg_len != 0)
			return DROP(BAD_FRAME);
		return WARP_FRAME_STREAM_HDR + f->u.stream.len;
	}
	case WARP_FRAME_ACK: {
		if (left < WARP_FRAME_ACK_HDR)
			return DROP(FRAME_TRUNCATED);
		f->u.ack.nranges = q[1];
		f->u.ack.ack_delay_us = warp__get16(q + 2);
		f->u.ack.largest = warp__get64(q + 4);
		f->u.ack.first_range = warp__get32(q + 12);
		f->u.ack.ranges = q + WARP_FRAME_ACK_HDR;
		if (f->u.ack.nranges > WARP_FRAME_ACK_MAX_RANGES)
			return DROP(BAD_FRAME);
		size_t need = WARP_FRAME_ACK_HDR + (size_t)f->u.ack.nranges * WARP_FRAME_ACK_RANGE;
		if (need > left)
			return DROP(FRAME_TRUNCATED);
		/* Ranges walk downwards from largest; they may not pass zero. */
		uint64_t lo = f->u.ack.largest;
		if (f->u.ack.first_range > lo)
			return DROP(BAD_FRAME);
		lo -= f->u.ack.first_range;
		for (unsigned i = 0; i < f->u.ack.nranges; i++) {
			uint64_t gap = warp__get32(f->u.ack.ranges + i * 8);
			uint64_t rl = warp__get32(f->u.ack.ranges + i * 8 + 4);
			if (gap + rl + 2 > lo)
				return DROP(BAD_FRAME);
			lo -= gap + rl + 2;
		}
		return (long)need;
	}
	case WARP_FRAME_HEARTBEAT:
		if (left < WARP_FRAME_HEARTBEAT_LEN)
			return DROP(FRAME_TRUNCATED);
		f->u.heartbeat.flags = q[1];
		f->u.heartbeat.seq = warp__get32(q + 4);
		f->u.heartbeat.timestamp_ns = warp__get64(q + 8);
		if (f->u.heartbeat.flags & ~WARP_HEARTBEAT_REPLY)
			return DROP(BAD_FRAME);
		return WARP_FRAME_HEARTBEAT_LEN;
	case WARP_FRAME_CLOSE:
		if (left < WARP_FRAME_CLOSE_HDR)
			return DROP(FRAME_TRUNCATED);
		f->u.close.code = warp__get16(q + 2);
		f->u.close.reason_len = warp__get16(q + 4);
		f->u.close.reason = q + WARP_FRAME_CLOSE_HDR;
		if (f->u.close.reason_len > WARP_FRAME_CLOSE_MAX_REASON)
			return DROP(BAD_FRAME);
		if (f->u.close.reason_len > left - WARP_FRAME_CLOSE_HDR)
			return DROP(FRAME_TRUNCATED);
		return WARP_FRAME_CLOSE_HDR + f->u.close.reason_len;
	case WARP_FRAME_NACK:
		if (left < WARP_FRAME_NACK_LEN)
			return DROP(FRAME_TRUNCATED);
		f->u.nack.stream_id = warp__get16(q + 2);
		f->u.nack.msg_id = warp__get64(q + 4);
		f->u.nack.reason = warp__get16(q + 12);
		return WARP_FRAME_NACK_LEN;
	case WARP_FRAME_CREDIT:
		if (left < WARP_FRAME_CREDIT_LEN)
			return DROP(FRAME_TRUNCATED);
		f->u.credit.window = warp__get32(q + 4);
		return WARP_FRAME_CREDIT_LEN;
	case WARP_FRAME_STREAM_LOW:
	case WARP_FRAME_STREAM_CREDIT:
		if (left < WARP_FRAME_STREAM_LOW_LEN)
			return DROP(FRAME_TRUNCATED);
		f->u.low.stream_id = warp__get16(q + 2);
		f->u.low.low = warp__get64(q + 4);
		return WARP_FRAME_STREAM_LOW_LEN;
	default:
		return DROP(BAD_FRAME_TYPE);
	}
}

/* Length, magic and version: what a packet of any type must pass first. */
static int hdr_basic(const uint8_t *p, size_t len, size_t mtu, struct warp_pkt_hdr *h)
{
	if (len < WARP_WIRE_HDR_LEN + WARP_WIRE_CRC_LEN)
		return DROP(TRUNCATED);
	if (len > mtu)
		return DROP(OVERSIZE);
	h->magic = warp__get32(p);
	if (h->magic != WARP_WIRE_MAGIC)
		return DROP(BAD_MAGIC);
	h->version = p[4];
	if (h->version != WARP_WIRE_VERSION)
		return DROP(BAD_VERSION);
	h->type = p[5];
	h->flags = warp__get16(p + 6);
	h->conn_id = warp__get64(p + 8);
	h->pkt_num = warp__get64(p + 16);
	return 0;
}

/* The type and its flags. */
static int hdr_type(size_t len, const struct warp_pkt_hdr *h)
{
	switch (h->type) {
	case WARP_PKT_PROTECTED:
		if (len < WARP_WIRE_HDR_LEN + WARP_WIRE_TAG_RESERVE)
			return DROP(TRUNCATED);
		return (h->flags & ~WARP_HDR_KEY_GEN_MASK) ? DROP(BAD_TYPE) : 0;
	case WARP_PKT_FRAMES:
	case WARP_PKT_HANDSHAKE:
		return h->flags ? DROP(BAD_TYPE) : 0;
	default:
		return DROP(BAD_TYPE);
	}
}

int warp__hdr_decode(const uint8_t *p, size_t len, size_t mtu, struct warp_pkt_hdr *h)
{
	int rc = hdr_basic(p, len, mtu, h);
	return rc ? rc : hdr_type(len, h);
}

int warp__frames_validate(const uint8_t *p, size_t body, uint8_t type, uint64_t max_msg_len,
			  struct warp_frames *kept)
{
	struct warp_frame scratch;
	size_t off = WARP_WIRE_HDR_LEN;
	bool hs = type == WARP_PKT_HANDSHAKE;
	uint32_t n_kept = 0;
	size_t rest = body;
	while (off < body) {
		struct warp_frame *f = kept && n_kept < WARP_FRAMES_KEPT ? &kept->f[n_kept] : &scratch;
		long n = frame_decode(p, body, off, max_msg_len, hs, f);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break; /* padding to the end */
		if (f != &scratch)
			n_kept++;
		else if (rest == body)
			rest = off; /* the first frame not kept */
		off += (size_t)n;
	}
	if (kept) {
		kept->n = n_kept;
		kept->rest_off = rest;
	}
	return 0;
}

int warp__pkt_validate(const uint8_t *p, size_t len, size_t mtu, uint64_t max_msg_len,
		       struct warp_pkt_hdr *h, struct warp_frames *kept)
{
	int rc = hdr_basic(p, len, mtu, h);
	if (rc)
		return rc;
	/* the CRC before the type: a damaged header is a damaged packet */
	len -= WARP_WIRE_CRC_LEN;
	if (warp__crc32c(p, len) != warp__get32(p + len))
		return DROP(BAD_CHECKSUM);
	rc = hdr_type(len + WARP_WIRE_CRC_LEN, h);
	if (rc)
		return rc;
	if (h->type == WARP_PKT_PROTECTED)
		return DROP(BAD_TYPE);
	return warp__frames_validate(p, len, h->type, max_msg_len, kept);
}

int warp__frame_next(const uint8_t *p, size_t len, size_t *off, struct warp_frame *f)
{
	if (*off >= len)
		return 0;
	long n = frame_decode(p, len, *off, UINT64_MAX, p[5] == WARP_PKT_HANDSHAKE, f);
	if (n <= 0) {
		*off = len;
		return 0;
	}
	*off += (size_t)n;
	return 1;
}

const char *warp__drop_reason_str(int reason)
{
	static const char *const names[] = {
#define WARP__DROP_STR(up, low, s) s,
		WARP_DROP_MAP(WARP__DROP_STR)
#undef WARP__DROP_STR
	};
	if (reason < 0 || reason >= WARP_DROP__COUNT)
		return "unknown";
	return names[reason];
}
