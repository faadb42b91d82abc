// SPDX-License-Identifier: MIT
/*
 * Live update: the PCIe function's own state (configuration space, MSI-X
 * table and PBA, doorbell positions, CQ phases, shadow doorbell buffers,
 * the host's outstanding AERs) as a versioned blob another process loads
 * into a new function on the same engine state. The engine's registers and
 * queues travel separately (the controller snapshot); guest memory stays
 * where it is, the new process maps it again.
 *
 * Saving needs a quiet function: paused (nothing fetched), nothing in
 * flight but AERs, no completion waiting for CQ space.
 */
#include <errno.h>
#include <stdlib.h>

#include "pcie-internal.h"
#include "util/lebuf.h"

#define STATE_MAGIC   0x4350564eu /* "NVPC" */
#define STATE_VERSION 1
#define MAX_AERS      16

void nvemu_pcie_ctrl_pause(struct nvemu_pcie_ctrl *pc, bool paused)
{
	pc->paused = paused;
	if (!paused && pcie_ready(pc))
		pcie_arbitrate(pc);
}

bool nvemu_pcie_ctrl_paused(const struct nvemu_pcie_ctrl *pc)
{
	return pc->paused;
}

int nvemu_pcie_ctrl_save(struct nvemu_pcie_ctrl *pc, uint8_t **blob, size_t *len,
			 struct nvemu_error *err)
{
	size_t words = (pc->nvec + 63) / 64;
	struct lebuf_w w = { 0 };
	uint16_t cids[MAX_AERS];
	int naer;

	if (!pc->paused)
		return nvemu_error_set(err, -EBUSY, "pcie: not paused");
	naer = pcie_aer_cids(pc, cids, MAX_AERS);
	if (naer < 0 || nvemu_ctrl_inflight(pc->ctrl))
		return nvemu_error_set(err, -EBUSY, "pcie: commands other than AERs in flight");
	if (pcie_cq_backlogged(pc))
		return nvemu_error_set(err, -EBUSY,
				       "pcie: completions wait for room in a full CQ (the host must consume them)");
	/* Coalesced interrupts go out now rather than be lost with this process. */
	pcie_irq_flush(pc);
	lebuf_put32(&w, STATE_MAGIC);
	lebuf_put32(&w, STATE_VERSION);
	lebuf_put32(&w, pc->nq);
	lebuf_put32(&w, pc->nvec);
	lebuf_put(&w, pc->cfg, sizeof(pc->cfg));
	lebuf_put(&w, pc->msix_table, (size_t)pc->nvec * 16);
	for (size_t i = 0; i < words; i++)
		lebuf_put64(&w, pc->pba[i]);
	for (size_t i = 0; i < words; i++)
		lebuf_put64(&w, pc->ext_mask[i]);
	lebuf_put(&w, &(uint8_t[4]){ pc->msix_ext, pc->msix_ext_en, pc->intx, pc->nssro }, 4);
	lebuf_put32(&w, pc->page_size);
	lebuf_put64(&w, pc->shadow ? pc->dbst.shadow_addr : 0);
	lebuf_put64(&w, pc->shadow ? pc->dbst.eventidx_addr : 0);
	for (unsigned q = 0; q < pc->nq; q++) {
		uint8_t ph = pcie_cq_phase(pc, q);

		lebuf_put(&w, &ph, 1);
	}
	for (unsigned i = 0; i < 2u * pc->nq; i++)
		lebuf_put32(&w, pc->db_seen[i]);
	for (unsigned i = 0; i < 2u * pc->nq; i++)
		lebuf_put32(&w, pc->shadow_seen[i]);
	lebuf_put32(&w, (uint32_t)naer);
	for (int i = 0; i < naer; i++)
		lebuf_put32(&w, cids[i]);
	if (w.oom) {
		free(w.p);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	*blob = w.p;
	*len = w.len;
	return 0;
}

int nvemu_pcie_ctrl_load(struct nvemu_pcie_ctrl *pc, const uint8_t *blob, size_t len,
			 void *db_mem, struct nvemu_error *err)
{
	size_t words = (pc->nvec + 63) / 64;
	struct lebuf_r r = { .p = blob, .len = len };
	uint8_t flags[4], *phase;
	uint64_t dbs, eis;
	uint32_t naer, cids[MAX_AERS];
	int rc;

	if (lebuf_get32(&r) != STATE_MAGIC || lebuf_get32(&r) != STATE_VERSION)
		return nvemu_error_set(err, -EINVAL, "pcie state: not an nvemu PCIe state (version 1)");
	if (lebuf_get32(&r) != pc->nq || lebuf_get32(&r) != pc->nvec)
		return nvemu_error_set(err, -EINVAL,
				       "pcie state: saved for another queue count than this controller's %u",
				       pc->nq - 1);
	if (pc->sqs[0] || pc->cqs[0])
		return nvemu_error_set(err, -EBUSY, "pcie state: the function already has queues");
	phase = malloc(pc->nq);
	if (!phase)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	lebuf_get(&r, pc->cfg, sizeof(pc->cfg));
	lebuf_get(&r, pc->msix_table, (size_t)pc->nvec * 16);
	for (size_t i = 0; i < words; i++)
		pc->pba[i] = lebuf_get64(&r);
	for (size_t i = 0; i < words; i++)
		pc->ext_mask[i] = lebuf_get64(&r);
	lebuf_get(&r, flags, 4);
	pc->page_size = lebuf_get32(&r);
	dbs = lebuf_get64(&r);
	eis = lebuf_get64(&r);
	lebuf_get(&r, phase, pc->nq);
	for (unsigned i = 0; i < 2u * pc->nq; i++)
		pc->db_seen[i] = lebuf_get32(&r);
	for (unsigned i = 0; i < 2u * pc->nq; i++)
		pc->shadow_seen[i] = lebuf_get32(&r);
	naer = lebuf_get32(&r);
	if (naer > MAX_AERS)
		r.bad = true;
	for (unsigned i = 0; i < naer && !r.bad; i++)
		cids[i] = lebuf_get32(&r);
	if (r.bad || r.off != r.len || pc->page_size < 4096 || (pc->page_size & (pc->page_size - 1))) {
		free(phase);
		return nvemu_error_set(err, -EINVAL, "pcie state: truncated or inconsistent");
	}
	pc->msix_ext = flags[0];
	pc->msix_ext_en = flags[1];
	pc->intx = flags[2];
	pc->nssro = flags[3];
	pc->db_shm = db_mem;
	pc->paused = true;
	rc = pcie_queues_restore(pc, phase);
	free(phase);
	if (rc) {
		pcie_queues_teardown(pc);
		return nvemu_error_set(err, rc, "pcie state: the engine's queues cannot be set up again (%s)",
				       rc == -ENOMEM ? "out of memory" : "inconsistent");
	}
	if (dbs) {
		size_t dlen = 2u * pc->nq * 4u;

		if (dlen > pc->page_size)
			dlen = pc->page_size;
		pc->shadow = pc->ops->map ? pc->ops->map(pc->ctx, dbs, dlen) : NULL;
		pc->eventidx = pc->ops->map ? pc->ops->map(pc->ctx, eis, dlen) : NULL;
		if (!pc->shadow || !pc->eventidx) {
			pcie_queues_teardown(pc);
			return nvemu_error_set(err, -EFAULT,
					       "pcie state: shadow doorbell buffers are not in guest memory");
		}
		pc->shadow_ndb = (uint32_t)(dlen / 4);
		pc->dbst.shadow_addr = dbs;
		pc->dbst.eventidx_addr = eis;
	}
	for (unsigned i = 0; i < naer; i++)
		if (pcie_aer_resubmit(pc, (uint16_t)cids[i]))
			return nvemu_error_set(err, -ENOSPC, "pcie state: no room for the host's AERs");
	return 0;
}

/* What a function handed over points at: nothing of the guest's any more. */
static int null_rw(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return -EIO;
}

static int null_w(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	return -EIO;
}

static void null_notify(void *ctx, uint16_t vector)
{
}

static const struct nvemu_pci_host_ops null_host_ops = {
	.dma_read = null_rw,
	.dma_write = null_w,
	.msix_notify = null_notify,
};

void nvemu_pcie_ctrl_detach_host(struct nvemu_pcie_ctrl *pc)
{
	pc->ops = &null_host_ops;
	pc->db_shm = NULL;
	pc->shadow = pc->eventidx = NULL;
	pc->shadow_ndb = 0;
	for (unsigned q = 0; q < pc->nq; q++) {
		if (pc->sqs[q])
			pc->sqs[q]->ring = NULL;
		if (pc->cqs[q])
			pc->cqs[q]->ring = NULL;
	}
}
