/* SPDX-License-Identifier: MIT */
/*
 * The fuzz targets as plain programs (-DFUZZ_STANDALONE, the *-smoke tests
 * that run without libFuzzer): standalone.c replays the corpus files and
 * directories named on the command line (directories in name order), then
 * runs FUZZ_ITERATIONS (default 2000) generated inputs through
 * LLVMFuzzerTestOneInput, and prints one TAP result.
 */
#ifndef NVEMU_FUZZ_STANDALONE_H
#define NVEMU_FUZZ_STANDALONE_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_INPUT (1u << 16)

struct fuzz_seeds {
	uint8_t **data;
	size_t *len;
	unsigned nr;
};

/* xorshift64: the generators' randomness, seeded from FUZZ_SEED. */
uint64_t fuzz_rand(uint64_t *s);

/*
 * Input i of the generated ones into buf (cap bytes); returns its length. A
 * target defines it to make inputs that reach deep (valid framing with
 * random fields); the default flips 1 to 4 bits of a seed.
 */
size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds);

/* A copy of a random seed in buf (at most cap bytes); its length, 0 without seeds. */
size_t fuzz_seed_copy(const struct fuzz_seeds *seeds, uint8_t *buf, size_t cap, uint64_t *rng);
/*
 * Up to 8 edits of buf[0..len): a byte replaced, a byte of alphabet (alen
 * bytes: what the format is made of) inserted, or the rest cut; the new length.
 */
size_t fuzz_edit(uint8_t *buf, size_t len, size_t cap, uint64_t *rng, const char *alphabet,
		 size_t alen);

#endif
