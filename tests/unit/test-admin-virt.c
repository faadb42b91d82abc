/* SPDX-License-Identifier: MIT */
/*
 * SR-IOV: Virtualization Management (1Ch), Primary Controller Capabilities
 * (CNS 14h), Secondary Controller List (CNS 15h), Offline secondaries, and
 * the PCIe side (SR-IOV capability, a VF's MSI-X table following its VIs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <nvemu/ctrl-state.h>
#include <nvemu/pcie.h>

#include "test-util.h"

#define SC_DNR(sc) (NVEMU_SC_CMD(sc) | NVEMU_DNR)

/* Controller 1 (the fixture's, enabled) is the primary; 2 and 3 serve VFs 1 and 2. */
struct virt_env {
	struct tu_env *env;
	struct nvemu_ctrl *vf1, *vf2;
};

static int setup(void **state)
{
	struct virt_env *ve = calloc(1, sizeof(*ve));
	struct nvemu_virt_params p;
	struct nvemu_error err = {0};
	uint16_t c2, c3;

	assert_non_null(ve);
	tu_setup((void **)&ve->env);
	nvemu_virt_params_init(&p, 2);
	p.vq_flex = 8;
	p.vq_sec_max = 4;
	p.vi_flex = 5;
	p.vi_sec_max = 4;
	assert_int_equal(nvemu_subsys_virt_add(ve->env->subsys, 1, &p, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl(ve->env->subsys, 0, &c2, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl(ve->env->subsys, 0, &c3, &err), 0);
	ve->vf1 = nvemu_subsys_ctrl(ve->env->subsys, c2);
	ve->vf2 = nvemu_subsys_ctrl(ve->env->subsys, c3);
	assert_int_equal(nvemu_ctrl_set_secondary(ve->vf1, 1, 1, &err), 0);
	assert_int_equal(nvemu_ctrl_set_secondary(ve->vf2, 1, 2, &err), 0);
	/* One VF is served once. */
	assert_int_equal(nvemu_ctrl_set_secondary(ve->vf2, 1, 1, &err), -EBUSY);
	*state = ve;
	return 0;
}

static int teardown(void **state)
{
	struct virt_env *ve = *state;
	void *env = ve->env;

	tu_teardown(&env);
	free(ve);
	return 0;
}

static uint16_t virt_mgmt(struct tu_env *env, unsigned act, unsigned rt, uint16_t cntlid,
			  uint16_t nr, uint32_t *dw0)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_virtual_mgmt,
				.cdw10 = act | rt << 8 | (uint32_t)cntlid << 16,
				.cdw11 = nr};
	struct nvemu_cqe cqe = {0};
	uint16_t st = tu_admin(env, &cmd, NULL, 0, &cqe);

	if (dw0)
		*dw0 = le32toh(cqe.dw0);
	return st;
}

static void caps_and_list(void **state)
{
	struct virt_env *ve = *state;
	struct nvme_id_ctrl id;
	struct nvme_primary_ctrl_cap caps;
	struct nvme_secondary_ctrl_list *l = calloc(1, 4096);

	assert_non_null(l);
	assert_success(tu_identify(ve->env, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id));
	assert_true(le16toh(id.oacs) & NVME_CTRL_OACS_VIRT_MGMT);
	assert_success(tu_identify(ve->env, NVME_IDENTIFY_CNS_PRIMARY_CTRL_CAP, 0, 0, &caps));
	assert_int_equal(le16toh(caps.cntlid), 1);
	assert_int_equal(caps.crt, 3);
	assert_int_equal(le32toh(caps.vqfrt), 8);
	assert_int_equal(le32toh(caps.vifrt), 5);
	assert_int_equal(le16toh(caps.vqfrsm), 4);
	assert_int_equal(le32toh(caps.vqrfa), 0);
	assert_success(tu_identify(ve->env, NVME_IDENTIFY_CNS_SECONDARY_CTRL_LIST, 0, 0, l));
	assert_int_equal(l->num, 2);
	assert_int_equal(le16toh(l->sc_entry[0].scid), nvemu_ctrl_cntlid(ve->vf1));
	assert_int_equal(le16toh(l->sc_entry[0].pcid), 1);
	assert_int_equal(le16toh(l->sc_entry[0].vfn), 1);
	assert_int_equal(l->sc_entry[0].scs, 0);
	assert_int_equal(le16toh(l->sc_entry[1].vfn), 2);
	/* CNTID: from that SCID up. */
	assert_success(tu_identify(ve->env, NVME_IDENTIFY_CNS_SECONDARY_CTRL_LIST, 0,
				   nvemu_ctrl_cntlid(ve->vf2), l));
	assert_int_equal(l->num, 1);
	assert_int_equal(le16toh(l->sc_entry[0].vfn), 2);
	free(l);
}

static void assign_online_offline(void **state)
{
	struct virt_env *ve = *state;
	struct tu_env *env = ve->env;
	uint16_t s1 = nvemu_ctrl_cntlid(ve->vf1), s2 = nvemu_ctrl_cntlid(ve->vf2);
	struct nvme_secondary_ctrl_list *l = calloc(1, 4096);
	struct nvme_primary_ctrl_cap caps;
	uint32_t dw0 = 0;

	assert_non_null(l);
	/* Online needs resources first. */
	tu_assert_failed(env, virt_mgmt(env, 9, 0, s1, 0, NULL),
			 SC_DNR(NVME_SC_INVALID_SEC_CTRL_STATE));
	assert_success(virt_mgmt(env, 8, 0, s1, 3, &dw0));
	assert_int_equal(dw0, 3);
	assert_success(virt_mgmt(env, 8, 1, s1, 2, &dw0));
	assert_int_equal(dw0, 2);
	/* Beyond VQFRSM, beyond what the pool has left, unknown type and controller. */
	tu_assert_failed(env, virt_mgmt(env, 8, 0, s2, 5, NULL),
			 SC_DNR(NVME_SC_INVALID_CTRL_RESOURCES));
	tu_assert_failed(env, virt_mgmt(env, 8, 1, s2, 4, NULL),
			 NVEMU_SC_CMD(NVME_SC_INVALID_CTRL_RESOURCES) | NVEMU_DNR);
	tu_assert_failed(env, virt_mgmt(env, 8, 2, s2, 1, NULL),
			 SC_DNR(NVME_SC_INVALID_RESOURCE_ID));
	tu_assert_failed(env, virt_mgmt(env, 8, 0, 77, 1, NULL), SC_DNR(NVME_SC_INVALID_CTRL_ID));
	tu_assert_failed(env, virt_mgmt(env, 5, 0, s1, 1, NULL),
			 NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
	assert_success(virt_mgmt(env, 9, 0, s1, 0, NULL));
	/* Online: its resources are fixed. */
	tu_assert_failed(env, virt_mgmt(env, 8, 0, s1, 2, NULL),
			 SC_DNR(NVME_SC_INVALID_SEC_CTRL_STATE));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_SECONDARY_CTRL_LIST, 0, 0, l));
	assert_int_equal(l->sc_entry[0].scs, 1);
	assert_int_equal(le16toh(l->sc_entry[0].nvq), 3);
	assert_int_equal(le16toh(l->sc_entry[0].nvi), 2);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_PRIMARY_CTRL_CAP, 0, 0, &caps));
	assert_int_equal(le32toh(caps.vqrfa), 3);
	assert_int_equal(le32toh(caps.virfa), 2);
	/* Primary flexible allocation: only what the secondaries left. */
	tu_assert_failed(env, virt_mgmt(env, 1, 0, 1, 6, NULL),
			 SC_DNR(NVME_SC_INVALID_CTRL_RESOURCES));
	assert_success(virt_mgmt(env, 1, 0, 1, 5, &dw0));
	assert_int_equal(dw0, 5);
	tu_assert_failed(env, virt_mgmt(env, 1, 0, s1, 1, NULL), SC_DNR(NVME_SC_INVALID_CTRL_ID));
	assert_success(virt_mgmt(env, 7, 0, s1, 0, NULL));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_SECONDARY_CTRL_LIST, 0, 0, l));
	assert_int_equal(l->sc_entry[0].scs, 0);
	free(l);
}

static void secondary_enable(void **state)
{
	struct virt_env *ve = *state;
	struct nvemu_host *h;
	struct nvemu_error err = {0};
	uint16_t s1 = nvemu_ctrl_cntlid(ve->vf1);
	struct nvemu_sqe cmd = {0};
	struct nvemu_cqe cqe;

	assert_int_equal(nvemu_host_create(ve->vf1, &h, &err), 0);
	/* Offline: CC.EN fails, CSTS.RDY stays 0. */
	assert_int_equal(nvemu_host_enable(h), -EIO);
	assert_false(nvemu_ctrl_csts(ve->vf1) & 1);
	/* The secondary has no Virtualization Management. */
	cmd.opc = nvme_admin_virtual_mgmt;
	nvemu_ctrl_set_cc(ve->vf1, 0);
	assert_success(virt_mgmt(ve->env, 8, 0, s1, 3, NULL));
	assert_success(virt_mgmt(ve->env, 8, 1, s1, 2, NULL));
	assert_success(virt_mgmt(ve->env, 9, 0, s1, 0, NULL));
	assert_int_equal(nvemu_host_enable(h), 0);
	assert_int_equal(nvemu_host_exec(h, 0, &cmd, NULL, 0, NULL),
			 NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVEMU_DNR);
	/* Number of Queues: 3 VQs are the admin pair and two I/O pairs. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_set_features;
	cmd.cdw10 = NVME_FEAT_FID_NUM_QUEUES;
	cmd.cdw11 = 15 | 15u << 16;
	assert_int_equal(nvemu_host_exec(h, 0, &cmd, NULL, 0, &cqe), 0);
	assert_int_equal(le32toh(cqe.dw0), 1 | 1u << 16);
	/* Vectors: the 2 VIs. */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_cq;
	cmd.dptr1 = 0x10000;
	cmd.cdw10 = 1 | 15u << 16;
	cmd.cdw11 = 1 | 1u << 1 | 2u << 16;
	assert_int_equal(nvemu_host_exec(h, 0, &cmd, NULL, 0, NULL),
			 SC_DNR(NVME_SC_INVALID_VECTOR));
	cmd.cdw11 = 1 | 1u << 1 | 1u << 16;
	assert_int_equal(nvemu_host_exec(h, 0, &cmd, NULL, 0, NULL), 0);
	/* Offline under an enabled controller: fatal. */
	assert_success(virt_mgmt(ve->env, 7, 0, s1, 0, NULL));
	assert_true(nvemu_ctrl_csts(ve->vf1) & NVME_CSTS_CFS_MASK << NVME_CSTS_CFS_SHIFT);
	nvemu_host_destroy(h);
}

/* The control plane's view (SNAP's MSI-X pool) and the host's agree. */
static void control_plane_view(void **state)
{
	struct virt_env *ve = *state;
	struct nvemu_subsys *s = ve->env->subsys;
	struct nvemu_error err = {0};
	struct nvemu_virt_vf_info vi;
	struct nvemu_virt_info info;
	struct nvme_secondary_ctrl_list *l = calloc(1, 4096);

	assert_non_null(l);
	assert_int_equal(nvemu_virt_assign(s, 1, 2, NVEMU_VIRT_VI, 3, &err), 0);
	assert_int_equal(nvemu_virt_assign(s, 1, 1, NVEMU_VIRT_VI, 4, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "msix"));
	assert_success(tu_identify(ve->env, NVME_IDENTIFY_CNS_SECONDARY_CTRL_LIST, 0, 0, l));
	assert_int_equal(le16toh(l->sc_entry[1].nvi), 3);
	assert_int_equal(nvemu_subsys_virt_vf(s, 1, 2, &vi), 0);
	assert_int_equal(vi.nvi, 3);
	assert_int_equal(vi.scid, nvemu_ctrl_cntlid(ve->vf2));
	assert_int_equal(nvemu_ctrl_virt_vectors(ve->vf2), 3);
	assert_int_equal(nvemu_virt_assign(s, 1, 1, NVEMU_VIRT_VQ, 2, &err), 0);
	assert_int_equal(nvemu_virt_assign(s, 1, 1, NVEMU_VIRT_VI, 1, &err), 0);
	assert_int_equal(nvemu_virt_set_online(s, 1, 1, true, &err), 0);
	assert_int_equal(nvemu_virt_reclaim(s, 1, NVEMU_VIRT_VI, &err), -EBUSY);
	assert_int_equal(nvemu_virt_set_online(s, 1, 1, false, &err), 0);
	assert_int_equal(nvemu_virt_reclaim(s, 1, NVEMU_VIRT_VI, &err), 0);
	assert_int_equal(nvemu_subsys_virt_info(s, 1, &info), 0);
	assert_int_equal(info.virfa, 0);
	assert_int_equal(info.vqrfa, 2);
	/* A removed VF controller leaves the list; its VQs stay assigned. */
	assert_int_equal(nvemu_subsys_remove_ctrl(s, nvemu_ctrl_cntlid(ve->vf1), &err), 0);
	assert_success(tu_identify(ve->env, NVME_IDENTIFY_CNS_SECONDARY_CTRL_LIST, 0, 0, l));
	assert_int_equal(l->num, 1);
	assert_int_equal(nvemu_subsys_virt_vf(s, 1, 1, &vi), 0);
	assert_int_equal(vi.scid, 0);
	assert_int_equal(vi.nvq, 2);
	free(l);
}

static int no_dma(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return -EFAULT;
}

static int no_dma_w(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	return -EFAULT;
}

static const struct nvemu_pci_host_ops ops = {.dma_read = no_dma, .dma_write = no_dma_w};

/* The PF's config space has SR-IOV; a VF's MSI-X Table Size is its VI count. */
static void pcie_side(void **state)
{
	struct virt_env *ve = *state;
	struct nvemu_subsys *s = ve->env->subsys;
	struct nvemu_error err = {0};
	struct nvemu_ctrl_params cp;
	struct nvemu_virt_params p;
	struct nvemu_pcie_ctrl *pf, *vf;
	uint16_t pcid, scid;

	nvemu_ctrl_params_init(&cp);
	cp.num_io_queues = 8;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(s, &cp, &pcid, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl_ex(s, &cp, &scid, &err), 0);
	nvemu_virt_params_init(&p, 3);
	assert_int_equal(nvemu_subsys_virt_add(s, pcid, &p, &err), 0);
	assert_int_equal(nvemu_ctrl_set_secondary(nvemu_subsys_ctrl(s, scid), pcid, 3, &err), 0);
	assert_int_equal(nvemu_pcie_ctrl_create(nvemu_subsys_ctrl(s, pcid), &ops, NULL, &pf, &err),
			 0);
	assert_int_equal(nvemu_pcie_ctrl_create(nvemu_subsys_ctrl(s, scid), &ops, NULL, &vf, &err),
			 0);
	assert_int_equal(nvemu_pcie_cfg_read(pf, NVEMU_PCIE_ECAP_SRIOV, 4), 0x00010010);
	assert_int_equal(nvemu_pcie_cfg_read(pf, NVEMU_PCIE_ECAP_SRIOV + 0x0e, 2),
			 3); /* TotalVFs */
	assert_int_equal(nvemu_pcie_cfg_read(pf, NVEMU_PCIE_ECAP_SRIOV + 0x10, 2), 3); /* NumVFs */
	nvemu_pcie_cfg_write(pf, NVEMU_PCIE_ECAP_SRIOV + 0x10, 2, 1);
	assert_int_equal(nvemu_pcie_cfg_read(pf, NVEMU_PCIE_ECAP_SRIOV + 0x10, 2), 3);
	/* No SR-IOV on the VF. */
	assert_int_equal(nvemu_pcie_cfg_read(vf, NVEMU_PCIE_ECAP_SRIOV, 4), 0);
	assert_int_equal(nvemu_pcie_cfg_read(vf, NVEMU_PCIE_CAP_MSIX + 2, 2) & 0x7ff, 8);
	assert_int_equal(nvemu_virt_assign(s, pcid, 3, NVEMU_VIRT_VI, 4, &err), 0);
	assert_int_equal(nvemu_pcie_cfg_read(vf, NVEMU_PCIE_CAP_MSIX + 2, 2) & 0x7ff, 3);
	assert_int_equal(nvemu_pcie_msix_vectors(vf), 4);
	nvemu_pcie_ctrl_destroy(vf);
	nvemu_pcie_ctrl_destroy(pf);
	nvemu_subsys_virt_remove(s, pcid);
	assert_false(nvemu_subsys_virt_is_primary(s, pcid));
	assert_int_equal(nvemu_ctrl_virt_vectors(nvemu_subsys_ctrl(s, scid)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(caps_and_list, setup, teardown),
		cmocka_unit_test_setup_teardown(assign_online_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(secondary_enable, setup, teardown),
		cmocka_unit_test_setup_teardown(control_plane_view, setup, teardown),
		cmocka_unit_test_setup_teardown(pcie_side, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
