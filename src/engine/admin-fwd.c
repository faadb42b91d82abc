// SPDX-License-Identifier: MIT
/*
 * Admin command forwarding (SNAP's admin_identify_cmd_fwd /
 * admin_set_features_cmd_fwd): an owner outside the engine answers
 * selected Identify and Set Features commands. The engine keeps the
 * command in flight meanwhile, so teardown, suspend and Abort see it; the
 * owner ends it with its answer, or lets the engine answer (fallback).
 */
#include <errno.h>
#include <stdlib.h>

#include "nvemu-internal.h"

#define ID_LEN 4096

/* cmd_priv of a forwarded Identify: the engine's own answer, for the fallback. */
struct fwd_local {
	_Alignas(8) uint8_t page[ID_LEN]; /* built as struct nvme_id_ctrl and the like */
	uint16_t status;
};

void nvemu_ctrl_set_admin_fwd(struct nvemu_ctrl *ctrl, const struct nvemu_admin_fwd_ops *ops,
			      void *priv)
{
	ctrl->fwd_ops = ops;
	ctrl->fwd_priv = ops ? priv : NULL;
}

bool nvemu_admin_fwd(struct nvemu_ctrl *ctrl, struct nvemu_req *req)
{
	const struct nvemu_admin_fwd_ops *ops = ctrl->fwd_ops;
	struct fwd_local *l = NULL;

	if (!ops || req->sqid)
		return false;
	if (req->cmd.opc != nvme_admin_identify && req->cmd.opc != nvme_admin_set_features)
		return false;
	if (!ops->wants(ctrl->fwd_priv, &req->cmd))
		return false;
	if (req->cmd.opc == nvme_admin_identify) {
		/* A short buffer is the engine's to refuse; the owner only sees answerable ones. */
		if (nvemu_req_check_len(req, ID_LEN))
			return false;
		l = calloc(1, sizeof(*l));
		if (!l)
			return false;
		l->status = nvemu_identify_build(ctrl, &req->cmd, l->page);
		req->cmd_priv = l;
	}
	req->fwd = true;
	if (ops->forward(ctrl->fwd_priv, req, l ? l->page : NULL, l ? l->status : 0))
		return true;
	req->fwd = false;
	if (l) {
		/* Declined: the answer is computed already. */
		nvemu_req_fwd_fallback(req);
		return true;
	}
	return false;
}

void nvemu_req_fwd_complete(struct nvemu_req *req, uint16_t status, uint32_t dw0, uint32_t dw1,
			    const void *data, uint32_t len)
{
	req->fwd = false;
	req->cqe.dw0 = dw0;
	req->cqe.dw1 = dw1;
	if (!status && data && len) {
		if (len > ID_LEN)
			len = ID_LEN;
		status = nvemu_req_to_host(req, data, len);
	}
	nvemu_req_complete(req, status);
}

void nvemu_req_fwd_fallback(struct nvemu_req *req)
{
	struct fwd_local *l = req->cmd_priv;
	const struct nvemu_cmd_desc *d;

	req->fwd = false;
	if (req->cmd.opc == nvme_admin_identify && l) {
		nvemu_req_complete(req, l->status ? l->status : nvemu_req_to_host(req, l->page, ID_LEN));
		return;
	}
	d = nvemu_admin_cmd(req->ctrl, req->cmd.opc);
	if (!d) {
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVEMU_DNR);
		return;
	}
	d->execute(req);
}

void nvemu_req_fwd_abort(struct nvemu_req *req)
{
	req->fwd = false;
	nvemu_req_complete(req, req->abort_status ? req->abort_status :
			   NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ));
}

void nvemu_admin_fwd_cancel(struct nvemu_ctrl *ctrl, struct nvemu_req *req, uint16_t status)
{
	if (!req->fwd || !ctrl->fwd_ops)
		return;
	if (!req->abort_status)
		req->abort_status = status;
	ctrl->fwd_ops->cancel(ctrl->fwd_priv, req);
}
