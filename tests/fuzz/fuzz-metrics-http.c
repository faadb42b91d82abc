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
#include "standalone.h"

/* A seed with up to 8 edits: a byte replaced, an HTTP-ish byte inserted, or a cut. */
size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds)
{
	size_t k, len;

	(void)i;
	if (!seeds->nr)
		return 0;
	k = (size_t)(fuzz_rand(rng) % seeds->nr);
	len = seeds->len[k] < cap ? seeds->len[k] : cap;
	memcpy(buf, seeds->data[k], len);
	for (int m = (int)(fuzz_rand(rng) % 8); m >= 0; m--) {
		size_t pos = len ? (size_t)(fuzz_rand(rng) % len) : 0;

		switch (fuzz_rand(rng) % 3) {
		case 0:
			if (len)
				buf[pos] = (uint8_t)fuzz_rand(rng);
			break;
		case 1:
			if (len < cap) {
				memmove(buf + pos + 1, buf + pos, len - pos);
				buf[pos] = (uint8_t)" /\r\n:GETHP"[fuzz_rand(rng) % 11];
				len++;
			}
			break;
		default:
			len = pos;
			break;
		}
	}
	return len;
}
#endif
