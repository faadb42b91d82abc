// SPDX-License-Identifier: MIT
/*
 * emulation_* methods (the PCIe functions, functions.c) and the SR-IOV side
 * of nvme_controller_*: opening a controller on a function (pf_id, vf_id,
 * vuid, pci_bdf, vhca_id), SNAP's MSI-X pool (dynamic_msix, vf_num_msix,
 * num_msix, release_msix, nvme_controller_vfs_msix_reclaim) as the NVMe VI
 * resources of the primary controller, queue_core_alloc_policy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

static const char *const core_policies[] = {"on-demand", "pre-allocation", NULL};

static bool has_selector(json_t *params)
{
	return rpc_has(params, "vuid") || rpc_has(params, "pf_id") || rpc_has(params, "vf_id") ||
	       rpc_has(params, "pci_bdf") || rpc_has(params, "vhca_id");
}

/* The function named by field's value (one of vuid, pci_bdf, vhca_id). */
static struct nvemud_func *func_by(struct nvemud *d, json_t *params, const char *field)
{
	for (unsigned i = 0; i < d->nr_funcs; i++) {
		struct nvemud_func *c = &d->funcs[i];

		if (!strcmp(field, "vuid")	? !strcmp(rpc_str(params, field), c->vuid)
		    : !strcmp(field, "pci_bdf") ? !strcasecmp(rpc_str(params, field), c->bdf)
						: rpc_uint(params, field, 0) == c->vhca_id)
			return c;
	}
	return NULL;
}

/* The function every given selector names (they must agree); *f NULL if none given. */
int rpc_func_select(struct nvemud *d, json_t *params, struct nvemud_func **f, struct rpc_err *e)
{
	static const char *const by[] = {"vuid", "pci_bdf", "vhca_id", NULL};
	struct nvemud_func *hit = NULL;

	*f = NULL;
	if (!has_selector(params))
		return 0;
	if (rpc_has(params, "vf_id") && !rpc_has(params, "pf_id"))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "vf_id: needs pf_id");
	if (rpc_has(params, "pf_id")) {
		unsigned pf = (unsigned)rpc_uint(params, "pf_id", 0);

		if (pf >= d->num_pfs)
			return rpc_err_set(e, RPC_ERR_NOT_FOUND, "pf_id: no PF %u (there are %u)",
					   pf, d->num_pfs);
		hit = nvemud_func_pf(d, pf);
		if (rpc_has(params, "vf_id")) {
			unsigned vf = (unsigned)rpc_uint(params, "vf_id", 0);

			if (vf >= d->num_vfs)
				return rpc_err_set(e, RPC_ERR_NOT_FOUND,
						   "vf_id: PF %u has no VF %u (it has %u)", pf, vf,
						   d->num_vfs);
			hit += 1 + vf;
		}
	}
	for (const char *const *k = by; *k; k++) {
		struct nvemud_func *c;

		if (!rpc_has(params, *k))
			continue;
		c = func_by(d, params, *k);
		if (!c)
			return rpc_err_set(
				e, RPC_ERR_NOT_FOUND,
				"%s: no such PCIe function (see emulation_function_list)", *k);
		if (hit && hit != c)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "%s: names function %s, the other selectors %s", *k,
					   c->vuid, hit->vuid);
		hit = c;
	}
	*f = hit;
	return 0;
}

/* nvme_controller_create's checks for a controller on f in s, before anything is made. */
int rpc_func_check_create(struct nvemud *d, json_t *params, struct nvemud_func *f,
			  struct nvemu_subsys *s, struct rpc_err *e)
{
	const char *pol = rpc_str(params, "queue_core_alloc_policy");
	bool ok = !pol;

	for (const char *const *p = core_policies; pol && *p; p++)
		ok |= !strcmp(pol, *p);
	if (!ok)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "queue_core_alloc_policy: \"on-demand\" or \"pre-allocation\"");
	if (!f) {
		if (rpc_has(params, "dynamic_msix") || rpc_has(params, "vf_num_msix"))
			return rpc_err_set(
				e, RPC_ERR_INVALID_PARAMS,
				"%s: only for a controller on a PCIe function (pf_id/vf_id)",
				rpc_has(params, "dynamic_msix") ? "dynamic_msix" : "vf_num_msix");
		return 0;
	}
	if (rpc_has(params, "socket"))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "socket: not with a PCIe function (it is served on %s)",
				   f->socket);
	if (f->state != NVEMUD_FUNC_PRESENT)
		return rpc_err_set(e, RPC_ERR_STATE, "function %s is %s", f->vuid,
				   f->state == NVEMUD_FUNC_DETACHED ? "detached"
								    : "being detached");
	if (f->ctrl[0])
		return rpc_err_set(e, RPC_ERR_EXISTS, "function %s already has controller %s",
				   f->vuid, f->ctrl);
	if (nvemud_vfu_find(d, f->socket))
		return rpc_err_set(e, RPC_ERR_EXISTS, "function %s: socket %s is in use", f->vuid,
				   f->socket);
	if (!f->is_vf && rpc_has(params, "vf_num_msix"))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "vf_num_msix: only for a VF");
	if (f->is_vf) {
		struct nvemud_ctrl *pc = nvemud_func_parent_ctrl(d, f);

		if (rpc_has(params, "dynamic_msix"))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "dynamic_msix: only for a PF");
		if (!pc)
			return rpc_err_set(e, RPC_ERR_STATE,
					   "pf_id: PF %u has no controller: create the PF's "
					   "(primary) controller first",
					   f->pf_id);
		if (pc->subsys != s)
			return rpc_err_set(
				e, RPC_ERR_INVALID_PARAMS,
				"nqn: a VF's controller is a secondary of %s, in its subsystem %s",
				pc->name, nvemu_subsys_nqn(pc->subsys));
		if (rpc_has(params, "vf_num_msix") && !pc->dynamic_msix)
			return rpc_err_set(
				e, RPC_ERR_INVALID_PARAMS,
				"vf_num_msix: PF controller %s was not created with dynamic_msix",
				pc->name);
	}
	return 0;
}

/*
 * The engine controller exists, not served yet: make it the primary (a PF
 * with VFs) or a secondary, and give a VF its vf_num_msix VIs.
 */
int rpc_func_open(struct nvemud *d, json_t *params, struct nvemud_func *f, struct nvemu_subsys *s,
		  uint16_t cntlid, struct rpc_err *e)
{
	struct nvemu_error nerr = {0};
	struct nvemu_virt_params vp;
	uint16_t pcid;

	if (!f)
		return 0;
	if (!f->is_vf) {
		if (!d->num_vfs)
			return 0;
		nvemu_virt_params_init(&vp, (uint16_t)d->num_vfs);
		if (nvemu_subsys_virt_add(s, cntlid, &vp, &nerr))
			return rpc_err_nvemu(e, &nerr);
		return 0;
	}
	/* rpc_func_check_create() saw the parent's controller. */
	pcid = nvemud_func_parent_ctrl(d, f)->cntlid;
	if (nvemu_ctrl_set_secondary(nvemu_subsys_ctrl(s, cntlid), pcid, f->vf_id + 1u, &nerr))
		return rpc_err_nvemu(e, &nerr);
	if (rpc_has(params, "vf_num_msix") &&
	    nvemu_virt_assign(s, pcid, f->vf_id + 1u, NVEMU_VIRT_VI,
			      (uint16_t)rpc_uint(params, "vf_num_msix", 0), &nerr))
		return rpc_err_set(e, RPC_ERR_LIMIT, "vf_num_msix: %s", nerr.msg);
	return 0;
}

/* Registered as c: remember it on f, with its SNAP settings. */
void rpc_func_opened(struct nvemud *d, json_t *params, struct nvemud_func *f, struct nvemud_ctrl *c)
{
	const char *pol = rpc_str(params, "queue_core_alloc_policy");

	c->core_policy = core_policies[0];
	for (const char *const *p = core_policies; pol && *p; p++)
		if (!strcmp(pol, *p))
			c->core_policy = *p;
	c->dynamic_msix = rpc_bool(params, "dynamic_msix", false);
	if (f)
		snprintf(f->ctrl, sizeof(f->ctrl), "%s", c->name);
}

/* The primary's id and VF Number of a VF's controller; false if c is on no VF. */
static bool vf_ids(struct nvemud *d, struct nvemud_ctrl *c, uint16_t *pcid, uint16_t *vfn)
{
	struct nvemud_func *f = nvemud_func_of_ctrl(d, c->name);
	struct nvemud_ctrl *pc = f && f->is_vf ? nvemud_func_parent_ctrl(d, f) : NULL;

	if (!pc)
		return false;
	*pcid = pc->cntlid;
	*vfn = f->vf_id + 1u;
	return true;
}

/* nvme_controller_destroy: a PF goes after its VFs; release_msix gives a VF's VIs back. */
int rpc_func_destroy(struct nvemud *d, json_t *params, struct nvemud_ctrl *c, struct rpc_err *e)
{
	struct nvemud_func *f = nvemud_func_of_ctrl(d, c->name);
	struct nvemu_error nerr = {0};
	const char *vfc = NULL;
	uint16_t pcid, vfn;

	if (rpc_bool(params, "release_msix", false) && (!f || !f->is_vf))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "release_msix: only for a VF's controller");
	if (f && !f->is_vf && nvemud_func_vf_ctrls(d, f, &vfc))
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "controller %s is the primary of VF controller %s: destroy the "
				   "VFs' controllers first",
				   c->name, vfc);
	if (rpc_bool(params, "release_msix", false) && vf_ids(d, c, &pcid, &vfn)) {
		nvemu_virt_set_online(c->subsys, pcid, vfn, false, NULL);
		if (nvemu_virt_assign(c->subsys, pcid, vfn, NVEMU_VIRT_VI, 0, &nerr))
			return rpc_err_nvemu(e, &nerr);
	}
	return 0;
}

/* nvme_controller_modify's num_msix: the VF's VIs, while it is Offline. */
int rpc_func_modify_msix(struct nvemud *d, json_t *params, struct nvemud_ctrl *c, struct rpc_err *e)
{
	struct nvemu_error nerr = {0};
	struct nvemud_func *f = nvemud_func_of_ctrl(d, c->name);
	uint16_t pcid, vfn;

	if (!rpc_has(params, "num_msix"))
		return 0;
	if (!vf_ids(d, c, &pcid, &vfn))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "num_msix: only for a VF's controller");
	if (!nvemud_func_parent_ctrl(d, f)->dynamic_msix)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "num_msix: PF controller %s was not created with dynamic_msix",
				   nvemud_func_parent_ctrl(d, f)->name);
	if (nvemu_virt_assign(c->subsys, pcid, vfn, NVEMU_VIRT_VI,
			      (uint16_t)rpc_uint(params, "num_msix", 0), &nerr))
		return rpc_err_set(e, nerr.code == -EBUSY ? RPC_ERR_BUSY : RPC_ERR_LIMIT,
				   "num_msix: %s", nerr.msg);
	return 0;
}

/* nvme_controller_modify without ctrl: the controller on the function the selectors name. */
int rpc_func_ctrl_name(struct nvemud *d, json_t *params, const char **name, struct rpc_err *e)
{
	struct nvemud_func *f;

	if (rpc_func_select(d, params, &f, e))
		return -1;
	if (!f)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "ctrl: missing (or name the function: vuid, pf_id/vf_id, "
				   "pci_bdf, vhca_id)");
	if (!f->ctrl[0])
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "function %s has no controller", f->vuid);
	*name = f->ctrl;
	return 0;
}

/* What nvme_controller_list shows of a controller on a function. */
void rpc_func_ctrl_json(struct nvemud *d, struct nvemud_ctrl *c, json_t *o)
{
	struct nvemud_func *f = nvemud_func_of_ctrl(d, c->name);
	struct nvemu_virt_vf_info vi;
	uint16_t pcid, vfn;

	json_object_set_new(o, "queue_core_alloc_policy",
			    json_string(c->core_policy ? c->core_policy : core_policies[0]));
	if (!f)
		return;
	json_object_set_new(o, "pf_id", json_integer(f->pf_id));
	if (f->is_vf)
		json_object_set_new(o, "vf_id", json_integer(f->vf_id));
	json_object_set_new(o, "vuid", json_string(f->vuid));
	json_object_set_new(o, "pci_bdf", json_string(f->bdf));
	json_object_set_new(o, "vhca_id", json_integer(f->vhca_id));
	if (!f->is_vf)
		json_object_set_new(o, "dynamic_msix", json_boolean(c->dynamic_msix));
	if (vf_ids(d, c, &pcid, &vfn) && !nvemu_subsys_virt_vf(c->subsys, pcid, vfn, &vi)) {
		json_object_set_new(o, "num_msix", json_integer(vi.nvi));
		json_object_set_new(o, "num_vq", json_integer(vi.nvq));
		json_object_set_new(o, "online", json_boolean(vi.online));
	}
}

/* save_config: the function instead of the socket, and the SNAP settings. */
void rpc_func_save(struct nvemud *d, struct nvemud_ctrl *c, json_t *p)
{
	struct nvemud_func *f = nvemud_func_of_ctrl(d, c->name);
	struct nvemu_virt_vf_info vi;
	uint16_t pcid, vfn;

	json_object_set_new(p, "queue_core_alloc_policy",
			    json_string(c->core_policy ? c->core_policy : core_policies[0]));
	if (!f)
		return;
	json_object_del(p, "socket");
	json_object_set_new(p, "pf_id", json_integer(f->pf_id));
	if (f->is_vf)
		json_object_set_new(p, "vf_id", json_integer(f->vf_id));
	else if (c->dynamic_msix)
		json_object_set_new(p, "dynamic_msix", json_true());
	if (vf_ids(d, c, &pcid, &vfn) && nvemud_func_parent_ctrl(d, f)->dynamic_msix &&
	    !nvemu_subsys_virt_vf(c->subsys, pcid, vfn, &vi) && vi.nvi)
		json_object_set_new(p, "vf_num_msix", json_integer(vi.nvi));
}

json_t *rpc_funcs_save(struct nvemud *d)
{
	return json_pack("{s:i, s:i, s:s}", "num_pfs", d->num_pfs, "num_vfs", d->num_vfs,
			 "socket_dir", d->func_dir);
}

/* ---- methods */

static json_t *func_json(struct nvemud *d, struct nvemud_func *f)
{
	struct nvemud_ctrl *c = f->ctrl[0] ? nvemud_find_ctrl(d, f->ctrl) : NULL;
	static const char *const states[] = {"present", "detach_prepared", "detached"};
	json_t *o = json_pack("{s:s, s:i, s:s, s:i, s:s, s:s, s:s}", "emulation_type", "NVMe",
			      f->is_vf ? "vf_index" : "pf_index", f->is_vf ? f->vf_id : f->pf_id,
			      "pci_bdf", f->bdf, "vhca_id", (int)f->vhca_id, "vuid", f->vuid,
			      "socket", f->socket, "state", states[f->state]);

	json_object_set_new(o, "ctrl_id", f->ctrl[0] ? json_string(f->ctrl) : json_null());
	json_object_set_new(o, "connected", json_boolean(c && nvemud_vfu_connected(c)));
	return o;
}

static int emulation_function_list(struct nvemud *d, json_t *params, json_t **result,
				   struct rpc_err *e)
{
	json_t *arr = json_array();

	for (unsigned p = 0; p < d->num_pfs; p++) {
		struct nvemud_func *pf = nvemud_func_pf(d, p);
		json_t *o = func_json(d, pf), *vfs = json_array();

		if (d->num_vfs) {
			json_object_set_new(o, "num_vfs", json_integer(d->num_vfs));
			for (unsigned v = 0; v < d->num_vfs; v++)
				json_array_append_new(vfs, func_json(d, pf + 1 + v));
			json_object_set_new(o, "vfs", vfs);
		} else {
			json_decref(vfs);
		}
		json_array_append_new(arr, o);
	}
	*result = arr;
	return 0;
}

static int emulation_functions_configure(struct nvemud *d, json_t *params, json_t **result,
					 struct rpc_err *e)
{
	struct nvemu_error nerr = {0};
	unsigned pfs = (unsigned)rpc_uint(params, "num_pfs", d->num_pfs);
	unsigned vfs = (unsigned)rpc_uint(params, "num_vfs", d->num_vfs);
	const char *dir =
		rpc_has(params, "socket_dir") ? rpc_str(params, "socket_dir") : d->func_dir;
	char keep[NVEMUD_FUNC_DIR_MAX + 1];

	snprintf(keep, sizeof(keep), "%s", dir);
	if (nvemud_funcs_configure(d, pfs, vfs, keep, &nerr))
		return rpc_err_set(e, nerr.code == -EBUSY ? RPC_ERR_BUSY : RPC_ERR_INVALID_PARAMS,
				   "%s", nerr.msg);
	return 0;
}

static struct nvemud_func *by_vuid(struct nvemud *d, json_t *params, struct rpc_err *e)
{
	const char *vuid = rpc_str(params, "vuid");

	for (unsigned i = 0; i < d->nr_funcs; i++)
		if (!strcmp(d->funcs[i].vuid, vuid))
			return &d->funcs[i];
	rpc_err_set(e, RPC_ERR_NOT_FOUND, "vuid: no PCIe function %.64s", vuid);
	return NULL;
}

static int emulation_device_detach_prepare(struct nvemud *d, json_t *params, json_t **result,
					   struct rpc_err *e)
{
	struct nvemud_func *f = by_vuid(d, params, e);
	const char *vfc = NULL;

	if (!f)
		return -1;
	if (f->state == NVEMUD_FUNC_DETACHED)
		return rpc_err_set(e, RPC_ERR_STATE, "function %s is detached already", f->vuid);
	if (!f->is_vf && nvemud_func_vf_ctrls(d, f, &vfc))
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "function %s: its VF controller %s must go first", f->vuid, vfc);
	f->state = NVEMUD_FUNC_DETACH_PREPARED;
	nvemud_log(d, NVEMUD_LOG_INFO, "%s: detach prepared (controller %s)", f->vuid,
		   f->ctrl[0] ? f->ctrl : "none");
	return 0;
}

static int emulation_device_detach(struct nvemud *d, json_t *params, json_t **result,
				   struct rpc_err *e)
{
	struct nvemud_func *f = by_vuid(d, params, e);

	if (!f)
		return -1;
	if (f->state != NVEMUD_FUNC_DETACH_PREPARED)
		return rpc_err_set(e, RPC_ERR_STATE,
				   "function %s: emulation_device_detach_prepare first", f->vuid);
	if (f->ctrl[0])
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "function %s still has controller %s: destroy it first", f->vuid,
				   f->ctrl);
	f->state = NVEMUD_FUNC_DETACHED;
	return 0;
}

static int nvme_controller_vfs_msix_reclaim(struct nvemud *d, json_t *params, json_t **result,
					    struct rpc_err *e)
{
	struct nvemu_error nerr = {0};
	struct nvemud_ctrl *c;
	struct nvemu_ctrl *ctrl;
	struct nvemud_func *f;

	if (rpc_ctrl_lookup(d, params, &c, &ctrl, e))
		return -1;
	f = nvemud_func_of_ctrl(d, c->name);
	if (!f || f->is_vf || !nvemu_subsys_virt_is_primary(c->subsys, c->cntlid))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "ctrl: %s is not the controller of a PF with VFs", c->name);
	if (nvemu_virt_reclaim(c->subsys, c->cntlid, NVEMU_VIRT_VI, &nerr))
		return rpc_err_set(e, RPC_ERR_BUSY, "%s", nerr.msg);
	return 0;
}

const struct rpc_method rpc_emulation_methods[] = {
	{"emulation_function_list", emulation_function_list,
	 (const struct rpc_param[]){{.name = NULL}},
	 "List the emulated PCIe functions (PFs and their VFs: pf_index/vf_index, pci_bdf, "
	 "vhca_id, vuid, vfio-user socket, controller)."},
	{"emulation_functions_configure", emulation_functions_configure,
	 (const struct rpc_param[]){{"num_pfs", RPC_P_UINT, false, 0, NVEMUD_MAX_PFS},
				    {"num_vfs", RPC_P_UINT, false, 0, NVEMU_VIRT_MAX_VFS},
				    {"socket_dir", RPC_P_STR, false, 1, NVEMUD_FUNC_DIR_MAX},
				    {.name = NULL}},
	 "Set how many PFs, VFs per PF, and where their vfio-user sockets go (no controller may be "
	 "open on a function)."},
	{"emulation_device_detach_prepare", emulation_device_detach_prepare,
	 (const struct rpc_param[]){{"vuid", RPC_P_STR, true, 1, 39}, {.name = NULL}},
	 "Prepare a function's hot-unplug: no new controller on it; then destroy its controller "
	 "and emulation_device_detach."},
	{"emulation_device_detach", emulation_device_detach,
	 (const struct rpc_param[]){{"vuid", RPC_P_STR, true, 1, 39}, {.name = NULL}},
	 "Remove a prepared function whose controller is destroyed."},
	{"nvme_controller_vfs_msix_reclaim", nvme_controller_vfs_msix_reclaim,
	 (const struct rpc_param[]){{"ctrl", RPC_P_STR, true, 1, NVEMUD_CTRL_NAME_MAX - 1},
				    {.name = NULL}},
	 "Give every VF's MSI-X (VI resources) back to the PF's pool; every VF offline."},
	{.name = NULL},
};
