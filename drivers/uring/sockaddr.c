/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockaddr.h"
#include "warp/error.h"

int warp__sockaddr_parse(const char *s, int socktype, struct sockaddr_storage *ss,
			 socklen_t *len)
{
	char host[256];
	const char *port;
	if (!s || !*s)
		return warp__err(WARP_EINVALID_NODE, "address: empty");
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return warp__err(WARP_EINVALID_NODE,
					 "address '%s': expected [ipv6]:port", s);
		size_t n = (size_t)(end - s - 1);
		if (n == 0 || n >= sizeof(host))
			return warp__err(WARP_EINVALID_NODE, "address '%s': bad IPv6 host", s);
		memcpy(host, s + 1, n);
		host[n] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon)
			return warp__err(WARP_EINVALID_NODE, "address '%s': expected host:port", s);
		size_t n = (size_t)(colon - s);
		if (n == 0 || n >= sizeof(host))
			return warp__err(WARP_EINVALID_NODE, "address '%s': bad host", s);
		if (memchr(s, ':', n))
			return warp__err(WARP_EINVALID_NODE,
					 "address '%s': write IPv6 addresses as [addr]:port", s);
		memcpy(host, s, n);
		host[n] = '\0';
		port = colon + 1;
	}
	char *endp;
	long p = strtol(port, &endp, 10);
	if (!*port || *endp || p < 0 || p > 65535)
		return warp__err(WARP_EINVALID_NODE, "address '%s': port '%s' is not 0..65535", s,
				 port);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = socktype;
	hints.ai_flags = AI_NUMERICSERV;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc || !res)
		return warp__err(WARP_EINVALID_NODE, "address '%s': host '%s' not resolvable: %s", s,
				 host, gai_strerror(rc));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

void warp__sockaddr_pack(const struct sockaddr *sa, socklen_t len, warp__addr_t *out)
{
	memset(out, 0, sizeof(*out));
	if (len > sizeof(out->b))
		len = sizeof(out->b);
	memcpy(out->b, sa, len);
	out->len = (uint8_t)len;
}

socklen_t warp__sockaddr_unpack(const warp__addr_t *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, a->b, a->len);
	return a->len;
}

const char *warp__sockaddr_str(const struct sockaddr *sa, char *buf, size_t cap)
{
	char h[INET6_ADDRSTRLEN];
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, h, sizeof(h));
		snprintf(buf, cap, "%s:%u", h, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof(h));
		snprintf(buf, cap, "[%s]:%u", h, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, cap, "(family %d)", sa->sa_family);
	}
	return buf;
}

void warp__sock_bufs(int fd, uint32_t size)
{
	int bytes = size > INT_MAX ? INT_MAX : (int)size;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}
