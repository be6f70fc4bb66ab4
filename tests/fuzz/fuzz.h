/* SPDX-License-Identifier: Apache-2.0 */
#ifndef WARP_FUZZ_H
#define WARP_FUZZ_H
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Valid inputs built with the encoders; length in bytes 1598..1599 of each slot. */
size_t warp_fuzz_seeds(uint8_t seeds[][1600], size_t max);
#endif
