/* SPDX-License-Identifier: Apache-2.0 */
/** @file warp/warp.h  The whole public API of libwarp. */
#ifndef WARP_WARP_H
#define WARP_WARP_H

#include "warp/error.h"
#include "warp/config.h"
#include "warp/dpdk.h"
#include "warp/stats.h"
#include "warp/engine.h"
#include "warp/spsc.h"
#include "warp/hist.h"
#include "warp/loop.h"

#define WARP_VERSION_STRING "0.1.0"

#endif
