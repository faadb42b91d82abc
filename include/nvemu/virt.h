/* SPDX-License-Identifier: MIT */
/*
 * SR-IOV as NVMe models it (Virtualization Enhancements): a primary
 * controller (the PF's) owns pools of flexible resources, Virtual Queue
 * (VQ: an SQ/CQ pair) and Virtual Interrupt (VI: an MSI-X vector), and
 * hands them to its secondary controllers (one per VF). A secondary is
 * Offline until the host assigns it at least two VQs (the admin pair and
 * one I/O pair) and one VI and brings it Online with Virtualization
 * Management (admin 1Ch); while Offline it refuses CC.EN (CSTS.CFS).
 * Identify CNS 14h / 15h report the pools and the secondaries.
 *
 * The state belongs to the subsystem, keyed by the primary's controller
 * ID, so it survives removing and re-adding that controller (a control
 * plane re-creating it with new parameters); nvemu_subsys_virt_remove()
 * ends it.
 */
#ifndef NVEMU_VIRT_H
#define NVEMU_VIRT_H

#include <stdbool.h>
#include <stdint.h>
#include <nvemu/error.h>
#include <nvemu/model.h>

#define NVEMU_VIRT_MAX_VFS 127 /* entries a Secondary Controller List holds */

struct nvemu_virt_params {
	uint16_t total_vfs;  /* secondary controllers, 1..NVEMU_VIRT_MAX_VFS */
	uint32_t vq_flex;    /* VQFRT: the flexible VQ pool */
	uint32_t vi_flex;    /* VIFRT: the flexible VI pool */
	uint16_t vq_sec_max; /* VQFRSM: most VQs one secondary may get */
	uint16_t vi_sec_max; /* VIFRSM */
};

enum nvemu_virt_rt {
	NVEMU_VIRT_VQ = 0, /* NVME_VIRT_MGMT_RT_VQ_RESOURCE */
	NVEMU_VIRT_VI = 1, /* NVME_VIRT_MGMT_RT_VI_RESOURCE */
};

struct nvemu_virt_vf_info {
	uint16_t scid; /* the controller serving the VF, 0: none yet */
	bool online;
	uint16_t nvq, nvi; /* flexible resources assigned */
};

struct nvemu_virt_info {
	struct nvemu_virt_params p;
	uint32_t vqrfa, virfa;	 /* assigned to secondaries */
	uint16_t vqrfap, virfap; /* allocated to the primary (1Ch action 1) */
};

/* Defaults for total_vfs VFs: up to 32 VQs and 32 VIs each. */
void nvemu_virt_params_init(struct nvemu_virt_params *p, uint16_t total_vfs);
/* Controller pcid of s becomes a primary controller (it need not exist yet). */
int nvemu_subsys_virt_add(struct nvemu_subsys *s, uint16_t pcid, const struct nvemu_virt_params *p,
			  struct nvemu_error *err);
/* Ends it; its secondaries become plain controllers. */
void nvemu_subsys_virt_remove(struct nvemu_subsys *s, uint16_t pcid);
bool nvemu_subsys_virt_is_primary(struct nvemu_subsys *s, uint16_t pcid);
int nvemu_subsys_virt_info(struct nvemu_subsys *s, uint16_t pcid, struct nvemu_virt_info *info);
/* VF vfn (1..total_vfs) of primary pcid. */
int nvemu_subsys_virt_vf(struct nvemu_subsys *s, uint16_t pcid, uint16_t vfn,
			 struct nvemu_virt_vf_info *info);
/* ctrl (of the same subsystem) serves VF vfn of pcid: a secondary controller. */
int nvemu_ctrl_set_secondary(struct nvemu_ctrl *ctrl, uint16_t pcid, uint16_t vfn,
			     struct nvemu_error *err);
/*
 * What Secondary Controller Assign does, from the control plane: the VF
 * (Offline) gets nr resources of type rt; -EBUSY online, -ENOSPC beyond the
 * pool or VxFRSM.
 */
int nvemu_virt_assign(struct nvemu_subsys *s, uint16_t pcid, uint16_t vfn, enum nvemu_virt_rt rt,
		      uint16_t nr, struct nvemu_error *err);
/* Online / Offline as 1Ch actions 9h / 7h do. */
int nvemu_virt_set_online(struct nvemu_subsys *s, uint16_t pcid, uint16_t vfn, bool online,
			  struct nvemu_error *err);
/* Resources of type rt of every VF back to the pool; -EBUSY while any VF is Online. */
int nvemu_virt_reclaim(struct nvemu_subsys *s, uint16_t pcid, enum nvemu_virt_rt rt,
		       struct nvemu_error *err);
/* The primary and VF Number of a secondary controller; false if ctrl is none. */
bool nvemu_ctrl_virt_secondary_of(const struct nvemu_ctrl *ctrl, uint16_t *pcid, uint16_t *vfn);
/* A secondary's MSI-X vectors (its VIs); 0: not limited (not a secondary, or none assigned). */
unsigned nvemu_ctrl_virt_vectors(const struct nvemu_ctrl *ctrl);

#endif
