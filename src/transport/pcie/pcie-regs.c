// SPDX-License-Identifier: MIT
/*
 * BAR0: the controller registers (NVMe Base 2.0 3.1.4) and doorbells, and
 * the PCIe controller's life cycle. Every register write goes through the
 * engine (nvemu_ctrl_set_cc: enable, reset, shutdown; the admin queue and
 * interrupt mask setters); what only a memory-based transport can check
 * before an enable (AQA/ASQ/ACQ, queue entry sizes) is the ops table's
 * enable_ok().
 */
#include <errno.h>
#include <stdlib.h>

#include "pcie-internal.h"

#define CC_EN	   1u
#define CSTS_RDY   (1u << NVME_CSTS_RDY_SHIFT)
#define CSTS_CFS   (1u << NVME_CSTS_CFS_SHIFT)
#define CSTS_NSSRO (1u << NVME_CSTS_NSSRO_SHIFT)
#define NSSR_MAGIC 0x4E564D65u /* "NVMe" */
#define SQES	   6	       /* log2 of the entry sizes Identify reports */
#define CQES	   4

void pcie_fatal(struct nvemu_pcie_ctrl *pc)
{
	nvemu_ctrl_fatal(pc->ctrl);
}

struct nvemu_ctrl *nvemu_pcie_ctrl_engine(struct nvemu_pcie_ctrl *pc)
{
	return pc->ctrl;
}

/* ---- life cycle */

void pcie_free(struct nvemu_pcie_ctrl *pc)
{
	pcie_irq_free(pc);
	pcie_db_free(pc);
	free(pc->sqs);
	free(pc->cqs);
	free(pc);
}

/* CC.EN 1->0 (or a reset from elsewhere): completions in flight are dropped. */
static void ctrl_disable(struct nvemu_pcie_ctrl *pc, struct nvemu_ctrl *ctrl)
{
	pc->resetting = true;
	nvemu_ctrl_set_cc(ctrl, 0);
	pc->resetting = false;
	nvemu_ctrl_set_intms(ctrl, 0);
}

int nvemu_pcie_ctrl_create(struct nvemu_ctrl *ctrl, const struct nvemu_pci_host_ops *ops, void *ctx,
			   struct nvemu_pcie_ctrl **out, struct nvemu_error *err)
{
	struct nvemu_pcie_ctrl *pc;
	int rc;

	if (!ctrl || !ops || !ops->dma_read || !ops->dma_write || !out)
		return nvemu_error_set(err, -EINVAL, "pcie: a controller and DMA ops are required");
	if (ctrl->tops)
		return nvemu_error_set(err, -EBUSY,
				       "pcie: controller %u is already bound to transport %s",
				       ctrl->cntlid, ctrl->tops->name);
	pc = calloc(1, sizeof(*pc));
	if (!pc)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	pc->ctrl = ctrl;
	pc->ops = ops;
	pc->ctx = ctx;
	pc->nq = ctrl->p.num_io_queues + 1u;
	pc->nvec = pc->nq < NVEMU_MAX_MSIX ? pc->nq : NVEMU_MAX_MSIX;
	pc->page_size = 4096;
	LIST_INIT(&pc->zombies);
	pc->sqs = calloc(pc->nq, sizeof(*pc->sqs));
	pc->cqs = calloc(pc->nq, sizeof(*pc->cqs));
	if (!pc->sqs || !pc->cqs || pcie_irq_init(pc) || pcie_db_init(pc)) {
		pcie_free(pc);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	pcie_cfg_init(pc);
	rc = nvemu_ctrl_bind_transport(ctrl, &pcie_transport_ops, pc, err);
	if (rc) {
		pcie_free(pc);
		return rc;
	}
	/* Queues set up through another path are not in guest memory: start clean. */
	if (ctrl->cc & CC_EN)
		ctrl_disable(pc, ctrl);
	*out = pc;
	return 0;
}

void nvemu_pcie_ctrl_destroy(struct nvemu_pcie_ctrl *pc)
{
	struct nvemu_ctrl *ctrl;

	if (!pc)
		return;
	ctrl = pc->ctrl;
	if (ctrl->cc & CC_EN)
		ctrl_disable(pc, ctrl);
	else
		pcie_queues_teardown(pc);
	nvemu_ctrl_bind_transport(ctrl, NULL, NULL, NULL);
	/* Commands a backend still holds keep their zombie SQ, and it keeps pc. */
	if (!LIST_EMPTY(&pc->zombies))
		pc->destroyed = true;
	else
		pcie_free(pc);
}

void nvemu_pcie_ctrl_reset(struct nvemu_pcie_ctrl *pc)
{
	struct nvemu_ctrl *ctrl = pc->ctrl;

	if (ctrl->cc & CC_EN)
		ctrl_disable(pc, ctrl);
	else
		pcie_queues_teardown(pc);
	nvemu_ctrl_reset_regs(ctrl);
	pc->nssro = false;
	pcie_cfg_init(pc);
	pcie_irq_reset(pc, true);
}

/* ---- registers */

/* What only the PCIe transport can check before CC.EN takes effect. */
bool pcie_enable_ok(const struct nvemu_ctrl *ctrl, uint32_t cc)
{
	uint64_t page = 4096ull << NVME_CC_MPS(cc);

	/* Admin queues hold at least two entries (AQA fields are 0's based). */
	if (!(ctrl->aqa & 0xfff) || !((ctrl->aqa >> 16) & 0xfff))
		return false;
	if ((ctrl->asq & (page - 1)) || (ctrl->acq & (page - 1)))
		return false;
	return NVME_CC_IOSQES(cc) == SQES && NVME_CC_IOCQES(cc) == CQES;
}

static void cc_write(struct nvemu_pcie_ctrl *pc, uint32_t cc)
{
	struct nvemu_ctrl *ctrl = pc->ctrl;
	bool en = cc & CC_EN, was = ctrl->cc & CC_EN;

	if (en && !was) {
		nvemu_ctrl_set_cc(ctrl, cc);
		if (!(ctrl->csts & CSTS_RDY))
			return;
		pc->page_size = (uint32_t)(4096ull << NVME_CC_MPS(cc));
		if (pcie_admin_queues_create(pc))
			pcie_fatal(pc);
		return;
	}
	if (!en && was) {
		pc->resetting = true;
		nvemu_ctrl_set_cc(ctrl, cc);
		pc->resetting = false;
		nvemu_ctrl_set_intms(ctrl, 0);
		return;
	}
	nvemu_ctrl_set_cc(ctrl, cc);
}

/* NVM Subsystem Reset: every controller of the subsystem is reset. */
static void nssr(struct nvemu_pcie_ctrl *pc)
{
	struct nvemu_subsys *s = pc->ctrl->subsys;

	for (unsigned i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_ctrl *c = s->ctrls[i];
		struct nvemu_pcie_ctrl *o = c->tops == &pcie_transport_ops ? c->tpriv : NULL;

		if (o)
			o->resetting = true;
		if (c->cc & CC_EN)
			nvemu_ctrl_set_cc(c, 0);
		nvemu_ctrl_reset_regs(c);
		if (o) {
			o->resetting = false;
			o->nssro = true;
			nvemu_ctrl_set_intms(c, 0);
		}
	}
}

static uint32_t reg_read32(struct nvemu_pcie_ctrl *pc, uint32_t off)
{
	struct nvemu_ctrl *ctrl = pc->ctrl;
	uint64_t cap = nvemu_ctrl_get_cap(ctrl);

	switch (off) {
	case NVEMU_REG_CAP:
		return (uint32_t)cap;
	case NVEMU_REG_CAP + 4:
		return (uint32_t)(cap >> 32);
	case NVEMU_REG_VS:
		return nvemu_ctrl_get_vs(ctrl);
	case NVEMU_REG_INTMS:
	case NVEMU_REG_INTMC:
		return ctrl->intms;
	case NVEMU_REG_CC:
		return nvemu_ctrl_get_cc(ctrl);
	case NVEMU_REG_CSTS:
		return nvemu_ctrl_get_csts(ctrl) | (pc->nssro ? CSTS_NSSRO : 0);
	case NVEMU_REG_AQA:
		return ctrl->aqa;
	case NVEMU_REG_ASQ:
		return (uint32_t)ctrl->asq;
	case NVEMU_REG_ASQ + 4:
		return (uint32_t)(ctrl->asq >> 32);
	case NVEMU_REG_ACQ:
		return (uint32_t)ctrl->acq;
	case NVEMU_REG_ACQ + 4:
		return (uint32_t)(ctrl->acq >> 32);
	default:
		/* NSSR reads 0; CMBLOC/CMBSZ 0: no Controller Memory Buffer. */
		return 0;
	}
}

/* One dword of a 64-bit register. */
static uint64_t set_lo(uint64_t reg, uint32_t v)
{
	return (reg & ~0xffffffffull) | v;
}

static uint64_t set_hi(uint64_t reg, uint32_t v)
{
	return (reg & 0xffffffffull) | (uint64_t)v << 32;
}

static void reg_write32(struct nvemu_pcie_ctrl *pc, uint32_t off, uint32_t v)
{
	struct nvemu_ctrl *ctrl = pc->ctrl;

	switch (off) {
	case NVEMU_REG_INTMS:
		nvemu_ctrl_set_intms(ctrl, ctrl->intms | v);
		pcie_irq_update(pc);
		break;
	case NVEMU_REG_INTMC:
		nvemu_ctrl_set_intms(ctrl, ctrl->intms & ~v);
		pcie_irq_update(pc);
		break;
	case NVEMU_REG_CC:
		cc_write(pc, v);
		break;
	case NVEMU_REG_CSTS:
		if (v & CSTS_NSSRO) /* RW1C */
			pc->nssro = false;
		break;
	case NVEMU_REG_NSSR:
		if (v == NSSR_MAGIC)
			nssr(pc);
		break;
	case NVEMU_REG_AQA:
		nvemu_ctrl_set_aqa(ctrl, v);
		break;
	case NVEMU_REG_ASQ:
		nvemu_ctrl_set_admin_queue_addr(ctrl, set_lo(ctrl->asq, v), ctrl->acq);
		break;
	case NVEMU_REG_ASQ + 4:
		nvemu_ctrl_set_admin_queue_addr(ctrl, set_hi(ctrl->asq, v), ctrl->acq);
		break;
	case NVEMU_REG_ACQ:
		nvemu_ctrl_set_admin_queue_addr(ctrl, ctrl->asq, set_lo(ctrl->acq, v));
		break;
	case NVEMU_REG_ACQ + 4:
		nvemu_ctrl_set_admin_queue_addr(ctrl, ctrl->asq, set_hi(ctrl->acq, v));
		break;
	default:
		break; /* read-only or reserved */
	}
}

uint64_t nvemu_pcie_bar0_read(struct nvemu_pcie_ctrl *pc, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	if ((size != 1 && size != 2 && size != 4 && size != 8) || off >= NVEMU_PCIE_BAR0_SIZE ||
	    size > NVEMU_PCIE_BAR0_SIZE - off)
		return 0;
	if (off >= NVEMU_PCIE_MSIX_TABLE_OFF)
		return pcie_msix_read(pc, off, size);
	if (off >= NVEMU_PCIE_DB_OFF)
		return 0; /* doorbells are write-only */
	for (unsigned i = 0; i < size; i++) {
		uint32_t o = (uint32_t)off + i;
		uint32_t d = reg_read32(pc, o & ~3u);

		v |= (uint64_t)((d >> (8 * (o & 3))) & 0xff) << (8 * i);
	}
	return v;
}

void nvemu_pcie_bar0_write(struct nvemu_pcie_ctrl *pc, uint64_t off, unsigned size, uint64_t val)
{
	if ((size != 1 && size != 2 && size != 4 && size != 8) || off >= NVEMU_PCIE_BAR0_SIZE ||
	    size > NVEMU_PCIE_BAR0_SIZE - off)
		return;
	if (off >= NVEMU_PCIE_MSIX_TABLE_OFF) {
		pcie_msix_write(pc, off, size, val);
		return;
	}
	if (off >= NVEMU_PCIE_DB_OFF) {
		if (size == 4 && !(off & 3))
			pcie_db_msg_write(pc, (uint32_t)(off - NVEMU_PCIE_DB_OFF) / 4, (uint32_t)val);
		return;
	}
	if (size == 8 && !(off & 7)) {
		reg_write32(pc, (uint32_t)off, (uint32_t)val);
		reg_write32(pc, (uint32_t)off + 4, (uint32_t)(val >> 32));
		return;
	}
	if (size == 4 && !(off & 3)) {
		reg_write32(pc, (uint32_t)off, (uint32_t)val);
		return;
	}
	if (size <= 2 && (off & 3) + size <= 4) {
		/* Narrow write: merge into the dword, then write that. */
		uint32_t o = (uint32_t)off & ~3u, sh = 8 * ((uint32_t)off & 3);
		uint32_t m = (size == 1 ? 0xffu : 0xffffu) << sh;
		uint32_t d = reg_read32(pc, o);

		/* INTMS/INTMC read the mask and write set/clear bits: no merge there. */
		if (o == NVEMU_REG_INTMS || o == NVEMU_REG_INTMC || o == NVEMU_REG_CSTS)
			d = 0;
		reg_write32(pc, o, (d & ~m) | (((uint32_t)val << sh) & m));
	}
}

/* ---- deferred work, debug */

int nvemu_pcie_ctrl_poll(struct nvemu_pcie_ctrl *pc)
{
	return pcie_irq_poll(pc) + pcie_queue_poll(pc);
}

uint64_t nvemu_pcie_ctrl_poll_interval_us(struct nvemu_pcie_ctrl *pc)
{
	return pcie_irq_next_us(pc);
}

int nvemu_pcie_ctrl_debug(struct nvemu_pcie_ctrl *pc, uint16_t qid,
			  struct nvemu_pcie_queue_debug *out)
{
	const struct pcie_sq *sq;
	const struct pcie_cq *cq;

	if (qid >= pc->nq)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	sq = pc->sqs[qid];
	cq = pc->cqs[qid];
	if (sq) {
		out->sq_valid = true;
		out->sq_size = sq->q->size;
		out->sq_cqid = sq->q->cqid;
		out->driver_sq_tail = sq->q->tail;
		out->device_sq_head = sq->q->head;
		out->sq_inflight = sq->outstanding;
	}
	if (cq) {
		out->cq_valid = true;
		out->cq_size = cq->q->size;
		out->cq_iv = cq->q->iv;
		out->cq_ien = cq->q->ien;
		out->driver_cq_head = cq->q->head;
		out->device_cq_tail = cq->q->tail;
		out->cq_phase = cq->phase;
		out->cq_backlog = cq->nr_backlog;
		if (cq->q->iv < pc->nvec)
			out->interrupts = pc->vec[cq->q->iv].count;
	}
	out->doorbell_errors = pc->db_errors;
	return 0;
}
