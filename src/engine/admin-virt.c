// SPDX-License-Identifier: MIT
/*
 * Virtualization Enhancements: primary and secondary controllers, their
 * flexible VQ/VI resources, Virtualization Management (admin 1Ch) and
 * Identify CNS 14h (Primary Controller Capabilities) / 15h (Secondary
 * Controller List). See include/nvemu/virt.h for the model.
 */
#include <errno.h>
#include <stdlib.h>

#include "nvemu-internal.h"

#define VIRT_ACT(cdw10)	   ((cdw10)&0xf)
#define VIRT_RT(cdw10)	   (((cdw10) >> 8) & 0x7)
#define VIRT_CNTLID(cdw10) ((uint16_t)((cdw10) >> 16))

/* A secondary needs the admin pair plus one I/O pair, and one vector, to go Online. */
#define SEC_MIN_VQ 2
#define SEC_MIN_VI 1

static const uint16_t invalid_field = NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;

static struct nvemu_virt *virt_find(const struct nvemu_subsys *s, uint16_t pcid)
{
	for (unsigned i = 0; i < s->nr_virt; i++)
		if (s->virt[i]->pcid == pcid)
			return s->virt[i];
	return NULL;
}

static struct nvemu_virt_vf *sec_vf(const struct nvemu_ctrl *ctrl)
{
	struct nvemu_virt *v;

	if (!ctrl->sec_vfn)
		return NULL;
	v = virt_find(ctrl->subsys, ctrl->sec_pcid);
	return v && ctrl->sec_vfn <= v->p.total_vfs ? &v->vf[ctrl->sec_vfn - 1] : NULL;
}

static uint32_t assigned(const struct nvemu_virt *v, enum nvemu_virt_rt rt)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < v->p.total_vfs; i++)
		n += rt == NVEMU_VIRT_VQ ? v->vf[i].nvq : v->vf[i].nvi;
	return n;
}

void nvemu_virt_params_init(struct nvemu_virt_params *p, uint16_t total_vfs)
{
	memset(p, 0, sizeof(*p));
	p->total_vfs = total_vfs;
	p->vq_sec_max = p->vi_sec_max = 32;
	p->vq_flex = p->vi_flex = 32u * total_vfs;
}

int nvemu_subsys_virt_add(struct nvemu_subsys *s, uint16_t pcid, const struct nvemu_virt_params *p,
			  struct nvemu_error *err)
{
	struct nvemu_virt **arr, *v;

	if (!pcid || pcid > 0xffef)
		return nvemu_error_set(err, -EINVAL, "pcid: controller id %u out of range", pcid);
	if (virt_find(s, pcid))
		return nvemu_error_set(err, -EEXIST, "pcid: controller %u is a primary already",
				       pcid);
	if (p->total_vfs < 1 || p->total_vfs > NVEMU_VIRT_MAX_VFS)
		return nvemu_error_set(err, -EINVAL, "total_vfs: 1..%u", NVEMU_VIRT_MAX_VFS);
	if (!p->vq_sec_max || !p->vi_sec_max || p->vq_flex > 0xffff * (uint32_t)p->total_vfs ||
	    p->vi_flex > 0xffff * (uint32_t)p->total_vfs)
		return nvemu_error_set(
			err, -EINVAL,
			"vq_sec_max/vi_sec_max: at least 1; pools at most 65535 per VF");
	v = calloc(1, sizeof(*v));
	arr = realloc(s->virt, (s->nr_virt + 1) * sizeof(*arr));
	if (!v || !arr) {
		free(v);
		if (arr)
			s->virt = arr;
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	v->pcid = pcid;
	v->p = *p;
	s->virt = arr;
	s->virt[s->nr_virt++] = v;
	return 0;
}

void nvemu_subsys_virt_remove(struct nvemu_subsys *s, uint16_t pcid)
{
	for (unsigned i = 0; i < s->nr_virt; i++) {
		if (s->virt[i]->pcid != pcid)
			continue;
		for (unsigned k = 0; k < s->nr_ctrls; k++)
			if (s->ctrls[k]->sec_vfn && s->ctrls[k]->sec_pcid == pcid)
				s->ctrls[k]->sec_vfn = 0;
		free(s->virt[i]);
		s->virt[i] = s->virt[--s->nr_virt];
		return;
	}
}

void nvemu_virt_subsys_free(struct nvemu_subsys *s)
{
	for (unsigned i = 0; i < s->nr_virt; i++)
		free(s->virt[i]);
	free(s->virt);
	s->virt = NULL;
	s->nr_virt = 0;
}

bool nvemu_subsys_virt_is_primary(struct nvemu_subsys *s, uint16_t pcid)
{
	return virt_find(s, pcid) != NULL;
}

int nvemu_subsys_virt_info(struct nvemu_subsys *s, uint16_t pcid, struct nvemu_virt_info *info)
{
	struct nvemu_virt *v = virt_find(s, pcid);

	if (!v)
		return -ENOENT;
	info->p = v->p;
	info->vqrfa = assigned(v, NVEMU_VIRT_VQ);
	info->virfa = assigned(v, NVEMU_VIRT_VI);
	info->vqrfap = v->vqrfap;
	info->virfap = v->virfap;
	return 0;
}

static struct nvemu_virt_vf *vf_of(struct nvemu_subsys *s, uint16_t pcid, uint16_t vfn,
				   struct nvemu_virt **vp, struct nvemu_error *err)
{
	struct nvemu_virt *v = virt_find(s, pcid);

	if (!v) {
		nvemu_error_set(err, -ENOENT, "pcid: controller %u is not a primary", pcid);
		return NULL;
	}
	if (vfn < 1 || vfn > v->p.total_vfs) {
		nvemu_error_set(err, -ENOENT, "vfn: VF %u out of 1..%u", vfn, v->p.total_vfs);
		return NULL;
	}
	if (vp)
		*vp = v;
	return &v->vf[vfn - 1];
}

int nvemu_subsys_virt_vf(struct nvemu_subsys *s, uint16_t pcid, uint16_t vfn,
			 struct nvemu_virt_vf_info *info)
{
	struct nvemu_virt_vf *vf = vf_of(s, pcid, vfn, NULL, NULL);

	if (!vf)
		return -ENOENT;
	info->scid = vf->scid;
	info->online = vf->online;
	info->nvq = vf->nvq;
	info->nvi = vf->nvi;
	return 0;
}

int nvemu_ctrl_set_secondary(struct nvemu_ctrl *ctrl, uint16_t pcid, uint16_t vfn,
			     struct nvemu_error *err)
{
	struct nvemu_virt_vf *vf = vf_of(ctrl->subsys, pcid, vfn, NULL, err);

	if (!vf)
		return -ENOENT;
	if (ctrl->cntlid == pcid || nvemu_ctrl_is_primary(ctrl))
		return nvemu_error_set(err, -EINVAL, "ctrl: a primary cannot be a secondary");
	if (ctrl->sec_vfn)
		return nvemu_error_set(err, -EBUSY, "ctrl: controller %u serves VF %u already",
				       ctrl->cntlid, ctrl->sec_vfn);
	if (vf->scid)
		return nvemu_error_set(err, -EBUSY, "vfn: VF %u has controller %u", vfn, vf->scid);
	vf->scid = ctrl->cntlid;
	vf->online = false;
	ctrl->sec_pcid = pcid;
	ctrl->sec_vfn = vfn;
	return 0;
}

void nvemu_virt_ctrl_removed(struct nvemu_ctrl *ctrl)
{
	struct nvemu_virt_vf *vf = sec_vf(ctrl);

	/* A new controller on the VF starts Offline; the resources stay assigned. */
	if (vf && vf->scid == ctrl->cntlid) {
		vf->scid = 0;
		vf->online = false;
	}
	ctrl->sec_vfn = 0;
}

bool nvemu_ctrl_virt_secondary_of(const struct nvemu_ctrl *ctrl, uint16_t *pcid, uint16_t *vfn)
{
	*pcid = ctrl->sec_vfn ? ctrl->sec_pcid : 0;
	*vfn = ctrl->sec_vfn;
	return ctrl->sec_vfn != 0;
}

bool nvemu_ctrl_is_primary(const struct nvemu_ctrl *ctrl)
{
	return virt_find(ctrl->subsys, ctrl->cntlid) != NULL;
}

unsigned nvemu_ctrl_io_queue_limit(const struct nvemu_ctrl *ctrl)
{
	const struct nvemu_virt_vf *vf = sec_vf(ctrl);
	unsigned n = ctrl->p.num_io_queues;

	if (vf && vf->nvq >= SEC_MIN_VQ && vf->nvq - 1u < n)
		n = vf->nvq - 1u;
	return n;
}

unsigned nvemu_ctrl_virt_vectors(const struct nvemu_ctrl *ctrl)
{
	const struct nvemu_virt_vf *vf = sec_vf(ctrl);

	return vf ? vf->nvi : 0;
}

bool nvemu_virt_enable_ok(const struct nvemu_ctrl *ctrl)
{
	const struct nvemu_virt_vf *vf = sec_vf(ctrl);

	return !vf || vf->online;
}

/* ---- the actions: NVMe status, 0 on success (*dw0: resources now assigned) */

static uint16_t do_assign(struct nvemu_virt *v, struct nvemu_virt_vf *vf, unsigned rt, uint32_t nr,
			  uint32_t *dw0)
{
	uint32_t pool = rt == NVEMU_VIRT_VQ ? v->p.vq_flex : v->p.vi_flex;
	uint32_t prim = rt == NVEMU_VIRT_VQ ? v->vqrfap : v->virfap;
	uint32_t max = rt == NVEMU_VIRT_VQ ? v->p.vq_sec_max : v->p.vi_sec_max;
	uint16_t *cur = rt == NVEMU_VIRT_VQ ? &vf->nvq : &vf->nvi;
	uint32_t others = assigned(v, rt) - *cur;

	if (rt > NVEMU_VIRT_VI)
		return NVEMU_SC_CMD(NVME_SC_INVALID_RESOURCE_ID) | NVEMU_DNR;
	if (vf->online)
		return NVEMU_SC_CMD(NVME_SC_INVALID_SEC_CTRL_STATE) | NVEMU_DNR;
	if (nr > max || others + prim + nr > pool)
		return NVEMU_SC_CMD(NVME_SC_INVALID_CTRL_RESOURCES) | NVEMU_DNR;
	*cur = (uint16_t)nr;
	*dw0 = nr;
	return 0;
}

static uint16_t do_online(struct nvemu_subsys *s, struct nvemu_virt_vf *vf, bool online)
{
	struct nvemu_ctrl *sc = vf->scid ? nvemu_subsys_ctrl(s, vf->scid) : NULL;

	if (online) {
		if (vf->nvq < SEC_MIN_VQ || vf->nvi < SEC_MIN_VI)
			return NVEMU_SC_CMD(NVME_SC_INVALID_SEC_CTRL_STATE) | NVEMU_DNR;
		vf->online = true;
		return 0;
	}
	vf->online = false;
	/* Resources pulled from under an enabled controller: it fails until reset. */
	if (sc && nvemu_ctrl_enabled(sc))
		nvemu_ctrl_fatal(sc);
	return 0;
}

static uint16_t do_primary_alloc(struct nvemu_virt *v, unsigned rt, uint32_t nr, uint32_t *dw0)
{
	uint32_t pool = rt == NVEMU_VIRT_VQ ? v->p.vq_flex : v->p.vi_flex;

	if (rt > NVEMU_VIRT_VI)
		return NVEMU_SC_CMD(NVME_SC_INVALID_RESOURCE_ID) | NVEMU_DNR;
	if (nr > 0xffff || assigned(v, rt) + nr > pool)
		return NVEMU_SC_CMD(NVME_SC_INVALID_CTRL_RESOURCES) | NVEMU_DNR;
	/* Recorded and reported; the primary's own queues are its private ones (VxPRT). */
	if (rt == NVEMU_VIRT_VQ)
		v->vqrfap = (uint16_t)nr;
	else
		v->virfap = (uint16_t)nr;
	*dw0 = nr;
	return 0;
}

/* The VF entry of secondary controller cntlid of v, NULL if it is none of v's. */
static struct nvemu_virt_vf *vf_by_scid(struct nvemu_virt *v, uint16_t cntlid)
{
	for (unsigned i = 0; cntlid && i < v->p.total_vfs; i++)
		if (v->vf[i].scid == cntlid)
			return &v->vf[i];
	return NULL;
}

void nvemu_execute_virt_mgmt(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10), nr = le32toh(req->cmd.cdw11) & 0xffff;
	struct nvemu_virt *v = virt_find(ctrl->subsys, ctrl->cntlid);
	uint16_t cntlid = VIRT_CNTLID(cdw10), st;
	struct nvemu_virt_vf *vf = NULL;
	uint32_t dw0 = 0;

	if (!v) {
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVEMU_DNR);
		return;
	}
	switch (VIRT_ACT(cdw10)) {
	case NVME_VIRT_MGMT_ACT_PRIM_CTRL_FLEX_ALLOC:
		st = cntlid != ctrl->cntlid ? NVEMU_SC_CMD(NVME_SC_INVALID_CTRL_ID) | NVEMU_DNR
					    : do_primary_alloc(v, VIRT_RT(cdw10), nr, &dw0);
		break;
	case NVME_VIRT_MGMT_ACT_OFFLINE_SEC_CTRL:
	case NVME_VIRT_MGMT_ACT_ASSIGN_SEC_CTRL:
	case NVME_VIRT_MGMT_ACT_ONLINE_SEC_CTRL:
		vf = vf_by_scid(v, cntlid);
		if (!vf) {
			st = NVEMU_SC_CMD(NVME_SC_INVALID_CTRL_ID) | NVEMU_DNR;
			break;
		}
		if (VIRT_ACT(cdw10) == NVME_VIRT_MGMT_ACT_ASSIGN_SEC_CTRL)
			st = do_assign(v, vf, VIRT_RT(cdw10), nr, &dw0);
		else
			st = do_online(ctrl->subsys, vf,
				       VIRT_ACT(cdw10) == NVME_VIRT_MGMT_ACT_ONLINE_SEC_CTRL);
		break;
	default:
		st = invalid_field;
		break;
	}
	req->cqe.dw0 = htole32(dw0);
	nvemu_req_complete(req, st);
}

/* ---- the control plane's side: the same rules, errno and a message */

int nvemu_virt_assign(struct nvemu_subsys *s, uint16_t pcid, uint16_t vfn, enum nvemu_virt_rt rt,
		      uint16_t nr, struct nvemu_error *err)
{
	struct nvemu_virt *v;
	struct nvemu_virt_vf *vf = vf_of(s, pcid, vfn, &v, err);
	uint32_t dw0;
	uint16_t st;

	if (!vf)
		return -ENOENT;
	st = do_assign(v, vf, rt, nr, &dw0);
	if (!st)
		return 0;
	if (vf->online)
		return nvemu_error_set(err, -EBUSY, "VF %u is online: take it offline first", vfn);
	return nvemu_error_set(
		err, -ENOSPC,
		"%s: %u for VF %u exceeds the per-VF maximum or what the pool has left",
		rt == NVEMU_VIRT_VQ ? "vq" : "msix", nr, vfn);
}

int nvemu_virt_set_online(struct nvemu_subsys *s, uint16_t pcid, uint16_t vfn, bool online,
			  struct nvemu_error *err)
{
	struct nvemu_virt_vf *vf = vf_of(s, pcid, vfn, NULL, err);

	if (!vf)
		return -ENOENT;
	if (do_online(s, vf, online))
		return nvemu_error_set(
			err, -EINVAL, "VF %u needs at least %u VQ and %u VI resources to go online",
			vfn, SEC_MIN_VQ, SEC_MIN_VI);
	return 0;
}

int nvemu_virt_reclaim(struct nvemu_subsys *s, uint16_t pcid, enum nvemu_virt_rt rt,
		       struct nvemu_error *err)
{
	struct nvemu_virt *v = virt_find(s, pcid);

	if (!v)
		return nvemu_error_set(err, -ENOENT, "pcid: controller %u is not a primary", pcid);
	for (unsigned i = 0; i < v->p.total_vfs; i++)
		if (v->vf[i].online)
			return nvemu_error_set(
				err, -EBUSY, "VF %u is online: take every VF offline first", i + 1);
	for (unsigned i = 0; i < v->p.total_vfs; i++) {
		if (rt == NVEMU_VIRT_VQ)
			v->vf[i].nvq = 0;
		else
			v->vf[i].nvi = 0;
	}
	return 0;
}

/* ---- Identify */

uint16_t nvemu_id_primary_ctrl_caps(struct nvemu_ctrl *ctrl, void *buf)
{
	struct nvemu_virt *v = virt_find(ctrl->subsys, ctrl->cntlid);
	struct nvme_primary_ctrl_cap *c = buf;
	unsigned priv = ctrl->p.num_io_queues + 1u;

	if (!v)
		return invalid_field;
	c->cntlid = htole16(ctrl->cntlid);
	c->portid = htole16(ctrl->p.port_id);
	c->crt = 0x3; /* VQ and VI resources */
	c->vqfrt = htole32(v->p.vq_flex);
	c->vqrfa = htole32(assigned(v, NVEMU_VIRT_VQ));
	c->vqrfap = htole16(v->vqrfap);
	c->vqprt = htole16((uint16_t)priv);
	c->vqfrsm = htole16(v->p.vq_sec_max);
	c->vqgran = htole16(1);
	c->vifrt = htole32(v->p.vi_flex);
	c->virfa = htole32(assigned(v, NVEMU_VIRT_VI));
	c->virfap = htole16(v->virfap);
	c->viprt = htole16((uint16_t)(priv < NVEMU_MAX_MSIX ? priv : NVEMU_MAX_MSIX));
	c->vifrsm = htole16(v->p.vi_sec_max);
	c->vigran = htole16(1);
	return 0;
}

uint16_t nvemu_id_secondary_ctrl_list(struct nvemu_ctrl *ctrl, uint16_t cntid, void *buf)
{
	struct nvemu_virt *v = virt_find(ctrl->subsys, ctrl->cntlid);
	struct nvme_secondary_ctrl_list *l = buf;
	unsigned n = 0;

	if (!v)
		return invalid_field;
	/* Ascending SCID from cntid: pick the next larger one each time (at most 127). */
	for (uint32_t from = cntid; n < NVME_ID_SECONDARY_CTRL_MAX;) {
		struct nvemu_virt_vf *best = NULL;
		unsigned bi = 0;

		for (unsigned i = 0; i < v->p.total_vfs; i++)
			if (v->vf[i].scid && v->vf[i].scid >= from &&
			    (!best || v->vf[i].scid < best->scid)) {
				best = &v->vf[i];
				bi = i;
			}
		if (!best)
			break;
		l->sc_entry[n].scid = htole16(best->scid);
		l->sc_entry[n].pcid = htole16(ctrl->cntlid);
		l->sc_entry[n].scs = best->online ? 1 : 0;
		l->sc_entry[n].vfn = htole16((uint16_t)(bi + 1));
		l->sc_entry[n].nvq = htole16(best->nvq);
		l->sc_entry[n].nvi = htole16(best->nvi);
		n++;
		from = best->scid + 1u;
	}
	l->num = (uint8_t)n;
	return 0;
}
