// SPDX-License-Identifier: MIT
/* nvme_namespace_* methods: namespaces over named bdevs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <uuid/uuid.h>

#include "rpc.h"
#include "teardown.h"

static json_t *ns_hosts_json(struct nvemu_subsys *s, uint32_t nsid)
{
	json_t *arr = json_array();
	const char *h;

	for (unsigned i = 0; (h = nvemu_ns_get_host(s, nsid, i)); i++)
		json_array_append_new(arr, json_string(h));
	return arr;
}

static json_t *ns_json(struct nvemud *d, struct nvemu_subsys *s, struct nvemu_ns *ns)
{
	char uuid[37], nguid[33], eui64[17];
	json_t *ctrls = json_array(), *j;
	struct nvemu_ns_info ni;
	struct nvemu_ctrl *ctrl;

	nvemu_ns_info(ns, &ni);
	nvemud_uuid_unparse(ni.uuid, uuid);
	nvemud_hex(ni.nguid, 16, nguid);
	nvemud_hex(ni.eui64, 8, eui64);
	for (unsigned i = 0; (ctrl = nvemu_subsys_ctrl_at(s, i)); i++) {
		if (nvemu_ctrl_ns_attached(ctrl, ni.nsid)) {
			const char *name = nvemud_ctrl_name(d, s, nvemu_ctrl_cntlid(ctrl));

			json_array_append_new(ctrls, name ? json_string(name) :
							    json_integer(nvemu_ctrl_cntlid(ctrl)));
		}
	}
	j = json_pack("{s:s, s:I, s:s?, s:I, s:i, s:s, s:s, s:s, s:o, s:s*}", "nqn",
		      nvemu_subsys_nqn(s), "nsid", (json_int_t)ni.nsid, "bdev_name",
		      ni.bdev ? ni.bdev->name : NULL, "num_blocks", (json_int_t)ni.nblocks,
		      "block_size", (int)ni.lba_size, "uuid", uuid, "nguid", nguid, "eui64", eui64,
		      "controllers", ctrls, "ptpl_file", nvemu_ns_get_ptpl_file(s, ni.nsid));
	/* ANA group and host masking */
	json_object_set_new(j, "anagrpid", json_integer(nvemu_ns_anagrpid(s, ni.nsid)));
	json_object_set_new(j, "no_auto_visible",
			    json_boolean(!nvemu_ns_auto_visible(s, ni.nsid)));
	json_object_set_new(j, "hosts", ns_hosts_json(s, ni.nsid));
	return j;
}

/* Reservations persist through power loss in ptpl_file (restored from it when it exists). */
static int ns_set_ptpl(struct nvemu_subsys *s, uint32_t nsid, json_t *params,
		       struct nvemu_error *nerr)
{
	int ret;

	if (!rpc_has(params, "ptpl_file"))
		return 0;
	ret = nvemu_ns_set_ptpl_file(s, nsid, rpc_str(params, "ptpl_file"), nerr);
	if (ret)
		nvemu_subsys_remove_ns(s, nsid, NULL); /* not attached yet: goes at once */
	return ret;
}

static int nvme_namespace_create(struct nvemud *d, json_t *params, json_t **result,
				 struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn"), *bname = rpc_str(params, "bdev_name");
	struct nvemu_subsys *s = nvemud_find_subsys(d, nqn);
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys_info si;
	struct nvemu_ns_params p;
	struct nvemud_bdev *b, *dbg = NULL;
	struct nvemu_ns *ns;
	uint32_t nsid;

	if (!s)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	nvemu_subsys_info(s, &si);
	b = nvemud_find_bdev(d, bname);
	if (!b)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "bdev_name: no bdev %.64s", bname);
	nvemu_ns_params_init(&p);
	p.nsid = (uint32_t)rpc_uint(params, "nsid", 0);
	if (p.nsid > si.nn)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "nsid: must be in 1..%u (nn)", si.nn);
	if (nvemu_subsys_ns(s, p.nsid))
		return rpc_err_set(e, RPC_ERR_EXISTS, "nsid: namespace %u already exists in %s%s",
				   p.nsid, nvemu_subsys_nqn(s),
				   nvemud_ns_destroying(d, s, p.nsid) ? " (being destroyed)" : "");
	if (b->bdev->users)
		return rpc_err_set(e, RPC_ERR_EXISTS, "bdev_name: bdev %s is already used by a namespace",
				   bname);
	if (rpc_has(params, "dbg_bdev_type")) {
		/* SNAP's bdev plugin: the namespace goes on an error bdev EE_<bdev_name> over it. */
		char ee[80];

		if (strcmp(rpc_str(params, "dbg_bdev_type"), "error"))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "dbg_bdev_type: only \"error\" (an error-injection bdev)");
		snprintf(ee, sizeof(ee), "EE_%s", bname);
		if (rpc_bdev_error_create_on(d, ee, b, e))
			return -1;
		b = nvemud_find_bdev(d, ee);
		dbg = b;
	}
	p.bdev = b->bdev;
	p.lbaf = 0;
	for (uint8_t f = 0; f < NVEMU_NUM_LBAF; f++) {
		if (nvemu_lbaf_size(f) >= b->bdev->blk_size) {
			p.lbaf = f;
			break;
		}
	}
	if (rpc_has(params, "uuid")) {
		uuid_parse(rpc_str(params, "uuid"), p.uuid);
		p.has_uuid = true;
		for (unsigned i = 0; (ns = nvemu_subsys_ns_at(s, i)); i++) {
			struct nvemu_ns_info ni;

			nvemu_ns_info(ns, &ni);
			if (!memcmp(ni.uuid, p.uuid, 16))
				return rpc_err_set(e, RPC_ERR_EXISTS,
						   "uuid: already used by namespace %u", ni.nsid);
		}
	}
	if (rpc_has(params, "nguid")) {
		if (nvemud_unhex(rpc_str(params, "nguid"), p.nguid, 16))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "nguid: must be 32 hexadecimal digits");
		p.has_nguid = true;
	}
	if (rpc_has(params, "eui64")) {
		if (nvemud_unhex(rpc_str(params, "eui64"), p.eui64, 8))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "eui64: must be 16 hexadecimal digits");
		p.has_eui64 = true;
	}
	p.anagrpid = (uint32_t)rpc_uint(params, "anagrpid", 0);
	p.no_auto_visible = rpc_bool(params, "no_auto_visible", false);
	if (nvemu_subsys_add_ns_ex(s, &p, &nsid, &nerr)) {
		struct rpc_err ignore;

		if (dbg) /* a failing call changes nothing */
			nvemud_bdev_delete(d, dbg, &ignore);
		return rpc_err_nvemu(e, &nerr);
	}
	if (ns_set_ptpl(s, nsid, params, &nerr))
		return rpc_err_nvemu(e, &nerr);
	nvemud_tcp_ns_added(d, s, nsid);
	*result = json_integer(nsid);
	return 0;
}

static int nvme_namespace_destroy(struct nvemud *d, json_t *params, json_t **result,
				  struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn");
	struct nvemu_subsys *s = nvemud_find_subsys(d, nqn);
	uint32_t nsid = (uint32_t)rpc_uint(params, "nsid", 0);
	struct nvemu_ctrl *ctrl;
	struct nvemu_ns_info ni;
	struct nvemu_ns *ns;

	if (!s)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	ns = nvemu_subsys_ns(s, nsid);
	if (!ns)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nsid: no namespace %u in %s", nsid,
				   nvemu_subsys_nqn(s));
	if (nvemud_ns_destroying(d, s, nsid))
		return rpc_err_set(e, RPC_ERR_BUSY, "nsid: namespace %u of %s is being destroyed",
				   nsid, nvemu_subsys_nqn(s));
	nvemu_ns_info(ns, &ni);
	if (ni.nr_attached) {
		for (unsigned i = 0; (ctrl = nvemu_subsys_ctrl_at(s, i)); i++) {
			/* NVMe/TCP hosts' controllers follow the subsystem: detached by the teardown. */
			if (nvemu_ctrl_ns_attached(ctrl, nsid) && !nvemud_tcp_owns_ctrl(d, ctrl) &&
			    !nvemud_vblk_owns_ctrl(d, ctrl)) {
				const char *name = nvemud_ctrl_name(d, s, nvemu_ctrl_cntlid(ctrl));

				return rpc_err_set(e, RPC_ERR_BUSY,
						   "namespace %u is attached to controller %s: detach it first",
						   nsid, name ? name : "?");
			}
		}
	}
	/* virtio-blk exports of it are detached: their guests get I/O errors. */
	nvemud_vblk_ns_removed(d, s, nsid);
	return nvemud_teardown_ns(d, s, nsid, e);
}

static int nvme_namespace_list(struct nvemud *d, json_t *params, json_t **result,
			       struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn");
	struct nvemu_subsys *only = NULL;
	json_t *arr;

	if (nqn) {
		only = nvemud_find_subsys(d, nqn);
		if (!only)
			return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	}
	arr = json_array();
	for (unsigned i = 0; i < d->nr_subsys; i++) {
		struct nvemu_subsys *s = d->subsys[i];
		struct nvemu_ns *ns;

		if (only && only != s)
			continue;
		for (unsigned n = 0; (ns = nvemu_subsys_ns_at(s, n)); n++) {
			struct nvemu_ns_info ni;

			nvemu_ns_info(ns, &ni);
			if (!nvemud_ns_destroying(d, s, ni.nsid))
				json_array_append_new(arr, ns_json(d, s, ns));
		}
	}
	*result = arr;
	return 0;
}

#define P_NQN { "nqn", RPC_P_STR, true, 1, NVEMU_NQN_MAX }
#define P_NSID { "nsid", RPC_P_UINT, true, 1, 0xfffffffe }

const struct rpc_method rpc_namespace_methods[] = {
	{ "nvme_namespace_create", nvme_namespace_create,
	  (const struct rpc_param[]){ P_NQN,
				      { "bdev_name", RPC_P_STR, true, 1, 63 },
				      P_NSID,
				      { "uuid", RPC_P_UUID, false, 0, 0 },
				      { "nguid", RPC_P_STR, false, 32, 32 },
				      { "eui64", RPC_P_STR, false, 16, 16 },
				      { "ptpl_file", RPC_P_STR, false, 1, 4000 },
				      { "anagrpid", RPC_P_UINT, false, 1, NVEMU_ANAGRPMAX },
				      { "no_auto_visible", RPC_P_BOOL, false, 0, 1 },
				      { "dbg_bdev_type", RPC_P_STR, false, 1, 16 },
				      { .name = NULL } },
	  "Create a namespace over a bdev; give the UUID to keep it across restarts. "
	  "dbg_bdev_type \"error\" puts it on a new error bdev EE_<bdev_name> "
	  "(bdev_error_inject_error)." },
	{ "nvme_namespace_destroy", nvme_namespace_destroy,
	  (const struct rpc_param[]){ P_NQN, P_NSID, { .name = NULL } },
	  "Destroy a namespace that is not attached (NVMe/TCP hosts' controllers are detached; the reply waits for their commands in flight)." },
	{ "nvme_namespace_list", nvme_namespace_list,
	  (const struct rpc_param[]){ { "nqn", RPC_P_STR, false, 1, NVEMU_NQN_MAX }, { .name = NULL } },
	  "List namespaces (of one subsystem with nqn)." },
	{ .name = NULL },
};
