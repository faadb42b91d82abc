// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the vfio-user client's reading of a region info reply
 * with capabilities (nvemu_vfu_sparse_area, src/driver/vfio-user-client.c),
 * as a hostile server may send it: capability chains that loop, point past
 * the reply or overlap, area counts that lie, areas outside the region.
 * Whatever it returns must be page aligned and inside the region.
 *
 * Input: the reply body (struct vfio_region_info and what follows).
 * Built by tests/fuzz/meson.build (CC=clang, -Dfuzz=true).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/vfio.h>

#include "driver/pci-dev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vfio_region_info ri;
	uint64_t off = 0, len = 0;
	uint8_t *copy;

	if (size > 4096)
		return 0;
	/* an exact-size copy, so reading past the end is caught */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (!nvemu_vfu_sparse_area(copy, (uint32_t)size, &off, &len)) {
		memcpy(&ri, copy, sizeof(ri));
		if (!len || (off & 4095) || (len & 4095) || off > ri.size || len > ri.size - off)
			abort();
	}
	free(copy);
	return 0;
}
