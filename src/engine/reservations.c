/* SPDX-License-Identifier: MIT */
/*
 * Reservations (NVMe Base 2.0, 8.19; the commands in the NVM Command Set
 * chapter): Register, Acquire, Release, Report, the access rules every
 * I/O command is checked against, and the Reservation Notification log
 * with its mask feature. A registration belongs to a host (its Host
 * Identifier), not to a controller, so it holds across every controller
 * and transport that host reaches the namespace through.
 */
#include <errno.h>
#include <stdlib.h>

#include "reservations.h"

#define SC_CONFLICT	 (NVEMU_SC_GENERIC(NVME_SC_RESERVATION_CONFLICT) | NVEMU_DNR)
#define SC_INVALID_FIELD (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define SC_HOSTID_FORMAT (NVEMU_SC_GENERIC(NVME_SC_HOSTID_FORMAT) | NVEMU_DNR)
#define SC_NOMEM	 NVEMU_SC_GENERIC(NVME_SC_INTERNAL)

#define CDW10_IEKEY  (1u << 3)
#define RTYPE_MAX    6
#define CNTLID_NONE  0xffffu
#define AER_IO_CMD   6 /* Asynchronous Event Type: I/O Command specific status */
#define AEI_RESV_LOG 0 /* Reservation Log Page Available */

enum { REG_REGISTER, REG_UNREGISTER, REG_REPLACE };
enum { ACQ_ACQUIRE, ACQ_PREEMPT, ACQ_PREEMPT_ABORT };
enum { REL_RELEASE, REL_CLEAR };

/* ---- state */

struct nvemu_resv *nvemu_resv_get(struct nvemu_ns *ns)
{
	if (!ns->resv) {
		ns->resv = calloc(1, sizeof(*ns->resv));
		if (ns->resv)
			STAILQ_INIT(&ns->resv->waiting);
	}
	return ns->resv;
}

struct nvemu_resv_ctrl *nvemu_resv_ctrl_get(struct nvemu_ctrl *ctrl)
{
	if (!ctrl->resv)
		ctrl->resv = calloc(1, sizeof(*ctrl->resv));
	return ctrl->resv;
}

void nvemu_resv_ns_free(struct nvemu_ns *ns)
{
	if (!ns->resv)
		return;
	free(ns->resv->ptpl_file);
	free(ns->resv);
	ns->resv = NULL;
}

void nvemu_resv_ctrl_free(struct nvemu_ctrl *ctrl)
{
	if (!ctrl->resv)
		return;
	free(ctrl->resv->fused_first);
	free(ctrl->resv);
	ctrl->resv = NULL;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Fabrics hosts give a 128-bit identifier with Connect; PCIe hosts set
 * one with Set Features Host Identifier. A controller whose host never
 * said who it is is a host of its own.
 */
static void ctrl_host(const struct nvemu_ctrl *ctrl, struct nvemu_resv_host *h)
{
	memset(h, 0, sizeof(*h));
	if (ctrl->tops && ctrl->tops->fabrics) {
		memcpy(h->id, ctrl->hostid, 16);
		h->ext = true;
	} else if (ctrl->feat.host_id_set) {
		h->ext = ctrl->feat.host_id_ext;
		memcpy(h->id, ctrl->feat.host_id, h->ext ? 16 : 8);
	}
	if (is_zero(h->id, 16)) {
		h->anon = ctrl->cntlid;
		h->ext = false;
	}
}

static bool host_eq(const struct nvemu_resv_host *a, const struct nvemu_resv_host *b)
{
	return a->anon == b->anon && a->ext == b->ext && !memcmp(a->id, b->id, 16);
}

static int find_reg(const struct nvemu_resv *r, const struct nvemu_resv_host *h)
{
	for (unsigned i = 0; i < r->nr_regs; i++)
		if (host_eq(&r->regs[i].host, h))
			return (int)i;
	return -1;
}

static bool all_registrants(uint8_t rtype)
{
	return rtype == NVME_RESERVATION_RTYPE_WEAR || rtype == NVME_RESERVATION_RTYPE_EAAR;
}

static bool is_holder(const struct nvemu_resv *r, const struct nvemu_resv_host *h)
{
	if (!r->rtype)
		return false;
	if (all_registrants(r->rtype))
		return find_reg(r, h) >= 0;
	return host_eq(&r->holder, h);
}

/* ---- notifications */

static uint8_t ctrl_mask(struct nvemu_ctrl *ctrl, uint32_t nsid)
{
	struct nvemu_resv_ctrl *rc = ctrl->resv;

	if (!rc)
		return 0;
	for (unsigned i = 0; i < rc->nr_masks; i++)
		if (rc->masks[i].nsid == nsid)
			return rc->masks[i].mask;
	return 0;
}

static void notify_ctrl(struct nvemu_ctrl *ctrl, uint32_t nsid, uint8_t type)
{
	struct nvemu_resv_ctrl *rc;

	if (ctrl_mask(ctrl, nsid) & (1u << type))
		return;
	rc = nvemu_resv_ctrl_get(ctrl);
	if (!rc)
		return;
	/* A full queue drops the oldest page; the Log Page Count shows the gap. */
	if (rc->nr == NVEMU_RESV_MAX_NOTIFY) {
		rc->head = (rc->head + 1) % NVEMU_RESV_MAX_NOTIFY;
		rc->nr--;
	}
	if (++rc->lpc == UINT64_MAX)
		rc->lpc = 1; /* 0 means an empty page: the count skips it */
	rc->log[(rc->head + rc->nr) % NVEMU_RESV_MAX_NOTIFY] =
		(struct nvemu_resv_notice){rc->lpc, nsid, type};
	rc->nr++;
	nvemu_ctrl_add_event(ctrl, AER_IO_CMD, AEI_RESV_LOG, NVME_LOG_LID_RESERVATION);
}

/* Every controller of host h that has ns attached, except the one that acted. */
static void notify_host(struct nvemu_ns *ns, const struct nvemu_resv_host *h,
			const struct nvemu_ctrl *self, uint8_t type)
{
	struct nvemu_subsys *s = ns->subsys;

	for (unsigned i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_ctrl *c = s->ctrls[i];
		struct nvemu_resv_host ch;

		if (c == self || !nvemu_ctrl_find_ns(c, ns->nsid))
			continue;
		ctrl_host(c, &ch);
		if (host_eq(&ch, h))
			notify_ctrl(c, ns->nsid, type);
	}
}

/* Registrants other than host me. */
static void notify_others(struct nvemu_ns *ns, const struct nvemu_resv_host *me,
			  const struct nvemu_ctrl *self, uint8_t type)
{
	struct nvemu_resv *r = ns->resv;

	for (unsigned i = 0; i < r->nr_regs; i++)
		if (!host_eq(&r->regs[i].host, me))
			notify_host(ns, &r->regs[i].host, self, type);
}

void nvemu_resv_log(struct nvemu_ctrl *ctrl, void *buf, size_t *size)
{
	struct nvme_resv_notification_log *l = buf;
	struct nvemu_resv_ctrl *rc = ctrl->resv;

	memset(l, 0, sizeof(*l));
	*size = sizeof(*l);
	if (!rc || !rc->nr)
		return;
	l->lpc = htole64(rc->log[rc->head].lpc);
	l->rnlpt = rc->log[rc->head].type;
	l->nsid = htole32(rc->log[rc->head].nsid);
	rc->head = (rc->head + 1) % NVEMU_RESV_MAX_NOTIFY;
	rc->nr--;
	l->nalp = (uint8_t)(rc->nr > 255 ? 255 : rc->nr);
}

/*
 * ---- access rules (NVMe Base 2.1, Figure 646 "Command Behavior in the Presence of a
 * Reservation"): the write command group has Flush, the writes, and the admin commands
 * Format NVM, Namespace Attachment, Namespace Management and Sanitize.
 */

static bool opc_writes(uint8_t opc)
{
	switch (opc) {
	case nvme_cmd_flush:
	case nvme_cmd_write:
	case nvme_cmd_write_uncor:
	case nvme_cmd_write_zeroes:
	case nvme_cmd_dsm:
	case nvme_cmd_copy:
		return true;
	default:
		return false;
	}
}

static bool opc_is_resv(uint8_t opc)
{
	return opc == nvme_cmd_resv_register || opc == nvme_cmd_resv_report ||
	       opc == nvme_cmd_resv_acquire || opc == nvme_cmd_resv_release;
}

uint16_t nvemu_resv_check(struct nvemu_ctrl *ctrl, struct nvemu_ns *ns, uint8_t opc)
{
	struct nvemu_resv *r = ns->resv;
	struct nvemu_resv_host h;
	bool exclusive_access;

	if (!r || !r->rtype || opc_is_resv(opc))
		return 0;
	ctrl_host(ctrl, &h);
	if (is_holder(r, &h))
		return 0;
	exclusive_access = r->rtype == NVME_RESERVATION_RTYPE_EA ||
			   r->rtype == NVME_RESERVATION_RTYPE_EARO ||
			   r->rtype == NVME_RESERVATION_RTYPE_EAAR;
	if (!opc_writes(opc) && !exclusive_access)
		return 0; /* Write Exclusive: everyone reads */
	/* Registrants-only types let every registrant in; the single-holder types do not. */
	if (r->rtype != NVME_RESERVATION_RTYPE_WE && r->rtype != NVME_RESERVATION_RTYPE_EA &&
	    find_reg(r, &h) >= 0)
		return 0;
	return SC_CONFLICT;
}

/* A namespace an admin command of the write group writes: as a write from this host. */
static uint16_t admin_ns_check(struct nvemu_ctrl *ctrl, struct nvemu_ns *ns)
{
	return ns && ns->resv ? nvemu_resv_check(ctrl, ns, nvme_cmd_write) : 0;
}

uint16_t nvemu_resv_check_admin(struct nvemu_ctrl *ctrl, const struct nvemu_req *req)
{
	struct nvemu_subsys *s = ctrl->subsys;
	uint32_t nsid = req->cmd.nsid;
	uint16_t st = 0;

	switch (req->cmd.opc) {
	case nvme_admin_format_nvm:
		if (nsid != NVME_NSID_ALL)
			return admin_ns_check(ctrl, nvemu_subsys_ns(s, nsid));
		/* Every namespace attached to the controller is formatted. */
		for (unsigned i = 0; !st && i < ctrl->nr_ns; i++)
			st = admin_ns_check(ctrl, ctrl->ns[i]);
		return st;
	case nvme_admin_sanitize_nvm:
		/* The whole subsystem is erased. */
		for (unsigned i = 0; !st && i < s->nr_ns; i++)
			st = admin_ns_check(ctrl, s->ns[i]);
		return st;
	case nvme_admin_ns_attach:
		return admin_ns_check(ctrl, nvemu_subsys_ns(s, nsid));
	case nvme_admin_ns_mgmt:
		/* Delete (SEL 1) names a namespace; create does not. */
		if ((req->cmd.cdw10 & 0xf) != NVME_NS_MGMT_SEL_DELETE)
			return 0;
		if (nsid != NVME_NSID_ALL)
			return admin_ns_check(ctrl, nvemu_subsys_ns(s, nsid));
		for (unsigned i = 0; !st && i < s->nr_ns; i++)
			st = admin_ns_check(ctrl, s->ns[i]);
		return st;
	default:
		return 0;
	}
}

bool nvemu_resv_ctrl_registered(struct nvemu_ctrl *ctrl)
{
	struct nvemu_resv_host h;

	ctrl_host(ctrl, &h);
	for (unsigned i = 0; i < ctrl->nr_ns; i++)
		if (ctrl->ns[i]->resv && find_reg(ctrl->ns[i]->resv, &h) >= 0)
			return true;
	return false;
}

uint8_t nvemu_resv_rescap(struct nvemu_ns *ns)
{
	uint8_t cap = NVME_NS_RESCAP_WE | NVME_NS_RESCAP_EA | NVME_NS_RESCAP_WERO |
		      NVME_NS_RESCAP_EARO | NVME_NS_RESCAP_WEAR | NVME_NS_RESCAP_EAAR |
		      NVME_NS_RESCAP_IEK_13;

	if (ns->resv && ns->resv->ptpl_file)
		cap |= NVME_NS_RESCAP_PTPL;
	return cap;
}

/* ---- commands */

struct resv_keys {
	uint64_t crkey;
	uint64_t nkey; /* NRKEY (Register) or PRKEY (Acquire) */
};

static uint16_t read_keys(struct nvemu_req *req, struct resv_keys *k, uint32_t len)
{
	uint8_t b[16] = {0};
	uint16_t st = nvemu_req_from_host(req, b, len);

	if (st)
		return st;
	memcpy(&k->crkey, b, 8);
	memcpy(&k->nkey, b + 8, 8);
	k->crkey = le64toh(k->crkey);
	k->nkey = le64toh(k->nkey);
	return 0;
}

/* The namespace changed: a PTPL namespace saves it before the command completes. */
static uint16_t resv_done(struct nvemu_ns *ns)
{
	if (ns->resv->ptpl && nvemu_resv_ptpl_save(ns))
		return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
	return 0;
}

static void remove_reg(struct nvemu_resv *r, unsigned i)
{
	memmove(&r->regs[i], &r->regs[i + 1], (r->nr_regs - i - 1) * sizeof(r->regs[0]));
	r->nr_regs--;
	if (!r->nr_regs)
		r->rtype = 0;
}

/*
 * Host h's registration goes (Unregister): a single holder's reservation
 * goes with it; for all-registrants types it stays while anyone is left.
 */
static void unregister(struct nvemu_ns *ns, struct nvemu_ctrl *ctrl, unsigned i)
{
	struct nvemu_resv *r = ns->resv;
	struct nvemu_resv_host h = r->regs[i].host;
	bool released = false;
	uint8_t rtype = r->rtype;

	remove_reg(r, i);
	if (rtype && !all_registrants(rtype) && host_eq(&r->holder, &h)) {
		r->rtype = 0;
		released = true;
	}
	if (rtype && all_registrants(rtype) && !r->nr_regs)
		released = true;
	if (released && rtype != NVME_RESERVATION_RTYPE_WE && rtype != NVME_RESERVATION_RTYPE_EA)
		notify_others(ns, &h, ctrl, NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
}

void nvemu_execute_resv_register(struct nvemu_req *req)
{
	struct nvemu_ns *ns = req->ns;
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint8_t action = cdw10 & 7, cptpl = cdw10 >> 30;
	bool iekey = cdw10 & CDW10_IEKEY;
	struct nvemu_resv_host h;
	struct nvemu_resv *r;
	struct resv_keys k;
	uint16_t st;
	int i;

	if (action > REG_REPLACE || cptpl == 1 || (cdw10 & 0x3ffffff0u)) {
		nvemu_req_complete(req, SC_INVALID_FIELD);
		return;
	}
	st = read_keys(req, &k, 16);
	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	r = nvemu_resv_get(ns);
	if (!r) {
		nvemu_req_complete(req, SC_NOMEM);
		return;
	}
	/* Changing PTPL needs somewhere to persist to. */
	if (cptpl == 3 && !r->ptpl_file) {
		nvemu_req_complete(req, SC_INVALID_FIELD);
		return;
	}
	ctrl_host(req->ctrl, &h);
	i = find_reg(r, &h);
	switch (action) {
	case REG_REGISTER:
		if (i >= 0) {
			/* Registering again with the same key is a no-op that succeeds. */
			nvemu_req_complete(req, r->regs[i].rkey == k.nkey ? 0 : SC_CONFLICT);
			return;
		}
		if (r->nr_regs == NVEMU_RESV_MAX_REGS) {
			nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_CAP_EXCEEDED) | NVEMU_DNR);
			return;
		}
		r->regs[r->nr_regs++] = (struct nvemu_resv_reg){h, k.nkey};
		break;
	case REG_UNREGISTER:
		if (i < 0 || (!iekey && r->regs[i].rkey != k.crkey)) {
			nvemu_req_complete(req, SC_CONFLICT);
			return;
		}
		unregister(ns, req->ctrl, (unsigned)i);
		break;
	case REG_REPLACE:
		if (i < 0 || (!iekey && r->regs[i].rkey != k.crkey)) {
			nvemu_req_complete(req, SC_CONFLICT);
			return;
		}
		r->regs[i].rkey = k.nkey;
		break;
	}
	r->gen++;
	if (cptpl >= 2)
		r->ptpl = cptpl == 3;
	/* Clearing PTPL still rewrites the file, so a restart forgets the state. */
	st = (r->ptpl || cptpl == 2) && r->ptpl_file && nvemu_resv_ptpl_save(ns)
		     ? NVEMU_SC_GENERIC(NVME_SC_INTERNAL)
		     : 0;
	nvemu_req_complete(req, st);
}

/*
 * Host h lost its registration to a preempt: tell it, and for Preempt and
 * Abort end its commands on the namespace that are still running (each
 * completes with Command Abort Requested when its backend I/O ends).
 */
static void preempted(struct nvemu_ns *ns, struct nvemu_ctrl *ctrl, const struct nvemu_resv_host *h,
		      bool abort)
{
	struct nvemu_subsys *s = ns->subsys;

	notify_host(ns, h, ctrl, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
	for (unsigned i = 0; abort && i < s->nr_ctrls; i++) {
		struct nvemu_resv_host ch;
		struct nvemu_req *r;

		ctrl_host(s->ctrls[i], &ch);
		if (!host_eq(&ch, h))
			continue;
		LIST_FOREACH(r, &s->ctrls[i]->inflight_reqs, inflight_link)
		if (r->sqid && r->ns == ns && !r->abort_status)
			r->abort_status = NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ);
	}
}

/* Remove every registrant with key prkey but host me; true when one was. */
static bool preempt_key(struct nvemu_ns *ns, struct nvemu_ctrl *ctrl,
			const struct nvemu_resv_host *me, uint64_t prkey, bool abort)
{
	struct nvemu_resv *r = ns->resv;
	bool any = false;

	for (unsigned i = 0; i < r->nr_regs;) {
		struct nvemu_resv_host h = r->regs[i].host;

		if (r->regs[i].rkey != prkey || host_eq(&h, me)) {
			i++;
			continue;
		}
		memmove(&r->regs[i], &r->regs[i + 1], (r->nr_regs - i - 1) * sizeof(r->regs[0]));
		r->nr_regs--;
		preempted(ns, ctrl, &h, abort);
		any = true;
	}
	return any;
}

static void take(struct nvemu_resv *r, const struct nvemu_resv_host *h, uint8_t rtype)
{
	r->rtype = rtype;
	r->holder = *h;
}

static uint16_t preempt(struct nvemu_ns *ns, struct nvemu_ctrl *ctrl,
			const struct nvemu_resv_host *me, uint64_t prkey, uint8_t rtype, bool abort)
{
	struct nvemu_resv *r = ns->resv;
	uint64_t holder_key;
	int hi;

	if (!r->rtype)
		return preempt_key(ns, ctrl, me, prkey, abort) ? 0 : SC_CONFLICT;
	if (all_registrants(r->rtype)) {
		if (prkey) /* only the registrations with that key go */
			return preempt_key(ns, ctrl, me, prkey, abort) ? 0 : SC_CONFLICT;
		/* Key 0: every other registrant goes and the reservation is ours. */
		for (unsigned i = 0; i < r->nr_regs;) {
			struct nvemu_resv_host h = r->regs[i].host;

			if (host_eq(&h, me)) {
				i++;
				continue;
			}
			memmove(&r->regs[i], &r->regs[i + 1],
				(r->nr_regs - i - 1) * sizeof(r->regs[0]));
			r->nr_regs--;
			preempted(ns, ctrl, &h, abort);
		}
		take(r, me, rtype);
		return 0;
	}
	hi = find_reg(r, &r->holder);
	holder_key = hi >= 0 ? r->regs[hi].rkey : 0;
	if (hi >= 0 && prkey == holder_key) {
		bool was_me = host_eq(&r->holder, me);

		preempt_key(ns, ctrl, me, prkey, abort);
		take(r, me, rtype);
		if (!was_me)
			notify_others(ns, me, ctrl, NVME_RESV_NOTIFY_RNLPT_RESERVATION_PREEMPTED);
		return 0;
	}
	if (!prkey)
		return SC_INVALID_FIELD;
	return preempt_key(ns, ctrl, me, prkey, abort) ? 0 : SC_CONFLICT;
}

/*
 * Acquire and Release: the keys from the data, the namespace's state, and
 * the caller's registration, whose key must match (unless IEKEY).
 */
static uint16_t registered_caller(struct nvemu_req *req, bool iekey, uint32_t keylen,
				  struct resv_keys *k, struct nvemu_resv **rp,
				  struct nvemu_resv_host *h)
{
	uint16_t st = read_keys(req, k, keylen);
	int i;

	if (st)
		return st;
	*rp = nvemu_resv_get(req->ns);
	if (!*rp)
		return SC_NOMEM;
	ctrl_host(req->ctrl, h);
	i = find_reg(*rp, h);
	if (i < 0 || (!iekey && (*rp)->regs[i].rkey != k->crkey))
		return SC_CONFLICT;
	return 0;
}

void nvemu_execute_resv_acquire(struct nvemu_req *req)
{
	struct nvemu_ns *ns = req->ns;
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint8_t action = cdw10 & 7, rtype = (cdw10 >> 8) & 0xff;
	bool iekey = cdw10 & CDW10_IEKEY;
	struct nvemu_resv_host h;
	struct nvemu_resv *r;
	struct resv_keys k;
	uint16_t st;

	if (action > ACQ_PREEMPT_ABORT || !rtype || rtype > RTYPE_MAX || (cdw10 & 0xffff00f0u)) {
		nvemu_req_complete(req, SC_INVALID_FIELD);
		return;
	}
	st = registered_caller(req, iekey, 16, &k, &r, &h);
	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	if (action == ACQ_ACQUIRE) {
		if (!r->rtype)
			take(r, &h, rtype);
		else if (!is_holder(r, &h) || r->rtype != rtype)
			st = SC_CONFLICT;
	} else {
		uint32_t gen = r->gen;
		unsigned before = r->nr_regs;

		st = preempt(ns, req->ctrl, &h, k.nkey, rtype, action == ACQ_PREEMPT_ABORT);
		if (!st && r->nr_regs != before)
			r->gen = gen + 1;
	}
	if (!st)
		st = resv_done(ns);
	nvemu_req_complete(req, st);
}

void nvemu_execute_resv_release(struct nvemu_req *req)
{
	struct nvemu_ns *ns = req->ns;
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint8_t action = cdw10 & 7, rtype = (cdw10 >> 8) & 0xff;
	bool iekey = cdw10 & CDW10_IEKEY;
	struct nvemu_resv_host h;
	struct nvemu_resv *r;
	struct resv_keys k;
	uint16_t st;

	if (action > REL_CLEAR || (cdw10 & 0xffff00f0u)) {
		nvemu_req_complete(req, SC_INVALID_FIELD);
		return;
	}
	st = registered_caller(req, iekey, 8, &k, &r, &h);
	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	if (action == REL_CLEAR) {
		notify_others(ns, &h, req->ctrl, NVME_RESV_NOTIFY_RNLPT_RESERVATION_PREEMPTED);
		r->nr_regs = 0;
		r->rtype = 0;
		r->gen++;
	} else if (is_holder(r, &h)) {
		uint8_t old = r->rtype;

		if (rtype != old) {
			nvemu_req_complete(req, SC_INVALID_FIELD);
			return;
		}
		r->rtype = 0;
		if (old != NVME_RESERVATION_RTYPE_WE && old != NVME_RESERVATION_RTYPE_EA)
			notify_others(ns, &h, req->ctrl,
				      NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
	}
	/* Releasing what one does not hold succeeds and changes nothing. */
	nvemu_req_complete(req, resv_done(ns));
}

/* The controller whose host holds registration reg and sees the namespace, else FFFFh. */
static uint16_t reg_cntlid(struct nvemu_ns *ns, const struct nvemu_resv_host *h)
{
	struct nvemu_subsys *s = ns->subsys;

	for (unsigned i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_resv_host ch;

		if (!nvemu_ctrl_find_ns(s->ctrls[i], ns->nsid))
			continue;
		ctrl_host(s->ctrls[i], &ch);
		if (host_eq(&ch, h))
			return s->ctrls[i]->cntlid;
	}
	return CNTLID_NONE;
}

void nvemu_execute_resv_report(struct nvemu_req *req)
{
	struct nvemu_ns *ns = req->ns;
	struct nvemu_resv *r = ns->resv;
	/* NUMD, 0's based: 64-bit, as 3FFFFFFFh dwords are 4 GiB and would wrap to 0. */
	uint64_t len = ((uint64_t)le32toh(req->cmd.cdw10) + 1) * 4u;
	bool eds = le32toh(req->cmd.cdw11) & 1;
	unsigned nr = r ? r->nr_regs : 0;
	size_t hdr = eds ? 64 : 24, ent = eds ? 64 : 24, full = hdr + nr * ent;
	struct nvme_resv_status *rs;
	uint8_t *p;
	uint16_t st;

	if (le32toh(req->cmd.cdw10) >= 0x40000000u) {
		nvemu_req_complete(req, SC_INVALID_FIELD);
		return;
	}
	for (unsigned i = 0; !eds && i < nr; i++)
		if (r->regs[i].host.ext) {
			/* 128-bit identifiers only fit the extended data structure. */
			nvemu_req_complete(req, SC_HOSTID_FORMAT);
			return;
		}
	p = calloc(1, full);
	if (!p) {
		nvemu_req_complete(req, SC_NOMEM);
		return;
	}
	rs = (struct nvme_resv_status *)p;
	if (r) {
		rs->gen = htole32(r->gen);
		rs->rtype = r->rtype;
		rs->ptpls = r->ptpl;
	}
	rs->regctl[0] = (uint8_t)nr;
	rs->regctl[1] = (uint8_t)(nr >> 8);
	for (unsigned i = 0; i < nr; i++) {
		const struct nvemu_resv_reg *g = &r->regs[i];
		uint8_t *e = p + hdr + i * ent;
		uint16_t cntlid = htole16(reg_cntlid(ns, &g->host));
		uint64_t rkey = htole64(g->rkey);

		memcpy(e, &cntlid, 2);
		e[2] = is_holder(r, &g->host);
		if (eds) {
			memcpy(e + 8, &rkey, 8);
			memcpy(e + 16, g->host.id, 16);
		} else {
			memcpy(e + 8, g->host.id, 8);
			memcpy(e + 16, &rkey, 8);
		}
	}
	/* The host gets as much as it asked for; the rest is cut off. */
	st = nvemu_req_to_host(req, p, (uint32_t)(len < full ? len : full));
	if (!st && len > full) {
		st = len > UINT32_MAX ? NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR
				      : nvemu_req_check_len(req, (uint32_t)len);
		if (!st)
			memset((uint8_t *)req->buf + full, 0, (size_t)(len - full));
	}
	free(p);
	nvemu_req_complete(req, st);
}

/* ---- features 82h (Reservation Notification Mask) and 83h (Reservation Persistence) */

#define MASK_BITS                                                                                  \
	(NVME_FEAT_RESV_NOTIFY_REGPRE | NVME_FEAT_RESV_NOTIFY_RESREL | NVME_FEAT_RESV_NOTIFY_RESPRE)

static uint16_t set_mask(struct nvemu_ctrl *ctrl, uint32_t nsid, uint8_t mask)
{
	struct nvemu_resv_ctrl *rc = nvemu_resv_ctrl_get(ctrl);

	if (!rc)
		return SC_NOMEM;
	for (unsigned i = 0; i < rc->nr_masks; i++)
		if (rc->masks[i].nsid == nsid) {
			rc->masks[i].mask = mask;
			return 0;
		}
	if (!mask)
		return 0;
	if (rc->nr_masks == NVEMU_RESV_MAX_MASKS)
		return NVEMU_SC_GENERIC(NVME_SC_CAP_EXCEEDED) | NVEMU_DNR;
	rc->masks[rc->nr_masks].nsid = nsid;
	rc->masks[rc->nr_masks++].mask = mask;
	return 0;
}

void nvemu_resv_feature(struct nvemu_req *req, bool get)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10), cdw11 = le32toh(req->cmd.cdw11);
	uint32_t nsid = le32toh(req->cmd.nsid);
	uint8_t fid = cdw10 & 0xff, sel = (cdw10 >> 8) & 7;
	struct nvemu_ns *ns = NULL;
	uint16_t st = 0;

	if (nsid != NVEMU_NSID_ALL) {
		ns = nsid ? nvemu_ctrl_find_ns(ctrl, nsid) : NULL;
		if (!ns) {
			nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR);
			return;
		}
	}
	if (get) {
		if (sel == 3) { /* supported capabilities: per namespace, changeable */
			req->cqe.dw0 = htole32(1u << 1 | 1u << 2);
		} else if (sel > 2 || (!ns && fid == NVME_FEAT_FID_RESV_PERSIST)) {
			st = SC_INVALID_FIELD;
		} else if (fid == NVME_FEAT_FID_RESV_MASK) {
			req->cqe.dw0 = htole32(sel == 0 && ns ? ctrl_mask(ctrl, nsid) : 0);
		} else {
			req->cqe.dw0 = htole32(sel == 0 && ns->resv ? ns->resv->ptpl : 0);
		}
		nvemu_req_complete(req, st);
		return;
	}
	if (cdw10 >> 31) { /* neither is saveable */
		nvemu_req_complete(req, NVEMU_SC_CMD(NVME_SC_FEATURE_NOT_SAVEABLE) | NVEMU_DNR);
		return;
	}
	if (fid == NVME_FEAT_FID_RESV_MASK) {
		if (cdw11 & ~(uint32_t)MASK_BITS) {
			st = SC_INVALID_FIELD;
		} else if (ns) {
			st = set_mask(ctrl, nsid, (uint8_t)cdw11);
		} else {
			for (unsigned i = 0; !st && i < ctrl->nr_ns; i++)
				st = set_mask(ctrl, ctrl->ns[i]->nsid, (uint8_t)cdw11);
		}
	} else {
		struct nvemu_resv *r = ns ? nvemu_resv_get(ns) : NULL;

		if (!ns || (cdw11 & ~1u) || ((cdw11 & 1) && !(r && r->ptpl_file)))
			st = SC_INVALID_FIELD;
		else if (!r)
			st = SC_NOMEM;
		else if (r->ptpl_file) {
			r->ptpl = cdw11 & 1;
			if (nvemu_resv_ptpl_save(ns))
				st = NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
		}
	}
	nvemu_req_complete(req, st);
}
