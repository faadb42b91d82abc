/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: export device strings and GPT partition probing
 * (src/bdev/partition.c). What a namespace holds is written by its hosts,
 * so the partition table libblkid parses is hostile input.
 *
 * Input: up to 64 KiB, written at the start of a 256-block (128 KiB)
 * namespace; its last 16 KiB are also written at the namespace's end (where
 * the backup GPT lives). The namespace is then probed for a fixed partition
 * UUID, and the input's first line is resolved as a device string. A
 * partition found must lie inside the namespace and be non-empty.
 * Seeds (corpus/fuzz-partition) are tables sfdisk wrote.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nvemu/ctrl-state.h>
#include <nvemu/nvemu.h>
#include <nvemu/partition.h>

#define NS_BLOCKS 256
#define NS_BYTES (NS_BLOCKS * 512)
#define HEAD_MAX (64 * 1024)
#define TAIL_MAX (16 * 1024)
#define UUID "8e2d4c6b-1a3f-4b5d-9c7e-6f8a0b1c2d3e"

static struct nvemu_subsys *subsys;
static struct nvemu_bdev *bdev;

static void done(struct nvemu_bio *bio, int err)
{
	if (err)
		abort();
}

/* RAM bdevs complete inline. */
static void bio(enum nvemu_bio_op op, uint64_t off, void *buf, uint64_t len)
{
	struct nvemu_bio b = { .op = op, .offset = off, .len = len, .buf = buf, .end_io = done };

	if (nvemu_bdev_submit(bdev, &b))
		abort();
}

static void setup(void)
{
	struct nvemu_subsys_params sp;
	struct nvemu_ns_params np;
	struct nvemu_ns_info ni;
	uint32_t nsid;

	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:fuzz";
	sp.serial = "FUZZSN";
	if (nvemu_subsys_create(&sp, &subsys, NULL))
		abort();
	nvemu_ns_params_init(&np);
	np.nblocks = NS_BLOCKS;
	if (nvemu_subsys_add_ns_ex(subsys, &np, &nsid, NULL))
		abort();
	nvemu_ns_info(nvemu_subsys_ns(subsys, nsid), &ni);
	bdev = ni.bdev;
}

static void check(int rc, const struct nvemu_ns_range *r)
{
	if (!rc && (!r->nr_lbas || r->first_lba + r->nr_lbas > NS_BLOCKS))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvemu_ns_range r;
	struct nvemu_error err;
	char name[300];
	size_t n, whole, tail;

	if (!subsys)
		setup();
	bio(NVEMU_BIO_DEALLOCATE, 0, NULL, NS_BYTES);
	n = size < HEAD_MAX ? size : HEAD_MAX;
	whole = n & ~(size_t)511;
	if (whole)
		bio(NVEMU_BIO_WRITE, 0, (void *)(uintptr_t)data, whole);
	if (n > whole) {
		uint8_t blk[512] = { 0 };

		memcpy(blk, data + whole, n - whole);
		bio(NVEMU_BIO_WRITE, whole, blk, sizeof(blk));
	}
	tail = size < TAIL_MAX ? size & ~(size_t)511 : TAIL_MAX;
	if (tail)
		bio(NVEMU_BIO_WRITE, NS_BYTES - tail, (void *)(uintptr_t)(data + size - tail), tail);
	check(nvemu_ns_find_partition(subsys, 1, UUID, &r, &err), &r);
	for (n = 0; n < size && n < sizeof(name) - 1 && data[n] != '\n'; n++)
		name[n] = data[n] ? (char)data[n] : '?';
	name[n] = 0;
	check(nvemu_ns_range_resolve(&subsys, 1, name, &r, &err), &r);
	check(nvemu_ns_range_resolve(&subsys, 1, UUID, &r, &err), &r);
	return 0;
}
