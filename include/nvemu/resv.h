/* SPDX-License-Identifier: MIT */
/*
 * Reservations: Persist Through Power Loss. A namespace given a PTPL file
 * offers PTPL (RESCAP bit 0); while a host has PTPL on, every change of
 * its reservation state is written there before the command completes,
 * and the state is read back when the namespace is configured with the
 * file again (a restarted nvemud).
 */
#ifndef NVEMU_RESV_H
#define NVEMU_RESV_H

#include <stdint.h>
#include <nvemu/model.h>

/*
 * Use path (NULL: none) for namespace nsid's reservation state; loads the
 * saved state when the file exists. A malformed file fails with -EINVAL
 * and a message naming it; the namespace is left unchanged.
 */
int nvemu_ns_set_ptpl_file(struct nvemu_subsys *subsys, uint32_t nsid, const char *path,
			   struct nvemu_error *err);
/* The file given to nvemu_ns_set_ptpl_file(), or NULL. */
const char *nvemu_ns_get_ptpl_file(struct nvemu_subsys *subsys, uint32_t nsid);

#endif
