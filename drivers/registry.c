/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "driver.h"

static const struct warp_driver_ops *const drivers[] = {
	&warp__loop_driver,
#ifdef WARP_HAVE_URING
	&warp__uring_udp_driver,
	&warp__uring_tcp_driver,
#endif
#ifdef WARP_HAVE_DPDK
	&warp__dpdk_driver,
#endif
};

const struct warp_driver_ops *warp__driver_find(const char *name)
{
	for (size_t i = 0; i < WARP__ARRAY_LEN(drivers); i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

#ifdef WARP_HAVE_URING
#define NAMES_URING ", uring-udp, uring-tcp"
#else
#define NAMES_URING " (uring-udp/uring-tcp: built without liburing)"
#endif
#ifdef WARP_HAVE_DPDK
#define NAMES_DPDK ", dpdk"
#else
#define NAMES_DPDK " (dpdk: built without DPDK)"
#endif

const char *warp__driver_names(void)
{
	return "loop" NAMES_URING NAMES_DPDK;
}
