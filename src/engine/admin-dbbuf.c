// SPDX-License-Identifier: MIT
/*
 * Doorbell Buffer Config (NVMe Base 2.0 5.8): the host gives a Shadow
 * Doorbell buffer (PRP1) and an EventIdx buffer (PRP2), one memory page
 * each, and from then on writes I/O queue doorbells there first, ringing
 * the register only when the EventIdx says the controller wants it. Only
 * memory-based transports have doorbells: the transport maps and polls the
 * buffers (its dbbuf_config op); without the op the opcode is not offered.
 */
#include "nvemu-internal.h"

void nvemu_execute_doorbell_buffer_config(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint64_t dbs = le64toh(req->cmd.dptr1), eis = le64toh(req->cmd.dptr2);
	uint64_t page = 1ull << (12 + NVME_CC_MPS(ctrl->cc));
	uint16_t st = NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;

	/* PRPs only (PSDT 0); both buffers present and memory-page aligned. */
	if (!(req->cmd.flags >> 6) && dbs && eis && !(dbs & (page - 1)) && !(eis & (page - 1)) &&
	    dbs != eis && ctrl->tops && ctrl->tops->dbbuf_config)
		st = ctrl->tops->dbbuf_config(ctrl, dbs, eis);
	nvemu_req_complete(req, st);
}
