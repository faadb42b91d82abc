/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "standalone.h"

#define MAX_SEEDS 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static uint8_t *seed_data[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static struct fuzz_seeds seeds = {seed_data, seed_len, 0};

uint64_t fuzz_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

__attribute__((weak)) size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap,
						   uint64_t *rng, const struct fuzz_seeds *s)
{
	size_t len;

	(void)i;
	if (!s->nr) {
		len = 1 + fuzz_rand(rng) % (cap < 512 ? cap : 512);
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)fuzz_rand(rng);
		return len;
	}
	{
		unsigned k = (unsigned)(fuzz_rand(rng) % s->nr), flips = 1 + fuzz_rand(rng) % 4;

		len = s->len[k] < cap ? s->len[k] : cap;
		memcpy(buf, s->data[k], len);
		for (unsigned f = 0; len && f < flips; f++)
			buf[fuzz_rand(rng) % len] ^= (uint8_t)(1u << (fuzz_rand(rng) % 8));
	}
	return len;
}

size_t fuzz_seed_copy(const struct fuzz_seeds *s, uint8_t *buf, size_t cap, uint64_t *rng)
{
	size_t k, len;

	if (!s->nr)
		return 0;
	k = (size_t)(fuzz_rand(rng) % s->nr);
	len = s->len[k] < cap ? s->len[k] : cap;
	memcpy(buf, s->data[k], len);
	return len;
}

size_t fuzz_edit(uint8_t *buf, size_t len, size_t cap, uint64_t *rng, const char *alphabet,
		 size_t alen)
{
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
				buf[pos] = (uint8_t)alphabet[fuzz_rand(rng) % alen];
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

/* Runs one file and keeps it as a seed; -1 if it cannot be read. */
static int load(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = malloc(FUZZ_MAX_INPUT);
	size_t n;

	if (!f || !b) {
		perror(path);
		free(b);
		if (f)
			fclose(f);
		return -1;
	}
	n = fread(b, 1, FUZZ_MAX_INPUT, f);
	fclose(f);
	LLVMFuzzerTestOneInput(b, n);
	if (seeds.nr < MAX_SEEDS) {
		seed_data[seeds.nr] = b;
		seed_len[seeds.nr++] = n;
	} else {
		free(b);
	}
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* A file, or every regular file of a directory in name order; how many, or -1. */
static int replay(const char *path)
{
	struct dirent **ents;
	struct stat st;
	int n, files = 0, ret = 0;

	if (stat(path, &st)) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return load(path) ? -1 : 1;
	n = scandir(path, &ents, NULL, by_name);
	if (n < 0) {
		perror(path);
		return -1;
	}
	for (int k = 0; k < n; k++) {
		char p[4096];

		snprintf(p, sizeof(p), "%s/%s", path, ents[k]->d_name);
		if (!ret && ents[k]->d_name[0] != '.' && !stat(p, &st) && S_ISREG(st.st_mode)) {
			if (load(p))
				ret = -1;
			files++;
		}
		free(ents[k]);
	}
	free(ents);
	return ret ? ret : files;
}

int main(int argc, char **argv)
{
	const char *it = getenv("FUZZ_ITERATIONS"), *sd = getenv("FUZZ_SEED");
	unsigned iters = it ? (unsigned)atoi(it) : 2000, files = 0;
	uint64_t rng = sd ? strtoull(sd, NULL, 0) | 1 : 0x9e3779b97f4a7c15ull;
	static uint8_t buf[FUZZ_MAX_INPUT];

	printf("1..1\n");
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		int r = replay(argv[i]);

		if (r < 0) {
			printf("not ok 1 - cannot read %s\n", argv[i]);
			return 1;
		}
		files += (unsigned)r;
	}
	if (argc > 1 && !files) {
		printf("not ok 1 - no corpus files in %s\n", argv[1]);
		return 1;
	}
	for (unsigned i = 0; i < iters; i++)
		LLVMFuzzerTestOneInput(buf,
				       fuzz_standalone_input(i, buf, sizeof(buf), &rng, &seeds));
	for (unsigned i = 0; i < seeds.nr; i++)
		free(seed_data[i]);
	printf("ok 1 - %u corpus files and %u generated inputs\n", files, iters);
	return 0;
}
