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
	static const char alphabet[] = " /\r\n:GETHP";
	size_t len;

	(void)i;
	if (cap > 65536)
		cap = 65536;
	len = fuzz_seed_copy(seeds, buf, cap, rng);
	return fuzz_edit(buf, len, cap, rng, alphabet, sizeof(alphabet) - 1);
}
#endif
