// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the HTTP request head parser of nvemud's --metrics
 * endpoint (metrics.c), fed whatever a peer may send, cut at every length
 * the reads of a connection could deliver.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[512];

	if (size > 4096)
		size = 4096; /* the endpoint reads no more */
	for (size_t cut = size > 64 ? size - 64 : 0; cut <= size; cut++) {
		int code;

		memset(path, 0x5a, sizeof(path));
		code = nvemud_http_parse_request((const char *)data, cut, path, sizeof(path));
		if (code != 0 && code != 200 && code != 400 && code != 405 && code != 414 &&
		    code != 431)
			abort();
		if (code == 200 && (!memchr(path, '\0', sizeof(path)) || path[0] == '\0'))
			abort();
	}
	return 0;
}

#ifdef FUZZ_STANDALONE
#include <dirent.h>
#include <stdio.h>

/*
 * A plain program for CI without libFuzzer: replays the seed files in the
 * directory given, then FUZZ_ITERATIONS random mutations of them.
 */
int main(int argc, char **argv)
{
	static uint8_t seeds[16][4096];
	size_t lens[16], nr = 0;
	const char *it = getenv("FUZZ_ITERATIONS");
	long iters = it ? atol(it) : 10000;
	struct dirent *e;
	DIR *dir;

	if (argc != 2 || !(dir = opendir(argv[1]))) {
		printf("1..1\nnot ok 1 - usage: %s CORPUS_DIR\n", argv[0]);
		return 1;
	}
	while ((e = readdir(dir)) && nr < 16) {
		char p[4096];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", argv[1], e->d_name);
		f = fopen(p, "rb");
		if (!f)
			continue;
		lens[nr] = fread(seeds[nr], 1, sizeof(seeds[nr]), f);
		fclose(f);
		LLVMFuzzerTestOneInput(seeds[nr], lens[nr]);
		nr++;
	}
	closedir(dir);
	srand(1);
	for (long i = 0; nr && i < iters; i++) {
		uint8_t buf[4096];
		size_t k = (size_t)rand() % nr, len = lens[k];

		memcpy(buf, seeds[k], len);
		for (int m = rand() % 8; m >= 0; m--) {
			size_t pos = len ? (size_t)rand() % len : 0;

			switch (rand() % 3) {
			case 0:
				if (len)
					buf[pos] = (uint8_t)rand();
				break;
			case 1: /* insert a byte */
				if (len < sizeof(buf)) {
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = (uint8_t)" /\r\n:GETHP"[rand() % 11];
					len++;
				}
				break;
			default: /* cut */
				len = pos;
				break;
			}
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("1..1\nok 1 - %zu seeds and %ld mutations parsed\n", nr, iters);
	return nr ? 0 : 1;
}
#endif
