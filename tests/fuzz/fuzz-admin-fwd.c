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
#include "standalone.h"

/* A seed with up to 8 edits, inserting bytes the reply framing is made of. */
size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds)
{
	static const char alphabet[] = "\x00\x01\x02\x10NVFW\xff";
	size_t len;

	(void)i;
	if (cap > 8192)
		cap = 8192;
	len = fuzz_seed_copy(seeds, buf, cap, rng);
	return fuzz_edit(buf, len, cap, rng, alphabet, sizeof(alphabet) - 1);
}
#endif
