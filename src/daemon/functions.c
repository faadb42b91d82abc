// SPDX-License-Identifier: MIT
/*
 * The emulated PCIe functions controllers are opened on, as SNAP has them:
 * physical functions pf_id 0..N-1, each with virtual functions vf_id
 * 0..M-1 (VF Number vf_id + 1). Every function is served over vfio-user on
 * its own socket when a controller is opened on it (QEMU cannot instantiate
 * the VFs of a vfio-user device, so a guest sees each as its own PCI
 * function). A function has a stable VUID, the BDF its RID gives (the
 * PF's bus, First VF Offset and VF Stride 1) and a vhca_id.
 *
 * A PF's controller is an NVMe primary controller when the PF has VFs; a
 * VF's controller is its secondary (include/nvemu/virt.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static void func_name(struct nvemud_func *f)
{
	unsigned rid_fn = f->is_vf ? f->vf_id + 1u : 0;

	/* A RID: bus pf_id + 1, device/function from the VF's routing offset. */
	snprintf(f->bdf, sizeof(f->bdf), "%02x:%02x.%u", f->pf_id + 1u, rid_fn >> 3, rid_fn & 7);
	if (f->is_vf)
		snprintf(f->vuid, sizeof(f->vuid), "NVEMU00000001NVMES%uD0F0VF%u", f->pf_id,
			 f->vf_id + 1u);
	else
		snprintf(f->vuid, sizeof(f->vuid), "NVEMU00000001NVMES%uD0F0", f->pf_id);
}

int nvemud_funcs_configure(struct nvemud *d, unsigned pfs, unsigned vfs, const char *dir,
			   struct nvemu_error *err)
{
	struct nvemud_func *arr;
	unsigned n = pfs * (1 + vfs), k = 0;

	if (pfs > NVEMUD_MAX_PFS)
		return nvemu_error_set(err, -EINVAL, "num_pfs: at most %u", NVEMUD_MAX_PFS);
	if (vfs > NVEMU_VIRT_MAX_VFS)
		return nvemu_error_set(err, -EINVAL, "num_vfs: at most %u", NVEMU_VIRT_MAX_VFS);
	if (!dir || dir[0] != '/' || strlen(dir) > NVEMUD_FUNC_DIR_MAX)
		return nvemu_error_set(err, -EINVAL,
				       "socket_dir: an absolute path of at most %u characters",
				       NVEMUD_FUNC_DIR_MAX);
	for (unsigned i = 0; i < d->nr_funcs; i++)
		if (d->funcs[i].ctrl[0])
			return nvemu_error_set(err, -EBUSY,
					       "function %s has controller %s: destroy it first",
					       d->funcs[i].vuid, d->funcs[i].ctrl);
	arr = n ? calloc(n, sizeof(*arr)) : NULL;
	if (n && !arr)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	for (unsigned p = 0; p < pfs; p++) {
		for (unsigned v = 0; v <= vfs; v++, k++) {
			struct nvemud_func *f = &arr[k];

			f->pf_id = (uint16_t)p;
			f->is_vf = v > 0;
			f->vf_id = (uint16_t)(v ? v - 1 : 0);
			f->vhca_id = k;
			func_name(f);
			if (f->is_vf)
				snprintf(f->socket, sizeof(f->socket), "%s/nvemu-pf%u-vf%u.sock",
					 dir, p, v - 1);
			else
				snprintf(f->socket, sizeof(f->socket), "%s/nvemu-pf%u.sock", dir,
					 p);
		}
	}
	free(d->funcs);
	d->funcs = arr;
	d->nr_funcs = n;
	d->num_pfs = pfs;
	d->num_vfs = vfs;
	snprintf(d->func_dir, sizeof(d->func_dir), "%s", dir);
	return 0;
}

void nvemud_funcs_free(struct nvemud *d)
{
	free(d->funcs);
	d->funcs = NULL;
	d->nr_funcs = 0;
}

struct nvemud_func *nvemud_func_pf(struct nvemud *d, unsigned pf_id)
{
	return pf_id < d->num_pfs ? &d->funcs[pf_id * (1 + d->num_vfs)] : NULL;
}

struct nvemud_func *nvemud_func_of_ctrl(struct nvemud *d, const char *name)
{
	for (unsigned i = 0; name && i < d->nr_funcs; i++)
		if (!strcmp(d->funcs[i].ctrl, name))
			return &d->funcs[i];
	return NULL;
}

void nvemud_func_ctrl_gone(struct nvemud *d, struct nvemud_ctrl *c)
{
	struct nvemud_func *f = nvemud_func_of_ctrl(d, c->name);

	if (!f)
		return;
	/* The PF's pools go with its controller (its VFs' controllers went first). */
	if (!f->is_vf)
		nvemu_subsys_virt_remove(c->subsys, c->cntlid);
	f->ctrl[0] = 0;
}

/* The VFs of f (a PF) that have a controller; the first one's name into *name. */
unsigned nvemud_func_vf_ctrls(struct nvemud *d, const struct nvemud_func *pf, const char **name)
{
	unsigned n = 0;

	for (unsigned i = 0; i < d->nr_funcs; i++)
		if (d->funcs[i].is_vf && d->funcs[i].pf_id == pf->pf_id && d->funcs[i].ctrl[0]) {
			if (!n && name)
				*name = d->funcs[i].ctrl;
			n++;
		}
	return n;
}

/* The parent PF's controller entry of a VF, or NULL. */
struct nvemud_ctrl *nvemud_func_parent_ctrl(struct nvemud *d, const struct nvemud_func *vf)
{
	struct nvemud_func *pf = nvemud_func_pf(d, vf->pf_id);

	return pf && pf->ctrl[0] ? nvemud_find_ctrl(d, pf->ctrl) : NULL;
}
