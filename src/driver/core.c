// SPDX-License-Identifier: MIT
/*
 * Driver core: queue pairs and their command slots, completion checks,
 * synchronous commands for initialisation, logging.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver/driver-internal.h"

uint64_t drv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void drv_log(struct nvemu_drv_ctrl *ctrl, int level, const char *fmt, ...)
{
	char msg[512];
	int n;
	va_list ap;

	n = snprintf(msg, sizeof(msg),
		     "nvme %s %s: ", ctrl ? nvemu_drv_trtype_name(ctrl->trid.trtype) : "-",
		     ctrl ? ctrl->trid.traddr : "-");
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (ctrl && ctrl->opts.log)
		ctrl->opts.log(ctrl->opts.log_arg, level, msg);
	else if (level <= NVEMU_DRV_LOG_WARN)
		fprintf(stderr, "%s\n", msg);
}

struct nvemu_drv_qpair *drv_qpair_alloc(struct nvemu_drv_ctrl *ctrl, uint16_t qid, uint16_t size)
{
	struct nvemu_drv_qpair *qp;

	if (size < 2)
		return NULL;
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return NULL;
	qp->reqs = calloc(size - 1u, sizeof(*qp->reqs));
	if (!qp->reqs) {
		free(qp);
		return NULL;
	}
	qp->ctrl = ctrl;
	qp->qid = qid;
	qp->size = size;
	qp->depth = size - 1;
	qp->loop_fd = -1;
	SLIST_INIT(&qp->free_reqs);
	for (unsigned i = qp->depth; i-- > 0;) {
		qp->reqs[i].qp = qp;
		qp->reqs[i].cid = (uint16_t)i;
		SLIST_INSERT_HEAD(&qp->free_reqs, &qp->reqs[i], free_link);
	}
	return qp;
}

void drv_qpair_free(struct nvemu_drv_qpair *qp)
{
	if (!qp)
		return;
	free(qp->reqs);
	free(qp);
}

struct drv_req *drv_req_get(struct nvemu_drv_qpair *qp)
{
	struct drv_req *req = SLIST_FIRST(&qp->free_reqs);

	if (!req)
		return NULL;
	SLIST_REMOVE_HEAD(&qp->free_reqs, free_link);
	req->buf = NULL;
	req->len = 0;
	req->xfered = 0;
	req->tr_priv = NULL;
	req->timed_out = false;
	req->abort_sent = false;
	req->timeout_ms = 0;
	return req;
}

void drv_req_put(struct drv_req *req)
{
	SLIST_INSERT_HEAD(&req->qp->free_reqs, req, free_link);
}

int drv_req_send(struct drv_req *req)
{
	struct nvemu_drv_qpair *qp = req->qp;
	int rc;

	req->cmd.cid = req->cid;
	/* Fabrics commands carry the direction in the command type (FCTYPE bits 1:0). */
	req->dir = nvemu_opc_dir(req->cmd.opc == nvme_admin_fabrics ? (uint8_t)req->cmd.nsid
								    : req->cmd.opc);
	if (!req->buf || !req->len)
		req->dir = NVEMU_XFER_NONE;
	req->start_ns = drv_now_ns();
	req->inflight = true;
	qp->inflight++;
	rc = qp->ctrl->ops->submit(qp, req);
	if (rc) {
		req->inflight = false;
		qp->inflight--;
		drv_req_put(req);
		return rc;
	}
	drv_qpair_update_events(qp);
	return 0;
}

struct drv_req *drv_req_lookup(struct nvemu_drv_qpair *qp, uint16_t cid)
{
	if (cid >= qp->depth || !qp->reqs[cid].inflight)
		return NULL;
	return &qp->reqs[cid];
}

/* Take req out of flight and run its callback (the slot is free again first). */
static void req_finish(struct drv_req *req, int err, const struct nvemu_cqe *cqe)
{
	nvemu_drv_cb cb = req->cb;
	void *arg = req->arg;

	req->inflight = false;
	req->qp->inflight--;
	drv_req_put(req);
	if (cb)
		cb(arg, err, cqe);
}

int drv_complete(struct nvemu_drv_qpair *qp, const struct nvemu_cqe *cqe)
{
	struct drv_req *req = drv_req_lookup(qp, cqe->cid);

	if (!req) {
		drv_log(qp->ctrl, NVEMU_DRV_LOG_ERR,
			"queue %u: completion for CID %u, which is not in flight", qp->qid,
			cqe->cid);
		return -EPROTO;
	}
	/* Fabrics targets may leave SQID zero; PCIe must name the queue. */
	if (cqe->sqid != qp->qid && (!qp->ctrl->ops->fabrics || cqe->sqid != 0)) {
		drv_log(qp->ctrl, NVEMU_DRV_LOG_ERR, "queue %u: completion of CID %u names SQID %u",
			qp->qid, cqe->cid, cqe->sqid);
		return -EPROTO;
	}
	req_finish(req, cqe->status ? -EIO : 0, cqe);
	return 0;
}

void drv_qpair_fail_all(struct nvemu_drv_qpair *qp, int err)
{
	for (unsigned i = 0; i < qp->depth; i++) {
		struct drv_req *req = &qp->reqs[i];

		if (req->inflight)
			req_finish(req, req->timed_out ? -ETIMEDOUT : err, NULL);
	}
}

void drv_qpair_lost(struct nvemu_drv_qpair *qp, const char *why)
{
	drv_log(qp->ctrl, NVEMU_DRV_LOG_ERR, "queue %u lost: %s", qp->qid, why);
	qp->connected = false;
	qp->ctrl->reset_pending = true;
}

/* ---- synchronous commands (initialisation) */

struct sync_wait {
	bool done;
	int err;
	struct nvemu_cqe cqe;
};

static void sync_cb(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct sync_wait *w = arg;

	w->done = true;
	w->err = err;
	if (cqe)
		w->cqe = *cqe;
}

/* Wait up to ms for the queue's fd (or sleep a little when it has none). */
static void sync_wait_io(struct nvemu_drv_qpair *qp, int ms)
{
	const struct nvemu_drv_transport_ops *ops = qp->ctrl->ops;
	int fd = ops->get_fd ? ops->get_fd(qp) : -1;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	if (fd < 0) {
		struct timespec ts = {0, 20000};

		nanosleep(&ts, NULL);
		return;
	}
	if (ops->get_events && (ops->get_events(qp) & POLLOUT))
		pfd.events |= POLLOUT;
	poll(&pfd, 1, ms);
}

int drv_exec_sync(struct nvemu_drv_qpair *qp, const struct nvemu_sqe *cmd, void *buf, uint32_t len,
		  unsigned timeout_ms, struct nvemu_cqe *cqe)
{
	uint64_t deadline = drv_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct sync_wait w = {0};
	struct drv_req *req;
	int rc;

	if (!qp->connected)
		return -ENOTCONN;
	req = drv_req_get(qp);
	if (!req)
		return -EAGAIN;
	req->cmd = *cmd;
	req->buf = buf;
	req->len = len;
	req->cb = sync_cb;
	req->arg = &w;
	rc = drv_req_send(req);
	if (rc)
		return rc;
	while (!w.done) {
		uint64_t now = drv_now_ns();

		rc = qp->ctrl->ops->process(qp, 0);
		if (w.done)
			break;
		if (rc < 0 || now >= deadline || !qp->connected) {
			/* Abandon the slot: a late completion for it is a protocol error. */
			req->inflight = false;
			req->cb = NULL;
			qp->inflight--;
			drv_req_put(req);
			return rc < 0 ? rc : (!qp->connected ? -ENOTCONN : -ETIMEDOUT);
		}
		if (rc == 0)
			sync_wait_io(qp, (int)((deadline - now) / 1000000ull) + 1);
	}
	if (cqe)
		*cqe = w.cqe;
	return w.err;
}

/* ---- loop registration */

static void qpair_fd_cb(int fd, uint32_t revents, void *arg)
{
	struct nvemu_drv_qpair *qp = arg;

	if (qp->qid == 0)
		nvemu_drv_ctrl_process_admin(qp->ctrl);
	else
		nvemu_drv_qpair_process(qp, 0);
}

void drv_qpair_update_events(struct nvemu_drv_qpair *qp)
{
	const struct nvemu_drv_opts *o = &qp->ctrl->opts;
	uint32_t ev;

	if (!qp->loop_h || !qp->ctrl->ops->get_events)
		return;
	ev = qp->ctrl->ops->get_events(qp);
	if (ev != qp->loop_events && !o->loop_ops->mod_fd(o->loop, qp->loop_h, ev))
		qp->loop_events = ev;
}

int drv_qpair_watch(struct nvemu_drv_qpair *qp)
{
	const struct nvemu_drv_opts *o = &qp->ctrl->opts;
	const struct nvemu_drv_transport_ops *ops = qp->ctrl->ops;
	int fd;

	if (!o->loop_ops || !ops->get_fd || qp->loop_h)
		return 0;
	fd = ops->get_fd(qp);
	if (fd < 0)
		return 0;
	qp->loop_events = ops->get_events ? ops->get_events(qp) : POLLIN;
	qp->loop_h = o->loop_ops->add_fd(o->loop, fd, qp->loop_events, qpair_fd_cb, qp);
	if (!qp->loop_h)
		return -ENOMEM;
	qp->loop_fd = fd;
	return 0;
}

void drv_qpair_unwatch(struct nvemu_drv_qpair *qp)
{
	const struct nvemu_drv_opts *o = &qp->ctrl->opts;

	if (qp->loop_h)
		o->loop_ops->del_fd(o->loop, qp->loop_h);
	qp->loop_h = NULL;
	qp->loop_fd = -1;
}
