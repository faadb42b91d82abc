// SPDX-License-Identifier: MIT
/*
 * Controller lifecycle, as the Linux driver runs it: connect the admin
 * queue, CC/CSTS handshake bounded by CAP.TO, Identify, Number of Queues,
 * I/O queue pairs, namespaces, AER; Keep Alive on fabrics; timeouts; reset
 * and reconnect; destroy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver/driver-internal.h"

#define REG_CAP	 0x00
#define REG_VS	 0x08
#define REG_CC	 0x14
#define REG_CSTS 0x1c

#define CC_EN	       (1u << 0)
#define CC_SHN_NORM    (1u << 14)
#define CC_IOSQES      (6u << 16)
#define CC_IOCQES      (4u << 20)
#define CSTS_RDY       (1u << 0)
#define CSTS_CFS       (1u << 1)
#define CSTS_SHST      (3u << 2)
#define CSTS_SHST_DONE (2u << 2)

#define AEC_NS_ATTR (1u << 8)

static const char *const state_names[] = {
	[NVEMU_DRV_STATE_CONNECTING] = "connecting",
	[NVEMU_DRV_STATE_ENABLED] = "enabled",
	[NVEMU_DRV_STATE_RESETTING] = "resetting",
	[NVEMU_DRV_STATE_FAILED] = "failed",
};

const char *nvemu_drv_state_name(enum nvemu_drv_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s]
									  : "unknown";
}

void nvemu_drv_opts_init(struct nvemu_drv_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->num_io_queues = 1;
	o->io_queue_size = 128;
	o->admin_queue_size = 32;
	o->kato_ms = 10000;
	o->connect_timeout_ms = 5000;
	o->admin_timeout_ms = 10000;
	o->io_timeout_ms = 30000;
	o->reconnect_delay_ms = 1000;
	o->ctrl_loss_timeout_ms = 60000;
}

static void fill_defaults(struct nvemu_drv_opts *o)
{
	struct nvemu_drv_opts d;

	nvemu_drv_opts_init(&d);
#define DEF(f)                                                                                     \
	if (!o->f)                                                                                 \
	o->f = d.f
	DEF(num_io_queues);
	DEF(io_queue_size);
	DEF(admin_queue_size);
	DEF(kato_ms);
	DEF(connect_timeout_ms);
	DEF(admin_timeout_ms);
	DEF(io_timeout_ms);
	DEF(reconnect_delay_ms);
	DEF(ctrl_loss_timeout_ms);
#undef DEF
	if (o->io_queue_size < 2)
		o->io_queue_size = 2;
	if (o->admin_queue_size < 4)
		o->admin_queue_size = 4;
	if (o->num_io_queues > 64)
		o->num_io_queues = 64;
}

static void set_state(struct nvemu_drv_ctrl *ctrl, enum nvemu_drv_state s)
{
	if (ctrl->state == s)
		return;
	drv_log(ctrl, s == NVEMU_DRV_STATE_ENABLED ? NVEMU_DRV_LOG_INFO : NVEMU_DRV_LOG_WARN,
		"controller %s -> %s", nvemu_drv_state_name(ctrl->state), nvemu_drv_state_name(s));
	ctrl->state = s;
	if (ctrl->opts.event)
		ctrl->opts.event(ctrl->opts.event_arg, ctrl, NVEMU_DRV_EV_STATE, 0);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* CC.EN=1 and wait for CSTS.RDY within CAP.TO; a fatal status is an error. */
static int ctrl_enable(struct nvemu_drv_ctrl *ctrl, struct nvemu_error *err)
{
	const struct nvemu_drv_transport_ops *ops = ctrl->ops;
	unsigned to_ms, wait = 1;
	uint64_t v, deadline;
	int rc;

	rc = ops->reg_read(ctrl, REG_CAP, 8, &ctrl->cap);
	if (!rc)
		rc = ops->reg_read(ctrl, REG_VS, 4, &v);
	if (rc)
		return nvemu_error_set(err, rc, "reading CAP/VS failed (%s)", strerror(-rc));
	ctrl->vs = (uint32_t)v;
	if ((ctrl->cap >> 48) & 0xf)
		return nvemu_error_set(err, -ENOTSUP, "CAP.MPSMIN above 4 KiB is not supported");
	to_ms = (unsigned)((ctrl->cap >> 24) & 0xff) * 500;
	if (!to_ms)
		to_ms = 500;
	rc = ops->reg_write(ctrl, REG_CC, 4, CC_EN | CC_IOSQES | CC_IOCQES);
	if (rc)
		return nvemu_error_set(err, rc, "writing CC failed (%s)", strerror(-rc));
	deadline = drv_now_ns() + (uint64_t)to_ms * 1000000ull;
	for (;;) {
		rc = ops->reg_read(ctrl, REG_CSTS, 4, &v);
		if (rc)
			return nvemu_error_set(err, rc, "reading CSTS failed (%s)", strerror(-rc));
		if (v & CSTS_CFS)
			return nvemu_error_set(err, -EIO, "controller fatal status (CSTS.CFS)");
		if (v & CSTS_RDY)
			return 0;
		if (drv_now_ns() >= deadline)
			return nvemu_error_set(
				err, -ETIMEDOUT,
				"controller did not set CSTS.RDY within CAP.TO (%u ms)", to_ms);
		sleep_ms(wait);
		if (wait < 16)
			wait *= 2;
	}
}

static int admin_sync(struct nvemu_drv_ctrl *ctrl, const struct nvemu_sqe *cmd, void *buf,
		      uint32_t len, struct nvemu_cqe *cqe)
{
	return drv_exec_sync(ctrl->admin, cmd, buf, len, ctrl->opts.admin_timeout_ms, cqe);
}

static int ctrl_identify(struct nvemu_drv_ctrl *ctrl, struct nvemu_error *err)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .cdw10 = NVME_IDENTIFY_CNS_CTRL};
	struct nvemu_cqe cqe = {0};
	struct nvme_id_ctrl *id = aligned_alloc(4096, sizeof(*id));
	uint32_t page = 4096, tmax;
	int rc, n;

	if (!id)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	rc = admin_sync(ctrl, &cmd, id, sizeof(*id), &cqe);
	if (rc) {
		free(id);
		return nvemu_error_set(err, rc, "Identify Controller failed (%s, status 0x%x)",
				       strerror(-rc), cqe.status);
	}
	if (ctrl->serial[0] && memcmp(ctrl->id.sn, id->sn, sizeof(id->sn)))
		drv_log(ctrl, NVEMU_DRV_LOG_WARN, "serial number changed across a reconnect");
	ctrl->id = *id;
	free(id);
	memcpy(ctrl->serial, ctrl->id.sn, sizeof(ctrl->id.sn));
	ctrl->serial[sizeof(ctrl->id.sn)] = 0;
	for (n = (int)sizeof(ctrl->id.sn) - 1;
	     n >= 0 && (ctrl->serial[n] == ' ' || !ctrl->serial[n]); n--)
		ctrl->serial[n] = 0;
	for (int i = 0; ctrl->serial[i]; i++)
		if (ctrl->serial[i] < 0x20 || ctrl->serial[i] > 0x7e)
			ctrl->serial[i] = '?';
	tmax = ctrl->ops->max_xfer ? ctrl->ops->max_xfer(ctrl) : (1u << 20);
	ctrl->max_xfer = tmax;
	if (ctrl->id.mdts && ctrl->id.mdts < 20 && (page << ctrl->id.mdts) < tmax)
		ctrl->max_xfer = page << ctrl->id.mdts;
	if (ctrl->max_xfer < 4096)
		ctrl->max_xfer = 4096;
	return 0;
}

/* Set Features Number of Queues: how many I/O queue pairs we may create. */
static int ctrl_set_nr_queues(struct nvemu_drv_ctrl *ctrl, unsigned want, unsigned *got,
			      struct nvemu_error *err)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_set_features, .cdw10 = NVME_FEAT_FID_NUM_QUEUES};
	struct nvemu_cqe cqe = {0};
	unsigned nsq, ncq;
	int rc;

	cmd.cdw11 = (want - 1) | ((want - 1) << 16);
	rc = admin_sync(ctrl, &cmd, NULL, 0, &cqe);
	if (rc)
		return nvemu_error_set(err, rc,
				       "Set Features Number of Queues failed (%s, status 0x%x)",
				       strerror(-rc), cqe.status);
	nsq = (cqe.dw0 & 0xffff) + 1;
	ncq = (cqe.dw0 >> 16) + 1;
	*got = want < nsq ? want : nsq;
	if (ncq < *got)
		*got = ncq;
	return 0;
}

static void aer_cb(void *arg, int err, const struct nvemu_cqe *cqe);

static void aer_submit(struct nvemu_drv_ctrl *ctrl)
{
	struct drv_req *req = drv_req_get(ctrl->admin);

	if (!req)
		return;
	memset(&req->cmd, 0, sizeof(req->cmd));
	req->cmd.opc = nvme_admin_async_event;
	req->cb = aer_cb;
	req->arg = ctrl;
	if (!drv_req_send(req))
		ctrl->aer_outstanding = true;
}

static void aer_cb(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct nvemu_drv_ctrl *ctrl = arg;

	ctrl->aer_outstanding = false;
	if (err)
		return; /* reset, or the controller refused: no more AERs until reconnect */
	drv_log(ctrl, NVEMU_DRV_LOG_INFO, "asynchronous event 0x%08x", cqe->dw0);
	/* Its log page must be read to unmask the event; done outside the completion path. */
	ctrl->aer_log = (uint8_t)(cqe->dw0 >> 16);
	ctrl->aer_log_pending = true;
	if ((cqe->dw0 & 7) == NVME_AER_NOTICE &&
	    ((cqe->dw0 >> 8) & 0xff) == NVME_AER_NOTICE_NS_CHANGED)
		ctrl->rescan_pending = true;
}

/* After an AER: read its log page, rescan if namespaces changed, re-arm. */
static void aer_followup(struct nvemu_drv_ctrl *ctrl)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_get_log_page, .nsid = NVEMU_NSID_ALL};
	void *buf;

	if (ctrl->state != NVEMU_DRV_STATE_ENABLED || !ctrl->aer_log_pending)
		return;
	ctrl->aer_log_pending = false;
	buf = aligned_alloc(4096, 4096);
	if (buf) {
		cmd.cdw10 = ctrl->aer_log | ((4096 / 4 - 1) << 16);
		if (admin_sync(ctrl, &cmd, buf, 4096, NULL))
			drv_log(ctrl, NVEMU_DRV_LOG_WARN, "Get Log Page 0x%x failed",
				ctrl->aer_log);
		free(buf);
	}
	if (ctrl->rescan_pending) {
		ctrl->rescan_pending = false;
		drv_ns_scan(ctrl, true);
	}
	if (ctrl->state == NVEMU_DRV_STATE_ENABLED && !ctrl->aer_outstanding)
		aer_submit(ctrl);
}

static int ctrl_create_qpairs(struct nvemu_drv_ctrl *ctrl, unsigned nr, struct nvemu_error *err)
{
	uint16_t size = ctrl->opts.io_queue_size;
	unsigned mqes = (unsigned)(ctrl->cap & 0xffff) + 1;
	int rc;

	if (size > mqes)
		size = (uint16_t)mqes;
	if (!ctrl->qps) {
		ctrl->qps = calloc(nr, sizeof(*ctrl->qps));
		if (!ctrl->qps)
			return nvemu_error_set(err, -ENOMEM, "out of memory");
		for (unsigned i = 0; i < nr; i++) {
			ctrl->qps[i] = drv_qpair_alloc(ctrl, (uint16_t)(i + 1), size);
			if (!ctrl->qps[i])
				return nvemu_error_set(err, -ENOMEM, "out of memory");
			ctrl->nr_qps = i + 1;
		}
	} else if (nr < ctrl->nr_qps) {
		return nvemu_error_set(err, -EIO,
				       "controller grants %u I/O queues, %u before the reset", nr,
				       ctrl->nr_qps);
	}
	for (unsigned i = 0; i < ctrl->nr_qps; i++) {
		rc = ctrl->ops->qpair_create(ctrl, ctrl->qps[i], ctrl->opts.connect_timeout_ms,
					     err);
		if (rc)
			return rc;
	}
	return 0;
}

/* Bring the controller up (first connect or reconnect). */
static int ctrl_init(struct nvemu_drv_ctrl *ctrl, struct nvemu_error *err)
{
	struct nvemu_sqe aec = {.opc = nvme_admin_set_features,
				.cdw10 = NVME_FEAT_FID_ASYNC_EVENT,
				.cdw11 = AEC_NS_ATTR};
	unsigned nr = 0;
	int rc;

	rc = ctrl->ops->connect_admin(ctrl, ctrl->admin, ctrl->opts.connect_timeout_ms, err);
	if (!rc)
		rc = ctrl_enable(ctrl, err);
	if (!rc)
		rc = ctrl_identify(ctrl, err);
	if (!rc)
		rc = ctrl_set_nr_queues(
			ctrl, ctrl->nr_qps ? ctrl->nr_qps : ctrl->opts.num_io_queues, &nr, err);
	if (!rc)
		rc = ctrl_create_qpairs(ctrl, nr, err);
	if (!rc)
		rc = drv_ns_scan(ctrl, ctrl->state != NVEMU_DRV_STATE_CONNECTING);
	if (rc) {
		if (!err || !err->code)
			nvemu_error_set(err, rc, "namespace scan failed (%s)", strerror(-rc));
		return rc;
	}
	if (admin_sync(ctrl, &aec, NULL, 0, NULL))
		drv_log(ctrl, NVEMU_DRV_LOG_INFO, "Asynchronous Event Configuration not accepted");
	rc = drv_qpair_watch(ctrl->admin);
	for (unsigned i = 0; !rc && i < ctrl->nr_qps; i++)
		rc = drv_qpair_watch(ctrl->qps[i]);
	if (rc)
		return nvemu_error_set(err, rc, "cannot watch the queues' descriptors");
	ctrl->last_ka_ns = drv_now_ns();
	ctrl->reset_pending = false;
	set_state(ctrl, NVEMU_DRV_STATE_ENABLED);
	aer_submit(ctrl);
	return 0;
}

/* Drop every queue's transport state and fail what was in flight. */
static void ctrl_drop_queues(struct nvemu_drv_ctrl *ctrl, int err)
{
	drv_qpair_unwatch(ctrl->admin);
	for (unsigned i = 0; i < ctrl->nr_qps; i++)
		drv_qpair_unwatch(ctrl->qps[i]);
	ctrl->ops->disconnect(ctrl);
	ctrl->admin->connected = false;
	for (unsigned i = 0; i < ctrl->nr_qps; i++)
		ctrl->qps[i]->connected = false;
	ctrl->aer_outstanding = ctrl->ka_outstanding = false;
	drv_qpair_fail_all(ctrl->admin, err);
	for (unsigned i = 0; i < ctrl->nr_qps; i++)
		drv_qpair_fail_all(ctrl->qps[i], err);
}

void drv_ctrl_lost(struct nvemu_drv_ctrl *ctrl, const char *why)
{
	if (ctrl->state != NVEMU_DRV_STATE_ENABLED)
		return;
	drv_log(ctrl, NVEMU_DRV_LOG_ERR, "resetting the controller: %s", why);
	ctrl->lost_ns = drv_now_ns();
	ctrl->next_reconnect_ns = ctrl->lost_ns;
	ctrl->resets++;
	set_state(ctrl, NVEMU_DRV_STATE_RESETTING);
	ctrl_drop_queues(ctrl, -ECONNRESET);
}

int nvemu_drv_ctrl_connect(const struct nvemu_drv_trid *trid, const struct nvemu_drv_opts *opts,
			   struct nvemu_drv_ctrl **out, struct nvemu_error *err)
{
	const struct nvemu_drv_transport_ops *ops = drv_transport_find(trid->trtype);
	struct nvemu_drv_ctrl *ctrl;
	int rc;

	if (!ops)
		return nvemu_error_set(err, -EPROTONOSUPPORT,
				       "trtype: the %s host transport is not in this build",
				       nvemu_drv_trtype_name(trid->trtype));
	ctrl = calloc(1, sizeof(*ctrl));
	if (!ctrl)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	ctrl->trid = *trid;
	if (opts)
		ctrl->opts = *opts;
	fill_defaults(&ctrl->opts);
	ctrl->ops = ops;
	ctrl->state = NVEMU_DRV_STATE_CONNECTING;
	rc = ops->create(ctrl, err);
	if (rc) {
		free(ctrl);
		return rc;
	}
	ctrl->admin = drv_qpair_alloc(ctrl, 0, ctrl->opts.admin_queue_size);
	rc = ctrl->admin ? ctrl_init(ctrl, err) : nvemu_error_set(err, -ENOMEM, "out of memory");
	if (rc) {
		ctrl->state =
			NVEMU_DRV_STATE_FAILED; /* no events for a controller never returned */
		ctrl->opts.event = NULL;
		nvemu_drv_ctrl_destroy(ctrl);
		return rc;
	}
	*out = ctrl;
	return 0;
}

/* Orderly shutdown of a memory-based controller (CC.SHN, bounded wait). */
static void ctrl_shutdown(struct nvemu_drv_ctrl *ctrl)
{
	uint64_t deadline = drv_now_ns() + 2000000000ull;
	uint64_t v;

	if (ctrl->ops->fabrics || ctrl->state != NVEMU_DRV_STATE_ENABLED ||
	    ctrl->ops->reg_write(ctrl, REG_CC, 4, CC_EN | CC_IOSQES | CC_IOCQES | CC_SHN_NORM))
		return;
	while (!ctrl->ops->reg_read(ctrl, REG_CSTS, 4, &v) && (v & CSTS_SHST) != CSTS_SHST_DONE &&
	       drv_now_ns() < deadline)
		sleep_ms(1);
}

void nvemu_drv_ctrl_destroy(struct nvemu_drv_ctrl *ctrl)
{
	if (!ctrl)
		return;
	ctrl->opts.event = NULL;
	if (ctrl->admin) {
		ctrl_shutdown(ctrl);
		ctrl_drop_queues(ctrl, -ECANCELED);
	}
	ctrl->ops->destroy(ctrl);
	for (unsigned i = 0; i < ctrl->nr_qps; i++)
		drv_qpair_free(ctrl->qps[i]);
	free(ctrl->qps);
	drv_qpair_free(ctrl->admin);
	free(ctrl->ns);
	free(ctrl);
}

static void abort_cb(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct nvemu_drv_ctrl *ctrl = arg;

	if (err == -EIO)
		drv_log(ctrl, NVEMU_DRV_LOG_WARN, "Abort failed: status 0x%x", cqe->status);
	else if (!err)
		drv_log(ctrl, NVEMU_DRV_LOG_INFO, "Abort completed: command %s",
			(cqe->dw0 & 1) ? "not aborted" : "aborted");
}

/* Abort (SQID, CID) of req on the admin queue; 0 when sent. */
static int send_abort(struct nvemu_drv_ctrl *ctrl, const struct drv_req *req)
{
	struct drv_req *a = drv_req_get(ctrl->admin);

	if (!a)
		return -EBUSY;
	memset(&a->cmd, 0, sizeof(a->cmd));
	a->cmd.opc = nvme_admin_abort_cmd;
	a->cmd.cdw10 = req->qp->qid | (uint32_t)req->cid << 16;
	a->cb = abort_cb;
	a->arg = ctrl;
	a->timeout_ms = ctrl->opts.admin_timeout_ms;
	return drv_req_send(a);
}

/*
 * An I/O command older than its timeout gets an Abort, as the Linux driver
 * does, and admin_timeout_ms more to complete (a command the target aborts
 * completes with Command Abort Requested): no reset. An admin command (the
 * Abort included) or an I/O command still out after that resets the
 * controller.
 */
static void check_timeouts(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp, uint64_t now)
{
	for (unsigned i = 0; i < qp->depth; i++) {
		struct drv_req *req = &qp->reqs[i];

		if (!req->inflight || !req->timeout_ms || req->timed_out ||
		    now - req->start_ns < (uint64_t)req->timeout_ms * 1000000ull)
			continue;
		if (qp->qid && !req->abort_sent && !send_abort(ctrl, req)) {
			drv_log(ctrl, NVEMU_DRV_LOG_WARN,
				"queue %u: command 0x%02x CID %u timed out: sent Abort", qp->qid,
				req->cmd.opc, req->cid);
			req->abort_sent = true;
			req->start_ns = now;
			req->timeout_ms = ctrl->opts.admin_timeout_ms;
			continue;
		}
		drv_log(ctrl, NVEMU_DRV_LOG_ERR, "queue %u: command 0x%02x CID %u timed out%s",
			qp->qid, req->cmd.opc, req->cid, req->abort_sent ? " after Abort" : "");
		req->timed_out = true;
		ctrl->reset_pending = true;
	}
}

static void ka_cb(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct nvemu_drv_ctrl *ctrl = arg;

	ctrl->ka_outstanding = false;
	if (err == -EIO)
		drv_log(ctrl, NVEMU_DRV_LOG_WARN, "Keep Alive failed: status 0x%x", cqe->status);
}

static void keep_alive(struct nvemu_drv_ctrl *ctrl, uint64_t now)
{
	struct drv_req *req;

	if (!ctrl->ops->fabrics || ctrl->ka_outstanding ||
	    now - ctrl->last_ka_ns < (uint64_t)ctrl->opts.kato_ms * 1000000ull / 2)
		return;
	req = drv_req_get(ctrl->admin);
	if (!req)
		return;
	memset(&req->cmd, 0, sizeof(req->cmd));
	req->cmd.opc = nvme_admin_keep_alive;
	req->cb = ka_cb;
	req->arg = ctrl;
	req->timeout_ms = ctrl->opts.admin_timeout_ms;
	if (!drv_req_send(req)) {
		ctrl->ka_outstanding = true;
		ctrl->last_ka_ns = now;
	}
}

/*
 * One bring-up attempt. It blocks (bounded) when the target accepts but
 * does not answer: such attempts back off (the delay doubles, up to 16x),
 * so that a hung target costs the caller's loop little; a refused
 * connection returns at once and is retried at the normal pace.
 */
static void reconnect(struct nvemu_drv_ctrl *ctrl, uint64_t now)
{
	struct nvemu_error err = {0};
	uint64_t delay = (uint64_t)ctrl->opts.reconnect_delay_ms * 1000000ull;

	if (ctrl_init(ctrl, &err) == 0) {
		drv_log(ctrl, NVEMU_DRV_LOG_WARN, "reconnected");
		ctrl->slow_attempts = 0;
		return;
	}
	drv_log(ctrl, NVEMU_DRV_LOG_INFO, "reconnect failed: %s", err.msg);
	ctrl_drop_queues(ctrl, -ECONNRESET);
	if (drv_now_ns() - now > 100000000ull) {
		if (ctrl->slow_attempts < 4)
			ctrl->slow_attempts++;
	} else {
		ctrl->slow_attempts = 0;
	}
	now = drv_now_ns();
	ctrl->next_reconnect_ns = now + (delay << ctrl->slow_attempts);
	if (ctrl->opts.ctrl_loss_timeout_ms != UINT32_MAX &&
	    now - ctrl->lost_ns >= (uint64_t)ctrl->opts.ctrl_loss_timeout_ms * 1000000ull)
		set_state(ctrl, NVEMU_DRV_STATE_FAILED);
}

void nvemu_drv_ctrl_tick(struct nvemu_drv_ctrl *ctrl)
{
	uint64_t now = drv_now_ns();

	if (ctrl->in_tick)
		return;
	ctrl->in_tick++;
	if (ctrl->state == NVEMU_DRV_STATE_ENABLED) {
		check_timeouts(ctrl, ctrl->admin, now);
		for (unsigned i = 0; i < ctrl->nr_qps; i++)
			check_timeouts(ctrl, ctrl->qps[i], now);
		if (ctrl->reset_pending)
			drv_ctrl_lost(ctrl, "a queue was lost or a command timed out");
		else
			keep_alive(ctrl, now);
	}
	if (ctrl->state == NVEMU_DRV_STATE_ENABLED)
		aer_followup(ctrl);
	else if (ctrl->state == NVEMU_DRV_STATE_RESETTING && now >= ctrl->next_reconnect_ns)
		reconnect(ctrl, now);
	ctrl->in_tick--;
}

int nvemu_drv_ctrl_process_admin(struct nvemu_drv_ctrl *ctrl)
{
	int rc;

	if (ctrl->state != NVEMU_DRV_STATE_ENABLED || !ctrl->admin->connected)
		return 0;
	rc = ctrl->ops->process(ctrl->admin, 0);
	if (rc < 0) {
		drv_ctrl_lost(ctrl, "admin queue lost");
		return rc;
	}
	drv_qpair_update_events(ctrl->admin);
	if (!ctrl->in_tick && ctrl->aer_log_pending) {
		ctrl->in_tick++;
		aer_followup(ctrl);
		ctrl->in_tick--;
	}
	return rc;
}

int nvemu_drv_ctrl_reset(struct nvemu_drv_ctrl *ctrl)
{
	if (ctrl->state == NVEMU_DRV_STATE_ENABLED) {
		/* Maybe called from a completion callback: the tick does it. */
		ctrl->reset_pending = true;
	} else if (ctrl->state == NVEMU_DRV_STATE_FAILED) {
		ctrl->lost_ns = ctrl->next_reconnect_ns = drv_now_ns();
		set_state(ctrl, NVEMU_DRV_STATE_RESETTING);
	}
	return 0;
}

enum nvemu_drv_state nvemu_drv_ctrl_state(const struct nvemu_drv_ctrl *ctrl)
{
	return ctrl->state;
}

const struct nvemu_drv_trid *nvemu_drv_ctrl_trid(const struct nvemu_drv_ctrl *ctrl)
{
	return &ctrl->trid;
}

const struct nvme_id_ctrl *nvemu_drv_ctrl_id(const struct nvemu_drv_ctrl *ctrl)
{
	return &ctrl->id;
}

const char *nvemu_drv_ctrl_serial(const struct nvemu_drv_ctrl *ctrl)
{
	return ctrl->serial;
}

uint16_t nvemu_drv_ctrl_cntlid(const struct nvemu_drv_ctrl *ctrl)
{
	return ctrl->cntlid ? ctrl->cntlid : ctrl->id.cntlid;
}

uint32_t nvemu_drv_ctrl_max_xfer(const struct nvemu_drv_ctrl *ctrl)
{
	return ctrl->max_xfer;
}

uint64_t nvemu_drv_ctrl_resets(const struct nvemu_drv_ctrl *ctrl)
{
	return ctrl->resets;
}
