// SPDX-License-Identifier: MIT
/*
 * Namespaces of a driven controller: the active list (Identify CNS 02h),
 * each namespace (CNS 00h), change events, and "SN:n<NSID>" names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver/driver-internal.h"

/* A hostile controller may list any number: we keep this many at most. */
#define DRV_MAX_NS 1024

static int identify(struct nvemu_drv_ctrl *ctrl, uint8_t cns, uint32_t nsid, void *buf)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_identify, .nsid = nsid, .cdw10 = cns};

	return drv_exec_sync(ctrl->admin, &cmd, buf, 4096, ctrl->opts.admin_timeout_ms, NULL);
}

/* Active NSIDs in ascending order into ids (at most DRV_MAX_NS); returns how many or -errno. */
static int list_active(struct nvemu_drv_ctrl *ctrl, uint32_t *ids, uint32_t *page)
{
	uint32_t nn = ctrl->id.nn, last = 0;
	int n = 0, rc;

	if (ctrl->vs < 0x10100) { /* no active list before NVMe 1.1 */
		for (uint32_t i = 1; i <= nn && n < DRV_MAX_NS; i++)
			ids[n++] = i;
		return n;
	}
	for (;;) {
		unsigned got = 0;

		rc = identify(ctrl, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, last, page);
		if (rc)
			return rc;
		for (unsigned i = 0; i < 1024 && page[i]; i++, got++) {
			if (page[i] <= last || page[i] == NVEMU_NSID_ALL)
				return -EPROTO; /* not ascending: a broken list */
			last = page[i];
			if (n < DRV_MAX_NS)
				ids[n++] = last;
		}
		if (got < 1024 || n >= DRV_MAX_NS)
			return n;
	}
}

/* Identify Namespace into info; -ENOENT when inactive or unusable (metadata, odd LBA size). */
static int ns_read(struct nvemu_drv_ctrl *ctrl, uint32_t nsid, void *page,
		   struct nvemu_drv_ns_info *info)
{
	struct nvme_id_ns *id = page;
	unsigned fmt, ds;
	int rc = identify(ctrl, NVME_IDENTIFY_CNS_NS, nsid, page);

	if (rc)
		return rc;
	if (!id->nsze)
		return -ENOENT;
	fmt = (id->flbas & 0xf) | (((id->flbas >> 5) & 3) << 4);
	if (fmt > id->nlbaf || fmt >= 64)
		return -ENOENT;
	ds = id->lbaf[fmt].ds;
	if (ds < 9 || ds > 16 || id->lbaf[fmt].ms) {
		drv_log(ctrl, NVEMU_DRV_LOG_WARN,
			"namespace %u: LBA format (2^%u bytes, %u metadata) not supported", nsid,
			ds, id->lbaf[fmt].ms);
		return -ENOENT;
	}
	memset(info, 0, sizeof(*info));
	info->nsid = nsid;
	info->nsze = id->nsze;
	info->blk_size = 1u << ds;
	info->read_only = id->nsattr & 1;
	memcpy(info->nguid, id->nguid, sizeof(info->nguid));
	memcpy(info->eui64, id->eui64, sizeof(info->eui64));
	return 0;
}

static void notify(struct nvemu_drv_ctrl *ctrl, enum nvemu_drv_event ev, uint32_t nsid)
{
	if (ctrl->opts.event)
		ctrl->opts.event(ctrl->opts.event_arg, ctrl, ev, nsid);
}

/* Events for what differs between the old list and the new one. */
static void diff_events(struct nvemu_drv_ctrl *ctrl, const struct drv_ns *old, unsigned nr_old)
{
	unsigned i = 0, j = 0;

	while (i < nr_old || j < ctrl->nr_ns) {
		const struct drv_ns *a = i < nr_old ? &old[i] : NULL;
		const struct drv_ns *b = j < ctrl->nr_ns ? &ctrl->ns[j] : NULL;

		if (a && (!b || a->info.nsid < b->info.nsid)) {
			notify(ctrl, NVEMU_DRV_EV_NS_REMOVED, a->info.nsid);
			i++;
		} else if (b && (!a || b->info.nsid < a->info.nsid)) {
			notify(ctrl, NVEMU_DRV_EV_NS_ADDED, b->info.nsid);
			j++;
		} else {
			if (memcmp(&a->info, &b->info, sizeof(a->info)))
				notify(ctrl, NVEMU_DRV_EV_NS_CHANGED, a->info.nsid);
			i++;
			j++;
		}
	}
}

int drv_ns_scan(struct nvemu_drv_ctrl *ctrl, bool events)
{
	uint32_t *ids = malloc(DRV_MAX_NS * sizeof(*ids));
	void *page = aligned_alloc(4096, 4096);
	struct drv_ns *ns = NULL, *old;
	unsigned nr_old;
	int n, rc = -ENOMEM, got = 0;

	if (!ids || !page)
		goto out;
	n = list_active(ctrl, ids, page);
	if (n < 0) {
		rc = n;
		goto out;
	}
	ns = calloc(n ? (size_t)n : 1, sizeof(*ns));
	if (!ns)
		goto out;
	for (int i = 0; i < n; i++) {
		rc = ns_read(ctrl, ids[i], page, &ns[got].info);
		if (rc == -ENOENT)
			continue;
		if (rc)
			goto out;
		got++;
	}
	old = ctrl->ns;
	nr_old = ctrl->nr_ns;
	ctrl->ns = ns;
	ctrl->nr_ns = (unsigned)got;
	ns = old;
	if (events)
		diff_events(ctrl, old, nr_old);
	rc = 0;
out:
	free(ns);
	free(ids);
	free(page);
	return rc;
}

const struct drv_ns *drv_ns_find(const struct nvemu_drv_ctrl *ctrl, uint32_t nsid)
{
	unsigned lo = 0, hi = ctrl->nr_ns;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (ctrl->ns[mid].info.nsid == nsid)
			return &ctrl->ns[mid];
		if (ctrl->ns[mid].info.nsid < nsid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

uint32_t nvemu_drv_ns_next(const struct nvemu_drv_ctrl *ctrl, uint32_t nsid)
{
	for (unsigned i = 0; i < ctrl->nr_ns; i++)
		if (ctrl->ns[i].info.nsid > nsid)
			return ctrl->ns[i].info.nsid;
	return 0;
}

int nvemu_drv_ns_get(const struct nvemu_drv_ctrl *ctrl, uint32_t nsid,
		     struct nvemu_drv_ns_info *out)
{
	const struct drv_ns *ns = drv_ns_find(ctrl, nsid);

	if (!ns)
		return -ENOENT;
	*out = ns->info;
	return 0;
}

int nvemu_drv_ctrl_rescan(struct nvemu_drv_ctrl *ctrl)
{
	if (ctrl->state != NVEMU_DRV_STATE_ENABLED)
		return -ENOTCONN;
	return drv_ns_scan(ctrl, true);
}

int nvemu_drv_find_sn_ns(struct nvemu_drv_ctrl *const *ctrls, unsigned n, const char *name,
			 struct nvemu_drv_ctrl **ctrl, uint32_t *nsid)
{
	const char *sep = name ? strrchr(name, ':') : NULL;
	unsigned long v;
	char *end;
	size_t snlen;

	if (!sep || sep == name || sep[1] != 'n' || sep[2] < '1' || sep[2] > '9')
		return -EINVAL;
	v = strtoul(sep + 2, &end, 10);
	if (*end || v == 0 || v >= NVEMU_NSID_ALL)
		return -EINVAL;
	snlen = (size_t)(sep - name);
	for (unsigned i = 0; i < n; i++) {
		const char *sn = ctrls[i]->serial;

		if (strlen(sn) != snlen || memcmp(sn, name, snlen))
			continue;
		if (!drv_ns_find(ctrls[i], (uint32_t)v))
			return -ENOENT;
		*ctrl = ctrls[i];
		*nsid = (uint32_t)v;
		return 0;
	}
	return -ENOENT;
}
