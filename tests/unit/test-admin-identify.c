/* SPDX-License-Identifier: MIT */
/* Identify: every CNS the controller implements, and the invalid cases. */
#include <stdlib.h>

#include "test-util.h"

#define INVALID_FIELD (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define INVALID_NS    (NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR)

static uint8_t buf[4096];

static uint16_t identify_csi(struct tu_env *env, uint8_t cns, uint32_t nsid, uint8_t csi, void *out)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .nsid = nsid};

	cmd.cdw10 = cns;
	cmd.cdw11 = (uint32_t)csi << 24;
	return tu_admin(env, &cmd, out, 4096, NULL);
}

/* An Identify that must fail with want, leaving its Error Information log entry. */
static void identify_err(struct tu_env *env, uint8_t cns, uint32_t nsid, uint8_t csi, uint16_t want)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .nsid = nsid};

	cmd.cdw10 = cns;
	cmd.cdw11 = (uint32_t)csi << 24;
	tu_expect_error(env, 0, &cmd, buf, 4096, want);
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void assert_padded(const char *field, size_t len, const char *want)
{
	char exp[64];

	assert_true(len <= sizeof(exp));
	memset(exp, ' ', len);
	memcpy(exp, want, strlen(want));
	assert_memory_equal(field, exp, len);
}

/* A second controller with its own host, on the fixture's subsystem. */
struct ctrl2 {
	struct nvemu_ctrl *ctrl;
	struct nvemu_host *host;
};

static void ctrl2_add(struct tu_env *env, bool optional_cmds, struct ctrl2 *c)
{
	struct nvemu_ctrl_params cp;
	struct nvemu_error err = {0};
	uint16_t cntlid;

	nvemu_ctrl_params_init(&cp);
	cp.port_id = env->ctrl->p.port_id;
	cp.compare = cp.dsm = cp.write_zeroes = cp.compare_write = optional_cmds;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->subsys, &cp, &cntlid, &err), 0);
	assert_int_equal(cntlid, 2);
	c->ctrl = nvemu_subsys_ctrl(env->subsys, cntlid);
	assert_non_null(c->ctrl);
	assert_int_equal(nvemu_host_create(c->ctrl, &c->host, &err), 0);
	assert_int_equal(nvemu_host_enable(c->host), 0);
}

static uint16_t ctrl2_identify(struct ctrl2 *c, uint8_t cns, uint32_t nsid, uint16_t cntid,
			       void *out)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .nsid = nsid};

	cmd.cdw10 = cns | (uint32_t)cntid << 16;
	return nvemu_host_exec(c->host, 0, &cmd, out, 4096, NULL);
}

static void ctrl2_del(struct tu_env *env, struct ctrl2 *c)
{
	nvemu_host_destroy(c->host);
	assert_int_equal(nvemu_subsys_remove_ctrl(env->subsys, c->ctrl->cntlid, NULL), 0);
}

/* ---- CNS 01h */

static void test_id_ctrl_fields(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ctrl *id = (void *)buf;
	const struct nvemu_vendor *v = &env->subsys->vendor;
	uint16_t oncs;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, buf));
	assert_int_equal(le16toh(id->vid), v->pci_vid);
	assert_int_equal(le16toh(id->ssvid), v->pci_svid);
	assert_padded(id->sn, sizeof(id->sn), "NVEMU-TEST-0001");
	assert_padded(id->mn, sizeof(id->mn), "nvemu test");
	assert_padded(id->fr, sizeof(id->fr), env->subsys->fr);
	/* the OUI is stored least significant byte first */
	assert_int_equal(id->ieee[0], v->ieee_oui[2]);
	assert_int_equal(id->ieee[1], v->ieee_oui[1]);
	assert_int_equal(id->ieee[2], v->ieee_oui[0]);
	assert_int_equal(le16toh(id->cntlid), env->ctrl->cntlid);
	assert_int_equal(le32toh(id->ver), 0x00020000);
	assert_int_equal(id->mdts, 7);
	assert_int_equal(id->cntrltype, NVME_CTRL_CNTRLTYPE_IO);
	assert_int_equal(le32toh(id->oaes) & (NVME_CTRL_OAES_NA | NVME_CTRL_OAES_FA),
			 NVME_CTRL_OAES_NA | NVME_CTRL_OAES_FA);
	assert_int_equal(le16toh(id->oacs),
			 NVME_CTRL_OACS_FORMAT | NVME_CTRL_OACS_FW | NVME_CTRL_OACS_NS_MGMT);
	assert_int_equal(id->acl, 3);
	assert_int_equal(id->aerl, 3);
	/* libnvme 1.3 masks NR_SLOTS as 3 << 1; the field is bits 3:1 */
	assert_int_equal((id->frmw >> 1) & 7, 4);
	assert_true(id->frmw & NVME_CTRL_FRMW_FW_ACT_NO_RESET);
	assert_int_equal(id->lpa & 7, NVME_CTRL_LPA_CMD_EFFECTS | NVME_CTRL_LPA_EXTENDED);
	assert_int_equal(id->elpe, NVEMU_ERRLOG_ENTRIES - 1);
	assert_int_equal(le16toh(id->wctemp), 343);
	assert_int_equal(le16toh(id->cctemp), 373);
	assert_int_equal(id->sqes, 0x66);
	assert_int_equal(id->cqes, 0x44);
	assert_int_equal(le32toh(id->nn), env->subsys->nn);
	assert_int_equal(le32toh(id->mnan), env->subsys->mnan);
	oncs = le16toh(id->oncs);
	assert_int_equal(oncs & 0x1bd, NVME_CTRL_ONCS_COMPARE | NVME_CTRL_ONCS_DSM |
					       NVME_CTRL_ONCS_WRITE_ZEROES |
					       NVME_CTRL_ONCS_RESERVATIONS |
					       NVME_CTRL_ONCS_SAVE_FEATURES |
					       NVME_CTRL_ONCS_VERIFY | NVME_CTRL_ONCS_COPY);
	assert_false(oncs & NVME_CTRL_ONCS_WRITE_UNCORRECTABLE);
	assert_true(oncs & NVME_CTRL_ONCS_RESERVATIONS);
	assert_int_equal(le16toh(id->fuses), env->ctrl->p.compare_write ? 1 : 0);
	assert_int_equal(id->fna, 0);
	assert_int_equal(id->vwc, 0x7);
	assert_int_equal(le16toh(id->ocfs), 1);
	assert_int_equal(le32toh(id->sgls), 0);
	assert_int_equal(id->msdbd, 0);
	assert_int_equal(le16toh(id->crdt1), 0);
	assert_string_equal(id->subnqn, "nqn.2024-01.io.nvemu:test");
	/* NS Management: the total capacity is reported, the unallocated part is smaller */
	assert_false(all_zero(id->tnvmcap, 16));
	assert_memory_not_equal(id->tnvmcap, id->unvmcap, 16);
}

static void test_id_ctrl_fr_from_active_slot(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ctrl *id = (void *)buf;

	memcpy(env->ctrl->fw.slot_rev[1], "NEWFW2  ", 8);
	env->ctrl->fw.active_slot = 2;
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, buf));
	assert_memory_equal(id->fr, "NEWFW2  ", 8);
}

static void test_id_ctrl_oncs_switches(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ctrl *id = (void *)buf;
	struct ctrl2 c;
	uint16_t oncs;

	ctrl2_add(env, false, &c);
	assert_success(ctrl2_identify(&c, NVME_IDENTIFY_CNS_CTRL, 0, 0, buf));
	assert_int_equal(le16toh(id->cntlid), 2);
	oncs = le16toh(id->oncs);
	assert_false(oncs & NVME_CTRL_ONCS_COMPARE);
	assert_false(oncs & NVME_CTRL_ONCS_DSM);
	assert_false(oncs & NVME_CTRL_ONCS_WRITE_ZEROES);
	assert_true(oncs & NVME_CTRL_ONCS_VERIFY);
	assert_true(oncs & NVME_CTRL_ONCS_COPY);
	ctrl2_del(env, &c);
}

/* ---- CNS 00h / 11h */

static void test_id_ns(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ns *id = (void *)buf;
	struct nvemu_ns *ns = nvemu_subsys_ns(env->subsys, 1);

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS, 1, 0, buf));
	assert_int_equal(le64toh(id->nsze), 1024);
	assert_int_equal(le64toh(id->ncap), 1024);
	assert_int_equal(le64toh(id->nuse), 1024);
	assert_int_equal(id->nlbaf, NVEMU_NUM_LBAF - 1);
	assert_int_equal(id->flbas & 0xf, 0);
	assert_int_equal(id->lbaf[0].ds, 9);
	assert_int_equal(id->lbaf[1].ds, 12);
	assert_int_equal(le16toh(id->lbaf[0].ms), 0);
	assert_true(all_zero(&id->lbaf[2], sizeof(id->lbaf[2])));
	assert_int_equal(id->dlfeat, 0x09);
	assert_int_equal(id->nmic, NVME_NS_NMIC_SHARED);
	assert_int_equal(le16toh(id->mssrl), 65535);
	assert_int_equal(le32toh(id->mcl), 65535);
	assert_int_equal(id->msrc, 127);
	assert_memory_equal(id->nguid, ns->nguid, 16);
	assert_memory_equal(id->eui64, ns->eui64, 8);
	assert_int_equal(id->nvmcap[0] | id->nvmcap[1] << 8 | id->nvmcap[2] << 16, 1024 * 512);
}

static void test_id_ns_inactive_zero(void **state)
{
	struct tu_env *env = *state;

	/* NSID 2 exists but is not attached; NSID 7 is unallocated */
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS, 2, 0, buf));
	assert_true(all_zero(buf, sizeof(buf)));
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS, 7, 0, buf));
	assert_true(all_zero(buf, sizeof(buf)));
}

static void test_id_ns_broadcast(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ns *id = (void *)buf;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS, NVEMU_NSID_ALL, 0, buf));
	assert_int_equal(le64toh(id->nsze), 0);
	assert_int_equal(id->nlbaf, NVEMU_NUM_LBAF - 1);
	assert_int_equal(id->lbaf[1].ds, 12);
	assert_true(all_zero(id->nguid, 16));
}

static void test_id_ns_invalid_nsid(void **state)
{
	struct tu_env *env = *state;
	uint16_t st;

	st = tu_identify(env, NVME_IDENTIFY_CNS_NS, 0, 0, buf);
	tu_assert_failed(env, st, INVALID_NS);
	assert_dnr(st);
	env->subsys->nn = 16;
	st = tu_identify(env, NVME_IDENTIFY_CNS_NS, 17, 0, buf);
	tu_assert_failed(env, st, INVALID_NS);
	assert_dnr(st);
	tu_assert_failed(env, tu_identify(env, NVME_IDENTIFY_CNS_ALLOCATED_NS, 17, 0, buf),
			 INVALID_NS);
	tu_assert_failed(env,
			 tu_identify(env, NVME_IDENTIFY_CNS_ALLOCATED_NS, NVEMU_NSID_ALL, 0, buf),
			 INVALID_NS);
	tu_assert_failed(env, tu_identify(env, NVME_IDENTIFY_CNS_ALLOCATED_NS, 0, 0, buf),
			 INVALID_NS);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS, 16, 0, buf));
}

static void test_id_allocated_ns(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ns *id = (void *)buf;

	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_ALLOCATED_NS, 2, 0, buf));
	assert_int_equal(le64toh(id->nsze), 2048);
	assert_int_equal(id->lbaf[0].ds, 9);
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_ALLOCATED_NS, 3, 0, buf));
	assert_true(all_zero(buf, sizeof(buf)));
}

/* ---- CNS 02h / 07h / 10h */

static void test_active_ns_list(void **state)
{
	struct tu_env *env = *state;
	struct nvme_ns_list *l = (void *)buf;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, 0, buf));
	assert_int_equal(le32toh(l->ns[0]), 1);
	assert_true(all_zero(&l->ns[1], sizeof(buf) - 4));

	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 2, NULL), 0);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0, 0, buf));
	assert_int_equal(le32toh(l->ns[0]), 1);
	assert_int_equal(le32toh(l->ns[1]), 2);
	assert_int_equal(le32toh(l->ns[2]), 0);
	/* only NSIDs greater than the one given */
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 1, 0, buf));
	assert_int_equal(le32toh(l->ns[0]), 2);
	assert_int_equal(le32toh(l->ns[1]), 0);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 2, 0, buf));
	assert_true(all_zero(buf, sizeof(buf)));

	/* No NSID can follow FFFFFFFEh or FFFFFFFFh: an invalid NSID, not an invalid field. */
	identify_err(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0xfffffffe, 0, INVALID_NS);
	identify_err(env, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, NVEMU_NSID_ALL, 0, INVALID_NS);
}

static void test_csi_active_ns_list(void **state)
{
	struct tu_env *env = *state;
	struct nvme_ns_list *l = (void *)buf;

	assert_success(
		identify_csi(env, NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST, 0, NVME_CSI_NVM, buf));
	assert_int_equal(le32toh(l->ns[0]), 1);
	assert_int_equal(le32toh(l->ns[1]), 0);
	identify_err(env, NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST, 0, NVME_CSI_ZNS, INVALID_FIELD);
	identify_err(env, NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST, 0xfffffffe, NVME_CSI_NVM,
		     INVALID_NS);
	identify_err(env, NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST, NVEMU_NSID_ALL, NVME_CSI_NVM,
		     INVALID_NS);
}

static void test_allocated_ns_list(void **state)
{
	struct tu_env *env = *state;
	struct nvme_ns_list *l = (void *)buf;

	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_ALLOCATED_NS_LIST, 0, 0, buf));
	assert_int_equal(le32toh(l->ns[0]), 1);
	assert_int_equal(le32toh(l->ns[1]), 2);
	assert_int_equal(le32toh(l->ns[2]), 0);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_ALLOCATED_NS_LIST, 1, 0, buf));
	assert_int_equal(le32toh(l->ns[0]), 2);
	assert_int_equal(le32toh(l->ns[1]), 0);
	identify_err(env, NVME_IDENTIFY_CNS_ALLOCATED_NS_LIST, 0xfffffffe, 0, INVALID_NS);
	identify_err(env, NVME_IDENTIFY_CNS_ALLOCATED_NS_LIST, NVEMU_NSID_ALL, 0, INVALID_NS);
}

/* ---- CNS 03h */

static void test_ns_desc_list(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ns *ns = nvemu_subsys_ns(env->subsys, 1);
	const uint8_t *p = buf;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_DESC_LIST, 1, 0, buf));
	assert_int_equal(p[0], NVME_NIDT_EUI64);
	assert_int_equal(p[1], 8);
	assert_memory_equal(p + 4, ns->eui64, 8);
	p += 4 + 8;
	assert_int_equal(p[0], NVME_NIDT_NGUID);
	assert_int_equal(p[1], 16);
	assert_memory_equal(p + 4, ns->nguid, 16);
	p += 4 + 16;
	assert_int_equal(p[0], NVME_NIDT_UUID);
	assert_int_equal(p[1], 16);
	assert_memory_equal(p + 4, ns->uuid, 16);
	p += 4 + 16;
	assert_int_equal(p[0], NVME_NIDT_CSI);
	assert_int_equal(p[1], 1);
	assert_int_equal(p[4], NVME_CSI_NVM);
	p += 4 + 1;
	assert_true(all_zero(p, (size_t)(buf + sizeof(buf) - p)));

	tu_assert_failed(env, tu_identify(env, NVME_IDENTIFY_CNS_NS_DESC_LIST, 2, 0, buf),
			 INVALID_NS);
	tu_assert_failed(env, tu_identify(env, NVME_IDENTIFY_CNS_NS_DESC_LIST, 0, 0, buf),
			 INVALID_NS);
}

/* ---- CNS 05h / 06h / 08h / 1Ch */

static void test_csi_ns(void **state)
{
	struct tu_env *env = *state;
	uint16_t st;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(identify_csi(env, NVME_IDENTIFY_CNS_CSI_NS, 1, NVME_CSI_NVM, buf));
	/* no storage tags, no protection information */
	assert_true(all_zero(buf, sizeof(buf)));
	st = identify_csi(env, NVME_IDENTIFY_CNS_CSI_NS, 1, NVME_CSI_ZNS, buf);
	tu_assert_failed(env, st, INVALID_FIELD);
	assert_dnr(st);
	tu_assert_failed(env, identify_csi(env, NVME_IDENTIFY_CNS_CSI_NS, 1, NVME_CSI_KV, buf),
			 INVALID_FIELD);
	tu_assert_failed(env, identify_csi(env, NVME_IDENTIFY_CNS_CSI_NS, 0, NVME_CSI_NVM, buf),
			 INVALID_NS);
}

static void test_csi_ctrl(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ctrl_nvm *id = (void *)buf;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(identify_csi(env, NVME_IDENTIFY_CNS_CSI_CTRL, 0, NVME_CSI_NVM, buf));
	assert_int_equal(id->wusl, 0);
	assert_int_equal(le32toh(id->dmrsl), UINT32_MAX);
	assert_true(le64toh(id->dmsl) >= le32toh(id->dmrsl));
	assert_true(all_zero(id->rsvd16, sizeof(id->rsvd16)));
	tu_assert_failed(env, identify_csi(env, NVME_IDENTIFY_CNS_CSI_CTRL, 0, NVME_CSI_ZNS, buf),
			 INVALID_FIELD);
}

static void test_indep_id_ns(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_independent_id_ns *id = (void *)buf;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS, 1, 0, buf));
	assert_int_equal(id->nstat & 1, 1);
	assert_int_equal(id->nmic, NVME_NS_NMIC_SHARED);
	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS, 2, 0, buf));
	assert_true(all_zero(buf, sizeof(buf)));
	tu_assert_failed(env, tu_identify(env, NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS, 0, 0, buf),
			 INVALID_NS);
}

static void test_iocs(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_iocs *id = (void *)buf;

	memset(buf, 0xa5, sizeof(buf));
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_COMMAND_SET_STRUCTURE, 0, 0, buf));
	assert_int_equal(le64toh(id->iocsc[0]), 1);
	assert_true(all_zero(&id->iocsc[1], sizeof(buf) - 8));
}

/* ---- CNS 12h / 13h */

static void test_ctrl_lists(void **state)
{
	struct tu_env *env = *state;
	struct nvme_ctrl_list *l = (void *)buf;
	struct ctrl2 c;

	ctrl2_add(env, true, &c);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL_LIST, 0, 0, buf));
	assert_int_equal(le16toh(l->num), 2);
	assert_int_equal(le16toh(l->identifier[0]), 1);
	assert_int_equal(le16toh(l->identifier[1]), 2);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL_LIST, 0, 2, buf));
	assert_int_equal(le16toh(l->num), 1);
	assert_int_equal(le16toh(l->identifier[0]), 2);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL_LIST, 0, 3, buf));
	assert_int_equal(le16toh(l->num), 0);

	/* attached to NSID 1: controller 1 only, then both */
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_CTRL_LIST, 1, 0, buf));
	assert_int_equal(le16toh(l->num), 1);
	assert_int_equal(le16toh(l->identifier[0]), 1);
	assert_int_equal(nvemu_ctrl_attach_ns(c.ctrl, 1, NULL), 0);
	assert_success(ctrl2_identify(&c, NVME_IDENTIFY_CNS_NS_CTRL_LIST, 1, 0, buf));
	assert_int_equal(le16toh(l->num), 2);
	assert_int_equal(le16toh(l->identifier[1]), 2);
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_CTRL_LIST, 1, 2, buf));
	assert_int_equal(le16toh(l->num), 1);
	assert_int_equal(le16toh(l->identifier[0]), 2);
	/* allocated but attached nowhere */
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_NS_CTRL_LIST, 2, 0, buf));
	assert_int_equal(le16toh(l->num), 0);
	tu_assert_failed(env, tu_identify(env, NVME_IDENTIFY_CNS_NS_CTRL_LIST, 0, 0, buf),
			 INVALID_NS);
	tu_assert_failed(env,
			 tu_identify(env, NVME_IDENTIFY_CNS_NS_CTRL_LIST, NVEMU_NSID_ALL, 0, buf),
			 INVALID_NS);

	assert_int_equal(nvemu_ctrl_detach_ns(c.ctrl, 1, NULL), 0);
	ctrl2_del(env, &c);
}

/* ---- invalid commands */

static void test_invalid_cns(void **state)
{
	struct tu_env *env = *state;
	static const uint8_t bad[] = {0x04, 0x09, 0x0a, 0x14, 0x15, 0x1b, 0x1d, 0x7f, 0xff};
	uint16_t st;

	for (size_t i = 0; i < sizeof(bad); i++) {
		st = tu_identify(env, bad[i], 1, 0, buf);
		tu_assert_failed(env, st, INVALID_FIELD);
		assert_dnr(st);
	}
}

static void test_short_buffer(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .cdw10 = NVME_IDENTIFY_CNS_CTRL};
	uint16_t st;

	st = tu_admin(env, &cmd, buf, 512, NULL);
	tu_assert_failed(env, st, NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR);
	assert_dnr(st);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_id_ctrl_fields),
		T(test_id_ctrl_fr_from_active_slot),
		T(test_id_ctrl_oncs_switches),
		T(test_id_ns),
		T(test_id_ns_inactive_zero),
		T(test_id_ns_broadcast),
		T(test_id_ns_invalid_nsid),
		T(test_id_allocated_ns),
		T(test_active_ns_list),
		T(test_csi_active_ns_list),
		T(test_allocated_ns_list),
		T(test_ns_desc_list),
		T(test_csi_ns),
		T(test_csi_ctrl),
		T(test_indep_id_ns),
		T(test_iocs),
		T(test_ctrl_lists),
		T(test_invalid_cns),
		T(test_short_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
