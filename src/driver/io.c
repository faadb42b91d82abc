// SPDX-License-Identifier: MIT
/*
 * The I/O path: read, write, flush, write zeroes and deallocate built into
 * SQEs, any command through nvemu_drv_submit, completion reaping.
 */
#include <errno.h>
#include <string.h>

#include "driver/driver-internal.h"

unsigned nvemu_drv_ctrl_nr_qpairs(const struct nvemu_drv_ctrl *ctrl)
{
	return ctrl->nr_qps;
}

struct nvemu_drv_qpair *nvemu_drv_ctrl_qpair(struct nvemu_drv_ctrl *ctrl, unsigned idx)
{
	return idx < ctrl->nr_qps ? ctrl->qps[idx] : NULL;
}

unsigned nvemu_drv_qpair_depth(const struct nvemu_drv_qpair *qp)
{
	return qp->depth;
}

unsigned nvemu_drv_qpair_inflight(const struct nvemu_drv_qpair *qp)
{
	return qp->inflight;
}

/* Why a command cannot be submitted now (0: it can). */
static int ctrl_usable(const struct nvemu_drv_ctrl *ctrl, const struct nvemu_drv_qpair *qp)
{
	if (ctrl->state == NVEMU_DRV_STATE_FAILED)
		return -ENODEV;
	if (ctrl->state != NVEMU_DRV_STATE_ENABLED || !qp->connected || ctrl->reset_pending)
		return -ENOTCONN;
	return 0;
}

static int build_io(const struct nvemu_drv_ctrl *ctrl, struct drv_req *req, uint32_t nsid,
		    enum nvemu_drv_io_op op, uint64_t slba, uint32_t nlb, void *buf)
{
	const struct drv_ns *ns = drv_ns_find(ctrl, nsid);
	uint64_t bytes;

	if (!ns)
		return -EINVAL;
	memset(&req->cmd, 0, sizeof(req->cmd));
	req->cmd.nsid = nsid;
	if (op == NVEMU_DRV_IO_FLUSH) {
		req->cmd.opc = nvme_cmd_flush;
		return 0;
	}
	if (!nlb || slba >= ns->info.nsze || nlb > ns->info.nsze - slba)
		return -EINVAL;
	if (op != NVEMU_DRV_IO_WRITE && ns->info.read_only && op != NVEMU_DRV_IO_READ)
		return -EROFS;
	bytes = (uint64_t)nlb * ns->info.blk_size;
	switch (op) {
	case NVEMU_DRV_IO_READ:
	case NVEMU_DRV_IO_WRITE:
		if (!buf || bytes > ctrl->max_xfer)
			return -EINVAL;
		if (op == NVEMU_DRV_IO_WRITE && ns->info.read_only)
			return -EROFS;
		req->cmd.opc = op == NVEMU_DRV_IO_READ ? nvme_cmd_read : nvme_cmd_write;
		req->buf = buf;
		req->len = (uint32_t)bytes;
		break;
	case NVEMU_DRV_IO_WRITE_ZEROES:
		if (nlb > 65536)
			return -EINVAL;
		req->cmd.opc = nvme_cmd_write_zeroes;
		break;
	case NVEMU_DRV_IO_DEALLOCATE: {
		uint32_t ctx = 0, len = nlb;

		req->cmd.opc = nvme_cmd_dsm;
		req->cmd.cdw11 = NVME_DSMGMT_AD;
		memcpy(req->dsm, &ctx, 4);
		memcpy(req->dsm + 4, &len, 4);
		memcpy(req->dsm + 8, &slba, 8);
		req->buf = req->dsm;
		req->len = sizeof(req->dsm);
		return 0;
	}
	default:
		return -EINVAL;
	}
	req->cmd.cdw10 = (uint32_t)slba;
	req->cmd.cdw11 = (uint32_t)(slba >> 32);
	req->cmd.cdw12 = nlb - 1;
	return 0;
}

int nvemu_drv_io(struct nvemu_drv_qpair *qp, uint32_t nsid, enum nvemu_drv_io_op op, uint64_t slba,
		 uint32_t nlb, void *buf, nvemu_drv_cb cb, void *arg)
{
	struct nvemu_drv_ctrl *ctrl = qp->ctrl;
	struct drv_req *req;
	int rc = ctrl_usable(ctrl, qp);

	if (rc)
		return rc;
	if (op != NVEMU_DRV_IO_READ && op != NVEMU_DRV_IO_WRITE && op != NVEMU_DRV_IO_DEALLOCATE &&
	    op != NVEMU_DRV_IO_FLUSH && op != NVEMU_DRV_IO_WRITE_ZEROES)
		return -EINVAL;
	if ((op == NVEMU_DRV_IO_READ || op == NVEMU_DRV_IO_WRITE) && nlb > 65536)
		return -EINVAL;
	req = drv_req_get(qp);
	if (!req)
		return -EAGAIN;
	rc = build_io(ctrl, req, nsid, op, slba, nlb, buf);
	if (rc) {
		drv_req_put(req);
		return rc;
	}
	req->cb = cb;
	req->arg = arg;
	req->timeout_ms = ctrl->opts.io_timeout_ms;
	return drv_req_send(req);
}

int nvemu_drv_submit(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp,
		     const struct nvemu_sqe *cmd, void *buf, uint32_t len, nvemu_drv_cb cb,
		     void *arg)
{
	struct drv_req *req;
	int rc;

	if (!qp)
		qp = ctrl->admin;
	rc = ctrl_usable(ctrl, qp);
	if (rc)
		return rc;
	if (len > ctrl->max_xfer || (len && !buf))
		return -EINVAL;
	/* Fabrics commands belong to the driver (Connect, properties). */
	if (cmd->opc == nvme_admin_fabrics || nvemu_opc_dir(cmd->opc) == NVEMU_XFER_BIDI)
		return -EINVAL;
	req = drv_req_get(qp);
	if (!req)
		return -EAGAIN;
	req->cmd = *cmd;
	req->cmd.flags &= 0x03; /* the transport chooses PRP or SGL */
	req->buf = buf;
	req->len = len;
	req->cb = cb;
	req->arg = arg;
	req->timeout_ms = qp->qid ? ctrl->opts.io_timeout_ms : ctrl->opts.admin_timeout_ms;
	return drv_req_send(req);
}

int nvemu_drv_qpair_process(struct nvemu_drv_qpair *qp, unsigned max)
{
	struct nvemu_drv_ctrl *ctrl = qp->ctrl;
	int rc;

	if (ctrl->state != NVEMU_DRV_STATE_ENABLED || !qp->connected)
		return 0;
	qp->in_process++;
	rc = ctrl->ops->process(qp, max);
	qp->in_process--;
	if (rc < 0) {
		/* Not from inside a callback of this queue: the reset frees its transport state. */
		if (qp->in_process || ctrl->in_tick) {
			drv_qpair_unwatch(qp); /* a dead socket stays readable */
			ctrl->reset_pending = true;
		} else
			drv_ctrl_lost(ctrl, "I/O queue lost");
		return rc;
	}
	drv_qpair_update_events(qp);
	return rc;
}
