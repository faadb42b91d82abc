/* SPDX-License-Identifier: MIT */
/*
 * Identify (NVMe Base 2.0, 5.17): controller, namespace, NSID and controller
 * lists, namespace identification descriptors and the NVM command set
 * specific structures.
 */
#include <stdio.h>
#include <stdlib.h>

#include "nvemu-internal.h"
#include "reservations.h"

#define ID_LEN 4096

#define CNS(cdw10)   ((uint8_t)((cdw10)&0xff))
#define CNTID(cdw10) ((uint16_t)((cdw10) >> 16))
#define CSI(cdw11)   ((uint8_t)((cdw11) >> 24))

/* Thresholds the Temperature Threshold feature defaults to, Kelvin. */
#define WCTEMP_K   343
#define CCTEMP_K   373
#define KAS_100MS  10	/* Keep Alive granularity: 1 s */
#define PSD0_MP_CW 2500 /* 25.00 W */

_Static_assert(sizeof(struct nvme_id_ctrl) == ID_LEN, "Identify Controller is 4 KiB");
_Static_assert(sizeof(struct nvme_id_ns) == ID_LEN, "Identify Namespace is 4 KiB");

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- Identify Controller */

static uint64_t allocated_bytes(const struct nvemu_subsys *s)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < s->nr_ns; i++)
		t += s->ns[i]->nblocks << s->ns[i]->lba_shift;
	return t;
}

static unsigned nr_ctrl_ports(const struct nvemu_subsys *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->nr_ports; i++)
		if (s->ports[i].p.type != NVEMU_PORT_TWO_WIRE)
			n++;
	return n;
}

static uint16_t id_oncs(const struct nvemu_ctrl *ctrl)
{
	/* Derived from the dispatch table so Identify and the effects log agree. */
	static const struct {
		uint8_t opc;
		uint16_t bit;
	} map[] = {
		{nvme_cmd_compare, NVME_CTRL_ONCS_COMPARE},
		{nvme_cmd_dsm, NVME_CTRL_ONCS_DSM},
		{nvme_cmd_write_zeroes, NVME_CTRL_ONCS_WRITE_ZEROES},
		{nvme_cmd_verify, NVME_CTRL_ONCS_VERIFY},
		{nvme_cmd_copy, NVME_CTRL_ONCS_COPY},
		{nvme_cmd_resv_register, NVME_CTRL_ONCS_RESERVATIONS},
	};
	/* Set Features saves (SV) and the Timestamp feature are supported */
	uint16_t oncs = NVME_CTRL_ONCS_SAVE_FEATURES | NVME_CTRL_ONCS_TIMESTAMP;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (nvemu_io_cmd(ctrl, map[i].opc))
			oncs |= map[i].bit;
	return oncs;
}

void nvemu_fill_id_ctrl(struct nvemu_ctrl *ctrl, struct nvme_id_ctrl *id)
{
	struct nvemu_subsys *s = ctrl->subsys;
	struct nvemu_fw_state *fw = &ctrl->fw;
	uint64_t alloc = allocated_bytes(s);

	memset(id, 0, sizeof(*id));
	id->vid = htole16(s->vendor.pci_vid);
	id->ssvid = htole16(s->vendor.pci_svid);
	nvemu_strpad(id->sn, sizeof(id->sn), s->sn);
	nvemu_strpad(id->mn, sizeof(id->mn), s->mn);
	if (fw->active_slot >= 1 && fw->active_slot <= NVEMU_FW_SLOTS_MAX &&
	    !is_zero((const uint8_t *)fw->slot_rev[fw->active_slot - 1], sizeof(id->fr)))
		memcpy(id->fr, fw->slot_rev[fw->active_slot - 1], sizeof(id->fr));
	else
		nvemu_strpad(id->fr, sizeof(id->fr), s->fr);
	id->rab = 6;
	/* IEEE stores the OUI least significant byte first. */
	id->ieee[0] = s->vendor.ieee_oui[2];
	id->ieee[1] = s->vendor.ieee_oui[1];
	id->ieee[2] = s->vendor.ieee_oui[0];
	if (!s->single_ctrl)
		id->cmic |= NVME_CTRL_CMIC_MULTI_CTRL;
	if (nr_ctrl_ports(s) > 1)
		id->cmic |= NVME_CTRL_CMIC_MULTI_PORT;
	id->mdts = ctrl->p.mdts;
	id->cntlid = htole16(ctrl->cntlid);
	id->ver = htole32(NVEMU_VS);
	id->oaes = htole32(NVME_CTRL_OAES_NA | NVME_CTRL_OAES_FA);
	id->ctratt = htole32(NVME_CTRL_CTRATT_128_ID);
	id->cntrltype = ctrl->p.admin_only ? NVME_CTRL_CNTRLTYPE_ADMIN : NVME_CTRL_CNTRLTYPE_IO;
	id->crdt1 = id->crdt2 = id->crdt3 = 0;

	id->oacs = htole16(NVME_CTRL_OACS_FORMAT | NVME_CTRL_OACS_FW | NVME_CTRL_OACS_NS_MGMT |
			   (nvemu_ctrl_is_primary(ctrl) ? NVME_CTRL_OACS_VIRT_MGMT : 0));
	id->acl = 3;
	id->aerl = ctrl->p.aerl;
	/* admin-fw.c owns the slot policy (slot 1 read-only, activation without reset) */
	id->frmw = fw->frmw;
	if (!id->frmw)
		id->frmw = (uint8_t)((ctrl->p.fw_slots & 7) << 1) | NVME_CTRL_FRMW_FW_ACT_NO_RESET;
	id->fwug = NVEMU_FW_FWUG;
	id->lpa = NVME_CTRL_LPA_CMD_EFFECTS | NVME_CTRL_LPA_EXTENDED;
	/* admin-sanitize.c: all three actions; No-Deallocate After Sanitize is ignored (NDI). */
	id->sanicap = htole32(NVME_CTRL_SANICAP_CES | NVME_CTRL_SANICAP_BES |
			      NVME_CTRL_SANICAP_OWS | NVME_CTRL_SANICAP_NDI);
	id->elpe = NVEMU_ERRLOG_ENTRIES - 1;
	id->npss = 0;
	id->wctemp = htole16(WCTEMP_K);
	id->cctemp = htole16(CCTEMP_K);
	put_le128(id->tnvmcap, s->tnvmcap);
	put_le128(id->unvmcap, alloc < s->tnvmcap ? s->tnvmcap - alloc : 0);
	id->kas = htole16(KAS_100MS);

	id->sqes = 0x66;
	id->cqes = 0x44;
	id->maxcmd = htole16(ctrl->p.max_queue_entries);
	id->nn = htole32(s->nn);
	id->oncs = htole16(id_oncs(ctrl));
	id->fuses = htole16(ctrl->p.compare_write ? NVME_CTRL_FUSES_COMPARE_AND_WRITE : 0);
	id->fna = 0;
	id->vwc = NVME_CTRL_VWC_PRESENT | NVME_CTRL_VWC_FLUSH;
	id->ocfs = htole16(1u << 0); /* Copy source range format 0 */
	id->sgls = htole32(ctrl->tops ? ctrl->tops->sgls : 0);
	id->mnan = htole32(s->mnan);
	snprintf(id->subnqn, sizeof(id->subnqn), "%s", s->nqn);
	id->msdbd = 0;

	id->psd[0].mp = htole16(PSD0_MP_CW);
	nvemu_ana_fill_id_ctrl(ctrl, id);
	/* Quirk for drivers that mishandle SGLs; fabrics need them, so PCIe only. */
	if ((ctrl->p.quirks & NVEMU_QUIRK_NO_SGL) && !(ctrl->tops && ctrl->tops->fabrics))
		id->sgls = 0;
	/* Last, so in-band hosts and the NVMe-MI tunnel read the same transport limits. */
	if (ctrl->tops && ctrl->tops->id_ctrl)
		ctrl->tops->id_ctrl(ctrl, id);
}

/* ---- Identify Namespace */

/* Fields every namespace shares: what NSID FFFFFFFFh reports. */
static void fill_id_ns_common(const struct nvemu_subsys *s, struct nvme_id_ns *id)
{
	id->nlbaf = NVEMU_NUM_LBAF - 1;
	for (uint8_t i = 0; i < NVEMU_NUM_LBAF; i++) {
		uint32_t sz = nvemu_lbaf_size(i);

		id->lbaf[i].ms = 0;
		id->lbaf[i].ds = (uint8_t)__builtin_ctz(sz);
		id->lbaf[i].rp = sz >= 4096 ? 0 : 1; /* best / better */
	}
	id->dlfeat = NVME_NS_DLFEAT_RB_ALL_0S | NVME_NS_DLFEAT_WRITE_ZEROES;
	if (!s->single_ctrl)
		id->nmic = NVME_NS_NMIC_SHARED;
	id->mssrl = htole16(NVEMU_COPY_MSSRL);
	id->mcl = htole32(NVEMU_COPY_MCL);
	id->msrc = NVEMU_COPY_MSRC;
}

void nvemu_fill_id_ns(struct nvemu_ns *ns, struct nvme_id_ns *id)
{
	memset(id, 0, sizeof(*id));
	fill_id_ns_common(ns->subsys, id);
	id->nsze = htole64(ns->nblocks);
	id->ncap = htole64(ns->nblocks);
	id->nuse = htole64(ns->nblocks);
	id->flbas = ns->lbaf & NVME_NS_FLBAS_LOWER_MASK;
	put_le128(id->nvmcap, ns->nblocks << ns->lba_shift);
	memcpy(id->nguid, ns->nguid, sizeof(id->nguid));
	memcpy(id->eui64, ns->eui64, sizeof(id->eui64));
	id->rescap = nvemu_resv_rescap(ns);
	nvemu_ana_fill_id_ns(ns, id);
}

/* ---- helpers */

static void complete_data(struct nvemu_req *req, const void *data)
{
	nvemu_req_complete(req, nvemu_req_to_host(req, data, ID_LEN));
}

static uint16_t invalid_ns(void)
{
	return NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR;
}

static uint16_t invalid_field(void)
{
	return NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;
}

/* A valid NSID names a namespace that may exist: 1..NN. */
static bool nsid_valid(const struct nvemu_subsys *s, uint32_t nsid)
{
	return nsid >= 1 && nsid <= s->nn && nsid != NVEMU_NSID_ALL;
}

/* ---- the CNS handlers; each returns a status and fills buf */

static uint16_t id_ns(struct nvemu_ctrl *ctrl, uint32_t nsid, bool allocated, void *buf)
{
	struct nvemu_subsys *s = ctrl->subsys;
	struct nvemu_ns *ns;

	if (nsid == NVEMU_NSID_ALL && !allocated) {
		fill_id_ns_common(s, buf);
		return 0;
	}
	if (!nsid_valid(s, nsid))
		return invalid_ns();
	ns = allocated ? nvemu_subsys_ns(s, nsid) : nvemu_ctrl_find_ns(ctrl, nsid);
	/* inactive (or unallocated) NSIDs read as zeroes */
	if (ns)
		nvemu_fill_id_ns(ns, buf);
	return 0;
}

static uint16_t ns_list(struct nvemu_ns *const *arr, unsigned n, uint32_t after, void *buf)
{
	struct nvme_ns_list *l = buf;
	unsigned k = 0;

	/* FFFFFFFEh and FFFFFFFFh leave no NSID to list after them: an invalid NSID. */
	if (after >= 0xfffffffe)
		return invalid_ns();
	for (unsigned i = 0; i < n && k < NVME_ID_NS_LIST_MAX; i++)
		if (arr[i]->nsid > after)
			l->ns[k++] = htole32(arr[i]->nsid);
	return 0;
}

static size_t put_desc(uint8_t *p, uint8_t type, const void *id, uint8_t len)
{
	struct nvme_ns_id_desc *d = (struct nvme_ns_id_desc *)p;

	d->nidt = type;
	d->nidl = len;
	memcpy(d->nid, id, len);
	return sizeof(*d) + len;
}

static uint16_t ns_desc_list(struct nvemu_ctrl *ctrl, uint32_t nsid, uint8_t *buf)
{
	struct nvemu_ns *ns = nvemu_ctrl_find_ns(ctrl, nsid);
	uint8_t csi = NVME_CSI_NVM;
	size_t off = 0;

	if (!ns)
		return invalid_ns();
	if (!is_zero(ns->eui64, sizeof(ns->eui64)))
		off += put_desc(buf + off, NVME_NIDT_EUI64, ns->eui64, NVME_NIDT_EUI64_LEN);
	if (!is_zero(ns->nguid, sizeof(ns->nguid)))
		off += put_desc(buf + off, NVME_NIDT_NGUID, ns->nguid, NVME_NIDT_NGUID_LEN);
	if (!is_zero(ns->uuid, sizeof(ns->uuid)))
		off += put_desc(buf + off, NVME_NIDT_UUID, ns->uuid, NVME_NIDT_UUID_LEN);
	put_desc(buf + off, NVME_NIDT_CSI, &csi, NVME_NIDT_CSI_LEN);
	return 0;
}

static uint16_t csi_id_ns(struct nvemu_ctrl *ctrl, uint32_t nsid, uint8_t csi, void *buf)
{
	struct nvme_nvm_id_ns *id = buf;

	if (csi != NVME_CSI_NVM)
		return invalid_field();
	if (!nsid_valid(ctrl->subsys, nsid))
		return invalid_ns();
	if (!nvemu_ctrl_find_ns(ctrl, nsid))
		return 0;
	/* No storage tags and no protection information: all zero. */
	id->lbstm = 0;
	id->pic = 0;
	return 0;
}

static uint16_t csi_id_ctrl(uint8_t csi, void *buf)
{
	struct nvme_id_ctrl_nvm *id = buf;

	if (csi != NVME_CSI_NVM)
		return invalid_field();
	/* Verify and Write Zeroes move no data: only NLB limits them. */
	id->vsl = 0;
	id->wzsl = 0;
	id->wusl = 0; /* Write Uncorrectable is not supported */
	id->dmrl = 0; /* all 256 ranges NR can describe */
	id->dmrsl = htole32(UINT32_MAX);
	id->dmsl = htole64(256ull * UINT32_MAX);
	return 0;
}

static uint16_t indep_id_ns(struct nvemu_ctrl *ctrl, uint32_t nsid, void *buf)
{
	struct nvme_id_independent_id_ns *id = buf;
	struct nvemu_ns *ns;

	if (!nsid_valid(ctrl->subsys, nsid))
		return invalid_ns();
	ns = nvemu_ctrl_find_ns(ctrl, nsid);
	if (!ns)
		return 0;
	if (!ctrl->subsys->single_ctrl)
		id->nmic = NVME_NS_NMIC_SHARED;
	id->nstat = ns->ready ? 1 : 0;
	return 0;
}

static uint16_t ctrl_list(struct nvemu_subsys *s, uint32_t nsid, bool attached, uint16_t from,
			  void *buf)
{
	struct nvme_ctrl_list *l = buf;
	unsigned k = 0;

	if (attached && !nsid_valid(s, nsid))
		return invalid_ns();
	for (unsigned i = 0; i < s->nr_ctrls && k < NVME_ID_CTRL_LIST_MAX; i++) {
		struct nvemu_ctrl *c = s->ctrls[i];

		if (c->cntlid < from || (attached && !nvemu_ctrl_find_ns(c, nsid)))
			continue;
		l->identifier[k++] = htole16(c->cntlid);
	}
	l->num = htole16((uint16_t)k);
	return 0;
}

static uint16_t iocs(void *buf)
{
	struct nvme_id_iocs *id = buf;

	id->iocsc[0] = htole64(1ull << NVME_CSI_NVM);
	return 0;
}

uint16_t nvemu_identify_build(struct nvemu_ctrl *ctrl, const struct nvemu_sqe *cmd, void *buf)
{
	struct nvemu_subsys *s = ctrl->subsys;
	uint32_t cdw10 = cmd->cdw10, cdw11 = cmd->cdw11, nsid = cmd->nsid;
	uint8_t csi = CSI(cdw11);
	uint16_t cntid = CNTID(cdw10);
	uint16_t st;

	switch (CNS(cdw10)) {
	case NVME_IDENTIFY_CNS_NS:
		st = id_ns(ctrl, nsid, false, buf);
		break;
	case NVME_IDENTIFY_CNS_CTRL:
		nvemu_fill_id_ctrl(ctrl, buf);
		st = 0;
		break;
	case NVME_IDENTIFY_CNS_NS_ACTIVE_LIST:
		st = ns_list(ctrl->ns, ctrl->nr_ns, nsid, buf);
		break;
	case NVME_IDENTIFY_CNS_NS_DESC_LIST:
		st = ns_desc_list(ctrl, nsid, buf);
		break;
	case NVME_IDENTIFY_CNS_CSI_NS:
		st = csi_id_ns(ctrl, nsid, csi, buf);
		break;
	case NVME_IDENTIFY_CNS_CSI_CTRL:
		st = csi_id_ctrl(csi, buf);
		break;
	case NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST:
		st = csi == NVME_CSI_NVM ? ns_list(ctrl->ns, ctrl->nr_ns, nsid, buf)
					 : invalid_field();
		break;
	case NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS:
		st = indep_id_ns(ctrl, nsid, buf);
		break;
	case NVME_IDENTIFY_CNS_ALLOCATED_NS_LIST:
		st = ns_list(s->ns, s->nr_ns, nsid, buf);
		break;
	case NVME_IDENTIFY_CNS_ALLOCATED_NS:
		st = id_ns(ctrl, nsid, true, buf);
		break;
	case NVME_IDENTIFY_CNS_NS_CTRL_LIST:
		st = ctrl_list(s, nsid, true, cntid, buf);
		break;
	case NVME_IDENTIFY_CNS_CTRL_LIST:
		st = ctrl_list(s, nsid, false, cntid, buf);
		break;
	case NVME_IDENTIFY_CNS_PRIMARY_CTRL_CAP:
		st = nvemu_id_primary_ctrl_caps(ctrl, buf);
		break;
	case NVME_IDENTIFY_CNS_SECONDARY_CTRL_LIST:
		st = nvemu_id_secondary_ctrl_list(ctrl, cntid, buf);
		break;
	case NVME_IDENTIFY_CNS_COMMAND_SET_STRUCTURE:
		st = iocs(buf);
		break;
	default:
		st = invalid_field();
		break;
	}
	return st;
}

void nvemu_execute_identify(struct nvemu_req *req)
{
	uint16_t st;
	void *buf;

	/* Fail a short buffer before doing any work. */
	st = nvemu_req_check_len(req, ID_LEN);
	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	buf = calloc(1, ID_LEN);
	if (!buf) {
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
		return;
	}
	st = nvemu_identify_build(req->ctrl, &req->cmd, buf);
	if (st)
		nvemu_req_complete(req, st);
	else
		complete_data(req, buf);
	free(buf);
}
