/* SPDX-License-Identifier: MIT */
/*
 * Namespace Management, Namespace Attachment and Format NVM.
 *
 * NSIDs follow the spec's general rule: 0h and values above NN (other than
 * FFFFFFFFh) are invalid (Invalid Namespace or Format); a valid NSID that
 * names no namespace, or one not attached where an attached one is needed,
 * is Invalid Field in Command.
 */
#include <errno.h>
#include <stdlib.h>

#include "nvemu-internal.h"

#define NS_MGMT_SEL_CREATE   0
#define NS_MGMT_SEL_DELETE   1
#define NS_ATTACH_SEL_ATTACH 0
#define NS_ATTACH_SEL_DETACH 1

#define FORMAT_SES_NONE	     0
#define FORMAT_SES_USER_DATA 1

static inline uint16_t invalid_field(void)
{
	return NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;
}

static inline uint16_t invalid_ns(void)
{
	return NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR;
}

static bool nsid_invalid(const struct nvemu_subsys *s, uint32_t nsid)
{
	return !nsid || (nsid > s->nn && nsid != NVEMU_NSID_ALL);
}

/* Raise Namespace Attribute Changed on every controller the namespace is attached to. */
static void ns_notify(struct nvemu_subsys *s, uint32_t nsid)
{
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		if (nvemu_ctrl_ns_attached(s->ctrls[i], nsid))
			nvemu_ctrl_ns_changed(s->ctrls[i], nsid);
}

/* ---- Namespace Management */

static uint16_t ns_create(struct nvemu_req *req)
{
	struct nvemu_subsys *s = req->ctrl->subsys;
	struct nvme_id_ns *id;
	uint8_t csi = req->cmd.cdw11 >> 24, lbaf;
	uint64_t nsze, ncap;
	uint32_t nsid = 0;
	uint16_t st;

	if (csi != NVME_CSI_NVM)
		return NVEMU_SC_CMD(NVME_SC_IOCS_NOT_SUPPORTED) | NVEMU_DNR;
	id = malloc(sizeof(*id));
	if (!id)
		return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
	st = nvemu_req_from_host(req, id, sizeof(*id));
	if (st)
		goto out;
	nsze = le64toh(id->nsze);
	ncap = le64toh(id->ncap);
	lbaf = (id->flbas & 0xf) | ((id->flbas >> 5) & 0x3) << 4;
	/* The formats carry no metadata, so neither extended LBAs nor PI exist. */
	if (lbaf >= NVEMU_NUM_LBAF || (id->flbas & (1u << 4)) || (id->dps & 0x7)) {
		st = NVEMU_SC_CMD(NVME_SC_INVALID_FORMAT) | NVEMU_DNR;
		goto out;
	}
	if (!nsze || ncap > nsze) {
		st = invalid_field();
		goto out;
	}
	if (ncap < nsze) {
		st = NVEMU_SC_CMD(NVME_SC_THIN_PROV_NOT_SUPP) | NVEMU_DNR;
		goto out;
	}
	st = nvemu_subsys_ns_create_status(s, nsze, lbaf, &nsid);
	if (!st)
		req->cqe.dw0 = nsid;
out:
	free(id);
	return st;
}

static uint16_t ns_delete_one(struct nvemu_subsys *s, struct nvemu_ns *ns)
{
	uint32_t nsid = ns->nsid;

	/* Deleting a namespace detaches it from every controller first. */
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		if (nvemu_ctrl_ns_attached(s->ctrls[i], nsid))
			nvemu_ctrl_detach_ns(s->ctrls[i], nsid, NULL);
	if (nvemu_subsys_remove_ns(s, nsid, NULL))
		return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
	return 0;
}

static uint16_t ns_delete(struct nvemu_req *req)
{
	struct nvemu_subsys *s = req->ctrl->subsys;
	uint32_t nsid = req->cmd.nsid;
	struct nvemu_ns *ns;
	uint16_t st;

	if (nsid_invalid(s, nsid))
		return invalid_ns();
	if (nsid != NVEMU_NSID_ALL) {
		ns = nvemu_subsys_ns(s, nsid);
		if (!ns)
			return invalid_field();
		if (!ns->ready)
			return NVEMU_SC_GENERIC(NVME_SC_FORMAT_IN_PROGRESS);
		return ns_delete_one(s, ns);
	}
	for (unsigned i = 0; i < s->nr_ns; i++)
		if (!s->ns[i]->ready)
			return NVEMU_SC_GENERIC(NVME_SC_FORMAT_IN_PROGRESS);
	while (s->nr_ns) {
		st = ns_delete_one(s, s->ns[s->nr_ns - 1]);
		if (st)
			return st;
	}
	return 0;
}

void nvemu_execute_ns_mgmt(struct nvemu_req *req)
{
	uint16_t st;

	switch (req->cmd.cdw10 & 0xf) {
	case NS_MGMT_SEL_CREATE:
		st = ns_create(req);
		break;
	case NS_MGMT_SEL_DELETE:
		st = ns_delete(req);
		break;
	default:
		st = invalid_field();
		break;
	}
	nvemu_req_complete(req, st);
}

/* ---- Namespace Attachment */

static uint16_t ns_attach(struct nvemu_req *req, bool attach)
{
	struct nvemu_subsys *s = req->ctrl->subsys;
	uint32_t nsid = req->cmd.nsid;
	struct nvme_ctrl_list *list;
	struct nvemu_ctrl **ctrls = NULL;
	unsigned num, i, j;
	uint16_t st;

	if (nsid == NVEMU_NSID_ALL)
		return invalid_field(); /* attachment is per namespace */
	if (nsid_invalid(s, nsid))
		return invalid_ns();
	if (!nvemu_subsys_ns(s, nsid))
		return invalid_field();

	list = malloc(sizeof(*list));
	if (!list)
		return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
	st = nvemu_req_from_host(req, list, sizeof(*list));
	if (st)
		goto out;
	num = le16toh(list->num);
	if (!num || num > NVME_ID_CTRL_LIST_MAX) {
		st = NVEMU_SC_CMD(NVME_SC_CTRL_LIST_INVALID) | NVEMU_DNR;
		goto out;
	}
	ctrls = calloc(num, sizeof(*ctrls));
	if (!ctrls) {
		st = NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
		goto out;
	}
	/* Validate the whole list before changing anything. */
	for (i = 0; i < num; i++) {
		uint16_t id = le16toh(list->identifier[i]);

		ctrls[i] = nvemu_subsys_ctrl(s, id);
		for (j = 0; ctrls[i] && j < i; j++)
			if (ctrls[j] == ctrls[i])
				ctrls[i] = NULL;
		if (!ctrls[i]) {
			st = NVEMU_SC_CMD(NVME_SC_CTRL_LIST_INVALID) | NVEMU_DNR;
			goto out;
		}
	}
	for (i = 0; i < num; i++) {
		bool attached = nvemu_ctrl_ns_attached(ctrls[i], nsid);

		if (attach && attached) {
			st = NVEMU_SC_CMD(NVME_SC_NS_ALREADY_ATTACHED) | NVEMU_DNR;
			goto out;
		}
		if (!attach && !attached) {
			st = NVEMU_SC_CMD(NVME_SC_NS_NOT_ATTACHED) | NVEMU_DNR;
			goto out;
		}
		/* A masked namespace cannot go to a host that may not see it (ana.c). */
		if (attach && !nvemu_ns_visible_to(nvemu_subsys_ns(s, nsid), ctrls[i]->hostnqn)) {
			st = NVEMU_SC_CMD(NVME_SC_CTRL_LIST_INVALID) | NVEMU_DNR;
			goto out;
		}
	}
	for (i = 0; i < num; i++) {
		if (!attach) {
			nvemu_ctrl_detach_ns(ctrls[i], nsid, NULL);
			continue;
		}
		if (nvemu_ctrl_attach_ns(ctrls[i], nsid, NULL)) {
			/* Out of memory: undo, so the command changes nothing. */
			while (i--)
				nvemu_ctrl_detach_ns(ctrls[i], nsid, NULL);
			st = NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
			goto out;
		}
	}
out:
	free(ctrls);
	free(list);
	return st;
}

void nvemu_execute_ns_attach(struct nvemu_req *req)
{
	uint16_t st;

	switch (req->cmd.cdw10 & 0xf) {
	case NS_ATTACH_SEL_ATTACH:
		st = ns_attach(req, true);
		break;
	case NS_ATTACH_SEL_DETACH:
		st = ns_attach(req, false);
		break;
	default:
		st = invalid_field();
		break;
	}
	nvemu_req_complete(req, st);
}

/* ---- Format NVM */

struct format_ctx {
	unsigned nr;
	struct {
		struct nvemu_ns *ns;
		struct nvemu_bio bio;
	} e[];
};

static void format_finish(struct nvemu_req *req)
{
	struct format_ctx *fc = req->cmd_priv;
	struct nvemu_subsys *s = req->ctrl->subsys;
	uint16_t st = 0;

	for (unsigned i = 0; i < fc->nr; i++) {
		fc->e[i].ns->ready = true;
		/* A namespace deleted meanwhile must not announce its NSID (perhaps reused). */
		if (!fc->e[i].ns->removed)
			ns_notify(s, fc->e[i].ns->nsid);
	}
	if (req->bio_err)
		st = nvemu_bio_errno_to_status(NVEMU_BIO_DEALLOCATE, req->bio_err);
	nvemu_req_complete(req, st);
}

static void format_release(struct nvemu_req *req)
{
	struct format_ctx *fc = req->cmd_priv;

	for (unsigned i = 0; i < fc->nr; i++)
		if (fc->e[i].ns)
			nvemu_ns_put(fc->e[i].ns);
}

static void format_put(struct nvemu_req *req)
{
	if (--req->bio_pending == 0)
		format_finish(req);
}

static void format_erase_done(struct nvemu_bio *bio, int err)
{
	struct nvemu_req *req = bio->private;

	if (err && !req->bio_err)
		req->bio_err = err;
	format_put(req);
}

static uint16_t format_check(const struct nvemu_ns *ns, uint8_t lbaf)
{
	uint32_t lba = nvemu_lbaf_size(lbaf);
	uint64_t bytes = ns->nblocks << ns->lba_shift;

	if (!ns->ready)
		return NVEMU_SC_GENERIC(NVME_SC_FORMAT_IN_PROGRESS);
	if (ns->bdev->read_only)
		return NVEMU_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED);
	if (lba < ns->bdev->blk_size || lba % ns->bdev->blk_size || bytes < lba)
		return NVEMU_SC_CMD(NVME_SC_INVALID_FORMAT) | NVEMU_DNR;
	return 0;
}

/*
 * Switch every namespace of fc to lbaf, keeping its capacity in bytes, and
 * erase it (User Data Erase): commands to the namespaces see Namespace Not
 * Ready until the last erase ends.
 */
static void format_start(struct nvemu_req *req, struct format_ctx *fc, uint8_t lbaf, bool erase)
{
	uint32_t lba = nvemu_lbaf_size(lbaf);

	req->bio_pending = 1;
	req->bio_err = 0;
	for (unsigned i = 0; i < fc->nr; i++) {
		struct nvemu_ns *ns = fc->e[i].ns;
		struct nvemu_bio *bio = &fc->e[i].bio;
		uint64_t bytes = ns->nblocks << ns->lba_shift;
		int ret;

		ns->ready = false;
		ns->lbaf = lbaf;
		ns->lba_shift = (uint8_t)__builtin_ctz(lba);
		ns->nblocks = bytes >> ns->lba_shift;
		if (!erase)
			continue;
		bio->op = NVEMU_BIO_DEALLOCATE;
		bio->offset = 0;
		bio->len = ns->nblocks << ns->lba_shift;
		bio->end_io = format_erase_done;
		bio->private = req;
		req->bio_pending++;
		ret = nvemu_bdev_submit(ns->bdev, bio);
		if (ret) {
			if (!req->bio_err)
				req->bio_err = ret;
			req->bio_pending--;
		}
	}
	format_put(req);
}

void nvemu_execute_format_nvm(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint32_t cdw10 = req->cmd.cdw10, nsid = req->cmd.nsid;
	uint8_t lbaf = (cdw10 & 0xf) | ((cdw10 >> 12) & 0x3) << 4;
	unsigned mset = (cdw10 >> 4) & 1, pi = (cdw10 >> 5) & 7, pil = (cdw10 >> 8) & 1;
	unsigned ses = (cdw10 >> 9) & 7, nr, i;
	struct format_ctx *fc;
	uint16_t st;

	/* Cryptographic Erase (2h) is not offered (FNA bit 2 = 0); 3h-7h are reserved. */
	if (ses > FORMAT_SES_USER_DATA) {
		nvemu_req_complete(req, invalid_field());
		return;
	}
	/* No LBA format has metadata: PI, PIL and MSET describe nothing we have. */
	if (lbaf >= NVEMU_NUM_LBAF || mset || pi || pil) {
		nvemu_req_complete(req, NVEMU_SC_CMD(NVME_SC_INVALID_FORMAT) | NVEMU_DNR);
		return;
	}
	if (nsid_invalid(ctrl->subsys, nsid)) {
		nvemu_req_complete(req, invalid_ns());
		return;
	}
	if (nsid == NVEMU_NSID_ALL) {
		nr = ctrl->nr_ns;
	} else {
		if (!nvemu_ctrl_find_ns(ctrl, nsid)) {
			nvemu_req_complete(req, invalid_field());
			return;
		}
		nr = 1;
	}
	fc = calloc(1, sizeof(*fc) + nr * sizeof(fc->e[0]));
	if (!fc) {
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
		return;
	}
	fc->nr = nr;
	req->cmd_priv = fc; /* freed by nvemu_req_complete() */
	req->cmd_priv_release = format_release;
	for (i = 0; i < nr; i++) {
		/* Held until the erase ends: a namespace may be deleted meanwhile. */
		fc->e[i].ns = nvemu_ns_get(nsid == NVEMU_NSID_ALL ? ctrl->ns[i]
								  : nvemu_ctrl_find_ns(ctrl, nsid));
		st = format_check(fc->e[i].ns, lbaf);
		if (st) {
			nvemu_req_complete(req, st);
			return;
		}
	}

	format_start(req, fc, lbaf, ses == FORMAT_SES_USER_DATA);
}
