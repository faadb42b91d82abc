/* SPDX-License-Identifier: MIT */
/*
 * Fused Compare and Write (NVMe Base 2.0, 3.4.2; FUSES bit 0). The first
 * half (Compare, FUSE 01b) waits on its SQ for the second (Write, FUSE
 * 10b); on PCIe they are adjacent entries, on TCP adjacent capsules.
 * The pair is atomic with respect to every other command on the
 * namespace: new I/O to it waits while the pair runs, and the pair starts
 * once the I/O already running on the namespace has finished. A
 * miscompare leaves the data alone and aborts the Write with Command
 * Aborted due to Failed Fused Command.
 */
#include <errno.h>
#include <stdlib.h>

#include "reservations.h"

#define FUSE_FIRST  1
#define FUSE_SECOND 2

#define SC_INVALID_FIELD (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define SC_MISSING	 NVEMU_SC_GENERIC(NVME_SC_FUSED_MISSING)
#define SC_FAILED	 NVEMU_SC_GENERIC(NVME_SC_FUSED_FAIL)
#define SC_NOMEM	 NVEMU_SC_GENERIC(NVME_SC_INTERNAL)

/* The compare half's scratch: its partner and the bounce buffer for the read. */
struct fused_ctx {
	struct nvemu_req *wr;
	struct nvemu_ns *ns;
	uint64_t off, len;
	uint8_t data[];
};

static struct nvemu_req **first_slot(struct nvemu_ctrl *ctrl, uint16_t sqid)
{
	struct nvemu_resv_ctrl *rc = nvemu_resv_ctrl_get(ctrl);

	if (!rc)
		return NULL;
	if (!rc->fused_first)
		rc->fused_first = calloc(ctrl->p.num_io_queues + 1u, sizeof(*rc->fused_first));
	return rc->fused_first ? &rc->fused_first[sqid] : NULL;
}

void nvemu_fused_check_missing(struct nvemu_ctrl *ctrl, uint16_t sqid)
{
	struct nvemu_req *first;

	if (!ctrl->resv || !ctrl->resv->fused_first || !ctrl->resv->fused_first[sqid])
		return;
	first = ctrl->resv->fused_first[sqid];
	ctrl->resv->fused_first[sqid] = NULL;
	nvemu_req_complete(first, SC_MISSING);
}

void nvemu_fused_sq_deleted(struct nvemu_ctrl *ctrl, uint16_t sqid)
{
	struct nvemu_req *first;

	if (!ctrl->resv || !ctrl->resv->fused_first || !ctrl->resv->fused_first[sqid])
		return;
	first = ctrl->resv->fused_first[sqid];
	ctrl->resv->fused_first[sqid] = NULL;
	nvemu_req_complete(first, NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));
}

void nvemu_fused_ctrl_reset(struct nvemu_ctrl *ctrl)
{
	if (!ctrl->resv || !ctrl->resv->fused_first)
		return;
	for (unsigned q = 0; q <= ctrl->p.num_io_queues; q++) {
		struct nvemu_req *first = ctrl->resv->fused_first[q];

		if (!first)
			continue;
		ctrl->resv->fused_first[q] = NULL;
		nvemu_req_complete(first, NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	}
}

static uint64_t slba(const struct nvemu_sqe *c)
{
	return (uint64_t)le32toh(c->cdw11) << 32 | le32toh(c->cdw10);
}

static void fail_pair(struct nvemu_req *cmp, struct nvemu_req *wr, uint16_t cmp_st)
{
	nvemu_req_complete(cmp, cmp_st);
	nvemu_req_complete(wr, SC_FAILED);
}

/* Checks both halves against the namespace; the status for the Compare, or 0. */
static uint16_t pair_prep(struct nvemu_ctrl *ctrl, struct nvemu_req *cmp, struct nvemu_req *wr,
			  struct nvemu_ns *ns, uint64_t *len)
{
	uint64_t s = slba(&cmp->cmd), nlb = (le32toh(cmp->cmd.cdw12) & 0xffff) + 1ull;
	uint64_t max = nvemu_ctrl_max_xfer_bytes(ctrl);
	uint16_t st;

	if (!ns->ready)
		return NVEMU_SC_GENERIC(NVME_SC_NS_NOT_READY);
	st = nvemu_resv_check(ctrl, ns, nvme_cmd_compare);
	if (!st)
		st = nvemu_resv_check(ctrl, ns, nvme_cmd_write);
	if (st)
		return st;
	*len = nlb << ns->lba_shift;
	if (max && *len > max)
		return SC_INVALID_FIELD;
	if (s > ns->nblocks || nlb > ns->nblocks - s)
		return NVEMU_SC_GENERIC(NVME_SC_LBA_RANGE) | NVEMU_DNR;
	st = nvemu_req_check_len(cmp, (uint32_t)*len);
	if (!st)
		st = nvemu_req_check_len(wr, (uint32_t)*len);
	if (!st && ns->bdev->read_only)
		st = NVEMU_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED) | NVEMU_DNR;
	return st;
}

static void pair_finish(struct nvemu_ns *ns);
static void pair_start(struct nvemu_ns *ns, struct nvemu_req *cmp);

static void write_end_io(struct nvemu_bio *bio, int err)
{
	struct nvemu_req *cmp = bio->private;
	struct fused_ctx *c = cmp->cmd_priv;
	struct nvemu_req *wr = c->wr;
	struct nvemu_ns *ns = nvemu_ns_get(c->ns); /* the completions may drop the last one */
	uint16_t st = nvemu_bio_status(cmp->ctrl, bio, err);

	if (!st) {
		wr->xfer_len = (uint32_t)c->len;
		cmp->ctrl->smart.units_written += c->len >> 9;
		cmp->ctrl->smart.host_write_cmds++;
	}
	nvemu_req_complete(cmp, 0);
	nvemu_req_complete(wr, st);
	pair_finish(ns);
	nvemu_ns_put(ns);
}

static void compare_end_io(struct nvemu_bio *bio, int err)
{
	struct nvemu_req *cmp = bio->private;
	struct fused_ctx *c = cmp->cmd_priv;
	struct nvemu_req *wr = c->wr;
	struct nvemu_ns *ns = nvemu_ns_get(c->ns);
	uint16_t st = nvemu_bio_status(cmp->ctrl, bio, err);
	int rc;

	if (!st) {
		cmp->xfer_len = (uint32_t)c->len;
		cmp->ctrl->smart.units_read += c->len >> 9;
		cmp->ctrl->smart.host_read_cmds++;
		if (memcmp(c->data, cmp->buf, c->len))
			st = NVEMU_SC_MEDIA(NVME_SC_COMPARE_FAILED) | NVEMU_DNR;
	}
	if (st) {
		fail_pair(cmp, wr, st);
		pair_finish(ns);
		nvemu_ns_put(ns);
		return;
	}
	memset(&wr->bio, 0, sizeof(wr->bio));
	wr->bio.op = NVEMU_BIO_WRITE;
	wr->bio.offset = c->off;
	wr->bio.len = c->len;
	wr->bio.buf = wr->buf;
	wr->bio.fua = nvemu_ctrl_write_through(wr->ctrl, le32toh(wr->cmd.cdw12) & (1u << 30));
	wr->bio.end_io = write_end_io;
	wr->bio.private = cmp;
	rc = nvemu_bdev_submit(ns->bdev, &wr->bio);
	if (rc)
		write_end_io(&wr->bio, rc);
	nvemu_ns_put(ns);
}

/* The pair runs once it is the only I/O on the namespace. */
static void pair_try_run(struct nvemu_ns *ns)
{
	struct nvemu_resv *r = ns->resv;
	struct nvemu_req *cmp = r->fused_pair[0];
	struct fused_ctx *c;
	unsigned base = ns->removed ? 0 : 1;
	int rc;

	if (!cmp || ns->refs != base + 2)
		return;
	r->fused_pair[0] = r->fused_pair[1] = NULL;
	c = cmp->cmd_priv;
	memset(&cmp->bio, 0, sizeof(cmp->bio));
	cmp->bio.op = NVEMU_BIO_READ;
	cmp->bio.offset = c->off;
	cmp->bio.len = c->len;
	cmp->bio.buf = c->data;
	cmp->bio.end_io = compare_end_io;
	cmp->bio.private = cmp;
	rc = nvemu_bdev_submit(ns->bdev, &cmp->bio);
	if (rc)
		compare_end_io(&cmp->bio, rc);
}

void nvemu_fused_ns_put(struct nvemu_ns *ns)
{
	if (ns->resv && ns->resv->fused_pair[0])
		pair_try_run(ns);
}

/* The pair is over: what waited runs, in arrival order, until another pair starts. */
static void pair_finish(struct nvemu_ns *ns)
{
	struct nvemu_resv *r = ns->resv;

	r->fused_busy = false;
	while (!r->fused_busy && !STAILQ_EMPTY(&r->waiting)) {
		struct nvemu_req *req = STAILQ_FIRST(&r->waiting);

		STAILQ_REMOVE_HEAD(&r->waiting, queue_link);
		if ((req->cmd.flags & 3) == FUSE_FIRST && req->cmd_priv)
			pair_start(ns, req);
		else
			nvemu_ctrl_redispatch(req);
	}
}

static void pair_start(struct nvemu_ns *ns, struct nvemu_req *cmp)
{
	struct nvemu_resv *r = ns->resv;
	struct fused_ctx *c = cmp->cmd_priv;

	r->fused_busy = true;
	cmp->ns = nvemu_ns_get(ns);
	c->wr->ns = nvemu_ns_get(ns);
	r->fused_pair[0] = cmp;
	r->fused_pair[1] = c->wr;
	pair_try_run(ns);
}

bool nvemu_fused_hold(struct nvemu_req *req)
{
	struct nvemu_ns *ns = req->ns;

	if (!ns->resv || !ns->resv->fused_busy)
		return false;
	STAILQ_INSERT_TAIL(&ns->resv->waiting, req, queue_link);
	req->ns = NULL;
	nvemu_ns_put(ns); /* queued first: this may start the pair, which may run what waits */
	return true;
}

static void run_pair(struct nvemu_ctrl *ctrl, struct nvemu_req *cmp, struct nvemu_req *wr)
{
	uint32_t nsid = le32toh(cmp->cmd.nsid);
	struct nvemu_ns *ns = nsid ? nvemu_ctrl_find_ns(ctrl, nsid) : NULL;
	struct nvemu_resv *r;
	struct fused_ctx *c;
	uint64_t len = 0;
	uint16_t st;

	/* Both halves name the same blocks: only then is the pair one operation. */
	if (wr->cmd.opc != nvme_cmd_write || wr->cmd.nsid != cmp->cmd.nsid ||
	    wr->cmd.cdw10 != cmp->cmd.cdw10 || wr->cmd.cdw11 != cmp->cmd.cdw11 ||
	    (wr->cmd.cdw12 & 0xffff) != (cmp->cmd.cdw12 & 0xffff)) {
		nvemu_req_complete(cmp, SC_INVALID_FIELD);
		nvemu_req_complete(wr, SC_INVALID_FIELD);
		return;
	}
	if (!ns) {
		fail_pair(cmp, wr, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR);
		return;
	}
	st = pair_prep(ctrl, cmp, wr, ns, &len);
	r = st ? NULL : nvemu_resv_get(ns);
	c = r ? calloc(1, sizeof(*c) + len) : NULL;
	if (!st && !c)
		st = SC_NOMEM;
	if (st) {
		fail_pair(cmp, wr, st);
		return;
	}
	c->wr = wr;
	c->ns = ns;
	c->off = slba(&cmp->cmd) << ns->lba_shift;
	c->len = len;
	cmp->cmd_priv = c;
	if (r->fused_busy) {
		/* Another pair runs: this one waits its turn with the other I/O. */
		STAILQ_INSERT_TAIL(&r->waiting, cmp, queue_link);
		return;
	}
	pair_start(ns, cmp);
}

void nvemu_fused_submit(struct nvemu_ctrl *ctrl, struct nvemu_req *req)
{
	uint8_t fuse = req->cmd.flags & 3;
	struct nvemu_req **slot, *first;

	if (!req->sqid || !ctrl->p.compare_write || fuse == 3) {
		nvemu_req_complete(req, SC_INVALID_FIELD);
		return;
	}
	slot = first_slot(ctrl, req->sqid);
	if (!slot) {
		nvemu_req_complete(req, SC_NOMEM);
		return;
	}
	first = *slot;
	if (fuse == FUSE_FIRST) {
		/* A first half with no second before it: that one is missing its partner. */
		nvemu_fused_check_missing(ctrl, req->sqid);
		if (req->cmd.opc != nvme_cmd_compare) {
			nvemu_req_complete(req, SC_INVALID_FIELD);
			return;
		}
		*slot = req;
		return;
	}
	if (!first) {
		nvemu_req_complete(req, SC_MISSING);
		return;
	}
	*slot = NULL;
	run_pair(ctrl, first, req);
}
