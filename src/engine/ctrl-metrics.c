// SPDX-License-Identifier: MIT
/*
 * Command metrics, kept at completion: one class per command, its data,
 * its status and the time from submission to completion.
 */
#include <string.h>

#include "nvemu-internal.h"

static const uint32_t lat_bucket_us[NVEMU_LAT_BUCKETS] = {
	5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 500000, 1000000,
};

uint32_t nvemu_lat_bucket_us(unsigned i)
{
	return i < NVEMU_LAT_BUCKETS ? lat_bucket_us[i] : UINT32_MAX;
}

const char *nvemu_cmd_class_name(enum nvemu_cmd_class c)
{
	static const char *const names[NVEMU_CLASS_NR] = {
		[NVEMU_CLASS_READ] = "read",	 [NVEMU_CLASS_WRITE] = "write",
		[NVEMU_CLASS_FLUSH] = "flush",	 [NVEMU_CLASS_OTHER_IO] = "other_io",
		[NVEMU_CLASS_ADMIN] = "admin",
	};

	return (unsigned)c < NVEMU_CLASS_NR ? names[c] : "unknown";
}

static enum nvemu_cmd_class classify(const struct nvemu_req *req)
{
	if (req->sqid == 0)
		return NVEMU_CLASS_ADMIN;
	switch (req->cmd.opc) {
	case nvme_cmd_read:
		return NVEMU_CLASS_READ;
	case nvme_cmd_write:
		return NVEMU_CLASS_WRITE;
	case nvme_cmd_flush:
		return NVEMU_CLASS_FLUSH;
	default:
		return NVEMU_CLASS_OTHER_IO;
	}
}

static void count_status(struct nvemu_ctrl_metrics *m, uint16_t status)
{
	uint16_t key = status & 0x7ff; /* SCT and SC, without More/DNR */

	for (unsigned i = 0; i < NVEMU_METRIC_STATUSES; i++) {
		if (m->err[i].count && m->err[i].status == key) {
			m->err[i].count++;
			return;
		}
		if (!m->err[i].count) {
			m->err[i].status = key;
			m->err[i].count = 1;
			return;
		}
	}
	m->err_other++;
}

void nvemu_ctrl_metrics_account(struct nvemu_ctrl *ctrl, const struct nvemu_req *req,
				uint16_t status)
{
	struct nvemu_class_metrics *c = &ctrl->metrics.cls[classify(req)];
	unsigned b = 0;

	c->cmds++;
	c->bytes += req->xfer_len;
	if (status & 0x7ff) {
		c->errors++;
		count_status(&ctrl->metrics, status);
	}
	if (req->start_ns) {
		uint64_t ns = nvemu_now_ns() - req->start_ns;

		c->lat_sum_ns += ns;
		while (b < NVEMU_LAT_BUCKETS && ns > (uint64_t)lat_bucket_us[b] * 1000)
			b++;
		c->lat_hist[b]++;
	}
}

void nvemu_ctrl_get_metrics(const struct nvemu_ctrl *ctrl, struct nvemu_ctrl_metrics *out)
{
	memcpy(out, &ctrl->metrics, sizeof(*out));
}
