/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the subsystem state file (src/engine/subsys-state.c),
 * outside input when nvemud reads it back at start. What parses must hold
 * together (a running sanitize is in progress with a start action) and must
 * round-trip through the writer unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/nvemu-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvemu_sanitize a, b;
	char text[256];
	int n;

	memset(&a, 0, sizeof(a));
	if (nvemu_subsys_state_parse(&a, (const char *)data, size))
		return 0;
	if (a.resume && (a.failed || (a.sstat & 7) != NVME_SANITIZE_SSTAT_STATUS_IN_PROGESS))
		abort();
	n = nvemu_subsys_state_format(&a, text, sizeof(text));
	if (n < 0)
		abort();
	memset(&b, 0, sizeof(b));
	if (nvemu_subsys_state_parse(&b, text, (size_t)n))
		abort();
	if (a.resume != b.resume || a.failed != b.failed || a.sstat != b.sstat ||
	    a.scdw10 != b.scdw10 || a.ovrpat != b.ovrpat || a.passes != b.passes)
		abort();
	return 0;
}
