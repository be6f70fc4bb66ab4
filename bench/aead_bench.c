/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aead-bench: what per-packet protection costs on one core (src/crypto/aead.c):
 * seal and open of warp packets of several sizes with AES-128-GCM (warp's
 * AES-NI code, src/crypto/gcm.c, and OpenSSL's EVP interface: warp uses the
 * first up to WARP_AEAD_FAST_MAX payload bytes, the second above and on CPUs
 * without AES-NI) and ChaCha20-Poly1305, next to the CRC32C trailer
 * an unprotected packet gets (the baseline, measured in the same run).
 * Medians of 5 interleaved runs.
 *   aead-bench [--packets N]
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/aead.h"
#include "proto/wire.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static volatile uint32_t sink;

static const struct row {
	const char *name;
	int alg; /* 0: CRC32C */
	bool fast;
} rows[] = {
	{ "crc32c (baseline)", 0, false },
	{ "aes-128-gcm gcm.c", WARP_AEAD_AES128GCM, true },
	{ "aes-128-gcm openssl", WARP_AEAD_AES128GCM, false },
	{ "chacha20-poly1305", WARP_AEAD_CHACHA20POLY1305, false },
};
enum { NROWS = sizeof(rows) / sizeof(rows[0]) };

/* ns per packet: seal + open (or CRC on both ends for alg 0) */
static double run(const struct row *row, size_t payload, long packets)
{
	int alg = row->alg;
	warp__aead_set_fast_max(row->fast ? SIZE_MAX : 0);
	static uint8_t pkt[9100];
	uint8_t secret[WARP_AEAD_SECRET_LEN] = { 7 };
	struct warp__aead tx, rx;
	if (alg && (warp__aead_init(&tx, alg, secret, 1) || warp__aead_init(&rx, alg, secret, 0))) {
		fprintf(stderr, "aead-bench: init failed\n");
		exit(1);
	}
	memset(pkt, 0x5a, sizeof(pkt));
	double t0 = now_s();
	for (long pn = 1; pn <= packets; pn++) {
		if (alg) {
			long n = warp__aead_seal(&tx, (uint64_t)pn, pkt, WARP_WIRE_HDR_LEN, payload);
			if (warp__aead_open(&rx, (uint64_t)pn, pkt, WARP_WIRE_HDR_LEN, (size_t)n) < 0) {
				fprintf(stderr, "aead-bench: open failed\n");
				exit(1);
			}
		} else {
			size_t n = warp__pkt_seal(pkt, WARP_WIRE_HDR_LEN + payload);
			sink += warp__crc32c(pkt, n - WARP_WIRE_CRC_LEN); /* the check */
		}
	}
	double ns = (now_s() - t0) * 1e9 / (double)packets;
	if (alg) {
		warp__aead_fini(&tx);
		warp__aead_fini(&rx);
	}
	return ns;
}

int main(int argc, char **argv)
{
	long packets = 200000;
	if (argc == 3 && !strcmp(argv[1], "--packets"))
		packets = atol(argv[2]);
	else if (argc != 1) {
		fprintf(stderr, "usage: aead-bench [--packets N]\n");
		return 2;
	}
	static const size_t sizes[] = { 64, 256, 1024, 1432, 4096, 8192 };
	enum { NSIZES = sizeof(sizes) / sizeof(sizes[0]) };
	enum { ROUNDS = 5 };
	if (!warp__gcm_supported())
		printf("(this CPU lacks AES-NI or PCLMULQDQ: both aes-128-gcm rows are OpenSSL's)\n");
	printf("aead-bench: seal + open per packet, one core, median of %d interleaved runs of "
	       "%ld packets\n\n%-20s", ROUNDS, packets, "payload bytes");
	for (size_t s = 0; s < NSIZES; s++)
		printf("%12zu", sizes[s]);
	printf("\n");
	double med[NROWS][NSIZES];
	for (size_t s = 0; s < NSIZES; s++) {
		double r[NROWS][ROUNDS];
		for (int k = 0; k < ROUNDS; k++)
			for (int a = 0; a < NROWS; a++)
				r[a][k] = run(&rows[a], sizes[s], packets);
		for (int a = 0; a < NROWS; a++) {
			qsort(r[a], ROUNDS, sizeof(double), cmp);
			med[a][s] = r[a][ROUNDS / 2];
		}
	}
	for (int a = 0; a < NROWS; a++) {
		printf("%-20s", rows[a].name);
		for (size_t s = 0; s < NSIZES; s++)
			printf("%9.0f ns", med[a][s]);
		printf("\n");
	}
	printf("\n(ns per packet for both ends; warp uses gcm.c up to %u payload bytes, OpenSSL "
	       "above)\n",
	       WARP_AEAD_FAST_MAX);
	return 0;
}
