/* SPDX-License-Identifier: MIT */
/*
 * Get Features / Set Features (NVMe Base 2.0, 5.27 and 5.27.1) and the
 * health checks that turn temperature thresholds and injected critical
 * warnings into SMART/Health asynchronous events.
 *
 * Every value lives in a struct nvemu_features: ctrl->feat is current,
 * ctrl->feat_saved is what a controller reset restores (saved values of the
 * saveable features, defaults of the others). Get Features reads current,
 * defaults (built on the fly) or saved through the same code.
 */
#include <stdlib.h>

#include "nvemu-internal.h"
#include "reservations.h"

#define SEL_CURRENT   0
#define SEL_DEFAULT   1
#define SEL_SAVED     2
#define SEL_SUPPORTED 3

/* Supported capabilities (Get Features SEL=3, Completion Dword 0) */
#define CAP_SAVE   (1u << 0)
#define CAP_NS	   (1u << 1)
#define CAP_CHANGE (1u << 2)

#define F_SUP	     (1u << 8) /* implemented */
#define F_NO_FABRICS (1u << 9) /* PCIe only: Invalid Field on fabrics */

/*
 * FID                          saveable  scope       notes
 * 01h Arbitration              yes       controller  stored; only RR is offered
 * 02h Power Management         yes       controller  one power state: PS must be 0
 * 04h Temperature Threshold    yes       controller  re-evaluates health on Set
 * 05h Error Recovery           yes       controller  DULBE unsupported (must be 0)
 * 06h Volatile Write Cache     yes       controller  WCE=0: flush, then every write is FUA
 * 07h Number of Queues         no        controller  only before I/O queues exist
 * 08h Interrupt Coalescing     yes       controller  PCIe only
 * 09h Interrupt Vector Config  yes       controller  PCIe only
 * 0Ah Write Atomicity Normal   yes       controller
 * 0Bh Async Event Config       yes       controller  unsupported bits dropped
 * 0Eh Timestamp                no        controller  runs from the last Set
 * 0Fh Keep Alive Timer         no        controller  KATO in ms, passed to the transport
 * 81h Host Identifier          no        controller  64- or 128-bit, data buffer
 */
static const uint16_t feat_caps[256] = {
	[NVME_FEAT_FID_ARBITRATION] = F_SUP | CAP_SAVE | CAP_CHANGE,
	[NVME_FEAT_FID_POWER_MGMT] = F_SUP | CAP_SAVE | CAP_CHANGE,
	[NVME_FEAT_FID_TEMP_THRESH] = F_SUP | CAP_SAVE | CAP_CHANGE,
	[NVME_FEAT_FID_ERR_RECOVERY] = F_SUP | CAP_SAVE | CAP_CHANGE,
	[NVME_FEAT_FID_VOLATILE_WC] = F_SUP | CAP_SAVE | CAP_CHANGE,
	[NVME_FEAT_FID_NUM_QUEUES] = F_SUP | CAP_CHANGE,
	[NVME_FEAT_FID_IRQ_COALESCE] = F_SUP | F_NO_FABRICS | CAP_SAVE | CAP_CHANGE,
	[NVME_FEAT_FID_IRQ_CONFIG] = F_SUP | F_NO_FABRICS | CAP_SAVE | CAP_CHANGE,
	[NVME_FEAT_FID_WRITE_ATOMIC] = F_SUP | CAP_SAVE | CAP_CHANGE,
	[NVME_FEAT_FID_ASYNC_EVENT] = F_SUP | CAP_SAVE | CAP_CHANGE,
	[NVME_FEAT_FID_TIMESTAMP] = F_SUP | CAP_CHANGE,
	[NVME_FEAT_FID_KATO] = F_SUP | CAP_CHANGE,
	[NVME_FEAT_FID_HOST_ID] = F_SUP | CAP_CHANGE,
	[NVME_FEAT_FID_RESV_MASK] = F_SUP | CAP_NS | CAP_CHANGE,	 /* reservations.c */
	[NVME_FEAT_FID_RESV_PERSIST] = F_SUP | CAP_NS | CAP_CHANGE, /* reservations.c */
};

#define TEMP_OVER_DEFAULT 343 /* 70 C */
#define TMPSEL_ALL	  0xf
#define THSEL_OVER	  0
#define THSEL_UNDER	  1

#define ARB_MASK      0xffffff07u /* HPW, MPW, LPW, AB */
#define PM_PS_MASK    0x1fu
#define PM_WH_MASK    0xe0u
#define ERR_DULBE     (1u << 16)
#define IVC_CD	      (1u << 16)
#define AEC_SUPPORTED (0xffu | 1u << 8 | 1u << 9) /* SMART, NS attr, FW activation */
#define AEC_ANA	      (1u << 11)		    /* ANA change, with ANA reporting */
#define TS_MASK	      ((1ull << 48) - 1)

static const uint16_t invalid_field = NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;

static bool fabrics(const struct nvemu_ctrl *ctrl)
{
	return ctrl->tops && ctrl->tops->fabrics;
}

/* Interrupt vectors the Interrupt Vector Configuration feature covers. */
static unsigned nr_vectors(const struct nvemu_ctrl *ctrl)
{
	unsigned n = ctrl->p.num_io_queues + 1u;

	return n < NVEMU_IV_MAX ? n : NVEMU_IV_MAX;
}

static void feat_defaults(const struct nvemu_ctrl *ctrl, struct nvemu_features *f)
{
	unsigned lim = nvemu_ctrl_io_queue_limit(ctrl);
	uint32_t nq = lim ? lim - 1u : 0;

	memset(f, 0, sizeof(*f));
	for (unsigned i = 0; i < NVEMU_TEMP_SENSORS; i++)
		f->temp_over[i] = TEMP_OVER_DEFAULT;
	f->volatile_wc = 1;
	f->num_queues = nq | nq << 16;
	/* Coalescing never applies to the admin queue's vector. */
	f->irq_config[0] = IVC_CD;
}

void nvemu_features_init(struct nvemu_ctrl *ctrl)
{
	feat_defaults(ctrl, &ctrl->feat);
	ctrl->feat.ts_ns = nvemu_now_ns();
	ctrl->feat_saved = ctrl->feat;
}

/* ---- health */

void nvemu_ctrl_check_health(struct nvemu_ctrl *ctrl)
{
	const struct nvemu_health *h = &ctrl->subsys->health;
	struct nvemu_features *f = &ctrl->feat;
	uint8_t crit = h->critical_warning;
	uint8_t fresh = crit & ~f->crit_seen;
	bool over = h->temperature_k >= f->temp_over[0];
	bool under = f->temp_under[0] && h->temperature_k <= f->temp_under[0];
	bool temp = over || under;
	bool spare = h->avail_spare < h->spare_thresh;

	ctrl->temp_warning = temp ? NVME_SMART_CRIT_TEMPERATURE : 0;
	if ((temp && !f->temp_crossed) || (fresh & NVME_SMART_CRIT_TEMPERATURE))
		nvemu_ctrl_add_event(ctrl, NVME_AER_SMART, NVME_AER_SMART_TEMPERATURE_THRESHOLD,
				     NVME_LOG_LID_SMART);
	if ((spare && !f->spare_low) || (fresh & NVME_SMART_CRIT_SPARE))
		nvemu_ctrl_add_event(ctrl, NVME_AER_SMART, NVME_AER_SMART_SPARE_THRESHOLD,
				     NVME_LOG_LID_SMART);
	if (fresh & ~(NVME_SMART_CRIT_TEMPERATURE | NVME_SMART_CRIT_SPARE))
		nvemu_ctrl_add_event(ctrl, NVME_AER_SMART, NVME_AER_SMART_SUBSYSTEM_RELIABILITY,
				     NVME_LOG_LID_SMART);
	f->temp_crossed = temp;
	f->spare_low = spare;
	/* Cleared bits re-arm, so injecting them again is reported again. */
	f->crit_seen = crit;
}

/* ---- Get Features */

static uint64_t timestamp_ms(const struct nvemu_features *f)
{
	uint64_t now = nvemu_now_ns();
	uint64_t elapsed = now > f->ts_ns ? (now - f->ts_ns) / 1000000u : 0;

	return (f->ts_ms + elapsed) & TS_MASK;
}

/*
 * Value of fid in f: dw0, and for the features with a data structure the
 * bytes in data/len. Returns a status.
 */
/* The features whose value is a data buffer (Timestamp, Host Identifier); dw0 is 0. */
static uint16_t feat_read_data(const struct nvemu_ctrl *ctrl, const struct nvemu_features *f,
			       uint8_t fid, uint32_t cdw11, uint32_t *dw0, uint8_t *data,
			       uint32_t *len)
{
	bool ext = cdw11 & 1;

	if (fid == NVME_FEAT_FID_TIMESTAMP) {
		/* The defaults have no start time: they read as 0. */
		uint64_t ts = f->ts_ns ? timestamp_ms(f) : f->ts_ms;

		for (int i = 0; i < 6; i++)
			data[i] = (uint8_t)(ts >> (8 * i));
		data[6] = f->ts_set ? 1u << 1 : 0; /* Timestamp Origin, Synch = 0 */
		data[7] = 0;
		*len = 8;
	} else {
		*len = ext ? 16 : 8;
		if (fabrics(ctrl)) {
			/* Always the 128-bit identifier the host gave in Connect. */
			if (!ext)
				return invalid_field;
			memcpy(data, f == &ctrl->feat ? ctrl->hostid : f->host_id, 16);
		} else {
			memcpy(data, f->host_id, *len);
		}
	}
	*dw0 = 0;
	return 0;
}

static uint16_t feat_read(const struct nvemu_ctrl *ctrl, const struct nvemu_features *f,
			  uint8_t fid, uint32_t cdw11, uint32_t *dw0, uint8_t *data, uint32_t *len)
{
	uint32_t v = 0;

	*len = 0;
	switch (fid) {
	case NVME_FEAT_FID_ARBITRATION:
		v = f->arbitration;
		break;
	case NVME_FEAT_FID_POWER_MGMT:
		v = f->power_mgmt;
		break;
	case NVME_FEAT_FID_TEMP_THRESH: {
		uint32_t tmpsel = (cdw11 >> NVME_FEAT_TT_TMPSEL_SHIFT) & NVME_FEAT_TT_TMPSEL_MASK;
		uint32_t thsel = (cdw11 >> NVME_FEAT_TT_THSEL_SHIFT) & NVME_FEAT_TT_THSEL_MASK;

		if (tmpsel >= NVEMU_TEMP_SENSORS || thsel > THSEL_UNDER)
			return invalid_field;
		v = thsel == THSEL_OVER ? f->temp_over[tmpsel] : f->temp_under[tmpsel];
		v |= tmpsel << NVME_FEAT_TT_TMPSEL_SHIFT | thsel << NVME_FEAT_TT_THSEL_SHIFT;
		break;
	}
	case NVME_FEAT_FID_ERR_RECOVERY:
		v = f->err_recovery;
		break;
	case NVME_FEAT_FID_VOLATILE_WC:
		v = f->volatile_wc;
		break;
	case NVME_FEAT_FID_NUM_QUEUES:
		v = f->num_queues;
		break;
	case NVME_FEAT_FID_IRQ_COALESCE:
		v = f->irq_coalesce;
		break;
	case NVME_FEAT_FID_IRQ_CONFIG: {
		uint32_t iv = cdw11 & 0xffff;

		if (iv >= nr_vectors(ctrl))
			return invalid_field;
		v = iv | (f->irq_config[iv] & IVC_CD);
		break;
	}
	case NVME_FEAT_FID_WRITE_ATOMIC:
		v = f->write_atomic;
		break;
	case NVME_FEAT_FID_ASYNC_EVENT:
		v = f->async_event_cfg;
		break;
	case NVME_FEAT_FID_KATO:
		v = f->kato;
		break;
	case NVME_FEAT_FID_TIMESTAMP:
	case NVME_FEAT_FID_HOST_ID:
		return feat_read_data(ctrl, f, fid, cdw11, dw0, data, len);
	default:
		return invalid_field;
	}
	*dw0 = v;
	return 0;
}

uint32_t nvemu_feature_effects(const struct nvemu_ctrl *ctrl, uint8_t fid)
{
	uint16_t caps = feat_caps[fid];
	uint32_t e;

	if (!(caps & F_SUP) || ((caps & F_NO_FABRICS) && fabrics(ctrl)))
		return 0;
	/* Every implemented feature is per controller. */
	e = NVME_FID_SUPPORTED_EFFECTS_FSUPP |
	    (uint32_t)NVME_FID_SUPPORTED_EFFECTS_SCOPE_CTRL << NVME_FID_SUPPORTED_EFFECTS_SCOPE_SHIFT;
	/* Number of Queues changes what the controller offers the host. */
	if (fid == NVME_FEAT_FID_NUM_QUEUES)
		e |= NVME_FID_SUPPORTED_EFFECTS_CCC;
	return e;
}

void nvemu_execute_get_features(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10), cdw11 = le32toh(req->cmd.cdw11);
	uint8_t fid = cdw10 & 0xff, sel = (cdw10 >> 8) & 0x7;
	uint16_t caps = feat_caps[fid];
	struct nvemu_features defaults;
	const struct nvemu_features *f;
	uint8_t data[16];
	uint32_t dw0 = 0, len = 0;
	uint16_t st;

	if (!(caps & F_SUP) || ((caps & F_NO_FABRICS) && fabrics(ctrl)) ||
	    (le32toh(req->cmd.cdw14) & 0x7f)) {
		nvemu_req_complete(req, invalid_field);
		return;
	}
	if (fid == NVME_FEAT_FID_RESV_MASK || fid == NVME_FEAT_FID_RESV_PERSIST) {
		nvemu_resv_feature(req, true);
		return;
	}
	switch (sel) {
	case SEL_CURRENT:
		f = &ctrl->feat;
		break;
	case SEL_SAVED:
		if (caps & CAP_SAVE) {
			f = &ctrl->feat_saved;
			break;
		}
		/* A feature that is not saveable reports its default. */
		/* fallthrough */
	case SEL_DEFAULT:
		feat_defaults(ctrl, &defaults);
		f = &defaults;
		break;
	case SEL_SUPPORTED:
		req->cqe.dw0 = htole32(caps & (CAP_SAVE | CAP_NS | CAP_CHANGE));
		nvemu_req_complete(req, 0);
		return;
	default:
		nvemu_req_complete(req, invalid_field);
		return;
	}
	st = feat_read(ctrl, f, fid, cdw11, &dw0, data, &len);
	if (!st && len)
		st = nvemu_req_to_host(req, data, len);
	if (!st)
		req->cqe.dw0 = htole32(dw0);
	nvemu_req_complete(req, st);
}

/* ---- Set Features */

static bool io_queues_exist(const struct nvemu_ctrl *ctrl)
{
	for (unsigned q = 1; q <= ctrl->p.num_io_queues; q++)
		if (ctrl->sqs[q].valid || ctrl->cqs[q].valid)
			return true;
	return false;
}

static uint16_t set_temp_thresh(struct nvemu_features *f, uint32_t cdw11)
{
	uint16_t tmpth = cdw11 & NVME_FEAT_TT_TMPTH_MASK;
	uint32_t tmpsel = (cdw11 >> NVME_FEAT_TT_TMPSEL_SHIFT) & NVME_FEAT_TT_TMPSEL_MASK;
	uint32_t thsel = (cdw11 >> NVME_FEAT_TT_THSEL_SHIFT) & NVME_FEAT_TT_THSEL_MASK;
	unsigned first = tmpsel, last = tmpsel;

	if (thsel > THSEL_UNDER)
		return invalid_field;
	if (tmpsel == TMPSEL_ALL) {
		first = 0;
		last = NVEMU_TEMP_SENSORS - 1;
	} else if (tmpsel >= NVEMU_TEMP_SENSORS) {
		return invalid_field;
	}
	for (unsigned i = first; i <= last; i++) {
		if (thsel == THSEL_OVER)
			f->temp_over[i] = tmpth;
		else
			f->temp_under[i] = tmpth;
	}
	return 0;
}

static uint16_t set_num_queues(struct nvemu_ctrl *ctrl, uint32_t cdw11, uint32_t *dw0)
{
	uint32_t nsqr = cdw11 & 0xffff, ncqr = cdw11 >> 16;
	unsigned lim = nvemu_ctrl_io_queue_limit(ctrl);
	uint32_t max = lim ? lim - 1u : 0;

	if (nsqr == 0xffff || ncqr == 0xffff)
		return invalid_field;
	/* Only during initialization, before any I/O queue is created. */
	if (io_queues_exist(ctrl))
		return NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR);
	if (nsqr > max)
		nsqr = max;
	if (ncqr > max)
		ncqr = max;
	ctrl->feat.num_queues = nsqr | ncqr << 16;
	ctrl->feat.num_queues_set = true;
	*dw0 = ctrl->feat.num_queues;
	return 0;
}

static uint16_t set_timestamp(struct nvemu_req *req)
{
	struct nvemu_features *f = &req->ctrl->feat;
	uint8_t data[8];
	uint64_t ts = 0;
	uint16_t st = nvemu_req_from_host(req, data, sizeof(data));

	if (st)
		return st;
	for (int i = 0; i < 6; i++)
		ts |= (uint64_t)data[i] << (8 * i);
	f->ts_ms = ts;
	f->ts_ns = nvemu_now_ns();
	f->ts_set = true;
	return 0;
}

static uint16_t set_host_id(struct nvemu_req *req, uint32_t cdw11)
{
	struct nvemu_features *f = &req->ctrl->feat;
	bool ext = cdw11 & 1;
	uint8_t id[16] = {0};
	uint16_t st;

	/* On fabrics the Host Identifier comes with Connect; a registered host keeps its own. */
	if (fabrics(req->ctrl) || nvemu_resv_ctrl_registered(req->ctrl))
		return NVEMU_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR);
	st = nvemu_req_from_host(req, id, ext ? 16 : 8);
	if (st)
		return st;
	memcpy(f->host_id, id, sizeof(id));
	f->host_id_ext = ext;
	f->host_id_set = true;
	return 0;
}

/* Validate cdw11 for a dword-valued feature and store it in f. */
static uint16_t feat_write(const struct nvemu_ctrl *ctrl, struct nvemu_features *f, uint8_t fid,
			   uint32_t cdw11)
{
	switch (fid) {
	case NVME_FEAT_FID_ARBITRATION:
		f->arbitration = cdw11 & ARB_MASK;
		return 0;
	case NVME_FEAT_FID_POWER_MGMT:
		if (cdw11 & PM_PS_MASK) /* NPSS = 0: only power state 0 exists */
			return invalid_field;
		f->power_mgmt = cdw11 & PM_WH_MASK;
		return 0;
	case NVME_FEAT_FID_TEMP_THRESH:
		return set_temp_thresh(f, cdw11);
	case NVME_FEAT_FID_ERR_RECOVERY:
		/* No namespace reports NSFEAT.DULBE, so the bit must stay clear. */
		if (cdw11 & ERR_DULBE)
			return invalid_field;
		f->err_recovery = cdw11 & NVME_FEAT_ERROR_RECOVERY_TLER_MASK;
		return 0;
	case NVME_FEAT_FID_VOLATILE_WC:
		f->volatile_wc = cdw11 & 1;
		return 0;
	case NVME_FEAT_FID_IRQ_COALESCE:
		f->irq_coalesce = cdw11 & 0xffff;
		return 0;
	case NVME_FEAT_FID_IRQ_CONFIG: {
		uint32_t iv = cdw11 & 0xffff;

		if (iv >= nr_vectors(ctrl))
			return invalid_field;
		f->irq_config[iv] = cdw11 & IVC_CD;
		return 0;
	}
	case NVME_FEAT_FID_WRITE_ATOMIC:
		f->write_atomic = cdw11 & 1;
		return 0;
	case NVME_FEAT_FID_ASYNC_EVENT:
		f->async_event_cfg =
			cdw11 & (AEC_SUPPORTED | (ctrl->subsys->ana_reporting ? AEC_ANA : 0));
		return 0;
	case NVME_FEAT_FID_KATO:
		f->kato = cdw11;
		return 0;
	default:
		return invalid_field;
	}
}

/*
 * Turning the volatile write cache off: what earlier writes left in it must
 * be durable too before the command completes, so every attached namespace
 * is flushed first. The flushes hold their namespaces.
 */
struct vwc_flush {
	unsigned nr;
	struct {
		struct nvemu_ns *ns;
		struct nvemu_bio bio;
	} e[];
};

static void vwc_flush_release(struct nvemu_req *req)
{
	struct vwc_flush *vf = req->cmd_priv;

	for (unsigned i = 0; i < vf->nr; i++)
		nvemu_ns_put(vf->e[i].ns);
}

static void vwc_flush_put(struct nvemu_req *req)
{
	if (--req->bio_pending)
		return;
	nvemu_req_complete(
		req, req->bio_err ? nvemu_bio_errno_to_status(NVEMU_BIO_FLUSH, req->bio_err) : 0);
}

static void vwc_flush_done(struct nvemu_bio *bio, int err)
{
	struct nvemu_req *req = bio->private;

	if (err && !req->bio_err)
		req->bio_err = err;
	vwc_flush_put(req);
}

/* Returns a status, or 0 when the flushes complete the command. */
static uint16_t vwc_flush_start(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	struct vwc_flush *vf = calloc(1, sizeof(*vf) + ctrl->nr_ns * sizeof(vf->e[0]));

	if (!vf)
		return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
	req->cmd_priv = vf;
	req->cmd_priv_release = vwc_flush_release;
	req->bio_pending = 1; /* held until every flush is submitted */
	req->bio_err = 0;
	for (unsigned i = 0; i < ctrl->nr_ns; i++) {
		struct nvemu_bio *bio = &vf->e[vf->nr].bio;
		int rc;

		vf->e[vf->nr++].ns = nvemu_ns_get(ctrl->ns[i]);
		bio->op = NVEMU_BIO_FLUSH;
		bio->end_io = vwc_flush_done;
		bio->private = req;
		req->bio_pending++;
		rc = nvemu_bdev_submit(ctrl->ns[i]->bdev, bio);
		if (rc) {
			if (!req->bio_err)
				req->bio_err = rc;
			req->bio_pending--;
		}
	}
	vwc_flush_put(req);
	return 0;
}

void nvemu_execute_set_features(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10), cdw11 = le32toh(req->cmd.cdw11);
	uint32_t nsid = le32toh(req->cmd.nsid), dw0 = 0;
	uint8_t fid = cdw10 & 0xff;
	bool save = cdw10 >> 31;
	uint16_t caps = feat_caps[fid];
	uint16_t st;

	if (!(caps & F_SUP) || ((caps & F_NO_FABRICS) && fabrics(ctrl)) ||
	    (le32toh(req->cmd.cdw14) & 0x7f)) {
		nvemu_req_complete(req, invalid_field);
		return;
	}
	if (fid == NVME_FEAT_FID_RESV_MASK || fid == NVME_FEAT_FID_RESV_PERSIST) {
		nvemu_resv_feature(req, false);
		return;
	}
	/* Every feature here is controller-wide: an NSID other than 0/all is refused. */
	if (nsid && nsid != NVEMU_NSID_ALL) {
		st = nsid > ctrl->subsys->nn ? NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR
					     : NVEMU_SC_CMD(NVME_SC_FEATURE_NOT_PER_NS) | NVEMU_DNR;
		nvemu_req_complete(req, st);
		return;
	}
	if (save && !(caps & CAP_SAVE)) {
		nvemu_req_complete(req, NVEMU_SC_CMD(NVME_SC_FEATURE_NOT_SAVEABLE) | NVEMU_DNR);
		return;
	}
	switch (fid) {
	case NVME_FEAT_FID_NUM_QUEUES:
		st = set_num_queues(ctrl, cdw11, &dw0);
		break;
	case NVME_FEAT_FID_TIMESTAMP:
		st = set_timestamp(req);
		break;
	case NVME_FEAT_FID_HOST_ID:
		st = set_host_id(req, cdw11);
		break;
	case NVME_FEAT_FID_VOLATILE_WC:
		if ((ctrl->feat.volatile_wc & 1) && !(cdw11 & 1)) {
			uint32_t cur = ctrl->feat.volatile_wc, saved = ctrl->feat_saved.volatile_wc;

			/* First, so writes from now on are write-through while the flush runs. */
			feat_write(ctrl, &ctrl->feat, fid, cdw11);
			if (save)
				feat_write(ctrl, &ctrl->feat_saved, fid, cdw11);
			st = vwc_flush_start(req);
			if (!st)
				return;		      /* the last flush completes the command */
			ctrl->feat.volatile_wc = cur; /* failed: nothing changes */
			ctrl->feat_saved.volatile_wc = saved;
			break;
		}
		/* fallthrough */
	default:
		st = feat_write(ctrl, &ctrl->feat, fid, cdw11);
		if (!st && save)
			st = feat_write(ctrl, &ctrl->feat_saved, fid, cdw11);
		if (!st && fid == NVME_FEAT_FID_TEMP_THRESH)
			nvemu_ctrl_check_health(ctrl);
		/* The new timeout counts from now; a transport may re-arm a timer. */
		if (!st && fid == NVME_FEAT_FID_KATO) {
			nvemu_ctrl_keep_alive(ctrl);
			if (ctrl->tops && ctrl->tops->set_kato)
				ctrl->tops->set_kato(ctrl, ctrl->feat.kato);
		}
		break;
	}
	if (!st)
		req->cqe.dw0 = htole32(dw0);
	nvemu_req_complete(req, st);
}
