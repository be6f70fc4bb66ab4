/* SPDX-License-Identifier: Apache-2.0 */
/* Socket address and option helpers shared by the io_uring drivers (slow
 * path). */
#ifndef WARP_URING_SOCKADDR_H
#define WARP_URING_SOCKADDR_H

#include <sys/socket.h>

#include "engine/pool.h"

/* Parse "host:port" or "[v6addr]:port" (host may be a name) for the given
 * socket type. 0 or WARP_EINVALID_NODE with a detail naming the string. */
int warp__sockaddr_parse(const char *s, int socktype, struct sockaddr_storage *ss,
			 socklen_t *len);
void warp__sockaddr_pack(const struct sockaddr *sa, socklen_t len, warp__addr_t *out);
socklen_t warp__sockaddr_unpack(const warp__addr_t *a, struct sockaddr_storage *ss);
/* "1.2.3.4:5" / "[::1]:5" into buf; returns buf. */
const char *warp__sockaddr_str(const struct sockaddr *sa, char *buf, size_t cap);
/* SO_RCVBUF and SO_SNDBUF of fd to `bytes`: the FORCE variants first (they
 * pass rmem_max/wmem_max when we may, CAP_NET_ADMIN), the plain ones
 * (capped by the kernel) otherwise; above INT_MAX is INT_MAX. */
void warp__sock_bufs(int fd, uint32_t bytes);

#endif
