/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay runner for the fuzz target (no libFuzzer needed):
 *   fuzz_packet_replay [FILE|DIR ...]   run the built-in seeds, their
 *                                       truncations and bit flips, then files
 *   fuzz_packet_replay --write-seeds DIR   write the built-in seeds as files
 * Exits non-zero only by crashing (sanitizers) — it prints what it ran.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static uint8_t seeds[16][1600];

static size_t run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	static uint8_t buf[1 << 16];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 1;
}

static size_t run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	DIR *d = opendir(path);
	size_t n = 0;
	struct dirent *de;
	char p[4096];
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		n += run_file(p);
	}
	if (d)
		closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	size_t ns = warp_fuzz_seeds(seeds, 16);
	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
		mkdir(argv[2], 0755);
		for (size_t i = 0; i < ns; i++) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/seed-%zu", argv[2], i);
			FILE *f = fopen(p, "wb");
			if (!f) {
				perror(p);
				return 1;
			}
			fwrite(seeds[i], 1, (size_t)(seeds[i][1598] << 8 | seeds[i][1599]), f);
			fclose(f);
		}
		printf("wrote %zu seeds to %s\n", ns, argv[2]);
		return 0;
	}
	size_t runs = 0;
	uint8_t b[1600];
	for (size_t i = 0; i < ns; i++) {
		size_t len = (size_t)(seeds[i][1598] << 8 | seeds[i][1599]);
		for (size_t l = 0; l <= len; l++, runs++)
			LLVMFuzzerTestOneInput(seeds[i], l);
		for (size_t k = 1; k < len; k++)
			for (int bit = 0; bit < 8; bit++, runs++) {
				memcpy(b, seeds[i], len);
				b[k] ^= (uint8_t)(1u << bit);
				LLVMFuzzerTestOneInput(b, len);
			}
	}
	size_t files = 0;
	for (int i = 1; i < argc; i++)
		files += run_path(argv[i]);
	printf("fuzz replay: %zu seed variants and %zu corpus files ran without a crash\n", runs,
	       files);
	return 0;
}
