/* SPDX-License-Identifier: Apache-2.0 */
/* Wire format v1: every frame encodes and decodes to the same fields. */
#include <criterion/criterion.h>
#include <inttypes.h>

#include "proto/wire.h"

/* Validate a packet body: seal a copy with its CRC32C trailer first. */
static int validate(const uint8_t *body, size_t len, size_t mtu, uint64_t max,
		    struct warp_pkt_hdr *h)
{
	static uint8_t tmp[10000];
	memcpy(tmp, body, len);
	return warp__pkt_validate(tmp, warp__pkt_seal(tmp, len), mtu, max, h, NULL);
}

static size_t one_frame(uint8_t *b, size_t room, struct warp_frame *f)
{
	size_t off = WARP_WIRE_HDR_LEN;
	struct warp_pkt_hdr h;
	cr_assert_eq(validate(b, room, 9000, UINT32_MAX, &h), 0);
	cr_assert_eq(warp__frame_next(b, room, &off, f), 1);
	return off;
}

Test(wire, header_round_trip)
{
	uint8_t b[64];
	cr_assert_eq(warp__hdr_encode(b, 23, WARP_PKT_FRAMES, 1, 2), 0, "too small");
	cr_assert_eq(warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, 0x1122334455667788ull, 42),
		     WARP_WIRE_HDR_LEN);
	struct warp_pkt_hdr h;
	cr_assert_eq(validate(b, WARP_WIRE_HDR_LEN, 1500, 100, &h), 0);
	cr_assert_eq(h.magic, WARP_WIRE_MAGIC);
	cr_assert_eq(h.version, 1);
	cr_assert_eq(h.conn_id, 0x1122334455667788ull);
	cr_assert_eq(h.pkt_num, 42);
	cr_assert_eq(b[0], 'W');
	cr_assert_eq(b[3], 'P');
}

Test(wire, stream_frame_round_trip)
{
	uint8_t b[256];
	size_t off = warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, 9, 1);
	const char *msg = "hello";
	size_t n = warp__frame_stream_encode(b + off, sizeof(b) - off, 300, 1ull << 40, 105, 100,
					     msg, 5);
	cr_assert_eq(n, WARP_FRAME_STREAM_HDR + 5);
	struct warp_frame f;
	cr_assert_eq(one_frame(b, off + n, &f), off + n);
	cr_assert_eq(f.type, WARP_FRAME_STREAM);
	cr_assert_eq(f.u.stream.stream_id, 300);
	cr_assert_eq(f.u.stream.msg_id, 1ull << 40);
	cr_assert_eq(f.u.stream.msg_len, 105);
	cr_assert_eq(f.u.stream.offset, 100);
	cr_assert_eq(f.u.stream.len, 5);
	cr_assert_eq(f.u.stream.flags, WARP_STREAM_FIN, "last fragment carries FIN");
	cr_assert_arr_eq(f.u.stream.data, msg, 5);
	cr_assert_eq(warp__frame_stream_encode(b, sizeof(b), 1, 1, 10, 8, msg, 5), 0,
		     "offset + len beyond msg_len is not encoded");
}

Test(wire, ack_frame_round_trip_and_range_checks)
{
	uint8_t b[256];
	size_t off = warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, 9, 1);
	uint32_t ranges[4] = { 3, 10, 0, 5 };
	size_t n = warp__frame_ack_encode(b + off, sizeof(b) - off, 1000, 20, 55, ranges, 2);
	cr_assert_eq(n, WARP_FRAME_ACK_HDR + 2 * WARP_FRAME_ACK_RANGE);
	struct warp_frame f;
	one_frame(b, off + n, &f);
	cr_assert_eq(f.type, WARP_FRAME_ACK);
	cr_assert_eq(f.u.ack.largest, 1000);
	cr_assert_eq(f.u.ack.first_range, 20);
	cr_assert_eq(f.u.ack.ack_delay_us, 55);
	cr_assert_eq(f.u.ack.nranges, 2);
	cr_assert_eq(warp__get32(f.u.ack.ranges + 4), 10);
	/* ranges that walk below packet number 0 are malformed */
	n = warp__frame_ack_encode(b + off, sizeof(b) - off, 10, 11, 0, NULL, 0);
	struct warp_pkt_hdr h;
	cr_assert_eq(validate(b, off + n, 9000, 100, &h), -(1 + WARP_DROP_BAD_FRAME));
}

Test(wire, heartbeat_and_close_round_trip)
{
	uint8_t b[512];
	size_t off = warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, 9, 1);
	size_t n1 = warp__frame_heartbeat_encode(b + off, sizeof(b) - off, WARP_HEARTBEAT_REPLY,
						 77, 123456789);
	size_t n2 = warp__frame_close_encode(b + off + n1, sizeof(b) - off - n1, 3, "going away");
	size_t len = off + n1 + n2;
	struct warp_pkt_hdr h;
	cr_assert_eq(validate(b, len, 9000, 100, &h), 0);
	struct warp_frame f;
	size_t o = WARP_WIRE_HDR_LEN;
	cr_assert_eq(warp__frame_next(b, len, &o, &f), 1);
	cr_assert_eq(f.type, WARP_FRAME_HEARTBEAT);
	cr_assert_eq(f.u.heartbeat.seq, 77);
	cr_assert_eq(f.u.heartbeat.timestamp_ns, 123456789);
	cr_assert_eq(f.u.heartbeat.flags, WARP_HEARTBEAT_REPLY);
	cr_assert_eq(warp__frame_next(b, len, &o, &f), 1);
	cr_assert_eq(f.type, WARP_FRAME_CLOSE);
	cr_assert_eq(f.u.close.code, 3);
	cr_assert_eq(f.u.close.reason_len, 10);
	cr_assert_arr_eq(f.u.close.reason, "going away", 10);
	cr_assert_eq(warp__frame_next(b, len, &o, &f), 0);
}

Test(wire, padding_ends_the_frames)
{
	uint8_t b[128];
	size_t off = warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, 9, 1);
	memset(b + off, 0, sizeof(b) - off);
	struct warp_pkt_hdr h;
	cr_assert_eq(validate(b, sizeof(b), 9000, 100, &h), 0);
	struct warp_frame f;
	size_t o = WARP_WIRE_HDR_LEN;
	cr_assert_eq(warp__frame_next(b, sizeof(b), &o, &f), 0);
}

Test(wire, stream_frame_field_rules)
{
	uint8_t b[256];
	size_t off = warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, 9, 1);
	struct warp_pkt_hdr h;
	size_t n = warp__frame_stream_encode(b + off, sizeof(b) - off, 1, 1, 50, 0, "abcdefghij",
					     10);
	/* message longer than the receiver's limit */
	cr_assert_eq(validate(b, off + n, 9000, 49, &h), -(1 + WARP_DROP_MSG_TOO_LARGE));
	cr_assert_eq(validate(b, off + n, 9000, 50, &h), 0);
	/* FIN on a fragment that does not end the message */
	b[off + 1] = WARP_STREAM_FIN;
	cr_assert_eq(validate(b, off + n, 9000, 50, &h), -(1 + WARP_DROP_BAD_FRAME));
	/* unknown flag bits */
	b[off + 1] = 0x80;
	cr_assert_eq(validate(b, off + n, 9000, 50, &h), -(1 + WARP_DROP_BAD_FRAME));
	b[off + 1] = 0;
	/* empty fragment of a non-empty message */
	warp__put16(b + off + 20, 0);
	cr_assert_eq(validate(b, off + WARP_FRAME_STREAM_HDR, 9000, 50, &h),
		     -(1 + WARP_DROP_BAD_FRAME));
	/* reserved frame types */
	b[off] = 0x06;
	cr_assert_eq(validate(b, off + n, 9000, 50, &h), -(1 + WARP_DROP_BAD_FRAME_TYPE));
	/* longer than the MTU */
	cr_assert_eq(validate(b, 253, 256, 50, &h), -(1 + WARP_DROP_OVERSIZE), "253 + 4 > 256");
}

Test(wire, crc_trailer_catches_every_flipped_bit)
{
	uint8_t b[256];
	size_t off = warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, 9, 1);
	off += warp__frame_stream_encode(b + off, sizeof(b) - off, 1, 1, 10, 0, "0123456789", 10);
	size_t len = warp__pkt_seal(b, off);
	struct warp_pkt_hdr h;
	cr_assert_eq(warp__pkt_validate(b, len, 9000, 100, &h, NULL), 0);
	for (size_t i = 0; i < len; i++)
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			int rc = warp__pkt_validate(b, len, 9000, 100, &h, NULL);
			cr_assert_lt(rc, 0, "byte %zu bit %d accepted", i, bit);
			if (i >= 6) /* past magic and version, only the CRC can tell */
				cr_assert_eq(rc, -(1 + WARP_DROP_BAD_CHECKSUM), "byte %zu", i);
			b[i] ^= (uint8_t)(1u << bit);
		}
	/* the CRC32C check value of "123456789" */
	cr_assert_eq(warp__crc32c("123456789", 9), 0xe3069283u);
}

/* Validation keeps the frames it decoded; past WARP_FRAMES_KEPT the rest is
 * walked from rest_off, so every frame is seen exactly once, in order. */
static void kept_then_rest(unsigned nframes)
{
	static uint8_t b[9000];
	size_t off = warp__hdr_encode(b, sizeof(b), WARP_PKT_FRAMES, 9, 1);
	for (unsigned i = 0; i < nframes; i++)
		off += warp__frame_stream_encode(b + off, sizeof(b) - off, 1, i, 1, 0, "x", 1);
	memset(b + off, 0, 7); /* padding to the end */
	off += 7;
	size_t len = warp__pkt_seal(b, off);
	struct warp_pkt_hdr h;
	struct warp_frames fr;
	memset(&fr, 0xa5, sizeof(fr));
	cr_assert_eq(warp__pkt_validate(b, len, 9000, 100, &h, &fr), 0);
	unsigned want_kept = nframes < WARP_FRAMES_KEPT ? nframes : WARP_FRAMES_KEPT;
	cr_assert_eq(fr.n, want_kept, "%u frames: %u kept", nframes, fr.n);
	uint64_t next = 0;
	for (uint32_t i = 0; i < fr.n; i++, next++) {
		cr_assert_eq(fr.f[i].type, WARP_FRAME_STREAM);
		cr_assert_eq(fr.f[i].u.stream.msg_id, next);
		cr_assert_eq(fr.f[i].u.stream.data[0], 'x');
	}
	size_t o = fr.rest_off;
	struct warp_frame f;
	while (warp__frame_next(b, len - WARP_WIRE_CRC_LEN, &o, &f)) {
		cr_assert_eq(f.type, WARP_FRAME_STREAM);
		cr_assert_eq(f.u.stream.msg_id, next++);
	}
	cr_assert_eq(next, nframes, "%u frames: %" PRIu64 " seen", nframes, next);
}

Test(wire, validation_keeps_the_frames_it_decoded)
{
	kept_then_rest(0);
	kept_then_rest(3);
	kept_then_rest(WARP_FRAMES_KEPT);
	kept_then_rest(WARP_FRAMES_KEPT + 1);
	kept_then_rest(3 * WARP_FRAMES_KEPT);
}

/* CRC32C against a bit-at-a-time reference, every length 0..80 and every
 * start alignment: the 8-byte loop and each tail (4, 2, 1) of the
 * instruction path, or the table. */
Test(wire, crc32c_matches_the_bitwise_reference_at_every_length)
{
	uint8_t buf[96];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	for (size_t start = 0; start < 8; start++)
		for (size_t len = 0; start + len <= 88 && len <= 80; len++) {
			uint32_t c = 0xffffffffu;
			for (size_t i = 0; i < len; i++) {
				c ^= buf[start + i];
				for (int k = 0; k < 8; k++)
					c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			}
			cr_assert_eq(warp__crc32c(buf + start, len), ~c, "start %zu len %zu", start, len);
		}
}
