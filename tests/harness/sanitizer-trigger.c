// SPDX-License-Identifier: MIT
/*
 * Misbehaves on purpose for tests/harness/sanitizer-selftest.sh, which
 * checks that a sanitizer report kills the process:
 *   sanitizer-trigger ub    signed overflow (UndefinedBehaviorSanitizer)
 *   sanitizer-trigger leak  a block never freed (LeakSanitizer)
 *   sanitizer-trigger heap  a write past a heap block (AddressSanitizer)
 * Prints "survived" if the process goes on after the misbehaviour.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int sink;
static void *volatile keep;

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";

	if (!strcmp(what, "ub")) {
		volatile int big = 0x7fffffff;

		sink = big + argc;
	} else if (!strcmp(what, "leak")) {
		keep = malloc(4096);
		memset(keep, 1, 4096);
		keep = NULL;
	} else if (!strcmp(what, "heap")) {
		volatile char *p = malloc(8);

		p[8 + argc % 2] = 1;
		free((void *)p);
	} else {
		fprintf(stderr, "usage: %s ub|leak|heap\n", argv[0]);
		return 2;
	}
	printf("survived\n");
	return 0;
}
