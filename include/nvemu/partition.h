/* SPDX-License-Identifier: MIT */
/*
 * Naming a range of a namespace, as the L4Re NVMe server names what it
 * hands to virtual machines: "SN:n<NSID>" (the subsystem whose serial number
 * is SN, the whole namespace NSID), "<NQN>:n<NSID>" the same by subsystem
 * NQN, or a GPT partition's unique GUID (only that partition's LBAs), found
 * by libblkid's partition probing on the namespaces' data.
 */
#ifndef NVEMU_PARTITION_H
#define NVEMU_PARTITION_H

#include <stdint.h>
#include <nvemu/error.h>

struct nvemu_subsys;

struct nvemu_ns_range {
	struct nvemu_subsys *subsys;
	uint32_t nsid;
	uint64_t first_lba; /* in the namespace's LBAs */
	uint64_t nr_lbas;
	uint32_t lba_size;
};

/*
 * Looks device up among the nr subsystems. -EINVAL: not a device string
 * (err names the rule); -ENOENT: no such subsystem, namespace or partition;
 * -EEXIST: a partition UUID found in more than one namespace; -EIO: a
 * namespace's data could not be read. Partition probing reads the first and
 * last blocks of each namespace synchronously (RAM bdevs at once, file bdevs
 * through their io_uring, waiting at most a few seconds).
 */
int nvemu_ns_range_resolve(struct nvemu_subsys *const *subsys, unsigned nr, const char *device,
			   struct nvemu_ns_range *out, struct nvemu_error *err);
/* The GPT partition whose unique GUID is uuid (any case) in namespace nsid of subsys. */
int nvemu_ns_find_partition(struct nvemu_subsys *subsys, uint32_t nsid, const char *uuid,
			    struct nvemu_ns_range *out, struct nvemu_error *err);

#endif
