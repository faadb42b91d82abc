// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the reply parser of nvemud's admin command forwarding
 * (src/daemon/admin-fwd.c), fed a stream as a hostile forwarder may write
 * it and consumed as the connection does: message after message, cut at
 * any length, then every parsed reply checked against both opcodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include <nvemu/admin-fwd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void consume(const uint8_t *buf, size_t len)
{
	size_t off = 0;

	for (;;) {
		struct nvemud_fwd_msg m;
		int used = nvemud_fwd_parse_reply(buf + off, len - off, &m);

		if (used <= 0)
			return;
		if ((size_t)used > len - off || m.data_len > NVEMU_FWD_DATA_MAX ||
		    m.data < buf + off || m.data + m.data_len > buf + off + (size_t)used)
			abort();
		for (int k = 0; k < 2; k++) {
			uint8_t opc = k ? 0x09 : 0x06;

			if (nvemud_fwd_check_reply(&m, opc))
				continue;
			/* Accepted: what the engine is then given must be coherent. */
			if (m.flags & ~NVEMU_FWD_F_FALLBACK)
				abort();
			if (!(m.flags & NVEMU_FWD_F_FALLBACK) && opc == 0x06 &&
			    m.data_len != (m.status ? 0u : NVEMU_FWD_DATA_MAX))
				abort();
			if (opc == 0x09 && m.data_len)
				abort();
			if (m.data_len) {
				volatile uint8_t x = m.data[m.data_len - 1];
				(void)x;
			}
		}
		off += (size_t)used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 3 * 4128)
		size = 3 * 4128;
	/* The whole stream at once, then cut where a read could end. */
	consume(data, size);
	for (size_t cut = size > 48 ? size - 48 : 0; cut < size; cut++)
		consume(data, cut);
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
	static uint8_t seeds[16][8192];
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
		uint8_t buf[8192];
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
					buf[pos] = (uint8_t)"\x00\x01\x02\x10NVFW\xff"[rand() % 9];
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
