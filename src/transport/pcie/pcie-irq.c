// SPDX-License-Identifier: MIT
/*
 * Interrupts: MSI-X (table, PBA, per-vector and function masking), INTx
 * as a level (any interrupt-enabled CQ with unconsumed entries, INTMS bit
 * 0 clear), and Interrupt Coalescing (Feature 08h) on I/O CQ vectors.
 */
#include <errno.h>
#include <stdlib.h>

#include "pcie-internal.h"

#define MSIX_MC_ENABLE	     (1u << 15)
#define MSIX_MC_FMASK	     (1u << 14)
#define PCI_CMD_INTX_DISABLE (1u << 10)
#define IVC_CD		     (1u << 16)
#define VEC_CTRL	     12 /* byte offset of Vector Control in a table entry */

int pcie_irq_init(struct nvemu_pcie_ctrl *pc)
{
	size_t words = (pc->nvec + 63) / 64;

	pc->msix_table = calloc(pc->nvec, 16);
	pc->pba = calloc(words, sizeof(*pc->pba));
	pc->ext_mask = calloc(words, sizeof(*pc->ext_mask));
	pc->vec = calloc(pc->nvec, sizeof(*pc->vec));
	if (!pc->msix_table || !pc->pba || !pc->ext_mask || !pc->vec)
		return -ENOMEM;
	pcie_irq_reset(pc, true);
	return 0;
}

void pcie_irq_free(struct nvemu_pcie_ctrl *pc)
{
	free(pc->msix_table);
	free(pc->pba);
	free(pc->ext_mask);
	free(pc->vec);
}

static void set_intx(struct nvemu_pcie_ctrl *pc, bool level)
{
	if (level == pc->intx)
		return;
	pc->intx = level;
	if (level)
		pc->vec[0].count++;
	if (pc->ops->intx_set)
		pc->ops->intx_set(pc->ctx, level);
}

void pcie_irq_reset(struct nvemu_pcie_ctrl *pc, bool flr)
{
	size_t words = (pc->nvec + 63) / 64;

	memset(pc->pba, 0, words * sizeof(*pc->pba));
	for (unsigned v = 0; v < pc->nvec; v++) {
		pc->vec[v].pending = 0;
		pc->vec[v].deadline_ns = 0;
	}
	pc->nr_armed = 0;
	if (flr) {
		/* Power-on: every vector masked, MSI-X handed back to config space. */
		memset(pc->msix_table, 0, (size_t)pc->nvec * 16);
		for (unsigned v = 0; v < pc->nvec; v++)
			pc->msix_table[v * 16 + VEC_CTRL] = 1;
		memset(pc->ext_mask, 0, words * sizeof(*pc->ext_mask));
		pc->msix_ext = pc->msix_ext_en = false;
	}
	set_intx(pc, false);
}

bool nvemu_pcie_msix_enabled(struct nvemu_pcie_ctrl *pc)
{
	if (pc->msix_ext)
		return pc->msix_ext_en;
	return pcie_cfg_msix_mc(pc) & MSIX_MC_ENABLE;
}

unsigned nvemu_pcie_msix_vectors(struct nvemu_pcie_ctrl *pc)
{
	unsigned vi = nvemu_ctrl_virt_vectors(pc->ctrl);

	/* A secondary controller (VF) has the VI resources it was assigned. */
	return vi && vi < pc->nvec ? vi : pc->nvec;
}

static bool bit(const uint64_t *map, unsigned v)
{
	return map[v / 64] >> (v % 64) & 1;
}

static void set_bit_to(uint64_t *map, unsigned v, bool on)
{
	if (on)
		map[v / 64] |= 1ull << (v % 64);
	else
		map[v / 64] &= ~(1ull << (v % 64));
}

static bool vector_masked(struct nvemu_pcie_ctrl *pc, unsigned v)
{
	if (pc->msix_ext)
		return bit(pc->ext_mask, v);
	return (pcie_cfg_msix_mc(pc) & MSIX_MC_FMASK) || (pc->msix_table[v * 16 + VEC_CTRL] & 1);
}

static void signal_vector(struct nvemu_pcie_ctrl *pc, unsigned v)
{
	if (vector_masked(pc, v)) {
		set_bit_to(pc->pba, v, true);
		return;
	}
	pc->vec[v].count++;
	if (pc->ops->msix_notify)
		pc->ops->msix_notify(pc->ctx, (uint16_t)v);
}

static void disarm(struct nvemu_pcie_ctrl *pc, unsigned v)
{
	if (pc->vec[v].deadline_ns) {
		pc->vec[v].deadline_ns = 0;
		pc->nr_armed--;
	}
	pc->vec[v].pending = 0;
}

static void fire(struct nvemu_pcie_ctrl *pc, unsigned v)
{
	disarm(pc, v);
	signal_vector(pc, v);
}

/* Deliver pending messages of vectors that are unmasked now. */
void pcie_irq_flush(struct nvemu_pcie_ctrl *pc)
{
	for (unsigned v = 0; v < pc->nvec; v++)
		if (pc->vec[v].pending)
			fire(pc, v);
}

static void deliver_pending(struct nvemu_pcie_ctrl *pc)
{
	if (!nvemu_pcie_msix_enabled(pc))
		return;
	for (unsigned w = 0; w < (pc->nvec + 63) / 64; w++) {
		if (!pc->pba[w])
			continue;
		for (unsigned b = 0; b < 64 && w * 64 + b < pc->nvec; b++) {
			unsigned v = w * 64 + b;

			if (bit(pc->pba, v) && !vector_masked(pc, v)) {
				set_bit_to(pc->pba, v, false);
				signal_vector(pc, v);
			}
		}
	}
}

bool nvemu_pcie_intx_level(struct nvemu_pcie_ctrl *pc)
{
	return pc->intx;
}

static bool intx_wanted(struct nvemu_pcie_ctrl *pc)
{
	if (nvemu_pcie_msix_enabled(pc) || (pcie_cfg_command(pc) & PCI_CMD_INTX_DISABLE) ||
	    (pc->ctrl->intms & 1))
		return false;
	for (unsigned q = 0; q < pc->nq; q++) {
		struct pcie_cq *cq = pc->cqs[q];

		if (cq && cq->q->ien && cq->q->head != cq->q->tail)
			return true;
	}
	return false;
}

void pcie_irq_update(struct nvemu_pcie_ctrl *pc)
{
	deliver_pending(pc);
	set_intx(pc, intx_wanted(pc));
}

static bool coalesced(struct nvemu_pcie_ctrl *pc, const struct pcie_cq *cq)
{
	const struct nvemu_features *f = &pc->ctrl->feat;

	/* The admin CQ's completions are never delayed. */
	if (cq->q->qid == 0 || !(f->irq_coalesce & 0xffff))
		return false;
	if (cq->q->iv < NVEMU_IV_MAX && (f->irq_config[cq->q->iv] & IVC_CD))
		return false;
	return true;
}

void pcie_irq_cq_posted(struct nvemu_pcie_ctrl *pc, struct pcie_cq *cq)
{
	const struct nvemu_features *f = &pc->ctrl->feat;
	struct pcie_vec *vec;

	if (!cq->q->ien)
		return;
	if (!nvemu_pcie_msix_enabled(pc)) {
		set_intx(pc, intx_wanted(pc));
		return;
	}
	if (cq->q->iv >= pc->nvec)
		return;
	vec = &pc->vec[cq->q->iv];
	if (coalesced(pc, cq)) {
		uint32_t thr = (f->irq_coalesce & 0xff) + 1u;
		uint64_t time_ns = ((f->irq_coalesce >> 8) & 0xff) * 100000ull;

		if (++vec->pending < thr) {
			/* TIME 0: the deadline is the end of this doorbell's batch. */
			if (!vec->deadline_ns) {
				vec->deadline_ns = nvemu_now_ns() + time_ns;
				if (!vec->deadline_ns)
					vec->deadline_ns = 1;
				pc->nr_armed++;
			}
			return;
		}
	}
	fire(pc, cq->q->iv);
}

void pcie_irq_drop_vector(struct nvemu_pcie_ctrl *pc, uint16_t iv)
{
	if (iv < pc->nvec)
		disarm(pc, iv);
}

int pcie_irq_poll(struct nvemu_pcie_ctrl *pc)
{
	uint64_t now;
	int n = 0;

	if (!pc->nr_armed)
		return 0;
	now = nvemu_now_ns();
	for (unsigned v = 0; v < pc->nvec && pc->nr_armed; v++) {
		if (pc->vec[v].deadline_ns && pc->vec[v].deadline_ns <= now) {
			fire(pc, v);
			n++;
		}
	}
	return n;
}

uint64_t pcie_irq_next_us(struct nvemu_pcie_ctrl *pc)
{
	uint64_t now, best = UINT64_MAX;

	if (!pc->nr_armed)
		return 0;
	now = nvemu_now_ns();
	for (unsigned v = 0; v < pc->nvec; v++) {
		uint64_t d = pc->vec[v].deadline_ns;

		if (d && d < best)
			best = d;
	}
	if (best <= now)
		return 1;
	return (best - now + 999) / 1000;
}

void nvemu_pcie_msix_ext_enable(struct nvemu_pcie_ctrl *pc, bool enabled)
{
	pc->msix_ext = true;
	pc->msix_ext_en = enabled;
	pcie_irq_update(pc);
}

void nvemu_pcie_msix_ext_mask(struct nvemu_pcie_ctrl *pc, uint16_t vector, bool masked)
{
	if (vector >= pc->nvec)
		return;
	pc->msix_ext = true;
	set_bit_to(pc->ext_mask, vector, masked);
	if (!masked)
		pcie_irq_update(pc);
}

/* ---- table and PBA as BAR0 sees them */

static uint64_t get_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint64_t pcie_msix_read(struct nvemu_pcie_ctrl *pc, uint64_t off, unsigned size)
{
	uint64_t tbl_end = NVEMU_PCIE_MSIX_TABLE_OFF + (uint64_t)pc->nvec * 16;
	uint64_t pba_len = ((pc->nvec + 63) / 64) * 8ull;

	if (off >= NVEMU_PCIE_MSIX_TABLE_OFF && off + size <= tbl_end)
		return get_le(pc->msix_table + (off - NVEMU_PCIE_MSIX_TABLE_OFF), size);
	if (off >= NVEMU_PCIE_MSIX_PBA_OFF && off + size <= NVEMU_PCIE_MSIX_PBA_OFF + pba_len) {
		uint8_t b[8];
		uint64_t o = off - NVEMU_PCIE_MSIX_PBA_OFF;

		for (unsigned i = 0; i < size; i++)
			b[i] = (uint8_t)(pc->pba[(o + i) / 8] >> (8 * ((o + i) % 8)));
		return get_le(b, size);
	}
	return 0;
}

void pcie_msix_write(struct nvemu_pcie_ctrl *pc, uint64_t off, unsigned size, uint64_t val)
{
	uint64_t tbl_end = NVEMU_PCIE_MSIX_TABLE_OFF + (uint64_t)pc->nvec * 16;
	uint64_t o;

	/* The PBA is read-only. */
	if (off < NVEMU_PCIE_MSIX_TABLE_OFF || off + size > tbl_end)
		return;
	o = off - NVEMU_PCIE_MSIX_TABLE_OFF;
	for (unsigned i = 0; i < size; i++) {
		uint64_t b = o + i;

		/* Vector Control: only the Mask bit is writable. */
		if (b % 16 >= VEC_CTRL) {
			if (b % 16 == VEC_CTRL)
				pc->msix_table[b] = (uint8_t)(val >> (8 * i)) & 1;
			continue;
		}
		pc->msix_table[b] = (uint8_t)(val >> (8 * i));
	}
	deliver_pending(pc);
}
