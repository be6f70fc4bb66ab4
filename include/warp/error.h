/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file warp/error.h
 * Error codes of the warp API.
 *
 * Every function of the API returns 0 (or a non-negative count) on success
 * and a negative WARP_E* code on failure. warp_strerror() names a code.
 * Slow-path functions (create, config, peer and stream setup) also leave a
 * detail string for the calling thread: warp_errdetail() says which key,
 * peer or value was wrong.
 */
#ifndef WARP_ERROR_H
#define WARP_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X-macro table: code name, value, message. The enum and the strings are
 * generated from this one list so they cannot drift apart. */
#define WARP_ERRNO_MAP(X)                                                        \
	X(EINVAL, 1, "invalid argument")                                             \
	X(EINVALID_NODE, 2, "invalid or unknown node")                               \
	X(ETOOBIG, 3, "payload too large")                                           \
	X(EAGAIN, 4, "backpressure: ring, pool or window full, try again")           \
	X(ECLOSED, 5, "connection closed")                                           \
	X(ETIMEDOUT, 6, "timed out")                                                 \
	X(EPROTO, 7, "protocol error")                                               \
	X(ENOMEM, 8, "out of memory")                                                \
	X(EDRIVER, 9, "driver failure")                                              \
	X(ESHUTDOWN_TIMEOUT, 10, "shutdown timed out with messages in flight")       \
	X(ECIRCUIT_OPEN, 11, "circuit open")                                         \
	X(ENACK, 12, "not acknowledged by the receiver")                             \
	X(ENOENT, 13, "no such object")                                              \
	X(EEXIST, 14, "already exists")                                              \
	X(ENOTSUP, 15, "not supported")                                              \
	X(ESTATE, 16, "operation not allowed in the current state")                  \
	X(ECONFIG, 17, "bad configuration")                                          \
	X(EENCODE, 18, "encode error")                                               \
	X(EHANDSHAKE, 19, "handshake failed")

enum warp_errno {
#define WARP__ERR_ENUM(name, val, msg) WARP_##name = -(val),
	WARP_ERRNO_MAP(WARP__ERR_ENUM)
#undef WARP__ERR_ENUM
};

/**
 * Name an error code.
 * @param err a WARP_E* code (negative); 0 gives "success".
 * @return a static string; never NULL (unknown codes give "unknown error").
 * Thread-safe.
 */
const char *warp_strerror(int err);

/**
 * The detail of the last slow-path error on the calling thread, for example
 * "peers[2]: node id 'a b@x:1': invalid character ' ' in name".
 * @return a thread-local string, valid until the next warp call on this
 *         thread that fails; "" when there is none.
 */
const char *warp_errdetail(void);

#ifdef __cplusplus
}
#endif
#endif
