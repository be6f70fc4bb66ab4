/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "warp/error.h"

static _Thread_local char errdetail[512];

const char *warp_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define WARP__ERR_STR(name, val, msg) \
	case -(val):                      \
		return msg;
		WARP_ERRNO_MAP(WARP__ERR_STR)
#undef WARP__ERR_STR
	default:
		return "unknown error";
	}
}

const char *warp_errdetail(void)
{
	return errdetail;
}

void warp__err_clear(void)
{
	errdetail[0] = '\0';
}

int warp__err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errdetail, sizeof(errdetail), fmt, ap);
	va_end(ap);
	return err;
}

int warp__err_prefix(int err, const char *fmt, ...)
{
	char old[sizeof(errdetail)];
	char pre[256];
	va_list ap;
	memcpy(old, errdetail, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	/* truncation is acceptable: the detail is a diagnostic */
	if (snprintf(errdetail, sizeof(errdetail), "%s%s", pre, old) < 0)
		errdetail[0] = '\0';
	return err;
}
