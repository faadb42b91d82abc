// SPDX-License-Identifier: MIT
/* Placeholders until the driver core lands: every entry point fails. */
#include <errno.h>
#include <stdio.h>
#include "driver/driver-internal.h"

int nvemu_drv_trtype_parse(const char *name, enum nvemu_drv_trtype *out)
{
	return -ENOSYS;
}

const char *nvemu_drv_trtype_name(enum nvemu_drv_trtype t)
{
	return NULL;
}

bool nvemu_drv_trtype_supported(enum nvemu_drv_trtype t)
{
	return false;
}

int nvemu_drv_trid_parse(const char *str, struct nvemu_drv_trid *trid, struct nvemu_error *err)
{
	return -ENOSYS;
}

void nvemu_drv_opts_init(struct nvemu_drv_opts *o)
{
}

int nvemu_drv_ctrl_connect(const struct nvemu_drv_trid *trid, const struct nvemu_drv_opts *opts, struct nvemu_drv_ctrl **out, struct nvemu_error *err)
{
	return -ENOSYS;
}

void nvemu_drv_ctrl_destroy(struct nvemu_drv_ctrl *ctrl)
{
}

void nvemu_drv_ctrl_tick(struct nvemu_drv_ctrl *ctrl)
{
}

int nvemu_drv_ctrl_process_admin(struct nvemu_drv_ctrl *ctrl)
{
	return -ENOSYS;
}

int nvemu_drv_ctrl_reset(struct nvemu_drv_ctrl *ctrl)
{
	return -ENOSYS;
}

enum nvemu_drv_state nvemu_drv_ctrl_state(const struct nvemu_drv_ctrl *ctrl)
{
	return NVEMU_DRV_STATE_FAILED;
}

const char *nvemu_drv_state_name(enum nvemu_drv_state s)
{
	return NULL;
}

const struct nvemu_drv_trid *nvemu_drv_ctrl_trid(const struct nvemu_drv_ctrl *ctrl)
{
	return NULL;
}

const struct nvme_id_ctrl *nvemu_drv_ctrl_id(const struct nvemu_drv_ctrl *ctrl)
{
	return NULL;
}

const char *nvemu_drv_ctrl_serial(const struct nvemu_drv_ctrl *ctrl)
{
	return NULL;
}

uint16_t nvemu_drv_ctrl_cntlid(const struct nvemu_drv_ctrl *ctrl)
{
	return 0;
}

uint32_t nvemu_drv_ctrl_max_xfer(const struct nvemu_drv_ctrl *ctrl)
{
	return 0;
}

uint64_t nvemu_drv_ctrl_resets(const struct nvemu_drv_ctrl *ctrl)
{
	return 0;
}

uint32_t nvemu_drv_ns_next(const struct nvemu_drv_ctrl *ctrl, uint32_t nsid)
{
	return 0;
}

int nvemu_drv_ns_get(const struct nvemu_drv_ctrl *ctrl, uint32_t nsid, struct nvemu_drv_ns_info *out)
{
	return -ENOSYS;
}

int nvemu_drv_ctrl_rescan(struct nvemu_drv_ctrl *ctrl)
{
	return -ENOSYS;
}

int nvemu_drv_find_sn_ns(struct nvemu_drv_ctrl *const *ctrls, unsigned n, const char *name, struct nvemu_drv_ctrl **ctrl, uint32_t *nsid)
{
	return -ENOSYS;
}

unsigned nvemu_drv_ctrl_nr_qpairs(const struct nvemu_drv_ctrl *ctrl)
{
	return 0;
}

struct nvemu_drv_qpair *nvemu_drv_ctrl_qpair(struct nvemu_drv_ctrl *ctrl, unsigned idx)
{
	return NULL;
}

unsigned nvemu_drv_qpair_depth(const struct nvemu_drv_qpair *qp)
{
	return 0;
}

unsigned nvemu_drv_qpair_inflight(const struct nvemu_drv_qpair *qp)
{
	return 0;
}

int nvemu_drv_io(struct nvemu_drv_qpair *qp, uint32_t nsid, enum nvemu_drv_io_op op, uint64_t slba, uint32_t nlb, void *buf, nvemu_drv_cb cb, void *arg)
{
	return -ENOSYS;
}

int nvemu_drv_submit(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp, const struct nvemu_sqe *cmd, void *buf, uint32_t len, nvemu_drv_cb cb, void *arg)
{
	return -ENOSYS;
}

int nvemu_drv_qpair_process(struct nvemu_drv_qpair *qp, unsigned max)
{
	return -ENOSYS;
}

uint64_t drv_now_ns(void)
{
	return 0;
}

int drv_complete(struct nvemu_drv_qpair *qp, const struct nvemu_cqe *cqe)
{
	return -ENOSYS;
}

struct drv_req *drv_req_lookup(struct nvemu_drv_qpair *qp, uint16_t cid)
{
	return NULL;
}

void drv_qpair_lost(struct nvemu_drv_qpair *qp, const char *why)
{
}

int drv_exec_sync(struct nvemu_drv_qpair *qp, const struct nvemu_sqe *cmd, void *buf, uint32_t len, unsigned timeout_ms, struct nvemu_cqe *cqe)
{
	return -ENOSYS;
}

struct nvemu_drv_qpair *drv_qpair_alloc(struct nvemu_drv_ctrl *ctrl, uint16_t qid, uint16_t size)
{
	return NULL;
}

void drv_qpair_free(struct nvemu_drv_qpair *qp)
{
}

void drv_log(struct nvemu_drv_ctrl *ctrl, int level, const char *fmt, ...)
{
}

