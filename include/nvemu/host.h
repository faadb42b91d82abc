/* SPDX-License-Identifier: MIT */
/*
 * The in-process host ("loop" transport): submits commands through the
 * same request path as every other transport and waits for completion.
 * Tests, fuzzers, benchmarks and the daemon's own checks use it.
 */
#ifndef NVEMU_HOST_H
#define NVEMU_HOST_H

#include <nvemu/request.h>

struct nvemu_host;

/* Binds the loop transport to ctrl. */
int nvemu_host_create(struct nvemu_ctrl *ctrl, struct nvemu_host **out, struct nvemu_error *err);
void nvemu_host_destroy(struct nvemu_host *host);

/*
 * Enable the controller the way a driver does: CC with IOSQES=6, IOCQES=4,
 * EN=1, then wait for CSTS.RDY. Returns 0 or -EIO (CSTS.CFS).
 */
int nvemu_host_enable(struct nvemu_host *host);
int nvemu_host_shutdown(struct nvemu_host *host);

/*
 * Run one command to completion. buf/len is the data buffer (either
 * direction). Returns the completion status (0 = success); *cqe gets the
 * whole completion when non-NULL.
 */
uint16_t nvemu_host_exec(struct nvemu_host *host, uint16_t sqid, const struct nvemu_sqe *cmd,
			 void *buf, uint32_t len, struct nvemu_cqe *cqe);

/*
 * Asynchronous form: submit and return; req->done runs on completion
 * (call nvemu_host_poll to reap backend completions).
 */
void nvemu_host_submit(struct nvemu_host *host, uint16_t sqid, struct nvemu_req *req);
int nvemu_host_poll(struct nvemu_host *host);

#endif
