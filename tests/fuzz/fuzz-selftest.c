// SPDX-License-Identifier: MIT
/*
 * A libFuzzer target that misbehaves on purpose, for tests/fuzz/selftest.sh
 * only: it proves that run-fuzzer.sh turns each kind of finding into a
 * failed test with the input saved. Never part of a fuzzing campaign.
 *
 * With NVEMU_FUZZ_SELFTEST=1 in the environment, an input starting with
 * one of these words misbehaves; anything else (or without it, any input)
 * returns at once:
 *   CRASH  writes past a heap block (AddressSanitizer)
 *   UB     overflows a signed integer (UndefinedBehaviorSanitizer)
 *   ABORT  calls abort(), as a harness assertion does
 *   LEAK   returns without freeing a block (LeakSanitizer)
 *   HANG   never returns (libFuzzer's -timeout)
 *   OOM    allocates until libFuzzer's -rss_limit_mb stops it
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int sink;
static char *volatile hoard;

static int starts(const uint8_t *d, size_t n, const char *w)
{
	size_t l = strlen(w);

	return n >= l && !memcmp(d, w, l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int armed = -1;

	if (armed < 0)
		armed = getenv("NVEMU_FUZZ_SELFTEST") && !strcmp(getenv("NVEMU_FUZZ_SELFTEST"), "1");
	if (!armed)
		return 0;
	if (starts(data, size, "CRASH")) {
		volatile char *p = malloc(8);

		p[8 + (size & 1)] = 1;
		free((void *)p);
	} else if (starts(data, size, "UB")) {
		volatile int big = 0x7fffffff;

		sink = big + (int)size;
	} else if (starts(data, size, "ABORT")) {
		abort();
	} else if (starts(data, size, "LEAK")) {
		void *volatile p = malloc(4096);

		memset((void *)p, 1, 4096);
		p = NULL;
	} else if (starts(data, size, "HANG")) {
		for (;;)
			sleep(1);
	} else if (starts(data, size, "OOM")) {
		for (;;) {
			char *p = malloc(64 << 20);

			if (p)
				memset(p, 1, 64 << 20);
			hoard = p; /* kept reachable: the allocation cannot be elided */
		}
	}
	return 0;
}
