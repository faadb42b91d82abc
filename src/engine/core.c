/* SPDX-License-Identifier: MIT */
/*
 * The command engine: dispatch, completion, the Error Information log,
 * Asynchronous Events, controller registers, suspend/resume.
 */
#include <errno.h>
#include <stdlib.h>

#include "nvemu-internal.h"
#include "reservations.h"

#define CSTS_RDY       (1u << NVME_CSTS_RDY_SHIFT)
#define CSTS_CFS       (1u << NVME_CSTS_CFS_SHIFT)
#define CSTS_SHST(v)   ((uint32_t)(v) << NVME_CSTS_SHST_SHIFT)
#define CSTS_SHST_MASK CSTS_SHST(NVME_CSTS_SHST_MASK)
/* CC.IOSQES / CC.IOCQES: log2 of the only entry sizes offered (Identify SQES/CQES) */
#define CC_IOSQES 6
#define CC_IOCQES 4

/* ---- command tables: the one place that maps opcodes to handlers */

static bool memq_transport(const struct nvemu_ctrl *ctrl)
{
	return !ctrl->tops || !ctrl->tops->fabrics;
}

static bool has_io_queues(const struct nvemu_ctrl *ctrl)
{
	return memq_transport(ctrl) && !ctrl->p.admin_only;
}

static bool has_write_zeroes(const struct nvemu_ctrl *ctrl)
{
	return ctrl->p.write_zeroes;
}
static bool has_compare(const struct nvemu_ctrl *ctrl)
{
	return ctrl->p.compare || ctrl->p.compare_write;
}
static bool has_dsm(const struct nvemu_ctrl *ctrl)
{
	return ctrl->p.dsm;
}
static bool has_dbbuf(const struct nvemu_ctrl *ctrl)
{
	return ctrl->tops && ctrl->tops->dbbuf_config;
}

#define E_LBCC	NVME_CMD_EFFECTS_LBCC
#define E_NSCHG (NVME_CMD_EFFECTS_NCC | NVME_CMD_EFFECTS_NIC)
#define E_CCC	NVME_CMD_EFFECTS_CCC
/* CSE = 1: no other command to the namespace may run concurrently */
#define E_CSE_NS (1u << 16)

static const struct nvemu_cmd_desc admin_cmds[256] = {
	[nvme_admin_delete_sq] = {"Delete I/O Submission Queue", nvemu_execute_delete_sq, 0, false,
				  has_io_queues},
	[nvme_admin_create_sq] = {"Create I/O Submission Queue", nvemu_execute_create_sq, 0, false,
				  has_io_queues},
	[nvme_admin_get_log_page] = {"Get Log Page", nvemu_execute_get_log_page, 0, false, NULL},
	[nvme_admin_delete_cq] = {"Delete I/O Completion Queue", nvemu_execute_delete_cq, 0, false,
				  has_io_queues},
	[nvme_admin_create_cq] = {"Create I/O Completion Queue", nvemu_execute_create_cq, 0, false,
				  has_io_queues},
	[nvme_admin_identify] = {"Identify", nvemu_execute_identify, 0, false, NULL},
	[nvme_admin_abort_cmd] = {"Abort", nvemu_execute_abort, 0, false, NULL},
	[nvme_admin_set_features] = {"Set Features", nvemu_execute_set_features, E_CCC, false,
				     NULL},
	[nvme_admin_get_features] = {"Get Features", nvemu_execute_get_features, 0, false, NULL},
	[nvme_admin_async_event] = {"Asynchronous Event Request", nvemu_execute_async_event, 0,
				    false, NULL},
	[nvme_admin_ns_mgmt] = {"Namespace Management", nvemu_execute_ns_mgmt, E_NSCHG | E_LBCC,
				false, NULL},
	[nvme_admin_fw_commit] = {"Firmware Commit", nvemu_execute_fw_commit, E_CCC, false, NULL},
	[nvme_admin_fw_download] = {"Firmware Image Download", nvemu_execute_fw_download, 0, false,
				    NULL},
	[nvme_admin_ns_attach] = {"Namespace Attachment", nvemu_execute_ns_attach, E_NSCHG, false,
				  NULL},
	[nvme_admin_keep_alive] = {"Keep Alive", nvemu_execute_keep_alive, 0, false, NULL},
	[nvme_admin_dbbuf] = {"Doorbell Buffer Config", nvemu_execute_doorbell_buffer_config, 0,
			      false, has_dbbuf},
	[nvme_admin_format_nvm] = {"Format NVM", nvemu_execute_format_nvm,
				   E_LBCC | E_NSCHG | E_CSE_NS, false, NULL},
	[nvme_admin_sanitize_nvm] = {"Sanitize", nvemu_execute_sanitize, E_LBCC | E_CSE_NS, false,
				     NULL},
};

static const struct nvemu_cmd_desc io_cmds[256] = {
	[nvme_cmd_flush] = {"Flush", nvemu_execute_flush, 0, false, NULL},
	[nvme_cmd_write] = {"Write", nvemu_execute_write, E_LBCC, true, NULL},
	[nvme_cmd_read] = {"Read", nvemu_execute_read, 0, true, NULL},
	[nvme_cmd_compare] = {"Compare", nvemu_execute_compare, 0, true, has_compare},
	[nvme_cmd_write_zeroes] = {"Write Zeroes", nvemu_execute_write_zeroes, E_LBCC, true,
				   has_write_zeroes},
	[nvme_cmd_dsm] = {"Dataset Management", nvemu_execute_dsm, E_LBCC, true, has_dsm},
	[nvme_cmd_verify] = {"Verify", nvemu_execute_verify, 0, true, NULL},
	[nvme_cmd_copy] = {"Copy", nvemu_execute_copy, E_LBCC, true, NULL},
	[nvme_cmd_resv_register] = {"Reservation Register", nvemu_execute_resv_register, 0, true,
				    NULL},
	[nvme_cmd_resv_report] = {"Reservation Report", nvemu_execute_resv_report, 0, true, NULL},
	[nvme_cmd_resv_acquire] = {"Reservation Acquire", nvemu_execute_resv_acquire, 0, true,
				   NULL},
	[nvme_cmd_resv_release] = {"Reservation Release", nvemu_execute_resv_release, 0, true,
				   NULL},
};

static const struct nvemu_cmd_desc *lookup(const struct nvemu_cmd_desc *tbl,
					   const struct nvemu_ctrl *ctrl, uint8_t opc)
{
	const struct nvemu_cmd_desc *d = &tbl[opc];

	if (!d->execute || (d->supported && !d->supported(ctrl)))
		return NULL;
	return d;
}

const struct nvemu_cmd_desc *nvemu_admin_cmd(const struct nvemu_ctrl *ctrl, uint8_t opc)
{
	return lookup(admin_cmds, ctrl, opc);
}

const struct nvemu_cmd_desc *nvemu_io_cmd(const struct nvemu_ctrl *ctrl, uint8_t opc)
{
	return lookup(io_cmds, ctrl, opc);
}

/* ---- data transfer helpers */

uint16_t nvemu_req_check_len(struct nvemu_req *req, uint32_t len)
{
	if (len && (!req->buf || req->buf_len < len))
		return NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR;
	return 0;
}

uint16_t nvemu_req_to_host(struct nvemu_req *req, const void *src, uint32_t len)
{
	uint16_t st = nvemu_req_check_len(req, len);

	if (st)
		return st;
	if (len)
		memcpy(req->buf, src, len);
	req->xfer_len = len;
	return 0;
}

uint16_t nvemu_req_from_host(struct nvemu_req *req, void *dst, uint32_t len)
{
	uint16_t st = nvemu_req_check_len(req, len);

	if (st)
		return st;
	if (len)
		memcpy(dst, req->buf, len);
	req->xfer_len = len;
	return 0;
}

int64_t nvemu_req_expected_len(struct nvemu_ctrl *ctrl, uint16_t sqid, const struct nvemu_sqe *cmd)
{
	uint32_t numd;

	if (sqid)
		return nvemu_io_expected_len(ctrl, cmd);
	switch (cmd->opc) {
	case nvme_admin_identify:
	case nvme_admin_ns_mgmt:
	case nvme_admin_ns_attach:
		return 4096;
	case nvme_admin_get_log_page:
		numd = (cmd->cdw10 >> 16) | ((cmd->cdw11 & 0xffff) << 16);
		return ((int64_t)numd + 1) * 4;
	case nvme_admin_fw_download:
		return ((int64_t)cmd->cdw10 + 1) * 4;
	case nvme_admin_get_features:
	case nvme_admin_set_features:
		switch (cmd->cdw10 & 0xff) {
		case NVME_FEAT_FID_HOST_ID:
			return 16;
		case NVME_FEAT_FID_TIMESTAMP:
			return 8;
		default:
			return 0;
		}
	default:
		return 0;
	}
}

/* ---- error log */

void nvemu_ctrl_record_error(struct nvemu_ctrl *ctrl, struct nvemu_req *req, uint16_t status)
{
	struct nvme_error_log_page *e;

	ctrl->err_count++;
	e = &ctrl->errlog[(ctrl->err_count - 1) % NVEMU_ERRLOG_ENTRIES];
	memset(e, 0, sizeof(*e));
	e->error_count = htole64(ctrl->err_count);
	e->sqid = htole16(req->sqid);
	e->cmdid = htole16(req->cmd.cid);
	e->status_field = htole16((uint16_t)(status << 1));
	e->parm_error_location = htole16(0xffff);
	e->nsid = htole32(req->cmd.nsid);
	if (req->sqid && (req->cmd.opc == nvme_cmd_read || req->cmd.opc == nvme_cmd_write ||
			  req->cmd.opc == nvme_cmd_compare ||
			  req->cmd.opc == nvme_cmd_write_zeroes || req->cmd.opc == nvme_cmd_verify))
		e->lba = htole64((uint64_t)req->cmd.cdw11 << 32 | req->cmd.cdw10);
	e->trtype = 0;
}

/* ---- completion */

static void inflight_add(struct nvemu_ctrl *ctrl, struct nvemu_req *req)
{
	LIST_INSERT_HEAD(&ctrl->inflight_reqs, req, inflight_link);
	ctrl->inflight++;
}

static void inflight_del(struct nvemu_ctrl *ctrl, struct nvemu_req *req)
{
	LIST_REMOVE(req, inflight_link);
	ctrl->inflight--;
}

void nvemu_req_complete(struct nvemu_req *req, uint16_t status)
{
	struct nvemu_ctrl *ctrl = req->ctrl;

	if (req->abort_status && !status)
		status = req->abort_status;
	req->cqe.status = status;
	req->cqe.cid = req->cmd.cid;
	req->cqe.sqid = req->sqid;
	nvemu_ctrl_metrics_account(ctrl, req, status);
	/* An AER completing normally is not an error; an aborted one is. */
	if (status & (NVME_SC_MASK | (NVME_SCT_MASK << NVME_SCT_SHIFT)))
		nvemu_ctrl_record_error(ctrl, req, status);
	inflight_del(ctrl, req);
	if (req->sqid <= ctrl->p.num_io_queues && ctrl->sqs[req->sqid].valid) {
		struct nvemu_sq *sq = &ctrl->sqs[req->sqid];

		sq->st.completions++;
		if (sq->cqid <= ctrl->p.num_io_queues)
			ctrl->cqs[sq->cqid].completions++;
	}
	if (req->cmd_priv) {
		if (req->cmd_priv_release)
			req->cmd_priv_release(req);
		free(req->cmd_priv);
		req->cmd_priv = NULL;
	}
	req->cmd_priv_release = NULL;
	if (req->ns) {
		struct nvemu_ns *ns = req->ns;

		req->ns = NULL;
		/* May free a namespace removed meanwhile: done() must not see it. */
		if (ns->resv) {
			/*
			 * The put may start a fused pair that completes other commands
			 * of this controller: it must not look idle (and be freed)
			 * before this command's done() ran.
			 */
			ctrl->internal_ops++;
			nvemu_ns_put(ns);
			ctrl->internal_ops--;
		} else {
			nvemu_ns_put(ns);
		}
	}
	req->done(req);
	if (ctrl->dying) {
		if (!nvemu_ctrl_inflight(ctrl))
			nvemu_ctrl_release(ctrl);
		return;
	}
	if (ctrl->idle_fn && !nvemu_ctrl_inflight(ctrl)) {
		void (*fn)(void *) = ctrl->idle_fn;

		/* Cleared first: fn may free the controller. */
		ctrl->idle_fn = NULL;
		fn(ctrl->idle_arg);
	}
}

/* ---- submission */

static uint16_t prepare_io(struct nvemu_ctrl *ctrl, struct nvemu_req *req,
			   const struct nvemu_cmd_desc **descp)
{
	const struct nvemu_cmd_desc *d = nvemu_io_cmd(ctrl, req->cmd.opc);

	if (!d)
		return NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVEMU_DNR;
	if (d->needs_ns) {
		struct nvemu_ns *ns = nvemu_ctrl_find_ns(ctrl, req->cmd.nsid);

		if (!ns)
			return NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR;
		if (!ns->ready)
			return NVEMU_SC_GENERIC(NVME_SC_NS_NOT_READY);
		uint16_t ana = nvemu_ana_io_status(ctrl, ns);

		if (ana)
			return ana;
		/* Held until completion: the namespace may be deleted meanwhile. */
		req->ns = nvemu_ns_get(ns);
	}
	*descp = d;
	return 0;
}

static void dispatch(struct nvemu_ctrl *ctrl, struct nvemu_req *req)
{
	const struct nvemu_cmd_desc *d = NULL;
	uint16_t st;

	if (!nvemu_ctrl_enabled(ctrl) && !req->oob) {
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR));
		return;
	}
	st = nvemu_sanitize_check(ctrl, req);
	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	if (req->cmd.flags & 0x3) {
		/* Fused Compare and Write (io-fused.c) */
		nvemu_fused_submit(ctrl, req);
		return;
	}
	if (req->sqid && ctrl->resv) /* state only once reservations or fused commands were used */
		nvemu_fused_check_missing(ctrl, req->sqid);
	if (req->sqid == 0) {
		d = nvemu_admin_cmd(ctrl, req->cmd.opc);
		st = d ? 0 : NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVEMU_DNR;
		if (!st && req->cmd.opc == nvme_admin_keep_alive)
			nvemu_ctrl_keep_alive(ctrl);
		if (!st)
			st = nvemu_resv_check_admin(ctrl, req);
	} else {
		st = prepare_io(ctrl, req, &d);
	}
	if (!st && req->ns && req->ns->resv) {
		if (nvemu_fused_hold(req))
			return; /* a fused pair runs on the namespace: dispatched again after it */
		st = nvemu_resv_check(ctrl, req->ns, req->cmd.opc);
	}
	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	if (req->sqid) {
		struct nvemu_sq *sq = &ctrl->sqs[req->sqid];

		if (req->cmd.opc == nvme_cmd_read)
			sq->st.reads++;
		else if (req->cmd.opc == nvme_cmd_write)
			sq->st.writes++;
		else if (req->cmd.opc == nvme_cmd_flush)
			sq->st.flushes++;
	}
	d->execute(req);
}

void nvemu_ctrl_redispatch(struct nvemu_req *req)
{
	dispatch(req->ctrl, req);
}

static bool held(struct nvemu_ctrl *ctrl, struct nvemu_req *req)
{
	return ctrl->suspended && (req->sqid == 0 || !ctrl->suspend_admin_only);
}

void nvemu_ctrl_submit(struct nvemu_ctrl *ctrl, struct nvemu_req *req)
{
	req->ctrl = ctrl;
	req->ns = NULL;
	req->xfer_len = 0;
	req->abort_status = 0;
	req->bio_pending = 0;
	req->bio_err = 0;
	req->cmd_priv = NULL;
	req->cmd_priv_release = NULL;
	memset(&req->cqe, 0, sizeof(req->cqe));
	req->start_ns = nvemu_now_ns();
	inflight_add(ctrl, req);

	if (req->oob) {
		req->sqid = 0;
	} else if (!nvemu_ctrl_enabled(ctrl)) {
		/* Before CC.EN=1 no queue exists yet: the order of events is wrong, not the QID. */
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR));
		return;
	} else if (req->sqid > ctrl->p.num_io_queues || !ctrl->sqs[req->sqid].valid) {
		nvemu_req_complete(req, NVEMU_SC_CMD(NVME_SC_QID_INVALID) | NVEMU_DNR);
		return;
	}
	ctrl->sqs[req->sqid].st.requests++;
	if (held(ctrl, req) && req->oob) {
		/*
		 * A management controller waits for every reply; holding one until
		 * an operator resumes could be forever. Command Interrupted without
		 * DNR tells it to retry later.
		 */
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_CMD_INTERRUPTED));
		return;
	}
	if (held(ctrl, req)) {
		/* Held commands are not "in flight" for suspend accounting. */
		inflight_del(ctrl, req);
		STAILQ_INSERT_TAIL(&ctrl->held, req, queue_link);
		return;
	}
	dispatch(ctrl, req);
}

/* ---- asynchronous events */

static bool event_enabled(const struct nvemu_ctrl *ctrl, uint8_t type, uint8_t info)
{
	uint32_t cfg = ctrl->feat.async_event_cfg;

	switch (type) {
	case NVME_AER_SMART:
		/* Bits 7:0 mirror the critical warning bits. */
		if (info == NVME_AER_SMART_TEMPERATURE_THRESHOLD)
			return cfg & NVME_SMART_CRIT_TEMPERATURE;
		if (info == NVME_AER_SMART_SPARE_THRESHOLD)
			return cfg & NVME_SMART_CRIT_SPARE;
		return cfg & 0xff;
	case NVME_AER_NOTICE:
		if (info == 0) /* Namespace Attribute Changed */
			return cfg & (1u << 8);
		if (info == 1) /* Firmware Activation Starting */
			return cfg & (1u << 9);
		if (info == NVME_AER_NOTICE_ANA)
			return cfg & (1u << 11);
		return false;
	default:
		return true; /* error events cannot be masked */
	}
}

static void aen_process(struct nvemu_ctrl *ctrl)
{
	while (!STAILQ_EMPTY(&ctrl->aers) && ctrl->nr_events) {
		unsigned i;

		for (i = 0; i < ctrl->nr_events; i++)
			if (!(ctrl->aen_masked & (1u << ctrl->events[i].type)))
				break;
		if (i == ctrl->nr_events)
			return;

		struct nvemu_event ev = ctrl->events[i];
		struct nvemu_req *aer = STAILQ_FIRST(&ctrl->aers);

		memmove(&ctrl->events[i], &ctrl->events[i + 1],
			(ctrl->nr_events - i - 1) * sizeof(ev));
		ctrl->nr_events--;
		ctrl->aen_masked |= 1u << ev.type;
		STAILQ_REMOVE_HEAD(&ctrl->aers, queue_link);
		ctrl->nr_aer--;
		aer->cqe.dw0 = ev.type | (uint32_t)ev.info << 8 | (uint32_t)ev.lid << 16;
		ctrl->metrics.aens++;
		nvemu_req_complete(aer, 0);
	}
}

void nvemu_ctrl_add_event(struct nvemu_ctrl *ctrl, uint8_t type, uint8_t info, uint8_t lid)
{
	if (!event_enabled(ctrl, type, info))
		return;
	for (unsigned i = 0; i < ctrl->nr_events; i++)
		if (ctrl->events[i].type == type && ctrl->events[i].info == info)
			return; /* already pending: events of one kind coalesce */
	if (ctrl->nr_events == NVEMU_MAX_EVENTS)
		return;
	ctrl->events[ctrl->nr_events++] = (struct nvemu_event){type, info, lid};
	aen_process(ctrl);
}

void nvemu_ctrl_log_read(struct nvemu_ctrl *ctrl, uint8_t lid, bool rae)
{
	static const uint8_t type_lid[8] = {
		[NVME_AER_ERROR] = NVME_LOG_LID_ERROR,
		[NVME_AER_SMART] = NVME_LOG_LID_SMART,
		[6] = NVME_LOG_LID_RESERVATION, /* I/O command specific: reservations */
	};

	if (rae)
		return;
	for (unsigned t = 0; t < 8; t++) {
		bool clears = type_lid[t] == lid ||
			      (t == NVME_AER_NOTICE &&
			       (lid == NVME_LOG_LID_CHANGED_NS || lid == NVME_LOG_LID_FW_SLOT ||
				lid == NVME_LOG_LID_ANA)) ||
			      (t == NVME_AER_CSS && lid == NVME_LOG_LID_SANITIZE);
		if (clears)
			ctrl->aen_masked &= ~(1u << t);
	}
	aen_process(ctrl);
}

void nvemu_execute_async_event(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;

	if (ctrl->nr_aer >= (unsigned)ctrl->p.aerl + 1) {
		nvemu_req_complete(req, NVEMU_SC_CMD(NVME_SC_ASYNC_LIMIT) | NVEMU_DNR);
		return;
	}
	STAILQ_INSERT_TAIL(&ctrl->aers, req, queue_link);
	ctrl->nr_aer++;
	aen_process(ctrl);
}

void nvemu_ctrl_abort_aers(struct nvemu_ctrl *ctrl)
{
	while (!STAILQ_EMPTY(&ctrl->aers)) {
		struct nvemu_req *aer = STAILQ_FIRST(&ctrl->aers);

		STAILQ_REMOVE_HEAD(&ctrl->aers, queue_link);
		ctrl->nr_aer--;
		nvemu_req_complete(aer, NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	}
}

/* ---- registers */

bool nvemu_ctrl_enabled(const struct nvemu_ctrl *ctrl)
{
	return ctrl->csts & CSTS_RDY;
}

uint64_t nvemu_ctrl_get_cap(struct nvemu_ctrl *ctrl)
{
	/* Fabrics transports refuse a Property Set of NSSR, so they offer no subsystem reset. */
	if (ctrl->tops && ctrl->tops->fabrics)
		return ctrl->cap & ~(1ull << NVME_CAP_NSSRC_SHIFT);
	return ctrl->cap;
}

uint32_t nvemu_ctrl_get_vs(struct nvemu_ctrl *ctrl)
{
	(void)ctrl;
	return NVEMU_VS;
}

uint32_t nvemu_ctrl_get_cc(struct nvemu_ctrl *ctrl)
{
	return ctrl->cc;
}

uint32_t nvemu_ctrl_get_csts(struct nvemu_ctrl *ctrl)
{
	return ctrl->csts;
}

static void ctrl_reset(struct nvemu_ctrl *ctrl)
{
	uint32_t kato = ctrl->feat.kato;

	nvemu_ctrl_abort_aers(ctrl);
	nvemu_fused_ctrl_reset(ctrl);
	if (ctrl->tops && ctrl->tops->reset)
		ctrl->tops->reset(ctrl);
	for (unsigned q = 1; q <= ctrl->p.num_io_queues; q++) {
		ctrl->sqs[q].valid = false;
		ctrl->cqs[q].valid = false;
	}
	ctrl->sqs[0].valid = ctrl->cqs[0].valid = false;
	ctrl->nr_events = 0;
	ctrl->aen_masked = 0;
	ctrl->feat = ctrl->feat_saved;
	ctrl->feat.num_queues_set = false;
	/* On fabrics KATO comes from Connect and lasts as long as the association. */
	if (ctrl->tops && ctrl->tops->fabrics)
		ctrl->feat.kato = kato;
	nvemu_fw_reset(ctrl);
	ctrl->csts = 0;
}

struct shutdown_ctx {
	struct nvemu_ctrl *ctrl;
	unsigned pending;
	unsigned nr;
	struct {
		struct nvemu_ns *ns;
		struct nvemu_bio bio;
	} e[];
};

static void shutdown_put(struct shutdown_ctx *sc)
{
	struct nvemu_ctrl *ctrl = sc->ctrl;

	if (--sc->pending)
		return;
	for (unsigned i = 0; i < sc->nr; i++)
		nvemu_ns_put(sc->e[i].ns);
	free(sc);
	ctrl->csts = (ctrl->csts & ~CSTS_SHST_MASK) | CSTS_SHST(NVME_CSTS_SHST_CMPLT);
	/* The flushes counted as work in flight: a teardown may be waiting for them. */
	ctrl->internal_ops--;
	if (ctrl->dying) {
		if (!nvemu_ctrl_inflight(ctrl))
			nvemu_ctrl_release(ctrl);
	} else if (ctrl->idle_fn && !nvemu_ctrl_inflight(ctrl)) {
		void (*fn)(void *) = ctrl->idle_fn;

		ctrl->idle_fn = NULL;
		fn(ctrl->idle_arg);
	}
}

static void shutdown_flush_done(struct nvemu_bio *bio, int err)
{
	(void)err;
	shutdown_put(bio->private);
}

/*
 * Flush every attached namespace, then report CSTS.SHST complete. The
 * flushes hold references on their namespaces and count as in flight, so
 * neither a namespace nor the controller goes away under them.
 */
static void ctrl_shutdown(struct nvemu_ctrl *ctrl)
{
	struct shutdown_ctx *sc = calloc(1, sizeof(*sc) + ctrl->nr_ns * sizeof(sc->e[0]));

	if (!sc) {
		/* Nothing was flushed: say so rather than report a clean shutdown. */
		ctrl->csts |= CSTS_CFS;
		return;
	}
	ctrl->csts = (ctrl->csts & ~CSTS_SHST_MASK) | CSTS_SHST(NVME_CSTS_SHST_OCCUR);
	sc->ctrl = ctrl;
	sc->pending = 1; /* held until every flush is submitted */
	ctrl->internal_ops++;
	for (unsigned i = 0; i < ctrl->nr_ns; i++) {
		struct nvemu_bio *bio;

		sc->e[sc->nr].ns = nvemu_ns_get(ctrl->ns[i]);
		bio = &sc->e[sc->nr++].bio;
		bio->op = NVEMU_BIO_FLUSH;
		bio->end_io = shutdown_flush_done;
		bio->private = sc;
		sc->pending++;
		if (nvemu_bdev_submit(ctrl->ns[i]->bdev, bio))
			sc->pending--;
	}
	shutdown_put(sc);
}

static bool cc_valid(const struct nvemu_ctrl *ctrl, uint32_t cc)
{
	uint32_t css = NVME_CC_CSS(cc), mps = NVME_CC_MPS(cc), ams = NVME_CC_AMS(cc);
	uint32_t mpsmin = NVME_CAP_MPSMIN(ctrl->cap), mpsmax = NVME_CAP_MPSMAX(ctrl->cap);

	if (css != NVME_CC_CSS_NVM && css != NVME_CC_CSS_CSI)
		return false;
	if (mps < mpsmin || mps > mpsmax)
		return false;
	if (ams != NVME_CC_AMS_RR)
		return false;
	/* The entry sizes are fixed (Identify SQES/CQES). */
	if (!ctrl->p.admin_only &&
	    (NVME_CC_IOSQES(cc) != CC_IOSQES || NVME_CC_IOCQES(cc) != CC_IOCQES))
		return false;
	return !ctrl->tops || !ctrl->tops->enable_ok || ctrl->tops->enable_ok(ctrl, cc);
}

/*
 * CC.EN 0->1: a memory-based transport's admin queues come from AQA, ASQ
 * and ACQ now; a fabrics admin queue was created by Connect and carries on.
 */
static void admin_queues_enable(struct nvemu_ctrl *ctrl)
{
	uint16_t asqs = (ctrl->aqa & 0xfff) + 1, acqs = ((ctrl->aqa >> 16) & 0xfff) + 1;

	if (!memq_transport(ctrl)) {
		ctrl->sqs[0].valid = ctrl->cqs[0].valid = true;
		return;
	}
	ctrl->sqs[0] = (struct nvemu_sq){
		.valid = true, .qid = 0, .cqid = 0, .size = asqs, .addr = ctrl->asq};
	ctrl->cqs[0] = (struct nvemu_cq){
		.valid = true, .qid = 0, .size = acqs, .ien = true, .addr = ctrl->acq, .nr_sqs = 1};
}

void nvemu_ctrl_set_cc(struct nvemu_ctrl *ctrl, uint32_t cc)
{
	uint32_t old = ctrl->cc;
	bool en = cc & NVME_CC_EN_MASK, was_en = old & NVME_CC_EN_MASK;

	ctrl->cc = cc;
	if (en && !was_en) {
		if (!cc_valid(ctrl, cc)) {
			ctrl->csts |= CSTS_CFS;
			return;
		}
		admin_queues_enable(ctrl);
		ctrl->csts = CSTS_RDY;
		ctrl->subsys->power_cycles++;
		nvemu_ctrl_keep_alive(ctrl);
	} else if (!en && was_en) {
		ctrl_reset(ctrl);
		return;
	}
	if (NVME_CC_SHN(cc) && !NVME_CC_SHN(old))
		ctrl_shutdown(ctrl);
	else if (!NVME_CC_SHN(cc))
		ctrl->csts &= ~CSTS_SHST_MASK;
}

void nvemu_ctrl_set_aqa(struct nvemu_ctrl *ctrl, uint32_t aqa)
{
	ctrl->aqa = aqa & 0x0fff0fff;
}

void nvemu_ctrl_set_admin_queue_addr(struct nvemu_ctrl *ctrl, uint64_t asq, uint64_t acq)
{
	/* Bits 11:0 are reserved: the queues start on a 4 KiB boundary at least. */
	ctrl->asq = asq & ~0xfffull;
	ctrl->acq = acq & ~0xfffull;
}

void nvemu_ctrl_set_intms(struct nvemu_ctrl *ctrl, uint32_t intms)
{
	ctrl->intms = intms;
}

void nvemu_ctrl_fatal(struct nvemu_ctrl *ctrl)
{
	ctrl->csts |= CSTS_CFS;
}

void nvemu_ctrl_reset_regs(struct nvemu_ctrl *ctrl)
{
	ctrl->cc = 0;
	ctrl->csts &= ~CSTS_CFS;
}

void nvemu_ctrl_set_host(struct nvemu_ctrl *ctrl, const char *hostnqn, const uint8_t hostid[16])
{
	size_t n = strnlen(hostnqn, NVEMU_NQN_MAX);

	memcpy(ctrl->hostnqn, hostnqn, n);
	ctrl->hostnqn[n] = 0;
	memcpy(ctrl->hostid, hostid, sizeof(ctrl->hostid));
	nvemu_ana_ctrl_mask(ctrl);
}

/* ---- keep alive: the transport's timer asks, the engine decides */

/* A little slack over KATO for hosts whose timers run late. */
#define KATO_SLACK_NS 500000000ull

void nvemu_ctrl_keep_alive(struct nvemu_ctrl *ctrl)
{
	ctrl->last_keep_alive_ns = nvemu_now_ns();
}

void nvemu_ctrl_set_kato(struct nvemu_ctrl *ctrl, uint32_t kato_ms)
{
	ctrl->feat.kato = kato_ms;
	nvemu_ctrl_keep_alive(ctrl);
}

bool nvemu_ctrl_check_keep_alive(struct nvemu_ctrl *ctrl, uint64_t now_ns)
{
	uint64_t last = ctrl->last_keep_alive_ns;

	if (!ctrl->feat.kato || now_ns <= last ||
	    now_ns - last <= (uint64_t)ctrl->feat.kato * 1000000ull + KATO_SLACK_NS)
		return false;
	if (ctrl->tops && ctrl->tops->kato_expired)
		ctrl->tops->kato_expired(ctrl);
	return true;
}

/* ---- suspend / resume */

unsigned nvemu_ctrl_inflight(const struct nvemu_ctrl *ctrl)
{
	return ctrl->inflight - ctrl->nr_aer + ctrl->internal_ops;
}

unsigned nvemu_ctrl_suspend(struct nvemu_ctrl *ctrl, bool admin_only)
{
	ctrl->suspended = true;
	ctrl->suspend_admin_only = admin_only;
	return nvemu_ctrl_inflight(ctrl);
}

void nvemu_ctrl_abort_inflight(struct nvemu_ctrl *ctrl)
{
	struct nvemu_req *r;

	LIST_FOREACH(r, &ctrl->inflight_reqs, inflight_link)
		if (r->cmd.opc != nvme_admin_async_event || r->sqid)
			r->abort_status = NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ);
	/* A fused first half would wait for its second forever. */
	nvemu_fused_ctrl_reset(ctrl);
}

void nvemu_ctrl_resume(struct nvemu_ctrl *ctrl)
{
	struct nvemu_req_queue held = STAILQ_HEAD_INITIALIZER(held);
	struct nvemu_req *r;

	ctrl->suspended = false;
	/* Detached first: running one may submit, and hold, more. */
	STAILQ_CONCAT(&held, &ctrl->held);
	while ((r = STAILQ_FIRST(&held))) {
		STAILQ_REMOVE_HEAD(&held, queue_link);
		inflight_add(ctrl, r);
		dispatch(ctrl, r);
	}
}

void nvemu_ctrl_fail_held(struct nvemu_ctrl *ctrl, uint16_t status)
{
	while (!STAILQ_EMPTY(&ctrl->held)) {
		struct nvemu_req *r = STAILQ_FIRST(&ctrl->held);

		STAILQ_REMOVE_HEAD(&ctrl->held, queue_link);
		inflight_add(ctrl, r);
		nvemu_req_complete(r, status);
	}
}

void nvemu_ctrl_when_idle(struct nvemu_ctrl *ctrl, void (*fn)(void *arg), void *arg)
{
	if (!fn || !nvemu_ctrl_inflight(ctrl)) {
		ctrl->idle_fn = NULL;
		if (fn)
			fn(arg);
		return;
	}
	ctrl->idle_fn = fn;
	ctrl->idle_arg = arg;
}

bool nvemu_ctrl_is_suspended(const struct nvemu_ctrl *ctrl)
{
	return ctrl->suspended;
}

/* ---- transport binding */

int nvemu_ctrl_bind_transport(struct nvemu_ctrl *ctrl, const struct nvemu_transport_ops *ops,
			      void *priv, struct nvemu_error *err)
{
	if (ops && ctrl->tops)
		return nvemu_error_set(err, -EBUSY,
				       "controller %u is already bound to transport %s",
				       ctrl->cntlid, ctrl->tops->name);
	ctrl->tops = ops;
	ctrl->tpriv = ops ? priv : NULL;
	return 0;
}

void *nvemu_ctrl_transport_priv(struct nvemu_ctrl *ctrl)
{
	return ctrl->tpriv;
}
