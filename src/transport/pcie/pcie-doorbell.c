// SPDX-License-Identifier: MIT
/*
 * Doorbells without register accesses: the doorbell page(s) of BAR0 in
 * memory shared with the host (a vfio-user client maps them), and the
 * Shadow Doorbell / EventIdx buffers of Doorbell Buffer Config in guest
 * memory. Neither wakes anyone: the transport's loop polls them
 * (nvemu_pcie_db_poll) and every value found goes through the same checks
 * as a register write (pcie_doorbell), so a hostile host gets the
 * asynchronous error events, never a crash.
 *
 * With shadow doorbells on, an I/O queue's shadow value is the newest the
 * host wrote (it writes the shadow before any register), so a register
 * write on such a queue only says "look at the shadow"; taking the
 * register's value could move the tail back behind a shadow already used.
 */
#include <errno.h>
#include <stdlib.h>

#include "pcie-internal.h"

#define PAGE 4096u

static uint32_t load(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void store(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

int pcie_db_init(struct nvemu_pcie_ctrl *pc)
{
	pc->db_seen = calloc(2u * pc->nq, sizeof(*pc->db_seen));
	pc->shadow_seen = calloc(2u * pc->nq, sizeof(*pc->shadow_seen));
	return pc->db_seen && pc->shadow_seen ? 0 : -ENOMEM;
}

void pcie_db_free(struct nvemu_pcie_ctrl *pc)
{
	free(pc->db_seen);
	free(pc->shadow_seen);
}

uint32_t nvemu_pcie_db_area_size(const struct nvemu_pcie_ctrl *pc)
{
	return (2u * pc->nq * 4u + PAGE - 1) & ~(PAGE - 1);
}

/* Every doorbell back to 0, as a reset leaves the registers. */
static void shm_clear(struct nvemu_pcie_ctrl *pc)
{
	for (unsigned db = 0; db < 2u * pc->nq; db++) {
		if (pc->db_shm)
			store(&pc->db_shm[db], 0);
		pc->db_seen[db] = 0;
	}
}

void nvemu_pcie_db_attach(struct nvemu_pcie_ctrl *pc, void *mem)
{
	pc->db_shm = mem;
	shm_clear(pc);
}

/* Controller reset or enable: doorbells read 0, the shadow buffers are forgotten. */
void pcie_db_reset(struct nvemu_pcie_ctrl *pc)
{
	shm_clear(pc);
	pc->shadow = pc->eventidx = NULL;
	pc->shadow_ndb = 0;
	pc->dbst.shadow_addr = pc->dbst.eventidx_addr = 0;
	for (unsigned db = 0; db < 2u * pc->nq; db++)
		pc->shadow_seen[db] = 0;
}

/* EventIdx: the host rings the register once it moves past what was taken. */
static void eventidx_update(struct nvemu_pcie_ctrl *pc, uint32_t db)
{
	uint32_t qid = db / 2, v;

	if (!pc->eventidx || !qid || db >= pc->shadow_ndb)
		return;
	if (db & 1) {
		if (!pc->cqs[qid])
			return;
		v = pc->cqs[qid]->q->head;
	} else {
		if (!pc->sqs[qid])
			return;
		v = pc->sqs[qid]->q->tail;
	}
	store(&pc->eventidx[db], v);
}

/* A new queue starts at 0 whatever the host's memory held before. */
void pcie_db_queue_created(struct nvemu_pcie_ctrl *pc, uint32_t db)
{
	if (db >= 2u * pc->nq)
		return;
	if (pc->db_shm)
		store(&pc->db_shm[db], 0);
	pc->db_seen[db] = 0;
	pc->shadow_seen[db] = 0;
	if (pc->shadow && db >= 2 && db < pc->shadow_ndb) {
		store(&pc->shadow[db], 0);
		store(&pc->eventidx[db], 0);
	}
}

/* A value for doorbell db arrived (register message or shared page). */
static void db_write(struct nvemu_pcie_ctrl *pc, uint32_t db, uint32_t val)
{
	if (pc->shadow && db >= 2 && db < pc->shadow_ndb) {
		val = load(&pc->shadow[db]);
		if (val != pc->shadow_seen[db])
			pc->dbst.shadow_updates++;
		pc->shadow_seen[db] = val;
	}
	pcie_doorbell(pc, db, val);
	eventidx_update(pc, db);
}

void pcie_db_msg_write(struct nvemu_pcie_ctrl *pc, uint32_t db, uint32_t val)
{
	pc->dbst.msg_writes++;
	/* Keep the shared page in step, or polling would take its older value. */
	if (pc->db_shm && db < 2u * pc->nq) {
		store(&pc->db_shm[db], val);
		pc->db_seen[db] = val;
	}
	db_write(pc, db, val);
}

bool nvemu_pcie_db_needs_polling(const struct nvemu_pcie_ctrl *pc)
{
	return (pc->db_shm || pc->shadow) && pcie_ready(pc);
}

int nvemu_pcie_db_poll(struct nvemu_pcie_ctrl *pc)
{
	int n = 0;

	if (!nvemu_pcie_db_needs_polling(pc))
		return 0;
	pc->dbst.polls++;
	/*
	 * Indexes and pointers are re-read each time: a doorbell runs admin
	 * commands, which may create or delete queues, reset the controller
	 * or configure the shadow buffers.
	 */
	for (uint32_t db = 0; pc->db_shm && db < 2u * pc->nq && pcie_ready(pc); db++) {
		uint32_t v = load(&pc->db_shm[db]);

		if (v == pc->db_seen[db])
			continue;
		pc->db_seen[db] = v;
		pc->dbst.mem_writes++;
		db_write(pc, db, v);
		n++;
	}
	for (uint32_t db = 2; pc->shadow && db < pc->shadow_ndb && pcie_ready(pc); db++) {
		uint32_t v;

		if (!((db & 1) ? (void *)pc->cqs[db / 2] : (void *)pc->sqs[db / 2]))
			continue;
		v = load(&pc->shadow[db]);
		if (v == pc->shadow_seen[db])
			continue;
		pc->shadow_seen[db] = v;
		pc->dbst.shadow_updates++;
		pcie_doorbell(pc, db, v);
		eventidx_update(pc, db);
		n++;
	}
	/* EventIdx stores before the next look at the shadow values. */
	if (n && pc->shadow)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return n;
}

/* The ops table's dbbuf_config: both buffers must be shared memory. */
uint16_t pcie_dbbuf_config(struct nvemu_ctrl *ctrl, uint64_t dbs, uint64_t eis)
{
	struct nvemu_pcie_ctrl *pc = nvemu_ctrl_transport_priv(ctrl);
	size_t len = 2u * pc->nq * 4u;
	uint32_t *sh, *ei;

	if (len > pc->page_size)
		len = pc->page_size;
	sh = pc->ops->map ? pc->ops->map(pc->ctx, dbs, len) : NULL;
	ei = pc->ops->map ? pc->ops->map(pc->ctx, eis, len) : NULL;
	/* Polling the buffers through DMA messages would cost more than it saves. */
	if (!sh || !ei)
		return NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;
	pc->shadow = sh;
	pc->eventidx = ei;
	pc->shadow_ndb = (uint32_t)(len / 4);
	pc->dbst.shadow_addr = dbs;
	pc->dbst.eventidx_addr = eis;
	/* Queues that exist already go on from their current state. */
	for (uint32_t db = 2; db < len / 4; db++) {
		uint32_t v = 0;

		if (db & 1 ? pc->cqs[db / 2] != NULL : pc->sqs[db / 2] != NULL)
			v = db & 1 ? pc->cqs[db / 2]->q->head : pc->sqs[db / 2]->q->tail;
		store(&sh[db], v);
		store(&ei[db], v);
		pc->shadow_seen[db] = v;
	}
	return 0;
}

void nvemu_pcie_db_stats(const struct nvemu_pcie_ctrl *pc, struct nvemu_pcie_db_stats *out)
{
	*out = pc->dbst;
	out->mapped = pc->db_shm != NULL;
	out->shadow = pc->shadow != NULL;
}
