/* SPDX-License-Identifier: MIT */
/*
 * The in-process host: a "loop" transport whose queues live in the
 * engine's bookkeeping only. It drives the controller through the same
 * nvemu_ctrl_submit() path as TCP or PCIe.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "engine/nvemu-internal.h"

struct nvemu_host {
	struct nvemu_ctrl *ctrl;
};

static const struct nvemu_transport_ops loop_ops = {
	.name = "loop",
	.fabrics = false,
};

int nvemu_host_create(struct nvemu_ctrl *ctrl, struct nvemu_host **out, struct nvemu_error *err)
{
	struct nvemu_host *h = calloc(1, sizeof(*h));
	int ret;

	if (!h)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	ret = nvemu_ctrl_bind_transport(ctrl, &loop_ops, h, err);
	if (ret) {
		free(h);
		return ret;
	}
	h->ctrl = ctrl;
	*out = h;
	return 0;
}

void nvemu_host_destroy(struct nvemu_host *h)
{
	if (!h)
		return;
	if (nvemu_ctrl_enabled(h->ctrl))
		nvemu_ctrl_set_cc(h->ctrl, 0);
	nvemu_ctrl_bind_transport(h->ctrl, NULL, NULL, NULL);
	free(h);
}

/* Wait for backend completions: poll their fds briefly when none are ready. */
static int wait_backends(struct nvemu_subsys *s)
{
	struct pollfd fds[64];
	nfds_t n = 0;
	int r = nvemu_subsys_poll(s);

	if (r)
		return r;
	for (unsigned i = 0; i < s->nr_ns && n < 64; i++) {
		int fd = nvemu_bdev_get_fd(s->ns[i]->bdev);

		if (fd >= 0)
			fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
	}
	if (n)
		poll(fds, n, 10);
	return nvemu_subsys_poll(s);
}

int nvemu_host_poll(struct nvemu_host *h)
{
	return nvemu_subsys_poll(h->ctrl->subsys);
}

int nvemu_host_enable(struct nvemu_host *h)
{
	struct nvemu_ctrl *ctrl = h->ctrl;

	nvemu_ctrl_set_aqa(ctrl, 31 | 31u << 16);
	nvemu_ctrl_set_cc(ctrl, 1u << NVME_CC_EN_SHIFT | 6u << NVME_CC_IOSQES_SHIFT |
					4u << NVME_CC_IOCQES_SHIFT);
	if (!(nvemu_ctrl_get_csts(ctrl) & (1u << NVME_CSTS_RDY_SHIFT)))
		return -EIO;
	return 0;
}

int nvemu_host_shutdown(struct nvemu_host *h)
{
	struct nvemu_ctrl *ctrl = h->ctrl;
	uint64_t deadline = nvemu_now_ns() + 10ull * 1000000000ull;

	nvemu_ctrl_set_cc(ctrl, ctrl->cc | (uint32_t)NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT);
	while (NVME_CSTS_SHST(nvemu_ctrl_get_csts(ctrl)) != NVME_CSTS_SHST_CMPLT) {
		if (nvemu_now_ns() > deadline)
			return -ETIMEDOUT;
		wait_backends(ctrl->subsys);
	}
	nvemu_ctrl_set_cc(ctrl, 0);
	return 0;
}

void nvemu_host_submit(struct nvemu_host *h, uint16_t sqid, struct nvemu_req *req)
{
	req->sqid = sqid;
	nvemu_ctrl_submit(h->ctrl, req);
}

struct sync_ctx {
	bool done;
};

static void sync_done(struct nvemu_req *req)
{
	((struct sync_ctx *)req->transport_priv)->done = true;
}

uint16_t nvemu_host_exec(struct nvemu_host *h, uint16_t sqid, const struct nvemu_sqe *cmd,
			 void *buf, uint32_t len, struct nvemu_cqe *cqe)
{
	struct sync_ctx ctx = {false};
	struct nvemu_req req = {
		.cmd = *cmd,
		.buf = buf,
		.buf_len = len,
		.done = sync_done,
		.transport_priv = &ctx,
	};

	nvemu_host_submit(h, sqid, &req);
	while (!ctx.done)
		wait_backends(h->ctrl->subsys);
	if (cqe)
		*cqe = req.cqe;
	return req.cqe.status;
}
