// SPDX-License-Identifier: MIT
/*
 * Controllers served to VMs over vfio-user: one nvemu_vfu_server per
 * controller, its fd on the daemon's loop. The server keeps a private epoll
 * set (listening socket, client, coalescing timer), so one loop source and
 * a slow tick for deferred work are all it needs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <nvemu/mi.h>
#include <nvemu/pcie.h>
#include <nvemu/vfio-user.h>

#include "daemon.h"
#include "event-loop.h"
#include "rpc.h"

/* Stalled queues (CQ full, request slots taken by a slow backend) are retried this often. */
#define VFU_TICK_MS 10

struct nvemud_vfu {
	struct nvemud *d;
	struct nvemu_vfu_server *srv;
	struct loop_src *src;
	struct loop_src *tick;
	struct loop_src *poller; /* doorbells in shared memory */
	char name[NVEMUD_CTRL_NAME_MAX];
};

static void vfu_process(struct nvemud_vfu *v)
{
	int r = nvemu_vfu_server_process(v->srv);

	if (r < 0) {
		/* The guest's protocol errors: rate limited per controller. */
		const struct nvemud_log_field f[] = { { NVEMUD_F_TRANSPORT, "vfio-user" },
						      { NVEMUD_F_CTRL, v->name } };

		nvemud_log_peer(v->d, NVEMUD_LOG_WARN, "vfio-user error", v->name, f, 2,
				"%s: vfio-user: %s", v->name, strerror(-r));
	}
	/* CC.EN or a connection changed: polling may start or stop. */
	if (v->poller)
		loop_poller_set_needs_polling(v->poller,
					      nvemu_vfu_server_needs_polling(v->srv));
}

static void vfu_fd_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	vfu_process(arg);
}

static void vfu_tick_cb(struct loop_src *src, void *arg)
{
	struct nvemud_vfu *v = arg;

	if (nvemu_vfu_server_connected(v->srv))
		vfu_process(v);
}

/*
 * Mapped and shadow doorbells change without a message: look at them every
 * loop iteration while the controller is ready, and keep the loop's sleeps
 * short (--idle-poll-ms) only for that time.
 */
static int vfu_poll_cb(void *arg)
{
	struct nvemud_vfu *v = arg;
	int n = nvemu_vfu_server_poll(v->srv);

	loop_poller_set_needs_polling(v->poller, nvemu_vfu_server_needs_polling(v->srv));
	return n > 0 ? n : 0;
}

struct nvemud_ctrl *nvemud_vfu_find(struct nvemud *d, const char *path)
{
	for (unsigned i = 0; i < d->nr_ctrls; i++)
		if (d->ctrls[i].vfu && !strcmp(nvemu_vfu_server_path(d->ctrls[i].vfu->srv), path))
			return &d->ctrls[i];
	return NULL;
}

int nvemud_vfu_start(struct nvemud *d, struct nvemud_ctrl *c, const char *path,
		     struct nvemu_error *err)
{
	struct nvemu_ctrl *ctrl = nvemud_ctrl_get(c);
	struct nvemud_ctrl *other;
	struct nvemu_vfu_params vp;
	struct nvemud_vfu *v;
	int ret;

	if (!ctrl)
		return nvemu_error_set(err, -ENOENT, "controller %s vanished", c->name);
	if (c->vfu)
		return nvemu_error_set(err, -EBUSY, "controller %s is already served on %s",
				       c->name, nvemu_vfu_server_path(c->vfu->srv));
	if (!path || path[0] != '/')
		return nvemu_error_set(err, -EINVAL, "socket: must be an absolute path");
	other = nvemud_vfu_find(d, path);
	if (other)
		return nvemu_error_set(err, -EADDRINUSE, "socket: %s already serves controller %s",
				       path, other->name);
	v = calloc(1, sizeof(*v));
	if (!v)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	v->d = d;
	snprintf(v->name, sizeof(v->name), "%s", c->name);
	nvemu_vfu_params_init(&vp);
	/*
	 * Mapped doorbells wake nobody: the loop finds them only as fast as it
	 * polls. Without --poll-us it sleeps up to --idle-poll-ms between looks,
	 * far slower than a doorbell message, so they stay messages then.
	 */
	vp.map_doorbells = d->loop && loop_busy_poll_us(d->loop) > 0;
	ret = nvemu_vfu_server_create(path, ctrl, &vp, &v->srv, err);
	if (ret) {
		/* Say which parameter, and that a live socket belongs to someone else. */
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		if (ret == -EADDRINUSE)
			nvemu_error_set(err, ret, "socket: %s (a live vfio-user socket: pick another path or stop that server)",
					msg);
		else
			nvemu_error_set(err, ret, "socket: %s", msg);
		free(v);
		return ret;
	}
	if (d->loop) {
		v->src = loop_add_fd(d->loop, nvemu_vfu_server_fd(v->srv), EPOLLIN, vfu_fd_cb, v);
		v->tick = loop_add_timer(d->loop, VFU_TICK_MS, true, vfu_tick_cb, v);
		v->poller = loop_add_poller(d->loop, vfu_poll_cb, v);
		if (!v->src || !v->tick || !v->poller) {
			loop_del(v->src);
			loop_del(v->tick);
			loop_del(v->poller);
			nvemu_vfu_server_destroy(v->srv);
			free(v);
			return nvemu_error_set(err, -ENOMEM, "cannot watch the vfio-user socket");
		}
	}
	c->vfu = v;
	nvemud_log(d, NVEMUD_LOG_INFO, "%s: vfio-user on %s", c->name, path);
	return 0;
}

void nvemud_vfu_stop(struct nvemud *d, struct nvemud_ctrl *c)
{
	struct nvemud_vfu *v = c->vfu;

	if (!v)
		return;
	c->vfu = NULL;
	loop_del(v->src);
	loop_del(v->tick);
	loop_del(v->poller);
	nvemu_vfu_server_destroy(v->srv);
	free(v);
}

void nvemud_vfu_stop_subsys(struct nvemud *d, struct nvemu_subsys *s)
{
	for (unsigned i = 0; i < d->nr_ctrls; i++)
		if (d->ctrls[i].subsys == s)
			nvemud_vfu_stop(d, &d->ctrls[i]);
}

const char *nvemud_vfu_path(const struct nvemud_ctrl *c)
{
	return c->vfu ? nvemu_vfu_server_path(c->vfu->srv) : NULL;
}

bool nvemud_vfu_connected(const struct nvemud_ctrl *c)
{
	return c->vfu && nvemu_vfu_server_connected(c->vfu->srv);
}

/*
 * NVMe-MI's PCIe Command Set reaches the subsystem's first controller
 * served over vfio-user: its configuration space as the guest sees it.
 * Looked up at every access, so a controller destroyed meanwhile is gone.
 */
static struct nvemu_pcie_ctrl *mi_pcie_fn(struct nvemud *d, struct nvemu_subsys *s)
{
	for (unsigned i = 0; i < d->nr_ctrls; i++)
		if (d->ctrls[i].subsys == s && d->ctrls[i].vfu && !d->ctrls[i].busy)
			return nvemu_vfu_server_pcie(d->ctrls[i].vfu->srv);
	return NULL;
}

static int mi_cfg_read(void *arg, struct nvemu_subsys *s, uint32_t off, unsigned size,
		       uint32_t *val)
{
	struct nvemu_pcie_ctrl *pc = mi_pcie_fn(arg, s);

	if (!pc)
		return -1;
	*val = nvemu_pcie_cfg_read(pc, off, size);
	return 0;
}

static int mi_cfg_write(void *arg, struct nvemu_subsys *s, uint32_t off, unsigned size,
			uint32_t val)
{
	struct nvemu_pcie_ctrl *pc = mi_pcie_fn(arg, s);

	if (!pc)
		return -1;
	nvemu_pcie_cfg_write(pc, off, size, val);
	return 0;
}

const struct nvemu_mi_pcie_ops nvemud_mi_pcie_ops = {
	.cfg_read = mi_cfg_read,
	.cfg_write = mi_cfg_write,
	.cfg_size = NVEMU_PCIE_CFG_SIZE,
};

json_t *nvemud_vfu_debug(struct nvemud_ctrl *c, struct nvemu_ctrl *ctrl, json_t *sqs,
			 json_t *cqs)
{
	struct nvemu_pcie_ctrl *pc = nvemu_vfu_server_pcie(c->vfu->srv);
	struct nvemu_pcie_queue_debug q;
	struct nvemu_vfu_stats st;
	struct nvemu_pcie_db_stats dbs;
	uint64_t doorbell_errors = 0;
	json_t *res;

	for (uint16_t qid = 0; nvemu_pcie_ctrl_debug(pc, qid, &q) == 0; qid++) {
		doorbell_errors = q.doorbell_errors;
		if (q.sq_valid)
			json_array_append_new(
				sqs, json_pack("{s:i, s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:I}",
					       "qid", qid, "depth", q.sq_size, "cqid", q.sq_cqid,
					       "state", "active", "driver_sq_tail",
					       (json_int_t)q.driver_sq_tail, "device_sq_head",
					       (json_int_t)q.device_sq_head, "inflight",
					       (json_int_t)q.sq_inflight, "requests",
					       (json_int_t)nvemud_queue_stat(ctrl, NVEMU_STATE_SQ, qid,
									     "requests"),
					       "completions",
					       (json_int_t)nvemud_queue_stat(ctrl, NVEMU_STATE_SQ, qid,
									     "completions")));
		if (q.cq_valid)
			json_array_append_new(
				cqs, json_pack("{s:i, s:i, s:s, s:I, s:I, s:b, s:i, s:b, s:I, s:I, s:I}",
					       "qid", qid, "depth", q.cq_size, "state", "active",
					       "driver_cq_head", (json_int_t)q.driver_cq_head,
					       "device_cq_tail", (json_int_t)q.device_cq_tail,
					       "phase", q.cq_phase, "iv", q.cq_iv, "ien", q.cq_ien,
					       "backlog", (json_int_t)q.cq_backlog, "interrupts",
					       (json_int_t)q.interrupts, "completions",
					       (json_int_t)nvemud_queue_stat(ctrl, NVEMU_STATE_CQ, qid,
									     "completions")));
	}
	nvemu_vfu_server_stats(c->vfu->srv, &st);
	nvemu_pcie_db_stats(pc, &dbs);
	res = json_pack("{s:s, s:b, s:b, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
			 "socket", nvemu_vfu_server_path(c->vfu->srv), "connected",
			 nvemu_vfu_server_connected(c->vfu->srv), "msix_enabled",
			 nvemu_pcie_msix_enabled(pc), "doorbell_errors",
			 (json_int_t)doorbell_errors, "vfio_user", "connects",
			 (json_int_t)st.connects, "disconnects", (json_int_t)st.disconnects,
			 "messages", (json_int_t)st.messages, "region_reads",
			 (json_int_t)st.region_reads, "region_writes", (json_int_t)st.region_writes,
			 "dma_maps", (json_int_t)st.dma_maps, "dma_unmaps",
			 (json_int_t)st.dma_unmaps, "dma_msgs", (json_int_t)st.dma_msgs, "irqs",
			 (json_int_t)st.irqs, "errors", (json_int_t)st.errors);
	if (res)
		json_object_set_new(
			res, "doorbells",
			json_pack("{s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "mapped",
				  dbs.mapped, "shadow", dbs.shadow, "shadow_addr",
				  (json_int_t)dbs.shadow_addr, "eventidx_addr",
				  (json_int_t)dbs.eventidx_addr, "msg_writes",
				  (json_int_t)dbs.msg_writes, "mem_writes",
				  (json_int_t)dbs.mem_writes, "shadow_updates",
				  (json_int_t)dbs.shadow_updates, "polls", (json_int_t)dbs.polls,
				  "errors", (json_int_t)doorbell_errors));
	return res;
}

/* ---- live update (live-update.c) */

void nvemud_vfu_pause(struct nvemud_ctrl *c, bool paused)
{
	if (c->vfu)
		nvemu_vfu_server_pause(c->vfu->srv, paused);
}

int nvemud_vfu_save(struct nvemud_ctrl *c, uint8_t **blob, size_t *len, int **fds,
		    unsigned *nfds, struct nvemu_error *err)
{
	return nvemu_vfu_server_save(c->vfu->srv, blob, len, fds, nfds, err);
}

void nvemud_vfu_release(struct nvemud *d, struct nvemud_ctrl *c)
{
	struct nvemud_vfu *v = c->vfu;

	if (!v)
		return;
	c->vfu = NULL;
	loop_del(v->src);
	loop_del(v->tick);
	loop_del(v->poller);
	nvemu_vfu_server_release(v->srv);
	free(v);
}

int nvemud_vfu_restore(struct nvemud *d, struct nvemud_ctrl *c, const char *path,
		       const uint8_t *blob, size_t len, const int *fds, unsigned nfds, json_t *snap,
		       struct rpc_err *e)
{
	struct nvemu_ctrl *ctrl = nvemud_ctrl_get(c);
	struct nvemu_error err = { 0 };
	struct nvemu_vfu_params vp;
	struct nvemud_vfu *v;

	if (!ctrl || c->vfu || !d->loop)
		return rpc_err_set(e, RPC_ERR_STATE, "%s: cannot take over its vfio-user server",
				   c->name);
	v = calloc(1, sizeof(*v));
	if (!v)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	v->d = d;
	snprintf(v->name, sizeof(v->name), "%s", c->name);
	nvemu_vfu_params_init(&vp);
	vp.map_doorbells = loop_busy_poll_us(d->loop) > 0;
	if (nvemu_vfu_server_restore(path, ctrl, &vp, blob, len, fds, nfds, &v->srv, &err)) {
		free(v);
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: %s", c->name, err.msg);
	}
	/* The engine's registers and queues, then the function's queues over them. */
	if (nvemud_ctrl_restore(d, ctrl, snap, e) ||
	    nvemu_vfu_server_restore_queues(v->srv, &err)) {
		if (err.msg[0])
			rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: %s", c->name, err.msg);
		nvemu_vfu_server_release(v->srv);
		free(v);
		return -1;
	}
	v->src = loop_add_fd(d->loop, nvemu_vfu_server_fd(v->srv), EPOLLIN, vfu_fd_cb, v);
	v->tick = loop_add_timer(d->loop, VFU_TICK_MS, true, vfu_tick_cb, v);
	v->poller = loop_add_poller(d->loop, vfu_poll_cb, v);
	c->vfu = v;
	if (!v->src || !v->tick || !v->poller) {
		nvemud_vfu_release(d, c);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "cannot watch the vfio-user socket");
	}
	loop_poller_set_needs_polling(v->poller, nvemu_vfu_server_needs_polling(v->srv));
	nvemud_log(d, NVEMUD_LOG_INFO, "%s: vfio-user on %s taken over (guest %s)", c->name, path,
		   nvemu_vfu_server_connected(v->srv) ? "connected" : "not connected");
	return 0;
}
