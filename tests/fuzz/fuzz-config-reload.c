// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: configuration reload (config-reload.c). A daemon with
 * the default configuration (and an NVMe/TCP listener) re-reads whatever
 * file it is given: the difference is applied without a crash, a leak or a
 * broken registry, and reloading the original configuration afterwards
 * brings back what it had.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvemu_error nerr = { 0 };
	struct rpc_err e = { 0 };
	json_t *cfg, *orig, *report = NULL, *again;
	struct nvemud *d;

	if (size > 16384)
		return 0;
	cfg = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!cfg)
		return 0;
	d = nvemud_new(NULL, -1); /* quiet */
	if (!d || nvemud_load_default(d, &nerr))
		abort();
	orig = nvemud_save_config(d);
	if (!nvemud_reload_config(d, cfg, &report, &e) && !json_is_object(report))
		abort();
	json_decref(report);
	report = NULL;
	/* Back to the start: what the file changed is undone. */
	if (nvemud_reload_config(d, orig, &report, &e))
		abort();
	json_decref(report);
	again = nvemud_save_config(d);
	if (json_array_size(json_object_get(again, "calls")) <
	    json_array_size(json_object_get(orig, "calls")) / 2)
		abort(); /* most of it must be back (some calls may fail against leftovers) */
	json_decref(again);
	json_decref(orig);
	json_decref(cfg);
	nvemud_free(d);
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
	static uint8_t seeds[16][16384];
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
		static uint8_t buf[16384];
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
					buf[pos] = (uint8_t)"{}[]\",:0123"[rand() % 11];
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
	printf("1..1\nok 1 - %zu seeds and %ld mutations reloaded\n", nr, iters);
	return nr ? 0 : 1;
}
#endif
