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
#include "standalone.h"

/* A seed with up to 8 edits, inserting JSON punctuation and digits. */
size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds)
{
	static const char alphabet[] = "{}[]\",:0123";
	size_t len;

	(void)i;
	if (cap > 16384)
		cap = 16384;
	len = fuzz_seed_copy(seeds, buf, cap, rng);
	return fuzz_edit(buf, len, cap, rng, alphabet, sizeof(alphabet) - 1);
}
#endif
