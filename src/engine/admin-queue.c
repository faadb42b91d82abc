/* SPDX-License-Identifier: MIT */
/*
 * I/O queue management (Create/Delete I/O SQ/CQ, NVMe Base 2.0 5.4-5.7),
 * Abort (5.1) and Keep Alive (5.25). The engine validates and keeps the
 * queue state; a memory-based transport maps the rings through its ops.
 */
#include "nvemu-internal.h"
#include "reservations.h"

#define CQ_PC  (1u << 0)
#define CQ_IEN (1u << 1)
#define SQ_PC  (1u << 0)

static const uint16_t invalid_field = NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;
static const uint16_t qid_invalid = NVEMU_SC_CMD(NVME_SC_QID_INVALID) | NVEMU_DNR;

/* I/O SQs (NSQA + 1) or CQs (NCQA + 1) the host may create. */
static unsigned granted(const struct nvemu_ctrl *ctrl, bool cq)
{
	uint32_t nq = ctrl->feat.num_queues;

	unsigned lim = nvemu_ctrl_io_queue_limit(ctrl);

	if (!ctrl->feat.num_queues_set)
		return lim;
	nq = cq ? nq >> 16 : nq & 0xffff;
	/* Never beyond the arrays (or a secondary's VQs), whatever the feature holds. */
	return nq + 1u < lim ? nq + 1u : lim;
}

/* MSI-X vectors: one per I/O queue plus the admin queue's. */
static unsigned nr_vectors(const struct nvemu_ctrl *ctrl)
{
	unsigned n = ctrl->p.num_io_queues + 1u, vi = nvemu_ctrl_virt_vectors(ctrl);

	/* A secondary controller has the VIs it was assigned. */
	if (vi && vi < n)
		n = vi;
	return n < NVEMU_MAX_MSIX ? n : NVEMU_MAX_MSIX;
}

static uint16_t check_size(const struct nvemu_ctrl *ctrl, uint32_t qsize0)
{
	/* QSIZE is 0-based and a queue needs at least two entries. */
	if (qsize0 == 0 || qsize0 + 1 > ctrl->p.max_queue_entries)
		return NVEMU_SC_CMD(NVME_SC_QUEUE_SIZE) | NVEMU_DNR;
	return 0;
}

/* A physically contiguous queue starts on a memory page boundary. */
static uint16_t check_base(const struct nvemu_ctrl *ctrl, uint64_t addr, bool pc)
{
	uint64_t page = 1ull << (12 + NVME_CC_MPS(ctrl->cc));

	if (!pc && NVME_CAP_CQR(ctrl->cap))
		return invalid_field;
	if (addr & (page - 1))
		return NVEMU_SC_GENERIC(NVME_SC_PRP_INVALID_OFFSET) | NVEMU_DNR;
	return 0;
}

void nvemu_execute_create_cq(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10), cdw11 = le32toh(req->cmd.cdw11);
	uint16_t qid = cdw10 & 0xffff, qsize0 = cdw10 >> 16, iv = cdw11 >> 16;
	uint64_t addr = le64toh(req->cmd.dptr1);
	bool pc = cdw11 & CQ_PC, ien = cdw11 & CQ_IEN;
	uint16_t st;

	if (qid == 0 || qid > granted(ctrl, true) || ctrl->cqs[qid].valid) {
		nvemu_req_complete(req, qid_invalid);
		return;
	}
	st = check_size(ctrl, qsize0);
	if (!st)
		st = check_base(ctrl, addr, pc);
	if (!st && ien && iv >= nr_vectors(ctrl))
		st = NVEMU_SC_CMD(NVME_SC_INVALID_VECTOR) | NVEMU_DNR;
	if (!st && ctrl->tops && ctrl->tops->create_cq)
		st = ctrl->tops->create_cq(ctrl, qid, addr, qsize0 + 1, iv, ien, pc);
	if (!st)
		ctrl->cqs[qid] = (struct nvemu_cq){
			.valid = true,
			.qid = qid,
			.size = qsize0 + 1,
			.iv = iv,
			.ien = ien,
			.pc = pc,
			.addr = addr,
		};
	nvemu_req_complete(req, st);
}

void nvemu_execute_create_sq(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10), cdw11 = le32toh(req->cmd.cdw11);
	uint16_t qid = cdw10 & 0xffff, qsize0 = cdw10 >> 16, cqid = cdw11 >> 16;
	uint8_t prio = (cdw11 >> 1) & 3;
	uint64_t addr = le64toh(req->cmd.dptr1);
	bool pc = cdw11 & SQ_PC;
	uint16_t st;

	if (qid == 0 || qid > granted(ctrl, false) || ctrl->sqs[qid].valid) {
		nvemu_req_complete(req, qid_invalid);
		return;
	}
	/* The admin CQ cannot take I/O completions. */
	if (cqid == 0 || cqid > ctrl->p.num_io_queues || !ctrl->cqs[cqid].valid) {
		nvemu_req_complete(req, NVEMU_SC_CMD(NVME_SC_CQ_INVALID) | NVEMU_DNR);
		return;
	}
	st = check_size(ctrl, qsize0);
	if (!st)
		st = check_base(ctrl, addr, pc);
	if (!st && ctrl->tops && ctrl->tops->create_sq)
		st = ctrl->tops->create_sq(ctrl, qid, addr, qsize0 + 1, cqid, prio, pc);
	if (!st) {
		/* Keep the counters of earlier incarnations of this qid out. */
		ctrl->sqs[qid] = (struct nvemu_sq){
			.valid = true,
			.qid = qid,
			.cqid = cqid,
			.size = qsize0 + 1,
			.prio = prio,
			.pc = pc,
			.addr = addr,
		};
		ctrl->cqs[cqid].nr_sqs++;
	}
	nvemu_req_complete(req, st);
}

void nvemu_execute_delete_sq(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint16_t qid = le32toh(req->cmd.cdw10) & 0xffff;
	struct nvemu_req *r;
	struct nvemu_sq *sq;
	uint16_t st = 0;

	if (qid == 0 || qid > ctrl->p.num_io_queues || !ctrl->sqs[qid].valid) {
		nvemu_req_complete(req, qid_invalid);
		return;
	}
	sq = &ctrl->sqs[qid];
	if (ctrl->tops && ctrl->tops->delete_sq)
		st = ctrl->tops->delete_sq(ctrl, qid);
	if (!st) {
		/* Commands still in a backend complete as aborted. */
		LIST_FOREACH(r, &ctrl->inflight_reqs, inflight_link)
			if (r->sqid == qid)
				r->abort_status = NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE);
		/* A fused first half waiting for its second on this queue: it never comes. */
		nvemu_fused_sq_deleted(ctrl, qid);
		sq->valid = false;
		if (sq->cqid <= ctrl->p.num_io_queues && ctrl->cqs[sq->cqid].nr_sqs)
			ctrl->cqs[sq->cqid].nr_sqs--;
	}
	nvemu_req_complete(req, st);
}

struct nvemu_sq *nvemu_ctrl_connect_queue(struct nvemu_ctrl *ctrl, uint16_t qid,
					  uint16_t entries)
{
	/* Admin commands run once CC.EN is 1; until then the queue only carries Fabrics commands. */
	bool valid = qid || nvemu_ctrl_enabled(ctrl);

	ctrl->sqs[qid] =
		(struct nvemu_sq){.valid = valid, .qid = qid, .cqid = qid, .size = entries};
	ctrl->cqs[qid] = (struct nvemu_cq){
		.valid = valid, .qid = qid, .size = entries, .ien = !qid, .nr_sqs = 1};
	return &ctrl->sqs[qid];
}

void nvemu_ctrl_disconnect_queue(struct nvemu_ctrl *ctrl, uint16_t qid)
{
	ctrl->sqs[qid].valid = false;
	ctrl->cqs[qid].valid = false;
}

void nvemu_execute_delete_cq(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint16_t qid = le32toh(req->cmd.cdw10) & 0xffff;
	uint16_t st = 0;

	if (qid == 0 || qid > ctrl->p.num_io_queues || !ctrl->cqs[qid].valid) {
		nvemu_req_complete(req, qid_invalid);
		return;
	}
	if (ctrl->cqs[qid].nr_sqs) {
		nvemu_req_complete(req, NVEMU_SC_CMD(NVME_SC_INVALID_QUEUE) | NVEMU_DNR);
		return;
	}
	if (ctrl->tops && ctrl->tops->delete_cq)
		st = ctrl->tops->delete_cq(ctrl, qid);
	if (!st)
		ctrl->cqs[qid].valid = false;
	nvemu_req_complete(req, st);
}

/*
 * Commands run to completion or sit in a backend, so the only thing Abort
 * can do is mark one still in flight: it then completes with Command Abort
 * Requested. dw0 bit 0 = 1 says the command was not aborted. AERs are not
 * aborted this way (they are not "in" a backend and stay outstanding).
 */
void nvemu_execute_abort(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint16_t sqid = cdw10 & 0xffff, cid = cdw10 >> 16;
	uint32_t not_aborted = 1;
	struct nvemu_req *r;

	if (sqid > ctrl->p.num_io_queues || !ctrl->sqs[sqid].valid) {
		req->cqe.dw0 = htole32(1);
		nvemu_req_complete(req, invalid_field);
		return;
	}
	LIST_FOREACH(r, &ctrl->inflight_reqs, inflight_link) {
		if (r == req || r->sqid != sqid || r->cmd.cid != cid || r->abort_status)
			continue;
		if (sqid == 0 &&
		    (r->cmd.opc == nvme_admin_async_event || r->cmd.opc == nvme_admin_abort_cmd))
			continue;
		r->abort_status = NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ);
		/* A forwarded one ends now rather than when its owner answers. */
		nvemu_admin_fwd_cancel(ctrl, r, r->abort_status);
		not_aborted = 0;
		/* One a backend holds (a stopped error bdev) ends now. */
		nvemu_req_cancel_io(r);
		break;
	}
	req->cqe.dw0 = htole32(not_aborted);
	nvemu_req_complete(req, 0);
}

void nvemu_execute_keep_alive(struct nvemu_req *req)
{
	/* dispatch() already recorded the time. */
	nvemu_req_complete(req, 0);
}
