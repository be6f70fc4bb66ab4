/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wire protocol v1: packet header and frames. Byte layouts are documented in
 * docs/wire-protocol.md; keep the two in step. All multi-byte fields are big
 * endian (network order).
 *
 * Parsing is two-pass: warp__pkt_validate() checks every field of a packet
 * against the bounds below without acting on it, so a bad packet is dropped
 * whole; afterwards the receiver acts on the (now trusted) frames. The
 * validating pass keeps what it decoded (struct warp_frames), so the second
 * pass decodes nothing again for a packet of up to WARP_FRAMES_KEPT frames;
 * warp__frame_next() walks the rest of a longer one.
 */
#ifndef WARP_PROTO_WIRE_H
#define WARP_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WARP_WIRE_MAGIC 0x57415250u /* "WARP" */
#define WARP_WIRE_VERSION 1u
#define WARP_WIRE_HDR_LEN 24u
/* Room kept free in every packet for the AEAD tag of packet protection.
 * Plaintext packets use 4 of it for a CRC32C trailer over everything before
 * it, so corruption on the way is detected (and the packet dropped) on every
 * driver, not only where the link has its own checksum. */
#define WARP_WIRE_TAG_RESERVE 16u
#define WARP_WIRE_CRC_LEN 4u
#define WARP_WIRE_MIN_MTU 256u
#define WARP_WIRE_MAX_MTU 9000u

/* Packet types (header byte 5). */
enum warp_pkt_type {
	WARP_PKT_FRAMES = 1,    /* plaintext frames */
	WARP_PKT_PROTECTED = 2, /* AEAD-protected frames: no CRC, the tag in the reserve */
	WARP_PKT_HANDSHAKE = 3, /* handshake frames (0x20..0x23) with a CRC32C trailer */
};

/* Header flags of a PROTECTED packet: the low 8 bits are the sender's key
 * generation (mod 256); the others must be 0. Other packet types: 0. */
#define WARP_HDR_KEY_GEN_MASK 0x00ffu

/* Frame types (first byte of each frame). */
enum warp_frame_type {
	WARP_FRAME_PADDING = 0x00, /* the rest of the packet is padding */
	WARP_FRAME_STREAM = 0x01,
	WARP_FRAME_ACK = 0x02,
	WARP_FRAME_HEARTBEAT = 0x03,
	WARP_FRAME_CLOSE = 0x04,
	WARP_FRAME_NACK = 0x05,       /* the receiving application refused a message */
	WARP_FRAME_CREDIT = 0x07,     /* flow control: bytes the receiver can take now */
	WARP_FRAME_STREAM_LOW = 0x08, /* every message below `low` is settled at the sender */
	WARP_FRAME_STREAM_CREDIT = 0x09, /* ordered stream: messages below `max_id` may be sent */
	/* handshake packets only (docs/wire-protocol.md, "Handshake"): */
	WARP_FRAME_HS_HELLO = 0x20,  /* attempt, the sender's HELLO (crypto/hello.h) */
	WARP_FRAME_HS_CRYPTO = 0x21, /* attempt, offset: TLS handshake bytes, in order */
	WARP_FRAME_HS_ACK = 0x22,    /* the receiver's attempt: HELLO received, TLS bytes received */
	WARP_FRAME_HS_FAIL = 0x23,   /* attempt, error code, reason text: the sender gave up */
	/* reserved, parsed as errors until their issue lands: 0x06 RESET_STREAM */
};
#define WARP_FRAME_HS_HELLO_HDR 8u  /* type, pad, u32 attempt, u16 len */
#define WARP_FRAME_HS_CRYPTO_HDR 12u /* type, pad, u32 attempt, u32 offset, u16 len */
#define WARP_FRAME_HS_ACK_LEN 12u   /* type, flags, pad u16, u32 attempt, u32 crypto offset */
#define WARP_FRAME_HS_FAIL_HDR 10u  /* type, pad, u32 attempt, u16 code, u16 len */
#define WARP_FRAME_HS_FAIL_MAX_REASON 256u
#define WARP_HS_ACK_HELLO 0x01u     /* HS_ACK flags: the HELLO of that attempt arrived */
#define WARP_HS_MAX_CRYPTO (1u << 24) /* TLS bytes one attempt may carry (offsets below this) */

#define WARP_STREAM_FIN 0x01u
#define WARP_STREAM_GUARANTEE_SHIFT 1 /* bits 1-2: 0 at-most-once, 1 at-least-once, 2 exactly-once */
#define WARP_STREAM_GUARANTEE_MASK 0x06u
#define WARP_HEARTBEAT_REPLY 0x01u

#define WARP_FRAME_STREAM_HDR 22u
#define WARP_FRAME_ACK_HDR 16u
#define WARP_FRAME_ACK_RANGE 8u
#define WARP_FRAME_ACK_MAX_RANGES 32u
#define WARP_FRAME_HEARTBEAT_LEN 16u
#define WARP_FRAME_CLOSE_HDR 6u
#define WARP_FRAME_CLOSE_MAX_REASON 256u
#define WARP_FRAME_NACK_LEN 14u
#define WARP_FRAME_STREAM_LOW_LEN 12u
#define WARP_FRAME_CREDIT_LEN 8u
#define WARP_FRAME_STREAM_CREDIT_LEN 12u

/* Why a packet was dropped. The X-macro gives the enum, the counter names in
 * warp_stats_t and the strings warp-stat prints. */
#define WARP_DROP_MAP(X)                                                                   \
	X(TRUNCATED, truncated, "shorter than the header and trailer")                        \
	X(BAD_CHECKSUM, bad_checksum, "CRC32C trailer does not match")                         \
	X(OVERSIZE, oversize, "longer than the MTU")                                           \
	X(BAD_MAGIC, bad_magic, "wrong magic")                                                 \
	X(BAD_VERSION, bad_version, "unsupported version")                                     \
	X(BAD_TYPE, bad_type, "unknown packet type")                                           \
	X(FRAME_TRUNCATED, frame_truncated, "frame runs past the end of the packet")          \
	X(BAD_FRAME_TYPE, bad_frame_type, "unknown frame type")                                \
	X(BAD_FRAME, bad_frame, "frame field out of range")                                    \
	X(MSG_TOO_LARGE, msg_too_large, "message length above max_payload_bytes")             \
	X(UNKNOWN_PEER, unknown_peer, "connection id of no known peer")                        \
	X(PEER_CLOSED, peer_closed, "peer is closed")                                         \
	X(DUP_PACKET, dup_packet, "packet number already received")                            \
	X(OLD_PACKET, old_packet, "packet number below the receive window")                    \
	X(NO_BUFFER, no_buffer, "reassembly memory exhausted")                                 \
	X(REASSEMBLY_FULL, reassembly_full, "too many partial messages")                       \
	X(REASSEMBLY_CONFLICT, reassembly_conflict, "fragment disagrees with its message")     \
	X(REASSEMBLY_GAPS, reassembly_gaps, "too many gaps in one message")                    \
	X(DUP_FRAGMENT, dup_fragment, "fragment already received")                             \
	X(RX_BACKPRESSURE, rx_backpressure, "receiver ring and spill memory full")             \
	X(BAD_TAG, bad_tag, "does not authenticate (tampered, or not our key)")                \
	X(OLD_KEY, old_key, "protected under a key already retired")                           \
	X(NO_SESSION, no_session, "no session with the sender yet")                            \
	X(PLAINTEXT, plaintext, "plaintext packet from a peer with an encrypted session")       \
	X(HS_STALE, hs_stale, "handshake frame of an attempt no longer current")               \
	X(HS_BUSY, hs_busy, "handshake refused: all handshake slots busy")                   \
	X(PKT_NUM_JUMP, pkt_num_jump, "packet number more than 2^24 above the largest received") \
	X(NO_CREDIT, no_credit, "message id at or above the stream credit granted")

/* How far above the largest packet number received a new one may be. */
#define WARP_PKT_NUM_JUMP_MAX (1ull << 24)

enum warp_drop_reason {
#define WARP__DROP_ENUM(up, low, s) WARP_DROP_##up,
	WARP_DROP_MAP(WARP__DROP_ENUM)
#undef WARP__DROP_ENUM
	WARP_DROP__COUNT
};

struct warp_pkt_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint64_t conn_id;
	uint64_t pkt_num;
};

struct warp_frame {
	uint8_t type;
	union {
		struct {
			uint8_t flags;
			uint16_t stream_id;
			uint64_t msg_id;
			uint32_t msg_len;
			uint32_t offset;
			uint16_t len;
			const uint8_t *data;
		} stream;
		struct {
			uint8_t nranges;
			uint16_t ack_delay_us;
			uint64_t largest;
			uint32_t first_range;
			const uint8_t *ranges; /* nranges x {gap u32, len u32} */
		} ack;
		struct {
			uint8_t flags;
			uint32_t seq;
			uint64_t timestamp_ns;
		} heartbeat;
		struct {
			uint16_t code;
			uint16_t reason_len;
			const uint8_t *reason;
		} close;
		struct {
			uint16_t stream_id;
			uint16_t reason;
			uint64_t msg_id;
		} nack;
		struct {
			uint16_t stream_id;
			uint64_t low;
		} low;
		struct {
			uint32_t window;
		} credit;
		struct { /* HS_HELLO, HS_CRYPTO, HS_ACK, HS_FAIL */
			uint8_t flags;
			uint16_t code;
			uint32_t attempt;
			uint32_t offset;
			uint16_t len;
			const uint8_t *data;
		} hs;
	} u;
};

/* ---- byte order helpers -------------------------------------------------- */
#include "common.h"

static inline void warp__put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void warp__put32(uint8_t *p, uint32_t v)
{
	v = __builtin_bswap32(v);
	memcpy(p, &v, 4);
}
static inline void warp__put64(uint8_t *p, uint64_t v)
{
	v = __builtin_bswap64(v);
	memcpy(p, &v, 8);
}
static inline uint16_t warp__get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t warp__get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}
static inline uint64_t warp__get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}

uint32_t warp__crc32c(const void *data, size_t n);

/* Append the CRC32C trailer to a packet of len bytes (room for 4 more
 * bytes must exist); returns the sealed length. */
static inline size_t warp__pkt_seal(uint8_t *p, size_t len)
{
	warp__put32(p + len, warp__crc32c(p, len));
	return len + WARP_WIRE_CRC_LEN;
}

/* ---- encoding: each returns the bytes written, 0 when it does not fit ---- */
size_t warp__hdr_encode(uint8_t *p, size_t room, uint8_t type, uint64_t conn_id, uint64_t pkt_num);
size_t warp__frame_stream_encode(uint8_t *p, size_t room, uint16_t stream_id, uint64_t msg_id,
				 uint32_t msg_len, uint32_t offset, const void *data, uint16_t len);
/* Set the delivery guarantee bits of an encoded STREAM frame. */
static inline void warp__frame_stream_set_guarantee(uint8_t *frame, unsigned g)
{
	frame[1] = (uint8_t)((frame[1] & ~WARP_STREAM_GUARANTEE_MASK) |
			     (g << WARP_STREAM_GUARANTEE_SHIFT));
}
size_t warp__frame_nack_encode(uint8_t *p, size_t room, uint16_t stream_id, uint64_t msg_id,
			       uint16_t reason);
size_t warp__frame_stream_low_encode(uint8_t *p, size_t room, uint16_t stream_id, uint64_t low);
size_t warp__frame_credit_encode(uint8_t *p, size_t room, uint32_t window);
/* Same layout as STREAM_LOW: type, pad, stream u16, value u64. */
static inline size_t warp__frame_stream_credit_encode(uint8_t *p, size_t room, uint16_t stream_id,
						      uint64_t max_id)
{
	size_t n = warp__frame_stream_low_encode(p, room, stream_id, max_id);
	if (n)
		p[0] = WARP_FRAME_STREAM_CREDIT;
	return n;
}
/* ranges: nranges pairs {gap, len} */
size_t warp__frame_ack_encode(uint8_t *p, size_t room, uint64_t largest, uint32_t first_range,
			      uint16_t ack_delay_us, const uint32_t *ranges, uint8_t nranges);
size_t warp__frame_heartbeat_encode(uint8_t *p, size_t room, uint8_t flags, uint32_t seq,
				    uint64_t timestamp_ns);
size_t warp__frame_close_encode(uint8_t *p, size_t room, uint16_t code, const char *reason);
size_t warp__frame_hs_hello_encode(uint8_t *p, size_t room, uint32_t attempt, const uint8_t *hello,
				   uint16_t len);
size_t warp__frame_hs_crypto_encode(uint8_t *p, size_t room, uint32_t attempt, uint32_t offset,
				    const uint8_t *data, uint16_t len);
size_t warp__frame_hs_ack_encode(uint8_t *p, size_t room, uint8_t flags, uint32_t attempt,
				 uint32_t crypto_off);
size_t warp__frame_hs_fail_encode(uint8_t *p, size_t room, uint32_t attempt, uint16_t code,
				  const char *reason);

/* ---- decoding ------------------------------------------------------------ */
/* The header alone: length against the header and the MTU (a protected
 * packet needs room for its tag, a plaintext one for its CRC), magic,
 * version, packet type and flags. Returns 0 and fills *h, or -(1 + enum
 * warp_drop_reason). */
int warp__hdr_decode(const uint8_t *p, size_t len, size_t mtu, struct warp_pkt_hdr *h);

/* What validation decoded: the first WARP_FRAMES_KEPT frames of a packet
 * (a 64-byte ping-pong packet has three: ACK, CREDIT, STREAM; a full
 * packet of coalesced 64-byte messages ~17). When the packet has more,
 * rest_off is where warp__frame_next() goes on; otherwise it is the body's
 * end. */
#define WARP_FRAMES_KEPT 24
struct warp_frames {
	uint32_t n;
	size_t rest_off;
	struct warp_frame f[WARP_FRAMES_KEPT];
};

/* The frames of a packet of type `type`, p[WARP_WIRE_HDR_LEN, body): each
 * against the end and max_msg_len; data frames only in FRAMES and
 * PROTECTED packets, handshake frames only in HANDSHAKE packets. 0 or
 * -(1 + reason). With kept (may be NULL), what was decoded is kept there. */
int warp__frames_validate(const uint8_t *p, size_t body, uint8_t type, uint64_t max_msg_len,
			  struct warp_frames *kept);

/* Validate a whole plaintext packet (FRAMES or HANDSHAKE): header, CRC32C
 * trailer, then every frame. Returns 0 and fills *h, or -(1 + enum
 * warp_drop_reason) for the first problem found. A PROTECTED packet is
 * refused here (BAD_TYPE): it is checked frame by frame only once
 * decrypted (warp__hdr_decode, then warp__frames_validate). */
int warp__pkt_validate(const uint8_t *p, size_t len, size_t mtu, uint64_t max_msg_len,
		       struct warp_pkt_hdr *h, struct warp_frames *kept);

/* Walk frames of a validated packet: *off starts at WARP_WIRE_HDR_LEN and
 * len is the packet length without the CRC trailer (or tag).
 * Returns 1 with *f filled, 0 at the end. Must only be used on packets that
 * were validated. */
int warp__frame_next(const uint8_t *p, size_t len, size_t *off, struct warp_frame *f);

const char *warp__drop_reason_str(int reason);

/* The payload one STREAM frame carries in a packet of `mtu` bytes. */
static inline uint32_t warp__stream_payload_max(uint32_t mtu)
{
	return mtu - WARP_WIRE_TAG_RESERVE - WARP_WIRE_HDR_LEN - WARP_FRAME_STREAM_HDR;
}

/* A message of len bytes on the sender: its fragments, and the TX arena
 * block it takes (the payload, 8-aligned, then one bit per fragment). */
static inline uint32_t warp__tx_nfrags(uint64_t len, uint32_t payload_max)
{
	return len ? (uint32_t)((len + payload_max - 1) / payload_max) : 1;
}
static inline uint64_t warp__tx_block_bytes(uint64_t len, uint32_t payload_max)
{
	return ((len + 7) & ~(uint64_t)7) + (((uint64_t)warp__tx_nfrags(len, payload_max) + 63) / 64) * 8;
}

#endif
