// SPDX-License-Identifier: MIT
/*
 * Queues in host memory: the transport hooks that map I/O queues after the
 * engine validated Create/Delete, SQ fetch, CQ posting with phase tags,
 * round-robin arbitration with the Arbitration Burst, doorbells.
 *
 * Each SQ owns a pool of requests as deep as the queue. A completion that
 * finds its CQ full waits on the CQ's backlog (keeping its slot, which is
 * what throttles fetching) until the host moves the CQ head. A deleted SQ
 * whose commands are still in a backend lingers as a zombie until the last
 * one comes back; after a controller reset their completions are dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "pcie-internal.h"

static const uint16_t st_internal = NVEMU_SC_GENERIC(NVME_SC_INTERNAL);

static inline struct nvemu_pcie_ctrl *to_pc(struct nvemu_ctrl *ctrl)
{
	return nvemu_ctrl_transport_priv(ctrl);
}

/* ---- queue objects */

static void *ring_map(struct nvemu_pcie_ctrl *pc, uint64_t addr, size_t len)
{
	return pc->ops->map ? pc->ops->map(pc->ctx, addr, len) : NULL;
}

/* The engine fills q (ctrl->cqs[qid]) once the transport accepted the queue. */
static struct pcie_cq *cq_new(struct nvemu_pcie_ctrl *pc, struct nvemu_cq *q, uint64_t addr,
			      uint16_t size)
{
	struct pcie_cq *cq = calloc(1, sizeof(*cq));

	if (!cq)
		return NULL;
	cq->q = q;
	cq->phase = true;
	STAILQ_INIT(&cq->backlog);
	cq->ring = ring_map(pc, addr, (size_t)size * PCIE_CQE_SIZE);
	return cq;
}

static struct pcie_sq *sq_new(struct nvemu_pcie_ctrl *pc, struct nvemu_sq *q, uint64_t addr,
			      uint16_t size, struct pcie_cq *cq)
{
	struct pcie_sq *sq = calloc(1, sizeof(*sq));

	if (!sq)
		return NULL;
	sq->reqs = calloc(size, sizeof(*sq->reqs));
	if (!sq->reqs) {
		free(sq);
		return NULL;
	}
	sq->pc = pc;
	sq->q = q;
	sq->nr_reqs = size;
	sq->cq = cq;
	sq->ring = ring_map(pc, addr, (size_t)size * PCIE_SQE_SIZE);
	STAILQ_INIT(&sq->free);
	for (unsigned i = size; i-- > 0;) {
		sq->reqs[i].sq = sq;
		STAILQ_INSERT_HEAD(&sq->free, &sq->reqs[i], link);
	}
	return sq;
}

static void sq_free(struct pcie_sq *sq)
{
	for (unsigned i = 0; i < sq->nr_reqs; i++)
		pcie_dptr_free(&sq->reqs[i]);
	free(sq->reqs);
	free(sq);
}

/* Detach an SQ from its qid; freed now or when its last command returns. */
static void sq_retire(struct nvemu_pcie_ctrl *pc, struct pcie_sq *sq, bool orphan)
{
	pc->sqs[sq->q->qid] = NULL;
	if (!sq->outstanding) {
		sq_free(sq);
		return;
	}
	sq->retired = *sq->q;
	sq->q = &sq->retired;
	sq->zombie = true;
	sq->orphan |= orphan;
	if (orphan)
		sq->cq = NULL;
	LIST_INSERT_HEAD(&pc->zombies, sq, zombie_link);
}

static void req_release(struct pcie_req *r)
{
	struct pcie_sq *sq = r->sq;

	pcie_dptr_release(r);
	STAILQ_INSERT_HEAD(&sq->free, r, link);
	sq->outstanding--;
	if (sq->zombie && !sq->outstanding) {
		struct nvemu_pcie_ctrl *pc = sq->pc;

		LIST_REMOVE(sq, zombie_link);
		sq_free(sq);
		if (pc->destroyed && LIST_EMPTY(&pc->zombies))
			pcie_free(pc);
	}
}

/* ---- completion */

static bool cq_full(const struct pcie_cq *cq)
{
	return (cq->q->tail + 1) % cq->q->size == cq->q->head;
}

static void post(struct nvemu_pcie_ctrl *pc, struct pcie_cq *cq, struct pcie_req *r)
{
	struct nvemu_req *req = &r->req;
	struct nvemu_sq *sq = r->sq->q;
	struct nvemu_cq *q = cq->q;
	uint16_t status = (uint16_t)(req->cqe.status << 1) | cq->phase;
	uint8_t cqe[PCIE_CQE_SIZE];
	uint32_t dw0 = htole32(req->cqe.dw0), dw1 = htole32(req->cqe.dw1);
	uint16_t sqhd = htole16((uint16_t)sq->head), sqid = htole16(sq->qid);
	uint16_t st = htole16(status);
	uint64_t off = (uint64_t)q->tail * PCIE_CQE_SIZE;

	memcpy(cqe, &dw0, 4);
	memcpy(cqe + 4, &dw1, 4);
	memcpy(cqe + 8, &sqhd, 2);
	memcpy(cqe + 10, &sqid, 2);
	memcpy(cqe + 12, &req->cmd.cid, 2);
	memcpy(cqe + 14, &st, 2);
	if (cq->ring) {
		/* The phase tag (in the status word) becomes visible last. */
		memcpy(cq->ring + off, cqe, 14);
		__atomic_store_n((uint16_t *)(void *)(cq->ring + off + 14), st, __ATOMIC_RELEASE);
	} else if (pc->ops->dma_write(pc->ctx, q->addr + off, cqe, sizeof(cqe))) {
		pcie_fatal(pc);
		return;
	}
	if (++q->tail == q->size) {
		q->tail = 0;
		cq->phase = !cq->phase;
	}
	pcie_irq_cq_posted(pc, cq);
}

static void complete(struct nvemu_pcie_ctrl *pc, struct pcie_req *r)
{
	struct pcie_sq *sq = r->sq;
	struct pcie_cq *cq = sq->cq;
	bool kick = !sq->zombie && sq->q->head != sq->q->tail;

	if (sq->orphan || pc->resetting || !cq) {
		req_release(r);
		return;
	}
	if (cq->nr_backlog || cq_full(cq)) {
		STAILQ_INSERT_TAIL(&cq->backlog, r, link);
		cq->nr_backlog++;
		return;
	}
	post(pc, cq, r);
	req_release(r);
	/* A slot came free: a queue that ran out of them can go on. */
	if (kick)
		pcie_arbitrate(pc);
}

static void flush_backlog(struct nvemu_pcie_ctrl *pc, struct pcie_cq *cq)
{
	bool any = false;

	while (!STAILQ_EMPTY(&cq->backlog) && !cq_full(cq) && pcie_ready(pc)) {
		struct pcie_req *r = STAILQ_FIRST(&cq->backlog);

		STAILQ_REMOVE_HEAD(&cq->backlog, link);
		cq->nr_backlog--;
		post(pc, cq, r);
		req_release(r);
		any = true;
	}
	if (any)
		pcie_arbitrate(pc);
}

static void drop_backlog(struct pcie_cq *cq)
{
	while (!STAILQ_EMPTY(&cq->backlog)) {
		struct pcie_req *r = STAILQ_FIRST(&cq->backlog);

		STAILQ_REMOVE_HEAD(&cq->backlog, link);
		req_release(r);
	}
	cq->nr_backlog = 0;
}

static void req_done(struct nvemu_req *req)
{
	struct pcie_req *r = pcie_container_of(req, struct pcie_req, req);
	struct pcie_sq *sq = r->sq;
	struct nvemu_pcie_ctrl *pc = sq->pc;

	r->in_engine = false;
	sq->in_engine--;
	if (r->scatter && !sq->orphan) {
		uint16_t st = 0;

		if (!(req->cqe.status & 0x7ff))
			st = pcie_dptr_scatter(pc, r);
		r->scatter = false;
		if (st)
			req->cqe.status = st;
	}
	complete(pc, r);
}

/* A command that fails before reaching the engine (data pointer, MDTS). */
static void fail_local(struct nvemu_pcie_ctrl *pc, struct pcie_req *r, uint16_t status)
{
	struct nvemu_req *req = &r->req;

	memset(&req->cqe, 0, sizeof(req->cqe));
	req->cqe.status = status;
	req->cqe.cid = req->cmd.cid;
	req->cqe.sqid = req->sqid;
	nvemu_ctrl_record_error(pc->ctrl, req, status);
	r->sq->q->st.requests++;
	r->sq->q->st.completions++;
	complete(pc, r);
}

/* ---- submission */

static bool fetch_one(struct nvemu_pcie_ctrl *pc, struct pcie_sq *sq)
{
	struct nvemu_ctrl *ctrl = pc->ctrl;
	struct nvemu_sq *q = sq->q;
	struct pcie_req *r = STAILQ_FIRST(&sq->free);
	struct nvemu_req *req = &r->req;
	uint64_t off = (uint64_t)q->head * PCIE_SQE_SIZE;
	uint64_t max = nvemu_ctrl_max_xfer_bytes(ctrl);
	int64_t len;
	uint16_t st = 0;
	uint8_t psdt;

	if (sq->ring) {
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		memcpy(&req->cmd, sq->ring + off, PCIE_SQE_SIZE);
	} else if (pc->ops->dma_read(pc->ctx, q->addr + off, &req->cmd, PCIE_SQE_SIZE)) {
		pcie_fatal(pc);
		return false;
	}
	STAILQ_REMOVE_HEAD(&sq->free, link);
	sq->outstanding++;
	q->head = (q->head + 1) % q->size;

	req->sqid = q->qid;
	req->oob = false;
	req->buf = NULL;
	req->buf_len = 0;
	req->done = req_done;
	req->transport_priv = r;
	r->nsegs = 0;
	r->len = 0;
	r->scatter = false;

	psdt = req->cmd.flags >> 6;
	len = nvemu_req_expected_len(ctrl, q->qid, &req->cmd);
	/* admin: PRPs only; I/O too when the no-SGL quirk took SGLS away */
	if (psdt && (q->qid == 0 || (ctrl->p.quirks & NVEMU_QUIRK_NO_SGL)))
		st = NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;
	else if (len > 0 && max && (uint64_t)len > max)
		st = NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;
	else if (len > 0)
		st = pcie_dptr_setup(pc, r, (uint32_t)len);
	if (st) {
		fail_local(pc, r, st);
		return true;
	}
	r->in_engine = true;
	sq->in_engine++;
	nvemu_ctrl_submit(ctrl, req);
	return true;
}

bool pcie_ready(const struct nvemu_pcie_ctrl *pc)
{
	uint32_t csts = pc->ctrl->csts;

	return (csts & (1u << NVME_CSTS_RDY_SHIFT)) && !(csts & (1u << NVME_CSTS_CFS_SHIFT));
}

/* The SQ has commands to fetch and a free request to take one. */
static bool sq_fetchable(const struct pcie_sq *sq)
{
	return sq && !sq->pc->paused && sq->q->head != sq->q->tail && !STAILQ_EMPTY(&sq->free);
}

/*
 * Round robin over the SQs, up to the Arbitration Burst commands from each
 * per turn. Re-entered from completions (done() may run inside submit):
 * the outer call then simply goes round again.
 */
void pcie_arbitrate(struct nvemu_pcie_ctrl *pc)
{
	if (pc->in_arb) {
		pc->arb_again = true;
		return;
	}
	pc->in_arb = true;
	do {
		unsigned ab = pc->ctrl->feat.arbitration & 7;
		unsigned burst = ab == 7 ? UINT32_MAX : 1u << ab;
		bool progress;

		pc->arb_again = false;
		do {
			progress = false;
			for (unsigned q = 0; q < pc->nq; q++) {
				for (unsigned n = 0; n < burst; n++) {
					struct pcie_sq *sq = pc->sqs[q];

					if (!sq_fetchable(sq) || !pcie_ready(pc))
						break;
					if (!fetch_one(pc, sq))
						break;
					progress = true;
				}
			}
		} while (progress);
	} while (pc->arb_again);
	pc->in_arb = false;
	pcie_irq_poll(pc);
}

int pcie_queue_poll(struct nvemu_pcie_ctrl *pc)
{
	int n = 0;

	for (unsigned q = 0; q < pc->nq; q++) {
		struct pcie_sq *sq = pc->sqs[q];

		if (sq_fetchable(sq) && pcie_ready(pc))
			n++;
	}
	if (n)
		pcie_arbitrate(pc);
	return n;
}

/* ---- doorbells */

static void db_error(struct nvemu_pcie_ctrl *pc, uint8_t info)
{
	pc->db_errors++;
	nvemu_ctrl_add_event(pc->ctrl, NVME_AER_ERROR, info, NVME_LOG_LID_ERROR);
}

/* CQ head doorbell: the host consumed entries up to val. */
static void cq_doorbell(struct nvemu_pcie_ctrl *pc, uint32_t qid, uint32_t val)
{
	struct pcie_cq *cq = qid < pc->nq ? pc->cqs[qid] : NULL;
	struct nvemu_cq *q;
	uint32_t used, adv;

	if (!cq) {
		db_error(pc, NVME_AER_ERROR_INVALID_DB_REG);
		return;
	}
	q = cq->q;
	used = (q->tail + q->size - q->head) % q->size;
	adv = (val + q->size - q->head) % q->size;
	/* The host cannot consume entries not posted yet. */
	if (val >= q->size || adv > used) {
		db_error(pc, NVME_AER_ERROR_INVALID_DB_VAL);
		return;
	}
	q->head = val;
	flush_backlog(pc, cq);
	pcie_irq_update(pc);
}

void pcie_doorbell(struct nvemu_pcie_ctrl *pc, uint32_t db, uint32_t val)
{
	uint32_t qid = db / 2;
	struct pcie_sq *sq;

	if (!pcie_ready(pc))
		return;
	if (db & 1) {
		cq_doorbell(pc, qid, val);
		return;
	}
	sq = qid < pc->nq ? pc->sqs[qid] : NULL;
	if (!sq) {
		db_error(pc, NVME_AER_ERROR_INVALID_DB_REG);
		return;
	}
	if (val >= sq->q->size) {
		db_error(pc, NVME_AER_ERROR_INVALID_DB_VAL);
		return;
	}
	sq->q->tail = val;
	pcie_arbitrate(pc);
}

bool nvemu_pcie_ctrl_busy(const struct nvemu_pcie_ctrl *pc)
{
	if (!LIST_EMPTY(&pc->zombies))
		return true;
	for (unsigned q = 0; q < pc->nq; q++)
		if (pc->sqs[q] && pc->sqs[q]->outstanding)
			return true;
	return false;
}

/* ---- waiting for commands in backends */

static unsigned in_engine(struct nvemu_pcie_ctrl *pc, struct pcie_sq *only)
{
	struct pcie_sq *z;
	unsigned n = 0;

	if (only)
		return only->in_engine;
	for (unsigned q = 0; q < pc->nq; q++)
		if (pc->sqs[q])
			n += pc->sqs[q]->in_engine;
	LIST_FOREACH(z, &pc->zombies, zombie_link)
		n += z->in_engine;
	return n;
}

/*
 * Let backends finish what they hold (bounded): the spec wants commands
 * completed or aborted before a Delete SQ or a reset completes. Held
 * (suspended) commands cannot finish, so do not wait for them.
 */
void pcie_drain(struct nvemu_pcie_ctrl *pc, struct pcie_sq *sq)
{
	uint64_t deadline = nvemu_now_ns() + PCIE_DRAIN_NS;

	while (in_engine(pc, sq) && !pc->ctrl->suspended && nvemu_now_ns() < deadline) {
		if (nvemu_subsys_poll(pc->ctrl->subsys) <= 0) {
			struct timespec ts = {0, 100000};

			nanosleep(&ts, NULL);
		}
	}
}

/* ---- transport hooks (after the engine validated the command) */

static uint16_t hook_create_cq(struct nvemu_ctrl *ctrl, uint16_t qid, uint64_t addr, uint16_t size,
			       uint16_t iv, bool ien, bool pc_bit)
{
	struct nvemu_pcie_ctrl *pc = to_pc(ctrl);
	struct pcie_cq *cq;

	if (qid >= pc->nq || pc->cqs[qid])
		return NVEMU_SC_CMD(NVME_SC_QID_INVALID) | NVEMU_DNR;
	if (ien && iv >= pc->nvec)
		return NVEMU_SC_CMD(NVME_SC_INVALID_VECTOR) | NVEMU_DNR;
	cq = cq_new(pc, &ctrl->cqs[qid], addr, size);
	if (!cq)
		return st_internal;
	pc->cqs[qid] = cq;
	pcie_db_queue_created(pc, 2u * qid + 1);
	return 0;
}

static uint16_t hook_create_sq(struct nvemu_ctrl *ctrl, uint16_t qid, uint64_t addr, uint16_t size,
			       uint16_t cqid, uint8_t prio, bool pc_bit)
{
	struct nvemu_pcie_ctrl *pc = to_pc(ctrl);
	struct pcie_sq *sq;

	if (qid >= pc->nq || pc->sqs[qid])
		return NVEMU_SC_CMD(NVME_SC_QID_INVALID) | NVEMU_DNR;
	if (cqid >= pc->nq || !pc->cqs[cqid])
		return NVEMU_SC_CMD(NVME_SC_CQ_INVALID) | NVEMU_DNR;
	sq = sq_new(pc, &ctrl->sqs[qid], addr, size, pc->cqs[cqid]);
	if (!sq)
		return st_internal;
	pc->sqs[qid] = sq;
	pcie_db_queue_created(pc, 2u * qid);
	return 0;
}

static uint16_t hook_delete_sq(struct nvemu_ctrl *ctrl, uint16_t qid)
{
	struct nvemu_pcie_ctrl *pc = to_pc(ctrl);
	struct pcie_sq *sq = qid < pc->nq ? pc->sqs[qid] : NULL;

	if (!sq)
		return NVEMU_SC_CMD(NVME_SC_QID_INVALID) | NVEMU_DNR;
	pcie_drain(pc, sq);
	/* Whatever is still in a backend completes as aborted (engine) into the CQ. */
	sq_retire(pc, sq, false);
	return 0;
}

static uint16_t hook_delete_cq(struct nvemu_ctrl *ctrl, uint16_t qid)
{
	struct nvemu_pcie_ctrl *pc = to_pc(ctrl);
	struct pcie_cq *cq = qid < pc->nq ? pc->cqs[qid] : NULL;
	struct pcie_sq *z;

	if (!cq)
		return NVEMU_SC_CMD(NVME_SC_QID_INVALID) | NVEMU_DNR;
	for (unsigned q = 0; q < pc->nq; q++)
		if (pc->sqs[q] && pc->sqs[q]->cq == cq)
			return NVEMU_SC_CMD(NVME_SC_INVALID_QUEUE) | NVEMU_DNR;
	pc->cqs[qid] = NULL;
	LIST_FOREACH(z, &pc->zombies, zombie_link)
		if (z->cq == cq)
			z->cq = NULL;
	drop_backlog(cq);
	if (cq->q->ien)
		pcie_irq_drop_vector(pc, cq->q->iv);
	free(cq);
	pcie_irq_update(pc);
	return 0;
}

void pcie_queues_teardown(struct nvemu_pcie_ctrl *pc)
{
	struct pcie_sq *z;

	pcie_drain(pc, NULL);
	LIST_FOREACH(z, &pc->zombies, zombie_link) {
		z->orphan = true;
		z->cq = NULL;
	}
	for (unsigned q = 0; q < pc->nq; q++)
		if (pc->sqs[q])
			pc->sqs[q]->orphan = true;
	for (unsigned q = 0; q < pc->nq; q++) {
		struct pcie_cq *cq = pc->cqs[q];

		if (!cq)
			continue;
		pc->cqs[q] = NULL;
		drop_backlog(cq);
		free(cq);
	}
	for (unsigned q = 0; q < pc->nq; q++)
		if (pc->sqs[q])
			sq_retire(pc, pc->sqs[q], true);
	pcie_irq_reset(pc, false);
	pcie_db_reset(pc);
}

static void hook_reset(struct nvemu_ctrl *ctrl)
{
	pcie_queues_teardown(to_pc(ctrl));
}

/* Doorbell Buffer Config is offered: OACS says so (the engine fills the rest). */
static void hook_id_ctrl(const struct nvemu_ctrl *ctrl, struct nvme_id_ctrl *id)
{
	id->oacs |= htole16(NVME_CTRL_OACS_DBBUF_CFG);
}

/* No keep-alive timer: a PCIe host is gone when the function is. */
const struct nvemu_transport_ops pcie_transport_ops = {
	.name = "pcie",
	.fabrics = false,
	.create_cq = hook_create_cq,
	.create_sq = hook_create_sq,
	.delete_cq = hook_delete_cq,
	.delete_sq = hook_delete_sq,
	.reset = hook_reset,
	.enable_ok = pcie_enable_ok,
	/* SGLs supported, no alignment or granularity rules (01b), Bit Bucket */
	.sgls = 1u | NVME_CTRL_SGLS_BIT_BUCKET,
	.id_ctrl = hook_id_ctrl,
	.dbbuf_config = pcie_dbbuf_config,
};

uint16_t pcie_admin_queues_create(struct nvemu_pcie_ctrl *pc)
{
	struct nvemu_ctrl *ctrl = pc->ctrl;
	struct nvemu_sq *asq = &ctrl->sqs[0];
	struct nvemu_cq *acq = &ctrl->cqs[0];
	/* The engine set both up from AQA/ASQ/ACQ when CC.EN went to 1. */
	struct pcie_cq *cq = cq_new(pc, acq, acq->addr, acq->size);
	struct pcie_sq *sq = cq ? sq_new(pc, asq, asq->addr, asq->size, cq) : NULL;

	if (!sq) {
		free(cq);
		return st_internal;
	}
	pc->cqs[0] = cq;
	pc->sqs[0] = sq;
	pcie_db_reset(pc);
	return 0;
}

/* ---- live update (pcie-state.c) */

int pcie_queues_restore(struct nvemu_pcie_ctrl *pc, const uint8_t *cq_phase)
{
	struct nvemu_ctrl *ctrl = pc->ctrl;

	for (unsigned q = 0; q < pc->nq; q++) {
		struct nvemu_cq *eq = &ctrl->cqs[q];

		if (!eq->valid)
			continue;
		if (eq->size < 2 || eq->tail >= eq->size || eq->head >= eq->size ||
		    (eq->ien && eq->iv >= pc->nvec))
			return -EINVAL;
		pc->cqs[q] = cq_new(pc, eq, eq->addr, eq->size);
		if (!pc->cqs[q])
			return -ENOMEM;
		pc->cqs[q]->phase = cq_phase[q];
	}
	for (unsigned q = 0; q < pc->nq; q++) {
		struct nvemu_sq *eq = &ctrl->sqs[q];

		if (!eq->valid)
			continue;
		if (eq->size < 2 || eq->tail >= eq->size || eq->head >= eq->size ||
		    eq->cqid >= pc->nq || !pc->cqs[eq->cqid])
			return -EINVAL;
		pc->sqs[q] = sq_new(pc, eq, eq->addr, eq->size, pc->cqs[eq->cqid]);
		if (!pc->sqs[q])
			return -ENOMEM;
	}
	return 0;
}

int pcie_aer_resubmit(struct nvemu_pcie_ctrl *pc, uint16_t cid)
{
	struct pcie_sq *sq = pc->sqs[0];
	struct pcie_req *r = sq ? STAILQ_FIRST(&sq->free) : NULL;
	struct nvemu_req *req;

	if (!r)
		return -ENOSPC;
	STAILQ_REMOVE_HEAD(&sq->free, link);
	sq->outstanding++;
	req = &r->req;
	memset(&req->cmd, 0, sizeof(req->cmd));
	req->cmd.opc = nvme_admin_async_event;
	req->cmd.cid = cid;
	req->sqid = 0;
	req->oob = false;
	req->buf = NULL;
	req->buf_len = 0;
	req->done = req_done;
	req->transport_priv = r;
	r->nsegs = 0;
	r->len = 0;
	r->scatter = false;
	r->in_engine = true;
	sq->in_engine++;
	/* The controller is suspended: the engine holds it until resume, then parks it. */
	nvemu_ctrl_submit(pc->ctrl, req);
	return 0;
}

int pcie_aer_cids(struct nvemu_pcie_ctrl *pc, uint16_t *cids, unsigned max)
{
	unsigned n = 0;

	if (!LIST_EMPTY(&pc->zombies))
		return -1;
	for (unsigned q = 0; q < pc->nq; q++) {
		struct pcie_sq *sq = pc->sqs[q];

		if (!sq)
			continue;
		for (unsigned i = 0; i < sq->nr_reqs; i++) {
			struct pcie_req *r = &sq->reqs[i];

			if (!r->in_engine)
				continue;
			if (q || r->req.cmd.opc != nvme_admin_async_event || n == max)
				return -1;
			cids[n++] = r->req.cmd.cid;
		}
	}
	return (int)n;
}

bool pcie_cq_phase(const struct nvemu_pcie_ctrl *pc, unsigned qid)
{
	return pc->cqs[qid] ? pc->cqs[qid]->phase : true;
}

bool pcie_cq_backlogged(const struct nvemu_pcie_ctrl *pc)
{
	for (unsigned q = 0; q < pc->nq; q++)
		if (pc->cqs[q] && pc->cqs[q]->nr_backlog)
			return true;
	return false;
}
